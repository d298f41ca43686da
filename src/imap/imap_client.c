/*
 * imap_client.c: one IMAP connection on libevent (imap_client.h).
 *
 * Design. A connection is a socket bufferevent; for imaps:// an OpenSSL
 * filter bufferevent is stacked on it once TCP is up, and for imap:// the
 * same happens after STARTTLS's OK (any byte the server sent after that OK
 * is an error: it would have come before the encryption). Verification is
 * against ca_file or the system store, with SNI and the host name (or IP
 * address) checked by OpenSSL, as the proxy's upstream does.
 *
 * Input goes through the parser (imap_parse.h) chunk by chunk; each response
 * is routed: "+" to the command that waits for it (a synchronising literal,
 * IDLE, AUTHENTICATE without SASL-IR), a tagged status to its command,
 * untagged responses to the oldest command in flight or to on_untagged.
 * CAPABILITY and ENABLED data and CAPABILITY codes are noted on the way.
 *
 * The login is a chain of internal commands (CAPABILITY, STARTTLS,
 * AUTHENTICATE/LOGIN, ENABLE) on the same machinery as the caller's.
 *
 * Output. A command is its bytes after the tag ("wire") and the positions of
 * its literals in them. pump() writes queued commands in order until one must
 * wait for a "+" (a synchronising literal) or IDLE runs; it resumes when the
 * "+" (or IDLE's tagged OK) comes.
 *
 * Re-entrancy: bufferevents use BEV_OPT_DEFER_CALLBACKS, so no libevent
 * callback runs inside a call into this file. Every entry from libevent
 * counts depth; imap_client_free inside a callback only marks the client,
 * which is freed when the outermost entry returns.
 */
#include "imap/imap_client.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/tls.h"

/* A literal up to this size may be sent without waiting under LITERAL-. */
#define LITERAL_MINUS_MAX 4096
/* Most literals one command may carry. */
#define CMD_LITS_MAX 16

struct lit {
	size_t off; /* where its bytes start in wire */
	size_t len;
};

struct imap_cmd {
	TAILQ_ENTRY(imap_cmd) qlink; /* in queue until wholly written */
	TAILQ_ENTRY(imap_cmd) ilink; /* in inflight from its tag on */
	struct sbuf wire;            /* after the tag, without the final CRLF */
	struct lit lits[CMD_LITS_MAX];
	unsigned nlits;
	unsigned next_lit; /* the next literal to announce */
	size_t sent;       /* bytes of wire written */
	char tag[16];
	imap_cmd_cb cb;
	imap_chunk_cb chunk;
	void *arg;
	char *cont_line; /* written on "+" (AUTHENTICATE PLAIN without SASL-IR) */
	bool sensitive;
	bool started; /* its tag is written */
	bool in_queue;
	bool waiting; /* waits for "+" before a literal's bytes */
	bool is_idle;
	bool bad_args; /* a literal over CMD_LITS_MAX was asked */
};

TAILQ_HEAD(cmd_list, imap_cmd);

struct imap_client {
	struct event_base *base;
	struct imap_client_cbs cbs;
	void *arg;
	struct imap_client_conf conf; /* strings below, not the caller's */
	char *host, *user, *password;
	unsigned port;
	bool tls_url, host_is_ip;
	SSL_CTX *ssl_ctx;
	struct evdns_base *dns, *own_dns; /* own_dns: made here, freed here */
	struct bufferevent *bev;
	struct event *conn_timer; /* connect_timeout, until ready */
	struct event *timer;      /* command timeout, IDLE renewal */
	struct imap_parser *parser;
	struct cmd_list queue;    /* not yet (wholly) written, in order */
	struct cmd_list inflight; /* written (at least the tag), waiting for the tagged status */
	struct imap_cmd *waiter;  /* written up to a point where it waits for "+" */
	struct imap_cmd *idle;    /* the IDLE command while it runs */
	enum imap_client_state state;
	uint32_t caps, enabled;
	unsigned next_tag;
	unsigned npending;
	int depth;
	bool freed;
	bool caps_known;
	bool tls_on;
	bool handshaking;
	bool starttls_ok; /* STARTTLS answered OK: nothing more may be read in the clear */
	bool idle_done_sent;
	bool idle_renew; /* IDLE is ended to be started again */
	bool quiet;      /* LOGOUT: the close that follows is not an error */
	bool bye;
	char byetext[128];
	/* The gate (conf.gate): waiting in its queue, or holding one of its slots. */
	bool gate_waiting, gate_held;
	TAILQ_ENTRY(imap_client) gate_link;
};

struct imap_gate {
	unsigned max, in_flight, waiting;
	TAILQ_HEAD(, imap_client) queue;
};

static void pump(struct imap_client *c);
static void client_start(struct imap_client *c);
static void client_fail(struct imap_client *c, enum imap_error e, const char *msg);
static void login_step(struct imap_client *c);
static void arm_timer(struct imap_client *c);

/* The text of an error, for logs and on_error's callers. */
const char *
imap_error_str(enum imap_error e)
{
	switch (e) {
	case IMAP_ERR_CONNECT:
		return "connection to the IMAP server failed";
	case IMAP_ERR_TLS:
		return "TLS with the IMAP server failed";
	case IMAP_ERR_AUTH:
		return "the IMAP server refused the login";
	case IMAP_ERR_TIMEOUT:
		return "the IMAP server timed out";
	case IMAP_ERR_PROTOCOL:
		return "malformed answer from the IMAP server";
	case IMAP_ERR_CLOSED:
		return "the IMAP server closed the connection";
	case IMAP_ERR_REFUSED:
		return "no safe way to log in to the IMAP server";
	case IMAP_ERR_UNAVAILABLE:
		return "the IMAP server cannot take the login now";
	}
	return "unknown IMAP error";
}

/* ---- commands ---- */

/* A command starting with words, sent as they are. */
struct imap_cmd *
imap_cmd_new(const char *words)
{
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));

	sbuf_add(&cmd->wire, words);
	return cmd;
}

/* Free a command; credentials in it are wiped first. */
void
imap_cmd_free(struct imap_cmd *cmd)
{
	if (cmd == NULL)
		return;
	if (cmd->wire.p != NULL) {
		if (cmd->sensitive)
			OPENSSL_cleanse(cmd->wire.p, cmd->wire.len);
		free(cmd->wire.p);
	}
	if (cmd->cont_line != NULL) {
		OPENSSL_cleanse(cmd->cont_line, strlen(cmd->cont_line));
		free(cmd->cont_line);
	}
	free(cmd);
}

/* Append a space and text sent as it is. */
void
imap_cmd_raw(struct imap_cmd *cmd, const char *text)
{
	sbuf_add(&cmd->wire, " ");
	sbuf_add(&cmd->wire, text);
}

/* Append a space and a printf'd text sent as it is. */
void
imap_cmd_rawf(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	imap_cmd_raw(cmd, s);
	free(s);
}

/* Append a space and a set in IMAP's spelling (nothing for an empty set). */
void
imap_cmd_uidset(struct imap_cmd *cmd, const struct uidset *set)
{
	char *f = uidset_format(set);

	if (f[0] != '\0')
		imap_cmd_raw(cmd, f);
	free(f);
}

/* Append a space and a literal; its announcement is chosen when it is written. */
void
imap_cmd_literal(struct imap_cmd *cmd, const void *data, size_t len)
{
	if (cmd->nlits == CMD_LITS_MAX) {
		cmd->bad_args = true;
		return;
	}
	sbuf_add(&cmd->wire, " ");
	cmd->lits[cmd->nlits].off = cmd->wire.len;
	cmd->lits[cmd->nlits].len = len;
	cmd->nlits++;
	if (len > 0)
		sbuf_addn(&cmd->wire, data, len);
	else if (cmd->wire.p == NULL)
		sbuf_add(&cmd->wire, "");
}

/* Whether s may be sent quoted: no CR, LF or NUL, and not too long. */
static bool
quotable(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (*s == '\r' || *s == '\n' || n > 1000)
			return false;
	return true;
}

/* Append a space and a quoted string (a literal when it cannot be quoted). */
void
imap_cmd_string(struct imap_cmd *cmd, const char *s)
{
	if (!quotable(s)) {
		imap_cmd_literal(cmd, s, strlen(s));
		return;
	}
	sbuf_add(&cmd->wire, " \"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_addn(&cmd->wire, "\\", 1);
		sbuf_addn(&cmd->wire, s, 1);
	}
	sbuf_addn(&cmd->wire, "\"", 1);
}

/* Append a space and an atom when s may be one, else a string. */
void
imap_cmd_astring(struct imap_cmd *cmd, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0' || strcasecmp(s, "NIL") == 0) {
		imap_cmd_string(cmd, s);
		return;
	}
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\", *p) != NULL) {
			imap_cmd_string(cmd, s);
			return;
		}
	imap_cmd_raw(cmd, s);
}

/* Append a mailbox name given in UTF-8, encoded as the connection needs. */
int
imap_cmd_mailbox(struct imap_cmd *cmd, struct imap_client *c, const char *name)
{
	char buf[IMAP_MAILBOX_MAX * 3 + 1];

	if (strcasecmp(name, "INBOX") == 0 || (c->enabled & IMAP_CAP_UTF8_ACCEPT)) {
		if (strlen(name) > IMAP_MAILBOX_MAX)
			return -1;
		imap_cmd_astring(cmd, name);
		return 0;
	}
	if (imap_mutf7_encode(name, strlen(name), buf, sizeof(buf)) < 0)
		return -1;
	imap_cmd_astring(cmd, buf);
	return 0;
}

/* Mark a command as carrying a credential: it is never logged. */
void
imap_cmd_sensitive(struct imap_cmd *cmd)
{
	cmd->sensitive = true;
}

/* ---- output ---- */

/* Write bytes (the caps were checked when the command was taken). */
static void
out(struct imap_client *c, const void *p, size_t n)
{
	if (n > 0 && bufferevent_write(c->bev, p, n) < 0)
		fatalx("out of memory in libevent");
}

/* Write as much of the queue as may go now (see the top of the file). */
static void
pump(struct imap_client *c)
{
	struct imap_cmd *cmd;

	if (c->state == IMAP_STATE_DEAD || c->bev == NULL || c->handshaking)
		return;
	while (c->waiter == NULL && c->idle == NULL && (cmd = TAILQ_FIRST(&c->queue)) != NULL) {
		if (!cmd->started) {
			snprintf(cmd->tag, sizeof(cmd->tag), "a%u", ++c->next_tag);
			out(c, cmd->tag, strlen(cmd->tag));
			out(c, " ", 1);
			cmd->started = true;
			TAILQ_INSERT_TAIL(&c->inflight, cmd, ilink);
			if (log_enabled(LOG_LEVEL_DEBUG))
				log_debug("imap: %s %.60s", cmd->tag,
				          cmd->sensitive ? "(credentials)" : cmd->wire.p);
		}
		while (cmd->next_lit < cmd->nlits) {
			struct lit *l = &cmd->lits[cmd->next_lit];
			bool sync =
			    !(c->caps & IMAP_CAP_LITERAL_PLUS) &&
			    !((c->caps & IMAP_CAP_LITERAL_MINUS) && l->len <= LITERAL_MINUS_MAX);
			char hdr[32];

			if (cmd->sent < l->off) {
				out(c, cmd->wire.p + cmd->sent, l->off - cmd->sent);
				cmd->sent = l->off;
				snprintf(hdr, sizeof(hdr), "{%zu%s}\r\n", l->len, sync ? "" : "+");
				out(c, hdr, strlen(hdr));
				if (sync) {
					cmd->waiting = true;
					c->waiter = cmd;
					goto stop;
				}
			}
			out(c, cmd->wire.p + l->off, l->len);
			cmd->sent = l->off + l->len;
			cmd->next_lit++;
		}
		out(c, cmd->wire.p + cmd->sent, cmd->wire.len - cmd->sent);
		cmd->sent = cmd->wire.len;
		out(c, "\r\n", 2);
		TAILQ_REMOVE(&c->queue, cmd, qlink); /* it stays in inflight */
		cmd->in_queue = false;
		if (cmd->is_idle) {
			c->idle = cmd;
			c->idle_done_sent = false;
		} else if (cmd->cont_line != NULL) {
			c->waiter = cmd;
		}
	}
stop:
	arm_timer(c);
}

/* Remove cmd from inflight (its tagged status came, or the client failed). */
static void
inflight_remove(struct imap_client *c, struct imap_cmd *cmd)
{
	TAILQ_REMOVE(&c->inflight, cmd, ilink);
	c->npending--;
}

/* ---- timers ---- */

/* The command timeout fired (drop), or IDLE is due for renewal (DONE, then IDLE). */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	c->depth++;
	if (c->state == IMAP_STATE_IDLE && c->idle != NULL && !c->idle_done_sent) {
		c->idle_renew = true;
		imap_client_idle_done(c);
	} else if (!TAILQ_EMPTY(&c->inflight)) {
		client_fail(c, IMAP_ERR_TIMEOUT, "no answer to a command in time");
	}
	c->depth--;
	if (c->depth == 0 && c->freed)
		imap_client_free(c);
}

/* The login did not end within connect_timeout: drop. */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_client *c = arg;

	c->depth++;
	client_fail(c, IMAP_ERR_TIMEOUT, "login not done in time");
	c->depth--;
	if (c->depth == 0 && c->freed)
		imap_client_free(c);
}

/* The command timeout while commands are in flight, IDLE's renewal while idling. */
static void
arm_timer(struct imap_client *c)
{
	struct timeval tv = {0, 0};

	if (c->timer == NULL)
		return;
	if (c->state == IMAP_STATE_IDLE && c->idle != NULL && !c->idle_done_sent) {
		tv.tv_sec = c->conf.idle_renew;
		evtimer_add(c->timer, &tv);
	} else if (!TAILQ_EMPTY(&c->inflight) && c->state != IMAP_STATE_CONNECTING) {
		tv.tv_sec = c->conf.command_timeout;
		evtimer_add(c->timer, &tv);
	} else {
		evtimer_del(c->timer);
	}
}

/* ---- the login gate ---- */

/* A gate of max logins in flight (0: 1). */
struct imap_gate *
imap_gate_new(unsigned max)
{
	struct imap_gate *g = xcalloc(1, sizeof(*g));

	g->max = max ? max : 1;
	TAILQ_INIT(&g->queue);
	return g;
}

/* Free a gate (its clients are gone). */
void
imap_gate_free(struct imap_gate **g)
{
	free(*g);
	*g = NULL;
}

unsigned
imap_gate_in_flight(const struct imap_gate *g)
{
	return g->in_flight;
}

unsigned
imap_gate_waiting(const struct imap_gate *g)
{
	return g->waiting;
}

/*
 * c's login ended (ready, failed or freed): its slot goes to the next
 * client waiting, which connects now; a waiting c leaves the queue.
 */
static void
gate_leave(struct imap_client *c)
{
	struct imap_gate *g = c->conf.gate;
	struct imap_client *next;

	if (c->gate_waiting) {
		TAILQ_REMOVE(&g->queue, c, gate_link);
		g->waiting--;
		c->gate_waiting = false;
	}
	if (!c->gate_held)
		return;
	c->gate_held = false;
	g->in_flight--;
	while (g->in_flight < g->max && (next = TAILQ_FIRST(&g->queue)) != NULL) {
		TAILQ_REMOVE(&g->queue, next, gate_link);
		g->waiting--;
		next->gate_waiting = false;
		next->gate_held = true;
		g->in_flight++;
		client_start(next);
	}
}

/* ---- failing and closing ---- */

/* Stop all I/O: free the bufferevent, the timers, the parser. */
static void
close_io(struct imap_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->conn_timer != NULL) {
		event_free(c->conn_timer);
		c->conn_timer = NULL;
	}
}

/* Wipe and drop the password. */
static void
forget_password(struct imap_client *c)
{
	if (c->password != NULL) {
		OPENSSL_cleanse(c->password, strlen(c->password));
		free(c->password);
		c->password = NULL;
	}
}

/*
 * The end: callbacks of the commands left get NULL, then on_error (unless
 * quiet). A callback that frees c is honoured when this returns.
 */
static void
client_fail(struct imap_client *c, enum imap_error e, const char *msg)
{
	struct imap_cmd *cmd;

	if (c->state == IMAP_STATE_DEAD)
		return;
	c->depth++; /* a callback below may free c: not before the end */
	c->state = IMAP_STATE_DEAD;
	gate_leave(c);
	close_io(c);
	forget_password(c);
	c->waiter = c->idle = NULL;
	while ((cmd = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, cmd, ilink);
		if (cmd->in_queue)
			TAILQ_REMOVE(&c->queue, cmd, qlink); /* partly written: in both */
		if (cmd->cb != NULL && !c->freed)
			cmd->cb(c, NULL, cmd->arg);
		imap_cmd_free(cmd);
	}
	while ((cmd = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_REMOVE(&c->queue, cmd, qlink);
		if (cmd->cb != NULL && !c->freed)
			cmd->cb(c, NULL, cmd->arg);
		imap_cmd_free(cmd);
	}
	c->npending = 0;
	if (!c->quiet && !c->freed && c->cbs.on_error != NULL) {
		log_debug("imap: %s: %s", imap_error_str(e), msg);
		c->cbs.on_error(c, e, msg, c->arg);
	}
	c->depth--;
	if (c->depth == 0 && c->freed)
		imap_client_free(c);
}

/* ---- submitting ---- */

/* Take cmd into the queue (no checks). */
static void
enqueue(struct imap_client *c, struct imap_cmd *cmd, imap_cmd_cb cb, imap_chunk_cb chunk, void *arg)
{
	cmd->cb = cb;
	cmd->chunk = chunk;
	cmd->arg = arg;
	TAILQ_INSERT_TAIL(&c->queue, cmd, qlink);
	cmd->in_queue = true;
	c->npending++;
	pump(c);
}

/* Take a command into the queue, under the caps; ends IDLE first. */
int
imap_client_command(struct imap_client *c, struct imap_cmd *cmd, imap_cmd_cb cb,
                    imap_chunk_cb chunk, void *arg, const char **errstr)
{
	size_t pending_out =
	    c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;

	if (c->state != IMAP_STATE_READY && c->state != IMAP_STATE_IDLE) {
		*errstr = c->state == IMAP_STATE_DEAD ? "the IMAP connection is closed"
		                                      : "the IMAP connection is not ready";
		goto fail;
	}
	if (cmd->bad_args) {
		*errstr = "too many literals in one command";
		goto fail;
	}
	if (c->npending >= c->conf.max_queue) {
		*errstr = "too many IMAP commands queued";
		goto fail;
	}
	if (pending_out + cmd->wire.len > c->conf.max_out) {
		*errstr = "too many bytes waiting for the IMAP server";
		goto fail;
	}
	if (c->state == IMAP_STATE_IDLE)
		imap_client_idle_done(c);
	enqueue(c, cmd, cb, chunk, arg);
	return 0;
fail:
	imap_cmd_free(cmd);
	return -1;
}

/* IDLE's tagged status: READY again, and IDLE again when it was a renewal. */
static void
idle_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return;
	if (c->state == IMAP_STATE_IDLE)
		c->state = IMAP_STATE_READY;
	if (r->status != IMAP_OK) {
		client_fail(c, IMAP_ERR_PROTOCOL, "IDLE refused");
		return;
	}
	if (c->idle_renew && TAILQ_EMPTY(&c->queue)) {
		const char *err;

		c->idle_renew = false;
		(void)imap_client_idle(c, &err);
	}
	c->idle_renew = false;
}

/* Queue IDLE; untagged responses go to on_untagged while it runs. */
int
imap_client_idle(struct imap_client *c, const char **errstr)
{
	struct imap_cmd *cmd;

	if (c->state != IMAP_STATE_READY || c->idle != NULL) {
		*errstr = "IDLE needs a ready connection";
		return -1;
	}
	if (!(c->caps & IMAP_CAP_IDLE)) {
		*errstr = "the IMAP server does not offer IDLE";
		return -1;
	}
	cmd = imap_cmd_new("IDLE");
	cmd->is_idle = true;
	c->state = IMAP_STATE_IDLE;
	enqueue(c, cmd, idle_cb, NULL, NULL);
	return 0;
}

/* End IDLE with DONE, or drop an IDLE not yet written. */
void
imap_client_idle_done(struct imap_client *c)
{
	if (c->idle == NULL || c->idle_done_sent || c->bev == NULL) {
		if (c->state == IMAP_STATE_IDLE && c->idle == NULL) {
			/* IDLE not yet written: drop it from the queue. */
			struct imap_cmd *cmd;

			TAILQ_FOREACH(cmd, &c->queue, qlink)
				if (cmd->is_idle && !cmd->started) {
					TAILQ_REMOVE(&c->queue, cmd, qlink);
					c->npending--;
					imap_cmd_free(cmd);
					break;
				}
			c->state = IMAP_STATE_READY;
		}
		return;
	}
	out(c, "DONE\r\n", 6);
	c->idle_done_sent = true;
	arm_timer(c);
}

/* LOGOUT's status: the caller's callback, then the connection closes quietly. */
struct logout_arg {
	imap_cmd_cb cb;
	void *arg;
};

/* LOGOUT's status. */
static void
logout_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct logout_arg *la = arg;

	if (r != NULL && r->kind != IMAP_RESP_TAGGED) {
		if (la->cb != NULL)
			la->cb(c, r, la->arg);
		return;
	}
	if (la->cb != NULL && !c->freed)
		la->cb(c, r, la->arg);
	free(la);
	if (r != NULL) {
		c->quiet = true;
		client_fail(c, IMAP_ERR_CLOSED, "logged out");
	}
}

/* Send LOGOUT; the close that follows is not an error. */
int
imap_client_logout(struct imap_client *c, imap_cmd_cb cb, void *arg)
{
	struct logout_arg *la;
	const char *err;

	if (c->state == IMAP_STATE_DEAD)
		return -1;
	if (c->state == IMAP_STATE_CONNECTING) {
		c->quiet = true;
		client_fail(c, IMAP_ERR_CLOSED, "closed while logging in");
		return 0;
	}
	if (c->state == IMAP_STATE_IDLE)
		imap_client_idle_done(c);
	la = xcalloc(1, sizeof(*la));
	la->cb = cb;
	la->arg = arg;
	c->quiet = true; /* BYE and the close that follow are expected */
	if (imap_client_command(c, imap_cmd_new("LOGOUT"), logout_cb, NULL, la, &err) < 0) {
		free(la);
		c->quiet = false;
		return -1;
	}
	c->state = IMAP_STATE_LOGOUT;
	return 0;
}

/* ---- input ---- */

/* Note what any response says about capabilities. */
static void
note_caps(struct imap_client *c, const struct imap_response *r)
{
	if (r->code != NULL && strcmp(r->code, "CAPABILITY") == 0) {
		c->caps = imap_caps_of(r->code_args);
		c->caps_known = true;
	}
	if (r->kind == IMAP_RESP_DATA && strcmp(r->name, "CAPABILITY") == 0) {
		c->caps = imap_caps_of(r->data);
		c->caps_known = true;
	}
	if (r->kind == IMAP_RESP_DATA && strcmp(r->name, "ENABLED") == 0)
		c->enabled |= imap_caps_of(r->data);
}

/* The greeting: OK, PREAUTH, or BYE. */
static void
on_greeting(struct imap_client *c, const struct imap_response *r)
{
	if (r->kind != IMAP_RESP_STATUS ||
	    (r->status != IMAP_OK && r->status != IMAP_PREAUTH && r->status != IMAP_BYE)) {
		client_fail(c, IMAP_ERR_PROTOCOL, "no IMAP greeting");
		return;
	}
	if (r->status == IMAP_BYE) {
		client_fail(c, IMAP_ERR_CLOSED, r->text);
		return;
	}
	if (r->status == IMAP_PREAUTH) {
		/* Already authenticated by other means: nothing to log in. */
		forget_password(c);
		c->user[0] = '\0';
	}
	login_step(c);
}

/* One response from the parser: routed as the top of this file says. */
static int
parser_response(const struct imap_response *r, void *arg)
{
	struct imap_client *c = arg;
	struct imap_cmd *cmd;

	if (c->freed || c->state == IMAP_STATE_DEAD)
		return -1;
	if (c->starttls_ok) {
		client_fail(c, IMAP_ERR_PROTOCOL, "bytes after STARTTLS's OK");
		return -1;
	}
	note_caps(c, r);
	if (c->next_tag == 0 && c->state == IMAP_STATE_CONNECTING && TAILQ_EMPTY(&c->inflight) &&
	    TAILQ_EMPTY(&c->queue)) {
		on_greeting(c, r);
		return c->state == IMAP_STATE_DEAD ? -1 : 0;
	}
	switch (r->kind) {
	case IMAP_RESP_CONTINUE:
		if ((cmd = c->waiter) != NULL) {
			c->waiter = NULL;
			if (cmd->cont_line != NULL) {
				out(c, cmd->cont_line, strlen(cmd->cont_line));
				out(c, "\r\n", 2);
				OPENSSL_cleanse(cmd->cont_line, strlen(cmd->cont_line));
				free(cmd->cont_line);
				cmd->cont_line = NULL;
				pump(c);
				break;
			}
			cmd->waiting = false;
			/* the literal's bytes, then the rest of the command */
			pump(c);
			break;
		}
		if (c->idle != NULL) {
			if (c->idle_done_sent) /* "+" after DONE was queued: harmless */
				break;
			arm_timer(c);
			break;
		}
		client_fail(c, IMAP_ERR_PROTOCOL, "unexpected continuation request");
		return -1;
	case IMAP_RESP_TAGGED:
		TAILQ_FOREACH(cmd, &c->inflight, ilink)
			if (strcmp(cmd->tag, r->tag) == 0)
				break;
		if (cmd == NULL || cmd->in_queue) {
			client_fail(c, IMAP_ERR_PROTOCOL, "tagged answer to no command");
			return -1;
		}
		inflight_remove(c, cmd);
		if (c->waiter == cmd)
			c->waiter = NULL;
		if (c->idle == cmd) {
			c->idle = NULL;
			c->idle_done_sent = false;
		}
		if (cmd->cb != NULL)
			cmd->cb(c, r, cmd->arg);
		imap_cmd_free(cmd);
		if (c->freed || c->state == IMAP_STATE_DEAD)
			return -1;
		pump(c);
		break;
	case IMAP_RESP_STATUS:
		if (r->status == IMAP_BYE) {
			c->bye = true;
			snprintf(c->byetext, sizeof(c->byetext), "%s", r->text);
		}
		/* fall through */
	case IMAP_RESP_DATA:
		cmd = TAILQ_FIRST(&c->inflight);
		if (c->idle != NULL || cmd == NULL) {
			if (c->cbs.on_untagged != NULL && c->state != IMAP_STATE_CONNECTING)
				c->cbs.on_untagged(c, r, c->arg);
		} else if (cmd->cb != NULL) {
			cmd->cb(c, r, cmd->arg);
		}
		break;
	}
	if (c->freed || c->state == IMAP_STATE_DEAD)
		return -1;
	return 0;
}

/* A piece of a streamed literal: to the oldest command's chunk callback. */
static int
parser_chunk(const struct imap_literal_info *li, const char *data, size_t len, void *arg)
{
	struct imap_client *c = arg;
	struct imap_cmd *cmd = TAILQ_FIRST(&c->inflight);

	if (c->freed || c->state == IMAP_STATE_DEAD)
		return -1;
	if (cmd != NULL && cmd->chunk != NULL && c->idle == NULL) {
		if (cmd->chunk(c, li, data, len, cmd->arg) < 0)
			return -1;
		if (c->freed || c->state == IMAP_STATE_DEAD)
			return -1;
	}
	return 0;
}

static void start_tls(struct imap_client *c);

/* Bytes from the server: through the parser, chunk by chunk. */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct imap_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *err;

	c->depth++;
	arm_timer(c);
	while (c->state != IMAP_STATE_DEAD && !c->freed && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_contiguous_space(in);
		const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);

		if (imap_parser_feed(c->parser, p, n, &err) < 0) {
			if (c->state != IMAP_STATE_DEAD && !c->freed)
				client_fail(c, IMAP_ERR_PROTOCOL, err);
			break;
		}
		if (c->bev != NULL)
			evbuffer_drain(in, n);
		if (c->starttls_ok) {
			if (evbuffer_get_length(in) > 0 || !imap_parser_idle(c->parser)) {
				client_fail(c, IMAP_ERR_PROTOCOL, "bytes after STARTTLS's OK");
				break;
			}
			c->starttls_ok = false;
			start_tls(c);
			break;
		}
	}
	c->depth--;
	if (c->depth == 0 && c->freed)
		imap_client_free(c);
}

/* Connected (TCP: TLS next for imaps://; TLS: the login goes on), or failed. */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct imap_client *c = arg;
	char buf[256];

	c->depth++;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->handshaking) {
			c->handshaking = false;
			c->tls_on = true;
			if (c->next_tag > 0) /* after STARTTLS: ask again */
				c->caps_known = false;
			login_step(c);
			pump(c);
		} else {
			int one = 1;

			setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
			           sizeof(one));
			if (c->tls_url)
				start_tls(c);
		}
	} else if (c->handshaking) {
		tls_bev_error(c->bev, buf, sizeof(buf));
		if (buf[0] == '\0')
			snprintf(buf, sizeof(buf), "handshake failed");
		client_fail(c, IMAP_ERR_TLS, buf);
	} else if (c->state == IMAP_STATE_CONNECTING && !c->tls_on && c->next_tag == 0 &&
	           imap_parser_idle(c->parser) && (what & BEV_EVENT_ERROR)) {
		int dnserr = bufferevent_socket_get_dns_error(bev);

		if (dnserr != 0)
			snprintf(buf, sizeof(buf), "resolving: %s", evutil_gai_strerror(dnserr));
		else
			snprintf(buf, sizeof(buf), "%s",
			         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		client_fail(c, IMAP_ERR_CONNECT, buf);
	} else {
		if (c->bye)
			snprintf(buf, sizeof(buf), "BYE %s", c->byetext);
		else
			snprintf(buf, sizeof(buf), "%s",
			         (what & BEV_EVENT_EOF) ? "connection closed"
			                                : "read or write error");
		client_fail(c, IMAP_ERR_CLOSED, buf);
	}
	c->depth--;
	if (c->depth == 0 && c->freed)
		imap_client_free(c);
}

/* Stack the TLS filter: SNI and the host check set before the handshake. */
static void
start_tls(struct imap_client *c)
{
	struct bufferevent *tls;
	SSL *ssl = tls_client_ssl(c->ssl_ctx, c->host, c->host_is_ip);

	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL)
		fatalx("out of memory in libevent");
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->handshaking = true;
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- logging in ---- */

/* CAPABILITY answered during the login: the next step. */
static void
login_cap_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return;
	if (r->status != IMAP_OK) {
		client_fail(c, IMAP_ERR_PROTOCOL, "CAPABILITY refused");
		return;
	}
	c->caps_known = true; /* even if the server listed nothing */
	login_step(c);
}

/* STARTTLS answered: TLS is stacked once the input is empty. */
static void
starttls_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return;
	if (r->status != IMAP_OK) {
		client_fail(c, IMAP_ERR_TLS, "STARTTLS refused");
		return;
	}
	c->starttls_ok = true; /* read_cb stacks TLS once the input is empty */
	c->caps_known = false;
	c->caps = 0;
}

/*
 * What a NO to the login means, by its response code (RFC 5530): a passing
 * state of the server (retry later) or the credentials refused (no code, or
 * AUTHENTICATIONFAILED, AUTHORIZATIONFAILED, EXPIRED...: not retried).
 */
static enum imap_error
login_error(const char *code)
{
	return imap_code_transient(code) ? IMAP_ERR_UNAVAILABLE : IMAP_ERR_AUTH;
}

/* The login answered: wrong password (AUTH), busy (UNAVAILABLE), or the next step. */
static void
auth_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	char buf[192];

	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return;
	forget_password(c);
	if (r->status != IMAP_OK) {
		snprintf(buf, sizeof(buf), "login refused: %s%s%s%s", r->code != NULL ? "[" : "",
		         r->code != NULL ? r->code : "", r->code != NULL ? "] " : "", r->text);
		client_fail(c, r->status != IMAP_NO ? IMAP_ERR_PROTOCOL : login_error(r->code),
		            buf);
		return;
	}
	c->user[0] = '\0'; /* logged in: login_step goes on */
	if (r->code == NULL || strcmp(r->code, "CAPABILITY") != 0)
		c->caps_known = false; /* they may change after login: ask */
	login_step(c);
}

/* ENABLE answered (or not needed): the connection is ready. */
static void
enable_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return;
	/* A refused ENABLE leaves the connection usable without the extensions. */
	c->state = IMAP_STATE_READY;
	gate_leave(c);
	if (c->conn_timer != NULL)
		evtimer_del(c->conn_timer);
	if (c->cbs.on_ready != NULL)
		c->cbs.on_ready(c, c->arg);
}

/* An internal command during login, queued ahead of nothing else. */
static void
login_cmd(struct imap_client *c, struct imap_cmd *cmd, imap_cmd_cb cb)
{
	enqueue(c, cmd, cb, NULL, NULL);
}

/*
 * The next step of the login, from what is known: capabilities, STARTTLS,
 * the login itself, capabilities again, ENABLE, ready.
 */
static void
login_step(struct imap_client *c)
{
	struct imap_cmd *cmd;
	uint32_t want;

	if (c->state != IMAP_STATE_CONNECTING)
		return;
	if (!c->caps_known) {
		login_cmd(c, imap_cmd_new("CAPABILITY"), login_cap_cb);
		return;
	}
	if (c->user[0] != '\0') { /* not logged in yet */
		if (!c->tls_on) {
			if (c->caps & IMAP_CAP_STARTTLS) {
				login_cmd(c, imap_cmd_new("STARTTLS"), starttls_cb);
				return;
			}
			if (!c->conf.allow_plaintext) {
				client_fail(c, IMAP_ERR_REFUSED,
				            "the server offers no STARTTLS: the password would go "
				            "in the clear");
				return;
			}
		}
		if (c->caps & IMAP_CAP_AUTH_PLAIN) {
			size_t ul = strlen(c->user), pl = strlen(c->password), n = ul + pl + 2;
			unsigned char *raw = xmalloc(n);
			char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);

			raw[0] = '\0';
			memcpy(raw + 1, c->user, ul);
			raw[1 + ul] = '\0';
			memcpy(raw + 2 + ul, c->password, pl);
			EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
			OPENSSL_cleanse(raw, n);
			free(raw);
			cmd = imap_cmd_new("AUTHENTICATE PLAIN");
			cmd->sensitive = true;
			if (c->caps & IMAP_CAP_SASL_IR) {
				imap_cmd_raw(cmd, b64);
				OPENSSL_cleanse(b64, strlen(b64));
				free(b64);
			} else {
				cmd->cont_line = b64;
			}
			login_cmd(c, cmd, auth_cb);
			return;
		}
		if (c->caps & IMAP_CAP_LOGINDISABLED) {
			client_fail(c, IMAP_ERR_REFUSED, "LOGINDISABLED and no AUTH=PLAIN");
			return;
		}
		cmd = imap_cmd_new("LOGIN");
		cmd->sensitive = true;
		imap_cmd_astring(cmd, c->user);
		imap_cmd_string(cmd, c->password);
		login_cmd(c, cmd, auth_cb);
		return;
	}
	want = c->caps & (IMAP_CAP_QRESYNC | IMAP_CAP_CONDSTORE | IMAP_CAP_UTF8_ACCEPT);
	if ((c->caps & IMAP_CAP_ENABLE) && want != 0) {
		cmd = imap_cmd_new("ENABLE");
		if (want & IMAP_CAP_QRESYNC)
			imap_cmd_raw(cmd, "QRESYNC");
		if (want & IMAP_CAP_CONDSTORE)
			imap_cmd_raw(cmd, "CONDSTORE");
		if (want & IMAP_CAP_UTF8_ACCEPT)
			imap_cmd_raw(cmd, "UTF8=ACCEPT");
		login_cmd(c, cmd, enable_cb);
		return;
	}
	enable_cb(c, &(struct imap_response){.kind = IMAP_RESP_TAGGED}, NULL);
}

/* ---- the client ---- */

/* imap[s]://host[:port][/] into c. 0 or -1 with *errstr. */
static int
parse_url(struct imap_client *c, const char *url, const char **errstr)
{
	const char *h, *e, *port = NULL;
	struct in6_addr a6;
	struct in_addr a4;

	if (strncasecmp(url, "imaps://", 8) == 0) {
		c->tls_url = true;
		h = url + 8;
	} else if (strncasecmp(url, "imap://", 7) == 0) {
		h = url + 7;
	} else {
		*errstr = "IMAP url must start with imap:// or imaps://";
		return -1;
	}
	if (*h == '[') {
		if ((e = strchr(h, ']')) == NULL) {
			*errstr = "IMAP url: unclosed [";
			return -1;
		}
		c->host = xstrndup(h + 1, (size_t)(e - h - 1));
		e++;
	} else {
		e = h + strcspn(h, ":/");
		c->host = xstrndup(h, (size_t)(e - h));
	}
	if (c->host[0] == '\0') {
		*errstr = "IMAP url without a host";
		return -1;
	}
	if (*e == ':')
		port = e + 1;
	c->port = c->tls_url ? 993 : 143;
	if (port != NULL) {
		char *end;
		unsigned long v = strtoul(port, &end, 10);

		if (end == port || v == 0 || v > 65535 || (*end != '\0' && *end != '/')) {
			*errstr = "IMAP url: bad port";
			return -1;
		}
		c->port = (unsigned)v;
	} else if (*e != '\0' && *e != '/') {
		*errstr = "IMAP url: bad host";
		return -1;
	}
	c->host_is_ip =
	    inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
	return 0;
}

/* Parse the url, set up TLS and DNS, and start connecting. */
struct imap_client *
imap_client_new(struct event_base *base, const struct imap_client_conf *conf,
                const struct imap_client_cbs *cbs, void *arg, const char **errstr)
{
	struct imap_client *c = xcalloc(1, sizeof(*c));
	struct imap_parser_cbs pcbs = {.on_response = parser_response, .on_chunk = parser_chunk};

	c->base = base;
	c->cbs = *cbs;
	c->arg = arg;
	c->conf = *conf;
	c->conf.url = c->conf.ca_file = c->conf.user = c->conf.password = NULL;
	if (!c->conf.connect_timeout)
		c->conf.connect_timeout = 10;
	if (!c->conf.command_timeout)
		c->conf.command_timeout = 60;
	if (!c->conf.idle_renew)
		c->conf.idle_renew = 29 * 60;
	if (!c->conf.max_queue)
		c->conf.max_queue = 64;
	if (!c->conf.max_out)
		c->conf.max_out = 4 * 1024 * 1024;
	TAILQ_INIT(&c->queue);
	TAILQ_INIT(&c->inflight);
	c->state = IMAP_STATE_CONNECTING;
	if (conf->url == NULL || parse_url(c, conf->url, errstr) < 0)
		goto fail;
	if (conf->user == NULL || conf->password == NULL || conf->user[0] == '\0') {
		*errstr = "IMAP login needs a user and a password";
		goto fail;
	}
	c->user = xstrdup(conf->user);
	c->password = xstrdup(conf->password);
	/* Both TLS paths need a context: imaps:// at once, imap:// after STARTTLS. */
	if (conf->ssl_ctx != NULL) {
		c->ssl_ctx = conf->ssl_ctx;
		SSL_CTX_up_ref(c->ssl_ctx);
	} else if ((c->ssl_ctx = tls_client_ctx_new(conf->ca_file, errstr)) == NULL) {
		if (conf->ca_file != NULL)
			*errstr = "cannot load the IMAP ca_file";
		goto fail;
	}
	c->parser = imap_parser_new(&pcbs, c);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	c->timer = evtimer_new(base, timer_cb, c);
	c->conn_timer = evtimer_new(base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL || c->conn_timer == NULL)
		fatalx("out of memory in libevent");
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* A numeric host resolves without DNS; a name through evdns, never blocking. */
	c->dns = conf->dns;
	if (c->dns == NULL && !c->host_is_ip) {
		c->own_dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		                                      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->own_dns == NULL) {
			*errstr = "cannot set up DNS";
			goto fail;
		}
		c->dns = c->own_dns;
	}
	if (c->conf.gate != NULL && c->conf.gate->in_flight >= c->conf.gate->max) {
		/* Past the gate: connect when a login in flight ends (gate_leave). */
		TAILQ_INSERT_TAIL(&c->conf.gate->queue, c, gate_link);
		c->conf.gate->waiting++;
		c->gate_waiting = true;
		return c;
	}
	if (c->conf.gate != NULL) {
		c->gate_held = true;
		c->conf.gate->in_flight++;
	}
	client_start(c);
	return c;
fail:
	imap_client_free(c);
	return NULL;
}

/* Connect: the connect timer starts now, up to the end of the login. */
static void
client_start(struct imap_client *c)
{
	struct timeval tv = {c->conf.connect_timeout, 0};

	evtimer_add(c->conn_timer, &tv);
	if (bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC, c->host, (int)c->port) <
	    0) {
		tv.tv_sec = 0;
		evtimer_add(c->conn_timer, &tv); /* reported from the loop */
	}
}

/* Close and free, or only mark when inside a callback (freed on the way out). */
void
imap_client_free(struct imap_client *c)
{
	struct imap_cmd *cmd;

	if (c == NULL)
		return;
	if (c->depth > 0) {
		c->freed = true;
		return;
	}
	gate_leave(c);
	close_io(c);
	forget_password(c);
	while ((cmd = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, cmd, ilink);
		if (cmd->in_queue)
			TAILQ_REMOVE(&c->queue, cmd, qlink);
		if (cmd->cb == logout_cb) /* LOGOUT's own argument, never answered now */
			free(cmd->arg);
		imap_cmd_free(cmd);
	}
	while ((cmd = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_REMOVE(&c->queue, cmd, qlink);
		if (cmd->cb == logout_cb)
			free(cmd->arg);
		imap_cmd_free(cmd);
	}
	imap_parser_free(c->parser);
	if (c->own_dns != NULL)
		evdns_base_free(c->own_dns, 0);
	if (c->ssl_ctx != NULL)
		SSL_CTX_free(c->ssl_ctx);
	free(c->host);
	free(c->user);
	free(c);
}

/* Where the connection is. */
enum imap_client_state
imap_client_state(const struct imap_client *c)
{
	return c->state;
}

/* The capabilities last learnt. */
uint32_t
imap_client_caps(const struct imap_client *c)
{
	return c->caps;
}

/* What ENABLE enabled. */
uint32_t
imap_client_enabled(const struct imap_client *c)
{
	return c->enabled;
}

/* Commands queued or in flight. */
unsigned
imap_client_pending(const struct imap_client *c)
{
	return c->npending;
}

/* Whether the connection is encrypted. */
bool
imap_client_tls(const struct imap_client *c)
{
	return c->tls_on;
}
