/*
 * ical_int.h: the pieces event.c and task.c share inside abq_pim (ical.c,
 * recur.c): the WBXML tokens of the Calendar, Tasks and AirSyncBase pages
 * they use, date-times read out of iCalendar properties, the Body, the
 * Sensitivity, the categories and alarms, and the recurrence patterns both
 * classes carry. Not an interface of the library.
 */
#ifndef ABQ_PIM_ICAL_INT_H
#define ABQ_PIM_ICAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

#include "eas/wbxml.h"
#include "pim/ical.h"
#include "pim/tz.h"

#define B64_TZ_LEN 232 /* the base64 of the 172-byte TimeZone blob */

/* Calendar code page (MS-ASWBXML 2.1.2.1.5). */
enum {
	CAL_TIMEZONE = 0x05,
	CAL_ALLDAYEVENT = 0x06,
	CAL_ATTENDEES = 0x07,
	CAL_ATTENDEE = 0x08,
	CAL_EMAIL = 0x09,
	CAL_NAME = 0x0A,
	CAL_BUSYSTATUS = 0x0D,
	CAL_CATEGORIES = 0x0E,
	CAL_CATEGORY = 0x0F,
	CAL_DTSTAMP = 0x11,
	CAL_ENDTIME = 0x12,
	CAL_EXCEPTION = 0x13,
	CAL_EXCEPTIONS = 0x14,
	CAL_DELETED = 0x15,
	CAL_EXCEPTIONSTARTTIME = 0x16,
	CAL_LOCATION = 0x17,
	CAL_MEETINGSTATUS = 0x18,
	CAL_ORGANIZEREMAIL = 0x19,
	CAL_ORGANIZERNAME = 0x1A,
	CAL_RECURRENCE = 0x1B,
	CAL_REMINDER = 0x24,
	CAL_SENSITIVITY = 0x25,
	CAL_SUBJECT = 0x26,
	CAL_STARTTIME = 0x27,
	CAL_UID = 0x28,
	CAL_ATTENDEESTATUS = 0x29,
	CAL_ATTENDEETYPE = 0x2A,
	CAL_DISALLOWNEWTIMEPROPOSAL = 0x33,
	CAL_RESPONSEREQUESTED = 0x34,
	CAL_APPOINTMENTREPLYTIME = 0x35,
	CAL_RESPONSETYPE = 0x36,
	CAL_CLIENTUID = 0x3C,
};

/* Tasks code page (MS-ASWBXML 2.1.2.1.10). */
enum {
	TASK_CATEGORIES = 0x08,
	TASK_CATEGORY = 0x09,
	TASK_COMPLETE = 0x0A,
	TASK_DATECOMPLETED = 0x0B,
	TASK_DUEDATE = 0x0C,
	TASK_UTCDUEDATE = 0x0D,
	TASK_IMPORTANCE = 0x0E,
	TASK_RECURRENCE = 0x0F,
	TASK_REMINDERSET = 0x1B,
	TASK_REMINDERTIME = 0x1C,
	TASK_SENSITIVITY = 0x1D,
	TASK_STARTDATE = 0x1E,
	TASK_UTCSTARTDATE = 0x1F,
	TASK_SUBJECT = 0x20,
};

/* AirSyncBase code page. */
enum {
	ASB_TYPE = 0x06,
	ASB_BODY = 0x0A,
	ASB_DATA = 0x0B,
	ASB_ESTIMATEDDATASIZE = 0x0C,
	ASB_TRUNCATED = 0x0D,
	ASB_DISPLAYNAME = 0x10,
	ASB_NATIVEBODYTYPE = 0x16,
	ASB_LOCATION = 0x20,
	ASB_ANNOTATION = 0x21,
	ASB_STREET = 0x22,
	ASB_CITY = 0x23,
	ASB_STATE = 0x24,
	ASB_COUNTRY = 0x25,
	ASB_POSTALCODE = 0x26,
	ASB_LATITUDE = 0x27,
	ASB_LONGITUDE = 0x28,
	ASB_INSTANCEID = 0x2D,
};

/* ---- WBXML helpers ---- */

/* The first child (page, token) of n, or NULL. */
const struct wbxml_node *pim_kid(const struct wbxml_node *n, unsigned page, unsigned token);
/* Its text, or NULL (absent, empty or not text). */
const char *pim_kid_text(const struct wbxml_node *n, unsigned page, unsigned token);
/* Its text as an integer in [min, max]: true and *v, else false. */
bool pim_kid_int(const struct wbxml_node *n, unsigned page, unsigned token, long min, long max,
                 long *v);
/* Its text as an EAS date-time (either spelling): true and *t, else false. */
bool pim_kid_time(const struct wbxml_node *n, unsigned page, unsigned token, int64_t *t);
void pim_add_int(struct wbxml_node *parent, unsigned page, unsigned token, long v);
/* Text, or nothing for NULL; invalid UTF-8 and control characters but tab and newline made safe. */
void pim_add_text(struct wbxml_node *parent, unsigned page, unsigned token, const char *text);
void pim_add_compact(struct wbxml_node *parent, unsigned page, unsigned token, int64_t t);
void pim_add_long(struct wbxml_node *parent, unsigned page, unsigned token, int64_t t);
/* Whether an element left out of a Change deletes what it stands for (ghosting). */
bool pim_absent_clears(const struct pim_apply_opts *o, unsigned token);

/* ---- Time ---- */

/* Seconds since the epoch of a proleptic Gregorian date and time (no zone). */
int64_t pim_civil_to_epoch(int year, int month, int day, int hour, int minute, int second);
/* The reverse, as a floating date-time (or a date). */
struct icaltimetype pim_epoch_to_civil(int64_t t, bool date);

/* A DTSTART, DTEND, DUE, RECURRENCE-ID, EXDATE or COMPLETED value, read. */
struct pim_time {
	int64_t utc;               /* the instant; a date: its midnight where it was read */
	struct icaltimetype local; /* the value as written (zone NULL) */
	icaltimezone *zone;        /* its TZID's zone; NULL: UTC, floating or a date */
	const char *tzid;          /* the TZID as written (into the property), or NULL */
	bool date, floating, utc_form;
};

/*
 * Read the date-time value tt, as written in a property with TZID tzid
 * (NULL: none) of vcal; floating times, dates and a TZID no zone answers
 * read in deflt (NULL: UTC). Returns 0, or -1 for a null or invalid time.
 */
int pim_time_from(icalcomponent *vcal, struct icaltimetype tt, const char *tzid,
                  icaltimezone *deflt, struct pim_time *out);
/* The same for property p's value. */
int pim_time_read(icalcomponent *vcal, icalproperty *p, icaltimezone *deflt, struct pim_time *out);
/* The instant of a local time in zone (NULL: UTC). */
int64_t pim_local_to_utc(struct icaltimetype local, icaltimezone *zone);
/* The local time of an instant in zone (NULL: UTC), floating (zone NULL in the result). */
struct icaltimetype pim_utc_to_local(int64_t utc, icaltimezone *zone);
/* The offset (seconds) an EAS zone gives a local time (read as if UTC): local - offset = UTC. */
int64_t pim_eas_local_to_utc(const struct pim_eas_tz *tz, int64_t local);
/* Two EAS zones follow the same rules (names aside). */
bool pim_eas_tz_same(const struct pim_eas_tz *a, const struct pim_eas_tz *b);
/* The EAS zone of zone (NULL: UTC) for the instant at; UTC when tz.c cannot read it. */
void pim_eas_tz_of(icaltimezone *zone, int64_t at, struct pim_eas_tz *out);
/* Calendar:TimeZone's text (base64 of the blob) into buf. */
void pim_eas_tz_base64(const struct pim_eas_tz *tz, char buf[B64_TZ_LEN + 1]);
/* Read a TimeZone element's base64; 0 or -1. */
int pim_eas_tz_read(const char *b64, struct pim_eas_tz *out);

/*
 * Make sure vcal has a VTIMEZONE for zone (a built-in zone's under its
 * Olson name, cut to the rules from the year of from on), and return the
 * TZID to write.
 */
const char *pim_ical_ensure_vtimezone(icalcomponent *vcal, icaltimezone *zone, int64_t from);

/* Set or replace property kind of c to a date-time value (zone NULL: UTC; floating: no TZID). */
void pim_set_time(icalcomponent *c, icalproperty_kind kind, struct icaltimetype local,
                  const char *tzid, bool utc);

/* ---- Fields both classes have ---- */

/* The master of vcal's components of kind: no RECURRENCE-ID (else the first); NULL if none. */
icalcomponent *pim_master(icalcomponent *vcal, icalcomponent_kind kind);
/* A text property's value (NULL when absent). */
const char *pim_text(icalcomponent *c, icalproperty_kind kind);
/* Set a text property (NULL or "": removed). */
void pim_set_text(icalcomponent *c, icalproperty_kind kind, const char *value);
void pim_remove_all(icalcomponent *c, icalproperty_kind kind);
/* An X- property by name (first), or NULL. */
icalproperty *pim_x_prop(icalcomponent *c, const char *name);
const char *pim_x_text(icalcomponent *c, const char *name);
void pim_set_x_text(icalcomponent *c, const char *name, const char *value);

/* CLASS as Sensitivity (0 normal, 1 personal, 2 private, 3 confidential) and back. */
int pim_sensitivity(icalcomponent *c);
void pim_set_sensitivity(icalcomponent *c, int s);

/* The CATEGORIES values written as a Categories container (nothing when none). */
void pim_add_categories(struct wbxml_node *parent, unsigned page, unsigned container, unsigned item,
                        icalcomponent *c);
/* Replace CATEGORIES by a Categories container's items (NULL: none). */
void pim_set_categories(icalcomponent *c, const struct wbxml_node *cats, unsigned page,
                        unsigned item);
/* Categories of two components equal. */
bool pim_same_categories(icalcomponent *a, icalcomponent *b);

/* The first VALARM a phone is shown (an action other than NONE, a TRIGGER), or NULL. */
icalcomponent *pim_first_alarm(icalcomponent *c);
/*
 * When that alarm rings, for a component starting at start and ending at
 * end (UTC): true and *at, else false.
 */
bool pim_alarm_time(icalcomponent *alarm, int64_t start, int64_t end, int64_t *at);
/* Set the first alarm's trigger (creating a DISPLAY alarm when none): relative or absolute. */
void pim_set_alarm(icalcomponent *c, bool absolute, int64_t at, int minutes_before);
/* Remove the first alarm a phone is shown. */
void pim_remove_alarm(icalcomponent *c);

/* AirSyncBase:Body of text (plain) or html per the options. */
void pim_add_body(struct wbxml_node *parent, const char *text, const char *html,
                  const struct pim_eas_opts *o);
/* An AirSyncBase:Body's Data as plain text (HTML taken down to text), malloc'd; *html set for
 * type 2. */
char *pim_read_body(const struct wbxml_node *body, char **html);

/* Clean text for a TEXT property: valid UTF-8, CR LF as LF; malloc'd. */
char *pim_clean_text(const char *s);
/* A fresh UID (a random UUID), malloc'd. */
char *pim_new_uid(void);
/* Mark a component modified: DTSTAMP and LAST-MODIFIED now; SEQUENCE + 1 when bump and present. */
void pim_touch(icalcomponent *c, int64_t now, bool bump);

/* ---- Recurrence ---- */

/* An EAS recurrence pattern (MS-ASCAL 2.2.2.37, MS-ASTASK 2.2.2.19). */
struct pim_recur {
	int type;        /* 0 daily, 1 weekly, 2 monthly, 3 monthly nth, 5 yearly, 6 yearly nth */
	int interval;    /* 1 and up */
	int occurrences; /* 0: not limited by a count */
	bool has_until;
	int64_t until; /* the last occurrence may start then (UTC) */
	int dow;       /* DayOfWeek: 1 Sunday ... 64 Saturday; 127 with week 5: the last day */
	int dom;       /* DayOfMonth 1-31 */
	int wom;       /* WeekOfMonth 1-5 (5: the last) */
	int moy;       /* MonthOfYear 1-12 */
	int fdow;      /* FirstDayOfWeek 0 Sunday ... 6 Saturday; -1: not given */
	/* Tasks only */
	bool has_start;
	int64_t start; /* Tasks:Start */
	bool regenerate, dead_occur;
};

/*
 * rule, of a master whose start st was read with zone the frame of its
 * floating times and dates (date_utc: a date's EAS times are UTC midnights,
 * as 16.0 writes an all-day event's), as an EAS pattern. Returns 0, or -1
 * with *why when EAS cannot express it (what is sent then is the caller's).
 */
int pim_recur_from_rrule(const struct icalrecurrencetype *rule, const struct pim_time *st,
                         icaltimezone *zone, bool date_utc, struct pim_recur *out,
                         const char **why);
/* The pattern as a rule for that master. */
void pim_recur_to_rrule(const struct pim_recur *r, const struct pim_time *st, icaltimezone *zone,
                        bool date_utc, struct icalrecurrencetype *out);
/* Two patterns the same. */
bool pim_recur_same(const struct pim_recur *a, const struct pim_recur *b);
/* Write the Recurrence element on page (Calendar or Tasks). */
void pim_recur_write(struct wbxml_node *parent, unsigned page, const struct pim_recur *r,
                     int version);
/* Read a Recurrence element: 0, or -1 when its Type is missing or out of range. */
int pim_recur_read(const struct wbxml_node *rec, unsigned page, struct pim_recur *r);

#endif
