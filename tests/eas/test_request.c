/*
 * test_request.c: MS-ASHTTP request understanding (src/eas/request.c).
 *
 * The three base64 vectors of eas-protocol.md, truncated at every byte; plain
 * queries of every command; %-decoding; identity (DOMAIN\user, mismatch, no
 * credentials); bad base64; duplicates; caps; paths; OPTIONS; headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/b64.h"
#include "eas/request.h"
#include "lib/util.h"

#define EAS "/Microsoft-Server-ActiveSync"
/* "EXAMPLE\JDoe:s3cret" */
#define AUTH_JDOE "Basic RVhBTVBMRVxKRG9lOnMzY3JldA=="

static const char *const pass_prefixes[] = {"/autodiscover/", "/EWS/"};
static const struct eas_request_config cfg = {NULL, pass_prefixes, 2, NULL, NULL};

/* The three vectors of eas-protocol.md (from Horde's test suite and MS-ASHTTP). */
static const char vec1[] = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l";
static const char vec2[] = "oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==";
static const char vec3[] = "eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y";

static char errbuf[EAS_REQ_ERRBUF];

/* Parse with the given method, target and headers (NULL-terminated pairs). */
static enum eas_req_err
parse_h(const char *method, const char *target, struct eas_request **r, ...)
{
	struct eas_header h[16];
	size_t n = 0;
	va_list ap;
	const char *name;

	va_start(ap, r);
	while ((name = va_arg(ap, const char *)) != NULL && n < 16) {
		h[n] = (struct eas_header){.name = name, .value = va_arg(ap, const char *)};
		n++;
	}
	va_end(ap);
	return eas_request_parse(&cfg, method, target, h, n, r, errbuf, sizeof(errbuf));
}

/* A POST with the jdoe credentials. */
static enum eas_req_err
post(const char *target, struct eas_request **r)
{
	return parse_h("POST", target, r, "Authorization", AUTH_JDOE, NULL);
}

/* Standard base64 of b[0..n), into out. */
static void
b64enc(const unsigned char *b, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)b[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)b[i + 1] << 8;
		if (i + 2 < n)
			v |= b[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

/* POST the base64 encoding of b[0..n) as the query. */
static enum eas_req_err
post_bytes(const unsigned char *b, size_t n, struct eas_request **r)
{
	char target[1024];

	snprintf(target, sizeof(target), EAS "?");
	b64enc(b, n, target + strlen(target));
	return post(target, r);
}

/* Vector 1: the MS-ASHTTP example. Command byte 0x00 is Sync (see report). */
static void
test_vector1(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post(EAS "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", &r), EAS_REQ_OK);
	assert_int_equal(r->query_form, EAS_QUERY_BASE64);
	assert_string_equal(r->protocol_version, "14.0");
	assert_int_equal(r->cmd, EAS_CMD_SYNC);
	assert_true(r->has_locale);
	assert_int_equal(r->locale, 0x0409);
	/* The DeviceId bytes are "v140Device"; rendered as upper-case hex. */
	assert_string_equal(r->device_id, "76313430446576696365");
	assert_false(r->has_policy_key);
	assert_string_equal(r->device_type, "SmartPhone");
	assert_null(r->user);
	assert_int_equal(r->n_extra, 0);
	eas_request_free(&r);
	assert_null(r);
}

/* Vector 2: a 16.0 Settings with a policy key and an empty Options byte. */
static void
test_vector2(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post(EAS "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA==", &r),
	                 EAS_REQ_OK);
	assert_string_equal(r->protocol_version, "16.0");
	assert_int_equal(r->cmd, EAS_CMD_SETTINGS);
	assert_int_equal(r->locale, 1033);
	/* "Nine2EC7EC0BB54D" is printable, yet rendered as hex like Horde does. */
	assert_string_equal(r->device_id, "4E696E65324543374543304242353444");
	assert_true(r->has_policy_key);
	assert_int_equal(r->policy_key, 1655081217u);
	assert_string_equal(r->device_type, "Android");
	assert_false(r->save_in_sent);
	assert_false(r->accept_multipart);
	eas_request_free(&r);

	/* The same without its padding. */
	assert_int_equal(post(EAS "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA", &r),
	                 EAS_REQ_OK);
	assert_int_equal(r->policy_key, 1655081217u);
	eas_request_free(&r);
}

/* Vector 3: a 12.1 SmartForward with a binary DeviceId and parameters. */
static void
test_vector3(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(
	    post(EAS "?eQIJBBCuTs0Z9ZK6Vldwb/dM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y", &r),
	    EAS_REQ_OK);
	assert_string_equal(r->protocol_version, "12.1");
	assert_int_equal(r->cmd, EAS_CMD_SMARTFORWARD);
	assert_int_equal(r->locale, 1033);
	assert_string_equal(r->device_id, "AE4ECD19F592BA5657706FF74CF09BAC");
	assert_true(r->has_policy_key);
	assert_int_equal(r->policy_key, 2216451701u);
	assert_string_equal(r->device_type, "PPC");
	assert_string_equal(r->item_id, "119281");
	assert_string_equal(r->collection_id, "INBOX");
	assert_true(r->save_in_sent);
	assert_false(r->accept_multipart);
	assert_null(r->attachment_name);
	eas_request_free(&r);

	/* A client that %-escapes '/' gets the same answer. */
	assert_int_equal(
	    post(EAS "?eQIJBBCuTs0Z9ZK6Vldwb%2FdM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y", &r),
	    EAS_REQ_OK);
	assert_string_equal(r->device_id, "AE4ECD19F592BA5657706FF74CF09BAC");
	eas_request_free(&r);
}

/* Decode a vector's base64 with the test's own tiny decoder (OpenSSL-free). */
static size_t
b64dec(const char *s, unsigned char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0;
	int bits = 0;
	size_t o = 0;

	for (; *s != '\0' && *s != '='; s++) {
		v = v << 6 | (unsigned)(strchr(a, *s) - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

/* True if k is in the list of n offsets. */
static bool
in_list(size_t k, const size_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == k)
			return true;
	return false;
}

/*
 * Truncate each vector at every byte: only a cut at a field boundary after
 * the DeviceType may parse; every other cut must fail with a message.
 */
static void
test_vectors_truncated(void **state)
{
	static const size_t ok1[] = {27};
	static const size_t ok2[] = {34, 37};
	static const size_t ok3[] = {30, 33, 41, 48};
	const struct {
		const char *b64;
		const size_t *ok;
		size_t nok;
	} v[] = {{vec1, ok1, 1}, {vec2, ok2, 2}, {vec3, ok3, 4}};
	unsigned char bytes[64];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		size_t n = b64dec(v[i].b64, bytes);

		for (size_t k = 0; k <= n; k++) {
			struct eas_request *r = NULL;
			enum eas_req_err err;

			errbuf[0] = '\0';
			err = post_bytes(bytes, k, &r);
			if (in_list(k, v[i].ok, v[i].nok)) {
				assert_int_equal(err, EAS_REQ_OK);
				assert_non_null(r);
			} else {
				assert_int_not_equal(err, EAS_REQ_OK);
				assert_null(r);
				assert_true(errbuf[0] != '\0');
			}
			eas_request_free(&r);
		}
		/* And the base64 text at every character: never a crash. */
		for (size_t k = 0; k < strlen(v[i].b64); k++) {
			char target[256];
			struct eas_request *r = NULL;

			snprintf(target, sizeof(target), EAS "?%.*s", (int)k, v[i].b64);
			if (post(target, &r) == EAS_REQ_OK)
				assert_int_not_equal(r->cmd, EAS_CMD_NONE);
			eas_request_free(&r);
		}
	}
}

/* The precise messages of the layout errors. */
static void
test_base64_messages(void **state)
{
	unsigned char b[22] = {0x8c, 0x09, 0x09, 0x04, 40};
	struct eas_request *r = NULL;

	(void)state;
	memset(b + 5, 'A', sizeof(b) - 5);
	assert_int_equal(post_bytes(b, sizeof(b), &r), EAS_REQ_ELAYOUT);
	assert_string_equal(errbuf,
	                    "base64 query: DeviceId length 40 runs past the end (byte 6 of 22)");
	assert_int_equal(post_bytes(b, 3, &r), EAS_REQ_ELAYOUT);
	assert_string_equal(errbuf, "base64 query: ends before the locale (byte 3 of 3)");
	assert_null(r);
}

/* Layout rules beyond truncation. */
static void
test_base64_layout(void **state)
{
	/* 14.1 Ping, DeviceId "D1", no key, type "T", then parameters. */
	unsigned char b[64] = {141, 18, 0x09, 0x04, 2, 'D', '1', 0, 1, 'T'};
	const size_t base = 10;
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post_bytes(b, base, &r), EAS_REQ_OK);
	assert_string_equal(r->protocol_version, "14.1");
	assert_int_equal(r->cmd, EAS_CMD_PING);
	assert_string_equal(r->device_id, "4431");
	eas_request_free(&r);

	/* Unknown version, unknown command codes 5-8 and 23. */
	b[0] = 100;
	assert_int_equal(post_bytes(b, base, &r), EAS_REQ_EVERSION);
	b[0] = 161;
	for (unsigned code = 5; code <= 8; code++) {
		b[1] = (unsigned char)code;
		assert_int_equal(post_bytes(b, base, &r), EAS_REQ_EUNKNOWNCMD);
	}
	b[1] = 23;
	assert_int_equal(post_bytes(b, base, &r), EAS_REQ_EUNKNOWNCMD);
	b[1] = 18;

	/* Policy key length must be 0 or 4. */
	b[7] = 3;
	assert_int_equal(post_bytes(b, base, &r), EAS_REQ_ELAYOUT);
	b[7] = 0;

	/* DeviceId length 0; a DeviceId of 33 bytes (66 hex > 64). */
	{
		unsigned char z[] = {141, 18, 9, 4, 0, 0, 0};
		unsigned char big[64] = {141, 18, 9, 4, 33};

		assert_int_equal(post_bytes(z, sizeof(z), &r), EAS_REQ_EDEVICEID);
		memset(big + 5, 0xab, 33);
		big[38] = 0;
		big[39] = 0;
		assert_int_equal(post_bytes(big, 40, &r), EAS_REQ_EDEVICEID);
	}

	/* DeviceType must be printable ASCII. */
	b[9] = 0x01;
	assert_int_equal(post_bytes(b, base, &r), EAS_REQ_EPARAM);
	b[9] = 'T';

	/* Options must be one byte; AcceptMultiPart bit; User tag; unknown tag. */
	memcpy(b + base, (unsigned char[]){7, 2, 1, 1}, 4);
	assert_int_equal(post_bytes(b, base + 4, &r), EAS_REQ_EPARAM);
	memcpy(b + base,
	       (unsigned char[]){7, 1, 3, 8, 5, 'a', 'l', 'i', 'c', 'e', 5, 2, 0xbe, 0xef}, 14);
	assert_int_equal(post_bytes(b, base + 14, &r), EAS_REQ_OK);
	assert_true(r->save_in_sent);
	assert_true(r->accept_multipart);
	assert_string_equal(r->user, "alice");
	assert_string_equal(r->account, "jdoe");
	assert_true(r->user_mismatch);
	assert_int_equal(r->n_extra, 1);
	assert_string_equal(r->extra[0].name, "#5");
	assert_string_equal(r->extra[0].value, "BEEF");
	eas_request_free(&r);

	/* A tag given twice; a NUL inside a string parameter; a lone tag. */
	memcpy(b + base, (unsigned char[]){1, 1, 'x', 1, 1, 'y'}, 6);
	assert_int_equal(post_bytes(b, base + 6, &r), EAS_REQ_EDUPPARAM);
	memcpy(b + base, (unsigned char[]){1, 2, 'x', 0}, 4);
	assert_int_equal(post_bytes(b, base + 4, &r), EAS_REQ_EPARAM);
	memcpy(b + base, (unsigned char[]){1}, 1);
	assert_int_equal(post_bytes(b, base + 1, &r), EAS_REQ_ELAYOUT);

	/* The base64 version and key win over the headers. */
	memcpy(b, (unsigned char[]){140, 9, 9, 4, 1, 'D', 4, 1, 0, 0, 0, 0}, 12);
	{
		char target[128] = EAS "?";

		b64enc(b, 12, target + strlen(target));
		assert_int_equal(parse_h("POST", target, &r, "MS-ASProtocolVersion", "16.1",
		                         "X-MS-PolicyKey", "77", NULL),
		                 EAS_REQ_OK);
		assert_string_equal(r->protocol_version, "14.0");
		assert_int_equal(r->policy_key, 1);
		assert_true(r->no_auth);
		eas_request_free(&r);
	}
}

/* Queries that are not base64. */
static void
test_bad_base64(void **state)
{
	static const char *const bad[] = {
	    EAS "?jAAJ*Ap2",      /* not in the alphabet */
	    EAS "?jAAJB",         /* one character in the last group */
	    EAS "?jAAJBA===",     /* three '=' */
	    EAS "?jAAJ-Ap2_",     /* URL-safe alphabet */
	    EAS "?jAAJ%2",        /* bad escape */
	    EAS "?jAAJBAp2%00AA", /* %00 */
	};
	struct eas_request *r = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum eas_req_err err = post(bad[i], &r);

		assert_true(err == EAS_REQ_EBASE64 || err == EAS_REQ_EESCAPE);
		assert_null(r);
	}
	assert_int_equal(post(EAS "?jAAJ*Ap2", &r), EAS_REQ_EBASE64);
	assert_string_equal(errbuf, "base64 query: not a base64 character at character 5 of 8");
}

/* A plain query of every command, and the name/code tables. */
static void
test_plain_every_command(void **state)
{
	(void)state;
	for (int c = EAS_CMD_SYNC; c < EAS_CMD_COUNT; c++) {
		char target[256];
		struct eas_request *r = NULL;
		int code = eas_cmd_code((enum eas_cmd)c);

		snprintf(target, sizeof(target),
		         EAS "?Cmd=%s&User=jdoe&DeviceId=ABC123&DeviceType=iPhone",
		         eas_cmd_name((enum eas_cmd)c));
		assert_int_equal(post(target, &r), EAS_REQ_OK);
		assert_int_equal(r->query_form, EAS_QUERY_PLAIN);
		assert_int_equal(r->cmd, c);
		assert_string_equal(r->user, "jdoe");
		assert_string_equal(r->device_id, "ABC123");
		assert_string_equal(r->device_type, "iPhone");
		assert_false(r->user_mismatch);
		assert_false(r->has_locale);
		eas_request_free(&r);

		assert_int_equal(eas_cmd_from_name(eas_cmd_name((enum eas_cmd)c)), c);
		if (code >= 0)
			assert_int_equal(eas_cmd_from_code(code), c);
	}
	assert_int_equal(eas_cmd_code(EAS_CMD_SYNC), 0);
	assert_int_equal(eas_cmd_code(EAS_CMD_GETATTACHMENT), 4);
	assert_int_equal(eas_cmd_code(EAS_CMD_FOLDERSYNC), 9);
	assert_int_equal(eas_cmd_code(EAS_CMD_VALIDATECERT), 22);
	assert_int_equal(eas_cmd_code(EAS_CMD_FIND), -1);
	assert_int_equal(eas_cmd_code(EAS_CMD_GETHIERARCHY), -1);
	for (int code = 5; code <= 8; code++)
		assert_int_equal(eas_cmd_from_code(code), EAS_CMD_NONE);
	assert_int_equal(eas_cmd_from_code(23), EAS_CMD_NONE);
	assert_int_equal(eas_cmd_from_code(-1), EAS_CMD_NONE);
	assert_int_equal(eas_cmd_from_name("foldersync"), EAS_CMD_FOLDERSYNC);
	assert_int_equal(eas_cmd_from_name("Nope"), EAS_CMD_NONE);
	assert_string_equal(eas_cmd_name(EAS_CMD_COUNT), "");
}

/* The command parameters of the plain query. */
static void
test_plain_params(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post(EAS "?Cmd=SmartReply&User=jdoe&DeviceId=D1&DeviceType=T"
	                          "&CollectionId=5&ItemId=5%3A12&LongId=L1&Occurrence=2026-01-01"
	                          "&SaveInSent=T&AttachmentName=a%2Fb+c.txt&XVendor=1&",
	                      &r),
	                 EAS_REQ_OK);
	assert_int_equal(r->cmd, EAS_CMD_SMARTREPLY);
	assert_string_equal(r->collection_id, "5");
	assert_string_equal(r->item_id, "5:12");
	assert_string_equal(r->long_id, "L1");
	assert_string_equal(r->occurrence, "2026-01-01");
	assert_true(r->save_in_sent);
	assert_string_equal(r->attachment_name, "a/b c.txt");
	assert_int_equal(r->n_extra, 1);
	assert_string_equal(r->extra[0].name, "XVendor");
	assert_string_equal(r->extra[0].value, "1");
	eas_request_free(&r);

	assert_int_equal(post(EAS "?Cmd=SendMail&DeviceId=D1&SaveInSent=X", &r), EAS_REQ_EPARAM);
	assert_int_equal(post(EAS "?Cmd=SendMail&DeviceId=D1&=x", &r), EAS_REQ_EPARAM);
	/* Names without case; empty pairs skipped; a name alone is an empty value. */
	assert_int_equal(post(EAS "?cmd=Sync&&deviceid=D1&Flag", &r), EAS_REQ_OK);
	assert_string_equal(r->device_id, "D1");
	assert_string_equal(r->extra[0].name, "Flag");
	assert_string_equal(r->extra[0].value, "");
	eas_request_free(&r);
}

/* %-decoding is strict. */
static void
test_percent(void **state)
{
	static const char *const bad[] = {
	    EAS "?Cmd=Sync&DeviceId=D1&User=%zz",
	    EAS "?Cmd=Sync&DeviceId=D1&User=a%4",
	    EAS "?Cmd=Sync&DeviceId=D1&User=a%",
	    EAS "?Cmd=Sync&DeviceId=D1&User=a%00b",
	};
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D%31&User=j%64o%65", &r), EAS_REQ_OK);
	assert_string_equal(r->device_id, "D1");
	assert_string_equal(r->user, "jdoe");
	eas_request_free(&r);
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&User=EXAMPLE%5cJDoe", &r), EAS_REQ_OK);
	assert_string_equal(r->user, "EXAMPLE\\JDoe");
	assert_false(r->user_mismatch);
	eas_request_free(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(post(bad[i], &r), EAS_REQ_EESCAPE);
		assert_null(r);
	}
	assert_int_equal(post(bad[0], &r), EAS_REQ_EESCAPE);
	assert_string_equal(errbuf, "query: bad %-escape at byte 27");
	/* A decoded control character is refused. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&User=a%0Ab", &r), EAS_REQ_EPARAM);
	/* A space is not a valid DeviceId character. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D+1", &r), EAS_REQ_EDEVICEID);
}

/*
 * The decoder's table against the RFC 4648 alphabet: every byte value as the
 * first character of a quantum decodes to its index there, or is refused.
 */
static void
test_base64_alphabet(void **state)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char out[8];
	size_t outlen, pos;
	const char *why;

	(void)state;
	for (int c = 0; c < 256; c++) {
		char in[4] = {(char)c, 'A', 'A', 'A'};
		const char *at = c != 0 ? memchr(alphabet, c, 64) : NULL;
		int rc = b64_decode(in, 4, out, &outlen, &pos, &why);

		if (c == '=') {
			assert_int_equal(rc, -1); /* padding first: data after '=' */
			continue;
		}
		if (at == NULL) {
			if (rc != -1 || pos != 0)
				fail_msg("byte 0x%02x: accepted or wrong place", c);
			continue;
		}
		if (rc != 0 || outlen != 3 || out[0] >> 2 != (unsigned)(at - alphabet) ||
		    (out[0] & 3) != 0 || out[1] != 0 || out[2] != 0)
			fail_msg("byte 0x%02x: decoded wrong", c);
	}
}

/*
 * Every byte value at every place of the query (and of the path): refused
 * as a request-target byte exactly when it is a control, a space, DEL or
 * above 0x7e, whatever its place in the eight-byte steps of the check.
 */
static void
test_target_bytes(void **state)
{
	char target[128];
	struct eas_request *r = NULL;

	(void)state;
	for (size_t pos = 0; pos < 40; pos++) {
		for (int c = 1; c < 256; c++) {
			bool bad = c <= 0x20 || c >= 0x7f;
			enum eas_req_err e;
			int n = snprintf(target, sizeof(target), EAS "?Cmd=Sync&DeviceId=D1&X=");

			memset(target + n, 'v', 40);
			target[n + 40] = '\0';
			target[(size_t)n + pos] = (char)c;
			e = post(target, &r);
			eas_request_free(&r);
			if ((e == EAS_REQ_ETARGET) != bad)
				fail_msg("byte 0x%02x at %zu of the query: %s", c, pos, errbuf);
			if (bad) {
				char want[64];

				snprintf(want, sizeof(want), "(byte %zu)", (size_t)n + pos + 1);
				if (strstr(errbuf, want) == NULL)
					fail_msg("byte 0x%02x at %zu: %s", c, pos, errbuf);
			}
		}
	}
	/* In the path. */
	assert_int_equal(post("/Microsoft-Server\x7f-ActiveSync?Cmd=Sync&DeviceId=D1", &r),
	                 EAS_REQ_ETARGET);
	assert_int_equal(post("/Microsoft-Server-ActiveSync\x80?Cmd=Sync&DeviceId=D1", &r),
	                 EAS_REQ_ETARGET);
}

/*
 * A query with nothing to decode is copied as it is; one with an escape or a
 * '+' is decoded. Both give the same request, and a control character only
 * an escape can bring is refused in names, known values and unknown ones.
 */
static void
test_query_verbatim(void **state)
{
	static const char *const pairs[][2] = {
	    {EAS "?Cmd=Ping&User=jdoe&DeviceId=D1&DeviceType=iPhone&Flag&XA=b",
	     EAS "?Cmd=Ping&User=jdo%65&DeviceId=D1&DeviceType=iPhone&Flag&XA=b"},
	    {EAS "?Cmd=Sync&DeviceId=D1&XA=b&CollectionId=7",
	     EAS "?Cmd=Sync&DeviceId=D1&XA=b&CollectionId=7&Y=+"},
	};
	struct eas_request *a = NULL, *b = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(post(pairs[i][0], &a), EAS_REQ_OK);
		assert_int_equal(post(pairs[i][1], &b), EAS_REQ_OK);
		assert_int_equal(a->cmd, b->cmd);
		assert_string_equal(a->device_id, b->device_id);
		assert_int_equal(a->user == NULL, b->user == NULL);
		if (a->user != NULL)
			assert_string_equal(a->user, b->user);
		assert_int_equal(a->collection_id == NULL, b->collection_id == NULL);
		assert_true(a->n_extra >= 1);
		for (size_t k = 0; k < a->n_extra; k++) {
			assert_string_equal(a->extra[k].name, b->extra[k].name);
			assert_string_equal(a->extra[k].value, b->extra[k].value);
		}
		eas_request_free(&a);
		eas_request_free(&b);
	}
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&DeviceType=i%01", &a), EAS_REQ_EPARAM);
	/* A name is never decoded: an escape in it is refused as such. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&X%09Y=1", &a), EAS_REQ_EQUERY);
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&X=%7f", &a), EAS_REQ_EPARAM);
	assert_int_equal(post(EAS "?Cmd=Sync%0d&DeviceId=D1", &a), EAS_REQ_EPARAM);
	assert_null(a);
}

/*
 * Header lengths given by the caller (as the gateway passes what the HTTP
 * server measured) give the request the same headers as lengths measured
 * here, and the same refusals.
 */
static void
test_header_lengths(void **state)
{
	static const char *const names[] = {"Authorization", "User-Agent", "MS-ASProtocolVersion",
	                                    "X-MS-PolicyKey", "Content-Type"};
	static const char *const values[] = {AUTH_JDOE, " Apple-iPhone/1402.100\t", "16.1", "123",
	                                     "application/vnd.ms-sync.wbxml"};
	struct eas_header h[5];
	struct eas_request *a = NULL, *b = NULL;
	char bad[] = "Apple\x01iPhone";
	const char *target = EAS "?Cmd=Sync&DeviceId=D1";

	(void)state;
	for (size_t i = 0; i < 5; i++)
		h[i] = (struct eas_header){.name = names[i], .value = values[i]};
	assert_int_equal(eas_request_parse(&cfg, "POST", target, h, 5, &a, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	for (size_t i = 0; i < 5; i++) {
		h[i].name_len = strlen(names[i]);
		h[i].value_len = strlen(values[i]);
	}
	assert_int_equal(eas_request_parse(&cfg, "POST", target, h, 5, &b, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	assert_string_equal(a->user_agent, "Apple-iPhone/1402.100");
	assert_string_equal(b->user_agent, a->user_agent);
	assert_string_equal(b->protocol_version, a->protocol_version);
	assert_string_equal(b->content_type, a->content_type);
	assert_string_equal(b->account, a->account);
	assert_int_equal(b->policy_key, a->policy_key);
	assert_true(b->has_policy_key);
	eas_request_free(&a);
	eas_request_free(&b);
	/* A control character within the given length is found. */
	h[1].value = bad;
	h[1].value_len = strlen(bad);
	assert_int_equal(eas_request_parse(&cfg, "POST", target, h, 5, &a, errbuf, sizeof(errbuf)),
	                 EAS_REQ_EHEADER);
	assert_null(a);
}

/* Parse a POST to target with Basic credentials user:pw under default_domain dom. */
static enum eas_req_err
post_as(const char *dom, const char *user, const char *target, struct eas_request **r)
{
	const struct eas_request_config dc = {NULL, pass_prefixes, 2, NULL, dom};
	char cred[300], hdr[420];
	struct eas_header h[1];

	snprintf(cred, sizeof(cred), "%s:pw", user);
	snprintf(hdr, sizeof(hdr), "Basic ");
	b64enc((const unsigned char *)cred, strlen(cred), hdr + 6);
	h[0] = (struct eas_header){.name = "Authorization", .value = hdr};
	return eas_request_parse(&dc, "POST", target, h, 1, r, errbuf, sizeof(errbuf));
}

/*
 * One identity per person: every spelling of a login gives one account, the
 * canonical one under [eas] default_domain, and a User= in another spelling of
 * the same person is no mismatch; names that are not one account are refused.
 */
static void
test_identity_canonical(void **state)
{
	static const char *const spellings[] = {
	    "alice",
	    "Alice",
	    "EXAMPLE\\alice",
	    "example.com\\ALICE",
	    "alice@example.com",
	    "Alice@EXAMPLE.COM",
	    "CORP\\alice@Example.com",
	};
	static const char *const bad[] = {"alice@", "@example.com", "a@b@c", "EXAMPLE\\"};
	struct eas_request *r = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		print_message("login %s\n", spellings[i]);
		assert_int_equal(post_as("example.com", spellings[i],
		                         EAS "?Cmd=Sync&User=ALICE&DeviceId=D1", &r),
		                 EAS_REQ_OK);
		assert_string_equal(r->auth_user, spellings[i]); /* as sent, for the upstream */
		assert_string_equal(r->account, "alice@example.com");
		assert_false(r->user_mismatch);
		eas_request_free(&r);
		/* Every User= spelling of the same person matches too. */
		for (size_t j = 0; j < sizeof(spellings) / sizeof(spellings[0]); j++) {
			char target[200];

			snprintf(target, sizeof(target), EAS "?Cmd=Sync&User=%s&DeviceId=D1",
			         spellings[j]);
			if (strchr(spellings[j], '\\') != NULL)
				continue; /* a backslash is not sent raw in a query */
			assert_int_equal(post_as("example.com", spellings[i], target, &r),
			                 EAS_REQ_OK);
			assert_false(r->user_mismatch);
			eas_request_free(&r);
		}
	}
	/* Another person, or the same name in another domain, is a mismatch. */
	assert_int_equal(post_as("example.com", "alice", EAS "?Cmd=Sync&User=bob&DeviceId=D1", &r),
	                 EAS_REQ_OK);
	assert_true(r->user_mismatch);
	eas_request_free(&r);
	assert_int_equal(
	    post_as("example.com", "alice", EAS "?Cmd=Sync&User=alice%40corp.org&DeviceId=D1", &r),
	    EAS_REQ_OK);
	assert_true(r->user_mismatch);
	eas_request_free(&r);
	/* A full name in another domain stays in that domain. */
	assert_int_equal(post_as("example.com", "alice@Corp.Org", EAS "?Cmd=Sync&DeviceId=D1", &r),
	                 EAS_REQ_OK);
	assert_string_equal(r->account, "alice@corp.org");
	eas_request_free(&r);
	/* Without a default domain a bare name stays bare; the domain is lower-cased. */
	assert_int_equal(post_as(NULL, "EXAMPLE\\Alice", EAS "?Cmd=Sync&DeviceId=D1", &r),
	                 EAS_REQ_OK);
	assert_string_equal(r->account, "alice");
	eas_request_free(&r);
	assert_int_equal(post_as(NULL, "Alice@EXAMPLE.com", EAS "?Cmd=Sync&DeviceId=D1", &r),
	                 EAS_REQ_OK);
	assert_string_equal(r->account, "alice@example.com");
	eas_request_free(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("login %s\n", bad[i]);
		assert_int_equal(post_as("example.com", bad[i], EAS "?Cmd=Sync&DeviceId=D1", &r),
		                 EAS_REQ_EUSER);
		assert_null(r);
		assert_int_equal(post_as(NULL, bad[i], EAS "?Cmd=Sync&DeviceId=D1", &r),
		                 EAS_REQ_EUSER);
		assert_null(r);
	}
}

/* Identity: DOMAIN\user, mismatch, no credentials, bad credentials. */
static void
test_identity(void **state)
{
	struct eas_request *r = NULL;
	char desc[512];

	(void)state;
	assert_int_equal(post(EAS "?Cmd=Sync&User=jdoe&DeviceId=D1", &r), EAS_REQ_OK);
	assert_false(r->no_auth);
	assert_string_equal(r->auth_scheme, "Basic");
	assert_string_equal(r->auth_user, "EXAMPLE\\JDoe");
	assert_string_equal(r->auth_password, "s3cret");
	assert_int_equal(r->auth_password_len, 6);
	assert_string_equal(r->account, "jdoe");
	assert_false(r->user_mismatch);
	eas_request_describe(r, desc, sizeof(desc));
	assert_null(strstr(desc, "s3cret"));
	assert_non_null(strstr(desc, "account=jdoe"));
	assert_non_null(strstr(desc, "cmd=Sync"));
	eas_request_free(&r);

	/* User= names someone else: the credentials win, the flag is set. */
	assert_int_equal(post(EAS "?Cmd=Sync&User=alice&DeviceId=D1", &r), EAS_REQ_OK);
	assert_string_equal(r->account, "jdoe");
	assert_string_equal(r->user, "alice");
	assert_true(r->user_mismatch);
	eas_request_describe(r, desc, sizeof(desc));
	assert_non_null(strstr(desc, "user_mismatch=yes"));
	eas_request_free(&r);

	/* No User= at all: no mismatch. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1", &r), EAS_REQ_OK);
	assert_false(r->user_mismatch);
	eas_request_free(&r);

	/* No Authorization: parsed, no_auth set, no account. */
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&User=jdoe&DeviceId=D1", &r, NULL),
	                 EAS_REQ_OK);
	assert_true(r->no_auth);
	assert_null(r->account);
	assert_null(r->auth_password);
	assert_false(r->user_mismatch);
	eas_request_free(&r);

	/* Another scheme: no_auth, scheme kept. */
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         "Bearer abc.def", NULL),
	                 EAS_REQ_OK);
	assert_true(r->no_auth);
	assert_string_equal(r->auth_scheme, "Bearer");
	eas_request_free(&r);

	/* Password with colons; empty password; scheme without case. */
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         "basic   amRvZTpwdzp3aXRoOmNvbG9ucw==  ", NULL),
	                 EAS_REQ_OK);
	assert_string_equal(r->auth_password, "pw:with:colons");
	eas_request_free(&r);
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         "Basic amRvZTo=", NULL),
	                 EAS_REQ_OK);
	assert_string_equal(r->auth_password, "");
	eas_request_free(&r);

	/* Broken credentials. */
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         "Basic bm9jb2xvbg==", NULL),
	                 EAS_REQ_EAUTH);
	assert_int_equal(
	    parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization", "Basic !!!!", NULL),
	    EAS_REQ_EAUTH);
	assert_int_equal(
	    parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization", "Basic am=Rv", NULL),
	    EAS_REQ_EAUTH);
	assert_non_null(strstr(errbuf, "data after '=' padding"));
	assert_int_equal(
	    parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization", "Basic", NULL),
	    EAS_REQ_EAUTH);
	assert_int_equal(
	    parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization", "Basic OnB3", NULL),
	    EAS_REQ_EUSER);
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         "Basic aiBkb2U6cHc=", NULL),
	                 EAS_REQ_EUSER);
	assert_null(strstr(errbuf, "pw"));
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "Authorization",
	                         AUTH_JDOE, "authorization", AUTH_JDOE, NULL),
	                 EAS_REQ_EDUPHEADER);
	assert_null(r);
}

/* Duplicate parameters are errors, known or not, whatever their case. */
static void
test_duplicates(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post(EAS "?Cmd=Sync&Cmd=Ping&DeviceId=D1", &r), EAS_REQ_EDUPPARAM);
	assert_string_equal(errbuf, "query: Cmd given twice");
	assert_int_equal(post(EAS "?Cmd=Sync&deviceid=a&DeviceId=b", &r), EAS_REQ_EDUPPARAM);
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&Foo=1&foo=2", &r), EAS_REQ_EDUPPARAM);
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&User=a&User=a", &r), EAS_REQ_EDUPPARAM);
	assert_null(r);
}

/* Every cap. */
static void
test_oversize(void **state)
{
	size_t big = EAS_REQ_QUERY_MAX + 64;
	char *t = malloc(big + 64), *v = malloc(EAS_REQ_HEADER_MAX + 2);
	struct eas_request *r = NULL;
	struct eas_header *many;
	int n;

	(void)state;
	/* A query just over 8 KiB. */
	n = snprintf(t, big + 64, EAS "?Cmd=Sync&DeviceId=D1&X=");
	memset(t + n, 'a', EAS_REQ_QUERY_MAX);
	t[n + EAS_REQ_QUERY_MAX] = '\0';
	assert_int_equal(post(t, &r), EAS_REQ_ETOOLONG);
	/* A base64-looking query just over 8 KiB. */
	n = snprintf(t, big + 64, EAS "?");
	memset(t + n, 'A', EAS_REQ_QUERY_MAX + 4);
	t[n + EAS_REQ_QUERY_MAX + 4] = '\0';
	assert_int_equal(post(t, &r), EAS_REQ_ETOOLONG);
	/* A header value just over 8 KiB. */
	memset(v, 'u', EAS_REQ_HEADER_MAX + 1);
	v[EAS_REQ_HEADER_MAX + 1] = '\0';
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "User-Agent", v, NULL),
	                 EAS_REQ_ETOOLONG);
	/* One at the cap is fine. */
	v[EAS_REQ_HEADER_MAX] = '\0';
	assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "User-Agent", v, NULL),
	                 EAS_REQ_OK);
	assert_int_equal(strlen(r->user_agent), EAS_REQ_HEADER_MAX);
	eas_request_free(&r);
	/* Too many parameters. */
	n = snprintf(t, big + 64, EAS "?Cmd=Sync&DeviceId=D1");
	for (int i = 0; i < EAS_REQ_PARAMS_MAX; i++)
		n += snprintf(t + n, big + 64 - (size_t)n, "&P%d=1", i);
	assert_int_equal(post(t, &r), EAS_REQ_ETOOLONG);
	/* Too many unknown parameters to keep: counted, not failed. */
	n = snprintf(t, big + 64, EAS "?Cmd=Sync&DeviceId=D1");
	for (int i = 0; i < EAS_REQ_EXTRA_MAX + 3; i++)
		n += snprintf(t + n, big + 64 - (size_t)n, "&P%d=1", i);
	assert_int_equal(post(t, &r), EAS_REQ_OK);
	assert_int_equal(r->n_extra, EAS_REQ_EXTRA_MAX);
	assert_int_equal(r->n_extra_dropped, 3);
	eas_request_free(&r);
	/* User over 256 bytes; DeviceId over 64 characters. */
	n = snprintf(t, big + 64, EAS "?Cmd=Sync&DeviceId=D1&User=");
	memset(t + n, 'u', EAS_REQ_USER_MAX + 1);
	t[n + EAS_REQ_USER_MAX + 1] = '\0';
	assert_int_equal(post(t, &r), EAS_REQ_ETOOLONG);
	n = snprintf(t, big + 64, EAS "?Cmd=Sync&DeviceId=");
	memset(t + n, 'd', 65);
	t[n + 65] = '\0';
	assert_int_equal(post(t, &r), EAS_REQ_EDEVICEID);
	t[n + 64] = '\0';
	assert_int_equal(post(t, &r), EAS_REQ_OK);
	eas_request_free(&r);
	/* Too many headers. */
	many = calloc(EAS_REQ_HEADERS_MAX + 1, sizeof(*many));
	for (int i = 0; i <= EAS_REQ_HEADERS_MAX; i++) {
		many[i].name = "X-Filler";
		many[i].value = "1";
	}
	assert_int_equal(eas_request_parse(&cfg, "POST", EAS "?Cmd=Sync&DeviceId=D1", many,
	                                   EAS_REQ_HEADERS_MAX + 1, &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_ETOOLONG);
	assert_null(r);
	free(many);
	free(t);
	free(v);
}

/* The EAS path, passthrough prefixes, anything else. */
static void
test_paths(void **state)
{
	static const struct eas_request_config custom = {"/eas", NULL, 0, NULL, NULL};
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(post("/microsoft-server-activesync?Cmd=Sync&DeviceId=D1", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_EAS);
	eas_request_free(&r);
	assert_int_equal(post(EAS "/?Cmd=Sync&DeviceId=D1", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_EAS);
	eas_request_free(&r);

	/* Passthrough: no Cmd needed, the query is not parsed, credentials are. */
	assert_int_equal(post("/AutoDiscover/autodiscover.xml?junk=%7a", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_PASSTHROUGH);
	assert_int_equal(r->passthrough_index, 0);
	assert_string_equal(r->path, "/AutoDiscover/autodiscover.xml");
	assert_string_equal(r->account, "jdoe");
	eas_request_free(&r);
	assert_int_equal(post("/ews/exchange.asmx", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_PASSTHROUGH);
	assert_int_equal(r->passthrough_index, 1);
	eas_request_free(&r);

	/* Neither. */
	assert_int_equal(post(EAS "X?Cmd=Sync", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_OTHER);
	eas_request_free(&r);
	assert_int_equal(post("/autodiscoverX", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_OTHER);
	eas_request_free(&r);

	/* A configured EAS path. */
	assert_int_equal(eas_request_parse(&custom, "POST", "/EAS?Cmd=Ping&DeviceId=D1", NULL, 0,
	                                   &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_EAS);
	assert_int_equal(r->cmd, EAS_CMD_PING);
	eas_request_free(&r);

	/* Bad targets. */
	assert_int_equal(post("Microsoft-Server-ActiveSync", &r), EAS_REQ_ETARGET);
	assert_int_equal(post("http://host" EAS, &r), EAS_REQ_ETARGET);
	assert_int_equal(post(EAS "?Cmd=Sync Ping", &r), EAS_REQ_ETARGET);
	assert_int_equal(post("", &r), EAS_REQ_ETARGET);
	assert_null(r);
}

/* One target against what canonicalisation must make of it. */
struct path_case {
	const char *target;
	enum eas_req_err err;
	enum eas_path_kind kind;
	const char *path;     /* the canonical path, or the error message */
	const char *fwd_path; /* NULL: the same as path */
};

/* Check each case: error and message, or kind, path and wire form. */
static void
check_paths(const struct path_case *pc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct eas_request *r = NULL;
		enum eas_req_err err = post(pc[i].target, &r);

		if (err != pc[i].err)
			fail_msg("%s: error %d, wanted %d (%s)", pc[i].target, err, pc[i].err,
			         errbuf);
		if (err != EAS_REQ_OK) {
			assert_null(r);
			if (pc[i].path != NULL && strcmp(errbuf, pc[i].path) != 0)
				fail_msg("%s: message \"%s\"", pc[i].target, errbuf);
			continue;
		}
		if (r->path_kind != pc[i].kind || strcmp(r->path, pc[i].path) != 0 ||
		    strcmp(r->fwd_path, pc[i].fwd_path ? pc[i].fwd_path : pc[i].path) != 0)
			fail_msg("%s: kind %d path \"%s\" fwd_path \"%s\"", pc[i].target,
			         r->path_kind, r->path, r->fwd_path);
		eas_request_free(&r);
	}
}

/*
 * Issue finding 2: a passthrough prefix followed by a way back up is the EAS
 * path (decided) or another path (404), never passthrough, however it is
 * spelled; what cannot be normalised is refused.
 */
static void
test_canon_path(void **state)
{
	static const struct path_case pc[] = {
	    /* The attack and its spellings: all end on the EAS path. */
	    {"/autodiscover/../Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK,
	     EAS_PATH_EAS, EAS, NULL},
	    {"/autodiscover/%2e%2e/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK,
	     EAS_PATH_EAS, EAS, NULL},
	    {"/autodiscover/%2E%2e/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK,
	     EAS_PATH_EAS, EAS, NULL},
	    {"/autodiscover/.%2E/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK,
	     EAS_PATH_EAS, EAS, NULL},
	    {"/autodiscover//..//Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK,
	     EAS_PATH_EAS, EAS, NULL},
	    {"/autodiscover/./x/../../Micro%73oft-Server-ActiveSync?Cmd=Sync&DeviceId=X",
	     EAS_REQ_OK, EAS_PATH_EAS, EAS, NULL},
	    {"/./Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=X", EAS_REQ_OK, EAS_PATH_EAS, EAS,
	     NULL},
	    {"/Microsoft-Server-ActiveSync/.?Cmd=Sync&DeviceId=X", EAS_REQ_OK, EAS_PATH_EAS,
	     EAS "/", NULL},
	    {"/Microsoft-Server-ActiveSync/x/..?Cmd=Sync&DeviceId=X", EAS_REQ_OK, EAS_PATH_EAS,
	     EAS "/", NULL},
	    {"//Microsoft-Server-ActiveSync//?Cmd=Sync&DeviceId=X", EAS_REQ_OK, EAS_PATH_EAS,
	     EAS "/", NULL},
	    /* Out of the prefix to any other path: 404, not passthrough. */
	    {"/autodiscover/../x", EAS_REQ_OK, EAS_PATH_OTHER, "/x", NULL},
	    {"/autodiscover/%2e%2e/owa/", EAS_REQ_OK, EAS_PATH_OTHER, "/owa/", NULL},
	    {"/autodiscoverx/", EAS_REQ_OK, EAS_PATH_OTHER, "/autodiscoverx/", NULL},
	    {"/autodiscover.xml", EAS_REQ_OK, EAS_PATH_OTHER, "/autodiscover.xml", NULL},
	    {"/Microsoft-Server-ActiveSync...", EAS_REQ_OK, EAS_PATH_OTHER, EAS "...", NULL},
	    {"/Microsoft-Server-ActiveSyncX", EAS_REQ_OK, EAS_PATH_OTHER, EAS "X", NULL},
	    /* Whole segments of a passthrough entry. */
	    {"/autodiscover", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover", NULL},
	    {"/AutoDiscover/AutoDiscover.xml", EAS_REQ_OK, EAS_PATH_PASSTHROUGH,
	     "/AutoDiscover/AutoDiscover.xml", NULL},
	    {"//autodiscover//x", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/x", NULL},
	    {"/autodiscover/x/../y", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/y", NULL},
	    {"/autodiscover/..", EAS_REQ_OK, EAS_PATH_OTHER, "/", NULL},
	    {"/EWS/./x/..", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/EWS/", NULL},
	    {"/autodiscover/%7Euser", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/~user",
	     NULL},
	    {"/autodiscover/a%3fb", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/a?b",
	     "/autodiscover/a%3Fb"},
	    {"/autodiscover/a\"b", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/a\"b",
	     "/autodiscover/a%22b"},
	    {"/autodiscover/a%23b%5b%5D", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/a#b[]",
	     "/autodiscover/a%23b%5B%5D"},
	    {"/autodiscover/%41+b", EAS_REQ_OK, EAS_PATH_PASSTHROUGH, "/autodiscover/A+b", NULL},
	    /* Refused. */
	    {"/autodiscover/%2e%2e%2fMicrosoft-Server-ActiveSync", EAS_REQ_EPATH, 0,
	     "path: encoded '/' (%2F) at byte 21", NULL},
	    {"/autodiscover/..%2F", EAS_REQ_EPATH, 0, "path: encoded '/' (%2F) at byte 17", NULL},
	    {"/Microsoft-Server-ActiveSync%2f", EAS_REQ_EPATH, 0,
	     "path: encoded '/' (%2F) at byte 29", NULL},
	    {"/autodiscover/..;/Microsoft-Server-ActiveSync", EAS_REQ_EPATH, 0,
	     "path: ';' at byte 17", NULL},
	    {"/autodiscover;x=1/", EAS_REQ_EPATH, 0, "path: ';' at byte 14", NULL},
	    {"/autodiscover/..%3b/x", EAS_REQ_EPATH, 0, "path: encoded ';' (%3B) at byte 17", NULL},
	    {"/autodiscover\\..\\Microsoft-Server-ActiveSync", EAS_REQ_EPATH, 0,
	     "path: '\\' at byte 14", NULL},
	    {"/autodiscover/%5c..%5cx", EAS_REQ_EPATH, 0, "path: encoded '\\' (%5C) at byte 15",
	     NULL},
	    /* Double encoding: one decode leaves a '%', which is refused. */
	    {"/autodiscover/%252e%252e/Microsoft-Server-ActiveSync", EAS_REQ_EPATH, 0,
	     "path: encoded '%' (%25) at byte 15", NULL},
	    {"/..", EAS_REQ_EPATH, 0, "path: '..' climbs above the root", NULL},
	    {"/autodiscover/../../Microsoft-Server-ActiveSync", EAS_REQ_EPATH, 0,
	     "path: '..' climbs above the root", NULL},
	    {"/%2e%2e/x", EAS_REQ_EPATH, 0, "path: '..' climbs above the root", NULL},
	    {"/a%00b", EAS_REQ_EPATH, 0, "path: %00 at byte 3 is not a visible ASCII character",
	     NULL},
	    {"/a%20b", EAS_REQ_EPATH, 0, "path: %20 at byte 3 is not a visible ASCII character",
	     NULL},
	    {"/a%C3%A9", EAS_REQ_EPATH, 0, NULL, NULL},
	    {"/a%7f", EAS_REQ_EPATH, 0, NULL, NULL},
	    {"/a%zz", EAS_REQ_EPATH, 0, "path: bad %-escape at byte 3", NULL},
	    {"/a%2", EAS_REQ_EPATH, 0, "path: bad %-escape at byte 3", NULL},
	    {"/a%", EAS_REQ_EPATH, 0, "path: bad %-escape at byte 3", NULL},
	    {"/a%2?x", EAS_REQ_EPATH, 0, "path: bad %-escape at byte 3", NULL},
	};

	(void)state;
	check_paths(pc, sizeof(pc) / sizeof(pc[0]));
}

/* Check that target is refused with err, and with msg when not NULL. */
static void
refused(const char *target, enum eas_req_err err, const char *msg)
{
	struct eas_request *r = NULL;
	enum eas_req_err got = post(target, &r);

	if (got != err)
		fail_msg("%s: error %d, wanted %d (%s)", target, got, err, errbuf);
	assert_null(r);
	if (msg != NULL && strcmp(errbuf, msg) != 0)
		fail_msg("%s: message \"%s\"", target, errbuf);
}

/*
 * Issue finding 4: a query that abqd and an upstream could read as two
 * requests is refused: a second '?' (read from the last one), '#', ';',
 * parameter names PHP would mangle, a name twice under two cases.
 */
static void
test_canon_query(void **state)
{
	static const char *const bad_names[] = {
	    "+DeviceId=B",  "%20DeviceId=B", "Device%20Id=B", "Device.Id=B", "DeviceId[]=B",
	    "Device%49d=B", "Device_Id=B",   "Device-Id=B",   "Device+Id=B", "DeviceId%00=B",
	};
	struct eas_request *r = NULL;
	char target[256];

	(void)state;
	refused(EAS "?Cmd=Sync&DeviceId=A?DeviceId=B", EAS_REQ_EQUERY,
	        "query: a second '?' at byte 20 (the upstream could read it differently)");
	refused(EAS "?Cmd=Sync&DeviceId=A&?DeviceId=B", EAS_REQ_EQUERY, NULL);
	refused(EAS "?Cmd=Sync&DeviceId=A&x=?", EAS_REQ_EQUERY, NULL);
	refused(EAS "??Cmd=Sync&DeviceId=A", EAS_REQ_EQUERY, NULL);
	refused(EAS "?Cmd=Sync&DeviceId=A#&DeviceId=B", EAS_REQ_EQUERY,
	        "query: '#' at byte 20 (the upstream could read it differently)");
	refused(EAS "?Cmd=Sync;DeviceId=B&DeviceId=A", EAS_REQ_EQUERY,
	        "query: ';' at byte 9 (the upstream could read it differently)");
	refused(EAS "?Cmd=Sync&DeviceId=A;B", EAS_REQ_EQUERY, NULL);
	/* The same in a base64 query. */
	snprintf(target, sizeof(target), EAS "?%s?x", vec1);
	refused(target, EAS_REQ_EQUERY, NULL);
	snprintf(target, sizeof(target), EAS "?%s#x", vec1);
	refused(target, EAS_REQ_EQUERY, NULL);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		snprintf(target, sizeof(target), EAS "?Cmd=Sync&DeviceId=A&%s", bad_names[i]);
		refused(target, EAS_REQ_EQUERY, NULL);
		snprintf(target, sizeof(target), EAS "?%s&Cmd=Sync&DeviceId=A", bad_names[i]);
		refused(target, EAS_REQ_EQUERY, NULL);
	}
	refused(EAS "?Cmd=Sync&DeviceId=A&+DeviceId=B", EAS_REQ_EQUERY,
	        "query: parameter name with '+' at byte 21 (names are letters and digits)");
	/* A known name under another case is that name: twice is an error. */
	refused(EAS "?Cmd=Sync&DeviceId=A&deviceid=B", EAS_REQ_EDUPPARAM, NULL);
	refused(EAS "?Cmd=Sync&DEVICEID=A&DeviceId=A", EAS_REQ_EDUPPARAM, NULL);
	refused(EAS "?Cmd=Sync&cmd=Ping&DeviceId=A", EAS_REQ_EDUPPARAM, NULL);
	refused(EAS "?Cmd=Sync&DeviceId=A&User=a&USER=b", EAS_REQ_EDUPPARAM, NULL);

	/* Values may hold anything escaped: they are re-encoded. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=A&CollectionId=%3F%23%3B%26x", &r),
	                 EAS_REQ_OK);
	assert_string_equal(r->collection_id, "?#;&x");
	assert_string_equal(r->fwd_query, "Cmd=Sync&DeviceId=A&CollectionId=%3F%23%3B%26x");
	eas_request_free(&r);

	/* A passthrough query: unreserved, '&', '=' and escapes only. */
	assert_int_equal(post("/autodiscover/x?a=1&b=%2f%7e&c", &r), EAS_REQ_OK);
	assert_string_equal(r->fwd_query, "a=1&b=%2F%7E&c");
	eas_request_free(&r);
	assert_int_equal(post("/autodiscover/x?", &r), EAS_REQ_OK);
	assert_null(r->fwd_query);
	eas_request_free(&r);
	assert_int_equal(post("/autodiscover/x", &r), EAS_REQ_OK);
	assert_null(r->fwd_query);
	eas_request_free(&r);
	refused("/autodiscover/x?a=1+2", EAS_REQ_EQUERY,
	        "passthrough query: '+' at byte 4 (only letters, digits, '-._~&=' and "
	        "%-escapes)");
	refused("/autodiscover/x?a=1;b=2", EAS_REQ_EQUERY, NULL);
	refused("/autodiscover/x?a=1?b=2", EAS_REQ_EQUERY, NULL);
	refused("/autodiscover/x?a=1#b", EAS_REQ_EQUERY, NULL);
	refused("/autodiscover/x?a[]=1", EAS_REQ_EQUERY, NULL);
	refused("/autodiscover/x?a=%00", EAS_REQ_EESCAPE, NULL);
	refused("/autodiscover/x?a=%zz", EAS_REQ_EESCAPE, "query: bad %-escape at byte 3");
	refused("/autodiscover/x?a=%2", EAS_REQ_EESCAPE, NULL);
	/* Another path's query is not read (the answer is 404). */
	assert_int_equal(post("/other?a=%zz?;#", &r), EAS_REQ_OK);
	assert_int_equal(r->path_kind, EAS_PATH_OTHER);
	assert_null(r->fwd_query);
	eas_request_free(&r);
}

/* Parse target with or without the jdoe credentials; check fwd_query. */
static void
fwd_is(const char *target, bool auth, const char *want)
{
	struct eas_request *r = NULL;
	enum eas_req_err err = auth ? post(target, &r) : parse_h("POST", target, &r, NULL);

	if (err != EAS_REQ_OK)
		fail_msg("%s: error %d (%s)", target, err, errbuf);
	if (want == NULL ? r->fwd_query != NULL
	                 : r->fwd_query == NULL || strcmp(r->fwd_query, want) != 0)
		fail_msg("%s: fwd_query \"%s\", wanted \"%s\"", target,
		         r->fwd_query ? r->fwd_query : "(null)", want ? want : "(null)");
	assert_string_equal(r->fwd_path, r->path);
	eas_request_free(&r);
}

/*
 * The forwarded query for another command or policy key (what the gateway
 * sends when it provisions with the upstream for a device, and the
 * upstream's key on a forwarded request), plain and base64.
 */
static void
test_fwd_query_for(void **state)
{
	struct eas_request *r = NULL;
	unsigned char b[128], want[128];
	char q[300];
	size_t n;
	char *got;

	(void)state;
	assert_int_equal(post(EAS "?Cmd=SendMail&User=jdoe&DeviceId=D1&DeviceType=x&SaveInSent=T"
	                          "&PolicyKey=12",
	                      &r),
	                 EAS_REQ_OK);
	got = eas_request_fwd_query_for(r, EAS_CMD_NONE, true, 99);
	assert_string_equal(got, "Cmd=SendMail&User=EXAMPLE%5CJDoe&DeviceId=D1&DeviceType=x"
	                         "&SaveInSent=T&PolicyKey=99");
	free(got);
	/* Another command keeps the identity only. */
	got = eas_request_fwd_query_for(r, EAS_CMD_PROVISION, true, 0);
	assert_string_equal(
	    got, "Cmd=Provision&User=EXAMPLE%5CJDoe&DeviceId=D1&DeviceType=x&PolicyKey=0");
	free(got);
	eas_request_free(&r);
	/* No PolicyKey= (the header carries it): the query as it was. */
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&DeviceType=x&CollectionId=5", &r),
	                 EAS_REQ_OK);
	got = eas_request_fwd_query_for(r, EAS_CMD_NONE, true, 7);
	assert_string_equal(got, r->fwd_query);
	free(got);
	got = eas_request_fwd_query_for(r, EAS_CMD_PROVISION, true, 7);
	assert_string_equal(got, "Cmd=Provision&DeviceId=D1&DeviceType=x");
	free(got);
	eas_request_free(&r);

	/* Base64 (vec1: 14.0 Sync, DeviceId "v140Device", no key): the key field set. */
	snprintf(q, sizeof(q), EAS "?%s", vec1);
	assert_int_equal(post(q, &r), EAS_REQ_OK);
	n = b64dec(vec1, b);
	assert_int_equal(b[15], 0); /* the policy key length */
	memcpy(want, b, 16);
	memcpy(want + 15, "\x04\x04\x03\x02\x01", 5);
	memcpy(want + 20, b + 16, n - 16);
	b64enc(want, n + 4, q);
	got = eas_request_fwd_query_for(r, EAS_CMD_NONE, true, 0x01020304);
	assert_string_equal(got, q);
	free(got);
	want[1] = 20; /* Provision's command code */
	b64enc(want, n + 4, q);
	got = eas_request_fwd_query_for(r, EAS_CMD_PROVISION, true, 0x01020304);
	assert_string_equal(got, q);
	free(got);
	eas_request_free(&r);
	/* Only the EAS path has a query to rebuild. */
	assert_int_equal(post("/other?a=1", &r), EAS_REQ_OK);
	assert_null(eas_request_fwd_query_for(r, EAS_CMD_NONE, true, 1));
	eas_request_free(&r);
}

/* What is forwarded for usual requests, to the byte. */
static void
test_fwd_query(void **state)
{
	unsigned char b[128];
	size_t n;
	char target[300];
	struct eas_request *r = NULL;

	(void)state;
	/* The credentials' user name as sent replaces User=. */
	fwd_is(EAS "?Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone", true,
	       "Cmd=Sync&User=EXAMPLE%5CJDoe&DeviceId=ABC123&DeviceType=iPhone");
	fwd_is(EAS "?Cmd=Sync&User=mallory&DeviceId=ABC123&DeviceType=iPhone", true,
	       "Cmd=Sync&User=EXAMPLE%5CJDoe&DeviceId=ABC123&DeviceType=iPhone");
	fwd_is(EAS "?Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone", false,
	       "Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone");
	/* No User= given: none added. Names in their own case, a fixed order. */
	fwd_is(EAS "?devicetype=iPhone&deviceid=ABC123&cmd=sync&XA=1&Flag", true,
	       "Cmd=Sync&DeviceId=ABC123&DeviceType=iPhone");
	fwd_is(EAS "/?Cmd=Sync&User=&DeviceId=D1&DeviceType=", false, "Cmd=Sync&DeviceId=D1");
	fwd_is(EAS "?Cmd=SmartReply&DeviceId=D1&ItemId=5%3A12&SaveInSent=T"
	           "&AttachmentName=a%2Fb+c.txt&PolicyKey=12&AcceptMultiPart=F&CollectionId=5"
	           "&LongId=L1&Occurrence=2026-01-01&User=a%40b.c",
	       false,
	       "Cmd=SmartReply&User=a%40b.c&DeviceId=D1&AttachmentName=a%2Fb%20c.txt"
	       "&CollectionId=5&ItemId=5%3A12&LongId=L1&Occurrence=2026-01-01&SaveInSent=T"
	       "&PolicyKey=12&AcceptMultiPart=F");
	fwd_is(EAS "?Cmd=Sync&DeviceId=D1&SaveInSent=f&AcceptMultiPart=t", false,
	       "Cmd=Sync&DeviceId=D1&SaveInSent=F&AcceptMultiPart=T");
	/* The MS-ASAcceptMultiPart header is not moved into the query. */
	assert_int_equal(
	    parse_h("POST", EAS "?Cmd=Sync&DeviceId=D1", &r, "MS-ASAcceptMultiPart", "T", NULL),
	    EAS_REQ_OK);
	assert_string_equal(r->fwd_query, "Cmd=Sync&DeviceId=D1");
	eas_request_free(&r);
	/* A control byte in the credentials' domain part never reaches User=. */
	{
		static const char cred[] = "EX\001AMPLE\\JDoe:s3cret";
		char auth[64] = "Basic ";

		b64enc((const unsigned char *)cred, strlen(cred), auth + 6);
		assert_int_equal(parse_h("POST", EAS "?Cmd=Sync&User=jdoe&DeviceId=D1", &r,
		                         "Authorization", auth, NULL),
		                 EAS_REQ_EUSER);
		assert_null(r);
	}
	/* Only unknown parameters, or none: nothing to forward. */
	assert_int_equal(parse_h("OPTIONS", EAS "?XA=1", &r, NULL), EAS_REQ_OK);
	assert_null(r->fwd_query);
	assert_string_equal(r->fwd_path, EAS);
	eas_request_free(&r);
	fwd_is("/./Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=D1", true, "Cmd=Ping&DeviceId=D1");

	/* Base64: the vectors already in the canonical layout come back as they are. */
	fwd_is(EAS "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", true, vec1);
	fwd_is(EAS "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA", true, vec2);
	/* Escapes undone; the tags in tag order (CollectionId, ItemId, Options). */
	n = b64dec(vec3, b);
	assert_int_equal(n, 48);
	{
		/* vec3's tags: Options 07 01 01, ItemId 03 06 "119281", CollectionId 01 05 INBOX.
		 */
		unsigned char want[48];

		memcpy(want, b, 30);
		memcpy(want + 30,
		       "\x01\x05INBOX\x03\x06"
		       "119281\x07\x01\x01",
		       18);
		b64enc(want, 48, target);
		fwd_is(EAS "?eQIJBBCuTs0Z9ZK6Vldwb%2FdM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y",
		       true, target);
	}
	/* User tag replaced by the credentials' name, unknown tags (2, 9) dropped. */
	n = b64dec(vec1, b);
	memcpy(b + n, "\x08\x07mallory\x02\x02zz\x09\x01q", 16);
	{
		char q[300];
		unsigned char want[64];

		snprintf(target, sizeof(target), EAS "?");
		b64enc(b, n + 16, target + strlen(target));
		memcpy(want, b, n);
		memcpy(want + n,
		       "\x08\x0c"
		       "EXAMPLE\\JDoe",
		       14);
		b64enc(want, n + 14, q);
		fwd_is(target, true, q);
		/* Without credentials, the User tag as sent. */
		memcpy(want + n, "\x08\x07mallory", 9);
		b64enc(want, n + 9, q);
		fwd_is(target, false, q);
	}
}

/* The fields two parses must agree on. */
static void
same_fields(const struct eas_request *a, const struct eas_request *b, const char *t)
{
	const char *const fa[] = {a->user,    a->device_id,     a->device_type,
	                          a->item_id, a->collection_id, a->attachment_name,
	                          a->long_id, a->occurrence,    a->protocol_version};
	const char *const fb[] = {b->user,    b->device_id,     b->device_type,
	                          b->item_id, b->collection_id, b->attachment_name,
	                          b->long_id, b->occurrence,    b->protocol_version};

	if (a->cmd != b->cmd || a->query_form != b->query_form ||
	    a->has_policy_key != b->has_policy_key || a->policy_key != b->policy_key ||
	    a->save_in_sent != b->save_in_sent || a->accept_multipart != b->accept_multipart ||
	    a->has_locale != b->has_locale || a->locale != b->locale)
		fail_msg("%s: fields differ on the second parse", t);
	for (size_t i = 0; i < sizeof(fa) / sizeof(fa[0]); i++)
		if ((fa[i] == NULL) != (fb[i] == NULL) ||
		    (fa[i] != NULL && strcmp(fa[i], fb[i]) != 0))
			fail_msg("%s: field %zu \"%s\" then \"%s\"", t, i, fa[i] ? fa[i] : "-",
			         fb[i] ? fb[i] : "-");
}

/*
 * Idempotence: the EAS path with fwd_query parsed again (with the same
 * credentials) gives the same command, device, user and parameters, and the
 * same fwd_query; the user is the credentials' one when both were there.
 */
static void
test_fwd_idempotent(void **state)
{
	static const char *const targets[] = {
	    EAS "?Cmd=Sync&User=jdoe&DeviceId=ABC123&DeviceType=iPhone",
	    EAS "?cmd=ping&user=x%2By&deviceid=D%2B1&devicetype=a%2Fb&Foo=1",
	    EAS "?Cmd=SmartReply&DeviceId=D1&ItemId=5%3A12&SaveInSent=T"
	        "&AttachmentName=a%2Fb+c.txt&PolicyKey=12&AcceptMultiPart=F&CollectionId=5"
	        "&LongId=L1&Occurrence=2026-01-01&User=%7e%21%2A",
	    EAS "?jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
	    EAS "?oBEJBBBOaW5lMkVDN0VDMEJCNTREBAGJpmIHQW5kcm9pZAcBAA",
	    EAS "?eQIJBBCuTs0Z9ZK6Vldwb%2FdM8JusBHVeHIQDUFBDBwEBAwYxMTkyODEBBUlOQk9Y",
	    EAS "?Cmd=Sync&DeviceId=D1&CollectionId=%3F%23%3B%26%3D%25",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		for (int auth = 0; auth < 2; auth++) {
			struct eas_request *a = NULL, *b = NULL;
			char again[1024];

			if ((auth ? post(targets[i], &a) : parse_h("POST", targets[i], &a, NULL)) !=
			    EAS_REQ_OK)
				fail_msg("%s: %s", targets[i], errbuf);
			assert_non_null(a->fwd_query);
			snprintf(again, sizeof(again), EAS "?%s", a->fwd_query);
			if ((auth ? post(again, &b) : parse_h("POST", again, &b, NULL)) !=
			    EAS_REQ_OK)
				fail_msg("%s: %s", again, errbuf);
			if (auth && a->user != NULL)
				assert_string_equal(b->user, a->auth_user);
			else
				same_fields(a, b, targets[i]);
			assert_string_equal(a->device_id, b->device_id);
			assert_int_equal(a->cmd, b->cmd);
			assert_int_equal(b->n_extra, 0);
			assert_string_equal(a->fwd_query, b->fwd_query);
			eas_request_free(&a);
			eas_request_free(&b);
		}
	}
}

/* OPTIONS needs neither command nor device; methods are checked. */
static void
test_options_and_methods(void **state)
{
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(parse_h("OPTIONS", EAS, &r, NULL), EAS_REQ_OK);
	assert_int_equal(r->method, EAS_METHOD_OPTIONS);
	assert_int_equal(r->path_kind, EAS_PATH_EAS);
	assert_int_equal(r->cmd, EAS_CMD_NONE);
	assert_true(r->no_auth);
	assert_int_equal(r->query_form, EAS_QUERY_NONE);
	eas_request_free(&r);
	assert_int_equal(parse_h("OPTIONS", EAS, &r, "Authorization", AUTH_JDOE, NULL), EAS_REQ_OK);
	assert_false(r->no_auth);
	eas_request_free(&r);

	/* POST without Cmd or DeviceId; unknown command. */
	assert_int_equal(post(EAS, &r), EAS_REQ_ENOCMD);
	assert_int_equal(post(EAS "?DeviceId=D1", &r), EAS_REQ_ENOCMD);
	assert_int_equal(post(EAS "?Cmd=Sync", &r), EAS_REQ_ENODEVICEID);
	assert_int_equal(post(EAS "?Cmd=&DeviceId=D1", &r), EAS_REQ_ENOCMD);
	assert_int_equal(post(EAS "?Cmd=Frobnicate&DeviceId=D1", &r), EAS_REQ_EUNKNOWNCMD);
	assert_string_equal(errbuf, "query: unknown command \"Frobnicate\"");

	/* GET and others are recorded, not required to carry a command. */
	assert_int_equal(parse_h("GET", EAS, &r, NULL), EAS_REQ_OK);
	assert_int_equal(r->method, EAS_METHOD_GET);
	eas_request_free(&r);
	assert_int_equal(parse_h("PROPFIND", EAS, &r, NULL), EAS_REQ_OK);
	assert_int_equal(r->method, EAS_METHOD_OTHER);
	assert_string_equal(r->method_name, "PROPFIND");
	eas_request_free(&r);
	assert_int_equal(parse_h("post", EAS, &r, NULL), EAS_REQ_EMETHOD);
	assert_int_equal(parse_h("", EAS, &r, NULL), EAS_REQ_EMETHOD);
	assert_int_equal(parse_h("AVERYLONGMETHODNAME", EAS, &r, NULL), EAS_REQ_EMETHOD);
	assert_int_equal(eas_request_parse(&cfg, NULL, EAS, NULL, 0, &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_EINVAL);
	assert_int_equal(eas_request_parse(&cfg, "POST", EAS, NULL, 0, NULL, NULL, 0),
	                 EAS_REQ_EINVAL);
	assert_null(r);
}

/* The headers abqd reads. */
static void
test_headers(void **state)
{
	const char *q = EAS "?Cmd=Sync&DeviceId=D1&PolicyKey=12";
	struct eas_request *r = NULL;

	(void)state;
	assert_int_equal(parse_h("POST", q, &r, "ms-asprotocolversion", " 14.1 ", "X-MS-PolicyKey",
	                         "3942919513", "User-Agent", "Apple-iPhone/1", "Content-Type",
	                         "application/vnd.ms-sync.wbxml", "MS-ASAcceptMultiPart", "T",
	                         NULL),
	                 EAS_REQ_OK);
	assert_string_equal(r->protocol_version, "14.1");
	assert_true(r->has_policy_key);
	assert_int_equal(r->policy_key, 3942919513u);
	assert_string_equal(r->user_agent, "Apple-iPhone/1");
	assert_string_equal(r->content_type, "application/vnd.ms-sync.wbxml");
	assert_true(r->accept_multipart);
	eas_request_free(&r);

	/* Without the header, PolicyKey= counts. */
	assert_int_equal(parse_h("POST", q, &r, NULL), EAS_REQ_OK);
	assert_int_equal(r->policy_key, 12);
	eas_request_free(&r);

	assert_int_equal(parse_h("POST", q, &r, "X-MS-PolicyKey", "abc", NULL), EAS_REQ_EPOLICYKEY);
	assert_int_equal(parse_h("POST", q, &r, "X-MS-PolicyKey", "4294967296", NULL),
	                 EAS_REQ_EPOLICYKEY);
	assert_int_equal(parse_h("POST", q, &r, "X-MS-PolicyKey", "-1", NULL), EAS_REQ_EPOLICYKEY);
	assert_int_equal(post(EAS "?Cmd=Sync&DeviceId=D1&PolicyKey=1x", &r), EAS_REQ_EPOLICYKEY);
	assert_int_equal(parse_h("POST", q, &r, "MS-ASProtocolVersion", "fourteen", NULL),
	                 EAS_REQ_EVERSION);
	assert_int_equal(parse_h("POST", q, &r, "MS-ASProtocolVersion", "14.1",
	                         "MS-ASProtocolVersion", "16.1", NULL),
	                 EAS_REQ_EDUPHEADER);
	assert_int_equal(parse_h("POST", q, &r, "MS-ASAcceptMultiPart", "yes", NULL),
	                 EAS_REQ_EHEADER);
	assert_int_equal(parse_h("POST", q, &r, "User-Agent", "a\r\nX-Evil: 1", NULL),
	                 EAS_REQ_EHEADER);
	assert_null(r);
}

/* Every error code has its own message. */
/*
 * Requests parsed with a block cache, as the gateway parses them: a freed
 * request's block serves the next one, which shows nothing of the first; a
 * request too large for a block is allocated apart and freed apart.
 */
static void
test_block_cache(void **state)
{
	struct blk_cache blocks = {.size = 2048};
	struct eas_request_config bc = {NULL, pass_prefixes, 2, &blocks, NULL};
	struct eas_request *r = NULL;
	struct eas_header h[3] = {{.name = "Authorization", .value = AUTH_JDOE},
	                          {.name = "User-Agent", .value = "Apple-iPhone/1402.100"},
	                          {.name = "MS-ASProtocolVersion", .value = "14.1"}};
	char ua[3001];
	void *first;
	unsigned kept = 1;

#ifdef __SANITIZE_ADDRESS__
	kept = 0; /* blk_free hands every block back under ASan */
#endif
#ifdef ABQ_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		kept = 0; /* and under valgrind */
#endif

	(void)state;
	assert_int_equal(eas_request_parse(&bc, "POST",
	                                   EAS
	                                   "?Cmd=Sync&User=jdoe&DeviceId=D1&DeviceType=iPhone&X=1",
	                                   h, 3, &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	assert_string_equal(r->device_type, "iPhone");
	assert_int_equal(r->n_extra, 1);
	first = r;
	eas_request_free(&r);
	assert_int_equal(blocks.n, kept);

	assert_int_equal(eas_request_parse(&bc, "POST", EAS "?Cmd=Ping&User=jdoe&DeviceId=D2",
	                                   h + 1, 2, &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	if (kept)
		assert_ptr_equal(r, first);
	assert_int_equal(blocks.n, 0);
	assert_int_equal(r->cmd, EAS_CMD_PING);
	assert_string_equal(r->device_id, "D2");
	assert_null(r->device_type);
	assert_null(r->auth_user);
	assert_null(r->auth_password);
	assert_true(r->no_auth);
	assert_int_equal(r->n_extra, 0);
	assert_string_equal(r->user_agent, "Apple-iPhone/1402.100");
	eas_request_free(&r);

	memset(ua, 'U', sizeof(ua) - 1);
	ua[sizeof(ua) - 1] = '\0';
	h[1].value = ua;
	assert_int_equal(eas_request_parse(&bc, "POST", EAS "?Cmd=Ping&User=jdoe&DeviceId=D3", h, 3,
	                                   &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	assert_string_equal(r->user_agent, ua);
	assert_string_equal(r->auth_password, "s3cret");
	eas_request_free(&r);
	assert_int_equal(blocks.n, kept); /* the large one was not a block */
	blk_cache_clear(&blocks);
	assert_int_equal(blocks.n, 0);
}

/*
 * A request whose strings outgrow the parser's arena: every value is intact
 * and the request frees cleanly (the valgrind and ASan runs check the frees).
 */
static void
test_large_request(void **state)
{
	struct eas_request *r = NULL;
	struct eas_header h[4];
	char ua[4001], target[8192], cred[400], b64[600], auth[700], user[257];
	size_t off;

	(void)state;
	memset(ua, 'U', sizeof(ua) - 1);
	ua[sizeof(ua) - 1] = '\0';
	off = (size_t)snprintf(target, sizeof(target),
	                       EAS "?Cmd=Sync&User=jdoe&DeviceId=D1&DeviceType=%064d", 7);
	for (int i = 0; i < 20; i++) {
		off += (size_t)snprintf(target + off, sizeof(target) - off, "&X%02d=", i);
		for (int k = 0; k < 200; k++)
			target[off++] = (char)('a' + (i + k) % 26);
		target[off] = '\0';
	}
	memset(user, 'J', 256);
	user[256] = '\0';
	snprintf(cred, sizeof(cred), "%s:%s", user, "pw-with-some-length-0123456789");
	b64enc((const unsigned char *)cred, strlen(cred), b64);
	snprintf(auth, sizeof(auth), "Basic %s", b64);
	h[0] = (struct eas_header){.name = "Authorization", .value = auth};
	h[1] = (struct eas_header){.name = "User-Agent", .value = ua};
	h[2] =
	    (struct eas_header){.name = "content-type", .value = "application/vnd.ms-sync.wbxml"};
	h[3] = (struct eas_header){.name = "MS-ASPROTOCOLVERSION", .value = "16.1"};
	assert_int_equal(eas_request_parse(&cfg, "POST", target, h, 4, &r, errbuf, sizeof(errbuf)),
	                 EAS_REQ_OK);
	assert_int_equal(r->cmd, EAS_CMD_SYNC);
	assert_string_equal(r->device_id, "D1");
	assert_int_equal(strlen(r->device_type), 64);
	assert_string_equal(r->user_agent, ua);
	assert_string_equal(r->content_type, "application/vnd.ms-sync.wbxml");
	assert_string_equal(r->protocol_version, "16.1");
	assert_string_equal(r->auth_user, user);
	assert_string_equal(r->auth_password, "pw-with-some-length-0123456789");
	assert_int_equal(strlen(r->account), 256);
	assert_true(r->user_mismatch);
	assert_int_equal(r->n_extra, 20);
	for (int i = 0; i < 20; i++) {
		char name[8];

		snprintf(name, sizeof(name), "X%02d", i);
		assert_string_equal(r->extra[i].name, name);
		assert_int_equal(strlen(r->extra[i].value), 200);
		assert_int_equal(r->extra[i].value[199], 'a' + (i + 199) % 26);
	}
	eas_request_free(&r);
	assert_null(r);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int e = EAS_REQ_OK; e <= EAS_REQ_EQUERY; e++) {
		const char *s = eas_request_strerror((enum eas_req_err)e);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		for (int f = EAS_REQ_OK; f < e; f++)
			assert_string_not_equal(s, eas_request_strerror((enum eas_req_err)f));
	}
	assert_string_equal(eas_request_strerror((enum eas_req_err)999), "unknown error");
}

/*
 * Pseudo-random queries and credentials, mostly printable ASCII (to get past
 * the target check), one in four any byte: every answer is OK or an error
 * with text.
 */
static void
test_random_bytes(void **state)
{
	uint32_t seed = 12345;
	char q[200], target[256], auth[220];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (seed = seed * 1103515245 + 12345) % (sizeof(q) - 1);
		struct eas_request *r = NULL;
		enum eas_req_err err;

		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			q[k] =
			    (char)(i % 4 == 3 ? 1 + (seed >> 16) % 255 : 0x21 + (seed >> 16) % 94);
		}
		q[n] = '\0';
		snprintf(target, sizeof(target), EAS "?%s", q);
		snprintf(auth, sizeof(auth), "Basic %s", q);
		errbuf[0] = '\0';
		err = parse_h("POST", target, &r, "Authorization", i % 2 ? auth : AUTH_JDOE, NULL);
		if (err != EAS_REQ_OK)
			assert_true(errbuf[0] != '\0');
		eas_request_free(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_alphabet),
	    cmocka_unit_test(test_target_bytes),
	    cmocka_unit_test(test_query_verbatim),
	    cmocka_unit_test(test_header_lengths),
	    cmocka_unit_test(test_vector1),
	    cmocka_unit_test(test_vector2),
	    cmocka_unit_test(test_vector3),
	    cmocka_unit_test(test_vectors_truncated),
	    cmocka_unit_test(test_base64_messages),
	    cmocka_unit_test(test_base64_layout),
	    cmocka_unit_test(test_bad_base64),
	    cmocka_unit_test(test_plain_every_command),
	    cmocka_unit_test(test_plain_params),
	    cmocka_unit_test(test_percent),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_identity_canonical),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_canon_path),
	    cmocka_unit_test(test_canon_query),
	    cmocka_unit_test(test_fwd_query),
	    cmocka_unit_test(test_fwd_query_for),
	    cmocka_unit_test(test_fwd_idempotent),
	    cmocka_unit_test(test_options_and_methods),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_large_request),
	    cmocka_unit_test(test_block_cache),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
