/*
 * fuzz_canon.c: libFuzzer target over the canonical request: the path
 * normaliser, the classification, and the path and query abqd forwards.
 *
 * The first input byte chooses the method (POST or OPTIONS), the credentials
 * (none, "EXAMPLE\JDoe", a user name of 256 bytes, one with bytes to escape)
 * and what the rest becomes:
 *   0: a whole request target,
 *   1: the query of the EAS path,
 *   2: a base64 query whose decoded bytes are the rest (re-encoded here),
 *   3: a target under the passthrough entry "/autodiscover/".
 * Every accepted request goes through canon_check (canon_check.h): the
 * forwarded target parsed again gives the same request, or the run aborts.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include "canon_check.h"
#include "lib/b64.h"
#include "eas/request.h"
#include "lib/util.h"
#include "replay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Standard base64 of b[0..n) into a new NUL-terminated string (lib/b64.h). */
static char *
b64_encode_new(const uint8_t *b, size_t n)
{
	char *s = malloc(B64_ENCODED_LEN(n) + 1);

	if (s == NULL)
		abort();
	b64_encode(b, n, s);
	return s;
}

/* A new string: prefix then s. */
static char *
cat2(const char *prefix, const char *s)
{
	size_t n = strlen(prefix) + strlen(s) + 1;
	char *t = malloc(n);

	if (t == NULL)
		abort();
	snprintf(t, n, "%s%s", prefix, s);
	return t;
}

/* One input: build the target the mode byte says, parse, check the invariants. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pass[] = {"/autodiscover/", "/EWS"};
	static struct blk_cache blocks = {.size = 2048}; /* as the gateway has it */
	static char long_auth[400];
	/* "EXAMPLE\JDoe:s3cret"; "a b@c%d&e=f+g:pw" */
	static const char *const auths[] = {NULL, "Basic RVhBTVBMRVxKRG9lOnMzY3JldA==", long_auth,
	                                    "Basic YSBiQGMlZCZlPWYrZzpwdw=="};
	struct eas_request_config cfg = {NULL, pass, 2, &blocks, "example.com"};
	struct eas_header hdr[2] = {
	    {.name = "MS-ASProtocolVersion", .value = "14.1", .name_len = 20, .value_len = 4},
	    {.name = "Authorization", .value = NULL, .name_len = 13},
	};
	struct eas_request *req = NULL;
	char err[EAS_REQ_ERRBUF], *body, *target, *b64;
	const char *method;
	size_t nh;

	if (size < 1 || size > 16 * 1024)
		return 0;
	if (long_auth[0] == '\0') {
		/* 256 'u' then ":p", base64: 258 bytes -> 344 characters. */
		uint8_t cred[258];

		memset(cred, 'u', 256);
		cred[256] = ':';
		cred[257] = 'p';
		b64 = b64_encode_new(cred, sizeof(cred));
		snprintf(long_auth, sizeof(long_auth), "Basic %s", b64);
		free(b64);
	}
	method = data[0] & 0x10 ? "OPTIONS" : "POST";
	hdr[1].value = auths[data[0] >> 2 & 3];
	nh = hdr[1].value != NULL ? 2 : 1;
	body = malloc(size);
	if (body == NULL)
		abort();
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0'; /* an embedded NUL just ends the string early */
	switch (data[0] & 3) {
	case 0:
		target = strdup(body);
		if (target == NULL)
			abort();
		break;
	case 1:
		target = cat2("/Microsoft-Server-ActiveSync?", body);
		break;
	case 2:
		b64 = b64_encode_new(data + 1, size - 1);
		target = cat2("/Microsoft-Server-ActiveSync?", b64);
		free(b64);
		break;
	default:
		target = cat2("/autodiscover/", body);
		break;
	}
	if (eas_request_parse(&cfg, method, target, hdr, nh, &req, err, sizeof(err)) ==
	    EAS_REQ_OK) {
		canon_check(&cfg, method, hdr, nh, req);
		eas_request_free(&req);
	} else if (req != NULL || err[0] == '\0') {
		abort(); /* a failure must leave no request and must say why */
	}
	free(target);
	free(body);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_canon_replay"};
#endif
