/*
 * uidset.c: sets of IMAP UIDs as sorted ranges (uidset.h).
 */
#include <stdio.h>
#include <string.h>

#include "lib/uidset.h"
#include "lib/util.h"

/* Empty the set and free its array. */
void
uidset_clear(struct uidset *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
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
	/* the first range that overlaps or touches lo (hi + 1 >= lo) */
	i = first_at_or_after(s, lo > 1 ? lo - 1 : lo);
	/* j: one past the last range that overlaps or touches hi (r.lo <= hi + 1) */
	j = i;
	while (j < s->n && (hi == UINT32_MAX || s->r[j].lo <= hi + 1))
		j++;
	if (i == j) {
		if (s->n >= UIDSET_MAX_RANGES)
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
		if (s->n >= UIDSET_MAX_RANGES)
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
	if (src->n == 0)
		return;
	dst->r = xcalloc(src->n, sizeof(*dst->r));
	memcpy(dst->r, src->r, src->n * sizeof(*src->r));
	dst->n = dst->cap = src->n;
}

/* Read one UID (1 .. 2^32-1) at *p, advancing it: 0 or -1. */
static int
read_uid(const char **p, uint32_t *uid)
{
	uint64_t v = 0;
	const char *q = *p;

	if (*q < '0' || *q > '9')
		return -1;
	for (; *q >= '0' && *q <= '9'; q++) {
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

/* Parse a uid-set text into s. */
int
uidset_parse(struct uidset *s, const char *text, const char **errstr_r)
{
	const char *p = text;

	uidset_clear(s);
	if (text == NULL || *text == '\0')
		return 0;
	for (;;) {
		uint32_t lo, hi;
		if (read_uid(&p, &lo) < 0) {
			*errstr_r = "uid-set: not a UID";
			goto bad;
		}
		hi = lo;
		if (*p == ':') {
			p++;
			if (read_uid(&p, &hi) < 0) {
				*errstr_r = "uid-set: not a UID after ':'";
				goto bad;
			}
			if (hi < lo) {
				uint32_t t = lo;
				lo = hi;
				hi = t;
			}
		}
		if (uidset_add_range(s, lo, hi) < 0) {
			*errstr_r = "uid-set: too many ranges";
			goto bad;
		}
		if (*p == '\0')
			return 0;
		if (*p++ != ',') {
			*errstr_r = "uid-set: unexpected character";
			goto bad;
		}
	}
bad:
	uidset_clear(s);
	return -1;
}

/* The set as text, malloc'd. */
char *
uidset_format(const struct uidset *s)
{
	struct sbuf b = {0};

	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].lo == s->r[i].hi)
			sbuf_printf(&b, "%s%u", i ? "," : "", s->r[i].lo);
		else
			sbuf_printf(&b, "%s%u:%u", i ? "," : "", s->r[i].lo, s->r[i].hi);
	}
	return sbuf_take(&b);
}
