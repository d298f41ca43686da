/*
 * mailbox_quarantine.c: the virtual quarantine mailbox, the first mailbox
 * backend (mailbox.h).
 *
 * Five folders: Inbox (type 2) holding exactly one alert message, and empty
 * Drafts (3), Deleted Items (4), Sent Items (5) and Outbox (6). The folder ids
 * carry abqd's prefix "abq-" so that the daemon can tell, after the device is
 * allowed, that a Ping still names the quarantine mailbox's folders.
 *
 * The alert's subject and bodies are rendered from templates (English
 * defaults below; the notices issue adds per-domain and per-locale texts)
 * with the device's facts (notice/render.h, the renderer of the notices too);
 * the HTML body escapes every value. A device in
 * Discovery gets a neutral "checking your device" text instead.
 *
 * The alert's server id is derived from the DeviceId and from what the
 * alert says, so that it is the same for every instance of the mailbox of
 * one device while its text stays the same: a restarted abqd serving a new
 * instance does not make the phone see a new message, and a new text is a
 * new message. Its version is 1 (the read flag is the client's to change).
 * The read flag lives in the instance; the command layer keeps the client's
 * view in the sync state and restores it with set_read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mailbox/mailbox.h"
#include "notice/render.h"

/* The English defaults: quarantined (or blocked-like) devices. */
static const char default_subject[] = "Your device {model} has been put in quarantine";
static const char default_plain[] =
    "Your device has been put in quarantine.\r\n"
    "\r\n"
    "This device has connected to your mailbox ({account}). Until an administrator allows "
    "it, it may not sync your mail, calendar and contacts, and this message is the only one "
    "it shows.\r\n"
    "\r\n"
    "What happens next: an administrator allows or blocks the device. Once it is allowed, "
    "your mail, calendar and contacts appear on it by themselves: there is nothing to do on "
    "the device. If it is blocked, it cannot sync this mailbox.\r\n"
    "\r\n"
    "Device:       {model} ({device_type})\r\n"
    "Device ID:    {device_id}\r\n"
    "OS:           {os}\r\n"
    "User agent:   {user_agent}\r\n"
    "IMEI:         {imei}\r\n"
    "EAS version:  {eas_version}\r\n"
    "State:        {state}\r\n"
    "\r\n"
    "If you did not expect this, or to ask for access, contact {contact}.\r\n";
static const char default_html[] =
    "<html><body>"
    "<p><b>Your device has been put in quarantine.</b></p>"
    "<p>This device has connected to your mailbox ({account}). Until an administrator "
    "allows it, it may not sync your mail, calendar and contacts, and this message is the "
    "only one it shows.</p>"
    "<p>What happens next: an administrator allows or blocks the device. Once it is "
    "allowed, your mail, calendar and contacts appear on it by themselves: there is nothing "
    "to do on the device. If it is blocked, it cannot sync this mailbox.</p>"
    "<table>"
    "<tr><td>Device</td><td>{model} ({device_type})</td></tr>"
    "<tr><td>Device ID</td><td>{device_id}</td></tr>"
    "<tr><td>OS</td><td>{os}</td></tr>"
    "<tr><td>User agent</td><td>{user_agent}</td></tr>"
    "<tr><td>IMEI</td><td>{imei}</td></tr>"
    "<tr><td>EAS version</td><td>{eas_version}</td></tr>"
    "<tr><td>State</td><td>{state}</td></tr>"
    "</table>"
    "<p>If you did not expect this, or to ask for access, contact {contact}.</p>"
    "</body></html>";

/* The English defaults: devices in Discovery. */
static const char discovery_subject[] = "Checking your device";
static const char discovery_plain[] =
    "Your device is being checked.\r\n"
    "\r\n"
    "This device has connected to your mailbox ({account}). Its details are being checked; "
    "this usually takes a moment. Your mail appears by itself once the check is complete: "
    "there is nothing to do on the device.\r\n"
    "\r\n"
    "Device ID:    {device_id}\r\n"
    "Device type:  {device_type}\r\n"
    "EAS version:  {eas_version}\r\n"
    "\r\n"
    "If this takes long, contact {contact}.\r\n";
static const char discovery_html[] =
    "<html><body>"
    "<p><b>Your device is being checked.</b></p>"
    "<p>This device has connected to your mailbox ({account}). Its details are being "
    "checked; this usually takes a moment. Your mail appears by itself once the check is "
    "complete: there is nothing to do on the device.</p>"
    "<table>"
    "<tr><td>Device ID</td><td>{device_id}</td></tr>"
    "<tr><td>Device type</td><td>{device_type}</td></tr>"
    "<tr><td>EAS version</td><td>{eas_version}</td></tr>"
    "</table>"
    "<p>If this takes long, contact {contact}.</p>"
    "</body></html>";

static const char default_sender[] = "abqd <postmaster@localhost>";

#define Q_DRAFTS_ID  "abq-drafts"
#define Q_DELETED_ID "abq-deleted"
#define Q_SENT_ID    "abq-sent"
#define Q_OUTBOX_ID  "abq-outbox"

static const struct mbx_folder q_folders[] = {
    {MBX_Q_INBOX_ID, "0", "Inbox", MBX_FOLDER_INBOX},
    {Q_DRAFTS_ID, "0", "Drafts", MBX_FOLDER_DRAFTS},
    {Q_DELETED_ID, "0", "Deleted Items", MBX_FOLDER_DELETED},
    {Q_SENT_ID, "0", "Sent Items", MBX_FOLDER_SENT},
    {Q_OUTBOX_ID, "0", "Outbox", MBX_FOLDER_OUTBOX},
};
#define Q_NFOLDERS (sizeof(q_folders) / sizeof(q_folders[0]))

struct q_mailbox {
	struct mbx_backend base; /* first */
	char alert_id[MBX_ID_MAX + 1];
	char *from;
	char *to;
	char *subject;
	char *plain;
	char *html;
	int64_t date;
	bool read;
};

/* The view of a backend handle as the quarantine mailbox. */
static struct q_mailbox *
Q(struct mbx_backend *b)
{
	return (struct q_mailbox *)(void *)b;
}

/* The five folders. */
static int
q_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
               const char **errstr_r)
{
	*folders_r = q_folders;
	*n_r = Q_NFOLDERS;
	return 0;
}

/* The folder ids alone, in q_folders' order (a static list: ids never change). */
static const char *const q_folder_ids[] = {
    MBX_Q_INBOX_ID, Q_DRAFTS_ID, Q_DELETED_ID, Q_SENT_ID, Q_OUTBOX_ID,
};
_Static_assert(sizeof(q_folder_ids) / sizeof(q_folder_ids[0]) == Q_NFOLDERS,
               "one id per quarantine folder");

size_t
mbx_quarantine_folder_ids(const char *const **ids_r)
{
	*ids_r = q_folder_ids;
	return Q_NFOLDERS;
}

/* Whether id names one of our folders. */
static bool
q_folder_known(const char *id)
{
	for (size_t i = 0; i < Q_NFOLDERS; i++) {
		if (strcmp(q_folders[i].id, id) == 0)
			return true;
	}
	return false;
}

/* Inbox lists the alert; the other folders are empty. */
static int
q_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
             size_t *n_r, const char **errstr_r)
{
	if (!q_folder_known(folder_id)) {
		*errstr_r = "no such folder";
		return -1;
	}
	if (strcmp(folder_id, MBX_Q_INBOX_ID) != 0)
		return 0;
	*items_r = xcalloc(1, sizeof(**items_r));
	snprintf((*items_r)[0].id, sizeof((*items_r)[0].id), "%s", Q(b)->alert_id);
	(*items_r)[0].version = 1;
	*n_r = 1;
	return 0;
}

/* Whether (folder, item) is the alert. */
static bool
is_alert(struct q_mailbox *q, const char *folder_id, const char *item_id)
{
	return strcmp(folder_id, MBX_Q_INBOX_ID) == 0 && strcmp(item_id, q->alert_id) == 0;
}

/* Fetch the alert (the only item there is). */
static int
q_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
        const char **errstr_r)
{
	struct q_mailbox *q = Q(b);

	if (!is_alert(q, folder_id, item_id))
		return 0;
	out->from = xstrdup(q->from);
	out->to = xstrdup(q->to);
	out->display_to = xstrdup(q->to);
	out->subject = xstrdup(q->subject);
	out->date_received = q->date;
	out->read = q->read;
	out->message_class = xstrdup("IPM.Note");
	out->body_plain = xstrdup(q->plain);
	out->body_html = xstrdup(q->html);
	return 1;
}

/* Set the alert's read flag. */
static int
q_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
           const char **errstr_r)
{
	struct q_mailbox *q = Q(b);

	if (!is_alert(q, folder_id, item_id))
		return 0;
	q->read = read;
	return 1;
}

/* Free the instance. */
static void
q_destroy(struct mbx_backend *b)
{
	struct q_mailbox *q = Q(b);

	free(q->from);
	free(q->to);
	free(q->subject);
	free(q->plain);
	free(q->html);
	free(q);
}

static const struct mbx_ops quarantine_ops = {
    .name = "quarantine",
    .list_folders = q_list_folders,
    .list_items = q_list_items,
    .fetch = q_fetch,
    .set_read = q_set_read,
    .destroy = q_destroy,
};

/* Pick the configured text, else the default. */
static const char *
pick(const char *configured, const char *dflt)
{
	return configured != NULL && *configured != '\0' ? configured : dflt;
}

/*
 * Build one device's mailbox: render the alert once and derive its server
 * id from the DeviceId (FNV-1a 64, case-folded as DeviceIds compare) and
 * from what it says (FNV-1a 32 of sender, subject and bodies, case-folded
 * like the DeviceId they show). The same
 * alert keeps its id across requests and restarts; an alert that says
 * something new (the device left Discovery, an administrator changed the
 * template) is a new message: the phone is told to delete the old one and
 * add the new one, even if it had deleted the old one.
 */
struct mbx_backend *
mbx_quarantine_new(const struct mbx_quarantine_config *cfg, const struct notice_facts *facts)
{
	static const struct mbx_quarantine_config no_cfg;
	static const struct notice_facts no_facts;
	struct q_mailbox *q = xcalloc(1, sizeof(*q));
	uint64_t h = 0xcbf29ce484222325ULL;
	bool discovery;

	if (cfg == NULL)
		cfg = &no_cfg;
	if (facts == NULL)
		facts = &no_facts;
	discovery = facts->state != NULL && str_ieq(facts->state, "Discovery");
	q->base.ops = &quarantine_ops;
	for (const char *p = facts->device_id ? facts->device_id : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		h = (h ^ c) * 0x100000001b3ULL;
	}
	q->from = xstrdup(pick(cfg->sender, default_sender));
	q->to = xstrdup(facts->email ? facts->email : facts->account ? facts->account : "");
	q->subject =
	    notice_render_template(discovery ? pick(cfg->discovery_subject, discovery_subject)
	                                     : pick(cfg->subject, default_subject),
	                           facts, false);
	q->plain =
	    notice_render_template(discovery ? pick(cfg->discovery_body_plain, discovery_plain)
	                                     : pick(cfg->body_plain, default_plain),
	                           facts, false);
	q->html = notice_render_template(discovery ? pick(cfg->discovery_body_html, discovery_html)
	                                           : pick(cfg->body_html, default_html),
	                                 facts, true);
	q->date = cfg->date;
	uint32_t c = 0x811c9dc5U;
	const char *parts[] = {q->from, q->subject, q->plain, q->html};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (const char *p = parts[i]; p != NULL && *p; p++) {
			unsigned char ch =
			    (unsigned char)*p; /* folded: DeviceIds are in the text */
			if (ch >= 'a' && ch <= 'z')
				ch = (unsigned char)(ch - 'a' + 'A');
			c = (c ^ ch) * 0x01000193U;
		}
		c = (c ^ 0xffU) * 0x01000193U;
	}
	snprintf(q->alert_id, sizeof(q->alert_id), "abq-alert-%016" PRIx64 "-%08" PRIx32, h, c);
	return &q->base;
}
