/*
 * auth.h: checking a phone's credentials ([auth] in interfaces.md).
 *
 * One interface, two backends behind an ops table (auth_int.h):
 *   method "upstream"   auth_upstream.c: OPTIONS [upstream] url with the
 *                       client's Authorization header; 200 = good, 401 = wrong
 *                       password, anything else or a timeout = unavailable.
 *   imap:// / imaps://  auth_imap.c: IMAP LOGIN (then LOGOUT); a refused login is
 *                       a wrong password, any other failure = unavailable.
 * Both run through libcurl's multi interface on the caller's libevent loop
 * (net/curl_loop.h), so a probe never blocks the loop.
 *
 * In front of the backends (auth.c, auth_cache.c):
 *   - a positive cache (cache_ttl) and a negative cache (failure_ttl), keyed by
 *     SipHash-2-4-128(random per-process key, "user\0password"): the password is
 *     never kept, only the hash. Each holds at most max_cache entries; when
 *     full the oldest goes. Unavailable answers are never cached.
 *   - a set of "known good" credentials: the same keyed hashes, of every pair
 *     that passed a probe in the last 7 days (AUTH_KNOWN_GOOD_MS), at most
 *     max_cache, oldest evicted, in memory only. A DENIED probe removes its
 *     pair. It outlives the positive cache; it answers nothing by itself, it
 *     only exempts a probe from the account-wide limits below.
 *   - failure limits and bounds on probes in flight (LIMITS below);
 *   - a cap on probes in flight (max_in_flight) with a FIFO queue behind it;
 *     identical credentials checked while a probe for them is queued or running
 *     share that one probe.
 *
 * A user or password with a control character (CR, LF, ...) or a user that is
 * no usable account name (util.h account_normalize) is DENIED unprobed.
 * Limits are per client address string as given: an IPv6 client rotating
 * through its /64 counts as many addresses (a known limitation).
 *
 * Order of a check: unusable credentials (DENIED) -> positive cache (OK) ->
 * negative cache (DENIED) -> unusable account name (DENIED) -> join a probe of
 * the same credentials already queued or running (no limit: it is no new
 * guess and takes no slot) -> limits (RATE_LIMITED, not probed) -> start a
 * probe. The positive cache still comes first: a password answered from it
 * is never refused by a limit.
 *
 * LIMITS. The account is the one account_normalize gives (util.h). A probe is
 * charged when it STARTS (made, queued or running), to three keys: its client
 * address, its (account, client address) pair, and its account. From then on
 * it holds a provisional failure slot in each of their sliding one-minute
 * windows. When it answers OK or UNAVAILABLE (not the client's fault) the
 * slots are given back; DENIED keeps them as failures. A probe aborted by
 * auth_cancel gives them back if it was still queued, and keeps them as
 * failures if it was running (the verifier saw the guess). A window's count
 * is its failures in the last minute plus the probes in flight charged to it,
 * so no more than its limit of guesses can be in flight or failed in any
 * minute: the (limit+1)th concurrent guess is refused unprobed. A probe
 * may start only if every check below passes, else AUTH_RATE_LIMITED:
 *   address  window max_failures_per_address, and at most
 *            max_probes_per_address probes in flight;
 *   pair     window max_failures_per_account, per (account, address): a
 *            guessing storm from one address locks that address out of that
 *            account and nothing else;
 *   account  window 10 x max_failures_per_account over all addresses (against
 *            guessing spread over many addresses), and at most
 *            max_probes_per_account probes in flight - both skipped when the
 *            credentials are known good.
 * Why this cannot lock out the owner: the address and pair windows that a
 * check meets are filled only by probes from its own address; the only counts
 * other addresses can fill are the account-wide ones, and those never refuse
 * credentials that are known good (a keyed hash the attacker can only match
 * with the password itself). So the owner whose password passed within 7 days
 * is probed from any address of its own, whatever a flood from elsewhere did;
 * what remains is an owner whose password is not known good (first use in 7
 * days, a restart, a new password) during a guessing storm spread over many
 * addresses, who waits for the account window (one minute after the storm),
 * and an attacker who shares the owner's address (the same NAT), who can fill
 * that address's windows as the owner can.
 *
 * RATE-LIMIT DECISION: the daemon answers AUTH_RATE_LIMITED with 503 and
 * Retry-After (auth_retry_after), as it does AUTH_UNAVAILABLE, and NOT with
 * 401: a 401 for the account limit would tell a user whose password is right
 * that it is wrong (phones then prompt for it or, worse, disable the account),
 * and 429 is not something ActiveSync clients understand, while 503 with
 * Retry-After is what Exchange itself sends when it throttles. Only
 * AUTH_DENIED gives 401 with WWW-Authenticate: Basic. Nothing of a failed
 * check is recorded anywhere but in these in-memory windows and caches.
 *
 * The callback is ALWAYS deferred: auth_check never calls it before returning.
 * Cache hits and rate-limit answers go through event_active on the loop (no
 * syscall, no probe); probe answers come when the probe ends. The callback is
 * called exactly once unless auth_cancel is called first; after the callback
 * or auth_cancel the pending handle is gone. A callback may call auth_check,
 * auth_cancel of another pending and auth_forget, but not auth_free.
 *
 * Credentials are never logged nor kept in clear longer than a probe: every
 * copy is wiped with explicit_bzero before it is freed (libcurl keeps its own
 * copy of an IMAP password in the easy handle while the probe runs; that copy
 * is freed, not wiped, by libcurl).
 *
 * Everything runs on the loop's thread; nothing here is thread-safe.
 */
#ifndef ABQ_AUTH_AUTH_H
#define ABQ_AUTH_AUTH_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct auth;
struct auth_pending;

enum auth_result {
	AUTH_OK,           /* the credentials are good */
	AUTH_DENIED,       /* wrong: answer 401 + WWW-Authenticate: Basic */
	AUTH_UNAVAILABLE,  /* the verifier failed: 503 + Retry-After */
	AUTH_RATE_LIMITED, /* too many failures: 503 + Retry-After, not probed */
};

struct auth_conf {
	const char *method;                /* "upstream", "imap://host[:port]", "imaps://host" */
	const char *upstream_url;          /* for "upstream": the ActiveSync URL to OPTIONS */
	const char *ca_file;               /* NULL: libcurl's default store */
	int64_t connect_timeout_ms;        /* 0: 5000 */
	int64_t request_timeout_ms;        /* 0: 30000; whole probe */
	int64_t cache_ttl_ms;              /* positive cache; 0: no positive cache */
	int64_t failure_ttl_ms;            /* negative cache; 0: no negative cache */
	unsigned max_failures_per_address; /* per minute; 0: no limit */
	/* per minute and (account, address) pair; 10 x this per account over
	 * all addresses, not for known-good credentials; 0: neither limit */
	unsigned max_failures_per_account;
	unsigned max_probes_per_address; /* probes in flight started from one address; 0: 4 */
	unsigned max_probes_per_account; /* probes in flight for one account, not for
	                                    known-good credentials; 0: 4 */
	unsigned max_in_flight;          /* probes at once; 0: 64 */
	unsigned max_cache;              /* entries per cache/limit table; 0: 100000 */
	bool insecure_skip_verify;       /* tests only: no TLS peer verification */
	/*
	 * [eas] default_domain, or NULL: the per-account limit counts every
	 * spelling of one account together (util.h account_canonical). Not
	 * copied: it must outlive the verifier.
	 */
	const char *default_domain;
};

/* Counters for /metrics; monotonic except in_flight and queued. */
struct auth_stats {
	uint64_t checks;
	uint64_t cache_hits;    /* positive */
	uint64_t negative_hits; /* answered DENIED from the negative cache */
	uint64_t probes;        /* probes started */
	uint64_t coalesced;     /* checks that joined a probe already there */
	uint64_t ok, denied, unavailable, rate_limited; /* answers given */
	uint64_t cancelled;
	uint64_t forgotten; /* auth_forget that removed an entry */
	unsigned in_flight; /* probes running now */
	unsigned queued;    /* probes waiting for a slot */
	unsigned cached, negative_cached;
	unsigned known_good; /* credentials in the known-good set */
};

typedef void auth_cb(void *arg, enum auth_result result, bool from_cache);

/*
 * A verifier on base, per conf (copied). Returns NULL with *errstr set (a
 * static string) when the method is unknown or libcurl fails to start.
 */
struct auth *auth_new(struct event_base *base, const struct auth_conf *conf, const char **errstr);
/* Abort probes and pending checks (no callbacks), wipe the caches, free, NULL. */
void auth_free(struct auth **a);

/*
 * Check user/password. authorization is the client's raw Authorization header
 * value ("Basic ...") forwarded as-is by the upstream probe; NULL builds a
 * Basic header from user and password. client_addr keys the per-address
 * and per-pair limits (NULL: no address limit; such checks share one pair per
 * account). Returns a handle for auth_cancel; cb(arg, result, from_cache) comes
 * later from the loop. from_cache is true for cache answers (both caches).
 */
struct auth_pending *auth_check(struct auth *a, const char *user, const char *password,
                                const char *authorization, const char *client_addr, auth_cb *cb,
                                void *arg);
/*
 * The same check answered from the caches alone, at once, with no callback:
 * true with *result AUTH_OK (positive cache) or AUTH_DENIED (negative cache),
 * counted in the stats as auth_check counts a cache answer. False when neither
 * cache knows the pair, or it is refused unlooked (empty user, a control
 * character): auth_check then gives the answer, and counts it. This is the
 * fast path of nearly every request of a phone that syncs; it saves the
 * deferral (an allocation and a pass of the loop) that auth_check's promise
 * of an always-later callback costs.
 */
bool auth_check_cached(struct auth *a, const char *user, const char *password,
                       const char *authorization, enum auth_result *result);
/* The phone went away: no callback for p, which is freed. A probe it started
 * keeps running if others wait on it, or is aborted if none does. */
void auth_cancel(struct auth_pending *p);
/* The upstream said 401 on a forwarded request: drop user/password from the
 * positive cache, so the next request is probed. */
void auth_forget(struct auth *a, const char *user, const char *password);

/* Seconds for Retry-After with AUTH_UNAVAILABLE / AUTH_RATE_LIMITED. */
unsigned auth_retry_after(const struct auth *a, enum auth_result r);
/* "ok", "denied", "unavailable", "rate-limited". */
const char *auth_result_str(enum auth_result r);
void auth_get_stats(const struct auth *a, struct auth_stats *st);

#endif
