/*
 * commands.c: the ActiveSync command layer (commands.h) over a mailbox
 * backend (mailbox.h). No I/O: requests and answers are bytes, the sync
 * state goes through the caller's accessor.
 *
 * What each command answers (MS-ASCMD; "v" = protocol version):
 *
 *   Command            Answer
 *   -----------------  ---------------------------------------------------------
 *   Provision          phase 1: Status 1, DeviceInformation Status 1 when sent,
 *                      Policy Status 1, a temporary PolicyKey, Data/EASProvisionDoc
 *                      imposing nothing; phase 2: Status 1 and the final key;
 *                      RemoteWipe ack: Status 1; PolicyType other than
 *                      MS-EAS-Provisioning-WBXML: Policy Status 3 (unknown type)
 *   Settings           Status 1; DeviceInformation Set 1; UserInformation Get the
 *                      address (Accounts form from 14.1); Oof Get: OofState 0
 *                      (disabled); Oof Set: 3 (access denied: it would change
 *                      the real mailbox); DevicePassword Set 1
 *   FolderSync         SyncKey 0: the backend's folders; our current key: no
 *                      changes; any other key: Status 9 (start over)
 *   Sync               SyncKey 0: a new key, no items; our current key: the
 *                      client's Change (read flag) / Delete applied, then the
 *                      backend's changes up to WindowSize, MoreAvailable when
 *                      more remain; any other key: Status 3 (SyncKey 0);
 *                      unknown collection: 12 (hierarchy changed); client Add:
 *                      Responses Add Status 5; empty body: root Status 13
 *   GetItemEstimate    per collection: 1 and the number of pending changes;
 *                      key 0 or none: 3 (not primed); other key: 4; unknown
 *                      collection: 2
 *   Ping               heartbeat outside [min, max]: Status 5 and the limit;
 *                      a folder the backend does not know: 7; pending changes:
 *                      2 and the folders; else HOLD for the heartbeat, then 1;
 *                      no parameters at all: 3
 *   ItemOperations     Fetch of an item by (CollectionId,) ServerId: Status 1 and
 *                      its properties with the preferred body; any other Fetch:
 *                      Fetch Status 6 (object not found); EmptyFolderContents
 *                      and Move: 3 (server error)
 *   SendMail,          v >= 14.0: ComposeMail root Status 111
 *   SmartReply,          (ServerErrorRetryLater: the phone keeps the message in
 *   SmartForward         its Outbox and sends it again once allowed);
 *                      v < 14.0: HTTP 500 (their error form before 14.0)
 *   GetAttachment      HTTP 500 (MS-ASCMD: attachment not found; there is none)
 *   MoveItems          per Move: SrcMsgId and Status 5 (the move failed)
 *   Search             root Status 3 (server error)
 *   FolderCreate       Status 6 (server error)
 *   FolderUpdate,      Status 3 (special folder) for our folders, else 4 (does
 *   FolderDelete         not exist)
 *   MeetingResponse    per Request: RequestId and Status 3 (mailbox error)
 *   ResolveRecipients  root Status 6 (server error)
 *   ValidateCert       root Status 17 (unknown server error)
 *   Find               root Status 110 (common ServerError); v < 16.1: 403
 *   OPTIONS, 2.5 cmds  HTTP 400: not served here (the daemon proxies OPTIONS)
 *
 * A request body that is not WBXML, or whose root is not the command's,
 * gets HTTP 400.
 *
 * Sync state, per (account, device, collection), is a few text lines:
 *   "key=abq-<gen>-<8 hex>", then "item=<server id> <version> <read 0|1>"
 *   for each item the client has. FolderSync keeps "key=" alone; Ping keeps
 *   "hb=<seconds>" and "folder=<id>" lines (a Ping without a body repeats
 *   them). The state is written before the answer is returned: a phone whose
 *   answer is lost retries with the old key and is told to start over.
 *   FolderSync with SyncKey 0 drops every state of the device first.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/status.h"
#include "eas/wbxml.h"
#include "lib/util.h"
#include "mailbox/commands.h"

#define CT_WBXML         "application/vnd.ms-sync.wbxml"
#define PROVISION_TYPE   "MS-EAS-Provisioning-WBXML"
#define DEFAULT_WINDOW   100
#define MAX_WINDOW       512
#define STATE_MAX_ITEMS  100000
#define DEFAULT_HB_MIN   60
#define DEFAULT_HB_MAX   3540
#define MAX_PING_FOLDERS 300

/* ---- sync state ------------------------------------------------------- */

struct st_item {
	char id[MBX_ID_MAX + 1];
	uint64_t version;
	bool read;
};

/* What the client has of one collection, as the state blob says. */
struct sstate {
	char key[MBX_ID_MAX + 1];
	struct st_item *items;
	size_t n, cap;
	int hb;         /* ping */
	char **folders; /* ping */
	size_t n_folders;
};

/* Free a state's arrays and zero it. */
static void
sstate_clear(struct sstate *s)
{
	free(s->items);
	for (size_t i = 0; i < s->n_folders; i++)
		free(s->folders[i]);
	free(s->folders);
	memset(s, 0, sizeof(*s));
}

/* The item entry with this id, or NULL. */
static struct st_item *
sstate_item(struct sstate *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->items[i].id, id) == 0)
			return &s->items[i];
	}
	return NULL;
}

/* Append an item entry (ids longer than MBX_ID_MAX are refused). */
static struct st_item *
sstate_add(struct sstate *s, const char *id, uint64_t version, bool read)
{
	if (strlen(id) > MBX_ID_MAX || s->n >= STATE_MAX_ITEMS)
		return NULL;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
	}
	struct st_item *it = &s->items[s->n++];
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->version = version;
	it->read = read;
	return it;
}

/* Remove an item entry by index. */
static void
sstate_remove(struct sstate *s, size_t i)
{
	memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof(*s->items));
	s->n--;
}

/*
 * Parse a state blob. Unknown lines are skipped (a newer abqd may add some);
 * a malformed item line makes the whole state unusable (returns -1), which
 * the callers treat as "no state": the phone is told to start over.
 */
static int
sstate_parse(const char *blob, size_t len, struct sstate *s)
{
	const char *p = blob, *end = blob + len;

	memset(s, 0, sizeof(*s));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[256];

		if (n >= sizeof(line))
			goto bad;
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		if (strncmp(line, "key=", 4) == 0) {
			if (strlen(line + 4) > MBX_ID_MAX)
				goto bad;
			snprintf(s->key, sizeof(s->key), "%s", line + 4);
		} else if (strncmp(line, "item=", 5) == 0) {
			char id[MBX_ID_MAX + 1];
			uint64_t v;
			int rd;
			if (sscanf(line + 5, "%64s %" SCNu64 " %d", id, &v, &rd) != 3 ||
			    sstate_add(s, id, v, rd != 0) == NULL)
				goto bad;
		} else if (strncmp(line, "hb=", 3) == 0) {
			long long hb;
			const char *e;
			if (parse_int(line + 3, 0, 1000000, &hb, &e) < 0)
				goto bad;
			s->hb = (int)hb;
		} else if (strncmp(line, "folder=", 7) == 0) {
			if (s->n_folders >= MAX_PING_FOLDERS)
				goto bad;
			s->folders = xrealloc(s->folders, (s->n_folders + 1) * sizeof(char *));
			s->folders[s->n_folders++] = xstrdup(line + 7);
		}
	}
	return 0;
bad:
	sstate_clear(s);
	return -1;
}

/* Serialise a state into a new string. */
static char *
sstate_format(const struct sstate *s)
{
	struct sbuf b = {0};

	sbuf_printf(&b, "v=1\n");
	if (s->key[0])
		sbuf_printf(&b, "key=%s\n", s->key);
	for (size_t i = 0; i < s->n; i++)
		sbuf_printf(&b, "item=%s %" PRIu64 " %d\n", s->items[i].id, s->items[i].version,
		            s->items[i].read ? 1 : 0);
	if (s->hb > 0)
		sbuf_printf(&b, "hb=%d\n", s->hb);
	for (size_t i = 0; i < s->n_folders; i++)
		sbuf_printf(&b, "folder=%s\n", s->folders[i]);
	return b.p;
}

/* Read a collection's state: 1 found (and parsed), 0 none or unreadable, -1 failure. */
static int
state_load(const struct eas_serve_in *in, const char *coll, struct sstate *s)
{
	char *blob = NULL;
	size_t len = 0;
	int r;

	memset(s, 0, sizeof(*s));
	if (in->state.get == NULL)
		return 0;
	r = in->state.get(in->state.arg, in->account, in->device_id, coll, &blob, &len);
	if (r <= 0) {
		free(blob);
		return r < 0 ? -1 : 0;
	}
	r = sstate_parse(blob, len, s) == 0 ? 1 : 0;
	free(blob);
	return r;
}

/* Write a collection's state: 0 or -1. */
static int
state_store(const struct eas_serve_in *in, const char *coll, const struct sstate *s)
{
	char *blob;
	int r;

	if (in->state.put == NULL)
		return 0;
	blob = sstate_format(s);
	r = in->state.put(in->state.arg, in->account, in->device_id, coll, blob, strlen(blob));
	free(blob);
	return r < 0 ? -1 : 0;
}

/* FNV-1a over a string, continuing from h. */
static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL;
}

/*
 * A new sync key after old (generation + 1): "abq-<gen>-<8 hex>", the hex
 * part a hash of the device, the collection, the time and the generation, so
 * that a key from an earlier life of the state does not match by chance.
 */
static void
new_key(const struct eas_serve_in *in, const char *coll, const char *old, char key[MBX_ID_MAX + 1])
{
	unsigned long gen = 0;
	char num[32];

	if (old && eas_mailbox_key_is_ours(old))
		gen = strtoul(old + strlen(EAS_MAILBOX_PREFIX), NULL, 10);
	gen++;
	snprintf(num, sizeof(num), "%lu:%" PRId64, gen, in->now);
	uint64_t h =
	    fnv(fnv(fnv(fnv(0xcbf29ce484222325ULL, in->account), in->device_id), coll), num);
	snprintf(key, MBX_ID_MAX + 1, EAS_MAILBOX_PREFIX "%lu-%08" PRIx32, gen,
	         (uint32_t)(h ^ (h >> 32)));
}

/* Whether a key is one of ours. */
bool
eas_mailbox_key_is_ours(const char *key)
{
	return key != NULL && strncmp(key, EAS_MAILBOX_PREFIX, strlen(EAS_MAILBOX_PREFIX)) == 0;
}

/* ---- WBXML helpers ---------------------------------------------------- */

/* The direct child qname of n, or NULL. */
static struct wbxml_node *
kid(const struct wbxml_node *n, const char *qname)
{
	return wbxml_find(n, qname);
}

/* The text of a direct child, or NULL. */
static const char *
kid_text(const struct wbxml_node *n, const char *qname)
{
	return wbxml_find_text(n, qname);
}

/* Whether n is (page, name). */
static bool
is_el(const struct wbxml_node *n, unsigned page, const char *name)
{
	return n != NULL && n->page == page && n->name != NULL && strcmp(n->name, name) == 0;
}

/* Add an element holding a number. */
static struct wbxml_node *
add_int(struct wbxml_node *parent, const char *qname, long long v)
{
	char t[32];

	snprintf(t, sizeof(t), "%lld", v);
	return wbxml_addn_text(parent, qname, t);
}

/* A whole decimal child, or def when absent or not a number in [min, max]. */
static long long
kid_int(const struct wbxml_node *n, const char *qname, long long min, long long max, long long def)
{
	const char *t = kid_text(n, qname), *e;
	long long v;

	if (t == NULL || parse_int(t, min, max, &v, &e) < 0)
		return def;
	return v;
}

/* Encode doc into out as an HTTP 200 WBXML answer; frees doc. Returns 0 or -1. */
static int
finish(struct wbxml_doc **doc, struct eas_serve_out *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum wbxml_err e = wbxml_encode(*doc, &buf, &len, NULL);

	wbxml_doc_free(doc);
	if (e != WBXML_OK) {
		out->http_status = 500;
		out->detail = "could not encode the answer";
		return -1;
	}
	out->http_status = 200;
	out->content_type = CT_WBXML;
	out->body = buf;
	out->body_len = len;
	return 0;
}

/* An answer holding only <root><Status>status</Status></root>. */
static int
status_only(const char *root, int status, struct eas_serve_out *out)
{
	struct wbxml_doc *doc = wbxml_doc_new();

	add_int(wbxml_addn_root(doc, root), "Status", status);
	return finish(&doc, out);
}

/* An answer without a body. */
static int
http_only(int status, const char *detail, struct eas_serve_out *out)
{
	out->http_status = status;
	out->detail = detail;
	return 0;
}

/* Decode the request body and check its root; NULL (and HTTP 400 in out) otherwise. */
static struct wbxml_doc *
decode_root(const struct eas_serve_in *in, unsigned page, const char *root,
            struct eas_serve_out *out, struct wbxml_node **root_r)
{
	struct wbxml_doc *doc = NULL;

	if (in->body_len == 0 ||
	    wbxml_decode(in->body, in->body_len, NULL, &doc, NULL) != WBXML_OK) {
		http_only(400, "request body is not WBXML", out);
		return NULL;
	}
	*root_r = wbxml_doc_root(doc);
	if (!is_el(*root_r, page, root)) {
		wbxml_doc_free(&doc);
		http_only(400, "request body has the wrong root element", out);
		return NULL;
	}
	return doc;
}

/* ---- bodies and e-mail items ----------------------------------------- */

/* The body the client asked for: type 1 (plain) or 2 (HTML). */
struct body_pref {
	int type;
	long long truncation; /* 0: none */
	bool all_or_none;
};

/*
 * Pick the first BodyPreference below opts whose type we serve (1 or 2);
 * without one, plain text in full.
 */
static struct body_pref
pick_body(const struct wbxml_node *opts)
{
	struct body_pref bp = {1, 0, false};

	for (const struct wbxml_node *c = opts ? opts->first_child : NULL; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_AIRSYNCBASE, "BodyPreference"))
			continue;
		long long t = kid_int(c, "AirSyncBase:Type", 1, 4, 0);
		if (t != 1 && t != 2)
			continue;
		bp.type = (int)t;
		bp.truncation = kid_int(c, "AirSyncBase:TruncationSize", 0, 0xFFFFFFFFLL, 0);
		bp.all_or_none = kid_int(c, "AirSyncBase:AllOrNone", 0, 1, 0) == 1;
		break;
	}
	return bp;
}

/* EAS date-time text ("2026-11-28T05:55:14.000Z"). */
static void
eas_date(int64_t t, char buf[40])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(buf, 40, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/*
 * AirSyncBase:Body of an e-mail in the preferred type, truncated to the
 * preference on a UTF-8 boundary (nothing when AllOrNone and it does not fit).
 */
static void
add_body(struct wbxml_node *parent, const struct mbx_email *e, struct body_pref bp)
{
	const char *text = bp.type == 2 && e->body_html ? e->body_html : e->body_plain;
	int type = bp.type == 2 && e->body_html ? 2 : 1;
	size_t full = text ? strlen(text) : 0, n = full;
	bool truncated = false;

	if (bp.truncation > 0 && (unsigned long long)bp.truncation < full) {
		n = (size_t)bp.truncation;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--;
		truncated = true;
	}
	struct wbxml_node *b = wbxml_addn(parent, "AirSyncBase:Body");
	add_int(b, "AirSyncBase:Type", type);
	add_int(b, "AirSyncBase:EstimatedDataSize", (long long)full);
	if (truncated)
		add_int(b, "AirSyncBase:Truncated", 1);
	if (truncated && bp.all_or_none)
		return;
	char *data = xstrndup(text ? text : "", n);
	wbxml_addn_text(b, "AirSyncBase:Data", data);
	free(data);
}

/* The e-mail properties (ApplicationData / Properties) of an item. */
static void
add_email(struct wbxml_node *parent, const struct mbx_email *e, struct body_pref bp)
{
	char date[40];

	eas_date(e->date_received, date);
	wbxml_addn_text(parent, "Email:To", e->to ? e->to : "");
	wbxml_addn_text(parent, "Email:From", e->from ? e->from : "");
	wbxml_addn_text(parent, "Email:Subject", e->subject ? e->subject : "");
	wbxml_addn_text(parent, "Email:DateReceived", date);
	wbxml_addn_text(parent, "Email:DisplayTo", e->display_to ? e->display_to : "");
	add_int(parent, "Email:Importance", 1);
	add_int(parent, "Email:Read", e->read ? 1 : 0);
	add_body(parent, e, bp);
	wbxml_addn_text(parent, "Email:MessageClass",
	                e->message_class ? e->message_class : "IPM.Note");
	add_int(parent, "Email:InternetCPID", 65001);
	wbxml_addn_text(parent, "Email:ContentClass", "urn:content-classes:message");
	add_int(parent, "AirSyncBase:NativeBodyType", e->body_html ? 2 : 1);
}

/* ---- Provision -------------------------------------------------------- */

/* A policy key: the caller's, or one derived from the device (never 0). */
static uint32_t
policy_key(const struct eas_serve_in *in, bool final)
{
	uint32_t k;

	if (in->policy_key != NULL)
		k = in->policy_key(in->policy_key_arg, final);
	else {
		char t[32];
		snprintf(t, sizeof(t), "%s:%" PRId64, final ? "final" : "temp",
		         final ? 0 : in->now);
		uint64_t h = fnv(fnv(0xcbf29ce484222325ULL, in->device_id), t);
		k = (uint32_t)(h ^ (h >> 32));
	}
	return k ? k : 1;
}

/* The EASProvisionDoc of a policy that imposes nothing. */
static void
add_provision_doc(struct wbxml_node *data, int v)
{
	struct wbxml_node *d = wbxml_addn(data, "Provision:EASProvisionDoc");
	static const struct {
		const char *name;
		int value;
	} fields[] = {
	    {"DevicePasswordEnabled", 0},
	    {"AlphanumericDevicePasswordRequired", 0},
	    {"PasswordRecoveryEnabled", 0},
	    {"RequireStorageCardEncryption", 0},
	    {"AttachmentsEnabled", 1},
	    {"AllowSimpleDevicePassword", 1},
	    {"AllowStorageCard", 1},
	    {"AllowCamera", 1},
	    {"RequireDeviceEncryption", 0},
	    {"AllowUnsignedApplications", 1},
	    {"AllowUnsignedInstallationPackages", 1},
	    {"AllowWiFi", 1},
	    {"AllowTextMessaging", 1},
	    {"AllowPOPIMAPEmail", 1},
	    {"AllowBluetooth", 2},
	    {"AllowIrDA", 1},
	    {"RequireManualSyncWhenRoaming", 0},
	    {"AllowDesktopSync", 1},
	    {"MaxCalendarAgeFilter", 0},
	    {"AllowHTMLEmail", 1},
	    {"MaxEmailAgeFilter", 0},
	    {"RequireSignedSMIMEMessages", 0},
	    {"RequireEncryptedSMIMEMessages", 0},
	    {"AllowSMIMEEncryptionAlgorithmNegotiation", 2},
	    {"AllowSMIMESoftCerts", 1},
	    {"AllowBrowser", 1},
	    {"AllowConsumerEmail", 1},
	    {"AllowRemoteDesktop", 1},
	    {"AllowInternetSharing", 1},
	};
	char q[80];

	(void)v;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		snprintf(q, sizeof(q), "Provision:%s", fields[i].name);
		add_int(d, q, fields[i].value);
	}
}

/* Provision: both phases, the RemoteWipe acknowledgement, DeviceInformation. */
static int
cmd_provision(const struct eas_serve_in *in, int v, struct eas_serve_out *out)
{
	struct wbxml_node *req, *policy, *r, *p;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_PROVISION, "Provision", out, &req);
	struct wbxml_doc *doc;
	char t[16];

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Provision:Provision");
	if (kid(req, "Settings:DeviceInformation") != NULL) {
		out->devinfo_seen = true;
		add_int(wbxml_addn(r, "Settings:DeviceInformation"), "Settings:Status", 1);
	}
	policy = wbxml_find(req, "Policies/Policy");
	if (policy == NULL && kid(req, "RemoteWipe") == NULL &&
	    kid(req, "Settings:DeviceInformation") == NULL) {
		add_int(r, "Provision:Status", 2); /* protocol error */
		wbxml_doc_free(&rq);
		return finish(&doc, out);
	}
	add_int(r, "Provision:Status", 1);
	if (policy != NULL) {
		const char *type = kid_text(policy, "PolicyType");
		bool phase2 = kid_text(policy, "PolicyKey") != NULL;
		p = wbxml_addn(wbxml_addn(r, "Provision:Policies"), "Provision:Policy");
		wbxml_addn_text(p, "Provision:PolicyType", type ? type : PROVISION_TYPE);
		if (type == NULL || strcmp(type, PROVISION_TYPE) != 0) {
			add_int(p, "Provision:Status", 3); /* unknown PolicyType */
		} else {
			add_int(p, "Provision:Status", 1);
			snprintf(t, sizeof(t), "%" PRIu32, policy_key(in, phase2));
			wbxml_addn_text(p, "Provision:PolicyKey", t);
			if (!phase2)
				add_provision_doc(wbxml_addn(p, "Provision:Data"), v);
		}
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* ---- Settings --------------------------------------------------------- */

/* Settings: DeviceInformation Set, UserInformation Get, Oof, DevicePassword. */
static int
cmd_settings(const struct eas_serve_in *in, int v, struct eas_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_SETTINGS, "Settings", out, &req);
	struct wbxml_doc *doc;
	const char *addr = in->email ? in->email : in->account;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Settings:Settings");
	add_int(r, "Status", 1);
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (is_el(c, WBXML_PAGE_SETTINGS, "DeviceInformation")) {
			out->devinfo_seen = true;
			add_int(wbxml_addn(r, "DeviceInformation"), "Status", 1);
		} else if (is_el(c, WBXML_PAGE_SETTINGS, "UserInformation")) {
			struct wbxml_node *u = wbxml_addn(r, "UserInformation");
			add_int(u, "Status", 1);
			struct wbxml_node *g = wbxml_addn(u, "Get");
			if (v >= 141) {
				struct wbxml_node *a =
				    wbxml_addn(wbxml_addn(g, "Accounts"), "Account");
				struct wbxml_node *e = wbxml_addn(a, "EmailAddresses");
				wbxml_addn_text(e, "PrimarySmtpAddress", addr);
			} else {
				wbxml_addn_text(wbxml_addn(g, "EmailAddresses"), "SmtpAddress",
				                addr);
			}
		} else if (is_el(c, WBXML_PAGE_SETTINGS, "Oof")) {
			struct wbxml_node *o = wbxml_addn(r, "Oof");
			if (kid(c, "Get") != NULL) {
				add_int(o, "Status", 1);
				add_int(wbxml_addn(o, "Get"), "OofState", 0);
			} else {
				add_int(o, "Status",
				        3); /* access denied: would change the mailbox */
			}
		} else if (is_el(c, WBXML_PAGE_SETTINGS, "DevicePassword")) {
			add_int(wbxml_addn(r, "DevicePassword"), "Status", 1);
		}
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* ---- FolderSync ------------------------------------------------------- */

/* FolderSync: the hierarchy for key 0, no changes for our current key, else 9. */
static int
cmd_foldersync(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_FOLDERHIERARCHY, "FolderSync", out, &req);
	struct sstate st;
	const struct mbx_folder *f = NULL;
	size_t nf = 0;
	const char *key, *err;
	char nk[MBX_ID_MAX + 1];
	bool initial;
	int rv = 0;

	if (rq == NULL)
		return 0;
	key = kid_text(req, "SyncKey");
	if (key == NULL) {
		wbxml_doc_free(&rq);
		return status_only("FolderHierarchy:FolderSync", 10, out); /* incorrect format */
	}
	initial = strcmp(key, "0") == 0;
	if (initial) {
		if (in->state.del &&
		    in->state.del(in->state.arg, in->account, in->device_id, NULL) < 0)
			goto fail;
		memset(&st, 0, sizeof(st));
	} else {
		int lr = state_load(in, EAS_STATE_FOLDERSYNC, &st);
		if (lr < 0)
			goto fail;
		if (lr == 0 || strcmp(st.key, key) != 0) {
			sstate_clear(&st);
			wbxml_doc_free(&rq);
			return status_only("FolderHierarchy:FolderSync", 9, out);
		}
	}
	if (mbx_list_folders(in->backend, &f, &nf, &err) < 0) {
		sstate_clear(&st);
		goto fail;
	}
	new_key(in, EAS_STATE_FOLDERSYNC, initial ? NULL : st.key, nk);
	snprintf(st.key, sizeof(st.key), "%s", nk);
	if (state_store(in, EAS_STATE_FOLDERSYNC, &st) < 0) {
		sstate_clear(&st);
		goto fail;
	}
	sstate_clear(&st);

	struct wbxml_doc *doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "FolderHierarchy:FolderSync");
	add_int(r, "Status", 1);
	wbxml_addn_text(r, "SyncKey", nk);
	struct wbxml_node *ch = wbxml_addn(r, "Changes");
	add_int(ch, "Count", initial ? (long long)nf : 0);
	for (size_t i = 0; initial && i < nf; i++) {
		struct wbxml_node *a = wbxml_addn(ch, "Add");
		wbxml_addn_text(a, "ServerId", f[i].id);
		wbxml_addn_text(a, "ParentId", f[i].parent_id ? f[i].parent_id : "0");
		wbxml_addn_text(a, "DisplayName", f[i].name);
		add_int(a, "Type", f[i].type);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
fail:
	wbxml_doc_free(&rq);
	http_only(500, "sync state or mailbox failure", out);
	return rv;
}

/* ---- Sync ------------------------------------------------------------- */

/* One pending change between the backend and what the client has. */
struct change {
	enum { CH_ADD, CH_CHANGE, CH_DELETE } kind;
	char id[MBX_ID_MAX + 1];
	uint64_t version;
};

/*
 * Compare the backend's items of folder with the state: Adds (not in the
 * state), Changes (another version), Deletes (gone from the backend). Returns
 * the number of changes (*ch_r malloc'd), or -1.
 */
static long
diff_items(const struct eas_serve_in *in, const char *folder, struct sstate *st,
           struct change **ch_r)
{
	struct mbx_item_ref *items = NULL;
	size_t n = 0, nc = 0;
	const char *err;
	struct change *ch;

	*ch_r = NULL;
	if (mbx_list_items(in->backend, folder, &items, &n, &err) < 0)
		return -1;
	ch = xcalloc(n + st->n + 1, sizeof(*ch));
	for (size_t i = 0; i < n; i++) {
		struct st_item *have = sstate_item(st, items[i].id);
		if (have != NULL && have->version == items[i].version)
			continue;
		ch[nc].kind = have ? CH_CHANGE : CH_ADD;
		snprintf(ch[nc].id, sizeof(ch[nc].id), "%s", items[i].id);
		ch[nc].version = items[i].version;
		nc++;
	}
	for (size_t j = 0; j < st->n; j++) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(items[i].id, st->items[j].id) == 0;
		if (!found) {
			ch[nc].kind = CH_DELETE;
			snprintf(ch[nc].id, sizeof(ch[nc].id), "%s", st->items[j].id);
			nc++;
		}
	}
	free(items);
	*ch_r = ch;
	return (long)nc;
}

/* Apply the client's Commands (Change of the read flag, Delete, Add, Fetch). */
static int
apply_client_commands(const struct eas_serve_in *in, const char *folder, struct sstate *st,
                      const struct wbxml_node *cmds, struct body_pref bp,
                      struct wbxml_node *coll_out, struct wbxml_node **responses)
{
	const char *err;

	for (const struct wbxml_node *c = cmds ? cmds->first_child : NULL; c; c = c->next) {
		const char *sid = kid_text(c, "ServerId");
		if (is_el(c, WBXML_PAGE_AIRSYNC, "Change")) {
			const char *rd = wbxml_find_text(c, "ApplicationData/Email:Read");
			struct st_item *it = sid ? sstate_item(st, sid) : NULL;
			if (it == NULL) {
				if (*responses == NULL)
					*responses = wbxml_addn(coll_out, "Responses");
				struct wbxml_node *x = wbxml_addn(*responses, "Change");
				wbxml_addn_text(x, "ServerId", sid ? sid : "");
				add_int(x, "Status", 8); /* object not found */
				continue;
			}
			if (rd != NULL) {
				it->read = strcmp(rd, "1") == 0;
				if (mbx_set_read(in->backend, folder, sid, it->read, &err) < 0)
					return -1;
			}
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Delete")) {
			/* Forgotten by the client: the next GetChanges adds it again. */
			for (size_t i = 0; sid && i < st->n; i++) {
				if (strcmp(st->items[i].id, sid) == 0) {
					sstate_remove(st, i);
					break;
				}
			}
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Add")) {
			const char *cid = kid_text(c, "ClientId");
			if (*responses == NULL)
				*responses = wbxml_addn(coll_out, "Responses");
			struct wbxml_node *x = wbxml_addn(*responses, "Add");
			wbxml_addn_text(x, "ClientId", cid ? cid : "");
			add_int(x, "Status", 5); /* server error: not stored */
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Fetch")) {
			struct mbx_email e;
			int fr = sid ? mbx_fetch(in->backend, folder, sid, &e, &err) : 0;
			if (fr < 0)
				return -1;
			if (*responses == NULL)
				*responses = wbxml_addn(coll_out, "Responses");
			struct wbxml_node *x = wbxml_addn(*responses, "Fetch");
			wbxml_addn_text(x, "ServerId", sid ? sid : "");
			add_int(x, "Status", fr == 1 ? 1 : 8);
			if (fr == 1)
				add_email(wbxml_addn(x, "ApplicationData"), &e, bp);
			mbx_email_clear(&e);
		}
	}
	return 0;
}

/* Restore the read flags the client has set into the backend instance. */
static int
restore_read_flags(const struct eas_serve_in *in, const char *folder, const struct sstate *st)
{
	const char *err;

	for (size_t i = 0; i < st->n; i++) {
		if (st->items[i].read &&
		    mbx_set_read(in->backend, folder, st->items[i].id, true, &err) < 0)
			return -1;
	}
	return 0;
}

/* One collection of a Sync request. Returns 0, or -1 on a state/backend failure. */
static int
sync_collection(const struct eas_serve_in *in, const struct wbxml_node *c, long long window,
                struct wbxml_node *colls_out)
{
	const char *key = kid_text(c, "SyncKey"), *folder = kid_text(c, "CollectionId");
	struct wbxml_node *co = wbxml_addn(colls_out, "Collection");
	struct wbxml_node *responses = NULL, *more_at;
	struct sstate st;
	struct change *ch = NULL;
	struct body_pref bp = pick_body(kid(c, "Options"));
	char nk[MBX_ID_MAX + 1];
	const char *gc;
	bool get_changes;
	long nc;
	int lr;

	if (key == NULL || folder == NULL) {
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", folder ? folder : "");
		add_int(co, "Status", 4); /* protocol error */
		return 0;
	}
	if (mbx_folder_find(in->backend, folder) == NULL) {
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 12); /* hierarchy changed: FolderSync */
		return 0;
	}
	window = kid_int(c, "WindowSize", 0, MAX_WINDOW, window);
	if (window < 1)
		window = 1;
	if (strcmp(key, "0") == 0) {
		memset(&st, 0, sizeof(st));
		new_key(in, folder, NULL, nk);
		snprintf(st.key, sizeof(st.key), "%s", nk);
		if (state_store(in, folder, &st) < 0)
			return -1;
		wbxml_addn_text(co, "SyncKey", nk);
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 1);
		return 0;
	}
	lr = state_load(in, folder, &st);
	if (lr < 0)
		return -1;
	if (lr == 0 || strcmp(st.key, key) != 0) {
		sstate_clear(&st);
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 3); /* invalid sync key: start over */
		return 0;
	}
	new_key(in, folder, st.key, nk);
	wbxml_addn_text(co, "SyncKey", nk);
	wbxml_addn_text(co, "CollectionId", folder);
	add_int(co, "Status", 1);
	more_at = co;
	if (restore_read_flags(in, folder, &st) < 0 ||
	    apply_client_commands(in, folder, &st, kid(c, "Commands"), bp, co, &responses) < 0)
		goto fail;
	gc = kid_text(c, "GetChanges");
	get_changes = kid(c, "GetChanges") == NULL || gc == NULL || strcmp(gc, "0") != 0;
	if (get_changes) {
		nc = diff_items(in, folder, &st, &ch);
		if (nc < 0)
			goto fail;
		if (nc > window)
			wbxml_addn(more_at, "MoreAvailable");
		struct wbxml_node *cmds = NULL;
		for (long i = 0; i < nc && i < window; i++) {
			if (cmds == NULL)
				cmds = wbxml_addn(co, "Commands");
			if (ch[i].kind == CH_DELETE) {
				wbxml_addn_text(wbxml_addn(cmds, "Delete"), "ServerId", ch[i].id);
				for (size_t j = 0; j < st.n; j++) {
					if (strcmp(st.items[j].id, ch[i].id) == 0) {
						sstate_remove(&st, j);
						break;
					}
				}
				continue;
			}
			struct mbx_email e;
			const char *err;
			int fr = mbx_fetch(in->backend, folder, ch[i].id, &e, &err);
			if (fr < 0)
				goto fail;
			if (fr == 0)
				continue; /* vanished meanwhile: the next Sync deletes it */
			struct wbxml_node *a =
			    wbxml_addn(cmds, ch[i].kind == CH_ADD ? "Add" : "Change");
			wbxml_addn_text(a, "ServerId", ch[i].id);
			add_email(wbxml_addn(a, "ApplicationData"), &e, bp);
			struct st_item *it = sstate_item(&st, ch[i].id);
			if (it == NULL)
				it = sstate_add(&st, ch[i].id, ch[i].version, e.read);
			if (it != NULL) {
				it->version = ch[i].version;
				it->read = e.read;
			}
			mbx_email_clear(&e);
		}
		free(ch);
		ch = NULL;
	}
	snprintf(st.key, sizeof(st.key), "%s", nk);
	if (state_store(in, folder, &st) < 0)
		goto fail;
	sstate_clear(&st);
	return 0;
fail:
	free(ch);
	sstate_clear(&st);
	return -1;
}

/* Sync: every collection of the request. */
static int
cmd_sync(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *colls, *r;
	struct wbxml_doc *rq, *doc;
	long long window;

	if (in->body_len == 0) /* an empty Sync repeats the last one: not cached here */
		return status_only("AirSync:Sync", 13, out);
	rq = decode_root(in, WBXML_PAGE_AIRSYNC, "Sync", out, &req);
	if (rq == NULL)
		return 0;
	colls = kid(req, "Collections");
	if (colls == NULL) {
		wbxml_doc_free(&rq);
		return status_only("AirSync:Sync", 4, out);
	}
	window = kid_int(req, "WindowSize", 1, MAX_WINDOW, DEFAULT_WINDOW);
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "AirSync:Sync");
	struct wbxml_node *co = wbxml_addn(r, "Collections");
	for (struct wbxml_node *c = colls->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_AIRSYNC, "Collection"))
			continue;
		if (sync_collection(in, c, window, co) < 0) {
			wbxml_doc_free(&doc);
			wbxml_doc_free(&rq);
			return http_only(500, "sync state or mailbox failure", out);
		}
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* ---- GetItemEstimate -------------------------------------------------- */

/* GetItemEstimate: the number of pending changes per collection. */
static int
cmd_getitemestimate(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *colls, *r;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_GETITEMESTIMATE, "GetItemEstimate", out, &req);
	struct wbxml_doc *doc;

	if (rq == NULL)
		return 0;
	colls = kid(req, "Collections");
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "GetItemEstimate:GetItemEstimate");
	for (struct wbxml_node *c = colls ? colls->first_child : NULL; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_GETITEMESTIMATE, "Collection"))
			continue;
		const char *folder = kid_text(c, "CollectionId");
		const char *key = kid_text(c, "AirSync:SyncKey");
		struct wbxml_node *resp = wbxml_addn(r, "Response");
		struct sstate st;
		struct change *ch = NULL;
		long nc = 0;
		int status = 1, lr;

		if (folder == NULL || mbx_folder_find(in->backend, folder) == NULL)
			status = 2;
		else if (key == NULL || strcmp(key, "0") == 0)
			status = 3;
		else if ((lr = state_load(in, folder, &st)) < 0)
			goto fail;
		else {
			if (lr == 0 || strcmp(st.key, key) != 0)
				status = 4;
			else if ((nc = diff_items(in, folder, &st, &ch)) < 0) {
				sstate_clear(&st);
				goto fail;
			}
			free(ch);
			sstate_clear(&st);
		}
		add_int(resp, "Status", status);
		struct wbxml_node *co = wbxml_addn(resp, "Collection");
		wbxml_addn_text(co, "CollectionId", folder ? folder : "");
		if (status == 1)
			add_int(co, "Estimate", nc);
	}
	if (r->first_child == NULL)
		add_int(wbxml_addn(r, "Response"), "Status", 2);
	wbxml_doc_free(&rq);
	return finish(&doc, out);
fail:
	wbxml_doc_free(&doc);
	wbxml_doc_free(&rq);
	return http_only(500, "sync state or mailbox failure", out);
}

/* ---- Ping ------------------------------------------------------------- */

/* Whether the client lacks anything of folder (no state counts as lacking all). */
static int
folder_has_changes(const struct eas_serve_in *in, const char *folder)
{
	struct sstate st;
	struct change *ch = NULL;
	long nc;

	if (state_load(in, folder, &st) < 0)
		return -1;
	nc = diff_items(in, folder, &st, &ch);
	free(ch);
	sstate_clear(&st);
	return nc < 0 ? -1 : nc > 0;
}

/* Ping: check the heartbeat and the folders, then hold or answer at once. */
static int
cmd_ping(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	int hb_min = in->heartbeat_min > 0 ? in->heartbeat_min : DEFAULT_HB_MIN;
	int hb_max = in->heartbeat_max > 0 ? in->heartbeat_max : DEFAULT_HB_MAX;
	struct wbxml_node *req = NULL, *r;
	struct wbxml_doc *rq = NULL, *doc;
	struct sstate saved, now = {0};
	long long hb;
	int lr;

	lr = state_load(in, EAS_STATE_PING, &saved);
	if (lr < 0)
		return http_only(500, "sync state failure", out);
	if (in->body_len > 0) {
		rq = decode_root(in, WBXML_PAGE_PING, "Ping", out, &req);
		if (rq == NULL) {
			sstate_clear(&saved);
			return 0;
		}
	}
	hb = req ? kid_int(req, "HeartbeatInterval", 0, 100000, -1) : -1;
	now.hb = hb >= 0 ? (int)hb : saved.hb;
	struct wbxml_node *fl = req ? kid(req, "Folders") : NULL;
	if (fl != NULL) {
		for (struct wbxml_node *f = fl->first_child; f; f = f->next) {
			const char *id = kid_text(f, "Id");
			if (id == NULL || now.n_folders >= MAX_PING_FOLDERS)
				continue;
			now.folders = xrealloc(now.folders, (now.n_folders + 1) * sizeof(char *));
			now.folders[now.n_folders++] = xstrdup(id);
		}
	} else {
		now.folders = saved.folders;
		now.n_folders = saved.n_folders;
		saved.folders = NULL;
		saved.n_folders = 0;
	}
	sstate_clear(&saved);
	wbxml_doc_free(&rq);

	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Ping:Ping");
	if (now.hb <= 0 || now.n_folders == 0) {
		add_int(r, "Status", 3); /* missing parameters */
		goto done;
	}
	if (now.hb < hb_min || now.hb > hb_max) {
		add_int(r, "Status", 5);
		add_int(r, "HeartbeatInterval", now.hb < hb_min ? hb_min : hb_max);
		goto done;
	}
	for (size_t i = 0; i < now.n_folders; i++) {
		if (mbx_folder_find(in->backend, now.folders[i]) == NULL) {
			add_int(r, "Status", 7); /* folder hierarchy out of date */
			goto done;
		}
	}
	if (state_store(in, EAS_STATE_PING, &now) < 0)
		goto fail;
	struct wbxml_node *changed = NULL;
	for (size_t i = 0; i < now.n_folders; i++) {
		int hc = folder_has_changes(in, now.folders[i]);
		if (hc < 0)
			goto fail;
		if (hc) {
			if (changed == NULL) {
				add_int(r, "Status", 2);
				changed = wbxml_addn(r, "Folders");
			}
			wbxml_addn_text(changed, "Folder", now.folders[i]);
		}
	}
	if (changed == NULL) {
		add_int(r, "Status", 1);
		out->hold_seconds = now.hb;
	}
done:
	sstate_clear(&now);
	return finish(&doc, out);
fail:
	sstate_clear(&now);
	wbxml_doc_free(&doc);
	return http_only(500, "sync state or mailbox failure", out);
}

/* ---- ItemOperations --------------------------------------------------- */

/* ItemOperations: Fetch of a mailbox item; other operations fail. */
static int
cmd_itemoperations(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *r, *resp;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_ITEMOPERATIONS, "ItemOperations", out, &req);
	struct wbxml_doc *doc;
	const char *err;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "ItemOperations:ItemOperations");
	add_int(r, "Status", 1);
	resp = wbxml_addn(r, "Response");
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_ITEMOPERATIONS, "Fetch")) {
			struct wbxml_node *x = wbxml_add(resp, c->page, c->token);
			add_int(x, "ItemOperations:Status", 3); /* server error */
			continue;
		}
		const char *sid = kid_text(c, "AirSync:ServerId");
		const char *folder = kid_text(c, "AirSync:CollectionId");
		struct mbx_email e = {0};
		int fr = 0;

		if (sid != NULL && folder == NULL) {
			/* Without CollectionId: look in every folder. */
			const struct mbx_folder *f;
			size_t nf;
			if (mbx_list_folders(in->backend, &f, &nf, &err) < 0)
				goto fail;
			for (size_t i = 0; i < nf && fr == 0; i++) {
				fr = mbx_fetch(in->backend, f[i].id, sid, &e, &err);
				if (fr == 1)
					folder = f[i].id;
			}
		} else if (sid != NULL && mbx_folder_find(in->backend, folder) != NULL) {
			fr = mbx_fetch(in->backend, folder, sid, &e, &err);
		}
		if (fr < 0)
			goto fail;
		struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:Fetch");
		add_int(x, "ItemOperations:Status", fr == 1 ? 1 : 6);
		if (folder != NULL)
			wbxml_addn_text(x, "AirSync:CollectionId", folder);
		if (sid != NULL)
			wbxml_addn_text(x, "AirSync:ServerId", sid);
		if (fr == 1) {
			wbxml_addn_text(x, "AirSync:Class", "Email");
			add_email(wbxml_addn(x, "ItemOperations:Properties"), &e,
			          pick_body(kid(c, "ItemOperations:Options")));
		}
		mbx_email_clear(&e);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
fail:
	wbxml_doc_free(&doc);
	wbxml_doc_free(&rq);
	return http_only(500, "mailbox failure", out);
}

/* ---- the commands that fail ------------------------------------------ */

/* MoveItems: each Move fails with Status 5. */
static int
cmd_moveitems(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_MOVE, "MoveItems", out, &req);
	struct wbxml_doc *doc;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Move:MoveItems");
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_MOVE, "Move"))
			continue;
		const char *src = kid_text(c, "SrcMsgId");
		struct wbxml_node *x = wbxml_addn(r, "Response");
		wbxml_addn_text(x, "SrcMsgId", src ? src : "");
		add_int(x, "Status", 5);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* MeetingResponse: each Request fails with Status 3. */
static int
cmd_meetingresponse(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_MEETINGRESPONSE, "MeetingResponse", out, &req);
	struct wbxml_doc *doc;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "MeetingResponse:MeetingResponse");
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_MEETINGRESPONSE, "Request"))
			continue;
		const char *id = kid_text(c, "RequestId");
		struct wbxml_node *x = wbxml_addn(r, "Result");
		wbxml_addn_text(x, "RequestId", id ? id : "");
		add_int(x, "Status", 3);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* FolderUpdate / FolderDelete: 3 for our (special) folders, else 4. */
static int
cmd_folder_change(const struct eas_serve_in *in, const char *root, const char *qroot,
                  struct eas_serve_out *out)
{
	struct wbxml_node *req;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_FOLDERHIERARCHY, root, out, &req);
	int status;

	if (rq == NULL)
		return 0;
	status = mbx_folder_find(in->backend, kid_text(req, "ServerId")) ? 3 : 4;
	wbxml_doc_free(&rq);
	return status_only(qroot, status, out);
}

/* ---- the dispatcher --------------------------------------------------- */

/* Answer one command (the table at the top of this file). */
int
eas_serve(const struct eas_serve_in *in, struct eas_serve_out *out)
{
	int v;

	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	if (in == NULL || in->backend == NULL || in->account == NULL || *in->account == '\0' ||
	    in->device_id == NULL || *in->device_id == '\0' || (in->body == NULL && in->body_len)) {
		out->http_status = 500;
		return -1;
	}
	v = in->version ? eas_version_number(in->version) : 141;
	switch (in->cmd) {
	case EAS_CMD_PROVISION:
		return cmd_provision(in, v, out);
	case EAS_CMD_SETTINGS:
		return cmd_settings(in, v, out);
	case EAS_CMD_FOLDERSYNC:
		return cmd_foldersync(in, out);
	case EAS_CMD_SYNC:
		return cmd_sync(in, out);
	case EAS_CMD_GETITEMESTIMATE:
		return cmd_getitemestimate(in, out);
	case EAS_CMD_PING:
		return cmd_ping(in, out);
	case EAS_CMD_ITEMOPERATIONS:
		return cmd_itemoperations(in, out);
	case EAS_CMD_SENDMAIL:
	case EAS_CMD_SMARTREPLY:
	case EAS_CMD_SMARTFORWARD:
		if (v < 140)
			return http_only(500, "mail cannot be sent from the quarantine mailbox",
			                 out);
		return status_only(eas_status_root(in->cmd), 111, out);
	case EAS_CMD_GETATTACHMENT:
		return http_only(500, "no attachment in the quarantine mailbox", out);
	case EAS_CMD_MOVEITEMS:
		return cmd_moveitems(in, out);
	case EAS_CMD_SEARCH:
		return status_only("Search:Search", 3, out);
	case EAS_CMD_FOLDERCREATE:
		return status_only("FolderHierarchy:FolderCreate", 6, out);
	case EAS_CMD_FOLDERUPDATE:
		return cmd_folder_change(in, "FolderUpdate", "FolderHierarchy:FolderUpdate", out);
	case EAS_CMD_FOLDERDELETE:
		return cmd_folder_change(in, "FolderDelete", "FolderHierarchy:FolderDelete", out);
	case EAS_CMD_MEETINGRESPONSE:
		return cmd_meetingresponse(in, out);
	case EAS_CMD_RESOLVERECIPIENTS:
		return status_only("ResolveRecipients:ResolveRecipients", 6, out);
	case EAS_CMD_VALIDATECERT:
		return status_only("ValidateCert:ValidateCert", 17, out);
	case EAS_CMD_FIND:
		if (v < 161)
			return http_only(403, "Find needs EAS 16.1", out);
		return status_only("Find:Find", 110, out);
	default:
		return http_only(400, "not a command the mailbox serves", out);
	}
}

/* Free an answer's body and zero it. */
void
eas_serve_out_clear(struct eas_serve_out *out)
{
	if (out == NULL)
		return;
	free(out->body);
	memset(out, 0, sizeof(*out));
}

/* ---- helpers for the daemon ------------------------------------------- */

/* Copy a key into the caller's array when there is room; returns the new count. */
static int
push_key(char **keys, size_t max, int n, const char *k)
{
	if (k == NULL)
		return n;
	if ((size_t)n < max)
		keys[n] = xstrdup(k);
	return n + 1 > (int)max ? (int)max : n + 1;
}

/* The sync keys (or Ping folder ids) a request carries. */
int
eas_request_sync_keys(enum eas_cmd cmd, const uint8_t *body, size_t len, char **keys, size_t max)
{
	struct wbxml_doc *doc = NULL;
	struct wbxml_node *root, *colls;
	int n = 0;

	if (body == NULL || len == 0)
		return 0;
	if (wbxml_decode(body, len, NULL, &doc, NULL) != WBXML_OK)
		return -1;
	root = wbxml_doc_root(doc);
	switch (cmd) {
	case EAS_CMD_FOLDERSYNC:
		if (is_el(root, WBXML_PAGE_FOLDERHIERARCHY, "FolderSync"))
			n = push_key(keys, max, n, kid_text(root, "SyncKey"));
		break;
	case EAS_CMD_SYNC:
	case EAS_CMD_GETITEMESTIMATE:
		colls = kid(root, "Collections");
		for (struct wbxml_node *c = colls ? colls->first_child : NULL; c; c = c->next)
			n = push_key(keys, max, n, kid_text(c, "AirSync:SyncKey"));
		break;
	case EAS_CMD_PING:
		colls = kid(root, "Folders");
		for (struct wbxml_node *c = colls ? colls->first_child : NULL; c; c = c->next)
			n = push_key(keys, max, n, kid_text(c, "Id"));
		break;
	default:
		break;
	}
	wbxml_doc_free(&doc);
	return n;
}

/* Whether one of the request's keys is ours. */
int
eas_request_has_mailbox_key(enum eas_cmd cmd, const uint8_t *body, size_t len)
{
	char *keys[64];
	int n = eas_request_sync_keys(cmd, body, len, keys, 64), found = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (eas_mailbox_key_is_ours(keys[i]))
			found = 1;
		free(keys[i]);
	}
	return found;
}

/* FolderSync 9, Sync 3 per collection, GetItemEstimate 4 per collection, Ping 7. */
int
eas_start_over_body(enum eas_cmd cmd, const char *version, const uint8_t *req_body, size_t req_len,
                    struct eas_serve_out *out)
{
	struct wbxml_doc *rq = NULL, *doc;
	struct wbxml_node *colls = NULL, *r, *co;

	memset(out, 0, sizeof(*out));
	(void)version;
	switch (cmd) {
	case EAS_CMD_FOLDERSYNC:
		return status_only("FolderHierarchy:FolderSync", 9, out);
	case EAS_CMD_PING:
		return status_only("Ping:Ping", 7, out);
	case EAS_CMD_SYNC:
	case EAS_CMD_GETITEMESTIMATE:
		break;
	default:
		return -1;
	}
	if (req_body && req_len && wbxml_decode(req_body, req_len, NULL, &rq, NULL) == WBXML_OK)
		colls = kid(wbxml_doc_root(rq), "Collections");
	doc = wbxml_doc_new();
	if (cmd == EAS_CMD_SYNC) {
		r = wbxml_addn_root(doc, "AirSync:Sync");
		if (colls == NULL) {
			add_int(r, "Status", 3);
		} else {
			co = wbxml_addn(r, "Collections");
			for (struct wbxml_node *c = colls->first_child; c; c = c->next) {
				const char *id = kid_text(c, "CollectionId");
				struct wbxml_node *x = wbxml_addn(co, "Collection");
				wbxml_addn_text(x, "SyncKey", "0");
				wbxml_addn_text(x, "CollectionId", id ? id : "");
				add_int(x, "Status", 3);
			}
		}
	} else {
		r = wbxml_addn_root(doc, "GetItemEstimate:GetItemEstimate");
		for (struct wbxml_node *c = colls ? colls->first_child : NULL; c; c = c->next) {
			const char *id = kid_text(c, "CollectionId");
			struct wbxml_node *x = wbxml_addn(r, "Response");
			add_int(x, "Status", 4);
			wbxml_addn_text(wbxml_addn(x, "Collection"), "CollectionId", id ? id : "");
		}
		if (r->first_child == NULL)
			add_int(wbxml_addn(r, "Response"), "Status", 4);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* Ping Status 2 naming the changed folders. */
int
eas_ping_changed_body(const char *const *folder_ids, size_t n, struct eas_serve_out *out)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(doc, "Ping:Ping");

	memset(out, 0, sizeof(*out));
	add_int(r, "Status", 2);
	struct wbxml_node *f = wbxml_addn(r, "Folders");
	for (size_t i = 0; i < n; i++)
		wbxml_addn_text(f, "Folder", folder_ids[i]);
	return finish(&doc, out);
}
