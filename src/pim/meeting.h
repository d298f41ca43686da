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

/* The user's answers (MeetingResponse UserResponse). */
enum pim_meeting_answer_kind {
	PIM_MEETING_ACCEPT = 1,
	PIM_MEETING_TENTATIVE = 2,
	PIM_MEETING_DECLINE = 3,
};

/* What answering an invitation makes (pim_meeting_answer_clear frees it). */
struct pim_meeting_answer {
	/*
	 * The calendar object to keep: the invitation without its METHOD, the
	 * user's ATTENDEE with PARTSTAT ACCEPTED or TENTATIVE (added when the
	 * invitation did not list the user) and no RSVP; NULL for a decline.
	 */
	char *object;
	/*
	 * The iTIP REPLY for the organizer (RFC 5546 3.2.3): METHOD:REPLY, one
	 * VEVENT with the UID, RECURRENCE-ID and SEQUENCE of the invitation,
	 * DTSTAMP now, the ORGANIZER and the user's ATTENDEE line alone.
	 */
	char *reply;
	char *organizer; /* the organizer's address (malloc'd), or NULL when none */
	char *uid;       /* the event's UID (malloc'd) */
	char *summary;   /* its SUMMARY (malloc'd), "" when none */
};

/*
 * Answer the invitation ics[0..len) (a REQUEST, or a calendar object
 * without METHOD the user was invited to) for user with answer at
 * now (seconds, UTC) into *out (zeroed first). instance (NULL: the whole
 * meeting) names one occurrence of a series by its original start (UTC;
 * an all-day series': a time on its date, as 16.x's InstanceId is): only
 * its override (made from the master when there is none) gets the answer,
 * a declined one becomes an EXDATE, the object is kept either way and the
 * REPLY carries its RECURRENCE-ID. Returns 0, or -1 with
 * *errstr when the bytes are no such object with a VEVENT and a UID, user is
 * NULL, answer is not one of the three, or instance is no occurrence of
 * a recurring master.
 */
int pim_meeting_respond(const char *ics, size_t len, const char *user, int answer,
                        const int64_t *instance, int64_t now, struct pim_meeting_answer *out,
                        const char **errstr);
void pim_meeting_answer_clear(struct pim_meeting_answer *a);

/*
 * Whether the event of the calendar text a[0..alen) is a later revision
 * than the one of b[0..blen) (RFC 5546 2.1.4, 2.1.5): the higher SEQUENCE
 * (absent: 0), at equal SEQUENCE the later DTSTAMP. b's event is its
 * master, else its first override (an invitation to one occurrence); a's
 * is the VEVENT with the same RECURRENCE-ID, else its master. 1 when a is
 * newer; 0 when it is not, when the UIDs differ or either text cannot be
 * read (the caller then keeps to b).
 */
int pim_meeting_newer(const char *a, size_t alen, const char *b, size_t blen);

#endif
