/*
 * fuzz_autodiscover.c: libFuzzer target over the Autodiscover reader
 * (src/eas/autodiscover.c).
 *
 * The first input byte chooses what the rest becomes:
 *   even: a POX body (libxml2 without entities or network), answered as
 *         alice@example.com with and without an upstream to forward to;
 *   odd:  a JSON request, the rest split at its first newline into the path
 *         after "/autodiscover/autodiscover.json" and the query.
 * Every answer must be whole (its length that of its body) and must give the
 * public URL only for alice's own address.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * every file of the directories named on the command line through the same
 * function: the corpus replay test of the normal build.
 */
#include "eas/autodiscover.h"
#include "replay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL "https://mail.example.com/Microsoft-Server-ActiveSync"

/* Check one answer and free it. */
static void
check(const struct autod_request *req, enum autod_status st, int verdict, struct autod_answer *ans)
{
	if (verdict != AUTOD_ANSWER)
		return;
	if (ans->body == NULL || strlen(ans->body) != ans->len || ans->content_type == NULL)
		abort();
	/* The URL goes only to alice, for her own address. */
	if (strstr(ans->body, URL) != NULL && (st != AUTOD_OK || req->email == NULL ||
	                                       strcasecmp(req->email, "alice@example.com") != 0))
		abort();
	free(ans->body);
}

/* One input: parse it the way its first byte says, answer it twice, check, free. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct autod_ctx ctx = {
	    .account = "alice@example.com", .address = "alice@example.com", .public_url = URL};
	struct autod_request req;
	struct autod_answer ans;
	const char *why = NULL;
	enum autod_status st;

	if (size < 1 || size > AUTOD_BODY_MAX + 1)
		return 0;
	if ((data[0] & 1) == 0) {
		st = autod_parse_pox(data + 1, size - 1, &req, &why);
	} else {
		char *s = malloc(size + 40), *nl;

		if (s == NULL)
			abort();
		memcpy(s, "/autodiscover/autodiscover.json", 31);
		memcpy(s + 31, data + 1, size - 1);
		s[31 + size - 1] = '\0';
		nl = strchr(s, '\n');
		if (nl != NULL)
			*nl = '\0';
		st = autod_parse_json(s, nl != NULL ? nl + 1 : NULL, &req, &why);
		free(s);
	}
	if ((st == AUTOD_OK) != (why == NULL) || (st == AUTOD_OK && req.email == NULL))
		abort(); /* a refusal says why, an acceptance has an address */
	for (int fwd = 0; fwd < 2; fwd++) {
		ctx.can_forward = fwd;
		check(&req, st, autod_answer(&req, st, &ctx, &ans), &ans);
	}
	autod_request_clear(&req);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_autodiscover_replay"};
#endif
