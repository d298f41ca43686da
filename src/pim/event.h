/*
 * event.h: calendar items between iCalendar (VEVENT, RFC 5545) and the
 * ActiveSync Calendar class (MS-ASCAL), both ways, for EAS 12.0 to 16.1.
 *
 * Server to phone, pim_event_to_eas writes one calendar object resource
 * (the master VEVENT of a UID, its RECURRENCE-ID overrides, its
 * VTIMEZONEs) as the Calendar elements of a Sync ApplicationData: the
 * TimeZone blob for the rules in force at the start (tz.h), the times,
 * all-day events, subject, location, body, organizer and attendees with
 * their answers, busy status, sensitivity, the first alarm as Reminder,
 * categories, meeting status and the user's own response, the recurrence
 * and its exceptions (overrides and EXDATEs). Version differences: 16.0
 * and 16.1 write the location as AirSyncBase:Location, name an
 * occurrence by AirSyncBase:InstanceId instead of ExceptionStartTime, and
 * send an all-day event as UTC midnights without a TimeZone.
 *
 * An RRULE no EAS pattern expresses (see recur.c) is sent as the master's
 * first occurrence alone, with a note at the end of the body saying how it
 * repeats; the rule, its EXDATEs and overrides stay on the server
 * untouched whatever the phone sends back without a Recurrence of its own.
 *
 * Phone to server, pim_event_from_eas applies an Add or a Change: what EAS
 * expresses is replaced, everything else is kept (X- properties, further
 * alarms, attendee parameters EAS has no word for, other components). A
 * time that did not change keeps its property as written (TZID, floating,
 * DURATION); a changed one is written in the zone pim_tz_to_ical matches to
 * the phone's blob, preferring the user's own zone and then the one the
 * object had, with its VTIMEZONE added to the object. Elements a Change
 * leaves out follow MS-ASCMD's ghosting rules (pim_apply_opts), except
 * three that are never deleted by omission: the body (phones leave out one
 * they were sent truncated), the organizer (a meeting's organizer is the
 * server's to say) and a rule the phone was never shown.
 */
#ifndef ABQ_PIM_EVENT_H
#define ABQ_PIM_EVENT_H

#include <stdint.h>

#include "pim/ical.h"

struct wbxml_node;

/*
 * The event of vcal as Calendar elements under app (an ApplicationData the
 * caller built). Returns 0, or -1 with *errstr when vcal holds no VEVENT
 * with a usable DTSTART (app is then left as it was).
 */
int pim_event_to_eas(icalcomponent *vcal, const struct pim_eas_opts *o, struct wbxml_node *app,
                     const char **errstr);

/*
 * Apply the phone's ApplicationData: onto existing (a Change; not
 * modified) or, existing NULL, as a new object (an Add: the phone's UID
 * before 16.0, its ClientUid from 16.0, else o->uid, else a random one).
 * With o->has_instance the data is one occurrence's (16.x): it becomes or
 * replaces that occurrence's override. *out is a new VCALENDAR to free.
 * Returns 0, or -1 with *errstr when the data cannot make an event (an
 * EndTime before the StartTime, a Change of an object with no event, an
 * instance of an event that does not repeat): a Sync Status 6.
 */
int pim_event_from_eas(const struct wbxml_node *app, icalcomponent *existing,
                       const struct pim_apply_opts *o, icalcomponent **out, const char **errstr);

/*
 * A 16.x Delete of one occurrence (AirSyncBase:InstanceId): an EXDATE in
 * vcal (modified in place; o gives the user's zone, the version and the
 * time), its override taken out. 0, or -1 with *errstr when vcal has no
 * recurring event.
 */
int pim_event_delete_instance(icalcomponent *vcal, int64_t instance, const struct pim_apply_opts *o,
                              const char **errstr);

/* pim_event_span's end of a series that recurs for ever. */
#define PIM_SPAN_OPEN INT64_MAX

/*
 * The span of vcal's event, for a Sync's FilterType (MS-ASCMD 2.2.3.70.1:
 * an item is in the window when it ends after its start; a series when
 * any of its occurrences does): *start_r its first start, *end_r the end
 * of its last occurrence (pim_ical_last_start, the master's duration
 * added; an override's own end when later), PIM_SPAN_OPEN when it recurs
 * for ever; instants (UTC), floating times and dates read as UTC (a day at
 * most off: the window is days long). 0, or -1 with *errstr when vcal has
 * no event with a start.
 */
int pim_event_span(icalcomponent *vcal, int64_t *start_r, int64_t *end_r, const char **errstr);

/* The UID of vcal's event (the UID element of an Add's response), or NULL. */
const char *pim_event_uid(icalcomponent *vcal);

#endif
