/*
 * metrics.c: the daemon's series (metrics.h) and their exposition in the
 * Prometheus text format, version 0.0.4.
 *
 * Every series is a slot in a table of C11 atomics updated with relaxed
 * order: a counter is read only by the scraper, which needs no ordering with
 * anything else, so recording costs one atomic add and never locks or
 * allocates. Label values come from closed enums, so the tables are fixed in
 * size; an out-of-range value lands in slot 0 ("none") instead of being
 * dropped or indexing past a table.
 *
 * One table per process. A prefork abqd moves the tables into one shared
 * mapping before it forks (abq_metrics_share): one table for the main
 * process, one for each worker, each starting on its own 64-byte cache line,
 * and a worker writes only its own (abq_metrics_worker). With one table
 * shared by every worker, each proxied request's adds (the request counter,
 * the latency histogram's bucket and sum, the held gauge up and down) hit the
 * same cache lines from every CPU, and the lines bounced between the cores:
 * at 2 workers abqd spent some 2-3% more CPU per request than with tables
 * that are not shared. The scraper (any process) sums every table, so the
 * exposition is the daemon's whole; gauges such as held requests are kept as
 * +1/-1 deltas per process and add up the same way. A restarted worker takes
 * over its predecessor's table, so its counters keep counting (a Prometheus
 * counter never goes down), and sets the table's gauges to zero, since what
 * the dead process held went with it. The few values that are the daemon's
 * rather than a process's (the start time, the upstream's health) sit apart,
 * on their own cache line.
 *
 * Histograms keep one non-cumulative count per bucket and their sum in
 * nanoseconds (an integer, so it can be added atomically and printed
 * exactly). The scraper makes the buckets cumulative and takes _count from
 * the same reads, so the +Inf bucket and _count always agree within one
 * scrape even while other threads record.
 */
#include "lib/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define N_STATES  (ABQ_STATE_DISCOVERY + 1)
#define N_REASONS (ABQ_REASON_LAST + 1)

/* The bucket bounds, as printed and in nanoseconds for an exact comparison. */
static const char *const bucket_le[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};
static const uint64_t bucket_ns[] = {
    500000ULL,     1000000ULL,    2500000ULL,    5000000ULL,     10000000ULL,
    25000000ULL,   50000000ULL,   100000000ULL,  250000000ULL,   500000000ULL,
    1000000000ULL, 2500000000ULL, 5000000000ULL, 10000000000ULL,
};
#define N_BUCKETS NELEM(bucket_ns)
_Static_assert(NELEM(bucket_le) == NELEM(bucket_ns), "one printed bound per bucket");

struct histogram {
	atomic_uint_fast64_t bucket[N_BUCKETS + 1]; /* the last one is +Inf */
	atomic_uint_fast64_t sum_ns;
};

static const char *const outcome_names[ABQ_OUTCOME_COUNT] = {
    [ABQ_OUTCOME_PROXIED] = "proxied",
    [ABQ_OUTCOME_MAILBOX] = "mailbox",
    [ABQ_OUTCOME_BLOCKED] = "blocked",
    [ABQ_OUTCOME_LIMIT] = "limit",
    [ABQ_OUTCOME_UNAUTHORIZED] = "unauthorized",
    [ABQ_OUTCOME_RATE_LIMITED] = "rate_limited",
    [ABQ_OUTCOME_BAD_REQUEST] = "bad_request",
    [ABQ_OUTCOME_UNAVAILABLE] = "unavailable",
    [ABQ_OUTCOME_OTHER] = "other",
};

/*
 * One process's series (the file's head comment says why one per process).
 * Lock-free atomics work across processes on a MAP_SHARED mapping. The
 * alignment makes the size a multiple of a cache line too, so that in an
 * array of tables no two processes write one line.
 */
#define CACHE_LINE 64
struct table {
	_Alignas(CACHE_LINE)
	    atomic_uint_fast64_t requests[ABQ_METRICS_COMMANDS_MAX][ABQ_OUTCOME_COUNT];
	atomic_uint_fast64_t decisions[N_STATES][N_REASONS];
	struct histogram upstream_latency;
	struct histogram store_latency;
	atomic_uint_fast64_t upstream_errors;
	atomic_int_fast64_t held[ABQ_HELD_KINDS]; /* proxied, mailbox, native */
	atomic_int_fast64_t imap[2];              /* commands, push */
	atomic_uint_fast64_t parsed[2];           /* native mode's messages: thread, loop */
	atomic_uint_fast64_t gal[2];              /* directory lookups: found, failed */
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t auth_rate_limited;
	atomic_int_fast64_t connections[2]; /* eas, admin */
	atomic_uint_fast64_t admin_login_failures;
};
_Static_assert(sizeof(struct table) % CACHE_LINE == 0, "tables start on a cache line");

/* The daemon's values, not a process's: written once or seldom. */
struct global {
	_Alignas(CACHE_LINE) atomic_int_fast64_t start_time;
	atomic_bool upstream_not_ok; /* inverted: the zeroed value reads healthy */
};

/* The shared mapping: the global values, then the main process's table and each worker's. */
struct shared {
	struct global g;
	struct table slot[];
};

_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2 &&
                   ATOMIC_BOOL_LOCK_FREE == 2,
               "the tables' atomics must be lock-free to work across processes");

/* At most this many workers share (3 KiB a table: the mapping stays under 1 MiB). */
#define WORKERS_MAX 256

static struct table local;
static struct global local_global;
/*
 * Every table (nslots of them, read by the scraper), this process's (T, the
 * one it writes) and the global values. Set before the fork (abq_metrics_share)
 * and right after it in the worker (abq_metrics_worker), with no other thread
 * running; read-only after that.
 */
static struct table *slots = &local;
static int nslots = 1;
static struct table *T = &local;
static struct global *G = &local_global;

/* Set once at start (abq_metrics_commands); read at render, maybe on another thread. */
typedef const char *command_name_fn(int);
static _Atomic(command_name_fn *) command_name;
static atomic_int command_count = ABQ_METRICS_COMMANDS_MAX;

const char *
abq_outcome_name(enum abq_req_outcome o)
{
	if ((int)o < 0 || o >= ABQ_OUTCOME_COUNT)
		return "?";
	return outcome_names[o];
}

void
abq_metrics_commands(const char *(*name)(int command), int count)
{
	atomic_store_explicit(&command_name, name, memory_order_relaxed);
	if (count < 1 || count > ABQ_METRICS_COMMANDS_MAX)
		count = ABQ_METRICS_COMMANDS_MAX;
	atomic_store_explicit(&command_count, count, memory_order_relaxed);
}

void
abq_metrics_request(int command, enum abq_req_outcome outcome)
{
	if (command < 0 || command >= atomic_load_explicit(&command_count, memory_order_relaxed))
		command = 0;
	if ((int)outcome < 0 || outcome >= ABQ_OUTCOME_COUNT)
		outcome = ABQ_OUTCOME_OTHER;
	atomic_fetch_add_explicit(&T->requests[command][outcome], 1, memory_order_relaxed);
}

void
abq_metrics_decision(enum abq_state state, enum abq_reason reason)
{
	if ((int)state < 0 || (int)state >= N_STATES)
		state = ABQ_STATE_NONE;
	if ((int)reason < 0 || (int)reason >= N_REASONS)
		reason = ABQ_REASON_NONE;
	atomic_fetch_add_explicit(&T->decisions[state][reason], 1, memory_order_relaxed);
}

/* Seconds to whole nanoseconds; NaN and negative durations count as 0. */
static uint64_t
to_ns(double seconds)
{
	if (!(seconds > 0))
		return 0;
	if (seconds >= 1e9) /* past 30 years: a broken clock, keep the sum sane */
		return 1000000000ULL * 1000000000ULL;
	return (uint64_t)(seconds * 1e9 + 0.5);
}

static void
histogram_observe(struct histogram *h, double seconds)
{
	uint64_t ns = to_ns(seconds);
	size_t i = 0;

	while (i < N_BUCKETS && ns > bucket_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

int
abq_metrics_share(int workers)
{
	if (workers < 0 || workers > WORKERS_MAX)
		return -1;
	if (slots != &local)
		return workers + 1 <= nslots ? 0 : -1;
	size_t size = sizeof(struct shared) + (size_t)(workers + 1) * sizeof(struct table);
	struct shared *p =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/*
	 * Single-threaded here (before the fork): a plain copy of what was counted
	 * so far, into the main process's table; the workers' start at zero.
	 */
	memcpy(&p->g, &local_global, sizeof(local_global));
	memcpy(&p->slot[0], &local, sizeof(local));
	G = &p->g;
	slots = T = p->slot;
	nslots = workers + 1;
	return 0;
}

static void
gauges_reset(struct table *t)
{
	for (size_t i = 0; i < ABQ_HELD_KINDS; i++)
		atomic_store_explicit(&t->held[i], 0, memory_order_relaxed);
	for (size_t i = 0; i < 2; i++) {
		atomic_store_explicit(&t->connections[i], 0, memory_order_relaxed);
		atomic_store_explicit(&t->imap[i], 0, memory_order_relaxed);
	}
}

void
abq_metrics_worker(int i)
{
	if (slots == &local || i < 0 || i + 1 >= nslots)
		return;
	T = &slots[i + 1];
	/* A predecessor's long polls and connections ended with it; its counts stay. */
	gauges_reset(T);
}

void
abq_metrics_upstream_latency(double seconds)
{
	histogram_observe(&T->upstream_latency, seconds);
}

void
abq_metrics_upstream_error(void)
{
	atomic_fetch_add_explicit(&T->upstream_errors, 1, memory_order_relaxed);
}

void
abq_metrics_held(enum abq_held_kind kind, int delta)
{
	if ((unsigned)kind < ABQ_HELD_KINDS)
		atomic_fetch_add_explicit(&T->held[kind], delta, memory_order_relaxed);
}

void
abq_metrics_imap_connections(bool push, int delta)
{
	atomic_fetch_add_explicit(&T->imap[push ? 1 : 0], delta, memory_order_relaxed);
}

void
abq_metrics_native_parsed(bool on_loop, uint64_t n)
{
	atomic_fetch_add_explicit(&T->parsed[on_loop ? 1 : 0], n, memory_order_relaxed);
}

void
abq_metrics_gal_lookup(bool failed)
{
	atomic_fetch_add_explicit(&T->gal[failed ? 1 : 0], 1, memory_order_relaxed);
}

void
abq_metrics_auth_failure(void)
{
	atomic_fetch_add_explicit(&T->auth_failures, 1, memory_order_relaxed);
}

void
abq_metrics_auth_rate_limited(void)
{
	atomic_fetch_add_explicit(&T->auth_rate_limited, 1, memory_order_relaxed);
}

void
abq_metrics_store_latency(double seconds)
{
	histogram_observe(&T->store_latency, seconds);
}

void
abq_metrics_connections(bool admin, int delta)
{
	atomic_fetch_add_explicit(&T->connections[admin ? 1 : 0], delta, memory_order_relaxed);
}

void
abq_metrics_admin_login_failure(void)
{
	atomic_fetch_add_explicit(&T->admin_login_failures, 1, memory_order_relaxed);
}

void
abq_metrics_init(int64_t t)
{
	/* Only the first start counts: a prefork abqd's restarted worker keeps it. */
	int_fast64_t zero = 0;
	atomic_compare_exchange_strong_explicit(&G->start_time, &zero, t, memory_order_relaxed,
	                                        memory_order_relaxed);
}

/*
 * Called after every upstream answer: a store each time would pull the line
 * away from every other worker reading or writing it, so store only a change.
 */
void
abq_health_upstream(bool ok)
{
	if (atomic_load_explicit(&G->upstream_not_ok, memory_order_relaxed) == !ok)
		return;
	atomic_store_explicit(&G->upstream_not_ok, !ok, memory_order_relaxed);
}

bool
abq_health_upstream_ok(void)
{
	return !atomic_load_explicit(&G->upstream_not_ok, memory_order_relaxed);
}

static void
histogram_reset(struct histogram *h)
{
	for (size_t i = 0; i <= N_BUCKETS; i++)
		atomic_store_explicit(&h->bucket[i], 0, memory_order_relaxed);
	atomic_store_explicit(&h->sum_ns, 0, memory_order_relaxed);
}

static void
table_reset(struct table *t)
{
	for (size_t c = 0; c < ABQ_METRICS_COMMANDS_MAX; c++)
		for (size_t o = 0; o < ABQ_OUTCOME_COUNT; o++)
			atomic_store_explicit(&t->requests[c][o], 0, memory_order_relaxed);
	for (size_t s = 0; s < N_STATES; s++)
		for (size_t r = 0; r < N_REASONS; r++)
			atomic_store_explicit(&t->decisions[s][r], 0, memory_order_relaxed);
	histogram_reset(&t->upstream_latency);
	histogram_reset(&t->store_latency);
	atomic_store_explicit(&t->upstream_errors, 0, memory_order_relaxed);
	gauges_reset(t);
	for (size_t i = 0; i < 2; i++) {
		atomic_store_explicit(&t->parsed[i], 0, memory_order_relaxed);
		atomic_store_explicit(&t->gal[i], 0, memory_order_relaxed);
	}
	atomic_store_explicit(&t->auth_failures, 0, memory_order_relaxed);
	atomic_store_explicit(&t->auth_rate_limited, 0, memory_order_relaxed);
	atomic_store_explicit(&t->admin_login_failures, 0, memory_order_relaxed);
}

void
abq_metrics_reset(void)
{
	for (int k = 0; k < nslots; k++)
		table_reset(&slots[k]);
	atomic_store_explicit(&G->start_time, 0, memory_order_relaxed);
	atomic_store_explicit(&G->upstream_not_ok, false, memory_order_relaxed);
}

/* ---- exposition ---- */

/* A label value escaped per the text format: backslash, double quote, newline. */
static void
out_label_value(struct sbuf *o, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			sbuf_add(o, "\\\\");
		else if (*v == '"')
			sbuf_add(o, "\\\"");
		else if (*v == '\n')
			sbuf_add(o, "\\n");
		else
			sbuf_addn(o, v, 1);
	}
}

static void
out_family(struct sbuf *o, const char *name, const char *type, const char *help)
{
	sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Nanoseconds as decimal seconds, exactly: "0.0123", "2", "0". */
static void
out_seconds_ns(struct sbuf *o, uint64_t ns)
{
	char frac[16];
	size_t n;

	snprintf(frac, sizeof(frac), "%09llu", (unsigned long long)(ns % 1000000000ULL));
	n = strlen(frac);
	while (n > 0 && frac[n - 1] == '0')
		n--;
	frac[n] = '\0';
	sbuf_printf(o, "%llu%s%s", (unsigned long long)(ns / 1000000000ULL), n ? "." : "", frac);
}

/* A double as the text format reads it (shortest round trip is not needed here). */
static void
out_double(struct sbuf *o, double v)
{
	if (isnan(v))
		sbuf_add(o, "NaN");
	else if (isinf(v))
		sbuf_add(o, v > 0 ? "+Inf" : "-Inf");
	else
		sbuf_printf(o, "%.15g", v);
}

/*
 * A series summed over every process's table: p is the series in the first
 * table, and the same series sits at the same offset in table k.
 */
static const void *
in_slot(const void *p, int k)
{
	return (const char *)&slots[k] + ((const char *)p - (const char *)slots);
}

static uint64_t
sum_u(const atomic_uint_fast64_t *p)
{
	uint64_t v = 0;

	for (int k = 0; k < nslots; k++)
		v += atomic_load_explicit((const atomic_uint_fast64_t *)in_slot(p, k),
		                          memory_order_relaxed);
	return v;
}

/* The same for a gauge: each process's +1/-1 deltas, added up. */
static int64_t
sum_i(const atomic_int_fast64_t *p)
{
	int64_t v = 0;

	for (int k = 0; k < nslots; k++)
		v += atomic_load_explicit((const atomic_int_fast64_t *)in_slot(p, k),
		                          memory_order_relaxed);
	return v;
}

static void
out_histogram(struct sbuf *o, const char *name, const char *help, const struct histogram *h)
{
	uint64_t cum = 0;

	out_family(o, name, "histogram", help);
	for (size_t i = 0; i <= N_BUCKETS; i++) {
		cum += sum_u(&h->bucket[i]);
		sbuf_printf(o, "%s_bucket{le=\"%s\"} %llu\n", name,
		            i < N_BUCKETS ? bucket_le[i] : "+Inf", (unsigned long long)cum);
	}
	sbuf_printf(o, "%s_sum ", name);
	out_seconds_ns(o, sum_u(&h->sum_ns));
	sbuf_printf(o, "\n%s_count %llu\n", name, (unsigned long long)cum);
}

static void
out_counter(struct sbuf *o, const char *name, const char *help, const atomic_uint_fast64_t *c)
{
	out_family(o, name, "counter", help);
	sbuf_printf(o, "%s %llu\n", name, (unsigned long long)sum_u(c));
}

/* The command label of slot c. */
static void
out_command(struct sbuf *o, int c)
{
	const char *name = NULL;
	command_name_fn *fn = atomic_load_explicit(&command_name, memory_order_relaxed);

	if (c == 0) {
		sbuf_add(o, "none");
		return;
	}
	if (fn != NULL)
		name = fn(c);
	if (name == NULL || *name == '\0')
		sbuf_printf(o, "%d", c);
	else
		out_label_value(o, name);
}

char *
abq_metrics_render(const struct abq_metrics_gauges *g, size_t *len_r)
{
	static const char *const held_kind[ABQ_HELD_KINDS] = {"proxied", "mailbox", "native"};
	static const char *const imap_use[2] = {"commands", "push"};
	static const char *const parse_where[2] = {"thread", "loop"};
	static const char *const gal_result[2] = {"ok", "failed"};
	static const char *const listener[2] = {"eas", "admin"};
	struct sbuf o = {0};
	int ncmd = atomic_load_explicit(&command_count, memory_order_relaxed);

	out_family(&o, "abqd_requests_total", "counter",
	           "ActiveSync requests finished, by command and outcome.");
	for (int c = 0; c < ncmd; c++) {
		for (int oc = 0; oc < ABQ_OUTCOME_COUNT; oc++) {
			uint64_t v = sum_u(&slots->requests[c][oc]);

			if (v == 0)
				continue;
			sbuf_add(&o, "abqd_requests_total{command=\"");
			out_command(&o, c);
			sbuf_printf(&o, "\",outcome=\"%s\"} %llu\n", outcome_names[oc],
			            (unsigned long long)v);
		}
	}

	out_family(&o, "abqd_decisions_total", "counter",
	           "Devices decided when first seen or re-decided to a new state, by state and "
	           "reason.");
	for (int s = 0; s < N_STATES; s++) {
		for (int r = 0; r < N_REASONS; r++) {
			uint64_t v = sum_u(&slots->decisions[s][r]);

			if (v == 0)
				continue;
			sbuf_printf(&o, "abqd_decisions_total{state=\"%s\",reason=\"%s\"} %llu\n",
			            abq_state_name((enum abq_state)s),
			            abq_reason_name((enum abq_reason)r), (unsigned long long)v);
		}
	}

	out_histogram(&o, "abqd_upstream_request_duration_seconds",
	              "Time from sending a request upstream to the head of its answer.",
	              &slots->upstream_latency);
	out_counter(&o, "abqd_upstream_errors_total",
	            "Upstream requests that failed (connect, timeout, bad answer).",
	            &slots->upstream_errors);

	out_family(&o, "abqd_held_requests", "gauge", "Long polls (Ping, Sync) held open now.");
	for (int i = 0; i < ABQ_HELD_KINDS; i++)
		sbuf_printf(&o, "abqd_held_requests{kind=\"%s\"} %lld\n", held_kind[i],
		            (long long)sum_i(&slots->held[i]));
	out_family(&o, "abqd_imap_connections", "gauge",
	           "Native mode's IMAP connections open now: the pool's and the push watchers'.");
	for (int i = 0; i < 2; i++)
		sbuf_printf(&o, "abqd_imap_connections{use=\"%s\"} %lld\n", imap_use[i],
		            (long long)sum_i(&slots->imap[i]));
	out_family(&o, "abqd_native_messages_parsed_total", "counter",
	           "Native mode's fetched messages parsed (MIME) on the parse thread, or on the "
	           "event loop when the parse queue was full.");
	for (int i = 0; i < 2; i++)
		sbuf_printf(&o, "abqd_native_messages_parsed_total{where=\"%s\"} %llu\n",
		            parse_where[i], (unsigned long long)sum_u(&slots->parsed[i]));
	out_family(&o, "abqd_native_gal_lookups_total", "counter",
	           "Native mode's lookups in the global address list's directory ([upstream] gal): "
	           "answered, or failed (unreachable, refused, too slow).");
	for (int i = 0; i < 2; i++)
		sbuf_printf(&o, "abqd_native_gal_lookups_total{result=\"%s\"} %llu\n",
		            gal_result[i], (unsigned long long)sum_u(&slots->gal[i]));

	out_counter(&o, "abqd_auth_failures_total", "Requests refused for bad credentials.",
	            &slots->auth_failures);
	out_counter(&o, "abqd_auth_rate_limited_total",
	            "Requests refused by the authentication rate limits.",
	            &slots->auth_rate_limited);
	out_histogram(&o, "abqd_store_duration_seconds", "Time the store thread spent on one job.",
	              &slots->store_latency);

	out_family(&o, "abqd_connections", "gauge", "Client connections open now, by listener.");
	for (int i = 0; i < 2; i++)
		sbuf_printf(&o, "abqd_connections{listener=\"%s\"} %lld\n", listener[i],
		            (long long)sum_i(&slots->connections[i]));

	if (g != NULL && g->have_outbox) {
		out_family(&o, "abqd_outbox_queued", "gauge", "Notices waiting to be sent.");
		sbuf_printf(&o, "abqd_outbox_queued %lld\n", (long long)g->outbox_queued);
		out_family(&o, "abqd_outbox_oldest_age_seconds", "gauge",
		           "Age of the oldest notice waiting to be sent; 0 when none waits.");
		sbuf_add(&o, "abqd_outbox_oldest_age_seconds ");
		out_double(&o, g->outbox_oldest_age);
		sbuf_add(&o, "\n");
		out_family(&o, "abqd_outbox_failed", "gauge",
		           "Notices given up after their last attempt.");
		sbuf_printf(&o, "abqd_outbox_failed %lld\n", (long long)g->outbox_failed);
	}

	out_counter(&o, "abqd_admin_login_failures_total", "Failed logins on the admin listener.",
	            &slots->admin_login_failures);

	out_family(&o, "abqd_build_info", "gauge", "The running abqd's version; always 1.");
	sbuf_add(&o, "abqd_build_info{version=\"");
	out_label_value(&o, ABQ_VERSION);
	sbuf_add(&o, "\"} 1\n");
	out_family(&o, "abqd_start_time_seconds", "gauge",
	           "When abqd started, in seconds since the epoch.");
	sbuf_printf(&o, "abqd_start_time_seconds %lld\n",
	            (long long)atomic_load_explicit(&G->start_time, memory_order_relaxed));

	if (len_r != NULL)
		*len_r = o.len;
	return o.p;
}
