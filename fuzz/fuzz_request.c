/*
 * fuzz_request.c: libFuzzer target over the MS-ASHTTP request decoder.
 *
 * The first input byte chooses what the rest becomes:
 *   0: the query of a POST to the EAS path (plain or base64, as it comes),
 *   1: the value of an Authorization header (with a fixed valid query),
 *   2: the raw base64-decoded bytes of a base64 query (re-encoded here, so the
 *      fuzzer explores the binary layout instead of the base64 alphabet),
 *   3: a whole request target, with two passthrough prefixes configured.
 * Every successful parse is also described, to exercise that path, and
 * checked against the invariants of the canonical request (canon_check.h).
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * every file of the directories (or files) named on the command line through
 * the same function: the corpus replay test of the normal build.
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

/* One input: build a request the way the mode byte says, parse, describe, free. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pass[] = {"/autodiscover/", "/ews/"};
	static struct blk_cache blocks = {.size = 2048}; /* as the gateway has it */
	struct eas_request_config cfg = {NULL, pass, 2, &blocks, NULL};
	/* With their lengths, as the gateway passes what the HTTP server measured. */
	struct eas_header hdr[3] = {
	    {.name = "MS-ASProtocolVersion", .value = "14.1", .name_len = 20, .value_len = 4},
	    {.name = "User-Agent", .value = "fuzz", .name_len = 10, .value_len = 4},
	    {.name = "Authorization", .value = "Basic ZG9tXFVzZXI6cGFzcw==", .name_len = 13},
	};
	struct eas_request *req = NULL;
	char err[EAS_REQ_ERRBUF], desc[512], *body, *target, *b64 = NULL;
	const char *method = "POST";

	if (size < 1 || size > 64 * 1024)
		return 0;
	body = malloc(size);
	if (body == NULL)
		abort();
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0'; /* an embedded NUL just ends the string early */
	switch (data[0] % 4) {
	case 0:
		target = malloc(strlen(body) + 64);
		if (target == NULL)
			abort();
		snprintf(target, strlen(body) + 64, "/Microsoft-Server-ActiveSync?%s", body);
		break;
	case 1:
		hdr[2].value = body;
		hdr[2].value_len = strlen(body);
		target = strdup("/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=D1&User=u");
		break;
	case 2:
		b64 = b64_encode_new(data + 1, size - 1);
		target = malloc(strlen(b64) + 64);
		if (target == NULL)
			abort();
		snprintf(target, strlen(b64) + 64, "/Microsoft-Server-ActiveSync?%s", b64);
		break;
	default:
		target = strdup(body);
		method = size % 2 ? "OPTIONS" : "POST";
		break;
	}
	if (target == NULL)
		abort();
	if (eas_request_parse(&cfg, method, target, hdr, 3, &req, err, sizeof(err)) == EAS_REQ_OK) {
		eas_request_describe(req, desc, sizeof(desc));
		canon_check(&cfg, method, hdr, 3, req);
		eas_request_free(&req);
	} else if (req != NULL || err[0] == '\0') {
		abort(); /* a failure must leave no request and must say why */
	}
	free(target);
	free(b64);
	free(body);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_request_replay"};
#endif
