/*
 * workq.h: jobs run on a thread of their own, finished on the caller's loop.
 *
 * For the blocking work an event loop must not do itself (a directory
 * search through libldap, whose calls block): the caller queues a job with
 * three functions; run(job) is called on the queue's thread, then done(job)
 * on the caller's loop (net/handback), then release(job) there too. A job
 * cancelled before it is done (its caller went away) gets no done: its
 * release comes once the thread no longer touches it. Jobs run one at a
 * time, in the order queued.
 *
 * Everything but run is called on the caller's loop's thread.
 */
#ifndef ABQ_NET_WORKQ_H
#define ABQ_NET_WORKQ_H

#include <stddef.h>

struct event_base;
struct workq;
struct workq_job;

typedef void workq_fn(void *job);

/*
 * Start the thread; done and release run on base. who names the queue in
 * messages ("gal"). NULL with *errstr (static).
 */
struct workq *workq_start(struct event_base *base, const char *who, const char **errstr);

/*
 * Queue job: run(job) on the thread, then done(job) and release(job) on
 * the caller's loop. NULL when max_pending jobs (0: no cap) already wait or
 * run: nothing was queued.
 */
struct workq_job *workq_add(struct workq *q, void *job, workq_fn *run, workq_fn *done,
                            workq_fn *release, size_t max_pending);

/*
 * No done for this job; its release comes once the thread is done with it
 * (perhaps at once). Allowed from the job's own done (its release follows).
 */
void workq_cancel(struct workq_job *h);

/* Jobs queued and not yet released. */
size_t workq_pending(const struct workq *q);

/* Stop and join the thread (after the job it runs); every job left is released without done. */
void workq_stop(struct workq **qp);

#endif
