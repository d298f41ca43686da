/*
 * run.h: the command layer driven over asynchronous backends and sync state.
 *
 * mbx_serve (commands.h) is synchronous and free of I/O; an IMAP backend and
 * a sync state reached through the store thread answer later. mbx_run joins
 * them with restartable commands: it runs mbx_serve; when a backend op or a
 * sync-state read answers MBX_PENDING (mailbox.h), the run stops with nothing
 * written, the driver waits for the backend (mbx_wait) and for the state
 * reads it started, and runs the same request again. Each run gets further:
 * the backend answers the ops it has done from the request's results
 * (mbx_begin before every run, mbx_end at the end), and the driver answers
 * the reads it has done from the blobs it fetched.
 *
 * The sync state a run writes is staged, not written: every run reads the
 * state as it was before the request, overlaid with what that same run has
 * written so far (a command that writes a collection and then reads it sees
 * its own write). When a run completes, the staged writes are committed once,
 * in order, as one batch (nothing is committed when nothing was written, or
 * for an HTTP 5xx answer); the answer goes to the caller only after the
 * commit succeeded. A failed commit is HTTP 500, so nothing half-done reaches
 * the phone. Runs are capped: a request still pending after max_runs runs is
 * answered HTTP 500 with a log line, never looped on.
 *
 * No event loop here: only callbacks. Synchronous backends and accessors
 * work too (a callback called before the function that takes it returns is
 * fine, everywhere): then mbx_run calls done before it returns.
 */
#ifndef ABQ_MAILBOX_RUN_H
#define ABQ_MAILBOX_RUN_H

#include <stddef.h>

#include "mailbox/commands.h"

/* Runs of one request when the caller passes 0. */
#define MBX_RUN_MAX_RUNS 64
/* Distinct collections one request may read (beyond: HTTP 500). */
#define MBX_RUN_MAX_READS 1024

/* One staged write of a request, as the commit receives it. */
struct mbx_state_op {
	const char *collection; /* NULL (a delete only): every collection of the device */
	const char *blob;       /* put: the blob (len bytes); NULL: delete */
	size_t len;
};

/*
 * A read's completion: rv 1 with blob (malloc'd; the driver takes it) and len,
 * 0 when there is none, -1 on failure.
 */
typedef void (*mbx_state_got_fn)(void *done_arg, int rv, char *blob, size_t len);
/* A commit's completion: 0, or -1 (nothing of the batch is written). */
typedef void (*mbx_state_committed_fn)(void *done_arg, int rv);
/* A ClientId op's completion: what commands.h's client_id answers, never MBX_PENDING. */
typedef void (*mbx_client_id_fn)(void *done_arg, int rv);

/*
 * The sync state, asynchronously (the store through its thread). Each
 * function calls done exactly once, possibly before it returns; the
 * strings and ops it is given live until done is called.
 */
struct mbx_async_state {
	void *arg;
	/* Read (account, device_id, collection). */
	void (*get)(void *arg, const char *account, const char *device_id, const char *collection,
	            mbx_state_got_fn done, void *done_arg);
	/* Write the n ops in order, all or none (one transaction). */
	void (*commit)(void *arg, const char *account, const char *device_id,
	               const struct mbx_state_op *ops, size_t n, mbx_state_committed_fn done,
	               void *done_arg);
	/*
	 * SendMail's ClientId op (commands.h mbx_state_accessor.client_id), not
	 * staged: each op is done once per request, when the command first asks,
	 * and its answer is given to every later run. NULL: not remembered.
	 */
	void (*client_id)(void *arg, const char *account, const char *device_id,
	                  const char *client_id, int op, mbx_client_id_fn done, void *done_arg);
};

/*
 * The answer: rv 0 with *out filled (an HTTP 500 too, when the backend, the
 * state or the cap failed), or -1 when in was unusable (as mbx_serve's -1).
 * out belongs to the driver, which clears it when done returns; done may
 * keep the body by taking out->body and setting it to NULL.
 */
typedef void (*mbx_run_done_fn)(void *arg, int rv, struct mbx_serve_out *out);

/*
 * Answer in through the command layer, its backend possibly pending, its
 * sync state through state (in->state is not used: the driver puts its own
 * staging accessor there). max_runs: the cap on runs (0: MBX_RUN_MAX_RUNS).
 * done is called exactly once, possibly before mbx_run returns. in, what it
 * points to (body, account, backend...) and state must live until then.
 */
void mbx_run(const struct mbx_serve_in *in, const struct mbx_async_state *state, int max_runs,
             mbx_run_done_fn done, void *arg);

#endif
