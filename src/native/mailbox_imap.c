/*
 * mailbox_imap.c: the mailbox backend over an IMAP server (mailbox_imap.h).
 *
 * Every op that needs the server starts a job (a short chain of IMAP
 * commands on the request's one connection) and answers MBX_PENDING; the
 * job's result is recorded in a memo keyed by the op and its arguments, from
 * which the next runs of the request answer. One job runs at a time: the
 * command layer stops at the first MBX_PENDING.
 *
 * send (when mbx_imap_set_send gave a submission queue): the job hands the
 * message to the queue's thread (submitq.h), no IMAP connection needed, and
 * when it was sent and SaveInSent asks, APPENDs the same bytes to Sent on
 * the request's connection. Its memo is recorded for the request: a rerun
 * answers the outcome and never submits again. Once the message is sent the
 * outcome stays "sent", whatever happens to the copy (a lost connection, a
 * refused APPEND: saved is then false, and the failure only logged).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/uidset.h"
#include "lib/util.h"
#include "mime/compose.h"
#include "mime/msgconv.h"
#include "mime/partdec.h"
#include "native/mailbox_imap.h"
#include "native/outline.h"
#include "native/parseq.h"
#include "native/submitq.h"

enum job_kind {
	J_FOLDERS,
	J_CHANGES,
	J_FETCH,
	J_FLAGS,
	J_REMOVE,
	J_MOVE,
	J_ANSWER,
	J_EMPTY,
	J_SEND,
	J_PART,
	J_FCREATE,
	J_FRENAME,
	J_FDELETE,
	J_SEARCH
};

/* A message as fetched (the batch of a changes(), or one fetch()). */
struct imsg {
	uint32_t uid;
	uint32_t flags;
	int64_t idate;
	uint64_t size;
	char *raw;
	size_t raw_len;
	char *subject, *from;
	/* over MBX_IMAP_RAW_CAP: its outline (mbx_email.outline), and while it is built */
	char *outline;
	size_t outline_len;
	struct mbx_outline_part *parts;
	size_t nparts;
	struct outline_build *ob;
	/* raw (or the outline) parsed on the parse thread (mbx_email.parsed), or NULL */
	struct msgconv_msg *parsed;
};

/* An op's recorded result. */
struct memo {
	char *key;
	int rv; /* MBX_PENDING while its job runs */
	const char *err;
	struct mbx_changes ch;           /* changes */
	char cursor[MBX_CURSOR_MAX + 1]; /* set_flags, remove: the advanced cursor */
	struct imsg msg;                 /* fetch */
	uint32_t new_uid;                /* move: the UID in the destination (COPYUID) */
	struct mbx_send_out sent;        /* send */
	struct mbx_part part;            /* fetch_part */
	int enc;                         /* fetch_part's structure memo: enum partdec_enc */
	/* fetch_part's size memo of a base64 part: its lines, all of line chars and CRLF */
	uint32_t line;
	/*
	 * Folder changes: the folder (a create's new id), its mailbox now (NULL
	 * once deleted) and before; applied: the folder list shows it.
	 */
	char folder_id[MBX_ID_MAX + 1];
	char *mailbox, *old_mailbox;
	bool applied;
	struct mbx_search_out found; /* search */
	struct memo *next;
};

/* The prefetched adds of one folder. */
struct batch {
	char folder[MBX_ID_MAX + 1];
	struct imsg *m;
	size_t n;
	struct batch *next;
};

/* A decoded cursor. */
struct cur {
	uint32_t uidvalidity;
	int64_t since;
	struct uidset have, seen, flagged;
	/* "?": the read states did not fit; the device is taken to have the server's. */
	bool seen_unknown;
	/*
	 * The folder's state the cursor is complete for (CONDSTORE's
	 * HIGHESTMODSEQ, UIDNEXT, EXISTS at the SELECT before its searches);
	 * modseq 0: unknown (no CONDSTORE, or changes left to report).
	 */
	uint64_t modseq;
	uint32_t uidnext, exists;
};

/* A body literal being received (by message sequence number). */
struct pbuf {
	uint32_t seq;
	struct sbuf b;
};

/* An outline's literal being received: by sequence number and section ("HEADER", "1.2"). */
struct olbuf {
	uint32_t seq;
	char section[MBX_ID_MAX + 1];
	struct sbuf b;
};

struct mi;

struct job {
	struct mi *m;
	enum job_kind kind;
	struct memo *memo;
	int step;
	unsigned outstanding; /* commands of the step not yet answered */
	bool failed;
	char folder[MBX_ID_MAX + 1];
	const char *mailbox; /* the folder's IMAP name (the backend's) */
	char *cursor;
	struct mbx_window w;
	int64_t since; /* the window's floor in force (w.since, or the cursor's for -1) */
	uint32_t uid;
	int read, flagged;
	bool to_trash, found;
	/* move: the destination's IMAP name; the new UID (COPYUID) */
	const char *dst_mailbox;
	uint32_t dst_uid;
	/* folder changes: the server refused (ALREADYEXISTS: exists); the parent's id */
	bool refused, exists;
	char parent[MBX_ID_MAX + 1];
	/* folders */
	struct imap_list *lists;
	size_t nlists;
	/*
	 * The listing's UIDVALIDITYs and MAILBOXIDs the folder map asked for
	 * (lask: its probe named them), from STATUS (0 / NULL: not known).
	 */
	bool *lask;
	int64_t *luv;
	char **lmid;
	/* changes */
	uint32_t uidvalidity;
	/* what this job's own SELECT said (sel_fresh): HIGHESTMODSEQ (0: none), UIDNEXT, EXISTS */
	bool sel_fresh;
	uint64_t sel_modseq;
	uint32_t sel_uidnext, sel_exists;
	struct uidset s_all, s_win, s_seen, s_flag, fetch_set;
	struct batch *batch;
	/* the prefetch's cap: the adds' sizes (by their place) and the cursor to cut */
	uint32_t *add_size;
	struct cur cut;
	/* fetch */
	struct pbuf *pb;
	size_t npb;
	/* send: the message as submitted and saved; the queue's job while it runs */
	char *msg;
	size_t msg_len;
	struct submitq_job *sq;
	/*
	 * The parse phase (parse_begin) of the step's fetched messages
	 * pa_v[0..pa_n): their bytes are the parse job's (pj) while it runs;
	 * done for this step once it ended (or was refused).
	 */
	bool parsing, parse_done;
	struct parseq_job *pj;
	struct imsg *pa_v;
	size_t pa_n;
	/*
	 * fetch_part: the section, the window asked (max 0: to the end); the
	 * server decodes (BINARY) or the part's encoding decoded here; pos the
	 * decoded offset of the next byte seen, psize the part's size as the
	 * server gives it (BINARY.SIZE, or BODYSTRUCTURE's for an identity
	 * encoding); the window's bytes in win (at most MBX_IMAP_PART_CAP).
	 */
	char section[MBX_ID_MAX + 1];
	uint64_t off, max, pos, psize;
	bool binary, have_psize, too_large;
	/* the decoded size checked: bytes of a probe or of a counting pass */
	bool counting;
	uint64_t counted;
	enum partdec_enc enc;
	struct sbuf win;
	/* decoded here (no BINARY); mapped: a base64 window read by its encoded offset */
	struct partdec dec;
	bool mapped;
	/* search: the folders (indices), the words (copies), the bounds; the folder at */
	size_t sq_fis[MBX_SEARCH_FOLDERS], sq_nf, sq_at, sq_extra;
	char *sq_words[MBX_SEARCH_WORDS];
	size_t sq_nwords;
	int64_t sq_since, sq_before;
	size_t sq_first, sq_last; /* the Range, whose items are fetched ahead */
	bool sq_bodies;           /* the hits are found: the bodies are being fetched */
	/*
	 * The outline phase (outline_begin) of the step's fetched messages
	 * ol_v[0..ol_n): running (its own step ostep), done for this step.
	 */
	bool outlining, outlined;
	int ostep;
	struct imsg *ol_v;
	size_t ol_n;
	struct olbuf *olb; /* the literals (header, texts) being received */
	size_t nolb;
};

struct mi {
	struct mbx_backend base;
	struct imap_pool *pool;
	char *account, *user, *password;
	const struct mbx_imap_folder_map *map;
	struct imap_client *c;
	struct imap_pool_req *preq;
	enum mbx_imap_failure fail;
	/* folders */
	int folders_rv; /* MBX_PENDING until listed: 0 or -1 */
	bool folders_started;
	const char *folders_err;
	struct mbx_folder *fl;
	char **mailboxes; /* IMAP names, by folder */
	size_t nf;
	char delim; /* the hierarchy delimiter (LIST's first); '\0': flat */
	/* The last request's folder list, kept after its end for mbx_imap_mailbox. */
	char **last_ids, **last_mailboxes;
	size_t last_n;
	struct memo *memos;
	struct batch *batches;
	struct job *job;
	void (*wait_cb)(void *arg);
	void *wait_arg;
	char *selected; /* the mailbox selected on c */
	uint32_t sel_uidvalidity;
	unsigned runs, cmds;
	/* sending (mbx_imap_set_send): NULL q when the backend does not send */
	struct submitq *sq;
	char *sub_url, *sub_from, *sub_ca;
	bool sub_insecure;
	/* the parse thread (mbx_imap_set_parseq), or NULL: the command layer parses */
	struct parseq *pq;
};

static void job_step(struct job *j);
static void part_step(struct job *j);
static void fchange_step(struct job *j);
static bool unchanged(struct job *j);
static void lenient_cb(struct imap_client *c, const struct imap_response *r, void *arg);
static void search_step(struct job *j);
static void last_free(struct mi *m);

/* ---- small helpers ---- */

static void
imsg_clear(struct imsg *x)
{
	free(x->raw);
	free(x->subject);
	free(x->from);
	free(x->outline);
	free(x->parts);
	outline_build_free(x->ob);
	if (x->parsed != NULL) {
		msgconv_msg_clear(x->parsed);
		free(x->parsed);
	}
	memset(x, 0, sizeof(*x));
}

/* Copy a change report (arrays duplicated). */
static void
changes_copy(struct mbx_changes *dst, const struct mbx_changes *src)
{
	*dst = *src;
	dst->adds = src->n_adds ? xmalloc(src->n_adds * sizeof(*src->adds)) : NULL;
	dst->changed = src->n_changed ? xmalloc(src->n_changed * sizeof(*src->changed)) : NULL;
	dst->deletes = src->n_deletes ? xmalloc(src->n_deletes * sizeof(*src->deletes)) : NULL;
	if (src->n_adds)
		memcpy(dst->adds, src->adds, src->n_adds * sizeof(*src->adds));
	if (src->n_changed)
		memcpy(dst->changed, src->changed, src->n_changed * sizeof(*src->changed));
	if (src->n_deletes)
		memcpy(dst->deletes, src->deletes, src->n_deletes * sizeof(*src->deletes));
}

static struct memo *
memo_find(struct mi *m, const char *key)
{
	for (struct memo *x = m->memos; x != NULL; x = x->next) {
		if (strcmp(x->key, key) == 0)
			return x;
	}
	return NULL;
}

static struct memo *
memo_add(struct mi *m, char *key)
{
	struct memo *x = xcalloc(1, sizeof(*x));

	x->key = key;
	x->rv = MBX_PENDING;
	x->next = m->memos;
	m->memos = x;
	return x;
}

/* The index of a folder id, or -1. */
static long
folder_index(const struct mi *m, const char *id)
{
	for (size_t i = 0; i < m->nf; i++) {
		if (strcmp(m->fl[i].id, id) == 0)
			return (long)i;
	}
	return -1;
}

/* An item id as a UID: 0 when it is not one. */
static uint32_t
uid_of(const char *id)
{
	long long v;
	const char *e;

	return parse_int(id, 1, UINT32_MAX - 1, &v, &e) < 0 ? 0 : (uint32_t)v;
}

/* ---- the cursor ---- */

static void
cur_clear(struct cur *c)
{
	uidset_clear(&c->have);
	uidset_clear(&c->seen);
	uidset_clear(&c->flagged);
}

/* Decode a cursor: 0, or -1 when it is not one of ours. */
static int
cur_parse(const char *text, struct cur *c)
{
	char *copy = xstrdup(text), *save = NULL, *f[8];
	const char *e;
	long long v;
	int n = 0, rv = -1;

	memset(c, 0, sizeof(*c));
	for (char *t = strtok_r(copy, " ", &save); t && n < 8; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n == 7 && strcmp(f[0], "i2") == 0) {
		/* "<modseq>/<uidnext>/<exists>": the state it is complete for */
		unsigned long long ms;
		unsigned un, ex;
		char tail;
		if (sscanf(f[2], "%llu/%u/%u%c", &ms, &un, &ex, &tail) != 3 || ms == 0)
			goto out;
		c->modseq = ms;
		c->uidnext = un;
		c->exists = ex;
		memmove(&f[2], &f[3], 4 * sizeof(f[0]));
		n = 6;
	} else if (n != 6 || strcmp(f[0], "i1") != 0) {
		goto out;
	}
	if (parse_int(f[1], 1, UINT32_MAX, &v, &e) < 0)
		goto out;
	c->uidvalidity = (uint32_t)v;
	if (parse_int(f[2], 0, INT64_MAX, &v, &e) < 0)
		goto out;
	c->since = v;
	if (strcmp(f[3], "-") != 0 && uidset_parse(&c->have, f[3], &e) < 0)
		goto out;
	if (uidset_max(&c->have) == UINT32_MAX)
		goto out;
	if (strcmp(f[4], "?") == 0) {
		c->seen_unknown = true;
	} else if (f[4][0] == '+' || f[4][0] == '~') {
		struct uidset s = {0};
		if (uidset_parse(&s, f[4] + 1, &e) < 0)
			goto out;
		if (f[4][0] == '+') {
			c->seen = s;
		} else {
			for (size_t i = 0; i < c->have.n; i++) {
				for (uint32_t u = c->have.r[i].lo;; u++) {
					if (!uidset_contains(&s, u))
						(void)uidset_add(&c->seen, u);
					if (u == c->have.r[i].hi)
						break;
				}
			}
			uidset_clear(&s);
		}
	} else {
		goto out;
	}
	if (strcmp(f[5], "-") != 0 && uidset_parse(&c->flagged, f[5], &e) < 0)
		goto out;
	rv = 0;
out:
	if (rv < 0)
		cur_clear(c);
	free(copy);
	return rv;
}

/*
 * Encode a cursor into out (MBX_CURSOR_MAX + 1 bytes): 0, or -1 when it does
 * not fit (out unchanged). The read state goes as the shorter of the seen
 * and the unseen UIDs.
 */
static int
cur_format(const struct cur *c, char out[MBX_CURSOR_MAX + 1])
{
	struct uidset unseen = {.max_ranges = IMAP_UIDSET_MAX};
	char *have = uidset_format(&c->have), *seen = uidset_format(&c->seen), *uns, *fl;
	char state[80];
	struct sbuf b = {0};
	int rv = -1;

	for (size_t i = 0; i < c->have.n; i++) {
		for (uint32_t u = c->have.r[i].lo;; u++) {
			if (!uidset_contains(&c->seen, u))
				(void)uidset_add(&unseen, u);
			if (u == c->have.r[i].hi)
				break;
		}
	}
	uns = uidset_format(&unseen);
	fl = uidset_format(&c->flagged);
	if (c->modseq != 0)
		snprintf(state, sizeof(state), "i2 %" PRIu32 " %" PRIu64 "/%" PRIu32 "/%" PRIu32,
		         c->uidvalidity, c->modseq, c->uidnext, c->exists);
	else
		snprintf(state, sizeof(state), "i1 %" PRIu32, c->uidvalidity);
	sbuf_printf(&b, "%s %" PRId64 " %s %c%s %s", state, c->since, *have ? have : "-",
	            strlen(uns) < strlen(seen) ? '~' : '+', strlen(uns) < strlen(seen) ? uns : seen,
	            *fl ? fl : "-");
	/* read states alternating message by message, or still unknown (a "?" advanced) */
	if (b.len > MBX_CURSOR_MAX || c->seen_unknown) {
		b.len = 0;
		sbuf_printf(&b, "%s %" PRId64 " %s ? %s", state, c->since, *have ? have : "-",
		            *fl ? fl : "-");
	}
	if (b.len <= MBX_CURSOR_MAX) {
		memcpy(out, b.p, b.len + 1);
		rv = 0;
	}
	free(b.p);
	free(have);
	free(seen);
	free(uns);
	free(fl);
	uidset_clear(&unseen);
	return rv;
}

/* Set or clear uid in s (best effort: a set at its cap stays as it is). */
static void
set_bit(struct uidset *s, uint32_t uid, bool on)
{
	if (on)
		(void)uidset_add(s, uid);
	else
		(void)uidset_remove(s, uid);
}

/* ---- the connection ---- */

static void
job_finish(struct job *j, int rv, const char *err)
{
	struct mi *m = j->m;
	void (*cb)(void *) = m->wait_cb;
	void *arg = m->wait_arg;

	if (j->memo) {
		j->memo->rv = rv;
		j->memo->err = err;
	} else { /* the folder list */
		m->folders_rv = rv < 0 ? -1 : 0;
		m->folders_err = err;
	}
	if (j->batch) {
		j->batch->next = m->batches;
		m->batches = j->batch;
		j->batch = NULL;
	}
	for (size_t i = 0; i < j->npb; i++)
		free(j->pb[i].b.p);
	free(j->pb);
	for (size_t i = 0; j->lmid != NULL && i < j->nlists; i++)
		free(j->lmid[i]);
	free(j->lmid);
	free(j->luv);
	free(j->lask);
	for (size_t i = 0; i < j->nolb; i++)
		free(j->olb[i].b.p);
	free(j->olb);
	free(j->lists);
	free(j->cursor);
	uidset_clear(&j->s_all);
	uidset_clear(&j->s_win);
	uidset_clear(&j->s_seen);
	uidset_clear(&j->s_flag);
	uidset_clear(&j->fetch_set);
	free(j->add_size);
	cur_clear(&j->cut);
	if (j->sq != NULL) /* abandoned (destroy): the queue must not call back */
		submitq_cancel(j->sq);
	if (j->pj != NULL) /* abandoned: the queue frees the bytes it holds, calls nothing */
		parseq_cancel(j->pj);
	free(j->msg);
	free(j->win.p);
	for (size_t i = 0; i < j->sq_nwords; i++)
		free(j->sq_words[i]);
	free(j);
	m->job = NULL;
	m->wait_cb = NULL;
	if (cb)
		cb(arg);
}

/* The job failed: the connection dropped (r NULL) or a command was refused. */
static void
job_fail(struct job *j, const char *err)
{
	struct mi *m = j->m;

	if (m->fail == MBX_IMAP_OK)
		m->fail = MBX_IMAP_ERROR;
	job_finish(j, -1, err);
}

static void
pool_cb(void *arg, struct imap_client *c, enum imap_pool_err err, const char *msg)
{
	struct job *j = arg;
	struct mi *m = j->m;

	m->preq = NULL;
	if (c == NULL && j->kind == J_SEND) { /* the mail is sent; only the copy is lost */
		log_info("native: %s: no IMAP connection for the Sent copy: %s", m->account, msg);
		job_finish(j, 1, NULL);
		return;
	}
	if (c == NULL) {
		m->fail = err == IMAP_POOL_AUTH ? MBX_IMAP_AUTH : MBX_IMAP_UNAVAILABLE;
		log_info("native: %s: no IMAP connection: %s", m->account, msg);
		job_finish(j, -1,
		           err == IMAP_POOL_AUTH ? "the IMAP server refused the login"
		                                 : "no IMAP connection");
		return;
	}
	m->c = c;
	free(m->selected);
	m->selected = NULL;
	job_step(j);
}

/* Start a job: on the request's connection, or once the pool gives one. */
static int
job_start(struct mi *m, struct job *j)
{
	const char *err = NULL;

	j->m = m;
	m->job = j;
	if (m->c != NULL && imap_client_state(m->c) == IMAP_STATE_DEAD) {
		/* closed while no command ran (a streamed answer's pause): another one */
		imap_pool_put(m->pool, m->c, false);
		m->c = NULL;
	}
	if (m->c != NULL) {
		job_step(j);
		return MBX_PENDING;
	}
	if ((m->preq = imap_pool_get(m->pool, m->account, m->user, m->password, pool_cb, j,
	                             &err)) == NULL) {
		m->fail = MBX_IMAP_UNAVAILABLE;
		job_finish(j, -1, err);
		return -1;
	}
	return MBX_PENDING;
}

/* The command's tagged status: the step goes on when all its commands are answered. */
static void
cmd_done(struct job *j, const struct imap_response *r)
{
	if (r == NULL) {
		j->m->c = NULL; /* dropped: given back broken at end */
		j->failed = true;
	} else if (r->status != IMAP_OK) {
		log_info("native: %s: IMAP: %s", j->m->account, r->text);
		j->failed = true;
	}
	if (--j->outstanding > 0)
		return;
	if (j->failed) {
		job_fail(j, r == NULL ? "the IMAP connection dropped" : "the IMAP server refused");
		return;
	}
	if (j->outlining)
		j->ostep++;
	else
		j->step++;
	job_step(j);
}

/* Send a command of the job's step. */
static void
cmd_send(struct job *j, struct imap_cmd *cmd, imap_cmd_cb cb, imap_chunk_cb chunk)
{
	const char *err = NULL;

	j->m->cmds++;
	j->outstanding++;
	if (imap_client_command(j->m->c, cmd, cb, chunk, j, &err) < 0) {
		log_info("native: %s: IMAP: %s", j->m->account, err);
		j->failed = true;
		j->outstanding--;
	}
}

/* A command whose untagged data does not matter. */
static void
plain_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	(void)c;
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(arg, r);
}

/* SELECT: its UIDVALIDITY. */
static void
select_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_STATUS && r->code && r->code_args &&
	    r->code_args->type == IMAP_NODE_NUMBER) {
		if (strcmp(r->code, "UIDVALIDITY") == 0)
			j->uidvalidity = (uint32_t)r->code_args->num;
		else if (strcmp(r->code, "HIGHESTMODSEQ") == 0)
			j->sel_modseq = r->code_args->num;
		else if (strcmp(r->code, "UIDNEXT") == 0)
			j->sel_uidnext = (uint32_t)r->code_args->num;
	}
	if (r != NULL && r->kind == IMAP_RESP_DATA && r->has_number && r->name &&
	    strcmp(r->name, "EXISTS") == 0)
		j->sel_exists = r->number;
	if (r == NULL || r->kind == IMAP_RESP_TAGGED) {
		if (r != NULL && r->status == IMAP_OK) {
			j->sel_fresh = true;
			free(j->m->selected);
			j->m->selected = xstrdup(j->mailbox);
			j->m->sel_uidvalidity = j->uidvalidity;
		}
		cmd_done(j, r);
	}
}

/* Select the job's mailbox unless it is; returns whether a command was sent. */
static bool
select_mailbox(struct job *j)
{
	struct imap_cmd *cmd;

	if (j->m->selected && strcmp(j->m->selected, j->mailbox) == 0) {
		j->uidvalidity = j->m->sel_uidvalidity;
		return false;
	}
	cmd = imap_cmd_new("SELECT");
	if (imap_cmd_mailbox(cmd, j->m->c, j->mailbox) < 0) {
		imap_cmd_free(cmd);
		j->failed = true;
		return false;
	}
	j->sel_fresh = false;
	j->sel_modseq = 0;
	j->sel_uidnext = j->sel_exists = 0;
	cmd_send(j, cmd, select_cb, NULL);
	return true;
}

/* ---- folders ---- */

static void
list_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imap_list l;
	const char *err;

	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "LIST") == 0) {
		if (imap_list_read(r, (imap_client_enabled(c) & IMAP_CAP_UTF8_ACCEPT) != 0, &l,
		                   &err) < 0 ||
		    (l.flags & IMAP_LIST_NONEXISTENT) || j->nlists >= 10000)
			return;
		j->lists = xrealloc(j->lists, (j->nlists + 1) * sizeof(*j->lists));
		j->lists[j->nlists] = l;
		j->lists[j->nlists++].raw = NULL;
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* The EAS type a mailbox's name suggests (its last level), or 12. */
static int
type_by_name(const char *leaf)
{
	static const struct {
		const char *name;
		int type;
	} names[] = {
	    {"Drafts", MBX_FOLDER_DRAFTS},
	    {"Trash", MBX_FOLDER_DELETED},
	    {"Deleted Items", MBX_FOLDER_DELETED},
	    {"Deleted Messages", MBX_FOLDER_DELETED},
	    {"Sent", MBX_FOLDER_SENT},
	    {"Sent Items", MBX_FOLDER_SENT},
	    {"Sent Messages", MBX_FOLDER_SENT},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (str_ieq(leaf, names[i].name))
			return names[i].type;
	}
	return MBX_FOLDER_MAIL;
}

/* The folder map answered: the folder list is built. */
static void
ids_done(void *arg, int rv, char **ids)
{
	struct job *j = arg;
	struct mi *m = j->m;
	bool taken[MBX_FOLDER_MAIL + 1] = {false};
	size_t n = j->nlists;

	if (rv < 0) {
		job_fail(j, "the folder ids could not be assigned");
		return;
	}
	m->fl = xcalloc(n ? n : 1, sizeof(*m->fl));
	m->mailboxes = xcalloc(n ? n : 1, sizeof(char *));
	m->nf = n;
	for (size_t i = 0; i < n; i++) {
		m->fl[i].id = ids[i];
		m->fl[i].name = NULL;
		m->mailboxes[i] = xstrdup(j->lists[i].name);
		m->fl[i].type = MBX_FOLDER_MAIL;
	}
	free(ids);
	m->delim = '\0';
	for (size_t i = 0; i < n && m->delim == '\0'; i++)
		m->delim = j->lists[i].delim;
	/* Types: INBOX, SPECIAL-USE, then names, each default type once. */
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct imap_list *l = &j->lists[i];
			const char *leaf = l->delim ? strrchr(l->name, l->delim) : NULL;
			int t = MBX_FOLDER_MAIL;
			leaf = leaf ? leaf + 1 : l->name;
			if (m->fl[i].type != MBX_FOLDER_MAIL || (l->flags & IMAP_LIST_NOSELECT))
				continue;
			if (pass == 0 && str_ieq(l->name, "INBOX"))
				t = MBX_FOLDER_INBOX;
			else if (pass == 1)
				t = l->flags & IMAP_LIST_DRAFTS  ? MBX_FOLDER_DRAFTS
				    : l->flags & IMAP_LIST_TRASH ? MBX_FOLDER_DELETED
				    : l->flags & IMAP_LIST_SENT  ? MBX_FOLDER_SENT
				                                 : MBX_FOLDER_MAIL;
			else if (pass == 2 && l->delim && strchr(l->name, l->delim) == NULL)
				t = type_by_name(leaf);
			if (t != MBX_FOLDER_MAIL && !taken[t]) {
				taken[t] = true;
				m->fl[i].type = t;
			}
		}
	}
	/* Names (the last level) and parents (the mailbox up to the last delimiter). */
	for (size_t i = 0; i < n; i++) {
		const struct imap_list *l = &j->lists[i];
		const char *cut = l->delim ? strrchr(m->mailboxes[i], l->delim) : NULL;
		m->fl[i].name = cut ? cut + 1 : m->mailboxes[i];
		m->fl[i].parent_id = "0";
		if (m->fl[i].type == MBX_FOLDER_INBOX)
			m->fl[i].name = "Inbox";
		for (size_t k = 0; cut && k < n; k++) {
			if (strlen(m->mailboxes[k]) == (size_t)(cut - m->mailboxes[i]) &&
			    strncmp(m->mailboxes[k], m->mailboxes[i],
			            (size_t)(cut - m->mailboxes[i])) == 0)
				m->fl[i].parent_id = m->fl[k].id;
		}
	}
	job_finish(j, 0, NULL);
}

/*
 * The folder map's probe answered: the ids, or the mailboxes it needs the
 * server's word on (a name it does not know, or one without a UIDVALIDITY),
 * whose STATUS is asked next (a \Noselect one has none: not asked).
 */
static void
probe_done(void *arg, int rv, char **ids)
{
	struct job *j = arg;
	size_t asked = 0;

	if (rv == 0) {
		ids_done(j, 0, ids);
		return;
	}
	if (rv < 0 || ids == NULL) {
		free(ids);
		job_fail(j, "the folder ids could not be assigned");
		return;
	}
	j->lask = xcalloc(j->nlists ? j->nlists : 1, sizeof(*j->lask));
	j->luv = xcalloc(j->nlists ? j->nlists : 1, sizeof(*j->luv));
	j->lmid = xcalloc(j->nlists ? j->nlists : 1, sizeof(*j->lmid));
	for (size_t i = 0; i < j->nlists; i++) {
		if (j->lists[i].flags & IMAP_LIST_NOSELECT)
			j->luv[i] = -1;
		else if (ids[i] == NULL)
			j->lask[i] = true, asked++;
		free(ids[i]);
	}
	free(ids);
	j->step = asked > 0 ? 2 : 3;
	job_step(j);
}

/*
 * STATUS (UIDVALIDITY [MAILBOXID]) of the mailboxes the folder map asked
 * about, or LIST-STATUS's: each kept by its name. A mailbox the server
 * refuses (gone since the LIST) stays unknown: a new folder, not a failure.
 */
static void
fstatus_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imap_status_data st;
	char name[IMAP_MAILBOX_MAX + 1];
	const char *err;
	long len;

	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "STATUS") == 0) {
		if (imap_status_read(r, &st, &err) < 0)
			return;
		if (imap_client_enabled(c) & IMAP_CAP_UTF8_ACCEPT)
			len =
			    snprintf(name, sizeof(name), "%s", st.raw) < (int)sizeof(name) ? 0 : -1;
		else
			len = imap_mutf7_decode(st.raw, strlen(st.raw), name, sizeof(name));
		for (size_t i = 0; len >= 0 && i < j->nlists; i++) {
			if (!j->lask[i] || strcmp(j->lists[i].name, name) != 0)
				continue;
			if (st.have & IMAP_STATUS_UIDVALIDITY)
				j->luv[i] = st.uidvalidity;
			if ((st.have & IMAP_STATUS_MAILBOXID) && j->lmid[i] == NULL &&
			    strlen(st.mailboxid) <= 255)
				j->lmid[i] = xstrdup(st.mailboxid);
			break;
		}
		return;
	}
	lenient_cb(c, r, arg); /* a STATUS refused leaves the folder unknown */
}

/*
 * The listing to the folder map: names, and, after the STATUS step, what
 * the server said of those the probe asked about.
 */
static void
folders_assign(struct job *j, bool probe)
{
	struct mi *m = j->m;
	struct mbx_imap_listed *l = xcalloc(j->nlists ? j->nlists : 1, sizeof(*l));
	char delim = '\0';

	for (size_t i = 0; i < j->nlists; i++) {
		l[i].mailbox = j->lists[i].name;
		if (j->luv != NULL) {
			l[i].uidvalidity = j->luv[i];
			l[i].mailbox_id = j->lmid[i];
		} else if (j->lists[i].flags & IMAP_LIST_NOSELECT) {
			l[i].uidvalidity = -1;
		}
		if (delim == '\0')
			delim = j->lists[i].delim;
	}
	/* done may run (and the job end) before assign returns: j is not touched after. */
	m->map->assign(m->map->arg, m->account, l, j->nlists, delim, probe,
	               probe ? probe_done : ids_done, j);
	free(l);
}

/* How many asked mailboxes make one LIST-STATUS cheaper than a STATUS each. */
#define FOLDERS_LIST_STATUS_AT 8

/*
 * The folder list: LIST; the folder map's probe (a listing with no new name
 * costs nothing more); STATUS of the names it asked about, pipelined, or
 * one LIST-STATUS when many are (the first listing of an account); the
 * map's answer with them (renames on the server followed).
 */
static void
folders_step(struct job *j)
{
	struct mi *m = j->m;
	struct imap_cmd *cmd;
	uint32_t caps = imap_client_caps(m->c);
	const char *items = caps & IMAP_CAP_OBJECTID ? "(UIDVALIDITY MAILBOXID)" : "(UIDVALIDITY)";
	size_t asked = 0;

	switch (j->step) {
	case 0:
		cmd = imap_cmd_new("LIST \"\" \"*\"");
		if ((caps & (IMAP_CAP_LIST_EXTENDED | IMAP_CAP_SPECIAL_USE)) ==
		    (IMAP_CAP_LIST_EXTENDED | IMAP_CAP_SPECIAL_USE))
			imap_cmd_raw(cmd, "RETURN (SPECIAL-USE)");
		cmd_send(j, cmd, list_cb, NULL);
		break;
	case 1:
		folders_assign(j, true);
		break;
	case 2:
		for (size_t i = 0; i < j->nlists; i++)
			asked += j->lask[i];
		if (asked >= FOLDERS_LIST_STATUS_AT && (caps & IMAP_CAP_LIST_STATUS)) {
			cmd = imap_cmd_new("LIST \"\" \"*\" RETURN");
			imap_cmd_rawf(cmd, "(STATUS %s)", items);
			cmd_send(j, cmd, fstatus_cb, NULL);
			asked = 0;
		}
		for (size_t i = 0; i < j->nlists && asked > 0; i++) {
			if (!j->lask[i])
				continue;
			cmd = imap_cmd_new("STATUS");
			if (imap_cmd_mailbox(cmd, m->c, j->lists[i].name) < 0) {
				imap_cmd_free(cmd);
				continue;
			}
			imap_cmd_raw(cmd, items);
			cmd_send(j, cmd, fstatus_cb, NULL);
		}
		if (j->outstanding == 0) {
			j->step++;
			folders_step(j);
		}
		break;
	case 3:
		folders_assign(j, false);
		break;
	}
}

/* Whether the folder list is here: 0, -1, or MBX_PENDING (started). */
static int
need_folders(struct mi *m, const char **errstr_r)
{
	struct job *j;

	if (m->folders_rv != MBX_PENDING) {
		if (m->folders_rv < 0)
			*errstr_r =
			    m->folders_err ? m->folders_err : "the folders could not be listed";
		return m->folders_rv;
	}
	if (m->folders_started)
		return MBX_PENDING;
	m->folders_started = true;
	j = xcalloc(1, sizeof(*j));
	j->kind = J_FOLDERS;
	if (job_start(m, j) == -1) {
		*errstr_r = m->folders_err;
		return -1;
	}
	return m->folders_rv == MBX_PENDING ? MBX_PENDING : need_folders(m, errstr_r);
}

/* ---- changes ---- */

static void
search_cb(struct imap_client *c, const struct imap_response *r, void *arg, struct uidset *set)
{
	uint64_t ms;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "SEARCH") == 0) {
		if (imap_search_read(r, set, &ms, &err) < 0)
			((struct job *)arg)->failed = true;
		return;
	}
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "ESEARCH") == 0) {
		struct imap_esearch es = {0};
		es.all.max_ranges = IMAP_UIDSET_MAX;
		if (imap_esearch_read(r, &es, &err) < 0) {
			((struct job *)arg)->failed = true;
		} else {
			for (size_t i = 0; i < es.all.n; i++) {
				if (uidset_add_range(set, es.all.r[i].lo, es.all.r[i].hi) < 0)
					((struct job *)arg)->failed = true;
			}
		}
		uidset_clear(&es.all);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(arg, r);
}

#define SEARCH_CB(name, field)                                                                     \
	static void name(struct imap_client *c, const struct imap_response *r, void *arg)          \
	{                                                                                          \
		search_cb(c, r, arg, &((struct job *)arg)->field);                                 \
	}
SEARCH_CB(search_all_cb, s_all)
SEARCH_CB(search_win_cb, s_win)
SEARCH_CB(search_seen_cb, s_seen)
SEARCH_CB(search_flag_cb, s_flag)

/* UID SEARCH [RETURN (ALL)] criteria. */
static void
search(struct job *j, const char *criteria, imap_cmd_cb cb)
{
	struct imap_cmd *cmd = imap_cmd_new("UID SEARCH");

	if (imap_client_caps(j->m->c) & IMAP_CAP_ESEARCH)
		imap_cmd_raw(cmd, "RETURN (ALL)");
	imap_cmd_raw(cmd, criteria);
	cmd_send(j, cmd, cb, NULL);
}

/* Append a change item. */
static void
push(struct mbx_change_item **v, size_t *n, uint32_t uid, bool read, bool flagged, bool soft)
{
	struct mbx_change_item *it;

	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	it = &(*v)[(*n)++];
	memset(it, 0, sizeof(*it));
	snprintf(it->id, sizeof(it->id), "%" PRIu32, uid);
	it->read = read;
	it->flagged = flagged;
	it->soft = soft;
}

/* Call fn on every UID of s (ascending), until it returns false. */
#define FOR_UIDS(s, u)                                                                             \
	for (size_t _i = 0; _i < (s)->n; _i++)                                                     \
		for (uint32_t u = (s)->r[_i].lo, _go = 1; _go; _go = u != (s)->r[_i].hi, u += _go)

/*
 * The folder's changes from the searches against the cursor (the memory
 * backend's semantics): soft deletes, deletes, read/flag changes, adds
 * newest first, at most w->size reported; out->cursor the advanced cursor.
 * 1, or 0 when even the cursor as it came cannot be written.
 */
static int
compute(struct job *j, struct cur *c, struct mbx_changes *out)
{
	const struct mbx_window *w = &j->w;
	const struct uidset *win = &j->s_win;
	struct uidset have = {.max_ranges = IMAP_UIDSET_MAX},
	              gone = {.max_ranges = IMAP_UIDSET_MAX};
	size_t room = w->size, nsoft = 0, nsoft_rep = 0, ndel = 0, nchg = 0, nadd = 0;
	int64_t since = j->since;

	uidset_copy(&have, &c->have);
	have.max_ranges = IMAP_UIDSET_MAX;
	if (c->seen_unknown) { /* the device is taken to have the server's read states */
		uidset_clear(&c->seen);
		FOR_UIDS(&have, u)
		{
			if (uidset_contains(&j->s_seen, u))
				(void)uidset_add(&c->seen, u);
		}
		c->seen_unknown = false;
	}
	/* Soft deletes: still there, out of a narrower window. */
	if (since > c->since) {
		FOR_UIDS(&have, u)
		{
			if (!uidset_contains(&j->s_all, u) || uidset_contains(&j->s_win, u))
				continue;
			nsoft++;
			if (room == 0)
				continue;
			(void)uidset_add(&gone, u);
			push(&out->deletes, &out->n_deletes, u, false, false, true);
			nsoft_rep++;
			room--;
		}
	}
	/* Deletes: gone from the server (or \Deleted). */
	FOR_UIDS(&have, u)
	{
		if (uidset_contains(&j->s_all, u))
			continue;
		ndel++;
		if (room == 0 || out->n_deletes < nsoft)
			continue;
		(void)uidset_add(&gone, u);
		push(&out->deletes, &out->n_deletes, u, false, false, false);
		room--;
	}
	/* Read and flag changes of what stays. */
	FOR_UIDS(&have, u)
	{
		bool seen, fl;
		if (!uidset_contains(&j->s_all, u) || !uidset_contains(win, u))
			continue;
		seen = uidset_contains(&j->s_seen, u);
		fl = uidset_contains(&j->s_flag, u);
		if (seen == uidset_contains(&c->seen, u) && fl == uidset_contains(&c->flagged, u))
			continue;
		nchg++;
		if (room == 0 || out->n_deletes < nsoft + ndel)
			continue;
		set_bit(&c->seen, u, seen);
		set_bit(&c->flagged, u, fl);
		push(&out->changed, &out->n_changed, u, seen, fl, false);
		room--;
	}
	for (size_t i = 0; i < gone.n; i++) {
		for (uint32_t u = gone.r[i].lo;; u++) {
			(void)uidset_remove(&c->have, u);
			(void)uidset_remove(&c->seen, u);
			(void)uidset_remove(&c->flagged, u);
			if (u == gone.r[i].hi)
				break;
		}
	}
	if (nsoft_rep == nsoft)
		c->since = since;
	/* Adds: in the window, not had; newest first. */
	for (size_t i = win->n; i-- > 0;) {
		for (uint32_t u = win->r[i].hi;; u--) {
			if (!uidset_contains(&have, u)) {
				nadd++;
				if (room != 0 &&
				    out->n_deletes + out->n_changed == nsoft + ndel + nchg &&
				    uidset_add(&c->have, u) == 0) {
					bool seen = uidset_contains(&j->s_seen, u);
					bool fl = uidset_contains(&j->s_flag, u);
					set_bit(&c->seen, u, seen);
					set_bit(&c->flagged, u, fl);
					push(&out->adds, &out->n_adds, u, seen, fl, false);
					room--;
				}
			}
			if (u == win->r[i].lo)
				break;
		}
	}
	uidset_clear(&have);
	uidset_clear(&gone);
	out->total = nsoft + ndel + nchg + nadd;
	/* The cursor must fit: fewer adds when it does not (the rest comes next time). */
	while (cur_format(c, out->cursor) < 0) {
		uint32_t u;
		if (out->n_adds == 0) {
			log_warn(
			    "native: the change cursor of a folder does not fit (%zu ranges had)",
			    c->have.n);
			return 0;
		}
		u = uid_of(out->adds[--out->n_adds].id);
		(void)uidset_remove(&c->have, u);
		(void)uidset_remove(&c->seen, u);
		(void)uidset_remove(&c->flagged, u);
	}
	out->more_available = out->n_deletes + out->n_changed + out->n_adds < out->total;
	if (out->more_available && c->modseq != 0) {
		/* Not complete for the state it was read at: the next time searches again. */
		c->modseq = 0;
		(void)cur_format(c, out->cursor); /* shorter than the one that fitted */
	}
	return 1;
}

/* The batch FETCH's body literal pieces, by sequence number. */
static int
body_chunk(struct imap_client *c, const struct imap_literal_info *li, const char *data, size_t len,
           void *arg)
{
	struct job *j = arg;
	struct pbuf *pb = NULL;

	(void)c;
	for (size_t i = 0; i < j->npb; i++) {
		if (j->pb[i].seq == li->seq)
			pb = &j->pb[i];
	}
	if (pb == NULL) {
		j->pb = xrealloc(j->pb, (j->npb + 1) * sizeof(*j->pb));
		pb = &j->pb[j->npb++];
		memset(pb, 0, sizeof(*pb));
		pb->seq = li->seq;
	}
	if (pb->b.len + len > MBX_IMAP_RAW_CAP)
		len = pb->b.len < MBX_IMAP_RAW_CAP ? MBX_IMAP_RAW_CAP - pb->b.len : 0;
	sbuf_addn(&pb->b, data, len);
	return 0;
}

/* A FETCH response as a message (its body from the literal's pieces). */
static bool
read_msg(struct job *j, const struct imap_response *r, struct imsg *out)
{
	struct imap_fetch f;
	struct imap_address a;
	const char *err;

	memset(&f, 0, sizeof(f));
	if (imap_fetch_read(r, &f, &err) < 0 || !(f.have & IMAP_FETCH_UID)) {
		imap_fetch_clear(&f);
		return false;
	}
	memset(out, 0, sizeof(*out));
	out->uid = f.uid;
	out->flags = f.flags;
	out->idate = f.internaldate;
	out->size = f.size;
	if (f.envelope.subject)
		out->subject = xstrdup(f.envelope.subject);
	if (f.envelope.from && imap_address_get(f.envelope.from, 0, &a) == 0 && a.mailbox && a.host)
		out->from = xasprintf("%s@%s", a.mailbox, a.host);
	for (size_t i = 0; i < j->npb; i++) {
		if (j->pb[i].seq == f.seq) {
			out->raw_len = j->pb[i].b.len;
			out->raw = j->pb[i].b.p ? j->pb[i].b.p : xstrdup("");
			j->pb[i].b.p = NULL;
			j->pb[i].b.len = 0;
			j->pb[i].seq = 0;
		}
	}
	for (unsigned i = 0; out->raw == NULL && i < f.nitems; i++) {
		const struct imap_node *v = f.items[i].value;
		if (v && v->type == IMAP_NODE_STRING && !v->streamed) { /* held, not streamed */
			out->raw_len = v->len < MBX_IMAP_RAW_CAP ? v->len : MBX_IMAP_RAW_CAP;
			out->raw = xmemdup0(v->s, out->raw_len); /* NULs and all */
		}
	}
	imap_fetch_clear(&f);
	return true;
}

static void
batch_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imsg x;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		if (!read_msg(j, r, &x))
			return;
		if (!uidset_contains(&j->fetch_set, x.uid) ||
		    j->batch->n >= j->fetch_set.n + 10000) {
			imsg_clear(&x);
			return;
		}
		j->batch->m = xrealloc(j->batch->m, (j->batch->n + 1) * sizeof(*j->batch->m));
		j->batch->m[j->batch->n++] = x;
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* The adds' sizes (UID RFC822.SIZE), by their place among the adds. */
static void
sizes_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imap_fetch f;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		memset(&f, 0, sizeof(f));
		if (imap_fetch_read(r, &f, &err) == 0 && (f.have & IMAP_FETCH_UID)) {
			for (size_t i = 0; i < j->memo->ch.n_adds; i++) {
				if (uid_of(j->memo->ch.adds[i].id) == f.uid)
					j->add_size[i] = (uint32_t)f.size;
			}
		}
		imap_fetch_clear(&f);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/*
 * Keep the adds (newest first) whose bodies, up to MBX_IMAP_RAW_CAP each,
 * fit MBX_IMAP_BATCH_CAP together (at least one); the rest leave the cursor
 * and come with the next request (MoreAvailable), so that a window of large
 * messages is never held whole.
 */
static void
cut_batch(struct job *j)
{
	struct mbx_changes *ch = &j->memo->ch;
	uint64_t sum = 0;
	size_t keep = 0;

	while (keep < ch->n_adds) {
		/* a larger one: its first MiB and its outline's texts */
		uint64_t sz = j->add_size[keep] <= MBX_IMAP_RAW_CAP ? j->add_size[keep]
		                                                    : 2 * MBX_IMAP_RAW_CAP;
		if (keep > 0 && sum + sz > MBX_IMAP_BATCH_CAP)
			break;
		sum += sz;
		keep++;
	}
	if (keep == ch->n_adds)
		return;
	log_debug("native: %s: prefetch of %s cut to %zu of %zu adds (%" PRIu64 " bytes)",
	          j->m->account, j->mailbox, keep, ch->n_adds, sum);
	while (ch->n_adds > keep) {
		uint32_t u = uid_of(ch->adds[--ch->n_adds].id);
		(void)uidset_remove(&j->cut.have, u);
		(void)uidset_remove(&j->cut.seen, u);
		(void)uidset_remove(&j->cut.flagged, u);
		(void)uidset_remove(&j->fetch_set, u);
	}
	j->cut.modseq = 0;                     /* not complete: the next time searches again */
	(void)cur_format(&j->cut, ch->cursor); /* fewer UIDs than a cursor that fitted */
	ch->more_available = true;
}

/* ---- outlines of large messages ---- */

/*
 * A message over MBX_IMAP_RAW_CAP is not read from its first MiB (which
 * may end inside an attachment before its text) but from its outline
 * (mailbox.h, mbx_email.outline): UID FETCH (BODYSTRUCTURE BODY.PEEK[HEADER])
 * of the batch's large messages, then per message one UID FETCH of the
 * main body's text parts (BODY.PEEK[sec]<0.max>), at most
 * MBX_IMAP_TEXT_CAP of each and MBX_IMAP_RAW_CAP of all of them.
 */

/* The outline whole: the message reads from it, and its parts' list. */
static void
ol_finish(struct imsg *x)
{
	outline_finish(x->ob, &x->outline, &x->outline_len, &x->parts, &x->nparts);
	x->ob = NULL;
	log_debug("native: outline of %" PRIu32 " (%" PRIu64 " bytes): %zu bytes, %zu parts",
	          x->uid, x->size, x->outline_len, x->nparts);
}

/* The job's large message uid, or NULL. */
static struct imsg *
ol_msg(struct job *j, uint32_t uid)
{
	for (size_t i = 0; i < j->ol_n; i++) {
		if (j->ol_v[i].uid == uid)
			return &j->ol_v[i];
	}
	return NULL;
}

/* Whether a fetched message is too large to be read from its first bytes. */
static bool
ol_large(const struct imsg *x)
{
	return x->raw != NULL && x->size > MBX_IMAP_RAW_CAP && x->raw_len < x->size;
}

/* The outline FETCHes' literal pieces, by sequence number and section (each capped). */
static int
ol_chunk(struct imap_client *c, const struct imap_literal_info *li, const char *data, size_t len,
         void *arg)
{
	struct job *j = arg;
	const char *a = li->item ? strchr(li->item, '[') : NULL, *b = a ? strchr(a, ']') : NULL;
	struct olbuf *ob = NULL;
	size_t n = b ? (size_t)(b - a - 1) : 0;

	(void)c;
	if (b == NULL || n > MBX_ID_MAX)
		return 0;
	for (size_t i = 0; i < j->nolb && ob == NULL; i++) {
		if (j->olb[i].seq == li->seq && strlen(j->olb[i].section) == n &&
		    strncasecmp(j->olb[i].section, a + 1, n) == 0)
			ob = &j->olb[i];
	}
	if (ob == NULL) {
		/*
		 * A header and MBX_IMAP_TEXTS texts per outlined message at the most,
		 * each dropped with its FETCH: a server sending more literals than
		 * asked for does not make the job hold more.
		 */
		if (j->nolb >= j->ol_n * (MBX_IMAP_TEXTS + 1))
			return 0;
		j->olb = xrealloc(j->olb, (j->nolb + 1) * sizeof(*j->olb));
		ob = &j->olb[j->nolb++];
		memset(ob, 0, sizeof(*ob));
		ob->seq = li->seq;
		memcpy(ob->section, a + 1, n);
		ob->section[n] = '\0';
	}
	if (ob->b.len + len > MBX_IMAP_TEXT_CAP)
		len = ob->b.len < MBX_IMAP_TEXT_CAP ? MBX_IMAP_TEXT_CAP - ob->b.len : 0;
	sbuf_addn(&ob->b, data, len);
	return 0;
}

/* The literal of seq's section received, or NULL. */
static struct olbuf *
ol_buf(struct job *j, uint32_t seq, const char *section)
{
	for (size_t i = 0; i < j->nolb; i++) {
		if (j->olb[i].seq == seq && strcasecmp(j->olb[i].section, section) == 0)
			return &j->olb[i];
	}
	return NULL;
}

/* Drop the literals of seq (its FETCH response was read). */
static void
ol_drop(struct job *j, uint32_t seq)
{
	for (size_t i = 0; i < j->nolb;) {
		if (j->olb[i].seq == seq) {
			free(j->olb[i].b.p);
			j->olb[i] = j->olb[--j->nolb];
		} else {
			i++;
		}
	}
}

/* The FETCH of the large messages' BODYSTRUCTURE and header: each outline started. */
static void
ol_struct_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imap_fetch f;
	struct imsg *x;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		memset(&f, 0, sizeof(f));
		if (imap_fetch_read(r, &f, &err) < 0) {
			if (r->has_number) /* its literals go with it */
				ol_drop(j, r->number);
			return;
		}
		struct olbuf *h = ol_buf(j, f.seq, "HEADER");
		if ((f.have & IMAP_FETCH_UID) && (f.have & IMAP_FETCH_BODYSTRUCTURE) &&
		    f.body != NULL && h != NULL && (x = ol_msg(j, f.uid)) != NULL && ol_large(x) &&
		    x->ob == NULL && x->outline == NULL)
			x->ob = outline_start(h->b.p ? h->b.p : "", h->b.len, f.body);
		ol_drop(j, f.seq);
		imap_fetch_clear(&f);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* The FETCH of one message's body text parts. */
static void
ol_text_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imap_fetch f;
	struct imsg *x;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		memset(&f, 0, sizeof(f));
		if (imap_fetch_read(r, &f, &err) < 0) {
			if (r->has_number) /* its literals go with it */
				ol_drop(j, r->number);
			return;
		}
		if ((f.have & IMAP_FETCH_UID) && (x = ol_msg(j, f.uid)) != NULL && x->ob != NULL) {
			struct outline_build *ob = x->ob;
			for (size_t k = 0; k < ob->ntexts; k++) {
				struct olbuf *t = ol_buf(j, f.seq, ob->sec[k]);
				if (t != NULL)
					outline_text(ob, k, t->b.p, t->b.len);
			}
		}
		ol_drop(j, f.seq);
		imap_fetch_clear(&f);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/*
 * The outline phase's steps (j->ostep; job_step comes here while
 * j->outlining): the structures and headers, the texts, the outlines put
 * together; then the job's own step goes on where it was.
 */
static void
outline_step(struct job *j)
{
	struct imap_cmd *cmd;

	switch (j->ostep) {
	case 0: {
		struct uidset set = {0};
		set.max_ranges = IMAP_UIDSET_MAX;
		for (size_t i = 0; i < j->ol_n; i++) {
			if (ol_large(&j->ol_v[i]))
				(void)uidset_add(&set, j->ol_v[i].uid);
		}
		cmd = imap_cmd_new("UID FETCH");
		imap_cmd_uidset(cmd, &set);
		imap_cmd_rawf(cmd, "(UID BODYSTRUCTURE BODY.PEEK[HEADER]<0.%d>)",
		              MBX_IMAP_HEADER_CAP);
		uidset_clear(&set);
		cmd_send(j, cmd, ol_struct_cb, ol_chunk);
		if (j->outstanding == 0)
			job_fail(j, "the IMAP connection is closed");
		break;
	}
	case 1:
		for (size_t i = 0; i < j->ol_n; i++) {
			struct outline_build *ob = j->ol_v[i].ob;
			struct sbuf it = {0};
			if (ob == NULL || ob->ntexts == 0)
				continue;
			for (size_t k = 0; k < ob->ntexts; k++)
				sbuf_printf(&it, " BODY.PEEK[%s]<0.%" PRIu64 ">", ob->sec[k],
				            ob->max[k]);
			cmd = imap_cmd_new("UID FETCH");
			imap_cmd_rawf(cmd, "%" PRIu32 " (UID%s)", j->ol_v[i].uid, it.p);
			free(it.p);
			cmd_send(j, cmd, ol_text_cb, ol_chunk);
		}
		if (j->outstanding > 0)
			break;
		if (j->failed) {
			job_fail(j, "the IMAP connection is closed");
			break;
		}
		j->ostep++;
		/* fall through */
	case 2:
		for (size_t i = 0; i < j->ol_n; i++) {
			if (j->ol_v[i].ob != NULL)
				ol_finish(&j->ol_v[i]);
		}
		j->outlining = false;
		job_step(j);
		break;
	}
}

/*
 * Outline the large messages among n fetched ones (once per job step that
 * asks): true when the outline phase started (the job's step runs again
 * when it ends), false when there is nothing to outline.
 */
static bool
outline_begin(struct job *j, struct imsg *v, size_t n)
{
	bool any = false;

	if (j->outlined)
		return false;
	j->outlined = true;
	for (size_t i = 0; i < n && !any; i++)
		any = ol_large(&v[i]);
	if (!any)
		return false;
	log_debug("native: %s: outlines of the large messages among %zu", j->m->account, n);
	j->ol_v = v;
	j->ol_n = n;
	j->outlining = true;
	j->ostep = 0;
	outline_step(j);
	return true;
}

/* ---- parsing off the loop ---- */

/*
 * The parse thread is done with the step's messages: their bytes back, each
 * one's parse kept with it (a message it could not read is parsed by the
 * command layer, which shows what it can); the job's step runs again.
 */
static void
on_parsed(void *arg, struct parseq_msg *pv, size_t n)
{
	struct job *j = arg;

	for (size_t i = 0; i < n && i < j->pa_n; i++) {
		struct imsg *x = &j->pa_v[i];
		x->raw = pv[i].raw;
		x->outline = pv[i].outline;
		if (pv[i].rv == 0) {
			x->parsed = xmalloc(sizeof(*x->parsed));
			*x->parsed = pv[i].m;
			memset(&pv[i].m, 0, sizeof(pv[i].m));
		} else
			msgconv_msg_clear(&pv[i].m);
	}
	free(pv); /* every message's parse moved out or cleared */
	abq_metrics_native_parsed(false, n);
	j->pj = NULL;
	j->parsing = false;
	job_step(j);
}

/*
 * Parse n fetched messages on the parse thread (once per job step that
 * asks): true when the parse phase started (their bytes are the parse
 * job's until on_parsed gives them back, or until a cancel frees them),
 * false when there is no thread or its caps refuse the batch (the command
 * layer parses them then).
 */
static bool
parse_begin(struct job *j, struct imsg *v, size_t n)
{
	struct parseq_msg *pv;

	if (j->m->pq == NULL || j->parse_done || n == 0)
		return false;
	j->parse_done = true;
	pv = xcalloc(n, sizeof(*pv));
	for (size_t i = 0; i < n; i++) {
		pv[i].raw = v[i].raw;
		pv[i].raw_len = v[i].raw_len;
		pv[i].outline = v[i].outline;
		pv[i].outline_len = v[i].outline_len;
		pv[i].internal_date = v[i].idate;
	}
	if ((j->pj = parseq_parse(j->m->pq, pv, n, on_parsed, j)) == NULL) {
		free(pv);                           /* refused: the bytes stay the messages' */
		abq_metrics_native_parsed(true, n); /* the command layer parses them */
		return false;
	}
	for (size_t i = 0; i < n; i++)
		v[i].raw = v[i].outline = NULL;
	j->pa_v = v;
	j->pa_n = n;
	j->parsing = true;
	return true;
}

/* UID FETCH of set with everything an item needs. */
static void
fetch_items(struct job *j, const struct uidset *set, imap_cmd_cb cb)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH");

	imap_cmd_uidset(cmd, set);
	imap_cmd_rawf(cmd, "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[]<0.%d>)",
	              MBX_IMAP_RAW_CAP);
	cmd_send(j, cmd, cb, body_chunk);
}

static void
changes_step(struct job *j)
{
	struct cur c;
	char date[32];
	struct tm tm;
	time_t t;
	int rv;

	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		if (j->failed) {
			job_fail(j, "the folder could not be selected");
			return;
		}
		if (j->cursor &&
		    (cur_parse(j->cursor, &c) < 0 || c.uidvalidity != j->uidvalidity)) {
			log_debug("native: %s: cursor of %s no longer applies (uidvalidity %" PRIu32
			          " now %" PRIu32 ")",
			          j->m->account, j->mailbox, c.uidvalidity, j->uidvalidity);
			cur_clear(&c);
			job_finish(j, 0, NULL); /* not ours, or the folder was recreated */
			return;
		}
		if (j->cursor)
			cur_clear(&c);
		j->s_all.max_ranges = j->s_win.max_ranges = j->s_seen.max_ranges =
		    j->s_flag.max_ranges = IMAP_UIDSET_MAX;
		j->since = j->w.since;
		if (j->since < 0) {
			j->since = 0;
			if (j->cursor && cur_parse(j->cursor, &c) == 0) {
				j->since = c.since;
				cur_clear(&c);
			}
		}
		if (unchanged(j)) {
			/* CONDSTORE: nothing moved since a complete cursor, same window. */
			snprintf(j->memo->ch.cursor, sizeof(j->memo->ch.cursor), "%s", j->cursor);
			job_finish(j, 1, NULL);
			return;
		}
		/*
		 * One search at a time: a server may answer pipelined SEARCHes'
		 * untagged data out of order (Dovecot does), and plain SEARCH
		 * results carry no tag.
		 */
		search(j, "UNDELETED", search_all_cb);
		break;
	case 2:
		if (j->since != 0) {
			t = (time_t)j->since;
			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "UNDELETED SINCE %d-%b-%Y", &tm);
			search(j, date, search_win_cb);
			break;
		}
		j->step++;
		/* fall through */
	case 3:
		search(j, "SEEN", search_seen_cb);
		break;
	case 4:
		search(j, "FLAGGED", search_flag_cb);
		break;
	case 5:
		if (j->since == 0) /* the window is everything */
			uidset_copy(&j->s_win, &j->s_all);
		if (j->cursor == NULL) {
			memset(&c, 0, sizeof(c));
			c.uidvalidity = j->uidvalidity;
		} else {
			(void)cur_parse(j->cursor, &c);
		}
		c.have.max_ranges = c.seen.max_ranges = c.flagged.max_ranges = IMAP_UIDSET_MAX;
		/* The state read before the searches (a later change makes the next one search). */
		c.modseq = j->sel_fresh ? j->sel_modseq : 0;
		c.uidnext = j->sel_uidnext;
		c.exists = j->sel_exists;
		rv = compute(j, &c, &j->memo->ch);
		j->cut = c; /* kept for the prefetch's cap */
		memset(&c, 0, sizeof(c));
		log_debug(
		    "native: %s: changes of %s: all %" PRIu64 " window %" PRIu64 " seen %" PRIu64
		    " flagged %" PRIu64 ": %zu deletes, %zu changed, %zu adds of %zu",
		    j->m->account, j->mailbox, uidset_count(&j->s_all), uidset_count(&j->s_win),
		    uidset_count(&j->s_seen), uidset_count(&j->s_flag), j->memo->ch.n_deletes,
		    j->memo->ch.n_changed, j->memo->ch.n_adds, j->memo->ch.total);
		cur_clear(&c);
		if (rv == 0 || j->w.size == 0) {
			if (j->w.size == 0) /* only counted: the cursor stays as it came */
				snprintf(j->memo->ch.cursor, sizeof(j->memo->ch.cursor), "%s",
				         j->cursor ? j->cursor : "");
			job_finish(j, rv, NULL);
			return;
		}
		if (j->memo->ch.n_adds == 0) {
			job_finish(j, 1, NULL);
			return;
		}
		j->batch = xcalloc(1, sizeof(*j->batch));
		snprintf(j->batch->folder, sizeof(j->batch->folder), "%s", j->folder);
		j->fetch_set.max_ranges = IMAP_UIDSET_MAX;
		for (size_t i = 0; i < j->memo->ch.n_adds; i++)
			(void)uidset_add(&j->fetch_set, uid_of(j->memo->ch.adds[i].id));
		if ((uint64_t)j->memo->ch.n_adds * MBX_IMAP_RAW_CAP > MBX_IMAP_BATCH_CAP) {
			struct imap_cmd *cmd = imap_cmd_new("UID FETCH");
			j->add_size = xcalloc(j->memo->ch.n_adds, sizeof(*j->add_size));
			imap_cmd_uidset(cmd, &j->fetch_set);
			imap_cmd_raw(cmd, "(UID RFC822.SIZE)");
			cmd_send(j, cmd, sizes_cb, NULL);
			break;
		}
		j->step++;
		/* fall through */
	case 6:
		if (j->add_size != NULL)
			cut_batch(j);
		fetch_items(j, &j->fetch_set, batch_cb);
		break;
	case 7:
		if (outline_begin(j, j->batch->m, j->batch->n) ||
		    parse_begin(j, j->batch->m, j->batch->n))
			break;
		job_finish(j, 1, NULL);
		break;
	}
}

/*
 * Whether the folder is as the device's cursor left it, from this job's
 * SELECT alone: the cursor is complete for a HIGHESTMODSEQ (RFC 7162) and
 * the folder still has it, with the same UIDNEXT and EXISTS, and the window
 * did not move. Any write (a flag, an expunge, a new message) moves one of
 * them, so the searches would find nothing.
 */
static bool
unchanged(struct job *j)
{
	struct cur c;
	bool same;

	if (!j->sel_fresh || j->sel_modseq == 0 || j->cursor == NULL ||
	    cur_parse(j->cursor, &c) < 0)
		return false;
	same = c.modseq == j->sel_modseq && c.uidnext == j->sel_uidnext &&
	       c.exists == j->sel_exists && c.since == j->since;
	cur_clear(&c);
	return same;
}

/* ---- fetch one ---- */

static void
fetch_one_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct imsg x;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		if (!read_msg(j, r, &x))
			return;
		if (x.uid == j->uid && !j->found) {
			j->memo->msg = x;
			j->found = true;
		} else {
			imsg_clear(&x);
		}
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

static void
fetch_step(struct job *j)
{
	struct uidset one = {0};

	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		(void)uidset_add(&one, j->uid);
		fetch_items(j, &one, fetch_one_cb);
		uidset_clear(&one);
		break;
	case 2:
		if (j->found &&
		    (outline_begin(j, &j->memo->msg, 1) || parse_begin(j, &j->memo->msg, 1)))
			break;
		job_finish(j, j->found && !(j->memo->msg.flags & IMAP_FLAG_DELETED) ? 1 : 0, NULL);
		break;
	}
}

/* ---- one part (fetch_part) ---- */

/*
 * Decoded bytes pos.. of the part seen: those inside the window asked are
 * kept (at most MBX_IMAP_PART_CAP, past which the answer is refused).
 */
static void
part_emit(struct job *j, const char *d, size_t n)
{
	uint64_t lo = j->pos, hi = j->pos + n, wlo = j->off;
	uint64_t whi = j->max > 0 ? j->off + j->max : UINT64_MAX;

	j->pos = hi;
	if (hi <= wlo || lo >= whi)
		return;
	if (lo < wlo) {
		d += wlo - lo;
		lo = wlo;
	}
	if (hi > whi)
		hi = whi;
	if (j->win.len + (hi - lo) > MBX_IMAP_PART_CAP) {
		j->too_large = true;
		return;
	}
	sbuf_addn(&j->win, d, (size_t)(hi - lo));
}

/* part_emit as partdec's output. */
static void
part_emit_cb(void *arg, const char *d, size_t n)
{
	part_emit(arg, d, n);
}

/* The part's literal, piece by piece: the server's decoded bytes, or decoded here. */
static int
part_chunk(struct imap_client *c, const struct imap_literal_info *li, const char *data, size_t len,
           void *arg)
{
	struct job *j = arg;

	(void)c;
	(void)li;
	if (j->counting)
		j->counted += len;
	else if (j->binary || j->enc == PARTDEC_IDENTITY)
		part_emit(j, data, len);
	else
		partdec_feed(&j->dec, data, len, false, part_emit_cb, j);
	return 0;
}

/* The FETCH of BODYSTRUCTURE: the part's type, encoding and (identity) size. */
static void
part_struct_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	const struct imap_body *b;
	struct imap_fetch f;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		if (imap_fetch_read(r, &f, &err) < 0)
			return;
		if ((f.have & IMAP_FETCH_UID) && f.uid == j->uid && !j->found &&
		    j->section[0] == '\0' && (f.have & IMAP_FETCH_SIZE)) {
			/* the whole message: its bytes as they are, RFC822.SIZE of them */
			free(j->memo->part.content_type);
			j->memo->part.content_type = xstrdup("message/rfc822");
			j->enc = PARTDEC_IDENTITY;
			j->psize = f.size;
			j->found = true;
		} else if ((f.have & IMAP_FETCH_UID) && f.uid == j->uid && !j->found &&
		           (f.have & IMAP_FETCH_BODYSTRUCTURE) &&
		           (b = imap_body_find(f.body, j->section)) != NULL &&
		           b->section[0] != '\0') {
			char *t = xasprintf("%s/%s", b->type ? b->type : "application",
			                    b->subtype ? b->subtype : "octet-stream");
			for (char *p = t; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
			free(j->memo->part.content_type);
			j->memo->part.content_type = t;
			j->enc = b->encoding == NULL                      ? PARTDEC_IDENTITY
			         : strcasecmp(b->encoding, "BASE64") == 0 ? PARTDEC_BASE64
			         : strcasecmp(b->encoding, "QUOTED-PRINTABLE") == 0
			             ? PARTDEC_QP
			             : PARTDEC_IDENTITY;
			j->psize = b->size;
			j->found = true;
		}
		imap_fetch_clear(&f);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* The FETCH of the part's bytes: BINARY.SIZE[sec] (not read by imap_fetch_read). */
static void
part_data_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0 && r->data &&
	    r->data->type == IMAP_NODE_LIST) {
		for (const struct imap_node *k = r->data->child; k && k->next; k = k->next->next) {
			if (k->type == IMAP_NODE_ATOM &&
			    strncasecmp(k->s, "BINARY.SIZE[", 12) == 0 &&
			    k->next->type == IMAP_NODE_NUMBER) {
				j->psize = k->next->num;
				j->have_psize = true;
			}
		}
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* The decoded-size memo of a part (the request's other windows need not check again). */
static char *
total_key(const struct job *j)
{
	return xasprintf("T\x1f%s\x1f%" PRIu32 "\x1f%s", j->folder, j->uid, j->section);
}

/* The part's answer: the window read, its decoded size total. */
static void
part_done(struct job *j, uint64_t total)
{
	char *key = total_key(j);

	if (memo_find(j->m, key) == NULL) {
		struct memo *t = memo_add(j->m, key);
		t->rv = 1;
		t->part.total = total;
		/* a whole base64 pass with regular lines: the next windows read by offset */
		if (!j->binary && !j->mapped && j->off == 0)
			t->line = partdec_regular_line(&j->dec);
	} else {
		free(key);
	}
	j->memo->part.total = total;
	if (j->too_large) {
		log_info("native: %s: part %s of %" PRIu32 " over %d bytes: not fetched whole",
		         j->m->account, j->section, j->uid, MBX_IMAP_PART_CAP);
		job_finish(j, -1, "the attachment is too large to fetch whole");
		return;
	}
	j->memo->part.len = j->win.len;
	j->memo->part.data = j->win.p ? j->win.p : xstrdup("");
	j->win.p = NULL;
	job_finish(j, 1, NULL);
}

/* The request's memo of the part's decoded size (and base64 lines), or NULL. */
static const struct memo *
part_total_memo(struct job *j)
{
	char *key = total_key(j);
	const struct memo *t = memo_find(j->m, key);

	free(key);
	return t;
}

/*
 * After the BINARY window: whether the part's decoded size is known without
 * asking again (the whole part read, the window cut by the part's end, or a
 * memo of this request), and then the answer given.
 */
static bool
part_total_known(struct job *j)
{
	uint64_t got = j->pos - j->off;
	char *key = total_key(j);
	const struct memo *t = memo_find(j->m, key);

	free(key);
	if (j->off == 0 && j->max == 0)
		part_done(j, got);
	else if (got > 0 && got < j->max)
		part_done(j, j->off + got);
	else if (t != NULL)
		part_done(j, t->part.total);
	else
		return false;
	return true;
}

/*
 * Send a command of a part's step (the step's last use of j): when it could
 * not even be sent (the connection closed), the job fails now, as nothing
 * will answer it.
 */
static void
part_send(struct job *j, struct imap_cmd *cmd, imap_cmd_cb cb, imap_chunk_cb chunk)
{
	cmd_send(j, cmd, cb, chunk);
	if (j->outstanding == 0)
		job_fail(j, "the IMAP connection is closed");
}

/* UID FETCH of the part's item (BINARY.PEEK, BODY.PEEK) <off.max> (max 0: from off on), counted. */
static void
part_fetch(struct job *j, const char *item, uint64_t off, uint64_t max)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH");

	j->counting = true;
	if (max > 0)
		imap_cmd_rawf(cmd, "%" PRIu32 " (UID %s[%s]<%" PRIu64 ".%" PRIu64 ">)", j->uid,
		              item, j->section, off, max);
	else
		imap_cmd_rawf(cmd, "%" PRIu32 " (UID %s[%s])", j->uid, item, j->section);
	part_send(j, cmd, part_data_cb, part_chunk);
}

/*
 * SELECT, the part's BODYSTRUCTURE, then its bytes: BINARY.PEEK (the server
 * decodes), BODY.PEEK of the window (identity), or the whole encoded part
 * decoded here.
 */
static void
part_step(struct job *j)
{
	struct imap_cmd *cmd;
	struct sbuf it = {0};
	const struct memo *t;

	switch (j->step) {
	case 0:
		if (select_mailbox(j)) {
			if (j->outstanding == 0) /* not even sent */
				job_fail(j, "the IMAP connection is closed");
			break;
		}
		j->step++;
		/* fall through */
	case 1: {
		/* the part's structure, once per request: a streamed answer's next windows */
		char *key =
		    xasprintf("B\x1f%s\x1f%" PRIu32 "\x1f%s", j->folder, j->uid, j->section);
		const struct memo *b = memo_find(j->m, key);
		free(key);
		if (b != NULL) {
			j->found = true;
			j->enc = (enum partdec_enc)b->enc;
			j->psize = b->part.total;
			j->memo->part.content_type = xstrdup(b->part.content_type);
			j->step++;
			part_step(j);
			break;
		}
		cmd = imap_cmd_new("UID FETCH");
		imap_cmd_rawf(cmd, "%" PRIu32 " (UID %s)", j->uid,
		              j->section[0] ? "BODYSTRUCTURE" : "RFC822.SIZE");
		part_send(j, cmd, part_struct_cb, NULL);
		break;
	}
	case 2:
		if (j->found && j->memo->part.content_type != NULL) {
			char *key = xasprintf("B\x1f%s\x1f%" PRIu32 "\x1f%s", j->folder, j->uid,
			                      j->section);
			if (memo_find(j->m, key) == NULL) {
				struct memo *b = memo_add(j->m, key);
				b->rv = 1;
				b->enc = (int)j->enc;
				b->part.total = j->psize;
				b->part.content_type = xstrdup(j->memo->part.content_type);
			} else {
				free(key);
			}
		}
		if (!j->found) {
			job_finish(j, 0, NULL);
			break;
		}
		/* the whole message is read as it is: nothing to decode */
		j->binary = (imap_client_caps(j->m->c) & IMAP_CAP_BINARY) != 0 && j->section[0];
		partdec_init(&j->dec, j->binary ? PARTDEC_IDENTITY : j->enc);
		if (j->binary)
			sbuf_printf(&it, "BINARY.SIZE[%s] BINARY.PEEK[%s]", j->section, j->section);
		else
			sbuf_printf(&it, "BODY.PEEK[%s]", j->section);
		if (j->binary || j->enc == PARTDEC_IDENTITY) { /* only the window crosses */
			j->pos = j->off;
			if (j->max > 0)
				sbuf_printf(&it, "<%" PRIu64 ".%" PRIu64 ">", j->off, j->max);
			else if (j->off > 0)
				sbuf_printf(&it, "<%" PRIu64 ".%u>", j->off, UINT32_MAX);
		} else if (j->enc == PARTDEC_BASE64 && (j->off > 0 || j->max > 0) &&
		           (t = part_total_memo(j)) != NULL && t->line > 0) {
			/*
			 * Regular lines (seen by this request's whole pass): the window's
			 * quanta by their encoded offset, line breaks counted in.
			 */
			uint64_t L = t->line, q = j->off / 3, c0 = q * 4, e0 = c0 + c0 / L * 2;
			j->pos = q * 3;
			j->mapped = true;
			if (j->max > 0) {
				uint64_t c1 = (j->off + j->max + 2) / 3 * 4, e1 = c1 + c1 / L * 2;
				sbuf_printf(&it, "<%" PRIu64 ".%" PRIu64 ">", e0, e1 - e0);
			} else {
				sbuf_printf(&it, "<%" PRIu64 ".%u>", e0, UINT32_MAX);
			}
		}
		cmd = imap_cmd_new("UID FETCH");
		imap_cmd_rawf(cmd, "%" PRIu32 " (UID %s)", j->uid, it.p);
		free(it.p);
		part_send(j, cmd, part_data_cb, part_chunk);
		break;
	case 3:
		if (!j->binary && j->enc != PARTDEC_IDENTITY) {
			partdec_feed(&j->dec, "", 0, true, part_emit_cb, j);
			t = j->mapped ? part_total_memo(j) : NULL;
			part_done(j, t != NULL ? t->part.total : j->pos);
		} else if (!j->binary) {
			part_done(j, j->psize);
		} else if (part_total_known(j)) {
			/* done */
		} else if (j->have_psize && j->psize > 0) {
			/* BINARY.SIZE is an estimate on some servers: one byte at it must end there
			 */
			part_fetch(j, "BINARY.PEEK", j->psize - 1, 2);
		} else {
			j->step++;
			part_fetch(j, "BINARY.PEEK", 0, 0);
		}
		break;
	case 4:
		if (j->counted == 1) {
			part_done(j, j->psize);
			break;
		}
		log_debug("native: %s: BINARY.SIZE[%s] of %" PRIu32 " is not its size: counted",
		          j->m->account, j->section, j->uid);
		j->counted = 0;
		part_fetch(j, "BINARY.PEEK", 0, 0);
		break;
	case 5:
		part_done(j, j->counted);
		break;
	}
}

/* ---- the device's writes ---- */

/* STORE and MOVE: whether the message answered (a FETCH or an expunge of it). */
static void
write_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA &&
	    (strcmp(r->name, "FETCH") == 0 || strcmp(r->name, "EXPUNGE") == 0 ||
	     strcmp(r->name, "VANISHED") == 0))
		j->found = true;
	if (r != NULL && r->kind == IMAP_RESP_TAGGED && r->code && strcmp(r->code, "COPYUID") == 0)
		j->found = true;
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* UID STORE uid +FLAGS / -FLAGS[.SILENT] (flags). */
static void
store(struct job *j, bool add, const char *flags, bool silent)
{
	struct imap_cmd *cmd = imap_cmd_new("UID STORE");

	imap_cmd_rawf(cmd, "%" PRIu32 " %cFLAGS%s (%s)", j->uid, add ? '+' : '-',
	              silent ? ".SILENT" : "", flags);
	cmd_send(j, cmd, write_cb, NULL);
}

/* The cursor advanced past the device's own change. */
static void
advance(struct job *j)
{
	struct cur c;

	if (cur_parse(j->cursor, &c) < 0)
		return;
	if (j->kind == J_REMOVE || j->kind == J_MOVE) {
		(void)uidset_remove(&c.have, j->uid);
		(void)uidset_remove(&c.seen, j->uid);
		(void)uidset_remove(&c.flagged, j->uid);
	} else {
		if (j->read >= 0)
			set_bit(&c.seen, j->uid, j->read);
		if (j->flagged >= 0)
			set_bit(&c.flagged, j->uid, j->flagged);
	}
	snprintf(j->memo->cursor, sizeof(j->memo->cursor), "%s", j->cursor);
	(void)cur_format(&c, j->memo->cursor);
	cur_clear(&c);
}

static void
flags_step(struct job *j)
{
	char set[32] = "", clear[32] = "";

	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		/* each flag to set (> 0) or clear (0); -1 leaves it */
		snprintf(set, sizeof(set), "%s%s%s", j->read > 0 ? "\\Seen" : "",
		         j->read > 0 && j->flagged > 0 ? " " : "",
		         j->flagged > 0 ? "\\Flagged" : "");
		snprintf(clear, sizeof(clear), "%s%s%s", j->read == 0 ? "\\Seen" : "",
		         j->read == 0 && j->flagged == 0 ? " " : "",
		         j->flagged == 0 ? "\\Flagged" : "");
		if (*set)
			store(j, true, set, false);
		if (*clear)
			store(j, false, clear, false);
		if (j->outstanding == 0) {
			j->found = true;
			job_finish(j, 1, NULL);
		}
		break;
	case 2:
		if (j->found)
			advance(j);
		job_finish(j, j->found ? 1 : 0, NULL);
		break;
	}
}

static void
remove_step(struct job *j)
{
	struct mi *m = j->m;
	long t = -1;
	struct imap_cmd *cmd;
	uint32_t caps;

	for (size_t i = 0; j->to_trash && i < m->nf; i++) {
		if (m->fl[i].type == MBX_FOLDER_DELETED)
			t = (long)i;
	}
	if (t >= 0 && strcmp(m->fl[t].id, j->folder) == 0)
		t = -1; /* from the Deleted Items folder itself: expunged */
	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		caps = imap_client_caps(m->c);
		if (t >= 0 && (caps & IMAP_CAP_MOVE)) {
			cmd = imap_cmd_new("UID MOVE");
			imap_cmd_rawf(cmd, "%" PRIu32, j->uid);
			(void)imap_cmd_mailbox(cmd, m->c, m->mailboxes[t]);
			cmd_send(j, cmd, write_cb, NULL);
			break;
		}
		if (t >= 0) {
			cmd = imap_cmd_new("UID COPY");
			imap_cmd_rawf(cmd, "%" PRIu32, j->uid);
			(void)imap_cmd_mailbox(cmd, m->c, m->mailboxes[t]);
			cmd_send(j, cmd, plain_cb, NULL);
		}
		store(j, true, "\\Deleted", false);
		if (caps & IMAP_CAP_UIDPLUS) {
			cmd = imap_cmd_new("UID EXPUNGE");
			imap_cmd_rawf(cmd, "%" PRIu32, j->uid);
		} else {
			cmd = imap_cmd_new("EXPUNGE");
		}
		cmd_send(j, cmd, write_cb, NULL);
		break;
	case 2:
		if (j->found)
			advance(j);
		job_finish(j, j->found ? 1 : 0, NULL);
		break;
	}
}

/*
 * MOVE and COPY: COPYUID's destination UID (RFC 4315: "[COPYUID uidvalidity
 * src dst]", untagged before MOVE's expunges, in COPY's tagged OK), and
 * whether the message went (an expunge of it, or the COPYUID).
 */
static void
move_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	const struct imap_node *a;
	long long v;
	const char *e;

	if (r != NULL && r->code != NULL && strcmp(r->code, "COPYUID") == 0 &&
	    (a = r->code_args) != NULL && (a = a->next) != NULL && (a = a->next) != NULL &&
	    imap_node_str(a) != NULL && parse_int(imap_node_str(a), 1, UINT32_MAX, &v, &e) == 0) {
		j->dst_uid = (uint32_t)v;
		j->found = true;
	}
	write_cb(c, r, arg);
}

/*
 * MoveItems: UID MOVE to the destination (with MOVE), else UID COPY, STORE
 * \Deleted and UID EXPUNGE (EXPUNGE without UIDPLUS); the new UID from
 * COPYUID; the cursor advanced as for a delete.
 */
static void
move_step(struct job *j)
{
	struct mi *m = j->m;
	struct imap_cmd *cmd;
	uint32_t caps;

	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		caps = imap_client_caps(m->c);
		cmd = imap_cmd_new((caps & IMAP_CAP_MOVE) ? "UID MOVE" : "UID COPY");
		imap_cmd_rawf(cmd, "%" PRIu32, j->uid);
		(void)imap_cmd_mailbox(cmd, m->c, j->dst_mailbox);
		cmd_send(j, cmd, move_cb, NULL);
		if (caps & IMAP_CAP_MOVE)
			break;
		store(j, true, "\\Deleted", true);
		if (caps & IMAP_CAP_UIDPLUS) {
			cmd = imap_cmd_new("UID EXPUNGE");
			imap_cmd_rawf(cmd, "%" PRIu32, j->uid);
		} else {
			cmd = imap_cmd_new("EXPUNGE");
		}
		cmd_send(j, cmd, write_cb, NULL);
		break;
	case 2:
		if (j->found && j->cursor != NULL)
			advance(j);
		j->memo->new_uid = j->dst_uid;
		job_finish(j, j->found ? 1 : 0, NULL);
		break;
	}
}

/*
 * EmptyFolderContents: every message \Deleted and EXPUNGE (nothing to do in
 * an empty folder); the device's cursor then has nothing in it.
 */
static void
empty_step(struct job *j)
{
	struct imap_cmd *cmd;
	struct cur c;

	switch (j->step) {
	case 0:
		j->sel_fresh = false;
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		if (j->sel_fresh && j->sel_exists == 0) {
			j->step++;
			empty_step(j);
			return;
		}
		cmd = imap_cmd_new("UID STORE 1:* +FLAGS.SILENT (\\Deleted)");
		cmd_send(j, cmd, write_cb, NULL);
		cmd_send(j, imap_cmd_new("EXPUNGE"), write_cb, NULL);
		break;
	case 2:
		snprintf(j->memo->cursor, sizeof(j->memo->cursor), "%s",
		         j->cursor ? j->cursor : "");
		if (j->cursor != NULL && cur_parse(j->cursor, &c) == 0) {
			uidset_clear(&c.have);
			uidset_clear(&c.seen);
			uidset_clear(&c.flagged);
			c.seen_unknown = false;
			c.modseq = 0; /* the next changes() searches */
			(void)cur_format(&c, j->memo->cursor);
			cur_clear(&c);
		}
		job_finish(j, 1, NULL);
		break;
	}
}

/* SmartReply / SmartForward: UID STORE +FLAGS.SILENT (\Answered) or ($Forwarded). */
static void
answer_step(struct job *j)
{
	switch (j->step) {
	case 0:
		if (select_mailbox(j))
			break;
		j->step++;
		/* fall through */
	case 1:
		j->found = true; /* .SILENT: no FETCH back; an unknown UID is simply not stored */
		store(j, true, j->to_trash ? "$Forwarded" : "\\Answered", true);
		break;
	case 2:
		job_finish(j, 1, NULL);
		break;
	}
}

/* ---- sending ---- */

/* A submission's class as the command layer's. */
static enum mbx_send_result
send_result(const struct submit_outcome *o)
{
	switch (o->result) {
	case SUBMIT_SENT:
		return MBX_SEND_SENT;
	case SUBMIT_RCPT_REFUSED:
		/* refused before connecting because there is none: 119, else 116 */
		return o->smtp_code == 0 && o->detail && strstr(o->detail, "no recipients")
		           ? MBX_SEND_NO_RCPT
		           : MBX_SEND_RCPT_REFUSED;
	case SUBMIT_TOO_LARGE:
		return MBX_SEND_TOO_LARGE;
	case SUBMIT_TEMPORARY:
		return MBX_SEND_TEMPORARY;
	case SUBMIT_AUTH_REFUSED:
	case SUBMIT_PERMANENT:
		break;
	}
	return MBX_SEND_FAILED;
}

/* APPEND's answer: the copy is saved or not; the send's outcome stands. */
static void
append_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind != IMAP_RESP_TAGGED)
		return;
	if (r == NULL)
		j->m->c = NULL; /* dropped: given back broken at end */
	else if (r->status == IMAP_OK)
		j->memo->sent.saved = true;
	if (!j->memo->sent.saved)
		log_info("native: %s: the Sent copy was not saved: %s", j->m->account,
		         r ? r->text : "the IMAP connection dropped");
	job_finish(j, 1, NULL);
}

/* The message is sent: APPEND its copy to Sent, \Seen. */
static void
send_step(struct job *j)
{
	struct mi *m = j->m;
	struct imap_cmd *cmd;
	const char *err = NULL;

	if (m->c == NULL) {
		log_info("native: %s: the Sent copy was not saved: no IMAP connection", m->account);
		job_finish(j, 1, NULL);
		return;
	}
	cmd = imap_cmd_new("APPEND");
	if (imap_cmd_mailbox(cmd, m->c, j->mailbox) < 0) {
		imap_cmd_free(cmd);
		log_info("native: %s: the Sent copy was not saved: bad mailbox name", m->account);
		job_finish(j, 1, NULL);
		return;
	}
	imap_cmd_raw(cmd, "(\\Seen)");
	imap_cmd_literal(cmd, j->msg, j->msg_len);
	m->cmds++;
	if (imap_client_command(m->c, cmd, append_cb, NULL, j, &err) < 0) {
		log_info("native: %s: the Sent copy was not saved: %s", m->account, err);
		job_finish(j, 1, NULL);
	}
}

/* The submission queue answered (on the loop): record it, then the copy. */
static void
submitted(void *arg, const struct submit_outcome *o)
{
	struct job *j = arg;
	struct mi *m = j->m;
	const char *err = NULL;

	j->sq = NULL;
	j->memo->sent.result = send_result(o);
	log_info("native: %s: submission: %s, %zu recipients, %zu bytes (%d %s%s%s)", m->account,
	         submit_result_name(o->result), o->n_rcpt, o->bytes, o->smtp_code, o->text,
	         o->detail[0] ? "; " : "", o->detail);
	if (o->result != SUBMIT_SENT || j->mailbox == NULL) {
		job_finish(j, 1, NULL);
		return;
	}
	if (m->c != NULL) {
		send_step(j);
		return;
	}
	if ((m->preq = imap_pool_get(m->pool, m->account, m->user, m->password, pool_cb, j,
	                             &err)) == NULL) {
		log_info("native: %s: no IMAP connection for the Sent copy: %s", m->account, err);
		job_finish(j, 1, NULL);
	}
}

/* ---- folder changes ---- */

/* Whether mailbox mbox is top or below it (top + delim + ...). */
static bool
mbox_under(const char *mbox, const char *top, char delim)
{
	size_t n = strlen(top);

	return strcmp(mbox, top) == 0 ||
	       (delim != '\0' && strncmp(mbox, top, n) == 0 && mbox[n] == delim);
}

/* The folders' names (the last level) and parents, from their mailboxes. */
static void
fl_relink(struct mi *m)
{
	for (size_t i = 0; i < m->nf; i++) {
		const char *cut = m->delim ? strrchr(m->mailboxes[i], m->delim) : NULL;
		m->fl[i].name = cut ? cut + 1 : m->mailboxes[i];
		m->fl[i].parent_id = "0";
		if (m->fl[i].type == MBX_FOLDER_INBOX)
			m->fl[i].name = "Inbox";
		for (size_t k = 0; cut && k < m->nf; k++) {
			if (strlen(m->mailboxes[k]) == (size_t)(cut - m->mailboxes[i]) &&
			    strncmp(m->mailboxes[k], m->mailboxes[i],
			            (size_t)(cut - m->mailboxes[i])) == 0)
				m->fl[i].parent_id = m->fl[k].id;
		}
	}
}

/*
 * A folder change's result shown in the folder list (once, when the op
 * first answers it, so that the command layer's checks before the op see
 * the list as it was on every run up to then).
 */
static void
fchange_apply(struct mi *m, struct memo *x)
{
	size_t k = 0;

	if (x->applied || x->rv != 1 || m->folders_rv != 0)
		return;
	x->applied = true;
	if (x->old_mailbox == NULL) { /* created */
		m->fl = xrealloc(m->fl, (m->nf + 1) * sizeof(*m->fl));
		m->mailboxes = xrealloc(m->mailboxes, (m->nf + 1) * sizeof(char *));
		m->fl[m->nf] =
		    (struct mbx_folder){.id = xstrdup(x->folder_id), .type = MBX_FOLDER_MAIL};
		m->mailboxes[m->nf++] = xstrdup(x->mailbox);
	} else if (x->mailbox != NULL) { /* renamed: it and those below it */
		size_t on = strlen(x->old_mailbox);
		for (size_t i = 0; i < m->nf; i++) {
			if (!mbox_under(m->mailboxes[i], x->old_mailbox, m->delim))
				continue;
			char *nm = xasprintf("%s%s", x->mailbox, m->mailboxes[i] + on);
			free(m->mailboxes[i]);
			m->mailboxes[i] = nm;
		}
	} else { /* deleted: it and those below it */
		for (size_t i = 0; i < m->nf; i++) {
			if (mbox_under(m->mailboxes[i], x->old_mailbox, m->delim)) {
				free((char *)m->fl[i].id);
				free(m->mailboxes[i]);
				continue;
			}
			m->fl[k] = m->fl[i];
			m->mailboxes[k++] = m->mailboxes[i];
		}
		m->nf = k;
	}
	fl_relink(m);
}

/* CREATE, RENAME, DELETE: a refusal is recorded (ALREADYEXISTS), not a failure. */
static void
fchange_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_TAGGED && r->status != IMAP_OK) {
		log_info("native: %s: IMAP: %s", j->m->account, r->text);
		j->refused = true;
		if (r->code != NULL && strcmp(r->code, "ALREADYEXISTS") == 0)
			j->exists = true;
		if (--j->outstanding > 0)
			return;
		j->step++;
		job_step(j);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* SUBSCRIBE, UNSUBSCRIBE, UNSELECT: a refusal does not matter. */
static void
lenient_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_TAGGED && r->status != IMAP_OK) {
		if (--j->outstanding > 0)
			return;
		j->step++;
		job_step(j);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* A command on one mailbox (CREATE, SUBSCRIBE...). */
static void
mbox_cmd(struct job *j, const char *verb, const char *mailbox, imap_cmd_cb cb)
{
	struct imap_cmd *cmd = imap_cmd_new(verb);

	if (imap_cmd_mailbox(cmd, j->m->c, mailbox) < 0) {
		imap_cmd_free(cmd);
		j->failed = true;
		return;
	}
	cmd_send(j, cmd, cb, NULL);
}

/* The folder map answered a create's id. */
static void
fcreate_ids(void *arg, int rv, char **ids)
{
	struct job *j = arg;

	if (rv < 0 || ids == NULL || ids[0] == NULL || strlen(ids[0]) > MBX_ID_MAX) {
		if (ids != NULL)
			free(ids[0]);
		free(ids);
		job_fail(j, "the folder id could not be assigned");
		return;
	}
	snprintf(j->memo->folder_id, sizeof(j->memo->folder_id), "%s", ids[0]);
	free(ids[0]);
	free(ids);
	job_finish(j, 1, NULL);
}

/* The folder map followed a rename or a delete (a failure is logged: the server's change stands).
 */
static void
fchange_mapped(void *arg, int rv)
{
	struct job *j = arg;

	if (rv < 0)
		log_warn("native: %s: the folder map did not follow the change of %s",
		         j->m->account, j->folder);
	job_finish(j, 1, NULL);
}

/*
 * A folder change's commands: step 0 the change (UNSELECT first when the
 * selected mailbox is affected; a delete's mailboxes deepest first), step 1
 * the subscriptions, step 2 the folder map.
 */
static void
fchange_step(struct job *j)
{
	struct mi *m = j->m;
	struct memo *x = j->memo;
	struct imap_cmd *cmd;

	switch (j->step) {
	case 0:
		/*
		 * A server may drop the connection when its selected mailbox is
		 * deleted (Dovecot does): leave it first when it may be one of
		 * them (unknown: a pooled connection keeps the last request's).
		 */
		if (j->kind != J_FCREATE &&
		    (m->selected == NULL || mbox_under(m->selected, x->old_mailbox, m->delim))) {
			if (imap_client_caps(m->c) & IMAP_CAP_UNSELECT)
				cmd_send(j, imap_cmd_new("UNSELECT"), lenient_cb, NULL);
			else
				cmd_send(j, imap_cmd_new("EXAMINE INBOX"), lenient_cb, NULL);
			free(m->selected);
			m->selected = NULL;
		}
		if (j->kind == J_FCREATE) {
			mbox_cmd(j, "CREATE", x->mailbox, fchange_cb);
		} else if (j->kind == J_FRENAME) {
			cmd = imap_cmd_new("RENAME");
			if (imap_cmd_mailbox(cmd, m->c, x->old_mailbox) < 0 ||
			    imap_cmd_mailbox(cmd, m->c, x->mailbox) < 0) {
				imap_cmd_free(cmd);
				j->failed = true;
			} else {
				cmd_send(j, cmd, fchange_cb, NULL);
			}
		} else {
			/* deepest first: the longest names first */
			for (size_t len = 0, max = 0;; max = len, len = 0) {
				for (size_t i = 0; i < m->nf; i++) {
					size_t l = strlen(m->mailboxes[i]);
					if (mbox_under(m->mailboxes[i], x->old_mailbox, m->delim) &&
					    (max == 0 || l < max) && l > len)
						len = l;
				}
				if (len == 0)
					break;
				for (size_t i = 0; i < m->nf; i++)
					if (strlen(m->mailboxes[i]) == len &&
					    mbox_under(m->mailboxes[i], x->old_mailbox, m->delim))
						mbox_cmd(j, "DELETE", m->mailboxes[i], fchange_cb);
			}
		}
		if (j->outstanding == 0)
			job_fail(j, "the folder change could not be sent");
		break;
	case 1:
		if (j->refused) {
			if (j->exists) {
				job_finish(j, MBX_FOLDER_EXISTS, NULL);
				return;
			}
			job_fail(j, "the IMAP server refused the folder change");
			return;
		}
		if (j->kind != J_FCREATE)
			mbox_cmd(j, "UNSUBSCRIBE", x->old_mailbox, lenient_cb);
		if (j->kind != J_FDELETE)
			mbox_cmd(j, "SUBSCRIBE", x->mailbox, lenient_cb);
		if (j->outstanding == 0) {
			j->step++;
			fchange_step(j);
		}
		break;
	case 2:
		if (j->kind == J_FCREATE) {
			const struct mbx_imap_listed l = {.mailbox = x->mailbox};
			m->map->assign(m->map->arg, m->account, &l, 1, m->delim, false, fcreate_ids,
			               j);
		} else if (m->map->change != NULL) {
			m->map->change(m->map->arg, m->account, j->folder, x->mailbox,
			               j->parent[0] ? j->parent : NULL, m->delim, fchange_mapped,
			               j);
		} else {
			job_finish(j, 1, NULL);
		}
		break;
	}
}

static void
job_step(struct job *j)
{
	if (j->kind == J_SEND) {
		send_step(j);
		return;
	}
	if (j->m->c == NULL) {
		job_fail(j, "the IMAP connection dropped");
		return;
	}
	if (j->outlining) {
		outline_step(j);
		return;
	}
	switch (j->kind) {
	case J_FOLDERS:
		folders_step(j);
		break;
	case J_CHANGES:
		changes_step(j);
		break;
	case J_FETCH:
		fetch_step(j);
		break;
	case J_FLAGS:
		flags_step(j);
		break;
	case J_REMOVE:
		remove_step(j);
		break;
	case J_MOVE:
		move_step(j);
		break;
	case J_ANSWER:
		answer_step(j);
		break;
	case J_EMPTY:
		empty_step(j);
		break;
	case J_PART:
		part_step(j);
		break;
	case J_FCREATE:
	case J_FRENAME:
	case J_FDELETE:
		fchange_step(j);
		break;
	case J_SEARCH:
		search_step(j);
		break;
	case J_SEND: /* above */
		break;
	}
}

/* ---- ops ---- */

static int
mi_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	int rv = need_folders(m, errstr_r);

	if (rv != 0)
		return rv;
	*folders_r = m->fl;
	*n_r = m->nf;
	return 0;
}

/* A new job for an op on folder_id, with the memo it fills: set up, or rv (-1, PENDING). */
static int
op_job(struct mi *m, enum job_kind kind, const char *folder_id, char *key, struct job **j_r,
       const char **errstr_r)
{
	int rv = need_folders(m, errstr_r);
	long fi;

	*j_r = NULL;
	if (rv != 0) {
		free(key);
		return rv;
	}
	if ((fi = folder_index(m, folder_id)) < 0) {
		free(key);
		*errstr_r = "no such folder";
		return -1;
	}
	*j_r = xcalloc(1, sizeof(**j_r));
	(*j_r)->kind = kind;
	(*j_r)->memo = memo_add(m, key);
	(*j_r)->mailbox = m->mailboxes[fi];
	snprintf((*j_r)->folder, sizeof((*j_r)->folder), "%s", folder_id);
	return 0;
}

/* A memo's answer: rv, its errstr. */
static int
memo_rv(const struct memo *x, const char **errstr_r)
{
	if (x->rv == -1)
		*errstr_r = x->err ? x->err : "the IMAP server failed";
	return x->rv;
}

static int
mi_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
           const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	char *key = xasprintf("C\x1f%s\x1f%s\x1f%zu\x1f%" PRId64, folder_id, cursor ? cursor : "",
	                      w->size, w->since);
	struct memo *x = memo_find(m, key);
	struct job *j;
	int rv;

	if (x != NULL) {
		free(key);
		if (x->rv == 1)
			changes_copy(out, &x->ch);
		return memo_rv(x, errstr_r);
	}
	if ((rv = op_job(m, J_CHANGES, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->cursor = cursor && *cursor ? xstrdup(cursor) : NULL;
	j->w = *w;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_changes(b, folder_id, cursor, w, out, errstr_r);
	return rv;
}

/* The batch's message uid of folder, or NULL. */
static const struct imsg *
batch_find(const struct mi *m, const char *folder, uint32_t uid)
{
	for (const struct batch *bt = m->batches; bt != NULL; bt = bt->next) {
		if (strcmp(bt->folder, folder) != 0)
			continue;
		for (size_t i = 0; i < bt->n; i++) {
			if (bt->m[i].uid == uid)
				return &bt->m[i];
		}
	}
	return NULL;
}

/* Fill an e-mail item from a fetched message (copies). */
static void
email_of(const struct imsg *x, struct mbx_email *out)
{
	out->read = (x->flags & IMAP_FLAG_SEEN) != 0;
	out->flagged = (x->flags & IMAP_FLAG_FLAGGED) != 0;
	out->subject = xstrdup_null(x->subject);
	out->from = xstrdup_null(x->from);
	out->date_received = x->idate;
	out->internal_date = x->idate;
	out->size = x->size;
	out->message_class = xstrdup("IPM.Note");
	out->raw = xmalloc(x->raw_len + 1);
	if (x->raw_len)
		memcpy(out->raw, x->raw, x->raw_len);
	out->raw[x->raw_len] = '\0';
	out->raw_len = x->raw_len;
	out->parsed = x->parsed; /* borrowed: the batch's or memo's, until mi_end */
	if (x->outline != NULL) {
		out->outline = xmemdup0(x->outline, x->outline_len);
		out->outline_len = x->outline_len;
		out->parts = x->nparts ? xmalloc(x->nparts * sizeof(*x->parts)) : NULL;
		if (x->nparts)
			memcpy(out->parts, x->parts, x->nparts * sizeof(*x->parts));
		out->n_parts = x->nparts;
	}
}

static int
mi_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
         const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	uint32_t uid = uid_of(item_id);
	const struct imsg *bx;
	char *key;
	struct memo *x;
	struct job *j;
	int rv;

	if (uid == 0)
		return 0;
	if ((bx = batch_find(m, folder_id, uid)) != NULL) {
		email_of(bx, out);
		return 1;
	}
	key = xasprintf("G\x1f%s\x1f%" PRIu32, folder_id, uid);
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		if (x->rv == 1)
			email_of(&x->msg, out);
		return memo_rv(x, errstr_r);
	}
	if ((rv = op_job(m, J_FETCH, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->uid = uid;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_fetch(b, folder_id, item_id, out, errstr_r);
	return rv;
}

/*
 * One part of an item by its section (mailbox.h; how: mailbox_imap.h):
 * memoized per request and window. A copy of the memo's bytes is given.
 */
static int
mi_fetch_part(struct mbx_backend *b, const char *folder_id, const char *item_id,
              const char *section, uint64_t offset, uint64_t max, struct mbx_part *out,
              const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	uint32_t uid = uid_of(item_id);
	char *key;
	struct memo *x;
	struct job *j;
	int rv;

	if (uid == 0 || strlen(section) > MBX_ID_MAX ||
	    strspn(section, "0123456789.") != strlen(section))
		return 0; /* "": the whole message (MBX_SECTION_MESSAGE) */
	key = xasprintf("P\x1f%s\x1f%" PRIu32 "\x1f%s\x1f%" PRIu64 "\x1f%" PRIu64, folder_id, uid,
	                section, offset, max);
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		if (x->rv == 1) {
			out->total = x->part.total;
			out->len = x->part.len;
			out->data = xmalloc(x->part.len + 1);
			memcpy(out->data, x->part.data, x->part.len);
			out->data[x->part.len] = '\0';
			if (section[0] == '\0') /* the message goes into a WBXML string: no NUL */
				for (char *p = memchr(out->data, 0, x->part.len); p != NULL;
				     p = memchr(p, 0, (size_t)(out->data + x->part.len - p)))
					*p = ' ';
			out->content_type = xstrdup(x->part.content_type);
		}
		return memo_rv(x, errstr_r);
	}
	if ((rv = op_job(m, J_PART, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->uid = uid;
	snprintf(j->section, sizeof(j->section), "%s", section);
	j->off = offset;
	j->max = max;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_fetch_part(b, folder_id, item_id, section, offset, max, out, errstr_r);
	return rv;
}

/*
 * Drop the request's answered part windows (a streamed answer took them);
 * the parts' sizes (T memos) and everything else stay.
 */
static void
mi_forget_parts(struct mbx_backend *b)
{
	struct mi *m = (struct mi *)b;

	for (struct memo **p = &m->memos; *p != NULL;) {
		struct memo *x = *p;
		if (x->key[0] != 'P' || x->rv == MBX_PENDING) {
			p = &x->next;
			continue;
		}
		*p = x->next;
		mbx_part_clear(&x->part);
		free(x->key);
		free(x);
	}
}

/* set_flags and remove: the write once, its result and cursor replayed. */
static int
write_op(struct mi *m, enum job_kind kind, const char *folder_id, const char *item_id, int read,
         int flagged, bool to_trash, char *cursor, const char **errstr_r)
{
	uint32_t uid = uid_of(item_id);
	char *key;
	struct memo *x;
	struct job *j;
	struct cur c;
	int rv;

	if (uid == 0 || cur_parse(cursor, &c) < 0)
		return 0;
	if (!uidset_contains(&c.have, uid)) {
		cur_clear(&c);
		return 0;
	}
	cur_clear(&c);
	key =
	    xasprintf("%c\x1f%s\x1f%" PRIu32 "\x1f%d\x1f%d\x1f%d\x1f%s",
	              kind == J_FLAGS ? 'F' : 'R', folder_id, uid, read, flagged, to_trash, cursor);
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		if (x->rv == 1 && x->cursor[0])
			memcpy(cursor, x->cursor, strlen(x->cursor) + 1);
		return memo_rv(x, errstr_r);
	}
	if ((rv = op_job(m, kind, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->uid = uid;
	j->read = read;
	j->flagged = flagged;
	j->to_trash = to_trash;
	j->cursor = xstrdup(cursor);
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return write_op(m, kind, folder_id, item_id, read, flagged, to_trash, cursor,
		                errstr_r);
	return rv;
}

static int
mi_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
             int flagged, char *cursor, const char **errstr_r)
{
	return write_op((struct mi *)b, J_FLAGS, folder_id, item_id, read, flagged, false, cursor,
	                errstr_r);
}

static int
mi_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
          char *cursor, const char **errstr_r)
{
	return write_op((struct mi *)b, J_REMOVE, folder_id, item_id, -1, -1, to_trash, cursor,
	                errstr_r);
}

/*
 * MoveItems: the move once (memoised by its arguments), its new UID and the
 * advanced cursor replayed on every later run.
 */
static int
mi_move(struct mbx_backend *b, const char *src_id, const char *item_id, const char *dst_id,
        char *cursor, char *new_id_r, const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	uint32_t uid = uid_of(item_id);
	struct memo *x;
	struct job *j;
	struct cur c;
	long di;
	int rv;

	if (uid == 0)
		return 0;
	if (cursor != NULL && *cursor != '\0' && cur_parse(cursor, &c) == 0) {
		bool held = uidset_contains(&c.have, uid);
		cur_clear(&c);
		if (!held)
			cursor = NULL; /* not the device's: moved, nothing to advance */
	} else {
		cursor = NULL;
	}
	char *key = xasprintf("M\x1f%s\x1f%" PRIu32 "\x1f%s\x1f%s", src_id, uid, dst_id,
	                      cursor ? cursor : "");
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		if (x->rv == 1 && cursor != NULL && x->cursor[0])
			memcpy(cursor, x->cursor, strlen(x->cursor) + 1);
		if (x->rv == 1 && x->new_uid != 0)
			snprintf(new_id_r, MBX_ID_MAX + 1, "%" PRIu32, x->new_uid);
		return memo_rv(x, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(key);
		return rv;
	}
	if ((di = folder_index(m, dst_id)) < 0) {
		free(key);
		*errstr_r = "no such folder";
		return -1;
	}
	if ((rv = op_job(m, J_MOVE, src_id, key, &j, errstr_r)) != 0)
		return rv;
	j->uid = uid;
	j->dst_mailbox = m->mailboxes[di];
	j->cursor = cursor ? xstrdup(cursor) : NULL;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_move(b, src_id, item_id, dst_id, cursor, new_id_r, errstr_r);
	return rv;
}

/* SmartReply / SmartForward's original marked, once per request. */
static int
mi_mark_answered(struct mbx_backend *b, const char *folder_id, const char *item_id, bool forwarded,
                 const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	uint32_t uid = uid_of(item_id);
	struct memo *x;
	struct job *j;
	int rv;

	if (uid == 0)
		return 0;
	char *key = xasprintf("A\x1f%s\x1f%" PRIu32 "\x1f%d", folder_id, uid, forwarded);
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		return memo_rv(x, errstr_r);
	}
	if ((rv = op_job(m, J_ANSWER, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->uid = uid;
	j->to_trash = forwarded;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_mark_answered(b, folder_id, item_id, forwarded, errstr_r);
	return rv;
}

/* EmptyFolderContents, once per request; the emptied cursor replayed on reruns. */
static int
mi_empty(struct mbx_backend *b, const char *folder_id, char *cursor, const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	struct memo *x;
	struct job *j;
	int rv;

	char *key = xasprintf("E\x1f%s\x1f%s", folder_id, cursor ? cursor : "");
	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		if (x->rv == 1 && cursor != NULL && *cursor != '\0')
			memcpy(cursor, x->cursor, strlen(x->cursor) + 1);
		return memo_rv(x, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(key);
		return rv;
	}
	if (folder_index(m, folder_id) < 0) {
		free(key);
		return 0;
	}
	if ((rv = op_job(m, J_EMPTY, folder_id, key, &j, errstr_r)) != 0)
		return rv;
	j->cursor = cursor != NULL && *cursor != '\0' ? xstrdup(cursor) : NULL;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_empty(b, folder_id, cursor, errstr_r);
	return rv;
}

/* Whether parent (a folder index, -1: the top) already holds a folder named name, other than self.
 */
static bool
fname_taken(const struct mi *m, long parent, const char *name, long self)
{
	const char *pid = parent < 0 ? "0" : m->fl[parent].id;

	for (size_t i = 0; i < m->nf; i++)
		if ((long)i != self && strcmp(m->fl[i].parent_id, pid) == 0 &&
		    str_ieq(m->fl[i].name, name))
			return true;
	return false;
}

/*
 * The mailbox a folder change names: name under parent_id ("0": the top),
 * into *mbox_r (malloc'd) with the parent's index in *pi_r (-1: the top).
 * 1, or a refusal (no parent, a bad name).
 */
static int
fchange_target(const struct mi *m, const char *parent_id, const char *name, char **mbox_r,
               long *pi_r)
{
	*mbox_r = NULL;
	*pi_r = -1;
	if (strcmp(parent_id, "0") != 0 &&
	    ((*pi_r = folder_index(m, parent_id)) < 0 || m->delim == '\0'))
		return MBX_FOLDER_NO_PARENT;
	if (*name == '\0' || (m->delim != '\0' && strchr(name, m->delim) != NULL) ||
	    (*pi_r < 0 && str_ieq(name, "INBOX")))
		return MBX_FOLDER_BAD_NAME;
	*mbox_r =
	    *pi_r < 0 ? xstrdup(name) : xasprintf("%s%c%s", m->mailboxes[*pi_r], m->delim, name);
	return 1;
}

/* A folder change's memo answered (the folder list updated the first time). */
static int
fchange_memo(struct mi *m, struct memo *x, char *new_id_r, const char **errstr_r)
{
	fchange_apply(m, x);
	if (x->rv == 1 && new_id_r != NULL)
		snprintf(new_id_r, MBX_ID_MAX + 1, "%s", x->folder_id);
	return memo_rv(x, errstr_r);
}

/* Start a folder change's job; its answer (recorded in x). */
static int
fchange_start(struct mi *m, struct job *j, char *new_id_r, const char **errstr_r)
{
	struct memo *x = j->memo;
	int rv = job_start(m, j);

	if (x->rv != MBX_PENDING)
		return fchange_memo(m, x, new_id_r, errstr_r);
	return rv;
}

/* FolderCreate: CREATE (and SUBSCRIBE) once per request; the id from the folder map. */
static int
mi_folder_create(struct mbx_backend *b, const char *parent_id, const char *name, char *new_id_r,
                 const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	char *key = xasprintf("FC\x1f%s\x1f%s", parent_id, name), *mbox;
	struct memo *x;
	struct job *j;
	long pi;
	int rv;

	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		return fchange_memo(m, x, new_id_r, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(key);
		return rv;
	}
	if ((rv = fchange_target(m, parent_id, name, &mbox, &pi)) != 1) {
		free(key);
		return rv;
	}
	if (fname_taken(m, pi, name, -1)) {
		free(key);
		free(mbox);
		return MBX_FOLDER_EXISTS;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = J_FCREATE;
	j->memo = memo_add(m, key);
	j->memo->mailbox = mbox;
	return fchange_start(m, j, new_id_r, errstr_r);
}

/* FolderUpdate: RENAME once per request; the id kept by the folder map. */
static int
mi_folder_rename(struct mbx_backend *b, const char *id, const char *parent_id, const char *name,
                 const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	char *key = xasprintf("FR\x1f%s\x1f%s\x1f%s", id, parent_id, name), *mbox;
	struct memo *x;
	struct job *j;
	long fi, pi;
	int rv;

	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		return fchange_memo(m, x, NULL, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(key);
		return rv;
	}
	if ((fi = folder_index(m, id)) < 0 || m->fl[fi].type != MBX_FOLDER_MAIL) {
		free(key);
		return fi < 0 ? MBX_FOLDER_NOT_FOUND : MBX_FOLDER_SPECIAL;
	}
	if ((rv = fchange_target(m, parent_id, name, &mbox, &pi)) != 1) {
		free(key);
		return rv;
	}
	if (pi >= 0 && mbox_under(m->mailboxes[pi], m->mailboxes[fi], m->delim)) {
		free(key);
		free(mbox);
		return MBX_FOLDER_NO_PARENT; /* below itself */
	}
	if (strcmp(mbox, m->mailboxes[fi]) == 0) { /* no change */
		free(key);
		free(mbox);
		return 1;
	}
	if (fname_taken(m, pi, name, fi)) {
		free(key);
		free(mbox);
		return MBX_FOLDER_EXISTS;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = J_FRENAME;
	j->memo = memo_add(m, key);
	j->memo->mailbox = mbox;
	j->memo->old_mailbox = xstrdup(m->mailboxes[fi]);
	snprintf(j->folder, sizeof(j->folder), "%s", id);
	snprintf(j->memo->folder_id, sizeof(j->memo->folder_id), "%s", id);
	if (pi >= 0)
		snprintf(j->parent, sizeof(j->parent), "%s", m->fl[pi].id);
	return fchange_start(m, j, NULL, errstr_r);
}

/* FolderDelete: DELETE of the folder and those below it once per request; ids dropped. */
static int
mi_folder_delete(struct mbx_backend *b, const char *id, const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	char *key = xasprintf("FD\x1f%s", id);
	struct memo *x;
	struct job *j;
	long fi;
	int rv;

	if ((x = memo_find(m, key)) != NULL) {
		free(key);
		return fchange_memo(m, x, NULL, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(key);
		return rv;
	}
	if ((fi = folder_index(m, id)) < 0 || m->fl[fi].type != MBX_FOLDER_MAIL) {
		free(key);
		return fi < 0 ? MBX_FOLDER_NOT_FOUND : MBX_FOLDER_SPECIAL;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = J_FDELETE;
	j->memo = memo_add(m, key);
	j->memo->old_mailbox = xstrdup(m->mailboxes[fi]);
	snprintf(j->folder, sizeof(j->folder), "%s", id);
	snprintf(j->memo->folder_id, sizeof(j->memo->folder_id), "%s", id);
	return fchange_start(m, j, NULL, errstr_r);
}

/* ---- Search ---- */

/*
 * UIDs of one folder a search fetches the INTERNALDATEs of at most (the
 * newest UIDs; the rest only counted in the total): SINCE and BEFORE
 * compare whole days, so the dates cut the matches exactly only once
 * fetched (UID and INTERNALDATE, some 60 bytes each).
 */
#define SEARCH_FOLDER_FETCH 20000

/* An IMAP date ("6-Dec-2026") of the UTC day of t, plus days. */
static void
imap_day(int64_t t, int days, char out[16])
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)(t + (int64_t)days * 86400);
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, 16, "%d-%s-%d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
}

/*
 * UID SEARCH of the job's query in the selected folder: UNDELETED, the
 * date bounds a day wider than asked (RFC 3501 SINCE / BEFORE compare
 * dates only; the INTERNALDATEs fetched then cut exactly), and for each
 * word OR OR OR SUBJECT FROM TO BODY, the word quoted or sent as a literal
 * (CHARSET UTF-8).
 */
static void
search_send(struct job *j)
{
	struct imap_cmd *cmd = imap_cmd_new("UID SEARCH");
	char day[16];

	if (imap_client_caps(j->m->c) & IMAP_CAP_ESEARCH)
		imap_cmd_raw(cmd, "RETURN (ALL)");
	imap_cmd_raw(cmd, "CHARSET UTF-8 UNDELETED");
	if (j->sq_since != 0) {
		imap_day(j->sq_since, -1, day);
		imap_cmd_rawf(cmd, "SINCE %s", day);
	}
	if (j->sq_before != 0) {
		imap_day(j->sq_before, 2, day);
		imap_cmd_rawf(cmd, "BEFORE %s", day);
	}
	for (size_t i = 0; i < j->sq_nwords; i++) {
		static const char *const keys[] = {"SUBJECT", "FROM", "TO", "BODY"};
		imap_cmd_raw(cmd, "OR OR OR");
		for (size_t k = 0; k < 4; k++) {
			imap_cmd_raw(cmd, keys[k]);
			imap_cmd_string(cmd, j->sq_words[i]);
		}
	}
	uidset_clear(&j->s_all);
	cmd_send(j, cmd, search_all_cb, NULL);
}

/* UID FETCH (UID INTERNALDATE): each message in the date bounds a hit. */
static void
search_dates_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct job *j = arg;
	struct mbx_search_out *o = &j->memo->found;
	struct imap_fetch f;
	const char *err;

	(void)c;
	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "FETCH") == 0) {
		memset(&f, 0, sizeof(f));
		if (imap_fetch_read(r, &f, &err) == 0 && (f.have & IMAP_FETCH_UID) &&
		    (f.have & IMAP_FETCH_INTERNALDATE) && uidset_contains(&j->fetch_set, f.uid) &&
		    (j->sq_since == 0 || (int64_t)f.internaldate >= j->sq_since) &&
		    (j->sq_before == 0 || (int64_t)f.internaldate < j->sq_before)) {
			(void)uidset_remove(&j->fetch_set, f.uid); /* once */
			o->hits = xrealloc(o->hits, (o->n + 1) * sizeof(*o->hits));
			struct mbx_search_hit *h = &o->hits[o->n++];
			snprintf(h->folder, sizeof(h->folder), "%s",
			         j->m->fl[j->sq_fis[j->sq_at]].id);
			snprintf(h->id, sizeof(h->id), "%" PRIu32, f.uid);
			h->date = (int64_t)f.internaldate;
			h->size = (f.have & IMAP_FETCH_SIZE) ? f.size : 0;
		}
		imap_fetch_clear(&f);
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED)
		cmd_done(j, r);
}

/* Order hits newest first, then by folder and UID down (qsort). */
static int
hit_cmp(const void *a, const void *b)
{
	const struct mbx_search_hit *x = a, *y = b;
	int d = strcmp(x->folder, y->folder);

	if (x->date != y->date)
		return x->date < y->date ? 1 : -1;
	if (d != 0)
		return d;
	return uid_of(x->id) < uid_of(y->id) ? 1 : -1;
}

/*
 * The hits of the Range fetched ahead, folder by folder (SELECT, the
 * batch's UID FETCH), into the request's batches, so that the command
 * layer's fetch of each finds it without a run of its own; at most
 * MBX_IMAP_BATCH_CAP of bodies (the rest are fetched one by one).
 */
static void
search_bodies(struct job *j)
{
	struct mbx_search_out *o = &j->memo->found;
	uint64_t bytes = 0;

	for (;;) {
		switch (j->step) {
		case 0: {
			const char *fid;
			bytes = 0;
			if (j->sq_at >= j->sq_nf) {
				job_finish(j, 1, NULL);
				return;
			}
			fid = j->m->fl[j->sq_fis[j->sq_at]].id;
			uidset_clear(&j->fetch_set);
			j->fetch_set.max_ranges = IMAP_UIDSET_MAX;
			for (size_t i = j->sq_first; i < o->n && i <= j->sq_last; i++) {
				uint64_t sz = o->hits[i].size <= MBX_IMAP_RAW_CAP
				                  ? o->hits[i].size
				                  : 2 * MBX_IMAP_RAW_CAP;
				if (bytes + sz > MBX_IMAP_BATCH_CAP)
					break;
				bytes += sz;
				if (strcmp(o->hits[i].folder, fid) == 0)
					(void)uidset_add(&j->fetch_set, uid_of(o->hits[i].id));
			}
			if (j->fetch_set.n == 0) {
				j->sq_at++;
				continue;
			}
			j->mailbox = j->m->mailboxes[j->sq_fis[j->sq_at]];
			if (select_mailbox(j))
				return;
			if (j->failed) {
				job_fail(j, "a folder cannot be selected");
				return;
			}
			j->step++;
		}
			/* fall through */
		case 1:
			j->batch = xcalloc(1, sizeof(*j->batch));
			snprintf(j->batch->folder, sizeof(j->batch->folder), "%s",
			         j->m->fl[j->sq_fis[j->sq_at]].id);
			fetch_items(j, &j->fetch_set, batch_cb);
			return;
		default:
			if (outline_begin(j, j->batch->m, j->batch->n) ||
			    parse_begin(j, j->batch->m, j->batch->n))
				return;
			j->outlined = false;
			j->parse_done = false;
			/* the folder's batch joins the request's */
			j->batch->next = j->m->batches;
			j->m->batches = j->batch;
			j->batch = NULL;
			j->sq_at++;
			j->step = 0;
			continue;
		}
	}
}

/*
 * Search, folder by folder: SELECT, UID SEARCH (search_send), UID FETCH of
 * the dates of the newest SEARCH_FOLDER_FETCH UIDs found; at the end the
 * hits newest first across the folders, at most MBX_SEARCH_MAX, total all
 * that matched.
 */
static void
search_step(struct job *j)
{
	struct mbx_search_out *o = &j->memo->found;

	for (;;) {
		if (j->sq_bodies) {
			search_bodies(j);
			return;
		}
		switch (j->step) {
		case 0:
			if (j->sq_at >= j->sq_nf) {
				if (o->n > 1)
					qsort(o->hits, o->n, sizeof(*o->hits), hit_cmp);
				o->total = o->n > o->total ? o->n : o->total;
				if (o->n > MBX_SEARCH_MAX)
					o->n = MBX_SEARCH_MAX;
				j->sq_bodies = true;
				j->sq_at = 0;
				j->step = 0;
				search_bodies(j);
				return;
			}
			j->mailbox = j->m->mailboxes[j->sq_fis[j->sq_at]];
			if (select_mailbox(j))
				return;
			if (j->failed) {
				job_fail(j, "a folder cannot be selected");
				return;
			}
			j->step++;
			/* fall through */
		case 1:
			search_send(j);
			return;
		case 2: {
			uint64_t n = uidset_count(&j->s_all), skip;
			if (n == 0) {
				j->sq_at++;
				j->step = 0;
				continue;
			}
			/* the newest UIDs only; the rest counted, never fetched */
			skip = n > SEARCH_FOLDER_FETCH ? n - SEARCH_FOLDER_FETCH : 0;
			j->sq_extra += (size_t)skip;
			uidset_clear(&j->fetch_set);
			FOR_UIDS(&j->s_all, u)
			{
				if (skip > 0)
					skip--;
				else
					(void)uidset_add(&j->fetch_set, u);
			}
			struct imap_cmd *cmd = imap_cmd_new("UID FETCH");
			imap_cmd_uidset(cmd, &j->fetch_set);
			imap_cmd_raw(cmd, "(UID INTERNALDATE RFC822.SIZE)");
			cmd_send(j, cmd, search_dates_cb, NULL);
			return;
		}
		default:
			/* the newest MBX_SEARCH_MAX kept, the others counted */
			if (o->n > 1)
				qsort(o->hits, o->n, sizeof(*o->hits), hit_cmp);
			if (o->n > MBX_SEARCH_MAX) {
				j->sq_extra += o->n - MBX_SEARCH_MAX;
				o->n = MBX_SEARCH_MAX;
			}
			o->total = o->n + j->sq_extra;
			j->sq_at++;
			j->step = 0;
			continue;
		}
	}
}

/*
 * Search (mailbox.h), once per request: the folders asked (none: every
 * mail folder), at most MBX_SEARCH_FOLDERS; the answer recorded and
 * replayed on reruns. 0 when a folder asked is unknown.
 */
static int
mi_search(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
          const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	struct sbuf k = {0};
	struct memo *x;
	struct job *j;
	int rv;

	sbuf_printf(&k, "Q\x1f%" PRId64 "\x1f%" PRId64, q->since, q->before);
	for (size_t i = 0; i < q->n_folders; i++)
		sbuf_printf(&k,
		            "\x1f"
		            "f%s",
		            q->folders[i]);
	for (size_t i = 0; i < q->n_words; i++)
		sbuf_printf(&k,
		            "\x1f"
		            "w%s",
		            q->words[i]);
	if ((x = memo_find(m, k.p)) != NULL) {
		free(k.p);
		if (x->rv == 1) {
			out->n = x->found.n;
			out->total = x->found.total;
			out->hits = out->n ? xcalloc(out->n, sizeof(*out->hits)) : NULL;
			if (out->n)
				memcpy(out->hits, x->found.hits, out->n * sizeof(*out->hits));
		}
		return memo_rv(x, errstr_r);
	}
	if ((rv = need_folders(m, errstr_r)) != 0) {
		free(k.p);
		return rv;
	}
	for (size_t i = 0; i < q->n_folders; i++)
		if (folder_index(m, q->folders[i]) < 0) {
			free(k.p);
			return 0;
		}
	j = xcalloc(1, sizeof(*j));
	j->kind = J_SEARCH;
	j->memo = memo_add(m, k.p);
	for (size_t i = 0; i < m->nf && j->sq_nf < MBX_SEARCH_FOLDERS; i++) {
		bool asked = q->n_folders == 0 && m->fl[i].type != MBX_FOLDER_OUTBOX;
		for (size_t f = 0; f < q->n_folders; f++)
			asked = asked || strcmp(q->folders[f], m->fl[i].id) == 0;
		if (asked)
			j->sq_fis[j->sq_nf++] = i;
	}
	for (size_t i = 0; i < q->n_words; i++)
		j->sq_words[i] = xstrdup(q->words[i]);
	j->sq_nwords = q->n_words;
	j->sq_since = q->since;
	j->sq_before = q->before;
	j->sq_first = q->first;
	j->sq_last = q->last;
	x = j->memo;
	rv = job_start(m, j);
	if (x->rv != MBX_PENDING)
		return mi_search(b, q, out, errstr_r);
	return rv;
}

/*
 * SendMail / SmartReply / SmartForward: the message as compose_sent_copy
 * writes it submitted once per request through the queue, then APPENDed to
 * Sent when save_in_sent (see the top of the file).
 */
static int
mi_send(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
        struct mbx_send_out *out, const char **errstr_r)
{
	struct mi *m = (struct mi *)b;
	struct submit_conf conf = {0};
	const char *sent_box = NULL, *err = NULL;
	struct memo *x;
	struct job *j;
	char *copy;
	size_t copy_len;
	int rv;

	if ((x = memo_find(m, "S")) != NULL) {
		*out = x->sent;
		return memo_rv(x, errstr_r);
	}
	if (m->sq == NULL) {
		*errstr_r = "the mailbox cannot send mail";
		return -1;
	}
	if (save_in_sent) { /* the folders first: where the copy goes */
		if ((rv = need_folders(m, errstr_r)) != 0)
			return rv;
		for (size_t i = 0; i < m->nf && sent_box == NULL; i++)
			if (m->fl[i].type == MBX_FOLDER_SENT)
				sent_box = m->mailboxes[i];
		if (sent_box == NULL)
			log_info("native: %s: no Sent folder: the copy is not saved", m->account);
	}
	x = memo_add(m, xstrdup("S"));
	if (compose_sent_copy(mime, len, m->sub_from, &copy, &copy_len, &err) < 0) {
		log_info("native: %s: the message cannot be sent: %s", m->account, err);
		x->rv = 1;
		x->sent.result = MBX_SEND_FAILED;
		*out = x->sent;
		return 1;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = J_SEND;
	j->memo = x;
	j->m = m;
	j->mailbox = sent_box;
	j->msg = copy;
	j->msg_len = copy_len;
	conf.url = m->sub_url;
	conf.user = m->user;
	conf.password = m->password;
	conf.from = m->sub_from;
	conf.tls_insecure = m->sub_insecure;
	conf.ca_file = m->sub_ca;
	m->job = j;
	j->sq = submitq_send(m->sq, &conf, copy, copy_len, submitted, j);
	return MBX_PENDING;
}

/* Items are listed through changes(); the item-list path is not offered. */
static int
mi_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
              size_t *n_r, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	*items_r = NULL;
	*n_r = 0;
	*errstr_r = "the IMAP backend lists items through changes";
	return -1;
}

static int
mi_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
            const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)item_id;
	(void)read;
	*errstr_r = "the IMAP backend sets flags through set_flags";
	return -1;
}

static void
mi_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	struct mi *m = (struct mi *)b;

	if (m->job == NULL) {
		cb(arg);
		return;
	}
	m->wait_cb = cb;
	m->wait_arg = arg;
}

static void
mi_begin(struct mbx_backend *b)
{
	((struct mi *)b)->runs++;
}

/*
 * The request waits on its phone (a streamed answer paused): the connection
 * goes back to the pool, so that the account's other requests are not held
 * up by a slow reader; the results stay. Its next job takes one again
 * (job_start), SELECTing afresh.
 */
static void
mi_release(struct mbx_backend *b)
{
	struct mi *m = (struct mi *)b;

	if (m->job == NULL && m->c != NULL) {
		imap_pool_put(m->pool, m->c, imap_client_state(m->c) != IMAP_STATE_DEAD);
		m->c = NULL;
		free(m->selected);
		m->selected = NULL;
	}
}

/* The request is answered: its results dropped, the connection given back. */
static void
mi_end(struct mbx_backend *b)
{
	struct mi *m = (struct mi *)b;

	while (m->memos) {
		struct memo *x = m->memos;
		m->memos = x->next;
		mbx_changes_clear(&x->ch);
		mbx_search_out_clear(&x->found);
		imsg_clear(&x->msg);
		mbx_part_clear(&x->part);
		free(x->mailbox);
		free(x->old_mailbox);
		free(x->key);
		free(x);
	}
	while (m->batches) {
		struct batch *bt = m->batches;
		m->batches = bt->next;
		for (size_t i = 0; i < bt->n; i++)
			imsg_clear(&bt->m[i]);
		free(bt->m);
		free(bt);
	}
	if (m->job == NULL && m->c != NULL) {
		imap_pool_put(m->pool, m->c, true);
		m->c = NULL;
	}
	free(m->selected);
	m->selected = NULL;
	/*
	 * The folder list is the request's too (a FolderSync lists afresh); its
	 * ids and names stay, for mbx_imap_mailbox, until the next one's end.
	 */
	if (m->job == NULL && m->nf > 0) {
		last_free(m);
		m->last_ids = xcalloc(m->nf, sizeof(*m->last_ids));
		for (size_t i = 0; i < m->nf; i++)
			m->last_ids[i] = (char *)m->fl[i].id;
		m->last_mailboxes = m->mailboxes;
		m->last_n = m->nf;
		m->mailboxes = NULL;
	}
	if (m->job == NULL) {
		free(m->fl);
		free(m->mailboxes);
		m->fl = NULL;
		m->mailboxes = NULL;
		m->nf = 0;
		m->folders_rv = MBX_PENDING;
		m->folders_started = false;
	}
}

/* Free the last request's folder ids and names. */
static void
last_free(struct mi *m)
{
	for (size_t i = 0; i < m->last_n; i++) {
		free(m->last_ids[i]);
		free(m->last_mailboxes[i]);
	}
	free(m->last_ids);
	free(m->last_mailboxes);
	m->last_ids = m->last_mailboxes = NULL;
	m->last_n = 0;
}

static void
mi_destroy(struct mbx_backend *b)
{
	struct mi *m = (struct mi *)b;

	if (m->preq) {
		imap_pool_cancel(m->preq);
		m->preq = NULL;
	}
	if (m->job) { /* abandoned mid-command: the connection is not reusable */
		struct job *j = m->job;
		m->wait_cb = NULL;
		if (m->c)
			imap_pool_put(m->pool, m->c, false);
		m->c = NULL;
		j->memo = memo_add(m, xstrdup("abandoned"));
		job_finish(j, -1, NULL);
	}
	mi_end(b);
	last_free(m);
	explicit_bzero(m->password, strlen(m->password));
	free(m->password);
	free(m->sub_url);
	free(m->sub_from);
	free(m->sub_ca);
	free(m->account);
	free(m->user);
	free(m);
}

/* The ops; with send only once the backend was given what it needs. */
#define MI_OPS                                                                                     \
	.name = "imap", .list_folders = mi_list_folders, .list_items = mi_list_items,              \
	.fetch = mi_fetch, .set_read = mi_set_read, .destroy = mi_destroy, .wait = mi_wait,        \
	.begin = mi_begin, .end = mi_end, .release = mi_release, .changes = mi_changes,            \
	.set_flags = mi_set_flags, .remove = mi_remove, .move = mi_move,                           \
	.mark_answered = mi_mark_answered, .empty = mi_empty, .fetch_part = mi_fetch_part,         \
	.forget_parts = mi_forget_parts, .folder_create = mi_folder_create,                        \
	.folder_rename = mi_folder_rename, .folder_delete = mi_folder_delete, .search = mi_search
static const struct mbx_ops mi_ops = {MI_OPS};
static const struct mbx_ops mi_send_ops = {MI_OPS, .send = mi_send};

struct mbx_backend *
mbx_imap_new(struct imap_pool *pool, const char *account, const char *user, const char *password,
             const struct mbx_imap_folder_map *map)
{
	struct mi *m = xcalloc(1, sizeof(*m));

	m->base.ops = &mi_ops;
	m->pool = pool;
	m->account = xstrdup(account);
	m->user = xstrdup(user != NULL ? user : account);
	m->password = xstrdup(password);
	m->map = map;
	m->folders_rv = MBX_PENDING;
	return &m->base;
}

/* Let the backend send (see mailbox_imap.h). */
void
mbx_imap_set_send(struct mbx_backend *b, const struct mbx_imap_send *send)
{
	struct mi *m = (struct mi *)b;

	free(m->sub_url);
	free(m->sub_from);
	free(m->sub_ca);
	m->sub_url = m->sub_from = m->sub_ca = NULL;
	m->sq = NULL;
	m->base.ops = &mi_ops;
	if (send == NULL || send->q == NULL || send->url == NULL || send->from == NULL)
		return;
	m->sq = send->q;
	m->sub_url = xstrdup(send->url);
	m->sub_from = xstrdup(send->from);
	m->sub_insecure = send->tls_insecure;
	m->sub_ca = send->ca_file != NULL ? xstrdup(send->ca_file) : NULL;
	m->base.ops = &mi_send_ops;
}

/* Parse fetched messages on q's thread (see mailbox_imap.h). */
void
mbx_imap_set_parseq(struct mbx_backend *b, struct parseq *q)
{
	((struct mi *)b)->pq = q;
}

enum mbx_imap_failure
mbx_imap_failure(const struct mbx_backend *b)
{
	return ((const struct mi *)b)->fail;
}

/* See mailbox_imap.h. */
const char *
mbx_imap_mailbox(const struct mbx_backend *b, const char *folder_id)
{
	const struct mi *m = (const struct mi *)b;
	long i;

	if (folder_id == NULL)
		return NULL;
	if (m->folders_rv == 0 && (i = folder_index(m, folder_id)) >= 0)
		return m->mailboxes[i];
	for (size_t k = 0; k < m->last_n; k++)
		if (strcmp(m->last_ids[k], folder_id) == 0)
			return m->last_mailboxes[k];
	return NULL;
}

void
mbx_imap_stats(const struct mbx_backend *b, unsigned *runs_r, unsigned *commands_r)
{
	const struct mi *m = (const struct mi *)b;

	*runs_r = m->runs;
	*commands_r = m->cmds;
}
