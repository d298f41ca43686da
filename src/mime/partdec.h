/*
 * partdec.h: a MIME part's Content-Transfer-Encoding (RFC 2045 6.7
 * quoted-printable, 6.8 base64) decoded piece by piece, as an IMAP server's
 * literal arrives.
 *
 * fetch_part (src/native/mailbox_imap.c) reads a part through
 * BODY.PEEK[section] when the server has no BINARY (RFC 3516) and decodes
 * it here as the literal's pieces come: an escape or a base64 quantum cut by
 * a piece's end is carried to the next piece, so the bytes out do not depend
 * on where the pieces were cut. GMime's decoders would do the decoding, but
 * not the one thing fetch_part needs beside it: whether a base64 part's lines
 * are regular (every line but the last of the same length, a multiple of 4,
 * CRLF-ended, nothing else on them), which lets the next windows of a
 * streamed attachment be read by their encoded offset instead of from the
 * start. So the decoder is ours; fuzz/fuzz_partdec.c checks it against
 * GMime's encoders and for its independence from the cuts.
 *
 * Lenient as mail readers are: base64 skips what is not in its alphabet, a
 * partial last quantum gives its whole bytes; quoted-printable keeps an "="
 * that starts no escape as it is, and takes a soft line break ended by CRLF
 * or a bare LF.
 */
#ifndef ABQ_MIME_PARTDEC_H
#define ABQ_MIME_PARTDEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum partdec_enc { PARTDEC_IDENTITY, PARTDEC_BASE64, PARTDEC_QP };

/* A decoder's state; zero it (or partdec_init) before the part's first byte. */
struct partdec {
	enum partdec_enc enc;
	unsigned char q[4]; /* base64: the quantum so far; QP: "=" and a hex digit */
	unsigned nq;
	/* base64: the first line's length (base64 characters), the current one's */
	uint32_t line, cur_line;
	bool irregular, short_seen, cr, pad;
};

/* Decoded bytes out, in order, in pieces of at most 4 KiB. */
typedef void (*partdec_emit_fn)(void *arg, const char *d, size_t n);

/* d ready for a part in enc. */
void partdec_init(struct partdec *d, enum partdec_enc enc);

/*
 * The part's next n encoded bytes; end: the part is over (a partial base64
 * quantum gives its whole bytes, a dangling "=" of quoted-printable is
 * dropped). Decoded bytes go to emit.
 */
void partdec_feed(struct partdec *d, const char *s, size_t n, bool end, partdec_emit_fn emit,
                  void *arg);

/*
 * After the end of a base64 part: the length of its lines (base64
 * characters, a multiple of 4) when they are regular, else 0.
 */
uint32_t partdec_regular_line(const struct partdec *d);

#endif
