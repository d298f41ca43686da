/*
 * fuzz_msgconv.c: libFuzzer target over the message converter of native
 * mode (src/mime/msgconv.c): the bytes of a mail message, as an IMAP
 * server hands any message it stores, parsed, then every body type asked at
 * several truncations with and without AllOrNone, and the Preview. Checks
 * what a phone relies on: text out is valid UTF-8, a cut body is never
 * longer than asked, AllOrNone withholds a body that does not fit; no GLib
 * critical (a call GLib or GMime refuses) is ever logged.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/msgconv.h"
#include "replay.h"

/* s is valid UTF-8 without a NUL inside its len bytes, or the run stops. */
static void
check_utf8(const char *s, size_t len)
{
	if (s != NULL && (strlen(s) != len || !g_utf8_validate(s, (gssize)len, NULL)))
		abort();
}

/* One body type at one truncation. */
static void
one_body(const struct msgconv_msg *m, int type, size_t cut, bool aon)
{
	struct msgconv_body b;
	const char *err;

	if (msgconv_body(m, type, cut, aon, &b, &err) != 0) {
		if (type != MSGCONV_BODY_MIME || m->mime != NULL)
			abort();
		return;
	}
	if (cut > 0 && b.len > cut)
		abort();
	if (b.truncated != (cut > 0 && cut < b.estimated_size))
		abort();
	if (aon && b.truncated && b.data != NULL)
		abort();
	if (type != MSGCONV_BODY_MIME)
		check_utf8(b.data, b.len);
	msgconv_body_clear(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {MSGCONV_BODY_PLAIN, MSGCONV_BODY_HTML, MSGCONV_BODY_MIME};
	struct msgconv_msg m;
	const char *err;

	/* A GLib critical is a misuse of GLib or GMime: a finding too. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	if (msgconv_parse((const char *)data, size, NULL, &m, &err) == 0) {
		check_utf8(m.from, strlen(m.from));
		check_utf8(m.subject, strlen(m.subject));
		check_utf8(m.plain, m.plain_len);
		check_utf8(m.html, m.html_len);
		for (size_t i = 0; i < m.n_att; i++)
			check_utf8(m.att[i].name, strlen(m.att[i].name));
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			size_t cuts[] = {0, 1, 3, 64, size / 2 + 1};
			for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
				one_body(&m, types[t], cuts[c], false);
				one_body(&m, types[t], cuts[c], true);
			}
		}
		char *p = msgconv_preview(&m, 255);
		check_utf8(p, strlen(p));
		free(p);
	}
	msgconv_msg_clear(&m);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_msgconv_replay"};
#endif
