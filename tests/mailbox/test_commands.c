/*
 * test_commands.c: the ActiveSync command layer over the quarantine mailbox.
 *
 * Every test drives mbx_serve() with real WBXML request bytes built with the
 * codec's builder, decodes the answer with the codec, and checks it; the
 * sync state lives in an in-memory accessor standing in for the store, so a
 * "restart" is a new backend instance over the same stored state. Each test
 * runs at every protocol version the mailbox serves.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "lib/b64.h"
#include "lib/util.h"
#include "mailbox/commands.h"
#include "mailbox/mailbox_memory.h"
#include "mailbox/run.h"
#include "mailbox/serve.h"
#include "mime/msgconv.h"

static const char *const versions[] = {"12.1", "14.0", "14.1", "16.0", "16.1"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

/* ---- an in-memory sync-state store ---- */

struct kv {
	char key[256];
	char *val;
	size_t len;
};
struct mem {
	struct kv kv[64];
	size_t n;
	int puts;
	int dels;
	/*
	 * SendMail's ClientIds when cid_on (commands.h): "account\ndevice\nid"
	 * and 1 (being sent) or 2 (sent); cid_fail makes every op fail.
	 */
	bool cid_on, cid_fail;
	struct {
		char key[256];
		int state;
	} cids[16];
	size_t ncids;
	int cid_ops;
};

/* The map key of (account, device, collection). */
static void
mkey(char out[256], const char *a, const char *d, const char *c)
{
	snprintf(out, 256, "%s\n%s\n%s", a, d, c ? c : "");
}

/* accessor get: a copy of the blob. */
static int
mem_get(void *arg, const char *a, const char *d, const char *c, char **blob_r, size_t *len_r)
{
	struct mem *m = arg;
	char k[256];

	mkey(k, a, d, c);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].key, k) == 0) {
			*blob_r = xstrndup(m->kv[i].val, m->kv[i].len);
			*len_r = m->kv[i].len;
			return 1;
		}
	}
	return 0;
}

/* accessor put: insert or replace. */
static int
mem_put(void *arg, const char *a, const char *d, const char *c, const char *blob, size_t len)
{
	struct mem *m = arg;
	char k[256];

	m->puts++;
	mkey(k, a, d, c);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].key, k) == 0) {
			free(m->kv[i].val);
			m->kv[i].val = xstrndup(blob, len);
			m->kv[i].len = len;
			return 0;
		}
	}
	assert_true(m->n < 64);
	snprintf(m->kv[m->n].key, 256, "%s", k);
	m->kv[m->n].val = xstrndup(blob, len);
	m->kv[m->n].len = len;
	m->n++;
	return 0;
}

/* accessor del: one collection or all of the device. */
static int
mem_del(void *arg, const char *a, const char *d, const char *c)
{
	struct mem *m = arg;
	char k[256];
	size_t kl;

	m->dels++;
	mkey(k, a, d, c);
	kl = strlen(k);
	for (size_t i = 0; i < m->n;) {
		if (c ? strcmp(m->kv[i].key, k) == 0 : strncmp(m->kv[i].key, k, kl) == 0) {
			free(m->kv[i].val);
			m->kv[i] = m->kv[--m->n];
		} else {
			i++;
		}
	}
	return 0;
}

/* accessor client_id: a reservation, a sent, a release, as the store does them. */
static int
mem_client_id(void *arg, const char *a, const char *d, const char *cid, int op)
{
	struct mem *m = arg;
	char k[256];
	size_t i;

	m->cid_ops++;
	if (m->cid_fail)
		return -1;
	mkey(k, a, d, cid);
	for (i = 0; i < m->ncids && strcmp(m->cids[i].key, k) != 0; i++)
		;
	if (op == MBX_CLIENTID_RESERVE && i < m->ncids)
		return m->cids[i].state == 2 ? MBX_CLIENTID_DONE : MBX_CLIENTID_BUSY;
	if (op == MBX_CLIENTID_RELEASE) {
		if (i < m->ncids && m->cids[i].state == 1)
			m->cids[i] = m->cids[--m->ncids];
		return 0;
	}
	if (i == m->ncids) {
		assert_true(m->ncids < 16);
		snprintf(m->cids[m->ncids++].key, 256, "%s", k);
	}
	m->cids[i].state = op == MBX_CLIENTID_SENT ? 2 : 1;
	return op == MBX_CLIENTID_SENT ? 0 : MBX_CLIENTID_NEW;
}

/* The ClientId's state in m: 0 none, 1 being sent, 2 sent. */
static int
mem_cid(const struct mem *m, const char *a, const char *d, const char *cid)
{
	char k[256];

	mkey(k, a, d, cid);
	for (size_t i = 0; i < m->ncids; i++)
		if (strcmp(m->cids[i].key, k) == 0)
			return m->cids[i].state;
	return 0;
}

static void
mem_free(struct mem *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->kv[i].val);
	m->n = 0;
}

/* ---- a backend and a sync state that answer later (run.h) ---- */

/* One op a pending backend was asked, and its result once done. */
enum pop_kind { POP_FOLDERS, POP_ITEMS, POP_FETCH, POP_SET_READ };
struct pop {
	enum pop_kind kind;
	char folder[MBX_ID_MAX + 1], item[MBX_ID_MAX + 1];
	bool read, done;
	int rv;
	const char *err;
	const struct mbx_folder *folders;
	size_t n;
	struct mbx_item_ref *items;
	struct mbx_email e;
};

/*
 * A backend over another one (inner) that, pending, answers MBX_PENDING the
 * first time each op is asked and does it at the next loop turn (pb_turn),
 * recording its result; every later run of the request replays the ops in
 * the order they were asked (a read asked again with the same arguments and
 * no write in between is answered at once). Not pending: it passes every op
 * through and counts the set_read calls.
 */
struct pb {
	struct mbx_backend base;
	struct mbx_backend *inner;
	struct pop *log;
	size_t n, pos;
	void (*cb)(void *);
	void *cb_arg;
	int set_reads; /* set_read calls that reached inner */
	int runs;      /* begin calls */
	int ends;
};

static void
pop_clear(struct pop *p)
{
	free(p->items);
	mbx_email_clear(&p->e);
}

/* A copy of n item refs. */
static struct mbx_item_ref *
dup_items(const struct mbx_item_ref *v, size_t n)
{
	struct mbx_item_ref *c = xcalloc(n, sizeof(*c));
	memcpy(c, v, n * sizeof(*c));
	return c;
}

/* Copy an op's recorded result out: its return value. */
static int
pop_answer(const struct pop *p, const struct mbx_folder **folders_r, struct mbx_item_ref **items_r,
           size_t *n_r, struct mbx_email *e, const char **errstr_r)
{
	*errstr_r = p->err;
	if (p->kind == POP_FOLDERS) {
		*folders_r = p->folders;
		*n_r = p->n;
	} else if (p->kind == POP_ITEMS) {
		*items_r = p->n ? dup_items(p->items, p->n) : NULL;
		*n_r = p->n;
	} else if (p->kind == POP_FETCH && p->rv == 1) {
		*e = (struct mbx_email){
		    .from = xstrdup_null(p->e.from),
		    .to = xstrdup_null(p->e.to),
		    .display_to = xstrdup_null(p->e.display_to),
		    .subject = xstrdup_null(p->e.subject),
		    .date_received = p->e.date_received,
		    .read = p->e.read,
		    .message_class = xstrdup_null(p->e.message_class),
		    .body_plain = xstrdup_null(p->e.body_plain),
		    .body_html = xstrdup_null(p->e.body_html),
		};
	}
	return p->rv;
}

/* Whether op a is op b (the same kind and arguments). */
static bool
pop_same(const struct pop *a, enum pop_kind kind, const char *folder, const char *item, bool read)
{
	return a->kind == kind && strcmp(a->folder, folder ? folder : "") == 0 &&
	       strcmp(a->item, item ? item : "") == 0 && a->read == read;
}

/* Answer one op: replayed, answered from an earlier read, or started (MBX_PENDING). */
static int
pb_op(struct pb *p, enum pop_kind kind, const char *folder, const char *item, bool read,
      const struct mbx_folder **folders_r, struct mbx_item_ref **items_r, size_t *n_r,
      struct mbx_email *e, const char **errstr_r)
{
	if (p->pos < p->n) {
		struct pop *o = &p->log[p->pos++];
		assert_true(pop_same(o, kind, folder, item, read)); /* a run repeats the last */
		assert_true(o->done);
		return pop_answer(o, folders_r, items_r, n_r, e, errstr_r);
	}
	p->log = xrealloc(p->log, (p->n + 1) * sizeof(*p->log));
	struct pop *o = &p->log[p->n];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	snprintf(o->folder, sizeof(o->folder), "%s", folder ? folder : "");
	snprintf(o->item, sizeof(o->item), "%s", item ? item : "");
	o->read = read;
	for (size_t i = p->n; kind != POP_SET_READ && i-- > 0;) {
		if (p->log[i].kind == POP_SET_READ)
			break;
		if (pop_same(&p->log[i], kind, folder, item, read)) {
			struct pop *src = &p->log[i];
			o->done = true;
			o->rv = src->rv;
			o->err = src->err;
			o->folders = src->folders;
			o->n = src->n;
			o->items =
			    kind == POP_ITEMS && src->n ? dup_items(src->items, src->n) : NULL;
			if (src->rv == 1 && kind == POP_FETCH)
				pop_answer(src, folders_r, items_r, n_r, &o->e, errstr_r);
			p->n++;
			p->pos++;
			return pop_answer(o, folders_r, items_r, n_r, e, errstr_r);
		}
	}
	p->n++;
	return MBX_PENDING;
}

static int
pb_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                const char **errstr_r)
{
	return pb_op((struct pb *)b, POP_FOLDERS, NULL, NULL, false, folders_r, NULL, n_r, NULL,
	             errstr_r);
}

static int
pb_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
              size_t *n_r, const char **errstr_r)
{
	return pb_op((struct pb *)b, POP_ITEMS, folder_id, NULL, false, NULL, items_r, n_r, NULL,
	             errstr_r);
}

static int
pb_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
         const char **errstr_r)
{
	return pb_op((struct pb *)b, POP_FETCH, folder_id, item_id, false, NULL, NULL, NULL, out,
	             errstr_r);
}

static int
pb_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
            const char **errstr_r)
{
	return pb_op((struct pb *)b, POP_SET_READ, folder_id, item_id, read, NULL, NULL, NULL, NULL,
	             errstr_r);
}

/* The wrapper is the fixture's: destroying it leaves inner alone. */
static void
pb_destroy(struct mbx_backend *b)
{
	(void)b;
}

static void
pb_wait(struct mbx_backend *b, void (*cb)(void *), void *arg)
{
	struct pb *p = (struct pb *)b;
	assert_null(p->cb);
	p->cb = cb;
	p->cb_arg = arg;
}

static void
pb_begin(struct mbx_backend *b)
{
	struct pb *p = (struct pb *)b;
	p->pos = 0;
	p->runs++;
}

static void
pb_end(struct mbx_backend *b)
{
	struct pb *p = (struct pb *)b;
	for (size_t i = 0; i < p->n; i++)
		pop_clear(&p->log[i]);
	free(p->log);
	p->log = NULL;
	p->n = p->pos = 0;
	p->ends++;
}

/* A loop turn: do the ops started, then tell the driver. false: nothing was waiting. */
static bool
pb_turn(struct pb *p)
{
	if (p->cb == NULL)
		return false;
	for (size_t i = 0; i < p->n; i++) {
		struct pop *o = &p->log[i];
		if (o->done)
			continue;
		o->done = true;
		switch (o->kind) {
		case POP_FOLDERS:
			o->rv = mbx_list_folders(p->inner, &o->folders, &o->n, &o->err);
			break;
		case POP_ITEMS:
			o->rv = mbx_list_items(p->inner, o->folder, &o->items, &o->n, &o->err);
			break;
		case POP_FETCH:
			o->rv = mbx_fetch(p->inner, o->folder, o->item, &o->e, &o->err);
			break;
		case POP_SET_READ:
			p->set_reads++;
			o->rv = mbx_set_read(p->inner, o->folder, o->item, o->read, &o->err);
			break;
		}
	}
	void (*cb)(void *) = p->cb;
	p->cb = NULL;
	cb(p->cb_arg);
	return true;
}

static const struct mbx_ops pb_ops = {
    .name = "pending",
    .list_folders = pb_list_folders,
    .list_items = pb_list_items,
    .fetch = pb_fetch,
    .set_read = pb_set_read,
    .destroy = pb_destroy,
    .wait = pb_wait,
    .begin = pb_begin,
    .end = pb_end,
};

/* The pass-through: every op to inner, set_read counted. */
static int
cb_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                const char **errstr_r)
{
	return mbx_list_folders(((struct pb *)b)->inner, folders_r, n_r, errstr_r);
}

static int
cb_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
              size_t *n_r, const char **errstr_r)
{
	return mbx_list_items(((struct pb *)b)->inner, folder_id, items_r, n_r, errstr_r);
}

static int
cb_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
         const char **errstr_r)
{
	return mbx_fetch(((struct pb *)b)->inner, folder_id, item_id, out, errstr_r);
}

static int
cb_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
            const char **errstr_r)
{
	((struct pb *)b)->set_reads++;
	return mbx_set_read(((struct pb *)b)->inner, folder_id, item_id, read, errstr_r);
}

static const struct mbx_ops counting_ops = {
    .name = "counting",
    .list_folders = cb_list_folders,
    .list_items = cb_list_items,
    .fetch = cb_fetch,
    .set_read = cb_set_read,
    .destroy = pb_destroy,
};

/*
 * A sync state that answers later: reads and the commit wait for the next
 * loop turn (as_turn), and are then done on a struct mem. sync: at once.
 */
struct as {
	struct mem *mem;
	bool sync;
	bool fail_commit;
	int gets, commits;
	/* what waits for the turn: one read or one commit */
	char *coll;
	bool coll_null;
	mbx_state_got_fn got;
	void *got_arg;
	const struct mbx_state_op *ops;
	size_t n_ops;
	mbx_state_committed_fn committed;
	void *committed_arg;
	const char *account, *device_id;
	/* a ClientId op waiting for its turn */
	mbx_client_id_fn cid_done;
	void *cid_arg;
	char *cid;
	int cid_op;
};

/* Do a read on the mem. */
static void
as_do_get(struct as *a, const char *coll, mbx_state_got_fn done, void *done_arg)
{
	char *blob = NULL;
	size_t len = 0;
	int rv = mem_get(a->mem, a->account, a->device_id, coll, &blob, &len);
	done(done_arg, rv, blob, len);
}

/* Do a commit on the mem: the ops in order, or nothing. */
static void
as_do_commit(struct as *a, const struct mbx_state_op *ops, size_t n, mbx_state_committed_fn done,
             void *done_arg)
{
	a->commits++;
	if (a->fail_commit) {
		done(done_arg, -1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].blob != NULL)
			mem_put(a->mem, a->account, a->device_id, ops[i].collection, ops[i].blob,
			        ops[i].len);
		else
			mem_del(a->mem, a->account, a->device_id, ops[i].collection);
	}
	done(done_arg, 0);
}

static void
as_get(void *arg, const char *account, const char *device_id, const char *collection,
       mbx_state_got_fn done, void *done_arg)
{
	struct as *a = arg;
	a->gets++;
	a->account = account;
	a->device_id = device_id;
	if (a->sync) {
		as_do_get(a, collection, done, done_arg);
		return;
	}
	assert_null(a->got); /* a run stops at its first pending read */
	a->coll = xstrdup(collection);
	a->got = done;
	a->got_arg = done_arg;
}

static void
as_commit(void *arg, const char *account, const char *device_id, const struct mbx_state_op *ops,
          size_t n, mbx_state_committed_fn done, void *done_arg)
{
	struct as *a = arg;
	a->account = account;
	a->device_id = device_id;
	if (a->sync) {
		as_do_commit(a, ops, n, done, done_arg);
		return;
	}
	assert_null(a->committed);
	a->ops = ops;
	a->n_ops = n;
	a->committed = done;
	a->committed_arg = done_arg;
}

/* A ClientId op: done at the next turn (at once when sync). */
static void
as_client_id(void *arg, const char *account, const char *device_id, const char *client_id, int op,
             mbx_client_id_fn done, void *done_arg)
{
	struct as *a = arg;
	a->account = account;
	a->device_id = device_id;
	if (a->sync) {
		done(done_arg, mem_client_id(a->mem, account, device_id, client_id, op));
		return;
	}
	assert_null(a->cid_done);
	a->cid = xstrdup(client_id);
	a->cid_op = op;
	a->cid_done = done;
	a->cid_arg = done_arg;
}

/* A loop turn: complete the read, the ClientId op or the commit waiting. false: none was. */
static bool
as_turn(struct as *a)
{
	if (a->cid_done != NULL) {
		mbx_client_id_fn done = a->cid_done;
		char *cid = a->cid;
		a->cid_done = NULL;
		a->cid = NULL;
		int rv = mem_client_id(a->mem, a->account, a->device_id, cid, a->cid_op);
		free(cid);
		done(a->cid_arg, rv);
		return true;
	}
	if (a->got != NULL) {
		mbx_state_got_fn got = a->got;
		char *coll = a->coll;
		a->got = NULL;
		a->coll = NULL;
		as_do_get(a, coll, got, a->got_arg);
		free(coll);
		return true;
	}
	if (a->committed != NULL) {
		mbx_state_committed_fn done = a->committed;
		a->committed = NULL;
		as_do_commit(a, a->ops, a->n_ops, done, a->committed_arg);
		return true;
	}
	return false;
}

/* mbx_run's answer, copied. */
struct answer {
	bool called;
	int rv;
	struct mbx_serve_out out;
};

static void
run_done(void *arg, int rv, struct mbx_serve_out *out)
{
	struct answer *a = arg;
	assert_false(a->called);
	a->called = true;
	a->rv = rv;
	a->out = *out;
	memset(out, 0, sizeof(*out)); /* kept */
}

/*
 * Run in through mbx_run over backend p and state a, driving the loop turns
 * (the state's first, then the backend's) until the answer came.
 */
static void
drive(const struct mbx_serve_in *in, struct pb *p, struct as *a, int max_runs, struct answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	mbx_run(
	    in,
	    &(struct mbx_async_state){a, as_get, as_commit, a->mem->cid_on ? as_client_id : NULL},
	    max_runs, run_done, ans);
	for (int turns = 0; !ans->called; turns++) {
		assert_true(turns < 100000);
		if (!as_turn(a) && !(p != NULL && pb_turn(p)))
			fail_msg("mbx_run waits for nothing");
	}
	assert_null(a->got);
	assert_null(a->committed);
	assert_null(a->cid_done);
}

/* Whether two stores hold the same blobs. */
static void
assert_mem_equal(const struct mem *x, const struct mem *y)
{
	assert_int_equal(x->n, y->n);
	for (size_t i = 0; i < x->n; i++) {
		size_t j = 0;
		while (j < y->n && strcmp(x->kv[i].key, y->kv[j].key) != 0)
			j++;
		assert_true(j < y->n);
		assert_int_equal(x->kv[i].len, y->kv[j].len);
		assert_memory_equal(x->kv[i].val, y->kv[j].val, x->kv[i].len);
	}
	assert_int_equal(x->ncids, y->ncids);
	for (size_t i = 0; i < x->ncids; i++) {
		size_t j = 0;
		while (j < y->ncids && strcmp(x->cids[i].key, y->cids[j].key) != 0)
			j++;
		assert_true(j < y->ncids);
		assert_int_equal(x->cids[i].state, y->cids[j].state);
	}
}

/* Whether two answers are the same, byte for byte. */
static void
assert_out_equal(const struct mbx_serve_out *x, const struct mbx_serve_out *y)
{
	assert_int_equal(x->http_status, y->http_status);
	assert_true((x->content_type == NULL) == (y->content_type == NULL));
	if (x->content_type != NULL)
		assert_string_equal(x->content_type, y->content_type);
	assert_int_equal(x->body_len, y->body_len);
	if (x->body_len)
		assert_memory_equal(x->body, y->body, x->body_len);
	assert_int_equal(x->n_headers, y->n_headers);
	for (size_t i = 0; i < x->n_headers; i++) {
		assert_string_equal(x->headers[i][0], y->headers[i][0]);
		assert_string_equal(x->headers[i][1], y->headers[i][1]);
	}
	assert_int_equal(x->hold_seconds, y->hold_seconds);
	assert_int_equal(x->n_watch, y->n_watch);
	for (size_t i = 0; i < x->n_watch; i++)
		assert_string_equal(x->watch[i], y->watch[i]);
	assert_int_equal(x->devinfo_seen, y->devinfo_seen);
	assert_int_equal(x->wipe_acked, y->wipe_acked);
	assert_int_equal(x->provision_status, y->provision_status);
	assert_int_equal(x->stream.on, y->stream.on);
	assert_int_equal(x->stream.base64, y->stream.base64);
	assert_int_equal(x->stream.total, y->stream.total);
	assert_string_equal(x->stream.section, y->stream.section);
	assert_int_equal(x->stream.suffix_len, y->stream.suffix_len);
	if (x->stream.suffix_len)
		assert_memory_equal(x->stream.suffix, y->stream.suffix, x->stream.suffix_len);
	assert_false(y->pending);
}

/* ---- the fixture: one device's mailbox ---- */

struct fx {
	struct mem mem;
	struct mbx_backend *mb;
	/*
	 * The mirror: every request served synchronously (mem, mb) is served
	 * again through mbx_run over a pending backend on mb2 and a pending
	 * state on mem2, and must be answered and stored the same, byte for
	 * byte, with one commit and the same set_read calls.
	 */
	struct mem mem2;
	struct mbx_backend *mb2;
	int max_runs;  /* mbx_run's cap; 0: its default */
	int runs;      /* the mirror's runs of the last request */
	int set_reads; /* its set_read calls that reached the mailbox */
	int commits;   /* its commits */
	struct notice_facts facts;
	const char *version;
	struct mbx_serve_out out;
	struct wbxml_doc *resp;
	int wipe; /* mbx_serve_in's wipe */
};

static const struct mbx_quarantine_config qcfg = {
    .sender = "IT <it@example.com>",
    .date = 1700000000,
};

/* A fresh fixture at a version. */
static void
fx_init(struct fx *f, const char *version)
{
	memset(f, 0, sizeof(*f));
	f->facts = (struct notice_facts){
	    .account = "alice@example.com",
	    .device_id = "DEV1",
	    .device_type = "iPhone",
	    .model = "iPhone15,3 <Pro>",
	    .os = "iOS 17.1",
	    .user_agent = "Apple-iPhone15C3/2101.1",
	    .imei = "3566",
	    .eas_version = version,
	    .state = "Quarantined",
	    .contact = "helpdesk@example.com",
	};
	f->version = version;
	f->mb = mbx_quarantine_new(&qcfg, &f->facts);
	f->mb2 = mbx_quarantine_new(&qcfg, &f->facts);
}

/* "Restart": a new backend instance, the stored state kept. */
static void
fx_restart(struct fx *f)
{
	mbx_destroy(&f->mb);
	f->mb = mbx_quarantine_new(&qcfg, &f->facts);
	mbx_destroy(&f->mb2);
	f->mb2 = mbx_quarantine_new(&qcfg, &f->facts);
}

static void
fx_done(struct fx *f)
{
	mbx_serve_out_clear(&f->out);
	wbxml_doc_free(&f->resp);
	mbx_destroy(&f->mb);
	mem_free(&f->mem);
	mbx_destroy(&f->mb2);
	mem_free(&f->mem2);
}

/* Serve cmd with the request doc (NULL: empty body); decode the answer into f->resp. */
static struct wbxml_node *
serve(struct fx *f, enum eas_cmd cmd, struct wbxml_doc *req)
{
	uint8_t *body = NULL;
	size_t len = 0;

	if (req != NULL) {
		assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
		wbxml_doc_free(&req);
	}
	mbx_serve_out_clear(&f->out);
	wbxml_doc_free(&f->resp);
	struct pb ref = {.base = {&counting_ops}, .inner = f->mb};
	struct mbx_serve_in in = {
	    .cmd = cmd,
	    .version = f->version,
	    .body = body,
	    .body_len = len,
	    .account = f->facts.account,
	    .device_id = f->facts.device_id,
	    .backend = &ref.base,
	    .state = {&f->mem, mem_get, mem_put, mem_del, f->mem.cid_on ? mem_client_id : NULL},
	    .now = 1700000100,
	    .heartbeat_min = 60,
	    .heartbeat_max = 1800,
	    .wipe = f->wipe,
	};
	int writes = f->mem.puts + f->mem.dels;
	assert_int_equal(mbx_serve(&in, &f->out), 0);
	writes = f->mem.puts + f->mem.dels - writes;
	if (f->mb2 != NULL) {
		struct pb p = {.base = {&pb_ops}, .inner = f->mb2};
		struct as a = {.mem = &f->mem2};
		struct answer ans;
		in.backend = &p.base;
		in.state = (struct mbx_state_accessor){0};
		drive(&in, &p, &a, f->max_runs, &ans);
		assert_int_equal(ans.rv, 0);
		assert_out_equal(&f->out, &ans.out);
		mbx_serve_out_clear(&ans.out);
		assert_mem_equal(&f->mem, &f->mem2);
		assert_int_equal(a.commits, writes > 0 ? 1 : 0);
		assert_int_equal(p.set_reads, ref.set_reads);
		assert_int_equal(p.ends, 1);
		f->runs = p.runs;
		f->set_reads = p.set_reads;
		f->commits = a.commits;
	}
	free(body);
	if (f->out.http_status != 200 || f->out.body == NULL)
		return NULL;
	assert_string_equal(f->out.content_type, "application/vnd.ms-sync.wbxml");
	assert_int_equal(wbxml_decode(f->out.body, f->out.body_len, NULL, &f->resp, NULL),
	                 WBXML_OK);
	return wbxml_doc_root(f->resp);
}

/* The text at path below n, failing the test when absent. */
static const char *
txt(const struct wbxml_node *n, const char *path)
{
	const char *t = wbxml_find_text(n, path);
	if (t == NULL)
		fail_msg("no %s in %s", path, wbxml_to_xml(n, 0));
	return t != NULL ? t : ""; /* fail_msg returns not: "" only tells the compiler so */
}

/* The text at path below n as a whole decimal number, failing the test otherwise. */
static long
num(const struct wbxml_node *n, const char *path)
{
	const char *t = txt(n, path);
	char *end;
	long v;

	errno = 0;
	v = strtol(t, &end, 10);
	if (errno != 0 || end == t || *end != '\0')
		fail_msg("%s is %s: not a number", path, t);
	return v;
}

/* The value of an extra header of the last answer, or NULL. */
static const char *
hdr(const struct fx *f, const char *name)
{
	for (size_t i = 0; i < f->out.n_headers; i++) {
		if (strcmp(f->out.headers[i][0], name) == 0)
			return f->out.headers[i][1];
	}
	return NULL;
}

/* ---- request builders ---- */

static struct wbxml_doc *
req_foldersync(const char *key)
{
	struct wbxml_doc *d = wbxml_doc_new();
	wbxml_addn_text(wbxml_addn_root(d, "FolderHierarchy:FolderSync"), "SyncKey", key);
	return d;
}

/* Sync of one collection; type/trunc 0 leave out the BodyPreference. */
static struct wbxml_doc *
req_sync(const char *key, const char *coll, int type, int trunc, int window, bool getchanges)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *c =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "AirSync:Sync"), "Collections"), "Collection");
	wbxml_addn_text(c, "SyncKey", key);
	wbxml_addn_text(c, "CollectionId", coll);
	if (getchanges && strcmp(key, "0") != 0)
		wbxml_addn(c, "GetChanges");
	if (window)
		wbxml_addn_text(c, "WindowSize", window == 1 ? "1" : "50");
	if (type) {
		struct wbxml_node *bp =
		    wbxml_addn(wbxml_addn(c, "Options"), "AirSyncBase:BodyPreference");
		wbxml_addn_text(bp, "Type", type == 1 ? "1" : "2");
		if (trunc) {
			char t[16];
			snprintf(t, sizeof(t), "%d", trunc);
			wbxml_addn_text(bp, "TruncationSize", t);
		}
	}
	return d;
}

static struct wbxml_doc *
req_estimate(const char *key, const char *coll)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *c = wbxml_addn(
	    wbxml_addn(wbxml_addn_root(d, "GetItemEstimate:GetItemEstimate"), "Collections"),
	    "Collection");
	wbxml_addn_text(c, "AirSync:SyncKey", key);
	wbxml_addn_text(c, "GetItemEstimate:CollectionId", coll);
	return d;
}

static struct wbxml_doc *
req_ping(const char *hb, const char *folder)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(d, "Ping:Ping");
	wbxml_addn_text(r, "HeartbeatInterval", hb);
	struct wbxml_node *f = wbxml_addn(wbxml_addn(r, "Folders"), "Folder");
	wbxml_addn_text(f, "Id", folder);
	wbxml_addn_text(f, "Class", "Email");
	return d;
}

/* Run FolderSync 0 and Sync 0 on the Inbox; returns the Inbox key in key. */
static void
prime(struct fx *f, char key[80])
{
	struct wbxml_node *r = serve(f, EAS_CMD_FOLDERSYNC, req_foldersync("0"));
	assert_non_null(r);
	r = serve(f, EAS_CMD_SYNC, req_sync("0", MBX_Q_INBOX_ID, 0, 0, 0, false));
	assert_non_null(r);
	assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
	snprintf(key, 80, "%s", txt(r, "Collections/Collection/SyncKey"));
	assert_true(mbx_key_is_ours(key));
	assert_null(wbxml_find(r, "Collections/Collection/Commands"));
}

/* ---- tests ---- */

/*
 * FolderSync 0 lists the five folders and announces the versions up to the
 * client's and the commands; our key: no changes and the key stays, as often
 * as it is repeated (a lost answer); unknown key: 9.
 */
static void
test_foldersync(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80];
		fx_init(&f, versions[v]);
		struct wbxml_node *r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync("0"));
		assert_non_null(r);
		assert_string_equal(txt(r, "Status"), "1");
		assert_string_equal(txt(r, "Changes/Count"), "5");
		snprintf(key, sizeof(key), "%s", txt(r, "SyncKey"));
		assert_true(mbx_key_is_ours(key));
		struct wbxml_node *a = wbxml_find(r, "Changes/Add");
		assert_string_equal(txt(a, "DisplayName"), "Inbox");
		assert_string_equal(txt(a, "Type"), "2");
		assert_string_equal(txt(a, "ServerId"), MBX_Q_INBOX_ID);
		int types = 0;
		for (struct wbxml_node *c = wbxml_find(r, "Changes")->first_child; c; c = c->next) {
			const char *t = wbxml_find_text(c, "Type");
			if (t)
				types |= 1 << strtol(t, NULL, 10);
		}
		assert_int_equal(types, (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6));
		const char *pv = hdr(&f, "MS-ASProtocolVersions");
		assert_non_null(pv);
		assert_string_equal(pv + strlen(pv) - strlen(versions[v]), versions[v]);
		assert_non_null(strstr(hdr(&f, "MS-ASProtocolCommands"), "FolderSync"));
		assert_non_null(hdr(&f, "MS-Server-ActiveSync"));
		for (int i = 0; i < 3; i++) {
			r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync(key));
			assert_string_equal(txt(r, "Status"), "1");
			assert_string_equal(txt(r, "Changes/Count"), "0");
			assert_null(wbxml_find(r, "Changes/Add"));
			assert_string_equal(txt(r, "SyncKey"), key);
			assert_non_null(hdr(&f, "MS-Server-ActiveSync"));
			assert_null(hdr(&f, "MS-ASProtocolVersions"));
		}
		r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync("upstream-17"));
		assert_string_equal(txt(r, "Status"), "9");
		fx_done(&f);
	}
}

/* Sync 0, then GetChanges: exactly the alert, plain or HTML, then nothing more. */
static void
test_sync_alert(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (int type = 1; type <= 2; type++) {
			struct fx f;
			char key[80];
			fx_init(&f, versions[v]);
			prime(&f, key);
			struct wbxml_node *r = serve(
			    &f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, type, 0, 50, true));
			struct wbxml_node *c = wbxml_find(r, "Collections/Collection");
			assert_string_equal(txt(c, "Status"), "1");
			struct wbxml_node *cmds = wbxml_find(c, "Commands");
			assert_non_null(cmds);
			assert_non_null(cmds->first_child);
			assert_null(cmds->first_child->next); /* exactly one */
			struct wbxml_node *ad = wbxml_find(cmds, "Add/ApplicationData");
			assert_string_equal(
			    txt(ad, "Email:Subject"),
			    "Your device iPhone15,3 <Pro> has been put in quarantine");
			assert_string_equal(txt(ad, "Email:From"), "IT <it@example.com>");
			assert_string_equal(txt(ad, "Email:To"), "alice@example.com");
			assert_string_equal(txt(ad, "Email:Read"), "0");
			assert_string_equal(txt(ad, "Email:DateReceived"),
			                    "2023-11-14T22:13:20.000Z");
			assert_string_equal(txt(ad, "AirSyncBase:Body/Type"),
			                    type == 1 ? "1" : "2");
			const char *data = txt(ad, "AirSyncBase:Body/Data");
			if (type == 1) {
				assert_non_null(strstr(data, "iPhone15,3 <Pro>"));
				assert_non_null(strstr(data, "helpdesk@example.com"));
			} else {
				assert_non_null(strstr(data, "iPhone15,3 &lt;Pro&gt;"));
				assert_null(strstr(data, "<Pro>"));
			}
			assert_null(wbxml_find(c, "MoreAvailable"));
			snprintf(key, sizeof(key), "%s", txt(c, "SyncKey"));
			/* No more changes. */
			r = serve(&f, EAS_CMD_SYNC,
			          req_sync(key, MBX_Q_INBOX_ID, type, 0, 50, true));
			c = wbxml_find(r, "Collections/Collection");
			assert_string_equal(txt(c, "Status"), "1");
			assert_null(wbxml_find(c, "Commands"));
			fx_done(&f);
		}
	}
}

/* TruncationSize cuts the body and says so; WindowSize 1 still fits the alert. */
static void
test_sync_truncation(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 2, 20, 1, true));
		struct wbxml_node *b = wbxml_find(
		    r, "Collections/Collection/Commands/Add/ApplicationData/AirSyncBase:Body");
		assert_int_equal(strlen(txt(b, "Data")), 20);
		assert_string_equal(txt(b, "Truncated"), "1");
		assert_true(strtol(txt(b, "EstimatedDataSize"), NULL, 10) > 20);
		assert_null(wbxml_find(r, "Collections/Collection/MoreAvailable"));
		fx_done(&f);
	}
}

/* A Change of the read flag is accepted and persisted; an unknown key gets 3. */
static void
test_sync_read_flag_and_restart(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		/* Restart between Sync 0 and the Sync that fetches the alert. */
		fx_restart(&f);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		snprintf(sid, sizeof(sid), "%s",
		         txt(r, "Collections/Collection/Commands/Add/ServerId"));
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		/* Mark it read. */
		struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, true);
		struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		struct wbxml_node *ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
		wbxml_addn_text(ch, "ServerId", sid);
		wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "1");
		r = serve(&f, EAS_CMD_SYNC, d);
		c = wbxml_find(r, "Collections/Collection");
		assert_string_equal(txt(c, "Status"), "1");
		assert_null(wbxml_find(c, "Responses"));
		assert_null(wbxml_find(c, "Commands"));
		snprintf(key, sizeof(key), "%s", txt(c, "SyncKey"));
		/* Restart: the new instance learns the read flag from the state. */
		fx_restart(&f);
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		c = wbxml_find(r, "Collections/Collection");
		assert_string_equal(txt(c, "Status"), "1");
		assert_null(wbxml_find(c, "Commands"));
		/* ItemOperations sees the read flag too (the instance was restored by Sync). */
		struct mbx_email e;
		const char *err;
		assert_int_equal(mbx_fetch(f.mb, MBX_Q_INBOX_ID, sid, &e, &err), 1);
		assert_true(e.read);
		mbx_email_clear(&e);
		/* The client deletes it: not added back, in this answer or later ones. */
		snprintf(key, sizeof(key), "%s", txt(c, "SyncKey"));
		d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, false);
		c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		wbxml_addn_text(wbxml_addn(wbxml_addn(c, "Commands"), "Delete"), "ServerId", sid);
		/* No GetChanges element: changes are returned (MS-ASCMD default). */
		r = serve(&f, EAS_CMD_SYNC, d);
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		assert_null(wbxml_find(r, "Collections/Collection/Commands"));
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		fx_restart(&f);
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		assert_null(wbxml_find(r, "Collections/Collection/Commands"));
		/* A change of the deleted alert is refused: it is gone for the client. */
		d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, false);
		c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
		wbxml_addn_text(ch, "ServerId", sid);
		wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "0");
		r = serve(&f, EAS_CMD_SYNC, d);
		assert_string_equal(txt(r, "Collections/Collection/Responses/Change/Status"), "8");
		/* The alert says something new (the device left Discovery): a new message. */
		f.facts.state = "Discovery";
		fx_restart(&f);
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_non_null(strstr(txt(r, "Collections/Collection/Commands/Add/ApplicationData/"
		                              "Email:Subject"),
		                       "Checking"));
		assert_string_not_equal(txt(r, "Collections/Collection/Commands/Add/ServerId"),
		                        sid);
		assert_null(wbxml_find(r, "Collections/Collection/Commands/Delete"));
		/* Unknown keys. */
		r = serve(&f, EAS_CMD_SYNC,
		          req_sync("abq-999-00000000", MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "3");
		assert_string_equal(txt(r, "Collections/Collection/SyncKey"), "0");
		r = serve(&f, EAS_CMD_SYNC, req_sync("{uuid}12", MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "3");
		r = serve(&f, EAS_CMD_SYNC, req_sync("0", "upstream-folder", 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "12");
		/* An empty Sync repeats the last request. */
		r = serve(&f, EAS_CMD_SYNC, NULL);
		assert_string_equal(txt(r, "Collections/Collection/CollectionId"),
		                    "upstream-folder");
		assert_string_equal(txt(r, "Collections/Collection/Status"), "12");
		fx_done(&f);
	}
}

/* GetItemEstimate: 1 before the alert is synced, 0 after. */
static void
test_getitemestimate(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate(key, MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Response/Status"), "1");
		assert_string_equal(txt(r, "Response/Collection/Estimate"), "1");
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		r = serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate(key, MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Response/Collection/Estimate"), "0");
		r = serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate("0", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Response/Status"), "3");
		r = serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate("bogus", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Response/Status"), "4");
		r = serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate(key, "nope"));
		assert_string_equal(txt(r, "Response/Status"), "2");
		fx_done(&f);
	}
}

/* Ping: changes pending -> 2; synced -> HOLD then 1; out of range -> 5; unknown folder -> 7. */
static void
test_ping(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		struct wbxml_node *r = serve(&f, EAS_CMD_PING, req_ping("480", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Status"), "2");
		assert_string_equal(txt(r, "Folders/Folder"), MBX_Q_INBOX_ID);
		assert_int_equal(f.out.hold_seconds, 0);
		serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		r = serve(&f, EAS_CMD_PING, req_ping("480", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Status"), "1");
		assert_int_equal(f.out.hold_seconds, 480);
		/* Held: the folders it waits on, for push. */
		assert_int_equal(f.out.n_watch, 1);
		assert_string_equal(f.out.watch[0], MBX_Q_INBOX_ID);
		/* An empty Ping repeats the stored parameters. */
		r = serve(&f, EAS_CMD_PING, NULL);
		assert_string_equal(txt(r, "Status"), "1");
		assert_int_equal(f.out.hold_seconds, 480);
		assert_int_equal(f.out.n_watch, 1);
		assert_string_equal(f.out.watch[0], MBX_Q_INBOX_ID);
		r = serve(&f, EAS_CMD_PING, req_ping("10", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Status"), "5");
		assert_string_equal(txt(r, "HeartbeatInterval"), "60");
		assert_int_equal(f.out.hold_seconds, 0);
		r = serve(&f, EAS_CMD_PING, req_ping("3600", MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Status"), "5");
		assert_string_equal(txt(r, "HeartbeatInterval"), "1800");
		r = serve(&f, EAS_CMD_PING, req_ping("480", "upstream-inbox"));
		assert_string_equal(txt(r, "Status"), "7");
		fx_done(&f);
		/* No parameters ever given. */
		fx_init(&f, versions[v]);
		r = serve(&f, EAS_CMD_PING, NULL);
		assert_string_equal(txt(r, "Status"), "3");
		fx_done(&f);
	}
}

/* A backend whose folders cannot be listed now (its server is down or busy). */
static int
down_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                  const char **errstr_r)
{
	(void)b;
	*folders_r = NULL;
	*n_r = 0;
	*errstr_r = "no connection to the mail server";
	return -1;
}

static const struct mbx_ops down_ops = {
    .name = "down",
    .list_folders = down_list_folders,
    .list_items = cb_list_items,
    .fetch = cb_fetch,
    .set_read = cb_set_read,
    .destroy = pb_destroy,
};

/* Serve cmd over f's mailbox as down_ops sees it: the HTTP status of the answer. */
static int
serve_down(struct fx *f, enum eas_cmd cmd, struct wbxml_doc *req)
{
	uint8_t *body = NULL;
	size_t len = 0;

	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	mbx_serve_out_clear(&f->out);
	struct pb down = {.base = {&down_ops}, .inner = f->mb};
	struct mbx_serve_in in = {
	    .cmd = cmd,
	    .version = f->version,
	    .body = body,
	    .body_len = len,
	    .account = f->facts.account,
	    .device_id = f->facts.device_id,
	    .backend = &down.base,
	    .state = {&f->mem, mem_get, mem_put, mem_del, f->mem.cid_on ? mem_client_id : NULL},
	    .now = 1700000100,
	    .heartbeat_min = 60,
	    .heartbeat_max = 1800,
	};
	assert_int_equal(mbx_serve(&in, &f->out), 0);
	free(body);
	return f->out.http_status;
}

/*
 * Folders that cannot be listed now are a server failure (HTTP 500: the
 * daemon answers 503 and Retry-After), never "no such folder": Ping Status 7
 * and Sync Status 12 would send every phone of a busy server to FolderSync.
 */
static void
test_folders_down(void **state)
{
	struct fx f;
	char key[80];

	fx_init(&f, "14.1");
	prime(&f, key);
	assert_int_equal(serve_down(&f, EAS_CMD_PING, req_ping("480", MBX_Q_INBOX_ID)), 500);
	assert_int_equal(f.out.hold_seconds, 0);
	assert_int_equal(serve_down(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true)),
	                 500);
	assert_int_equal(serve_down(&f, EAS_CMD_GETITEMESTIMATE, req_estimate(key, MBX_Q_INBOX_ID)),
	                 500);
	/* Up again: the same requests are answered as before. */
	struct wbxml_node *r = serve(&f, EAS_CMD_PING, req_ping("480", MBX_Q_INBOX_ID));
	assert_string_equal(txt(r, "Status"), "2");
	fx_done(&f);
}

/* Provision: phase 1 (temporary key, a policy imposing nothing), phase 2 (final key). */
static void
test_provision(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char temp[32];
		fx_init(&f, versions[v]);
		struct wbxml_doc *d = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(d, "Provision:Provision");
		if (strcmp(versions[v], "14.1") >= 0) {
			struct wbxml_node *s = wbxml_addn(
			    wbxml_addn(root, "Settings:DeviceInformation"), "Settings:Set");
			wbxml_addn_text(s, "Settings:Model", "iPhone15,3");
		}
		wbxml_addn_text(wbxml_addn(wbxml_addn(root, "Policies"), "Policy"), "PolicyType",
		                "MS-EAS-Provisioning-WBXML");
		struct wbxml_node *r = serve(&f, EAS_CMD_PROVISION, d);
		assert_string_equal(txt(r, "Status"), "1");
		assert_string_equal(txt(r, "Policies/Policy/Status"), "1");
		assert_string_equal(
		    txt(r, "Policies/Policy/Data/EASProvisionDoc/DevicePasswordEnabled"), "0");
		snprintf(temp, sizeof(temp), "%s", txt(r, "Policies/Policy/PolicyKey"));
		assert_string_not_equal(temp, "0");
		if (strcmp(versions[v], "14.1") >= 0) {
			assert_string_equal(txt(r, "Settings:DeviceInformation/Settings:Status"),
			                    "1");
			assert_true(f.out.devinfo_seen);
		} else {
			assert_null(wbxml_find(r, "Settings:DeviceInformation"));
		}
		d = wbxml_doc_new();
		struct wbxml_node *p = wbxml_addn(
		    wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"), "Policy");
		wbxml_addn_text(p, "PolicyType", "MS-EAS-Provisioning-WBXML");
		wbxml_addn_text(p, "PolicyKey", temp);
		wbxml_addn_text(p, "Status", "1");
		r = serve(&f, EAS_CMD_PROVISION, d);
		assert_string_equal(txt(r, "Status"), "1");
		assert_string_equal(txt(r, "Policies/Policy/Status"), "1");
		assert_string_not_equal(txt(r, "Policies/Policy/PolicyKey"), temp);
		assert_null(wbxml_find(r, "Policies/Policy/Data"));
		fx_done(&f);
	}
}

/* A Provision phase 2 acknowledging key with Policy Status status (NULL: none). */
static struct wbxml_doc *
req_provision_ack(const char *key, const char *status, const char *type)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *p =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"), "Policy");
	wbxml_addn_text(p, "PolicyType", type);
	wbxml_addn_text(p, "PolicyKey", key);
	if (status != NULL)
		wbxml_addn_text(p, "Status", status);
	return d;
}

/*
 * Provision phase 2: the Policy Status the device acknowledges with (1 to 4)
 * is reported in out->provision_status, and the device gets its final key
 * whatever it says (the gateway decides what follows); phase 1, a missing or
 * undefined Status and an unknown PolicyType report 0.
 */
static void
test_provision_status(void **state)
{
	static const struct {
		const char *status, *type;
		int want;
	} cases[] = {
	    {"1", "MS-EAS-Provisioning-WBXML", 1},  {"2", "MS-EAS-Provisioning-WBXML", 2},
	    {"3", "MS-EAS-Provisioning-WBXML", 3},  {"4", "MS-EAS-Provisioning-WBXML", 4},
	    {NULL, "MS-EAS-Provisioning-WBXML", 0}, {"5", "MS-EAS-Provisioning-WBXML", 0},
	    {"22", "MS-EAS-Provisioning-WBXML", 0}, {"", "MS-EAS-Provisioning-WBXML", 0},
	    {"2", "MS-WAP-Provisioning-XML", 0},
	};
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct fx f;
			fx_init(&f, versions[v]);
			struct wbxml_node *r =
			    serve(&f, EAS_CMD_PROVISION,
			          req_provision_ack("123", cases[i].status, cases[i].type));
			assert_string_equal(txt(r, "Status"), "1");
			if (f.out.provision_status != cases[i].want)
				fail_msg("%s, Status '%s': reported %d", versions[v],
				         cases[i].status ? cases[i].status : "(none)",
				         f.out.provision_status);
			if (cases[i].want > 1)
				assert_non_null(txt(r, "Policies/Policy/PolicyKey"));
			fx_done(&f);
		}
		/* Phase 1 reports nothing. */
		struct fx f;
		fx_init(&f, versions[v]);
		struct wbxml_doc *d = wbxml_doc_new();
		wbxml_addn_text(
		    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"),
		               "Policy"),
		    "PolicyType", "MS-EAS-Provisioning-WBXML");
		serve(&f, EAS_CMD_PROVISION, d);
		assert_int_equal(f.out.provision_status, 0);
		fx_done(&f);
	}
}

/*
 * Settings: DeviceInformation Set 1, UserInformation Get the address, Oof Get
 * and Set denied by policy (7), RightsManagementInformation Get: no templates.
 */
static void
test_settings(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		fx_init(&f, versions[v]);
		struct wbxml_doc *d = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(d, "Settings:Settings");
		wbxml_addn_text(wbxml_addn(wbxml_addn(root, "DeviceInformation"), "Set"), "Model",
		                "X");
		wbxml_addn(wbxml_addn(root, "UserInformation"), "Get");
		wbxml_addn_text(wbxml_addn(wbxml_addn(root, "Oof"), "Get"), "BodyType", "Text");
		wbxml_addn_text(wbxml_addn(wbxml_addn(root, "Oof"), "Set"), "OofState", "1");
		wbxml_addn(wbxml_addn(root, "RightsManagementInformation"), "Get");
		struct wbxml_node *r = serve(&f, EAS_CMD_SETTINGS, d);
		assert_string_equal(txt(r, "Status"), "1");
		assert_string_equal(txt(r, "DeviceInformation/Status"), "1");
		assert_string_equal(txt(r, "UserInformation/Status"), "1");
		if (strcmp(versions[v], "14.1") >= 0)
			assert_string_equal(txt(r, "UserInformation/Get/Accounts/Account/"
			                           "EmailAddresses/PrimarySmtpAddress"),
			                    "alice@example.com");
		else
			assert_string_equal(
			    txt(r, "UserInformation/Get/EmailAddresses/SmtpAddress"),
			    "alice@example.com");
		struct wbxml_node *oof = wbxml_find(r, "Oof");
		assert_string_equal(txt(oof, "Status"), "7");
		assert_null(wbxml_find(oof, "Get"));
		assert_non_null(oof->next);
		assert_string_equal(txt(oof->next, "Status"), "7");
		assert_string_equal(txt(r, "RightsManagementInformation/Status"), "1");
		assert_non_null(wbxml_find(r, "RightsManagementInformation/Get/"
		                              "RightsManagement:RightsManagementTemplates"));
		assert_null(wbxml_find(r, "RightsManagementInformation/Get/"
		                          "RightsManagement:RightsManagementTemplates/"
		                          "RightsManagement:RightsManagementTemplate"));
		assert_true(f.out.devinfo_seen);
		fx_done(&f);
	}
}

/* ItemOperations Fetch of the alert by ServerId; anything else fails with 6. */
static void
test_itemoperations(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		snprintf(sid, sizeof(sid), "%s",
		         txt(r, "Collections/Collection/Commands/Add/ServerId"));
		struct wbxml_doc *d = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(d, "ItemOperations:ItemOperations");
		struct wbxml_node *fe = wbxml_addn(root, "Fetch");
		wbxml_addn_text(fe, "Store", "Mailbox");
		wbxml_addn_text(fe, "AirSync:CollectionId", MBX_Q_INBOX_ID);
		wbxml_addn_text(fe, "AirSync:ServerId", sid);
		wbxml_addn_text(wbxml_addn(wbxml_addn(fe, "Options"), "AirSyncBase:BodyPreference"),
		                "AirSyncBase:Type", "2");
		fe = wbxml_addn(root, "Fetch");
		wbxml_addn_text(fe, "Store", "Mailbox");
		wbxml_addn_text(fe, "AirSync:ServerId", "nothing");
		r = serve(&f, EAS_CMD_ITEMOPERATIONS, d);
		assert_string_equal(txt(r, "Status"), "1");
		struct wbxml_node *f1 = wbxml_find(r, "Response/Fetch");
		assert_string_equal(txt(f1, "Status"), "1");
		assert_string_equal(txt(f1, "AirSync:ServerId"), sid);
		assert_string_equal(txt(f1, "Properties/AirSyncBase:Body/Type"), "2");
		assert_non_null(
		    strstr(txt(f1, "Properties/Email:Subject"), "has been put in quarantine"));
		assert_string_equal(txt(f1->next, "Status"), "6");
		fx_done(&f);
	}
}

/* Every other command answers with its own failure status. */
static void
test_other_commands(void **state)
{
	static const struct {
		enum eas_cmd cmd;
		const char *root;   /* request root, NULL: no body */
		const char *path;   /* where the status is */
		const char *status; /* NULL: HTTP error */
		int http_before_14; /* HTTP status below 14.0 (0: the same as 14.0+) */
	} cases[] = {
	    {EAS_CMD_SENDMAIL, "ComposeMail:SendMail", "Status", "111", 503},
	    {EAS_CMD_SMARTREPLY, "ComposeMail:SmartReply", "Status", "111", 503},
	    {EAS_CMD_SMARTFORWARD, "ComposeMail:SmartForward", "Status", "111", 503},
	    {EAS_CMD_MOVEITEMS, "Move:MoveItems", "Response/Status", "1", 0},
	    {EAS_CMD_SEARCH, "Search:Search", "Response/Store/Status", "2", 0},
	    {EAS_CMD_FOLDERCREATE, "FolderHierarchy:FolderCreate", "Status", "6", 0},
	    {EAS_CMD_FOLDERUPDATE, "FolderHierarchy:FolderUpdate", "Status", "3", 0},
	    {EAS_CMD_FOLDERDELETE, "FolderHierarchy:FolderDelete", "Status", "3", 0},
	    {EAS_CMD_MEETINGRESPONSE, "MeetingResponse:MeetingResponse", "Result/Status", "3", 0},
	    {EAS_CMD_RESOLVERECIPIENTS, "ResolveRecipients:ResolveRecipients", "Response/Status",
	     "4", 0},
	    {EAS_CMD_VALIDATECERT, "ValidateCert:ValidateCert", "Status", "17", 0},
	    {EAS_CMD_GETATTACHMENT, NULL, NULL, NULL, 503},
	};
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct fx f;
			struct wbxml_doc *d = NULL;
			fx_init(&f, versions[v]);
			if (cases[i].root) {
				d = wbxml_doc_new();
				struct wbxml_node *r = wbxml_addn_root(d, cases[i].root);
				if (cases[i].cmd == EAS_CMD_MOVEITEMS)
					wbxml_addn_text(wbxml_addn(r, "Move"), "SrcMsgId", "x");
				else if (cases[i].cmd == EAS_CMD_MEETINGRESPONSE)
					wbxml_addn_text(wbxml_addn(r, "Request"), "RequestId", "x");
				else if (cases[i].cmd == EAS_CMD_FOLDERUPDATE ||
				         cases[i].cmd == EAS_CMD_FOLDERDELETE)
					wbxml_addn_text(r, "ServerId", MBX_Q_INBOX_ID);
				else
					wbxml_addn_text(
					    r,
					    cases[i].cmd == EAS_CMD_SEARCH              ? "Store"
					    : cases[i].cmd == EAS_CMD_VALIDATECERT      ? "CheckCRL"
					    : cases[i].cmd == EAS_CMD_RESOLVERECIPIENTS ? "To"
					    : cases[i].cmd == EAS_CMD_FOLDERCREATE ? "DisplayName"
					                                           : "ClientId",
					    "x");
			}
			struct wbxml_node *r = serve(&f, cases[i].cmd, d);
			bool old = strcmp(versions[v], "14.0") < 0;
			if (cases[i].status == NULL || (old && cases[i].http_before_14)) {
				assert_null(r);
				assert_int_equal(f.out.http_status, cases[i].http_before_14);
				/* Retry later, in HTTP: never a bare 500 or 403. */
				assert_string_equal(hdr(&f, "Retry-After"), "3600");
			} else {
				assert_non_null(r);
				assert_string_equal(txt(r, cases[i].path), cases[i].status);
			}
			fx_done(&f);
		}
	}
	/* Find at 16.1; OPTIONS is not served here. */
	struct fx f;
	fx_init(&f, "16.1");
	struct wbxml_node *r = serve(&f, EAS_CMD_FIND, NULL);
	assert_string_equal(txt(r, "Status"), "110");
	fx_done(&f);
	fx_init(&f, "14.1");
	assert_null(serve(&f, EAS_CMD_FIND, NULL));
	assert_int_equal(f.out.http_status, 501); /* not this version's: not "forbidden" */
	assert_null(serve(&f, EAS_CMD_NONE, NULL));
	assert_int_equal(f.out.http_status, 400);
	/* Garbage bodies are a 400. */
	f.out.http_status = 0;
	fx_done(&f);
}

/* The start-over answers and the key helpers the daemon uses. */
static void
test_start_over(void **state)
{
	struct mbx_serve_out out;
	struct wbxml_doc *doc = NULL, *req;
	uint8_t *body;
	size_t len;
	char *keys[4];

	assert_true(mbx_key_is_ours("abq-1-0badc0de"));
	assert_false(mbx_key_is_ours("0"));
	assert_false(mbx_key_is_ours("{1234}5"));
	assert_false(mbx_key_is_ours(NULL));

	assert_int_equal(mbx_start_over_body(EAS_CMD_FOLDERSYNC, "14.1", NULL, 0, &out), 0);
	assert_int_equal(wbxml_decode(out.body, out.body_len, NULL, &doc, NULL), WBXML_OK);
	assert_string_equal(wbxml_find_text(wbxml_doc_root(doc), "Status"), "9");
	wbxml_doc_free(&doc);
	mbx_serve_out_clear(&out);

	assert_int_equal(mbx_start_over_body(EAS_CMD_PING, "16.1", NULL, 0, &out), 0);
	assert_int_equal(wbxml_decode(out.body, out.body_len, NULL, &doc, NULL), WBXML_OK);
	assert_string_equal(wbxml_find_text(wbxml_doc_root(doc), "Status"), "7");
	wbxml_doc_free(&doc);
	mbx_serve_out_clear(&out);

	req = req_sync("abq-3-12345678", MBX_Q_INBOX_ID, 1, 0, 0, true);
	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	assert_int_equal(mbx_request_sync_keys(EAS_CMD_SYNC, body, len, keys, 4), 1);
	assert_string_equal(keys[0], "abq-3-12345678");
	free(keys[0]);
	assert_int_equal(mbx_request_has_key(EAS_CMD_SYNC, body, len), 1);
	assert_int_equal(mbx_start_over_body(EAS_CMD_SYNC, "14.1", body, len, &out), 0);
	assert_int_equal(wbxml_decode(out.body, out.body_len, NULL, &doc, NULL), WBXML_OK);
	struct wbxml_node *c = wbxml_find(wbxml_doc_root(doc), "Collections/Collection");
	assert_string_equal(wbxml_find_text(c, "Status"), "3");
	assert_string_equal(wbxml_find_text(c, "SyncKey"), "0");
	assert_string_equal(wbxml_find_text(c, "CollectionId"), MBX_Q_INBOX_ID);
	wbxml_doc_free(&doc);
	mbx_serve_out_clear(&out);
	free(body);

	req = req_foldersync("1234");
	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	assert_int_equal(mbx_request_has_key(EAS_CMD_FOLDERSYNC, body, len), 0);
	free(body);
	req = req_ping("480", MBX_Q_INBOX_ID);
	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	assert_int_equal(mbx_request_has_key(EAS_CMD_PING, body, len), 1);
	free(body);
	assert_int_equal(mbx_request_has_key(EAS_CMD_SYNC, (const uint8_t *)"xx", 2), -1);
	assert_int_equal(mbx_start_over_body(EAS_CMD_SETTINGS, "14.1", NULL, 0, &out), -1);

	const char *ids[] = {MBX_Q_INBOX_ID};
	assert_int_equal(mbx_ping_changed_body(ids, 1, &out), 0);
	assert_int_equal(wbxml_decode(out.body, out.body_len, NULL, &doc, NULL), WBXML_OK);
	assert_string_equal(wbxml_find_text(wbxml_doc_root(doc), "Status"), "2");
	wbxml_doc_free(&doc);
	mbx_serve_out_clear(&out);
}

/* The Discovery text, templates with escapes, and a stable alert id. */
static void
test_templates(void **state)
{
	struct notice_facts facts = {.account = "a&b", .device_id = "d1", .state = "Discovery"};
	char *s = notice_render_template("{account} {{x} {nope} {model}", &facts, true);
	assert_string_equal(s, "a&amp;b {x} {nope} unknown");
	free(s);
	/* What a phone reported reaches a mail or an alert with its controls shown. */
	facts.model = "Ph\x1b[2Jone\r\n.\r\nX\xc2\x9b<b>";
	s = notice_render_template("{model}", &facts, false);
	assert_string_equal(s, "Ph\\x1b[2Jone\\x0d\\x0a.\\x0d\\x0aX\\xc2\\x9b<b>");
	free(s);
	s = notice_render_template("{model}", &facts, true);
	assert_string_equal(s, "Ph\\x1b[2Jone\\x0d\\x0a.\\x0d\\x0aX\\xc2\\x9b&lt;b&gt;");
	free(s);
	facts.model = NULL;
	struct mbx_backend *a = mbx_quarantine_new(NULL, &facts);
	facts.device_id = "D1";
	struct mbx_backend *b = mbx_quarantine_new(NULL, &facts);
	struct mbx_item_ref *ia, *ib;
	size_t na, nb;
	const char *err;
	assert_int_equal(mbx_list_items(a, MBX_Q_INBOX_ID, &ia, &na, &err), 0);
	assert_int_equal(mbx_list_items(b, MBX_Q_INBOX_ID, &ib, &nb, &err), 0);
	assert_int_equal(na, 1);
	assert_string_equal(ia[0].id, ib[0].id);
	struct mbx_email e;
	assert_int_equal(mbx_fetch(a, MBX_Q_INBOX_ID, ia[0].id, &e, &err), 1);
	assert_string_equal(e.subject, "Checking your device");
	mbx_email_clear(&e);
	free(ia);
	free(ib);
	assert_int_equal(mbx_list_items(a, "abq-drafts", &ib, &nb, &err), 0);
	assert_int_equal(nb, 0);
	assert_null(ib);
	assert_int_equal(mbx_list_items(a, "nope", &ib, &nb, &err), -1);
	mbx_destroy(&a);
	mbx_destroy(&b);
}

/* ---- issue: the command layer as Exchange answers ---- */

/* A Sync of the Inbox with the current key and the given top-level hold elements. */
static struct wbxml_doc *
req_sync_hold(const char *key, const char *wait, const char *hb)
{
	struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true);
	struct wbxml_node *r = wbxml_doc_root(d);
	if (wait)
		wbxml_addn_text(r, "Wait", wait);
	if (hb)
		wbxml_addn_text(r, "HeartbeatInterval", hb);
	return d;
}

/* Prime and fetch the alert; returns its id in sid and the key after it in key. */
static void
prime_alert(struct fx *f, char key[80], char sid[80])
{
	prime(f, key);
	struct wbxml_node *r = serve(f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
	snprintf(sid, 80, "%s", txt(r, "Collections/Collection/Commands/Add/ServerId"));
	snprintf(key, 80, "%s", txt(r, "Collections/Collection/SyncKey"));
}

/*
 * A Sync with Wait (or HeartbeatInterval from 14.0) and nothing to say is
 * held, then answered with an empty 200, the key unchanged; out of range:
 * 14 and the Limit; both: 4; something pending: answered at once.
 */
static void
test_sync_wait(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		prime(&f, key);
		/* The alert is pending: answered at once, with it. */
		struct wbxml_node *r = serve(&f, EAS_CMD_SYNC, req_sync_hold(key, "1", NULL));
		assert_int_equal(f.out.hold_seconds, 0);
		snprintf(sid, sizeof(sid), "%s",
		         txt(r, "Collections/Collection/Commands/Add/ServerId"));
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		/* Nothing pending: held for Wait minutes; the held answer has no body. */
		r = serve(&f, EAS_CMD_SYNC, req_sync_hold(key, "1", NULL));
		assert_null(r);
		assert_int_equal(f.out.http_status, 200);
		assert_null(f.out.body);
		assert_int_equal(f.out.hold_seconds, 60);
		/* What it waits on, for push. */
		assert_int_equal(f.out.n_watch, 1);
		assert_string_equal(f.out.watch[0], MBX_Q_INBOX_ID);
		if (strcmp(versions[v], "14.0") >= 0) {
			r = serve(&f, EAS_CMD_SYNC, req_sync_hold(key, NULL, "300"));
			assert_null(r);
			assert_int_equal(f.out.hold_seconds, 300);
		}
		/* The key did not move: a plain Sync with it still works, nothing new. */
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		assert_string_equal(txt(r, "Collections/Collection/SyncKey"), key);
		assert_null(wbxml_find(r, "Collections/Collection/Commands"));
		assert_int_equal(f.out.hold_seconds, 0);
		/* Out of range (the fixture allows 60..1800 s): 14 and the bound. */
		static const struct {
			const char *wait, *hb, *limit;
		} bad[] = {{"0", NULL, "1"},
		           {"31", NULL, "30"},
		           {"x", NULL, "1"},
		           {NULL, "59", "60"},
		           {NULL, "1801", "1800"}};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			r = serve(&f, EAS_CMD_SYNC, req_sync_hold(key, bad[i].wait, bad[i].hb));
			assert_string_equal(txt(r, "Status"), "14");
			assert_string_equal(txt(r, "Limit"), bad[i].limit);
			assert_int_equal(f.out.hold_seconds, 0);
		}
		r = serve(&f, EAS_CMD_SYNC, req_sync_hold(key, "5", "300"));
		assert_string_equal(txt(r, "Status"), "4");
		/* A client change is answered at once, even with Wait. */
		struct wbxml_doc *d = req_sync_hold(key, "5", NULL);
		struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		struct wbxml_node *ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
		wbxml_addn_text(ch, "ServerId", sid);
		wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "1");
		r = serve(&f, EAS_CMD_SYNC, d);
		assert_non_null(r);
		assert_int_equal(f.out.hold_seconds, 0);
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		fx_done(&f);
	}
}

/*
 * A request repeated with the key it was sent with (its answer was lost)
 * gets that answer again, with the key it was given, not Status 3; the
 * newer key then goes on; a key older than that: 3.
 */
static void
test_sync_retried_key(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char k1[80], k2[80], sid[80];
		fx_init(&f, versions[v]);
		prime(&f, k1);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_SYNC, req_sync(k1, MBX_Q_INBOX_ID, 1, 0, 0, true));
		snprintf(k2, sizeof(k2), "%s", txt(r, "Collections/Collection/SyncKey"));
		snprintf(sid, sizeof(sid), "%s",
		         txt(r, "Collections/Collection/Commands/Add/ServerId"));
		assert_string_not_equal(k1, k2);
		/* The answer is lost; the phone sends the same request again, twice. */
		for (int i = 0; i < 2; i++) {
			fx_restart(&f);
			r = serve(&f, EAS_CMD_SYNC, req_sync(k1, MBX_Q_INBOX_ID, 1, 0, 0, true));
			assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
			assert_string_equal(txt(r, "Collections/Collection/SyncKey"), k2);
			assert_string_equal(txt(r, "Collections/Collection/Commands/Add/ServerId"),
			                    sid);
		}
		/* GetItemEstimate with the old key counts what that answer holds. */
		r = serve(&f, EAS_CMD_GETITEMESTIMATE, req_estimate(k1, MBX_Q_INBOX_ID));
		assert_string_equal(txt(r, "Response/Status"), "1");
		assert_string_equal(txt(r, "Response/Collection/Estimate"), "1");
		/* The new key goes on: nothing new, and it stays. */
		r = serve(&f, EAS_CMD_SYNC, req_sync(k2, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		assert_string_equal(txt(r, "Collections/Collection/SyncKey"), k2);
		assert_null(wbxml_find(r, "Collections/Collection/Commands"));
		/* A change moves the key on; its answer lost too: replayed, read flag kept. */
		struct wbxml_doc *d = req_sync(k2, MBX_Q_INBOX_ID, 0, 0, 0, true);
		struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		struct wbxml_node *ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
		wbxml_addn_text(ch, "ServerId", sid);
		wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "1");
		uint8_t *body;
		size_t len;
		assert_int_equal(wbxml_encode(d, &body, &len, NULL), WBXML_OK);
		char k3[80] = "";
		for (int i = 0; i < 2; i++) {
			struct wbxml_doc *again = NULL;
			assert_int_equal(wbxml_decode(body, len, NULL, &again, NULL), WBXML_OK);
			fx_restart(&f);
			r = serve(&f, EAS_CMD_SYNC, again);
			assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
			if (i == 0)
				snprintf(k3, sizeof(k3), "%s",
				         txt(r, "Collections/Collection/SyncKey"));
			assert_string_equal(txt(r, "Collections/Collection/SyncKey"), k3);
		}
		free(body);
		wbxml_doc_free(&d);
		assert_string_not_equal(k3, k2);
		/* k1 is now older than the previous key: start over. */
		r = serve(&f, EAS_CMD_SYNC, req_sync(k1, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "3");
		fx_done(&f);
	}
}

/* Partial Sync and the empty Sync: 13 with nothing cached, else the cached request. */
static void
test_sync_partial(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		struct wbxml_doc *d = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(d, "AirSync:Sync");
		wbxml_addn(root, "Partial");
		wbxml_addn_text(root, "Wait", "5");
		struct wbxml_node *r = serve(&f, EAS_CMD_SYNC, d);
		assert_string_equal(txt(r, "Status"), "13");
		r = serve(&f, EAS_CMD_SYNC, NULL);
		assert_string_equal(txt(r, "Status"), "13");
		prime_alert(&f, key, sid);
		/* Now the Inbox is cached: a Partial Sync with Wait alone holds it. */
		d = wbxml_doc_new();
		root = wbxml_addn_root(d, "AirSync:Sync");
		wbxml_addn(root, "Partial");
		wbxml_addn_text(root, "Wait", "2");
		r = serve(&f, EAS_CMD_SYNC, d);
		assert_null(r);
		assert_int_equal(f.out.http_status, 200);
		assert_int_equal(f.out.hold_seconds, 120);
		/* ... and an empty one repeats it (Wait included). */
		r = serve(&f, EAS_CMD_SYNC, NULL);
		assert_null(r);
		assert_int_equal(f.out.hold_seconds, 120);
		/* A Sync without Collections or anything else: protocol error. */
		d = wbxml_doc_new();
		wbxml_addn_root(d, "AirSync:Sync");
		r = serve(&f, EAS_CMD_SYNC, d);
		assert_string_equal(txt(r, "Status"), "4");
		fx_done(&f);
	}
}

/*
 * Permanent refusals: a client Add gets 6 (not 5, retried forever); the
 * alert moved to Deleted Items is moved (3) and not added back to the
 * Inbox; unknown source 1, destination 2, same folder 4; EmptyFolderContents
 * of Deleted Items: 1 with its CollectionId.
 */
static void
test_permanent_refusals(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		prime_alert(&f, key, sid);
		/* A draft saved from the phone. */
		struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, true);
		struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		struct wbxml_node *a = wbxml_addn(wbxml_addn(c, "Commands"), "Add");
		wbxml_addn_text(a, "ClientId", "draft-1");
		wbxml_addn_text(wbxml_addn(a, "ApplicationData"), "Email:Subject", "draft");
		struct wbxml_node *r = serve(&f, EAS_CMD_SYNC, d);
		assert_string_equal(txt(r, "Collections/Collection/Responses/Add/ClientId"),
		                    "draft-1");
		assert_string_equal(txt(r, "Collections/Collection/Responses/Add/Status"), "6");
		snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
		/* The Deleted Items folder is synced too. */
		r = serve(&f, EAS_CMD_SYNC, req_sync("0", "abq-deleted", 0, 0, 0, false));
		char dkey[80];
		snprintf(dkey, sizeof(dkey), "%s", txt(r, "Collections/Collection/SyncKey"));
		/* MoveItems. */
		d = wbxml_doc_new();
		struct wbxml_node *root = wbxml_addn_root(d, "Move:MoveItems");
		static const char *const moves[][3] = {
		    {NULL, MBX_Q_INBOX_ID, "abq-deleted"}, /* the alert: 3 */
		    {"nope", MBX_Q_INBOX_ID, "abq-deleted"},
		    {NULL, MBX_Q_INBOX_ID, "elsewhere"},
		    {NULL, MBX_Q_INBOX_ID, MBX_Q_INBOX_ID},
		    {NULL, "upstream-inbox", "abq-deleted"},
		};
		for (size_t i = 0; i < 5; i++) {
			struct wbxml_node *m = wbxml_addn(root, "Move");
			wbxml_addn_text(m, "SrcMsgId", moves[i][0] ? moves[i][0] : sid);
			wbxml_addn_text(m, "SrcFldId", moves[i][1]);
			wbxml_addn_text(m, "DstFldId", moves[i][2]);
		}
		r = serve(&f, EAS_CMD_MOVEITEMS, d);
		static const char *const want[] = {"3", "1", "2", "4", "1"};
		size_t i = 0;
		for (struct wbxml_node *x = r->first_child; x; x = x->next, i++)
			assert_string_equal(txt(x, "Status"), want[i]);
		assert_int_equal(i, 5);
		assert_string_equal(txt(r->first_child, "DstMsgId"), sid);
		/* The Inbox does not add it back; Deleted Items drops it at its next Sync. */
		fx_restart(&f);
		r = serve(&f, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
		assert_null(wbxml_find(r, "Collections/Collection/Commands"));
		r = serve(&f, EAS_CMD_SYNC, req_sync(dkey, "abq-deleted", 1, 0, 0, true));
		assert_string_equal(txt(r, "Collections/Collection/Commands/Delete/ServerId"), sid);
		/* The same Move again (a retry): still done. */
		d = wbxml_doc_new();
		struct wbxml_node *m = wbxml_addn(wbxml_addn_root(d, "Move:MoveItems"), "Move");
		wbxml_addn_text(m, "SrcMsgId", sid);
		wbxml_addn_text(m, "SrcFldId", MBX_Q_INBOX_ID);
		wbxml_addn_text(m, "DstFldId", "abq-deleted");
		r = serve(&f, EAS_CMD_MOVEITEMS, d);
		assert_string_equal(txt(r, "Response/Status"), "3");
		/* EmptyFolderContents of the (empty) Deleted Items, and of an unknown folder. */
		d = wbxml_doc_new();
		root = wbxml_addn_root(d, "ItemOperations:ItemOperations");
		wbxml_addn_text(wbxml_addn(root, "EmptyFolderContents"), "AirSync:CollectionId",
		                "abq-deleted");
		wbxml_addn_text(wbxml_addn(root, "EmptyFolderContents"), "AirSync:CollectionId",
		                "upstream-trash");
		r = serve(&f, EAS_CMD_ITEMOPERATIONS, d);
		struct wbxml_node *e = wbxml_find(r, "Response/EmptyFolderContents");
		assert_string_equal(txt(e, "Status"), "1");
		assert_string_equal(txt(e, "AirSync:CollectionId"), "abq-deleted");
		assert_string_equal(txt(e->next, "Status"), "6");
		fx_done(&f);
	}
}

/* ItemOperations Fetch shows the read flag the client set (and nothing it deleted). */
static void
test_fetch_read_flag(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		char key[80], sid[80];
		fx_init(&f, versions[v]);
		prime_alert(&f, key, sid);
		struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, true);
		struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		struct wbxml_node *ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
		wbxml_addn_text(ch, "ServerId", sid);
		wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "1");
		serve(&f, EAS_CMD_SYNC, d);
		for (int with_coll = 0; with_coll < 2; with_coll++) {
			fx_restart(&f); /* a new request: a new mailbox instance */
			d = wbxml_doc_new();
			struct wbxml_node *fe = wbxml_addn(
			    wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
			wbxml_addn_text(fe, "Store", "Mailbox");
			if (with_coll)
				wbxml_addn_text(fe, "AirSync:CollectionId", MBX_Q_INBOX_ID);
			wbxml_addn_text(fe, "AirSync:ServerId", sid);
			struct wbxml_node *r = serve(&f, EAS_CMD_ITEMOPERATIONS, d);
			assert_string_equal(txt(r, "Response/Fetch/Status"), "1");
			assert_string_equal(txt(r, "Response/Fetch/Properties/Email:Read"), "1");
		}
		fx_done(&f);
	}
}

/* Body Type 4 with MIMESupport 2: the alert as an RFC 5322 multipart/alternative message. */
static void
test_mime_body(void **state)
{
	for (size_t v = 0; v < NVERSIONS; v++) {
		for (int mime = 0; mime <= 2; mime++) {
			struct fx f;
			char key[80];
			fx_init(&f, versions[v]);
			prime(&f, key);
			struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, true);
			struct wbxml_node *c =
			    wbxml_find(wbxml_doc_root(d), "Collections/Collection");
			struct wbxml_node *o = wbxml_addn(c, "Options");
			char t[4];
			snprintf(t, sizeof(t), "%d", mime);
			wbxml_addn_text(o, "MIMESupport", t);
			wbxml_addn_text(wbxml_addn(o, "AirSyncBase:BodyPreference"), "Type", "4");
			struct wbxml_node *r = serve(&f, EAS_CMD_SYNC, d);
			struct wbxml_node *b =
			    wbxml_find(r, "Collections/Collection/Commands/Add/ApplicationData/"
			                  "AirSyncBase:Body");
			if (mime != 2) { /* no MIME asked for every message: plain text */
				assert_string_equal(txt(b, "Type"), "1");
				fx_done(&f);
				continue;
			}
			assert_string_equal(txt(b, "Type"), "4");
			const char *m = txt(b, "Data");
			assert_int_equal(strncmp(m, "MIME-Version: 1.0\r\n", 19), 0);
			assert_non_null(strstr(m, "Content-Type: multipart/alternative;"));
			assert_non_null(strstr(m, "Content-Type: text/plain; charset=UTF-8"));
			assert_non_null(strstr(m, "Content-Type: text/html; charset=UTF-8"));
			assert_non_null(strstr(m, "\r\nSubject: Your device"));
			assert_non_null(strstr(m, "\r\nFrom: IT <it@example.com>\r\n"));
			assert_non_null(strstr(m, "\r\nTo: alice@example.com\r\n"));
			char est[32];
			snprintf(est, sizeof(est), "%zu", strlen(m));
			assert_string_equal(txt(b, "EstimatedDataSize"), est);
			char *first = xstrdup(m);
			/* ItemOperations, truncated: the same message, cut, marked so. */
			const char *sid = txt(r, "Collections/Collection/Commands/Add/ServerId");
			d = wbxml_doc_new();
			struct wbxml_node *fe = wbxml_addn(
			    wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
			wbxml_addn_text(fe, "Store", "Mailbox");
			wbxml_addn_text(fe, "AirSync:CollectionId", MBX_Q_INBOX_ID);
			wbxml_addn_text(fe, "AirSync:ServerId", sid);
			o = wbxml_addn(fe, "Options");
			wbxml_addn_text(o, "AirSync:MIMESupport", "2");
			struct wbxml_node *bp = wbxml_addn(o, "AirSyncBase:BodyPreference");
			wbxml_addn_text(bp, "Type", "4");
			wbxml_addn_text(bp, "TruncationSize", "100");
			r = serve(&f, EAS_CMD_ITEMOPERATIONS, d);
			b = wbxml_find(r, "Response/Fetch/Properties/AirSyncBase:Body");
			assert_string_equal(txt(b, "Type"), "4");
			assert_string_equal(txt(b, "Truncated"), "1");
			assert_string_equal(txt(b, "EstimatedDataSize"), est);
			assert_int_equal(strlen(txt(b, "Data")), 100);
			assert_int_equal(strncmp(txt(b, "Data"), first, 100), 0);
			free(first);
			fx_done(&f);
		}
	}
}

/* Provision at 12.0 sends only the 12.0 elements; 12.1 and later the rest too. */
static void
test_provision_versions(void **state)
{
	static const char *const vs[] = {"12.0", "12.1", "14.1", "16.1"};
	for (size_t v = 0; v < 4; v++) {
		struct fx f;
		fx_init(&f, vs[v]);
		struct wbxml_doc *d = wbxml_doc_new();
		wbxml_addn_text(
		    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"),
		               "Policy"),
		    "PolicyType", "MS-EAS-Provisioning-WBXML");
		struct wbxml_node *r = serve(&f, EAS_CMD_PROVISION, d);
		struct wbxml_node *doc = wbxml_find(r, "Policies/Policy/Data/EASProvisionDoc");
		assert_non_null(doc);
		assert_string_equal(txt(doc, "DevicePasswordEnabled"), "0");
		assert_string_equal(txt(doc, "AttachmentsEnabled"), "1");
		bool old = v == 0;
		static const char *const v121[] = {"AllowStorageCard", "AllowCamera",
		                                   "RequireDeviceEncryption",
		                                   "RequireStorageCardEncryption", "AllowBrowser"};
		for (size_t i = 0; i < 5; i++) {
			if (old)
				assert_null(wbxml_find(doc, v121[i]));
			else
				assert_non_null(wbxml_find(doc, v121[i]));
		}
		fx_done(&f);
	}
}

/* A Provision request holding only a wipe confirmation (element, its Status). */
static struct wbxml_doc *
req_wipe_ack(const char *element, const char *status)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *root = wbxml_addn_root(d, "Provision:Provision");
	if (element != NULL)
		wbxml_addn_text(wbxml_addn(root, element), "Status", status);
	return d;
}

/*
 * Remote wipe (MS-ASPROV 3.2.5.1.2): with a wipe pending, an empty Provision
 * (what a phone sends after Status 140 or HTTP 449) and a policy request get
 * the RemoteWipe directive; the confirmation (Status 1) is reported and
 * answered Status 1 alone; a failure gets Status 2 and the directive again.
 * The account-only wipe is said only at 16.1, and never as a full wipe.
 */
static void
test_provision_wipe(void **state)
{
	static const char *const vs[] = {"12.1", "14.0", "14.1", "16.0", "16.1"};
	for (size_t v = 0; v < 5; v++) {
		struct fx f;
		bool v161 = strcmp(vs[v], "16.1") == 0;
		fx_init(&f, vs[v]);
		/* No wipe asked: an empty Provision is a protocol error, a confirmation too. */
		struct wbxml_node *r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack(NULL, NULL));
		assert_string_equal(txt(r, "Status"), "2");
		assert_null(wbxml_find(r, "RemoteWipe"));
		r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack("RemoteWipe", "1"));
		assert_string_equal(txt(r, "Status"), "2");
		assert_int_equal(f.out.wipe_acked, 0);

		f.wipe = 1;
		r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack(NULL, NULL));
		assert_string_equal(txt(r, "Status"), "1");
		assert_non_null(wbxml_find(r, "RemoteWipe"));
		assert_null(wbxml_find(r, "RemoteWipe/Status"));
		assert_int_equal(f.out.wipe_acked, 0);
		/* A policy request gets its policy and the directive. */
		struct wbxml_doc *d = wbxml_doc_new();
		wbxml_addn_text(
		    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"),
		               "Policy"),
		    "PolicyType", "MS-EAS-Provisioning-WBXML");
		r = serve(&f, EAS_CMD_PROVISION, d);
		assert_string_equal(txt(r, "Status"), "1");
		assert_string_equal(txt(r, "Policies/Policy/Status"), "1");
		assert_non_null(wbxml_find(r, "RemoteWipe"));
		/* The device failed: Status 2 and the directive again, nothing recorded. */
		r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack("RemoteWipe", "2"));
		assert_string_equal(txt(r, "Status"), "2");
		assert_non_null(wbxml_find(r, "RemoteWipe"));
		assert_int_equal(f.out.wipe_acked, 0);
		/* Confirmed. */
		r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack("RemoteWipe", "1"));
		assert_string_equal(txt(r, "Status"), "1");
		assert_null(wbxml_find(r, "RemoteWipe"));
		assert_int_equal(f.out.wipe_acked, 1);

		/* Account only: AccountOnlyRemoteWipe at 16.1; below, no directive at all. */
		f.wipe = 2;
		r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack(NULL, NULL));
		assert_null(wbxml_find(r, "RemoteWipe"));
		if (v161) {
			assert_string_equal(txt(r, "Status"), "1");
			assert_non_null(wbxml_find(r, "AccountOnlyRemoteWipe"));
			/* A full-wipe confirmation does not confirm an account-only wipe. */
			r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack("RemoteWipe", "1"));
			assert_string_equal(txt(r, "Status"), "2");
			assert_int_equal(f.out.wipe_acked, 0);
			r = serve(&f, EAS_CMD_PROVISION,
			          req_wipe_ack("AccountOnlyRemoteWipe", "1"));
			assert_string_equal(txt(r, "Status"), "1");
			assert_int_equal(f.out.wipe_acked, 2);
		} else {
			assert_string_equal(txt(r, "Status"), "2");
			assert_null(wbxml_find(r, "AccountOnlyRemoteWipe"));
			r = serve(&f, EAS_CMD_PROVISION, req_wipe_ack("RemoteWipe", "1"));
			assert_string_equal(txt(r, "Status"), "2");
			assert_int_equal(f.out.wipe_acked, 0);
		}
		fx_done(&f);
	}
}

/* ---- a backend whose folders and items change, for the generic paths ---- */

struct tb {
	struct mbx_backend base;
	struct mbx_folder folders[4];
	size_t nfolders;
	char names[4][16];
	size_t nitems; /* items "m<i>" in the first folder, version ver */
	uint64_t ver;
};

static int
tb_list_folders(struct mbx_backend *b, const struct mbx_folder **f, size_t *n, const char **e)
{
	struct tb *t = (struct tb *)b;
	(void)e;
	*f = t->folders;
	*n = t->nfolders;
	return 0;
}

static int
tb_list_items(struct mbx_backend *b, const char *folder, struct mbx_item_ref **items, size_t *n,
              const char **e)
{
	struct tb *t = (struct tb *)b;
	(void)e;
	*items = NULL;
	*n = 0;
	if (strcmp(folder, t->folders[0].id) != 0)
		return 0;
	*items = xcalloc(t->nitems + 1, sizeof(**items));
	for (size_t i = 0; i < t->nitems; i++) {
		snprintf((*items)[i].id, sizeof((*items)[i].id), "m%zu", i);
		(*items)[i].version = t->ver;
	}
	*n = t->nitems;
	return 0;
}

static int
tb_fetch(struct mbx_backend *b, const char *folder, const char *id, struct mbx_email *out,
         const char **e)
{
	(void)b;
	(void)folder;
	(void)e;
	out->subject = xstrdup(id);
	out->from = xstrdup("a@example.com");
	out->to = xstrdup("b@example.com");
	out->body_plain = xstrdup("x");
	return 1;
}

static int
tb_set_read(struct mbx_backend *b, const char *folder, const char *id, bool read, const char **e)
{
	(void)b;
	(void)folder;
	(void)id;
	(void)read;
	(void)e;
	return 1;
}

static void
tb_destroy(struct mbx_backend *b)
{
	(void)b;
}

static const struct mbx_ops tb_ops = {
    .name = "test",
    .list_folders = tb_list_folders,
    .list_items = tb_list_items,
    .fetch = tb_fetch,
    .set_read = tb_set_read,
    .destroy = tb_destroy,
};

/*
 * FolderSync reports Adds, Updates and Deletes as the hierarchy changes, a
 * new key only then, and answers the previous key again; Sync's WindowSize 0
 * or over 512 means 512.
 */
static void
test_changing_backend(void **state)
{
	struct tb t = {.base = {&tb_ops}, .nfolders = 2, .nitems = 600, .ver = 1};
	struct fx f;
	char k1[80], k2[80];

	t.folders[0] = (struct mbx_folder){"f-inbox", "0", "Inbox", MBX_FOLDER_INBOX};
	t.folders[1] = (struct mbx_folder){"f-sent", "0", "Sent", MBX_FOLDER_SENT};
	fx_init(&f, "16.1");
	mbx_destroy(&f.mb);
	f.mb = &t.base;
	mbx_destroy(&f.mb2);
	f.mb2 = &t.base; /* read-only but for set_read, which it ignores: one for both */
	struct wbxml_node *r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync("0"));
	assert_string_equal(txt(r, "Changes/Count"), "2");
	snprintf(k1, sizeof(k1), "%s", txt(r, "SyncKey"));
	/* Sent renamed, a folder added, Inbox kept. */
	t.folders[1].name = "Sent Items";
	t.folders[2] = (struct mbx_folder){"f-work", "f-inbox", "Work", MBX_FOLDER_MAIL};
	t.nfolders = 3;
	r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync(k1));
	assert_string_equal(txt(r, "Status"), "1");
	assert_string_equal(txt(r, "Changes/Count"), "2");
	assert_string_equal(txt(r, "Changes/Update/ServerId"), "f-sent");
	assert_string_equal(txt(r, "Changes/Update/DisplayName"), "Sent Items");
	assert_string_equal(txt(r, "Changes/Add/ServerId"), "f-work");
	snprintf(k2, sizeof(k2), "%s", txt(r, "SyncKey"));
	assert_string_not_equal(k1, k2);
	/* The answer was lost: k1 again gets the same changes and k2. */
	r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync(k1));
	assert_string_equal(txt(r, "Status"), "1");
	assert_string_equal(txt(r, "Changes/Count"), "2");
	assert_string_equal(txt(r, "SyncKey"), k2);
	/* Work deleted. */
	t.nfolders = 2;
	r = serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync(k2));
	assert_string_equal(txt(r, "Changes/Count"), "1");
	assert_string_equal(txt(r, "Changes/Delete/ServerId"), "f-work");
	/* Sync: WindowSize 0 and 100000 mean 512. */
	r = serve(&f, EAS_CMD_SYNC, req_sync("0", "f-inbox", 0, 0, 0, false));
	snprintf(k1, sizeof(k1), "%s", txt(r, "Collections/Collection/SyncKey"));
	/* 512 fetches, each pending once, would rerun 512 times: served synchronously only. */
	f.mb2 = NULL;
	static const char *const ws[] = {"0", "100000"};
	for (int w = 0; w < 2; w++) {
		struct wbxml_doc *d = req_sync(k1, "f-inbox", 0, 0, 0, true);
		wbxml_addn_text(wbxml_find(wbxml_doc_root(d), "Collections/Collection"),
		                "WindowSize", ws[w]);
		r = serve(&f, EAS_CMD_SYNC, d);
		struct wbxml_node *c = wbxml_find(r, "Collections/Collection");
		assert_non_null(wbxml_find(c, "MoreAvailable"));
		size_t n = 0;
		for (struct wbxml_node *x = wbxml_find(c, "Commands")->first_child; x; x = x->next)
			n++;
		assert_int_equal(n, 512); /* the second round repeats k1: answered again */
	}
	f.mb = NULL; /* not the fixture's to destroy */
	f.mb2 = NULL;
	fx_done(&f);
}

/* ---- the command layer over pending backends and state (run.c) ---- */

/* The request in for f (body borrowed), served from backend b. */
static struct mbx_serve_in
fx_in(struct fx *f, enum eas_cmd cmd, const uint8_t *body, size_t len, struct mbx_backend *b)
{
	return (struct mbx_serve_in){
	    .cmd = cmd,
	    .version = f->version,
	    .body = body,
	    .body_len = len,
	    .account = f->facts.account,
	    .device_id = f->facts.device_id,
	    .backend = b,
	    .now = 1700000100,
	    .heartbeat_min = 60,
	    .heartbeat_max = 1800,
	};
}

/*
 * Through mbx_run, with every backend op and state read pending once, the
 * commands really are rerun, and each request still commits once, marks
 * the alert read with one set_read, and answers as the synchronous layer
 * does (serve() compares every answer and the stored state).
 */
static void
test_run_pending(void **state)
{
	struct fx f;
	char key[80], sid[80];

	fx_init(&f, "16.1");
	assert_non_null(serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync("0")));
	assert_true(f.runs > 1);
	assert_int_equal(f.commits, 1);
	prime_alert(&f, key, sid);
	assert_true(f.runs > 2); /* state read, folders, items, fetch */
	assert_int_equal(f.commits, 1);
	struct wbxml_doc *d = req_sync(key, MBX_Q_INBOX_ID, 0, 0, 0, true);
	struct wbxml_node *c = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
	struct wbxml_node *ch = wbxml_addn(wbxml_addn(c, "Commands"), "Change");
	wbxml_addn_text(ch, "ServerId", sid);
	wbxml_addn_text(wbxml_addn(ch, "ApplicationData"), "Email:Read", "1");
	struct wbxml_node *r = serve(&f, EAS_CMD_SYNC, d);
	assert_string_equal(txt(r, "Collections/Collection/Status"), "1");
	assert_int_equal(f.set_reads, 1);
	assert_int_equal(f.commits, 1);
	struct mbx_email e;
	const char *err;
	assert_int_equal(mbx_fetch(f.mb2, MBX_Q_INBOX_ID, sid, &e, &err), 1);
	assert_true(e.read); /* done on the mailbox once, not undone by a rerun */
	mbx_email_clear(&e);
	/*
	 * A run reads what it wrote: EmptyFolderContents, then a Fetch of the
	 * alert in the same request finds it gone (6), through mbx_run too.
	 */
	d = wbxml_doc_new();
	struct wbxml_node *root = wbxml_addn_root(d, "ItemOperations:ItemOperations");
	wbxml_addn_text(wbxml_addn(root, "EmptyFolderContents"), "AirSync:CollectionId",
	                MBX_Q_INBOX_ID);
	struct wbxml_node *fe = wbxml_addn(root, "Fetch");
	wbxml_addn_text(fe, "Store", "Mailbox");
	wbxml_addn_text(fe, "AirSync:CollectionId", MBX_Q_INBOX_ID);
	wbxml_addn_text(fe, "AirSync:ServerId", sid);
	r = serve(&f, EAS_CMD_ITEMOPERATIONS, d);
	assert_string_equal(txt(r, "Response/EmptyFolderContents/Status"), "1");
	assert_string_equal(txt(r, "Response/Fetch/Status"), "6");
	assert_int_equal(f.commits, 1);
	/* A repeated FolderSync writes nothing: no commit at all. */
	snprintf(key, sizeof(key), "%s",
	         txt(serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync("0")), "SyncKey"));
	serve(&f, EAS_CMD_FOLDERSYNC, req_foldersync(key));
	assert_int_equal(f.commits, 0);
	fx_done(&f);
}

/*
 * A commit that fails is HTTP 500 without a body and leaves the state as it
 * was; a request still pending at the cap on runs is HTTP 500 (a log line),
 * nothing committed; a synchronous backend and state answer before mbx_run
 * returns, as mbx_serve does.
 */
static void
test_run_failures(void **state)
{
	struct fx f;
	char key[80], sid[80];
	uint8_t *body;
	size_t len;
	struct answer ans;

	fx_init(&f, "14.1");
	prime_alert(&f, key, sid);
	struct wbxml_doc *req = req_sync(key, MBX_Q_INBOX_ID, 1, 0, 0, true);
	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	struct pb p = {.base = {&pb_ops}, .inner = f.mb2};
	struct mbx_serve_in in = fx_in(&f, EAS_CMD_SYNC, body, len, &p.base);
	struct as a = {.mem = &f.mem2, .fail_commit = true};
	drive(&in, &p, &a, 0, &ans);
	assert_int_equal(ans.rv, 0);
	assert_int_equal(ans.out.http_status, 500);
	assert_null(ans.out.body);
	assert_int_equal(a.commits, 1);
	assert_mem_equal(&f.mem, &f.mem2); /* the state before the request */
	mbx_serve_out_clear(&ans.out);

	/* The cap: two runs are not enough for a Sync. */
	a = (struct as){.mem = &f.mem2};
	p = (struct pb){.base = {&pb_ops}, .inner = f.mb2};
	drive(&in, &p, &a, 2, &ans);
	assert_int_equal(ans.out.http_status, 500);
	assert_null(ans.out.body);
	assert_int_equal(p.runs, 2);
	assert_int_equal(p.ends, 1);
	assert_int_equal(a.commits, 0);
	assert_mem_equal(&f.mem, &f.mem2);
	mbx_serve_out_clear(&ans.out);

	/* Synchronous: the answer before mbx_run returns, the synchronous one. */
	struct mbx_serve_out out;
	in.backend = f.mb;
	in.state = (struct mbx_state_accessor){&f.mem, mem_get, mem_put, mem_del, NULL};
	assert_int_equal(mbx_serve(&in, &out), 0);
	in.backend = f.mb2;
	in.state = (struct mbx_state_accessor){0};
	a = (struct as){.mem = &f.mem2, .sync = true};
	memset(&ans, 0, sizeof(ans));
	mbx_run(&in, &(struct mbx_async_state){&a, as_get, as_commit, NULL}, 0, run_done, &ans);
	assert_true(ans.called);
	assert_out_equal(&out, &ans.out);
	assert_int_equal(a.commits, 1);
	assert_mem_equal(&f.mem, &f.mem2);
	mbx_serve_out_clear(&out);
	mbx_serve_out_clear(&ans.out);
	free(body);
	fx_done(&f);
}

/* ---- served from the store (serve.c) ---- */

/*
 * One request of device_id answered from the store; NULL when the answer is
 * not a WBXML 200. The answer's tree stays in *doc (free it).
 */
static struct wbxml_node *
serve_stored(struct abq_store *s, const char *device_id, enum eas_cmd cmd, struct wbxml_doc *req,
             struct wbxml_doc **doc)
{
	uint8_t *body = NULL;
	size_t len = 0;
	struct mbx_serve_out out = {0};
	char *msg = NULL;

	assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	wbxml_doc_free(&req);
	const struct mbx_quarantine_req r = {
	    .account = "alice@example.com",
	    .device_id = device_id,
	    .cmd = cmd,
	    .version = "14.1",
	    .body = body,
	    .body_len = len,
	    .sender = "IT <it@example.com>",
	};
	int rv = mbx_quarantine_serve(s, "example.com", &r, &out, &msg);
	if (rv < 0)
		fail_msg("%s", msg);
	free(body);
	*doc = NULL;
	if (out.http_status == 200 && out.body != NULL)
		assert_int_equal(wbxml_decode(out.body, out.body_len, NULL, doc, NULL), WBXML_OK);
	mbx_serve_out_clear(&out);
	return *doc != NULL ? wbxml_doc_root(*doc) : NULL;
}

/* The alert device_id's phone sees: FolderSync, Sync 0, Sync; subject and plain body. */
static void
stored_alert(struct abq_store *s, const char *device_id, char **subject_r, char **plain_r)
{
	struct wbxml_doc *doc;
	char key[80];

	assert_non_null(serve_stored(s, device_id, EAS_CMD_FOLDERSYNC, req_foldersync("0"), &doc));
	wbxml_doc_free(&doc);
	struct wbxml_node *r = serve_stored(s, device_id, EAS_CMD_SYNC,
	                                    req_sync("0", MBX_Q_INBOX_ID, 0, 0, 0, false), &doc);
	snprintf(key, sizeof(key), "%s", txt(r, "Collections/Collection/SyncKey"));
	wbxml_doc_free(&doc);
	r = serve_stored(s, device_id, EAS_CMD_SYNC, req_sync(key, MBX_Q_INBOX_ID, 1, 0, 50, true),
	                 &doc);
	struct wbxml_node *ad =
	    wbxml_find(r, "Collections/Collection/Commands/Add/ApplicationData");
	assert_non_null(ad);
	*subject_r = xstrdup(txt(ad, "Email:Subject"));
	*plain_r = xstrdup(txt(ad, "AirSyncBase:Body/Data"));
	wbxml_doc_free(&doc);
}

/*
 * The quarantine mailbox served from the store: the alert of a quarantined
 * device takes the quarantine template an administrator stored, domain before
 * global and the phone's locale before its language, the texts it leaves out
 * staying the mailbox's own; Discovery keeps its text; what a command wrote
 * to the sync state is committed; a device the store does not know is refused.
 */
static void
test_served_from_store(void **state)
{
	char dir[] = "/tmp/abq-serve-XXXXXX", url[300], *subject, *plain;
	const char *err;
	struct abq_store *s;

	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "sqlite:%s/abq.db", dir);
	assert_non_null(s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err));
	struct abq_device d = {.account = "alice@example.com",
	                       .device_id = "SERVEDE",
	                       .model = "Pixel 9",
	                       .os_language = "de-DE",
	                       .state = ABQ_STATE_QUARANTINED,
	                       .reason = ABQ_REASON_MODE,
	                       .first_seen = 1700000000};
	assert_int_equal(abq_store_device_put(s, &d, &err), 0);

	/* Nothing stored: the mailbox's own text. */
	stored_alert(s, "SERVEDE", &subject, &plain);
	assert_string_equal(subject, "Your device Pixel 9 has been put in quarantine");
	assert_non_null(strstr(plain, "Your device has been put in quarantine."));
	free(subject);
	free(plain);
	/* The sync state the commands wrote is in the store. */
	void *blob = NULL;
	size_t len;
	assert_int_equal(abq_store_syncstate_get(s, "alice@example.com", "SERVEDE",
	                                         MBX_STATE_FOLDERSYNC, &blob, &len, NULL, &err),
	                 1);
	free(blob);

	/* A global template in the phone's language: its subject, the mailbox's body. */
	struct abq_template t = {.scope = ABQ_SCOPE_GLOBAL,
	                         .kind = "user-quarantined",
	                         .locale = "de",
	                         .subject = "global de {device_id}"};
	assert_int_equal(abq_store_template_put(s, &t, &err), 0);
	stored_alert(s, "SERVEDE", &subject, &plain);
	assert_string_equal(subject, "global de SERVEDE");
	assert_non_null(strstr(plain, "Your device has been put in quarantine."));
	free(subject);
	free(plain);
	/* The domain's, in the phone's language then in its locale, win in turn. */
	t = (struct abq_template){.scope = ABQ_SCOPE_DOMAIN,
	                          .domain = "example.com",
	                          .kind = "user-quarantined",
	                          .locale = "de",
	                          .subject = "domain de",
	                          .body_plain = "Gerät {model}"};
	assert_int_equal(abq_store_template_put(s, &t, &err), 0);
	stored_alert(s, "SERVEDE", &subject, &plain);
	assert_string_equal(subject, "domain de");
	assert_string_equal(plain, "Gerät Pixel 9");
	free(subject);
	free(plain);
	t.locale = "de-DE";
	t.subject = "domain de-DE";
	assert_int_equal(abq_store_template_put(s, &t, &err), 0);
	stored_alert(s, "SERVEDE", &subject, &plain);
	assert_string_equal(subject, "domain de-DE");
	free(subject);
	free(plain);

	/* Discovery keeps its neutral text. */
	d.device_id = "SERVEDISC";
	d.state = ABQ_STATE_DISCOVERY;
	d.reason = ABQ_REASON_DISCOVERY;
	assert_int_equal(abq_store_device_put(s, &d, &err), 0);
	stored_alert(s, "SERVEDISC", &subject, &plain);
	assert_string_equal(subject, "Checking your device");
	free(subject);
	free(plain);

	/* A device the store does not know. */
	struct mbx_serve_out out = {0};
	char *msg = NULL;
	const struct mbx_quarantine_req r = {
	    .account = "alice@example.com", .device_id = "NOSUCH", .cmd = EAS_CMD_FOLDERSYNC};
	assert_int_equal(mbx_quarantine_serve(s, "example.com", &r, &out, &msg), -1);
	assert_non_null(strstr(msg, "not in the registry"));
	free(msg);
	mbx_serve_out_clear(&out);

	abq_store_close(&s);
	snprintf(url, sizeof(url), "rm -rf %s", dir);
	assert_int_equal(system(url), 0);
}

/* ---- a backend that owns the change cursor (mailbox_memory.c) ---- */

/*
 * Two identical IMAP-model mailboxes: every request is served synchronously
 * on the first (state in mem) and through mbx_run on the second, whose
 * first op of each request pends (state in mem2, answered later); answers
 * and stored states must be the same, byte for byte. Changes on the server
 * are made on both.
 */
struct cx {
	struct fx f;
	struct mbx_backend *mm, *mm2;
	bool mirror;
	const char *attachment_name; /* GetAttachment's */
	/* 12.x compose queries: SaveInSent, CollectionId, ItemId */
	bool save_in_sent;
	const char *collection_id, *item_id;
	/* a raw request body (a 12.x message) instead of WBXML */
	const char *raw_body;
	bool may_stream;                 /* the caller streams (mbx_serve_in.may_stream) */
	const struct mbx_pim_codec *pim; /* contacts, calendars, tasks (mbx_serve_in.pim) */
};

#define CX_NOW 1700000100

static void
cx_init(struct cx *c, size_t n)
{
	memset(c, 0, sizeof(*c));
	fx_init(&c->f, "16.1");
	mbx_destroy(&c->f.mb);
	mbx_destroy(&c->f.mb2);
	c->mirror = true;
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = mbx_memory_new();
		assert_int_equal(
		    mbx_memory_add_folder(b, "inbox", "0", "Inbox", MBX_FOLDER_INBOX, 7), 0);
		assert_int_equal(
		    mbx_memory_add_folder(b, "trash", "0", "Trash", MBX_FOLDER_DELETED, 9), 0);
		for (size_t i = 0; i < n; i++) {
			char subj[32];
			snprintf(subj, sizeof(subj), "msg %zu", i + 1);
			/* one a day back from now: message n is the newest */
			assert_int_equal(mbx_memory_append(b, "inbox", "bob@example.com", subj,
			                                   CX_NOW - (int64_t)(n - i) * 86400, 0),
			                 i + 1);
		}
		if (k == 1)
			mbx_memory_set_mode(b, true, true);
		*(k ? &c->mm2 : &c->mm) = b;
	}
}

static void
cx_done(struct cx *c)
{
	mbx_destroy(&c->mm);
	mbx_destroy(&c->mm2);
	fx_done(&c->f);
}

/* The stored blob of (alice, DEV1, coll) in m, or NULL. */
static const struct kv *
cx_blob(const struct mem *m, const char *coll)
{
	char k[256];
	mkey(k, "alice@example.com", "DEV1", coll);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].key, k) == 0)
			return &m->kv[i];
	}
	return NULL;
}

/* Serve a request on both mailboxes; the decoded answer (NULL without a body). */
static struct wbxml_node *
cx_serve(struct cx *c, enum eas_cmd cmd, struct wbxml_doc *req)
{
	struct fx *f = &c->f;
	uint8_t *body = NULL;
	size_t len = 0;

	if (req != NULL)
		assert_int_equal(wbxml_encode(req, &body, &len, NULL), WBXML_OK);
	else if (c->raw_body != NULL)
		body = (uint8_t *)xstrdup(c->raw_body), len = strlen(c->raw_body);
	wbxml_doc_free(&req);
	mbx_serve_out_clear(&f->out);
	wbxml_doc_free(&f->resp);
	struct mbx_serve_in in = {
	    .attachment_name = c->attachment_name,
	    .may_stream = c->may_stream,
	    .save_in_sent = c->save_in_sent,
	    .collection_id = c->collection_id,
	    .item_id = c->item_id,
	    .cmd = cmd,
	    .version = f->version,
	    .body = body,
	    .body_len = len,
	    .account = f->facts.account,
	    .device_id = f->facts.device_id,
	    .backend = c->mm,
	    .state = {&f->mem, mem_get, mem_put, mem_del, f->mem.cid_on ? mem_client_id : NULL},
	    .pim = c->pim,
	    .now = CX_NOW,
	    .heartbeat_min = 60,
	    .heartbeat_max = 1800,
	};
	int puts = f->mem.puts;
	mbx_begin(c->mm); /* one request's scope, as run.c gives it */
	assert_int_equal(mbx_serve(&in, &f->out), 0);
	mbx_end(c->mm);
	f->commits = f->mem.puts - puts; /* the synchronous path's writes */
	if (c->mirror) {
		struct as a = {.mem = &f->mem2};
		struct answer ans;
		in.backend = c->mm2;
		in.state = (struct mbx_state_accessor){0};
		drive(&in, NULL, &a, 0, &ans);
		assert_int_equal(ans.rv, 0);
		assert_out_equal(&f->out, &ans.out);
		mbx_serve_out_clear(&ans.out);
		assert_mem_equal(&f->mem, &f->mem2);
	}
	free(body);
	if (f->out.http_status != 200 || f->out.body == NULL || f->out.stream.on ||
	    strcmp(f->out.content_type, "application/vnd.ms-sync.wbxml") != 0)
		return NULL;
	assert_int_equal(wbxml_decode(f->out.body, f->out.body_len, NULL, &f->resp, NULL),
	                 WBXML_OK);
	return wbxml_doc_root(f->resp);
}

/* A Sync of the inbox: key, WindowSize, FilterType (-1: none), DeletesAsMoves (-1: none). */
static struct wbxml_doc *
cx_req(const char *key, int window, int filter, int dam, struct wbxml_node **coll_r)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *c =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "AirSync:Sync"), "Collections"), "Collection");
	char t[16];

	wbxml_addn_text(c, "SyncKey", key);
	wbxml_addn_text(c, "CollectionId", "inbox");
	if (dam >= 0)
		wbxml_addn_text(c, "DeletesAsMoves", dam ? "1" : "0");
	if (strcmp(key, "0") != 0)
		wbxml_addn(c, "GetChanges");
	snprintf(t, sizeof(t), "%d", window);
	wbxml_addn_text(c, "WindowSize", t);
	if (filter >= 0) {
		snprintf(t, sizeof(t), "%d", filter);
		wbxml_addn_text(wbxml_addn(c, "Options"), "FilterType", t);
	}
	if (coll_r != NULL)
		*coll_r = c;
	return d;
}

/* Sync the inbox from key; the answer's Collection, the new key in key. */
static struct wbxml_node *
cx_sync(struct cx *c, char key[80], int window, int filter, int dam)
{
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SYNC, cx_req(key, window, filter, dam, NULL));
	assert_non_null(r);
	struct wbxml_node *co = wbxml_find(r, "Collections/Collection");
	assert_non_null(co);
	snprintf(key, 80, "%s", txt(co, "SyncKey"));
	return co;
}

/* The n-th command (0-based) of a Collection, or NULL. */
static struct wbxml_node *
cmd_at(const struct wbxml_node *co, size_t n)
{
	struct wbxml_node *cmds = wbxml_find(co, "Commands");
	struct wbxml_node *x = cmds ? cmds->first_child : NULL;
	while (x && n--)
		x = x->next;
	return x;
}

/* How many commands a Collection carries. */
static size_t
n_cmds(const struct wbxml_node *co)
{
	size_t n = 0;
	while (cmd_at(co, n) != NULL)
		n++;
	return n;
}

/* The folder synced whole from key 0: returns the key. */
static void
cx_prime(struct cx *c, char key[80])
{
	assert_non_null(cx_serve(c, EAS_CMD_FOLDERSYNC, req_foldersync("0")));
	snprintf(key, 80, "0");
	struct wbxml_node *co = cx_sync(c, key, 100, -1, -1);
	assert_string_equal(txt(co, "Status"), "1");
	co = cx_sync(c, key, 100, -1, -1);
	assert_null(wbxml_find(co, "MoreAvailable"));
}

/* Microseconds per call of a no-change incremental Sync from key. */
static double
time_nochange(struct cx *c, const char *key, int n)
{
	struct timespec t0, t1;
	char k[80];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%s", key);
		struct wbxml_node *co = cx_sync(c, k, 100, -1, -1);
		assert_null(wbxml_find(co, "Commands"));
		assert_string_equal(k, key);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 /
	       n;
}

/*
 * 10,000 messages synced in windows of 100 until MoreAvailable ends: each
 * exactly once, newest first, the state a few hundred bytes all along; then
 * a Sync with nothing new: no Commands, the key kept, nothing written.
 * Measured against the item-list path on the same mailbox.
 */
static void
test_cursor_initial_10000(void **state)
{
	enum { N = 10000 };
	struct cx c;
	char key[80] = "0";
	static bool seen[N + 1];
	uint32_t expect = N;
	size_t max_state = 0;
	int windows = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	cx_init(&c, N);
	assert_non_null(cx_serve(&c, EAS_CMD_FOLDERSYNC, req_foldersync("0")));
	cx_sync(&c, key, 100, -1, -1);
	for (;;) {
		struct wbxml_node *co = cx_sync(&c, key, 100, -1, -1);
		size_t n = n_cmds(co);
		for (size_t i = 0; i < n; i++) {
			struct wbxml_node *a = cmd_at(co, i);
			assert_string_equal(a->name, "Add");
			long uid = strtol(txt(a, "ServerId"), NULL, 10);
			assert_int_equal(uid, expect); /* newest first */
			assert_false(seen[uid]);
			seen[uid] = true;
			expect--;
		}
		const struct kv *st = cx_blob(&c.f.mem, "inbox");
		if (st->len > max_state)
			max_state = st->len;
		windows++;
		if (wbxml_find(co, "MoreAvailable") == NULL)
			break;
		assert_int_equal(n, 100);
		assert_true(windows < 200);
	}
	assert_int_equal(windows, 100);
	assert_int_equal(expect, 0);
	const struct kv *st = cx_blob(&c.f.mem, "inbox");
	print_message("cursor state after 10,000 messages: %zu bytes (largest %zu): %.*s\n",
	              st->len, max_state, (int)st->len, st->val);
	assert_true(max_state < 300);
	/* Nothing new: no Commands, the same key, no write. */
	char k2[80];
	snprintf(k2, sizeof(k2), "%s", key);
	struct wbxml_node *co = cx_sync(&c, k2, 100, -1, -1);
	assert_null(wbxml_find(co, "Commands"));
	assert_string_equal(k2, key);
	assert_int_equal(cx_blob(&c.f.mem, "inbox")->len, st->len); /* only the request cache */
	/* Measure: the cursor path, then the item-list path on the same data. */
	c.mirror = false;
	double us_cursor = time_nochange(&c, key, 20);
	size_t cursor_bytes = cx_blob(&c.f.mem, "inbox")->len;
	/* The item list is quadratic: too slow under valgrind, measured natively only. */
	const char *pre = getenv("LD_PRELOAD");
	if (pre != NULL && strstr(pre, "vgpreload") != NULL) {
		cx_done(&c);
		return;
	}
	mbx_memory_set_mode(c.mm, false, false);
	snprintf(key, sizeof(key), "0");
	cx_sync(&c, key, 100, -1, -1);
	do
		co = cx_sync(&c, key, 512, -1, -1);
	while (wbxml_find(co, "MoreAvailable") != NULL);
	double us_list = time_nochange(&c, key, 3);
	size_t list_bytes = cx_blob(&c.f.mem, "inbox")->len;
	print_message("no-change incremental Sync, 10,000 messages: cursor %.0f us, %zu state "
	              "bytes; item list %.0f us, %zu state bytes\n",
	              us_cursor, cursor_bytes, us_list, list_bytes);
	assert_true(list_bytes > 100 * cursor_bytes);
	cx_done(&c);
}

/* A Sync carrying one client command (Change read / Delete) on uid. */
static struct wbxml_node *
cx_client(struct cx *c, char key[80], const char *what, const char *uid, int dam)
{
	struct wbxml_node *coll;
	struct wbxml_doc *d = cx_req(key, 100, -1, dam, &coll);
	struct wbxml_node *x = wbxml_addn(wbxml_addn(coll, "Commands"), what);
	wbxml_addn_text(x, "ServerId", uid);
	if (strcmp(what, "Change") == 0)
		wbxml_addn_text(wbxml_addn(x, "ApplicationData"), "Email:Read", "1");
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SYNC, d);
	struct wbxml_node *co = wbxml_find(r, "Collections/Collection");
	snprintf(key, 80, "%s", txt(co, "SyncKey"));
	return co;
}

/*
 * A cursor whose uid-set reaches 4294967295 ('*', "1:*") is none the memory
 * backend writes (its UIDs stop below): read as "start over", never as "the
 * device has every UID to come", which would hide new mail for good.
 */
static void
test_cursor_star(void **state)
{
	struct mbx_backend *b = mbx_memory_new();
	struct mbx_window w = {.size = 100, .since = -1};
	struct mbx_changes out = {0};
	const char *err = NULL;
	static const char *const bad[] = {"7 3 0 1:*", "7 3 0 *", "7 3 0 1:3,4294967295",
	                                  "7 3 0 4294967290:4294967295"};

	(void)state;
	assert_int_equal(mbx_memory_add_folder(b, "inbox", "0", "Inbox", MBX_FOLDER_INBOX, 7), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(mbx_memory_append(b, "inbox", "bob@example.com", "m", CX_NOW, 0),
		                 i + 1);
	/* the cursor of a device that has all three: nothing new */
	assert_int_equal(mbx_changes(b, "inbox", "7 3 0 1:3", &w, &out, &err), 1);
	assert_int_equal(out.total, 0);
	mbx_changes_clear(&out);
	assert_int_equal(mbx_memory_append(b, "inbox", "bob@example.com", "new", CX_NOW, 0), 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mbx_changes(b, "inbox", bad[i], &w, &out, &err), 0);
		mbx_changes_clear(&out);
	}
	assert_int_equal(mbx_changes(b, "inbox", "7 3 0 1:3", &w, &out, &err), 1);
	assert_int_equal(out.n_adds, 1);
	assert_string_equal(out.adds[0].id, "4");
	assert_null(strchr(out.cursor, '*'));
	mbx_changes_clear(&out);
	mbx_destroy(&b);
}

/* The server's and the phone's changes, as the phone sees them. */
static void
test_cursor_changes(void **state)
{
	struct cx c;
	char key[80], k1[80];
	struct wbxml_node *co, *r;

	(void)state;
	cx_init(&c, 20);
	cx_prime(&c, key);
	/* New mail: one Add. */
	for (int k = 0; k < 2; k++)
		assert_int_equal(mbx_memory_append(k ? c.mm2 : c.mm, "inbox", "carol@example.com",
		                                   "new", CX_NOW, 0),
		                 21);
	r = cx_serve(&c, EAS_CMD_GETITEMESTIMATE, req_estimate(key, "inbox"));
	assert_string_equal(txt(r, "Response/Collection/Estimate"), "1");
	r = cx_serve(&c, EAS_CMD_PING, req_ping("300", "inbox"));
	assert_string_equal(txt(r, "Status"), "2");
	co = cx_sync(&c, key, 100, -1, -1);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), "21");
	assert_string_equal(txt(cmd_at(co, 0), "ApplicationData/Email:Subject"), "new");
	r = cx_serve(&c, EAS_CMD_PING, req_ping("300", "inbox"));
	assert_string_equal(txt(r, "Status"), "1");
	/* Flag changes on the server: Change with the read and follow-up state. */
	for (int k = 0; k < 2; k++) {
		mbx_memory_store(k ? c.mm2 : c.mm, "inbox", 5, MBX_MEM_SEEN | MBX_MEM_FLAGGED, 0);
		mbx_memory_store(k ? c.mm2 : c.mm, "inbox", 7, MBX_MEM_DELETED, 0);
		mbx_memory_expunge(k ? c.mm2 : c.mm, "inbox");
	}
	snprintf(k1, sizeof(k1), "%s", key);
	co = cx_sync(&c, key, 100, -1, -1);
	assert_int_equal(n_cmds(co), 2);
	assert_string_equal(cmd_at(co, 0)->name, "Delete");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), "7");
	assert_string_equal(cmd_at(co, 1)->name, "Change");
	assert_string_equal(txt(cmd_at(co, 1), "ServerId"), "5");
	assert_string_equal(txt(cmd_at(co, 1), "ApplicationData/Email:Read"), "1");
	assert_string_equal(txt(cmd_at(co, 1), "ApplicationData/Email:Flag/Email:Status"), "2");
	/* The answer was lost: the old key gets the same answer, byte for byte. */
	uint8_t *first = xmalloc(c.f.out.body_len);
	size_t first_len = c.f.out.body_len;
	memcpy(first, c.f.out.body, first_len);
	char k2[80];
	snprintf(k2, sizeof(k2), "%s", k1);
	co = cx_sync(&c, k2, 100, -1, -1);
	assert_string_equal(k2, key);
	assert_int_equal(c.f.out.body_len, first_len);
	assert_memory_equal(c.f.out.body, first, first_len);
	free(first);
	/* A key that is neither: Status 3. */
	snprintf(k2, sizeof(k2), "abq-99-00000000");
	co = cx_sync(&c, k2, 100, -1, -1);
	assert_string_equal(txt(co, "Status"), "3");
	/* The phone reads 3 and deletes 4 (to Trash) and 6 (DeletesAsMoves 0): not echoed. */
	co = cx_client(&c, key, "Change", "3", -1);
	assert_null(wbxml_find(co, "Commands"));
	co = cx_client(&c, key, "Delete", "4", -1);
	assert_null(wbxml_find(co, "Commands"));
	co = cx_client(&c, key, "Delete", "6", 0);
	assert_null(wbxml_find(co, "Commands"));
	assert_int_equal(mbx_memory_count(c.mm, "trash"), 1);
	assert_int_equal(mbx_memory_count(c.mm, "inbox"), 18);
	co = cx_sync(&c, key, 100, -1, -1);
	assert_null(wbxml_find(co, "Commands"));
	r = cx_serve(&c, EAS_CMD_GETITEMESTIMATE, req_estimate(key, "inbox"));
	assert_string_equal(txt(r, "Response/Collection/Estimate"), "0");
	/* FilterType 3 (a week): the older ones leave as SoftDelete. */
	co = cx_sync(&c, key, 100, 3, -1);
	size_t n = n_cmds(co);
	assert_true(n > 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(cmd_at(co, i)->name, "SoftDelete");
	const struct kv *st = cx_blob(&c.f.mem, "inbox");
	print_message("state after changes: %zu bytes: %.*s\n", st->len, (int)st->len, st->val);
	/* The folder recreated (UIDVALIDITY): Status 3, the phone starts over. */
	for (int k = 0; k < 2; k++)
		assert_int_equal(mbx_memory_set_uidvalidity(k ? c.mm2 : c.mm, "inbox", 8), 0);
	r = cx_serve(&c, EAS_CMD_PING, req_ping("300", "inbox"));
	assert_string_equal(txt(r, "Status"), "2");
	co = cx_sync(&c, key, 100, -1, -1);
	assert_string_equal(txt(co, "Status"), "3");
	assert_string_equal(key, "0");
	assert_null(wbxml_find(co, "Commands"));
	cx_done(&c);
}

/* ---- real messages (native mode's items) ---- */

/* A file of tests/native/data, malloc'd, its length in *len_r. */
static char *
read_eml(const char *name, size_t *len_r)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", ABQ_NATIVE_DATA, name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = xmalloc(1 << 20);
	*len_r = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	return buf;
}

/* Deliver a data file to both mailboxes' inbox; its UID. */
static uint32_t
cx_deliver(struct cx *c, const char *name)
{
	size_t len;
	char *raw = read_eml(name, &len);
	uint32_t a = mbx_memory_append_raw(c->mm, "inbox", raw, len, CX_NOW - 3600, 0);
	uint32_t b = mbx_memory_append_raw(c->mm2, "inbox", raw, len, CX_NOW - 3600, 0);
	assert_int_equal(a, b);
	free(raw);
	return a;
}

/* A BodyPreference under opts. */
static void
add_pref(struct wbxml_node *opts, const char *type, const char *trunc, bool aon,
         const char *preview)
{
	struct wbxml_node *bp = wbxml_addn(opts, "AirSyncBase:BodyPreference");
	wbxml_addn_text(bp, "AirSyncBase:Type", type);
	if (trunc)
		wbxml_addn_text(bp, "AirSyncBase:TruncationSize", trunc);
	if (aon)
		wbxml_addn_text(bp, "AirSyncBase:AllOrNone", "1");
	if (preview)
		wbxml_addn_text(bp, "AirSyncBase:Preview", preview);
}

/* ItemOperations Fetch of inbox item uid; its Options (to fill) in *opts_r. */
static struct wbxml_doc *
req_fetch_item(const char *uid, struct wbxml_node **opts_r)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *f =
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
	wbxml_addn_text(f, "Store", "Mailbox");
	wbxml_addn_text(f, "AirSync:CollectionId", "inbox");
	wbxml_addn_text(f, "AirSync:ServerId", uid);
	*opts_r = wbxml_addn(f, "Options");
	return d;
}

/* ItemOperations Fetch by a Search LongId, with a CollectionId and a ServerId or none. */
static struct wbxml_doc *
req_fetch_longid(const char *lid, const char *folder, const char *sid, struct wbxml_node **opts_r)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *f =
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
	wbxml_addn_text(f, "Store", "Mailbox");
	if (lid)
		wbxml_addn_text(f, "Search:LongId", lid);
	if (folder)
		wbxml_addn_text(f, "AirSync:CollectionId", folder);
	if (sid)
		wbxml_addn_text(f, "AirSync:ServerId", sid);
	*opts_r = wbxml_addn(f, "Options");
	return d;
}

/* ItemOperations Fetch of a FileReference, with a Range or none. */
static struct wbxml_doc *
req_fetch_file(const char *ref, const char *range)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *f =
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
	wbxml_addn_text(f, "Store", "Mailbox");
	wbxml_addn_text(f, "AirSyncBase:FileReference", ref);
	if (range)
		wbxml_addn_text(wbxml_addn(f, "Options"), "Range", range);
	return d;
}

/* The base64 Data of an answer decoded (malloc'd), its length in *n_r. */
static unsigned char *
data_of(const struct wbxml_node *props, size_t *n_r)
{
	const char *t = txt(props, "Data");
	size_t epos;
	const char *err;
	unsigned char *out = xmalloc(B64_DECODED_MAX(strlen(t)) + 1);
	assert_int_equal(b64_decode(t, strlen(t), out, n_r, &epos, &err), 0);
	return out;
}

/*
 * Real messages at 12.1 and 14.1: a Sync Add of a multipart/alternative
 * message with its headers as MS-ASEMAIL says, plain text cut at the
 * TruncationSize, Preview at 14.1 only; the PDF message's attachment listed
 * with its FileReference; ItemOperations Fetch of the item as HTML whole,
 * as MIME (MIMESupport 2), and as HTML under AllOrNone that does not fit
 * (no data); of the PDF whole and with a Range; a bad FileReference: 15;
 * GetAttachment (12.1): the PDF with its Content-Type.
 */
static void
test_real_messages(void **state)
{
	static const char *const vs[] = {"12.1", "14.1"};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct cx c;
		char key[80];
		struct wbxml_node *coll, *opts, *r;

		cx_init(&c, 0);
		c.f.version = vs[k];
		assert_int_equal(cx_deliver(&c, "alternative.eml"), 1);
		assert_int_equal(cx_deliver(&c, "mixed_pdf.eml"), 2);
		cx_prime(&c, key); /* items without Options: not looked at here */
		snprintf(key, sizeof(key), "0");
		cx_sync(&c, key, 100, -1, -1);
		/* Sync with plain text cut at 20 bytes and a Preview */
		struct wbxml_doc *d = cx_req(key, 100, -1, -1, &coll);
		opts = wbxml_addn(coll, "Options");
		add_pref(opts, "1", "20", false, "40");
		r = cx_serve(&c, EAS_CMD_SYNC, d);
		struct wbxml_node *co = wbxml_find(r, "Collections/Collection");
		assert_int_equal(n_cmds(co), 2);
		struct wbxml_node *pdf = wbxml_find(cmd_at(co, 0), "ApplicationData");
		struct wbxml_node *alt = wbxml_find(cmd_at(co, 1), "ApplicationData");
		assert_string_equal(txt(cmd_at(co, 1), "ServerId"), "1");
		assert_string_equal(txt(alt, "Email:Subject"), "Re: Fwd: Quarterly report");
		assert_string_equal(txt(alt, "Email:ThreadTopic"), "Quarterly report");
		assert_non_null(strstr(txt(alt, "Email:From"), "anna@example.org"));
		assert_non_null(strstr(txt(alt, "Email:From"), "Anna M\xc3\xbcller"));
		assert_non_null(strstr(txt(alt, "Email:Cc"), "dan@example.com"));
		assert_non_null(strstr(txt(alt, "Email:ReplyTo"), "reports@example.org"));
		assert_string_equal(txt(alt, "Email:Importance"), "2");
		assert_string_equal(txt(alt, "Email:DateReceived"), "2026-03-03T08:15:00.000Z");
		assert_string_equal(txt(alt, "AirSyncBase:NativeBodyType"), "2");
		assert_string_equal(txt(alt, "AirSyncBase:Body/Type"), "1");
		assert_string_equal(txt(alt, "AirSyncBase:Body/Truncated"), "1");
		assert_true(strlen(txt(alt, "AirSyncBase:Body/Data")) <= 20);
		assert_true(strncmp(txt(alt, "AirSyncBase:Body/Data"), "Hi Bob,", 7) == 0);
		assert_true(num(alt, "AirSyncBase:Body/EstimatedDataSize") > 20);
		if (k == 0)
			assert_null(wbxml_find(alt, "AirSyncBase:Body/Preview"));
		else
			assert_true(strncmp(txt(alt, "AirSyncBase:Body/Preview"),
			                    "Hi Bob, the report", 18) == 0);
		assert_null(wbxml_find(alt, "AirSyncBase:Attachments"));
		struct wbxml_node *att = wbxml_find(pdf, "AirSyncBase:Attachments/Attachment");
		assert_non_null(att);
		assert_string_equal(txt(att, "DisplayName"), "report.pdf");
		assert_string_equal(txt(att, "FileReference"), "inbox:2:2");
		assert_string_equal(txt(att, "Method"), "1");
		long pdf_size = num(att, "EstimatedDataSize");
		assert_true(pdf_size > 100);

		/* ItemOperations: HTML whole */
		d = req_fetch_item("1", &opts);
		add_pref(opts, "2", NULL, false, NULL);
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
		struct wbxml_node *pr = wbxml_find(r, "Response/Fetch/Properties");
		assert_string_equal(txt(pr, "AirSyncBase:Body/Type"), "2");
		assert_null(wbxml_find(pr, "AirSyncBase:Body/Truncated"));
		assert_non_null(strstr(txt(pr, "AirSyncBase:Body/Data"), "<p>Hi Bob,</p>"));
		/* MIME with MIMESupport 2: the message's bytes */
		d = req_fetch_item("1", &opts);
		wbxml_addn_text(opts, "AirSync:MIMESupport", "2");
		add_pref(opts, "4", NULL, false, NULL);
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
		pr = wbxml_find(r, "Response/Fetch/Properties");
		assert_string_equal(txt(pr, "AirSyncBase:Body/Type"), "4");
		assert_non_null(strstr(txt(pr, "AirSyncBase:Body/Data"), "boundary=\"alt-1\""));
		/* Type 4 without MIMESupport is skipped for the next preference */
		d = req_fetch_item("1", &opts);
		add_pref(opts, "4", NULL, false, NULL);
		add_pref(opts, "2", "10", true, NULL);
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
		pr = wbxml_find(r, "Response/Fetch/Properties");
		assert_string_equal(txt(pr, "AirSyncBase:Body/Type"), "2");
		assert_string_equal(txt(pr, "AirSyncBase:Body/Truncated"), "1");
		assert_null(wbxml_find(pr, "AirSyncBase:Body/Data")); /* AllOrNone */

		/* The PDF whole, then bytes 0-9 */
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:2:2", NULL));
		assert_string_equal(txt(r, "Response/Fetch/Status"), "1");
		assert_string_equal(txt(r, "Response/Fetch/AirSyncBase:FileReference"),
		                    "inbox:2:2");
		pr = wbxml_find(r, "Response/Fetch/Properties");
		assert_string_equal(txt(pr, "AirSyncBase:ContentType"), "application/pdf");
		size_t n;
		unsigned char *whole = data_of(pr, &n);
		assert_int_equal(n, pdf_size);
		assert_int_equal(num(pr, "Total"), pdf_size);
		assert_memory_equal(whole, "%PDF", 4);
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:2:2", "0-9"));
		pr = wbxml_find(r, "Response/Fetch/Properties");
		assert_string_equal(txt(pr, "Range"), "0-9");
		assert_int_equal(num(pr, "Total"), pdf_size);
		size_t n10;
		unsigned char *part = data_of(pr, &n10);
		assert_int_equal(n10, 10);
		assert_memory_equal(part, whole, 10);
		free(part);
		/* no such part, none of ours, a range past the end */
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:2:9", NULL));
		assert_string_equal(txt(r, "Response/Fetch/Status"), "15");
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("garbage", NULL));
		assert_string_equal(txt(r, "Response/Fetch/Status"), "15");
		r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS,
		             req_fetch_file("inbox:2:2", "999999-1000000"));
		assert_string_equal(txt(r, "Response/Fetch/Status"), "8");

		/* GetAttachment: the bytes as the HTTP body, with their type */
		c.attachment_name = "inbox:2:2";
		assert_null(cx_serve(&c, EAS_CMD_GETATTACHMENT, NULL));
		assert_int_equal(c.f.out.http_status, 200);
		assert_string_equal(c.f.out.content_type, "application/pdf");
		assert_int_equal(c.f.out.body_len, pdf_size);
		assert_memory_equal(c.f.out.body, whole, n);
		c.attachment_name = "inbox:2:7";
		assert_null(cx_serve(&c, EAS_CMD_GETATTACHMENT, NULL));
		assert_int_equal(c.f.out.http_status, 500);
		free(whole);
		cx_done(&c);
	}
}

/*
 * What the daemon sends for a streamed answer: the prefix, the part read
 * window by window (MBX_STREAM_CHUNK, each dropped once taken) within one
 * begin/end, base64-encoded when asked, the suffix. Its length in *len_r.
 */
static uint8_t *
stream_out(struct mbx_backend *b, const struct mbx_serve_out *out, size_t *len_r)
{
	struct sbuf w = {0};
	uint64_t off = 0;

	if (out->body_len > 0)
		sbuf_addn(&w, (const char *)out->body, out->body_len);
	mbx_begin(b);
	while (off < out->stream.total) {
		struct mbx_part p;
		const char *err;
		assert_int_equal(mbx_fetch_part(b, out->stream.folder, out->stream.item,
		                                out->stream.section, off, MBX_STREAM_CHUNK, &p,
		                                &err),
		                 1);
		assert_true(p.len > 0 && p.len <= MBX_STREAM_CHUNK);
		assert_int_equal(p.total, out->stream.total);
		mbx_forget_parts(b);
		if (out->stream.base64) {
			char *t = xmalloc(B64_ENCODED_LEN(p.len) + 1);
			sbuf_addn(&w, t, b64_encode((const unsigned char *)p.data, p.len, t));
			free(t);
		} else {
			sbuf_addn(&w, p.data, p.len);
		}
		off += p.len;
		mbx_part_clear(&p);
	}
	mbx_end(b);
	if (out->stream.suffix_len > 0)
		sbuf_addn(&w, (const char *)out->stream.suffix, out->stream.suffix_len);
	*len_r = w.len;
	return (uint8_t *)w.p;
}

/*
 * A backend that parsed its messages ahead (off the loop: mbx_email.parsed)
 * is served from that parse, not a new one: the same fields, bodies,
 * attachments and MIME as parsed on the loop, and what the parse says is
 * what the phone gets.
 */
static void
test_parsed_ahead(void **state)
{
	struct cx c;
	char key[80];
	struct wbxml_node *opts, *r, *pr;
	struct wbxml_doc *d;

	(void)state;
	cx_init(&c, 0);
	mbx_memory_set_parse_ahead(c.mm, true);
	mbx_memory_set_parse_ahead(c.mm2, true);
	assert_int_equal(cx_deliver(&c, "alternative.eml"), 1);
	assert_int_equal(cx_deliver(&c, "mixed_pdf.eml"), 2);
	cx_prime(&c, key);
	/* the PDF's attachment, from the parse */
	d = req_fetch_item("2", &opts);
	add_pref(opts, "1", NULL, false, NULL);
	r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
	pr = wbxml_find(r, "Response/Fetch/Properties");
	assert_string_equal(txt(pr, "AirSyncBase:Attachments/Attachment/DisplayName"),
	                    "report.pdf");
	assert_string_equal(txt(pr, "AirSyncBase:Attachments/Attachment/FileReference"),
	                    "inbox:2:2");
	/* plain, HTML and MIME bodies of the alternative */
	d = req_fetch_item("1", &opts);
	add_pref(opts, "1", NULL, false, NULL);
	r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
	pr = wbxml_find(r, "Response/Fetch/Properties");
	assert_string_equal(txt(pr, "Email:Subject"), "Re: Fwd: Quarterly report");
	assert_true(strncmp(txt(pr, "AirSyncBase:Body/Data"), "Hi Bob,", 7) == 0);
	d = req_fetch_item("1", &opts);
	wbxml_addn_text(opts, "AirSync:MIMESupport", "2");
	add_pref(opts, "4", NULL, false, NULL);
	r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
	pr = wbxml_find(r, "Response/Fetch/Properties");
	assert_non_null(strstr(txt(pr, "AirSyncBase:Body/Data"), "boundary=\"alt-1\""));
	/* what the phone gets is the parse kept, not a parse of its own */
	for (int k = 0; k < 2; k++) {
		struct msgconv_msg *m = mbx_memory_parsed(k ? c.mm2 : c.mm, "inbox", 1);
		assert_non_null(m);
		free(m->subject);
		m->subject = xstrdup("parsed ahead");
	}
	d = req_fetch_item("1", &opts);
	add_pref(opts, "1", NULL, false, NULL);
	r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
	pr = wbxml_find(r, "Response/Fetch/Properties");
	assert_string_equal(txt(pr, "Email:Subject"), "parsed ahead");
	cx_done(&c);
}

/*
 * An attachment of 2,500,000 bytes (past MBX_STREAM_CHUNK) when the caller
 * may stream: GetAttachment answers no bytes but the stream of the part
 * (its type as Content-Type, its decoded size), which read window by
 * window is the attachment; ItemOperations Fetch without a Range answers
 * the WBXML cut at its Data (the prefix ends with STR_I, the suffix starts
 * with its NUL), which with the part's base64 between decodes to Status 1,
 * Total 2500000 and Data the attachment, of mbx_stream_length bytes. With a
 * Range, or a caller that may not stream: inline, as before.
 */
static void
test_streamed_attachment(void **state)
{
	size_t n = 2500000, len;
	unsigned char *pdf = xmalloc(n);
	struct cx c;
	struct sbuf m = {0};

	(void)state;
	memcpy(pdf, "%PDF-1.4\n", 9);
	for (size_t i = 9; i < n; i++)
		pdf[i] = (unsigned char)(i * 7 + (i >> 9));
	char *b64 = xmalloc(B64_ENCODED_LEN(n) + 1);
	size_t bl = b64_encode(pdf, n, b64);
	sbuf_add(&m, "From: bob@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n"
	             "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
	             "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
	             "--b1\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\n"
	             "Content-Disposition: attachment; filename=\"big.pdf\"\r\n"
	             "Content-Transfer-Encoding: base64\r\n\r\n");
	for (size_t i = 0; i < bl; i += 76) {
		sbuf_addn(&m, b64 + i, bl - i < 76 ? bl - i : 76);
		sbuf_add(&m, "\r\n");
	}
	sbuf_add(&m, "--b1--\r\n");
	cx_init(&c, 0);
	assert_int_equal(mbx_memory_append_raw(c.mm, "inbox", m.p, m.len, CX_NOW - 60, 0), 1);
	assert_int_equal(mbx_memory_append_raw(c.mm2, "inbox", m.p, m.len, CX_NOW - 60, 0), 1);
	c.may_stream = true;

	/* GetAttachment: streamed raw */
	c.attachment_name = "inbox:1:2";
	assert_null(cx_serve(&c, EAS_CMD_GETATTACHMENT, NULL));
	struct mbx_serve_out *o = &c.f.out;
	assert_int_equal(o->http_status, 200);
	assert_true(o->stream.on);
	assert_false(o->stream.base64);
	assert_int_equal(o->stream.total, n);
	assert_int_equal(o->body_len, 0);
	assert_string_equal(o->content_type, "application/pdf");
	assert_int_equal(mbx_stream_length(o), n);
	uint8_t *sent = stream_out(c.mm, o, &len);
	assert_int_equal(len, n);
	assert_memory_equal(sent, pdf, n);
	free(sent);

	/* ItemOperations Fetch: the WBXML around the streamed base64 */
	assert_null(cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:1:2", NULL)));
	assert_true(o->stream.on && o->stream.base64);
	assert_int_equal(o->body[o->body_len - 1], 0x03);
	assert_int_equal(o->stream.suffix[0], 0x00);
	sent = stream_out(c.mm, o, &len);
	assert_int_equal(len, mbx_stream_length(o));
	struct wbxml_doc *d = NULL;
	assert_int_equal(wbxml_decode(sent, len, NULL, &d, NULL), WBXML_OK);
	struct wbxml_node *pr = wbxml_find(wbxml_doc_root(d), "Response/Fetch/Properties");
	assert_string_equal(txt(wbxml_doc_root(d), "Response/Fetch/Status"), "1");
	assert_string_equal(txt(pr, "AirSyncBase:ContentType"), "application/pdf");
	assert_int_equal(num(pr, "Total"), n);
	size_t got;
	unsigned char *data = data_of(pr, &got);
	assert_int_equal(got, n);
	assert_memory_equal(data, pdf, n);
	free(data);
	wbxml_doc_free(&d);
	free(sent);

	/* two Fetches of it in one request: the first streamed, the second inline after it */
	struct wbxml_doc *two = req_fetch_file("inbox:1:2", NULL);
	struct wbxml_node *f2 = wbxml_addn(wbxml_doc_root(two), "Fetch");
	wbxml_addn_text(f2, "Store", "Mailbox");
	wbxml_addn_text(f2, "AirSyncBase:FileReference", "inbox:1:2");
	assert_null(cx_serve(&c, EAS_CMD_ITEMOPERATIONS, two));
	assert_true(o->stream.on);
	assert_true(o->stream.suffix_len > n); /* the second Fetch's Data, inline */
	sent = stream_out(c.mm, o, &len);
	assert_int_equal(len, mbx_stream_length(o));
	assert_int_equal(wbxml_decode(sent, len, NULL, &d, NULL), WBXML_OK);
	size_t fetches = 0;
	for (struct wbxml_node *x = wbxml_find(wbxml_doc_root(d), "Response")->first_child; x;
	     x = x->next, fetches++) {
		data = data_of(wbxml_find(x, "Properties"), &got);
		assert_int_equal(got, n);
		assert_memory_equal(data, pdf, n);
		free(data);
	}
	assert_int_equal(fetches, 2);
	wbxml_doc_free(&d);
	free(sent);

	/* a Range: inline */
	struct wbxml_node *r =
	    cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:1:2", "100-199"));
	assert_non_null(r);
	assert_false(c.f.out.stream.on);
	data = data_of(wbxml_find(r, "Response/Fetch/Properties"), &got);
	assert_int_equal(got, 100);
	assert_memory_equal(data, pdf + 100, 100);
	free(data);
	/* a caller that may not stream: inline, whole */
	c.may_stream = false;
	r = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_file("inbox:1:2", NULL));
	assert_non_null(r);
	assert_false(c.f.out.stream.on);
	data = data_of(wbxml_find(r, "Response/Fetch/Properties"), &got);
	assert_int_equal(got, n);
	free(data);
	assert_null(cx_serve(&c, EAS_CMD_GETATTACHMENT, NULL));
	assert_false(c.f.out.stream.on);
	assert_int_equal(c.f.out.body_len, n);
	assert_memory_equal(c.f.out.body, pdf, n);
	cx_done(&c);
	free(m.p);
	free(b64);
	free(pdf);
}

/*
 * A Sync key repeated (its answer was lost) is answered with the very
 * answer it got, byte for byte, even after the mailbox changed in between
 * (a new message, a flag changed); the next key then gets those changes.
 */
static void
test_saved_answer(void **state)
{
	struct cx c;
	char key[80], k0[80];

	(void)state;
	cx_init(&c, 0);
	cx_deliver(&c, "alternative.eml");
	cx_deliver(&c, "mixed_pdf.eml");
	assert_non_null(cx_serve(&c, EAS_CMD_FOLDERSYNC, req_foldersync("0")));
	snprintf(key, sizeof(key), "0");
	cx_sync(&c, key, 100, -1, -1);
	snprintf(k0, sizeof(k0), "%s", key);
	struct wbxml_node *co = cx_sync(&c, key, 1, -1, -1);
	assert_int_equal(n_cmds(co), 1);
	assert_non_null(wbxml_find(co, "MoreAvailable"));
	uint8_t *first = xmalloc(c.f.out.body_len);
	size_t first_len = c.f.out.body_len;
	memcpy(first, c.f.out.body, first_len);
	/* the mailbox changes */
	cx_deliver(&c, "rfc2047.eml");
	mbx_memory_store(c.mm, "inbox", 2, MBX_MEM_SEEN, 0);
	mbx_memory_store(c.mm2, "inbox", 2, MBX_MEM_SEEN, 0);
	char again[80];
	snprintf(again, sizeof(again), "%s", k0);
	co = cx_sync(&c, again, 1, -1, -1);
	assert_string_equal(again, key);
	assert_int_equal(c.f.out.body_len, first_len);
	assert_memory_equal(c.f.out.body, first, first_len);
	/* the next key: the rest, the new message included */
	size_t got = 0;
	do {
		co = cx_sync(&c, key, 100, -1, -1);
		got += n_cmds(co);
	} while (wbxml_find(co, "MoreAvailable") != NULL);
	assert_int_equal(got, 3); /* uid 1, the new uid 3 and uid 2 now read */
	free(first);
	cx_done(&c);
}

/* ---- SendMail, SmartReply, SmartForward, MoveItems on a real mailbox ---- */

#define PHONE_MSG(to, subj)                                                                        \
	"From: alice@example.com\r\nTo: " to "\r\nSubject: " subj                                  \
	"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n"

/* The ClientId req_compose sends (NULL: none). */
static const char *compose_cid = "c-1";

/* A 14.0+ ComposeMail request: root, ClientId, SaveInSentItems, Source (folder/item), Mime. */
static struct wbxml_doc *
req_compose(const char *root, bool save, const char *folder, const char *item, const char *mime)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(d, root);
	if (compose_cid != NULL)
		wbxml_addn_text(r, "ClientId", compose_cid);
	if (save)
		wbxml_addn(r, "SaveInSentItems");
	if (folder != NULL) {
		struct wbxml_node *src = wbxml_addn(r, "Source");
		wbxml_addn_text(src, "FolderId", folder);
		wbxml_addn_text(src, "ItemId", item);
	}
	if (mime != NULL)
		wbxml_addn_opaque(r, "Mime", mime, strlen(mime));
	return d;
}

/* The i-th message the first mailbox sent (the other sent one too), or NULL. */
static const char *
cx_sent(struct cx *c, size_t i)
{
	size_t a, b;
	const char *m = mbx_memory_sent(c->mm, i, &a), *m2 = mbx_memory_sent(c->mm2, i, &b);
	if (m == NULL || m2 == NULL) {
		assert_null(m);
		assert_null(m2);
		return NULL;
	}
	(void)a;
	(void)b; /* composed messages differ in their random MIME boundaries */
	return m;
}

/* Set both mailboxes' next send outcome. */
static void
cx_send_result(struct cx *c, enum mbx_send_result r)
{
	mbx_memory_set_send_result(c->mm, r);
	mbx_memory_set_send_result(c->mm2, r);
}

/* A cx mailbox with a Sent folder, the PDF message (uid 1) and a reply-able one (uid 2). */
static void
cx_init_send(struct cx *c, const char *version)
{
	cx_init(c, 0);
	c->f.version = version;
	assert_int_equal(mbx_memory_add_folder(c->mm, "sent", "0", "Sent", MBX_FOLDER_SENT, 11), 0);
	assert_int_equal(mbx_memory_add_folder(c->mm2, "sent", "0", "Sent", MBX_FOLDER_SENT, 11),
	                 0);
	assert_int_equal(cx_deliver(c, "mixed_pdf.eml"), 1);
	assert_int_equal(cx_deliver(c, "alternative.eml"), 2);
}

/*
 * EAS 14.1: SendMail sends the phone's message and SaveInSent keeps it in
 * Sent; SmartForward of the PDF message sends the PDF along and marks the
 * original $Forwarded; SmartReply quotes, threads and marks \Answered; a
 * missing original is 150, refusals map to 116 / 111, nothing sent.
 */
static void
test_compose_14(void **state)
{
	struct cx c;
	struct wbxml_node *r;
	const char *m;

	(void)state;
	cx_init_send(&c, "14.1");
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", true, NULL, NULL,
	                         PHONE_MSG("carol@example.com", "hello")));
	assert_int_equal(c.f.out.http_status, 200);
	assert_null(r);
	assert_null(c.f.out.body);
	assert_string_equal(cx_sent(&c, 0), PHONE_MSG("carol@example.com", "hello"));
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 1);
	assert_int_equal(mbx_memory_flags(c.mm, "sent", 1), MBX_MEM_SEEN);

	/* SmartForward without SaveInSent: the original's PDF goes along */
	r = cx_serve(&c, EAS_CMD_SMARTFORWARD,
	             req_compose("ComposeMail:SmartForward", false, "inbox", "1",
	                         PHONE_MSG("dan@example.com", "Fwd: Report with PDF")));
	assert_int_equal(c.f.out.http_status, 200);
	assert_null(c.f.out.body);
	assert_non_null(m = cx_sent(&c, 1));
	assert_non_null(strstr(m, "dan@example.com"));
	assert_non_null(strstr(m, "See below."));
	assert_non_null(strstr(m, "application/pdf"));
	assert_non_null(strstr(m, "report.pdf"));
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 1);
	assert_true(mbx_memory_flags(c.mm, "inbox", 1) & MBX_MEM_FORWARDED);
	assert_false(mbx_memory_flags(c.mm, "inbox", 1) & MBX_MEM_ANSWERED);
	assert_true(mbx_memory_flags(c.mm2, "inbox", 1) & MBX_MEM_FORWARDED);

	/* SmartReply with SaveInSent: threaded, quoted, \Answered, in Sent */
	r = cx_serve(&c, EAS_CMD_SMARTREPLY,
	             req_compose("ComposeMail:SmartReply", true, "inbox", "2",
	                         PHONE_MSG("anna@example.org", "Re: Quarterly report")));
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(m = cx_sent(&c, 2));
	assert_non_null(strstr(m, "In-Reply-To:"));
	assert_non_null(strstr(m, "wrote:"));
	assert_true(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_ANSWERED);
	assert_false(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_FORWARDED);
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 2);
	assert_int_equal(mbx_memory_count(c.mm2, "sent"), 2);

	/* no such original: 150, nothing sent */
	r = cx_serve(&c, EAS_CMD_SMARTREPLY,
	             req_compose("ComposeMail:SmartReply", false, "inbox", "99",
	                         PHONE_MSG("anna@example.org", "Re: x")));
	assert_string_equal(r->name, "SmartReply");
	assert_string_equal(txt(r, "Status"), "150");
	assert_null(cx_sent(&c, 3));
	/* no Mime: 107 */
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL, NULL));
	assert_string_equal(txt(r, "Status"), "107");
	/* the submission refuses: the status says why, the original is not marked */
	cx_send_result(&c, MBX_SEND_RCPT_REFUSED);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", true, NULL, NULL,
	                         PHONE_MSG("nobody@example.com", "x")));
	assert_string_equal(r->name, "SendMail");
	assert_string_equal(txt(r, "Status"), "116");
	cx_send_result(&c, MBX_SEND_TEMPORARY);
	mbx_memory_store(c.mm, "inbox", 1, 0, MBX_MEM_FORWARDED);
	mbx_memory_store(c.mm2, "inbox", 1, 0, MBX_MEM_FORWARDED);
	r = cx_serve(&c, EAS_CMD_SMARTFORWARD,
	             req_compose("ComposeMail:SmartForward", false, "inbox", "1",
	                         PHONE_MSG("dan@example.com", "Fwd")));
	assert_string_equal(txt(r, "Status"), "111");
	assert_false(mbx_memory_flags(c.mm, "inbox", 1) & MBX_MEM_FORWARDED);
	assert_null(cx_sent(&c, 3));
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 2);
	cx_done(&c);
}

/* Both states' ClientId cid of the cx device: 0 none, 1 being sent, 2 sent. */
static int
cx_cid(struct cx *c, const char *cid)
{
	int st = mem_cid(&c->f.mem, c->f.facts.account, c->f.facts.device_id, cid);
	assert_int_equal(mem_cid(&c->f.mem2, c->f.facts.account, c->f.facts.device_id, cid), st);
	return st;
}

/*
 * EAS 14.1 with the ClientIds remembered: a SendMail repeated with its
 * ClientId is Status 118 and not sent again (SmartReply too: the original
 * not marked again); a send that failed (111, a refusal) releases its
 * ClientId, so the phone's retry goes out, once; a ClientId another request
 * is sending, or a store that fails, is 111 and nothing is sent; without a
 * ClientId every request is sent.
 */
static void
test_compose_client_id(void **state)
{
	struct cx c;
	struct wbxml_node *r;

	(void)state;
	cx_init_send(&c, "14.1");
	c.f.mem.cid_on = c.f.mem2.cid_on = true;
	compose_cid = "c-1";
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", true, NULL, NULL,
	                         PHONE_MSG("carol@example.com", "hello")));
	assert_int_equal(c.f.out.http_status, 200);
	assert_null(r);
	assert_non_null(cx_sent(&c, 0));
	assert_int_equal(cx_cid(&c, "c-1"), 2);
	/* the answer was lost: the same request again */
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", true, NULL, NULL,
	                         PHONE_MSG("carol@example.com", "hello")));
	assert_non_null(r);
	assert_string_equal(r->name, "SendMail");
	assert_string_equal(txt(r, "Status"), "118");
	assert_null(cx_sent(&c, 1));
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 1);

	/* temporary failure: 111, released; the retry goes out once */
	compose_cid = "c-2";
	cx_send_result(&c, MBX_SEND_TEMPORARY);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("dan@example.com", "later")));
	assert_string_equal(txt(r, "Status"), "111");
	assert_null(cx_sent(&c, 1));
	assert_int_equal(cx_cid(&c, "c-2"), 0);
	cx_send_result(&c, MBX_SEND_SENT);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("dan@example.com", "later")));
	assert_null(r);
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(cx_sent(&c, 1));
	assert_int_equal(cx_cid(&c, "c-2"), 2);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("dan@example.com", "later")));
	assert_string_equal(txt(r, "Status"), "118");
	assert_null(cx_sent(&c, 2));

	/* a refusal releases it too */
	compose_cid = "c-3";
	cx_send_result(&c, MBX_SEND_RCPT_REFUSED);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("nobody@example.com", "x")));
	assert_string_equal(txt(r, "Status"), "116");
	assert_int_equal(cx_cid(&c, "c-3"), 0);
	cx_send_result(&c, MBX_SEND_SENT);

	/* SmartReply sent, then repeated: 118, the original not marked again */
	compose_cid = "c-4";
	r = cx_serve(&c, EAS_CMD_SMARTREPLY,
	             req_compose("ComposeMail:SmartReply", false, "inbox", "2",
	                         PHONE_MSG("anna@example.org", "Re: Quarterly report")));
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(cx_sent(&c, 2));
	assert_true(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_ANSWERED);
	mbx_memory_store(c.mm, "inbox", 2, 0, MBX_MEM_ANSWERED);
	mbx_memory_store(c.mm2, "inbox", 2, 0, MBX_MEM_ANSWERED);
	r = cx_serve(&c, EAS_CMD_SMARTREPLY,
	             req_compose("ComposeMail:SmartReply", false, "inbox", "2",
	                         PHONE_MSG("anna@example.org", "Re: Quarterly report")));
	assert_string_equal(r->name, "SmartReply");
	assert_string_equal(txt(r, "Status"), "118");
	assert_null(cx_sent(&c, 3));
	assert_false(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_ANSWERED);

	/* being sent by another request: 111, nothing sent, the reservation stays */
	compose_cid = "c-5";
	assert_int_equal(mem_client_id(&c.f.mem, c.f.facts.account, c.f.facts.device_id, "c-5",
	                               MBX_CLIENTID_RESERVE),
	                 MBX_CLIENTID_NEW);
	assert_int_equal(mem_client_id(&c.f.mem2, c.f.facts.account, c.f.facts.device_id, "c-5",
	                               MBX_CLIENTID_RESERVE),
	                 MBX_CLIENTID_NEW);
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("erin@example.com", "twice at once")));
	assert_string_equal(txt(r, "Status"), "111");
	assert_null(cx_sent(&c, 3));
	assert_int_equal(cx_cid(&c, "c-5"), 1);

	/* the store fails: 111, nothing sent */
	compose_cid = "c-6";
	c.f.mem.cid_fail = c.f.mem2.cid_fail = true;
	r = cx_serve(&c, EAS_CMD_SENDMAIL,
	             req_compose("ComposeMail:SendMail", false, NULL, NULL,
	                         PHONE_MSG("erin@example.com", "no store")));
	assert_string_equal(txt(r, "Status"), "111");
	assert_null(cx_sent(&c, 3));
	c.f.mem.cid_fail = c.f.mem2.cid_fail = false;

	/* no ClientId: nothing remembered, each request sent */
	compose_cid = NULL;
	for (size_t i = 3; i < 5; i++) {
		r = cx_serve(&c, EAS_CMD_SENDMAIL,
		             req_compose("ComposeMail:SendMail", false, NULL, NULL,
		                         PHONE_MSG("erin@example.com", "no id")));
		assert_null(r);
		assert_int_equal(c.f.out.http_status, 200);
		assert_non_null(cx_sent(&c, i));
	}
	assert_int_equal(c.f.mem.ncids, 4);
	compose_cid = "c-1";
	cx_done(&c);
}

/*
 * EAS 12.1: the body is the message, the rest in the query: SendMail with
 * SaveInSent, SmartReply by CollectionId/ItemId; success is HTTP 200
 * without a body, "later" 503 with Retry-After, an empty body 400.
 */
static void
test_compose_12(void **state)
{
	struct cx c;

	(void)state;
	cx_init_send(&c, "12.1");
	c.raw_body = PHONE_MSG("carol@example.com", "hello");
	c.save_in_sent = true;
	assert_null(cx_serve(&c, EAS_CMD_SENDMAIL, NULL));
	assert_int_equal(c.f.out.http_status, 200);
	assert_string_equal(cx_sent(&c, 0), PHONE_MSG("carol@example.com", "hello"));
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 1);

	c.save_in_sent = false;
	c.collection_id = "inbox";
	c.item_id = "2";
	c.raw_body = PHONE_MSG("anna@example.org", "Re: Quarterly report");
	assert_null(cx_serve(&c, EAS_CMD_SMARTREPLY, NULL));
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(strstr(cx_sent(&c, 1), "In-Reply-To:"));
	assert_true(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_ANSWERED);
	assert_int_equal(mbx_memory_count(c.mm, "sent"), 1);

	c.item_id = "1";
	assert_null(cx_serve(&c, EAS_CMD_SMARTFORWARD, NULL));
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(strstr(cx_sent(&c, 2), "report.pdf"));

	cx_send_result(&c, MBX_SEND_TEMPORARY);
	assert_null(cx_serve(&c, EAS_CMD_SENDMAIL, NULL));
	assert_int_equal(c.f.out.http_status, 503);
	assert_non_null(hdr(&c.f, "Retry-After"));
	cx_send_result(&c, MBX_SEND_FAILED);
	assert_null(cx_serve(&c, EAS_CMD_SENDMAIL, NULL));
	assert_int_equal(c.f.out.http_status, 500);
	c.raw_body = NULL;
	assert_null(cx_serve(&c, EAS_CMD_SENDMAIL, NULL));
	assert_int_equal(c.f.out.http_status, 400);
	assert_null(cx_sent(&c, 3));
	cx_done(&c);
}

/* A Sync of coll from key (the new key back in key): its Collection. */
static struct wbxml_node *
cx_sync_coll(struct cx *c, const char *coll, char key[80])
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *x =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "AirSync:Sync"), "Collections"), "Collection");
	wbxml_addn_text(x, "SyncKey", key);
	wbxml_addn_text(x, "CollectionId", coll);
	if (strcmp(key, "0") != 0)
		wbxml_addn(x, "GetChanges");
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SYNC, d);
	assert_non_null(r);
	struct wbxml_node *co = wbxml_find(r, "Collections/Collection");
	assert_non_null(co);
	snprintf(key, 80, "%s", txt(co, "SyncKey"));
	return co;
}

/* MoveItems of one item; the Response. */
static struct wbxml_node *
cx_move(struct cx *c, const char *item, const char *src, const char *dst)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *m = wbxml_addn(wbxml_addn_root(d, "Move:MoveItems"), "Move");
	wbxml_addn_text(m, "SrcMsgId", item);
	wbxml_addn_text(m, "SrcFldId", src);
	wbxml_addn_text(m, "DstFldId", dst);
	struct wbxml_node *r = cx_serve(c, EAS_CMD_MOVEITEMS, d);
	assert_non_null(r);
	return wbxml_find(r, "Response");
}

/*
 * MoveItems on a real mailbox: Status 3 with the id the item has in the
 * destination (its new UID there), the move not echoed to the phone as a
 * Delete in the source, the destination's next Sync adding it; unknown
 * item 1, unknown destination 2, the same folder 4.
 */
static void
test_cursor_move(void **state)
{
	struct cx c;
	char key[80], tkey[80] = "0";
	struct wbxml_node *co, *x;

	(void)state;
	cx_init(&c, 5);
	cx_prime(&c, key);
	co = cx_sync_coll(&c, "trash", tkey);
	co = cx_sync_coll(&c, "trash", tkey);
	assert_int_equal(n_cmds(co), 0);
	/* a message already in the destination: the moved one gets the next UID */
	assert_int_equal(mbx_memory_append(c.mm, "trash", "x@example.com", "old", CX_NOW, 0), 1);
	assert_int_equal(mbx_memory_append(c.mm2, "trash", "x@example.com", "old", CX_NOW, 0), 1);

	x = cx_move(&c, "3", "inbox", "trash");
	assert_string_equal(txt(x, "SrcMsgId"), "3");
	assert_string_equal(txt(x, "Status"), "3");
	assert_string_equal(txt(x, "DstMsgId"), "2");
	assert_int_equal(mbx_memory_count(c.mm, "inbox"), 4);
	assert_int_equal(mbx_memory_count(c.mm2, "trash"), 2);
	/* the source: nothing echoed */
	char k0[80];
	snprintf(k0, sizeof(k0), "%s", key);
	co = cx_sync(&c, key, 100, -1, -1);
	assert_int_equal(n_cmds(co), 0);
	assert_string_equal(key, k0);
	/* the destination: both messages added, the moved one under its new id */
	co = cx_sync_coll(&c, "trash", tkey);
	assert_int_equal(n_cmds(co), 2);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), "2");
	assert_string_equal(txt(cmd_at(co, 0), "ApplicationData/Email:Subject"), "msg 3");

	assert_string_equal(txt(cx_move(&c, "3", "inbox", "trash"), "Status"), "1");
	assert_string_equal(txt(cx_move(&c, "4", "inbox", "nowhere"), "Status"), "2");
	assert_string_equal(txt(cx_move(&c, "4", "inbox", "inbox"), "Status"), "4");
	assert_int_equal(mbx_memory_count(c.mm, "inbox"), 4);
	cx_done(&c);
}

/* ItemOperations EmptyFolderContents of one folder; its answer. */
static struct wbxml_node *
cx_empty(struct cx *c, const char *folder)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *e =
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "EmptyFolderContents");
	wbxml_addn_text(e, "AirSync:CollectionId", folder);
	struct wbxml_node *r = cx_serve(c, EAS_CMD_ITEMOPERATIONS, d);
	assert_non_null(r);
	return wbxml_find(r, "Response/EmptyFolderContents");
}

/*
 * EmptyFolderContents on a real mailbox: the folder emptied for good (the
 * messages gone from the mailbox, not only from the phone's view), nothing
 * echoed by the phone's next Sync, a message arriving afterwards added; an
 * unknown folder 6.
 */
static void
test_cursor_empty(void **state)
{
	struct cx c;
	char key[80], k0[80];
	struct wbxml_node *co, *x;

	(void)state;
	cx_init(&c, 5);
	cx_prime(&c, key);
	assert_int_equal(mbx_memory_count(c.mm, "inbox"), 5);
	x = cx_empty(&c, "inbox");
	assert_non_null(x);
	assert_string_equal(txt(x, "Status"), "1");
	assert_int_equal(mbx_memory_count(c.mm, "inbox"), 0);
	assert_int_equal(mbx_memory_count(c.mm2, "inbox"), 0);
	snprintf(k0, sizeof(k0), "%s", key);
	co = cx_sync(&c, key, 100, -1, -1);
	assert_int_equal(n_cmds(co), 0);
	assert_int_equal(mbx_memory_append(c.mm, "inbox", "carol@example.com", "after", CX_NOW, 0),
	                 6);
	assert_int_equal(mbx_memory_append(c.mm2, "inbox", "carol@example.com", "after", CX_NOW, 0),
	                 6);
	co = cx_sync(&c, key, 100, -1, -1);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	assert_string_equal(txt(cmd_at(co, 0), "ApplicationData/Email:Subject"), "after");
	x = cx_empty(&c, "nowhere");
	assert_string_equal(txt(x, "Status"), "6");
	cx_done(&c);
}

/* FolderSync from key as device dev; the answer's root, the new key in key. */
static struct wbxml_node *
cx_fsync(struct cx *c, const char *dev, char key[80])
{
	c->f.facts.device_id = dev;
	struct wbxml_node *r = cx_serve(c, EAS_CMD_FOLDERSYNC, req_foldersync(key));
	c->f.facts.device_id = "DEV1";
	assert_non_null(r);
	assert_string_equal(txt(r, "Status"), "1");
	snprintf(key, 80, "%s", txt(r, "SyncKey"));
	return r;
}

/* The i-th (0-based) change of a FolderSync answer, or NULL. */
static struct wbxml_node *
fchange_at(const struct wbxml_node *r, size_t i)
{
	struct wbxml_node *ch = wbxml_find(r, "Changes");
	struct wbxml_node *x = ch ? ch->first_child : NULL;
	for (; x != NULL; x = x->next) {
		if (strcmp(x->name, "Count") == 0)
			continue;
		if (i-- == 0)
			return x;
	}
	return NULL;
}

/* A Ping of dev on the (empty) trash: the answer's root. */
static struct wbxml_node *
cx_ping(struct cx *c, const char *dev)
{
	c->f.facts.device_id = dev;
	struct wbxml_node *r = cx_serve(c, EAS_CMD_PING, req_ping("300", "trash"));
	c->f.facts.device_id = "DEV1";
	assert_non_null(r);
	return r;
}

/*
 * A folder change by DEV1 (cmd FolderCreate/Update/Delete): key, then
 * ServerId (update, delete), ParentId and DisplayName (create, update),
 * Type (create; NULL: left out). The answer's root.
 */
static struct wbxml_node *
cx_fchange(struct cx *c, enum eas_cmd cmd, const char *key, const char *id, const char *parent,
           const char *name, const char *type)
{
	static const char *const roots[] = {"FolderHierarchy:FolderCreate",
	                                    "FolderHierarchy:FolderUpdate",
	                                    "FolderHierarchy:FolderDelete"};
	int k = cmd == EAS_CMD_FOLDERCREATE ? 0 : cmd == EAS_CMD_FOLDERUPDATE ? 1 : 2;
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(d, roots[k]);

	wbxml_addn_text(r, "SyncKey", key);
	if (id != NULL)
		wbxml_addn_text(r, "ServerId", id);
	if (parent != NULL)
		wbxml_addn_text(r, "ParentId", parent);
	if (name != NULL)
		wbxml_addn_text(r, "DisplayName", name);
	if (type != NULL)
		wbxml_addn_text(r, "Type", type);
	struct wbxml_node *a = cx_serve(c, cmd, d);
	assert_non_null(a);
	assert_string_equal(a->name, roots[k] + strlen("FolderHierarchy:"));
	return a;
}

/*
 * Folder changes on a real mailbox: a phone creates, renames/moves and
 * deletes mail folders (Status 1 and a new SyncKey, ServerId for a
 * create); its own next FolderSync reports nothing back, a second device
 * of the account sees each change (Add, Update with the same id, Delete of
 * the folder and the one below it); the renamed folder keeps its messages,
 * the deleted one's Sync state goes. Refusals: a stale key 9, a name taken
 * 2, no such parent 5, a name with the delimiter, empty or a non-mail type
 * 10; special folders 2 (update) and 3 (delete), unknown folders 4, a
 * folder moved below itself 5. A Ping of the other device, whose folders
 * are all there but changed since its FolderSync: 7 (FolderSync needed).
 */
static void
test_cursor_folders(void **state)
{
	struct cx c;
	char k1[80] = "0", k2[80] = "0", old[80], sk[80] = "0";
	struct wbxml_node *r, *x;
	const struct mbx_folder *mf;

	(void)state;
	cx_init(&c, 2);
	cx_fsync(&c, "DEV1", k1);
	cx_fsync(&c, "DEV2", k2);
	snprintf(old, sizeof(old), "%s", k1);

	/* create */
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", "Projects", "12");
	assert_string_equal(txt(r, "Status"), "1");
	assert_string_equal(txt(r, "ServerId"), "f1");
	assert_string_not_equal(txt(r, "SyncKey"), k1);
	snprintf(k1, sizeof(k1), "%s", txt(r, "SyncKey"));
	assert_non_null(mf = mbx_folder_find(c.mm, "f1"));
	assert_string_equal(mf->name, "Projects");
	assert_int_equal(mf->type, MBX_FOLDER_MAIL);
	r = cx_fsync(&c, "DEV1", k1);
	assert_string_equal(txt(r, "Changes/Count"), "0");
	assert_null(fchange_at(r, 0));
	/* a Ping: the device that made the change waits; the other must FolderSync (7) */
	assert_string_equal(txt(cx_ping(&c, "DEV1"), "Status"), "1");
	assert_string_equal(txt(cx_ping(&c, "DEV2"), "Status"), "7");
	r = cx_fsync(&c, "DEV2", k2);
	assert_string_equal(txt(r, "Changes/Count"), "1");
	x = fchange_at(r, 0);
	assert_string_equal(x->name, "Add");
	assert_string_equal(txt(x, "ServerId"), "f1");
	assert_string_equal(txt(x, "ParentId"), "0");
	assert_string_equal(txt(x, "DisplayName"), "Projects");
	assert_string_equal(txt(x, "Type"), "12");

	/* refusals of a create */
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, old, NULL, "0", "Other", "12");
	assert_string_equal(txt(r, "Status"), "9");
	assert_null(wbxml_find(r, "SyncKey"));
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", "PROJECTS", "12");
	assert_string_equal(txt(r, "Status"), "2");
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "nowhere", "Other", "12");
	assert_string_equal(txt(r, "Status"), "5");
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", "a/b", "12");
	assert_string_equal(txt(r, "Status"), "10");
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", "Calendar 2", "13");
	assert_string_equal(txt(r, "Status"), "10");
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", NULL, "12");
	assert_string_equal(txt(r, "Status"), "10");
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "0", "Other", NULL);
	assert_string_equal(txt(r, "Status"), "10");

	/* a child, a message in the parent, synced by DEV1 */
	r = cx_fchange(&c, EAS_CMD_FOLDERCREATE, k1, NULL, "f1", "Sub", "1");
	assert_string_equal(txt(r, "Status"), "1");
	assert_string_equal(txt(r, "ServerId"), "f2");
	snprintf(k1, sizeof(k1), "%s", txt(r, "SyncKey"));
	assert_int_equal(mbx_memory_append(c.mm, "f1", "bob@example.com", "kept", CX_NOW, 0), 1);
	assert_int_equal(mbx_memory_append(c.mm2, "f1", "bob@example.com", "kept", CX_NOW, 0), 1);
	cx_sync_coll(&c, "f1", sk);
	assert_int_equal(n_cmds(cx_sync_coll(&c, "f1", sk)), 1);
	assert_non_null(cx_blob(&c.f.mem, "f1"));

	/* rename and move to the top: same id, its message and its child kept */
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, k1, "f1", "0", "Work", NULL);
	assert_string_equal(txt(r, "Status"), "1");
	assert_null(wbxml_find(r, "ServerId"));
	snprintf(k1, sizeof(k1), "%s", txt(r, "SyncKey"));
	assert_string_equal(mbx_folder_find(c.mm, "f1")->name, "Work");
	assert_string_equal(mbx_folder_find(c.mm, "f2")->parent_id, "f1");
	assert_int_equal(mbx_memory_count(c.mm, "f1"), 1);
	assert_int_equal(n_cmds(cx_sync_coll(&c, "f1", sk)), 0); /* the cursor still holds */
	r = cx_fsync(&c, "DEV1", k1);
	assert_string_equal(txt(r, "Changes/Count"), "0");
	assert_string_equal(txt(cx_ping(&c, "DEV2"), "Status"), "7"); /* renamed since */
	r = cx_fsync(&c, "DEV2", k2);
	assert_string_equal(txt(r, "Changes/Count"), "2");
	for (size_t i = 0; i < 2; i++) {
		x = fchange_at(r, i);
		if (strcmp(x->name, "Update") == 0) {
			assert_string_equal(txt(x, "ServerId"), "f1");
			assert_string_equal(txt(x, "DisplayName"), "Work");
		} else {
			assert_string_equal(x->name, "Add");
			assert_string_equal(txt(x, "ServerId"), "f2");
			assert_string_equal(txt(x, "ParentId"), "f1");
		}
	}
	assert_string_equal(txt(cx_ping(&c, "DEV2"), "Status"), "1");

	/* refusals of an update */
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, k1, "inbox", "0", "Mail", NULL);
	assert_string_equal(txt(r, "Status"), "2");
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, k1, "nowhere", "0", "Mail", NULL);
	assert_string_equal(txt(r, "Status"), "4");
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, k1, "f1", "f2", "Work", NULL);
	assert_string_equal(txt(r, "Status"), "5");
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, k1, "f2", "0", "work", NULL);
	assert_string_equal(txt(r, "Status"), "2");
	r = cx_fchange(&c, EAS_CMD_FOLDERUPDATE, old, "f2", "0", "Top", NULL);
	assert_string_equal(txt(r, "Status"), "9");
	assert_string_equal(mbx_folder_find(c.mm, "f2")->parent_id, "f1");

	/* delete: the folder and the one below it, its Sync state gone */
	r = cx_fchange(&c, EAS_CMD_FOLDERDELETE, k1, "inbox", NULL, NULL, NULL);
	assert_string_equal(txt(r, "Status"), "3");
	r = cx_fchange(&c, EAS_CMD_FOLDERDELETE, k1, "nowhere", NULL, NULL, NULL);
	assert_string_equal(txt(r, "Status"), "4");
	r = cx_fchange(&c, EAS_CMD_FOLDERDELETE, old, "f1", NULL, NULL, NULL);
	assert_string_equal(txt(r, "Status"), "9");
	r = cx_fchange(&c, EAS_CMD_FOLDERDELETE, k1, "f1", NULL, NULL, NULL);
	assert_string_equal(txt(r, "Status"), "1");
	snprintf(k1, sizeof(k1), "%s", txt(r, "SyncKey"));
	assert_null(mbx_folder_find(c.mm, "f1"));
	assert_null(mbx_folder_find(c.mm, "f2"));
	assert_null(cx_blob(&c.f.mem, "f1"));
	r = cx_fsync(&c, "DEV1", k1);
	assert_string_equal(txt(r, "Changes/Count"), "0");
	r = cx_fsync(&c, "DEV2", k2);
	assert_string_equal(txt(r, "Changes/Count"), "2");
	assert_string_equal(fchange_at(r, 0)->name, "Delete");
	assert_string_equal(fchange_at(r, 1)->name, "Delete");
	cx_done(&c);
}

/* ---- Search ---- */

/*
 * A mailbox Search: FreeText (NULL: none), the CollectionId (NULL: none),
 * DateReceived bounds (NULL: none), Range (NULL: none); its Options in
 * *opts_r when asked.
 */
static struct wbxml_doc *
req_search(const char *store, const char *text, const char *folder, const char *after,
           const char *before, const char *range, struct wbxml_node **opts_r)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *st = wbxml_addn(wbxml_addn_root(d, "Search:Search"), "Store");
	struct wbxml_node *and;
	wbxml_addn_text(st, "Name", store);
	and = wbxml_addn(wbxml_addn(st, "Query"), "And");
	wbxml_addn_text(and, "AirSync:Class", "Email");
	if (folder != NULL)
		wbxml_addn_text(and, "AirSync:CollectionId", folder);
	if (text != NULL)
		wbxml_addn_text(and, "FreeText", text);
	if (after != NULL) {
		struct wbxml_node *g = wbxml_addn(and, "GreaterThan");
		wbxml_addn(g, "Email:DateReceived");
		wbxml_addn_text(g, "Value", after);
	}
	if (before != NULL) {
		struct wbxml_node *l = wbxml_addn(and, "LessThan");
		wbxml_addn(l, "Email:DateReceived");
		wbxml_addn_text(l, "Value", before);
	}
	struct wbxml_node *o = wbxml_addn(st, "Options");
	if (range != NULL)
		wbxml_addn_text(o, "Range", range);
	if (opts_r != NULL)
		*opts_r = o;
	return d;
}

/* t as EAS writes a date-time ("2023-11-14T22:15:00.000Z"). */
static void
eas_date_of(int64_t t, char out[40])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 40, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* The answer's Store (the top Status checked: 1). */
static struct wbxml_node *
cx_search(struct cx *c, struct wbxml_doc *req)
{
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SEARCH, req);
	assert_non_null(r);
	assert_string_equal(r->name, "Search");
	assert_string_equal(txt(r, "Status"), "1");
	struct wbxml_node *st = wbxml_find(r, "Response/Store");
	assert_non_null(st);
	return st;
}

/* The n-th Result (0-based) of a Store, or NULL. */
static struct wbxml_node *
result_at(const struct wbxml_node *st, size_t n)
{
	for (struct wbxml_node *x = st->first_child; x; x = x->next)
		if (strcmp(x->name, "Result") == 0 && n-- == 0)
			return x;
	return NULL;
}

/* How many Results a Store holds that carry an item. */
static size_t
n_results(const struct wbxml_node *st)
{
	size_t n = 0;
	for (struct wbxml_node *x; (x = result_at(st, n)) != NULL && x->first_child; n++)
		;
	return n;
}

static struct wbxml_doc *req_gal(const char *query, const char *range, const char *max_size,
                                 const char *max_pictures);

/*
 * Search of a real mailbox (both the synchronous and the pending memory
 * backend): FreeText words case-insensitively in subject, sender and body,
 * newest first, the Range cut from the matches and Total all of them; a
 * folder; DateReceived bounds; no match: one empty Result and Total 0; a
 * LongId the phone replies to (SmartReply) and fetches by its
 * CollectionId; GAL (none here): empty; other stores and queries the
 * statuses of MS-ASCMD.
 */
static void
test_search(void **state)
{
	struct cx c;
	struct wbxml_node *st, *x, *opts;
	struct wbxml_doc *d;
	char when[2][40], lid[300];

	(void)state;
	cx_init_send(&c, "16.1");
	/* five "msg N" a day apart and the two real messages (CX_NOW - 3600), one in trash */
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		for (int i = 1; i <= 5; i++) {
			char subj[32];
			snprintf(subj, sizeof(subj), "msg %d", i);
			mbx_memory_append(b, "inbox", "bob@example.com", subj,
			                  CX_NOW - (int64_t)(6 - i) * 86400, 0);
		}
		assert_int_equal(mbx_memory_append(b, "trash", "Carol <carol@example.com>",
		                                   "Lunch on Friday?", CX_NOW - 7200, 0),
		                 1);
	}

	/* a subject word, any case: newest first, Range and Total */
	st = cx_search(&c, req_search("Mailbox", "MSG", NULL, NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "1");
	assert_int_equal(n_results(st), 5);
	assert_string_equal(txt(st, "Range"), "0-4");
	assert_string_equal(txt(st, "Total"), "5");
	x = result_at(st, 0);
	assert_string_equal(txt(x, "AirSync:Class"), "Email");
	assert_string_equal(txt(x, "AirSync:CollectionId"), "inbox");
	assert_string_equal(txt(x, "LongId"), "inbox:7");
	assert_string_equal(txt(x, "Properties/Email:Subject"), "msg 5");
	assert_string_equal(txt(x, "Properties/Email:From"), "bob@example.com");
	assert_non_null(wbxml_find(x, "Properties/AirSyncBase:Body"));
	assert_string_equal(txt(result_at(st, 4), "Properties/Email:Subject"), "msg 1");
	/* a Range: the second and third; Total all */
	st = cx_search(&c, req_search("Mailbox", "msg", NULL, NULL, NULL, "1-2", NULL));
	assert_int_equal(n_results(st), 2);
	assert_string_equal(txt(st, "Range"), "1-2");
	assert_string_equal(txt(st, "Total"), "5");
	assert_string_equal(txt(result_at(st, 0), "Properties/Email:Subject"), "msg 4");
	assert_string_equal(txt(result_at(st, 1), "Properties/Email:Subject"), "msg 3");
	/* a Range past the matches: an empty Result, Total still counts */
	st = cx_search(&c, req_search("Mailbox", "msg", NULL, NULL, NULL, "10-19", NULL));
	assert_int_equal(n_results(st), 0);
	assert_non_null(result_at(st, 0));
	assert_null(wbxml_find(st, "Range"));
	assert_string_equal(txt(st, "Total"), "5");

	/* a sender, in the Deleted Items only; then the same word in the Inbox: none */
	st = cx_search(&c,
	               req_search("Mailbox", "carol@EXAMPLE.com", "trash", NULL, NULL, NULL, NULL));
	assert_int_equal(n_results(st), 1);
	assert_string_equal(txt(result_at(st, 0), "AirSync:CollectionId"), "trash");
	assert_string_equal(txt(result_at(st, 0), "LongId"), "trash:1");
	assert_string_equal(txt(result_at(st, 0), "Properties/Email:Subject"), "Lunch on Friday?");
	st = cx_search(&c, req_search("Mailbox", "lunch", "inbox", NULL, NULL, NULL, NULL));
	assert_int_equal(n_results(st), 0);
	assert_string_equal(txt(st, "Total"), "0");

	/* a body word of a real message (UTF-8), with the phone's BodyPreference */
	d = req_search("Mailbox", "ATTACHED Grüße", NULL, NULL, NULL, NULL, &opts);
	add_pref(opts, "2", NULL, false, NULL);
	st = cx_search(&c, d);
	assert_int_equal(n_results(st), 1);
	x = result_at(st, 0);
	assert_string_equal(txt(x, "Properties/Email:Subject"), "Re: Fwd: Quarterly report");
	assert_string_equal(txt(x, "Properties/AirSyncBase:Body/Type"), "2");
	snprintf(lid, sizeof(lid), "%s", txt(x, "LongId"));
	assert_string_equal(lid, "inbox:2");

	/* DateReceived bounds: strictly between 3.5 and 1.5 days ago */
	eas_date_of(CX_NOW - 3 * 86400 - 43200, when[0]);
	eas_date_of(CX_NOW - 86400 - 43200, when[1]);
	st = cx_search(&c, req_search("Mailbox", NULL, NULL, when[0], when[1], NULL, NULL));
	assert_int_equal(n_results(st), 2);
	assert_string_equal(txt(result_at(st, 0), "Properties/Email:Subject"), "msg 4");
	assert_string_equal(txt(result_at(st, 1), "Properties/Email:Subject"), "msg 3");
	assert_string_equal(txt(st, "Total"), "2");

	/* no match */
	st = cx_search(&c,
	               req_search("Mailbox", "nowhere-to-be-found", NULL, NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "1");
	assert_int_equal(n_results(st), 0);
	assert_non_null(result_at(st, 0));
	assert_string_equal(txt(st, "Total"), "0");

	/* the LongId: SmartReply to it, and its item fetched by CollectionId */
	d = req_compose("ComposeMail:SmartReply", false, NULL, NULL,
	                PHONE_MSG("anna@example.org", "Re: Quarterly report"));
	wbxml_addn_text(wbxml_addn(wbxml_doc_root(d), "Source"), "LongId", lid);
	cx_serve(&c, EAS_CMD_SMARTREPLY, d);
	assert_int_equal(c.f.out.http_status, 200);
	assert_non_null(strstr(cx_sent(&c, 0), "In-Reply-To:"));
	assert_true(mbx_memory_flags(c.mm, "inbox", 2) & MBX_MEM_ANSWERED);
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_item("2", &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "1");
	assert_string_equal(txt(x, "Response/Fetch/Properties/Email:Subject"),
	                    "Re: Fwd: Quarterly report");
	/* and by the LongId itself, with the phone's BodyPreference */
	d = req_fetch_longid(lid, NULL, NULL, &opts);
	add_pref(opts, "2", NULL, false, NULL);
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, d);
	assert_string_equal(txt(x, "Status"), "1");
	assert_string_equal(txt(x, "Response/Fetch/Status"), "1");
	assert_string_equal(txt(x, "Response/Fetch/LongId"), lid);
	assert_null(wbxml_find(x, "Response/Fetch/AirSync:ServerId"));
	assert_string_equal(txt(x, "Response/Fetch/AirSync:Class"), "Email");
	assert_string_equal(txt(x, "Response/Fetch/Properties/Email:Subject"),
	                    "Re: Fwd: Quarterly report");
	assert_string_equal(txt(x, "Response/Fetch/Properties/AirSyncBase:Body/Type"), "2");
	/* a LongId in the Deleted Items */
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid("trash:1", NULL, NULL, &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "1");
	assert_string_equal(txt(x, "Response/Fetch/Properties/Email:Subject"), "Lunch on Friday?");
	/* a LongId naming nothing, or none of ours: object not found (6) */
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid("inbox:999", NULL, NULL, &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "6");
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid("nowhere:2", NULL, NULL, &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "6");
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid("no-colon", NULL, NULL, &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "6");
	/* a LongId with a ServerId or a CollectionId, or none of them: protocol error (2) */
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(lid, "inbox", "2", &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "2");
	assert_null(wbxml_find(x, "Response/Fetch/Properties"));
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(lid, "inbox", NULL, &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "2");
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(lid, NULL, "2", &opts));
	assert_string_equal(txt(x, "Response/Fetch/Status"), "2");
	x = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(NULL, NULL, NULL, &opts));
	assert_string_equal(txt(x, "Status"), "1");
	assert_string_equal(txt(x, "Response/Fetch/Status"), "2");

	/* GAL: this mailbox's address list is empty: an empty answer */
	st = cx_search(&c, req_gal("anna", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "1");
	assert_int_equal(n_results(st), 0);
	assert_string_equal(txt(st, "Total"), "0");
	/* DocumentLibrary: not served (3); an unknown store, folder, date or Range: 2 */
	st = cx_search(&c, req_search("DocumentLibrary", "x", NULL, NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "3");
	st = cx_search(&c, req_search("Calendar", "x", NULL, NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	st = cx_search(&c, req_search("Mailbox", "x", "nowhere", NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	st = cx_search(&c, req_search("Mailbox", "x", NULL, "yesterday", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	st = cx_search(&c, req_search("Mailbox", "x", NULL, NULL, NULL, "5-1", NULL));
	assert_string_equal(txt(st, "Status"), "2");
	/* an Or of two conditions: too complex (8) */
	d = req_search("Mailbox", "msg", NULL, NULL, NULL, NULL, NULL);
	struct wbxml_node * or = wbxml_addn(wbxml_find(wbxml_doc_root(d), "Store/Query"), "Or");
	wbxml_addn_text(or, "FreeText", "a");
	wbxml_addn_text(or, "FreeText", "b");
	st = cx_search(&c, d);
	assert_string_equal(txt(st, "Status"), "8");
	cx_done(&c);
}

/*
 * Search of the quarantine mailbox (no search op: every item listed and
 * matched): a word of the alert finds it, at every version; another none.
 */
static void
test_search_quarantine(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVERSIONS; v++) {
		struct fx f;
		fx_init(&f, versions[v]);
		struct wbxml_node *r =
		    serve(&f, EAS_CMD_SEARCH,
		          req_search("Mailbox", "QUARANTINE", NULL, NULL, NULL, NULL, NULL));
		assert_string_equal(txt(r, "Status"), "1");
		struct wbxml_node *st = wbxml_find(r, "Response/Store");
		assert_string_equal(txt(st, "Status"), "1");
		assert_int_equal(n_results(st), 1);
		assert_string_equal(txt(result_at(st, 0), "AirSync:CollectionId"), MBX_Q_INBOX_ID);
		assert_non_null(strstr(txt(result_at(st, 0), "Properties/Email:Subject"),
		                       "has been put in quarantine"));
		assert_string_equal(txt(st, "Total"), "1");
		r = serve(&f, EAS_CMD_SEARCH,
		          req_search("Mailbox", "zebra", NULL, NULL, NULL, NULL, NULL));
		assert_int_equal(n_results(wbxml_find(r, "Response/Store")), 0);
		fx_done(&f);
	}
}

/* ---- the global address list ---- */

/* Four people (one with a photo) in the memory mailbox's address list. */
static void
gal_people(struct cx *c)
{
	static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00,
	                                     0x10, 'J',  'F',  'I',  'F'};
	const struct mbx_gal_entry people[] = {
	    {.display_name = "Ann Archer",
	     .email = "ann@example.com",
	     .first_name = "Ann",
	     .last_name = "Archer",
	     .alias = "ann",
	     .company = "Example",
	     .title = "CFO",
	     .office = "B2",
	     .phone = "+1 555 0100",
	     .mobile_phone = "+1 555 0101",
	     .picture = (unsigned char *)jpeg,
	     .picture_len = sizeof(jpeg)},
	    {.display_name = "Anna Bell",
	     .email = "anna@example.com",
	     .first_name = "Anna",
	     .last_name = "Bell"},
	    {.display_name = "Andy Cole",
	     .email = "andy@example.com",
	     .first_name = "Andy",
	     .last_name = "Cole",
	     .home_phone = "+1 555 0200"},
	    {.display_name = "Bob Dunn",
	     .email = "bob@example.com",
	     .first_name = "Bob",
	     .last_name = "Dunn"},
	};
	for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
		mbx_memory_add_gal(c->mm, &people[i]);
		mbx_memory_add_gal(c->mm2, &people[i]);
	}
}

static struct wbxml_doc *
req_gal(const char *query, const char *range, const char *max_size, const char *max_pictures)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *st = wbxml_addn(wbxml_addn_root(d, "Search:Search"), "Store");
	struct wbxml_node *o;

	wbxml_addn_text(st, "Name", "GAL");
	if (query != NULL)
		wbxml_addn_text(st, "Query", query);
	o = wbxml_addn(st, "Options");
	if (range != NULL)
		wbxml_addn_text(o, "Range", range);
	if (max_size != NULL || max_pictures != NULL) {
		struct wbxml_node *p = wbxml_addn(o, "Picture");
		if (max_size != NULL)
			wbxml_addn_text(p, "MaxSize", max_size);
		if (max_pictures != NULL)
			wbxml_addn_text(p, "MaxPictures", max_pictures);
	}
	return d;
}

/*
 * Search GAL: names and addresses beginning with the Query, any case, by
 * display name; the Range and Total; only the properties an entry has;
 * pictures (14.1) within MaxSize and MaxPictures; no match: one empty
 * Result, Total 0; an empty Query or a bad Range: Store Status 2; before
 * 14.1 no Picture even when asked.
 */
static void
test_gal_search(void **state)
{
	struct cx c;
	struct wbxml_node *st, *x;

	(void)state;
	cx_init_send(&c, "16.1");
	gal_people(&c);
	st = cx_search(&c, req_gal("AN", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "1");
	assert_string_equal(txt(st, "Range"), "0-2");
	assert_string_equal(txt(st, "Total"), "3");
	x = result_at(st, 0);
	assert_string_equal(txt(x, "Properties/GAL:DisplayName"), "Andy Cole");
	assert_string_equal(txt(x, "Properties/GAL:EmailAddress"), "andy@example.com");
	assert_string_equal(txt(x, "Properties/GAL:HomePhone"), "+1 555 0200");
	assert_null(wbxml_find(x, "Properties/GAL:Title")); /* none: not sent empty */
	assert_null(wbxml_find(x, "Properties/GAL:Picture"));
	x = result_at(st, 1);
	assert_string_equal(txt(x, "Properties/GAL:DisplayName"), "Ann Archer");
	assert_string_equal(txt(x, "Properties/GAL:Company"), "Example");
	assert_string_equal(txt(x, "Properties/GAL:Title"), "CFO");
	assert_string_equal(txt(x, "Properties/GAL:Office"), "B2");
	assert_string_equal(txt(x, "Properties/GAL:Phone"), "+1 555 0100");
	assert_string_equal(txt(x, "Properties/GAL:MobilePhone"), "+1 555 0101");
	assert_string_equal(txt(x, "Properties/GAL:Alias"), "ann");
	assert_string_equal(txt(x, "Properties/GAL:FirstName"), "Ann");
	assert_string_equal(txt(x, "Properties/GAL:LastName"), "Archer");
	assert_string_equal(txt(result_at(st, 2), "Properties/GAL:DisplayName"), "Anna Bell");
	/* a last name, an address; the Range's second only */
	st = cx_search(&c, req_gal("dunn", NULL, NULL, NULL));
	assert_string_equal(txt(result_at(st, 0), "Properties/GAL:DisplayName"), "Bob Dunn");
	st = cx_search(&c, req_gal("anna@", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Total"), "1");
	st = cx_search(&c, req_gal("an", "1-1", NULL, NULL));
	assert_string_equal(txt(st, "Range"), "1-1");
	assert_string_equal(txt(st, "Total"), "3");
	assert_string_equal(txt(result_at(st, 0), "Properties/GAL:DisplayName"), "Ann Archer");
	assert_null(result_at(st, 1));
	/* nobody */
	st = cx_search(&c, req_gal("zed", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "1");
	assert_string_equal(txt(st, "Total"), "0");
	assert_non_null(result_at(st, 0));
	assert_null(wbxml_find(result_at(st, 0), "Properties"));
	/* pictures: the one there is, within MaxSize; too large; MaxPictures 0 */
	st = cx_search(&c, req_gal("ann a", NULL, "1000", NULL));
	x = result_at(st, 0);
	assert_string_equal(txt(x, "Properties/GAL:Picture/GAL:Status"), "1");
	assert_string_equal(txt(x, "Properties/GAL:Picture/GAL:Data"), "/9j/4AAQSkZJRg==");
	st = cx_search(&c, req_gal("ann a", NULL, "4", NULL));
	assert_string_equal(txt(result_at(st, 0), "Properties/GAL:Picture/GAL:Status"), "174");
	st = cx_search(&c, req_gal("ann a", NULL, "1000", "0"));
	assert_string_equal(txt(result_at(st, 0), "Properties/GAL:Picture/GAL:Status"), "175");
	st = cx_search(&c, req_gal("bob", NULL, "1000", NULL));
	assert_string_equal(txt(result_at(st, 0), "Properties/GAL:Picture/GAL:Status"), "173");
	/* refused queries */
	st = cx_search(&c, req_gal("", NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	st = cx_search(&c, req_gal(NULL, NULL, NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	st = cx_search(&c, req_gal("an", "5-1", NULL, NULL));
	assert_string_equal(txt(st, "Status"), "2");
	/* 14.0 has no pictures */
	c.f.version = "14.0";
	st = cx_search(&c, req_gal("ann a", NULL, "1000", NULL));
	assert_null(wbxml_find(result_at(st, 0), "Properties/GAL:Picture"));
	cx_done(&c);
}

static struct wbxml_doc *
req_resolve(const char *const *to, size_t n, const char *cert, const char *ambiguous,
            bool availability, const char *max_size)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(d, "ResolveRecipients:ResolveRecipients"), *o;

	for (size_t i = 0; i < n; i++)
		wbxml_addn_text(r, "To", to[i]);
	o = wbxml_addn(r, "Options");
	if (cert != NULL)
		wbxml_addn_text(o, "CertificateRetrieval", cert);
	if (ambiguous != NULL)
		wbxml_addn_text(o, "MaxAmbiguousRecipients", ambiguous);
	if (availability) {
		struct wbxml_node *a = wbxml_addn(o, "Availability");
		wbxml_addn_text(a, "StartTime", "2026-12-07T08:00:00.000Z");
		wbxml_addn_text(a, "EndTime", "2026-12-07T18:00:00.000Z");
	}
	if (max_size != NULL)
		wbxml_addn_text(wbxml_addn(o, "Picture"), "MaxSize", max_size);
	return d;
}

/* The i-th Response (0-based) of a ResolveRecipients answer. */
static struct wbxml_node *
response_at(struct wbxml_node *r, size_t i)
{
	for (struct wbxml_node *x = r->first_child; x; x = x->next)
		if (strcmp(x->name, "Response") == 0 && i-- == 0)
			return x;
	return NULL;
}

/*
 * ResolveRecipients: an address exactly (1), a unique name (1), an
 * ambiguous one with every suggestion (2) or fewer than there are (3),
 * nobody (4, also for an unknown address); certificates (7: none kept) and
 * free/busy (163) when asked; a picture; Status 5 for no To, 101 of them or
 * one over 256 bytes.
 */
static void
test_resolverecipients(void **state)
{
	struct cx c;
	struct wbxml_node *r, *x;
	const char *to[] = {"Bob@Example.com", "archer", "an", "zed", "nobody@example.org"};
	char *many[101], big[300];

	(void)state;
	cx_init_send(&c, "16.1");
	gal_people(&c);
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS, req_resolve(to, 5, "2", NULL, true, NULL));
	assert_non_null(r);
	assert_string_equal(txt(r, "Status"), "1");
	x = response_at(r, 0);
	assert_string_equal(txt(x, "To"), "Bob@Example.com");
	assert_string_equal(txt(x, "Status"), "1");
	assert_string_equal(txt(x, "RecipientCount"), "1");
	assert_string_equal(txt(x, "Recipient/Type"), "1");
	assert_string_equal(txt(x, "Recipient/DisplayName"), "Bob Dunn");
	assert_string_equal(txt(x, "Recipient/EmailAddress"), "bob@example.com");
	assert_string_equal(txt(x, "Recipient/Certificates/Status"), "7");
	assert_string_equal(txt(x, "Recipient/Certificates/CertificateCount"), "0");
	assert_string_equal(txt(x, "Recipient/Availability/Status"), "163");
	x = response_at(r, 1);
	assert_string_equal(txt(x, "Status"), "1");
	assert_string_equal(txt(x, "Recipient/EmailAddress"), "ann@example.com");
	x = response_at(r, 2);
	assert_string_equal(txt(x, "Status"), "2");
	assert_string_equal(txt(x, "RecipientCount"), "3");
	x = response_at(r, 3);
	assert_string_equal(txt(x, "Status"), "4");
	assert_string_equal(txt(x, "RecipientCount"), "0");
	assert_null(wbxml_find(x, "Recipient"));
	assert_string_equal(txt(response_at(r, 4), "Status"), "4");
	assert_null(response_at(r, 5));
	/* fewer suggestions than matches: 3; no certificates asked: none written */
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS, req_resolve(to + 2, 1, "1", "2", false, NULL));
	x = response_at(r, 0);
	assert_string_equal(txt(x, "Status"), "3");
	assert_string_equal(txt(x, "RecipientCount"), "2");
	assert_null(wbxml_find(x, "Recipient/Certificates"));
	assert_null(wbxml_find(x, "Recipient/Availability"));
	/* a picture */
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS,
	             req_resolve(to + 1, 1, NULL, NULL, false, "64"));
	assert_string_equal(txt(response_at(r, 0), "Recipient/Picture/Status"), "1");
	assert_string_equal(txt(response_at(r, 0), "Recipient/Picture/Data"), "/9j/4AAQSkZJRg==");
	/* refused */
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS, req_resolve(to, 0, NULL, NULL, false, NULL));
	assert_string_equal(txt(r, "Status"), "5");
	assert_null(response_at(r, 0));
	for (size_t i = 0; i < 101; i++)
		many[i] = "ann";
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS,
	             req_resolve((const char *const *)many, 101, NULL, NULL, false, NULL));
	assert_string_equal(txt(r, "Status"), "5");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	to[0] = big;
	r = cx_serve(&c, EAS_CMD_RESOLVERECIPIENTS, req_resolve(to, 1, NULL, NULL, false, NULL));
	assert_string_equal(txt(r, "Status"), "5");
	cx_done(&c);
}

/* ---- contacts, calendars and tasks through a codec ---- */

/*
 * A stand-in for native mode's conversions (src/pim, tested on their own):
 * an object is "FN:<name>\n" then other lines; FN is Contacts:FileAs, the
 * rest is kept as the server has it. An object holding "BROKEN" cannot be
 * read; a FileAs "reject" cannot be written. It counts its calls.
 */
static int codec_to, codec_from;
static bool codec_sup_given;
static size_t codec_n_sup;
static uint16_t codec_sup0;

static int
t_to_eas(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
         const struct mbx_pim_opts *o, const char **errstr)
{
	char name[128];

	(void)o;
	codec_to++;
	if (c != MBX_CLASS_CONTACTS || memmem(data, len, "BROKEN", 6) != NULL ||
	    sscanf(data, "FN:%127[^\n]", name) != 1) {
		*errstr = "not a test card";
		return -1;
	}
	wbxml_addn_text(appdata, "Contacts:FileAs", name);
	return 0;
}

static int
t_from_eas(enum mbx_class c, const struct wbxml_node *appdata, const char *old, size_t old_len,
           const struct mbx_pim_opts *o, char **out, size_t *out_len,
           char uid_r[MBX_PIM_UID_MAX + 1], const char **errstr)
{
	const char *name = wbxml_find_text(appdata, "Contacts:FileAs");
	const char *rest = old ? memchr(old, '\n', old_len) : NULL;

	codec_from++;
	codec_sup_given = o->supported_given;
	codec_n_sup = o->n_supported;
	codec_sup0 = o->n_supported ? o->supported[0] : 0;
	if (c != MBX_CLASS_CONTACTS || name == NULL || strcmp(name, "reject") == 0) {
		*errstr = "no FileAs";
		return -1;
	}
	*out = xasprintf("FN:%s\n%s", name, rest ? rest + 1 : "UID:new\n");
	*out_len = strlen(*out);
	snprintf(uid_r, MBX_PIM_UID_MAX + 1, "uid-%s", name);
	return 0;
}

static const struct mbx_pim_codec test_codec = {.to_eas = t_to_eas, .from_eas = t_from_eas};

/* A Sync of contacts folder coll with the device's commands (NULL: none). */
static struct wbxml_node *
pim_sync_in(struct cx *c, const char *coll, const char *key,
            void (*commands)(struct wbxml_node *cmds, void *arg), void *arg)
{
	struct wbxml_doc *d = req_sync(key, coll, 0, 0, 0, true);
	if (commands != NULL) {
		struct wbxml_node *cn = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		commands(wbxml_addn(cn, "Commands"), arg);
	}
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SYNC, d);
	assert_non_null(r);
	return wbxml_find(r, "Collections/Collection");
}

static struct wbxml_node *
pim_sync(struct cx *c, const char *key, void (*commands)(struct wbxml_node *cmds, void *arg),
         void *arg)
{
	return pim_sync_in(c, "contacts", key, commands, arg);
}

/* The FileAs of every Add (k 0) or Change (k 1) of a Sync answer's Commands, joined by ','. */
static void
pim_list(const struct wbxml_node *co, int k, char *buf, size_t size)
{
	const struct wbxml_node *cmds = wbxml_find(co, "Commands");
	buf[0] = '\0';
	for (const struct wbxml_node *x = cmds ? cmds->first_child : NULL; x; x = x->next) {
		if (strcmp(x->name, k == 0 ? "Add" : "Change") != 0)
			continue;
		const char *n = wbxml_find_text(x, "ApplicationData/Contacts:FileAs");
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "," : "",
		         n ? n : "?");
	}
}

struct pim_cmd {
	const char *what, *sid, *cid, *name;
};

static void
add_cmds(struct wbxml_node *cmds, void *arg)
{
	for (const struct pim_cmd *p = arg; p->what != NULL; p++) {
		struct wbxml_node *x = wbxml_addn(cmds, p->what);
		if (p->cid)
			wbxml_addn_text(x, "ClientId", p->cid);
		if (p->sid)
			wbxml_addn_text(x, "ServerId", p->sid);
		if (p->name)
			wbxml_addn_text(wbxml_addn(x, "ApplicationData"), "Contacts:FileAs",
			                p->name);
	}
}

/* The Status of the Responses element what (Add/Change/Fetch) for id (ClientId or ServerId). */
static const char *
response_status(const struct wbxml_node *co, const char *what, const char *id)
{
	const struct wbxml_node *rs = wbxml_find(co, "Responses");
	for (const struct wbxml_node *x = rs ? rs->first_child : NULL; x; x = x->next) {
		const char *a = wbxml_find_text(x, "ClientId"), *b = wbxml_find_text(x, "ServerId");
		if (strcmp(x->name, what) == 0 &&
		    ((a && strcmp(a, id) == 0) || (b && strcmp(b, id) == 0)))
			return wbxml_find_text(x, "Status");
	}
	return NULL;
}

/*
 * A contacts folder synced through the codec: the initial Sync adds every
 * object converted; a change on the server comes as a Change with the whole
 * item; the device's Add is written (a ServerId, Status 1) and not echoed;
 * its Change applied onto the server's object (what the codec keeps stays);
 * a Change from a version the server no longer has is Status 7 and the
 * server's version comes back as a Change; a Delete removes it; a Fetch
 * answers the item; an object that cannot be read is left out, one the
 * device sends that cannot be written is Status 6; without a codec the
 * device's writes are Status 5.
 */
static void
test_pim_sync(void **state)
{
	struct cx c;
	struct wbxml_node *co;
	char key[80], list[256], sid[80];
	const char *err;
	uint32_t ann, bob;

	(void)state;
	cx_init(&c, 0);
	c.pim = &test_codec;
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		assert_int_equal(
		    mbx_memory_add_folder(b, "contacts", "0", "Contacts", MBX_FOLDER_CONTACTS, 5),
		    0);
		ann = mbx_memory_append_raw(b, "contacts", "FN:Ann\nTEL:1\n", 13, 0, 0);
		bob = mbx_memory_append_raw(b, "contacts", "FN:Bob\nTEL:2\n", 13, 0, 0);
		assert_int_not_equal(mbx_memory_append_raw(b, "contacts", "BROKEN\n", 7, 0, 0), 0);
	}
	co = pim_sync(&c, "0", NULL, NULL);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = pim_sync(&c, key, NULL, NULL);
	assert_string_equal(txt(co, "Status"), "1");
	pim_list(co, 0, list, sizeof(list));
	assert_string_equal(list, "Bob,Ann"); /* the broken one left out, newest first */
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* changed on the server: a Change with the whole item */
	for (int k = 0; k < 2; k++)
		assert_int_equal(mbx_memory_replace(k ? c.mm2 : c.mm, "contacts", ann,
		                                    "FN:Ann Archer\nTEL:1\n", 20),
		                 1);
	co = pim_sync(&c, key, NULL, NULL);
	pim_list(co, 1, list, sizeof(list));
	assert_string_equal(list, "Ann Archer");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* the device adds one and changes Bob: written, not echoed */
	snprintf(sid, sizeof(sid), "%u", bob);
	struct pim_cmd cmds1[] = {
	    {"Add", NULL, "c1", "Carol"}, {"Change", sid, NULL, "Bobby"}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds1);
	assert_string_equal(response_status(co, "Add", "c1"), "1");
	assert_non_null(wbxml_find(co, "Responses/Add/ServerId"));
	assert_null(
	    response_status(co, "Change", sid)); /* a Change that went through: no Response */
	assert_null(wbxml_find(co, "Commands"));
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	struct mbx_object o;
	assert_int_equal(mbx_fetch_object(c.mm, "contacts", sid, &o, &err), 1);
	assert_string_equal(o.data, "FN:Bobby\nTEL:2\n"); /* the rest kept */
	mbx_object_clear(&o);
	co = pim_sync(&c, key, NULL, NULL);
	assert_null(wbxml_find(co, "Commands"));

	/* a conflict: changed on the server after the device's version */
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	for (int k = 0; k < 2; k++)
		assert_int_equal(
		    mbx_memory_replace(k ? c.mm2 : c.mm, "contacts", bob, "FN:Robert\nTEL:2\n", 17),
		    1);
	/* the device's Change of the version it has: the server's newer one wins (7) */
	struct pim_cmd cmds2[] = {{"Change", sid, NULL, "Bob B."}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds2);
	assert_string_equal(response_status(co, "Change", sid), "7");
	pim_list(co, 1, list, sizeof(list));
	assert_string_equal(list, "Robert"); /* and comes to the device in the same answer */
	assert_int_equal(mbx_fetch_object(c.mm, "contacts", sid, &o, &err), 1);
	assert_string_equal(o.data, "FN:Robert\nTEL:2\n"); /* nothing of the device's over it */
	mbx_object_clear(&o);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	/* now that the device has it, its Change goes through */
	struct pim_cmd cmds2b[] = {{"Change", sid, NULL, "Bob B."}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds2b);
	assert_null(response_status(co, "Change", sid));
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* Fetch, then Delete */
	struct pim_cmd cmds3[] = {{"Fetch", sid, NULL, NULL}, {"Delete", sid, NULL, NULL}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds3);
	assert_string_equal(response_status(co, "Fetch", sid), "1");
	assert_string_equal(txt(co, "Responses/Fetch/ApplicationData/Contacts:FileAs"), "Bob B.");
	assert_int_equal(mbx_fetch_object(c.mm, "contacts", sid, &o, &err), 0);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = pim_sync(&c, key, NULL, NULL);
	assert_null(wbxml_find(co, "Commands")); /* its own delete not echoed */

	/* what cannot be written: 6; a Change of an item that is not there: 8 */
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	/* ItemOperations Fetch of a contact: its Class and Properties; of none: 6 */
	struct wbxml_node *opts;
	snprintf(sid, sizeof(sid), "%u", ann);
	struct wbxml_node *io =
	    cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(NULL, "contacts", sid, &opts));
	assert_string_equal(txt(io, "Response/Fetch/Status"), "1");
	assert_string_equal(txt(io, "Response/Fetch/AirSync:Class"), "Contacts");
	assert_string_equal(txt(io, "Response/Fetch/Properties/Contacts:FileAs"), "Ann Archer");
	io = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(NULL, "contacts", "999", &opts));
	assert_string_equal(txt(io, "Response/Fetch/Status"), "6");
	/* without a CollectionId, an e-mail's lookup passes the contacts by */
	io = cx_serve(&c, EAS_CMD_ITEMOPERATIONS, req_fetch_longid(NULL, NULL, sid, &opts));
	assert_string_equal(txt(io, "Status"), "1");

	struct pim_cmd cmds4[] = {{"Add", NULL, "c2", "reject"}, {"Change", "999", NULL, "X"}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds4);
	assert_string_equal(response_status(co, "Add", "c2"), "6");
	assert_string_equal(response_status(co, "Change", "999"), "8");

	/* ghosting: the Supported of the folder's first Sync reaches the codec with each Change */
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	assert_false(codec_sup_given);
	for (int k = 0; k < 2; k++)
		assert_int_equal(mbx_memory_add_folder(k ? c.mm2 : c.mm, "book2", "0", "Other",
		                                       MBX_FOLDER_USER_CONTACTS, 6),
		                 0);
	struct wbxml_doc *d0 = req_sync("0", "book2", 0, 0, 0, false);
	struct wbxml_node *sup =
	    wbxml_addn(wbxml_find(wbxml_doc_root(d0), "Collections/Collection"), "Supported");
	wbxml_addn(sup, "Contacts:FileAs");
	wbxml_addn(sup, "Contacts:JobTitle");
	co = wbxml_find(cx_serve(&c, EAS_CMD_SYNC, d0), "Collections/Collection");
	char key2[80];
	snprintf(key2, sizeof(key2), "%s", txt(co, "SyncKey"));
	struct pim_cmd cmds6[] = {{"Add", NULL, "c9", "Fay"}, {0}};
	co = pim_sync_in(&c, "book2", key2, add_cmds, cmds6);
	assert_true(codec_sup_given);
	assert_int_equal(codec_n_sup, 2);
	assert_int_equal(codec_sup0, (WBXML_PAGE_CONTACTS << 8) | 0x1E); /* Contacts:FileAs */

	/* no codec: the device's writes are refused (5), nothing written */
	c.pim = NULL;
	size_t n_before = mbx_memory_count(c.mm, "contacts");
	struct pim_cmd cmds5[] = {{"Add", NULL, "c3", "Dan"}, {0}};
	co = pim_sync(&c, key, add_cmds, cmds5);
	assert_string_equal(response_status(co, "Add", "c3"), "5");
	assert_int_equal(mbx_memory_count(c.mm, "contacts"), n_before);
	cx_done(&c);
}

/* ---- invitations in mail (the codec's meeting) ---- */

static int meeting_calls;
static char meeting_email[64];

/* A meeting hook that knows meeting_request.eml's invitation and nothing else. */
static int
t_meeting(const char *ics, size_t len, struct wbxml_node *appdata, const struct mbx_pim_opts *o,
          const char **errstr)
{
	meeting_calls++;
	snprintf(meeting_email, sizeof(meeting_email), "%s", o->email ? o->email : "");
	if (len == 0 || strstr(ics, "UID:meeting-1@example.com") == NULL) {
		*errstr = "not known";
		return -1;
	}
	struct wbxml_node *mr = wbxml_addn(appdata, "Email:MeetingRequest");
	wbxml_addn_text(mr, "Email:StartTime", "2026-03-20T10:00:00.000Z");
	return 1;
}

static int
t_meeting_refuse(const char *ics, size_t len, struct wbxml_node *appdata,
                 const struct mbx_pim_opts *o, const char **errstr)
{
	(void)ics;
	(void)len;
	(void)appdata;
	(void)o;
	meeting_calls++;
	*errstr = "unreadable";
	return -1;
}

/*
 * A mail with an invitation: with a codec that reads it, the class and
 * Email:MeetingRequest (the account's address given as the user's);
 * with one that cannot, a plain mail; without one, the class alone.
 */
static void
test_meeting_request_mail(void **state)
{
	static const struct mbx_pim_codec reads = {
	    .to_eas = t_to_eas, .from_eas = t_from_eas, .meeting = t_meeting};
	static const struct mbx_pim_codec refuses = {
	    .to_eas = t_to_eas, .from_eas = t_from_eas, .meeting = t_meeting_refuse};
	const struct mbx_pim_codec *codecs[] = {&reads, &refuses, NULL};

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		struct cx c;
		char key[80];
		struct wbxml_node *coll, *r;

		cx_init(&c, 0);
		c.pim = codecs[k];
		meeting_calls = 0;
		meeting_email[0] = '\0';
		assert_int_equal(cx_deliver(&c, "meeting_request.eml"), 1);
		assert_int_equal(cx_deliver(&c, "alternative.eml"), 2);
		cx_prime(&c, key);
		snprintf(key, sizeof(key), "0");
		cx_sync(&c, key, 100, -1, -1);
		struct wbxml_doc *d = cx_req(key, 100, -1, -1, &coll);
		add_pref(wbxml_addn(coll, "Options"), "1", NULL, false, NULL);
		meeting_calls = 0;
		r = cx_serve(&c, EAS_CMD_SYNC, d);
		struct wbxml_node *co = wbxml_find(r, "Collections/Collection");
		assert_int_equal(n_cmds(co), 2);
		struct wbxml_node *inv = wbxml_find(cmd_at(co, 1), "ApplicationData");
		struct wbxml_node *plain = wbxml_find(cmd_at(co, 0), "ApplicationData");
		assert_string_equal(txt(cmd_at(co, 1), "ServerId"), "1");
		assert_string_equal(txt(plain, "Email:MessageClass"), "IPM.Note");
		assert_null(wbxml_find(plain, "Email:MeetingRequest"));
		if (k == 0) {
			assert_string_equal(txt(inv, "Email:MessageClass"),
			                    "IPM.Schedule.Meeting.Request");
			assert_string_equal(txt(inv, "Email:ContentClass"),
			                    "urn:content-classes:calendarmessage");
			assert_string_equal(txt(inv, "Email:MeetingRequest/Email:StartTime"),
			                    "2026-03-20T10:00:00.000Z");
			assert_string_equal(meeting_email, "alice@example.com");
		} else if (k == 1) {
			assert_string_equal(txt(inv, "Email:MessageClass"), "IPM.Note");
			assert_string_equal(txt(inv, "Email:ContentClass"),
			                    "urn:content-classes:message");
			assert_null(wbxml_find(inv, "Email:MeetingRequest"));
		} else {
			assert_string_equal(txt(inv, "Email:MessageClass"),
			                    "IPM.Schedule.Meeting.Request");
			assert_null(wbxml_find(inv, "Email:MeetingRequest"));
		}
		/* this Sync: only the invitation asks the hook, once per mailbox of the pair */
		assert_int_equal(meeting_calls, k < 2 ? 2 : 0);
		cx_done(&c);
	}
}

/* ---- MeetingResponse ---- */

/* An answer for meeting_request.eml's invitation (and the calendar objects made of it). */
static int
t_respond(const char *ics, size_t len, const char *user, int answer, const char *instance,
          int64_t now, struct mbx_meeting_answer *out, const char **errstr)
{
	static const char *const ps[] = {"", "ACCEPTED", "TENTATIVE", "DECLINED"};

	(void)now;
	memset(out, 0, sizeof(*out));
	if (len == 0 || strstr(ics, "UID:meeting-1@example.com") == NULL) {
		*errstr = "no invitation";
		return -1;
	}
	/* the invitation's start (an updated one moves the meeting) and SEQUENCE, kept */
	const char *st = strstr(ics, "DTSTART:"), *sq = strstr(ics, "SEQUENCE:");
	int stl = st ? (int)strcspn(st, "\r\n") : 0, sql = sq ? (int)strcspn(sq, "\r\n") : 0;
	if (answer != 3 || instance != NULL)
		out->object =
		    xasprintf("BEGIN:VCALENDAR\nUID:meeting-1@example.com\nATTENDEE;PARTSTAT=%s:"
		              "mailto:%s\n%.*s%s%.*s%s%s%s%sEND:VCALENDAR\n",
		              ps[answer], user, stl, st ? st : "", st ? "\n" : "", sql,
		              sq ? sq : "", sq ? "\n" : "", instance ? "INSTANCE:" : "",
		              instance ? instance : "", instance ? "\n" : "");
	out->reply = xasprintf("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nATTENDEE;PARTSTAT=%s:mailto:%s"
	                       "\r\n%.*s%s%.*s%sEND:VCALENDAR\r\n",
	                       ps[answer], user, stl, st ? st : "", st ? "\r\n" : "", sql,
	                       sq ? sq : "", sq ? "\r\n" : "");
	out->organizer = xstrdup("anna@example.org");
	out->uid = xstrdup("meeting-1@example.com");
	out->summary = xstrdup("Planning");
	return 0;
}

/* A calendar object of t_respond's as a calendar item: its UID and the user's answer. */
static int
t_cal_to_eas(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
             const struct mbx_pim_opts *o, const char **errstr)
{
	(void)o;
	if (c != MBX_CLASS_CALENDAR || memmem(data, len, "UID:meeting-1@example.com", 25) == NULL) {
		*errstr = "not a test event";
		return -1;
	}
	wbxml_addn_text(appdata, "Calendar:UID", "meeting-1@example.com");
	wbxml_addn_text(appdata, "Calendar:ResponseType",
	                memmem(data, len, "=ACCEPTED", 9) ? "3" : "2");
	return 0;
}

/* The SEQUENCE of a text (0 when none). */
static long
t_sequence(const char *s, size_t len)
{
	const char *p = memmem(s, len, "SEQUENCE:", 9);

	return p ? strtol(p + 9, NULL, 10) : 0;
}

/* The calendar's object newer than the invitation: the higher SEQUENCE alone. */
static int
t_newer(const char *held, size_t held_len, const char *ics, size_t len)
{
	return t_sequence(held, held_len) > t_sequence(ics, len);
}

static const struct mbx_pim_codec respond_codec = {
    .to_eas = t_cal_to_eas, .from_eas = t_from_eas, .respond = t_respond, .newer = t_newer};

/* A MeetingResponse of one Request. */
static struct wbxml_doc *
req_meeting(const char *answer, const char *coll, const char *id, bool send)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *r =
	    wbxml_addn(wbxml_addn_root(d, "MeetingResponse:MeetingResponse"), "Request");

	wbxml_addn_text(r, "UserResponse", answer);
	if (coll != NULL)
		wbxml_addn_text(r, "CollectionId", coll);
	if (id != NULL)
		wbxml_addn_text(r, "RequestId", id);
	if (send)
		wbxml_addn(r, "SendResponse");
	return d;
}

static void
primed(void *arg)
{
	(void)arg;
}

/* The calendar object id of both mailboxes (they must be the same), or NULL. */
static char *
cal_object(struct cx *c, const char *id)
{
	struct mbx_object o[2];
	const char *err;

	mbx_wait(c->mm2, primed, NULL); /* the pending one answers from now on */
	for (int k = 0; k < 2; k++) {
		memset(&o[k], 0, sizeof(o[k]));
		if (mbx_fetch_object(k ? c->mm2 : c->mm, "cal", id, &o[k], &err) != 1) {
			mbx_object_clear(&o[0]);
			return NULL;
		}
	}
	assert_string_equal(o[0].data, o[1].data);
	mbx_object_clear(&o[1]);
	free(o[0].etag);
	return o[0].data;
}

/*
 * An empty calendar "cal" in both mailboxes, announced by a FolderSync and
 * synced by the device (its first two Syncs: nothing in it); its SyncKey
 * into key.
 */
static void
meeting_calendar(struct cx *c, char key[80])
{
	struct wbxml_node *co;

	for (int k = 0; k < 2; k++)
		assert_int_equal(mbx_memory_add_folder(k ? c->mm2 : c->mm, "cal", "0", "Calendar",
		                                       MBX_FOLDER_CALENDAR, 3),
		                 0);
	assert_non_null(cx_serve(c, EAS_CMD_FOLDERSYNC, req_foldersync("0")));
	co = pim_sync_in(c, "cal", "0", NULL, NULL);
	snprintf(key, 80, "%s", txt(co, "SyncKey"));
	co = pim_sync_in(c, "cal", key, NULL, NULL);
	assert_null(wbxml_find(co, "Commands"));
	snprintf(key, 80, "%s", txt(co, "SyncKey"));
}

/*
 * A mailbox with the meeting request mail (item 1 of the inbox), the
 * stand-in PIM codec, the inbox primed and the empty calendar synced; the
 * calendar's SyncKey into key.
 */
static void
meeting_cx(struct cx *c, char key[80])
{
	cx_init(c, 0);
	c->pim = &respond_codec;
	assert_int_equal(cx_deliver(c, "meeting_request.eml"), 1);
	cx_prime(c, key);
	meeting_calendar(c, key);
}
/*
 * MeetingResponse: accepting a meeting request mail writes the event to the
 * default calendar with the user's PARTSTAT (Status 1, its CalendarId),
 * which the device's next Sync of the calendar brings; answering that
 * calendar item again changes it in place (the device's own change, not
 * echoed); declining it removes it; a
 * declined mail adds nothing (no CalendarId); one occurrence declined
 * (InstanceId) keeps the calendar item. A mail without an
 * invitation, an unknown item or answer is Status 2; a mailbox without a
 * calendar, or a codec that cannot answer, is 3. 16.1's SendResponse mails the REPLY to the
 * organizer.
 */
static void
test_meeting_response(void **state)
{
	struct cx c;
	struct wbxml_node *r, *co;
	char key[80], calid[MBX_ID_MAX + 1], *obj;
	size_t len;

	(void)state;
	cx_init(&c, 0);
	c.pim = &respond_codec;
	assert_int_equal(cx_deliver(&c, "meeting_request.eml"), 1);
	assert_int_equal(cx_deliver(&c, "alternative.eml"), 2);
	cx_prime(&c, key);

	/* no calendar in the mailbox yet: the answer cannot be kept */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/RequestId"), "1");
	assert_string_equal(txt(r, "Result/Status"), "3");
	assert_null(wbxml_find(r, "Result/CalendarId"));

	meeting_calendar(&c, key);

	/* accepted: in the calendar, the device's next Sync brings it */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	snprintf(calid, sizeof(calid), "%s", txt(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "PARTSTAT=ACCEPTED:mailto:alice@example.com"));
	free(obj);
	co = pim_sync_in(&c, "cal", key, NULL, NULL);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), calid);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	assert_string_equal(txt(cmd_at(co, 0), "ApplicationData/Calendar:ResponseType"), "3");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	assert_int_equal(mbx_memory_sent(c.mm, 0, &len) == NULL, true); /* no SendResponse */

	/* the calendar item answered again (tentative): in place, the same id */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("2", "cal", calid, false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_string_equal(txt(r, "Result/CalendarId"), calid);
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(strstr(obj, "PARTSTAT=TENTATIVE"));
	free(obj);
	co = pim_sync_in(&c, "cal", key, NULL, NULL); /* the device's own change: not echoed */
	assert_null(wbxml_find(co, "Commands"));
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* one occurrence declined (InstanceId): the calendar item kept, the codec told which */
	struct wbxml_doc *di = req_meeting("3", "cal", calid, false);
	wbxml_addn_text(wbxml_find(wbxml_doc_root(di), "Request"), "InstanceId",
	                "2026-03-27T10:00:00.000Z");
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, di);
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(strstr(obj, "PARTSTAT=DECLINED"));
	assert_non_null(strstr(obj, "INSTANCE:2026-03-27T10:00:00.000Z"));
	free(obj);

	/* declined: removed from the calendar, no CalendarId; the REPLY goes to Anna */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("3", "cal", calid, true));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 0);
	const char *sent = mbx_memory_sent(c.mm, 0, &len);
	assert_non_null(sent);
	assert_non_null(strstr(sent, "To: anna@example.org"));
	assert_non_null(strstr(sent, "Subject: Declined: Planning"));
	assert_non_null(strstr(sent, "method=REPLY"));
	assert_null(mbx_memory_sent(c.mm, 1, &len));
	assert_non_null(mbx_memory_sent(c.mm2, 0, &len));
	assert_null(mbx_memory_sent(c.mm2, 1, &len)); /* once, whatever the reruns */

	/* a declined mail: nothing kept, one occurrence of it neither */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("3", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	di = req_meeting("3", "inbox", "1", false);
	wbxml_addn_text(wbxml_find(wbxml_doc_root(di), "Request"), "InstanceId",
	                "2026-03-27T10:00:00.000Z");
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, di);
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 0);

	/* what names no invitation */
	static const char *const bad[][3] = {
	    {"1", "inbox", "2"}, /* a mail without one */
	    {"1", "inbox", "99"}, {"4", "inbox", "1"}, {"1", "nope", "1"}, {"1", NULL, "1"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE,
		             req_meeting(bad[i][0], bad[i][1], bad[i][2], false));
		assert_string_equal(txt(r, "Result/Status"), "2");
	}
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 0);

	/* 14.1 knows no SendResponse: nothing sent */
	c.f.version = "14.1";
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", "1", true));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(mbx_memory_sent(c.mm, 1, &len));

	/* a codec that cannot answer: 3, as the quarantine mailbox */
	c.pim = &test_codec;
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "3");
	cx_done(&c);
}

/* meeting_request.eml as the organizer sends it again, the meeting moved (RFC 5546 2.1.4). */
static uint32_t
deliver_update(struct cx *c)
{
	size_t len;
	char *raw = read_eml("meeting_request.eml", &len), *p;
	uint32_t a, b;

	raw[len] = '\0'; /* read_eml's buffer has room: a string to search */
	/* the text/calendar part: 10:00-11:00 moved to 14:00-15:00, SEQUENCE 1 */
	assert_non_null(p = strstr(raw, "DTSTART:20260320T100000Z\r\nDTEND:20260320T110000Z\r\n"));
	static const char moved[] = "DTSTART:20260320T140000Z\r\nDTEND:20260320T150000Z\r\n";
	memcpy(p, moved, sizeof(moved) - 1);
	char *upd = xasprintf("%.*sSEQUENCE:1\r\n%s", (int)(p - raw), raw, p);
	a = mbx_memory_append_raw(c->mm, "inbox", upd, strlen(upd), CX_NOW - 60, 0);
	b = mbx_memory_append_raw(c->mm2, "inbox", upd, strlen(upd), CX_NOW - 60, 0);
	assert_int_equal(a, b);
	free(upd);
	free(raw);
	return a;
}

/*
 * MeetingResponse to a mail whose UID the calendar holds already (answered
 * before, an updated invitation): that event updated in place (Status 1,
 * the same CalendarId, one object), which the device's next Sync reports
 * as a Change; declined: removed.
 */
static void
test_meeting_response_again(void **state)
{
	struct cx c;
	struct wbxml_node *r, *co;
	char key[80], calid[MBX_ID_MAX + 1], *obj;
	uint32_t upd;

	(void)state;
	meeting_cx(&c, key);

	/* accepted, then the same mail answered again (tentative): one event, updated */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	snprintf(calid, sizeof(calid), "%s", txt(r, "Result/CalendarId"));
	co = pim_sync_in(&c, "cal", key, NULL, NULL);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("2", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_string_equal(txt(r, "Result/CalendarId"), calid);
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	assert_int_equal(mbx_memory_count(c.mm2, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "PARTSTAT=TENTATIVE"));
	assert_null(strstr(obj, "PARTSTAT=ACCEPTED"));
	free(obj);
	/* not the device's change of its calendar item: its next Sync reports it */
	co = pim_sync_in(&c, "cal", key, NULL, NULL);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Change");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), calid);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* the organizer moved the meeting: the updated invitation accepted moves the event */
	upd = deliver_update(&c);
	char rid[16];
	snprintf(rid, sizeof(rid), "%u", (unsigned)upd);
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", rid, false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_string_equal(txt(r, "Result/CalendarId"), calid);
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "DTSTART:20260320T140000Z"));
	assert_null(strstr(obj, "DTSTART:20260320T100000Z"));
	assert_non_null(strstr(obj, "PARTSTAT=ACCEPTED"));
	free(obj);

	/* the mail declined: the event it names leaves the calendar, no CalendarId */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("3", "inbox", rid, false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 0);
	assert_int_equal(mbx_memory_count(c.mm2, "cal"), 0);
	co = pim_sync_in(&c, "cal", key, NULL, NULL);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Delete");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), calid);

	/* declined again: nothing there, nothing to do */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("3", "inbox", "1", false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 0);
	cx_done(&c);
}

/* The text/calendar part (base64) of the n-th mail sent by mm, decoded (malloc'd). */
static char *
sent_calendar(struct mbx_backend *mm, size_t n)
{
	size_t len, k = 0, outlen, errpos;
	const char *sent = mbx_memory_sent(mm, n, &len), *p, *e, *err;
	char *b64, *out;

	assert_non_null(sent);
	assert_non_null(p = strstr(sent, "method=REPLY"));
	assert_non_null(p = strstr(p, "\r\n\r\n"));
	assert_non_null(e = strstr(p + 4, "\r\n--"));
	b64 = xmalloc((size_t)(e - p) + 1);
	for (p += 4; p < e; p++)
		if (*p != '\r' && *p != '\n')
			b64[k++] = *p;
	out = xmalloc(B64_DECODED_MAX(k) + 1);
	assert_int_equal(b64_decode(b64, k, (unsigned char *)out, &outlen, &errpos, &err), 0);
	out[outlen] = '\0';
	free(b64);
	return out;
}

/*
 * MeetingResponse to an older invitation after a newer one (RFC 5546
 * 2.1.5): the organizer's update (SEQUENCE 1, moved to 14:00) accepted,
 * then the first mail (no SEQUENCE) answered tentative: the calendar keeps
 * the update, only the user's answer changes (same CalendarId, one
 * event), and the REPLY to the organizer carries SEQUENCE 1 and 14:00.
 * Then one occurrence declined from the first mail (16.x InstanceId):
 * made onto the event the calendar holds (its EXDATE, here the stand-in's
 * INSTANCE line), Status 1, no CalendarId.
 */
static void
test_meeting_response_older(void **state)
{
	struct cx c;
	struct wbxml_node *r, *co;
	char key[80], calid[MBX_ID_MAX + 1], rid[16], *obj, *reply;
	size_t len;

	(void)state;
	meeting_cx(&c, key);
	snprintf(rid, sizeof(rid), "%u", (unsigned)deliver_update(&c));

	/* the update accepted first */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("1", "inbox", rid, false));
	assert_string_equal(txt(r, "Result/Status"), "1");
	snprintf(calid, sizeof(calid), "%s", txt(r, "Result/CalendarId"));
	assert_true(calid[0] != '\0');

	/* the older mail answered after it: the update kept, the user's answer set */
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, req_meeting("2", "inbox", "1", true));
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_string_equal(txt(r, "Result/CalendarId"), calid);
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	assert_int_equal(mbx_memory_count(c.mm2, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "DTSTART:20260320T140000Z"));
	assert_non_null(strstr(obj, "SEQUENCE:1"));
	assert_non_null(strstr(obj, "PARTSTAT=TENTATIVE"));
	assert_null(strstr(obj, "DTSTART:20260320T100000Z"));
	assert_null(strstr(obj, "PARTSTAT=ACCEPTED"));
	free(obj);
	reply = sent_calendar(c.mm, 0);
	assert_non_null(strstr(reply, "PARTSTAT=TENTATIVE"));
	assert_non_null(strstr(reply, "SEQUENCE:1"));
	assert_non_null(strstr(reply, "DTSTART:20260320T140000Z"));
	free(reply);
	assert_null(mbx_memory_sent(c.mm, 1, &len));

	/* one occurrence of the older mail declined: onto the held event */
	struct wbxml_doc *di = req_meeting("3", "inbox", "1", false);
	wbxml_addn_text(wbxml_find(wbxml_doc_root(di), "Request"), "InstanceId",
	                "2026-03-27T10:00:00.000Z");
	r = cx_serve(&c, EAS_CMD_MEETINGRESPONSE, di);
	assert_string_equal(txt(r, "Result/Status"), "1");
	assert_null(wbxml_find(r, "Result/CalendarId"));
	assert_int_equal(mbx_memory_count(c.mm, "cal"), 1);
	obj = cal_object(&c, calid);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "INSTANCE:2026-03-27T10:00:00.000Z"));
	assert_non_null(strstr(obj, "DTSTART:20260320T140000Z"));
	assert_non_null(strstr(obj, "SEQUENCE:1"));
	free(obj);
	/* not the device's write: its next Sync brings the event, answered */
	co = pim_sync_in(&c, "cal", key, NULL, NULL);
	assert_int_equal(n_cmds(co), 1);
	assert_string_equal(cmd_at(co, 0)->name, "Add");
	assert_string_equal(txt(cmd_at(co, 0), "ServerId"), calid);
	cx_done(&c);
}

/* ---- a calendar's FilterType ---- */

/*
 * A stand-in calendar codec: an object is "SUMMARY:<text>\n" and perhaps
 * "SPAN:<start>-<end>\n" (end "open": a series without an end), which is
 * its span; one without SPAN has none the codec can read.
 */
static int
c_to_eas(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
         const struct mbx_pim_opts *o, const char **errstr)
{
	char name[128];

	(void)o;
	(void)len;
	if (c != MBX_CLASS_CALENDAR || sscanf(data, "SUMMARY:%127[^\n]", name) != 1) {
		*errstr = "not a test event";
		return -1;
	}
	wbxml_addn_text(appdata, "Calendar:Subject", name);
	return 0;
}

/*
 * A Change of one occurrence of a series (an object holding "RRULE") adds
 * "EXCEPTION:<InstanceId>:<Subject>"; a whole Change is refused.
 */
static int
c_from_eas(enum mbx_class c, const struct wbxml_node *appdata, const char *old, size_t old_len,
           const struct mbx_pim_opts *o, char **out, size_t *out_len,
           char uid_r[MBX_PIM_UID_MAX + 1], const char **errstr)
{
	const char *subj = wbxml_find_text(appdata, "Calendar:Subject");

	uid_r[0] = '\0';
	if (c != MBX_CLASS_CALENDAR || o->instance_id == NULL || old == NULL || subj == NULL ||
	    memmem(old, old_len, "RRULE", 5) == NULL) {
		*errstr = "only occurrences of series";
		return -1;
	}
	*out = xasprintf("%.*sEXCEPTION:%s:%s\n", (int)old_len, old, o->instance_id, subj);
	*out_len = strlen(*out);
	return 0;
}

/* An occurrence of a series taken out: "EXDATE:<InstanceId>" added. */
static int
c_remove_instance(enum mbx_class c, const char *old, size_t old_len, const struct mbx_pim_opts *o,
                  char **out, size_t *out_len, const char **errstr)
{
	if (c != MBX_CLASS_CALENDAR || memmem(old, old_len, "RRULE", 5) == NULL) {
		*errstr = "not a series";
		return -1;
	}
	*out = xasprintf("%.*sEXDATE:%s\n", (int)old_len, old, o->instance_id);
	*out_len = strlen(*out);
	return 0;
}

static int
c_span(enum mbx_class c, const char *data, size_t len, int64_t *start_r, int64_t *end_r,
       const char **errstr)
{
	const char *p = memmem(data, len, "\nSPAN:", 6);
	long long st, en;
	char open[8];

	if (c != MBX_CLASS_CALENDAR || p == NULL) {
		*errstr = "no span";
		return -1;
	}
	if (sscanf(p + 6, "%lld-%lld", &st, &en) == 2) {
		*start_r = st, *end_r = en;
		return 0;
	}
	if (sscanf(p + 6, "%lld-%4s", &st, open) == 2 && strcmp(open, "open") == 0) {
		*start_r = st, *end_r = MBX_SPAN_OPEN;
		return 0;
	}
	*errstr = "bad span";
	return -1;
}

static const struct mbx_pim_codec cal_codec = {
    .to_eas = c_to_eas,
    .from_eas = c_from_eas,
    .span = c_span,
    .remove_instance = c_remove_instance,
};

/* A Sync of the calendar with FilterType ft (-1: none). */
static struct wbxml_node *
cal_sync(struct cx *c, const char *key, int ft)
{
	struct wbxml_doc *d = req_sync(key, "cal", 0, 0, 0, true);
	if (ft >= 0) {
		char t[16];
		snprintf(t, sizeof(t), "%d", ft);
		struct wbxml_node *cn = wbxml_find(wbxml_doc_root(d), "Collections/Collection");
		wbxml_addn_text(wbxml_addn(cn, "Options"), "FilterType", t);
	}
	struct wbxml_node *r = cx_serve(c, EAS_CMD_SYNC, d);
	assert_non_null(r);
	return wbxml_find(r, "Collections/Collection");
}

/* The Subjects of a Sync answer's commands of kind what (Add, Change), or its Deletes' ServerIds.
 */
static void
cal_list(const struct wbxml_node *co, const char *what, char *buf, size_t size)
{
	const struct wbxml_node *cmds = wbxml_find(co, "Commands");
	buf[0] = '\0';
	for (const struct wbxml_node *x = cmds ? cmds->first_child : NULL; x; x = x->next) {
		if (strcmp(x->name, what) != 0)
			continue;
		const char *n = strcmp(what, "Delete") == 0
		                    ? wbxml_find_text(x, "ServerId")
		                    : wbxml_find_text(x, "ApplicationData/Calendar:Subject");
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "," : "",
		         n ? n : "?");
	}
}

/*
 * FilterType 4 (two weeks) on a calendar: the events that end before the
 * window are not sent, by the span the backend's map knows (not even
 * fetched) or the one the codec reads; a series that goes on is sent
 * whatever its start, one that ended before the window is not; an event
 * the codec cannot judge is sent. A server change that brings a left-out
 * event into the window is an Add, one that takes a sent event out of it
 * a Change (it stays on the phone); a left-out event's removal is not
 * told. Another FilterType sets the SyncKey back (Status 3); the Sync
 * from 0 then applies the new window (0: everything).
 */
static void
test_calendar_filter(void **state)
{
	struct cx c;
	struct wbxml_node *co;
	char key[80], list[256], obj[128];
	const int64_t D = 86400, now = CX_NOW;
	uint32_t old = 0, recent = 0, future = 0, ended = 0;

	(void)state;
	cx_init(&c, 0);
	c.pim = &cal_codec;
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		assert_int_equal(
		    mbx_memory_add_folder(b, "cal", "0", "Calendar", MBX_FOLDER_CALENDAR, 5), 0);
#define EV(name, st, en)                                                                           \
	(snprintf(obj, sizeof(obj), "SUMMARY:%s\nSPAN:%lld-%s\n", name, (long long)(st), en),      \
	 mbx_memory_append_raw(b, "cal", obj, strlen(obj), 0, 0))
		char e[24];
		snprintf(e, sizeof(e), "%lld", (long long)(now - 30 * D));
		old = EV("old", now - 31 * D, e);
		snprintf(e, sizeof(e), "%lld", (long long)(now - 3 * D));
		recent = EV("recent", now - 4 * D, e);
		snprintf(e, sizeof(e), "%lld", (long long)(now + 7 * D + 3600));
		future = EV("future", now + 7 * D, e);
		assert_int_not_equal(EV("series", now - 365 * D, "open"), 0);
		snprintf(e, sizeof(e), "%lld", (long long)(now - 60 * D));
		ended = EV("ended", now - 365 * D, e);
#undef EV
		/* the map knows this one's span; its object says none */
		uint32_t mapped = mbx_memory_append_raw(b, "cal", "SUMMARY:mapped\n", 15, 0, 0);
		assert_int_equal(mbx_memory_set_span(b, "cal", mapped, now - 40 * D, now - 39 * D),
		                 1);
		assert_int_not_equal(mbx_memory_append_raw(b, "cal", "SUMMARY:nospan\n", 15, 0, 0),
		                     0);
	}
	co = cal_sync(&c, "0", 4);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, 4);
	assert_string_equal(txt(co, "Status"), "1");
	cal_list(co, "Add", list, sizeof(list));
	assert_string_equal(list, "nospan,series,future,recent");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	/* nothing changed: nothing said, the key stays */
	co = cal_sync(&c, key, 4);
	assert_null(wbxml_find(co, "Commands"));
	assert_string_equal(txt(co, "SyncKey"), key);

	/* old moved into the window: an Add; recent moved out of it: a Change */
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		snprintf(obj, sizeof(obj), "SUMMARY:old moved\nSPAN:%lld-%lld\n",
		         (long long)(now + D), (long long)(now + D + 3600));
		assert_int_equal(mbx_memory_replace(b, "cal", old, obj, strlen(obj)), 1);
		snprintf(obj, sizeof(obj), "SUMMARY:recent2\nSPAN:%lld-%lld\n",
		         (long long)(now - 20 * D), (long long)(now - 19 * D));
		assert_int_equal(mbx_memory_replace(b, "cal", recent, obj, strlen(obj)), 1);
	}
	co = cal_sync(&c, key, -1); /* FilterType as before */
	cal_list(co, "Add", list, sizeof(list));
	assert_string_equal(list, "old moved");
	cal_list(co, "Change", list, sizeof(list));
	assert_string_equal(list, "recent2");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* gone on the server: the one sent is deleted, the one left out is not told */
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		assert_int_equal(mbx_memory_store(b, "cal", ended, MBX_MEM_DELETED, 0), 1);
		assert_int_equal(mbx_memory_store(b, "cal", future, MBX_MEM_DELETED, 0), 1);
		assert_int_equal(mbx_memory_expunge(b, "cal"), 2);
	}
	co = cal_sync(&c, key, 4);
	char fid[16];
	snprintf(fid, sizeof(fid), "%u", future);
	cal_list(co, "Delete", list, sizeof(list));
	assert_string_equal(list, fid);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, 4);
	assert_null(wbxml_find(co, "Commands"));

	/* another FilterType: start over, then the new window */
	co = cal_sync(&c, key, 5);
	assert_string_equal(txt(co, "Status"), "3");
	assert_string_equal(txt(co, "SyncKey"), "0");
	co = cal_sync(&c, "0", 0);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, 0);
	cal_list(co, "Add", list, sizeof(list));
	assert_string_equal(list, "nospan,mapped,series,recent2,old moved");
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, 0);
	assert_null(wbxml_find(co, "Commands"));
	cx_done(&c);
}

/* The device's commands on calendar occurrences: {what, ServerId, InstanceId, Subject}. */
struct inst_cmd {
	const char *what, *sid, *inst, *subject;
};

static void
inst_cmds(struct wbxml_node *cmds, void *arg)
{
	for (const struct inst_cmd *p = arg; p->what != NULL; p++) {
		struct wbxml_node *x = wbxml_addn(cmds, p->what);
		wbxml_addn_text(x, "ServerId", p->sid);
		if (p->inst)
			wbxml_addn_text(x, "AirSyncBase:InstanceId", p->inst);
		if (p->subject)
			wbxml_addn_text(wbxml_addn(x, "ApplicationData"), "Calendar:Subject",
			                p->subject);
	}
}

/* The object of calendar item uid as the backend holds it (mm), or "" when gone. */
static void
cal_object_text(struct cx *c, uint32_t uid, char *buf, size_t size)
{
	struct mbx_object o;
	const char *err;
	char sid[16];

	snprintf(sid, sizeof(sid), "%u", uid);
	buf[0] = '\0';
	if (mbx_fetch_object(c->mm, "cal", sid, &o, &err) == 1)
		snprintf(buf, size, "%s", o.data);
	mbx_object_clear(&o);
}

/*
 * 16.1's InstanceId: a Delete of one occurrence writes the series back
 * without it (the codec's EXDATE), the series stays, nothing is echoed; a
 * Change of one makes its exception with the device's fields, the
 * series' own fields kept; one that cannot be applied (not a series) is a
 * Response with ServerId, InstanceId and Status 6, and a Delete of an
 * occurrence of no series leaves the object; a Delete without InstanceId
 * deletes the item. Before 16.0 InstanceId is not read.
 */
static void
test_calendar_instances(void **state)
{
	struct cx c;
	struct wbxml_node *co;
	char key[80], obj[512], s1[16], s2[16];
	uint32_t series = 0, single = 0;

	(void)state;
	cx_init(&c, 0);
	c.pim = &cal_codec;
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		assert_int_equal(
		    mbx_memory_add_folder(b, "cal", "0", "Calendar", MBX_FOLDER_CALENDAR, 5), 0);
		series = mbx_memory_append_raw(b, "cal", "SUMMARY:Standup\nRRULE:FREQ=DAILY\n", 33,
		                               0, 0);
		single = mbx_memory_append_raw(b, "cal", "SUMMARY:Dentist\n", 16, 0, 0);
	}
	snprintf(s1, sizeof(s1), "%u", series);
	snprintf(s2, sizeof(s2), "%u", single);
	co = cal_sync(&c, "0", -1);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, -1);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	struct inst_cmd cmds[] = {{"Delete", s1, "20261209T083000Z", NULL},
	                          {"Change", s1, "20261210T083000Z", "Standup, moved"},
	                          {"Change", s2, "20261210T083000Z", "x"},
	                          {"Delete", s2, "20261211T083000Z", NULL},
	                          {0}};
	struct wbxml_doc *d = req_sync(key, "cal", 0, 0, 0, true);
	inst_cmds(wbxml_addn(wbxml_find(wbxml_doc_root(d), "Collections/Collection"), "Commands"),
	          cmds);
	co = wbxml_find(cx_serve(&c, EAS_CMD_SYNC, d), "Collections/Collection");
	assert_non_null(co);
	cal_object_text(&c, series, obj, sizeof(obj));
	assert_string_equal(obj, "SUMMARY:Standup\nRRULE:FREQ=DAILY\nEXDATE:20261209T083000Z\n"
	                         "EXCEPTION:20261210T083000Z:Standup, moved\n");
	cal_object_text(&c, single, obj, sizeof(obj));
	assert_string_equal(obj, "SUMMARY:Dentist\n"); /* neither applied */
	/* one Response: the refused Change, naming its occurrence */
	const struct wbxml_node *rs = wbxml_find(co, "Responses");
	assert_non_null(rs);
	assert_ptr_equal(rs->first_child, rs->last_child);
	assert_string_equal(rs->first_child->name, "Change");
	assert_string_equal(txt(rs->first_child, "ServerId"), s2);
	assert_string_equal(txt(rs->first_child, "AirSyncBase:InstanceId"), "20261210T083000Z");
	assert_string_equal(txt(rs->first_child, "Status"), "6");
	assert_null(wbxml_find(co, "Commands")); /* the device's own writes not echoed */
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, -1);
	assert_null(wbxml_find(co, "Commands"));
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));

	/* a Delete without InstanceId: the item */
	struct inst_cmd del[] = {{"Delete", s1, NULL, NULL}, {0}};
	d = req_sync(key, "cal", 0, 0, 0, true);
	inst_cmds(wbxml_addn(wbxml_find(wbxml_doc_root(d), "Collections/Collection"), "Commands"),
	          del);
	co = wbxml_find(cx_serve(&c, EAS_CMD_SYNC, d), "Collections/Collection");
	cal_object_text(&c, series, obj, sizeof(obj));
	assert_string_equal(obj, "");
	cx_done(&c);

	/* 14.1: InstanceId is no element of it: a Delete deletes the item */
	cx_init(&c, 0);
	c.f.version = "14.1";
	c.pim = &cal_codec;
	for (int k = 0; k < 2; k++) {
		struct mbx_backend *b = k ? c.mm2 : c.mm;
		assert_int_equal(
		    mbx_memory_add_folder(b, "cal", "0", "Calendar", MBX_FOLDER_CALENDAR, 5), 0);
		series = mbx_memory_append_raw(b, "cal", "SUMMARY:Standup\nRRULE:FREQ=DAILY\n", 33,
		                               0, 0);
	}
	co = cal_sync(&c, "0", -1);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	co = cal_sync(&c, key, -1);
	snprintf(key, sizeof(key), "%s", txt(co, "SyncKey"));
	struct inst_cmd del14[] = {{"Delete", s1, "20261209T083000Z", NULL}, {0}};
	d = req_sync(key, "cal", 0, 0, 0, true);
	inst_cmds(wbxml_addn(wbxml_find(wbxml_doc_root(d), "Collections/Collection"), "Commands"),
	          del14);
	co = wbxml_find(cx_serve(&c, EAS_CMD_SYNC, d), "Collections/Collection");
	cal_object_text(&c, series, obj, sizeof(obj));
	assert_string_equal(obj, "");
	cx_done(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_foldersync),
	    cmocka_unit_test(test_sync_alert),
	    cmocka_unit_test(test_sync_truncation),
	    cmocka_unit_test(test_sync_read_flag_and_restart),
	    cmocka_unit_test(test_getitemestimate),
	    cmocka_unit_test(test_ping),
	    cmocka_unit_test(test_folders_down),
	    cmocka_unit_test(test_provision),
	    cmocka_unit_test(test_provision_status),
	    cmocka_unit_test(test_settings),
	    cmocka_unit_test(test_itemoperations),
	    cmocka_unit_test(test_other_commands),
	    cmocka_unit_test(test_start_over),
	    cmocka_unit_test(test_templates),
	    cmocka_unit_test(test_sync_wait),
	    cmocka_unit_test(test_sync_retried_key),
	    cmocka_unit_test(test_sync_partial),
	    cmocka_unit_test(test_permanent_refusals),
	    cmocka_unit_test(test_fetch_read_flag),
	    cmocka_unit_test(test_mime_body),
	    cmocka_unit_test(test_provision_versions),
	    cmocka_unit_test(test_provision_wipe),
	    cmocka_unit_test(test_changing_backend),
	    cmocka_unit_test(test_served_from_store),
	    cmocka_unit_test(test_run_pending),
	    cmocka_unit_test(test_run_failures),
	    cmocka_unit_test(test_cursor_initial_10000),
	    cmocka_unit_test(test_cursor_changes),
	    cmocka_unit_test(test_cursor_star),
	    cmocka_unit_test(test_real_messages),
	    cmocka_unit_test(test_streamed_attachment),
	    cmocka_unit_test(test_parsed_ahead),
	    cmocka_unit_test(test_saved_answer),
	    cmocka_unit_test(test_compose_14),
	    cmocka_unit_test(test_compose_client_id),
	    cmocka_unit_test(test_compose_12),
	    cmocka_unit_test(test_cursor_move),
	    cmocka_unit_test(test_cursor_empty),
	    cmocka_unit_test(test_cursor_folders),
	    cmocka_unit_test(test_search),
	    cmocka_unit_test(test_search_quarantine),
	    cmocka_unit_test(test_gal_search),
	    cmocka_unit_test(test_resolverecipients),
	    cmocka_unit_test(test_pim_sync),
	    cmocka_unit_test(test_meeting_request_mail),
	    cmocka_unit_test(test_meeting_response),
	    cmocka_unit_test(test_meeting_response_again),
	    cmocka_unit_test(test_meeting_response_older),
	    cmocka_unit_test(test_calendar_filter),
	    cmocka_unit_test(test_calendar_instances),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
