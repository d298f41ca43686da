/*
 * metrics.h: the daemon's counters, gauges and histograms, and their
 * exposition in the Prometheus text format (served on the admin listener's
 * /metrics, docs/api.md).
 *
 * Every series is a fixed slot in a table of C11 atomics (relaxed order), one
 * table per process: recording is one atomic add on the hot path, from any
 * thread or event loop, with no lock and no allocation; the exposition is the
 * sum over every process's table. Label values come from closed sets (EAS
 * commands, outcomes, states, reasons), so the number of series is bounded
 * whatever clients send.
 *
 * The series:
 *   abqd_requests_total{command,outcome}          counter
 *   abqd_decisions_total{state,reason}            counter (devices decided or re-decided)
 *   abqd_upstream_request_duration_seconds        histogram (time to the upstream's answer head)
 *   abqd_upstream_errors_total                    counter
 *   abqd_held_requests{kind="proxied"|"mailbox"|"native"}  gauge (long polls held now)
 *   abqd_imap_connections{use="commands"|"push"}  gauge (native mode: the pool's, the watchers')
 *   abqd_native_messages_parsed_total{where="thread"|"loop"}  counter (native mode's MIME parses)
 *   abqd_native_gal_lookups_total{result="ok"|"failed"}  counter (directory lookups)
 *   abqd_auth_failures_total                      counter (bad credentials)
 *   abqd_auth_rate_limited_total                  counter
 *   abqd_store_duration_seconds                   histogram (one store-thread job)
 *   abqd_connections{listener="eas"|"admin"}      gauge
 *   abqd_outbox_queued, abqd_outbox_oldest_age_seconds, abqd_outbox_failed
 *                                                 gauges, read from the store at scrape time
 *   abqd_admin_login_failures_total               counter
 *   abqd_build_info{version}                      gauge, 1
 *   abqd_start_time_seconds                       gauge
 */
#ifndef ABQ_METRICS_H
#define ABQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/abq_types.h"

/*
 * How a request to the EAS listener ended. (Not "enum abq_outcome": enum and
 * struct tags share one namespace, and core/registry.h has struct abq_outcome.)
 */
enum abq_req_outcome {
	ABQ_OUTCOME_PROXIED = 0,  /* forwarded; the upstream's answer went back */
	ABQ_OUTCOME_MAILBOX,      /* answered by the quarantine mailbox */
	ABQ_OUTCOME_BLOCKED,      /* the EAS "blocked" answer (129 / 403) */
	ABQ_OUTCOME_LIMIT,        /* device limit (177) */
	ABQ_OUTCOME_UNAUTHORIZED, /* 401: bad or missing credentials */
	ABQ_OUTCOME_RATE_LIMITED, /* 503 with Retry-After from the auth limits */
	ABQ_OUTCOME_BAD_REQUEST,  /* 400: malformed HTTP, query or WBXML */
	ABQ_OUTCOME_UNAVAILABLE,  /* 503: upstream or store unavailable */
	ABQ_OUTCOME_OTHER,        /* OPTIONS, passthrough, anything else */
	ABQ_OUTCOME_COUNT
};
const char *abq_outcome_name(enum abq_req_outcome o);

/*
 * Record one finished request. command is an enum eas_cmd value
 * (eas/request.h), 0 (EAS_CMD_NONE) for none or unknown; values out of range
 * count as none.
 */
void abq_metrics_request(int command, enum abq_req_outcome outcome);
/* A device decided (new) or re-decided to (state, reason). */
void abq_metrics_decision(enum abq_state state, enum abq_reason reason);
void abq_metrics_upstream_latency(double seconds);
void abq_metrics_upstream_error(void);
/* A long poll starts (+1) or ends (-1) being held. */
/* Who holds a long poll: waiting on the upstream, the quarantine mailbox, native mode. */
enum abq_held_kind { ABQ_HELD_PROXIED, ABQ_HELD_MAILBOX, ABQ_HELD_NATIVE, ABQ_HELD_KINDS };
void abq_metrics_held(enum abq_held_kind kind, int delta);
/* Native mode's IMAP connections open: the pool's (commands) or the watchers' (push). */
void abq_metrics_imap_connections(bool push, int delta);
/* n fetched messages parsed on the parse thread, or on the loop (the parse queue full). */
void abq_metrics_native_parsed(bool on_loop, uint64_t n);
/* One lookup in native mode's directory ([upstream] gal) answered, or failed. */
void abq_metrics_gal_lookup(bool failed);
void abq_metrics_auth_failure(void);
void abq_metrics_auth_rate_limited(void);
void abq_metrics_store_latency(double seconds);
void abq_metrics_connections(bool admin, int delta);
void abq_metrics_admin_login_failure(void);
/* Called once at start (build info, start time). */
void abq_metrics_init(int64_t start_time);

/*
 * The command label. src/lib cannot know the EAS command table (src/eas
 * depends on src/lib, not the reverse), so the daemon hands over a callback
 * that names command i (eas_cmd_name) and the number of commands: it is
 * called only at scrape time, so recording stays one atomic add, and there is
 * no second copy of the names to drift from eas/request.c. Command 0 is
 * always labelled "none"; without a callback the label is the number. count
 * is capped at ABQ_METRICS_COMMANDS_MAX; call before recording starts.
 */
#define ABQ_METRICS_COMMANDS_MAX 32
void abq_metrics_commands(const char *(*name)(int command), int count);

/*
 * /healthz's upstream half: set by the upstream client after each request or
 * probe (true when the upstream answered, even with an error status; false on
 * a connect failure or timeout). Until the first report it reads true, so a
 * daemon that has not yet spoken to its upstream is not reported unhealthy.
 */
void abq_health_upstream(bool ok);
bool abq_health_upstream_ok(void);

/* What the scraper reads from the store at scrape time. */
struct abq_metrics_gauges {
	bool have_outbox; /* false: the outbox gauges are left out (store failed) */
	int64_t outbox_queued;
	int64_t outbox_failed;
	double outbox_oldest_age; /* seconds; 0 when nothing is queued */
};

/* The whole exposition text (a new string, NUL-terminated); *len_r (may be NULL) gets its length.
 */
char *abq_metrics_render(const struct abq_metrics_gauges *g, size_t *len_r);

/*
 * Move the series into one anonymous MAP_SHARED mapping, one table for this
 * (the main) process and one for each of workers processes forked afterwards
 * (a prefork abqd's), so that every scrape, in any of them, sees their sum.
 * Call before the fork, with no other thread running. 0, or -1 (workers out
 * of range, or mmap failed: the series stay per process). A second call
 * changes nothing (-1 if it asks for more workers than the first).
 */
int abq_metrics_share(int workers);

/*
 * In worker i (0 to workers - 1) right after the fork: record into worker i's
 * table from now on. A restarted worker i takes over the table of the worker
 * it replaces: its counters go on counting, its gauges (held requests,
 * connections) start again at zero. Does nothing when the series are not
 * shared or i is out of range.
 */
void abq_metrics_worker(int i);

/* For tests: set every counter, gauge and histogram back to zero. */
void abq_metrics_reset(void);

#endif
