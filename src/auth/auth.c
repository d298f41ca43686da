/*
 * auth.c: the auth front: caches, failure limits, the probe queue and
 * coalescing, in front of a backend (auth_upstream.c, auth_imap.c).
 *
 * Design: a check (struct auth_pending) is answered either at once from the
 * tables (positive cache, negative cache, rate limit, malformed credentials)
 * or by a probe (struct auth_probe). Probes are keyed by the credentials'
 * keyed hash in `inflight`, so a second check of the same credentials joins the
 * probe already queued or running instead of starting one. At most
 * max_in_flight probes run; the others wait in a FIFO queue.
 *
 * Limits (auth.h says which and why): a new probe is "charged" to the keys of
 * its client address, (account, address) pair and account in `busy` the
 * moment it is made, and that count is added to each key's failure window,
 * so probes in flight hold their slots and cannot overrun a limit. When the
 * probe ends probe_release takes the charge back, turning it into a recorded
 * failure when the answer was DENIED (or the probe was aborted mid-way).
 *
 * Answers are never given from inside auth_check nor from inside libcurl: a
 * pending with its answer goes on the `ready` list and one libevent event
 * (`kick`, made active with event_active: no syscall) delivers the whole list
 * from the loop. That
 * keeps callers simple (the callback never runs under their feet) and lets a
 * callback start or cancel other checks safely.
 *
 * Secrets: a probe holds the only clear copies of the user's password and
 * Authorization header, wiped with explicit_bzero when the probe ends; the
 * tables hold keyed hashes only.
 */
#include <event2/event.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "lib/b64.h"
#include "lib/metrics.h"
#include "lib/siphash.h"
#include "lib/util.h"
#include "net/curl_loop.h"

struct auth_probe {
	struct amap_node node;         /* first; key = HMAC(user\0password), in inflight */
	TAILQ_ENTRY(auth_probe) qlink; /* in a->queue while queued */
	TAILQ_ENTRY(auth_probe) plink; /* in a->probes always */
	TAILQ_HEAD(, auth_pending) waiters;
	struct auth *a;
	struct akey addr_key, pair_key, acct_key; /* what it is charged to */
	bool has_addr;
	bool charged;                  /* holds its slots in a->busy until probe_release */
	char *user, *password, *authz; /* wiped on free */
	CURL *easy;
	void *state;
	bool running;
};

struct auth_pending {
	TAILQ_ENTRY(auth_pending) link; /* in probe->waiters or a->ready */
	struct auth *a;
	struct auth_probe *probe; /* NULL once answered */
	auth_cb *cb;
	void *arg;
	enum auth_result result;
	bool from_cache;
};

struct auth {
	struct event_base *base;
	struct auth_conf conf; /* strings are our copies */
	const struct auth_backend_ops *ops;
	void *be;
	struct curl_loop *cl;
	/*
	 * The keyed hash of the tables: SipHash-2-4 with 128-bit output (a PRF
	 * made for hash tables fed by peers; lib/siphash.h says why abqd has its
	 * own), under a random per-process key. It replaced HMAC-SHA256 through
	 * EVP, whose context copies allocated and freed twice per request.
	 */
	uint8_t hkey[SIPHASH_KEY_LEN];
	struct auth_cache pos, neg;
	struct auth_cache good; /* credentials that passed a probe (AUTH_KNOWN_GOOD_MS) */
	struct auth_ratelim by_addr, by_pair, by_acct;
	struct auth_busy busy; /* probes in flight per address, pair, account key */
	struct amap inflight;
	TAILQ_HEAD(, auth_probe) queue;
	TAILQ_HEAD(, auth_probe) probes;
	TAILQ_HEAD(, auth_pending) ready;
	struct event *kick;
	unsigned running;
	struct auth_stats st;
};

/* The keyed hash of prefix (with its NUL when given) then the bytes s[0..n). */
static void
auth_hash(const struct auth *a, const char *prefix, const char *s, size_t n, struct akey *out)
{
	struct siphash h;

	_Static_assert(AKEY_LEN == SIPHASH_OUT_LEN, "a key is one SipHash output");
	siphash_init(&h, a->hkey);
	if (prefix != NULL)
		siphash_update(&h, prefix, strlen(prefix) + 1);
	siphash_update(&h, s, n);
	siphash_final(&h, out->b);
}

/* The cache key of a credential pair: the keyed hash of "user\0password". */
static void
cred_key(const struct auth *a, const char *user, const char *password, struct akey *out)
{
	auth_hash(a, user, password, strlen(password), out);
}

/* The key of an (account, client address) pair: the keyed hash of "p\0acct\0addr". */
static void
pair_key(const struct auth *a, const char *acct, const char *addr, struct akey *out)
{
	struct siphash h;

	siphash_init(&h, a->hkey);
	siphash_update(&h, "p", 2);
	siphash_update(&h, acct, strlen(acct) + 1);
	siphash_update(&h, addr, strlen(addr));
	siphash_final(&h, out->b);
}

/* Wipe and free a secret string. */
static void
free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* True if s holds a CR, LF or other control byte (never sent upstream). */
static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Count an answer in the stats, and in the daemon's metrics (one per request). */
static void
count_result(struct auth *a, enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		a->st.ok++;
		break;
	case AUTH_DENIED:
		a->st.denied++;
		abq_metrics_auth_failure();
		break;
	case AUTH_UNAVAILABLE:
		a->st.unavailable++;
		break;
	case AUTH_RATE_LIMITED:
		a->st.rate_limited++;
		abq_metrics_auth_rate_limited();
		break;
	}
}

/* Queue p's answer for delivery from the loop. */
static void
make_ready(struct auth *a, struct auth_pending *p, enum auth_result r, bool from_cache)
{
	p->probe = NULL;
	p->result = r;
	p->from_cache = from_cache;
	count_result(a, r);
	TAILQ_INSERT_TAIL(&a->ready, p, link);
	event_active(a->kick, EV_TIMEOUT, 1);
}

/*
 * The kick event: deliver every ready answer. Each pending is unlinked and
 * freed before its callback runs, so the callback may do anything but free a.
 */
static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct auth *a = arg;
	struct auth_pending *p;

	while ((p = TAILQ_FIRST(&a->ready)) != NULL) {
		TAILQ_REMOVE(&a->ready, p, link);
		auth_cb *cb = p->cb;
		void *cbarg = p->arg;
		enum auth_result r = p->result;
		bool fc = p->from_cache;
		free(p);
		cb(cbarg, r, fc);
	}
}

/* Unlink probe pr from every list and free it, wiping its secrets. */
static void
probe_free(struct auth *a, struct auth_probe *pr)
{
	amap_remove(&a->inflight, &pr->node);
	TAILQ_REMOVE(&a->probes, pr, plink);
	free_secret(pr->user);
	free_secret(pr->password);
	free_secret(pr->authz);
	explicit_bzero(pr, sizeof(*pr));
	free(pr);
}

/* Charge a new probe to its keys: it holds a slot in each window from now on. */
static void
probe_charge(struct auth *a, struct auth_probe *pr)
{
	if (pr->has_addr)
		auth_busy_add(&a->busy, &pr->addr_key);
	auth_busy_add(&a->busy, &pr->pair_key);
	auth_busy_add(&a->busy, &pr->acct_key);
	pr->charged = true;
}

/*
 * The probe is over: give its slots back, or, when failed (DENIED, or
 * aborted after it reached the verifier), keep them as recorded failures in
 * the address, pair and account windows.
 */
static void
probe_release(struct auth *a, struct auth_probe *pr, bool failed)
{
	int64_t now = auth_now_ms();

	if (!pr->charged)
		return;
	pr->charged = false;
	if (pr->has_addr)
		auth_busy_sub(&a->busy, &pr->addr_key);
	auth_busy_sub(&a->busy, &pr->pair_key);
	auth_busy_sub(&a->busy, &pr->acct_key);
	if (!failed)
		return;
	if (pr->has_addr)
		auth_ratelim_fail(&a->by_addr, &pr->addr_key, now);
	auth_ratelim_fail(&a->by_pair, &pr->pair_key, now);
	auth_ratelim_fail(&a->by_acct, &pr->acct_key, now);
}

/*
 * A probe has its answer: update the caches and failure windows (OK and
 * UNAVAILABLE give the probe's slots back, DENIED keeps them), hand the
 * answer to every waiter, free the probe. The slot is not refilled here.
 */
static void
probe_complete(struct auth *a, struct auth_probe *pr, enum auth_result r)
{
	struct auth_pending *p;
	int64_t now = auth_now_ms();

	if (r == AUTH_OK) {
		auth_cache_del(&a->neg, &pr->node.key);
		auth_cache_put(&a->pos, &pr->node.key, now);
		auth_cache_put(&a->good, &pr->node.key, now);
	} else if (r == AUTH_DENIED) {
		auth_cache_put(&a->neg, &pr->node.key, now);
		auth_cache_del(&a->good, &pr->node.key);
	}
	probe_release(a, pr, r == AUTH_DENIED);
	while ((p = TAILQ_FIRST(&pr->waiters)) != NULL) {
		TAILQ_REMOVE(&pr->waiters, p, link);
		make_ready(a, p, r, false);
	}
	probe_free(a, pr);
}

static void pump(struct auth *a);

/* curl_loop: a probe's transfer ended. */
static void
on_probe_done(void *arg, CURL *easy, CURLcode rc)
{
	struct auth_probe *pr = arg;
	struct auth *a = pr->a;
	enum auth_result r = a->ops->result(a->be, easy, pr->state, rc);

	a->ops->cleanup(a->be, easy, pr->state);
	pr->easy = NULL;
	pr->state = NULL;
	pr->running = false;
	a->running--;
	probe_complete(a, pr, r);
	pump(a);
}

/* Build and start pr's transfer. Returns 0, or -1 (the verifier is unusable). */
static int
probe_start(struct auth *a, struct auth_probe *pr)
{
	const char *errstr = NULL;
	struct auth_probe_req req = {pr->user, pr->password, pr->authz};

	pr->easy = a->ops->setup(a->be, &req, &pr->state, &errstr);
	if (pr->easy == NULL)
		return -1;
	if (curl_loop_add(a->cl, pr->easy, on_probe_done, pr, &errstr) == -1) {
		a->ops->cleanup(a->be, pr->easy, pr->state);
		pr->easy = NULL;
		pr->state = NULL;
		return -1;
	}
	pr->running = true;
	a->running++;
	a->st.probes++;
	return 0;
}

/* Start queued probes while there are free slots. */
static void
pump(struct auth *a)
{
	struct auth_probe *pr;

	while (a->running < a->conf.max_in_flight && (pr = TAILQ_FIRST(&a->queue)) != NULL) {
		TAILQ_REMOVE(&a->queue, pr, qlink);
		if (probe_start(a, pr) == -1)
			probe_complete(a, pr, AUTH_UNAVAILABLE);
	}
}

/* Options every probe shares: timeouts, CA file, no signals, no redirects. */
CURL *
auth_easy_new(const struct auth_conf *conf)
{
	CURL *easy = curl_easy_init();

	if (easy == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)conf->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)conf->request_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	if (conf->ca_file != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, conf->ca_file);
	if (conf->insecure_skip_verify) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return easy;
}

/* Copy conf into a, filling in the defaults. */
static void
conf_copy(struct auth_conf *dst, const struct auth_conf *src)
{
	*dst = *src;
	dst->method = xstrdup_null(src->method);
	dst->upstream_url = xstrdup_null(src->upstream_url);
	dst->ca_file = xstrdup_null(src->ca_file);
	if (dst->connect_timeout_ms <= 0)
		dst->connect_timeout_ms = 5000;
	if (dst->request_timeout_ms <= 0)
		dst->request_timeout_ms = 30000;
	if (dst->max_in_flight == 0)
		dst->max_in_flight = 64;
	if (dst->max_probes_per_address == 0)
		dst->max_probes_per_address = 4;
	if (dst->max_probes_per_account == 0)
		dst->max_probes_per_account = 4;
	if (dst->max_cache == 0)
		dst->max_cache = 100000;
}

/* Free the strings conf_copy made. */
static void
conf_free(struct auth_conf *c)
{
	free((char *)c->method);
	free((char *)c->upstream_url);
	free((char *)c->ca_file);
}

/*
 * The limit of the account window over all addresses: ten times the
 * per-pair limit (0 stays 0: no limit), saturated rather than wrapped.
 */
static unsigned
acct_limit(unsigned per_pair)
{
	return per_pair > UINT_MAX / AUTH_ACCOUNT_FACTOR ? UINT_MAX
	                                                 : per_pair * AUTH_ACCOUNT_FACTOR;
}

/* Pick the backend for conf->method, start libcurl, set up the tables. */
struct auth *
auth_new(struct event_base *base, const struct auth_conf *conf, const char **errstr)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->base = base;
	conf_copy(&a->conf, conf);
	TAILQ_INIT(&a->queue);
	TAILQ_INIT(&a->probes);
	TAILQ_INIT(&a->ready);
	amap_init(&a->inflight);
	auth_cache_init(&a->pos, a->conf.cache_ttl_ms, a->conf.max_cache);
	auth_cache_init(&a->neg, a->conf.failure_ttl_ms, a->conf.max_cache);
	auth_cache_init(&a->good, AUTH_KNOWN_GOOD_MS, a->conf.max_cache);
	auth_ratelim_init(&a->by_addr, a->conf.max_failures_per_address, a->conf.max_cache);
	auth_ratelim_init(&a->by_pair, a->conf.max_failures_per_account, a->conf.max_cache);
	auth_ratelim_init(&a->by_acct, acct_limit(a->conf.max_failures_per_account),
	                  a->conf.max_cache);
	auth_busy_init(&a->busy);
	if (a->conf.method == NULL || strcasecmp(a->conf.method, "upstream") == 0) {
		a->ops = &auth_upstream_ops;
	} else if (strncasecmp(a->conf.method, "imap://", 7) == 0 ||
	           strncasecmp(a->conf.method, "imaps://", 8) == 0) {
		a->ops = &auth_imap_ops;
	} else {
		*errstr = "auth method must be upstream, imap:// or imaps://";
		goto fail;
	}
	if (RAND_bytes(a->hkey, sizeof(a->hkey)) != 1) {
		*errstr = "cannot key the credential cache (RAND_bytes failed)";
		goto fail;
	}
	if ((a->kick = event_new(base, -1, 0, on_kick, a)) == NULL) {
		*errstr = "event_new failed";
		goto fail;
	}
	if ((a->cl = curl_loop_new(base, errstr)) == NULL)
		goto fail;
	if ((a->be = a->ops->init(&a->conf, errstr)) == NULL)
		goto fail;
	return a;
fail:
	a->ops = NULL;
	auth_free(&a);
	return NULL;
}

/* Abort everything without callbacks, wipe and free. */
void
auth_free(struct auth **ap)
{
	struct auth *a = *ap;
	struct auth_probe *pr;
	struct auth_pending *p;

	if (a == NULL)
		return;
	while ((pr = TAILQ_FIRST(&a->probes)) != NULL) {
		while ((p = TAILQ_FIRST(&pr->waiters)) != NULL) {
			TAILQ_REMOVE(&pr->waiters, p, link);
			free(p);
		}
		if (pr->running) {
			curl_loop_remove(a->cl, pr->easy);
			a->ops->cleanup(a->be, pr->easy, pr->state);
		}
		probe_free(a, pr);
	}
	while ((p = TAILQ_FIRST(&a->ready)) != NULL) {
		TAILQ_REMOVE(&a->ready, p, link);
		free(p);
	}
	if (a->be != NULL)
		a->ops->free(a->be);
	curl_loop_free(&a->cl);
	if (a->kick != NULL)
		event_free(a->kick);
	auth_cache_fini(&a->pos);
	auth_cache_fini(&a->neg);
	auth_cache_fini(&a->good);
	auth_ratelim_fini(&a->by_addr);
	auth_ratelim_fini(&a->by_pair);
	auth_ratelim_fini(&a->by_acct);
	auth_busy_fini(&a->busy);
	amap_fini(&a->inflight);
	conf_free(&a->conf);
	explicit_bzero(a, sizeof(*a));
	free(a);
	*ap = NULL;
}

/* Base64 "user:password" into a new "Basic ..." string (wipe it after use). */
static char *
basic_header(const char *user, const char *password)
{
	size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl;
	unsigned char *raw = xmalloc(n + 1);
	char *out = xmalloc(6 + B64_ENCODED_LEN(n) + 1);

	memcpy(raw, user, ul);
	raw[ul] = ':';
	memcpy(raw + ul + 1, password, pl);
	memcpy(out, "Basic ", 6);
	b64_encode(raw, n, out + 6);
	explicit_bzero(raw, n + 1);
	free(raw);
	return out;
}

/* Credentials worth a look: a user, a password, no control character anywhere. */
static bool
usable(const char *user, const char *password, const char *authorization)
{
	return user != NULL && password != NULL && *user != '\0' && !has_ctl(user) &&
	       !has_ctl(password) && (authorization == NULL || !has_ctl(authorization));
}

/* The two caches' answer for key (OK, DENIED), counted as a hit; false if neither knows it. */
static bool
cache_answer(struct auth *a, const struct akey *key, int64_t now, enum auth_result *result)
{
	if (auth_cache_has(&a->pos, key, now)) {
		a->st.cache_hits++;
		*result = AUTH_OK;
		return true;
	}
	if (auth_cache_has(&a->neg, key, now)) {
		a->st.negative_hits++;
		*result = AUTH_DENIED;
		return true;
	}
	return false;
}

/* The caches alone, answered now; see auth.h. */
bool
auth_check_cached(struct auth *a, const char *user, const char *password, const char *authorization,
                  enum auth_result *result)
{
	struct akey key;

	if (!usable(user, password, authorization))
		return false; /* auth_check denies it, and counts it */
	cred_key(a, user, password, &key);
	if (!cache_answer(a, &key, auth_now_ms(), result))
		return false;
	a->st.checks++;
	count_result(a, *result);
	return true;
}

/* True if k's window is full: its failures in the minute plus its probes in flight. */
static bool
window_full(struct auth *a, struct auth_ratelim *r, const struct akey *k, int64_t now)
{
	return r->limit != 0 &&
	       auth_ratelim_count(r, k, now) + auth_busy_count(&a->busy, k) >= r->limit;
}

/*
 * May a new probe charged to pr's keys start now? Its own address and
 * (account, address) pair must have room; the account over all addresses
 * must too, unless the credentials are known good (auth.h says why).
 */
static bool
probe_allowed(struct auth *a, const struct auth_probe *pr, bool known_good, int64_t now)
{
	if (pr->has_addr &&
	    (auth_busy_count(&a->busy, &pr->addr_key) >= a->conf.max_probes_per_address ||
	     window_full(a, &a->by_addr, &pr->addr_key, now)))
		return false;
	if (window_full(a, &a->by_pair, &pr->pair_key, now))
		return false;
	if (known_good)
		return true;
	return auth_busy_count(&a->busy, &pr->acct_key) < a->conf.max_probes_per_account &&
	       !window_full(a, &a->by_acct, &pr->acct_key, now);
}

/* The public entry: answer from the tables, or join or start a probe. */
struct auth_pending *
auth_check(struct auth *a, const char *user, const char *password, const char *authorization,
           const char *client_addr, auth_cb *cb, void *arg)
{
	struct auth_pending *p = xmalloc(sizeof(*p)); /* calloc bypasses glibc's thread cache */
	struct auth_probe *pr, lim;
	struct akey key;
	enum auth_result cached;
	int64_t now = auth_now_ms();
	char *acct;

	memset(p, 0, sizeof(*p));
	p->a = a;
	p->cb = cb;
	p->arg = arg;
	a->st.checks++;
	if (!usable(user, password, authorization)) {
		make_ready(a, p, AUTH_DENIED, false);
		return p;
	}
	cred_key(a, user, password, &key);
	if (cache_answer(a, &key, now, &cached)) {
		make_ready(a, p, cached, true);
		return p;
	}
	if ((acct = account_canonical(user, a->conf.default_domain)) == NULL) {
		make_ready(a, p, AUTH_DENIED, false);
		return p;
	}
	pr = (struct auth_probe *)amap_find(&a->inflight, &key);
	if (pr != NULL) {
		/* the same credentials are being probed: no new guess, no new slot */
		free(acct);
		a->st.coalesced++;
		p->probe = pr;
		TAILQ_INSERT_TAIL(&pr->waiters, p, link);
		return p;
	}
	memset(&lim, 0, sizeof(lim));
	auth_hash(a, "u", acct, strlen(acct), &lim.acct_key);
	pair_key(a, acct, client_addr != NULL ? client_addr : "", &lim.pair_key);
	free(acct);
	if (client_addr != NULL) {
		auth_hash(a, "a", client_addr, strlen(client_addr), &lim.addr_key);
		lim.has_addr = true;
	}
	if (!probe_allowed(a, &lim, auth_cache_has(&a->good, &key, now), now)) {
		make_ready(a, p, AUTH_RATE_LIMITED, false);
		return p;
	}
	pr = xcalloc(1, sizeof(*pr));
	pr->a = a;
	pr->node.key = key;
	pr->addr_key = lim.addr_key;
	pr->pair_key = lim.pair_key;
	pr->acct_key = lim.acct_key;
	pr->has_addr = lim.has_addr;
	TAILQ_INIT(&pr->waiters);
	pr->user = xstrdup(user);
	pr->password = xstrdup(password);
	pr->authz = authorization != NULL ? xstrdup(authorization) : basic_header(user, password);
	amap_insert(&a->inflight, &pr->node);
	TAILQ_INSERT_TAIL(&a->probes, pr, plink);
	probe_charge(a, pr);
	p->probe = pr;
	TAILQ_INSERT_TAIL(&pr->waiters, p, link);
	TAILQ_INSERT_TAIL(&a->queue, pr, qlink);
	pump(a);
	return p;
}

/*
 * Forget p. If it was the last waiter of its probe, the probe goes too: a
 * queued one leaves the queue and gives its limit slots back (the verifier
 * never saw it); a running one is aborted, its probe slot refilled, and its
 * limit slots kept as failures: the verifier has seen the guess (and may count
 * it against the account itself), so hanging up must not buy another.
 */
void
auth_cancel(struct auth_pending *p)
{
	struct auth *a = p->a;
	struct auth_probe *pr = p->probe;

	a->st.cancelled++;
	if (pr == NULL) {
		TAILQ_REMOVE(&a->ready, p, link);
		free(p);
		return;
	}
	TAILQ_REMOVE(&pr->waiters, p, link);
	free(p);
	if (!TAILQ_EMPTY(&pr->waiters))
		return;
	if (pr->running) {
		curl_loop_remove(a->cl, pr->easy);
		a->ops->cleanup(a->be, pr->easy, pr->state);
		a->running--;
		probe_release(a, pr, true);
	} else {
		TAILQ_REMOVE(&a->queue, pr, qlink);
		probe_release(a, pr, false);
	}
	probe_free(a, pr);
	pump(a);
}

/* Drop a credential pair from the positive cache. */
void
auth_forget(struct auth *a, const char *user, const char *password)
{
	struct akey key;

	if (user == NULL || password == NULL)
		return;
	cred_key(a, user, password, &key);
	if (auth_cache_del(&a->pos, &key))
		a->st.forgotten++;
}

/*
 * Retry-After for the 503 answers: a failing verifier is worth retrying soon;
 * a rate limit lifts as the one-minute window slides.
 */
unsigned
auth_retry_after(const struct auth *a, enum auth_result r)
{
	switch (r) {
	case AUTH_RATE_LIMITED:
		return AUTH_WINDOW_MS / 1000;
	case AUTH_UNAVAILABLE:
		return 30;
	default:
		return 0;
	}
}

/* A name for logs and metrics labels. */
const char *
auth_result_str(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_DENIED:
		return "denied";
	case AUTH_UNAVAILABLE:
		return "unavailable";
	case AUTH_RATE_LIMITED:
		return "rate-limited";
	}
	return "?";
}

/* Copy the counters, with the current gauges. */
void
auth_get_stats(const struct auth *a, struct auth_stats *st)
{
	struct auth_probe *pr;

	*st = a->st;
	st->in_flight = a->running;
	st->queued = 0;
	TAILQ_FOREACH(pr, &a->queue, qlink)
		st->queued++;
	st->cached = (unsigned)auth_cache_count(&a->pos);
	st->negative_cached = (unsigned)auth_cache_count(&a->neg);
	st->known_good = (unsigned)auth_cache_count(&a->good);
}
