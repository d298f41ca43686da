/*
 * b64.h: abqd's one base64 module (RFC 4648): a strict decoder (section 4,
 * standard alphabet) for the two places a request carries base64, the
 * MS-ASHTTP base64 query and the Authorization: Basic credentials; and the
 * encoders every writer of base64 uses: padded standard base64 (the
 * forwarded query, the Basic credentials of an auth probe, RFC 2047 words in
 * notice subjects) and unpadded base64url (section 5: admin API tokens).
 *
 * Strict means: only A-Z a-z 0-9 + / are data; '=' may only close the last
 * quantum (and must then complete it to four characters); no white space, no
 * line breaks, no URL-safe alphabet. Padding itself is optional, because some
 * clients strip it from the query. Leftover bits in the last quantum are
 * ignored (every encoder writes them as zero; refusing them would only break
 * a sloppy client without making any byte ambiguous).
 *
 * Why not OpenSSL: EVP_DecodeBlock skips leading and trailing white space,
 * refuses unpadded input and counts padding as decoded zero bytes;
 * EVP_DecodeUpdate accepts embedded white space and line breaks. Neither says
 * where the input went wrong. Thirty lines of our own give exact positions and
 * keep libcrypto out of the protocol layer.
 */
#ifndef ABQ_LIB_B64_H
#define ABQ_LIB_B64_H

#include <stddef.h>

/* The characters (without the NUL) that n bytes encode to, padded. */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)
/* The most bytes that len characters of base64 can decode to. */
#define B64_DECODED_MAX(len) (((len) + 3) / 4 * 3)

/*
 * Decode in[0..len) into out, which must hold B64_DECODED_MAX(len) bytes.
 * Returns 0 with *outlen set, or -1 with *errpos set to the offset of the
 * offending character (len for a truncated quantum) and *errstr to a static
 * reason; out may then hold some bytes decoded before the error (a caller
 * holding secrets there wipes the whole buffer).
 */
int b64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen, size_t *errpos,
               const char **errstr);
/*
 * Encode in[0..n) as standard padded base64 into out, which must hold
 * B64_ENCODED_LEN(n) + 1 bytes; NUL-terminated. Returns the length written.
 * The form the forwarded base64 query takes (request.c).
 */
size_t b64_encode(const unsigned char *in, size_t n, char *out);
/* The characters (without the NUL) that n bytes encode to in unpadded base64url. */
#define B64URL_ENCODED_LEN(n) (((n)*4 + 2) / 3)
/*
 * Encode in[0..n) as base64url without padding (RFC 4648 section 5) into out,
 * which must hold B64URL_ENCODED_LEN(n) + 1 bytes; NUL-terminated. Returns the
 * length written.
 */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);

#endif
