/*
 * test_store_contract.c: the store contract, run against every backend.
 *
 * The backend comes from ABQ_TEST_STORE_URL: "sqlite" gives each test a fresh
 * database file in its own temporary folder (removed afterwards); a
 * "postgresql://" URL (tests/store/pg_run.sh) gives each test a fresh schema in
 * that database (created before and dropped after the test, the store reaching
 * it through search_path). Tests about the SQLite file itself (foreign
 * databases, schema versions, the WAL files) are registered for SQLite only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store.h"

/* One test's store. */
struct fx {
	char dir[PATH_MAX]; /* the temporary folder (sqlite) */
	char path[PATH_MAX + 16];
	char url[PATH_MAX + 32];
	bool sqlite;
	char schema[64]; /* PostgreSQL: this test's schema */
	char base_url[PATH_MAX];
	struct abq_store *s;
};

/* The message of the last store call, printed when a check fails. */
static const char *err;

/* Assert that a store call returned 0, showing its message otherwise. */
#define OK(call)                                                                                   \
	do {                                                                                       \
		err = NULL;                                                                        \
		int r_ = (call);                                                                   \
		if (r_ != 0)                                                                       \
			fail_msg("%s returned %d: %s", #call, r_, err ? err : "(no message)");     \
	} while (0)

/* Assert that a store call failed with a message containing needle. */
#define FAILS(call, needle)                                                                        \
	do {                                                                                       \
		err = NULL;                                                                        \
		int r_ = (call);                                                                   \
		assert_int_equal(r_, -1);                                                          \
		assert_non_null(err);                                                              \
		if (strstr(err, (needle)) == NULL)                                                 \
			fail_msg("%s: message '%s' lacks '%s'", #call, err, (needle));             \
	} while (0)

/* Remove the fixture's folder and everything in it. */
static void
remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX + 256];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) != 0 && errno == EISDIR)
			remove_dir(p);
	}
	closedir(d);
	rmdir(dir);
}

/* Open (or reopen) the fixture's store with flags. */
static void
fx_open(struct fx *f, int flags)
{
	err = NULL;
	f->s = abq_store_open(f->url, NULL, flags, &err);
	if (f->s == NULL)
		fail_msg("open %s: %s", f->url, err ? err : "(no message)");
}

/* Run SQL on a PostgreSQL URL with a fresh connection; -1 with a message on failure. */
static int __attribute__((format(printf, 2, 3))) pg_sql(const char *url, const char *fmt, ...)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;
	char sql[4096];
	va_list ap;
	int ret = 0;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "%s: %s", url, PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		ret = -1;
	}
	PQclear(r);
	PQfinish(c);
	return ret;
}

/* Per test: a fresh, initialised store. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *url = getenv("ABQ_TEST_STORE_URL");
	const char *tmp = getenv("TMPDIR");

	if (url == NULL || strcmp(url, "sqlite") == 0) {
		f->sqlite = true;
		snprintf(f->dir, sizeof(f->dir), "%s/abq-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(f->dir) == NULL) {
			free(f);
			return -1;
		}
		snprintf(f->path, sizeof(f->path), "%s/abq.db", f->dir);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	} else {
		static int serial;

		snprintf(f->base_url, sizeof(f->base_url), "%s", url);
		snprintf(f->schema, sizeof(f->schema), "abqtest_%d_%d", (int)getpid(), ++serial);
		if (pg_sql(url, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema,
		           f->schema) < 0) {
			free(f);
			return -1;
		}
		snprintf(f->url, sizeof(f->url), "%s%coptions=-csearch_path%%3D%s", url,
		         strchr(url, '?') ? '&' : '?', f->schema);
	}
	fx_open(f, ABQ_STORE_CREATE);
	*state = f;
	return 0;
}

/* Per test: close the store and remove its folder. */
static int
teardown(void **state)
{
	struct fx *f = *state;

	unsetenv("ABQ_STORE_FAULT");
	abq_store_close(&f->s);
	if (f->sqlite)
		remove_dir(f->dir);
	else
		pg_sql(f->base_url, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
	free(f);
	return 0;
}

#define FX(state) ((struct fx *)*(state))

/* ---- a list of strings, to compare iteration results in one assertion ---- */

struct list {
	char buf[65536];
	size_t len;
	size_t n;
};

/* Append a formatted item, comma-separated. */
static void __attribute__((format(printf, 2, 3))) list_add(struct list *l, const char *fmt, ...)
{
	va_list ap;

	if (l->n > 0 && l->len + 1 < sizeof(l->buf))
		l->buf[l->len++] = ',';
	va_start(ap, fmt);
	l->len += (size_t)vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	assert_true(l->len < sizeof(l->buf));
	l->n++;
}

/* "(null)"-safe string for list items. */
static const char *
ns(const char *s)
{
	return s ? s : "-";
}

/* List callbacks: one item per record, in iteration order. */
static int
cb_device_list(void *arg, const struct abq_device *d)
{
	list_add(arg, "%s/%s", d->account, d->device_id);
	return 0;
}

static int
cb_entry_list(void *arg, const struct abq_entry *e)
{
	list_add(arg, "%s/%s=%s", e->device_id, ns(e->account), abq_state_name(e->state));
	return 0;
}

static int
cb_rule_list(void *arg, const struct abq_rule *r)
{
	list_add(arg, "%s:%lld", ns(r->domain), (long long)r->order);
	return 0;
}

static int
cb_attr_list(void *arg, const struct abq_attr *a)
{
	list_add(arg, "%s/%s/%s=%s", abq_scope_name(a->scope), ns(a->target), a->name, a->value);
	return 0;
}

static int
cb_history_list(void *arg, const struct abq_history *h)
{
	list_add(arg, "%s", ns(h->subject));
	return 0;
}

static int
cb_change_list(void *arg, const struct abq_change *c)
{
	list_add(arg, "%lld:%d:%s", (long long)c->seq, (int)c->kind, c->key);
	return 0;
}

static int
cb_notice_list(void *arg, const struct abq_notice *n)
{
	list_add(arg, "%s:%s", n->recipient, n->state);
	return 0;
}

static int
cb_notice_account(void *arg, const struct abq_notice *n)
{
	list_add(arg, "%s", ns(n->account));
	return 0;
}

/* Count records of any kind. */
static int
cb_count(void *arg, const void *rec)
{
	(*(size_t *)arg)++;
	return 0;
}
#define COUNTER(type) ((int (*)(void *, const type *))cb_count)

/* The devices the filter selects, as "account/device_id,..." */
static const char *
devices_of(struct abq_store *s, const struct abq_device_filter *f)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_device_iter(s, f, cb_device_list, &l, &err));
	return l.buf;
}

/* A device with every field set, so round trips check every column. */
static void
full_device(struct abq_device *d, const char *account, const char *device_id)
{
	memset(d, 0, sizeof(*d));
	d->account = (char *)account;
	d->device_id = (char *)device_id;
	d->device_type = "iPhone";
	d->model = "iPhone15,2";
	d->imei = "356938035643809";
	d->friendly_name = "Téléphone de Zoë ☎ 日本";
	d->os = "iOS 17.1.2 21B101";
	d->os_language = "français";
	d->phone_number = "+33 6 12 34 56 78";
	d->mobile_operator = "Orange F";
	d->user_agent = "Apple-iPhone15C2/2101.101";
	d->eas_version = "16.1";
	d->last_address = "2001:db8::1";
	d->last_command = "Sync";
	d->first_seen = 1700000000;
	d->last_seen = 1700000999;
	d->state = ABQ_STATE_QUARANTINED;
	d->reason = ABQ_REASON_RULE;
	d->rule_id = 42;
	d->state_by = "admin@example.com";
	d->state_at = 1700000500;
}

/* Put a minimal device. */
static void
put_device(struct abq_store *s, const char *account, const char *id, enum abq_state st,
           enum abq_reason reason, int64_t last_seen)
{
	struct abq_device d = {.account = (char *)account,
	                       .device_id = (char *)id,
	                       .state = st,
	                       .reason = reason,
	                       .first_seen = last_seen,
	                       .last_seen = last_seen};

	OK(abq_store_device_put(s, &d, &err));
}

/* Compare two devices field by field (NULL equal only to NULL). */
static void
assert_device_equal(const struct abq_device *a, const struct abq_device *b)
{
#define SEQ(field)                                                                                 \
	do {                                                                                       \
		if (a->field == NULL || b->field == NULL)                                          \
			assert_ptr_equal(a->field, b->field);                                      \
		else                                                                               \
			assert_string_equal(a->field, b->field);                                   \
	} while (0)
	SEQ(account);
	SEQ(device_id);
	SEQ(device_type);
	SEQ(model);
	SEQ(imei);
	SEQ(friendly_name);
	SEQ(os);
	SEQ(os_language);
	SEQ(phone_number);
	SEQ(mobile_operator);
	SEQ(user_agent);
	SEQ(eas_version);
	SEQ(last_address);
	SEQ(last_command);
	SEQ(state_by);
#undef SEQ
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->reason, b->reason);
	assert_int_equal(a->rule_id, b->rule_id);
	assert_int_equal(a->state_at, b->state_at);
}

/* ---- devices ------------------------------------------------------------- */

/* Every field survives put/get, NULLs stay NULL and "" stays "". */
static void
test_device_roundtrip(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device d, got, copy = {0};
	int st, rs;

	full_device(&d, "zoë@example.com", "ApplDN8KX9Q1");
	OK(abq_store_device_put(s, &d, &err));
	assert_int_equal(abq_store_device_get(s, "zoë@example.com", "ApplDN8KX9Q1", &got, &err), 1);
	assert_device_equal(&got, &d);
	abq_device_copy(&copy, &got);
	abq_device_clear(&got);
	assert_null(got.account);
	assert_device_equal(&copy, &d);
	abq_device_clear(&copy);

	/* Nothing reported yet: NULL, not "". An empty string stays empty. */
	memset(&d, 0, sizeof(d));
	d.account = "bob@example.com";
	d.device_id = "androidc1234";
	d.device_type = "";
	d.state = ABQ_STATE_DISCOVERY;
	d.reason = ABQ_REASON_DISCOVERY;
	d.rule_id = 7;
	OK(abq_store_device_put(s, &d, &err));
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "androidc1234", &got, &err), 1);
	assert_device_equal(&got, &d);
	assert_null(got.model);
	assert_null(got.os);
	assert_non_null(got.device_type);
	assert_string_equal(got.device_type, "");
	abq_device_clear(&got);

	/* Every state and reason, NONE included. */
	for (st = ABQ_STATE_NONE; st <= ABQ_STATE_DISCOVERY; st++)
		for (rs = ABQ_REASON_NONE; rs <= ABQ_REASON_DISCOVERY; rs++) {
			d.state = st;
			d.reason = rs;
			OK(abq_store_device_put(s, &d, &err));
			assert_int_equal(
			    abq_store_device_get(s, "bob@example.com", "ANDROIDC1234", &got, &err),
			    1);
			assert_int_equal(got.state, st);
			assert_int_equal(got.reason, rs);
			abq_device_clear(&got);
		}

	/* Not found is 0, and the output record is clear. */
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "nope", &got, &err), 0);
	assert_null(got.account);
}

/* DeviceIds compare case-insensitively; the account does not match across. */
static void
test_device_case_insensitive(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device got;
	size_t n;

	put_device(s, "alice@example.com", "AbC123", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 10);
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "abc123", &got, &err), 1);
	assert_string_equal(got.device_id, "AbC123");
	abq_device_clear(&got);
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "ABC123", &got, &err), 1);
	abq_device_clear(&got);
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "ABC123", &got, &err), 0);

	/* A put under another spelling replaces the record instead of adding one. */
	put_device(s, "alice@example.com", "ABC123", ABQ_STATE_BLOCKED, ABQ_REASON_INDIVIDUAL, 20);
	OK(abq_store_device_count(s, "alice@example.com", 0, &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "abc123", &got, &err), 1);
	assert_int_equal(got.state, ABQ_STATE_BLOCKED);
	abq_device_clear(&got);
}

/* delete by DeviceId removes every account's record; with an account, one. */
static void
test_device_delete(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device got;
	size_t n = 99;

	put_device(s, "alice@example.com", "X1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "bob@example.com", "x1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "carol@example.com", "X1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "alice@example.com", "Y2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);

	OK(abq_store_device_delete(s, "X1", "alice@example.com", &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "X1", &got, &err), 0);
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "X1", &got, &err), 1);
	abq_device_clear(&got);

	OK(abq_store_device_delete(s, "X1", NULL, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(devices_of(s, NULL), "alice@example.com/Y2");

	OK(abq_store_device_delete(s, "nothing", NULL, &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_device_delete(s, "y2", "alice@example.com", NULL, &err));
	assert_string_equal(devices_of(s, NULL), "");
}

/* Every filter of struct abq_device_filter, alone and combined. */
static void
test_device_iter_filters(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device_filter f;

	put_device(s, "alice@example.com", "A1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL, 100);
	put_device(s, "alice@example.com", "A2", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 200);
	put_device(s, "bob@other.org", "B1", ABQ_STATE_BLOCKED, ABQ_REASON_RULE, 300);
	put_device(s, "carol", "C1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 400);
	put_device(s, "dave@sub.example.com", "D1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 500);
	put_device(s, "eve@ex_mple.com", "E1", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 600);

	assert_string_equal(devices_of(s, NULL),
	                    "alice@example.com/A1,alice@example.com/A2,bob@other.org/B1,carol/C1,"
	                    "dave@sub.example.com/D1,eve@ex_mple.com/E1");

	memset(&f, 0, sizeof(f));
	f.account = "alice@example.com";
	assert_string_equal(devices_of(s, &f), "alice@example.com/A1,alice@example.com/A2");

	memset(&f, 0, sizeof(f));
	f.device_id = "a1";
	assert_string_equal(devices_of(s, &f), "alice@example.com/A1");

	memset(&f, 0, sizeof(f));
	f.domain = "example.com";
	assert_string_equal(devices_of(s, &f), "alice@example.com/A1,alice@example.com/A2");
	f.default_domain = "other.org";
	assert_string_equal(devices_of(s, &f), "alice@example.com/A1,alice@example.com/A2");
	f.default_domain = "Example.com";
	assert_string_equal(devices_of(s, &f),
	                    "alice@example.com/A1,alice@example.com/A2,carol/C1");
	f.domain = "EXAMPLE.COM";
	assert_string_equal(devices_of(s, &f),
	                    "alice@example.com/A1,alice@example.com/A2,carol/C1");
	f.domain = "ex_mple.com";
	f.default_domain = NULL;
	assert_string_equal(devices_of(s, &f), "eve@ex_mple.com/E1");
	f.domain = "ex%mple.com";
	assert_string_equal(devices_of(s, &f), "");
	f.domain = "sub.example.com";
	assert_string_equal(devices_of(s, &f), "dave@sub.example.com/D1");

	memset(&f, 0, sizeof(f));
	f.state = ABQ_STATE_ALLOWED;
	assert_string_equal(devices_of(s, &f),
	                    "alice@example.com/A1,carol/C1,dave@sub.example.com/D1");

	memset(&f, 0, sizeof(f));
	f.seen_before = 300;
	assert_string_equal(devices_of(s, &f), "alice@example.com/A1,alice@example.com/A2");
	f.seen_since = 200;
	assert_string_equal(devices_of(s, &f), "alice@example.com/A2");
	f.seen_before = 0;
	f.seen_since = 500;
	assert_string_equal(devices_of(s, &f), "dave@sub.example.com/D1,eve@ex_mple.com/E1");

	memset(&f, 0, sizeof(f));
	f.not_individual = true;
	assert_string_equal(devices_of(s, &f), "alice@example.com/A2,bob@other.org/B1,carol/C1,"
	                                       "dave@sub.example.com/D1,eve@ex_mple.com/E1");
	f.account = "alice@example.com";
	f.state = ABQ_STATE_QUARANTINED;
	assert_string_equal(devices_of(s, &f), "alice@example.com/A2");
	f.state = ABQ_STATE_ALLOWED;
	assert_string_equal(devices_of(s, &f), "");
}

/* Stop at the second device with a recognisable value. */
static int
cb_stop_second(void *arg, const struct abq_device *d)
{
	return ++*(int *)arg == 2 ? 42 : 0;
}

/* A non-zero callback value stops the iteration and is returned as it is. */
static void
test_device_iter_stop(void **state)
{
	struct abq_store *s = FX(state)->s;
	int calls = 0;

	put_device(s, "a@x", "1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "a@x", "2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "a@x", "3", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	assert_int_equal(abq_store_device_iter(s, NULL, cb_stop_second, &calls, &err), 42);
	assert_int_equal(calls, 2);
}

#define MANY 700

struct rewrite {
	struct abq_store *s;
	int seen[MANY];
	int calls;
	int nested;
};

/*
 * A callback that writes: it rewrites the device it is given, inserts one
 * behind the iteration, runs a nested iteration, and every tenth time wraps
 * its write in a transaction of its own.
 */
static int
cb_rewrite(void *arg, const struct abq_device *d)
{
	struct rewrite *r = arg;
	struct abq_device c = {0};
	char acct[64];
	int i;

	if (strncmp(d->account, "aaa", 3) == 0)
		fail_msg("saw a device inserted behind the iteration: %s", d->account);
	assert_int_equal(sscanf(d->device_id, "DEV%d", &i), 1);
	assert_true(i >= 0 && i < MANY);
	r->seen[i]++;
	if (r->calls++ == 300) {
		size_t n = 0;

		OK(abq_store_device_iter(r->s, NULL, COUNTER(struct abq_device), &n, &err));
		r->nested = (int)n;
	}
	if (i % 10 == 0)
		OK(abq_store_begin(r->s, &err));
	abq_device_copy(&c, d);
	c.state = ABQ_STATE_ALLOWED;
	OK(abq_store_device_put(r->s, &c, &err));
	abq_device_clear(&c);
	snprintf(acct, sizeof(acct), "aaa%04d@example.com", i);
	put_device(r->s, acct, "NEW", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	if (i % 10 == 0)
		OK(abq_store_commit(r->s, &err));
	return 0;
}

/* Iteration over several batches stays exact while its callback writes. */
static void
test_device_iter_callback_writes(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct rewrite *r = calloc(1, sizeof(*r));
	struct abq_device_filter f = {.state = ABQ_STATE_QUARANTINED};
	char acct[64], id[32];
	size_t n = 0;
	int i;

	r->s = s;
	OK(abq_store_begin(s, &err));
	for (i = 0; i < MANY; i++) {
		snprintf(acct, sizeof(acct), "u%04d@example.com", (i * 7) % MANY);
		snprintf(id, sizeof(id), "DEV%04d", i);
		put_device(s, acct, id, ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, i);
	}
	OK(abq_store_commit(s, &err));

	OK(abq_store_device_iter(s, NULL, cb_rewrite, r, &err));
	assert_int_equal(r->calls, MANY);
	for (i = 0; i < MANY; i++)
		assert_int_equal(r->seen[i], 1);
	assert_true(r->nested >= MANY);
	OK(abq_store_device_iter(s, &f, COUNTER(struct abq_device), &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_device_count(s, NULL, 0, &n, &err));
	assert_int_equal(n, 2 * MANY);
	free(r);
}

/* device_count: one account's devices, first seen before a time. */
static void
test_device_count(void **state)
{
	struct abq_store *s = FX(state)->s;
	size_t n;

	put_device(s, "alice@example.com", "A", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 10);
	put_device(s, "alice@example.com", "B", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 20);
	put_device(s, "alice@example.com", "C", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 30);
	put_device(s, "bob@example.com", "A", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 5);
	OK(abq_store_device_count(s, "alice@example.com", 0, &n, &err));
	assert_int_equal(n, 3);
	OK(abq_store_device_count(s, "alice@example.com", 25, &n, &err));
	assert_int_equal(n, 2);
	OK(abq_store_device_count(s, "alice@example.com", 10, &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_device_count(s, "nobody@example.com", 0, &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_device_count(s, NULL, 0, &n, &err));
	assert_int_equal(n, 4);
}

/* Count history rows. */
static int
cb_history_count(void *arg, const struct abq_history *h)
{
	(*(size_t *)arg)++;
	return 0;
}

/* device_touch updates last-seen facts in a batch, leaving no change or history. */
static void
test_device_touch(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device d, got;
	int64_t seq0, seq1;
	size_t n = 0;
	struct abq_seen v[3] = {
	    {"alice@example.com", "a1", 200, "192.0.2.7", NULL},
	    {"bob@example.com", "B1", 50, "198.51.100.1", "Ping"}, /* older: ignored */
	    {"nobody@example.com", "Z9", 300, "203.0.113.1", "Sync"},
	};

	full_device(&d, "alice@example.com", "A1");
	d.last_seen = 100;
	OK(abq_store_device_put(s, &d, &err));
	full_device(&d, "bob@example.com", "B1");
	d.last_seen = 100;
	OK(abq_store_device_put(s, &d, &err));
	OK(abq_store_change_add(s, ABQ_CHANGE_DEVICE, "alice@example.com\nA1", 1, &err));
	OK(abq_store_change_last(s, &seq0, &err));

	OK(abq_store_device_touch(s, v, 3, &err));
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "A1", &got, &err), 1);
	assert_int_equal(got.last_seen, 200);
	assert_string_equal(got.last_address, "192.0.2.7");
	assert_string_equal(got.last_command, "Sync"); /* NULL kept the old value */
	assert_string_equal(got.model, "iPhone15,2");  /* the rest untouched */
	abq_device_clear(&got);
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "B1", &got, &err), 1);
	assert_int_equal(got.last_seen, 100);
	assert_string_equal(got.last_address, "2001:db8::1");
	abq_device_clear(&got);
	assert_int_equal(abq_store_device_get(s, "nobody@example.com", "Z9", &got, &err), 0);

	OK(abq_store_change_last(s, &seq1, &err));
	assert_int_equal(seq1, seq0);
	OK(abq_store_history_iter(s, NULL, cb_history_count, &n, &err));
	assert_int_equal(n, 0);

	/* Inside a transaction, touches go with it. */
	v[0].last_seen = 900;
	OK(abq_store_begin(s, &err));
	OK(abq_store_device_touch(s, v, 1, &err));
	abq_store_rollback(s);
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "A1", &got, &err), 1);
	assert_int_equal(got.last_seen, 200);
	abq_device_clear(&got);
	OK(abq_store_device_touch(s, v, 0, &err));
}

/* ---- entries ------------------------------------------------------------- */

/* Write an entry by an administrator. */
static void
put_entry(struct abq_store *s, const char *id, const char *account, enum abq_state st)
{
	struct abq_entry e = {.device_id = (char *)id,
	                      .account = (char *)account,
	                      .state = st,
	                      .created_by = "admin",
	                      .created_at = 1234};

	OK(abq_store_entry_put(s, &e, &err));
}

/* The entries of a state (NONE: all), as "ID/account=State,...". */
static const char *
entries_of(struct abq_store *s, enum abq_state st)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_entry_iter(s, st, cb_entry_list, &l, &err));
	return l.buf;
}

/* The entries no device used, of a state (NONE: all), as entries_of gives them. */
static const char *
unseen_of(struct abq_store *s, enum abq_state st)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_entry_unseen_iter(s, st, cb_entry_list, &l, &err));
	return l.buf;
}

/*
 * Entries no device has used: an account's entry is used by that account's
 * device (DeviceIds without case), a DeviceId-alone entry by any account's;
 * an entry whose device was purged since it was written counts as used, one
 * written after the purge does not.
 */
static void
test_entries_unseen(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_history h = {.at = 2000,
	                        .who = "admin",
	                        .what = "purge",
	                        .subject = "OLD",
	                        .device_id = "OLD",
	                        .account = "carol@example.com"};

	put_entry(s, "A1", NULL, ABQ_STATE_ALLOWED);
	put_entry(s, "A2", "alice@example.com", ABQ_STATE_BLOCKED);
	put_entry(s, "A3", "alice@example.com", ABQ_STATE_ALLOWED);
	put_entry(s, "B1", NULL, ABQ_STATE_QUARANTINED);
	put_entry(s, "OLD", "carol@example.com", ABQ_STATE_ALLOWED); /* created_at 1234 */
	put_device(s, "bob@example.com", "a1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL, 0);
	put_device(s, "bob@example.com", "A2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 0);
	put_device(s, "alice@example.com", "a3", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL, 0);
	OK(abq_store_history_add(s, &h, &err));
	assert_string_equal(unseen_of(s, ABQ_STATE_NONE),
	                    "A2/alice@example.com=Blocked,B1/-=Quarantined");
	assert_string_equal(unseen_of(s, ABQ_STATE_BLOCKED), "A2/alice@example.com=Blocked");
	assert_string_equal(unseen_of(s, ABQ_STATE_ALLOWED), "");
	/* Written again after the purge: not seen since. */
	struct abq_entry e = {.device_id = "OLD",
	                      .account = "carol@example.com",
	                      .state = ABQ_STATE_ALLOWED,
	                      .created_by = "admin",
	                      .created_at = 3000};
	OK(abq_store_entry_put(s, &e, &err));
	assert_string_equal(unseen_of(s, ABQ_STATE_ALLOWED), "OLD/carol@example.com=Allowed");
}

/* DeviceId-alone entries and DeviceId/account entries are distinct keys. */
static void
test_entries(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_entry e, got;
	size_t n;

	put_entry(s, "X", NULL, ABQ_STATE_BLOCKED);
	put_entry(s, "X", "alice@example.com", ABQ_STATE_ALLOWED);
	put_entry(s, "Y", "bob@example.com", ABQ_STATE_QUARANTINED);
	put_entry(s, "a1", NULL, ABQ_STATE_ALLOWED);
	put_entry(s, "B2", "dave@example.com", ABQ_STATE_BLOCKED);

	assert_int_equal(abq_store_entry_get(s, "X", NULL, &got, &err), 1);
	assert_null(got.account);
	assert_int_equal(got.state, ABQ_STATE_BLOCKED);
	assert_string_equal(got.created_by, "admin");
	assert_int_equal(got.created_at, 1234);
	abq_entry_clear(&got);
	assert_int_equal(abq_store_entry_get(s, "x", NULL, &got, &err), 1);
	abq_entry_clear(&got);
	assert_int_equal(abq_store_entry_get(s, "x", "alice@example.com", &got, &err), 1);
	assert_string_equal(got.account, "alice@example.com");
	assert_int_equal(got.state, ABQ_STATE_ALLOWED);
	abq_entry_clear(&got);
	/* No fallback from DeviceId/account to DeviceId: that is the engine's job. */
	assert_int_equal(abq_store_entry_get(s, "X", "bob@example.com", &got, &err), 0);
	assert_int_equal(abq_store_entry_get(s, "Y", NULL, &got, &err), 0);

	/* Replacing under another spelling keeps one entry. */
	put_entry(s, "x", NULL, ABQ_STATE_QUARANTINED);
	assert_string_equal(entries_of(s, ABQ_STATE_NONE),
	                    "a1/-=Allowed,B2/dave@example.com=Blocked,x/-=Quarantined,"
	                    "X/alice@example.com=Allowed,Y/bob@example.com=Quarantined");
	assert_string_equal(entries_of(s, ABQ_STATE_ALLOWED),
	                    "a1/-=Allowed,X/alice@example.com=Allowed");

	/* NULL created_by and UTF-8 round trip. */
	memset(&e, 0, sizeof(e));
	e.device_id = "Ünïcödé";
	e.account = "zoë@example.com";
	e.state = ABQ_STATE_BLOCKED;
	OK(abq_store_entry_put(s, &e, &err));
	assert_int_equal(abq_store_entry_get(s, "Ünïcödé", "zoë@example.com", &got, &err), 1);
	assert_null(got.created_by);
	assert_string_equal(got.device_id, "Ünïcödé");
	abq_entry_clear(&got);

	/* The three delete variants. */
	put_entry(s, "X", "carol@example.com", ABQ_STATE_BLOCKED);
	OK(abq_store_entry_delete(s, "X", NULL, false, &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_entry_get(s, "X", NULL, &got, &err), 0);
	assert_int_equal(abq_store_entry_get(s, "X", "alice@example.com", &got, &err), 1);
	abq_entry_clear(&got);
	put_entry(s, "X", NULL, ABQ_STATE_BLOCKED);
	OK(abq_store_entry_delete(s, "x", "alice@example.com", false, &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_entry_get(s, "X", NULL, &got, &err), 1);
	abq_entry_clear(&got);
	OK(abq_store_entry_delete(s, "X", NULL, true, &n, &err));
	assert_int_equal(n, 2);
	OK(abq_store_entry_delete(s, "X", NULL, true, &n, &err));
	assert_int_equal(n, 0);
	assert_string_equal(entries_of(s, ABQ_STATE_BLOCKED),
	                    "B2/dave@example.com=Blocked,Ünïcödé/zoë@example.com=Blocked");
}

/* Delete the entry being visited. */
static int
cb_entry_delete(void *arg, const struct abq_entry *e)
{
	struct abq_store *s = arg;
	size_t n;

	OK(abq_store_entry_delete(s, e->device_id, e->account, false, &n, &err));
	assert_int_equal(n, 1);
	return 0;
}

/* An entry iteration whose callback deletes what it is given (several batches). */
static void
test_entry_iter_callback_deletes(void **state)
{
	struct abq_store *s = FX(state)->s;
	char id[32];
	size_t n = 0;
	int i;

	OK(abq_store_begin(s, &err));
	for (i = 0; i < 600; i++) {
		snprintf(id, sizeof(id), "E%04d", i);
		put_entry(s, id, i % 2 ? "alice@example.com" : NULL, ABQ_STATE_ALLOWED);
	}
	OK(abq_store_commit(s, &err));
	OK(abq_store_entry_iter(s, ABQ_STATE_NONE, cb_entry_delete, s, &err));
	OK(abq_store_entry_iter(s, ABQ_STATE_NONE, COUNTER(struct abq_entry), &n, &err));
	assert_int_equal(n, 0);
}

/* ---- rules --------------------------------------------------------------- */

/* Insert a DeviceId regex rule; returns its id. */
static int64_t
add_rule(struct abq_store *s, const char *domain, int64_t order, const char *pattern)
{
	struct abq_rule r = {.charac = ABQ_CHAR_DEVICEID,
	                     .match = ABQ_MATCH_REGEX,
	                     .pattern = (char *)pattern,
	                     .level = ABQ_STATE_ALLOWED,
	                     .order = order,
	                     .domain = (char *)domain,
	                     .created_by = "admin",
	                     .created_at = 77};

	OK(abq_store_rule_insert(s, &r, &err));
	assert_true(r.id > 0);
	return r.id;
}

/* The rules an iteration yields, as "domain:order,...". */
static const char *
rules_of(struct abq_store *s, const char *domain, bool all)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_rule_iter(s, domain, all, cb_rule_list, &l, &err));
	return l.buf;
}

/* List rule ids. */
static int
cb_rule_ids(void *arg, const struct abq_rule *r)
{
	list_add(arg, "%lld", (long long)r->id);
	return 0;
}

/* Rules: ids, round trips, update, delete and the evaluation order. */
static void
test_rules(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_rule r, got;
	struct list ids;
	int64_t r1, r2, r3, r4, r5;
	int c, m;

	r1 = add_rule(s, NULL, 10, "^Apple");
	r2 = add_rule(s, NULL, 5, "^android");
	r3 = add_rule(s, "example.com", 1, "ü.*");
	r4 = add_rule(s, "a.org", 7, "x");
	r5 = add_rule(s, "example.com", 1, "y");
	assert_true(r1 < r2 && r2 < r3 && r3 < r4 && r4 < r5);

	assert_int_equal(abq_store_rule_get(s, r3, &got, &err), 1);
	assert_int_equal(got.id, r3);
	assert_int_equal(got.charac, ABQ_CHAR_DEVICEID);
	assert_int_equal(got.match, ABQ_MATCH_REGEX);
	assert_string_equal(got.pattern, "ü.*");
	assert_int_equal(got.level, ABQ_STATE_ALLOWED);
	assert_int_equal(got.order, 1);
	assert_string_equal(got.domain, "example.com");
	assert_string_equal(got.created_by, "admin");
	assert_int_equal(got.created_at, 77);
	abq_rule_clear(&got);
	assert_int_equal(abq_store_rule_get(s, r1, &got, &err), 1);
	assert_null(got.domain);
	abq_rule_clear(&got);
	assert_int_equal(abq_store_rule_get(s, 99999, &got, &err), 0);

	/* Domain rules by domain, global last; by order then id within each. */
	assert_string_equal(rules_of(s, NULL, true),
	                    "a.org:7,example.com:1,example.com:1,-:5,-:10");
	memset(&ids, 0, sizeof(ids));
	OK(abq_store_rule_iter(s, "example.com", false, cb_rule_ids, &ids, &err));
	{
		char want[64];

		snprintf(want, sizeof(want), "%lld,%lld", (long long)r3, (long long)r5);
		assert_string_equal(ids.buf, want);
	}
	assert_string_equal(rules_of(s, NULL, false), "-:5,-:10");
	assert_string_equal(rules_of(s, "nowhere.org", false), "");

	/* Update every field; the order changes. */
	memset(&r, 0, sizeof(r));
	r.id = r1;
	r.charac = ABQ_CHAR_USERAGENT;
	r.match = ABQ_MATCH_GLOB;
	r.pattern = "Outlook*";
	r.level = ABQ_STATE_QUARANTINED;
	r.order = 1;
	r.created_by = "bob";
	r.created_at = 88;
	OK(abq_store_rule_update(s, &r, &err));
	assert_int_equal(abq_store_rule_get(s, r1, &got, &err), 1);
	assert_int_equal(got.charac, ABQ_CHAR_USERAGENT);
	assert_int_equal(got.match, ABQ_MATCH_GLOB);
	assert_string_equal(got.pattern, "Outlook*");
	assert_int_equal(got.level, ABQ_STATE_QUARANTINED);
	assert_int_equal(got.order, 1);
	assert_string_equal(got.created_by, "bob");
	abq_rule_clear(&got);
	assert_string_equal(rules_of(s, NULL, false), "-:1,-:5");
	r.id = 99999;
	FAILS(abq_store_rule_update(s, &r, &err), "99999");

	/* Every characteristic, match and level. */
	for (c = ABQ_CHAR_DEVICEID; c <= ABQ_CHAR_USERAGENT; c++)
		for (m = ABQ_MATCH_EXACT; m <= ABQ_MATCH_REGEX; m++) {
			r.id = r4;
			r.charac = c;
			r.match = m;
			r.level = c % 2 ? ABQ_STATE_BLOCKED : ABQ_STATE_ALLOWED;
			r.domain = "a.org";
			OK(abq_store_rule_update(s, &r, &err));
			assert_int_equal(abq_store_rule_get(s, r4, &got, &err), 1);
			assert_int_equal(got.charac, c);
			assert_int_equal(got.match, m);
			assert_int_equal(got.level, r.level);
			abq_rule_clear(&got);
		}

	OK(abq_store_rule_delete(s, r2, &err));
	assert_int_equal(abq_store_rule_get(s, r2, &got, &err), 0);
	FAILS(abq_store_rule_delete(s, r2, &err), "no rule");
	/* Ids are never reused. */
	assert_true(add_rule(s, NULL, 3, "z") > r5);
}

/* ---- attributes ---------------------------------------------------------- */

/* Set an attribute. */
static void
put_attr(struct abq_store *s, enum abq_scope scope, const char *target, const char *name,
         const char *value)
{
	struct abq_attr a = {.scope = scope,
	                     .target = (char *)target,
	                     .name = (char *)name,
	                     .value = (char *)value,
	                     .set_by = "admin",
	                     .set_at = 55};

	OK(abq_store_attr_put(s, &a, &err));
}

/* Attributes at the three scopes. */
static void
test_attrs(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_attr got;
	struct list l;

	put_attr(s, ABQ_SCOPE_ACCOUNT, "alice@example.com", "abqMode", "Permissive");
	put_attr(s, ABQ_SCOPE_DOMAIN, "example.com", "abqMode", "Strict");
	put_attr(s, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	put_attr(s, ABQ_SCOPE_GLOBAL, "ignored", "abqNotificationsInterval", "1h");

	assert_int_equal(abq_store_attr_get(s, ABQ_SCOPE_GLOBAL, NULL, "abqMode", &got, &err), 1);
	assert_int_equal(got.scope, ABQ_SCOPE_GLOBAL);
	assert_null(got.target);
	assert_string_equal(got.name, "abqMode");
	assert_string_equal(got.value, "Interactive");
	assert_string_equal(got.set_by, "admin");
	assert_int_equal(got.set_at, 55);
	abq_attr_clear(&got);
	assert_int_equal(
	    abq_store_attr_get(s, ABQ_SCOPE_DOMAIN, "example.com", "abqMode", &got, &err), 1);
	assert_string_equal(got.target, "example.com");
	assert_string_equal(got.value, "Strict");
	abq_attr_clear(&got);
	assert_int_equal(
	    abq_store_attr_get(s, ABQ_SCOPE_DOMAIN, "other.org", "abqMode", &got, &err), 0);
	assert_int_equal(
	    abq_store_attr_get(s, ABQ_SCOPE_ACCOUNT, "example.com", "abqMode", &got, &err), 0);

	/* Replace; the global target was ignored on put. */
	put_attr(s, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Disabled");
	assert_int_equal(abq_store_attr_get(s, ABQ_SCOPE_GLOBAL, "x", "abqMode", &got, &err), 1);
	assert_string_equal(got.value, "Disabled");
	abq_attr_clear(&got);

	memset(&l, 0, sizeof(l));
	OK(abq_store_attr_iter(s, cb_attr_list, &l, &err));
	assert_string_equal(l.buf, "global/-/abqMode=Disabled,global/-/abqNotificationsInterval=1h,"
	                           "domain/example.com/abqMode=Strict,"
	                           "account/alice@example.com/abqMode=Permissive");

	OK(abq_store_attr_delete(s, ABQ_SCOPE_ACCOUNT, "alice@example.com", "abqMode", &err));
	assert_int_equal(
	    abq_store_attr_get(s, ABQ_SCOPE_ACCOUNT, "alice@example.com", "abqMode", &got, &err),
	    0);
	OK(abq_store_attr_delete(s, ABQ_SCOPE_ACCOUNT, "alice@example.com", "abqMode", &err));
	FAILS(abq_store_attr_get(s, ABQ_SCOPE_DOMAIN, NULL, "abqMode", &got, &err), "required");
}

/* ---- history ------------------------------------------------------------- */

/* Append a history row about a device; returns its id. */
static int64_t
add_history(struct abq_store *s, int64_t at, const char *subject, const char *device_id,
            const char *account)
{
	struct abq_history h = {.at = at,
	                        .who = "admin",
	                        .what = "state",
	                        .subject = (char *)subject,
	                        .old_value = "Quarantined",
	                        .new_value = "Allowed",
	                        .reason = "Individual",
	                        .device_id = (char *)device_id,
	                        .account = (char *)account};

	OK(abq_store_history_add(s, &h, &err));
	return h.id;
}

/* The subjects of the history rows a filter yields. */
static const char *
history_of(struct abq_store *s, const char *device_id, const char *account, int64_t since,
           size_t limit)
{
	static struct list l;
	struct abq_history_filter f = {device_id, account, since, limit};

	memset(&l, 0, sizeof(l));
	OK(abq_store_history_iter(s, &f, cb_history_list, &l, &err));
	return l.buf;
}

/* Check the NULL fields of the row added without them; stop there. */
static int
cb_history_check(void *arg, const struct abq_history *h)
{
	struct abq_history *want = arg;

	if (h->id != want->id)
		return 0;
	assert_int_equal(h->at, want->at);
	assert_ptr_equal(h->who, NULL);
	assert_string_equal(h->what, want->what);
	assert_ptr_equal(h->subject, NULL);
	assert_ptr_equal(h->old_value, NULL);
	assert_string_equal(h->new_value, want->new_value);
	assert_ptr_equal(h->reason, NULL);
	assert_ptr_equal(h->device_id, NULL);
	assert_ptr_equal(h->account, NULL);
	return 1;
}

/* History filters, order and limits. */
static void
test_history(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_history h = {
	    .at = 450, .what = "attribute", .new_value = "global abqMode=Strict"};
	int64_t id1, id2;
	size_t n = 0;
	int i;

	id1 = add_history(s, 100, "h1", "DEV1", "alice@example.com");
	id2 = add_history(s, 200, "h2", "dev1", "bob@example.com");
	add_history(s, 300, "h3", "DEV2", "alice@example.com");
	OK(abq_store_history_add(s, &h, &err));
	add_history(s, 500, "h5", "DeV1", "alice@example.com");
	assert_true(id1 > 0 && id2 > id1 && h.id > id2);

	assert_string_equal(history_of(s, NULL, NULL, 0, 0), "h1,h2,h3,-,h5");
	assert_string_equal(history_of(s, "dev1", NULL, 0, 0), "h1,h2,h5");
	assert_string_equal(history_of(s, NULL, "alice@example.com", 0, 0), "h1,h3,h5");
	assert_string_equal(history_of(s, "DEV1", "alice@example.com", 0, 0), "h1,h5");
	assert_string_equal(history_of(s, NULL, NULL, 300, 0), "h3,-,h5");
	assert_string_equal(history_of(s, NULL, NULL, 0, 2), "h5,-");
	assert_string_equal(history_of(s, "DEV1", NULL, 0, 2), "h5,h2");
	assert_string_equal(history_of(s, NULL, NULL, 0, 10), "h5,-,h3,h2,h1");
	assert_string_equal(history_of(s, NULL, "alice@example.com", 200, 1), "h5");

	/* NULLs stay NULL. */
	assert_int_equal(abq_store_history_iter(s, NULL, cb_history_check, &h, &err), 1);

	/* Across batches: a limit larger than a batch, and no limit. */
	OK(abq_store_begin(s, &err));
	for (i = 0; i < 600; i++)
		add_history(s, 1000 + i, "bulk", NULL, NULL);
	OK(abq_store_commit(s, &err));
	{
		struct abq_history_filter f = {.limit = 300};

		OK(abq_store_history_iter(s, &f, cb_history_count, &n, &err));
		assert_int_equal(n, 300);
	}
	n = 0;
	OK(abq_store_history_iter(s, NULL, cb_history_count, &n, &err));
	assert_int_equal(n, 605);
}

/* ---- change log ---------------------------------------------------------- */

/* Sequence numbers ascend; change_iter returns those after since. */
static void
test_changes(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct list l;
	int64_t last;

	OK(abq_store_change_last(s, &last, &err));
	assert_int_equal(last, 0);
	OK(abq_store_change_add(s, ABQ_CHANGE_DEVICE, "alice@example.com\nDEV1", 10, &err));
	OK(abq_store_change_add(s, ABQ_CHANGE_ENTRY, "DEV1/alice@example.com", 11, &err));
	OK(abq_store_change_add(s, ABQ_CHANGE_RULE, "3", 12, &err));
	OK(abq_store_change_add(s, ABQ_CHANGE_ATTR, "global\nabqMode", 13, &err));
	OK(abq_store_change_add(s, ABQ_CHANGE_TEMPLATE, "default/en", 14, &err));
	OK(abq_store_change_last(s, &last, &err));
	assert_int_equal(last, 5);
	OK(abq_store_change_add(s, ABQ_CHANGE_LOGGER, "all", 15, &err));
	memset(&l, 0, sizeof(l));
	OK(abq_store_change_iter(s, 5, cb_change_list, &l, &err));
	assert_string_equal(l.buf, "6:6:all");
	OK(abq_store_change_last(s, &last, &err));
	assert_int_equal(last, 6);

	memset(&l, 0, sizeof(l));
	OK(abq_store_change_iter(s, 0, cb_change_list, &l, &err));
	assert_string_equal(l.buf, "1:1:alice@example.com\nDEV1,2:2:DEV1/alice@example.com,3:3:3,"
	                           "4:4:global\nabqMode,5:5:default/en,6:6:all");
	memset(&l, 0, sizeof(l));
	OK(abq_store_change_iter(s, 3, cb_change_list, &l, &err));
	assert_string_equal(l.buf, "4:4:global\nabqMode,5:5:default/en,6:6:all");
	memset(&l, 0, sizeof(l));
	OK(abq_store_change_iter(s, 6, cb_change_list, &l, &err));
	assert_string_equal(l.buf, "");
}

/* ---- outbox -------------------------------------------------------------- */

/* Check every field of the expected notice; stop there. */
static int
cb_notice_check(void *arg, const struct abq_notice *n)
{
	const struct abq_notice *w = arg;

	if (n->id != w->id)
		return 0;
	assert_string_equal(n->recipient, w->recipient);
	assert_string_equal(n->kind, w->kind);
	assert_string_equal(n->account, w->account);
	assert_string_equal(n->device_id, w->device_id);
	assert_string_equal(n->template_ref, w->template_ref);
	assert_string_equal(n->rendered, w->rendered);
	assert_string_equal(n->state, w->state);
	assert_int_equal(n->attempts, w->attempts);
	assert_int_equal(n->next_attempt, w->next_attempt);
	assert_string_equal(n->last_error, w->last_error);
	assert_int_equal(n->created, w->created);
	assert_int_equal(n->sent, w->sent);
	return 1;
}

/* Notices round trip; a NULL state is queued. */
static void
test_outbox(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_notice a = {.recipient = "alice@example.com", .kind = "user-quarantined"};
	struct abq_notice b = {.recipient = "admins@example.com",
	                       .kind = "digest",
	                       .account = "alice@example.com",
	                       .device_id = "DEV1",
	                       .template_ref = "example.com/fr",
	                       .rendered = "Subject: Appareil en quarantaine\r\n\r\nÉtat…",
	                       .state = "sent",
	                       .attempts = 3,
	                       .next_attempt = 1700000100,
	                       .last_error = "451 try later",
	                       .created = 1700000000,
	                       .sent = 1700000200};
	struct list l;

	OK(abq_store_notice_add(s, &a, &err));
	OK(abq_store_notice_add(s, &b, &err));
	assert_true(a.id > 0 && b.id > a.id);
	assert_int_equal(abq_store_notice_iter(s, NULL, cb_notice_check, &b, &err), 1);

	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_iter(s, NULL, cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "alice@example.com:queued,admins@example.com:sent");
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_iter(s, "queued", cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "alice@example.com:queued");
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_iter(s, "failed", cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "");

	/* The counts /metrics shows, without reading the rows. */
	struct abq_notice c = {
	    .recipient = "bob@example.com", .kind = "user-quarantined", .created = 1600000000};
	struct abq_notice d = {.recipient = "carol@example.com",
	                       .kind = "user-quarantined",
	                       .state = "failed",
	                       .created = 1650000000};
	struct abq_notice e = {
	    .recipient = "dave@example.com", .kind = "user-quarantined", .created = 1700000500};
	int64_t count = -1, oldest = -1;

	OK(abq_store_notice_stats(s, "failed", &count, &oldest, &err));
	assert_int_equal(count, 0);
	assert_int_equal(oldest, 0);
	OK(abq_store_notice_add(s, &c, &err));
	OK(abq_store_notice_add(s, &d, &err));
	OK(abq_store_notice_add(s, &e, &err));
	OK(abq_store_notice_stats(s, "queued", &count, &oldest, &err));
	assert_int_equal(count, 3); /* a, c, e */
	assert_int_equal(oldest, a.created < c.created ? a.created : c.created);
	OK(abq_store_notice_stats(s, "failed", &count, &oldest, &err));
	assert_int_equal(count, 1);
	assert_int_equal(oldest, 1650000000);
	OK(abq_store_notice_stats(s, "sent", &count, &oldest, &err));
	assert_int_equal(count, 1);
	assert_int_equal(oldest, 1700000000);
	assert_int_equal(abq_store_notice_stats(s, "", &count, &oldest, &err), -1);
}

/* A notice as "recipient:state:attempts:next_attempt:last_error:sent". */
static int
cb_notice_full(void *arg, const struct abq_notice *n)
{
	list_add(arg, "%s:%s:%d:%lld:%s:%lld", n->recipient, n->state, n->attempts,
	         (long long)n->next_attempt, ns(n->last_error), (long long)n->sent);
	return 0;
}

/* The sender's work list: queued and due, by id; marks move notices out of it. */
static void
test_outbox_due_mark(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_notice a = {.recipient = "a@x", .kind = "user-blocked", .next_attempt = 100};
	struct abq_notice b = {.recipient = "b@x", .kind = "user-blocked", .next_attempt = 200};
	struct abq_notice c = {.recipient = "c@x", .kind = "user-blocked", .state = "sent"};
	struct list l;

	OK(abq_store_notice_add(s, &a, &err));
	OK(abq_store_notice_add(s, &b, &err));
	OK(abq_store_notice_add(s, &c, &err));
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_due(s, 150, cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "a@x:queued");
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_due(s, 200, cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "a@x:queued,b@x:queued");

	/* A failed attempt stays queued with a later next_attempt. */
	OK(abq_store_notice_mark(s, a.id, "queued", 1, 300, "421 try later", 0, &err));
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_due(s, 250, cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "b@x:queued");
	/* Sent and failed notices are never due again. */
	OK(abq_store_notice_mark(s, b.id, "sent", 1, 200, NULL, 260, &err));
	OK(abq_store_notice_mark(s, a.id, "failed", 5, 300, "550 no such user", 0, &err));
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_due(s, 1000, cb_notice_list, &l, &err));
	assert_string_equal(l.buf, "");
	memset(&l, 0, sizeof(l));
	OK(abq_store_notice_iter(s, NULL, cb_notice_full, &l, &err));
	assert_string_equal(l.buf, "a@x:failed:5:300:550 no such user:0,b@x:sent:1:200:-:260,"
	                           "c@x:sent:0:0:-:0");

	/* Bad arguments and unknown ids. */
	assert_int_equal(abq_store_notice_mark(s, 999999, "sent", 1, 0, NULL, 1, &err), -1);
	assert_non_null(strstr(err, "no notice with id 999999"));
	assert_int_equal(abq_store_notice_mark(s, a.id, "bogus", 1, 0, NULL, 1, &err), -1);
	assert_int_equal(abq_store_notice_mark(s, a.id, NULL, 1, 0, NULL, 1, &err), -1);
	assert_int_equal(abq_store_notice_due(s, 0, NULL, NULL, &err), -1);
}

/* A template as "scope/domain/kind/locale=subject". */
static int
cb_template_list(void *arg, const struct abq_template *t)
{
	list_add(arg, "%s/%s/%s/%s=%s", abq_scope_name(t->scope), ns(t->domain), t->kind, t->locale,
	         ns(t->subject));
	return 0;
}

/* Templates round trip, replace, delete and iterate; keys are checked. */
static void
test_templates(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_template g = {.scope = ABQ_SCOPE_GLOBAL,
	                         .domain = "ignored.example",
	                         .kind = "user-blocked",
	                         .locale = "de",
	                         .from = "it@example.com",
	                         .reply_to = "help@example.com",
	                         .subject = "Gerät gesperrt",
	                         .body_plain = "Ihr Gerät {device_id} ist gesperrt.",
	                         .body_html = "<p>Ihr Gerät {device_id} ist gesperrt.</p>",
	                         .set_by = "admin",
	                         .set_at = 1700000000};
	struct abq_template d = {.scope = ABQ_SCOPE_DOMAIN,
	                         .domain = "example.com",
	                         .kind = "user-blocked",
	                         .locale = "de-DE",
	                         .subject = "Gesperrt"};
	struct abq_template out;
	struct list l;
	size_t count;

	OK(abq_store_template_put(s, &g, &err));
	OK(abq_store_template_put(s, &d, &err));
	assert_int_equal(
	    abq_store_template_get(s, ABQ_SCOPE_GLOBAL, NULL, "user-blocked", "DE", &out, &err), 1);
	assert_null(out.domain);
	assert_string_equal(out.from, "it@example.com");
	assert_string_equal(out.reply_to, "help@example.com");
	assert_string_equal(out.subject, "Gerät gesperrt");
	assert_string_equal(out.body_plain, g.body_plain);
	assert_string_equal(out.body_html, g.body_html);
	assert_string_equal(out.set_by, "admin");
	assert_int_equal(out.set_at, 1700000000);
	abq_template_clear(&out);
	assert_int_equal(abq_store_template_get(s, ABQ_SCOPE_DOMAIN, "example.com", "user-blocked",
	                                        "de-de", &out, &err),
	                 1);
	assert_string_equal(out.domain, "example.com");
	assert_null(out.body_html);
	abq_template_clear(&out);
	assert_int_equal(abq_store_template_get(s, ABQ_SCOPE_DOMAIN, "other.com", "user-blocked",
	                                        "de-DE", &out, &err),
	                 0);

	/* Replace. */
	g.subject = "Neu";
	OK(abq_store_template_put(s, &g, &err));
	memset(&l, 0, sizeof(l));
	OK(abq_store_template_iter(s, cb_template_list, &l, &err));
	assert_string_equal(l.buf, "domain/example.com/user-blocked/de-DE=Gesperrt,"
	                           "global/-/user-blocked/de=Neu");

	/* Delete, twice. */
	OK(abq_store_template_delete(s, ABQ_SCOPE_DOMAIN, "example.com", "user-blocked", "de-DE",
	                             &count, &err));
	assert_int_equal(count, 1);
	OK(abq_store_template_delete(s, ABQ_SCOPE_DOMAIN, "example.com", "user-blocked", "de-DE",
	                             &count, &err));
	assert_int_equal(count, 0);

	/* Keys. */
	d.domain = NULL;
	assert_int_equal(abq_store_template_put(s, &d, &err), -1);
	d.domain = "example.com";
	d.scope = ABQ_SCOPE_ACCOUNT;
	assert_int_equal(abq_store_template_put(s, &d, &err), -1);
	assert_int_equal(abq_store_template_get(s, ABQ_SCOPE_GLOBAL, NULL, "", "de", &out, &err),
	                 -1);
	assert_int_equal(abq_store_template_get(s, ABQ_SCOPE_GLOBAL, NULL, "k", NULL, &out, &err),
	                 -1);
	assert_int_equal(abq_store_template_iter(s, NULL, NULL, &err), -1);
}

/* ---- transactions and persistence ---------------------------------------- */

/* One write of every kind, for the transaction tests. */
static void
write_everything(struct abq_store *s)
{
	struct abq_device d;
	struct abq_rule r = {.pattern = "p", .level = ABQ_STATE_BLOCKED};
	struct abq_notice n = {.recipient = "a@x", .kind = "digest"};

	full_device(&d, "alice@example.com", "TX1");
	OK(abq_store_device_put(s, &d, &err));
	put_entry(s, "TX1", NULL, ABQ_STATE_ALLOWED);
	OK(abq_store_rule_insert(s, &r, &err));
	put_attr(s, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Strict");
	add_history(s, 1, "tx", "TX1", "alice@example.com");
	OK(abq_store_change_add(s, ABQ_CHANGE_ENTRY, "TX1", 1, &err));
	OK(abq_store_notice_add(s, &n, &err));
}

/* How many records of each kind exist, as "devices,entries,rules,...". */
static const char *
census(struct abq_store *s)
{
	static char buf[128];
	size_t nd = 0, ne = 0, nr = 0, na = 0, nh = 0, nc = 0, nn = 0;

	OK(abq_store_device_iter(s, NULL, COUNTER(struct abq_device), &nd, &err));
	OK(abq_store_entry_iter(s, ABQ_STATE_NONE, COUNTER(struct abq_entry), &ne, &err));
	OK(abq_store_rule_iter(s, NULL, true, COUNTER(struct abq_rule), &nr, &err));
	OK(abq_store_attr_iter(s, COUNTER(struct abq_attr), &na, &err));
	OK(abq_store_history_iter(s, NULL, COUNTER(struct abq_history), &nh, &err));
	OK(abq_store_change_iter(s, 0, COUNTER(struct abq_change), &nc, &err));
	OK(abq_store_notice_iter(s, NULL, COUNTER(struct abq_notice), &nn, &err));
	snprintf(buf, sizeof(buf), "%zu,%zu,%zu,%zu,%zu,%zu,%zu", nd, ne, nr, na, nh, nc, nn);
	return buf;
}

/* Rollback discards every kind of write; commit keeps them, across a reopen. */
static void
test_transactions(void **state)
{
	struct fx *f = FX(state);
	int64_t last;

	OK(abq_store_begin(f->s, &err));
	write_everything(f->s);
	assert_string_equal(census(f->s), "1,1,1,1,1,1,1");
	abq_store_rollback(f->s);
	assert_string_equal(census(f->s), "0,0,0,0,0,0,0");
	OK(abq_store_change_last(f->s, &last, &err));
	assert_int_equal(last, 0);

	OK(abq_store_begin(f->s, &err));
	FAILS(abq_store_begin(f->s, &err), "already open");
	write_everything(f->s);
	OK(abq_store_commit(f->s, &err));
	FAILS(abq_store_commit(f->s, &err), "no transaction");
	abq_store_rollback(f->s); /* nothing open: harmless */
	assert_string_equal(census(f->s), "1,1,1,1,1,1,1");

	/* Outside a transaction, each write commits by itself. */
	put_entry(f->s, "AUTO", NULL, ABQ_STATE_BLOCKED);
	abq_store_rollback(f->s);

	abq_store_close(&f->s);
	assert_null(f->s);
	fx_open(f, 0);
	assert_string_equal(census(f->s), "1,2,1,1,1,1,1");
	OK(abq_store_change_last(f->s, &last, &err));
	assert_int_equal(last, 1);
}

/* Closing with a transaction open loses it. */
static void
test_close_rolls_back(void **state)
{
	struct fx *f = FX(state);

	OK(abq_store_begin(f->s, &err));
	write_everything(f->s);
	abq_store_close(&f->s);
	fx_open(f, 0);
	assert_string_equal(census(f->s), "0,0,0,0,0,0,0");
}

/* ---- opening ------------------------------------------------------------- */

/* A raw SQLite connection to the fixture's file, to play a foreign party. */
static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

/* The integer a raw query returns. */
static int64_t
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Run raw SQL, failing the test on error. */
static void
raw_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
}

/* Whether a file exists. */
static bool
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* Open a URL expecting failure; returns the message. */
static const char *
open_fails(const char *url, const char *base, int flags)
{
	struct abq_store *s;

	err = NULL;
	s = abq_store_open(url, base, flags, &err);
	if (s != NULL) {
		abq_store_close(&s);
		fail_msg("opening %s succeeded", url);
	}
	assert_non_null(err);
	return err;
}

#define MSG_HAS(msg, needle)                                                                       \
	do {                                                                                       \
		const char *m_ = (msg);                                                            \
		if (strstr(m_, (needle)) == NULL)                                                  \
			fail_msg("message '%s' lacks '%s'", m_, (needle));                         \
	} while (0)

/* The file identifies itself, is in WAL mode, and lists its files. */
static void
test_identity(void **state)
{
	struct fx *f = FX(state);
	const char *const *files;
	sqlite3 *db;

	assert_string_equal(abq_store_backend(f->s), "sqlite");
	assert_string_equal(abq_store_location(f->s), f->path);
	files = abq_store_files(f->s);
	assert_string_equal(files[0], f->path);
	MSG_HAS(files[1], "abq.db-wal");
	MSG_HAS(files[2], "abq.db-shm");
	assert_null(files[3]);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA application_id"), 0x41425144);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), ABQ_STORE_SCHEMA_VERSION);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
		                 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
	}
	/* States are readable text in the file. */
	put_device(f->s, "a@x", "D", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 1);
	assert_int_equal(
	    raw_int(db, "SELECT count(*) FROM devices WHERE state = 'Quarantined' AND reason = "
	                "'Mode'"),
	    1);
	sqlite3_close(db);
}

/* A missing store is not created without ABQ_STORE_CREATE. */
static void
test_open_missing(void **state)
{
	struct fx *f = FX(state);
	char path[PATH_MAX + 64], url[PATH_MAX + 80];
	const char *m;

	snprintf(path, sizeof(path), "%s/missing.db", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	m = open_fails(url, NULL, 0);
	MSG_HAS(m, path);
	MSG_HAS(m, "does not exist; run 'abqctl init'");
	assert_false(exists(path));
	m = open_fails(url, NULL, ABQ_STORE_READONLY);
	MSG_HAS(m, "does not exist");

	snprintf(url, sizeof(url), "sqlite:%s/nofolder/abq.db", f->dir);
	m = open_fails(url, NULL, ABQ_STORE_CREATE);
	MSG_HAS(m, "folder");
	MSG_HAS(m, "nofolder");
	m = open_fails(url, NULL, ABQ_STORE_CREATE | ABQ_STORE_READONLY);
	MSG_HAS(m, "read-only");
}

/* The URL forms, relative paths and schemes that are not (yet) ours. */
static void
test_open_urls(void **state)
{
	struct fx *f = FX(state);
	char url[PATH_MAX + 80], want[PATH_MAX + 64];
	struct abq_store *s;

	/* sqlite:///abs/path */
	abq_store_close(&f->s);
	snprintf(url, sizeof(url), "sqlite://%s", f->path);
	fx_open(f, 0);
	s = abq_store_open(url, NULL, 0, &err);
	assert_non_null(s);
	assert_string_equal(abq_store_location(s), f->path);
	abq_store_close(&s);

	/* A relative path is taken in base_dir. */
	s = abq_store_open("sqlite:rel.db", f->dir, ABQ_STORE_CREATE, &err);
	assert_non_null(s);
	snprintf(want, sizeof(want), "%s/rel.db", f->dir);
	assert_string_equal(abq_store_location(s), want);
	assert_true(exists(want));
	abq_store_close(&s);
	/* An absolute path ignores base_dir. */
	snprintf(url, sizeof(url), "sqlite:%s", f->path);
	s = abq_store_open(url, "/nonexistent", 0, &err);
	assert_non_null(s);
	abq_store_close(&s);

	MSG_HAS(open_fails("sqlite://host/x.db", NULL, 0), "host");
	MSG_HAS(open_fails("sqlite:", NULL, ABQ_STORE_CREATE), "no path");
	/* PostgreSQL URLs go to the PostgreSQL backend (nothing listens on port 1). */
	MSG_HAS(open_fails("postgresql://abqd@127.0.0.1:1/abqd", NULL, 0), "cannot connect");
	MSG_HAS(open_fails("postgres://abqd:secret@127.0.0.1:1/abqd", NULL, 0), "abqd:***@");
	MSG_HAS(open_fails("mysql://x/y", NULL, 0), "unknown store URL");
	MSG_HAS(open_fails("", NULL, 0), "no store URL");
	assert_null(abq_store_open(NULL, NULL, 0, NULL));
}

/* A SQLite database of another program is refused and left as it was. */
static void
test_open_foreign(void **state)
{
	struct fx *f = FX(state);
	char path[PATH_MAX + 64], url[PATH_MAX + 80], wal[PATH_MAX + 80];
	sqlite3 *db;
	const char *m;

	snprintf(path, sizeof(path), "%s/foreign.db", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	db = raw_open(path);
	raw_exec(db, "CREATE TABLE mail (id INTEGER PRIMARY KEY, subject TEXT)");
	sqlite3_close(db);

	m = open_fails(url, NULL, 0);
	MSG_HAS(m, path);
	MSG_HAS(m, "is not an abqd store");
	m = open_fails(url, NULL, ABQ_STORE_CREATE);
	MSG_HAS(m, "is not an abqd store");

	db = raw_open(path);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master"), 1);
	assert_int_equal(raw_int(db, "PRAGMA application_id"), 0);
	assert_false(exists(wal));
	/* Another program's application_id, even without tables. */
	raw_exec(db, "DROP TABLE mail; PRAGMA application_id = 1234");
	sqlite3_close(db);
	MSG_HAS(open_fails(url, NULL, ABQ_STORE_CREATE), "is not an abqd store");
}

/* A newer schema is refused; an older one is migrated. */
static void
test_open_versions(void **state)
{
	struct fx *f = FX(state);
	char path[PATH_MAX + 64], url[PATH_MAX + 80], want[128];
	struct abq_store *s;
	sqlite3 *db;

	abq_store_close(&f->s);
	db = raw_open(f->path);
	raw_exec(db, "PRAGMA user_version = 99");
	sqlite3_close(db);
	snprintf(want, sizeof(want),
	         "has schema version 99, newer than this abqd (%d); upgrade abqd",
	         ABQ_STORE_SCHEMA_VERSION);
	MSG_HAS(open_fails(f->url, NULL, 0), want);
	MSG_HAS(open_fails(f->url, NULL, ABQ_STORE_CREATE), f->path);

	/* Version 0 with our application_id and something in it: migrated. */
	snprintf(path, sizeof(path), "%s/old.db", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	db = raw_open(path);
	raw_exec(db, "PRAGMA application_id = 1094865220; CREATE TABLE legacy (x)");
	sqlite3_close(db);
	MSG_HAS(open_fails(url, NULL, ABQ_STORE_READONLY), "upgrade");
	s = abq_store_open(url, NULL, 0, &err);
	if (s == NULL)
		fail_msg("migration: %s", err);
	put_device(s, "a@x", "D", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	abq_store_close(&s);
	db = raw_open(path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), ABQ_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM devices"), 1);
	sqlite3_close(db);
}

static int
cb_admin_list(void *arg, const struct abq_admin *a)
{
	list_add(arg, "%s:%lld", a->name, (long long)a->last_login);
	return 0;
}

static int
cb_token_list(void *arg, const struct abq_token *t)
{
	list_add(arg, "%s/%s", t->admin, ns(t->label));
	return 0;
}

/* Administrators: round trip, replace, order, delete (with their tokens). */
static void
test_admins(void **state)
{
	struct fx *f = FX(state);
	struct abq_admin a = {.name = "zoe@example.com",
	                      .password_hash = "$y$j9T$salt$hash",
	                      .created_by = "root",
	                      .created_at = 100,
	                      .password_at = 101,
	                      .last_login = 0};
	struct abq_admin b = {.name = "alice", .password_hash = "$y$other", .created_at = 1};
	struct abq_token t = {.admin = "zoe@example.com", .label = "ci", .hash = "aa"};
	struct abq_admin out;
	struct list l = {0};
	size_t n = 99;

	assert_int_equal(abq_store_admin_get(f->s, "zoe@example.com", &out, &err), 0);
	OK(abq_store_admin_put(f->s, &a, &err));
	OK(abq_store_admin_put(f->s, &b, &err));
	assert_int_equal(abq_store_admin_get(f->s, "zoe@example.com", &out, &err), 1);
	assert_string_equal(out.name, "zoe@example.com");
	assert_string_equal(out.password_hash, "$y$j9T$salt$hash");
	assert_string_equal(out.created_by, "root");
	assert_int_equal(out.created_at, 100);
	assert_int_equal(out.password_at, 101);
	assert_int_equal(out.last_login, 0);
	abq_admin_clear(&out);
	/* Names compare exactly (admins.c admits lower case only). */
	assert_int_equal(abq_store_admin_get(f->s, "Zoe@example.com", &out, &err), 0);
	/* A put replaces the whole record. */
	a.password_hash = "$y$new";
	a.last_login = 200;
	OK(abq_store_admin_put(f->s, &a, &err));
	assert_int_equal(abq_store_admin_get(f->s, "zoe@example.com", &out, &err), 1);
	assert_string_equal(out.password_hash, "$y$new");
	assert_int_equal(out.last_login, 200);
	assert_null(b.created_by);
	abq_admin_clear(&out);
	OK(abq_store_admin_iter(f->s, cb_admin_list, &l, &err));
	assert_string_equal(l.buf, "alice:0,zoe@example.com:200");
	/* Delete takes the tokens along, and nothing of another administrator's. */
	OK(abq_store_token_add(f->s, &t, &err));
	t.admin = "alice";
	t.hash = "bb";
	OK(abq_store_token_add(f->s, &t, &err));
	OK(abq_store_admin_delete(f->s, "zoe@example.com", &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_admin_get(f->s, "zoe@example.com", &out, &err), 0);
	OK(abq_store_token_count(f->s, "zoe@example.com", &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_token_count(f->s, NULL, &n, &err));
	assert_int_equal(n, 1);
	OK(abq_store_admin_delete(f->s, "zoe@example.com", &n, &err));
	assert_int_equal(n, 0);
	/* Inside a transaction, rolled back: nothing happened. */
	OK(abq_store_begin(f->s, &err));
	OK(abq_store_admin_delete(f->s, "alice", NULL, &err));
	abq_store_rollback(f->s);
	assert_int_equal(abq_store_admin_get(f->s, "alice", &out, &err), 1);
	abq_admin_clear(&out);
	/* Bad arguments. */
	FAILS(abq_store_admin_get(f->s, "", &out, &err), "name is required");
	b.password_hash = NULL;
	FAILS(abq_store_admin_put(f->s, &b, &err), "password_hash are required");
	FAILS(abq_store_admin_delete(f->s, NULL, NULL, &err), "name is required");
	FAILS(abq_store_admin_iter(f->s, NULL, NULL, &err), "no callback");
	/* The writes count for the fault injection. */
	setenv("ABQ_STORE_FAULT", "1", 1);
	FAILS(abq_store_admin_put(f->s, &a, &err), "injected fault");
	setenv("ABQ_STORE_FAULT", "2", 1);
	OK(abq_store_token_delete(f->s, "alice", NULL, NULL, &err));
	FAILS(abq_store_token_touch(f->s, 1, 1, &err), "injected fault");
	setenv("ABQ_STORE_FAULT", "1", 1);
	FAILS(abq_store_admin_delete(f->s, "alice", NULL, &err), "injected fault");
	unsetenv("ABQ_STORE_FAULT");
	assert_int_equal(abq_store_admin_get(f->s, "alice", &out, &err), 1);
	abq_admin_clear(&out);
}

/* Tokens: add, find by hash, unique hashes, touch, delete by label or all, order, count. */
static void
test_tokens(void **state)
{
	struct fx *f = FX(state);
	struct abq_token t = {.admin = "bob",
	                      .label = "ci",
	                      .hash = "0123abcd",
	                      .created_by = "root",
	                      .created_at = 10};
	struct abq_token out;
	struct list l = {0};
	int64_t first;
	size_t n = 99;

	assert_int_equal(abq_store_token_find(f->s, "0123abcd", &out, &err), 0);
	OK(abq_store_token_add(f->s, &t, &err));
	assert_true(t.id > 0);
	first = t.id;
	assert_int_equal(abq_store_token_find(f->s, "0123abcd", &out, &err), 1);
	assert_int_equal(out.id, first);
	assert_string_equal(out.admin, "bob");
	assert_string_equal(out.label, "ci");
	assert_string_equal(out.hash, "0123abcd");
	assert_string_equal(out.created_by, "root");
	assert_int_equal(out.created_at, 10);
	assert_int_equal(out.last_used, 0);
	abq_token_clear(&out);
	/* A hash is unique across every administrator. */
	t.admin = "carol";
	FAILS(abq_store_token_add(f->s, &t, &err), "token_add");
	/* More tokens: bob unlabelled, bob "ci" again, carol "ci". */
	t.admin = "bob";
	t.label = NULL;
	t.hash = "02";
	OK(abq_store_token_add(f->s, &t, &err));
	assert_true(t.id > first);
	t.label = "ci";
	t.hash = "03";
	OK(abq_store_token_add(f->s, &t, &err));
	t.admin = "carol";
	t.hash = "04";
	OK(abq_store_token_add(f->s, &t, &err));
	t.admin = "al";
	t.label = "x";
	t.hash = "05";
	OK(abq_store_token_add(f->s, &t, &err));
	OK(abq_store_token_iter(f->s, NULL, cb_token_list, &l, &err));
	assert_string_equal(l.buf, "al/x,bob/ci,bob/-,bob/ci,carol/ci");
	memset(&l, 0, sizeof(l));
	OK(abq_store_token_iter(f->s, "bob", cb_token_list, &l, &err));
	assert_string_equal(l.buf, "bob/ci,bob/-,bob/ci");
	OK(abq_store_token_count(f->s, "bob", &n, &err));
	assert_int_equal(n, 3);
	OK(abq_store_token_count(f->s, NULL, &n, &err));
	assert_int_equal(n, 5);
	/* Touch. */
	OK(abq_store_token_touch(f->s, first, 777, &err));
	OK(abq_store_token_touch(f->s, 999999, 777, &err)); /* gone: not an error */
	assert_int_equal(abq_store_token_find(f->s, "0123abcd", &out, &err), 1);
	assert_int_equal(out.last_used, 777);
	abq_token_clear(&out);
	/* Delete by label: bob's "ci" tokens only. */
	OK(abq_store_token_delete(f->s, "bob", "ci", &n, &err));
	assert_int_equal(n, 2);
	assert_int_equal(abq_store_token_find(f->s, "0123abcd", &out, &err), 0);
	OK(abq_store_token_delete(f->s, "bob", "ci", &n, &err));
	assert_int_equal(n, 0);
	memset(&l, 0, sizeof(l));
	OK(abq_store_token_iter(f->s, NULL, cb_token_list, &l, &err));
	assert_string_equal(l.buf, "al/x,bob/-,carol/ci");
	/* Delete all of one administrator's. */
	OK(abq_store_token_delete(f->s, "carol", NULL, &n, &err));
	assert_int_equal(n, 1);
	OK(abq_store_token_count(f->s, NULL, &n, &err));
	assert_int_equal(n, 2);
	/* Bad arguments. */
	t.hash = NULL;
	FAILS(abq_store_token_add(f->s, &t, &err), "admin and hash are required");
	t.hash = "06";
	t.label = "";
	FAILS(abq_store_token_add(f->s, &t, &err), "empty label");
	FAILS(abq_store_token_find(f->s, "", &out, &err), "hash is required");
	FAILS(abq_store_token_delete(f->s, NULL, NULL, NULL, &err), "admin is required");
	FAILS(abq_store_token_delete(f->s, "bob", "", NULL, &err), "empty label");
	FAILS(abq_store_token_count(f->s, "", &n, &err), "empty admin");
	FAILS(abq_store_token_iter(f->s, NULL, NULL, NULL, &err), "no callback");
}

/* Sync state: round trip, overwrite, binary blobs, delete one and all. */
static void
test_syncstate(void **state)
{
	struct fx *f = FX(state);
	void *blob = NULL;
	size_t len = 0, count = 0;
	int64_t updated = 0;
	const uint8_t bin[4] = {0x00, 0xff, 0x01, 0x00};

	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "inbox", &blob, &len, NULL, &err), 0);
	assert_null(blob);
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "inbox", "key=1", 5, 100, &err));
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "foldersync", "fs", 2, 101, &err));
	OK(abq_store_syncstate_put(f->s, "b@x", "DEV", "inbox", "other", 5, 102, &err));
	/* DeviceIds compare without case. */
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "dev", "inbox", &blob, &len, &updated, &err), 1);
	assert_int_equal(len, 5);
	assert_string_equal((char *)blob, "key=1");
	assert_int_equal(updated, 100);
	free(blob);
	/* Overwrite, with binary bytes. */
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "inbox", bin, sizeof(bin), 200, &err));
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "inbox", &blob, &len, &updated, &err), 1);
	assert_int_equal(len, 4);
	assert_memory_equal(blob, bin, 4);
	assert_int_equal(updated, 200);
	free(blob);
	/* An empty state is a state. */
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "ping", NULL, 0, 1, &err));
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "ping", &blob, &len, NULL, &err), 1);
	assert_int_equal(len, 0);
	free(blob);
	/* Delete one, then all of the device (not another account's). */
	OK(abq_store_syncstate_delete(f->s, "a@x", "DEV", "inbox", &count, &err));
	assert_int_equal(count, 1);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "inbox", &blob, &len, NULL, &err), 0);
	OK(abq_store_syncstate_delete(f->s, "a@x", "DEV", "inbox", &count, &err));
	assert_int_equal(count, 0);
	OK(abq_store_syncstate_delete(f->s, "a@x", "Dev", NULL, &count, &err));
	assert_int_equal(count, 2);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "b@x", "DEV", "inbox", &blob, &len, NULL, &err), 1);
	free(blob);
	/* Bad arguments. */
	FAILS(abq_store_syncstate_put(f->s, "", "DEV", "inbox", "x", 1, 0, &err), "required");
	FAILS(abq_store_syncstate_get(f->s, "a@x", "DEV", NULL, &blob, &len, NULL, &err),
	      "required");
	FAILS(abq_store_syncstate_delete(f->s, "a@x", NULL, NULL, NULL, &err), "required");
	FAILS(abq_store_syncstate_delete(f->s, "a@x", "DEV", "", NULL, &err), "empty collection");
}

/* Deleting a device's records removes its sync state too (store.h). */
static void
test_syncstate_device_delete(void **state)
{
	struct fx *f = FX(state);
	void *blob = NULL;
	size_t len = 0, count = 0;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 1);
	put_device(f->s, "b@x", "DEV", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 1);
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "inbox", "1", 1, 1, &err));
	OK(abq_store_syncstate_put(f->s, "b@x", "DEV", "inbox", "2", 1, 1, &err));
	OK(abq_store_syncstate_put(f->s, "c@x", "DEV", "inbox", "3", 1, 1, &err));
	OK(abq_store_device_delete(f->s, "dev", "a@x", &count, &err));
	assert_int_equal(count, 1);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "inbox", &blob, &len, NULL, &err), 0);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "b@x", "DEV", "inbox", &blob, &len, NULL, &err), 1);
	free(blob);
	OK(abq_store_device_delete(f->s, "DEV", NULL, &count, &err));
	assert_int_equal(count, 1);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "b@x", "DEV", "inbox", &blob, &len, NULL, &err), 0);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "c@x", "DEV", "inbox", &blob, &len, NULL, &err), 0);
}

/*
 * What schema 11 added (contacts, calendars and tasks), undone to go back to
 * an older version.
 */
#define DROP_PIM "DROP TABLE pim_items; DROP TABLE pim_colls; DROP TABLE pim_counters; "

/*
 * What schema 10 added (SendMail ClientIds), undone to go back to an older
 * version (with what schema 11 added first).
 */
#define DROP_CLIENTIDS DROP_PIM "DROP TABLE clientids; "

/*
 * What schema 9 added (native folder ids), undone to go back to an older
 * version (with what schema 10 added first).
 */
#define DROP_FOLDERS DROP_CLIENTIDS "DROP TABLE folders; DROP TABLE folder_counters; "

/*
 * What schema 8 added (a device's Policy Status), undone to go back to an
 * older version (with what schema 9 added first).
 */
#define DROP_PROVISION_STATUS DROP_FOLDERS "ALTER TABLE devices DROP COLUMN provision_status; "

/*
 * What schema 7 added (account loggers), undone to go back to an older
 * version (with what schema 8 added first).
 */
#define DROP_LOGGERS DROP_PROVISION_STATUS "DROP TABLE loggers; "

/*
 * What schema 6 added (a device's remote wipe), undone to go back to an older
 * version (with what schema 7 added first).
 */
#define DROP_WIPE                                                                                  \
	DROP_LOGGERS                                                                               \
	"ALTER TABLE devices DROP COLUMN wipe; ALTER TABLE devices DROP COLUMN "                   \
	"wipe_account_only; "                                                                      \
	"ALTER TABLE devices DROP COLUMN wipe_by; ALTER TABLE devices DROP COLUMN wipe_at; "       \
	"ALTER TABLE devices DROP COLUMN wipe_acked_at; "

/*
 * A device's remote wipe is kept (schema 6); a store of version 5 gets the
 * columns, its devices none asked.
 */
static void
test_device_wipe(void **state)
{
	struct fx *f = FX(state);
	struct abq_device d = {0}, w = {0};

	put_device(f->s, "a@x", "DEV", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &w, &err), 1);
	assert_int_equal(w.wipe, ABQ_WIPE_NONE);
	w.wipe = ABQ_WIPE_ACKNOWLEDGED;
	w.wipe_account_only = true;
	w.wipe_by = strdup("root");
	w.wipe_at = 100;
	w.wipe_acked_at = 200;
	w.state = ABQ_STATE_BLOCKED;
	w.reason = ABQ_REASON_WIPE;
	OK(abq_store_device_put(f->s, &w, &err));
	assert_int_equal(abq_store_device_get(f->s, "a@x", "dev", &d, &err), 1);
	assert_int_equal(d.wipe, ABQ_WIPE_ACKNOWLEDGED);
	assert_true(d.wipe_account_only);
	assert_string_equal(d.wipe_by, "root");
	assert_int_equal(d.wipe_at, 100);
	assert_int_equal(d.wipe_acked_at, 200);
	assert_int_equal(d.reason, ABQ_REASON_WIPE);
	abq_device_clear(&d);
	w.wipe = (enum abq_wipe)7;
	assert_int_equal(abq_store_device_put(f->s, &w, &err), -1);
	MSG_HAS(err, "out of range");
	abq_device_clear(&w);
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_WIPE "PRAGMA user_version = 5");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_WIPE
		           "UPDATE abqd_meta SET value = '5' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.wipe, ABQ_WIPE_NONE);
	assert_null(d.wipe_by);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	abq_device_clear(&d);
}

/*
 * A version 1 store (the first schema, without the syncstate table) opened by
 * this binary becomes version 2 with its data intact.
 */
static void
test_migrate_v1_to_v2(void **state)
{
	struct fx *f = FX(state);
	struct abq_device d = {0};
	void *blob = NULL;
	size_t len = 0;
	sqlite3 *db;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 7);
	abq_store_close(&f->s);
	/* Version 1 is the current schema without the syncstate and templates tables. */
	db = raw_open(f->path);
	raw_exec(db, DROP_WIPE "DROP TABLE syncstate; DROP TABLE templates; DROP TABLE admins; "
	                       "DROP TABLE tokens; DROP TABLE meta; DROP INDEX history_account; "
	                       "PRAGMA user_version = 1");
	assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'syncstate'"),
	                 0);
	sqlite3_close(db);
	MSG_HAS(open_fails(f->url, NULL, ABQ_STORE_READONLY), "upgrade");
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_QUARANTINED);
	abq_device_clear(&d);
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "inbox", "k", 1, 1, &err));
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "inbox", &blob, &len, NULL, &err), 1);
	free(blob);
	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), ABQ_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM devices"), 1);
	sqlite3_close(db);
}

/*
 * A version 2 store (without the templates table) opened by this binary
 * becomes version 3 with its data intact, and takes templates.
 */
static void
test_migrate_v2_to_v3(void **state)
{
	struct fx *f = FX(state);
	struct abq_template t = {
	    .scope = ABQ_SCOPE_GLOBAL, .kind = "user-blocked", .locale = "fr", .subject = "Bloqué"};
	struct abq_template out;
	struct abq_device d = {0};
	sqlite3 *db;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_BLOCKED, ABQ_REASON_MODE, 7);
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "inbox", "k", 1, 1, &err));
	abq_store_close(&f->s);
	db = raw_open(f->path);
	raw_exec(db,
	         DROP_WIPE "DROP TABLE templates; DROP TABLE admins; DROP TABLE tokens; "
	                   "DROP TABLE meta; DROP INDEX history_account; PRAGMA user_version = 2");
	sqlite3_close(db);
	MSG_HAS(open_fails(f->url, NULL, ABQ_STORE_READONLY), "upgrade");
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	abq_device_clear(&d);
	OK(abq_store_template_put(f->s, &t, &err));
	assert_int_equal(
	    abq_store_template_get(f->s, ABQ_SCOPE_GLOBAL, NULL, "user-blocked", "fr", &out, &err),
	    1);
	assert_string_equal(out.subject, "Bloqué");
	abq_template_clear(&out);
	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), ABQ_STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM syncstate"), 1);
	sqlite3_close(db);
}

/*
 * A version 3 store (without the admins and tokens tables) opened by this
 * binary becomes version 4 with its data intact, and takes administrators
 * and tokens. On PostgreSQL the same, through abqd_meta.
 */
static void
test_migrate_v3_to_v4(void **state)
{
	struct fx *f = FX(state);
	struct abq_template t = {
	    .scope = ABQ_SCOPE_GLOBAL, .kind = "user-blocked", .locale = "fr", .subject = "Bloqué"};
	struct abq_admin a = {.name = "root", .password_hash = "$y$x", .created_at = 5};
	struct abq_token k = {.admin = "root", .hash = "00ff"};
	struct abq_admin out = {0};
	struct abq_device d = {0};
	size_t n = 0;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_BLOCKED, ABQ_REASON_MODE, 7);
	OK(abq_store_template_put(f->s, &t, &err));
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);

		raw_exec(db, DROP_WIPE "DROP TABLE admins; DROP TABLE tokens; DROP TABLE meta; "
		                       "DROP INDEX history_account; PRAGMA user_version = 3");
		sqlite3_close(db);
		MSG_HAS(open_fails(f->url, NULL, ABQ_STORE_READONLY), "upgrade");
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_WIPE
		           "DROP TABLE admins; DROP TABLE tokens; "
		           "DROP INDEX history_account; "
		           "UPDATE abqd_meta SET value = '3' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	abq_device_clear(&d);
	OK(abq_store_template_iter(f->s, COUNTER(struct abq_template), &n, &err));
	assert_int_equal(n, 1);
	OK(abq_store_admin_put(f->s, &a, &err));
	OK(abq_store_token_add(f->s, &k, &err));
	assert_int_equal(abq_store_admin_get(f->s, "root", &out, &err), 1);
	assert_int_equal(out.created_at, 5);
	abq_admin_clear(&out);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);

		assert_int_equal(raw_int(db, "PRAGMA user_version"), ABQ_STORE_SCHEMA_VERSION);
		sqlite3_close(db);
	} else {
		/* Reopening finds the current version: nothing to migrate, the rows are there. */
		abq_store_close(&f->s);
		fx_open(f, ABQ_STORE_READONLY);
		OK(abq_store_token_count(f->s, "root", &n, &err));
		assert_int_equal(n, 1);
	}
}

/* Collect "id:account:device:file:until:by:at" of every logger. */
static int
cb_logger_list(void *arg, const struct abq_logger *l)
{
	list_add(arg, "%lld:%s:%s:%s:%lld:%s:%lld", (long long)l->id, l->account, ns(l->device_id),
	         l->file, (long long)l->until, ns(l->created_by), (long long)l->created_at);
	return 0;
}

/*
 * Account loggers (schema 7): added with new ids, listed by id, one removed
 * or all; bad arguments refused; a store of version 6 gets the table, empty.
 */
static void
test_loggers(void **state)
{
	struct fx *f = FX(state);
	struct abq_logger a = {.account = "a@x",
	                       .file = "/var/log/a.log",
	                       .until = 1000,
	                       .created_by = "root",
	                       .created_at = 10};
	struct abq_logger b = {
	    .account = "b@x", .device_id = "DEV", .file = "/tmp/b", .until = 2000};
	struct list l;
	size_t n = 9;

	OK(abq_store_logger_add(f->s, &a, &err));
	OK(abq_store_logger_add(f->s, &b, &err));
	assert_true(a.id > 0 && b.id > a.id);
	memset(&l, 0, sizeof(l));
	OK(abq_store_logger_iter(f->s, cb_logger_list, &l, &err));
	char want[256];
	snprintf(want, sizeof(want),
	         "%lld:a@x:-:/var/log/a.log:1000:root:10,%lld:b@x:DEV:/tmp/b:2000:-:0",
	         (long long)a.id, (long long)b.id);
	assert_string_equal(l.buf, want);
	OK(abq_store_logger_delete(f->s, a.id, &n, &err));
	assert_int_equal(n, 1);
	OK(abq_store_logger_delete(f->s, a.id, &n, &err));
	assert_int_equal(n, 0);
	/* Ids are not reused. */
	OK(abq_store_logger_add(f->s, &a, &err));
	assert_true(a.id > b.id);
	OK(abq_store_logger_delete(f->s, 0, &n, &err));
	assert_int_equal(n, 2);
	memset(&l, 0, sizeof(l));
	OK(abq_store_logger_iter(f->s, cb_logger_list, &l, &err));
	assert_string_equal(l.buf, "");
	a.account = NULL;
	FAILS(abq_store_logger_add(f->s, &a, &err), "account and file are required");
	a.account = "a@x";
	a.device_id = "";
	FAILS(abq_store_logger_add(f->s, &a, &err), "empty device_id");
	FAILS(abq_store_logger_delete(f->s, -1, NULL, &err), "bad id");
	FAILS(abq_store_logger_iter(f->s, NULL, NULL, &err), "no callback");

	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_LOGGERS "PRAGMA user_version = 6");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_LOGGERS
		           "UPDATE abqd_meta SET value = '6' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	memset(&l, 0, sizeof(l));
	OK(abq_store_logger_iter(f->s, cb_logger_list, &l, &err));
	assert_string_equal(l.buf, "");
	b.device_id = NULL;
	OK(abq_store_logger_add(f->s, &b, &err));
	assert_true(b.id > 0);
}

/*
 * The Policy Status a device acknowledged is kept (schema 8); a store of
 * version 7 gets the column, its devices none reported.
 */
static void
test_device_provision_status(void **state)
{
	struct fx *f = FX(state);
	struct abq_device d = {0}, w = {0};

	put_device(f->s, "a@x", "DEV", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &w, &err), 1);
	assert_int_equal(w.provision_status, 0);
	w.provision_status = 3;
	w.state = ABQ_STATE_BLOCKED;
	w.reason = ABQ_REASON_POLICY;
	OK(abq_store_device_put(f->s, &w, &err));
	assert_int_equal(abq_store_device_get(f->s, "a@x", "dev", &d, &err), 1);
	assert_int_equal(d.provision_status, 3);
	assert_int_equal(d.reason, ABQ_REASON_POLICY);
	abq_device_clear(&d);
	w.provision_status = -1;
	FAILS(abq_store_device_put(f->s, &w, &err), "out of range");
	abq_device_clear(&w);
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_PROVISION_STATUS "PRAGMA user_version = 7");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_PROVISION_STATUS
		           "UPDATE abqd_meta SET value = '7' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.provision_status, 0);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	assert_int_equal(d.reason, ABQ_REASON_POLICY);
	d.provision_status = 2;
	OK(abq_store_device_put(f->s, &d, &err));
	abq_device_clear(&d);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.provision_status, 2);
	abq_device_clear(&d);
}

/* ---- native folder ids ---------------------------------------------------- */

/* A folder as "id:mailbox:mailbox_id:uidvalidity:parent", in iteration order. */
static int
cb_folder_list(void *arg, const struct abq_folder *fo)
{
	list_add(arg, "%s:%s:%s:%lld:%s", fo->folder_id, fo->mailbox, ns(fo->mailbox_id),
	         (long long)fo->uidvalidity, ns(fo->parent_id));
	return 0;
}

/* An account's folders (every account's: NULL) as one string. */
static const char *
folders_of(struct abq_store *s, const char *account)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_folder_iter(s, account, cb_folder_list, &l, &err));
	return l.buf;
}

/* The id folder_assign gives mailbox, checking that it was new (want_rc 0) or not (1). */
static const char *
assign(struct abq_store *s, const char *account, const char *mailbox, const char *mailbox_id,
       const char *parent, int want_rc)
{
	static char id[32];
	struct abq_folder in = {.account = (char *)account,
	                        .folder_id = "ignored",
	                        .mailbox = (char *)mailbox,
	                        .mailbox_id = (char *)mailbox_id,
	                        .uidvalidity = 7,
	                        .parent_id = (char *)parent,
	                        .created = 100};
	struct abq_folder out;
	int rc;

	err = NULL;
	rc = abq_store_folder_assign(s, &in, &out, &err);
	if (rc != want_rc)
		fail_msg("assign %s: %d, not %d (%s)", mailbox, rc, want_rc, err ? err : "-");
	assert_string_equal(out.account, account);
	assert_string_equal(out.mailbox, mailbox);
	snprintf(id, sizeof(id), "%s", out.folder_id);
	abq_folder_clear(&out);
	return id;
}

/*
 * The folder-id map: short ids from a per-account counter, one per mailbox,
 * found by id, name and MAILBOXID; a rename keeps the ids (the children's
 * names follow with a delimiter, counted in characters: UTF-8 names); a
 * delete takes the children too; ids are never given again; the counters
 * restore; bad arguments are refused.
 */
static void
test_folders(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_folder fo;
	struct abq_folder_counter c = {.account = "c@x", .last_id = 20};
	struct abq_folder r = {.account = "c@x", .folder_id = "10", .mailbox = "INBOX"};
	struct list l;
	size_t n = 9;

	assert_string_equal(assign(s, "a@x", "INBOX", NULL, NULL, 0), "1");
	assert_string_equal(assign(s, "a@x", "Work", NULL, NULL, 0), "2");
	assert_string_equal(assign(s, "a@x", "Work/Projects", NULL, "2", 0), "3");
	assert_string_equal(assign(s, "a@x", "Work/Projects/2025", NULL, "3", 0), "4");
	assert_string_equal(assign(s, "a@x", "Work2", NULL, NULL, 0), "5");
	assert_string_equal(assign(s, "a@x", "Entwürfe", "M-E", NULL, 0), "6");
	assert_string_equal(assign(s, "a@x", "Entwürfe/Ä", NULL, "6", 0), "7");
	/* The same mailbox keeps its id; another account counts from 1. */
	assert_string_equal(assign(s, "a@x", "INBOX", NULL, NULL, 1), "1");
	assert_string_equal(assign(s, "b@x", "INBOX", NULL, NULL, 0), "1");

	assert_int_equal(abq_store_folder_get(s, "a@x", "3", &fo, &err), 1);
	assert_string_equal(fo.mailbox, "Work/Projects");
	assert_string_equal(fo.parent_id, "2");
	assert_null(fo.mailbox_id);
	assert_int_equal(fo.uidvalidity, 7);
	assert_int_equal(fo.created, 100);
	abq_folder_clear(&fo);
	assert_int_equal(abq_store_folder_get(s, "a@x", "99", &fo, &err), 0);
	assert_int_equal(abq_store_folder_get(s, "c@x", "1", &fo, &err), 0);
	assert_int_equal(abq_store_folder_by_mailbox(s, "a@x", "Work2", &fo, &err), 1);
	assert_string_equal(fo.folder_id, "5");
	abq_folder_clear(&fo);
	assert_int_equal(abq_store_folder_by_mailbox(s, "a@x", "work2", &fo, &err), 0);
	assert_int_equal(abq_store_folder_by_mailbox_id(s, "a@x", "M-E", &fo, &err), 1);
	assert_string_equal(fo.folder_id, "6");
	assert_string_equal(fo.mailbox, "Entwürfe");
	abq_folder_clear(&fo);
	assert_int_equal(abq_store_folder_by_mailbox_id(s, "b@x", "M-E", &fo, &err), 0);
	/* By name, bytewise: a parent before its children. */
	assert_string_equal(folders_of(s, "a@x"),
	                    "6:Entwürfe:M-E:7:-,7:Entwürfe/Ä:-:7:6,1:INBOX:-:7:-,2:Work:-:7:-,"
	                    "3:Work/Projects:-:7:2,4:Work/Projects/2025:-:7:3,5:Work2:-:7:-");
	assert_string_equal(folders_of(s, "b@x"), "1:INBOX:-:7:-");

	/* A parent renamed: its children follow, Work2 (no delimiter after Work) does not. */
	OK(abq_store_folder_rename(s, "a@x", "2", "Job", NULL, '/', &n, &err));
	assert_int_equal(n, 3);
	assert_string_equal(folders_of(s, "a@x"),
	                    "6:Entwürfe:M-E:7:-,7:Entwürfe/Ä:-:7:6,1:INBOX:-:7:-,2:Job:-:7:-,"
	                    "3:Job/Projects:-:7:2,4:Job/Projects/2025:-:7:3,5:Work2:-:7:-");
	OK(abq_store_folder_rename(s, "a@x", "6", "Brouillons", NULL, '/', &n, &err));
	assert_int_equal(n, 2);
	assert_int_equal(abq_store_folder_by_mailbox(s, "a@x", "Brouillons/Ä", &fo, &err), 1);
	assert_string_equal(fo.folder_id, "7");
	abq_folder_clear(&fo);
	/* Moved under another parent; then only the parent changes. */
	OK(abq_store_folder_rename(s, "a@x", "5", "Job/Old", "2", '\0', &n, &err));
	assert_int_equal(n, 1);
	OK(abq_store_folder_rename(s, "a@x", "3", "Job/Projects", "5", '/', &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(folders_of(s, "a@x"),
	                    "6:Brouillons:M-E:7:-,7:Brouillons/Ä:-:7:6,1:INBOX:-:7:-,2:Job:-:7:-,"
	                    "5:Job/Old:-:7:2,3:Job/Projects:-:7:5,4:Job/Projects/2025:-:7:3");
	FAILS(abq_store_folder_rename(s, "a@x", "3", "INBOX", NULL, '/', &n, &err),
	      "has folder id 1 already");
	assert_int_equal(n, 0);
	OK(abq_store_folder_rename(s, "a@x", "99", "Nowhere", NULL, '/', &n, &err));
	assert_int_equal(n, 0);

	OK(abq_store_folder_set_uidvalidity(s, "a@x", "3", 4242, &err));
	assert_int_equal(abq_store_folder_get(s, "a@x", "3", &fo, &err), 1);
	assert_int_equal(fo.uidvalidity, 4242);
	abq_folder_clear(&fo);
	FAILS(abq_store_folder_set_uidvalidity(s, "a@x", "99", 1, &err), "no folder 99 of a@x");

	/* A delete takes the children; without a delimiter, the folder alone. */
	OK(abq_store_folder_delete(s, "a@x", "2", '/', &n, &err));
	assert_int_equal(n, 4);
	OK(abq_store_folder_delete(s, "a@x", "2", '/', &n, &err));
	assert_int_equal(n, 0);
	OK(abq_store_folder_delete(s, "a@x", "6", '\0', &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(folders_of(s, "a@x"), "7:Brouillons/Ä:-:7:6,1:INBOX:-:7:-");
	/* Ids are never given again, not even those of deleted folders. */
	assert_string_equal(assign(s, "a@x", "Job", NULL, NULL, 0), "8");
	assert_string_equal(folders_of(s, NULL), "7:Brouillons/Ä:-:7:6,1:INBOX:-:7:-,8:Job:-:7:-,"
	                                         "1:INBOX:-:7:-");

	/* Restores: a folder under its id, a counter; the counter never goes back. */
	OK(abq_store_folder_restore(s, &r, &err));
	assert_string_equal(assign(s, "c@x", "Sent", NULL, NULL, 0), "11");
	OK(abq_store_folder_counter_restore(s, &c, &err));
	c.last_id = 3;
	OK(abq_store_folder_counter_restore(s, &c, &err));
	assert_string_equal(assign(s, "c@x", "Trash", NULL, NULL, 0), "21");
	memset(&l, 0, sizeof(l));
	OK(abq_store_folder_counter_iter(s, COUNTER(struct abq_folder_counter), &l.n, &err));
	assert_int_equal(l.n, 3);

	/* Bad arguments. */
	r.mailbox = NULL;
	FAILS(abq_store_folder_assign(s, &r, &fo, &err), "account and mailbox are required");
	r.mailbox = "X";
	r.mailbox_id = "";
	FAILS(abq_store_folder_assign(s, &r, &fo, &err), "empty mailbox_id");
	FAILS(abq_store_folder_get(s, "a@x", NULL, &fo, &err), "folder_id are required");
	FAILS(abq_store_folder_by_mailbox_id(s, "", "M", &fo, &err), "mailbox_id are required");
	FAILS(abq_store_folder_iter(s, NULL, NULL, NULL, &err), "no callback");
	FAILS(abq_store_folder_iter(s, "", cb_folder_list, &l, &err), "empty account");
	FAILS(abq_store_folder_rename(s, "a@x", "1", "INBOX", "1", '/', NULL, &err),
	      "its own parent");
	FAILS(abq_store_folder_rename(s, "a@x", "1", NULL, NULL, '/', NULL, &err),
	      "mailbox are required");
	FAILS(abq_store_folder_delete(s, NULL, "1", '/', NULL, &err), "folder_id are required");
	FAILS(abq_store_folder_restore(s, &(struct abq_folder){.account = "a@x"}, &err),
	      "folder_id and mailbox are required");
}

/*
 * One listing through folder_list: spec is "mailbox=uidvalidity[@mailboxid]"
 * separated by blanks (uidvalidity 0: not known); the answer's ids as
 * "1 2 ?" (? for an id the probe asks about), checked against want_rc.
 */
static const char *
listing(struct abq_store *s, const char *account, const char *spec, bool probe, int want_rc)
{
	static char out[512];
	struct abq_folder l[16];
	char buf[512], *save = NULL, **ids = NULL;
	size_t n = 0, len = 0;
	int rc;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *w = strtok_r(buf, " ", &save); w != NULL && n < 16;
	     w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '='), *at = strchr(w, '@');
		memset(&l[n], 0, sizeof(l[n]));
		*eq = '\0';
		if (at != NULL)
			*at = '\0';
		l[n].mailbox = w;
		l[n].uidvalidity = strtoll(eq + 1, NULL, 10);
		l[n++].mailbox_id = at != NULL ? at + 1 : NULL;
	}
	err = NULL;
	rc = abq_store_folder_list(s, account, l, n, '/', probe, &ids, NULL, &err);
	if (rc != want_rc)
		fail_msg("folder_list %s: %d, not %d (%s)", spec, rc, want_rc, err ? err : "-");
	out[0] = '\0';
	for (size_t i = 0; i < n && ids != NULL; i++) {
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "",
		                        ids[i] != NULL ? ids[i] : "?");
		free(ids[i]);
	}
	free(ids);
	return out;
}

/*
 * A listing's ids (native FolderSync): a probe asks for what is not known
 * (nothing when every name is known), a folder renamed on the server keeps
 * its id when its MAILBOXID or a unique UIDVALIDITY tells, its children with
 * it; a swap or two folders with one UIDVALIDITY stay new folders.
 */
static void
test_folder_list(void **state)
{
	struct abq_store *s = FX(state)->s;
	size_t n = 0;
	char **ids = NULL;

	/* First listing: the probe asks for every name, then all are new (by name). */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Work=0 Work/P=0 Old=0", true, 1), "? ? ? ?");
	assert_string_equal(folders_of(s, "a@x"), "");
	assert_string_equal(listing(s, "a@x", "INBOX=11 Work=12 Work/P=13 Old=-1", true, 0),
	                    "1 3 4 2");
	assert_string_equal(folders_of(s, "a@x"),
	                    "1:INBOX:-:11:-,2:Old:-:0:-,3:Work:-:12:-,4:Work/P:-:13:3");
	/* Nothing new: the probe answers the ids (a \Noselect one is not asked again). */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Work=0 Work/P=0 Old=-1", true, 0),
	                    "1 3 4 2");
	/* A parent renamed on the server: the probe asks for the new names only. */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Job=0 Job/P=0 Old=-1", true, 1), "1 ? ? 2");
	assert_string_equal(listing(s, "a@x", "INBOX=0 Job/P=13 Job=12 Old=-1", false, 0),
	                    "1 4 3 2");
	assert_string_equal(folders_of(s, "a@x"),
	                    "1:INBOX:-:11:-,3:Job:-:12:-,4:Job/P:-:13:3,2:Old:-:0:-");
	/* Moved under another parent: the parent id follows the listing. */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Job=0 Old=-1 Old/P=13", false, 0),
	                    "1 3 2 4");
	assert_string_equal(folders_of(s, "a@x"),
	                    "1:INBOX:-:11:-,3:Job:-:12:-,2:Old:-:0:-,4:Old/P:-:13:2");
	/* A swap (Job -> T, Old/P -> Job): the names kept stay, T is new, no id reused. */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Job=13 Old=-1 T=12", false, 0), "1 3 2 5");
	/* Two unknown folders with one UIDVALIDITY, or two gone ones: new folders. */
	assert_string_equal(listing(s, "a@x", "INBOX=0 Job=0 Old=-1 T=0 A=13 B=13", false, 0),
	                    "1 3 2 5 6 7");
	assert_string_equal(listing(s, "b@x", "INBOX=1 X=5 Y=5", false, 0), "1 2 3");
	assert_string_equal(listing(s, "b@x", "INBOX=1 Z=5", false, 0), "1 4");
	/* An unknown UIDVALIDITY never matches. */
	assert_string_equal(listing(s, "b@x", "INBOX=1 W=0", false, 0), "1 5");
	/* MAILBOXID (RFC 8474) decides over UIDVALIDITY, and is recorded. */
	assert_string_equal(listing(s, "c@x", "INBOX=1@M1 S=2@M2 U=3@M3", false, 0), "1 2 3");
	assert_string_equal(listing(s, "c@x", "INBOX=1@M1 R=3@M2 Q=2@M3", false, 0), "1 2 3");
	assert_string_equal(folders_of(s, "c@x"), "1:INBOX:M1:1:-,3:Q:M3:2:-,2:R:M2:3:-");
	/* The map's UIDVALIDITY filled for a folder that had none (an older map). */
	assert_string_equal(assign(s, "d@x", "INBOX", NULL, NULL, 0), "1");
	OK(abq_store_folder_set_uidvalidity(s, "d@x", "1", 0, &err));
	assert_string_equal(listing(s, "d@x", "INBOX=0", true, 1), "?");
	assert_string_equal(listing(s, "d@x", "INBOX=9", true, 0), "1");
	assert_string_equal(folders_of(s, "d@x"), "1:INBOX:-:9:-");

	FAILS(abq_store_folder_list(s, NULL, NULL, 0, '/', false, &ids, &n, &err),
	      "account and ids_r are required");
	FAILS(abq_store_folder_list(s, "a@x", &(struct abq_folder){.mailbox = ""}, 1, '/', false,
	                            &ids, &n, &err),
	      "empty mailbox");
}

#define FOLDER_WRITERS 2
#define FOLDERS_EACH   100

/*
 * One process of test_folders_concurrent: FOLDERS_EACH mailboxes every writer
 * assigns too ("shared/N") and as many of its own, interleaved, each
 * assignment a transaction of its own.
 */
static int
folder_writer(const char *url, int w)
{
	struct abq_store *s = abq_store_open(url, NULL, 0, &err);
	char mailbox[64];

	if (s == NULL) {
		fprintf(stderr, "folder writer %d: open: %s\n", w, err);
		return 1;
	}
	for (int i = 0; i < 2 * FOLDERS_EACH; i++) {
		struct abq_folder in = {.account = "a@x", .mailbox = mailbox}, out;

		if (i % 2 == 0)
			snprintf(mailbox, sizeof(mailbox), "shared/%d", i / 2);
		else
			snprintf(mailbox, sizeof(mailbox), "own%d/%d", w, i / 2);
		if (abq_store_folder_assign(s, &in, &out, &err) < 0) {
			fprintf(stderr, "folder writer %d, %s: %s\n", w, mailbox, err);
			abq_store_close(&s);
			return 1;
		}
		abq_folder_clear(&out);
	}
	abq_store_close(&s);
	return 0;
}

/* Mark a folder's id as seen (ids 1 .. the expected count, each once). */
static int
cb_folder_id_seen(void *arg, const struct abq_folder *fo)
{
	char *seen = arg;
	long id = strtol(fo->folder_id, NULL, 10);
	int total = FOLDERS_EACH * (FOLDER_WRITERS + 1);

	if (id < 1 || id > total || seen[id])
		fail_msg("folder id %s given twice or out of range", fo->folder_id);
	seen[id] = 1;
	return 0;
}

/*
 * Two handles (processes) assigning at once: a mailbox both ask for gets one
 * id, and no id is handed out twice: the ids are exactly 1..N.
 */
static void
test_folders_concurrent(void **state)
{
	struct fx *f = FX(state);
	char seen[FOLDERS_EACH * (FOLDER_WRITERS + 1) + 1] = {0};
	pid_t pid[FOLDER_WRITERS];
	size_t n = 0;
	int w, status;

	for (w = 0; w < FOLDER_WRITERS; w++) {
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0)
			_exit(folder_writer(f->url, w));
	}
	for (w = 0; w < FOLDER_WRITERS; w++) {
		assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	OK(abq_store_folder_iter(f->s, "a@x", COUNTER(struct abq_folder), &n, &err));
	assert_int_equal(n, FOLDERS_EACH * (FOLDER_WRITERS + 1));
	OK(abq_store_folder_iter(f->s, "a@x", cb_folder_id_seen, seen, &err));
	assign(f->s, "a@x", "shared/0", NULL, NULL, 1);
	assert_string_equal(assign(f->s, "a@x", "new", NULL, NULL, 0), "301");
}

/*
 * Folder ids survive a restart; a store of version 8 keeps its data and gets
 * the (empty) map, whose ids start at 1.
 */
static void
test_folders_upgrade(void **state)
{
	struct fx *f = FX(state);
	struct abq_device d = {0};
	void *blob = NULL;
	size_t len = 0;

	assert_string_equal(assign(f->s, "a@x", "INBOX", "MB1", NULL, 0), "1");
	assert_string_equal(assign(f->s, "a@x", "Sent", NULL, NULL, 0), "2");
	abq_store_close(&f->s);
	fx_open(f, 0);
	assert_string_equal(assign(f->s, "a@x", "Sent", NULL, NULL, 1), "2");
	assert_string_equal(folders_of(f->s, "a@x"), "1:INBOX:MB1:7:-,2:Sent:-:7:-");

	put_device(f->s, "a@x", "DEV", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 1);
	OK(abq_store_syncstate_put(f->s, "a@x", "DEV", "foldersync", "k=1", 3, 5, &err));
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_FOLDERS "PRAGMA user_version = 8");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_FOLDERS
		           "UPDATE abqd_meta SET value = '8' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_QUARANTINED);
	abq_device_clear(&d);
	assert_int_equal(
	    abq_store_syncstate_get(f->s, "a@x", "DEV", "foldersync", &blob, &len, NULL, &err), 1);
	assert_string_equal(blob, "k=1");
	free(blob);
	assert_string_equal(folders_of(f->s, NULL), "");
	assert_string_equal(assign(f->s, "a@x", "INBOX", NULL, NULL, 0), "1");
}

/* ---- SendMail ClientIds ---------------------------------------------------- */

/* What reserving (account, device_id, client_id) at now answers. */
static enum abq_clientid
reserve(struct abq_store *s, const char *account, const char *device_id, const char *client_id,
        int64_t now)
{
	enum abq_clientid r = 0;

	OK(abq_store_clientid_reserve(s, account, device_id, client_id, now, &r, &err));
	return r;
}

/* "sent@at", "sending@at" or "-": the record of a ClientId. */
static const char *
clientid_of(struct abq_store *s, const char *account, const char *device_id, const char *client_id)
{
	static char buf[64];
	int64_t at = 0;
	bool sent = false;
	int rc = abq_store_clientid_get(s, account, device_id, client_id, &at, &sent, &err);

	assert_int_not_equal(rc, -1);
	if (rc == 0)
		return "-";
	snprintf(buf, sizeof(buf), "%s@%lld", sent ? "sent" : "sending", (long long)at);
	return buf;
}

/*
 * A ClientId is reserved once: a repetition while it is being sent is told
 * SENDING, after it was sent SENT; a release lets the retry through; a
 * reservation left by a dead process is taken over after ABQ_CLIENTID_STALE.
 * Keys: the device without case, the ClientId exactly, per account.
 */
static void
test_clientids(void **state)
{
	struct fx *f = FX(state);
	const int64_t t = 1000000;
	char longid[ABQ_CLIENTID_MAX + 2];
	size_t count = 0;

	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "c1"), "-");
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", t), ABQ_CLIENTID_RESERVED);
	assert_string_equal(clientid_of(f->s, "a@x", "dev", "c1"), "sending@1000000");
	assert_int_equal(reserve(f->s, "a@x", "dev", "c1", t + 5), ABQ_CLIENTID_SENDING);
	/* Another ClientId, account or device; the same ClientId in another case. */
	assert_int_equal(reserve(f->s, "a@x", "DEV", "C1", t), ABQ_CLIENTID_RESERVED);
	assert_int_equal(reserve(f->s, "b@x", "DEV", "c1", t), ABQ_CLIENTID_RESERVED);
	assert_int_equal(reserve(f->s, "a@x", "DEV2", "c1", t), ABQ_CLIENTID_RESERVED);
	/* Sent: a repetition is SENT, a release does not undo it. */
	OK(abq_store_clientid_sent(f->s, "a@x", "Dev", "c1", t + 10, &err));
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "c1"), "sent@1000010");
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", t + 20), ABQ_CLIENTID_SENT);
	OK(abq_store_clientid_release(f->s, "a@x", "DEV", "c1", &err));
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", t + 20), ABQ_CLIENTID_SENT);
	/* Not sent: released, the retry is reserved anew. */
	OK(abq_store_clientid_release(f->s, "a@x", "dev", "C1", &err));
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "C1"), "-");
	assert_int_equal(reserve(f->s, "a@x", "DEV", "C1", t + 30), ABQ_CLIENTID_RESERVED);
	/* A reservation nobody finished: SENDING until it is stale, then taken over. */
	assert_int_equal(reserve(f->s, "a@x", "DEV", "C1", t + 30 + ABQ_CLIENTID_STALE - 1),
	                 ABQ_CLIENTID_SENDING);
	assert_int_equal(reserve(f->s, "a@x", "DEV", "C1", t + 30 + ABQ_CLIENTID_STALE + 1),
	                 ABQ_CLIENTID_RESERVED);
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "C1"), "sending@1000931");
	/* A sent record is not stale: it stays sent until it is pruned. */
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", t + 10 + ABQ_CLIENTID_STALE + 1),
	                 ABQ_CLIENTID_SENT);
	/* Sent written again when its record went meanwhile. */
	OK(abq_store_clientid_sent(f->s, "c@x", "DEV", "gone", t, &err));
	assert_string_equal(clientid_of(f->s, "c@x", "DEV", "gone"), "sent@1000000");
	/* The device's ClientIds go (not another account's or device's). */
	OK(abq_store_clientid_delete(f->s, "a@x", "dev", &count, &err));
	assert_int_equal(count, 2);
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "c1"), "-");
	assert_string_equal(clientid_of(f->s, "b@x", "DEV", "c1"), "sending@1000000");
	assert_string_equal(clientid_of(f->s, "a@x", "DEV2", "c1"), "sending@1000000");
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", t + 40), ABQ_CLIENTID_RESERVED);
	/* Bad arguments. */
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	enum abq_clientid r;
	FAILS(abq_store_clientid_reserve(f->s, "a@x", "DEV", longid, t, &r, &err), "too long");
	longid[ABQ_CLIENTID_MAX] = '\0';
	assert_int_equal(reserve(f->s, "a@x", "DEV", longid, t + 40), ABQ_CLIENTID_RESERVED);
	FAILS(abq_store_clientid_reserve(f->s, "a@x", "DEV", "", t, &r, &err), "required");
	FAILS(abq_store_clientid_reserve(f->s, "a@x", NULL, "c", t, &r, &err), "required");
	FAILS(abq_store_clientid_reserve(f->s, "a@x", "DEV", "c", t, NULL, &err), "result");
	FAILS(abq_store_clientid_sent(f->s, "", "DEV", "c", t, &err), "required");
	FAILS(abq_store_clientid_release(f->s, "a@x", "DEV", NULL, &err), "required");
	FAILS(abq_store_clientid_delete(f->s, "a@x", "", NULL, &err), "required");
}

/*
 * Pruned at every reservation: records older than ABQ_CLIENTID_KEEP (every
 * device's), and a device's oldest beyond ABQ_CLIENTID_PER_DEVICE.
 */
static void
test_clientids_prune(void **state)
{
	struct fx *f = FX(state);
	const int64_t t = 1000000;
	char id[32];

	assert_int_equal(reserve(f->s, "a@x", "OLD", "c1", t), ABQ_CLIENTID_RESERVED);
	OK(abq_store_clientid_sent(f->s, "a@x", "OLD", "c1", t, &err));
	assert_int_equal(reserve(f->s, "b@x", "DEV", "c1", t + 100), ABQ_CLIENTID_RESERVED);
	/* At the limit both stay; a second later the older one goes. */
	assert_int_equal(reserve(f->s, "c@x", "DEV", "x", t + ABQ_CLIENTID_KEEP),
	                 ABQ_CLIENTID_RESERVED);
	assert_string_equal(clientid_of(f->s, "a@x", "OLD", "c1"), "sent@1000000");
	assert_int_equal(reserve(f->s, "c@x", "DEV", "y", t + ABQ_CLIENTID_KEEP + 1),
	                 ABQ_CLIENTID_RESERVED);
	assert_string_equal(clientid_of(f->s, "a@x", "OLD", "c1"), "-");
	assert_string_equal(clientid_of(f->s, "b@x", "DEV", "c1"), "sending@1000100");
	/* Pruned, a ClientId is new again. */
	assert_int_equal(reserve(f->s, "a@x", "OLD", "c1", t + ABQ_CLIENTID_KEEP + 2),
	                 ABQ_CLIENTID_RESERVED);

	/* The cap per device: one transaction for speed, a second apart each. */
	OK(abq_store_begin(f->s, &err));
	for (int i = 0; i <= ABQ_CLIENTID_PER_DEVICE; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(reserve(f->s, "d@x", "DEV", id, t + i), ABQ_CLIENTID_RESERVED);
	}
	OK(abq_store_commit(f->s, &err));
	assert_string_equal(clientid_of(f->s, "d@x", "DEV", "m0"), "-");
	assert_string_equal(clientid_of(f->s, "d@x", "DEV", "m1"), "sending@1000001");
	snprintf(id, sizeof(id), "m%d", ABQ_CLIENTID_PER_DEVICE);
	assert_string_not_equal(clientid_of(f->s, "d@x", "DEV", id), "-");
	/* Another device of the account is not counted with it. */
	assert_string_equal(clientid_of(f->s, "c@x", "DEV", "y"), "sending@1259201");
}

/* Processes reserving the same ClientIds at once, and how many they reserved. */
#define CLIENTID_WRITERS 3
#define CLIENTIDS_EACH   20

/* A child: reserve c0 .. c19 of one device; exits with how many it got (255: failure). */
static int
clientid_writer(const char *url, int w)
{
	struct abq_store *s = abq_store_open(url, NULL, 0, &err);
	char id[16];
	int got = 0;

	if (s == NULL) {
		fprintf(stderr, "clientid writer %d: open: %s\n", w, err);
		return 255;
	}
	for (int i = 0; i < CLIENTIDS_EACH; i++) {
		enum abq_clientid r;

		snprintf(id, sizeof(id), "c%d", i);
		if (abq_store_clientid_reserve(s, "a@x", "DEV", id, 1000, &r, &err) < 0) {
			fprintf(stderr, "clientid writer %d, %s: %s\n", w, id, err);
			abq_store_close(&s);
			return 255;
		}
		got += r == ABQ_CLIENTID_RESERVED;
	}
	abq_store_close(&s);
	return got;
}

/* Two requests with one ClientId at once: exactly one of them sends it. */
static void
test_clientids_concurrent(void **state)
{
	struct fx *f = FX(state);
	pid_t pid[CLIENTID_WRITERS];
	int w, status, total = 0;

	for (w = 0; w < CLIENTID_WRITERS; w++) {
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0)
			_exit(clientid_writer(f->url, w));
	}
	for (w = 0; w < CLIENTID_WRITERS; w++) {
		assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
		assert_true(WIFEXITED(status));
		assert_int_not_equal(WEXITSTATUS(status), 255);
		total += WEXITSTATUS(status);
	}
	assert_int_equal(total, CLIENTIDS_EACH);
	assert_int_equal(reserve(f->s, "a@x", "dev", "c0", 1001), ABQ_CLIENTID_SENDING);
}

/*
 * A store of version 9 keeps its data and gets the (empty) table; removing a
 * device removes its ClientIds; the rewrite of bare accounts carries them.
 */
static void
test_clientids_upgrade(void **state)
{
	struct fx *f = FX(state);
	size_t count = 0;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_CLIENTIDS "PRAGMA user_version = 9");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_CLIENTIDS
		           "UPDATE abqd_meta SET value = '9' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "c1"), "-");
	assert_int_equal(reserve(f->s, "a@x", "DEV", "c1", 10), ABQ_CLIENTID_RESERVED);
	assert_int_equal(reserve(f->s, "b@x", "DEV", "c1", 10), ABQ_CLIENTID_RESERVED);
	assert_int_equal(reserve(f->s, "bare", "DEV", "c1", 10), ABQ_CLIENTID_RESERVED);
	assert_int_equal(reserve(f->s, "bare", "DEV", "c2", 10), ABQ_CLIENTID_RESERVED);
	OK(abq_store_clientid_sent(f->s, "bare@x", "DEV", "c2", 11, &err));
	OK(abq_store_device_delete(f->s, "dev", "a@x", &count, &err));
	assert_int_equal(count, 1);
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "c1"), "-");
	assert_string_equal(clientid_of(f->s, "b@x", "DEV", "c1"), "sending@10");
	OK(abq_store_accounts_canonicalize(f->s, "x", NULL, &err));
	assert_string_equal(clientid_of(f->s, "bare", "DEV", "c1"), "-");
	assert_string_equal(clientid_of(f->s, "bare@x", "DEV", "c1"), "sending@10");
	assert_string_equal(clientid_of(f->s, "bare@x", "DEV", "c2"), "sent@11");
}

/* ---- contacts, calendars and tasks ------------------------------------------ */

/* Where the test collections' items live on the server (stripped from the lists). */
#define PIM_BASE "/remote.php/dav/"

/*
 * One discovery through pim_coll_list: spec is "kind:path[:name][*]"
 * separated by blanks (kind c, e or t; the href is PIM_BASE + path; * marks
 * the default); the answer's ids as "c1 c2 ...".
 */
static const char *
discover(struct abq_store *s, const char *account, const char *spec)
{
	static char out[512];
	char buf[1024], hrefs[16][256], *save = NULL, **ids = NULL;
	struct abq_pim_coll l[16];
	size_t n = 0, len = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *w = strtok_r(buf, " ", &save); w != NULL && n < 16;
	     w = strtok_r(NULL, " ", &save)) {
		size_t wl = strlen(w);
		char *name;

		memset(&l[n], 0, sizeof(l[n]));
		l[n].is_default = w[wl - 1] == '*';
		if (l[n].is_default)
			w[wl - 1] = '\0';
		l[n].kind = w[0] == 'c'   ? ABQ_PIM_CONTACTS
		            : w[0] == 'e' ? ABQ_PIM_CALENDAR
		                          : ABQ_PIM_TASKS;
		name = strchr(w + 2, ':');
		if (name != NULL)
			*name++ = '\0';
		l[n].name = name;
		snprintf(hrefs[n], sizeof(hrefs[n]), PIM_BASE "%s", w + 2);
		l[n].href = hrefs[n];
		l[n].account = "ignored";
		l[n].coll_id = "ignored";
		n++;
	}
	OK(abq_store_pim_coll_list(s, account, l, n, &ids, &err));
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "", ids[i]);
		free(ids[i]);
	}
	free(ids);
	return out;
}

/* A collection as "id:kind:path:name[*]:seq:pruned:token". */
static int
cb_pim_coll_list(void *arg, const struct abq_pim_coll *c)
{
	list_add(arg, "%s:%d:%s:%s%s:%lld:%lld:%s", c->coll_id, c->kind, c->href + strlen(PIM_BASE),
	         ns(c->name), c->is_default ? "*" : "", (long long)c->seq, (long long)c->pruned,
	         ns(c->token));
	return 0;
}

/* An account's collections (every account's: NULL) as one string. */
static const char *
colls_of(struct abq_store *s, const char *account)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_pim_coll_iter(s, account, cb_pim_coll_list, &l, &err));
	return l.buf;
}

/* An item as "id:name:etag:seq/added_seq" (etag "-": a tombstone). */
static int
cb_pim_item_list(void *arg, const struct abq_pim_item *i)
{
	const char *name = strrchr(i->href, '/');

	list_add(arg, "%s:%s:%s:%lld/%lld", i->item_id, name ? name + 1 : i->href, ns(i->etag),
	         (long long)i->seq, (long long)i->added_seq);
	return 0;
}

/* The changes of a collection after since, at most limit; *more (may be NULL). */
static const char *
changes_of(struct abq_store *s, const char *account, const char *coll_id, int64_t since,
           size_t limit, bool *more)
{
	static struct list l;

	memset(&l, 0, sizeof(l));
	OK(abq_store_pim_changes(s, account, coll_id, since, limit, cb_pim_item_list, &l, more,
	                         &err));
	return l.buf;
}

/*
 * One refresh of collection coll_id: spec is "name=etag[@start-end]"
 * separated by blanks (etag "-": removed; the href is the collection's
 * href + name); returns the collection's sequence after it.
 */
static int64_t
refresh(struct abq_store *s, const char *account, const char *coll_id, const char *spec,
        bool complete, const char *token)
{
	static char buf[8192], hrefs[64][256];
	struct abq_pim_change l[64];
	struct abq_pim_coll c;
	char *save = NULL;
	size_t n = 0;
	int64_t seq = -1;

	assert_int_equal(abq_store_pim_coll_get(s, account, coll_id, &c, &err), 1);
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *w = strtok_r(buf, " ", &save); w != NULL && n < 64;
	     w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '='), *at = strchr(w, '@');

		*eq = '\0';
		memset(&l[n], 0, sizeof(l[n]));
		if (at != NULL) {
			*at = '\0';
			l[n].start = strtoll(at + 1, &at, 10);
			l[n].end = strtoll(at + 1, NULL, 10);
		}
		snprintf(hrefs[n], sizeof(hrefs[n]), "%s%s", c.href, w);
		l[n].href = hrefs[n];
		l[n].etag = strcmp(eq + 1, "-") == 0 ? NULL : eq + 1;
		n++;
	}
	abq_pim_coll_clear(&c);
	OK(abq_store_pim_refresh(s, account, coll_id, l, n, complete, token, 1000, &seq, &err));
	return seq;
}

/*
 * The collections of one account: ids "c1", "c2" from a per-account counter
 * in the order of the discovery, kept at every discovery (name and default
 * updated), one per kind of a calendar that holds events and tasks; a
 * collection no longer discovered (or a kind no longer held) goes with its
 * items and its id is not given again; another account counts on its own.
 */
static void
test_pim_colls(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_pim_coll c;
	struct abq_pim_item it;
	size_t n = 9;

	assert_string_equal(colls_of(s, "a@x"), "");
	assert_string_equal(discover(s, "a@x",
	                             "c:card/a/contacts/:Contacts* e:cal/a/personal/:Personal* "
	                             "t:cal/a/personal/:Personal* e:cal/a/work/:Work"),
	                    "c1 c2 c3 c4");
	/* By account, kind (contacts, calendar, tasks) and href. */
	assert_string_equal(colls_of(s, "a@x"),
	                    "c1:1:card/a/contacts/:Contacts*:0:0:-,"
	                    "c2:2:cal/a/personal/:Personal*:0:0:-,c4:2:cal/a/work/:Work:0:0:-,"
	                    "c3:3:cal/a/personal/:Personal*:0:0:-");
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "c4", &c, &err), 1);
	assert_string_equal(c.account, "a@x");
	assert_string_equal(c.href, PIM_BASE "cal/a/work/");
	assert_int_equal(c.kind, ABQ_PIM_CALENDAR);
	assert_false(c.is_default);
	assert_null(c.token);
	assert_int_equal(c.refreshed, 0);
	abq_pim_coll_clear(&c);
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "C4", &c, &err), 0);
	assert_int_equal(abq_store_pim_coll_get(s, "b@x", "c4", &c, &err), 0);
	/* Another order, a renamed collection, another default: the same ids. */
	assert_string_equal(discover(s, "a@x",
	                             "e:cal/a/work/:Arbeit* t:cal/a/personal/:Personal "
	                             "c:card/a/contacts/:Contacts* e:cal/a/personal/:Personal"),
	                    "c4 c3 c1 c2");
	assert_string_equal(colls_of(s, "a@x"),
	                    "c1:1:card/a/contacts/:Contacts*:0:0:-,"
	                    "c2:2:cal/a/personal/:Personal:0:0:-,c4:2:cal/a/work/:Arbeit*:0:0:-,"
	                    "c3:3:cal/a/personal/:Personal:0:0:-");
	/* Hrefs compare exactly: another case is another collection. */
	refresh(s, "a@x", "c3", "t1.ics=\"1\" t2.ics=\"1\"", false, "tok");
	refresh(s, "a@x", "c2", "e1.ics=\"1\"", false, "tok");
	assert_string_equal(discover(s, "a@x",
	                             "c:card/a/contacts/:Contacts* e:cal/a/personal/:Personal* "
	                             "e:cal/a/Work/:Work"),
	                    "c1 c2 c5");
	/* The personal calendar holds no tasks any more, work is gone: their items too. */
	assert_string_equal(colls_of(s, "a@x"),
	                    "c1:1:card/a/contacts/:Contacts*:0:0:-,"
	                    "c5:2:cal/a/Work/:Work:0:0:-,c2:2:cal/a/personal/:Personal*:1:0:tok");
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "c3", &c, &err), 0);
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c3", "1", &it, &err), 0);
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c2", "1", &it, &err), 1);
	abq_pim_item_clear(&it);
	/* Back again: a new id, never an old one; the same href twice is one id. */
	assert_string_equal(discover(s, "a@x",
	                             "c:card/a/contacts/ e:cal/a/personal/ e:cal/a/Work/ "
	                             "t:cal/a/personal/ t:cal/a/personal/"),
	                    "c1 c2 c5 c6 c6");
	assert_string_equal(changes_of(s, "a@x", "c6", 0, 0, NULL), "");
	/* Another account counts from c1; every account's collections by account. */
	assert_string_equal(discover(s, "b@x", "c:card/b/contacts/"), "c1");
	assert_string_equal(colls_of(s, NULL),
	                    "c1:1:card/a/contacts/:-:0:0:-,c5:2:cal/a/Work/:-:0:0:-,"
	                    "c2:2:cal/a/personal/:-:1:0:tok,c6:3:cal/a/personal/:-:0:0:-,"
	                    "c1:1:card/b/contacts/:-:0:0:-");
	/* An empty discovery removes them all; delete removes one. */
	assert_string_equal(discover(s, "b@x", ""), "");
	assert_string_equal(colls_of(s, "b@x"), "");
	OK(abq_store_pim_coll_delete(s, "a@x", "c2", &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c2", "1", &it, &err), 0);
	OK(abq_store_pim_coll_delete(s, "a@x", "c2", &n, &err));
	assert_int_equal(n, 0);
	assert_string_equal(discover(s, "a@x", "e:cal/a/personal/"), "c7");
	assert_string_equal(discover(s, "b@x", "c:card/b/contacts/"), "c2");

	/* Bad arguments. */
	{
		char longhref[ABQ_PIM_HREF_MAX + 2], **ids = (char **)&n;
		struct abq_pim_coll l = {.href = longhref, .kind = ABQ_PIM_CONTACTS};

		memset(longhref, 'h', sizeof(longhref) - 1);
		longhref[sizeof(longhref) - 1] = '\0';
		FAILS(abq_store_pim_coll_list(s, "a@x", &l, 1, &ids, &err), "longer than 1024");
		assert_null(ids);
		longhref[ABQ_PIM_HREF_MAX] = '\0';
		OK(abq_store_pim_coll_list(s, "a@x", &l, 1, &ids, &err));
		assert_string_equal(ids[0], "c8");
		free(ids[0]);
		free(ids);
		l.kind = 4;
		FAILS(abq_store_pim_coll_list(s, "a@x", &l, 1, &ids, &err), "kind");
		l.kind = ABQ_PIM_TASKS;
		l.href = "";
		FAILS(abq_store_pim_coll_list(s, "a@x", &l, 1, &ids, &err), "href");
		FAILS(abq_store_pim_coll_list(s, "", &l, 0, &ids, &err), "account");
		FAILS(abq_store_pim_coll_list(s, "a@x", NULL, 1, &ids, &err), "no collections");
		FAILS(abq_store_pim_coll_list(s, "a@x", &l, 0, NULL, &err), "ids_r");
		FAILS(abq_store_pim_coll_get(s, "a@x", NULL, &c, &err), "required");
		FAILS(abq_store_pim_coll_iter(s, "", cb_pim_coll_list, NULL, &err), "account");
		FAILS(abq_store_pim_coll_iter(s, NULL, NULL, NULL, &err), "callback");
		FAILS(abq_store_pim_coll_delete(s, NULL, "c1", NULL, &err), "required");
	}
}

/*
 * A refresh numbers each change with the collection's next sequence: a new
 * href gets an id and added_seq = seq, a new ETag or a removal (a tombstone)
 * a new seq, the same ETag nothing (its span is kept up to date); a removed
 * href not in the map, or a tombstone again, takes nothing; one that comes
 * back is the same id added anew. A complete listing makes every item it
 * lacks a tombstone. The changes after a cursor come in seq order, a window
 * at a time, with "more" when more follow.
 */
static void
test_pim_refresh(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_pim_coll c;
	struct abq_pim_item it;
	bool more = true;

	assert_string_equal(discover(s, "a@x", "e:cal/a/personal/ c:card/a/contacts/"), "c1 c2");
	assert_int_equal(refresh(s, "a@x", "c1",
	                         "a.ics=\"1\"@100-200 b.ics=\"1\" c.ics=\"1\" gone.ics=-", false,
	                         "http://sabre.io/ns/sync/1"),
	                 3);
	assert_string_equal(changes_of(s, "a@x", "c1", 0, 0, &more),
	                    "1:a.ics:\"1\":1/1,2:b.ics:\"1\":2/2,3:c.ics:\"1\":3/3");
	assert_false(more);
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "c1", &c, &err), 1);
	assert_string_equal(c.token, "http://sabre.io/ns/sync/1");
	assert_int_equal(c.seq, 3);
	assert_int_equal(c.refreshed, 1000);
	assert_int_equal(c.last_item, 3);
	abq_pim_coll_clear(&c);
	assert_int_equal(
	    abq_store_pim_item_by_href(s, "a@x", "c1", PIM_BASE "cal/a/personal/a.ics", &it, &err),
	    1);
	assert_string_equal(it.item_id, "1");
	assert_string_equal(it.account, "a@x");
	assert_string_equal(it.coll_id, "c1");
	assert_string_equal(it.etag, "\"1\"");
	assert_int_equal(it.start, 100);
	assert_int_equal(it.end, 200);
	abq_pim_item_clear(&it);
	/* Hrefs compare exactly; another collection has its own map. */
	assert_int_equal(
	    abq_store_pim_item_by_href(s, "a@x", "c1", PIM_BASE "cal/a/personal/A.ics", &it, &err),
	    0);
	assert_int_equal(
	    abq_store_pim_item_by_href(s, "a@x", "c2", PIM_BASE "cal/a/personal/a.ics", &it, &err),
	    0);
	/* The same ETag: nothing but the span; b changed, c removed; a cursor at 3. */
	assert_int_equal(
	    refresh(s, "a@x", "c1", "a.ics=\"1\"@150-250 b.ics=\"2\" c.ics=-", false, NULL), 5);
	assert_string_equal(changes_of(s, "a@x", "c1", 3, 0, &more),
	                    "2:b.ics:\"2\":4/2,3:c.ics:-:5/3");
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c1", "1", &it, &err), 1);
	assert_int_equal(it.seq, 1);
	assert_int_equal(it.start, 150);
	assert_int_equal(it.end, 250);
	abq_pim_item_clear(&it);
	/* The same ETag without a span (a listing's): the map's span stays. */
	assert_int_equal(refresh(s, "a@x", "c1", "a.ics=\"1\"", false, NULL), 5);
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c1", "1", &it, &err), 1);
	assert_int_equal(it.seq, 1);
	assert_int_equal(it.start, 150);
	assert_int_equal(it.end, 250);
	abq_pim_item_clear(&it);
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "c1", &c, &err), 1);
	assert_string_equal(c.token, "http://sabre.io/ns/sync/1"); /* NULL: unchanged */
	abq_pim_coll_clear(&c);
	/* Removed again, or never known: nothing; nothing at all: the same seq. */
	assert_int_equal(refresh(s, "a@x", "c1", "c.ics=- x.ics=-", false, "t2"), 5);
	assert_int_equal(refresh(s, "a@x", "c1", "", false, NULL), 5);
	/* An href twice in one report: its last change counts. */
	assert_int_equal(
	    refresh(s, "a@x", "c1", "d.ics=\"1\" b.ics=\"3\" d.ics=\"2\"", false, NULL), 7);
	assert_string_equal(changes_of(s, "a@x", "c1", 5, 0, NULL),
	                    "2:b.ics:\"3\":6/2,4:d.ics:\"2\":7/7");
	/* c comes back: its id, added anew. */
	assert_int_equal(refresh(s, "a@x", "c1", "c.ics=\"9\"", false, NULL), 8);
	assert_string_equal(changes_of(s, "a@x", "c1", 7, 0, NULL), "3:c.ics:\"9\":8/8");
	/* A complete listing: a and d not in it become tombstones, b's ETag changed. */
	assert_int_equal(
	    refresh(s, "a@x", "c1", "b.ics=\"4\" c.ics=\"9\" e.ics=\"1\"", true, "ctag2"), 12);
	assert_string_equal(changes_of(s, "a@x", "c1", 8, 0, NULL),
	                    "2:b.ics:\"4\":9/2,5:e.ics:\"1\":10/10,1:a.ics:-:11/1,4:d.ics:-:12/7");
	/* The whole map in windows of 2, and from the start. */
	assert_string_equal(changes_of(s, "a@x", "c1", 0, 2, &more),
	                    "3:c.ics:\"9\":8/8,2:b.ics:\"4\":9/2");
	assert_true(more);
	assert_string_equal(changes_of(s, "a@x", "c1", 9, 2, &more),
	                    "5:e.ics:\"1\":10/10,1:a.ics:-:11/1");
	assert_true(more);
	assert_string_equal(changes_of(s, "a@x", "c1", 11, 2, &more), "4:d.ics:-:12/7");
	assert_false(more);
	assert_string_equal(changes_of(s, "a@x", "c1", 10, 2, &more),
	                    "1:a.ics:-:11/1,4:d.ics:-:12/7");
	assert_false(more);
	assert_string_equal(changes_of(s, "a@x", "c1", 12, 2, &more), "");
	assert_false(more);
	/* Another collection, another account: their own numbers and ids. */
	assert_int_equal(refresh(s, "a@x", "c2", "alice.vcf=\"a1\"", false, NULL), 1);
	assert_string_equal(discover(s, "b@x", "e:cal/a/personal/"), "c1");
	assert_int_equal(refresh(s, "b@x", "c1", "a.ics=\"1\"", false, NULL), 1);
	assert_string_equal(changes_of(s, "b@x", "c1", 0, 0, NULL), "1:a.ics:\"1\":1/1");
	assert_string_equal(changes_of(s, "b@x", "c9", 0, 0, NULL), "");

	/* A failure leaves the map as it was; a missing collection is an error. */
	setenv("ABQ_STORE_FAULT", "1", 1);
	{
		const struct abq_pim_change ch = {PIM_BASE "cal/a/personal/f.ics", "\"1\"", 0, 0};

		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, true, "t", 1, NULL, &err),
		      "injected fault");
		unsetenv("ABQ_STORE_FAULT");
		OK(abq_store_begin(s, &err));
		OK(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, true, "t", 1, NULL, &err));
		abq_store_rollback(s);
		assert_string_equal(changes_of(s, "a@x", "c1", 12, 0, NULL), "");
		FAILS(abq_store_pim_refresh(s, "a@x", "c9", &ch, 1, false, NULL, 1, NULL, &err),
		      "pim_refresh: no collection c9 of a@x");
	}
	/* Bad arguments: hrefs and ETags too long or empty, tokens. */
	{
		char longs[ABQ_PIM_HREF_MAX + 2];
		struct abq_pim_change ch = {longs, "\"1\"", 0, 0};
		int64_t seq = 9;

		memset(longs, 'h', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = '\0';
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, NULL, 1, &seq, &err),
		      "pim_refresh: href longer than 1024 bytes");
		assert_int_equal(seq, 0);
		FAILS(abq_store_pim_item_by_href(s, "a@x", "c1", longs, &it, &err), "longer");
		ch.href = PIM_BASE "x";
		ch.etag = longs + sizeof(longs) - 2 - ABQ_PIM_ETAG_MAX;
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, NULL, 1, NULL, &err),
		      "ETag longer than 256 bytes");
		ch.etag = "";
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, NULL, 1, NULL, &err),
		      "empty ETag");
		ch.etag = longs + sizeof(longs) - 1 - ABQ_PIM_ETAG_MAX;
		OK(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, longs + 1, 1, NULL, &err));
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, longs, 1, NULL, &err),
		      "token longer");
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, "", 1, NULL, &err),
		      "empty token");
		ch.href = "";
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", &ch, 1, false, NULL, 1, NULL, &err),
		      "href is required");
		FAILS(abq_store_pim_refresh(s, "a@x", "c1", NULL, 1, false, NULL, 1, NULL, &err),
		      "no changes");
		FAILS(abq_store_pim_refresh(s, "a@x", NULL, NULL, 0, false, NULL, 1, NULL, &err),
		      "required");
		FAILS(abq_store_pim_changes(s, "a@x", "c1", 0, 0, NULL, NULL, NULL, &err),
		      "callback");
		FAILS(abq_store_pim_item_get(s, "a@x", "c1", "", &it, &err), "required");
	}
}

/* Items delivered in strictly ascending seq, counted. */
struct seq_check {
	size_t n;
	int64_t last;
};

static int
cb_pim_seq_check(void *arg, const struct abq_pim_item *i)
{
	struct seq_check *sc = arg;

	if (i->seq <= sc->last)
		fail_msg("item %s at seq %lld after seq %lld", i->item_id, (long long)i->seq,
		         (long long)sc->last);
	sc->last = i->seq;
	sc->n++;
	return 0;
}

/*
 * A refresh of a large collection at once (its map read in one go), a
 * complete listing of it again, and many refreshes of one change each; the
 * times are printed, not asserted.
 */
static void
test_pim_refresh_many(void **state)
{
	struct abq_store *s = FX(state)->s;
	enum { PIM_MANY = 5000 };
	struct abq_pim_change *l = calloc(PIM_MANY, sizeof(*l));
	char(*hrefs)[96] = calloc(PIM_MANY, sizeof(*hrefs));
	struct timespec t0, t1, t2, t3;
	struct seq_check sc = {0, 0};
	size_t n = 0;
	int64_t seq = 0;
	bool more = true;

	assert_string_equal(discover(s, "a@x", "c:card/a/contacts/ c:card/a/other/"), "c1 c2");
	for (int i = 0; i < PIM_MANY; i++) {
		snprintf(hrefs[i], sizeof(hrefs[i]),
		         PIM_BASE "card/a/contacts/4f8b2c1e-%04d-4a5b-9c3d-7e6f5a4b3c2d.vcf", i);
		l[i].href = hrefs[i];
		l[i].etag = "\"1\"";
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	OK(abq_store_pim_refresh(s, "a@x", "c1", l, PIM_MANY, true, "s1", 5, &seq, &err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(seq, PIM_MANY);
	/* The same listing again with every tenth ETag changed and the last ten gone. */
	for (int i = 0; i < PIM_MANY; i += 10)
		l[i].etag = "\"2\"";
	OK(abq_store_pim_refresh(s, "a@x", "c1", l, PIM_MANY - 10, true, "s2", 6, &seq, &err));
	clock_gettime(CLOCK_MONOTONIC, &t2);
	assert_int_equal(seq, PIM_MANY + (PIM_MANY - 10) / 10 + 10); /* changed, gone */
	/* One by one (a sync-collection report of one change each): the other collection. */
	for (int i = 0; i < 500; i++) {
		snprintf(hrefs[i], sizeof(hrefs[i]), PIM_BASE "card/a/other/%d.vcf", i);
		OK(abq_store_pim_refresh(s, "a@x", "c2", &l[i], 1, false, NULL, 7, &seq, &err));
	}
	clock_gettime(CLOCK_MONOTONIC, &t3);
	assert_int_equal(seq, 500);
	/* Read in windows of 100: every item once, in seq order. */
	while (more) {
		size_t before = sc.n;

		OK(abq_store_pim_changes(s, "a@x", "c1", sc.last, 100, cb_pim_seq_check, &sc, &more,
		                         &err));
		assert_true(sc.n - before == 100 || (!more && sc.n - before <= 100));
		n++;
	}
	assert_int_equal(sc.n, PIM_MANY);
	assert_int_equal(n, PIM_MANY / 100);
	print_message("pim refresh of %d new items: %.3f s; again with %d changed: %.3f s; "
	              "500 refreshes of one: %.3f s\n",
	              PIM_MANY,
	              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	              (PIM_MANY - 10) / 10 + 10,
	              (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9,
	              (double)(t3.tv_sec - t2.tv_sec) + (double)(t3.tv_nsec - t2.tv_nsec) / 1e9);
	free(l);
	free(hrefs);
}

/* What pim_item_put answers, as cb_pim_item_list writes an item ("-" for none). */
static const char *
put_item(struct abq_store *s, const char *account, const char *coll_id, const char *name,
         const char *etag)
{
	static struct list l;
	struct abq_pim_item it;
	char href[256];

	snprintf(href, sizeof(href), PIM_BASE "card/a/contacts/%s", name);
	memset(&l, 0, sizeof(l));
	OK(abq_store_pim_item_put(s, account, coll_id, href, etag, 0, 0, &it, &err));
	if (it.item_id == NULL)
		return "-";
	cb_pim_item_list(&l, &it);
	abq_pim_item_clear(&it);
	return l.buf;
}

/*
 * abqd's own writes (a phone's Add, Change, Delete that went through to the
 * server): each takes the next sequence, even with the ETag the map has; a
 * new href gets an id; a Delete makes a tombstone, and one of an unknown
 * href writes nothing.
 */
static void
test_pim_item_put(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_pim_item it;

	assert_string_equal(discover(s, "a@x", "c:card/a/contacts/"), "c1");
	refresh(s, "a@x", "c1", "old.vcf=\"1\"", false, NULL);
	assert_string_equal(put_item(s, "a@x", "c1", "new.vcf", "\"n1\""), "2:new.vcf:\"n1\":2/2");
	assert_string_equal(put_item(s, "a@x", "c1", "old.vcf", "\"2\""), "1:old.vcf:\"2\":3/1");
	assert_string_equal(put_item(s, "a@x", "c1", "old.vcf", "\"2\""), "1:old.vcf:\"2\":4/1");
	assert_string_equal(put_item(s, "a@x", "c1", "new.vcf", NULL), "2:new.vcf:-:5/2");
	assert_string_equal(put_item(s, "a@x", "c1", "new.vcf", NULL), "2:new.vcf:-:5/2");
	assert_string_equal(put_item(s, "a@x", "c1", "none.vcf", NULL), "-");
	assert_string_equal(put_item(s, "a@x", "c1", "new.vcf", "\"n2\""), "2:new.vcf:\"n2\":6/6");
	/* A refresh that finds abqd's own ETag changes nothing. */
	assert_int_equal(refresh(s, "a@x", "c1", "old.vcf=\"2\" new.vcf=\"n2\"", true, NULL), 6);
	assert_string_equal(changes_of(s, "a@x", "c1", 0, 0, NULL),
	                    "1:old.vcf:\"2\":4/1,2:new.vcf:\"n2\":6/6");
	/* item_r may be NULL; a missing collection is an error. */
	OK(abq_store_pim_item_put(s, "a@x", "c1", PIM_BASE "card/a/contacts/x.vcf", "\"x\"", 0, 0,
	                          NULL, &err));
	assert_int_equal(abq_store_pim_item_get(s, "a@x", "c1", "3", &it, &err), 1);
	assert_int_equal(it.seq, 7);
	abq_pim_item_clear(&it);
	FAILS(abq_store_pim_item_put(s, "a@x", "c2", PIM_BASE "x", NULL, 0, 0, &it, &err),
	      "pim_item_put: no collection c2 of a@x");
	assert_null(it.item_id);
	FAILS(abq_store_pim_item_put(s, "a@x", "c1", NULL, NULL, 0, 0, &it, &err), "href");
	FAILS(abq_store_pim_item_put(s, "a@x", "c1", PIM_BASE "x", "", 0, 0, &it, &err), "ETag");
}

/*
 * Pruning deletes a collection's tombstones up to a sequence (never a live
 * item) and records how far it went, never backwards nor past the
 * collection's sequence; item ids stay used.
 */
static void
test_pim_prune(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_pim_coll c;
	size_t n = 9;

	assert_string_equal(discover(s, "a@x", "t:cal/a/tasks/ t:cal/a/more/"), "c1 c2");
	refresh(s, "a@x", "c1", "1.ics=\"1\" 2.ics=\"1\" 3.ics=\"1\" 4.ics=\"1\"", false, NULL);
	refresh(s, "a@x", "c1", "2.ics=- 4.ics=-", false, NULL);     /* 5, 6 */
	refresh(s, "a@x", "c1", "1.ics=\"2\" 3.ics=-", false, NULL); /* 7, 8 */
	refresh(s, "a@x", "c2", "x.ics=\"1\" y.ics=\"1\"", false, NULL);
	refresh(s, "a@x", "c2", "x.ics=-", false, NULL);
	OK(abq_store_pim_prune(s, "a@x", "c1", 6, &n, &err));
	assert_int_equal(n, 2);
	assert_string_equal(changes_of(s, "a@x", "c1", 0, 0, NULL),
	                    "1:1.ics:\"2\":7/1,3:3.ics:-:8/3");
	assert_string_equal(changes_of(s, "a@x", "c2", 0, 0, NULL),
	                    "2:y.ics:\"1\":2/2,1:x.ics:-:3/1");
	assert_int_equal(abq_store_pim_coll_get(s, "a@x", "c1", &c, &err), 1);
	assert_int_equal(c.pruned, 6);
	abq_pim_coll_clear(&c);
	/* Not backwards; not past the sequence. */
	OK(abq_store_pim_prune(s, "a@x", "c1", 2, &n, &err));
	assert_int_equal(n, 0);
	assert_string_equal(colls_of(s, "a@x"),
	                    "c2:3:cal/a/more/:-:3:0:-,c1:3:cal/a/tasks/:-:8:6:-");
	OK(abq_store_pim_prune(s, "a@x", "c1", 1000, &n, &err));
	assert_int_equal(n, 1);
	assert_string_equal(colls_of(s, "a@x"),
	                    "c2:3:cal/a/more/:-:3:0:-,c1:3:cal/a/tasks/:-:8:8:-");
	assert_string_equal(changes_of(s, "a@x", "c1", 0, 0, NULL), "1:1.ics:\"2\":7/1");
	/* The pruned ids are not given again. */
	refresh(s, "a@x", "c1", "4.ics=\"9\" 5.ics=\"1\"", false, NULL);
	assert_string_equal(changes_of(s, "a@x", "c1", 8, 0, NULL),
	                    "5:4.ics:\"9\":9/9,6:5.ics:\"1\":10/10");
	/* Another collection, or none: nothing. */
	OK(abq_store_pim_prune(s, "a@x", "c9", 1000, &n, &err));
	assert_int_equal(n, 0);
	assert_string_equal(changes_of(s, "a@x", "c2", 0, 0, NULL),
	                    "2:y.ics:\"1\":2/2,1:x.ics:-:3/1");
	FAILS(abq_store_pim_prune(s, "a@x", "", 1, &n, &err), "required");
}

/* A counter as "account=last_id". */
static int
cb_counter_list(void *arg, const struct abq_folder_counter *c)
{
	list_add(arg, "%s=%lld", c->account, (long long)c->last_id);
	return 0;
}

/*
 * Moving a registry: collections and items restored under their ids with
 * their sequences; the counters go on after the restored ids (and are
 * restored themselves), so no id is given again.
 */
static void
test_pim_restore(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_pim_coll c = {.account = "a@x",
	                         .coll_id = "c5",
	                         .href = PIM_BASE "cal/a/personal/",
	                         .kind = ABQ_PIM_CALENDAR,
	                         .name = "Personal",
	                         .is_default = true,
	                         .token = "t9",
	                         .seq = 40,
	                         .pruned = 12,
	                         .refreshed = 77,
	                         .last_item = 9};
	struct abq_pim_item it = {.account = "a@x",
	                          .coll_id = "c5",
	                          .item_id = "9",
	                          .href = PIM_BASE "cal/a/personal/e.ics",
	                          .etag = "\"3\"",
	                          .seq = 40,
	                          .added_seq = 30,
	                          .start = 100,
	                          .end = 200};
	struct abq_folder_counter fc = {.account = "b@x", .last_id = 7};
	struct list l;

	OK(abq_store_pim_coll_restore(s, &c, &err));
	OK(abq_store_pim_item_restore(s, &it, &err));
	it.item_id = "8";
	it.href = PIM_BASE "cal/a/personal/gone.ics";
	it.etag = NULL;
	it.seq = 39;
	OK(abq_store_pim_item_restore(s, &it, &err));
	OK(abq_store_pim_counter_restore(s, &fc, &err));
	fc.last_id = 3; /* never lowered */
	OK(abq_store_pim_counter_restore(s, &fc, &err));
	assert_string_equal(colls_of(s, NULL), "c5:2:cal/a/personal/:Personal*:40:12:t9");
	memset(&l, 0, sizeof(l));
	OK(abq_store_pim_item_iter(s, cb_pim_item_list, &l, &err));
	assert_string_equal(l.buf, "8:gone.ics:-:39/30,9:e.ics:\"3\":40/30");
	memset(&l, 0, sizeof(l));
	OK(abq_store_pim_counter_iter(s, cb_counter_list, &l, &err));
	assert_string_equal(l.buf, "a@x=5,b@x=7");
	/* The restored collection keeps its id, new ones go on after it. */
	assert_string_equal(discover(s, "a@x", "e:cal/a/personal/ c:card/a/contacts/"), "c5 c6");
	assert_string_equal(discover(s, "b@x", "c:card/b/contacts/"), "c8");
	assert_int_equal(refresh(s, "a@x", "c5", "new.ics=\"1\"", false, NULL), 41);
	assert_string_equal(changes_of(s, "a@x", "c5", 40, 0, NULL), "10:new.ics:\"1\":41/41");
	/* An id not of the store's making is kept, the counter left alone. */
	c.coll_id = "imported";
	c.href = PIM_BASE "cal/a/other/";
	OK(abq_store_pim_coll_restore(s, &c, &err));
	c.href = NULL;
	FAILS(abq_store_pim_coll_restore(s, &c, &err), "required");
	it.item_id = NULL;
	FAILS(abq_store_pim_item_restore(s, &it, &err), "required");
	FAILS(abq_store_pim_item_iter(s, NULL, NULL, &err), "callback");
	FAILS(abq_store_pim_counter_restore(s, NULL, &err), "required");
}

#define PIM_WRITERS 3
#define PIM_ROUNDS  40

/*
 * One process of test_pim_concurrent: PIM_ROUNDS refreshes of collection c1
 * of a@x, each adding an item of its own and changing the shared one (two
 * sequence numbers), every third one an item_put instead; the sequence after
 * each is written to fd as an int64_t.
 */
static int
pim_writer(const char *url, int w, int fd)
{
	struct abq_store *s = abq_store_open(url, NULL, 0, &err);
	char own[128], etag[32];

	if (s == NULL) {
		fprintf(stderr, "pim writer %d: open: %s\n", w, err);
		return 1;
	}
	for (int i = 0; i < PIM_ROUNDS; i++) {
		const struct abq_pim_change l[2] = {
		    {own, "\"1\"", 0, 0}, {PIM_BASE "card/a/contacts/shared.vcf", etag, 0, 0}};
		struct abq_pim_item it;
		int64_t seq = 0;
		int rc;

		snprintf(own, sizeof(own), PIM_BASE "card/a/contacts/w%d-%d.vcf", w, i);
		snprintf(etag, sizeof(etag), "\"w%d-%d\"", w, i);
		if (i % 3 == 2) {
			rc = abq_store_pim_item_put(s, "a@x", "c1", l[1].href, etag, 0, 0, &it,
			                            &err);
			seq = it.seq;
			abq_pim_item_clear(&it);
		} else {
			rc =
			    abq_store_pim_refresh(s, "a@x", "c1", l, 2, false, NULL, i, &seq, &err);
		}
		if (rc < 0 || write(fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq)) {
			fprintf(stderr, "pim writer %d, round %d: %s\n", w, i, err ? err : "write");
			abq_store_close(&s);
			return 1;
		}
	}
	abq_store_close(&s);
	return 0;
}

/*
 * Several handles (processes; nodes on PostgreSQL) writing one collection at
 * once: every change gets its own sequence number, the numbers of each write
 * follow one another, and the map ends exactly as the writes say.
 */
static void
test_pim_concurrent(void **state)
{
	struct fx *f = FX(state);
	enum { WRITES = PIM_WRITERS * PIM_ROUNDS };
	int64_t got[WRITES];
	char used[2 * WRITES + 2] = {0};
	pid_t pid[PIM_WRITERS];
	int fds[PIM_WRITERS][2], w, status, k = 0, puts = 0;
	struct seq_check sc = {0, 0};
	struct abq_pim_coll c;

	assert_string_equal(discover(f->s, "a@x", "c:card/a/contacts/"), "c1");
	assert_int_equal(refresh(f->s, "a@x", "c1", "shared.vcf=\"0\"", false, NULL), 1);
	for (w = 0; w < PIM_WRITERS; w++) {
		assert_int_equal(pipe(fds[w]), 0);
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0) {
			close(fds[w][0]);
			_exit(pim_writer(f->url, w, fds[w][1]));
		}
		close(fds[w][1]);
	}
	for (w = 0; w < PIM_WRITERS; w++) {
		for (int i = 0; i < PIM_ROUNDS; i++)
			assert_int_equal(read(fds[w][0], &got[k++], sizeof(int64_t)),
			                 sizeof(int64_t));
		close(fds[w][0]);
		assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	/* A refresh took two numbers (its last is got), an item_put one: none twice. */
	for (w = 0; w < PIM_WRITERS; w++) {
		for (int i = 0; i < PIM_ROUNDS; i++) {
			int64_t last = got[w * PIM_ROUNDS + i];
			int take = i % 3 == 2 ? 1 : 2;

			puts += take == 1;
			assert_true(last >= 2 && last <= 2 * WRITES + 1);
			for (int64_t q = last - take + 1; q <= last; q++) {
				if (used[q])
					fail_msg("sequence %lld given twice", (long long)q);
				used[q] = 1;
			}
		}
	}
	assert_int_equal(abq_store_pim_coll_get(f->s, "a@x", "c1", &c, &err), 1);
	assert_int_equal(c.seq, 2 * WRITES - puts + 1);
	assert_int_equal(c.last_item, WRITES - puts + 1);
	abq_pim_coll_clear(&c);
	/* Every item once, in seq order: the refreshes' own ones and the shared one. */
	OK(abq_store_pim_changes(f->s, "a@x", "c1", 0, 0, cb_pim_seq_check, &sc, NULL, &err));
	assert_int_equal(sc.n, WRITES - puts + 1);
	assert_int_equal(sc.last, 2 * WRITES - puts + 1);
}

/*
 * A store of version 10 keeps its data and gets the (empty) map, whose ids
 * start at c1; the map survives a reopen; the rewrite of bare accounts
 * carries it (a canonical account that has its own keeps its own).
 */
static void
test_pim_upgrade(void **state)
{
	struct fx *f = FX(state);
	struct abq_device d = {0};
	struct abq_pim_item it;

	put_device(f->s, "a@x", "DEV", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	OK(abq_store_clientid_sent(f->s, "a@x", "DEV", "m1", 10, &err));
	abq_store_close(&f->s);
	if (f->sqlite) {
		sqlite3 *db = raw_open(f->path);
		raw_exec(db, DROP_PIM "PRAGMA user_version = 10");
		sqlite3_close(db);
	} else {
		assert_int_equal(
		    pg_sql(f->base_url,
		           "SET search_path = %s; " DROP_PIM
		           "UPDATE abqd_meta SET value = '10' WHERE key = 'schema_version'",
		           f->schema),
		    0);
	}
	fx_open(f, 0);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "DEV", &d, &err), 1);
	abq_device_clear(&d);
	assert_string_equal(clientid_of(f->s, "a@x", "DEV", "m1"), "sent@10");
	assert_string_equal(colls_of(f->s, NULL), "");
	assert_string_equal(discover(f->s, "a@x", "c:card/a/contacts/"), "c1");
	refresh(f->s, "a@x", "c1", "1.vcf=\"1\"", false, "t1");
	abq_store_close(&f->s);
	fx_open(f, 0);
	assert_string_equal(colls_of(f->s, "a@x"), "c1:1:card/a/contacts/:-:1:0:t1");
	assert_string_equal(changes_of(f->s, "a@x", "c1", 0, 0, NULL), "1:1.vcf:\"1\":1/1");

	/* Bare accounts: dan's map moves; erin keeps her canonical one. */
	assert_string_equal(discover(f->s, "dan", "c:card/dan/ e:cal/dan/"), "c1 c2");
	refresh(f->s, "dan", "c2", "e.ics=\"1\" f.ics=\"1\"", false, "dt");
	assert_string_equal(discover(f->s, "erin", "c:card/erin-bare/"), "c1");
	refresh(f->s, "erin", "c1", "bare.vcf=\"1\"", false, NULL);
	assert_string_equal(discover(f->s, "erin@x", "c:card/erin/"), "c1");
	refresh(f->s, "erin@x", "c1", "canon.vcf=\"1\"", false, NULL);
	OK(abq_store_accounts_canonicalize(f->s, "x", NULL, &err));
	assert_string_equal(colls_of(f->s, "dan"), "");
	assert_string_equal(colls_of(f->s, "dan@x"),
	                    "c1:1:card/dan/:-:0:0:-,c2:2:cal/dan/:-:2:0:dt");
	assert_string_equal(changes_of(f->s, "dan@x", "c2", 0, 0, NULL),
	                    "1:e.ics:\"1\":1/1,2:f.ics:\"1\":2/2");
	assert_int_equal(abq_store_pim_item_get(f->s, "dan@x", "c2", "2", &it, &err), 1);
	assert_string_equal(it.account, "dan@x");
	abq_pim_item_clear(&it);
	assert_string_equal(discover(f->s, "dan@x", "c:card/dan/ e:cal/dan/ t:cal/dan/"),
	                    "c1 c2 c3");
	assert_string_equal(colls_of(f->s, "erin"), "");
	assert_string_equal(colls_of(f->s, "erin@x"), "c1:1:card/erin/:-:1:0:-");
	assert_string_equal(changes_of(f->s, "erin@x", "c1", 0, 0, NULL), "1:canon.vcf:\"1\":1/1");
	assert_int_equal(abq_store_pim_item_get(f->s, "erin", "c1", "1", &it, &err), 0);
}

/* ---- accounts: one identity per person ------------------------------------ */

/* The sync state blob of (account, device_id, collection) as a string, or "-". */
static const char *
syncstate_of(struct abq_store *s, const char *account, const char *device_id,
             const char *collection)
{
	static char buf[64];
	void *blob = NULL;
	size_t len = 0;
	int rc =
	    abq_store_syncstate_get(s, account, device_id, collection, &blob, &len, NULL, &err);

	assert_int_not_equal(rc, -1);
	snprintf(buf, sizeof(buf), "%s", rc == 1 ? (const char *)blob : "-");
	free(blob);
	return buf;
}

/* Every list a rewrite touches, in one string, to compare before and after. */
static const char *
accounts_snapshot(struct abq_store *s)
{
	static struct list l;
	struct abq_device_filter all = {0};

	memset(&l, 0, sizeof(l));
	OK(abq_store_device_iter(s, &all, cb_device_list, &l, &err));
	OK(abq_store_entry_iter(s, ABQ_STATE_NONE, cb_entry_list, &l, &err));
	OK(abq_store_attr_iter(s, cb_attr_list, &l, &err));
	return l.buf;
}

/*
 * Records written before [eas] default_domain was set hold bare accounts; the
 * rewrite gives them the domain in every table, merges collisions (the device
 * seen last wins, with its sync state; the canonical entry and attribute win),
 * records the domain, and a second run changes nothing.
 */
static void
test_accounts_canonicalize(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_notice n = {
	    .recipient = "alice@example.com", .kind = "user-blocked", .account = "alice"};
	struct abq_device d = {0};
	struct abq_entry e = {0};
	struct abq_attr a = {0};
	char before[4096];
	char *v = NULL;
	size_t count = 99;

	/* alice: the bare record is the newer one; bob: the canonical one is. */
	put_device(s, "alice", "D1", ABQ_STATE_BLOCKED, ABQ_REASON_INDIVIDUAL, 100);
	put_device(s, "alice@example.com", "d1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 50);
	put_device(s, "bob", "D2", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE, 10);
	put_device(s, "bob@example.com", "D2", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL, 20);
	put_device(s, "carol", "D3", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 5);
	put_device(s, "dave@corp.org", "D4", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 5);
	OK(abq_store_syncstate_put(s, "alice", "D1", "inbox", "bare", 5, 1, &err));
	OK(abq_store_syncstate_put(s, "alice@example.com", "D1", "inbox", "canon", 6, 9, &err));
	OK(abq_store_syncstate_put(s, "bob", "D2", "inbox", "bare", 5, 9, &err));
	OK(abq_store_syncstate_put(s, "bob@example.com", "D2", "inbox", "canon", 6, 1, &err));
	OK(abq_store_syncstate_put(s, "carol", "D3", "ping", "carol", 6, 1, &err));
	put_entry(s, "D1", "alice", ABQ_STATE_BLOCKED);
	put_entry(s, "D1", "alice@example.com", ABQ_STATE_ALLOWED);
	put_entry(s, "D5", "erin", ABQ_STATE_QUARANTINED);
	put_entry(s, "D6", NULL, ABQ_STATE_BLOCKED);
	put_attr(s, ABQ_SCOPE_ACCOUNT, "alice", "abqMode", "Strict");
	put_attr(s, ABQ_SCOPE_ACCOUNT, "alice@example.com", "ABQMODE", "Permissive");
	put_attr(s, ABQ_SCOPE_ACCOUNT, "alice", "abqMaxDevices", "2");
	put_attr(s, ABQ_SCOPE_DOMAIN, "example.com", "abqMode", "Interactive");
	put_attr(s, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Permissive");
	add_history(s, 7, "D1/alice", "D1", "alice");
	OK(abq_store_notice_add(s, &n, &err));
	/* Native folder ids: alice has them under both spellings, carol bare only. */
	{
		struct abq_folder f = {.mailbox = "INBOX"}, out = {0};

		f.account = "alice";
		OK(abq_store_folder_assign(s, &f, &out, &err));
		abq_folder_clear(&out);
		f.mailbox = "Bare";
		OK(abq_store_folder_assign(s, &f, &out, &err));
		abq_folder_clear(&out);
		f.account = "alice@example.com";
		f.mailbox = "INBOX";
		OK(abq_store_folder_assign(s, &f, &out, &err));
		abq_folder_clear(&out);
		f.account = "carol";
		f.mailbox = "Work";
		OK(abq_store_folder_assign(s, &f, &out, &err));
		abq_folder_clear(&out);
	}

	/* No domain: nothing happens, nothing is recorded. */
	snprintf(before, sizeof(before), "%s", accounts_snapshot(s));
	OK(abq_store_accounts_canonicalize(s, NULL, &count, &err));
	assert_int_equal(count, 0);
	OK(abq_store_accounts_canonicalize(s, "", NULL, &err));
	assert_string_equal(accounts_snapshot(s), before);
	assert_int_equal(abq_store_meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &v, &err), 0);
	FAILS(abq_store_accounts_canonicalize(s, "bad domain", &count, &err), "domain");

	/* A failure anywhere leaves everything as it was (one transaction). */
	setenv("ABQ_STORE_FAULT", "2", 1); /* the commit */
	FAILS(abq_store_accounts_canonicalize(s, "example.com", &count, &err), "injected");
	unsetenv("ABQ_STORE_FAULT");
	assert_int_equal(count, 0);
	assert_string_equal(accounts_snapshot(s), before);
	assert_int_equal(abq_store_meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &v, &err), 0);

	OK(abq_store_accounts_canonicalize(s, "Example.COM", &count, &err));
	/* Devices: 2 merged away, 2 renamed; entries: 1 and 1; attributes: 1 and 1. */
	assert_int_equal(count, 8);
	assert_string_equal(accounts_snapshot(s),
	                    "alice@example.com/D1,bob@example.com/D2,carol@example.com/D3,"
	                    "dave@corp.org/D4,"
	                    "D1/alice@example.com=Allowed,D5/erin@example.com=Quarantined,"
	                    "D6/-=Blocked,"
	                    "global/-/abqMode=Permissive,domain/example.com/abqMode=Interactive,"
	                    "account/alice@example.com/abqMaxDevices=2,"
	                    "account/alice@example.com/ABQMODE=Permissive");
	/* The device seen last won, whichever spelling it had, with its own state. */
	assert_int_equal(abq_store_device_get(s, "alice@example.com", "D1", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	assert_int_equal(d.last_seen, 100);
	abq_device_clear(&d);
	assert_int_equal(abq_store_device_get(s, "bob@example.com", "D2", &d, &err), 1);
	assert_int_equal(d.state, ABQ_STATE_ALLOWED);
	assert_int_equal(d.last_seen, 20);
	abq_device_clear(&d);
	assert_int_equal(abq_store_device_get(s, "alice", "D1", &d, &err), 0);
	assert_int_equal(abq_store_entry_get(s, "D1", "alice", &e, &err), 0);
	assert_int_equal(abq_store_attr_get(s, ABQ_SCOPE_ACCOUNT, "alice", "abqMode", &a, &err), 0);
	/* Sync state follows the device that stayed. */
	assert_string_equal(syncstate_of(s, "alice@example.com", "D1", "inbox"), "bare");
	assert_string_equal(syncstate_of(s, "bob@example.com", "D2", "inbox"), "canon");
	assert_string_equal(syncstate_of(s, "carol@example.com", "D3", "ping"), "carol");
	assert_string_equal(syncstate_of(s, "alice", "D1", "inbox"), "-");
	assert_string_equal(syncstate_of(s, "bob", "D2", "inbox"), "-");
	/* Folder ids: the canonical account's kept, a bare-only account's renamed. */
	{
		struct abq_folder out = {0};

		assert_int_equal(
		    abq_store_folder_by_mailbox(s, "alice@example.com", "INBOX", &out, &err), 1);
		assert_string_equal(out.folder_id, "1");
		abq_folder_clear(&out);
		assert_int_equal(
		    abq_store_folder_by_mailbox(s, "alice@example.com", "Bare", &out, &err), 0);
		assert_int_equal(abq_store_folder_by_mailbox(s, "alice", "INBOX", &out, &err), 0);
		assert_int_equal(
		    abq_store_folder_by_mailbox(s, "carol@example.com", "Work", &out, &err), 1);
		assert_string_equal(out.folder_id, "1");
		abq_folder_clear(&out);
		/* carol's counter came along: her next id is 2, not 1 again */
		struct abq_folder f = {.account = "carol@example.com", .mailbox = "Next"};
		assert_int_equal(abq_store_folder_assign(s, &f, &out, &err), 0);
		assert_string_equal(out.folder_id, "2");
		abq_folder_clear(&out);
	}
	/* History and the outbox are found under the canonical account. */
	assert_string_equal(history_of(s, NULL, "alice@example.com", 0, 0), "D1/alice");
	assert_string_equal(history_of(s, NULL, "alice", 0, 0), "");
	{
		struct list l;

		memset(&l, 0, sizeof(l));
		OK(abq_store_notice_iter(s, NULL, cb_notice_account, &l, &err));
		assert_string_equal(l.buf, "alice@example.com");
	}
	assert_int_equal(abq_store_meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &v, &err), 1);
	assert_string_equal(v, "example.com");
	free(v);
	v = NULL;

	/* A second run changes nothing. */
	snprintf(before, sizeof(before), "%s", accounts_snapshot(s));
	OK(abq_store_accounts_canonicalize(s, "example.com", &count, &err));
	assert_int_equal(count, 0);
	assert_string_equal(accounts_snapshot(s), before);

	/* Another domain later: only what is bare then gets it; full names stay. */
	put_device(s, "frank", "D7", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 5);
	OK(abq_store_accounts_canonicalize(s, "other.org", &count, &err));
	assert_int_equal(count, 1);
	assert_string_equal(devices_of(s, &(struct abq_device_filter){0}),
	                    "alice@example.com/D1,bob@example.com/D2,carol@example.com/D3,"
	                    "dave@corp.org/D4,frank@other.org/D7");
	assert_int_equal(abq_store_meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &v, &err), 1);
	assert_string_equal(v, "other.org");
	free(v);
	/* It survives a reopen: the recorded domain is the store's. */
	abq_store_close(&FX(state)->s);
	fx_open(FX(state), 0);
	s = FX(state)->s;
	OK(abq_store_accounts_canonicalize(s, "other.org", &count, &err));
	assert_int_equal(count, 0);
}

/* Files that are not databases, and empty databases. */
static void
test_open_not_a_database(void **state)
{
	struct fx *f = FX(state);
	char path[PATH_MAX + 64], url[PATH_MAX + 80];
	struct abq_store *s;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (i = 0; i < 100; i++)
		fputs("this is a text file, not a database\n", fp);
	fclose(fp);
	MSG_HAS(open_fails(url, NULL, 0), "is not an abqd store (file is not a database)");
	MSG_HAS(open_fails(url, NULL, ABQ_STORE_CREATE), "(file is not a database)");
	MSG_HAS(open_fails(url, NULL, ABQ_STORE_READONLY), "(file is not a database)");

	/* An empty file is an empty database: "init" initialises it, nothing else does. */
	snprintf(path, sizeof(path), "%s/empty.db", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	MSG_HAS(open_fails(url, NULL, 0), "is empty; run 'abqctl init'");
	s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);
	if (s == NULL)
		fail_msg("init of an empty file: %s", err);
	abq_store_close(&s);
	s = abq_store_open(url, NULL, 0, &err);
	assert_non_null(s);
	abq_store_close(&s);

	/* A folder. */
	snprintf(url, sizeof(url), "sqlite:%s", f->dir);
	MSG_HAS(open_fails(url, NULL, 0), "folder");
}

/* A read-only store reads and refuses writes. */
static void
test_open_readonly(void **state)
{
	struct fx *f = FX(state);
	struct abq_device got, d;

	put_device(f->s, "a@x", "D", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	abq_store_close(&f->s);
	fx_open(f, ABQ_STORE_READONLY);
	assert_int_equal(abq_store_device_get(f->s, "a@x", "d", &got, &err), 1);
	abq_device_clear(&got);
	full_device(&d, "a@x", "E");
	FAILS(abq_store_device_put(f->s, &d, &err), "device_put: ");
}

/* A file this user cannot write is refused for writing, not silently read-only. */
static void
test_open_not_writable(void **state)
{
	struct fx *f = FX(state);

	if (geteuid() == 0)
		skip(); /* root writes anyway */
	abq_store_close(&f->s);
	assert_int_equal(chmod(f->path, 0444), 0);
	MSG_HAS(open_fails(f->url, NULL, 0), "not writable");
	fx_open(f, ABQ_STORE_READONLY);
	assert_int_equal(chmod(f->path, 0644), 0);
}

/* ---- arguments, faults, concurrency, speed ------------------------------- */

/* Missing keys and out-of-range values are errors with a message, not crashes. */
static void
test_bad_arguments(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device d = {0}, got;
	struct abq_entry e = {0};
	struct abq_rule r = {0};
	struct abq_attr a = {0};
	struct abq_history h = {0};
	struct abq_notice n = {0};
	struct abq_seen seen = {0};
	size_t cnt;

	FAILS(abq_store_device_get(NULL, "a", "b", &got, &err), "no store");
	FAILS(abq_store_device_get(s, NULL, "b", &got, &err), "required");
	FAILS(abq_store_device_get(s, "a", NULL, &got, &err), "required");
	FAILS(abq_store_device_get(s, "a", "", &got, &err), "required");
	FAILS(abq_store_device_put(s, NULL, &err), "required");
	FAILS(abq_store_device_put(s, &d, &err), "required");
	d.account = "a@x";
	d.device_id = "D";
	d.state = (enum abq_state)99;
	FAILS(abq_store_device_put(s, &d, &err), "range");
	FAILS(abq_store_device_delete(s, NULL, NULL, &cnt, &err), "required");
	FAILS(abq_store_device_iter(s, NULL, NULL, NULL, &err), "callback");
	FAILS(abq_store_device_count(s, "a", 0, NULL, &err), "count_r");
	FAILS(abq_store_device_touch(s, &seen, 1, &err), "required");
	FAILS(abq_store_entry_get(s, NULL, NULL, &e, &err), "required");
	FAILS(abq_store_entry_put(s, &e, &err), "required");
	e.device_id = "D";
	FAILS(abq_store_entry_put(s, &e, &err), "Allowed, Blocked or Quarantined");
	e.state = ABQ_STATE_DISCOVERY;
	FAILS(abq_store_entry_put(s, &e, &err), "Allowed, Blocked or Quarantined");
	FAILS(abq_store_entry_delete(s, NULL, NULL, true, &cnt, &err), "required");
	FAILS(abq_store_rule_insert(s, &r, &err), "rule");
	r.pattern = "x";
	r.level = ABQ_STATE_ALLOWED;
	r.charac = (enum abq_charac)17;
	FAILS(abq_store_rule_insert(s, &r, &err), "range");
	r.charac = ABQ_CHAR_DEVICEID;
	FAILS(abq_store_rule_update(s, &r, &err), "rule"); /* id 0 */
	FAILS(abq_store_attr_put(s, &a, &err), "required");
	a.scope = ABQ_SCOPE_ACCOUNT;
	a.name = "abqMode";
	a.value = "Strict";
	FAILS(abq_store_attr_put(s, &a, &err), "required"); /* no target */
	FAILS(abq_store_attr_delete(s, ABQ_SCOPE_DOMAIN, "", "abqMode", &err), "required");
	FAILS(abq_store_history_add(s, &h, &err), "what");
	FAILS(abq_store_change_add(s, ABQ_CHANGE_DEVICE, NULL, 0, &err), "key");
	FAILS(abq_store_change_add(s, (enum abq_change_kind)0, "k", 0, &err), "kind");
	FAILS(abq_store_notice_add(s, &n, &err), "required");
	FAILS(abq_store_begin(NULL, &err), "no store");

	/* No errstr_r, and NULL handles, are accepted too. */
	assert_int_equal(abq_store_device_get(s, NULL, NULL, &got, NULL), -1);
	abq_store_rollback(NULL);
	abq_store_close(NULL);
	{
		struct abq_store *none = NULL;

		abq_store_close(&none);
	}
	abq_device_clear(NULL);
	abq_entry_clear(NULL);
	assert_string_equal(census(s), "0,0,0,0,0,0,0");
}

/* ABQ_STORE_FAULT=N fails the N-th write, so rollback paths can be tested. */
static void
test_fault_injection(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_device got;
	size_t n = 0;

	setenv("ABQ_STORE_FAULT", "3", 1);
	put_device(s, "a@x", "F1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	/* Reads and begin are not writes. */
	assert_int_equal(abq_store_device_get(s, "a@x", "F1", &got, &err), 1);
	abq_device_clear(&got);
	OK(abq_store_device_iter(s, NULL, COUNTER(struct abq_device), &n, &err));
	put_entry(s, "F1", NULL, ABQ_STATE_ALLOWED);
	{
		struct abq_device d = {.account = "a@x", .device_id = "F3"};

		FAILS(abq_store_device_put(s, &d, &err), "injected fault");
	}
	assert_int_equal(abq_store_device_get(s, "a@x", "F3", &got, &err), 0);
	put_device(s, "a@x", "F4", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);

	/* In a transaction: the fault, then the caller's rollback. */
	setenv("ABQ_STORE_FAULT", "2", 1);
	OK(abq_store_begin(s, &err));
	put_device(s, "a@x", "T1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	{
		struct abq_history h = {.what = "state"};

		FAILS(abq_store_history_add(s, &h, &err), "injected fault");
	}
	abq_store_rollback(s);
	assert_int_equal(abq_store_device_get(s, "a@x", "T1", &got, &err), 0);

	/* A failed commit leaves the transaction to roll back. */
	setenv("ABQ_STORE_FAULT", "3", 1);
	OK(abq_store_begin(s, &err));
	put_device(s, "a@x", "C1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_entry(s, "C1", NULL, ABQ_STATE_ALLOWED);
	FAILS(abq_store_commit(s, &err), "injected fault");
	abq_store_rollback(s);
	assert_int_equal(abq_store_device_get(s, "a@x", "C1", &got, &err), 0);

	/* Unset: no more faults. */
	unsetenv("ABQ_STORE_FAULT");
	put_device(s, "a@x", "U1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "a@x", "U2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	put_device(s, "a@x", "U3", ABQ_STATE_ALLOWED, ABQ_REASON_MODE, 1);
	assert_string_equal(devices_of(s, NULL), "a@x/F1,a@x/F4,a@x/U1,a@x/U2,a@x/U3");
}

#define WRITERS 2
#define WRITES  200

/* One writer process: WRITES transactions of a device and a history row. */
static int
writer(const char *url, int w)
{
	struct abq_store *s = abq_store_open(url, NULL, 0, &err);
	char acct[32], id[32];
	int i;

	if (s == NULL) {
		fprintf(stderr, "writer %d: open: %s\n", w, err);
		return 1;
	}
	for (i = 0; i < WRITES; i++) {
		struct abq_device d = {.account = acct,
		                       .device_id = id,
		                       .state = ABQ_STATE_ALLOWED,
		                       .reason = ABQ_REASON_MODE};
		struct abq_history h = {.at = i, .what = "state", .subject = id, .account = acct};

		snprintf(acct, sizeof(acct), "writer%d@example.com", w);
		snprintf(id, sizeof(id), "W%dD%03d", w, i);
		if (abq_store_begin(s, &err) < 0 || abq_store_device_put(s, &d, &err) < 0 ||
		    abq_store_history_add(s, &h, &err) < 0 || abq_store_commit(s, &err) < 0) {
			fprintf(stderr, "writer %d, write %d: %s\n", w, i, err);
			abq_store_rollback(s);
			abq_store_close(&s);
			return 1;
		}
	}
	abq_store_close(&s);
	return 0;
}

/* Two processes writing at once both succeed: they queue on the write lock. */
static void
test_concurrent_writers(void **state)
{
	struct fx *f = FX(state);
	pid_t pid[WRITERS];
	size_t n = 0;
	int w, status;

	for (w = 0; w < WRITERS; w++) {
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0)
			_exit(writer(f->url, w));
	}
	for (w = 0; w < WRITERS; w++) {
		assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	OK(abq_store_device_count(f->s, NULL, 0, &n, &err));
	assert_int_equal(n, WRITERS * WRITES);
	for (w = 0; w < WRITERS; w++) {
		char acct[32];

		snprintf(acct, sizeof(acct), "writer%d@example.com", w);
		OK(abq_store_device_count(f->s, acct, 0, &n, &err));
		assert_int_equal(n, WRITES);
	}
	n = 0;
	OK(abq_store_history_iter(f->s, NULL, cb_history_count, &n, &err));
	assert_int_equal(n, WRITERS * WRITES);
}

#define IMPORT 100000

/*
 * An import of 100,000 entries with their history in one transaction lands
 * whole. Its time is printed, not asserted: speed is measured side by side in
 * bench/run.sh (abqctl mobile abq import of 100,000 lines), where a loaded
 * machine cannot fail the suite.
 */
static void
test_import_bulk(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct timespec t0, t1;
	char id[32], subject[64];
	size_t n = 0;
	double secs;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	OK(abq_store_begin(s, &err));
	for (i = 0; i < IMPORT; i++) {
		struct abq_entry e = {.device_id = id,
		                      .state = ABQ_STATE_ALLOWED,
		                      .created_by = "admin",
		                      .created_at = 1700000000};
		struct abq_history h = {.at = 1700000000,
		                        .who = "admin",
		                        .what = "entry",
		                        .subject = subject,
		                        .new_value = "Allowed",
		                        .reason = "import",
		                        .device_id = id};

		snprintf(id, sizeof(id), "IMPORT%06d", i);
		snprintf(subject, sizeof(subject), "%s", id);
		OK(abq_store_entry_put(s, &e, &err));
		OK(abq_store_history_add(s, &h, &err));
	}
	OK(abq_store_commit(s, &err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("import of %d entries + history rows: %.3f s\n", IMPORT, secs);
	OK(abq_store_entry_iter(s, ABQ_STATE_ALLOWED, COUNTER(struct abq_entry), &n, &err));
	assert_int_equal(n, IMPORT);
}

int
main(void)
{
	/* The contract every backend keeps. */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_device_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_case_insensitive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_iter_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_iter_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_iter_callback_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_touch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entries_unseen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entry_iter_callback_deletes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_rolls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syncstate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syncstate_device_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_due_mark, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_v3_to_v4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_wipe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_provision_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loggers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folders_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folders_upgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clientids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clientids_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clientids_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clientids_upgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_colls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_refresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_refresh_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_item_put, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_restore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pim_upgrade, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounts_canonicalize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_readonly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault_injection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_bulk, setup, teardown),
	};
	/* The SQLite file itself: identity, URLs, foreign files, migrations, modes. */
	const struct CMUnitTest sqlite_tests[] = {
	    cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_urls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_foreign, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_not_a_database, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_v2_to_v3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_not_writable, setup, teardown),
	};
	const char *url = getenv("ABQ_TEST_STORE_URL");
	int failed = cmocka_run_group_tests_name("store contract", tests, NULL, NULL);

	if (url == NULL || strcmp(url, "sqlite") == 0)
		failed += cmocka_run_group_tests_name("store contract: the SQLite file",
		                                      sqlite_tests, NULL, NULL);
	return failed;
}
