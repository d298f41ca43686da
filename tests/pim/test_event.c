/*
 * test_event.c: calendar items between iCalendar and EAS (src/pim/event.c,
 * recur.c, ical.c).
 *
 * The objects in ical_data/ are shaped as Apple Calendar, Google, Thunderbird,
 * Outlook/Exchange, SOGo and Nextcloud write them. Each is converted for EAS
 * 12.0, 14.1, 16.0 and 16.1, encoded and decoded as WBXML, checked field by
 * field, and applied back as a phone's Change of everything it was sent (the
 * object must come back the same, byte for byte) and as an Add (the same
 * instants and the same occurrences, by libical's recurrence iterator). Then
 * phones' own Adds and Changes, shaped as iOS and Android send them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "lib/util.h"
#include "lib/b64.h"
#include "pim/eastime.h"
#include "pim/event.h"
#include "pim/ical.h"
#include "pim/ical_int.h"
#include "pim/pim.h"
#include "pim/tz.h"

#define USER   "alice@example.com"
#define NOW    1767225600 /* 2026-01-01T00:00:00Z */
#define FROM   1735689600 /* 2025-01-01 */
#define UNTIL  1956528000 /* 2032-01-01 */
#define MAXOCC 4000

static icaltimezone *berlin;

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *b;
	long n;

	snprintf(path, sizeof(path), "%s/%s", ICAL_DATA_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return b;
}

static icalcomponent *
load(const char *name)
{
	size_t len;
	char *d = slurp(name, &len);
	const char *err = NULL;
	icalcomponent *v = pim_ical_parse(d, len, &err);

	if (v == NULL)
		fail_msg("%s: %s", name, err);
	free(d);
	return v;
}

/* A document through the wire: encoded and decoded again. */
static struct wbxml_doc *
wire(struct wbxml_doc *doc)
{
	uint8_t *buf;
	size_t len;
	struct wbxml_error err;
	struct wbxml_doc *out;

	assert_int_equal(wbxml_encode(doc, &buf, &len, &err), WBXML_OK);
	assert_int_equal(wbxml_decode(buf, len, NULL, &out, &err), WBXML_OK);
	free(buf);
	return out;
}

static struct pim_eas_opts
eas_opts(int version)
{
	return (struct pim_eas_opts){
	    .version = version, .user_email = USER, .zone = berlin, .body_type = 1};
}

static struct pim_apply_opts
apply_opts(int version)
{
	return (struct pim_apply_opts){
	    .version = version, .user_email = USER, .zone = berlin, .now = NOW};
}

/* vcal as a phone receives it: the decoded ApplicationData (free the doc). */
static struct wbxml_node *
to_phone(icalcomponent *vcal, const struct pim_eas_opts *o, struct wbxml_doc **doc)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *app = wbxml_add_root(d, WBXML_PAGE_AIRSYNC, 0x1D);
	const char *err = NULL;

	if (pim_event_to_eas(vcal, o, app, &err) < 0)
		fail_msg("to EAS: %s", err);
	*doc = wire(d);
	wbxml_doc_free(&d);
	return wbxml_doc_root(*doc);
}

static icalcomponent *
apply(const struct wbxml_node *app, icalcomponent *existing, const struct pim_apply_opts *o)
{
	icalcomponent *out = NULL;
	const char *err = NULL;

	if (pim_event_from_eas(app, existing, o, &out, &err) < 0)
		fail_msg("apply: %s", err);
	return out;
}

static char *
text(icalcomponent *v)
{
	return pim_ical_string(v);
}

/* needle in the object's text (else the failure shows the text). */
static void
has(const char *s, const char *needle)
{
	if (strstr(s, needle) == NULL) {
		fprintf(stderr, "no \"%s\" in:\n%s\n", needle, s);
		fail();
	}
}

static void
hasnt(const char *s, const char *needle)
{
	if (strstr(s, needle) != NULL) {
		fprintf(stderr, "\"%s\" in:\n%s\n", needle, s);
		fail();
	}
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static int
kids(const struct wbxml_node *n, const char *qname)
{
	unsigned page, token;
	int k = 0;

	if (n == NULL)
		return 0;
	assert_int_equal(wbxml_lookup(qname, 0, &page, &token), 0);
	for (const struct wbxml_node *c = n->first_child; c; c = c->next)
		if (c->page == page && c->token == token)
			k++;
	return k;
}

static void
expect_text(const struct wbxml_node *app, const char *path, const char *want)
{
	const char *got = wbxml_find_text(app, path);

	if (want == NULL) {
		if (wbxml_find(app, path) != NULL)
			fail_msg("%s present (%s)", path, got ? got : "");
		return;
	}
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", path, got ? got : "(none)", want);
}

static void
same_occurrences(icalcomponent *a, icalcomponent *b)
{
	static int64_t x[MAXOCC], y[MAXOCC];
	int n = pim_ical_occurrences(a, ICAL_VEVENT_COMPONENT, berlin, FROM, UNTIL, x, MAXOCC);
	int m = pim_ical_occurrences(b, ICAL_VEVENT_COMPONENT, berlin, FROM, UNTIL, y, MAXOCC);

	assert_true(n > 0);
	assert_int_equal(n, m);
	for (int i = 0; i < n; i++)
		if (x[i] != y[i])
			fail_msg("occurrence %d: %lld against %lld", i, (long long)x[i],
			         (long long)y[i]);
}

static int64_t
t(const char *s)
{
	int64_t v;

	assert_int_equal(pim_time_parse(s, &v), 0);
	return v;
}

/* ---- Every client's objects, every version ------------------------------- */

struct expect {
	const char *file;
	const char *subject;
	const char *start, *end;     /* StartTime, EndTime before 16.0 */
	const char *start16, *end16; /* from 16.0 (NULL: the same) */
	const char *allday, *busy, *sensitivity, *meeting, *reminder;
	const char *rtype; /* Recurrence Type, NULL: none */
	int exceptions;    /* Exception elements */
	int deleted;       /* of which Deleted */
	bool repeats;      /* the Add comes back with every occurrence */
	const char *keep[4];
};

static const struct expect files[] = {
    {"apple_weekly.ics",
     "Team sync",
     "20260112T090000Z",
     "20260112T093000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     "15",
     "1",
     2,
     1,
     true,
     {"X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC", "X-WR-ALARMUID:91C0D7A4", "TRIGGER:-P1D"}},
    {"google_monthly_meeting.ics",
     "Partner pipeline review",
     "20260203T210000Z",
     "20260203T220000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "3",
     "10",
     "3",
     3,
     2,
     true,
     {"X-NUM-GUESTS=0", "X-GOOGLE-CONFERENCE:", "X-WR-CALNAME:work"}},
    {"thunderbird_yearly_allday.ics",
     "Grandma's birthday",
     "20260313T230000Z",
     "20260314T230000Z",
     "20260314T000000Z",
     "20260315T000000Z",
     "1",
     "0",
     "0",
     "0",
     "900",
     "5",
     2,
     1,
     true,
     {"X-MOZ-GENERATION:3", "X-MOZ-GENERATION:4"}},
    {"thunderbird_multiday.ics",
     "Conference in Lisbon",
     "20260621T220000Z",
     "20260624T220000Z",
     "20260622T000000Z",
     "20260625T000000Z",
     "1",
     "2",
     "3",
     "0",
     NULL,
     NULL,
     0,
     0,
     true,
     {"X-MOZ-GENERATION:2"}},
    {"thunderbird_floating.ics",
     "Morning run",
     "20260410T050000Z",
     "20260410T060000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     "5",
     NULL,
     0,
     0,
     true,
     {"DTSTART:20260410T070000", "X-MOZ-LASTACK"}},
    {"thunderbird_lastday.ics",
     "Month-end close",
     "20260131T140000Z",
     "20260131T150000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     "60",
     "3",
     0,
     0,
     true,
     {"TRIGGER;RELATED=END:-PT2H"}},
    {"outlook_yearly_meeting.ics",
     "Year-end planning",
     "20261127T090000Z",
     "20261127T110000Z",
     NULL,
     NULL,
     "0",
     "3",
     "2",
     "1",
     "30",
     "6",
     2,
     1,
     true,
     {"TZID:W. Europe Standard Time", "urn:uuid:5e1c8a2b", "X-MICROSOFT-CDO-OWNERAPPTID",
      "SUMMARY;LANGUAGE=en-US:"}},
    {"exchange_cdo_allday.ics",
     "Trade fair",
     "20260304T230000Z",
     "20260306T230000Z",
     "20260305T000000Z",
     "20260307T000000Z",
     "1",
     "0",
     "0",
     "0",
     NULL,
     NULL,
     0,
     0,
     true,
     {"X-MICROSOFT-CDO-TZID:4", "X-MICROSOFT-CDO-INSTTYPE:0"}},
    {"sogo_daily.ics",
     "Stand-up (Tokyo office)",
     "20260302T003000Z",
     "20260302T004500Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     "5",
     "0",
     2,
     1,
     true,
     {"X-SOGO-SEND-APPOINTMENT-NOTIFICATIONS:NO"}},
    {"sogo_weekdays.ics",
     "Support hand-over",
     "20260302T120000Z",
     "20260302T123000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     NULL,
     "1",
     1,
     1,
     true,
     {"TZID:Asia/Kolkata"}},
    {"sogo_monthly.ics",
     "Rent",
     "20260115T120000Z",
     "20260115T123000Z",
     NULL,
     NULL,
     "0",
     "0",
     "2",
     "0",
     "1440",
     "2",
     2,
     1,
     true,
     {"TRIGGER:-P1D", "SUMMARY:Rent (late this month)"}},
    {"nextcloud_biweekly.ics",
     "Choir rehearsal",
     "20260203T073000Z",
     "20260203T090000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     "60",
     "1",
     0,
     0,
     true,
     {"X-NC-GROUP-ID:2", "COLOR:crimson"}},
    {"nextcloud_twice_monthly.ics",
     "Invoice run",
     "20260115T170000Z",
     "20260115T180000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     NULL,
     NULL,
     0,
     0,
     false,
     {"RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15"}},
    {"apple_last_weekday.ics",
     "Timesheets due",
     "20260130T200000Z",
     "20260130T210000Z",
     NULL,
     NULL,
     "0",
     "2",
     "0",
     "0",
     NULL,
     "3",
     0,
     0,
     true,
     {"ACTION:NONE"}},
    {"google_utc.ics",
     "Site visit",
     "20260310T043000Z",
     "20260310T053000Z",
     NULL,
     NULL,
     "0",
     "1",
     "0",
     "0",
     NULL,
     NULL,
     0,
     0,
     true,
     {"STATUS:TENTATIVE", "LOCATION:Sandton City\\, Johannesburg"}},
};

static void
check_fields(const struct wbxml_node *app, const struct expect *e, int version)
{
	bool v16 = version >= 160;
	const struct wbxml_node *exc = wbxml_find(app, "Calendar:Exceptions");
	int deleted = 0;

	expect_text(app, "Calendar:Subject", e->subject);
	expect_text(app, "Calendar:StartTime", v16 && e->start16 ? e->start16 : e->start);
	expect_text(app, "Calendar:EndTime", v16 && e->end16 ? e->end16 : e->end);
	expect_text(app, "Calendar:AllDayEvent", e->allday);
	expect_text(app, "Calendar:BusyStatus", e->busy);
	expect_text(app, "Calendar:Sensitivity", e->sensitivity);
	expect_text(app, "Calendar:MeetingStatus", e->meeting);
	expect_text(app, "Calendar:Reminder", e->reminder);
	expect_text(app, "Calendar:Recurrence/Calendar:Type", e->rtype);
	assert_non_null(wbxml_find_text(app, "Calendar:UID"));
	/* 16.0: an all-day event goes without its zone. */
	if (v16 && strcmp(e->allday, "1") == 0)
		assert_null(wbxml_find(app, "Calendar:TimeZone"));
	else
		assert_int_equal(strlen(wbxml_find_text(app, "Calendar:TimeZone")), 232);
	assert_int_equal(kids(exc, "Calendar:Exception"), e->exceptions);
	for (const struct wbxml_node *x = exc ? exc->first_child : NULL; x; x = x->next) {
		const char *d = wbxml_find_text(x, "Calendar:Deleted");

		deleted += d && strcmp(d, "1") == 0;
		/* An occurrence is named by ExceptionStartTime, by InstanceId from 16.0. */
		assert_true((wbxml_find(x, "Calendar:ExceptionStartTime") != NULL) == !v16);
		assert_true((wbxml_find(x, "AirSyncBase:InstanceId") != NULL) == v16);
	}
	assert_int_equal(deleted, e->deleted);
}

static void
test_clients(void **state)
{
	static const int versions[] = {120, 141, 160, 161};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const struct expect *e = &files[i];
		icalcomponent *v = load(e->file);
		char *orig = text(v);

		for (size_t k = 0; k < sizeof(versions) / sizeof(versions[0]); k++) {
			struct pim_eas_opts o = eas_opts(versions[k]);
			struct pim_apply_opts a = apply_opts(versions[k]);
			struct wbxml_doc *doc;
			struct wbxml_node *app = to_phone(v, &o, &doc);
			icalcomponent *back, *added, *again;
			char *s;
			const char *err;

			check_fields(app, e, versions[k]);
			/* Everything the phone was sent, sent back: the same object. */
			back = apply(app, v, &a);
			s = text(back);
			if (strcmp(s, orig) != 0)
				fail_msg("%s %d: a Change of nothing changed the object:\n%s",
				         e->file, versions[k], s);
			again = pim_ical_parse(s, strlen(s), &err);
			assert_non_null(again);
			icalcomponent_free(again);
			for (int j = 0; j < 4 && e->keep[j]; j++)
				has(s, e->keep[j]);
			free(s);
			icalcomponent_free(back);
			/* As an Add: the same event. */
			added = apply(app, NULL, &a);
			s = text(added);
			again = pim_ical_parse(s, strlen(s), &err);
			assert_non_null(again);
			icalcomponent_free(again);
			free(s);
			if (e->repeats) {
				same_occurrences(v, added);
			} else {
				int64_t one[2];
				assert_int_equal(pim_ical_occurrences(added, ICAL_VEVENT_COMPONENT,
				                                      berlin, FROM, UNTIL, one, 2),
				                 1);
			}
			icalcomponent_free(added);
			wbxml_doc_free(&doc);
		}
		free(orig);
		icalcomponent_free(v);
	}
}

/* ---- The recurrence patterns --------------------------------------------- */

static const char *
rec(const struct wbxml_node *app, const char *tag)
{
	char path[64];

	snprintf(path, sizeof(path), "Calendar:Recurrence/Calendar:%s", tag);
	return wbxml_find_text(app, path);
}

static void
test_patterns(void **state)
{
	static const struct {
		const char *file;
		const char *type, *interval, *dow, *dom, *wom, *moy, *occ, *until;
	} cases[] = {
	    {"sogo_daily.ics", "0", "2", NULL, NULL, NULL, NULL, NULL, "20260331T003000Z"},
	    {"apple_weekly.ics", "1", "1", "10", NULL, NULL, NULL, NULL, NULL},
	    {"sogo_weekdays.ics", "1", "1", "62", NULL, NULL, NULL, NULL, NULL},
	    {"nextcloud_biweekly.ics", "1", "2", "20", NULL, NULL, NULL, NULL, "20261215T075959Z"},
	    {"sogo_monthly.ics", "2", "1", NULL, "15", NULL, NULL, NULL, "20261215T120000Z"},
	    {"google_monthly_meeting.ics", "3", "1", "4", NULL, "1", NULL, "12", NULL},
	    {"apple_last_weekday.ics", "3", "1", "62", NULL, "5", NULL, NULL, NULL},
	    {"thunderbird_lastday.ics", "3", "1", "127", NULL, "5", NULL, "6", NULL},
	    {"thunderbird_yearly_allday.ics", "5", "1", NULL, "14", NULL, "3", NULL, NULL},
	    {"outlook_yearly_meeting.ics", "6", "1", "32", NULL, "5", "11", NULL,
	     "20301129T090000Z"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		icalcomponent *v = load(cases[i].file);
		struct pim_eas_opts o = eas_opts(141);
		struct wbxml_doc *doc;
		struct wbxml_node *app = to_phone(v, &o, &doc);

		expect_text(app, "Calendar:Recurrence/Calendar:Type", cases[i].type);
		expect_text(app, "Calendar:Recurrence/Calendar:Interval", cases[i].interval);
		expect_text(app, "Calendar:Recurrence/Calendar:DayOfWeek", cases[i].dow);
		expect_text(app, "Calendar:Recurrence/Calendar:DayOfMonth", cases[i].dom);
		expect_text(app, "Calendar:Recurrence/Calendar:WeekOfMonth", cases[i].wom);
		expect_text(app, "Calendar:Recurrence/Calendar:MonthOfYear", cases[i].moy);
		expect_text(app, "Calendar:Recurrence/Calendar:Occurrences", cases[i].occ);
		expect_text(app, "Calendar:Recurrence/Calendar:Until", cases[i].until);
		wbxml_doc_free(&doc);
		icalcomponent_free(v);
	}
	/* 14.1 says which day weeks start on (Nextcloud's WKST=SU), 12.0 does not. */
	{
		icalcomponent *v = load("nextcloud_biweekly.ics");
		struct pim_eas_opts o = eas_opts(141);
		struct wbxml_doc *doc;
		struct wbxml_node *app = to_phone(v, &o, &doc);

		assert_string_equal(rec(app, "FirstDayOfWeek"), "0");
		wbxml_doc_free(&doc);
		o = eas_opts(120);
		app = to_phone(v, &o, &doc);
		assert_null(rec(app, "FirstDayOfWeek"));
		wbxml_doc_free(&doc);
		icalcomponent_free(v);
	}
}

/* ---- Building what phones send -------------------------------------------- */

static struct wbxml_node *
phone_doc(struct wbxml_doc **doc)
{
	*doc = wbxml_doc_new();
	return wbxml_add_root(*doc, WBXML_PAGE_AIRSYNC, 0x1D);
}

static struct wbxml_node *
add(struct wbxml_node *n, const char *qname, const char *value)
{
	struct wbxml_node *k = value ? wbxml_addn_text(n, qname, value) : wbxml_addn(n, qname);

	assert_non_null(k);
	return k;
}

/* The TimeZone element of zone (an Olson name) for the instant at. */
static void
add_zone(struct wbxml_node *app, const char *olson, int64_t at)
{
	struct pim_eas_tz tz;
	uint8_t blob[PIM_TZ_BLOB_LEN];
	char b64[B64_ENCODED_LEN(PIM_TZ_BLOB_LEN) + 1];

	assert_int_equal(pim_tz_from_ical(icaltimezone_get_builtin_timezone(olson), at, &tz), 0);
	pim_tz_encode(&tz, blob);
	b64_encode(blob, sizeof(blob), b64);
	add(app, "Calendar:TimeZone", b64);
}

static void
add_body(struct wbxml_node *app, const char *text)
{
	struct wbxml_node *b = add(app, "AirSyncBase:Body", NULL);

	add(b, "AirSyncBase:Type", "1");
	add(b, "AirSyncBase:Data", text);
}

/* The phone's document, through the wire, applied. */
static icalcomponent *
phone_apply(struct wbxml_doc *doc, icalcomponent *existing, const struct pim_apply_opts *o)
{
	struct wbxml_doc *d = wire(doc);
	icalcomponent *out = apply(wbxml_doc_root(d), existing, o);

	wbxml_doc_free(&d);
	wbxml_doc_free(&doc);
	return out;
}

/*
 * Month ends: EAS's day 31 is a shorter month's last day, RFC 5545's skips
 * it; "the last of days 28 to 31" is the same rule in both.
 */
static void
test_month_ends(void **state)
{
	static const char on31[] =
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:m31\r\n"
	    "DTSTART:20260131T090000Z\r\nRRULE:FREQ=MONTHLY;BYMONTHDAY=31\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n";
	static const char last[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:ml\r\n"
	                           "DTSTART:20260131T090000Z\r\n"
	                           "RRULE:FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1\r\n"
	                           "END:VEVENT\r\nEND:VCALENDAR\r\n";
	static const char leap[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:ly\r\n"
	                           "DTSTART;VALUE=DATE:20280229\r\nRRULE:FREQ=YEARLY\r\n"
	                           "END:VEVENT\r\nEND:VCALENDAR\r\n";
	struct pim_eas_opts o = eas_opts(141);
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *got, *app;
	icalcomponent *v, *out;
	const char *err;
	char *s;
	int64_t x[8];

	(void)state;
	/* Only in the months that have a 31st: no EAS pattern. */
	v = pim_ical_parse(on31, sizeof(on31) - 1, &err);
	got = to_phone(v, &o, &doc);
	assert_null(wbxml_find(got, "Calendar:Recurrence"));
	wbxml_doc_free(&doc);
	icalcomponent_free(v);
	v = pim_ical_parse(leap, sizeof(leap) - 1, &err);
	got = to_phone(v, &o, &doc);
	assert_null(wbxml_find(got, "Calendar:Recurrence"));
	wbxml_doc_free(&doc);
	icalcomponent_free(v);
	/* The month's last day of 28 to 31: DayOfMonth 31, and back the same. */
	v = pim_ical_parse(last, sizeof(last) - 1, &err);
	got = to_phone(v, &o, &doc);
	expect_text(got, "Calendar:Recurrence/Calendar:Type", "2");
	expect_text(got, "Calendar:Recurrence/Calendar:DayOfMonth", "31");
	out = apply(got, NULL, &a);
	same_occurrences(v, out);
	icalcomponent_free(out);
	wbxml_doc_free(&doc);
	icalcomponent_free(v);
	/* A phone's "every 30th" runs through February's last day. */
	app = phone_doc(&doc);
	add(app, "Calendar:StartTime", "20260130T090000Z");
	add(app, "Calendar:EndTime", "20260130T100000Z");
	{
		struct wbxml_node *r = add(app, "Calendar:Recurrence", NULL);
		add(r, "Calendar:Type", "2");
		add(r, "Calendar:Interval", "1");
		add(r, "Calendar:DayOfMonth", "30");
		add(r, "Calendar:Occurrences", "3");
	}
	out = phone_apply(doc, NULL, &a);
	s = text(out);
	has(s, "RRULE:FREQ=MONTHLY;COUNT=3;BYMONTHDAY=28,29,30;BYSETPOS=-1");
	free(s);
	assert_int_equal(
	    pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, berlin, FROM, UNTIL, x, 8), 3);
	assert_int_equal(x[1], t("20260228T090000Z"));
	assert_int_equal(x[2], t("20260330T080000Z"));
	icalcomponent_free(out);
}

/* ---- iOS ------------------------------------------------------------------ */

/*
 * iOS (14.1, no Supported): a Change carries the whole item as the phone
 * has it. Here the series moves half an hour, is renamed, gets a 30-minute
 * reminder; its exceptions come back as they were sent.
 */
static void
test_ios_change(void **state)
{
	icalcomponent *v = load("apple_weekly.ics"), *out;
	struct pim_eas_opts o = eas_opts(141);
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *sent, *doc;
	struct wbxml_node *got = to_phone(v, &o, &sent), *app = phone_doc(&doc);
	struct wbxml_node *ex;
	char *s;

	add_zone(app, "Europe/Berlin", t("20260112T093000Z"));
	add(app, "Calendar:AllDayEvent", "0");
	add(app, "Calendar:StartTime", "20260112T093000Z");
	add(app, "Calendar:EndTime", "20260112T100000Z");
	add(app, "Calendar:Subject", "Team sync (new time)");
	add(app, "Calendar:Location", "Room 4.12");
	add(app, "Calendar:Sensitivity", "0");
	add(app, "Calendar:BusyStatus", "2");
	add(app, "Calendar:Reminder", "30");
	add(app, "Calendar:UID", "7F3A2C1E-5B4D-4E2A-9C8B-1D2E3F4A5B6C");
	add(app, "Calendar:MeetingStatus", "0");
	add_body(app, "Agenda in the shared notes.\nBring the numbers.");
	{
		struct wbxml_node *r = add(app, "Calendar:Recurrence", NULL);
		add(r, "Calendar:Type", "1");
		add(r, "Calendar:Interval", "1");
		add(r, "Calendar:DayOfWeek", "10");
	}
	/* The exceptions as the phone knows them, moved with the series. */
	ex = add(app, "Calendar:Exceptions", NULL);
	{
		struct wbxml_node *x = add(ex, "Calendar:Exception", NULL);
		add(x, "Calendar:Deleted", "1");
		add(x, "Calendar:ExceptionStartTime", "20260119T093000Z");
		x = add(ex, "Calendar:Exception", NULL);
		add(x, "Calendar:ExceptionStartTime", "20260121T093000Z");
		add(x, "Calendar:StartTime", "20260121T133000Z");
		add(x, "Calendar:EndTime", "20260121T140000Z");
		add(x, "Calendar:Subject", "Team sync (moved)");
	}
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "DTSTART;TZID=Europe/Berlin:20260112T103000\r\n");
	has(s, "DTEND;TZID=Europe/Berlin:20260112T110000\r\n");
	has(s, "SUMMARY:Team sync (new time)\r\n");
	/* The first alarm moved; its Apple identifiers and the second alarm stayed. */
	has(s, "TRIGGER:-PT30M");
	has(s, "X-WR-ALARMUID:2B9C5E6F-1A2B-4C3D-8E9F-0A1B2C3D4E5F");
	has(s, "TRIGGER:-P1D");
	has(s, "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC");
	/* The exceptions under their new names, the old ones gone. */
	has(s, "EXDATE;TZID=Europe/Berlin:20260119T103000");
	hasnt(s, "EXDATE;TZID=Europe/Berlin:20260119T100000");
	has(s, "RECURRENCE-ID;TZID=Europe/Berlin:20260121T103000");
	hasnt(s, "RECURRENCE-ID;TZID=Europe/Berlin:20260121T100000");
	assert_int_equal(count(s, "BEGIN:VEVENT"), 2);
	/* A change of times is a new SEQUENCE, stamped now. */
	has(s, "SEQUENCE:3\r\n");
	has(s, "DTSTAMP:20260101T000000Z");
	free(s);
	{
		int64_t x[16];
		int n = pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, berlin,
		                             t("20260112T000000Z"), t("20260126T000000Z"), x, 16);
		/* Mon 12, Wed 14, (Mon 19 deleted), Wed 21 moved to 14:30, Fri none. */
		assert_int_equal(n, 3);
		assert_int_equal(x[0], t("20260112T093000Z"));
		assert_int_equal(x[1], t("20260114T093000Z"));
		assert_int_equal(x[2], t("20260121T133000Z"));
	}
	(void)got;
	wbxml_doc_free(&sent);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/*
 * iOS at 16.1: a Change sends what changed (the rest is ghosted), the
 * location as AirSyncBase:Location; an occurrence is changed with its
 * InstanceId, deleted with a Delete of it.
 */
static void
test_ios16(void **state)
{
	icalcomponent *v = load("google_monthly_meeting.ics"), *out, *out2;
	struct pim_apply_opts a = apply_opts(161);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc), *loc;
	const char *err;
	char *s;

	add(app, "Calendar:Subject", "Partner pipeline review (Q2)");
	loc = add(app, "AirSyncBase:Location", NULL);
	add(loc, "AirSyncBase:DisplayName", "Hudson room");
	add(loc, "AirSyncBase:Latitude", "40.7411");
	add(loc, "AirSyncBase:Longitude", "-74.0036");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "SUMMARY:Partner pipeline review (Q2)");
	has(s, "LOCATION:Hudson room");
	has(s, "GEO:40.741100;-74.003600");
	/* Ghosted: the rest is as it was, the organizer and every answer included. */
	has(s, "RRULE:FREQ=MONTHLY;COUNT=12;BYDAY=1TU");
	has(s, "PARTSTAT=TENTATIVE");
	has(s, "ORGANIZER;CN=Dana Whitfield:mailto:dana.whitfield@example.com");
	has(s, "TRIGGER:-PT10M");
	assert_int_equal(count(s, "BEGIN:VEVENT"), 3);
	same_occurrences(v, out);
	free(s);

	/* One occurrence (June 2) an hour later, with its own subject. */
	app = phone_doc(&doc);
	add(app, "Calendar:StartTime", "20260602T210000Z");
	add(app, "Calendar:EndTime", "20260602T220000Z");
	add(app, "Calendar:Subject", "Pipeline review, later");
	a.has_instance = true;
	a.instance = t("20260602T200000Z");
	out2 = phone_apply(doc, out, &a);
	s = text(out2);
	has(s, "RECURRENCE-ID;TZID=America/New_York:20260602T160000");
	has(s, "DTSTART;TZID=America/New_York:20260602T170000");
	has(s, "SUMMARY:Pipeline review\\, later");
	assert_int_equal(count(s, "BEGIN:VEVENT"), 4);
	free(s);
	/* The same occurrence changed again: the same override, not a second one. */
	app = phone_doc(&doc);
	add(app, "Calendar:Subject", "Pipeline review, later still");
	icalcomponent_free(out);
	out = phone_apply(doc, out2, &a);
	s = text(out);
	assert_int_equal(count(s, "BEGIN:VEVENT"), 4);
	has(s, "SUMMARY:Pipeline review\\, later still");
	has(s, "DTSTART;TZID=America/New_York:20260602T170000");
	free(s);
	icalcomponent_free(out2);

	/* A Delete of the August occurrence. */
	assert_int_equal(pim_event_delete_instance(out, t("20260804T200000Z"), &a, &err), 0);
	s = text(out);
	has(s, "EXDATE;TZID=America/New_York:20260804T160000");
	free(s);
	{
		int64_t x[16];
		int n = pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, berlin,
		                             t("20260801T000000Z"), t("20260901T000000Z"), x, 16);
		assert_int_equal(n, 0);
	}
	/* An occurrence of an event that does not repeat is refused. */
	{
		icalcomponent *single = load("google_utc.ics"), *none = NULL;
		struct wbxml_doc *d2;

		app = phone_doc(&doc);
		add(app, "Calendar:Subject", "x");
		d2 = wire(doc);
		assert_int_equal(pim_event_from_eas(wbxml_doc_root(d2), single, &a, &none, &err),
		                 -1);
		assert_null(none);
		assert_int_equal(pim_event_delete_instance(single, t("20260310T043000Z"), &a, &err),
		                 -1);
		wbxml_doc_free(&d2);
		wbxml_doc_free(&doc);
		icalcomponent_free(single);
	}
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* 16.x: a new pattern or new times of a series end its exceptions (MS-ASCAL 2.2.2.22). */
static void
test_16_series_moved(void **state)
{
	icalcomponent *v = load("apple_weekly.ics"), *out;
	struct pim_apply_opts a = apply_opts(161);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc);
	char *s;

	add(app, "Calendar:StartTime", "20260112T100000Z");
	add(app, "Calendar:EndTime", "20260112T103000Z");
	out = phone_apply(doc, v, &a);
	s = text(out);
	hasnt(s, "EXDATE");
	hasnt(s, "RECURRENCE-ID");
	has(s, "DTSTART;TZID=Europe/Berlin:20260112T110000");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* ---- Android -------------------------------------------------------------- */

/*
 * Android's Exchange client (14.1) names the elements it manages in
 * Supported; its Change deletes an occurrence with an Exception Deleted=1
 * and, having no reminder set, leaves Reminder out (listed: deleted).
 */
static void
test_android_change(void **state)
{
	icalcomponent *v = load("sogo_daily.ics"), *out;
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc, *sup;
	struct wbxml_node *app = phone_doc(&doc), *ex, *x, *s_root;
	char *s;

	/* The Supported list of the folder's first Sync. */
	sup = wbxml_doc_new();
	s_root = wbxml_add_root(sup, WBXML_PAGE_AIRSYNC, 0x20);
	add(s_root, "Calendar:Reminder", NULL);
	add(s_root, "Calendar:Categories", NULL);
	add(s_root, "Calendar:Exceptions", NULL);
	a.supported_given = true;
	a.supported = pim_supported_mask(s_root, WBXML_PAGE_CALENDAR);
	wbxml_doc_free(&sup);

	add_zone(app, "Asia/Tokyo", t("20260302T003000Z"));
	add(app, "Calendar:AllDayEvent", "0");
	add_body(app, "");
	add(app, "Calendar:BusyStatus", "2");
	add(app, "Calendar:Sensitivity", "0");
	add(app, "Calendar:Subject", "Stand-up (Tokyo office)");
	add(app, "Calendar:StartTime", "20260302T003000Z");
	add(app, "Calendar:EndTime", "20260302T004500Z");
	add(app, "Calendar:UID", "1A2-65F1C7B0-3-5D8E4C80");
	{
		struct wbxml_node *r = add(app, "Calendar:Recurrence", NULL);
		add(r, "Calendar:Type", "0");
		add(r, "Calendar:Interval", "2");
		add(r, "Calendar:Until", "20260331T003000Z");
	}
	ex = add(app, "Calendar:Exceptions", NULL);
	x = add(ex, "Calendar:Exception", NULL);
	add(x, "Calendar:ExceptionStartTime", "20260310T003000Z");
	add(x, "Calendar:Deleted", "1");
	x = add(ex, "Calendar:Exception", NULL);
	add(x, "Calendar:ExceptionStartTime", "20260316T003000Z");
	add(x, "Calendar:StartTime", "20260316T010000Z");
	add(x, "Calendar:EndTime", "20260316T011500Z");
	add(x, "Calendar:Location", "Online");
	x = add(ex, "Calendar:Exception", NULL);
	add(x, "Calendar:ExceptionStartTime", "20260320T003000Z");
	add(x, "Calendar:Deleted", "1");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "EXDATE;TZID=Asia/Tokyo:20260320T093000");
	has(s, "EXDATE;TZID=Asia/Tokyo:20260310T093000");
	/* Reminder listed and absent: the alarm is gone. Location is not listed: it stays. */
	hasnt(s, "BEGIN:VALARM");
	has(s, "LOCATION:Meeting room Sakura");
	/* The empty body the phone sent clears the description (there was none). */
	hasnt(s, "DESCRIPTION");
	has(s, "X-SOGO-SEND-APPOINTMENT-NOTIFICATIONS:NO");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/*
 * Android's Add of a new weekly meeting (14.1): attendees without an
 * answer, one of them optional, a resource; an exception moved; the user
 * as organizer.
 */
static void
test_android_add_meeting(void **state)
{
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc), *at, *x, *ex;
	icalcomponent *out;
	char *s;

	add_zone(app, "Europe/Berlin", t("20260302T080000Z"));
	add(app, "Calendar:AllDayEvent", "0");
	add(app, "Calendar:BusyStatus", "2");
	add(app, "Calendar:OrganizerName", "Alice Martin");
	add(app, "Calendar:OrganizerEmail", USER);
	add(app, "Calendar:Sensitivity", "0");
	add(app, "Calendar:Subject", "Weekly 1:1");
	add(app, "Calendar:Location", "Alice's office");
	add(app, "Calendar:StartTime", "20260302T080000Z");
	add(app, "Calendar:EndTime", "20260302T083000Z");
	add(app, "Calendar:UID", "3a5c7e9b-1d2f-4a6b-8c0d-e2f4a6b8c0d1");
	add(app, "Calendar:DtStamp", "20260225T120000Z");
	add(app, "Calendar:Reminder", "10");
	at = add(app, "Calendar:Attendees", NULL);
	x = add(at, "Calendar:Attendee", NULL);
	add(x, "Calendar:Email", "bob.stone@example.com");
	add(x, "Calendar:Name", "Bob Stone");
	add(x, "Calendar:AttendeeType", "1");
	x = add(at, "Calendar:Attendee", NULL);
	add(x, "Calendar:Email", "chen.wei@example.com");
	add(x, "Calendar:Name", "chen.wei@example.com");
	add(x, "Calendar:AttendeeType", "2");
	x = add(at, "Calendar:Attendee", NULL);
	add(x, "Calendar:Email", "room.aurora@example.com");
	add(x, "Calendar:Name", "Aurora");
	add(x, "Calendar:AttendeeType", "3");
	{
		struct wbxml_node *r = add(app, "Calendar:Recurrence", NULL);
		add(r, "Calendar:Type", "1");
		add(r, "Calendar:Interval", "1");
		add(r, "Calendar:DayOfWeek", "2");
		add(r, "Calendar:Occurrences", "10");
	}
	ex = add(app, "Calendar:Exceptions", NULL);
	x = add(ex, "Calendar:Exception", NULL);
	add(x, "Calendar:ExceptionStartTime", "20260316T080000Z");
	add(x, "Calendar:StartTime", "20260317T080000Z");
	add(x, "Calendar:EndTime", "20260317T083000Z");
	add(x, "Calendar:Subject", "Weekly 1:1 (Tuesday this time)");
	add(app, "Calendar:MeetingStatus", "1");
	out = phone_apply(doc, NULL, &a);
	s = text(out);
	has(s, "UID:3a5c7e9b-1d2f-4a6b-8c0d-e2f4a6b8c0d1");
	has(s, "ORGANIZER;CN=Alice Martin:mailto:alice@example.com");
	assert_non_null(strstr(s,
	                       "CN=Bob Stone;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE:"
	                       "mailto:bob.stone@example.com") ||
	                strstr(s, "mailto:bob.stone@example.com"));
	/* Three attendees, in the series and in its moved occurrence. */
	assert_int_equal(count(s, "ATTENDEE"), 6);
	has(s, "ROLE=OPT-PARTICIPANT");
	has(s, "CUTYPE=RESOURCE");
	/* A name that is only the address is no name. */
	hasnt(s, "CN=chen.wei");
	has(s, "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO");
	has(s, "RECURRENCE-ID;TZID=Europe/Berlin:20260316T090000");
	has(s, "DTSTART;TZID=Europe/Berlin:20260317T090000");
	has(s, "TZID:Europe/Berlin");
	free(s);
	{
		int64_t x1[16];
		int n =
		    pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, berlin, FROM, UNTIL, x1, 16);
		assert_int_equal(n, 10);
		assert_int_equal(x1[2], t("20260317T080000Z"));
	}
	/* And back to a phone: a meeting the user organizes. */
	{
		struct pim_eas_opts o = eas_opts(141);
		struct wbxml_doc *d;
		struct wbxml_node *got = to_phone(out, &o, &d);

		expect_text(got, "Calendar:MeetingStatus", "1");
		expect_text(got, "Calendar:ResponseType", "1");
		assert_int_equal(kids(wbxml_find(got, "Calendar:Attendees"), "Calendar:Attendee"),
		                 3);
		wbxml_doc_free(&d);
	}
	icalcomponent_free(out);
}

/* ---- Attendees ------------------------------------------------------------ */

/*
 * The organizer's phone (14.1) drops Bob, makes Chen required, adds Dara:
 * the group only a URN names stays, Chen keeps his answer and RSVP.
 */
static void
test_attendee_edit(void **state)
{
	icalcomponent *v = load("outlook_yearly_meeting.ics"), *out;
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc), *at, *x;
	char *s;

	a.supported_given = true; /* an empty list: everything ghosted but what is sent */
	add(app, "Calendar:Subject", "Year-end planning");
	at = add(app, "Calendar:Attendees", NULL);
	x = add(at, "Calendar:Attendee", NULL);
	add(x, "Calendar:Email", "chen.wei@example.com");
	add(x, "Calendar:Name", "Chen Wei");
	add(x, "Calendar:AttendeeStatus", "3");
	add(x, "Calendar:AttendeeType", "1");
	x = add(at, "Calendar:Attendee", NULL);
	add(x, "Calendar:Email", "dara.oconnor@example.com");
	add(x, "Calendar:Name", "Dara O'Connor");
	add(x, "Calendar:AttendeeType", "1");
	out = phone_apply(doc, v, &a);
	s = text(out);
	/* Bob is gone from the series and from the override that had the series' list. */
	hasnt(s, "bob.stone");
	assert_int_equal(count(s, "mailto:dara.oconnor@example.com"), 2);
	has(s, "urn:uuid:5e1c8a2b-9d47-4f03-b6e1-2c8d9a0f7b34");
	has(s, "mailto:dara.oconnor@example.com");
	has(s, "CN=Dara O'Connor");
	{
		/* Chen: required now, still accepted, RSVP kept. */
		const char *c = strstr(s, "CN=Chen Wei");
		assert_non_null(c);
		has(s, "RSVP=TRUE;CN=Chen Wei");
		hasnt(s, "ROLE=OPT-PARTICIPANT");
	}
	/* Ghosted, so the reminder, the rule and the organizer are as they were. */
	has(s, "TRIGGER;RELATED=START:-PT30M");
	has(s, "BYDAY=-1FR");
	has(s, "ORGANIZER;CN=Alice Martin");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* ---- All day -------------------------------------------------------------- */

static void
test_allday_add(void **state)
{
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app;
	icalcomponent *out;
	char *s;

	/* iOS in New York (14.1): its midnights, its zone; the user lives in Berlin. */
	app = phone_doc(&doc);
	add_zone(app, "America/New_York", t("20260704T040000Z"));
	add(app, "Calendar:AllDayEvent", "1");
	add(app, "Calendar:StartTime", "20260704T040000Z");
	add(app, "Calendar:EndTime", "20260706T040000Z");
	add(app, "Calendar:Subject", "Long weekend");
	add(app, "Calendar:BusyStatus", "0");
	out = phone_apply(doc, NULL, &a);
	s = text(out);
	has(s, "DTSTART;VALUE=DATE:20260704\r\n");
	has(s, "DTEND;VALUE=DATE:20260706\r\n");
	has(s, "TRANSP:TRANSPARENT");
	hasnt(s, "VTIMEZONE");
	free(s);
	icalcomponent_free(out);

	/* 16.1: UTC midnights without a zone. */
	a = apply_opts(161);
	app = phone_doc(&doc);
	add(app, "Calendar:AllDayEvent", "1");
	add(app, "Calendar:StartTime", "20260704T000000Z");
	add(app, "Calendar:EndTime", "20260705T000000Z");
	add(app, "Calendar:Subject", "Independence Day");
	add(app, "Calendar:ClientUid", "A1B2C3D4-0000-4000-8000-123456789ABC");
	out = phone_apply(doc, NULL, &a);
	s = text(out);
	has(s, "DTSTART;VALUE=DATE:20260704\r\n");
	has(s, "DTEND;VALUE=DATE:20260705\r\n");
	assert_string_equal(pim_event_uid(out), "A1B2C3D4-0000-4000-8000-123456789ABC");
	free(s);
	/* A 14.1 phone in Berlin sees its Berlin midnights. */
	{
		struct pim_eas_opts o = eas_opts(141);
		struct wbxml_node *got = to_phone(out, &o, &doc);

		expect_text(got, "Calendar:StartTime", "20260703T220000Z");
		expect_text(got, "Calendar:EndTime", "20260704T220000Z");
		expect_text(got, "Calendar:AllDayEvent", "1");
		wbxml_doc_free(&doc);
	}
	/* Made a timed event by the phone, in Berlin. */
	a = apply_opts(141);
	app = phone_doc(&doc);
	add_zone(app, "Europe/Berlin", t("20260704T080000Z"));
	add(app, "Calendar:AllDayEvent", "0");
	add(app, "Calendar:StartTime", "20260704T080000Z");
	add(app, "Calendar:EndTime", "20260704T090000Z");
	{
		icalcomponent *timed = phone_apply(doc, out, &a);
		s = text(timed);
		has(s, "DTSTART;TZID=Europe/Berlin:20260704T100000");
		has(s, "DTEND;TZID=Europe/Berlin:20260704T110000");
		has(s, "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin");
		free(s);
		icalcomponent_free(timed);
	}
	icalcomponent_free(out);
}

/*
 * A yearly all-day series made a timed one (14.1, exceptions ghosted): its
 * deleted and moved occurrences keep their names, in DTSTART's new form.
 */
static void
test_form_change(void **state)
{
	icalcomponent *v = load("thunderbird_yearly_allday.ics"), *out;
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc);
	char *s;
	int64_t x[8];

	(void)state;
	a.supported_given = true;
	add_zone(app, "Europe/Berlin", t("20260314T090000Z"));
	add(app, "Calendar:AllDayEvent", "0");
	add(app, "Calendar:StartTime", "20260314T090000Z");
	add(app, "Calendar:EndTime", "20260314T100000Z");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "DTSTART;TZID=Europe/Berlin:20260314T100000");
	has(s, "EXDATE;TZID=Europe/Berlin:20280314T100000");
	has(s, "RECURRENCE-ID;TZID=Europe/Berlin:20270314T100000");
	/* The moved occurrence itself stays all day, as the phone left it. */
	has(s, "DTSTART;VALUE=DATE:20270313");
	free(s);
	assert_int_equal(pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, berlin, FROM,
	                                      t("20290401T000000Z"), x, 8),
	                 3);
	assert_int_equal(x[0], t("20260314T090000Z"));
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* ---- Zones ---------------------------------------------------------------- */

static void
test_zones(void **state)
{
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app;
	icalcomponent *out, *v;
	char *s;
	int64_t x[4];

	/* A phone in Kolkata: its Olson zone, with a VTIMEZONE. */
	app = phone_doc(&doc);
	add_zone(app, "Asia/Kolkata", t("20260310T043000Z"));
	add(app, "Calendar:StartTime", "20260310T043000Z");
	add(app, "Calendar:EndTime", "20260310T053000Z");
	add(app, "Calendar:Subject", "Call with Pune");
	out = phone_apply(doc, NULL, &a);
	s = text(out);
	assert_true(strstr(s, "DTSTART;TZID=Asia/Kolkata:20260310T100000") ||
	            strstr(s, "DTSTART;TZID=Asia/Calcutta:20260310T100000"));
	has(s, "BEGIN:VTIMEZONE");
	assert_int_equal(pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, NULL, FROM, UNTIL, x, 4),
	                 1);
	assert_int_equal(x[0], t("20260310T043000Z"));
	free(s);
	icalcomponent_free(out);

	/* A zone no Olson zone follows (UTC+3:20, DST from the first Sunday of February). */
	{
		struct pim_eas_tz tz;
		uint8_t blob[PIM_TZ_BLOB_LEN];
		char b64[B64_ENCODED_LEN(PIM_TZ_BLOB_LEN) + 1];
		int64_t occ[8];

		memset(&tz, 0, sizeof(tz));
		tz.bias = -200;
		strcpy(tz.standard_name, "Custom Standard Time");
		strcpy(tz.daylight_name, "Custom Daylight Time");
		tz.standard_date = (struct pim_systemtime){0, 9, 0, 5, 3, 0, 0, 0};
		tz.daylight_date = (struct pim_systemtime){0, 2, 0, 1, 2, 0, 0, 0};
		tz.daylight_bias = -60;
		pim_tz_encode(&tz, blob);
		b64_encode(blob, sizeof(blob), b64);
		app = phone_doc(&doc);
		add(app, "Calendar:TimeZone", b64);
		add(app, "Calendar:StartTime", "20260601T060000Z");
		add(app, "Calendar:EndTime", "20260601T070000Z");
		add(app, "Calendar:Subject", "Somewhere else");
		{
			struct wbxml_node *r = add(app, "Calendar:Recurrence", NULL);
			add(r, "Calendar:Type", "0");
			add(r, "Calendar:Interval", "1");
			add(r, "Calendar:Occurrences", "300");
		}
		out = phone_apply(doc, NULL, &a);
		s = text(out);
		/* Its own VTIMEZONE; 06:00Z is 10:20 in its summer. */
		has(s, "BEGIN:VTIMEZONE");
		has(s, "T102000\r\n");
		free(s);
		/* Past the September change the local time holds and the instant moves an hour. */
		assert_int_equal(pim_ical_occurrences(out, ICAL_VEVENT_COMPONENT, NULL,
		                                      t("20261031T000000Z"), t("20261101T000000Z"),
		                                      occ, 8),
		                 1);
		assert_int_equal(occ[0], t("20261031T070000Z"));
		icalcomponent_free(out);
	}

	/* A floating event stays floating while its wall clock is the user's. */
	v = load("thunderbird_floating.ics");
	app = phone_doc(&doc);
	add_zone(app, "Europe/Berlin", t("20260410T060000Z"));
	add(app, "Calendar:StartTime", "20260410T060000Z");
	add(app, "Calendar:EndTime", "20260410T070000Z");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "DTSTART:20260410T080000\r\n");
	has(s, "DTEND:20260410T090000\r\n");
	free(s);
	icalcomponent_free(out);
	/* ...and takes the phone's zone when it is another. */
	app = phone_doc(&doc);
	add_zone(app, "America/New_York", t("20260410T060000Z"));
	add(app, "Calendar:StartTime", "20260410T060000Z");
	add(app, "Calendar:EndTime", "20260410T070000Z");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "DTSTART;TZID=America/New_York:20260410T020000");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);

	/* UTC stays UTC. */
	v = load("google_utc.ics");
	app = phone_doc(&doc);
	add(app, "Calendar:StartTime", "20260310T050000Z");
	add(app, "Calendar:EndTime", "20260310T060000Z");
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "DTSTART:20260310T050000Z");
	has(s, "DTEND:20260310T060000Z");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* ---- What EAS cannot say --------------------------------------------------- */

static void
test_inexpressible(void **state)
{
	icalcomponent *v = load("nextcloud_twice_monthly.ics"), *out;
	struct pim_eas_opts o = eas_opts(141);
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *sent, *doc;
	struct wbxml_node *got = to_phone(v, &o, &sent), *app;
	const char *body = wbxml_find_text(got, "AirSyncBase:Body/AirSyncBase:Data");
	char *s;

	/* The first occurrence alone, with the note. */
	assert_null(wbxml_find(got, "Calendar:Recurrence"));
	assert_non_null(body);
	assert_non_null(strstr(body, "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15"));
	/* The phone edits the subject and sends the body back as it has it. */
	app = phone_doc(&doc);
	add_zone(app, "America/Sao_Paulo", t("20260115T170000Z"));
	add(app, "Calendar:StartTime", "20260115T170000Z");
	add(app, "Calendar:EndTime", "20260115T180000Z");
	add(app, "Calendar:Subject", "Invoice run (both halves)");
	add_body(app, body);
	out = phone_apply(doc, v, &a);
	s = text(out);
	has(s, "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15");
	has(s, "SUMMARY:Invoice run (both halves)");
	hasnt(s, "DESCRIPTION");
	same_occurrences(v, out);
	free(s);
	icalcomponent_free(out);
	wbxml_doc_free(&sent);
	icalcomponent_free(v);
}

/* ---- Options and refusals ------------------------------------------------- */

static void
test_body_options(void **state)
{
	icalcomponent *v = load("google_monthly_meeting.ics");
	struct pim_eas_opts o = eas_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *got;
	const char *d;

	o.body_truncation = 20;
	got = to_phone(v, &o, &doc);
	expect_text(got, "AirSyncBase:Body/AirSyncBase:Truncated", "1");
	expect_text(got, "AirSyncBase:Body/AirSyncBase:EstimatedDataSize", "100");
	expect_text(got, "AirSyncBase:Body/AirSyncBase:Data", "Monthly review of th");
	wbxml_doc_free(&doc);
	o.body_all_or_none = true;
	got = to_phone(v, &o, &doc);
	assert_null(wbxml_find(got, "AirSyncBase:Body/AirSyncBase:Data"));
	wbxml_doc_free(&doc);
	o = eas_opts(141);
	o.body_type = 2;
	got = to_phone(v, &o, &doc);
	expect_text(got, "AirSyncBase:Body/AirSyncBase:Type", "2");
	d = wbxml_find_text(got, "AirSyncBase:Body/AirSyncBase:Data");
	assert_non_null(strstr(d, "pipeline.<br>"));
	wbxml_doc_free(&doc);
	o.body_type = 0;
	got = to_phone(v, &o, &doc);
	assert_null(wbxml_find(got, "AirSyncBase:Body"));
	wbxml_doc_free(&doc);
	/* The user unknown: an invitation reads as the user's own meeting. */
	o = eas_opts(141);
	o.user_email = NULL;
	got = to_phone(v, &o, &doc);
	expect_text(got, "Calendar:MeetingStatus", "1");
	wbxml_doc_free(&doc);
	/* 16.1 writes the location as AirSyncBase:Location. */
	icalcomponent_free(v);
	v = load("apple_weekly.ics");
	o = eas_opts(161);
	got = to_phone(v, &o, &doc);
	expect_text(got, "AirSyncBase:Location/AirSyncBase:DisplayName", "Room 4.12");
	assert_null(wbxml_find(got, "Calendar:Location"));
	wbxml_doc_free(&doc);
	icalcomponent_free(v);
}

static void
test_refused(void **state)
{
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc, *d2;
	struct wbxml_node *app;
	icalcomponent *out = NULL, *todo;
	const char *err;
	char *uid;

	/* An end before the start: Status 6 for the command layer. */
	app = phone_doc(&doc);
	add(app, "Calendar:StartTime", "20260310T050000Z");
	add(app, "Calendar:EndTime", "20260310T040000Z");
	d2 = wire(doc);
	assert_int_equal(pim_event_from_eas(wbxml_doc_root(d2), NULL, &a, &out, &err), -1);
	assert_null(out);
	wbxml_doc_free(&d2);
	wbxml_doc_free(&doc);
	/* A Change of an object with no event in it. */
	todo = icalcomponent_new_from_string("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\n"
	                                     "UID:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n");
	app = phone_doc(&doc);
	add(app, "Calendar:Subject", "x");
	d2 = wire(doc);
	assert_int_equal(pim_event_from_eas(wbxml_doc_root(d2), todo, &a, &out, &err), -1);
	{
		struct wbxml_doc *e = wbxml_doc_new();
		struct wbxml_node *r = wbxml_add_root(e, WBXML_PAGE_AIRSYNC, 0x1D);
		struct pim_eas_opts o = eas_opts(141);
		assert_int_equal(pim_event_to_eas(todo, &o, r, &err), -1);
		assert_null(r->first_child);
		wbxml_doc_free(&e);
	}
	icalcomponent_free(todo);
	/* No start, no end: now, rounded up to the half hour, for half an hour (MS-ASCAL 3.2.4.4).
	 */
	assert_int_equal(pim_event_from_eas(wbxml_doc_root(d2), NULL, &a, &out, &err), 0);
	{
		char *s = text(out);
		has(s, "DTSTART;TZID=Europe/Berlin:20260101T010000");
		has(s, "DTEND;TZID=Europe/Berlin:20260101T013000");
		/* No UID from the phone, none from the caller: a fresh UUID. */
		uid = strstr(s, "UID:");
		assert_non_null(uid);
		assert_int_equal(strcspn(uid + 4, "\r"), 36);
		free(s);
	}
	icalcomponent_free(out);
	a.uid = "given-by-the-store";
	assert_int_equal(pim_event_from_eas(wbxml_doc_root(d2), NULL, &a, &out, &err), 0);
	assert_string_equal(pim_event_uid(out), "given-by-the-store");
	icalcomponent_free(out);
	wbxml_doc_free(&d2);
	wbxml_doc_free(&doc);
}

/* ---- The parser's caps ---------------------------------------------------- */

static void
test_parse_caps(void **state)
{
	const char *err;
	struct sbuf {
		char *p;
		size_t n;
	} b = {0};
	char *big;
	icalcomponent *v;
	int64_t x[8];

	(void)state;
	assert_null(pim_ical_parse("BEGIN:VCARD\r\nEND:VCARD\r\n", 24, &err));
	assert_null(pim_ical_parse("BEGIN:VCALENDAR\r\n\0END:VCALENDAR\r\n", 33, &err));
	big = calloc(1, PIM_ICAL_MAX_BYTES + 2);
	memset(big, 'A', PIM_ICAL_MAX_BYTES + 1);
	assert_null(pim_ical_parse(big, PIM_ICAL_MAX_BYTES + 1, &err));
	free(big);
	/* More components than the cap. */
	b.p = malloc(64 * 1024);
	b.n = (size_t)sprintf(b.p, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
	for (int i = 0; i < PIM_ICAL_MAX_COMPONENTS + 1; i++)
		b.n += (size_t)sprintf(b.p + b.n, "BEGIN:VTODO\r\nUID:%d\r\nEND:VTODO\r\n", i);
	b.n += (size_t)sprintf(b.p + b.n, "END:VCALENDAR\r\n");
	assert_null(pim_ical_parse(b.p, b.n, &err));
	free(b.p);

	/*
	 * A VTIMEZONE whose rule libical would expand second by second, and a
	 * TZID that would be a path: the rule goes, the TZID names no zone.
	 */
	{
		static const char obj[] =
		    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
		    "BEGIN:VTIMEZONE\r\nTZID:Evil\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
		    "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=SECONDLY\r\nEND:"
		    "STANDARD\r\n"
		    "END:VTIMEZONE\r\n"
		    "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Evil:99990101T000000\r\n"
		    "DTEND;TZID=../../../../../dev/stdin:99990101T010000\r\n"
		    "RRULE:FREQ=SECONDLY;COUNT=1000000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
		clock_t c0 = clock();
		struct pim_eas_opts o = eas_opts(141);
		struct wbxml_doc *doc;
		struct wbxml_node *got;
		char *s;

		v = pim_ical_parse(obj, sizeof(obj) - 1, &err);
		assert_non_null(v);
		s = text(v);
		hasnt(s, "FREQ=SECONDLY\r\nEND:STANDARD");
		free(s);
		assert_null(pim_ical_zone(v, "../../../../../dev/stdin"));
		assert_null(pim_ical_zone(v, "/etc/passwd"));
		/* Not expanded, and said so. */
		assert_int_equal(
		    pim_ical_occurrences(v, ICAL_VEVENT_COMPONENT, NULL, FROM, UNTIL, x, 8), -1);
		got = to_phone(v, &o, &doc);
		assert_null(wbxml_find(got, "Calendar:Recurrence"));
		wbxml_doc_free(&doc);
		assert_true((clock() - c0) / CLOCKS_PER_SEC < 20);
		icalcomponent_free(v);
	}
	/*
	 * Outlook's zones start their rules in 1601, which libical would expand
	 * year by year whenever the object is read: they start at their 1970
	 * onsets (the last Sundays of October and March).
	 */
	{
		icalcomponent *ol = load("outlook_yearly_meeting.ics");
		char *s = text(ol);

		has(s, "DTSTART:19701025T030000");
		has(s, "DTSTART:19700329T020000");
		hasnt(s, "1601");
		free(s);
		icalcomponent_free(ol);
	}
	/* A huge COUNT, and a rule that never matches: bounded work. */
	{
		static const char obj[] =
		    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
		    "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T090000Z\r\n"
		    "RRULE:FREQ=DAILY;COUNT=2000000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
		static const char never[] =
		    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
		    "BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20260101T090000Z\r\n"
		    "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
		clock_t c0 = clock();

		v = pim_ical_parse(obj, sizeof(obj) - 1, &err);
		assert_int_equal(pim_ical_occurrences(v, ICAL_VEVENT_COMPONENT, NULL,
		                                      t("29000101T000000Z"), t("29000201T000000Z"),
		                                      x, 8),
		                 -1);
		assert_int_equal(pim_ical_occurrences(v, ICAL_VEVENT_COMPONENT, NULL, FROM,
		                                      t("20260105T000000Z"), x, 8),
		                 4);
		icalcomponent_free(v);
		v = pim_ical_parse(never, sizeof(never) - 1, &err);
		assert_int_equal(
		    pim_ical_occurrences(v, ICAL_VEVENT_COMPONENT, NULL, FROM, UNTIL, x, 8), 1);
		icalcomponent_free(v);
		assert_true((clock() - c0) / CLOCKS_PER_SEC < 20);
	}
}

/* A custom zone's VTIMEZONE, EU rules from 1970 at standard offset std (e.g. "+0100"). */
static char *
custom_zone_object(const char *std, const char *dst, const char *uid)
{
	return xasprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
	                 "BEGIN:VTIMEZONE\r\nTZID:Office Time\r\n"
	                 "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nTZNAME:OST\r\n"
	                 "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
	                 "END:DAYLIGHT\r\n"
	                 "BEGIN:STANDARD\r\nTZOFFSETFROM:%s\r\nTZOFFSETTO:%s\r\nTZNAME:OT\r\n"
	                 "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
	                 "END:STANDARD\r\nEND:VTIMEZONE\r\n"
	                 "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
	                 "DTSTART;TZID=Office Time:20260701T120000\r\n"
	                 "DTEND;TZID=Office Time:20260701T130000\r\nSUMMARY:x\r\n"
	                 "END:VEVENT\r\nEND:VCALENDAR\r\n",
	                 std, dst, dst, std, uid);
}

/* DTSTART of an object's event, in seconds since the epoch. */
static int64_t
start_of(icalcomponent *v)
{
	icalcomponent *ev = icalcomponent_get_first_component(v, ICAL_VEVENT_COMPONENT);
	struct pim_time t;

	assert_int_equal(
	    pim_time_read(v, icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY), NULL, &t),
	    0);
	return t.utc;
}

/*
 * A calendar's objects each carry their VTIMEZONE: the same text is one
 * interned zone, whose offsets are those of the text; a VTIMEZONE of the same
 * TZID with other rules is another zone (the TZID alone decides nothing);
 * with interning off each object's own zone answers the same.
 */
static void
test_interned_zones(void **state)
{
	(void)state;
	char *a = custom_zone_object("+0100", "+0200", "a"),
	     *b = custom_zone_object("+0100", "+0200", "b"),
	     *c = custom_zone_object("+0300", "+0400", "c");
	const char *err = NULL;
	icalcomponent *va = pim_ical_parse(a, strlen(a), &err),
	              *vb = pim_ical_parse(b, strlen(b), &err),
	              *vc = pim_ical_parse(c, strlen(c), &err);
	icaltimezone *za, *zb, *zc;

	assert_non_null(va);
	assert_non_null(vb);
	assert_non_null(vc);
	za = pim_ical_zone(va, "Office Time");
	zb = pim_ical_zone(vb, "Office Time");
	zc = pim_ical_zone(vc, "Office Time");
	assert_non_null(za);
	assert_ptr_equal(za, zb);
	assert_true(pim_ical_zone_interned(za));
	assert_ptr_not_equal(za, icalcomponent_get_timezone(va, "Office Time"));
	assert_ptr_not_equal(za, zc);
	assert_true(pim_ical_zone_interned(zc));
	/* 12:00 in July at +02 is 10:00Z; at +04, 08:00Z. */
	assert_int_equal(start_of(va), 1782900000);
	assert_int_equal(start_of(vb), 1782900000);
	assert_int_equal(start_of(vc), 1782892800);

	pim_tz_cache_enable(false);
	assert_ptr_equal(pim_ical_zone(va, "Office Time"),
	                 icalcomponent_get_timezone(va, "Office Time"));
	assert_false(pim_ical_zone_interned(icalcomponent_get_timezone(va, "Office Time")));
	assert_int_equal(start_of(va), 1782900000);
	assert_int_equal(start_of(vc), 1782892800);
	pim_tz_cache_enable(true);
	icalcomponent_free(va);
	icalcomponent_free(vb);
	icalcomponent_free(vc);
	free(a);
	free(b);
	free(c);
}

static int
setup(void **state)
{
	(void)state;
	pim_ical_init();
	berlin = icaltimezone_get_builtin_timezone("Europe/Berlin");
	return berlin ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	icaltimezone_free_builtin_timezones();
	return 0;
}

/* ---- The span of an event, for FilterType ---------------------------- */

/* vcal's span, the object given as the VEVENTs' lines joined. */
static void
span_of(const char *events, int64_t *st, int64_t *en)
{
	char buf[2048];
	const char *err;
	icalcomponent *v;

	snprintf(buf, sizeof(buf),
	         "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n%sEND:VCALENDAR\r\n",
	         events);
	v = pim_ical_parse(buf, strlen(buf), &err);
	assert_non_null(v);
	assert_int_equal(pim_event_span(v, st, en, &err), 0);
	icalcomponent_free(v);
}

/*
 * An event spans its start to its end; a bounded series to its last
 * occurrence's end (COUNT, UNTIL; in its zone across a DST change), or
 * an override moved later; one without an end recurs for ever; an all-day
 * event lasts its day; an object without an event has no span.
 */
static void
test_span(void **state)
{
	int64_t st, en;
	const char *err;

	(void)state;
	span_of("BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261201T090000Z\r\n"
	        "DTEND:20261201T100000Z\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(st, t("20261201T090000Z"));
	assert_int_equal(en, t("20261201T100000Z"));
	/* weekly, three times: the third one's end */
	span_of("BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20261201T090000Z\r\nDURATION:PT30M\r\n"
	        "RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(st, t("20261201T090000Z"));
	assert_int_equal(en, t("20261215T093000Z"));
	/* until June 1st: bounded by its UNTIL (the last Monday, May 25, is before it) */
	span_of("BEGIN:VEVENT\r\nUID:c\r\nDTSTART;TZID=Europe/Berlin:20260105T090000\r\n"
	        "DTEND;TZID=Europe/Berlin:20260105T100000\r\n"
	        "RRULE:FREQ=WEEKLY;UNTIL=20260601T000000Z\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(st, t("20260105T080000Z"));
	assert_int_equal(en, t("20260601T010000Z"));
	/* an UNTIL date: to its end */
	span_of("BEGIN:VEVENT\r\nUID:c2\r\nDTSTART;VALUE=DATE:20260105\r\n"
	        "RRULE:FREQ=WEEKLY;UNTIL=20260525\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(en, t("20260527T000000Z"));
	/* a COUNT too long to walk: taken as going on */
	span_of("BEGIN:VEVENT\r\nUID:c3\r\nDTSTART:20200101T090000Z\r\n"
	        "RRULE:FREQ=DAILY;COUNT=5000\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_true(en == PIM_SPAN_OPEN);
	/* for ever, whatever its start */
	span_of("BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20201201T090000Z\r\n"
	        "DTEND:20201201T100000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(st, t("20201201T090000Z"));
	assert_true(en == PIM_SPAN_OPEN);
	/* the last occurrence moved a month later by its override */
	span_of("BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20261201T090000Z\r\n"
	        "DTEND:20261201T100000Z\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\n"
	        "BEGIN:VEVENT\r\nUID:e\r\nRECURRENCE-ID:20261202T090000Z\r\n"
	        "DTSTART:20270102T090000Z\r\nDTEND:20270102T110000Z\r\nEND:VEVENT\r\n",
	        &st, &en);
	assert_int_equal(en, t("20270102T110000Z"));
	/* all day: the day */
	span_of("BEGIN:VEVENT\r\nUID:f\r\nDTSTART;VALUE=DATE:20261224\r\nEND:VEVENT\r\n", &st, &en);
	assert_int_equal(st, t("20261224T000000Z"));
	assert_int_equal(en, t("20261225T000000Z"));
	/* a task is no event */
	static const char todo[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:g\r\n"
	                           "DTSTART:20261201T090000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
	icalcomponent *v = pim_ical_parse(todo, sizeof(todo) - 1, &err);
	assert_non_null(v);
	assert_int_equal(pim_event_span(v, &st, &en, &err), -1);
	icalcomponent_free(v);
}

/*
 * The command layer's codec with a 16.x InstanceId: a Change of one
 * occurrence makes its exception (RECURRENCE-ID, the device's subject),
 * the series kept; a Delete of one adds an EXDATE, the series kept; an
 * InstanceId on an event that does not repeat, or one that is no
 * Compact DateTime, is refused; a span of a calendar object.
 */
static void
test_codec_instances(void **state)
{
	static const char series[] =
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
	    "UID:inst-1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261207T083000Z\r\n"
	    "DTEND:20261207T084500Z\r\nSUMMARY:Standup\r\nRRULE:FREQ=DAILY;COUNT=10\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n";
	static const char single[] =
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
	    "UID:one-1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261207T083000Z\r\n"
	    "DTEND:20261207T084500Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
	struct mbx_pim_opts o = {.version = 161, .body_type = 1};
	struct wbxml_doc *doc, *d2;
	struct wbxml_node *app;
	char uid[MBX_PIM_UID_MAX + 1], *out;
	size_t len;
	const char *err;
	int64_t st, en;

	(void)state;
	app = phone_doc(&doc);
	add(app, "Calendar:Subject", "Standup, later");
	add(app, "Calendar:StartTime", "20261209T100000Z");
	add(app, "Calendar:EndTime", "20261209T101500Z");
	d2 = wire(doc);
	o.instance_id = "20261209T083000Z";
	assert_int_equal(pim_codec.from_eas(MBX_CLASS_CALENDAR, wbxml_doc_root(d2), series,
	                                    sizeof(series) - 1, &o, &out, &len, uid, &err),
	                 0);
	has(out, "RECURRENCE-ID:20261209T083000Z");
	has(out, "DTSTART:20261209T100000Z");
	has(out, "SUMMARY:Standup\\, later");
	has(out, "SUMMARY:Standup\r\n"); /* the series' own */
	has(out, "RRULE:FREQ=DAILY;COUNT=10");
	assert_int_equal(count(out, "BEGIN:VEVENT"), 2);
	free(out);
	/* the event that does not repeat: refused */
	assert_int_equal(pim_codec.from_eas(MBX_CLASS_CALENDAR, wbxml_doc_root(d2), single,
	                                    sizeof(single) - 1, &o, &out, &len, uid, &err),
	                 -1);
	o.instance_id = "yesterday";
	assert_int_equal(pim_codec.from_eas(MBX_CLASS_CALENDAR, wbxml_doc_root(d2), series,
	                                    sizeof(series) - 1, &o, &out, &len, uid, &err),
	                 -1);
	wbxml_doc_free(&d2);
	wbxml_doc_free(&doc);

	o.instance_id = "20261211T083000Z";
	assert_int_equal(pim_codec.remove_instance(MBX_CLASS_CALENDAR, series, sizeof(series) - 1,
	                                           &o, &out, &len, &err),
	                 0);
	has(out, "EXDATE:20261211T083000Z");
	has(out, "RRULE:FREQ=DAILY;COUNT=10");
	assert_int_equal(count(out, "BEGIN:VEVENT"), 1);
	{
		const char *e2;
		icalcomponent *v = pim_ical_parse(out, len, &e2);
		int64_t x[16];
		assert_non_null(v);
		assert_int_equal(pim_ical_occurrences(v, ICAL_VEVENT_COMPONENT, NULL,
		                                      t("20261210T000000Z"), t("20261213T000000Z"),
		                                      x, 16),
		                 2); /* the 10th and 12th */
		icalcomponent_free(v);
	}
	free(out);
	assert_int_equal(pim_codec.remove_instance(MBX_CLASS_CALENDAR, single, sizeof(single) - 1,
	                                           &o, &out, &len, &err),
	                 -1);

	/* the span through the codec: ten days of it */
	assert_int_equal(
	    pim_codec.span(MBX_CLASS_CALENDAR, series, sizeof(series) - 1, &st, &en, &err), 0);
	assert_int_equal(st, t("20261207T083000Z"));
	assert_int_equal(en, t("20261216T084500Z"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clients),         cmocka_unit_test(test_month_ends),
	    cmocka_unit_test(test_patterns),        cmocka_unit_test(test_ios_change),
	    cmocka_unit_test(test_ios16),           cmocka_unit_test(test_16_series_moved),
	    cmocka_unit_test(test_android_change),  cmocka_unit_test(test_android_add_meeting),
	    cmocka_unit_test(test_attendee_edit),   cmocka_unit_test(test_allday_add),
	    cmocka_unit_test(test_form_change),     cmocka_unit_test(test_zones),
	    cmocka_unit_test(test_inexpressible),   cmocka_unit_test(test_body_options),
	    cmocka_unit_test(test_refused),         cmocka_unit_test(test_parse_caps),
	    cmocka_unit_test(test_interned_zones),  cmocka_unit_test(test_span),
	    cmocka_unit_test(test_codec_instances),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
