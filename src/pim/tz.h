/*
 * tz.h: time zones between iCalendar (libical) and ActiveSync.
 *
 * An EAS calendar item carries its time zone as Calendar:TimeZone, the
 * base64 of a 172-byte blob (MS-ASDTYPE 2.6.4, the Windows
 * TIME_ZONE_INFORMATION): Bias (minutes, UTC = local + Bias), the standard
 * and daylight names (32 UTF-16LE units each), the two SYSTEMTIME
 * transition rules (in "day-of-week occurrence" form: wMonth, wDayOfWeek,
 * wDay 1-5 with 5 = last, wHour/wMinute local time; wYear 0) and the
 * StandardBias and DaylightBias. It describes one yearly pair of rules, no
 * history: so a zone is converted for the rules in force at a given instant
 * (the event's start), and a blob is matched back to the Olson zone that
 * follows the same rules that year.
 *
 * Implementation: tz.c.
 */
#ifndef ABQ_PIM_TZ_H
#define ABQ_PIM_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

#define PIM_TZ_BLOB_LEN 172
#define PIM_TZ_NAME_MAX 128 /* a name's UTF-8 bytes at most (32 UTF-16 units), NUL apart */

/* A Windows SYSTEMTIME as the blob holds it. */
struct pim_systemtime {
	uint16_t year, month, day_of_week, day, hour, minute, second, millis;
};

/* The blob, decoded. */
struct pim_eas_tz {
	int32_t bias;
	char standard_name[PIM_TZ_NAME_MAX + 1];
	struct pim_systemtime standard_date; /* month 0: no daylight saving time */
	int32_t standard_bias;
	char daylight_name[PIM_TZ_NAME_MAX + 1];
	struct pim_systemtime daylight_date;
	int32_t daylight_bias;
};

/*
 * Decode len bytes (the base64 already taken off) into *out: 0, or -1 when
 * len is not PIM_TZ_BLOB_LEN or a field is out of range (a month over 12, a
 * day of week over 6, wDay over 5 in rule form, biases beyond +-24 h); the
 * names' invalid UTF-16 becomes U+FFFD.
 */
int pim_tz_decode(const uint8_t *blob, size_t len, struct pim_eas_tz *out);
/*
 * Encode *tz into blob (names cut at 31 UTF-16 units, so that a NUL ends
 * each: Windows reads them as C strings).
 */
void pim_tz_encode(const struct pim_eas_tz *tz, uint8_t blob[PIM_TZ_BLOB_LEN]);

/*
 * The rules zone follows in the year of the instant at (seconds since the
 * epoch, UTC) as an EAS zone: *out filled, 0; -1 when the zone cannot be
 * read. UTC (or a NULL zone: floating times read as UTC) is bias 0, no
 * daylight saving time. A zone whose rules that year are not a yearly pair
 * expressible as SYSTEMTIME rules gets the offset in force at at, without
 * daylight saving time.
 */
int pim_tz_from_ical(icaltimezone *zone, int64_t at, struct pim_eas_tz *out);

/*
 * The libical zone for an EAS zone, for times around at: the Olson zone
 * named hint when it follows the same rules that year, else the first of
 * libical's built-in zones that does (standard offset, daylight offset and
 * both transitions equal), else a zone built from the blob's own rules
 * (*owned set: free it with icaltimezone_free(z, 1)). NULL only when tz
 * cannot be expressed (never for a decoded blob). *owned false: a built-in
 * zone, not to be freed.
 */
icaltimezone *pim_tz_to_ical(const struct pim_eas_tz *tz, int64_t at, const char *hint,
                             bool *owned);

/* The offset from UTC (seconds, local = UTC + offset) the EAS zone gives at the UTC instant. */
int32_t pim_tz_offset_at(const struct pim_eas_tz *tz, int64_t utc);

/*
 * pim_tz_to_ical keeps its answers per (blob, year, hint), pim_tz_from_ical
 * its blobs per (built-in or interned zone, year). Turning these caches off
 * (or on again) empties them and stops the interning of VTIMEZONEs
 * (pim_ical_zone_interning), for tests and measurements; the table of the
 * built-in zones' rules per year that matching walks is kept, and so are
 * the zones interned.
 */
void pim_tz_cache_enable(bool on);

#endif
