/*
 * http_server.h: abqd's HTTP/1.1 server side, built for thousands of held
 * long polls.
 *
 * libevent bufferevents (OpenSSL ones for TLS) carry the bytes, Debian's
 * libhttp-parser parses them. A request is read whole (headers capped at
 * max_header_size, body at max_body, chunked or not) and handed once to
 * handler->on_request. The handler answers whenever it likes:
 *
 *   http_response_simple(req, 200, "text/plain", "ok", 2);
 * or, streamed:
 *   http_response_start(req, 200, NULL, -1, hdrs);  (-1: chunked)
 *   while (more) if (http_response_write(req, p, n) == 1) wait for on_drain;
 *   http_response_end(req);
 *
 * While a request is held the connection keeps reading, so a client that goes
 * away is noticed at once: on_abort(req) is called and req is freed when it
 * returns. After http_response_end (or _simple) req is freed too; the next
 * pipelined request, if any, is parsed then.
 *
 * With handler->on_headers the handler sees the header block before any body
 * byte is read, and may leave the body unread while it checks credentials
 * (HTTP_BODY_WAIT, then http_request_resume_body), lower the body's cap
 * (http_request_set_body_cap) or answer at once. on_abort(req) is called for
 * every request the handler has seen (on_headers or on_request) whose
 * connection dies before the response ended: while its body waits, while the
 * body is read (a timeout, a malformed or oversized body, the client gone),
 * or while it is held. Each request gets exactly one of: an answer by the
 * handler, or on_abort; nothing is called back after either.
 *
 * Trailer fields after a chunked body are counted against max_header_size
 * and dropped: they are never stored nor shown to the handler.
 *
 * A body is allocated as its bytes arrive (doubling, up to its
 * Content-Length), never at its announced size up front; all the bodies of a
 * server share the budget max_body_total.
 *
 * Limits (each closes only the offending connection):
 *   header block over max_header_size  -> 431, close
 *   headers not complete in header_timeout -> 408, close (silent if no byte)
 *   Content-Length over max_body       -> 413 at once, body never read, close
 *   chunked body growing over max_body -> 413, close
 *   (max_body: or the request's cap, http_request_set_body_cap)
 *   trailers over max_header_size      -> 431, close
 *   bodies of all requests over max_body_total -> 503 with Retry-After: 5, close
 *   body not complete in body_timeout  -> 408, close
 *   malformed request                  -> 400 with Connection: close, log line
 *   connections over max_conns, or over max_conns_per_addr for one client
 *     address                          -> accepted and closed at once, no answer
 *     (peers in trusted_proxies are not capped at accept; their connections
 *     are counted under the X-Forwarded-For client of their first request,
 *     and one over the cap gets 503 and is closed)
 *   pipelined bytes while a request is held over max_pipeline -> abort, close
 *   body bytes while on_headers left the body waiting over max_pipeline
 *                                      -> reading stops until resumed or answered
 *                                         (a client that closes meanwhile is
 *                                         noticed then)
 *   idle keep-alive connection after idle_timeout -> closed silently
 *
 * All callbacks run on the event loop's thread; nothing here is thread-safe.
 */
#ifndef ABQ_NET_HTTP_SERVER_H
#define ABQ_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/tls.h"

struct event_base;
struct http_server;
struct http_request;

enum http_log_level { HTTP_LOG_DEBUG, HTTP_LOG_INFO, HTTP_LOG_WARN };

/* Zero means the default given in brackets; use http_server_conf_defaults(). */
struct http_server_conf {
	size_t max_header_size;      /* [16 KiB] request line + headers */
	size_t max_body;             /* [1 MiB], under 4 GiB */
	size_t max_pipeline;         /* [16 KiB] bytes buffered while held */
	size_t write_high_water;     /* [256 KiB] http_response_write returns 1 above */
	unsigned header_timeout_ms;  /* [10 s] whole header block */
	unsigned body_timeout_ms;    /* [60 s] whole body */
	unsigned idle_timeout_ms;    /* [120 s] keep-alive wait for the next request */
	unsigned write_timeout_ms;   /* [120 s] no write progress -> abort */
	unsigned max_conns;          /* [10000] total */
	unsigned max_conns_per_addr; /* [0 = unlimited] per client address */
	size_t max_body_total;       /* [256 MiB] the server's buffered bodies, all requests */
	const char *trusted_proxies; /* CIDR list whose X-Forwarded-For we believe */
	bool reuseport;              /* SO_REUSEPORT on listeners (multi-loop) */
	/* Log lines (never containing header values); may be NULL. */
	void (*log)(void *log_arg, enum http_log_level level, const char *msg);
	void *log_arg;
};

/* What on_headers returns. */
enum { HTTP_BODY_READ = 0, HTTP_BODY_WAIT = 1 };

struct http_handler {
	/* A whole request has arrived. Answer now or later. */
	void (*on_request)(struct http_request *req, void *arg);
	/*
	 * The client went away (or the server is freed, or the request failed
	 * while its body was read) after on_headers or on_request saw req and
	 * before the response ended: while the body waits, while it is read, or
	 * while the request is held. Cancel the work; req is freed when this
	 * returns. Called at most once, never after the handler answered. May be
	 * NULL.
	 */
	void (*on_abort)(struct http_request *req, void *arg);
	/* The output fell below half the high-water mark after a write returned
	 * 1: write more. May be NULL. */
	void (*on_drain)(struct http_request *req, void *arg);
	/*
	 * The header block is complete and no body byte has been read yet (may be
	 * NULL: the body is read as before). Return HTTP_BODY_READ to read the body
	 * now, or HTTP_BODY_WAIT to leave it unread until http_request_resume_body(req)
	 * (e.g. while credentials are checked). Instead of either, the handler may
	 * answer at once (http_response_simple etc.) from inside on_headers or while
	 * waiting: the body is then never read and the connection is closed after the
	 * answer (Connection: close). on_request(req) follows once the body is whole,
	 * on the same req (data set with http_request_set_data stays).
	 * "100 Continue" is sent only when the body is going to be read.
	 */
	int (*on_headers)(struct http_request *req, void *arg);
};

/* Fill c with the defaults (also applied to any zero field by _new). */
void http_server_conf_defaults(struct http_server_conf *c);

/*
 * A server on base calling handler with arg. conf is copied (the
 * trusted_proxies string is parsed and not kept). NULL with *errstr on a bad
 * conf.
 */
struct http_server *http_server_new(struct event_base *base, const struct http_server_conf *conf,
                                    const struct http_handler *handler, void *arg,
                                    const char **errstr);
/*
 * Listen on addr ("127.0.0.1:8080", "[::1]:8443", "*:80"); TLS when tls is not
 * NULL (the server borrows it: keep it alive; tls_reload() affects new
 * connections). The bound port goes to *port_r if not NULL. 0 or -1.
 */
int http_server_listen(struct http_server *srv, const char *addr, struct tls_ctx *tls, int *port_r,
                       const char **errstr);
/*
 * Serve a socket already bound and listening (non-blocking), such as one the
 * daemon's main process bound before forking its workers. The server owns fd
 * from here on (closed on failure too). 0 or -1.
 */
int http_server_adopt(struct http_server *srv, int fd, struct tls_ctx *tls, const char **errstr);
/*
 * Serve an already-connected, non-blocking socket as if it had been accepted
 * (plain, no TLS); the peer is the socket's TCP peer, or 127.0.0.1 for a
 * socket pair. The server owns fd from here on (closed on failure too). 0 or -1.
 */
int http_server_serve_fd(struct http_server *srv, int fd, const char **errstr);
/* Number of open connections (tests, stats). */
unsigned http_server_conn_count(const struct http_server *srv);
/* Bytes of request bodies the server holds now (tests, metrics). */
size_t http_server_body_bytes(const struct http_server *srv);
/*
 * Close everything: held requests get on_abort. Sets *srvp to NULL. libevent
 * finishes freeing bufferevents from the loop: run
 * event_base_loop(base, EVLOOP_NONBLOCK) once more before event_base_free.
 */
void http_server_free(struct http_server **srvp);

/* The request. Strings stay valid until the request is freed. */
const char *http_request_method(const struct http_request *req);
const char *http_request_url(const struct http_request *req);
/* HTTP minor version: 0 or 1. */
int http_request_minor(const struct http_request *req);
/* First header named name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/*
 * The i-th header, with the lengths of its name and value where name_len and
 * value_len are not NULL; false past the end.
 */
bool http_request_header_at(const struct http_request *req, size_t i, const char **name,
                            const char **value, size_t *name_len, size_t *value_len);
/* One header of a request: name and value (NUL-terminated, in the request's block) and their
 * lengths. */
struct http_req_header {
	const char *name, *value;
	uint32_t nlen, vlen;
};
/*
 * The request's headers in their order, *n of them, valid as long as req: for
 * a walk over them all, one call where http_request_header_at makes one per
 * header.
 */
const struct http_req_header *http_request_headers(const struct http_request *req, size_t *n);
const void *http_request_body(const struct http_request *req, size_t *len);
/* The TCP peer's address, numeric. */
const char *http_request_peer(struct http_request *req);
/* The client: the peer, or the X-Forwarded-For client when the peer is a
 * trusted proxy (walking the list from the right past trusted hops). */
const char *http_request_client(struct http_request *req);
bool http_request_is_tls(const struct http_request *req);
void http_request_set_data(struct http_request *req, void *data);
/*
 * The handler will answer req late (a long poll): its connection gives back
 * the scratch memory it keeps between requests, which matters with tens of
 * thousands held.
 */
void http_request_held(struct http_request *req);
void *http_request_get_data(const struct http_request *req);
/* Lower this request's body cap below max_body (from on_headers, before the body is
 * read): a body over it is refused with 413 and the connection closed. */
void http_request_set_body_cap(struct http_request *req, size_t cap);
/*
 * Read the body of a request left waiting by on_headers (HTTP_BODY_WAIT). Done
 * from the event loop (on_request, or on_abort, never runs inside this call);
 * ignored once the request is answered.
 */
void http_request_resume_body(struct http_request *req);

/*
 * Start the response. reason NULL means the standard phrase. content_length
 * >= 0 sends Content-Length, -1 means chunked (HTTP/1.1) or close-delimited
 * (HTTP/1.0). headers is NULL or a NULL-terminated list of name, value pairs;
 * values with CR or LF are refused. 0 or -1 (aborted, already started, bad
 * header).
 */
int http_response_start(struct http_request *req, int status, const char *reason,
                        int64_t content_length, const char *const *headers);
/* A response header with its lengths (http_response_start_n). */
struct http_header {
	const char *name, *value;
	size_t name_len, value_len;
};
/*
 * http_response_start with the n headers given with their lengths (the
 * proxy's, which its parser measured): checked the same way (no CR, LF or
 * NUL), not measured again.
 */
int http_response_start_n(struct http_request *req, int status, const char *reason,
                          int64_t content_length, const struct http_header *headers, size_t n);
/*
 * Queue body bytes. 0: go on; 1: queued, but the output is above the
 * high-water mark: pause until on_drain; -1: aborted or more than the
 * declared Content-Length.
 */
int http_response_write(struct http_request *req, const void *data, size_t len);
/* Finish; req is freed (also on -1). 0 or -1. */
int http_response_end(struct http_request *req);
/*
 * Abandon a started response (the source failed mid-body): the connection is
 * closed without completing the framing; req is freed.
 */
void http_response_abort(struct http_request *req);
/* Close the listening sockets; open connections go on (draining shutdown). */
void http_server_stop_listening(struct http_server *srv);
/* start + write + end for a small answer; req is freed. 0 or -1. */
int http_response_simple(struct http_request *req, int status, const char *content_type,
                         const void *body, size_t len);

#endif
