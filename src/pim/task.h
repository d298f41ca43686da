/*
 * task.h: tasks between iCalendar (VTODO, RFC 5545) and the ActiveSync
 * Tasks class (MS-ASTASK), both ways.
 *
 * Fields: Subject (SUMMARY), Body (DESCRIPTION), Importance (PRIORITY:
 * 1-4 high, 5 or none normal, 6-9 low), StartDate/UtcStartDate (DTSTART)
 * and DueDate/UtcDueDate (DUE), each twice as EAS wants them: the user's
 * wall-clock time (written, as Exchange does, in the UTC spelling) and the
 * instant; Complete/DateCompleted (STATUS, COMPLETED, PERCENT-COMPLETE),
 * Sensitivity (CLASS), ReminderSet/ReminderTime (the first VALARM, as an
 * absolute time), Categories, Recurrence (from DTSTART, else DUE; Start,
 * Regenerate 0, DeadOccur 0). A date-only DUE or DTSTART (most clients'
 * tasks) comes back a date while the phone's wall time is midnight.
 *
 * The keeping rule is event.h's: what EAS expresses is replaced, the rest
 * of the VTODO (X- properties, further alarms, RELATED-TO, overrides) is
 * kept; the body is never deleted by omission, nor the DTSTART a rule
 * needs. Regenerate (a task that recurs from its completion) has no
 * iCalendar property and is not kept.
 */
#ifndef ABQ_PIM_TASK_H
#define ABQ_PIM_TASK_H

#include "pim/ical.h"

struct wbxml_node;

/*
 * The VTODO of vcal as Tasks elements under app. 0, or -1 with *errstr
 * when vcal holds no VTODO.
 */
int pim_task_to_eas(icalcomponent *vcal, const struct pim_eas_opts *o, struct wbxml_node *app,
                    const char **errstr);

/*
 * Apply the phone's ApplicationData onto existing (a Change; not modified)
 * or as a new object (existing NULL: an Add, with o->uid or a random UID).
 * *out is a new VCALENDAR to free. 0, or -1 with *errstr (a Change of an
 * object with no VTODO).
 */
int pim_task_from_eas(const struct wbxml_node *app, icalcomponent *existing,
                      const struct pim_apply_opts *o, icalcomponent **out, const char **errstr);

/* The UID of vcal's task, or NULL. */
const char *pim_task_uid(icalcomponent *vcal);

#endif
