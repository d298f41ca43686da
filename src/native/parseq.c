/*
 * parseq.c: messages parsed on a thread of their own (see parseq.h).
 *
 * Design: a job is in one of three places. `waiting` (under the lock) holds
 * the batches given by the caller; the thread, woken by a condition
 * variable, takes the first (then the thread's alone: `running`), parses it
 * and hands it back (net/handback), which wakes the caller's
 * base, whose event calls the job's callback unless it was cancelled
 * meanwhile. A job is freed only on the caller's side (parseq_cancel of a
 * waiting job, a delivery, parseq_stop after the join), so a cancel never
 * races a free, and a cancelled job's batch is freed only once the thread no
 * longer reads it. GMime and libxml2 are initialised on the caller's thread
 * before the thread starts (msgconv_init).
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "lib/log.h"
#include "lib/util.h"
#include "native/parseq.h"
#include "net/handback.h"

enum job_state { JOB_WAITING, JOB_RUNNING, JOB_DONE };

struct parseq_job {
	STAILQ_ENTRY(parseq_job) link; /* in waiting */
	struct handback_link back;     /* parsed, on its way to the caller */
	struct parseq *q;
	struct parseq_msg *v;
	size_t n;
	size_t bytes; /* the batch's, counted against the cap */
	parseq_done_cb *done;
	void *arg;
	enum job_state state; /* under q->lock */
	bool cancelled;       /* under q->lock */
};

STAILQ_HEAD(job_list, parseq_job);

struct parseq {
	struct handback *back; /* parsed jobs, to the caller */

	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;           /* under lock */
	struct job_list waiting; /* under lock */

	/* The caller's: jobs given and not yet delivered or dropped, their bytes, the caps. */
	size_t pending, bytes;
	size_t max_jobs, max_bytes;
	uint64_t delivered; /* messages handed back parsed (parseq_delivered) */
};

/* Free a batch (see parseq.h). */
void
parseq_msgs_free(struct parseq_msg *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(v[i].raw);
		free(v[i].outline);
		msgconv_msg_clear(&v[i].m);
	}
	free(v);
}

/* The caller's: a job leaves the counts and is freed with its batch. */
static void
job_free(struct parseq_job *j)
{
	j->q->pending--;
	j->q->bytes -= j->bytes;
	parseq_msgs_free(j->v, j->n);
	free(j);
}

/*
 * The thread: one message parsed as the command layer would (msgconv.h),
 * and an HTML-only body rendered as text ahead (the heavier part of a large
 * HTML message: type 1 and the Preview).
 */
static void
parse_one(struct parseq_msg *p)
{
	/* the MIME (type 4) is raw itself: the caller lends it, no copy kept */
	struct msgconv_opts o = {.date_fallback = p->internal_date, .no_mime = true};

	p->err = NULL;
	if (p->outline != NULL)
		p->rv = msgconv_parse(p->outline, p->outline_len, &o, &p->m, &p->err);
	else
		p->rv = msgconv_parse(p->raw ? p->raw : "", p->raw_len, &o, &p->m, &p->err);
	if (p->rv == 0)
		msgconv_render(&p->m);
}

/* The thread's body: parse the waiting batches until parseq_stop. */
static void *
thread_main(void *arg)
{
	struct parseq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct parseq_job *j;
		while (!q->stopping && STAILQ_EMPTY(&q->waiting))
			pthread_cond_wait(&q->wake, &q->lock);
		if (q->stopping)
			break;
		j = STAILQ_FIRST(&q->waiting);
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		j->state = JOB_RUNNING;
		for (size_t i = 0; i < j->n && !j->cancelled && !q->stopping; i++) {
			pthread_mutex_unlock(&q->lock);
			parse_one(&j->v[i]);
			pthread_mutex_lock(&q->lock);
		}
		j->state = JOB_DONE;
		handback_post(q->back, &j->back);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* The caller's base: a parsed batch back. */
static void
on_deliver(void *arg, struct handback_link *l)
{
	struct parseq *q = arg;
	struct parseq_job *j = HANDBACK_OF(l, struct parseq_job, back);

	/* Only the caller's thread sets cancelled once the job is done. */
	if (!j->cancelled) {
		struct parseq_msg *v = j->v;
		j->v = NULL; /* the callback's now */
		q->delivered += j->n;
		j->done(j->arg, v, j->n);
	}
	job_free(j);
}

/* Free what parseq_start made (the thread not running): jobs without callbacks. */
static void
q_free(struct parseq *q)
{
	struct parseq_job *j;

	while ((j = STAILQ_FIRST(&q->waiting)) != NULL) {
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		job_free(j);
	}
	if (q->back != NULL) {
		struct handback_link *l, *next;
		for (l = handback_take(q->back); l != NULL; l = next) {
			next = l->next;
			job_free(HANDBACK_OF(l, struct parseq_job, back));
		}
		handback_free(q->back);
	}
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* Start the queue's thread (see parseq.h). */
struct parseq *
parseq_start(struct event_base *caller_base, const char **errstr)
{
	struct parseq *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	STAILQ_INIT(&q->waiting);
	q->max_jobs = PARSEQ_MAX_JOBS;
	q->max_bytes = PARSEQ_MAX_BYTES;
	msgconv_init(); /* GMime and libxml2, before the thread parses */
	if ((q->back = handback_new(caller_base, "parse", on_deliver, q, errstr)) == NULL) {
		*errstr = "parse: cannot watch an eventfd";
		goto fail;
	}
	if (pthread_create(&q->thread, NULL, thread_main, q) != 0) {
		*errstr = "parse: cannot start the thread";
		goto fail;
	}
	q->started = true;
	return q;
fail:
	q_free(q);
	return NULL;
}

/* Queue a batch (see parseq.h). */
struct parseq_job *
parseq_parse(struct parseq *q, struct parseq_msg *v, size_t n, parseq_done_cb *done, void *arg)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += v[i].outline != NULL ? v[i].outline_len : v[i].raw_len;
	if (q->pending >= q->max_jobs || bytes > q->max_bytes - q->bytes || q->bytes > q->max_bytes)
		return NULL;

	struct parseq_job *j = xcalloc(1, sizeof(*j));
	j->q = q;
	j->v = v;
	j->n = n;
	j->bytes = bytes;
	j->done = done;
	j->arg = arg;
	j->state = JOB_WAITING;
	for (size_t i = 0; i < n; i++) {
		v[i].rv = -1;
		v[i].err = "not parsed";
		memset(&v[i].m, 0, sizeof(v[i].m));
	}
	q->pending++;
	q->bytes += bytes;
	pthread_mutex_lock(&q->lock);
	STAILQ_INSERT_TAIL(&q->waiting, j, link);
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	return j;
}

/* Drop a job's callback (see parseq.h). */
void
parseq_cancel(struct parseq_job *j)
{
	struct parseq *q;

	if (j == NULL)
		return;
	q = j->q;
	pthread_mutex_lock(&q->lock);
	bool waiting = j->state == JOB_WAITING;
	if (waiting)
		STAILQ_REMOVE(&q->waiting, j, parseq_job, link);
	else
		j->cancelled = true; /* freed at its delivery */
	pthread_mutex_unlock(&q->lock);
	if (waiting)
		job_free(j);
}

/* Change the caps (see parseq.h). */
void
parseq_set_limits(struct parseq *q, size_t max_jobs, size_t max_bytes)
{
	if (max_jobs > 0)
		q->max_jobs = max_jobs;
	if (max_bytes > 0)
		q->max_bytes = max_bytes;
}

/* Jobs not yet delivered (see parseq.h). */
size_t
parseq_pending(const struct parseq *q)
{
	return q->pending;
}

/* Messages handed back parsed (see parseq.h). */
uint64_t
parseq_delivered(const struct parseq *q)
{
	return q->delivered;
}

/* Stop and join the thread, drop what is left (see parseq.h). */
void
parseq_stop(struct parseq **qp)
{
	struct parseq *q = *qp;

	if (q == NULL)
		return;
	if (q->started) {
		pthread_mutex_lock(&q->lock);
		q->stopping = true;
		pthread_cond_signal(&q->wake);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->thread, NULL);
	}
	q_free(q);
	*qp = NULL;
}
