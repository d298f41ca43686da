/*
 * cbuf.h: a growable byte buffer with a cap, for the bytes a peer sends.
 *
 * How much of a peer's bytes abqd holds is abqd's choice, never the peer's:
 * every buffer filled from the network has a cap (max), and an append that
 * would take it past the cap appends nothing and fails, so that the caller
 * answers (a 431, a protocol error, the answer relayed as it is) instead of
 * growing. The buffer may start in storage the caller owns (a few hundred
 * bytes inside a request, so that a usual message costs no allocation) and
 * moves to the heap when it outgrows it. It grows by doubling, never past max.
 *
 * Zero-initialised it is unusable (max 0): start it with cbuf_init or
 * cbuf_init_with. cbuf_append is inline: it is on the parsers' paths, called
 * for every piece of every header.
 */
#ifndef ABQ_LIB_CBUF_H
#define ABQ_LIB_CBUF_H

#include <stddef.h>
#include <string.h>

struct cbuf {
	char *p;         /* the bytes: NULL, the caller's storage, or the heap */
	size_t len;      /* bytes held */
	size_t cap;      /* bytes p has room for, never more than max */
	size_t max;      /* the cap on len */
	char *own;       /* the caller's storage (never freed here), or NULL */
	size_t own_size; /* its size */
};

/* An empty buffer that will hold at most max bytes; nothing is allocated yet. */
void cbuf_init(struct cbuf *b, size_t max);
/*
 * An empty buffer that starts in storage (size bytes, owned by the caller and
 * outliving b) and moves to the heap beyond it; at most max bytes.
 */
void cbuf_init_with(struct cbuf *b, char *storage, size_t size, size_t max);
/* Room for n more bytes: 0, or -1 (nothing changed) when len + n would pass max. */
int cbuf_reserve(struct cbuf *b, size_t n);
/* Empty again, the heap given back: the buffer is back in its storage (if any). */
void cbuf_reset(struct cbuf *b);

/* Append n bytes: 0, or -1 (nothing appended) when len + n would pass max. */
static inline int
cbuf_append(struct cbuf *b, const void *data, size_t n)
{
	if (__builtin_expect(n > b->cap - b->len, 0) && cbuf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

#endif
