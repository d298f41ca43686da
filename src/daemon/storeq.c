/*
 * storeq.c: the store thread.
 *
 * Jobs go in a FIFO under a mutex; the thread takes them one at a time, runs
 * them against its own store handle, and hands each finished job back to
 * the loop (net/handback: an eventfd wakes it; libevent itself stays
 * single-threaded and lock-free), which calls the job's callback unless it
 * was cancelled meanwhile. Last-seen updates are appended
 * to a vector and written in one transaction once a second (or when many are
 * waiting); then the thread reads the change log and posts every device whose
 * recorded decision changed.
 *
 * Changes pushed (PostgreSQL): a second thread, the listener, waits on a
 * LISTEN connection of its own (abq_store_listener) with poll(2), and when a
 * notice arrives it sets `notified` and wakes the store thread, which reads
 * the change log at once. A thread rather than the libpq socket in the store
 * thread's wait: the store thread waits on a condition variable for jobs,
 * and the listener's connection must be re-established with backoff without
 * delaying jobs. After the listener (re)connects it asks for one read, which
 * catches up with whatever was missed while it was away; the once-a-second
 * read stays as the safety net.
 *
 * Changes seen on disk (SQLite, which cannot push): a thread of the same
 * shape, the watcher, waits on an inotify(7) descriptor watching the
 * directory of the store's files. Every commit, by abqctl, the admin API,
 * another abqd process on the same file or this one, writes the database
 * or its -wal file; each burst of such events (coalesced for
 * WATCH_COALESCE_MS) asks the store thread for a change-log read (and a few
 * more until one applies something, see watch_main), so an
 * administrator's decision reaches a held request in milliseconds rather
 * than at the next once-a-second read, which stays as the safety net (an
 * event can be lost when the kernel's queue overflows; the read is cheap:
 * one indexed SELECT of the rows after the last seen). Writes of this
 * process wake it too; they cost one such read each burst.
 *
 * Losing the store: when a read of the change log fails and the handle's
 * connection is gone, the store is "down" since that moment (storeq_down_since,
 * for the gateway's grace period); last-seen updates then wait, bounded by
 * TOUCH_MAX, until a write succeeds again, and the view catches up from its
 * last seq when the change log can be read again.
 */
#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <libgen.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/queue.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/registry.h"
#include "core/view.h"
#include "daemon/storeq.h"
#include "eas/request.h"
#include "mailbox/commands.h"
#include "mailbox/run.h"
#include "mailbox/serve.h"
#include "notice/sender.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/handback.h"

/* Flush last-seen updates early when this many wait. */
#define TOUCH_FLUSH_AT 10000
/* Last-seen updates kept while the store is down; beyond, the newest are dropped. */
#define TOUCH_MAX 100000
/* The listener's delays between connection attempts (ms). */
#define LISTEN_RETRY_MIN_MS 250
#define LISTEN_RETRY_MAX_MS 5000
/* Store-file events closer together than this make one change-log read. */
#define WATCH_COALESCE_MS 5

enum job_kind {
	JOB_OBSERVE,
	JOB_DEVICE,
	JOB_SERVE,
	JOB_LOGGERS,
	JOB_STATE_GET,
	JOB_STATE_COMMIT,
	JOB_FOLDERS,
	JOB_FOLDER_CHANGE,
	JOB_CLIENT_ID,
	JOB_CALL
};

struct storeq_job {
	STAILQ_ENTRY(storeq_job) link; /* in q->waiting */
	struct handback_link back;     /* finished, on its way to the loop */
	enum job_kind kind;
	struct storeq *q;
	/* JOB_OBSERVE */
	struct abq_device seen;
	storeq_observe_cb *cb;
	void *arg;
	bool cancelled; /* under q->lock */
	int rv;
	struct abq_device recorded;
	char *errmsg;
	/* JOB_SERVE */
	storeq_serve_cb *serve_cb;
	int cmd;
	char *version, *email, *sender, *contact;
	void *body;
	size_t body_len;
	struct mbx_serve_out out;
	/*
	 * JOB_STATE_GET: collection in, blob/len out; JOB_STATE_COMMIT: ops (their
	 * collections and blobs copied); JOB_FOLDERS: names in, ids out (nnames each).
	 */
	storeq_state_got_cb *got_cb;
	storeq_state_done_cb *done_cb;
	storeq_ids_cb *ids_cb;
	char *collection;
	char *blob;
	size_t len;
	struct mbx_state_op *ops;
	size_t nops;
	char **names, **ids;
	size_t nnames;
	/* JOB_FOLDERS: the names' MAILBOXIDs (NULL each: not known) and UIDVALIDITYs */
	char **mids;
	int64_t *uvs;
	bool fprobe;
	/*
	 * JOB_FOLDER_CHANGE: folder collection renamed to blob under fparent
	 * (NULL: the top), or deleted (blob NULL); done_cb tells rv.
	 */
	char *fparent;
	char fdelim;
	/* JOB_CLIENT_ID: collection is the ClientId, cmd the op; done_cb tells rv */
	/* JOB_DEVICE: a change read from the change log */
	struct abq_view_device now;
	/* JOB_LOGGERS: the whole list of loggers, after a logger change */
	struct abq_logger *loggers;
	size_t nloggers;
	/* JOB_CALL: the caller's function on the store thread, its result back */
	storeq_call_fn *call_run;
	storeq_call_done_fn *call_done;
	storeq_call_free_fn *call_free;
	void *call_arg;
};

struct touch {
	char *account;
	char *device_id;
	int64_t when;
	char *address;
	char *command;
};

struct storeq {
	struct abq_store *store;
	char *default_domain;
	struct abq_notice_conf notices; /* strings owned */
	bool notify;
	struct notice_sender *sender; /* under lock */
	struct abq_view *view;
	storeq_device_cb *on_device;
	void *arg;
	/* The loggers: the loop's callback; the list's generation last posted (thread). */
	storeq_logger_cb *on_loggers;
	void *loggers_arg;
	unsigned loggers_gen;
	struct abq_logger *start_loggers; /* the list at start, until the callback is set */
	size_t nstart_loggers;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	STAILQ_HEAD(job_fifo, storeq_job) waiting; /* jobs for the thread */
	struct touch *touches;
	size_t ntouches, captouches;
	struct handback *back; /* finished jobs, to the loop */

	/* Pushed changes (NULL listener: the backend cannot push). */
	struct abq_store_listener *listener;
	pthread_t listen_thread;
	int listen_stop; /* eventfd: stops the listener or the watcher */
	/* Store files watched (no listener): inotify descriptor, the watcher. */
	int watch_fd;
	pthread_t watch_thread;
	char *watch_names[4]; /* the base names of the store's files */
	unsigned applied;     /* under lock: refreshes that applied changes */
	bool notified;        /* under lock: a notice came, read the change log now */
	int64_t down_since;   /* under lock: 0, or when the store was found lost */
	size_t touches_dropped;
};

/* Free a job and everything it owns (its copies of the request, its result). */
static void
job_free(struct storeq_job *job)
{
	if (job->kind == JOB_CALL && job->call_free != NULL)
		job->call_free(job->call_arg);
	if (job->kind == JOB_SERVE) {
		mbx_serve_out_clear(&job->out);
		free(job->version);
		free(job->email);
		free(job->sender);
		free(job->contact);
		free(job->body);
	}
	free(job->collection);
	free(job->blob);
	free(job->fparent);
	for (size_t i = 0; i < job->nops; i++) {
		free((char *)job->ops[i].collection);
		free((char *)job->ops[i].blob);
	}
	free(job->ops);
	for (size_t i = 0; i < job->nnames; i++) {
		free(job->names[i]);
		if (job->mids != NULL)
			free(job->mids[i]);
		if (job->ids != NULL)
			free(job->ids[i]);
	}
	free(job->names);
	free(job->mids);
	free(job->uvs);
	free(job->ids);
	for (size_t i = 0; i < job->nloggers; i++)
		abq_logger_clear(&job->loggers[i]);
	free(job->loggers);
	abq_device_clear(&job->seen);
	abq_device_clear(&job->recorded);
	free(job->errmsg);
	free(job);
}

/* Hand a finished job to the loop. */
static void
job_done(struct storeq *q, struct storeq_job *job)
{
	handback_post(q->back, &job->back);
}

/* The loop's side: a finished job back. */
static void
deliver(void *arg, struct handback_link *l)
{
	struct storeq *q = arg;
	struct storeq_job *job = HANDBACK_OF(l, struct storeq_job, back);

	if (job->kind == JOB_DEVICE) {
		q->on_device(q->arg, job->seen.account, job->seen.device_id, &job->now);
	} else if (job->kind == JOB_LOGGERS) {
		if (q->on_loggers != NULL)
			q->on_loggers(q->loggers_arg, job->loggers, job->nloggers);
	} else {
		pthread_mutex_lock(&q->lock);
		bool cancelled = job->cancelled;
		pthread_mutex_unlock(&q->lock);
		if (cancelled) {
			/* dropped */
		} else if (job->kind == JOB_SERVE) {
			job->serve_cb(job->arg, job->rv, &job->out, job->errmsg);
		} else if (job->kind == JOB_STATE_GET) {
			char *blob = job->blob;
			job->blob = NULL; /* the callback takes it */
			job->got_cb(job->arg, job->rv, blob, job->len);
		} else if (job->kind == JOB_STATE_COMMIT || job->kind == JOB_FOLDER_CHANGE ||
		           job->kind == JOB_CLIENT_ID) {
			job->done_cb(job->arg, job->rv);
		} else if (job->kind == JOB_FOLDERS) {
			char **ids = job->rv >= 0 ? job->ids : NULL;
			if (ids != NULL)
				job->ids = NULL; /* the callback takes them */
			job->ids_cb(job->arg, job->rv, ids);
		} else if (job->kind == JOB_CALL) {
			job->call_done(job->call_arg, job->rv);
		} else if (job->kind == JOB_OBSERVE)
			job->cb(job->arg, job->rv, job->rv == 0 ? &job->recorded : NULL,
			        job->errmsg);
	}
	job_free(job);
}

/* The registry context of the daemon's own writes, now. */
static struct abq_ctx
daemon_ctx(struct storeq *q)
{
	return (struct abq_ctx){
	    .store = q->store,
	    .default_domain = q->default_domain,
	    .who = ABQ_WHO_DAEMON,
	    .now = abq_now(),
	    .notices = q->notify ? &q->notices : NULL,
	};
}

/* A write may have queued a notice: let the sender look now. */
static void
kick_sender(struct storeq *q)
{
	if (!q->notify)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->sender != NULL)
		notice_sender_kick(q->sender);
	pthread_mutex_unlock(&q->lock);
}

/* Thread: record one observation. */
static void
run_observe(struct storeq *q, struct storeq_job *job)
{
	struct abq_ctx c = daemon_ctx(q);
	struct abq_outcome o = {0};
	job->rv = abq_registry_observe(&c, &job->seen, &job->recorded, &o, &job->errmsg);
	if (job->rv == 0 && o.changed_count > 0)
		kick_sender(q);
	abq_outcome_clear(&o);
	if (job->rv < 0)
		log_error("store: recording %s/%s failed: %s", job->seen.device_id,
		          job->seen.account, job->errmsg);
}

static void refresh(struct storeq *q);

/*
 * Thread: answer a request from the quarantine mailbox (mailbox/serve.h), on
 * the thread's store handle.
 */
static void
run_serve(struct storeq *q, struct storeq_job *job)
{
	struct mbx_quarantine_req r = {
	    .account = job->seen.account,
	    .device_id = job->seen.device_id,
	    .cmd = (enum eas_cmd)job->cmd,
	    .version = job->version,
	    .body = job->body,
	    .body_len = job->body_len,
	    .email = job->email,
	    .sender = job->sender,
	    .contact = job->contact,
	};
	struct abq_prov_policy pp;
	if (r.cmd == EAS_CMD_PROVISION) {
		abq_view_provisioning(q->view, r.account, &pp);
		r.policy = &pp;
	}
	job->rv = mbx_quarantine_serve(q->store, q->default_domain, &r, &job->out, &job->errmsg);
	if (job->rv == 0 && job->out.wipe_acked) {
		/* The device confirmed its wipe: recorded, Blocked (Wipe), notices queued. */
		struct abq_ctx c = daemon_ctx(q);
		char *msg = NULL;
		if (abq_registry_wipe_confirmed(&c, r.account, r.device_id, NULL, &msg) < 0)
			log_warn("store: recording the wipe of %s/%s: %s", r.device_id, r.account,
			         msg != NULL ? msg : "failed");
		free(msg);
		kick_sender(q);
	}
	if (job->rv == 0 && job->out.provision_status != 0) {
		/*
		 * The device acknowledged its policy: its Status recorded, the device
		 * decided anew (Blocked, Policy, when it does not provision and may not).
		 * A changed state is read from the change log now, so that the loop has
		 * it before this answer (its jobs are delivered in order) and the
		 * device's next request gets it.
		 */
		struct abq_ctx c = daemon_ctx(q);
		struct abq_outcome o = {0};
		char *msg = NULL;
		if (abq_registry_provision_status(&c, r.account, r.device_id,
		                                  job->out.provision_status, &o, &msg) != 0)
			log_warn("store: recording the policy status of %s/%s: %s", r.device_id,
			         r.account, msg != NULL ? msg : "failed");
		else if (o.changed_count > 0) {
			kick_sender(q);
			refresh(q);
		}
		free(msg);
		abq_outcome_clear(&o);
	}
}

/* Thread: read one collection's sync state (native mode). */
static void
run_state_get(struct storeq *q, struct storeq_job *job)
{
	const char *err = NULL;
	void *blob = NULL;
	size_t len = 0;

	job->rv = abq_store_syncstate_get(q->store, job->seen.account, job->seen.device_id,
	                                  job->collection, &blob, &len, NULL, &err);
	if (job->rv < 0)
		log_warn("store: reading the sync state of %s/%s: %s", job->seen.device_id,
		         job->seen.account, err != NULL ? err : "failed");
	job->blob = blob;
	job->len = job->rv == 1 ? len : 0;
}

/* Thread: write a request's staged sync state, all or nothing (native mode). */
static void
run_state_commit(struct storeq *q, struct storeq_job *job)
{
	const char *err = NULL;
	int64_t now = abq_now();

	job->rv = -1;
	if (abq_store_begin(q->store, &err) < 0)
		goto out;
	for (size_t i = 0; i < job->nops; i++) {
		const struct mbx_state_op *op = &job->ops[i];
		int rv =
		    op->blob != NULL
		        ? abq_store_syncstate_put(q->store, job->seen.account, job->seen.device_id,
		                                  op->collection, op->blob, op->len, now, &err)
		        : abq_store_syncstate_delete(q->store, job->seen.account,
		                                     job->seen.device_id, op->collection, NULL,
		                                     &err);
		if (rv < 0) {
			abq_store_rollback(q->store);
			goto out;
		}
	}
	if (abq_store_commit(q->store, &err) < 0)
		goto out;
	job->rv = 0;
	return;
out:
	log_warn("store: writing the sync state of %s/%s: %s", job->seen.device_id,
	         job->seen.account, err != NULL ? err : "failed");
}

/*
 * Thread: the folder ids of one listing of an account's mailboxes, assigned
 * as needed and folders renamed on the server followed (native mode).
 */
static void
run_folders(struct storeq *q, struct storeq_job *job)
{
	struct abq_folder *l = xcalloc(job->nnames ? job->nnames : 1, sizeof(*l));
	const char *err = NULL;
	size_t renamed = 0;

	for (size_t i = 0; i < job->nnames; i++) {
		l[i].mailbox = job->names[i];
		l[i].mailbox_id = job->mids[i];
		l[i].uidvalidity = job->uvs[i];
	}
	job->rv = abq_store_folder_list(q->store, job->seen.account, l, job->nnames, job->fdelim,
	                                job->fprobe, &job->ids, &renamed, &err);
	if (job->rv < 0)
		log_warn("store: folder ids for %s: %s", job->seen.account,
		         err != NULL ? err : "failed");
	else if (renamed > 0)
		log_info("store: %zu folder(s) of %s renamed on the server, ids kept", renamed,
		         job->seen.account);
	free(l);
}

/* Thread: a SendMail ClientId reserved, kept or released (native mode). */
static void
run_client_id(struct storeq *q, struct storeq_job *job)
{
	const char *err = NULL, *acct = job->seen.account, *dev = job->seen.device_id;
	enum abq_clientid r = 0;

	if (job->cmd == MBX_CLIENTID_RESERVE) {
		job->rv = abq_store_clientid_reserve(q->store, acct, dev, job->collection,
		                                     abq_now(), &r, &err);
		if (job->rv == 0)
			job->rv = r == ABQ_CLIENTID_RESERVED ? MBX_CLIENTID_NEW
			          : r == ABQ_CLIENTID_SENT   ? MBX_CLIENTID_DONE
			                                     : MBX_CLIENTID_BUSY;
	} else if (job->cmd == MBX_CLIENTID_SENT) {
		job->rv =
		    abq_store_clientid_sent(q->store, acct, dev, job->collection, abq_now(), &err);
	} else {
		job->rv = abq_store_clientid_release(q->store, acct, dev, job->collection, &err);
	}
	if (job->rv < 0)
		log_warn("store: ClientId %s of %s/%s: %s", job->collection, dev, acct,
		         err != NULL ? err : "failed");
}

/* Thread: a folder renamed or deleted by a device, followed in the map (native mode). */
static void
run_folder_change(struct storeq *q, struct storeq_job *job)
{
	const char *err = NULL;

	if (job->blob != NULL)
		job->rv = abq_store_folder_rename(q->store, job->seen.account, job->collection,
		                                  job->blob, job->fparent, job->fdelim, NULL, &err);
	else
		job->rv = abq_store_folder_delete(q->store, job->seen.account, job->collection,
		                                  job->fdelim, NULL, &err);
	if (job->rv < 0) {
		log_warn("store: folder %s of %s: %s", job->collection, job->seen.account,
		         err != NULL ? err : "failed");
		job->rv = -1;
	}
}

/*
 * Put back updates that could not be written, ahead of newer ones, keeping
 * at most TOUCH_MAX (the newest are dropped beyond: a device's next request
 * updates its last seen anyway).
 */
static void
requeue_touches(struct storeq *q, struct touch *v, size_t n)
{
	pthread_mutex_lock(&q->lock);
	size_t total = n + q->ntouches, keep = total > TOUCH_MAX ? TOUCH_MAX : total;
	struct touch *all = xcalloc(keep > 0 ? keep : 1, sizeof(*all));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k < keep)
			all[k++] = v[i];
		else {
			free(v[i].account);
			free(v[i].device_id);
			free(v[i].address);
			free(v[i].command);
		}
	}
	for (size_t i = 0; i < q->ntouches; i++) {
		if (k < keep)
			all[k++] = q->touches[i];
		else {
			free(q->touches[i].account);
			free(q->touches[i].device_id);
			free(q->touches[i].address);
			free(q->touches[i].command);
		}
	}
	if (total > keep) {
		if (q->touches_dropped == 0)
			log_warn("store: more than %d last-seen updates wait; dropping the newest",
			         TOUCH_MAX);
		q->touches_dropped += total - keep;
	}
	free(q->touches);
	free(v);
	q->touches = all;
	q->ntouches = k;
	q->captouches = keep > 0 ? keep : 1;
	pthread_mutex_unlock(&q->lock);
}

/* Thread: write the batched last-seen updates in one transaction. */
static void
flush_touches(struct storeq *q)
{
	struct touch *v;
	size_t n;
	const char *err;

	pthread_mutex_lock(&q->lock);
	v = q->touches;
	n = q->ntouches;
	q->touches = NULL;
	q->ntouches = q->captouches = 0;
	pthread_mutex_unlock(&q->lock);
	if (n == 0)
		return;
	struct abq_seen *seen = xcalloc(n, sizeof(*seen));
	for (size_t i = 0; i < n; i++) {
		seen[i].account = v[i].account;
		seen[i].device_id = v[i].device_id;
		seen[i].last_seen = v[i].when;
		seen[i].last_address = v[i].address;
		seen[i].last_command = v[i].command;
	}
	if (abq_store_begin(q->store, &err) < 0 ||
	    abq_store_device_touch(q->store, seen, n, &err) < 0 ||
	    abq_store_commit(q->store, &err) < 0) {
		abq_store_rollback(q->store);
		if (!abq_store_connected(q->store)) {
			/* The store is away: keep them (bounded) for when it is back. */
			log_debug("store: %zu last-seen updates wait: %s", n, err);
			free(seen);
			requeue_touches(q, v, n);
			return;
		}
		log_warn("store: last-seen update of %zu devices failed: %s", n, err);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].account);
		free(v[i].device_id);
		free(v[i].address);
		free(v[i].command);
	}
	free(v);
	free(seen);
}

/* View refresh callback (thread): post the change to the loop. */
static void
on_view_device(void *arg, const char *account, const char *device_id,
               const struct abq_view_device *now)
{
	struct storeq *q = arg;
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_DEVICE;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->seen.device_id = xstrdup(device_id);
	job->now = *now;
	job_done(q, job);
}

/* A copy of a list of loggers (never NULL), each freed with abq_logger_clear. */
static struct abq_logger *
loggers_copy(const struct abq_logger *v, size_t n)
{
	struct abq_logger *c = xcalloc(n ? n : 1, sizeof(*c));

	for (size_t i = 0; i < n; i++)
		c[i] = (struct abq_logger){
		    .id = v[i].id,
		    .account = xstrdup(v[i].account),
		    .device_id = xstrdup_null(v[i].device_id),
		    .file = xstrdup(v[i].file),
		    .until = v[i].until,
		    .created_by = xstrdup_null(v[i].created_by),
		    .created_at = v[i].created_at,
		};
	return c;
}

/* Free the list taken at start, once handed over (or never). */
static void
start_loggers_free(struct storeq *q)
{
	for (size_t i = 0; i < q->nstart_loggers; i++)
		abq_logger_clear(&q->start_loggers[i]);
	free(q->start_loggers);
	q->start_loggers = NULL;
	q->nstart_loggers = 0;
}

/* Thread: post a copy of the view's loggers to the loop when they were reloaded. */
static void
post_loggers(struct storeq *q)
{
	size_t n;
	const struct abq_logger *v = abq_view_loggers(q->view, &n);

	if (abq_view_loggers_gen(q->view) == q->loggers_gen)
		return;
	q->loggers_gen = abq_view_loggers_gen(q->view);
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_LOGGERS;
	job->q = q;
	job->loggers = loggers_copy(v, n);
	job->nloggers = n;
	job_done(q, job);
}

/* Thread: read the change log and pass on what changed. */
static void
refresh(struct storeq *q)
{
	char *msg = NULL;
	size_t n;
	int rv = abq_view_refresh(q->view, q->store, on_view_device, q, &n, &msg);
	bool down = rv < 0 && !abq_store_connected(q->store);

	pthread_mutex_lock(&q->lock);
	int64_t was = q->down_since;
	if (down && was == 0)
		q->down_since = abq_now();
	else if (!down && rv == 0)
		q->down_since = 0;
	pthread_mutex_unlock(&q->lock);
	if (rv < 0) {
		if (down && was == 0)
			log_error("store: lost (%s); serving known devices from memory", msg);
		else if (!down)
			log_warn("store: reading the change log failed (will retry): %s", msg);
		free(msg);
		return;
	}
	post_loggers(q);
	if (was != 0)
		log_info("store: back after %lld s; caught up to change %lld",
		         (long long)(abq_now() - was), (long long)abq_view_seq(q->view));
	if (n > 0) {
		pthread_mutex_lock(&q->lock);
		q->applied++;
		pthread_mutex_unlock(&q->lock);
		log_debug("store: applied %zu changes (seq %lld)", n,
		          (long long)abq_view_seq(q->view));
	}
}

/* Sleep up to ms on the stop eventfd; true when asked to stop. */
static bool
listen_sleep(struct storeq *q, int fd, int ms)
{
	struct pollfd p[2] = {{.fd = q->listen_stop, .events = POLLIN},
	                      {.fd = fd, .events = POLLIN}};
	int rv = poll(p, fd >= 0 ? 2 : 1, ms);
	if (rv > 0 && (p[0].revents & POLLIN))
		return true;
	return false;
}

/* Ask the store thread for a change-log read now. */
static void
poke(struct storeq *q)
{
	pthread_mutex_lock(&q->lock);
	q->notified = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* The listener thread (see the top of the file). */
static void *
listen_main(void *arg)
{
	struct storeq *q = arg;
	int delay = 0;
	bool lost = false;
	const char *err;

	for (;;) {
		if (abq_store_listener_fd(q->listener) < 0) {
			if (delay > 0 && listen_sleep(q, -1, delay))
				break;
			if (abq_store_listener_connect(q->listener, &err) < 0) {
				if (!lost)
					log_warn("store: change notices lost (%s); reconnecting",
					         err);
				lost = true;
				delay = delay == 0 ? LISTEN_RETRY_MIN_MS : delay * 2;
				if (delay > LISTEN_RETRY_MAX_MS)
					delay = LISTEN_RETRY_MAX_MS;
				continue;
			}
			if (lost)
				log_info("store: change notices back");
			lost = false;
			delay = 0;
			poke(q); /* catch up with what came while not listening */
		}
		int fd = abq_store_listener_fd(q->listener);
		/* A bounded wait: a connection that died silently is found by the read. */
		if (listen_sleep(q, fd, 30000))
			break;
		int64_t seq = 0;
		int rv = abq_store_listener_read(q->listener, &seq, &err);
		if (rv > 0) {
			log_debug("store: change notice (seq %lld)", (long long)seq);
			poke(q);
		} else if (rv < 0) {
			log_warn("store: change notices lost (%s); reconnecting", err);
			lost = true;
			delay = LISTEN_RETRY_MIN_MS;
		}
	}
	return NULL;
}

/*
 * Watch the directory of the store's files (storeq_files: the database and
 * its WAL companions). Returns 0, or -1 when the store has no files or
 * inotify is not available (then the once-a-second read is all).
 */
static int
watch_open(struct storeq *q)
{
	const char *const *files = abq_store_files(q->store);
	char *dir;

	if (files == NULL || files[0] == NULL)
		return -1;
	if ((q->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	dir = xstrdup(files[0]);
	if (inotify_add_watch(q->watch_fd, dirname(dir), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
		free(dir);
		close(q->watch_fd);
		q->watch_fd = -1;
		return -1;
	}
	free(dir);
	for (size_t i = 0; i < 3 && files[i] != NULL; i++) {
		char *f = xstrdup(files[i]);
		q->watch_names[i] = xstrdup(basename(f));
		free(f);
	}
	return 0;
}

/* Read the pending inotify events; true when one concerns a store file. */
static bool
watch_drain(struct storeq *q)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	while ((n = read(q->watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				ours = true;
			for (size_t i = 0; ev->len > 0 && i < 3 && q->watch_names[i] != NULL; i++)
				if (strcmp(ev->name, q->watch_names[i]) == 0)
					ours = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return ours;
}

/* How many refreshes have applied changes so far. */
static unsigned
applied_count(struct storeq *q)
{
	pthread_mutex_lock(&q->lock);
	unsigned n = q->applied;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/*
 * The watcher thread (see the top of the file). A write seen is not always
 * a commit that can be read yet: its writer may be between writing the WAL
 * and publishing it in the shared index (which makes no inotify event), for
 * as long as the scheduler keeps it waiting. So after the first read the
 * watcher reads again after WATCH_RETRY_MS[i], until a read applies
 * something or a new write starts the round over; a write that was no
 * commit (this process's last-seen updates) costs those few reads.
 */
static void *
watch_main(void *arg)
{
	static const int retry_ms[] = {10, 30, 100, 300};
	struct storeq *q = arg;

	for (;;) {
		if (listen_sleep(q, q->watch_fd, 30000))
			break;
		if (!watch_drain(q))
			continue;
	round:;
		unsigned before = applied_count(q);
		/* A commit writes in several steps: let the burst end, then read. */
		if (listen_sleep(q, -1, WATCH_COALESCE_MS))
			break;
		watch_drain(q);
		poke(q);
		for (size_t i = 0; i < sizeof(retry_ms) / sizeof(retry_ms[0]); i++) {
			if (listen_sleep(q, q->watch_fd, retry_ms[i]))
				return NULL;
			if (watch_drain(q))
				goto round;
			if (applied_count(q) != before)
				break;
			poke(q);
		}
	}
	return NULL;
}

/* The thread: jobs as they come, touches and the change log once a second. */
static void *
thread_main(void *arg)
{
	struct storeq *q = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);

	for (;;) {
		struct storeq_job *job = NULL;
		bool stop, due;
		struct timespec now;

		pthread_mutex_lock(&q->lock);
		while (STAILQ_EMPTY(&q->waiting) && !q->stopping && !q->notified &&
		       (q->down_since != 0 || q->ntouches < TOUCH_FLUSH_AT)) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > next.tv_sec ||
			    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))
				break;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			long ns =
			    (next.tv_sec - now.tv_sec) * 1000000000L + (next.tv_nsec - now.tv_nsec);
			until.tv_sec += ns / 1000000000L;
			until.tv_nsec += ns % 1000000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&q->cond, &q->lock, &until);
		}
		if ((job = STAILQ_FIRST(&q->waiting)) != NULL)
			STAILQ_REMOVE_HEAD(&q->waiting, link);
		stop = q->stopping && job == NULL;
		bool notified = q->notified;
		q->notified = false;
		bool flush_now = q->down_since == 0 && q->ntouches >= TOUCH_FLUSH_AT;
		pthread_mutex_unlock(&q->lock);

		if (job != NULL) {
			struct timespec t0, t1;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			if (job->kind == JOB_SERVE)
				run_serve(q, job);
			else if (job->kind == JOB_STATE_GET)
				run_state_get(q, job);
			else if (job->kind == JOB_STATE_COMMIT)
				run_state_commit(q, job);
			else if (job->kind == JOB_FOLDERS)
				run_folders(q, job);
			else if (job->kind == JOB_FOLDER_CHANGE)
				run_folder_change(q, job);
			else if (job->kind == JOB_CLIENT_ID)
				run_client_id(q, job);
			else if (job->kind == JOB_CALL)
				job->rv = job->call_run(q->store, job->call_arg);
			else
				run_observe(q, job);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			abq_metrics_store_latency((double)(t1.tv_sec - t0.tv_sec) +
			                          (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
			job_done(q, job);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		due = now.tv_sec > next.tv_sec ||
		      (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec);
		if (due || stop || flush_now)
			flush_touches(q);
		if (notified && !due)
			refresh(q);
		if (due) {
			refresh(q);
			next = now;
			next.tv_sec += 1;
		}
		if (stop)
			break;
	}
	return NULL;
}

/* Initial load: report every recorded device. */
struct load_arg {
	storeq_device_cb *cb;
	void *arg;
	const struct abq_view *view;
};

/*
 * At start: one recorded device's decision, handed to the loop's map
 * (abq_store_device_iter callback).
 */
static int
load_device(void *arg, const struct abq_device *d)
{
	struct load_arg *la = arg;
	struct abq_view_device now;

	/* As the view has it (with its policy version), else as recorded. */
	if (!abq_view_device(la->view, d->account, d->device_id, &now))
		abq_view_device_of(d, &now);
	la->cb(la->arg, d->account, d->device_id, &now);
	return 0;
}

/*
 * Set the notice sender to kick after a state change (storeq.h); under the
 * lock, since the store thread reads it.
 */
void
storeq_set_sender(struct storeq *q, struct notice_sender *sender)
{
	pthread_mutex_lock(&q->lock);
	q->sender = sender;
	pthread_mutex_unlock(&q->lock);
}

/*
 * Set the loggers' callback and hand it the list loaded at start (storeq.h).
 * Called on the loop's thread; the store thread reads the view meanwhile,
 * so the list given now is the copy taken before the thread started.
 */
void
storeq_set_logger_cb(struct storeq *q, storeq_logger_cb *cb, void *arg)
{
	q->on_loggers = cb;
	q->loggers_arg = arg;
	if (cb != NULL)
		cb(arg, q->start_loggers, q->nstart_loggers);
	start_loggers_free(q);
}

/*
 * Open (or create) the store, bring old account names to their canonical form,
 * load the views and every recorded decision into the loop's map, then start
 * the store thread and, where the backend pushes changes, the listener thread
 * (storeq.h).
 */
struct storeq *
storeq_start(struct event_base *base, const char *url, const char *base_dir,
             const char *default_domain, const struct abq_notice_conf *notices,
             storeq_device_cb *on_device, void *arg, char **errmsg_r)
{
	struct storeq *q = xcalloc(1, sizeof(*q));
	struct abq_device_filter all = {0};
	STAILQ_INIT(&q->waiting);
	q->listen_stop = -1;
	q->watch_fd = -1;
	struct load_arg la = {on_device, arg, NULL};
	const char *err = NULL;

	q->on_device = on_device;
	q->arg = arg;
	q->default_domain = xstrdup_null(default_domain);
	if (notices != NULL) {
		q->notify = true;
		q->notices.from = xstrdup_null(notices->from);
		q->notices.mail_domain = xstrdup_null(notices->mail_domain);
		q->notices.contact = xstrdup_null(notices->contact);
		q->notices.admins = xstrdup_null(notices->admins);
	}
	q->store = abq_store_open(url, base_dir, ABQ_STORE_CREATE, &err);
	if (q->store == NULL) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail;
	}
	/*
	 * Records written before accounts were canonical (a bare "alice" where
	 * the canonical form is "alice@example.com") are rewritten once, before
	 * anything is loaded (store.h, abq_store_accounts_canonicalize).
	 */
	if (abq_store_accounts_canonicalize(q->store, default_domain, NULL, &err) != 0) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail;
	}
	if ((q->view = abq_view_load(q->store, default_domain, errmsg_r)) == NULL)
		goto fail;
	la.view = q->view;
	/* The loggers at start, for storeq_set_logger_cb; later lists come as jobs. */
	const struct abq_logger *lv = abq_view_loggers(q->view, &q->nstart_loggers);
	q->loggers_gen = abq_view_loggers_gen(q->view);
	q->start_loggers = loggers_copy(lv, q->nstart_loggers);
	if (abq_store_device_iter(q->store, &all, load_device, &la, &err) != 0) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail;
	}
	if ((q->back = handback_new(base, "store", deliver, q, &err)) == NULL) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	if ((q->listener = abq_store_listener_new(q->store, &err)) == NULL && err != NULL) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail_sync;
	}
	if (q->listener == NULL && watch_open(q) < 0)
		log_info("store: no file watch; reading the change log every second");
	if ((q->listener != NULL || q->watch_fd >= 0) &&
	    (q->listen_stop = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		*errmsg_r = xstrdup("eventfd failed");
		goto fail_sync;
	}
	if (pthread_create(&q->thread, NULL, thread_main, q) != 0) {
		*errmsg_r = xstrdup("cannot start the store thread");
		goto fail_sync;
	}
	if (q->listener != NULL && pthread_create(&q->listen_thread, NULL, listen_main, q) != 0) {
		log_warn("store: cannot start the change listener; reading the change log every "
		         "second");
		abq_store_listener_free(&q->listener);
	}
	if (q->watch_fd >= 0 && pthread_create(&q->watch_thread, NULL, watch_main, q) != 0) {
		log_warn("store: cannot start the file watch; reading the change log every second");
		close(q->watch_fd);
		q->watch_fd = -1;
	}
	return q;
fail_sync:
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
fail:
	abq_store_listener_free(&q->listener);
	if (q->watch_fd >= 0)
		close(q->watch_fd);
	for (size_t i = 0; i < 3; i++)
		free(q->watch_names[i]);
	if (q->listen_stop >= 0)
		close(q->listen_stop);
	handback_free(q->back);
	start_loggers_free(q);
	abq_view_free(&q->view);
	abq_store_close(&q->store);
	free(q->default_domain);
	free((char *)q->notices.from);
	free((char *)q->notices.mail_domain);
	free((char *)q->notices.contact);
	free((char *)q->notices.admins);
	free(q);
	return NULL;
}

/*
 * Stop the listener, let the store thread finish the queued jobs and flush the
 * last-seen updates, then free what the loop never collected (storeq.h).
 */
void
storeq_stop(struct storeq **qp)
{
	struct storeq *q = *qp;
	if (q == NULL)
		return;
	if (q->listener != NULL) {
		uint64_t one = 1;
		if (write(q->listen_stop, &one, sizeof(one)) < 0)
			log_warn("store: cannot stop the change listener");
		pthread_join(q->listen_thread, NULL);
		abq_store_listener_free(&q->listener);
	}
	if (q->watch_fd >= 0) {
		uint64_t one = 1;
		if (write(q->listen_stop, &one, sizeof(one)) < 0)
			log_warn("store: cannot stop the file watch");
		pthread_join(q->watch_thread, NULL);
		close(q->watch_fd);
	}
	for (size_t i = 0; i < 3; i++)
		free(q->watch_names[i]);
	if (q->listen_stop >= 0)
		close(q->listen_stop);
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	/* Results nobody will read any more. */
	q->on_device = NULL;
	struct handback_link *l, *next;
	for (l = handback_take(q->back); l != NULL; l = next) {
		next = l->next;
		job_free(HANDBACK_OF(l, struct storeq_job, back));
	}
	handback_free(q->back);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	start_loggers_free(q);
	abq_view_free(&q->view);
	abq_store_close(&q->store);
	free(q->default_domain);
	free((char *)q->notices.from);
	free((char *)q->notices.mail_domain);
	free((char *)q->notices.contact);
	free((char *)q->notices.admins);
	free(q);
	*qp = NULL;
}

/*
 * Queue a request's report of a device for the store thread (storeq.h); the
 * result comes back through deliver on the loop's thread.
 */
struct storeq_job *
storeq_observe(struct storeq *q, const struct abq_device *seen, storeq_observe_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_OBSERVE;
	job->q = q;
	abq_device_copy(&job->seen, seen);
	job->cb = cb;
	job->arg = arg;
	pthread_mutex_lock(&q->lock);
	STAILQ_INSERT_TAIL(&q->waiting, job, link);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return job;
}

/*
 * Queue a quarantine mailbox request for the store thread, with copies of
 * everything it needs (the loop's request may be gone when the job runs).
 */
struct storeq_job *
storeq_serve(struct storeq *q, const struct storeq_serve_req *r, storeq_serve_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_SERVE;
	job->q = q;
	job->seen.account = xstrdup(r->account);
	job->seen.device_id = xstrdup(r->device_id);
	job->cmd = r->cmd;
	job->version = xstrdup_null(r->version);
	job->email = xstrdup_null(r->email);
	job->sender = xstrdup_null(r->sender);
	job->contact = xstrdup_null(r->contact);
	if (r->body_len > 0) {
		job->body = xmalloc(r->body_len);
		memcpy(job->body, r->body, r->body_len);
		job->body_len = r->body_len;
	}
	job->serve_cb = cb;
	job->arg = arg;
	pthread_mutex_lock(&q->lock);
	STAILQ_INSERT_TAIL(&q->waiting, job, link);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return job;
}

/* Queue a job for the thread. */
static struct storeq_job *
job_queue(struct storeq *q, struct storeq_job *job)
{
	pthread_mutex_lock(&q->lock);
	STAILQ_INSERT_TAIL(&q->waiting, job, link);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return job;
}

/* Queue the caller's function on the store thread (storeq.h). */
struct storeq_job *
storeq_call(struct storeq *q, storeq_call_fn *run, storeq_call_done_fn *done,
            storeq_call_free_fn *release, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_CALL;
	job->q = q;
	job->call_run = run;
	job->call_done = done;
	job->call_free = release;
	job->call_arg = arg;
	return job_queue(q, job);
}

/* Queue a read of one collection's sync state (storeq.h). */
struct storeq_job *
storeq_state_get(struct storeq *q, const char *account, const char *device_id,
                 const char *collection, storeq_state_got_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_STATE_GET;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->seen.device_id = xstrdup(device_id);
	job->collection = xstrdup(collection);
	job->got_cb = cb;
	job->arg = arg;
	return job_queue(q, job);
}

/* Queue a request's sync-state writes, copied (storeq.h). */
struct storeq_job *
storeq_state_commit(struct storeq *q, const char *account, const char *device_id,
                    const struct mbx_state_op *ops, size_t n, storeq_state_done_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_STATE_COMMIT;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->seen.device_id = xstrdup(device_id);
	job->ops = xcalloc(n ? n : 1, sizeof(*job->ops));
	job->nops = n;
	for (size_t i = 0; i < n; i++) {
		job->ops[i].collection = xstrdup_null(ops[i].collection);
		if (ops[i].blob != NULL) {
			char *b = xmalloc(ops[i].len + 1);
			memcpy(b, ops[i].blob, ops[i].len);
			b[ops[i].len] = '\0';
			job->ops[i].blob = b;
			job->ops[i].len = ops[i].len;
		}
	}
	job->done_cb = cb;
	job->arg = arg;
	return job_queue(q, job);
}

/* Queue the folder ids of a listing of n mailboxes of account (storeq.h). */
struct storeq_job *
storeq_folder_assign(struct storeq *q, const char *account, const struct abq_folder *l, size_t n,
                     char delim, bool probe, storeq_ids_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_FOLDERS;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->names = xcalloc(n ? n : 1, sizeof(char *));
	job->mids = xcalloc(n ? n : 1, sizeof(char *));
	job->uvs = xcalloc(n ? n : 1, sizeof(int64_t));
	job->nnames = n;
	for (size_t i = 0; i < n; i++) {
		job->names[i] = xstrdup(l[i].mailbox);
		job->mids[i] = l[i].mailbox_id != NULL ? xstrdup(l[i].mailbox_id) : NULL;
		job->uvs[i] = l[i].uidvalidity;
	}
	job->fdelim = delim;
	job->fprobe = probe;
	job->ids_cb = cb;
	job->arg = arg;
	return job_queue(q, job);
}

/* Queue a folder's rename or delete in the folder map (storeq.h). */
struct storeq_job *
storeq_folder_change(struct storeq *q, const char *account, const char *folder_id,
                     const char *mailbox, const char *parent_id, char delim,
                     storeq_state_done_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_FOLDER_CHANGE;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->collection = xstrdup(folder_id);
	job->blob = mailbox != NULL ? xstrdup(mailbox) : NULL;
	job->fparent = parent_id != NULL ? xstrdup(parent_id) : NULL;
	job->fdelim = delim;
	job->done_cb = cb;
	job->arg = arg;
	return job_queue(q, job);
}

/* Queue a SendMail ClientId op (storeq.h). */
struct storeq_job *
storeq_client_id(struct storeq *q, const char *account, const char *device_id,
                 const char *client_id, int op, storeq_state_done_cb *cb, void *arg)
{
	struct storeq_job *job = xcalloc(1, sizeof(*job));
	job->kind = JOB_CLIENT_ID;
	job->q = q;
	job->seen.account = xstrdup(account);
	job->seen.device_id = xstrdup(device_id);
	job->collection = xstrdup(client_id);
	job->cmd = op;
	job->done_cb = cb;
	job->arg = arg;
	return job_queue(q, job);
}

/*
 * The caller went away: mark the job so that deliver frees it without calling
 * back (the job itself still runs).
 */
void
storeq_cancel(struct storeq_job *job)
{
	pthread_mutex_lock(&job->q->lock);
	job->cancelled = true;
	pthread_mutex_unlock(&job->q->lock);
}

/*
 * Note a request from a known device: its last-seen update waits in memory and
 * goes to the store in one batch, once a second or at TOUCH_FLUSH_AT, so that
 * no request waits on a write.
 */
void
storeq_touch(struct storeq *q, const char *account, const char *device_id, int64_t when,
             const char *address, const char *command)
{
	pthread_mutex_lock(&q->lock);
	if (q->ntouches == q->captouches) {
		q->captouches = q->captouches ? q->captouches * 2 : 256;
		q->touches = xrealloc(q->touches, q->captouches * sizeof(*q->touches));
	}
	struct touch *t = &q->touches[q->ntouches++];
	t->account = xstrdup(account);
	t->device_id = xstrdup(device_id);
	t->when = when;
	t->address = xstrdup_null(address);
	t->command = xstrdup_null(command);
	if (q->ntouches >= TOUCH_FLUSH_AT && q->down_since == 0)
		pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/*
 * When the store was found lost (0: it answers), read under the lock that the
 * store thread writes it under.
 */
int64_t
storeq_down_since(struct storeq *q)
{
	pthread_mutex_lock(&q->lock);
	int64_t t = q->down_since;
	pthread_mutex_unlock(&q->lock);
	return t;
}

/* The store's files, for chown before privileges are dropped (storeq.h). */
const char *const *
storeq_files(struct storeq *q)
{
	return abq_store_files(q->store);
}
