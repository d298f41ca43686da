/*
 * store_sqlite.c: the SQLite backend of the store (the default).
 *
 * One database file, in WAL mode with synchronous=FULL so that a committed
 * decision survives a power cut before abqd answers the phone. The file says
 * what it is: PRAGMA application_id is 'ABQD' and PRAGMA user_version is the
 * schema version, so that abqd refuses a foreign database or a newer schema
 * instead of writing into it, and migrates an older one in one transaction.
 *
 * Statements of the point operations (get, put, delete, add) are prepared once
 * and cached; importing a hundred thousand entries in one transaction costs a
 * few hundred milliseconds.
 *
 * Iteration reads in batches of ITER_BATCH rows with a statement private to that
 * iteration (keyset pagination: each batch starts after the key of the previous
 * batch's last row). The statement is reset before the callbacks of a batch
 * run, so no read is pending while a callback works: a callback may write to
 * the store, open and commit a transaction, or start another iteration, and the
 * iteration goes on after the last key it delivered. A row a callback inserts or
 * moves ahead of that key is seen later in the same iteration; one behind it is
 * not. Outside a transaction each batch reads the newest committed data.
 *
 * A handle is for one thread at a time (SQLITE_OPEN_NOMUTEX); processes share
 * the file, and writers queue on the 10 s busy timeout.
 */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"
#include "store/store_private.h"
#include "store/store_cols.h"

#define ABQD_APPLICATION_ID 0x41425144 /* 'ABQD' */
#define BUSY_TIMEOUT_MS     10000
#define ITER_BATCH          256

/*
 * The migrations: migrations[v] takes a store from schema version v to v + 1.
 * A new schema version appends a script here and bumps ABQ_STORE_SCHEMA_VERSION;
 * a script is never edited once released.
 */
static const char *const migrations[ABQ_STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE devices ("
    " account TEXT NOT NULL,"
    " device_id TEXT NOT NULL COLLATE NOCASE,"
    " device_type TEXT, model TEXT, imei TEXT, friendly_name TEXT, os TEXT,"
    " os_language TEXT, phone_number TEXT, mobile_operator TEXT, user_agent TEXT,"
    " eas_version TEXT, last_address TEXT, last_command TEXT,"
    " first_seen INTEGER NOT NULL DEFAULT 0,"
    " last_seen INTEGER NOT NULL DEFAULT 0,"
    " state TEXT,"  /* canonical name; NULL for ABQ_STATE_NONE */
    " reason TEXT," /* canonical name; NULL for ABQ_REASON_NONE */
    " rule_id INTEGER NOT NULL DEFAULT 0,"
    " state_by TEXT,"
    " state_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, device_id));"
    "CREATE INDEX devices_device_id ON devices (device_id);"
    "CREATE INDEX devices_last_seen ON devices (last_seen);"
    "CREATE INDEX devices_state ON devices (state);"
    "CREATE TABLE entries ("
    " device_id TEXT NOT NULL COLLATE NOCASE,"
    " account TEXT," /* NULL: the DeviceId alone, for every account */
    " state TEXT NOT NULL,"
    " created_by TEXT,"
    " created_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX entries_key ON entries (device_id, coalesce(account, ''));"
    "CREATE TABLE rules ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " characteristic TEXT NOT NULL,"
    " match TEXT NOT NULL,"
    " pattern TEXT NOT NULL,"
    " level TEXT NOT NULL,"
    " rule_order INTEGER NOT NULL DEFAULT 0,"
    " domain TEXT," /* NULL: global */
    " created_by TEXT,"
    " created_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE attrs ("
    " scope TEXT NOT NULL,"             /* global, domain, account */
    " target TEXT NOT NULL DEFAULT ''," /* '' for global */
    " name TEXT NOT NULL COLLATE NOCASE,"
    " value TEXT NOT NULL,"
    " set_by TEXT,"
    " set_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (scope, target, name));"
    "CREATE TABLE history ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " who TEXT, what TEXT NOT NULL, subject TEXT, old_value TEXT, new_value TEXT,"
    " reason TEXT,"
    " device_id TEXT COLLATE NOCASE,"
    " account TEXT);"
    "CREATE INDEX history_device_id ON history (device_id);"
    "CREATE INDEX history_at ON history (at);"
    "CREATE TABLE changes ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " kind TEXT NOT NULL," /* device, entry, rule, attr, template */
    " key TEXT NOT NULL);"
    "CREATE TABLE outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " recipient TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " account TEXT,"
    " device_id TEXT COLLATE NOCASE,"
    " template_ref TEXT,"
    " rendered TEXT,"
    " state TEXT NOT NULL DEFAULT 'queued',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " created INTEGER NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX outbox_due ON outbox (state, next_attempt);",
    /* 1 -> 2: the virtual mailbox's sync state (src/mailbox/commands.c). */
    "CREATE TABLE syncstate ("
    " account TEXT NOT NULL,"
    " device_id TEXT NOT NULL COLLATE NOCASE,"
    " collection TEXT NOT NULL,"
    " state BLOB NOT NULL,"
    " updated INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, device_id, collection));",
    /* 2 -> 3: notice templates (src/notice/templates.c). */
    "CREATE TABLE templates ("
    " scope TEXT NOT NULL,"             /* global, domain */
    " domain TEXT NOT NULL DEFAULT ''," /* '' for global */
    " kind TEXT NOT NULL,"
    " locale TEXT NOT NULL COLLATE NOCASE,"
    " from_addr TEXT, reply_to TEXT, subject TEXT, body_plain TEXT, body_html TEXT,"
    " set_by TEXT,"
    " set_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (scope, domain, kind, locale));",
    /* 3 -> 4: administrators and their tokens (src/core/admins.c). */
    "CREATE TABLE admins ("
    " name TEXT NOT NULL PRIMARY KEY,"
    " password_hash TEXT NOT NULL," /* crypt(3), never the password */
    " created_by TEXT,"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " password_at INTEGER NOT NULL DEFAULT 0,"
    " last_login INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " admin TEXT NOT NULL,"
    " label TEXT,"
    " hash TEXT NOT NULL UNIQUE," /* SHA-256 of the token, never the token */
    " created_by TEXT,"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " last_used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_admin ON tokens (admin, id);",
    /*
     * 4 -> 5: facts about the store itself (the domain its bare accounts
     * were given, store.h abq_store_accounts_canonicalize) and the history
     * of one account found without a scan.
     */
    "CREATE TABLE meta ("
    " key TEXT NOT NULL PRIMARY KEY,"
    " value TEXT NOT NULL);"
    "CREATE INDEX history_account ON history (account);",
};

#define STR(x)      #x
#define XSTR(x)     STR(x)
#define BATCH_LIMIT " LIMIT " XSTR(ITER_BATCH)

/* The cached statements, one per point operation. */
enum stmt_id {
	ST_DEVICE_GET,
	ST_DEVICE_PUT,
	ST_DEVICE_DELETE_ALL,
	ST_DEVICE_DELETE_ONE,
	ST_DEVICE_COUNT,
	ST_DEVICE_COUNT_ALL,
	ST_DEVICE_TOUCH,
	ST_ENTRY_GET,
	ST_ENTRY_PUT,
	ST_ENTRY_DELETE_ALL,
	ST_ENTRY_DELETE_ALONE,
	ST_ENTRY_DELETE_ONE,
	ST_RULE_INSERT,
	ST_RULE_UPDATE,
	ST_RULE_GET,
	ST_RULE_DELETE,
	ST_ATTR_GET,
	ST_ATTR_PUT,
	ST_ATTR_DELETE,
	ST_HISTORY_ADD,
	ST_CHANGE_ADD,
	ST_CHANGE_LAST,
	ST_NOTICE_ADD,
	ST_NOTICE_MARK,
	ST_NOTICE_STATS,
	ST_TEMPLATE_GET,
	ST_TEMPLATE_PUT,
	ST_TEMPLATE_DELETE,
	ST_SYNCSTATE_GET,
	ST_SYNCSTATE_PUT,
	ST_SYNCSTATE_DELETE_ONE,
	ST_SYNCSTATE_DELETE_DEVICE,
	ST_SYNCSTATE_DELETE_DEVID,
	ST_SYNCSTATE_DELETE_DEVID_ACCOUNT,
	ST_ADMIN_GET,
	ST_ADMIN_PUT,
	ST_ADMIN_DELETE,
	ST_TOKEN_ADD,
	ST_TOKEN_FIND,
	ST_TOKEN_TOUCH,
	ST_TOKEN_DELETE_ADMIN,
	ST_TOKEN_DELETE_LABEL,
	ST_TOKEN_COUNT,
	ST_TOKEN_COUNT_ALL,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_DEVICE_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE account = ?1 AND device_id = ?2",
    [ST_DEVICE_PUT] = "INSERT OR REPLACE INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, "
                      "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
                      "?20, ?21)",
    [ST_DEVICE_DELETE_ALL] = "DELETE FROM devices WHERE device_id = ?1",
    [ST_DEVICE_DELETE_ONE] = "DELETE FROM devices WHERE device_id = ?1 AND account = ?2",
    [ST_DEVICE_COUNT] = "SELECT count(*) FROM devices WHERE account = ?1 AND (?2 = 0 OR "
                        "first_seen < ?2)",
    [ST_DEVICE_COUNT_ALL] = "SELECT count(*) FROM devices WHERE ?1 = 0 OR first_seen < ?1",
    [ST_DEVICE_TOUCH] = "UPDATE devices SET last_seen = ?3, last_address = coalesce(?4, "
                        "last_address), last_command = coalesce(?5, last_command) WHERE "
                        "account = ?1 AND device_id = ?2 AND last_seen <= ?3",
    [ST_ENTRY_GET] = "SELECT " ENTRY_COLS " FROM entries WHERE device_id = ?1 AND "
                     "coalesce(account, '') = coalesce(?2, '')",
    [ST_ENTRY_PUT] = "INSERT OR REPLACE INTO entries (" ENTRY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_ENTRY_DELETE_ALL] = "DELETE FROM entries WHERE device_id = ?1",
    [ST_ENTRY_DELETE_ALONE] = "DELETE FROM entries WHERE device_id = ?1 AND account IS NULL",
    [ST_ENTRY_DELETE_ONE] = "DELETE FROM entries WHERE device_id = ?1 AND account = ?2",
    [ST_RULE_INSERT] = "INSERT INTO rules (characteristic, match, pattern, level, rule_order, "
                       "domain, created_by, created_at) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_RULE_UPDATE] = "UPDATE rules SET characteristic = ?2, match = ?3, pattern = ?4, "
                       "level = ?5, rule_order = ?6, domain = ?7, created_by = ?8, "
                       "created_at = ?9 WHERE id = ?1",
    [ST_RULE_GET] = "SELECT " RULE_COLS " FROM rules WHERE id = ?1",
    [ST_RULE_DELETE] = "DELETE FROM rules WHERE id = ?1",
    [ST_ATTR_GET] = "SELECT " ATTR_COLS " FROM attrs WHERE scope = ?1 AND target = ?2 AND "
                    "name = ?3",
    [ST_ATTR_PUT] = "INSERT OR REPLACE INTO attrs (" ATTR_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_ATTR_DELETE] = "DELETE FROM attrs WHERE scope = ?1 AND target = ?2 AND name = ?3",
    [ST_HISTORY_ADD] = "INSERT INTO history (at, who, what, subject, old_value, new_value, "
                       "reason, device_id, account) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_CHANGE_ADD] = "INSERT INTO changes (at, kind, key) VALUES (?1, ?2, ?3)",
    [ST_NOTICE_STATS] = "SELECT count(*), coalesce(min(created), 0) FROM outbox WHERE state = ?1",
    [ST_CHANGE_LAST] = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = "
                       "'changes'), 0), coalesce((SELECT max(seq) FROM changes), 0))",
    [ST_NOTICE_ADD] = "INSERT INTO outbox (recipient, kind, account, device_id, template_ref, "
                      "rendered, state, attempts, next_attempt, last_error, created, sent) "
                      "VALUES (?2, ?3, ?4, ?5, ?6, ?7, coalesce(?8, 'queued'), ?9, ?10, ?11, "
                      "?12, ?13)",
    [ST_NOTICE_MARK] = "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, "
                       "last_error = ?5, sent = ?6 WHERE id = ?1",
    [ST_TEMPLATE_GET] = "SELECT " TEMPLATE_COLS " FROM templates WHERE scope = ?1 AND "
                        "domain = ?2 AND kind = ?3 AND locale = ?4",
    [ST_TEMPLATE_PUT] = "INSERT OR REPLACE INTO templates (" TEMPLATE_COLS ") VALUES (?1, ?2, "
                        "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_TEMPLATE_DELETE] = "DELETE FROM templates WHERE scope = ?1 AND domain = ?2 AND "
                           "kind = ?3 AND locale = ?4",
    [ST_SYNCSTATE_GET] = "SELECT state, updated FROM syncstate WHERE account = ?1 AND "
                         "device_id = ?2 AND collection = ?3",
    [ST_SYNCSTATE_PUT] = "INSERT OR REPLACE INTO syncstate (account, device_id, collection, "
                         "state, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_SYNCSTATE_DELETE_ONE] = "DELETE FROM syncstate WHERE account = ?1 AND device_id = ?2 "
                                "AND collection = ?3",
    [ST_SYNCSTATE_DELETE_DEVICE] = "DELETE FROM syncstate WHERE account = ?1 AND device_id = ?2",
    [ST_SYNCSTATE_DELETE_DEVID] = "DELETE FROM syncstate WHERE device_id = ?1",
    [ST_SYNCSTATE_DELETE_DEVID_ACCOUNT] = "DELETE FROM syncstate WHERE device_id = ?1 AND "
                                          "account = ?2",
    [ST_ADMIN_GET] = "SELECT " ADMIN_COLS " FROM admins WHERE name = ?1",
    [ST_ADMIN_PUT] = "INSERT OR REPLACE INTO admins (" ADMIN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                     "?6)",
    [ST_ADMIN_DELETE] = "DELETE FROM admins WHERE name = ?1",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (admin, label, hash, created_by, created_at, last_used) "
                     "VALUES (?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_TOKEN_FIND] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1",
    [ST_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
    [ST_TOKEN_DELETE_ADMIN] = "DELETE FROM tokens WHERE admin = ?1",
    [ST_TOKEN_DELETE_LABEL] = "DELETE FROM tokens WHERE admin = ?1 AND label = ?2",
    [ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens WHERE admin = ?1",
    [ST_TOKEN_COUNT_ALL] = "SELECT count(*) FROM tokens",
};

/* The open store. */
struct sqlite_store {
	struct abq_store_base base; /* first: store.c finds the ops here */
	sqlite3 *db;
	char *path;
	char *wal_path;
	char *shm_path;
	const char *files[4];
	sqlite3_stmt *stmt[ST_COUNT];
	char errbuf[1024]; /* the last error message, handed out through errstr_r */
};

/* The backend's view of an abq_store handle. */
static struct sqlite_store *
S(struct abq_store *s)
{
	return (struct sqlite_store *)(void *)s;
}

static const struct sqlite_store *
CS(const struct abq_store *s)
{
	return (const struct sqlite_store *)(const void *)s;
}

/* Set the store's error message from a printf format; returns -1 for the caller. */
static int __attribute__((format(printf, 3, 4)))
fail(struct sqlite_store *s, const char **errstr_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errbuf, sizeof(s->errbuf), fmt, ap);
	va_end(ap);
	*errstr_r = s->errbuf;
	return -1;
}

/* Fail with SQLite's own message, prefixed by what was being done. */
static int
db_fail(struct sqlite_store *s, const char *what, const char **errstr_r)
{
	return fail(s, errstr_r, "%s: %s", what, sqlite3_errmsg(s->db));
}

/*
 * The cached statement id, prepared on first use. The statement comes back
 * reset with its bindings cleared (stmt_release does that after every use).
 */
static sqlite3_stmt *
stmt_get(struct sqlite_store *s, enum stmt_id id, const char *what, const char **errstr_r)
{
	if (s->stmt[id] == NULL &&
	    sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
	                       NULL) != SQLITE_OK) {
		db_fail(s, what, errstr_r);
		s->stmt[id] = NULL;
		return NULL;
	}
	return s->stmt[id];
}

/* Make a cached statement ready for its next use. */
static void
stmt_release(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/*
 * Run a statement that returns no row. On failure the message is taken before
 * the reset, which would otherwise be free to replace it.
 */
static int
step_done(struct sqlite_store *s, sqlite3_stmt *st, const char *what, const char **errstr_r)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail(s, what, errstr_r);
		stmt_release(st);
		return -1;
	}
	stmt_release(st);
	return 0;
}

/* Binding helpers: NULL text binds SQL NULL. Each returns the SQLite code. */
static int
bt(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static int
bi(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, v);
}

/* Bind by name, for the dynamic statements; an unused name is skipped. */
static int
bt_named(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i == 0 ? SQLITE_OK : bt(st, i, v);
}

static int
bi_named(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i == 0 ? SQLITE_OK : bi(st, i, v);
}

/* A text column as a new string; SQL NULL stays NULL. */
static char *
col_str(sqlite3_stmt *st, int i)
{
	return xstrdup_null((const char *)sqlite3_column_text(st, i));
}

/*
 * States and reasons are stored by their canonical names so that the file reads
 * well in the sqlite3 shell; NONE is SQL NULL.
 */
static const char *
state_text(enum abq_state v)
{
	return v == ABQ_STATE_NONE ? NULL : abq_state_name(v);
}

/* The stored name of a reason; NONE is SQL NULL. */
static const char *
reason_text(enum abq_reason v)
{
	return v == ABQ_REASON_NONE ? NULL : abq_reason_name(v);
}

/* The stored names of the change-log kinds. */
static const char *const change_kind_names[] = {
    [ABQ_CHANGE_DEVICE] = "device", [ABQ_CHANGE_ENTRY] = "entry",       [ABQ_CHANGE_RULE] = "rule",
    [ABQ_CHANGE_ATTR] = "attr",     [ABQ_CHANGE_TEMPLATE] = "template",
};

/* Read a state column; a name the store does not know is a corrupt store. */
static int
col_state(struct sqlite_store *s, sqlite3_stmt *st, int i, enum abq_state *out,
          const char **errstr_r)
{
	const char *t = (const char *)sqlite3_column_text(st, i);

	if (t == NULL) {
		*out = ABQ_STATE_NONE;
		return 0;
	}
	if (abq_state_parse(t, true, out) < 0)
		return fail(s, errstr_r, "unknown state '%s' in the store", t);
	return 0;
}

/* Read a reason column, as col_state does for states. */
static int
col_reason(struct sqlite_store *s, sqlite3_stmt *st, int i, enum abq_reason *out,
           const char **errstr_r)
{
	const char *t = (const char *)sqlite3_column_text(st, i);

	if (t == NULL) {
		*out = ABQ_REASON_NONE;
		return 0;
	}
	if (abq_reason_parse(t, out) < 0)
		return fail(s, errstr_r, "unknown reason '%s' in the store", t);
	return 0;
}

/* Row readers: fill a clear record from a row in the *_COLS order. */
static int
read_device(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_device *d = rec;

	d->account = col_str(st, 0);
	d->device_id = col_str(st, 1);
	d->device_type = col_str(st, 2);
	d->model = col_str(st, 3);
	d->imei = col_str(st, 4);
	d->friendly_name = col_str(st, 5);
	d->os = col_str(st, 6);
	d->os_language = col_str(st, 7);
	d->phone_number = col_str(st, 8);
	d->mobile_operator = col_str(st, 9);
	d->user_agent = col_str(st, 10);
	d->eas_version = col_str(st, 11);
	d->last_address = col_str(st, 12);
	d->last_command = col_str(st, 13);
	d->first_seen = sqlite3_column_int64(st, 14);
	d->last_seen = sqlite3_column_int64(st, 15);
	d->rule_id = sqlite3_column_int64(st, 18);
	d->state_by = col_str(st, 19);
	d->state_at = sqlite3_column_int64(st, 20);
	if (col_state(s, st, 16, &d->state, errstr_r) < 0 ||
	    col_reason(s, st, 17, &d->reason, errstr_r) < 0)
		return -1;
	return 0;
}

static int
read_entry(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_entry *e = rec;

	e->device_id = col_str(st, 0);
	e->account = col_str(st, 1);
	e->created_by = col_str(st, 3);
	e->created_at = sqlite3_column_int64(st, 4);
	return col_state(s, st, 2, &e->state, errstr_r);
}

static int
read_rule(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_rule *r = rec;
	const char *ch = (const char *)sqlite3_column_text(st, 1);
	const char *m = (const char *)sqlite3_column_text(st, 2);

	r->id = sqlite3_column_int64(st, 0);
	r->pattern = col_str(st, 3);
	r->order = sqlite3_column_int64(st, 5);
	r->domain = col_str(st, 6);
	r->created_by = col_str(st, 7);
	r->created_at = sqlite3_column_int64(st, 8);
	if (ch == NULL || abq_charac_parse(ch, &r->charac) < 0)
		return fail(s, errstr_r, "rule %lld: unknown characteristic in the store",
		            (long long)r->id);
	if (m == NULL || abq_match_parse(m, &r->match) < 0)
		return fail(s, errstr_r, "rule %lld: unknown match in the store", (long long)r->id);
	return col_state(s, st, 4, &r->level, errstr_r);
}

static int
read_attr(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_attr *a = rec;
	const char *scope = (const char *)sqlite3_column_text(st, 0);

	if (scope == NULL || abq_scope_parse(scope, &a->scope) < 0)
		return fail(s, errstr_r, "unknown attribute scope in the store");
	a->target = a->scope == ABQ_SCOPE_GLOBAL ? NULL : col_str(st, 1);
	a->name = col_str(st, 2);
	a->value = col_str(st, 3);
	a->set_by = col_str(st, 4);
	a->set_at = sqlite3_column_int64(st, 5);
	return 0;
}

static int
read_history(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_history *h = rec;

	h->id = sqlite3_column_int64(st, 0);
	h->at = sqlite3_column_int64(st, 1);
	h->who = col_str(st, 2);
	h->what = col_str(st, 3);
	h->subject = col_str(st, 4);
	h->old_value = col_str(st, 5);
	h->new_value = col_str(st, 6);
	h->reason = col_str(st, 7);
	h->device_id = col_str(st, 8);
	h->account = col_str(st, 9);
	return 0;
}

static int
read_change(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_change *c = rec;
	const char *kind = (const char *)sqlite3_column_text(st, 2);
	size_t k;

	c->seq = sqlite3_column_int64(st, 0);
	c->at = sqlite3_column_int64(st, 1);
	c->key = col_str(st, 3);
	for (k = ABQ_CHANGE_DEVICE; k <= ABQ_CHANGE_TEMPLATE; k++)
		if (kind != NULL && strcmp(kind, change_kind_names[k]) == 0) {
			c->kind = (enum abq_change_kind)k;
			return 0;
		}
	return fail(s, errstr_r, "change %lld: unknown kind in the store", (long long)c->seq);
}

static int
read_notice(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_notice *n = rec;

	n->id = sqlite3_column_int64(st, 0);
	n->recipient = col_str(st, 1);
	n->kind = col_str(st, 2);
	n->account = col_str(st, 3);
	n->device_id = col_str(st, 4);
	n->template_ref = col_str(st, 5);
	n->rendered = col_str(st, 6);
	n->state = col_str(st, 7);
	n->attempts = sqlite3_column_int(st, 8);
	n->next_attempt = sqlite3_column_int64(st, 9);
	n->last_error = col_str(st, 10);
	n->created = sqlite3_column_int64(st, 11);
	n->sent = sqlite3_column_int64(st, 12);
	return 0;
}

static int
read_template(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_template *t = rec;
	const char *scope = (const char *)sqlite3_column_text(st, 0);

	if (scope == NULL || abq_scope_parse(scope, &t->scope) < 0)
		return fail(s, errstr_r, "unknown template scope in the store");
	t->domain = t->scope == ABQ_SCOPE_GLOBAL ? NULL : col_str(st, 1);
	t->kind = col_str(st, 2);
	t->locale = col_str(st, 3);
	t->from = col_str(st, 4);
	t->reply_to = col_str(st, 5);
	t->subject = col_str(st, 6);
	t->body_plain = col_str(st, 7);
	t->body_html = col_str(st, 8);
	t->set_by = col_str(st, 9);
	t->set_at = sqlite3_column_int64(st, 10);
	return 0;
}

static int
read_admin(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_admin *a = rec;

	a->name = col_str(st, 0);
	a->password_hash = col_str(st, 1);
	a->created_by = col_str(st, 2);
	a->created_at = sqlite3_column_int64(st, 3);
	a->password_at = sqlite3_column_int64(st, 4);
	a->last_login = sqlite3_column_int64(st, 5);
	return 0;
}

static int
read_token(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_token *t = rec;

	t->id = sqlite3_column_int64(st, 0);
	t->admin = col_str(st, 1);
	t->label = col_str(st, 2);
	t->hash = col_str(st, 3);
	t->created_by = col_str(st, 4);
	t->created_at = sqlite3_column_int64(st, 5);
	t->last_used = sqlite3_column_int64(st, 6);
	return 0;
}

/* ---- opening ----------------------------------------------------------- */

/* Open errors have no store to live in: they go to a per-thread buffer. */
static _Thread_local char open_errbuf[1024];

static const char *__attribute__((format(printf, 1, 2))) open_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_errbuf, sizeof(open_errbuf), fmt, ap);
	va_end(ap);
	return open_errbuf;
}

/*
 * The file named by the rest of the URL: "PATH" (relative to base_dir when
 * given) or "///ABS/PATH". Returns a new string, or NULL with *errstr_r set.
 */
static char *
url_path(const char *rest, const char *base_dir, const char **errstr_r)
{
	if (strncmp(rest, "//", 2) == 0) {
		if (rest[2] != '/') {
			*errstr_r = open_error("store URL 'sqlite:%s' names a host; use "
			                       "sqlite:PATH or sqlite:///ABSOLUTE/PATH",
			                       rest);
			return NULL;
		}
		rest += 2;
	}
	if (*rest == '\0') {
		*errstr_r = "store URL has no path (expected sqlite:PATH)";
		return NULL;
	}
	if (*rest != '/' && base_dir != NULL && *base_dir != '\0')
		return xasprintf("%s/%s", base_dir, rest);
	return xstrdup(rest);
}

/* Read one integer from a statement such as "PRAGMA user_version"; SQLite code. */
static int
query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* What a database file says about itself. */
struct identity {
	int64_t app_id;
	int64_t version;
	int64_t objects; /* tables, indexes, ... in sqlite_master */
};

/* Read the identity; the SQLite code (SQLITE_NOTADB for a file of another kind). */
static int
read_identity(sqlite3 *db, struct identity *id)
{
	int rc;

	if ((rc = query_int(db, "PRAGMA application_id", &id->app_id)) != SQLITE_OK ||
	    (rc = query_int(db, "PRAGMA user_version", &id->version)) != SQLITE_OK ||
	    (rc = query_int(db, "SELECT count(*) FROM sqlite_master", &id->objects)) != SQLITE_OK)
		return rc;
	return SQLITE_OK;
}

/*
 * Judge an identity: 1 for a current abqd store, 0 for one that needs the
 * migrations (an empty database or an older schema), -1 with *errstr_r for a
 * database abqd must not touch.
 */
static int
judge_identity(const char *path, const struct identity *id, const char **errstr_r)
{
	if (id->app_id == 0 && id->version == 0 && id->objects == 0)
		return 0;
	if (id->app_id != ABQD_APPLICATION_ID) {
		*errstr_r = open_error("%s is not an abqd store", path);
		return -1;
	}
	if (id->version > ABQ_STORE_SCHEMA_VERSION) {
		*errstr_r = open_error("%s has schema version %lld, newer than this abqd (%d); "
		                       "upgrade abqd",
		                       path, (long long)id->version, ABQ_STORE_SCHEMA_VERSION);
		return -1;
	}
	return id->version == ABQ_STORE_SCHEMA_VERSION ? 1 : 0;
}

/*
 * Bring the schema up to ABQ_STORE_SCHEMA_VERSION in one write transaction.
 * The identity is read again under the write lock, so that two processes
 * initialising the same new file at once do the work only once.
 */
static int
migrate(sqlite3 *db, const char *path, const char **errstr_r)
{
	struct identity id;
	char *err = NULL;
	char pragma[64];
	int64_t v;
	int rc;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*errstr_r = open_error("cannot initialise %s: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if ((rc = read_identity(db, &id)) != SQLITE_OK) {
		*errstr_r = open_error("cannot initialise %s: %s", path, sqlite3_errstr(rc));
		goto fail;
	}
	rc = judge_identity(path, &id, errstr_r);
	if (rc < 0)
		goto fail;
	for (v = id.version; v < ABQ_STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &err) != SQLITE_OK) {
			*errstr_r = open_error("cannot upgrade %s to schema version %lld: %s", path,
			                       (long long)v + 1, err ? err : "?");
			sqlite3_free(err);
			goto fail;
		}
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA application_id = %d", ABQD_APPLICATION_ID);
	if (sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK)
		goto db_fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", ABQ_STORE_SCHEMA_VERSION);
	if (sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK)
		goto db_fail;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto db_fail;
	return 0;
db_fail:
	*errstr_r = open_error("cannot initialise %s: %s", path, sqlite3_errmsg(db));
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Check, before SQLite is asked to open it, that the file exists (or, with
 * ABQ_STORE_CREATE, that its folder does), so that the messages name the real
 * problem and nothing is created by accident.
 */
static int
check_path(const char *path, int flags, const char **errstr_r)
{
	struct stat sb;
	const char *slash;
	char *dir;

	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode)) {
			*errstr_r = open_error("store %s is a folder, not a file", path);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		*errstr_r = open_error("store %s: %s", path, strerror(errno));
		return -1;
	}
	if (!(flags & ABQ_STORE_CREATE)) {
		*errstr_r = open_error("store %s does not exist; run 'abqctl init'", path);
		return -1;
	}
	slash = strrchr(path, '/');
	if (slash == NULL)
		return 0;
	dir = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		*errstr_r =
		    open_error("cannot create store %s: folder %s does not exist", path, dir);
		free(dir);
		return -1;
	}
	free(dir);
	return 0;
}

/*
 * Open a store (see abq_store_open). The order matters: the identity is read
 * before anything is written, so a foreign database is left exactly as it was
 * (not even switched to WAL); then the connection settings; then the
 * migrations.
 */
static struct abq_store *
sqlite_open(const char *rest, const char *base_dir, int flags, const char **errstr_r)
{
	struct sqlite_store *s = NULL;
	struct identity id;
	sqlite3 *db = NULL;
	char *path;
	int oflags, rc, judged;

	if ((path = url_path(rest, base_dir, errstr_r)) == NULL)
		return NULL;
	if (check_path(path, flags, errstr_r) < 0)
		goto fail;
	oflags = SQLITE_OPEN_NOMUTEX;
	if (flags & ABQ_STORE_READONLY)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |=
		    SQLITE_OPEN_READWRITE | ((flags & ABQ_STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	if ((rc = sqlite3_open_v2(path, &db, oflags, NULL)) != SQLITE_OK) {
		*errstr_r = open_error("cannot open store %s: %s", path,
		                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (!(flags & ABQ_STORE_READONLY) && sqlite3_db_readonly(db, "main") == 1) {
		/* SQLite falls back to read-only on a file it cannot write. */
		*errstr_r = open_error("store %s is not writable by this user", path);
		goto fail;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if ((rc = read_identity(db, &id)) != SQLITE_OK) {
		if (rc == SQLITE_NOTADB)
			*errstr_r =
			    open_error("%s is not an abqd store (file is not a database)", path);
		else
			*errstr_r =
			    open_error("cannot read store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if ((judged = judge_identity(path, &id, errstr_r)) < 0)
		goto fail;
	if (judged == 0 && id.objects == 0 && !(flags & ABQ_STORE_CREATE)) {
		*errstr_r = open_error("store %s is empty; run 'abqctl init'", path);
		goto fail;
	}
	if (judged == 0 && (flags & ABQ_STORE_READONLY)) {
		*errstr_r = open_error("store %s has schema version %lld and needs an upgrade to "
		                       "%d; open it read-write once",
		                       path, (long long)id.version, ABQ_STORE_SCHEMA_VERSION);
		goto fail;
	}
	if (!(flags & ABQ_STORE_READONLY) &&
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK) {
		*errstr_r = open_error("cannot open store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (sqlite3_exec(db,
	                 "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
	                 "PRAGMA cache_size = -16384",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    ((flags & ABQ_STORE_READONLY) &&
	     sqlite3_exec(db, "PRAGMA query_only = ON", NULL, NULL, NULL) != SQLITE_OK)) {
		*errstr_r = open_error("cannot open store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (judged == 0 && migrate(db, path, errstr_r) < 0)
		goto fail;

	s = xcalloc(1, sizeof(*s));
	s->base.ops = &abq_store_sqlite_ops;
	s->db = db;
	s->path = path;
	s->wal_path = xasprintf("%s-wal", path);
	s->shm_path = xasprintf("%s-shm", path);
	s->files[0] = s->path;
	s->files[1] = s->wal_path;
	s->files[2] = s->shm_path;
	s->files[3] = NULL;
	return (struct abq_store *)(void *)s;
fail:
	sqlite3_close(db);
	free(path);
	return NULL;
}

/* Close: finalize the cached statements (an open transaction is rolled back). */
static void
sqlite_close(struct abq_store *store)
{
	struct sqlite_store *s = S(store);
	size_t i;

	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s->path);
	free(s->wal_path);
	free(s->shm_path);
	free(s);
}

/* The database file's path, as opened. */
static const char *
sqlite_location(const struct abq_store *s)
{
	return CS(s)->path;
}

/* The database file and its WAL companions, for chown by a root abqctl. */
static const char *const *
sqlite_files(const struct abq_store *s)
{
	return CS(s)->files;
}

/* ---- transactions ------------------------------------------------------ */

/*
 * BEGIN IMMEDIATE takes the write lock now: a second writer waits here (up to
 * the busy timeout) rather than failing later at its first write.
 */
static int
sqlite_begin(struct abq_store *store, const char **errstr_r)
{
	struct sqlite_store *s = S(store);

	if (!sqlite3_get_autocommit(s->db))
		return fail(s, errstr_r, "begin: a transaction is already open");
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, "begin", errstr_r);
	return 0;
}

/* Commit; on failure the transaction stays open for the caller to roll back. */
static int
sqlite_commit(struct abq_store *store, const char **errstr_r)
{
	struct sqlite_store *s = S(store);

	if (sqlite3_get_autocommit(s->db))
		return fail(s, errstr_r, "commit: no transaction is open");
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, "commit", errstr_r);
	return 0;
}

/* Roll back if a transaction is open (SQLite may have ended it after an error). */
static void
sqlite_rollback(struct abq_store *store)
{
	struct sqlite_store *s = S(store);

	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- point operations -------------------------------------------------- */

/*
 * Run a cached SELECT that yields at most one row into a clear record, after
 * its parameters were bound by bind_rc == SQLITE_OK. Returns 1 (found), 0 (not
 * found) or -1.
 */
static int
get_one(struct sqlite_store *s, sqlite3_stmt *st, int bind_rc, const char *what,
        int (*read)(struct sqlite_store *, sqlite3_stmt *, void *, const char **), void *rec,
        void (*clear)(void *), const char **errstr_r)
{
	int rc, ret;

	if (bind_rc != SQLITE_OK) {
		db_fail(s, what, errstr_r);
		stmt_release(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		stmt_release(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		db_fail(s, what, errstr_r);
		stmt_release(st);
		return -1;
	}
	ret = read(s, st, rec, errstr_r) < 0 ? -1 : 1;
	if (ret < 0)
		clear(rec);
	stmt_release(st);
	return ret;
}

/* Run a cached SELECT count(*) after its parameters were bound by bind_rc == SQLITE_OK. */
static int
count_bound(struct sqlite_store *s, sqlite3_stmt *st, int bind_rc, size_t *count_r,
            const char *what, const char **errstr_r)
{
	if (bind_rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		db_fail(s, what, errstr_r);
		stmt_release(st);
		return -1;
	}
	*count_r = (size_t)sqlite3_column_int64(st, 0);
	stmt_release(st);
	return 0;
}

/* Adapters from the typed clear functions to the generic shape. */
static void
clear_device(void *p)
{
	abq_device_clear(p);
}
static void
clear_entry(void *p)
{
	abq_entry_clear(p);
}
static void
clear_rule(void *p)
{
	abq_rule_clear(p);
}
static void
clear_attr(void *p)
{
	abq_attr_clear(p);
}
static void
clear_history(void *p)
{
	abq_history_clear(p);
}
static void
clear_change(void *p)
{
	abq_change_clear(p);
}
static void
clear_notice(void *p)
{
	abq_notice_clear(p);
}
static void
clear_template(void *p)
{
	abq_template_clear(p);
}
static void
clear_admin(void *p)
{
	abq_admin_clear(p);
}
static void
clear_token(void *p)
{
	abq_token_clear(p);
}

/* Look up (account, device_id); device_id matches case-insensitively (NOCASE). */
static int
sqlite_device_get(struct abq_store *store, const char *account, const char *device_id,
                  struct abq_device *out, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_DEVICE_GET, "device_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bt(st, 1, account) || bt(st, 2, device_id), "device_get", read_device,
	               out, clear_device, errstr_r);
}

/* Bind every column of a device to the ST_DEVICE_PUT parameters. */
static int
bind_device(sqlite3_stmt *st, const struct abq_device *d)
{
	return bt(st, 1, d->account) || bt(st, 2, d->device_id) || bt(st, 3, d->device_type) ||
	       bt(st, 4, d->model) || bt(st, 5, d->imei) || bt(st, 6, d->friendly_name) ||
	       bt(st, 7, d->os) || bt(st, 8, d->os_language) || bt(st, 9, d->phone_number) ||
	       bt(st, 10, d->mobile_operator) || bt(st, 11, d->user_agent) ||
	       bt(st, 12, d->eas_version) || bt(st, 13, d->last_address) ||
	       bt(st, 14, d->last_command) || bi(st, 15, d->first_seen) ||
	       bi(st, 16, d->last_seen) || bt(st, 17, state_text(d->state)) ||
	       bt(st, 18, reason_text(d->reason)) || bi(st, 19, d->rule_id) ||
	       bt(st, 20, d->state_by) || bi(st, 21, d->state_at);
}

/* Run a cached write statement after its parameters were bound by ok == 0. */
static int
write_bound(struct sqlite_store *s, sqlite3_stmt *st, int bind_rc, const char *what,
            const char **errstr_r)
{
	if (bind_rc != SQLITE_OK) {
		db_fail(s, what, errstr_r);
		stmt_release(st);
		return -1;
	}
	return step_done(s, st, what, errstr_r);
}

/*
 * Write the whole device record; INSERT OR REPLACE on the primary key, so a
 * DeviceId spelt in another case replaces the record instead of adding one.
 */
static int
sqlite_device_put(struct abq_store *store, const struct abq_device *d, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_DEVICE_PUT, "device_put", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st, bind_device(st, d), "device_put", errstr_r);
}

/* Delete a DeviceId's records, of every account or of one; counts them. */
static int
sqlite_device_delete(struct abq_store *store, const char *device_id, const char *account,
                     size_t *count_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, account ? ST_DEVICE_DELETE_ONE : ST_DEVICE_DELETE_ALL,
	                            "device_delete", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	if (write_bound(s, st, bt(st, 1, device_id) || (account && bt(st, 2, account)),
	                "device_delete", errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	/* The device's mailbox sync state goes with it (store.h). */
	st = stmt_get(s, account ? ST_SYNCSTATE_DELETE_DEVID_ACCOUNT : ST_SYNCSTATE_DELETE_DEVID,
	              "device_delete", errstr_r);
	if (st == NULL)
		return -1;
	return write_bound(s, st, bt(st, 1, device_id) || (account && bt(st, 2, account)),
	                   "device_delete (sync state)", errstr_r);
}

/* Count an account's devices (or all) first seen before a time (0: ever). */
static int
sqlite_device_count(struct abq_store *store, const char *account, int64_t before, size_t *count_r,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st =
	    stmt_get(s, account ? ST_DEVICE_COUNT : ST_DEVICE_COUNT_ALL, "device_count", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	return count_bound(s, st,
	                   account ? (bt(st, 1, account) || bi(st, 2, before)) : bi(st, 1, before),
	                   count_r, "device_count", errstr_r);
}

/*
 * Apply the last-seen updates, in a transaction of their own unless the caller
 * has one open, so that a batch costs one sync. A device that no longer exists
 * is skipped, and so is an update older than the recorded last_seen.
 */
static int
sqlite_device_touch(struct abq_store *store, const struct abq_seen *v, size_t n,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	bool own = sqlite3_get_autocommit(s->db) != 0;
	sqlite3_stmt *st;
	size_t i;

	if (own && sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, "device_touch", errstr_r);
	if ((st = stmt_get(s, ST_DEVICE_TOUCH, "device_touch", errstr_r)) == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		int rc = bt(st, 1, v[i].account) || bt(st, 2, v[i].device_id) ||
		         bi(st, 3, v[i].last_seen) || bt(st, 4, v[i].last_address) ||
		         bt(st, 5, v[i].last_command);

		if (write_bound(s, st, rc, "device_touch", errstr_r) < 0)
			goto fail;
	}
	if (own && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(s, "device_touch", errstr_r);
		goto fail;
	}
	return 0;
fail:
	if (own)
		sqlite_rollback(store);
	return -1;
}

/*
 * Look up an entry; account NULL is the DeviceId-alone entry (stored NULL,
 * keyed by coalesce(account, '') in the unique index).
 */
static int
sqlite_entry_get(struct abq_store *store, const char *device_id, const char *account,
                 struct abq_entry *out, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ENTRY_GET, "entry_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bt(st, 1, device_id) || bt(st, 2, account), "entry_get", read_entry,
	               out, clear_entry, errstr_r);
}

/* Write an entry, replacing the one with the same key. */
static int
sqlite_entry_put(struct abq_store *store, const struct abq_entry *e, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ENTRY_PUT, "entry_put", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st,
	                   bt(st, 1, e->device_id) || bt(st, 2, e->account) ||
	                       bt(st, 3, state_text(e->state)) || bt(st, 4, e->created_by) ||
	                       bi(st, 5, e->created_at),
	                   "entry_put", errstr_r);
}

/* Delete entries: DeviceId/account, the DeviceId-alone one, or all of them. */
static int
sqlite_entry_delete(struct abq_store *store, const char *device_id, const char *account,
                    bool all_accounts, size_t *count_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	enum stmt_id id = account        ? ST_ENTRY_DELETE_ONE
	                  : all_accounts ? ST_ENTRY_DELETE_ALL
	                                 : ST_ENTRY_DELETE_ALONE;
	sqlite3_stmt *st = stmt_get(s, id, "entry_delete", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	if (write_bound(s, st, bt(st, 1, device_id) || (account && bt(st, 2, account)),
	                "entry_delete", errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	return 0;
}

/* Bind a rule's columns to parameters ?2..?9 (ST_RULE_INSERT, ST_RULE_UPDATE). */
static int
bind_rule(sqlite3_stmt *st, const struct abq_rule *r)
{
	return bt(st, 2, abq_charac_name(r->charac)) || bt(st, 3, abq_match_name(r->match)) ||
	       bt(st, 4, r->pattern) || bt(st, 5, state_text(r->level)) || bi(st, 6, r->order) ||
	       bt(st, 7, r->domain) || bt(st, 8, r->created_by) || bi(st, 9, r->created_at);
}

/* Insert a rule and hand back the id SQLite assigned (AUTOINCREMENT: never reused). */
static int
sqlite_rule_insert(struct abq_store *store, struct abq_rule *r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_RULE_INSERT, "rule_insert", errstr_r);

	if (st == NULL || write_bound(s, st, bind_rule(st, r), "rule_insert", errstr_r) < 0)
		return -1;
	r->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* Rewrite every column of rule r->id; a missing id is an error, not a no-op. */
static int
sqlite_rule_update(struct abq_store *store, const struct abq_rule *r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_RULE_UPDATE, "rule_update", errstr_r);

	if (st == NULL ||
	    write_bound(s, st, bi(st, 1, r->id) || bind_rule(st, r), "rule_update", errstr_r) < 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return fail(s, errstr_r, "rule_update: no rule with id %lld", (long long)r->id);
	return 0;
}

/* Look up a rule by id. */
static int
sqlite_rule_get(struct abq_store *store, int64_t id, struct abq_rule *out, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_RULE_GET, "rule_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bi(st, 1, id), "rule_get", read_rule, out, clear_rule, errstr_r);
}

/*
 * Delete a rule by id; a missing id is an error so "deleteRule 7" cannot
 * silently do nothing.
 */
static int
sqlite_rule_delete(struct abq_store *store, int64_t id, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_RULE_DELETE, "rule_delete", errstr_r);

	if (st == NULL || write_bound(s, st, bi(st, 1, id), "rule_delete", errstr_r) < 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return fail(s, errstr_r, "rule_delete: no rule with id %lld", (long long)id);
	return 0;
}

/* Look up an attribute; the global scope is stored with target ''. */
static int
sqlite_attr_get(struct abq_store *store, enum abq_scope scope, const char *target, const char *name,
                struct abq_attr *out, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ATTR_GET, "attr_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st,
	               bt(st, 1, abq_scope_name(scope)) || bt(st, 2, target ? target : "") ||
	                   bt(st, 3, name),
	               "attr_get", read_attr, out, clear_attr, errstr_r);
}

/* Set an attribute, replacing the previous value at that scope. */
static int
sqlite_attr_put(struct abq_store *store, const struct abq_attr *a, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ATTR_PUT, "attr_put", errstr_r);
	const char *target = a->scope == ABQ_SCOPE_GLOBAL ? "" : a->target;

	if (st == NULL)
		return -1;
	return write_bound(s, st,
	                   bt(st, 1, abq_scope_name(a->scope)) || bt(st, 2, target) ||
	                       bt(st, 3, a->name) || bt(st, 4, a->value) || bt(st, 5, a->set_by) ||
	                       bi(st, 6, a->set_at),
	                   "attr_put", errstr_r);
}

/* Remove an attribute at a scope; nothing to remove is not an error. */
static int
sqlite_attr_delete(struct abq_store *store, enum abq_scope scope, const char *target,
                   const char *name, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ATTR_DELETE, "attr_delete", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st,
	                   bt(st, 1, abq_scope_name(scope)) || bt(st, 2, target ? target : "") ||
	                       bt(st, 3, name),
	                   "attr_delete", errstr_r);
}

/* Append a history row and hand back its id. */
static int
sqlite_history_add(struct abq_store *store, struct abq_history *h, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_HISTORY_ADD, "history_add", errstr_r);
	int rc;

	if (st == NULL)
		return -1;
	rc = bi(st, 2, h->at) || bt(st, 3, h->who) || bt(st, 4, h->what) || bt(st, 5, h->subject) ||
	     bt(st, 6, h->old_value) || bt(st, 7, h->new_value) || bt(st, 8, h->reason) ||
	     bt(st, 9, h->device_id) || bt(st, 10, h->account);
	if (write_bound(s, st, rc, "history_add", errstr_r) < 0)
		return -1;
	h->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* Append a change-log row; its seq is the AUTOINCREMENT key. */
static int
sqlite_change_add(struct abq_store *store, enum abq_change_kind kind, const char *key, int64_t at,
                  const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_CHANGE_ADD, "change_add", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st,
	                   bi(st, 1, at) || bt(st, 2, change_kind_names[kind]) || bt(st, 3, key),
	                   "change_add", errstr_r);
}

/*
 * The highest seq ever given out: sqlite_sequence remembers it even after
 * old rows are pruned, so a daemon never misses a change.
 */
static int
sqlite_change_last(struct abq_store *store, int64_t *seq_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_CHANGE_LAST, "change_last", errstr_r);

	*seq_r = 0;
	if (st == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(s, "change_last", errstr_r);
		stmt_release(st);
		return -1;
	}
	*seq_r = sqlite3_column_int64(st, 0);
	stmt_release(st);
	return 0;
}

/* Queue a notice and hand back its id. */
static int
sqlite_notice_add(struct abq_store *store, struct abq_notice *n, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_NOTICE_ADD, "notice_add", errstr_r);
	int rc;

	if (st == NULL)
		return -1;
	rc = bt(st, 2, n->recipient) || bt(st, 3, n->kind) || bt(st, 4, n->account) ||
	     bt(st, 5, n->device_id) || bt(st, 6, n->template_ref) || bt(st, 7, n->rendered) ||
	     bt(st, 8, n->state) || bi(st, 9, n->attempts) || bi(st, 10, n->next_attempt) ||
	     bt(st, 11, n->last_error) || bi(st, 12, n->created) || bi(st, 13, n->sent);
	if (write_bound(s, st, rc, "notice_add", errstr_r) < 0)
		return -1;
	n->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* ---- iteration ----------------------------------------------------------- */

/* A generic callback pointer, cast back to its real type by iter_kind.call. */
typedef void (*any_cb)(void);

/*
 * What the batch loop needs to know about one kind of record: its size, how to
 * read and clear it, how to bind the continuation key (named :k1..:k4 in the
 * statement) from the last record of a batch, and how to call the callback.
 */
struct iter_kind {
	const char *what;
	size_t size;
	int (*read)(struct sqlite_store *, sqlite3_stmt *, void *, const char **);
	void (*clear)(void *);
	int (*bind_key)(sqlite3_stmt *, const void *);
	int (*call)(any_cb, void *, const void *);
};

/*
 * The batch loop (see the comment at the top of the file). st is a statement
 * of this iteration alone, with its filters and starting key bound and a LIMIT
 * of ITER_BATCH; it is finalized here. At most `limit` records are delivered
 * (0: no limit). Returns 0, the callback's non-zero stop value, or -1.
 */
static int
run_iter(struct sqlite_store *s, const struct iter_kind *k, sqlite3_stmt *st, size_t limit,
         any_cb cb, void *arg, const char **errstr_r)
{
	char *batch = xcalloc(ITER_BATCH, k->size);
	size_t n, i, delivered = 0;
	bool more = true;
	int rc = SQLITE_DONE, ret = 0;

	while (more && ret == 0) {
		n = 0;
		while (n < ITER_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (k->read(s, st, batch + n * k->size, errstr_r) < 0) {
				ret = -1;
				n++;
				break;
			}
			n++;
		}
		if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
			ret = db_fail(s, k->what, errstr_r);
		more = n == ITER_BATCH;
		sqlite3_reset(st);
		if (ret == 0 && more && k->bind_key(st, batch + (n - 1) * k->size) != SQLITE_OK)
			ret = db_fail(s, k->what, errstr_r);
		for (i = 0; i < n; i++) {
			void *rec = batch + i * k->size;

			if (ret == 0 && (limit == 0 || delivered < limit)) {
				ret = k->call(cb, arg, rec);
				delivered++;
			}
			k->clear(rec);
		}
		if (limit != 0 && delivered >= limit)
			more = false;
	}
	sqlite3_finalize(st);
	free(batch);
	return ret;
}

/* Prepare a statement private to one iteration. */
static sqlite3_stmt *
iter_prepare(struct sqlite_store *s, const char *sql, const char *what, const char **errstr_r)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(s, what, errstr_r);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Fail an iteration whose binding failed, finalizing its statement. */
static int
iter_bind_fail(struct sqlite_store *s, sqlite3_stmt *st, const char *what, const char **errstr_r)
{
	db_fail(s, what, errstr_r);
	sqlite3_finalize(st);
	return -1;
}

/*
 * Per kind of record: key_* binds the continuation key (the ORDER BY columns
 * of the last record of a batch), call_* casts the callback back to its type.
 */
static int
key_device(sqlite3_stmt *st, const void *rec)
{
	const struct abq_device *d = rec;

	return bt_named(st, ":k1", d->account) || bt_named(st, ":k2", d->device_id);
}

static int
call_device(any_cb cb, void *arg, const void *rec)
{
	return ((abq_device_cb *)cb)(arg, rec);
}

static const struct iter_kind device_kind = {
    "device_iter", sizeof(struct abq_device), read_device, clear_device, key_device, call_device};

/*
 * Devices in (account, device_id) order. The WHERE clause holds only the
 * filters that are set, so that SQLite can use the indexes on them. The domain
 * filter compares the account's tail with "@domain" (not LIKE, whose % and _
 * would be wildcards inside a domain name); bare accounts belong to
 * default_domain.
 */
static int
sqlite_device_iter(struct abq_store *store, const struct abq_device_filter *f, abq_device_cb *cb,
                   void *arg, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	char sql[1024];
	char *suffix = NULL;
	sqlite3_stmt *st;
	int rc;
	bool bare =
	    f->domain != NULL && f->default_domain != NULL && str_ieq(f->domain, f->default_domain);

	snprintf(sql, sizeof(sql),
	         "SELECT " DEVICE_COLS " FROM devices WHERE (account, device_id) > (:k1, :k2)"
	         "%s%s%s%s%s%s%s ORDER BY account, device_id" BATCH_LIMIT,
	         f->account ? " AND account = :account" : "",
	         f->device_id ? " AND device_id = :device_id" : "",
	         f->domain ? (bare ? " AND (substr(account, -length(:suffix)) = :suffix OR "
	                             "instr(account, '@') = 0)"
	                           : " AND substr(account, -length(:suffix)) = :suffix")
	                   : "",
	         f->state != ABQ_STATE_NONE ? " AND state = :state" : "",
	         f->seen_before ? " AND last_seen < :before" : "",
	         f->seen_since ? " AND last_seen >= :since" : "",
	         f->not_individual ? " AND reason IS NOT :individual" : "");
	if ((st = iter_prepare(s, sql, "device_iter", errstr_r)) == NULL)
		return -1;
	if (f->domain)
		suffix = str_lower(xasprintf("@%s", f->domain));
	rc = bt_named(st, ":k1", "") || bt_named(st, ":k2", "") ||
	     bt_named(st, ":account", f->account) || bt_named(st, ":device_id", f->device_id) ||
	     bt_named(st, ":suffix", suffix) || bt_named(st, ":state", state_text(f->state)) ||
	     bi_named(st, ":before", f->seen_before) || bi_named(st, ":since", f->seen_since) ||
	     bt_named(st, ":individual", abq_reason_name(ABQ_REASON_INDIVIDUAL));
	free(suffix);
	if (rc != SQLITE_OK)
		return iter_bind_fail(s, st, "device_iter", errstr_r);
	return run_iter(s, &device_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
key_entry(sqlite3_stmt *st, const void *rec)
{
	const struct abq_entry *e = rec;

	return bt_named(st, ":k1", e->device_id) ||
	       bt_named(st, ":k2", e->account ? e->account : "");
}

static int
call_entry(any_cb cb, void *arg, const void *rec)
{
	return ((abq_entry_cb *)cb)(arg, rec);
}

static const struct iter_kind entry_kind = {
    "entry_iter", sizeof(struct abq_entry), read_entry, clear_entry, key_entry, call_entry};

/* Entries by DeviceId, the DeviceId-alone entry ('' sorts first) before accounts. */
static int
sqlite_entry_iter(struct abq_store *store, enum abq_state state, abq_entry_cb *cb, void *arg,
                  const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT " ENTRY_COLS " FROM entries WHERE (device_id, coalesce(account, '')) > "
	         "(:k1, :k2)%s ORDER BY device_id, coalesce(account, '')" BATCH_LIMIT,
	         state != ABQ_STATE_NONE ? " AND state = :state" : "");
	if ((st = iter_prepare(s, sql, "entry_iter", errstr_r)) == NULL)
		return -1;
	if (bt_named(st, ":k1", "") || bt_named(st, ":k2", "") ||
	    bt_named(st, ":state", state_text(state)))
		return iter_bind_fail(s, st, "entry_iter", errstr_r);
	return run_iter(s, &entry_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
key_rule(sqlite3_stmt *st, const void *rec)
{
	const struct abq_rule *r = rec;

	return bi_named(st, ":k1", r->domain == NULL) ||
	       bt_named(st, ":k2", r->domain ? r->domain : "") || bi_named(st, ":k3", r->order) ||
	       bi_named(st, ":k4", r->id);
}

static int
call_rule(any_cb cb, void *arg, const void *rec)
{
	return ((abq_rule_cb *)cb)(arg, rec);
}

static const struct iter_kind rule_kind = {
    "rule_iter", sizeof(struct abq_rule), read_rule, clear_rule, key_rule, call_rule};

/* Rules: domain rules by domain, then global ones; each by order, then id. */
static int
sqlite_rule_iter(struct abq_store *store, const char *domain, bool all, abq_rule_cb *cb, void *arg,
                 const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT " RULE_COLS " FROM rules WHERE (domain IS NULL, coalesce(domain, ''), "
	         "rule_order, id) > (:k1, :k2, :k3, :k4)%s ORDER BY domain IS NULL, "
	         "coalesce(domain, ''), rule_order, id" BATCH_LIMIT,
	         domain ? " AND domain = :domain"
	         : all  ? ""
	                : " AND domain IS NULL");
	if ((st = iter_prepare(s, sql, "rule_iter", errstr_r)) == NULL)
		return -1;
	if (bi_named(st, ":k1", -1) || bt_named(st, ":k2", "") || bi_named(st, ":k3", 0) ||
	    bi_named(st, ":k4", 0) || bt_named(st, ":domain", domain))
		return iter_bind_fail(s, st, "rule_iter", errstr_r);
	return run_iter(s, &rule_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
key_attr(sqlite3_stmt *st, const void *rec)
{
	const struct abq_attr *a = rec;

	return bi_named(st, ":k1", a->scope) || bt_named(st, ":k2", a->target ? a->target : "") ||
	       bt_named(st, ":k3", a->name);
}

static int
call_attr(any_cb cb, void *arg, const void *rec)
{
	return ((abq_attr_cb *)cb)(arg, rec);
}

static const struct iter_kind attr_kind = {
    "attr_iter", sizeof(struct abq_attr), read_attr, clear_attr, key_attr, call_attr};

/*
 * Attributes by scope (global, domain, account: the enum's order, not the
 * names' alphabetical one), then target and name.
 */
static int
sqlite_attr_iter(struct abq_store *store, abq_attr_cb *cb, void *arg, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;

#define ATTR_RANK "(CASE scope WHEN :global THEN 0 WHEN :domain THEN 1 ELSE 2 END)"
	st = iter_prepare(s,
	                  "SELECT " ATTR_COLS " FROM attrs WHERE (" ATTR_RANK ", target, name) > "
	                  "(:k1, :k2, :k3) ORDER BY " ATTR_RANK ", target, name" BATCH_LIMIT,
	                  "attr_iter", errstr_r);
#undef ATTR_RANK
	if (st == NULL)
		return -1;
	if (bi_named(st, ":k1", -1) || bt_named(st, ":k2", "") || bt_named(st, ":k3", "") ||
	    bt_named(st, ":global", abq_scope_name(ABQ_SCOPE_GLOBAL)) ||
	    bt_named(st, ":domain", abq_scope_name(ABQ_SCOPE_DOMAIN)))
		return iter_bind_fail(s, st, "attr_iter", errstr_r);
	return run_iter(s, &attr_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
key_history(sqlite3_stmt *st, const void *rec)
{
	return bi_named(st, ":k1", ((const struct abq_history *)rec)->id);
}

static int
call_history(any_cb cb, void *arg, const void *rec)
{
	return ((abq_history_cb *)cb)(arg, rec);
}

static const struct iter_kind history_kind = {"history_iter", sizeof(struct abq_history),
                                              read_history,   clear_history,
                                              key_history,    call_history};

/* History by id: oldest first, or with a limit the newest rows, newest first. */
static int
sqlite_history_iter(struct abq_store *store, const struct abq_history_filter *f, abq_history_cb *cb,
                    void *arg, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	bool newest = f->limit != 0;
	sqlite3_stmt *st;
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT " HISTORY_COLS
	         " FROM history WHERE id %s :k1%s%s%s ORDER BY id%s" BATCH_LIMIT,
	         newest ? "<" : ">", f->device_id ? " AND device_id = :device_id" : "",
	         f->account ? " AND account = :account" : "", f->since ? " AND at >= :since" : "",
	         newest ? " DESC" : "");
	if ((st = iter_prepare(s, sql, "history_iter", errstr_r)) == NULL)
		return -1;
	if (bi_named(st, ":k1", newest ? INT64_MAX : 0) ||
	    bt_named(st, ":device_id", f->device_id) || bt_named(st, ":account", f->account) ||
	    bi_named(st, ":since", f->since))
		return iter_bind_fail(s, st, "history_iter", errstr_r);
	return run_iter(s, &history_kind, st, f->limit, (any_cb)cb, arg, errstr_r);
}

static int
key_change(sqlite3_stmt *st, const void *rec)
{
	return bi_named(st, ":k1", ((const struct abq_change *)rec)->seq);
}

static int
call_change(any_cb cb, void *arg, const void *rec)
{
	return ((abq_change_cb *)cb)(arg, rec);
}

static const struct iter_kind change_kind = {
    "change_iter", sizeof(struct abq_change), read_change, clear_change, key_change, call_change};

/* Changes after since, by ascending sequence number. */
static int
sqlite_change_iter(struct abq_store *store, int64_t since, abq_change_cb *cb, void *arg,
                   const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = iter_prepare(
	    s, "SELECT " CHANGE_COLS " FROM changes WHERE seq > :k1 ORDER BY seq" BATCH_LIMIT,
	    "change_iter", errstr_r);

	if (st == NULL)
		return -1;
	if (bi_named(st, ":k1", since))
		return iter_bind_fail(s, st, "change_iter", errstr_r);
	return run_iter(s, &change_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
key_notice(sqlite3_stmt *st, const void *rec)
{
	return bi_named(st, ":k1", ((const struct abq_notice *)rec)->id);
}

static int
call_notice(any_cb cb, void *arg, const void *rec)
{
	return ((abq_notice_cb *)cb)(arg, rec);
}

static const struct iter_kind notice_kind = {
    "notice_iter", sizeof(struct abq_notice), read_notice, clear_notice, key_notice, call_notice};

/* The outbox in the order notices were queued, all or those in one state. */
static int
sqlite_notice_iter(struct abq_store *store, const char *state, abq_notice_cb *cb, void *arg,
                   const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT " NOTICE_COLS " FROM outbox WHERE id > :k1%s ORDER BY id" BATCH_LIMIT,
	         state ? " AND state = :state" : "");
	if ((st = iter_prepare(s, sql, "notice_iter", errstr_r)) == NULL)
		return -1;
	if (bi_named(st, ":k1", 0) || bt_named(st, ":state", state))
		return iter_bind_fail(s, st, "notice_iter", errstr_r);
	return run_iter(s, &notice_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

/* One aggregate over the rows in state (the outbox_due index leads with it). */
static int
sqlite_notice_stats(struct abq_store *store, const char *state, int64_t *count_r, int64_t *oldest_r,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_NOTICE_STATS, "notice_stats", errstr_r);

	if (st == NULL)
		return -1;
	if (bt(st, 1, state) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		db_fail(s, "notice_stats", errstr_r);
		stmt_release(st);
		return -1;
	}
	*count_r = sqlite3_column_int64(st, 0);
	*oldest_r = sqlite3_column_int64(st, 1);
	stmt_release(st);
	return 0;
}

/* The queued notices due at now, by id. */
static int
sqlite_notice_due(struct abq_store *store, int64_t now, abq_notice_cb *cb, void *arg,
                  const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = iter_prepare(s,
	                                "SELECT " NOTICE_COLS " FROM outbox WHERE id > :k1 AND "
	                                "state = 'queued' AND next_attempt <= :now "
	                                "ORDER BY id" BATCH_LIMIT,
	                                "notice_due", errstr_r);

	if (st == NULL)
		return -1;
	if (bi_named(st, ":k1", 0) || bi_named(st, ":now", now))
		return iter_bind_fail(s, st, "notice_due", errstr_r);
	return run_iter(s, &notice_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

/* Record the outcome of a delivery attempt; a missing id is an error. */
static int
sqlite_notice_mark(struct abq_store *store, int64_t id, const char *state, int attempts,
                   int64_t next_attempt, const char *last_error, int64_t sent,
                   const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_NOTICE_MARK, "notice_mark", errstr_r);

	if (st == NULL)
		return -1;
	if (write_bound(s, st,
	                bi(st, 1, id) || bt(st, 2, state) || bi(st, 3, attempts) ||
	                    bi(st, 4, next_attempt) || bt(st, 5, last_error) || bi(st, 6, sent),
	                "notice_mark", errstr_r) < 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return fail(s, errstr_r, "no notice with id %lld", (long long)id);
	return 0;
}

/* ---- notice templates (schema version 3) ------------------------------- */

/* The stored domain column of a template key: '' for global. */
static const char *
template_domain(enum abq_scope scope, const char *domain)
{
	return scope == ABQ_SCOPE_GLOBAL ? "" : domain;
}

/* Bind the four key columns of a template to parameters 1..4. */
static int
bind_template_key(sqlite3_stmt *st, enum abq_scope scope, const char *domain, const char *kind,
                  const char *locale)
{
	return bt(st, 1, abq_scope_name(scope)) || bt(st, 2, template_domain(scope, domain)) ||
	       bt(st, 3, kind) || bt(st, 4, locale);
}

/* Insert or replace one template. */
static int
sqlite_template_put(struct abq_store *store, const struct abq_template *t, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TEMPLATE_PUT, "template_put", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(
	    s, st,
	    bind_template_key(st, t->scope, t->domain, t->kind, t->locale) || bt(st, 5, t->from) ||
	        bt(st, 6, t->reply_to) || bt(st, 7, t->subject) || bt(st, 8, t->body_plain) ||
	        bt(st, 9, t->body_html) || bt(st, 10, t->set_by) || bi(st, 11, t->set_at),
	    "template_put", errstr_r);
}

/* Look one template up by its key. */
static int
sqlite_template_get(struct abq_store *store, enum abq_scope scope, const char *domain,
                    const char *kind, const char *locale, struct abq_template *out,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TEMPLATE_GET, "template_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bind_template_key(st, scope, domain, kind, locale), "template_get",
	               read_template, out, clear_template, errstr_r);
}

/* Remove one template; counts it. */
static int
sqlite_template_delete(struct abq_store *store, enum abq_scope scope, const char *domain,
                       const char *kind, const char *locale, size_t *count_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TEMPLATE_DELETE, "template_delete", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	if (write_bound(s, st, bind_template_key(st, scope, domain, kind, locale),
	                "template_delete", errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	return 0;
}

static int
key_template(sqlite3_stmt *st, const void *rec)
{
	const struct abq_template *t = rec;

	return bt_named(st, ":k1", abq_scope_name(t->scope)) ||
	       bt_named(st, ":k2", template_domain(t->scope, t->domain)) ||
	       bt_named(st, ":k3", t->kind) || bt_named(st, ":k4", t->locale);
}

static int
call_template(any_cb cb, void *arg, const void *rec)
{
	return ((abq_template_cb *)cb)(arg, rec);
}

static const struct iter_kind template_kind = {"template_iter", sizeof(struct abq_template),
                                               read_template,   clear_template,
                                               key_template,    call_template};

/* Every template by scope name, domain, kind and locale. */
static int
sqlite_template_iter(struct abq_store *store, abq_template_cb *cb, void *arg, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = iter_prepare(s,
	                                "SELECT " TEMPLATE_COLS " FROM templates WHERE (scope, "
	                                "domain, kind, locale) > (:k1, :k2, :k3, :k4) ORDER BY "
	                                "scope, domain, kind, locale" BATCH_LIMIT,
	                                "template_iter", errstr_r);

	if (st == NULL)
		return -1;
	if (bt_named(st, ":k1", "") || bt_named(st, ":k2", "") || bt_named(st, ":k3", "") ||
	    bt_named(st, ":k4", ""))
		return iter_bind_fail(s, st, "template_iter", errstr_r);
	return run_iter(s, &template_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

/* ---- administrators and tokens (schema version 4) ----------------------- */

static int
sqlite_admin_get(struct abq_store *store, const char *name, struct abq_admin *out,
                 const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ADMIN_GET, "admin_get", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bt(st, 1, name), "admin_get", read_admin, out, clear_admin, errstr_r);
}

static int
sqlite_admin_put(struct abq_store *store, const struct abq_admin *a, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ADMIN_PUT, "admin_put", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st,
	                   bt(st, 1, a->name) || bt(st, 2, a->password_hash) ||
	                       bt(st, 3, a->created_by) || bi(st, 4, a->created_at) ||
	                       bi(st, 5, a->password_at) || bi(st, 6, a->last_login),
	                   "admin_put", errstr_r);
}

/* Remove an administrator, then their tokens: no token outlives its owner. */
static int
sqlite_admin_delete(struct abq_store *store, const char *name, size_t *count_r,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_ADMIN_DELETE, "admin_delete", errstr_r);

	*count_r = 0;
	if (st == NULL || write_bound(s, st, bt(st, 1, name), "admin_delete", errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	st = stmt_get(s, ST_TOKEN_DELETE_ADMIN, "admin_delete", errstr_r);
	if (st == NULL)
		return -1;
	return write_bound(s, st, bt(st, 1, name), "admin_delete (tokens)", errstr_r);
}

static int
key_admin(sqlite3_stmt *st, const void *rec)
{
	return bt_named(st, ":k1", ((const struct abq_admin *)rec)->name);
}

static int
call_admin(any_cb cb, void *arg, const void *rec)
{
	return ((abq_admin_cb *)cb)(arg, rec);
}

static const struct iter_kind admin_kind = {
    "admin_iter", sizeof(struct abq_admin), read_admin, clear_admin, key_admin, call_admin};

static int
sqlite_admin_iter(struct abq_store *store, abq_admin_cb *cb, void *arg, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = iter_prepare(
	    s, "SELECT " ADMIN_COLS " FROM admins WHERE name > :k1 ORDER BY name" BATCH_LIMIT,
	    "admin_iter", errstr_r);

	if (st == NULL)
		return -1;
	if (bt_named(st, ":k1", ""))
		return iter_bind_fail(s, st, "admin_iter", errstr_r);
	return run_iter(s, &admin_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

/* Add a token; a hash already stored fails on the UNIQUE constraint. */
static int
sqlite_token_add(struct abq_store *store, struct abq_token *t, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TOKEN_ADD, "token_add", errstr_r);

	if (st == NULL || write_bound(s, st,
	                              bt(st, 2, t->admin) || bt(st, 3, t->label) ||
	                                  bt(st, 4, t->hash) || bt(st, 5, t->created_by) ||
	                                  bi(st, 6, t->created_at) || bi(st, 7, t->last_used),
	                              "token_add", errstr_r) < 0)
		return -1;
	t->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int
sqlite_token_find(struct abq_store *store, const char *hash, struct abq_token *out,
                  const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TOKEN_FIND, "token_find", errstr_r);

	memset(out, 0, sizeof(*out));
	if (st == NULL)
		return -1;
	return get_one(s, st, bt(st, 1, hash), "token_find", read_token, out, clear_token,
	               errstr_r);
}

static int
sqlite_token_touch(struct abq_store *store, int64_t id, int64_t at, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_TOKEN_TOUCH, "token_touch", errstr_r);

	if (st == NULL)
		return -1;
	return write_bound(s, st, bi(st, 1, id) || bi(st, 2, at), "token_touch", errstr_r);
}

static int
sqlite_token_delete(struct abq_store *store, const char *admin, const char *label, size_t *count_r,
                    const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, label ? ST_TOKEN_DELETE_LABEL : ST_TOKEN_DELETE_ADMIN,
	                            "token_delete", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	if (write_bound(s, st, bt(st, 1, admin) || (label && bt(st, 2, label)), "token_delete",
	                errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	return 0;
}

static int
key_token(sqlite3_stmt *st, const void *rec)
{
	const struct abq_token *t = rec;

	return bt_named(st, ":k1", t->admin) || bi_named(st, ":k2", t->id);
}

static int
call_token(any_cb cb, void *arg, const void *rec)
{
	return ((abq_token_cb *)cb)(arg, rec);
}

static const struct iter_kind token_kind = {
    "token_iter", sizeof(struct abq_token), read_token, clear_token, key_token, call_token};

static int
sqlite_token_iter(struct abq_store *store, const char *admin, abq_token_cb *cb, void *arg,
                  const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SELECT " TOKEN_COLS " FROM tokens WHERE (admin, id) > (:k1, :k2)%s ORDER BY "
	         "admin, id" BATCH_LIMIT,
	         admin ? " AND admin = :admin" : "");
	if ((st = iter_prepare(s, sql, "token_iter", errstr_r)) == NULL)
		return -1;
	if (bt_named(st, ":k1", "") || bi_named(st, ":k2", 0) || bt_named(st, ":admin", admin))
		return iter_bind_fail(s, st, "token_iter", errstr_r);
	return run_iter(s, &token_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

static int
sqlite_token_count(struct abq_store *store, const char *admin, size_t *count_r,
                   const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st =
	    stmt_get(s, admin ? ST_TOKEN_COUNT : ST_TOKEN_COUNT_ALL, "token_count", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	return count_bound(s, st, admin ? bt(st, 1, admin) : SQLITE_OK, count_r, "token_count",
	                   errstr_r);
}

/* ---- sync state (schema version 2) ------------------------------------ */

/* Read one collection's sync state into a malloc'd, NUL-terminated copy. */
static int
sqlite_syncstate_get(struct abq_store *store, const char *account, const char *device_id,
                     const char *collection, void **state_r, size_t *len_r, int64_t *updated_r,
                     const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_SYNCSTATE_GET, "syncstate_get", errstr_r);
	const void *blob;
	int rc, n;
	char *copy;

	if (st == NULL)
		return -1;
	if (bt(st, 1, account) || bt(st, 2, device_id) || bt(st, 3, collection)) {
		db_fail(s, "syncstate_get", errstr_r);
		stmt_release(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		stmt_release(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		db_fail(s, "syncstate_get", errstr_r);
		stmt_release(st);
		return -1;
	}
	blob = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	copy = xmalloc((size_t)n + 1);
	if (n > 0)
		memcpy(copy, blob, (size_t)n);
	copy[n] = '\0';
	*state_r = copy;
	*len_r = (size_t)n;
	*updated_r = sqlite3_column_int64(st, 1);
	stmt_release(st);
	return 1;
}

/* Insert or replace one collection's sync state. */
static int
sqlite_syncstate_put(struct abq_store *store, const char *account, const char *device_id,
                     const char *collection, const void *state, size_t len, int64_t updated,
                     const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = stmt_get(s, ST_SYNCSTATE_PUT, "syncstate_put", errstr_r);

	if (st == NULL)
		return -1;
	if (len > INT_MAX)
		return fail(s, errstr_r, "syncstate_put: state of %zu bytes is too large", len);
	return write_bound(s, st,
	                   bt(st, 1, account) || bt(st, 2, device_id) || bt(st, 3, collection) ||
	                       sqlite3_bind_blob(st, 4, state, (int)len, SQLITE_TRANSIENT) ||
	                       bi(st, 5, updated),
	                   "syncstate_put", errstr_r);
}

/* Remove one collection's sync state, or all of the device's; counts them. */
static int
sqlite_syncstate_delete(struct abq_store *store, const char *account, const char *device_id,
                        const char *collection, size_t *count_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st =
	    stmt_get(s, collection ? ST_SYNCSTATE_DELETE_ONE : ST_SYNCSTATE_DELETE_DEVICE,
	             "syncstate_delete", errstr_r);

	*count_r = 0;
	if (st == NULL)
		return -1;
	if (write_bound(s, st,
	                bt(st, 1, account) || bt(st, 2, device_id) ||
	                    (collection && bt(st, 3, collection)),
	                "syncstate_delete", errstr_r) < 0)
		return -1;
	*count_r = (size_t)sqlite3_changes(s->db);
	return 0;
}

/* ---- moving a registry (store.h) ------------------------------------------ */

static int
read_syncstate(struct sqlite_store *s, sqlite3_stmt *st, void *rec, const char **errstr_r)
{
	struct abq_syncstate *r = rec;
	const void *blob = sqlite3_column_blob(st, 3);
	int n = sqlite3_column_bytes(st, 3);

	(void)s;
	(void)errstr_r;
	r->account = col_str(st, 0);
	r->device_id = col_str(st, 1);
	r->collection = col_str(st, 2);
	r->len = n > 0 ? (size_t)n : 0;
	r->state = xmalloc(r->len + 1);
	if (r->len > 0)
		memcpy(r->state, blob, r->len);
	((char *)r->state)[r->len] = '\0';
	r->updated = sqlite3_column_int64(st, 4);
	return 0;
}

static void
clear_syncstate(void *p)
{
	abq_syncstate_clear(p);
}

static int
key_syncstate(sqlite3_stmt *st, const void *rec)
{
	const struct abq_syncstate *r = rec;

	return bt_named(st, ":k1", r->account) || bt_named(st, ":k2", r->device_id) ||
	       bt_named(st, ":k3", r->collection);
}

static int
call_syncstate(any_cb cb, void *arg, const void *rec)
{
	return ((abq_syncstate_cb *)cb)(arg, rec);
}

static const struct iter_kind syncstate_kind = {"syncstate_iter", sizeof(struct abq_syncstate),
                                                read_syncstate,   clear_syncstate,
                                                key_syncstate,    call_syncstate};

static int
sqlite_syncstate_iter(struct abq_store *store, abq_syncstate_cb *cb, void *arg,
                      const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st =
	    iter_prepare(s,
	                 "SELECT account, device_id, collection, state, updated FROM "
	                 "syncstate WHERE (account, device_id, collection) > (:k1, "
	                 ":k2, :k3) ORDER BY account, device_id, "
	                 "collection" BATCH_LIMIT,
	                 "syncstate_iter", errstr_r);

	if (st == NULL)
		return -1;
	if (bt_named(st, ":k1", "") || bt_named(st, ":k2", "") || bt_named(st, ":k3", ""))
		return iter_bind_fail(s, st, "syncstate_iter", errstr_r);
	return run_iter(s, &syncstate_kind, st, 0, (any_cb)cb, arg, errstr_r);
}

/*
 * Write a record under its source id. A statement prepared for the call: a
 * migration is a one-off, and the cached statements stay the daemon's. The
 * AUTOINCREMENT counters (sqlite_sequence) follow the highest id by themselves.
 */
static int
sqlite_restore(struct abq_store *store, enum abq_restore_kind kind, const void *rec,
               const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st = NULL;
	const char *sql = NULL;
	int rc = SQLITE_OK;

	switch (kind) {
	case ABQ_RESTORE_RULE:
		sql =
		    "INSERT INTO rules (" RULE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
		break;
	case ABQ_RESTORE_HISTORY:
		sql = "INSERT INTO history (" HISTORY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		      "?8, ?9, ?10)";
		break;
	case ABQ_RESTORE_NOTICE:
		sql = "INSERT INTO outbox (" NOTICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		      "coalesce(?8, 'queued'), ?9, ?10, ?11, ?12, ?13)";
		break;
	case ABQ_RESTORE_CHANGE:
		sql = "INSERT INTO changes (" CHANGE_COLS ") VALUES (?1, ?2, ?3, ?4)";
		break;
	}
	if (sql == NULL)
		return fail(s, errstr_r, "restore: unknown kind %d", (int)kind);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_fail(s, "restore", errstr_r);
	}
	if (kind == ABQ_RESTORE_RULE) {
		const struct abq_rule *r = rec;
		rc = bi(st, 1, r->id) || bind_rule(st, r);
	} else if (kind == ABQ_RESTORE_HISTORY) {
		const struct abq_history *h = rec;
		rc = bi(st, 1, h->id) || bi(st, 2, h->at) || bt(st, 3, h->who) ||
		     bt(st, 4, h->what) || bt(st, 5, h->subject) || bt(st, 6, h->old_value) ||
		     bt(st, 7, h->new_value) || bt(st, 8, h->reason) || bt(st, 9, h->device_id) ||
		     bt(st, 10, h->account);
	} else if (kind == ABQ_RESTORE_NOTICE) {
		const struct abq_notice *n = rec;
		rc = bi(st, 1, n->id) || bt(st, 2, n->recipient) || bt(st, 3, n->kind) ||
		     bt(st, 4, n->account) || bt(st, 5, n->device_id) ||
		     bt(st, 6, n->template_ref) || bt(st, 7, n->rendered) || bt(st, 8, n->state) ||
		     bi(st, 9, n->attempts) || bi(st, 10, n->next_attempt) ||
		     bt(st, 11, n->last_error) || bi(st, 12, n->created) || bi(st, 13, n->sent);
	} else {
		const struct abq_change *c = rec;
		rc = bi(st, 1, c->seq) || bi(st, 2, c->at) ||
		     bt(st, 3, change_kind_names[c->kind]) || bt(st, 4, c->key);
	}
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		db_fail(s, "restore", errstr_r);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* ---- accounts ---------------------------------------------------------------- */

/* Read a meta value: 1 with *value_r (malloc'd), 0 when absent, or -1. */
static int
sqlite_meta_get(struct abq_store *store, const char *key, char **value_r, const char **errstr_r)
{
	struct sqlite_store *s = S(store);
	sqlite3_stmt *st;
	int rc;

	*value_r = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_fail(s, "meta_get", errstr_r);
	if (bt(st, 1, key) != SQLITE_OK) {
		db_fail(s, "meta_get", errstr_r);
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value_r = xstrdup((const char *)sqlite3_column_text(st, 0));
		rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = db_fail(s, "meta_get", errstr_r);
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The rewrite of bare accounts to "name@domain" (store.h), one statement at a
 * time, in this order: devices that lose a collision (the one seen less
 * recently; the canonical one on a tie), then the sync state of the pairs whose
 * device is gone (and, between two states with no device, the bare one), then
 * every table's bare accounts; entries and account attributes keep the
 * canonical record of a collision. ?1 is the domain. History and the outbox
 * are rewritten too, so a filter by account finds what was recorded before.
 */
static const struct {
	const char *sql;
	bool counted; /* a registry record (device, entry, attribute) */
} sqlite_canon[] = {
    {"DELETE FROM devices WHERE instr(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE instr(b.account, '@') = 0 AND b.account || '@' || ?1 = devices.account"
     " AND b.device_id = devices.device_id AND b.last_seen > devices.last_seen)",
     true},
    {"DELETE FROM devices WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = devices.account || '@' || ?1 AND c.device_id = devices.device_id)",
     true},
    {"DELETE FROM syncstate WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = syncstate.account || '@' || ?1 AND c.device_id = syncstate.device_id)",
     false},
    {"DELETE FROM syncstate WHERE instr(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE instr(b.account, '@') = 0 AND b.account || '@' || ?1 = syncstate.account"
     " AND b.device_id = syncstate.device_id)",
     false},
    {"DELETE FROM syncstate WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM syncstate c"
     " WHERE c.account = syncstate.account || '@' || ?1 AND c.device_id = syncstate.device_id"
     " AND c.collection = syncstate.collection)",
     false},
    {"UPDATE syncstate SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE devices SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", true},
    {"DELETE FROM entries WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM entries c"
     " WHERE c.account = entries.account || '@' || ?1 AND c.device_id = entries.device_id)",
     true},
    {"UPDATE entries SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", true},
    {"DELETE FROM attrs WHERE scope = 'account' AND instr(target, '@') = 0 AND EXISTS"
     " (SELECT 1 FROM attrs c WHERE c.scope = 'account'"
     " AND c.target = attrs.target || '@' || ?1 AND c.name = attrs.name)",
     true},
    {"UPDATE attrs SET target = target || '@' || ?1"
     " WHERE scope = 'account' AND instr(target, '@') = 0",
     true},
    {"UPDATE history SET account = account || '@' || ?1"
     " WHERE account <> '' AND instr(account, '@') = 0",
     false},
    {"UPDATE outbox SET account = account || '@' || ?1"
     " WHERE account <> '' AND instr(account, '@') = 0",
     false},
    {"INSERT OR REPLACE INTO meta (key, value) VALUES ('" ABQ_STORE_META_ACCOUNT_DOMAIN "', ?1)",
     false},
};

/* Give bare accounts "@domain" in every table, inside the caller's transaction. */
static int
sqlite_accounts_canonicalize(struct abq_store *store, const char *domain, size_t *count_r,
                             const char **errstr_r)
{
	struct sqlite_store *s = S(store);

	*count_r = 0;
	for (size_t i = 0; i < sizeof(sqlite_canon) / sizeof(sqlite_canon[0]); i++) {
		sqlite3_stmt *st;
		int rc;

		if (sqlite3_prepare_v2(s->db, sqlite_canon[i].sql, -1, &st, NULL) != SQLITE_OK)
			return db_fail(s, "accounts_canonicalize", errstr_r);
		rc = bt(st, 1, domain);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			db_fail(s, "accounts_canonicalize", errstr_r);
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_finalize(st);
		if (sqlite_canon[i].counted)
			*count_r += (size_t)sqlite3_changes(s->db);
	}
	return 0;
}

const struct abq_store_ops abq_store_sqlite_ops = {
    .name = "sqlite",
    .scheme = "sqlite:",
    .open = sqlite_open,
    .close = sqlite_close,
    .location = sqlite_location,
    .files = sqlite_files,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .device_get = sqlite_device_get,
    .device_put = sqlite_device_put,
    .device_delete = sqlite_device_delete,
    .device_iter = sqlite_device_iter,
    .device_count = sqlite_device_count,
    .device_touch = sqlite_device_touch,
    .entry_get = sqlite_entry_get,
    .entry_put = sqlite_entry_put,
    .entry_delete = sqlite_entry_delete,
    .entry_iter = sqlite_entry_iter,
    .rule_insert = sqlite_rule_insert,
    .rule_update = sqlite_rule_update,
    .rule_get = sqlite_rule_get,
    .rule_delete = sqlite_rule_delete,
    .rule_iter = sqlite_rule_iter,
    .attr_get = sqlite_attr_get,
    .attr_put = sqlite_attr_put,
    .attr_delete = sqlite_attr_delete,
    .attr_iter = sqlite_attr_iter,
    .history_add = sqlite_history_add,
    .history_iter = sqlite_history_iter,
    .change_add = sqlite_change_add,
    .change_iter = sqlite_change_iter,
    .change_last = sqlite_change_last,
    .notice_add = sqlite_notice_add,
    .notice_iter = sqlite_notice_iter,
    .notice_stats = sqlite_notice_stats,
    .syncstate_get = sqlite_syncstate_get,
    .syncstate_put = sqlite_syncstate_put,
    .syncstate_delete = sqlite_syncstate_delete,
    .notice_due = sqlite_notice_due,
    .notice_mark = sqlite_notice_mark,
    .template_put = sqlite_template_put,
    .template_get = sqlite_template_get,
    .template_delete = sqlite_template_delete,
    .template_iter = sqlite_template_iter,
    .admin_get = sqlite_admin_get,
    .admin_put = sqlite_admin_put,
    .admin_delete = sqlite_admin_delete,
    .admin_iter = sqlite_admin_iter,
    .token_add = sqlite_token_add,
    .token_find = sqlite_token_find,
    .token_touch = sqlite_token_touch,
    .token_delete = sqlite_token_delete,
    .token_iter = sqlite_token_iter,
    .token_count = sqlite_token_count,
    .syncstate_iter = sqlite_syncstate_iter,
    .restore = sqlite_restore,
    .meta_get = sqlite_meta_get,
    .accounts_canonicalize = sqlite_accounts_canonicalize,
};
