/*
 * b64.c: strict base64 decoding (see b64.h for what "strict" means and why
 * this is not OpenSSL's decoder).
 */
#include "eas/b64.h"

#include <stdint.h>

/* The 6-bit value of a base64 data character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode quantum by quantum. The data characters are counted first (the run
 * before any '='), then the padding is checked: at most two '=', only at the
 * end, and only to complete the last quantum to four characters. A lone data
 * character in the last quantum encodes no whole byte and is an error.
 */
int
b64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen, size_t *errpos,
           const char **errstr)
{
	size_t ndata, npad, i, o = 0;
	uint32_t acc = 0;
	int nacc = 0;

	for (ndata = 0; ndata < len && in[ndata] != '='; ndata++) {
		if (b64_value((unsigned char)in[ndata]) < 0) {
			*errpos = ndata;
			*errstr = "not a base64 character";
			return -1;
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
	for (i = 0; i < ndata; i++) {
		acc = (acc << 6) | (uint32_t)b64_value((unsigned char)in[i]);
		nacc += 6;
		if (nacc >= 8) {
			nacc -= 8;
			out[o++] = (unsigned char)(acc >> nacc);
			acc &= (1u << nacc) - 1;
		}
	}
	*outlen = o;
	return 0;
}
