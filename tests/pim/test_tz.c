/* test_tz.c: time zones between iCalendar and the EAS TimeZone blob (src/pim/tz.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pim/tz.h"

static void
test_berlin(void **state)
{
	icaltimezone *z = icaltimezone_get_builtin_timezone("Europe/Berlin"), *back;
	struct pim_eas_tz tz, tz2;
	uint8_t blob[PIM_TZ_BLOB_LEN], blob2[PIM_TZ_BLOB_LEN];
	bool owned;

	(void)state;
	assert_int_equal(pim_tz_from_ical(z, 1782907200, &tz), 0);
	assert_int_equal(tz.bias, -60);
	assert_int_equal(tz.daylight_bias, -60);
	assert_int_equal(tz.daylight_date.month, 3);
	assert_int_equal(tz.daylight_date.day, 5);
	assert_int_equal(tz.daylight_date.hour, 2);
	assert_int_equal(tz.standard_date.month, 10);
	assert_int_equal(tz.standard_date.day, 5);
	assert_int_equal(tz.standard_date.hour, 3);
	pim_tz_encode(&tz, blob);
	assert_int_equal(pim_tz_decode(blob, sizeof(blob), &tz2), 0);
	back = pim_tz_to_ical(&tz2, 1782907200, NULL, &owned);
	assert_non_null(back);
	assert_false(owned);
	assert_int_equal(pim_tz_from_ical(back, 1782907200, &tz2), 0);
	pim_tz_encode(&tz2, blob2);
	assert_memory_equal(blob, blob2, sizeof(blob));
	assert_int_equal(pim_tz_decode(blob, sizeof(blob) - 1, &tz2), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_berlin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
