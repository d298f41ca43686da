/*
 * auth_int.h: what auth.c, auth_cache.c and the backends share.
 *
 * amap: a chained hash table of nodes keyed by 16-byte keyed hashes (SipHash-2-4,
 * 128-bit output, under a random per-process key). The keys
 * are already uniformly random (a keyed hash the peer cannot predict), so the
 * table hashes by taking their first bytes and cannot be flooded into one
 * bucket.
 * auth_cache: an amap plus an insertion-ordered list; every entry lives the
 * same ttl, so the list head is always the next to expire or to evict.
 * auth_ratelim: per key, a ring of the last `limit` failure times (grown as
 * failures come, up to `limit`); the count of those within the last minute is
 * the sliding-window count.
 * auth_busy: per key, the number of probes in flight (queued or running)
 * charged to it; a key leaves when its count drops to 0, so the table is
 * bounded by the probes in flight. auth.c adds it to the failure count of a
 * window (a probe takes its slot when it starts) and bounds it per address
 * and per account.
 * auth_backend_ops: one backend (upstream probe, IMAP) as a table of
 * functions that build a libcurl easy handle for a probe and read its result.
 */
#ifndef ABQ_AUTH_AUTH_INT_H
#define ABQ_AUTH_AUTH_INT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "auth/auth.h"

#define AKEY_LEN       16
#define AUTH_WINDOW_MS 60000
/* How long credentials that passed a probe are "known good" (auth.h). */
/* The account window over all addresses allows this many times the per-pair limit. */
#define AUTH_ACCOUNT_FACTOR 10
#define AUTH_KNOWN_GOOD_MS  (7 * 24 * 3600 * (int64_t)1000)

struct akey {
	unsigned char b[AKEY_LEN];
};

struct amap_node {
	SLIST_ENTRY(amap_node) link; /* in its bucket */
	struct akey key;
};

/* One bucket's chain. */
SLIST_HEAD(amap_chain, amap_node);

struct amap {
	struct amap_chain *buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
};

void amap_init(struct amap *m);
void amap_fini(struct amap *m);
struct amap_node *amap_find(const struct amap *m, const struct akey *k);
void amap_insert(struct amap *m, struct amap_node *n);
void amap_remove(struct amap *m, struct amap_node *n);

struct auth_cache_entry;
struct auth_cache {
	struct amap map;
	TAILQ_HEAD(, auth_cache_entry) age; /* oldest first */
	int64_t ttl_ms;
	size_t max;
};

void auth_cache_init(struct auth_cache *c, int64_t ttl_ms, size_t max);
void auth_cache_fini(struct auth_cache *c);
/* True if k is there and younger than the ttl (expired entries are dropped). */
bool auth_cache_has(struct auth_cache *c, const struct akey *k, int64_t now);
void auth_cache_put(struct auth_cache *c, const struct akey *k, int64_t now);
/* True if k was there. */
bool auth_cache_del(struct auth_cache *c, const struct akey *k);
size_t auth_cache_count(const struct auth_cache *c);

struct auth_window;
struct auth_ratelim {
	struct amap map;
	TAILQ_HEAD(, auth_window) age; /* least recently failed first */
	unsigned limit;                /* 0: no limit */
	size_t max;
};

void auth_ratelim_init(struct auth_ratelim *r, unsigned limit, size_t max);
void auth_ratelim_fini(struct auth_ratelim *r);
/* Failures recorded for k in the minute before now. */
unsigned auth_ratelim_count(struct auth_ratelim *r, const struct akey *k, int64_t now);
/* True if k has reached the limit. */
bool auth_ratelim_over(struct auth_ratelim *r, const struct akey *k, int64_t now);
void auth_ratelim_fail(struct auth_ratelim *r, const struct akey *k, int64_t now);

struct auth_busy {
	struct amap map;
};

void auth_busy_init(struct auth_busy *b);
void auth_busy_fini(struct auth_busy *b);
/* Probes in flight charged to k. */
unsigned auth_busy_count(const struct auth_busy *b, const struct akey *k);
/* One more probe in flight for k. */
void auth_busy_add(struct auth_busy *b, const struct akey *k);
/* One probe fewer for k (which must have been added). */
void auth_busy_sub(struct auth_busy *b, const struct akey *k);

/* The milliseconds of a monotonic clock (vDSO, no syscall). */
int64_t auth_now_ms(void);

/* What a backend gets to build one probe. */
struct auth_probe_req {
	const char *user;
	const char *password;
	const char *authorization; /* "Basic ..." (built if the client sent none) */
};

struct auth_backend_ops {
	const char *name;
	/* Per-verifier state from conf; NULL with *errstr on a bad conf. */
	void *(*init)(const struct auth_conf *conf, const char **errstr);
	/* A configured easy handle for req; *state_r gets per-probe state freed
	 * by cleanup (it may hold copies of secrets: wipe them). */
	CURL *(*setup)(void *be, const struct auth_probe_req *req, void **state_r,
	               const char **errstr);
	/* The answer of a finished transfer. */
	enum auth_result (*result)(void *be, CURL *easy, void *state, CURLcode rc);
	/* Free what setup made, the easy handle included. */
	void (*cleanup)(void *be, CURL *easy, void *state);
	void (*free)(void *be);
};

extern const struct auth_backend_ops auth_upstream_ops;
extern const struct auth_backend_ops auth_imap_ops;

/* Options both backends set on a new easy handle (timeouts, CA, no signals). */
CURL *auth_easy_new(const struct auth_conf *conf);

#endif
