/*
 * mailbox_dav.c: contacts, calendars and tasks from DAV servers as a mailbox
 * backend (mailbox_dav.h).
 *
 * Each operation the command layer asks is a task: a short chain of steps,
 * each one store job (the gateway's store thread) or one DAV request (the
 * worker's curl_loop), run one after the other from their callbacks. A task
 * ends in a record of the request (keyed by what was asked), which the
 * reruns of the request answer from; writes are recorded in the order made.
 * The backend counts its tasks in flight for wait().
 *
 * A store job is its own allocation (struct sjob): run on the store thread
 * reads only it, done hands its results to the task, release frees it, so
 * a task cancelled (its backend destroyed) never has its memory touched by
 * the store thread.
 *
 * Calendars under a FilterType: the command layer leaves out the events
 * that end before the phone's window. The map keeps each event's span
 * (its first start, its last occurrence's end), read from the objects a
 * Sync fetches anyway, rather than a calendar-query with a time-range
 * (RFC 4791 9.9): a Sync with nothing new asks the server for its
 * sync-collection only, and one with changes for the changed objects
 * only, where the query would have the server expand every series of the
 * calendar on every Sync with something to say. An event the map knows to
 * end before the floor is not even fetched.
 */
#include "native/mailbox_dav.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dav/dav.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/util.h"
#include "pim/event.h"
#include "pim/ical.h"
#include "store/store.h"

#define OWN_MAX         32 /* own changes one cursor remembers */
#define SYNC_ROUNDS_MAX 50 /* sync-collection rounds of one refresh (507: more) */
#define NAME_MAX_BYTES  64 /* a new resource's name (random) */

/* ---- what the workers' backends share ---- */

static const char DAV_LOGIN_REFUSED[] = "the DAV server refused the login";

struct mbx_dav_shared {
	struct abq_hmap discovered; /* account -> (intptr_t) time of the last discovery */
	struct abq_hmap refreshing; /* account/collection id -> its struct flight, or NULL */
	unsigned long refreshes;    /* refreshes of a map asked of the server */
	unsigned long joined;       /* refreshes not asked: one in flight served */
};

void
mbx_dav_shared_stats(const struct mbx_dav_shared *s, unsigned long *refreshes,
                     unsigned long *joined)
{
	*refreshes = s->refreshes;
	*joined = s->joined;
}

struct mbx_dav_shared *
mbx_dav_shared_new(void)
{
	struct mbx_dav_shared *s = xcalloc(1, sizeof(*s));

	abq_hmap_init(&s->discovered);
	abq_hmap_init(&s->refreshing);
	return s;
}

void
mbx_dav_shared_free(struct mbx_dav_shared **sp)
{
	if (*sp == NULL)
		return;
	abq_hmap_free(&(*sp)->discovered, NULL);
	abq_hmap_free(&(*sp)->refreshing, NULL); /* no flight outlives its tasks */
	free(*sp);
	*sp = NULL;
}

/* ---- the cursor ---- */

struct cur {
	int64_t seq;
	struct {
		int64_t item, seq;
	} own[OWN_MAX];
	size_t n_own;
};

static int
cur_parse(const char *text, struct cur *c)
{
	const char *p = text;
	char *end;

	memset(c, 0, sizeof(*c));
	if (text == NULL || *text == '\0')
		return 0;
	c->seq = strtoll(p, &end, 10);
	if (end == p || c->seq < 0)
		return -1;
	p = end;
	if (*p == '\0')
		return 0;
	if (*p++ != ' ')
		return -1;
	while (*p != '\0') {
		long long item = strtoll(p, &end, 10), seq;
		if (end == p || *end != '@' || c->n_own >= OWN_MAX)
			return -1;
		p = end + 1;
		seq = strtoll(p, &end, 10);
		if (end == p || (*end != ',' && *end != '\0'))
			return -1;
		c->own[c->n_own].item = item;
		c->own[c->n_own++].seq = seq;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static void
cur_format(const struct cur *c, char out[MBX_CURSOR_MAX + 1])
{
	size_t len = (size_t)snprintf(out, MBX_CURSOR_MAX + 1, "%" PRId64, c->seq);

	for (size_t i = 0; i < c->n_own && len + 48 < MBX_CURSOR_MAX; i++)
		len +=
		    (size_t)snprintf(out + len, MBX_CURSOR_MAX + 1 - len, "%s%" PRId64 "@%" PRId64,
		                     i ? "," : " ", c->own[i].item, c->own[i].seq);
}

static bool
cur_own(const struct cur *c, int64_t item, int64_t seq)
{
	for (size_t i = 0; i < c->n_own; i++)
		if (c->own[i].item == item && c->own[i].seq == seq)
			return true;
	return false;
}

static void
cur_note_own(struct cur *c, int64_t item, int64_t seq)
{
	size_t i;

	for (i = 0; i < c->n_own && c->own[i].item != item; i++)
		;
	if (i == c->n_own) {
		if (c->n_own == OWN_MAX) /* the oldest goes: at worst a change is echoed */
			memmove(&c->own[0], &c->own[1], --c->n_own * sizeof(c->own[0]));
		i = c->n_own++;
	}
	c->own[i].item = item;
	c->own[i].seq = seq;
}

/* ---- records of the request ---- */

enum rec_kind { R_FOLDERS, R_CHANGES, R_OBJECT, R_PUT, R_REMOVE, R_FIND };

struct rec {
	enum rec_kind kind;
	char *key; /* folder id + what was asked */
	bool done;
	int rv;
	const char *err;
	/* R_CHANGES */
	struct mbx_changes ch;
	/* R_OBJECT */
	struct mbx_object obj;
	/* R_PUT, R_REMOVE; R_FIND: the item found */
	char new_id[MBX_ID_MAX + 1];
	char cursor[MBX_CURSOR_MAX + 1];
};

struct task;

struct dav_backend {
	struct mbx_backend base;
	struct curl_loop *cl;
	struct mbx_dav_shared *shared;
	struct mbx_dav_store store;
	char *caldav, *carddav, *ca_file;
	unsigned connect_timeout_ms, timeout_ms;
	unsigned max_age_s; /* a refresh this young serves a Sync (mbx_dav_conf) */
	char *account, *user, *password;
	struct dav_account *dav[2]; /* DAV_CALDAV, DAV_CARDDAV; made when first needed */
	struct rec **recs;
	size_t n_recs;
	size_t next_write;  /* the writes' records, in order, on this run */
	struct task *tasks; /* in flight */
	size_t in_flight;
	void (*wait_cb)(void *);
	void *wait_arg;
	/* the folders of the last listing (strings owned) */
	struct mbx_folder *folders;
	size_t n_folders;
};

static struct dav_backend *
B(struct mbx_backend *b)
{
	return (struct dav_backend *)b;
}

static struct rec *
rec_find(struct dav_backend *d, enum rec_kind kind, const char *key)
{
	for (size_t i = 0; i < d->n_recs; i++)
		if (d->recs[i]->kind == kind && strcmp(d->recs[i]->key, key) == 0)
			return d->recs[i];
	return NULL;
}

static struct rec *
rec_new(struct dav_backend *d, enum rec_kind kind, const char *key)
{
	struct rec *r = xcalloc(1, sizeof(*r));

	r->kind = kind;
	r->key = xstrdup(key);
	d->recs = xrealloc(d->recs, (d->n_recs + 1) * sizeof(*d->recs));
	d->recs[d->n_recs++] = r;
	return r;
}

static void
rec_free(struct rec *r)
{
	mbx_changes_clear(&r->ch);
	mbx_object_clear(&r->obj);
	free(r->key);
	free(r);
}

/* ---- tasks ---- */

/* A store job: its inputs, run on the store thread, its outputs. */
enum sop {
	S_COLL_LIST,
	S_COLL_ITER,
	S_COLL_GET,
	S_REFRESH,
	S_CHANGES,
	S_ITEM_GET,
	S_ITEM_PUT,
	S_ITEM_BY_HREF,
};

struct sjob {
	struct task *t; /* NULL once the task is gone (cancelled) */
	enum sop op;
	char *account, *coll_id, *item_id, *href, *etag, *token;
	struct abq_pim_coll *colls; /* S_COLL_LIST in; S_COLL_ITER out */
	size_t n_colls;
	struct abq_pim_change *changes; /* S_REFRESH in (hrefs and etags owned) */
	size_t n_changes;
	bool complete;
	int64_t since;
	size_t limit;
	/* out */
	char **ids;
	struct abq_pim_coll coll;
	struct abq_pim_item item;
	struct abq_pim_item *items;
	size_t n_items;
	bool more;
	bool again; /* S_REFRESH: the server has more (507): sync again after it */
	char err[160];
};

struct task;
typedef void store_then_fn(struct task *t, struct sjob *j);
typedef void dav_then_fn(struct task *t, const struct dav_result *r);

/* One operation of the request in flight, and what it holds in flight: one store job or one DAV
 * request. */
struct task {
	struct task *next;
	struct dav_backend *d;
	struct rec *rec;
	void *store_handle;
	struct sjob *sj;
	store_then_fn *store_then;
	struct dav_op *op;
	dav_then_fn *dav_then;
	/* the op's inputs */
	char folder[MBX_ID_MAX + 1];
	char item[MBX_ID_MAX + 1];
	char *etag; /* put_object's: the version the command layer read */
	char *uid;  /* find_uid's */
	char *data;
	size_t len;
	struct cur cur;
	bool not_device; /* a write without the device's cursor (mbx_ops.put_object) */
	struct mbx_window w;
	/* what it learned */
	struct abq_pim_coll coll;
	struct abq_pim_item it;
	int kind;                     /* DAV_CALDAV or DAV_CARDDAV of coll */
	int sync_rounds;              /* sync-collection rounds (507: more) */
	bool initial_sync;            /* from no token: the answer is the whole collection */
	struct dav_collection *found; /* discovery's, every kind */
	size_t n_found;
	int next_kind;               /* the next kind to discover */
	char **win_hrefs, **win_ids; /* the window's objects to fetch: hrefs, item ids */
	bool *win_unspanned;         /* events whose span the map does not know yet */
	size_t n_win;
	struct flight *flight; /* the refresh it leads or waits for, or NULL */
};

/*
 * One refresh of a collection's map at a time per worker: a task that needs
 * one while another task of the same account and collection has it in
 * flight waits for it, then reads the map as that one left it. When
 * [upstream] dav_max_age runs out, every device syncing at that moment
 * would otherwise send the server its own REPORT and write its own refresh
 * (the p99 of the no-change Sync in bench/RESULTS.md). A flight that fails
 * (or whose leader's request goes away) sends its waiters to refresh on
 * their own, one of them leading again, except when the server failed
 * (not answering, an error): its waiters fail with it rather than each wait
 * out the same timeout in turn. A refused login is the leader's password's:
 * the waiters try their own.
 */
enum flight_end_how { FLIGHT_DONE, FLIGHT_FAILED, FLIGHT_ABANDONED };

struct flight {
	struct task *leader;
	struct task **waiters;
	size_t n_waiters;
};

static void changes_since(struct task *t);
static void changes_refresh(struct task *t);

static void task_end(struct task *t, int rv, const char *err);

/* The flight's end (the map refreshed, the server failed with err, or neither): the waiters go on.
 */
static void
flight_end(struct flight *f, enum flight_end_how how, const char *err)
{
	struct task *lead = f->leader;
	void **slot =
	    abq_hmap_get(&lead->d->shared->refreshing, lead->d->account, lead->coll.coll_id);
	int64_t seq = lead->coll.seq, pruned = lead->coll.pruned;

	if (slot != NULL && *slot == f)
		*slot = NULL; /* a refresh asked from now on is a new flight */
	lead->flight = NULL;
	/*
	 * One waiter at a time, each taken out as it goes on: going on may end a
	 * request (its rerun synchronous), freeing another waiter, which leaves
	 * the flight as any freed task does.
	 */
	while (f->n_waiters > 0) {
		struct task *w = f->waiters[--f->n_waiters];

		w->flight = NULL;
		if (how == FLIGHT_DONE) {
			w->coll.seq = seq;
			w->coll.pruned = pruned;
			changes_since(w);
		} else if (how == FLIGHT_FAILED) {
			task_end(w, -1, err);
		} else {
			changes_refresh(w);
		}
	}
	free(f->waiters);
	free(f);
}

/* A task freed: out of its flight (a leader's ends it: the waiters refresh on their own). */
static void
flight_leave(struct task *t)
{
	struct flight *f = t->flight;

	if (f == NULL)
		return;
	if (f->leader == t) {
		flight_end(f, FLIGHT_ABANDONED, NULL);
		return;
	}
	for (size_t i = 0; i < f->n_waiters; i++) {
		if (f->waiters[i] == t) {
			f->waiters[i] = f->waiters[--f->n_waiters];
			break;
		}
	}
	t->flight = NULL;
}

static void
task_free(struct task *t)
{
	flight_leave(t);
	abq_pim_coll_clear(&t->coll);
	abq_pim_item_clear(&t->it);
	for (size_t i = 0; i < t->n_found; i++) {
		free(t->found[i].href);
		free(t->found[i].name);
	}
	free(t->found);
	for (size_t i = 0; i < t->n_win; i++) {
		free(t->win_hrefs[i]);
		free(t->win_ids[i]);
	}
	free(t->win_hrefs);
	free(t->win_ids);
	free(t->win_unspanned);
	free(t->etag);
	free(t->uid);
	if (t->data != NULL)
		explicit_bzero(t->data, t->len); /* the user's data */
	free(t->data);
	free(t);
}

/* The task is over: its record says how; the waiter is told when it was the last. */
static void
task_end(struct task *t, int rv, const char *err)
{
	struct dav_backend *d = t->d;

	if (t->flight != NULL && t->flight->leader == t)
		flight_end(t->flight,
		           rv < 0 && err != DAV_LOGIN_REFUSED ? FLIGHT_FAILED : FLIGHT_ABANDONED,
		           err);
	t->rec->done = true;
	t->rec->rv = rv;
	t->rec->err = err;
	for (struct task **p = &d->tasks; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	task_free(t);
	if (--d->in_flight == 0 && d->wait_cb != NULL) {
		void (*cb)(void *) = d->wait_cb;
		d->wait_cb = NULL;
		cb(d->wait_arg);
	}
}

static struct task *
task_new(struct dav_backend *d, struct rec *r, const char *folder, const char *item)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->d = d;
	t->rec = r;
	snprintf(t->folder, sizeof(t->folder), "%s", folder ? folder : "");
	snprintf(t->item, sizeof(t->item), "%s", item ? item : "");
	t->next = d->tasks;
	d->tasks = t;
	d->in_flight++;
	return t;
}

/* Cancel what a task has in flight and free it, without a record (its backend goes away). */
static void
task_cancel(struct task *t)
{
	if (t->store_handle != NULL) {
		t->sj->t = NULL; /* its release still frees it */
		t->d->store.cancel(t->d->store.arg, t->store_handle);
	}
	if (t->op != NULL)
		dav_op_cancel(&t->op);
	task_free(t);
}

static const char *
dav_url(const struct dav_backend *d, int kind)
{
	return kind == DAV_CALDAV ? d->caldav : d->carddav;
}

/* The account's DAV client for kind, made when first needed; NULL with *errstr. */
static struct dav_account *
dav_of(struct dav_backend *d, int kind, const char **errstr)
{
	struct dav_conf c = {
	    .url = dav_url(d, kind),
	    .user = d->user,
	    .password = d->password,
	    .ca_file = d->ca_file,
	    .connect_timeout_ms = d->connect_timeout_ms,
	    .timeout_ms = d->timeout_ms,
	};

	if (d->dav[kind] != NULL)
		return d->dav[kind];
	if (c.url == NULL) {
		*errstr = kind == DAV_CALDAV ? "no [upstream] caldav" : "no [upstream] carddav";
		return NULL;
	}
	return d->dav[kind] = dav_account_new(d->cl, &c, errstr);
}

static int
dav_kind_of(int pim_kind)
{
	return pim_kind == ABQ_PIM_CONTACTS ? DAV_CARDDAV : DAV_CALDAV;
}

/* ---- store jobs ---- */

static void
sjob_free(void *arg)
{
	struct sjob *j = arg;

	free(j->account);
	free(j->coll_id);
	free(j->item_id);
	free(j->href);
	free(j->etag);
	free(j->token);
	for (size_t i = 0; i < j->n_colls; i++)
		abq_pim_coll_clear(&j->colls[i]);
	free(j->colls);
	for (size_t i = 0; i < j->n_changes; i++) {
		free((char *)j->changes[i].href);
		free((char *)j->changes[i].etag);
	}
	free(j->changes);
	if (j->ids != NULL)
		for (size_t i = 0; i < j->n_colls; i++)
			free(j->ids[i]);
	free(j->ids);
	abq_pim_coll_clear(&j->coll);
	abq_pim_item_clear(&j->item);
	for (size_t i = 0; i < j->n_items; i++)
		abq_pim_item_clear(&j->items[i]);
	free(j->items);
	free(j);
}

static int
iter_coll(void *arg, const struct abq_pim_coll *c)
{
	struct sjob *j = arg;
	struct abq_pim_coll *x;

	j->colls = xrealloc(j->colls, (j->n_colls + 1) * sizeof(*j->colls));
	x = &j->colls[j->n_colls++];
	memset(x, 0, sizeof(*x));
	x->coll_id = xstrdup(c->coll_id);
	x->href = xstrdup(c->href);
	x->kind = c->kind;
	x->name = xstrdup_null(c->name);
	x->is_default = c->is_default;
	return 0;
}

static int
iter_item(void *arg, const struct abq_pim_item *i)
{
	struct sjob *j = arg;
	struct abq_pim_item *x;

	j->items = xrealloc(j->items, (j->n_items + 1) * sizeof(*j->items));
	x = &j->items[j->n_items++];
	memset(x, 0, sizeof(*x));
	x->item_id = xstrdup(i->item_id);
	x->href = xstrdup(i->href);
	x->etag = xstrdup_null(i->etag);
	x->seq = i->seq;
	x->added_seq = i->added_seq;
	x->start = i->start;
	x->end = i->end;
	return 0;
}

/* The store thread: one job (reads and writes only j). */
static int
sjob_run(struct abq_store *s, void *arg)
{
	struct sjob *j = arg;
	const char *err = NULL;
	int rv = -1;

	switch (j->op) {
	case S_COLL_LIST:
		rv = abq_store_pim_coll_list(s, j->account, j->colls, j->n_colls, &j->ids, &err);
		break;
	case S_COLL_ITER:
		rv = abq_store_pim_coll_iter(s, j->account, iter_coll, j, &err);
		break;
	case S_COLL_GET:
		rv = abq_store_pim_coll_get(s, j->account, j->coll_id, &j->coll, &err);
		break;
	case S_REFRESH:
		rv = abq_store_pim_refresh(s, j->account, j->coll_id, j->changes, j->n_changes,
		                           j->complete, j->token, (int64_t)time(NULL), NULL, &err);
		if (rv == 0)
			rv = abq_store_pim_coll_get(s, j->account, j->coll_id, &j->coll, &err);
		break;
	case S_CHANGES:
		rv = abq_store_pim_changes(s, j->account, j->coll_id, j->since, j->limit, iter_item,
		                           j, &j->more, &err);
		break;
	case S_ITEM_GET:
		rv = abq_store_pim_item_get(s, j->account, j->coll_id, j->item_id, &j->item, &err);
		break;
	case S_ITEM_PUT:
		rv = abq_store_pim_item_put(s, j->account, j->coll_id, j->href, j->etag, 0, 0,
		                            &j->item, &err);
		break;
	case S_ITEM_BY_HREF:
		rv = abq_store_pim_item_by_href(s, j->account, j->coll_id, j->href, &j->item, &err);
		break;
	}
	if (rv < 0)
		snprintf(j->err, sizeof(j->err), "%s", err ? err : "failed");
	return rv;
}

static void
sjob_done(void *arg, int rv)
{
	struct sjob *j = arg;
	struct task *t = j->t;

	if (t == NULL)
		return;
	t->store_handle = NULL;
	t->sj = NULL;
	if (rv < 0) {
		log_warn("user=%s: contacts/calendars: the store: %s", t->d->account, j->err);
		task_end(t, -1, "the store failed");
		return;
	}
	t->store_then(t, j); /* j is released after this returns */
}

static struct sjob *
sjob_new(struct task *t, enum sop op)
{
	struct sjob *j = xcalloc(1, sizeof(*j));

	j->t = t;
	j->op = op;
	j->account = xstrdup(t->d->account);
	j->coll_id = t->folder[0] ? xstrdup(t->folder) : NULL;
	return j;
}

/* Queue j for t; then(t, j) runs with its result. */
static void
store_run(struct task *t, struct sjob *j, store_then_fn *then)
{
	t->sj = j;
	t->store_then = then;
	t->store_handle = t->d->store.call(t->d->store.arg, sjob_run, sjob_done, sjob_free, j);
	if (t->store_handle == NULL) {
		t->sj = NULL;
		sjob_free(j);
		task_end(t, -1, "the store is busy");
	}
}

/* ---- DAV requests ---- */

static void
dav_cb(void *arg, const struct dav_result *r)
{
	struct task *t = arg;

	t->op = NULL;
	t->dav_then(t, r);
}

/* A DAV request started for t (op, or NULL with err: the task ends); then(t, r) runs with its
 * result. */
static void
dav_run(struct task *t, struct dav_op *op, const char *err, dav_then_fn *then)
{
	if (op == NULL) {
		log_warn("user=%s: contacts/calendars: %s", t->d->account, err);
		task_end(t, -1, "the DAV server cannot be asked");
		return;
	}
	t->op = op;
	t->dav_then = then;
}

/* A DAV failure that ends the task: true when r is one. */
static bool
dav_failed(struct task *t, const struct dav_result *r, const char *what)
{
	if (r->status == DAV_OK)
		return false;
	log_warn("user=%s: contacts/calendars: %s: %s (%s)", t->d->account, what,
	         dav_status_name(r->status), r->error);
	task_end(t, -1, r->status == DAV_AUTH ? DAV_LOGIN_REFUSED : "the DAV server failed");
	return true;
}

/* The DAV client of the task's collection, or the task ends. */
static struct dav_account *
task_dav(struct task *t)
{
	const char *err = NULL;
	struct dav_account *a = dav_of(t->d, t->kind, &err);

	if (a == NULL)
		task_end(t, -1, err);
	return a;
}

/* ---- the folders ---- */

static int
by_href(const void *a, const void *b)
{
	const struct dav_collection *x = a, *y = b;

	return strcmp(x->href, y->href);
}

/* The last segment of an href, for a collection without a name. */
static char *
href_name(const char *href)
{
	size_t n = strlen(href);
	const char *p;

	while (n > 1 && href[n - 1] == '/')
		n--;
	p = href + n;
	while (p > href && p[-1] != '/')
		p--;
	return xmemdup0(p, (size_t)(href + n - p));
}

static void
folders_clear(struct dav_backend *d)
{
	for (size_t i = 0; i < d->n_folders; i++) {
		free((char *)d->folders[i].id);
		free((char *)d->folders[i].name);
	}
	free(d->folders);
	d->folders = NULL;
	d->n_folders = 0;
}

/* The folder list from the store's collections. */
static void
folders_from(struct dav_backend *d, const struct abq_pim_coll *c, size_t n)
{
	/* EAS types by store kind, [user's, default] */
	static const int types[4][2] = {
	    {MBX_FOLDER_USER_CALENDAR, MBX_FOLDER_CALENDAR},
	    {MBX_FOLDER_USER_CONTACTS, MBX_FOLDER_CONTACTS},
	    {MBX_FOLDER_USER_CALENDAR, MBX_FOLDER_CALENDAR},
	    {MBX_FOLDER_USER_TASKS, MBX_FOLDER_TASKS},
	};

	folders_clear(d);
	d->folders = n ? xcalloc(n, sizeof(*d->folders)) : NULL;
	d->n_folders = n;
	for (size_t i = 0; i < n; i++) {
		int k = c[i].kind >= 1 && c[i].kind <= 3 ? c[i].kind : 0;
		d->folders[i].id = xstrdup(c[i].coll_id);
		d->folders[i].parent_id = "0";
		d->folders[i].name = c[i].name ? xstrdup(c[i].name) : href_name(c[i].href);
		d->folders[i].type = types[k][c[i].is_default ? 1 : 0];
	}
}

static void folders_discover(struct task *t);

static void
folders_listed(struct task *t, struct sjob *j)
{
	folders_from(t->d, j->colls, j->n_colls);
	task_end(t, 0, NULL);
}

/* The collections the store has (no discovery now). */
static void
folders_stored(struct task *t)
{
	store_run(t, sjob_new(t, S_COLL_ITER), folders_listed);
}

static void
folders_assigned(struct task *t, struct sjob *j)
{
	bool created;
	void **at = abq_hmap_put(&t->d->shared->discovered, t->d->account, NULL, &created);

	*at = (void *)(intptr_t)time(NULL);
	for (size_t i = 0; i < j->n_colls; i++) {
		free(j->colls[i].coll_id);
		j->colls[i].coll_id = xstrdup(j->ids[i]);
	}
	folders_from(t->d, j->colls, j->n_colls);
	task_end(t, 0, NULL);
}

/* Every kind discovered: the whole discovery to the store, which keeps or gives ids. */
static void
folders_record(struct task *t)
{
	struct sjob *j = sjob_new(t, S_COLL_LIST);
	bool seen[4] = {false};

	qsort(t->found, t->n_found, sizeof(*t->found), by_href);
	for (size_t i = 0; i < t->n_found; i++) {
		const struct dav_collection *c = &t->found[i];
		int kinds[2], nk = 0;
		if (c->kind == DAV_CARDDAV) {
			kinds[nk++] = ABQ_PIM_CONTACTS;
		} else {
			if (c->components & DAVCOMP_VEVENT)
				kinds[nk++] = ABQ_PIM_CALENDAR;
			if (c->components & DAVCOMP_VTODO)
				kinds[nk++] = ABQ_PIM_TASKS;
		}
		for (int k = 0; k < nk; k++) {
			j->colls = xrealloc(j->colls, (j->n_colls + 1) * sizeof(*j->colls));
			struct abq_pim_coll *x = &j->colls[j->n_colls++];
			memset(x, 0, sizeof(*x));
			x->href = xstrdup(c->href);
			x->kind = kinds[k];
			x->name = xstrdup_null(c->name);
			x->is_default = !seen[kinds[k]]; /* the first of its kind, by href */
			seen[kinds[k]] = true;
		}
	}
	store_run(t, j, folders_assigned);
}

static void
folders_found(struct task *t, const struct dav_result *r)
{
	if (r->status != DAV_OK) {
		/* The server away: the phone keeps what it has, from the store. */
		log_warn("user=%s: contacts/calendars: discovery: %s (%s); the stored collections "
		         "are listed",
		         t->d->account, dav_status_name(r->status), r->error);
		folders_stored(t);
		return;
	}
	for (size_t i = 0; i < r->discovery->n_colls; i++) {
		const struct dav_collection *c = &r->discovery->colls[i];
		t->found = xrealloc(t->found, (t->n_found + 1) * sizeof(*t->found));
		struct dav_collection *x = &t->found[t->n_found++];
		memset(x, 0, sizeof(*x));
		x->href = xstrdup(c->href);
		x->kind = c->kind;
		x->components = c->components;
		x->name = xstrdup_null(c->name);
	}
	folders_discover(t);
}

/* Discover the next configured kind (CalDAV, then CardDAV), then record them all. */
static void
folders_discover(struct task *t)
{
	const char *err = NULL;

	while (t->next_kind <= DAV_CARDDAV && dav_url(t->d, t->next_kind) == NULL)
		t->next_kind++;
	if (t->next_kind > DAV_CARDDAV) {
		folders_record(t);
		return;
	}
	t->kind = t->next_kind++;
	struct dav_account *a = task_dav(t);
	if (a != NULL)
		dav_run(t, dav_discover(a, t->kind, dav_cb, t, &err), err, folders_found);
}

static void
folders_start(struct task *t)
{
	void **at = abq_hmap_get(&t->d->shared->discovered, t->d->account, NULL);

	if (at != NULL && (int64_t)time(NULL) - (int64_t)(intptr_t)*at < MBX_DAV_DISCOVER_TTL) {
		folders_stored(t);
		return;
	}
	t->next_kind = DAV_CALDAV;
	folders_discover(t);
}

/* ---- changes ---- */

static void changes_since(struct task *t);
static void changes_synced(struct task *t, const struct dav_result *r);

static void
spans_stored(struct task *t, struct sjob *j)
{
	(void)j;
	task_end(t, 1, NULL);
}

/*
 * The span of an event object for the map (pim_event_span), or 0 0 when it
 * cannot be read (the command layer sends it then, unjudged).
 */
static void
object_span(const char *data, size_t len, int64_t *start, int64_t *end)
{
	const char *err;
	icalcomponent *vcal = pim_ical_parse(data, len, &err);

	*start = *end = 0;
	if (vcal == NULL)
		return;
	if (pim_event_span(vcal, start, end, &err) < 0)
		*start = *end = 0;
	else if (*end == PIM_SPAN_OPEN)
		*end = MBX_SPAN_OPEN;
	icalcomponent_free(vcal);
}

static void
changes_fetched(struct task *t, const struct dav_result *r)
{
	struct dav_backend *d = t->d;
	struct sjob *j = NULL;

	if (dav_failed(t, r, "multiget"))
		return;
	/* each object recorded for fetch_object, under its item id */
	for (size_t i = 0; i < r->n_items; i++) {
		const struct dav_item *it = &r->items[i];
		if (it->status != 200 || it->data == NULL)
			continue; /* gone meanwhile: fetch_object finds it so */
		for (size_t k = 0; k < t->n_win; k++) {
			if (strcmp(t->win_hrefs[k], it->href) != 0)
				continue;
			char key[2 * MBX_ID_MAX + 2];
			snprintf(key, sizeof(key), "%s/%s", t->folder, t->win_ids[k]);
			if (rec_find(d, R_OBJECT, key) != NULL)
				break;
			struct rec *o = rec_new(d, R_OBJECT, key);
			o->done = true;
			o->rv = 1;
			o->obj.data = xmemdup0(it->data, it->data_len);
			o->obj.len = it->data_len;
			o->obj.etag = xstrdup_null(it->etag);
			/*
			 * An event the map has no span of: its span into the map
			 * (the same ETag: nothing but the span changes), so that
			 * a later Sync under a FilterType (a phone's, or the next
			 * after a FilterType change) judges it without fetching it.
			 */
			if (t->win_unspanned[k]) {
				int64_t st, en;
				object_span(it->data, it->data_len, &st, &en);
				if (st == 0 && en == 0)
					break;
				if (j == NULL) {
					j = sjob_new(t, S_REFRESH);
					j->changes = xcalloc(t->n_win, sizeof(*j->changes));
				}
				struct abq_pim_change *c = &j->changes[j->n_changes++];
				c->href = xstrdup(it->href);
				c->etag = xstrdup(it->etag ? it->etag : "");
				c->start = st;
				c->end = en;
			}
			break;
		}
	}
	if (j != NULL)
		store_run(t, j, spans_stored);
	else
		task_end(t, 1, NULL);
}

/* The map's items past the device's sequence, as the device's changes. */
static void
changes_listed(struct task *t, struct sjob *s)
{
	struct mbx_changes *ch = &t->rec->ch;
	size_t room = t->w.size, total = 0;
	int64_t upto = t->cur.seq;
	bool stopped = false, cal = t->coll.kind == ABQ_PIM_CALENDAR;
	const char *err = NULL;

	for (size_t i = 0; i < s->n_items; i++) {
		const struct abq_pim_item *it = &s->items[i];
		int64_t id = strtoll(it->item_id, NULL, 10);
		bool gone = it->etag == NULL, had = it->added_seq <= t->cur.seq;
		if (cur_own(&t->cur, id, it->seq) || (gone && !had)) {
			/* the device's own change, or one it never had that went: nothing to say */
			if (!stopped)
				upto = it->seq;
			continue;
		}
		total++;
		if (stopped || t->w.size == 0 || room == 0) {
			stopped = stopped || t->w.size > 0;
			continue;
		}
		struct mbx_change_item **v = gone ? &ch->deletes : had ? &ch->changed : &ch->adds;
		size_t *n = gone ? &ch->n_deletes : had ? &ch->n_changed : &ch->n_adds;
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		memset(&(*v)[*n], 0, sizeof(**v));
		snprintf((*v)[*n].id, sizeof((*v)[*n].id), "%s", it->item_id);
		(*v)[*n].start = it->start;
		(*v)[*n].end = it->end;
		(*n)++;
		room--;
		upto = it->seq;
		bool spanned = it->start != 0 || it->end != 0;
		/*
		 * An event the map knows to end before the layer's floor: not
		 * fetched ahead (the layer leaves it out, or fetches it itself
		 * when the device has it).
		 */
		if (!gone &&
		    !(cal && t->w.span_floor > 0 && spanned && it->end <= t->w.span_floor)) {
			t->win_hrefs = xrealloc(t->win_hrefs, (t->n_win + 1) * sizeof(char *));
			t->win_ids = xrealloc(t->win_ids, (t->n_win + 1) * sizeof(char *));
			t->win_unspanned =
			    xrealloc(t->win_unspanned, (t->n_win + 1) * sizeof(*t->win_unspanned));
			t->win_hrefs[t->n_win] = xstrdup(it->href);
			t->win_unspanned[t->n_win] = cal && !spanned;
			t->win_ids[t->n_win++] = xstrdup(it->item_id);
		}
	}
	ch->total = total + (s->more ? 1 : 0);
	ch->more_available = t->w.size > 0 && (stopped || s->more);
	if (t->w.size == 0) {
		cur_format(&t->cur, ch->cursor); /* only counted */
	} else {
		struct cur next = t->cur;
		next.seq = upto;
		for (size_t i = 0; i < next.n_own;) { /* own changes the sequence passed */
			if (next.own[i].seq <= next.seq)
				next.own[i] = next.own[--next.n_own];
			else
				i++;
		}
		cur_format(&next, ch->cursor);
	}
	if (t->n_win == 0) {
		task_end(t, 1, NULL);
		return;
	}
	/* the window's objects in one multiget, for the answer's fetch_object */
	struct dav_account *a = task_dav(t);
	if (a != NULL)
		dav_run(t,
		        dav_multiget(a, t->kind, t->coll.href, (const char *const *)t->win_hrefs,
		                     t->n_win, dav_cb, t, &err),
		        err, changes_fetched);
}

static void
changes_since(struct task *t)
{
	struct sjob *j;

	if (t->cur.seq < t->coll.pruned) {
		task_end(t, 0, NULL); /* behind the pruned tombstones: the device starts over */
		return;
	}
	j = sjob_new(t, S_CHANGES);
	j->since = t->cur.seq;
	/* a window and the own changes it may pass over; 0 (counting): all */
	j->limit = t->w.size == 0 ? 0 : t->w.size + OWN_MAX + 1;
	store_run(t, j, changes_listed);
}

static void
changes_refreshed(struct task *t, struct sjob *j)
{
	t->coll.seq = j->coll.seq;
	t->coll.pruned = j->coll.pruned;
	free(t->coll.token);
	t->coll.token = xstrdup_null(j->coll.token);
	if (j->again) { /* 507: the server has more changes from the new token */
		const char *err = NULL;
		struct dav_account *a = task_dav(t);
		if (a != NULL)
			dav_run(t, dav_sync(a, t->coll.href, t->coll.token + 2, dav_cb, t, &err),
			        err, changes_synced);
		return;
	}
	if (t->flight != NULL)
		flight_end(t->flight, FLIGHT_DONE, NULL);
	changes_since(t);
}

/* A refresh of the map from a DAV answer's items (and removed hrefs). */
static void
changes_store(struct task *t, const struct dav_result *r, bool complete, const char *token,
              bool more)
{
	struct sjob *j = sjob_new(t, S_REFRESH);

	j->complete = complete;
	j->n_changes = r->n_items + r->n_removed;
	j->changes = xcalloc(j->n_changes ? j->n_changes : 1, sizeof(*j->changes));
	for (size_t i = 0; i < r->n_items; i++) {
		j->changes[i].href = xstrdup(r->items[i].href);
		/* an ETag the server did not give: "" (compared as any other) */
		j->changes[i].etag = xstrdup(r->items[i].etag ? r->items[i].etag : "");
	}
	for (size_t i = 0; i < r->n_removed; i++)
		j->changes[r->n_items + i].href = xstrdup(r->removed[i]);
	j->token = xstrdup_null(token);
	j->again = more;
	store_run(t, j, changes_refreshed);
}

static void
changes_listing(struct task *t, const struct dav_result *r)
{
	if (dav_failed(t, r, "listing"))
		return;
	changes_store(t, r, true, "l:", false);
}

static void
changes_list(struct task *t)
{
	const char *err = NULL;
	struct dav_account *a = task_dav(t);

	if (a != NULL)
		dav_run(t, dav_list(a, t->coll.href, dav_cb, t, &err), err, changes_listing);
}

static void
changes_synced(struct task *t, const struct dav_result *r)
{
	const char *err = NULL;

	if (r->status == DAV_TOKEN_INVALID && !t->initial_sync) {
		/* the server forgot the token: the whole collection again */
		struct dav_account *a = task_dav(t);
		t->initial_sync = true;
		if (a != NULL)
			dav_run(t, dav_sync(a, t->coll.href, NULL, dav_cb, t, &err), err,
			        changes_synced);
		return;
	}
	if (r->status == DAV_HTTP || r->status == DAV_PRECONDITION || r->status == DAV_FORBIDDEN) {
		/* no sync-collection on this server: its listing, from now on */
		changes_list(t);
		return;
	}
	if (dav_failed(t, r, "sync-collection"))
		return;
	char *token = r->sync_token ? xasprintf("s:%s", r->sync_token) : NULL;
	bool complete = t->initial_sync && t->sync_rounds == 0;
	t->sync_rounds++;
	changes_store(t, r, complete, token, r->more && t->sync_rounds < SYNC_ROUNDS_MAX && token);
	free(token);
}

/* The collection known: its map brought up to the server. */
static void
changes_coll(struct task *t, struct sjob *j)
{
	if (j->coll.coll_id == NULL) {
		task_end(t, -1, "no such folder");
		return;
	}
	t->coll = j->coll;
	memset(&j->coll, 0, sizeof(j->coll));
	t->kind = dav_kind_of(t->coll.kind);
	struct dav_account *a = task_dav(t);
	if (a == NULL)
		return;
	/*
	 * A refresh made a moment ago by any device of the account serves: a
	 * count (Ping, GetItemEstimate, a held Ping's poll) for MBX_DAV_FRESH
	 * seconds at least (the account's devices polling share one look at the
	 * server), a Sync for [upstream] dav_max_age. Without it each no-change
	 * Sync costs the DAV server a sync-collection REPORT, more than the
	 * Sync itself costs abqd (bench/RESULTS.md, native_pim), and each
	 * window of an initial sync asks it again before its multiget.
	 */
	int64_t age = (int64_t)time(NULL) - t->coll.refreshed;
	int64_t fresh =
	    t->w.size == 0 && t->d->max_age_s < MBX_DAV_FRESH ? MBX_DAV_FRESH : t->d->max_age_s;
	if (t->coll.refreshed > 0 && age >= 0 && age < fresh) {
		changes_since(t);
		return;
	}
	changes_refresh(t);
}

/* The map of t's collection brought up to the server, or t waits for the refresh in flight. */
static void
changes_refresh(struct task *t)
{
	const char *err = NULL;
	bool created;
	void **slot =
	    abq_hmap_put(&t->d->shared->refreshing, t->d->account, t->coll.coll_id, &created);
	struct flight *f = *slot;
	struct dav_account *a;

	if (f != NULL) {
		f->waiters = xrealloc(f->waiters, (f->n_waiters + 1) * sizeof(*f->waiters));
		f->waiters[f->n_waiters++] = t;
		t->flight = f;
		t->d->shared->joined++;
		return;
	}
	t->d->shared->refreshes++;
	f = xcalloc(1, sizeof(*f));
	f->leader = t;
	t->flight = f;
	*slot = f;
	if ((a = task_dav(t)) == NULL)
		return;
	if (t->coll.token != NULL && strncmp(t->coll.token, "l:", 2) == 0) {
		changes_list(t);
		return;
	}
	const char *tok = t->coll.token != NULL && strncmp(t->coll.token, "s:", 2) == 0
	                      ? t->coll.token + 2
	                      : NULL;
	t->initial_sync = tok == NULL;
	dav_run(t, dav_sync(a, t->coll.href, tok, dav_cb, t, &err), err, changes_synced);
}

static void
changes_start(struct task *t)
{
	store_run(t, sjob_new(t, S_COLL_GET), changes_coll);
}

/* ---- one object, and the device's writes ---- */

static void
object_fetched(struct task *t, const struct dav_result *r)
{
	if (r->status == DAV_NOT_FOUND ||
	    (r->status == DAV_OK &&
	     (r->n_items == 0 || r->items[0].status != 200 || r->items[0].data == NULL))) {
		task_end(t, 0, NULL); /* gone on the server */
		return;
	}
	if (dav_failed(t, r, "multiget"))
		return;
	t->rec->obj.data = xmemdup0(r->items[0].data, r->items[0].data_len);
	t->rec->obj.len = r->items[0].data_len;
	t->rec->obj.etag = xstrdup_null(r->items[0].etag);
	task_end(t, 1, NULL);
}

static void
object_item(struct task *t, struct sjob *j)
{
	const char *err = NULL;
	const char *href = j->item.href;

	if (j->item.item_id == NULL || j->item.etag == NULL) {
		task_end(t, 0, NULL); /* no such item, or gone */
		return;
	}
	struct dav_account *a = task_dav(t);
	if (a != NULL)
		dav_run(t, dav_multiget(a, t->kind, t->coll.href, &href, 1, dav_cb, t, &err), err,
		        object_fetched);
}

static void
object_coll(struct task *t, struct sjob *j)
{
	struct sjob *k;

	if (j->coll.coll_id == NULL) {
		task_end(t, -1, "no such folder");
		return;
	}
	t->coll = j->coll;
	memset(&j->coll, 0, sizeof(j->coll));
	t->kind = dav_kind_of(t->coll.kind);
	k = sjob_new(t, S_ITEM_GET);
	k->item_id = xstrdup(t->item);
	store_run(t, k, object_item);
}

/* The device's write done on the server: the map follows, the cursor passes it. */
static void
write_recorded(struct task *t, struct sjob *j)
{
	struct cur c = t->cur;

	if (j->item.item_id == NULL) {
		task_end(t, t->data != NULL ? -1 : 1, "the map lost the item");
		return;
	}
	cur_note_own(&c, strtoll(j->item.item_id, NULL, 10), j->item.seq);
	cur_format(&c, t->rec->cursor);
	snprintf(t->rec->new_id, sizeof(t->rec->new_id), "%s", j->item.item_id);
	task_end(t, 1, NULL);
}

static void
write_done(struct task *t, const struct dav_result *r)
{
	struct sjob *j;

	if (r->status == DAV_CONFLICT) {
		task_end(t, MBX_CONFLICT, NULL);
		return;
	}
	if (t->data == NULL && r->status == DAV_NOT_FOUND) {
		/* a delete of what is gone already: the map follows */
	} else if (t->data != NULL && (r->status == DAV_PRECONDITION ||
	                               r->status == DAV_FORBIDDEN || r->status == DAV_HTTP)) {
		/* the server will not take this object (a UID it has, no right): this item only */
		log_info("user=%s: contacts/calendars: PUT refused: %s (%s)", t->d->account,
		         dav_status_name(r->status), r->error);
		task_end(t, MBX_REFUSED, NULL);
		return;
	} else if (dav_failed(t, r, t->data ? "PUT" : "DELETE")) {
		return;
	}
	j = sjob_new(t, S_ITEM_PUT);
	j->href = xstrdup(t->it.href);
	/* an ETag the server did not give: "" (the next refresh reports it changed) */
	j->etag = t->data != NULL ? xstrdup(r->etag ? r->etag : "") : NULL;
	store_run(t, j, write_recorded);
}

static const char *
content_type(int kind)
{
	return kind == DAV_CARDDAV ? "text/vcard; charset=utf-8" : "text/calendar; charset=utf-8";
}

/* A new resource's href in the task's collection. */
static char *
new_href(const struct task *t)
{
	char name[NAME_MAX_BYTES + 1];
	const char *base = t->coll.href;
	size_t bl = strlen(base);

	/*
	 * A fresh random name, not the UID: some servers ignore If-None-Match
	 * (SOGo 5.8), so a name that exists would be overwritten; a UID the
	 * collection has is the server's to refuse (no-uid-conflict).
	 */
	uint64_t r[2] = {0, 0};
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
	snprintf(name, sizeof(name), "abq-%016" PRIx64 "%016" PRIx64, r[0], r[1]);
	return xasprintf("%s%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", name,
	                 t->kind == DAV_CARDDAV ? ".vcf" : ".ics");
}

/* If-Match of a Change: the version the device has, the map's (the one read when the server gave
 * none). */
static const char *
device_version(const struct task *t)
{
	return t->it.etag[0] != '\0' || t->etag == NULL ? t->it.etag : t->etag;
}

/*
 * If-Match of a write: the device's version, or, for one not the device's
 * (not_device), the version the command layer read (the map's may be
 * behind the server).
 */
static const char *
write_version(const struct task *t)
{
	return t->not_device && t->etag != NULL ? t->etag : device_version(t);
}

static void
write_item(struct task *t, struct sjob *j)
{
	const char *err = NULL;
	struct dav_account *a;

	if (t->item[0] != '\0') {
		if (j->item.item_id == NULL || j->item.etag == NULL) {
			task_end(t, 0, NULL); /* no such item */
			return;
		}
		t->it = j->item;
		memset(&j->item, 0, sizeof(j->item));
		int64_t id = strtoll(t->it.item_id, NULL, 10);
		/*
		 * Changed on the server since the device's cursor (the map says
		 * so), or since the map last looked (the object the command layer
		 * read is not the version the map has, which is the one the device
		 * has): the server's wins.
		 */
		if (!t->not_device &&
		    ((t->it.seq > t->cur.seq && !cur_own(&t->cur, id, t->it.seq)) ||
		     (t->data != NULL && t->etag != NULL && t->it.etag[0] != '\0' &&
		      strcmp(t->etag, t->it.etag) != 0))) {
			task_end(t, MBX_CONFLICT, NULL);
			return;
		}
	} else {
		t->it.href = new_href(t);
	}
	if ((a = task_dav(t)) == NULL)
		return;
	if (t->data != NULL)
		dav_run(t,
		        dav_put(a, t->it.href, content_type(t->kind), t->data, t->len,
		                t->item[0] ? write_version(t) : NULL, dav_cb, t, &err),
		        err, write_done);
	else
		dav_run(t, dav_delete(a, t->it.href, t->it.etag, dav_cb, t, &err), err, write_done);
}

static void
write_coll(struct task *t, struct sjob *j)
{
	if (j->coll.coll_id == NULL) {
		task_end(t, -1, "no such folder");
		return;
	}
	t->coll = j->coll;
	memset(&j->coll, 0, sizeof(j->coll));
	t->kind = dav_kind_of(t->coll.kind);
	if (t->item[0] == '\0') {
		struct sjob none = {0};
		write_item(t, &none);
		return;
	}
	struct sjob *k = sjob_new(t, S_ITEM_GET);
	k->item_id = xstrdup(t->item);
	store_run(t, k, write_item);
}

/* ---- an event by its UID ---- */

/* The item the map has (or now has) for the href found: the answer. */
static void
found_item(struct task *t, struct sjob *j)
{
	if (j->item.item_id == NULL || j->item.etag == NULL) {
		if (j->op == S_ITEM_BY_HREF) {
			/*
			 * An object the map has not seen yet (another client's,
			 * the server's scheduling, since the last refresh): it is
			 * recorded now with the ETag the server gave, as a
			 * refresh would (a new id, the next sequence: the
			 * device's next Sync brings it), so that the answer
			 * updates it instead of a PUT the server refuses.
			 */
			struct sjob *k = sjob_new(t, S_ITEM_PUT);
			k->href = xstrdup(j->href);
			k->etag = xstrdup(t->it.etag);
			store_run(t, k, found_item);
			return;
		}
		task_end(t, 0, NULL);
		return;
	}
	snprintf(t->rec->new_id, sizeof(t->rec->new_id), "%s", j->item.item_id);
	task_end(t, 1, NULL);
}

static void
found(struct task *t, const struct dav_result *r)
{
	struct sjob *j;

	if (r->status == DAV_HTTP || r->status == DAV_NOT_FOUND || r->status == DAV_FORBIDDEN) {
		/* a server that will not run the query: nothing found, the caller adds anew */
		log_info("user=%s: calendars: calendar-query refused: %s", t->d->account, r->error);
		task_end(t, 0, NULL);
		return;
	}
	if (dav_failed(t, r, "calendar-query"))
		return;
	/* a UID is unique in a calendar (RFC 4791 5.3.2.1): the first one served */
	for (size_t i = 0; i < r->n_items; i++) {
		if (r->items[i].etag == NULL || r->items[i].etag[0] == '\0' ||
		    strlen(r->items[i].href) > ABQ_PIM_HREF_MAX ||
		    strlen(r->items[i].etag) > ABQ_PIM_ETAG_MAX)
			continue;
		t->it.etag = xstrdup(r->items[i].etag);
		j = sjob_new(t, S_ITEM_BY_HREF);
		j->href = xstrdup(r->items[i].href);
		store_run(t, j, found_item);
		return;
	}
	task_end(t, 0, NULL);
}

static void
find_coll(struct task *t, struct sjob *j)
{
	const char *err = NULL;
	struct dav_account *a;

	if (j->coll.coll_id == NULL) {
		task_end(t, -1, "no such folder");
		return;
	}
	t->coll = j->coll;
	memset(&j->coll, 0, sizeof(j->coll));
	t->kind = dav_kind_of(t->coll.kind);
	if (t->coll.kind != ABQ_PIM_CALENDAR) {
		task_end(t, 0, NULL); /* events are in calendars only */
		return;
	}
	if ((a = task_dav(t)) != NULL)
		dav_run(t, dav_calendar_uid_query(a, t->coll.href, t->uid, dav_cb, t, &err), err,
		        found);
}

/* ---- the ops ---- */

/* The request's record of (kind, key): answered (its rv), or a task started for it (MBX_PENDING).
 */
static struct rec *
record_of(struct dav_backend *d, enum rec_kind kind, const char *key, bool *fresh)
{
	struct rec *r = rec_find(d, kind, key);

	*fresh = r == NULL;
	if (r == NULL)
		r = rec_new(d, kind, key);
	return r;
}

static int
answered(const struct rec *r, const char **errstr_r)
{
	if (!r->done)
		return MBX_PENDING;
	if (r->rv == -1)
		*errstr_r = r->err ? r->err : "failed";
	return r->rv;
}

static int
d_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
               const char **errstr_r)
{
	struct dav_backend *d = B(b);
	bool fresh;
	struct rec *r = record_of(d, R_FOLDERS, "", &fresh);
	int rv;

	if (fresh)
		folders_start(task_new(d, r, NULL, NULL));
	if ((rv = answered(r, errstr_r)) < 0)
		return rv;
	*folders_r = d->folders;
	*n_r = d->n_folders;
	return 0;
}

static struct mbx_change_item *
dup_items(const struct mbx_change_item *v, size_t n)
{
	struct mbx_change_item *c = n ? xcalloc(n, sizeof(*c)) : NULL;

	if (n)
		memcpy(c, v, n * sizeof(*c));
	return c;
}

static int
d_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
          const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	struct dav_backend *d = B(b);
	char key[MBX_ID_MAX + MBX_CURSOR_MAX + 48];
	struct cur c;
	bool fresh;
	struct rec *r;
	int rv;

	if (cur_parse(cursor, &c) < 0)
		return 0; /* not a cursor of ours: start over */
	snprintf(key, sizeof(key), "%s %zu %s", folder_id, w->size, cursor ? cursor : "");
	r = record_of(d, R_CHANGES, key, &fresh);
	if (fresh) {
		struct task *t = task_new(d, r, folder_id, NULL);
		t->cur = c;
		t->w = *w;
		changes_start(t);
	}
	if ((rv = answered(r, errstr_r)) != 1)
		return rv;
	/* a copy: the command layer clears it */
	*out = r->ch;
	out->adds = dup_items(r->ch.adds, r->ch.n_adds);
	out->changed = dup_items(r->ch.changed, r->ch.n_changed);
	out->deletes = dup_items(r->ch.deletes, r->ch.n_deletes);
	return 1;
}

static int
d_fetch_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
               struct mbx_object *out, const char **errstr_r)
{
	struct dav_backend *d = B(b);
	char key[2 * MBX_ID_MAX + 2];
	bool fresh;
	struct rec *r;
	int rv;

	snprintf(key, sizeof(key), "%s/%s", folder_id, item_id);
	r = record_of(d, R_OBJECT, key, &fresh);
	if (fresh) {
		struct task *t = task_new(d, r, folder_id, item_id);
		store_run(t, sjob_new(t, S_COLL_GET), object_coll);
	}
	if ((rv = answered(r, errstr_r)) != 1)
		return rv;
	out->data = xmemdup0(r->obj.data, r->obj.len);
	out->len = r->obj.len;
	out->etag = xstrdup_null(r->obj.etag);
	return 1;
}

/* The request's next write: its record (made in order), and whether it is new. */
static struct rec *
next_write(struct dav_backend *d, enum rec_kind kind, bool *fresh)
{
	char key[32];

	snprintf(key, sizeof(key), "#%zu", d->next_write++);
	return record_of(d, kind, key, fresh);
}

static int
write_answer(struct rec *r, char *cursor, char *new_id_r, const char **errstr_r)
{
	int rv = answered(r, errstr_r);

	if (rv == 1) {
		if (cursor != NULL && r->cursor[0] != '\0')
			snprintf(cursor, MBX_CURSOR_MAX + 1, "%s", r->cursor);
		if (new_id_r != NULL)
			snprintf(new_id_r, MBX_ID_MAX + 1, "%s", r->new_id);
	}
	return rv;
}

static int
d_put_object(struct mbx_backend *b, const char *folder_id, const char *item_id, const char *etag,
             const char *data, size_t len, const char *name, char *cursor, char *new_id_r,
             const char **errstr_r)
{
	struct dav_backend *d = B(b);
	bool fresh;
	struct rec *r = next_write(d, R_PUT, &fresh);

	(void)name; /* a new resource gets a random name: new_href */

	if (fresh) {
		struct cur c;
		if (cur_parse(cursor, &c) < 0) {
			r->done = true;
			r->rv = 0; /* a cursor not of ours: the item is not the device's */
			return 0;
		}
		struct task *t = task_new(d, r, folder_id, item_id);
		t->cur = c;
		t->not_device = cursor == NULL;
		t->etag = xstrdup_null(etag);
		t->data = xmemdup0(data, len);
		t->len = len;
		store_run(t, sjob_new(t, S_COLL_GET), write_coll);
	}
	return write_answer(r, cursor, item_id == NULL ? new_id_r : NULL, errstr_r);
}

static int
d_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
         char *cursor, const char **errstr_r)
{
	struct dav_backend *d = B(b);
	bool fresh;
	struct rec *r = next_write(d, R_REMOVE, &fresh);

	(void)to_trash; /* no trash for contacts and calendars */
	if (fresh) {
		struct cur c;
		if (cur_parse(cursor, &c) < 0) {
			r->done = true;
			r->rv = 0;
			return 0;
		}
		struct task *t = task_new(d, r, folder_id, item_id);
		t->cur = c;
		t->not_device = cursor == NULL;
		store_run(t, sjob_new(t, S_COLL_GET), write_coll);
	}
	return write_answer(r, cursor, NULL, errstr_r);
}

static int
d_find_uid(struct mbx_backend *b, const char *folder_id, const char *uid, char *item_id_r,
           const char **errstr_r)
{
	struct dav_backend *d = B(b);
	char key[MBX_ID_MAX + DAV_UID_MAX + 2];
	const char *why;
	bool fresh;
	struct rec *r;
	int rv;

	/* a UID no query can carry (too long, control characters): none found */
	char *body = dav_calendar_uid_query_body(uid, &why);
	if (body == NULL)
		return 0;
	free(body);
	snprintf(key, sizeof(key), "%s %s", folder_id, uid);
	r = record_of(d, R_FIND, key, &fresh);
	if (fresh) {
		struct task *t = task_new(d, r, folder_id, NULL);
		t->uid = xstrdup(uid);
		store_run(t, sjob_new(t, S_COLL_GET), find_coll);
	}
	if ((rv = answered(r, errstr_r)) != 1)
		return rv;
	snprintf(item_id_r, MBX_ID_MAX + 1, "%s", r->new_id);
	return 1;
}

static void
d_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	struct dav_backend *d = B(b);

	if (d->in_flight == 0) {
		cb(arg);
		return;
	}
	d->wait_cb = cb;
	d->wait_arg = arg;
}

static void
d_begin(struct mbx_backend *b)
{
	B(b)->next_write = 0;
}

/* The request answered: its records go (tasks still in flight are cancelled). */
static void
d_end(struct mbx_backend *b)
{
	struct dav_backend *d = B(b);

	while (d->tasks != NULL) {
		struct task *t = d->tasks;
		d->tasks = t->next;
		task_cancel(t);
	}
	d->in_flight = 0;
	d->wait_cb = NULL;
	for (size_t i = 0; i < d->n_recs; i++)
		rec_free(d->recs[i]);
	free(d->recs);
	d->recs = NULL;
	d->n_recs = d->next_write = 0;
}

static void
d_destroy(struct mbx_backend *b)
{
	struct dav_backend *d = B(b);

	d_end(b);
	folders_clear(d);
	dav_account_free(&d->dav[DAV_CALDAV]);
	dav_account_free(&d->dav[DAV_CARDDAV]);
	free(d->caldav);
	free(d->carddav);
	free(d->ca_file);
	free(d->account);
	free(d->user);
	if (d->password != NULL)
		explicit_bzero(d->password, strlen(d->password));
	free(d->password);
	free(d);
}

static const struct mbx_ops dav_ops = {
    .name = "dav",
    .list_folders = d_list_folders,
    .list_items = mbx_no_list_items,
    .fetch = mbx_no_fetch,
    .set_read = mbx_no_set_read,
    .destroy = d_destroy,
    .wait = d_wait,
    .begin = d_begin,
    .end = d_end,
    .changes = d_changes,
    .set_flags = mbx_no_set_flags,
    .remove = d_remove,
    .fetch_object = d_fetch_object,
    .put_object = d_put_object,
    .find_uid = d_find_uid,
};

struct mbx_backend *
mbx_dav_new(struct curl_loop *cl, struct mbx_dav_shared *shared, const struct mbx_dav_conf *conf,
            const struct mbx_dav_store *store, const char *account, const char *user,
            const char *password, const char **errstr)
{
	struct dav_backend *d;

	if (conf->caldav == NULL && conf->carddav == NULL) {
		*errstr = "neither [upstream] caldav nor carddav";
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->base.ops = &dav_ops;
	d->cl = cl;
	d->shared = shared;
	d->store = *store;
	d->caldav = xstrdup_null(conf->caldav);
	d->carddav = xstrdup_null(conf->carddav);
	d->ca_file = xstrdup_null(conf->ca_file);
	d->connect_timeout_ms = conf->connect_timeout_ms;
	d->timeout_ms = conf->timeout_ms;
	d->max_age_s = conf->max_age_s;
	d->account = xstrdup(account);
	d->user = xstrdup(user);
	d->password = xstrdup(password);
	/* the configuration checked now, as the DAV client reads it */
	for (int kind = DAV_CALDAV; kind <= DAV_CARDDAV; kind++) {
		if (dav_url(d, kind) != NULL && dav_of(d, kind, errstr) == NULL) {
			d_destroy(&d->base);
			return NULL;
		}
	}
	return &d->base;
}
