/*
 * uidset.c: sets of IMAP UIDs as sorted ranges (uidset.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uidset.h"
#include "lib/util.h"

/* Empty the set and free its array, keeping its cap. */
void
uidset_clear(struct uidset *s)
{
	size_t max = s->max_ranges;

	free(s->r);
	memset(s, 0, sizeof(*s));
	s->max_ranges = max;
}

/* The ranges s may hold. */
static size_t
cap_of(const struct uidset *s)
{
	return s->max_ranges ? s->max_ranges : UIDSET_MAX_RANGES;
}

/* The index of the first range whose hi >= uid (s->n when none). */
static size_t
first_at_or_after(const struct uidset *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].hi < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Make room for one more range. */
static void
grow(struct uidset *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->r = xrealloc(s->r, s->cap * sizeof(*s->r));
	}
}

/*
 * Add lo..hi, merging with every range it overlaps or touches: 0, or -1
 * when that would make one range too many (the set unchanged).
 */
int
uidset_add_range(struct uidset *s, uint32_t lo, uint32_t hi)
{
	size_t i, j;

	if (lo == 0 || lo > hi)
		return -1;
	/* at or above the highest range (ascending adds): no search, no move */
	if (s->n > 0 && lo >= s->r[s->n - 1].lo) {
		struct uid_range *t = &s->r[s->n - 1];
		if (lo <= t->hi || lo - t->hi == 1) {
			if (hi > t->hi)
				t->hi = hi;
			return 0;
		}
		if (s->n >= cap_of(s))
			return -1;
		grow(s);
		s->r[s->n++] = (struct uid_range){lo, hi};
		return 0;
	}
	/* the first range that overlaps or touches lo (hi + 1 >= lo) */
	i = first_at_or_after(s, lo > 1 ? lo - 1 : lo);
	/* j: one past the last range that overlaps or touches hi (r.lo <= hi + 1) */
	j = i;
	while (j < s->n && (hi == UINT32_MAX || s->r[j].lo <= hi + 1))
		j++;
	if (i == j) {
		if (s->n >= cap_of(s))
			return -1;
		grow(s);
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->r[i] = (struct uid_range){lo, hi};
		s->n++;
		return 0;
	}
	if (s->r[i].lo < lo)
		lo = s->r[i].lo;
	if (s->r[j - 1].hi > hi)
		hi = s->r[j - 1].hi;
	s->r[i] = (struct uid_range){lo, hi};
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
	s->n -= j - i - 1;
	return 0;
}

/* Add one UID. */
int
uidset_add(struct uidset *s, uint32_t uid)
{
	return uidset_add_range(s, uid, uid);
}

/* Remove one UID, splitting its range when it is inside one. */
int
uidset_remove(struct uidset *s, uint32_t uid)
{
	size_t i = first_at_or_after(s, uid);
	struct uid_range *r;

	if (i == s->n || s->r[i].lo > uid)
		return 0;
	r = &s->r[i];
	if (r->lo == uid && r->hi == uid) {
		memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
		s->n--;
	} else if (r->lo == uid) {
		r->lo++;
	} else if (r->hi == uid) {
		r->hi--;
	} else {
		if (s->n >= cap_of(s))
			return -1;
		grow(s);
		r = &s->r[i];
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n++;
		s->r[i].hi = uid - 1;
		s->r[i + 1].lo = uid + 1;
	}
	return 0;
}

/* Whether uid is in the set. */
bool
uidset_contains(const struct uidset *s, uint32_t uid)
{
	size_t i = first_at_or_after(s, uid);

	return i < s->n && s->r[i].lo <= uid;
}

/* How many UIDs the set holds. */
uint64_t
uidset_count(const struct uidset *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += (uint64_t)s->r[i].hi - s->r[i].lo + 1;
	return n;
}

/* The highest UID, 0 when empty. */
uint32_t
uidset_max(const struct uidset *s)
{
	return s->n ? s->r[s->n - 1].hi : 0;
}

/* dst becomes a copy of src. */
void
uidset_copy(struct uidset *dst, const struct uidset *src)
{
	uidset_clear(dst);
	dst->max_ranges = src->max_ranges;
	if (src->n == 0)
		return;
	dst->r = xcalloc(src->n, sizeof(*dst->r));
	memcpy(dst->r, src->r, src->n * sizeof(*src->r));
	dst->n = dst->cap = src->n;
	dst->max_ranges = src->max_ranges;
}

/* Read one number (1 .. 2^32-1, or '*' as UINT32_MAX) at *p before end, advancing it. */
static int
read_uid(const char **p, const char *end, uint32_t *uid)
{
	uint64_t v = 0;
	const char *q = *p;

	if (q < end && *q == '*') {
		*uid = UINT32_MAX;
		*p = q + 1;
		return 0;
	}
	if (q == end || *q < '0' || *q > '9')
		return -1;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint64_t)(*q - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (v == 0)
		return -1;
	*uid = (uint32_t)v;
	*p = q;
	return 0;
}

/* qsort order of ranges: by lo. */
static int
range_cmp(const void *a, const void *b)
{
	const struct uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort the ranges and merge those that overlap or touch (a parse read them out of order). */
static void
normalize(struct uidset *s)
{
	size_t o = 0;

	qsort(s->r, s->n, sizeof(*s->r), range_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (o > 0 && (s->r[o - 1].hi == UINT32_MAX || s->r[i].lo <= s->r[o - 1].hi + 1)) {
			if (s->r[i].hi > s->r[o - 1].hi)
				s->r[o - 1].hi = s->r[i].hi;
		} else {
			s->r[o++] = s->r[i];
		}
	}
	s->n = o;
}

/*
 * Parse a sequence-set text of len bytes into s. Each range is merged into
 * the last one read when it starts inside or right after it, else appended;
 * once one came out of order the array is sorted and merged when it passes
 * the cap by as much again (refused if still over it) and at the end: at
 * most 2 x cap ranges in memory and O(n log n) for any order, where
 * inserting each in place could move the whole array per range.
 */
int
uidset_parse_n(struct uidset *s, const char *text, size_t len, const char **errstr_r)
{
	const char *p = text, *end = text + len;
	size_t max = cap_of(s);
	bool sorted = true;

	uidset_clear(s);
	if (text == NULL || len == 0)
		return 0;
	for (;;) {
		struct uid_range *last;
		uint32_t lo, hi;
		if (read_uid(&p, end, &lo) < 0) {
			*errstr_r = "uid-set: not a UID";
			goto bad;
		}
		hi = lo;
		if (p < end && *p == ':') {
			p++;
			if (read_uid(&p, end, &hi) < 0) {
				*errstr_r = "uid-set: not a UID after ':'";
				goto bad;
			}
			if (hi < lo) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
		}
		last = s->n > 0 ? &s->r[s->n - 1] : NULL;
		if (last != NULL && lo >= last->lo && (lo <= last->hi || lo - last->hi == 1)) {
			if (hi > last->hi)
				last->hi = hi;
		} else {
			if (last != NULL && lo < last->lo)
				sorted = false;
			grow(s);
			s->r[s->n++] = (struct uid_range){lo, hi};
		}
		if (s->n > max && (sorted || s->n >= 2 * max)) {
			if (!sorted)
				normalize(s);
			sorted = true;
			if (s->n > max) {
				*errstr_r = "uid-set: too many ranges";
				goto bad;
			}
		}
		if (p == end)
			break;
		if (*p++ != ',') {
			*errstr_r = "uid-set: unexpected character";
			goto bad;
		}
	}
	if (!sorted)
		normalize(s);
	if (s->n > max) {
		*errstr_r = "uid-set: too many ranges";
		goto bad;
	}
	return 0;
bad:
	uidset_clear(s);
	return -1;
}

/* Parse a NUL-terminated uid-set text into s. */
int
uidset_parse(struct uidset *s, const char *text, const char **errstr_r)
{
	return uidset_parse_n(s, text, text ? strlen(text) : 0, errstr_r);
}

/* Write n, '*' for UINT32_MAX. */
static void
put_uid(struct sbuf *b, uint32_t n)
{
	if (n == UINT32_MAX)
		sbuf_add(b, "*");
	else
		sbuf_printf(b, "%u", n);
}

/* The set as text, malloc'd. */
char *
uidset_format(const struct uidset *s)
{
	struct sbuf b = {0};

	for (size_t i = 0; i < s->n; i++) {
		if (i)
			sbuf_add(&b, ",");
		put_uid(&b, s->r[i].lo);
		if (s->r[i].lo != s->r[i].hi) {
			sbuf_add(&b, ":");
			put_uid(&b, s->r[i].hi);
		}
	}
	return sbuf_take(&b);
}
