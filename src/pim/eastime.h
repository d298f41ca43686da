/*
 * eastime.h: the date-time spellings of ActiveSync's PIM classes.
 *
 * EAS writes a UTC instant two ways (MS-ASDTYPE 2.3): the Calendar code page
 * in the compact ISO 8601 basic form "20261206T230000Z" (StartTime, EndTime,
 * DtStamp, ExceptionStartTime, Until), Contacts and Tasks in the extended
 * form with milliseconds "2026-12-06T23:00:00.000Z" (Birthday, Anniversary,
 * DueDate, DateCompleted, ReminderTime). Phones are not strict about which
 * they send where, so the reader takes either, with or without the
 * fraction, and a missing 'Z' (Tasks' local DueDate and StartDate are
 * written so by some clients) reads as UTC.
 *
 * Every field is range-checked (no 2026-02-30, no 24:00); years 1601 to 9999
 * (the range of a Windows FILETIME, which EAS dates come from).
 */
#ifndef ABQ_PIM_EASTIME_H
#define ABQ_PIM_EASTIME_H

#include <stdint.h>

#define PIM_TIME_COMPACT_LEN 16 /* "20261206T230000Z" */
#define PIM_TIME_LONG_LEN    24 /* "2026-12-06T23:00:00.000Z" */

/* t (seconds since the epoch, UTC) as "yyyymmddThhmmssZ" into buf; returns buf. */
const char *pim_time_compact(int64_t t, char buf[PIM_TIME_COMPACT_LEN + 1]);
/* t as "yyyy-mm-ddThh:mm:ss.000Z" into buf; returns buf. */
const char *pim_time_long(int64_t t, char buf[PIM_TIME_LONG_LEN + 1]);
/*
 * Read either form (a fraction of 1 to 3 digits optional in the extended
 * one, 'Z' optional in both) into *t. Returns 0, or -1 for anything else
 * (trailing bytes, out-of-range fields, years outside 1601-9999).
 */
int pim_time_parse(const char *s, int64_t *t);

#endif
