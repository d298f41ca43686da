/*
 * tz.c: time zones between iCalendar (libical) and the EAS TimeZone blob
 * (tz.h).
 *
 * The blob's layout is read and written by hand: it is a fixed 172-byte
 * little-endian record that no Debian library parses. The zones themselves
 * come from libical: its built-in zones (the system tzdata) and any
 * VTIMEZONE a server sends.
 *
 * iCalendar to EAS. A blob holds one yearly pair of rules, so the rules are
 * derived from what the zone actually does in the year of the instant: the
 * offset libical gives (icaltimezone_get_utc_offset_of_utc_time) is sampled
 * once a day over the year and each change is bisected to the second. That
 * is exact whatever the zone's own rule shape ("Fri>=23", "lastThu 24:00",
 * "Sun>=2 at 24:00 of Saturday", RDATE lists, a negative "DST" as tzdata
 * writes Europe/Dublin): the blob gets the dates they produce that year.
 *  - No change in the year: no daylight saving time, Bias = the offset.
 *  - Two changes between the same two offsets: daylight saving time. The
 *    higher offset is always "daylight" and the lower "standard", whatever
 *    the zone's own flags say (Dublin's winter GMT is tzdata's DST, with a
 *    negative save; Casablanca's Ramadan +00 too): a phone gets the blob
 *    Windows would write, DaylightBias negative. A southern zone simply has
 *    its DaylightDate after its StandardDate in the year.
 *  - Anything else (one change: a zone changing its offset for good that
 *    year, such as Africa/Casablanca going back to +00 in 2026; three or
 *    more: Ramadan pauses inside a DST period): not a yearly pair, so the
 *    offset in force at the instant, without daylight saving time. Events
 *    of that year on the other side of a change are off by the change on a
 *    phone that only has the blob; the iCalendar copy stays exact.
 * Each transition becomes a day-of-week-occurrence rule (wDay 5 when it is
 * the month's last such weekday) at the wall-clock time in force before it
 * (the rule form Windows uses). Where several rules give that year's date
 * (4th or last; a 00:00 transition also as 23:59:59.999 of the day before,
 * Windows' spelling of 24:00), the one that also gives the zone's dates in
 * most of the three years before and after is taken: Chile's "first
 * Saturday, 24:00" rather than "first Sunday, 00:00", which is wrong when
 * April starts on a Sunday; Egypt's "last Thursday, 24:00". A rule that no
 * nth-weekday form follows every year (Israel's "Friday before the last
 * Sunday") still gives the year's own dates.
 * Names: the Olson id (X-LIC-LOCATION, or the TZID when it names a built-in
 * zone) in both names, so that a blob a phone sends back names its zone
 * exactly (pim_tz_to_ical reads the names as a hint); abbreviations are
 * ambiguous (CST is three zones) and phones do not show either. A zone with
 * no Olson id (a custom VTIMEZONE) gives the TZNAMEs of its observances,
 * else its TZID.
 *
 * EAS to iCalendar. A blob's two transitions for the year are computed and
 * compared, to the second (Windows' 23:59:59.999 against 24:00), with those
 * of the candidate zones for that year: the hint, the zones the blob names
 * (an Olson id, or a Windows zone name through ICU's CLDR mapping), then
 * every built-in zone in order of preference (see rank(): CLDR's zone for
 * each Windows zone first, Antarctica's and the Arctic's last, so that
 * Europe/Berlin comes before Arctic/Longyearbyen). A blob of no DST at +00
 * with no name is UTC. When no zone matches (a phone's custom zone), a
 * VTIMEZONE is built from the blob's own rules: a STANDARD and a DAYLIGHT
 * with yearly RRULEs (BYMONTH, BYDAY) from 1970; a 24:00 change
 * (23:59:59.999) starts at 23:59:59 there, which reads back as 23:59:59.999.
 *
 * Cost (bench/bench_tz): the first match of a process has libical load all
 * its built-in zones from tzdata (0.2-0.5 s); the rules of every zone for a
 * year then take about 15 ms, and are kept for YEAR_TABLES years. A match
 * is then a walk of that table (microseconds), and each answer is kept per
 * (blob, year, hint). pim_tz_from_ical scans seven years of its zone (about
 * 0.2 ms) and keeps the blob per (built-in or interned zone, year).
 */
#include "pim/tz.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "lib/util.h"
#include "pim/ical.h"

#define DAY         86400
#define MIN_INSTANT (-11644473600LL) /* 1601-01-01T00:00:00Z */
#define MAX_INSTANT 253402300799LL   /* 9999-12-31T23:59:59Z */
#define MAX_BIAS    (24 * 60)
#define MAX_CHANGES 8   /* offset changes kept per year; more is not a pair anyway */
#define AROUND      3   /* years either side that choose among rule spellings */
#define YEAR_TABLES 4   /* years of built-in zone rules kept */
#define FROM_SLOTS  64  /* (built-in or interned zone, year) blobs kept */
#define CACHE_SLOTS 256 /* (blob, year, hint) answers kept */
#define NAME_UNITS  32
/* libical's prefix to its built-in zones' TZIDs (its default, which abqd keeps). */
#define ICAL_TZID_PREFIX "/freeassociation.sourceforge.net/"

/* ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
mdays(int64_t y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	/* Years counted from March, so that February's length comes last. */
	int64_t yy = m <= 2 ? y - 1 : y;
	int64_t era = floordiv(yy, 400);
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floordiv(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday, as SYSTEMTIME counts (1970-01-01 was a Thursday). */
static int
weekday(int64_t days)
{
	return (int)((days % 7 + 11) % 7);
}

static int64_t
year_of(int64_t t)
{
	int64_t y;
	int m, d;

	civil_from_days(floordiv(t, DAY), &y, &m, &d);
	return y;
}

static int64_t
clamp_instant(int64_t t)
{
	return t < MIN_INSTANT ? MIN_INSTANT : t > MAX_INSTANT ? MAX_INSTANT : t;
}

/* ---- the blob ---- */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int32_t
get32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	                 (uint32_t)p[3] << 24);
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
	uint32_t u = (uint32_t)v;

	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

static size_t
put_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* 32 UTF-16LE units up to the first NUL as UTF-8 (lone surrogates: U+FFFD). */
static void
get_name(const uint8_t *p, char out[PIM_TZ_NAME_MAX + 1])
{
	size_t n = 0;

	for (int i = 0; i < NAME_UNITS; i++) {
		uint32_t c = get16(p + 2 * i);

		if (c == 0)
			break;
		if (c >= 0xd800 && c <= 0xdbff && i + 1 < NAME_UNITS) {
			uint32_t lo = get16(p + 2 * (i + 1));

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			} else {
				c = 0xfffd;
			}
		} else if (c >= 0xd800 && c <= 0xdfff) {
			c = 0xfffd;
		}
		n += put_utf8(out + n, c);
	}
	out[n] = '\0';
}

/* The next code point of the UTF-8 at *s (invalid bytes: U+FFFD, one byte each). */
static uint32_t
next_utf8(const unsigned char **s)
{
	const unsigned char *p = *s;
	uint32_t c = p[0], min;
	int n;

	if (c < 0x80) {
		*s = p + 1;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, c &= 0x07, min = 0x10000;
	else {
		*s = p + 1;
		return 0xfffd;
	}
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*s = p + 1;
			return 0xfffd;
		}
		c = c << 6 | (p[i] & 0x3f);
	}
	*s = p + 1 + n;
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0xfffd;
	return c;
}

/*
 * name as UTF-16LE into the 32 units at p, cut so that a NUL always ends
 * it (Windows reads the names as NUL-terminated strings: 31 units of text).
 */
static void
put_name(uint8_t *p, const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	int n = 0;

	memset(p, 0, 2 * NAME_UNITS);
	while (*s != '\0') {
		uint32_t c = next_utf8(&s);

		if (c >= 0x10000) {
			if (n + 2 > NAME_UNITS - 1)
				break;
			c -= 0x10000;
			put16(p + 2 * n++, (uint16_t)(0xd800 + (c >> 10)));
			put16(p + 2 * n++, (uint16_t)(0xdc00 + (c & 0x3ff)));
		} else {
			if (n + 1 > NAME_UNITS - 1)
				break;
			put16(p + 2 * n++, (uint16_t)c);
		}
	}
}

static void
get_systemtime(const uint8_t *p, struct pim_systemtime *st)
{
	st->year = get16(p);
	st->month = get16(p + 2);
	st->day_of_week = get16(p + 4);
	st->day = get16(p + 6);
	st->hour = get16(p + 8);
	st->minute = get16(p + 10);
	st->second = get16(p + 12);
	st->millis = get16(p + 14);
}

static void
put_systemtime(uint8_t *p, const struct pim_systemtime *st)
{
	put16(p, st->year);
	put16(p + 2, st->month);
	put16(p + 4, st->day_of_week);
	put16(p + 6, st->day);
	put16(p + 8, st->hour);
	put16(p + 10, st->minute);
	put16(p + 12, st->second);
	put16(p + 14, st->millis);
}

/*
 * Whether a transition date is usable: month 1-12, a time of day, and
 * either the rule form (year 0, weekday 0-6, occurrence 1-5) or an
 * absolute date (a real day of that month).
 */
static bool
date_ok(const struct pim_systemtime *st)
{
	if (st->month < 1 || st->month > 12 || st->hour > 23 || st->minute > 59 ||
	    st->second > 59 || st->millis > 999 || st->day_of_week > 6)
		return false;
	if (st->year == 0)
		return st->day >= 1 && st->day <= 5;
	return st->year >= 1601 && st->year <= 30827 && st->day >= 1 &&
	       st->day <= mdays(st->year, st->month);
}

static bool
bias_ok(int32_t b)
{
	return b >= -MAX_BIAS && b <= MAX_BIAS;
}

int
pim_tz_decode(const uint8_t *blob, size_t len, struct pim_eas_tz *out)
{
	memset(out, 0, sizeof(*out));
	if (blob == NULL || len != PIM_TZ_BLOB_LEN)
		return -1;
	out->bias = get32(blob);
	get_name(blob + 4, out->standard_name);
	get_systemtime(blob + 68, &out->standard_date);
	out->standard_bias = get32(blob + 84);
	get_name(blob + 88, out->daylight_name);
	get_systemtime(blob + 152, &out->daylight_date);
	out->daylight_bias = get32(blob + 168);
	/* A month of 0 says "no transition": the rest of that date is not read. */
	if ((out->standard_date.month != 0 && !date_ok(&out->standard_date)) ||
	    (out->daylight_date.month != 0 && !date_ok(&out->daylight_date)) ||
	    !bias_ok(out->bias) || !bias_ok(out->standard_bias) || !bias_ok(out->daylight_bias) ||
	    !bias_ok(out->bias + out->standard_bias) || !bias_ok(out->bias + out->daylight_bias)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

void
pim_tz_encode(const struct pim_eas_tz *tz, uint8_t blob[PIM_TZ_BLOB_LEN])
{
	put32(blob, tz->bias);
	put_name(blob + 4, tz->standard_name);
	put_systemtime(blob + 68, &tz->standard_date);
	put32(blob + 84, tz->standard_bias);
	put_name(blob + 88, tz->daylight_name);
	put_systemtime(blob + 152, &tz->daylight_date);
	put32(blob + 168, tz->daylight_bias);
}

/* ---- a year's rules, from a blob or a zone ---- */

/*
 * What a zone does in a year, in UTC: the standard (lower) offset, and with
 * daylight saving time the daylight offset and the two instants it starts
 * and ends. Offsets in seconds east of UTC.
 */
struct year_rules {
	int32_t std_off, dst_off;
	bool dst;
	int64_t to_dst, to_std;
};

/* The local time (seconds since the epoch as if UTC) st gives in year. */
static int64_t
rule_local(const struct pim_systemtime *st, int64_t year)
{
	int64_t days;
	int day;

	if (st->year != 0) {
		/* An absolute date: that day of that month, in any year asked. */
		day = st->day > mdays(year, st->month) ? mdays(year, st->month) : st->day;
		days = days_from_civil(year, st->month, day);
	} else {
		int64_t first = days_from_civil(year, st->month, 1);

		day = 1 + (st->day_of_week - weekday(first) + 7) % 7 + 7 * (st->day - 1);
		while (day > mdays(year, st->month))
			day -= 7;
		days = first + day - 1;
	}
	/* In whole seconds, 23:59:59.999 is 24:00: the first second after it. */
	return days * DAY + st->hour * 3600 + st->minute * 60 + st->second + (st->millis > 0);
}

/*
 * The blob's offsets (StandardBias and DaylightBias added to Bias) and
 * transitions in year. Daylight saving time needs both dates valid and a
 * daylight offset other than the standard one; a DaylightBias above the
 * StandardBias (daylight behind standard) is taken as written.
 */
static void
blob_rules(const struct pim_eas_tz *tz, int64_t year, struct year_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->std_off = -(tz->bias + tz->standard_bias) * 60;
	r->dst_off = r->std_off;
	if (!date_ok(&tz->standard_date) || !date_ok(&tz->daylight_date) ||
	    tz->daylight_bias == tz->standard_bias)
		return;
	r->dst_off = -(tz->bias + tz->daylight_bias) * 60;
	/* Each date is wall-clock time of the period it ends. */
	r->to_dst = rule_local(&tz->daylight_date, year) - r->std_off;
	r->to_std = rule_local(&tz->standard_date, year) - r->dst_off;
	r->dst = r->to_dst != r->to_std;
}

static bool
in_dst(const struct year_rules *r, int64_t utc)
{
	if (!r->dst)
		return false;
	if (r->to_dst < r->to_std)
		return utc >= r->to_dst && utc < r->to_std;
	return utc >= r->to_dst || utc < r->to_std;
}

int32_t
pim_tz_offset_at(const struct pim_eas_tz *tz, int64_t utc)
{
	struct year_rules r;
	int32_t off;

	utc = clamp_instant(utc);
	blob_rules(tz, year_of(utc - (tz->bias + tz->standard_bias) * 60), &r);
	off = in_dst(&r, utc) ? r.dst_off : r.std_off;
	/* Only a blob that skipped pim_tz_decode's checks could go further. */
	if (off > MAX_BIAS * 60)
		off = MAX_BIAS * 60;
	if (off < -MAX_BIAS * 60)
		off = -MAX_BIAS * 60;
	return off;
}

/* One change of a zone's offset. */
struct change {
	int64_t utc;           /* the first second of the new offset */
	int32_t before, after; /* offsets, seconds east of UTC */
};

static int32_t
zone_offset(icaltimezone *zone, int64_t t)
{
	icaltimezone *utc = icaltimezone_get_utc_timezone();
	struct icaltimetype tt = icaltime_from_timet_with_zone((time_t)t, 0, utc);
	int is_daylight = 0;

	return icaltimezone_get_utc_offset_of_utc_time(zone, &tt, &is_daylight);
}

/*
 * The zone's offset changes in year (UTC), at most MAX_CHANGES of them:
 * the number found (MAX_CHANGES + 1 when there were more). *first: the
 * offset at the year's start. Sampled daily, so two changes within a day
 * are not seen (no zone does that).
 */
static int
zone_changes(icaltimezone *zone, int64_t year, struct change *c, int32_t *first)
{
	int64_t start = days_from_civil(year, 1, 1) * DAY;
	int64_t end = days_from_civil(year + 1, 1, 1) * DAY;
	int32_t prev = zone_offset(zone, start);
	int n = 0;

	*first = prev;
	for (int64_t t = start; t < end;) {
		int64_t lo = t, hi = t + DAY < end ? t + DAY : end;

		if (zone_offset(zone, hi) == prev) {
			t = hi;
			continue;
		}
		/* zone_offset(lo) == prev, zone_offset(hi) != prev. */
		while (hi - lo > 1) {
			int64_t mid = lo + (hi - lo) / 2;

			if (zone_offset(zone, mid) == prev)
				lo = mid;
			else
				hi = mid;
		}
		if (hi >= end)
			break;
		if (n == MAX_CHANGES)
			return MAX_CHANGES + 1;
		c[n].utc = hi;
		c[n].before = prev;
		c[n].after = zone_offset(zone, hi);
		prev = c[n].after;
		n++;
		t = hi;
	}
	return n;
}

/*
 * The zone's rules in year: 0 and *r filled when the year has no change or
 * a pair of changes between two offsets; -1 otherwise (not a yearly pair).
 */
static int
rules_of_changes(const struct change *c, int n, int32_t first, struct year_rules *r)
{
	memset(r, 0, sizeof(*r));
	if (n == 0) {
		r->std_off = r->dst_off = first;
		return 0;
	}
	if (n != 2 || c[0].before != c[1].after || c[0].after != c[1].before)
		return -1;
	r->dst = true;
	if (c[0].after > c[0].before) {
		r->std_off = c[0].before;
		r->dst_off = c[0].after;
		r->to_dst = c[0].utc;
		r->to_std = c[1].utc;
	} else {
		r->std_off = c[0].after;
		r->dst_off = c[0].before;
		r->to_std = c[0].utc;
		r->to_dst = c[1].utc;
	}
	return 0;
}

static int
zone_rules(icaltimezone *zone, int64_t year, struct year_rules *r)
{
	struct change c[MAX_CHANGES];
	int32_t first;
	int n = zone_changes(zone, year, c, &first);

	return rules_of_changes(c, n, first, r);
}

/* Whether two years' rules are the same, transitions within a second (23:59:59.999 for 24:00). */
static bool
rules_equal(const struct year_rules *a, const struct year_rules *b)
{
	if (a->std_off != b->std_off || a->dst != b->dst)
		return false;
	if (!a->dst)
		return true;
	return a->dst_off == b->dst_off && a->to_dst - b->to_dst <= 1 &&
	       b->to_dst - a->to_dst <= 1 && a->to_std - b->to_std <= 1 &&
	       b->to_std - a->to_std <= 1;
}

/* ---- iCalendar to EAS ---- */

/*
 * The rule forms that give the transition at local time (seconds since the
 * epoch as if UTC) local in year: up to 4 into c.
 */
static int
rule_candidates(int64_t local, int64_t year, struct pim_systemtime c[4])
{
	int64_t days = floordiv(local, DAY), secs = local - days * DAY;
	int n = 0;

	for (int pass = 0; pass < 2; pass++) {
		int64_t dd = pass == 0 ? days : days - 1, y;
		int m, d, occ;

		if (pass == 1 && secs != 0)
			break;
		civil_from_days(dd, &y, &m, &d);
		if (y != year)
			continue;
		occ = (d - 1) / 7 + 1;
		for (int k = 0; k < 2; k++) {
			struct pim_systemtime *st = &c[n];

			memset(st, 0, sizeof(*st));
			st->month = (uint16_t)m;
			st->day_of_week = (uint16_t)weekday(dd);
			if (k == 0) {
				st->day = (uint16_t)(d + 7 > mdays(y, m) ? 5 : occ);
			} else {
				/* The 4th that is also the last: "4" as the second choice. */
				if (!(d + 7 > mdays(y, m) && occ == 4))
					break;
				st->day = 4;
			}
			if (pass == 0) {
				st->hour = (uint16_t)(secs / 3600);
				st->minute = (uint16_t)(secs / 60 % 60);
				st->second = (uint16_t)(secs % 60);
				/* 23:59:59 is a zone built here from Windows' 24:00. */
				if (secs == DAY - 1)
					st->millis = 999;
			} else {
				st->hour = 23;
				st->minute = 59;
				st->second = 59;
				st->millis = 999;
			}
			n++;
		}
	}
	return n;
}

/*
 * The rule for a transition at utc, the wall clock reading before offset
 * "before": of the candidates, the one that also gives the zone's
 * transition of the same kind (to_dst says which) in most of the AROUND
 * years either side, the nearer years weighing more. around[k] holds year
 * - AROUND + k (around[AROUND], the year itself, is not read); an entry
 * without daylight saving time is not counted.
 */
static void
pick_rule(int64_t utc, int32_t before, int64_t year, bool to_dst,
          const struct year_rules around[2 * AROUND + 1], struct pim_systemtime *out)
{
	struct pim_systemtime c[4];
	int n = rule_candidates(utc + before, year, c), best = 0, best_score = -1;

	for (int i = 0; i < n; i++) {
		int score = 0;

		for (int k = 0; k <= 2 * AROUND; k++) {
			const struct year_rules *r = &around[k];
			int64_t y = year - AROUND + k, want, got;

			if (k == AROUND || !r->dst)
				continue;
			want = to_dst ? r->to_dst : r->to_std;
			got = rule_local(&c[i], y) - (to_dst ? r->std_off : r->dst_off);
			if (want - got <= 1 && got - want <= 1)
				score += AROUND + 1 - (k < AROUND ? AROUND - k : k - AROUND);
		}
		if (score > best_score) {
			best_score = score;
			best = i;
		}
	}
	*out = c[best];
}

static void
copy_name(char out[PIM_TZ_NAME_MAX + 1], const char *s)
{
	size_t n = strlen(s);

	/* Cut at a character boundary within the cap. */
	if (n > PIM_TZ_NAME_MAX) {
		n = PIM_TZ_NAME_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

/* The zone's TZID without libical's prefix for its built-in zones. */
static const char *
bare_tzid(icaltimezone *zone)
{
	const char *tzid = icaltimezone_get_tzid(zone);

	if (tzid == NULL)
		return NULL;
	if (strncmp(tzid, ICAL_TZID_PREFIX, strlen(ICAL_TZID_PREFIX)) == 0)
		return tzid + strlen(ICAL_TZID_PREFIX);
	return tzid;
}

/* The zone's Olson id: its X-LIC-LOCATION, or its TZID when that names a built-in zone. */
static const char *
olson_id(icaltimezone *zone)
{
	const char *loc = icaltimezone_get_location(zone), *tzid;

	if (loc != NULL && *loc != '\0')
		return loc;
	tzid = bare_tzid(zone);
	if (tzid != NULL && icaltimezone_get_builtin_timezone(tzid) != NULL)
		return tzid;
	return NULL;
}

/*
 * The TZNAME of the zone's latest observance up to year whose TZOFFSETTO
 * is off (a zone with no Olson id), else its TZID.
 */
static void
observance_name(icaltimezone *zone, int32_t off, int64_t year, char out[PIM_TZ_NAME_MAX + 1])
{
	icalcomponent *vtz = icaltimezone_get_component(zone), *c;
	struct icaltimetype best = icaltime_null_time();
	const char *name = NULL, *tzid;

	for (c = vtz != NULL ? icalcomponent_get_first_component(vtz, ICAL_ANY_COMPONENT) : NULL;
	     c != NULL; c = icalcomponent_get_next_component(vtz, ICAL_ANY_COMPONENT)) {
		icalcomponent_kind k = icalcomponent_isa(c);
		icalproperty *to, *nm;
		struct icaltimetype start;

		if (k != ICAL_XSTANDARD_COMPONENT && k != ICAL_XDAYLIGHT_COMPONENT)
			continue;
		to = icalcomponent_get_first_property(c, ICAL_TZOFFSETTO_PROPERTY);
		nm = icalcomponent_get_first_property(c, ICAL_TZNAME_PROPERTY);
		if (to == NULL || nm == NULL || icalproperty_get_tzoffsetto(to) != off)
			continue;
		start = icalcomponent_get_dtstart(c);
		if (!icaltime_is_null_time(start) && start.year > year)
			continue;
		if (name == NULL || icaltime_compare(start, best) >= 0) {
			best = start;
			name = icalproperty_get_tzname(nm);
		}
	}
	if (name == NULL)
		name = (tzid = bare_tzid(zone)) != NULL ? tzid : "";
	copy_name(out, name);
}

static bool
is_utc(icaltimezone *zone)
{
	const char *tzid;

	if (zone == NULL || zone == icaltimezone_get_utc_timezone())
		return true;
	tzid = icaltimezone_get_tzid(zone);
	return tzid != NULL && (strcmp(tzid, "UTC") == 0 || strcmp(tzid, "Etc/UTC") == 0);
}

/* Minutes from seconds, to the nearest (old local mean times have seconds). */
static int32_t
minutes(int32_t secs)
{
	return (int32_t)floordiv(secs + 30, 60);
}

/*
 * pim_tz_from_ical's answers for built-in and interned zones (whose pointers
 * live as long as the process: pim_ical_zone_interned) per (zone, year),
 * when the year is a yearly pair or has no change (else the answer depends
 * on the instant).
 */
struct from_slot {
	icaltimezone *zone;
	int64_t year;
	struct pim_eas_tz tz;
};

static pthread_mutex_t from_lock = PTHREAD_MUTEX_INITIALIZER;
static struct from_slot from_cache[FROM_SLOTS];
static bool from_cache_off;

static struct from_slot *
from_slot(icaltimezone *zone, int64_t year)
{
	uint64_t h = ((uint64_t)(uintptr_t)zone >> 4) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)year;

	return &from_cache[(h ^ h >> 29) % FROM_SLOTS];
}

int
pim_tz_from_ical(icaltimezone *zone, int64_t at, struct pim_eas_tz *out)
{
	struct year_rules r, around[2 * AROUND + 1];
	const char *id;
	int64_t year;
	int32_t off;
	bool builtin, pair;

	memset(out, 0, sizeof(*out));
	if (is_utc(zone)) {
		copy_name(out->standard_name, "UTC");
		copy_name(out->daylight_name, "UTC");
		return 0;
	}
	if (icaltimezone_get_component(zone) == NULL)
		return -1;
	at = clamp_instant(at);
	off = zone_offset(zone, at);
	year = year_of(at + off);
	id = olson_id(zone);
	/* Built-in and interned zones live as long as the process: their answers are kept. */
	builtin = (id != NULL && icaltimezone_get_builtin_timezone(id) == zone) ||
	          pim_ical_zone_interned(zone);
	if (builtin) {
		bool hit;

		pthread_mutex_lock(&from_lock);
		hit = !from_cache_off && from_slot(zone, year)->zone == zone &&
		      from_slot(zone, year)->year == year;
		if (hit)
			*out = from_slot(zone, year)->tz;
		pthread_mutex_unlock(&from_lock);
		if (hit)
			return 0;
	}
	pair = zone_rules(zone, year, &r) == 0;
	if (!pair) {
		/* Not a yearly pair: the offset in force at the instant. */
		r.std_off = r.dst_off = off;
		r.dst = false;
	}
	/* Offsets a blob cannot hold (only a custom zone has them): the one in force. */
	if (!bias_ok(minutes(r.std_off)) || !bias_ok(minutes(r.dst_off)) ||
	    !bias_ok(minutes(r.dst_off) - minutes(r.std_off))) {
		r.std_off = r.dst_off = bias_ok(minutes(off)) ? off : 0;
		r.dst = pair = false;
	}
	out->bias = -minutes(r.std_off);
	if (r.dst) {
		for (int k = 0; k <= 2 * AROUND; k++) {
			struct year_rules *a = &around[k];

			if (k != AROUND && (zone_rules(zone, year - AROUND + k, a) < 0 ||
			                    a->std_off != r.std_off || a->dst_off != r.dst_off))
				a->dst = false;
		}
		out->daylight_bias = -(minutes(r.dst_off) - minutes(r.std_off));
		pick_rule(r.to_dst, r.std_off, year, true, around, &out->daylight_date);
		pick_rule(r.to_std, r.dst_off, year, false, around, &out->standard_date);
	}
	if (id != NULL) {
		copy_name(out->standard_name, id);
		copy_name(out->daylight_name, id);
	} else {
		observance_name(zone, r.std_off, year, out->standard_name);
		observance_name(zone, r.dst ? r.dst_off : r.std_off, year, out->daylight_name);
	}
	if (builtin && pair) {
		pthread_mutex_lock(&from_lock);
		if (!from_cache_off) {
			struct from_slot *slot = from_slot(zone, year);

			slot->zone = zone;
			slot->year = year;
			slot->tz = *out;
		}
		pthread_mutex_unlock(&from_lock);
	}
	return 0;
}

/* ---- EAS to iCalendar ---- */

/*
 * The order in which built-in zones are tried when several follow a blob's
 * rules: the zone CLDR names for its Windows zone ("golden" zones: the one
 * a Windows or Outlook user of that zone has) first, then the other zones
 * with a Windows zone, then the rest, Antarctica's and the Arctic's last
 * (their stations borrow a country's rules); the order of zone.tab within
 * each. Before all of them, the zones of the most users for each offset
 * (preferred[], in its order), so that a nameless blob of the EU's rules
 * at +01 is Europe/Berlin (CLDR's zone for "W. Europe Standard Time")
 * rather than Europe/Budapest ("Central Europe Standard Time").
 */
static const char *const preferred[] = {
    "America/New_York",    "America/Chicago",     "America/Denver",   "America/Los_Angeles",
    "America/Phoenix",     "America/Anchorage",   "Pacific/Honolulu", "America/Sao_Paulo",
    "America/Mexico_City", "Europe/London",       "Europe/Berlin",    "Europe/Kyiv",
    "Europe/Moscow",       "Africa/Johannesburg", "Africa/Lagos",     "Africa/Cairo",
    "Asia/Dubai",          "Asia/Karachi",        "Asia/Kolkata",     "Asia/Dhaka",
    "Asia/Bangkok",        "Asia/Shanghai",       "Asia/Tokyo",       "Australia/Sydney",
    "Pacific/Auckland",
};

/* The canonical id of an Olson or Windows zone through ICU, as UTF-8 (false: unknown). */
static bool
icu_utf8(const UChar *u, int32_t n, char *out, size_t cap)
{
	UErrorCode err = U_ZERO_ERROR;
	int32_t len;

	u_strToUTF8(out, (int32_t)cap, &len, u, n, &err);
	return U_SUCCESS(err) && len > 0 && (size_t)len < cap;
}

/* The Olson id CLDR gives for a Windows zone id, in the "001" (world) region. */
static bool
windows_to_olson(const char *win, char *out, size_t cap)
{
	UChar uwin[64], uid[64];
	UErrorCode err = U_ZERO_ERROR;
	int32_t n, len;

	u_strFromUTF8(uwin, 64, &n, win, -1, &err);
	if (U_FAILURE(err) || n == 0 || n >= 64)
		return false;
	len = ucal_getTimeZoneIDForWindowsID(uwin, n, "001", uid, 64, &err);
	if (U_FAILURE(err) || len <= 0 || len >= 64)
		return false;
	return icu_utf8(uid, len, out, cap);
}

/* The Windows zone id CLDR gives an Olson id (false: none). */
static bool
olson_to_windows(const char *id, char *out, size_t cap)
{
	UChar uid[64], uwin[64];
	UErrorCode err = U_ZERO_ERROR;
	int32_t n, len;

	u_strFromUTF8(uid, 64, &n, id, -1, &err);
	if (U_FAILURE(err) || n == 0 || n >= 64)
		return false;
	len = ucal_getWindowsTimeZoneID(uid, n, uwin, 64, &err);
	if (U_FAILURE(err) || len <= 0 || len >= 64)
		return false;
	return icu_utf8(uwin, len, out, cap);
}

/* Whether two Olson ids are the same zone for ICU (Europe/Kiev and Europe/Kyiv). */
static bool
same_zone(const char *a, const char *b)
{
	UChar ua[64], ub[64], ca[64], cb[64];
	UErrorCode err = U_ZERO_ERROR;
	int32_t na, nb, la, lb;

	if (strcmp(a, b) == 0)
		return true;
	u_strFromUTF8(ua, 64, &na, a, -1, &err);
	u_strFromUTF8(ub, 64, &nb, b, -1, &err);
	if (U_FAILURE(err) || na >= 64 || nb >= 64)
		return false;
	la = ucal_getCanonicalTimeZoneID(ua, na, ca, 64, NULL, &err);
	lb = ucal_getCanonicalTimeZoneID(ub, nb, cb, 64, NULL, &err);
	return U_SUCCESS(err) && la == lb && u_strncmp(ca, cb, la) == 0;
}

/* Smaller is preferred (see preferred[]). */
static int
rank(const char *id)
{
	char win[128], golden[128];

	for (size_t i = 0; i < sizeof(preferred) / sizeof(preferred[0]); i++)
		if (strcmp(id, preferred[i]) == 0)
			return 0;
	if (olson_to_windows(id, win, sizeof(win))) {
		if (windows_to_olson(win, golden, sizeof(golden)) && same_zone(id, golden))
			return 1;
		return 2;
	}
	if (strncmp(id, "Antarctica/", 11) == 0 || strncmp(id, "Arctic/", 7) == 0)
		return 4;
	return 3;
}

/* The built-in zones' rules for one year, in order of preference. */
struct zone_entry {
	icaltimezone *zone;
	struct year_rules r;
	bool irregular; /* not a yearly pair that year: compared at the instant */
	int nchanges;   /* an irregular zone's changes that year, to tell its offset */
	int32_t first;
	struct change ch[MAX_CHANGES];
};

static void
entry_fill(icaltimezone *zone, int64_t year, struct zone_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->zone = zone;
	e->nchanges = zone_changes(zone, year, e->ch, &e->first);
	e->irregular = rules_of_changes(e->ch, e->nchanges, e->first, &e->r) < 0;
}

struct year_table {
	int64_t year;
	size_t n;
	struct zone_entry *z;
	uint64_t used;
};

/* The answer for a (blob, year, hint). */
struct cache_slot {
	bool full;
	uint8_t blob[PIM_TZ_BLOB_LEN];
	int64_t year;
	char *hint;
	icaltimezone *zone; /* NULL: no built-in zone, build one */
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static icaltimezone **ordered; /* the built-in zones by rank() */
static size_t nordered;
static struct year_table tables[YEAR_TABLES];
static uint64_t table_clock;
static struct cache_slot cache[CACHE_SLOTS];
static bool cache_off; /* for measuring (pim_tz_cache_enable) */

struct ranked {
	icaltimezone *zone;
	int rank;
	size_t pos;
};

static int
by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void
order_builtins(void)
{
	icalarray *all;
	struct ranked *rk;

	if (ordered != NULL)
		return;
	all = icaltimezone_get_builtin_timezones();
	nordered = all != NULL ? all->num_elements : 0;
	ordered = xcalloc(nordered + 1, sizeof(*ordered));
	rk = xcalloc(nordered + 1, sizeof(*rk));
	for (size_t i = 0; i < nordered; i++) {
		icaltimezone *z = icalarray_element_at(all, i);
		const char *loc = icaltimezone_get_location(z);
		int pr = -1;

		rk[i].zone = z;
		rk[i].pos = i;
		rk[i].rank = loc != NULL ? rank(loc) : 5;
		/* The preferred zones in preferred[]'s order. */
		for (size_t k = 0; loc != NULL && k < sizeof(preferred) / sizeof(preferred[0]); k++)
			if (strcmp(loc, preferred[k]) == 0)
				pr = (int)k;
		if (pr >= 0)
			rk[i].pos = (size_t)pr;
		else
			rk[i].pos = i + 1000;
	}
	qsort(rk, nordered, sizeof(*rk), by_rank);
	for (size_t i = 0; i < nordered; i++)
		ordered[i] = rk[i].zone;
	free(rk);
}

static struct year_table *
year_table(int64_t year)
{
	struct year_table *t = NULL;

	for (int i = 0; i < YEAR_TABLES; i++) {
		if (tables[i].z != NULL && tables[i].year == year) {
			tables[i].used = ++table_clock;
			return &tables[i];
		}
	}
	for (int i = 0; i < YEAR_TABLES; i++)
		if (t == NULL || tables[i].used < t->used)
			t = &tables[i];
	free(t->z);
	order_builtins();
	t->year = year;
	t->n = nordered;
	t->z = xcalloc(nordered + 1, sizeof(*t->z));
	t->used = ++table_clock;
	for (size_t i = 0; i < nordered; i++) {
		t->z[i].zone = ordered[i];
		entry_fill(ordered[i], year, &t->z[i]);
	}
	return t;
}

/* The year's table if it is built (not building it). */
static struct year_table *
year_table_if_built(int64_t year)
{
	for (int i = 0; i < YEAR_TABLES; i++)
		if (tables[i].z != NULL && tables[i].year == year)
			return &tables[i];
	return NULL;
}

/*
 * Whether the zone of e follows r in year; an irregular zone (not a yearly
 * pair) is compared by its offset at the instant, *vary then set.
 */
static bool
entry_matches(const struct zone_entry *e, const struct year_rules *r, int64_t year, int64_t at,
              bool *vary)
{
	struct year_rules zr;

	if (!e->irregular)
		return rules_equal(&e->r, r);
	*vary = true;
	memset(&zr, 0, sizeof(zr));
	if (at >= days_from_civil(year, 1, 1) * DAY && at < days_from_civil(year + 1, 1, 1) * DAY &&
	    e->nchanges <= MAX_CHANGES) {
		zr.std_off = e->first;
		for (int i = 0; i < e->nchanges && at >= e->ch[i].utc; i++)
			zr.std_off = e->ch[i].after;
	} else {
		zr.std_off = zone_offset(e->zone, at);
	}
	zr.dst_off = zr.std_off;
	return rules_equal(&zr, r);
}

/* Whether zone follows r in year (see entry_matches). */
static bool
zone_matches(icaltimezone *zone, const struct year_rules *r, int64_t year, int64_t at, bool *vary)
{
	struct year_table *t = year_table_if_built(year);
	struct zone_entry e;

	for (size_t i = 0; t != NULL && i < t->n; i++)
		if (t->z[i].zone == zone)
			return entry_matches(&t->z[i], r, year, at, vary);
	entry_fill(zone, year, &e);
	return entry_matches(&e, r, year, at, vary);
}

/* A built-in zone named id (an Olson id, or a Windows zone name) following r, or NULL. */
static icaltimezone *
named_zone(const char *id, const struct year_rules *r, int64_t year, int64_t at, bool *vary)
{
	icaltimezone *z;
	char olson[128];

	if (id == NULL || *id == '\0')
		return NULL;
	z = icaltimezone_get_builtin_timezone(id);
	if (z == NULL && windows_to_olson(id, olson, sizeof(olson)))
		z = icaltimezone_get_builtin_timezone(olson);
	if (z == NULL && strncmp(id, ICAL_TZID_PREFIX, strlen(ICAL_TZID_PREFIX)) == 0)
		z = icaltimezone_get_builtin_timezone(id + strlen(ICAL_TZID_PREFIX));
	if (z != NULL && zone_matches(z, r, year, at, vary))
		return z;
	return NULL;
}

static icaltimezone *
builtin_match(const struct pim_eas_tz *tz, const struct year_rules *r, int64_t year, int64_t at,
              const char *hint, bool *vary)
{
	struct year_table *t;
	icaltimezone *z;

	if ((z = named_zone(hint, r, year, at, vary)) != NULL ||
	    (z = named_zone(tz->standard_name, r, year, at, vary)) != NULL ||
	    (z = named_zone(tz->daylight_name, r, year, at, vary)) != NULL)
		return z;
	if (!r->dst && r->std_off == 0)
		return icaltimezone_get_utc_timezone();
	t = year_table(year);
	for (size_t i = 0; i < t->n; i++) {
		if (entry_matches(&t->z[i], r, year, at, vary))
			return t->z[i].zone;
	}
	return NULL;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void
offset_string(char *buf, size_t cap, int32_t off)
{
	int32_t a = off < 0 ? -off : off;

	snprintf(buf, cap, "%c%02d%02d%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60, a % 60);
}

/* An observance (STANDARD or DAYLIGHT) starting at the rule st, from "from" to "to". */
static icalcomponent *
observance(icalcomponent_kind kind, const struct pim_systemtime *st, int32_t from, int32_t to,
           const char *name)
{
	icalcomponent *c = icalcomponent_new(kind);
	struct icaltimetype start = icaltime_null_time();
	char buf[64];

	if (st == NULL) {
		start.year = 1970;
		start.month = 1;
		start.day = 1;
	} else {
		int64_t y = st->year != 0 ? st->year : 1970;
		int64_t l = rule_local(st, y) - (st->millis > 0), d = floordiv(l, DAY),
		        secs = l - d * DAY, yy;
		int m, dd;

		civil_from_days(d, &yy, &m, &dd);
		start.year = (int)yy;
		start.month = m;
		start.day = dd;
		start.hour = (int)(secs / 3600);
		start.minute = (int)(secs / 60 % 60);
		start.second = (int)(secs % 60);
	}
	start.is_date = 0;
	icalcomponent_add_property(c, icalproperty_new_dtstart(start));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetfrom(from));
	icalcomponent_add_property(c, icalproperty_new_tzoffsetto(to));
	if (name != NULL && *name != '\0')
		icalcomponent_add_property(c, icalproperty_new_tzname(name));
	if (st != NULL && st->year == 0) {
		static const char *const days[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

		snprintf(buf, sizeof(buf), "FREQ=YEARLY;BYMONTH=%u;BYDAY=%d%s", st->month,
		         st->day == 5 ? -1 : st->day, days[st->day_of_week]);
		icalcomponent_add_property(
		    c, icalproperty_new_rrule(icalrecurrencetype_from_string(buf)));
	}
	return c;
}

/* A zone of the blob's own rules (a phone's custom zone). */
static icaltimezone *
build_zone(const struct pim_eas_tz *tz, const struct year_rules *r)
{
	icalcomponent *vtz = icalcomponent_new(ICAL_VTIMEZONE_COMPONENT);
	icaltimezone *zone;
	char tzid[PIM_TZ_NAME_MAX + 64], off[16];

	offset_string(off, sizeof(off), r->std_off);
	if (tz->standard_name[0] != '\0')
		snprintf(tzid, sizeof(tzid), "%s", tz->standard_name);
	else
		snprintf(tzid, sizeof(tzid), "UTC%.3s:%.2s%s", off, off + 3,
		         r->dst ? " (daylight saving time)" : "");
	icalcomponent_add_property(vtz, icalproperty_new_tzid(tzid));
	if (r->dst) {
		icalcomponent_add_component(vtz,
		                            observance(ICAL_XSTANDARD_COMPONENT, &tz->standard_date,
		                                       r->dst_off, r->std_off, tz->standard_name));
		icalcomponent_add_component(vtz,
		                            observance(ICAL_XDAYLIGHT_COMPONENT, &tz->daylight_date,
		                                       r->std_off, r->dst_off, tz->daylight_name));
	} else {
		icalcomponent_add_component(vtz,
		                            observance(ICAL_XSTANDARD_COMPONENT, NULL, r->std_off,
		                                       r->std_off, tz->standard_name));
	}
	zone = icaltimezone_new();
	if (icaltimezone_set_component(zone, vtz) == 0) {
		icalcomponent_free(vtz);
		icaltimezone_free(zone, 1);
		return NULL;
	}
	return zone;
}

icaltimezone *
pim_tz_to_ical(const struct pim_eas_tz *tz, int64_t at, const char *hint, bool *owned)
{
	struct year_rules r;
	uint8_t blob[PIM_TZ_BLOB_LEN];
	struct cache_slot *slot;
	icaltimezone *z;
	int64_t year;
	uint64_t h;

	*owned = false;
	at = clamp_instant(at);
	year = year_of(at - (tz->bias + tz->standard_bias) * 60);
	blob_rules(tz, year, &r);
	if (!bias_ok(tz->bias + tz->standard_bias) ||
	    (r.dst && !bias_ok(tz->bias + tz->daylight_bias)))
		return NULL;

	pim_tz_encode(tz, blob);
	h = fnv(0xcbf29ce484222325ULL, blob, sizeof(blob));
	h = fnv(h, &year, sizeof(year));
	if (hint != NULL)
		h = fnv(h, hint, strlen(hint));
	pthread_mutex_lock(&tz_lock);
	slot = &cache[h % CACHE_SLOTS];
	if (!cache_off && slot->full && slot->year == year &&
	    memcmp(slot->blob, blob, sizeof(blob)) == 0 &&
	    (hint == NULL ? slot->hint == NULL
	                  : slot->hint != NULL && strcmp(slot->hint, hint) == 0)) {
		z = slot->zone;
	} else {
		bool vary = false;

		z = builtin_match(tz, &r, year, at, hint, &vary);
		/* A zone with no yearly pair answers for the instant, not the year: not kept. */
		if (!cache_off && !vary) {
			free(slot->hint);
			slot->full = true;
			memcpy(slot->blob, blob, sizeof(blob));
			slot->year = year;
			slot->hint = hint != NULL ? xstrdup(hint) : NULL;
			slot->zone = z;
		}
	}
	pthread_mutex_unlock(&tz_lock);
	if (z != NULL)
		return z;
	z = build_zone(tz, &r);
	*owned = z != NULL;
	return z;
}

void
pim_tz_cache_enable(bool on)
{
	pthread_mutex_lock(&from_lock);
	from_cache_off = !on;
	memset(from_cache, 0, sizeof(from_cache));
	pthread_mutex_unlock(&from_lock);
	pthread_mutex_lock(&tz_lock);
	cache_off = !on;
	for (int i = 0; i < CACHE_SLOTS; i++) {
		free(cache[i].hint);
		memset(&cache[i], 0, sizeof(cache[i]));
	}
	pthread_mutex_unlock(&tz_lock);
	pim_ical_zone_interning(on);
}
