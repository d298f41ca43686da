/*
 * hmap.c: the case-insensitive string hash map of the engine, the view and the
 * gateway (see hmap.h).
 *
 * Lookups are on the request path (several per evaluation), so keys are
 * hashed and compared eight bytes at a time, lower-cased with a SWAR trick,
 * rather than byte by byte.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/hmap.h"
#include "lib/util.h"

#define K1 0x9e3779b97f4a7c15ULL
#define K2 0xbf58476d1ce4e5b9ULL

/* Start with an empty map that allocates nothing until the first insert. */
void
abq_hmap_init(struct abq_hmap *m)
{
	memset(m, 0, sizeof(*m));
}

/* Release every key, every value through free_val, and the table. */
void
abq_hmap_free(struct abq_hmap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key == NULL)
			continue;
		free(m->slots[i].key);
		if (free_val != NULL)
			free_val(m->slots[i].val);
	}
	free(m->slots);
	abq_hmap_init(m);
}

/*
 * Lower-case the ASCII letters among eight bytes at once: a byte gets 0x20
 * added when it is below 0x80 and within 'A'..'Z'. Bytes >= 0x80 are left
 * alone, as abq_lc does.
 */
static inline uint64_t
swar_lower(uint64_t x)
{
	uint64_t low7 = x & 0x7f7f7f7f7f7f7f7fULL;
	uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL; /* high bit: byte >= 'A' */
	uint64_t gt_z = low7 + 0x2525252525252525ULL; /* high bit: byte > 'Z' */
	uint64_t upper = (ge_a ^ gt_z) & ~x & 0x8080808080808080ULL;
	return x | (upper >> 2);
}

/* n (<= 8) bytes of s, lower-cased, zero-padded. */
static inline uint64_t
load_lower(const unsigned char *s, size_t n)
{
	uint64_t x = 0;
	memcpy(&x, s, n);
	return swar_lower(x);
}

/* n (<= 8) bytes of s as they are, zero-padded. */
static inline uint64_t
load_raw(const unsigned char *s, size_t n)
{
	uint64_t x = 0;
	memcpy(&x, s, n);
	return x;
}

/* Fold len bytes of s, lower-cased, into h: one multiply per eight bytes. */
static inline uint64_t
hash_bytes(uint64_t h, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; len >= 8; p += 8, len -= 8) {
		h = (h ^ load_lower(p, 8)) * K1;
		h ^= h >> 32;
	}
	if (len > 0) {
		h = (h ^ load_lower(p, len)) * K1;
		h ^= h >> 32;
	}
	return h;
}

/*
 * The hash of key a[/b] given the lengths of its parts. The parts are hashed
 * one after the other (not as the joined string), so a lookup never builds
 * the joined string; insertion uses the same function.
 */
static uint64_t
key_hash(const char *a, size_t alen, const char *b, size_t blen)
{
	uint64_t h = hash_bytes(K2 ^ alen, a, alen);
	if (b != NULL)
		h = hash_bytes(h ^ ((uint64_t)blen << 40) ^ '/', b, blen);
	h ^= h >> 29;
	h *= K2;
	h ^= h >> 32;
	return h;
}

/* Do len bytes of s, lower-cased, equal the (lower-case) bytes at k? */
static inline bool
equal_lower(const unsigned char *k, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; len >= 8; p += 8, k += 8, len -= 8)
		if (load_lower(p, 8) != load_raw(k, 8))
			return false;
	return len == 0 || load_lower(p, len) == load_raw(k, len);
}

/* Does the stored slot hold a[/b] (lengths given), ignoring case? */
static bool
key_equal(const struct abq_hmap_slot *s, const char *a, size_t alen, const char *b, size_t blen)
{
	const unsigned char *k = (const unsigned char *)s->key;

	if (s->len != alen + (b != NULL ? blen + 1 : 0))
		return false;
	if (!equal_lower(k, a, alen))
		return false;
	if (b == NULL)
		return true;
	return k[alen] == '/' && equal_lower(k + alen + 1, b, blen);
}

/* The slot holding a[/b] with hash h, or the free slot where it would go. */
static struct abq_hmap_slot *
find_slot(const struct abq_hmap *m, uint64_t h, const char *a, size_t alen, const char *b,
          size_t blen)
{
	size_t mask = m->cap - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct abq_hmap_slot *s = &m->slots[i];
		if (s->key == NULL)
			return s;
		if (s->hash == h && key_equal(s, a, alen, b, blen))
			return s;
	}
}

/* The bit of lenmask for a key length. */
static inline uint64_t
len_bit(size_t len)
{
	return 1ULL << (len < 63 ? len : 63);
}

/*
 * Look a key up. Most misses on a small table (the exact rules of one
 * characteristic) are refused on length alone, before any hashing.
 */
void **
abq_hmap_get(const struct abq_hmap *m, const char *a, const char *b)
{
	if (m->count == 0 || a == NULL)
		return NULL;
	size_t alen = strlen(a), blen = b != NULL ? strlen(b) : 0;
	size_t len = alen + (b != NULL ? blen + 1 : 0);
	if ((m->lenmask & len_bit(len)) == 0)
		return NULL;
	uint64_t h = key_hash(a, alen, b, blen);
	struct abq_hmap_slot *s = find_slot(m, h, a, alen, b, blen);
	return s->key != NULL ? &s->val : NULL;
}

/* A single-part lookup whose length the caller knows (the rule index). */
void **
abq_hmap_get_len(const struct abq_hmap *m, const char *a, size_t alen)
{
	if (m->count == 0 || (m->lenmask & len_bit(alen)) == 0)
		return NULL;
	uint64_t h = key_hash(a, alen, NULL, 0);
	struct abq_hmap_slot *s = find_slot(m, h, a, alen, NULL, 0);
	return s->key != NULL ? &s->val : NULL;
}

/* Double the table (or make the first one) and re-insert every key. */
static void
grow(struct abq_hmap *m)
{
	size_t ncap = m->cap == 0 ? 16 : m->cap * 2;
	struct abq_hmap_slot *old = m->slots;
	size_t ocap = m->cap;

	m->slots = xcalloc(ncap, sizeof(*m->slots));
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].key == NULL)
			continue;
		size_t mask = ncap - 1, j = (size_t)old[i].hash & mask;
		while (m->slots[j].key != NULL)
			j = (j + 1) & mask;
		m->slots[j] = old[i];
	}
	free(old);
}

/* Find or add a key; a new key is stored lower-cased as "a" or "a/b". */
void **
abq_hmap_put(struct abq_hmap *m, const char *a, const char *b, bool *created_r)
{
	if ((m->count + 1) * 2 > m->cap)
		grow(m);
	size_t alen = strlen(a), blen = b != NULL ? strlen(b) : 0;
	size_t len = alen + (b != NULL ? blen + 1 : 0);
	uint64_t h = key_hash(a, alen, b, blen);
	struct abq_hmap_slot *s = find_slot(m, h, a, alen, b, blen);
	if (s->key != NULL) {
		if (created_r != NULL)
			*created_r = false;
		return &s->val;
	}
	char *key = xmalloc(len + 1);
	for (size_t i = 0; i < alen; i++)
		key[i] = (char)abq_lc((unsigned char)a[i]);
	if (b != NULL) {
		key[alen] = '/';
		for (size_t i = 0; i < blen; i++)
			key[alen + 1 + i] = (char)abq_lc((unsigned char)b[i]);
	}
	key[len] = '\0';
	s->key = key;
	s->hash = h;
	s->len = len;
	s->val = NULL;
	m->count++;
	m->lenmask |= len_bit(len);
	if (created_r != NULL)
		*created_r = true;
	return &s->val;
}
