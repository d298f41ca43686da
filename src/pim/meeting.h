/*
 * meeting.h: a mail's iCalendar invitation (an iTIP REQUEST or CANCEL,
 * RFC 5546) as the Email:MeetingRequest element a phone shows with the
 * mail and answers with MeetingResponse (MS-ASEMAIL 2.2.2.48).
 *
 * The command layer finds the text/calendar part of a mail (msgconv.c
 * keeps it while it walks the parts) and hands its bytes here through the
 * codec of pim.h; the function is pure (no clock, no I/O), so that the
 * same mail always gives the same element and the fuzzer can drive it.
 *
 * Implementation: meeting.c.
 */
#ifndef ABQ_PIM_MEETING_H
#define ABQ_PIM_MEETING_H

#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

struct wbxml_node;

/* What an invitation asks (METHOD). */
enum pim_meeting_kind {
	PIM_MEETING_REQUEST = 1, /* IPM.Schedule.Meeting.Request */
	PIM_MEETING_CANCEL = 2,  /* IPM.Schedule.Meeting.Canceled */
};

struct pim_meeting_opts {
	int version;            /* EAS version times ten: 120 ... 161 */
	const char *user_email; /* the account's address (its ATTENDEE's RSVP); NULL: unknown */
	icaltimezone *zone;     /* the user's zone: floating times and dates; NULL: UTC */
	int64_t now;            /* DtStamp when the invitation has no DTSTAMP */
};

/*
 * The invitation ics[0..len) as an Email:MeetingRequest appended to parent
 * (an ApplicationData): times, all day or not, the kind of instance
 * (single, recurring master with its Email:Recurrence, or one occurrence
 * named by RecurrenceId), location (AirSyncBase:Location from 16.0),
 * organizer, reminder (in seconds), whether a response is asked, busy
 * status, sensitivity, the TimeZone blob, GlobalObjId (and Calendar:UID
 * from 16.0), DisallowNewTimeProposal and MeetingMessageType (14.1+).
 * Returns the kind, or -1 with *errstr (parent left as it was) when the
 * bytes are no calendar, its METHOD is neither REQUEST nor CANCEL, or it
 * holds no VEVENT with a usable start.
 */
int pim_meeting_to_eas(const char *ics, size_t len, const struct pim_meeting_opts *o,
                       struct wbxml_node *parent, const char **errstr);

/*
 * The Outlook global object id (MS-OXOCAL 2.2.1.27, MS-ASEMAIL 2.2.2.37)
 * of a UID: the UID's own bytes when it is one written in hex (as Outlook
 * and Exchange write theirs), else the "vCal-Uid" form wrapping it; the
 * instance date (year 0: the whole meeting) in bytes 16-19; creation time
 * zero, as Exchange writes it for an iCalendar UID, so that every message
 * of one meeting carries the same id. *len_r its length; malloc'd.
 */
uint8_t *pim_meeting_goid(const char *uid, int year, int month, int day, size_t *len_r);

#endif
