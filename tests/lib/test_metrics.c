/*
 * test_metrics.c: lib/metrics.c as a scraper sees it.
 *
 * Each test records known values, renders the exposition and checks exact
 * lines: what Prometheus would store is what the lines say, so the numbers,
 * the label spellings and the escaping are the behaviour under test. The
 * command names come from the real EAS command table (eas_cmd_name), handed
 * over the way the daemon does. The prefork tests fork real processes that
 * record into the shared tables the way abqd's workers do, and scrape in the
 * parent, as worker 0's admin listener would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eas/request.h"
#include "lib/metrics.h"

/* The daemon's adapter from the metrics callback to the EAS command table. */
static const char *
cmd_label(int c)
{
	return eas_cmd_name((enum eas_cmd)c);
}

/* A command table whose names need escaping. */
static const char *
odd_label(int c)
{
	return c == 1 ? "a\"b\\c\nd" : "";
}

static char *
render(const struct abq_metrics_gauges *g)
{
	size_t len = 0;
	char *s = abq_metrics_render(g, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	assert_true(len > 0 && s[len - 1] == '\n');
	return s;
}

/* True when text holds line as a whole line. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* How many lines begin with prefix. */
static int
count_prefix(const char *text, const char *prefix)
{
	int n = 0;
	size_t plen = strlen(prefix);

	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, prefix, plen) == 0)
			n++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return n;
}

#define assert_line(text, line)                                                                    \
	do {                                                                                       \
		if (!has_line((text), (line)))                                                     \
			fail_msg("missing line: %s\n--- exposition:\n%s", (line), (text));         \
	} while (0)

static int
setup(void **state)
{
	abq_metrics_reset();
	abq_metrics_commands(cmd_label, EAS_CMD_COUNT);
	return 0;
}

/* Nothing recorded: every family with its HELP and TYPE, exactly this text. */
static void
test_empty(void **state)
{
	static const char want[] =
	    "# HELP abqd_requests_total ActiveSync requests finished, by command and outcome.\n"
	    "# TYPE abqd_requests_total counter\n"
	    "# HELP abqd_decisions_total Devices decided when first seen or re-decided to a new "
	    "state, by state and reason.\n"
	    "# TYPE abqd_decisions_total counter\n"
	    "# HELP abqd_upstream_request_duration_seconds Time from sending a request upstream "
	    "to the head of its answer.\n"
	    "# TYPE abqd_upstream_request_duration_seconds histogram\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.0005\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.001\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.005\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.01\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.025\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.05\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.1\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.25\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"0.5\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"1\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"2.5\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"5\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"10\"} 0\n"
	    "abqd_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
	    "abqd_upstream_request_duration_seconds_sum 0\n"
	    "abqd_upstream_request_duration_seconds_count 0\n"
	    "# HELP abqd_upstream_errors_total Upstream requests that failed (connect, timeout, "
	    "bad answer).\n"
	    "# TYPE abqd_upstream_errors_total counter\n"
	    "abqd_upstream_errors_total 0\n"
	    "# HELP abqd_held_requests Long polls (Ping, Sync) held open now.\n"
	    "# TYPE abqd_held_requests gauge\n"
	    "abqd_held_requests{kind=\"proxied\"} 0\n"
	    "abqd_held_requests{kind=\"mailbox\"} 0\n"
	    "abqd_held_requests{kind=\"native\"} 0\n"
	    "# HELP abqd_imap_connections Native mode's IMAP connections open now: the pool's "
	    "and the push watchers'.\n"
	    "# TYPE abqd_imap_connections gauge\n"
	    "abqd_imap_connections{use=\"commands\"} 0\n"
	    "abqd_imap_connections{use=\"push\"} 0\n"
	    "# HELP abqd_native_messages_parsed_total Native mode's fetched messages parsed (MIME) "
	    "on the parse thread, or on the event loop when the parse queue was full.\n"
	    "# TYPE abqd_native_messages_parsed_total counter\n"
	    "abqd_native_messages_parsed_total{where=\"thread\"} 0\n"
	    "abqd_native_messages_parsed_total{where=\"loop\"} 0\n"
	    "# HELP abqd_native_gal_lookups_total Native mode's lookups in the global address "
	    "list's directory ([upstream] gal): answered, or failed (unreachable, refused, too "
	    "slow).\n"
	    "# TYPE abqd_native_gal_lookups_total counter\n"
	    "abqd_native_gal_lookups_total{result=\"ok\"} 0\n"
	    "abqd_native_gal_lookups_total{result=\"failed\"} 0\n"
	    "# HELP abqd_auth_failures_total Requests refused for bad credentials.\n"
	    "# TYPE abqd_auth_failures_total counter\n"
	    "abqd_auth_failures_total 0\n"
	    "# HELP abqd_auth_rate_limited_total Requests refused by the authentication rate "
	    "limits.\n"
	    "# TYPE abqd_auth_rate_limited_total counter\n"
	    "abqd_auth_rate_limited_total 0\n"
	    "# HELP abqd_store_duration_seconds Time the store thread spent on one job.\n"
	    "# TYPE abqd_store_duration_seconds histogram\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.0005\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.001\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.0025\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.005\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.01\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.025\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.05\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.1\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.25\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"0.5\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"1\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"2.5\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"5\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"10\"} 0\n"
	    "abqd_store_duration_seconds_bucket{le=\"+Inf\"} 0\n"
	    "abqd_store_duration_seconds_sum 0\n"
	    "abqd_store_duration_seconds_count 0\n"
	    "# HELP abqd_connections Client connections open now, by listener.\n"
	    "# TYPE abqd_connections gauge\n"
	    "abqd_connections{listener=\"eas\"} 0\n"
	    "abqd_connections{listener=\"admin\"} 0\n"
	    "# HELP abqd_admin_login_failures_total Failed logins on the admin listener.\n"
	    "# TYPE abqd_admin_login_failures_total counter\n"
	    "abqd_admin_login_failures_total 0\n"
	    "# HELP abqd_build_info The running abqd's version; always 1.\n"
	    "# TYPE abqd_build_info gauge\n"
	    "abqd_build_info{version=\"" ABQ_VERSION "\"} 1\n"
	    "# HELP abqd_start_time_seconds When abqd started, in seconds since the epoch.\n"
	    "# TYPE abqd_start_time_seconds gauge\n"
	    "abqd_start_time_seconds 1764309600\n";
	char *s;

	abq_metrics_init(1764309600);
	s = render(NULL);
	assert_string_equal(s, want);
	free(s);
	/* The same without outbox gauges when the store could not be read. */
	s = render(&(struct abq_metrics_gauges){.have_outbox = false, .outbox_queued = 5});
	assert_string_equal(s, want);
	free(s);
}

/* One series per command and outcome that happened; unknown commands are "none". */
static void
test_requests(void **state)
{
	char *s;

	for (int i = 0; i < 3; i++)
		abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_PROXIED);
	abq_metrics_request(EAS_CMD_PING, ABQ_OUTCOME_MAILBOX);
	abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_UNAUTHORIZED);
	abq_metrics_request(EAS_CMD_NONE, ABQ_OUTCOME_BAD_REQUEST);
	abq_metrics_request(-1, ABQ_OUTCOME_BAD_REQUEST);
	abq_metrics_request(EAS_CMD_COUNT, ABQ_OUTCOME_BAD_REQUEST);
	abq_metrics_request(ABQ_METRICS_COMMANDS_MAX, ABQ_OUTCOME_BAD_REQUEST);
	abq_metrics_request(1000000, ABQ_OUTCOME_OTHER);
	abq_metrics_request(EAS_CMD_FIND, ABQ_OUTCOME_OTHER);
	s = render(NULL);
	assert_line(s, "abqd_requests_total{command=\"FolderSync\",outcome=\"proxied\"} 3");
	assert_line(s, "abqd_requests_total{command=\"FolderSync\",outcome=\"unauthorized\"} 1");
	assert_line(s, "abqd_requests_total{command=\"Ping\",outcome=\"mailbox\"} 1");
	assert_line(s, "abqd_requests_total{command=\"none\",outcome=\"bad_request\"} 4");
	assert_line(s, "abqd_requests_total{command=\"none\",outcome=\"other\"} 1");
	assert_line(s, "abqd_requests_total{command=\"Find\",outcome=\"other\"} 1");
	assert_int_equal(count_prefix(s, "abqd_requests_total{"), 6);
	free(s);
}

/* The outcome names are the label values docs/api.md lists. */
static void
test_outcome_names(void **state)
{
	static const char *const want[] = {
	    "proxied",      "mailbox",     "blocked",     "limit", "unauthorized",
	    "rate_limited", "bad_request", "unavailable", "other",
	};

	for (int i = 0; i < ABQ_OUTCOME_COUNT; i++)
		assert_string_equal(abq_outcome_name((enum abq_req_outcome)i), want[i]);
	assert_string_equal(abq_outcome_name(ABQ_OUTCOME_COUNT), "?");
	assert_string_equal(abq_outcome_name((enum abq_req_outcome) - 1), "?");
}

/* Label values with a quote, a backslash or a newline are escaped. */
static void
test_escaping(void **state)
{
	char *s;

	abq_metrics_commands(odd_label, 3);
	abq_metrics_request(1, ABQ_OUTCOME_PROXIED);
	abq_metrics_request(2, ABQ_OUTCOME_PROXIED); /* no name: the number */
	abq_metrics_request(3, ABQ_OUTCOME_PROXIED); /* past the count: none */
	s = render(NULL);
	assert_line(s, "abqd_requests_total{command=\"a\\\"b\\\\c\\nd\",outcome=\"proxied\"} 1");
	assert_line(s, "abqd_requests_total{command=\"2\",outcome=\"proxied\"} 1");
	assert_line(s, "abqd_requests_total{command=\"none\",outcome=\"proxied\"} 1");
	assert_int_equal(count_prefix(s, "abqd_requests_total{"), 3);
	free(s);
}

/* Buckets are cumulative, bounds inclusive; sum and count agree with them. */
static void
test_histogram(void **state)
{
	char *s;

	abq_metrics_upstream_latency(0.0005); /* exactly a bound: that bucket */
	abq_metrics_upstream_latency(0.003);
	abq_metrics_upstream_latency(0.003);
	abq_metrics_upstream_latency(1.0);
	abq_metrics_upstream_latency(20.0); /* past the last bound: +Inf only */
	abq_metrics_upstream_latency(-1.0); /* a clock step back counts as 0 */
	abq_metrics_upstream_latency(NAN);
	abq_metrics_store_latency(0.25);
	s = render(NULL);
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.0005\"} 3");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.001\"} 3");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.0025\"} 3");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.005\"} 5");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.5\"} 5");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"1\"} 6");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"10\"} 6");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 7");
	assert_line(s, "abqd_upstream_request_duration_seconds_sum 21.0065");
	assert_line(s, "abqd_upstream_request_duration_seconds_count 7");
	assert_line(s, "abqd_store_duration_seconds_bucket{le=\"0.1\"} 0");
	assert_line(s, "abqd_store_duration_seconds_bucket{le=\"0.25\"} 1");
	assert_line(s, "abqd_store_duration_seconds_bucket{le=\"+Inf\"} 1");
	assert_line(s, "abqd_store_duration_seconds_sum 0.25");
	assert_line(s, "abqd_store_duration_seconds_count 1");
	free(s);
}

/* Held long polls and open connections go back to 0 once they end. */
static void
test_gauges_back_to_zero(void **state)
{
	char *s;

	abq_metrics_held(ABQ_HELD_PROXIED, +1);
	abq_metrics_held(ABQ_HELD_MAILBOX, +1);
	abq_metrics_held(ABQ_HELD_MAILBOX, +1);
	abq_metrics_held(ABQ_HELD_NATIVE, +1);
	abq_metrics_imap_connections(true, +1);
	abq_metrics_imap_connections(false, +1);
	abq_metrics_imap_connections(false, +1);
	abq_metrics_connections(false, +1);
	abq_metrics_connections(false, +1);
	abq_metrics_connections(true, +1);
	abq_metrics_native_parsed(false, 100);
	abq_metrics_native_parsed(false, 3);
	abq_metrics_native_parsed(true, 7);
	abq_metrics_gal_lookup(false);
	abq_metrics_gal_lookup(false);
	abq_metrics_gal_lookup(true);
	s = render(NULL);
	assert_line(s, "abqd_native_gal_lookups_total{result=\"ok\"} 2");
	assert_line(s, "abqd_native_gal_lookups_total{result=\"failed\"} 1");
	assert_line(s, "abqd_native_messages_parsed_total{where=\"thread\"} 103");
	assert_line(s, "abqd_native_messages_parsed_total{where=\"loop\"} 7");
	assert_line(s, "abqd_held_requests{kind=\"proxied\"} 1");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 2");
	assert_line(s, "abqd_held_requests{kind=\"native\"} 1");
	assert_line(s, "abqd_imap_connections{use=\"commands\"} 2");
	assert_line(s, "abqd_imap_connections{use=\"push\"} 1");
	assert_line(s, "abqd_connections{listener=\"eas\"} 2");
	assert_line(s, "abqd_connections{listener=\"admin\"} 1");
	free(s);
	abq_metrics_held(ABQ_HELD_MAILBOX, -1);
	abq_metrics_held(ABQ_HELD_PROXIED, -1);
	abq_metrics_held(ABQ_HELD_MAILBOX, -1);
	abq_metrics_held(ABQ_HELD_NATIVE, -1);
	abq_metrics_imap_connections(true, -1);
	abq_metrics_imap_connections(false, -2);
	abq_metrics_connections(false, -1);
	abq_metrics_connections(true, -1);
	abq_metrics_connections(false, -1);
	s = render(NULL);
	assert_line(s, "abqd_held_requests{kind=\"proxied\"} 0");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 0");
	assert_line(s, "abqd_held_requests{kind=\"native\"} 0");
	assert_line(s, "abqd_imap_connections{use=\"commands\"} 0");
	assert_line(s, "abqd_imap_connections{use=\"push\"} 0");
	assert_line(s, "abqd_connections{listener=\"eas\"} 0");
	assert_line(s, "abqd_connections{listener=\"admin\"} 0");
	free(s);
}

/* Decisions by state and reason; the plain counters; the outbox gauges. */
static void
test_counters_and_outbox(void **state)
{
	struct abq_metrics_gauges g = {
	    .have_outbox = true, .outbox_queued = 4, .outbox_failed = 1, .outbox_oldest_age = 12.5};
	char *s;

	abq_metrics_decision(ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);
	abq_metrics_decision(ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);
	abq_metrics_decision(ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
	abq_metrics_decision((enum abq_state)42, (enum abq_reason) - 3);
	abq_metrics_upstream_error();
	abq_metrics_auth_failure();
	abq_metrics_auth_failure();
	abq_metrics_auth_rate_limited();
	abq_metrics_admin_login_failure();
	s = render(&g);
	assert_line(s, "abqd_decisions_total{state=\"Quarantined\",reason=\"Mode\"} 2");
	assert_line(s, "abqd_decisions_total{state=\"Allowed\",reason=\"Individual\"} 1");
	assert_line(s, "abqd_decisions_total{state=\"None\",reason=\"None\"} 1");
	assert_int_equal(count_prefix(s, "abqd_decisions_total{"), 3);
	assert_line(s, "abqd_upstream_errors_total 1");
	assert_line(s, "abqd_auth_failures_total 2");
	assert_line(s, "abqd_auth_rate_limited_total 1");
	assert_line(s, "abqd_admin_login_failures_total 1");
	assert_line(s, "# TYPE abqd_outbox_queued gauge");
	assert_line(s, "abqd_outbox_queued 4");
	assert_line(s, "# TYPE abqd_outbox_oldest_age_seconds gauge");
	assert_line(s, "abqd_outbox_oldest_age_seconds 12.5");
	assert_line(s, "# TYPE abqd_outbox_failed gauge");
	assert_line(s, "abqd_outbox_failed 1");
	free(s);

	/* reset brings every counter back to 0. */
	abq_metrics_reset();
	s = render(NULL);
	assert_int_equal(count_prefix(s, "abqd_decisions_total{"), 0);
	assert_line(s, "abqd_auth_failures_total 0");
	assert_line(s, "abqd_upstream_errors_total 0");
	free(s);
}

/* The upstream half of /healthz: healthy until told otherwise, then the last word. */
static void
test_health(void **state)
{
	assert_true(abq_health_upstream_ok());
	abq_health_upstream(false);
	assert_false(abq_health_upstream_ok());
	abq_health_upstream(true);
	assert_true(abq_health_upstream_ok());
}

/*
 * /healthz flips on a change only and keeps its word through repeats: the
 * upstream client reports after every answer, the store happens on a change.
 */
static void
test_health_repeats(void **state)
{
	for (int round = 0; round < 2; round++) {
		abq_health_upstream(true);
		abq_health_upstream(true);
		assert_true(abq_health_upstream_ok());
		abq_health_upstream(false);
		assert_false(abq_health_upstream_ok());
		abq_health_upstream(false);
		abq_health_upstream(false);
		assert_false(abq_health_upstream_ok());
		abq_health_upstream(true);
		assert_true(abq_health_upstream_ok());
	}
	/* reset brings back the state of a fresh daemon: healthy. */
	abq_health_upstream(false);
	abq_metrics_reset();
	assert_true(abq_health_upstream_ok());
}

/* What worker 0 of the test's prefork abqd records. */
static void
record_worker0(void)
{
	for (int i = 0; i < 3; i++)
		abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_PROXIED);
	for (int i = 0; i < 1000; i++)
		abq_metrics_request(EAS_CMD_SYNC, ABQ_OUTCOME_PROXIED);
	abq_metrics_upstream_latency(0.003);
	abq_metrics_held(ABQ_HELD_PROXIED, +1);
	abq_metrics_connections(false, +1);
}

/* Worker 1's: its upstream was down once, then answered again. */
static void
record_worker1(void)
{
	for (int i = 0; i < 5; i++)
		abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_PROXIED);
	for (int i = 0; i < 1000; i++)
		abq_metrics_request(EAS_CMD_SYNC, ABQ_OUTCOME_PROXIED);
	abq_metrics_request(EAS_CMD_PING, ABQ_OUTCOME_MAILBOX);
	abq_metrics_upstream_latency(0.2);
	abq_metrics_held(ABQ_HELD_PROXIED, +1);
	abq_metrics_held(ABQ_HELD_MAILBOX, +1);
	abq_metrics_held(ABQ_HELD_MAILBOX, -1);
	abq_metrics_connections(false, +1);
	abq_metrics_upstream_error();
	abq_health_upstream(false);
}

/* Worker 1 restarted: one more request, and one long poll it holds. */
static void
record_worker1_again(void)
{
	abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_PROXIED);
	abq_metrics_held(ABQ_HELD_MAILBOX, +1);
}

/*
 * Fork worker i, which records and ends the way a worker process does (no
 * return into the test runner); the parent gets its pid.
 */
static pid_t
spawn_worker(int i, void (*record)(void))
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		abq_metrics_worker(i);
		record();
		_exit(0);
	}
	return pid;
}

static void
reap(pid_t pid)
{
	int status = 0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A prefork abqd's metrics: the main process shares them for 2 workers, each
 * worker records into its own table, and a scrape in any process sees the
 * sum, after the workers have ended too. A restarted worker's counters go on
 * from its predecessor's while its gauges start again from zero, which only
 * holds if each worker has a table of its own. Runs last: the series stay
 * shared for the rest of the process.
 */
static void
test_workers_sum(void **state)
{
	pid_t w0, w1;
	char *s;

	/* Counted before the share (the main process's start): kept. */
	abq_metrics_init(1764309600);
	abq_metrics_request(EAS_CMD_FOLDERSYNC, ABQ_OUTCOME_PROXIED);
	assert_int_equal(abq_metrics_share(-1), -1);
	assert_int_equal(abq_metrics_share(2), 0);
	/* Once shared, a second call keeps the mapping; it cannot grow. */
	assert_int_equal(abq_metrics_share(2), 0);
	assert_int_equal(abq_metrics_share(3), -1);

	w0 = spawn_worker(0, record_worker0);
	w1 = spawn_worker(1, record_worker1);
	reap(w0);
	reap(w1);
	s = render(NULL);
	assert_line(s, "abqd_requests_total{command=\"FolderSync\",outcome=\"proxied\"} 9");
	assert_line(s, "abqd_requests_total{command=\"Sync\",outcome=\"proxied\"} 2000");
	assert_line(s, "abqd_requests_total{command=\"Ping\",outcome=\"mailbox\"} 1");
	assert_int_equal(count_prefix(s, "abqd_requests_total{"), 3);
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.0025\"} 0");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.005\"} 1");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.1\"} 1");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"0.25\"} 2");
	assert_line(s, "abqd_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 2");
	assert_line(s, "abqd_upstream_request_duration_seconds_sum 0.203");
	assert_line(s, "abqd_upstream_request_duration_seconds_count 2");
	assert_line(s, "abqd_upstream_errors_total 1");
	assert_line(s, "abqd_held_requests{kind=\"proxied\"} 2");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 0");
	assert_line(s, "abqd_connections{listener=\"eas\"} 2");
	assert_line(s, "abqd_start_time_seconds 1764309600");
	free(s);
	/* The upstream's health is the daemon's: worker 1's word reaches every process. */
	assert_false(abq_health_upstream_ok());
	abq_health_upstream(true);
	assert_true(abq_health_upstream_ok());

	/*
	 * Worker 1 restarted: its predecessor's counts stay and the new ones add
	 * to them; the long poll the dead worker held is gone, worker 0's is not.
	 */
	w1 = spawn_worker(1, record_worker1_again);
	reap(w1);
	s = render(NULL);
	assert_line(s, "abqd_requests_total{command=\"FolderSync\",outcome=\"proxied\"} 10");
	assert_line(s, "abqd_requests_total{command=\"Sync\",outcome=\"proxied\"} 2000");
	assert_line(s, "abqd_upstream_request_duration_seconds_count 2");
	assert_line(s, "abqd_held_requests{kind=\"proxied\"} 1");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 1");
	assert_line(s, "abqd_connections{listener=\"eas\"} 1");
	free(s);

	/* A worker index past the share records into the main process's table. */
	w0 = spawn_worker(2, record_worker1_again);
	reap(w0);
	s = render(NULL);
	assert_line(s, "abqd_requests_total{command=\"FolderSync\",outcome=\"proxied\"} 11");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 2");
	free(s);

	/* reset zeroes every process's table. */
	abq_metrics_reset();
	s = render(NULL);
	assert_int_equal(count_prefix(s, "abqd_requests_total{"), 0);
	assert_line(s, "abqd_upstream_request_duration_seconds_count 0");
	assert_line(s, "abqd_held_requests{kind=\"proxied\"} 0");
	assert_line(s, "abqd_held_requests{kind=\"mailbox\"} 0");
	assert_line(s, "abqd_connections{listener=\"eas\"} 0");
	assert_line(s, "abqd_upstream_errors_total 0");
	free(s);
}

/* A NULL length pointer is allowed. */
static void
test_render_no_len(void **state)
{
	char *s = abq_metrics_render(NULL, NULL);

	assert_non_null(s);
	assert_non_null(strstr(s, "# TYPE abqd_requests_total counter\n"));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_empty, setup),
	    cmocka_unit_test_setup(test_requests, setup),
	    cmocka_unit_test_setup(test_outcome_names, setup),
	    cmocka_unit_test_setup(test_escaping, setup),
	    cmocka_unit_test_setup(test_histogram, setup),
	    cmocka_unit_test_setup(test_gauges_back_to_zero, setup),
	    cmocka_unit_test_setup(test_counters_and_outbox, setup),
	    cmocka_unit_test_setup(test_health, setup),
	    cmocka_unit_test_setup(test_render_no_len, setup),
	    cmocka_unit_test_setup(test_health_repeats, setup),
	    cmocka_unit_test_setup(test_workers_sum, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
