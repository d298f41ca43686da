/* test_eastime.c: the EAS date-time spellings (src/pim/eastime.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pim/eastime.h"

static void
test_write(void **state)
{
	char c[PIM_TIME_COMPACT_LEN + 1], l[PIM_TIME_LONG_LEN + 1];

	(void)state;
	assert_string_equal(pim_time_compact(1796598000, c), "20261206T230000Z");
	assert_string_equal(pim_time_long(1796598000, l), "2026-12-06T23:00:00.000Z");
	/* Before the epoch: a birthday. */
	assert_string_equal(pim_time_long(-499046400, l), "1954-03-10T00:00:00.000Z");
	assert_string_equal(pim_time_compact(0, c), "19700101T000000Z");
	/* Outside EAS's range: its ends, never a malformed string. */
	assert_string_equal(pim_time_compact(INT64_MAX, c), "99991231T235959Z");
	assert_string_equal(pim_time_compact(INT64_MIN, c), "16010101T000000Z");
}

static void
test_read(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(pim_time_parse("20261206T230000Z", &t), 0);
	assert_int_equal(t, 1796598000);
	assert_int_equal(pim_time_parse("2026-12-06T23:00:00.000Z", &t), 0);
	assert_int_equal(t, 1796598000);
	/* Without the fraction, with a shorter one, without the Z. */
	t = 0;
	assert_int_equal(pim_time_parse("2026-12-06T23:00:00Z", &t), 0);
	assert_int_equal(t, 1796598000);
	t = 0;
	assert_int_equal(pim_time_parse("2026-12-06T23:00:00.5", &t), 0);
	assert_int_equal(t, 1796598000);
	t = 0;
	assert_int_equal(pim_time_parse("20261206T230000", &t), 0);
	assert_int_equal(t, 1796598000);
	assert_int_equal(pim_time_parse("1954-03-10T00:00:00.000Z", &t), 0);
	assert_int_equal(t, -499046400);
	/* Leap day in a leap year only. */
	assert_int_equal(pim_time_parse("20280229T000000Z", &t), 0);
	assert_int_equal(pim_time_parse("20260229T000000Z", &t), -1);
	assert_int_equal(pim_time_parse("21000229T000000Z", &t), -1);
	assert_int_equal(pim_time_parse("20000229T000000Z", &t), 0);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "2026",
	    "20261206",
	    "20261206T2300Z",
	    "20261306T230000Z",
	    "20261200T230000Z",
	    "20261231T240000Z",
	    "20261231T236000Z",
	    "20261231T235960Z",
	    "2026-12-06 23:00:00Z",
	    "2026-12-06T23:00:00.Z",
	    "2026-12-06T23:00:00.0000Z",
	    "2026-12-06T23:00:00.000ZZ",
	    "20261206T230000Z ",
	    " 20261206T230000Z",
	    "2026-12-06T23:00:00+01:00",
	    "16001231T235959Z",
	    "+2026-12-06T23:00:00Z",
	    "2026-1-06T23:00:00Z",
	    "2026-12-06T23:00:00.000Zjunk",
	};
	int64_t t = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pim_time_parse(bad[i], &t) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(pim_time_parse(NULL, &t), -1);
	assert_int_equal(t, 42); /* untouched on refusal */
}

static void
test_round_trip(void **state)
{
	char c[PIM_TIME_COMPACT_LEN + 1], l[PIM_TIME_LONG_LEN + 1];
	int64_t t;

	(void)state;
	for (int64_t v = -11644473600LL; v < 253402300799LL; v += 86399LL * 367 + 7) {
		assert_int_equal(pim_time_parse(pim_time_compact(v, c), &t), 0);
		assert_int_equal(t, v);
		assert_int_equal(pim_time_parse(pim_time_long(v, l), &t), 0);
		assert_int_equal(t, v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write),
	    cmocka_unit_test(test_read),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
