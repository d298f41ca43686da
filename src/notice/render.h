/*
 * render.h: the placeholders of notice and alert texts, and their renderer.
 *
 * One renderer for every text abqd writes about a device: the user's and the
 * administrators' notices (templates.h) and the quarantine mailbox's alert
 * (src/mailbox/mailbox.h). It sits here, below both, so that the mailbox
 * takes it from notice and notice depends on nothing of the mailbox.
 */
#ifndef ABQ_NOTICE_RENDER_H
#define ABQ_NOTICE_RENDER_H

#include <stdbool.h>

/*
 * The facts a text names. Every field may be NULL (rendered as "unknown",
 * except contact, which has a default sentence). state is the registry's
 * state name ("Quarantined", "Blocked", "Discovery").
 */
struct notice_facts {
	const char *account;
	const char *email; /* the account's address; NULL: the account */
	const char *device_id;
	const char *device_type;
	const char *model;
	const char *os;
	const char *user_agent;
	const char *imei;
	const char *eas_version;
	const char *state;
	const char *contact; /* whom to contact ("your IT department") */
};

/*
 * Render a template: the placeholders {account}, {device_id}, {device_type},
 * {model}, {os}, {user_agent}, {imei}, {eas_version}, {state} and {contact}
 * replaced by the facts' values, each HTML-escaped when html is true ({{ is a
 * literal brace). Returns a new string ("" for a NULL template).
 */
char *notice_render_template(const char *tmpl, const struct notice_facts *facts, bool html);

#endif
