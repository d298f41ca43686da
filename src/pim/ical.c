/*
 * ical.c: iCalendar objects in and out (ical.h), and the helpers the event
 * and task converters share (ical_int.h).
 *
 * libical 3 parses and writes the text; what is added here is what a
 * gateway fed by any CalDAV client needs around it. The parser's input is
 * capped, and so is what it builds (components, properties, depth). A
 * VTIMEZONE is a program for libical: to answer "what offset at this
 * instant" it expands every observance's RRULE up to that year, so one with
 * a rule that is not yearly, or hundreds of open-ended rules, costs
 * minutes; such rules are taken out before anything asks. A TZID no
 * VTIMEZONE defines is looked up among libical's built-in zones, which
 * libical reads from files named after the TZID: only names shaped like
 * Olson names are looked up there. Every recurrence expansion counts its
 * steps and gives up past PIM_ICAL_MAX_STEPS, and rules more frequent than
 * daily are not expanded at all (one step of such an iterator can search
 * centuries).
 *
 * The date-time arithmetic is done on seconds since the epoch with the
 * civil calendar written out here (days from a date and back), because
 * libical's own conversions go through time_t helpers whose range differs
 * between versions; libical answers only the offsets of its zones.
 */
#include "pim/ical.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "lib/b64.h"
#include "lib/siphash.h"
#include "lib/util.h"
#include "pim/eastime.h"
#include "pim/ical_int.h"

/* The prefix libical 3 gives the TZIDs of its built-in zones. */
#define BUILTIN_PREFIX "/freeassociation.sourceforge.net/"
#define TZID_NAME_MAX  64 /* longest Olson-shaped name looked up */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
init_libical(void)
{
	icalerror_set_errors_are_fatal(0);
}

void
pim_ical_init(void)
{
	pthread_once(&init_once, init_libical);
}

/* ---- Parsing ---------------------------------------------------------- */

struct counts {
	size_t components, properties, rdates;
};

/* Entries of a BY* array of a rule (they end at ICAL_RECURRENCE_ARRAY_MAX). */
static int
by_count(const short *a, int size)
{
	int n = 0;

	while (n < size && a[n] != ICAL_RECURRENCE_ARRAY_MAX)
		n++;
	return n;
}

/*
 * Whether an observance's RRULE is one libical expands cheaply: yearly,
 * in one month, on one weekday (with or without an ordinal) or a week's
 * run of month days ("BYMONTHDAY=8,...,14;BYDAY=SU"), nothing finer.
 */
static bool
cheap_zone_rule(const struct icalrecurrencetype *r)
{
	return r->freq == ICAL_YEARLY_RECURRENCE && r->interval == 1 &&
	       by_count(r->by_month, ICAL_BY_MONTH_SIZE) <= 1 &&
	       by_count(r->by_day, ICAL_BY_DAY_SIZE) <= 1 &&
	       by_count(r->by_month_day, ICAL_BY_MONTHDAY_SIZE) <= 7 &&
	       by_count(r->by_year_day, ICAL_BY_YEARDAY_SIZE) == 0 &&
	       by_count(r->by_week_no, ICAL_BY_WEEKNO_SIZE) == 0 &&
	       by_count(r->by_set_pos, ICAL_BY_SETPOS_SIZE) == 0 &&
	       by_count(r->by_hour, ICAL_BY_HOUR_SIZE) == 0 &&
	       by_count(r->by_minute, ICAL_BY_MINUTE_SIZE) == 0 &&
	       by_count(r->by_second, ICAL_BY_SECOND_SIZE) == 0;
}

/* 0 Sunday ... 6 Saturday of a date. */
static int
weekday_of(int y, int m, int d)
{
	int64_t days = pim_civil_to_epoch(y, m, d, 0, 0, 0) / 86400;

	return (int)(((days + 4) % 7 + 7) % 7);
}

static int
month_length(int y, int m)
{
	static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : len[m - 1];
}

/*
 * The onset in year y of a cheap yearly zone rule whose observance starts
 * at dt (its month, day and time fill what the rule leaves open), or a
 * null time when no day of the month matches.
 */
static struct icaltimetype
onset_in(const struct icalrecurrencetype *r, struct icaltimetype dt, int y)
{
	int m = by_count(r->by_month, ICAL_BY_MONTH_SIZE)
	            ? icalrecurrencetype_month_month(r->by_month[0])
	            : dt.month;
	int nmd = by_count(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
	int wd = -1, pos = 0, len, hit = 0;
	struct icaltimetype t = dt;

	if (m < 1 || m > 12)
		return icaltime_null_time();
	len = month_length(y, m);
	if (by_count(r->by_day, ICAL_BY_DAY_SIZE)) {
		wd = (int)icalrecurrencetype_day_day_of_week(r->by_day[0]) - 1;
		pos = icalrecurrencetype_day_position(r->by_day[0]);
	}
	t.year = y;
	t.month = m;
	t.zone = NULL;
	if (wd < 0 && nmd == 0) {
		t.day = dt.day <= len ? dt.day : len;
		return t;
	}
	for (int i = 0; i < len; i++) {
		int d = pos < 0 ? len - i : i + 1;
		bool ok = wd < 0 || weekday_of(y, m, d) == wd;

		for (int k = 0; ok && nmd && k < nmd; k++) {
			int v = r->by_month_day[k];
			if (v == d || (v < 0 && len + 1 + v == d))
				break;
			if (k == nmd - 1)
				ok = false;
		}
		if (ok && ++hit >= (pos > 0 ? pos : pos < 0 ? -pos : 1)) {
			t.day = d;
			return t;
		}
	}
	return icaltime_null_time();
}

/*
 * Keep a VTIMEZONE within what libical expands cheaply: at most
 * PIM_ICAL_MAX_OBSERVANCES observances, one RRULE each, only cheap ones, at
 * most PIM_ICAL_MAX_OPEN_RULES without an end. What goes is a zone rule
 * nobody writes; the zone then answers with the observances left.
 *
 * libical expands a rule from its observance's DTSTART, one ICU calendar
 * step a year: Outlook and Exchange start theirs in 1601, which costs 15 ms
 * each time an object is read. An open-ended rule starting before 1970 is
 * started at its first onset in 1970 instead (the offsets of every later
 * time are the same).
 */
static void
defuse_vtimezone(icalcomponent *vtz)
{
	icalcomponent *drop[PIM_ICAL_MAX_COMPONENTS];
	size_t ndrop = 0, obs = 0, open = 0;

	for (icalcomponent *o = icalcomponent_get_first_component(vtz, ICAL_ANY_COMPONENT); o;
	     o = icalcomponent_get_next_component(vtz, ICAL_ANY_COMPONENT)) {
		icalcomponent_kind k = icalcomponent_isa(o);
		icalproperty **rules = NULL, *dtp;
		size_t nrules = 0, cap = 0;
		struct icalrecurrencetype r;
		bool keep;

		if (k != ICAL_XSTANDARD_COMPONENT && k != ICAL_XDAYLIGHT_COMPONENT)
			continue;
		if (++obs > PIM_ICAL_MAX_OBSERVANCES) {
			if (ndrop < PIM_ICAL_MAX_COMPONENTS)
				drop[ndrop++] = o;
			continue;
		}
		for (icalproperty *p = icalcomponent_get_first_property(o, ICAL_RRULE_PROPERTY); p;
		     p = icalcomponent_get_next_property(o, ICAL_RRULE_PROPERTY)) {
			if (nrules == cap)
				rules = xrealloc(rules, (cap = cap ? cap * 2 : 4) * sizeof(*rules));
			rules[nrules++] = p;
		}
		/* One rule an observance: the first, when cheap. */
		for (size_t i = 1; i < nrules; i++) {
			icalcomponent_remove_property(o, rules[i]);
			icalproperty_free(rules[i]);
		}
		if (nrules == 0) {
			free(rules);
			continue;
		}
		r = icalproperty_get_rrule(rules[0]);
		keep = cheap_zone_rule(&r);
		if (keep && icaltime_is_null_time(r.until) && (r.count == 0 || r.count > 400))
			keep = ++open <= PIM_ICAL_MAX_OPEN_RULES;
		if (!keep) {
			icalcomponent_remove_property(o, rules[0]);
			icalproperty_free(rules[0]);
		} else if (icaltime_is_null_time(r.until) && r.count == 0 &&
		           (dtp = icalcomponent_get_first_property(o, ICAL_DTSTART_PROPERTY)) !=
		               NULL) {
			struct icaltimetype dt = icalproperty_get_dtstart(dtp), on;

			if (!icaltime_is_null_time(dt) && !dt.is_date && dt.year < 1970 &&
			    !icaltime_is_null_time(on = onset_in(&r, dt, 1970)))
				icalproperty_set_dtstart(dtp, on);
		}
		free(rules);
	}
	for (size_t i = 0; i < ndrop; i++) {
		icalcomponent_remove_component(vtz, drop[i]);
		icalcomponent_free(drop[i]);
	}
}

/*
 * Count what c holds (refusing past the caps), take out libical's
 * X-LIC-ERROR notes and RDATEs past the cap, defuse VTIMEZONEs.
 */
static int
check(icalcomponent *c, int depth, struct counts *n, const char **errstr)
{
	icalproperty *p;

	if (depth > PIM_ICAL_MAX_DEPTH) {
		*errstr = "components nested too deep";
		return -1;
	}
	if (++n->components > PIM_ICAL_MAX_COMPONENTS) {
		*errstr = "too many components";
		return -1;
	}
	while ((p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY)) != NULL) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
	for (p = icalcomponent_get_first_property(c, ICAL_ANY_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ANY_PROPERTY)) {
		if (++n->properties > PIM_ICAL_MAX_PROPERTIES) {
			*errstr = "too many properties";
			return -1;
		}
	}
	for (;;) {
		icalproperty *extra = NULL;
		size_t k = 0;

		for (p = icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY); p;
		     p = icalcomponent_get_next_property(c, ICAL_RDATE_PROPERTY))
			if (n->rdates + ++k > PIM_ICAL_MAX_RDATES) {
				extra = p;
				break;
			}
		if (extra == NULL) {
			n->rdates += k;
			break;
		}
		icalcomponent_remove_property(c, extra);
		icalproperty_free(extra);
	}
	if (icalcomponent_isa(c) == ICAL_VTIMEZONE_COMPONENT)
		defuse_vtimezone(c);
	for (icalcomponent *k = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT); k;
	     k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
		if (check(k, depth + 1, n, errstr) < 0)
			return -1;
	return 0;
}

/*
 * One VTIMEZONE per TZID, each with a TZID and an observance: libical keeps
 * its zones sorted by TZID and finds one of two namesakes depending on
 * their order, so that a copy of the object could read its times in the
 * other one; the first of the object's namesakes is kept.
 */
static void
dedupe_vtimezones(icalcomponent *vcal)
{
	icalcomponent *drop[PIM_ICAL_MAX_COMPONENTS];
	const char *seen[PIM_ICAL_MAX_COMPONENTS];
	size_t ndrop = 0, nseen = 0;

	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_VTIMEZONE_COMPONENT);
	     c; c = icalcomponent_get_next_component(vcal, ICAL_VTIMEZONE_COMPONENT)) {
		const char *id = pim_text(c, ICAL_TZID_PROPERTY);
		bool dup =
		    id == NULL || *id == '\0' ||
		    (icalcomponent_get_first_component(c, ICAL_XSTANDARD_COMPONENT) == NULL &&
		     icalcomponent_get_first_component(c, ICAL_XDAYLIGHT_COMPONENT) == NULL);

		for (size_t i = 0; i < nseen && !dup; i++)
			dup = strcmp(seen[i], id) == 0;
		if (dup)
			drop[ndrop++] = c;
		else
			seen[nseen++] = id;
	}
	for (size_t i = 0; i < ndrop; i++) {
		icalcomponent_remove_component(vcal, drop[i]);
		icalcomponent_free(drop[i]);
	}
}

icalcomponent *
pim_ical_parse(const char *data, size_t len, const char **errstr)
{
	struct counts n = {0};
	size_t lines = 0;
	icalcomponent *c;
	char *s;

	pim_ical_init();
	if (len > PIM_ICAL_MAX_BYTES) {
		*errstr = "calendar object too large";
		return NULL;
	}
	if (memchr(data, '\0', len) != NULL) {
		*errstr = "NUL byte in calendar object";
		return NULL;
	}
	/* Logical lines (a folded continuation starts with white space) bound what libical builds.
	 */
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && i + 1 < len && data[i + 1] != ' ' && data[i + 1] != '\t')
			lines++;
	if (lines > PIM_ICAL_MAX_PROPERTIES + 2 * PIM_ICAL_MAX_COMPONENTS) {
		*errstr = "too many lines";
		return NULL;
	}
	s = xmemdup0(data, len);
	c = icalparser_parse_string(s);
	free(s);
	if (c == NULL) {
		*errstr = "not iCalendar";
		return NULL;
	}
	if (icalcomponent_isa(c) != ICAL_VCALENDAR_COMPONENT) {
		icalcomponent_free(c);
		*errstr = "not one VCALENDAR";
		return NULL;
	}
	if (check(c, 1, &n, errstr) < 0) {
		icalcomponent_free(c);
		return NULL;
	}
	dedupe_vtimezones(c);
	return c;
}

char *
pim_ical_string(icalcomponent *vcal)
{
	char *s = icalcomponent_as_ical_string_r(vcal);
	char *r = xstrdup(s ? s : "");

	icalmemory_free_buffer(s);
	return r;
}

/* ---- Zones ------------------------------------------------------------ */

/* A name libical may turn into a path under its zone directory: "Region/City" shapes only. */
static bool
olson_shaped(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > TZID_NAME_MAX || s[0] == '/' || s[n - 1] == '/' || strstr(s, "..") ||
	    strstr(s, "//"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("/_+-", s[i]) == NULL)
			return false;
	return true;
}

/*
 * VTIMEZONEs interned by their text. Every object of a CalDAV calendar
 * carries its own copy of the same few zones, and libical expands a zone's
 * observances from its first DTSTART (1970 or 1601, as clients write them)
 * up to the year asked, afresh for each object's icaltimezone: 0.9 ms of a
 * 1 ms conversion (bench/bench_event). A zone interned here is expanded once
 * per process, and lives as long as the process, as libical's built-in
 * zones do (libical guards a zone's expansion with its own lock, so the
 * workers share them as they share the built-in ones; tz.c caches both
 * alike). The key is the exact text of the VTIMEZONE as parsed and
 * sanitised; a table of ZONES_MAX, then the zones of later objects are used
 * from their objects as before: a peer that sends many distinct zones costs
 * time, not memory.
 */
#define ZONES_MAX     256
#define ZONE_TEXT_MAX 16384

struct zone_slot {
	uint64_t hash;
	char *text; /* NULL: free */
	size_t len;
	icaltimezone *zone;
};

static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zone_slot zones[2 * ZONES_MAX]; /* open addressing, at most half full */
static icaltimezone *zone_list[ZONES_MAX];
static size_t zones_n;
static bool zones_off;
static uint8_t zones_key[SIPHASH_KEY_LEN];
static bool zones_keyed;

static uint64_t
zone_hash(const char *text, size_t len)
{
	struct siphash h;
	uint8_t out[SIPHASH_OUT_LEN];
	uint64_t v;

	siphash_init(&h, zones_key);
	siphash_update(&h, text, len);
	siphash_final(&h, out);
	memcpy(&v, out, sizeof(v));
	return v;
}

/* The interned zone of vtz's text (interned now if there is room), or NULL. */
static icaltimezone *
zone_intern(icalcomponent *vtz)
{
	char *text;
	size_t len, i;
	uint64_t h;
	icaltimezone *z = NULL;

	if (vtz == NULL || (text = icalcomponent_as_ical_string_r(vtz)) == NULL)
		return NULL;
	len = strlen(text);
	pthread_mutex_lock(&zones_lock);
	if (zones_off || len > ZONE_TEXT_MAX)
		goto out;
	if (!zones_keyed) {
		if (getrandom(zones_key, sizeof(zones_key), 0) != (ssize_t)sizeof(zones_key))
			memset(zones_key, 0x5a,
			       sizeof(zones_key)); /* only probe lengths depend on it */
		zones_keyed = true;
	}
	h = zone_hash(text, len);
	for (i = h % (2 * ZONES_MAX); zones[i].text != NULL; i = (i + 1) % (2 * ZONES_MAX)) {
		if (zones[i].hash == h && zones[i].len == len &&
		    memcmp(zones[i].text, text, len) == 0) {
			z = zones[i].zone;
			goto out;
		}
	}
	if (zones_n == ZONES_MAX)
		goto out;
	z = icaltimezone_new();
	if (!icaltimezone_set_component(z, icalcomponent_new_clone(vtz))) {
		icaltimezone_free(z, 1);
		z = NULL;
		goto out;
	}
	zones[i] = (struct zone_slot){h, text, len, z};
	zone_list[zones_n++] = z;
	text = NULL; /* the table's */
out:
	pthread_mutex_unlock(&zones_lock);
	free(text);
	return z;
}

bool
pim_ical_zone_interned(const icaltimezone *zone)
{
	bool found = false;

	pthread_mutex_lock(&zones_lock);
	for (size_t i = 0; i < zones_n && !found; i++)
		found = zone_list[i] == zone;
	pthread_mutex_unlock(&zones_lock);
	return found;
}

void
pim_ical_zone_interning(bool on)
{
	pthread_mutex_lock(&zones_lock);
	zones_off = !on;
	pthread_mutex_unlock(&zones_lock);
}

icaltimezone *
pim_ical_zone(icalcomponent *vcal, const char *tzid)
{
	icaltimezone *z, *interned;

	if (tzid == NULL || *tzid == '\0')
		return NULL;
	if (vcal != NULL && (z = icalcomponent_get_timezone(vcal, tzid)) != NULL) {
		interned = zone_intern(icaltimezone_get_component(z));
		return interned != NULL ? interned : z;
	}
	if (strcasecmp(tzid, "UTC") == 0 || strcasecmp(tzid, "GMT") == 0 ||
	    strcasecmp(tzid, "Etc/UTC") == 0 || strcasecmp(tzid, "Z") == 0)
		return icaltimezone_get_utc_timezone();
	/* The name itself, then each tail after a '/': "/mozilla.org/20070129_1/Europe/Berlin". */
	for (const char *p = tzid; p != NULL; p = strchr(p + 1, '/')) {
		const char *name = *p == '/' ? p + 1 : p;

		if (olson_shaped(name) && (z = icaltimezone_get_builtin_timezone(name)) != NULL)
			return z;
	}
	return NULL;
}

const char *
pim_ical_zone_name(icaltimezone *zone)
{
	const char *tzid;

	if (zone == NULL || zone == icaltimezone_get_utc_timezone())
		return "UTC";
	tzid = icaltimezone_get_tzid(zone);
	if (tzid == NULL)
		return "UTC";
	if (strncmp(tzid, BUILTIN_PREFIX, strlen(BUILTIN_PREFIX)) == 0) {
		tzid += strlen(BUILTIN_PREFIX);
		if (strncmp(tzid, "Tzfile/", 7) == 0)
			tzid += 7;
	}
	return tzid;
}

const char *
pim_ical_ensure_vtimezone(icalcomponent *vcal, icaltimezone *zone, int64_t from)
{
	const char *name = pim_ical_zone_name(zone);
	const char *tzid = zone ? icaltimezone_get_tzid(zone) : NULL;
	icalcomponent *src, *vtz, *moved[PIM_ICAL_MAX_COMPONENTS];
	size_t nmoved = 0;

	if (zone == NULL || zone == icaltimezone_get_utc_timezone())
		return NULL;
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_VTIMEZONE_COMPONENT);
	     c; c = icalcomponent_get_next_component(vcal, ICAL_VTIMEZONE_COMPONENT)) {
		const char *have = pim_text(c, ICAL_TZID_PROPERTY);

		if (have != NULL && strcmp(have, name) == 0)
			return have;
	}
	src = icaltimezone_get_component(zone);
	if (src == NULL)
		return NULL;
	vtz = icalcomponent_new_clone(src);
	pim_set_text(vtz, ICAL_TZID_PROPERTY, name);
	if (tzid != NULL && strncmp(tzid, BUILTIN_PREFIX, strlen(BUILTIN_PREFIX)) == 0) {
		/* A built-in zone's history since the 1800s: from the year before the object on. */
		struct icaltimetype y = pim_epoch_to_civil(from, false);

		y.year -= 1;
		y.month = 1;
		y.day = 1;
		y.hour = y.minute = y.second = 0;
		y.zone = icaltimezone_get_utc_timezone();
		if (y.year > 1601)
			icaltimezone_truncate_vtimezone(vtz, y, icaltime_null_time(), 0);
	}
	/* VTIMEZONEs first, as clients write them: the other components go after it. */
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_ANY_COMPONENT);
	     c && nmoved < PIM_ICAL_MAX_COMPONENTS;
	     c = icalcomponent_get_next_component(vcal, ICAL_ANY_COMPONENT))
		if (icalcomponent_isa(c) != ICAL_VTIMEZONE_COMPONENT)
			moved[nmoved++] = c;
	for (size_t i = 0; i < nmoved; i++)
		icalcomponent_remove_component(vcal, moved[i]);
	icalcomponent_add_component(vcal, vtz);
	for (size_t i = 0; i < nmoved; i++)
		icalcomponent_add_component(vcal, moved[i]);
	return pim_text(vtz, ICAL_TZID_PROPERTY);
}

/* ---- Time ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

int64_t
pim_civil_to_epoch(int year, int month, int day, int hour, int minute, int second)
{
	return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

struct icaltimetype
pim_epoch_to_civil(int64_t t, bool date)
{
	struct icaltimetype r = icaltime_null_time();
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t secs = t - days * 86400;
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);

	r.year = (int)(yoe + era * 400 + (m <= 2));
	r.month = m;
	r.day = d;
	r.is_date = date;
	if (!date) {
		r.hour = (int)(secs / 3600);
		r.minute = (int)(secs / 60 % 60);
		r.second = (int)(secs % 60);
	}
	return r;
}

/*
 * libical answers an offset by expanding the zone's rules up to the year
 * asked, and tz.c matches a blob against every zone's rules of the year:
 * cheap for this century, minutes for 9999 (a date EAS allows). Past
 * ZONE_YEAR_MAX both are asked of an equivalent year instead: one before it
 * with the same leap day and the same weekday on 1 January, whose calendar
 * (and so every "last Sunday of March" rule) is the same; zones change no
 * rules that far ahead.
 */
#define ZONE_YEAR_MIN 1970
#define ZONE_YEAR_MAX 2099

static bool
leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
equivalent_year(int y)
{
	int64_t d = days_from_civil(y, 1, 1);
	int dow = (int)(((d % 7) + 7) % 7);

	for (int c = ZONE_YEAR_MAX; c > ZONE_YEAR_MAX - 56; c--) {
		int64_t e = days_from_civil(c, 1, 1);
		if (leap_year(c) == leap_year(y) && (int)(((e % 7) + 7) % 7) == dow)
			return c;
	}
	return ZONE_YEAR_MAX;
}

/* The instant tz.c is asked about for at: at, or its equivalent within this century. */
static int64_t
zone_instant(int64_t at)
{
	struct icaltimetype c = pim_epoch_to_civil(at, false);

	if (c.year > ZONE_YEAR_MAX)
		return at - (days_from_civil(c.year, 1, 1) -
		             days_from_civil(equivalent_year(c.year), 1, 1)) *
		                86400;
	if (c.year < ZONE_YEAR_MIN)
		return pim_civil_to_epoch(ZONE_YEAR_MIN, c.month,
		                          c.month == 2 && c.day == 29 ? 28 : c.day, c.hour,
		                          c.minute, c.second);
	return at;
}

icaltimezone *
pim_zone_of_blob(const struct pim_eas_tz *tz, int64_t at, const char *hint, bool *owned)
{
	return pim_tz_to_ical(tz, zone_instant(at), hint, owned);
}

int64_t
pim_local_to_utc(struct icaltimetype local, icaltimezone *zone)
{
	int64_t l =
	    pim_civil_to_epoch(local.year, local.month, local.day, local.is_date ? 0 : local.hour,
	                       local.is_date ? 0 : local.minute, local.is_date ? 0 : local.second);
	struct icaltimetype tt = local;
	int dst = 0;

	if (zone == NULL || zone == icaltimezone_get_utc_timezone())
		return l;
	tt.zone = NULL;
	tt.is_date = 0;
	if (local.is_date)
		tt.hour = tt.minute = tt.second = 0;
	if (tt.year > ZONE_YEAR_MAX)
		tt.year = equivalent_year(tt.year);
	return l - icaltimezone_get_utc_offset(zone, &tt, &dst);
}

struct icaltimetype
pim_utc_to_local(int64_t utc, icaltimezone *zone)
{
	struct icaltimetype u = pim_epoch_to_civil(utc, false);
	int dst = 0;

	if (zone == NULL || zone == icaltimezone_get_utc_timezone())
		return u;
	if (u.year > ZONE_YEAR_MAX)
		u = pim_epoch_to_civil(zone_instant(utc), false);
	return pim_epoch_to_civil(utc + icaltimezone_get_utc_offset_of_utc_time(zone, &u, &dst),
	                          false);
}

static bool
civil_valid(struct icaltimetype t)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > mdays[t.month - 1])
		return false;
	if (t.month == 2 && t.day == 29 &&
	    !((t.year % 4 == 0 && t.year % 100 != 0) || t.year % 400 == 0))
		return false;
	return t.is_date || (t.hour >= 0 && t.hour < 24 && t.minute >= 0 && t.minute < 60 &&
	                     t.second >= 0 && t.second <= 60);
}

int
pim_time_from(icalcomponent *vcal, struct icaltimetype tt, const char *tzid, icaltimezone *deflt,
              struct pim_time *out)
{
	memset(out, 0, sizeof(*out));
	if (icaltime_is_null_time(tt) || !civil_valid(tt))
		return -1;
	if (tt.second == 60)
		tt.second = 59;
	out->date = tt.is_date;
	out->utc_form = !tt.is_date && icaltime_is_utc(tt);
	out->local = tt;
	out->local.zone = NULL;
	if (out->date) {
		out->utc = pim_local_to_utc(out->local, deflt);
		return 0;
	}
	if (out->utc_form) {
		out->utc = pim_local_to_utc(out->local, NULL);
		return 0;
	}
	out->tzid = tzid;
	out->zone = tzid ? pim_ical_zone(vcal, tzid) : NULL;
	if (out->zone == icaltimezone_get_utc_timezone()) {
		out->zone = NULL;
		out->utc = pim_local_to_utc(out->local, NULL);
		return 0;
	}
	out->floating = out->zone == NULL;
	out->utc = pim_local_to_utc(out->local, out->zone ? out->zone : deflt);
	return 0;
}

int
pim_time_read(icalcomponent *vcal, icalproperty *p, icaltimezone *deflt, struct pim_time *out)
{
	icalvalue *v = p ? icalproperty_get_value(p) : NULL;
	icalparameter *tz = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
	struct icaltimetype tt;

	if (v == NULL)
		return -1;
	switch (icalvalue_isa(v)) {
	case ICAL_DATE_VALUE:
		tt = icalvalue_get_date(v);
		tt.is_date = 1;
		break;
	case ICAL_DATETIME_VALUE:
		tt = icalvalue_get_datetime(v);
		break;
	case ICAL_DATETIMEPERIOD_VALUE: {
		struct icaldatetimeperiodtype dp = icalvalue_get_datetimeperiod(v);
		tt = icaltime_is_null_time(dp.time) ? dp.period.start : dp.time;
		break;
	}
	default:
		return -1;
	}
	return pim_time_from(vcal, tt, tz ? icalparameter_get_tzid(tz) : NULL, deflt, out);
}

static icalproperty *
time_prop(icalproperty_kind kind, struct icaltimetype local, const char *tzid, bool utc)
{
	icalproperty *p = icalproperty_new(kind);

	local.zone = !local.is_date && utc ? icaltimezone_get_utc_timezone() : NULL;
	icalproperty_set_value(p, local.is_date ? icalvalue_new_date(local)
	                                        : icalvalue_new_datetime(local));
	if (tzid != NULL && !local.is_date && !utc)
		icalproperty_add_parameter(p, icalparameter_new_tzid(tzid));
	return p;
}

void
pim_set_time(icalcomponent *c, icalproperty_kind kind, struct icaltimetype local, const char *tzid,
             bool utc)
{
	/* tzid may be a parameter of the property about to go. */
	icalproperty *p = time_prop(kind, local, tzid, utc);

	pim_remove_all(c, kind);
	icalcomponent_add_property(c, p);
}

/* ---- EAS zones -------------------------------------------------------- */

void
pim_eas_tz_of(icaltimezone *zone, int64_t at, struct pim_eas_tz *out)
{
	if (zone == icaltimezone_get_utc_timezone())
		zone = NULL;
	at = zone_instant(at);
	if (pim_tz_from_ical(zone, at, out) < 0) {
		memset(out, 0, sizeof(*out));
		(void)pim_tz_from_ical(NULL, at, out);
	}
}

static bool
same_rule(const struct pim_systemtime *a, const struct pim_systemtime *b)
{
	return a->month == b->month && a->day_of_week == b->day_of_week && a->day == b->day &&
	       a->hour == b->hour && a->minute == b->minute;
}

bool
pim_eas_tz_same(const struct pim_eas_tz *a, const struct pim_eas_tz *b)
{
	bool a_dst = a->standard_date.month != 0 && a->daylight_date.month != 0;
	bool b_dst = b->standard_date.month != 0 && b->daylight_date.month != 0;

	if (a->bias + a->standard_bias != b->bias + b->standard_bias || a_dst != b_dst)
		return false;
	if (!a_dst)
		return true;
	return a->bias + a->daylight_bias == b->bias + b->daylight_bias &&
	       same_rule(&a->standard_date, &b->standard_date) &&
	       same_rule(&a->daylight_date, &b->daylight_date);
}

int64_t
pim_eas_local_to_utc(const struct pim_eas_tz *tz, int64_t local)
{
	int64_t guess = local + (int64_t)tz->bias * 60;
	int64_t off = pim_tz_offset_at(tz, guess);
	int64_t utc = local - off;
	int64_t off2 = pim_tz_offset_at(tz, utc);

	return off2 == off ? utc : local - off2;
}

void
pim_eas_tz_base64(const struct pim_eas_tz *tz, char buf[B64_TZ_LEN + 1])
{
	uint8_t blob[PIM_TZ_BLOB_LEN];

	pim_tz_encode(tz, blob);
	b64_encode(blob, sizeof(blob), buf);
}

int
pim_eas_tz_read(const char *b64, struct pim_eas_tz *out)
{
	unsigned char blob[B64_DECODED_MAX(B64_TZ_LEN)];
	size_t len = b64 ? strlen(b64) : 0, n, pos;
	const char *err;

	if (len == 0 || len > B64_TZ_LEN)
		return -1;
	if (b64_decode(b64, len, blob, &n, &pos, &err) < 0)
		return -1;
	return pim_tz_decode(blob, n, out);
}

/* ---- WBXML helpers ---------------------------------------------------- */

const struct wbxml_node *
pim_kid(const struct wbxml_node *n, unsigned page, unsigned token)
{
	for (const struct wbxml_node *c = n ? n->first_child : NULL; c; c = c->next)
		if (c->page == page && c->token == token)
			return c;
	return NULL;
}

const char *
pim_kid_text(const struct wbxml_node *n, unsigned page, unsigned token)
{
	const struct wbxml_node *k = pim_kid(n, page, token);

	return k ? wbxml_text(k) : NULL;
}

bool
pim_kid_int(const struct wbxml_node *n, unsigned page, unsigned token, long min, long max, long *v)
{
	const char *s = pim_kid_text(n, page, token);
	long long x;
	const char *err;

	if (s == NULL)
		return false;
	while (*s == ' ')
		s++;
	if (parse_int(s, min, max, &x, &err) < 0)
		return false;
	*v = (long)x;
	return true;
}

bool
pim_kid_time(const struct wbxml_node *n, unsigned page, unsigned token, int64_t *t)
{
	const char *s = pim_kid_text(n, page, token);

	return s != NULL && pim_time_parse(s, t) == 0;
}

void
pim_add_int(struct wbxml_node *parent, unsigned page, unsigned token, long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%ld", v);
	wbxml_add_text(parent, page, token, buf);
}

/* Bytes of the UTF-8 sequence at s (n bytes left), or 0 when it is not a valid one. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/*
 * s as valid UTF-8: a byte that starts no valid sequence becomes U+FFFD,
 * control characters other than tab and line feed spaces (CR LF and a lone
 * CR become LF when lf is set).
 */
static char *
clean_utf8(const char *s, bool lf)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	struct sbuf b = {0};

	while (n > 0) {
		size_t k = utf8_seq(p, n);

		if (k == 0) {
			sbuf_addn(&b, "\xEF\xBF\xBD", 3);
			k = 1;
		} else if (k == 1 && *p == '\r' && lf) {
			if (n < 2 || p[1] != '\n')
				sbuf_addn(&b, "\n", 1);
		} else if (k == 1 && (*p < 0x20 || *p == 0x7F) && *p != '\t' && *p != '\n') {
			sbuf_addn(&b, " ", 1);
		} else {
			sbuf_addn(&b, (const char *)p, k);
		}
		p += k;
		n -= k;
	}
	return sbuf_take(&b);
}

void
pim_add_text(struct wbxml_node *parent, unsigned page, unsigned token, const char *text)
{
	char *t;

	if (text == NULL)
		return;
	t = clean_utf8(text, false);
	wbxml_add_text(parent, page, token, t);
	free(t);
}

char *
pim_clean_text(const char *s)
{
	return clean_utf8(s ? s : "", true);
}

void
pim_add_compact(struct wbxml_node *parent, unsigned page, unsigned token, int64_t t)
{
	char buf[PIM_TIME_COMPACT_LEN + 1];

	wbxml_add_text(parent, page, token, pim_time_compact(t, buf));
}

void
pim_add_long(struct wbxml_node *parent, unsigned page, unsigned token, int64_t t)
{
	char buf[PIM_TIME_LONG_LEN + 1];

	wbxml_add_text(parent, page, token, pim_time_long(t, buf));
}

bool
pim_absent_clears(const struct pim_apply_opts *o, unsigned token)
{
	if (o->version >= 160)
		return false;
	if (!o->supported_given)
		return true;
	return token < 64 && (o->supported >> token & 1) != 0;
}

uint64_t
pim_supported_mask(const struct wbxml_node *supported, unsigned page)
{
	uint64_t m = 0;

	for (const struct wbxml_node *c = supported ? supported->first_child : NULL; c; c = c->next)
		if (c->page == page && c->token < 64)
			m |= (uint64_t)1 << c->token;
	return m;
}

/* ---- Properties ------------------------------------------------------- */

icalcomponent *
pim_master(icalcomponent *vcal, icalcomponent_kind kind)
{
	icalcomponent *first = NULL;

	for (icalcomponent *c = icalcomponent_get_first_component(vcal, kind); c;
	     c = icalcomponent_get_next_component(vcal, kind)) {
		if (first == NULL)
			first = c;
		if (icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) == NULL)
			return c;
	}
	return first;
}

const char *
pim_text(icalcomponent *c, icalproperty_kind kind)
{
	icalproperty *p = icalcomponent_get_first_property(c, kind);
	icalvalue *v = p ? icalproperty_get_value(p) : NULL;

	if (v == NULL)
		return NULL;
	if (icalvalue_isa(v) == ICAL_TEXT_VALUE)
		return icalvalue_get_text(v);
	return icalproperty_get_value_as_string(p);
}

void
pim_remove_all(icalcomponent *c, icalproperty_kind kind)
{
	icalproperty *p;

	while ((p = icalcomponent_get_first_property(c, kind)) != NULL) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
}

void
pim_set_text(icalcomponent *c, icalproperty_kind kind, const char *value)
{
	icalproperty *p = icalcomponent_get_first_property(c, kind);
	char *clean;

	if (value == NULL || *value == '\0') {
		pim_remove_all(c, kind);
		return;
	}
	clean = pim_clean_text(value);
	if (p != NULL && icalproperty_get_value(p) != NULL &&
	    icalvalue_isa(icalproperty_get_value(p)) == ICAL_TEXT_VALUE) {
		/* The property stays, with its parameters (LANGUAGE, ALTREP). */
		icalproperty_set_value(p, icalvalue_new_text(clean));
	} else {
		pim_remove_all(c, kind);
		p = icalproperty_new(kind);
		icalproperty_set_value(p, icalvalue_new_text(clean));
		icalcomponent_add_property(c, p);
	}
	free(clean);
}

icalproperty *
pim_x_prop(icalcomponent *c, const char *name)
{
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_X_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_X_PROPERTY)) {
		const char *n = icalproperty_get_x_name(p);

		if (n != NULL && strcasecmp(n, name) == 0)
			return p;
	}
	return NULL;
}

const char *
pim_x_text(icalcomponent *c, const char *name)
{
	icalproperty *p = pim_x_prop(c, name);

	return p ? icalproperty_get_value_as_string(p) : NULL;
}

void
pim_set_x_text(icalcomponent *c, const char *name, const char *value)
{
	icalproperty *p;

	while ((p = pim_x_prop(c, name)) != NULL) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
	if (value == NULL)
		return;
	p = icalproperty_new_x(value);
	icalproperty_set_x_name(p, name);
	icalcomponent_add_property(c, p);
}

int
pim_sensitivity(icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_CLASS_PROPERTY);
	const char *v;

	if (p == NULL)
		return 0;
	switch (icalproperty_get_class(p)) {
	case ICAL_CLASS_PUBLIC:
		return 0;
	case ICAL_CLASS_CONFIDENTIAL:
		return 3;
	case ICAL_CLASS_PRIVATE:
		return 2;
	default:
		/* RFC 5545 3.8.1.3: an unknown class is private; X-PERSONAL is EAS's own. */
		v = icalproperty_get_value_as_string(p);
		return v && strcasecmp(v, "X-PERSONAL") == 0 ? 1 : 2;
	}
}

void
pim_set_sensitivity(icalcomponent *c, int s)
{
	bool had = icalcomponent_get_first_property(c, ICAL_CLASS_PROPERTY) != NULL;

	if (pim_sensitivity(c) == s && (had || s == 0))
		return;
	pim_remove_all(c, ICAL_CLASS_PROPERTY);
	switch (s) {
	case 0:
		if (had)
			icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_PUBLIC));
		break;
	case 1:
		icalcomponent_add_property(c, icalproperty_new_from_string("CLASS:X-PERSONAL"));
		break;
	case 2:
		icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_PRIVATE));
		break;
	default:
		icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_CONFIDENTIAL));
		break;
	}
}

#define MAX_CATEGORIES 300

void
pim_add_categories(struct wbxml_node *parent, unsigned page, unsigned container, unsigned item,
                   icalcomponent *c)
{
	struct wbxml_node *cats = NULL;
	int n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_CATEGORIES_PROPERTY);
	     p && n < MAX_CATEGORIES;
	     p = icalcomponent_get_next_property(c, ICAL_CATEGORIES_PROPERTY)) {
		const char *v = icalproperty_get_categories(p);

		if (v == NULL || *v == '\0')
			continue;
		if (cats == NULL)
			cats = wbxml_add(parent, page, container);
		pim_add_text(cats, page, item, v);
		n++;
	}
}

/* Whether c's CATEGORIES are the container's items, in order. */
static bool
categories_are(icalcomponent *c, const struct wbxml_node *cats, unsigned page, unsigned item)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_CATEGORIES_PROPERTY);

	for (const struct wbxml_node *k = cats ? cats->first_child : NULL; k; k = k->next) {
		const char *t = k->page == page && k->token == item ? wbxml_text(k) : NULL;

		if (t == NULL || *t == '\0')
			continue;
		if (p == NULL || !str_eq_null(icalproperty_get_categories(p), t))
			return false;
		p = icalcomponent_get_next_property(c, ICAL_CATEGORIES_PROPERTY);
	}
	return p == NULL;
}

void
pim_set_categories(icalcomponent *c, const struct wbxml_node *cats, unsigned page, unsigned item)
{
	int n = 0;

	if (categories_are(c, cats, page, item))
		return;
	pim_remove_all(c, ICAL_CATEGORIES_PROPERTY);
	for (const struct wbxml_node *k = cats ? cats->first_child : NULL; k && n < MAX_CATEGORIES;
	     k = k->next) {
		const char *t = k->page == page && k->token == item ? wbxml_text(k) : NULL;
		char *v;

		if (t == NULL || *t == '\0')
			continue;
		v = pim_clean_text(t);
		/* libical writes a category's comma unescaped (it would come back as two). */
		for (char *q = v; *q; q++)
			if (*q == ',' || *q == '\n')
				*q = ' ';
		icalcomponent_add_property(c, icalproperty_new_categories(v));
		free(v);
		n++;
	}
}

bool
pim_same_categories(icalcomponent *a, icalcomponent *b)
{
	icalproperty *p = icalcomponent_get_first_property(a, ICAL_CATEGORIES_PROPERTY);
	icalproperty *q = icalcomponent_get_first_property(b, ICAL_CATEGORIES_PROPERTY);

	while (p && q) {
		if (!str_eq_null(icalproperty_get_categories(p), icalproperty_get_categories(q)))
			return false;
		p = icalcomponent_get_next_property(a, ICAL_CATEGORIES_PROPERTY);
		q = icalcomponent_get_next_property(b, ICAL_CATEGORIES_PROPERTY);
	}
	return p == NULL && q == NULL;
}

/* ---- Alarms ----------------------------------------------------------- */

icalcomponent *
pim_first_alarm(icalcomponent *c)
{
	for (icalcomponent *a = icalcomponent_get_first_component(c, ICAL_VALARM_COMPONENT); a;
	     a = icalcomponent_get_next_component(c, ICAL_VALARM_COMPONENT)) {
		icalproperty *act = icalcomponent_get_first_property(a, ICAL_ACTION_PROPERTY);
		enum icalproperty_action action =
		    act ? icalproperty_get_action(act) : ICAL_ACTION_NONE;

		/* libical reads RFC 9074's ACTION:NONE (Apple's "no alarm" placeholder) as an X-
		 * value. */
		if (action == ICAL_ACTION_NONE || action == ICAL_ACTION_EMAIL ||
		    (action == ICAL_ACTION_X &&
		     strcasecmp(icalproperty_get_value_as_string(act), "NONE") == 0))
			continue;
		if (icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY) != NULL)
			return a;
	}
	return NULL;
}

bool
pim_alarm_time(icalcomponent *alarm, int64_t start, int64_t end, int64_t *at)
{
	icalproperty *p =
	    alarm ? icalcomponent_get_first_property(alarm, ICAL_TRIGGER_PROPERTY) : NULL;
	icalparameter *rel;
	struct icaltriggertype tr;

	if (p == NULL)
		return false;
	tr = icalproperty_get_trigger(p);
	if (!icaltime_is_null_time(tr.time)) {
		struct pim_time t;

		if (pim_time_from(NULL, tr.time, NULL, NULL, &t) < 0)
			return false;
		*at = t.utc;
		return true;
	}
	if (icaldurationtype_is_bad_duration(tr.duration))
		return false;
	rel = icalproperty_get_first_parameter(p, ICAL_RELATED_PARAMETER);
	*at = (rel && icalparameter_get_related(rel) == ICAL_RELATED_END ? end : start) +
	      icaldurationtype_as_int(tr.duration);
	return true;
}

void
pim_set_alarm(icalcomponent *c, bool absolute, int64_t at, int minutes_before)
{
	icalcomponent *a = pim_first_alarm(c);
	struct icaltriggertype tr;

	memset(&tr, 0, sizeof(tr));
	tr.time = icaltime_null_time();
	tr.duration = icaldurationtype_null_duration();
	if (absolute) {
		tr.time = pim_epoch_to_civil(at, false);
		tr.time.zone = icaltimezone_get_utc_timezone();
	} else {
		tr.duration = icaldurationtype_from_int(-minutes_before * 60);
		if (minutes_before == 0)
			tr.duration = icaldurationtype_from_int(0);
	}
	if (a == NULL) {
		a = icalcomponent_new(ICAL_VALARM_COMPONENT);
		icalcomponent_add_property(a, icalproperty_new_action(ICAL_ACTION_DISPLAY));
		icalcomponent_add_property(a, icalproperty_new_description("Reminder"));
		icalcomponent_add_component(c, a);
	}
	pim_remove_all(a, ICAL_TRIGGER_PROPERTY);
	icalcomponent_add_property(a, icalproperty_new_trigger(tr));
}

void
pim_remove_alarm(icalcomponent *c)
{
	icalcomponent *a = pim_first_alarm(c);

	if (a != NULL) {
		icalcomponent_remove_component(c, a);
		icalcomponent_free(a);
	}
}

/* ---- Bodies ----------------------------------------------------------- */

/* Plain text as HTML: escaped, lines broken with <br>. */
static char *
text_to_html(const char *t)
{
	struct sbuf b = {0};

	sbuf_add(&b, "<html><body>");
	for (const char *p = t; *p; p++) {
		switch (*p) {
		case '<':
			sbuf_add(&b, "&lt;");
			break;
		case '>':
			sbuf_add(&b, "&gt;");
			break;
		case '&':
			sbuf_add(&b, "&amp;");
			break;
		case '"':
			sbuf_add(&b, "&quot;");
			break;
		case '\r':
			break;
		case '\n':
			sbuf_add(&b, "<br>\n");
			break;
		default:
			sbuf_addn(&b, p, 1);
		}
	}
	sbuf_add(&b, "</body></html>");
	return sbuf_take(&b);
}

/* Whether the tag at p (after '<') is name (case aside), followed by a delimiter. */
static bool
tag_is(const char *p, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(p, name, n) == 0 &&
	       (p[n] == '>' || p[n] == ' ' || p[n] == '/' || p[n] == '\t' || p[n] == '\n');
}

/*
 * A phone's HTML body as the plain text DESCRIPTION carries: tags dropped
 * (script and style with their content), line-breaking ones as newlines,
 * the common entities decoded. The HTML itself is kept beside it
 * (X-ALT-DESC), so this only needs to read well.
 */
static char *
html_to_text(const char *h)
{
	static const struct {
		const char *name;
		const char *text;
	} ents[] = {{"amp;", "&"}, {"lt;", "<"},   {"gt;", ">"},   {"quot;", "\""},
	            {"#39;", "'"}, {"apos;", "'"}, {"nbsp;", " "}, {"#160;", "\xC2\xA0"}};
	struct sbuf b = {0};
	const char *p = h;

	while (*p) {
		if (*p == '<') {
			const char *q = p + 1;
			bool close = *q == '/';
			const char *end;

			if (close)
				q++;
			if (!close && (tag_is(q, "script") || tag_is(q, "style"))) {
				const char *stop = tag_is(q, "script") ? "</script" : "</style";
				const char *e = strcasestr(q, stop);
				p = e ? e : p + strlen(p);
				continue;
			}
			if (tag_is(q, "br") || tag_is(q, "p") || tag_is(q, "div") ||
			    tag_is(q, "li") || tag_is(q, "tr"))
				if (close || tag_is(q, "br"))
					sbuf_add(&b, "\n");
			end = strchr(p, '>');
			p = end ? end + 1 : p + strlen(p);
			continue;
		}
		if (*p == '&') {
			size_t i;
			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
				if (strncasecmp(p + 1, ents[i].name, strlen(ents[i].name)) == 0)
					break;
			if (i < sizeof(ents) / sizeof(ents[0])) {
				sbuf_add(&b, ents[i].text);
				p += 1 + strlen(ents[i].name);
				continue;
			}
		}
		if (*p == '\r') {
			p++;
			continue;
		}
		sbuf_addn(&b, p, 1);
		p++;
	}
	/* Trailing white space off. */
	char *s = sbuf_take(&b);
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	return s;
}

void
pim_add_body(struct wbxml_node *parent, const char *text, const char *html,
             const struct pim_eas_opts *o)
{
	char *made = NULL, *clean, *data;
	const char *src;
	int type = o->body_type == 2 ? 2 : 1;
	size_t full, n;
	bool truncated = false;
	struct wbxml_node *b;

	if (o->body_type == 0)
		return;
	if ((text == NULL || *text == '\0') && (html == NULL || *html == '\0'))
		return;
	if (type == 2)
		src = html && *html ? html : (made = text_to_html(text));
	else
		src = text && *text ? text : (made = html_to_text(html));
	clean = clean_utf8(src, false);
	full = n = strlen(clean);
	if (o->body_truncation > 0 && o->body_truncation < full) {
		n = o->body_truncation;
		while (n > 0 && ((unsigned char)clean[n] & 0xC0) == 0x80)
			n--;
		truncated = true;
	}
	b = wbxml_add(parent, WBXML_PAGE_AIRSYNCBASE, ASB_BODY);
	pim_add_int(b, WBXML_PAGE_AIRSYNCBASE, ASB_TYPE, type);
	pim_add_int(b, WBXML_PAGE_AIRSYNCBASE, ASB_ESTIMATEDDATASIZE, (long)full);
	if (truncated)
		pim_add_int(b, WBXML_PAGE_AIRSYNCBASE, ASB_TRUNCATED, 1);
	if (!(truncated && o->body_all_or_none)) {
		data = xstrndup(clean, n);
		wbxml_add_text(b, WBXML_PAGE_AIRSYNCBASE, ASB_DATA, data);
		free(data);
	}
	free(clean);
	free(made);
}

char *
pim_read_body(const struct wbxml_node *body, char **html)
{
	long type = 1;
	const char *data;

	*html = NULL;
	if (body == NULL)
		return NULL;
	(void)pim_kid_int(body, WBXML_PAGE_AIRSYNCBASE, ASB_TYPE, 1, 4, &type);
	data = pim_kid_text(body, WBXML_PAGE_AIRSYNCBASE, ASB_DATA);
	if (data == NULL)
		data = "";
	switch (type) {
	case 1:
		return pim_clean_text(data);
	case 2:
		*html = pim_clean_text(data);
		return html_to_text(*html);
	default:
		/* RTF and MIME: nothing abqd reads into a calendar item. */
		return NULL;
	}
}

/* ---- Odds and ends ---------------------------------------------------- */

char *
pim_new_uid(void)
{
	unsigned char r[16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t k = getrandom(r + got, sizeof(r) - got, 0);
		if (k <= 0)
			fatalx("getrandom failed");
		got += (size_t)k;
	}
	r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
	return xasprintf("%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
	                 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
	                 r[12], r[13], r[14], r[15]);
}

void
pim_touch(icalcomponent *c, int64_t now, bool bump)
{
	struct icaltimetype t = pim_epoch_to_civil(now, false);
	icalproperty *seq;

	t.zone = icaltimezone_get_utc_timezone();
	pim_remove_all(c, ICAL_DTSTAMP_PROPERTY);
	icalcomponent_add_property(c, icalproperty_new_dtstamp(t));
	if (icalcomponent_get_first_property(c, ICAL_LASTMODIFIED_PROPERTY) != NULL) {
		pim_remove_all(c, ICAL_LASTMODIFIED_PROPERTY);
		icalcomponent_add_property(c, icalproperty_new_lastmodified(t));
	}
	seq = icalcomponent_get_first_property(c, ICAL_SEQUENCE_PROPERTY);
	if (bump && seq != NULL && icalproperty_get_sequence(seq) < 1000000)
		icalproperty_set_sequence(seq, icalproperty_get_sequence(seq) + 1);
}

char *
pim_snapshot(icalcomponent *c)
{
	char *s = icalcomponent_as_ical_string_r(c);
	char *r = xstrdup(s ? s : "");

	icalmemory_free_buffer(s);
	return r;
}

void
pim_touch_if_changed(icalcomponent *c, char *before, int64_t now, bool bump)
{
	char *after = before ? pim_snapshot(c) : NULL;

	if (before == NULL || strcmp(before, after) != 0)
		pim_touch(c, now, bump);
	free(after);
	free(before);
}

/* ---- Occurrences ------------------------------------------------------ */

struct occ {
	int64_t *v;
	size_t n, cap;
};

static void
occ_add(struct occ *o, int64_t t)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	o->v[o->n++] = t;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
occ_remove(struct occ *o, int64_t t)
{
	size_t k = 0;

	for (size_t i = 0; i < o->n; i++)
		if (o->v[i] != t)
			o->v[k++] = o->v[i];
	o->n = k;
}

/* The rule's starts in [from, to) into o; false when it cannot be expanded within the steps. */
static bool
expand_rule(struct icalrecurrencetype rule, const struct pim_time *st, icaltimezone *zone,
            int64_t from, int64_t to, struct occ *o, size_t *steps)
{
	struct icaltimetype start = st->local;
	icalrecur_iterator *it;
	struct icaltimetype next;

	if (rule.freq == ICAL_NO_RECURRENCE)
		return true;
	if (rule.freq == ICAL_SECONDLY_RECURRENCE || rule.freq == ICAL_MINUTELY_RECURRENCE ||
	    rule.freq == ICAL_HOURLY_RECURRENCE)
		return false;
	if (!start.is_date)
		start.zone = st->utc_form ? icaltimezone_get_utc_timezone() : zone;
	it = icalrecur_iterator_new(rule, start);
	if (it == NULL)
		return true; /* a rule libical refuses yields no occurrence (as it does for clients)
		              */
	if (rule.count == 0 && from > st->utc + 86400 * 2) {
		struct icaltimetype skip =
		    pim_utc_to_local(from - 86400 * 2, st->utc_form ? NULL : zone);

		skip.is_date = start.is_date;
		skip.zone = start.zone;
		(void)icalrecur_iterator_set_start(it, skip);
	}
	while (!icaltime_is_null_time(next = icalrecur_iterator_next(it))) {
		int64_t u;

		if (++*steps > PIM_ICAL_MAX_STEPS) {
			icalrecur_iterator_free(it);
			return false;
		}
		next.zone = NULL;
		u = pim_local_to_utc(next, st->utc_form ? NULL : zone);
		if (u >= to)
			break;
		if (u >= from)
			occ_add(o, u);
	}
	icalrecur_iterator_free(it);
	return true;
}

int
pim_ical_last_start(icalcomponent *vcal, icalcomponent_kind kind, icaltimezone *deflt,
                    int64_t *last_r)
{
	icalcomponent *m = pim_master(vcal, kind);
	struct pim_time st;
	icaltimezone *zone;
	const char *uid;
	size_t steps = 0;
	int64_t last;
	icalproperty *p;

	if (m == NULL ||
	    pim_time_read(vcal, icalcomponent_get_first_property(m, ICAL_DTSTART_PROPERTY), deflt,
	                  &st) < 0)
		return -1;
	zone = st.zone ? st.zone : deflt;
	last = st.utc;
	for (p = icalcomponent_get_first_property(m, ICAL_RRULE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_RRULE_PROPERTY)) {
		struct icalrecurrencetype rule = icalproperty_get_rrule(p);
		struct icaltimetype start = st.local, next;
		icalrecur_iterator *it;

		if (rule.freq == ICAL_NO_RECURRENCE)
			continue;
		/* for ever, or more often than daily (never expanded): no end */
		if ((rule.count == 0 && icaltime_is_null_time(rule.until)) ||
		    rule.freq == ICAL_SECONDLY_RECURRENCE ||
		    rule.freq == ICAL_MINUTELY_RECURRENCE || rule.freq == ICAL_HOURLY_RECURRENCE)
			return 0;
		/*
		 * UNTIL: its last start is at or before it, taken as the bound
		 * without a walk (a 10-year daily series would cost ~20 ms of
		 * the loop; the bound is at most one interval late)
		 */
		if (!icaltime_is_null_time(rule.until)) {
			struct icaltimetype u = rule.until;
			bool utc = !u.is_date && icaltime_is_utc(u);
			u.zone = NULL;
			int64_t b =
			    pim_local_to_utc(u, utc ? NULL : zone) + (u.is_date ? 86400 : 0);
			if (b > last)
				last = b;
			continue;
		}
		if (!start.is_date)
			start.zone = st.utc_form ? icaltimezone_get_utc_timezone() : zone;
		if ((it = icalrecur_iterator_new(rule, start)) == NULL)
			continue; /* a rule libical refuses yields no occurrence */
		while (!icaltime_is_null_time(next = icalrecur_iterator_next(it))) {
			if (++steps > PIM_ICAL_SPAN_STEPS) {
				icalrecur_iterator_free(it);
				return 0; /* too long to walk: taken as endless */
			}
			next.zone = NULL;
			int64_t u = pim_local_to_utc(next, st.utc_form ? NULL : zone);
			if (u > last)
				last = u;
		}
		icalrecur_iterator_free(it);
	}
	for (p = icalcomponent_get_first_property(m, ICAL_RDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_RDATE_PROPERTY)) {
		struct pim_time t;

		if (pim_time_read(vcal, p, zone, &t) == 0 && t.utc > last)
			last = t.utc;
	}
	/* an override moved later than the series' last start */
	uid = pim_text(m, ICAL_UID_PROPERTY);
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, kind); c;
	     c = icalcomponent_get_next_component(vcal, kind)) {
		struct pim_time ns;

		if (c == m ||
		    icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) == NULL ||
		    !str_eq_null(pim_text(c, ICAL_UID_PROPERTY), uid) ||
		    icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED)
			continue;
		if (pim_time_read(vcal, icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY),
		                  zone, &ns) == 0 &&
		    ns.utc > last)
			last = ns.utc;
	}
	*last_r = last;
	return 1;
}

int
pim_ical_occurrences(icalcomponent *vcal, icalcomponent_kind kind, icaltimezone *deflt,
                     int64_t from, int64_t to, int64_t *out, size_t max)
{
	icalcomponent *m = pim_master(vcal, kind);
	struct occ o = {0};
	struct pim_time st;
	icaltimezone *zone;
	const char *uid;
	size_t steps = 0, k = 0;
	icalproperty *p;

	if (m == NULL)
		return -1;
	p = icalcomponent_get_first_property(m, ICAL_DTSTART_PROPERTY);
	if (p == NULL && kind == ICAL_VTODO_COMPONENT)
		p = icalcomponent_get_first_property(m, ICAL_DUE_PROPERTY);
	if (pim_time_read(vcal, p, deflt, &st) < 0)
		return -1;
	zone = st.zone ? st.zone : deflt;
	uid = pim_text(m, ICAL_UID_PROPERTY);
	if (st.utc >= from && st.utc < to)
		occ_add(&o, st.utc);
	for (p = icalcomponent_get_first_property(m, ICAL_RRULE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_RRULE_PROPERTY))
		if (!expand_rule(icalproperty_get_rrule(p), &st, zone, from, to, &o, &steps)) {
			free(o.v);
			return -1;
		}
	for (p = icalcomponent_get_first_property(m, ICAL_RDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_RDATE_PROPERTY)) {
		struct pim_time t;

		if (pim_time_read(vcal, p, zone, &t) == 0 && t.utc >= from && t.utc < to)
			occ_add(&o, t.utc);
	}
	for (p = icalcomponent_get_first_property(m, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_EXDATE_PROPERTY)) {
		struct pim_time t;

		if (pim_time_read(vcal, p, zone, &t) == 0)
			occ_remove(&o, t.utc);
	}
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, kind); c;
	     c = icalcomponent_get_next_component(vcal, kind)) {
		struct pim_time rid, ns;
		icalproperty *r = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		icalproperty *st2 = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);

		if (c == m || r == NULL || !str_eq_null(pim_text(c, ICAL_UID_PROPERTY), uid))
			continue;
		if (pim_time_read(vcal, r, zone, &rid) < 0)
			continue;
		occ_remove(&o, rid.utc);
		if (icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED)
			continue;
		if (pim_time_read(vcal, st2, zone, &ns) == 0 && ns.utc >= from && ns.utc < to)
			occ_add(&o, ns.utc);
	}
	if (o.n > 0)
		qsort(o.v, o.n, sizeof(*o.v), cmp_i64);
	for (size_t i = 0; i < o.n; i++)
		if ((i == 0 || o.v[i] != o.v[i - 1]) && k < max)
			out[k++] = o.v[i];
	free(o.v);
	return (int)k;
}
