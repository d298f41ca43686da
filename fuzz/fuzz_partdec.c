/*
 * fuzz_partdec.c: libFuzzer target over the piecewise part decoder of native
 * mode (src/mime/partdec.c), which decodes the quoted-printable or base64
 * literal of an attachment an IMAP server sends when it has no BINARY.
 *
 * The input's first byte picks the encoding and where the literal is cut;
 * the rest is the literal. Checks:
 *  - the bytes out (and a base64 part's line regularity) do not depend on
 *    where the literal was cut: whole, byte by byte, and at a stride the
 *    input chooses, all decode alike;
 *  - the same bytes encoded by GMime decode back to them: exactly from
 *    base64 (its lines given CRLF ends, as a server sends them), and from
 *    quoted-printable but for a CRLF of the bytes, which GMime encodes as a
 *    line break and so comes back as LF; GMime's base64 lines are seen as
 *    regular (what lets a streamed window be read by its offset);
 *  - nothing out is longer than the encoded bytes in.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <gmime/gmime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/partdec.h"
#include "replay.h"

struct out {
	unsigned char *p;
	size_t len, cap;
};

static void
collect(void *arg, const char *d, size_t n)
{
	struct out *o = arg;

	if (n == 0 || n > 4096)
		abort(); /* emit's promise: pieces of 1 to 4 KiB */
	if (o->len + n > o->cap)
		abort(); /* more out than came in */
	memcpy(o->p + o->len, d, n);
	o->len += n;
}

/* s decoded in pieces of stride bytes (0: whole) into o; the decoder's line kept. */
static uint32_t
decode(enum partdec_enc enc, const unsigned char *s, size_t n, size_t stride, struct out *o)
{
	struct partdec d;

	partdec_init(&d, enc);
	o->len = 0;
	if (stride == 0)
		stride = n ? n : 1;
	for (size_t i = 0; i < n; i += stride)
		partdec_feed(&d, (const char *)s + i, n - i < stride ? n - i : stride, false,
		             collect, o);
	partdec_feed(&d, "", 0, true, collect, o);
	return partdec_regular_line(&d);
}

static void
same_cut_or_not(enum partdec_enc enc, const unsigned char *s, size_t n, size_t stride)
{
	struct out a = {malloc(n + 1), 0, n}, b = {malloc(n + 1), 0, n};
	uint32_t la = decode(enc, s, n, 0, &a);

	if (decode(enc, s, n, 1, &b) != la || a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
		abort();
	if (decode(enc, s, n, stride, &b) != la || a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
		abort();
	free(a.p);
	free(b.p);
}

/* GMime's encoding of s (base64 with CRLF line ends) decodes back to s. */
static void
round_trip(enum partdec_enc enc, const unsigned char *s, size_t n, size_t stride)
{
	size_t cap =
	    (enc == PARTDEC_BASE64 ? GMIME_BASE64_ENCODE_LEN(n) : GMIME_QP_ENCODE_LEN(n)) + 16;
	unsigned char *e = malloc(cap), *crlf = malloc(cap * 2 + 1);
	GMimeEncoding ge;
	size_t en, cn = 0;
	struct out o = {malloc(cap * 2 + 1), 0, cap * 2};
	uint32_t line;

	g_mime_encoding_init_encode(&ge, enc == PARTDEC_BASE64
	                                     ? GMIME_CONTENT_ENCODING_BASE64
	                                     : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	en = g_mime_encoding_flush(&ge, (const char *)s, n, (char *)e);
	if (en > cap)
		abort();
	for (size_t i = 0; i < en; i++) { /* line ends as a server sends them */
		if (e[i] == '\n' && enc == PARTDEC_BASE64)
			crlf[cn++] = '\r';
		crlf[cn++] = e[i];
	}
	line = decode(enc, crlf, cn, stride, &o);
	if (enc == PARTDEC_QP) { /* GMime writes a CRLF of the text as a line break */
		size_t w = 0;
		for (size_t i = 0; i < n; i++)
			if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
				e[w++] = s[i];
		s = e;
		n = w;
	}
	if (o.len != n || memcmp(o.p, s, n) != 0)
		abort();
	if (enc == PARTDEC_BASE64 && n > 0 && line == 0)
		abort(); /* GMime writes regular lines */
	free(e);
	free(crlf);
	free(o.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	enum partdec_enc enc;
	size_t stride;

	if (!init) {
		g_mime_init();
		init = true;
	}
	if (size < 1)
		return 0;
	enc = (data[0] & 1) ? PARTDEC_QP : PARTDEC_BASE64;
	stride = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	same_cut_or_not(enc, data, size, stride);
	round_trip(enc, data, size, stride);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_partdec_replay"};
#endif
