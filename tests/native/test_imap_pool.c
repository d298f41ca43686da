/*
 * test_imap_pool.c: the IMAP connection pool (src/native/imap_pool.c)
 * against a scripted IMAP server on 127.0.0.1 in the same event loop, which
 * takes any number of connections, logs in the passwords it is told (LOGIN),
 * refuses logins past its own per-user limit as Dovecot does ("NO
 * [UNAVAILABLE] Maximum number of connections"), answers NOOP and LOGOUT,
 * and counts what it saw: the idle logout, a full waiter queue, a wait
 * timing out, a changed password, the server's limit without a retry storm,
 * accounts forgotten once they hold nothing, and a CA file checked once, at
 * the pool's making.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/util.h"
#include "native/imap_pool.h"

struct server;

/* One connection the server accepted. */
struct sconn {
	struct server *s;
	struct bufferevent *bev;
	char user[64];
	bool logged_in;
	struct sconn *next;
};

struct server {
	struct event_base *base;
	struct evconnlistener *lis;
	struct sconn *conns;
	const char *passwords[4]; /* accepted (NULL-terminated) */
	unsigned max_per_user;    /* 0: no limit */
	unsigned accepted, logins, refused_limit, refused_auth, logouts;
	/* hold_refusals: the limit's refusals wait for srv_send_refusals */
	bool hold_refusals;
	struct sconn *held[8];
	char held_tag[8][32];
	unsigned n_held;
	int port;
	char url[64];
};

/* Logged-in connections of user. */
static unsigned
srv_user_count(const struct server *s, const char *user)
{
	unsigned n = 0;

	for (const struct sconn *sc = s->conns; sc != NULL; sc = sc->next) {
		if (sc->logged_in && strcmp(sc->user, user) == 0)
			n++;
	}
	return n;
}

/* Forget and close a connection. */
static void
srv_close(struct sconn *sc)
{
	struct server *s = sc->s;

	for (struct sconn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == sc) {
			*pp = sc->next;
			break;
		}
	}
	bufferevent_free(sc->bev);
	free(sc);
}

/* Whether the server takes password. */
static bool
srv_password_ok(const struct server *s, const char *pw)
{
	for (size_t i = 0; i < 4 && s->passwords[i] != NULL; i++) {
		if (strcmp(s->passwords[i], pw) == 0)
			return true;
	}
	return false;
}

/* Each command line: LOGIN user "password", NOOP, LOGOUT. */
static void
srv_read(struct bufferevent *bev, void *arg)
{
	struct sconn *sc = arg;
	struct server *s = sc->s;
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t n;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF_STRICT)) !=
	       NULL) {
		char tag[32], cmd[32], user[64], pw[64];

		pw[0] = '\0';
		if (sscanf(line, "%31s %31s %63s \"%63[^\"]\"", tag, cmd, user, pw) >= 2 &&
		    strcmp(cmd, "LOGIN") == 0) {
			if (s->max_per_user != 0 && srv_user_count(s, user) >= s->max_per_user &&
			    s->hold_refusals && s->n_held < 8) {
				s->refused_limit++;
				s->held[s->n_held] = sc;
				snprintf(s->held_tag[s->n_held++], sizeof(s->held_tag[0]), "%s",
				         tag);
			} else if (s->max_per_user != 0 &&
			           srv_user_count(s, user) >= s->max_per_user) {
				s->refused_limit++;
				evbuffer_add_printf(
				    out,
				    "%s NO [UNAVAILABLE] Maximum number of connections "
				    "from user+IP exceeded (mail_max_userip_connections=%u)\r\n",
				    tag, s->max_per_user);
			} else if (!srv_password_ok(s, pw)) {
				s->refused_auth++;
				evbuffer_add_printf(
				    out, "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
				    tag);
			} else {
				s->logins++;
				sc->logged_in = true;
				snprintf(sc->user, sizeof(sc->user), "%s", user);
				evbuffer_add_printf(out, "%s OK Logged in\r\n", tag);
			}
		} else if (strcmp(cmd, "LOGOUT") == 0) {
			s->logouts++;
			sc->logged_in = false;
			evbuffer_add_printf(out, "* BYE Logging out\r\n%s OK Logout completed.\r\n",
			                    tag);
		} else {
			evbuffer_add_printf(out, "%s OK %s completed.\r\n", tag, cmd);
		}
		free(line);
	}
}

/* The held refusals sent (hold_refusals). */
static void
srv_send_refusals(struct server *s)
{
	for (unsigned i = 0; i < s->n_held; i++)
		evbuffer_add_printf(
		    bufferevent_get_output(s->held[i]->bev),
		    "%s NO [UNAVAILABLE] Maximum number of connections from user+IP "
		    "exceeded (mail_max_userip_connections=%u)\r\n",
		    s->held_tag[i], s->max_per_user);
	s->n_held = 0;
}

/* The client closed. */
static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	srv_close(arg);
}

/* A client connected: greet it (no AUTH=PLAIN: it logs in with LOGIN). */
static void
srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct server *s = arg;
	struct sconn *sc = xcalloc(1, sizeof(*sc));
	static const char greeting[] = "* OK [CAPABILITY IMAP4rev1] scripted\r\n";

	(void)l;
	(void)sa;
	(void)len;
	sc->s = s;
	sc->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	sc->next = s->conns;
	s->conns = sc;
	s->accepted++;
	bufferevent_setcb(sc->bev, srv_read, NULL, srv_event, sc);
	bufferevent_enable(sc->bev, EV_READ | EV_WRITE);
	bufferevent_write(sc->bev, greeting, strlen(greeting));
}

/* Listen on 127.0.0.1 (a free port). */
static void
srv_start(struct server *s, struct event_base *base)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->base = base;
	s->passwords[0] = "pw";
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lis =
	    evconnlistener_new_bind(base, srv_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                            128, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(s->lis);
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &sl);
	s->port = ntohs(sin.sin_port);
	snprintf(s->url, sizeof(s->url), "imap://127.0.0.1:%d", s->port);
}

/* Stop listening and close every connection. */
static void
srv_stop(struct server *s)
{
	while (s->conns != NULL)
		srv_close(s->conns);
	evconnlistener_free(s->lis);
}

/* ---- the pool's side ---- */

/* One request's answer. */
struct got {
	bool done;
	struct imap_client *c;
	enum imap_pool_err err;
	char msg[192];
	struct imap_pool_req *r;
};

static void
got_cb(void *arg, struct imap_client *c, enum imap_pool_err err, const char *msg)
{
	struct got *g = arg;

	g->done = true;
	g->c = c;
	g->err = err;
	snprintf(g->msg, sizeof(g->msg), "%s", msg ? msg : "");
	g->r = NULL;
}

/* Run the loop for ms milliseconds. */
static void
run_ms(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Run the loop until *flag or limit_ms. */
static void
run_until(struct event_base *base, const bool *flag, int limit_ms)
{
	for (int t = 0; !*flag && t < limit_ms; t += 5)
		run_ms(base, 5);
}

/* Ask for a connection into g. */
static void
ask(struct imap_pool *p, const char *account, const char *pw, struct got *g)
{
	const char *err = NULL;

	memset(g, 0, sizeof(*g));
	g->r = imap_pool_get(p, account, NULL, pw, got_cb, g, &err);
	assert_non_null(g->r);
}

/* A pool on the scripted server with conf's numbers. */
static struct imap_pool *
pool_on(struct event_base *base, struct server *s, struct imap_pool_conf *pc)
{
	const char *err = NULL;
	struct imap_pool *p;

	pc->url = s->url;
	pc->allow_plaintext = true;
	p = imap_pool_new(base, pc, &err);
	assert_non_null(p);
	return p;
}

/* Seconds since an arbitrary start, monotonic. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connection given back healthy is reused, then logged out after idle_seconds. */
static void
test_idle_logout(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.idle_seconds = 1};
	struct imap_pool *p;
	struct got g;

	(void)state;
	srv_start(&s, base);
	p = pool_on(base, &s, &pc);
	ask(p, "alice", "pw", &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.err, IMAP_POOL_OK);
	imap_pool_put(p, g.c, true);
	ask(p, "alice", "pw", &g);
	run_until(base, &g.done, 2000);
	assert_int_equal(g.err, IMAP_POOL_OK);
	assert_int_equal(imap_pool_opened_total(p), 1); /* reused */
	imap_pool_put(p, g.c, true);
	run_ms(base, 500);
	assert_int_equal(s.logouts, 0);
	assert_int_equal(imap_pool_open_count(p, "alice"), 1);
	run_ms(base, 800);
	assert_int_equal(s.logouts, 1);
	assert_int_equal(imap_pool_open_count(p, "alice"), 0);
	assert_int_equal(imap_pool_accounts(p), 0); /* nothing kept for alice */
	run_ms(base, 50);
	assert_null(s.conns); /* the socket is closed too */
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/* Past max_waiters an account's requests are refused; a wait ends at wait_timeout. */
static void
test_queue_full_and_timeout(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.max_per_account = 1, .max_waiters = 2, .wait_timeout = 1};
	struct imap_pool *p;
	struct got g1, g2, g3, g4;
	const char *err = NULL;
	double t0;

	(void)state;
	srv_start(&s, base);
	p = pool_on(base, &s, &pc);
	ask(p, "bob", "pw", &g1);
	run_until(base, &g1.done, 2000);
	assert_int_equal(g1.err, IMAP_POOL_OK);
	t0 = now_s();
	ask(p, "bob", "pw", &g2);
	ask(p, "bob", "pw", &g4);
	assert_null(imap_pool_get(p, "bob", NULL, "pw", got_cb, NULL, &err));
	assert_non_null(strstr(err, "too many"));
	/* another account has its own queue */
	ask(p, "carol", "pw", &g3);
	imap_pool_cancel(g3.r);
	run_until(base, &g2.done, 3000);
	assert_true(g2.done);
	assert_int_equal(g2.err, IMAP_POOL_TIMEOUT);
	assert_true(now_s() - t0 > 0.8 && now_s() - t0 < 1.5);
	/* bob's other waiter too (its deadline may fall on a later turn of the loop) */
	run_until(base, &g4.done, 3000);
	assert_true(g4.done);
	assert_int_equal(g4.err, IMAP_POOL_TIMEOUT);
	assert_int_equal(s.accepted, 2); /* bob's one and carol's: the waits opened none */
	imap_pool_put(p, g1.c, false);
	assert_int_equal(imap_pool_accounts(p),
	                 1); /* carol's idle one (opened before the cancel) */
	assert_int_equal(imap_pool_open_count(p, "bob"), 0);
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/* A new password never gets the connection logged in with the old one. */
static void
test_changed_password(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.max_per_account = 1};
	struct imap_pool *p;
	struct got g1, g2, g3;
	struct imap_client *old;

	(void)state;
	srv_start(&s, base);
	s.passwords[0] = "old";
	p = pool_on(base, &s, &pc);
	ask(p, "dave", "old", &g1);
	run_until(base, &g1.done, 2000);
	assert_int_equal(g1.err, IMAP_POOL_OK);
	old = g1.c;
	imap_pool_put(p, old, true);
	/* the password changed on the server: the old one's connection is not given */
	s.passwords[0] = "new";
	ask(p, "dave", "new", &g2);
	run_until(base, &g2.done, 2000);
	assert_int_equal(g2.err, IMAP_POOL_OK);
	assert_int_equal(imap_pool_opened_total(p), 2);
	assert_int_equal(s.logins, 2);
	assert_int_equal(s.logouts, 1); /* the idle old one made room (cap 1) */
	imap_pool_put(p, g2.c, true);
	/* the old password again: refused by the server, not handed the new one's */
	ask(p, "dave", "old", &g3);
	run_until(base, &g3.done, 2000);
	assert_int_equal(g3.err, IMAP_POOL_AUTH);
	assert_null(g3.c);
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/*
 * Two login names of one account (the phone's spellings): they share the
 * account's cap, each logs in as itself, and neither is handed a connection
 * the other logged in.
 */
static void
test_login_names(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.max_per_account = 2};
	struct imap_pool *p;
	struct got g1, g2, g3;
	const char *err = NULL;

	(void)state;
	srv_start(&s, base);
	s.passwords[0] = "pw";
	p = pool_on(base, &s, &pc);
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	memset(&g3, 0, sizeof(g3));
	g1.r = imap_pool_get(p, "erin@example.com", "erin", "pw", got_cb, &g1, &err);
	g2.r = imap_pool_get(p, "erin@example.com", "Erin", "pw", got_cb, &g2, &err);
	g3.r = imap_pool_get(p, "erin@example.com", "erin", "pw", got_cb, &g3, &err);
	assert_non_null(g1.r);
	assert_non_null(g2.r);
	assert_non_null(g3.r);
	run_until(base, &g2.done, 2000);
	run_until(base, &g1.done, 2000);
	assert_int_equal(g1.err, IMAP_POOL_OK);
	assert_int_equal(g2.err, IMAP_POOL_OK);
	/* the cap is the account's: the third waits, whatever its name */
	run_ms(base, 100);
	assert_false(g3.done);
	assert_int_equal(imap_pool_open_count(p, "erin@example.com"), 2);
	assert_int_equal(srv_user_count(&s, "erin"), 1);
	assert_int_equal(srv_user_count(&s, "Erin"), 1);
	/* "Erin"'s connection given back is not "erin"'s: it makes room */
	imap_pool_put(p, g2.c, true);
	run_until(base, &g3.done, 2000);
	assert_int_equal(g3.err, IMAP_POOL_OK);
	assert_int_equal(srv_user_count(&s, "erin"), 2);
	assert_int_equal(srv_user_count(&s, "Erin"), 0);
	imap_pool_put(p, g1.c, true);
	imap_pool_put(p, g3.c, true);
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20);
	event_base_free(base);
}

/*
 * The server's refusal comes after the connection it did take went back idle:
 * the request the refused one was opened for gets the idle one at once (no
 * later put would wake it).
 */
static void
test_refusal_after_idle(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.max_per_account = 3, .wait_timeout = 5};
	struct imap_pool *p;
	struct got g[2], *w, *o;

	(void)state;
	srv_start(&s, base);
	s.max_per_user = 1;
	s.hold_refusals = true;
	p = pool_on(base, &s, &pc);
	ask(p, "erin", "pw", &g[0]);
	ask(p, "erin", "pw", &g[1]);
	for (int t = 0; !g[0].done && !g[1].done && t < 2000; t += 5)
		run_ms(base, 5);
	w = g[0].done ? &g[0] : &g[1];
	o = w == &g[0] ? &g[1] : &g[0];
	assert_true(w->done);
	assert_int_equal(w->err, IMAP_POOL_OK);
	imap_pool_put(p, w->c, true); /* idle before the other login is refused */
	run_ms(base, 50);
	assert_false(o->done);
	assert_int_equal(s.refused_limit, 1);
	srv_send_refusals(&s);
	run_until(base, &o->done, 1000);
	assert_true(o->done);
	assert_int_equal(o->err, IMAP_POOL_OK);
	assert_ptr_equal(o->c, w->c);
	assert_int_equal(imap_pool_open_count(p, "erin"), 1);
	imap_pool_put(p, o->c, true);
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20);
	event_base_free(base);
}

/* The server's own limit: requests wait for the connection it allows, no retry storm. */
static void
test_server_limit(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.max_per_account = 3, .retry_ms = 100};
	struct imap_pool *p;
	struct got g[4];

	(void)state;
	srv_start(&s, base);
	s.max_per_user = 1;
	p = pool_on(base, &s, &pc);
	for (int i = 0; i < 4; i++)
		ask(p, "erin", "pw", &g[i]);
	run_until(base, &g[0].done, 2000);
	run_ms(base, 300);
	assert_int_equal(g[0].err, IMAP_POOL_OK);
	assert_false(g[1].done); /* waiting, not told the password is wrong */
	assert_int_equal(s.logins, 1);
	assert_true(s.refused_limit >= 1 && s.refused_limit <= 2); /* tried within its cap once */
	assert_int_equal(imap_pool_open_count(p, "erin"), 1);
	for (int i = 1; i < 4; i++) {
		imap_pool_put(p, g[i - 1].c, true);
		run_until(base, &g[i].done, 2000);
		assert_int_equal(g[i].err, IMAP_POOL_OK);
		assert_ptr_equal(g[i].c, g[0].c); /* the one connection, passed on */
	}
	assert_true(s.refused_limit <= 2);
	assert_int_equal(s.accepted, 1 + s.refused_limit);
	imap_pool_put(p, g[3].c, true);
	imap_pool_free(p);
	srv_stop(&s);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/*
 * Over the limit with none open (another client holds the server's one): a
 * retry every retry_ms, not a storm, until the request's wait ends.
 */
static void
test_server_limit_none_open(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.retry_ms = 200, .wait_timeout = 1};
	struct imap_pool *p, *other;
	struct got g0, g;

	(void)state;
	srv_start(&s, base);
	s.max_per_user = 1;
	other = pool_on(base, &s, &(struct imap_pool_conf){0});
	ask(other, "fay", "pw", &g0);
	run_until(base, &g0.done, 2000);
	assert_int_equal(g0.err, IMAP_POOL_OK);
	p = pool_on(base, &s, &pc);
	ask(p, "fay", "pw", &g);
	run_until(base, &g.done, 3000);
	assert_int_equal(g.err, IMAP_POOL_TIMEOUT);
	run_ms(base, 300); /* a login under way at the timeout is refused too */
	assert_true(s.refused_limit >= 3 && s.refused_limit <= 7); /* ~1 s / 200 ms */
	assert_int_equal(imap_pool_accounts(p), 0); /* and no retry armed for nobody */
	run_ms(base, 300);
	assert_true(s.refused_limit <= 7);
	imap_pool_put(other, g0.c, true);
	imap_pool_free(p);
	imap_pool_free(other);
	srv_stop(&s);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/*
 * 1,000 accounts, each a request and its connection given back (or closed,
 * or a wrong password): once they hold nothing, the pool keeps no entry for
 * them. Also the time a give-back takes with every account holding an idle
 * connection (no walk over the accounts).
 */
static void
test_many_accounts(void **state)
{
	struct event_base *base = event_base_new();
	struct server s;
	struct imap_pool_conf pc = {.idle_seconds = 1};
	struct imap_pool *p;
	enum { N = 1000, BATCH = 100 };
	struct got *g = xcalloc(N, sizeof(*g));
	char name[32];
	double t0, t_put;

	(void)state;
	srv_start(&s, base);
	p = pool_on(base, &s, &pc);
	for (int b = 0; b < N; b += BATCH) {
		for (int i = b; i < b + BATCH; i++) {
			snprintf(name, sizeof(name), "user%04d", i);
			ask(p, name, i % 10 == 9 ? "wrong" : "pw", &g[i]);
		}
		for (int i = b; i < b + BATCH; i++)
			run_until(base, &g[i].done, 3000);
	}
	t0 = now_s();
	for (int i = 0; i < N; i++) {
		assert_true(g[i].done);
		if (i % 10 == 9) {
			assert_int_equal(g[i].err, IMAP_POOL_AUTH);
			continue;
		}
		assert_int_equal(g[i].err, IMAP_POOL_OK);
		imap_pool_put(p, g[i].c, i % 10 != 8);
	}
	t_put = now_s() - t0;
	print_message("# %d give-backs with %u accounts: %.1f us each\n", N, imap_pool_accounts(p),
	              t_put * 1e6 / N);
	assert_int_equal(imap_pool_accounts(p), N - 2 * N / 10); /* idle connections held */
	run_ms(base, 1300);
	assert_int_equal(imap_pool_accounts(p), 0);
	assert_int_equal(s.logouts, N - 2 * N / 10);
	imap_pool_free(p);
	srv_stop(&s);
	free(g);
	run_ms(base, 20); /* libevent's deferred frees of the closed sockets */
	event_base_free(base);
}

/* A request's answer that is not looked at. */
static void
noop_cb(void *arg, struct imap_client *c, enum imap_pool_err err, const char *msg)
{
	(void)arg;
	(void)c;
	(void)err;
	(void)msg;
}

/*
 * The pool's TLS context is made once: a CA file that cannot be loaded is
 * refused when the pool is made (not found out per connection); and the
 * cost of making a pool (the system store loaded) against a connection.
 */
static void
test_tls_context(void **state)
{
	struct event_base *base = event_base_new();
	struct imap_pool_conf pc = {.url = "imaps://127.0.0.1:1", .ca_file = "/nonexistent/ca.pem"};
	const char *err = NULL;
	struct imap_pool *p;
	double t0;

	(void)state;
	assert_null(imap_pool_new(base, &pc, &err));
	assert_non_null(strstr(err, "CA"));
	pc.ca_file = NULL;
	t0 = now_s();
	p = imap_pool_new(base, &pc, &err);
	assert_non_null(p);
	print_message("# a pool with the system store: %.2f ms\n", (now_s() - t0) * 1e3);
	/* a connection's setup through the pool (the shared context) ... */
	t0 = now_s();
	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "u%d", i);
		assert_non_null(imap_pool_get(p, name, NULL, "pw", noop_cb, NULL, &err));
	}
	print_message("# imaps:// connection setup, shared context: %.3f ms each\n",
	              (now_s() - t0) * 1e2);
	/* ... against a client making its own context (as each pooled one did) */
	t0 = now_s();
	for (int i = 0; i < 10; i++) {
		struct imap_client_conf cc = {.url = pc.url, .user = "u", .password = "pw"};
		static const struct imap_client_cbs cbs = {0};
		struct imap_client *c = imap_client_new(base, &cc, &cbs, NULL, &err);
		assert_non_null(c);
		imap_client_free(c);
	}
	print_message("# imaps:// connection setup, own context: %.3f ms each\n",
	              (now_s() - t0) * 1e2);
	imap_pool_free(p);
	run_ms(base, 20);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle_logout),
	    cmocka_unit_test(test_queue_full_and_timeout),
	    cmocka_unit_test(test_changed_password),
	    cmocka_unit_test(test_login_names),
	    cmocka_unit_test(test_server_limit),
	    cmocka_unit_test(test_refusal_after_idle),
	    cmocka_unit_test(test_server_limit_none_open),
	    cmocka_unit_test(test_many_accounts),
	    cmocka_unit_test(test_tls_context),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
