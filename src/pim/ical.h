/*
 * ical.h: iCalendar objects as CalDAV serves them, in and out through
 * libical 3, and what the calendar (event.h) and task (task.h) converters
 * share: the options a Sync command gives them, the zones an object names,
 * and the occurrences of a recurring object in a window.
 *
 * A calendar object resource (RFC 4791 4.1) is one VCALENDAR: the master
 * component of one UID (a VEVENT or a VTODO), its RECURRENCE-ID overrides,
 * and the VTIMEZONEs their TZIDs name. Everything here is peer-fed (the
 * CalDAV server holds what any client wrote), so the parser caps the size,
 * the components, the properties and the time zone rules libical would
 * expand, and every expansion of a recurrence is bounded.
 */
#ifndef ABQ_PIM_ICAL_H
#define ABQ_PIM_ICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

struct wbxml_node;

#define PIM_ICAL_MAX_BYTES       (4u * 1024 * 1024) /* one object (inline ATTACH data included) */
#define PIM_ICAL_MAX_COMPONENTS  512                /* components of every depth */
#define PIM_ICAL_MAX_PROPERTIES  16384              /* properties of every component */
#define PIM_ICAL_MAX_DEPTH       4                  /* VCALENDAR > VEVENT > VALARM > X- */
#define PIM_ICAL_MAX_OBSERVANCES 128                /* STANDARD/DAYLIGHT of one VTIMEZONE */
#define PIM_ICAL_MAX_OPEN_RULES  4                  /* of those, yearly rules without an end */
#define PIM_ICAL_MAX_RDATES      1024               /* RDATE values of the whole object */
#define PIM_ICAL_MAX_STEPS       100000             /* recurrence iterator steps of one expansion */
#define PIM_EAS_MAX_EXCEPTIONS   256 /* Calendar:Exception per item (MS-ASCAL 2.2.2.21) */

/*
 * What a Sync, Fetch or Search answer asks of a calendar item or task
 * (server to phone).
 */
struct pim_eas_opts {
	int version; /* EAS version times ten: 120, 121, 140, 141, 160, 161 */
	const char
	    *user_email; /* the account's own address (organizer or attendee); NULL: unknown */
	/*
	 * The user's zone: floating times and dates are read in it, and a
	 * task's local dates. NULL: UTC.
	 */
	icaltimezone *zone;
	/* The Body as the client's first usable BodyPreference asks it. */
	int body_type;          /* 1 plain text, 2 HTML; 0: no Body element */
	size_t body_truncation; /* bytes (cut on a UTF-8 boundary); 0: whole */
	bool body_all_or_none;  /* a body that does not fit goes without its Data */
};

/*
 * How a phone's Add or Change is applied (phone to server).
 */
struct pim_apply_opts {
	int version;
	const char *user_email;
	icaltimezone *zone; /* the user's zone: the name a phone's zone is given when it matches */
	int64_t now;        /* DTSTAMP, LAST-MODIFIED, COMPLETED when the phone gives none */
	const char *uid;    /* an Add's UID when the phone sends none (NULL: a random one) */
	/*
	 * Ghosting (MS-ASCMD 2.2.3.179): before 16.0 the Calendar elements a
	 * Change leaves out are deleted, unless the client's first Sync of the
	 * folder listed some in Supported, when only the listed ones are. Bit
	 * n set: token n of the class's page was listed (pim_supported_mask).
	 * From 16.0 every element left out is kept.
	 */
	bool supported_given;
	uint64_t supported;
	/*
	 * 16.0 and 16.1: the Change (or Delete) is of one occurrence, named by
	 * AirSyncBase:InstanceId (its original start, UTC).
	 */
	bool has_instance;
	int64_t instance;
};

/* libical's one-time settings (errors never fatal); safe to call more than once. */
void pim_ical_init(void);

/*
 * Parse len bytes as one VCALENDAR. Refused (NULL, *errstr set): more than
 * PIM_ICAL_MAX_BYTES, a NUL byte, anything but one VCALENDAR, more
 * components, properties or depth than the caps. Kept but defused: a
 * VTIMEZONE's rules libical could not expand cheaply (a rule that is not
 * yearly, more open-ended rules or observances than the caps) lose the
 * excess; libical's X-LIC-ERROR notes are taken out. Free with
 * icalcomponent_free.
 */
icalcomponent *pim_ical_parse(const char *data, size_t len, const char **errstr);
/* The object as text (CRLF lines, folded), malloc'd. */
char *pim_ical_string(icalcomponent *vcal);

/*
 * The zone a TZID names in vcal: its VTIMEZONE, else libical's built-in
 * zone of that name (also under a vendor prefix such as
 * "/mozilla.org/20070129_1/Europe/Berlin"). NULL when neither.
 */
icaltimezone *pim_ical_zone(icalcomponent *vcal, const char *tzid);
/*
 * A VTIMEZONE's zone is answered from a table of zones interned by their
 * text (ical.c says why): such a zone lives as long as the process, like a
 * built-in one. Whether zone is one; interning off (or on again), for
 * measurements (pim_tz_cache_enable switches it with tz.c's caches).
 */
bool pim_ical_zone_interned(const icaltimezone *zone);
void pim_ical_zone_interning(bool on);
/* The name to write for a zone: an Olson name for a built-in one, else its TZID. */
const char *pim_ical_zone_name(icaltimezone *zone);

/*
 * The occurrences of vcal's master (kind ICAL_VEVENT_COMPONENT or
 * ICAL_VTODO_COMPONENT) that start in [from, to): each start (UTC) in
 * out[], at most max, ascending; RRULE and RDATE expanded, EXDATEs and
 * cancelled overrides taken out, an override's own start in place of the
 * one it replaces. Floating times and dates read in deflt (NULL: UTC).
 * Returns the count, or -1 when there is no master or its rule is not
 * expanded (more often than daily) or the expansion took more than
 * PIM_ICAL_MAX_STEPS steps.
 */
int pim_ical_occurrences(icalcomponent *vcal, icalcomponent_kind kind, icaltimezone *deflt,
                         int64_t from, int64_t to, int64_t *out, size_t max);

/*
 * The start (UTC) of the last occurrence of vcal's master of kind, or a
 * bound never earlier: its RRULEs' UNTIL (the end of an UNTIL date), a
 * COUNT rule walked to its end, its RDATEs, its overrides' own starts
 * (EXDATEs not taken out). Floating times and dates read in deflt (NULL:
 * UTC). 1 and *last_r; 0 when the series has no last occurrence (a rule
 * without COUNT or UNTIL, more often than daily, or a COUNT longer than
 * PIM_ICAL_SPAN_STEPS to walk); -1 when there is no master or no start.
 */
#define PIM_ICAL_SPAN_STEPS 400 /* iterator steps of one pim_ical_last_start */
int pim_ical_last_start(icalcomponent *vcal, icalcomponent_kind kind, icaltimezone *deflt,
                        int64_t *last_r);

/*
 * The tokens of page a Sync Collection's Supported element lists, as the
 * bit mask pim_apply_opts.supported takes.
 */
uint64_t pim_supported_mask(const struct wbxml_node *supported, unsigned page);

#endif
