/*
 * fuzz_outline.c: libFuzzer target over the outline builder of native mode
 * (src/native/outline.c), which rebuilds a large message for reading from
 * the BODYSTRUCTURE and header an IMAP server sends, and the main body's
 * text parts it fetches.
 *
 * The input is IMAP server responses (as fuzz_imap reads them); every FETCH
 * with a body structure is outlined, with the input's own bytes as its
 * header and as each text asked (from offsets the input fixes). Checks:
 *  - every leaf part the outline lists names a section the structure has
 *    (imap_body_find), a leaf, or "1" for a message of one part;
 *  - every text asked names one of the listed parts and asks no more than
 *    MBX_IMAP_TEXT_CAP bytes, and all of them no more than MBX_IMAP_RAW_CAP;
 *  - the outline holds no NUL unless the input gave one (header or text);
 *  - msgconv reads the outline (what the command layer does with it) without
 *    a crash under ASan and UBSan.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "mime/msgconv.h"
#include "native/outline.h"
#include "replay.h"

struct input {
	const char *p;
	size_t len;
};

static void
check(const struct imap_body *body, const struct input *in)
{
	struct outline_build *ob;
	struct mbx_outline_part *parts;
	size_t hlen = in->len < 4096 ? in->len : 4096, nparts, len;
	uint64_t asked = 0;
	char *out;

	ob = outline_start(in->p, hlen, body);
	for (size_t k = 0; k < ob->ntexts; k++) {
		bool named = false;
		if (ob->max[k] > MBX_IMAP_TEXT_CAP)
			abort();
		asked += ob->max[k];
		for (size_t i = 0; i < ob->nparts; i++)
			named = named || strcmp(ob->parts[i].section, ob->sec[k]) == 0;
		if (!named)
			abort();
		size_t off = in->len ? (k * 131) % in->len : 0;
		outline_text(ob, k, in->p + off, in->len - off);
	}
	if (asked > MBX_IMAP_RAW_CAP)
		abort();
	outline_finish(ob, &out, &len, &parts, &nparts);
	for (size_t i = 0; i < nparts; i++) {
		const struct imap_body *b = imap_body_find(body, parts[i].section);
		if (strnlen(parts[i].section, sizeof(parts[i].section)) == sizeof(parts[i].section))
			abort();
		if (b == NULL ? !(strcmp(parts[i].section, "1") == 0 && !body->multipart)
		              : b->multipart)
			abort();
	}
	if (memchr(out, '\0', len) != NULL && memchr(in->p, '\0', in->len) == NULL)
		abort();
	struct msgconv_opts o = {.no_mime = true};
	struct msgconv_msg m;
	const char *err;
	if (msgconv_parse(out, len, &o, &m, &err) == 0)
		msgconv_msg_clear(&m);
	free(out);
	free(parts);
}

static int
on_response(const struct imap_response *r, void *arg)
{
	struct imap_fetch f;
	const char *err;

	if (r->kind != IMAP_RESP_DATA || strcmp(r->name, "FETCH") != 0)
		return 0;
	memset(&f, 0, sizeof(f));
	if (imap_fetch_read(r, &f, &err) < 0)
		return 0;
	if (f.body != NULL)
		check(f.body, arg);
	imap_fetch_clear(&f);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {(const char *)data, size};
	struct imap_parser_cbs cbs = {.on_response = on_response};
	struct imap_parser *p;
	const char *err;

	msgconv_init();
	p = imap_parser_new(&cbs, &in);
	(void)imap_parser_feed(p, (const char *)data, size, &err);
	imap_parser_free(p);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_outline_replay"};
#endif
