/*
 * fuzz_compose.c: libFuzzer target over SmartReply/SmartForward's
 * composition (src/mime/compose.c) and submission's envelope reading
 * (submit_recipients, compose_header_block): the phone's MIME is peer bytes.
 *
 * An input is the phone's message, then a NUL byte and the original's (no
 * NUL: the same bytes for both). Each is composed as a reply and as a
 * forward; what compose_smart returns must be read back by msgconv, be
 * 7-bit and have CRLF line ends only where the phone's own bytes were not
 * kept as they are (so: msgconv parses it); submit_recipients and the
 * header blocks must not break on it; no GLib critical is logged.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/compose.h"
#include "mime/msgconv.h"
#include "native/submit.h"
#include "replay.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data, *err;
	const char *nul = memchr(raw, '\0', size);
	size_t plen = nul ? (size_t)(nul - raw) : size;
	struct compose_req req = {
	    .phone = raw,
	    .phone_len = plen,
	    .original = nul ? nul + 1 : raw,
	    .original_len = nul ? size - plen - 1 : size,
	};
	static const int kinds[] = {COMPOSE_REPLY, COMPOSE_FORWARD};

	/* A GLib critical is a misuse of GLib or GMime: a finding too. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char *out;
		size_t outlen;
		struct msgconv_msg m;

		req.kind = kinds[k];
		if (compose_smart(&req, &out, &outlen, &err) != 0)
			continue;
		if (strlen(out) > outlen)
			abort();
		/* Ours: read back as a recipient would. */
		if (msgconv_parse(out, outlen, NULL, &m, &err) != 0 && outlen > 0)
			abort();
		msgconv_msg_clear(&m);
		free(out);
	}
	if (plen > 0) {
		size_t n, hl, bo, bl;
		char *bad = NULL, *copy;
		char **r = submit_recipients(raw, plen, 50, &n, &bad, &err);

		if (r != NULL && (n == 0 || n > 50 || r[n] != NULL))
			abort();
		submit_rcpt_free(r);
		free(bad);
		compose_split_header(raw, plen, &hl, &bo);
		if (hl > plen || bo > plen || bo < hl)
			abort();
		char *h = compose_header_block(raw, hl, "a@b.example", true, &bl);
		if (strlen(h) != bl && memchr(raw, '\0', hl) == NULL)
			abort();
		free(h);
		if (compose_sent_copy(raw, plen, "a@b.example", &copy, &bl, &err) == 0)
			free(copy);
	}
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_compose_replay"};
#endif
