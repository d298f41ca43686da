/*
 * commands.c: the ActiveSync command layer (commands.h) over a mailbox
 * backend (mailbox.h). No I/O: requests and answers are bytes, the sync
 * state goes through the caller's accessor.
 *
 * What each command answers (MS-ASCMD; "v" = protocol version). The table
 * with the spec sections, per version, is docs/internals/mailbox.md.
 *
 *   Command            Answer
 *   -----------------  ---------------------------------------------------------
 *   Provision          phase 1: Status 1, DeviceInformation Status 1 when sent,
 *                      Policy Status 1, a temporary PolicyKey, Data/EASProvisionDoc
 *                      imposing nothing, with the elements of the version (12.0
 *                      has fewer); phase 2: Status 1 and the final key (the
 *                      Policy Status acknowledged, 1-4, in provision_status);
 *                      RemoteWipe ack: Status 1; PolicyType other than
 *                      MS-EAS-Provisioning-WBXML: Policy Status 3 (unknown type)
 *   Settings           Status 1; DeviceInformation Set 1; UserInformation Get the
 *                      address (Accounts form from 14.1); Oof Get and Set: 7
 *                      (denied by policy); DevicePassword Set 1;
 *                      RightsManagementInformation Get: 1, no templates
 *   FolderSync         SyncKey 0: the backend's folders; our current key: the
 *                      changes (none: the key stays); our previous key: that
 *                      answer again; any other key: Status 9 (start over);
 *                      FolderSync 0 also announces versions and commands
 *   Sync               SyncKey 0: a new key, no items; our current key: the
 *                      client's Change (read flag) / Delete (a tombstone: not
 *                      added back) applied, then the backend's changes up to
 *                      WindowSize (0 or over 512: 512), MoreAvailable when more
 *                      remain; nothing changed: the key stays; our previous key:
 *                      answered again from the state before (a lost answer);
 *                      any other key: Status 3; unknown collection: 12; client
 *                      Add: Responses Add Status 6 (not storable: no retry);
 *                      Wait / HeartbeatInterval: held while nothing changes,
 *                      then HTTP 200 without a body; both: 4; out of range:
 *                      14 and Limit; empty body or Partial: the cached request
 *                      (13 when none)
 *   GetItemEstimate    per collection: 1 and the number of pending changes;
 *                      key 0 or none: 3 (not primed); other key: 4; unknown
 *                      collection: 2
 *   Ping               heartbeat outside [min, max]: Status 5 and the limit;
 *                      a folder the backend does not know, or (a backend with
 *                      cursors) folders added, gone, renamed or moved since
 *                      the device's last FolderSync: 7; pending changes:
 *                      2 and the folders; else HOLD for the heartbeat, then 1;
 *                      no parameters at all: 3
 *   ItemOperations     Fetch of an item by (CollectionId,) ServerId: Status 1 and
 *                      its properties with the preferred body and the client's
 *                      read flag; by FileReference (a backend with
 *                      fetch_part): 1, ContentType, Range, Total and Data
 *                      (base64; without a Range and past MBX_STREAM_CHUNK,
 *                      streamed when the caller may: mbx_stream), 15 no
 *                      such part, 8 a bad Range; other
 *                      Fetch: 6 (15 for an attachment);
 *                      EmptyFolderContents: 1 (the folder emptied for the
 *                      client; a backend with cursors empties it for good,
 *                      3 when it cannot), 6 for an unknown folder; Move: 3
 *   SendMail,          a backend with send: sent, HTTP 200 without a body
 *   SmartReply,          (SmartReply/SmartForward: the original added as
 *   SmartForward         compose.h says, then marked \Answered or $Forwarded;
 *                        SaveInSent: the copy appended to Sent); refused
 *                        (v >= 14.0, ComposeMail Status): no recipient 119,
 *                        a recipient refused 116, too large 122, try later
 *                        111, other refusals 120, unreadable MIME 107, no
 *                        such original 150, backend failure 110; v < 14.0:
 *                        HTTP 503 + Retry-After for "later", else 500 (400
 *                        for an empty body). The quarantine mailbox (no
 *                        send): v >= 14.0 Status 111 (ServerErrorRetryLater:
 *                        the phone keeps the message in its Outbox and sends
 *                        it again once allowed); v < 14.0: HTTP 503 and
 *                        Retry-After (the same, in HTTP)
 *   GetAttachment      a backend with fetch_part: the part AttachmentName (a
 *                      FileReference) names as the HTTP body with its type
 *                      (streamed past MBX_STREAM_CHUNK when the caller may),
 *                      500 when none; else HTTP 503 and Retry-After
 *   MoveItems          per Move: 3 (moved: a tombstone in the source, gone from
 *                      the destination at its next Sync); unknown source 1,
 *                      destination 2, the same folder 4; a cursor backend
 *                      with move: 3 and the DstMsgId the backend gives, the
 *                      source's cursor advanced past the move (no Delete
 *                      echoed), the destination's next Sync adding it
 *   Search             Store Mailbox: the backend's search (mailbox.h; the
 *                      generic path for a backend without it) of the Query's
 *                      folders (none: every mail folder; DeepTraversal: with
 *                      their subfolders), FreeText words, DateReceived
 *                      bounds; Results (Class, LongId, CollectionId,
 *                      Properties as ItemOperations Fetch) of the Range
 *                      (default 0-99, at most 100), Range, Total; none: one
 *                      empty Result. GAL: the backend's address list
 *                      (gal_search; none: empty): names and addresses
 *                      beginning with the Query, the Range, Total, pictures
 *                      (14.1) as asked. Store Status DocumentLibrary 3, a
 *                      bad request 2, too complex 8, backend failure 3
 *   FolderCreate       a backend with the folder ops (native mode): SyncKey
 *                      not the device's current FolderSync key 9; a mail
 *                      folder (Type 1 or 12, else 10) created under ParentId:
 *                      1, the new SyncKey and its ServerId; a folder of that
 *                      name there (ASCII case ignored) 2, no such parent 5,
 *                      a name empty, over 255 bytes, with a control character
 *                      or the server's hierarchy delimiter 10, failure 6.
 *                      Else Status 6 (server error)
 *   FolderUpdate       with the ops: renamed/moved, id kept: 1 and the new
 *                      SyncKey; a special folder (typed: Inbox, Drafts, Sent,
 *                      Deleted Items, Outbox) or the name taken 2 (MS-ASCMD's
 *                      code for both), no such folder 4, no such parent (or
 *                      the folder itself or below it) 5, 9, 10, 6 as above.
 *                      Else 3 for our folders, 4 otherwise
 *   FolderDelete       with the ops: the folder, its messages and the folders
 *                      below it deleted: 1 and the new SyncKey; special 3, no
 *                      such folder 4, 9, 10, 6 as above. Else 3 / 4 as
 *                      FolderUpdate. A change done is written into the
 *                      device's FolderSync state (not echoed at its next
 *                      FolderSync; the account's other devices see it)
 *   MeetingResponse    per Request: RequestId and Status 3 (mailbox error)
 *   ResolveRecipients  each To looked up in the address list (an address
 *                      exactly, else a name's beginning): Response Status 1
 *                      one, 2 several, 3 more than suggested, 4 none;
 *                      Certificates 7, Availability 163 (abqd has neither),
 *                      pictures as asked; no or over 100 To 5, failure 6
 *   ValidateCert       root Status 17 (unknown server error)
 *   Find               root Status 110 (common ServerError); v < 16.1: HTTP 501
 *   OPTIONS, 2.5 cmds  HTTP 400: not served here (the daemon proxies OPTIONS)
 *
 * Every answer carries MS-Server-ActiveSync. A request body that is not
 * WBXML, or whose root is not the command's, gets HTTP 400.
 *
 * Sync state, per (account, device, collection), is a few text lines:
 *   "key=abq-<gen>-<8 hex>", then "item=<server id> <version> <read 0|1>[ g]"
 *   for each item the client has (g: a tombstone), then "prev=<key>" and
 *   "pitem=" lines: the key before and the items the client had then.
 *   FolderSync keeps the same for folders (the version a hash of the
 *   folder's name, parent and type); Ping keeps "hb=<seconds>" and
 *   "folder=<id>" lines (a Ping without a body repeats them); "sync" keeps
 *   the last Sync request for the empty and Partial ones. The state is
 *   written before the answer is returned: a phone whose answer is lost
 *   retries with the old key and gets that answer again. FolderSync with
 *   SyncKey 0 drops every state of the device first.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eas/provision.h"
#include "eas/status.h"
#include "eas/wbxml.h"
#include "lib/b64.h"
#include "lib/log.h"
#include "lib/mime.h"
#include "lib/util.h"
#include "mailbox/commands.h"
#include "mime/compose.h"
#include "mime/msgconv.h"

#define CT_WBXML        "application/vnd.ms-sync.wbxml"
#define PROVISION_TYPE  "MS-EAS-Provisioning-WBXML"
#define DEFAULT_WINDOW  100
#define MAX_WINDOW      512
#define STATE_MAX_ITEMS 100000
#define DEFAULT_HB_MIN  60
#define DEFAULT_HB_MAX  3540
/* Collections in one Sync (beyond: Status 15 and the Limit). */
#define MAX_SYNC_COLLECTIONS 300
/* MS-Server-ActiveSync of the mailbox's answers. */
#define EAS_MAILBOX_SERVER_VERSION "16.1"
/* The commands a FolderSync 0 answer announces (Find added at 16.1). */
#define EAS_MAILBOX_COMMANDS                                                                       \
	"Sync,SendMail,SmartForward,SmartReply,GetAttachment,FolderSync,FolderCreate,"             \
	"FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,"     \
	"Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert"

/* ---- sync state ------------------------------------------------------- */

struct st_item {
	char id[MBX_ID_MAX + 1];
	uint64_t version;
	bool read;
	/*
	 * Deleted by the client: a tombstone, so the item is not added back
	 * while it stays as it is; it goes when the item changes or vanishes.
	 */
	bool gone;
};

/* A list of items the client has. */
struct st_items {
	struct st_item *v;
	size_t n, cap;
};

/*
 * What the client has of one collection, as the state blob says: the
 * current key and items, and the key before it with the items the client had
 * then, so that a request repeated with that key (its answer was lost) is
 * answered again instead of being refused.
 */
struct sstate {
	char key[MBX_ID_MAX + 1];
	struct st_items items;
	char prev_key[MBX_ID_MAX + 1];
	struct st_items prev;
	/* A backend with change cursors (mailbox.h): theirs instead of items. */
	char cur[MBX_CURSOR_MAX + 1];
	char pcur[MBX_CURSOR_MAX + 1];
	int hb;         /* ping */
	char **folders; /* ping */
	size_t n_folders;
	/* Supported of the folder's first Sync (contacts, calendars, tasks): page << 8 | token */
	bool sup_given;
	uint16_t sup[MBX_PIM_SUPPORTED_MAX];
	size_t n_sup;
	/*
	 * Calendars over a cursor backend: the FilterType in force (ft_given
	 * false: none recorded), and the events the device was not sent because
	 * they ended before its window (it does not have them), for the key
	 * and the previous one, so that a later change that brings one into the
	 * window is an Add, and its removal is not told.
	 */
	bool ft_given;
	int ft;
	struct st_items skip, pskip;
};

/* Free a list's array and empty it. */
static void
items_clear(struct st_items *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The entry with this id, or NULL. */
static struct st_item *
items_find(struct st_items *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].id, id) == 0)
			return &l->v[i];
	}
	return NULL;
}

/* Append an entry (ids longer than MBX_ID_MAX, or past STATE_MAX_ITEMS, are refused). */
static struct st_item *
items_add(struct st_items *l, const char *id, uint64_t version, bool read)
{
	if (strlen(id) > MBX_ID_MAX || l->n >= STATE_MAX_ITEMS)
		return NULL;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct st_item *it = &l->v[l->n++];
	memset(it, 0, sizeof(*it));
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->version = version;
	it->read = read;
	return it;
}

/* Remove an entry by index. */
static void
items_remove(struct st_items *l, size_t i)
{
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

/* dst becomes a copy of src (dst's old array is freed). */
static void
items_copy(struct st_items *dst, const struct st_items *src)
{
	items_clear(dst);
	if (src->n == 0)
		return;
	dst->v = xcalloc(src->n, sizeof(*dst->v));
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = dst->cap = src->n;
}

/* Free a state's arrays and zero it. */
static void
sstate_clear(struct sstate *s)
{
	items_clear(&s->items);
	items_clear(&s->prev);
	items_clear(&s->skip);
	items_clear(&s->pskip);
	for (size_t i = 0; i < s->n_folders; i++)
		free(s->folders[i]);
	free(s->folders);
	memset(s, 0, sizeof(*s));
}

/* Parse "<id> <version> <read> [g]" into list; 0 or -1. */
static int
parse_item(const char *text, struct st_items *l)
{
	char id[MBX_ID_MAX + 1], flag[2] = "";
	uint64_t v;
	int rd, n = sscanf(text, "%64s %" SCNu64 " %d %1s", id, &v, &rd, flag);
	struct st_item *it;

	if (n < 3 || (it = items_add(l, id, v, rd != 0)) == NULL)
		return -1;
	it->gone = n == 4 && flag[0] == 'g';
	return 0;
}

/* Copy a key line's value; 0 or -1 when too long. */
static int
parse_key(const char *text, char key[MBX_ID_MAX + 1])
{
	if (strlen(text) > MBX_ID_MAX)
		return -1;
	snprintf(key, MBX_ID_MAX + 1, "%s", text);
	return 0;
}

/*
 * Parse a state blob. Unknown lines are skipped (a newer abqd may add some);
 * a malformed line makes the whole state unusable (returns -1), which the
 * callers treat as "no state": the phone is told to start over.
 */
static int
sstate_parse(const char *blob, size_t len, struct sstate *s)
{
	const char *p = blob, *end = blob + len;

	memset(s, 0, sizeof(*s));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[MBX_CURSOR_MAX + 8];

		if (n >= sizeof(line))
			goto bad;
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		if (strncmp(line, "key=", 4) == 0) {
			if (parse_key(line + 4, s->key) < 0)
				goto bad;
		} else if (strncmp(line, "prev=", 5) == 0) {
			if (parse_key(line + 5, s->prev_key) < 0)
				goto bad;
		} else if (strncmp(line, "item=", 5) == 0) {
			if (parse_item(line + 5, &s->items) < 0)
				goto bad;
		} else if (strncmp(line, "cur=", 4) == 0) {
			if (strlen(line + 4) > MBX_CURSOR_MAX)
				goto bad;
			snprintf(s->cur, sizeof(s->cur), "%s", line + 4);
		} else if (strncmp(line, "pcur=", 5) == 0) {
			if (strlen(line + 5) > MBX_CURSOR_MAX)
				goto bad;
			snprintf(s->pcur, sizeof(s->pcur), "%s", line + 5);
		} else if (strncmp(line, "pitem=", 6) == 0) {
			if (parse_item(line + 6, &s->prev) < 0)
				goto bad;
		} else if (strncmp(line, "skip=", 5) == 0) {
			if (parse_item(line + 5, &s->skip) < 0)
				goto bad;
		} else if (strncmp(line, "pskip=", 6) == 0) {
			if (parse_item(line + 6, &s->pskip) < 0)
				goto bad;
		} else if (strncmp(line, "ft=", 3) == 0) {
			long long ft;
			const char *e;
			if (parse_int(line + 3, 0, 8, &ft, &e) < 0)
				goto bad;
			s->ft_given = true;
			s->ft = (int)ft;
		} else if (strncmp(line, "hb=", 3) == 0) {
			long long hb;
			const char *e;
			if (parse_int(line + 3, 0, 1000000, &hb, &e) < 0)
				goto bad;
			s->hb = (int)hb;
		} else if (strncmp(line, "sup=", 4) == 0) {
			s->sup_given = true;
			for (char *q = line + 4, *e2; *q != '\0'; q = *e2 == ',' ? e2 + 1 : e2) {
				unsigned long v = strtoul(q, &e2, 16);
				if (e2 == q || v > 0xFFFF || (*e2 != ',' && *e2 != '\0') ||
				    s->n_sup >= MBX_PIM_SUPPORTED_MAX)
					goto bad;
				s->sup[s->n_sup++] = (uint16_t)v;
			}
		} else if (strncmp(line, "folder=", 7) == 0) {
			if (s->n_folders >= MBX_PING_FOLDERS_MAX)
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

/* Append a list's item lines, each named tag. */
static void
format_items(struct sbuf *b, const char *tag, const struct st_items *l)
{
	for (size_t i = 0; i < l->n; i++)
		sbuf_printf(b, "%s=%s %" PRIu64 " %d%s\n", tag, l->v[i].id, l->v[i].version,
		            l->v[i].read ? 1 : 0, l->v[i].gone ? " g" : "");
}

/* Serialise a state into a new string. */
static char *
sstate_format(const struct sstate *s)
{
	struct sbuf b = {0};

	sbuf_printf(&b, "v=1\n");
	if (s->key[0])
		sbuf_printf(&b, "key=%s\n", s->key);
	if (s->cur[0])
		sbuf_printf(&b, "cur=%s\n", s->cur);
	format_items(&b, "item", &s->items);
	if (s->ft_given)
		sbuf_printf(&b, "ft=%d\n", s->ft);
	format_items(&b, "skip", &s->skip);
	if (s->prev_key[0]) {
		sbuf_printf(&b, "prev=%s\n", s->prev_key);
		if (s->pcur[0])
			sbuf_printf(&b, "pcur=%s\n", s->pcur);
		format_items(&b, "pitem", &s->prev);
		format_items(&b, "pskip", &s->pskip);
	}
	if (s->hb > 0)
		sbuf_printf(&b, "hb=%d\n", s->hb);
	for (size_t i = 0; i < s->n_folders; i++)
		sbuf_printf(&b, "folder=%s\n", s->folders[i]);
	if (s->sup_given) {
		sbuf_add(&b, "sup=");
		for (size_t i = 0; i < s->n_sup; i++)
			sbuf_printf(&b, "%s%x", i ? "," : "", s->sup[i]);
		sbuf_add(&b, "\n");
	}
	return b.p;
}

/* -1, or MBX_PENDING when rv is: a failure as the caller passes it on. */
static int
pend_or_fail(int rv)
{
	return rv == MBX_PENDING ? MBX_PENDING : -1;
}

/* Read a collection's blob: 1 (*blob_r malloc'd), 0 none, -1 failure, MBX_PENDING. */
static int
blob_load(const struct mbx_serve_in *in, const char *coll, char **blob_r, size_t *len_r)
{
	int r;

	*blob_r = NULL;
	*len_r = 0;
	if (in->state.get == NULL)
		return 0;
	r = in->state.get(in->state.arg, in->account, in->device_id, coll, blob_r, len_r);
	if (r <= 0) {
		free(*blob_r);
		*blob_r = NULL;
		return r < 0 ? pend_or_fail(r) : 0;
	}
	return 1;
}

/* Write a collection's blob (a string): 0 or -1. */
static int
blob_store(const struct mbx_serve_in *in, const char *coll, const char *blob)
{
	if (in->state.put == NULL)
		return 0;
	return in->state.put(in->state.arg, in->account, in->device_id, coll, blob, strlen(blob)) <
	               0
	           ? -1
	           : 0;
}

/*
 * Read a collection's state: 1 found (and parsed), 0 none or unreadable, -1
 * failure, MBX_PENDING.
 */
static int
state_load(const struct mbx_serve_in *in, const char *coll, struct sstate *s)
{
	char *blob;
	size_t len;
	int r = blob_load(in, coll, &blob, &len);

	memset(s, 0, sizeof(*s));
	if (r <= 0)
		return r;
	r = sstate_parse(blob, len, s) == 0 ? 1 : 0;
	free(blob);
	return r;
}

/* Write a collection's state: 0 or -1. */
static int
state_store(const struct mbx_serve_in *in, const char *coll, const struct sstate *s)
{
	char *blob = sstate_format(s);
	int r = blob_store(in, coll, blob);

	free(blob);
	return r;
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
new_key(const struct mbx_serve_in *in, const char *coll, const char *old, char key[MBX_ID_MAX + 1])
{
	unsigned long gen = 0;
	char num[32];

	if (old && mbx_key_is_ours(old))
		gen = strtoul(old + strlen(MBX_KEY_PREFIX), NULL, 10);
	gen++;
	snprintf(num, sizeof(num), "%lu:%" PRId64, gen, in->now);
	uint64_t h =
	    fnv(fnv(fnv(fnv(0xcbf29ce484222325ULL, in->account), in->device_id), coll), num);
	snprintf(key, MBX_ID_MAX + 1, MBX_KEY_PREFIX "%lu-%08" PRIx32, gen,
	         (uint32_t)(h ^ (h >> 32)));
}

/* Whether a key is one of ours. */
bool
mbx_key_is_ours(const char *key)
{
	return key != NULL && strncmp(key, MBX_KEY_PREFIX, strlen(MBX_KEY_PREFIX)) == 0;
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
finish(struct wbxml_doc **doc, struct mbx_serve_out *out)
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
status_only(const char *root, int status, struct mbx_serve_out *out)
{
	struct wbxml_doc *doc = wbxml_doc_new();

	add_int(wbxml_addn_root(doc, root), "Status", status);
	return finish(&doc, out);
}

/* An answer without a body. */
static int
http_only(int status, const char *detail, struct mbx_serve_out *out)
{
	out->http_status = status;
	out->detail = detail;
	return 0;
}

/*
 * A command that could not go on: rc MBX_PENDING (a backend op or a state
 * read is not here yet) marks out pending and writes nothing else, for
 * mbx_serve to return; any other failure is HTTP 500 with detail.
 */
static int
failed(int rc, const char *detail, struct mbx_serve_out *out)
{
	if (rc == MBX_PENDING) {
		out->pending = true;
		return 0;
	}
	return http_only(500, detail, out);
}

/*
 * Whether the backend has folder: 1, 0, MBX_PENDING, or -1 when its folders
 * cannot be listed now (the IMAP server down or every connection busy past
 * the pool's wait). A failure is never "no such folder": that answer (Ping
 * Status 7, Sync Status 12) sends the phone to FolderSync, and when the
 * server is only busy, thousands of phones at once.
 */
static int
folder_known(const struct mbx_serve_in *in, const char *folder)
{
	const struct mbx_folder *f;
	int rv = mbx_folder_lookup(in->backend, folder, &f);

	return rv < 0 ? pend_or_fail(rv) : rv == 1;
}

/* Decode the request body and check its root; NULL (and HTTP 400 in out) otherwise. */
static struct wbxml_doc *
decode_root(const struct mbx_serve_in *in, unsigned page, const char *root,
            struct mbx_serve_out *out, struct wbxml_node **root_r)
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

/* A body the client asks for: type 1 (plain), 2 (HTML) or 4 (MIME). */
struct body_pref {
	int type;
	long long truncation; /* 0: none */
	bool all_or_none;
	int preview; /* AirSyncBase:Preview characters (14.0+), 0: none */
};

/* BodyPreferences kept of one request (more are ignored). */
#define MAX_BODY_PREFS 4

/* What a request's Options ask of the bodies. */
struct body_prefs {
	struct body_pref p[MAX_BODY_PREFS]; /* in the client's order */
	size_t n;
	int mime_support;    /* MIMESupport: 0 never, 1 S/MIME only, 2 always */
	int mime_truncation; /* MIMETruncation code 0-8; -1: none */
	/*
	 * ItemOperations Fetch that may stream: a large item's whole MIME (type
	 * 4, no truncation) is then a streamed answer's mark, and *streamed set.
	 */
	bool *streamed;
};

/* The Data text a streamed answer's part takes the place of (split out by stream_split). */
#define STREAM_MARK "abq-stream-6b1d0c2e9f"

/*
 * The BodyPreferences of opts (types 1 to 4; Preview 0-255), MIMESupport and
 * MIMETruncation (MS-ASAIRS 2.2.2.10, MS-ASCMD 2.2.3.101, 2.2.3.102).
 */
static struct body_prefs
read_prefs(const struct wbxml_node *opts)
{
	struct body_prefs bp = {.mime_truncation = -1};

	bp.mime_support = (int)kid_int(opts, "AirSync:MIMESupport", 0, 2, 0);
	bp.mime_truncation = (int)kid_int(opts, "AirSync:MIMETruncation", 0, 8, -1);
	for (const struct wbxml_node *c = opts ? opts->first_child : NULL;
	     c && bp.n < MAX_BODY_PREFS; c = c->next) {
		if (!is_el(c, WBXML_PAGE_AIRSYNCBASE, "BodyPreference"))
			continue;
		struct body_pref *p = &bp.p[bp.n];
		p->type = (int)kid_int(c, "AirSyncBase:Type", 1, 4, 0);
		if (p->type == 0)
			continue;
		p->truncation = kid_int(c, "AirSyncBase:TruncationSize", 0, 0xFFFFFFFFLL, 0);
		p->all_or_none = kid_int(c, "AirSyncBase:AllOrNone", 0, 1, 0) == 1;
		p->preview = (int)kid_int(c, "AirSyncBase:Preview", 0, 255, 0);
		bp.n++;
	}
	return bp;
}

/*
 * The first BodyPreference the item can be given in: 1 and 2 always, 4
 * (the whole message as MIME) when MIMESupport says so for it (2: every
 * message; 1: S/MIME ones only, smime), 3 (RTF) never. Without one, plain
 * text in full. A type-4 preference without a TruncationSize takes
 * MIMETruncation's (MS-ASCMD 2.2.3.102: 0 all, 1 4 KiB ... 7 100 KiB, 8 none).
 */
static struct body_pref
choose_body(const struct body_prefs *bp, bool smime)
{
	static const long long mime_trunc[] = {0, 4096, 5120, 7168, 10240, 20480, 51200, 102400};

	for (size_t i = 0; i < bp->n; i++) {
		struct body_pref p = bp->p[i];
		if (p.type == 4 && !(bp->mime_support == 2 || (bp->mime_support == 1 && smime)))
			continue;
		if (p.type != 1 && p.type != 2 && p.type != 4)
			continue;
		if (p.type == 4 && p.truncation == 0 && bp->mime_truncation >= 0 &&
		    bp->mime_truncation < 8) {
			/* 0 is "truncate everything": no data, only the size */
			p.truncation = bp->mime_truncation ? mime_trunc[bp->mime_truncation] : 1;
			p.all_or_none = p.all_or_none || bp->mime_truncation == 0;
		}
		return p;
	}
	return (struct body_pref){1, 0, false, 0};
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
 * The item as an RFC 5322 message (multipart/alternative of its plain and
 * HTML bodies), the same bytes at every fetch (the Message-ID and the
 * boundary come from the server id); NULL when its addresses cannot head a
 * message.
 */
static char *
email_mime(const struct mbx_email *e, const char *id)
{
	const char *err;
	struct mime_message m = {
	    .from = e->from,
	    .to = e->to,
	    .subject = e->subject,
	    .body_plain = e->body_plain ? e->body_plain : "",
	    .body_html = e->body_html,
	    .date = e->date_received ? e->date_received : 1,
	    .message_id = id,
	};

	if (e->from == NULL || e->to == NULL)
		return NULL;
	return mime_render(&m, &err);
}

/*
 * AirSyncBase:Body of an e-mail in the preferred type, truncated to the
 * preference on a UTF-8 boundary (nothing when AllOrNone and it does not
 * fit). A MIME body that cannot be rendered falls back to plain text.
 */
static void
add_body(struct wbxml_node *parent, const struct mbx_email *e, const char *id, struct body_pref bp)
{
	char *mime = bp.type == 4 ? email_mime(e, id) : NULL;
	const char *text = mime                                   ? mime
	                   : bp.type == 2 && e->body_html != NULL ? e->body_html
	                                                          : e->body_plain;
	int type = mime ? 4 : bp.type == 2 && e->body_html ? 2 : 1;
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
	if (!(truncated && bp.all_or_none)) {
		char *data = xstrndup(text ? text : "", n);
		wbxml_addn_text(b, "AirSyncBase:Data", data);
		free(data);
	}
	free(mime);
}

/*
 * Email:Flag: flagged for follow-up (Status 2 and its FlagType), or empty
 * (MS-ASEMAIL 2.2.2.27: an empty Flag clears it).
 */
static void
add_flag(struct wbxml_node *parent, bool flagged)
{
	struct wbxml_node *f = wbxml_addn(parent, "Email:Flag");

	if (flagged) {
		add_int(f, "Email:Status", 2);
		wbxml_addn_text(f, "Email:FlagType", "Flag for follow up");
	}
}

/*
 * A FileReference (MS-ASAIRS 2.2.2.24): "<folder>:<item>:<section>", the
 * folder and item ids with every byte outside [A-Za-z0-9._-] as %XX (so
 * that ':' splits and the name survives a GetAttachment query string), the
 * IMAP section as it is (digits and dots). At most MBX_FILEREF_MAX bytes:
 * a longer one is not made (the attachment is then not listed). Returns 0,
 * or -1.
 */
#define MBX_FILEREF_MAX 255

/* Append s escaped as in a FileReference. */
static void
fileref_escape(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-')
			sbuf_addn(b, s, 1);
		else
			sbuf_printf(b, "%%%02X", c);
	}
}

/* The FileReference of folder's item's section into out: 0, or -1 when too long. */
static int
fileref_format(const char *folder, const char *item, const char *section,
               char out[MBX_FILEREF_MAX + 1])
{
	struct sbuf b = {0};
	int rv = -1;

	fileref_escape(&b, folder);
	sbuf_addn(&b, ":", 1);
	fileref_escape(&b, item);
	sbuf_printf(&b, ":%s", section);
	if (b.len <= MBX_FILEREF_MAX) {
		memcpy(out, b.p, b.len + 1);
		rv = 0;
	}
	free(b.p);
	return rv;
}

/* Unescape one FileReference field of n bytes into out (MBX_ID_MAX + 1): 0 or -1. */
static int
fileref_field(const char *p, size_t n, char out[MBX_ID_MAX + 1])
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		char hex[3];
		if (k >= MBX_ID_MAX)
			return -1;
		if (p[i] != '%') {
			out[k++] = p[i];
			continue;
		}
		if (i + 2 >= n)
			return -1;
		hex[0] = p[i + 1];
		hex[1] = p[i + 2];
		hex[2] = '\0';
		if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) ||
		    sscanf(hex, "%2x", &v) != 1 || v == 0)
			return -1;
		out[k++] = (char)v;
		i += 2;
	}
	out[k] = '\0';
	return k > 0 ? 0 : -1;
}

/*
 * Read a FileReference back into folder, item and section (each
 * MBX_ID_MAX + 1 bytes): 0, or -1 when it is none of ours.
 */
static int
fileref_parse(const char *ref, char *folder, char *item, char *section)
{
	const char *a = ref ? strchr(ref, ':') : NULL, *b2 = a ? strchr(a + 1, ':') : NULL;

	if (a == NULL || b2 == NULL || strlen(ref) > MBX_FILEREF_MAX ||
	    fileref_field(ref, (size_t)(a - ref), folder) < 0 ||
	    fileref_field(a + 1, (size_t)(b2 - a - 1), item) < 0)
		return -1;
	const char *sec = b2 + 1;
	size_t n = strlen(sec);
	if (n == 0 || n > MBX_ID_MAX || strspn(sec, "0123456789.") != n || sec[0] == '.' ||
	    sec[n - 1] == '.' || strstr(sec, "..") != NULL)
		return -1;
	memcpy(section, sec, n + 1);
	return 0;
}

/* AirSyncBase:Attachments of a parsed message (none: nothing added). */
static void
add_attachments(struct wbxml_node *parent, const struct msgconv_msg *m, const char *folder,
                const char *id)
{
	struct wbxml_node *atts = NULL;
	char ref[MBX_FILEREF_MAX + 1];

	for (size_t i = 0; i < m->n_att; i++) {
		const struct msgconv_attachment *a = &m->att[i];
		if (fileref_format(folder, id, a->section, ref) < 0)
			continue;
		if (atts == NULL)
			atts = wbxml_addn(parent, "AirSyncBase:Attachments");
		struct wbxml_node *x = wbxml_addn(atts, "AirSyncBase:Attachment");
		wbxml_addn_text(x, "AirSyncBase:DisplayName", a->name);
		wbxml_addn_text(x, "AirSyncBase:FileReference", ref);
		/* 5: an embedded message (MS-ASAIRS 2.2.2.31.2), else 1: normal */
		add_int(x, "AirSyncBase:Method",
		        strcmp(a->content_type, "message/rfc822") == 0 ? 5 : 1);
		add_int(x, "AirSyncBase:EstimatedDataSize", (long long)a->size);
		if (a->content_id != NULL)
			wbxml_addn_text(x, "AirSyncBase:ContentId", a->content_id);
		if (a->is_inline)
			add_int(x, "AirSyncBase:IsInline", 1);
	}
}

/*
 * What the body of an outlined item (a large message, mbx_email.outline)
 * lacks: a text body whose parts the outline holds cut is Truncated, its
 * EstimatedDataSize the parts' size; the MIME is the message's first bytes
 * (raw), Truncated, EstimatedDataSize the message's size. AllOrNone then
 * withholds the data.
 */
static void
outline_body(const struct mbx_email *e, const struct msgconv_msg *m, bool all_or_none,
             struct msgconv_body *body)
{
	uint64_t real = 0;
	bool cut = false;

	if (body->type == MSGCONV_BODY_MIME) {
		real = e->size;
		cut = e->raw_len < e->size;
	} else {
		char kind = body->type == MSGCONV_BODY_HTML ? (m->html ? 'h' : 'p')
		                                            : (m->plain ? 'p' : 'h');
		for (size_t i = 0; i < e->n_parts; i++) {
			if (e->parts[i].body == kind) {
				real += e->parts[i].size;
				cut = cut || e->parts[i].cut;
			}
		}
	}
	if (!cut)
		return;
	body->truncated = true;
	if (real > body->estimated_size)
		body->estimated_size = (size_t)real;
	if (all_or_none) {
		free(body->data);
		body->data = NULL;
		body->len = 0;
	}
}

/*
 * AirSyncBase:Body of a parsed message per the client's preferences (the
 * first it can be given in), with Preview at 14.0+ when asked; e: the item
 * when it is larger than its bytes here (outline_body), else NULL.
 */
static void
add_msg_body(struct wbxml_node *parent, int v, const struct msgconv_msg *m,
             const struct mbx_email *e, const struct body_prefs *prefs)
{
	bool smime = strncmp(m->message_class, "IPM.Note.SMIME", 14) == 0;
	struct body_pref bp = choose_body(prefs, smime);
	struct msgconv_body body;
	const char *err;

	if (bp.type == 4 && m->mime == NULL)
		bp = (struct body_pref){1, bp.truncation, bp.all_or_none, bp.preview};
	struct wbxml_node *b = wbxml_addn(parent, "AirSyncBase:Body");
	if (msgconv_body(m, bp.type, (size_t)bp.truncation, bp.all_or_none, &body, &err) < 0) {
		add_int(b, "AirSyncBase:Type", 1);
		add_int(b, "AirSyncBase:EstimatedDataSize", 0);
		wbxml_addn_text(b, "AirSyncBase:Data", "");
		return;
	}
	if (e != NULL && body.type == MSGCONV_BODY_MIME && bp.truncation == 0 &&
	    e->raw_len < e->size && prefs->streamed != NULL) {
		/* the whole message, streamed in place of the mark (itemops_fetch) */
		msgconv_body_clear(&body);
		add_int(b, "AirSyncBase:Type", MSGCONV_BODY_MIME);
		add_int(b, "AirSyncBase:EstimatedDataSize", (long long)e->size);
		wbxml_addn_text(b, "AirSyncBase:Data", STREAM_MARK);
		*prefs->streamed = true;
		return;
	}
	if (e != NULL)
		outline_body(e, m, bp.all_or_none, &body);
	add_int(b, "AirSyncBase:Type", body.type);
	add_int(b, "AirSyncBase:EstimatedDataSize", (long long)body.estimated_size);
	if (body.truncated)
		add_int(b, "AirSyncBase:Truncated", 1);
	if (body.data != NULL)
		wbxml_addn_text(b, "AirSyncBase:Data", body.data);
	if (v >= 140 && bp.preview > 0) {
		char *pv = msgconv_preview(m, (size_t)bp.preview);
		wbxml_addn_text(b, "AirSyncBase:Preview", pv);
		free(pv);
	}
	msgconv_body_clear(&body);
}

/*
 * Email:MessageClass and Email:ContentClass of a parsed message (NULL: one
 * msgconv could not read); a meeting request's or cancellation's
 * invitation then as Email:MeetingRequest (the codec's meeting), or, when
 * the codec cannot read it, the mail as a plain one (without a codec the
 * class stays as msgconv named it).
 */
static void
add_message_class(const struct mbx_serve_in *in, struct wbxml_node *parent, int v,
                  const struct msgconv_msg *m)
{
	const char *cls = m ? m->message_class : "IPM.Note";
	const char *content = m ? m->content_class : "urn:content-classes:message";
	struct wbxml_node *cn = wbxml_addn_text(parent, "Email:MessageClass", cls);

	if (m != NULL && m->calendar != NULL && strncmp(cls, "IPM.Schedule.Meeting.", 21) == 0 &&
	    in->pim != NULL && in->pim->meeting != NULL) {
		struct mbx_pim_opts o = {.version = v, .body_type = 1, .email = in->email};
		const char *err;

		if (o.email == NULL && in->account != NULL && strchr(in->account, '@') != NULL)
			o.email = in->account;
		if (in->pim->meeting(m->calendar, m->calendar_len, parent, &o, &err) < 0) {
			wbxml_set_text(cn, "IPM.Note", 8);
			content = "urn:content-classes:message";
		}
	}
	wbxml_addn_text(parent, "Email:ContentClass", content);
}

/*
 * The e-mail properties of a real item (raw: the mail server's message),
 * read by msgconv: MS-ASEMAIL's fields, the attachments with their
 * FileReferences, the body per the preferences. A large message with an
 * outline is read from it: its attachments' sizes from the outline's
 * parts, its MIME the raw bytes (outline_body). A message msgconv cannot
 * read is shown with what is known (its date, read and flag states). A
 * message the backend parsed ahead (off the loop, e->parsed) is not parsed
 * again.
 */
static void
add_email_raw(const struct mbx_serve_in *in, struct wbxml_node *parent, int v, const char *folder,
              const struct mbx_email *e, const char *id, const struct body_prefs *prefs)
{
	struct msgconv_opts o = {.date_fallback = e->internal_date, .no_mime = e->outline != NULL};
	struct msgconv_msg m;
	const char *err;
	char date[40];
	bool ok;

	if (e->parsed != NULL) {
		/* the backend's parse, borrowed: its attachment list copied to be patched */
		m = *e->parsed;
		m.mime = e->raw; /* type 4's bytes: not copied by the parse */
		m.mime_len = e->raw_len;
		ok = true;
		if (m.n_att > 0) {
			m.att = xmalloc(m.n_att * sizeof(*m.att));
			memcpy(m.att, e->parsed->att, m.n_att * sizeof(*m.att));
		}
	} else
		ok = e->outline != NULL
		         ? msgconv_parse(e->outline, e->outline_len, &o, &m, &err) == 0
		         : msgconv_parse(e->raw, e->raw_len, &o, &m, &err) == 0;

	if (ok && e->outline != NULL) {
		for (size_t i = 0; i < m.n_att; i++) {
			for (size_t k = 0; k < e->n_parts; k++) {
				if (strcmp(m.att[i].section, e->parts[k].section) == 0)
					m.att[i].size = (size_t)e->parts[k].size;
			}
		}
		m.mime = e->raw; /* borrowed: given back before the clear */
		m.mime_len = e->raw_len;
	}

	eas_date(ok ? m.date_received : e->internal_date, date);
	wbxml_addn_text(parent, "Email:To", ok ? m.to : "");
	if (ok && *m.cc)
		wbxml_addn_text(parent, "Email:Cc", m.cc);
	wbxml_addn_text(parent, "Email:From", ok ? m.from : "");
	wbxml_addn_text(parent, "Email:Subject", ok ? m.subject : "");
	if (ok && *m.reply_to)
		wbxml_addn_text(parent, "Email:ReplyTo", m.reply_to);
	wbxml_addn_text(parent, "Email:DateReceived", date);
	wbxml_addn_text(parent, "Email:DisplayTo", ok ? m.display_to : "");
	wbxml_addn_text(parent, "Email:ThreadTopic", ok && m.thread_topic ? m.thread_topic : "");
	add_int(parent, "Email:Importance", ok ? m.importance : MSGCONV_IMPORTANCE_NORMAL);
	add_int(parent, "Email:Read", e->read ? 1 : 0);
	if (e->flagged)
		add_flag(parent, true);
	if (ok) {
		add_attachments(parent, &m, folder, id);
		add_msg_body(parent, v, &m, e->outline != NULL || e->raw_len < e->size ? e : NULL,
		             prefs);
	} else {
		struct wbxml_node *b = wbxml_addn(parent, "AirSyncBase:Body");
		add_int(b, "AirSyncBase:Type", 1);
		add_int(b, "AirSyncBase:EstimatedDataSize", 0);
		wbxml_addn_text(b, "AirSyncBase:Data", "");
	}
	add_message_class(in, parent, v, ok ? &m : NULL);
	add_int(parent, "Email:InternetCPID", ok ? m.internet_cpid : 65001);
	add_int(parent, "AirSyncBase:NativeBodyType", ok ? m.native_body_type : 1);
	if (e->parsed != NULL) {
		free(m.att); /* the copy; the rest is the backend's */
		return;
	}
	if (e->outline != NULL)
		m.mime = NULL;
	msgconv_msg_clear(&m);
}

/* The protocol version of a request as a number (141 for 14.1). */
static int
version_of(const struct mbx_serve_in *in)
{
	return in->version ? eas_version_number(in->version) : 141;
}

/*
 * The e-mail properties (ApplicationData / Properties) of item id of
 * folder: a real item's from its message (add_email_raw), else from the
 * item's fields.
 */
static void
add_email(const struct mbx_serve_in *in, struct wbxml_node *parent, const char *folder,
          const struct mbx_email *e, const char *id, const struct body_prefs *prefs)
{
	char date[40];

	if (e->raw != NULL) {
		add_email_raw(in, parent, version_of(in), folder, e, id, prefs);
		return;
	}
	eas_date(e->date_received, date);
	wbxml_addn_text(parent, "Email:To", e->to ? e->to : "");
	wbxml_addn_text(parent, "Email:From", e->from ? e->from : "");
	wbxml_addn_text(parent, "Email:Subject", e->subject ? e->subject : "");
	wbxml_addn_text(parent, "Email:DateReceived", date);
	wbxml_addn_text(parent, "Email:DisplayTo", e->display_to ? e->display_to : "");
	add_int(parent, "Email:Importance", 1);
	add_int(parent, "Email:Read", e->read ? 1 : 0);
	if (e->flagged)
		add_flag(parent, true);
	add_body(parent, e, id, choose_body(prefs, false));
	wbxml_addn_text(parent, "Email:MessageClass",
	                e->message_class ? e->message_class : "IPM.Note");
	add_int(parent, "Email:InternetCPID", 65001);
	wbxml_addn_text(parent, "Email:ContentClass", "urn:content-classes:message");
	add_int(parent, "AirSyncBase:NativeBodyType", e->body_html ? 2 : 1);
}

/* ---- Provision -------------------------------------------------------- */

/* A policy key: the caller's, or one derived from the device (never 0). */
static uint32_t
policy_key(const struct mbx_serve_in *in, bool final)
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

/*
 * The EASProvisionDoc of in->policy, or of a policy that imposes nothing
 * (every key at its default: the quarantine mailbox never demands anything
 * of a phone), with the elements the version knows.
 */
static void
add_provision_doc(const struct mbx_serve_in *in, struct wbxml_node *data, int v)
{
	struct abq_prov_policy none;

	if (in->policy == NULL)
		abq_prov_defaults(&none);
	eas_policy_add_doc(data, in->policy != NULL ? in->policy : &none, v);
}

/*
 * The remote wipe part of Provision (MS-ASPROV 3.2.5.1.2). With a wipe
 * pending (in->wipe), the directive goes with every Provision answer;
 * a confirmation (RemoteWipe or AccountOnlyRemoteWipe with Status 1)
 * of the pending kind is reported through out->wipe_acked and answered
 * Status 1 alone; a failure (Status 2) gets Status 2 and the directive
 * again. Returns whether req is a confirmation (then the answer is complete).
 */
static bool
provision_wipe(const struct mbx_serve_in *in, int v, struct wbxml_node *req, struct wbxml_node *r,
               struct mbx_serve_out *out)
{
	bool account_only = in->wipe == 2 && v >= 161;
	const char *directive =
	    account_only ? "Provision:AccountOnlyRemoteWipe" : "Provision:RemoteWipe";
	struct wbxml_node *ack = kid(req, "RemoteWipe");

	if (ack == NULL && v >= 161)
		ack = kid(req, "AccountOnlyRemoteWipe");
	if (ack == NULL)
		return false;
	if (in->wipe == 0 || (in->wipe == 2 && !account_only)) {
		/* Nothing asked (or nothing this version can carry): nothing to confirm. */
		add_int(r, "Provision:Status", 2);
		return true;
	}
	const char *st = kid_text(ack, "Status");
	bool kind_ok =
	    strcmp(ack->name, account_only ? "AccountOnlyRemoteWipe" : "RemoteWipe") == 0;
	if (kind_ok && st != NULL && strcmp(st, "1") == 0) {
		out->wipe_acked = in->wipe;
		add_int(r, "Provision:Status", 1);
		return true;
	}
	add_int(r, "Provision:Status", 2);
	wbxml_addn(r, directive);
	return true;
}

/*
 * The Status a phone acknowledges a policy with (phase 2): 1 to 4, else 0
 * (missing, not a number, or a value MS-ASPROV does not define).
 */
static int
policy_status(const char *st)
{
	return st != NULL && st[0] >= '1' && st[0] <= '4' && st[1] == '\0' ? st[0] - '0' : 0;
}

/*
 * Provision: both phases (the Status phase 2 acknowledges the policy with is
 * reported in out->provision_status), the remote wipe directive and its
 * confirmation, DeviceInformation.
 */
static int
cmd_provision(const struct mbx_serve_in *in, int v, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *policy, *r, *p;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_PROVISION, "Provision", out, &req);
	struct wbxml_doc *doc;
	/* An account-only wipe cannot be said below 16.1: no directive, never a full wipe. */
	bool wiping = in->wipe == 1 || (in->wipe == 2 && v >= 161);
	char t[16];

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Provision:Provision");
	if (kid(req, "Settings:DeviceInformation") != NULL) {
		out->devinfo_seen = true;
		add_int(wbxml_addn(r, "Settings:DeviceInformation"), "Settings:Status", 1);
	}
	if (provision_wipe(in, v, req, r, out)) {
		wbxml_doc_free(&rq);
		return finish(&doc, out);
	}
	policy = wbxml_find(req, "Policies/Policy");
	if (policy == NULL && !wiping && kid(req, "Settings:DeviceInformation") == NULL) {
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
				add_provision_doc(in, wbxml_addn(p, "Provision:Data"), v);
			else
				out->provision_status = policy_status(kid_text(policy, "Status"));
		}
	}
	if (wiping)
		wbxml_addn(r, in->wipe == 2 ? "Provision:AccountOnlyRemoteWipe"
		                            : "Provision:RemoteWipe");
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* ---- Settings --------------------------------------------------------- */

/*
 * Settings: DeviceInformation Set, UserInformation Get, Oof (Get and Set
 * denied by policy: the out-of-office reply belongs to the real mailbox, and
 * 7 is what a quarantined device gets elsewhere too), DevicePassword,
 * RightsManagementInformation Get (no templates).
 */
static int
cmd_settings(const struct mbx_serve_in *in, int v, struct mbx_serve_out *out)
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
			add_int(wbxml_addn(r, "Oof"), "Status", 7); /* denied by policy */
		} else if (is_el(c, WBXML_PAGE_SETTINGS, "DevicePassword")) {
			add_int(wbxml_addn(r, "DevicePassword"), "Status", 1);
		} else if (is_el(c, WBXML_PAGE_SETTINGS, "RightsManagementInformation")) {
			struct wbxml_node *m = wbxml_addn(r, "RightsManagementInformation");
			add_int(m, "Status", 1);
			wbxml_addn(wbxml_addn(m, "Get"),
			           "RightsManagement:RightsManagementTemplates");
		}
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

static void announce(int v, struct mbx_serve_out *out);

/* ---- FolderSync ------------------------------------------------------- */

/* A folder's version: a hash of what the client shows of it. */
static uint64_t
folder_version(const struct mbx_folder *f)
{
	char t[16];

	snprintf(t, sizeof(t), "%d", f->type);
	return fnv(fnv(fnv(0xcbf29ce484222325ULL, f->parent_id ? f->parent_id : "0"), f->name), t);
}

/*
 * Which of a collection's lists a request's key names: the current one (0),
 * the previous one (1: the answer to it was lost, answer it again), or
 * neither (-1).
 */
static int
key_match(const struct sstate *st, const char *key)
{
	if (st->key[0] && strcmp(st->key, key) == 0)
		return 0;
	if (st->prev_key[0] && strcmp(st->prev_key, key) == 0)
		return 1;
	return -1;
}

/*
 * The state after an answer. replay: the request repeated the previous key,
 * so it gets the key it was given before, and the previous list stays.
 * changed: a new key, the current list becoming the previous one. Neither:
 * the key stays. Returns the key to answer with (in st->key).
 */
static void
state_advance(const struct mbx_serve_in *in, const char *coll, struct sstate *st,
              struct st_items *work, bool replay, bool changed)
{
	if (replay) {
		items_clear(&st->items);
		st->items = *work;
	} else if (changed) {
		char nk[MBX_ID_MAX + 1];
		new_key(in, coll, st->key, nk);
		snprintf(st->prev_key, sizeof(st->prev_key), "%s", st->key);
		items_clear(&st->prev);
		st->prev = st->items;
		st->items = *work;
		snprintf(st->key, sizeof(st->key), "%s", nk);
	} else {
		items_clear(&st->items);
		st->items = *work;
	}
	memset(work, 0, sizeof(*work));
}

/*
 * FolderSync: the hierarchy's changes since the client's key (all of it for
 * key 0), found by comparing the backend's folders with the folders the
 * state says the client has. The key changes only when something did; the
 * previous key is answered again (MS-ASCMD 3.1.5.9); any other key: 9.
 */
static int
cmd_foldersync(const struct mbx_serve_in *in, int v, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *r, *keyn, *ch, *count;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_FOLDERHIERARCHY, "FolderSync", out, &req);
	struct wbxml_doc *doc = NULL;
	struct sstate st;
	struct st_items work = {0};
	const struct mbx_folder *f = NULL;
	size_t nf = 0;
	const char *key, *err;
	bool initial, replay = false;
	long n = 0;
	int rc = -1;
	char t[32];

	if (rq == NULL)
		return 0;
	key = kid_text(req, "SyncKey");
	if (key == NULL) {
		wbxml_doc_free(&rq);
		return status_only("FolderHierarchy:FolderSync", 10, out); /* incorrect format */
	}
	initial = strcmp(key, "0") == 0;
	memset(&st, 0, sizeof(st));
	if (initial) {
		if (in->state.del &&
		    in->state.del(in->state.arg, in->account, in->device_id, NULL) < 0)
			goto fail;
	} else {
		int lr = state_load(in, MBX_STATE_FOLDERSYNC, &st), m;
		if (lr < 0) {
			rc = lr;
			goto fail;
		}
		if (lr == 0 || (m = key_match(&st, key)) < 0) {
			sstate_clear(&st);
			wbxml_doc_free(&rq);
			return status_only("FolderHierarchy:FolderSync", 9, out);
		}
		replay = m == 1;
		items_copy(&work, replay ? &st.prev : &st.items);
	}
	wbxml_doc_free(&rq);
	if ((rc = mbx_list_folders(in->backend, &f, &nf, &err)) < 0)
		goto fail;
	rc = -1;

	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "FolderHierarchy:FolderSync");
	add_int(r, "Status", 1);
	keyn = wbxml_addn_text(r, "SyncKey", "");
	ch = wbxml_addn(r, "Changes");
	count = wbxml_addn_text(ch, "Count", "0");
	for (size_t i = 0; i < nf; i++) {
		uint64_t fv = folder_version(&f[i]);
		struct st_item *have = items_find(&work, f[i].id);
		if (have != NULL && have->version == fv)
			continue;
		if (have == NULL && items_add(&work, f[i].id, fv, false) == NULL)
			continue; /* an id the state cannot keep: not shown */
		if (have != NULL)
			have->version = fv;
		struct wbxml_node *a = wbxml_addn(ch, have ? "Update" : "Add");
		wbxml_addn_text(a, "ServerId", f[i].id);
		wbxml_addn_text(a, "ParentId", f[i].parent_id ? f[i].parent_id : "0");
		wbxml_addn_text(a, "DisplayName", f[i].name);
		add_int(a, "Type", f[i].type);
		n++;
	}
	for (size_t j = 0; j < work.n;) {
		bool found = false;
		for (size_t i = 0; i < nf && !found; i++)
			found = strcmp(f[i].id, work.v[j].id) == 0;
		if (found) {
			j++;
			continue;
		}
		wbxml_addn_text(wbxml_addn(ch, "Delete"), "ServerId", work.v[j].id);
		items_remove(&work, j);
		n++;
	}
	snprintf(t, sizeof(t), "%ld", n);
	wbxml_set_text(count, t, strlen(t));
	state_advance(in, MBX_STATE_FOLDERSYNC, &st, &work, replay, initial || n > 0);
	if ((initial || n > 0 || replay) && state_store(in, MBX_STATE_FOLDERSYNC, &st) < 0)
		goto fail;
	wbxml_set_text(keyn, st.key, strlen(st.key));
	sstate_clear(&st);
	if (finish(&doc, out) == 0 && initial)
		announce(v, out); /* FolderSync 0 announces versions and commands */
	return 0;
fail:
	items_clear(&work);
	sstate_clear(&st);
	wbxml_doc_free(&doc);
	wbxml_doc_free(&rq);
	return failed(rc, "sync state or mailbox failure", out);
}

/* ---- Sync ------------------------------------------------------------- */

/* One pending change between the backend and what the client has. */
struct change {
	enum { CH_ADD, CH_CHANGE, CH_DELETE } kind;
	char id[MBX_ID_MAX + 1];
	uint64_t version;
};

/*
 * Compare the backend's items of folder with what the client has: Adds (not
 * there, or a tombstone of an older version), Changes (another version),
 * Deletes (gone from the backend). Tombstones of items the backend no longer
 * has are dropped from have. Returns the number of changes (*ch_r
 * malloc'd), or -1 or MBX_PENDING.
 */
static long
diff_items(const struct mbx_serve_in *in, const char *folder, struct st_items *have,
           struct change **ch_r)
{
	struct mbx_item_ref *items = NULL;
	size_t n = 0, nc = 0;
	const char *err;
	struct change *ch;
	int rv;

	*ch_r = NULL;
	if ((rv = mbx_list_items(in->backend, folder, &items, &n, &err)) < 0)
		return pend_or_fail(rv);
	ch = xcalloc(n + have->n + 1, sizeof(*ch));
	for (size_t i = 0; i < n; i++) {
		struct st_item *h = items_find(have, items[i].id);
		if (h != NULL && h->version == items[i].version)
			continue; /* the client has it, or deleted this very version */
		ch[nc].kind = h != NULL && !h->gone ? CH_CHANGE : CH_ADD;
		snprintf(ch[nc].id, sizeof(ch[nc].id), "%s", items[i].id);
		ch[nc].version = items[i].version;
		nc++;
	}
	for (size_t j = 0; j < have->n;) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(items[i].id, have->v[j].id) == 0;
		if (!found && have->v[j].gone) {
			items_remove(have, j);
			continue;
		}
		if (!found) {
			ch[nc].kind = CH_DELETE;
			snprintf(ch[nc].id, sizeof(ch[nc].id), "%s", have->v[j].id);
			nc++;
		}
		j++;
	}
	free(items);
	*ch_r = ch;
	return (long)nc;
}

/* Restore the read flags the client has set into the backend instance: 0, -1, MBX_PENDING. */
static int
restore_read_flags(const struct mbx_serve_in *in, const char *folder, const struct st_items *have)
{
	const char *err;
	int rv;

	for (size_t i = 0; i < have->n; i++) {
		if (have->v[i].read && !have->v[i].gone &&
		    (rv = mbx_set_read(in->backend, folder, have->v[i].id, true, &err)) < 0)
			return pend_or_fail(rv);
	}
	return 0;
}

/* The Responses element of a collection, created on first use. */
static struct wbxml_node *
responses_of(struct wbxml_node *coll_out, struct wbxml_node **responses)
{
	if (*responses == NULL)
		*responses = wbxml_addn(coll_out, "Responses");
	return *responses;
}

/*
 * Apply the client's Commands: Change (the read flag), Delete (a tombstone),
 * Add (refused for good: Status 6, the item is not one this mailbox can
 * store; 5 would make the client retry it at every Sync), Fetch. Returns
 * the number of commands seen, or -1 on a backend failure (MBX_PENDING).
 */
static long
apply_client_commands(const struct mbx_serve_in *in, const char *folder, struct st_items *have,
                      const struct wbxml_node *cmds, const struct body_prefs *bp,
                      struct wbxml_node *coll_out, struct wbxml_node **responses)
{
	const char *err;
	long seen = 0;
	int rv;

	for (const struct wbxml_node *c = cmds ? cmds->first_child : NULL; c; c = c->next) {
		const char *sid = kid_text(c, "ServerId");
		seen++;
		if (is_el(c, WBXML_PAGE_AIRSYNC, "Change")) {
			const char *rd = wbxml_find_text(c, "ApplicationData/Email:Read");
			struct st_item *it = sid ? items_find(have, sid) : NULL;
			if (it == NULL || it->gone) {
				struct wbxml_node *x =
				    wbxml_addn(responses_of(coll_out, responses), "Change");
				wbxml_addn_text(x, "ServerId", sid ? sid : "");
				add_int(x, "Status", 8); /* object not found */
				continue;
			}
			if (rd != NULL) {
				it->read = strcmp(rd, "1") == 0;
				rv = mbx_set_read(in->backend, folder, sid, it->read, &err);
				if (rv < 0)
					return pend_or_fail(rv);
			}
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Delete")) {
			struct st_item *it = sid ? items_find(have, sid) : NULL;
			if (it != NULL)
				it->gone = true;
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Add")) {
			const char *cid = kid_text(c, "ClientId");
			struct wbxml_node *x = wbxml_addn(responses_of(coll_out, responses), "Add");
			wbxml_addn_text(x, "ClientId", cid ? cid : "");
			add_int(x, "Status", 6); /* cannot be stored here: do not retry */
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Fetch")) {
			struct mbx_email e;
			struct st_item *it = sid ? items_find(have, sid) : NULL;
			int fr = sid && !(it && it->gone)
			             ? mbx_fetch(in->backend, folder, sid, &e, &err)
			             : 0;
			if (fr < 0)
				return pend_or_fail(fr);
			struct wbxml_node *x =
			    wbxml_addn(responses_of(coll_out, responses), "Fetch");
			wbxml_addn_text(x, "ServerId", sid ? sid : "");
			add_int(x, "Status", fr == 1 ? 1 : 8);
			if (fr == 1)
				add_email(in, wbxml_addn(x, "ApplicationData"), folder, &e, sid,
				          bp);
			if (fr == 1)
				mbx_email_clear(&e);
		} else {
			seen--;
		}
	}
	return seen;
}

/*
 * One collection of a Sync, as the request (or the cached request it
 * repeats) gives it. key is NULL for a collection taken from the cache: the
 * client goes on from its current key.
 */
struct coll_req {
	char id[MBX_ID_MAX + 1];
	char key[MBX_ID_MAX + 1]; /* "": the current key */
	long long window;         /* 0: the request's */
	bool get_changes;
	struct body_prefs bp;
	int filter_type;                   /* FilterType 0-7; -1: not given */
	const struct wbxml_node *commands; /* the client's, NULL when cached */
	bool bad;                          /* no CollectionId or SyncKey: Status 4 */
	bool deletes_as_moves;             /* DeletesAsMoves (1 when absent) */
	int64_t since; /* FilterType's date floor; 0 none; -1 not given (as before) */
	const struct wbxml_node *supported; /* the request's Supported, or NULL */
	const struct sstate *st;            /* the collection's state (its Supported), or NULL */
};

/* The whole Sync request, as given or as completed from the cache. */
struct sync_req {
	struct coll_req *c;
	size_t n;
	long long wait_s; /* the hold: Wait (minutes) or HeartbeatInterval, in seconds; 0 none */
	long long window; /* 0: DEFAULT_WINDOW */
};

static void
sync_req_clear(struct sync_req *q)
{
	free(q->c);
	memset(q, 0, sizeof(*q));
}

/* Append a collection; NULL past MAX_SYNC_COLLECTIONS. */
static struct coll_req *
sync_req_add(struct sync_req *q)
{
	if (q->n >= MAX_SYNC_COLLECTIONS)
		return NULL;
	q->c = xrealloc(q->c, (q->n + 1) * sizeof(*q->c));
	memset(&q->c[q->n], 0, sizeof(q->c[0]));
	return &q->c[q->n++];
}

/* The collection with this id, or NULL. */
static struct coll_req *
sync_req_find(struct sync_req *q, const char *id)
{
	for (size_t i = 0; i < q->n; i++) {
		if (!q->c[i].bad && strcmp(q->c[i].id, id) == 0)
			return &q->c[i];
	}
	return NULL;
}

static int64_t filter_since(const struct mbx_serve_in *in, int ft);

/*
 * Read a cached collection's body preferences, "-" or
 * "<type>.<truncation>.<allornone>.<preview>" joined by ",": 0 or -1.
 */
static int
prefs_parse(const char *t, struct body_prefs *bp)
{
	if (strcmp(t, "-") == 0)
		return 0;
	for (const char *p = t; *p;) {
		long long tr;
		int type, aon, pv, used = 0;
		if (bp->n >= MAX_BODY_PREFS ||
		    sscanf(p, "%d.%lld.%d.%d%n", &type, &tr, &aon, &pv, &used) != 4 || used == 0)
			return -1;
		bp->p[bp->n++] = (struct body_pref){type, tr, aon != 0, pv};
		p += used;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

/*
 * The cached Sync request (MS-ASCMD 2.2.3.131 Partial, and the empty Sync
 * that repeats the last one), kept as the "sync" state: "hold=<seconds>",
 * "window=<n>", then per collection "coll2=<id> <window> <getchanges>
 * <deletesasmoves> <filtertype> <mimesupport> <mimetruncation> <prefs>"
 * (FilterType and MIMETruncation -1 when not given; prefs as prefs_parse
 * reads them). The older "coll=<id> <window> <getchanges> <type>
 * <truncation> <allornone>" lines are still read (DeletesAsMoves 1, no
 * FilterType). Returns 1 (cached), 0 (none), -1.
 */
static int
cache_load(const struct mbx_serve_in *in, struct sync_req *q)
{
	char *blob;
	size_t len;
	int r = blob_load(in, MBX_STATE_SYNC, &blob, &len);
	const char *p, *end;

	memset(q, 0, sizeof(*q));
	if (r <= 0)
		return r;
	for (p = blob, end = blob + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[256], id[MBX_ID_MAX + 1], prefs[160];
		long long w, tr, hold;
		int gc, type, aon, dam, ft, ms, mt;
		struct coll_req *c;

		if (n >= sizeof(line)) {
			r = 0;
			break;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		if (sscanf(line, "hold=%lld", &hold) == 1)
			q->wait_s = hold;
		else if (sscanf(line, "window=%lld", &w) == 1)
			q->window = w;
		else if (sscanf(line, "coll2=%64s %lld %d %d %d %d %d %159s", id, &w, &gc, &dam,
		                &ft, &ms, &mt, prefs) == 8 &&
		         ft >= -1 && ft <= 7 && (c = sync_req_add(q)) != NULL) {
			snprintf(c->id, sizeof(c->id), "%s", id);
			c->window = w;
			c->get_changes = gc != 0;
			c->deletes_as_moves = dam != 0;
			c->filter_type = ft;
			c->since = filter_since(in, ft);
			c->bp.mime_support = ms;
			c->bp.mime_truncation = mt;
			if (prefs_parse(prefs, &c->bp) < 0) {
				r = 0;
				break;
			}
		} else if (sscanf(line, "coll=%64s %lld %d %d %lld %d", id, &w, &gc, &type, &tr,
		                  &aon) == 6 &&
		           (c = sync_req_add(q)) != NULL) {
			snprintf(c->id, sizeof(c->id), "%s", id);
			c->window = w;
			c->get_changes = gc != 0;
			/* the one preference chosen then, as a MIME one was only chosen with 2 */
			c->bp = (struct body_prefs){.n = 1, .mime_truncation = -1};
			c->bp.p[0] = (struct body_pref){type, tr, aon != 0, 0};
			c->bp.mime_support = type == 4 ? 2 : 0;
			c->deletes_as_moves = true;
			c->filter_type = -1;
			c->since = -1;
		}
	}
	free(blob);
	if (r == 0)
		sync_req_clear(q);
	return r;
}

/* Store the request as the cache for the next empty or Partial Sync. */
static int
cache_store(const struct mbx_serve_in *in, const struct sync_req *q)
{
	struct sbuf b = {0};
	int r;

	sbuf_printf(&b, "v=1\nhold=%lld\nwindow=%lld\n", q->wait_s, q->window);
	for (size_t i = 0; i < q->n; i++) {
		const struct coll_req *c = &q->c[i];
		if (c->bad)
			continue;
		sbuf_printf(&b, "coll2=%s %lld %d %d %d %d %d ", c->id, c->window,
		            c->get_changes ? 1 : 0, c->deletes_as_moves ? 1 : 0, c->filter_type,
		            c->bp.mime_support, c->bp.mime_truncation);
		for (size_t k = 0; k < c->bp.n; k++)
			sbuf_printf(&b, "%s%d.%lld.%d.%d", k ? "," : "", c->bp.p[k].type,
			            c->bp.p[k].truncation, c->bp.p[k].all_or_none ? 1 : 0,
			            c->bp.p[k].preview);
		sbuf_printf(&b, "%s\n", c->bp.n ? "" : "-");
	}
	r = blob_store(in, MBX_STATE_SYNC, b.p);
	free(b.p);
	return r;
}

/* A WindowSize: 0 or over the maximum means the maximum (MS-ASCMD 2.2.3.199.2). */
static long long
window_of(const struct wbxml_node *n, long long def)
{
	const char *t = kid_text(n, "WindowSize"), *e;
	long long v;

	if (t == NULL || parse_int(t, 0, 0x7fffffffLL, &v, &e) < 0)
		return def;
	return v == 0 || v > MAX_WINDOW ? MAX_WINDOW : v;
}

/* ---- Sync over a backend's change cursor ---------------------------- */

/*
 * The date floor of a FilterType ft (MS-ASCMD 2.2.3.70.1: 0 all, 1 a
 * day, 2 three days, 3 a week, 4 two weeks, 5 a month; 6 and 7, three and
 * six months, are the calendar's, taken as such), rounded down to the UTC
 * day so that the floor moves once a day, not at every Sync. 0 for all,
 * -1 when there is no FilterType (the floor in force stays).
 */
static int64_t
filter_since(const struct mbx_serve_in *in, int ft)
{
	static const int days[] = {0, 1, 3, 7, 14, 31, 92, 183};
	int64_t t;

	if (ft < 0)
		return -1;
	if (ft == 0)
		return 0;
	t = in->now - (int64_t)days[ft] * 86400;
	return t > 0 ? t - t % 86400 : 0;
}

/*
 * The client's Commands against a cursor backend: Change (read flag and
 * follow-up flag), Delete (moved to Deleted Items when DeletesAsMoves, else
 * expunged), Add (6, as in apply_client_commands), Fetch. cur (in/out) is
 * advanced by the backend past each change, so none is reported back.
 * Returns the number of commands seen, -1 or MBX_PENDING.
 */
/* Take parent's last child out of the tree (its memory stays the document's). */
static void
drop_last(struct wbxml_node *parent)
{
	struct wbxml_node *prev = NULL;

	for (struct wbxml_node *c = parent->first_child; c && c != parent->last_child; c = c->next)
		prev = c;
	if (prev == NULL)
		parent->first_child = parent->last_child = NULL;
	else {
		prev->next = NULL;
		parent->last_child = prev;
	}
}

/* The codec's options for a collection's items. */
static struct mbx_pim_opts
pim_opts_of(const struct mbx_serve_in *in, const struct coll_req *cr)
{
	struct mbx_pim_opts o = {.version = version_of(in), .body_type = 1, .email = in->email};

	if (cr != NULL && cr->st != NULL && cr->st->sup_given) {
		o.supported_given = true;
		o.supported = cr->st->sup;
		o.n_supported = cr->st->n_sup;
	}
	if (cr != NULL && cr->bp.n > 0 && cr->bp.p[0].type >= 1 && cr->bp.p[0].type <= 3) {
		o.body_type = cr->bp.p[0].type;
		o.truncation = (uint64_t)cr->bp.p[0].truncation;
	}
	return o;
}

/*
 * Whether an event of span [start, end) is in the window of date floor
 * floor (0: no floor): MS-ASCMD's FilterType keeps the calendar items
 * that end after it, and a series while any occurrence does (its end is
 * its last occurrence's, MBX_SPAN_OPEN for ever). 0 0 (unknown) counts as
 * in.
 */
static bool
span_in_window(int64_t start, int64_t end, int64_t floor)
{
	return floor <= 0 || (start == 0 && end == 0) || end > floor;
}

/*
 * A PIM item's fields under appdata: its object fetched and converted.
 * With a date floor (calendars; 0: none), an event known (ci's span) or
 * found (the codec's span of the object) to end before it is not
 * converted: 2. 1, 0 no such item (gone meanwhile), -1 (*errstr: the
 * backend's or the codec's), MBX_PENDING.
 */
static int
add_pim_item(const struct mbx_serve_in *in, enum mbx_class cls, const struct coll_req *cr,
             const char *item, int64_t floor, const struct mbx_change_item *ci,
             struct wbxml_node *appdata, const char **errstr)
{
	struct mbx_pim_opts o = pim_opts_of(in, cr);
	struct mbx_object obj;
	int64_t start = ci ? ci->start : 0, end = ci ? ci->end : 0;
	int rv;

	if (in->pim == NULL) {
		*errstr = "no conversions for contacts, calendars or tasks";
		return -1;
	}
	if (!span_in_window(start, end, floor))
		return 2; /* the backend's map knows it: not even fetched */
	if ((rv = mbx_fetch_object(in->backend, cr->id, item, &obj, errstr)) != 1)
		return rv;
	if (floor > 0 && start == 0 && end == 0 && in->pim->span != NULL &&
	    in->pim->span(cls, obj.data, obj.len, &start, &end, errstr) == 0 &&
	    !span_in_window(start, end, floor)) {
		mbx_object_clear(&obj);
		return 2;
	}
	rv = in->pim->to_eas(cls, obj.data, obj.len, appdata, &o, errstr) == 0 ? 1 : -1;
	mbx_object_clear(&obj);
	return rv;
}

/* A Responses element for one client command: ServerId/ClientId and Status. */
static struct wbxml_node *
respond_item(struct wbxml_node *coll_out, struct wbxml_node **responses, const char *what,
             const char *client_id, const char *server_id, int status)
{
	struct wbxml_node *x = wbxml_addn(responses_of(coll_out, responses), what);

	if (client_id != NULL)
		wbxml_addn_text(x, "ClientId", client_id);
	if (server_id != NULL)
		wbxml_addn_text(x, "ServerId", server_id);
	add_int(x, "Status", status);
	return x;
}

/* A Responses element for a command on one occurrence: ServerId, InstanceId and Status. */
static void
respond_instance(struct wbxml_node *coll_out, struct wbxml_node **responses, const char *what,
                 const char *server_id, const char *instance_id, int status)
{
	struct wbxml_node *x = wbxml_addn(responses_of(coll_out, responses), what);

	wbxml_addn_text(x, "ServerId", server_id);
	wbxml_addn_text(x, "AirSyncBase:InstanceId", instance_id);
	add_int(x, "Status", status);
}

/*
 * A 16.x Delete of one occurrence of a series (AirSyncBase:InstanceId):
 * the series written back without it (the codec's remove_instance: an
 * EXDATE), not deleted. One that cannot be taken out (not a series, an
 * InstanceId of no occurrence, a codec without the op) leaves the object
 * as it is: a Delete has no Status to tell it with. 1, -1, MBX_PENDING.
 */
static int
pim_delete_instance(const struct mbx_serve_in *in, const struct coll_req *cr, enum mbx_class cls,
                    const char *sid, const char *inst, char *cur)
{
	struct mbx_pim_opts o = pim_opts_of(in, cr);
	struct mbx_object obj = {0};
	const char *err = NULL;
	char *data = NULL;
	size_t len = 0;
	int rv;

	if (in->pim == NULL || in->pim->remove_instance == NULL)
		return 1;
	if ((rv = mbx_fetch_object(in->backend, cr->id, sid, &obj, &err)) != 1)
		return rv == 0 ? 1 : pend_or_fail(rv); /* gone already */
	o.instance_id = inst;
	if (in->pim->remove_instance(cls, obj.data, obj.len, &o, &data, &len, &err) < 0) {
		log_info("%s: occurrence %s of item %s of %s not deleted: %s", in->account, inst,
		         sid, cr->id, err);
		mbx_object_clear(&obj);
		return 1;
	}
	rv = mbx_put_object(in->backend, cr->id, sid, obj.etag, data, len, NULL, cur, NULL, &err);
	mbx_object_clear(&obj);
	free(data);
	if (rv == MBX_PENDING || rv == -1)
		return pend_or_fail(rv);
	if (rv != 1) /* changed on the server meanwhile (its version comes), or refused */
		log_info("%s: occurrence %s of item %s of %s not deleted (%d)", in->account, inst,
		         sid, cr->id, rv);
	return 1;
}

/*
 * One client command on a PIM collection (Add, Change, Delete, Fetch),
 * written through the codec and the backend's objects. A Change made from a
 * version the server no longer has is a conflict: Status 7 for it, the
 * server's version kept (the device gets it as a Change), nothing of the
 * device's written over it. 1 acted, 0 not a command, -1, MBX_PENDING.
 */
static int
pim_command(const struct mbx_serve_in *in, const struct coll_req *cr, enum mbx_class cls,
            const struct wbxml_node *c, char *cur, struct wbxml_node *coll_out,
            struct wbxml_node **responses)
{
	const char *sid = kid_text(c, "ServerId"), *err = NULL;
	const struct wbxml_node *ad = kid(c, "ApplicationData");
	struct mbx_pim_opts o = pim_opts_of(in, cr);
	char uid[MBX_PIM_UID_MAX + 1] = "", new_id[MBX_ID_MAX + 1] = "";
	struct mbx_object obj = {0};
	char *data = NULL;
	size_t len = 0;
	int rv;
	/* 16.x: a Change or Delete of one occurrence of a series */
	const char *inst = cls == MBX_CLASS_CALENDAR && version_of(in) >= 160
	                       ? kid_text(c, "AirSyncBase:InstanceId")
	                       : NULL;

	if (is_el(c, WBXML_PAGE_AIRSYNC, "Delete")) {
		if (sid != NULL && inst != NULL)
			return pim_delete_instance(in, cr, cls, sid, inst, cur);
		if (sid != NULL &&
		    (rv = mbx_remove(in->backend, cr->id, sid, false, cur, &err)) < 0)
			return pend_or_fail(rv);
		return 1;
	}
	if (is_el(c, WBXML_PAGE_AIRSYNC, "Fetch")) {
		struct wbxml_node *x = wbxml_addn(responses_of(coll_out, responses), "Fetch");
		wbxml_addn_text(x, "ServerId", sid ? sid : "");
		add_int(x, "Status", 1);
		rv = sid ? add_pim_item(in, cls, cr, sid, 0, NULL, wbxml_addn(x, "ApplicationData"),
		                        &err)
		         : 0;
		if (rv == MBX_PENDING)
			return rv;
		if (rv != 1) {
			x->first_child = x->last_child = NULL; /* the arena keeps them */
			wbxml_addn_text(x, "ServerId", sid ? sid : "");
			add_int(x, "Status", rv == 0 ? 8 : 6);
		}
		return 1;
	}
	bool add = is_el(c, WBXML_PAGE_AIRSYNC, "Add");
	if (!add && !is_el(c, WBXML_PAGE_AIRSYNC, "Change"))
		return 0;
	const char *cid = add ? kid_text(c, "ClientId") : NULL;
	if (in->pim == NULL || ad == NULL || (!add && sid == NULL)) {
		respond_item(coll_out, responses, add ? "Add" : "Change",
		             add ? (cid ? cid : "") : NULL, add ? NULL : (sid ? sid : ""),
		             in->pim == NULL ? 5 : 6);
		return 1;
	}
	if (!add) {
		rv = mbx_fetch_object(in->backend, cr->id, sid, &obj, &err);
		if (rv < 0)
			return pend_or_fail(rv);
		if (rv == 0) {
			if (inst != NULL)
				respond_instance(coll_out, responses, "Change", sid, inst, 8);
			else
				respond_item(coll_out, responses, "Change", NULL, sid,
				             8); /* not found */
			return 1;
		}
		o.instance_id = inst;
	}
	if (in->pim->from_eas(cls, ad, obj.data, obj.len, &o, &data, &len, uid, &err) < 0) {
		mbx_object_clear(&obj);
		/* the item cannot be converted: 6, the device's error in its data */
		if (!add && inst != NULL)
			respond_instance(coll_out, responses, "Change", sid, inst, 6);
		else
			respond_item(coll_out, responses, add ? "Add" : "Change",
			             add ? (cid ? cid : "") : NULL, add ? NULL : sid, 6);
		return 1;
	}
	rv = mbx_put_object(in->backend, cr->id, add ? NULL : sid, add ? NULL : obj.etag, data, len,
	                    uid, cur, add ? new_id : NULL, &err);
	mbx_object_clear(&obj);
	free(data);
	if (rv == MBX_PENDING || rv == -1)
		return pend_or_fail(rv);
	/* a refused object: 6 for it, the rest of the request goes on */
	if (add)
		respond_item(coll_out, responses, "Add", cid ? cid : "", rv == 1 ? new_id : NULL,
		             rv == 1             ? 1
		             : rv == MBX_REFUSED ? 6
		                                 : 5);
	else if (rv != 1 && inst != NULL)
		respond_instance(coll_out, responses, "Change", sid, inst,
		                 rv == MBX_CONFLICT  ? 7
		                 : rv == MBX_REFUSED ? 6
		                                     : 8);
	else if (rv != 1)
		respond_item(coll_out, responses, "Change", NULL, sid,
		             rv == MBX_CONFLICT  ? 7
		             : rv == MBX_REFUSED ? 6
		                                 : 8);
	return 1;
}

static long
apply_cursor_commands(const struct mbx_serve_in *in, const struct coll_req *cr, enum mbx_class cls,
                      char *cur, struct wbxml_node *coll_out, struct wbxml_node **responses)
{
	const char *folder = cr->id, *err;
	long seen = 0;
	int rv;

	for (const struct wbxml_node *c = cr->commands ? cr->commands->first_child : NULL; c;
	     c = c->next) {
		const char *sid = kid_text(c, "ServerId");
		seen++;
		if (cls != MBX_CLASS_EMAIL) {
			if ((rv = pim_command(in, cr, cls, c, cur, coll_out, responses)) < 0)
				return rv;
			seen -= rv == 0;
			continue;
		}
		if (is_el(c, WBXML_PAGE_AIRSYNC, "Change")) {
			const char *rd = wbxml_find_text(c, "ApplicationData/Email:Read");
			const struct wbxml_node *fl = wbxml_find(c, "ApplicationData/Email:Flag");
			const char *fs = fl ? kid_text(fl, "Email:Status") : NULL;
			int read = rd ? strcmp(rd, "1") == 0 : -1;
			int flagged = fl ? fs != NULL && strcmp(fs, "2") == 0 : -1;
			rv = sid == NULL               ? 0
			     : read < 0 && flagged < 0 ? 1
			                               : mbx_set_flags(in->backend, folder, sid,
			                                               read, flagged, cur, &err);
			if (rv < 0)
				return pend_or_fail(rv);
			if (rv == 0) {
				struct wbxml_node *x =
				    wbxml_addn(responses_of(coll_out, responses), "Change");
				wbxml_addn_text(x, "ServerId", sid ? sid : "");
				add_int(x, "Status", 8); /* object not found */
			}
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Delete")) {
			/* an item already gone is simply gone */
			if (sid != NULL && (rv = mbx_remove(in->backend, folder, sid,
			                                    cr->deletes_as_moves, cur, &err)) < 0)
				return pend_or_fail(rv);
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Add")) {
			const char *cid = kid_text(c, "ClientId");
			struct wbxml_node *x = wbxml_addn(responses_of(coll_out, responses), "Add");
			wbxml_addn_text(x, "ClientId", cid ? cid : "");
			add_int(x, "Status", 6);
		} else if (is_el(c, WBXML_PAGE_AIRSYNC, "Fetch")) {
			struct mbx_email e;
			int fr = sid ? mbx_fetch(in->backend, folder, sid, &e, &err) : 0;
			if (fr < 0)
				return pend_or_fail(fr);
			struct wbxml_node *x =
			    wbxml_addn(responses_of(coll_out, responses), "Fetch");
			wbxml_addn_text(x, "ServerId", sid ? sid : "");
			add_int(x, "Status", fr == 1 ? 1 : 8);
			if (fr == 1) {
				add_email(in, wbxml_addn(x, "ApplicationData"), folder, &e, sid,
				          &cr->bp);
				mbx_email_clear(&e);
			}
		} else {
			seen--;
		}
	}
	return seen;
}

/* The index of id in l, or -1. */
static ssize_t
items_index(const struct st_items *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return (ssize_t)i;
	return -1;
}

/*
 * The backend's changes as the answer's Commands: deletes (SoftDelete for
 * those out of the date window), changes (read and flag), adds (fetched).
 * A calendar with a date floor (floor > 0) leaves out the events that end
 * before it, and keeps their ids in skip (in/out: those the device was not
 * sent): a change to one of them is an Add once it is in the window, its
 * delete is not told. Returns how many were written, or -1 / MBX_PENDING.
 */
static long
cursor_commands(const struct mbx_serve_in *in, const struct coll_req *cr, enum mbx_class cls,
                const struct mbx_changes *ch, int64_t floor, struct st_items *skip,
                struct wbxml_node *co)
{
	struct wbxml_node *cmds = NULL;
	const char *err;
	long sent = 0;
	ssize_t x;

	if (ch->n_deletes + ch->n_changed + ch->n_adds > 0)
		cmds = wbxml_addn(co, "Commands");
	for (size_t i = 0; i < ch->n_deletes; i++) {
		if ((x = items_index(skip, ch->deletes[i].id)) >= 0) {
			items_remove(skip, (size_t)x); /* never sent: nothing to tell */
			continue;
		}
		wbxml_addn_text(wbxml_addn(cmds, ch->deletes[i].soft ? "SoftDelete" : "Delete"),
		                "ServerId", ch->deletes[i].id);
		sent++;
	}
	if (cls != MBX_CLASS_EMAIL) {
		/* contacts, events, tasks: changed and new objects sent whole */
		for (size_t k = 0; k < 2; k++) {
			const struct mbx_change_item *v = k == 0 ? ch->changed : ch->adds;
			size_t n = k == 0 ? ch->n_changed : ch->n_adds;
			for (size_t i = 0; i < n; i++) {
				/* a change of one never sent: judged as an add */
				x = k == 0 ? items_index(skip, v[i].id) : -1;
				bool add = k == 1 || x >= 0;
				struct wbxml_node *a = wbxml_addn(cmds, add ? "Add" : "Change");
				wbxml_addn_text(a, "ServerId", v[i].id);
				/* past the cap of skip, every one is sent */
				int64_t fl = add && skip->n < STATE_MAX_ITEMS ? floor : 0;
				int fr = add_pim_item(in, cls, cr, v[i].id, fl, &v[i],
				                      wbxml_addn(a, "ApplicationData"), &err);
				if (fr == MBX_PENDING)
					return fr;
				if (fr == 1) {
					if (x >= 0)
						items_remove(skip, (size_t)x);
					sent++;
					continue;
				}
				/*
				 * out of the window (not sent: kept in skip), gone
				 * meanwhile (its delete comes next), or one that cannot be
				 * read
				 */
				if (fr == 2 && x < 0)
					(void)items_add(skip, v[i].id, 0, false);
				if (fr < 0)
					log_warn("%s: item %s of %s left out: %s", in->account,
					         v[i].id, cr->id, err);
				drop_last(cmds);
			}
		}
		if (cmds != NULL && cmds->first_child == NULL)
			drop_last(co); /* all left out */
		return sent;
	}
	for (size_t i = 0; i < ch->n_changed; i++, sent++) {
		struct wbxml_node *a = wbxml_addn(cmds, "Change");
		wbxml_addn_text(a, "ServerId", ch->changed[i].id);
		struct wbxml_node *ad = wbxml_addn(a, "ApplicationData");
		add_int(ad, "Email:Read", ch->changed[i].read ? 1 : 0);
		add_flag(ad, ch->changed[i].flagged);
	}
	for (size_t i = 0; i < ch->n_adds; i++) {
		struct mbx_email e;
		int fr = mbx_fetch(in->backend, cr->id, ch->adds[i].id, &e, &err);
		if (fr < 0)
			return pend_or_fail(fr);
		if (fr == 0)
			continue; /* expunged meanwhile: its delete comes with the next Sync */
		struct wbxml_node *a = wbxml_addn(cmds, "Add");
		wbxml_addn_text(a, "ServerId", ch->adds[i].id);
		add_email(in, wbxml_addn(a, "ApplicationData"), cr->id, &e, ch->adds[i].id,
		          &cr->bp);
		mbx_email_clear(&e);
		sent++;
	}
	return sent;
}

/*
 * Saved Sync answers (cursor backends): the Collection of the last answer
 * that gave a collection a new key is kept, WBXML-encoded, as the state
 * "answer:<folder id>" ("<the request's key>\n" then the bytes in base64:
 * the state is text), so that
 * the same request repeated with that key (its answer was lost) is answered
 * with the very same Collection, whatever changed in the mailbox since, and
 * nothing is done twice. At most MBX_SAVED_ANSWER_MAX bytes: a larger
 * answer is not kept, and its repeat is answered again from the cursor
 * before it (its changes as the mailbox has them then: what was expunged
 * meanwhile is not added, and what came is added too).
 */
#define MBX_SAVED_ANSWER_MAX (512 * 1024)
#define MBX_STATE_ANSWER     "answer:"

/* Copy src's children (their subtrees) under dst. */
static void
copy_children(struct wbxml_node *dst, const struct wbxml_node *src)
{
	for (const struct wbxml_node *c = src->first_child; c; c = c->next) {
		if (c->flags & WBXML_NODE_OPAQUE)
			wbxml_add_opaque(dst, c->page, c->token, c->data, c->len);
		else if (c->flags & WBXML_NODE_TEXT)
			wbxml_add_text(dst, c->page, c->token, (const char *)c->data);
		else
			copy_children(wbxml_add(dst, c->page, c->token), c);
	}
}

/* Keep co as the answer to key for folder: 0 (also when too large to keep), -1. */
static int
answer_save(const struct mbx_serve_in *in, const char *folder, const char *key,
            const struct wbxml_node *co)
{
	struct wbxml_doc *d = wbxml_doc_new();
	uint8_t *buf = NULL;
	size_t len = 0, kl = strlen(key);
	char coll[sizeof(MBX_STATE_ANSWER) + MBX_ID_MAX];
	int rv = 0;

	copy_children(wbxml_add_root(d, co->page, co->token), co);
	if (wbxml_encode(d, &buf, &len, NULL) == WBXML_OK &&
	    kl + 1 + B64_ENCODED_LEN(len) <= MBX_SAVED_ANSWER_MAX && in->state.put != NULL) {
		char *blob = xmalloc(kl + 1 + B64_ENCODED_LEN(len) + 1);
		memcpy(blob, key, kl);
		blob[kl] = '\n';
		size_t bl = kl + 1 + b64_encode(buf, len, blob + kl + 1);
		snprintf(coll, sizeof(coll), MBX_STATE_ANSWER "%s", folder);
		rv = in->state.put(in->state.arg, in->account, in->device_id, coll, blob, bl) < 0
		         ? -1
		         : 0;
		free(blob);
	}
	free(buf);
	wbxml_doc_free(&d);
	return rv;
}

/*
 * The saved answer to key for folder, its Collection's children copied
 * under co: 1, 0 when none is kept for that key, -1, MBX_PENDING.
 */
static int
answer_replay(const struct mbx_serve_in *in, const char *folder, const char *key,
              struct wbxml_node *co)
{
	char coll[sizeof(MBX_STATE_ANSWER) + MBX_ID_MAX], *blob;
	size_t len, kl = strlen(key);
	struct wbxml_doc *d = NULL;
	unsigned char *bytes = NULL;
	size_t n, epos;
	const char *err;
	int r;

	snprintf(coll, sizeof(coll), MBX_STATE_ANSWER "%s", folder);
	if ((r = blob_load(in, coll, &blob, &len)) <= 0)
		return r;
	r = 0;
	if (len > kl && memcmp(blob, key, kl) == 0 && blob[kl] == '\n') {
		bytes = xmalloc(B64_DECODED_MAX(len - kl - 1) + 1);
		if (b64_decode(blob + kl + 1, len - kl - 1, bytes, &n, &epos, &err) == 0 &&
		    wbxml_decode(bytes, n, NULL, &d, NULL) == WBXML_OK) {
			copy_children(co, wbxml_doc_root(d));
			r = 1;
		}
	}
	wbxml_doc_free(&d);
	free(bytes);
	free(blob);
	return r;
}

/*
 * One collection of a Sync whose backend owns the cursor, the key already
 * matched (replay: the previous key, answered again from the cursor before).
 * The state keeps the key and the cursor, and the previous key with its
 * cursor: a few hundred bytes whatever the folder's size. The key changes
 * when anything was said; a cursor that moved without that (the device's
 * own changes passed by) is stored under the same key. A cursor the backend
 * no longer accepts (UIDVALIDITY changed): Status 3, the device starts
 * over. Returns 0, -1 or MBX_PENDING.
 */
static int
sync_cursor(const struct mbx_serve_in *in, const struct coll_req *cr, enum mbx_class cls,
            long long window, struct wbxml_node *co, struct sstate *st, bool replay, bool *said)
{
	struct wbxml_node *responses = NULL, *keyn;
	struct mbx_changes ch = {0};
	struct st_items skip = {0};
	char cur[MBX_CURSOR_MAX + 1];
	const char *err;
	long acted, sent = 0;
	bool changed, more = false, filter = cls == MBX_CLASS_CALENDAR, ft_new = false;
	int64_t floor = 0;
	int rv;

	/*
	 * A calendar's FilterType: events are judged as they come (the floor
	 * moves once a day), so one that leaves the window as time passes
	 * stays on the device, as Exchange leaves it; another FilterType
	 * makes the device start over (Status 3), its window then made anew.
	 */
	if (filter && cr->filter_type >= 0 && st->ft_given && st->ft != cr->filter_type) {
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", cr->id);
		add_int(co, "Status", 3);
		*said = true;
		return 0;
	}
	if (filter && cr->filter_type >= 0 && !st->ft_given) {
		st->ft_given = ft_new = true; /* a state made before FilterTypes were kept */
		st->ft = cr->filter_type;
	}
	if (filter && st->ft_given)
		floor = filter_since(in, st->ft);
	items_copy(&skip, replay ? &st->pskip : &st->skip);
	snprintf(cur, sizeof(cur), "%s", replay ? st->pcur : st->cur);
	keyn = wbxml_addn_text(co, "SyncKey", "");
	wbxml_addn_text(co, "CollectionId", cr->id);
	add_int(co, "Status", 1);
	if ((acted = apply_cursor_commands(in, cr, cls, cur, co, &responses)) < 0) {
		items_clear(&skip);
		return (int)acted;
	}
	if (cr->get_changes) {
		/* PIM objects have no date of their own: a calendar's floor is its own */
		struct mbx_window w = {(size_t)window, cls == MBX_CLASS_EMAIL ? cr->since : 0,
		                       floor};
		if ((rv = mbx_changes(in->backend, cr->id, cur, &w, &ch, &err)) < 0) {
			items_clear(&skip);
			return pend_or_fail(rv);
		}
		if (rv == 0) {
			items_clear(&skip);
			co->first_child = co->last_child = NULL; /* the arena keeps them */
			wbxml_addn_text(co, "SyncKey", "0");
			wbxml_addn_text(co, "CollectionId", cr->id);
			add_int(co, "Status", 3); /* the folder was recreated: start over */
			*said = true;
			return 0;
		}
		if (ch.more_available) {
			wbxml_addn(co, "MoreAvailable");
			more = true;
		}
		if ((sent = cursor_commands(in, cr, cls, &ch, floor, &skip, co)) < 0) {
			mbx_changes_clear(&ch);
			items_clear(&skip);
			return (int)sent;
		}
		snprintf(cur, sizeof(cur), "%s", ch.cursor);
		mbx_changes_clear(&ch);
	}
	changed = acted > 0 || sent > 0 || more;
	bool moved = ft_new || strcmp(cur, replay ? st->pcur : st->cur) != 0;
	if (changed && !replay) {
		char nk[MBX_ID_MAX + 1];
		new_key(in, cr->id, st->key, nk);
		snprintf(st->prev_key, sizeof(st->prev_key), "%s", st->key);
		snprintf(st->pcur, sizeof(st->pcur), "%s", st->cur);
		snprintf(st->key, sizeof(st->key), "%s", nk);
		items_clear(&st->pskip);
		st->pskip = st->skip;
		memset(&st->skip, 0, sizeof(st->skip));
	}
	snprintf(st->cur, sizeof(st->cur), "%s", cur);
	items_clear(&st->skip);
	st->skip = skip;
	if ((changed || replay || moved) && state_store(in, cr->id, st) < 0)
		return -1;
	wbxml_set_text(keyn, st->key, strlen(st->key));
	/* The answer that gave a new key is kept for that request's repeat. */
	if (changed && !replay && answer_save(in, cr->id, st->prev_key, co) < 0)
		return -1;
	if (changed || replay || responses != NULL)
		*said = true;
	return 0;
}

/*
 * One collection of a Sync. Adds the answer's Collection to colls_out and
 * sets *said when it carries anything a held Sync must be answered for (a
 * new key, a status other than 1, the server's or the client's changes).
 * Returns 0, or -1 on a state/backend failure, MBX_PENDING when waiting.
 */
static int
sync_collection(const struct mbx_serve_in *in, const struct coll_req *cr, long long window,
                struct wbxml_node *colls_out, bool *said)
{
	const char *folder = cr->id;
	struct wbxml_node *co = wbxml_addn(colls_out, "Collection");
	struct wbxml_node *responses = NULL, *keyn, *cmds = NULL;
	struct sstate st;
	struct st_items work = {0};
	struct change *ch = NULL;
	const struct mbx_folder *f;
	enum mbx_class cls = MBX_CLASS_EMAIL;
	bool replay, more = false;
	long nc, acted, sent = 0;
	int lr, m, rc = -1;

	if (cr->bad) {
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 4); /* protocol error */
		*said = true;
		return 0;
	}
	if ((lr = mbx_folder_lookup(in->backend, folder, &f)) < 0)
		return pend_or_fail(lr);
	if (lr == 1)
		cls = mbx_folder_class(f->type);
	if (lr == 0) {
		wbxml_addn_text(co, "SyncKey", cr->key[0] ? cr->key : "0");
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 12); /* hierarchy changed: FolderSync */
		*said = true;
		return 0;
	}
	if (cr->window > 0)
		window = cr->window;
	if (strcmp(cr->key, "0") == 0) {
		memset(&st, 0, sizeof(st));
		if (cls == MBX_CLASS_CALENDAR && cr->filter_type >= 0) {
			st.ft_given = true; /* the window the device's calendar is synced with */
			st.ft = cr->filter_type;
		}
		if (cr->supported != NULL && cls != MBX_CLASS_EMAIL) {
			/* ghosting: what the device says it handles, for its Changes */
			st.sup_given = true;
			for (const struct wbxml_node *x = cr->supported->first_child;
			     x && st.n_sup < MBX_PIM_SUPPORTED_MAX; x = x->next)
				st.sup[st.n_sup++] = (uint16_t)(x->page << 8 | x->token);
		}
		state_advance(in, folder, &st, &work, false, true);
		if (state_store(in, folder, &st) < 0)
			goto fail;
		wbxml_addn_text(co, "SyncKey", st.key);
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 1);
		sstate_clear(&st);
		*said = true;
		return 0;
	}
	lr = state_load(in, folder, &st);
	if (lr < 0)
		return lr;
	m = lr == 0 ? -1 : cr->key[0] ? key_match(&st, cr->key) : 0;
	if (m < 0) {
		sstate_clear(&st);
		wbxml_addn_text(co, "SyncKey", "0");
		wbxml_addn_text(co, "CollectionId", folder);
		add_int(co, "Status", 3); /* invalid sync key: start over */
		*said = true;
		return 0;
	}
	replay = m == 1;
	if (mbx_has_cursor(in->backend) && replay &&
	    (rc = answer_replay(in, folder, cr->key, co)) != 0) {
		/* the answer given to this key before, as it was */
		sstate_clear(&st);
		*said = true;
		return rc < 0 ? rc : 0;
	}
	if (mbx_has_cursor(in->backend)) {
		struct coll_req crs = *cr;
		crs.st = &st;
		rc = sync_cursor(in, &crs, cls, window, co, &st, replay, said);
		sstate_clear(&st);
		return rc;
	}
	items_copy(&work, replay ? &st.prev : &st.items);
	keyn = wbxml_addn_text(co, "SyncKey", "");
	wbxml_addn_text(co, "CollectionId", folder);
	add_int(co, "Status", 1);
	if ((rc = restore_read_flags(in, folder, &work)) < 0)
		goto fail;
	acted = apply_client_commands(in, folder, &work, cr->commands, &cr->bp, co, &responses);
	if (acted < 0) {
		rc = (int)acted;
		goto fail;
	}
	if (cr->get_changes) {
		nc = diff_items(in, folder, &work, &ch);
		if (nc < 0) {
			rc = (int)nc;
			goto fail;
		}
		if (nc > window) {
			wbxml_addn(co, "MoreAvailable");
			more = true;
		}
		for (long i = 0; i < nc && i < window; i++) {
			if (cmds == NULL)
				cmds = wbxml_addn(co, "Commands");
			if (ch[i].kind == CH_DELETE) {
				wbxml_addn_text(wbxml_addn(cmds, "Delete"), "ServerId", ch[i].id);
				for (size_t j = 0; j < work.n; j++) {
					if (strcmp(work.v[j].id, ch[i].id) == 0) {
						items_remove(&work, j);
						break;
					}
				}
				sent++;
				continue;
			}
			struct mbx_email e;
			const char *err;
			int fr = mbx_fetch(in->backend, folder, ch[i].id, &e, &err);
			if (fr < 0) {
				rc = pend_or_fail(fr);
				goto fail;
			}
			if (fr == 0)
				continue; /* vanished meanwhile: the next Sync deletes it */
			struct wbxml_node *a =
			    wbxml_addn(cmds, ch[i].kind == CH_ADD ? "Add" : "Change");
			wbxml_addn_text(a, "ServerId", ch[i].id);
			add_email(in, wbxml_addn(a, "ApplicationData"), folder, &e, ch[i].id,
			          &cr->bp);
			struct st_item *it = items_find(&work, ch[i].id);
			if (it == NULL)
				it = items_add(&work, ch[i].id, ch[i].version, e.read);
			if (it != NULL) {
				it->version = ch[i].version;
				it->read = e.read;
				it->gone = false;
			}
			mbx_email_clear(&e);
			sent++;
		}
		free(ch);
		ch = NULL;
	}
	bool changed = acted > 0 || sent > 0 || more;
	state_advance(in, folder, &st, &work, replay, changed);
	if ((changed || replay) && (rc = state_store(in, folder, &st)) < 0)
		goto fail;
	wbxml_set_text(keyn, st.key, strlen(st.key));
	if (changed || replay || responses != NULL)
		*said = true;
	sstate_clear(&st);
	return 0;
fail:
	free(ch);
	items_clear(&work);
	sstate_clear(&st);
	return rc;
}

/*
 * The hold a Sync asks for: Wait (minutes, 12.1+) or HeartbeatInterval
 * (seconds, 14.0+), within the heartbeat range the daemon allows
 * (MS-ASCMD 2.2.3.198, 2.2.3.88.2). Returns the seconds (0: none), or -1
 * with *status_r (4: both given; 14: out of range, *limit_r the bound in
 * the element's unit).
 */
static long long
sync_hold(const struct mbx_serve_in *in, const struct wbxml_node *req, int *status_r,
          long long *limit_r)
{
	int hb_min = in->heartbeat_min > 0 ? in->heartbeat_min : DEFAULT_HB_MIN;
	int hb_max = in->heartbeat_max > 0 ? in->heartbeat_max : DEFAULT_HB_MAX;
	const char *wait = kid_text(req, "Wait"), *hb = kid_text(req, "HeartbeatInterval"), *e;
	long long v;

	if (wait != NULL && hb != NULL) {
		*status_r = 4;
		return -1;
	}
	if (wait != NULL) {
		long long lo = (hb_min + 59) / 60, hi = hb_max / 60;
		if (parse_int(wait, 0, 0x7fffffffLL, &v, &e) < 0 || v < lo || v > hi) {
			*status_r = 14;
			*limit_r =
			    parse_int(wait, 0, 0x7fffffffLL, &v, &e) == 0 && v > hi ? hi : lo;
			return -1;
		}
		return v * 60;
	}
	if (hb != NULL) {
		if (parse_int(hb, 0, 0x7fffffffLL, &v, &e) < 0 || v < hb_min || v > hb_max) {
			*status_r = 14;
			*limit_r = parse_int(hb, 0, 0x7fffffffLL, &v, &e) == 0 && v > hb_max
			               ? hb_max
			               : hb_min;
			return -1;
		}
		return v;
	}
	return 0;
}

/* Read the request's collections into q; 0, or -1 (too many: Status 15... told by the caller). */
static int
parse_collections(const struct mbx_serve_in *in, const struct wbxml_node *colls, struct sync_req *q)
{
	for (const struct wbxml_node *c = colls ? colls->first_child : NULL; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_AIRSYNC, "Collection"))
			continue;
		struct coll_req *cr = sync_req_add(q);
		const char *key = kid_text(c, "SyncKey"), *id = kid_text(c, "CollectionId");
		const char *gc = kid_text(c, "GetChanges");
		if (cr == NULL)
			return -1;
		if (id == NULL || strlen(id) > MBX_ID_MAX ||
		    (key != NULL && strlen(key) > MBX_ID_MAX)) {
			cr->bad = true;
			snprintf(cr->id, sizeof(cr->id), "%.*s", MBX_ID_MAX, id ? id : "");
			continue;
		}
		snprintf(cr->id, sizeof(cr->id), "%s", id);
		snprintf(cr->key, sizeof(cr->key), "%s", key ? key : "");
		cr->bad = key == NULL;
		cr->window = kid(c, "WindowSize") ? window_of(c, 0) : 0;
		cr->get_changes =
		    kid(c, "GetChanges") == NULL || gc == NULL || strcmp(gc, "0") != 0;
		cr->bp = read_prefs(kid(c, "Options"));
		cr->commands = kid(c, "Commands");
		cr->deletes_as_moves = kid_int(c, "DeletesAsMoves", 0, 1, 1) == 1;
		cr->filter_type = (int)kid_int(kid(c, "Options"), "FilterType", 0, 7, -1);
		cr->since = filter_since(in, cr->filter_type);
		cr->supported = kid(c, "Supported");
	}
	return 0;
}

/*
 * Sync: every collection of the request. An empty request repeats the
 * cached one; a Partial one is completed from it (13 when nothing is
 * cached). With Wait or HeartbeatInterval and nothing to say, the answer is
 * held (hold_seconds) and is then empty: HTTP 200 without a body, the keys
 * unchanged.
 */
static int
cmd_sync(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req = NULL, *r, *co;
	struct wbxml_doc *rq = NULL, *doc = NULL;
	struct sync_req q = {0}, cache = {0};
	bool said = false;
	int cl, status = 0, rc = -1;
	long long limit = 0;

	cl = cache_load(in, &cache);
	if (cl < 0)
		return failed(cl, "sync state failure", out);
	if (in->body_len == 0) {
		if (cl == 0)
			return status_only("AirSync:Sync", 13, out); /* nothing cached: resend */
		q = cache;
		memset(&cache, 0, sizeof(cache));
	} else {
		rq = decode_root(in, WBXML_PAGE_AIRSYNC, "Sync", out, &req);
		if (rq == NULL) {
			sync_req_clear(&cache);
			return 0;
		}
		bool partial = kid(req, "Partial") != NULL;
		struct wbxml_node *colls = kid(req, "Collections");
		long long hold = sync_hold(in, req, &status, &limit);
		if (hold < 0)
			goto status;
		if (colls == NULL && !partial && hold == 0 && kid(req, "WindowSize") == NULL) {
			status = 4; /* nothing at all */
			goto status;
		}
		if ((partial || colls == NULL) && cl == 0) {
			status = 13; /* a partial request over nothing cached */
			goto status;
		}
		if (parse_collections(in, colls, &q) < 0) {
			status = 15; /* too many collections */
			limit = MAX_SYNC_COLLECTIONS;
			goto status;
		}
		q.window = kid(req, "WindowSize")     ? window_of(req, DEFAULT_WINDOW)
		           : partial || colls == NULL ? cache.window
		                                      : 0;
		q.wait_s = kid(req, "Wait") || kid(req, "HeartbeatInterval") ? hold
		           : partial || colls == NULL                        ? cache.wait_s
		                                                             : 0;
		for (size_t i = 0; (partial || colls == NULL) && i < cache.n; i++) {
			if (sync_req_find(&q, cache.c[i].id) != NULL)
				continue;
			struct coll_req *cr = sync_req_add(&q);
			if (cr != NULL)
				*cr = cache.c[i];
		}
	}
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "AirSync:Sync");
	co = wbxml_addn(r, "Collections");
	for (size_t i = 0; i < q.n; i++) {
		if ((rc = sync_collection(in, &q.c[i], q.window > 0 ? q.window : DEFAULT_WINDOW, co,
		                          &said)) < 0)
			goto fail;
	}
	rc = -1;
	if (cache_store(in, &q) < 0)
		goto fail;
	if (q.wait_s > 0 && !said) {
		wbxml_doc_free(&doc);
		out->http_status = 200;
		out->hold_seconds = (int)q.wait_s;
		out->detail = "held Sync";
		out->watch = xcalloc(q.n > 0 ? q.n : 1, sizeof(*out->watch));
		for (size_t i = 0; i < q.n && out->n_watch < MBX_PING_FOLDERS_MAX; i++)
			out->watch[out->n_watch++] = xstrdup(q.c[i].id);
	} else {
		finish(&doc, out);
	}
	sync_req_clear(&q);
	sync_req_clear(&cache);
	wbxml_doc_free(&rq);
	return 0;
status:
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "AirSync:Sync");
	add_int(r, "Status", status);
	if (status == 14 || status == 15)
		add_int(r, "Limit", limit);
	sync_req_clear(&q);
	sync_req_clear(&cache);
	wbxml_doc_free(&rq);
	return finish(&doc, out);
fail:
	sync_req_clear(&q);
	sync_req_clear(&cache);
	wbxml_doc_free(&doc);
	wbxml_doc_free(&rq);
	return failed(rc, "sync state or mailbox failure", out);
}

/* ---- GetItemEstimate -------------------------------------------------- */

/* GetItemEstimate: the number of pending changes per collection. */
static int
cmd_getitemestimate(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *colls, *r;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_GETITEMESTIMATE, "GetItemEstimate", out, &req);
	struct wbxml_doc *doc;
	int rc = -1;

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
		int status = 1, lr, known = folder != NULL ? folder_known(in, folder) : 0;

		if (known < 0) {
			rc = known;
			goto fail;
		} else if (known == 0)
			status = 2;
		else if (key == NULL || strcmp(key, "0") == 0)
			status = 3;
		else if ((lr = state_load(in, folder, &st)) < 0) {
			rc = lr;
			goto fail;
		} else {
			int m = lr == 0 ? -1 : key_match(&st, key);
			if (m < 0)
				status = 4;
			else if (mbx_has_cursor(in->backend)) {
				struct mbx_changes chg;
				struct mbx_window w = {
				    0,
				    filter_since(in, (int)kid_int(kid(c, "AirSync:Options"),
				                                  "FilterType", 0, 7, -1)),
				    0};
				const char *err;
				int cv = mbx_changes(in->backend, folder, m == 1 ? st.pcur : st.cur,
				                     &w, &chg, &err);
				if (cv < 0) {
					rc = pend_or_fail(cv);
					sstate_clear(&st);
					goto fail;
				}
				status = cv == 0 ? 4 : 1; /* a recreated folder: the key is void */
				nc = (long)chg.total;
				mbx_changes_clear(&chg);
			} else if ((nc = diff_items(in, folder, m == 1 ? &st.prev : &st.items,
			                            &ch)) < 0) {
				rc = (int)nc;
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
	return failed(rc, "sync state or mailbox failure", out);
}

/* ---- Ping ------------------------------------------------------------- */

/*
 * Whether the client lacks anything of folder (no state counts as lacking
 * all): 1, 0, -1, MBX_PENDING.
 */
static int
folder_has_changes(const struct mbx_serve_in *in, const char *folder)
{
	struct sstate st;
	struct change *ch = NULL;
	long nc;
	int lr = state_load(in, folder, &st);

	if (lr < 0)
		return lr;
	if (mbx_has_cursor(in->backend)) {
		struct mbx_changes chg;
		struct mbx_window w = {0, -1, 0};
		const char *err;
		int cv = mbx_changes(in->backend, folder, st.cur, &w, &chg, &err);
		nc = cv < 0 ? pend_or_fail(cv) : cv == 0 ? 1 : (long)chg.total;
		mbx_changes_clear(&chg);
		sstate_clear(&st);
		return nc < 0 ? (int)nc : nc > 0;
	}
	nc = diff_items(in, folder, &st.items, &ch);
	free(ch);
	sstate_clear(&st);
	return nc < 0 ? (int)nc : nc > 0;
}

/*
 * Whether the backend's folders differ from those the device's last
 * FolderSync left it with (one added, gone, renamed or moved): 1, 0 (also
 * when the device has no FolderSync state), -1, MBX_PENDING.
 */
static int
hierarchy_changed(const struct mbx_serve_in *in)
{
	const struct mbx_folder *f;
	const char *err;
	struct sstate st;
	size_t nf, matched = 0;
	int rv = state_load(in, MBX_STATE_FOLDERSYNC, &st);

	if (rv <= 0)
		return rv;
	if ((rv = mbx_list_folders(in->backend, &f, &nf, &err)) < 0) {
		sstate_clear(&st);
		return pend_or_fail(rv);
	}
	for (size_t i = 0; i < nf && rv == 0; i++) {
		const struct st_item *have;
		if (strlen(f[i].id) > MBX_ID_MAX)
			continue; /* never shown (cmd_foldersync) */
		if ((have = items_find(&st.items, f[i].id)) == NULL ||
		    have->version != folder_version(&f[i]))
			rv = 1;
		matched++;
	}
	if (rv == 0 && matched != st.items.n)
		rv = 1;
	sstate_clear(&st);
	return rv;
}

/* Ping: check the heartbeat and the folders, then hold or answer at once. */
static int
cmd_ping(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	int hb_min = in->heartbeat_min > 0 ? in->heartbeat_min : DEFAULT_HB_MIN;
	int hb_max = in->heartbeat_max > 0 ? in->heartbeat_max : DEFAULT_HB_MAX;
	struct wbxml_node *req = NULL, *r;
	struct wbxml_doc *rq = NULL, *doc;
	struct sstate saved, now = {0};
	long long hb;
	int lr, rc = -1;

	lr = state_load(in, MBX_STATE_PING, &saved);
	if (lr < 0)
		return failed(lr, "sync state failure", out);
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
			if (id == NULL || now.n_folders >= MBX_PING_FOLDERS_MAX)
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
		int known = folder_known(in, now.folders[i]);
		if (known < 0) {
			rc = known;
			goto fail;
		}
		if (known == 0) {
			add_int(r, "Status", 7); /* folder hierarchy out of date */
			goto done;
		}
	}
	/* a real mailbox whose folders changed since the device's FolderSync: 7 too */
	if (mbx_has_cursor(in->backend) && (rc = hierarchy_changed(in)) != 0) {
		if (rc < 0)
			goto fail;
		add_int(r, "Status", 7);
		goto done;
	}
	rc = -1;
	if (state_store(in, MBX_STATE_PING, &now) < 0)
		goto fail;
	struct wbxml_node *changed = NULL;
	for (size_t i = 0; i < now.n_folders; i++) {
		int hc = folder_has_changes(in, now.folders[i]);
		if (hc < 0) {
			rc = hc;
			goto fail;
		}
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
		out->watch = xcalloc(now.n_folders, sizeof(*out->watch));
		for (size_t i = 0; i < now.n_folders; i++)
			out->watch[out->n_watch++] = xstrdup(now.folders[i]);
	}
done:
	sstate_clear(&now);
	return finish(&doc, out);
fail:
	sstate_clear(&now);
	wbxml_doc_free(&doc);
	return failed(rc, "sync state or mailbox failure", out);
}

/* ---- ItemOperations --------------------------------------------------- */

/*
 * Fetch one item of folder with the client's read flag: the backend
 * instance is new at every request, and the read flag the client set lives
 * in the folder's sync state. 1 found, 0 not, -1 failure, MBX_PENDING.
 */
static int
fetch_as_client_sees(const struct mbx_serve_in *in, const char *folder, const char *id,
                     struct mbx_email *e)
{
	struct sstate st;
	const char *err;
	struct st_item *it;
	int lr = state_load(in, folder, &st), rv;

	memset(e, 0, sizeof(*e));
	if (lr < 0)
		return lr;
	it = items_find(&st.items, id);
	if (it != NULL && it->gone) {
		sstate_clear(&st);
		return 0; /* the client deleted it */
	}
	if (it != NULL && it->read &&
	    (rv = mbx_set_read(in->backend, folder, id, true, &err)) < 0) {
		sstate_clear(&st);
		return pend_or_fail(rv);
	}
	sstate_clear(&st);
	rv = mbx_fetch(in->backend, folder, id, e, &err);
	return rv < 0 ? pend_or_fail(rv) : rv;
}

static int longid_parse(const char *id, char *folder, char *item);
static void stream_set(struct mbx_serve_out *out, const char *folder, const char *item,
                       const char *section, uint64_t total, bool base64);

/*
 * ItemOperations Fetch of a mailbox item by (CollectionId,) ServerId or by
 * a Search's LongId (MS-ASCMD 2.2.3.98.1): a LongId with a ServerId or a
 * CollectionId, or none of the three, is a protocol error (Status 2); a
 * LongId that is none of ours names no object (6). 0, -1, MBX_PENDING.
 */
/*
 * ItemOperations Fetch of a contact, event or task (CollectionId and
 * ServerId): Status 1 and its Properties with its Class, 6 when there is no
 * such item, 5 when it cannot be read. 0, or -1 / MBX_PENDING.
 */
static int
itemops_fetch_pim(const struct mbx_serve_in *in, const struct wbxml_node *c, enum mbx_class cls,
                  const char *folder, const char *sid, struct wbxml_node *resp)
{
	struct coll_req cr = {0};
	struct wbxml_doc *tmp = wbxml_doc_new();
	struct wbxml_node *props = wbxml_addn_root(tmp, "ItemOperations:Properties");
	const char *err = NULL;
	int fr;

	snprintf(cr.id, sizeof(cr.id), "%s", folder);
	cr.bp = read_prefs(kid(c, "ItemOperations:Options"));
	fr = add_pim_item(in, cls, &cr, sid, 0, NULL, props, &err);
	if (fr == MBX_PENDING) {
		wbxml_doc_free(&tmp);
		return fr;
	}
	struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:Fetch");
	add_int(x, "ItemOperations:Status", fr == 1 ? 1 : fr == 0 ? 6 : 5);
	wbxml_addn_text(x, "AirSync:CollectionId", folder);
	wbxml_addn_text(x, "AirSync:ServerId", sid);
	if (fr == 1) {
		wbxml_addn_text(x, "AirSync:Class", mbx_class_name(cls));
		copy_children(wbxml_addn(x, "ItemOperations:Properties"), props);
	}
	wbxml_doc_free(&tmp);
	return 0;
}

static int
itemops_fetch(const struct mbx_serve_in *in, const struct wbxml_node *c, struct wbxml_node *resp,
              struct mbx_serve_out *out)
{
	const char *sid = kid_text(c, "AirSync:ServerId");
	const char *folder = kid_text(c, "AirSync:CollectionId");
	const char *lid = kid_text(c, "Search:LongId");
	char lfolder[MBX_ID_MAX + 1], litem[MBX_ID_MAX + 1];
	const char *err;
	struct mbx_email e = {0};
	int fr = 0;

	if (lid != NULL && (sid != NULL || folder != NULL)) {
		struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:Fetch");
		add_int(x, "ItemOperations:Status", 2);
		wbxml_addn_text(x, "Search:LongId", lid);
		return 0;
	}
	if (lid == NULL && sid == NULL && kid(c, "AirSyncBase:FileReference") == NULL) {
		add_int(wbxml_addn(resp, "ItemOperations:Fetch"), "ItemOperations:Status", 2);
		return 0;
	}
	if (lid != NULL && longid_parse(lid, lfolder, litem) == 0) {
		folder = lfolder;
		sid = litem;
	}
	if (sid != NULL && folder == NULL) {
		/* Without CollectionId: look in every folder. */
		const struct mbx_folder *f;
		size_t nf;
		if ((fr = mbx_list_folders(in->backend, &f, &nf, &err)) < 0)
			return pend_or_fail(fr);
		for (size_t i = 0; i < nf && fr == 0; i++) {
			if (mbx_folder_class(f[i].type) != MBX_CLASS_EMAIL)
				continue; /* an e-mail's id: contacts and events have their own */
			fr = fetch_as_client_sees(in, f[i].id, sid, &e);
			if (fr == 1)
				folder = f[i].id;
		}
	} else if (sid != NULL) {
		const struct mbx_folder *f;
		if ((fr = mbx_folder_lookup(in->backend, folder, &f)) < 0)
			return pend_or_fail(fr);
		if (fr == 1 && mbx_folder_class(f->type) != MBX_CLASS_EMAIL)
			return itemops_fetch_pim(in, c, mbx_folder_class(f->type), folder, sid,
			                         resp);
		if (fr == 1)
			fr = fetch_as_client_sees(in, folder, sid, &e);
	}
	if (fr < 0) {
		mbx_email_clear(&e);
		return fr;
	}
	struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:Fetch");
	/* 15: attachment id invalid (there are none); 6: object not found. */
	add_int(x, "ItemOperations:Status",
	        fr == 1                                       ? 1
	        : kid(c, "AirSyncBase:FileReference") != NULL ? 15
	                                                      : 6);
	if (lid != NULL) {
		wbxml_addn_text(x, "Search:LongId", lid);
	} else {
		if (folder != NULL)
			wbxml_addn_text(x, "AirSync:CollectionId", folder);
		if (sid != NULL)
			wbxml_addn_text(x, "AirSync:ServerId", sid);
	}
	if (fr == 1) {
		wbxml_addn_text(x, "AirSync:Class", "Email");
		struct body_prefs bp = read_prefs(kid(c, "ItemOperations:Options"));
		bool streamed = false;
		if (in->may_stream && !out->stream.on)
			bp.streamed = &streamed;
		add_email(in, wbxml_addn(x, "ItemOperations:Properties"), folder, &e, sid, &bp);
		if (streamed)
			stream_set(out, folder, sid, MBX_SECTION_MESSAGE, e.size, false);
	}
	mbx_email_clear(&e);
	return 0;
}

/*
 * An ItemOperations Range "<first>-<last>" (MS-ASCMD 2.2.3.143.1): 0 with
 * *offset_r and *max_r, or -1 when malformed.
 */
static int
parse_range(const char *t, uint64_t *offset_r, uint64_t *max_r)
{
	unsigned long long a, b;
	char extra;

	if (sscanf(t, "%llu-%llu%c", &a, &b, &extra) != 2 || b < a || t[0] == '-' || t[0] == '+')
		return -1;
	*offset_r = a;
	*max_r = b - a + 1;
	return 0;
}

/* Set a streamed answer of a part (mbx_stream). */
static void
stream_set(struct mbx_serve_out *out, const char *folder, const char *item, const char *section,
           uint64_t total, bool base64)
{
	out->stream.on = true;
	out->stream.base64 = base64;
	snprintf(out->stream.folder, sizeof(out->stream.folder), "%s", folder);
	snprintf(out->stream.item, sizeof(out->stream.item), "%s", item);
	snprintf(out->stream.section, sizeof(out->stream.section), "%s", section);
	out->stream.total = total;
}

/*
 * The encoded answer of a streamed ItemOperations cut at its mark: the body
 * keeps what comes before the mark (its STR_I token last), the suffix what
 * follows (its NUL first). 0, or -1 when the mark is not there once.
 */
static int
stream_split(struct mbx_serve_out *out)
{
	size_t ml = strlen(STREAM_MARK), at = SIZE_MAX;

	for (size_t i = 0; i + ml + 2 <= out->body_len; i++) {
		if (out->body[i] == 0x03 && memcmp(out->body + i + 1, STREAM_MARK, ml) == 0 &&
		    out->body[i + 1 + ml] == 0x00) {
			if (at != SIZE_MAX)
				return -1;
			at = i + 1;
		}
	}
	if (at == SIZE_MAX)
		return -1;
	out->stream.suffix_len = out->body_len - at - ml;
	out->stream.suffix = xmalloc(out->stream.suffix_len);
	memcpy(out->stream.suffix, out->body + at + ml, out->stream.suffix_len);
	out->body_len = at;
	return 0;
}

/* A streamed answer's whole length (commands.h). */
uint64_t
mbx_stream_length(const struct mbx_serve_out *out)
{
	uint64_t part = out->stream.base64 ? (out->stream.total + 2) / 3 * 4 : out->stream.total;

	return out->body_len + part + out->stream.suffix_len;
}

/*
 * ItemOperations Fetch of an attachment by FileReference (a backend with
 * fetch_part): Status 1 and Properties (ContentType, Range and Total when a
 * Range was asked, Total, Data: base64, MS-ASCMD 2.2.3.39.2); a
 * FileReference that is none of ours or names no part: 15; a Range that is
 * malformed or starts past the end: 8 (byte range invalid). 0, -1,
 * MBX_PENDING.
 */
static int
itemops_fetch_file(const struct mbx_serve_in *in, const struct wbxml_node *c,
                   struct wbxml_node *resp, struct mbx_serve_out *out)
{
	const char *ref = kid_text(c, "AirSyncBase:FileReference"), *err;
	const struct wbxml_node *opts = kid(c, "ItemOperations:Options");
	const char *range = opts ? kid_text(opts, "ItemOperations:Range") : NULL;
	char folder[MBX_ID_MAX + 1], item[MBX_ID_MAX + 1], section[MBX_ID_MAX + 1];
	uint64_t offset = 0, max = 0;
	struct mbx_part part = {0};
	int status = 1, rv;
	/* the first whole attachment of the answer may be streamed: its first window decides */
	bool may_stream = in->may_stream && range == NULL && !out->stream.on;

	if (may_stream)
		max = MBX_STREAM_CHUNK;
	if (range != NULL && parse_range(range, &offset, &max) < 0)
		status = 8;
	else if (ref == NULL || fileref_parse(ref, folder, item, section) < 0)
		status = 15;
	else if ((rv = folder_known(in, folder)) != 1) {
		if (rv < 0)
			return rv;
		status = 15;
	} else if ((rv = mbx_fetch_part(in->backend, folder, item, section, offset, max, &part,
	                                &err)) != 1) {
		if (rv < 0)
			return pend_or_fail(rv);
		status = 15;
	} else if (range != NULL && offset >= part.total && part.total > 0)
		status = 8;
	struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:Fetch");
	add_int(x, "ItemOperations:Status", status);
	wbxml_addn_text(x, "AirSyncBase:FileReference", ref ? ref : "");
	if (status == 1) {
		struct wbxml_node *pr = wbxml_addn(x, "ItemOperations:Properties");
		char t[48], *b64 = xmalloc(B64_ENCODED_LEN(part.len) + 1);
		wbxml_addn_text(pr, "AirSyncBase:ContentType", part.content_type);
		if (range != NULL && part.len > 0) {
			snprintf(t, sizeof(t), "%" PRIu64 "-%" PRIu64, offset,
			         offset + (uint64_t)part.len - 1);
			wbxml_addn_text(pr, "ItemOperations:Range", t);
		}
		add_int(pr, "ItemOperations:Total", (long long)part.total);
		if (may_stream && part.total > part.len) { /* Data: a mark cut out at the end */
			stream_set(out, folder, item, section, part.total, true);
			wbxml_addn_text(pr, "ItemOperations:Data", STREAM_MARK);
		} else {
			b64_encode((const unsigned char *)part.data, part.len, b64);
			wbxml_addn_text(pr, "ItemOperations:Data", b64);
		}
		free(b64);
	}
	mbx_part_clear(&part);
	return 0;
}

/*
 * GetAttachment (12.x, 14.x): the part AttachmentName names (a
 * FileReference) as the HTTP body with its own Content-Type (kept in the
 * body's allocation: commands.h); none of ours or no such part: HTTP 500
 * (MS-ASCMD 2.2.1.8: the attachment could not be retrieved). A backend
 * without attachments (the quarantine mailbox): 503 and Retry-After.
 */
static int
cmd_getattachment(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	char folder[MBX_ID_MAX + 1], item[MBX_ID_MAX + 1], section[MBX_ID_MAX + 1];
	struct mbx_part part = {0};
	const char *err;
	int rv;

	if (in->attachment_name == NULL ||
	    fileref_parse(in->attachment_name, folder, item, section) < 0)
		return http_only(500, "GetAttachment: not an attachment of this mailbox", out);
	if ((rv = folder_known(in, folder)) != 1)
		return rv == MBX_PENDING ? failed(rv, NULL, out)
		                         : http_only(500, "GetAttachment: no such folder", out);
	rv = mbx_fetch_part(in->backend, folder, item, section, 0,
	                    in->may_stream ? MBX_STREAM_CHUNK : 0, &part, &err);
	if (rv != 1)
		return rv == 0 ? http_only(500, "GetAttachment: no such attachment", out)
		               : failed(pend_or_fail(rv), "mailbox failure", out);
	if (part.total > part.len) { /* streamed: no bytes here, the type kept as below */
		stream_set(out, folder, item, section, part.total, false);
		part.len = 0;
	}
	size_t tl = strlen(part.content_type);
	out->body = xmalloc(part.len + 1 + tl + 1);
	memcpy(out->body, part.data, part.len);
	out->body[part.len] = '\0';
	memcpy(out->body + part.len + 1, part.content_type, tl + 1);
	out->body_len = part.len;
	out->content_type = (const char *)out->body + part.len + 1;
	out->http_status = 200;
	mbx_part_clear(&part);
	return 0;
}

/*
 * Mark every item of folder the client has as deleted by it (tombstones:
 * they are not added back). 0, -1 or MBX_PENDING.
 */
static int
tombstone_all(const struct mbx_serve_in *in, const char *folder)
{
	struct sstate st;
	int lr = state_load(in, folder, &st), rv = 0;

	if (lr <= 0)
		return lr;
	for (size_t i = 0; i < st.items.n; i++)
		st.items.v[i].gone = true;
	rv = state_store(in, folder, &st);
	sstate_clear(&st);
	return rv;
}

/*
 * ItemOperations EmptyFolderContents: a folder of the mailbox is emptied
 * for the client (Status 1: an empty Deleted Items is simply empty, and the
 * alert, emptied from the Inbox, is not added back); an unknown one: 6.
 */
static int
itemops_empty(const struct mbx_serve_in *in, const struct wbxml_node *c, struct wbxml_node *resp)
{
	const char *folder = kid_text(c, "AirSync:CollectionId");
	int known = folder != NULL ? folder_known(in, folder) : 0, rv, status = known ? 1 : 6;

	if (known < 0)
		return known;
	if (known && mbx_has_cursor(in->backend)) {
		/* A backend with cursors empties the folder itself (3 when it cannot). */
		struct sstate st;
		char before[MBX_CURSOR_MAX + 1];
		const char *err;
		int lr = state_load(in, folder, &st);

		if (lr < 0)
			return lr;
		memcpy(before, st.cur, sizeof(before));
		rv = in->backend->ops->empty != NULL ? mbx_empty(in->backend, folder, st.cur, &err)
		                                     : -1;
		if (rv == 1 && lr == 1 && strcmp(before, st.cur) != 0 &&
		    state_store(in, folder, &st) < 0)
			rv = -1;
		sstate_clear(&st);
		if (rv == MBX_PENDING)
			return rv;
		status = rv == 1 ? 1 : rv == 0 ? 6 : 3;
	} else if (known && (rv = tombstone_all(in, folder)) < 0) {
		return rv;
	}
	struct wbxml_node *x = wbxml_addn(resp, "ItemOperations:EmptyFolderContents");
	add_int(x, "ItemOperations:Status", status);
	wbxml_addn_text(x, "AirSync:CollectionId", folder ? folder : "");
	return 0;
}

/* ItemOperations: Fetch and EmptyFolderContents; Move fails (3). */
static int
cmd_itemoperations(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *r, *resp;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_ITEMOPERATIONS, "ItemOperations", out, &req);
	struct wbxml_doc *doc;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "ItemOperations:ItemOperations");
	add_int(r, "Status", 1);
	resp = wbxml_addn(r, "Response");
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		int rv = 0;
		if (is_el(c, WBXML_PAGE_ITEMOPERATIONS, "Fetch") &&
		    kid(c, "AirSyncBase:FileReference") != NULL &&
		    in->backend->ops->fetch_part != NULL) {
			rv = itemops_fetch_file(in, c, resp, out);
		} else if (is_el(c, WBXML_PAGE_ITEMOPERATIONS, "Fetch")) {
			rv = itemops_fetch(in, c, resp, out);
		} else if (is_el(c, WBXML_PAGE_ITEMOPERATIONS, "EmptyFolderContents")) {
			rv = itemops_empty(in, c, resp);
		} else {
			struct wbxml_node *x = wbxml_add(resp, c->page, c->token);
			add_int(x, "ItemOperations:Status", 3); /* server error */
		}
		if (rv < 0) {
			wbxml_doc_free(&doc);
			wbxml_doc_free(&rq);
			out->stream.on = false;
			return failed(rv, "sync state or mailbox failure", out);
		}
	}
	wbxml_doc_free(&rq);
	if (finish(&doc, out) < 0)
		return -1;
	if (out->stream.on && stream_split(out) < 0) { /* cannot happen: the mark is ours */
		mbx_serve_out_clear(out);
		return http_only(500, "ItemOperations: the streamed answer could not be cut", out);
	}
	return 0;
}

/* ---- MoveItems -------------------------------------------------------- */

/*
 * One Move on a backend that owns change cursors and moves items itself
 * (mailbox.h: move): 2 for an unknown destination, 4 for the same folder,
 * 1 when the source folder or item is unknown; else 3 with the item's id in
 * the destination in dst_id, the source's cursor advanced past the move so
 * that the next Sync there does not echo it as a Delete (the destination's
 * cursor does not hold the new id: its next Sync adds the item). Returns
 * the status, -1 or MBX_PENDING.
 */
static int
move_cursor(const struct mbx_serve_in *in, const char *src, const char *sfld, const char *dfld,
            char dst_id[MBX_ID_MAX + 1])
{
	struct sstate st;
	char before[MBX_CURSOR_MAX + 1];
	const char *err;
	int lr, rv;

	if ((lr = folder_known(in, sfld)) != 1)
		return lr == 0 ? 1 : lr;
	if (dfld == NULL)
		return 2;
	if ((lr = folder_known(in, dfld)) != 1)
		return lr == 0 ? 2 : lr;
	if (strcmp(sfld, dfld) == 0)
		return 4;
	if ((lr = state_load(in, sfld, &st)) < 0)
		return lr;
	memcpy(before, st.cur, sizeof(before));
	rv = mbx_move(in->backend, sfld, src, dfld, st.cur, dst_id, &err);
	if (rv == 1 && lr == 1 && strcmp(before, st.cur) != 0 && state_store(in, sfld, &st) < 0)
		rv = -1;
	sstate_clear(&st);
	if (rv < 0)
		return pend_or_fail(rv);
	if (rv == 0 || dst_id[0] == '\0')
		return 1;
	return 3;
}

/*
 * One Move of MoveItems: 1 when the source folder or item is unknown, 2 for
 * an unknown destination, 4 when both are the same; else 3 (done): the item
 * is a tombstone in the source's state (not added back), and the
 * destination's state, when the client has one, lists it under the same
 * id, so that its next Sync there removes it (the mailbox keeps no copy).
 * Returns the status, or -1 on a state/backend failure, MBX_PENDING.
 */
static int
move_one(const struct mbx_serve_in *in, const char *src, const char *sfld, const char *dfld,
         char dst_id[MBX_ID_MAX + 1])
{
	struct mbx_item_ref *items = NULL;
	size_t n = 0;
	const char *err;
	bool found = false;
	struct sstate st;
	int lr;

	if (src != NULL)
		snprintf(dst_id, MBX_ID_MAX + 1, "%s", src);
	if (src == NULL || sfld == NULL)
		return 1;
	if (mbx_has_cursor(in->backend) && in->backend->ops->move != NULL)
		return move_cursor(in, src, sfld, dfld, dst_id);
	if ((lr = folder_known(in, sfld)) != 1)
		return lr == 0 ? 1 : lr;
	if ((lr = mbx_list_items(in->backend, sfld, &items, &n, &err)) < 0)
		return pend_or_fail(lr);
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(items[i].id, src) == 0;
	free(items);
	if (!found)
		return 1;
	if (dfld == NULL)
		return 2;
	if ((lr = folder_known(in, dfld)) != 1)
		return lr == 0 ? 2 : lr;
	if (strcmp(sfld, dfld) == 0)
		return 4;
	if ((lr = state_load(in, sfld, &st)) < 0)
		return lr;
	struct st_item *it = lr ? items_find(&st.items, src) : NULL;
	bool read = it != NULL && it->read;
	if (it != NULL && !it->gone) {
		it->gone = true;
		if (state_store(in, sfld, &st) < 0) {
			sstate_clear(&st);
			return -1;
		}
	}
	sstate_clear(&st);
	if ((lr = state_load(in, dfld, &st)) < 0)
		return lr;
	if (lr == 1 && items_find(&st.items, src) == NULL && items_add(&st.items, src, 0, read) &&
	    state_store(in, dfld, &st) < 0) {
		sstate_clear(&st);
		return -1;
	}
	sstate_clear(&st);
	return 3;
}

/* MoveItems: each Move answered by move_one. */
static int
cmd_moveitems(const struct mbx_serve_in *in, struct mbx_serve_out *out)
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
		char dst_id[MBX_ID_MAX + 1] = "";
		int status =
		    move_one(in, src, kid_text(c, "SrcFldId"), kid_text(c, "DstFldId"), dst_id);
		if (status < 0) {
			wbxml_doc_free(&doc);
			wbxml_doc_free(&rq);
			return failed(status, "sync state or mailbox failure", out);
		}
		struct wbxml_node *x = wbxml_addn(r, "Response");
		wbxml_addn_text(x, "SrcMsgId", src ? src : "");
		add_int(x, "Status", status);
		if (status == 3)
			wbxml_addn_text(x, "DstMsgId", dst_id);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* ---- SendMail, SmartReply, SmartForward ------------------------------- */

/* What a SendMail, SmartReply or SmartForward asks: the 14.0+ WBXML or the 12.x MIME and query. */
struct compose_ask {
	const char *mime; /* the phone's message */
	size_t mime_len;
	bool save_in_sent, replace_mime;
	const char *folder, *item, *long_id; /* the original (Smart*) */
	const char *client_id;               /* 14.0+; NULL when absent */
};

/* The ComposeMail Status (MS-ASCMD 2.2.2, common status codes) of a refused send. */
static int
send_status(enum mbx_send_result r)
{
	switch (r) {
	case MBX_SEND_SENT:
		return 1;
	case MBX_SEND_NO_RCPT:
		return 119; /* MessageHasNoRecipient */
	case MBX_SEND_RCPT_REFUSED:
		return 116; /* MessageRecipientUnresolved */
	case MBX_SEND_TOO_LARGE:
		return 122; /* AttachmentIsTooLarge: the message is over the limit */
	case MBX_SEND_TEMPORARY:
		return 111; /* ServerErrorRetryLater */
	case MBX_SEND_FAILED:
	default:
		return 120; /* MailSubmissionFailed */
	}
}

/*
 * The answer of a compose command: status 1 (sent) is HTTP 200 without a
 * body; from 14.0 a refusal is the root with its Status; before 14.0 there
 * is none: 111 (later) is HTTP 503 with Retry-After, 102 (no message) 400,
 * the rest 500.
 */
static int
compose_answer(const struct mbx_serve_in *in, int v, int status, struct mbx_serve_out *out)
{
	if (status == 1)
		return http_only(200, NULL, out);
	if (v >= 140)
		return status_only(eas_status_root(in->cmd), status, out);
	if (status == 111) {
		out->headers[out->n_headers][0] = "Retry-After";
		out->headers[out->n_headers++][1] = "3600";
		return http_only(503, "the message could not be sent now", out);
	}
	return http_only(status == 102 ? 400 : 500, "the message was not sent", out);
}

/*
 * A LongId (MS-ASCMD 2.2.3.98: the id Search hands out) into folder and
 * item (MBX_ID_MAX + 1 bytes each): "<folder>:<item>", each %-escaped as in
 * a FileReference. 0, or -1 when it is none of ours.
 */
static int
longid_parse(const char *id, char *folder, char *item)
{
	const char *a = id ? strchr(id, ':') : NULL;

	if (a == NULL || strlen(id) > MBX_FILEREF_MAX || strchr(a + 1, ':') != NULL ||
	    fileref_field(id, (size_t)(a - id), folder) < 0 ||
	    fileref_field(a + 1, strlen(a + 1), item) < 0)
		return -1;
	return 0;
}

/*
 * Read the request into ask: from 14.0 the WBXML (ClientId, SaveInSentItems,
 * ReplaceMime, Source's FolderId and ItemId or LongId, Mime), before it the
 * body as the message and the query's SaveInSent, CollectionId, ItemId,
 * LongId. Returns 1 (*rq_r holds the decoded request the strings point
 * into), 0 when out holds the answer (not WBXML: 400).
 */
static int
compose_read(const struct mbx_serve_in *in, int v, struct compose_ask *ask, struct wbxml_doc **rq_r,
             struct mbx_serve_out *out)
{
	struct wbxml_node *req, *src, *mime;
	const char *root = eas_status_root(in->cmd);

	memset(ask, 0, sizeof(*ask));
	*rq_r = NULL;
	if (v < 140) {
		ask->mime = (const char *)in->body;
		ask->mime_len = in->body_len;
		ask->save_in_sent = in->save_in_sent;
		ask->folder = in->collection_id;
		ask->item = in->item_id;
		ask->long_id = in->long_id;
		return 1;
	}
	*rq_r = decode_root(in, WBXML_PAGE_COMPOSEMAIL, strchr(root, ':') + 1, out, &req);
	if (*rq_r == NULL)
		return 0;
	ask->client_id = kid_text(req, "ClientId");
	ask->save_in_sent = kid(req, "SaveInSentItems") != NULL;
	ask->replace_mime = kid(req, "ReplaceMime") != NULL;
	if ((src = kid(req, "Source")) != NULL) {
		ask->folder = kid_text(src, "FolderId");
		ask->item = kid_text(src, "ItemId");
		ask->long_id = kid_text(src, "LongId");
	}
	if ((mime = kid(req, "Mime")) != NULL && mime->data != NULL) {
		ask->mime = (const char *)mime->data;
		ask->mime_len = mime->len;
	}
	return 1;
}

/*
 * SmartReply / SmartForward's message: the original (by FolderId and
 * ItemId, or LongId) fetched and added to the phone's as compose.h says
 * (an original without its bytes: the phone's message as it is; one
 * larger than the item's bytes: fetched whole, fetch_part's
 * MBX_SECTION_MESSAGE). Returns 1
 * with *msg_r (malloc'd) and the original's ids in folder and item, else a
 * ComposeMail status (150 no such original, 107 unreadable MIME), -1 or
 * MBX_PENDING.
 */
static int
compose_original(const struct mbx_serve_in *in, const struct compose_ask *ask, char *folder,
                 char *item, char **msg_r, size_t *len_r)
{
	struct compose_req cr = {
	    .kind = in->cmd == EAS_CMD_SMARTREPLY ? COMPOSE_REPLY : COMPOSE_FORWARD,
	    .phone = ask->mime,
	    .phone_len = ask->mime_len,
	    .replace_mime = ask->replace_mime,
	};
	struct mbx_email e = {0};
	const char *err;
	int rv;

	if (ask->folder != NULL && ask->item != NULL && strlen(ask->folder) <= MBX_ID_MAX &&
	    strlen(ask->item) <= MBX_ID_MAX) {
		memcpy(folder, ask->folder, strlen(ask->folder) + 1);
		memcpy(item, ask->item, strlen(ask->item) + 1);
	} else if (ask->long_id == NULL || longid_parse(ask->long_id, folder, item) < 0) {
		return 150; /* ItemNotFound */
	}
	if ((rv = folder_known(in, folder)) != 1)
		return rv == 0 ? 150 : rv;
	if ((rv = mbx_fetch(in->backend, folder, item, &e, &err)) != 1)
		return rv == 0 ? 150 : pend_or_fail(rv);
	struct mbx_part whole = {0};
	if (e.raw != NULL && e.raw_len < e.size && !cr.replace_mime) {
		/* a large original: whole (the composed message is held whole to be sent anyway) */
		rv = mbx_fetch_part(in->backend, folder, item, MBX_SECTION_MESSAGE, 0, 0, &whole,
		                    &err);
		if (rv != 1) {
			mbx_email_clear(&e);
			return rv == 0 ? 150 : pend_or_fail(rv);
		}
		cr.original = whole.data;
		cr.original_len = whole.len;
	} else if (e.raw != NULL) {
		cr.original = e.raw;
		cr.original_len = e.raw_len;
	} else {
		cr.replace_mime = true;
	}
	rv = compose_smart(&cr, msg_r, len_r, &err);
	mbx_part_clear(&whole);
	mbx_email_clear(&e);
	return rv == 0 ? 1 : 107; /* InvalidMIME */
}

/*
 * Reserve the ClientId cid ("" when none is remembered) before its message
 * is sent (commands.h): 1 to send it, 118 (sent before), 111 (being sent by
 * another request, or the store failed: the phone tries later) or
 * MBX_PENDING.
 */
static int
client_id_reserve(const struct mbx_serve_in *in, const char *cid)
{
	int rv;

	if (cid[0] == '\0')
		return 1;
	rv = in->state.client_id(in->state.arg, in->account, in->device_id, cid,
	                         MBX_CLIENTID_RESERVE);
	if (rv == MBX_PENDING)
		return rv;
	return rv == MBX_CLIENTID_NEW ? 1 : rv == MBX_CLIENTID_DONE ? 118 : 111;
}

/*
 * SendMail, SmartReply, SmartForward on a backend that sends (the table at
 * the top): the message composed, its ClientId reserved, sent (SaveInSent:
 * kept in Sent), the ClientId kept or released, and the original marked
 * answered or forwarded.
 */
static int
cmd_compose(const struct mbx_serve_in *in, int v, struct mbx_serve_out *out)
{
	struct compose_ask ask;
	struct wbxml_doc *rq;
	struct mbx_send_out so;
	char folder[MBX_ID_MAX + 1] = "", item[MBX_ID_MAX + 1] = "", *msg = NULL;
	char cid[MBX_CLIENTID_MAX + 1] = "";
	size_t len = 0;
	const char *err, *detail = NULL;
	int status, rv;

	if (compose_read(in, v, &ask, &rq, out) == 0)
		return 0;
	if (ask.client_id != NULL && in->state.client_id != NULL &&
	    strlen(ask.client_id) <= MBX_CLIENTID_MAX)
		memcpy(cid, ask.client_id, strlen(ask.client_id) + 1);
	if (ask.mime == NULL || ask.mime_len == 0) {
		status = v >= 140 ? 107 : 102; /* InvalidMIME; before 14.0: an empty body */
	} else if (in->cmd == EAS_CMD_SENDMAIL) {
		msg = xmalloc(ask.mime_len + 1);
		memcpy(msg, ask.mime, ask.mime_len);
		msg[ask.mime_len] = '\0';
		len = ask.mime_len;
		status = 1;
	} else {
		status = compose_original(in, &ask, folder, item, &msg, &len);
	}
	wbxml_doc_free(&rq);
	if (status < 0)
		return failed(status, "mailbox failure", out);
	if (status == 1 && (status = client_id_reserve(in, cid)) == MBX_PENDING) {
		free(msg);
		return failed(status, NULL, out);
	}
	if (status == 118)
		detail = "ClientId sent before: not sent again";
	else if (status == 111 && msg != NULL)
		detail = "ClientId being sent, or not reserved: not sent now";
	if (status == 1) {
		rv = mbx_send(in->backend, msg, len, ask.save_in_sent, &so, &err);
		free(msg);
		if (rv == MBX_PENDING)
			return failed(rv, NULL, out);
		status = rv < 0 ? 110 : send_status(so.result);
		/* sent: kept; else released, so that the phone's retry is sent */
		if (cid[0] != '\0' &&
		    in->state.client_id(in->state.arg, in->account, in->device_id, cid,
		                        status == 1 ? MBX_CLIENTID_SENT : MBX_CLIENTID_RELEASE) ==
		        MBX_PENDING)
			return failed(MBX_PENDING, NULL, out);
		if (rv < 0)
			return compose_answer(in, v, 110, out);
		/* the original marked; a failure there leaves the mail sent */
		if (status == 1 && folder[0] != '\0' &&
		    mbx_mark_answered(in->backend, folder, item, in->cmd == EAS_CMD_SMARTFORWARD,
		                      &err) == MBX_PENDING)
			return failed(MBX_PENDING, NULL, out);
	} else {
		free(msg);
	}
	rv = compose_answer(in, v, status, out);
	if (detail != NULL)
		out->detail = detail;
	return rv;
}

/* ---- the commands that fail ------------------------------------------ */

void
mbx_meeting_answer_clear(struct mbx_meeting_answer *a)
{
	free(a->object);
	free(a->reply);
	free(a->organizer);
	free(a->uid);
	free(a->summary);
	memset(a, 0, sizeof(*a));
}

/* The default calendar's id into id: 1, 0 when there is none, -1, MBX_PENDING. */
static int
default_calendar(const struct mbx_serve_in *in, char id[MBX_ID_MAX + 1])
{
	const struct mbx_folder *f;
	size_t n;
	const char *err;
	int rv = mbx_list_folders(in->backend, &f, &n, &err);

	if (rv < 0)
		return pend_or_fail(rv);
	for (size_t i = 0; i < n; i++) {
		if (f[i].type == MBX_FOLDER_CALENDAR) {
			snprintf(id, MBX_ID_MAX + 1, "%s", f[i].id);
			return 1;
		}
	}
	return 0;
}

/*
 * The invitation a Request names (malloc'd, *len_r): a meeting request
 * mail's text/calendar part, or a calendar item's object (*etag_r its
 * version, malloc'd). 1, 0 when there is none, -1, MBX_PENDING.
 */
static int
invitation_of(const struct mbx_serve_in *in, const char *coll, const char *id, bool calendar,
              char **ics_r, size_t *len_r, char **etag_r)
{
	const char *err = NULL;
	int rv;

	*ics_r = *etag_r = NULL;
	if (calendar) {
		struct mbx_object obj = {0};
		if ((rv = mbx_fetch_object(in->backend, coll, id, &obj, &err)) != 1)
			return rv < 0 ? pend_or_fail(rv) : 0;
		*ics_r = obj.data;
		*len_r = obj.len;
		*etag_r = obj.etag;
		return 1;
	}
	struct mbx_email e;
	struct msgconv_msg m;
	memset(&e, 0, sizeof(e));
	if ((rv = mbx_fetch(in->backend, coll, id, &e, &err)) != 1) {
		mbx_email_clear(&e);
		return rv < 0 ? pend_or_fail(rv) : 0;
	}
	if (e.raw != NULL &&
	    msgconv_parse(e.raw, e.raw_len, &(struct msgconv_opts){.no_mime = true}, &m, &err) ==
	        0 &&
	    m.calendar != NULL && strcmp(m.message_class, "IPM.Schedule.Meeting.Request") == 0) {
		*ics_r = xmemdup0(m.calendar, m.calendar_len);
		*len_r = m.calendar_len;
	}
	if (e.raw != NULL)
		msgconv_msg_clear(&m);
	mbx_email_clear(&e);
	return *ics_r != NULL;
}

/*
 * 16.x SendResponse: the iTIP REPLY to the organizer by mail (not kept in
 * Sent). A message that cannot be made or sent leaves the answer as it
 * is (the calendar holds it); 0, or -1, MBX_PENDING.
 */
static int
send_reply(const struct mbx_serve_in *in, const char *user, int answer,
           const struct mbx_meeting_answer *a)
{
	static const char *const verbs[] = {"", "Accepted", "Tentative", "Declined"};
	struct mbx_send_out so;
	const char *err = NULL;
	char *msg, *subject, *text;
	size_t len;
	int rv = 0;

	if (a->organizer == NULL || a->reply == NULL)
		return 0;
	subject = xasprintf("%s: %s", verbs[answer], a->summary ? a->summary : "");
	text = xasprintf("%s has %s this invitation.\r\n", user,
	                 answer == 1   ? "accepted"
	                 : answer == 2 ? "tentatively accepted"
	                               : "declined");
	if (compose_itip_reply(user, a->organizer, subject, text, a->reply, &msg, &len, &err) ==
	    0) {
		rv = mbx_send(in->backend, msg, len, false, &so, &err);
		free(msg);
		if (rv == -1 || (rv == 1 && so.result != MBX_SEND_SENT))
			log_warn("MeetingResponse: the reply to %s was not sent: %s", a->organizer,
			         rv == -1 && err ? err : "refused");
		if (rv != MBX_PENDING)
			rv = 0;
	}
	free(subject);
	free(text);
	return rv;
}

/*
 * A meeting request mail ics[0..len) answered (*a) onto item held of
 * calendar cal, which holds that UID: the event updated to the
 * invitation's version (with the user's PARTSTAT) or, declined, removed.
 * When the calendar's event is a later revision than the invitation (an
 * older invitation answered after an update, RFC 5546 2.1.5), or when one
 * occurrence is declined, the answer is made again onto the calendar's
 * event instead (*a replaced: its PARTSTAT, or the occurrence's EXDATE,
 * and the REPLY with its SEQUENCE and times). Not the device's write:
 * only the version just read guards it, and the device's next Sync
 * reports the change. Status 1, 3 (changed meanwhile, refused); -1,
 * MBX_PENDING.
 */
static int
answer_onto(const struct mbx_serve_in *in, const char *cal, const char *held, const char *ics,
            size_t len, const char *user, int answer, const char *instance,
            struct mbx_meeting_answer *a)
{
	struct mbx_object now = {0};
	struct mbx_meeting_answer b;
	const char *err = NULL;
	bool one_declined = answer == 3 && instance != NULL;
	int rv;

	if ((rv = mbx_fetch_object(in->backend, cal, held, &now, &err)) == -1 || rv == MBX_PENDING)
		return rv;
	if (rv == 1 && now.data != NULL &&
	    (one_declined ||
	     (in->pim->newer != NULL && in->pim->newer(now.data, now.len, ics, len) == 1))) {
		if (in->pim->respond(now.data, now.len, user, answer, instance, in->now, &b,
		                     &err) == 0) {
			mbx_meeting_answer_clear(a);
			*a = b;
		} else if (one_declined) {
			/* the calendar's event has no such occurrence: nothing to decline there */
			mbx_object_clear(&now);
			return 1;
		}
	}
	if (a->object == NULL) {
		mbx_object_clear(&now);
		rv = mbx_remove(in->backend, cal, held, false, NULL, &err);
		if (rv == -1 || rv == MBX_PENDING)
			return rv;
		return rv >= 0 ? 1 : 3; /* 0: gone already; changed meanwhile: kept */
	}
	if (rv == 1)
		rv = mbx_put_object(in->backend, cal, held, now.etag, a->object, strlen(a->object),
		                    a->uid, NULL, NULL, &err);
	mbx_object_clear(&now);
	if (rv == -1 || rv == MBX_PENDING)
		return rv;
	return rv == 1 ? 1 : 3;
}

/*
 * One Request of MeetingResponse (MS-ASCMD 2.2.1.11): the invitation
 * (a meeting request mail, or a calendar item) answered for the user and
 * kept in the calendar: an accepted or tentative one written to the
 * default calendar (a calendar item: in place) with the user's PARTSTAT,
 * a declined calendar item removed (a declined mail adds nothing); a
 * mail whose UID the default calendar holds already updates that event
 * (answer_onto: a decline removes it; a later revision held keeps its
 * version, only the user's PARTSTAT set) rather than adding a second,
 * the item's id into calid (not for a decline); the REPLY to the
 * organizer when send. With an InstanceId (16.x) only that occurrence is
 * answered: its override, or an EXDATE for a decline, the calendar item
 * kept (a mail's declined occurrence: on the event the calendar holds,
 * nothing when it holds none). A
 * calendar item's change is the device's own (not echoed back); a new
 * item from a mail reaches the device in its next Sync of the calendar.
 * Status 1 done, 2 the request names nothing the user can answer, 3 the
 * mailbox could not keep it (no codec or no calendar, a device that never
 * synced it, a server's refusal); -1, MBX_PENDING.
 */
static int
meeting_answer(const struct mbx_serve_in *in, const struct wbxml_node *c, bool send,
               char calid[MBX_ID_MAX + 1])
{
	const char *coll = kid_text(c, "CollectionId"), *rid = kid_text(c, "RequestId");
	const char *ur = kid_text(c, "UserResponse"), *err = NULL;
	const char *instance = kid_text(c, "MeetingResponse:InstanceId"); /* 16.x: one occurrence */
	const char *user = in->email ? in->email : in->account;
	const struct mbx_folder *f;
	struct mbx_meeting_answer a;
	char *ics = NULL, *etag = NULL, cal[MBX_ID_MAX + 1];
	struct sstate st;
	size_t len = 0;
	int answer, rv, lr, status = 1;
	bool calendar;

	calid[0] = '\0';
	answer = ur != NULL && ur[0] >= '1' && ur[0] <= '3' && ur[1] == '\0' ? ur[0] - '0' : 0;
	if (in->pim == NULL || in->pim->respond == NULL)
		return 3; /* this mailbox keeps no calendar (the quarantine mailbox) */
	if (answer == 0 || coll == NULL || rid == NULL || user == NULL)
		return 2;
	if ((rv = mbx_folder_lookup(in->backend, coll, &f)) != 1)
		return rv < 0 ? pend_or_fail(rv) : 2;
	calendar = mbx_folder_class(f->type) == MBX_CLASS_CALENDAR;
	if ((rv = invitation_of(in, coll, rid, calendar, &ics, &len, &etag)) != 1)
		return rv < 0 ? rv : 2;
	rv = in->pim->respond(ics, len, user, answer, instance, in->now, &a, &err);
	if (rv < 0) {
		free(ics);
		free(etag);
		return 2;
	}
	/*
	 * A declined mail adds nothing (not even a series with one occurrence
	 * declined); what the calendar holds of it is still answered.
	 */
	bool keep = calendar || answer != 3;
	char held[MBX_ID_MAX + 1] = "";
	snprintf(cal, sizeof(cal), "%s", calendar ? coll : "");
	if (!calendar && (rv = default_calendar(in, cal)) != 1) {
		if (keep || rv < 0)
			status = rv < 0 ? rv : 3;
	} else if (!calendar && (rv = mbx_find_uid(in->backend, cal, a.uid, held, &err)) < 0) {
		status = pend_or_fail(rv);
	}
	if (status == 1 && held[0] != '\0') {
		/* the calendar holds the event already (answered before, or an updated invitation)
		 */
		if ((rv = answer_onto(in, cal, held, ics, len, user, answer, instance, &a)) == 1 &&
		    answer != 3)
			snprintf(calid, MBX_ID_MAX + 1, "%s", held);
		status = rv;
	} else if (status == 1 && keep && (lr = state_load(in, cal, &st)) < 0)
		status = lr;
	else if (status == 1 && keep) {
		char new_id[MBX_ID_MAX + 1] = "", cur[MBX_CURSOR_MAX + 1];
		memcpy(cur, st.cur, sizeof(cur));
		if (a.object == NULL)
			rv = mbx_remove(in->backend, cal, rid, false, cur, &err);
		else
			rv = mbx_put_object(in->backend, cal, calendar ? rid : NULL, etag, a.object,
			                    strlen(a.object), a.uid, cur, calendar ? NULL : new_id,
			                    &err);
		status = rv == MBX_PENDING || rv == -1 ? rv : rv == 1 || a.object == NULL ? 1 : 3;
		if (status == 1 && a.object != NULL && answer != 3)
			snprintf(calid, MBX_ID_MAX + 1, "%s", calendar ? rid : new_id);
		/*
		 * The device's own calendar item changed: as its own Change, not
		 * echoed back (its cursor advanced). A new one from a mail is
		 * not the device's yet: its next Sync brings it as an Add.
		 */
		if (status == 1 && calendar && lr == 1 && strcmp(cur, st.cur) != 0) {
			memcpy(st.cur, cur, sizeof(cur));
			if (state_store(in, cal, &st) < 0)
				status = -1;
		}
		sstate_clear(&st);
	}
	if (status == 1 && send && (rv = send_reply(in, user, answer, &a)) < 0)
		status = rv;
	mbx_meeting_answer_clear(&a);
	free(ics);
	free(etag);
	return status;
}

/*
 * MeetingResponse: each Request answered by meeting_answer, with its
 * RequestId and, for an accepted or tentative meeting, the CalendarId.
 */
static int
cmd_meetingresponse(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_MEETINGRESPONSE, "MeetingResponse", out, &req);
	struct wbxml_doc *doc;
	int v = version_of(in);

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "MeetingResponse:MeetingResponse");
	for (struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_MEETINGRESPONSE, "Request"))
			continue;
		const char *id = kid_text(c, "RequestId");
		char calid[MBX_ID_MAX + 1];
		bool send = v >= 160 && kid(c, "MeetingResponse:SendResponse") != NULL;
		int status = meeting_answer(in, c, send, calid);
		if (status < 0) {
			wbxml_doc_free(&doc);
			wbxml_doc_free(&rq);
			return failed(status, "sync state or mailbox failure", out);
		}
		struct wbxml_node *x = wbxml_addn(r, "Result");
		wbxml_addn_text(x, "RequestId", id ? id : "");
		add_int(x, "Status", status);
		if (status == 1 && calid[0] != '\0')
			wbxml_addn_text(x, "CalendarId", calid);
	}
	wbxml_doc_free(&rq);
	return finish(&doc, out);
}

/* FolderUpdate / FolderDelete: 3 for our (special) folders, else 4. */
static int
cmd_folder_change(const struct mbx_serve_in *in, const char *root, const char *qroot,
                  struct mbx_serve_out *out)
{
	struct wbxml_node *req;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_FOLDERHIERARCHY, root, out, &req);
	int status;

	if (rq == NULL)
		return 0;
	const char *id = kid_text(req, "ServerId");
	status = id != NULL ? folder_known(in, id) : 0;
	wbxml_doc_free(&rq);
	if (status < 0)
		return failed(status, "mailbox failure", out);
	return status_only(qroot, status ? 3 : 4, out);
}

/* ---- FolderCreate, FolderUpdate, FolderDelete on a backend that changes folders ---- */

/* Folders one FolderDelete takes from the device's state at most (the rest: its next FolderSync).
 */
#define FOLDER_DELETE_MAX 1000

/*
 * The device's FolderSync state for a folder change: 1 when key is its
 * current key (st loaded), 0 when it is not (the answer is 9), -1 or
 * MBX_PENDING.
 */
static int
fc_state(const struct mbx_serve_in *in, const char *key, struct sstate *st)
{
	int lr = state_load(in, MBX_STATE_FOLDERSYNC, st);

	if (lr <= 0)
		return lr;
	if (!st->key[0] || strcmp(st->key, key) != 0) {
		sstate_clear(st);
		return 0;
	}
	return 1;
}

/*
 * A display name a phone may give: not empty, no control character, at
 * most 255 bytes (Exchange's limit). The backend refuses what it cannot
 * hold (its hierarchy delimiter) itself.
 */
static bool
fc_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 255)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/*
 * The state after the device's own folder change: a new key, and the
 * folder list the device has once it applied the change: folder set_id (if
 * any) at the version the backend now shows, drop[0..n_drop) gone (and
 * their Sync states with them), so that its next FolderSync does not
 * report the change back; other devices' states are untouched, so they do.
 * Writes st (and frees it). 0, -1 or MBX_PENDING.
 */
static int
fc_commit(const struct mbx_serve_in *in, struct sstate *st, const char *set_id,
          char (*drop)[MBX_ID_MAX + 1], size_t n_drop)
{
	struct st_items work = {0};
	const struct mbx_folder *f;
	int rv;

	items_copy(&work, &st->items);
	if (set_id != NULL) {
		if ((rv = mbx_folder_lookup(in->backend, set_id, &f)) < 0) {
			items_clear(&work);
			return pend_or_fail(rv);
		}
		if (rv == 1) {
			struct st_item *have = items_find(&work, set_id);
			if (have == NULL)
				have = items_add(&work, set_id, 0, false);
			if (have != NULL)
				have->version = folder_version(f);
		}
	}
	for (size_t d = 0; d < n_drop; d++) {
		for (size_t j = 0; j < work.n; j++) {
			if (strcmp(work.v[j].id, drop[d]) == 0) {
				items_remove(&work, j);
				break;
			}
		}
		if (in->state.del &&
		    in->state.del(in->state.arg, in->account, in->device_id, drop[d]) < 0) {
			items_clear(&work);
			return -1;
		}
	}
	state_advance(in, MBX_STATE_FOLDERSYNC, st, &work, false, true);
	return state_store(in, MBX_STATE_FOLDERSYNC, st);
}

/* The EAS status of a backend's refusal; 0 for another answer. */
static int
fc_refusal(int rv, int exists, int special)
{
	switch (rv) {
	case MBX_FOLDER_EXISTS:
		return exists;
	case MBX_FOLDER_NOT_FOUND:
		return 4;
	case MBX_FOLDER_NO_PARENT:
		return 5;
	case MBX_FOLDER_SPECIAL:
		return special;
	case MBX_FOLDER_BAD_NAME:
		return 10;
	default:
		return 0;
	}
}

/* One folder change under way: its request, the device's FolderSync state. */
struct fc {
	const char *root; /* the answer's root, "FolderHierarchy:FolderCreate"... */
	struct wbxml_doc *rq;
	struct wbxml_node *req;
	const char *key; /* the request's SyncKey, or NULL */
	struct sstate st;
	const char *err;
	char (*drop)[MBX_ID_MAX + 1]; /* FolderDelete: the folders that go */
	size_t n_drop;
};

/*
 * The request of folder change name (its answer's root root) decoded into
 * fc: 1, or 0 when it was not (out holds the answer).
 */
static int
fc_open(const struct mbx_serve_in *in, const char *name, const char *root, struct fc *fc,
        struct mbx_serve_out *out)
{
	memset(fc, 0, sizeof(*fc));
	fc->root = root;
	fc->rq = decode_root(in, WBXML_PAGE_FOLDERHIERARCHY, name, out, &fc->req);
	if (fc->rq == NULL)
		return 0;
	fc->key = kid_text(fc->req, "SyncKey");
	return 1;
}

/*
 * The device's FolderSync state loaded for fc's SyncKey: 0 it is the
 * current key, 9 it is not, -1 a failure (*rv_r: -1 or MBX_PENDING).
 */
static int
fc_key(const struct mbx_serve_in *in, struct fc *fc, int *rv_r)
{
	int rv = fc_state(in, fc->key, &fc->st);

	*rv_r = rv;
	return rv < 0 ? -1 : rv == 0 ? 9 : 0;
}

/*
 * The backend's answer rv to a folder change: 0 done, the EAS status of a
 * refusal (exists, special, 4, 5, 10; 6 when the backend failed), or -1
 * when it is pending.
 */
static int
fc_op(int rv, int exists, int special)
{
	int status;

	if (rv == 1)
		return 0;
	if ((status = fc_refusal(rv, exists, special)) != 0)
		return status;
	return rv == MBX_PENDING ? -1 : 6;
}

/*
 * fc answered and freed: status 1 (done: the new SyncKey, and server_id
 * for a create), another status alone, or -1: failure rv (-1 or
 * MBX_PENDING, the request run again).
 */
static int
fc_close(struct fc *fc, int status, int rv, const char *server_id, struct mbx_serve_out *out)
{
	int r;

	if (status == 1) {
		struct wbxml_doc *doc = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(doc, fc->root);
		add_int(root, "Status", 1);
		wbxml_addn_text(root, "SyncKey", fc->st.key);
		if (server_id != NULL)
			wbxml_addn_text(root, "ServerId", server_id);
		r = finish(&doc, out);
	} else if (status > 0) {
		r = status_only(fc->root, status, out);
	} else {
		r = failed(rv, fc->err ? fc->err : "sync state or mailbox failure", out);
	}
	free(fc->drop);
	sstate_clear(&fc->st);
	wbxml_doc_free(&fc->rq);
	return r;
}

/* The state after the change (fc_commit): status 1, or -1 (*rv_r the failure). */
static int
fc_committed(const struct mbx_serve_in *in, struct fc *fc, const char *set_id, int *rv_r)
{
	*rv_r = fc_commit(in, &fc->st, set_id, fc->drop, fc->n_drop);
	return *rv_r < 0 ? -1 : 1;
}

/*
 * FolderCreate (MS-ASCMD 2.2.1.3) on a backend that changes folders: a mail
 * folder (Type 1 or 12; another type: 10, the mailbox holds mail only)
 * named DisplayName under ParentId. 1 with the new SyncKey and ServerId;
 * 2 a folder of that name is there, 5 no such parent, 9 not the device's
 * current FolderSync key, 10 malformed (a name that is empty, has a control
 * character or the mailbox's hierarchy delimiter), 6 the backend failed.
 */
static int
cmd_folder_create(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct fc fc;
	const struct mbx_folder *pf;
	char new_id[MBX_ID_MAX + 1];
	int rv = -1, status;

	if (!fc_open(in, "FolderCreate", "FolderHierarchy:FolderCreate", &fc, out))
		return 0;
	const char *parent = kid_text(fc.req, "ParentId"), *name = kid_text(fc.req, "DisplayName");
	long long type = kid_int(fc.req, "Type", 0, 1000, -1);
	if (fc.key == NULL || parent == NULL || strlen(parent) > MBX_ID_MAX || !fc_name_ok(name) ||
	    (type != 1 && type != MBX_FOLDER_MAIL))
		status = 10;
	else if ((status = fc_key(in, &fc, &rv)) != 0)
		;
	else if (strcmp(parent, "0") != 0 &&
	         (rv = mbx_folder_lookup(in->backend, parent, &pf)) != 1)
		status = rv < 0 ? -1 : 5;
	else if ((status = fc_op(rv = mbx_folder_create(in->backend, parent, name, new_id, &fc.err),
	                         2, 3)) == 0)
		status = fc_committed(in, &fc, new_id, &rv);
	return fc_close(&fc, status, rv, new_id, out);
}

/*
 * FolderUpdate (MS-ASCMD 2.2.1.6) on a backend that changes folders:
 * ServerId renamed to DisplayName and/or moved under ParentId, its id
 * kept. 1 with the new SyncKey; 2 a special folder (Inbox, Drafts, Sent,
 * Deleted Items, Outbox: MS-ASCMD gives them 2 here, 3 being the Recipient
 * information folder only) or a folder of that name is there, 4 no such
 * folder, 5 no such parent (or the folder itself or one below it), 9, 10,
 * 6 as FolderCreate.
 */
static int
cmd_folder_update(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct fc fc;
	const struct mbx_folder *f;
	int rv = -1, status;

	if (!fc_open(in, "FolderUpdate", "FolderHierarchy:FolderUpdate", &fc, out))
		return 0;
	const char *id = kid_text(fc.req, "ServerId"), *parent = kid_text(fc.req, "ParentId");
	const char *name = kid_text(fc.req, "DisplayName");
	if (fc.key == NULL || id == NULL || parent == NULL || strlen(parent) > MBX_ID_MAX ||
	    !fc_name_ok(name))
		status = 10;
	else if ((status = fc_key(in, &fc, &rv)) != 0)
		;
	else if ((rv = mbx_folder_lookup(in->backend, id, &f)) != 1)
		status = rv < 0 ? -1 : 4;
	else if (f->type != MBX_FOLDER_MAIL)
		status = 2;
	else if ((status = fc_op(rv = mbx_folder_rename(in->backend, id, parent, name, &fc.err), 2,
	                         2)) == 0)
		status = fc_committed(in, &fc, id, &rv);
	return fc_close(&fc, status, rv, NULL, out);
}

/*
 * The ids of folder id and of every folder below it, as the backend lists
 * them now, into drop (at most FOLDER_DELETE_MAX; malloc'd): their count, or
 * -1 or MBX_PENDING.
 */
static int
fc_subtree(const struct mbx_serve_in *in, const char *id, char (**drop_r)[MBX_ID_MAX + 1],
           size_t *n_r)
{
	const struct mbx_folder *f;
	size_t nf, n = 0;
	const char *err;
	int rv;

	*drop_r = NULL;
	*n_r = 0;
	if ((rv = mbx_list_folders(in->backend, &f, &nf, &err)) < 0)
		return pend_or_fail(rv);
	char(*drop)[MBX_ID_MAX + 1] = xcalloc(nf + 1, sizeof(*drop));
	for (size_t i = 0; i < nf && n < FOLDER_DELETE_MAX; i++) {
		/* walk up from f[i]: is id on the way? (depth capped: a loop is not ours) */
		const char *cur = f[i].id;
		for (size_t depth = 0; cur != NULL && depth <= nf; depth++) {
			if (strcmp(cur, id) == 0) {
				if (strlen(f[i].id) <= MBX_ID_MAX)
					snprintf(drop[n++], MBX_ID_MAX + 1, "%s", f[i].id);
				break;
			}
			const char *up = NULL;
			for (size_t k = 0; k < nf && up == NULL; k++)
				if (strcmp(f[k].id, cur) == 0)
					up = f[k].parent_id;
			cur = up;
		}
	}
	*drop_r = drop;
	*n_r = n;
	return 0;
}

/*
 * FolderDelete (MS-ASCMD 2.2.1.4) on a backend that changes folders:
 * ServerId deleted with its messages and the folders below it. 1 with the
 * new SyncKey; 3 a special folder, 4 no such folder, 9, 10, 6 as
 * FolderCreate.
 */
static int
cmd_folder_delete(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct fc fc;
	const struct mbx_folder *f;
	int rv = -1, status;

	if (!fc_open(in, "FolderDelete", "FolderHierarchy:FolderDelete", &fc, out))
		return 0;
	const char *id = kid_text(fc.req, "ServerId");
	if (fc.key == NULL || id == NULL)
		status = 10;
	else if ((status = fc_key(in, &fc, &rv)) != 0)
		;
	else if ((rv = mbx_folder_lookup(in->backend, id, &f)) != 1)
		status = rv < 0 ? -1 : 4;
	else if (f->type != MBX_FOLDER_MAIL)
		status = 3;
	else if ((rv = fc_subtree(in, id, &fc.drop, &fc.n_drop)) < 0)
		status = -1;
	else if ((status = fc_op(rv = mbx_folder_delete(in->backend, id, &fc.err), 6, 3)) == 0)
		status = fc_committed(in, &fc, NULL, &rv);
	return fc_close(&fc, status, rv, NULL, out);
}

/* ---- Search ------------------------------------------------------------ */

/* Results one Search answer holds at most, and its default Range (MS-ASCMD 2.2.3.143.3). */
#define SEARCH_RANGE_MAX 100

/* The LongId of folder's item into out (MBX_FILEREF_MAX + 1): 0, or -1 when too long. */
static int
longid_format(const char *folder, const char *item, char out[MBX_FILEREF_MAX + 1])
{
	struct sbuf b = {0};
	int rv = -1;

	fileref_escape(&b, folder);
	sbuf_addn(&b, ":", 1);
	fileref_escape(&b, item);
	if (b.len <= MBX_FILEREF_MAX) {
		memcpy(out, b.p, b.len + 1);
		rv = 0;
	}
	free(b.p);
	return rv;
}

/* An EAS date-time ("2026-11-28T05:55:14.000Z", the fraction optional): 0 and *t_r, or -1. */
static int
search_date(const char *text, int64_t *t_r)
{
	char buf[40];
	const char *err, *dot;
	size_t n;

	if (text == NULL || (n = strlen(text)) >= sizeof(buf))
		return -1;
	memcpy(buf, text, n + 1);
	if ((dot = strchr(buf, '.')) != NULL) {
		size_t d = (size_t)(dot - buf), k = d + 1;
		while (isdigit((unsigned char)buf[k]))
			k++;
		if (k == d + 1 || strcmp(buf + k, "Z") != 0)
			return -1;
		memcpy(buf + d, "Z", 2);
	}
	return parse_time(buf, t_r, &err);
}

/*
 * One condition of a mailbox Query (MS-ASCMD 2.2.3.139.2) into q: Class
 * (only Email has items here: *none_r otherwise), CollectionId, FreeText
 * (split into words at blanks), GreaterThan / LessThan on
 * Email:DateReceived, And (its conditions). Returns 1, 2 (invalid request)
 * or 8 (too complex: Or of more than one condition, EqualTo, more words or
 * folders than the caps). words holds the FreeText copies.
 */
static int
search_cond(const struct wbxml_node *c, struct mbx_search *q, struct sbuf *words, bool *none_r,
            int depth)
{
	if (depth > 4)
		return 8;
	if (is_el(c, WBXML_PAGE_SEARCH, "And") ||
	    (is_el(c, WBXML_PAGE_SEARCH, "Or") && c->first_child != NULL &&
	     c->first_child->next == NULL)) {
		for (const struct wbxml_node *k = c->first_child; k; k = k->next) {
			int st = search_cond(k, q, words, none_r, depth + 1);
			if (st != 1)
				return st;
		}
		return 1;
	}
	if (is_el(c, WBXML_PAGE_AIRSYNC, "Class")) {
		const char *t = wbxml_text(c);
		if (t == NULL || strcmp(t, "Email") != 0)
			*none_r = true;
		return 1;
	}
	if (is_el(c, WBXML_PAGE_AIRSYNC, "CollectionId")) {
		const char *t = wbxml_text(c);
		if (t == NULL || *t == '\0' || strlen(t) > MBX_ID_MAX)
			return 2;
		if (q->n_folders == MBX_SEARCH_FOLDERS)
			return 8;
		q->folders[q->n_folders++] = t;
		return 1;
	}
	if (is_el(c, WBXML_PAGE_SEARCH, "FreeText")) {
		const char *p = wbxml_text(c) ? wbxml_text(c) : "";
		while (*p != '\0') {
			size_t n;
			p += strspn(p, " \t\r\n");
			if ((n = strcspn(p, " \t\r\n")) == 0)
				break;
			if (q->n_words == MBX_SEARCH_WORDS || n > MBX_SEARCH_WORD)
				return 8;
			q->words[q->n_words++] = (const char *)(uintptr_t)words->len;
			sbuf_addn(words, p, n);
			sbuf_addn(words, "", 1);
			p += n;
		}
		return 1;
	}
	if (is_el(c, WBXML_PAGE_SEARCH, "GreaterThan") || is_el(c, WBXML_PAGE_SEARCH, "LessThan")) {
		int64_t t;
		if (kid(c, "Email:DateReceived") == NULL ||
		    search_date(kid_text(c, "Search:Value"), &t) < 0)
			return 2;
		if (is_el(c, WBXML_PAGE_SEARCH, "GreaterThan"))
			q->since = t + 1; /* strictly after */
		else
			q->before = t;
		return 1;
	}
	return 8;
}

/*
 * The folders of q's CollectionIds with every folder under them
 * (DeepTraversal), up to MBX_SEARCH_FOLDERS: 0, -1 or MBX_PENDING.
 */
static int
search_deep(const struct mbx_serve_in *in, struct mbx_search *q)
{
	const struct mbx_folder *f;
	const char *err;
	size_t nf;
	int rv = mbx_list_folders(in->backend, &f, &nf, &err);

	if (rv < 0)
		return rv;
	for (size_t k = 0; k < q->n_folders && q->n_folders < MBX_SEARCH_FOLDERS; k++)
		for (size_t i = 0; i < nf && q->n_folders < MBX_SEARCH_FOLDERS; i++) {
			bool have = false;
			if (strcmp(f[i].parent_id, q->folders[k]) != 0)
				continue;
			for (size_t j = 0; j < q->n_folders; j++)
				have = have || strcmp(q->folders[j], f[i].id) == 0;
			if (!have)
				q->folders[q->n_folders++] = f[i].id;
		}
	return 0;
}

/* A Search Range "m-n" (m <= n): 0, or -1 when malformed. */
static int
search_range(const char *t, size_t *first_r, size_t *last_r)
{
	unsigned long long a, b;
	int used = 0;

	if (t == NULL) {
		*first_r = 0;
		*last_r = SEARCH_RANGE_MAX - 1;
		return 0;
	}
	if (!isdigit((unsigned char)t[0]) || sscanf(t, "%llu-%llu%n", &a, &b, &used) != 2 ||
	    t[used] != '\0' || a > b || b > 1000000)
		return -1;
	*first_r = (size_t)a;
	*last_r = (size_t)b;
	return 0;
}

/*
 * The results from:first to last of a mailbox search (each hit fetched as
 * the client sees it, its Properties as ItemOperations Fetch writes them)
 * into store, then Range and Total; one empty Result when there are none.
 * 0, -1, MBX_PENDING.
 */
static int
search_results(const struct mbx_serve_in *in, const struct mbx_search_out *res, size_t first,
               size_t last, const struct body_prefs *bp, struct wbxml_node *store)
{
	size_t shown = 0;
	char lid[MBX_FILEREF_MAX + 1], range[64];

	for (size_t i = first; i < res->n && i <= last; i++) {
		const struct mbx_search_hit *h = &res->hits[i];
		struct mbx_email e;
		int fr = fetch_as_client_sees(in, h->folder, h->id, &e);
		if (fr < 0) {
			mbx_email_clear(&e);
			return fr;
		}
		if (fr == 1 && longid_format(h->folder, h->id, lid) == 0) {
			struct wbxml_node *r = wbxml_addn(store, "Search:Result");
			wbxml_addn_text(r, "AirSync:Class", "Email");
			wbxml_addn_text(r, "Search:LongId", lid);
			wbxml_addn_text(r, "AirSync:CollectionId", h->folder);
			add_email(in, wbxml_addn(r, "Search:Properties"), h->folder, &e, h->id, bp);
			shown++;
		}
		mbx_email_clear(&e);
	}
	if (shown == 0) {
		wbxml_addn(store, "Search:Result");
	} else {
		snprintf(range, sizeof(range), "%zu-%zu", first, first + shown - 1);
		wbxml_addn_text(store, "Search:Range", range);
	}
	add_int(store, "Search:Total", (long long)res->total);
	return 0;
}

/* ---- the global address list: Search GAL, ResolveRecipients ---- */

/*
 * A picture the phone asked for: Status 1 and Data (base64), or the
 * reason there is none (173 none, 174 over MaxSize, 175 MaxPictures
 * reached). pictures_left counts down the phone's MaxPictures.
 */
static void
add_picture(struct wbxml_node *parent, const char *ns, const struct mbx_gal_entry *e,
            long long *pictures_left)
{
	char q[64];
	struct wbxml_node *p;

	snprintf(q, sizeof(q), "%s:Picture", ns);
	p = wbxml_addn(parent, q);
	snprintf(q, sizeof(q), "%s:Status", ns);
	if (e->picture == NULL) {
		add_int(p, q, e->picture_too_large ? 174 : 173);
		return;
	}
	if (*pictures_left <= 0) {
		add_int(p, q, 175);
		return;
	}
	(*pictures_left)--;
	add_int(p, q, 1);
	char *b = xmalloc(B64_ENCODED_LEN(e->picture_len) + 1);
	b64_encode(e->picture, e->picture_len, b);
	snprintf(q, sizeof(q), "%s:Data", ns);
	wbxml_addn_text(p, q, b);
	free(b);
}

/* The Picture options of a request (MaxSize, MaxPictures): whether asked. */
static bool
picture_opts(const struct wbxml_node *opts, const char *qname, const char *ns, size_t *max_size_r,
             long long *max_pictures_r)
{
	const struct wbxml_node *p = opts ? kid(opts, qname) : NULL;
	char q[64];

	if (p == NULL)
		return false;
	snprintf(q, sizeof(q), "%s:MaxSize", ns);
	*max_size_r = (size_t)kid_int(p, q, 1, 100LL * 1024 * 1024, 100LL * 1024 * 1024);
	snprintf(q, sizeof(q), "%s:MaxPictures", ns);
	*max_pictures_r = kid_int(p, q, 0, 9999, 9999);
	return true;
}

/* One entry's Properties of a GAL Search (MS-ASCMD 2.2.3.135.3; only what it has). */
static void
add_gal_properties(struct wbxml_node *props, const struct mbx_gal_entry *e, bool pictures,
                   long long *pictures_left)
{
	static const struct {
		const char *qname;
		size_t off;
	} fields[] = {
	    {"GAL:DisplayName", offsetof(struct mbx_gal_entry, display_name)},
	    {"GAL:Phone", offsetof(struct mbx_gal_entry, phone)},
	    {"GAL:Office", offsetof(struct mbx_gal_entry, office)},
	    {"GAL:Title", offsetof(struct mbx_gal_entry, title)},
	    {"GAL:Company", offsetof(struct mbx_gal_entry, company)},
	    {"GAL:Alias", offsetof(struct mbx_gal_entry, alias)},
	    {"GAL:FirstName", offsetof(struct mbx_gal_entry, first_name)},
	    {"GAL:LastName", offsetof(struct mbx_gal_entry, last_name)},
	    {"GAL:HomePhone", offsetof(struct mbx_gal_entry, home_phone)},
	    {"GAL:MobilePhone", offsetof(struct mbx_gal_entry, mobile_phone)},
	    {"GAL:EmailAddress", offsetof(struct mbx_gal_entry, email)},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = *(char *const *)((const char *)e + fields[i].off);
		if (v != NULL && *v != '\0')
			wbxml_addn_text(props, fields[i].qname, v);
	}
	if (pictures)
		add_picture(props, "GAL", e, pictures_left);
}

/*
 * Search with Store Name GAL (MS-ASCMD 2.2.1.16): the entries whose names
 * or address begin with the Query, the Range of them (default 0-99, at most
 * 100), Total all matches; no address list: none. Store Status 2 for an
 * empty or over-long Query or a malformed Range, 3 when the directory
 * cannot be read. Pictures (14.1) as the Options' Picture asks.
 */
static int
search_gal(const struct mbx_serve_in *in, const struct wbxml_node *st, struct wbxml_node *store,
           int *rv_r)
{
	const struct wbxml_node *opts = kid(st, "Search:Options");
	const char *query = kid_text(st, "Search:Query"), *err;
	struct mbx_gal_out res = {0};
	size_t first, last, max_size = 0;
	long long pictures_left = 0;
	bool pictures = version_of(in) >= 141 &&
	                picture_opts(opts, "Search:Picture", "Search", &max_size, &pictures_left);
	int rv;

	*rv_r = 0;
	if (query == NULL || *query == '\0' || strlen(query) > MBX_GAL_QUERY_MAX ||
	    search_range(opts ? kid_text(opts, "Search:Range") : NULL, &first, &last) < 0)
		return 2;
	if (last - first >= SEARCH_RANGE_MAX)
		last = first + SEARCH_RANGE_MAX - 1;
	rv = mbx_gal_search(in->backend, query, MBX_GAL_PREFIX,
	                    last + 1 > MBX_GAL_MAX ? MBX_GAL_MAX : last + 1,
	                    pictures ? max_size : 0, &res, &err);
	if (rv < 0) {
		*rv_r = rv;
		return 3;
	}
	add_int(store, "Search:Status", 1);
	for (size_t i = first; i < res.n && i <= last; i++) {
		struct wbxml_node *r = wbxml_addn(store, "Search:Result");
		add_gal_properties(wbxml_addn(r, "Search:Properties"), &res.e[i], pictures,
		                   &pictures_left);
	}
	if (first < res.n) {
		char range[48];
		snprintf(range, sizeof(range), "%zu-%zu", first, (last < res.n ? last : res.n - 1));
		wbxml_addn_text(store, "Search:Range", range);
	} else {
		wbxml_addn(store, "Search:Result");
	}
	add_int(store, "Search:Total", (long long)(res.total > res.n ? res.total : res.n));
	mbx_gal_out_clear(&res);
	return 1;
}

#define RESOLVE_TO_MAX        100 /* To elements one request holds at most */
#define RESOLVE_AMBIGUOUS_DEF 19  /* suggestions for an ambiguous To when not told */

/*
 * ResolveRecipients (MS-ASCMD 2.2.1.15): each To looked up in the global
 * address list: an address exactly (when it has an '@'), else names and
 * addresses beginning with it. Response Status 1 one entry, 2 several (all
 * of them suggested, up to MaxAmbiguousRecipients), 3 several with more
 * than suggested, 4 none. abqd keeps no certificates and no free/busy
 * data for others: Certificates Status 7 (none valid), Availability
 * Status 163 (not retrievable; the phone should not retry). Pictures (14.1)
 * as asked. More than 100 To, a To over 256 bytes, or none: Status 5; the
 * directory unreadable: Status 6.
 */
static int
cmd_resolverecipients(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *r;
	struct wbxml_doc *rq =
	    decode_root(in, WBXML_PAGE_RESOLVERECIPIENTS, "ResolveRecipients", out, &req);
	const struct wbxml_node *opts;
	struct wbxml_doc *doc;
	size_t n_to = 0, max_size = 0;
	long long ambiguous, cert, pictures_left = 0;
	bool pictures, availability;
	int rv = 0, status = 1;

	if (rq == NULL)
		return 0;
	opts = kid(req, "ResolveRecipients:Options");
	ambiguous = kid_int(opts, "ResolveRecipients:MaxAmbiguousRecipients", 0, 9999,
	                    RESOLVE_AMBIGUOUS_DEF);
	cert = kid_int(opts, "ResolveRecipients:CertificateRetrieval", 1, 3, 1);
	availability = opts != NULL && kid(opts, "ResolveRecipients:Availability") != NULL;
	pictures =
	    version_of(in) >= 141 && picture_opts(opts, "ResolveRecipients:Picture",
	                                          "ResolveRecipients", &max_size, &pictures_left);
	for (const struct wbxml_node *c = req->first_child; c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_RESOLVERECIPIENTS, "To"))
			continue;
		const char *to = wbxml_text(c);
		if (to == NULL || *to == '\0' || strlen(to) > MBX_GAL_QUERY_MAX)
			status = 5;
		n_to++;
	}
	if (n_to == 0 || n_to > RESOLVE_TO_MAX)
		status = 5;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "ResolveRecipients:ResolveRecipients");
	add_int(r, "Status", status);
	for (const struct wbxml_node *c = req->first_child; status == 1 && c; c = c->next) {
		if (!is_el(c, WBXML_PAGE_RESOLVERECIPIENTS, "To"))
			continue;
		const char *to = wbxml_text(c), *err;
		struct mbx_gal_out res = {0};
		bool address = strchr(to, '@') != NULL;
		size_t want =
		    (size_t)ambiguous + 1 > MBX_GAL_MAX ? MBX_GAL_MAX : (size_t)ambiguous + 1;

		/* An address: that entry exactly; none, or not an address: a name. */
		rv = address ? mbx_gal_search(in->backend, to, MBX_GAL_ADDRESS, 1,
		                              pictures ? max_size : 0, &res, &err)
		             : 0;
		if (rv >= 0 && res.n == 0) {
			mbx_gal_out_clear(&res);
			rv = mbx_gal_search(in->backend, to, MBX_GAL_PREFIX, want,
			                    pictures ? max_size : 0, &res, &err);
		}
		if (rv < 0) {
			mbx_gal_out_clear(&res);
			if (rv == MBX_PENDING)
				break;
			status = 6;
			break;
		}
		size_t total = res.total > res.n ? res.total : res.n;
		size_t shown =
		    res.n == 1 ? 1 : (res.n < (size_t)ambiguous ? res.n : (size_t)ambiguous);
		struct wbxml_node *x = wbxml_addn(r, "Response");
		wbxml_addn_text(x, "To", to);
		add_int(x, "Status", res.n == 0 ? 4 : res.n == 1 ? 1 : total > shown ? 3 : 2);
		add_int(x, "RecipientCount", (long long)shown);
		for (size_t i = 0; i < shown; i++) {
			const struct mbx_gal_entry *e = &res.e[i];
			struct wbxml_node *y = wbxml_addn(x, "Recipient");
			add_int(y, "Type", 1); /* a GAL entry */
			wbxml_addn_text(y, "DisplayName",
			                e->display_name ? e->display_name
			                : e->email      ? e->email
			                                : "");
			wbxml_addn_text(y, "EmailAddress", e->email ? e->email : "");
			if (availability)
				add_int(wbxml_addn(y, "Availability"), "Status", 163);
			if (cert != 1) {
				struct wbxml_node *cs = wbxml_addn(y, "Certificates");
				add_int(cs, "Status", 7);
				add_int(cs, "CertificateCount", 0);
			}
			if (pictures)
				add_picture(y, "ResolveRecipients", e, &pictures_left);
		}
		mbx_gal_out_clear(&res);
	}
	wbxml_doc_free(&rq);
	if (rv == MBX_PENDING) {
		wbxml_doc_free(&doc);
		return failed(rv, "directory failure", out);
	}
	if (status != 1) {
		wbxml_doc_free(&doc);
		return status_only("ResolveRecipients:ResolveRecipients", status, out);
	}
	return finish(&doc, out);
}

/*
 * Search (MS-ASCMD 2.2.1.16). Store Mailbox: the backend's search
 * (mailbox.h) of the folders the Query names (with the folders under them
 * on DeepTraversal; none: every mail folder), Range (default 0-99) cut to
 * 100 results, Total all matches. GAL: abqd has none: an empty Result and
 * Total 0, as a server with an empty address list. DocumentLibrary: Store
 * Status 3 (not served); another Name, or a malformed Query or Range: 2;
 * a Query beyond what is searched (Or of several conditions, EqualTo,
 * over the caps): 8; a backend failure: 3.
 */
static int
cmd_search(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	struct wbxml_node *req, *r, *store;
	struct wbxml_doc *rq = decode_root(in, WBXML_PAGE_SEARCH, "Search", out, &req);
	struct wbxml_node *st = rq ? kid(req, "Search:Store") : NULL;
	const char *name = st ? kid_text(st, "Search:Name") : NULL, *err;
	struct wbxml_node *query = st ? kid(st, "Search:Query") : NULL;
	struct wbxml_node *opts = st ? kid(st, "Search:Options") : NULL;
	struct mbx_search q = {0};
	struct mbx_search_out res = {0};
	struct sbuf words = {0};
	struct wbxml_doc *doc;
	size_t first = 0, last = 0;
	bool none = false;
	int status = 1, rv = 0;

	if (rq == NULL)
		return 0;
	doc = wbxml_doc_new();
	r = wbxml_addn_root(doc, "Search:Search");
	add_int(r, "Search:Status", 1);
	store = wbxml_addn(wbxml_addn(r, "Search:Response"), "Search:Store");
	if (name != NULL && strcasecmp(name, "GAL") == 0) {
		status = search_gal(in, st, store, &rv);
		if (status != 1 && rv != MBX_PENDING)
			add_int(store, "Search:Status", status);
		goto done;
	}
	if (name == NULL || strcasecmp(name, "Mailbox") != 0 || query == NULL ||
	    search_range(opts ? kid_text(opts, "Search:Range") : NULL, &first, &last) < 0)
		status = name != NULL && strcasecmp(name, "DocumentLibrary") == 0 ? 3 : 2;
	for (struct wbxml_node *c = query ? query->first_child : NULL; status == 1 && c;
	     c = c->next)
		status = search_cond(c, &q, &words, &none, 0);
	if (status == 1) {
		/* the FreeText words were kept as offsets into words until it stopped growing */
		for (size_t i = 0; i < q.n_words; i++)
			q.words[i] = words.p + (uintptr_t)q.words[i];
		if (last - first >= SEARCH_RANGE_MAX)
			last = first + SEARCH_RANGE_MAX - 1;
		q.first = first;
		q.last = last;
		if (q.n_folders > 0 && opts != NULL && kid(opts, "Search:DeepTraversal") != NULL)
			rv = search_deep(in, &q);
		if (rv == 0 && !none)
			rv = mbx_search(in->backend, &q, &res, &err);
		else if (rv == 0)
			rv = 1;
		if (rv == 0)
			status = 2; /* a CollectionId the mailbox does not have */
		else if (rv == -1)
			status = 3;
	}
	add_int(store, "Search:Status", status);
	if (status == 1 && rv != MBX_PENDING) {
		struct body_prefs bp = read_prefs(opts);
		rv = search_results(in, &res, first, last, &bp, store);
	}
done:
	mbx_search_out_clear(&res);
	free(words.p);
	wbxml_doc_free(&rq);
	if (rv == MBX_PENDING || (rv < 0 && status == 1)) {
		wbxml_doc_free(&doc);
		return failed(rv, "sync state or mailbox failure", out);
	}
	return finish(&doc, out);
}

/* ---- the dispatcher --------------------------------------------------- */

/* "Retry later" in HTTP: 503 and Retry-After (an hour: the phone keeps its mail). */
static int
retry_later(const char *detail, struct mbx_serve_out *out)
{
	out->headers[out->n_headers][0] = "Retry-After";
	out->headers[out->n_headers++][1] = "3600";
	return http_only(503, detail, out);
}

/* Answer one command at version v (the table at the top of this file). */
static int
serve_cmd(const struct mbx_serve_in *in, int v, struct mbx_serve_out *out)
{
	switch (in->cmd) {
	case EAS_CMD_PROVISION:
		return cmd_provision(in, v, out);
	case EAS_CMD_SETTINGS:
		return cmd_settings(in, v, out);
	case EAS_CMD_FOLDERSYNC:
		return cmd_foldersync(in, v, out);
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
		if (mbx_can_send(in->backend))
			return cmd_compose(in, v, out);
		if (v < 140) /* no status in the body before 14.0: the HTTP form of "retry later" */
			return retry_later("mail cannot be sent from the quarantine mailbox", out);
		return status_only(eas_status_root(in->cmd), 111, out);
	case EAS_CMD_GETATTACHMENT:
		if (in->backend->ops->fetch_part != NULL)
			return cmd_getattachment(in, out);
		return retry_later("no attachment in the quarantine mailbox", out);
	case EAS_CMD_MOVEITEMS:
		return cmd_moveitems(in, out);
	case EAS_CMD_SEARCH:
		return cmd_search(in, out);
	case EAS_CMD_FOLDERCREATE:
		if (mbx_can_change_folders(in->backend))
			return cmd_folder_create(in, out);
		return status_only("FolderHierarchy:FolderCreate", 6, out);
	case EAS_CMD_FOLDERUPDATE:
		if (mbx_can_change_folders(in->backend))
			return cmd_folder_update(in, out);
		return cmd_folder_change(in, "FolderUpdate", "FolderHierarchy:FolderUpdate", out);
	case EAS_CMD_FOLDERDELETE:
		if (mbx_can_change_folders(in->backend))
			return cmd_folder_delete(in, out);
		return cmd_folder_change(in, "FolderDelete", "FolderHierarchy:FolderDelete", out);
	case EAS_CMD_MEETINGRESPONSE:
		return cmd_meetingresponse(in, out);
	case EAS_CMD_RESOLVERECIPIENTS:
		return cmd_resolverecipients(in, out);
	case EAS_CMD_VALIDATECERT:
		return status_only("ValidateCert:ValidateCert", 17, out);
	case EAS_CMD_FIND:
		if (v < 161) /* not a command of this version (501), not "forbidden" (403) */
			return http_only(501, "Find needs EAS 16.1", out);
		return status_only("Find:Find", 110, out);
	default:
		return http_only(400, "not a command the mailbox serves", out);
	}
}

/*
 * The versions and commands a FolderSync 0 answer announces (MS-ASHTTP
 * 2.2.2.1.1): the versions the mailbox serves up to the client's own, so
 * that the phone is never invited to a version the server behind abqd may
 * not speak once the device is allowed; the commands of that version.
 */
static void
announce(int v, struct mbx_serve_out *out)
{
	static const struct {
		int v;
		const char *list;
	} versions[] = {
	    {120, "12.0"},
	    {121, "12.0,12.1"},
	    {140, "12.0,12.1,14.0"},
	    {141, "12.0,12.1,14.0,14.1"},
	    {160, "12.0,12.1,14.0,14.1,16.0"},
	    {161, "12.0,12.1,14.0,14.1,16.0,16.1"},
	};
	const char *list = versions[0].list;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (versions[i].v <= v)
			list = versions[i].list;
	}
	if (out->n_headers + 2 > MBX_OUT_HEADERS)
		return;
	out->headers[out->n_headers][0] = "MS-ASProtocolVersions";
	out->headers[out->n_headers++][1] = list;
	out->headers[out->n_headers][0] = "MS-ASProtocolCommands";
	out->headers[out->n_headers++][1] =
	    v >= 161 ? EAS_MAILBOX_COMMANDS ",Find" : EAS_MAILBOX_COMMANDS;
}

/*
 * Answer one command; every answer names the server (MS-Server-ActiveSync),
 * and FolderSync 0 announces the versions and commands.
 */
int
mbx_serve(const struct mbx_serve_in *in, struct mbx_serve_out *out)
{
	int v, rv;

	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	if (in == NULL || in->backend == NULL || in->account == NULL || *in->account == '\0' ||
	    in->device_id == NULL || *in->device_id == '\0' || (in->body == NULL && in->body_len)) {
		out->http_status = 500;
		return -1;
	}
	v = in->version ? eas_version_number(in->version) : 141;
	rv = serve_cmd(in, v, out);
	if (out->pending) {
		/* Nothing of a run that stopped reaches the caller: it serves again. */
		mbx_serve_out_clear(out);
		out->pending = true;
		return MBX_PENDING;
	}
	if (out->n_headers < MBX_OUT_HEADERS) {
		out->headers[out->n_headers][0] = "MS-Server-ActiveSync";
		out->headers[out->n_headers++][1] = EAS_MAILBOX_SERVER_VERSION;
	}
	return rv;
}

/* Free an answer's body and zero it. */
void
mbx_serve_out_clear(struct mbx_serve_out *out)
{
	if (out == NULL)
		return;
	free(out->body);
	for (size_t i = 0; i < out->n_watch; i++)
		free(out->watch[i]);
	free(out->watch);
	free(out->stream.suffix);
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
mbx_request_sync_keys(enum eas_cmd cmd, const uint8_t *body, size_t len, char **keys, size_t max)
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
mbx_request_has_key(enum eas_cmd cmd, const uint8_t *body, size_t len)
{
	char *keys[64];
	int n = mbx_request_sync_keys(cmd, body, len, keys, 64), found = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (mbx_key_is_ours(keys[i]))
			found = 1;
		free(keys[i]);
	}
	return found;
}

/* FolderSync 9, Sync 3 per collection, GetItemEstimate 4 per collection, Ping 7. */
int
mbx_start_over_body(enum eas_cmd cmd, const char *version, const uint8_t *req_body, size_t req_len,
                    struct mbx_serve_out *out)
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
mbx_ping_changed_body(const char *const *folder_ids, size_t n, struct mbx_serve_out *out)
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
