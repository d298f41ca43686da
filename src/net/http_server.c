/*
 * http_server.c: the HTTP/1.1 connection layer.
 *
 * Design. One struct http_conn per TCP connection, kept small because
 * thousands of them sit in held long polls: a bufferevent (socket or OpenSSL),
 * an embedded http_parser (32 bytes), one timer, a compact peer address and a
 * pointer to the request being read or held. While headers arrive they are
 * collected in one flat buffer "url\0name\0value\0..." (a struct cbuf)
 * capped at max_header_size; at the end of the header block it is copied
 * into the struct http_request's block, so nothing of the parser survives
 * dispatch except its 32 bytes. The body is a cbuf too, in that block when
 * small and announced.
 *
 * A connection is in one of three states:
 *   READING  feeding input to the parser; the timer enforces the idle,
 *            header and body deadlines
 *   HELD     a whole request was dispatched; input is still read (so EOF/RST
 *            reach on_abort at once) but not parsed, and capped
 *   CLOSING  an error or final answer is being flushed; then the write side
 *            is shut and the rest of the input drained for a short linger so
 *            that the client sees the answer rather than an RST
 * The parser is paused in on_message_complete, so http_parser_execute stops
 * exactly at the end of one request and pipelined bytes stay in the input
 * evbuffer until the response ends.
 *
 * Re-entrancy: a handler may answer from inside on_request, which runs
 * inside conn_process(); conn->in_process makes the inner call return and
 * the outer loop continue. bufferevents use BEV_OPT_DEFER_CALLBACKS so that
 * no bufferevent callback (hence no connection free) can run inside a
 * handler's call into this file. Connections are freed only from libevent
 * callbacks or http_server_free.
 */
#include "net/http_server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cbuf.h"
#include "lib/metrics.h"
#include "lib/timers.h"
#include "lib/util.h"
#include "net/http_lines.h"
#include "net/net.h"

#define ADDR_BUCKETS    1024
#define ACCEPT_BATCH    64
#define ACCEPT_RETRY_MS 200
#define LINGER_MS       2000
/* One recv per readable event on plain TCP (what libevent reads at most too). */
#define READ_CHUNK 16384
/* A body up to this size shares the request's allocation. */
#define BODY_INLINE_MAX 4096
/* A connection keeps a header buffer up to this size between requests. */
#define HBUF_KEEP_MAX 1024
/* The header buffer's first allocation: a usual request's header block fits. */
#define HBUF_FIRST 512
/* A response head and body up to this size go out with one send() (srv->wbuf). */
#define WBUF_CAP 4096
/* A usual request (index, headers, small body) fits one block of srv->req_blocks. */
#define REQ_BLOCK 1024

enum conn_state { C_READING, C_WAITING, C_HELD, C_CLOSING };
/* HB_TRAILER: the header block is complete; fields now are trailers (counted, dropped). */
enum hb_last { HB_NONE, HB_URL, HB_FIELD, HB_VALUE, HB_TRAILER };
enum resp_state { R_NONE, R_STARTED };

struct addr_count {
	SLIST_ENTRY(addr_count) link;
	struct net_addr addr;
	unsigned n;
};

struct listener {
	SLIST_ENTRY(listener) link;
	struct http_server *srv;
	struct tls_ctx *tls;
	struct event *ev;
	struct event *retry; /* re-enables accept after EMFILE */
	int fd;
};

struct http_conn {
	LIST_ENTRY(http_conn) link;
	struct http_server *srv;
	struct bufferevent *bev;
	struct event *rev; /* plain TCP: our own read event (conn_on_readable) */
	struct event *timer;
	struct http_request *req; /* being read (after headers) or held */
	http_parser parser;
	/*
	 * header accumulation, only while reading a header block; at most
	 * max_header_size with the 3 NULs hb_append keeps room for
	 */
	struct cbuf hb;
	/*
	 * The header or body deadline the parser asked for, armed when the parse
	 * pass ends with the request still incomplete: a request read whole in
	 * one pass costs no timer changes but the dispatch's.
	 */
	unsigned arm_ms;        /* here, where it leaves no hole: the struct stays 272 bytes */
	struct piece_ends ends; /* of the URL and the first 15 headers' names and values */
	uint16_t nhdr;
	uint8_t hlast;
	uint8_t state;
	bool in_process : 1;
	bool tls : 1;
	bool counted : 1;      /* holds a slot in the per-address table */
	bool started : 1;      /* a byte of the current request was parsed */
	bool drain_wanted : 1; /* a write returned 1: call on_drain */
	bool lingering : 1;
	bool write_off : 1;      /* EV_WRITE disabled: nothing was left to write */
	bool hdr_pause : 1;      /* the parser paused at the end of a header block (on_headers) */
	bool want_continue : 1;  /* Expect: 100-continue, to answer when the body is read */
	bool read_off : 1;       /* waiting with a full input: not reading */
	bool in_headers : 1;     /* inside on_headers */
	bool resume_pending : 1; /* http_request_resume_body was called */
	bool rev_et : 1;         /* rev is edge-triggered (see conn_rev_mode) */
	bool timer_on : 1;       /* timer is pending (armed, not yet fired or deleted) */
	bool timer_idle : 1;     /* ... for the keep-alive idle deadline (conn_arm_idle) */
	uint16_t err_status;     /* the answer to a parse failure (an HTTP status) */
	struct timeval idle_at;  /* loop_time when the connection last went idle */
	struct net_addr peer;
	struct net_addr counted_addr;
	char peertxt[48]; /* peer, numeric; formatted on first use */
};

struct http_request {
	struct http_conn *conn;
	char *hdr; /* url\0name\0value\0... */
	/*
	 * The body: in the request's block after hdr when small and announced,
	 * else on the heap (charged to the server's body_bytes); its max is
	 * max_body, or lower (http_request_set_body_cap).
	 */
	struct cbuf body;
	uint32_t trailer_len; /* trailer bytes after a chunked body: counted, dropped */
	void *data;
	int64_t resp_remaining; /* -1: chunked or close-delimited */
	uint16_t nhdr;
	uint8_t method;
	uint8_t minor;
	uint8_t resp_state;
	bool keep_alive : 1;
	bool head : 1;
	bool chunked : 1;
	bool aborted : 1;
	bool client_done : 1;
	bool notified : 1;       /* the handler has seen it (on_headers or on_request) */
	struct blk_cache *cache; /* where the request's block goes back, or NULL: free() */
	char addrbuf[48];
	char clientbuf[48];
	struct http_req_header h[]; /* nhdr entries, indexed once the block is complete */
};

struct http_server {
	struct event_base *base;
	struct http_server_conf conf;
	struct http_handler handler;
	void *arg;
	struct net_cidr *trusted;
	size_t ntrusted;
	SLIST_HEAD(, listener) listeners;
	LIST_HEAD(, http_conn) conns;
	unsigned nconns;
	http_parser_settings settings;
	SLIST_HEAD(, addr_count) buckets[ADDR_BUCKETS];
	char *rbuf; /* READ_CHUNK bytes: one recv, parsed in place (conn_on_readable) */
	/*
	 * One response being put together for a plain TCP connection whose
	 * output is empty: its head, and its body if the body comes whole. It is
	 * sent with one send() at http_response_end, with no evbuffer and no
	 * write interest (see pending_send). It moves to the connection's
	 * evbuffer if anything else is to be written first (pending_flush).
	 */
	char *wbuf; /* WBUF_CAP bytes */
	size_t wlen;
	struct http_conn *wconn;     /* whose bytes wbuf holds, or NULL */
	struct blk_cache req_blocks; /* REQ_BLOCK bytes each */
	size_t body_bytes;           /* the requests' separate body allocations, in bytes */
	struct timer_set timers;     /* the connections' deadlines, as common timeouts */
	struct http_start post_line; /* the parser after "POST / HTTP/1.1" CRLF (conn_line) */
};

static void conn_process(struct http_conn *c);
static void conn_free(struct http_conn *c);
static void conn_fail(struct http_conn *c, int status, const char *why);
static void conn_write_on(struct http_conn *c);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);
static void request_free(struct http_server *srv, struct http_request *req);
static void conn_read_on(struct http_conn *c);
static void conn_read_off(struct http_conn *c);
static void conn_on_readable(evutil_socket_t fd, short what, void *arg);
static void conn_body_resume(struct http_conn *c);

/* Format and hand a line to the configured logger. */
static void srv_log(struct http_server *srv, enum http_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
srv_log(struct http_server *srv, enum http_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (srv->conf.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv->conf.log(srv->conf.log_arg, level, msg);
}

/* The defaults every zero field of a conf falls back to. */
void
http_server_conf_defaults(struct http_server_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->max_header_size = 16 * 1024;
	c->max_body = 1024 * 1024;
	c->max_pipeline = 16 * 1024;
	c->write_high_water = 256 * 1024;
	c->header_timeout_ms = 10 * 1000;
	c->body_timeout_ms = 60 * 1000;
	c->idle_timeout_ms = 120 * 1000;
	c->write_timeout_ms = 120 * 1000;
	c->max_conns = 10000;
	c->max_body_total = 256 * 1024 * 1024;
}

/* ---- per-address connection counts ---- */

/* Find (and with create, make) the counter for an address. */
static struct addr_count *
addr_lookup(struct http_server *srv, const struct net_addr *a, bool create)
{
	uint32_t b = net_addr_hash(a) % ADDR_BUCKETS;
	struct addr_count *e;

	SLIST_FOREACH(e, &srv->buckets[b], link)
		if (net_addr_eq(&e->addr, a))
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->addr = *a;
	SLIST_INSERT_HEAD(&srv->buckets[b], e, link);
	return e;
}

/* Take a slot for address a; false when the address is at its cap. */
static bool
addr_take(struct http_conn *c, const struct net_addr *a)
{
	struct http_server *srv = c->srv;
	struct addr_count *e;

	if (srv->conf.max_conns_per_addr == 0)
		return true;
	e = addr_lookup(srv, a, true);
	if (e->n >= srv->conf.max_conns_per_addr)
		return false;
	e->n++;
	c->counted = true;
	c->counted_addr = *a;
	return true;
}

/* Give the connection's slot back; drop empty counters. */
static void
addr_release(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	uint32_t b;
	struct addr_count *e;

	if (!c->counted)
		return;
	c->counted = false;
	b = net_addr_hash(&c->counted_addr) % ADDR_BUCKETS;
	SLIST_FOREACH(e, &srv->buckets[b], link) {
		if (!net_addr_eq(&e->addr, &c->counted_addr))
			continue;
		if (--e->n == 0) {
			SLIST_REMOVE(&srv->buckets[b], e, addr_count, link);
			free(e);
		}
		return;
	}
}

/* ---- timers ---- */

/* (Re)arm the connection's single timer for ms milliseconds. */
static void
conn_arm(struct http_conn *c, unsigned ms)
{
	timer_set_add(&c->srv->timers, c->srv->base, c->timer, ms);
	c->timer_on = true;
	c->timer_idle = false;
}

/*
 * The connection went idle between two requests: its deadline is idle_at +
 * idle_timeout. Every kept-alive request ends here, and every one started
 * (conn_disarm) used to stop the timer again: two libevent calls per request
 * for a deadline that almost never expires. An idle deadline armed before
 * and still pending stays: it expires no later than this one, and
 * conn_on_timer, finding the connection idle for less than idle_timeout,
 * arms the timer for the rest. Any other deadline is replaced at once.
 */
static void
conn_arm_idle(struct http_conn *c)
{
	loop_time(c->srv->base, &c->idle_at);
	if (c->timer_on && c->timer_idle)
		return;
	conn_arm(c, c->srv->conf.idle_timeout_ms);
	c->timer_idle = true;
}

/*
 * A request is being served: no deadline of the connection's applies. A
 * pending idle deadline is left to expire unheeded (conn_on_timer ignores it
 * outside C_READING, and conn_arm_idle keeps it only while it is due no
 * later than the next idle deadline); a header or body deadline is stopped.
 */
static void
conn_disarm(struct http_conn *c)
{
	if (c->timer_on && !c->timer_idle) {
		evtimer_del(c->timer);
		c->timer_on = false;
	}
}

/*
 * The rest of the idle deadline, if the connection went idle again since the
 * pending idle timer was armed: true if the timer was armed for it.
 */
static bool
conn_idle_rest(struct http_conn *c)
{
	double idle = loop_seconds_since(c->srv->base, &c->idle_at);
	double left = (double)c->srv->conf.idle_timeout_ms / 1000.0 - idle;
	struct timeval tv;

	if (left < 0.001)
		return false;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->timer, &tv);
	c->timer_on = true;
	c->timer_idle = true;
	return true;
}

/* A parse pass ended: arm the deadline it asked for, if still reading. */
static void
conn_arm_pending(struct http_conn *c)
{
	if (c->arm_ms != 0 && c->state == C_READING)
		conn_arm(c, c->arm_ms);
	c->arm_ms = 0;
}

/* Idle, header, body deadlines, and the end of a closing linger. */
static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	bool idle_timer = c->timer_idle;

	/* a timer that fires or is made active is no longer pending */
	c->timer_on = false;
	c->timer_idle = false;
	if (c->resume_pending && c->state == C_WAITING) {
		/* made active by http_request_resume_body */
		conn_body_resume(c);
		if (c->state == C_READING)
			conn_process(c);
		return;
	}
	c->resume_pending = false;
	if (c->state == C_CLOSING) {
		conn_free(c);
		return;
	}
	if (c->state != C_READING)
		return;
	if (!c->started) {
		if (idle_timer && conn_idle_rest(c))
			return; /* used again since the timer was armed */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
			/* the last response is still flowing: the write timeout
			 * guards that; idleness starts when it is sent */
			conn_arm_idle(c);
			return;
		}
		conn_free(c); /* idle keep-alive, or connected and silent */
		return;
	}
	conn_fail(c, 408, c->req ? "body timeout" : "header timeout");
}

/* ---- parser callbacks ---- */

/*
 * Append to the header buffer with room for 3 NULs after it (hb_nul), or
 * refuse (431) past max_header_size, the buffer's max. Inline: the parser
 * calls back with a piece of every name and value; the growth (the cbuf's
 * doubling, from HBUF_FIRST) is out of line.
 */
static inline int
hb_append(struct http_conn *c, const char *p, size_t len)
{
	struct cbuf *b = &c->hb;

	if (__builtin_expect(len + 3 > b->cap - b->len, 0)) {
		size_t cap = cbuf_grow_size(b, len + 3, HBUF_FIRST);

		if (cap == 0) {
			c->err_status = 431;
			return -1;
		}
		cbuf_resize(b, cap);
	}
	memcpy(b->p + b->len, p, len);
	b->len += (uint32_t)len;
	return 0;
}

/* Terminate the current piece (the buffer always has 3 spare bytes). */
static void
hb_nul(struct http_conn *c)
{
	piece_ends_note(&c->ends, c->hb.len);
	c->hb.p[c->hb.len++] = '\0';
}

/* A new request starts: reset accumulation, start the header deadline. */
static int
on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	c->started = true;
	c->hb.len = 0;
	c->ends.n = 0;
	c->nhdr = 0;
	c->hlast = HB_NONE;
	c->arm_ms = c->srv->conf.header_timeout_ms;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	c->hlast = HB_URL;
	return hb_append(c, at, len);
}

/*
 * A piece of a trailer field (after a chunked body): never stored, as abqd
 * forwards no trailers (the header buffer may be given back by then), but
 * counted in the request against max_header_size.
 */
static __attribute__((noinline)) int
trailer_count(struct http_conn *c, size_t len)
{
	struct http_request *req = c->req;

	if (req == NULL || len > c->srv->conf.max_header_size - req->trailer_len) {
		c->err_status = 431;
		return -1;
	}
	req->trailer_len += (uint32_t)len;
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (__builtin_expect(c->hlast == HB_TRAILER, 0))
		return trailer_count(c, len);
	if (c->hlast == HB_NONE && hb_append(c, "", 0) == -1)
		return -1;
	if (c->hlast == HB_FIELD) {
		/* continuation of the same name */
	} else {
		if (c->hlast != HB_NONE)
			hb_nul(c); /* ends the URL or the previous value */
		if (c->nhdr == UINT16_MAX) {
			c->err_status = 431;
			return -1;
		}
		c->nhdr++;
	}
	c->hlast = HB_FIELD;
	return hb_append(c, at, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (__builtin_expect(c->hlast == HB_TRAILER, 0))
		return trailer_count(c, len);
	if (c->hlast == HB_FIELD)
		hb_nul(c); /* ends the name */
	c->hlast = HB_VALUE;
	return hb_append(c, at, len);
}

/*
 * A whole plain header line from http_lines: on_header_field then
 * on_header_value in one step when the line follows the URL or a whole
 * header and fits the buffer as it is (name, value, their NULs and the 3
 * spare bytes hb_append keeps), else through the two.
 */
static int
on_line(http_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
	struct http_conn *c = p->data;
	struct cbuf *b = &c->hb;

	if (__builtin_expect((c->hlast != HB_URL && c->hlast != HB_VALUE) ||
	                         nlen + vlen + 5 > b->cap - b->len || c->nhdr == UINT16_MAX,
	                     0)) {
		if (on_header_field(p, name, nlen) != 0)
			return HPE_CB_header_field;
		return on_header_value(p, v, vlen) != 0 ? HPE_CB_header_value : 0;
	}
	hb_nul(c); /* ends the URL or the previous value */
	c->nhdr++;
	memcpy(b->p + b->len, name, nlen);
	b->len += (uint32_t)nlen;
	hb_nul(c);
	memcpy(b->p + b->len, v, vlen);
	b->len += (uint32_t)vlen;
	c->hlast = HB_VALUE;
	return 0;
}

/*
 * The body is going to be read: answer 100 Continue if the client waits for
 * it, and start the body deadline (armed when this parse pass ends).
 */
static void
body_start(struct http_conn *c)
{
	if (c->want_continue) {
		c->want_continue = false;
		conn_write_on(c);
		bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	c->arm_ms = c->srv->conf.body_timeout_ms;
}

/*
 * The header block is complete: move it into a new request, apply the body
 * cap (413 before reading a byte of the body); then either pause for
 * on_headers (conn_headers) or start the body (body_start).
 */
static int
on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_request *req;
	const char *expect;

	if (hb_append(c, "", 0) == -1)
		return -1;
	if (c->hlast == HB_FIELD) {
		hb_nul(c);
		hb_nul(c); /* a name without a value */
	} else {
		hb_nul(c);
	}
	if (c->hlast == HB_NONE)
		hb_nul(c); /* no URL at all */
	if (p->method == HTTP_CONNECT) {
		c->err_status = 405;
		return -1;
	}
	/*
	 * One allocation: the request, its header index, the header block and
	 * (when small and announced) the body. The connection keeps its header
	 * buffer for the next request unless it grew large.
	 */
	{
		size_t idx = c->nhdr * sizeof(req->h[0]);
		size_t inl = (p->flags & F_CONTENTLENGTH) && p->content_length <= BODY_INLINE_MAX
		                 ? (size_t)p->content_length
		                 : 0;
		const char *q;

		size_t need = sizeof(*req) + idx + c->hb.len + inl;

		req = need <= REQ_BLOCK ? blk_alloc(&c->srv->req_blocks) : xmalloc(need);
		memset(req, 0, sizeof(*req));
		if (need <= REQ_BLOCK)
			req->cache = &c->srv->req_blocks;
		req->hdr = (char *)req->h + idx;
		memcpy(req->hdr, c->hb.p, c->hb.len);
		if (inl > 0) /* the body's storage: the end of the block */
			cbuf_init_with(&req->body, req->hdr + c->hb.len, inl,
			               c->srv->conf.max_body);
		else /* no pointer past the block: an empty body reads as "" */
			cbuf_init(&req->body, c->srv->conf.max_body);
		/* Nothing of the block is written after this: trailers are only counted. */
		cbuf_clear(&c->hb, HBUF_KEEP_MAX);
		c->hlast = HB_TRAILER;
		req->conn = c;
		req->nhdr = c->nhdr;
		/*
		 * Index the block once: every later look-up is by pointer and
		 * length. The block is a copy of the header buffer, so the noted ends hold.
		 */
		q = req->hdr;
		q += piece_len(&c->ends, 0, req->hdr, q) + 1; /* the URL */
		for (size_t k = 0; k < req->nhdr; k++) {
			struct http_req_header *e = &req->h[k];

			e->name = q;
			e->nlen = (uint32_t)piece_len(&c->ends, 1 + 2 * k, req->hdr, q);
			e->value = q + e->nlen + 1;
			e->vlen = (uint32_t)piece_len(&c->ends, 2 + 2 * k, req->hdr, e->value);
			q = e->value + e->vlen + 1;
		}
		c->ends.n = 0;
		c->nhdr = 0;
	}
	req->method = (uint8_t)p->method;
	req->minor = p->http_minor > 0 ? 1 : 0;
	req->head = p->method == HTTP_HEAD;
	req->resp_remaining = -1;
	c->req = req;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > req->body.max) {
		c->err_status = 413;
		return -1;
	}
	expect = http_request_header(req, "Expect");
	c->want_continue = expect && str_ieq(expect, "100-continue") && p->http_minor >= 1 &&
	                   ((p->flags & F_CHUNKED) || p->content_length > 0);
	if (c->srv->handler.on_headers != NULL) {
		/* conn_parse calls on_headers, outside the parser (conn_headers). */
		c->hdr_pause = true;
		http_parser_pause(p, 1);
		return 0;
	}
	body_start(c);
	return 0;
}

/*
 * Room for n more body bytes. The body grows as its bytes come (never
 * allocated at the announced Content-Length up front): the cbuf's doubling
 * from BODY_INLINE_MAX, capped by the request's cap and by what the
 * Content-Length still announces, and charged to the server-wide budget
 * max_body_total before anything is allocated (503 past it).
 */
static __attribute__((noinline)) int
body_grow(struct http_conn *c, struct http_request *req, size_t n)
{
	struct http_server *srv = c->srv;
	size_t need = (size_t)req->body.len + n;
	size_t cap = cbuf_grow_size(&req->body, n, BODY_INLINE_MAX);
	size_t old = cbuf_heap(&req->body);

	if ((c->parser.flags & F_CONTENTLENGTH) && !(c->parser.flags & F_CHUNKED) &&
	    cap > need + c->parser.content_length)
		cap = need + (size_t)c->parser.content_length; /* what is still announced */
	if (cap - old > srv->conf.max_body_total - srv->body_bytes) {
		c->err_status = 503;
		return -1;
	}
	cbuf_resize(&req->body, cap);
	srv->body_bytes += cap - old;
	return 0;
}

/* Body bytes (already de-chunked): append under the request's cap (413 past it). */
static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct cbuf *b = &c->req->body;

	if (len > (size_t)b->max - b->len) {
		c->err_status = 413;
		return -1;
	}
	if (len > (size_t)b->cap - b->len && body_grow(c, c->req, len) == -1)
		return -1;
	(void)cbuf_append(b, at, len); /* fits: nothing grows */
	return 0;
}

/* One request is whole: remember keep-alive and stop the parser here. */
static int
on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	if (c->req == NULL)
		return -1;
	c->req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	http_parser_pause(p, 1);
	return 0;
}

/* ---- connection life ---- */

/*
 * The connection's request dies unanswered: if the handler has seen it
 * (on_headers or on_request), on_abort is called, once, with the addresses
 * still readable; then it is freed.
 */
static void
conn_drop_req(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request *req = c->req;

	if (req->notified) {
		/* keep the addresses readable from on_abort */
		http_request_peer(req);
		http_request_client(req);
	}
	c->req = NULL;
	req->conn = NULL;
	if (req->notified && srv->handler.on_abort) {
		req->aborted = true;
		srv->handler.on_abort(req, srv->arg);
	}
	request_free(srv, req);
}

/* Remove from the server, release everything; held requests get on_abort. */
static void
conn_free(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request *req = c->req;

	if (req)
		conn_drop_req(c);
	addr_release(c);
	LIST_REMOVE(c, link);
	srv->nconns--;
	/* This server is the EAS listener's; the admin listener counts its own. */
	abq_metrics_connections(false, -1);
	if (c->srv->wconn == c) {
		c->srv->wconn = NULL;
		c->srv->wlen = 0;
	}
	event_free(c->timer);
	if (c->rev != NULL)
		event_free(c->rev);
	bufferevent_free(c->bev);
	cbuf_reset(&c->hb);
	free(c);
}

/*
 * The read event's mode. It is edge-triggered (conn_on_readable) only while
 * the bufferevent's write event is off: epoll registers a descriptor once,
 * with one EPOLLET for all its events, and libevent sets it from the event
 * being added. Added next to the read event's EV_ET, the bufferevent's write
 * event would be edge-triggered too, and it writes at most 16 KiB per
 * callback: what it left would wait for an edge that never comes. So the
 * read event turns level-triggered before any output is queued
 * (conn_write_on), and edge-triggered again when the write interest is
 * dropped (conn_write_now). Reading on: a read runs once on the next pass,
 * in case bytes came while the mode changed.
 */
static void
conn_rev_mode(struct http_conn *c, bool et)
{
	if (c->rev == NULL || c->rev_et == et)
		return;
	if (!c->read_off)
		event_del(c->rev);
	event_assign(c->rev, c->srv->base, bufferevent_getfd(c->bev),
	             EV_READ | EV_CLOSED | EV_PERSIST | (et ? EV_ET : 0), conn_on_readable, c);
	c->rev_et = et;
	if (!c->read_off) {
		event_add(c->rev, NULL);
		event_active(c->rev, EV_READ, 1);
	}
}

/* Before queueing output: let libevent write again (see conn_write_now). */
static void
conn_write_on(struct http_conn *c)
{
	if (c->write_off) {
		c->write_off = false;
		conn_rev_mode(c, false);
		bufferevent_enable(c->bev, EV_WRITE);
	}
}

/*
 * The response in srv->wbuf moves to its connection's evbuffer, so that
 * libevent writes it, in order, ahead of what comes next.
 */
static void
pending_flush(struct http_server *srv)
{
	struct http_conn *c = srv->wconn;

	if (c == NULL)
		return;
	conn_write_on(c);
	evbuffer_add(bufferevent_get_output(c->bev), srv->wbuf, srv->wlen);
	srv->wconn = NULL;
	srv->wlen = 0;
}

/*
 * The response in srv->wbuf is whole: one send() on the connection's socket
 * (its output evbuffer is empty, checked when the response started). What
 * the socket does not take, or all of it on an error, goes to the evbuffer,
 * where libevent goes on or reports the error as for any other write.
 */
static void
pending_send(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	ssize_t n;

	if (srv->wconn != c)
		return;
	do
		n = net_send(bufferevent_getfd(c->bev), srv->wbuf, srv->wlen);
	while (n == -1 && errno == EINTR);
	if (n > 0 && (size_t)n == srv->wlen) {
		srv->wconn = NULL;
		srv->wlen = 0;
		return;
	}
	if (n > 0) {
		memmove(srv->wbuf, srv->wbuf + n, srv->wlen - (size_t)n);
		srv->wlen -= (size_t)n;
	}
	pending_flush(srv);
}

/*
 * Finish with this connection once the output is flushed: stop parsing,
 * shut the write side then drain input for a short linger (plain TCP), so
 * the client reads our answer instead of an RST.
 */
static void
conn_close_after_flush(struct http_conn *c)
{
	c->state = C_CLOSING;
	c->drain_wanted = false;
	conn_read_on(c); /* the linger drains what the client still sends */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	evtimer_del(c->timer); /* the write timeout bounds the flush */
	c->timer_on = false;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
}

/* Answer an error with Connection: close and close after it is sent. */
static void
conn_fail(struct http_conn *c, int status, const char *why)
{
	char peer[48];
	const char *reason = http_status_str((enum http_status)status);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (status == 431)
		reason = "Request Header Fields Too Large";
	srv_log(c->srv, status == 408 || status == 503 ? HTTP_LOG_INFO : HTTP_LOG_WARN,
	        "http: peer=%s status=%d: %s", net_addr_format(&c->peer, peer, sizeof(peer)),
	        status, why);
	if (c->req)
		conn_drop_req(c);
	conn_write_on(c);
	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	                    "%sConnection: close\r\n\r\n%s\n",
	                    status, reason, strlen(reason) + 1,
	                    status == 503 ? "Retry-After: 5\r\n" : "", reason);
	conn_close_after_flush(c);
}

/* Give the parsed request to the handler. */
static void
conn_dispatch(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request *req = c->req;

	conn_disarm(c);
	c->arm_ms = 0;
	c->state = C_HELD;
	c->started = false;
	if (!c->counted && srv->conf.max_conns_per_addr &&
	    net_cidr_match(srv->trusted, srv->ntrusted, &c->peer)) {
		struct net_addr a;
		if (net_addr_parse(&a, http_request_client(req),
		                   strlen(http_request_client(req))) == 0 &&
		    !addr_take(c, &a)) {
			conn_fail(c, 503, "too many connections from this client");
			return;
		}
	}
	req->notified = true;
	srv->handler.on_request(req, srv->arg);
}

/*
 * Read the waiting body: 413 at once if its Content-Length is over the
 * request's cap, else 100 Continue if asked, the body deadline, reading on.
 * The caller parses what is buffered.
 */
static void
conn_body_resume(struct http_conn *c)
{
	c->resume_pending = false;
	if (c->req->resp_state != R_NONE)
		return; /* answering already: the body is never read */
	if ((c->parser.flags & F_CONTENTLENGTH) && c->parser.content_length > c->req->body.max) {
		conn_fail(c, 413, "Content-Length over the request's cap");
		return;
	}
	c->state = C_READING;
	body_start(c);
	conn_read_on(c);
}

/*
 * The parser paused at the end of a header block: hand it to on_headers,
 * outside the parser. The handler reads the body now (HTTP_BODY_READ), leaves
 * it waiting (C_WAITING: input read up to max_pipeline but not parsed), or
 * has answered (the connection closes after the answer). It may also have
 * called http_request_resume_body itself.
 */
static void
conn_headers(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request *req = c->req;
	int r;

	c->hdr_pause = false;
	http_parser_pause(&c->parser, 0);
	c->state = C_WAITING;
	c->arm_ms = 0;
	conn_disarm(c);
	req->notified = true;
	c->in_headers = true;
	r = srv->handler.on_headers(req, srv->arg);
	c->in_headers = false;
	if (c->req != req || c->state != C_WAITING || req->resp_state != R_NONE)
		return; /* answered or answering */
	if (r == HTTP_BODY_READ || c->resume_pending)
		conn_body_resume(c);
}

/*
 * The request line every phone sends, "POST <target> HTTP/1.1" CRLF with
 * the target made only of the bytes http_target_span takes (RFC 3986's
 * unreserved and sub-delims, ':', '@', '/', '?' and '%'), whole at the start
 * of buf and with nothing of this request parsed yet: the parser is given
 * the states it has at and after "POST / HTTP/1.1" CRLF (srv->post_line,
 * http_start_replay), and on_message_begin and on_url, the real target in
 * one piece, are called as it would call them. Returns the bytes of buf the
 * line took, or 0 when it is not such a line and the parser is to read it.
 *
 * Why: libhttp-parser walks a request target a byte at a time through its URL
 * state machine, at about twice the cost per byte of the rest of the request
 * (bench/bench_parser: 0.31 of the 0.57 us of the benchmark's FolderSync
 * request), and the target is also read and checked by eas_request_parse.
 * For the lines taken here the parser's outcome is known: the method is
 * POST, the version 1.1, and on_url is given the whole target in one piece
 * (each of these bytes is a URL byte to the parser, '?' starts or continues
 * the query and none starts a fragment). Any other line (another method, a
 * '#', a byte outside the set, two spaces, a bare LF, a line cut by the read)
 * goes through the parser as it came. The parser's own header-size count
 * sees the shorter line; max_header_size, counted here over the target and
 * the headers, is what bounds a request.
 */
static size_t
conn_line(struct http_conn *c, const char *buf, size_t n)
{
	const char *t = buf + 5, *q = t, *end = buf + n;

	if (n < 17 || memcmp(buf, "POST /", 6) != 0)
		return 0;
	/* the target runs to the first byte outside the set: it must be " HTTP/1.1" CRLF */
	q += http_target_span(t, (size_t)(end - t));
	if ((size_t)(end - q) < 11 || memcmp(q, " HTTP/1.1\r\n", 11) != 0)
		return 0;
	/* on_url refusing the target (431): the caller's parse reports it */
	if (http_start_replay(&c->parser, &c->srv->settings, &c->srv->post_line, t,
	                      (size_t)(q - t)) != 0)
		return 0;
	return (size_t)(q + 11 - buf);
}

/*
 * Run the parser over buf[0..n) while the connection reads, dispatching each
 * whole request. Returns the bytes consumed: fewer than n when the
 * connection stopped reading (a request is out, or it is closing), all of
 * them on a parse error (the connection is closing then).
 */
static size_t
conn_parse(struct http_conn *c, const char *buf, size_t n)
{
	size_t off = 0;

	/*
	 * The phone's header lines, while plain (http_lines.h). When one fails
	 * it stops short of the buffer's end with the parser's error set; the
	 * parser then takes nothing more and the error is reported below.
	 */
	if (!c->started && c->state == C_READING && (off = conn_line(c, buf, n)) > 0)
		off += http_lines(&c->parser, &c->srv->settings, on_line, buf + off, n - off);

	while (off < n && c->state == C_READING) {
		size_t k = http_parser_execute(&c->parser, &c->srv->settings, buf + off, n - off);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

		off += k;
		if (e == HPE_PAUSED) {
			if (c->hdr_pause)
				conn_headers(c);
			else
				conn_dispatch(c);
			continue;
		}
		if (e != HPE_OK) {
			conn_fail(c, c->err_status ? c->err_status : 400,
			          http_errno_description(e));
			return n;
		}
		if (off < n) {
			/* the parser stopped without pausing: not a request we serve */
			conn_fail(c, 400, "unparsed bytes after the request");
			return n;
		}
	}
	return off;
}

/* Parse what is buffered until a request is dispatched or input runs out. */
static void
conn_process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (c->in_process)
		return;
	c->in_process = true;
	while (c->state == C_READING && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		evbuffer_drain(in, conn_parse(c, v.iov_base, v.iov_len));
	}
	c->in_process = false;
	conn_arm_pending(c);
}

/*
 * Stop reading (a body waiting for the handler filled max_pipeline): the
 * kernel's buffer and TCP flow control hold the rest. A close by the client
 * is then noticed when reading resumes or the answer is written.
 */
static void
conn_read_off(struct http_conn *c)
{
	if (c->read_off)
		return;
	c->read_off = true;
	if (c->rev != NULL)
		event_del(c->rev);
	else
		bufferevent_disable(c->bev, EV_READ);
}

/* Read again after conn_read_off. */
static void
conn_read_on(struct http_conn *c)
{
	if (!c->read_off)
		return;
	c->read_off = false;
	if (c->rev != NULL) {
		event_add(c->rev, NULL);
		/* edge-triggered: what came while off raised no new edge */
		event_active(c->rev, EV_READ, 1);
	} else
		bufferevent_enable(c->bev, EV_READ);
}

/* Bytes arrived: parse them, cap them while held, discard them when closing. */
static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (c->state) {
	case C_READING:
		conn_process(c);
		break;
	case C_WAITING:
		/* The body waits for the handler: read on up to the cap, then only watch for a
		 * close. */
		if (evbuffer_get_length(in) > c->srv->conf.max_pipeline)
			conn_read_off(c);
		break;
	case C_HELD:
		if (evbuffer_get_length(in) > c->srv->conf.max_pipeline) {
			srv_log(c->srv, HTTP_LOG_INFO, "http: pipelined input over the cap");
			conn_free(c);
		}
		break;
	case C_CLOSING:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

/*
 * Parse n bytes straight from the server's read buffer: the usual case of a
 * whole request in one read, with nothing buffered before it. Whatever is
 * left when the parser stops for a dispatched request (a pipelined request)
 * goes to the input buffer, as if it had been read there.
 */
static void
conn_parse_direct(struct http_conn *c, const char *buf, size_t n)
{
	size_t off;

	c->in_process = true;
	off = conn_parse(c, buf, n);
	c->in_process = false;
	conn_arm_pending(c);
	if (off < n && c->state != C_CLOSING) {
		struct evbuffer *in = bufferevent_get_input(c->bev);

		evbuffer_unfreeze(in, 0);
		evbuffer_add(in, buf + off, n - off);
		evbuffer_freeze(in, 0);
		conn_on_read(c->bev, c);
	}
}

/*
 * Plain TCP: read with one recv. libevent's bufferevent asks the kernel for
 * the readable size (ioctl FIONREAD) before every read and reads into a
 * fresh buffer chain; this is the same read without that system call, and
 * when nothing is buffered it is parsed where it landed (conn_parse_direct).
 * The bufferevent keeps the writing; its EV_READ stays off. EOF and errors go
 * where the bufferevent's would (conn_on_event). c may be freed by the
 * callbacks: nothing after them.
 *
 * The event is edge-triggered (EV_ET) while no output waits (conn_rev_mode):
 * epoll reports the socket when bytes arrive, not again on every wait while
 * they are unread (level-triggered, each socket reported is polled once more
 * by the next epoll_wait; the proxy benchmark answers 3% more requests
 * edge-triggered, bench/RESULTS.md). A read that fills the
 * buffer may have left bytes behind, and an interrupted one read nothing;
 * bytes that came with the peer's FIN (EV_CLOSED, epoll's EPOLLRDHUP) leave
 * the end of the stream to read: each runs this callback again on the same
 * loop pass (event_active), as a level-triggered event would on the next. A
 * read that came back short otherwise emptied the socket, and whatever
 * arrives after it raises a new edge. Level-triggered, the callback is the
 * same.
 */
static void
conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;
	ssize_t n;

	if (c->state == C_READING && !c->in_process && evbuffer_get_length(in) == 0) {
		n = net_recv(fd, c->srv->rbuf, READ_CHUNK);
		if (n == READ_CHUNK || (n > 0 && (what & EV_CLOSED)) || (n < 0 && errno == EINTR))
			event_active(c->rev, EV_READ, 1); /* freed or turned off: dropped */
		if (n > 0)
			conn_parse_direct(c, c->srv->rbuf, (size_t)n);
		else if (n == 0)
			conn_on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, c);
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
		return;
	}
	/* A socket bufferevent keeps its input's end frozen but while it reads. */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, READ_CHUNK, &v, 1) < 1) {
		evbuffer_freeze(in, 0);
		conn_on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
		return;
	}
	n = net_recv(fd, v.iov_base, v.iov_len);
	if ((n > 0 && ((size_t)n == v.iov_len || (what & EV_CLOSED))) || (n < 0 && errno == EINTR))
		event_active(c->rev, EV_READ, 1);
	if (n > 0) {
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
	}
	evbuffer_freeze(in, 0);
	if (n > 0)
		conn_on_read(c->bev, c);
	else if (n == 0)
		conn_on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, c);
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		conn_on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
}

/* Output drained: resume a paused producer, or finish closing. */
static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(bev);

	if (c->state == C_CLOSING) {
		if (evbuffer_get_length(out) > 0 || c->lingering)
			return;
		if (c->tls) {
			conn_free(c);
			return;
		}
		c->lingering = true;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		conn_arm(c, LINGER_MS);
		return;
	}
	if ((c->state == C_HELD || c->state == C_WAITING) && c->drain_wanted && c->req &&
	    evbuffer_get_length(out) <= c->srv->conf.write_high_water / 2) {
		c->drain_wanted = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (c->srv->handler.on_drain)
			c->srv->handler.on_drain(c->req, c->srv->arg);
	}
}

/* EOF, error or write timeout: the client is gone. */
static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->state == C_HELD)
		srv_log(c->srv, HTTP_LOG_DEBUG, "http: client went away during a held request");
	conn_free(c);
}

/* ---- accepting ---- */

/* Re-enable a listener after a pause for descriptor exhaustion. */
static void
listener_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	event_add(l->ev, NULL);
}

/* Wrap an accepted socket in a connection, or close it when over a limit. */
static int
conn_new(struct http_server *srv, struct tls_ctx *tls, int fd, const struct sockaddr *sa)
{
	struct http_conn *c;
	char buf[48];
	int on = 1;
	const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	if (srv->nconns >= srv->conf.max_conns) {
		srv_log(srv, HTTP_LOG_WARN, "http: max_conns reached, closing a new connection");
		close(fd);
		return -1;
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	cbuf_init(&c->hb, srv->conf.max_header_size);
	if (sa == NULL) {
		/* a local socket (http_server_serve_fd): counted as 127.0.0.1 */
		c->peer.family = AF_INET;
		c->peer.bytes[0] = 127;
		c->peer.bytes[3] = 1;
	} else if (net_addr_from_sockaddr(&c->peer, sa) == -1) {
		free(c);
		close(fd);
		return -1;
	}
	if (!net_cidr_match(srv->trusted, srv->ntrusted, &c->peer) && !addr_take(c, &c->peer)) {
		srv_log(srv, HTTP_LOG_INFO,
		        "http: peer=%s over max_conns_per_addr, closing a new connection",
		        net_addr_format(&c->peer, buf, sizeof(buf)));
		free(c);
		close(fd);
		return -1;
	}
	if (sa != NULL)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (tls) {
		SSL *ssl = SSL_new(tls_ctx_get(tls));
		if (ssl != NULL) {
			c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
			                                        BUFFEREVENT_SSL_ACCEPTING, opts);
			if (c->bev)
				bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		}
		c->tls = true;
	} else {
		c->bev = bufferevent_socket_new(srv->base, fd, opts);
	}
	if (c->bev == NULL) {
		close(fd);
		goto fail;
	}
	c->timer = evtimer_new(srv->base, conn_on_timer, c);
	if (c->timer == NULL) {
		bufferevent_free(c->bev);
		goto fail;
	}
	if (!c->tls && (c->rev = event_new(srv->base, fd, EV_READ | EV_CLOSED | EV_PERSIST | EV_ET,
	                                   conn_on_readable, c)) == NULL) {
		event_free(c->timer);
		bufferevent_free(c->bev);
		goto fail;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->state = C_READING;
	LIST_INSERT_HEAD(&srv->conns, c, link);
	srv->nconns++;
	abq_metrics_connections(false, +1);
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	if (srv->conf.write_timeout_ms) {
		struct timeval wt = {.tv_sec = srv->conf.write_timeout_ms / 1000,
		                     .tv_usec = (srv->conf.write_timeout_ms % 1000) * 1000};
		bufferevent_set_timeouts(c->bev, NULL, &wt);
	}
	if (c->tls) {
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	} else {
		/*
		 * The write event waits until output is queued (conn_write_on),
		 * and the read event is edge-triggered till then (conn_rev_mode).
		 * A new bufferevent has EV_WRITE on, which would add its write
		 * event as soon as a byte is queued.
		 */
		bufferevent_disable(c->bev, EV_WRITE);
		c->write_off = true;
		c->rev_et = true;
		event_add(c->rev, NULL);
	}
	conn_arm(c, srv->conf.header_timeout_ms);
	return 0;
fail:
	srv_log(srv, HTTP_LOG_WARN, "http: cannot set up a connection");
	addr_release(c);
	free(c);
	return -1;
}

/*
 * Accept up to ACCEPT_BATCH connections. On EMFILE/ENFILE/ENOBUFS/ENOMEM the
 * listener is switched off for ACCEPT_RETRY_MS instead of spinning on a
 * readable socket we cannot accept from.
 */
static void
listener_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
				srv_log(l->srv, HTTP_LOG_WARN, "http: accept: %s; pausing accepts",
				        strerror(errno));
				event_del(l->ev);
				evtimer_add(l->retry, &tv);
			}
			return;
		}
		conn_new(l->srv, l->tls, fd, (struct sockaddr *)&ss);
	}
}

/* ---- server ---- */

/* Apply defaults to zero fields, parse trusted proxies, set up the parser. */
struct http_server *
http_server_new(struct event_base *base, const struct http_server_conf *conf,
                const struct http_handler *handler, void *arg, const char **errstr)
{
	struct http_server *srv;
	struct http_server_conf d;

	if (handler == NULL || handler->on_request == NULL) {
		*errstr = "http server: no request handler";
		return NULL;
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->rbuf = xmalloc(READ_CHUNK);
	srv->wbuf = xmalloc(WBUF_CAP);
	srv->req_blocks.size = REQ_BLOCK;
	http_server_conf_defaults(&d);
	srv->conf = *conf;
#define DEF(f)                                                                                     \
	if (srv->conf.f == 0)                                                                      \
		srv->conf.f = d.f;
	DEF(max_header_size)
	DEF(max_body)
	DEF(max_pipeline)
	DEF(write_high_water)
	DEF(header_timeout_ms)
	DEF(body_timeout_ms)
	DEF(idle_timeout_ms)
	DEF(write_timeout_ms)
	DEF(max_conns)
	DEF(max_body_total)
#undef DEF
	/* The header and body buffers' sizes are 32-bit (struct cbuf). */
	if (srv->conf.max_header_size > UINT32_MAX / 2 || srv->conf.max_body > UINT32_MAX) {
		*errstr = "http server: max_header_size or max_body too large";
		free(srv->rbuf);
		free(srv->wbuf);
		free(srv);
		return NULL;
	}
	if (net_cidr_parse_list(conf->trusted_proxies, &srv->trusted, &srv->ntrusted, errstr) ==
	    -1) {
		free(srv->rbuf);
		free(srv->wbuf);
		free(srv);
		return NULL;
	}
	srv->conf.trusted_proxies = NULL;
	srv->base = base;
	srv->handler = *handler;
	srv->arg = arg;
	http_parser_settings_init(&srv->settings);
	srv->settings.on_message_begin = on_message_begin;
	srv->settings.on_url = on_url;
	srv->settings.on_header_field = on_header_field;
	srv->settings.on_header_value = on_header_value;
	srv->settings.on_headers_complete = on_headers_complete;
	srv->settings.on_body = on_body;
	srv->settings.on_message_complete = on_message_complete;
	if (http_start_take(&srv->post_line, HTTP_REQUEST, "POST / HTTP/1.1\r\n", 17) != 0)
		fatalx("http_server: the parser refuses a POST line");
	return srv;
}

/* Register the accept event on a listening socket (owned from here on). */
int
http_server_adopt(struct http_server *srv, int fd, struct tls_ctx *tls, const char **errstr)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->srv = srv;
	l->fd = fd;
	l->tls = tls;
	l->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, listener_on_accept, l);
	l->retry = evtimer_new(srv->base, listener_on_retry, l);
	if (l->ev == NULL || l->retry == NULL || event_add(l->ev, NULL) == -1) {
		*errstr = "cannot register the listener";
		if (l->ev)
			event_free(l->ev);
		if (l->retry)
			event_free(l->retry);
		close(fd);
		free(l);
		return -1;
	}
	SLIST_INSERT_HEAD(&srv->listeners, l, link);
	return 0;
}

/* Open the socket and register the accept event. */
int
http_server_listen(struct http_server *srv, const char *addr, struct tls_ctx *tls, int *port_r,
                   const char **errstr)
{
	int port, fd = net_listen(addr, srv->conf.reuseport, 1024, &port, errstr);

	if (fd == -1 || http_server_adopt(srv, fd, tls, errstr) == -1)
		return -1;
	if (port_r)
		*port_r = port;
	return 0;
}

unsigned
http_server_conn_count(const struct http_server *srv)
{
	return srv->nconns;
}

size_t
http_server_body_bytes(const struct http_server *srv)
{
	return srv->body_bytes;
}

/*
 * Serve one connected socket as if it had been accepted (plain, no TLS): an
 * AF_INET/AF_INET6 peer is taken from getpeername, anything else (a socket
 * pair) counts as 127.0.0.1. For tests and the fuzz target.
 */
int
http_server_serve_fd(struct http_server *srv, int fd, const char **errstr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr *sa = NULL;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		sa = (const struct sockaddr *)&ss;
	if (conn_new(srv, NULL, fd, sa) == -1) {
		*errstr = "cannot serve the connection";
		return -1;
	}
	return 0;
}

/* Close listeners then connections (held ones get on_abort). */
void
http_server_free(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	struct listener *l;

	if (srv == NULL)
		return;
	while ((l = SLIST_FIRST(&srv->listeners)) != NULL) {
		SLIST_REMOVE_HEAD(&srv->listeners, link);
		event_free(l->ev);
		event_free(l->retry);
		close(l->fd);
		free(l);
	}
	while (!LIST_EMPTY(&srv->conns))
		conn_free(LIST_FIRST(&srv->conns));
	for (size_t i = 0; i < ADDR_BUCKETS; i++) {
		struct addr_count *e;
		while ((e = SLIST_FIRST(&srv->buckets[i])) != NULL) {
			SLIST_REMOVE_HEAD(&srv->buckets[i], link);
			free(e);
		}
	}
	free(srv->trusted);
	free(srv->rbuf);
	free(srv->wbuf);
	blk_cache_clear(&srv->req_blocks);
	free(srv);
	*srvp = NULL;
}

/* ---- request accessors ---- */

const char *
http_request_method(const struct http_request *req)
{
	return http_method_str((enum http_method)req->method);
}

const char *
http_request_url(const struct http_request *req)
{
	return req->hdr;
}

int
http_request_minor(const struct http_request *req)
{
	return req->minor;
}

/* The i-th name/value pair, from the index. */
bool
http_request_header_at(const struct http_request *req, size_t i, const char **name,
                       const char **value, size_t *name_len, size_t *value_len)
{
	if (i >= req->nhdr)
		return false;
	*name = req->h[i].name;
	*value = req->h[i].value;
	if (name_len != NULL)
		*name_len = req->h[i].nlen;
	if (value_len != NULL)
		*value_len = req->h[i].vlen;
	return true;
}

/* The index itself. */
const struct http_req_header *
http_request_headers(const struct http_request *req, size_t *n)
{
	*n = req->nhdr;
	return req->h;
}

/* Linear, case-insensitive: requests carry a dozen headers; lengths first. */
const char *
http_request_header(const struct http_request *req, const char *name)
{
	size_t len = strlen(name);

	for (size_t k = 0; k < req->nhdr; k++) {
		const struct http_req_header *e = &req->h[k];

		if (e->nlen == len && mem_ieq(e->name, name, len))
			return e->value;
	}
	return NULL;
}

const void *
http_request_body(const struct http_request *req, size_t *len)
{
	*len = req->body.len;
	return req->body.p ? req->body.p : "";
}

/* The peer's address as text, formatted once per connection. */
static const char *
conn_peer_text(struct http_conn *c)
{
	_Static_assert(sizeof(c->peertxt) == sizeof(((struct http_request *)0)->addrbuf),
	               "one size for the address texts");
	if (c->peertxt[0] == '\0')
		net_addr_format(&c->peer, c->peertxt, sizeof(c->peertxt));
	return c->peertxt;
}

const char *
http_request_peer(struct http_request *req)
{
	if (req->conn == NULL)
		return req->addrbuf[0] ? req->addrbuf : "?";
	memcpy(req->addrbuf, conn_peer_text(req->conn), sizeof(req->addrbuf));
	return req->addrbuf;
}

bool
http_request_is_tls(const struct http_request *req)
{
	return req->conn && req->conn->tls;
}

/*
 * X-Forwarded-For only from a trusted peer; then, from the right, skip hops
 * that are themselves trusted proxies; the first other valid address is the
 * client. A malformed entry stops the walk (we keep the last good hop).
 * Several X-Forwarded-For fields are one list in their order (RFC 9110
 * 5.3), which is also how the gateway forwards them: the walk starts at the
 * end of the last field and goes on into the fields before it.
 */
const char *
http_request_client(struct http_request *req)
{
	struct http_server *srv;
	struct net_addr client, a;

	if (req->client_done)
		return req->clientbuf;
	if (req->conn == NULL)
		return "?";
	srv = req->conn->srv;
	client = req->conn->peer;
	if (!net_cidr_match(srv->trusted, srv->ntrusted, &client))
		goto done;
	for (size_t i = req->nhdr; i-- > 0;) {
		const struct http_req_header *h = &req->h[i];
		const char *xff = h->value, *end = h->value + h->vlen;

		if (h->nlen != 15 || !mem_ieq(h->name, "X-Forwarded-For", 15))
			continue;
		while (end > xff) {
			const char *start = end;
			const char *s, *e;

			while (start > xff && start[-1] != ',')
				start--;
			for (s = start; s < end && (*s == ' ' || *s == '\t'); s++)
				;
			for (e = end; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
				;
			if (net_addr_parse(&a, s, (size_t)(e - s)) == -1)
				goto done;
			client = a;
			if (!net_cidr_match(srv->trusted, srv->ntrusted, &a))
				goto done;
			end = start > xff ? start - 1 : xff;
		}
	}
done:
	if (net_addr_eq(&client, &req->conn->peer))
		memcpy(req->clientbuf, conn_peer_text(req->conn), sizeof(req->clientbuf));
	else
		net_addr_format(&client, req->clientbuf, sizeof(req->clientbuf));
	req->client_done = true;
	return req->clientbuf;
}

void
http_request_held(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (c != NULL && c->hb.len == 0)
		cbuf_reset(&c->hb);
}

void
http_request_set_data(struct http_request *req, void *data)
{
	req->data = data;
}

void *
http_request_get_data(const struct http_request *req)
{
	return req->data;
}

/* ---- responses ---- */

/* Free a request's memory, giving its body's bytes back to srv's budget. */
static void
request_free(struct http_server *srv, struct http_request *req)
{
	srv->body_bytes -= cbuf_heap(&req->body);
	cbuf_reset(&req->body);
	if (req->cache != NULL)
		blk_free(req->cache, req);
	else
		free(req);
}

/* Nonzero when a byte of w is NUL, CR or LF (each test exact as a yes/no). */
static inline uint64_t
word_has_nul_cr_lf(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t cr = w ^ (ones * '\r'), lf = w ^ (ones * '\n');

	return (((w - ones) & ~w) | ((cr - ones) & ~cr) | ((lf - ones) & ~lf)) & high;
}

/*
 * Whether s[0..n) is safe in a header line: no CR, LF or NUL (the NUL that a
 * string measured with strlen cannot hold). Eight bytes a step, as every
 * response header goes through it: every word before the last eight bytes,
 * then those (overlapping the word before them), so no byte-by-byte tail but
 * for short strings.
 */
static inline bool
header_ok(const char *s, size_t n)
{
	uint64_t w;

	if (n < 8) {
		for (size_t i = 0; i < n; i++)
			if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
				return false;
		return true;
	}
	for (size_t i = 0; i + 8 < n; i += 8) {
		memcpy(&w, s + i, 8);
		if (word_has_nul_cr_lf(w))
			return false;
	}
	memcpy(&w, s + n - 8, 8);
	return word_has_nul_cr_lf(w) == 0;
}

/*
 * A response head being put together in buf (cap bytes): srv->wbuf for a
 * response that may go out with one send(), else a stack buffer. What does
 * not fit goes to the connection's evbuffer, and then so does the rest.
 */
struct head_buf {
	struct http_conn *c;
	char *buf;
	size_t n, cap;
	bool spilled;
};

/* What head_put does when the piece does not fit (out of line: rare). */
static __attribute__((noinline)) void
head_spill(struct head_buf *b, const char *s, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(b->c->bev);

	conn_write_on(b->c);
	evbuffer_add(out, b->buf, b->n);
	b->n = 0;
	b->spilled = true;
	if (len > b->cap) {
		evbuffer_add(out, s, len);
		return;
	}
	memcpy(b->buf, s, len);
	b->n = len;
}

/* Append a piece: inline, so the constant ones are a few moves. */
static inline void
head_put(struct head_buf *b, const char *s, size_t len)
{
	if (__builtin_expect(b->n + len > b->cap, 0)) {
		head_spill(b, s, len);
		return;
	}
	memcpy(b->buf + b->n, s, len);
	b->n += len;
}

/* Measure the NULL-terminated name, value list and start the response with it. */
int
http_response_start(struct http_request *req, int status, const char *reason,
                    int64_t content_length, const char *const *headers)
{
	struct http_header stack[16], *h = stack;
	size_t n = 0, nh = 0;
	int rc;

	while (headers && headers[n])
		n++;
	if (n % 2 != 0)
		return -1; /* a name without a value */
	if (n / 2 > sizeof(stack) / sizeof(stack[0]))
		h = xcalloc(n / 2, sizeof(*h));
	for (size_t i = 0; i < n; i += 2)
		h[nh++] = (struct http_header){headers[i], headers[i + 1], strlen(headers[i]),
		                               strlen(headers[i + 1])};
	rc = http_response_start_n(req, status, reason, content_length, nh > 0 ? h : NULL, nh);
	if (h != stack)
		free(h);
	return rc;
}

/* Write the status line and headers; choose the framing. */
int
http_response_start_n(struct http_request *req, int status, const char *reason,
                      int64_t content_length, const struct http_header *headers, size_t nh)
{
	struct http_conn *c = req->conn;
	struct http_server *srv;
	struct head_buf b;
	char stack[2048]; /* not zeroed: only stack[0..b.n) is read */
	char num[24];
	bool direct;
	size_t rlen;

	if (c == NULL || req->aborted || req->resp_state != R_NONE || status < 100 || status > 999)
		return -1;
	if (reason == NULL)
		reason = http_status_str((enum http_status)status);
	rlen = strlen(reason);
	if (!header_ok(reason, rlen))
		return -1;
	/* Every name and value checked, before a byte is queued. */
	for (size_t i = 0; i < nh; i++)
		if (headers[i].name == NULL || headers[i].value == NULL ||
		    !header_ok(headers[i].name, headers[i].name_len) ||
		    !header_ok(headers[i].value, headers[i].value_len))
			return -1;
	/*
	 * A response of known length on plain TCP, with nothing of an earlier
	 * one still queued, is put together in srv->wbuf (see pending_send).
	 */
	srv = c->srv;
	direct = !c->tls && content_length >= 0 &&
	         evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
	b.c = c;
	b.n = 0;
	b.spilled = false;
	if (direct) {
		pending_flush(srv); /* another connection's: to its evbuffer */
		b.buf = srv->wbuf;
		b.cap = WBUF_CAP;
	} else {
		conn_write_on(c);
		b.buf = stack;
		b.cap = sizeof(stack);
	}
	head_put(&b, req->minor ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
	/* The status has three digits (checked above). */
	num[0] = (char)('0' + status / 100);
	num[1] = (char)('0' + status / 10 % 10);
	num[2] = (char)('0' + status % 10);
	num[3] = ' ';
	head_put(&b, num, 4);
	head_put(&b, reason, rlen);
	head_put(&b, "\r\n", 2);
	for (size_t i = 0; i < nh; i++) {
		head_put(&b, headers[i].name, headers[i].name_len);
		head_put(&b, ": ", 2);
		head_put(&b, headers[i].value, headers[i].value_len);
		head_put(&b, "\r\n", 2);
	}
	if (content_length >= 0) {
		head_put(&b, "Content-Length: ", 16);
		head_put(&b, num, fmt_u64(num, (uint64_t)content_length));
		head_put(&b, "\r\n", 2);
		req->resp_remaining = content_length;
	} else if (req->minor >= 1) {
		head_put(&b, "Transfer-Encoding: chunked\r\n", 28);
		req->chunked = !req->head;
	} else {
		req->keep_alive = false; /* HTTP/1.0: the close ends the body */
	}
	if (!req->keep_alive)
		head_put(&b, "Connection: close\r\n", 19);
	else if (req->minor == 0)
		head_put(&b, "Connection: keep-alive\r\n", 24);
	head_put(&b, "\r\n", 2);
	if (direct && !b.spilled) {
		srv->wconn = c;
		srv->wlen = b.n;
	} else {
		evbuffer_add(bufferevent_get_output(c->bev), b.buf, b.n);
	}
	if (req->head)
		req->resp_remaining = -1;
	req->resp_state = R_STARTED;
	return 0;
}

/* Queue body bytes with the framing chosen at start; report backpressure. */
int
http_response_write(struct http_request *req, const void *data, size_t len)
{
	struct http_conn *c = req->conn;
	struct evbuffer *out;

	if (c == NULL || req->aborted || req->resp_state != R_STARTED)
		return -1;
	if (len > 0 && !req->head && req->resp_remaining >= 0 &&
	    (uint64_t)len > (uint64_t)req->resp_remaining)
		return -1;
	if (c->srv->wconn == c) {
		struct http_server *srv = c->srv;

		if (len == 0 || req->head)
			return 0;
		/* The whole body, and it fits: it goes out with the head. */
		if ((int64_t)len == req->resp_remaining && srv->wlen + len <= WBUF_CAP) {
			memcpy(srv->wbuf + srv->wlen, data, len);
			srv->wlen += len;
			req->resp_remaining = 0;
			return 0;
		}
		pending_flush(srv);
	}
	out = bufferevent_get_output(c->bev);
	if (len > 0 && !req->head) {
		if (req->resp_remaining >= 0)
			req->resp_remaining -= (int64_t)len;
		if (req->chunked)
			evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add(out, data, len);
		if (req->chunked)
			evbuffer_add(out, "\r\n", 2);
	}
	if (evbuffer_get_length(out) >= c->srv->conf.write_high_water) {
		c->drain_wanted = true;
		bufferevent_setwatermark(c->bev, EV_WRITE, c->srv->conf.write_high_water / 2, 0);
		return 1;
	}
	return 0;
}

/*
 * Plain TCP at the end of a response: write now rather than on the next loop
 * pass, and when it all went out, drop the write interest the queued bytes
 * asked for within this pass (the epoll changelist folds the two): no
 * epoll_ctl and no extra wakeup per answer. conn_write_on() turns it back on
 * before the next bytes are queued; what is left stays libevent's to write.
 */
static void
conn_write_now(struct http_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->tls || evbuffer_get_length(out) == 0)
		return;
	/* A socket bufferevent keeps its output's front frozen except while it writes. */
	evbuffer_unfreeze(out, 1);
	evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) == 0 && c->state == C_READING) {
		bufferevent_disable(c->bev, EV_WRITE);
		c->write_off = true;
		conn_rev_mode(c, true);
	}
}

/*
 * Close the body, free the request, and either close the connection or go
 * back to reading the next (maybe already buffered) request.
 */
int
http_response_end(struct http_request *req)
{
	struct http_conn *c = req->conn;
	bool keep;

	if (c == NULL || req->aborted)
		return -1;
	if (req->resp_state == R_NONE) {
		request_free(c->srv, req);
		c->req = NULL;
		conn_fail(c, 500, "handler ended without a response");
		return -1;
	}
	if (req->chunked)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	keep = req->keep_alive && req->resp_remaining <= 0;
	if (req->resp_remaining > 0)
		srv_log(c->srv, HTTP_LOG_WARN, "http: response shorter than its Content-Length");
	c->req = NULL;
	c->drain_wanted = false;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	request_free(c->srv, req);
	pending_send(c);
	if (!keep) {
		conn_close_after_flush(c);
		return 0;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->state = C_READING;
	c->started = false;
	c->err_status = 0;
	conn_write_now(c);
	conn_arm_idle(c);
	conn_process(c);
	return 0;
}

/*
 * Give up on a response already started (the upstream failed mid-body): the
 * connection is closed without completing the framing, so the client sees a
 * truncated answer rather than a short one that looks whole. req is freed.
 */
void
http_response_abort(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (c == NULL || req->aborted) {
		return;
	}
	srv_log(c->srv, HTTP_LOG_INFO, "http: response abandoned mid-body");
	c->req = NULL;
	request_free(c->srv, req);
	if (c->in_process) {
		/* Called from a handler inside conn_process: close from the loop. */
		c->state = C_CLOSING;
		c->lingering = true;
		event_active(c->timer, EV_TIMEOUT, 1);
		return;
	}
	conn_free(c);
}

/*
 * A lower body cap for this request (from on_headers, before the body is
 * read: nothing of it is on the heap yet, but should it be, the budget is
 * given back what the body's heap shrinks by).
 */
void
http_request_set_body_cap(struct http_request *req, size_t cap)
{
	size_t before = cbuf_heap(&req->body);

	if (req->conn == NULL)
		return; /* dying: nothing more is read */
	cbuf_set_max(&req->body, cap);
	req->conn->srv->body_bytes -= before - cbuf_heap(&req->body);
}

/*
 * Ask for the body of a request that on_headers left waiting. The work is
 * done outside the handler's call (conn_body_resume: from conn_headers when
 * called inside on_headers, else from the connection's timer made active),
 * so that on_request or on_abort never run inside it. Ignored unless req is
 * waiting and unanswered.
 */
void
http_request_resume_body(struct http_request *req)
{
	struct http_conn *c = req->conn;

	if (c == NULL || req->aborted || c->req != req || c->state != C_WAITING ||
	    req->resp_state != R_NONE || c->resume_pending)
		return;
	c->resume_pending = true;
	if (!c->in_headers)
		event_active(c->timer, EV_TIMEOUT, 1);
}

/*
 * Stop accepting: close every listening socket; open connections go on. For
 * a draining shutdown.
 */
void
http_server_stop_listening(struct http_server *srv)
{
	struct listener *l;

	while ((l = SLIST_FIRST(&srv->listeners)) != NULL) {
		SLIST_REMOVE_HEAD(&srv->listeners, link);
		event_free(l->ev);
		event_free(l->retry);
		close(l->fd);
		free(l);
	}
}

/* A whole small answer in one call. */
int
http_response_simple(struct http_request *req, int status, const char *content_type,
                     const void *body, size_t len)
{
	const char *hdrs[] = {"Content-Type", content_type, NULL};

	if (http_response_start(req, status, NULL, (int64_t)len, content_type ? hdrs : NULL) ==
	    -1) {
		if (req->conn && !req->aborted && req->resp_state == R_NONE)
			http_response_end(req); /* answers 500 and frees req */
		return -1;
	}
	if (http_response_write(req, body, len) == -1)
		return -1;
	return http_response_end(req);
}
