/*
 * test_imap_client.c: the IMAP client (src/imap/imap_client.c) against a
 * scripted server on 127.0.0.1 in the same event loop: what it writes, line
 * by line, for logins without SASL-IR or AUTH=PLAIN, synchronising literals
 * (nothing of the literal before the server's "+"), pipelined commands and
 * where their untagged data goes, IDLE and DONE, and the drops: malformed
 * input, a silent server, BYE, no STARTTLS on imap://, full queues.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "imap/imap_client.h"
#include "lib/util.h"

/* One step of the server's script: on the line expect, write reply (after delay_ms). */
struct step {
	const char *expect; /* NULL: the end of the script */
	const char *reply;  /* may hold several lines; NULL: none */
	int delay_ms;
};

struct server {
	struct event_base *base;
	struct evconnlistener *lis;
	struct bufferevent *bev;
	const char *greeting;
	const struct step *script;
	int at;
	bool pending;     /* a delayed reply is waiting */
	struct sbuf seen; /* every line the client wrote, "early:" before a "+" */
	struct event *delay;
	int port;
};

struct client_log {
	struct sbuf t; /* what the client's callbacks saw */
	bool ready;
	int errors;
	enum imap_error err;
	struct imap_client *c;
	struct event_base *base;
};

/* Write the current step's reply. */
static void
srv_reply(struct server *s)
{
	const struct step *st = &s->script[s->at - 1];

	s->pending = false;
	if (st->reply != NULL && s->bev != NULL)
		bufferevent_write(s->bev, st->reply, strlen(st->reply));
}

/* A delayed reply is due. */
static void
srv_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	srv_reply(arg);
}

/* Each line the client wrote: logged, and answered when it is the next expected. */
static void
srv_read(struct bufferevent *bev, void *arg)
{
	struct server *s = arg;
	char *line;
	size_t n;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF_STRICT)) !=
	       NULL) {
		const struct step *st = &s->script[s->at];

		if (s->pending)
			sbuf_add(&s->seen, "early:");
		sbuf_add(&s->seen, line);
		sbuf_add(&s->seen, "\n");
		if (st->expect != NULL && strcmp(line, st->expect) == 0) {
			s->at++;
			if (st->delay_ms > 0) {
				struct timeval tv = {st->delay_ms / 1000,
				                     (st->delay_ms % 1000) * 1000};

				s->pending = true;
				evtimer_add(s->delay, &tv);
			} else {
				srv_reply(s);
			}
		}
		free(line);
	}
}

/* The client closed: forget its connection. */
static void
srv_event(struct bufferevent *bev, short what, void *arg)
{
	struct server *s = arg;

	bufferevent_free(s->bev);
	s->bev = NULL;
}

/* A client connected: greet it. */
static void
srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct server *s = arg;

	s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(s->bev, srv_read, NULL, srv_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	bufferevent_write(s->bev, s->greeting, strlen(s->greeting));
}

/* Listen on 127.0.0.1 (a free port) with a greeting and a script. */
static void
srv_start(struct server *s, struct event_base *base, const char *greeting,
          const struct step *script)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->base = base;
	s->greeting = greeting;
	s->script = script;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lis =
	    evconnlistener_new_bind(base, srv_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                            16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(s->lis);
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &sl);
	s->port = ntohs(sin.sin_port);
	s->delay = evtimer_new(base, srv_delay_cb, s);
}

/* Stop listening and free the server. */
static void
srv_stop(struct server *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	evconnlistener_free(s->lis);
	event_free(s->delay);
	free(s->seen.p);
}

/* ---- the client's side ---- */

/* Logged in: noted, and the loop stops. */
static void
on_ready(struct imap_client *c, void *arg)
{
	struct client_log *cl = arg;

	cl->ready = true;
	sbuf_add(&cl->t, "ready\n");
	event_base_loopbreak(cl->base);
}

/* Untagged data outside commands: logged, and the loop stops. */
static void
on_untagged(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct client_log *cl = arg;
	char buf[256];

	sbuf_printf(&cl->t, "untagged %s\n", imap_response_dump(r, buf, sizeof(buf)));
	event_base_loopbreak(cl->base);
}

/* The drop: logged, and the loop stops. */
static void
on_error(struct imap_client *c, enum imap_error e, const char *msg, void *arg)
{
	struct client_log *cl = arg;

	cl->errors++;
	cl->err = e;
	sbuf_printf(&cl->t, "error %s\n", msg);
	event_base_loopbreak(cl->base);
}

/* The argument cmd_cb reads: the log, and the command's name in it. */
struct cmd_arg {
	struct client_log *cl;
	char name[16];
};

/* A command's callback: its untagged data and status into the log. */
static void
cmd_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct cmd_arg *ca = arg;
	struct client_log *cl = ca->cl;
	const char *name = ca->name;
	char buf[256];

	if (r == NULL) {
		sbuf_printf(&cl->t, "%s: dropped\n", name);
		return;
	}
	sbuf_printf(&cl->t, "%s: %s\n", name, imap_response_dump(r, buf, sizeof(buf)));
	if (r->kind == IMAP_RESP_TAGGED)
		event_base_loopbreak(cl->base);
}

/* What the next connect_client sets (tests that need other values change them). */
static unsigned connect_timeout_s = 5, idle_renew_s;
static struct imap_gate *gate;

/* A client for the scripted server, its callbacks into cl. */
static struct imap_client *
connect_client(struct event_base *base, int port, struct client_log *cl, bool plain,
               unsigned max_queue, unsigned cmd_timeout)
{
	char url[64];
	struct imap_client_conf conf = {.user = "alice",
	                                .password = "p\"w",
	                                .allow_plaintext = plain,
	                                .max_queue = max_queue,
	                                .command_timeout = cmd_timeout,
	                                .connect_timeout = connect_timeout_s,
	                                .idle_renew = idle_renew_s,
	                                .gate = gate};
	struct imap_client_cbs cbs = {
	    .on_ready = on_ready, .on_untagged = on_untagged, .on_error = on_error};
	const char *err;

	snprintf(url, sizeof(url), "imap://127.0.0.1:%d", port);
	conf.url = url;
	memset(cl, 0, sizeof(*cl));
	cl->base = base;
	cl->c = imap_client_new(base, &conf, &cbs, cl, &err);
	assert_non_null(cl->c);
	return cl->c;
}

/*
 * Run the loop until a callback breaks it (or 30 s pass: under valgrind on a
 * loaded machine the scripted server and the client, one thread, took over
 * 5 s for an exchange; a loop that ends early costs nothing).
 */
static void
loop(struct event_base *base)
{
	struct timeval tv = {30, 0};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Run the loop until the client's log holds needle (at most 50 rounds). */
static void
wait_for(struct event_base *base, struct client_log *cl, const char *needle)
{
	for (int i = 0; i < 50 && (cl->t.p == NULL || strstr(cl->t.p, needle) == NULL); i++)
		loop(base);
	assert_non_null(strstr(cl->t.p, needle));
}

/* AUTHENTICATE PLAIN without SASL-IR waits for "+"; a literal without LITERAL+ too. */
static void
test_plain_and_sync_literal(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN", "+ \r\n", 0},
	    {"AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n", 0},
	    {"a2 APPEND INBOX () {5}", "+ go ahead\r\n", 200},
	    {"hello", "* 3 EXISTS\r\na2 OK [APPENDUID 7 9] Append completed.\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	struct cmd_arg ca;
	struct imap_cmd *cmd;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n", script);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_true(cl.ready);
	assert_true(imap_client_caps(cl.c) & IMAP_CAP_IDLE);
	ca.cl = &cl;
	snprintf(ca.name, sizeof(ca.name), "append");
	cmd = imap_cmd_new("APPEND");
	assert_int_equal(imap_cmd_mailbox(cmd, cl.c, "INBOX"), 0);
	imap_cmd_raw(cmd, "()");
	imap_cmd_literal(cmd, "hello", 5);
	assert_int_equal(imap_client_command(cl.c, cmd, cmd_cb, NULL, &ca, &err), 0);
	loop(base);
	/* Nothing of the literal before the "+" (no "early:" line). */
	assert_string_equal(s.seen.p, "a1 AUTHENTICATE PLAIN\nAGFsaWNlAHAidw==\n"
	                              "a2 APPEND INBOX () {5}\nhello\n");
	assert_string_equal(cl.t.p, "ready\nappend: * 3 EXISTS\n"
	                            "append: a2 OK [APPENDUID 7 9] text=Append completed.\n");
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* LOGIN when AUTH=PLAIN is not offered; LITERAL+ literals go at once. */
static void
test_login_literal_plus_pipelined(void **state)
{
	static const struct step script[] = {
	    {"a1 CAPABILITY", "* CAPABILITY IMAP4rev1 LITERAL+ ENABLE CONDSTORE\r\na1 OK done\r\n",
	     0},
	    {"a2 LOGIN alice \"p\\\"w\"", "a2 OK Logged in\r\n", 0},
	    {"a3 CAPABILITY", "* CAPABILITY IMAP4rev1 LITERAL+ ENABLE CONDSTORE IDLE\r\na3 OK\r\n",
	     0},
	    {"a4 ENABLE CONDSTORE", "* ENABLED CONDSTORE\r\na4 OK Enabled\r\n", 0},
	    {"a5 SELECT \"a b\"", NULL, 0},
	    {"a6 APPEND x {3+}", NULL, 0},
	    {"abc",
	     "* 2 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\na5 OK selected\r\n* 3 EXISTS\r\n"
	     "a6 OK appended\r\n",
	     0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	struct cmd_arg ca1, ca2;
	struct imap_cmd *cmd;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK ready\r\n", script);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_true(cl.ready);
	assert_int_equal(imap_client_enabled(cl.c), IMAP_CAP_CONDSTORE);
	ca1.cl = ca2.cl = &cl;
	snprintf(ca1.name, sizeof(ca1.name), "select");
	snprintf(ca2.name, sizeof(ca2.name), "append");
	cmd = imap_cmd_new("SELECT");
	imap_cmd_astring(cmd, "a b");
	assert_int_equal(imap_client_command(cl.c, cmd, cmd_cb, NULL, &ca1, &err), 0);
	cmd = imap_cmd_new("APPEND");
	imap_cmd_astring(cmd, "x");
	imap_cmd_literal(cmd, "abc", 3);
	assert_int_equal(imap_client_command(cl.c, cmd, cmd_cb, NULL, &ca2, &err), 0);
	assert_int_equal(imap_client_pending(cl.c), 2);
	wait_for(base, &cl, "append: a6");
	assert_string_equal(s.seen.p,
	                    "a1 CAPABILITY\na2 LOGIN alice \"p\\\"w\"\na3 CAPABILITY\n"
	                    "a4 ENABLE CONDSTORE\na5 SELECT \"a b\"\na6 APPEND x {3+}\nabc\n");
	/* Untagged data goes to the oldest command in flight. */
	assert_string_equal(cl.t.p,
	                    "ready\nselect: * 2 EXISTS\nselect: * OK [UIDVALIDITY 5] text=x\n"
	                    "select: a5 OK text=selected\nappend: * 3 EXISTS\n"
	                    "append: a6 OK text=appended\n");
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* IDLE: "+", untagged data to on_untagged, DONE; a command ends IDLE first. */
static void
test_idle(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n",
	     0},
	    {"a2 IDLE", "+ idling\r\n* 4 EXISTS\r\n", 0},
	    {"DONE", "a2 OK Idle completed.\r\n", 0},
	    {"a3 NOOP", "a3 OK NOOP completed.\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	struct cmd_arg ca;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", script);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_true(cl.ready);
	assert_int_equal(imap_client_idle(cl.c, &err), 0);
	assert_int_equal(imap_client_state(cl.c), IMAP_STATE_IDLE);
	loop(base); /* the EXISTS */
	ca.cl = &cl;
	snprintf(ca.name, sizeof(ca.name), "noop");
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 0);
	loop(base);
	assert_int_equal(imap_client_state(cl.c), IMAP_STATE_READY);
	assert_string_equal(s.seen.p,
	                    "a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==\na2 IDLE\nDONE\na3 NOOP\n");
	assert_string_equal(cl.t.p,
	                    "ready\nuntagged * 4 EXISTS\nnoop: a3 OK text=NOOP completed.\n");
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* Malformed input drops the connection: queued commands get NULL, then on_error. */
static void
test_malformed_drops(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1] hi\r\n", 0},
	    {"a2 NOOP", "* LIST (\\Sent \"/\" x\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	struct cmd_arg ca;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", script);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	ca.cl = &cl;
	snprintf(ca.name, sizeof(ca.name), "noop");
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 0);
	loop(base);
	assert_int_equal(cl.errors, 1);
	assert_int_equal(cl.err, IMAP_ERR_PROTOCOL);
	assert_int_equal(imap_client_state(cl.c), IMAP_STATE_DEAD);
	assert_non_null(strstr(cl.t.p, "noop: dropped\nerror list not closed"));
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 -1);
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* A server that stays silent under a command: TIMEOUT. A full queue refuses. */
static void
test_timeout_and_queue_cap(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1] hi\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	struct cmd_arg ca;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", script);
	connect_client(base, s.port, &cl, true, 2, 1);
	loop(base);
	ca.cl = &cl;
	snprintf(ca.name, sizeof(ca.name), "noop");
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 0);
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 0);
	assert_int_equal(imap_client_command(cl.c, imap_cmd_new("NOOP"), cmd_cb, NULL, &ca, &err),
	                 -1);
	assert_string_equal(err, "too many IMAP commands queued");
	loop(base);
	assert_int_equal(cl.err, IMAP_ERR_TIMEOUT);
	assert_string_equal(cl.t.p, "ready\nnoop: dropped\nnoop: dropped\n"
	                            "error no answer to a command in time\n");
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* imap:// without STARTTLS: the password never goes in the clear. A wrong one: AUTH. */
static void
test_no_starttls_refused_and_wrong_password(void **state)
{
	static const struct step none[] = {{NULL, NULL, 0}};
	static const struct step refuse[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==",
	     "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", 0},
	    {NULL, NULL, 0},
	};
	static const struct step busy[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==",
	     "a1 NO [UNAVAILABLE] Temporary authentication failure.\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", none);
	connect_client(base, s.port, &cl, false, 0, 0);
	loop(base);
	assert_int_equal(cl.err, IMAP_ERR_REFUSED);
	assert_null(s.seen.p); /* nothing written at all */
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", refuse);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_int_equal(cl.errors, 1);
	assert_int_equal(cl.err, IMAP_ERR_AUTH);
	assert_false(cl.ready);
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);

	/* A server that cannot take logins now (RFC 5530 UNAVAILABLE): not the password. */
	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", busy);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_int_equal(cl.errors, 1);
	assert_int_equal(cl.err, IMAP_ERR_UNAVAILABLE);
	assert_non_null(strstr(cl.t.p, "[UNAVAILABLE] Temporary authentication failure."));
	assert_false(cl.ready);
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* Freeing the client from inside its own callback is safe. */
static void
free_in_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct client_log *cl = arg;

	imap_client_free(c);
	cl->c = NULL;
	event_base_loopbreak(cl->base);
}

/* Freeing the client inside a command's callback is safe. */
static void
test_free_inside_callback(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1] hi\r\n", 0},
	    {"a2 NOOP", "* 1 EXISTS\r\n* 2 EXISTS\r\na2 OK done\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", script);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_int_equal(
	    imap_client_command(cl.c, imap_cmd_new("NOOP"), free_in_cb, NULL, &cl, &err), 0);
	loop(base);
	assert_null(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* Run the sequence (or the tests). */
/* Run the loop until the server saw needle (at most 5 s). */
static void
wait_seen(struct event_base *base, struct server *s, const char *needle)
{
	struct timeval tv = {0, 100000};

	for (int i = 0; i < 50 && (s->seen.p == NULL || strstr(s->seen.p, needle) == NULL); i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_non_null(s->seen.p);
	assert_non_null(strstr(s->seen.p, needle));
}

/* IDLE is renewed (DONE, IDLE again) every idle_renew seconds. */
static void
test_idle_renewed(void **state)
{
	static const struct step script[] = {
	    {"a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n",
	     0},
	    {"a2 IDLE", "+ idling\r\n", 0},
	    {"DONE", "a2 OK Idle completed.\r\n", 0},
	    {"a3 IDLE", "+ idling\r\n", 0},
	    {NULL, NULL, 0},
	};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	const char *err;
	(void)state;

	srv_start(&s, base, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n", script);
	idle_renew_s = 1;
	connect_client(base, s.port, &cl, true, 0, 0);
	idle_renew_s = 0;
	loop(base);
	assert_int_equal(imap_client_idle(cl.c, &err), 0);
	wait_seen(base, &s, "a3 IDLE");
	assert_string_equal(s.seen.p, "a1 AUTHENTICATE PLAIN AGFsaWNlAHAidw==\na2 IDLE\nDONE\n"
	                              "a3 IDLE\n");
	assert_int_equal(imap_client_state(cl.c), IMAP_STATE_IDLE);
	assert_int_equal(cl.errors, 0);
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/* No greeting within connect_timeout: TIMEOUT; a closed port: CONNECT; BYE: CLOSED. */
static void
test_connect_failures(void **state)
{
	static const struct step none[] = {{NULL, NULL, 0}};
	struct event_base *base = event_base_new();
	struct server s;
	struct client_log cl;
	int port;
	(void)state;

	srv_start(&s, base, "", none);
	connect_timeout_s = 1;
	connect_client(base, s.port, &cl, true, 0, 0);
	connect_timeout_s = 5;
	loop(base);
	assert_int_equal(cl.errors, 1);
	assert_int_equal(cl.err, IMAP_ERR_TIMEOUT);
	imap_client_free(cl.c);
	free(cl.t.p);
	port = s.port;
	srv_stop(&s);

	connect_client(base, port, &cl, true, 0, 0);
	loop(base);
	assert_int_equal(cl.err, IMAP_ERR_CONNECT);
	imap_client_free(cl.c);
	free(cl.t.p);

	srv_start(&s, base, "* BYE Too many connections\r\n", none);
	connect_client(base, s.port, &cl, true, 0, 0);
	loop(base);
	assert_int_equal(cl.errors, 1);
	assert_int_equal(cl.err, IMAP_ERR_CLOSED);
	assert_string_equal(cl.t.p, "error Too many connections\n");
	imap_client_free(cl.c);
	free(cl.t.p);
	srv_stop(&s);
	event_base_free(base);
}

/*
 * The login gate: past its logins in flight a client waits unconnected, its
 * connect timer not running, and connects when a login ends (ready, failed,
 * or the client freed); a waiting client freed leaves the queue.
 */
static void
test_gate(void **state)
{
	static const struct step slow[] = {
	    {"a1 AUTHENTICATE PLAIN", "+ \r\n", 0},
	    {"AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", 3000},
	    {NULL, NULL, 0},
	};
	static const struct step quick[] = {
	    {"a1 AUTHENTICATE PLAIN", "+ \r\n", 0},
	    {"AGFsaWNlAHAidw==", "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", 0},
	    {NULL, NULL, 0},
	};
	static const struct step none[] = {{NULL, NULL, 0}};
	const char *greet = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n";
	struct event_base *base = event_base_new();
	struct server sa, sb, sc;
	struct client_log a, b, c;
	struct timeval short_tv = {0, 100000};
	(void)state;

	gate = imap_gate_new(1);
	srv_start(&sa, base, greet, slow);
	srv_start(&sb, base, greet, quick);
	srv_start(&sc, base, greet, quick);
	connect_timeout_s = 20; /* a's login takes 3 s (a loaded machine, valgrind: more) */
	connect_client(base, sa.port, &a, true, 0, 0);
	connect_timeout_s = 2; /* less than a's login: b's timer must wait for its turn */
	connect_client(base, sb.port, &b, true, 0, 0);
	connect_client(base, sc.port, &c, true, 0, 0);
	connect_timeout_s = 5;
	assert_int_equal(imap_gate_in_flight(gate), 1);
	assert_int_equal(imap_gate_waiting(gate), 2);
	for (int i = 0; i < 50 && sa.seen.p == NULL; i++) { /* a is logging in */
		event_base_loopexit(base, &short_tv);
		event_base_dispatch(base);
	}
	assert_non_null(sa.bev);
	assert_null(sb.bev); /* not even connected */
	assert_null(sc.bev);
	imap_client_free(c.c); /* gone while waiting: never connects */
	assert_int_equal(imap_gate_waiting(gate), 1);
	wait_for(base, &a, "ready"); /* a's login, 3 s: longer than b's connect timeout */
	assert_false(b.ready);
	wait_for(base, &b, "ready");
	assert_int_equal(b.errors, 0);
	assert_int_equal(imap_gate_in_flight(gate), 0);
	assert_int_equal(imap_gate_waiting(gate), 0);
	assert_null(sc.bev);
	assert_null(sc.seen.p);
	imap_client_free(a.c);
	imap_client_free(b.c);
	free(a.t.p);
	free(b.t.p);
	free(c.t.p);
	srv_stop(&sa);
	srv_stop(&sb);
	srv_stop(&sc);

	/* A failed login gives its slot up too. */
	srv_start(&sa, base, "* BYE Too many connections\r\n", none);
	srv_start(&sb, base, greet, quick);
	connect_client(base, sa.port, &a, true, 0, 0);
	connect_client(base, sb.port, &b, true, 0, 0);
	assert_int_equal(imap_gate_waiting(gate), 1);
	wait_for(base, &a, "error");
	assert_int_equal(a.err, IMAP_ERR_CLOSED);
	wait_for(base, &b, "ready");
	assert_int_equal(imap_gate_in_flight(gate), 0);
	imap_client_free(a.c);
	imap_client_free(b.c);
	free(a.t.p);
	free(b.t.p);
	srv_stop(&sa);
	srv_stop(&sb);
	imap_gate_free(&gate);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_and_sync_literal),
	    cmocka_unit_test(test_login_literal_plus_pipelined),
	    cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_malformed_drops),
	    cmocka_unit_test(test_timeout_and_queue_cap),
	    cmocka_unit_test(test_no_starttls_refused_and_wrong_password),
	    cmocka_unit_test(test_free_inside_callback),
	    cmocka_unit_test(test_idle_renewed),
	    cmocka_unit_test(test_connect_failures),
	    cmocka_unit_test(test_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
