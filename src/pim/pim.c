/*
 * pim.c: the command layer's codec of contacts, calendars and tasks
 * (pim.h), over the converters of this library. A DAV object is read with
 * its own reader (vcard_parse_one, pim_ical_parse: both capped), converted,
 * and, phone to server, written back in its own version: a vCard 3.0 stays
 * 3.0, and what the phone cannot express stays as the server had it.
 */
#include "pim/pim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "pim/contact.h"
#include "pim/event.h"
#include "pim/ical.h"
#include "pim/task.h"
#include "pim/vcard.h"

static struct pim_contact_opts
contact_opts(const struct mbx_pim_opts *o)
{
	return (struct pim_contact_opts){
	    .eas_version = (unsigned)o->version,
	    .body_type = (unsigned)o->body_type,
	    .body_truncation = (size_t)o->truncation,
	};
}

static int
to_eas(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
       const struct mbx_pim_opts *o, const char **errstr)
{
	if (c == MBX_CLASS_CONTACTS) {
		struct pim_contact_opts co = contact_opts(o);
		struct vcard *card = vcard_parse_one(data, len, NULL, errstr);
		int rv;
		if (card == NULL)
			return -1;
		rv = pim_contact_to_eas(card, &co, appdata);
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
		struct pim_contact_opts co = contact_opts(o);
		struct vcard *card;
		if (old == NULL) {
			card = pim_contact_from_add(appdata, &co, errstr);
		} else if ((card = vcard_parse_one(old, old_len, NULL, errstr)) != NULL &&
		           pim_contact_apply(card, appdata, &co, errstr) < 0) {
			vcard_free(card);
			card = NULL;
		}
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
		};
		icalcomponent *existing = NULL, *made = NULL;
		int rv;
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

const struct mbx_pim_codec pim_codec = {to_eas, from_eas};
