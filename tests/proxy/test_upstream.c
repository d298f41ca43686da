/*
 * test_upstream.c: the upstream HTTP client (src/proxy/upstream.c) against
 * a small scripted HTTP server written here on raw libevent bufferevents,
 * running on 127.0.0.1 in the same event loop. Each test picks the server's
 * behaviour (echo, chunked, until-EOF, streaming, silent, hold, malformed,
 * TLS) and checks what the client reports and what the server saw
 * (connections accepted and closed).
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "proxy/upstream.h"

/* ---- the scripted server ---- */

enum srv_mode {
	M_ECHO,        /* 200, Content-Length, body "METHOD TARGET BODY", keep-alive */
	M_CHUNKED,     /* chunked "hello world", a long trailer */
	M_EOF,         /* no length, Connection: close, body until EOF */
	M_HTTP10,      /* HTTP/1.0 with Content-Length, connection left open */
	M_STREAM,      /* STREAM_TOTAL bytes, 64 KiB every 2 ms */
	M_SLOW_STREAM, /* 1 KiB every 50 ms, never ends */
	M_SILENT,      /* reads the request, never answers */
	M_HOLD,        /* answers after 3 s */
	M_MALFORMED,   /* garbage status line */
	M_BIG_HEADER,  /* a 70 KiB header */
	M_MANY,        /* 40 headers, one of them empty */
	M_EDGE_HEADER, /* an X-Big header of srv.edge_len bytes, then Content-Length: 0 */
};

#define STREAM_TOTAL (4 * 1024 * 1024)
#define STREAM_PIECE (64 * 1024)

struct srv;

struct sconn {
	struct sconn *next;
	struct srv *s;
	struct bufferevent *bev;
	struct event *timer;
	size_t left; /* streaming bytes still to write */
	bool answered;
	bool close_after; /* close once the output is flushed */
};

struct srv {
	struct event_base *base;
	struct evconnlistener *lis;
	SSL_CTX *ssl;
	int port;
	enum srv_mode mode;
	int accepted;
	int peer_closed; /* connections the client closed */
	int requests;
	struct timeval peer_closed_at;
	struct sconn *conns;
	char last_req[8192];
	size_t edge_len; /* M_EDGE_HEADER */
};

/* Milliseconds since an arbitrary origin. */
static int64_t
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Free a server connection (closing its socket). */
static void
sconn_free(struct sconn *sc)
{
	struct sconn **pp;

	for (pp = &sc->s->conns; *pp; pp = &(*pp)->next)
		if (*pp == sc) {
			*pp = sc->next;
			break;
		}
	if (sc->timer)
		event_free(sc->timer);
	bufferevent_free(sc->bev);
	free(sc);
}

/* Write formatted text to the connection. */
static void sc_printf(struct sconn *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
sc_printf(struct sconn *sc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(sc->bev), fmt, ap);
	va_end(ap);
}

/* Streaming timer: write the next piece (M_STREAM, M_SLOW_STREAM, M_HOLD). */
static void
sc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sconn *sc = arg;
	struct timeval tv = {0, 2000};

	if (sc->s->mode == M_HOLD) {
		sc_printf(sc, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld");
		return;
	}
	if (sc->s->mode == M_SLOW_STREAM) {
		char piece[1024];

		memset(piece, 's', sizeof(piece));
		evbuffer_add(bufferevent_get_output(sc->bev), piece, sizeof(piece));
		tv.tv_usec = 50000;
		evtimer_add(sc->timer, &tv);
		return;
	}
	{
		static char piece[STREAM_PIECE];
		size_t n = sc->left < sizeof(piece) ? sc->left : sizeof(piece);

		memset(piece, 'x', n);
		evbuffer_add(bufferevent_get_output(sc->bev), piece, n);
		sc->left -= n;
		if (sc->left > 0)
			evtimer_add(sc->timer, &tv);
	}
}

/* Answer one whole request according to the server's mode. */
static void
sc_answer(struct sconn *sc, const char *head, const char *body, size_t blen)
{
	struct srv *s = sc->s;
	char method[16] = "", target[1024] = "";
	struct timeval tv = {0, 0};

	sscanf(head, "%15s %1023s", method, target);
	switch (s->mode) {
	case M_ECHO:
		sc_printf(sc, "HTTP/1.1 200 OK\r\nX-Echo: yes\r\nContent-Length: %zu\r\n\r\n%s %s ",
		          strlen(method) + strlen(target) + 2 + blen, method, target);
		evbuffer_add(bufferevent_get_output(sc->bev), body, blen);
		break;
	case M_CHUNKED:
		sc_printf(sc,
		          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		          "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: %0700d\r\n\r\n",
		          7);
		break;
	case M_EOF:
		sc_printf(sc, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil eof");
		sc->close_after = true;
		break;
	case M_HTTP10:
		sc_printf(sc, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc");
		break;
	case M_STREAM:
		sc_printf(sc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", STREAM_TOTAL);
		sc->left = STREAM_TOTAL;
		evtimer_add(sc->timer, &tv);
		break;
	case M_SLOW_STREAM:
		sc_printf(sc, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n");
		evtimer_add(sc->timer, &tv);
		break;
	case M_SILENT:
		break;
	case M_HOLD:
		tv.tv_sec = 3;
		evtimer_add(sc->timer, &tv);
		break;
	case M_MALFORMED:
		sc_printf(sc, "HTTP/1.1 2x0 What\r\nbroken\r\n\r\n");
		break;
	case M_MANY: {
		char resp[4096];
		size_t n = (size_t)snprintf(resp, sizeof(resp), "HTTP/1.1 200 Fine Thanks\r\n");

		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(resp + n, sizeof(resp) - n, "X-H%d: %.*s\r\n", i,
			                      i % 9, "abcdefghi");
		n += (size_t)snprintf(resp + n, sizeof(resp) - n, "Content-Length: 2\r\n\r\nok");
		bufferevent_write(sc->bev, resp, n);
		break;
	}
	case M_BIG_HEADER: {
		char *big = xmalloc(70 * 1024 + 1);

		memset(big, 'b', 70 * 1024);
		big[70 * 1024] = '\0';
		sc_printf(sc, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", big);
		free(big);
		break;
	}
	case M_EDGE_HEADER: {
		char *big = xmalloc(sc->s->edge_len + 1);

		memset(big, 'e', sc->s->edge_len);
		big[sc->s->edge_len] = '\0';
		sc_printf(sc, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", big);
		free(big);
		break;
	}
	}
}

/* Server read: collect a request (head + Content-Length body), answer it. */
static void
sc_read_cb(struct bufferevent *bev, void *arg)
{
	struct sconn *sc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		size_t hlen, blen = 0;
		char *head, *body, *cl;

		if (end.pos < 0)
			return;
		hlen = (size_t)end.pos + 4;
		head = xmalloc(hlen + 1);
		evbuffer_copyout(in, head, hlen);
		head[hlen] = '\0';
		cl = strcasestr(head, "\r\nContent-Length:");
		if (cl != NULL)
			blen = strtoul(cl + 17, NULL, 10);
		if (evbuffer_get_length(in) < hlen + blen) {
			free(head);
			return;
		}
		evbuffer_drain(in, hlen);
		body = xmalloc(blen + 1);
		evbuffer_remove(in, body, blen);
		body[blen] = '\0';
		snprintf(sc->s->last_req, sizeof(sc->s->last_req), "%s%s", head, body);
		sc->s->requests++;
		sc_answer(sc, head, body, blen);
		free(head);
		free(body);
	}
}

/* Server write drained: close if the answer was close-delimited. */
static void
sc_write_cb(struct bufferevent *bev, void *arg)
{
	struct sconn *sc = arg;

	if (sc->close_after)
		sconn_free(sc);
}

/* The client closed (or reset) the connection: note when. */
static void
sc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sconn *sc = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		sc->s->peer_closed++;
		gettimeofday(&sc->s->peer_closed_at, NULL);
		sconn_free(sc);
	}
}

/* A new connection to the scripted server. */
static void
srv_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
              void *arg)
{
	struct srv *s = arg;
	struct sconn *sc = xcalloc(1, sizeof(*sc));

	sc->s = s;
	if (s->ssl)
		sc->bev = bufferevent_openssl_socket_new(
		    s->base, fd, SSL_new(s->ssl), BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	else
		sc->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(sc->bev);
	sc->timer = evtimer_new(s->base, sc_timer_cb, sc);
	bufferevent_setcb(sc->bev, sc_read_cb, sc_write_cb, sc_event_cb, sc);
	bufferevent_enable(sc->bev, EV_READ | EV_WRITE);
	sc->next = s->conns;
	s->conns = sc;
	s->accepted++;
}

/* Start a server on 127.0.0.1 with an ephemeral port. */
static struct srv *
srv_new(struct event_base *base, enum srv_mode mode, SSL_CTX *ssl)
{
	struct srv *s = xcalloc(1, sizeof(*s));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->base = base;
	s->mode = mode;
	s->ssl = ssl;
	s->lis = evconnlistener_new_bind(base, srv_accept_cb, s,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	                                 (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(s->lis);
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &len);
	s->port = ntohs(sin.sin_port);
	return s;
}

/* Stop the server and close its connections. */
static void
srv_free(struct srv *s)
{
	while (s->conns)
		sconn_free(s->conns);
	evconnlistener_free(s->lis);
	free(s);
}

/* ---- the client side ---- */

struct result {
	struct upstream_req *req;
	int status;
	char reason[64];
	char heads[4096]; /* every header as "name=value;" */
	bool saw_echo_header;
	size_t big_len; /* the X-Big header's 'e's */
	int64_t clen;
	char *body;
	size_t body_len;
	int nbody;
	bool done;
	enum upstream_result result;
	char err[160];
	/* behaviours */
	bool pause_on_first;
	bool cancel_on_first;
	int nbody_at_pause;
	bool pause_ok;
	bool keep;            /* upstream_keep_headers in on_response */
	char kept_body[4096]; /* upstream_req_headers at the first body piece */
	char kept_done[4096]; /* and in on_done */
	struct event_base *base;
	struct event *resume_timer;
};

/* The kept reason and headers (upstream_req_headers) as "reason|name=value;...". */
static void
t_kept(struct result *r, char *out, size_t size)
{
	struct upstream_header few[4], *h = few;
	const char *reason = NULL;
	size_t n = upstream_req_headers(r->req, &reason, few, 4), k;

	if (n > 4) {
		h = xcalloc(n, sizeof(*h));
		assert_int_equal(upstream_req_headers(r->req, &reason, h, n), n);
	}
	k = (size_t)snprintf(out, size, "%s|", reason ? reason : "(none)");
	for (size_t i = 0; i < n && k < size; i++) {
		assert_int_equal(h[i].name_len, strlen(h[i].name));
		assert_int_equal(h[i].value_len, strlen(h[i].value));
		k += (size_t)snprintf(out + k, size - k, "%s=%s;", h[i].name, h[i].value);
	}
	if (h != few)
		free(h);
}

/* on_response: keep the status line and one header. */
static void
t_on_response(void *arg, int status, const char *reason, const struct upstream_header *h, size_t n)
{
	struct result *r = arg;
	size_t i;

	if (r->keep)
		upstream_keep_headers(r->req);
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->clen = upstream_req_content_length(r->req);
	for (i = 0; i < n; i++) {
		assert_int_equal(h[i].name_len, strlen(h[i].name));
		assert_int_equal(h[i].value_len, strlen(h[i].value));
		size_t k = strlen(r->heads);
		snprintf(r->heads + k, sizeof(r->heads) - k, "%s=%s;", h[i].name, h[i].value);
		if (strcasecmp(h[i].name, "X-Echo") == 0 && strcmp(h[i].value, "yes") == 0)
			r->saw_echo_header = true;
		if (strcasecmp(h[i].name, "X-Big") == 0)
			r->big_len = strspn(h[i].value, "e");
	}
}

/* The pause test's timer: nothing may have arrived while paused; resume. */
static void
t_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct result *r = arg;

	r->pause_ok = r->nbody == r->nbody_at_pause;
	upstream_resume(r->req);
}

/* on_body: accumulate; pause or cancel on the first piece if asked. */
static void
t_on_body(void *arg, const void *data, size_t len)
{
	struct result *r = arg;

	r->body = xrealloc(r->body, r->body_len + len + 1);
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	r->nbody++;
	if (r->nbody == 1 && r->keep)
		t_kept(r, r->kept_body, sizeof(r->kept_body));
	if (r->nbody == 1 && r->cancel_on_first) {
		upstream_cancel(r->req);
		return;
	}
	if (r->nbody == 1 && r->pause_on_first) {
		struct timeval tv = {0, 300000};

		upstream_pause(r->req);
		r->nbody_at_pause = r->nbody;
		r->resume_timer = evtimer_new(r->base, t_resume_cb, r);
		evtimer_add(r->resume_timer, &tv);
	}
}

/* on_done: record the result. */
static void
t_on_done(void *arg, enum upstream_result res)
{
	struct result *r = arg;

	assert_false(r->done);
	t_kept(r, r->kept_done, sizeof(r->kept_done));
	r->done = true;
	r->result = res;
	snprintf(r->err, sizeof(r->err), "%s", upstream_req_error(r->req));
}

static const struct upstream_cbs cbs = {t_on_response, t_on_body, t_on_done};

/* Free what a result holds. */
static void
result_clear(struct result *r)
{
	free(r->body);
	if (r->resume_timer)
		event_free(r->resume_timer);
	memset(r, 0, sizeof(*r));
}

struct fixture {
	struct event_base *base;
	struct event *tick;
	struct srv *srv;
	struct upstream *up;
};

/* The ticker only makes EVLOOP_ONCE return regularly. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until *flag or max_ms passed. Returns true if flag was set. */
static bool
run_until(struct fixture *f, const bool *flag, int max_ms)
{
	int64_t end = now_ms() + max_ms;

	while (!(flag && *flag) && now_ms() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	return flag && *flag;
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct fixture *f, int ms)
{
	run_until(f, NULL, ms);
}

static void send_req_spec(struct fixture *f, struct result *r, const char *method,
                          const char *target, const char *body, int timeout, bool fresh);

/* Send a request with the test callbacks; the result goes to r. */
static void
send_req(struct fixture *f, struct result *r, const char *method, const char *target,
         const char *body, int timeout)
{
	send_req_spec(f, r, method, target, body, timeout, false);
}

/* send_req, with the spec's fresh flag (a request that is not idempotent). */
static void
send_req_spec(struct fixture *f, struct result *r, const char *method, const char *target,
              const char *body, int timeout, bool fresh)
{
	/* One header measured by upstream_send, one with its lengths given. */
	struct upstream_header h[] = {
	    {.name = "X-Forwarded-For", .value = "10.0.0.1"},
	    {.name = "User-Agent", .value = "test", .name_len = 10, .value_len = 4}};
	struct upstream_req_spec spec = {
	    .method = method,
	    .target = target,
	    .headers = h,
	    .nheaders = 2,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .timeout = timeout,
	    .fresh = fresh,
	};

	r->base = f->base;
	r->req = upstream_send(f->up, &spec, &cbs, r);
	assert_non_null(r->req);
}

/* Make an upstream client for the fixture's server (or any url). */
static void
make_upstream(struct fixture *f, const char *scheme, int port, const char *ca_file,
              unsigned request_timeout, unsigned idle_timeout)
{
	struct upstream_conf conf = {0};
	const char *err = NULL;
	char *url = xasprintf("%s://127.0.0.1:%d/base", scheme, port);

	conf.url = url;
	conf.ca_file = ca_file;
	conf.connect_timeout = 2;
	conf.request_timeout = request_timeout;
	conf.idle_timeout = idle_timeout;
	f->up = upstream_new(f->base, &conf, &err);
	free(url);
	assert_non_null(f->up);
}

static char tmpdir[64];
static char good_cert[128], good_key[128], other_cert[128], other_key[128];

/* Generate the self-signed certificates the TLS tests use. */
static int
group_setup(void **state)
{
	char *cmd;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_upstream.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(good_cert, sizeof(good_cert), "%s/cert.pem", tmpdir);
	snprintf(good_key, sizeof(good_key), "%s/key.pem", tmpdir);
	snprintf(other_cert, sizeof(other_cert), "%s/other.pem", tmpdir);
	snprintf(other_key, sizeof(other_key), "%s/otherkey.pem", tmpdir);
	cmd = xasprintf(OPENSSL_BIN " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	                            "-nodes -days 2 -subj /CN=127.0.0.1 "
	                            "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
	                            ">/dev/null 2>&1 && " OPENSSL_BIN
	                            " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	                            "-nodes -days 2 -subj /CN=127.0.0.1 "
	                            "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
	                            ">/dev/null 2>&1",
	                good_key, good_cert, other_key, other_cert);
	rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

/* Remove the certificates. */
static int
group_teardown(void **state)
{
	unlink(good_cert);
	unlink(good_key);
	unlink(other_cert);
	unlink(other_key);
	rmdir(tmpdir);
	return 0;
}

/* A fresh loop per test. */
static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct timeval tv = {0, 20000};

	f->base = event_base_new();
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(f->tick, &tv);
	*state = f;
	return 0;
}

/* Free client, server and loop; the loop runs once more so that libevent
 * finishes what bufferevent_free deferred. */
static int
teardown(void **state)
{
	struct fixture *f = *state;

	upstream_free(&f->up);
	if (f->srv)
		srv_free(f->srv);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	event_free(f->tick);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* ---- tests ---- */

/* POST with a body and GET without: what the server got, what came back. */
static void
test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	char host[64];

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	assert_string_equal(upstream_base_path(f->up), "/base");
	assert_int_equal(upstream_port(f->up), f->srv->port);

	send_req(f, &r, "POST", "/base?Cmd=Ping&User=a", "hello", UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_true(r.saw_echo_header);
	assert_string_equal(r.body, "POST /base?Cmd=Ping&User=a hello");
	assert_int_equal(r.clen, (int64_t)r.body_len);
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", f->srv->port);
	assert_non_null(strstr(f->srv->last_req, "POST /base?Cmd=Ping&User=a HTTP/1.1\r\n"));
	assert_non_null(strstr(f->srv->last_req, host));
	assert_non_null(strstr(f->srv->last_req, "\r\nX-Forwarded-For: 10.0.0.1\r\n"));
	assert_non_null(strstr(f->srv->last_req, "\r\nUser-Agent: test\r\n"));
	assert_non_null(strstr(f->srv->last_req, "\r\nContent-Length: 5\r\n\r\nhello"));
	result_clear(&r);

	send_req(f, &r, "GET", "/base/x", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "GET /base/x ");
	assert_null(strcasestr(f->srv->last_req, "Content-Length"));
	result_clear(&r);
}

/*
 * A response with more headers than the request records the ends of, with
 * an empty value: every name and value, with lengths (t_on_response checks
 * them against strlen).
 */
static void
test_many_headers(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	char want[4096];
	size_t n = 0;

	f->srv = srv_new(f->base, M_MANY, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.reason, "Fine Thanks");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "X-H%d=%.*s;", i, i % 9,
		                      "abcdefghi");
	snprintf(want + n, sizeof(want) - n, "Content-Length=2;");
	assert_string_equal(r.heads, want);
	assert_string_equal(r.body, "ok");
	result_clear(&r);
}

/*
 * Headers kept past on_response (upstream_keep_headers) read the same at the
 * first body piece and in on_done: 41 of them (more than the caller's first
 * array), and a chunked answer whose long trailer moves the header block to
 * the heap after the body; not kept, there are none.
 */
static void
test_keep_headers(void **state)
{
	struct fixture *f = *state;
	struct result r = {.keep = true};
	char want[4096 + 16];

	f->srv = srv_new(f->base, M_MANY, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	snprintf(want, sizeof(want), "Fine Thanks|%s", r.heads);
	assert_string_equal(r.kept_body, want);
	assert_string_equal(r.kept_done, want);
	result_clear(&r);
	srv_free(f->srv);

	f->srv = srv_new(f->base, M_CHUNKED, NULL);
	upstream_free(&f->up);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	r = (struct result){.keep = true};
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "hello world");
	assert_string_equal(r.kept_body, "OK|Transfer-Encoding=chunked;");
	assert_string_equal(r.kept_done, "OK|Transfer-Encoding=chunked;");
	result_clear(&r);

	r = (struct result){0};
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_string_equal(r.kept_done, "(none)|");
	result_clear(&r);
}

/* Three sequential requests share one connection. */
static void
test_keepalive_reuse(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	int i;

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	for (i = 0; i < 3; i++) {
		send_req(f, &r, "POST", "/base", "x", UPSTREAM_TIMEOUT_DEFAULT);
		assert_true(run_until(f, &r.done, 5000));
		assert_int_equal(r.result, UPSTREAM_OK);
		result_clear(&r);
	}
	assert_int_equal(f->srv->accepted, 1);
	assert_int_equal(f->srv->requests, 3);
	assert_int_equal(upstream_stats(f->up)->connects, 1);
	assert_int_equal(upstream_stats(f->up)->reuses, 2);
	assert_int_equal(upstream_stats(f->up)->idle, 1);
}

/* A chunked response is de-chunked. */
static void
test_chunked(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_CHUNKED, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.clen, -1);
	assert_string_equal(r.body, "hello world");
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->idle, 1); /* chunked keeps alive */
}

/* A response without length is read until EOF; the connection is not kept. */
static void
test_until_eof(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_EOF, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "until eof");
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
}

/* An HTTP/1.0 answer is not kept alive: the next request connects again. */
static void
test_http10(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_HTTP10, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "abc");
	result_clear(&r);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->connects, 2);
	assert_int_equal(upstream_stats(f->up)->reuses, 0);
}

/* A long response arrives in many pieces, all of it. */
static void
test_stream(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_STREAM, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 20000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.body_len, STREAM_TOTAL);
	assert_true(r.nbody > 1);
	result_clear(&r);
}

/* Paused: no on_body while the server keeps writing; resumed: all arrives. */
static void
test_pause_resume(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_STREAM, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 1, 0);
	r.pause_on_first = true;
	send_req(f, &r, "GET", "/base", NULL, 1);
	assert_true(run_until(f, &r.done, 20000));
	assert_true(r.pause_ok);
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.body_len, STREAM_TOTAL);
	result_clear(&r);
}

/* Paused for longer than the timeout: no TIMEOUT. */
static void
test_pause_stops_clock(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_STREAM, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 1, 0);
	send_req(f, &r, "GET", "/base", NULL, 1);
	while (r.nbody == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	upstream_pause(r.req);
	{
		int n = r.nbody;

		run_for(f, 1500);
		assert_int_equal(r.nbody, n);
		assert_false(r.done);
	}
	upstream_resume(r.req);
	assert_true(run_until(f, &r.done, 20000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.body_len, STREAM_TOTAL);
	result_clear(&r);
}

/* Cancel inside on_body: the server sees the close at once; no callback. */
static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	int64_t t0;

	f->srv = srv_new(f->base, M_SLOW_STREAM, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	r.cancel_on_first = true;
	send_req(f, &r, "GET", "/base", NULL, 0);
	while (r.nbody == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	t0 = now_ms();
	while (f->srv->peer_closed == 0 && now_ms() - t0 < 2000)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->srv->peer_closed, 1);
	assert_true(now_ms() - t0 < 500);
	run_for(f, 200);
	assert_false(r.done);
	assert_int_equal(r.nbody, 1);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
	assert_int_equal(upstream_stats(f->up)->results[UPSTREAM_CANCELLED], 1);
	result_clear(&r);

	/* Cancel outside callbacks, while still waiting for headers. */
	f->srv->mode = M_SILENT;
	send_req(f, &r, "GET", "/base", NULL, 0);
	run_for(f, 100);
	assert_int_equal(f->srv->requests, 2);
	upstream_cancel(r.req);
	run_for(f, 200);
	assert_int_equal(f->srv->peer_closed, 2);
	assert_false(r.done);
	result_clear(&r);
}

/* A host name is resolved (hosts file / DNS) without blocking the loop; a
 * name that does not resolve is CONNECT_FAILED. */
static void
test_hostname(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	struct upstream_conf conf = {0};
	const char *err = NULL;
	char *url;

	f->srv = srv_new(f->base, M_ECHO, NULL);
	url = xasprintf("http://localhost:%d/base", f->srv->port);
	conf.url = url;
	conf.connect_timeout = 2;
	f->up = upstream_new(f->base, &conf, &err);
	free(url);
	assert_non_null(f->up);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_non_null(strstr(f->srv->last_req, "\r\nHost: localhost:"));
	result_clear(&r);
	upstream_free(&f->up);

	conf.url = "http://no-such-host.invalid/";
	f->up = upstream_new(f->base, &conf, &err);
	assert_non_null(f->up);
	send_req(f, &r, "GET", "/", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_CONNECT_FAILED);
	result_clear(&r);
}

/* Nothing listens: CONNECT_FAILED, quickly. */
static void
test_refused(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	struct srv *s = srv_new(f->base, M_ECHO, NULL);
	int port = s->port;
	int64_t t0;

	srv_free(s);
	make_upstream(f, "http", port, NULL, 0, 0);
	t0 = now_ms();
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_false(r.done); /* never called back from inside upstream_send */
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_CONNECT_FAILED);
	assert_true(now_ms() - t0 < 1000);
	assert_non_null(strstr(r.err, "refused"));
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->results[UPSTREAM_CONNECT_FAILED], 1);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
}

/* The server accepts and never answers: TIMEOUT after about 1 s. */
static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	int64_t t0 = now_ms(), dt;

	f->srv = srv_new(f->base, M_SILENT, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "POST", "/base", "x", 1);
	assert_true(run_until(f, &r.done, 5000));
	dt = now_ms() - t0;
	assert_int_equal(r.result, UPSTREAM_TIMEOUT);
	assert_true(dt >= 900 && dt < 2500);
	result_clear(&r);
	run_for(f, 100);
	assert_int_equal(f->srv->peer_closed, 1);
}

/* Timeout 0: a held request answered after 3 s is fine, even with the
 * default request_timeout at 1 s. */
static void
test_held(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	int64_t t0 = now_ms();

	f->srv = srv_new(f->base, M_HOLD, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 1, 0);
	send_req(f, &r, "POST", "/base?Cmd=Ping", "x", 0);
	assert_true(run_until(f, &r.done, 6000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "held");
	assert_true(now_ms() - t0 >= 2900);
	result_clear(&r);
}

/* The server closes the pooled connection just as we reuse it: retried
 * once on a fresh connection, transparently. */
static void
test_stale_pooled(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "POST", "/base", "one", UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->idle, 1);

	/* close the server side, then send before the loop sees the FIN */
	sconn_free(f->srv->conns);
	send_req(f, &r, "POST", "/base", "two", UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "POST /base two");
	result_clear(&r);
	assert_int_equal(f->srv->accepted, 2);
	assert_int_equal(upstream_stats(f->up)->retries, 1);
	assert_int_equal(upstream_stats(f->up)->reuses, 1);
}

/*
 * A request that is not idempotent (SendMail) never rides a pooled
 * connection, so it is never sent twice: with the pooled connection closed
 * by the server it goes out once, on a new connection, and is not retried.
 */
static void
test_fresh_not_pooled(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "POST", "/base", "one", UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->idle, 1);

	sconn_free(f->srv->conns);
	send_req_spec(f, &r, "POST", "/base?Cmd=SendMail", "mail", UPSTREAM_TIMEOUT_DEFAULT, true);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "POST /base?Cmd=SendMail mail");
	result_clear(&r);
	assert_int_equal(f->srv->accepted, 2);
	assert_int_equal(upstream_stats(f->up)->reuses, 0);
	assert_int_equal(upstream_stats(f->up)->retries, 0);
}

/*
 * A body over 16 KiB is written from the caller's buffer, not copied: it
 * arrives whole, and again whole when a stale pooled connection makes the
 * request go out a second time.
 */
static void
test_large_body(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	size_t n = 300 * 1024;
	char *big = xmalloc(n + 1);

	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "POST", "/base", big, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.body_len, strlen("POST /base ") + n);
	assert_memory_equal(r.body + strlen("POST /base "), big, n);
	result_clear(&r);

	sconn_free(f->srv->conns); /* the pooled connection goes stale */
	send_req(f, &r, "POST", "/base", big, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.body_len, strlen("POST /base ") + n);
	assert_memory_equal(r.body + strlen("POST /base "), big, n);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->retries, 1);
	free(big);
}

/* An idle pooled connection is closed after idle_timeout. */
static void
test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 1);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->idle, 1);
	run_for(f, 1500);
	assert_int_equal(upstream_stats(f->up)->idle, 0);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
	assert_int_equal(upstream_stats(f->up)->idle_closed, 1);
	assert_int_equal(f->srv->peer_closed, 1);
}

/*
 * The idle deadline counts from the last time the connection went back to
 * the pool: reused before its first deadline, it outlives that deadline and
 * closes idle_timeout after its second request.
 */
static void
test_idle_timeout_moves(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_ECHO, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 1);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	result_clear(&r);
	run_for(f, 600);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->reuses, 1);
	run_for(f, 650); /* past the first request's deadline, not the second's */
	assert_int_equal(upstream_stats(f->up)->idle, 1);
	assert_int_equal(upstream_stats(f->up)->idle_closed, 0);
	run_for(f, 700);
	assert_int_equal(upstream_stats(f->up)->idle, 0);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
	assert_int_equal(upstream_stats(f->up)->idle_closed, 1);
	assert_int_equal(f->srv->peer_closed, 1);
}

/* Garbage and oversized header blocks are PROTOCOL_ERROR. */
static void
test_malformed(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};

	f->srv = srv_new(f->base, M_MALFORMED, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_PROTOCOL_ERROR);
	assert_string_not_equal(upstream_strerror(r.result), "");
	result_clear(&r);

	f->srv->mode = M_BIG_HEADER;
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_PROTOCOL_ERROR);
	assert_int_equal(r.status, 0); /* on_response never called */
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->conns, 0);
}

/*
 * The response's header block (the reason, every name and value, each with
 * its NUL) is held up to 64 KiB less one byte, out of the request's own 512
 * bytes and onto the heap as it grows: a block at the cap arrives whole, one
 * byte more is a protocol error and on_response is never called.
 */
static void
test_header_block_cap(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	/* "OK\0" "X-Big\0" value "\0" "Content-Length\0" "0\0": 27 bytes and the value. */
	const size_t at_cap = 64 * 1024 - 1 - 27;

	f->srv = srv_new(f->base, M_EDGE_HEADER, NULL);
	make_upstream(f, "http", f->srv->port, NULL, 0, 0);
	f->srv->edge_len = at_cap;
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.big_len, at_cap);
	assert_int_equal(r.clen, 0);
	result_clear(&r);

	f->srv->edge_len = at_cap + 1;
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_PROTOCOL_ERROR);
	assert_int_equal(r.status, 0); /* on_response never called */
	result_clear(&r);

	/* A small one after: the request's own buffer serves again. */
	f->srv->edge_len = 10;
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_int_equal(r.big_len, 10);
	result_clear(&r);
}

/* Bad input to upstream_send and upstream_new. */
static void
test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct upstream_conf conf = {0};
	struct upstream_header h = {.name = "X-Bad", .value = "a\r\nInjected: yes"};
	struct upstream_req_spec spec = {
	    .method = "GET", .target = "/", .headers = &h, .nheaders = 1};
	const char *err = NULL;
	const char *bad[] = {"ftp://x/",    "http://",      "http://h:0/", "http://h:99999/",
	                     "http://u@h/", "http://[::1/", "http://h/a b"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf.url = bad[i];
		err = NULL;
		assert_null(upstream_new(f->base, &conf, &err));
		assert_non_null(err);
	}
	conf.url = "https://[::1]/SOGo/eas";
	conf.ca_file = "/nonexistent/ca.pem";
	assert_null(upstream_new(f->base, &conf, &err));
	conf.ca_file = NULL;
	f->up = upstream_new(f->base, &conf, &err);
	assert_non_null(f->up);
	assert_string_equal(upstream_host(f->up), "::1");
	assert_int_equal(upstream_port(f->up), 443);
	assert_true(upstream_is_tls(f->up));
	assert_string_equal(upstream_base_path(f->up), "/SOGo/eas");
	errno = 0;
	assert_null(upstream_send(f->up, &spec, &cbs, NULL));
	assert_int_equal(errno, EINVAL);
	/* The same refusals when the caller gives the lengths. */
	h.name_len = strlen(h.name);
	h.value_len = strlen(h.value);
	errno = 0;
	assert_null(upstream_send(f->up, &spec, &cbs, NULL));
	assert_int_equal(errno, EINVAL);
	{
		static const char *const names[] = {"X-Bad:", "X Bad", "X-\x7f", "X-Bad\t",
		                                    "Host:evil"};
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			h = (struct upstream_header){.name = names[i],
			                             .value = "v",
			                             .name_len = strlen(names[i]),
			                             .value_len = 1};
			errno = 0;
			assert_null(upstream_send(f->up, &spec, &cbs, NULL));
			assert_int_equal(errno, EINVAL);
			h.name_len = 0; /* measured: the same answer */
			errno = 0;
			assert_null(upstream_send(f->up, &spec, &cbs, NULL));
			assert_int_equal(errno, EINVAL);
		}
	}
	h = (struct upstream_header){
	    .name = "X-Ok", .value = "a\x01b", .name_len = 4, .value_len = 3};
	errno = 0;
	assert_null(upstream_send(f->up, &spec, &cbs, NULL));
	assert_int_equal(errno, EINVAL);
	/* A request line that would not be one: the target or the method. */
	h = (struct upstream_header){.name = "X-Ok", .value = "v"};
	{
		static const char *const targets[] = {"/a b",    "/a\tb", "/a\r\nX: y", "/a\x7f",
		                                      "/a\x01b", "",      "/a HTTP/1.0"};
		for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
			spec.target = targets[i];
			spec.target_len = 0;
			errno = 0;
			assert_null(upstream_send(f->up, &spec, &cbs, NULL));
			assert_int_equal(errno, EINVAL);
			spec.target_len = strlen(targets[i]); /* given: the same answer */
			errno = 0;
			assert_null(upstream_send(f->up, &spec, &cbs, NULL));
			assert_int_equal(errno, EINVAL);
		}
	}
	/* A given length counts every byte: a NUL inside is refused too. */
	spec.target = "/a\0b";
	spec.target_len = 4;
	errno = 0;
	assert_null(upstream_send(f->up, &spec, &cbs, NULL));
	assert_int_equal(errno, EINVAL);
	spec.target = "/";
	spec.target_len = 0;
	{
		static const char *const methods[] = {"", "GE T", "GET\r\n", "G:T", "GET\t"};
		for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
			spec.method = methods[i];
			errno = 0;
			assert_null(upstream_send(f->up, &spec, &cbs, NULL));
			assert_int_equal(errno, EINVAL);
		}
	}
}

/* https against a local TLS server: the right CA works, another fails. */
static void
test_tls(void **state)
{
	struct fixture *f = *state;
	struct result r = {0};
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, good_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, good_key, SSL_FILETYPE_PEM), 1);
	f->srv = srv_new(f->base, M_ECHO, ctx);

	make_upstream(f, "https", f->srv->port, good_cert, 0, 0);
	send_req(f, &r, "POST", "/base", "secure", UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	assert_string_equal(r.body, "POST /base secure");
	result_clear(&r);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_OK);
	result_clear(&r);
	assert_int_equal(upstream_stats(f->up)->reuses, 1);
	upstream_free(&f->up);

	make_upstream(f, "https", f->srv->port, other_cert, 0, 0);
	send_req(f, &r, "GET", "/base", NULL, UPSTREAM_TIMEOUT_DEFAULT);
	assert_true(run_until(f, &r.done, 5000));
	assert_int_equal(r.result, UPSTREAM_TLS_ERROR);
	assert_non_null(strstr(upstream_strerror(r.result), "TLS"));
	assert_non_null(strstr(r.err, "certificate verify failed"));
	result_clear(&r);

	srv_free(f->srv);
	f->srv = NULL;
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	SSL_CTX_free(ctx);
}

/* Which headers a proxy keeps to itself: the whole list, any case, and near misses. */
static void
test_hop_headers(void **state)
{
	static const char *const hop[] = {
	    "Connection",
	    "Content-Length",
	    "Expect",
	    "Host",
	    "Keep-Alive",
	    "Proxy-Connection",
	    "Proxy-Authenticate",
	    "Proxy-Authorization",
	    "TE",
	    "Trailer",
	    "Transfer-Encoding",
	    "Upgrade",
	    "X-Forwarded-For",
	    "X-Forwarded-Proto",
	};
	static const char *const passed[] = {
	    "Authorization",
	    "User-Agent",
	    "MS-ASProtocolVersion",
	    "Content-Type",
	    "X-MS-PolicyKey",
	    "Hosts",
	    "Hos",
	    "T",
	    "X-Forwarded-Host",
	    "Connection2",
	    "Content-Lengt",
	    "",
	};
	char up[64], low[64];

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
		size_t n = strlen(hop[i]);

		for (size_t j = 0; j <= n; j++) {
			up[j] = (char)toupper((unsigned char)hop[i][j]);
			low[j] = (char)tolower((unsigned char)hop[i][j]);
		}
		assert_true(upstream_hop_header(hop[i], n));
		assert_true(upstream_hop_header(up, n));
		assert_true(upstream_hop_header(low, n));
		/* The length given is what counts: a prefix is another name. */
		assert_false(upstream_hop_header(hop[i], n - 1));
	}
	for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		if (upstream_hop_header(passed[i], strlen(passed[i])))
			fail_msg("%s is forwarded", passed[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hop_headers),
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_until_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_stops_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_pooled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fresh_not_pooled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout_moves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_block_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
