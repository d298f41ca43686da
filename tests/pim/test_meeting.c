/*
 * test_meeting.c: invitations in mail as Email:MeetingRequest
 * (src/pim/meeting.c), as a phone decodes them.
 *
 * The invitations in meeting_data/ are shaped as Thunderbird, Outlook /
 * Exchange, Google Calendar and an iPhone send them: a single meeting in
 * a zone with its VTIMEZONE, a weekly one with an EXDATE under Outlook's
 * Windows zone name and hex UID, an all-day one, a changed occurrence
 * (RECURRENCE-ID) in UTC, a cancellation. Each is converted for EAS 14.1
 * and 16.1, sent through the WBXML encoder and decoder, and read field by
 * field; a whole Thunderbird mail goes through msgconv first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "lib/b64.h"
#include "lib/util.h"
#include "mime/msgconv.h"
#include "pim/ical.h"
#include "pim/meeting.h"
#include "pim/tz.h"

#define USER "alice@example.com"
#define NOW  1767225600 /* 2026-01-01T00:00:00Z */

static icaltimezone *berlin;

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *b;
	long n;

	snprintf(path, sizeof(path), "%s/%s", MEETING_DATA_DIR, name);
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

/*
 * The invitation ics as a phone receives it: the decoded MeetingRequest
 * (*doc to free); *kind the function's answer.
 */
static const struct wbxml_node *
to_phone_ics(const char *ics, size_t len, int version, icaltimezone *zone, int *kind,
             struct wbxml_doc **doc)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *app = wbxml_addn_root(d, "AirSync:ApplicationData");
	struct pim_meeting_opts o = {
	    .version = version, .user_email = USER, .zone = zone, .now = NOW};
	const char *err = NULL;
	struct wbxml_error werr;
	uint8_t *buf;
	size_t n;

	*kind = pim_meeting_to_eas(ics, len, &o, app, &err);
	if (*kind < 0)
		fail_msg("to EAS: %s", err);
	assert_int_equal(wbxml_encode(d, &buf, &n, &werr), WBXML_OK);
	wbxml_doc_free(&d);
	assert_int_equal(wbxml_decode(buf, n, NULL, doc, &werr), WBXML_OK);
	free(buf);
	return wbxml_find(wbxml_doc_root(*doc), "Email:MeetingRequest");
}

static const struct wbxml_node *
to_phone(const char *name, int version, icaltimezone *zone, int *kind, struct wbxml_doc **doc)
{
	size_t len;
	char *ics = slurp(name, &len);
	const struct wbxml_node *mr = to_phone_ics(ics, len, version, zone, kind, doc);

	free(ics);
	assert_non_null(mr);
	return mr;
}

static void
expect_text(const struct wbxml_node *n, const char *path, const char *want)
{
	const char *got = wbxml_find_text(n, path);

	if (want == NULL) {
		if (wbxml_find(n, path) != NULL)
			fail_msg("%s present (%s)", path, got ? got : "");
		return;
	}
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", path, got ? got : "(none)", want);
}

/* The TimeZone blob's standard bias and whether it has daylight saving time. */
static void
expect_zone(const struct wbxml_node *mr, int bias, bool dst)
{
	const char *b64 = wbxml_find_text(mr, "Email:TimeZone");
	unsigned char blob[PIM_TZ_BLOB_LEN + 3];
	size_t n;
	struct pim_eas_tz tz;

	assert_non_null(b64);
	assert_int_equal(b64_decode(b64, strlen(b64), blob, &n, NULL, NULL), 0);
	assert_int_equal(pim_tz_decode(blob, n, &tz), 0);
	assert_int_equal(tz.bias, bias);
	assert_int_equal(tz.standard_date.month != 0, dst);
}

/* The GlobalObjId's bytes (malloc'd). */
static unsigned char *
goid_of(const struct wbxml_node *mr, size_t *n)
{
	const char *b64 = wbxml_find_text(mr, "Email:GlobalObjId");
	unsigned char *g;

	assert_non_null(b64);
	g = malloc(B64_DECODED_MAX(strlen(b64)) + 1);
	assert_non_null(g);
	assert_int_equal(b64_decode(b64, strlen(b64), g, n, NULL, NULL), 0);
	return g;
}

static const unsigned char class_id[16] = {0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00,
                                           0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08};

/* A vCal-Uid GlobalObjId of uid with the instance date y/m/d (0: none). */
static void
expect_vcal_goid(const struct wbxml_node *mr, const char *uid, int y, int m, int d)
{
	size_t n, ul = strlen(uid);
	unsigned char *g = goid_of(mr, &n);
	static const unsigned char zero[16];

	assert_int_equal(n, 40 + 12 + ul + 1);
	assert_memory_equal(g, class_id, 16);
	assert_int_equal(g[16], (y >> 8) & 0xFF);
	assert_int_equal(g[17], y & 0xFF);
	assert_int_equal(g[18], m);
	assert_int_equal(g[19], d);
	assert_memory_equal(g + 20, zero, 16); /* creation time, reserved */
	assert_int_equal(g[36] | g[37] << 8 | g[38] << 16 | g[39] << 24, (int)(12 + ul + 1));
	assert_memory_equal(g + 40, "vCal-Uid\x01\x00\x00\x00", 12);
	assert_memory_equal(g + 52, uid, ul);
	assert_int_equal(g[52 + ul], 0);
	free(g);
}

static int
setup(void **state)
{
	(void)state;
	pim_ical_init();
	berlin = icaltimezone_get_builtin_timezone("Europe/Berlin");
	assert_non_null(berlin);
	return 0;
}

/* Thunderbird: one meeting in Europe/Berlin, a 15-minute alarm, RSVP asked. */
static void
test_thunderbird_request(void **state)
{
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;

	(void)state;
	mr = to_phone("thunderbird_request.ics", 141, berlin, &kind, &doc);
	assert_int_equal(kind, PIM_MEETING_REQUEST);
	expect_text(mr, "Email:AllDayEvent", "0");
	expect_text(mr, "Email:StartTime", "2027-01-15T09:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-01-15T10:00:00.000Z");
	expect_text(mr, "Email:DtStamp", "2026-12-10T08:16:40.000Z");
	expect_text(mr, "Email:InstanceType", "0");
	expect_text(mr, "Email:Location", "Room 4.12");
	expect_text(mr, "AirSyncBase:Location", NULL);
	expect_text(mr, "Email:Organizer", "\"Bob Meyer\" <bob@example.org>");
	expect_text(mr, "Email:RecurrenceId", NULL);
	expect_text(mr, "Email:Reminder", "900");
	expect_text(mr, "Email:ResponseRequested", "1");
	expect_text(mr, "Email:Recurrences", NULL);
	expect_text(mr, "Email:Sensitivity", "0");
	expect_text(mr, "Email:BusyStatus", "2");
	expect_text(mr, "Email2:MeetingMessageType", "1");
	expect_text(mr, "Calendar:UID", NULL);
	expect_zone(mr, -60, true);
	expect_vcal_goid(mr, "5f3c1e2a-7b4d-4c8e-9a10-2b6d8e4f1c3a", 0, 0, 0);
	wbxml_doc_free(&doc);

	/* 16.1: the location in AirSyncBase, the UID beside the GlobalObjId */
	mr = to_phone("thunderbird_request.ics", 161, berlin, &kind, &doc);
	expect_text(mr, "Email:Location", NULL);
	expect_text(mr, "AirSyncBase:Location/AirSyncBase:DisplayName", "Room 4.12");
	expect_text(mr, "Calendar:UID", "5f3c1e2a-7b4d-4c8e-9a10-2b6d8e4f1c3a");
	expect_text(mr, "Email:StartTime", "2027-01-15T09:00:00.000Z");
	wbxml_doc_free(&doc);

	/* 12.0 knows neither MeetingMessageType nor DisallowNewTimeProposal */
	mr = to_phone("thunderbird_request.ics", 120, berlin, &kind, &doc);
	expect_text(mr, "Email2:MeetingMessageType", NULL);
	wbxml_doc_free(&doc);
}

/* Outlook: weekly on Monday and Wednesday under a Windows zone name, an EXDATE, a hex UID. */
static void
test_outlook_weekly(void **state)
{
	static const char hex[] =
	    "040000008200E00074C5B7101A82E00800000000D0A6C6F3A1D2DB01000000000"
	    "000000010000000F1B3E0F5A5C0A84BA1F2D8E5C3B4A291";
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;
	unsigned char *g;
	size_t n;

	(void)state;
	mr = to_phone("outlook_weekly.ics", 141, berlin, &kind, &doc);
	assert_int_equal(kind, PIM_MEETING_REQUEST);
	expect_text(mr, "Email:StartTime", "2027-01-11T13:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-01-11T13:30:00.000Z");
	expect_text(mr, "Email:InstanceType", "1");
	expect_text(mr, "Email:Organizer", "\"Erik Lund\" <erik@example.org>");
	expect_text(mr, "Email:Location", "Teams");
	expect_text(mr, "Email:Reminder", "600");
	expect_text(mr, "Email:BusyStatus", "2"); /* what the organizer intends, not his own */
	expect_text(mr, "Email:DisallowNewTimeProposal", "1");
	expect_text(mr, "Email:Recurrences/Email:Recurrence/Email:Recurrence_Type", "1");
	expect_text(mr, "Email:Recurrences/Email:Recurrence/Email:Recurrence_Interval", "1");
	expect_text(mr, "Email:Recurrences/Email:Recurrence/Email:Recurrence_DayOfWeek", "10");
	expect_text(mr, "Email:Recurrences/Email:Recurrence/Email:Recurrence_Until",
	            "2027-03-29T12:00:00.000Z");
	expect_text(mr, "Email:Recurrences/Email:Recurrence/Email:Recurrence_Occurrences", NULL);
	expect_zone(mr, -60, true);
	/* the UID is an Outlook id already: its own bytes */
	g = goid_of(mr, &n);
	assert_int_equal(n, (sizeof(hex) - 1) / 2);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		assert_int_equal(g[i], v);
	}
	free(g);
	wbxml_doc_free(&doc);
}

/* Google: an all-day meeting over two days, transparent. */
static void
test_google_allday(void **state)
{
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;

	(void)state;
	/* before 16.0: midnights in the user's zone, and that zone's blob */
	mr = to_phone("google_allday.ics", 141, berlin, &kind, &doc);
	expect_text(mr, "Email:AllDayEvent", "1");
	expect_text(mr, "Email:StartTime", "2027-02-28T23:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-03-02T23:00:00.000Z");
	expect_text(mr, "Email:BusyStatus", "0");
	expect_text(mr, "Email:Location", NULL);
	expect_text(mr, "Email:Reminder", NULL);
	expect_text(mr, "Email:Organizer", "\"Frank Ito\" <frank.ito@gmail.com>");
	expect_zone(mr, -60, true);
	expect_vcal_goid(mr, "1a2b3c4d5e6f7g8h9i0jklmnop@google.com", 0, 0, 0);
	wbxml_doc_free(&doc);
	/* 16.x: UTC midnights */
	mr = to_phone("google_allday.ics", 160, berlin, &kind, &doc);
	expect_text(mr, "Email:StartTime", "2027-03-01T00:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-03-03T00:00:00.000Z");
	expect_zone(mr, 0, false);
	wbxml_doc_free(&doc);
}

/* Google: one occurrence moved (RECURRENCE-ID), in UTC, a second SEQUENCE. */
static void
test_google_exception(void **state)
{
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;

	(void)state;
	mr = to_phone("google_exception.ics", 141, berlin, &kind, &doc);
	assert_int_equal(kind, PIM_MEETING_REQUEST);
	expect_text(mr, "Email:StartTime", "2027-02-04T16:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-02-04T17:00:00.000Z");
	expect_text(mr, "Email:InstanceType", "3");
	expect_text(mr, "Email:RecurrenceId", "2027-02-03T15:00:00.000Z");
	expect_text(mr, "Email:Recurrences", NULL);
	expect_text(mr, "Email:ResponseRequested", "0"); /* RSVP=FALSE */
	expect_text(mr, "Email:Reminder", NULL);         /* an e-mail alarm is not shown */
	expect_text(mr, "Email2:MeetingMessageType", "2");
	expect_zone(mr, 0, false);
	expect_vcal_goid(mr, "7kq2c9v0m3h1r5s8t4u6w2x0y9@google.com", 2027, 2, 3);
	wbxml_doc_free(&doc);
}

/* iPhone: a cancellation in America/New_York. */
static void
test_iphone_cancel(void **state)
{
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;

	(void)state;
	mr = to_phone("iphone_cancel.ics", 141, berlin, &kind, &doc);
	assert_int_equal(kind, PIM_MEETING_CANCEL);
	expect_text(mr, "Email:StartTime", "2027-04-05T13:00:00.000Z");
	expect_text(mr, "Email:EndTime", "2027-04-05T14:00:00.000Z");
	expect_text(mr, "Email:BusyStatus", "0");
	expect_text(mr, "Email:ResponseRequested", "0");
	expect_text(mr, "Email:Reminder", NULL);
	expect_text(mr, "Email:Organizer", "\"Carol Jones\" <carol@example.org>");
	expect_text(mr, "Email2:MeetingMessageType", "0");
	expect_zone(mr, 300, true);
	expect_vcal_goid(mr, "3F0B7A2E-91C4-4D5B-8E6F-2A1C9D8B7E60", 0, 0, 0);
	wbxml_doc_free(&doc);
}

/* What is no invitation leaves the ApplicationData as it was. */
static void
test_not_invitations(void **state)
{
	static const char *const bad[] = {
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:x\r\n"
	    "DTSTART:20270101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
	    "DTSTART:20270101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VTODO\r\nUID:x\r\n"
	    "END:VTODO\r\nEND:VCALENDAR\r\n",
	    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n",
	    "not a calendar",
	};
	struct pim_meeting_opts o = {.version = 161, .user_email = USER, .now = NOW};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wbxml_doc *d = wbxml_doc_new();
		struct wbxml_node *app = wbxml_addn_root(d, "AirSync:ApplicationData");
		const char *err = NULL;

		assert_int_equal(pim_meeting_to_eas(bad[i], strlen(bad[i]), &o, app, &err), -1);
		assert_non_null(err);
		assert_null(app->first_child);
		wbxml_doc_free(&d);
	}
}

/* A whole Thunderbird mail: msgconv finds the invitation and names the class. */
static void
test_thunderbird_mail(void **state)
{
	size_t len;
	char *raw = slurp("thunderbird_mail.eml", &len);
	struct msgconv_msg m;
	const char *err = NULL;
	struct wbxml_doc *doc;
	int kind;
	const struct wbxml_node *mr;

	(void)state;
	assert_int_equal(msgconv_parse(raw, len, NULL, &m, &err), 0);
	assert_string_equal(m.message_class, "IPM.Schedule.Meeting.Request");
	assert_non_null(m.calendar);
	mr = to_phone_ics(m.calendar, m.calendar_len, 141, berlin, &kind, &doc);
	assert_non_null(mr);
	expect_text(mr, "Email:StartTime", "2027-01-15T09:00:00.000Z");
	wbxml_doc_free(&doc);
	msgconv_msg_clear(&m);
	free(raw);
}

/* The GlobalObjId's layout, byte for byte, for a short UID and an instance. */
static void
test_goid_layout(void **state)
{
	static const unsigned char want[] = {
	    0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82,
	    0xE0, 0x08, 0x07, 0xEB, 0x0C, 0x1F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x00, 0x00, 0x00, 'v',  'C',
	    'a',  'l',  '-',  'U',  'i',  'd',  0x01, 0x00, 0x00, 0x00, 'a',  'b',  0x00};
	size_t n;
	uint8_t *g;

	(void)state;
	g = pim_meeting_goid("ab", 2027, 12, 31, &n);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(g, want, n);
	free(g);
	/* a hex UID of the wrong class is wrapped as any other UID */
	g = pim_meeting_goid(
	    "0500000082000000000000000000000000000000000000000000000000000000000000"
	    "0000000000",
	    0, 0, 0, &n);
	assert_int_equal(n, 40 + 12 + 80 + 1);
	free(g);
}

/* The properties of kind in vcal's first VEVENT. */
static int
props(icalcomponent *vcal, icalproperty_kind kind)
{
	icalcomponent *e = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT);
	int n = 0;

	assert_non_null(e);
	for (icalproperty *p = icalcomponent_get_first_property(e, kind); p;
	     p = icalcomponent_get_next_property(e, kind))
		n++;
	return n;
}

static icalcomponent *
parse_text(const char *s)
{
	const char *err = NULL;
	icalcomponent *v = pim_ical_parse(s, strlen(s), &err);

	if (v == NULL)
		fail_msg("%s", err);
	return v;
}

/* The PARTSTAT of who's ATTENDEE in vcal's first VEVENT, "" when not listed. */
static const char *
partstat_of(icalcomponent *vcal, const char *who, bool *rsvp)
{
	icalcomponent *e = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT);

	for (icalproperty *p = icalcomponent_get_first_property(e, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(e, ICAL_ATTENDEE_PROPERTY)) {
		const char *v = icalproperty_get_attendee(p);
		if (strcasecmp(v + 7, who) != 0)
			continue;
		icalparameter *k = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);
		if (rsvp != NULL)
			*rsvp = icalproperty_get_first_parameter(p, ICAL_RSVP_PARAMETER) != NULL;
		return k ? icalparameter_enum_to_string(icalparameter_get_partstat(k)) : "NONE";
	}
	return "";
}

/* Accepting Thunderbird's invitation: the object to keep and the REPLY to Bob. */
static void
test_respond_accept(void **state)
{
	size_t len;
	char *ics = slurp("thunderbird_request.ics", &len);
	struct pim_meeting_answer a;
	const char *err = NULL;
	icalcomponent *obj, *rep;
	bool rsvp = true;

	(void)state;
	assert_int_equal(
	    pim_meeting_respond(ics, len, USER, PIM_MEETING_ACCEPT, NULL, NOW, &a, &err), 0);
	assert_string_equal(a.uid, "5f3c1e2a-7b4d-4c8e-9a10-2b6d8e4f1c3a");
	assert_string_equal(a.organizer, "bob@example.org");
	assert_string_equal(a.summary, "Budget review");
	obj = parse_text(a.object);
	assert_null(icalcomponent_get_first_property(obj, ICAL_METHOD_PROPERTY));
	assert_string_equal(partstat_of(obj, USER, &rsvp), "ACCEPTED");
	assert_false(rsvp);
	assert_string_equal(partstat_of(obj, "dave@example.net", NULL), "NEEDS-ACTION");
	assert_non_null(icalcomponent_get_first_component(obj, ICAL_VTIMEZONE_COMPONENT));
	assert_non_null(strstr(a.object, "DTSTART;TZID=Europe/Berlin:20270115T100000"));
	rep = parse_text(a.reply);
	assert_int_equal(
	    icalproperty_get_method(icalcomponent_get_first_property(rep, ICAL_METHOD_PROPERTY)),
	    ICAL_METHOD_REPLY);
	assert_int_equal(props(rep, ICAL_ATTENDEE_PROPERTY), 1);
	assert_int_equal(props(rep, ICAL_ORGANIZER_PROPERTY), 1);
	assert_int_equal(props(rep, ICAL_UID_PROPERTY), 1);
	assert_string_equal(partstat_of(rep, USER, NULL), "ACCEPTED");
	assert_non_null(strstr(a.reply, "DTSTAMP:20260101T000000Z"));
	assert_null(strstr(a.reply, "VALARM"));
	icalcomponent_free(obj);
	icalcomponent_free(rep);
	pim_meeting_answer_clear(&a);
	free(ics);
}

/* Declining keeps nothing; a changed occurrence's REPLY names it; what cannot be answered. */
static void
test_respond_others(void **state)
{
	size_t len;
	char *ics = slurp("google_exception.ics", &len), *cancel;
	struct pim_meeting_answer a;
	const char *err = NULL;
	icalcomponent *rep;

	(void)state;
	assert_int_equal(
	    pim_meeting_respond(ics, len, USER, PIM_MEETING_DECLINE, NULL, NOW, &a, &err), 0);
	assert_null(a.object);
	rep = parse_text(a.reply);
	assert_string_equal(partstat_of(rep, USER, NULL), "DECLINED");
	assert_non_null(strstr(a.reply, "RECURRENCE-ID:20270203T150000Z"));
	assert_non_null(strstr(a.reply, "SEQUENCE:1"));
	icalcomponent_free(rep);
	pim_meeting_answer_clear(&a);

	/* a user the invitation does not list (a list's member) answers as herself */
	assert_int_equal(pim_meeting_respond(ics, len, "zoe@example.com", PIM_MEETING_TENTATIVE,
	                                     NULL, NOW, &a, &err),
	                 0);
	rep = parse_text(a.reply);
	assert_string_equal(partstat_of(rep, "zoe@example.com", NULL), "TENTATIVE");
	assert_int_equal(props(rep, ICAL_ATTENDEE_PROPERTY), 1);
	icalcomponent_free(rep);
	rep = parse_text(a.object);
	assert_string_equal(partstat_of(rep, "zoe@example.com", NULL), "TENTATIVE");
	assert_string_equal(partstat_of(rep, USER, NULL), "ACCEPTED");
	icalcomponent_free(rep);
	pim_meeting_answer_clear(&a);

	assert_int_equal(pim_meeting_respond(ics, len, USER, 4, NULL, NOW, &a, &err), -1);
	assert_int_equal(pim_meeting_respond(ics, len, NULL, 1, NULL, NOW, &a, &err), -1);
	free(ics);
	cancel = slurp("iphone_cancel.ics", &len);
	assert_int_equal(pim_meeting_respond(cancel, len, USER, 1, NULL, NOW, &a, &err), -1);
	assert_null(a.reply);
	free(cancel);
}

/* One occurrence of Outlook's weekly meeting: its override, a declined one an EXDATE. */
static void
test_respond_instance(void **state)
{
	size_t len, tlen;
	char *ics = slurp("outlook_weekly.ics", &len),
	     *single = slurp("thunderbird_request.ics", &tlen);
	struct pim_meeting_answer a;
	const char *err = NULL;
	icalcomponent *obj, *rep;
	int64_t wed = 1799845200; /* 2027-01-13T13:00:00Z, Wednesday 14:00 in Berlin */
	int64_t mon = 1800277200; /* 2027-01-18T13:00:00Z */
	int64_t tue = 1799758800; /* 2027-01-12T13:00:00Z: no occurrence */
	int64_t exd = 1800450000; /* 2027-01-20T13:00:00Z: the EXDATE */

	(void)state;
	assert_int_equal(
	    pim_meeting_respond(ics, len, USER, PIM_MEETING_ACCEPT, &wed, NOW, &a, &err), 0);
	obj = parse_text(a.object);
	assert_int_equal(icalcomponent_count_components(obj, ICAL_VEVENT_COMPONENT), 2);
	assert_string_equal(partstat_of(obj, USER, NULL), "NEEDS-ACTION"); /* the master's */
	assert_non_null(
	    strstr(a.object, "RECURRENCE-ID;TZID=W. Europe Standard Time:20270113T140000"));
	assert_non_null(strstr(a.object, "DTSTART;TZID=W. Europe Standard Time:20270113T140000"));
	assert_non_null(strstr(a.object, "DTEND;TZID=W. Europe Standard Time:20270113T143000"));
	assert_non_null(strstr(a.object, "PARTSTAT=ACCEPTED"));
	rep = parse_text(a.reply);
	assert_string_equal(partstat_of(rep, USER, NULL), "ACCEPTED");
	assert_non_null(strstr(a.reply, "RECURRENCE-ID:20270113T130000Z"));
	icalcomponent_free(rep);
	/* the same occurrence again: its override answered in place */
	char *again = xstrdup(a.object);
	pim_meeting_answer_clear(&a);
	assert_int_equal(pim_meeting_respond(again, strlen(again), USER, PIM_MEETING_TENTATIVE,
	                                     &wed, NOW, &a, &err),
	                 0);
	icalcomponent_free(obj);
	obj = parse_text(a.object);
	assert_int_equal(icalcomponent_count_components(obj, ICAL_VEVENT_COMPONENT), 2);
	assert_non_null(strstr(a.object, "PARTSTAT=TENTATIVE"));
	assert_null(strstr(a.object, "PARTSTAT=ACCEPTED"));
	icalcomponent_free(obj);
	free(again);
	pim_meeting_answer_clear(&a);

	/* declined: an EXDATE, the object kept */
	assert_int_equal(
	    pim_meeting_respond(ics, len, USER, PIM_MEETING_DECLINE, &mon, NOW, &a, &err), 0);
	assert_non_null(a.object);
	obj = parse_text(a.object);
	assert_int_equal(icalcomponent_count_components(obj, ICAL_VEVENT_COMPONENT), 1);
	assert_non_null(strstr(a.object, "20270118T140000"));
	rep = parse_text(a.reply);
	assert_string_equal(partstat_of(rep, USER, NULL), "DECLINED");
	assert_non_null(strstr(a.reply, "RECURRENCE-ID:20270118T130000Z"));
	icalcomponent_free(rep);
	icalcomponent_free(obj);
	pim_meeting_answer_clear(&a);

	/* no such occurrence; a meeting that does not repeat */
	assert_int_equal(pim_meeting_respond(ics, len, USER, 1, &tue, NOW, &a, &err), -1);
	assert_int_equal(pim_meeting_respond(ics, len, USER, 1, &exd, NOW, &a, &err), -1);
	assert_int_equal(pim_meeting_respond(single, tlen, USER, 1, &wed, NOW, &a, &err), -1);
	assert_null(a.object);
	free(ics);
	free(single);
}

/* s with its first from replaced by to (malloc'd); from must be there. */
static char *
subst(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);

	assert_non_null(p);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static char *
subst2(char *s, const char *from, const char *to)
{
	char *r = subst(s, from, to);

	free(s);
	return r;
}

/*
 * Which revision is newer (RFC 5546 2.1.4, 2.1.5): Bob's update of the
 * Thunderbird invitation (SEQUENCE 1, moved an hour later, another room)
 * against the first one, in both orders; at equal SEQUENCE the later
 * DTSTAMP; the calendar's object made of the update (no METHOD, the
 * user's PARTSTAT) against the first invitation; another UID or no
 * calendar is never newer.
 */
static void
test_newer_revision(void **state)
{
	size_t len;
	char *orig = slurp("thunderbird_request.ics", &len), *upd, *stamp, *other, *noseq;
	struct pim_meeting_answer a;
	const char *err = NULL;

	(void)state;
	upd = subst(orig, "SEQUENCE:0", "SEQUENCE:1");
	upd = subst2(upd, "DTSTAMP:20261210T081640Z", "DTSTAMP:20261211T120000Z");
	stamp = subst(orig, "DTSTAMP:20261210T081640Z", "DTSTAMP:20261212T090000Z");
	other = subst(upd, "UID:5f3c1e2a", "UID:6f3c1e2a");
	noseq = subst(orig, "SEQUENCE:0\r\n", "");
	if (strstr(orig, "\r\n") == NULL) {
		free(noseq);
		noseq = subst(orig, "SEQUENCE:0\n", "");
	}
	assert_int_equal(pim_meeting_newer(upd, strlen(upd), orig, len), 1);
	assert_int_equal(pim_meeting_newer(orig, len, upd, strlen(upd)), 0);
	assert_int_equal(pim_meeting_newer(orig, len, orig, len), 0);
	/* equal SEQUENCE: the later DTSTAMP, whatever the order of the texts */
	assert_int_equal(pim_meeting_newer(stamp, strlen(stamp), orig, len), 1);
	assert_int_equal(pim_meeting_newer(orig, len, stamp, strlen(stamp)), 0);
	/* a higher SEQUENCE wins over a later DTSTAMP */
	assert_int_equal(pim_meeting_newer(stamp, strlen(stamp), upd, strlen(upd)), 0);
	assert_int_equal(pim_meeting_newer(upd, strlen(upd), stamp, strlen(stamp)), 1);
	/* no SEQUENCE is 0 */
	assert_null(strstr(noseq, "SEQUENCE"));
	assert_int_equal(pim_meeting_newer(upd, strlen(upd), noseq, strlen(noseq)), 1);
	assert_int_equal(pim_meeting_newer(noseq, strlen(noseq), upd, strlen(upd)), 0);
	/* the calendar's object of the update, against the first invitation */
	assert_int_equal(
	    pim_meeting_respond(upd, strlen(upd), USER, PIM_MEETING_ACCEPT, NULL, NOW, &a, &err),
	    0);
	assert_int_equal(pim_meeting_newer(a.object, strlen(a.object), orig, len), 1);
	assert_int_equal(pim_meeting_newer(orig, len, a.object, strlen(a.object)), 0);
	pim_meeting_answer_clear(&a);
	/* another meeting, or no calendar: not newer */
	assert_int_equal(pim_meeting_newer(other, strlen(other), orig, len), 0);
	assert_int_equal(pim_meeting_newer("BEGIN:VCALENDAR\r\n", 17, orig, len), 0);
	assert_int_equal(pim_meeting_newer(upd, strlen(upd), "no calendar", 11), 0);
	free(orig);
	free(upd);
	free(stamp);
	free(other);
	free(noseq);
}

/*
 * The first invitation answered (tentative) after the user accepted the
 * update: the calendar's event is newer, and the answer made onto it
 * keeps its time, room, SEQUENCE, alarm and the other attendee, the
 * user's PARTSTAT set; the REPLY carries SEQUENCE 1.
 */
static void
test_respond_onto_newer(void **state)
{
	size_t len;
	char *orig = slurp("thunderbird_request.ics", &len), *upd, *held;
	struct pim_meeting_answer a;
	const char *err = NULL;
	icalcomponent *obj, *rep;

	(void)state;
	upd = subst(orig, "SEQUENCE:0", "SEQUENCE:1");
	upd = subst2(upd, "DTSTART;TZID=Europe/Berlin:20270115T100000",
	             "DTSTART;TZID=Europe/Berlin:20270115T140000");
	upd = subst2(upd, "DTEND;TZID=Europe/Berlin:20270115T110000",
	             "DTEND;TZID=Europe/Berlin:20270115T150000");
	upd = subst2(upd, "LOCATION:Room 4.12", "LOCATION:Room 5.01");
	assert_int_equal(
	    pim_meeting_respond(upd, strlen(upd), USER, PIM_MEETING_ACCEPT, NULL, NOW, &a, &err),
	    0);
	held = xstrdup(a.object);
	pim_meeting_answer_clear(&a);

	assert_int_equal(pim_meeting_newer(held, strlen(held), orig, len), 1);
	assert_int_equal(pim_meeting_respond(held, strlen(held), USER, PIM_MEETING_TENTATIVE, NULL,
	                                     NOW + 60, &a, &err),
	                 0);
	obj = parse_text(a.object);
	assert_string_equal(partstat_of(obj, USER, NULL), "TENTATIVE");
	assert_string_equal(partstat_of(obj, "dave@example.net", NULL), "NEEDS-ACTION");
	assert_int_equal(props(obj, ICAL_ATTENDEE_PROPERTY), 2);
	assert_non_null(strstr(a.object, "DTSTART;TZID=Europe/Berlin:20270115T140000"));
	assert_non_null(strstr(a.object, "DTEND;TZID=Europe/Berlin:20270115T150000"));
	assert_non_null(strstr(a.object, "LOCATION:Room 5.01"));
	assert_non_null(strstr(a.object, "SEQUENCE:1"));
	assert_non_null(strstr(a.object, "BEGIN:VALARM"));
	assert_null(strstr(a.object, "20270115T100000"));
	assert_null(strstr(a.object, "Room 4.12"));
	rep = parse_text(a.reply);
	assert_string_equal(partstat_of(rep, USER, NULL), "TENTATIVE");
	assert_non_null(strstr(a.reply, "SEQUENCE:1"));
	assert_null(strstr(a.reply, "SEQUENCE:0"));
	icalcomponent_free(rep);
	icalcomponent_free(obj);
	pim_meeting_answer_clear(&a);
	free(held);
	free(upd);
	free(orig);
}

/*
 * One occurrence of Outlook's weekly meeting declined from the mail after
 * the series was accepted: made onto the calendar's event (the invitation
 * no newer), it gains the EXDATE next to the one it had, the user's
 * PARTSTAT on the series stays ACCEPTED.
 */
static void
test_respond_decline_onto_held(void **state)
{
	size_t len;
	char *ics = slurp("outlook_weekly.ics", &len), *held;
	struct pim_meeting_answer a;
	const char *err = NULL;
	icalcomponent *obj, *m;
	int64_t mon = 1800277200; /* 2027-01-18T13:00:00Z */
	int n = 0;

	(void)state;
	assert_int_equal(
	    pim_meeting_respond(ics, len, USER, PIM_MEETING_ACCEPT, NULL, NOW, &a, &err), 0);
	held = xstrdup(a.object);
	pim_meeting_answer_clear(&a);
	assert_int_equal(pim_meeting_newer(held, strlen(held), ics, len), 0);
	assert_int_equal(pim_meeting_newer(ics, len, held, strlen(held)), 0);

	assert_int_equal(
	    pim_meeting_respond(held, strlen(held), USER, PIM_MEETING_DECLINE, &mon, NOW, &a, &err),
	    0);
	assert_non_null(a.object);
	obj = parse_text(a.object);
	assert_int_equal(icalcomponent_count_components(obj, ICAL_VEVENT_COMPONENT), 1);
	m = icalcomponent_get_first_component(obj, ICAL_VEVENT_COMPONENT);
	for (icalproperty *p = icalcomponent_get_first_property(m, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_EXDATE_PROPERTY))
		n++;
	assert_int_equal(n, 2);
	assert_non_null(strstr(a.object, "20270118T140000"));
	assert_non_null(strstr(a.object, "20270120T140000"));
	assert_string_equal(partstat_of(obj, USER, NULL), "ACCEPTED");
	assert_non_null(strstr(a.reply, "RECURRENCE-ID:20270118T130000Z"));
	assert_non_null(strstr(a.reply, "PARTSTAT=DECLINED"));
	icalcomponent_free(obj);
	pim_meeting_answer_clear(&a);
	free(held);
	free(ics);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_thunderbird_request),
	    cmocka_unit_test(test_outlook_weekly),
	    cmocka_unit_test(test_google_allday),
	    cmocka_unit_test(test_google_exception),
	    cmocka_unit_test(test_iphone_cancel),
	    cmocka_unit_test(test_not_invitations),
	    cmocka_unit_test(test_thunderbird_mail),
	    cmocka_unit_test(test_goid_layout),
	    cmocka_unit_test(test_respond_accept),
	    cmocka_unit_test(test_respond_others),
	    cmocka_unit_test(test_respond_instance),
	    cmocka_unit_test(test_newer_revision),
	    cmocka_unit_test(test_respond_onto_newer),
	    cmocka_unit_test(test_respond_decline_onto_held),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
