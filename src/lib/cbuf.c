/*
 * cbuf.c: the capped growable buffer (cbuf.h).
 */
#include "lib/cbuf.h"

#include <stdlib.h>

#include "lib/util.h"

/* max as the 32-bit field holds it: no cap abqd sets is near 4 GiB. */
static uint32_t
cap32(size_t max)
{
	return max < UINT32_MAX ? (uint32_t)max : UINT32_MAX;
}

/* An empty buffer of at most max bytes, nothing allocated until the first append. */
void
cbuf_init(struct cbuf *b, size_t max)
{
	*b = (struct cbuf){.max = cap32(max)};
}

/* An empty buffer in the caller's storage (at most max of it is used). */
void
cbuf_init_with(struct cbuf *b, char *storage, size_t size, size_t max)
{
	*b = (struct cbuf){.p = storage, .max = cap32(max)};
	b->cap = size < b->max ? (uint32_t)size : b->max;
}

/*
 * The capacity for n more bytes: doubling (from first, or from twice the
 * capacity) until they fit, but never past max, so that a peer that sends
 * more is refused before anything grows. Computed in size_t: no overflow.
 */
size_t
cbuf_grow_size(const struct cbuf *b, size_t n, size_t first)
{
	size_t need, cap;

	if (n > (size_t)b->max - b->len)
		return 0;
	need = (size_t)b->len + n;
	if (need <= b->cap)
		return b->cap;
	cap = (size_t)b->cap * 2 > first ? (size_t)b->cap * 2 : first;
	if (cap == 0)
		cap = 1; /* first 0 on an empty buffer: doubling from 1 */
	while (cap < need)
		cap *= 2;
	return cap < b->max ? cap : b->max;
}

/* Move to a heap buffer of exactly cap bytes (out of the caller's storage, or a realloc). */
void
cbuf_resize(struct cbuf *b, size_t cap)
{
	if (cap > b->max)
		cap = b->max;
	if (cap < b->len)
		cap = b->len;
	if (!b->heap) {
		char *heap = xmalloc(cap > 0 ? cap : 1);

		if (b->len > 0)
			memcpy(heap, b->p, b->len);
		b->p = heap;
		b->heap = true;
	} else {
		b->p = xrealloc(b->p, cap > 0 ? cap : 1);
	}
	b->cap = (uint32_t)cap;
}

/* Make room for n more bytes, or refuse (-1) past max; the heap starts at CBUF_MIN. */
__attribute__((noinline)) int
cbuf_reserve(struct cbuf *b, size_t n)
{
	size_t cap = cbuf_grow_size(b, n, CBUF_MIN);

	if (cap == 0 && n > 0)
		return -1;
	if (cap > b->cap)
		cbuf_resize(b, cap);
	return 0;
}

/* A lower cap: the capacity follows it down (the heap by a realloc), never below len. */
void
cbuf_set_max(struct cbuf *b, size_t max)
{
	if (max < b->len)
		max = b->len;
	if (max >= b->max)
		return;
	b->max = (uint32_t)max;
	if (b->cap <= max)
		return;
	if (b->heap)
		cbuf_resize(b, max);
	else
		b->cap = (uint32_t)max;
}

/* Empty; a heap buffer over keep bytes is freed (cbuf_reset). */
void
cbuf_clear(struct cbuf *b, size_t keep)
{
	if (b->heap && b->cap > keep)
		cbuf_reset(b);
	else
		b->len = 0;
}

/* Empty, with the heap freed; the caller's storage stays in use if still in it. */
void
cbuf_reset(struct cbuf *b)
{
	if (b->heap) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
		b->heap = false;
	}
	b->len = 0;
}
