/*
 * upstream.h: abqd's HTTP/1.1 client for the one upstream ActiveSync server.
 *
 * One struct upstream per event loop holds the parsed base URL, the TLS
 * context and a pool of keep-alive connections. upstream_send() starts one
 * request; its answer comes back through callbacks on the same loop:
 *
 *   on_response  once, when the status line and headers are in
 *   on_body      for each piece of the body as it arrives (de-chunked)
 *   on_done      exactly once, with a numbered result, unless cancelled
 *
 * The request body is sent from memory; the response body is streamed, never
 * buffered whole. upstream_pause()/upstream_resume() stop and restart
 * reading the upstream socket, so a slow phone slows the upstream down
 * instead of filling our memory. upstream_cancel() closes the connection at
 * once and is silent.
 *
 * Everything runs on the event loop's thread; nothing is thread-safe. The
 * process must ignore SIGPIPE (libevent writes with writev()).
 */
#ifndef ABQ_PROXY_UPSTREAM_H
#define ABQ_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct upstream;
struct upstream_req;

/*
 * How a request ended. Numbers are never reused or renumbered: logs and
 * metrics keep them.
 */
enum upstream_result {
	UPSTREAM_OK = 0,             /* the whole response arrived */
	UPSTREAM_CONNECT_FAILED = 1, /* refused, unreachable, DNS, or no connection
	                                within connect_timeout */
	UPSTREAM_TIMEOUT = 2,        /* no progress within the request's timeout */
	UPSTREAM_RESET = 3,          /* connection closed or reset mid-response */
	UPSTREAM_PROTOCOL_ERROR = 4, /* malformed response, header block > 64 KiB */
	UPSTREAM_TLS_ERROR = 5,      /* handshake or certificate verification failed */
	UPSTREAM_CANCELLED = 6,      /* never reported: cancel is silent (stats only) */
};
#define UPSTREAM_RESULT_MAX 7

/* A short static description of a result ("connection failed", ...). */
const char *upstream_strerror(enum upstream_result r);

/*
 * Configuration; zero fields take the default in brackets. Strings are copied
 * by upstream_new.
 */
struct upstream_conf {
	const char *url;          /* required: http://host[:port][/path] or https:// */
	const char *ca_file;      /* PEM bundle for https; NULL: the system store */
	unsigned connect_timeout; /* [5] seconds for TCP connect + TLS handshake */
	unsigned request_timeout; /* [120] seconds; see upstream_req_spec.timeout */
	unsigned max_idle;        /* [64] keep-alive connections kept in the pool */
	unsigned idle_timeout;    /* [30] seconds an idle pooled connection lives */
	unsigned max_conns;       /* [4096] connections open at once (busy + idle) */
};

/*
 * A header: NUL-terminated name and value. To upstream_send the lengths are
 * optional (0: measured there); from on_response both are always set.
 */
struct upstream_header {
	const char *name;
	const char *value;
	size_t name_len;
	size_t value_len;
};

/*
 * Whether a header (name, len bytes) is hop-by-hop or set by the proxy
 * itself (Connection, Host, Transfer-Encoding, X-Forwarded-For, ...): a proxy
 * passes neither way. Case-insensitive.
 */
bool upstream_hop_header(const char *name, size_t len);

/* Use the upstream's request_timeout (upstream_req_spec.timeout). */
#define UPSTREAM_TIMEOUT_DEFAULT (-1)

/*
 * A request. Everything is copied by upstream_send: the caller may free it
 * as soon as upstream_send returns (the body too: it is copied once into the
 * request, and that copy is what is written, and rewritten on a retry).
 */
struct upstream_req_spec {
	const char *method; /* "POST", "GET", "OPTIONS", "HEAD", ... */
	const char *target; /* path and query sent as is: "/SOGo/...?Cmd=Sync&..." */
	size_t target_len;  /* optional (0: measured), as upstream_header's lengths */
	/* Headers to send. The client adds Host, and Content-Length when there
	 * is a body or the method is POST/PUT, and nothing else (no Connection:
	 * HTTP/1.1 keep-alive is the default). Do not pass Host,
	 * Content-Length, Transfer-Encoding or Connection. */
	const struct upstream_header *headers;
	size_t nheaders;
	/*
	 * A body over 16 KiB is not copied: it is written from here, so it must
	 * stay valid until on_done runs or the request is cancelled (the
	 * gateway's phone request outlives its upstream request).
	 */
	const void *body;
	size_t body_len;
	/* Seconds without progress from the upstream before UPSTREAM_TIMEOUT:
	 * > 0 that many, 0 none (held Ping/Sync: the caller enforces its own
	 * cap), UPSTREAM_TIMEOUT_DEFAULT the conf's request_timeout. The clock
	 * restarts on every byte received and stops while paused. The connect
	 * timeout always applies on top. */
	int timeout;
	/*
	 * Not idempotent (SendMail, SmartReply, ...): sent on a new connection,
	 * never on a pooled one, so that it is never sent twice. A pooled
	 * connection the upstream closed may have read the request before it
	 * closed, and only a request on a reused connection is ever retried.
	 */
	bool fresh;
};

/*
 * The callbacks; on_response and on_body may be NULL. Inside any of them the
 * caller may call upstream_pause, upstream_resume and upstream_cancel on this
 * request, and upstream_send for another one.
 */
struct upstream_cbs {
	/* Status line and headers, as the upstream sent them, hop-by-hop ones
	 * (Connection, Keep-Alive, Transfer-Encoding) included: the proxy drops
	 * those and re-frames the body for the phone. The strings are valid only
	 * during the call. 1xx interim responses are skipped. */
	void (*on_response)(void *arg, int status, const char *reason,
	                    const struct upstream_header *headers, size_t nheaders);
	/* A piece of the body (never empty), chunked framing already removed. */
	void (*on_body)(void *arg, const void *data, size_t len);
	/* The end, exactly once, unless upstream_cancel was called first. The
	 * request is freed when this returns; cancel inside on_done is a no-op. */
	void (*on_done)(void *arg, enum upstream_result result);
};

/* Counters for metrics; read them with upstream_stats(). */
struct upstream_stats {
	uint64_t requests;    /* upstream_send calls that returned a request */
	uint64_t rejected;    /* upstream_send calls that returned NULL */
	uint64_t connects;    /* new connections started */
	uint64_t reuses;      /* requests sent on a pooled connection */
	uint64_t retries;     /* stale pooled connections retried on a fresh one */
	uint64_t idle_closed; /* pooled connections closed (timeout, EOF, full pool) */
	uint64_t results[UPSTREAM_RESULT_MAX]; /* requests ended, by result */
	unsigned conns;                        /* connections open now (busy + idle) */
	unsigned idle;                         /* of which idle in the pool */
};

/*
 * A client for conf->url on base. A host name is resolved with evdns (hosts
 * file, then resolv.conf) for each new connection, without blocking; only
 * the first address returned is tried (libevent's connect_hostname).
 * Returns NULL with *errstr (static) on a bad URL or an unusable ca_file.
 */
struct upstream *upstream_new(struct event_base *base, const struct upstream_conf *conf,
                              const char **errstr);
/*
 * Close every connection and free u; requests still running are dropped
 * silently (no callback). Not from inside a callback. Sets *up to NULL.
 */
void upstream_free(struct upstream **up);

/* The parsed base URL: path ("/SOGo/Microsoft-Server-ActiveSync", "/" if
 * none), host (without brackets) and port. */
const char *upstream_base_path(const struct upstream *u);
const char *upstream_host(const struct upstream *u);
unsigned upstream_port(const struct upstream *u);
bool upstream_is_tls(const struct upstream *u);

const struct upstream_stats *upstream_stats(const struct upstream *u);

/*
 * Start a request. Returns it, or NULL with errno EINVAL (a CR, LF or NUL in
 * the method, target or a header) or EAGAIN (max_conns connections busy); no
 * callback follows a NULL. No callback runs inside upstream_send itself.
 *
 * Pool and retry. A request takes the most recently idled pooled connection
 * (LIFO) or opens a new one. A keep-alive server may close an idle
 * connection just as we reuse it; as nginx and curl do, such a request is
 * retried once on a fresh connection, but only when the connection was a
 * reused one and not one byte of the response had arrived when it failed
 * (EOF or reset on write or before the first byte). ActiveSync POSTs are
 * not idempotent in general; this is the stale keep-alive case, where the
 * server closed the connection before reading our request. (A server that
 * read the request and died before answering would see it twice: the same
 * trade-off nginx and curl make.)
 */
struct upstream_req *upstream_send(struct upstream *u, const struct upstream_req_spec *spec,
                                   const struct upstream_cbs *cbs, void *arg);

/* Stop reading the upstream: no on_body until upstream_resume. Idempotent. */
void upstream_pause(struct upstream_req *req);
/* Read again; data already buffered is delivered from the loop, not from
 * inside this call. Idempotent. */
void upstream_resume(struct upstream_req *req);
/*
 * The phone went away: close the connection now (it never goes back to the
 * pool mid-response) and free req. No callback follows. Safe inside this
 * request's callbacks (a no-op in on_done).
 */
void upstream_cancel(struct upstream_req *req);

/* The response's Content-Length, or -1 when chunked or read until EOF; for
 * on_response. */
int64_t upstream_req_content_length(const struct upstream_req *req);
/*
 * Called from on_response: keep the header block past the call, so that
 * upstream_req_headers can give the reason and headers again later, until
 * on_done returns. For a caller that decides what to do with the status line
 * only once it has seen the body, without copying the headers meanwhile.
 */
void upstream_keep_headers(struct upstream_req *req);
/*
 * The kept reason and headers (pointers into the request, valid until
 * on_done returns): returns their number, and fills hdrs and *reason when
 * it is at most max (call again with a larger array when not); 0 when
 * upstream_keep_headers was not called.
 */
size_t upstream_req_headers(const struct upstream_req *req, const char **reason,
                            struct upstream_header *hdrs, size_t max);
/* A detail for the log line of a failure ("certificate verify failed",
 * "Connection refused"), or ""; for on_done. */
const char *upstream_req_error(const struct upstream_req *req);

#endif
