/*
 * mailbox_dav.h: native mode's contacts, calendars and tasks from CalDAV and
 * CardDAV servers, as a mailbox backend (mailbox.h) of PIM folders.
 *
 * One backend serves one request of one account, as the IMAP backend does;
 * the gateway joins it to the account's IMAP backend with mbx_union_new
 * (prefix "c": the collections' ids are the store's "c1", "c2", ...).
 *
 * - Folders: the collections the standard discovery finds (dav_discover) for
 *   `[upstream] caldav` and `carddav` with the user's credentials: each
 *   calendar of events (EAS type 8 for the default, 13 otherwise), of tasks
 *   (7, 15) and address book (9, 14). The default of a kind is the first of
 *   it in href order. The store keeps them and their ids (schema 11); a
 *   worker discovers an account again at most every MBX_DAV_DISCOVER_TTL
 *   seconds and lists the stored collections in between. A discovery that
 *   fails lists the stored collections (the phone keeps its calendars while
 *   the server is away) and is logged.
 * - Changes: each changes() first brings the account's map of the
 *   collection up to the server (sync-collection from the stored token, or
 *   the whole listing where the server has none), in the store under the
 *   write lock (every device of the account, on every worker and node,
 *   shares it); then the items past the device's cursor, a change sequence:
 *   added after it (Add), changed (Change), gone (Delete). The objects of a
 *   window are fetched by one multiget and kept for the request's
 *   fetch_object.
 * - Writes: put_object (PUT with If-None-Match: * or If-Match) and remove
 *   (DELETE with If-Match) go to the server first, then to the map with the
 *   next sequence, noted in the device's cursor so that its own change is
 *   not reported back. An item changed on the server since the device's
 *   cursor (or since the ETag asked) is MBX_CONFLICT: the server's wins.
 *
 * The cursor: "<seq>" or "<seq> <item>@<seq>,..." (the device's own changes
 * past its sequence). A cursor below the collection's pruned sequence
 * starts over (changes() answers 0: Sync Status 3).
 *
 * Every op may answer MBX_PENDING (network, store); reruns of a request
 * answer from its recorded results (keyed by what was asked; writes in the
 * order made), as mailbox.h requires. Destroying the backend cancels what is
 * in flight: nothing is called back after.
 */
#ifndef ABQ_NATIVE_MAILBOX_DAV_H
#define ABQ_NATIVE_MAILBOX_DAV_H

#include <stddef.h>

#include "mailbox/mailbox.h"

#define MBX_DAV_DISCOVER_TTL 300 /* seconds a worker trusts an account's discovered collections */
#define MBX_DAV_PREFIX       "c" /* the collections' ids (the union's prefix) */
/*
 * Seconds a refresh of a collection's map serves a count (a Ping, a held
 * Ping's poll, GetItemEstimate) of any device of the account, at least; a
 * Sync is served by one younger than the conf's max_age_s.
 */
#define MBX_DAV_FRESH 20

struct abq_store;
struct curl_loop;
struct mbx_dav_shared;

/*
 * The store, asynchronously (the gateway's store thread, storeq_call): run
 * on the store's thread, then done on the loop (unless cancelled), then
 * release on the loop. call returns a handle for cancel, or NULL when the
 * work could not be queued.
 */
struct mbx_dav_store {
	void *arg;
	void *(*call)(void *arg, int (*run)(struct abq_store *s, void *job),
	              void (*done)(void *job, int rv), void (*release)(void *job), void *job);
	void (*cancel)(void *arg, void *handle);
};

struct mbx_dav_conf {
	const char *caldav;  /* https:// URL where calendar discovery starts; NULL: none */
	const char *carddav; /* the same for address books; NULL: none */
	const char *ca_file; /* NULL: the system's CAs */
	unsigned connect_timeout_ms, timeout_ms;
	/*
	 * Seconds a refresh of a collection's map (by any device of the
	 * account, on any worker or node: it is in the store) serves a Sync
	 * without asking the server again ([upstream] dav_max_age); 0: every
	 * Sync asks. What a device writes through abqd is in the map at once;
	 * only changes made elsewhere wait up to this long.
	 */
	unsigned max_age_s;
};

/* What the backends of one worker share: when each account was last discovered. */
struct mbx_dav_shared *mbx_dav_shared_new(void);
void mbx_dav_shared_free(struct mbx_dav_shared **sp);
/*
 * Refreshes of collections' maps the worker asked of the servers, and
 * those it did not because one of the same account and collection was in
 * flight (the tasks waited for it).
 */
void mbx_dav_shared_stats(const struct mbx_dav_shared *s, unsigned long *refreshes,
                          unsigned long *joined);

/*
 * A backend for one request of account (user and password: the phone's
 * credentials, sent only to the configured servers). conf, store and the
 * strings are copied; cl and shared outlive the backend. NULL with *errstr
 * for a configuration the DAV client refuses.
 */
struct mbx_backend *mbx_dav_new(struct curl_loop *cl, struct mbx_dav_shared *shared,
                                const struct mbx_dav_conf *conf, const struct mbx_dav_store *store,
                                const char *account, const char *user, const char *password,
                                const char **errstr);

#endif
