/*
 * run.c: the command layer driven over asynchronous backends and sync state
 * (run.h).
 *
 * One struct mbx_run per request. step() is the loop: serve, and on
 * MBX_PENDING count what is outstanding (the state reads this run started,
 * the backend's wait) and return; each completion counts down, and the last
 * one calls step() again. Completions that arrive while step() itself is on
 * the stack (synchronous accessors and backends) only count down: step()
 * sees the count at zero and loops instead of recursing.
 *
 * The staging accessor handed to mbx_serve: reads look at this run's staged
 * writes first (newest first; a delete of every collection hides all), then
 * at the blobs fetched for the request, and start a fetch for anything else
 * (MBX_PENDING unless the fetch completed at once). Writes are staged,
 * compacted (a later write of a collection replaces an earlier one, a delete
 * of every collection replaces all), and dropped at the start of every run.
 * SendMail's ClientId ops are not staged (a reservation must hold before the
 * message goes out): each is done once per request when a run first asks,
 * and later runs get its answer.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mailbox/run.h"

/* A blob fetched for the request (the state before it). */
struct fetched {
	struct mbx_run *run;
	char *collection;
	bool done;
	int rv; /* 1, 0 none, -1 failure */
	char *blob;
	size_t len;
};

/* A ClientId op of the request (commands.h), done once: its answer. */
struct cid_op {
	struct mbx_run *run;
	char *client_id;
	bool done;
	int rv;
};

/* A staged write of the current run; collection NULL: every collection. */
struct staged {
	char *collection;
	char *blob; /* NULL: a delete */
	size_t len;
};

struct mbx_run {
	struct mbx_serve_in in; /* the caller's, with the staging accessor */
	struct mbx_async_state state;
	int max_runs, runs;
	mbx_run_done_fn done;
	void *arg;
	struct fetched **fetched;
	size_t n_fetched;
	struct staged *staged;
	size_t n_staged;
	int outstanding;          /* reads in flight + the backend's wait */
	int started;              /* reads this run started that did not complete at once */
	bool stepping;            /* step() is on the stack */
	bool read_failed;         /* the read cap was hit: a failure, not a wait */
	struct mbx_state_op *ops; /* the commit's batch */
	struct cid_op *cid[3];    /* by enum mbx_client_id_op; NULL: not asked yet */
	struct mbx_serve_out out;
};

static void step(struct mbx_run *r);

/* Drop the current run's staged writes. */
static void
staged_clear(struct mbx_run *r)
{
	for (size_t i = 0; i < r->n_staged; i++) {
		free(r->staged[i].collection);
		free(r->staged[i].blob);
	}
	free(r->staged);
	r->staged = NULL;
	r->n_staged = 0;
}

/* Free the request's context. */
static void
run_free(struct mbx_run *r)
{
	for (size_t i = 0; i < r->n_fetched; i++) {
		free(r->fetched[i]->collection);
		free(r->fetched[i]->blob);
		free(r->fetched[i]);
	}
	free(r->fetched);
	for (size_t i = 0; i < 3; i++) {
		if (r->cid[i] != NULL)
			free(r->cid[i]->client_id);
		free(r->cid[i]);
	}
	staged_clear(r);
	free(r->ops);
	mbx_serve_out_clear(&r->out);
	free(r);
}

/* Hand the answer over and end the request: the backend's scope first, as done may free it. */
static void
respond(struct mbx_run *r, int rv)
{
	mbx_end(r->in.backend);
	r->done(r->arg, rv, &r->out);
	run_free(r);
}

/* Replace the answer by HTTP 500 (nothing of it reaches the phone). */
static void
fail_500(struct mbx_run *r, const char *detail)
{
	mbx_serve_out_clear(&r->out);
	r->out.http_status = 500;
	r->out.detail = detail;
}

/* A state read completed: keep its blob, count down, go on when it was the last. */
static void
got(void *done_arg, int rv, char *blob, size_t len)
{
	struct fetched *f = done_arg;
	struct mbx_run *r = f->run;

	f->done = true;
	f->rv = rv > 0 && blob != NULL ? 1 : rv < 0 ? -1 : 0;
	if (f->rv == 1) {
		f->blob = blob;
		f->len = len;
	} else {
		free(blob);
	}
	if (--r->outstanding == 0 && !r->stepping)
		step(r);
}

/* A ClientId op completed: keep its answer, count down, go on when it was the last. */
static void
cid_done(void *done_arg, int rv)
{
	struct cid_op *c = done_arg;
	struct mbx_run *r = c->run;

	c->done = true;
	c->rv = rv == MBX_PENDING ? -1 : rv;
	if (--r->outstanding == 0 && !r->stepping)
		step(r);
}

/*
 * The staging accessor's ClientId op: its answer when it was done for the
 * request, else started (MBX_PENDING unless it completed at once). One
 * ClientId per request: an op asked again for another is a failure.
 */
static int
view_client_id(void *arg, const char *account, const char *device_id, const char *client_id, int op)
{
	struct mbx_run *r = arg;
	struct cid_op *c;

	if (op < MBX_CLIENTID_RESERVE || op > MBX_CLIENTID_RELEASE)
		return -1;
	if ((c = r->cid[op]) != NULL)
		return strcmp(c->client_id, client_id) != 0 ? -1 : c->done ? c->rv : MBX_PENDING;
	c = r->cid[op] = xcalloc(1, sizeof(*c));
	c->run = r;
	c->client_id = xstrdup(client_id);
	r->outstanding++;
	r->state.client_id(r->state.arg, account, device_id, c->client_id, op, cid_done, c);
	if (!c->done)
		r->started++;
	return c->done ? c->rv : MBX_PENDING;
}

/* The backend's outstanding work is done: count down, go on when it was the last. */
static void
backend_ready(void *arg)
{
	struct mbx_run *r = arg;

	if (--r->outstanding == 0 && !r->stepping)
		step(r);
}

/* A fetched blob as the accessor answers it: 1 with a copy, 0, -1, MBX_PENDING. */
static int
answer_fetched(const struct fetched *f, char **blob_r, size_t *len_r)
{
	if (!f->done)
		return MBX_PENDING;
	if (f->rv == 1) {
		*blob_r = xmalloc(f->len + 1);
		memcpy(*blob_r, f->blob, f->len);
		(*blob_r)[f->len] = '\0';
		*len_r = f->len;
	}
	return f->rv;
}

/* The staging accessor's read: this run's writes, the fetched state, or a fetch. */
static int
view_get(void *arg, const char *account, const char *device_id, const char *collection,
         char **blob_r, size_t *len_r)
{
	struct mbx_run *r = arg;

	for (size_t i = r->n_staged; i-- > 0;) {
		const struct staged *s = &r->staged[i];
		if (s->collection == NULL)
			return 0; /* every collection deleted */
		if (strcmp(s->collection, collection) != 0)
			continue;
		if (s->blob == NULL)
			return 0;
		*blob_r = xmalloc(s->len + 1);
		memcpy(*blob_r, s->blob, s->len);
		(*blob_r)[s->len] = '\0';
		*len_r = s->len;
		return 1;
	}
	for (size_t i = 0; i < r->n_fetched; i++) {
		if (strcmp(r->fetched[i]->collection, collection) == 0)
			return answer_fetched(r->fetched[i], blob_r, len_r);
	}
	if (r->n_fetched >= MBX_RUN_MAX_READS) {
		r->read_failed = true;
		return -1;
	}
	struct fetched *f = xcalloc(1, sizeof(*f));
	f->run = r;
	f->collection = xstrdup(collection);
	r->fetched = xrealloc(r->fetched, (r->n_fetched + 1) * sizeof(*r->fetched));
	r->fetched[r->n_fetched++] = f;
	r->outstanding++;
	r->state.get(r->state.arg, account, device_id, f->collection, got, f);
	if (!f->done)
		r->started++;
	return answer_fetched(f, blob_r, len_r);
}

/*
 * Stage one write; collection NULL (a delete) replaces every earlier write,
 * a write of a collection replaces the earlier one of that collection.
 */
static void
stage(struct mbx_run *r, const char *collection, const char *blob, size_t len)
{
	for (size_t i = 0; i < r->n_staged;) {
		if (collection == NULL || (r->staged[i].collection != NULL &&
		                           strcmp(r->staged[i].collection, collection) == 0)) {
			free(r->staged[i].collection);
			free(r->staged[i].blob);
			memmove(&r->staged[i], &r->staged[i + 1],
			        (r->n_staged - i - 1) * sizeof(*r->staged));
			r->n_staged--;
		} else {
			i++;
		}
	}
	r->staged = xrealloc(r->staged, (r->n_staged + 1) * sizeof(*r->staged));
	struct staged *s = &r->staged[r->n_staged++];
	s->collection = collection ? xstrdup(collection) : NULL;
	s->blob = NULL;
	s->len = len;
	if (blob != NULL) {
		s->blob = xmalloc(len + 1);
		memcpy(s->blob, blob, len);
		s->blob[len] = '\0';
	}
}

/* The staging accessor's write. */
static int
view_put(void *arg, const char *account, const char *device_id, const char *collection,
         const char *blob, size_t len)
{
	(void)account;
	(void)device_id;
	stage(arg, collection, blob, len);
	return 0;
}

/* The staging accessor's delete (collection NULL: every collection of the device). */
static int
view_del(void *arg, const char *account, const char *device_id, const char *collection)
{
	(void)account;
	(void)device_id;
	stage(arg, collection, NULL, 0);
	return 0;
}

/* The commit completed: the answer goes out, or HTTP 500 when it failed. */
static void
committed(void *done_arg, int rv)
{
	struct mbx_run *r = done_arg;

	if (rv < 0) {
		log_warn("mailbox: %s of %s/%s: the sync state could not be saved",
		         eas_cmd_name(r->in.cmd), r->in.device_id, r->in.account);
		fail_500(r, "sync state commit failed");
	}
	respond(r, 0);
}

/*
 * A run completed: commit its staged writes (unless the answer is a server
 * error, or there is nothing to write), then answer. r may be gone on return.
 */
static void
complete(struct mbx_run *r)
{
	if (r->out.http_status >= 500 || r->n_staged == 0) {
		respond(r, 0);
		return;
	}
	r->ops = xcalloc(r->n_staged, sizeof(*r->ops));
	for (size_t i = 0; i < r->n_staged; i++)
		r->ops[i] = (struct mbx_state_op){r->staged[i].collection, r->staged[i].blob,
		                                  r->staged[i].len};
	r->state.commit(r->state.arg, r->in.account, r->in.device_id, r->ops, r->n_staged,
	                committed, r);
}

/*
 * Run the request until it completes or waits; reruns while everything it
 * waited for completed at once. r may be gone on return.
 */
static void
step(struct mbx_run *r)
{
	r->stepping = true;
	for (;;) {
		if (r->runs >= r->max_runs) {
			log_warn("mailbox: %s of %s/%s: still pending after %d runs",
			         eas_cmd_name(r->in.cmd), r->in.device_id, r->in.account, r->runs);
			fail_500(r, "mailbox still pending after the cap on runs");
			respond(r, 0);
			return;
		}
		r->runs++;
		staged_clear(r);
		r->started = 0;
		mbx_serve_out_clear(&r->out);
		mbx_begin(r->in.backend);
		int rv = mbx_serve(&r->in, &r->out);
		if (r->read_failed) {
			log_warn("mailbox: %s of %s/%s: more than %d sync states read",
			         eas_cmd_name(r->in.cmd), r->in.device_id, r->in.account,
			         MBX_RUN_MAX_READS);
			fail_500(r, "too many sync states read");
			respond(r, 0);
			return;
		}
		if (rv != MBX_PENDING) {
			if (rv < 0)
				respond(r, -1);
			else
				complete(r);
			return;
		}
		if (r->started == 0 && !mbx_may_pend(r->in.backend)) {
			log_warn("mailbox: %s of %s/%s: pending with nothing outstanding",
			         eas_cmd_name(r->in.cmd), r->in.device_id, r->in.account);
			fail_500(r, "mailbox pending with nothing outstanding");
			respond(r, 0);
			return;
		}
		r->outstanding++; /* held while the backend's wait is being asked */
		if (mbx_may_pend(r->in.backend)) {
			r->outstanding++;
			mbx_wait(r->in.backend, backend_ready, r);
		}
		if (--r->outstanding > 0) {
			r->stepping = false;
			return; /* the last completion calls step() */
		}
	}
}

/* Answer one request over a backend and a sync state that may answer later; see run.h. */
void
mbx_run(const struct mbx_serve_in *in, const struct mbx_async_state *state, int max_runs,
        mbx_run_done_fn done, void *arg)
{
	struct mbx_run *r = xcalloc(1, sizeof(*r));

	r->done = done;
	r->arg = arg;
	if (in == NULL || state == NULL || state->get == NULL || state->commit == NULL) {
		r->out.http_status = 500;
		respond(r, -1);
		return;
	}
	r->in = *in;
	r->in.state = (struct mbx_state_accessor){r, view_get, view_put, view_del,
	                                          state->client_id ? view_client_id : NULL};
	r->state = *state;
	r->max_runs = max_runs > 0 ? max_runs : MBX_RUN_MAX_RUNS;
	step(r);
}
