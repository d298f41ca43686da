/*
 * b64.c: strict base64 decoding (see b64.h for what "strict" means and why
 * this is not OpenSSL's decoder).
 */
#include <stdbool.h>

#include "lib/b64.h"

#include <stdint.h>

/*
 * The 6-bit value of each byte, or -1: one table look-up a character, as the
 * Authorization header of every request is decoded here.
 */
/* clang-format off */
#define B64_ROW_NONE -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
static const signed char b64_values[256] = {
    B64_ROW_NONE, /* 0x00 */
    B64_ROW_NONE, /* 0x10 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,         /* 0x20: + / */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,         /* 0x30: 0-9 */
    -1, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,         /* 0x40: A-O */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,         /* 0x50: P-Z */
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,         /* 0x60: a-o */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,         /* 0x70: p-z */
    B64_ROW_NONE, B64_ROW_NONE, B64_ROW_NONE, B64_ROW_NONE, /* 0x80-0xbf */
    B64_ROW_NONE, B64_ROW_NONE, B64_ROW_NONE, B64_ROW_NONE, /* 0xc0-0xff */
};
/* clang-format on */

static int
b64_value(unsigned char c)
{
	return b64_values[c];
}

/*
 * Decode in one pass over the data characters (the run before any '='),
 * then check the padding: at most two '=', only at the end, and only to
 * complete the last quantum to four characters. A lone data character in the
 * last quantum encodes no whole byte and is an error. On an error out may
 * hold some bytes already; *outlen is set only on success.
 */
int
b64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen, size_t *errpos,
           const char **errstr)
{
	size_t ndata, npad, i, o = 0;
	uint32_t acc = 0;
	int nacc = 0;

	/*
	 * Whole groups of four data characters first, three bytes each; the
	 * first group holding a '=' or a bad character is left to the loop
	 * below, which starts with nothing carried (a group ends on a byte).
	 */
	for (ndata = 0; ndata + 4 <= len; ndata += 4) {
		const unsigned char *g = (const unsigned char *)in + ndata;
		int a = b64_values[g[0]], b = b64_values[g[1]], c = b64_values[g[2]],
		    d = b64_values[g[3]];
		uint32_t v;

		if ((a | b | c | d) < 0)
			break;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	for (; ndata < len && in[ndata] != '='; ndata++) {
		int v = b64_value((unsigned char)in[ndata]);

		if (v < 0) {
			*errpos = ndata;
			*errstr = "not a base64 character";
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		nacc += 6;
		if (nacc >= 8) {
			nacc -= 8;
			out[o++] = (unsigned char)(acc >> nacc);
			acc &= (1u << nacc) - 1;
		}
	}
	npad = len - ndata;
	for (i = ndata; i < len; i++) {
		if (in[i] != '=') {
			*errpos = i;
			*errstr = "data after '=' padding";
			return -1;
		}
	}
	if (ndata % 4 == 1) {
		*errpos = len;
		*errstr = "truncated base64 (one character in the last group)";
		return -1;
	}
	if (npad > 0 && (npad > 2 || (ndata + npad) % 4 != 0)) {
		*errpos = ndata;
		*errstr = "wrong amount of '=' padding";
		return -1;
	}
	*outlen = o;
	return 0;
}

/* Base64 of in[0..n) in alphabet a, padded or not, into out; the length written. */
static size_t
encode(const char *a, bool pad, const unsigned char *in, size_t n, char *out)
{
	char *o = out;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		*o++ = a[v >> 18 & 63];
		*o++ = a[v >> 12 & 63];
		if (i + 1 < n || pad)
			*o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
		if (i + 2 < n || pad)
			*o++ = i + 2 < n ? a[v & 63] : '=';
	}
	*o = '\0';
	return (size_t)(o - out);
}

/* Standard padded base64 of in[0..n) into out; see b64.h. */
size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	return encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true, in,
	              n, out);
}

/* base64url without padding of in[0..n) into out; see b64.h. */
size_t
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	return encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false, in,
	              n, out);
}
