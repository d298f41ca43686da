/*
 * upstream.c: the HTTP/1.1 client abqd uses to reach the upstream server.
 *
 * Why our own client and not libcurl's multi interface: the proxy needs
 * exact control of two things curl hides. Streaming backpressure: when the
 * phone reads slowly we stop reading the upstream socket (bufferevent read
 * disabled, parser paused mid-buffer) so nothing piles up in memory; curl's
 * CURLPAUSE works but buffers a whole read and redelivers it. And the pool:
 * a cancelled request must close its connection at once, a stale keep-alive
 * connection is retried only under the nginx rule below, and everything runs
 * on our libevent loop with the same parser (Debian's libhttp-parser) as the
 * server side. The cost is this file.
 *
 * Design. struct upstream holds the parsed base URL, an SSL_CTX for https,
 * an evdns base, and two lists of connections: busy (connecting or carrying a
 * request) and idle (the pool, used LIFO so that the warmest connection is
 * reused and the cold ones time out). A connection (struct up_conn) is a
 * socket bufferevent; for https an OpenSSL filter bufferevent is stacked on
 * it once TCP is up, so that a failure is classified exactly: before TCP
 * connects it is CONNECT_FAILED, during the handshake TLS_ERROR. Verification
 * is against ca_file (or the system store), with SNI and the host name (or IP
 * address) checked by OpenSSL. One timer per connection enforces the connect
 * timeout (TCP + TLS) and, once pooled, the idle timeout.
 *
 * A request (struct upstream_req) owns its serialized bytes (head + body,
 * one copy), written by reference into the connection's output, so a retry
 * writes the same bytes again. Its http_parser runs in HTTP_RESPONSE mode on
 * the input evbuffer chunk by chunk; headers go to one flat buffer
 * "reason\0name\0value\0..." capped at 64 KiB; body pieces go straight to
 * on_body. The request's own timer measures time without progress.
 *
 * Backpressure: upstream_pause() disables reading and pauses the parser, so
 * http_parser_execute stops right after the on_body that asked for it; the
 * rest stays in the input evbuffer. upstream_resume() re-enables reading and
 * triggers the read callback from the loop (deferred), never inline.
 *
 * End of a response: on_message_complete pauses the parser so that execute
 * stops exactly at the end of the message. The connection goes back to the
 * pool only if the response allows keep-alive, the whole request was
 * written, and no extra byte followed; otherwise it is closed. The pool takes
 * it before on_done runs, so on_done can send the next request on it.
 *
 * Re-entrancy: all bufferevents use BEV_OPT_DEFER_CALLBACKS, so no libevent
 * callback runs inside a call into this file. User callbacks run inside
 * conn_process (req->depth > 0); a cancel from inside only marks the request,
 * and conn_process frees it when the callback returns. on_done is always the
 * last thing that touches a request.
 */
#include "proxy/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/cbuf.h"
#include "lib/metrics.h"
#include "lib/timers.h"
#include "lib/util.h"
#include "net/http_lines.h"
#include "net/tls.h"

#define MAX_HEADER_BLOCK (64 * 1024)
/* Plain TCP reads: one recv of at most this much (what libevent reads at most too). */
#define READ_CHUNK 16384

enum conn_state { CS_CONNECTING, CS_HANDSHAKE, CS_BUSY, CS_IDLE };
enum hb_last { HB_REASON, HB_FIELD, HB_VALUE };

struct up_conn {
	LIST_ENTRY(up_conn) link; /* in u->busy or u->idle (the idle head is the LIFO top) */
	struct upstream *u;
	struct bufferevent *bev; /* socket, or the TLS filter over it */
	struct event *rev;       /* plain TCP, once connected: our reads (conn_on_readable) */
	struct event *timer;     /* connect timeout, then idle timeout (conn_release) */
	struct timeval idle_at;  /* loop_time when last put in the pool */
	struct upstream_req *req;
	unsigned nreq; /* requests started on this connection */
	uint8_t state;
	bool eof : 1;      /* the upstream closed (seen, maybe not yet handled) */
	bool err : 1;      /* read or write error (seen, maybe not yet handled) */
	bool fail_now : 1; /* connect could not even start: timer reports it */
	bool reading : 1;  /* rev is added (plain TCP) */
	bool lt : 1;       /* rev is level-triggered (conn_rev_lt) */
	bool timer_on : 1; /* timer is pending (armed and not yet fired) */
};

struct upstream_req {
	struct upstream *u;
	struct up_conn *conn;
	struct upstream_cbs cbs;
	void *arg;
	char *wire; /* request head + body, in the same allocation as the request */
	size_t wire_len;
	/* A large body is not copied: written by reference after wire (the head). */
	const char *body_ref;
	size_t body_ref_len;
	struct event *timer; /* in the same allocation too (event_assign) */
	int timeout;         /* seconds, 0 none */
	http_parser parser;
	/* reason\0name\0value\0...: in hinline, or the heap when larger; under MAX_HEADER_BLOCK */
	struct cbuf hb;
	struct piece_ends ends; /* of the reason and the first headers' names and values */
	size_t nfield, nvalue;
	int64_t clen;
	int depth;                     /* > 0 while conn_process is on the stack */
	enum upstream_result cb_error; /* set by a parser callback that fails */
	uint8_t hlast;
	bool head : 1;     /* HEAD: the response has no body */
	bool reused : 1;   /* sent on a pooled connection */
	bool got_byte : 1; /* a byte of the response arrived on this attempt */
	bool retried : 1;
	bool paused : 1;
	bool interim : 1;   /* parsing a 1xx response */
	bool complete : 1;  /* the response ended */
	bool keepalive : 1; /* and allows reuse */
	bool cancelled : 1;
	bool done : 1;      /* on_done is running */
	bool cached : 1;    /* a req_blocks block (UP_REQ_BLOCK bytes) */
	bool keep_hdrs : 1; /* upstream_keep_headers: hb kept past on_response */
	size_t kept_n;      /* the fields kept (trailers add to nfield) */
	struct timeval t0;  /* sent (loop_time), for abqd_upstream_request_duration_seconds */
	/* Not zeroed by upstream_send (errbuf gets its NUL): upstream_send's memset stops here. */
	char errbuf[160];
	char hinline[512]; /* a usual response's header block fits */
};

struct upstream {
	struct event_base *base;
	struct blk_cache req_blocks; /* UP_REQ_BLOCK bytes each */
	struct evdns_base *dns;
	SSL_CTX *ssl_ctx; /* NULL for http:// */
	char *host;       /* without brackets */
	char *host_hdr;   /* the Host header value */
	size_t host_hdr_len;
	char *path;
	unsigned port;
	bool host_is_ip;
	struct upstream_conf conf; /* url and ca_file not kept */
	LIST_HEAD(, up_conn) busy, idle;
	unsigned nconns, nidle;
	struct upstream_stats stats;
	char *rbuf;                          /* READ_CHUNK bytes: one recv, parsed in place */
	struct timer_set timers;             /* request and idle clocks, as common timeouts */
	struct http_status_seen status_seen; /* the last status lines (http_status_line) */
};

static void conn_process(struct up_conn *c);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_close(struct up_conn *c);
static void conn_on_readable(evutil_socket_t fd, short what, void *arg);
static void req_fail(struct upstream_req *req, enum upstream_result r);
static int conn_start(struct upstream *u, struct upstream_req *req);

/* The description of each result, for logs. */
const char *
upstream_strerror(enum upstream_result r)
{
	switch (r) {
	case UPSTREAM_OK:
		return "ok";
	case UPSTREAM_CONNECT_FAILED:
		return "connection to the upstream failed";
	case UPSTREAM_TIMEOUT:
		return "upstream timed out";
	case UPSTREAM_RESET:
		return "upstream closed the connection mid-response";
	case UPSTREAM_PROTOCOL_ERROR:
		return "malformed response from the upstream";
	case UPSTREAM_TLS_ERROR:
		return "TLS handshake with the upstream failed";
	case UPSTREAM_CANCELLED:
		return "cancelled";
	}
	return "unknown upstream result";
}

/* ---- requests ---- */

/* Record a detail for upstream_req_error (first one wins). */
static void
req_set_error(struct upstream_req *req, const char *msg)
{
	if (req->errbuf[0] == '\0' && msg != NULL)
		snprintf(req->errbuf, sizeof(req->errbuf), "%s", msg);
}

/* Free a request and everything it owns but its connection (detached first). */
/*
 * A body larger than this is written by reference from the caller's buffer
 * (upstream.h: it must outlive the request) rather than copied next to the
 * head: a 32 MiB SendMail is held once, not twice.
 */
#define UP_BODY_REF_MIN (16 * 1024)
/* A request, its timer and a usual wire image fit one block of u->req_blocks. */
#define UP_REQ_BLOCK 2048

static void
req_free(struct upstream_req *req)
{
	event_del(req->timer);
	cbuf_reset(&req->hb);
	if (req->cached)
		blk_free(&req->u->req_blocks, req);
	else
		free(req);
}

/* Detach the request's connection and close it (it is mid-request). */
static void
req_drop_conn(struct upstream_req *req)
{
	struct up_conn *c = req->conn;

	if (c == NULL)
		return;
	c->req = NULL;
	req->conn = NULL;
	conn_close(c);
}

/* The end: count it, tell the caller (last touch), free the request. */
static void
req_end(struct upstream_req *req, enum upstream_result r)
{
	req->u->stats.results[r]++;
	req->done = true;
	if (r != UPSTREAM_OK) {
		abq_metrics_upstream_error();
		/* No answer at all: what /healthz reports as the upstream down. */
		if (r == UPSTREAM_CONNECT_FAILED || r == UPSTREAM_TIMEOUT ||
		    r == UPSTREAM_TLS_ERROR)
			abq_health_upstream(false);
	}
	if (req->cbs.on_done) /* req_free stops the request's timer */
		req->cbs.on_done(req->arg, r);
	req_free(req);
}

/* Fail the request: close its connection, then report r. */
static void
req_fail(struct upstream_req *req, enum upstream_result r)
{
	req_drop_conn(req);
	req_end(req, r);
}

/* Start (or restart) the no-progress clock, unless paused or none. */
static void
req_arm_timer(struct upstream_req *req)
{
	if (req->timeout > 0 && !req->paused)
		timer_set_add_s(&req->u->timers, req->u->base, req->timer, (unsigned)req->timeout);
}

/* The request's no-progress timer fired. */
static void
req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *req = arg;

	req_set_error(req, "no response progress within the timeout");
	req_fail(req, UPSTREAM_TIMEOUT);
}

/* ---- response parsing (http_parser callbacks) ---- */

/* The response's header block outgrew MAX_HEADER_BLOCK: a protocol error. */
static __attribute__((noinline)) int
hb_too_large(struct upstream_req *req)
{
	req->cb_error = UPSTREAM_PROTOCOL_ERROR;
	req_set_error(req, "response header block over 64 KiB");
	return -1;
}

/*
 * The header block empty, in hinline again: a new request's, or after a 1xx
 * whose block moved to the heap. NULs included, it stays under MAX_HEADER_BLOCK.
 */
static void
hb_init(struct upstream_req *req)
{
	cbuf_reset(&req->hb);
	cbuf_init_with(&req->hb, req->hinline, sizeof(req->hinline), MAX_HEADER_BLOCK - 1);
}

/*
 * Append len bytes to the header block (cbuf_append: inline, for every piece
 * of every header), refusing to grow past MAX_HEADER_BLOCK.
 */
static inline int
hb_append(struct upstream_req *req, const char *at, size_t len)
{
	if (__builtin_expect(cbuf_append(&req->hb, at, len) == 0, 1))
		return 0;
	return hb_too_large(req);
}

/* End the current piece with its NUL, remembering where it ends. */
static int
hb_end(struct upstream_req *req)
{
	piece_ends_note(&req->ends, req->hb.len);
	return hb_append(req, "", 1);
}

/* A new response (the final one, or a 1xx before it) begins. */
static int
on_message_begin(http_parser *p)
{
	struct upstream_req *req = p->data;

	req->hb.len = 0;
	req->ends.n = 0;
	req->nfield = req->nvalue = 0;
	req->hlast = HB_REASON;
	return 0;
}

/* A piece of the reason phrase. */
static int
on_status(http_parser *p, const char *at, size_t len)
{
	return hb_append(p->data, at, len);
}

/* A piece of a header name: a new string when a value came last. */
static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct upstream_req *req = p->data;

	if (req->hlast != HB_FIELD) {
		if (hb_end(req) < 0)
			return -1;
		req->hlast = HB_FIELD;
		req->nfield++;
	}
	return hb_append(req, at, len);
}

/* A piece of a header value (called, possibly empty, for every field). */
static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct upstream_req *req = p->data;

	if (req->hlast != HB_VALUE) {
		if (hb_end(req) < 0)
			return -1;
		req->hlast = HB_VALUE;
		req->nvalue++;
	}
	return hb_append(req, at, len);
}

/*
 * A whole plain header line from http_lines: on_header_field then
 * on_header_value in one step when the line follows the reason or a whole
 * header and fits the buffer as it is, else through the two.
 */
static int
on_line(http_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
	struct upstream_req *req = p->data;
	struct cbuf *b = &req->hb;

	if (__builtin_expect(req->hlast == HB_FIELD || nlen + vlen + 2 > b->cap - b->len, 0)) {
		if (on_header_field(p, name, nlen) != 0)
			return HPE_CB_header_field;
		return on_header_value(p, v, vlen) != 0 ? HPE_CB_header_value : 0;
	}
	piece_ends_note(&req->ends, b->len); /* ends the reason or the previous value */
	b->p[b->len++] = '\0';
	memcpy(b->p + b->len, name, nlen);
	b->len += (uint32_t)nlen;
	piece_ends_note(&req->ends, b->len);
	b->p[b->len++] = '\0';
	memcpy(b->p + b->len, v, vlen);
	b->len += (uint32_t)vlen;
	req->nfield++;
	req->nvalue++;
	req->hlast = HB_VALUE;
	return 0;
}

/*
 * The first n headers of the block in hb, into hdrs (pointers into hb); the
 * reason is hb.p itself.
 */
static void
hdrs_build(const struct upstream_req *req, struct upstream_header *hdrs, size_t n)
{
	const char *s = req->hb.p;

	s += piece_len(&req->ends, 0, req->hb.p, s) + 1; /* past the reason */
	for (size_t i = 0; i < n; i++) {
		hdrs[i].name = s;
		hdrs[i].name_len = piece_len(&req->ends, 1 + 2 * i, req->hb.p, s);
		s += hdrs[i].name_len + 1;
		hdrs[i].value = s;
		hdrs[i].value_len = piece_len(&req->ends, 2 + 2 * i, req->hb.p, s);
		s += hdrs[i].value_len + 1;
	}
}

/*
 * The header block is complete: skip 1xx, build the header array and hand
 * it to on_response. Returns 1 for a HEAD request (no body follows).
 */
static int
on_headers_complete(http_parser *p)
{
	struct upstream_req *req = p->data;
	struct upstream_header *hdrs;

	if (p->status_code / 100 == 1 && p->status_code != 101) {
		req->interim = true;
		return 0;
	}
	if (p->status_code == 101 || p->upgrade || req->nfield != req->nvalue) {
		req->cb_error = UPSTREAM_PROTOCOL_ERROR;
		req_set_error(req, "unexpected upgrade or header without value");
		return -1;
	}
	if (hb_end(req) < 0)
		return -1;
	abq_metrics_upstream_latency(loop_seconds_since(req->u->base, &req->t0));
	abq_health_upstream(true);
	req->clen = -1;
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
	    p->content_length <= INT64_MAX)
		req->clen = (int64_t)p->content_length;
	struct upstream_header stack_hdrs[32];
	hdrs = req->nfield <= 32 ? stack_hdrs : xcalloc(req->nfield, sizeof(*hdrs));
	hdrs_build(req, hdrs, req->nfield);
	if (req->cbs.on_response)
		req->cbs.on_response(req->arg, p->status_code, req->hb.p, hdrs, req->nfield);
	if (hdrs != stack_hdrs)
		free(hdrs);
	if (req->keep_hdrs)
		req->kept_n = req->nfield;
	else
		hb_init(req);
	if (req->cancelled)
		return -1;
	return req->head ? 1 : 0;
}

/* A piece of the body, de-chunked by the parser: straight to the caller. */
static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct upstream_req *req = p->data;

	if (len > 0 && req->cbs.on_body)
		req->cbs.on_body(req->arg, at, len);
	return req->cancelled ? -1 : 0;
}

/* The response ended: stop the parser exactly here (or go on after a 1xx). */
static int
on_message_complete(http_parser *p)
{
	struct upstream_req *req = p->data;

	if (req->interim) {
		req->interim = false;
		return 0;
	}
	req->complete = true;
	req->keepalive = http_should_keep_alive(p) != 0;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ---- */

/* Close a connection at once, wherever it is; its request must be detached. */
static void
conn_close(struct up_conn *c)
{
	struct upstream *u = c->u;

	if (c->state == CS_IDLE) {
		LIST_REMOVE(c, link);
		u->nidle--;
	} else {
		LIST_REMOVE(c, link);
	}
	u->nconns--;
	u->stats.conns = u->nconns;
	u->stats.idle = u->nidle;
	if (c->rev != NULL)
		event_free(c->rev);
	bufferevent_free(c->bev);
	event_free(c->timer);
	free(c);
}

/* Start or stop reading: our own event on plain TCP, the bufferevent's on TLS. */
static void
conn_read_on(struct up_conn *c)
{
	if (c->rev != NULL) {
		/* Asked again for every request: a flag, not a call into libevent. */
		if (!c->reading) {
			event_add(c->rev, NULL);
			/* edge-triggered: what came while off raised no new edge */
			event_active(c->rev, EV_READ, 1);
		}
		c->reading = true;
	} else {
		bufferevent_enable(c->bev, EV_READ);
	}
}

/*
 * The read event is edge-triggered (conn_on_readable) until the bufferevent
 * writes for this connection: epoll keeps one EPOLLET per descriptor, which
 * the write event would share, and it writes at most 16 KiB per callback, so
 * an edge-triggered write event could wait forever on what it left (the
 * phone's side, http_server.c conn_rev_mode, has the same rule). Called
 * before anything goes to the output buffer (whose first byte adds the
 * write event); level-triggered from then on.
 */
static void
conn_rev_lt(struct up_conn *c)
{
	if (c->rev == NULL || c->lt)
		return;
	if (c->reading)
		event_del(c->rev);
	event_assign(c->rev, c->u->base, bufferevent_getfd(c->bev),
	             EV_READ | EV_CLOSED | EV_PERSIST, conn_on_readable, c);
	c->lt = true;
	if (c->reading)
		event_add(c->rev, NULL);
}

static void
conn_read_off(struct up_conn *c)
{
	if (c->rev != NULL) {
		if (c->reading)
			event_del(c->rev);
		c->reading = false;
	} else {
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* Put bytes read but not parsed in the input buffer, where conn_process finds them. */
static void
conn_stash(struct up_conn *c, const char *buf, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	/* A socket bufferevent keeps its input's end frozen but while it reads. */
	evbuffer_unfreeze(in, 0);
	evbuffer_add(in, buf, len);
	evbuffer_freeze(in, 0);
}

/* The response is complete: pool the connection if it is clean, else close. */
static void
conn_release(struct up_conn *c, bool keep)
{
	struct upstream *u = c->u;

	if (!keep || u->nidle >= u->conf.max_idle) {
		if (keep)
			u->stats.idle_closed++;
		conn_close(c);
		return;
	}
	LIST_REMOVE(c, link);
	LIST_INSERT_HEAD(&u->idle, c, link);
	u->nidle++;
	u->stats.idle = u->nidle;
	c->state = CS_IDLE;
	c->req = NULL;
	conn_read_on(c); /* EOF or stray bytes close it */
	/*
	 * The idle deadline is idle_at + idle_timeout. A timer still pending
	 * (an earlier idle deadline: conn_send leaves it) fires first and is
	 * moved on from there (conn_timer_cb), so a connection
	 * that goes back and forth between the pool and a request costs no timer
	 * change per request.
	 */
	loop_time(u->base, &c->idle_at);
	if (!c->timer_on) {
		timer_set_add_s(&u->timers, u->base, c->timer, u->conf.idle_timeout);
		c->timer_on = true;
	}
}

/* Write the request on a ready connection and start reading the answer. */
static void
conn_send(struct up_conn *c)
{
	struct upstream_req *req = c->req;

	if (c->state != CS_IDLE && c->timer_on) {
		/* connected: the connect timeout is done (a pooled connection's
		 * idle deadline may stay pending: conn_timer_cb ignores it now) */
		evtimer_del(c->timer);
		c->timer_on = false;
	}
	c->state = CS_BUSY;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	/*
	 * Plain TCP with nothing queued: send now, straight from the request's
	 * bytes, rather than on the next loop pass; the write interest and the
	 * output buffer are touched only for what the socket did not take (and
	 * libevent reports a failed send when it writes the rest).
	 */
	if (req->body_ref != NULL) {
		conn_rev_lt(c);
		evbuffer_add_reference(out, req->wire, req->wire_len, NULL, NULL);
		evbuffer_add_reference(out, req->body_ref, req->body_ref_len, NULL, NULL);
		bufferevent_enable(c->bev, EV_WRITE);
	} else if (c->u->ssl_ctx == NULL && evbuffer_get_length(out) == 0) {
		ssize_t n = net_send(bufferevent_getfd(c->bev), req->wire, req->wire_len);
		size_t done = n > 0 ? (size_t)n : 0;

		if (done < req->wire_len) {
			conn_rev_lt(c);
			evbuffer_add_reference(out, req->wire + done, req->wire_len - done, NULL,
			                       NULL);
			bufferevent_enable(c->bev, EV_WRITE);
		}
	} else {
		conn_rev_lt(c);
		evbuffer_add_reference(out, req->wire, req->wire_len, NULL, NULL);
		bufferevent_enable(c->bev, EV_WRITE);
	}
	if (!req->paused)
		conn_read_on(c);
}

/* Bind req to connection c for a new attempt (parser reset). */
static void
conn_attach(struct up_conn *c, struct upstream_req *req)
{
	c->req = req;
	c->nreq++;
	c->eof = c->err = false;
	req->conn = c;
	req->reused = c->nreq > 1;
	req->got_byte = false;
	req->cb_error = UPSTREAM_OK;
	http_parser_init(&req->parser, HTTP_RESPONSE);
	req->parser.data = req;
	if (req->paused)
		http_parser_pause(&req->parser, 1);
}

/*
 * Stack the TLS filter on a freshly connected socket: SNI and the host name
 * (or IP address) check are set on the SSL before the handshake.
 */
static void
conn_start_tls(struct up_conn *c)
{
	struct upstream *u = c->u;
	struct bufferevent *tls;
	SSL *ssl;

	ssl = tls_client_ssl(u->ssl_ctx, u->host, u->host_is_ip);
	tls = bufferevent_openssl_filter_new(u->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) /* only on allocation failure, like xmalloc */
		fatalx("out of memory in libevent");
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->state = CS_HANDSHAKE;
}

/*
 * The input is exhausted and the upstream closed or failed. Retry a stale
 * pooled connection once; else let the parser see EOF (a response read
 * until close ends here) or report RESET.
 */
static void
conn_end_of_stream(struct up_conn *c)
{
	struct upstream_req *req = c->req;
	struct upstream *u = c->u;

	if (req->reused && !req->got_byte && !req->retried) {
		req->retried = true;
		u->stats.retries++;
		req_drop_conn(req);
		if (conn_start(u, req) < 0)
			req_fail(req, UPSTREAM_CONNECT_FAILED);
		return;
	}
	if (c->eof && !c->err) {
		http_parser_execute(&req->parser, &parser_settings, NULL, 0);
		if (req->complete) {
			conn_release(c, false);
			req->conn = NULL;
			req_end(req, UPSTREAM_OK);
			return;
		}
	}
	req_set_error(req, c->err ? "connection reset" : "connection closed mid-response");
	req_fail(req, UPSTREAM_RESET);
}

/*
 * The first bytes of the response: its status line and the plain lines of its
 * header block without libhttp-parser's byte walk (net/http_lines.h), then the
 * parser over the rest, as http_parser_execute would return.
 */
static size_t
response_head(struct upstream_req *req, const char *p, size_t len)
{
	size_t n = http_status_line(&req->parser, &parser_settings, &req->u->status_seen, p, len);

	if (n > 0 && HTTP_PARSER_ERRNO(&req->parser) == HPE_OK)
		n += http_lines(&req->parser, &parser_settings, on_line, p + n, len - n);
	if (n < len && HTTP_PARSER_ERRNO(&req->parser) == HPE_OK)
		n += http_parser_execute(&req->parser, &parser_settings, p + n, len - n);
	return n;
}

/*
 * Feed the input to the parser until it is empty, the caller pauses, or the
 * response ends; then act on what happened. The input is buf[0..blen) when
 * buf is given (bytes just read, nothing buffered before them; what the
 * parser leaves goes to the input buffer), else the input buffer. Every path
 * that calls a user callback comes through here.
 */
static void
conn_process_from(struct up_conn *c, const char *buf, size_t blen)
{
	struct upstream_req *req = c->req;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum upstream_result fail = UPSTREAM_OK;
	bool progress = false;

	if (req->paused) {
		if (buf != NULL && blen > 0)
			conn_stash(c, buf, blen);
		return;
	}
	req->depth++;
	while (!req->cancelled && !req->paused && !req->complete) {
		struct evbuffer_iovec v;
		const char *p;
		enum http_errno e;
		size_t len, n;

		if (buf != NULL) {
			if (blen == 0)
				break;
			p = buf;
			len = blen;
		} else {
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
				break;
			p = v.iov_base;
			len = v.iov_len;
		}
		progress = true;
		if (!req->got_byte) {
			req->got_byte = true;
			n = response_head(req, p, len);
		} else {
			n = http_parser_execute(&req->parser, &parser_settings, p, len);
		}
		if (buf != NULL) {
			buf += n;
			blen -= n;
		} else {
			evbuffer_drain(in, n);
		}
		e = HTTP_PARSER_ERRNO(&req->parser);
		if (e == HPE_OK || e == HPE_PAUSED || req->cancelled)
			continue;
		fail = req->cb_error != UPSTREAM_OK ? req->cb_error : UPSTREAM_PROTOCOL_ERROR;
		req_set_error(req, http_errno_description(e));
		break;
	}
	req->depth--;
	if (buf != NULL && blen > 0 && !req->cancelled && fail == UPSTREAM_OK)
		conn_stash(c, buf, blen);
	if (req->cancelled) {
		req_drop_conn(req);
		req_free(req);
		return;
	}
	if (fail != UPSTREAM_OK) {
		req_fail(req, fail);
		return;
	}
	if (req->complete) {
		bool keep = req->keepalive && !c->eof && !c->err && evbuffer_get_length(in) == 0 &&
		            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;

		req->conn = NULL;
		conn_release(c, keep);
		req_end(req, UPSTREAM_OK);
		return;
	}
	if (progress)
		req_arm_timer(req);
	if (!req->paused && (c->eof || c->err))
		conn_end_of_stream(c);
}

static void
conn_process(struct up_conn *c)
{
	conn_process_from(c, NULL, 0);
}

/*
 * Plain TCP: read with one recv. libevent's bufferevent asks the kernel for
 * the readable size (ioctl FIONREAD) before every read and reads into a
 * fresh buffer chain; this is the same read without that system call, parsed
 * where it landed when nothing is buffered before it. EOF and errors go where
 * the bufferevent's would (conn_event_cb). c may be freed by the callbacks.
 * The event is edge-triggered until the bufferevent first writes
 * (conn_rev_lt), as the phone's side is (http_server.c, conn_on_readable): a
 * read that filled the buffer, brought bytes that came with the upstream's
 * FIN (EV_CLOSED: the end of the stream is still to read) or was
 * interrupted runs the callback again; a short one otherwise emptied the
 * socket.
 */
static void
conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct up_conn *c = arg;
	struct upstream *u = c->u;
	ssize_t n;

	if (c->state == CS_IDLE) { /* stray bytes or EOF: either way it is done */
		u->stats.idle_closed++;
		conn_close(c);
		return;
	}
	if (c->req == NULL || c->state != CS_BUSY || c->req->paused) {
		conn_read_off(c);
		return;
	}
	n = net_recv(fd, u->rbuf, READ_CHUNK);
	if (n == READ_CHUNK || (n > 0 && (what & EV_CLOSED)) || (n < 0 && errno == EINTR))
		event_active(c->rev, EV_READ, 1); /* freed or turned off: dropped */
	if (n > 0) {
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
			conn_process_from(c, u->rbuf, (size_t)n);
		} else {
			conn_stash(c, u->rbuf, (size_t)n);
			conn_process(c);
		}
	} else if (n == 0) {
		conn_read_off(c);
		conn_event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, c);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		conn_read_off(c);
		conn_event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
	}
}

/* Bytes arrived: parse them, or close an idle connection that got any. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct up_conn *c = arg;

	if (c->state == CS_IDLE) {
		c->u->stats.idle_closed++;
		conn_close(c);
		return;
	}
	if (c->req != NULL && c->state == CS_BUSY)
		conn_process(c);
}

/*
 * Connected, handshake done, EOF or an error. Failures before the request
 * could be written are classified by the connection's state.
 */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct up_conn *c = arg;
	struct upstream_req *req = c->req;
	char buf[160];
	int dnserr;

	if (c->state == CS_IDLE) {
		c->u->stats.idle_closed++;
		conn_close(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		if (c->state == CS_CONNECTING) {
			setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
			           sizeof(one));
			if (c->u->ssl_ctx == NULL) {
				c->rev = event_new(c->u->base, bufferevent_getfd(bev),
				                   EV_READ | EV_CLOSED | EV_PERSIST | EV_ET,
				                   conn_on_readable, c);
				if (c->rev == NULL)
					fatalx("out of memory in libevent");
			}
			if (c->u->ssl_ctx != NULL) {
				conn_start_tls(c);
				bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
				bufferevent_enable(c->bev, EV_READ | EV_WRITE);
				return;
			}
		}
		conn_send(c);
		return;
	}
	switch (c->state) {
	case CS_CONNECTING:
		dnserr = bufferevent_socket_get_dns_error(bev);
		if (dnserr != 0)
			snprintf(buf, sizeof(buf), "resolving: %s", evutil_gai_strerror(dnserr));
		else
			snprintf(buf, sizeof(buf), "%s",
			         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		req_set_error(req, buf);
		req_fail(req, UPSTREAM_CONNECT_FAILED);
		return;
	case CS_HANDSHAKE:
		tls_bev_error(c->bev, buf, sizeof(buf));
		if (buf[0] == '\0')
			snprintf(buf, sizeof(buf), "handshake failed: %s",
			         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		req_set_error(req, buf);
		req_fail(req, UPSTREAM_TLS_ERROR);
		return;
	default:
		break;
	}
	if (what & BEV_EVENT_EOF)
		c->eof = true;
	else
		c->err = true;
	conn_process(c); /* waits for resume when paused */
}

/* Connect timeout (also an immediate connect failure), or idle timeout. */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct up_conn *c = arg;
	struct upstream_req *req = c->req;

	c->timer_on = false;
	if (c->state == CS_BUSY)
		return; /* an idle deadline conn_send left pending: the request's own timer runs */
	if (c->state == CS_IDLE) {
		struct upstream *u = c->u;
		double idle = loop_seconds_since(u->base, &c->idle_at);

		if (idle + 0.001 < (double)u->conf.idle_timeout) {
			/* pooled again since this was armed: on to the real deadline */
			double left = (double)u->conf.idle_timeout - idle;
			struct timeval tv = {(time_t)left,
			                     (suseconds_t)((left - (double)(time_t)left) * 1e6)};

			evtimer_add(c->timer, &tv);
			c->timer_on = true;
			return;
		}
		u->stats.idle_closed++;
		conn_close(c);
		return;
	}
	req_set_error(req, c->fail_now ? "cannot start connecting" : "connect timeout");
	req_fail(req, UPSTREAM_CONNECT_FAILED);
}

/*
 * Open a new connection for req. Any failure, even an immediate one, is
 * reported from the loop, never from here. Returns -1 only when out of
 * connection slots.
 */
static int
conn_start(struct upstream *u, struct upstream_req *req)
{
	struct timeval tv = {u->conf.connect_timeout, 0};
	struct up_conn *c;

	if (u->nconns >= u->conf.max_conns)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->u = u;
	c->state = CS_CONNECTING;
	c->bev =
	    bufferevent_socket_new(u->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	c->timer = evtimer_new(u->base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL)
		fatalx("out of memory in libevent");
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	LIST_INSERT_HEAD(&u->busy, c, link);
	u->nconns++;
	u->stats.conns = u->nconns;
	u->stats.connects++;
	conn_attach(c, req);
	if (bufferevent_socket_connect_hostname(c->bev, u->dns, AF_UNSPEC, u->host, (int)u->port) <
	    0) {
		c->fail_now = true;
		tv.tv_sec = 0;
	}
	evtimer_add(c->timer, &tv);
	c->timer_on = true;
	return 0;
}

/* ---- URL ---- */

/* Parse http[s]://host[:port][/path] into u. Returns 0 or -1 with *errstr. */
static int
parse_url(struct upstream *u, const char *url, bool *tls, const char **errstr)
{
	const char *p, *auth_end, *host_end, *port_s = NULL;
	long long port;
	const char *e;

	if (strncasecmp(url, "http://", 7) == 0) {
		*tls = false;
		p = url + 7;
		port = 80;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		*tls = true;
		p = url + 8;
		port = 443;
	} else {
		*errstr = "upstream url must start with http:// or https://";
		return -1;
	}
	for (e = url; *e; e++)
		if ((unsigned char)*e <= 0x20 || *e == 0x7f || *e == '#') {
			*errstr = "upstream url contains white space, control characters or '#'";
			return -1;
		}
	auth_end = p + strcspn(p, "/?");
	if (*auth_end == '?' || memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
		*errstr = "upstream url: no user info or query allowed in the base URL";
		return -1;
	}
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(auth_end - p));
		if (host_end == NULL) {
			*errstr = "upstream url: unterminated [IPv6 address]";
			return -1;
		}
		u->host = xstrndup(p + 1, (size_t)(host_end - p - 1));
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':') {
				*errstr = "upstream url: bad port";
				return -1;
			}
			port_s = host_end + 2;
		}
	} else {
		const char *colon = memchr(p, ':', (size_t)(auth_end - p));

		host_end = colon ? colon : auth_end;
		u->host = xstrndup(p, (size_t)(host_end - p));
		if (colon)
			port_s = colon + 1;
	}
	if (u->host[0] == '\0') {
		*errstr = "upstream url: no host";
		return -1;
	}
	if (port_s != NULL) {
		char *ps = xstrndup(port_s, (size_t)(auth_end - port_s));
		int r = parse_int(ps, 1, 65535, &port, errstr);

		free(ps);
		if (r < 0) {
			*errstr = "upstream url: bad port";
			return -1;
		}
	}
	u->port = (unsigned)port;
	u->path = xstrdup(*auth_end ? auth_end : "/");
	{
		struct in6_addr a6;
		bool v6 = inet_pton(AF_INET6, u->host, &a6) == 1;

		u->host_is_ip = v6 || inet_pton(AF_INET, u->host, &a6) == 1;
		if (port_s == NULL)
			u->host_hdr = xasprintf(v6 ? "[%s]" : "%s", u->host);
		else
			u->host_hdr = xasprintf(v6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
		u->host_hdr_len = strlen(u->host_hdr);
	}
	return 0;
}

/* ---- public API ---- */

/* Build the client: URL, TLS context, DNS; connections open on demand. */
struct upstream *
upstream_new(struct event_base *base, const struct upstream_conf *conf, const char **errstr)
{
	struct upstream *u;
	bool tls = false;

	if (conf->url == NULL) {
		*errstr = "upstream url is required";
		return NULL;
	}
	u = xcalloc(1, sizeof(*u));
	u->base = base;
	u->conf = *conf;
	u->conf.url = u->conf.ca_file = NULL;
	if (!u->conf.connect_timeout)
		u->conf.connect_timeout = 5;
	if (!u->conf.request_timeout)
		u->conf.request_timeout = 120;
	if (!u->conf.max_idle)
		u->conf.max_idle = 64;
	if (!u->conf.idle_timeout)
		u->conf.idle_timeout = 30;
	if (!u->conf.max_conns)
		u->conf.max_conns = 4096;
	if (parse_url(u, conf->url, &tls, errstr) < 0)
		goto fail;
	if (tls) {
		u->ssl_ctx = tls_client_ctx_new(conf->ca_file, errstr);
		if (u->ssl_ctx == NULL) {
			if (conf->ca_file != NULL)
				*errstr = "cannot load upstream ca_file";
			goto fail;
		}
	}
	u->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (u->dns == NULL)
		u->dns = evdns_base_new(base, 0); /* numeric hosts still work */
	if (u->dns == NULL) {
		*errstr = "cannot set up DNS";
		goto fail;
	}
	u->rbuf = xmalloc(READ_CHUNK);
	u->req_blocks.size = UP_REQ_BLOCK;
	return u;
fail:
	upstream_free(&u);
	return NULL;
}

/* Close everything; running requests are dropped without callbacks. */
void
upstream_free(struct upstream **up)
{
	struct upstream *u = *up;

	if (u == NULL)
		return;
	while (!LIST_EMPTY(&u->busy)) {
		struct up_conn *c = LIST_FIRST(&u->busy);
		struct upstream_req *req = c->req;

		if (req != NULL) {
			req_drop_conn(req);
			if (req->depth == 0 && !req->done) {
				req_free(req);
			} else {
				req->cancelled = true;
				req->cached = false; /* freed after u: to free() */
			}
		} else {
			conn_close(c);
		}
	}
	while (!LIST_EMPTY(&u->idle))
		conn_close(LIST_FIRST(&u->idle));
	if (u->dns)
		evdns_base_free(u->dns, 0);
	if (u->ssl_ctx)
		SSL_CTX_free(u->ssl_ctx);
	free(u->host);
	free(u->host_hdr);
	free(u->path);
	free(u->rbuf);
	blk_cache_clear(&u->req_blocks);
	free(u);
	*up = NULL;
}

/*
 * Headers that describe one hop, or that abqd sets itself: not forwarded in
 * either direction. Runs for every header of every proxied request and
 * response, so the length chooses the one or two names to compare.
 */
bool
upstream_hop_header(const char *name, size_t len)
{
#define IS(s) mem_ieq(name, s, sizeof(s) - 1)
	switch (len) {
	case 2:
		return IS("TE");
	case 4:
		return IS("Host");
	case 6:
		return IS("Expect");
	case 7:
		return IS("Trailer") || IS("Upgrade");
	case 10:
		return IS("Connection") || IS("Keep-Alive");
	case 14:
		return IS("Content-Length");
	case 15:
		return IS("X-Forwarded-For");
	case 16:
		return IS("Proxy-Connection");
	case 17:
		return IS("Transfer-Encoding") || IS("X-Forwarded-Proto");
	case 18:
		return IS("Proxy-Authenticate");
	case 19:
		return IS("Proxy-Authorization");
	default:
		return false;
	}
#undef IS
}

/* Accessors for the parsed URL. */
const char *
upstream_base_path(const struct upstream *u)
{
	return u->path;
}

/* The host name or address, without brackets. */
const char *
upstream_host(const struct upstream *u)
{
	return u->host;
}

/* The port, explicit or the scheme's default. */
unsigned
upstream_port(const struct upstream *u)
{
	return u->port;
}

/* True for https://. */
bool
upstream_is_tls(const struct upstream *u)
{
	return u->ssl_ctx != NULL;
}

/* The live counters. */
const struct upstream_stats *
upstream_stats(const struct upstream *u)
{
	return &u->stats;
}

/*
 * The lengths of a header of the request, which the caller may give (0:
 * measured here), and whether it may go on the wire: checked either way, so
 * that no CR, LF or other control byte reaches the upstream whoever the
 * caller (a name also without ':', space or tab).
 */
static bool
hdr_lens(const struct upstream_header *h, size_t *nl, size_t *vl)
{
	if (h->name == NULL || h->value == NULL || h->name[0] == '\0')
		return false;
	*nl = h->name_len != 0 ? h->name_len : strlen(h->name);
	*vl = h->value_len != 0 ? h->value_len : strlen(h->value);
	return field_name_ok(h->name, *nl) && field_value_ok(h->value, *vl);
}

/* Whether the method (len bytes) is m. */
static inline bool
method_is(const char *method, size_t len, const char *m)
{
	return len == strlen(m) && memcmp(method, m, len) == 0;
}

/*
 * A new request's fields zeroed, but for its two buffers: the header block's
 * (hb_init makes it empty) and the error text's (made ""). They are most of
 * the struct, and this runs for every request.
 */
static void
req_zero(struct upstream_req *req)
{
	memset(req, 0, offsetof(struct upstream_req, errbuf));
	req->errbuf[0] = '\0';
}

/* Append n bytes at *p and advance it (the buffer was sized beforehand). */
static void
put(char **p, const void *s, size_t n)
{
	memcpy(*p, s, n);
	*p += n;
}

/*
 * Start a request on a pooled connection (LIFO) or a new one. Returns NULL
 * with errno EINVAL or EAGAIN; nothing is called back from in here.
 *
 * The request line, headers and body are serialized once, into the same
 * allocation as the request and its timer: sized first, filled with memcpy.
 * This runs for every proxied request.
 */
struct upstream_req *
upstream_send(struct upstream *u, const struct upstream_req_spec *spec,
              const struct upstream_cbs *cbs, void *arg)
{
	struct upstream_req *req;
	size_t i, mlen, tlen, total, evsize;
	size_t lens_stack[2 * 64], *lens;
	bool need_len;
	char clen[48], *p;
	int cl;

	if (spec->method == NULL || spec->target == NULL ||
	    (spec->body_len > 0 && spec->body == NULL))
		goto inval;
	mlen = strlen(spec->method);
	tlen = spec->target_len != 0 ? spec->target_len : strlen(spec->target);
	/* The method as a header name, the target in one pass: no CR, LF, space or tab in either.
	 */
	if (mlen == 0 || tlen == 0 || !field_name_ok(spec->method, mlen) ||
	    !request_target_ok(spec->target, tlen))
		goto inval;
	need_len = spec->body_len > 0 || method_is(spec->method, mlen, "POST") ||
	           method_is(spec->method, mlen, "PUT") || method_is(spec->method, mlen, "PATCH");
	cl = 0;
	if (need_len) { /* "Content-Length: N\r\n" */
		memcpy(clen, "Content-Length: ", 16);
		cl = 16 + (int)fmt_u64(clen + 16, spec->body_len);
		clen[cl++] = '\r';
		clen[cl++] = '\n';
	}
	total = mlen + 1 + tlen + sizeof(" HTTP/1.1\r\nHost: ") - 1 + u->host_hdr_len + 2 +
	        (size_t)cl + 2 + (spec->body_len > UP_BODY_REF_MIN ? 0 : spec->body_len);
	lens = spec->nheaders <= 64 ? lens_stack : xcalloc(2 * spec->nheaders, sizeof(*lens));
	for (i = 0; i < spec->nheaders; i++) {
		if (!hdr_lens(&spec->headers[i], &lens[2 * i], &lens[2 * i + 1])) {
			if (lens != lens_stack)
				free(lens);
			goto inval;
		}
		total += lens[2 * i] + 2 + lens[2 * i + 1] + 2;
	}
	/* A fresh connection needs a free slot: an idle one gives up its own. */
	if (spec->fresh && !LIST_EMPTY(&u->idle) && u->nconns >= u->conf.max_conns)
		conn_close(LIST_FIRST(&u->idle));
	if ((LIST_EMPTY(&u->idle) || spec->fresh) && u->nconns >= u->conf.max_conns) {
		if (lens != lens_stack)
			free(lens);
		u->stats.rejected++;
		errno = EAGAIN;
		return NULL;
	}

	evsize = (event_get_struct_event_size() + 15) & ~(size_t)15;
	if (sizeof(*req) + evsize + total <= UP_REQ_BLOCK) {
		req = blk_alloc(&u->req_blocks);
		req_zero(req);
		req->cached = true;
	} else {
		req = xmalloc(sizeof(*req) + evsize + total);
		req_zero(req);
	}
	hb_init(req); /* req is zeroed: nothing to reset */
	req->timer = (struct event *)(void *)(req + 1);
	req->wire = (char *)req->timer + evsize;
	p = req->wire;
	put(&p, spec->method, mlen);
	put(&p, " ", 1);
	put(&p, spec->target, tlen);
	put(&p, " HTTP/1.1\r\nHost: ", sizeof(" HTTP/1.1\r\nHost: ") - 1);
	put(&p, u->host_hdr, u->host_hdr_len);
	put(&p, "\r\n", 2);
	for (i = 0; i < spec->nheaders; i++) {
		put(&p, spec->headers[i].name, lens[2 * i]);
		put(&p, ": ", 2);
		put(&p, spec->headers[i].value, lens[2 * i + 1]);
		put(&p, "\r\n", 2);
	}
	put(&p, clen, (size_t)cl);
	put(&p, "\r\n", 2);
	if (spec->body_len > UP_BODY_REF_MIN) {
		req->body_ref = spec->body;
		req->body_ref_len = spec->body_len;
	} else if (spec->body_len > 0) {
		put(&p, spec->body, spec->body_len);
	}
	req->wire_len = (size_t)(p - req->wire);
	if (lens != lens_stack)
		free(lens);

	req->u = u;
	req->cbs = *cbs;
	req->arg = arg;
	req->head = method_is(spec->method, mlen, "HEAD");
	req->timeout = spec->timeout < 0 ? (int)u->conf.request_timeout : spec->timeout;
	req->clen = -1;
	if (event_assign(req->timer, u->base, -1, 0, req_timer_cb, req) != 0)
		fatalx("event_assign failed");
	req_arm_timer(req);
	u->stats.requests++;
	loop_time(u->base, &req->t0);

	if (!LIST_EMPTY(&u->idle) && !spec->fresh) {
		struct up_conn *c = LIST_FIRST(&u->idle);

		LIST_REMOVE(c, link);
		u->nidle--;
		u->stats.idle = u->nidle;
		LIST_INSERT_HEAD(&u->busy, c, link);
		u->stats.reuses++;
		conn_attach(c, req);
		conn_send(c);
	} else {
		conn_start(u, req); /* a slot is free: checked above */
	}
	return req;
inval:
	u->stats.rejected++;
	errno = EINVAL;
	return NULL;
}

/* Stop reading the upstream for this request; the clock stops too. */
void
upstream_pause(struct upstream_req *req)
{
	if (req == NULL || req->done || req->cancelled || req->paused)
		return;
	req->paused = true;
	if (!req->complete)
		http_parser_pause(&req->parser, 1);
	evtimer_del(req->timer);
	if (req->conn != NULL && req->conn->state == CS_BUSY)
		conn_read_off(req->conn);
}

/* Read again; buffered input is processed from the loop. */
void
upstream_resume(struct upstream_req *req)
{
	struct up_conn *c;

	if (req == NULL || req->done || req->cancelled || !req->paused)
		return;
	req->paused = false;
	if (!req->complete)
		http_parser_pause(&req->parser, 0);
	req_arm_timer(req);
	c = req->conn;
	if (c != NULL && c->state == CS_BUSY) {
		if (!c->eof && !c->err)
			conn_read_on(c);
		bufferevent_trigger(c->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
	}
}

/* The phone went away: close the connection now, free req, stay silent. */
void
upstream_cancel(struct upstream_req *req)
{
	if (req == NULL || req->done || req->cancelled)
		return;
	req->cancelled = true;
	req->u->stats.results[UPSTREAM_CANCELLED]++;
	if (req->depth > 0) {
		/* Inside our own callback: conn_process frees it on return, but
		 * stop the bytes now. */
		if (req->conn != NULL) {
			conn_read_off(req->conn);
			bufferevent_disable(req->conn->bev, EV_WRITE);
		}
		return;
	}
	req_drop_conn(req);
	req_free(req);
}

/* The Content-Length of the response, or -1. */
int64_t
upstream_req_content_length(const struct upstream_req *req)
{
	return req->clen;
}

/* Keep the response's header block for upstream_req_headers (from on_response only). */
void
upstream_keep_headers(struct upstream_req *req)
{
	req->keep_hdrs = true;
}

/* The kept status line's reason and headers again (upstream.h). */
size_t
upstream_req_headers(const struct upstream_req *req, const char **reason,
                     struct upstream_header *hdrs, size_t max)
{
	if (!req->keep_hdrs)
		return 0;
	if (req->kept_n <= max)
		hdrs_build(req, hdrs, req->kept_n);
	*reason = req->hb.p;
	return req->kept_n;
}

/* The failure detail, or "". */
const char *
upstream_req_error(const struct upstream_req *req)
{
	return req->errbuf;
}
