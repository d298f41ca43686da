/*
 * test_task.c: tasks between iCalendar (VTODO) and EAS (src/pim/task.c).
 *
 * Tasks as Apple Reminders, Thunderbird and Nextcloud Tasks write them, for
 * every EAS version: through WBXML, checked field by field, sent back as a
 * Change of everything (the same object, byte for byte) and as an Add (the
 * same dates and occurrences); then the phones' own Adds and Changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "pim/eastime.h"
#include "pim/ical.h"
#include "pim/task.h"

#define USER "alice@example.com"
#define NOW  1767225600 /* 2026-01-01T00:00:00Z */
#define FROM 1735689600
#define TO   1956528000

static icaltimezone *berlin;

static icalcomponent *
load(const char *name)
{
	char path[512];
	FILE *f;
	char *b;
	long n;
	const char *err = NULL;
	icalcomponent *v;

	snprintf(path, sizeof(path), "%s/%s", ICAL_DATA_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	v = pim_ical_parse(b, (size_t)n, &err);
	if (v == NULL)
		fail_msg("%s: %s", name, err);
	free(b);
	return v;
}

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

static struct wbxml_node *
to_phone(icalcomponent *v, int version, struct wbxml_doc **doc)
{
	struct pim_eas_opts o = {
	    .version = version, .user_email = USER, .zone = berlin, .body_type = 1};
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *app = wbxml_add_root(d, WBXML_PAGE_AIRSYNC, 0x1D);
	const char *err = NULL;

	if (pim_task_to_eas(v, &o, app, &err) < 0)
		fail_msg("to EAS: %s", err);
	*doc = wire(d);
	wbxml_doc_free(&d);
	return wbxml_doc_root(*doc);
}

static struct pim_apply_opts
apply_opts(int version)
{
	return (struct pim_apply_opts){
	    .version = version, .user_email = USER, .zone = berlin, .now = NOW};
}

static icalcomponent *
apply(const struct wbxml_node *app, icalcomponent *existing, const struct pim_apply_opts *o)
{
	icalcomponent *out = NULL;
	const char *err = NULL;

	if (pim_task_from_eas(app, existing, o, &out, &err) < 0)
		fail_msg("apply: %s", err);
	return out;
}

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

static int64_t
t(const char *s)
{
	int64_t v;

	assert_int_equal(pim_time_parse(s, &v), 0);
	return v;
}

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

static icalcomponent *
phone_apply(struct wbxml_doc *doc, icalcomponent *existing, const struct pim_apply_opts *o)
{
	struct wbxml_doc *d = wire(doc);
	icalcomponent *out = apply(wbxml_doc_root(d), existing, o);

	wbxml_doc_free(&d);
	wbxml_doc_free(&doc);
	return out;
}

static void
same_occurrences(icalcomponent *a, icalcomponent *b)
{
	static int64_t x[600], y[600];
	int n = pim_ical_occurrences(a, ICAL_VTODO_COMPONENT, berlin, FROM, TO, x, 600);
	int m = pim_ical_occurrences(b, ICAL_VTODO_COMPONENT, berlin, FROM, TO, y, 600);

	assert_true(n > 0);
	assert_int_equal(n, m);
	assert_memory_equal(x, y, (size_t)n * sizeof(x[0]));
}

/* ---- The clients' tasks ---------------------------------------------------- */

static const struct {
	const char *file;
	const char *subject, *importance, *utcstart, *start, *utcdue, *due, *complete, *completed,
	    *sensitivity, *reminderset, *remindertime, *rtype;
	const char *keep[3];
} files[] = {
    {"apple_reminder.ics",
     "Renew passport",
     "2",
     NULL,
     NULL,
     "2026-03-19T23:00:00.000Z",
     "2026-03-20T00:00:00.000Z",
     "0",
     NULL,
     "0",
     "1",
     "2026-03-19T08:00:00.000Z",
     NULL,
     {"X-APPLE-SORT-ORDER:-36598219", "X-WR-ALARMUID:D1E2F3A4"}},
    {"thunderbird_task.ics",
     "Weekly report",
     "0",
     "2026-01-09T08:00:00.000Z",
     "2026-01-09T09:00:00.000Z",
     "2026-01-09T15:00:00.000Z",
     "2026-01-09T16:00:00.000Z",
     "0",
     NULL,
     "2",
     "1",
     "2026-01-09T14:00:00.000Z",
     "1",
     {"PERCENT-COMPLETE:50", "STATUS:IN-PROCESS", "X-MOZ-GENERATION:5"}},
    {"nextcloud_task_done.ics",
     "Order office chairs",
     "1",
     "2026-02-01T23:00:00.000Z",
     "2026-02-02T00:00:00.000Z",
     "2026-02-12T22:00:00.000Z",
     "2026-02-12T23:00:00.000Z",
     "1",
     "2026-02-10T08:15:00.000Z",
     "0",
     "0",
     NULL,
     NULL,
     {"RELATED-TO:1c2d3e4f", "X-OC-HIDESUBTASKS:0"}},
};

static void
test_clients(void **state)
{
	static const int versions[] = {120, 141, 161};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		icalcomponent *v = load(files[i].file);
		char *orig = pim_ical_string(v);

		for (size_t k = 0; k < 3; k++) {
			struct wbxml_doc *doc;
			struct wbxml_node *app = to_phone(v, versions[k], &doc);
			struct pim_apply_opts a = apply_opts(versions[k]);
			icalcomponent *back, *added;
			char *s;

			expect_text(app, "Tasks:Subject", files[i].subject);
			expect_text(app, "Tasks:Importance", files[i].importance);
			expect_text(app, "Tasks:UtcStartDate", files[i].utcstart);
			expect_text(app, "Tasks:StartDate", files[i].start);
			expect_text(app, "Tasks:UtcDueDate", files[i].utcdue);
			expect_text(app, "Tasks:DueDate", files[i].due);
			expect_text(app, "Tasks:Complete", files[i].complete);
			expect_text(app, "Tasks:DateCompleted", files[i].completed);
			expect_text(app, "Tasks:Sensitivity", files[i].sensitivity);
			expect_text(app, "Tasks:ReminderSet", files[i].reminderset);
			expect_text(app, "Tasks:ReminderTime", files[i].remindertime);
			expect_text(app, "Tasks:Recurrence/Tasks:Type", files[i].rtype);
			back = apply(app, v, &a);
			s = pim_ical_string(back);
			if (strcmp(s, orig) != 0)
				fail_msg("%s %d: a Change of nothing changed the task:\n%s",
				         files[i].file, versions[k], s);
			for (int j = 0; j < 3 && files[i].keep[j]; j++)
				has(s, files[i].keep[j]);
			free(s);
			icalcomponent_free(back);
			added = apply(app, NULL, &a);
			same_occurrences(v, added);
			icalcomponent_free(added);
			wbxml_doc_free(&doc);
		}
		free(orig);
		icalcomponent_free(v);
	}
}

/* The weekly task's pattern, with the Tasks page's own elements. */
static void
test_pattern(void **state)
{
	icalcomponent *v = load("thunderbird_task.ics");
	struct wbxml_doc *doc;
	struct wbxml_node *app = to_phone(v, 141, &doc);

	(void)state;
	expect_text(app, "Tasks:Recurrence/Tasks:Type", "1");
	expect_text(app, "Tasks:Recurrence/Tasks:DayOfWeek", "32");
	expect_text(app, "Tasks:Recurrence/Tasks:Start", "2026-01-09T08:00:00.000Z");
	expect_text(app, "Tasks:Recurrence/Tasks:Regenerate", "0");
	expect_text(app, "Tasks:Recurrence/Tasks:DeadOccur", "0");
	wbxml_doc_free(&doc);
	icalcomponent_free(v);
}

/* ---- Phones --------------------------------------------------------------- */

/* iOS (16.1) ticks the reminder off: only what changed is sent. */
static void
test_ios_complete(void **state)
{
	icalcomponent *v = load("apple_reminder.ics"), *out;
	struct pim_apply_opts a = apply_opts(161);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc);
	char *s;

	(void)state;
	add(app, "Tasks:Complete", "1");
	add(app, "Tasks:DateCompleted", "2026-03-18T17:42:10.000Z");
	out = phone_apply(doc, v, &a);
	s = pim_ical_string(out);
	has(s, "STATUS:COMPLETED");
	has(s, "COMPLETED:20260318T174210Z");
	has(s, "DUE;VALUE=DATE:20260320");
	has(s, "TRIGGER;VALUE=DATE-TIME:20260319T080000Z");
	has(s, "X-APPLE-SORT-ORDER:-36598219");
	has(s, "DTSTAMP:20260101T000000Z");
	free(s);
	/* Reopened: no completion left. */
	app = phone_doc(&doc);
	add(app, "Tasks:Complete", "0");
	{
		icalcomponent *reopened = phone_apply(doc, out, &a);
		s = pim_ical_string(reopened);
		has(s, "STATUS:NEEDS-ACTION");
		hasnt(s, "COMPLETED:");
		free(s);
		icalcomponent_free(reopened);
	}
	icalcomponent_free(out);
	/* Nextcloud's finished task reopened: its percentage goes back too. */
	icalcomponent_free(v);
	v = load("nextcloud_task_done.ics");
	app = phone_doc(&doc);
	add(app, "Tasks:Complete", "0");
	out = phone_apply(doc, v, &a);
	s = pim_ical_string(out);
	has(s, "PERCENT-COMPLETE:0");
	hasnt(s, "COMPLETED:");
	hasnt(s, "STATUS:COMPLETED");
	has(s, "RELATED-TO:1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/*
 * Android (14.1, no Supported: what is left out is deleted) moves the due
 * date, raises the importance and turns the reminder off.
 */
static void
test_android_change(void **state)
{
	icalcomponent *v = load("apple_reminder.ics"), *out;
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc), *b;
	char *s;

	(void)state;
	add(app, "Tasks:Subject", "Renew passport");
	add(app, "Tasks:Importance", "2");
	add(app, "Tasks:UtcDueDate", "2026-03-24T23:00:00.000Z");
	add(app, "Tasks:DueDate", "2026-03-25T00:00:00.000Z");
	add(app, "Tasks:Complete", "0");
	add(app, "Tasks:Sensitivity", "0");
	add(app, "Tasks:ReminderSet", "0");
	b = add(app, "AirSyncBase:Body", NULL);
	add(b, "AirSyncBase:Type", "1");
	add(b, "AirSyncBase:Data", "Photos from the booth at the station.\r\nAnd the old one.");
	out = phone_apply(doc, v, &a);
	s = pim_ical_string(out);
	has(s, "DUE;VALUE=DATE:20260325\r\n");
	has(s, "PRIORITY:1");
	hasnt(s, "BEGIN:VALARM");
	has(s, "DESCRIPTION:Photos from the booth at the station.\\nAnd the old one.");
	has(s, "X-APPLE-SORT-ORDER:-36598219");
	free(s);
	icalcomponent_free(out);

	/* A timed due date replaces a timed one in its own zone (Thunderbird's task). */
	icalcomponent_free(v);
	v = load("thunderbird_task.ics");
	app = phone_doc(&doc);
	add(app, "Tasks:Subject", "Weekly report");
	add(app, "Tasks:UtcStartDate", "2026-01-09T08:00:00.000Z");
	add(app, "Tasks:StartDate", "2026-01-09T09:00:00.000Z");
	add(app, "Tasks:UtcDueDate", "2026-01-09T16:30:00.000Z");
	add(app, "Tasks:DueDate", "2026-01-09T17:30:00.000Z");
	add(app, "Tasks:Complete", "0");
	{
		struct wbxml_node *r = add(app, "Tasks:Recurrence", NULL);
		add(r, "Tasks:Type", "1");
		add(r, "Tasks:Start", "2026-01-09T08:00:00.000Z");
		add(r, "Tasks:Interval", "1");
		add(r, "Tasks:DayOfWeek", "32");
		add(r, "Tasks:Regenerate", "0");
		add(r, "Tasks:DeadOccur", "0");
	}
	out = phone_apply(doc, v, &a);
	s = pim_ical_string(out);
	has(s, "DUE;TZID=Europe/Berlin:20260109T173000");
	has(s, "DTSTART;TZID=Europe/Berlin:20260109T090000");
	has(s, "RRULE:FREQ=WEEKLY;BYDAY=FR");
	/* Left out, not ghosted: no categories, no class, no priority, no alarm. */
	hasnt(s, "CATEGORIES");
	hasnt(s, "CLASS");
	hasnt(s, "PRIORITY");
	hasnt(s, "VALARM");
	has(s, "PERCENT-COMPLETE:50");
	free(s);
	icalcomponent_free(out);
	icalcomponent_free(v);
}

/* A phone's new task: a timed due date, an absolute reminder, a weekly rule. */
static void
test_add(void **state)
{
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc;
	struct wbxml_node *app = phone_doc(&doc), *c;
	icalcomponent *out;
	char *s;
	int64_t x[8];

	(void)state;
	a.uid = "task-uid-from-the-store";
	add(app, "Tasks:Subject", "Water the plants");
	add(app, "Tasks:Importance", "0");
	add(app, "Tasks:UtcDueDate", "2026-04-01T15:30:00.000Z");
	add(app, "Tasks:DueDate", "2026-04-01T17:30:00.000Z");
	add(app, "Tasks:Complete", "0");
	add(app, "Tasks:Sensitivity", "1");
	add(app, "Tasks:ReminderSet", "1");
	add(app, "Tasks:ReminderTime", "2026-04-01T15:00:00.000Z");
	c = add(app, "Tasks:Categories", NULL);
	add(c, "Tasks:Category", "Home");
	{
		struct wbxml_node *r = add(app, "Tasks:Recurrence", NULL);
		add(r, "Tasks:Type", "1");
		add(r, "Tasks:Start", "2026-03-31T22:00:00.000Z");
		add(r, "Tasks:Interval", "1");
		add(r, "Tasks:DayOfWeek", "8");
		add(r, "Tasks:Occurrences", "4");
		add(r, "Tasks:Regenerate", "0");
		add(r, "Tasks:DeadOccur", "0");
	}
	out = phone_apply(doc, NULL, &a);
	s = pim_ical_string(out);
	has(s, "UID:task-uid-from-the-store");
	has(s, "DUE;TZID=Europe/Berlin:20260401T173000");
	has(s, "BEGIN:VTIMEZONE");
	has(s, "PRIORITY:9");
	has(s, "CLASS:X-PERSONAL");
	has(s, "CATEGORIES:Home");
	has(s, "TRIGGER;VALUE=DATE-TIME:20260401T150000Z");
	/* A rule runs from a DTSTART: the due date's. */
	has(s, "DTSTART;TZID=Europe/Berlin:20260401T173000");
	has(s, "RRULE:FREQ=WEEKLY;COUNT=4;BYDAY=WE");
	free(s);
	assert_int_equal(pim_ical_occurrences(out, ICAL_VTODO_COMPONENT, berlin, FROM, TO, x, 8),
	                 4);
	assert_int_equal(x[1], t("2026-04-08T15:30:00.000Z"));
	assert_string_equal(pim_task_uid(out), "task-uid-from-the-store");
	icalcomponent_free(out);
	/* A wall-clock midnight due date on a new task is a date. */
	app = phone_doc(&doc);
	add(app, "Tasks:Subject", "Pay the invoice");
	add(app, "Tasks:DueDate", "2026-05-04T00:00:00.000Z");
	add(app, "Tasks:Complete", "0");
	out = phone_apply(doc, NULL, &a);
	s = pim_ical_string(out);
	has(s, "DUE;VALUE=DATE:20260504");
	free(s);
	icalcomponent_free(out);
}

static void
test_refused(void **state)
{
	icalcomponent *ev = load("google_utc.ics"), *out = NULL;
	struct pim_apply_opts a = apply_opts(141);
	struct wbxml_doc *doc, *d2;
	struct wbxml_node *app = phone_doc(&doc);
	const char *err;

	(void)state;
	add(app, "Tasks:Subject", "x");
	d2 = wire(doc);
	assert_int_equal(pim_task_from_eas(wbxml_doc_root(d2), ev, &a, &out, &err), -1);
	assert_null(out);
	{
		struct wbxml_doc *e = wbxml_doc_new();
		struct wbxml_node *r = wbxml_add_root(e, WBXML_PAGE_AIRSYNC, 0x1D);
		struct pim_eas_opts o = {.version = 141, .zone = berlin};
		assert_int_equal(pim_task_to_eas(ev, &o, r, &err), -1);
		wbxml_doc_free(&e);
	}
	assert_null(pim_task_uid(ev));
	wbxml_doc_free(&d2);
	wbxml_doc_free(&doc);
	icalcomponent_free(ev);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clients),      cmocka_unit_test(test_pattern),
	    cmocka_unit_test(test_ios_complete), cmocka_unit_test(test_android_change),
	    cmocka_unit_test(test_add),          cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
