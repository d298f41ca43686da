/*
 * imapmbx_driver.c: the IMAP mailbox backend (src/native/mailbox_imap.c)
 * driven as a phone would, through mbx_run and the real command layer, on a
 * libevent loop; each answer printed as one line of XML (the WBXML decoder's
 * rendering) for tests/native/test_imapmbx_live.py.
 *
 * usage: imapmbx-driver URL CA_FILE USER PASSWORD STORE.sqlite CAP
 * then one command a line on stdin:
 *   foldersync KEY
 *   sync COLL KEY WINDOW [SINCE]       (SINCE: a FilterType number)
 *   read COLL KEY SID                  (the phone marks SID read)
 *   delete COLL KEY SID                (the phone deletes SID: to Deleted Items)
 *   move SRC SID DST                   (MoveItems of SID from SRC to DST)
 *   mark COLL SID FWD                  (mark_answered: FWD 0 \Answered, 1 $Forwarded;
 *                                      answered "MARK <rv>")
 *   sendmail SAVE FILE                 (SendMail 14.1 of FILE's message, with
 *                                      SaveInSentItems when SAVE is 1)
 *   smartreply COLL SID SAVE FILE      (SmartReply 14.1 to SID of COLL, FILE the
 *                                      phone's part of the message)
 *   smartforward COLL SID SAVE FILE    (SmartForward 14.1 likewise)
 *   fetch COLL SID TYPE TRUNC AON      (ItemOperations Fetch of SID with a
 *                                      BodyPreference: TYPE, TRUNC its TruncationSize,
 *                                      0 none; AON 1: AllOrNone; MIMESupport 2)
 *   fetchfile REF [RANGE]              (ItemOperations Fetch of FileReference REF,
 *                                      with Options/Range RANGE when given)
 *   getatt REF FILE                    (GetAttachment of REF: answered
 *                                      "ATT <status> <content-type> <length>",
 *                                      the body written to FILE)
 *   fcreate KEY PARENT NAME            (FolderCreate; KEY the FolderSync key)
 *   fupdate KEY ID PARENT NAME         (FolderUpdate: rename / move)
 *   fdelete KEY ID                     (FolderDelete)
 *   search COLL AFTER BEFORE HEX       (a mailbox Search: COLL a CollectionId, AFTER
 *                                      and BEFORE EAS dates of DateReceived, HEX the
 *                                      FreeText's bytes in hex; each "-" for none)
 *   password PW                        (later requests log in with PW)
 *   concurrent N                       (N FolderSyncs at once, their own backends)
 * each answered by "XML <answer>" (or "HTTP <status>") and
 * "STATS runs=R cmds=C open=O opened=T fail=F", then (for every command but
 * concurrent) "LOOP gap_ms=G parsed=P": the loop's longest gap while the
 * request ran, as a 1 ms timer on it saw it, and the messages the parse
 * thread handed back for it; then "END".
 * The sync state lives in memory; folder ids in the store (abq_store_folder_*).
 * With ABQ_SUBMISSION_URL and ABQ_SUBMISSION_FROM in the environment, every
 * backend sends (mbx_imap_set_send, through a submitq on the loop's base;
 * ABQ_SUBMISSION_INSECURE: the server's certificate is not checked).
 * With ABQ_PARSE_THREAD, every backend parses its fetched messages on a
 * parse thread (mbx_imap_set_parseq), the command layer not.
 */
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "lib/log.h"
#include "lib/util.h"
#include "mailbox/run.h"
#include "native/mailbox_imap.h"
#include "native/parseq.h"
#include "native/submitq.h"
#include "store/store.h"

#define NSTATE 64

static struct event_base *base;
static struct imap_pool *pool;
static struct abq_store *store;
static const char *user;
static char password[256];
static struct {
	char coll[80];
	char *blob;
	size_t len;
} st[NSTATE];
static size_t nst;
static struct submitq *sq;
static struct parseq *pq;                   /* ABQ_PARSE_THREAD */
static double last_tick_ms, longest_gap_ms; /* the loop's timer (one_att) */
static struct mbx_imap_send send_conf;

/* ---- the folder map over the store (synchronous) ---- */

static void
map_assign(void *arg, const char *account, const struct mbx_imap_listed *l, size_t n, char delim,
           bool probe, mbx_imap_ids_fn done, void *done_arg)
{
	struct abq_folder *f = xcalloc(n ? n : 1, sizeof(*f));
	char **ids = NULL;
	const char *err = NULL;
	int rv;

	(void)arg;
	for (size_t i = 0; i < n; i++) {
		f[i].mailbox = (char *)l[i].mailbox;
		f[i].mailbox_id = (char *)l[i].mailbox_id;
		f[i].uidvalidity = l[i].uidvalidity;
	}
	rv = abq_store_folder_list(store, account, f, n, delim, probe, &ids, NULL, &err);
	free(f);
	if (rv < 0)
		fprintf(stderr, "folder_list: %s\n", err ? err : "failed");
	done(done_arg, rv, ids);
}

/* A rename (mailbox set) or a delete (NULL) followed in the store. */
static void
map_change(void *arg, const char *account, const char *folder_id, const char *mailbox,
           const char *parent_id, char delim, mbx_imap_done_fn done, void *done_arg)
{
	const char *err = NULL;
	int rv;

	(void)arg;
	if (mailbox != NULL)
		rv = abq_store_folder_rename(store, account, folder_id, mailbox, parent_id, delim,
		                             NULL, &err);
	else
		rv = abq_store_folder_delete(store, account, folder_id, delim, NULL, &err);
	if (rv < 0)
		fprintf(stderr, "folder change: %s\n", err ? err : "failed");
	done(done_arg, rv < 0 ? -1 : 0);
}

static const struct mbx_imap_folder_map map = {NULL, map_assign, map_change};

/* ---- the sync state in memory ---- */

static void
st_get(void *arg, const char *account, const char *device_id, const char *coll,
       mbx_state_got_fn done, void *done_arg)
{
	(void)arg;
	(void)account;
	(void)device_id;
	for (size_t i = 0; i < nst; i++) {
		if (strcmp(st[i].coll, coll) == 0) {
			char *b = xmalloc(st[i].len + 1);
			memcpy(b, st[i].blob, st[i].len);
			b[st[i].len] = '\0';
			done(done_arg, 1, b, st[i].len);
			return;
		}
	}
	done(done_arg, 0, NULL, 0);
}

static void
st_commit(void *arg, const char *account, const char *device_id, const struct mbx_state_op *ops,
          size_t n, mbx_state_committed_fn done, void *done_arg)
{
	(void)arg;
	(void)account;
	(void)device_id;
	for (size_t k = 0; k < n; k++) {
		size_t i;
		if (ops[k].collection == NULL) {
			for (i = 0; i < nst; i++)
				free(st[i].blob);
			nst = 0;
			continue;
		}
		for (i = 0; i < nst && strcmp(st[i].coll, ops[k].collection) != 0; i++)
			;
		if (ops[k].blob == NULL) {
			if (i < nst) {
				free(st[i].blob);
				st[i] = st[--nst];
			}
			continue;
		}
		if (i == nst) {
			if (nst == NSTATE) {
				done(done_arg, -1);
				return;
			}
			snprintf(st[nst++].coll, sizeof(st[0].coll), "%s", ops[k].collection);
		} else {
			free(st[i].blob);
		}
		st[i].blob = xmalloc(ops[k].len + 1);
		memcpy(st[i].blob, ops[k].blob, ops[k].len);
		st[i].len = ops[k].len;
	}
	done(done_arg, 0);
}

static const struct mbx_async_state state = {NULL, st_get, st_commit, NULL};

/* ---- requests ---- */

struct req {
	struct mbx_serve_in in;
	uint8_t *body;
	struct mbx_backend *b;
	bool done;
	int http;
	char *xml;
	const char *att_file; /* GetAttachment: where its body goes */
};

static void
run_done(void *arg, int rv, struct mbx_serve_out *out)
{
	struct req *r = arg;
	struct wbxml_doc *d = NULL;

	r->done = true;
	r->http = rv < 0 ? -1 : out->http_status;
	if (r->att_file != NULL) {
		FILE *f = fopen(r->att_file, "wb");
		if (f == NULL || (rv == 0 && out->body_len > 0 &&
		                  fwrite(out->body, 1, out->body_len, f) != out->body_len))
			fatalx("%s: cannot write", r->att_file);
		fclose(f);
		printf("ATT %d %s %zu\n", r->http,
		       rv == 0 && out->content_type ? out->content_type : "-",
		       rv == 0 ? out->body_len : 0);
		event_base_loopbreak(base);
		return;
	}
	if (rv == 0 && out->body &&
	    wbxml_decode(out->body, out->body_len, NULL, &d, NULL) == WBXML_OK) {
		r->xml = wbxml_to_xml(wbxml_doc_root(d), 0);
		for (char *p = r->xml; *p; p++) {
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		}
	}
	wbxml_doc_free(&d);
	event_base_loopbreak(base);
}

/* Start one request (its own backend). */
static void
start(struct req *r, enum eas_cmd cmd, struct wbxml_doc *d, const char *ref, const char *att_file)
{
	size_t len = 0;

	memset(r, 0, sizeof(*r));
	if (d != NULL && wbxml_encode(d, &r->body, &len, NULL) != WBXML_OK)
		fatalx("encode");
	wbxml_doc_free(&d);
	r->in.attachment_name = ref;
	r->att_file = att_file;
	r->b = mbx_imap_new(pool, user, NULL, password, &map);
	if (sq != NULL)
		mbx_imap_set_send(r->b, &send_conf);
	if (pq != NULL)
		mbx_imap_set_parseq(r->b, pq);
	r->in.cmd = cmd;
	r->in.version = "14.1";
	r->in.body = r->body;
	r->in.body_len = len;
	r->in.account = user;
	r->in.device_id = "DRIVER1";
	r->in.backend = r->b;
	r->in.now = 1800000000;
	mbx_run(&r->in, &state, 0, run_done, r);
}

/* Print a finished request and free it. */
static void
finish(struct req *r)
{
	unsigned runs, cmds;

	mbx_imap_stats(r->b, &runs, &cmds);
	if (r->xml)
		printf("XML %s\n", r->xml);
	else
		printf("HTTP %d\n", r->http);
	printf("STATS runs=%u cmds=%u open=%u opened=%lu fail=%d\n", runs, cmds,
	       imap_pool_open_count(pool, user), imap_pool_opened_total(pool),
	       (int)mbx_imap_failure(r->b));
	mbx_destroy(&r->b);
	free(r->body);
	free(r->xml);
}

/* Run one request to its answer (att_file: a GetAttachment's body goes there). */
static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The loop's 1 ms timer: the longest time between two of its runs. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	double t = now_ms();

	(void)fd;
	(void)what;
	(void)arg;
	if (t - last_tick_ms > longest_gap_ms)
		longest_gap_ms = t - last_tick_ms;
	last_tick_ms = t;
}

static void
one_att(enum eas_cmd cmd, struct wbxml_doc *d, const char *ref, const char *att_file)
{
	struct timeval ms = {0, 1000};
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	uint64_t parsed = pq != NULL ? parseq_delivered(pq) : 0;
	struct req r;

	longest_gap_ms = 0;
	last_tick_ms = now_ms();
	event_add(tick, &ms);
	start(&r, cmd, d, ref, att_file);
	while (!r.done)
		event_base_loop(base, EVLOOP_ONCE);
	on_tick(-1, 0, NULL);
	event_free(tick);
	finish(&r);
	printf("LOOP gap_ms=%.1f parsed=%lu\n", longest_gap_ms,
	       (unsigned long)((pq != NULL ? parseq_delivered(pq) : 0) - parsed));
}

/* Run one request to its answer. */
static void
one(enum eas_cmd cmd, struct wbxml_doc *d)
{
	one_att(cmd, d, NULL, NULL);
}

static void
woke(void *arg)
{
	*(bool *)arg = true;
}

/* mark_answered on a backend of its own, waited for as mbx_run would. */
static int
mark(const char *coll, const char *sid, bool forwarded)
{
	struct mbx_backend *b = mbx_imap_new(pool, user, NULL, password, &map);
	const char *err = NULL;
	int rv;

	for (;;) {
		bool done = false;
		mbx_begin(b);
		if ((rv = mbx_mark_answered(b, coll, sid, forwarded, &err)) != MBX_PENDING)
			break;
		mbx_wait(b, woke, &done);
		while (!done)
			event_base_loop(base, EVLOOP_ONCE);
	}
	mbx_end(b);
	mbx_destroy(&b);
	return rv;
}

static struct wbxml_node *
sync_coll(struct wbxml_doc *d, const char *coll, const char *key)
{
	struct wbxml_node *c =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "AirSync:Sync"), "Collections"), "Collection");
	wbxml_addn_text(c, "SyncKey", key);
	wbxml_addn_text(c, "CollectionId", coll);
	return c;
}

/* A whole file (for sendmail). */
static char *
read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		fatalx("%s: cannot read", path);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		fatalx("%s: cannot read", path);
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

int
main(int argc, char **argv)
{
	struct imap_pool_conf pc = {0};
	const char *err;
	char line[1024];

	if (argc != 7) {
		fprintf(stderr,
		        "usage: imapmbx-driver URL CA_FILE USER PASSWORD STORE.sqlite CAP\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("imapmbx-driver", true, getenv("ABQ_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, 0);
	base = event_base_new();
	argv++; /* URL CA_FILE USER PASSWORD STORE CAP as argv[0..5] */
	pc.url = argv[0];
	pc.ca_file = argv[1];
	pc.allow_plaintext = true;
	pc.max_per_account = (unsigned)atoi(argv[5]);
	pc.wait_timeout = 60;
	user = argv[2];
	snprintf(password, sizeof(password), "%s", argv[3]);
	if ((pool = imap_pool_new(base, &pc, &err)) == NULL)
		fatalx("%s", err);
	if ((store = abq_store_open(argv[4], NULL, ABQ_STORE_CREATE, &err)) == NULL)
		fatalx("store: %s", err);
	if (getenv("ABQ_SUBMISSION_URL") && getenv("ABQ_SUBMISSION_FROM")) {
		if ((sq = submitq_start(base, &err)) == NULL)
			fatalx("submitq: %s", err);
		send_conf.q = sq;
		send_conf.url = getenv("ABQ_SUBMISSION_URL");
		send_conf.from = getenv("ABQ_SUBMISSION_FROM");
		send_conf.tls_insecure = getenv("ABQ_SUBMISSION_INSECURE") != NULL;
	}
	if (getenv("ABQ_PARSE_THREAD") && (pq = parseq_start(base, &err)) == NULL)
		fatalx("parseq: %s", err);
	while (fgets(line, sizeof(line), stdin)) {
		char *w[6] = {0}, *save = NULL;
		int n = 0;
		for (char *t = strtok_r(line, " \n", &save); t && n < 6;
		     t = strtok_r(NULL, " \n", &save))
			w[n++] = t;
		if (n == 0)
			continue;
		if (strcmp(w[0], "foldersync") == 0 && n == 2) {
			struct wbxml_doc *d = wbxml_doc_new();
			wbxml_addn_text(wbxml_addn_root(d, "FolderHierarchy:FolderSync"), "SyncKey",
			                w[1]);
			one(EAS_CMD_FOLDERSYNC, d);
		} else if (strcmp(w[0], "sync") == 0 && n >= 4) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *c = sync_coll(d, w[1], w[2]);
			if (strcmp(w[2], "0") != 0)
				wbxml_addn(c, "GetChanges");
			wbxml_addn_text(c, "WindowSize", w[3]);
			if (n >= 5)
				wbxml_addn_text(wbxml_addn(c, "Options"), "FilterType", w[4]);
			one(EAS_CMD_SYNC, d);
		} else if ((strcmp(w[0], "read") == 0 || strcmp(w[0], "delete") == 0) && n == 4) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *c = sync_coll(d, w[1], w[2]);
			if (w[0][0] == 'r') {
				struct wbxml_node *ch =
				    wbxml_addn(wbxml_addn(c, "Commands"), "Change");
				wbxml_addn_text(ch, "ServerId", w[3]);
				wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read",
				                "1");
			} else {
				wbxml_addn_text(c, "DeletesAsMoves", "1");
				wbxml_addn_text(wbxml_addn(wbxml_addn(c, "Commands"), "Delete"),
				                "ServerId", w[3]);
			}
			one(EAS_CMD_SYNC, d);
		} else if (strcmp(w[0], "move") == 0 && n == 4) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *m =
			    wbxml_addn(wbxml_addn_root(d, "Move:MoveItems"), "Move");
			wbxml_addn_text(m, "SrcMsgId", w[2]);
			wbxml_addn_text(m, "SrcFldId", w[1]);
			wbxml_addn_text(m, "DstFldId", w[3]);
			one(EAS_CMD_MOVEITEMS, d);
		} else if (strcmp(w[0], "empty") == 0 && n == 2) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *e =
			    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"),
			               "EmptyFolderContents");
			wbxml_addn_text(e, "AirSync:CollectionId", w[1]);
			one(EAS_CMD_ITEMOPERATIONS, d);
		} else if (strcmp(w[0], "mark") == 0 && n == 4) {
			printf("MARK %d\n", mark(w[1], w[2], strcmp(w[3], "1") == 0));
		} else if ((strcmp(w[0], "sendmail") == 0 && n == 3) ||
		           (strcmp(w[0], "smartreply") == 0 && n == 5) ||
		           (strcmp(w[0], "smartforward") == 0 && n == 5)) {
			bool reply = w[0][1] == 'm', fwd = strcmp(w[0], "smartforward") == 0;
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *root =
			    wbxml_addn_root(d, fwd     ? "ComposeMail:SmartForward"
			                       : reply ? "ComposeMail:SmartReply"
			                               : "ComposeMail:SendMail");
			const char *keep = reply ? w[3] : w[1], *file = reply ? w[4] : w[2];
			size_t mlen = 0;
			char *msg = read_file(file, &mlen);
			wbxml_addn_text(root, "ClientId", file);
			if (reply) {
				struct wbxml_node *src = wbxml_addn(root, "Source");
				wbxml_addn_text(src, "FolderId", w[1]);
				wbxml_addn_text(src, "ItemId", w[2]);
			}
			if (strcmp(keep, "1") == 0)
				wbxml_addn(root, "SaveInSentItems");
			wbxml_addn_opaque(root, "Mime", msg, mlen);
			free(msg);
			one(fwd     ? EAS_CMD_SMARTFORWARD
			    : reply ? EAS_CMD_SMARTREPLY
			            : EAS_CMD_SENDMAIL,
			    d);
		} else if (strcmp(w[0], "fetch") == 0 && n == 6) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *f = wbxml_addn(
			    wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
			wbxml_addn_text(f, "Store", "Mailbox");
			wbxml_addn_text(f, "AirSync:CollectionId", w[1]);
			wbxml_addn_text(f, "AirSync:ServerId", w[2]);
			struct wbxml_node *o = wbxml_addn(f, "Options");
			wbxml_addn_text(o, "AirSync:MIMESupport", "2");
			struct wbxml_node *bp = wbxml_addn(o, "AirSyncBase:BodyPreference");
			wbxml_addn_text(bp, "Type", w[3]);
			if (strcmp(w[4], "0") != 0)
				wbxml_addn_text(bp, "TruncationSize", w[4]);
			if (strcmp(w[5], "1") == 0)
				wbxml_addn_text(bp, "AllOrNone", "1");
			one(EAS_CMD_ITEMOPERATIONS, d);
		} else if (strcmp(w[0], "fetchfile") == 0 && (n == 2 || n == 3)) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *f = wbxml_addn(
			    wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
			wbxml_addn_text(f, "Store", "Mailbox");
			wbxml_addn_text(f, "AirSyncBase:FileReference", w[1]);
			if (n == 3)
				wbxml_addn_text(wbxml_addn(f, "Options"), "Range", w[2]);
			one(EAS_CMD_ITEMOPERATIONS, d);
		} else if (strcmp(w[0], "getatt") == 0 && n == 3) {
			one_att(EAS_CMD_GETATTACHMENT, NULL, w[1], w[2]);
		} else if ((strcmp(w[0], "fcreate") == 0 && n == 4) ||
		           (strcmp(w[0], "fupdate") == 0 && n == 5) ||
		           (strcmp(w[0], "fdelete") == 0 && n == 3)) {
			enum eas_cmd cmd = w[0][1] == 'c'   ? EAS_CMD_FOLDERCREATE
			                   : w[0][1] == 'u' ? EAS_CMD_FOLDERUPDATE
			                                    : EAS_CMD_FOLDERDELETE;
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *root = wbxml_addn_root(
			    d, cmd == EAS_CMD_FOLDERCREATE   ? "FolderHierarchy:FolderCreate"
			       : cmd == EAS_CMD_FOLDERUPDATE ? "FolderHierarchy:FolderUpdate"
			                                     : "FolderHierarchy:FolderDelete");
			wbxml_addn_text(root, "SyncKey", w[1]);
			if (cmd != EAS_CMD_FOLDERCREATE)
				wbxml_addn_text(root, "ServerId", w[2]);
			if (cmd != EAS_CMD_FOLDERDELETE) {
				wbxml_addn_text(root, "ParentId", w[n - 2]);
				wbxml_addn_text(root, "DisplayName", w[n - 1]);
			}
			if (cmd == EAS_CMD_FOLDERCREATE)
				wbxml_addn_text(root, "Type", "12");
			one(cmd, d);
		} else if (strcmp(w[0], "search") == 0 && n == 5) {
			struct wbxml_doc *d = wbxml_doc_new();
			struct wbxml_node *sto =
			    wbxml_addn(wbxml_addn_root(d, "Search:Search"), "Store");
			wbxml_addn_text(sto, "Name", "Mailbox");
			struct wbxml_node *and = wbxml_addn(wbxml_addn(sto, "Query"), "And");
			wbxml_addn_text(and, "AirSync:Class", "Email");
			if (strcmp(w[1], "-") != 0)
				wbxml_addn_text(and, "AirSync:CollectionId", w[1]);
			if (strcmp(w[4], "-") != 0) {
				char text[512];
				size_t k = 0;
				for (const char *h = w[4]; h[0] && h[1] && k + 1 < sizeof(text);
				     h += 2) {
					unsigned v;
					(void)sscanf(h, "%2x", &v);
					text[k++] = (char)v;
				}
				text[k] = '\0';
				wbxml_addn_text(and, "FreeText", text);
			}
			for (int b = 2; b <= 3; b++) {
				if (strcmp(w[b], "-") == 0)
					continue;
				struct wbxml_node *x =
				    wbxml_addn(and, b == 2 ? "GreaterThan" : "LessThan");
				wbxml_addn(x, "Email:DateReceived");
				wbxml_addn_text(x, "Value", w[b]);
			}
			wbxml_addn_text(wbxml_addn(sto, "Options"), "Range", "0-9");
			one(EAS_CMD_SEARCH, d);
		} else if (strcmp(w[0], "password") == 0 && n == 2) {
			snprintf(password, sizeof(password), "%s", w[1]);
		} else if (strcmp(w[0], "concurrent") == 0 && n == 2) {
			int k = atoi(w[1]), left;
			struct req *rs = xcalloc((size_t)k, sizeof(*rs));
			unsigned most = 0;
			for (int i = 0; i < k; i++) {
				struct wbxml_doc *d = wbxml_doc_new();
				wbxml_addn_text(wbxml_addn_root(d, "FolderHierarchy:FolderSync"),
				                "SyncKey", "0");
				start(&rs[i], EAS_CMD_FOLDERSYNC, d, NULL, NULL);
			}
			do {
				unsigned o = imap_pool_open_count(pool, user);
				most = o > most ? o : most;
				left = 0;
				for (int i = 0; i < k; i++)
					left += !rs[i].done;
				if (left)
					event_base_loop(base, EVLOOP_ONCE);
			} while (left);
			for (int i = 0; i < k; i++)
				finish(&rs[i]);
			printf("MAXOPEN %u\n", most);
			free(rs);
		} else {
			printf("ERR unknown command\n");
		}
		printf("END\n");
	}
	submitq_stop(&sq);
	parseq_stop(&pq);
	imap_pool_free(pool);
	abq_store_close(&store);
	/* Let libevent finish freeing the bufferevents (their deferred callbacks). */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return 0;
}
