/*
 * test_nodes.c: several abqd nodes on one store.
 *
 * Each node is a store handle of its own (a connection of its own on
 * PostgreSQL), used from a thread of its own, as two abqd processes would.
 * The backend comes from ABQ_TEST_STORE_URL: "sqlite" (a fresh file per
 * test) or a "postgresql://" URL (tests/store/pg_run.sh: a fresh schema per
 * test in a real server). What PostgreSQL alone can do (change notices,
 * locks between nodes, reconnecting) is checked against the real server;
 * with SQLite the same calls must say "not supported" or "always held".
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "core/registry.h"
#include "store/store.h"

#define ACCOUNT "alice@example.com"

struct fx {
	char dir[256];
	char url[1024];
	bool sqlite;
	char schema[64];
	const char *base_url;
};

static const char *err;

#define OK(call)                                                                                   \
	do {                                                                                       \
		err = NULL;                                                                        \
		int r_ = (call);                                                                   \
		if (r_ != 0)                                                                       \
			fail_msg("%s returned %d: %s", #call, r_, err ? err : "(no message)");     \
	} while (0)

/* Run SQL on the test server with a connection of its own. */
static int __attribute__((format(printf, 2, 3))) pg_sql(const char *url, const char *fmt, ...)
{
	PGconn *c = PQconnectdb(url);
	char sql[1024];
	va_list ap;
	int ret = 0;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "%s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		ret = -1;
	}
	PQclear(r);
	PQfinish(c);
	return ret;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *url = getenv("ABQ_TEST_STORE_URL");
	static int serial;

	if (url == NULL || strcmp(url, "sqlite") == 0) {
		f->sqlite = true;
		snprintf(f->dir, sizeof(f->dir), "/tmp/abq-nodes-XXXXXX");
		if (mkdtemp(f->dir) == NULL)
			return -1;
		snprintf(f->url, sizeof(f->url), "sqlite:%s/abq.db", f->dir);
	} else {
		f->base_url = url;
		snprintf(f->schema, sizeof(f->schema), "abqnodes_%d_%d", (int)getpid(), ++serial);
		if (pg_sql(url, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema,
		           f->schema) < 0)
			return -1;
		snprintf(f->url, sizeof(f->url), "%s%coptions=-csearch_path%%3D%s", url,
		         strchr(url, '?') ? '&' : '?', f->schema);
	}
	struct abq_store *s = abq_store_open(f->url, NULL, ABQ_STORE_CREATE, &err);
	if (s == NULL) {
		fprintf(stderr, "open %s: %s\n", f->url, err);
		return -1;
	}
	abq_store_close(&s);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[300];

	if (f->sqlite) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", f->dir);
	} else {
		pg_sql(f->base_url, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
	}
	free(f);
	return 0;
}

static struct abq_store *
node(const struct fx *f)
{
	struct abq_store *s = abq_store_open(f->url, NULL, 0, &err);
	if (s == NULL)
		fail_msg("open: %s", err);
	return s;
}

/* ---- one new device, two nodes at the same moment ------------------------ */

#define NODES 2

struct race {
	const struct fx *f;
	pthread_barrier_t *barrier;
	int rounds;
	int failures;
	int not_quarantined;
	char msg[256];
};

static void *
race_node(void *arg)
{
	struct race *r = arg;
	struct abq_store *s = abq_store_open(r->f->url, NULL, 0, &err);
	struct abq_notice_conf nc = {.from = "mobile-admin@example.com"};

	if (s == NULL) {
		snprintf(r->msg, sizeof(r->msg), "open: %s", err);
		r->failures = r->rounds;
	}
	for (int i = 0; i < r->rounds; i++) {
		char id[32];
		snprintf(id, sizeof(id), "RACE%04d", i);
		struct abq_device seen = {.account = ACCOUNT,
		                          .device_id = id,
		                          .device_type = "iPhone",
		                          .user_agent = "Apple-iPhone/1"};
		struct abq_device rec = {0};
		struct abq_outcome o = {0};
		char *msg = NULL;
		pthread_barrier_wait(r->barrier);
		if (s == NULL)
			continue;
		struct abq_ctx c = {
		    .store = s, .who = ABQ_WHO_DAEMON, .now = 1700000000 + i, .notices = &nc};
		int rv = abq_registry_observe(&c, &seen, &rec, &o, &msg);
		if (rv != 0) {
			r->failures++;
			snprintf(r->msg, sizeof(r->msg), "%s: %s", id, msg ? msg : "?");
		} else if (rec.state != ABQ_STATE_QUARANTINED) {
			r->not_quarantined++;
		}
		free(msg);
		abq_outcome_clear(&o);
		abq_device_clear(&rec);
	}
	abq_store_close(&s);
	return NULL;
}

struct per_device {
	int rounds;
	int *count;
};

static int
count_history(void *arg, const struct abq_history *h)
{
	struct per_device *p = arg;
	int i;
	if (h->device_id != NULL && sscanf(h->device_id, "RACE%d", &i) == 1 && i >= 0 &&
	    i < p->rounds)
		p->count[i]++;
	return 0;
}

static int
count_notice(void *arg, const struct abq_notice *n)
{
	struct per_device *p = arg;
	int i;
	if (n->device_id != NULL && sscanf(n->device_id, "RACE%d", &i) == 1 && i >= 0 &&
	    i < p->rounds)
		p->count[i]++;
	return 0;
}

/*
 * The same new device reaches two nodes at the same moment, many times over:
 * one record, one history row and one notice each time. (abq_registry_observe
 * reads and writes under the writers' lock that abq_store_begin takes, so the
 * second node finds the first node's record instead of deciding again.)
 */
static void
test_same_new_device(void **state)
{
	struct fx *f = *state;
	struct abq_store *s = node(f);
	struct abq_ctx c = {.store = s, .who = "admin", .now = 1700000000};
	struct abq_outcome o = {0};
	char *msg = NULL;
	int rounds = f->sqlite ? 60 : 150;

	if (abq_registry_attr_set(&c, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive", &o, &msg) !=
	    0)
		fail_msg("abqMode: %s", msg);
	abq_outcome_clear(&o);

	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, NODES);
	pthread_t t[NODES];
	struct race r[NODES];
	for (int n = 0; n < NODES; n++) {
		r[n] = (struct race){.f = f, .barrier = &barrier, .rounds = rounds};
		pthread_create(&t[n], NULL, race_node, &r[n]);
	}
	for (int n = 0; n < NODES; n++) {
		pthread_join(t[n], NULL);
		if (r[n].failures != 0)
			fail_msg("node %d: %d observations failed (%s)", n, r[n].failures,
			         r[n].msg);
		assert_int_equal(r[n].not_quarantined, 0);
	}
	pthread_barrier_destroy(&barrier);

	size_t devices = 0;
	OK(abq_store_device_count(s, ACCOUNT, 0, &devices, &err));
	assert_int_equal(devices, rounds);

	int *hist = calloc((size_t)rounds, sizeof(int));
	int *notices = calloc((size_t)rounds, sizeof(int));
	struct per_device ph = {rounds, hist}, pn = {rounds, notices};
	struct abq_history_filter hf = {0};
	OK(abq_store_history_iter(s, &hf, count_history, &ph, &err));
	OK(abq_store_notice_iter(s, NULL, count_notice, &pn, &err));
	for (int i = 0; i < rounds; i++) {
		if (hist[i] != 1 || notices[i] != 1)
			fail_msg("RACE%04d: %d history rows and %d notices (want 1 and 1)", i,
			         hist[i], notices[i]);
	}
	free(hist);
	free(notices);
	abq_store_close(&s);
}

/* ---- one sender at a time ---------------------------------------------------- */

static void
test_sender_lock(void **state)
{
	struct fx *f = *state;
	struct abq_store *a = node(f), *b = node(f);

	assert_int_equal(abq_store_try_lock(a, ABQ_LOCK_SENDER, &err), 1);
	assert_int_equal(abq_store_try_lock(a, ABQ_LOCK_SENDER, &err), 1); /* still held */
	if (f->sqlite) {
		/* One node: the lock is always held. */
		assert_int_equal(abq_store_try_lock(b, ABQ_LOCK_SENDER, &err), 1);
	} else {
		assert_int_equal(abq_store_try_lock(b, ABQ_LOCK_SENDER, &err), 0);
		assert_int_equal(abq_store_try_lock(b, ABQ_LOCK_SENDER, &err), 0);
		/* Node a dies: its connection ends, b takes the work over. */
		abq_store_close(&a);
		int got = 0;
		for (int i = 0; i < 50 && got != 1; i++) {
			got = abq_store_try_lock(b, ABQ_LOCK_SENDER, &err);
			if (got != 1)
				usleep(20000);
		}
		assert_int_equal(got, 1);
		/* and keeps it against a node that comes back */
		a = node(f);
		assert_int_equal(abq_store_try_lock(a, ABQ_LOCK_SENDER, &err), 0);
	}
	abq_store_close(&a);
	abq_store_close(&b);
}

/* ---- changes pushed ---------------------------------------------------------- */

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to ms for the listener's notice: its read's result and seq. */
static int
wait_notice(struct abq_store_listener *l, int ms, int64_t *seq)
{
	int64_t end = mono_ms() + ms;
	for (;;) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = abq_store_listener_fd(l), .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			return 0;
		int rv = abq_store_listener_read(l, seq, &err);
		if (rv != 0)
			return rv;
	}
}

static void
test_change_notices(void **state)
{
	struct fx *f = *state;
	struct abq_store *a = node(f), *b = node(f);
	struct abq_store_listener *l = abq_store_listener_new(b, &err);

	if (f->sqlite) {
		/* No push: the daemon reads the change log every second instead. */
		assert_null(l);
		assert_null(err);
		abq_store_close(&a);
		abq_store_close(&b);
		return;
	}
	assert_non_null(l);
	assert_int_equal(abq_store_listener_fd(l), -1);
	OK(abq_store_listener_connect(l, &err));
	assert_true(abq_store_listener_fd(l) >= 0);

	/* A committed change: one notice, carrying the last seq written. */
	int64_t seq = 0, last = 0;
	int64_t t0 = mono_ms();
	OK(abq_store_begin(a, &err));
	OK(abq_store_change_add(a, ABQ_CHANGE_DEVICE, ACCOUNT "\nDEV1", 1, &err));
	OK(abq_store_change_add(a, ABQ_CHANGE_DEVICE, ACCOUNT "\nDEV2", 1, &err));
	OK(abq_store_commit(a, &err));
	assert_int_equal(wait_notice(l, 2000, &seq), 1);
	assert_true(mono_ms() - t0 < 1000);
	OK(abq_store_change_last(b, &last, &err));
	assert_int_equal(seq, last);

	/* A change outside a transaction notifies too. */
	OK(abq_store_change_add(a, ABQ_CHANGE_RULE, "1", 1, &err));
	assert_int_equal(wait_notice(l, 2000, &seq), 1);
	assert_int_equal(seq, last + 1);

	/* A rolled back change, and a transaction without changes: no notice. */
	OK(abq_store_begin(a, &err));
	OK(abq_store_change_add(a, ABQ_CHANGE_DEVICE, ACCOUNT "\nDEV3", 1, &err));
	abq_store_rollback(a);
	OK(abq_store_begin(a, &err));
	OK(abq_store_commit(a, &err));
	assert_int_equal(wait_notice(l, 300, &seq), 0);

	/* The listener's connection is cut: the read says so, and it reconnects. */
	assert_int_equal(pg_sql(f->base_url, "SELECT pg_terminate_backend(pid) FROM "
	                                     "pg_stat_activity WHERE query LIKE 'LISTEN%%'"),
	                 0);
	assert_int_equal(wait_notice(l, 2000, &seq), -1);
	assert_int_equal(abq_store_listener_fd(l), -1);
	OK(abq_store_listener_connect(l, &err));
	OK(abq_store_change_add(a, ABQ_CHANGE_RULE, "2", 1, &err));
	assert_int_equal(wait_notice(l, 2000, &seq), 1);

	abq_store_listener_free(&l);
	assert_null(l);
	abq_store_close(&a);
	abq_store_close(&b);
}

/* ---- losing the connection ---------------------------------------------------- */

/* Cut every connection to the test database but the caller's. */
static void
cut_connections(const struct fx *f)
{
	assert_int_equal(pg_sql(f->base_url, "SELECT pg_terminate_backend(pid) FROM "
	                                     "pg_stat_activity WHERE datname = current_database() "
	                                     "AND pid <> pg_backend_pid()"),
	                 0);
}

static int
count_dev(void *arg, const struct abq_device *d)
{
	(void)d;
	++*(int *)arg;
	return 0;
}

static void
test_reconnect(void **state)
{
	struct fx *f = *state;
	struct abq_store *a = node(f);
	if (f->sqlite) {
		/* A file has no connection to lose. */
		assert_true(abq_store_connected(a));
		abq_store_close(&a);
		return;
	}
	struct abq_device d = {.account = ACCOUNT, .device_id = "KEEP", .state = ABQ_STATE_ALLOWED};
	struct abq_device out = {0};

	OK(abq_store_device_put(a, &d, &err));
	assert_true(abq_store_connected(a));

	/* Lost between calls: the next call fails, the handle comes back by itself. */
	cut_connections(f);
	int64_t t0 = mono_ms();
	int rv = -1;
	while (rv != 1 && mono_ms() - t0 < 5000) {
		rv = abq_store_device_get(a, ACCOUNT, "KEEP", &out, &err);
		abq_device_clear(&out);
		if (rv != 1)
			usleep(50000);
	}
	assert_int_equal(rv, 1);
	assert_true(abq_store_connected(a));

	/* Lost inside a transaction: nothing of it is written, nothing goes on outside it. */
	OK(abq_store_begin(a, &err));
	d.device_id = "LOST";
	OK(abq_store_device_put(a, &d, &err));
	cut_connections(f);
	struct abq_device d2 = {
	    .account = ACCOUNT, .device_id = "LOST2", .state = ABQ_STATE_ALLOWED};
	rv = abq_store_device_put(a, &d2, &err);
	if (rv == 0)
		rv = abq_store_commit(a, &err);
	assert_int_equal(rv, -1);
	abq_store_rollback(a);
	assert_false(abq_store_connected(a));
	int n = 0;
	t0 = mono_ms();
	rv = -1;
	while (rv != 0 && mono_ms() - t0 < 5000) {
		n = 0;
		struct abq_device_filter all = {0};
		rv = abq_store_device_iter(a, &all, count_dev, &n, &err);
		if (rv != 0)
			usleep(50000);
	}
	assert_int_equal(rv, 0);
	assert_int_equal(n, 1); /* KEEP only */
	abq_store_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_same_new_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sender_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_notices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
