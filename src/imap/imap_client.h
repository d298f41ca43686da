/*
 * imap_client.h: one IMAP connection on abqd's libevent loop.
 *
 * imap_client_new connects (imaps://: TLS from the first byte; imap://:
 * STARTTLS when the server offers it), reads the greeting, learns the
 * capabilities (from the greeting's code, or by asking), logs in
 * (AUTHENTICATE PLAIN when offered, with SASL-IR when offered, else LOGIN),
 * enables what abqd uses among QRESYNC, CONDSTORE and UTF8=ACCEPT, and then
 * calls on_ready. The password is kept only until the login is answered
 * (then wiped) and is never logged.
 *
 * Commands. imap_client_command sends a command built with the imap_cmd
 * helpers (atoms, quoted strings, literals: "{N+}" with LITERAL+, or LITERAL-
 * for up to 4096 bytes, else "{N}" and the rest waits for the server's "+").
 * Commands are pipelined: several may be in flight; each has its callback,
 * which receives the untagged responses that arrive while it is the oldest
 * command in flight, then its tagged status (the last call). With several in
 * flight, untagged data is given to the oldest: commands whose data must not
 * mix should be sent one after the other. Untagged responses that arrive
 * while no command runs (or during IDLE) go to on_untagged.
 *
 * FETCH bodies. A command may set on_chunk: BODY[...]/BINARY[...] literals
 * that arrive while it is the oldest in flight are streamed to it (see
 * imap_parse.h), never held whole.
 *
 * IDLE. imap_client_idle starts IDLE (when offered); untagged responses then
 * go to on_untagged. imap_client_idle_done ends it; a command submitted
 * while idling ends it first (DONE is sent, then the command). IDLE is
 * renewed every idle_renew seconds (servers drop an IDLE after 30 minutes).
 *
 * Timeouts: connect_timeout covers TCP, TLS, greeting, login and ENABLE;
 * command_timeout is the longest the server may stay silent while a command
 * is in flight. Caps: at most max_queue commands queued or in flight, and at
 * most max_out bytes waiting to be written; past either, imap_client_command
 * fails (nothing is queued).
 *
 * Errors. When the connection fails or is dropped (a refused login, a
 * timeout, malformed input, BYE, a closed socket), every command still
 * queued gets its callback with r == NULL, then on_error runs once, with a
 * reason and a message. The client is then dead: free it (also allowed from
 * inside any callback).
 *
 * Not thread-safe: call everything from the event loop's thread.
 */
#ifndef ABQ_IMAP_CLIENT_H
#define ABQ_IMAP_CLIENT_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parse.h"

struct imap_client;
struct imap_cmd;

enum imap_error {
	IMAP_ERR_CONNECT,  /* TCP connect or DNS failed */
	IMAP_ERR_TLS,      /* handshake or certificate check failed */
	IMAP_ERR_AUTH,     /* the server refused the login (wrong password) */
	IMAP_ERR_TIMEOUT,  /* connect, login or command timeout */
	IMAP_ERR_PROTOCOL, /* malformed or unexpected input, a cap passed */
	IMAP_ERR_CLOSED,   /* the server closed the connection (or said BYE) */
	IMAP_ERR_REFUSED,  /* no way to log in safely (no TLS, LOGINDISABLED...) */
	/* The login refused for now (RFC 5530 UNAVAILABLE, INUSE, LIMIT, SERVERBUG): retry later.
	 */
	IMAP_ERR_UNAVAILABLE,
};

enum imap_client_state {
	IMAP_STATE_CONNECTING, /* TCP, TLS, greeting, capabilities, login */
	IMAP_STATE_READY,      /* logged in: commands may be sent */
	IMAP_STATE_IDLE,       /* IDLE running */
	IMAP_STATE_LOGOUT,     /* LOGOUT sent */
	IMAP_STATE_DEAD,       /* failed or closed */
};

struct evdns_base;

/*
 * A gate: at most max logins in flight at once among the clients given it
 * (from the connect to the end of the login, or a failure). A client past
 * it waits, unconnected and without its connect timer running, until
 * another's login ends; then it connects. Without one, a thousand
 * watchers or pools reconnecting at once (a restart, a burst of phones) each
 * start a login the server cannot finish within the connect timeout, give up,
 * retry, and none gets through; a gate lets them in a few dozen at a time.
 * Clients of one base only; free it after its clients.
 */
struct imap_gate;
struct imap_gate *imap_gate_new(unsigned max);
void imap_gate_free(struct imap_gate **g);
/* Logins in flight, and clients waiting for one. */
unsigned imap_gate_in_flight(const struct imap_gate *g);
unsigned imap_gate_waiting(const struct imap_gate *g);

struct imap_client_conf {
	const char *url; /* imap://host[:port] or imaps://host[:port] (copied) */
	/* Resolves a host name (borrowed; NULL: the client makes its own when needed). */
	struct evdns_base *dns;
	const char *ca_file; /* PEM CA bundle; NULL: the system store */
	/*
	 * A client context to share (tls_client_ctx_new: one per configuration,
	 * not one per connection); the client takes its own reference. NULL: the
	 * client makes one from ca_file.
	 */
	SSL_CTX *ssl_ctx;
	const char *user;     /* copied */
	const char *password; /* copied, wiped once the login is answered */
	/* imap:// without STARTTLS offered: log in in the clear (tests, loopback) */
	bool allow_plaintext;
	/* 0: the defaults 10 s, 60 s, 1740 s (29 minutes) */
	unsigned connect_timeout, command_timeout, idle_renew;
	unsigned max_queue;     /* 0: 64 */
	size_t max_out;         /* 0: 4 MiB */
	struct imap_gate *gate; /* borrowed; NULL: log in at once */
};

struct imap_client_cbs {
	/* Logged in and ENABLEd: commands may be sent. */
	void (*on_ready)(struct imap_client *c, void *arg);
	/* Untagged responses no command takes (and all of them during IDLE). */
	void (*on_untagged)(struct imap_client *c, const struct imap_response *r, void *arg);
	/* The connection failed or was dropped (once). */
	void (*on_error)(struct imap_client *c, enum imap_error e, const char *msg, void *arg);
};

/*
 * A command's callback: r is an untagged response (kind STATUS or DATA) that
 * arrived while it ran, or its tagged status (kind TAGGED: the last call), or
 * NULL when the connection dropped first (the last call too).
 */
typedef void (*imap_cmd_cb)(struct imap_client *c, const struct imap_response *r, void *arg);
/* A piece of a streamed BODY[]/BINARY[] literal (imap_parse.h). Return 0, or -1 to drop. */
typedef int (*imap_chunk_cb)(struct imap_client *c, const struct imap_literal_info *li,
                             const char *data, size_t len, void *arg);

/* Start connecting. NULL with *errstr for a bad url or ca_file. */
struct imap_client *imap_client_new(struct event_base *base, const struct imap_client_conf *conf,
                                    const struct imap_client_cbs *cbs, void *arg,
                                    const char **errstr);
/*
 * Close at once (no LOGOUT) and free; queued commands get no callback. Safe
 * inside any callback of this client.
 */
void imap_client_free(struct imap_client *c);
enum imap_client_state imap_client_state(const struct imap_client *c);
/* The server's capabilities (IMAP_CAP_*), as last learnt. */
uint32_t imap_client_caps(const struct imap_client *c);
/* What ENABLE enabled (IMAP_CAP_QRESYNC, _CONDSTORE, _UTF8_ACCEPT). */
uint32_t imap_client_enabled(const struct imap_client *c);
/* Whether the connection is encrypted (imaps://, or after STARTTLS). */
bool imap_client_tls(const struct imap_client *c);
/* Commands queued or in flight. */
unsigned imap_client_pending(const struct imap_client *c);
/* The text of an error (for logs). */
const char *imap_error_str(enum imap_error e);

/* ---- building commands ---- */

/* A new command, its first words given as they are ("UID FETCH"). */
struct imap_cmd *imap_cmd_new(const char *words);
/* A space and an atom or other text sent as it is (a uid set, "(FLAGS UID)"). */
void imap_cmd_raw(struct imap_cmd *cmd, const char *text);
/* A space and a printf'd raw text. */
void imap_cmd_rawf(struct imap_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * A space and a string: an atom when it may be one, a quoted string when it
 * may be one, else a literal. (astring)
 */
void imap_cmd_astring(struct imap_cmd *cmd, const char *s);
/* A space and a quoted string (a literal when it cannot be quoted). */
void imap_cmd_string(struct imap_cmd *cmd, const char *s);
/* A space and a uid (or sequence) set, "1:3,7" ('*' for UINT32_MAX); "" sends nothing. */
void imap_cmd_uidset(struct imap_cmd *cmd, const struct uidset *set);
/* A space and a literal of len bytes (copied). */
void imap_cmd_literal(struct imap_cmd *cmd, const void *data, size_t len);
/*
 * A space and a mailbox name given in UTF-8: sent as UTF-8 when UTF8=ACCEPT
 * is enabled on c, else in modified UTF-7. -1 for a name that is not UTF-8
 * or too long (the command is unchanged).
 */
int imap_cmd_mailbox(struct imap_cmd *cmd, struct imap_client *c, const char *name);
/* Whether the command carries a credential: it is never logged. */
void imap_cmd_sensitive(struct imap_cmd *cmd);
/* Free a command that was not submitted. */
void imap_cmd_free(struct imap_cmd *cmd);

/*
 * Submit cmd (taken, even on failure) with its callback; chunk may be NULL.
 * Returns 0, or -1 with *errstr (not ready, queue full, dead): then cb is not
 * called.
 */
int imap_client_command(struct imap_client *c, struct imap_cmd *cmd, imap_cmd_cb cb,
                        imap_chunk_cb chunk, void *arg, const char **errstr);
/* Start IDLE (needs READY and the IDLE capability). 0 or -1 with *errstr. */
int imap_client_idle(struct imap_client *c, const char **errstr);
/* End IDLE (DONE): the state is READY again when its tagged OK comes. */
void imap_client_idle_done(struct imap_client *c);
/*
 * LOGOUT, then the connection is closed; on_error is not called for the
 * close that follows. cb (may be NULL) gets LOGOUT's status.
 */
int imap_client_logout(struct imap_client *c, imap_cmd_cb cb, void *arg);

#endif
