/*
 * eastime.c: ActiveSync's two UTC date-time spellings, written and read
 * (eastime.h). By hand because both are fixed-width and strptime neither
 * range-checks (it takes 2026-02-30) nor reads a fraction of a second.
 */
#include "pim/eastime.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#define YEAR_MIN 1601
#define YEAR_MAX 9999

static void
split(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	memset(tm, 0, sizeof(*tm));
	if (gmtime_r(&tt, tm) == NULL || tm->tm_year + 1900 < YEAR_MIN ||
	    tm->tm_year + 1900 > YEAR_MAX) {
		/* Outside what EAS can say: the nearest end of its range. */
		memset(tm, 0, sizeof(*tm));
		tm->tm_mday = 1;
		tm->tm_year = t < 0 ? YEAR_MIN - 1900 : YEAR_MAX - 1900;
		if (t > 0) {
			tm->tm_mon = 11;
			tm->tm_mday = 31;
			tm->tm_hour = 23;
			tm->tm_min = 59;
			tm->tm_sec = 59;
		}
	}
}

/* v as n decimal digits at p (v within range: split() sees to it). */
static char *
put(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

const char *
pim_time_compact(int64_t t, char buf[PIM_TIME_COMPACT_LEN + 1])
{
	struct tm tm;
	char *p = buf;

	split(t, &tm);
	p = put(p, tm.tm_year + 1900, 4);
	p = put(p, tm.tm_mon + 1, 2);
	p = put(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put(p, tm.tm_hour, 2);
	p = put(p, tm.tm_min, 2);
	p = put(p, tm.tm_sec, 2);
	*p++ = 'Z';
	*p = '\0';
	return buf;
}

const char *
pim_time_long(int64_t t, char buf[PIM_TIME_LONG_LEN + 1])
{
	struct tm tm;
	char *p = buf;

	split(t, &tm);
	p = put(p, tm.tm_year + 1900, 4);
	*p++ = '-';
	p = put(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put(p, tm.tm_min, 2);
	*p++ = ':';
	p = put(p, tm.tm_sec, 2);
	memcpy(p, ".000Z", 6);
	return buf;
}

/* n decimal digits at *p into *v; advances *p. */
static bool
digits(const char **p, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		x = x * 10 + (c - '0');
	}
	*p += n;
	*v = x;
	return true;
}

static bool
lit(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int
month_days(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int
pim_time_parse(const char *s, int64_t *t)
{
	const char *p = s;
	int year, mon, day, hour, min, sec;
	bool extended;
	struct tm tm;

	if (s == NULL || !digits(&p, 4, &year))
		return -1;
	extended = *p == '-';
	if (extended) {
		if (!lit(&p, '-') || !digits(&p, 2, &mon) || !lit(&p, '-') ||
		    !digits(&p, 2, &day) || !lit(&p, 'T') || !digits(&p, 2, &hour) ||
		    !lit(&p, ':') || !digits(&p, 2, &min) || !lit(&p, ':') || !digits(&p, 2, &sec))
			return -1;
		if (*p == '.') {
			int n = 0;

			p++;
			while (*p >= '0' && *p <= '9' && n < 3) {
				p++;
				n++;
			}
			if (n == 0)
				return -1;
		}
	} else if (!digits(&p, 2, &mon) || !digits(&p, 2, &day) || !lit(&p, 'T') ||
	           !digits(&p, 2, &hour) || !digits(&p, 2, &min) || !digits(&p, 2, &sec)) {
		return -1;
	}
	if (*p == 'Z')
		p++;
	if (*p != '\0')
		return -1;
	if (year < YEAR_MIN || year > YEAR_MAX || mon < 1 || mon > 12 || day < 1 ||
	    day > month_days(year, mon) || hour > 23 || min > 59 || sec > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	*t = (int64_t)timegm(&tm);
	return 0;
}
