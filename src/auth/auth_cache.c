/*
 * auth_cache.c: the in-memory tables of the auth front: a hash map keyed by
 * keyed hashes, the positive/negative/known-good credential caches, the
 * failure rate-limit windows and the counts of probes in flight.
 *
 * Design: nothing here knows a password or a user name. auth.c hashes
 * "user\0password" (caches), "a\0address", "p\0account\0address" and
 * "u\0account" (limits) with a per-process random key (SipHash-2-4) and hands
 * over only the 16-byte result. All tables are bounded: when one is full its
 * oldest entry goes, so a flood of distinct credentials or addresses costs
 * memory up to the cap and no more; the in-flight counts hold only keys with
 * a probe in flight. Expired entries leave lazily, from the head of the age
 * list, on every put. A failure window's ring starts small and grows (up to
 * its limit) only while that many failures are within the minute, so a high
 * limit costs memory only where it is used.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "lib/util.h"

struct auth_cache_entry {
	struct amap_node node; /* first: a node pointer is an entry pointer */
	TAILQ_ENTRY(auth_cache_entry) link;
	int64_t born;
};

struct auth_window {
	struct amap_node node; /* first */
	TAILQ_ENTRY(auth_window) link;
	int64_t last;  /* time of the newest failure */
	unsigned next; /* ring position of the next failure (the oldest when full) */
	unsigned cap;  /* slots in ts, at most the limit */
	int64_t *ts;   /* failure times, oldest at next; 0 = empty */
};

struct auth_busy_entry {
	struct amap_node node; /* first */
	unsigned n;            /* probes in flight, > 0 */
};

/* A monotonic millisecond clock; CLOCK_MONOTONIC_COARSE is read from the vDSO. */
int64_t
auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bucket of a key: its first bytes are already a good hash. */
static size_t
amap_bucket(const struct amap *m, const struct akey *k)
{
	uint64_t h;

	memcpy(&h, k->b, sizeof(h));
	return (size_t)h & (m->nbuckets - 1);
}

/* An empty map with a few buckets; it doubles as it fills. */
void
amap_init(struct amap *m)
{
	m->nbuckets = 64;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	m->count = 0;
}

/* Free the bucket array (the nodes belong to the caller). */
void
amap_fini(struct amap *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->count = 0;
}

/* The node with key k, or NULL. */
struct amap_node *
amap_find(const struct amap *m, const struct akey *k)
{
	struct amap_node *n;

	SLIST_FOREACH(n, &m->buckets[amap_bucket(m, k)], link)
		if (memcmp(n->key.b, k->b, AKEY_LEN) == 0)
			return n;
	return NULL;
}

/* Double the bucket array and rehash every node. */
static void
amap_grow(struct amap *m)
{
	struct amap old = *m;

	m->nbuckets = old.nbuckets * 2;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	for (size_t i = 0; i < old.nbuckets; i++) {
		struct amap_node *n;
		while ((n = SLIST_FIRST(&old.buckets[i])) != NULL) {
			SLIST_REMOVE_HEAD(&old.buckets[i], link);
			SLIST_INSERT_HEAD(&m->buckets[amap_bucket(m, &n->key)], n, link);
		}
	}
	free(old.buckets);
}

/* Add n (its key must not be there yet). */
void
amap_insert(struct amap *m, struct amap_node *n)
{
	if (m->count >= m->nbuckets)
		amap_grow(m);
	SLIST_INSERT_HEAD(&m->buckets[amap_bucket(m, &n->key)], n, link);
	m->count++;
}

/* Unlink n, which must be in m. */
void
amap_remove(struct amap *m, struct amap_node *n)
{
	SLIST_REMOVE(&m->buckets[amap_bucket(m, &n->key)], n, amap_node, link);
	m->count--;
}

/* An empty cache whose entries live ttl_ms; at most max of them. */
void
auth_cache_init(struct auth_cache *c, int64_t ttl_ms, size_t max)
{
	amap_init(&c->map);
	TAILQ_INIT(&c->age);
	c->ttl_ms = ttl_ms;
	c->max = max;
}

/* Unlink and free one entry, wiping its key. */
static void
cache_drop(struct auth_cache *c, struct auth_cache_entry *e)
{
	amap_remove(&c->map, &e->node);
	TAILQ_REMOVE(&c->age, e, link);
	explicit_bzero(e, sizeof(*e));
	free(e);
}

/* Free every entry. */
void
auth_cache_fini(struct auth_cache *c)
{
	while (!TAILQ_EMPTY(&c->age))
		cache_drop(c, TAILQ_FIRST(&c->age));
	amap_fini(&c->map);
}

/* Drop the expired entries at the head of the age list. */
static void
cache_expire(struct auth_cache *c, int64_t now)
{
	struct auth_cache_entry *e;

	while ((e = TAILQ_FIRST(&c->age)) != NULL && now - e->born >= c->ttl_ms)
		cache_drop(c, e);
}

/* True if k is cached and fresh; a stale entry is dropped on the way. */
bool
auth_cache_has(struct auth_cache *c, const struct akey *k, int64_t now)
{
	struct auth_cache_entry *e;

	if (c->ttl_ms <= 0)
		return false;
	e = (struct auth_cache_entry *)amap_find(&c->map, k);
	if (e == NULL)
		return false;
	if (now - e->born >= c->ttl_ms) {
		cache_drop(c, e);
		return false;
	}
	return true;
}

/* Cache k as of now (renewing it if there), evicting the oldest when full. */
void
auth_cache_put(struct auth_cache *c, const struct akey *k, int64_t now)
{
	struct auth_cache_entry *e;

	if (c->ttl_ms <= 0 || c->max == 0)
		return;
	cache_expire(c, now);
	e = (struct auth_cache_entry *)amap_find(&c->map, k);
	if (e != NULL) {
		TAILQ_REMOVE(&c->age, e, link);
	} else {
		while (c->map.count >= c->max)
			cache_drop(c, TAILQ_FIRST(&c->age));
		e = xcalloc(1, sizeof(*e));
		e->node.key = *k;
		amap_insert(&c->map, &e->node);
	}
	e->born = now;
	TAILQ_INSERT_TAIL(&c->age, e, link);
}

/* Remove k; true if it was there. */
bool
auth_cache_del(struct auth_cache *c, const struct akey *k)
{
	struct auth_cache_entry *e = (struct auth_cache_entry *)amap_find(&c->map, k);

	if (e == NULL)
		return false;
	cache_drop(c, e);
	return true;
}

/* Entries held (some may be stale until the next put). */
size_t
auth_cache_count(const struct auth_cache *c)
{
	return c->map.count;
}

/* Empty failure windows allowing limit failures a minute; at most max keys. */
void
auth_ratelim_init(struct auth_ratelim *r, unsigned limit, size_t max)
{
	amap_init(&r->map);
	TAILQ_INIT(&r->age);
	r->limit = limit;
	r->max = max;
}

/* Unlink and free one window. */
static void
window_drop(struct auth_ratelim *r, struct auth_window *w)
{
	amap_remove(&r->map, &w->node);
	TAILQ_REMOVE(&r->age, w, link);
	free(w->ts);
	free(w);
}

/* Free every window. */
void
auth_ratelim_fini(struct auth_ratelim *r)
{
	while (!TAILQ_EMPTY(&r->age))
		window_drop(r, TAILQ_FIRST(&r->age));
	amap_fini(&r->map);
}

/* Failures of k within the last minute. */
unsigned
auth_ratelim_count(struct auth_ratelim *r, const struct akey *k, int64_t now)
{
	struct auth_window *w;
	unsigned n = 0;

	if (r->limit == 0)
		return 0;
	w = (struct auth_window *)amap_find(&r->map, k);
	if (w == NULL)
		return 0;
	if (now - w->last >= AUTH_WINDOW_MS) {
		window_drop(r, w); /* all its failures are older than the window */
		return 0;
	}
	for (unsigned i = 0; i < w->cap; i++)
		if (w->ts[i] != 0 && now - w->ts[i] < AUTH_WINDOW_MS)
			n++;
	return n;
}

/* True if k has limit failures in the last minute. */
bool
auth_ratelim_over(struct auth_ratelim *r, const struct akey *k, int64_t now)
{
	return r->limit != 0 && auth_ratelim_count(r, k, now) >= r->limit;
}

/*
 * Make room for one more failure in w: a full ring whose oldest failure is
 * still within the minute grows (doubling, up to the limit), rotated so the
 * oldest is first and the new slots follow the newest.
 */
static void
window_grow(const struct auth_ratelim *r, struct auth_window *w, int64_t now)
{
	unsigned cap;
	int64_t *ts;

	if (w->cap >= r->limit || w->ts[w->next] == 0 || now - w->ts[w->next] >= AUTH_WINDOW_MS)
		return; /* a free or stale slot, or the ring is as big as it gets */
	cap = w->cap > r->limit / 2 ? r->limit : w->cap * 2;
	ts = xcalloc(cap, sizeof(*ts));
	memcpy(ts, w->ts + w->next, (w->cap - w->next) * sizeof(*ts));
	memcpy(ts + (w->cap - w->next), w->ts, w->next * sizeof(*ts));
	free(w->ts);
	w->ts = ts;
	w->next = w->cap;
	w->cap = cap;
}

/*
 * Record one failure of k at now. The ring keeps the newest limit failures,
 * which is all the count needs; windows idle for a minute leave first.
 */
void
auth_ratelim_fail(struct auth_ratelim *r, const struct akey *k, int64_t now)
{
	struct auth_window *w, *old;

	if (r->limit == 0 || r->max == 0)
		return;
	while ((old = TAILQ_FIRST(&r->age)) != NULL && now - old->last >= AUTH_WINDOW_MS)
		window_drop(r, old);
	w = (struct auth_window *)amap_find(&r->map, k);
	if (w != NULL) {
		TAILQ_REMOVE(&r->age, w, link);
		window_grow(r, w, now);
	} else {
		while (r->map.count >= r->max)
			window_drop(r, TAILQ_FIRST(&r->age));
		w = xcalloc(1, sizeof(*w));
		w->cap = r->limit < 8 ? r->limit : 8;
		w->ts = xcalloc(w->cap, sizeof(*w->ts));
		w->node.key = *k;
		amap_insert(&r->map, &w->node);
	}
	w->ts[w->next] = now != 0 ? now : 1;
	w->next = (w->next + 1) % w->cap;
	w->last = now;
	TAILQ_INSERT_TAIL(&r->age, w, link);
}

/* No probe in flight anywhere. */
void
auth_busy_init(struct auth_busy *b)
{
	amap_init(&b->map);
}

/* Free every count (auth_free: the probes are gone without their answers). */
void
auth_busy_fini(struct auth_busy *b)
{
	for (size_t i = 0; i < b->map.nbuckets; i++) {
		struct amap_node *n;
		while ((n = SLIST_FIRST(&b->map.buckets[i])) != NULL) {
			SLIST_REMOVE_HEAD(&b->map.buckets[i], link);
			free(n);
		}
	}
	amap_fini(&b->map);
}

/* Probes in flight charged to k. */
unsigned
auth_busy_count(const struct auth_busy *b, const struct akey *k)
{
	const struct auth_busy_entry *e = (const struct auth_busy_entry *)amap_find(&b->map, k);

	return e != NULL ? e->n : 0;
}

/* One more probe in flight for k. */
void
auth_busy_add(struct auth_busy *b, const struct akey *k)
{
	struct auth_busy_entry *e = (struct auth_busy_entry *)amap_find(&b->map, k);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->node.key = *k;
		amap_insert(&b->map, &e->node);
	}
	e->n++;
}

/* One probe fewer for k; the key leaves with its last probe. */
void
auth_busy_sub(struct auth_busy *b, const struct akey *k)
{
	struct auth_busy_entry *e = (struct auth_busy_entry *)amap_find(&b->map, k);

	if (e == NULL)
		return;
	if (--e->n == 0) {
		amap_remove(&b->map, &e->node);
		free(e);
	}
}
