/*
 * workq.c: jobs run on a thread of their own (workq.h).
 *
 * A job is in one of three places: `waiting` (under the lock), running on
 * the thread, or handed back (net/handback) on its way to the caller's
 * loop. A job is released only on the caller's side (a cancel of a waiting
 * job, a delivery, workq_stop after the join), so a cancel never races a
 * release, and a cancelled job's memory is released only once the thread
 * no longer uses it. The shape of the parse queue (native/parseq.c), for
 * any job.
 */
#include "net/workq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "lib/util.h"
#include "net/handback.h"

enum job_state { JOB_WAITING, JOB_RUNNING, JOB_DONE };

struct workq_job {
	STAILQ_ENTRY(workq_job) link; /* in waiting */
	struct handback_link back;    /* run, on its way to the caller */
	struct workq *q;
	void *job;
	workq_fn *run, *done, *release;
	enum job_state state; /* under q->lock */
	bool cancelled;       /* under q->lock */
};

STAILQ_HEAD(job_list, workq_job);

struct workq {
	struct handback *back;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;           /* under lock */
	struct job_list waiting; /* under lock */
	size_t pending;          /* the caller's: queued and not released */
};

static void
job_release(struct workq_job *h)
{
	h->q->pending--;
	h->release(h->job);
	free(h);
}

static void *
thread_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct workq_job *h;
		while (!q->stopping && STAILQ_EMPTY(&q->waiting))
			pthread_cond_wait(&q->wake, &q->lock);
		if (q->stopping)
			break;
		h = STAILQ_FIRST(&q->waiting);
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		h->state = JOB_RUNNING;
		if (!h->cancelled) {
			pthread_mutex_unlock(&q->lock);
			h->run(h->job);
			pthread_mutex_lock(&q->lock);
		}
		h->state = JOB_DONE;
		handback_post(q->back, &h->back);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void
on_deliver(void *arg, struct handback_link *l)
{
	struct workq_job *h = HANDBACK_OF(l, struct workq_job, back);

	(void)arg;
	/* Once a job is done only the caller's thread sets cancelled: no lock needed. */
	if (!h->cancelled)
		h->done(h->job);
	job_release(h);
}

static void
q_free(struct workq *q)
{
	struct workq_job *h;

	while ((h = STAILQ_FIRST(&q->waiting)) != NULL) {
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		job_release(h);
	}
	if (q->back != NULL) {
		struct handback_link *l, *next;
		for (l = handback_take(q->back); l != NULL; l = next) {
			next = l->next;
			job_release(HANDBACK_OF(l, struct workq_job, back));
		}
		handback_free(q->back);
	}
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

struct workq *
workq_start(struct event_base *base, const char *who, const char **errstr)
{
	struct workq *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	STAILQ_INIT(&q->waiting);
	if ((q->back = handback_new(base, who, on_deliver, q, errstr)) == NULL)
		goto fail;
	if (pthread_create(&q->thread, NULL, thread_main, q) != 0) {
		*errstr = "cannot start a worker thread";
		goto fail;
	}
	q->started = true;
	return q;
fail:
	q_free(q);
	return NULL;
}

struct workq_job *
workq_add(struct workq *q, void *job, workq_fn *run, workq_fn *done, workq_fn *release,
          size_t max_pending)
{
	struct workq_job *h;

	if (max_pending > 0 && q->pending >= max_pending)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->q = q;
	h->job = job;
	h->run = run;
	h->done = done;
	h->release = release;
	h->state = JOB_WAITING;
	q->pending++;
	pthread_mutex_lock(&q->lock);
	STAILQ_INSERT_TAIL(&q->waiting, h, link);
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	return h;
}

void
workq_cancel(struct workq_job *h)
{
	struct workq *q;
	bool waiting;

	if (h == NULL)
		return;
	q = h->q;
	pthread_mutex_lock(&q->lock);
	waiting = h->state == JOB_WAITING;
	if (waiting)
		STAILQ_REMOVE(&q->waiting, h, workq_job, link);
	else
		h->cancelled = true; /* released at its delivery */
	pthread_mutex_unlock(&q->lock);
	if (waiting)
		job_release(h);
}

size_t
workq_pending(const struct workq *q)
{
	return q->pending;
}

void
workq_stop(struct workq **qp)
{
	struct workq *q = *qp;

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
