/*
 * pim.c: the command layer's codec of contacts, calendars and tasks
 * (pim.h), over the converters of this library. A DAV object is read with
 * its own reader (vcard_parse_one, pim_ical_parse: both capped), converted,
 * and, phone to server, written back in its own version: a vCard 3.0 stays
 * 3.0, and what the phone cannot express stays as the server had it.
 */
#include "pim/pim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/wbxml.h"
#include "lib/util.h"
#include "pim/contact.h"
#include "pim/eastime.h"
#include "pim/event.h"
#include "pim/ical.h"
#include "pim/meeting.h"
#include "pim/task.h"
#include "pim/vcard.h"

/*
 * The contact converter's options; its Supported list as "Page:Tag" names
 * in names_r (free them with free_names).
 */
static struct pim_contact_opts
contact_opts(const struct mbx_pim_opts *o, char ***names_r)
{
	struct pim_contact_opts co = {
	    .eas_version = (unsigned)o->version,
	    .body_type = (unsigned)o->body_type,
	    .body_truncation = (size_t)o->truncation,
	    .supported_sent = o->supported_given,
	};
	char **names = o->n_supported ? xcalloc(o->n_supported, sizeof(*names)) : NULL;
	size_t n = 0;

	for (size_t i = 0; i < o->n_supported; i++) {
		unsigned page = o->supported[i] >> 8, token = o->supported[i] & 0x3F;
		const char *pn = wbxml_page_name(page), *tn = wbxml_tag_name(page, token);
		if (pn != NULL && tn != NULL)
			names[n++] = xasprintf("%s:%s", pn, tn);
	}
	co.supported = (const char *const *)names;
	co.nsupported = n;
	*names_r = names;
	return co;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* A Supported list as the calendar and task converters take it: the tokens of one page. */
static uint64_t
page_mask(const struct mbx_pim_opts *o, unsigned page)
{
	uint64_t m = 0;

	for (size_t i = 0; i < o->n_supported; i++)
		if ((unsigned)(o->supported[i] >> 8) == page)
			m |= UINT64_C(1) << (o->supported[i] & 0x3F);
	return m;
}

static int
to_eas(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
       const struct mbx_pim_opts *o, const char **errstr)
{
	if (c == MBX_CLASS_CONTACTS) {
		char **names;
		struct pim_contact_opts co = contact_opts(o, &names);
		struct vcard *card = vcard_parse_one(data, len, NULL, errstr);
		int rv = card ? pim_contact_to_eas(card, &co, appdata) : -1;
		free_names(names, co.nsupported);
		if (card == NULL)
			return -1;
		vcard_free(card);
		if (rv < 0)
			*errstr = "the card cannot be converted";
		return rv;
	}
	if (c == MBX_CLASS_CALENDAR || c == MBX_CLASS_TASKS) {
		struct pim_eas_opts eo = {
		    .version = o->version,
		    .user_email = o->email,
		    .body_type = o->body_type == 2 ? 2 : 1,
		    .body_truncation = (size_t)o->truncation,
		};
		icalcomponent *vcal = pim_ical_parse(data, len, errstr);
		int rv;
		if (vcal == NULL)
			return -1;
		rv = c == MBX_CLASS_CALENDAR ? pim_event_to_eas(vcal, &eo, appdata, errstr)
		                             : pim_task_to_eas(vcal, &eo, appdata, errstr);
		icalcomponent_free(vcal);
		return rv;
	}
	*errstr = "not a class of contacts, calendars or tasks";
	return -1;
}

static int
from_eas(enum mbx_class c, const struct wbxml_node *appdata, const char *old, size_t old_len,
         const struct mbx_pim_opts *o, char **out, size_t *out_len, char uid_r[MBX_PIM_UID_MAX + 1],
         const char **errstr)
{
	uid_r[0] = '\0';
	if (c == MBX_CLASS_CONTACTS) {
		char **names;
		struct pim_contact_opts co = contact_opts(o, &names);
		struct vcard *card;
		if (old == NULL) {
			card = pim_contact_from_add(appdata, &co, errstr);
		} else if ((card = vcard_parse_one(old, old_len, NULL, errstr)) != NULL &&
		           pim_contact_apply(card, appdata, &co, errstr) < 0) {
			vcard_free(card);
			card = NULL;
		}
		free_names(names, co.nsupported);
		if (card == NULL)
			return -1;
		struct vcard_prop *uid = vcard_get(card, "UID");
		char *u = uid ? vcard_text(uid) : NULL;
		if (u != NULL)
			snprintf(uid_r, MBX_PIM_UID_MAX + 1, "%s", u);
		free(u);
		*out = vcard_write(card, out_len);
		vcard_free(card);
		return 0;
	}
	if (c == MBX_CLASS_CALENDAR || c == MBX_CLASS_TASKS) {
		struct pim_apply_opts ao = {
		    .version = o->version,
		    .user_email = o->email,
		    .now = (int64_t)time(NULL),
		    .supported_given = o->supported_given,
		    .supported = page_mask(o, c == MBX_CLASS_CALENDAR ? WBXML_PAGE_CALENDAR
		                                                      : WBXML_PAGE_TASKS),
		};
		icalcomponent *existing = NULL, *made = NULL;
		int rv;

		if (o->instance_id != NULL) {
			if (c != MBX_CLASS_CALENDAR || old == NULL ||
			    pim_time_parse(o->instance_id, &ao.instance) < 0) {
				*errstr = "an InstanceId that names no occurrence";
				return -1;
			}
			ao.has_instance = true;
		}
		if (old != NULL && (existing = pim_ical_parse(old, old_len, errstr)) == NULL)
			return -1;
		rv = c == MBX_CLASS_CALENDAR
		         ? pim_event_from_eas(appdata, existing, &ao, &made, errstr)
		         : pim_task_from_eas(appdata, existing, &ao, &made, errstr);
		if (existing != NULL)
			icalcomponent_free(existing);
		if (rv < 0)
			return -1;
		const char *u = c == MBX_CLASS_CALENDAR ? pim_event_uid(made) : pim_task_uid(made);
		if (u != NULL)
			snprintf(uid_r, MBX_PIM_UID_MAX + 1, "%s", u);
		*out = pim_ical_string(made);
		*out_len = strlen(*out);
		icalcomponent_free(made);
		return 0;
	}
	*errstr = "not a class of contacts, calendars or tasks";
	return -1;
}

static int
meeting(const char *ics, size_t len, struct wbxml_node *appdata, const struct mbx_pim_opts *o,
        const char **errstr)
{
	struct pim_meeting_opts mo = {
	    .version = o->version, .user_email = o->email, .now = (int64_t)time(NULL)};

	return pim_meeting_to_eas(ics, len, &mo, appdata, errstr);
}

static int
respond(const char *ics, size_t len, const char *user, int answer, const char *instance,
        int64_t now, struct mbx_meeting_answer *out, const char **errstr)
{
	struct pim_meeting_answer a;
	int64_t at;

	memset(out, 0, sizeof(*out));
	if (instance != NULL && pim_time_parse(instance, &at) < 0) {
		*errstr = "an InstanceId that is no date-time";
		return -1;
	}
	if (pim_meeting_respond(ics, len, user, answer, instance ? &at : NULL, now, &a, errstr) < 0)
		return -1;
	*out = (struct mbx_meeting_answer){a.object, a.reply, a.organizer, a.uid, a.summary};
	return 0;
}

static int
span(enum mbx_class c, const char *data, size_t len, int64_t *start_r, int64_t *end_r,
     const char **errstr)
{
	icalcomponent *vcal;
	int rv;

	if (c != MBX_CLASS_CALENDAR) {
		*errstr = "not a calendar";
		return -1;
	}
	if ((vcal = pim_ical_parse(data, len, errstr)) == NULL)
		return -1;
	rv = pim_event_span(vcal, start_r, end_r, errstr);
	icalcomponent_free(vcal);
	/* the same "for ever" on both sides */
	if (rv == 0 && *end_r == PIM_SPAN_OPEN)
		*end_r = MBX_SPAN_OPEN;
	return rv;
}

static int
remove_instance(enum mbx_class c, const char *old, size_t old_len, const struct mbx_pim_opts *o,
                char **out, size_t *out_len, const char **errstr)
{
	struct pim_apply_opts ao = {
	    .version = o->version,
	    .user_email = o->email,
	    .now = (int64_t)time(NULL),
	    .has_instance = true,
	};
	icalcomponent *vcal;

	if (c != MBX_CLASS_CALENDAR || o->instance_id == NULL ||
	    pim_time_parse(o->instance_id, &ao.instance) < 0) {
		*errstr = "an InstanceId that names no occurrence";
		return -1;
	}
	if ((vcal = pim_ical_parse(old, old_len, errstr)) == NULL)
		return -1;
	if (pim_event_delete_instance(vcal, ao.instance, &ao, errstr) < 0) {
		icalcomponent_free(vcal);
		return -1;
	}
	*out = pim_ical_string(vcal);
	*out_len = strlen(*out);
	icalcomponent_free(vcal);
	return 0;
}

const struct mbx_pim_codec pim_codec = {
    .to_eas = to_eas,
    .from_eas = from_eas,
    .meeting = meeting,
    .respond = respond,
    .newer = pim_meeting_newer,
    .span = span,
    .remove_instance = remove_instance,
};
