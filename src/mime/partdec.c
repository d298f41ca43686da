/*
 * partdec.c: quoted-printable and base64 decoded piece by piece (see
 * partdec.h for why it is ours).
 */
#include "mime/partdec.h"

#include <string.h>

void
partdec_init(struct partdec *d, enum partdec_enc enc)
{
	memset(d, 0, sizeof(*d));
	d->enc = enc;
}

/* A base64 character's value, or -1 (line breaks, padding and junk are skipped). */
static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* A hex digit's value, or -1. */
static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One base64 byte: a line's end and its length watched, a quantum's bytes out. */
static size_t
b64_byte(struct partdec *d, unsigned char c, char *out)
{
	int v;

	if (c == '\r' && !d->cr) {
		d->cr = true;
		return 0;
	}
	if (c == '\n' && d->cr) { /* a line ends: as long as the first, or the last */
		if (d->line == 0) {
			d->irregular = d->irregular || d->cur_line == 0;
			d->line = d->cur_line;
		} else if (d->short_seen || d->cur_line > d->line) {
			d->irregular = true;
		} else if (d->cur_line < d->line) {
			d->short_seen = true;
		}
		d->cr = false;
		d->cur_line = 0;
		return 0;
	}
	if (d->cr || (v = b64_val(c)) < 0) {
		d->irregular = d->irregular || c != '=' || d->cr;
		d->cr = false;
		d->cur_line += c == '=';
		d->pad = d->pad || c == '=';
		return 0;
	}
	if ((d->short_seen && d->cur_line == 0) || d->pad)
		d->irregular = true; /* a line after a short one, data after padding */
	d->cur_line++;
	d->q[d->nq++] = (unsigned char)v;
	if (d->nq < 4)
		return 0;
	out[0] = (char)(d->q[0] << 2 | d->q[1] >> 4);
	out[1] = (char)((d->q[1] & 15) << 4 | d->q[2] >> 2);
	out[2] = (char)((d->q[2] & 3) << 6 | d->q[3]);
	d->nq = 0;
	return 3;
}

/*
 * One quoted-printable byte; *again: read c once more as text (it ended
 * something that turned out not to be an escape). At most 2 bytes out.
 */
static size_t
qp_byte(struct partdec *d, unsigned char c, char *out, bool *again)
{
	int v;

	*again = false;
	if (d->nq == 0) { /* plain text */
		if (c == '=') {
			d->q[d->nq++] = c;
			return 0;
		}
		out[0] = (char)c;
		return 1;
	}
	if (d->nq == 1 && (c == '\n' || c == '\r')) { /* a soft line break */
		d->nq = c == '\r' ? 3 : 0;
		return 0;
	}
	if (d->nq == 3) { /* after "=\r" */
		d->nq = 0;
		*again = c != '\n';
		return 0;
	}
	if ((v = hex_val(c)) < 0) { /* not an escape: kept as it is */
		size_t n = d->nq;
		memcpy(out, d->q, n);
		d->nq = 0;
		*again = true;
		return n;
	}
	if (d->nq == 1) {
		d->q[d->nq++] = c;
		return 0;
	}
	out[0] = (char)(hex_val(d->q[1]) << 4 | v);
	d->nq = 0;
	return 1;
}

void
partdec_feed(struct partdec *d, const char *s, size_t n, bool end, partdec_emit_fn emit, void *arg)
{
	char out[4096];
	size_t o = 0;

	if (d->enc == PARTDEC_IDENTITY) {
		if (n > 0)
			emit(arg, s, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool again;
		if (o + 3 > sizeof(out)) {
			emit(arg, out, o);
			o = 0;
		}
		if (d->enc == PARTDEC_BASE64) {
			o += b64_byte(d, c, out + o);
			continue;
		}
		o += qp_byte(d, c, out + o, &again);
		if (again)
			i--;
	}
	if (end && d->cur_line > d->line)
		d->irregular = true; /* a last line longer than the others */
	if (end && d->enc == PARTDEC_BASE64 && d->nq >= 2) {
		out[o++] = (char)(d->q[0] << 2 | d->q[1] >> 4);
		if (d->nq == 3)
			out[o++] = (char)((d->q[1] & 15) << 4 | d->q[2] >> 2);
	}
	if (end)
		d->nq = 0;
	if (o > 0)
		emit(arg, out, o);
}

uint32_t
partdec_regular_line(const struct partdec *d)
{
	if (d->enc != PARTDEC_BASE64 || d->irregular || d->line == 0 || d->line % 4 != 0)
		return 0;
	return d->line;
}
