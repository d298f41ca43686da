/*
 * recur.c: RRULE (RFC 5545 3.3.10) <-> the EAS recurrence pattern, for
 * calendar items (MS-ASCAL 2.2.2.37) and tasks (MS-ASTASK 2.2.2.19).
 *
 * EAS has six pattern types, each Outlook's: every n days (0), every n
 * weeks on a set of weekdays (1), every n months on a day (2) or on the
 * first/second/third/fourth/last of a set of weekdays (3), every n years on
 * a month's day (5) or on such a weekday of a month (6); DayOfWeek 127 with
 * WeekOfMonth 5 is the last day of the month. An RRULE maps onto one of
 * them when it has one month at most, one month day at most, weekdays
 * either all without an ordinal or one with (1 to 4, or -1), BYSETPOS
 * only to pick the nth of a weekday set, and nothing finer than days.
 * Everything else (two month days, BYYEARDAY, BYWEEKNO, hourly rules,
 * "the second Monday and the last Friday", a fifth weekday that is not the
 * last, RSCALE) has no pattern: the caller decides what the phone sees.
 *
 * Rules are built as text and read back with libical's parser, which
 * encodes the BYDAY ordinals its own way.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "pim/eastime.h"
#include "pim/ical_int.h"

static const char *const wd_names[7] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

/* 0 Sunday ... 6 Saturday of a date. */
static int
weekday(struct icaltimetype t)
{
	int64_t days = pim_civil_to_epoch(t.year, t.month, t.day, 0, 0, 0) / 86400;
	int64_t w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

static int
by_count(const short *a, int size)
{
	int n = 0;

	while (n < size && a[n] != ICAL_RECURRENCE_ARRAY_MAX)
		n++;
	return n;
}

/* The most days month m has (29 for February). */
static int
month_days_max(int m)
{
	static const int len[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m >= 1 && m <= 12 ? len[m - 1] : 31;
}

static int
fail(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

/* An ordinal as WeekOfMonth (1-4; -1 is 5, the last); 0 when EAS has none for it. */
static int
week_of(int pos)
{
	return pos >= 1 && pos <= 4 ? pos : pos == -1 ? 5 : 0;
}

int
pim_recur_from_rrule(const struct icalrecurrencetype *rule, const struct pim_time *st,
                     icaltimezone *zone, bool date_utc, struct pim_recur *out, const char **why)
{
	int nday = by_count(rule->by_day, ICAL_BY_DAY_SIZE);
	int nmd = by_count(rule->by_month_day, ICAL_BY_MONTHDAY_SIZE);
	int nm = by_count(rule->by_month, ICAL_BY_MONTH_SIZE);
	int nsp = by_count(rule->by_set_pos, ICAL_BY_SETPOS_SIZE);
	int mask = 0, pos = 0, npos = 0, clamped = 0;
	struct icaltimetype d = st->local;

	memset(out, 0, sizeof(*out));
	out->fdow = -1;
	out->interval = rule->interval > 0 ? rule->interval : 1;
	if (rule->rscale != NULL && *rule->rscale && strcasecmp(rule->rscale, "GREGORIAN") != 0)
		return fail(why, "a non-Gregorian RSCALE");
	if (by_count(rule->by_hour, ICAL_BY_HOUR_SIZE) ||
	    by_count(rule->by_minute, ICAL_BY_MINUTE_SIZE) ||
	    by_count(rule->by_second, ICAL_BY_SECOND_SIZE))
		return fail(why, "times of day (BYHOUR, BYMINUTE, BYSECOND)");
	if (by_count(rule->by_year_day, ICAL_BY_YEARDAY_SIZE) ||
	    by_count(rule->by_week_no, ICAL_BY_WEEKNO_SIZE))
		return fail(why, "BYYEARDAY or BYWEEKNO");
	/*
	 * EAS's day 29, 30 or 31 falls on a shorter month's last day (Outlook's
	 * rule), RFC 5545's is skipped there: written "BYMONTHDAY=28,...,31;
	 * BYSETPOS=-1", which pim_recur_to_rrule writes for it.
	 */
	if (nday == 0 && nsp == 1 && rule->by_set_pos[0] == -1 && nmd >= 2 && nmd <= 4) {
		bool run = true;

		for (int i = 0; i < nmd && run; i++)
			run = rule->by_month_day[i] == 28 + i;
		if (run) {
			clamped = 27 + nmd;
			nmd = 0;
			nsp = 0;
		}
	}
	if (nm > 1 || nmd > 1 || nsp > 1)
		return fail(why, "more than one month, month day or set position");
	if (nm == 1 && icalrecurrencetype_month_is_leap(rule->by_month[0]))
		return fail(why, "a leap month");
	for (int i = 0; i < nday; i++) {
		int w = (int)icalrecurrencetype_day_day_of_week(rule->by_day[i]);
		int p = icalrecurrencetype_day_position(rule->by_day[i]);

		if (w < 1 || w > 7)
			return fail(why, "an unknown weekday");
		mask |= 1 << (w - 1);
		if (p != 0) {
			pos = p;
			npos++;
		}
	}
	if (npos > 0 && (nday > 1 || nsp > 0))
		return fail(why, "weekdays with different ordinals");
	switch (rule->freq) {
	case ICAL_DAILY_RECURRENCE:
		if (nmd || nm || nsp)
			return fail(why, "a daily rule limited to months or month days");
		if (nday == 0) {
			out->type = 0;
			break;
		}
		if (npos || out->interval != 1)
			return fail(why, "a daily rule on weekdays every other day");
		out->type = 1; /* every day of a weekday set is a weekly pattern */
		out->dow = mask;
		break;
	case ICAL_WEEKLY_RECURRENCE:
		if (nmd || nm || nsp || npos)
			return fail(why, "a weekly rule limited beyond weekdays");
		out->type = 1;
		out->dow = nday ? mask : 1 << weekday(d);
		out->fdow = (int)rule->week_start - 1;
		break;
	case ICAL_MONTHLY_RECURRENCE:
	case ICAL_YEARLY_RECURRENCE: {
		bool yearly = rule->freq == ICAL_YEARLY_RECURRENCE;

		if (!yearly && nm)
			return fail(why, "a monthly rule limited to months");
		/* A yearly rule without BYMONTH runs its month days or weekdays through every
		 * month. */
		if (yearly && nm == 0 && (nmd || nday))
			return fail(why, "a yearly rule on days of every month");
		out->moy =
		    yearly ? (nm ? icalrecurrencetype_month_month(rule->by_month[0]) : d.month) : 0;
		if (nday == 0) {
			int v = clamped ? clamped : nmd ? rule->by_month_day[0] : d.day;

			if (nsp)
				return fail(why, "BYSETPOS without weekdays");
			/* A day some months lack, without the clamp: those months have none. */
			if (!clamped && v >= 29 &&
			    (!yearly || v > month_days_max(out->moy) || (out->moy == 2 && v == 29)))
				return fail(why, "a month day some months lack");
			if (v >= 1 && v <= 31) {
				out->type = yearly ? 5 : 2;
				out->dom = v;
			} else if (v == -1) {
				out->type = yearly ? 6 : 3;
				out->wom = 5;
				out->dow = 127;
			} else {
				return fail(why, "a month day counted from the end");
			}
			break;
		}
		if (nmd)
			return fail(why, "weekdays and month days together");
		if (npos == 1)
			out->wom = week_of(pos);
		else if (nsp == 1)
			out->wom = week_of(rule->by_set_pos[0]);
		else
			return fail(why, "every such weekday of the month");
		if (out->wom == 0)
			return fail(why, "a fifth or further weekday");
		out->type = yearly ? 6 : 3;
		out->dow = mask;
		break;
	}
	default:
		return fail(why, "a rule more frequent than daily");
	}
	out->occurrences = rule->count > 0 ? rule->count : 0;
	if (out->occurrences == 0 && !icaltime_is_null_time(rule->until)) {
		struct icaltimetype u = rule->until;

		out->has_until = true;
		if (u.is_date && !st->date) {
			/* A date UNTIL on a timed rule: the whole of that day. */
			u.is_date = 0;
			u.hour = 23;
			u.minute = 59;
			u.second = 59;
			out->until = pim_local_to_utc(u, zone);
		} else if (u.is_date) {
			out->until = pim_local_to_utc(u, date_utc ? NULL : zone);
		} else if (icaltime_is_utc(u) || st->utc_form) {
			u.zone = NULL;
			out->until = pim_local_to_utc(u, NULL);
		} else {
			u.zone = NULL;
			out->until = pim_local_to_utc(u, zone);
		}
	}
	return 0;
}

/* BYDAY (and BYSETPOS) for the nth of a weekday set, appended to b. */
static void
nth_days(struct sbuf *b, int dow, int wom, struct icaltimetype d)
{
	int n = wom == 5 ? -1 : wom, bits = 0;

	if (dow == 127) {
		/* Any day: the nth day of the month, or its last. */
		sbuf_printf(b, ";BYMONTHDAY=%d", n);
		return;
	}
	if (dow == 0)
		dow = 1 << weekday(d);
	for (int i = 0; i < 7; i++)
		bits += dow >> i & 1;
	sbuf_add(b, ";BYDAY=");
	if (bits == 1) {
		for (int i = 0; i < 7; i++)
			if (dow >> i & 1)
				sbuf_printf(b, "%d%s", n, wd_names[i]);
		return;
	}
	for (int i = 0, first = 1; i < 7; i++)
		if (dow >> i & 1) {
			sbuf_printf(b, "%s%s", first ? "" : ",", wd_names[i]);
			first = 0;
		}
	sbuf_printf(b, ";BYSETPOS=%d", n);
}

static void
day_list(struct sbuf *b, int dow)
{
	sbuf_add(b, ";BYDAY=");
	for (int i = 0, first = 1; i < 7; i++)
		if (dow >> i & 1) {
			sbuf_printf(b, "%s%s", first ? "" : ",", wd_names[i]);
			first = 0;
		}
}

/*
 * A monthly (moy 0) or yearly rule on day dom: a day some months lack falls
 * on their last day, as in Outlook ("BYMONTHDAY=28,29,30;BYSETPOS=-1").
 */
static void
month_day(struct sbuf *b, int dom, int moy)
{
	if (moy > 0)
		sbuf_printf(b, "FREQ=YEARLY;BYMONTH=%d", moy);
	else
		sbuf_add(b, "FREQ=MONTHLY");
	if (dom < 29 || (moy > 0 && moy != 2)) {
		sbuf_printf(b, ";BYMONTHDAY=%d", dom);
		return;
	}
	sbuf_add(b, ";BYMONTHDAY=28");
	for (int i = 29; i <= dom; i++)
		sbuf_printf(b, ",%d", i);
	sbuf_add(b, ";BYSETPOS=-1");
}

void
pim_recur_to_rrule(const struct pim_recur *r, const struct pim_time *st, icaltimezone *zone,
                   bool date_utc, struct icalrecurrencetype *out)
{
	struct icaltimetype d = st->local;
	struct sbuf b = {0};
	char *s;

	switch (r->type) {
	case 0:
		sbuf_add(&b, "FREQ=DAILY");
		if (r->dow > 0 && r->dow < 127)
			day_list(&b, r->dow);
		break;
	case 1:
		sbuf_add(&b, "FREQ=WEEKLY");
		day_list(&b, r->dow > 0 && r->dow < 128 ? r->dow & 127 : 1 << weekday(d));
		if (r->fdow >= 0 && r->fdow <= 6 && r->fdow != 1)
			sbuf_printf(&b, ";WKST=%s", wd_names[r->fdow]);
		break;
	case 2:
		month_day(&b, r->dom > 0 ? r->dom : d.day, 0);
		break;
	case 3:
		sbuf_add(&b, "FREQ=MONTHLY");
		nth_days(&b, r->dow, r->wom > 0 ? r->wom : 1, d);
		break;
	case 5:
		month_day(&b, r->dom > 0 ? r->dom : d.day, r->moy > 0 ? r->moy : d.month);
		break;
	default:
		sbuf_printf(&b, "FREQ=YEARLY;BYMONTH=%d", r->moy > 0 ? r->moy : d.month);
		nth_days(&b, r->dow, r->wom > 0 ? r->wom : 1, d);
		break;
	}
	if (r->interval > 1)
		sbuf_printf(&b, ";INTERVAL=%d", r->interval);
	if (r->occurrences > 0) {
		sbuf_printf(&b, ";COUNT=%d", r->occurrences);
	} else if (r->has_until) {
		struct icaltimetype u;

		if (st->date) {
			u = pim_utc_to_local(r->until, date_utc ? NULL : zone);
			sbuf_printf(&b, ";UNTIL=%04d%02d%02d", u.year, u.month, u.day);
		} else if (st->floating) {
			u = pim_utc_to_local(r->until, zone);
			sbuf_printf(&b, ";UNTIL=%04d%02d%02dT%02d%02d%02d", u.year, u.month, u.day,
			            u.hour, u.minute, u.second);
		} else {
			char buf[PIM_TIME_COMPACT_LEN + 1];
			sbuf_printf(&b, ";UNTIL=%s", pim_time_compact(r->until, buf));
		}
	}
	s = sbuf_take(&b);
	*out = icalrecurrencetype_from_string(s);
	free(s);
}

bool
pim_recur_same(const struct pim_recur *a, const struct pim_recur *b)
{
	if (a->type != b->type || a->interval != b->interval || a->occurrences != b->occurrences ||
	    a->has_until != b->has_until || (a->has_until && a->until != b->until))
		return false;
	switch (a->type) {
	case 0:
		return a->dow == b->dow;
	case 1:
		/* The first day of the week only tells weeks apart when some are skipped. */
		return a->dow == b->dow &&
		       (a->interval == 1 || a->fdow < 0 || b->fdow < 0 || a->fdow == b->fdow);
	case 2:
		return a->dom == b->dom;
	case 3:
		return a->dow == b->dow && a->wom == b->wom;
	case 5:
		return a->dom == b->dom && a->moy == b->moy;
	default:
		return a->dow == b->dow && a->wom == b->wom && a->moy == b->moy;
	}
}

/* The tokens of the pattern's elements on the Calendar and the Tasks page. */
struct recur_tokens {
	unsigned recurrence, type, start, until, occurrences, interval, dow, dom, wom, moy,
	    regenerate, dead_occur, fdow;
};

static const struct recur_tokens cal_tokens = {0x1B, 0x1C, 0,    0x1D, 0x1E, 0x1F, 0x20,
                                               0x21, 0x22, 0x23, 0,    0,    0x39};
static const struct recur_tokens task_tokens = {0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16,
                                                0x15, 0x17, 0x18, 0x19, 0x1A, 0x26};

void
pim_recur_write(struct wbxml_node *parent, unsigned page, const struct pim_recur *r, int version)
{
	bool task = page == WBXML_PAGE_TASKS;
	const struct recur_tokens *t = task ? &task_tokens : &cal_tokens;
	struct wbxml_node *rec = wbxml_add(parent, page, t->recurrence);

	pim_add_int(rec, page, t->type, r->type);
	if (task && r->has_start)
		pim_add_long(rec, page, t->start, r->start);
	if (task && r->has_until)
		pim_add_long(rec, page, t->until, r->until);
	if (r->occurrences > 0)
		pim_add_int(rec, page, t->occurrences, r->occurrences);
	pim_add_int(rec, page, t->interval, r->interval > 0 ? r->interval : 1);
	if (r->type == 3 || r->type == 6)
		pim_add_int(rec, page, t->wom, r->wom);
	if (r->dow > 0)
		pim_add_int(rec, page, t->dow, r->dow);
	if (r->type == 5 || r->type == 6)
		pim_add_int(rec, page, t->moy, r->moy);
	if (!task && r->has_until)
		pim_add_compact(rec, page, t->until, r->until);
	if (r->type == 2 || r->type == 5)
		pim_add_int(rec, page, t->dom, r->dom);
	if (task) {
		pim_add_int(rec, page, t->regenerate, r->regenerate);
		pim_add_int(rec, page, t->dead_occur, r->dead_occur);
	}
	if (r->type == 1 && r->fdow >= 0 && version >= 141)
		pim_add_int(rec, page, t->fdow, r->fdow);
}

int
pim_recur_read(const struct wbxml_node *rec, unsigned page, struct pim_recur *r)
{
	const struct recur_tokens *t = page == WBXML_PAGE_TASKS ? &task_tokens : &cal_tokens;
	long v;

	memset(r, 0, sizeof(*r));
	r->fdow = -1;
	r->interval = 1;
	if (!pim_kid_int(rec, page, t->type, 0, 6, &v) || v == 4)
		return -1;
	r->type = (int)v;
	if (pim_kid_int(rec, page, t->interval, 0, 999, &v) && v > 0)
		r->interval = (int)v;
	if (pim_kid_int(rec, page, t->occurrences, 0, 999999, &v))
		r->occurrences = (int)v;
	r->has_until = pim_kid_time(rec, page, t->until, &r->until);
	if (pim_kid_int(rec, page, t->dow, 0, 127, &v))
		r->dow = (int)v;
	if (pim_kid_int(rec, page, t->dom, 1, 31, &v))
		r->dom = (int)v;
	if (pim_kid_int(rec, page, t->wom, 1, 5, &v))
		r->wom = (int)v;
	if (pim_kid_int(rec, page, t->moy, 1, 12, &v))
		r->moy = (int)v;
	if (pim_kid_int(rec, page, t->fdow, 0, 6, &v))
		r->fdow = (int)v;
	if (page == WBXML_PAGE_TASKS) {
		r->has_start = pim_kid_time(rec, page, t->start, &r->start);
		r->regenerate = pim_kid_int(rec, page, t->regenerate, 0, 1, &v) && v == 1;
		r->dead_occur = pim_kid_int(rec, page, t->dead_occur, 0, 1, &v) && v == 1;
	}
	return 0;
}
