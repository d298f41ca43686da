/*
 * submitq.h: SMTP submissions on a thread of their own.
 *
 * libcurl waits synchronously for the answer to the final "." and to QUIT
 * (see submit.c), so submissions must not run on a loop that serves phones.
 * A submitq is one thread with its own event base and curl_loop; the caller
 * hands it a message with submitq_send (everything needed is copied), and
 * the job's callback runs later on the caller's base, from an event fed by
 * an eventfd, with a copy of the outcome. Jobs go in under a mutex and the
 * thread is woken by an eventfd of its own; libevent stays single-threaded
 * per base.
 *
 * The credentials are copied into the job and wiped when it is freed; they
 * are never logged.
 *
 * What is queued is capped, because each job holds a copy of its message
 * and, once started, a connection to the submission server until that
 * server answers: at most max_jobs jobs in all, max_per_user of them for one
 * user name, and max_bytes of messages. A job over a cap is not started: its
 * outcome, SUBMIT_TEMPORARY ("too many submissions in flight"), is delivered
 * the same way as any other, so one account sending in a loop (or a slow
 * server) cannot take the daemon's memory or the others' submissions. A refusal before connecting
 * (too large, no recipients, a bad URL) is an outcome like any other, delivered the same way.
 *
 * Everything here is called from the caller's base's thread.
 */
#ifndef ABQ_NATIVE_SUBMITQ_H
#define ABQ_NATIVE_SUBMITQ_H

#include <stddef.h>

#include "native/submit.h"

/* The defaults of the caps (above; submitq_set_limits changes them). */
#define SUBMITQ_MAX_JOBS     64
#define SUBMITQ_MAX_PER_USER 4
#define SUBMITQ_MAX_BYTES    (256u * 1024 * 1024)

struct event_base;
struct submitq;
struct submitq_job;

/*
 * The job ended: o (and its strings) live until the callback returns; the
 * job's handle is gone once it is called.
 */
typedef void submitq_done_cb(void *arg, const struct submit_outcome *o);

/*
 * Start the thread; callbacks run on caller_base. Returns the queue, or
 * NULL with *errstr (static).
 */
struct submitq *submitq_start(struct event_base *caller_base, const char **errstr);

/*
 * Send msg (len bytes) as conf says. conf's strings and msg are copied: the
 * caller may free them at once. done(arg, o) is called once on the caller's
 * base, unless the job is cancelled first. Never NULL.
 */
struct submitq_job *submitq_send(struct submitq *q, const struct submit_conf *conf, const char *msg,
                                 size_t len, submitq_done_cb *done, void *arg);

/*
 * No callback for j after this (j is gone for the caller). A job not yet
 * started is dropped; one in flight runs to its end on the thread (whether
 * the server takes the message is then not told).
 */
void submitq_cancel(struct submitq_job *j);

/*
 * Change the caps (see the top); 0 leaves one as it is. Jobs already queued
 * keep their place.
 */
void submitq_set_limits(struct submitq *q, size_t max_jobs, size_t max_per_user, size_t max_bytes);

/* Jobs given to the thread and not yet delivered (for tests and metrics). */
size_t submitq_pending(const struct submitq *q);

/*
 * Stop the thread and join it: transfers in flight are abandoned, pending
 * jobs dropped without callbacks. Frees *q and NULLs it.
 */
void submitq_stop(struct submitq **q);

#endif
