/*
 * parseq.h: messages parsed (msgconv) on a thread of their own.
 *
 * Parsing a fetched message with GMime takes about 0.1 ms for an ordinary
 * one and several ms for one near 1 MiB (docs/internals/native.md, "Where
 * MIME parsing runs"); a window of them would hold the worker's loop, and
 * every other phone of the worker with it. A parseq is one thread that
 * parses batches: the caller hands it a batch (parseq_parse), whose bytes
 * the job then owns, and the job's callback runs later on the caller's base,
 * from an event fed by an eventfd, with the batch given back, each message
 * parsed as msgconv_parse does (the opts depend only on the message: its
 * INTERNALDATE as date_fallback; no_mime, for the MIME is raw itself, which
 * the caller keeps and lends for type 4 without a copy), and an
 * HTML-only body rendered as text ahead (msgconv_render).
 *
 * Lifetimes: the batch belongs to the job from parseq_parse until its
 * callback, and to the callback's caller after. A job is freed only on the
 * caller's thread, so a caller that goes away (a backend freed with jobs in
 * flight) calls parseq_cancel: no callback then, and the batch is freed by
 * the queue once the thread is done with it. Nothing of the caller is
 * touched after parseq_cancel returns.
 *
 * What is queued is capped (jobs and bytes): a batch over a cap is refused
 * (parseq_parse returns NULL, the batch stays the caller's), and the caller
 * parses on its loop as before (the command layer parses a message that
 * comes without its parse).
 *
 * Everything here is called from the caller's base's thread.
 */
#ifndef ABQ_NATIVE_PARSEQ_H
#define ABQ_NATIVE_PARSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "mime/msgconv.h"

/* The defaults of the caps (parseq_set_limits changes them). */
#define PARSEQ_MAX_JOBS  256
#define PARSEQ_MAX_BYTES (64u * 1024 * 1024)

struct event_base;
struct parseq;
struct parseq_job;

/* One message of a batch. */
struct parseq_msg {
	/* In: malloc'd; the job's while it is queued. */
	char *raw; /* the message's bytes (perhaps its first part only) */
	size_t raw_len;
	char *outline; /* a large message's outline (mailbox.h), parsed instead; or NULL */
	size_t outline_len;
	int64_t internal_date; /* date_fallback */
	/* Out: msgconv_parse's result, its error (static) and its message. */
	int rv;
	const char *err;
	struct msgconv_msg m;
};

/*
 * The batch is parsed: v (n messages, the array given to parseq_parse) is
 * the callback's to keep or free (parseq_msgs_free); the job's handle is
 * gone once it is called.
 */
typedef void parseq_done_cb(void *arg, struct parseq_msg *v, size_t n);

/*
 * Start the thread; callbacks run on caller_base. Returns the queue, or
 * NULL with *errstr (static).
 */
struct parseq *parseq_start(struct event_base *caller_base, const char **errstr);

/*
 * Parse v[0..n) (a malloc'd array) on the thread: v and its buffers become
 * the job's. done(arg, v, n) is called once on the caller's base unless the
 * job is cancelled first. NULL when a cap refuses the batch: v stays the
 * caller's, untouched.
 */
struct parseq_job *parseq_parse(struct parseq *q, struct parseq_msg *v, size_t n,
                                parseq_done_cb *done, void *arg);

/*
 * No callback for j after this (j is gone for the caller); its batch is
 * freed by the queue (at once when the thread has not taken it yet, else
 * once the thread is done with it).
 */
void parseq_cancel(struct parseq_job *j);

/* Free a batch: every message's buffers and parse, and v. */
void parseq_msgs_free(struct parseq_msg *v, size_t n);

/* Change the caps (see the top); 0 leaves one as it is. */
void parseq_set_limits(struct parseq *q, size_t max_jobs, size_t max_bytes);

/* Jobs given to the thread and not yet delivered (for tests and metrics). */
size_t parseq_pending(const struct parseq *q);
/* Messages handed back to callbacks so far (not counting cancelled jobs). */
uint64_t parseq_delivered(const struct parseq *q);

/*
 * Stop the thread and join it (the batch being parsed stops after its
 * current message): pending jobs dropped without callbacks, their batches
 * freed. Frees *q and NULLs it.
 */
void parseq_stop(struct parseq **q);

#endif
