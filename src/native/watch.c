/*
 * watch.c: one IMAP watcher per account (push for native mode); watch.h is
 * the contract.
 *
 * A watcher is the account's mailbox set (the union of its subscriptions),
 * its connections and a state: CONNECTING (the connections log in and set up
 * NOTIFY or EXAMINE + IDLE), WATCHING, BACKOFF (waiting to reconnect after a
 * drop), FAILED (a refused login: nothing retries). Connection 0 is the
 * primary: it learns the capabilities that choose the path, holds NOTIFY, or
 * IDLEs on mailbox 0 and runs the sweep: a LIST (the folder hierarchy) and
 * STATUS of the mailboxes no connection IDLEs on.
 *
 * Changes are noted per mailbox (dirty) and reported from a deferred event,
 * so that a burst of untagged responses gives one call per mailbox and no
 * subscriber runs inside an IMAP client's callback.
 */
#include "native/watch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <openssl/crypto.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/tls.h"

enum wstate { W_CONNECTING, W_WATCHING, W_BACKOFF, W_FAILED, W_LINGER_CLOSED };
enum wmode { MODE_UNKNOWN, MODE_NOTIFY, MODE_IDLE };

/* One watched mailbox. */
struct wmbox {
	char *name; /* UTF-8, "INBOX" canonical */
	int conn;   /* index of the connection IDLEing on it, -1: swept */
	bool dirty; /* changed, not yet reported */
	bool have;  /* the sweep's last counts are known */
	uint32_t messages, uidnext, unseen;
	uint64_t modseq;
};

struct watcher;

/* One connection of a watcher. */
struct wconn {
	struct watcher *w;
	struct imap_client *c;
	int mbox;          /* the mailbox it EXAMINEs and IDLEs on, -1: none */
	unsigned busy;     /* our commands in flight */
	bool started;      /* EXAMINE sent (or nothing to EXAMINE) */
	bool set_up;       /* NOTIFY SET or EXAMINE answered */
	bool sweeping;     /* a sweep runs on it */
	unsigned renotify; /* NOTIFY SETs in flight */
	bool notified;     /* a NOTIFY SET was sent on it */
};

struct watch_sub {
	struct watcher *w;
	TAILQ_ENTRY(watch_sub) link;
	char **names;
	size_t n;
	struct watch_cbs cbs;
	void *arg;
	bool dead;     /* unsubscribed during a dispatch: freed after it */
	bool fresh;    /* subscribed during a dispatch: not called by it */
	bool err_due;  /* error() to be called */
	bool err_done; /* error() was called */
};
TAILQ_HEAD(sub_list, watch_sub);

struct watcher {
	struct watch_registry *reg;
	LIST_ENTRY(watcher) link;
	char *account, *user, *password;
	struct wmbox *mb;
	size_t nmb, capmb;
	struct wconn **conns;
	unsigned nconns;
	enum wstate state;
	enum wmode mode;
	uint32_t caps;
	bool reconnected; /* report every mailbox once watching again */
	/*
	 * The IDLE path's view of the folder hierarchy: the account's mailbox
	 * names as one sum of their hashes (order-free) and their count, from
	 * the last sweep's LIST (list_have), and the sweep's LIST adding up.
	 */
	bool list_have;
	uint64_t list_sum, acc_sum;
	size_t list_n, acc_n;
	bool dispatching;
	unsigned backoff_ms;
	struct sub_list subs;
	unsigned nsubs;
	struct event *linger_ev, *retry_ev, *sweep_ev, *flush_ev;
	enum imap_error err;
	char errmsg[256];
};
LIST_HEAD(watcher_list, watcher);

struct watch_registry {
	struct event_base *base;
	struct watch_conf conf;
	char *url, *ca_file;
	SSL_CTX *ssl_ctx; /* one for every connection (a CA store loaded once) */
	struct watcher_list watchers;
};

static void watcher_connect(struct watcher *w);
static void conn_ready(struct imap_client *c, void *arg);
static void conn_untagged(struct imap_client *c, const struct imap_response *r, void *arg);
static void conn_error(struct imap_client *c, enum imap_error e, const char *msg, void *arg);

/* Wipe and free a secret. */
static void
free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Whether a watched name and a server's name are the same mailbox (INBOX without case). */
static bool
same_mailbox(const char *a, const char *b)
{
	if (strcasecmp(a, "INBOX") == 0 || strcasecmp(b, "INBOX") == 0)
		return strcasecmp(a, b) == 0;
	return strcmp(a, b) == 0;
}

/* The index of a watched mailbox, -1 if not watched. */
static int
find_mbox(const struct watcher *w, const char *name)
{
	for (size_t i = 0; i < w->nmb; i++)
		if (same_mailbox(w->mb[i].name, name))
			return (int)i;
	return -1;
}

/* Schedule the report of dirty mailboxes and due errors. */
static void
schedule_flush(struct watcher *w)
{
	event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* Note a change of mailbox i. */
static void
mark_dirty(struct watcher *w, int i)
{
	if (i < 0 || (size_t)i >= w->nmb)
		return;
	w->mb[i].dirty = true;
	schedule_flush(w);
}

/* Free a subscription's own memory. */
static void
sub_free(struct watch_sub *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s);
}

/* Close every connection of a watcher at once (no LOGOUT: a drop or the end). */
static void
close_conns(struct watcher *w)
{
	for (unsigned i = 0; i < w->nconns; i++) {
		if (w->conns[i]->c != NULL)
			imap_client_free(w->conns[i]->c);
		abq_metrics_imap_connections(true, -1);
		free(w->conns[i]);
	}
	free(w->conns);
	w->conns = NULL;
	w->nconns = 0;
	evtimer_del(w->sweep_ev);
	for (size_t i = 0; i < w->nmb; i++) {
		w->mb[i].conn = -1;
		w->mb[i].have = false;
	}
}

/* Free a watcher and what it holds (its subscriptions must be gone or are freed). */
static void
watcher_free(struct watcher *w)
{
	struct watch_sub *s;

	close_conns(w);
	while ((s = TAILQ_FIRST(&w->subs)) != NULL) {
		TAILQ_REMOVE(&w->subs, s, link);
		sub_free(s);
	}
	LIST_REMOVE(w, link);
	event_free(w->linger_ev);
	event_free(w->retry_ev);
	event_free(w->sweep_ev);
	event_free(w->flush_ev);
	for (size_t i = 0; i < w->nmb; i++)
		free(w->mb[i].name);
	free(w->mb);
	free(w->account);
	free(w->user);
	free_secret(w->password);
	free(w);
}

/*
 * The deferred report: errors due, then each dirty mailbox to the
 * subscriptions watching it. Subscriptions ended meanwhile are freed after.
 */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w = arg;
	struct watch_sub *s, *next;

	(void)fd;
	(void)what;
	w->dispatching = true;
	TAILQ_FOREACH(s, &w->subs, link) {
		if (s->dead || s->fresh || !s->err_due)
			continue;
		s->err_due = false;
		s->err_done = true;
		if (s->cbs.error != NULL)
			s->cbs.error(s->arg, w->err, w->errmsg);
	}
	for (size_t i = 0; i < w->nmb; i++) {
		if (!w->mb[i].dirty)
			continue;
		w->mb[i].dirty = false;
		TAILQ_FOREACH(s, &w->subs, link) {
			if (s->dead || s->fresh || s->cbs.changed == NULL)
				continue;
			for (size_t j = 0; j < s->n; j++)
				if (same_mailbox(s->names[j], w->mb[i].name)) {
					s->cbs.changed(s->arg, s->names[j]);
					break;
				}
		}
	}
	w->dispatching = false;
	for (s = TAILQ_FIRST(&w->subs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		s->fresh = false;
		if (s->dead) {
			TAILQ_REMOVE(&w->subs, s, link);
			sub_free(s);
		} else if (s->err_due) {
			schedule_flush(w); /* subscribed during this report */
		}
	}
	if (w->nsubs == 0 && !evtimer_pending(w->linger_ev, NULL)) {
		struct timeval tv = {w->reg->conf.linger, 0};

		evtimer_add(w->linger_ev, &tv);
	}
}

/* The linger ended with no subscription: the watcher goes. */
static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w = arg;

	(void)fd;
	(void)what;
	if (w->nsubs == 0) {
		log_debug("watch: %s: closed after the linger", w->account);
		watcher_free(w);
	}
}

/* A refused login: every subscriber told once, nothing retries. */
static void
watcher_fail(struct watcher *w, enum imap_error e, const char *msg)
{
	struct watch_sub *s;

	close_conns(w);
	evtimer_del(w->retry_ev);
	w->state = W_FAILED;
	w->err = e;
	snprintf(w->errmsg, sizeof(w->errmsg), "%s", msg);
	log_info("watch: %s: %s: %s (not retried)", w->account, imap_error_str(e), msg);
	TAILQ_FOREACH(s, &w->subs, link)
		if (!s->err_done && !s->dead)
			s->err_due = true;
	schedule_flush(w);
}

/* A drop: close everything, reconnect after the backoff, report all once watching. */
static void
watcher_drop(struct watcher *w, enum imap_error e, const char *msg)
{
	struct timeval tv;
	const struct watch_conf *cf = &w->reg->conf;

	log_info("watch: %s: %s: %s; reconnecting in %u ms", w->account, imap_error_str(e), msg,
	         w->backoff_ms);
	close_conns(w);
	w->state = W_BACKOFF;
	w->reconnected = true;
	tv.tv_sec = w->backoff_ms / 1000;
	tv.tv_usec = (w->backoff_ms % 1000) * 1000;
	evtimer_add(w->retry_ev, &tv);
	w->backoff_ms = w->backoff_ms * 2 > cf->backoff_max ? cf->backoff_max : w->backoff_ms * 2;
}

/* The backoff ended: connect again. */
static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w = arg;

	(void)fd;
	(void)what;
	if (w->state == W_BACKOFF)
		watcher_connect(w);
}

/* A new connection of w (index nconns), IDLEing on mailbox mbox (-1: none yet). */
static struct wconn *
conn_open(struct watcher *w, int mbox)
{
	const struct watch_conf *cf = &w->reg->conf;
	struct imap_client_conf cc = {
	    .url = w->reg->url,
	    .dns = cf->dns,
	    .ca_file = w->reg->ca_file,
	    .ssl_ctx = w->reg->ssl_ctx,
	    .user = w->user,
	    .password = w->password,
	    .allow_plaintext = cf->allow_plaintext,
	    .connect_timeout = cf->connect_timeout,
	    .gate = cf->gate,
	    .command_timeout = cf->command_timeout,
	    .idle_renew = cf->idle_renew,
	};
	struct imap_client_cbs cbs = {conn_ready, conn_untagged, conn_error};
	struct wconn *wc = xcalloc(1, sizeof(*wc));
	const char *err = NULL;

	wc->w = w;
	wc->mbox = mbox;
	wc->c = imap_client_new(w->reg->base, &cc, &cbs, wc, &err);
	if (wc->c == NULL) {
		free(wc);
		return NULL;
	}
	w->conns = xrealloc(w->conns, (w->nconns + 1) * sizeof(*w->conns));
	w->conns[w->nconns++] = wc;
	abq_metrics_imap_connections(true, +1);
	if (mbox >= 0)
		w->mb[mbox].conn = (int)(w->nconns - 1);
	return wc;
}

/* Start (or restart) watching: the primary connection first. */
static void
watcher_connect(struct watcher *w)
{
	w->state = W_CONNECTING;
	w->mode = MODE_UNKNOWN;
	if (conn_open(w, -1) == NULL)
		watcher_fail(w, IMAP_ERR_CONNECT, "cannot start an IMAP connection");
}

/* IDLE on a connection with nothing of ours in flight (when there is something to IDLE on). */
static void
conn_idle(struct wconn *wc)
{
	const char *err;

	if (wc->busy > 0 || imap_client_state(wc->c) != IMAP_STATE_READY)
		return;
	if (!(imap_client_caps(wc->c) & IMAP_CAP_IDLE))
		return;
	if (wc->w->mode == MODE_IDLE && wc->mbox < 0)
		return;
	if (imap_client_idle(wc->c, &err) < 0)
		log_debug("watch: %s: %s", wc->w->account, err);
}

/* Whether every connection is set up: then the watcher watches. */
static void
check_watching(struct watcher *w)
{
	struct timeval tv = {0, 0};

	for (unsigned i = 0; i < w->nconns; i++)
		if (!w->conns[i]->set_up)
			return;
	if (w->state == W_WATCHING)
		return;
	w->state = W_WATCHING;
	w->backoff_ms = w->reg->conf.backoff_min;
	log_debug("watch: %s: watching %zu mailboxes on %u connections (%s)", w->account, w->nmb,
	          w->nconns, w->mode == MODE_NOTIFY ? "NOTIFY" : "IDLE");
	if (w->reconnected) {
		w->reconnected = false;
		for (size_t i = 0; i < w->nmb; i++)
			mark_dirty(w, (int)i);
	}
	/*
	 * Both paths sweep: its LIST sees the folder hierarchy change, which
	 * IDLE does not report and NOTIFY not always (Dovecot 2.3.19 sends no
	 * MailboxName for a rename of a mailbox that has been opened since it
	 * was created); the IDLE path's STATUS covers the mailboxes no
	 * connection IDLEs on. A first sweep now learns the counts and the
	 * hierarchy the next ones compare with.
	 */
	if (!evtimer_pending(w->sweep_ev, NULL))
		evtimer_add(w->sweep_ev, &tv);
}

/*
 * Append a mailbox name to b as a quoted string (UTF-8 or modified UTF-7);
 * -1, with nothing appended, when it cannot be one (CR or LF in it, or too
 * long to encode).
 */
static int
quote_mailbox(struct wconn *wc, const char *name, struct sbuf *b)
{
	char enc[IMAP_MAILBOX_MAX * 4 + 1];
	const char *s = name;

	if (!(imap_client_enabled(wc->c) & IMAP_CAP_UTF8_ACCEPT)) {
		if (imap_mutf7_encode(name, strlen(name), enc, sizeof(enc)) < 0)
			return -1;
		s = enc;
	}
	if (strpbrk(s, "\r\n") != NULL)
		return -1;
	sbuf_add(b, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_add(b, "\\");
		sbuf_addn(b, s, 1);
	}
	sbuf_add(b, "\"");
	return 0;
}

/* Any untagged response of a connection: what changed. */
static void
conn_note(struct wconn *wc, const struct imap_response *r)
{
	struct watcher *w = wc->w;
	struct imap_status_data st;
	char name[IMAP_MAILBOX_MAX + 1];
	const char *err;
	int i;

	if (r->kind != IMAP_RESP_DATA || r->name == NULL)
		return;
	if (strcmp(r->name, "STATUS") == 0) {
		if (imap_status_read(r, &st, &err) < 0)
			return;
		if (imap_client_enabled(wc->c) & IMAP_CAP_UTF8_ACCEPT)
			snprintf(name, sizeof(name), "%s", st.raw);
		else if (imap_mutf7_decode(st.raw, strlen(st.raw), name, sizeof(name)) < 0)
			return;
		i = find_mbox(w, name);
		if (i < 0)
			return;
		if (wc->sweeping && w->mode == MODE_IDLE) {
			struct wmbox *m = &w->mb[i];
			bool moved = m->messages != st.messages || m->uidnext != st.uidnext ||
			             m->unseen != st.unseen || m->modseq != st.highestmodseq;

			if (m->have && moved)
				mark_dirty(w, i);
			m->have = true;
			m->messages = st.messages;
			m->uidnext = st.uidnext;
			m->unseen = st.unseen;
			m->modseq = st.highestmodseq;
		} else {
			/* NOTIFY: the server sends STATUS only when the mailbox changed. */
			mark_dirty(w, i);
		}
		return;
	}
	if (strcmp(r->name, "LIST") == 0 && w->mode == MODE_NOTIFY && wc->set_up) {
		/* NOTIFY's MailboxName: the hierarchy changed; every watched mailbox reports it */
		for (size_t k = 0; k < w->nmb; k++)
			mark_dirty(w, (int)k);
		return;
	}
	if (wc->mbox >= 0 && wc->set_up &&
	    (strcmp(r->name, "EXISTS") == 0 || strcmp(r->name, "EXPUNGE") == 0 ||
	     strcmp(r->name, "FETCH") == 0 || strcmp(r->name, "VANISHED") == 0))
		mark_dirty(w, wc->mbox);
}

/* Untagged data outside our commands (IDLE, NOTIFY). */
static void
conn_untagged(struct imap_client *c, const struct imap_response *r, void *arg)
{
	(void)c;
	conn_note(arg, r);
}

/* A connection failed: a refused login fails the watcher, anything else reconnects. */
static void
conn_error(struct imap_client *c, enum imap_error e, const char *msg, void *arg)
{
	struct wconn *wc = arg;
	struct watcher *w = wc->w;

	(void)c;
	if (e == IMAP_ERR_AUTH || e == IMAP_ERR_REFUSED)
		watcher_fail(w, e, msg);
	else
		watcher_drop(w, e, msg);
}

static void send_notify(struct wconn *wc);
static void layout_idle(struct watcher *w);

/*
 * A command's callback got no tagged status: the connection dropped (r NULL:
 * conn_error handles it) or untagged data came (noted). true then.
 */
static bool
not_tagged(struct wconn *wc, const struct imap_response *r)
{
	if (r == NULL)
		return true;
	if (r->kind != IMAP_RESP_TAGGED) {
		conn_note(wc, r);
		return true;
	}
	return false;
}

/* NOTIFY SET's status: watching, or the IDLE path when the server refuses it. */
static void
notify_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct wconn *wc = arg;
	struct watcher *w = wc->w;

	(void)c;
	if (not_tagged(wc, r))
		return;
	wc->busy--;
	wc->renotify--;
	if (r->status != IMAP_OK) {
		/* Refused (now or for a grown set): IDLE instead, on this login. */
		if (w->mode == MODE_NOTIFY) {
			log_info("watch: %s: NOTIFY SET refused (%s): IDLE instead", w->account,
			         r->text);
			w->mode = MODE_IDLE;
			wc->set_up = wc->started = false;
			layout_idle(w);
		}
		return;
	}
	if (w->mode != MODE_NOTIFY)
		return; /* an OK after another NOTIFY SET was refused */
	wc->set_up = true;
	if (wc->renotify == 0)
		conn_idle(wc);
	check_watching(w);
}

/* NOTIFY NONE's status (before a NOTIFY SET that replaces one). */
static void
notify_none_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	(void)c;
	if (!not_tagged(arg, r))
		((struct wconn *)arg)->busy--;
}

/*
 * Send NOTIFY SET for the whole mailbox set. RFC 5465 has a SET replace the
 * last one; Dovecot 2.3 then reports nothing at all, for the old mailboxes or
 * the new, until NOTIFY NONE has been sent. So a connection that had a SET
 * gets NOTIFY NONE first, pipelined right before the new SET: harmless where
 * SET replaces as it should.
 */
static void
send_notify(struct wconn *wc)
{
	struct watcher *w = wc->w;
	struct sbuf buf = {0};
	struct imap_cmd *cmd;
	const char *err;

	if (wc->notified) {
		cmd = imap_cmd_new("NOTIFY NONE");
		if (imap_client_command(wc->c, cmd, notify_none_cb, NULL, wc, &err) < 0) {
			watcher_drop(w, IMAP_ERR_PROTOCOL, err);
			return;
		}
		wc->busy++;
	}

	sbuf_add(&buf, "(mailboxes (");
	for (size_t i = 0, sent = 0; i < w->nmb; i++) {
		size_t len = buf.len;

		if (sent > 0)
			sbuf_add(&buf, " ");
		if (quote_mailbox(wc, w->mb[i].name, &buf) < 0) {
			log_warn("watch: %s: a mailbox name cannot be sent", w->account);
			buf.len = len;
			buf.p[len] = '\0';
			continue;
		}
		sent++;
	}
	/*
	 * MailboxName (a mailbox created, deleted or renamed, here or anywhere
	 * in the account): the folder hierarchy changed, a held Ping must be
	 * run again (it answers 7).
	 */
	sbuf_add(&buf, ") (MessageNew MessageExpunge FlagChange MailboxName)) "
	               "(personal (MailboxName))");
	cmd = imap_cmd_new("NOTIFY SET");
	imap_cmd_raw(cmd, buf.p);
	free(buf.p);
	if (imap_client_command(wc->c, cmd, notify_cb, NULL, wc, &err) < 0) {
		watcher_drop(w, IMAP_ERR_PROTOCOL, err);
		return;
	}
	wc->busy++;
	wc->renotify++;
	wc->notified = true;
}

/* EXAMINE's status: IDLE on it, or the mailbox goes to the sweep. */
static void
examine_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct wconn *wc = arg;
	struct watcher *w = wc->w;

	(void)c;
	if (r == NULL || r->kind != IMAP_RESP_TAGGED)
		return; /* EXISTS and the like: the state we start from */
	wc->busy--;
	if (r->status != IMAP_OK) {
		log_info("watch: %s: EXAMINE %s refused (%s): swept instead", w->account,
		         w->mb[wc->mbox].name, r->text);
		w->mb[wc->mbox].conn = -1;
		wc->mbox = -1;
	}
	wc->set_up = true;
	conn_idle(wc);
	check_watching(w);
}

/* EXAMINE the connection's mailbox (read-only: \Recent stays). */
static void
send_examine(struct wconn *wc)
{
	struct imap_cmd *cmd;
	const char *err;

	wc->started = true;
	if (wc->mbox < 0) {
		wc->set_up = true;
		check_watching(wc->w);
		return;
	}
	cmd = imap_cmd_new("EXAMINE");
	if (imap_cmd_mailbox(cmd, wc->c, wc->w->mb[wc->mbox].name) < 0) {
		imap_cmd_free(cmd);
		wc->w->mb[wc->mbox].conn = -1;
		wc->mbox = -1;
		wc->set_up = true;
		check_watching(wc->w);
		return;
	}
	if (imap_client_command(wc->c, cmd, examine_cb, NULL, wc, &err) < 0) {
		watcher_drop(wc->w, IMAP_ERR_PROTOCOL, err);
		return;
	}
	wc->busy++;
}

/* The IDLE path: mailboxes without a connection get one while the cap allows. */
static void
layout_idle(struct watcher *w)
{
	unsigned cap = w->reg->conf.max_connections;
	struct wconn *p = w->conns[0];

	if (!(w->caps & IMAP_CAP_IDLE))
		cap = 0; /* everything swept on the primary */
	if (!p->started) {
		if (cap > 0 && w->nmb > 0) {
			p->mbox = 0;
			w->mb[0].conn = 0;
		}
		send_examine(p);
	}
	for (size_t i = 0; i < w->nmb; i++) {
		if (w->mb[i].conn >= 0 || w->nconns >= cap)
			continue;
		if (conn_open(w, (int)i) == NULL)
			break;
	}
	if (w->state == W_WATCHING) {
		struct timeval tv = {0, 0};

		/* Mailboxes added to the sweep: their first counts now. */
		for (size_t i = 0; i < w->nmb; i++)
			if (w->mb[i].conn < 0 && !w->mb[i].have) {
				evtimer_add(w->sweep_ev, &tv);
				break;
			}
	}
}

/* A connection logged in: the primary chooses the path; others EXAMINE their mailbox. */
static void
conn_ready(struct imap_client *c, void *arg)
{
	struct wconn *wc = arg;
	struct watcher *w = wc->w;

	if (wc != w->conns[0]) {
		send_examine(wc);
		return;
	}
	w->caps = imap_client_caps(c);
	if (w->caps & IMAP_CAP_NOTIFY) {
		w->mode = MODE_NOTIFY;
		send_notify(wc);
	} else {
		w->mode = MODE_IDLE;
		layout_idle(w);
	}
}

/* A command of the sweep answered: after the last, the primary IDLEs again. */
static void
sweep_done(struct wconn *wc)
{
	struct watcher *w = wc->w;

	wc->busy--;
	if (wc->busy == 0) {
		struct timeval tv = {w->reg->conf.sweep_interval, 0};

		wc->sweeping = false;
		conn_idle(wc);
		evtimer_add(w->sweep_ev, &tv);
	}
}

/* A sweep's STATUS: counts compared; the last one lets the primary IDLE again. */
static void
sweep_status_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	(void)c;
	if (!not_tagged(arg, r))
		sweep_done(arg);
}

/* A name's hash for the hierarchy's sum (FNV-1a, 64 bits). */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/*
 * The sweep's LIST: the names added up; once answered, compared with the
 * last sweep's. A change (a mailbox created, deleted or renamed anywhere in
 * the account, by any client) is reported as NOTIFY's MailboxName is: every
 * watched mailbox changed, so that a held Ping runs again and sees the
 * folders changed since its device's FolderSync (Status 7).
 */
static void
sweep_list_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct wconn *wc = arg;
	struct watcher *w = wc->w;
	struct imap_list l;
	const char *err;

	if (r == NULL)
		return;
	if (r->kind == IMAP_RESP_DATA && r->name != NULL && strcmp(r->name, "LIST") == 0) {
		if (imap_list_read(r, (imap_client_enabled(c) & IMAP_CAP_UTF8_ACCEPT) != 0, &l,
		                   &err) == 0 &&
		    !(l.flags & IMAP_LIST_NONEXISTENT)) {
			w->acc_sum += name_hash(l.name);
			w->acc_n++;
		}
		return;
	}
	if (r->kind != IMAP_RESP_TAGGED) {
		conn_note(wc, r);
		return;
	}
	if (r->status == IMAP_OK) {
		if (w->list_have && (w->acc_sum != w->list_sum || w->acc_n != w->list_n)) {
			log_debug(
			    "watch: %s: the folder hierarchy changed (%zu mailboxes, were %zu)",
			    w->account, w->acc_n, w->list_n);
			for (size_t k = 0; k < w->nmb; k++)
				mark_dirty(w, (int)k);
		}
		w->list_have = true;
		w->list_sum = w->acc_sum;
		w->list_n = w->acc_n;
	}
	sweep_done(wc);
}

/*
 * Time for a sweep: LIST of the account's mailboxes (the hierarchy
 * compared with the last sweep's), and on the IDLE path STATUS of every
 * mailbox no connection IDLEs on (NOTIFY reports their messages itself).
 */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w = arg;
	struct wconn *wc;
	struct imap_cmd *cmd;
	const char *err;

	(void)fd;
	(void)what;
	if (w->state != W_WATCHING || w->nconns == 0)
		return;
	wc = w->conns[0];
	if (wc->busy > 0) {
		struct timeval tv = {1, 0};

		evtimer_add(w->sweep_ev, &tv);
		return;
	}
	w->acc_sum = 0;
	w->acc_n = 0;
	cmd = imap_cmd_new("LIST \"\" \"*\"");
	if (imap_client_command(wc->c, cmd, sweep_list_cb, NULL, wc, &err) < 0) {
		watcher_drop(w, IMAP_ERR_PROTOCOL, err);
		return;
	}
	wc->busy++;
	wc->sweeping = true;
	for (size_t i = 0; i < w->nmb && w->mode == MODE_IDLE; i++) {
		if (w->mb[i].conn >= 0)
			continue;
		cmd = imap_cmd_new("STATUS");
		if (imap_cmd_mailbox(cmd, wc->c, w->mb[i].name) < 0) {
			imap_cmd_free(cmd);
			continue;
		}
		imap_cmd_raw(cmd, (w->caps & IMAP_CAP_CONDSTORE)
		                      ? "(MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)"
		                      : "(MESSAGES UIDNEXT UNSEEN)");
		if (imap_client_command(wc->c, cmd, sweep_status_cb, NULL, wc, &err) < 0) {
			watcher_drop(w, IMAP_ERR_PROTOCOL, err);
			return;
		}
		wc->busy++;
	}
}

/* Add a name to the watcher's set; whether it was new. */
static bool
add_mbox(struct watcher *w, const char *name)
{
	struct wmbox *m;

	if (find_mbox(w, name) >= 0)
		return false;
	if (w->nmb == w->capmb) {
		w->capmb = w->capmb ? w->capmb * 2 : 4;
		w->mb = xrealloc(w->mb, w->capmb * sizeof(*w->mb));
	}
	m = &w->mb[w->nmb++];
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(strcasecmp(name, "INBOX") == 0 ? "INBOX" : name);
	m->conn = -1;
	return true;
}

/* A new watcher for account, connecting. */
static struct watcher *
watcher_new(struct watch_registry *reg, const char *account, const char *user, const char *password)
{
	struct watcher *w = xcalloc(1, sizeof(*w));

	w->reg = reg;
	w->account = xstrdup(account);
	w->user = xstrdup(user);
	w->password = xstrdup(password);
	w->backoff_ms = reg->conf.backoff_min;
	TAILQ_INIT(&w->subs);
	w->linger_ev = evtimer_new(reg->base, linger_cb, w);
	w->retry_ev = evtimer_new(reg->base, retry_cb, w);
	w->sweep_ev = evtimer_new(reg->base, sweep_cb, w);
	w->flush_ev = event_new(reg->base, -1, 0, flush_cb, w);
	LIST_INSERT_HEAD(&reg->watchers, w, link);
	return w;
}

/* The account's watcher, or NULL. */
static struct watcher *
find_watcher(const struct watch_registry *reg, const char *account)
{
	struct watcher *w;

	LIST_FOREACH(w, &reg->watchers, link)
		if (strcmp(w->account, account) == 0)
			return w;
	return NULL;
}

/* See watch.h. */
struct watch_registry *
watch_registry_new(struct event_base *base, const struct watch_conf *conf, const char **errstr)
{
	struct watch_registry *reg;

	if (conf->url == NULL ||
	    (strncmp(conf->url, "imap://", 7) != 0 && strncmp(conf->url, "imaps://", 8) != 0)) {
		*errstr = "the watcher's url is not imap:// or imaps://";
		return NULL;
	}
	reg = xcalloc(1, sizeof(*reg));
	if ((reg->ssl_ctx = tls_client_ctx_new(conf->ca_file, errstr)) == NULL) {
		free(reg);
		return NULL;
	}
	reg->base = base;
	reg->conf = *conf;
	reg->url = xstrdup(conf->url);
	reg->ca_file = xstrdup_null(conf->ca_file);
	reg->conf.url = reg->url;
	reg->conf.ca_file = reg->ca_file;
	if (reg->conf.max_connections == 0)
		reg->conf.max_connections = WATCH_DEFAULT_MAX_CONNECTIONS;
	if (reg->conf.sweep_interval == 0)
		reg->conf.sweep_interval = WATCH_DEFAULT_SWEEP_INTERVAL;
	if (reg->conf.linger == 0)
		reg->conf.linger = WATCH_DEFAULT_LINGER;
	if (reg->conf.backoff_min == 0)
		reg->conf.backoff_min = WATCH_DEFAULT_BACKOFF_MIN;
	if (reg->conf.backoff_max == 0)
		reg->conf.backoff_max = WATCH_DEFAULT_BACKOFF_MAX;
	if (reg->conf.backoff_max < reg->conf.backoff_min)
		reg->conf.backoff_max = reg->conf.backoff_min;
	LIST_INIT(&reg->watchers);
	return reg;
}

/* See watch.h. */
void
watch_registry_free(struct watch_registry *reg)
{
	struct watcher *w;

	if (reg == NULL)
		return;
	while ((w = LIST_FIRST(&reg->watchers)) != NULL)
		watcher_free(w);
	SSL_CTX_free(reg->ssl_ctx);
	free(reg->url);
	free(reg->ca_file);
	free(reg);
}

/* See watch.h. */
struct watch_sub *
watch_subscribe(struct watch_registry *reg, const char *account, const char *user,
                const char *password, const char *const *mailboxes, size_t n,
                const struct watch_cbs *cbs, void *arg, const char **errstr)
{
	struct watcher *w;
	struct watch_sub *s;
	bool grew = false;

	if (n == 0 || n > WATCH_MAX_MAILBOXES) {
		*errstr = n == 0 ? "no mailbox to watch" : "too many mailboxes to watch";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		char enc[IMAP_MAILBOX_MAX * 4 + 1];

		if (mailboxes[i] == NULL || mailboxes[i][0] == '\0' ||
		    strlen(mailboxes[i]) > IMAP_MAILBOX_MAX ||
		    imap_mutf7_encode(mailboxes[i], strlen(mailboxes[i]), enc, sizeof(enc)) < 0) {
			*errstr = "a mailbox name is not UTF-8 or too long";
			return NULL;
		}
	}
	w = find_watcher(reg, account);
	if (w != NULL) {
		size_t more = 0;

		for (size_t i = 0; i < n; i++)
			more += find_mbox(w, mailboxes[i]) < 0;
		if (w->nmb + more > WATCH_MAX_MAILBOXES) {
			*errstr = "too many mailboxes to watch";
			return NULL;
		}
	}
	s = xcalloc(1, sizeof(*s));
	s->names = xcalloc(n, sizeof(*s->names));
	for (size_t i = 0; i < n; i++)
		s->names[s->n++] = xstrdup(mailboxes[i]);
	s->cbs = *cbs;
	s->arg = arg;
	if (w == NULL) {
		w = watcher_new(reg, account, user, password);
		w->state = W_BACKOFF; /* connected below, once the set is known */
	}
	s->w = w;
	s->fresh = w->dispatching;
	TAILQ_INSERT_TAIL(&w->subs, s, link);
	w->nsubs++;
	evtimer_del(w->linger_ev);
	for (size_t i = 0; i < n; i++)
		grew |= add_mbox(w, mailboxes[i]);
	if (w->state == W_FAILED) {
		if (strcmp(w->password, password) != 0 || strcmp(w->user, user) != 0) {
			/* Another password: worth one more try. */
			free(w->user);
			free_secret(w->password);
			w->user = xstrdup(user);
			w->password = xstrdup(password);
			w->backoff_ms = reg->conf.backoff_min;
			w->reconnected = false;
			watcher_connect(w);
		} else {
			s->err_due = true;
			schedule_flush(w);
		}
		return s;
	}
	if (w->nconns == 0 && !evtimer_pending(w->retry_ev, NULL)) {
		watcher_connect(w);
		return s;
	}
	if (!grew || w->mode == MODE_UNKNOWN || w->nconns == 0)
		return s; /* the set is sent once the primary is in */
	if (w->mode == MODE_NOTIFY) {
		if (w->conns[0]->set_up || w->conns[0]->renotify > 0)
			send_notify(w->conns[0]);
	} else {
		layout_idle(w);
	}
	return s;
}

/* See watch.h. */
void
watch_unsubscribe(struct watch_sub *s)
{
	struct watcher *w;

	if (s == NULL || s->dead)
		return;
	w = s->w;
	w->nsubs--;
	if (w->dispatching) {
		s->dead = true;
		return;
	}
	TAILQ_REMOVE(&w->subs, s, link);
	sub_free(s);
	if (w->nsubs == 0) {
		struct timeval tv = {w->reg->conf.linger, 0};

		if (w->state == W_FAILED || w->state == W_BACKOFF) {
			/* Nothing held worth keeping: go now. */
			watcher_free(w);
			return;
		}
		evtimer_add(w->linger_ev, &tv);
	}
}

/* See watch.h. */
unsigned
watch_connections(const struct watch_registry *reg, const char *account)
{
	const struct watcher *w = find_watcher(reg, account);

	return w != NULL ? w->nconns : 0;
}

/* See watch.h. */
unsigned
watch_watchers(const struct watch_registry *reg)
{
	const struct watcher *w;
	unsigned n = 0;

	LIST_FOREACH(w, &reg->watchers, link)
		n++;
	return n;
}

/* See watch.h. */
bool
watch_is_watching(const struct watch_registry *reg, const char *account)
{
	const struct watcher *w = find_watcher(reg, account);

	return w != NULL && w->state == W_WATCHING;
}

/* See watch.h. */
bool
watch_uses_notify(const struct watch_registry *reg, const char *account)
{
	const struct watcher *w = find_watcher(reg, account);

	return w != NULL && w->mode == MODE_NOTIFY;
}
