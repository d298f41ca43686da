/*
 * submitq.c: SMTP submissions on a thread of their own (see submitq.h).
 *
 * Design, as the store queue's: three lists. `waiting` (under the lock)
 * holds the jobs given by the caller; the thread, woken through in_fd, moves
 * them to `running` (its own) and starts each with submit_start on its
 * curl_loop; a finished job (or one refused before connecting, or one
 * cancelled before it started) is handed back (net/handback) to the
 * caller's base, whose event calls the job's callback unless it was
 * cancelled meanwhile, and frees the job. A job is freed only by the
 * caller's side (or by submitq_stop after the join), so a cancel never races
 * a free. The thread's base, curl_loop and events are made on the caller's
 * thread before the thread starts (curl_global_init and GMime's init are not
 * thread-safe the first time).
 */
#include <event2/event.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mime/msgconv.h"
#include "native/submitq.h"
#include "net/handback.h"
#include "net/curl_loop.h"

struct submitq_job {
	STAILQ_ENTRY(submitq_job) link; /* in waiting or running */
	struct handback_link back;      /* finished, on its way to the caller */
	LIST_ENTRY(submitq_job) live;   /* the caller's: in q->live until delivered */
	bool counted;                   /* the caller's: in live, its bytes in q->bytes */
	struct submitq *q;
	/* The copies: conf's strings point into these. */
	struct submit_conf conf;
	char *url, *user, *password, *from, *ca_file;
	char *msg;
	size_t len;
	submitq_done_cb *done;
	void *arg;
	bool cancelled; /* under q->lock */
	/* The thread's */
	struct submit *s;
	/* The outcome, strings owned */
	struct submit_outcome o;
	char *text, *rcpt, *detail;
};

STAILQ_HEAD(job_list, submitq_job);

struct submitq {
	struct handback *back; /* finished jobs, to the caller */
	int in_fd;             /* eventfd: to the thread */

	pthread_t thread;
	bool started;
	struct event_base *base; /* the thread's */
	struct event *wake_ev;   /* on base, reads in_fd */
	struct curl_loop *cl;

	pthread_mutex_t lock;
	bool stopping;           /* under lock */
	struct job_list waiting; /* under lock */
	struct job_list running; /* the thread's */
	size_t pending;          /* the caller's: sent and not delivered */

	/* The caller's: the caps and what they count (see submitq.h). */
	LIST_HEAD(, submitq_job) live; /* jobs counted against the caps */
	size_t n_live, bytes;
	size_t max_jobs, max_per_user, max_bytes;
};

/* Wipe the credentials and free a job and its outcome. */
static void
job_free(struct submitq_job *j)
{
	if (j->password != NULL) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	if (j->user != NULL) {
		OPENSSL_cleanse(j->user, strlen(j->user));
		free(j->user);
	}
	free(j->url);
	free(j->from);
	free(j->ca_file);
	free(j->msg);
	free(j->text);
	free(j->rcpt);
	free(j->detail);
	free(j);
}

/* Wake the side reading fd. */
static void
poke(int fd, const char *who)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		log_warn("submission: cannot wake %s", who);
}

/* The thread: hand a finished job to the caller. */
static void
job_done(struct submitq *q, struct submitq_job *j)
{
	handback_post(q->back, &j->back);
}

/* The thread: keep a copy of the outcome in the job. */
static void
keep_outcome(struct submitq_job *j, const struct submit_outcome *o)
{
	j->o = *o;
	j->text = xstrdup(o->text ? o->text : "");
	j->rcpt = o->rcpt ? xstrdup(o->rcpt) : NULL;
	j->detail = xstrdup(o->detail ? o->detail : "");
	j->o.text = j->text;
	j->o.rcpt = j->rcpt;
	j->o.detail = j->detail;
}

/* The thread: a transfer ended. */
static void
on_sent(void *arg, const struct submit_outcome *o)
{
	struct submitq_job *j = arg;
	struct submitq *q = j->q;

	j->s = NULL; /* freed by submit.c after this returns */
	keep_outcome(j, o);
	STAILQ_REMOVE(&q->running, j, submitq_job, link);
	job_done(q, j);
}

/* The thread: start one job, or hand it back at once (cancelled, refused). */
static void
job_start(struct submitq *q, struct submitq_job *j)
{
	enum submit_result refused;
	const char *err = NULL;

	pthread_mutex_lock(&q->lock);
	bool cancelled = j->cancelled;
	pthread_mutex_unlock(&q->lock);
	if (cancelled) {
		job_done(q, j);
		return;
	}
	STAILQ_INSERT_TAIL(&q->running, j, link);
	j->s = submit_start(q->cl, &j->conf, j->msg, j->len, on_sent, j, &refused, &err);
	if (j->s == NULL) {
		struct submit_outcome o = {.result = refused, .text = "", .detail = err ? err : ""};
		STAILQ_REMOVE(&q->running, j, submitq_job, link);
		keep_outcome(j, &o);
		job_done(q, j);
	}
}

/* The thread: woken; take the new jobs, or stop. */
static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct submitq *q = arg;
	struct job_list list = STAILQ_HEAD_INITIALIZER(list);
	struct submitq_job *j;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: already emptied */
	}
	pthread_mutex_lock(&q->lock);
	bool stopping = q->stopping;
	if (!stopping) /* else they stay: submitq_stop frees them */
		STAILQ_CONCAT(&list, &q->waiting);
	pthread_mutex_unlock(&q->lock);
	if (stopping) {
		event_base_loopbreak(q->base);
		return;
	}
	while ((j = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		job_start(q, j);
	}
}

/* The thread's body: its loop until submitq_stop; then abandon what runs. */
static void *
thread_main(void *arg)
{
	struct submitq *q = arg;
	struct submitq_job *j;

	event_base_dispatch(q->base);
	STAILQ_FOREACH(j, &q->running, link)
		submit_cancel(&j->s);
	return NULL;
}

/* The caller's base: a finished job back. */
static void
on_deliver(void *arg, struct handback_link *l)
{
	struct submitq *q = arg;
	struct submitq_job *j = HANDBACK_OF(l, struct submitq_job, back);

	pthread_mutex_lock(&q->lock);
	bool cancelled = j->cancelled;
	pthread_mutex_unlock(&q->lock);
	q->pending--;
	if (j->counted) {
		LIST_REMOVE(j, live);
		q->n_live--;
		q->bytes -= j->len;
	}
	if (!cancelled)
		j->done(j->arg, &j->o);
	job_free(j);
}

/* Free what submitq_start made (the thread not running). */
static void
q_free(struct submitq *q)
{
	struct submitq_job *j;

	while ((j = STAILQ_FIRST(&q->waiting)) != NULL) {
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		job_free(j);
	}
	while ((j = STAILQ_FIRST(&q->running)) != NULL) {
		STAILQ_REMOVE_HEAD(&q->running, link);
		job_free(j);
	}
	if (q->back != NULL) {
		struct handback_link *l, *next;
		for (l = handback_take(q->back); l != NULL; l = next) {
			next = l->next;
			job_free(HANDBACK_OF(l, struct submitq_job, back));
		}
		handback_free(q->back);
	}
	if (q->wake_ev != NULL)
		event_free(q->wake_ev);
	curl_loop_free(&q->cl);
	if (q->base != NULL)
		event_base_free(q->base);
	if (q->in_fd >= 0)
		close(q->in_fd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* Start the queue's thread (see submitq.h). */
struct submitq *
submitq_start(struct event_base *caller_base, const char **errstr)
{
	struct submitq *q = xcalloc(1, sizeof(*q));

	q->in_fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	STAILQ_INIT(&q->waiting);
	STAILQ_INIT(&q->running);
	LIST_INIT(&q->live);
	q->max_jobs = SUBMITQ_MAX_JOBS;
	q->max_per_user = SUBMITQ_MAX_PER_USER;
	q->max_bytes = SUBMITQ_MAX_BYTES;
	msgconv_init(); /* GMime, before any thread reads a header */
	if ((q->in_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		*errstr = "submission: eventfd failed";
		goto fail;
	}
	if ((q->base = event_base_new()) == NULL) {
		*errstr = "submission: event_base_new failed";
		goto fail;
	}
	if ((q->cl = curl_loop_new(q->base, errstr)) == NULL)
		goto fail;
	q->wake_ev = event_new(q->base, q->in_fd, EV_READ | EV_PERSIST, on_wake, q);
	q->back = handback_new(caller_base, "submission", on_deliver, q, errstr);
	if (q->wake_ev == NULL || q->back == NULL || event_add(q->wake_ev, NULL) < 0) {
		*errstr = "submission: cannot watch the eventfds";
		goto fail;
	}
	if (pthread_create(&q->thread, NULL, thread_main, q) != 0) {
		*errstr = "submission: cannot start the thread";
		goto fail;
	}
	q->started = true;
	return q;
fail:
	q_free(q);
	return NULL;
}

/*
 * Why j cannot be queued now (a cap of submitq.h is reached), or NULL. The
 * caller's side only: the jobs it has handed over and not yet had back.
 */
static const char *
over_cap(const struct submitq *q, const struct submitq_job *j)
{
	const struct submitq_job *o;
	size_t same = 0;

	if (q->n_live >= q->max_jobs)
		return "too many submissions in flight";
	if (j->len > q->max_bytes || q->bytes > q->max_bytes - j->len)
		return "too many bytes of submissions in flight";
	LIST_FOREACH(o, &q->live, live) {
		if (strcmp(o->user ? o->user : "", j->user ? j->user : "") == 0)
			same++;
	}
	if (same >= q->max_per_user)
		return "too many submissions in flight for this user";
	return NULL;
}

/* Queue one submission (see submitq.h). */
struct submitq_job *
submitq_send(struct submitq *q, const struct submit_conf *conf, const char *msg, size_t len,
             submitq_done_cb *done, void *arg)
{
	struct submitq_job *j = xcalloc(1, sizeof(*j));

	j->q = q;
	j->conf = *conf;
	j->url = conf->url ? xstrdup(conf->url) : NULL;
	j->user = conf->user ? xstrdup(conf->user) : NULL;
	j->password = conf->password ? xstrdup(conf->password) : NULL;
	j->from = conf->from ? xstrdup(conf->from) : NULL;
	j->ca_file = conf->ca_file ? xstrdup(conf->ca_file) : NULL;
	j->conf.url = j->url;
	j->conf.user = j->user;
	j->conf.password = j->password;
	j->conf.from = j->from;
	j->conf.ca_file = j->ca_file;
	j->len = len;
	j->done = done;
	j->arg = arg;
	q->pending++;
	const char *why = over_cap(q, j);
	j->msg = xmalloc(len > 0 && why == NULL ? len : 1); /* no copy of what is refused */
	if (len > 0 && why == NULL)
		memcpy(j->msg, msg, len);
	if (why != NULL) {
		/* Straight back, not started: the caller hears it from its loop. */
		struct submit_outcome o = {.result = SUBMIT_TEMPORARY, .text = why, .detail = why};
		log_warn("submission: not queued: %s (%zu in flight, %zu bytes)", why, q->n_live,
		         q->bytes);
		keep_outcome(j, &o);
		job_done(q, j);
		return j;
	}
	j->counted = true;
	LIST_INSERT_HEAD(&q->live, j, live);
	q->n_live++;
	q->bytes += len;
	pthread_mutex_lock(&q->lock);
	bool first = STAILQ_EMPTY(&q->waiting);
	STAILQ_INSERT_TAIL(&q->waiting, j, link);
	pthread_mutex_unlock(&q->lock);
	if (first)
		poke(q->in_fd, "the submission thread");
	return j;
}

/* Change the caps (see submitq.h). */
void
submitq_set_limits(struct submitq *q, size_t max_jobs, size_t max_per_user, size_t max_bytes)
{
	if (max_jobs > 0)
		q->max_jobs = max_jobs;
	if (max_per_user > 0)
		q->max_per_user = max_per_user;
	if (max_bytes > 0)
		q->max_bytes = max_bytes;
}

/* No callback for j (see submitq.h). */
void
submitq_cancel(struct submitq_job *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->q->lock);
	j->cancelled = true;
	pthread_mutex_unlock(&j->q->lock);
}

/* Jobs not yet delivered. */
size_t
submitq_pending(const struct submitq *q)
{
	return q->pending;
}

/* Stop and join the thread, drop every job, free (see submitq.h). */
void
submitq_stop(struct submitq **qp)
{
	struct submitq *q = *qp;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_mutex_unlock(&q->lock);
	poke(q->in_fd, "the submission thread");
	if (q->started)
		pthread_join(q->thread, NULL);
	q_free(q);
	*qp = NULL;
}
