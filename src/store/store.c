/*
 * store.c: the one door to the store.
 *
 * Every abq_store_* call passes through a wrapper here, in the manner of
 * SQLite's own VFS shims: the wrapper checks its arguments (a NULL key is an
 * error with a message, never a crash), applies the test-time fault injection,
 * and only then calls the backend's operation through the ops table. Backends
 * therefore never see a NULL store, a NULL errstr_r or a missing key.
 *
 * Fault injection: when the environment variable ABQ_STORE_FAULT is set to N,
 * the N-th write call (put, delete, insert, update, add, touch, commit) made in
 * this process after the variable took that value fails with "injected fault"
 * without reaching the backend. The count starts again whenever the value
 * changes, so a test may set it, run, unset it, and set it again.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_private.h"

/* The backends, in the order their schemes are tried. */
static const struct abq_store_ops *const backends[] = {
    &abq_store_sqlite_ops,
};

/*
 * The ops table of an open store: every backend's struct begins with
 * struct abq_store_base.
 */
static const struct abq_store_ops *
ops_of(const struct abq_store *s)
{
	return ((const struct abq_store_base *)(const void *)s)->ops;
}

/* State of the fault injection, shared by every store of the process. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static char fault_value[32]; /* the ABQ_STORE_FAULT value the count belongs to */
static long long fault_count;

/*
 * Decide whether this write call is the one that must fail. Reads the
 * environment at every call so that a test can change it between steps; a new
 * value restarts the count. Returns true (and sets *errstr_r) for the N-th call.
 */
static bool
fault_now(const char **errstr_r)
{
	const char *v = getenv("ABQ_STORE_FAULT");
	long long n;
	const char *perr;
	bool fire = false;

	pthread_mutex_lock(&fault_lock);
	if (v == NULL || *v == '\0') {
		fault_value[0] = '\0';
		fault_count = 0;
	} else {
		if (strncmp(v, fault_value, sizeof(fault_value)) != 0) {
			snprintf(fault_value, sizeof(fault_value), "%s", v);
			fault_count = 0;
		}
		fault_count++;
		if (parse_int(v, 1, LLONG_MAX, &n, &perr) == 0 && fault_count == n)
			fire = true;
	}
	pthread_mutex_unlock(&fault_lock);
	if (fire)
		*errstr_r = "injected fault";
	return fire;
}

/*
 * The common prologue of the wrappers: errstr_r may be NULL (the caller does
 * not want the message), the store may not be.
 */
#define CHECK_STORE(s, errstr_r)                                                                   \
	const char *errstr_dummy_;                                                                 \
	if ((errstr_r) == NULL)                                                                    \
		(errstr_r) = &errstr_dummy_;                                                       \
	if ((s) == NULL) {                                                                         \
		*(errstr_r) = "no store is open";                                                  \
		return -1;                                                                         \
	}

/* Fail the calling wrapper with a static message. */
#define FAIL_ARG(errstr_r, msg)                                                                    \
	do {                                                                                       \
		*(errstr_r) = (msg);                                                               \
		return -1;                                                                         \
	} while (0)

/* A key must be present and non-empty. */
static bool
key_ok(const char *k)
{
	return k != NULL && *k != '\0';
}

/* Whether v is a state a record may carry (NONE included). */
static bool
state_ok(enum abq_state v)
{
	return v >= ABQ_STATE_NONE && v <= ABQ_STATE_DISCOVERY;
}

/* Whether v is a state an administrator sets (entries, rule levels). */
static bool
level_ok(enum abq_state v)
{
	return v == ABQ_STATE_ALLOWED || v == ABQ_STATE_BLOCKED || v == ABQ_STATE_QUARANTINED;
}

/*
 * Open the store named by url: find the backend whose scheme prefixes it and
 * hand it the rest; a PostgreSQL URL ("postgresql://" or "postgres://") goes
 * whole to the PostgreSQL backend.
 */
struct abq_store *
abq_store_open(const char *url, const char *base_dir, int flags, const char **errstr_r)
{
	const char *dummy;
	size_t i;

	if (errstr_r == NULL)
		errstr_r = &dummy;
	if (url == NULL || *url == '\0') {
		*errstr_r = "no store URL given";
		return NULL;
	}
	if ((flags & ABQ_STORE_CREATE) && (flags & ABQ_STORE_READONLY)) {
		*errstr_r = "a store cannot be created read-only";
		return NULL;
	}
	/* PostgreSQL takes the whole URL (libpq parses both spellings of the scheme). */
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return abq_store_pgsql_ops.open(url, base_dir, flags, errstr_r);
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		const struct abq_store_ops *ops = backends[i];
		size_t n = strlen(ops->scheme);

		if (strncmp(url, ops->scheme, n) == 0)
			return ops->open(url + n, base_dir, flags, errstr_r);
	}
	*errstr_r = "unknown store URL scheme (expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or "
	            "postgresql://...)";
	return NULL;
}

/* Close the store and forget the caller's pointer to it. */
void
abq_store_close(struct abq_store **store)
{
	if (store == NULL || *store == NULL)
		return;
	ops_of(*store)->close(*store);
	*store = NULL;
}

/* The backend's name, "sqlite". */
const char *
abq_store_backend(const struct abq_store *s)
{
	return s == NULL ? "none" : ops_of(s)->name;
}

/* A printable location: the database file for SQLite. */
const char *
abq_store_location(const struct abq_store *s)
{
	return s == NULL ? "" : ops_of(s)->location(s);
}

/* The files of the store, so that a root abqctl can hand them to abqd's user. */
const char *const *
abq_store_files(const struct abq_store *s)
{
	static const char *const none[] = {NULL};

	return s == NULL ? none : ops_of(s)->files(s);
}

/* Start a write transaction (the write lock is taken at once). */
int
abq_store_begin(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	return ops_of(s)->begin(s, errstr_r);
}

/*
 * Commit the open transaction. A commit counts as a write for the fault
 * injection: an injected failure leaves the transaction open, as a real one
 * would, so that the caller's rollback path runs.
 */
int
abq_store_commit(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->commit(s, errstr_r);
}

/* Discard the open transaction, if any. Never fails: there is nothing to report. */
void
abq_store_rollback(struct abq_store *s)
{
	if (s != NULL)
		ops_of(s)->rollback(s);
}

/* Look up the device (account, device_id). */
int
abq_store_device_get(struct abq_store *s, const char *account, const char *device_id,
                     struct abq_device *out, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(account) || !key_ok(device_id) || out == NULL)
		FAIL_ARG(errstr_r, "device_get: account and device_id are required");
	return ops_of(s)->device_get(s, account, device_id, out, errstr_r);
}

/* Write the whole record of a device. */
int
abq_store_device_put(struct abq_store *s, const struct abq_device *d, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (d == NULL || !key_ok(d->account) || !key_ok(d->device_id))
		FAIL_ARG(errstr_r, "device_put: account and device_id are required");
	if (!state_ok(d->state) || d->reason < ABQ_REASON_NONE || d->reason > ABQ_REASON_DISCOVERY)
		FAIL_ARG(errstr_r, "device_put: state or reason out of range");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->device_put(s, d, errstr_r);
}

/* Remove the records of a DeviceId, of every account or of one. */
int
abq_store_device_delete(struct abq_store *s, const char *device_id, const char *account,
                        size_t *count_r, const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(device_id))
		FAIL_ARG(errstr_r, "device_delete: device_id is required");
	if (account != NULL && *account == '\0')
		FAIL_ARG(errstr_r, "device_delete: empty account");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->device_delete(s, device_id, account, count_r ? count_r : &dummy,
	                                errstr_r);
}

/* Iterate over the devices that pass the filter (NULL filter: every device). */
int
abq_store_device_iter(struct abq_store *s, const struct abq_device_filter *f, abq_device_cb *cb,
                      void *arg, const char **errstr_r)
{
	static const struct abq_device_filter all;

	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "device_iter: no callback");
	if (f != NULL && !state_ok(f->state))
		FAIL_ARG(errstr_r, "device_iter: state out of range");
	return ops_of(s)->device_iter(s, f ? f : &all, cb, arg, errstr_r);
}

/* Count the devices of account (of every account when account is NULL). */
int
abq_store_device_count(struct abq_store *s, const char *account, int64_t before, size_t *count_r,
                       const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (count_r == NULL)
		FAIL_ARG(errstr_r, "device_count: no count_r");
	return ops_of(s)->device_count(s, account, before, count_r, errstr_r);
}

/* Apply a batch of last-seen updates. */
int
abq_store_device_touch(struct abq_store *s, const struct abq_seen *v, size_t n,
                       const char **errstr_r)
{
	size_t i;

	CHECK_STORE(s, errstr_r);
	if (n > 0 && v == NULL)
		FAIL_ARG(errstr_r, "device_touch: no updates");
	for (i = 0; i < n; i++)
		if (!key_ok(v[i].account) || !key_ok(v[i].device_id))
			FAIL_ARG(errstr_r, "device_touch: account and device_id are required");
	if (n == 0)
		return 0;
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->device_touch(s, v, n, errstr_r);
}

/* Look up the entry for DeviceId alone (account NULL) or DeviceId/account. */
int
abq_store_entry_get(struct abq_store *s, const char *device_id, const char *account,
                    struct abq_entry *out, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(device_id) || out == NULL)
		FAIL_ARG(errstr_r, "entry_get: device_id is required");
	if (account != NULL && *account == '\0')
		FAIL_ARG(errstr_r, "entry_get: empty account");
	return ops_of(s)->entry_get(s, device_id, account, out, errstr_r);
}

/* Write (insert or replace) a list entry. */
int
abq_store_entry_put(struct abq_store *s, const struct abq_entry *e, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (e == NULL || !key_ok(e->device_id))
		FAIL_ARG(errstr_r, "entry_put: device_id is required");
	if (e->account != NULL && *e->account == '\0')
		FAIL_ARG(errstr_r, "entry_put: empty account");
	if (!level_ok(e->state))
		FAIL_ARG(errstr_r, "entry_put: state must be Allowed, Blocked or Quarantined");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->entry_put(s, e, errstr_r);
}

/* Remove list entries of a DeviceId (see store.h for the three variants). */
int
abq_store_entry_delete(struct abq_store *s, const char *device_id, const char *account,
                       bool all_accounts, size_t *count_r, const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(device_id))
		FAIL_ARG(errstr_r, "entry_delete: device_id is required");
	if (account != NULL && *account == '\0')
		FAIL_ARG(errstr_r, "entry_delete: empty account");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->entry_delete(s, device_id, account, all_accounts,
	                               count_r ? count_r : &dummy, errstr_r);
}

/* Iterate over the list entries, all or those of one state. */
int
abq_store_entry_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb, void *arg,
                     const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "entry_iter: no callback");
	if (!state_ok(state))
		FAIL_ARG(errstr_r, "entry_iter: state out of range");
	return ops_of(s)->entry_iter(s, state, cb, arg, errstr_r);
}

/* Check the fields every written rule needs. */
static bool
rule_ok(const struct abq_rule *r)
{
	return r != NULL && r->pattern != NULL && level_ok(r->level) &&
	       r->charac >= ABQ_CHAR_DEVICEID && r->charac <= ABQ_CHAR_USERAGENT &&
	       r->match >= ABQ_MATCH_EXACT && r->match <= ABQ_MATCH_REGEX &&
	       (r->domain == NULL || *r->domain != '\0');
}

/* Insert a rule; its new id is written into r->id. */
int
abq_store_rule_insert(struct abq_store *s, struct abq_rule *r, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!rule_ok(r))
		FAIL_ARG(errstr_r, "rule_insert: incomplete or out-of-range rule");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->rule_insert(s, r, errstr_r);
}

/* Rewrite the rule r->id (fails when there is no such rule). */
int
abq_store_rule_update(struct abq_store *s, const struct abq_rule *r, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!rule_ok(r) || r->id <= 0)
		FAIL_ARG(errstr_r, "rule_update: incomplete or out-of-range rule");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->rule_update(s, r, errstr_r);
}

/* Look up a rule by id. */
int
abq_store_rule_get(struct abq_store *s, int64_t id, struct abq_rule *out, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (out == NULL)
		FAIL_ARG(errstr_r, "rule_get: no output record");
	return ops_of(s)->rule_get(s, id, out, errstr_r);
}

/* Delete a rule by id (fails when there is no such rule). */
int
abq_store_rule_delete(struct abq_store *s, int64_t id, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->rule_delete(s, id, errstr_r);
}

/* Iterate over rules: all, global only, or one domain's. */
int
abq_store_rule_iter(struct abq_store *s, const char *domain, bool all, abq_rule_cb *cb, void *arg,
                    const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "rule_iter: no callback");
	return ops_of(s)->rule_iter(s, domain, all, cb, arg, errstr_r);
}

/*
 * An attribute's scope and target must agree: global has no target (whatever
 * the caller passed is ignored), domain and account need one.
 */
static bool
scope_ok(enum abq_scope scope, const char *target)
{
	if (scope == ABQ_SCOPE_GLOBAL)
		return true;
	return (scope == ABQ_SCOPE_DOMAIN || scope == ABQ_SCOPE_ACCOUNT) && key_ok(target);
}

/* Look up an attribute at a scope. */
int
abq_store_attr_get(struct abq_store *s, enum abq_scope scope, const char *target, const char *name,
                   struct abq_attr *out, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!scope_ok(scope, target) || !key_ok(name) || out == NULL)
		FAIL_ARG(errstr_r, "attr_get: scope, target and name are required");
	return ops_of(s)->attr_get(s, scope, scope == ABQ_SCOPE_GLOBAL ? NULL : target, name, out,
	                           errstr_r);
}

/* Set an attribute at a scope (insert or replace). */
int
abq_store_attr_put(struct abq_store *s, const struct abq_attr *a, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (a == NULL || !scope_ok(a->scope, a->target) || !key_ok(a->name) || a->value == NULL)
		FAIL_ARG(errstr_r, "attr_put: scope, target, name and value are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->attr_put(s, a, errstr_r);
}

/* Remove an attribute at a scope; removing an absent one is not an error. */
int
abq_store_attr_delete(struct abq_store *s, enum abq_scope scope, const char *target,
                      const char *name, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!scope_ok(scope, target) || !key_ok(name))
		FAIL_ARG(errstr_r, "attr_delete: scope, target and name are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->attr_delete(s, scope, scope == ABQ_SCOPE_GLOBAL ? NULL : target, name,
	                              errstr_r);
}

/* Iterate over every attribute. */
int
abq_store_attr_iter(struct abq_store *s, abq_attr_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "attr_iter: no callback");
	return ops_of(s)->attr_iter(s, cb, arg, errstr_r);
}

/* Append a history row; its id is written into h->id. */
int
abq_store_history_add(struct abq_store *s, struct abq_history *h, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (h == NULL || h->what == NULL)
		FAIL_ARG(errstr_r, "history_add: what is required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->history_add(s, h, errstr_r);
}

/* Iterate over history (NULL filter: all of it, oldest first). */
int
abq_store_history_iter(struct abq_store *s, const struct abq_history_filter *f, abq_history_cb *cb,
                       void *arg, const char **errstr_r)
{
	static const struct abq_history_filter all;

	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "history_iter: no callback");
	return ops_of(s)->history_iter(s, f ? f : &all, cb, arg, errstr_r);
}

/* Append a row to the change log. */
int
abq_store_change_add(struct abq_store *s, enum abq_change_kind kind, const char *key, int64_t at,
                     const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (kind < ABQ_CHANGE_DEVICE || kind > ABQ_CHANGE_TEMPLATE || key == NULL)
		FAIL_ARG(errstr_r, "change_add: kind and key are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->change_add(s, kind, key, at, errstr_r);
}

/* Iterate over the changes after since, ascending. */
int
abq_store_change_iter(struct abq_store *s, int64_t since, abq_change_cb *cb, void *arg,
                      const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "change_iter: no callback");
	return ops_of(s)->change_iter(s, since, cb, arg, errstr_r);
}

/* The highest sequence number ever given out (0 for a new store). */
int
abq_store_change_last(struct abq_store *s, int64_t *seq_r, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (seq_r == NULL)
		FAIL_ARG(errstr_r, "change_last: no seq_r");
	return ops_of(s)->change_last(s, seq_r, errstr_r);
}

/* Queue a notice in the outbox; its id is written into n->id. */
int
abq_store_notice_add(struct abq_store *s, struct abq_notice *n, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (n == NULL || !key_ok(n->recipient) || !key_ok(n->kind))
		FAIL_ARG(errstr_r, "notice_add: recipient and kind are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->notice_add(s, n, errstr_r);
}

/* Iterate over the outbox, all notices or those in one state. */
int
abq_store_notice_iter(struct abq_store *s, const char *state, abq_notice_cb *cb, void *arg,
                      const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "notice_iter: no callback");
	return ops_of(s)->notice_iter(s, state, cb, arg, errstr_r);
}

/* Count the notices in one state and find the oldest. */
int
abq_store_notice_stats(struct abq_store *s, const char *state, int64_t *count_r, int64_t *oldest_r,
                       const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(state) || count_r == NULL || oldest_r == NULL)
		FAIL_ARG(errstr_r, "notice_stats: a state and two results are required");
	*count_r = *oldest_r = 0;
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->notice_stats(s, state, count_r, oldest_r, errstr_r);
}

/* Iterate over the queued notices due at now. */
int
abq_store_notice_due(struct abq_store *s, int64_t now, abq_notice_cb *cb, void *arg,
                     const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "notice_due: no callback");
	return ops_of(s)->notice_due(s, now, cb, arg, errstr_r);
}

/* Whether v is a state a notice may be in. */
static bool
notice_state_ok(const char *v)
{
	return v != NULL &&
	       (strcmp(v, "queued") == 0 || strcmp(v, "sent") == 0 || strcmp(v, "failed") == 0);
}

/* Record the outcome of one delivery attempt of a notice. */
int
abq_store_notice_mark(struct abq_store *s, int64_t id, const char *state, int attempts,
                      int64_t next_attempt, const char *last_error, int64_t sent,
                      const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!notice_state_ok(state) || attempts < 0)
		FAIL_ARG(errstr_r, "notice_mark: state must be queued, sent or failed");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->notice_mark(s, id, state, attempts, next_attempt, last_error, sent,
	                              errstr_r);
}

/* Whether (scope, domain, kind, locale) is a complete template key. */
static bool
template_key_ok(enum abq_scope scope, const char *domain, const char *kind, const char *locale)
{
	if (scope != ABQ_SCOPE_GLOBAL && scope != ABQ_SCOPE_DOMAIN)
		return false;
	if (scope == ABQ_SCOPE_DOMAIN && !key_ok(domain))
		return false;
	return key_ok(kind) && key_ok(locale);
}

/* Insert or replace a notice template. */
int
abq_store_template_put(struct abq_store *s, const struct abq_template *t, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (t == NULL || !template_key_ok(t->scope, t->domain, t->kind, t->locale))
		FAIL_ARG(errstr_r, "template_put: scope (global or domain), domain for the domain "
		                   "scope, kind and locale are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->template_put(s, t, errstr_r);
}

/* Look up a notice template by its key. */
int
abq_store_template_get(struct abq_store *s, enum abq_scope scope, const char *domain,
                       const char *kind, const char *locale, struct abq_template *out,
                       const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (out == NULL || !template_key_ok(scope, domain, kind, locale))
		FAIL_ARG(errstr_r, "template_get: scope (global or domain), domain for the domain "
		                   "scope, kind and locale are required");
	return ops_of(s)->template_get(s, scope, domain, kind, locale, out, errstr_r);
}

/* Remove a notice template; removing nothing is not an error. */
int
abq_store_template_delete(struct abq_store *s, enum abq_scope scope, const char *domain,
                          const char *kind, const char *locale, size_t *count_r,
                          const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!template_key_ok(scope, domain, kind, locale))
		FAIL_ARG(errstr_r, "template_delete: scope (global or domain), domain for the "
		                   "domain scope, kind and locale are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->template_delete(s, scope, domain, kind, locale,
	                                  count_r ? count_r : &dummy, errstr_r);
}

/* Iterate over every notice template. */
int
abq_store_template_iter(struct abq_store *s, abq_template_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "template_iter: no callback");
	return ops_of(s)->template_iter(s, cb, arg, errstr_r);
}

/* Look up an administrator by name. */
int
abq_store_admin_get(struct abq_store *s, const char *name, struct abq_admin *out,
                    const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(name) || out == NULL)
		FAIL_ARG(errstr_r, "admin_get: name is required");
	return ops_of(s)->admin_get(s, name, out, errstr_r);
}

/* Insert or replace an administrator. */
int
abq_store_admin_put(struct abq_store *s, const struct abq_admin *a, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (a == NULL || !key_ok(a->name) || !key_ok(a->password_hash))
		FAIL_ARG(errstr_r, "admin_put: name and password_hash are required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->admin_put(s, a, errstr_r);
}

/* Remove an administrator and their tokens; removing nothing is not an error. */
int
abq_store_admin_delete(struct abq_store *s, const char *name, size_t *count_r,
                       const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(name))
		FAIL_ARG(errstr_r, "admin_delete: name is required");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->admin_delete(s, name, count_r ? count_r : &dummy, errstr_r);
}

/* Iterate over every administrator by name. */
int
abq_store_admin_iter(struct abq_store *s, abq_admin_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "admin_iter: no callback");
	return ops_of(s)->admin_iter(s, cb, arg, errstr_r);
}

/* Add a token; its new id is written into t->id. */
int
abq_store_token_add(struct abq_store *s, struct abq_token *t, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (t == NULL || !key_ok(t->admin) || !key_ok(t->hash))
		FAIL_ARG(errstr_r, "token_add: admin and hash are required");
	if (t->label != NULL && *t->label == '\0')
		FAIL_ARG(errstr_r, "token_add: empty label");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->token_add(s, t, errstr_r);
}

/* Look a token up by its hash. */
int
abq_store_token_find(struct abq_store *s, const char *hash, struct abq_token *out,
                     const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(hash) || out == NULL)
		FAIL_ARG(errstr_r, "token_find: hash is required");
	return ops_of(s)->token_find(s, hash, out, errstr_r);
}

/* Record that token id was used at `at`. */
int
abq_store_token_touch(struct abq_store *s, int64_t id, int64_t at, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->token_touch(s, id, at, errstr_r);
}

/* Remove an administrator's tokens, those with one label or all. */
int
abq_store_token_delete(struct abq_store *s, const char *admin, const char *label, size_t *count_r,
                       const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(admin))
		FAIL_ARG(errstr_r, "token_delete: admin is required");
	if (label != NULL && *label == '\0')
		FAIL_ARG(errstr_r, "token_delete: empty label");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->token_delete(s, admin, label, count_r ? count_r : &dummy, errstr_r);
}

/* Iterate over the tokens of one administrator, or of all (admin NULL). */
int
abq_store_token_iter(struct abq_store *s, const char *admin, abq_token_cb *cb, void *arg,
                     const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "token_iter: no callback");
	if (admin != NULL && *admin == '\0')
		FAIL_ARG(errstr_r, "token_iter: empty admin");
	return ops_of(s)->token_iter(s, admin, cb, arg, errstr_r);
}

/* Count the tokens of one administrator, or of all (admin NULL). */
int
abq_store_token_count(struct abq_store *s, const char *admin, size_t *count_r,
                      const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (count_r == NULL)
		FAIL_ARG(errstr_r, "token_count: no count_r");
	if (admin != NULL && *admin == '\0')
		FAIL_ARG(errstr_r, "token_count: empty admin");
	return ops_of(s)->token_count(s, admin, count_r, errstr_r);
}

/* Read the sync state of one collection of a device. */
int
abq_store_syncstate_get(struct abq_store *s, const char *account, const char *device_id,
                        const char *collection, void **state_r, size_t *len_r, int64_t *updated_r,
                        const char **errstr_r)
{
	int64_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(account) || !key_ok(device_id) || !key_ok(collection) || state_r == NULL ||
	    len_r == NULL)
		FAIL_ARG(errstr_r, "syncstate_get: account, device_id and collection are required");
	*state_r = NULL;
	*len_r = 0;
	return ops_of(s)->syncstate_get(s, account, device_id, collection, state_r, len_r,
	                                updated_r ? updated_r : &dummy, errstr_r);
}

/* Insert or replace the sync state of one collection of a device. */
int
abq_store_syncstate_put(struct abq_store *s, const char *account, const char *device_id,
                        const char *collection, const void *state, size_t len, int64_t updated,
                        const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (!key_ok(account) || !key_ok(device_id) || !key_ok(collection))
		FAIL_ARG(errstr_r, "syncstate_put: account, device_id and collection are required");
	if (state == NULL && len > 0)
		FAIL_ARG(errstr_r, "syncstate_put: no state");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->syncstate_put(s, account, device_id, collection, state ? state : "", len,
	                                updated, errstr_r);
}

/* Remove the sync state of one collection, or of every collection (NULL). */
int
abq_store_syncstate_delete(struct abq_store *s, const char *account, const char *device_id,
                           const char *collection, size_t *count_r, const char **errstr_r)
{
	size_t dummy;

	CHECK_STORE(s, errstr_r);
	if (!key_ok(account) || !key_ok(device_id))
		FAIL_ARG(errstr_r, "syncstate_delete: account and device_id are required");
	if (collection != NULL && *collection == '\0')
		FAIL_ARG(errstr_r, "syncstate_delete: empty collection");
	if (fault_now(errstr_r))
		return -1;
	return ops_of(s)->syncstate_delete(s, account, device_id, collection,
	                                   count_r ? count_r : &dummy, errstr_r);
}

/*
 * Record destructors (here and below): free the owned strings and zero the
 * struct, so that a cleared record can be cleared again or reused. NULL is
 * accepted.
 */
void
abq_history_clear(struct abq_history *h)
{
	if (h == NULL)
		return;
	free(h->who);
	free(h->what);
	free(h->subject);
	free(h->old_value);
	free(h->new_value);
	free(h->reason);
	free(h->device_id);
	free(h->account);
	memset(h, 0, sizeof(*h));
}

void
abq_change_clear(struct abq_change *c)
{
	if (c == NULL)
		return;
	free(c->key);
	memset(c, 0, sizeof(*c));
}

void
abq_notice_clear(struct abq_notice *n)
{
	if (n == NULL)
		return;
	free(n->recipient);
	free(n->kind);
	free(n->account);
	free(n->device_id);
	free(n->template_ref);
	free(n->rendered);
	free(n->state);
	free(n->last_error);
	memset(n, 0, sizeof(*n));
}

void
abq_template_clear(struct abq_template *t)
{
	if (t == NULL)
		return;
	free(t->domain);
	free(t->kind);
	free(t->locale);
	free(t->from);
	free(t->reply_to);
	free(t->subject);
	free(t->body_plain);
	free(t->body_html);
	free(t->set_by);
	memset(t, 0, sizeof(*t));
}

void
abq_admin_clear(struct abq_admin *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->password_hash);
	free(a->created_by);
	memset(a, 0, sizeof(*a));
}

void
abq_token_clear(struct abq_token *t)
{
	if (t == NULL)
		return;
	free(t->admin);
	free(t->label);
	free(t->hash);
	free(t->created_by);
	memset(t, 0, sizeof(*t));
}

/* ---- several nodes (store.h) -------------------------------------------- */

struct abq_store_listener *
abq_store_listener_new(struct abq_store *s, const char **errstr_r)
{
	const char *dummy;

	if (errstr_r == NULL)
		errstr_r = &dummy;
	*errstr_r = NULL;
	if (s == NULL) {
		*errstr_r = "no store is open";
		return NULL;
	}
	if (ops_of(s)->listener_new == NULL)
		return NULL; /* no push: the caller reads the change log periodically */
	return ops_of(s)->listener_new(s, errstr_r);
}

static const struct abq_store_ops *
listener_ops(const struct abq_store_listener *l)
{
	return ((const struct abq_store_listener_base *)(const void *)l)->ops;
}

int
abq_store_listener_connect(struct abq_store_listener *l, const char **errstr_r)
{
	const char *dummy;

	if (errstr_r == NULL)
		errstr_r = &dummy;
	if (l == NULL) {
		*errstr_r = "no listener";
		return -1;
	}
	return listener_ops(l)->listener_connect(l, errstr_r);
}

int
abq_store_listener_fd(const struct abq_store_listener *l)
{
	return l == NULL ? -1 : listener_ops(l)->listener_fd(l);
}

int
abq_store_listener_read(struct abq_store_listener *l, int64_t *seq_r, const char **errstr_r)
{
	const char *dummy;

	if (errstr_r == NULL)
		errstr_r = &dummy;
	if (l == NULL) {
		*errstr_r = "no listener";
		return -1;
	}
	return listener_ops(l)->listener_read(l, seq_r, errstr_r);
}

void
abq_store_listener_free(struct abq_store_listener **l)
{
	if (l == NULL || *l == NULL)
		return;
	listener_ops(*l)->listener_free(*l);
	*l = NULL;
}

int
abq_store_try_lock(struct abq_store *s, int64_t key, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (ops_of(s)->try_lock == NULL)
		return 1; /* one node: the lock is trivially held */
	return ops_of(s)->try_lock(s, key, errstr_r);
}

bool
abq_store_connected(const struct abq_store *s)
{
	if (s == NULL)
		return false;
	return ops_of(s)->connected == NULL || ops_of(s)->connected(s);
}

/* ---- moving a registry (store.h) ---------------------------------------- */

void
abq_syncstate_clear(struct abq_syncstate *st)
{
	if (st == NULL)
		return;
	free(st->account);
	free(st->device_id);
	free(st->collection);
	free(st->state);
	memset(st, 0, sizeof(*st));
}

int
abq_store_syncstate_iter(struct abq_store *s, abq_syncstate_cb *cb, void *arg,
                         const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (cb == NULL)
		FAIL_ARG(errstr_r, "syncstate_iter: no callback");
	return ops_of(s)->syncstate_iter(s, cb, arg, errstr_r);
}

static int
restore(struct abq_store *s, enum abq_restore_kind kind, const void *rec, int64_t id,
        const char **errstr_r)
{
	if (rec == NULL || id <= 0)
		FAIL_ARG(errstr_r, "restore: a record with its id is required");
	return ops_of(s)->restore(s, kind, rec, errstr_r);
}

int
abq_store_rule_restore(struct abq_store *s, const struct abq_rule *r, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (r != NULL && (!key_ok(r->pattern) || !state_ok(r->level)))
		FAIL_ARG(errstr_r, "rule_restore: pattern and level are required");
	return restore(s, ABQ_RESTORE_RULE, r, r ? r->id : 0, errstr_r);
}

int
abq_store_history_restore(struct abq_store *s, const struct abq_history *h, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (h != NULL && !key_ok(h->what))
		FAIL_ARG(errstr_r, "history_restore: what is required");
	return restore(s, ABQ_RESTORE_HISTORY, h, h ? h->id : 0, errstr_r);
}

int
abq_store_notice_restore(struct abq_store *s, const struct abq_notice *n, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (n != NULL && (!key_ok(n->recipient) || !key_ok(n->kind)))
		FAIL_ARG(errstr_r, "notice_restore: recipient and kind are required");
	return restore(s, ABQ_RESTORE_NOTICE, n, n ? n->id : 0, errstr_r);
}

int
abq_store_change_restore(struct abq_store *s, const struct abq_change *c, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (c != NULL &&
	    (!key_ok(c->key) || c->kind < ABQ_CHANGE_DEVICE || c->kind > ABQ_CHANGE_TEMPLATE))
		FAIL_ARG(errstr_r, "change_restore: kind and key are required");
	return restore(s, ABQ_RESTORE_CHANGE, c, c ? c->seq : 0, errstr_r);
}

int
abq_store_restore_finish(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (ops_of(s)->restore_finish == NULL)
		return 0; /* the backend's counters follow the ids by themselves */
	return ops_of(s)->restore_finish(s, errstr_r);
}

/* A meta value of the store; see store.h. */
int
abq_store_meta_get(struct abq_store *s, const char *key, char **value_r, const char **errstr_r)
{
	CHECK_STORE(s, errstr_r);
	if (value_r == NULL)
		FAIL_ARG(errstr_r, "meta_get: no place for the value");
	*value_r = NULL;
	if (!key_ok(key))
		FAIL_ARG(errstr_r, "meta_get: no key");
	return ops_of(s)->meta_get(s, key, value_r, errstr_r);
}

/*
 * Give bare accounts the default domain; see store.h. The recorded domain is
 * read first without the write lock, so that the common case (done already)
 * costs one read; it is read again under the lock, so that two processes
 * starting at once rewrite once.
 */
int
abq_store_accounts_canonicalize(struct abq_store *s, const char *default_domain, size_t *count_r,
                                const char **errstr_r)
{
	size_t dummy_count;
	char *domain, *cur = NULL;
	int rc;

	CHECK_STORE(s, errstr_r);
	if (count_r == NULL)
		count_r = &dummy_count;
	*count_r = 0;
	if (default_domain == NULL || *default_domain == '\0')
		return 0;
	if (!domain_valid(default_domain))
		FAIL_ARG(errstr_r, "accounts_canonicalize: not a valid domain");
	domain = str_lower(xstrdup(default_domain));
	rc = ops_of(s)->meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &cur, errstr_r);
	if (rc < 0 || (rc == 1 && strcmp(cur, domain) == 0))
		goto out;
	free(cur);
	cur = NULL;
	if ((rc = abq_store_begin(s, errstr_r)) < 0)
		goto out;
	rc = ops_of(s)->meta_get(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &cur, errstr_r);
	if (rc == 1 && strcmp(cur, domain) == 0) {
		abq_store_rollback(s);
		rc = 0;
		goto out;
	}
	if (rc < 0 || fault_now(errstr_r) ||
	    ops_of(s)->accounts_canonicalize(s, domain, count_r, errstr_r) < 0 ||
	    abq_store_commit(s, errstr_r) < 0) {
		abq_store_rollback(s);
		*count_r = 0;
		rc = -1;
		goto out;
	}
	rc = 0;
out:
	free(cur);
	free(domain);
	return rc < 0 ? -1 : 0;
}
