/*
 * imap_pool.c: IMAP connections per account, capped, keyed by the password's
 * hash, with a FIFO of waiting requests (imap_pool.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/siphash.h"
#include "lib/util.h"
#include "native/imap_pool.h"
#include "net/tls.h"

enum pc_state { PC_CONNECTING, PC_BUSY, PC_IDLE };

struct pool_acct;

/* One connection of an account. */
struct pconn {
	struct pool_acct *a;
	struct imap_client *c;
	uint8_t hash[SIPHASH_OUT_LEN];
	enum pc_state st;
	bool dead;                     /* dropped while busy: freed when given back */
	bool counted;                  /* in abqd_imap_connections */
	struct imap_pool_req *for_req; /* CONNECTING: the request it is opened for */
	struct event *idle_ev;
	struct pconn *next;
	struct pconn *hnext; /* the pool's table of connections by client */
};

struct imap_pool_req {
	struct imap_pool *p;
	struct pool_acct *a;
	uint8_t hash[SIPHASH_OUT_LEN];
	char *user; /* the login name (several may stand for one account) */
	char *password;
	imap_pool_cb cb;
	void *arg;
	struct event *timer;   /* the wait's end */
	struct event *deliver; /* the deferred answer */
	struct pconn *granted; /* the connection being handed over */
	struct pconn *opening; /* a connection being opened for it */
	enum imap_pool_err err;
	char msg[192];
	bool queued;
	struct imap_pool_req *next;
};

struct pool_acct {
	struct imap_pool *p;
	char *name;
	struct pconn *conns;
	unsigned n;
	unsigned limit; /* learnt from the server (over its limit); 0: the pool's cap */
	struct imap_pool_req *qhead, **qtail;
	unsigned nq;
	struct event *retry_ev;
	uint64_t h;             /* the name's keyed hash */
	struct pool_acct *next; /* the pool's table of accounts by name */
};

/* A connection being logged out (freed when LOGOUT is answered). */
struct closing {
	struct imap_client *c;
	struct closing *next;
};

struct imap_pool {
	struct event_base *base;
	char *url, *ca_file;
	bool allow_plaintext;
	unsigned cap, idle_seconds, max_waiters, wait_timeout, retry_ms;
	unsigned connect_timeout, command_timeout;
	struct imap_gate *gate;
	SSL_CTX *ssl_ctx; /* shared by every connection */
	uint8_t key[SIPHASH_KEY_LEN];
	/* accounts by name and connections by client: chained, power-of-two buckets */
	struct pool_acct **accts;
	size_t n_abuckets, n_accts;
	struct pconn **conns;
	size_t n_cbuckets, n_conns;
	struct closing *closing;
	unsigned long opened;
};

static void dispatch(struct pool_acct *a);

/*
 * The keyed hash of a login name and its password (the password is never
 * kept): a connection serves only requests of the same name and password.
 */
static void
pw_hash(const struct imap_pool *p, const char *user, const char *password,
        uint8_t out[SIPHASH_OUT_LEN])
{
	struct siphash h;

	siphash_init(&h, p->key);
	siphash_update(&h, user, strlen(user) + 1); /* with its NUL: "ab"+"c" is not "a"+"bc" */
	siphash_update(&h, password, strlen(password));
	siphash_final(&h, out);
}

/* The keyed hash of an account's name (the table's, not a flood's, choice of bucket). */
static uint64_t
name_hash(const struct imap_pool *p, const char *name)
{
	struct siphash h;
	uint8_t out[SIPHASH_OUT_LEN];
	uint64_t v;

	siphash_init(&h, p->key);
	siphash_update(&h, "acct", 4);
	siphash_update(&h, name, strlen(name));
	siphash_final(&h, out);
	memcpy(&v, out, sizeof(v));
	return v;
}

/* The bucket of a client in the connection table. */
static size_t
client_bucket(const struct imap_pool *p, const struct imap_client *c)
{
	uint64_t v = (uint64_t)(uintptr_t)c;

	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v & (p->n_cbuckets - 1);
}

/* Grow the account table to twice its buckets, rehashing. */
static void
accts_grow(struct imap_pool *p)
{
	size_t nb = p->n_abuckets ? p->n_abuckets * 2 : 16;
	struct pool_acct **t = xcalloc(nb, sizeof(*t));

	for (size_t i = 0; i < p->n_abuckets; i++) {
		while (p->accts[i] != NULL) {
			struct pool_acct *a = p->accts[i];
			p->accts[i] = a->next;
			a->next = t[a->h & (nb - 1)];
			t[a->h & (nb - 1)] = a;
		}
	}
	free(p->accts);
	p->accts = t;
	p->n_abuckets = nb;
}

/* The account's entry, made when missing (create) or NULL. */
static struct pool_acct *
acct_of(struct imap_pool *p, const char *name, bool create)
{
	struct pool_acct *a;
	uint64_t h;

	if (p->n_abuckets == 0 && !create)
		return NULL;
	h = name_hash(p, name);
	if (p->n_abuckets != 0) {
		for (a = p->accts[h & (p->n_abuckets - 1)]; a != NULL; a = a->next) {
			if (a->h == h && strcmp(a->name, name) == 0)
				return a;
		}
	}
	if (!create)
		return NULL;
	if (p->n_accts + 1 > p->n_abuckets)
		accts_grow(p);
	a = xcalloc(1, sizeof(*a));
	a->p = p;
	a->name = xstrdup(name);
	a->h = h;
	a->qtail = &a->qhead;
	a->next = p->accts[h & (p->n_abuckets - 1)];
	p->accts[h & (p->n_abuckets - 1)] = a;
	p->n_accts++;
	return a;
}

/* Free an account's entry (its connections and requests are gone). */
static void
acct_free(struct pool_acct *a)
{
	if (a->retry_ev)
		event_free(a->retry_ev);
	free(a->name);
	free(a);
}

/*
 * Forget an account that holds no connection and no waiting request: the
 * pool keeps nothing per account between requests (its learnt limit goes
 * with its last connection anyway).
 */
static void
acct_gc(struct pool_acct *a)
{
	struct imap_pool *p = a->p;

	if (a->n != 0 || a->nq != 0)
		return;
	for (struct pool_acct **pp = &p->accts[a->h & (p->n_abuckets - 1)]; *pp;
	     pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			p->n_accts--;
			break;
		}
	}
	acct_free(a);
}

/* Enter a connection (its client made) in the table of connections by client. */
static void
conn_index(struct imap_pool *p, struct pconn *pc)
{
	size_t b;

	if (p->n_conns + 1 > p->n_cbuckets) {
		size_t nb = p->n_cbuckets ? p->n_cbuckets * 2 : 16;
		struct pconn **old = p->conns;
		size_t ob = p->n_cbuckets;

		p->conns = xcalloc(nb, sizeof(*p->conns));
		p->n_cbuckets = nb;
		for (size_t i = 0; i < ob; i++) {
			while (old[i] != NULL) {
				struct pconn *x = old[i];
				old[i] = x->hnext;
				b = client_bucket(p, x->c);
				x->hnext = p->conns[b];
				p->conns[b] = x;
			}
		}
		free(old);
	}
	b = client_bucket(p, pc->c);
	pc->hnext = p->conns[b];
	p->conns[b] = pc;
	p->n_conns++;
}

/* Take a connection out of the table by client (when it is there). */
static void
conn_unindex(struct imap_pool *p, struct pconn *pc)
{
	if (pc->c == NULL || p->n_cbuckets == 0)
		return;
	for (struct pconn **pp = &p->conns[client_bucket(p, pc->c)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == pc) {
			*pp = pc->hnext;
			p->n_conns--;
			return;
		}
	}
}

/* The pool of an account. */
static struct imap_pool *
pool_of(struct pool_acct *a)
{
	return a->p;
}

/* The cap in force for an account. */
static unsigned
acct_cap(const struct imap_pool *p, const struct pool_acct *a)
{
	return a->limit != 0 && a->limit < p->cap ? a->limit : p->cap;
}

/* Take r out of its account's queue. */
static void
dequeue(struct imap_pool_req *r)
{
	struct pool_acct *a = r->a;

	if (!r->queued)
		return;
	for (struct imap_pool_req **pp = &a->qhead; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	a->qtail = &a->qhead;
	while (*a->qtail)
		a->qtail = &(*a->qtail)->next;
	r->next = NULL;
	r->queued = false;
	a->nq--;
}

/* Free a request (its password wiped). */
static void
req_free(struct imap_pool_req *r)
{
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->user);
	if (r->timer)
		event_free(r->timer);
	if (r->deliver)
		event_free(r->deliver);
	free(r);
}

/* Unlink a connection from its account (not freed). */
static void
conn_unlink(struct pconn *pc)
{
	struct pool_acct *a = pc->a;

	conn_unindex(a->p, pc);
	for (struct pconn **pp = &a->conns; *pp; pp = &(*pp)->next) {
		if (*pp == pc) {
			*pp = pc->next;
			a->n--;
			break;
		}
	}
	if (a->n == 0)
		a->limit = 0; /* the server's limit is learnt again */
}

/* Free a connection's bookkeeping and its client. */
static void
conn_free(struct pconn *pc)
{
	if (pc->idle_ev)
		event_free(pc->idle_ev);
	if (pc->c)
		imap_client_free(pc->c);
	if (pc->counted)
		abq_metrics_imap_connections(false, -1);
	free(pc);
}

/* The deferred answer: the request is freed, then its callback runs. */
static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_pool_req *r = arg;
	imap_pool_cb cb = r->cb;
	void *cb_arg = r->arg;
	struct imap_client *c = r->granted ? r->granted->c : NULL;
	enum imap_pool_err err = r->granted ? IMAP_POOL_OK : r->err;
	char msg[sizeof(r->msg)];

	(void)fd;
	(void)what;
	memcpy(msg, r->msg, sizeof(msg));
	req_free(r);
	cb(cb_arg, c, err, c ? NULL : msg);
}

/* Answer r later (in its own loop turn): with granted, or with err. */
static void
answer(struct imap_pool_req *r, struct pconn *granted, enum imap_pool_err err, const char *msg)
{
	dequeue(r);
	r->a = NULL; /* the account may go once it holds nothing */
	if (r->timer)
		event_del(r->timer);
	r->granted = granted;
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
	if (granted)
		granted->st = PC_BUSY;
	if (r->password) { /* not needed any more */
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
		r->password = NULL;
	}
	r->deliver = event_new(r->p->base, -1, 0, deliver_cb, r);
	event_active(r->deliver, 0, 0);
}

/* The idle connection's time is up: logged out. */
static void
logout_done(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct imap_pool *p = arg;

	if (r != NULL && r->kind != IMAP_RESP_TAGGED)
		return;
	for (struct closing **pp = &p->closing; *pp; pp = &(*pp)->next) {
		if ((*pp)->c == c) {
			struct closing *x = *pp;
			*pp = x->next;
			free(x);
			break;
		}
	}
	imap_client_free(c);
}

/* Log out and forget a connection (an idle one past its time, or one making room). */
static void
conn_retire(struct imap_pool *p, struct pconn *pc)
{
	struct imap_client *c = pc->c;

	conn_unlink(pc);
	pc->c = NULL;
	conn_free(pc);
	if (imap_client_state(c) == IMAP_STATE_READY &&
	    imap_client_logout(c, logout_done, p) == 0) {
		struct closing *x = xcalloc(1, sizeof(*x));
		x->c = c;
		x->next = p->closing;
		p->closing = x;
	} else {
		imap_client_free(c);
	}
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *pc = arg;
	struct pool_acct *a = pc->a;

	(void)fd;
	(void)what;
	conn_retire(pool_of(a), pc);
	dispatch(a);
}

/* A connection is free: the next request of its password, or kept idle. */
static void
conn_release(struct imap_pool *p, struct pconn *pc)
{
	struct timeval tv = {p->idle_seconds, 0};

	pc->st = PC_IDLE;
	if (pc->idle_ev == NULL)
		pc->idle_ev = evtimer_new(p->base, idle_cb, pc);
	evtimer_add(pc->idle_ev, &tv);
	dispatch(pc->a);
}

/* The request's wait is over. */
static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_pool_req *r = arg;
	struct pool_acct *a = r->a;

	(void)fd;
	(void)what;
	if (r->opening) /* its connection goes on opening, for whoever comes next */
		r->opening->for_req = NULL;
	r->opening = NULL;
	answer(r, NULL, IMAP_POOL_TIMEOUT, "no IMAP connection free in time");
	acct_gc(a);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dispatch(arg);
}

/* Logged in: the connection goes to the request it was opened for, or to the queue. */
static void
on_ready(struct imap_client *c, void *arg)
{
	struct pconn *pc = arg;
	struct imap_pool_req *r = pc->for_req;

	(void)c;
	pc->for_req = NULL;
	if (r != NULL) {
		r->opening = NULL;
		answer(r, pc, IMAP_POOL_OK, NULL);
		return;
	}
	conn_release(pool_of(pc->a), pc);
}

/* Whether a refused login is the server's own connection limit rather than the password. */
static bool
over_limit(const struct pconn *pc, const char *msg)
{
	if (strstr(msg, "Maximum number of connections") != NULL)
		return true;
	for (const struct pconn *o = pc->a->conns; o != NULL; o = o->next) {
		if (o != pc && o->st != PC_CONNECTING &&
		    memcmp(o->hash, pc->hash, sizeof(o->hash)) == 0)
			return true;
	}
	return false;
}

static void
on_error(struct imap_client *c, enum imap_error e, const char *msg, void *arg)
{
	struct pconn *pc = arg;
	struct pool_acct *a = pc->a;
	struct imap_pool *p = pool_of(a);
	struct imap_pool_req *r = pc->for_req;

	(void)c;
	if (pc->st == PC_BUSY) { /* its user hears it from its commands and gives it back */
		pc->dead = true;
		return;
	}
	if (pc->st == PC_IDLE) {
		conn_unlink(pc);
		conn_free(pc);
		dispatch(a);
		return;
	}
	/* CONNECTING */
	if (e == IMAP_ERR_UNAVAILABLE || (e == IMAP_ERR_AUTH && over_limit(pc, msg))) {
		log_info("imap pool: %s: the server refuses more connections (%u open): waiting",
		         a->name, a->n - 1);
		conn_unlink(pc);
		a->limit = a->n > 0 ? a->n : 0;
		conn_free(pc);
		if (r != NULL)
			r->opening = NULL;
		if (a->n == 0 && a->nq != 0) {
			struct timeval tv = {p->retry_ms / 1000, (p->retry_ms % 1000) * 1000};
			if (a->retry_ev == NULL)
				a->retry_ev = evtimer_new(p->base, retry_cb, a);
			evtimer_add(a->retry_ev, &tv);
			acct_gc(a); /* nobody waits any more: nothing to retry for */
			return;
		}
		/*
		 * The connections the server did take serve the queue, the one this
		 * was opened for too: one may be idle already (given back before
		 * the refusal came), and no later put would wake its waiters.
		 */
		dispatch(a);
		return;
	}
	conn_unlink(pc);
	conn_free(pc);
	if (r != NULL) {
		r->opening = NULL;
		answer(r, NULL, e == IMAP_ERR_AUTH ? IMAP_POOL_AUTH : IMAP_POOL_UNAVAILABLE, msg);
	}
	dispatch(a);
}

/* Open a connection of a for r (logged in with r's password). */
static int
conn_open(struct imap_pool *p, struct pool_acct *a, struct imap_pool_req *r)
{
	struct imap_client_conf conf = {
	    .url = p->url,
	    .ca_file = p->ca_file,
	    .ssl_ctx = p->ssl_ctx,
	    .user = r->user,
	    .password = r->password,
	    .allow_plaintext = p->allow_plaintext,
	    .connect_timeout = p->connect_timeout,
	    .gate = p->gate,
	    .command_timeout = p->command_timeout,
	};
	static const struct imap_client_cbs cbs = {.on_ready = on_ready, .on_error = on_error};
	struct pconn *pc = xcalloc(1, sizeof(*pc));
	const char *err = NULL;

	pc->a = a;
	memcpy(pc->hash, r->hash, sizeof(pc->hash));
	pc->st = PC_CONNECTING;
	pc->for_req = r;
	pc->next = a->conns;
	a->conns = pc;
	a->n++;
	r->opening = pc;
	p->opened++;
	if ((pc->c = imap_client_new(p->base, &conf, &cbs, pc, &err)) == NULL) {
		conn_unlink(pc);
		free(pc);
		r->opening = NULL;
		answer(r, NULL, IMAP_POOL_UNAVAILABLE, err);
		return -1;
	}
	pc->counted = true;
	abq_metrics_imap_connections(false, +1);
	conn_index(p, pc);
	return 0;
}

/*
 * Hand out what is free, in the queue's order: an idle connection of the
 * request's password, else a new one within the cap (closing an idle one of
 * another password to make room). Then an account left with nothing is
 * forgotten: a is not to be used after.
 */
static void
dispatch(struct pool_acct *a)
{
	struct imap_pool_req *r, *next;
	struct imap_pool *p = a->p;

	for (r = a->qhead; r != NULL; r = next) {
		struct pconn *idle = NULL, *other = NULL;
		next = r->next;
		if (r->opening != NULL)
			continue;
		for (struct pconn *pc = a->conns; pc != NULL; pc = pc->next) {
			if (pc->st != PC_IDLE)
				continue;
			if (memcmp(pc->hash, r->hash, sizeof(pc->hash)) == 0)
				idle = pc;
			else
				other = pc;
		}
		if (idle != NULL) {
			evtimer_del(idle->idle_ev);
			answer(r, idle, IMAP_POOL_OK, NULL);
			continue;
		}
		if (a->n >= acct_cap(p, a) && other != NULL)
			conn_retire(p, other);
		if (a->n < acct_cap(p, a))
			(void)conn_open(p, a, r);
	}
	acct_gc(a);
}

struct imap_pool *
imap_pool_new(struct event_base *base, const struct imap_pool_conf *conf, const char **errstr)
{
	struct imap_pool *p;

	if (conf->url == NULL ||
	    (strncmp(conf->url, "imap://", 7) != 0 && strncmp(conf->url, "imaps://", 8) != 0)) {
		*errstr = "the IMAP pool's url is not imap:// or imaps://";
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->url = xstrdup(conf->url);
	p->ca_file = xstrdup_null(conf->ca_file);
	p->allow_plaintext = conf->allow_plaintext;
	p->cap = conf->max_per_account ? conf->max_per_account : 3;
	p->idle_seconds = conf->idle_seconds ? conf->idle_seconds : 60;
	p->max_waiters = conf->max_waiters ? conf->max_waiters : 64;
	p->wait_timeout = conf->wait_timeout ? conf->wait_timeout : 30;
	p->retry_ms = conf->retry_ms ? conf->retry_ms : 500;
	p->connect_timeout = conf->connect_timeout;
	p->gate = conf->gate;
	p->command_timeout = conf->command_timeout;
	if ((p->ssl_ctx = tls_client_ctx_new(conf->ca_file, errstr)) == NULL) {
		free(p->url);
		free(p->ca_file);
		free(p);
		return NULL;
	}
	if (getrandom(p->key, sizeof(p->key), 0) != (ssize_t)sizeof(p->key))
		fatalx("imap pool: getrandom failed");
	return p;
}

void
imap_pool_free(struct imap_pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_abuckets; i++) {
		while (p->accts[i]) {
			struct pool_acct *a = p->accts[i];
			p->accts[i] = a->next;
			while (a->conns) {
				struct pconn *pc = a->conns;
				a->conns = pc->next;
				conn_free(pc);
			}
			while (a->qhead) {
				struct imap_pool_req *r = a->qhead;
				a->qhead = r->next;
				req_free(r);
			}
			acct_free(a);
		}
	}
	free(p->accts);
	free(p->conns);
	while (p->closing) {
		struct closing *x = p->closing;
		p->closing = x->next;
		imap_client_free(x->c);
		free(x);
	}
	SSL_CTX_free(p->ssl_ctx);
	free(p->url);
	free(p->ca_file);
	free(p);
}

struct imap_pool_req *
imap_pool_get(struct imap_pool *p, const char *account, const char *user, const char *password,
              imap_pool_cb cb, void *arg, const char **errstr)
{
	struct pool_acct *a = acct_of(p, account, true);
	struct imap_pool_req *r;
	struct timeval tv = {p->wait_timeout, 0};

	if (user == NULL)
		user = account;
	if (a->nq >= p->max_waiters) {
		*errstr = "too many requests wait for an IMAP connection of this account";
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->p = p;
	r->a = a;
	r->cb = cb;
	r->arg = arg;
	r->user = xstrdup(user);
	r->password = xstrdup(password);
	pw_hash(p, user, password, r->hash);
	r->queued = true;
	*a->qtail = r;
	a->qtail = &r->next;
	a->nq++;
	r->timer = evtimer_new(p->base, timeout_cb, r);
	evtimer_add(r->timer, &tv);
	dispatch(a);
	return r;
}

void
imap_pool_cancel(struct imap_pool_req *r)
{
	struct imap_pool *p = r->p;
	struct pool_acct *a = r->a; /* NULL once answered */

	if (r->opening) /* goes on opening: the next request of its password takes it */
		r->opening->for_req = NULL;
	dequeue(r);
	if (r->granted) {
		struct pconn *pc = r->granted;
		r->granted = NULL;
		req_free(r);
		conn_release(p, pc);
		return;
	}
	req_free(r);
	if (a != NULL)
		acct_gc(a);
}

/* The connection record of a client, or NULL. */
static struct pconn *
conn_of(struct imap_pool *p, struct imap_client *c)
{
	if (p->n_cbuckets == 0)
		return NULL;
	for (struct pconn *pc = p->conns[client_bucket(p, c)]; pc != NULL; pc = pc->hnext) {
		if (pc->c == c)
			return pc;
	}
	return NULL;
}

void
imap_pool_put(struct imap_pool *p, struct imap_client *c, bool ok)
{
	struct pconn *pc = conn_of(p, c);
	struct pool_acct *a;

	if (pc == NULL) {
		imap_client_free(c);
		return;
	}
	a = pc->a;
	if (!ok || pc->dead || imap_client_state(c) != IMAP_STATE_READY ||
	    imap_client_pending(c) != 0) {
		conn_unlink(pc);
		conn_free(pc);
		dispatch(a);
		return;
	}
	conn_release(p, pc);
}

unsigned
imap_pool_open_count(const struct imap_pool *p, const char *account)
{
	struct pool_acct *a = acct_of((struct imap_pool *)p, account, false);

	return a != NULL ? a->n : 0;
}

unsigned
imap_pool_accounts(const struct imap_pool *p)
{
	return (unsigned)p->n_accts;
}

unsigned long
imap_pool_opened_total(const struct imap_pool *p)
{
	return p->opened;
}
