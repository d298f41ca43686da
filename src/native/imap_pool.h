/*
 * imap_pool.h: IMAP connections per account on the event loop, capped.
 *
 * Mail servers limit connections per user and client address (Dovecot
 * mail_max_userip_connections, 10 by default) and abqd connects for every
 * user from one address, so native mode never holds more than max_per_account
 * connections for one account ([upstream] max_connections_per_account,
 * default 3). A request asks for a connection (imap_pool_get), uses it alone
 * and gives it back (imap_pool_put); meanwhile other requests of the account
 * wait in a FIFO queue (at most max_waiters; a full queue is an error) for at
 * most wait_timeout seconds.
 *
 * Credentials. A connection is logged in with the phone's own account and
 * password and is only ever handed to a request that presents the same
 * account and password: connections are keyed by the account and a keyed
 * hash (SipHash, a key drawn when the pool is made) of the password. The
 * pool keeps NO password: the password lives in the waiting request (copied
 * by imap_pool_get, wiped when the request is answered or cancelled), and a
 * connection is opened only on behalf of a waiting request, logging in with
 * its password. So there is nothing to reconnect with once every request is
 * answered, and nothing to need: the next request brings its password.
 *
 * Life of a connection. Given back healthy, it stays logged in for
 * idle_seconds, then is logged out; dropped by the server (or given back as
 * broken) it is freed and the next request opens a new one. When the
 * account is at its cap with an idle connection under another password, that
 * one is closed to make room.
 *
 * Failures reported to the request: a refused login (IMAP_POOL_AUTH: the
 * caller answers the phone HTTP 401), a server that cannot be reached
 * (IMAP_POOL_UNAVAILABLE), a wait past wait_timeout (IMAP_POOL_TIMEOUT).
 * A server refusing a connection over its own limit (Dovecot answers the
 * login "NO [UNAVAILABLE] Maximum number of connections..."; any refused
 * login under a password the account already has a connection with counts
 * as such) is not a wrong password: the pool lowers that account's cap to
 * the connections it holds (until they are all gone) and the request keeps
 * waiting for one of them; when it holds none, it tries again after
 * retry_ms, within the request's wait.
 *
 * Bookkeeping. Accounts are found by a keyed hash of their name and
 * connections by their client, so neither a request nor a give-back walks
 * every account; an account's entry is freed once it holds no connection and
 * no waiting request.
 *
 * Not thread-safe: one pool per event loop (worker).
 */
#ifndef ABQ_NATIVE_IMAP_POOL_H
#define ABQ_NATIVE_IMAP_POOL_H

#include <event2/event.h>
#include <stdbool.h>

#include "imap/imap_client.h"

struct imap_pool;
struct imap_pool_req;

struct imap_pool_conf {
	const char *url;          /* imap:// or imaps:// (copied) */
	const char *ca_file;      /* NULL: the system store (copied) */
	bool allow_plaintext;     /* imap:// without STARTTLS (tests, loopback) */
	unsigned max_per_account; /* 0: 3 */
	unsigned idle_seconds;    /* an idle connection is logged out after; 0: 60 */
	unsigned max_waiters;     /* requests queued per account; 0: 64 */
	unsigned wait_timeout;    /* seconds a request may wait; 0: 30 */
	unsigned retry_ms;        /* over the server's limit with none open; 0: 500 */
	unsigned connect_timeout, command_timeout; /* imap_client_conf's; 0: its defaults */
	struct imap_gate *gate; /* imap_client_conf's: logins in flight, shared; NULL: none */
};

enum imap_pool_err {
	IMAP_POOL_OK,
	IMAP_POOL_AUTH,        /* the server refused the login */
	IMAP_POOL_UNAVAILABLE, /* cannot connect (DNS, TCP, TLS, protocol) */
	IMAP_POOL_TIMEOUT,     /* waited wait_timeout for a connection */
};

/*
 * A request's answer: c, a logged-in connection that is the request's
 * until imap_pool_put (err IMAP_POOL_OK), or NULL with err and a message.
 * Called once, never before imap_pool_get returns.
 */
typedef void (*imap_pool_cb)(void *arg, struct imap_client *c, enum imap_pool_err err,
                             const char *msg);

/*
 * A new pool; NULL with *errstr for a bad url or a CA file (or system store)
 * that cannot be loaded. Its one client TLS context is shared by every
 * connection it opens (loading the store costs milliseconds per connection
 * otherwise).
 */
struct imap_pool *imap_pool_new(struct event_base *base, const struct imap_pool_conf *conf,
                                const char **errstr);
/* Close every connection; queued requests get no answer (cancel them first). */
void imap_pool_free(struct imap_pool *p);
/*
 * Ask for a connection of account (the canonical account: the cap and the
 * queue are its) logged in as user (the name the phone gave, NULL: account)
 * with password; a connection serves only requests of the same user and
 * password, so two names of one account share the cap, never a login. Returns the
 * request (cancel it with imap_pool_cancel until cb has run), or NULL with
 * *errstr when the account's queue is full.
 */
struct imap_pool_req *imap_pool_get(struct imap_pool *p, const char *account, const char *user,
                                    const char *password, imap_pool_cb cb, void *arg,
                                    const char **errstr);
/* Withdraw a request whose cb has not run (a connection it was being given goes back). */
void imap_pool_cancel(struct imap_pool_req *r);
/*
 * Give back a connection got from the pool: ok false (or a connection not
 * READY) closes it, else it waits for the next request of its account and
 * password, at most idle_seconds.
 */
void imap_pool_put(struct imap_pool *p, struct imap_client *c, bool ok);
/* Connections open (connecting, busy or idle) for account. */
unsigned imap_pool_open_count(const struct imap_pool *p, const char *account);
/* Connections the pool ever opened (tests: reuse). */
unsigned long imap_pool_opened_total(const struct imap_pool *p);
/*
 * Accounts the pool has an entry for: those holding a connection or a
 * waiting request (an account with neither is forgotten).
 */
unsigned imap_pool_accounts(const struct imap_pool *p);

#endif
