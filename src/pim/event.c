/*
 * event.c: VEVENT <-> the EAS Calendar class (event.h).
 *
 * Both directions work on one reading of the master, its frame: where its
 * local times live (the DTSTART's zone; for floating times and dates the
 * user's zone), whether it is all day (DATE values, or Outlook's midnight
 * times with X-MICROSOFT-CDO-ALLDAYEVENT), and the instants EAS carries
 * for it. An all-day event's EAS times are its dates' midnights in that
 * zone (16.0 and later: UTC midnights); a phone's all-day times are read
 * back as the nearest midnight, so a phone in another zone still lands on
 * the day it meant.
 *
 * An occurrence is named by its original start: an override's
 * RECURRENCE-ID, an EXDATE, EAS's ExceptionStartTime and InstanceId. They
 * are compared as instants (dates as their midnights in the frame).
 *
 * The keeping rule of the reverse direction is applied field by field
 * against what the phone was (or would have been) sent: an attendee
 * without an e-mail address, the organizer listed among the attendees, an
 * override past the 256 an item carries, the rule of an event that was
 * sent without one, are not the phone's to delete.
 */
#include "pim/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "pim/eastime.h"
#include "pim/ical_int.h"

#define CAL WBXML_PAGE_CALENDAR
#define ASB WBXML_PAGE_AIRSYNCBASE

/* The note an event with a rule EAS cannot express carries at the end of its body. */
#define NOTE_HEAD "\n\n[This event repeats (RRULE:"
#define NOTE_TAIL "); only its first occurrence is shown here.]"

#define MAX_ATTENDEES 512 /* ATTENDEE properties of one component considered */

/* One event component as EAS sees it. */
struct ev {
	icalcomponent *c;
	struct pim_time start;
	int64_t end; /* the end instant */
	bool allday;
	struct icaltimetype sday, eday; /* an all-day event's first and (exclusive) last date */
	int64_t eas_start, eas_end;     /* the instants EAS carries */
};

/* The master's frame. */
struct frame {
	icalcomponent *vcal, *m;
	struct ev ev;
	icaltimezone *zone; /* of local times: DTSTART's zone, else the user's (NULL: UTC) */
	bool date_utc;      /* all-day times are UTC midnights (16.0 and later) */
	const char *uid;
	bool recurring;   /* has an RRULE or RDATE */
	bool expressible; /* that recurrence as an EAS pattern */
	struct pim_recur recur;
	const char *why;
};

/* ---- Reading ---------------------------------------------------------- */

/* Midnight of date d in zone (NULL: UTC). */
static int64_t
midnight(struct icaltimetype d, icaltimezone *zone)
{
	d.is_date = 1;
	return pim_local_to_utc(d, zone);
}

static struct icaltimetype
date_only(struct icaltimetype t)
{
	t.is_date = 1;
	t.hour = t.minute = t.second = 0;
	t.zone = NULL;
	return t;
}

static struct icaltimetype
add_days(struct icaltimetype d, int64_t days)
{
	return pim_epoch_to_civil(
	    pim_civil_to_epoch(d.year, d.month, d.day, 0, 0, 0) + days * 86400, true);
}

static int64_t
days_between(struct icaltimetype a, struct icaltimetype b)
{
	return (pim_civil_to_epoch(b.year, b.month, b.day, 0, 0, 0) -
	        pim_civil_to_epoch(a.year, a.month, a.day, 0, 0, 0)) /
	       86400;
}

/* The date whose midnight in zone is nearest to the instant t. */
static struct icaltimetype
nearest_date(int64_t t, icaltimezone *zone)
{
	return date_only(pim_utc_to_local(t + 12 * 3600, zone));
}

static bool
is_midnight(const struct pim_time *t)
{
	return t->date || (t->local.hour == 0 && t->local.minute == 0 && t->local.second == 0);
}

/*
 * Read component c's times in frame zone (its own TZIDs win): start, end
 * (DTEND, else DURATION, else a day for a date and nothing for a time),
 * all day or not, and the EAS instants.
 */
static int
read_ev(icalcomponent *vcal, icalcomponent *c, icaltimezone *zone, bool date_utc, struct ev *e)
{
	icalproperty *p;
	struct pim_time et;
	bool has_et = false;
	const char *cdo;

	memset(e, 0, sizeof(*e));
	e->c = c;
	if (pim_time_read(vcal, icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY), zone,
	                  &e->start) < 0)
		return -1;
	e->end = e->start.utc + (e->start.date ? 86400 : 0);
	if ((p = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY)) != NULL &&
	    pim_time_read(vcal, p, e->start.zone ? e->start.zone : zone, &et) == 0) {
		has_et = true;
		e->end = et.utc;
	} else if ((p = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY)) != NULL) {
		struct icaldurationtype d = icalproperty_get_duration(p);

		if (!icaldurationtype_is_bad_duration(d)) {
			int64_t secs = icaldurationtype_as_int(d);
			if (secs > 0 && secs < (int64_t)400 * 366 * 86400)
				e->end = e->start.utc + secs;
		}
	}
	if (e->end < e->start.utc)
		e->end = e->start.utc;
	cdo = pim_x_text(c, "X-MICROSOFT-CDO-ALLDAYEVENT");
	e->allday =
	    e->start.date || (cdo && strcasecmp(cdo, "TRUE") == 0 && is_midnight(&e->start) &&
	                      (!has_et || is_midnight(&et)) && e->end > e->start.utc);
	if (!e->allday) {
		e->eas_start = e->start.utc;
		e->eas_end = e->end;
		return 0;
	}
	e->sday = date_only(e->start.local);
	if (has_et && (et.date || et.zone == e->start.zone))
		e->eday = date_only(et.local);
	else
		e->eday = add_days(e->sday, (e->end - e->start.utc + 43200) / 86400);
	if (days_between(e->sday, e->eday) < 1)
		e->eday = add_days(e->sday, 1);
	{
		icaltimezone *z = date_utc ? NULL : e->start.date ? zone : e->start.zone;
		e->eas_start = midnight(e->sday, z);
		e->eas_end = midnight(e->eday, z);
	}
	return 0;
}

static int
frame_read(icalcomponent *vcal, icaltimezone *user_zone, int version, struct frame *f)
{
	icalproperty *p;

	memset(f, 0, sizeof(*f));
	f->vcal = vcal;
	f->m = pim_master(vcal, ICAL_VEVENT_COMPONENT);
	if (f->m == NULL)
		return -1;
	f->date_utc = version >= 160;
	if (read_ev(vcal, f->m, user_zone, f->date_utc, &f->ev) < 0)
		return -1;
	f->zone = f->ev.start.zone ? f->ev.start.zone : f->ev.start.utc_form ? NULL : user_zone;
	f->uid = pim_text(f->m, ICAL_UID_PROPERTY);
	f->recurring = icalcomponent_get_first_property(f->m, ICAL_RRULE_PROPERTY) != NULL ||
	               icalcomponent_get_first_property(f->m, ICAL_RDATE_PROPERTY) != NULL;
	if (!f->recurring)
		return 0;
	p = icalcomponent_get_first_property(f->m, ICAL_RRULE_PROPERTY);
	if (p == NULL)
		f->why = "RDATE";
	else if (icalcomponent_get_next_property(f->m, ICAL_RRULE_PROPERTY) != NULL)
		f->why = "two RRULEs";
	else if (icalcomponent_get_first_property(f->m, ICAL_RDATE_PROPERTY) != NULL ||
	         icalcomponent_get_first_property(f->m, ICAL_EXRULE_PROPERTY) != NULL)
		f->why = "RDATE or EXRULE";
	else {
		struct icalrecurrencetype r = icalproperty_get_rrule(p);
		f->expressible = pim_recur_from_rrule(&r, &f->ev.start, f->zone, f->date_utc,
		                                      &f->recur, &f->why) == 0;
	}
	return 0;
}

/*
 * An occurrence's key: its start instant; for an all-day master the
 * midnight (in the frame) of its date. A date naming an occurrence of a
 * timed master means that day's occurrence.
 */
static int64_t
key_of_time(const struct frame *f, const struct pim_time *t)
{
	if (f->ev.start.date) {
		struct icaltimetype d =
		    t->date ? date_only(t->local) : date_only(pim_utc_to_local(t->utc, f->zone));
		return midnight(d, f->zone);
	}
	if (t->date) {
		struct icaltimetype l = f->ev.start.local;

		l.year = t->local.year;
		l.month = t->local.month;
		l.day = t->local.day;
		return pim_local_to_utc(l, f->ev.start.utc_form ? NULL : f->zone);
	}
	return t->utc;
}

/* The EAS instant of an occurrence named by t (an EXDATE or RECURRENCE-ID). */
static int64_t
eas_instant(const struct frame *f, const struct pim_time *t)
{
	struct icaltimetype d;

	if (!f->ev.allday)
		return key_of_time(f, t);
	d = t->date ? date_only(t->local) : date_only(pim_utc_to_local(t->utc, f->zone));
	return midnight(d, f->date_utc ? NULL : f->zone);
}

/* The key of an EAS instant (ExceptionStartTime, InstanceId). */
static int64_t
key_of_eas(const struct frame *f, int64_t t)
{
	if (!f->ev.start.date) {
		if (!f->ev.allday)
			return t;
		/* Outlook-style all-day master: the local midnight in its own zone. */
		return midnight(nearest_date(t, f->date_utc ? NULL : f->ev.start.zone),
		                f->ev.start.zone);
	}
	return midnight(nearest_date(t, f->date_utc ? NULL : f->zone), f->zone);
}

/* ---- Addresses -------------------------------------------------------- */

/* An ORGANIZER's or ATTENDEE's e-mail address (mailto: taken off), or NULL. */
static const char *
cal_address(icalproperty *p)
{
	const char *v = icalproperty_get_value_as_string(p);

	if (v == NULL)
		return NULL;
	if (strncasecmp(v, "mailto:", 7) == 0)
		v += 7;
	if (*v == '\0' || strchr(v, '@') == NULL || strpbrk(v, " \t\r\n<>,;:\"") != NULL)
		return NULL;
	return v;
}

static const char *
param_text(icalproperty *p, icalparameter_kind kind)
{
	icalparameter *k = icalproperty_get_first_parameter(p, kind);

	if (k == NULL)
		return NULL;
	if (kind == ICAL_CN_PARAMETER)
		return icalparameter_get_cn(k);
	return NULL;
}

static const char *
organizer_email(icalcomponent *c, icalproperty **prop)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);

	if (prop)
		*prop = p;
	return p ? cal_address(p) : NULL;
}

/* Whether attendee p is one EAS shows: it has an address, and it is not the organizer. */
static const char *
shown_attendee(icalproperty *p, const char *org)
{
	const char *a = cal_address(p);

	if (a == NULL || (org != NULL && strcasecmp(a, org) == 0))
		return NULL;
	return a;
}

static int
partstat_status(icalproperty *p)
{
	icalparameter *k = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);

	switch (k ? icalparameter_get_partstat(k) : ICAL_PARTSTAT_NEEDSACTION) {
	case ICAL_PARTSTAT_ACCEPTED:
		return 3;
	case ICAL_PARTSTAT_TENTATIVE:
		return 2;
	case ICAL_PARTSTAT_DECLINED:
		return 4;
	case ICAL_PARTSTAT_NEEDSACTION:
		return 5;
	default:
		return 0;
	}
}

static int
attendee_type(icalproperty *p)
{
	icalparameter *cu = icalproperty_get_first_parameter(p, ICAL_CUTYPE_PARAMETER);
	icalparameter *role = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);

	if (cu != NULL && (icalparameter_get_cutype(cu) == ICAL_CUTYPE_RESOURCE ||
	                   icalparameter_get_cutype(cu) == ICAL_CUTYPE_ROOM))
		return 3;
	if (role != NULL && (icalparameter_get_role(role) == ICAL_ROLE_OPTPARTICIPANT ||
	                     icalparameter_get_role(role) == ICAL_ROLE_NONPARTICIPANT))
		return 2;
	return 1;
}

static bool
is_user(const char *addr, const char *user)
{
	return addr != NULL && user != NULL && strcasecmp(addr, user) == 0;
}

/* ---- Server to phone ---------------------------------------------------- */

static int
busy_status(icalcomponent *c)
{
	static const char *const names[] = {"FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE"};
	const char *cdo = pim_x_text(c, "X-MICROSOFT-CDO-BUSYSTATUS");
	icalproperty *t = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);

	for (int i = 0; cdo && i < 5; i++)
		if (strcasecmp(cdo, names[i]) == 0)
			return i;
	if (t != NULL && icalproperty_get_transp(t) == ICAL_TRANSP_TRANSPARENT)
		return 0;
	if (icalcomponent_get_status(c) == ICAL_STATUS_TENTATIVE)
		return 1;
	return 2;
}

/* Minutes before start of c's first alarm; -1 when none a phone can show. */
static long
reminder_minutes(icalcomponent *c, const struct ev *e)
{
	int64_t at;

	if (!pim_alarm_time(pim_first_alarm(c), e->start.utc, e->end, &at) || at > e->start.utc)
		return -1;
	return (long)((e->start.utc - at) / 60);
}

/* MeetingStatus (MS-ASCAL 2.2.2.28) of c. */
static int
meeting_status(icalcomponent *c, const char *user)
{
	icalproperty *op;
	const char *org = organizer_email(c, &op);
	bool attendees = false, cancelled = icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED;

	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY))
		if (shown_attendee(p, org) != NULL)
			attendees = true;
	if (op == NULL && !attendees)
		return 0;
	if (op == NULL || org == NULL || is_user(org, user) || user == NULL)
		return cancelled ? 5 : 1;
	return cancelled ? 7 : 3;
}

/* The user's ATTENDEE of c, or NULL. */
static icalproperty *
user_attendee(icalcomponent *c, const char *user)
{
	if (user == NULL)
		return NULL;
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY))
		if (is_user(cal_address(p), user))
			return p;
	return NULL;
}

static void
add_attendees(struct wbxml_node *parent, icalcomponent *c, const struct pim_eas_opts *o)
{
	const char *org = organizer_email(c, NULL);
	struct wbxml_node *list = NULL;
	int n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
	     p && n < MAX_ATTENDEES;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
		const char *a = shown_attendee(p, org), *cn;
		struct wbxml_node *x;

		if (a == NULL)
			continue;
		if (list == NULL)
			list = wbxml_add(parent, CAL, CAL_ATTENDEES);
		x = wbxml_add(list, CAL, CAL_ATTENDEE);
		cn = param_text(p, ICAL_CN_PARAMETER);
		pim_add_text(x, CAL, CAL_EMAIL, a);
		pim_add_text(x, CAL, CAL_NAME, cn && *cn ? cn : a);
		pim_add_int(x, CAL, CAL_ATTENDEESTATUS, partstat_status(p));
		pim_add_int(x, CAL, CAL_ATTENDEETYPE, attendee_type(p));
		n++;
	}
}

/* A signature of c's attendees as EAS shows them, to tell an override's from the master's. */
static char *
attendee_sig(icalcomponent *c)
{
	const char *org = organizer_email(c, NULL);
	struct sbuf b = {0};
	int n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
	     p && n < MAX_ATTENDEES;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
		const char *a = shown_attendee(p, org);

		if (a != NULL) {
			sbuf_printf(&b, "%s/%d/%d;", a, partstat_status(p), attendee_type(p));
			n++;
		}
	}
	return sbuf_take(&b);
}

static void
add_location(struct wbxml_node *parent, icalcomponent *c, int version)
{
	const char *loc = pim_text(c, ICAL_LOCATION_PROPERTY);
	icalproperty *geo = icalcomponent_get_first_property(c, ICAL_GEO_PROPERTY);
	struct wbxml_node *l;

	if (version < 160) {
		pim_add_text(parent, CAL, CAL_LOCATION, loc);
		return;
	}
	if (loc == NULL && geo == NULL)
		return;
	l = wbxml_add(parent, ASB, ASB_LOCATION);
	pim_add_text(l, ASB, ASB_DISPLAYNAME, loc ? loc : "");
	if (geo != NULL) {
		struct icalgeotype g = icalproperty_get_geo(geo);
		char buf[64];

		snprintf(buf, sizeof(buf), "%.6f", g.lat);
		wbxml_add_text(l, ASB, ASB_LATITUDE, buf);
		snprintf(buf, sizeof(buf), "%.6f", g.lon);
		wbxml_add_text(l, ASB, ASB_LONGITUDE, buf);
	}
}

/* The body's text with the note of an unexpressed rule appended (malloc'd). */
static char *
body_with_note(icalcomponent *m, const struct frame *f)
{
	const char *d = pim_text(m, ICAL_DESCRIPTION_PROPERTY);
	icalproperty *p = icalcomponent_get_first_property(m, ICAL_RRULE_PROPERTY);
	char *rule = NULL, *s;

	if (p != NULL) {
		struct icalrecurrencetype r = icalproperty_get_rrule(p);
		char *t = icalrecurrencetype_as_string_r(&r);
		rule = xstrdup(t ? t : "");
		icalmemory_free_buffer(t);
	}
	s = xasprintf("%s" NOTE_HEAD "%s" NOTE_TAIL, d ? d : "", rule ? rule : f->why);
	free(rule);
	return s;
}

static const char *
alt_desc(icalcomponent *c)
{
	icalproperty *p = pim_x_prop(c, "X-ALT-DESC");
	icalparameter *fmt = p ? icalproperty_get_first_parameter(p, ICAL_FMTTYPE_PARAMETER) : NULL;

	if (fmt == NULL || strcasecmp(icalparameter_get_fmttype(fmt), "text/html") != 0)
		return NULL;
	return icalproperty_get_x(p);
}

/* The fields an override and a master both have, the override's written only where they differ. */
static void
add_differing(struct wbxml_node *x, const struct ev *e, const struct frame *f,
              const struct pim_eas_opts *o)
{
	icalcomponent *c = e->c, *m = f->m;
	long r;

	if (!str_eq_null(pim_text(c, ICAL_SUMMARY_PROPERTY), pim_text(m, ICAL_SUMMARY_PROPERTY)))
		pim_add_text(x, CAL, CAL_SUBJECT, pim_text(c, ICAL_SUMMARY_PROPERTY) ?: "");
	if (!str_eq_null(pim_text(c, ICAL_LOCATION_PROPERTY),
	                 pim_text(m, ICAL_LOCATION_PROPERTY))) {
		/* No location of its own: an empty one, else the phone takes the series'. */
		if (pim_text(c, ICAL_LOCATION_PROPERTY) == NULL)
			wbxml_add_text(x, o->version >= 160 ? ASB : CAL,
			               o->version >= 160 ? ASB_LOCATION : CAL_LOCATION, "");
		else
			add_location(x, c, o->version);
	}
	if (!str_eq_null(pim_text(c, ICAL_DESCRIPTION_PROPERTY),
	                 pim_text(m, ICAL_DESCRIPTION_PROPERTY)))
		pim_add_body(x, pim_text(c, ICAL_DESCRIPTION_PROPERTY), alt_desc(c), o);
	if (!pim_same_categories(c, m)) {
		pim_add_categories(x, CAL, CAL_CATEGORIES, CAL_CATEGORY, c);
		if (icalcomponent_get_first_property(c, ICAL_CATEGORIES_PROPERTY) == NULL)
			wbxml_add(x, CAL, CAL_CATEGORIES);
	}
	if (pim_sensitivity(c) != pim_sensitivity(m))
		pim_add_int(x, CAL, CAL_SENSITIVITY, pim_sensitivity(c));
	if (busy_status(c) != busy_status(m))
		pim_add_int(x, CAL, CAL_BUSYSTATUS, busy_status(c));
	if (e->allday != f->ev.allday)
		pim_add_int(x, CAL, CAL_ALLDAYEVENT, e->allday);
	r = reminder_minutes(c, e);
	if (r >= 0 && r != reminder_minutes(m, &f->ev))
		pim_add_int(x, CAL, CAL_REMINDER, r);
	else if (r < 0 && reminder_minutes(m, &f->ev) >= 0)
		wbxml_add_text(x, CAL, CAL_REMINDER, ""); /* EmptyTag: none (MS-ASCAL 2.2.2.38) */
	if (o->version >= 140) {
		char *a = attendee_sig(c), *b = attendee_sig(m);

		if (meeting_status(c, o->user_email) != meeting_status(m, o->user_email))
			pim_add_int(x, CAL, CAL_MEETINGSTATUS, meeting_status(c, o->user_email));
		if (strcmp(a, b) != 0) {
			add_attendees(x, c, o);
			if (*a == '\0')
				wbxml_add(x, CAL, CAL_ATTENDEES);
		}
		free(a);
		free(b);
	}
}

/* One exception to send: an override, or a deleted occurrence. */
struct exc {
	int64_t eas; /* its original start as EAS writes it */
	int64_t key;
	icalcomponent *c; /* NULL: deleted */
};

static int
cmp_exc(const void *a, const void *b)
{
	const struct exc *x = a, *y = b;

	if (x->eas != y->eas)
		return x->eas < y->eas ? -1 : 1;
	/* A deletion before an override of the same occurrence: the deletion wins. */
	return (x->c != NULL) - (y->c != NULL);
}

/*
 * The exceptions of f's master the phone is shown: its EXDATEs and its
 * overrides (a cancelled one as a deletion), the latest
 * PIM_EAS_MAX_EXCEPTIONS of them. *n_r set; free the array.
 */
static struct exc *
exceptions(const struct frame *f, size_t *n_r)
{
	struct exc *v = NULL;
	size_t n = 0, cap = 0, k = 0;

	for (icalproperty *p = icalcomponent_get_first_property(f->m, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(f->m, ICAL_EXDATE_PROPERTY)) {
		struct pim_time t;

		if (pim_time_read(f->vcal, p, f->zone, &t) < 0)
			continue;
		if (n == cap)
			v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
		v[n++] = (struct exc){eas_instant(f, &t), key_of_time(f, &t), NULL};
	}
	for (icalcomponent *c = icalcomponent_get_first_component(f->vcal, ICAL_VEVENT_COMPONENT);
	     c; c = icalcomponent_get_next_component(f->vcal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *r = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		struct pim_time t;
		struct ev e;

		if (c == f->m || r == NULL ||
		    !str_eq_null(pim_text(c, ICAL_UID_PROPERTY), f->uid) ||
		    pim_time_read(f->vcal, r, f->zone, &t) < 0)
			continue;
		/* An override whose own times EAS cannot carry is not shown (nor deleted by the
		 * phone). */
		if (read_ev(f->vcal, c, f->zone, f->date_utc, &e) == 0 &&
		    (!PIM_TIME_OK(e.eas_start) || !PIM_TIME_OK(e.eas_end)))
			continue;
		if (n == cap)
			v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
		v[n++] =
		    (struct exc){eas_instant(f, &t), key_of_time(f, &t),
		                 icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED ? NULL : c};
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_exc);
	for (size_t i = 0; i < n; i++)
		if ((k == 0 || v[k - 1].key != v[i].key) && PIM_TIME_OK(v[i].eas))
			v[k++] = v[i];
	if (k > PIM_EAS_MAX_EXCEPTIONS) {
		memmove(v, v + (k - PIM_EAS_MAX_EXCEPTIONS), PIM_EAS_MAX_EXCEPTIONS * sizeof(*v));
		k = PIM_EAS_MAX_EXCEPTIONS;
	}
	*n_r = k;
	return v;
}

static void
add_instance_name(struct wbxml_node *x, int64_t t, int version)
{
	if (version >= 160)
		pim_add_compact(x, ASB, ASB_INSTANCEID, t);
	else
		pim_add_compact(x, CAL, CAL_EXCEPTIONSTARTTIME, t);
}

static void
add_exceptions(struct wbxml_node *app, const struct frame *f, const struct pim_eas_opts *o)
{
	size_t n;
	struct exc *v = exceptions(f, &n);
	struct wbxml_node *list = n ? wbxml_add(app, CAL, CAL_EXCEPTIONS) : NULL;

	for (size_t i = 0; i < n; i++) {
		struct wbxml_node *x = wbxml_add(list, CAL, CAL_EXCEPTION);
		struct ev e;

		if (v[i].c == NULL) {
			pim_add_int(x, CAL, CAL_DELETED, 1);
			add_instance_name(x, v[i].eas, o->version);
			continue;
		}
		add_instance_name(x, v[i].eas, o->version);
		if (read_ev(f->vcal, v[i].c, f->zone, f->date_utc, &e) < 0) {
			/* An override without a start keeps the occurrence's. */
			e = f->ev;
			e.c = v[i].c;
			e.eas_end = v[i].eas + (f->ev.eas_end - f->ev.eas_start);
			e.eas_start = v[i].eas;
		}
		pim_add_compact(x, CAL, CAL_STARTTIME, e.eas_start);
		pim_add_compact(x, CAL, CAL_ENDTIME, e.eas_end);
		{
			icalproperty *ds =
			    icalcomponent_get_first_property(v[i].c, ICAL_DTSTAMP_PROPERTY);
			struct pim_time t;
			if (ds && pim_time_read(f->vcal, ds, NULL, &t) == 0)
				pim_add_compact(x, CAL, CAL_DTSTAMP, t.utc);
		}
		add_differing(x, &e, f, o);
	}
	free(v);
}

int
pim_event_to_eas(icalcomponent *vcal, const struct pim_eas_opts *o, struct wbxml_node *app,
                 const char **errstr)
{
	struct frame f;
	icalcomponent *m;
	icalproperty *op, *p;
	const char *org, *s;
	long r;
	int ms;

	pim_ical_init();
	if (frame_read(vcal, o->zone, o->version, &f) < 0) {
		*errstr = "no VEVENT with a start";
		return -1;
	}
	m = f.m;
	if (!PIM_TIME_OK(f.ev.eas_start) || !PIM_TIME_OK(f.ev.eas_end)) {
		*errstr = "times outside what EAS carries";
		return -1;
	}
	if (!(f.ev.allday && o->version >= 160)) {
		struct pim_eas_tz tz;
		char b64[B64_TZ_LEN + 1];

		pim_eas_tz_of(f.ev.allday && f.ev.start.date ? f.zone
		              : f.ev.start.zone              ? f.ev.start.zone
		              : f.ev.start.utc_form          ? NULL
		                                             : f.zone,
		              f.ev.start.utc, &tz);
		pim_eas_tz_base64(&tz, b64);
		wbxml_add_text(app, CAL, CAL_TIMEZONE, b64);
	}
	p = icalcomponent_get_first_property(m, ICAL_DTSTAMP_PROPERTY);
	if (p == NULL)
		p = icalcomponent_get_first_property(m, ICAL_LASTMODIFIED_PROPERTY);
	if (p == NULL)
		p = icalcomponent_get_first_property(m, ICAL_CREATED_PROPERTY);
	{
		struct pim_time t;
		if (p != NULL && pim_time_read(vcal, p, NULL, &t) == 0)
			pim_add_compact(app, CAL, CAL_DTSTAMP, t.utc);
	}
	pim_add_compact(app, CAL, CAL_STARTTIME, f.ev.eas_start);
	pim_add_text(app, CAL, CAL_SUBJECT, pim_text(m, ICAL_SUMMARY_PROPERTY));
	if (f.uid != NULL && strlen(f.uid) <= 300)
		pim_add_text(app, CAL, CAL_UID, f.uid);
	org = organizer_email(m, &op);
	if (op != NULL && org != NULL) {
		const char *cn = param_text(op, ICAL_CN_PARAMETER);
		pim_add_text(app, CAL, CAL_ORGANIZERNAME, cn && *cn ? cn : org);
		pim_add_text(app, CAL, CAL_ORGANIZEREMAIL, org);
	}
	add_attendees(app, m, o);
	add_location(app, m, o->version);
	pim_add_compact(app, CAL, CAL_ENDTIME, f.ev.eas_end);
	if (f.recurring && f.expressible)
		pim_recur_write(app, CAL, &f.recur, o->version);
	if (f.recurring && !f.expressible) {
		char *t = body_with_note(m, &f);
		pim_add_body(app, t, NULL, o);
		free(t);
	} else {
		pim_add_body(app, pim_text(m, ICAL_DESCRIPTION_PROPERTY), alt_desc(m), o);
	}
	pim_add_int(app, CAL, CAL_SENSITIVITY, pim_sensitivity(m));
	pim_add_int(app, CAL, CAL_BUSYSTATUS, busy_status(m));
	pim_add_int(app, CAL, CAL_ALLDAYEVENT, f.ev.allday);
	if ((r = reminder_minutes(m, &f.ev)) >= 0)
		pim_add_int(app, CAL, CAL_REMINDER, r);
	if (f.recurring && f.expressible)
		add_exceptions(app, &f, o);
	ms = meeting_status(m, o->user_email);
	pim_add_int(app, CAL, CAL_MEETINGSTATUS, ms);
	pim_add_categories(app, CAL, CAL_CATEGORIES, CAL_CATEGORY, m);
	if (o->version >= 140 && ms != 0) {
		icalproperty *me = user_attendee(m, o->user_email);
		bool rsvp = false;

		for (p = icalcomponent_get_first_property(m, ICAL_ATTENDEE_PROPERTY); p;
		     p = icalcomponent_get_next_property(m, ICAL_ATTENDEE_PROPERTY)) {
			icalparameter *k = icalproperty_get_first_parameter(p, ICAL_RSVP_PARAMETER);
			if (k && icalparameter_get_rsvp(k) == ICAL_RSVP_TRUE)
				rsvp = true;
		}
		pim_add_int(app, CAL, CAL_RESPONSEREQUESTED, rsvp);
		if (ms == 1 || ms == 5)
			pim_add_int(app, CAL, CAL_RESPONSETYPE, 1);
		else if (me != NULL)
			pim_add_int(app, CAL, CAL_RESPONSETYPE, partstat_status(me));
	}
	if (o->version >= 140 && (s = pim_x_text(m, "X-MICROSOFT-CDO-REPLYTIME")) != NULL) {
		struct pim_time t;
		struct icaltimetype tt = icaltime_from_string(s);
		if (pim_time_from(NULL, tt, NULL, NULL, &t) == 0)
			pim_add_compact(app, CAL, CAL_APPOINTMENTREPLYTIME, t.utc);
	}
	if (o->version >= 140 && (s = pim_x_text(m, "X-MICROSOFT-DISALLOW-COUNTER")) != NULL)
		pim_add_int(app, CAL, CAL_DISALLOWNEWTIMEPROPOSAL, strcasecmp(s, "TRUE") == 0);
	return 0;
}

int
pim_event_span(icalcomponent *vcal, int64_t *start_r, int64_t *end_r, const char **errstr)
{
	icalcomponent *m = pim_master(vcal, ICAL_VEVENT_COMPONENT);
	struct ev e;
	int64_t last;
	int r;

	if (m == NULL || read_ev(vcal, m, NULL, false, &e) < 0 ||
	    (r = pim_ical_last_start(vcal, ICAL_VEVENT_COMPONENT, NULL, &last)) < 0) {
		*errstr = "no event with a start";
		return -1;
	}
	*start_r = e.start.utc;
	*end_r = r == 0 ? PIM_SPAN_OPEN : last + (e.end - e.start.utc);
	/* an override may last longer than the master's occurrences */
	for (icalcomponent *c = icalcomponent_get_first_component(vcal, ICAL_VEVENT_COMPONENT);
	     r == 1 && c; c = icalcomponent_get_next_component(vcal, ICAL_VEVENT_COMPONENT)) {
		struct ev o;
		if (c != m && icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) &&
		    icalcomponent_get_status(c) != ICAL_STATUS_CANCELLED &&
		    read_ev(vcal, c, NULL, false, &o) == 0 && o.end > *end_r)
			*end_r = o.end;
	}
	if (*end_r <= *start_r && *end_r != PIM_SPAN_OPEN)
		*end_r = *start_r + 1; /* an instant: it is within a window that holds it */
	return 0;
}

const char *
pim_event_uid(icalcomponent *vcal)
{
	icalcomponent *m = pim_master(vcal, ICAL_VEVENT_COMPONENT);

	return m ? pim_text(m, ICAL_UID_PROPERTY) : NULL;
}

/* ---- Phone to server ---------------------------------------------------- */

/* What a phone's element set (ApplicationData or Exception) says of the times. */
struct when {
	bool has_start, has_end, has_allday, has_tz;
	int64_t start, end;
	bool allday;
	struct pim_eas_tz tz;
};

static void
read_when(const struct wbxml_node *x, struct when *w)
{
	long v;

	memset(w, 0, sizeof(*w));
	w->has_start = pim_kid_time(x, CAL, CAL_STARTTIME, &w->start);
	w->has_end = pim_kid_time(x, CAL, CAL_ENDTIME, &w->end);
	if (pim_kid_int(x, CAL, CAL_ALLDAYEVENT, 0, 1, &v)) {
		w->has_allday = true;
		w->allday = v == 1;
	}
	w->has_tz = pim_eas_tz_read(pim_kid_text(x, CAL, CAL_TIMEZONE), &w->tz) == 0;
}

static bool
tz_is_utc(const struct pim_eas_tz *tz)
{
	return tz->bias + tz->standard_bias == 0 &&
	       (tz->standard_date.month == 0 || tz->daylight_date.month == 0 ||
	        tz->daylight_bias == tz->standard_bias);
}

/* Write c's DTSTART and DTEND (or DURATION, when c had one) for an all-day span. */
static void
write_dates(icalcomponent *c, struct icaltimetype sday, struct icaltimetype eday)
{
	bool had_duration = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY) != NULL &&
	                    icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY) == NULL;

	pim_set_time(c, ICAL_DTSTART_PROPERTY, sday, NULL, false);
	pim_remove_all(c, ICAL_DTEND_PROPERTY);
	pim_remove_all(c, ICAL_DURATION_PROPERTY);
	if (had_duration) {
		struct icaldurationtype d = icaldurationtype_null_duration();
		d.days = (unsigned)days_between(sday, eday);
		icalcomponent_add_property(c, icalproperty_new_duration(d));
	} else {
		pim_set_time(c, ICAL_DTEND_PROPERTY, eday, NULL, false);
	}
	if (pim_x_prop(c, "X-MICROSOFT-CDO-ALLDAYEVENT") != NULL)
		pim_set_x_text(c, "X-MICROSOFT-CDO-ALLDAYEVENT", "TRUE");
}

/* Write c's DTSTART and DTEND (or DURATION) at instants in zone z with tzid (NULL + utc: Z). */
static void
write_times(icalcomponent *c, int64_t start, int64_t end, icaltimezone *z, const char *tzid,
            bool utc)
{
	bool had_duration = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY) != NULL &&
	                    icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY) == NULL;
	/* tzid may be the very parameter about to be replaced. */
	char *id = xstrdup_null(tzid);

	tzid = id;
	pim_set_time(c, ICAL_DTSTART_PROPERTY, pim_utc_to_local(start, utc ? NULL : z), tzid, utc);
	pim_remove_all(c, ICAL_DTEND_PROPERTY);
	pim_remove_all(c, ICAL_DURATION_PROPERTY);
	if (had_duration)
		icalcomponent_add_property(
		    c, icalproperty_new_duration(icaldurationtype_from_int((int)(end - start))));
	else
		pim_set_time(c, ICAL_DTEND_PROPERTY, pim_utc_to_local(end, utc ? NULL : z), tzid,
		             utc);
	if (pim_x_prop(c, "X-MICROSOFT-CDO-ALLDAYEVENT") != NULL)
		pim_set_x_text(c, "X-MICROSOFT-CDO-ALLDAYEVENT", "FALSE");
	free(id);
}

/* How the master's local times are written: its frame. */
struct wframe {
	bool date;          /* all day: DATE values */
	icaltimezone *zone; /* the zone of written local times (NULL: UTC or floating) */
	const char *tzid;   /* TZID written, or NULL */
	bool utc;           /* written with Z */
	icaltimezone *read; /* the zone floating times and dates are read in */
	bool date_utc;
};

/* Write an occurrence-naming property (RECURRENCE-ID, EXDATE) for key k in frame w. */
static icalproperty *
occurrence_prop(icalproperty_kind kind, int64_t k, const struct wframe *w)
{
	icalproperty *p = icalproperty_new(kind);
	struct icaltimetype t;

	if (w->date) {
		t = date_only(pim_utc_to_local(k + 12 * 3600, w->read));
		icalproperty_set_value(p, icalvalue_new_date(t));
		return p;
	}
	t = pim_utc_to_local(k, w->utc ? NULL : w->zone ? w->zone : w->read);
	t.zone = w->utc ? icaltimezone_get_utc_timezone() : NULL;
	icalproperty_set_value(p, icalvalue_new_datetime(t));
	if (w->tzid != NULL && !w->utc)
		icalproperty_add_parameter(p, icalparameter_new_tzid(w->tzid));
	return p;
}

/* The frame the master of vcal is written in (after its times were applied). */
static void
wframe_of(icalcomponent *vcal, icalcomponent *m, icaltimezone *user_zone, struct wframe *w)
{
	struct pim_time t;

	memset(w, 0, sizeof(*w));
	w->read = user_zone;
	if (pim_time_read(vcal, icalcomponent_get_first_property(m, ICAL_DTSTART_PROPERTY),
	                  user_zone, &t) < 0) {
		w->utc = true;
		return;
	}
	w->date = t.date;
	w->utc = t.utc_form;
	w->zone = t.zone;
	w->tzid = t.zone ? t.tzid : NULL;
	if (t.zone)
		w->read = t.zone;
}

static void
set_busy(icalcomponent *c, long v)
{
	static const char *const names[] = {"FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE"};
	icalproperty *t = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);

	if (v < 0 || v > 4)
		v = 2;
	if (busy_status(c) == v)
		return;
	if (v == 0 || t != NULL) {
		pim_remove_all(c, ICAL_TRANSP_PROPERTY);
		icalcomponent_add_property(
		    c,
		    icalproperty_new_transp(v == 0 ? ICAL_TRANSP_TRANSPARENT : ICAL_TRANSP_OPAQUE));
	}
	if (v == 1 || v == 3 || v == 4 || pim_x_prop(c, "X-MICROSOFT-CDO-BUSYSTATUS") != NULL)
		pim_set_x_text(c, "X-MICROSOFT-CDO-BUSYSTATUS", names[v]);
	if (v != 1 && icalcomponent_get_status(c) == ICAL_STATUS_TENTATIVE && busy_status(c) != v)
		icalcomponent_set_status(c, ICAL_STATUS_CONFIRMED);
}

static void
set_location(icalcomponent *c, const struct wbxml_node *x)
{
	const struct wbxml_node *l = pim_kid(x, ASB, ASB_LOCATION);
	const char *lat, *lon;

	if (l == NULL) {
		pim_set_text(c, ICAL_LOCATION_PROPERTY, pim_kid_text(x, CAL, CAL_LOCATION));
		return;
	}
	{
		const char *name = pim_kid_text(l, ASB, ASB_DISPLAYNAME);
		struct sbuf b = {0};
		static const unsigned parts[] = {ASB_STREET, ASB_CITY, ASB_STATE, ASB_POSTALCODE,
		                                 ASB_COUNTRY};

		if (name == NULL || *name == '\0') {
			for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
				const char *t = pim_kid_text(l, ASB, parts[i]);
				if (t && *t)
					sbuf_printf(&b, "%s%s", b.len ? ", " : "", t);
			}
			name = b.p;
		}
		pim_set_text(c, ICAL_LOCATION_PROPERTY, name);
		free(b.p);
	}
	lat = pim_kid_text(l, ASB, ASB_LATITUDE);
	lon = pim_kid_text(l, ASB, ASB_LONGITUDE);
	if (lat && lon) {
		char *e1, *e2;
		double a = strtod(lat, &e1), o = strtod(lon, &e2);

		if (*e1 == '\0' && *e2 == '\0' && a >= -90 && a <= 90 && o >= -180 && o <= 180) {
			struct icalgeotype g = {a, o};

			pim_remove_all(c, ICAL_GEO_PROPERTY);
			icalcomponent_add_property(c, icalproperty_new_geo(g));
		}
	}
}

static bool
has_location(const struct wbxml_node *x)
{
	return pim_kid(x, ASB, ASB_LOCATION) != NULL || pim_kid(x, CAL, CAL_LOCATION) != NULL;
}

/* Strip the note of an unexpressed rule a body came back with. */
static void
strip_note(char *t)
{
	char *n = t ? strstr(t, NOTE_HEAD) : NULL;

	if (n != NULL) {
		char *tail = strstr(n, NOTE_TAIL);
		if (tail != NULL && tail[strlen(NOTE_TAIL)] == '\0')
			*n = '\0';
	}
}

static void
set_body(icalcomponent *c, const struct wbxml_node *body)
{
	char *html, *text = pim_read_body(body, &html);
	icalproperty *p;

	if (text == NULL)
		return; /* a type abqd does not read: the description stays */
	strip_note(text);
	if (html != NULL) {
		strip_note(html);
		pim_set_x_text(c, "X-ALT-DESC", NULL);
		p = icalproperty_new_x(html);
		icalproperty_set_x_name(p, "X-ALT-DESC");
		icalproperty_add_parameter(p, icalparameter_new_fmttype("text/html"));
		icalcomponent_add_property(c, p);
	} else if (!str_eq_null(text, pim_text(c, ICAL_DESCRIPTION_PROPERTY))) {
		/* A new plain body: an HTML one it replaces would say otherwise. */
		pim_set_x_text(c, "X-ALT-DESC", NULL);
	}
	if (!str_eq_null(text, pim_text(c, ICAL_DESCRIPTION_PROPERTY)))
		pim_set_text(c, ICAL_DESCRIPTION_PROPERTY, text);
	free(text);
	free(html);
}

static void
set_reminder(icalcomponent *c, const struct wbxml_node *rem, const struct ev *e)
{
	long v;

	if (wbxml_text(rem) == NULL || *wbxml_text(rem) == '\0') {
		pim_remove_alarm(c);
		return;
	}
	if (!pim_kid_int(rem->parent, rem->page, rem->token, 0, 10 * 366 * 24 * 60, &v))
		return;
	if (reminder_minutes(c, e) == v)
		return; /* the same moment: the alarm stays as written */
	pim_set_alarm(c, false, 0, (int)v);
}

static void
set_meeting_status(icalcomponent *c, long ms)
{
	bool cancelled = ms == 5 || ms == 7 || ms == 13 || ms == 15;

	if (cancelled)
		icalcomponent_set_status(c, ICAL_STATUS_CANCELLED);
	else if (icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED)
		pim_remove_all(c, ICAL_STATUS_PROPERTY);
}

/* One attendee as a phone sends it. */
struct in_att {
	const char *email, *name;
	long status, type;
	bool used;
};

static void
set_param_partstat(icalproperty *p, long status)
{
	icalparameter_partstat ps;

	switch (status) {
	case 2:
		ps = ICAL_PARTSTAT_TENTATIVE;
		break;
	case 3:
		ps = ICAL_PARTSTAT_ACCEPTED;
		break;
	case 4:
		ps = ICAL_PARTSTAT_DECLINED;
		break;
	case 5:
		ps = ICAL_PARTSTAT_NEEDSACTION;
		break;
	default:
		return;
	}
	if (partstat_status(p) == status)
		return;
	icalproperty_remove_parameter_by_kind(p, ICAL_PARTSTAT_PARAMETER);
	icalproperty_add_parameter(p, icalparameter_new_partstat(ps));
}

static void
set_param_type(icalproperty *p, long type)
{
	icalparameter *cu = icalproperty_get_first_parameter(p, ICAL_CUTYPE_PARAMETER);
	icalparameter *role = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);

	if (type < 1 || type > 3 || attendee_type(p) == type)
		return;
	if (type == 3) {
		icalproperty_remove_parameter_by_kind(p, ICAL_CUTYPE_PARAMETER);
		icalproperty_add_parameter(p, icalparameter_new_cutype(ICAL_CUTYPE_RESOURCE));
		return;
	}
	if (cu != NULL && (icalparameter_get_cutype(cu) == ICAL_CUTYPE_RESOURCE ||
	                   icalparameter_get_cutype(cu) == ICAL_CUTYPE_ROOM))
		icalproperty_remove_parameter_by_kind(p, ICAL_CUTYPE_PARAMETER);
	if (type == 1 && role != NULL && icalparameter_get_role(role) == ICAL_ROLE_CHAIR)
		return;
	icalproperty_remove_parameter_by_kind(p, ICAL_ROLE_PARAMETER);
	icalproperty_add_parameter(p, icalparameter_new_role(type == 2 ? ICAL_ROLE_OPTPARTICIPANT
	                                                               : ICAL_ROLE_REQPARTICIPANT));
}

static void
set_param_cn(icalproperty *p, const char *name, const char *email)
{
	const char *cn = param_text(p, ICAL_CN_PARAMETER);
	char *clean;

	/* A phone writes the address as the name when it knows none. */
	if (name == NULL || *name == '\0' || str_eq_null(cn, name) ||
	    (cn == NULL && strcasecmp(name, email) == 0))
		return;
	clean = pim_clean_text(name);
	for (char *q = clean; *q; q++)
		if (*q == '"' || *q == '\n')
			*q = '\'';
	icalproperty_remove_parameter_by_kind(p, ICAL_CN_PARAMETER);
	icalproperty_add_parameter(p, icalparameter_new_cn(clean));
	free(clean);
}

/*
 * Replace the attendees EAS shows by list's (NULL: none): a known address
 * keeps its property and parameters with the phone's name, answer (before
 * 16.0) and type; the others shown are taken out; new addresses added.
 */
static void
set_attendees(icalcomponent *c, const struct wbxml_node *list, const struct pim_apply_opts *o,
              bool rsvp)
{
	struct in_att in[MAX_ATTENDEES];
	icalproperty *drop[MAX_ATTENDEES];
	size_t nin = 0, ndrop = 0;
	const char *org = organizer_email(c, NULL);
	long v;

	for (const struct wbxml_node *a = list ? list->first_child : NULL; a && nin < MAX_ATTENDEES;
	     a = a->next) {
		const char *e = pim_kid_text(a, CAL, CAL_EMAIL);

		if (a->page != CAL || a->token != CAL_ATTENDEE || e == NULL ||
		    strchr(e, '@') == NULL || strpbrk(e, " \t\r\n<>,;:\"") != NULL)
			continue;
		in[nin] = (struct in_att){e, pim_kid_text(a, CAL, CAL_NAME), 0, 0, false};
		if (o->version < 160 && pim_kid_int(a, CAL, CAL_ATTENDEESTATUS, 0, 5, &v))
			in[nin].status = v;
		if (pim_kid_int(a, CAL, CAL_ATTENDEETYPE, 1, 3, &v))
			in[nin].type = v;
		nin++;
	}
	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
		const char *a = shown_attendee(p, org);
		size_t i;

		if (a == NULL)
			continue;
		for (i = 0; i < nin; i++)
			if (!in[i].used && strcasecmp(in[i].email, a) == 0)
				break;
		if (i == nin) {
			if (ndrop < MAX_ATTENDEES)
				drop[ndrop++] = p;
			continue;
		}
		in[i].used = true;
		set_param_cn(p, in[i].name, a);
		set_param_partstat(p, in[i].status);
		set_param_type(p, in[i].type);
	}
	for (size_t i = 0; i < ndrop; i++) {
		icalcomponent_remove_property(c, drop[i]);
		icalproperty_free(drop[i]);
	}
	for (size_t i = 0; i < nin; i++) {
		char *addr;
		icalproperty *p;

		if (in[i].used || (org != NULL && strcasecmp(in[i].email, org) == 0))
			continue;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(in[j].email, in[i].email) == 0)
				goto next;
		addr = xasprintf("mailto:%s", in[i].email);
		p = icalproperty_new_attendee(addr);
		free(addr);
		set_param_cn(p, in[i].name, in[i].email);
		icalproperty_add_parameter(p,
		                           icalparameter_new_partstat(ICAL_PARTSTAT_NEEDSACTION));
		set_param_partstat(p, in[i].status);
		if (in[i].type == 3)
			icalproperty_add_parameter(p,
			                           icalparameter_new_cutype(ICAL_CUTYPE_RESOURCE));
		else
			icalproperty_add_parameter(
			    p, icalparameter_new_role(in[i].type == 2 ? ICAL_ROLE_OPTPARTICIPANT
			                                              : ICAL_ROLE_REQPARTICIPANT));
		if (rsvp)
			icalproperty_add_parameter(p, icalparameter_new_rsvp(ICAL_RSVP_TRUE));
		icalcomponent_add_property(c, p);
	next:;
	}
	/* A meeting needs an organizer: the user, who is making it. */
	if (nin > 0 && icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY) == NULL &&
	    o->user_email != NULL) {
		char *addr = xasprintf("mailto:%s", o->user_email);
		icalcomponent_add_property(c, icalproperty_new_organizer(addr));
		free(addr);
	}
}

static void
set_organizer(icalcomponent *c, const char *email, const char *name)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);
	const char *cur = p ? cal_address(p) : NULL;
	char *addr;

	if (email == NULL || strchr(email, '@') == NULL || strpbrk(email, " \t\r\n<>,;:\"") != NULL)
		return;
	if (cur != NULL && strcasecmp(cur, email) == 0) {
		set_param_cn(p, name, email);
		return;
	}
	pim_remove_all(c, ICAL_ORGANIZER_PROPERTY);
	addr = xasprintf("mailto:%s", email);
	p = icalproperty_new_organizer(addr);
	free(addr);
	set_param_cn(p, name, email);
	icalcomponent_add_property(c, p);
}

/*
 * The fields an Exception (or a 16.x instance's ApplicationData) may carry,
 * applied to an override: what is there is set, what is not stays.
 */
static void
apply_instance_fields(icalcomponent *c, const struct wbxml_node *x, const struct ev *e,
                      const struct pim_apply_opts *o)
{
	const struct wbxml_node *k;
	long v;

	if ((k = pim_kid(x, CAL, CAL_SUBJECT)) != NULL)
		pim_set_text(c, ICAL_SUMMARY_PROPERTY, wbxml_text(k));
	if (has_location(x))
		set_location(c, x);
	if ((k = pim_kid(x, ASB, ASB_BODY)) != NULL)
		set_body(c, k);
	if ((k = pim_kid(x, CAL, CAL_CATEGORIES)) != NULL)
		pim_set_categories(c, k, CAL, CAL_CATEGORY);
	if (pim_kid_int(x, CAL, CAL_SENSITIVITY, 0, 3, &v))
		pim_set_sensitivity(c, (int)v);
	if (pim_kid_int(x, CAL, CAL_BUSYSTATUS, 0, 5, &v))
		set_busy(c, v);
	if ((k = pim_kid(x, CAL, CAL_REMINDER)) != NULL)
		set_reminder(c, k, e);
	if (pim_kid_int(x, CAL, CAL_MEETINGSTATUS, 0, 15, &v))
		set_meeting_status(c, v);
	if ((k = pim_kid(x, CAL, CAL_ATTENDEES)) != NULL)
		set_attendees(c, k, o, false);
}

/* Replace c's attendees EAS shows by m's. */
static void
copy_attendees(icalcomponent *c, icalcomponent *m)
{
	const char *org = organizer_email(m, NULL);
	icalproperty *drop[MAX_ATTENDEES];
	size_t n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
	     p && n < MAX_ATTENDEES; p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY))
		if (shown_attendee(p, org) != NULL)
			drop[n++] = p;
	for (size_t i = 0; i < n; i++) {
		icalcomponent_remove_property(c, drop[i]);
		icalproperty_free(drop[i]);
	}
	for (icalproperty *p = icalcomponent_get_first_property(m, ICAL_ATTENDEE_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_ATTENDEE_PROPERTY))
		if (shown_attendee(p, org) != NULL)
			icalcomponent_add_property(c, icalproperty_new_clone(p));
}

static void
copy_categories(icalcomponent *c, icalcomponent *m)
{
	pim_remove_all(c, ICAL_CATEGORIES_PROPERTY);
	for (icalproperty *p = icalcomponent_get_first_property(m, ICAL_CATEGORIES_PROPERTY); p;
	     p = icalcomponent_get_next_property(m, ICAL_CATEGORIES_PROPERTY))
		icalcomponent_add_property(c, icalproperty_new_clone(p));
}

static bool
same_attendees(icalcomponent *a, icalcomponent *b)
{
	char *x = attendee_sig(a), *y = attendee_sig(b);
	bool same = strcmp(x, y) == 0;

	free(x);
	free(y);
	return same;
}

/*
 * A change of the series reaches the overrides that shared the old value
 * (the phone shows them as the series'), as calendar clients do when the
 * whole series is edited: was is the master before the phone's change, f
 * the frame after it.
 */
static void
propagate(icalcomponent *was, const struct frame *f, int64_t now)
{
	icalcomponent *m = f->m;
	struct ev old;

	if (read_ev(f->vcal, was, f->zone, f->date_utc, &old) < 0)
		old = f->ev;
	for (icalcomponent *c = icalcomponent_get_first_component(f->vcal, ICAL_VEVENT_COMPONENT);
	     c; c = icalcomponent_get_next_component(f->vcal, ICAL_VEVENT_COMPONENT)) {
		static const icalproperty_kind texts[] = {
		    ICAL_SUMMARY_PROPERTY, ICAL_LOCATION_PROPERTY, ICAL_DESCRIPTION_PROPERTY};
		struct ev e;
		char *before;

		if (c == m ||
		    icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) == NULL ||
		    !str_eq_null(pim_text(c, ICAL_UID_PROPERTY), f->uid))
			continue;
		before = pim_snapshot(c);
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
			if (str_eq_null(pim_text(c, texts[i]), pim_text(was, texts[i])) &&
			    !str_eq_null(pim_text(m, texts[i]), pim_text(was, texts[i])))
				pim_set_text(c, texts[i], pim_text(m, texts[i]));
		if (pim_same_categories(c, was) && !pim_same_categories(m, was))
			copy_categories(c, m);
		if (pim_sensitivity(c) == pim_sensitivity(was) &&
		    pim_sensitivity(m) != pim_sensitivity(was))
			pim_set_sensitivity(c, pim_sensitivity(m));
		if (busy_status(c) == busy_status(was) && busy_status(m) != busy_status(was))
			set_busy(c, busy_status(m));
		if (same_attendees(c, was) && !same_attendees(m, was))
			copy_attendees(c, m);
		if (read_ev(f->vcal, c, f->zone, f->date_utc, &e) == 0) {
			long mine = reminder_minutes(c, &e), had = reminder_minutes(was, &old),
			     cur = reminder_minutes(m, &f->ev);

			if (mine == had && cur != had) {
				if (cur < 0)
					pim_remove_alarm(c);
				else
					pim_set_alarm(c, false, 0, (int)cur);
			}
		}
		pim_touch_if_changed(c, before, now, false);
	}
}

/*
 * An Exception's fields it leaves out are the series' (MS-ASCAL 2.2.2.21),
 * and the series may have just changed: they are copied from the master.
 * Its times and body are not (a phone sends the times, and it may have been
 * sent no body at all); attendees only from 14.0, which sends an
 * exception's own.
 */
static void
inherit_fields(icalcomponent *c, icalcomponent *m, const struct wbxml_node *x, const struct ev *e,
               const struct frame *f, int version)
{
	if (pim_kid(x, CAL, CAL_SUBJECT) == NULL)
		pim_set_text(c, ICAL_SUMMARY_PROPERTY, pim_text(m, ICAL_SUMMARY_PROPERTY));
	if (!has_location(x) &&
	    !str_eq_null(pim_text(c, ICAL_LOCATION_PROPERTY), pim_text(m, ICAL_LOCATION_PROPERTY)))
		pim_set_text(c, ICAL_LOCATION_PROPERTY, pim_text(m, ICAL_LOCATION_PROPERTY));
	if (pim_kid(x, CAL, CAL_CATEGORIES) == NULL && !pim_same_categories(c, m))
		copy_categories(c, m);
	if (pim_kid(x, CAL, CAL_SENSITIVITY) == NULL)
		pim_set_sensitivity(c, pim_sensitivity(m));
	if (pim_kid(x, CAL, CAL_BUSYSTATUS) == NULL)
		set_busy(c, busy_status(m));
	if (pim_kid(x, CAL, CAL_REMINDER) == NULL) {
		long mine = reminder_minutes(c, e), theirs = reminder_minutes(m, &f->ev);

		if (theirs < 0 && mine >= 0)
			pim_remove_alarm(c);
		else if (theirs >= 0 && mine != theirs)
			pim_set_alarm(c, false, 0, (int)theirs);
	}
	if (version >= 140 && pim_kid(x, CAL, CAL_ATTENDEES) == NULL && !same_attendees(c, m))
		copy_attendees(c, m);
}

/* The override of f's master for the occurrence with key k, or NULL. */
static icalcomponent *
find_override(const struct frame *f, int64_t k)
{
	for (icalcomponent *c = icalcomponent_get_first_component(f->vcal, ICAL_VEVENT_COMPONENT);
	     c; c = icalcomponent_get_next_component(f->vcal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *r = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		struct pim_time t;

		if (c != f->m && r != NULL && str_eq_null(pim_text(c, ICAL_UID_PROPERTY), f->uid) &&
		    pim_time_read(f->vcal, r, f->zone, &t) == 0 && key_of_time(f, &t) == k)
			return c;
	}
	return NULL;
}

static void
remove_exdate(const struct frame *f, int64_t k)
{
	icalproperty *drop[64];
	size_t n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(f->m, ICAL_EXDATE_PROPERTY);
	     p && n < 64; p = icalcomponent_get_next_property(f->m, ICAL_EXDATE_PROPERTY)) {
		struct pim_time t;
		if (pim_time_read(f->vcal, p, f->zone, &t) == 0 && key_of_time(f, &t) == k)
			drop[n++] = p;
	}
	for (size_t i = 0; i < n; i++) {
		icalcomponent_remove_property(f->m, drop[i]);
		icalproperty_free(drop[i]);
	}
}

static void
remove_override(const struct frame *f, int64_t k)
{
	icalcomponent *c;

	while ((c = find_override(f, k)) != NULL) {
		icalcomponent_remove_component(f->vcal, c);
		icalcomponent_free(c);
	}
}

/* Whether the occurrence with key k is deleted already (an EXDATE, or a cancelled override). */
static bool
already_deleted(const struct frame *f, int64_t k)
{
	icalcomponent *c = find_override(f, k);

	if (c != NULL)
		return icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED;
	for (icalproperty *p = icalcomponent_get_first_property(f->m, ICAL_EXDATE_PROPERTY); p;
	     p = icalcomponent_get_next_property(f->m, ICAL_EXDATE_PROPERTY)) {
		struct pim_time t;
		if (pim_time_read(f->vcal, p, f->zone, &t) == 0 && key_of_time(f, &t) == k)
			return true;
	}
	return false;
}

/* Delete the occurrence with key k: an EXDATE in the master's frame, no override. */
static void
delete_occurrence(const struct frame *f, const struct wframe *w, int64_t k)
{
	remove_override(f, k);
	remove_exdate(f, k);
	icalcomponent_add_property(f->m, occurrence_prop(ICAL_EXDATE_PROPERTY, k, w));
}

/*
 * The override for the occurrence with key k, made from the master when
 * there is none: a copy without the rule, with a RECURRENCE-ID, starting
 * at the occurrence.
 */
static icalcomponent *
override_for(const struct frame *f, const struct wframe *w, int64_t k, bool *made)
{
	icalcomponent *c = find_override(f, k);
	static const icalproperty_kind gone[] = {ICAL_RRULE_PROPERTY, ICAL_RDATE_PROPERTY,
	                                         ICAL_EXDATE_PROPERTY, ICAL_EXRULE_PROPERTY,
	                                         ICAL_RECURRENCEID_PROPERTY};
	int64_t len = f->ev.end - f->ev.start.utc;

	*made = c == NULL;
	if (c != NULL)
		return c;
	c = icalcomponent_new_clone(f->m);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		pim_remove_all(c, gone[i]);
	icalcomponent_add_property(c, occurrence_prop(ICAL_RECURRENCEID_PROPERTY, k, w));
	if (w->date)
		write_dates(c, date_only(pim_utc_to_local(k + 12 * 3600, w->read)),
		            add_days(date_only(pim_utc_to_local(k + 12 * 3600, w->read)),
		                     days_between(f->ev.sday, f->ev.eday)));
	else
		write_times(c, k, k + len, w->zone ? w->zone : w->read, w->tzid, w->utc);
	icalcomponent_add_component(f->vcal, c);
	return c;
}

/* Apply an exception's (or instance's) times to override c in the master's frame. */
static int
apply_instance_times(const struct frame *f, const struct wframe *w, icalcomponent *c,
                     const struct when *in, const char **errstr)
{
	struct ev e;
	bool allday;
	int64_t start, end;

	if (read_ev(f->vcal, c, w->read, f->date_utc, &e) < 0)
		return 0;
	allday = in->has_allday ? in->allday : e.allday;
	start = in->has_start ? in->start : e.eas_start;
	end = in->has_end ? in->end : in->has_start ? start + (e.eas_end - e.eas_start) : e.eas_end;
	if (end < start || !PIM_TIME_OK(start) || !PIM_TIME_OK(end)) {
		*errstr = "an exception's times out of order or range";
		return -1;
	}
	if (allday == e.allday && start == e.eas_start && end == e.eas_end)
		return 0;
	if (allday) {
		icaltimezone *z = f->date_utc ? NULL : w->read;
		struct icaltimetype s = nearest_date(start, z), d = nearest_date(end, z);

		if (days_between(s, d) < 1)
			d = add_days(s, 1);
		write_dates(c, s, d);
	} else {
		write_times(c, start, end, w->zone ? w->zone : w->read, w->tzid, w->utc);
	}
	return 0;
}

/* The keys of the exceptions the phone was shown (what exceptions() lists). */
static int64_t *
known_keys(const struct frame *f, size_t *n)
{
	struct exc *v = exceptions(f, n);
	int64_t *k = xcalloc(*n ? *n : 1, sizeof(*k));

	for (size_t i = 0; i < *n; i++)
		k[i] = v[i].key;
	free(v);
	return k;
}

/*
 * Calendar:Exceptions of a Change or an Add (before 16.0; a 16.x phone
 * sends none): each deletion an EXDATE, each other exception its override;
 * an exception the phone was shown and no longer lists goes back to being
 * a plain occurrence.
 */
static int
apply_exceptions(const struct frame *f, const struct wframe *w, const struct wbxml_node *list,
                 const int64_t *known, size_t nknown, const struct pim_apply_opts *o,
                 const char **errstr)
{
	int64_t keys[PIM_EAS_MAX_EXCEPTIONS];
	size_t nkeys = 0;

	for (const struct wbxml_node *x = list ? list->first_child : NULL;
	     x && nkeys < PIM_EAS_MAX_EXCEPTIONS; x = x->next) {
		int64_t t, k;
		long del = 0;
		bool made;

		if (x->page != CAL || x->token != CAL_EXCEPTION)
			continue;
		if ((!pim_kid_time(x, CAL, CAL_EXCEPTIONSTARTTIME, &t) &&
		     !pim_kid_time(x, ASB, ASB_INSTANCEID, &t)) ||
		    !PIM_TIME_OK(t))
			continue;
		k = key_of_eas(f, t);
		keys[nkeys++] = k;
		(void)pim_kid_int(x, CAL, CAL_DELETED, 0, 1, &del);
		if (del == 1) {
			if (!already_deleted(f, k))
				delete_occurrence(f, w, k);
			continue;
		}
		{
			struct when in;
			icalcomponent *c = override_for(f, w, k, &made);
			char *before = made ? NULL : pim_snapshot(c);
			struct ev e;

			remove_exdate(f, k);
			read_when(x, &in);
			in.has_tz = false;
			if (apply_instance_times(f, w, c, &in, errstr) < 0) {
				free(before);
				return -1;
			}
			if (read_ev(f->vcal, c, w->read, f->date_utc, &e) == 0) {
				inherit_fields(c, f->m, x, &e, f, o->version);
				apply_instance_fields(c, x, &e, o);
			}
			pim_touch_if_changed(c, before, o->now, false);
		}
	}
	for (size_t i = 0; i < nknown; i++) {
		bool listed = false;

		for (size_t j = 0; j < nkeys && !listed; j++)
			listed = keys[j] == known[i];
		if (!listed) {
			remove_override(f, known[i]);
			remove_exdate(f, known[i]);
		}
	}
	return 0;
}

/* Whether the master's DTSTART changed its form (date, floating, UTC, zone). */
static bool
form_changed(const struct pim_time *a, const struct pim_time *b)
{
	return a->date != b->date || a->floating != b->floating || a->utc_form != b->utc_form ||
	       a->zone != b->zone;
}

/*
 * The EXDATEs and RECURRENCE-IDs of a master whose DTSTART changed form,
 * written in the new form (RFC 5545 3.8.5.1, 3.8.4.4: the same value type
 * and zone as DTSTART); each still names the same occurrence.
 */
static void
rename_occurrences(const struct frame *f, const struct wframe *w)
{
	icalproperty *ex[PIM_ICAL_MAX_RDATES];
	size_t n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(f->m, ICAL_EXDATE_PROPERTY);
	     p && n < PIM_ICAL_MAX_RDATES;
	     p = icalcomponent_get_next_property(f->m, ICAL_EXDATE_PROPERTY))
		ex[n++] = p;
	for (size_t i = 0; i < n; i++) {
		struct pim_time t;

		if (pim_time_read(f->vcal, ex[i], f->zone, &t) == 0 && PIM_TIME_OK(t.utc))
			icalcomponent_add_property(
			    f->m, occurrence_prop(ICAL_EXDATE_PROPERTY, key_of_time(f, &t), w));
		icalcomponent_remove_property(f->m, ex[i]);
		icalproperty_free(ex[i]);
	}
	for (icalcomponent *c = icalcomponent_get_first_component(f->vcal, ICAL_VEVENT_COMPONENT);
	     c; c = icalcomponent_get_next_component(f->vcal, ICAL_VEVENT_COMPONENT)) {
		icalproperty *r = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
		struct pim_time t;

		if (c == f->m || r == NULL ||
		    !str_eq_null(pim_text(c, ICAL_UID_PROPERTY), f->uid) ||
		    pim_time_read(f->vcal, r, f->zone, &t) < 0 || !PIM_TIME_OK(t.utc))
			continue;
		pim_remove_all(c, ICAL_RECURRENCEID_PROPERTY);
		icalcomponent_add_property(
		    c, occurrence_prop(ICAL_RECURRENCEID_PROPERTY, key_of_time(f, &t), w));
	}
}

/* Take out every override and EXDATE of the master (a 16.x series whose pattern or times changed).
 */
static void
drop_all_exceptions(const struct frame *f)
{
	icalcomponent *drop[PIM_ICAL_MAX_COMPONENTS];
	size_t n = 0;

	pim_remove_all(f->m, ICAL_EXDATE_PROPERTY);
	for (icalcomponent *c = icalcomponent_get_first_component(f->vcal, ICAL_VEVENT_COMPONENT);
	     c && n < PIM_ICAL_MAX_COMPONENTS;
	     c = icalcomponent_get_next_component(f->vcal, ICAL_VEVENT_COMPONENT))
		if (c != f->m && icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY) &&
		    str_eq_null(pim_text(c, ICAL_UID_PROPERTY), f->uid))
			drop[n++] = c;
	for (size_t i = 0; i < n; i++) {
		icalcomponent_remove_component(f->vcal, drop[i]);
		icalcomponent_free(drop[i]);
	}
}

/*
 * Apply the master's times: the phone's start, end, all-day flag and zone
 * (each, when absent, the object's). *changed set when they moved.
 */
static int
apply_master_times(icalcomponent *vcal, icalcomponent *m, const struct frame *old,
                   const struct when *in, const struct pim_apply_opts *o, bool *changed,
                   const char **errstr)
{
	bool allday = in->has_allday ? in->allday : old ? old->ev.allday : false;
	int64_t start, end;
	struct pim_eas_tz tz;
	bool date_utc = o->version >= 160;

	*changed = false;
	if (in->has_start)
		start = in->start;
	else if (old != NULL)
		start = old->ev.eas_start;
	else {
		/* MS-ASCAL 3.2.4.4: now, rounded up to the half hour. */
		start = (o->now + 1799) / 1800 * 1800;
		if (allday)
			start = midnight(date_only(pim_utc_to_local(o->now, o->zone)), o->zone);
	}
	if (in->has_end)
		end = in->end;
	else if (old != NULL)
		end =
		    in->has_start ? start + (old->ev.eas_end - old->ev.eas_start) : old->ev.eas_end;
	else
		end = start + (allday ? 86400 : 1800);
	if (end < start) {
		*errstr = "EndTime before StartTime";
		return -1;
	}
	if (!PIM_TIME_OK(start) || !PIM_TIME_OK(end)) {
		*errstr = "times outside what EAS carries";
		return -1;
	}
	if (in->has_tz)
		tz = in->tz;
	else if (old != NULL)
		pim_eas_tz_of(old->ev.start.utc_form ? NULL : old->zone, start, &tz);
	else
		pim_eas_tz_of(o->zone, start, &tz);

	if (allday) {
		/* The days the phone means: its midnights, read in its zone (16.x: UTC). */
		icaltimezone *z = NULL;
		bool owned = false;
		struct icaltimetype s, e;

		if (!date_utc && in->has_tz && !tz_is_utc(&tz)) {
			struct pim_eas_tz mine;
			pim_eas_tz_of(old ? old->zone : o->zone, start, &mine);
			if (pim_eas_tz_same(&mine, &tz))
				z = old ? old->zone : o->zone;
			else
				z = pim_zone_of_blob(&tz, start, NULL, &owned);
		} else if (!date_utc && !in->has_tz) {
			z = old ? old->zone : o->zone;
		}
		s = nearest_date(start, z);
		e = nearest_date(end, z);
		if (owned)
			icaltimezone_free(z, 1);
		if (days_between(s, e) < 1)
			e = add_days(s, 1);
		if (old != NULL && old->ev.allday &&
		    icaltime_compare_date_only(s, old->ev.sday) == 0 &&
		    icaltime_compare_date_only(e, old->ev.eday) == 0)
			return 0;
		write_dates(m, s, e);
		*changed = true;
		return 0;
	}
	if (old != NULL && !old->ev.allday && start == old->ev.eas_start &&
	    end == old->ev.eas_end) {
		struct pim_eas_tz had;

		pim_eas_tz_of(old->ev.start.utc_form ? NULL : old->zone, start, &had);
		if (!in->has_tz || pim_eas_tz_same(&had, &tz))
			return 0;
	}
	*changed = true;
	{
		icaltimezone *z = NULL;
		bool owned = false;
		const char *tzid = NULL;
		struct pim_eas_tz mine;

		/* The object's own frame when its rules are the phone's: TZID, floating and Z stay.
		 */
		if (old != NULL && !old->ev.allday) {
			pim_eas_tz_of(old->ev.start.utc_form ? NULL : old->zone, start, &mine);
			if (pim_eas_tz_same(&mine, &tz)) {
				if (old->ev.start.utc_form)
					write_times(m, start, end, NULL, NULL, true);
				else if (old->ev.start.floating)
					write_times(m, start, end, old->zone, NULL, false);
				else
					write_times(m, start, end, old->ev.start.zone,
					            old->ev.start.tzid, false);
				return 0;
			}
		}
		if (tz_is_utc(&tz)) {
			write_times(m, start, end, NULL, NULL, true);
			return 0;
		}
		pim_eas_tz_of(o->zone, start, &mine);
		if (o->zone != NULL && pim_eas_tz_same(&mine, &tz))
			z = o->zone;
		else
			z = pim_zone_of_blob(&tz, start,
			                     o->zone ? pim_ical_zone_name(o->zone)
			                     : old && old->ev.start.tzid ? old->ev.start.tzid
			                                                 : NULL,
			                     &owned);
		if (z == NULL) {
			write_times(m, start, end, NULL, NULL, true);
			return 0;
		}
		tzid = pim_ical_ensure_vtimezone(vcal, z, start);
		if (tzid == NULL)
			write_times(m, start, end, NULL, NULL, true);
		else
			write_times(m, start, end, icalcomponent_get_timezone(vcal, tzid), tzid,
			            false);
		if (owned)
			icaltimezone_free(z, 1);
	}
	return 0;
}

/* The phone's UID for an Add: UID before 16.0, ClientUid from 16.0. */
static const char *
phone_uid(const struct wbxml_node *app, int version)
{
	const char *u = version >= 160 ? pim_kid_text(app, CAL, CAL_CLIENTUID)
	                               : pim_kid_text(app, CAL, CAL_UID);

	if (u == NULL || *u == '\0' || strlen(u) > 300)
		return NULL;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7F)
			return NULL;
	return u;
}

static icalcomponent *
new_vcalendar(void)
{
	icalcomponent *v = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);

	icalcomponent_add_property(v, icalproperty_new_version("2.0"));
	icalcomponent_add_property(v, icalproperty_new_prodid("-//abqd//ActiveSync gateway//EN"));
	return v;
}

/* A 16.x Change of one occurrence: its override made or replaced. */
static int
apply_instance(icalcomponent *vcal, const struct wbxml_node *app, const struct pim_apply_opts *o,
               const char **errstr)
{
	struct frame f;
	struct wframe w;
	struct when in;
	icalcomponent *c;
	bool made;
	int64_t k;
	struct ev e;
	char *before;

	if (frame_read(vcal, o->zone, o->version, &f) < 0 || !f.recurring ||
	    !PIM_TIME_OK(o->instance)) {
		*errstr = "an occurrence of an event that does not repeat";
		return -1;
	}
	wframe_of(vcal, f.m, o->zone, &w);
	k = key_of_eas(&f, o->instance);
	c = override_for(&f, &w, k, &made);
	before = made ? NULL : pim_snapshot(c);
	remove_exdate(&f, k);
	read_when(app, &in);
	in.has_tz = false;
	if (apply_instance_times(&f, &w, c, &in, errstr) < 0) {
		free(before);
		return -1;
	}
	if (read_ev(vcal, c, w.read, f.date_utc, &e) == 0)
		apply_instance_fields(c, app, &e, o);
	pim_touch_if_changed(c, before, o->now, true);
	return 0;
}

int
pim_event_from_eas(const struct wbxml_node *app, icalcomponent *existing,
                   const struct pim_apply_opts *o, icalcomponent **out, const char **errstr)
{
	icalcomponent *vcal, *m;
	struct frame old, *fo = NULL;
	struct wframe w;
	struct when in;
	const struct wbxml_node *k;
	int64_t *known = NULL;
	size_t nknown = 0;
	bool changed = false, recur_changed = false;
	char *before = NULL;
	icalcomponent *was = NULL;
	long v;

	pim_ical_init();
	*out = NULL;
	if (existing != NULL) {
		vcal = icalcomponent_new_clone(existing);
		if (frame_read(vcal, o->zone, o->version, &old) < 0) {
			icalcomponent_free(vcal);
			*errstr = "the object holds no event to change";
			return -1;
		}
		fo = &old;
	} else {
		vcal = new_vcalendar();
	}
	if (o->has_instance) {
		if (existing == NULL || apply_instance(vcal, app, o, errstr) < 0) {
			if (existing == NULL)
				*errstr = "an occurrence of an event that does not exist";
			icalcomponent_free(vcal);
			return -1;
		}
		*out = vcal;
		return 0;
	}
	if (fo != NULL) {
		m = fo->m;
		before = pim_snapshot(m);
		was = icalcomponent_new_clone(m);
		if (fo->recurring && fo->expressible)
			known = known_keys(fo, &nknown);
	} else {
		const char *u = phone_uid(app, o->version);
		char *fresh = u || o->uid ? NULL : pim_new_uid();

		m = icalcomponent_new(ICAL_VEVENT_COMPONENT);
		icalcomponent_add_property(m, icalproperty_new_uid(u        ? u
		                                                   : o->uid ? o->uid
		                                                            : fresh));
		free(fresh);
		icalcomponent_add_component(vcal, m);
	}

	read_when(app, &in);
	if (apply_master_times(vcal, m, fo, &in, o, &changed, errstr) < 0)
		goto fail;

	/* The fields. */
	if ((k = pim_kid(app, CAL, CAL_SUBJECT)) != NULL)
		pim_set_text(m, ICAL_SUMMARY_PROPERTY, wbxml_text(k));
	else if (fo && pim_absent_clears(o, CAL_SUBJECT))
		pim_remove_all(m, ICAL_SUMMARY_PROPERTY);
	if (has_location(app))
		set_location(m, app);
	else if (fo && pim_absent_clears(o, CAL_LOCATION))
		pim_remove_all(m, ICAL_LOCATION_PROPERTY);
	if ((k = pim_kid(app, ASB, ASB_BODY)) != NULL)
		set_body(m, k);
	if (pim_kid_int(app, CAL, CAL_SENSITIVITY, 0, 3, &v))
		pim_set_sensitivity(m, (int)v);
	else if (fo && pim_absent_clears(o, CAL_SENSITIVITY))
		pim_remove_all(m, ICAL_CLASS_PROPERTY);
	if (pim_kid_int(app, CAL, CAL_BUSYSTATUS, 0, 5, &v))
		set_busy(m, v);
	else if (fo && pim_absent_clears(o, CAL_BUSYSTATUS)) {
		pim_remove_all(m, ICAL_TRANSP_PROPERTY);
		pim_set_x_text(m, "X-MICROSOFT-CDO-BUSYSTATUS", NULL);
	}
	{
		struct ev e;
		if (read_ev(vcal, m, o->zone, o->version >= 160, &e) == 0) {
			if ((k = pim_kid(app, CAL, CAL_REMINDER)) != NULL)
				set_reminder(m, k, &e);
			else if (fo && pim_absent_clears(o, CAL_REMINDER))
				pim_remove_alarm(m);
		}
	}
	if ((k = pim_kid(app, CAL, CAL_CATEGORIES)) != NULL)
		pim_set_categories(m, k, CAL, CAL_CATEGORY);
	else if (fo && pim_absent_clears(o, CAL_CATEGORIES))
		pim_remove_all(m, ICAL_CATEGORIES_PROPERTY);
	if (o->version < 160 && pim_kid_text(app, CAL, CAL_ORGANIZEREMAIL) != NULL)
		set_organizer(m, pim_kid_text(app, CAL, CAL_ORGANIZEREMAIL),
		              pim_kid_text(app, CAL, CAL_ORGANIZERNAME));
	{
		long rr = 1;
		bool rsvp = !pim_kid_int(app, CAL, CAL_RESPONSEREQUESTED, 0, 1, &rr) || rr == 1;

		if ((k = pim_kid(app, CAL, CAL_ATTENDEES)) != NULL)
			set_attendees(m, k, o, rsvp);
		else if (fo && pim_absent_clears(o, CAL_ATTENDEES))
			set_attendees(m, NULL, o, rsvp);
	}
	if (pim_kid_int(app, CAL, CAL_MEETINGSTATUS, 0, 15, &v))
		set_meeting_status(m, v);
	if (pim_kid_int(app, CAL, CAL_DISALLOWNEWTIMEPROPOSAL, 0, 1, &v))
		pim_set_x_text(m, "X-MICROSOFT-DISALLOW-COUNTER", v ? "TRUE" : "FALSE");
	else if (fo && o->version >= 140 && pim_absent_clears(o, CAL_DISALLOWNEWTIMEPROPOSAL))
		pim_set_x_text(m, "X-MICROSOFT-DISALLOW-COUNTER", NULL);
	if (pim_kid_time(app, CAL, CAL_APPOINTMENTREPLYTIME, &in.start)) {
		char buf[PIM_TIME_COMPACT_LEN + 1];
		pim_set_x_text(m, "X-MICROSOFT-CDO-REPLYTIME", pim_time_compact(in.start, buf));
	}

	/* The recurrence, in the frame the times now have. */
	wframe_of(vcal, m, o->zone, &w);
	{
		struct frame now;
		const struct wbxml_node *rec = pim_kid(app, CAL, CAL_RECURRENCE);
		struct pim_recur r;

		if (frame_read(vcal, o->zone, o->version, &now) < 0) {
			*errstr = "the event's new times cannot be read back";
			goto fail;
		}
		if (rec != NULL && pim_recur_read(rec, CAL, &r) == 0) {
			if (!(now.recurring && now.expressible && pim_recur_same(&r, &now.recur))) {
				struct icalrecurrencetype rule;

				pim_recur_to_rrule(&r, &now.ev.start, now.zone, now.date_utc,
				                   &rule);
				pim_remove_all(m, ICAL_RRULE_PROPERTY);
				pim_remove_all(m, ICAL_RDATE_PROPERTY);
				pim_remove_all(m, ICAL_EXRULE_PROPERTY);
				icalcomponent_add_property(m, icalproperty_new_rrule(rule));
				recur_changed = true;
			}
		} else if (rec == NULL && fo && fo->recurring && fo->expressible &&
		           pim_absent_clears(o, CAL_RECURRENCE)) {
			pim_remove_all(m, ICAL_RRULE_PROPERTY);
			pim_remove_all(m, ICAL_RDATE_PROPERTY);
			drop_all_exceptions(&now);
			recur_changed = true;
		} else if (changed && now.recurring && fo && fo->expressible &&
		           form_changed(&fo->ev.start, &now.ev.start)) {
			/* The rule's UNTIL takes the new start's form. */
			struct icalrecurrencetype rule;

			pim_recur_to_rrule(&fo->recur, &now.ev.start, now.zone, now.date_utc,
			                   &rule);
			pim_remove_all(m, ICAL_RRULE_PROPERTY);
			icalcomponent_add_property(m, icalproperty_new_rrule(rule));
		}
	}
	{
		struct frame now;

		if (frame_read(vcal, o->zone, o->version, &now) < 0) {
			*errstr = "the event's new times cannot be read back";
			goto fail;
		}
		if (was != NULL && now.recurring)
			propagate(was, &now, o->now);
		if (fo && now.recurring && form_changed(&fo->ev.start, &now.ev.start))
			rename_occurrences(&now, &w);
		/* 16.x (MS-ASCAL 2.2.2.22): a new pattern or new times end the exceptions. */
		if (o->version >= 160 && fo && fo->recurring && (recur_changed || changed))
			drop_all_exceptions(&now);
		else if (now.recurring && (now.expressible || !fo) &&
		         ((k = pim_kid(app, CAL, CAL_EXCEPTIONS)) != NULL ||
		          (fo && pim_absent_clears(o, CAL_EXCEPTIONS)))) {
			if (apply_exceptions(&now, &w, k, known, nknown, o, errstr) < 0)
				goto fail;
		}
	}
	pim_touch_if_changed(m, before, o->now, changed || recur_changed);
	free(known);
	if (was != NULL)
		icalcomponent_free(was);
	*out = vcal;
	return 0;
fail:
	free(before);
	free(known);
	if (was != NULL)
		icalcomponent_free(was);
	icalcomponent_free(vcal);
	return -1;
}

int
pim_event_delete_instance(icalcomponent *vcal, int64_t instance, const struct pim_apply_opts *o,
                          const char **errstr)
{
	struct frame f;
	struct wframe w;

	pim_ical_init();
	if (frame_read(vcal, o->zone, o->version, &f) < 0 || !f.recurring ||
	    !PIM_TIME_OK(instance)) {
		*errstr = "no recurring event";
		return -1;
	}
	wframe_of(vcal, f.m, o->zone, &w);
	delete_occurrence(&f, &w, key_of_eas(&f, instance));
	pim_touch(f.m, o->now, false);
	return 0;
}
