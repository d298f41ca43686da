/*
 * test_tz.c: time zones between iCalendar and the EAS TimeZone blob
 * (src/pim/tz.c).
 *
 * The zone table gives, for zones of every continent and the awkward rule
 * shapes of the tz database, the blob a phone must get for a year (written
 * from the zone's tzdata rules) and the instants its offset changes that
 * year (as `zdump -v -c YEAR,YEAR+1 ZONE` prints them on Debian's tzdata
 * 2026). Each zone is checked four ways: the blob's fields; the blob's
 * offsets just before and at each change, against the changes and against
 * libical's own zone; the round trip blob -> zone -> blob (bytes equal);
 * and the same blob without its names, as phones send it, still placing
 * every change right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pim/eastime.h"
#include "pim/tz.h"

struct rule {
	uint16_t month, dow, day, hour, minute, second, millis;
};

struct zcase {
	const char *zone;
	const char *at;              /* the instant converted (its year's rules) */
	int32_t bias, daylight_bias; /* minutes */
	struct rule std, dst;        /* month 0: no daylight saving time */
	const char *changes[4];      /* the offset changes that year, UTC (zdump) */
	int32_t offsets[5];          /* seconds: before the first change, after each */
	bool fixed;                  /* not a yearly pair: the blob keeps the offset at "at" */
};

#define NONE                                                                                       \
	{                                                                                          \
		0, 0, 0, 0, 0, 0, 0                                                                \
	}
#define SUN 0
#define MON 1
#define WED 3
#define THU 4
#define FRI 5
#define SAT 6

static const struct zcase zones[] = {
    /* Europe: the EU's rule, 01:00 UTC on the last Sundays of March and October. */
    {"Europe/Berlin",
     "20260701T120000Z",
     -60,
     -60,
     {10, SUN, 5, 3, 0, 0, 0},
     {3, SUN, 5, 2, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {3600, 7200, 3600},
     false},
    {"Europe/London",
     "20260701T120000Z",
     0,
     -60,
     {10, SUN, 5, 2, 0, 0, 0},
     {3, SUN, 5, 1, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {0, 3600, 0},
     false},
    /* tzdata has Irish Standard Time as standard and winter GMT as a negative
       "DST": a phone gets the blob Windows has, daylight = summer. */
    {"Europe/Dublin",
     "20260115T120000Z",
     0,
     -60,
     {10, SUN, 5, 2, 0, 0, 0},
     {3, SUN, 5, 1, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {0, 3600, 0},
     false},
    {"Europe/Lisbon",
     "20260701T120000Z",
     0,
     -60,
     {10, SUN, 5, 2, 0, 0, 0},
     {3, SUN, 5, 1, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {0, 3600, 0},
     false},
    {"Europe/Moscow", "20260701T120000Z", -180, 0, NONE, NONE, {NULL}, {10800}, false},
    {"Europe/Istanbul", "20260701T120000Z", -180, 0, NONE, NONE, {NULL}, {10800}, false},
    /* Two hours of DST on the EU's dates. */
    {"Antarctica/Troll",
     "20260701T120000Z",
     0,
     -120,
     {10, SUN, 5, 3, 0, 0, 0},
     {3, SUN, 5, 1, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {0, 7200, 0},
     false},
    /* The EU's 01:00 UTC is midnight at -01. */
    {"Atlantic/Azores",
     "20260701T120000Z",
     60,
     -60,
     {10, SUN, 5, 1, 0, 0, 0},
     {3, SUN, 5, 0, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {-3600, 0, -3600},
     false},
    {"Atlantic/Reykjavik", "20260701T120000Z", 0, 0, NONE, NONE, {NULL}, {0}, false},

    /* Africa. Egypt: last Friday of April 00:00, last Thursday of October
       24:00 (Windows' 23:59:59.999). */
    {"Africa/Cairo",
     "20260701T120000Z",
     -120,
     -60,
     {10, THU, 5, 23, 59, 59, 999},
     {4, FRI, 5, 0, 0, 0, 0},
     {"20260423T220000Z", "20261029T210000Z"},
     {7200, 10800, 7200},
     false},
    /* Morocco's Ramadan pause of 2025 (+01 to +00, Feb 23 to Apr 6): the year's
       pair, +00 as standard. */
    {"Africa/Casablanca",
     "20250701T120000Z",
     0,
     -60,
     {2, SUN, 5, 3, 0, 0, 0},
     {4, SUN, 1, 2, 0, 0, 0},
     {"20250223T020000Z", "20250406T020000Z"},
     {3600, 0, 3600},
     false},
    /* 2026: the pause, then +00 for good from September: three changes, no
       pair: the offset at the instant. */
    {"Africa/Casablanca",
     "20260701T120000Z",
     -60,
     0,
     NONE,
     NONE,
     {"20260215T020000Z", "20260322T020000Z", "20260920T010000Z"},
     {3600, 0, 3600, 0},
     true},
    {"Africa/Casablanca",
     "20261101T120000Z",
     0,
     0,
     NONE,
     NONE,
     {"20260215T020000Z", "20260322T020000Z", "20260920T010000Z"},
     {3600, 0, 3600, 0},
     true},
    {"Africa/Johannesburg", "20260701T120000Z", -120, 0, NONE, NONE, {NULL}, {7200}, false},
    {"Africa/Lagos", "20260701T120000Z", -60, 0, NONE, NONE, {NULL}, {3600}, false},
    {"Africa/Nairobi", "20260701T120000Z", -180, 0, NONE, NONE, {NULL}, {10800}, false},

    /* Asia. */
    {"Asia/Tokyo", "20260701T120000Z", -540, 0, NONE, NONE, {NULL}, {32400}, false},
    {"Asia/Kolkata", "20260701T120000Z", -330, 0, NONE, NONE, {NULL}, {19800}, false},
    {"Asia/Kathmandu", "20260701T120000Z", -345, 0, NONE, NONE, {NULL}, {20700}, false},
    {"Asia/Shanghai", "20260701T120000Z", -480, 0, NONE, NONE, {NULL}, {28800}, false},
    /* Israel: the Friday before the last Sunday of March ("Fri>=23"), 02:00;
       the 4th Friday, which also gives 2023, 2025 and 2027-2029. */
    {"Asia/Jerusalem",
     "20260701T120000Z",
     -120,
     -60,
     {10, SUN, 5, 2, 0, 0, 0},
     {3, FRI, 4, 2, 0, 0, 0},
     {"20260327T000000Z", "20261024T230000Z"},
     {7200, 10800, 7200},
     false},
    /* Lebanon: last Sundays at 00:00. */
    {"Asia/Beirut",
     "20260701T120000Z",
     -120,
     -60,
     {10, SUN, 5, 0, 0, 0, 0},
     {3, SUN, 5, 0, 0, 0, 0},
     {"20260328T220000Z", "20261024T210000Z"},
     {7200, 10800, 7200},
     false},
    /* Palestine: Saturdays, the 4th of both months in 2026 (October's last
       is the 31st). */
    {"Asia/Gaza",
     "20260701T120000Z",
     -120,
     -60,
     {10, SAT, 4, 2, 0, 0, 0},
     {3, SAT, 4, 2, 0, 0, 0},
     {"20260328T000000Z", "20261023T230000Z"},
     {7200, 10800, 7200},
     false},
    /* Iran's last DST year (the 22nd of March and of September at 24:00 of
       the day before: Monday, Wednesday), then none. */
    {"Asia/Tehran",
     "20210701T120000Z",
     -210,
     -60,
     {9, WED, 4, 0, 0, 0, 0},
     {3, MON, 4, 0, 0, 0, 0},
     {"20210321T203000Z", "20210921T193000Z"},
     {12600, 16200, 12600},
     false},
    {"Asia/Tehran", "20260701T120000Z", -210, 0, NONE, NONE, {NULL}, {12600}, false},

    /* North America: second Sunday of March, first of November, 02:00. */
    {"America/New_York",
     "20260701T120000Z",
     300,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T070000Z", "20261101T060000Z"},
     {-18000, -14400, -18000},
     false},
    {"America/Chicago",
     "20260701T120000Z",
     360,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T080000Z", "20261101T070000Z"},
     {-21600, -18000, -21600},
     false},
    {"America/Denver",
     "20260701T120000Z",
     420,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T090000Z", "20261101T080000Z"},
     {-25200, -21600, -25200},
     false},
    {"America/Phoenix", "20260701T120000Z", 420, 0, NONE, NONE, {NULL}, {-25200}, false},
    {"America/Los_Angeles",
     "20260701T120000Z",
     480,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T100000Z", "20261101T090000Z"},
     {-28800, -25200, -28800},
     false},
    {"America/Anchorage",
     "20260701T120000Z",
     540,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T110000Z", "20261101T100000Z"},
     {-32400, -28800, -32400},
     false},
    {"America/St_Johns",
     "20260701T120000Z",
     210,
     -60,
     {11, SUN, 1, 2, 0, 0, 0},
     {3, SUN, 2, 2, 0, 0, 0},
     {"20260308T053000Z", "20261101T043000Z"},
     {-12600, -9000, -12600},
     false},
    {"America/Mexico_City", "20260701T120000Z", 360, 0, NONE, NONE, {NULL}, {-21600}, false},
    /* Cuba moved to -04 for good on 2026-03-08: one change, no pair. */
    {"America/Havana",
     "20260115T120000Z",
     300,
     0,
     NONE,
     NONE,
     {"20260308T050000Z"},
     {-18000, -14400},
     true},
    {"America/Havana",
     "20260701T120000Z",
     240,
     0,
     NONE,
     NONE,
     {"20260308T050000Z"},
     {-18000, -14400},
     true},
    /* Greenland at -02 on the EU's instants: Saturday 23:00 and Sunday 00:00
       local. The day before the last Sunday is the last Saturday but when
       March 31 is a Saturday: "last" gives 2024, 2025, 2027 and 2028. */
    {"America/Nuuk",
     "20260701T120000Z",
     120,
     -60,
     {10, SUN, 5, 0, 0, 0, 0},
     {3, SAT, 5, 23, 0, 0, 0},
     {"20260329T010000Z", "20261025T010000Z"},
     {-7200, -3600, -7200},
     false},

    /* South America. Chile: the first Sunday on or after the 2nd at 00:00,
       that is the first Saturday at 24:00. */
    {"America/Santiago",
     "20260701T120000Z",
     240,
     -60,
     {4, SAT, 1, 23, 59, 59, 999},
     {9, SAT, 1, 23, 59, 59, 999},
     {"20260405T030000Z", "20260906T040000Z"},
     {-10800, -14400, -10800},
     false},
    /* Brazil's last DST year: third Sunday of February 00:00 (as the third
       Saturday at 24:00, which also gives 2015's Carnival-shifted date) and
       first Sunday of November 00:00. */
    {"America/Sao_Paulo",
     "20180701T120000Z",
     180,
     -60,
     {2, SAT, 3, 23, 59, 59, 999},
     {11, SUN, 1, 0, 0, 0, 0},
     {"20180218T020000Z", "20181104T030000Z"},
     {-7200, -10800, -7200},
     false},
    {"America/Sao_Paulo", "20260701T120000Z", 180, 0, NONE, NONE, {NULL}, {-10800}, false},
    {"America/Asuncion", "20260701T120000Z", 180, 0, NONE, NONE, {NULL}, {-10800}, false},
    {"America/Argentina/Buenos_Aires",
     "20260701T120000Z",
     180,
     0,
     NONE,
     NONE,
     {NULL},
     {-10800},
     false},

    /* Oceania: DST across the new year, DaylightDate after StandardDate. */
    {"Australia/Sydney",
     "20260701T120000Z",
     -600,
     -60,
     {4, SUN, 1, 3, 0, 0, 0},
     {10, SUN, 1, 2, 0, 0, 0},
     {"20260404T160000Z", "20261003T160000Z"},
     {39600, 36000, 39600},
     false},
    {"Australia/Adelaide",
     "20260701T120000Z",
     -570,
     -60,
     {4, SUN, 1, 3, 0, 0, 0},
     {10, SUN, 1, 2, 0, 0, 0},
     {"20260404T163000Z", "20261003T163000Z"},
     {37800, 34200, 37800},
     false},
    /* Half an hour of DST, changes at 02:00 local both ways. */
    {"Australia/Lord_Howe",
     "20260701T120000Z",
     -630,
     -30,
     {4, SUN, 1, 2, 0, 0, 0},
     {10, SUN, 1, 2, 0, 0, 0},
     {"20260404T150000Z", "20261003T153000Z"},
     {39600, 37800, 39600},
     false},
    {"Australia/Brisbane", "20260701T120000Z", -600, 0, NONE, NONE, {NULL}, {36000}, false},
    {"Pacific/Auckland",
     "20260701T120000Z",
     -720,
     -60,
     {4, SUN, 1, 3, 0, 0, 0},
     {9, SUN, 5, 2, 0, 0, 0},
     {"20260404T140000Z", "20260926T140000Z"},
     {46800, 43200, 46800},
     false},
    /* +12:45 on New Zealand's instants. */
    {"Pacific/Chatham",
     "20260701T120000Z",
     -765,
     -60,
     {4, SUN, 1, 3, 45, 0, 0},
     {9, SUN, 5, 2, 45, 0, 0},
     {"20260404T140000Z", "20260926T140000Z"},
     {49500, 45900, 49500},
     false},
    {"Pacific/Apia", "20260701T120000Z", -780, 0, NONE, NONE, {NULL}, {46800}, false},
    {"Pacific/Kiritimati", "20260701T120000Z", -840, 0, NONE, NONE, {NULL}, {50400}, false},
    {"Pacific/Honolulu", "20260701T120000Z", 600, 0, NONE, NONE, {NULL}, {-36000}, false},
};

static int64_t
instant(const char *s)
{
	int64_t t = 0;

	if (pim_time_parse(s, &t) < 0)
		fail_msg("bad instant %s", s);
	return t;
}

static int32_t
libical_offset(icaltimezone *zone, int64_t t)
{
	icaltimezone *utc = icaltimezone_get_utc_timezone();
	struct icaltimetype tt = icaltime_from_timet_with_zone((time_t)t, 0, utc);
	int is_daylight = 0;

	return icaltimezone_get_utc_offset_of_utc_time(zone, &tt, &is_daylight);
}

static void
check_rule(const char *zone, const char *which, const struct pim_systemtime *got,
           const struct rule *want)
{
	if (got->year != 0 || got->month != want->month || got->day_of_week != want->dow ||
	    got->day != want->day || got->hour != want->hour || got->minute != want->minute ||
	    got->second != want->second || got->millis != want->millis)
		fail_msg("%s %s: got month %u dow %u day %u %02u:%02u:%02u.%03u, want month %u "
		         "dow %u day %u %02u:%02u:%02u.%03u",
		         zone, which, got->month, got->day_of_week, got->day, got->hour,
		         got->minute, got->second, got->millis, want->month, want->dow, want->day,
		         want->hour, want->minute, want->second, want->millis);
}

static size_t
nchanges(const struct zcase *c)
{
	size_t n = 0;

	while (n < 4 && c->changes[n] != NULL)
		n++;
	return n;
}

/*
 * The blob's offsets around each change: the change's (from zdump) and
 * libical's. A zone that is not a yearly pair keeps the offset at "at".
 */
static void
check_offsets(const struct zcase *c, const struct pim_eas_tz *tz, icaltimezone *zone)
{
	size_t n = nchanges(c);
	int64_t at = instant(c->at);

	if (c->fixed) {
		int32_t off = libical_offset(zone, at);

		assert_int_equal(pim_tz_offset_at(tz, at), off);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(pim_tz_offset_at(tz, instant(c->changes[i])), off);
		return;
	}
	/* Midyear and new year's day, and around each change. */
	assert_int_equal(pim_tz_offset_at(tz, at), libical_offset(zone, at));
	assert_int_equal(pim_tz_offset_at(tz, instant(c->at) - 180 * 86400),
	                 libical_offset(zone, at - 180 * 86400));
	if (n == 0)
		assert_int_equal(pim_tz_offset_at(tz, at), c->offsets[0]);
	for (size_t i = 0; i < n; i++) {
		int64_t t = instant(c->changes[i]);

		if (pim_tz_offset_at(tz, t - 1) != c->offsets[i] ||
		    pim_tz_offset_at(tz, t) != c->offsets[i + 1])
			fail_msg("%s: around %s the blob gives %d then %d, want %d then %d",
			         c->zone, c->changes[i], pim_tz_offset_at(tz, t - 1),
			         pim_tz_offset_at(tz, t), c->offsets[i], c->offsets[i + 1]);
		assert_int_equal(libical_offset(zone, t - 1), c->offsets[i]);
		assert_int_equal(libical_offset(zone, t), c->offsets[i + 1]);
		/* An hour either side too. */
		assert_int_equal(pim_tz_offset_at(tz, t - 3600), libical_offset(zone, t - 3600));
		assert_int_equal(pim_tz_offset_at(tz, t + 3600), libical_offset(zone, t + 3600));
	}
}

static void
test_zones(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		const struct zcase *c = &zones[i];
		icaltimezone *zone = icaltimezone_get_builtin_timezone(c->zone), *back;
		struct pim_eas_tz tz, tz2;
		uint8_t blob[PIM_TZ_BLOB_LEN], blob2[PIM_TZ_BLOB_LEN];
		int64_t at = instant(c->at);
		bool owned = true;

		if (zone == NULL)
			fail_msg("%s is not a built-in zone", c->zone);
		assert_int_equal(pim_tz_from_ical(zone, at, &tz), 0);
		if (tz.bias != c->bias || tz.daylight_bias != c->daylight_bias ||
		    tz.standard_bias != 0)
			fail_msg("%s: bias %d/%d/%d, want %d/0/%d", c->zone, tz.bias,
			         tz.standard_bias, tz.daylight_bias, c->bias, c->daylight_bias);
		check_rule(c->zone, "StandardDate", &tz.standard_date, &c->std);
		check_rule(c->zone, "DaylightDate", &tz.daylight_date, &c->dst);
		/* The names are the Olson id. */
		assert_string_equal(tz.standard_name, c->zone);
		assert_string_equal(tz.daylight_name, c->zone);
		check_offsets(c, &tz, zone);

		/* Round trip: the blob names its zone, which comes back exactly. */
		pim_tz_encode(&tz, blob);
		assert_int_equal(pim_tz_decode(blob, sizeof(blob), &tz2), 0);
		back = pim_tz_to_ical(&tz2, at, NULL, &owned);
		assert_non_null(back);
		assert_false(owned);
		assert_string_equal(icaltimezone_get_location(back), c->zone);
		assert_int_equal(pim_tz_from_ical(back, at, &tz2), 0);
		pim_tz_encode(&tz2, blob2);
		if (memcmp(blob, blob2, sizeof(blob)) != 0)
			fail_msg("%s: the round trip changed the blob", c->zone);

		/* Without names (iOS, most Android clients): some zone of the same rules. */
		tz2 = tz;
		tz2.standard_name[0] = tz2.daylight_name[0] = '\0';
		back = pim_tz_to_ical(&tz2, at, NULL, &owned);
		assert_non_null(back);
		assert_false(owned);
		if (!c->fixed) {
			check_offsets(c, &tz2, back);
			assert_int_equal(pim_tz_from_ical(back, at, &tz2), 0);
			assert_int_equal(tz2.bias, c->bias);
			assert_int_equal(tz2.daylight_bias, c->daylight_bias);
			check_offsets(c, &tz2, zone);
		} else {
			assert_int_equal(libical_offset(back, at), libical_offset(zone, at));
		}
	}
}

static void
test_utc(void **state)
{
	struct pim_eas_tz tz;
	bool owned = true;

	(void)state;
	assert_int_equal(pim_tz_from_ical(NULL, 1782907200, &tz), 0);
	assert_int_equal(tz.bias, 0);
	assert_int_equal(tz.standard_date.month, 0);
	assert_int_equal(tz.daylight_date.month, 0);
	assert_int_equal(pim_tz_offset_at(&tz, 1782907200), 0);
	assert_int_equal(pim_tz_from_ical(icaltimezone_get_utc_timezone(), 1782907200, &tz), 0);
	assert_int_equal(tz.bias, 0);
	assert_int_equal(tz.daylight_bias, 0);
	assert_string_equal(tz.standard_name, "UTC");
	/* A UTC blob with no name is UTC, not one of the zones at +00. */
	memset(&tz, 0, sizeof(tz));
	assert_ptr_equal(pim_tz_to_ical(&tz, 1782907200, NULL, &owned),
	                 icaltimezone_get_utc_timezone());
	assert_false(owned);
}

/* A blob as a phone builds it: names, biases, two rules (year 0, ms 0). */
static void
phone_blob(struct pim_eas_tz *tz, int32_t bias, const char *sname, const char *dname, int32_t dbias,
           struct rule std, struct rule dst)
{
	memset(tz, 0, sizeof(*tz));
	tz->bias = bias;
	snprintf(tz->standard_name, sizeof(tz->standard_name), "%s", sname);
	snprintf(tz->daylight_name, sizeof(tz->daylight_name), "%s", dname);
	tz->daylight_bias = dbias;
	tz->standard_date = (struct pim_systemtime){0,        std.month,  std.dow,    std.day,
	                                            std.hour, std.minute, std.second, std.millis};
	tz->daylight_date = (struct pim_systemtime){0,        dst.month,  dst.dow,    dst.day,
	                                            dst.hour, dst.minute, dst.second, dst.millis};
}

static const char *
matched(const struct pim_eas_tz *tz, const char *at, const char *hint)
{
	bool owned = true;
	icaltimezone *z = pim_tz_to_ical(tz, instant(at), hint, &owned);

	assert_non_null(z);
	assert_false(owned);
	return icaltimezone_get_location(z);
}

static void
test_phones(void **state)
{
	struct pim_eas_tz tz;
	uint8_t blob[PIM_TZ_BLOB_LEN];
	const char *mid = "20260701T120000Z";

	(void)state;
	/* Outlook and Windows Mobile: the Windows zone's names. */
	phone_blob(&tz, -60, "W. Europe Standard Time", "W. Europe Daylight Time", -60,
	           (struct rule){10, SUN, 5, 3, 0, 0, 0}, (struct rule){3, SUN, 5, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Europe/Berlin");
	phone_blob(&tz, -60, "Romance Standard Time", "Romance Daylight Time", -60,
	           (struct rule){10, SUN, 5, 3, 0, 0, 0}, (struct rule){3, SUN, 5, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Europe/Paris");
	phone_blob(&tz, 480, "Pacific Standard Time", "Pacific Daylight Time", -60,
	           (struct rule){11, SUN, 1, 2, 0, 0, 0}, (struct rule){3, SUN, 2, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "America/Los_Angeles");
	/* Windows' Egypt: 24:00 as 23:59:59.999. */
	phone_blob(&tz, -120, "Egypt Standard Time", "Egypt Daylight Time", -60,
	           (struct rule){10, THU, 5, 23, 59, 59, 999},
	           (struct rule){4, FRI, 5, 0, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Africa/Cairo");
	tz.standard_name[0] = tz.daylight_name[0] = '\0';
	assert_string_equal(matched(&tz, mid, NULL), "Africa/Cairo");
	/* Windows' Chile. */
	phone_blob(&tz, 240, "Pacific SA Standard Time", "Pacific SA Daylight Time", -60,
	           (struct rule){4, SAT, 1, 23, 59, 59, 999},
	           (struct rule){9, SAT, 1, 23, 59, 59, 999});
	assert_string_equal(matched(&tz, mid, NULL), "America/Santiago");
	phone_blob(&tz, -600, "AUS Eastern Standard Time", "AUS Eastern Daylight Time", -60,
	           (struct rule){4, SUN, 1, 3, 0, 0, 0}, (struct rule){10, SUN, 1, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Australia/Sydney");
	/* No DST, a name CLDR knows. */
	phone_blob(&tz, -180, "Belarus Standard Time", "(UTC+03:00) Minsk", 0, (struct rule){0},
	           (struct rule){0});
	assert_string_equal(matched(&tz, mid, NULL), "Europe/Minsk");
	/* Android's shape: Windows display names cut to 31 units. */
	phone_blob(&tz, 300, "(UTC-05:00) Eastern Time (US & C", "(UTC-05:00) Eastern Time (US & C",
	           -60, (struct rule){11, SUN, 1, 2, 0, 0, 0},
	           (struct rule){3, SUN, 2, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "America/New_York");
	/* iOS: no names. The preferred zone of each rule set. */
	tz.standard_name[0] = tz.daylight_name[0] = '\0';
	assert_string_equal(matched(&tz, mid, NULL), "America/New_York");
	phone_blob(&tz, -60, "", "", -60, (struct rule){10, SUN, 5, 3, 0, 0, 0},
	           (struct rule){3, SUN, 5, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Europe/Berlin");
	phone_blob(&tz, 0, "", "", -60, (struct rule){10, SUN, 5, 2, 0, 0, 0},
	           (struct rule){3, SUN, 5, 1, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "Europe/London");
	phone_blob(&tz, -540, "", "", 0, (struct rule){0}, (struct rule){0});
	assert_string_equal(matched(&tz, mid, NULL), "Asia/Tokyo");
	phone_blob(&tz, -330, "", "", 0, (struct rule){0}, (struct rule){0});
	assert_string_equal(matched(&tz, mid, NULL), "Asia/Kolkata");
	phone_blob(&tz, 180, "", "", 0, (struct rule){0}, (struct rule){0});
	assert_string_equal(matched(&tz, mid, NULL), "America/Sao_Paulo");
	/* Brazil's 2018 rules in 2018 (Sao Paulo) but not in 2026. */
	phone_blob(&tz, 180, "", "", -60, (struct rule){2, SUN, 3, 0, 0, 0, 0},
	           (struct rule){11, SUN, 1, 0, 0, 0, 0});
	assert_string_equal(matched(&tz, "20180701T120000Z", NULL), "America/Sao_Paulo");
	/* The hint first when it follows the rules, else ignored. */
	phone_blob(&tz, -60, "", "", -60, (struct rule){10, SUN, 5, 3, 0, 0, 0},
	           (struct rule){3, SUN, 5, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, "Europe/Paris"), "Europe/Paris");
	assert_string_equal(matched(&tz, mid, "America/New_York"), "Europe/Berlin");
	/* A name whose zone has other rules: the rules win. */
	phone_blob(&tz, 300, "W. Europe Standard Time", "W. Europe Daylight Time", -60,
	           (struct rule){11, SUN, 1, 2, 0, 0, 0}, (struct rule){3, SUN, 2, 2, 0, 0, 0});
	assert_string_equal(matched(&tz, mid, NULL), "America/New_York");
	/* An absolute date (wYear set) for the year itself. */
	phone_blob(&tz, -60, "", "", -60, (struct rule){10, SUN, 25, 3, 0, 0, 0},
	           (struct rule){3, SUN, 29, 2, 0, 0, 0});
	tz.standard_date.year = tz.daylight_date.year = 2026;
	assert_string_equal(matched(&tz, mid, NULL), "Europe/Berlin");
	assert_int_equal(pim_tz_offset_at(&tz, instant("20260329T005959Z")), 3600);
	assert_int_equal(pim_tz_offset_at(&tz, instant("20260329T010000Z")), 7200);

	/* The bytes of Pacific time as MS-ASDTYPE lays them out (bias 480). */
	phone_blob(&tz, 480, "Pacific Standard Time", "Pacific Daylight Time", -60,
	           (struct rule){11, SUN, 1, 2, 0, 0, 0}, (struct rule){3, SUN, 2, 2, 0, 0, 0});
	pim_tz_encode(&tz, blob);
	static const uint8_t head[] = {0xe0, 0x01, 0x00, 0x00, 'P', 0, 'a', 0, 'c', 0};
	static const uint8_t sdate[] = {0, 0, 11, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t ddate[] = {0, 0, 3, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t dbias[] = {0xc4, 0xff, 0xff, 0xff};
	assert_memory_equal(blob, head, sizeof(head));
	assert_memory_equal(blob + 68, sdate, sizeof(sdate));
	assert_memory_equal(blob + 84, "\0\0\0\0", 4);
	assert_memory_equal(blob + 88, "P\0a\0c\0", 6);
	assert_memory_equal(blob + 152, ddate, sizeof(ddate));
	assert_memory_equal(blob + 168, dbias, sizeof(dbias));
	assert_int_equal(blob[4 + 2 * 21], 0); /* "Pacific Standard Time" is 21 units */
}

/* A zone no Olson zone follows: built from the blob, and read back the same. */
static void
test_custom(void **state)
{
	struct pim_eas_tz tz, back;
	uint8_t a[PIM_TZ_BLOB_LEN], b[PIM_TZ_BLOB_LEN];
	icaltimezone *z;
	bool owned = false;
	int64_t at = instant("20260701T120000Z");

	(void)state;
	phone_blob(&tz, -60, "Custom Standard Time", "Custom Summer Time", -60,
	           (struct rule){9, SUN, 1, 3, 0, 0, 0}, (struct rule){4, SUN, 2, 2, 0, 0, 0});
	z = pim_tz_to_ical(&tz, at, NULL, &owned);
	assert_non_null(z);
	assert_true(owned);
	assert_int_equal(pim_tz_from_ical(z, at, &back), 0);
	pim_tz_encode(&tz, a);
	pim_tz_encode(&back, b);
	assert_memory_equal(a, b, sizeof(a));
	/* April 12 and September 6, 2026. */
	assert_int_equal(libical_offset(z, instant("20260412T005959Z")), 3600);
	assert_int_equal(libical_offset(z, instant("20260412T010000Z")), 7200);
	assert_int_equal(libical_offset(z, instant("20260906T005959Z")), 7200);
	assert_int_equal(libical_offset(z, instant("20260906T010000Z")), 3600);
	assert_int_equal(pim_tz_offset_at(&tz, instant("20260412T005959Z")), 3600);
	assert_int_equal(pim_tz_offset_at(&tz, instant("20260412T010000Z")), 7200);
	/* And the next year by the same rules (April 11, 2027). */
	assert_int_equal(libical_offset(z, instant("20270411T005959Z")), 3600);
	assert_int_equal(libical_offset(z, instant("20270411T010000Z")), 7200);
	icaltimezone_free(z, 1);

	/* A southern custom zone with a 24:00 change, and one without DST at +05:17. */
	phone_blob(&tz, 180, "", "", -60, (struct rule){3, SAT, 5, 23, 59, 59, 999},
	           (struct rule){10, SAT, 2, 23, 59, 59, 999});
	z = pim_tz_to_ical(&tz, at, NULL, &owned);
	assert_non_null(z);
	assert_true(owned);
	assert_int_equal(pim_tz_from_ical(z, at, &back), 0);
	/* The rules come back exactly; the names are the built zone's TZID. */
	assert_string_equal(back.standard_name, "UTC-03:00 (daylight saving time)");
	back.standard_name[0] = back.daylight_name[0] = '\0';
	pim_tz_encode(&tz, a);
	pim_tz_encode(&back, b);
	assert_memory_equal(a, b, sizeof(a));
	for (int64_t t = instant("20260101T000000Z"); t < instant("20270101T000000Z"); t += 3600)
		assert_int_equal(pim_tz_offset_at(&back, t), pim_tz_offset_at(&tz, t));
	icaltimezone_free(z, 1);
	phone_blob(&tz, -317, "", "", 0, (struct rule){0}, (struct rule){0});
	z = pim_tz_to_ical(&tz, at, NULL, &owned);
	assert_non_null(z);
	assert_true(owned);
	assert_int_equal(libical_offset(z, at), 317 * 60);
	icaltimezone_free(z, 1);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, int32_t v)
{
	put16(p, (uint16_t)((uint32_t)v & 0xffff));
	put16(p + 2, (uint16_t)((uint32_t)v >> 16));
}

static void
test_refused(void **state)
{
	struct pim_eas_tz tz;
	uint8_t good[PIM_TZ_BLOB_LEN], bad[PIM_TZ_BLOB_LEN + 1];

	(void)state;
	phone_blob(&tz, -60, "W. Europe Standard Time", "W. Europe Daylight Time", -60,
	           (struct rule){10, SUN, 5, 3, 0, 0, 0}, (struct rule){3, SUN, 5, 2, 0, 0, 0});
	pim_tz_encode(&tz, good);
	assert_int_equal(pim_tz_decode(good, sizeof(good), &tz), 0);
	assert_int_equal(pim_tz_decode(good, sizeof(good) - 1, &tz), -1);
	assert_int_equal(pim_tz_decode(good, 0, &tz), -1);
	assert_int_equal(pim_tz_decode(NULL, sizeof(good), &tz), -1);
	memcpy(bad, good, sizeof(good));
	bad[PIM_TZ_BLOB_LEN] = 0;
	assert_int_equal(pim_tz_decode(bad, sizeof(bad), &tz), -1);

	/* Field by field: offset, value, refused. */
	static const struct {
		size_t off;
		int bits;
		int32_t v;
		bool ok;
	} f[] = {
	    {0, 32, 1440, true},
	    {0, 32, 1441, false},
	    {0, 32, -1441, false},
	    {68 + 2, 16, 12, true},
	    {68 + 2, 16, 13, false},
	    {68 + 4, 16, 7, false},
	    {68 + 6, 16, 6, false},
	    {68 + 6, 16, 0, false},
	    {68 + 8, 16, 24, false},
	    {68 + 10, 16, 60, false},
	    {68 + 12, 16, 60, false},
	    {68 + 14, 16, 999, true},
	    {68 + 14, 16, 1000, false},
	    {84, 32, 1441, false},
	    {152 + 2, 16, 13, false},
	    {152 + 6, 16, 6, false},
	    {168, 32, -1441, false},
	    {168, 32, 60, true},
	    /* Bias plus DaylightBias beyond a day. */
	    {168, 32, -1400, false},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		memcpy(bad, good, sizeof(good));
		if (f[i].bits == 32)
			put32(bad + f[i].off, f[i].v);
		else
			put16(bad + f[i].off, (uint16_t)f[i].v);
		if (pim_tz_decode(bad, PIM_TZ_BLOB_LEN, &tz) != (f[i].ok ? 0 : -1))
			fail_msg("field at %zu = %d: want %s", f[i].off, f[i].v,
			         f[i].ok ? "accepted" : "refused");
	}
	/* Absolute dates: a real day of the month only. */
	memcpy(bad, good, sizeof(good));
	put16(bad + 68, 2026);
	put16(bad + 68 + 2, 2);
	put16(bad + 68 + 6, 29);
	assert_int_equal(pim_tz_decode(bad, PIM_TZ_BLOB_LEN, &tz), -1);
	put16(bad + 68, 2028);
	assert_int_equal(pim_tz_decode(bad, PIM_TZ_BLOB_LEN, &tz), 0);
	/* A month of 0 (no DST): the rest of that date is not read. */
	memcpy(bad, good, sizeof(good));
	put16(bad + 68 + 2, 0);
	put16(bad + 68 + 8, 99);
	assert_int_equal(pim_tz_decode(bad, PIM_TZ_BLOB_LEN, &tz), 0);
	assert_int_equal(pim_tz_offset_at(&tz, instant("20260701T120000Z")), 3600);
}

static void
test_names(void **state)
{
	struct pim_eas_tz tz;
	uint8_t blob[PIM_TZ_BLOB_LEN];

	(void)state;
	memset(&tz, 0, sizeof(tz));
	snprintf(tz.standard_name, sizeof(tz.standard_name), "%s", "Mitteleurop\xc3\xa4ische Zeit");
	snprintf(tz.daylight_name, sizeof(tz.daylight_name), "%s", "\xf0\x9f\x95\x90 clock");
	pim_tz_encode(&tz, blob);
	assert_int_equal(blob[4 + 2 * 11], 0xe4); /* U+00E4 */
	assert_int_equal(blob[88], 0x3d);         /* U+1F550 as D83D DD50 */
	assert_int_equal(blob[89], 0xd8);
	assert_int_equal(blob[90], 0x50);
	assert_int_equal(blob[91], 0xdd);
	assert_int_equal(pim_tz_decode(blob, sizeof(blob), &tz), 0);
	assert_string_equal(tz.standard_name, "Mitteleurop\xc3\xa4ische Zeit");
	assert_string_equal(tz.daylight_name, "\xf0\x9f\x95\x90 clock");
	/* A lone surrogate and 32 units with no NUL. */
	memset(blob + 4, 0, 64);
	put16(blob + 4, 0xd800);
	put16(blob + 6, 'A');
	for (int i = 0; i < 32; i++)
		put16(blob + 88 + 2 * i, 'x');
	assert_int_equal(pim_tz_decode(blob, sizeof(blob), &tz), 0);
	assert_string_equal(tz.standard_name, "\xef\xbf\xbd"
	                                      "A");
	assert_int_equal(strlen(tz.daylight_name), 32);
	/* Written back: cut at 31 units, so that a NUL ends it. */
	pim_tz_encode(&tz, blob);
	assert_int_equal(blob[88 + 2 * 30], 'x');
	assert_int_equal(blob[88 + 2 * 31], 0);
	/* Invalid UTF-8 written as U+FFFD. */
	snprintf(tz.standard_name, sizeof(tz.standard_name), "%s",
	         "a\xff"
	         "b");
	pim_tz_encode(&tz, blob);
	assert_int_equal(blob[6], 0xfd);
	assert_int_equal(blob[7], 0xff);
	assert_int_equal(blob[8], 'b');
}

/* The cache gives what a fresh match gives. */
static void
test_cache(void **state)
{
	struct pim_eas_tz tz;
	bool owned;

	(void)state;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i += 3) {
		int64_t at = instant(zones[i].at);
		icaltimezone *a, *b;

		assert_int_equal(
		    pim_tz_from_ical(icaltimezone_get_builtin_timezone(zones[i].zone), at, &tz), 0);
		tz.standard_name[0] = tz.daylight_name[0] = '\0';
		pim_tz_cache_enable(false);
		a = pim_tz_to_ical(&tz, at, NULL, &owned);
		pim_tz_cache_enable(true);
		b = pim_tz_to_ical(&tz, at, NULL, &owned);
		assert_ptr_equal(a, b);
		assert_ptr_equal(pim_tz_to_ical(&tz, at, NULL, &owned), b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zones),   cmocka_unit_test(test_utc),
	    cmocka_unit_test(test_phones),  cmocka_unit_test(test_custom),
	    cmocka_unit_test(test_refused), cmocka_unit_test(test_names),
	    cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
