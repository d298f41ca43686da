/*
 * test_auth.c: src/auth against servers inside the test, on 127.0.0.1.
 *
 * An evhttp server plays the ActiveSync upstream for the OPTIONS probe:
 * alice/secret (and delayN/secret, answered after 200 ms) get 200, "broken"
 * 500, "slow" nothing at all, everyone else 401; it counts the probes it gets
 * and the most it ever had open at once. A scripted IMAP server plays the
 * IMAP backend's server.
 *
 * The IMAP server is fake here because the unit level needs scripted failures
 * (a connection dropped mid-login), exact login counts and no root: a real
 * Dovecot (tests/fixture, upstream.sh up) is checked by `test_auth
 * --imap-real` when ABQ_TEST_IMAP_URL is set (CTest: test_auth_imap_real),
 * and used end to end by the daemon's tests.
 *
 * Everything runs on one event loop; run_until() turns it until the expected
 * number of callbacks arrived or a deadline passed.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "lib/util.h"
#include "net/curl_loop.h"

/* ------------------------------------------------------------ HTTP server */

struct http_srv {
	struct event_base *base;
	struct evhttp *http;
	int port;
	int probes; /* OPTIONS requests received */
	int open;   /* delayed requests not answered yet */
	int max_open;
};

struct delayed {
	struct http_srv *srv;
	struct evhttp_request *req;
	struct event *ev;
};

/* Answer a delayed request now. */
static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *d = arg;

	d->srv->open--;
	evhttp_send_reply(d->req, 200, "OK", NULL);
	event_free(d->ev);
	free(d);
}

/* Decode "Basic b64" into user and password (buffers of 256). */
static int
parse_basic(const char *h, char *user, char *pass)
{
	unsigned char buf[512];
	char *colon;
	int n;

	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0 || strlen(h + 6) > 340)
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)h + 6, (int)strlen(h + 6));
	if (n < 0)
		return -1;
	buf[n] = '\0';
	if ((colon = strchr((char *)buf, ':')) == NULL)
		return -1;
	*colon = '\0';
	if (strlen((char *)buf) > 255 || strlen(colon + 1) > 255)
		return -1;
	memcpy(user, buf, strlen((char *)buf) + 1);
	memcpy(pass, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

/* The upstream's OPTIONS handler, per the table at the top of the file. */
static void
on_http(struct evhttp_request *req, void *arg)
{
	struct http_srv *srv = arg;
	char user[256], pass[256];
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (evhttp_request_get_command(req) != EVHTTP_REQ_OPTIONS) {
		evhttp_send_reply(req, 405, "Method Not Allowed", NULL);
		return;
	}
	srv->probes++;
	if (parse_basic(h, user, pass) == -1) {
		evhttp_send_reply(req, 401, "Unauthorized", NULL);
		return;
	}
	if (strcmp(user, "broken") == 0) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
	} else if (strcmp(user, "slow") == 0) {
		/* never answered: the probe times out or is cancelled */
	} else if (strncmp(user, "delay", 5) == 0 && strcmp(pass, "secret") == 0) {
		struct delayed *d = calloc(1, sizeof(*d));
		struct timeval tv = {0, 200000};
		d->srv = srv;
		d->req = req;
		d->ev = evtimer_new(srv->base, on_delay, d);
		evtimer_add(d->ev, &tv);
		if (++srv->open > srv->max_open)
			srv->max_open = srv->open;
	} else if (strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "MS-ASProtocolVersions",
		                  "14.1");
		evhttp_send_reply(req, 200, "OK", NULL);
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Basic realm=\"test\"");
		evhttp_send_reply(req, 401, "Unauthorized", NULL);
	}
}

/* Start the HTTP server on 127.0.0.1 and an ephemeral port. */
static void
http_srv_start(struct http_srv *srv, struct event_base *base)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->http = evhttp_new(base);
	assert_non_null(srv->http);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_OPTIONS | EVHTTP_REQ_GET);
	evhttp_set_gencb(srv->http, on_http, srv);
	bs = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len),
	                 0);
	srv->port = ntohs(sin.sin_port);
}

/* ------------------------------------------------------------ IMAP server */

struct imap_srv {
	struct evconnlistener *lis;
	int port;
	int logins; /* LOGIN commands received */
};

/* Strip one pair of surrounding quotes (curl quotes atoms when it must). */
static void
unquote(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
}

/* One client line: CAPABILITY, LOGIN, NOOP, LOGOUT, else BAD. */
static void
on_imap_read(struct bufferevent *bev, void *arg)
{
	struct imap_srv *srv = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;

	while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF)) != NULL) {
		char tag[64] = "", cmd[64] = "", a1[256] = "", a2[256] = "";
		sscanf(line, "%63s %63s %255s %255s", tag, cmd, a1, a2);
		free(line);
		if (strcasecmp(cmd, "CAPABILITY") == 0) {
			bufferevent_write(bev, "* CAPABILITY IMAP4rev1\r\n", 24);
			evbuffer_add_printf(bufferevent_get_output(bev), "%s OK done\r\n", tag);
		} else if (strcasecmp(cmd, "LOGIN") == 0) {
			srv->logins++;
			unquote(a1);
			unquote(a2);
			if (strcmp(a1, "drop") == 0) {
				bufferevent_free(bev);
				return;
			}
			if (strcmp(a1, "busy") == 0)
				evbuffer_add_printf(bufferevent_get_output(bev),
				                    "%s NO [UNAVAILABLE] Temporary authentication "
				                    "failure. [host:2026-12-06 10:00:00]\r\n",
				                    tag);
			else if (strcmp(a1, "alice") == 0 && strcmp(a2, "secret") == 0)
				evbuffer_add_printf(bufferevent_get_output(bev),
				                    "%s OK Logged in\r\n", tag);
			else
				evbuffer_add_printf(bufferevent_get_output(bev),
				                    "%s NO [AUTHENTICATIONFAILED] "
				                    "Authentication failed.\r\n",
				                    tag);
		} else if (strcasecmp(cmd, "NOOP") == 0) {
			evbuffer_add_printf(bufferevent_get_output(bev), "%s OK NOOP\r\n", tag);
		} else if (strcasecmp(cmd, "LOGOUT") == 0) {
			/* answer and close at once, as Dovecot does (see auth_imap.c) */
			char bye[128];
			int n = snprintf(bye, sizeof(bye), "* BYE bye\r\n%s OK Logout\r\n", tag);
			(void)!send(bufferevent_getfd(bev), bye, (size_t)n, MSG_NOSIGNAL);
			bufferevent_free(bev);
			return;
		} else {
			evbuffer_add_printf(bufferevent_get_output(bev), "%s BAD what\r\n", tag);
		}
	}
}

/* The client closed (or failed): free the connection. */
static void
on_imap_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

/* A new IMAP client: greet it. */
static void
on_imap_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
               void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);

	bufferevent_setcb(bev, on_imap_read, NULL, on_imap_event, arg);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	bufferevent_write(bev, "* OK fake IMAP ready\r\n", 22);
}

/* Start the IMAP server on 127.0.0.1 and an ephemeral port. */
static void
imap_srv_start(struct imap_srv *srv, struct event_base *base)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(srv, 0, sizeof(*srv));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->lis = evconnlistener_new_bind(base, on_imap_accept, srv,
	                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	                                   (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(srv->lis);
	getsockname(evconnlistener_get_fd(srv->lis), (struct sockaddr *)&sin, &len);
	srv->port = ntohs(sin.sin_port);
}

/* ------------------------------------------------------------ harness */

struct res {
	int calls;
	enum auth_result r;
	bool from_cache;
	int *counter; /* shared count of answers */
};

struct fx {
	struct event_base *base;
	struct http_srv srv;
	struct auth *auth;
	struct auth_conf conf;
	char url[128];
	int answers;
};

/* auth_cb: record the answer. */
static void
on_result(void *arg, enum auth_result r, bool from_cache)
{
	struct res *res = arg;

	res->calls++;
	res->r = r;
	res->from_cache = from_cache;
	if (res->counter != NULL)
		(*res->counter)++;
}

/* run_until's deadline timer. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Turn the loop until *counter reaches target or ms pass. */
static void
run_until(struct event_base *base, int *counter, int target, int ms)
{
	int expired = 0;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *t = evtimer_new(base, on_deadline, &expired);

	evtimer_add(t, &tv);
	while (!expired && (counter == NULL || *counter < target))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

/* Turn the loop for ms whatever happens. */
static void
run_for(struct event_base *base, int ms)
{
	run_until(base, NULL, 0, ms);
}

/*
 * Conf for the HTTP server, no limits; timeouts long enough for a loaded
 * machine under valgrind (the first probe of a process warms libcurl up):
 * the tests of timeouts set their own.
 */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->base = event_base_new();
	http_srv_start(&f->srv, f->base);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/Microsoft-Server-ActiveSync",
	         f->srv.port);
	f->conf.method = "upstream";
	f->conf.upstream_url = f->url;
	f->conf.connect_timeout_ms = 3000;
	f->conf.request_timeout_ms = 3000;
	f->conf.cache_ttl_ms = 600000;
	f->conf.failure_ttl_ms = 30000;
	*state = f;
	return 0;
}

/* Free the verifier (if the test left one), the server and the loop. */
static int
teardown(void **state)
{
	struct fx *f = *state;

	auth_free(&f->auth);
	evhttp_free(f->srv.http);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Make f->auth from f->conf. */
static void
fx_auth(struct fx *f)
{
	const char *err = NULL;

	f->auth = auth_new(f->base, &f->conf, &err);
	if (f->auth == NULL)
		fail_msg("auth_new: %s", err);
}

/* One check, run to its answer. */
static struct res
check1(struct fx *f, const char *user, const char *pass, const char *addr)
{
	struct res r = {0};
	int n = 0;

	r.counter = &n;
	auth_check(f->auth, user, pass, NULL, addr, on_result, &r);
	assert_int_equal(r.calls, 0); /* always deferred */
	run_until(f->base, &n, 1, 5000);
	assert_int_equal(r.calls, 1);
	r.counter = NULL;
	return r;
}

/* ------------------------------------------------------------ upstream tests */

/* 200 is OK; the same credentials again come from the cache, unprobed. */
static void
test_ok_and_positive_cache(void **state)
{
	struct fx *f = *state;
	struct res r;

	fx_auth(f);
	r = check1(f, "alice", "secret", "10.0.0.1");
	assert_int_equal(r.r, AUTH_OK);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 1);
	r = check1(f, "alice", "secret", "10.0.0.2");
	assert_int_equal(r.r, AUTH_OK);
	assert_true(r.from_cache);
	assert_int_equal(f->srv.probes, 1);
	/* another password of the same user is another credential */
	r = check1(f, "alice", "Secret", "10.0.0.2");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(f->srv.probes, 2);
}

/* The client's header is what is probed; CR/LF never reach the upstream. */
static void
test_client_authorization_forwarded(void **state)
{
	struct fx *f = *state;
	struct res r = {0};
	int n = 0;

	fx_auth(f);
	r.counter = &n;
	/* the header is what is probed: "alice:secret" */
	auth_check(f->auth, "alice", "secret", "Basic YWxpY2U6c2VjcmV0", "10.0.0.1", on_result, &r);
	run_until(f->base, &n, 1, 5000);
	assert_int_equal(r.r, AUTH_OK);
	/* control characters never reach the upstream */
	auth_check(f->auth, "alice", "sec\r\nX-Evil: 1", NULL, "10.0.0.1", on_result, &r);
	run_until(f->base, &n, 2, 5000);
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(f->srv.probes, 1);
}

/* 401 is DENIED, cached for failure_ttl only, then probed again. */
static void
test_denied_negative_cache_ttl(void **state)
{
	struct fx *f = *state;
	struct res r;

	f->conf.failure_ttl_ms = 1000;
	fx_auth(f);
	r = check1(f, "alice", "wrong", "10.0.0.1");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 1);
	r = check1(f, "alice", "wrong", "10.0.0.1");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_true(r.from_cache);
	assert_int_equal(f->srv.probes, 1);
	usleep(1100 * 1000);
	r = check1(f, "alice", "wrong", "10.0.0.1");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 2);
	/* a good password afterwards is probed, not refused from the cache */
	r = check1(f, "alice", "secret", "10.0.0.1");
	assert_int_equal(r.r, AUTH_OK);
}

/* A good password is probed again once cache_ttl has passed. */
static void
test_positive_cache_ttl(void **state)
{
	struct fx *f = *state;
	struct res r;

	f->conf.cache_ttl_ms = 1000;
	fx_auth(f);
	check1(f, "alice", "secret", NULL);
	r = check1(f, "alice", "secret", NULL);
	assert_true(r.from_cache);
	usleep(1100 * 1000);
	r = check1(f, "alice", "secret", NULL);
	assert_int_equal(r.r, AUTH_OK);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 2);
}

/* 500 is UNAVAILABLE and is not cached. */
static void
test_unavailable_500(void **state)
{
	struct fx *f = *state;
	struct res r;

	fx_auth(f);
	r = check1(f, "broken", "x", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	r = check1(f, "broken", "x", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 2); /* nothing cached */
	assert_int_equal(auth_retry_after(f->auth, AUTH_UNAVAILABLE), 30);
}

/* A probe that times out is UNAVAILABLE and is not cached. */
static void
test_unavailable_timeout(void **state)
{
	struct fx *f = *state;
	struct res r;

	f->conf.request_timeout_ms = 300;
	fx_auth(f);
	r = check1(f, "slow", "x", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	r = check1(f, "slow", "x", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	assert_int_equal(f->srv.probes, 2);
}

/* A refused connection is UNAVAILABLE and is not cached. */
static void
test_unavailable_refused(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct auth_stats st;
	struct res r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was just free and is closed again: connection refused */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/", ntohs(sin.sin_port));
	fx_auth(f);
	r = check1(f, "alice", "secret", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	r = check1(f, "alice", "secret", "10.0.0.1");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.probes, 2);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.negative_cached, 0);
}

/* auth_forget (401 on a forwarded request) forces the next probe. */
static void
test_forget(void **state)
{
	struct fx *f = *state;
	struct res r;
	struct auth_stats st;

	fx_auth(f);
	check1(f, "alice", "secret", NULL);
	r = check1(f, "alice", "secret", NULL);
	assert_true(r.from_cache);
	auth_forget(f->auth, "alice", "secret");
	r = check1(f, "alice", "secret", NULL);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 2);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.forgotten, 1);
	assert_int_equal(st.cache_hits, 1);
}

/* 20 failures from one address limit that address, not the others. */
static void
test_address_limit(void **state)
{
	struct fx *f = *state;
	struct res r;
	char pw[32];

	f->conf.max_failures_per_address = 20;
	fx_auth(f);
	for (int i = 0; i < 20; i++) {
		snprintf(pw, sizeof(pw), "guess%d", i);
		r = check1(f, i % 2 ? "alice" : "bob", pw, "192.0.2.66");
		assert_int_equal(r.r, AUTH_DENIED);
	}
	assert_int_equal(f->srv.probes, 20);
	r = check1(f, "carol", "guess", "192.0.2.66");
	assert_int_equal(r.r, AUTH_RATE_LIMITED);
	assert_int_equal(f->srv.probes, 20); /* not probed */
	r = check1(f, "alice", "secret", "192.0.2.66");
	assert_int_equal(r.r, AUTH_RATE_LIMITED);
	/* another address with the right password goes through... */
	r = check1(f, "alice", "secret", "192.0.2.7");
	assert_int_equal(r.r, AUTH_OK);
	assert_int_equal(f->srv.probes, 21);
	/* ...and once it is known good, even the flooding address gets OK */
	r = check1(f, "alice", "secret", "192.0.2.66");
	assert_int_equal(r.r, AUTH_OK);
	assert_true(r.from_cache);
	/* a wrong password from another address is still probed */
	r = check1(f, "alice", "nope", "192.0.2.8");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(auth_retry_after(f->auth, AUTH_RATE_LIMITED), 60);
}

/*
 * Failures of one account spread over many addresses fill its window over all
 * addresses (10 x max_failures_per_account), which limits new probes of it,
 * not its cached password nor other accounts.
 */
static void
test_account_limit(void **state)
{
	struct fx *f = *state;
	struct res r;
	char pw[32], addr[32];

	f->conf.max_failures_per_account = 2; /* 2 per pair, 20 per account */
	fx_auth(f);
	r = check1(f, "alice", "secret", "198.51.100.1"); /* known good before the attack */
	assert_int_equal(r.r, AUTH_OK);
	for (int i = 0; i < 20; i++) {
		snprintf(pw, sizeof(pw), "guess%d", i);
		snprintf(addr, sizeof(addr), "203.0.113.%d", i);
		/* the account is normalised: these are all alice */
		r = check1(f, i % 2 ? "ALICE" : "alice", pw, addr);
		assert_int_equal(r.r, AUTH_DENIED);
	}
	assert_int_equal(f->srv.probes, 21);
	r = check1(f, "alice", "guess99", "203.0.113.99");
	assert_int_equal(r.r, AUTH_RATE_LIMITED);
	assert_int_equal(f->srv.probes, 21);
	/* the cached good password still works, from anywhere */
	r = check1(f, "alice", "secret", "203.0.113.99");
	assert_int_equal(r.r, AUTH_OK);
	assert_true(r.from_cache);
	/* other accounts are not affected */
	r = check1(f, "bob", "guess", "203.0.113.99");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(f->srv.probes, 22);
}

/*
 * Start n checks at once and run them to their answers; user, password and
 * address are formats of the check's index i (a "%d" in them, or none).
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
check_many(struct fx *f, struct res *r, int n, const char *user, const char *pwfmt,
           const char *addrfmt)
{
	char pw[64], addr[64], u[64];
	int done = 0;

	memset(r, 0, (size_t)n * sizeof(*r));
	for (int i = 0; i < n; i++) {
		snprintf(u, sizeof(u), user, i);
		snprintf(pw, sizeof(pw), pwfmt, i);
		snprintf(addr, sizeof(addr), addrfmt, i);
		r[i].counter = &done;
		auth_check(f->auth, u, pw, NULL, addr, on_result, &r[i]);
	}
	run_until(f->base, &done, n, 10000);
	assert_int_equal(done, n);
}
#pragma GCC diagnostic pop

/* How many of r[0..n) were answered res. */
static int
count_answers(const struct res *r, int n, enum auth_result res)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += r[i].r == res;
	return c;
}

/*
 * 200 wrong guesses at once from one address against a limit of 10: a probe
 * takes its slot when it starts, so only 10 reach the verifier (the others
 * are refused unprobed), for the address window as for the (account,
 * address) pair window.
 */
static void
test_concurrent_guesses(void **state)
{
	struct fx *f = *state;
	struct res *r = calloc(200, sizeof(*r));
	struct auth_stats st;

	f->conf.max_failures_per_address = 10;
	f->conf.max_failures_per_account = 10;
	f->conf.max_probes_per_address = 1000; /* the windows, not the in-flight bound */
	f->conf.max_probes_per_account = 1000;
	fx_auth(f);
	/* many accounts: the address window */
	check_many(f, r, 200, "user%d", "guess%d", "192.0.2.66");
	assert_int_equal(f->srv.probes, 10);
	assert_int_equal(count_answers(r, 200, AUTH_DENIED), 10);
	assert_int_equal(count_answers(r, 200, AUTH_RATE_LIMITED), 190);
	/* one account: the pair window */
	check_many(f, r, 200, "alice", "guess%d", "192.0.2.67");
	assert_int_equal(f->srv.probes, 20);
	assert_int_equal(count_answers(r, 200, AUTH_DENIED), 10);
	assert_int_equal(count_answers(r, 200, AUTH_RATE_LIMITED), 190);
	/* and with the default in-flight bound, at most 4 at once from one address */
	auth_free(&f->auth);
	f->conf.max_probes_per_address = 0;
	f->conf.max_probes_per_account = 0;
	fx_auth(f);
	check_many(f, r, 200, "user%d", "guess%d", "192.0.2.68");
	assert_int_equal(f->srv.probes, 24);
	assert_int_equal(count_answers(r, 200, AUTH_RATE_LIMITED), 196);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.probes, 4);
	assert_int_equal(st.rate_limited, 196);
	free(r);
}

/*
 * A guessing storm from one address locks only that (account, address)
 * pair: the owner's right password from another address is probed and OK,
 * while from the attacker's address even the right password is refused.
 */
static void
test_storm_does_not_lock_out_owner(void **state)
{
	struct fx *f = *state;
	struct res r;
	char pw[32];
	int i;

	f->conf.max_failures_per_account = 10;
	fx_auth(f);
	for (i = 0; i < 50; i++) {
		snprintf(pw, sizeof(pw), "guess%d", i);
		r = check1(f, "alice", pw, "192.0.2.66");
		if (r.r == AUTH_RATE_LIMITED)
			break;
		assert_int_equal(r.r, AUTH_DENIED);
	}
	assert_int_equal(i, 10);
	assert_int_equal(f->srv.probes, 10);
	/* the attacker's address: refused, even the right password, unprobed */
	r = check1(f, "alice", "secret", "192.0.2.66");
	assert_int_equal(r.r, AUTH_RATE_LIMITED);
	assert_int_equal(f->srv.probes, 10);
	/* the owner's address: probed, OK */
	r = check1(f, "alice", "secret", "198.51.100.7");
	assert_int_equal(r.r, AUTH_OK);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.probes, 11);
	/* and a wrong guess from a third address is still probed */
	r = check1(f, "alice", "guess99", "198.51.100.8");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(f->srv.probes, 12);
}

/*
 * Credentials that passed a probe stay "known good" after their positive
 * cache entry expired: they are probed from a new address while the account
 * window over all addresses is full; unknown credentials are refused.
 */
static void
test_known_good_past_account_window(void **state)
{
	struct fx *f = *state;
	struct auth_stats st;
	struct res r;
	char pw[32], addr[32];

	f->conf.cache_ttl_ms = 300;
	f->conf.max_failures_per_account = 2; /* 2 per pair, 20 per account */
	fx_auth(f);
	r = check1(f, "alice", "secret", "198.51.100.1");
	assert_int_equal(r.r, AUTH_OK);
	usleep(400 * 1000); /* the positive cache entry expires */
	for (int i = 0; i < 20; i++) {
		snprintf(pw, sizeof(pw), "guess%d", i);
		snprintf(addr, sizeof(addr), "203.0.113.%d", i);
		r = check1(f, "alice", pw, addr);
		assert_int_equal(r.r, AUTH_DENIED);
	}
	assert_int_equal(f->srv.probes, 21);
	r = check1(f, "alice", "guess99", "203.0.113.99");
	assert_int_equal(r.r, AUTH_RATE_LIMITED); /* the account window is full */
	r = check1(f, "alice", "secret", "198.51.100.200");
	assert_int_equal(r.r, AUTH_OK);
	assert_false(r.from_cache); /* probed, not from the cache */
	assert_int_equal(f->srv.probes, 22);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.known_good, 1);
}

/*
 * UNAVAILABLE is not the client's fault: the slots its probes held while in
 * flight are given back when they answer. DENIED keeps them.
 */
static void
test_unavailable_gives_slots_back(void **state)
{
	struct fx *f = *state;
	struct res r[4], one;

	f->conf.max_failures_per_address = 3;
	fx_auth(f);
	/* 4 at once: 3 take the slots, the 4th is refused while they are in flight */
	check_many(f, r, 4, "broken", "x%d", "192.0.2.66");
	assert_int_equal(f->srv.probes, 3);
	assert_int_equal(count_answers(r, 4, AUTH_UNAVAILABLE), 3);
	assert_int_equal(r[3].r, AUTH_RATE_LIMITED);
	/* they answered UNAVAILABLE: the 3 slots are free again */
	check_many(f, r, 3, "broken", "y%d", "192.0.2.66");
	assert_int_equal(f->srv.probes, 6);
	assert_int_equal(count_answers(r, 3, AUTH_UNAVAILABLE), 3);
	/* DENIED keeps them */
	check_many(f, r, 3, "bob", "z%d", "192.0.2.66");
	assert_int_equal(f->srv.probes, 9);
	assert_int_equal(count_answers(r, 3, AUTH_DENIED), 3);
	one = check1(f, "broken", "w", "192.0.2.66");
	assert_int_equal(one.r, AUTH_RATE_LIMITED);
	assert_int_equal(f->srv.probes, 9);
}

/*
 * Probes in flight are bounded per address (max_probes_per_address) and per
 * account (max_probes_per_account), without any failure limit; the bound is
 * on probes at once, so the slots come back when they answer.
 */
static void
test_probes_in_flight_bounds(void **state)
{
	struct fx *f = *state;
	struct res r[5];

	f->conf.max_probes_per_address = 2;
	f->conf.max_probes_per_account = 2;
	fx_auth(f);
	/* 5 accounts at once from one address: 2 probed */
	check_many(f, r, 5, "delay%d", "secret", "192.0.2.66");
	assert_int_equal(f->srv.probes, 2);
	assert_int_equal(f->srv.max_open, 2);
	assert_int_equal(count_answers(r, 5, AUTH_OK), 2);
	assert_int_equal(count_answers(r, 5, AUTH_RATE_LIMITED), 3);
	/* one account at once from 5 addresses: 2 probed (they time out) */
	check_many(f, r, 5, "slow", "p%d", "198.51.100.%d");
	assert_int_equal(f->srv.probes, 4);
	assert_int_equal(count_answers(r, 5, AUTH_UNAVAILABLE), 2);
	assert_int_equal(count_answers(r, 5, AUTH_RATE_LIMITED), 3);
	/* answered: room again */
	check_many(f, r, 2, "slow", "q%d", "198.51.100.%d");
	assert_int_equal(f->srv.probes, 6);
	assert_int_equal(count_answers(r, 2, AUTH_UNAVAILABLE), 2);
}

/*
 * A probe whose last waiter leaves: a queued one never reached the verifier
 * and gives its slot back; a running one is aborted but the verifier saw the
 * guess, so its slot stays as a failure (hanging up buys no new guess).
 */
static void
test_cancel_slots(void **state)
{
	struct fx *f = *state;
	struct auth_pending *p1, *p2;
	struct res r0 = {0}, r[2];

	f->conf.max_failures_per_address = 2;
	f->conf.max_in_flight = 1;
	f->conf.request_timeout_ms = 2000;
	fx_auth(f);
	p1 = auth_check(f->auth, "slow", "a", NULL, "192.0.2.66", on_result, &r0);
	p2 = auth_check(f->auth, "slow", "b", NULL, "192.0.2.66", on_result, &r0);
	run_for(f->base, 100);
	assert_int_equal(f->srv.probes, 1); /* p1 runs, p2 is queued */
	auth_cancel(p2);
	auth_cancel(p1);
	/* one failure kept (p1): one slot left, taken by the first of two */
	check_many(f, r, 2, "bob", "c%d", "192.0.2.66");
	assert_int_equal(r[0].r, AUTH_DENIED);
	assert_int_equal(r[1].r, AUTH_RATE_LIMITED);
	assert_int_equal(f->srv.probes, 2);
	assert_int_equal(r0.calls, 0);
}

/* Ten identical checks at once share one probe. */
static void
test_coalesce(void **state)
{
	struct fx *f = *state;
	struct res r[10];
	int n = 0;
	struct auth_stats st;

	fx_auth(f);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 10; i++) {
		r[i].counter = &n;
		auth_check(f->auth, "alice", "secret", NULL, "10.0.0.1", on_result, &r[i]);
	}
	run_until(f->base, &n, 10, 5000);
	assert_int_equal(n, 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].r, AUTH_OK);
	}
	assert_int_equal(f->srv.probes, 1);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.coalesced, 9);
	assert_int_equal(st.probes, 1);
}

/* With max_in_flight 2 the upstream never sees more than 2 probes. */
static void
test_concurrency_cap(void **state)
{
	struct fx *f = *state;
	struct res r[5];
	char user[16];
	int n = 0;
	struct auth_stats st;

	f->conf.max_in_flight = 2;
	f->conf.max_probes_per_address = 10;
	fx_auth(f);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 5; i++) {
		snprintf(user, sizeof(user), "delay%d", i);
		r[i].counter = &n;
		auth_check(f->auth, user, "secret", NULL, "10.0.0.1", on_result, &r[i]);
	}
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.in_flight, 2);
	assert_int_equal(st.queued, 3);
	run_until(f->base, &n, 5, 5000);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i].r, AUTH_OK);
	assert_int_equal(f->srv.probes, 5);
	assert_true(f->srv.max_open <= 2);
	assert_int_equal(f->srv.max_open, 2);
}

/* auth_cancel and auth_free: no callback afterwards, nothing leaked. */
static void
test_cancel(void **state)
{
	struct fx *f = *state;
	struct res r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
	struct auth_pending *p;
	struct auth_stats st;
	int n = 0;

	f->conf.request_timeout_ms = 2000;
	fx_auth(f);
	/* a running probe whose only waiter leaves is aborted */
	p = auth_check(f->auth, "slow", "x", NULL, "10.0.0.1", on_result, &r1);
	run_for(f->base, 100);
	auth_cancel(p);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.in_flight, 0);
	/* one of two coalesced waiters leaves: the other gets its answer */
	r2.counter = &n;
	r3.counter = &n;
	p = auth_check(f->auth, "alice", "secret", NULL, "10.0.0.1", on_result, &r2);
	auth_check(f->auth, "alice", "secret", NULL, "10.0.0.1", on_result, &r3);
	auth_cancel(p);
	run_until(f->base, &n, 1, 3000);
	assert_int_equal(r3.calls, 1);
	assert_int_equal(r3.r, AUTH_OK);
	/* a cache answer not yet delivered */
	p = auth_check(f->auth, "alice", "secret", NULL, "10.0.0.1", on_result, &r4);
	auth_cancel(p);
	run_for(f->base, 300);
	assert_int_equal(r1.calls, 0);
	assert_int_equal(r2.calls, 0);
	assert_int_equal(r4.calls, 0);
	auth_get_stats(f->auth, &st);
	assert_int_equal(st.cancelled, 3);
	/* pending checks at auth_free (a running probe, an undelivered cache
	 * answer): no callback, no leak */
	auth_check(f->auth, "slow", "y", NULL, "10.0.0.1", on_result, &r1);
	run_for(f->base, 50);
	auth_check(f->auth, "alice", "secret", NULL, "10.0.0.1", on_result, &r1);
	auth_free(&f->auth);
	run_for(f->base, 50);
	assert_int_equal(r1.calls, 0);
}

/* A cancelled queued probe never reaches the upstream. */
static void
test_cancel_queued(void **state)
{
	struct fx *f = *state;
	struct res r[3];
	struct auth_pending *p;
	int n = 0;

	f->conf.max_in_flight = 1;
	fx_auth(f);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 3; i++)
		r[i].counter = &n;
	auth_check(f->auth, "delay0", "secret", NULL, NULL, on_result, &r[0]);
	p = auth_check(f->auth, "delay1", "secret", NULL, NULL, on_result, &r[1]);
	auth_check(f->auth, "delay2", "secret", NULL, NULL, on_result, &r[2]);
	auth_cancel(p);
	run_until(f->base, &n, 2, 5000);
	run_for(f->base, 100);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].calls, 0);
	assert_int_equal(r[2].calls, 1);
	assert_int_equal(f->srv.probes, 2);
}

/* Unknown methods and a missing upstream URL are refused. */
static void
test_bad_conf(void **state)
{
	struct fx *f = *state;
	const char *err = NULL;

	f->conf.method = "ldap://x";
	assert_null(auth_new(f->base, &f->conf, &err));
	assert_non_null(err);
	f->conf.method = "upstream";
	f->conf.upstream_url = NULL;
	err = NULL;
	assert_null(auth_new(f->base, &f->conf, &err));
	assert_non_null(err);
	assert_string_equal(auth_result_str(AUTH_RATE_LIMITED), "rate-limited");
}

/* ------------------------------------------------------------ IMAP tests */

struct ifx {
	struct event_base *base;
	struct imap_srv srv;
	struct auth *auth;
	char url[128];
};

/* Fixture: a loop, the scripted IMAP server, a verifier using it. */
static int
imap_setup(void **state)
{
	struct ifx *f = calloc(1, sizeof(*f));
	struct auth_conf conf = {0};
	const char *err = NULL;

	f->base = event_base_new();
	imap_srv_start(&f->srv, f->base);
	snprintf(f->url, sizeof(f->url), "imap://127.0.0.1:%d", f->srv.port);
	conf.method = f->url;
	conf.connect_timeout_ms = 1000;
	conf.request_timeout_ms = 2000;
	conf.cache_ttl_ms = 600000;
	conf.failure_ttl_ms = 30000;
	f->auth = auth_new(f->base, &conf, &err);
	if (f->auth == NULL)
		fail_msg("auth_new: %s", err);
	*state = f;
	return 0;
}

/* Free the verifier, the IMAP server and the loop. */
static int
imap_teardown(void **state)
{
	struct ifx *f = *state;

	auth_free(&f->auth);
	evconnlistener_free(f->srv.lis);
	run_for(f->base, 20);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* One IMAP check, run to its answer. */
static struct res
icheck(struct ifx *f, const char *user, const char *pass)
{
	struct res r = {0};
	int n = 0;

	r.counter = &n;
	auth_check(f->auth, user, pass, NULL, "10.0.0.1", on_result, &r);
	run_until(f->base, &n, 1, 40000);
	assert_int_equal(r.calls, 1);
	return r;
}

/* IMAP LOGIN: good, wrong, quoted, and a server hanging up mid-login. */
static void
test_imap_fake(void **state)
{
	struct ifx *f = *state;
	struct res r;

	r = icheck(f, "alice", "secret");
	assert_int_equal(r.r, AUTH_OK);
	assert_int_equal(f->srv.logins, 1);
	r = icheck(f, "alice", "secret");
	assert_true(r.from_cache);
	assert_int_equal(f->srv.logins, 1);
	r = icheck(f, "alice", "wrong");
	assert_int_equal(r.r, AUTH_DENIED);
	assert_int_equal(f->srv.logins, 2);
	r = icheck(f, "alice", "wrong");
	assert_true(r.from_cache);
	r = icheck(f, "bob", "pass word \"quoted\"");
	assert_int_equal(r.r, AUTH_DENIED);
	/* the server hangs up during LOGIN: unavailable, not cached */
	r = icheck(f, "drop", "x");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	r = icheck(f, "drop", "x");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	assert_int_equal(f->srv.logins, 5);
	/* NO [UNAVAILABLE] (the server cannot take logins now): not the password, not cached */
	r = icheck(f, "busy", "secret");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	r = icheck(f, "busy", "secret");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	assert_false(r.from_cache);
	assert_int_equal(f->srv.logins, 7);
}

/* Nothing listening on the IMAP port: UNAVAILABLE. */
static void
test_imap_refused(void **state)
{
	struct ifx *f = *state;
	struct auth_conf conf = {0};
	const char *err = NULL;
	struct res r;

	auth_free(&f->auth);
	evconnlistener_free(f->srv.lis); /* nothing listens there any more */
	f->srv.lis = NULL;
	conf.method = f->url;
	conf.connect_timeout_ms = 1000;
	conf.request_timeout_ms = 2000;
	f->auth = auth_new(f->base, &conf, &err);
	assert_non_null(f->auth);
	r = icheck(f, "alice", "secret");
	assert_int_equal(r.r, AUTH_UNAVAILABLE);
	imap_srv_start(&f->srv, f->base); /* for teardown */
}

/* ------------------------------------------------------------ real IMAP */

static const char *real_url;

/* The IMAP backend against the real Dovecot of tests/fixture. */
static void
test_imap_real(void **state)
{
	struct ifx f = {0};
	struct auth_conf conf = {0};
	const char *err = NULL;
	struct res r;

	f.base = event_base_new();
	conf.method = real_url;
	conf.connect_timeout_ms = 3000;
	conf.request_timeout_ms = 30000; /* Dovecot delays failed logins 2-15 s */
	conf.cache_ttl_ms = 600000;
	conf.failure_ttl_ms = 30000;
	conf.insecure_skip_verify = getenv("ABQ_TEST_IMAP_INSECURE") != NULL;
	f.auth = auth_new(f.base, &conf, &err);
	if (f.auth == NULL)
		fail_msg("auth_new: %s", err);
	r = icheck(&f, "alice", "secret");
	assert_int_equal(r.r, AUTH_OK);
	assert_false(r.from_cache);
	r = icheck(&f, "bob", "secret");
	assert_int_equal(r.r, AUTH_OK);
	r = icheck(&f, "alice", "wrong");
	assert_int_equal(r.r, AUTH_DENIED);
	r = icheck(&f, "nosuchuser", "secret");
	assert_int_equal(r.r, AUTH_DENIED);
	r = icheck(&f, "alice", "secret");
	assert_true(r.from_cache);
	auth_free(&f.auth);
	event_base_free(f.base);
}

/* The unit suite, or with --imap-real the real-Dovecot check (77 = skipped). */
int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--imap-real") == 0) {
		const struct CMUnitTest real[] = {
		    cmocka_unit_test(test_imap_real),
		};
		real_url = getenv("ABQ_TEST_IMAP_URL");
		if (real_url == NULL || *real_url == '\0') {
			printf("SKIP: ABQ_TEST_IMAP_URL is not set (tests/fixture/upstream.sh up; "
			       "ABQ_TEST_IMAP_URL=imap://127.0.0.1:1143)\n");
			return 77;
		}
		return cmocka_run_group_tests_name("auth-imap-real", real, NULL, NULL);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ok_and_positive_cache, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_authorization_forwarded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_denied_negative_cache_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_positive_cache_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unavailable_500, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unavailable_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unavailable_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_address_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_account_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_guesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storm_does_not_lock_out_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_known_good_past_account_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unavailable_gives_slots_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probes_in_flight_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_slots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coalesce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrency_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_conf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_imap_fake, imap_setup, imap_teardown),
	    cmocka_unit_test_setup_teardown(test_imap_refused, imap_setup, imap_teardown),
	};
	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
