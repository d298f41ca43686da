/*
 * storeq.h: the store, used off the event loop.
 *
 * One thread owns the store handle. The loop hands it jobs (record a device a
 * request brought; batch last-seen updates) and gets the results back on the
 * loop's thread. Once a second the thread also flushes the batched last-seen
 * updates and reads the store's change log, so that decisions made elsewhere
 * (abqctl, another node) reach the loop within a second.
 *
 * The loop never waits on disk: every call here only queues.
 */
#ifndef ABQ_DAEMON_STOREQ_H
#define ABQ_DAEMON_STOREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct event_base;
struct storeq;
struct storeq_job;

/* A device's decision as the loop keeps it (state NONE: the record is gone). */
struct abq_view_device;
typedef void storeq_device_cb(void *arg, const char *account, const char *device_id,
                              const struct abq_view_device *now);

/*
 * Open the store (creating it on first start), report every recorded device to
 * on_device (in this thread, before returning), and start the thread. NULL with
 * *errmsg_r (a new string) on failure.
 */
struct abq_notice_conf;
struct notice_sender;
/* notices (copied; NULL: none) makes observations queue the user's notices. */
struct storeq *storeq_start(struct event_base *base, const char *url, const char *base_dir,
                            const char *default_domain, const struct abq_notice_conf *notices,
                            storeq_device_cb *on_device, void *arg, char **errmsg_r);
/* The sender to kick after an observation that changed a state (NULL: none). */
void storeq_set_sender(struct storeq *q, struct notice_sender *sender);
/*
 * The account loggers as the loop keeps them: cb gets the whole list (by id,
 * ended ones too; valid during the call only) at once, on the calling
 * thread, and again on the loop's thread whenever the change log says a
 * logger was added or removed.
 */
struct abq_logger;
typedef void storeq_logger_cb(void *arg, const struct abq_logger *v, size_t n);
void storeq_set_logger_cb(struct storeq *q, storeq_logger_cb *cb, void *arg);

/* Finish queued work, flush last-seen updates, stop the thread; *q = NULL. */
void storeq_stop(struct storeq **q);

/*
 * Result of storeq_observe, on the loop's thread: rv 0 and the device as now
 * recorded, or rv != 0 and a message.
 */
typedef void storeq_observe_cb(void *arg, int rv, const struct abq_device *recorded,
                               const char *errmsg);

/*
 * Record what a request reported about (account, device) (abq_registry_observe:
 * a new device is decided and made durable; changed facts are recorded and may
 * change the state). The struct is copied. Returns a handle for
 * storeq_cancel().
 */
struct storeq_job *storeq_observe(struct storeq *q, const struct abq_device *seen,
                                  storeq_observe_cb *cb, void *arg);
/* The caller went away: the job still runs, but cb is not called. */
void storeq_cancel(struct storeq_job *job);

/*
 * Serve a request of a quarantined (or Discovery) device from the quarantine
 * mailbox: the command layer runs on the store thread, where the device's
 * record and sync state are. The result goes to cb on the loop's thread;
 * out is the command layer's answer (Ping: a hold instruction), valid during
 * the call only. rv is 0, or -1 with a message.
 */
struct mbx_serve_out;
typedef void storeq_serve_cb(void *arg, int rv, struct mbx_serve_out *out, const char *errmsg);
struct storeq_serve_req {
	const char *account;
	const char *device_id;
	int cmd; /* enum eas_cmd */
	const char *version;
	const void *body;
	size_t body_len;
	const char *email;  /* the user's address */
	const char *sender; /* the alert's From */
	const char *contact;
};
struct storeq_job *storeq_serve(struct storeq *q, const struct storeq_serve_req *r,
                                storeq_serve_cb *cb, void *arg);

/*
 * Native mode's sync state and folder ids (mailbox/run.h, native/mailbox_imap.h),
 * read and written on the store thread. Each result comes to cb on the loop's
 * thread; storeq_cancel drops it (the work still runs).
 *
 * state_get: rv 1 with blob (malloc'd, NUL-terminated after len bytes; cb
 * takes it), 0 when there is none, -1.
 * state_commit: the n ops in order in one transaction (collection NULL: every
 * collection of the device; blob NULL: a delete); rv 0, or -1 and nothing written.
 * folder_assign: the ids of one listing of n mailboxes of account (l[i].mailbox,
 * .mailbox_id, .uidvalidity; delim, probe: abq_store_folder_list), new ones
 * assigned as needed and renames on the server followed; rv 0 with ids
 * (malloc'd array of malloc'd strings; cb takes them), 1 (probe) with the ids
 * the store needs the server's word for NULL, or -1.
 * folder_change: folder_id of account renamed to mailbox under parent_id
 * (NULL: the top), the folders under its old name with it (delim), or, mailbox
 * NULL, deleted with them (abq_store_folder_rename / _delete); rv 0 or -1.
 */
struct mbx_state_op;
typedef void storeq_state_got_cb(void *arg, int rv, char *blob, size_t len);
typedef void storeq_state_done_cb(void *arg, int rv);
typedef void storeq_ids_cb(void *arg, int rv, char **ids);
struct storeq_job *storeq_state_get(struct storeq *q, const char *account, const char *device_id,
                                    const char *collection, storeq_state_got_cb *cb, void *arg);
struct storeq_job *storeq_state_commit(struct storeq *q, const char *account, const char *device_id,
                                       const struct mbx_state_op *ops, size_t n,
                                       storeq_state_done_cb *cb, void *arg);
struct storeq_job *storeq_folder_assign(struct storeq *q, const char *account,
                                        const struct abq_folder *l, size_t n, char delim,
                                        bool probe, storeq_ids_cb *cb, void *arg);

/*
 * Any work of the caller's on the store (native mode's map of contacts,
 * calendars and tasks): run(store, arg) on the store thread, its return
 * the rv; then done(arg, rv) on the loop's thread, unless the job was
 * cancelled (storeq_cancel); release(arg) (may be NULL) after either, or
 * when the queue stops with the job left, on the loop's thread: arg is the
 * job's from the call on. run must not keep the store's pointers.
 */
struct abq_store;
typedef int storeq_call_fn(struct abq_store *s, void *arg);
typedef void storeq_call_done_fn(void *arg, int rv);
typedef void storeq_call_free_fn(void *arg);
struct storeq_job *storeq_call(struct storeq *q, storeq_call_fn *run, storeq_call_done_fn *done,
                               storeq_call_free_fn *release, void *arg);

/*
 * SendMail's ClientId of (account, device_id) (mailbox/commands.h, store.h
 * abq_store_clientid_*), op an enum mbx_client_id_op, at the store's time:
 * a reservation's rv is MBX_CLIENTID_NEW, _DONE or _BUSY, or -1; a sent or
 * a release's is 0 or -1 (failures are logged).
 */
struct storeq_job *storeq_client_id(struct storeq *q, const char *account, const char *device_id,
                                    const char *client_id, int op, storeq_state_done_cb *cb,
                                    void *arg);

struct storeq_job *storeq_folder_change(struct storeq *q, const char *account,
                                        const char *folder_id, const char *mailbox,
                                        const char *parent_id, char delim, storeq_state_done_cb *cb,
                                        void *arg);

/* Note a request from a known device; written in batches once a second. */
void storeq_touch(struct storeq *q, const char *account, const char *device_id, int64_t when,
                  const char *address, const char *command);

/*
 * 0 while the store answers, else when it was found lost (seconds since the
 * epoch): the gateway's grace period runs from there ([store] grace).
 */
int64_t storeq_down_since(struct storeq *q);

/* The file(s) of the store, for chown before dropping privileges. */
const char *const *storeq_files(struct storeq *q);

#endif
