/*
 * meeting.c: an iTIP invitation as Email:MeetingRequest (meeting.h).
 *
 * The calendar is read with the capped parser of ical.c; the event of the
 * invitation is its master VEVENT (no RECURRENCE-ID), else its first
 * override (an invitation to, or the cancellation of, one occurrence). Its
 * times are read as event.c reads a calendar item's (a date is an all-day
 * event; EAS 16.0 sends those as UTC midnights), its RRULE becomes an EAS
 * pattern through recur.c, its zone the TimeZone blob through tz.c. What
 * MS-ASEMAIL spells differently from the Calendar class is spelled here:
 * every date-time in the extended form, the reminder in seconds, the
 * organizer as one address, the recurrence on the Email page's own tokens.
 */
#include "pim/meeting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/wbxml.h"
#include "lib/b64.h"
#include "lib/util.h"
#include "pim/event.h"
#include "pim/ical_int.h"

#define EMAIL  WBXML_PAGE_EMAIL
#define EMAIL2 WBXML_PAGE_EMAIL2
#define ASB    WBXML_PAGE_AIRSYNCBASE
#define CAL    WBXML_PAGE_CALENDAR

/* Email code page (MS-ASWBXML 2.1.2.1.3). */
enum {
	EM_ALLDAYEVENT = 0x1A,
	EM_DTSTAMP = 0x1D,
	EM_ENDTIME = 0x1E,
	EM_INSTANCETYPE = 0x1F,
	EM_BUSYSTATUS = 0x20,
	EM_LOCATION = 0x21,
	EM_MEETINGREQUEST = 0x22,
	EM_ORGANIZER = 0x23,
	EM_RECURRENCEID = 0x24,
	EM_REMINDER = 0x25,
	EM_RESPONSEREQUESTED = 0x26,
	EM_RECURRENCES = 0x27,
	EM_RECURRENCE = 0x28,
	EM_REC_TYPE = 0x29,
	EM_REC_UNTIL = 0x2A,
	EM_REC_OCCURRENCES = 0x2B,
	EM_REC_INTERVAL = 0x2C,
	EM_REC_DAYOFWEEK = 0x2D,
	EM_REC_DAYOFMONTH = 0x2E,
	EM_REC_WEEKOFMONTH = 0x2F,
	EM_REC_MONTHOFYEAR = 0x30,
	EM_STARTTIME = 0x31,
	EM_SENSITIVITY = 0x32,
	EM_TIMEZONE = 0x33,
	EM_GLOBALOBJID = 0x34,
	EM_DISALLOWNEWTIMEPROPOSAL = 0x3F,
};

/* Email2 code page (MS-ASWBXML 2.1.2.1.23). */
enum { EM2_MEETINGMESSAGETYPE = 0x13 };

#define GOID_HEAD     40   /* class id, instance date, creation time, reserved, size */
#define GOID_MAX_UID  2048 /* longer UIDs get no GlobalObjId */
#define ORGANIZER_MAX 512  /* bytes of a CN or address written */

static const uint8_t goid_class[16] = {0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00,
                                       0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0, 0x08};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A UID written as the hex of an Outlook id: its bytes (malloc'd), else NULL. */
static uint8_t *
hex_goid(const char *uid, size_t n, size_t *len_r)
{
	uint8_t *b;

	if (n % 2 != 0 || n / 2 < GOID_HEAD)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (hexval(uid[i]) < 0)
			return NULL;
	b = xmalloc(n / 2);
	for (size_t i = 0; i < n / 2; i++)
		b[i] = (uint8_t)(hexval(uid[2 * i]) << 4 | hexval(uid[2 * i + 1]));
	if (memcmp(b, goid_class, sizeof(goid_class)) != 0) {
		free(b);
		return NULL;
	}
	*len_r = n / 2;
	return b;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

uint8_t *
pim_meeting_goid(const char *uid, int year, int month, int day, size_t *len_r)
{
	static const char vcal[] = "vCal-Uid\x01\x00\x00\x00"; /* marker and version 1 */
	size_t n = strlen(uid), len;
	uint8_t *b = hex_goid(uid, n, &len);

	if (b == NULL) {
		size_t data = sizeof(vcal) - 1 + n + 1;
		len = GOID_HEAD + data;
		b = xcalloc(1, len);
		memcpy(b, goid_class, sizeof(goid_class));
		put_le32(b + 36, (uint32_t)data);
		memcpy(b + GOID_HEAD, vcal, sizeof(vcal) - 1);
		memcpy(b + GOID_HEAD + sizeof(vcal) - 1, uid, n);
	}
	if (year > 0 && year < 65536 && month >= 1 && month <= 12 && day >= 1 && day <= 31) {
		b[16] = (uint8_t)(year >> 8);
		b[17] = (uint8_t)year;
		b[18] = (uint8_t)month;
		b[19] = (uint8_t)day;
	} else
		memset(b + 16, 0, 4);
	*len_r = len;
	return b;
}

/* ---- Reading the invitation -------------------------------------------- */

/* An ORGANIZER's or ATTENDEE's address without mailto:, or NULL. */
static const char *
address_of(icalproperty *p)
{
	const char *v = p ? icalproperty_get_value_as_string(p) : NULL;

	if (v == NULL)
		return NULL;
	if (strncasecmp(v, "mailto:", 7) == 0)
		v += 7;
	return *v ? v : NULL;
}

static const char *
param(icalproperty *p, icalparameter_kind kind)
{
	icalparameter *k = icalproperty_get_first_parameter(p, kind);
	const char *s = k ? icalparameter_get_xvalue(k) : NULL;

	if (k != NULL && kind == ICAL_CN_PARAMETER)
		s = icalparameter_get_cn(k);
	return s && *s ? s : NULL;
}

/* The user's ATTENDEE, or NULL. */
static icalproperty *
user_attendee(icalcomponent *c, const char *user)
{
	if (user == NULL)
		return NULL;
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
		const char *a = address_of(p);
		if (a != NULL && strcasecmp(a, user) == 0)
			return p;
	}
	return NULL;
}

/* Organizer: "Name" <address>, or the address alone. */
static void
add_organizer(struct wbxml_node *mr, icalcomponent *c)
{
	icalproperty *op = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);
	const char *addr = address_of(op), *cn;
	struct sbuf b = {0};
	char *t;

	if (addr == NULL || strlen(addr) > ORGANIZER_MAX)
		return;
	cn = param(op, ICAL_CN_PARAMETER);
	if (cn != NULL && strlen(cn) <= ORGANIZER_MAX) {
		sbuf_add(&b, "\"");
		for (const char *s = cn; *s; s++)
			if (*s != '"' && *s != '\\')
				sbuf_addn(&b, s, 1);
		sbuf_printf(&b, "\" <%s>", addr);
	} else
		sbuf_add(&b, addr);
	t = sbuf_take(&b);
	pim_add_text(mr, EMAIL, EM_ORGANIZER, t);
	free(t);
}

static void
add_location(struct wbxml_node *mr, icalcomponent *c, int version)
{
	const char *loc = pim_text(c, ICAL_LOCATION_PROPERTY);
	struct wbxml_node *l;

	if (loc == NULL || *loc == '\0')
		return;
	if (version < 160) {
		pim_add_text(mr, EMAIL, EM_LOCATION, loc);
		return;
	}
	l = wbxml_add(mr, ASB, ASB_LOCATION);
	pim_add_text(l, ASB, ASB_DISPLAYNAME, loc);
}

/* The Email page's Recurrence (MS-ASEMAIL 2.2.2.60) of an EAS pattern. */
static void
add_recurrence(struct wbxml_node *mr, const struct pim_recur *r)
{
	struct wbxml_node *rec =
	    wbxml_add(wbxml_add(mr, EMAIL, EM_RECURRENCES), EMAIL, EM_RECURRENCE);

	pim_add_int(rec, EMAIL, EM_REC_TYPE, r->type);
	pim_add_int(rec, EMAIL, EM_REC_INTERVAL, r->interval > 0 ? r->interval : 1);
	if (r->has_until)
		pim_add_long(rec, EMAIL, EM_REC_UNTIL, r->until);
	if (r->occurrences > 0)
		pim_add_int(rec, EMAIL, EM_REC_OCCURRENCES, r->occurrences);
	if (r->type == 3 || r->type == 6)
		pim_add_int(rec, EMAIL, EM_REC_WEEKOFMONTH, r->wom);
	if (r->type == 2 || r->type == 5)
		pim_add_int(rec, EMAIL, EM_REC_DAYOFMONTH, r->dom);
	if (r->dow > 0)
		pim_add_int(rec, EMAIL, EM_REC_DAYOFWEEK, r->dow);
	if (r->type == 5 || r->type == 6)
		pim_add_int(rec, EMAIL, EM_REC_MONTHOFYEAR, r->moy);
}

/* BusyStatus: free for a cancellation; else what the organizer intends (Outlook's X-), else busy.
 */
static int
busy_status(icalcomponent *c, int kind)
{
	static const char *const names[] = {"FREE", "TENTATIVE", "BUSY", "OOF"};
	const char *cdo = pim_x_text(c, "X-MICROSOFT-CDO-INTENDEDSTATUS");
	icalproperty *t = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);

	if (kind == PIM_MEETING_CANCEL)
		return 0;
	for (int i = 0; cdo && i < 4; i++)
		if (strcasecmp(cdo, names[i]) == 0)
			return i;
	if (t != NULL && icalproperty_get_transp(t) == ICAL_TRANSP_TRANSPARENT)
		return 0;
	return 2;
}

/* ResponseRequested: the user's RSVP when the invitation says it, else 1. */
static int
response_requested(icalcomponent *c, const char *user)
{
	icalproperty *me = user_attendee(c, user);
	icalparameter *k = me ? icalproperty_get_first_parameter(me, ICAL_RSVP_PARAMETER) : NULL;

	if (k == NULL)
		return 1;
	return icalparameter_get_rsvp(k) == ICAL_RSVP_FALSE ? 0 : 1;
}

/* The event's start, end and all-day flag as EAS instants. */
struct times {
	struct pim_time start;
	icaltimezone *frame; /* the zone its dates and floating times are read in */
	bool allday;
	int64_t eas_start, eas_end;
};

static bool
midnight_local(const struct pim_time *t)
{
	return t->date || (t->local.hour == 0 && t->local.minute == 0 && t->local.second == 0);
}

static int
read_times(icalcomponent *vcal, icalcomponent *c, const struct pim_meeting_opts *o, struct times *t)
{
	icalproperty *p;
	struct pim_time et;
	bool has_et = false;
	int64_t end;
	const char *cdo;

	memset(t, 0, sizeof(*t));
	if (pim_time_read(vcal, icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY), o->zone,
	                  &t->start) < 0)
		return -1;
	t->frame = t->start.zone ? t->start.zone : t->start.utc_form ? NULL : o->zone;
	end = t->start.utc + (t->start.date ? 86400 : 0);
	if ((p = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY)) != NULL &&
	    pim_time_read(vcal, p, t->frame, &et) == 0) {
		has_et = true;
		end = et.utc;
	} else if ((p = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY)) != NULL) {
		struct icaldurationtype d = icalproperty_get_duration(p);
		if (!icaldurationtype_is_bad_duration(d)) {
			int64_t secs = icaldurationtype_as_int(d);
			if (secs > 0 && secs < (int64_t)400 * 366 * 86400)
				end = t->start.utc + secs;
		}
	}
	if (end < t->start.utc)
		end = t->start.utc;
	cdo = pim_x_text(c, "X-MICROSOFT-CDO-ALLDAYEVENT");
	t->allday =
	    t->start.date || (cdo && strcasecmp(cdo, "TRUE") == 0 && midnight_local(&t->start) &&
	                      (!has_et || midnight_local(&et)) && end > t->start.utc);
	t->eas_start = t->start.utc;
	t->eas_end = end;
	if (t->allday) {
		/* Whole days: their midnights in the frame, or UTC midnights from 16.0. */
		struct icaltimetype sd = t->start.local;
		int64_t days = (end - t->start.utc + 43200) / 86400;
		icaltimezone *z = o->version >= 160 ? NULL : t->frame;

		if (has_et && et.date)
			days = (pim_civil_to_epoch(et.local.year, et.local.month, et.local.day, 0,
			                           0, 0) -
			        pim_civil_to_epoch(sd.year, sd.month, sd.day, 0, 0, 0)) /
			       86400;
		if (days < 1)
			days = 1;
		sd.is_date = 1;
		sd.hour = sd.minute = sd.second = 0;
		sd.zone = NULL;
		t->eas_start = pim_local_to_utc(sd, z);
		t->eas_end = pim_local_to_utc(
		    pim_epoch_to_civil(pim_civil_to_epoch(sd.year, sd.month, sd.day, 0, 0, 0) +
		                           days * 86400,
		                       true),
		    z);
	}
	return 0;
}

/* The invitation's METHOD as a kind, or -1. */
static int
method_kind(icalcomponent *vcal)
{
	icalproperty *p = icalcomponent_get_first_property(vcal, ICAL_METHOD_PROPERTY);

	if (p == NULL)
		return -1;
	switch (icalproperty_get_method(p)) {
	case ICAL_METHOD_REQUEST:
		return PIM_MEETING_REQUEST;
	case ICAL_METHOD_CANCEL:
		return PIM_MEETING_CANCEL;
	default:
		return -1;
	}
}

/* The event the invitation is of: the master, else the first override. */
static icalcomponent *
invited_event(icalcomponent *vcal)
{
	icalcomponent *first = NULL;

	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT); c;
	     c = icalcomponent_get_next_component(vcal, ICAL_VEVENT_COMPONENT)) {
		if (icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) == NULL)
			return c;
		if (first == NULL)
			first = c;
	}
	return first;
}

static void
add_goid(struct wbxml_node *mr, const char *uid, const struct pim_time *rid)
{
	uint8_t *g;
	size_t n;
	char *b64;

	if (uid == NULL || *uid == '\0' || strlen(uid) > GOID_MAX_UID)
		return;
	g = rid ? pim_meeting_goid(uid, rid->local.year, rid->local.month, rid->local.day, &n)
	        : pim_meeting_goid(uid, 0, 0, 0, &n);
	b64 = xmalloc(B64_ENCODED_LEN(n) + 1);
	b64[b64_encode(g, n, b64)] = '\0';
	wbxml_add_text(mr, EMAIL, EM_GLOBALOBJID, b64);
	free(b64);
	free(g);
}

int
pim_meeting_to_eas(const char *ics, size_t len, const struct pim_meeting_opts *o,
                   struct wbxml_node *parent, const char **errstr)
{
	icalcomponent *vcal, *c;
	icalproperty *p;
	struct times t;
	struct pim_time rid, stamp;
	bool has_rid = false, recurring;
	struct pim_recur recur;
	const char *why, *uid, *s;
	struct wbxml_node *mr;
	int kind;

	pim_ical_init();
	if ((vcal = pim_ical_parse(ics, len, errstr)) == NULL)
		return -1;
	if ((kind = method_kind(vcal)) < 0) {
		*errstr = "METHOD is neither REQUEST nor CANCEL";
		icalcomponent_free(vcal);
		return -1;
	}
	if ((c = invited_event(vcal)) == NULL || read_times(vcal, c, o, &t) < 0 ||
	    !PIM_TIME_OK(t.eas_start) || !PIM_TIME_OK(t.eas_end)) {
		*errstr = "no VEVENT with a usable start";
		icalcomponent_free(vcal);
		return -1;
	}
	if ((p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY)) != NULL &&
	    pim_time_read(vcal, p, t.frame, &rid) == 0 && PIM_TIME_OK(rid.utc))
		has_rid = true;
	p = icalcomponent_get_first_property(c, ICAL_RRULE_PROPERTY);
	recurring = !has_rid && p != NULL;
	if (recurring) {
		struct icalrecurrencetype r = icalproperty_get_rrule(p);
		if (pim_recur_from_rrule(&r, &t.start, t.frame, o->version >= 160, &recur, &why) <
		    0)
			recurring = false; /* no EAS pattern: shown as its first occurrence */
	}

	mr = wbxml_add(parent, EMAIL, EM_MEETINGREQUEST);
	pim_add_int(mr, EMAIL, EM_ALLDAYEVENT, t.allday);
	pim_add_long(mr, EMAIL, EM_STARTTIME, t.eas_start);
	p = icalcomponent_get_first_property(c, ICAL_DTSTAMP_PROPERTY);
	if (p == NULL)
		p = icalcomponent_get_first_property(vcal, ICAL_DTSTAMP_PROPERTY);
	pim_add_long(mr, EMAIL, EM_DTSTAMP,
	             p != NULL && pim_time_read(vcal, p, NULL, &stamp) == 0 &&
	                     PIM_TIME_OK(stamp.utc)
	                 ? stamp.utc
	                 : o->now);
	pim_add_long(mr, EMAIL, EM_ENDTIME, t.eas_end);
	pim_add_int(mr, EMAIL, EM_INSTANCETYPE, has_rid ? 3 : recurring ? 1 : 0);
	add_location(mr, c, o->version);
	add_organizer(mr, c);
	if (has_rid)
		pim_add_long(mr, EMAIL, EM_RECURRENCEID, rid.utc);
	{
		int64_t at;
		if (kind == PIM_MEETING_REQUEST &&
		    pim_alarm_time(pim_first_alarm(c), t.start.utc, t.eas_end, &at) &&
		    at <= t.start.utc)
			pim_add_int(mr, EMAIL, EM_REMINDER, (long)(t.start.utc - at));
	}
	pim_add_int(mr, EMAIL, EM_RESPONSEREQUESTED,
	            kind == PIM_MEETING_REQUEST ? response_requested(c, o->user_email) : 0);
	if (recurring)
		add_recurrence(mr, &recur);
	pim_add_int(mr, EMAIL, EM_SENSITIVITY, pim_sensitivity(c));
	pim_add_int(mr, EMAIL, EM_BUSYSTATUS, busy_status(c, kind));
	{
		struct pim_eas_tz tz;
		char b64[B64_TZ_LEN + 1];
		pim_eas_tz_of(t.allday && o->version >= 160 ? NULL : t.frame, t.start.utc, &tz);
		pim_eas_tz_base64(&tz, b64);
		wbxml_add_text(mr, EMAIL, EM_TIMEZONE, b64);
	}
	uid = pim_text(c, ICAL_UID_PROPERTY);
	add_goid(mr, uid, has_rid ? &rid : NULL);
	if (o->version >= 140 && (s = pim_x_text(c, "X-MICROSOFT-DISALLOW-COUNTER")) != NULL)
		pim_add_int(mr, EMAIL, EM_DISALLOWNEWTIMEPROPOSAL, strcasecmp(s, "TRUE") == 0);
	if (o->version >= 141) {
		/* 1 the first invitation, 2 an update (a later SEQUENCE); 0 a cancellation */
		p = icalcomponent_get_first_property(c, ICAL_SEQUENCE_PROPERTY);
		pim_add_int(mr, EMAIL2, EM2_MEETINGMESSAGETYPE,
		            kind == PIM_MEETING_CANCEL                      ? 0
		            : p != NULL && icalproperty_get_sequence(p) > 0 ? 2
		                                                            : 1);
	}
	if (o->version >= 160 && uid != NULL && strlen(uid) <= 300)
		pim_add_text(mr, CAL, CAL_UID, uid);
	icalcomponent_free(vcal);
	return kind;
}

/* ---- Answering an invitation ------------------------------------------- */

static void
set_partstat(icalproperty *p, int answer)
{
	icalparameter_partstat ps = answer == PIM_MEETING_ACCEPT      ? ICAL_PARTSTAT_ACCEPTED
	                            : answer == PIM_MEETING_TENTATIVE ? ICAL_PARTSTAT_TENTATIVE
	                                                              : ICAL_PARTSTAT_DECLINED;

	icalproperty_remove_parameter_by_kind(p, ICAL_PARTSTAT_PARAMETER);
	icalproperty_remove_parameter_by_kind(p, ICAL_RSVP_PARAMETER);
	icalproperty_add_parameter(p, icalparameter_new_partstat(ps));
}

/* The user's ATTENDEE of c with the answer, added when c does not list the user. */
static icalproperty *
answer_in(icalcomponent *c, const char *user, int answer)
{
	icalproperty *me = user_attendee(c, user);

	if (me == NULL) {
		char *a = xasprintf("mailto:%s", user);
		me = icalproperty_new_attendee(a);
		free(a);
		icalcomponent_add_property(c, me);
	}
	set_partstat(me, answer);
	return me;
}

/* A clone of c's first property of kind into to (nothing when c has none). */
static void
copy_prop(icalcomponent *to, icalcomponent *c, icalproperty_kind kind)
{
	icalproperty *p = icalcomponent_get_first_property(c, kind);

	if (p != NULL)
		icalcomponent_add_property(to, icalproperty_new_clone(p));
}

static char *
reply_of(icalcomponent *vcal, icalcomponent *c, icalproperty *me, int64_t now)
{
	icalcomponent *r = icalcomponent_new_vcalendar(), *ev = icalcomponent_new_vevent();
	icaltimezone *utc = icaltimezone_get_utc_timezone();
	icalproperty *p;
	struct pim_time rid;
	char *s;

	icalcomponent_add_property(r, icalproperty_new_prodid("-//abqd//MeetingResponse//EN"));
	icalcomponent_add_property(r, icalproperty_new_version("2.0"));
	icalcomponent_add_property(r, icalproperty_new_method(ICAL_METHOD_REPLY));
	copy_prop(ev, c, ICAL_UID_PROPERTY);
	icalcomponent_add_property(
	    ev, icalproperty_new_dtstamp(icaltime_from_timet_with_zone((time_t)now, 0, utc)));
	copy_prop(ev, c, ICAL_SEQUENCE_PROPERTY);
	/* RECURRENCE-ID in UTC (or as its date): the REPLY carries no VTIMEZONE */
	if ((p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY)) != NULL &&
	    pim_time_read(vcal, p, NULL, &rid) == 0)
		icalcomponent_add_property(
		    ev, icalproperty_new_recurrenceid(
		            rid.date ? rid.local
		                     : icaltime_from_timet_with_zone((time_t)rid.utc, 0, utc)));
	copy_prop(ev, c, ICAL_ORGANIZER_PROPERTY);
	icalcomponent_add_property(ev, icalproperty_new_clone(me));
	copy_prop(ev, c, ICAL_SUMMARY_PROPERTY);
	icalcomponent_add_component(r, ev);
	s = pim_ical_string(r);
	icalcomponent_free(r);
	return s;
}

/* The TZID parameter of c's DTSTART, or NULL. */
static const char *
start_tzid(icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);
	icalparameter *k = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;

	return k ? icalparameter_get_tzid(k) : NULL;
}

/*
 * The value naming the occurrence at instance (UTC; a date master's: the
 * date nearest to it) in the form of the master's start t.
 */
static struct icaltimetype
occurrence_value(const struct times *t, int64_t instance)
{
	if (t->start.date)
		return pim_epoch_to_civil(instance + 12 * 3600, true);
	return pim_utc_to_local(instance, t->start.utc_form ? NULL : t->frame);
}

/* Its instant (a date: its midnight in the frame). */
static int64_t
occurrence_key(const struct times *t, struct icaltimetype v)
{
	return pim_local_to_utc(v, t->start.utc_form ? NULL : t->frame);
}

/*
 * The override of master m for the occurrence at instance: the one vcal
 * has, else a copy of m for that occurrence alone (RRULE, RDATE, EXDATE
 * taken off; DTSTART, DTEND and RECURRENCE-ID in the master's form) added
 * to vcal. NULL when instance is no occurrence of m.
 */
static icalcomponent *
override_at(icalcomponent *vcal, icalcomponent *m, const struct times *t, int64_t instance)
{
	struct icaltimetype v = occurrence_value(t, instance), ev;
	int64_t key = occurrence_key(t, v), occ[2];
	const char *tzid = t->start.zone != NULL ? start_tzid(m) : NULL;
	icalcomponent *c;

	for (c = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT); c;
	     c = icalcomponent_get_next_component(vcal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		struct pim_time rt;
		if (p != NULL && pim_time_read(vcal, p, t->frame, &rt) == 0 &&
		    occurrence_key(
		        t, rt.date || t->start.date
		               ? occurrence_value(t, rt.utc)
		               : pim_utc_to_local(rt.utc, t->start.utc_form ? NULL : t->frame)) ==
		        key)
			return c;
	}
	if (pim_ical_occurrences(vcal, ICAL_VEVENT_COMPONENT, t->frame, key, key + 1, occ, 2) !=
	        1 ||
	    occ[0] != key)
		return NULL;
	c = icalcomponent_new_clone(m);
	pim_remove_all(c, ICAL_RRULE_PROPERTY);
	pim_remove_all(c, ICAL_RDATE_PROPERTY);
	pim_remove_all(c, ICAL_EXDATE_PROPERTY);
	pim_remove_all(c, ICAL_EXRULE_PROPERTY);
	pim_set_time(c, ICAL_DTSTART_PROPERTY, v, tzid, t->start.utc_form);
	pim_set_time(c, ICAL_RECURRENCEID_PROPERTY, v, tzid, t->start.utc_form);
	if (icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY) != NULL) {
		if (t->start.date)
			ev = pim_epoch_to_civil(
			    pim_civil_to_epoch(v.year, v.month, v.day, 0, 0, 0) +
			        (t->eas_end - t->eas_start + 43200) / 86400 * 86400,
			    true);
		else
			ev = pim_utc_to_local(key + (t->eas_end - t->eas_start),
			                      t->start.utc_form ? NULL : t->frame);
		pim_set_time(c, ICAL_DTEND_PROPERTY, ev, tzid, t->start.utc_form);
	}
	icalcomponent_add_component(vcal, c);
	return c;
}

int
pim_meeting_respond(const char *ics, size_t len, const char *user, int answer,
                    const int64_t *instance, int64_t now, struct pim_meeting_answer *out,
                    const char **errstr)
{
	icalcomponent *vcal, *c;
	icalproperty *p, *me = NULL;
	const char *uid, *org, *sum;

	memset(out, 0, sizeof(*out));
	if (user == NULL || *user == '\0' || answer < PIM_MEETING_ACCEPT ||
	    answer > PIM_MEETING_DECLINE) {
		*errstr = "no user or no answer";
		return -1;
	}
	pim_ical_init();
	if ((vcal = pim_ical_parse(ics, len, errstr)) == NULL)
		return -1;
	c = invited_event(vcal);
	uid = c ? pim_text(c, ICAL_UID_PROPERTY) : NULL;
	/* a REQUEST, or a stored calendar object (no METHOD) */
	if ((icalcomponent_get_first_property(vcal, ICAL_METHOD_PROPERTY) != NULL &&
	     method_kind(vcal) != PIM_MEETING_REQUEST) ||
	    uid == NULL || *uid == '\0') {
		*errstr = "not a REQUEST with a VEVENT and a UID";
		icalcomponent_free(vcal);
		return -1;
	}
	while ((p = icalcomponent_get_first_property(vcal, ICAL_METHOD_PROPERTY)) != NULL) {
		icalcomponent_remove_property(vcal, p);
		icalproperty_free(p);
	}
	if (instance != NULL) {
		/* one occurrence of a series: its override (a decline: an EXDATE) */
		struct pim_meeting_opts mo = {.version = 161};
		struct times t;
		icalcomponent *m = pim_master(vcal, ICAL_VEVENT_COMPONENT);
		if (m == NULL || icalcomponent_get_first_property(m, ICAL_RRULE_PROPERTY) == NULL ||
		    icalcomponent_get_first_property(m, ICAL_RECURRENCEID_PROPERTY) != NULL ||
		    read_times(vcal, m, &mo, &t) < 0 || !PIM_TIME_OK(*instance) ||
		    (c = override_at(vcal, m, &t, *instance)) == NULL) {
			*errstr = "no such occurrence";
			icalcomponent_free(vcal);
			return -1;
		}
		me = answer_in(c, user, answer);
		out->reply = reply_of(vcal, c, me, now);
		if (answer == PIM_MEETING_DECLINE) {
			struct pim_apply_opts ao = {.version = 161, .now = now};
			const char *why;
			icalcomponent_remove_component(vcal, c);
			icalcomponent_free(c);
			c = NULL;
			(void)pim_event_delete_instance(vcal, *instance, &ao, &why);
		}
	} else {
		for (icalcomponent *e =
		         icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT);
		     e; e = icalcomponent_get_next_component(vcal, ICAL_VEVENT_COMPONENT)) {
			icalproperty *a = answer_in(e, user, answer);
			if (e == c)
				me = a;
		}
	}
	if (c == NULL)
		c = pim_master(vcal, ICAL_VEVENT_COMPONENT);
	out->uid = xstrdup(uid);
	sum = pim_text(c, ICAL_SUMMARY_PROPERTY);
	out->summary = xstrdup(sum ? sum : "");
	org = address_of(icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY));
	out->organizer = org ? xstrdup(org) : NULL;
	if (out->reply == NULL)
		out->reply = reply_of(vcal, c, me, now);
	out->object =
	    answer == PIM_MEETING_DECLINE && instance == NULL ? NULL : pim_ical_string(vcal);
	icalcomponent_free(vcal);
	return 0;
}

/* ---- Which revision is newer -------------------------------------------- */

/* The VEVENT of vcal with the RECURRENCE-ID of c (none: the master), or NULL. */
static icalcomponent *
same_instance(icalcomponent *vcal, icalcomponent *c)
{
	icalproperty *want = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);

	for (icalcomponent *e = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT); e;
	     e = icalcomponent_get_next_component(vcal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *p = icalcomponent_get_first_property(e, ICAL_RECURRENCEID_PROPERTY);
		if (want == NULL && p == NULL)
			return e;
		if (want != NULL && p != NULL &&
		    icaltime_compare(icalproperty_get_recurrenceid(p),
		                     icalproperty_get_recurrenceid(want)) == 0)
			return e;
	}
	return NULL;
}

/* SEQUENCE (0 when absent, RFC 5545 3.8.7.4) and DTSTAMP (null when absent) of c. */
static void
revision_of(icalcomponent *c, int *seq, struct icaltimetype *stamp)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_SEQUENCE_PROPERTY);

	*seq = p ? icalproperty_get_sequence(p) : 0;
	p = icalcomponent_get_first_property(c, ICAL_DTSTAMP_PROPERTY);
	*stamp = p ? icalproperty_get_dtstamp(p) : icaltime_null_time();
}

int
pim_meeting_newer(const char *a, size_t alen, const char *b, size_t blen)
{
	icalcomponent *va, *vb, *ca, *cb;
	struct icaltimetype sa, sb;
	const char *err, *ua, *ub;
	int qa, qb, rv = 0;

	pim_ical_init();
	if ((va = pim_ical_parse(a, alen, &err)) == NULL)
		return 0;
	if ((vb = pim_ical_parse(b, blen, &err)) == NULL) {
		icalcomponent_free(va);
		return 0;
	}
	/* b's event (an invitation's: its master, else its first override) in a */
	cb = invited_event(vb);
	ca = cb ? same_instance(va, cb) : NULL;
	if (ca == NULL)
		ca = invited_event(va);
	ua = ca ? pim_text(ca, ICAL_UID_PROPERTY) : NULL;
	ub = cb ? pim_text(cb, ICAL_UID_PROPERTY) : NULL;
	if (ua != NULL && ub != NULL && strcmp(ua, ub) == 0) {
		revision_of(ca, &qa, &sa);
		revision_of(cb, &qb, &sb);
		rv = qa > qb || (qa == qb && icaltime_compare(sa, sb) > 0);
	}
	icalcomponent_free(va);
	icalcomponent_free(vb);
	return rv;
}

void
pim_meeting_answer_clear(struct pim_meeting_answer *a)
{
	free(a->object);
	free(a->reply);
	free(a->organizer);
	free(a->uid);
	free(a->summary);
	memset(a, 0, sizeof(*a));
}
