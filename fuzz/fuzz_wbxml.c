/*
 * fuzz_wbxml.c: libFuzzer target over the WBXML codec.
 *
 * Each input is decoded with small limits (so that the depth and node caps
 * are reached too). A document that decodes is rendered as XML, looked up,
 * re-encoded, decoded again and compared node by node with the first tree:
 * decode(encode(decode(x))) must equal decode(x), and encoding that second
 * tree must give the same bytes again (the encoder is canonical).
 *
 * The one-pass check (wbxml_check_limits, src/eas/wbxml_check.c) must agree
 * with the decoder (wbxml_decode) on every input: both accept, or both refuse
 * with the same error code at the same offset, with the fuzz limits and with
 * the default ones (wbxml_check, what the gateway calls).
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * every file of the directories (or files) named on the command line, every
 * truncation of each and every single-bit flip of each, through the same
 * function: the corpus replay test of the normal build.
 */
#include "eas/wbxml.h"
#include "replay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compare two trees: same shape, pages, tokens, flags and content. */
static int
same_tree(const struct wbxml_node *a, const struct wbxml_node *b)
{
	for (; a != NULL && b != NULL; a = a->next, b = b->next) {
		if (a->page != b->page || a->token != b->token || a->flags != b->flags ||
		    a->len != b->len || strcmp(a->name, b->name) != 0)
			return 0;
		if (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)
			return 0;
		if (!same_tree(a->first_child, b->first_child))
			return 0;
	}
	return a == NULL && b == NULL;
}

/*
 * The one-pass check against the decoder, with the given limits: same verdict,
 * and on a refusal the same code and offset and a reason. Returns the verdict.
 */
static enum wbxml_err
check_agrees(const uint8_t *data, size_t size, const struct wbxml_limits *lim)
{
	struct wbxml_doc *doc = NULL;
	struct wbxml_error err;
	enum wbxml_err rc, crc;
	const char *why = NULL;
	size_t pos = (size_t)-1;

	crc = wbxml_check_limits(data, size, lim, &pos, &why);
	rc = wbxml_decode(data, size, lim, &doc, &err);
	wbxml_doc_free(&doc);
	if (crc != rc)
		abort();
	if (rc != WBXML_OK && (pos != err.offset || why == NULL || why[0] == '\0'))
		abort();
	if (lim == NULL && (wbxml_check(data, size, NULL, NULL) == 0) != (rc == WBXML_OK))
		abort();
	return rc;
}

/* One input: check, decode, render, look up, re-encode, decode again, compare. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wbxml_limits lim = {.max_input = 1 << 20, .max_depth = 32, .max_nodes = 4096};
	struct wbxml_doc *doc = NULL, *doc2 = NULL;
	struct wbxml_error err;
	uint8_t *out = NULL, *out2 = NULL;
	size_t len, len2;
	char *xml;
	enum wbxml_err crc;

	(void)check_agrees(data, size, NULL);
	crc = check_agrees(data, size, &lim);
	if (wbxml_decode(data, size, &lim, &doc, &err) != WBXML_OK) {
		if (doc != NULL || err.msg[0] == '\0' || err.code == WBXML_OK || crc != err.code)
			abort();
		return 0;
	}
	xml = wbxml_to_xml(wbxml_doc_root(doc), WBXML_XML_PRETTY | WBXML_XML_REDACT);
	free(xml);
	(void)wbxml_find(wbxml_doc_root(doc), "AirSync:Collections/Collection/AirSync:SyncKey");
	if (wbxml_encode(doc, &out, &len, &err) != WBXML_OK)
		abort();
	if (len > size)
		abort(); /* canonical form is never longer than what decoded */
	if (wbxml_decode(out, len, &lim, &doc2, &err) != WBXML_OK)
		abort();
	if (!same_tree(wbxml_doc_root(doc), wbxml_doc_root(doc2)))
		abort();
	if (wbxml_encode(doc2, &out2, &len2, &err) != WBXML_OK || len2 != len ||
	    memcmp(out, out2, len) != 0)
		abort();
	free(out);
	free(out2);
	wbxml_doc_free(&doc);
	wbxml_doc_free(&doc2);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
static bool
wbxml_wants(const char *name)
{
	return replay_suffix(name, ".wbxml");
}

/* A file, each of its prefixes and each of its single-bit flips. */
static void
wbxml_input(const char *name, const uint8_t *data, size_t size)
{
	uint8_t *copy;

	(void)name;
	for (size_t i = 0; i <= size; i++)
		LLVMFuzzerTestOneInput(data, i);
	if (size == 0 || (copy = malloc(size)) == NULL)
		return;
	memcpy(copy, data, size);
	for (size_t i = 0; i < size; i++) {
		for (int bit = 0; bit < 8; bit++) {
			copy[i] ^= (uint8_t)(1u << bit);
			LLVMFuzzerTestOneInput(copy, size);
			copy[i] ^= (uint8_t)(1u << bit);
		}
	}
	free(copy);
}

const struct replay_target replay_target = {
    .name = "fuzz_wbxml_replay", .wants = wbxml_wants, .input = wbxml_input};
#endif
