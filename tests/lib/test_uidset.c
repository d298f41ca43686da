/*
 * test_uidset.c: lib/uidset.c, the UID ranges the change cursors keep and
 * the sets an IMAP server sends ('*', a cap per set, texts with a length).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uidset.h"

/* text parsed and written back as want. */
static void
round_trip(const char *text, const char *want)
{
	struct uidset s = {0};
	const char *err = NULL;

	assert_int_equal(uidset_parse(&s, text, &err), 0);
	char *t = uidset_format(&s);
	assert_string_equal(t, want);
	free(t);
	uidset_clear(&s);
}

/* Parsing merges, sorts and accepts reversed ranges; bad texts are refused with a reason. */
static void
test_parse_format(void **state)
{
	(void)state;
	round_trip("", "");
	round_trip("1", "1");
	round_trip("1:4000,4002:9000", "1:4000,4002:9000");
	round_trip("5,4,3,1,2", "1:5");
	round_trip("9:7,1:3,4", "1:4,7:9");
	round_trip("1:10,5:20,22", "1:20,22");
	/* '*' is UINT32_MAX: 4294967295 is written '*' */
	round_trip("4294967295,4294967294", "4294967294:*");
	round_trip("9:*,5,1:3,4,20:11", "1:5,9:*");
	round_trip("*", "*");
	round_trip("*:5,1:3", "1:3,5:*");
	round_trip("4294967295:*,1", "1,*");
	round_trip("1:*,7,4294967295", "1:*");
	static const char *const bad[] = {"0",  "1:0",   "a",  "1,",   ",1",         "1::2",
	                                  "1:", "**",    "*1", "1*",   "4294967296", "1 2",
	                                  "-1", "1:2:3", ":",  "1,,2", " 1",         "1:*:3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct uidset s = {0};
		const char *err = NULL;
		assert_int_equal(uidset_parse(&s, bad[i], &err), -1);
		assert_non_null(err);
		assert_int_equal(s.n, 0);
	}
}

/* A text of len bytes, not NUL-terminated; '*' as UINT32_MAX in contains, count and max. */
static void
test_parse_n_star(void **state)
{
	struct uidset s = {0};
	const char *err = NULL;
	char *f;

	(void)state;
	assert_int_equal(uidset_parse_n(&s, "1:3,5XYZ", 5, &err), 0);
	f = uidset_format(&s);
	assert_string_equal(f, "1:3,5");
	free(f);
	assert_int_equal(uidset_parse_n(&s, "12", 1, &err), 0);
	assert_int_equal(uidset_max(&s), 1);
	assert_int_equal(uidset_parse_n(&s, "1:3", 0, &err), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(uidset_parse_n(&s, "1:3", 2, &err), -1); /* "1:" */
	assert_int_equal(uidset_parse_n(&s, "9:*,5,1:3,4,20:11", 17, &err), 0);
	assert_true(uidset_contains(&s, 4294967294u));
	assert_true(uidset_contains(&s, UINT32_MAX));
	assert_false(uidset_contains(&s, 7));
	assert_int_equal(uidset_max(&s), UINT32_MAX);
	assert_int_equal(uidset_add_range(&s, 6, 8), 0);
	f = uidset_format(&s);
	assert_string_equal(f, "1:*");
	free(f);
	assert_int_equal(uidset_count(&s), 4294967295ull);
	/* adding above '*' or removing '*' itself stays consistent */
	assert_int_equal(uidset_add(&s, UINT32_MAX), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(uidset_remove(&s, UINT32_MAX), 0);
	f = uidset_format(&s);
	assert_string_equal(f, "1:4294967294");
	free(f);
	uidset_clear(&s);
	/* ascending adds of separate UIDs (SEARCH results, under a server's cap) */
	s.max_ranges = 65536;
	for (uint32_t u = 1; u <= 10000; u += 2)
		assert_int_equal(uidset_add(&s, u), 0);
	assert_int_equal(s.n, 5000);
	assert_int_equal(uidset_count(&s), 5000);
	uidset_clear(&s);
	f = uidset_format(&s);
	assert_string_equal(f, "");
	free(f);
}

/* add, remove and contains at the edges of ranges; count and max. */
static void
test_edit(void **state)
{
	struct uidset s = {0};
	char *t;

	(void)state;
	for (uint32_t u = 10000; u >= 1; u--)
		assert_int_equal(uidset_add(&s, u), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(uidset_count(&s), 10000);
	assert_int_equal(uidset_max(&s), 10000);
	assert_int_equal(uidset_remove(&s, 4001), 0);
	assert_int_equal(uidset_remove(&s, 1), 0);
	assert_int_equal(uidset_remove(&s, 10000), 0);
	assert_int_equal(uidset_remove(&s, 20000), 0); /* not there: nothing */
	t = uidset_format(&s);
	assert_string_equal(t, "2:4000,4002:9999");
	free(t);
	assert_false(uidset_contains(&s, 1));
	assert_true(uidset_contains(&s, 2));
	assert_true(uidset_contains(&s, 4000));
	assert_false(uidset_contains(&s, 4001));
	assert_true(uidset_contains(&s, 4002));
	assert_false(uidset_contains(&s, 10000));
	assert_int_equal(uidset_count(&s), 9997);
	/* Filling the hole merges the ranges back. */
	assert_int_equal(uidset_add(&s, 4001), 0);
	assert_int_equal(uidset_add_range(&s, 1, 3), 0);
	assert_int_equal(uidset_add_range(&s, 9000, 10005), 0);
	t = uidset_format(&s);
	assert_string_equal(t, "1:10005");
	free(t);
	assert_int_equal(uidset_add_range(&s, 0, 3), -1);
	assert_int_equal(uidset_add_range(&s, 5, 3), -1);
	struct uidset c = {0};
	uidset_copy(&c, &s);
	assert_int_equal(c.n, 1);
	uidset_clear(&c);
	uidset_clear(&s);
	assert_int_equal(uidset_max(&s), 0);
}

/* The cap: a set never passes UIDSET_MAX_RANGES, by add, by remove, or by parse. */
static void
test_cap(void **state)
{
	struct uidset s = {0};
	const char *err = NULL;

	(void)state;
	for (uint32_t i = 0; i < UIDSET_MAX_RANGES; i++)
		assert_int_equal(uidset_add(&s, 2 * i + 1), 0);
	assert_int_equal(s.n, UIDSET_MAX_RANGES);
	assert_int_equal(uidset_add(&s, 100000), -1);
	assert_int_equal(s.n, UIDSET_MAX_RANGES);
	assert_int_equal(uidset_add(&s, 2), 0); /* merges two: fine */
	assert_int_equal(s.n, UIDSET_MAX_RANGES - 1);
	assert_int_equal(uidset_add(&s, 100000), 0);
	assert_int_equal(uidset_add_range(&s, 1, 1), 0);
	/* splitting 1:3 would need a range more */
	assert_int_equal(uidset_remove(&s, 2), -1);
	assert_true(uidset_contains(&s, 2));
	char *t = uidset_format(&s);
	struct uidset p = {0};
	assert_int_equal(uidset_parse(&p, t, &err), 0);
	assert_int_equal(p.n, UIDSET_MAX_RANGES);
	free(t);
	uidset_clear(&p);
	/* one range more in the text: refused */
	struct sbuf_like {
		char *p;
	} big = {calloc(1, 16 * (UIDSET_MAX_RANGES + 2))};
	size_t len = 0;
	for (uint32_t i = 0; i <= UIDSET_MAX_RANGES; i++)
		len += (size_t)sprintf(big.p + len, "%s%u", i ? "," : "", 2 * i + 1);
	assert_int_equal(uidset_parse(&p, big.p, &err), -1);
	assert_string_equal(err, "uid-set: too many ranges");
	free(big.p);
	uidset_clear(&s);
}

/* "1,3,5,..." of n numbers, ascending or descending. */
static char *
odd_text(size_t n, int descending)
{
	char *t = malloc(12 * n + 1);
	size_t len = 0;

	t[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t k = descending ? n - 1 - i : i;
		len += (size_t)sprintf(t + len, "%s%zu", i ? "," : "", 2 * k + 1);
	}
	return t;
}

/*
 * A set's own cap (a server's sets: 65,536 ranges): held through clear,
 * parse and copy; a text past it refused in any order, one that merges
 * back under it accepted even when it first reads as more.
 */
static void
test_cap_per_set(void **state)
{
	struct uidset s = {.max_ranges = 65536}, c = {0};
	const char *err = NULL;
	char *t;

	(void)state;
	for (int desc = 0; desc <= 1; desc++) {
		t = odd_text(65536, desc);
		assert_int_equal(uidset_parse(&s, t, &err), 0);
		assert_int_equal(s.n, 65536);
		assert_int_equal(s.max_ranges, 65536);
		free(t);
		t = odd_text(65537, desc);
		err = NULL;
		assert_int_equal(uidset_parse(&s, t, &err), -1);
		assert_string_equal(err, "uid-set: too many ranges");
		assert_int_equal(s.n, 0);
		assert_int_equal(s.max_ranges, 65536);
		free(t);
	}
	/* 3 x 65,536 ranges read out of order that merge into one */
	struct sbuf_like {
		char *p;
	} big = {calloc(1, 16 * 3 * 65536)};
	size_t len = 0;
	for (uint32_t i = 0; i < 65536; i++)
		len += (size_t)sprintf(big.p + len, "%s%u,%u", i ? "," : "", 2 * (65536 - i),
		                       2 * (65536 - i) - 1);
	for (uint32_t i = 0; i < 65536; i++)
		len += (size_t)sprintf(big.p + len, ",%u", 2 * i + 1);
	assert_int_equal(uidset_parse(&s, big.p, &err), 0);
	free(big.p);
	t = uidset_format(&s);
	assert_string_equal(t, "1:131072");
	free(t);
	/* growing by adds: the cap, then -1 and unchanged */
	uidset_clear(&s);
	for (uint32_t i = 0; i < 65536; i++)
		assert_int_equal(uidset_add(&s, 2 * i + 1), 0);
	assert_int_equal(uidset_add(&s, 1000000), -1);
	assert_int_equal(s.n, 65536);
	uidset_copy(&c, &s);
	assert_int_equal(c.max_ranges, 65536);
	assert_int_equal(c.n, 65536);
	uidset_clear(&c);
	/* the default cap is a cursor's */
	c.max_ranges = 0;
	t = odd_text(UIDSET_MAX_RANGES + 1, 1);
	assert_int_equal(uidset_parse(&c, t, &err), -1);
	free(t);
	uidset_clear(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_format), cmocka_unit_test(test_parse_n_star),
	    cmocka_unit_test(test_edit),         cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_cap_per_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
