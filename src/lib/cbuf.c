/*
 * cbuf.c: the capped growable buffer (cbuf.h).
 */
#include "lib/cbuf.h"

#include <stdlib.h>

#include "lib/util.h"

/* The smallest heap buffer: below it, doubling would only cost reallocs. */
#define CBUF_MIN 256

/* An empty buffer of at most max bytes, nothing allocated until the first append. */
void
cbuf_init(struct cbuf *b, size_t max)
{
	*b = (struct cbuf){.max = max};
}

/* An empty buffer in the caller's storage (at most max of it is used). */
void
cbuf_init_with(struct cbuf *b, char *storage, size_t size, size_t max)
{
	*b = (struct cbuf){.p = storage,
	                   .cap = size < max ? size : max,
	                   .max = max,
	                   .own = storage,
	                   .own_size = size};
}

/*
 * Make room for n more bytes: double the capacity until they fit, but never
 * past max (a peer that sends more is refused here, before anything grows);
 * out of the caller's storage, the bytes move to the heap.
 */
__attribute__((noinline)) int
cbuf_reserve(struct cbuf *b, size_t n)
{
	size_t need, cap;

	if (n > b->max - b->len)
		return -1;
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	cap = b->cap > CBUF_MIN / 2 ? b->cap : CBUF_MIN / 2;
	while (cap < need && cap <= b->max / 2)
		cap *= 2;
	if (cap < need || cap > b->max)
		cap = b->max;
	if (b->p == b->own) {
		char *heap = xmalloc(cap);
		if (b->len > 0)
			memcpy(heap, b->p, b->len);
		b->p = heap;
	} else {
		b->p = xrealloc(b->p, cap);
	}
	b->cap = cap;
	return 0;
}

/* Empty, with the heap freed and the caller's storage (if any) in use again. */
void
cbuf_reset(struct cbuf *b)
{
	if (b->p != b->own)
		free(b->p);
	b->p = b->own;
	b->cap = b->own_size < b->max ? b->own_size : b->max;
	b->len = 0;
}
