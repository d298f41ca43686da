/*
 * server.c: the admin listener (admin.h): libevent's evhttp on a thread of
 * its own, plain or TLS; sessions, bearer tokens, CSRF and the failed-login
 * limits; /healthz, /metrics, the console's files and the change events. The
 * API's endpoints are in api.c.
 *
 * Everything here runs on the admin thread but admin_new/admin_start/
 * admin_free, which the main thread calls before the thread starts or after
 * it has been told to stop (through a pipe, so that libevent needs no locks).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/admin_int.h"
#include "core/admins.h"
#include "core/json.h"
#include "core/notify.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/tls.h"
#include "store/store.h"
#include "web/web.h"

/* Limits (docs/api.md). */
#define MAX_BODY           (1024 * 1024)
#define MAX_HEADERS        (32 * 1024)
#define IO_TIMEOUT_S       30 /* reading a request, writing an answer; the events keep alive at 15 s */
#define MAX_CONNS          256
#define MAX_STREAMS        32
#define MAX_SESSIONS       1024
#define SESSION_IDLE_S     (8 * 3600)
#define SESSION_MAX_S      (12 * 3600)
#define LOGIN_WINDOW_S     (15 * 60)
#define LOGIN_MAX_FAILS    10
#define LOGIN_PASSWORD_MAX 4096
#define LIMIT_KEYS_MAX     8192
#define EVENTS_KEEPALIVE   15 /* ticks of one second */
#define SESSION_COOKIE     "abqd_session"
#define ID_BYTES           32

/* An administrator's session (in memory only: a restart logs everyone out). */
struct session {
	unsigned char id[ID_BYTES];
	char csrf[2 * ID_BYTES + 1];
	char *name;
	int64_t created;
	int64_t last_used;
	LIST_ENTRY(session) link;
};

/* Failed logins of one key (an address, a name, or an address and a name). */
struct limit {
	char *key;
	int64_t fails[LOGIN_MAX_FAILS]; /* a ring of the last failures' times */
	unsigned next;
	TAILQ_ENTRY(limit) link; /* newest first */
};

/* An event stream (GET /api/v1/events). */
struct stream {
	struct evhttp_request *req;
};

/* A client connection, tracked from its first request to its close. */
struct conn {
	struct admin *a;
	struct evhttp_connection *evcon;
	struct stream *stream; /* when the connection carries the event stream */
	LIST_ENTRY(conn) link;
};

struct admin {
	const struct abq_config *cfg;
	struct event_base *base;
	struct evhttp *http[2]; /* plain, TLS */
	struct tls_ctx *tls;
	struct abq_store *store;
	struct abq_notice_conf notice_buf;
	const struct abq_notice_conf *notices;
	char *notice_admins;
	pthread_t thread;
	bool running;
	int stop_pipe[2];
	struct event *stop_ev;
	struct event *tick_ev;
	LIST_HEAD(, conn) conns;
	size_t nconns;
	size_t nstreams;
	int64_t last_seq;
	unsigned ticks;
	LIST_HEAD(, session) sessions;
	size_t nsessions;
	TAILQ_HEAD(limit_list, limit) limits;
	size_t nlimits;
};

/* The admin thread's own store handle, for the API's handlers (admin_int.h). */
struct abq_store *
admin_store(struct admin *a)
{
	return a->store;
}

/* The running configuration, for the API's handlers. */
const struct abq_config *
admin_config(struct admin *a)
{
	return a->cfg;
}

/* The notice settings ([smtp], [notices]) the API's template previews and test mails use. */
const struct abq_notice_conf *
admin_notices(struct admin *a)
{
	return a->notices;
}

/* ------------------------------------------------------------------ answers */

/*
 * Headers every answer carries (the event stream's too): nothing is framed or
 * sniffed, nothing cached unless the answer said otherwise; type may be NULL.
 */
static void
common_headers(struct evkeyvalq *h, const char *type)
{
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	if (type != NULL)
		evhttp_add_header(h, "Content-Type", type);
	if (evhttp_find_header(h, "Cache-Control") == NULL)
		evhttp_add_header(h, "Cache-Control", "no-store");
}

/* The reason phrase of the statuses the admin listener answers with (evhttp wants one). */
static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 429:
		return "Too Many Requests";
	default:
		return status >= 500 ? "Service Unavailable" : "OK";
	}
}

/* Send a whole answer of type with the common headers, noting its status for the log line. */
static void
send_buffer(struct admin_req *r, int status, const char *type, const void *data, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *b = evbuffer_new();

	common_headers(h, type);
	if (data != NULL && len > 0)
		evbuffer_add(b, data, len);
	r->status = status;
	evhttp_send_reply(r->req, status, reason_phrase(status), b);
	evbuffer_free(b);
}

/*
 * Send body (consumed) as compact JSON; an answer that cannot be encoded
 * becomes a 503 in the API's error shape, so that the client always gets JSON.
 */
void
admin_reply_json(struct admin_req *r, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	size_t n = s != NULL ? strlen(s) : 0;

	json_decref(body);
	if (s == NULL) {
		s = xstrdup("{\"error\":{\"status\":503,\"code\":\"unavailable\",\"message\":"
		            "\"cannot encode the answer\"}}");
		n = strlen(s);
		status = 503;
	}
	s = xrealloc(s, n + 2);
	s[n++] = '\n';
	send_buffer(r, status, "application/json; charset=utf-8", s, n);
	free(s);
}

/*
 * Send the API's error shape, {"error": {"status", "code", "message"}}, with
 * the message formatted from fmt: one shape for the console and scripts to
 * read.
 */
void
admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	json_t *o = json_object(), *e = json_object();

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	json_object_set_new(e, "status", json_integer(status));
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", jstr(msg));
	json_object_set_new(o, "error", e);
	free(msg);
	admin_reply_json(r, status, o);
}

/*
 * A registry write that did not happen: 409 when the registry refused it (rc >
 * 0: the message says why), 503 when the store failed; errmsg is freed.
 */
void
admin_reply_registry(struct admin_req *r, int rc, char *errmsg)
{
	if (rc > 0)
		admin_reply_error(r, 409, "refused", "%s", errmsg != NULL ? errmsg : "refused");
	else
		admin_reply_error(r, 503, "unavailable", "%s",
		                  errmsg != NULL ? errmsg : "the store failed");
	free(errmsg);
}

/* 405 with Allow: the path exists, the method does not. */
void
admin_reply_method(struct admin_req *r, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
	admin_reply_error(r, 405, "method_not_allowed", "%s %s: use %s", r->method_name, r->path,
	                  allow);
}

/*
 * The request's body as a JSON object (empty: {} when empty_ok); NULL after a
 * 400 saying what is wrong. evhttp caps the body's size before this runs.
 */
json_t *
admin_body(struct admin_req *r, bool empty_ok)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *j;

	if (len == 0) {
		if (empty_ok)
			return json_object();
		admin_reply_error(r, 400, "bad_request", "the request has no JSON body");
		return NULL;
	}
	j = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		admin_reply_error(r, 400, "bad_request", "the body is not JSON: %s (line %d)",
		                  jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		admin_reply_error(r, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* The value of query parameter name, or NULL (the first one when it is repeated). */
const char *
admin_query(struct admin_req *r, const char *name)
{
	return evhttp_find_header(&r->query, name);
}

/* ----------------------------------------------------------------- sessions */

/* Free a session, wiping its id and CSRF token first. */
static void
session_free(struct session *s)
{
	free(s->name);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* n bytes as 2n lower-case hex digits and a NUL in out (session ids, CSRF tokens). */
static void
hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Exactly 2n hex digits into n bytes; -1 for anything else (a cookie is the peer's text). */
static int
unhex(const char *s, unsigned char *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* Drop expired sessions; with the table full, the least recently used too. */
static void
sessions_prune(struct admin *a, int64_t now, bool make_room)
{
	struct session *s, *tmp, *lru = NULL;

	for (s = LIST_FIRST(&a->sessions); s != NULL; s = tmp) {
		tmp = LIST_NEXT(s, link);
		if (now - s->last_used > SESSION_IDLE_S || now - s->created > SESSION_MAX_S) {
			LIST_REMOVE(s, link);
			session_free(s);
			a->nsessions--;
			continue;
		}
		if (lru == NULL || s->last_used < lru->last_used)
			lru = s;
	}
	if (make_room && a->nsessions >= MAX_SESSIONS && lru != NULL) {
		LIST_REMOVE(lru, link);
		session_free(lru);
		a->nsessions--;
	}
}

/*
 * A new session for name, with a random id and CSRF token; the table is pruned
 * first, its least recently used session dropped when it is full, so that
 * logins cannot grow memory without bound.
 */
static struct session *
session_new(struct admin *a, const char *name, int64_t now)
{
	struct session *s = xcalloc(1, sizeof(*s));
	unsigned char csrf[ID_BYTES];

	if (RAND_bytes(s->id, ID_BYTES) != 1 || RAND_bytes(csrf, ID_BYTES) != 1)
		fatalx("no random bytes for a session id");
	hex(csrf, ID_BYTES, s->csrf);
	OPENSSL_cleanse(csrf, sizeof(csrf));
	s->name = xstrdup(name);
	s->created = s->last_used = now;
	sessions_prune(a, now, true);
	LIST_INSERT_HEAD(&a->sessions, s, link);
	a->nsessions++;
	return s;
}

/* The value of cookie name in a Cookie header, as a new string, or NULL. */
static char *
cookie_value(const char *header, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = header; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return xstrndup(p + nlen + 1, len - nlen - 1);
		p = end;
	}
	return NULL;
}

/* The live session named by the request's cookie, or NULL. */
static struct session *
session_of(struct admin *a, struct evhttp_request *req, int64_t now)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	unsigned char id[ID_BYTES];
	char *v = h != NULL ? cookie_value(h, SESSION_COOKIE) : NULL;
	struct session *found = NULL;

	if (v == NULL)
		return NULL;
	if (unhex(v, id, ID_BYTES) == 0) {
		sessions_prune(a, now, false);
		struct session *s;
		LIST_FOREACH(s, &a->sessions, link)
			if (CRYPTO_memcmp(s->id, id, ID_BYTES) == 0)
				found = s;
	}
	OPENSSL_cleanse(id, sizeof(id));
	OPENSSL_cleanse(v, strlen(v));
	free(v);
	if (found != NULL)
		found->last_used = now;
	return found;
}

/* Log a session out: unlink and free it (its cookie no longer opens anything). */
static void
session_drop(struct admin *a, struct session *gone)
{
	struct session *s;

	LIST_FOREACH(s, &a->sessions, link)
		if (s == gone) {
			LIST_REMOVE(gone, link);
			session_free(gone);
			a->nsessions--;
			return;
		}
}

/* ------------------------------------------------------- failed-login limits */

/*
 * The failed-login record of key; with create, made when absent, after the keys
 * whose failures are all out of the window are forgotten and, with the table
 * still full, the oldest key dropped (LIMIT_KEYS_MAX bounds what failing peers
 * can make abqd keep).
 */
static struct limit *
limit_find(struct admin *a, const char *key, bool create, int64_t now)
{
	struct limit *l, *tmp;

	TAILQ_FOREACH(l, &a->limits, link)
		if (strcmp(l->key, key) == 0)
			return l;
	if (!create)
		return NULL;
	/* Forget keys whose every failure is out of the window. */
	for (l = TAILQ_FIRST(&a->limits); l != NULL; l = tmp) {
		tmp = TAILQ_NEXT(l, link);
		int64_t newest = l->fails[(l->next + LOGIN_MAX_FAILS - 1) % LOGIN_MAX_FAILS];
		if (now - newest > LOGIN_WINDOW_S) {
			TAILQ_REMOVE(&a->limits, l, link);
			free(l->key);
			free(l);
			a->nlimits--;
		}
	}
	/* Still full: the key first entered longest ago goes (the list's tail). */
	if (a->nlimits >= LIMIT_KEYS_MAX && (l = TAILQ_LAST(&a->limits, limit_list)) != NULL) {
		TAILQ_REMOVE(&a->limits, l, link);
		free(l->key);
		free(l);
		a->nlimits--;
	}
	l = xcalloc(1, sizeof(*l));
	l->key = xstrdup(key);
	TAILQ_INSERT_HEAD(&a->limits, l, link);
	a->nlimits++;
	return l;
}

/* Seconds until key may try again (0: now), and how many failures it has in the window. */
static int64_t
limit_wait(struct admin *a, const char *key, int64_t now, unsigned *fails_r)
{
	struct limit *l = limit_find(a, key, false, now);
	unsigned n = 0;
	int64_t oldest = 0;

	if (l != NULL)
		for (unsigned i = 0; i < LOGIN_MAX_FAILS; i++)
			if (l->fails[i] != 0 && now - l->fails[i] < LOGIN_WINDOW_S) {
				if (n++ == 0 || l->fails[i] < oldest)
					oldest = l->fails[i];
			}
	if (fails_r != NULL)
		*fails_r = n;
	if (n < LOGIN_MAX_FAILS)
		return 0;
	return oldest + LOGIN_WINDOW_S - now > 0 ? oldest + LOGIN_WINDOW_S - now : 1;
}

/* Count a failed login against key, in its ring of the last LOGIN_MAX_FAILS failures. */
static void
limit_fail(struct admin *a, const char *key, int64_t now)
{
	struct limit *l = limit_find(a, key, true, now);
	l->fails[l->next] = now;
	l->next = (l->next + 1) % LOGIN_MAX_FAILS;
}

/* ----------------------------------------------------------------- helpers */

/* The client's address, for the log and the limits. */
static const char *
peer_of(struct evhttp_request *req)
{
	char *host = NULL;
	ev_uint16_t port = 0;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &host, &port);
	return host != NULL ? host : "?";
}

/* Whether req came over TLS: the session cookie is then marked Secure. */
static bool
is_tls(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	return bev != NULL && bufferevent_openssl_get_ssl(bev) != NULL;
}

/* ---------------------------------------------------------- connections */

static void stream_end(struct admin *a, struct conn *c);

/* evhttp frees a connection: stop tracking it, ending the event stream it carried. */
static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct admin *a = arg;

	struct conn *c;

	LIST_FOREACH(c, &a->conns, link) {
		if (c->evcon != evcon)
			continue;
		LIST_REMOVE(c, link);
		if (c->stream != NULL)
			stream_end(a, c);
		free(c);
		a->nconns--;
		abq_metrics_connections(true, -1);
		return;
	}
}

/* The connection of req, tracked from now on; NULL when the cap is reached. */
static struct conn *
conn_of(struct admin *a, struct evhttp_request *req, bool *over_r)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *c;

	*over_r = false;
	LIST_FOREACH(c, &a->conns, link)
		if (c->evcon == evcon)
			return c;
	c = xcalloc(1, sizeof(*c));
	c->a = a;
	c->evcon = evcon;
	LIST_INSERT_HEAD(&a->conns, c, link);
	a->nconns++;
	abq_metrics_connections(true, 1);
	evhttp_connection_set_closecb(evcon, on_conn_close, a);
	*over_r = a->nconns > MAX_CONNS;
	return c;
}

/* ---------------------------------------------------------------- events */

/* One chunk of an event stream (an event or a keepalive comment). */
static void
stream_send(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply_chunk(req, b);
	evbuffer_free(b);
}

/*
 * The client went away (its connection is being freed) or the admin side
 * stops. A request whose connection is already gone belongs to us now and is
 * freed by evhttp_send_reply_end; one still on its connection is freed with
 * the connection.
 */
static void
stream_end(struct admin *a, struct conn *c)
{
	struct stream *s = c->stream;

	c->stream = NULL;
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_send_reply_end(s->req);
	free(s);
	a->nstreams--;
}

/*
 * GET /api/v1/events: turn the request into a server-sent event stream (at most
 * MAX_STREAMS, one per connection), starting with a hello carrying the change
 * log's head; on_tick sends an event whenever the head moves.
 */
static void
events_start(struct admin_req *r, struct conn *c)
{
	struct admin *a = r->a;
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	char first[64];

	if (a->nstreams >= MAX_STREAMS) {
		evhttp_add_header(h, "Retry-After", "15");
		admin_reply_error(r, 503, "unavailable", "too many event streams open (at most %d)",
		                  MAX_STREAMS);
		return;
	}
	if (c->stream != NULL) {
		admin_reply_error(r, 400, "bad_request",
		                  "this connection carries a stream already");
		return;
	}
	common_headers(h, "text/event-stream; charset=utf-8");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	r->status = 200;
	evhttp_send_reply_start(r->req, 200, "OK");
	const char *err = NULL;
	int64_t seq = a->last_seq;
	if (abq_store_change_last(a->store, &seq, &err) < 0)
		log_warn("admin: reading the change log: %s", err != NULL ? err : "failed");
	/* With other streams open, the tick still owes them the move to seq. */
	if (a->nstreams == 0)
		a->last_seq = seq;
	c->stream = xcalloc(1, sizeof(*c->stream));
	c->stream->req = r->req;
	a->nstreams++;
	/* The client learns where the log is now; reconnecting clients reload anyway. */
	snprintf(first, sizeof(first), "retry: 3000\nevent: hello\ndata: {\"seq\": %lld}\n\n",
	         (long long)seq);
	stream_send(r->req, first);
}

/*
 * While an event stream is written, evhttp does not read its socket, so a
 * client that went away would only be noticed when a keepalive fails. Peek at
 * each stream's socket instead: an orderly close (recv 0) or an error frees
 * the connection now, so that the stream cap is not held by the departed.
 */
static void
streams_reap(struct admin *a)
{
	struct evhttp_connection *gone[MAX_STREAMS];
	size_t n = 0;
	char b;

	struct conn *c;

	LIST_FOREACH(c, &a->conns, link) {
		if (n >= MAX_STREAMS)
			break;
		if (c->stream == NULL)
			continue;
		struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
		evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
		if (fd < 0)
			continue;
		ssize_t got = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (got == 0 ||
		    (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			gone[n++] = c->evcon;
	}
	/* Freeing runs on_conn_close, which unlinks the conn and ends its stream. */
	for (size_t i = 0; i < n; i++)
		evhttp_connection_free(gone[i]);
}

/* Once a second: the change log's head, an event to every stream when it moved. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	const char *err = NULL;
	int64_t seq = 0;
	char msg[64];
	struct conn *c;

	(void)fd;
	(void)what;
	a->ticks++;
	if (a->nstreams == 0)
		return;
	streams_reap(a);
	if (a->nstreams == 0)
		return;
	if (abq_store_change_last(a->store, &seq, &err) < 0) {
		log_warn("admin: reading the change log: %s", err != NULL ? err : "failed");
		return;
	}
	if (seq != a->last_seq) {
		a->last_seq = seq;
		snprintf(msg, sizeof(msg), "event: change\ndata: {\"seq\": %lld}\n\n",
		         (long long)seq);
		LIST_FOREACH(c, &a->conns, link)
			if (c->stream != NULL)
				stream_send(c->stream->req, msg);
	} else if (a->ticks % EVENTS_KEEPALIVE == 0) {
		LIST_FOREACH(c, &a->conns, link)
			if (c->stream != NULL)
				stream_send(c->stream->req, ": keepalive\n\n");
	}
}

/* --------------------------------------------------------- /healthz, /metrics */

/*
 * GET /healthz: 200 "ok" when the store answers and the upstream answered its
 * last request or probe, else 503, for load balancers.
 */
static void
healthz(struct admin_req *r)
{
	const char *err = NULL;
	int64_t seq;
	bool ok = abq_store_change_last(r->a->store, &seq, &err) == 0 && abq_health_upstream_ok();

	send_buffer(r, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "unhealthy\n",
	            ok ? 3 : 10);
}

/*
 * GET /metrics: the Prometheus text, with the outbox's gauges read from the
 * store at scrape time.
 */
static void
metrics(struct admin_req *r)
{
	struct abq_metrics_gauges g = {0};
	int64_t queued, oldest, failed, unused;
	const char *err = NULL;
	size_t len = 0;

	/* Two aggregate queries: the outbox's rows are never read here. */
	if (abq_store_notice_stats(r->a->store, "queued", &queued, &oldest, &err) == 0 &&
	    abq_store_notice_stats(r->a->store, "failed", &failed, &unused, &err) == 0) {
		int64_t now = abq_now();
		g.have_outbox = true;
		g.outbox_queued = queued;
		g.outbox_failed = failed;
		g.outbox_oldest_age = queued > 0 && now > oldest ? (double)(now - oldest) : 0.0;
	}
	char *text = abq_metrics_render(&g, &len);
	send_buffer(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* ------------------------------------------------------------- page files */

/* The console's files; false when path is none of them. */
static bool
page_file(struct admin_req *r)
{
	const struct abq_web_asset *w = abq_web_asset(r->path);
	struct evkeyvalq *h;
	const char *inm;

	if (w == NULL)
		return false;
	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
		admin_reply_method(r, "GET, HEAD");
		return true;
	}
	h = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "Content-Security-Policy",
	                  "default-src 'self'; img-src 'self' data:; style-src 'self' "
	                  "'unsafe-inline'; frame-ancestors 'none'; form-action 'self'");
	if (w->etag != NULL)
		evhttp_add_header(h, "ETag", w->etag);
	inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
	if (w->etag != NULL && inm != NULL && strcmp(inm, w->etag) == 0) {
		send_buffer(r, 304, NULL, NULL, 0);
		return true;
	}
	send_buffer(r, 200, w->content_type, w->data, w->len);
	return true;
}

/* ---------------------------------------------------------------- login */

/* A string member of body, or NULL (also when there is no body). */
static const char *
body_str(json_t *body, const char *name)
{
	json_t *v = json_object_get(body, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Set (or, with max_age 0, clear) the session cookie: HttpOnly,
 * SameSite=Strict, and Secure over TLS, so that scripts and other sites cannot
 * use it.
 */
static void
set_cookie(struct admin_req *r, const char *value, int max_age)
{
	char *c = xasprintf("%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s",
	                    SESSION_COOKIE, value, max_age, is_tls(r->req) ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie", c);
	OPENSSL_cleanse(c, strlen(c));
	free(c);
}

/* 429 with Retry-After: the login is refused while the key has too many recent failures. */
static void
too_many(struct admin_req *r, int64_t wait)
{
	char ra[24];
	snprintf(ra, sizeof(ra), "%lld", (long long)wait);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", ra);
	admin_reply_error(r, 429, "rate_limited",
	                  "too many failed logins; try again in %lld seconds", (long long)wait);
}

/*
 * Whether a Content-Type value names application/json (parameters such as
 * charset allowed): what the console's login sends. A page elsewhere can make
 * a browser post a form (urlencoded, multipart, text/plain) or an untyped body
 * to us without asking first, but not JSON.
 */
static bool
is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

/* The n bytes of an authority (host[:port]) without the scheme's default port. */
static size_t
authority_len(const char *auth, size_t n, bool tls)
{
	const char *dflt = tls ? ":443" : ":80";
	size_t d = strlen(dflt);

	return n > d && memcmp(auth + n - d, dflt, d) == 0 ? n - d : n;
}

/*
 * Whether url (an Origin, or a Referer) is this listener's own origin: its
 * scheme (https on a TLS listener, else http), then the host and port that the
 * request's Host header names, up to the path. A default port may be left out
 * on either side. False without a Host header, and for Origin "null".
 */
static bool
same_origin(struct evhttp_request *req, const char *url)
{
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	bool tls = is_tls(req);
	const char *scheme = tls ? "https://" : "http://", *auth;
	size_t sl = strlen(scheme), al, hl;

	if (host == NULL || host[0] == '\0' || strncasecmp(url, scheme, sl) != 0)
		return false;
	auth = url + sl;
	al = authority_len(auth, strcspn(auth, "/?#"), tls);
	hl = authority_len(host, strlen(host), tls);
	return al == hl && strncasecmp(auth, host, al) == 0;
}

/*
 * Whether a login may come from where the browser says it comes from (login
 * CSRF: a page elsewhere logging the administrator's browser in as someone
 * else). Answers and returns false when not: the body must be JSON, and an
 * Origin (or, without one, a Referer) must be this listener's own. A client
 * that sends neither (a script, curl) is not a browser on another site.
 */
static bool
login_allowed(struct admin_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(h, "Origin");
	const char *referer = evhttp_find_header(h, "Referer");
	const char *from = origin != NULL ? origin : referer;

	if (!is_json_type(evhttp_find_header(h, "Content-Type"))) {
		admin_reply_error(r, 400, "bad_request",
		                  "the login takes a JSON body (Content-Type: application/json)");
		return false;
	}
	if (from != NULL && !same_origin(r->req, from)) {
		admin_reply_error(r, 403, "csrf",
		                  "a login from another site is refused: the %s is not this "
		                  "console's own address",
		                  origin != NULL ? "Origin" : "Referer");
		return false;
	}
	return true;
}

/*
 * POST /api/v1/login. Failures are limited per address, and per name: once a
 * name has had too many, the addresses that failed for it are refused, while
 * one that has not (the administrator elsewhere) may still log in.
 */
static void
login(struct admin_req *r)
{
	struct admin *a = r->a;
	const char *peer = peer_of(r->req);
	int64_t now = abq_now(), wait;
	json_t *body = NULL;
	const char *name_in = NULL, *password = NULL;
	char *errmsg = NULL, *akey = NULL, *nkey = NULL, *pkey = NULL, *name = NULL;
	char logname[4 * ABQ_ADMIN_NAME_MAX + 8];
	unsigned pair_fails = 0;
	int rc;

	/* Refused or answered: the request's bytes are still wiped below. */
	if (!login_allowed(r) || (body = admin_body(r, false)) == NULL)
		goto out;
	name_in = body_str(body, "name");
	password = body_str(body, "password");
	if (name_in == NULL || password == NULL) {
		admin_reply_error(r, 400, "bad_request",
		                  "give \"name\" and \"password\" as strings");
		goto out;
	}
	if (strlen(password) > LOGIN_PASSWORD_MAX) {
		admin_reply_error(r, 400, "bad_request", "the password is longer than %d bytes",
		                  LOGIN_PASSWORD_MAX);
		goto out;
	}
	name = str_lower(xstrndup(name_in, ABQ_ADMIN_NAME_MAX + 1));
	akey = xasprintf("a\n%s", peer);
	nkey = xasprintf("n\n%s", name);
	pkey = xasprintf("p\n%s\n%s", peer, name);
	if ((wait = limit_wait(a, akey, now, NULL)) > 0) {
		abq_metrics_admin_login_failure();
		too_many(r, wait);
		goto out;
	}
	limit_wait(a, pkey, now, &pair_fails);
	if ((wait = limit_wait(a, nkey, now, NULL)) > 0 && pair_fails > 0) {
		abq_metrics_admin_login_failure();
		too_many(r, wait);
		goto out;
	}
	rc = abq_admin_verify(a->store, name, password, now, &errmsg);
	if (rc < 0) {
		admin_reply_registry(r, -1, errmsg);
		errmsg = NULL;
		goto out;
	}
	if (rc > 0) {
		limit_fail(a, akey, now);
		limit_fail(a, nkey, now);
		limit_fail(a, pkey, now);
		abq_metrics_admin_login_failure();
		/* The name is the client's: a "\n" in it must not start a line. */
		log_warn("admin: %s: failed login as %s", peer,
		         log_safe(logname, sizeof(logname), name));
		admin_reply_error(r, 401, "unauthenticated", "wrong name or password");
		goto out;
	}
	struct session *s = session_new(a, name, now);
	char cookie[2 * ID_BYTES + 1];
	hex(s->id, ID_BYTES, cookie);
	set_cookie(r, cookie, SESSION_MAX_S);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	r->who = s->name;
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "csrf", json_string(s->csrf));
	admin_reply_json(r, 200, o);
out:
	/* The password leaves no copy behind: not in the parsed body, not in the request's. */
	if (password != NULL)
		OPENSSL_cleanse((char *)password, strlen(password));
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t inlen = evbuffer_get_length(in);
	if (inlen > 0)
		OPENSSL_cleanse(evbuffer_pullup(in, -1), inlen);
	free(errmsg);
	free(akey);
	free(nkey);
	free(pkey);
	free(name);
	json_decref(body);
}

/* ------------------------------------------------------------- dispatch */

/* Whether path segment i is s. */
static bool
seg_is(struct admin_req *r, size_t i, const char *s)
{
	return i < r->nseg && strcmp(r->seg[i], s) == 0;
}

/* Whether the path is under /api/v1. */
static bool
is_api(struct admin_req *r)
{
	return seg_is(r, 0, "api") && seg_is(r, 1, "v1");
}

/* Split and decode the path; -1 when a part does not decode. */
static int
split_path(struct admin_req *r, const char *path)
{
	const char *p = path;

	if (p[0] != '/')
		return -1;
	for (p++; *p != '\0';) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char *raw = xstrndup(p, len);
		size_t dlen = 0;
		char *dec = evhttp_uridecode(raw, 0, &dlen);
		free(raw);
		if (dec == NULL || strlen(dec) != dlen) {
			free(dec);
			return -1;
		}
		r->seg = xrealloc(r->seg, (r->nseg + 1) * sizeof(char *));
		r->seg[r->nseg++] = dec;
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0') /* a trailing slash: an empty last part */
			break;
	}
	return 0;
}

/* The method's word, for the log line and the Allow header. */
static const char *
method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	default:
		return "OTHER";
	}
}

/*
 * A session outlives neither its administrator nor their password: one
 * deleted, or given a new password after the login, is logged out. 0 valid,
 * 1 not (the session is dropped), -1 the store failed (answered).
 */
static int
session_check(struct admin_req *r, struct session *s)
{
	struct abq_admin adm = {0};
	const char *err = NULL;
	int found = abq_store_admin_get(r->a->store, s->name, &adm, &err);
	int64_t password_at = adm.password_at;

	abq_admin_clear(&adm);
	if (found < 0) {
		admin_reply_registry(r, -1, xasprintf("store: %s", err ? err : "unknown error"));
		return -1;
	}
	if (found == 1 && password_at <= s->created)
		return 0;
	char logname[4 * ABQ_ADMIN_NAME_MAX + 8];

	log_info("admin: %s: session ended (%s)", log_text(logname, sizeof(logname), s->name),
	         found == 1 ? "password changed" : "administrator deleted");
	session_drop(r->a, s);
	return 1;
}

/* Who sends the request: a bearer token's or a session's administrator. */
static int
authenticate(struct admin_req *r, struct session **sess_r, char **token_name_r)
{
	const char *authz =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	char *errmsg = NULL;

	*sess_r = NULL;
	*token_name_r = NULL;
	if (authz != NULL) {
		if (strncasecmp(authz, "Bearer ", 7) != 0) {
			admin_reply_error(r, 401, "unauthenticated",
			                  "the Authorization header must be \"Bearer TOKEN\"");
			return -1;
		}
		const char *tok = authz + 7;
		while (*tok == ' ')
			tok++;
		int rc = abq_admin_token_check(r->a->store, tok, abq_now(), token_name_r, &errmsg);
		if (rc < 0) {
			admin_reply_registry(r, -1, errmsg);
			return -1;
		}
		free(errmsg);
		if (rc > 0) {
			admin_reply_error(r, 401, "unauthenticated",
			                  "the bearer token is not valid");
			return -1;
		}
		r->who = *token_name_r;
		return 0;
	}
	*sess_r = session_of(r->a, r->req, abq_now());
	if (*sess_r != NULL) {
		int rc = session_check(r, *sess_r);
		if (rc < 0)
			return -1;
		if (rc > 0)
			*sess_r = NULL;
	}
	if (*sess_r != NULL)
		r->who = (*sess_r)->name;
	return 0;
}

/*
 * Every request to the admin listener: tracked per connection (capped), its
 * path split and decoded; /healthz, the login, the console's files and (if
 * public) /metrics answer without a session; everything else needs a session
 * (with its CSRF token on writes) or a bearer token, then goes to the session,
 * logout, events or API routes. One log line per request.
 */
static void
on_request(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	struct admin_req r = {.a = a, .req = req};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct session *sess = NULL;
	char *token_name = NULL, *who_copy = NULL;
	char logpath[512], logwho[4 * ABQ_ADMIN_NAME_MAX + 8];
	bool over;
	struct conn *c;

	TAILQ_INIT(&r.query);
	r.method = evhttp_request_get_command(req);
	r.method_name = method_name(r.method);
	r.path = xstrdup(path != NULL && path[0] != '\0' ? path : "/");
	c = conn_of(a, req, &over);
	if (over) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
		admin_reply_error(&r, 503, "unavailable", "too many admin connections");
		goto done;
	}
	if (split_path(&r, r.path) < 0 ||
	    (query != NULL && evhttp_parse_query_str(query, &r.query) < 0)) {
		admin_reply_error(&r, 400, "bad_request", "the path or the query does not decode");
		goto done;
	}
	/* What answers without a session. */
	if (r.nseg == 1 && strcmp(r.seg[0], "healthz") == 0) {
		healthz(&r);
		goto done;
	}
	if (is_api(&r) && r.nseg == 3 && strcmp(r.seg[2], "login") == 0) {
		if (r.method != EVHTTP_REQ_POST)
			admin_reply_method(&r, "POST");
		else
			login(&r);
		goto done;
	}
	if (!is_api(&r) && page_file(&r))
		goto done;
	if (r.nseg == 1 && strcmp(r.seg[0], "metrics") == 0 && a->cfg->admin_metrics_public) {
		metrics(&r);
		goto done;
	}
	if (authenticate(&r, &sess, &token_name) < 0)
		goto done;
	if (r.who == NULL) {
		admin_reply_error(&r, 401, "unauthenticated", "log in first (POST /api/v1/login)");
		goto done;
	}
	if (sess != NULL && (r.method == EVHTTP_REQ_POST || r.method == EVHTTP_REQ_PUT ||
	                     r.method == EVHTTP_REQ_DELETE)) {
		const char *t =
		    evhttp_find_header(evhttp_request_get_input_headers(req), "X-CSRF-Token");
		if (t == NULL || strlen(t) != strlen(sess->csrf) ||
		    CRYPTO_memcmp(t, sess->csrf, strlen(sess->csrf)) != 0) {
			admin_reply_error(&r, 403, "csrf",
			                  "a missing or wrong X-CSRF-Token header (the session's "
			                  "csrf value)");
			goto done;
		}
	}
	if (r.nseg == 1 && strcmp(r.seg[0], "metrics") == 0) {
		if (r.method != EVHTTP_REQ_GET)
			admin_reply_method(&r, "GET");
		else
			metrics(&r);
	} else if (!is_api(&r)) {
		admin_reply_error(&r, 404, "not_found", "nothing at %s", r.path);
	} else if (r.nseg == 3 && strcmp(r.seg[2], "session") == 0) {
		if (r.method != EVHTTP_REQ_GET) {
			admin_reply_method(&r, "GET");
		} else {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(r.who));
			json_object_set_new(o, "csrf",
			                    sess != NULL ? json_string(sess->csrf) : json_null());
			admin_reply_json(&r, 200, o);
		}
	} else if (r.nseg == 3 && strcmp(r.seg[2], "logout") == 0) {
		if (r.method != EVHTTP_REQ_POST) {
			admin_reply_method(&r, "POST");
		} else {
			who_copy = xstrdup(r.who);
			r.who = who_copy;
			if (sess != NULL)
				session_drop(a, sess);
			sess = NULL;
			set_cookie(&r, "", 0);
			json_t *o = json_object();
			json_object_set_new(o, "ok", json_true());
			admin_reply_json(&r, 200, o);
		}
	} else if (r.nseg == 3 && strcmp(r.seg[2], "events") == 0) {
		if (r.method != EVHTTP_REQ_GET)
			admin_reply_method(&r, "GET");
		else
			events_start(&r, c);
	} else {
		api_dispatch(&r);
	}
done:
	/* One log line stays one line, whatever bytes the path held: escaped. */
	log_text(logpath, sizeof(logpath), r.path);
	/* A load balancer's probes every few seconds would drown the log at info. */
	if (r.nseg == 1 && strcmp(r.seg[0], "healthz") == 0 && r.status == 200)
		log_debug("admin %s - %s %s %d", peer_of(req), r.method_name, logpath, r.status);
	else
		log_info("admin %s %s %s %s %d", peer_of(req),
		         r.who != NULL ? log_text(logwho, sizeof(logwho), r.who) : "-",
		         r.method_name, logpath, r.status);
	for (size_t i = 0; i < r.nseg; i++)
		free(r.seg[i]);
	free(r.seg);
	free(r.path);
	free(token_name);
	free(who_copy);
	evhttp_clear_headers(&r.query);
}

/* ---------------------------------------------------------------- TLS */

/*
 * evhttp's bufferevent factory for a TLS listener: a server-side OpenSSL
 * bufferevent on the listener's context.
 */
static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct admin *a = arg;
	SSL *ssl = SSL_new(tls_ctx_get(a->tls));

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

/* ---------------------------------------------------------------- life */

/* The main thread's word through the pipe: 'q' stops the loop, 'r' reloads the certificate. */
static void
on_control(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	const char *err = NULL;
	char b[16];
	ssize_t n;

	(void)what;
	while ((n = read(fd, b, sizeof(b))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == 'q') {
				event_base_loopbreak(a->base);
				return;
			}
			if (b[i] != 'r' || a->tls == NULL)
				continue;
			/* tls_ctx is not thread-safe: it is swapped here, on its own thread. */
			if (tls_reload(a->tls, &err) < 0)
				log_error("reload: the admin listener's TLS certificate not "
				          "reloaded, the "
				          "old one stays: %s",
				          err);
			else
				log_info(
				    "reload: the admin listener's TLS certificate reloaded for new "
				    "connections");
		}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		log_warn("admin: control pipe: %s", strerror(errno));
}

/*
 * SIGHUP: ask the admin thread to reload its TLS certificate (tls_ctx is not
 * thread-safe: the thread swaps it itself, on_control).
 */
void
admin_reload(struct admin *a)
{
	char b = 'r';

	if (a != NULL && a->running && write(a->stop_pipe[1], &b, 1) < 0)
		log_warn("admin: cannot ask for a reload: %s", strerror(errno));
}

/* The admin listener's thread: its own event loop, until on_control breaks it. */
static void *
admin_thread(void *arg)
{
	struct admin *a = arg;
	event_base_dispatch(a->base);
	return NULL;
}

/* The evhttp of plain (tls false) or TLS listeners, made on first use. */
static struct evhttp *
http_of(struct admin *a, bool tls)
{
	struct evhttp *h = a->http[tls];

	if (h != NULL)
		return h;
	if ((h = evhttp_new(a->base)) == NULL)
		return NULL;
	evhttp_set_max_body_size(h, MAX_BODY);
	evhttp_set_max_headers_size(h, MAX_HEADERS);
	evhttp_set_timeout(h, IO_TIMEOUT_S);
	/* A body over the cap is read and dropped, so that the client gets its 413. */
	evhttp_set_flags(h, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(h, on_request, a);
	if (tls)
		evhttp_set_bevcb(h, tls_bev, a);
	a->http[tls] = h;
	return h;
}

/*
 * Make the admin listener and bind every [admin] listen address (before
 * privileges are dropped: a low port needs root); admin_start runs it.
 */
struct admin *
admin_new(const struct abq_config *cfg, char **errmsg_r)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	const char *err = NULL;

	a->cfg = cfg;
	TAILQ_INIT(&a->limits);
	a->stop_pipe[0] = a->stop_pipe[1] = -1;
	if ((a->base = event_base_new()) == NULL) {
		*errmsg_r = xstrdup("admin: cannot start an event loop");
		goto fail;
	}
	for (size_t i = 0; i < cfg->admin_listen_count; i++) {
		const struct abq_listen *l = &cfg->admin_listen[i];
		struct evhttp *h;
		long long port;
		if (l->tls && a->tls == NULL &&
		    (a->tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, &err)) == NULL) {
			*errmsg_r = xasprintf("admin: tls: %s", err);
			goto fail;
		}
		if ((h = http_of(a, l->tls)) == NULL) {
			*errmsg_r = xstrdup("admin: cannot make the HTTP server");
			goto fail;
		}
		if (parse_int(l->port, 0, 65535, &port, &err) < 0) {
			*errmsg_r = xasprintf("admin: listen port %s: %s", l->port, err);
			goto fail;
		}
		errno = 0;
		if (evhttp_bind_socket_with_handle(h, l->host, (ev_uint16_t)port) == NULL) {
			*errmsg_r =
			    xasprintf("admin: listen %s%s:%s: %s", l->tls ? "tls:" : "", l->host,
			              l->port, errno != 0 ? strerror(errno) : "cannot bind");
			goto fail;
		}
		log_info("admin: listening on %s%s:%s", l->tls ? "tls:" : "", l->host, l->port);
	}
	return a;
fail:
	admin_free(&a);
	return NULL;
}

/*
 * Open the admin thread's store handle, read the change log's head, set up the
 * control pipe and the one-second tick, and start the thread.
 */
int
admin_start(struct admin *a, char **errmsg_r)
{
	const char *err = NULL;
	struct timeval second = {1, 0};

	a->store = abq_store_open(a->cfg->store_url, a->cfg->base_dir, 0, &err);
	if (a->store == NULL) {
		*errmsg_r = xasprintf("admin: store: %s", err != NULL ? err : "cannot open");
		return -1;
	}
	if (abq_store_change_last(a->store, &a->last_seq, &err) < 0)
		a->last_seq = 0;
	a->notices = abq_notice_conf_from(a->cfg, &a->notice_buf, &a->notice_admins);
	if (pipe2(a->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		*errmsg_r = xasprintf("admin: pipe: %s", strerror(errno));
		return -1;
	}
	a->stop_ev = event_new(a->base, a->stop_pipe[0], EV_READ | EV_PERSIST, on_control, a);
	a->tick_ev = event_new(a->base, -1, EV_PERSIST, on_tick, a);
	event_add(a->stop_ev, NULL);
	event_add(a->tick_ev, &second);
	if (pthread_create(&a->thread, NULL, admin_thread, a) != 0) {
		*errmsg_r = xstrdup("admin: cannot start its thread");
		return -1;
	}
	a->running = true;
	return 0;
}

/*
 * Stop the thread, end the event streams, then free the listeners, the
 * connections, the sessions and the login limits, the store handle and the TLS
 * context.
 */
void
admin_free(struct admin **ap)
{
	struct admin *a = *ap;
	struct conn *c;
	struct session *s;
	struct limit *l;

	if (a == NULL)
		return;
	if (a->running) {
		char b = 'q';
		if (write(a->stop_pipe[1], &b, 1) < 0)
			log_warn("admin: cannot stop the thread: %s", strerror(errno));
		pthread_join(a->thread, NULL);
		a->running = false;
	}
	/* End the event streams while their connections still stand, then free them all. */
	LIST_FOREACH(c, &a->conns, link)
		if (c->stream != NULL) {
			struct stream *st = c->stream;
			c->stream = NULL;
			evhttp_send_reply_end(st->req);
			free(st);
			a->nstreams--;
		}
	for (int i = 0; i < 2; i++)
		if (a->http[i] != NULL)
			evhttp_free(a->http[i]);
	while ((c = LIST_FIRST(&a->conns)) != NULL) {
		LIST_REMOVE(c, link);
		free(c);
		abq_metrics_connections(true, -1);
	}
	if (a->stop_ev != NULL)
		event_free(a->stop_ev);
	if (a->tick_ev != NULL)
		event_free(a->tick_ev);
	if (a->base != NULL) {
		event_base_loop(a->base, EVLOOP_NONBLOCK);
		event_base_free(a->base);
	}
	for (int i = 0; i < 2; i++)
		if (a->stop_pipe[i] >= 0)
			close(a->stop_pipe[i]);
	while ((s = LIST_FIRST(&a->sessions)) != NULL) {
		LIST_REMOVE(s, link);
		session_free(s);
	}
	while ((l = TAILQ_FIRST(&a->limits)) != NULL) {
		TAILQ_REMOVE(&a->limits, l, link);
		free(l->key);
		free(l);
	}
	if (a->store != NULL)
		abq_store_close(&a->store);
	tls_ctx_free(&a->tls);
	free(a->notice_admins);
	free(a);
	*ap = NULL;
}
