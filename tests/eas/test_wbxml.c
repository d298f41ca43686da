/*
 * test_wbxml.c: unit tests of the WBXML codec (src/eas/wbxml*.c).
 *
 * The byte vectors of eas-protocol.md, the Find page (which libwbxml lacks)
 * against hand-assembled bytes, decode/encode round trips over the corpus of
 * every EAS command (tests/eas/wbxml-corpus, produced by libwbxml's
 * xml2wbxml), every truncation of every corpus document, every error path,
 * the builder, the XML rendering, the path lookup and the tables themselves;
 * and the one-pass check (wbxml_check), rule by rule and against the decoder
 * over every truncation and byte change of the corpus.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "lib/util.h"

#ifndef WBXML_CORPUS_DIR
#error "WBXML_CORPUS_DIR must name tests/eas/wbxml-corpus"
#endif

#define HDR 0x03, 0x01, 0x6A, 0x00

/* A corpus file in memory. */
struct sample {
	char name[sizeof(((struct dirent *)0)->d_name)];
	uint8_t *buf;
	size_t len;
};

/* Read every .wbxml file of the corpus; returns how many (and fails the test on I/O errors). */
static size_t
load_corpus(struct sample **out)
{
	DIR *d = opendir(WBXML_CORPUS_DIR);
	struct dirent *e;
	struct sample *s = NULL;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char path[1024];
		FILE *f;
		long sz;

		if (l < 6 || strcmp(e->d_name + l - 6, ".wbxml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", WBXML_CORPUS_DIR, e->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		sz = ftell(f);
		assert_true(sz > 0);
		rewind(f);
		s = xrealloc(s, (n + 1) * sizeof(*s));
		snprintf(s[n].name, sizeof(s[n].name), "%s", e->d_name);
		s[n].buf = xmalloc((size_t)sz);
		s[n].len = (size_t)sz;
		assert_int_equal(fread(s[n].buf, 1, (size_t)sz, f), (size_t)sz);
		fclose(f);
		n++;
	}
	closedir(d);
	*out = s;
	return n;
}

/* Free what load_corpus() returned. */
static void
free_corpus(struct sample *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].buf);
	free(s);
}

/* Decode buf, expecting failure with the given code; returns the error for more checks. */
static struct wbxml_error
expect_error(const uint8_t *buf, size_t len, const struct wbxml_limits *lim, enum wbxml_err code)
{
	struct wbxml_doc *doc = (struct wbxml_doc *)1;
	struct wbxml_error err;
	enum wbxml_err rc = wbxml_decode(buf, len, lim, &doc, &err);

	if (rc != code)
		fail_msg("expected error %d (%s), got %d: %s", code, wbxml_strerror(code), rc,
		         err.msg);
	assert_null(doc);
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
	return err;
}

/* Encode doc and compare with the expected bytes. */
static void
expect_bytes(const struct wbxml_doc *doc, const uint8_t *want, size_t want_len)
{
	struct wbxml_error err;
	uint8_t *out;
	size_t len;

	if (wbxml_encode(doc, &out, &len, &err) != WBXML_OK)
		fail_msg("encode failed: %s", err.msg);
	if (len != want_len || memcmp(out, want, len) != 0) {
		for (size_t i = 0; i < len; i++)
			fprintf(stderr, "%02x%s", out[i], i + 1 == len ? "\n" : " ");
		fail_msg("encoded %zu bytes, expected %zu (or contents differ)", len, want_len);
	}
	free(out);
}

/* Decode and expect success. */
static struct wbxml_doc *
must_decode(const uint8_t *buf, size_t len)
{
	struct wbxml_doc *doc = NULL;
	struct wbxml_error err;

	if (wbxml_decode(buf, len, NULL, &doc, &err) != WBXML_OK)
		fail_msg("decode failed: %s", err.msg);
	assert_non_null(doc);
	return doc;
}

/* ---- eas-protocol.md vectors ---- */

/* FolderSync request and the answer with status 129, both ways. */
static void
test_brief_vectors(void **state)
{
	static const uint8_t req[] = {HDR, 0x00, 0x07, 0x56, 0x52, 0x03, 0x30, 0x00, 0x01, 0x01};
	static const uint8_t blocked[] = {HDR,  0x00, 0x07, 0x56, 0x4c, 0x03,
	                                  0x31, 0x32, 0x39, 0x00, 0x01, 0x01};
	struct wbxml_doc *doc;
	struct wbxml_node *root;

	(void)state;
	doc = must_decode(req, sizeof(req));
	root = wbxml_doc_root(doc);
	assert_true(wbxml_is(root, WBXML_PAGE_FOLDERHIERARCHY, 0x16));
	assert_string_equal(root->name, "FolderSync");
	assert_string_equal(wbxml_find_text(root, "FolderHierarchy:SyncKey"), "0");
	assert_int_equal(wbxml_doc_count(doc), 2);
	expect_bytes(doc, req, sizeof(req));
	wbxml_doc_free(&doc);
	assert_null(doc);

	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "FolderHierarchy:FolderSync");
	assert_non_null(wbxml_addn_text(root, "Status", "129"));
	expect_bytes(doc, blocked, sizeof(blocked));
	wbxml_doc_free(&doc);

	doc = wbxml_doc_new();
	root = wbxml_add_root(doc, WBXML_PAGE_FOLDERHIERARCHY, 0x16);
	assert_non_null(wbxml_add_text(root, WBXML_PAGE_FOLDERHIERARCHY, 0x12, "0"));
	expect_bytes(doc, req, sizeof(req));
	wbxml_doc_free(&doc);
}

/*
 * Page 25 (Find, EAS 16.1) is not in libwbxml, so the oracle cannot check
 * it: these bytes were assembled by hand from the MS-ASWBXML token table
 * (Find 05, SearchId 06, ExecuteSearch 07, MailBoxSearchCriterion 08, Query 09,
 * FreeText 0B, Options 0C, Range 0D, DeepTraversal 0E, Status 0A, Response 11,
 * Result 12, Properties 13, Preview 14, Total 16, GalSearchCriterion 19,
 * Picture 22, MaxSize 21, MaxPictures 20) and the AirSync Class 10 and
 * CollectionId 12 tokens.
 */
static const uint8_t find_request[] = {
    HDR,  0x00, 0x19,                                     /* page Find */
    0x45,                                                 /* Find */
    0x46, 0x03, 'a',  '1',  0x00, 0x01,                   /* SearchId a1 */
    0x47,                                                 /* ExecuteSearch */
    0x48,                                                 /* MailBoxSearchCriterion */
    0x49,                                                 /* Query */
    0x00, 0x00,                                           /* page AirSync */
    0x50, 0x03, 'E',  'm',  'a',  'i',  'l',  0x00, 0x01, /* Class Email */
    0x52, 0x03, '5',  0x00, 0x01,                         /* CollectionId 5 */
    0x00, 0x19,                                           /* page Find */
    0x4B, 0x03, 'l',  'u',  'n',  'c',  'h',  0x00, 0x01, /* FreeText lunch */
    0x01,                                                 /* /Query */
    0x4C,                                                 /* Options */
    0x4D, 0x03, '0',  '-',  '9',  0x00, 0x01,             /* Range 0-9 */
    0x0E,                                                 /* DeepTraversal (empty) */
    0x01,                                                 /* /Options */
    0x01,                                                 /* /MailBoxSearchCriterion */
    0x01,                                                 /* /ExecuteSearch */
    0x01,                                                 /* /Find */
};

static const uint8_t find_gal_request[] = {
    HDR,  0x00, 0x19, 0x45, 0x46, 0x03, 'g',  0x00, 0x01, /* Find, SearchId g */
    0x47, 0x59,                                           /* ExecuteSearch, GalSearchCriterion */
    0x49, 0x03, 'b',  'o',  'b',  0x00, 0x01,             /* Query bob */
    0x4C, 0x4D, 0x03, '0',  '-',  '4',  0x00, 0x01,       /* Options, Range 0-4 */
    0x62,                                                 /* Picture */
    0x61, 0x03, '1',  '0',  '2',  '4',  0x00, 0x01,       /* MaxSize 1024 */
    0x60, 0x03, '1',  0x00, 0x01,                         /* MaxPictures 1 */
    0x01, 0x01, 0x01, 0x01, 0x01,                         /* /Picture../Find */
};

static const uint8_t find_response[] = {
    HDR,  0x00, 0x19, 0x45,                                          /* Find */
    0x4A, 0x03, '1',  0x00, 0x01,                                    /* Status 1 */
    0x51,                                                            /* Response */
    0x4A, 0x03, '1',  0x00, 0x01,                                    /* Status 1 */
    0x52,                                                            /* Result */
    0x00, 0x00, 0x50, 0x03, 'E',  'm',  'a',  'i',  'l', 0x00, 0x01, /* Class Email */
    0x4D, 0x03, '5',  ':',  '2',  '1',  0x00, 0x01,                  /* ServerId 5:21 */
    0x00, 0x19, 0x53,                                                /* Properties */
    0x00, 0x02, 0x54, 0x03, 'L',  'u',  'n',  'c',  'h', 0x00, 0x01, /* Email:Subject */
    0x00, 0x19, 0x54, 0x03, 'N',  'o',  'o',  'n',  '?', 0x00, 0x01, /* Preview */
    0x15,                                                            /* HasAttachments (empty) */
    0x01,                                                            /* /Properties */
    0x01,                                                            /* /Result */
    0x4D, 0x03, '0',  '-',  '0',  0x00, 0x01,                        /* Range 0-0 */
    0x56, 0x03, '1',  0x00, 0x01,                                    /* Total 1 */
    0x01,                                                            /* /Response */
    0x01,                                                            /* /Find */
};

/* The Find page, built with the API and compared with the hand-made bytes. */
static void
test_find_page(void **state)
{
	struct wbxml_doc *doc;
	struct wbxml_node *root, *n, *q, *o, *p;

	(void)state;
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "Find:Find");
	wbxml_addn_text(root, "SearchId", "a1");
	n = wbxml_addn(wbxml_addn(root, "ExecuteSearch"), "MailBoxSearchCriterion");
	q = wbxml_addn(n, "Query");
	wbxml_addn_text(q, "AirSync:Class", "Email");
	wbxml_addn_text(q, "AirSync:CollectionId", "5");
	wbxml_addn_text(q, "Find:FreeText", "lunch");
	o = wbxml_addn(n, "Options");
	wbxml_addn_text(o, "Range", "0-9");
	assert_non_null(wbxml_addn(o, "DeepTraversal"));
	expect_bytes(doc, find_request, sizeof(find_request));
	wbxml_doc_free(&doc);

	doc = wbxml_doc_new();
	root = wbxml_add_root(doc, WBXML_PAGE_FIND, 0x05);
	wbxml_addn_text(root, "SearchId", "g");
	n = wbxml_addn(wbxml_addn(root, "ExecuteSearch"), "GalSearchCriterion");
	wbxml_addn_text(n, "Query", "bob");
	o = wbxml_addn(n, "Options");
	wbxml_addn_text(o, "Range", "0-4");
	p = wbxml_addn(o, "Picture");
	wbxml_addn_text(p, "MaxSize", "1024");
	wbxml_addn_text(p, "MaxPictures", "1");
	expect_bytes(doc, find_gal_request, sizeof(find_gal_request));
	wbxml_doc_free(&doc);

	doc = must_decode(find_response, sizeof(find_response));
	root = wbxml_doc_root(doc);
	assert_string_equal(wbxml_find_text(root, "Find:Status"), "1");
	assert_string_equal(wbxml_find_text(root, "Response/Result/Properties/Email:Subject"),
	                    "Lunch");
	assert_string_equal(wbxml_find_text(root, "Response/Result/Find:Properties/Preview"),
	                    "Noon?");
	assert_string_equal(wbxml_find_text(root, "Response/Total"), "1");
	assert_non_null(wbxml_find(root, "Response/Result/Properties/HasAttachments"));
	assert_string_equal(wbxml_find_text(root, "Response/Status"), "1");
	assert_null(wbxml_find(root, "Response/AirSync:Class"));
	assert_string_equal(wbxml_find_text(root, "Response/Result/AirSync:Class"), "Email");
	expect_bytes(doc, find_response, sizeof(find_response));
	wbxml_doc_free(&doc);

	doc = must_decode(find_gal_request, sizeof(find_gal_request));
	assert_string_equal(
	    wbxml_find_text(wbxml_doc_root(doc),
	                    "ExecuteSearch/GalSearchCriterion/Options/Picture/MaxPictures"),
	    "1");
	wbxml_doc_free(&doc);
}

/* ---- Corpus ---- */

/* Every corpus document decodes and re-encodes to the very same bytes. */
static void
test_corpus_roundtrip(void **state)
{
	struct sample *s;
	size_t n = load_corpus(&s);

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		struct wbxml_doc *doc = NULL;
		struct wbxml_error err;
		uint8_t *out;
		size_t len;
		char *xml;

		if (wbxml_decode(s[i].buf, s[i].len, NULL, &doc, &err) != WBXML_OK)
			fail_msg("%s: %s", s[i].name, err.msg);
		assert_int_equal(wbxml_encode(doc, &out, &len, &err), WBXML_OK);
		if (len != s[i].len || memcmp(out, s[i].buf, len) != 0)
			fail_msg("%s: re-encoding differs", s[i].name);
		xml = wbxml_to_xml(wbxml_doc_root(doc), WBXML_XML_PRETTY | WBXML_XML_HEADER);
		assert_non_null(strstr(xml, "<!DOCTYPE ActiveSync"));
		free(xml);
		free(out);
		wbxml_doc_free(&doc);
	}
	free_corpus(s, n);
}

/* Every proper prefix of every corpus document is an error, never a success or a crash. */
static void
test_corpus_truncation(void **state)
{
	struct sample *s;
	size_t n = load_corpus(&s);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (size_t cut = 0; cut < s[i].len; cut++) {
			struct wbxml_doc *doc = NULL;
			struct wbxml_error err;
			/* A copy of exactly cut bytes, so that ASan sees any over-read. */
			uint8_t *p = xmalloc(cut);
			enum wbxml_err rc;

			memcpy(p, s[i].buf, cut);
			rc = wbxml_decode(p, cut, NULL, &doc, &err);
			if (rc == WBXML_OK)
				fail_msg("%s cut at %zu decoded", s[i].name, cut);
			assert_null(doc);
			assert_true(rc == WBXML_ERR_TRUNCATED || rc == WBXML_ERR_EMPTY ||
			            rc == WBXML_ERR_UNTERMINATED_STR);
			assert_true(err.offset <= cut);
			free(p);
		}
	}
	free_corpus(s, n);
}

/* Settings:DeviceInformation out of the Settings and Provision corpus bodies. */
static void
test_find_device_information(void **state)
{
	struct sample *s;
	size_t n = load_corpus(&s);
	int seen = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct wbxml_doc *doc;
		struct wbxml_node *root;

		if (strcmp(s[i].name, "settings-request.wbxml") != 0 &&
		    strcmp(s[i].name, "provision-request-phase1.wbxml") != 0)
			continue;
		doc = must_decode(s[i].buf, s[i].len);
		root = wbxml_doc_root(doc);
		if (strcmp(s[i].name, "settings-request.wbxml") == 0) {
			assert_string_equal(
			    wbxml_find_text(root, "Settings:DeviceInformation/Settings:Set/"
			                          "Settings:Model"),
			    "iPhone15,3");
			assert_string_equal(
			    wbxml_find_text(root, "DeviceInformation/Set/FriendlyName"),
			    "Alice's iPhone");
			assert_non_null(wbxml_find(root, "UserInformation/Get"));
			assert_null(wbxml_find_text(root, "UserInformation/Get"));
			/* Backtracking: Get exists under UserInformation and under Oof. */
			assert_string_equal(wbxml_find_text(root, "Settings:Oof/Get/BodyType"),
			                    "Text");
			assert_null(wbxml_find(root, "Provision:DeviceInformation"));
			assert_null(wbxml_find(root, "DeviceInformation/Set/Nope"));
		} else {
			assert_string_equal(
			    wbxml_find_text(root, "Settings:DeviceInformation/Settings:Set/"
			                          "Settings:Model"),
			    "SM-S918B");
			assert_string_equal(wbxml_find_text(root, "Policies/Policy/PolicyType"),
			                    "MS-EAS-Provisioning-WBXML");
		}
		assert_ptr_equal(wbxml_find(root, ""), root);
		seen++;
		wbxml_doc_free(&doc);
	}
	assert_int_equal(seen, 2);
	free_corpus(s, n);
}

/* ---- Error paths ---- */

/* Headers ActiveSync does not use. */
static void
test_err_header(void **state)
{
	static const uint8_t v12[] = {0x02, 0x01, 0x6A, 0x00, 0x45, 0x01};
	static const uint8_t pub[] = {0x03, 0x02, 0x6A, 0x00, 0x45, 0x01};
	static const uint8_t pub0[] = {0x03, 0x00, 0x00, 0x6A, 0x00, 0x45, 0x01};
	static const uint8_t cs[] = {0x03, 0x01, 0x04, 0x00, 0x45, 0x01};
	static const uint8_t strtbl[] = {0x03, 0x01, 0x6A, 0x02, 'a', 0x00, 0x45, 0x01};
	static const uint8_t cs_long[] = {0x03, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x6A};
	struct wbxml_error e;

	(void)state;
	e = expect_error(v12, sizeof(v12), NULL, WBXML_ERR_BAD_HEADER);
	assert_int_equal(e.offset, 0);
	assert_non_null(strstr(e.msg, "bad header"));
	e = expect_error(pub, sizeof(pub), NULL, WBXML_ERR_BAD_HEADER);
	assert_int_equal(e.offset, 1);
	expect_error(pub0, sizeof(pub0), NULL, WBXML_ERR_BAD_HEADER);
	e = expect_error(cs, sizeof(cs), NULL, WBXML_ERR_BAD_HEADER);
	assert_int_equal(e.offset, 2);
	e = expect_error(strtbl, sizeof(strtbl), NULL, WBXML_ERR_BAD_HEADER);
	assert_int_equal(e.offset, 3);
	expect_error(cs_long, sizeof(cs_long), NULL, WBXML_ERR_MBUINT);
	expect_error(NULL, 0, NULL, WBXML_ERR_TRUNCATED);
	expect_error(v12, 1, NULL, WBXML_ERR_BAD_HEADER);
}

/* Code pages and tokens that do not exist. */
static void
test_err_unknown(void **state)
{
	static const uint8_t page30[] = {HDR, 0x00, 0x1E, 0x45, 0x01};
	static const uint8_t page255[] = {HDR, 0x45, 0x00, 0xFF, 0x01};
	static const uint8_t tok[] = {HDR, 0x00, 0x07, 0x56, 0x7F, 0x01, 0x01};
	static const uint8_t tok_root[] = {HDR, 0x00, 0x05, 0x04 | 0x3C};
	static const uint8_t gap[] = {HDR, 0x00, 0x11, 0x09};
	struct wbxml_error e;

	(void)state;
	e = expect_error(page30, sizeof(page30), NULL, WBXML_ERR_UNKNOWN_PAGE);
	assert_string_equal(e.msg, "unknown code page 30 at offset 4");
	expect_error(page255, sizeof(page255), NULL, WBXML_ERR_UNKNOWN_PAGE);
	e = expect_error(tok, sizeof(tok), NULL, WBXML_ERR_UNKNOWN_TOKEN);
	assert_string_equal(e.msg, "unknown token 0x3F on page 7 (FolderHierarchy) at offset 7");
	assert_int_equal(e.offset, 7);
	expect_error(tok_root, sizeof(tok_root), NULL, WBXML_ERR_UNKNOWN_TOKEN);
	e = expect_error(gap, sizeof(gap), NULL, WBXML_ERR_UNKNOWN_TOKEN);
	assert_non_null(strstr(e.msg, "0x09 on page 17 (AirSyncBase)"));
}

/* Depth, node and size limits, default and caller-set. */
static void
test_err_limits(void **state)
{
	uint8_t deep[4 + 200 + 200];
	struct wbxml_limits lim = {0};
	struct wbxml_doc *doc = NULL;
	struct wbxml_error e;
	size_t n = 4;

	(void)state;
	memcpy(deep, (uint8_t[]){HDR}, 4);
	for (int i = 0; i < 65; i++)
		deep[n++] = 0x5C; /* AirSync:Collections with content */
	for (int i = 0; i < 65; i++)
		deep[n++] = 0x01;
	e = expect_error(deep, n, NULL, WBXML_ERR_DEPTH);
	assert_int_equal(e.offset, 4 + 64);
	assert_non_null(strstr(e.msg, "depth limit"));
	/* 64 levels are fine. */
	n = 4;
	for (int i = 0; i < 64; i++)
		deep[n++] = 0x5C;
	for (int i = 0; i < 64; i++)
		deep[n++] = 0x01;
	assert_int_equal(wbxml_decode(deep, n, NULL, &doc, &e), WBXML_OK);
	assert_int_equal(wbxml_doc_count(doc), 64);
	wbxml_doc_free(&doc);
	/* Caller-set limits. */
	lim.max_depth = 3;
	expect_error(deep, n, &lim, WBXML_ERR_DEPTH);
	lim.max_depth = 0;
	lim.max_nodes = 10;
	e = expect_error(deep, n, &lim, WBXML_ERR_TOO_MANY_NODES);
	assert_int_equal(e.offset, 14);
	lim.max_nodes = 0;
	lim.max_input = n - 1;
	e = expect_error(deep, n, &lim, WBXML_ERR_TOO_LARGE);
	assert_int_equal(e.offset, 0);
	lim.max_input = n;
	assert_int_equal(wbxml_decode(deep, n, &lim, &doc, NULL), WBXML_OK);
	wbxml_doc_free(&doc);
}

/* 100,001 empty siblings hit the default node cap. */
static void
test_err_default_node_cap(void **state)
{
	size_t n = 4 + 1 + 100000 + 1;
	uint8_t *buf = xmalloc(n);
	struct wbxml_doc *doc = NULL;

	(void)state;
	memcpy(buf, (uint8_t[]){HDR}, 4);
	buf[4] = 0x5C;
	memset(buf + 5, 0x0B, 100000); /* SyncKey without content */
	buf[n - 1] = 0x01;
	expect_error(buf, n, NULL, WBXML_ERR_TOO_MANY_NODES);
	buf[n - 2] = 0x01; /* one fewer sibling: 100,000 elements in all */
	assert_int_equal(wbxml_decode(buf, n - 1, NULL, &doc, NULL), WBXML_OK);
	assert_int_equal(wbxml_doc_count(doc), 100000);
	wbxml_doc_free(&doc);
	free(buf);
}

/* Strings, multi-byte integers and OPAQUE lengths. */
static void
test_err_strings_and_integers(void **state)
{
	static const uint8_t unterminated[] = {HDR, 0x4B, 0x03, 'a', 'b'};
	static const uint8_t mb6[] = {HDR, 0x4B, 0xC3, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t mb33[] = {HDR, 0x4B, 0xC3, 0x90, 0x80, 0x80, 0x80, 0x00, 0x01};
	static const uint8_t huge[] = {HDR, 0x4B, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F, 0x01};
	static const uint8_t mb_cut[] = {HDR, 0x4B, 0xC3, 0x81};
	static const uint8_t op_cut[] = {HDR, 0x4B, 0xC3, 0x05, 'a', 'b'};
	static const uint8_t sw_cut[] = {HDR, 0x4B, 0x00};
	struct wbxml_error e;

	(void)state;
	e = expect_error(unterminated, sizeof(unterminated), NULL, WBXML_ERR_UNTERMINATED_STR);
	assert_int_equal(e.offset, 5);
	assert_non_null(strstr(e.msg, "string not terminated"));
	e = expect_error(mb6, sizeof(mb6), NULL, WBXML_ERR_MBUINT);
	assert_int_equal(e.offset, 6);
	expect_error(mb33, sizeof(mb33), NULL, WBXML_ERR_MBUINT);
	e = expect_error(huge, sizeof(huge), NULL, WBXML_ERR_TRUNCATED);
	assert_non_null(strstr(e.msg, "4294967295"));
	e = expect_error(mb_cut, sizeof(mb_cut), NULL, WBXML_ERR_TRUNCATED);
	assert_string_equal(e.msg, "truncated input at offset 7 (OPAQUE length)");
	expect_error(op_cut, sizeof(op_cut), NULL, WBXML_ERR_TRUNCATED);
	expect_error(sw_cut, sizeof(sw_cut), NULL, WBXML_ERR_TRUNCATED);
}

/* Tokens of WBXML that ActiveSync never uses. */
static void
test_err_tokens(void **state)
{
	static const uint8_t attr[] = {HDR, 0xC5, 0x01, 0x01};
	static const uint8_t attr2[] = {HDR, 0x45, 0x8B, 0x01, 0x01};
	static const uint8_t ext[][7] = {
	    {HDR, 0x45, 0x40, 0x01}, {HDR, 0x45, 0x41, 0x01}, {HDR, 0x45, 0x42, 0x01},
	    {HDR, 0x45, 0x80, 0x01}, {HDR, 0x45, 0x81, 0x01}, {HDR, 0x45, 0x82, 0x01},
	    {HDR, 0x45, 0xC0, 0x01}, {HDR, 0x45, 0xC1, 0x01}, {HDR, 0x45, 0xC2, 0x01},
	};
	static const uint8_t unsup[][7] = {
	    {HDR, 0x45, 0x02, 0x41}, {HDR, 0x45, 0x04, 0x00}, {HDR, 0x45, 0x43, 0x01},
	    {HDR, 0x45, 0x44, 0x00}, {HDR, 0x45, 0x83, 0x00}, {HDR, 0x45, 0x84, 0x00},
	    {HDR, 0x45, 0xC4, 0x00},
	};
	struct wbxml_error e;

	(void)state;
	e = expect_error(attr, sizeof(attr), NULL, WBXML_ERR_ATTRIBUTES);
	assert_non_null(strstr(e.msg, "attribute tokens are not used by ActiveSync"));
	expect_error(attr2, sizeof(attr2), NULL, WBXML_ERR_ATTRIBUTES);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		e = expect_error(ext[i], sizeof(ext[i]), NULL, WBXML_ERR_EXTENSION);
		assert_int_equal(e.offset, 5);
	}
	for (size_t i = 0; i < sizeof(unsup) / sizeof(unsup[0]); i++)
		expect_error(unsup[i], sizeof(unsup[i]), NULL, WBXML_ERR_UNSUPPORTED);
}

/* Structure: END or content outside elements, trailing data, mixed content, no root. */
static void
test_err_structure(void **state)
{
	static const uint8_t end_top[] = {HDR, 0x01};
	static const uint8_t str_top[] = {HDR, 0x03, 'a', 0x00, 0x45, 0x01};
	static const uint8_t op_top[] = {HDR, 0xC3, 0x00, 0x45, 0x01};
	static const uint8_t two_roots[] = {HDR, 0x05, 0x05};
	static const uint8_t after_end[] = {HDR, 0x45, 0x01, 0x01};
	static const uint8_t sw_after[] = {HDR, 0x45, 0x01, 0x00, 0x01};
	static const uint8_t str_after[] = {HDR, 0x45, 0x01, 0x03, 'a', 0x00};
	static const uint8_t text_then_child[] = {HDR, 0x45, 0x03, 'a', 0x00, 0x0B, 0x01};
	static const uint8_t child_then_text[] = {HDR, 0x45, 0x0B, 0x03, 'a', 0x00, 0x01};
	static const uint8_t text_then_opaque[] = {HDR, 0x4B, 0x03, 'a', 0x00, 0xC3, 0x00, 0x01};
	static const uint8_t header_only[] = {HDR};
	static const uint8_t switch_only[] = {HDR, 0x00, 0x07};
	static const uint8_t open[] = {HDR, 0x45, 0x5C};
	struct wbxml_error e;

	(void)state;
	expect_error(end_top, sizeof(end_top), NULL, WBXML_ERR_UNEXPECTED);
	expect_error(str_top, sizeof(str_top), NULL, WBXML_ERR_UNEXPECTED);
	expect_error(op_top, sizeof(op_top), NULL, WBXML_ERR_UNEXPECTED);
	expect_error(two_roots, sizeof(two_roots), NULL, WBXML_ERR_TRAILING);
	expect_error(after_end, sizeof(after_end), NULL, WBXML_ERR_UNEXPECTED);
	expect_error(sw_after, sizeof(sw_after), NULL, WBXML_ERR_TRAILING);
	expect_error(str_after, sizeof(str_after), NULL, WBXML_ERR_TRAILING);
	e = expect_error(text_then_child, sizeof(text_then_child), NULL, WBXML_ERR_MIXED);
	assert_non_null(strstr(e.msg, "AirSync:Sync"));
	expect_error(child_then_text, sizeof(child_then_text), NULL, WBXML_ERR_MIXED);
	expect_error(text_then_opaque, sizeof(text_then_opaque), NULL, WBXML_ERR_MIXED);
	expect_error(header_only, sizeof(header_only), NULL, WBXML_ERR_EMPTY);
	expect_error(switch_only, sizeof(switch_only), NULL, WBXML_ERR_EMPTY);
	e = expect_error(open, sizeof(open), NULL, WBXML_ERR_TRUNCATED);
	assert_string_equal(e.msg, "truncated input at offset 6 (2 elements still open)");
	/* Invalid arguments. */
	assert_int_equal(wbxml_decode(open, sizeof(open), NULL, NULL, NULL), WBXML_ERR_INVALID);
	expect_error(NULL, 3, NULL, WBXML_ERR_INVALID);
	/* strerror covers every code and tolerates nonsense. */
	for (int c = WBXML_OK; c <= WBXML_ERR_INVALID; c++)
		assert_true(wbxml_strerror((enum wbxml_err)c)[0] != '\0');
	assert_string_equal(wbxml_strerror((enum wbxml_err)999), "unknown WBXML error");
}

/* ---- Content forms ---- */

/* Accepted forms that are not canonical: split strings, empty content, redundant switches. */
static void
test_noncanonical_forms(void **state)
{
	static const uint8_t split[] = {HDR,  0x4B, 0x03, 'a', 'b',  0x00,
	                                0x03, 0x00, 0x03, 'c', 0x00, 0x01};
	static const uint8_t split_canon[] = {HDR, 0x4B, 0x03, 'a', 'b', 'c', 0x00, 0x01};
	static const uint8_t empty[] = {HDR, 0x45, 0x4B, 0x01, 0x01};
	static const uint8_t empty_canon[] = {HDR, 0x45, 0x0B, 0x01};
	static const uint8_t empty_str[] = {HDR, 0x45, 0x4B, 0x03, 0x00, 0x01, 0x01};
	static const uint8_t switches[] = {HDR,  0x00, 0x00, 0x00, 0x07, 0x00,
	                                   0x00, 0x45, 0x00, 0x00, 0x0B, 0x01};
	static const uint8_t switches_canon[] = {HDR, 0x45, 0x0B, 0x01};
	static const uint8_t opaque_split[] = {HDR,  0x4B, 0xC3, 0x01, 'x',
	                                       0xC3, 0x80, 0x01, 'y',  0x01};
	struct wbxml_doc *doc;
	struct wbxml_node *n;

	(void)state;
	doc = must_decode(split, sizeof(split));
	assert_string_equal(wbxml_text(wbxml_doc_root(doc)), "abc");
	expect_bytes(doc, split_canon, sizeof(split_canon));
	wbxml_doc_free(&doc);

	doc = must_decode(empty, sizeof(empty));
	n = wbxml_doc_root(doc)->first_child;
	assert_null(wbxml_text(n));
	assert_int_equal(n->flags, 0);
	expect_bytes(doc, empty_canon, sizeof(empty_canon));
	wbxml_doc_free(&doc);

	/* An empty STR_I is kept: it is how a client says "SyncKey is empty". */
	doc = must_decode(empty_str, sizeof(empty_str));
	n = wbxml_doc_root(doc)->first_child;
	assert_string_equal(wbxml_text(n), "");
	expect_bytes(doc, empty_str, sizeof(empty_str));
	wbxml_doc_free(&doc);

	doc = must_decode(switches, sizeof(switches));
	expect_bytes(doc, switches_canon, sizeof(switches_canon));
	wbxml_doc_free(&doc);

	doc = must_decode(opaque_split, sizeof(opaque_split));
	n = wbxml_doc_root(doc);
	assert_int_equal(n->flags, WBXML_NODE_OPAQUE);
	assert_int_equal(n->len, 2);
	assert_memory_equal(n->data, "xy", 2);
	assert_null(wbxml_text(n));
	wbxml_doc_free(&doc);
}

/* OPAQUE lengths across the multi-byte integer boundaries, both ways. */
static void
test_opaque_sizes(void **state)
{
	static const struct {
		size_t len;
		uint8_t mb[5];
		size_t mblen;
	} cases[] = {
	    {0, {0x00}, 1},
	    {127, {0x7F}, 1},
	    {128, {0x81, 0x00}, 2},
	    {16383, {0xFF, 0x7F}, 2},
	    {16384, {0x81, 0x80, 0x00}, 3},
	    {2097152, {0x81, 0x80, 0x80, 0x00}, 4},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len;
		uint8_t *payload = xmalloc(len);
		struct wbxml_doc *doc = wbxml_doc_new(), *back;
		struct wbxml_node *root = wbxml_addn_root(doc, "ComposeMail:SendMail");
		struct wbxml_error err;
		uint8_t *out;
		size_t outlen;

		for (size_t k = 0; k < len; k++)
			payload[k] = (uint8_t)(k * 7 + 1);
		wbxml_addn_text(root, "ClientId", "1");
		assert_non_null(wbxml_addn_opaque(root, "Mime", payload, len));
		assert_int_equal(wbxml_encode(doc, &out, &outlen, &err), WBXML_OK);
		/* header, switch, SendMail, ClientId 1 END, Mime C3 len ... END END */
		assert_int_equal(outlen, 4 + 2 + 1 + 5 + 2 + cases[i].mblen + len + 2);
		assert_int_equal(out[12], 0x50);
		assert_int_equal(out[13], 0xC3);
		assert_memory_equal(out + 14, cases[i].mb, cases[i].mblen);
		back = must_decode(out, outlen);
		root = wbxml_find(wbxml_doc_root(back), "Mime");
		assert_non_null(root);
		assert_int_equal(root->len, len);
		if (len > 0)
			assert_memory_equal(root->data, payload, len);
		wbxml_doc_free(&back);
		wbxml_doc_free(&doc);
		free(out);
		free(payload);
	}
}

/* ---- Builder ---- */

/* Builder misuse is recorded and reported by the encoder. */
static void
test_builder_errors(void **state)
{
	static const uint8_t status2[] = {HDR, 0x00, 0x0D, 0x45, 0x47, 0x03, '2', 0x00, 0x01, 0x01};
	struct wbxml_doc *doc;
	struct wbxml_node *root, *n;
	struct wbxml_error err;
	uint8_t *out = (uint8_t *)1;
	size_t len = 1;

	(void)state;
	/* Unknown names and tokens. */
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "AirSync:Sync");
	assert_non_null(root);
	assert_null(wbxml_addn(root, "NoSuchTag"));
	assert_null(wbxml_addn(root, "NoSuchPage:Sync"));
	assert_null(wbxml_add(root, WBXML_PAGE_AIRSYNC, 0x11 + 0x30));
	assert_int_equal(wbxml_encode(doc, &out, &len, &err), WBXML_ERR_BUILD);
	assert_string_equal(err.msg, "unknown element name 'NoSuchTag'");
	assert_null(out);
	assert_int_equal(len, 0);
	wbxml_doc_free(&doc);

	/* NULL parents propagate quietly. */
	assert_null(wbxml_addn_text(wbxml_addn(NULL, "Sync"), "Status", "1"));
	assert_null(wbxml_add_text(NULL, 0, 5, "x"));
	assert_null(wbxml_add_opaque(NULL, 0, 5, "x", 1));
	assert_null(wbxml_addn_opaque(NULL, "Sync", "x", 1));
	assert_null(wbxml_add_root(NULL, 0, 5));
	assert_null(wbxml_addn_root(NULL, "AirSync:Sync"));

	/* Text and children exclude each other; one root only. */
	doc = wbxml_doc_new();
	root = wbxml_add_root(doc, WBXML_PAGE_PING, 0x05);
	assert_null(wbxml_add_root(doc, WBXML_PAGE_PING, 0x05));
	n = wbxml_addn_text(root, "Status", "1");
	assert_null(wbxml_addn(n, "Folder"));
	assert_int_equal(wbxml_set_text(root, "x", 1), -1);
	assert_int_equal(wbxml_set_text(n, "a\0b", 3), -1);
	assert_int_equal(wbxml_set_text(NULL, "a", 1), -1);
	assert_int_equal(wbxml_encode(doc, &out, &len, &err), WBXML_ERR_BUILD);
	assert_non_null(strstr(err.msg, "already has a root"));
	wbxml_doc_free(&doc);

	/* A bare root name needs a page. */
	doc = wbxml_doc_new();
	assert_null(wbxml_addn_root(doc, "Sync"));
	assert_int_equal(wbxml_encode(doc, &out, &len, &err), WBXML_ERR_BUILD);
	wbxml_doc_free(&doc);

	/* Empty documents and bad arguments. */
	doc = wbxml_doc_new();
	assert_int_equal(wbxml_encode(doc, &out, &len, &err), WBXML_ERR_EMPTY);
	assert_int_equal(wbxml_encode(NULL, &out, &len, &err), WBXML_ERR_INVALID);
	assert_int_equal(wbxml_encode(doc, NULL, &len, NULL), WBXML_ERR_INVALID);
	wbxml_doc_free(&doc);
	wbxml_doc_free(&doc);
	wbxml_doc_free(NULL);

	/* Replacing content: opaque then text, the last one wins. */
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "Ping:Ping");
	n = wbxml_addn_opaque(root, "Status", "\x00\x01", 2);
	assert_int_equal(wbxml_set_text(n, "2", 1), 0);
	assert_string_equal(wbxml_text(n), "2");
	assert_int_equal(n->flags, WBXML_NODE_TEXT);
	expect_bytes(doc, status2, sizeof(status2));
	wbxml_doc_free(&doc);
}

/* A realistic answer (Provision phase 1) built through pages, checked byte by byte. */
static void
test_builder_provision(void **state)
{
	static const uint8_t want[] = {
	    HDR,  0x00, 0x0E, 0x45,             /* Provision */
	    0x4B, 0x03, '1',  0x00, 0x01,       /* Status 1 */
	    0x00, 0x12, 0x56,                   /* Settings:DeviceInformation */
	    0x46, 0x03, '1',  0x00, 0x01, 0x01, /* Status 1, /DeviceInformation */
	    0x00, 0x0E, 0x46, 0x47,             /* Policies Policy */
	    0x48, 0x03, 'X',  0x00, 0x01,       /* PolicyType X */
	    0x4B, 0x03, '1',  0x00, 0x01,       /* Status 1 */
	    0x49, 0x03, '7',  0x00, 0x01,       /* PolicyKey 7 */
	    0x4A, 0x0D, 0x01,                   /* Data, EASProvisionDoc (empty) */
	    0x01, 0x01, 0x01,                   /* /Policy /Policies /Provision */
	};
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *root, *p;

	(void)state;
	root = wbxml_addn_root(doc, "Provision:Provision");
	wbxml_addn_text(root, "Status", "1");
	wbxml_addn_text(wbxml_addn(root, "Settings:DeviceInformation"), "Status", "1");
	p = wbxml_addn(wbxml_addn(root, "Provision:Policies"), "Policy");
	wbxml_addn_text(p, "PolicyType", "X");
	wbxml_addn_text(p, "Status", "1");
	wbxml_addn_text(p, "PolicyKey", "7");
	wbxml_addn(wbxml_addn(p, "Data"), "EASProvisionDoc");
	expect_bytes(doc, want, sizeof(want));
	assert_int_equal(wbxml_doc_count(doc), 11);
	wbxml_doc_free(&doc);
}

/* ---- XML ---- */

/*
 * For the account loggers: message contents, passwords and opaque data are
 * left out with their size; the rest (subjects, statuses, escaping) stays.
 */
static void
test_xml_leave_out(void **state)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *root, *app, *body;
	char *xml;

	(void)state;
	root = wbxml_addn_root(doc, "AirSync:Sync");
	app = wbxml_addn(root, "ApplicationData");
	wbxml_addn_text(app, "Email:Subject", "Lunch <today> & more");
	body = wbxml_addn(app, "AirSyncBase:Body");
	wbxml_addn_text(body, "Type", "1");
	wbxml_addn_text(body, "Data", "the secret plan");
	wbxml_addn_text(body, "Preview", "the secret");
	wbxml_addn_text(app, "Email:Body", "old body");
	wbxml_addn_text(app, "Email:MIMEData", "From: a\r\n\r\nhi");
	wbxml_addn_text(app, "Calendar:Body", "agenda");
	wbxml_addn_text(app, "Tasks:Body", "todo");
	wbxml_addn_text(app, "Contacts:Picture", "QUJD");
	wbxml_addn_opaque(app, "Email:Flag", "xyz", 3);
	wbxml_addn_text(root, "Status", "1");
	xml = wbxml_to_xml(root, WBXML_XML_PRETTY | WBXML_XML_LEAVE_OUT);
	assert_string_equal(
	    xml, "<Sync xmlns=\"AirSync:\">\n"
	         "  <ApplicationData>\n"
	         "    <Subject xmlns=\"Email:\">Lunch &lt;today&gt; &amp; more</Subject>\n"
	         "    <Body xmlns=\"AirSyncBase:\">\n"
	         "      <Type>1</Type>\n"
	         "      <Data>[15 bytes left out]</Data>\n"
	         "      <Preview>[10 bytes left out]</Preview>\n"
	         "    </Body>\n"
	         "    <Body xmlns=\"Email:\">[8 bytes left out]</Body>\n"
	         "    <MIMEData xmlns=\"Email:\">[13 bytes left out]</MIMEData>\n"
	         "    <Body xmlns=\"Calendar:\">[6 bytes left out]</Body>\n"
	         "    <Body xmlns=\"Tasks:\">[4 bytes left out]</Body>\n"
	         "    <Picture xmlns=\"Contacts:\">[4 bytes left out]</Picture>\n"
	         "    <Flag xmlns=\"Email:\">[3 bytes left out]</Flag>\n"
	         "  </ApplicationData>\n"
	         "  <Status>1</Status>\n"
	         "</Sync>\n");
	free(xml);
	/* Without the flag the contents are there (the flag is what leaves them out). */
	xml = wbxml_to_xml(root, 0);
	assert_non_null(strstr(xml, "the secret plan"));
	free(xml);
	wbxml_doc_free(&doc);

	/* SendMail (14.0+): the whole message is ComposeMail:Mime; passwords too. */
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "ComposeMail:SendMail");
	wbxml_addn_text(root, "ClientId", "42");
	wbxml_addn_opaque(root, "Mime", "Subject: x\r\n\r\nbody", 19);
	xml = wbxml_to_xml(root, WBXML_XML_LEAVE_OUT);
	assert_string_equal(xml, "<SendMail xmlns=\"ComposeMail:\"><ClientId>42</ClientId>"
	                         "<Mime>[19 bytes left out]</Mime></SendMail>");
	free(xml);
	wbxml_doc_free(&doc);
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "Settings:Settings");
	wbxml_addn_text(wbxml_addn(wbxml_addn(root, "DevicePassword"), "Set"), "Password",
	                "hunter2");
	xml = wbxml_to_xml(root, WBXML_XML_LEAVE_OUT);
	assert_null(strstr(xml, "hunter2"));
	assert_non_null(strstr(xml, "<Password>[7 bytes left out]</Password>"));
	free(xml);
	wbxml_doc_free(&doc);
}

/* Namespaces, escaping, invalid bytes, opaque data, redaction, indentation. */
static void
test_xml(void **state)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *root, *app, *n;
	char *xml;

	(void)state;
	root = wbxml_addn_root(doc, "AirSync:Sync");
	app = wbxml_addn(root, "ApplicationData");
	wbxml_addn_text(app, "Email:Subject",
	                "a<b>&\"c\" \xC3\xBC \xFF\x01\xED\xA0\x80 \xF0\x9F\x98\x80");
	n = wbxml_addn(app, "Email:Flag");
	wbxml_addn_opaque(app, "AirSyncBase:Data", "Hello", 5);
	wbxml_addn_text(root, "Status", "1");
	(void)n;
	xml = wbxml_to_xml(root, 0);
	assert_string_equal(xml,
	                    "<Sync xmlns=\"AirSync:\"><ApplicationData>"
	                    "<Subject xmlns=\"Email:\">a&lt;b&gt;&amp;&quot;c&quot; \xC3\xBC "
	                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
	                    "\xF0\x9F\x98\x80</Subject>"
	                    "<Flag xmlns=\"Email:\"/><Data xmlns=\"AirSyncBase:\">SGVsbG8=</Data>"
	                    "</ApplicationData><Status>1</Status></Sync>");
	free(xml);
	xml = wbxml_to_xml(app->first_child, 0);
	assert_non_null(strstr(xml, "<Subject xmlns=\"Email:\">"));
	free(xml);
	xml = wbxml_to_xml(root, WBXML_XML_PRETTY | WBXML_XML_REDACT);
	assert_string_equal(xml,
	                    "<Sync xmlns=\"AirSync:\">\n"
	                    "  <ApplicationData>\n"
	                    "    <Subject xmlns=\"Email:\">a&lt;b&gt;&amp;&quot;c&quot; \xC3\xBC "
	                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
	                    "\xF0\x9F\x98\x80</Subject>\n"
	                    "    <Flag xmlns=\"Email:\"/>\n"
	                    "    <Data xmlns=\"AirSyncBase:\">[5 bytes hidden]</Data>\n"
	                    "  </ApplicationData>\n"
	                    "  <Status>1</Status>\n"
	                    "</Sync>\n");
	free(xml);
	wbxml_doc_free(&doc);

	/* Passwords are hidden by WBXML_XML_REDACT only. */
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "Settings:Settings");
	wbxml_addn_text(wbxml_addn(wbxml_addn(root, "DevicePassword"), "Set"), "Password",
	                "hunter2");
	xml = wbxml_to_xml(root, WBXML_XML_REDACT);
	assert_null(strstr(xml, "hunter2"));
	assert_non_null(strstr(xml, "<Password>[7 bytes hidden]</Password>"));
	free(xml);
	xml = wbxml_to_xml(root, WBXML_XML_HEADER);
	assert_non_null(strstr(xml, "hunter2"));
	assert_true(strncmp(xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><!DOCTYPE ActiveSync",
	                    55) == 0);
	free(xml);
	wbxml_doc_free(&doc);

	/* Base64 padding, all three forms. */
	doc = wbxml_doc_new();
	root = wbxml_addn_root(doc, "ItemOperations:ItemOperations");
	wbxml_addn_opaque(root, "Data", "a", 1);
	wbxml_addn_opaque(root, "Data", "ab", 2);
	wbxml_addn_opaque(root, "Data", "abc", 3);
	wbxml_addn_opaque(root, "Data", "", 0);
	xml = wbxml_to_xml(root, 0);
	assert_string_equal(xml,
	                    "<ItemOperations xmlns=\"ItemOperations:\"><Data>YQ==</Data>"
	                    "<Data>YWI=</Data><Data>YWJj</Data><Data></Data></ItemOperations>");
	free(xml);
	wbxml_doc_free(&doc);

	xml = wbxml_to_xml(NULL, 0);
	assert_string_equal(xml, "");
	free(xml);
}

/* ---- Tables ---- */

/* Every page: a unique non-empty name; every token: a unique non-empty name; lookups agree. */
static void
test_tables(void **state)
{
	size_t total = 0;

	(void)state;
	for (unsigned p = 0; p < WBXML_NPAGES; p++) {
		const struct wbxml_codepage *cp = &wbxml_codepages[p];
		size_t count = 0;

		assert_non_null(cp->name);
		assert_true(cp->name[0] != '\0');
		assert_non_null(cp->tags);
		assert_string_equal(wbxml_page_name(p), cp->name);
		assert_int_equal(wbxml_page_by_name(cp->name, strlen(cp->name)), (int)p);
		for (unsigned q = 0; q < p; q++)
			assert_string_not_equal(cp->name, wbxml_codepages[q].name);
		for (unsigned t = 0; t < 5; t++)
			assert_null(cp->tags[t]);
		for (unsigned t = 5; t < WBXML_NTOKENS; t++) {
			const char *n = cp->tags[t];
			unsigned page, token;
			char q[96];

			if (n == NULL)
				continue;
			count++;
			assert_true(n[0] != '\0');
			for (const char *c = n; *c; c++)
				assert_true((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
				            (*c >= '0' && *c <= '9') || *c == '_');
			for (unsigned u = 5; u < t; u++)
				if (cp->tags[u] != NULL)
					assert_string_not_equal(n, cp->tags[u]);
			assert_int_equal(wbxml_lookup(n, p, &page, &token), 0);
			assert_int_equal(page, p);
			assert_int_equal(token, t);
			snprintf(q, sizeof(q), "%s:%s", cp->name, n);
			assert_int_equal(wbxml_lookup(q, 0, &page, &token), 0);
			assert_int_equal(page, p);
			assert_int_equal(token, t);
			assert_string_equal(wbxml_tag_name(p, t), n);
		}
		assert_true(count >= 5);
		total += count;
	}
	assert_int_equal(total, 644);
	assert_null(wbxml_page_name(WBXML_NPAGES));
	assert_null(wbxml_tag_name(WBXML_NPAGES, 5));
	assert_null(wbxml_tag_name(0, 64));
	assert_int_equal(wbxml_page_by_name("Nope", 4), -1);
	{
		unsigned p, t;

		assert_int_equal(wbxml_lookup("Nope:Sync", 0, &p, &t), -1);
		assert_int_equal(wbxml_lookup("AirSync:Nope", 0, &p, &t), -1);
		assert_int_equal(wbxml_lookup("Sync", WBXML_NPAGES, &p, &t), -1);
		assert_int_equal(wbxml_lookup(NULL, 0, &p, &t), -1);
	}
}

/* The tokens eas-protocol.md lists, and the page names EAS uses. */
static void
test_tables_brief(void **state)
{
	static const struct {
		const char *qname;
		unsigned page, token;
	} want[] = {
	    {"AirSync:Sync", 0, 0x05},
	    {"AirSync:Responses", 0, 0x06},
	    {"AirSync:Add", 0, 0x07},
	    {"AirSync:Change", 0, 0x08},
	    {"AirSync:Delete", 0, 0x09},
	    {"AirSync:Fetch", 0, 0x0A},
	    {"AirSync:SyncKey", 0, 0x0B},
	    {"AirSync:ClientId", 0, 0x0C},
	    {"AirSync:ServerId", 0, 0x0D},
	    {"AirSync:Status", 0, 0x0E},
	    {"AirSync:Collection", 0, 0x0F},
	    {"AirSync:Class", 0, 0x10},
	    {"AirSync:CollectionId", 0, 0x12},
	    {"AirSync:GetChanges", 0, 0x13},
	    {"AirSync:MoreAvailable", 0, 0x14},
	    {"AirSync:WindowSize", 0, 0x15},
	    {"AirSync:Commands", 0, 0x16},
	    {"AirSync:Options", 0, 0x17},
	    {"AirSync:FilterType", 0, 0x18},
	    {"AirSync:Collections", 0, 0x1C},
	    {"AirSync:ApplicationData", 0, 0x1D},
	    {"AirSync:DeletesAsMoves", 0, 0x1E},
	    {"AirSync:Wait", 0, 0x24},
	    {"AirSync:Partial", 0, 0x26},
	    {"AirSync:HeartbeatInterval", 0, 0x29},
	    {"Email:DateReceived", 2, 0x0F},
	    {"Email:DisplayTo", 2, 0x11},
	    {"Email:Importance", 2, 0x12},
	    {"Email:MessageClass", 2, 0x13},
	    {"Email:Subject", 2, 0x14},
	    {"Email:Read", 2, 0x15},
	    {"Email:To", 2, 0x16},
	    {"Email:Cc", 2, 0x17},
	    {"Email:From", 2, 0x18},
	    {"Email:ReplyTo", 2, 0x19},
	    {"Email:InternetCPID", 2, 0x39},
	    {"Email:Flag", 2, 0x3A},
	    {"Email:ContentClass", 2, 0x3C},
	    {"GetItemEstimate:GetItemEstimate", 6, 0x05},
	    {"GetItemEstimate:Collections", 6, 0x07},
	    {"GetItemEstimate:Collection", 6, 0x08},
	    {"GetItemEstimate:CollectionId", 6, 0x0A},
	    {"GetItemEstimate:Estimate", 6, 0x0C},
	    {"GetItemEstimate:Response", 6, 0x0D},
	    {"GetItemEstimate:Status", 6, 0x0E},
	    {"FolderHierarchy:DisplayName", 7, 0x07},
	    {"FolderHierarchy:ServerId", 7, 0x08},
	    {"FolderHierarchy:ParentId", 7, 0x09},
	    {"FolderHierarchy:Type", 7, 0x0A},
	    {"FolderHierarchy:Status", 7, 0x0C},
	    {"FolderHierarchy:Changes", 7, 0x0E},
	    {"FolderHierarchy:Add", 7, 0x0F},
	    {"FolderHierarchy:Delete", 7, 0x10},
	    {"FolderHierarchy:Update", 7, 0x11},
	    {"FolderHierarchy:SyncKey", 7, 0x12},
	    {"FolderHierarchy:FolderSync", 7, 0x16},
	    {"FolderHierarchy:Count", 7, 0x17},
	    {"Ping:Ping", 13, 0x05},
	    {"Ping:Status", 13, 0x07},
	    {"Ping:HeartbeatInterval", 13, 0x08},
	    {"Ping:Folders", 13, 0x09},
	    {"Ping:Folder", 13, 0x0A},
	    {"Ping:Id", 13, 0x0B},
	    {"Ping:Class", 13, 0x0C},
	    {"Ping:MaxFolders", 13, 0x0D},
	    {"Provision:Provision", 14, 0x05},
	    {"Provision:Policies", 14, 0x06},
	    {"Provision:Policy", 14, 0x07},
	    {"Provision:PolicyType", 14, 0x08},
	    {"Provision:PolicyKey", 14, 0x09},
	    {"Provision:Data", 14, 0x0A},
	    {"Provision:Status", 14, 0x0B},
	    {"Provision:RemoteWipe", 14, 0x0C},
	    {"Provision:EASProvisionDoc", 14, 0x0D},
	    {"Provision:DevicePasswordEnabled", 14, 0x0E},
	    {"AirSyncBase:BodyPreference", 17, 0x05},
	    {"AirSyncBase:Type", 17, 0x06},
	    {"AirSyncBase:TruncationSize", 17, 0x07},
	    {"AirSyncBase:Body", 17, 0x0A},
	    {"AirSyncBase:Data", 17, 0x0B},
	    {"AirSyncBase:EstimatedDataSize", 17, 0x0C},
	    {"AirSyncBase:Truncated", 17, 0x0D},
	    {"AirSyncBase:NativeBodyType", 17, 0x16},
	    {"AirSyncBase:Preview", 17, 0x18},
	    {"Settings:Settings", 18, 0x05},
	    {"Settings:Status", 18, 0x06},
	    {"Settings:Get", 18, 0x07},
	    {"Settings:Set", 18, 0x08},
	    {"Settings:DeviceInformation", 18, 0x16},
	    {"Settings:Model", 18, 0x17},
	    {"Settings:IMEI", 18, 0x18},
	    {"Settings:FriendlyName", 18, 0x19},
	    {"Settings:OS", 18, 0x1A},
	    {"Settings:OSLanguage", 18, 0x1B},
	    {"Settings:PhoneNumber", 18, 0x1C},
	    {"Settings:UserInformation", 18, 0x1D},
	    {"Settings:EmailAddresses", 18, 0x1E},
	    {"Settings:SmtpAddress", 18, 0x1F},
	    {"Settings:UserAgent", 18, 0x20},
	    {"Settings:EnableOutboundSMS", 18, 0x21},
	    {"Settings:MobileOperator", 18, 0x22},
	    {"Settings:RightsManagementInformation", 18, 0x2B},
	    {"ComposeMail:SendMail", 21, 0x05},
	    {"ComposeMail:Mime", 21, 0x10},
	    {"RightsManagement:Owner", 24, 0x12},
	    {"Find:Find", 25, 0x05},
	    {"Find:GalSearchCriterion", 25, 0x19},
	    {"Find:Picture", 25, 0x22},
	    {"Provision:AccountOnlyRemoteWipe", 14, 0x3B},
	    {"MeetingResponse:ProposedEndTime", 8, 0x11},
	};
	static const char *const pages[WBXML_NPAGES] = {
	    "AirSync",
	    "Contacts",
	    "Email",
	    "AirNotify",
	    "Calendar",
	    "Move",
	    "GetItemEstimate",
	    "FolderHierarchy",
	    "MeetingResponse",
	    "Tasks",
	    "ResolveRecipients",
	    "ValidateCert",
	    "Contacts2",
	    "Ping",
	    "Provision",
	    "Search",
	    "GAL",
	    "AirSyncBase",
	    "Settings",
	    "DocumentLibrary",
	    "ItemOperations",
	    "ComposeMail",
	    "Email2",
	    "Notes",
	    "RightsManagement",
	    "Find",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		unsigned p, t;

		if (wbxml_lookup(want[i].qname, 0, &p, &t) != 0)
			fail_msg("%s unknown", want[i].qname);
		if (p != want[i].page || t != want[i].token)
			fail_msg("%s is %u/0x%02X", want[i].qname, p, t);
	}
	for (unsigned p = 0; p < WBXML_NPAGES; p++)
		assert_string_equal(wbxml_page_name(p), pages[p]);
}

/* Every defined (page, token) decodes alone; every undefined one is an error. */
static void
test_tables_through_decoder(void **state)
{
	(void)state;
	for (unsigned p = 0; p < WBXML_NPAGES; p++) {
		for (unsigned t = 5; t < WBXML_NTOKENS; t++) {
			uint8_t buf[] = {HDR, 0x00, (uint8_t)p, (uint8_t)t};
			uint8_t canon[] = {HDR, (uint8_t)t};
			struct wbxml_doc *doc = NULL;
			enum wbxml_err rc = wbxml_decode(buf, sizeof(buf), NULL, &doc, NULL);

			if (wbxml_tag_name(p, t) != NULL) {
				assert_int_equal(rc, WBXML_OK);
				assert_true(wbxml_is(wbxml_doc_root(doc), p, t));
				if (p == 0)
					expect_bytes(doc, canon, sizeof(canon));
				else
					expect_bytes(doc, buf, sizeof(buf));
				wbxml_doc_free(&doc);
			} else {
				assert_int_equal(rc, WBXML_ERR_UNKNOWN_TOKEN);
			}
		}
	}
}

/* The qualified-name helper used in messages. */
static void
test_qname(void **state)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *root = wbxml_add_root(doc, WBXML_PAGE_SETTINGS, 0x17);
	char buf[64], tiny[4];

	(void)state;
	assert_string_equal(wbxml_qname(root, buf, sizeof(buf)), "Settings:Model");
	assert_string_equal(wbxml_qname(root, tiny, sizeof(tiny)), "Set");
	assert_string_equal(wbxml_qname(NULL, buf, sizeof(buf)), "(none)");
	assert_ptr_equal(wbxml_qname(root, buf, 0), buf);
	assert_false(wbxml_is(NULL, 0, 5));
	assert_null(wbxml_text(NULL));
	assert_null(wbxml_find(NULL, "x"));
	assert_null(wbxml_find(root, NULL));
	assert_null(wbxml_doc_root(NULL));
	assert_int_equal(wbxml_doc_count(NULL), 0);
	wbxml_doc_free(&doc);
}

/* ---- The one-pass check (wbxml_check.c) ---- */

/* One malformed document, the rule it breaks and where the check must stop. */
struct bad_doc {
	const char *name;
	const uint8_t *buf;
	size_t len;
	enum wbxml_err code;
	size_t errpos;
	const char *why;
};

#define BAD(name, code, pos, why, ...)                                                             \
	{                                                                                          \
		name, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}),      \
		    code, pos, why                                                                 \
	}

/* One row a rule; the decoder must refuse each one the same way (code and offset). */
static const struct bad_doc bad_docs[] = {
    /* Header. */
    BAD("version 1.1", WBXML_ERR_BAD_HEADER, 0, "WBXML version is not 1.3", 0x01, 0x01, 0x6A, 0x00,
        0x45, 0x01),
    BAD("version 1.2", WBXML_ERR_BAD_HEADER, 0, "WBXML version is not 1.3", 0x02, 0x01, 0x6A, 0x00,
        0x45, 0x01),
    BAD("public id 2", WBXML_ERR_BAD_HEADER, 1, "public identifier is not 1", 0x03, 0x02, 0x6A,
        0x00, 0x45, 0x01),
    BAD("public id by string table", WBXML_ERR_BAD_HEADER, 1, "public identifier is not 1", 0x03,
        0x00, 0x00, 0x6A, 0x00, 0x45, 0x01),
    BAD("charset US-ASCII", WBXML_ERR_BAD_HEADER, 2, "charset is not UTF-8 (106)", 0x03, 0x01, 0x03,
        0x00, 0x45, 0x01),
    BAD("string table", WBXML_ERR_BAD_HEADER, 3, "string table not empty", 0x03, 0x01, 0x6A, 0x02,
        'a', 0x00, 0x45, 0x01),
    BAD("string table past the end", WBXML_ERR_BAD_HEADER, 3, "string table not empty", 0x03, 0x01,
        0x6A, 0x7F),
    BAD("header cut", WBXML_ERR_TRUNCATED, 2, "input ends inside a multi-byte integer", 0x03, 0x01),
    /* Multi-byte integers. */
    BAD("mb_u_int32 of 6 bytes", WBXML_ERR_MBUINT, 2, "multi-byte integer longer than 32 bits",
        0x03, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x6A),
    BAD("mb_u_int32 over 32 bits", WBXML_ERR_MBUINT, 6, "multi-byte integer longer than 32 bits",
        HDR, 0x4B, 0xC3, 0x90, 0x80, 0x80, 0x80, 0x00, 0x01),
    BAD("mb_u_int32 cut", WBXML_ERR_TRUNCATED, 7, "input ends inside a multi-byte integer", HDR,
        0x4B, 0xC3, 0x81),
    /* Pages and tags. */
    BAD("page 26", WBXML_ERR_UNKNOWN_PAGE, 4, "SWITCH_PAGE to an undefined code page", HDR, 0x00,
        0x1A, 0x45, 0x01),
    BAD("page 255 inside", WBXML_ERR_UNKNOWN_PAGE, 5, "SWITCH_PAGE to an undefined code page", HDR,
        0x45, 0x00, 0xFF, 0x01),
    BAD("SWITCH_PAGE cut", WBXML_ERR_TRUNCATED, 6, "input ends inside SWITCH_PAGE", HDR, 0x45,
        0x00),
    BAD("AirSync 0x2A", WBXML_ERR_UNKNOWN_TOKEN, 5, "tag not defined on the current code page", HDR,
        0x45, 0x2A, 0x01),
    BAD("FolderHierarchy 0x3F", WBXML_ERR_UNKNOWN_TOKEN, 7,
        "tag not defined on the current code page", HDR, 0x00, 0x07, 0x56, 0x7F, 0x01, 0x01),
    BAD("AirSyncBase gap 0x09", WBXML_ERR_UNKNOWN_TOKEN, 6,
        "tag not defined on the current code page", HDR, 0x00, 0x11, 0x09),
    BAD("attributes on the root", WBXML_ERR_ATTRIBUTES, 4, "tag with attributes", HDR, 0xC5, 0x01,
        0x01),
    BAD("attributes inside", WBXML_ERR_ATTRIBUTES, 5, "tag with attributes", HDR, 0x45, 0x8B, 0x01,
        0x01),
    /* Structure. */
    BAD("END first", WBXML_ERR_UNEXPECTED, 4, "END without an open element", HDR, 0x01),
    BAD("END after the root", WBXML_ERR_UNEXPECTED, 6, "END without an open element", HDR, 0x45,
        0x01, 0x01),
    BAD("still open", WBXML_ERR_TRUNCATED, 6, "elements still open at the end", HDR, 0x45, 0x5C),
    BAD("STR_I before the root", WBXML_ERR_UNEXPECTED, 4, "content before the root element", HDR,
        0x03, 'a', 0x00, 0x45, 0x01),
    BAD("OPAQUE before the root", WBXML_ERR_UNEXPECTED, 4, "content before the root element", HDR,
        0xC3, 0x00, 0x45, 0x01),
    BAD("STR_I after the root", WBXML_ERR_TRAILING, 6, "content after the root element", HDR, 0x45,
        0x01, 0x03, 'a', 0x00),
    BAD("OPAQUE after the root", WBXML_ERR_TRAILING, 5, "content after the root element", HDR, 0x05,
        0xC3, 0x01, 'x'),
    BAD("two roots", WBXML_ERR_TRAILING, 5, "element after the root element", HDR, 0x05, 0x05),
    BAD("two roots with content", WBXML_ERR_TRAILING, 6, "element after the root element", HDR,
        0x45, 0x01, 0x45, 0x01),
    BAD("SWITCH_PAGE after the root", WBXML_ERR_TRAILING, 6, "SWITCH_PAGE after the root element",
        HDR, 0x45, 0x01, 0x00, 0x01),
    BAD("no root", WBXML_ERR_EMPTY, 4, "no root element", HDR),
    BAD("only a page switch", WBXML_ERR_EMPTY, 6, "no root element", HDR, 0x00, 0x07),
    BAD("text then child", WBXML_ERR_MIXED, 8,
        "element inside an element holding text or opaque data", HDR, 0x45, 0x03, 'a', 0x00, 0x0B,
        0x01),
    BAD("child then text", WBXML_ERR_MIXED, 6, "text or opaque data mixed with other content", HDR,
        0x45, 0x0B, 0x03, 'a', 0x00, 0x01),
    BAD("closed child then opaque", WBXML_ERR_MIXED, 7,
        "text or opaque data mixed with other content", HDR, 0x45, 0x4B, 0x01, 0xC3, 0x00, 0x01),
    BAD("text then opaque", WBXML_ERR_MIXED, 8, "text or opaque data mixed with other content", HDR,
        0x4B, 0x03, 'a', 0x00, 0xC3, 0x00, 0x01),
    /* Strings and opaque data. */
    BAD("STR_I without NUL", WBXML_ERR_UNTERMINATED_STR, 5, "STR_I without its terminating NUL",
        HDR, 0x4B, 0x03, 'a', 'b'),
    BAD("OPAQUE past the end", WBXML_ERR_TRUNCATED, 9, "OPAQUE length past the end of the input",
        HDR, 0x4B, 0xC3, 0x05, 'a', 'b'),
    BAD("OPAQUE of 4 GiB", WBXML_ERR_TRUNCATED, 12, "OPAQUE length past the end of the input", HDR,
        0x4B, 0xC3, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F, 0x01),
    /* Global tokens ActiveSync does not use. */
    BAD("STR_T", WBXML_ERR_UNSUPPORTED, 5, "STR_T without a string table", HDR, 0x4B, 0x83, 0x00,
        0x01),
    BAD("STR_T before the root", WBXML_ERR_UNSUPPORTED, 4, "STR_T without a string table", HDR,
        0x83, 0x00),
    BAD("ENTITY", WBXML_ERR_UNSUPPORTED, 5, "ENTITY token not used by ActiveSync", HDR, 0x4B, 0x02,
        0x41, 0x01),
    BAD("ENTITY before the root", WBXML_ERR_UNSUPPORTED, 4, "ENTITY token not used by ActiveSync",
        HDR, 0x02, 0x41, 0x45, 0x01),
    BAD("PI", WBXML_ERR_UNSUPPORTED, 5, "PI token not used by ActiveSync", HDR, 0x45, 0x43, 0x01),
    BAD("LITERAL", WBXML_ERR_UNSUPPORTED, 5, "LITERAL token not used by ActiveSync", HDR, 0x45,
        0x04, 0x00),
    BAD("LITERAL_C", WBXML_ERR_UNSUPPORTED, 5, "LITERAL token not used by ActiveSync", HDR, 0x45,
        0x44, 0x00),
    BAD("LITERAL_A", WBXML_ERR_UNSUPPORTED, 5, "LITERAL token not used by ActiveSync", HDR, 0x45,
        0x84, 0x00),
    BAD("LITERAL_AC", WBXML_ERR_UNSUPPORTED, 5, "LITERAL token not used by ActiveSync", HDR, 0x45,
        0xC4, 0x00),
    BAD("EXT_I_0", WBXML_ERR_EXTENSION, 5, "EXT token not used by ActiveSync", HDR, 0x45, 0x40, 'a',
        0x00, 0x01),
    BAD("EXT_T_1", WBXML_ERR_EXTENSION, 5, "EXT token not used by ActiveSync", HDR, 0x45, 0x81,
        0x00, 0x01),
    BAD("EXT_2", WBXML_ERR_EXTENSION, 5, "EXT token not used by ActiveSync", HDR, 0x45, 0xC2, 0x01),
};

/* Accepted forms beyond the corpus: what the decoder takes, the check must take too. */
static const struct bad_doc good_docs[] = {
    BAD("empty root", WBXML_OK, 0, NULL, HDR, 0x05),
    BAD("split strings", WBXML_OK, 0, NULL, HDR, 0x4B, 0x03, 'a', 0x00, 0x03, 0x00, 0x01),
    BAD("split opaque", WBXML_OK, 0, NULL, HDR, 0x4B, 0xC3, 0x01, 'x', 0xC3, 0x80, 0x01, 'y', 0x01),
    BAD("empty content", WBXML_OK, 0, NULL, HDR, 0x45, 0x4B, 0x01, 0x01),
    BAD("redundant switches", WBXML_OK, 0, NULL, HDR, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x45,
        0x00, 0x00, 0x0B, 0x01),
    BAD("switch before END", WBXML_OK, 0, NULL, HDR, 0x45, 0x00, 0x19, 0x01),
    BAD("Find page", WBXML_OK, 0, NULL, HDR, 0x00, 0x19, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01),
    BAD("mb_u_int32 in 5 bytes", WBXML_OK, 0, NULL, 0x03, 0x80, 0x80, 0x80, 0x80, 0x01, 0x6A, 0x00,
        0x05),
    BAD("OPAQUE with NUL", WBXML_OK, 0, NULL, HDR, 0x4B, 0xC3, 0x02, 0x00, 0x01, 0x01),
    /* Text is not checked for UTF-8: the decoder keeps the bytes as they are. */
    BAD("STR_I not UTF-8", WBXML_OK, 0, NULL, HDR, 0x4B, 0x03, 0xFF, 0xC0, 0x80, 0x00, 0x01),
};

/* Compare the check with the decoder on one input: same code, same offset. */
static void
check_like_decoder(const char *name, const uint8_t *buf, size_t len)
{
	struct wbxml_doc *doc = NULL;
	struct wbxml_error err;
	const char *why = NULL;
	size_t pos = 0;
	enum wbxml_err rc = wbxml_decode(buf, len, NULL, &doc, &err);
	enum wbxml_err crc = wbxml_check_limits(buf, len, NULL, &pos, &why);

	wbxml_doc_free(&doc);
	if (crc != rc || (rc != WBXML_OK && pos != err.offset))
		fail_msg("%s (%zu bytes): check says %d at %zu (%s), decoder %d at %zu (%s)", name,
		         len, crc, pos, why ? why : "-", rc, err.offset, err.msg);
	assert_int_equal(wbxml_check(buf, len, &pos, &why), rc == WBXML_OK ? 0 : -1);
}

/* Every rule: the check stops where and why expected, exactly as the decoder does. */
static void
test_check_rules(void **state)
{
	size_t pos;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		const struct bad_doc *b = &bad_docs[i];
		/* A copy of exactly len bytes, so that ASan sees any over-read. */
		uint8_t *p = xmalloc(b->len);

		memcpy(p, b->buf, b->len);
		pos = 999;
		why = NULL;
		if (wbxml_check(p, b->len, &pos, &why) != -1)
			fail_msg("%s: accepted", b->name);
		if (pos != b->errpos || why == NULL || strcmp(why, b->why) != 0)
			fail_msg("%s: refused at %zu (%s), expected %zu (%s)", b->name, pos,
			         why ? why : "-", b->errpos, b->why);
		assert_int_equal(wbxml_check_limits(p, b->len, NULL, &pos, &why), b->code);
		expect_error(p, b->len, NULL, b->code);
		check_like_decoder(b->name, p, b->len);
		free(p);
	}
	for (size_t i = 0; i < sizeof(good_docs) / sizeof(good_docs[0]); i++) {
		pos = 999;
		why = NULL;
		if (wbxml_check(good_docs[i].buf, good_docs[i].len, &pos, &why) != 0)
			fail_msg("%s: refused at %zu (%s)", good_docs[i].name, pos, why);
		assert_int_equal(pos, 999);
		assert_null(why);
		check_like_decoder(good_docs[i].name, good_docs[i].buf, good_docs[i].len);
	}
	/* Empty input, no buffer, and NULL for errpos and why. */
	assert_int_equal(wbxml_check((const uint8_t *)"", 0, &pos, &why), -1);
	assert_int_equal(pos, 0);
	assert_string_equal(why, "empty input");
	assert_int_equal(wbxml_check(NULL, 0, &pos, &why), -1);
	assert_int_equal(wbxml_check(NULL, 3, &pos, &why), -1);
	assert_string_equal(why, "no input buffer");
	assert_int_equal(wbxml_check(bad_docs[0].buf, bad_docs[0].len, NULL, NULL), -1);
	assert_int_equal(wbxml_check(good_docs[0].buf, good_docs[0].len, NULL, NULL), 0);
}

/* Depth, node and size limits: the decoder's defaults, and caller-set ones. */
static void
test_check_limits(void **state)
{
	size_t big = 4 + 1 + 100000 + 1;
	uint8_t deep[4 + 65 + 65], *buf = xmalloc(big);
	struct wbxml_limits lim = {0};
	const char *why;
	size_t n = 4, pos;

	(void)state;
	memcpy(deep, (uint8_t[]){HDR}, 4);
	for (int i = 0; i < 65; i++)
		deep[n++] = 0x5C; /* AirSync:Collections with content */
	for (int i = 0; i < 65; i++)
		deep[n++] = 0x01;
	assert_int_equal(wbxml_check(deep, n, &pos, &why), -1);
	assert_int_equal(pos, 4 + 64);
	assert_string_equal(why, "elements nested too deep");
	check_like_decoder("65 levels", deep, n);
	/* 64 levels are fine: the 65th opening and one END less. */
	memmove(deep + 4 + 64, deep + 4 + 65, 64);
	assert_int_equal(wbxml_check(deep, n - 2, &pos, &why), 0);
	check_like_decoder("64 levels", deep, n - 2);
	lim.max_depth = 3;
	assert_int_equal(wbxml_check_limits(deep, n - 2, &lim, &pos, &why), WBXML_ERR_DEPTH);
	assert_int_equal(pos, 7);
	lim.max_depth = 0;
	lim.max_nodes = 10;
	assert_int_equal(wbxml_check_limits(deep, n - 2, &lim, &pos, &why),
	                 WBXML_ERR_TOO_MANY_NODES);
	assert_int_equal(pos, 14);
	assert_string_equal(why, "too many elements");
	lim.max_nodes = 0;
	lim.max_input = n - 3;
	assert_int_equal(wbxml_check_limits(deep, n - 2, &lim, &pos, &why), WBXML_ERR_TOO_LARGE);
	assert_int_equal(pos, 0);
	assert_string_equal(why, "input larger than the limit");
	lim.max_input = n - 2;
	assert_int_equal(wbxml_check_limits(deep, n - 2, &lim, &pos, &why), WBXML_OK);

	/* 100,001 empty siblings pass the default node cap; 100,000 elements are fine. */
	memcpy(buf, (uint8_t[]){HDR}, 4);
	buf[4] = 0x5C;
	memset(buf + 5, 0x0B, 100000);
	buf[big - 1] = 0x01;
	assert_int_equal(wbxml_check(buf, big, &pos, &why), -1);
	assert_int_equal(pos, big - 1 - 1);
	check_like_decoder("100,001 elements", buf, big);
	buf[big - 2] = 0x01;
	assert_int_equal(wbxml_check(buf, big - 1, &pos, &why), 0);
	check_like_decoder("100,000 elements", buf, big - 1);
	free(buf);
}

/*
 * The property the gateway relies on, against wbxml_decode(): every corpus
 * document passes, and every truncation and every byte change of one (each
 * bit flipped, and each byte set to a global token or a tag) is accepted by
 * the check if and only if the decoder accepts it, with the same error code
 * and offset when both refuse.
 */
static void
test_check_corpus(void **state)
{
	static const uint8_t values[] = {0x00, 0x01, 0x03, 0x05, 0x45, 0x83, 0xC3, 0xC5, 0xFF};
	struct sample *s;
	size_t n = load_corpus(&s), refused = 0, accepted = 0;

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = xmalloc(s[i].len);
		const char *why = NULL;
		size_t pos = 0;

		if (wbxml_check(s[i].buf, s[i].len, &pos, &why) != 0)
			fail_msg("%s: refused at %zu (%s)", s[i].name, pos, why);
		for (size_t cut = 0; cut < s[i].len; cut++) {
			memcpy(p, s[i].buf, cut);
			check_like_decoder(s[i].name, p, cut);
			assert_int_equal(wbxml_check(p, cut, NULL, NULL), -1);
		}
		memcpy(p, s[i].buf, s[i].len);
		for (size_t at = 0; at < s[i].len; at++) {
			uint8_t orig = p[at];

			for (size_t v = 0; v < 8 + sizeof(values); v++) {
				p[at] = v < 8 ? orig ^ (uint8_t)(1u << v) : values[v - 8];
				check_like_decoder(s[i].name, p, s[i].len);
				if (wbxml_check(p, s[i].len, NULL, NULL) == 0)
					accepted++;
				else
					refused++;
			}
			p[at] = orig;
		}
		free(p);
	}
	/* Both verdicts are exercised: flips to other defined tags or text still decode. */
	assert_true(accepted > 1000);
	assert_true(refused > 1000);
	free_corpus(s, n);
}

/* Run every test. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_brief_vectors),
	    cmocka_unit_test(test_find_page),
	    cmocka_unit_test(test_corpus_roundtrip),
	    cmocka_unit_test(test_corpus_truncation),
	    cmocka_unit_test(test_find_device_information),
	    cmocka_unit_test(test_err_header),
	    cmocka_unit_test(test_err_unknown),
	    cmocka_unit_test(test_err_limits),
	    cmocka_unit_test(test_err_default_node_cap),
	    cmocka_unit_test(test_err_strings_and_integers),
	    cmocka_unit_test(test_err_tokens),
	    cmocka_unit_test(test_err_structure),
	    cmocka_unit_test(test_noncanonical_forms),
	    cmocka_unit_test(test_opaque_sizes),
	    cmocka_unit_test(test_builder_errors),
	    cmocka_unit_test(test_builder_provision),
	    cmocka_unit_test(test_xml),
	    cmocka_unit_test(test_xml_leave_out),
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_tables_brief),
	    cmocka_unit_test(test_tables_through_decoder),
	    cmocka_unit_test(test_qname),
	    cmocka_unit_test(test_check_rules),
	    cmocka_unit_test(test_check_limits),
	    cmocka_unit_test(test_check_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
