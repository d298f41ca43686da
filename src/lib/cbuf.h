/*
 * cbuf.h: a growable byte buffer with a cap, for the bytes a peer sends.
 *
 * How much of a peer's bytes abqd holds is abqd's choice, never the peer's:
 * every buffer filled from the network has a cap (max), and an append that
 * would take it past the cap appends nothing and fails, so that the caller
 * answers (a 431, a 413, a protocol error, the answer relayed as it is)
 * instead of growing. The buffer may start in storage the caller owns (a few
 * hundred bytes inside a request, so that a usual message costs no
 * allocation) and moves to the heap when it outgrows it. It grows by
 * doubling, never past max.
 *
 * Sizes are 32-bit: a cbuf is 24 bytes, as it sits in every held connection
 * (the HTTP server's header buffer) and in every request (its body), and no
 * cap is near 4 GiB (cbuf_init refuses none, but clamps max to UINT32_MAX).
 * The caller's storage is not remembered once the bytes left it: cbuf_reset
 * keeps a buffer in its storage only while it is still there.
 *
 * Growth that is charged to something (the HTTP server's bodies share a
 * budget) is done in two steps: cbuf_grow_size says what the capacity would
 * become, the caller checks its budget and, if it agrees, cbuf_resize makes
 * it so; cbuf_heap says what the heap holds now.
 *
 * Zero-initialised it is unusable (max 0): start it with cbuf_init or
 * cbuf_init_with. cbuf_append is inline: it is on the parsers' paths, called
 * for every piece of every header.
 */
#ifndef ABQ_LIB_CBUF_H
#define ABQ_LIB_CBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cbuf {
	char *p;      /* the bytes: NULL, the caller's storage, or the heap */
	uint32_t len; /* bytes held */
	uint32_t cap; /* bytes p has room for, never more than max */
	uint32_t max; /* the cap on len */
	bool heap;    /* p is ours (the heap), not the caller's storage */
};

/* The smallest heap buffer cbuf_reserve allocates. */
#define CBUF_MIN 256

/* An empty buffer that will hold at most max bytes; nothing is allocated yet. */
void cbuf_init(struct cbuf *b, size_t max);
/*
 * An empty buffer that starts in storage (size bytes, owned by the caller and
 * outliving b) and moves to the heap beyond it; at most max bytes.
 */
void cbuf_init_with(struct cbuf *b, char *storage, size_t size, size_t max);
/* Room for n more bytes: 0, or -1 (nothing changed) when len + n would pass max. */
int cbuf_reserve(struct cbuf *b, size_t n);
/*
 * The capacity cbuf_reserve would give b for n more bytes, its heap starting
 * at first bytes: cap when they fit already, else the first of first, or
 * twice cap, doubled until len + n fits, never past max; 0 when len + n would
 * pass max. Nothing changes.
 */
size_t cbuf_grow_size(const struct cbuf *b, size_t n, size_t first);
/*
 * Move the bytes to a heap buffer of cap bytes (len <= cap <= max, else
 * clamped into that range): out of the caller's storage, or a realloc.
 */
void cbuf_resize(struct cbuf *b, size_t cap);
/*
 * Lower the cap to max (never below len, never raised); room beyond it is
 * given up (the heap shrunk to it: cbuf_heap changes).
 */
void cbuf_set_max(struct cbuf *b, size_t max);
/* Empty, the heap kept if it is at most keep bytes, else given back. */
void cbuf_clear(struct cbuf *b, size_t keep);
/*
 * Empty again, the heap given back: the buffer stays in the caller's storage
 * if its bytes are still there, else it has none (cbuf_init_with again).
 */
void cbuf_reset(struct cbuf *b);

/* Bytes the buffer holds on the heap (its capacity there), 0 in the caller's storage. */
static inline size_t
cbuf_heap(const struct cbuf *b)
{
	return b->heap ? b->cap : 0;
}

/* Append n bytes: 0, or -1 (nothing appended) when len + n would pass max. */
static inline int
cbuf_append(struct cbuf *b, const void *data, size_t n)
{
	if (__builtin_expect(n > b->cap - b->len, 0) && cbuf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += (uint32_t)n;
	return 0;
}

#endif
