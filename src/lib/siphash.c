/*
 * siphash.c: SipHash-2-4-128; see siphash.h for why abqd has its own.
 * Two compression rounds per 8-byte word, four finalization rounds per
 * output half, as the paper specifies the 128-bit variant.
 */
#include "lib/siphash.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3)                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

/* A little-endian 64-bit word from 8 bytes. */
static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

/* The 8 bytes of a word, little-endian. */
static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
compress(struct siphash *h, uint64_t m)
{
	h->v3 ^= m;
	SIPROUND(h->v0, h->v1, h->v2, h->v3);
	SIPROUND(h->v0, h->v1, h->v2, h->v3);
	h->v0 ^= m;
}

void
siphash_init(struct siphash *h, const uint8_t key[SIPHASH_KEY_LEN])
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);

	h->v0 = k0 ^ 0x736f6d6570736575ull;        /* "somepseudorandomlygeneratedbytes" */
	h->v1 = k1 ^ 0x646f72616e646f6dull ^ 0xee; /* 0xee: the 128-bit output variant */
	h->v2 = k0 ^ 0x6c7967656e657261ull;
	h->v3 = k1 ^ 0x7465646279746573ull;
	h->tail = 0;
	h->len = 0;
}

void
siphash_update(struct siphash *h, const void *data, size_t n)
{
	const uint8_t *p = data;
	size_t have = h->len % 8;

	h->len += n;
	/* Fill a partial word first. */
	while (have != 0 && n > 0) {
		h->tail |= (uint64_t)*p++ << (8 * have);
		n--;
		if (++have == 8) {
			compress(h, h->tail);
			h->tail = 0;
			have = 0;
		}
	}
	for (; n >= 8; n -= 8, p += 8)
		compress(h, le64(p));
	for (size_t i = 0; i < n; i++)
		h->tail |= (uint64_t)p[i] << (8 * i);
}

void
siphash_final(struct siphash *h, uint8_t out[SIPHASH_OUT_LEN])
{
	uint64_t b = (uint64_t)(h->len & 0xff) << 56 | h->tail;

	compress(h, b);
	h->v2 ^= 0xee;
	for (int i = 0; i < 4; i++)
		SIPROUND(h->v0, h->v1, h->v2, h->v3);
	put_le64(out, h->v0 ^ h->v1 ^ h->v2 ^ h->v3);
	h->v1 ^= 0xdd;
	for (int i = 0; i < 4; i++)
		SIPROUND(h->v0, h->v1, h->v2, h->v3);
	put_le64(out + 8, h->v0 ^ h->v1 ^ h->v2 ^ h->v3);
	explicit_bzero(h, sizeof(*h));
}
