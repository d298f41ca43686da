/*
 * hmap.h: a string-keyed hash map: the engine's policy and rule index, the
 * daemon's view of the registry (core/view.c) and the gateway's device map.
 *
 * Keys are ASCII case-insensitive: they are stored lower-cased, and a lookup
 * hashes and compares the caller's string folded on the fly, so that the hot
 * path (one lookup per account, domain and entry on every request) allocates
 * nothing. A key may be given in two parts, a and b, meaning "a/b": the list
 * entries keyed by DeviceId/account are found without building that string.
 *
 * Open addressing with linear probing, a power-of-two table at most half full.
 * Entries are never removed: a policy is built once and then only read, and
 * the device maps keep a key once seen until the map is freed.
 */
#ifndef ABQ_LIB_HMAP_H
#define ABQ_LIB_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct abq_hmap_slot {
	char *key; /* lower-cased, owned; NULL: free slot */
	uint64_t hash;
	size_t len; /* of key */
	void *val;
};

struct abq_hmap {
	struct abq_hmap_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t count;
	uint64_t lenmask; /* bit min(len, 63) set for every key length: most misses on a
	                     small table are refused on length alone, without hashing */
};

void abq_hmap_init(struct abq_hmap *m);
/* Free the keys and the table; free_val (may be NULL) is called on each value. */
void abq_hmap_free(struct abq_hmap *m, void (*free_val)(void *));
/* The value slot of key a[/b], or NULL when absent. */
void **abq_hmap_get(const struct abq_hmap *m, const char *a, const char *b);
/* abq_hmap_get(m, a, NULL) for a caller that knows strlen(a) already. */
void **abq_hmap_get_len(const struct abq_hmap *m, const char *a, size_t alen);
/*
 * The value slot of key a[/b], created (value NULL) when absent; *created_r
 * (may be NULL) tells which.
 */
void **abq_hmap_put(struct abq_hmap *m, const char *a, const char *b, bool *created_r);

/* ASCII lower case of one byte. */
static inline unsigned char
abq_lc(unsigned char c)
{
	return (unsigned char)((unsigned)(c - 'A') < 26u ? c + ('a' - 'A') : c);
}

#endif
