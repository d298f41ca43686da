/*
 * task.c: VTODO <-> the EAS Tasks class (task.h).
 *
 * EAS gives each task date twice: DueDate is the user's wall-clock time
 * (Exchange writes it in the UTC spelling, "2026-12-06T00:00:00.000Z"
 * meaning midnight wherever the user is) and UtcDueDate the instant. A
 * date-only DUE is that date's midnight in the user's zone; a timed one
 * its instant, and the wall-clock time in the user's zone. Back from the
 * phone the wall-clock time decides the form: midnight on a task whose
 * date was date-only (or a new task) is a DATE again, anything else a
 * DATE-TIME in the task's own frame (its TZID, floating or UTC; a new
 * task's in the user's zone).
 */
#include "pim/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "pim/eastime.h"
#include "pim/ical_int.h"

#define TSK WBXML_PAGE_TASKS
#define ASB WBXML_PAGE_AIRSYNCBASE

#define NOTE_HEAD "\n\n[This task repeats (RRULE:"
#define NOTE_TAIL "); only its next due date is shown here.]"

/* One of a task's dates as EAS sees it. */
struct tdate {
	bool set;
	struct pim_time t;
	int64_t utc;  /* UtcDueDate / UtcStartDate */
	int64_t wall; /* DueDate / StartDate: the wall-clock time, as if UTC */
};

static void
read_tdate(icalcomponent *vcal, icalcomponent *c, icalproperty_kind kind, icaltimezone *user,
           struct tdate *d)
{
	struct icaltimetype w;

	memset(d, 0, sizeof(*d));
	if (pim_time_read(vcal, icalcomponent_get_first_property(c, kind), user, &d->t) < 0)
		return;
	d->set = true;
	d->utc = d->t.utc;
	w = d->t.date || d->t.floating ? d->t.local : pim_utc_to_local(d->t.utc, user);
	d->wall = pim_civil_to_epoch(w.year, w.month, w.day, w.is_date ? 0 : w.hour,
	                             w.is_date ? 0 : w.minute, w.is_date ? 0 : w.second);
}

static bool
is_complete(icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_PERCENTCOMPLETE_PROPERTY);

	return icalcomponent_get_status(c) == ICAL_STATUS_COMPLETED ||
	       icalcomponent_get_first_property(c, ICAL_COMPLETED_PROPERTY) != NULL ||
	       (p != NULL && icalproperty_get_percentcomplete(p) >= 100);
}

static int
importance(icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c, ICAL_PRIORITY_PROPERTY);
	int v = p ? icalproperty_get_priority(p) : 0;

	if (v >= 1 && v <= 4)
		return 2;
	if (v >= 6 && v <= 9)
		return 0;
	return 1;
}

/* The instant of c's first alarm: true and *at, else false. */
static bool
alarm_at(icalcomponent *c, const struct tdate *start, const struct tdate *due, int64_t *at)
{
	int64_t s = start->set ? start->utc : due->set ? due->utc : 0;
	int64_t e = due->set ? due->utc : s;
	icalcomponent *a = pim_first_alarm(c);
	icalproperty *tr = a ? icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY) : NULL;

	if (tr == NULL)
		return false;
	/* A relative trigger needs the date it is relative to. */
	if (icaltime_is_null_time(icalproperty_get_trigger(tr).time) && !start->set && !due->set)
		return false;
	return pim_alarm_time(a, s, e, at);
}

/* The base of a task's rule: DTSTART, else DUE. */
static const struct tdate *
rule_base(const struct tdate *start, const struct tdate *due)
{
	return start->set ? start : due->set ? due : NULL;
}

int
pim_task_to_eas(icalcomponent *vcal, const struct pim_eas_opts *o, struct wbxml_node *app,
                const char **errstr)
{
	icalcomponent *t;
	struct tdate start, due;
	const struct tdate *base;
	icalproperty *rp;
	int64_t at;
	bool recur_ok = false, complete;
	struct pim_recur r;
	const char *why = NULL;

	pim_ical_init();
	t = pim_master(vcal, ICAL_VTODO_COMPONENT);
	if (t == NULL) {
		*errstr = "no VTODO";
		return -1;
	}
	read_tdate(vcal, t, ICAL_DTSTART_PROPERTY, o->zone, &start);
	read_tdate(vcal, t, ICAL_DUE_PROPERTY, o->zone, &due);
	base = rule_base(&start, &due);
	rp = icalcomponent_get_first_property(t, ICAL_RRULE_PROPERTY);
	if (rp != NULL && base != NULL) {
		struct icalrecurrencetype rule = icalproperty_get_rrule(rp);
		icaltimezone *z = base->t.zone ? base->t.zone : o->zone;

		recur_ok = icalcomponent_get_next_property(t, ICAL_RRULE_PROPERTY) == NULL &&
		           pim_recur_from_rrule(&rule, &base->t, z, false, &r, &why) == 0;
		if (recur_ok) {
			r.has_start = true;
			r.start = base->utc;
		}
	}
	if (rp != NULL && !recur_ok) {
		const char *d = pim_text(t, ICAL_DESCRIPTION_PROPERTY);
		struct icalrecurrencetype rule = icalproperty_get_rrule(rp);
		char *rs = icalrecurrencetype_as_string_r(&rule);
		char *body = xasprintf("%s" NOTE_HEAD "%s" NOTE_TAIL, d ? d : "",
		                       rs    ? rs
		                       : why ? why
		                             : "");

		icalmemory_free_buffer(rs);
		pim_add_body(app, body, NULL, o);
		free(body);
	} else {
		pim_add_body(app, pim_text(t, ICAL_DESCRIPTION_PROPERTY), NULL, o);
	}
	pim_add_text(app, TSK, TASK_SUBJECT, pim_text(t, ICAL_SUMMARY_PROPERTY));
	pim_add_int(app, TSK, TASK_IMPORTANCE, importance(t));
	if (start.set) {
		pim_add_long(app, TSK, TASK_UTCSTARTDATE, start.utc);
		pim_add_long(app, TSK, TASK_STARTDATE, start.wall);
	}
	if (due.set) {
		pim_add_long(app, TSK, TASK_UTCDUEDATE, due.utc);
		pim_add_long(app, TSK, TASK_DUEDATE, due.wall);
	}
	pim_add_categories(app, TSK, TASK_CATEGORIES, TASK_CATEGORY, t);
	if (recur_ok)
		pim_recur_write(app, TSK, &r, o->version);
	complete = is_complete(t);
	pim_add_int(app, TSK, TASK_COMPLETE, complete);
	if (complete) {
		icalproperty *p = icalcomponent_get_first_property(t, ICAL_COMPLETED_PROPERTY);
		struct pim_time ct;

		if (p == NULL)
			p = icalcomponent_get_first_property(t, ICAL_LASTMODIFIED_PROPERTY);
		if (p == NULL)
			p = icalcomponent_get_first_property(t, ICAL_DTSTAMP_PROPERTY);
		if (p != NULL && pim_time_read(vcal, p, o->zone, &ct) == 0)
			pim_add_long(app, TSK, TASK_DATECOMPLETED, ct.utc);
	}
	pim_add_int(app, TSK, TASK_SENSITIVITY, pim_sensitivity(t));
	if (alarm_at(t, &start, &due, &at)) {
		pim_add_long(app, TSK, TASK_REMINDERTIME, at);
		pim_add_int(app, TSK, TASK_REMINDERSET, 1);
	} else {
		pim_add_int(app, TSK, TASK_REMINDERSET, 0);
	}
	return 0;
}

const char *
pim_task_uid(icalcomponent *vcal)
{
	icalcomponent *t = pim_master(vcal, ICAL_VTODO_COMPONENT);

	return t ? pim_text(t, ICAL_UID_PROPERTY) : NULL;
}

/* ---- Phone to server ---------------------------------------------------- */

/*
 * Apply one of the phone's dates (wall: DueDate, utc: UtcDueDate; either
 * may be missing) to property kind of c, whose current value was old.
 */
static void
apply_tdate(icalcomponent *vcal, icalcomponent *c, icalproperty_kind kind, const struct tdate *old,
            bool has_wall, int64_t wall, bool has_utc, int64_t utc, const struct pim_apply_opts *o)
{
	struct icaltimetype w;
	bool midnight;

	if (!has_wall && !has_utc)
		return;
	if (!has_wall)
		wall = pim_local_to_utc(pim_utc_to_local(utc, o->zone), NULL);
	w = pim_epoch_to_civil(wall, false);
	if (!has_utc)
		utc = pim_local_to_utc(w, o->zone);
	midnight = w.hour == 0 && w.minute == 0 && w.second == 0;
	if (old->set && old->wall == wall && (old->t.date || old->utc == utc))
		return;
	if (midnight && (!old->set || old->t.date)) {
		w.is_date = 1;
		pim_set_time(c, kind, w, NULL, false);
		return;
	}
	if (old->set && !old->t.date) {
		if (old->t.utc_form)
			pim_set_time(c, kind, pim_epoch_to_civil(utc, false), NULL, true);
		else if (old->t.floating)
			pim_set_time(c, kind, w, NULL, false);
		else
			pim_set_time(c, kind, pim_utc_to_local(utc, old->t.zone), old->t.tzid,
			             false);
		return;
	}
	if (o->zone != NULL && o->zone != icaltimezone_get_utc_timezone()) {
		const char *tzid = pim_ical_ensure_vtimezone(vcal, o->zone, utc);

		if (tzid != NULL) {
			pim_set_time(c, kind, pim_utc_to_local(utc, o->zone), tzid, false);
			return;
		}
	}
	pim_set_time(c, kind, pim_epoch_to_civil(utc, false), NULL, true);
}

static void
apply_complete(icalcomponent *t, const struct wbxml_node *app, const struct pim_apply_opts *o)
{
	long v;
	int64_t when;
	icalproperty *pc = icalcomponent_get_first_property(t, ICAL_PERCENTCOMPLETE_PROPERTY);

	if (!pim_kid_int(app, TSK, TASK_COMPLETE, 0, 1, &v))
		return;
	if (v == 1) {
		struct tdate had;
		bool given = pim_kid_time(app, TSK, TASK_DATECOMPLETED, &when);

		read_tdate(NULL, t, ICAL_COMPLETED_PROPERTY, NULL, &had);
		if (!given)
			when = had.set ? had.utc : o->now;
		if (!had.set || had.utc != when) {
			struct icaltimetype ct = pim_epoch_to_civil(when, false);
			ct.zone = icaltimezone_get_utc_timezone();
			pim_remove_all(t, ICAL_COMPLETED_PROPERTY);
			icalcomponent_add_property(t, icalproperty_new_completed(ct));
		}
		if (icalcomponent_get_status(t) != ICAL_STATUS_COMPLETED)
			icalcomponent_set_status(t, ICAL_STATUS_COMPLETED);
		if (pc != NULL)
			icalproperty_set_percentcomplete(pc, 100);
		return;
	}
	if (!is_complete(t))
		return;
	pim_remove_all(t, ICAL_COMPLETED_PROPERTY);
	if (icalcomponent_get_status(t) == ICAL_STATUS_COMPLETED)
		icalcomponent_set_status(t, ICAL_STATUS_NEEDSACTION);
	if (pc != NULL && icalproperty_get_percentcomplete(pc) >= 100)
		icalproperty_set_percentcomplete(pc, 0);
}

static void
strip_note(char *s)
{
	char *n = s ? strstr(s, NOTE_HEAD) : NULL;

	if (n != NULL) {
		char *tail = strstr(n, NOTE_TAIL);
		if (tail != NULL && tail[strlen(NOTE_TAIL)] == '\0')
			*n = '\0';
	}
}

static icalcomponent *
new_task(const struct pim_apply_opts *o)
{
	icalcomponent *v = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
	icalcomponent *t = icalcomponent_new(ICAL_VTODO_COMPONENT);
	char *fresh = o->uid ? NULL : pim_new_uid();

	icalcomponent_add_property(v, icalproperty_new_version("2.0"));
	icalcomponent_add_property(v, icalproperty_new_prodid("-//abqd//ActiveSync gateway//EN"));
	icalcomponent_add_property(t, icalproperty_new_uid(o->uid ? o->uid : fresh));
	free(fresh);
	icalcomponent_add_component(v, t);
	return v;
}

int
pim_task_from_eas(const struct wbxml_node *app, icalcomponent *existing,
                  const struct pim_apply_opts *o, icalcomponent **out, const char **errstr)
{
	icalcomponent *vcal, *t;
	const struct wbxml_node *k;
	struct tdate start, due;
	bool change = existing != NULL, moved = false;
	int64_t a, b;
	long v;

	pim_ical_init();
	*out = NULL;
	vcal = change ? icalcomponent_new_clone(existing) : new_task(o);
	t = pim_master(vcal, ICAL_VTODO_COMPONENT);
	if (t == NULL) {
		icalcomponent_free(vcal);
		*errstr = "the object holds no task to change";
		return -1;
	}
	if ((k = pim_kid(app, TSK, TASK_SUBJECT)) != NULL)
		pim_set_text(t, ICAL_SUMMARY_PROPERTY, wbxml_text(k));
	else if (change && pim_absent_clears(o, TASK_SUBJECT))
		pim_remove_all(t, ICAL_SUMMARY_PROPERTY);
	if ((k = pim_kid(app, ASB, ASB_BODY)) != NULL) {
		char *html, *text = pim_read_body(k, &html);

		if (text != NULL) {
			strip_note(text);
			pim_set_text(t, ICAL_DESCRIPTION_PROPERTY, text);
		}
		free(text);
		free(html);
	}
	if (pim_kid_int(app, TSK, TASK_IMPORTANCE, 0, 2, &v) && v != importance(t)) {
		pim_remove_all(t, ICAL_PRIORITY_PROPERTY);
		icalcomponent_add_property(t, icalproperty_new_priority(v == 2   ? 1
		                                                        : v == 1 ? 5
		                                                                 : 9));
	} else if (!pim_kid(app, TSK, TASK_IMPORTANCE) && change &&
	           pim_absent_clears(o, TASK_IMPORTANCE)) {
		pim_remove_all(t, ICAL_PRIORITY_PROPERTY);
	}

	read_tdate(vcal, t, ICAL_DTSTART_PROPERTY, o->zone, &start);
	read_tdate(vcal, t, ICAL_DUE_PROPERTY, o->zone, &due);
	{
		bool hw = pim_kid_time(app, TSK, TASK_STARTDATE, &a);
		bool hu = pim_kid_time(app, TSK, TASK_UTCSTARTDATE, &b);

		if (hw || hu)
			apply_tdate(vcal, t, ICAL_DTSTART_PROPERTY, &start, hw, a, hu, b, o);
		else if (change && start.set && pim_absent_clears(o, TASK_STARTDATE) &&
		         icalcomponent_get_first_property(t, ICAL_RRULE_PROPERTY) == NULL)
			pim_remove_all(t, ICAL_DTSTART_PROPERTY);
		hw = pim_kid_time(app, TSK, TASK_DUEDATE, &a);
		hu = pim_kid_time(app, TSK, TASK_UTCDUEDATE, &b);
		if (hw || hu)
			apply_tdate(vcal, t, ICAL_DUE_PROPERTY, &due, hw, a, hu, b, o);
		else if (change && due.set && pim_absent_clears(o, TASK_DUEDATE))
			pim_remove_all(t, ICAL_DUE_PROPERTY);
	}
	{
		struct tdate s2, d2;

		read_tdate(vcal, t, ICAL_DTSTART_PROPERTY, o->zone, &s2);
		read_tdate(vcal, t, ICAL_DUE_PROPERTY, o->zone, &d2);
		moved = s2.set != start.set || d2.set != due.set ||
		        (s2.set && s2.utc != start.utc) || (d2.set && d2.utc != due.utc);
		start = s2;
		due = d2;
		/* RFC 5545 3.8.2.3: a DUE before DTSTART is no task; the start gives way. */
		if (start.set && due.set && due.utc < start.utc)
			pim_remove_all(t, ICAL_DTSTART_PROPERTY), start.set = false;
	}
	apply_complete(t, app, o);
	if (pim_kid_int(app, TSK, TASK_SENSITIVITY, 0, 3, &v))
		pim_set_sensitivity(t, (int)v);
	else if (change && pim_absent_clears(o, TASK_SENSITIVITY))
		pim_remove_all(t, ICAL_CLASS_PROPERTY);
	if ((k = pim_kid(app, TSK, TASK_CATEGORIES)) != NULL)
		pim_set_categories(t, k, TSK, TASK_CATEGORY);
	else if (change && pim_absent_clears(o, TASK_CATEGORIES))
		pim_remove_all(t, ICAL_CATEGORIES_PROPERTY);
	if (pim_kid_int(app, TSK, TASK_REMINDERSET, 0, 1, &v)) {
		int64_t at, had;

		if (v == 0)
			pim_remove_alarm(t);
		else if (pim_kid_time(app, TSK, TASK_REMINDERTIME, &at) &&
		         !(alarm_at(t, &start, &due, &had) && had == at))
			pim_set_alarm(t, true, at, 0);
	} else if (change && pim_absent_clears(o, TASK_REMINDERSET)) {
		pim_remove_alarm(t);
	}
	if ((k = pim_kid(app, TSK, TASK_RECURRENCE)) != NULL) {
		struct pim_recur r, had;
		const struct tdate *base = rule_base(&start, &due);
		icalproperty *rp = icalcomponent_get_first_property(t, ICAL_RRULE_PROPERTY);
		const char *why;

		if (pim_recur_read(k, TSK, &r) == 0) {
			if (base == NULL) {
				/* A rule needs a DTSTART: the recurrence's Start, else today. */
				int64_t s = r.has_start ? r.start : o->now;
				struct icaltimetype d = pim_utc_to_local(s, o->zone);
				d.is_date = 1;
				d.hour = d.minute = d.second = 0;
				pim_set_time(t, ICAL_DTSTART_PROPERTY, d, NULL, false);
				read_tdate(vcal, t, ICAL_DTSTART_PROPERTY, o->zone, &start);
				base = &start;
			}
			{
				struct icalrecurrencetype cur = rp ? icalproperty_get_rrule(rp)
				                                   : (struct icalrecurrencetype){0};
				icaltimezone *z = base->t.zone ? base->t.zone : o->zone;
				bool same = rp != NULL &&
				            pim_recur_from_rrule(&cur, &base->t, z, false, &had,
				                                 &why) == 0 &&
				            pim_recur_same(&had, &r);

				if (!same) {
					struct icalrecurrencetype rule;
					pim_recur_to_rrule(&r, &base->t, z, false, &rule);
					pim_remove_all(t, ICAL_RRULE_PROPERTY);
					icalcomponent_add_property(t, icalproperty_new_rrule(rule));
					moved = true;
				}
			}
		}
	} else if (change && pim_absent_clears(o, TASK_RECURRENCE)) {
		icalproperty *rp = icalcomponent_get_first_property(t, ICAL_RRULE_PROPERTY);
		const struct tdate *base = rule_base(&start, &due);
		struct pim_recur had;
		const char *why;

		/* Only a rule the phone was shown is the phone's to take away. */
		if (rp != NULL && base != NULL) {
			struct icalrecurrencetype cur = icalproperty_get_rrule(rp);
			if (pim_recur_from_rrule(&cur, &base->t,
			                         base->t.zone ? base->t.zone : o->zone, false, &had,
			                         &why) == 0) {
				pim_remove_all(t, ICAL_RRULE_PROPERTY);
				moved = true;
			}
		}
	}
	pim_touch(t, o->now, moved);
	*out = vcal;
	return 0;
}
