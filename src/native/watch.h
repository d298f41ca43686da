/*
 * watch.h: push for native mode: one IMAP watcher per account, shared by all
 * its devices' held Pings (and Syncs with Wait), on abqd's event loop.
 *
 * A held request subscribes to the mailboxes it waits on
 * (watch_subscribe); every subscription of one account shares one watcher,
 * whose mailbox set is the union of theirs (it only grows while the watcher
 * lives). The watcher tells a subscriber changed(arg, mailbox) when one of
 * its mailboxes got a message (delivered or moved in), lost one (expunged or
 * moved out) or saw a flag change. Several changes of one mailbox reported by
 * the server together give one call.
 *
 * How it watches, by what the server offers (learnt on its first login):
 * - NOTIFY (RFC 5465): one connection, `NOTIFY SET (mailboxes (...)
 *   (MessageNew MessageExpunge FlagChange MailboxName)) (personal
 *   (MailboxName))`, then IDLE (so that the client renews it and servers
 *   see a live connection); the server sends a STATUS
 *   for a watched mailbox when it changes. A new mailbox sends NOTIFY SET
 *   again. A server that refuses NOTIFY SET is watched as one without it.
 * - Otherwise IDLE: one connection per watched mailbox (EXAMINE, then IDLE),
 *   at most max_connections; the mailboxes past the cap are covered by a
 *   STATUS sweep (MESSAGES UIDNEXT UNSEEN, HIGHESTMODSEQ with CONDSTORE)
 *   every sweep_interval seconds on the first connection, which IDLEs on the
 *   first mailbox between sweeps. A sweep reports the mailboxes whose counts
 *   moved since the last one. Every sweep (also with nothing to STATUS)
 *   LISTs the account's mailboxes and compares their names with the last
 *   sweep's: a mailbox created, deleted or renamed anywhere in the account
 *   reports every watched mailbox changed, as NOTIFY's MailboxName does (a
 *   held Ping runs again and answers that the folders changed). One LIST
 *   per watcher per sweep_interval: the cost of hierarchy push without
 *   NOTIFY.
 * - IDLE is renewed by the client every idle_renew seconds (servers drop an
 *   IDLE after 30 minutes).
 *
 * Resilience. A dropped connection, a timeout or a server restart closes the
 * watcher's connections and reconnects after a backoff (backoff_min doubled
 * each failed try up to backoff_max; back to backoff_min once watching
 * again); once watching again every watched mailbox is reported changed
 * (changes may have been missed meanwhile). A refused login (or no safe way
 * to log in) is not retried: every subscriber gets error() once, and the
 * watcher stays failed until the subscriptions are gone, or a subscription
 * brings another password, which tries again.
 *
 * Lifetime. The last watch_unsubscribe of an account leaves its watcher
 * connected for linger seconds (a Ping re-issued right after its answer
 * finds it still watching), then closes its connections.
 *
 * Callbacks run from the loop (never inside watch_subscribe): they may
 * unsubscribe (their own or other subscriptions) and subscribe, but not free
 * the registry. Not thread-safe: everything on the loop's thread.
 */
#ifndef ABQ_NATIVE_WATCH_H
#define ABQ_NATIVE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "imap/imap_client.h"

struct evdns_base;
struct watch_registry;
struct watch_sub;

#define WATCH_DEFAULT_MAX_CONNECTIONS 3
#define WATCH_DEFAULT_SWEEP_INTERVAL  60    /* seconds */
#define WATCH_DEFAULT_LINGER          30    /* seconds */
#define WATCH_DEFAULT_BACKOFF_MIN     500   /* ms */
#define WATCH_DEFAULT_BACKOFF_MAX     30000 /* ms */
#define WATCH_MAX_MAILBOXES           1024  /* of one watcher (the union) */

struct watch_conf {
	const char *url;        /* imap://host[:port] or imaps://host[:port] (copied) */
	const char *ca_file;    /* PEM CA bundle; NULL: the system store (copied) */
	struct evdns_base *dns; /* borrowed; NULL: each client its own */
	bool allow_plaintext;   /* imap:// without STARTTLS (tests, loopback) */
	/* Connections one watcher may hold (the IDLE path); 0: the default. */
	unsigned max_connections;
	/* Seconds; 0: the defaults above (idle_renew: the client's, 29 min). */
	unsigned sweep_interval, linger, idle_renew;
	/* Milliseconds; 0: the defaults above. */
	unsigned backoff_min, backoff_max;
	unsigned connect_timeout, command_timeout; /* seconds; 0: the client's */
	struct imap_gate *gate; /* imap_client_conf's: logins in flight, shared; NULL: none */
};

struct watch_cbs {
	/* A watched mailbox (as the subscriber named it) changed. */
	void (*changed)(void *arg, const char *mailbox);
	/* The account cannot be watched (a refused login): once, nothing retries. */
	void (*error)(void *arg, enum imap_error e, const char *msg);
};

/* A registry on base. NULL with *errstr for a bad url. */
struct watch_registry *watch_registry_new(struct event_base *base, const struct watch_conf *conf,
                                          const char **errstr);
/* Close every watcher at once and free the subscriptions still there. */
void watch_registry_free(struct watch_registry *reg);

/*
 * Watch n mailboxes (UTF-8 names, "INBOX" in any case) of account, logged in
 * with user and password, for as long as the handle lives. NULL with *errstr
 * for no mailbox, a name that is not UTF-8 or too long, or past
 * WATCH_MAX_MAILBOXES.
 */
struct watch_sub *watch_subscribe(struct watch_registry *reg, const char *account, const char *user,
                                  const char *password, const char *const *mailboxes, size_t n,
                                  const struct watch_cbs *cbs, void *arg, const char **errstr);
/* End a subscription (no callback after this). */
void watch_unsubscribe(struct watch_sub *sub);

/* IMAP connections the account's watcher holds now (they count against its cap). */
unsigned watch_connections(const struct watch_registry *reg, const char *account);
/* Watchers alive (lingering ones included). */
unsigned watch_watchers(const struct watch_registry *reg);
/* Whether the account's watcher is watching now (logged in, NOTIFY SET or IDLEs set up). */
bool watch_is_watching(const struct watch_registry *reg, const char *account);
/* Whether the account's watcher uses NOTIFY (known once it has logged in). */
bool watch_uses_notify(const struct watch_registry *reg, const char *account);

#endif
