/*
 * store_pgsql.c: the PostgreSQL backend of the store, through libpq.
 *
 * URL: "postgresql://..." or "postgres://...", handed to PQconnectdb as it is
 * (user, password, host, port, database and libpq options such as
 * ?options=-csearch_path%3Dabqd). The store lives in the connection's current
 * schema (the first existing schema of search_path).
 *
 * Identity: the table abqd_meta holds an application marker
 * ('application' = 'abqd') and the schema version ('schema_version'). A schema
 * with tables but no marker is not an abqd store and is left alone; a newer
 * version is refused; an older one is migrated in one transaction under the
 * advisory lock (so two processes initialising at once do the work once). An
 * empty schema is initialised only with ABQ_STORE_CREATE ("abqctl init").
 *
 * Types: BIGINT for every time and counter, TEXT COLLATE "C" for keys (byte
 * order, as SQLite's BINARY), BYTEA for the sync state. DeviceIds, attribute
 * names and template locales compare case-insensitively as SQLite's NOCASE
 * does (ASCII only): each such column has a generated key column
 * lower(column) under the "C" collation (which folds ASCII letters only), and
 * the unique keys and lookups use it; the original spelling is kept for
 * display, and a put under another spelling replaces the record and its
 * spelling, like SQLite's INSERT OR REPLACE.
 *
 * Transactions: abq_store_begin is BEGIN ISOLATION LEVEL READ COMMITTED
 * followed by pg_advisory_xact_lock(WRITE_LOCK), so writers serialise as with
 * SQLite's BEGIN IMMEDIATE: a second abqctl queues instead of failing. Writes
 * outside a transaction are each a transaction of their own.
 *
 * The change log: seq comes from the changes table's sequence (BIGSERIAL). Every
 * nextval is taken under the write lock (a change_add outside a transaction
 * takes it for its own short transaction), so sequence order is commit order
 * and a daemon reading "seq > last seen" cannot miss a change committed late
 * with a lower number. When a transaction that took numbers is rolled back and
 * no one has taken a number since, the sequence is set back, so that rolled
 * back changes leave no gap (as with SQLite); otherwise the gap is harmless.
 * change_last is the highest committed seq.
 *
 * Statements of the point operations are prepared once per connection
 * (PQprepare on first use). Inside a transaction, writes that return nothing
 * but success (and history_add, with ids fetched ahead from its sequence) are
 * sent in libpq pipeline mode and their results read every PIPE_MAX writes or
 * at the next exchange: a failure then surfaces at a later call of the same
 * transaction, at the latest its commit, which fails. Iteration reads in batches of ITER_BATCH rows
 * by keyset pagination, as the SQLite backend does: each batch is one complete query whose rows are
 * copied into records before any callback runs, so no read is pending while a callback writes,
 * opens a transaction or iterates; the next batch starts after the key of the last record
 * delivered.
 *
 * Errors are one line: "op: " and the server's primary message (or libpq's
 * connection message, newlines folded).
 *
 * Several nodes (store.h): a transaction that wrote change-log rows sends
 * NOTIFY abqd_changes (payload: its last seq) in the same exchange as its
 * COMMIT; listeners are connections of their own. A connection found lost
 * outside a transaction is replaced at the next call (conn_ready, with
 * growing delays between attempts); the sender's lock is a session advisory
 * lock, lost with the connection. Moving a registry: the restore calls
 * insert rows under their source ids, restore_finish moves the sequences on.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "store/store_private.h"
#include "store/store_cols.h"

#define WRITE_LOCK_KEY "1094865220" /* 0x41425144, 'ABQD' */
#define APPLICATION    "abqd"
#define ITER_BATCH     256
#define MAX_PARAMS     24
#define PIPE_MAX       256 /* writes queued in a pipeline before their results are read */
#define NOTIFY_CHANNEL "abqd_changes"
#define MAX_LOCKS      4
/* Reconnection: the first attempt at once, then growing delays up to this. */
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 4000

/* migrations[v] takes a store from schema version v to v + 1 (never edited once released). */
static const char *const migrations[ABQ_STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE abqd_meta (key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE devices ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " device_id TEXT COLLATE \"C\" NOT NULL,"
    " device_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(device_id)) STORED,"
    " device_type TEXT, model TEXT, imei TEXT, friendly_name TEXT, os TEXT,"
    " os_language TEXT, phone_number TEXT, mobile_operator TEXT, user_agent TEXT,"
    " eas_version TEXT, last_address TEXT, last_command TEXT,"
    " first_seen BIGINT NOT NULL DEFAULT 0,"
    " last_seen BIGINT NOT NULL DEFAULT 0,"
    " state TEXT COLLATE \"C\","
    " reason TEXT COLLATE \"C\","
    " rule_id BIGINT NOT NULL DEFAULT 0,"
    " state_by TEXT,"
    " state_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, device_key));"
    "CREATE INDEX devices_device_key ON devices (device_key);"
    "CREATE INDEX devices_last_seen ON devices (last_seen);"
    "CREATE INDEX devices_state ON devices (state);"
    "CREATE TABLE entries ("
    " device_id TEXT COLLATE \"C\" NOT NULL,"
    " device_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(device_id)) STORED,"
    " account TEXT COLLATE \"C\","
    " account_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (coalesce(account, '')) STORED,"
    " state TEXT COLLATE \"C\" NOT NULL,"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (device_key, account_key));"
    "CREATE TABLE rules ("
    " id BIGSERIAL PRIMARY KEY,"
    " characteristic TEXT NOT NULL,"
    " match TEXT NOT NULL,"
    " pattern TEXT NOT NULL,"
    " level TEXT NOT NULL,"
    " rule_order BIGINT NOT NULL DEFAULT 0,"
    " domain TEXT COLLATE \"C\","
    " created_by TEXT,"
    " created_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE attrs ("
    " scope TEXT COLLATE \"C\" NOT NULL,"
    " target TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
    " name TEXT COLLATE \"C\" NOT NULL,"
    " name_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(name)) STORED,"
    " value TEXT NOT NULL,"
    " set_by TEXT,"
    " set_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (scope, target, name_key));"
    "CREATE TABLE history ("
    " id BIGSERIAL PRIMARY KEY,"
    " at BIGINT NOT NULL,"
    " who TEXT, what TEXT NOT NULL, subject TEXT, old_value TEXT, new_value TEXT,"
    " reason TEXT,"
    " device_id TEXT COLLATE \"C\","
    " device_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(device_id)) STORED,"
    " account TEXT COLLATE \"C\");"
    "CREATE INDEX history_device_key ON history (device_key);"
    "CREATE INDEX history_at ON history (at);"
    "CREATE TABLE changes ("
    " seq BIGSERIAL PRIMARY KEY,"
    " at BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " key TEXT NOT NULL);"
    "CREATE TABLE outbox ("
    " id BIGSERIAL PRIMARY KEY,"
    " recipient TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " account TEXT,"
    " device_id TEXT,"
    " template_ref TEXT,"
    " rendered TEXT,"
    " state TEXT COLLATE \"C\" NOT NULL DEFAULT 'queued',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " created BIGINT NOT NULL DEFAULT 0,"
    " sent BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX outbox_due ON outbox (state, next_attempt);",
    /* 1 -> 2: the virtual mailbox's sync state. */
    "CREATE TABLE syncstate ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " device_id TEXT COLLATE \"C\" NOT NULL,"
    " device_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(device_id)) STORED,"
    " collection TEXT COLLATE \"C\" NOT NULL,"
    " state BYTEA NOT NULL,"
    " updated BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, device_key, collection));"
    "CREATE INDEX syncstate_device_key ON syncstate (device_key);",
    /* 2 -> 3: notice templates. */
    "CREATE TABLE templates ("
    " scope TEXT COLLATE \"C\" NOT NULL,"
    " domain TEXT COLLATE \"C\" NOT NULL DEFAULT '',"
    " kind TEXT COLLATE \"C\" NOT NULL,"
    " locale TEXT COLLATE \"C\" NOT NULL,"
    " locale_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(locale)) STORED,"
    " from_addr TEXT, reply_to TEXT, subject TEXT, body_plain TEXT, body_html TEXT,"
    " set_by TEXT,"
    " set_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (scope, domain, kind, locale_key));",
    /* 3 -> 4: administrators and their tokens. */
    "CREATE TABLE admins ("
    " name TEXT COLLATE \"C\" PRIMARY KEY,"
    " password_hash TEXT NOT NULL,"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL DEFAULT 0,"
    " password_at BIGINT NOT NULL DEFAULT 0,"
    " last_login BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE tokens ("
    " id BIGSERIAL PRIMARY KEY,"
    " admin TEXT COLLATE \"C\" NOT NULL,"
    " label TEXT COLLATE \"C\","
    " hash TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL DEFAULT 0,"
    " last_used BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_admin ON tokens (admin, id);",
    /* 4 -> 5: the history of one account found without a scan (abqd_meta was there). */
    "CREATE INDEX history_account ON history (account);",
};

#define STR(x)      #x
#define XSTR(x)     STR(x)
#define BATCH_LIMIT " LIMIT " XSTR(ITER_BATCH)

/* The prepared statements, one per point operation. Keys arrive lower-cased. */
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
	ST_HISTORY_IDS,
	ST_HISTORY_ADD_ID,
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
    [ST_DEVICE_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE account = $1 AND device_key = $2",
    [ST_DEVICE_PUT] = "INSERT INTO devices (" DEVICE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
                      "$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "
                      "ON CONFLICT (account, device_key) DO UPDATE SET "
                      "device_id = EXCLUDED.device_id, device_type = EXCLUDED.device_type, "
                      "model = EXCLUDED.model, imei = EXCLUDED.imei, "
                      "friendly_name = EXCLUDED.friendly_name, os = EXCLUDED.os, "
                      "os_language = EXCLUDED.os_language, phone_number = EXCLUDED.phone_number, "
                      "mobile_operator = EXCLUDED.mobile_operator, "
                      "user_agent = EXCLUDED.user_agent, eas_version = EXCLUDED.eas_version, "
                      "last_address = EXCLUDED.last_address, "
                      "last_command = EXCLUDED.last_command, first_seen = EXCLUDED.first_seen, "
                      "last_seen = EXCLUDED.last_seen, state = EXCLUDED.state, "
                      "reason = EXCLUDED.reason, rule_id = EXCLUDED.rule_id, "
                      "state_by = EXCLUDED.state_by, state_at = EXCLUDED.state_at",
    /* The device's mailbox sync state goes with it (store.h), in the same statement. */
    [ST_DEVICE_DELETE_ALL] = "WITH d AS (DELETE FROM devices WHERE device_key = $1 RETURNING 1), "
                             "s AS (DELETE FROM syncstate WHERE device_key = $1) "
                             "SELECT count(*) FROM d",
    [ST_DEVICE_DELETE_ONE] = "WITH d AS (DELETE FROM devices WHERE device_key = $1 AND "
                             "account = $2 RETURNING 1), s AS (DELETE FROM syncstate WHERE "
                             "device_key = $1 AND account = $2) SELECT count(*) FROM d",
    [ST_DEVICE_COUNT] = "SELECT count(*) FROM devices WHERE account = $1 AND ($2::bigint = 0 OR "
                        "first_seen < $2::bigint)",
    [ST_DEVICE_COUNT_ALL] = "SELECT count(*) FROM devices WHERE $1::bigint = 0 OR "
                            "first_seen < $1::bigint",
    [ST_DEVICE_TOUCH] = "UPDATE devices SET last_seen = $3::bigint, last_address = "
                        "coalesce($4, last_address), last_command = coalesce($5, last_command) "
                        "WHERE account = $1 AND device_key = $2 AND last_seen <= $3::bigint",
    [ST_ENTRY_GET] = "SELECT " ENTRY_COLS " FROM entries WHERE device_key = $1 AND "
                     "account_key = coalesce($2, '')",
    [ST_ENTRY_PUT] = "INSERT INTO entries (" ENTRY_COLS ") VALUES ($1, $2, $3, $4, $5) "
                     "ON CONFLICT (device_key, account_key) DO UPDATE SET "
                     "device_id = EXCLUDED.device_id, account = EXCLUDED.account, "
                     "state = EXCLUDED.state, created_by = EXCLUDED.created_by, "
                     "created_at = EXCLUDED.created_at",
    [ST_ENTRY_DELETE_ALL] = "DELETE FROM entries WHERE device_key = $1",
    [ST_ENTRY_DELETE_ALONE] = "DELETE FROM entries WHERE device_key = $1 AND account IS NULL",
    [ST_ENTRY_DELETE_ONE] = "DELETE FROM entries WHERE device_key = $1 AND account = $2",
    [ST_RULE_INSERT] = "INSERT INTO rules (characteristic, match, pattern, level, rule_order, "
                       "domain, created_by, created_at) VALUES ($2, $3, $4, $5, $6, $7, $8, $9) "
                       "RETURNING id, $1::bigint",
    [ST_RULE_UPDATE] = "UPDATE rules SET characteristic = $2, match = $3, pattern = $4, "
                       "level = $5, rule_order = $6, domain = $7, created_by = $8, "
                       "created_at = $9 WHERE id = $1",
    [ST_RULE_GET] = "SELECT " RULE_COLS " FROM rules WHERE id = $1",
    [ST_RULE_DELETE] = "DELETE FROM rules WHERE id = $1",
    [ST_ATTR_GET] = "SELECT " ATTR_COLS " FROM attrs WHERE scope = $1 AND target = $2 AND "
                    "name_key = $3",
    [ST_ATTR_PUT] = "INSERT INTO attrs (" ATTR_COLS ") VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (scope, target, name_key) DO UPDATE SET name = EXCLUDED.name, "
                    "value = EXCLUDED.value, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
    [ST_ATTR_DELETE] = "DELETE FROM attrs WHERE scope = $1 AND target = $2 AND name_key = $3",
    [ST_HISTORY_ADD] = "INSERT INTO history (at, who, what, subject, old_value, new_value, "
                       "reason, device_id, account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                       "RETURNING id",
    [ST_CHANGE_ADD] = "INSERT INTO changes (at, kind, key) VALUES ($1, $2, $3) RETURNING seq",
    [ST_NOTICE_STATS] = "SELECT count(*), coalesce(min(created), 0) FROM outbox WHERE state = $1",
    [ST_CHANGE_LAST] = "SELECT coalesce(max(seq), 0) FROM changes",
    [ST_NOTICE_ADD] = "INSERT INTO outbox (recipient, kind, account, device_id, template_ref, "
                      "rendered, state, attempts, next_attempt, last_error, created, sent) "
                      "VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, 'queued'), $8, $9, $10, "
                      "$11, $12) RETURNING id",
    [ST_NOTICE_MARK] = "UPDATE outbox SET state = $2, attempts = $3, next_attempt = $4, "
                       "last_error = $5, sent = $6 WHERE id = $1",
    [ST_TEMPLATE_GET] = "SELECT " TEMPLATE_COLS " FROM templates WHERE scope = $1 AND "
                        "domain = $2 AND kind = $3 AND locale_key = $4",
    [ST_TEMPLATE_PUT] = "INSERT INTO templates (" TEMPLATE_COLS ") VALUES ($1, $2, $3, $4, $5, "
                        "$6, $7, $8, $9, $10, $11) ON CONFLICT (scope, domain, kind, locale_key) "
                        "DO UPDATE SET locale = EXCLUDED.locale, from_addr = EXCLUDED.from_addr, "
                        "reply_to = EXCLUDED.reply_to, subject = EXCLUDED.subject, "
                        "body_plain = EXCLUDED.body_plain, body_html = EXCLUDED.body_html, "
                        "set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
    [ST_TEMPLATE_DELETE] = "DELETE FROM templates WHERE scope = $1 AND domain = $2 AND "
                           "kind = $3 AND locale_key = $4",
    [ST_SYNCSTATE_GET] = "SELECT state, updated FROM syncstate WHERE account = $1 AND "
                         "device_key = $2 AND collection = $3",
    [ST_SYNCSTATE_PUT] = "INSERT INTO syncstate (account, device_id, collection, state, updated) "
                         "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, device_key, "
                         "collection) DO UPDATE SET device_id = EXCLUDED.device_id, "
                         "state = EXCLUDED.state, updated = EXCLUDED.updated",
    [ST_SYNCSTATE_DELETE_ONE] = "DELETE FROM syncstate WHERE account = $1 AND device_key = $2 "
                                "AND collection = $3",
    [ST_SYNCSTATE_DELETE_DEVICE] = "DELETE FROM syncstate WHERE account = $1 AND device_key = $2",
    [ST_HISTORY_IDS] = "SELECT nextval(pg_get_serial_sequence('history', 'id')) FROM "
                       "generate_series(1, $1::int)",
    [ST_HISTORY_ADD_ID] = "INSERT INTO history (id, at, who, what, subject, old_value, new_value, "
                          "reason, device_id, account) VALUES ($10, $1, $2, $3, $4, $5, $6, $7, "
                          "$8, $9)",
    [ST_ADMIN_GET] = "SELECT " ADMIN_COLS " FROM admins WHERE name = $1",
    [ST_ADMIN_PUT] = "INSERT INTO admins (" ADMIN_COLS ") VALUES ($1, $2, $3, $4, $5, $6) "
                     "ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                     "created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at, "
                     "password_at = EXCLUDED.password_at, last_login = EXCLUDED.last_login",
    /* No token outlives its owner: both go in the same statement. */
    [ST_ADMIN_DELETE] = "WITH a AS (DELETE FROM admins WHERE name = $1 RETURNING 1), "
                        "t AS (DELETE FROM tokens WHERE admin = $1) SELECT count(*) FROM a",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (admin, label, hash, created_by, created_at, last_used) "
                     "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    [ST_TOKEN_FIND] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1",
    [ST_TOKEN_TOUCH] = "UPDATE tokens SET last_used = $2 WHERE id = $1",
    [ST_TOKEN_DELETE_ADMIN] = "DELETE FROM tokens WHERE admin = $1",
    [ST_TOKEN_DELETE_LABEL] = "DELETE FROM tokens WHERE admin = $1 AND label = $2",
    [ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens WHERE admin = $1",
    [ST_TOKEN_COUNT_ALL] = "SELECT count(*) FROM tokens",
};

/* The open store. */
struct pg_store {
	struct abq_store_base base; /* first: store.c finds the ops here */
	PGconn *conn;
	char *url;      /* as configured, for reconnecting (never printed) */
	char *location; /* the URL without its password */
	/* A transaction is open for the caller: a lost connection is not replaced under it. */
	bool tx_open;
	/* Reconnection after a lost connection (monotonic milliseconds). */
	int64_t retry_at, retry_ms;
	/* Session advisory locks held on this connection (abq_store_try_lock). */
	int64_t locks[MAX_LOCKS];
	int nlocks;
	bool readonly;
	const char *files[1];
	bool prepared[ST_COUNT];
	/* Change-log numbers taken in the open transaction (for the rollback). */
	int64_t tx_first_seq, tx_last_seq;
	/* Writes sent in pipeline mode whose results are not read yet. */
	int queued;
	const char *queued_what[PIPE_MAX];
	/* History ids taken ahead from the sequence in the open transaction. */
	int64_t hist_ids[PIPE_MAX];
	int hist_n, hist_i, hist_block;
	char errbuf[1024];
};

/* Parameters of one statement, all sent as text except binary ones. */
struct params {
	int n;
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char *own[MAX_PARAMS];
	char num[MAX_PARAMS][24];
};

static struct pg_store *
S(struct abq_store *s)
{
	return (struct pg_store *)(void *)s;
}

static const struct pg_store *
CS(const struct abq_store *s)
{
	return (const struct pg_store *)(const void *)s;
}

/* ---- parameters ------------------------------------------------------------ */

/* Set parameter i (0-based) to a copy of text v; NULL is SQL NULL. */
static void
p_set(struct params *p, int i, const char *v)
{
	free(p->own[i]);
	p->own[i] = xstrdup_null(v);
	p->v[i] = p->own[i];
	p->len[i] = 0;
	p->fmt[i] = 0;
	if (i >= p->n)
		p->n = i + 1;
}

static void
p_text(struct params *p, const char *v)
{
	p_set(p, p->n, v);
}

/* A key compared without (ASCII) case: sent lower-cased. */
static void
p_key(struct params *p, const char *v)
{
	p_text(p, v);
	str_lower(p->own[p->n - 1]);
}

static void
p_int_at(struct params *p, int i, int64_t v)
{
	free(p->own[i]);
	p->own[i] = NULL;
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
	p->v[i] = p->num[i];
	p->len[i] = 0;
	p->fmt[i] = 0;
	if (i >= p->n)
		p->n = i + 1;
}

static void
p_int(struct params *p, int64_t v)
{
	p_int_at(p, p->n, v);
}

/* Binary bytes (bytea). The caller keeps them alive during the call. */
static void
p_bin(struct params *p, const void *v, size_t len)
{
	int i = p->n++;

	p->v[i] = v;
	p->len[i] = (int)len;
	p->fmt[i] = 1;
}

static void
p_free(struct params *p)
{
	int i;

	for (i = 0; i < MAX_PARAMS; i++)
		free(p->own[i]);
	memset(p, 0, sizeof(*p));
}

/* ---- errors ---------------------------------------------------------------- */

/* Set the store's error message from a printf format; returns -1. */
static int __attribute__((format(printf, 3, 4)))
fail(struct pg_store *s, const char **errstr_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errbuf, sizeof(s->errbuf), fmt, ap);
	va_end(ap);
	*errstr_r = s->errbuf;
	return -1;
}

/* Fold a message to one line: newlines and tabs become spaces, the end is trimmed. */
static void
one_line(char *m)
{
	size_t n;

	for (char *p = m; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	n = strlen(m);
	while (n > 0 && m[n - 1] == ' ')
		m[--n] = '\0';
}

/* Fail with the server's (or libpq's) message, prefixed by what was being done. */
static int
db_fail(struct pg_store *s, const char *what, const PGresult *res, const char **errstr_r)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (m == NULL || *m == '\0')
		m = PQerrorMessage(s->conn);
	if (m == NULL || *m == '\0')
		m = "unknown error";
	fail(s, errstr_r, "%s: %s", what, m);
	one_line(s->errbuf);
	return -1;
}

/* ---- running statements ---------------------------------------------------- */

/* Whether a result is a success. */
static bool
res_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/*
 * Read the results of the writes queued in the pipeline and leave pipeline
 * mode. The first failure among them is reported (as "what: message" of the
 * write that failed); the transaction is then aborted, for the caller to roll
 * back. Every exchange with the server goes through here first.
 */
static int conn_ready(struct pg_store *s, const char **errstr_r);

static int
pipe_flush(struct pg_store *s, const char **errstr_r)
{
	int i = 0, ret = 0;
	PGresult *res;

	if (s->queued == 0)
		return conn_ready(s, errstr_r);
	if (PQpipelineSync(s->conn) != 1) {
		ret = db_fail(s, "pipeline", NULL, errstr_r);
		goto out;
	}
	for (;;) {
		res = PQgetResult(s->conn);
		if (res == NULL) {
			i++; /* the end of one write's results */
			if (PQstatus(s->conn) != CONNECTION_OK) {
				if (ret == 0)
					ret = db_fail(s, "pipeline", NULL, errstr_r);
				break;
			}
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && ret == 0)
			ret = db_fail(s, i < s->queued ? s->queued_what[i] : "pipeline", res,
			              errstr_r);
		PQclear(res);
	}
out:
	s->queued = 0;
	PQexitPipelineMode(s->conn);
	return ret;
}

/* Prepare statement id on this connection if it is not yet. */
static int
prepare(struct pg_store *s, enum stmt_id id, const char *name, const char *what,
        const char **errstr_r)
{
	PGresult *res;

	if (s->prepared[id])
		return 0;
	res = PQprepare(s->conn, name, stmt_sql[id], 0, NULL);
	if (!res_ok(res)) {
		db_fail(s, what, res, errstr_r);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	s->prepared[id] = true;
	return 0;
}

/*
 * Queue a write whose only result is success inside an open transaction: it
 * is sent in pipeline mode without waiting for its answer, so that an import
 * of many records costs a round trip per PIPE_MAX writes rather than one per
 * write. A failure surfaces at the next exchange (at the latest the commit,
 * which then fails), and the transaction is rolled back by the caller.
 */
static int
queue_stmt(struct pg_store *s, enum stmt_id id, struct params *p, const char *what,
           const char **errstr_r)
{
	char name[16];

	snprintf(name, sizeof(name), "abq_%d", (int)id);
	if (!s->prepared[id] &&
	    (pipe_flush(s, errstr_r) < 0 || prepare(s, id, name, what, errstr_r) < 0))
		return -1;
	if (PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(s->conn) != 1)
		return db_fail(s, what, NULL, errstr_r);
	if (PQsendQueryPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 0) != 1) {
		db_fail(s, what, NULL, errstr_r);
		pipe_flush(s, errstr_r);
		return -1;
	}
	s->queued_what[s->queued++] = what;
	if (s->queued >= PIPE_MAX)
		return pipe_flush(s, errstr_r);
	return 0;
}

/*
 * Run prepared statement id (prepared on first use) with p; result format
 * resfmt (0 text, 1 binary). Returns the result or NULL with *errstr_r set.
 */
static PGresult *
run_stmt(struct pg_store *s, enum stmt_id id, struct params *p, int resfmt, const char *what,
         const char **errstr_r)
{
	char name[16];
	PGresult *res;

	snprintf(name, sizeof(name), "abq_%d", (int)id);
	if (pipe_flush(s, errstr_r) < 0 || prepare(s, id, name, what, errstr_r) < 0)
		return NULL;
	res = PQexecPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, resfmt);
	if (!res_ok(res)) {
		db_fail(s, what, res, errstr_r);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Run a write statement: 0 or -1; *count_r (may be NULL) gets the rows affected. */
static int
write_stmt(struct pg_store *s, enum stmt_id id, struct params *p, size_t *count_r, const char *what,
           const char **errstr_r)
{
	PGresult *res;

	if (count_r == NULL && (s->queued > 0 || PQtransactionStatus(s->conn) == PQTRANS_INTRANS)) {
		int ret = queue_stmt(s, id, p, what, errstr_r);

		p_free(p);
		return ret;
	}
	res = run_stmt(s, id, p, 0, what, errstr_r);
	p_free(p);
	if (res == NULL)
		return -1;
	if (count_r != NULL)
		*count_r = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

/* Run SQL without parameters (several statements allowed). */
static int
exec_simple(struct pg_store *s, const char *sql, const char *what, const char **errstr_r)
{
	PGresult *res;
	int ret = 0;

	if (pipe_flush(s, errstr_r) < 0)
		return -1;
	res = PQexec(s->conn, sql);
	if (!res_ok(res))
		ret = db_fail(s, what, res, errstr_r);
	PQclear(res);
	return ret;
}

/* Run a write statement returning one bigint (an id) into *id_r. */
static int
write_returning(struct pg_store *s, enum stmt_id id, struct params *p, int64_t *id_r,
                const char *what, const char **errstr_r)
{
	PGresult *res = run_stmt(s, id, p, 0, what, errstr_r);

	p_free(p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return fail(s, errstr_r, "%s: no row returned", what);
	}
	*id_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* ---- reading rows ---------------------------------------------------------- */

static char *
col_str(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : xstrdup(PQgetvalue(res, r, c));
}

static int64_t
col_int(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static const char *
col_text(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

/* States and reasons are stored by their canonical names; NONE is SQL NULL. */
static const char *
state_text(enum abq_state v)
{
	return v == ABQ_STATE_NONE ? NULL : abq_state_name(v);
}

static const char *
reason_text(enum abq_reason v)
{
	return v == ABQ_REASON_NONE ? NULL : abq_reason_name(v);
}

static const char *const change_kind_names[] = {
    [ABQ_CHANGE_DEVICE] = "device", [ABQ_CHANGE_ENTRY] = "entry",       [ABQ_CHANGE_RULE] = "rule",
    [ABQ_CHANGE_ATTR] = "attr",     [ABQ_CHANGE_TEMPLATE] = "template",
};

static int
col_state(struct pg_store *s, const PGresult *res, int r, int c, enum abq_state *out,
          const char **errstr_r)
{
	const char *t = col_text(res, r, c);

	if (t == NULL) {
		*out = ABQ_STATE_NONE;
		return 0;
	}
	if (abq_state_parse(t, true, out) < 0)
		return fail(s, errstr_r, "unknown state '%s' in the store", t);
	return 0;
}

static int
col_reason(struct pg_store *s, const PGresult *res, int r, int c, enum abq_reason *out,
           const char **errstr_r)
{
	const char *t = col_text(res, r, c);

	if (t == NULL) {
		*out = ABQ_REASON_NONE;
		return 0;
	}
	if (abq_reason_parse(t, out) < 0)
		return fail(s, errstr_r, "unknown reason '%s' in the store", t);
	return 0;
}

typedef int row_reader(struct pg_store *, const PGresult *, int, void *, const char **);

static int
read_device(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_device *d = rec;

	d->account = col_str(res, r, 0);
	d->device_id = col_str(res, r, 1);
	d->device_type = col_str(res, r, 2);
	d->model = col_str(res, r, 3);
	d->imei = col_str(res, r, 4);
	d->friendly_name = col_str(res, r, 5);
	d->os = col_str(res, r, 6);
	d->os_language = col_str(res, r, 7);
	d->phone_number = col_str(res, r, 8);
	d->mobile_operator = col_str(res, r, 9);
	d->user_agent = col_str(res, r, 10);
	d->eas_version = col_str(res, r, 11);
	d->last_address = col_str(res, r, 12);
	d->last_command = col_str(res, r, 13);
	d->first_seen = col_int(res, r, 14);
	d->last_seen = col_int(res, r, 15);
	d->rule_id = col_int(res, r, 18);
	d->state_by = col_str(res, r, 19);
	d->state_at = col_int(res, r, 20);
	if (col_state(s, res, r, 16, &d->state, errstr_r) < 0 ||
	    col_reason(s, res, r, 17, &d->reason, errstr_r) < 0)
		return -1;
	return 0;
}

static int
read_entry(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_entry *e = rec;

	e->device_id = col_str(res, r, 0);
	e->account = col_str(res, r, 1);
	e->created_by = col_str(res, r, 3);
	e->created_at = col_int(res, r, 4);
	return col_state(s, res, r, 2, &e->state, errstr_r);
}

static int
read_rule(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_rule *u = rec;
	const char *ch = col_text(res, r, 1);
	const char *m = col_text(res, r, 2);

	u->id = col_int(res, r, 0);
	u->pattern = col_str(res, r, 3);
	u->order = col_int(res, r, 5);
	u->domain = col_str(res, r, 6);
	u->created_by = col_str(res, r, 7);
	u->created_at = col_int(res, r, 8);
	if (ch == NULL || abq_charac_parse(ch, &u->charac) < 0)
		return fail(s, errstr_r, "rule %" PRId64 ": unknown characteristic in the store",
		            u->id);
	if (m == NULL || abq_match_parse(m, &u->match) < 0)
		return fail(s, errstr_r, "rule %" PRId64 ": unknown match in the store", u->id);
	return col_state(s, res, r, 4, &u->level, errstr_r);
}

static int
read_attr(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_attr *a = rec;
	const char *scope = col_text(res, r, 0);

	if (scope == NULL || abq_scope_parse(scope, &a->scope) < 0)
		return fail(s, errstr_r, "unknown attribute scope in the store");
	a->target = a->scope == ABQ_SCOPE_GLOBAL ? NULL : col_str(res, r, 1);
	a->name = col_str(res, r, 2);
	a->value = col_str(res, r, 3);
	a->set_by = col_str(res, r, 4);
	a->set_at = col_int(res, r, 5);
	return 0;
}

static int
read_history(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_history *h = rec;

	(void)s;
	(void)errstr_r;
	h->id = col_int(res, r, 0);
	h->at = col_int(res, r, 1);
	h->who = col_str(res, r, 2);
	h->what = col_str(res, r, 3);
	h->subject = col_str(res, r, 4);
	h->old_value = col_str(res, r, 5);
	h->new_value = col_str(res, r, 6);
	h->reason = col_str(res, r, 7);
	h->device_id = col_str(res, r, 8);
	h->account = col_str(res, r, 9);
	return 0;
}

static int
read_change(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_change *c = rec;
	const char *kind = col_text(res, r, 2);
	size_t k;

	c->seq = col_int(res, r, 0);
	c->at = col_int(res, r, 1);
	c->key = col_str(res, r, 3);
	for (k = ABQ_CHANGE_DEVICE; k <= ABQ_CHANGE_TEMPLATE; k++)
		if (kind != NULL && strcmp(kind, change_kind_names[k]) == 0) {
			c->kind = (enum abq_change_kind)k;
			return 0;
		}
	return fail(s, errstr_r, "change %" PRId64 ": unknown kind in the store", c->seq);
}

static int
read_notice(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_notice *n = rec;

	(void)s;
	(void)errstr_r;
	n->id = col_int(res, r, 0);
	n->recipient = col_str(res, r, 1);
	n->kind = col_str(res, r, 2);
	n->account = col_str(res, r, 3);
	n->device_id = col_str(res, r, 4);
	n->template_ref = col_str(res, r, 5);
	n->rendered = col_str(res, r, 6);
	n->state = col_str(res, r, 7);
	n->attempts = (int)col_int(res, r, 8);
	n->next_attempt = col_int(res, r, 9);
	n->last_error = col_str(res, r, 10);
	n->created = col_int(res, r, 11);
	n->sent = col_int(res, r, 12);
	return 0;
}

static int
read_template(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_template *t = rec;
	const char *scope = col_text(res, r, 0);

	if (scope == NULL || abq_scope_parse(scope, &t->scope) < 0)
		return fail(s, errstr_r, "unknown template scope in the store");
	t->domain = t->scope == ABQ_SCOPE_GLOBAL ? NULL : col_str(res, r, 1);
	t->kind = col_str(res, r, 2);
	t->locale = col_str(res, r, 3);
	t->from = col_str(res, r, 4);
	t->reply_to = col_str(res, r, 5);
	t->subject = col_str(res, r, 6);
	t->body_plain = col_str(res, r, 7);
	t->body_html = col_str(res, r, 8);
	t->set_by = col_str(res, r, 9);
	t->set_at = col_int(res, r, 10);
	return 0;
}

static int
read_admin(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_admin *a = rec;

	a->name = col_str(res, r, 0);
	a->password_hash = col_str(res, r, 1);
	a->created_by = col_str(res, r, 2);
	a->created_at = col_int(res, r, 3);
	a->password_at = col_int(res, r, 4);
	a->last_login = col_int(res, r, 5);
	return 0;
}

static int
read_token(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_token *t = rec;

	t->id = col_int(res, r, 0);
	t->admin = col_str(res, r, 1);
	t->label = col_str(res, r, 2);
	t->hash = col_str(res, r, 3);
	t->created_by = col_str(res, r, 4);
	t->created_at = col_int(res, r, 5);
	t->last_used = col_int(res, r, 6);
	return 0;
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

/* Run a lookup that yields at most one row into a clear record: 1, 0 or -1. */
static int
get_one(struct pg_store *s, enum stmt_id id, struct params *p, const char *what, row_reader *read,
        void *rec, void (*clear)(void *), const char **errstr_r)
{
	PGresult *res = run_stmt(s, id, p, 0, what, errstr_r);
	int ret;

	p_free(p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	ret = read(s, res, 0, rec, errstr_r) < 0 ? -1 : 1;
	if (ret < 0)
		clear(rec);
	PQclear(res);
	return ret;
}

/* Run a statement whose one row holds a count (SELECT count(*)) into *count_r. */
static int
count_stmt(struct pg_store *s, enum stmt_id id, struct params *p, size_t *count_r, const char *what,
           const char **errstr_r)
{
	PGresult *res = run_stmt(s, id, p, 0, what, errstr_r);

	p_free(p);
	if (res == NULL)
		return -1;
	*count_r = (size_t)col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* ---- opening --------------------------------------------------------------- */

static _Thread_local char open_errbuf[1024];

static const char *__attribute__((format(printf, 1, 2))) open_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_errbuf, sizeof(open_errbuf), fmt, ap);
	va_end(ap);
	one_line(open_errbuf);
	return open_errbuf;
}

/* The URL for messages: a password in it ("user:secret@") becomes "user:***@". */
static char *
mask_url(const char *url)
{
	const char *start = strstr(url, "://");
	const char *at, *colon, *slash;

	if (start == NULL)
		return xstrdup(url);
	start += 3;
	slash = strchr(start, '/');
	at = strchr(start, '@');
	if (at == NULL || (slash != NULL && at > slash))
		return xstrdup(url);
	colon = memchr(start, ':', (size_t)(at - start));
	if (colon == NULL)
		return xstrdup(url);
	return xasprintf("%.*s:***%s", (int)(colon - url), url, at);
}

/* What the current schema says about itself. */
struct identity {
	bool has_meta;
	char app[64];
	int64_t version;
	int64_t objects; /* tables, views, sequences in the current schema */
	char schema[128];
};

/* Read the identity; -1 with *errstr_r on a database error. */
static int
read_identity(PGconn *conn, const char *where, struct identity *id, const char **errstr_r)
{
	PGresult *res;
	int ret = -1;

	memset(id, 0, sizeof(*id));
	res = PQexec(conn, "SELECT current_schema(), (SELECT count(*) FROM pg_class c JOIN "
	                   "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
	                   "current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')), "
	                   "EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
	                   "AND tablename = 'abqd_meta')");
	if (!res_ok(res) || PQntuples(res) != 1) {
		*errstr_r = open_error("cannot read store %s: %s", where,
		                       res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		goto out;
	}
	if (PQgetisnull(res, 0, 0)) {
		*errstr_r = open_error("store %s: no schema of search_path exists to hold the "
		                       "store; create one or set search_path",
		                       where);
		goto out;
	}
	snprintf(id->schema, sizeof(id->schema), "%s", PQgetvalue(res, 0, 0));
	id->objects = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	id->has_meta = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	res = NULL;
	if (id->has_meta) {
		res =
		    PQexec(conn, "SELECT (SELECT value FROM abqd_meta WHERE key = 'application'), "
		                 "(SELECT value FROM abqd_meta WHERE key = 'schema_version')");
		if (!res_ok(res) || PQntuples(res) != 1) {
			*errstr_r =
			    open_error("cannot read store %s: %s", where,
			               res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
			goto out;
		}
		if (!PQgetisnull(res, 0, 0))
			snprintf(id->app, sizeof(id->app), "%s", PQgetvalue(res, 0, 0));
		if (!PQgetisnull(res, 0, 1))
			id->version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	ret = 0;
out:
	PQclear(res);
	return ret;
}

/*
 * Judge an identity: 1 for a current abqd store, 0 for one that needs the
 * migrations (an empty schema or an older version), -1 for one abqd must not
 * touch.
 */
static int
judge_identity(const char *where, const struct identity *id, const char **errstr_r)
{
	if (!id->has_meta && id->objects == 0)
		return 0;
	if (!id->has_meta || strcmp(id->app, APPLICATION) != 0) {
		*errstr_r = open_error("%s (schema %s) is not an abqd store", where, id->schema);
		return -1;
	}
	if (id->version > ABQ_STORE_SCHEMA_VERSION) {
		*errstr_r =
		    open_error("%s has schema version %" PRId64 ", newer than this abqd (%d); "
		               "upgrade abqd",
		               where, id->version, ABQ_STORE_SCHEMA_VERSION);
		return -1;
	}
	return id->version == ABQ_STORE_SCHEMA_VERSION ? 1 : 0;
}

/* Run SQL during open; -1 with the open error "WHAT WHERE: message". */
static int
open_exec(PGconn *conn, const char *sql, const char *what, const char *where, const char **errstr_r)
{
	PGresult *res = PQexec(conn, sql);
	int ret = 0;

	if (!res_ok(res)) {
		char *m = xstrdup(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));

		one_line(m);
		*errstr_r = open_error("%s %s: %s", what, where, m);
		free(m);
		ret = -1;
	}
	PQclear(res);
	return ret;
}

/*
 * Bring the schema to ABQ_STORE_SCHEMA_VERSION in one transaction, under the
 * write lock; the identity is read again under the lock.
 */
static int
migrate(PGconn *conn, const char *where, const char **errstr_r)
{
	struct identity id;
	int64_t v;
	char *sql;

	if (open_exec(conn,
	              "BEGIN ISOLATION LEVEL READ COMMITTED; "
	              "SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")",
	              "cannot initialise", where, errstr_r) < 0)
		return -1;
	if (read_identity(conn, where, &id, errstr_r) < 0 ||
	    judge_identity(where, &id, errstr_r) < 0)
		goto fail;
	for (v = id.has_meta ? id.version : 0; v < ABQ_STORE_SCHEMA_VERSION; v++) {
		char what[64];

		snprintf(what, sizeof(what), "cannot upgrade to schema version %d:", (int)v + 1);
		if (open_exec(conn, migrations[v], what, where, errstr_r) < 0)
			goto fail;
	}
	sql = xasprintf("INSERT INTO abqd_meta (key, value) VALUES ('application', '" APPLICATION
	                "'), ('schema_version', '%d') ON CONFLICT (key) DO UPDATE SET value = "
	                "EXCLUDED.value",
	                ABQ_STORE_SCHEMA_VERSION);
	if (open_exec(conn, sql, "cannot initialise", where, errstr_r) < 0) {
		free(sql);
		goto fail;
	}
	free(sql);
	if (open_exec(conn, "COMMIT", "cannot initialise", where, errstr_r) < 0)
		goto fail;
	return 0;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

/* Every connection's settings (again after a reconnection). */
#define SESSION_SETUP                                                                              \
	"SET client_encoding = 'UTF8'; SET client_min_messages = warning; "                        \
	"SET standard_conforming_strings = on"

static int
exec_session_setup(PGconn *conn, bool readonly)
{
	PGresult *res =
	    PQexec(conn, readonly ? SESSION_SETUP "; SET default_transaction_read_only = on"
	                          : SESSION_SETUP);
	int ret = res_ok(res) ? 0 : -1;

	PQclear(res);
	return ret;
}

/*
 * Connect with the URL as given, and a connect_timeout of CONNECT_TIMEOUT
 * seconds and TCP keepalives (a dead peer found in about a minute) unless the
 * URL sets them (later keywords override earlier ones, and
 * the URL comes last): a server that does not answer (a host gone from the
 * network) must not hold the store thread for the minutes TCP would wait.
 * PQreset reuses these options.
 */
#define CONNECT_TIMEOUT "5"

static PGconn *
pg_connect(const char *url)
{
	/* TCP keepalives too: an idle LISTEN connection to a vanished server is noticed. */
	const char *const keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
	                            "keepalives_count", "dbname",          NULL};
	const char *const values[] = {CONNECT_TIMEOUT, "30", "10", "3", url, NULL};

	return PQconnectdbParams(keys, values, 1);
}

/* Server notices (e.g. from IF EXISTS) are not for abqd's output. */
static void
quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * Open a store (see abq_store_open). url is the whole "postgresql://..." URL.
 * The identity is read before anything is written, so a foreign schema is left
 * exactly as it was.
 */
static struct abq_store *
pgsql_open(const char *url, const char *base_dir, int flags, const char **errstr_r)
{
	struct pg_store *s;
	struct identity id;
	PGconn *conn;
	char *where = mask_url(url);
	int judged;

	(void)base_dir;
	conn = pg_connect(url);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		*errstr_r = open_error("cannot connect to store %s: %s", where,
		                       conn ? PQerrorMessage(conn) : "out of memory");
		goto fail;
	}
	PQsetNoticeProcessor(conn, quiet_notices, NULL);
	if (open_exec(conn, SESSION_SETUP, "cannot open store", where, errstr_r) < 0)
		goto fail;
	if (read_identity(conn, where, &id, errstr_r) < 0)
		goto fail;
	if ((judged = judge_identity(where, &id, errstr_r)) < 0)
		goto fail;
	if (judged == 0 && !id.has_meta && !(flags & ABQ_STORE_CREATE)) {
		*errstr_r = open_error("store %s (schema %s) does not exist; run 'abqctl init'",
		                       where, id.schema);
		goto fail;
	}
	if (judged == 0 && (flags & ABQ_STORE_READONLY)) {
		*errstr_r = open_error("store %s has schema version %" PRId64
		                       " and needs an upgrade to %d; open it read-write once",
		                       where, id.version, ABQ_STORE_SCHEMA_VERSION);
		goto fail;
	}
	if (judged == 0 && migrate(conn, where, errstr_r) < 0)
		goto fail;
	if ((flags & ABQ_STORE_READONLY) &&
	    open_exec(conn, "SET default_transaction_read_only = on", "cannot open store", where,
	              errstr_r) < 0)
		goto fail;

	s = xcalloc(1, sizeof(*s));
	s->base.ops = &abq_store_pgsql_ops;
	s->conn = conn;
	s->url = xstrdup(url);
	s->readonly = (flags & ABQ_STORE_READONLY) != 0;
	s->location = where;
	s->files[0] = NULL;
	return (struct abq_store *)(void *)s;
fail:
	PQfinish(conn);
	free(where);
	return NULL;
}

static void pgsql_rollback(struct abq_store *store);

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Make sure the connection is up before an exchange. A connection found lost
 * outside a transaction is replaced (PQreset): at once the first time, then
 * no more often than every retry_ms, doubling up to RETRY_MAX_MS, so that a
 * daemon calling often while PostgreSQL is down fails fast instead of
 * connecting on every call. Inside the caller's transaction a lost connection
 * is an error: the transaction is gone and must not go on in another one.
 * Prepared statements and session locks belong to the old connection.
 */
static int
conn_ready(struct pg_store *s, const char **errstr_r)
{
	int64_t now;

	if (PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	if (s->tx_open)
		return fail(s, errstr_r, "connection to the store lost in a transaction");
	now = mono_ms();
	if (now < s->retry_at)
		return fail(s, errstr_r, "store unreachable, next attempt in %" PRId64 " ms",
		            s->retry_at - now);
	memset(s->prepared, 0, sizeof(s->prepared));
	s->nlocks = 0;
	s->queued = 0;
	PQreset(s->conn);
	if (PQstatus(s->conn) != CONNECTION_OK || exec_session_setup(s->conn, s->readonly) < 0) {
		s->retry_ms = s->retry_ms == 0 ? RETRY_MIN_MS : s->retry_ms * 2;
		if (s->retry_ms > RETRY_MAX_MS)
			s->retry_ms = RETRY_MAX_MS;
		s->retry_at = now + s->retry_ms;
		return db_fail(s, "reconnect", NULL, errstr_r);
	}
	s->retry_ms = 0;
	s->retry_at = 0;
	return 0;
}

/* Close: an open transaction is rolled back. */
static void
pgsql_close(struct abq_store *store)
{
	struct pg_store *s = S(store);

	pgsql_rollback(store);
	PQfinish(s->conn);
	free(s->location);
	if (s->url != NULL)
		explicit_bzero(s->url, strlen(s->url)); /* it may carry a password */
	free(s->url);
	free(s);
}

static const char *
pgsql_location(const struct abq_store *s)
{
	return CS(s)->location;
}

/* No files: the store lives in the server. */
static const char *const *
pgsql_files(const struct abq_store *s)
{
	return CS(s)->files;
}

/* ---- transactions ---------------------------------------------------------- */

static bool
in_tx(const struct pg_store *s)
{
	return PQtransactionStatus(s->conn) != PQTRANS_IDLE;
}

/* BEGIN and take the write lock now, so that a second writer queues here. */
static int
pgsql_begin(struct abq_store *store, const char **errstr_r)
{
	struct pg_store *s = S(store);

	if (s->tx_open || (PQstatus(s->conn) == CONNECTION_OK && in_tx(s)))
		return fail(s, errstr_r, "begin: a transaction is already open");
	s->tx_first_seq = s->tx_last_seq = 0;
	s->hist_n = s->hist_i = s->hist_block = 0;
	if (exec_simple(s,
	                "BEGIN ISOLATION LEVEL READ COMMITTED; "
	                "SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")",
	                "begin", errstr_r) < 0) {
		if (PQstatus(s->conn) == CONNECTION_OK && in_tx(s))
			PQclear(PQexec(s->conn, "ROLLBACK"));
		return -1;
	}
	s->tx_open = true;
	return 0;
}

/*
 * Tell the other nodes' listeners (store.h) that change-log rows up to seq
 * were written; delivered by the server when the transaction commits, and
 * not at all when it rolls back.
 */
static int
notify_changes(struct pg_store *s, int64_t seq, const char **errstr_r)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT pg_notify('" NOTIFY_CHANNEL "', '%" PRId64 "')", seq);
	return exec_simple(s, sql, "notify", errstr_r);
}

/*
 * Commit; on failure the transaction stays open (or aborted) for the caller's
 * rollback. PostgreSQL turns COMMIT of a failed transaction into a rollback:
 * that is reported as a failure, not as success.
 */
static int
pgsql_commit(struct abq_store *store, const char **errstr_r)
{
	struct pg_store *s = S(store);
	PGresult *res;

	if (!in_tx(s))
		return fail(s, errstr_r, "commit: no transaction is open");
	if (pipe_flush(s, errstr_r) < 0)
		return -1;
	if (PQtransactionStatus(s->conn) == PQTRANS_INERROR)
		return fail(s, errstr_r, "commit: the transaction failed earlier; roll it back");
	/*
	 * The change notice travels with the COMMIT in one exchange: a failing
	 * notify skips the COMMIT (the transaction is then aborted, reported
	 * below, rolled back by the caller).
	 */
	char sql[128] = "COMMIT";
	if (s->tx_last_seq > 0)
		snprintf(sql, sizeof(sql),
		         "SELECT pg_notify('" NOTIFY_CHANNEL "', '%" PRId64 "'); COMMIT",
		         s->tx_last_seq);
	res = PQexec(s->conn, sql);
	if (!res_ok(res)) {
		db_fail(s, "commit", res, errstr_r);
		PQclear(res);
		return -1;
	}
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		PQclear(res);
		return fail(s, errstr_r, "commit: the transaction was rolled back by the server");
	}
	PQclear(res);
	s->tx_open = false;
	s->tx_first_seq = s->tx_last_seq = 0;
	s->hist_n = s->hist_i = s->hist_block = 0;
	return 0;
}

/*
 * Roll back if a transaction is open. If it took change-log numbers and no one
 * has taken one since, the sequence is set back (under the write lock, which
 * every nextval is taken under), so that a rollback leaves no gap.
 */
static void
pgsql_rollback(struct abq_store *store)
{
	struct pg_store *s = S(store);
	const char *ignored;
	char *sql;

	if (s->queued > 0)
		pipe_flush(s, &ignored);
	s->tx_open = false;
	s->hist_n = s->hist_i = s->hist_block = 0;
	if (PQstatus(s->conn) == CONNECTION_OK && in_tx(s))
		PQclear(PQexec(s->conn, "ROLLBACK"));
	if (s->tx_first_seq == 0 || PQstatus(s->conn) != CONNECTION_OK)
		return;
	sql = xasprintf("BEGIN; SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY "); "
	                "SELECT setval(pg_get_serial_sequence('changes', 'seq'), %" PRId64
	                ", false) FROM (SELECT last_value, is_called FROM changes_seq_seq) q "
	                "WHERE q.is_called AND q.last_value = %" PRId64 "; COMMIT",
	                s->tx_first_seq, s->tx_last_seq);
	PQclear(PQexec(s->conn, sql));
	free(sql);
	if (in_tx(s))
		PQclear(PQexec(s->conn, "ROLLBACK"));
	s->tx_first_seq = s->tx_last_seq = 0;
}

/* ---- point operations ------------------------------------------------------ */

static int
pgsql_device_get(struct abq_store *store, const char *account, const char *device_id,
                 struct abq_device *out, const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_text(&p, account);
	p_key(&p, device_id);
	return get_one(S(store), ST_DEVICE_GET, &p, "device_get", read_device, out, clear_device,
	               errstr_r);
}

/* Write the whole record; a DeviceId spelt in another case replaces it. */
static int
pgsql_device_put(struct abq_store *store, const struct abq_device *d, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, d->account);
	p_text(&p, d->device_id);
	p_text(&p, d->device_type);
	p_text(&p, d->model);
	p_text(&p, d->imei);
	p_text(&p, d->friendly_name);
	p_text(&p, d->os);
	p_text(&p, d->os_language);
	p_text(&p, d->phone_number);
	p_text(&p, d->mobile_operator);
	p_text(&p, d->user_agent);
	p_text(&p, d->eas_version);
	p_text(&p, d->last_address);
	p_text(&p, d->last_command);
	p_int(&p, d->first_seen);
	p_int(&p, d->last_seen);
	p_text(&p, state_text(d->state));
	p_text(&p, reason_text(d->reason));
	p_int(&p, d->rule_id);
	p_text(&p, d->state_by);
	p_int(&p, d->state_at);
	return write_stmt(S(store), ST_DEVICE_PUT, &p, NULL, "device_put", errstr_r);
}

/* Delete a DeviceId's records (and their sync state); counts the records. */
static int
pgsql_device_delete(struct abq_store *store, const char *device_id, const char *account,
                    size_t *count_r, const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	p_key(&p, device_id);
	if (account)
		p_text(&p, account);
	return count_stmt(S(store), account ? ST_DEVICE_DELETE_ONE : ST_DEVICE_DELETE_ALL, &p,
	                  count_r, "device_delete", errstr_r);
}

static int
pgsql_device_count(struct abq_store *store, const char *account, int64_t before, size_t *count_r,
                   const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	if (account)
		p_text(&p, account);
	p_int(&p, before);
	return count_stmt(S(store), account ? ST_DEVICE_COUNT : ST_DEVICE_COUNT_ALL, &p, count_r,
	                  "device_count", errstr_r);
}

/* Last-seen updates, in a transaction of their own unless one is open. */
static int
pgsql_device_touch(struct abq_store *store, const struct abq_seen *v, size_t n,
                   const char **errstr_r)
{
	struct pg_store *s = S(store);
	bool own = !s->tx_open;
	size_t i;

	if (own && exec_simple(s, "BEGIN", "device_touch", errstr_r) < 0)
		return -1;
	s->tx_open = s->tx_open || own;
	for (i = 0; i < n; i++) {
		struct params p = {0};

		p_text(&p, v[i].account);
		p_key(&p, v[i].device_id);
		p_int(&p, v[i].last_seen);
		p_text(&p, v[i].last_address);
		p_text(&p, v[i].last_command);
		if (write_stmt(s, ST_DEVICE_TOUCH, &p, NULL, "device_touch", errstr_r) < 0)
			goto fail;
	}
	if (own && exec_simple(s, "COMMIT", "device_touch", errstr_r) < 0)
		goto fail;
	if (own)
		s->tx_open = false;
	return 0;
fail:
	if (own) {
		s->tx_open = false;
		if (PQstatus(s->conn) == CONNECTION_OK)
			PQclear(PQexec(s->conn, "ROLLBACK"));
	}
	return -1;
}

static int
pgsql_entry_get(struct abq_store *store, const char *device_id, const char *account,
                struct abq_entry *out, const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_key(&p, device_id);
	p_text(&p, account);
	return get_one(S(store), ST_ENTRY_GET, &p, "entry_get", read_entry, out, clear_entry,
	               errstr_r);
}

static int
pgsql_entry_put(struct abq_store *store, const struct abq_entry *e, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, e->device_id);
	p_text(&p, e->account);
	p_text(&p, state_text(e->state));
	p_text(&p, e->created_by);
	p_int(&p, e->created_at);
	return write_stmt(S(store), ST_ENTRY_PUT, &p, NULL, "entry_put", errstr_r);
}

static int
pgsql_entry_delete(struct abq_store *store, const char *device_id, const char *account,
                   bool all_accounts, size_t *count_r, const char **errstr_r)
{
	struct params p = {0};
	enum stmt_id id = account        ? ST_ENTRY_DELETE_ONE
	                  : all_accounts ? ST_ENTRY_DELETE_ALL
	                                 : ST_ENTRY_DELETE_ALONE;

	*count_r = 0;
	p_key(&p, device_id);
	if (account)
		p_text(&p, account);
	return write_stmt(S(store), id, &p, count_r, "entry_delete", errstr_r);
}

/* A rule's columns as parameters $1..$9 ($1 the id). */
static void
rule_params(struct params *p, const struct abq_rule *r)
{
	p_int(p, r->id);
	p_text(p, abq_charac_name(r->charac));
	p_text(p, abq_match_name(r->match));
	p_text(p, r->pattern);
	p_text(p, state_text(r->level));
	p_int(p, r->order);
	p_text(p, r->domain);
	p_text(p, r->created_by);
	p_int(p, r->created_at);
}

/* Insert a rule; its id comes from a sequence (never reused). */
static int
pgsql_rule_insert(struct abq_store *store, struct abq_rule *r, const char **errstr_r)
{
	struct params p = {0};

	rule_params(&p, r);
	return write_returning(S(store), ST_RULE_INSERT, &p, &r->id, "rule_insert", errstr_r);
}

static int
pgsql_rule_update(struct abq_store *store, const struct abq_rule *r, const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	size_t n = 0;

	rule_params(&p, r);
	if (write_stmt(s, ST_RULE_UPDATE, &p, &n, "rule_update", errstr_r) < 0)
		return -1;
	if (n == 0)
		return fail(s, errstr_r, "rule_update: no rule with id %" PRId64, r->id);
	return 0;
}

static int
pgsql_rule_get(struct abq_store *store, int64_t id, struct abq_rule *out, const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_int(&p, id);
	return get_one(S(store), ST_RULE_GET, &p, "rule_get", read_rule, out, clear_rule, errstr_r);
}

static int
pgsql_rule_delete(struct abq_store *store, int64_t id, const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	size_t n = 0;

	p_int(&p, id);
	if (write_stmt(s, ST_RULE_DELETE, &p, &n, "rule_delete", errstr_r) < 0)
		return -1;
	if (n == 0)
		return fail(s, errstr_r, "rule_delete: no rule with id %" PRId64, id);
	return 0;
}

static int
pgsql_attr_get(struct abq_store *store, enum abq_scope scope, const char *target, const char *name,
               struct abq_attr *out, const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_text(&p, abq_scope_name(scope));
	p_text(&p, target ? target : "");
	p_key(&p, name);
	return get_one(S(store), ST_ATTR_GET, &p, "attr_get", read_attr, out, clear_attr, errstr_r);
}

static int
pgsql_attr_put(struct abq_store *store, const struct abq_attr *a, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, abq_scope_name(a->scope));
	p_text(&p, a->scope == ABQ_SCOPE_GLOBAL ? "" : a->target);
	p_text(&p, a->name);
	p_text(&p, a->value);
	p_text(&p, a->set_by);
	p_int(&p, a->set_at);
	return write_stmt(S(store), ST_ATTR_PUT, &p, NULL, "attr_put", errstr_r);
}

static int
pgsql_attr_delete(struct abq_store *store, enum abq_scope scope, const char *target,
                  const char *name, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, abq_scope_name(scope));
	p_text(&p, target ? target : "");
	p_key(&p, name);
	return write_stmt(S(store), ST_ATTR_DELETE, &p, NULL, "attr_delete", errstr_r);
}

/*
 * Take the next history id of the open transaction from ids fetched ahead
 * (blocks of 16 doubling to PIPE_MAX, so a small transaction wastes few), so
 * that the insert can go down the pipeline. Ids taken under the write lock
 * keep history in commit order; the unused rest of a block is a harmless gap.
 */
static int
next_history_id(struct pg_store *s, int64_t *id_r, const char **errstr_r)
{
	struct params p = {0};
	PGresult *res;
	int i;

	if (s->hist_i == s->hist_n) {
		s->hist_block = s->hist_block == 0 ? 16 : s->hist_block * 2;
		if (s->hist_block > PIPE_MAX)
			s->hist_block = PIPE_MAX;
		p_int(&p, s->hist_block);
		res = run_stmt(s, ST_HISTORY_IDS, &p, 0, "history_add", errstr_r);
		p_free(&p);
		if (res == NULL)
			return -1;
		s->hist_n = PQntuples(res) < PIPE_MAX ? PQntuples(res) : PIPE_MAX;
		s->hist_i = 0;
		for (i = 0; i < s->hist_n; i++)
			s->hist_ids[i] = col_int(res, i, 0);
		PQclear(res);
		if (s->hist_n == 0)
			return fail(s, errstr_r, "history_add: no id from the sequence");
	}
	*id_r = s->hist_ids[s->hist_i++];
	return 0;
}

/* Append a history row; inside a transaction it goes down the pipeline. */
static int
pgsql_history_add(struct abq_store *store, struct abq_history *h, const char **errstr_r)
{
	struct pg_store *s = S(store);
	bool piped = s->queued > 0 || PQtransactionStatus(s->conn) == PQTRANS_INTRANS;
	struct params p = {0};
	int64_t id = 0;
	int ret;

	if (piped && next_history_id(s, &id, errstr_r) < 0)
		return -1;
	p_int(&p, h->at);
	p_text(&p, h->who);
	p_text(&p, h->what);
	p_text(&p, h->subject);
	p_text(&p, h->old_value);
	p_text(&p, h->new_value);
	p_text(&p, h->reason);
	p_text(&p, h->device_id);
	p_text(&p, h->account);
	if (!piped)
		return write_returning(s, ST_HISTORY_ADD, &p, &h->id, "history_add", errstr_r);
	p_int(&p, id);
	ret = queue_stmt(s, ST_HISTORY_ADD_ID, &p, "history_add", errstr_r);
	p_free(&p);
	if (ret == 0)
		h->id = id;
	return ret;
}

/*
 * Append a change; its seq comes from the sequence, taken under the write lock
 * (outside a transaction, in a short transaction of its own that takes it).
 */
static int
pgsql_change_add(struct abq_store *store, enum abq_change_kind kind, const char *key, int64_t at,
                 const char **errstr_r)
{
	struct pg_store *s = S(store);
	bool own = !s->tx_open;
	struct params p = {0};
	int64_t seq;

	if (own && exec_simple(s, "BEGIN; SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")",
	                       "change_add", errstr_r) < 0) {
		if (PQstatus(s->conn) == CONNECTION_OK && in_tx(s))
			PQclear(PQexec(s->conn, "ROLLBACK"));
		return -1;
	}
	s->tx_open = s->tx_open || own;
	p_int(&p, at);
	p_text(&p, change_kind_names[kind]);
	p_text(&p, key);
	if (write_returning(s, ST_CHANGE_ADD, &p, &seq, "change_add", errstr_r) < 0)
		goto fail;
	if (own) {
		if (notify_changes(s, seq, errstr_r) < 0 ||
		    exec_simple(s, "COMMIT", "change_add", errstr_r) < 0)
			goto fail;
		s->tx_open = false;
	} else {
		if (s->tx_first_seq == 0)
			s->tx_first_seq = seq;
		s->tx_last_seq = seq;
	}
	return 0;
fail:
	if (own) {
		s->tx_open = false;
		if (PQstatus(s->conn) == CONNECTION_OK)
			PQclear(PQexec(s->conn, "ROLLBACK"));
	}
	return -1;
}

/* The highest committed seq (see the top of the file). */
static int
pgsql_change_last(struct abq_store *store, int64_t *seq_r, const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	PGresult *res = run_stmt(s, ST_CHANGE_LAST, &p, 0, "change_last", errstr_r);

	*seq_r = 0;
	if (res == NULL)
		return -1;
	*seq_r = col_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int
pgsql_notice_add(struct abq_store *store, struct abq_notice *n, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, n->recipient);
	p_text(&p, n->kind);
	p_text(&p, n->account);
	p_text(&p, n->device_id);
	p_text(&p, n->template_ref);
	p_text(&p, n->rendered);
	p_text(&p, n->state);
	p_int(&p, n->attempts);
	p_int(&p, n->next_attempt);
	p_text(&p, n->last_error);
	p_int(&p, n->created);
	p_int(&p, n->sent);
	return write_returning(S(store), ST_NOTICE_ADD, &p, &n->id, "notice_add", errstr_r);
}

static int
pgsql_notice_mark(struct abq_store *store, int64_t id, const char *state, int attempts,
                  int64_t next_attempt, const char *last_error, int64_t sent, const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	size_t n = 0;

	p_int(&p, id);
	p_text(&p, state);
	p_int(&p, attempts);
	p_int(&p, next_attempt);
	p_text(&p, last_error);
	p_int(&p, sent);
	if (write_stmt(s, ST_NOTICE_MARK, &p, &n, "notice_mark", errstr_r) < 0)
		return -1;
	if (n == 0)
		return fail(s, errstr_r, "no notice with id %" PRId64, id);
	return 0;
}

/*
 * The four key columns of a template; the domain is '' for global. The locale
 * is lower-cased for lookups (compared with locale_key), kept for a put.
 */
static void
template_key(struct params *p, enum abq_scope scope, const char *domain, const char *kind,
             const char *locale, bool lookup)
{
	p_text(p, abq_scope_name(scope));
	p_text(p, scope == ABQ_SCOPE_GLOBAL ? "" : domain);
	p_text(p, kind);
	if (lookup)
		p_key(p, locale);
	else
		p_text(p, locale);
}

static int
pgsql_template_put(struct abq_store *store, const struct abq_template *t, const char **errstr_r)
{
	struct params p = {0};

	template_key(&p, t->scope, t->domain, t->kind, t->locale, false);
	p_text(&p, t->from);
	p_text(&p, t->reply_to);
	p_text(&p, t->subject);
	p_text(&p, t->body_plain);
	p_text(&p, t->body_html);
	p_text(&p, t->set_by);
	p_int(&p, t->set_at);
	return write_stmt(S(store), ST_TEMPLATE_PUT, &p, NULL, "template_put", errstr_r);
}

static int
pgsql_template_get(struct abq_store *store, enum abq_scope scope, const char *domain,
                   const char *kind, const char *locale, struct abq_template *out,
                   const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	template_key(&p, scope, domain, kind, locale, true);
	return get_one(S(store), ST_TEMPLATE_GET, &p, "template_get", read_template, out,
	               clear_template, errstr_r);
}

static int
pgsql_template_delete(struct abq_store *store, enum abq_scope scope, const char *domain,
                      const char *kind, const char *locale, size_t *count_r, const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	template_key(&p, scope, domain, kind, locale, true);
	return write_stmt(S(store), ST_TEMPLATE_DELETE, &p, count_r, "template_delete", errstr_r);
}

/* ---- administrators and tokens ---------------------------------------------- */

static int
pgsql_admin_get(struct abq_store *store, const char *name, struct abq_admin *out,
                const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_text(&p, name);
	return get_one(S(store), ST_ADMIN_GET, &p, "admin_get", read_admin, out, clear_admin,
	               errstr_r);
}

static int
pgsql_admin_put(struct abq_store *store, const struct abq_admin *a, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, a->name);
	p_text(&p, a->password_hash);
	p_text(&p, a->created_by);
	p_int(&p, a->created_at);
	p_int(&p, a->password_at);
	p_int(&p, a->last_login);
	return write_stmt(S(store), ST_ADMIN_PUT, &p, NULL, "admin_put", errstr_r);
}

static int
pgsql_admin_delete(struct abq_store *store, const char *name, size_t *count_r,
                   const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	p_text(&p, name);
	return count_stmt(S(store), ST_ADMIN_DELETE, &p, count_r, "admin_delete", errstr_r);
}

static int
pgsql_token_add(struct abq_store *store, struct abq_token *t, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, t->admin);
	p_text(&p, t->label);
	p_text(&p, t->hash);
	p_text(&p, t->created_by);
	p_int(&p, t->created_at);
	p_int(&p, t->last_used);
	return write_returning(S(store), ST_TOKEN_ADD, &p, &t->id, "token_add", errstr_r);
}

static int
pgsql_token_find(struct abq_store *store, const char *hash, struct abq_token *out,
                 const char **errstr_r)
{
	struct params p = {0};

	memset(out, 0, sizeof(*out));
	p_text(&p, hash);
	return get_one(S(store), ST_TOKEN_FIND, &p, "token_find", read_token, out, clear_token,
	               errstr_r);
}

static int
pgsql_token_touch(struct abq_store *store, int64_t id, int64_t at, const char **errstr_r)
{
	struct params p = {0};

	p_int(&p, id);
	p_int(&p, at);
	return write_stmt(S(store), ST_TOKEN_TOUCH, &p, NULL, "token_touch", errstr_r);
}

static int
pgsql_token_delete(struct abq_store *store, const char *admin, const char *label, size_t *count_r,
                   const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	p_text(&p, admin);
	if (label)
		p_text(&p, label);
	return write_stmt(S(store), label ? ST_TOKEN_DELETE_LABEL : ST_TOKEN_DELETE_ADMIN, &p,
	                  count_r, "token_delete", errstr_r);
}

static int
pgsql_token_count(struct abq_store *store, const char *admin, size_t *count_r,
                  const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	if (admin)
		p_text(&p, admin);
	return count_stmt(S(store), admin ? ST_TOKEN_COUNT : ST_TOKEN_COUNT_ALL, &p, count_r,
	                  "token_count", errstr_r);
}

/* ---- sync state ------------------------------------------------------------ */

/* Read one collection's sync state (binary result) into a NUL-terminated copy. */
static int
pgsql_syncstate_get(struct abq_store *store, const char *account, const char *device_id,
                    const char *collection, void **state_r, size_t *len_r, int64_t *updated_r,
                    const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	const unsigned char *u;
	PGresult *res;
	char *copy;
	size_t n;
	uint64_t v = 0;
	int i;

	p_text(&p, account);
	p_key(&p, device_id);
	p_text(&p, collection);
	res = run_stmt(s, ST_SYNCSTATE_GET, &p, 1, "syncstate_get", errstr_r);
	p_free(&p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	n = (size_t)PQgetlength(res, 0, 0);
	copy = xmalloc(n + 1);
	if (n > 0)
		memcpy(copy, PQgetvalue(res, 0, 0), n);
	copy[n] = '\0';
	if (PQgetlength(res, 0, 1) != 8) {
		free(copy);
		PQclear(res);
		return fail(s, errstr_r, "syncstate_get: unexpected column size");
	}
	u = (const unsigned char *)PQgetvalue(res, 0, 1);
	for (i = 0; i < 8; i++)
		v = (v << 8) | u[i];
	*updated_r = (int64_t)v;
	*state_r = copy;
	*len_r = n;
	PQclear(res);
	return 1;
}

static int
pgsql_syncstate_put(struct abq_store *store, const char *account, const char *device_id,
                    const char *collection, const void *state, size_t len, int64_t updated,
                    const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};

	if (len > INT32_MAX)
		return fail(s, errstr_r, "syncstate_put: state of %zu bytes is too large", len);
	p_text(&p, account);
	p_text(&p, device_id);
	p_text(&p, collection);
	p_bin(&p, state, len);
	p_int(&p, updated);
	return write_stmt(s, ST_SYNCSTATE_PUT, &p, NULL, "syncstate_put", errstr_r);
}

static int
pgsql_syncstate_delete(struct abq_store *store, const char *account, const char *device_id,
                       const char *collection, size_t *count_r, const char **errstr_r)
{
	struct params p = {0};

	*count_r = 0;
	p_text(&p, account);
	p_key(&p, device_id);
	if (collection)
		p_text(&p, collection);
	return write_stmt(S(store),
	                  collection ? ST_SYNCSTATE_DELETE_ONE : ST_SYNCSTATE_DELETE_DEVICE, &p,
	                  count_r, "syncstate_delete", errstr_r);
}

/* ---- iteration ------------------------------------------------------------- */

typedef void (*any_cb)(void);

/*
 * One kind of record for the batch loop: its size, reader, destructor, how to
 * set the continuation key (parameters $1..$k, the ORDER BY columns) from the
 * last record of a batch, and how to call the callback.
 */
struct iter_kind {
	const char *what;
	size_t size;
	row_reader *read;
	void (*clear)(void *);
	void (*set_key)(struct params *, const void *);
	int (*call)(any_cb, void *, const void *);
};

/*
 * The batch loop (see the top of the file). sql has the key parameters first,
 * then the filters (already in p), and a LIMIT of ITER_BATCH. At most `limit`
 * records are delivered (0: no limit). Returns 0, the callback's stop value,
 * or -1. Frees p.
 */
static int
run_iter(struct pg_store *s, const struct iter_kind *k, const char *sql, struct params *p,
         size_t limit, any_cb cb, void *arg, const char **errstr_r)
{
	size_t delivered = 0;
	bool more = true;
	int ret = 0;

	while (more && ret == 0) {
		PGresult *res;
		char *batch;
		int n, i, got = 0;

		if (pipe_flush(s, errstr_r) < 0) {
			ret = -1;
			break;
		}
		res = PQexecParams(s->conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0);
		if (!res_ok(res)) {
			ret = db_fail(s, k->what, res, errstr_r);
			PQclear(res);
			break;
		}
		n = PQntuples(res);
		batch = xcalloc(n > 0 ? (size_t)n : 1, k->size);
		for (i = 0; i < n; i++) {
			got++;
			if (k->read(s, res, i, batch + (size_t)i * k->size, errstr_r) < 0) {
				ret = -1;
				break;
			}
		}
		PQclear(res);
		more = n == ITER_BATCH;
		if (ret == 0 && more)
			k->set_key(p, batch + (size_t)(n - 1) * k->size);
		for (i = 0; i < got; i++) {
			void *rec = batch + (size_t)i * k->size;

			if (ret == 0 && (limit == 0 || delivered < limit)) {
				ret = k->call(cb, arg, rec);
				delivered++;
			}
			k->clear(rec);
		}
		free(batch);
		if (limit != 0 && delivered >= limit)
			more = false;
	}
	p_free(p);
	return ret;
}

/* Append a formatted piece to an SQL buffer. */
static void __attribute__((format(printf, 3, 4)))
sql_add(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void
key_device(struct params *p, const void *rec)
{
	const struct abq_device *d = rec;

	p_set(p, 0, d->account);
	p_set(p, 1, d->device_id);
	str_lower(p->own[1]);
}

static int
call_device(any_cb cb, void *arg, const void *rec)
{
	return ((abq_device_cb *)cb)(arg, rec);
}

static const struct iter_kind device_kind = {
    "device_iter", sizeof(struct abq_device), read_device, clear_device, key_device, call_device};

/*
 * Devices in (account, device_id) order, device_id compared without case. The
 * domain filter compares the account's tail with "@domain" (not LIKE, whose %
 * and _ would be wildcards); bare accounts belong to default_domain.
 */
static int
pgsql_device_iter(struct abq_store *store, const struct abq_device_filter *f, abq_device_cb *cb,
                  void *arg, const char **errstr_r)
{
	struct params p = {0};
	char sql[2048] =
	    "SELECT " DEVICE_COLS " FROM devices WHERE (account, device_key) > ($1, $2)";
	bool bare =
	    f->domain != NULL && f->default_domain != NULL && str_ieq(f->domain, f->default_domain);

	p_text(&p, "");
	p_text(&p, "");
	if (f->account) {
		p_text(&p, f->account);
		sql_add(sql, sizeof(sql), " AND account = $%d", p.n);
	}
	if (f->device_id) {
		p_key(&p, f->device_id);
		sql_add(sql, sizeof(sql), " AND device_key = $%d", p.n);
	}
	if (f->domain) {
		char *suffix = str_lower(xasprintf("@%s", f->domain));

		p_text(&p, suffix);
		free(suffix);
		if (bare)
			sql_add(
			    sql, sizeof(sql),
			    " AND (right(account, length($%d)) = $%d OR strpos(account, '@') = 0)",
			    p.n, p.n);
		else
			sql_add(sql, sizeof(sql), " AND right(account, length($%d)) = $%d", p.n,
			        p.n);
	}
	if (f->state != ABQ_STATE_NONE) {
		p_text(&p, state_text(f->state));
		sql_add(sql, sizeof(sql), " AND state = $%d", p.n);
	}
	if (f->seen_before) {
		p_int(&p, f->seen_before);
		sql_add(sql, sizeof(sql), " AND last_seen < $%d::bigint", p.n);
	}
	if (f->seen_since) {
		p_int(&p, f->seen_since);
		sql_add(sql, sizeof(sql), " AND last_seen >= $%d::bigint", p.n);
	}
	if (f->not_individual) {
		p_text(&p, abq_reason_name(ABQ_REASON_INDIVIDUAL));
		sql_add(sql, sizeof(sql), " AND reason IS DISTINCT FROM $%d", p.n);
	}
	sql_add(sql, sizeof(sql), " ORDER BY account, device_key" BATCH_LIMIT);
	return run_iter(S(store), &device_kind, sql, &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_entry(struct params *p, const void *rec)
{
	const struct abq_entry *e = rec;

	p_set(p, 0, e->device_id);
	str_lower(p->own[0]);
	p_set(p, 1, e->account ? e->account : "");
}

static int
call_entry(any_cb cb, void *arg, const void *rec)
{
	return ((abq_entry_cb *)cb)(arg, rec);
}

static const struct iter_kind entry_kind = {
    "entry_iter", sizeof(struct abq_entry), read_entry, clear_entry, key_entry, call_entry};

/* Entries by DeviceId (without case), the DeviceId-alone entry first. */
static int
pgsql_entry_iter(struct abq_store *store, enum abq_state state, abq_entry_cb *cb, void *arg,
                 const char **errstr_r)
{
	struct params p = {0};
	char sql[512] =
	    "SELECT " ENTRY_COLS " FROM entries WHERE (device_key, account_key) > ($1, $2)";

	p_text(&p, "");
	p_text(&p, "");
	if (state != ABQ_STATE_NONE) {
		p_text(&p, state_text(state));
		sql_add(sql, sizeof(sql), " AND state = $%d", p.n);
	}
	sql_add(sql, sizeof(sql), " ORDER BY device_key, account_key" BATCH_LIMIT);
	return run_iter(S(store), &entry_kind, sql, &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_rule(struct params *p, const void *rec)
{
	const struct abq_rule *r = rec;

	p_int_at(p, 0, r->domain == NULL);
	p_set(p, 1, r->domain ? r->domain : "");
	p_int_at(p, 2, r->order);
	p_int_at(p, 3, r->id);
}

static int
call_rule(any_cb cb, void *arg, const void *rec)
{
	return ((abq_rule_cb *)cb)(arg, rec);
}

static const struct iter_kind rule_kind = {
    "rule_iter", sizeof(struct abq_rule), read_rule, clear_rule, key_rule, call_rule};

#define RULE_RANK "(CASE WHEN domain IS NULL THEN 1 ELSE 0 END)"

/* Rules: domain rules by domain, then global ones; each by order, then id. */
static int
pgsql_rule_iter(struct abq_store *store, const char *domain, bool all, abq_rule_cb *cb, void *arg,
                const char **errstr_r)
{
	struct params p = {0};
	char sql[1024] =
	    "SELECT " RULE_COLS " FROM rules WHERE (" RULE_RANK ", coalesce(domain, ''), "
	    "rule_order, id) > ($1::int, $2, $3::bigint, $4::bigint)";

	p_int(&p, -1);
	p_text(&p, "");
	p_int(&p, INT64_MIN);
	p_int(&p, 0);
	if (domain) {
		p_text(&p, domain);
		sql_add(sql, sizeof(sql), " AND domain = $%d", p.n);
	} else if (!all) {
		sql_add(sql, sizeof(sql), " AND domain IS NULL");
	}
	sql_add(sql, sizeof(sql),
	        " ORDER BY " RULE_RANK ", coalesce(domain, ''), rule_order, id" BATCH_LIMIT);
	return run_iter(S(store), &rule_kind, sql, &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_attr(struct params *p, const void *rec)
{
	const struct abq_attr *a = rec;

	p_int_at(p, 0, a->scope == ABQ_SCOPE_GLOBAL ? 0 : a->scope == ABQ_SCOPE_DOMAIN ? 1 : 2);
	p_set(p, 1, a->target ? a->target : "");
	p_set(p, 2, a->name);
	str_lower(p->own[2]);
}

static int
call_attr(any_cb cb, void *arg, const void *rec)
{
	return ((abq_attr_cb *)cb)(arg, rec);
}

static const struct iter_kind attr_kind = {
    "attr_iter", sizeof(struct abq_attr), read_attr, clear_attr, key_attr, call_attr};

#define ATTR_RANK "(CASE scope WHEN 'global' THEN 0 WHEN 'domain' THEN 1 ELSE 2 END)"

/* Attributes by scope (global, domain, account), then target and name. */
static int
pgsql_attr_iter(struct abq_store *store, abq_attr_cb *cb, void *arg, const char **errstr_r)
{
	struct params p = {0};

	p_int(&p, -1);
	p_text(&p, "");
	p_text(&p, "");
	return run_iter(S(store), &attr_kind,
	                "SELECT " ATTR_COLS " FROM attrs WHERE (" ATTR_RANK ", target, name_key) > "
	                "($1::int, $2, $3) ORDER BY " ATTR_RANK ", target, name_key" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_history(struct params *p, const void *rec)
{
	p_int_at(p, 0, ((const struct abq_history *)rec)->id);
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
pgsql_history_iter(struct abq_store *store, const struct abq_history_filter *f, abq_history_cb *cb,
                   void *arg, const char **errstr_r)
{
	struct params p = {0};
	bool newest = f->limit != 0;
	char sql[1024];

	snprintf(sql, sizeof(sql), "SELECT " HISTORY_COLS " FROM history WHERE id %s $1::bigint",
	         newest ? "<" : ">");
	p_int(&p, newest ? INT64_MAX : 0);
	if (f->device_id) {
		p_key(&p, f->device_id);
		sql_add(sql, sizeof(sql), " AND device_key = $%d", p.n);
	}
	if (f->account) {
		p_text(&p, f->account);
		sql_add(sql, sizeof(sql), " AND account = $%d", p.n);
	}
	if (f->since) {
		p_int(&p, f->since);
		sql_add(sql, sizeof(sql), " AND at >= $%d::bigint", p.n);
	}
	sql_add(sql, sizeof(sql), " ORDER BY id%s" BATCH_LIMIT, newest ? " DESC" : "");
	return run_iter(S(store), &history_kind, sql, &p, f->limit, (any_cb)cb, arg, errstr_r);
}

static void
key_change(struct params *p, const void *rec)
{
	p_int_at(p, 0, ((const struct abq_change *)rec)->seq);
}

static int
call_change(any_cb cb, void *arg, const void *rec)
{
	return ((abq_change_cb *)cb)(arg, rec);
}

static const struct iter_kind change_kind = {
    "change_iter", sizeof(struct abq_change), read_change, clear_change, key_change, call_change};

static int
pgsql_change_iter(struct abq_store *store, int64_t since, abq_change_cb *cb, void *arg,
                  const char **errstr_r)
{
	struct params p = {0};

	p_int(&p, since);
	return run_iter(S(store), &change_kind,
	                "SELECT " CHANGE_COLS " FROM changes WHERE seq > $1::bigint "
	                "ORDER BY seq" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_notice(struct params *p, const void *rec)
{
	p_int_at(p, 0, ((const struct abq_notice *)rec)->id);
}

static int
call_notice(any_cb cb, void *arg, const void *rec)
{
	return ((abq_notice_cb *)cb)(arg, rec);
}

static const struct iter_kind notice_kind = {
    "notice_iter", sizeof(struct abq_notice), read_notice, clear_notice, key_notice, call_notice};

static int
pgsql_notice_iter(struct abq_store *store, const char *state, abq_notice_cb *cb, void *arg,
                  const char **errstr_r)
{
	struct params p = {0};
	char sql[512] = "SELECT " NOTICE_COLS " FROM outbox WHERE id > $1::bigint";

	p_int(&p, 0);
	if (state) {
		p_text(&p, state);
		sql_add(sql, sizeof(sql), " AND state = $%d", p.n);
	}
	sql_add(sql, sizeof(sql), " ORDER BY id" BATCH_LIMIT);
	return run_iter(S(store), &notice_kind, sql, &p, 0, (any_cb)cb, arg, errstr_r);
}

static int
pgsql_notice_stats(struct abq_store *store, const char *state, int64_t *count_r, int64_t *oldest_r,
                   const char **errstr_r)
{
	struct params p = {0};
	PGresult *res;

	p_text(&p, state);
	res = run_stmt(S(store), ST_NOTICE_STATS, &p, 0, "notice_stats", errstr_r);
	p_free(&p);
	if (res == NULL)
		return -1;
	*count_r = col_int(res, 0, 0);
	*oldest_r = col_int(res, 0, 1);
	PQclear(res);
	return 0;
}

static int
pgsql_notice_due(struct abq_store *store, int64_t now, abq_notice_cb *cb, void *arg,
                 const char **errstr_r)
{
	struct params p = {0};

	p_int(&p, 0);
	p_int(&p, now);
	return run_iter(S(store), &notice_kind,
	                "SELECT " NOTICE_COLS " FROM outbox WHERE id > $1::bigint AND "
	                "state = 'queued' AND next_attempt <= $2::bigint ORDER BY id" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_template(struct params *p, const void *rec)
{
	const struct abq_template *t = rec;

	p_set(p, 0, abq_scope_name(t->scope));
	p_set(p, 1, t->scope == ABQ_SCOPE_GLOBAL ? "" : t->domain);
	p_set(p, 2, t->kind);
	p_set(p, 3, t->locale);
	str_lower(p->own[3]);
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
pgsql_template_iter(struct abq_store *store, abq_template_cb *cb, void *arg, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, "");
	p_text(&p, "");
	p_text(&p, "");
	p_text(&p, "");
	return run_iter(S(store), &template_kind,
	                "SELECT " TEMPLATE_COLS " FROM templates WHERE (scope, domain, kind, "
	                "locale_key) > ($1, $2, $3, $4) ORDER BY scope, domain, kind, "
	                "locale_key" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_admin(struct params *p, const void *rec)
{
	p_set(p, 0, ((const struct abq_admin *)rec)->name);
}

static int
call_admin(any_cb cb, void *arg, const void *rec)
{
	return ((abq_admin_cb *)cb)(arg, rec);
}

static const struct iter_kind admin_kind = {
    "admin_iter", sizeof(struct abq_admin), read_admin, clear_admin, key_admin, call_admin};

/* Every administrator by name. */
static int
pgsql_admin_iter(struct abq_store *store, abq_admin_cb *cb, void *arg, const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, "");
	return run_iter(S(store), &admin_kind,
	                "SELECT " ADMIN_COLS
	                " FROM admins WHERE name > $1 ORDER BY name" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

static void
key_token(struct params *p, const void *rec)
{
	const struct abq_token *t = rec;

	p_set(p, 0, t->admin);
	p_int_at(p, 1, t->id);
}

static int
call_token(any_cb cb, void *arg, const void *rec)
{
	return ((abq_token_cb *)cb)(arg, rec);
}

static const struct iter_kind token_kind = {
    "token_iter", sizeof(struct abq_token), read_token, clear_token, key_token, call_token};

/* Tokens by administrator, then id; one administrator's or all. */
static int
pgsql_token_iter(struct abq_store *store, const char *admin, abq_token_cb *cb, void *arg,
                 const char **errstr_r)
{
	struct params p = {0};
	char sql[512] = "SELECT " TOKEN_COLS " FROM tokens WHERE (admin, id) > ($1, $2::bigint)";

	p_text(&p, "");
	p_int(&p, 0);
	if (admin) {
		p_text(&p, admin);
		sql_add(sql, sizeof(sql), " AND admin = $%d", p.n);
	}
	sql_add(sql, sizeof(sql), " ORDER BY admin, id" BATCH_LIMIT);
	return run_iter(S(store), &token_kind, sql, &p, 0, (any_cb)cb, arg, errstr_r);
}

/* ---- moving a registry (store.h) ------------------------------------------ */

static int
read_syncstate(struct pg_store *s, const PGresult *res, int r, void *rec, const char **errstr_r)
{
	struct abq_syncstate *st = rec;
	size_t n = 0;
	unsigned char *raw;

	st->account = col_str(res, r, 0);
	st->device_id = col_str(res, r, 1);
	st->collection = col_str(res, r, 2);
	st->updated = col_int(res, r, 4);
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 3), &n);
	if (raw == NULL)
		return fail(s, errstr_r, "syncstate_iter: cannot read a state");
	st->state = xmalloc(n + 1);
	if (n > 0)
		memcpy(st->state, raw, n);
	((char *)st->state)[n] = '\0';
	st->len = n;
	PQfreemem(raw);
	return 0;
}

static void
clear_syncstate(void *p)
{
	abq_syncstate_clear(p);
}

static void
key_syncstate(struct params *p, const void *rec)
{
	const struct abq_syncstate *st = rec;

	p_set(p, 0, st->account);
	p_set(p, 1, st->device_id);
	str_lower(p->own[1]);
	p_set(p, 2, st->collection);
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
pgsql_syncstate_iter(struct abq_store *store, abq_syncstate_cb *cb, void *arg,
                     const char **errstr_r)
{
	struct params p = {0};

	p_text(&p, "");
	p_text(&p, "");
	p_text(&p, "");
	return run_iter(S(store), &syncstate_kind,
	                "SELECT account, device_id, collection, state, updated FROM syncstate "
	                "WHERE (account, device_key, collection) > ($1, $2, $3) ORDER BY account, "
	                "device_key, collection" BATCH_LIMIT,
	                &p, 0, (any_cb)cb, arg, errstr_r);
}

/*
 * Write a record under its source id; the sequences are set after the
 * highest ids by restore_finish. Not prepared: a migration is a one-off.
 */
static int
pgsql_restore(struct abq_store *store, enum abq_restore_kind kind, const void *rec,
              const char **errstr_r)
{
	struct pg_store *s = S(store);
	struct params p = {0};
	const char *sql = NULL;
	PGresult *res;
	int ret = 0;

	if (kind == ABQ_RESTORE_RULE) {
		sql =
		    "INSERT INTO rules (" RULE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
		rule_params(&p, rec);
	} else if (kind == ABQ_RESTORE_HISTORY) {
		const struct abq_history *h = rec;
		sql = "INSERT INTO history (" HISTORY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
		      "$8, $9, $10)";
		p_int(&p, h->id);
		p_int(&p, h->at);
		p_text(&p, h->who);
		p_text(&p, h->what);
		p_text(&p, h->subject);
		p_text(&p, h->old_value);
		p_text(&p, h->new_value);
		p_text(&p, h->reason);
		p_text(&p, h->device_id);
		p_text(&p, h->account);
	} else if (kind == ABQ_RESTORE_NOTICE) {
		const struct abq_notice *n = rec;
		sql = "INSERT INTO outbox (" NOTICE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, "
		      "coalesce($8, 'queued'), $9, $10, $11, $12, $13)";
		p_int(&p, n->id);
		p_text(&p, n->recipient);
		p_text(&p, n->kind);
		p_text(&p, n->account);
		p_text(&p, n->device_id);
		p_text(&p, n->template_ref);
		p_text(&p, n->rendered);
		p_text(&p, n->state);
		p_int(&p, n->attempts);
		p_int(&p, n->next_attempt);
		p_text(&p, n->last_error);
		p_int(&p, n->created);
		p_int(&p, n->sent);
	} else if (kind == ABQ_RESTORE_CHANGE) {
		const struct abq_change *c = rec;
		sql = "INSERT INTO changes (" CHANGE_COLS ") VALUES ($1, $2, $3, $4)";
		p_int(&p, c->seq);
		p_int(&p, c->at);
		p_text(&p, change_kind_names[c->kind]);
		p_text(&p, c->key);
	} else {
		return fail(s, errstr_r, "restore: unknown kind %d", (int)kind);
	}
	if (pipe_flush(s, errstr_r) < 0) {
		p_free(&p);
		return -1;
	}
	res = PQexecParams(s->conn, sql, p.n, NULL, p.v, p.len, p.fmt, 0);
	if (!res_ok(res))
		ret = db_fail(s, "restore", res, errstr_r);
	PQclear(res);
	p_free(&p);
	return ret;
}

/* Every counter goes on after the highest id now in its table. */
static int
pgsql_restore_finish(struct abq_store *store, const char **errstr_r)
{
	return exec_simple(S(store),
	                   "SELECT setval(pg_get_serial_sequence('rules', 'id'), "
	                   "coalesce((SELECT max(id) FROM rules), 0) + 1, false); "
	                   "SELECT setval(pg_get_serial_sequence('history', 'id'), "
	                   "coalesce((SELECT max(id) FROM history), 0) + 1, false); "
	                   "SELECT setval(pg_get_serial_sequence('outbox', 'id'), "
	                   "coalesce((SELECT max(id) FROM outbox), 0) + 1, false); "
	                   "SELECT setval(pg_get_serial_sequence('changes', 'seq'), "
	                   "coalesce((SELECT max(seq) FROM changes), 0) + 1, false)",
	                   "restore_finish", errstr_r);
}

/* ---- several nodes (store.h) ---------------------------------------------- */

/*
 * Session advisory lock `key` on this connection: held until the connection
 * ends, so a node that dies or loses PostgreSQL releases it. Once taken it is
 * remembered (asking again would only stack the lock) and forgotten when the
 * connection is replaced.
 */
static int
pgsql_try_lock(struct abq_store *store, int64_t key, const char **errstr_r)
{
	struct pg_store *s = S(store);
	char sql[80];
	PGresult *res;
	int i, got;

	if (pipe_flush(s, errstr_r) < 0)
		return -1;
	for (i = 0; i < s->nlocks; i++)
		if (s->locks[i] == key)
			return 1;
	if (s->nlocks == MAX_LOCKS)
		return fail(s, errstr_r, "try_lock: too many locks");
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%" PRId64 ")", key);
	res = PQexec(s->conn, sql);
	if (!res_ok(res) || PQntuples(res) != 1) {
		db_fail(s, "try_lock", res, errstr_r);
		PQclear(res);
		return -1;
	}
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (got)
		s->locks[s->nlocks++] = key;
	return got;
}

static bool
pgsql_connected(const struct abq_store *store)
{
	return PQstatus(CS(store)->conn) == CONNECTION_OK;
}

/* A LISTEN connection of its own (store.h). */
struct pg_listener {
	struct abq_store_listener_base base; /* first */
	char *url;
	PGconn *conn;
	char errbuf[1024];
};

static struct abq_store_listener *
pgsql_listener_new(struct abq_store *store, const char **errstr_r)
{
	struct pg_listener *l = xcalloc(1, sizeof(*l));

	(void)errstr_r;
	l->base.ops = &abq_store_pgsql_ops;
	l->url = xstrdup(S(store)->url);
	return (struct abq_store_listener *)(void *)l;
}

static void
listener_drop(struct pg_listener *l)
{
	PQfinish(l->conn);
	l->conn = NULL;
}

static int
listener_fail(struct pg_listener *l, const char *what, const char **errstr_r)
{
	snprintf(l->errbuf, sizeof(l->errbuf), "%s: %s", what,
	         l->conn ? PQerrorMessage(l->conn) : "out of memory");
	one_line(l->errbuf);
	*errstr_r = l->errbuf;
	listener_drop(l);
	return -1;
}

static int
pgsql_listener_connect(struct abq_store_listener *ll, const char **errstr_r)
{
	struct pg_listener *l = (struct pg_listener *)(void *)ll;
	PGresult *res;

	listener_drop(l);
	l->conn = pg_connect(l->url);
	if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK)
		return listener_fail(l, "listen: cannot connect", errstr_r);
	PQsetNoticeProcessor(l->conn, quiet_notices, NULL);
	res = PQexec(l->conn, "LISTEN " NOTIFY_CHANNEL);
	if (!res_ok(res)) {
		PQclear(res);
		return listener_fail(l, "listen", errstr_r);
	}
	PQclear(res);
	if (PQsetnonblocking(l->conn, 1) != 0)
		return listener_fail(l, "listen", errstr_r);
	return 0;
}

static int
pgsql_listener_fd(const struct abq_store_listener *ll)
{
	const struct pg_listener *l = (const struct pg_listener *)(const void *)ll;

	return l->conn == NULL ? -1 : PQsocket(l->conn);
}

static int
pgsql_listener_read(struct abq_store_listener *ll, int64_t *seq_r, const char **errstr_r)
{
	struct pg_listener *l = (struct pg_listener *)(void *)ll;
	PGnotify *n;
	int got = 0;

	if (l->conn == NULL) {
		*errstr_r = "listen: not connected";
		return -1;
	}
	if (PQconsumeInput(l->conn) != 1 || PQstatus(l->conn) != CONNECTION_OK)
		return listener_fail(l, "listen: connection lost", errstr_r);
	while ((n = PQnotifies(l->conn)) != NULL) {
		int64_t seq = strtoll(n->extra, NULL, 10);

		if (seq_r != NULL && (got == 0 || seq > *seq_r))
			*seq_r = seq;
		got = 1;
		PQfreemem(n);
	}
	return got;
}

static void
pgsql_listener_free(struct abq_store_listener *ll)
{
	struct pg_listener *l = (struct pg_listener *)(void *)ll;

	listener_drop(l);
	explicit_bzero(l->url, strlen(l->url));
	free(l->url);
	free(l);
}

/* ---- accounts ---------------------------------------------------------------- */

/* Run sql with one text parameter; the result, or NULL with *errstr_r. */
static PGresult *
exec_text1(struct pg_store *s, const char *sql, const char *v, const char *what,
           const char **errstr_r)
{
	PGresult *res;

	if (pipe_flush(s, errstr_r) < 0)
		return NULL;
	res = PQexecParams(s->conn, sql, 1, NULL, &v, NULL, NULL, 0);
	if (!res_ok(res)) {
		db_fail(s, what, res, errstr_r);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Read a meta value: 1 with *value_r (malloc'd), 0 when absent, or -1. */
static int
pgsql_meta_get(struct abq_store *store, const char *key, char **value_r, const char **errstr_r)
{
	struct pg_store *s = S(store);
	PGresult *res;
	int rc = 0;

	*value_r = NULL;
	res =
	    exec_text1(s, "SELECT value FROM abqd_meta WHERE key = $1", key, "meta_get", errstr_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*value_r = col_str(res, 0, 0);
		rc = *value_r != NULL ? 1 : 0;
	}
	PQclear(res);
	return rc;
}

/*
 * The rewrite of bare accounts to "name@domain" (store.h), in the order of the
 * SQLite backend's (see there); $1 is the domain. DeviceIds and attribute
 * names compare by their lower-cased key columns.
 */
static const struct {
	const char *sql;
	bool counted; /* a registry record (device, entry, attribute) */
} pgsql_canon[] = {
    {"DELETE FROM devices WHERE strpos(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE strpos(b.account, '@') = 0 AND b.account || '@' || $1::text = devices.account"
     " AND b.device_key = devices.device_key AND b.last_seen > devices.last_seen)",
     true},
    {"DELETE FROM devices WHERE strpos(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = devices.account || '@' || $1::text"
     " AND c.device_key = devices.device_key)",
     true},
    {"DELETE FROM syncstate WHERE strpos(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = syncstate.account || '@' || $1::text"
     " AND c.device_key = syncstate.device_key)",
     false},
    {"DELETE FROM syncstate WHERE strpos(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE strpos(b.account, '@') = 0 AND b.account || '@' || $1::text = syncstate.account"
     " AND b.device_key = syncstate.device_key)",
     false},
    {"DELETE FROM syncstate WHERE strpos(account, '@') = 0 AND EXISTS (SELECT 1 FROM syncstate c"
     " WHERE c.account = syncstate.account || '@' || $1::text"
     " AND c.device_key = syncstate.device_key AND c.collection = syncstate.collection)",
     false},
    {"UPDATE syncstate SET account = account || '@' || $1::text WHERE strpos(account, '@') = 0",
     false},
    {"UPDATE devices SET account = account || '@' || $1::text WHERE strpos(account, '@') = 0",
     true},
    {"DELETE FROM entries WHERE strpos(account, '@') = 0 AND EXISTS (SELECT 1 FROM entries c"
     " WHERE c.account = entries.account || '@' || $1::text"
     " AND c.device_key = entries.device_key)",
     true},
    {"UPDATE entries SET account = account || '@' || $1::text WHERE strpos(account, '@') = 0",
     true},
    {"DELETE FROM attrs WHERE scope = 'account' AND strpos(target, '@') = 0 AND EXISTS"
     " (SELECT 1 FROM attrs c WHERE c.scope = 'account'"
     " AND c.target = attrs.target || '@' || $1::text AND c.name_key = attrs.name_key)",
     true},
    {"UPDATE attrs SET target = target || '@' || $1::text"
     " WHERE scope = 'account' AND strpos(target, '@') = 0",
     true},
    {"UPDATE history SET account = account || '@' || $1::text"
     " WHERE account <> '' AND strpos(account, '@') = 0",
     false},
    {"UPDATE outbox SET account = account || '@' || $1::text"
     " WHERE account <> '' AND strpos(account, '@') = 0",
     false},
    {"INSERT INTO abqd_meta (key, value) VALUES ('" ABQ_STORE_META_ACCOUNT_DOMAIN "', $1)"
     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
     false},
};

/* Give bare accounts "@domain" in every table, inside the caller's transaction. */
static int
pgsql_accounts_canonicalize(struct abq_store *store, const char *domain, size_t *count_r,
                            const char **errstr_r)
{
	struct pg_store *s = S(store);

	*count_r = 0;
	for (size_t i = 0; i < sizeof(pgsql_canon) / sizeof(pgsql_canon[0]); i++) {
		PGresult *res =
		    exec_text1(s, pgsql_canon[i].sql, domain, "accounts_canonicalize", errstr_r);

		if (res == NULL)
			return -1;
		if (pgsql_canon[i].counted)
			*count_r += (size_t)strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	return 0;
}

const struct abq_store_ops abq_store_pgsql_ops = {
    .name = "pgsql",
    .scheme = "postgresql://",
    .open = pgsql_open,
    .close = pgsql_close,
    .location = pgsql_location,
    .files = pgsql_files,
    .begin = pgsql_begin,
    .commit = pgsql_commit,
    .rollback = pgsql_rollback,
    .device_get = pgsql_device_get,
    .device_put = pgsql_device_put,
    .device_delete = pgsql_device_delete,
    .device_iter = pgsql_device_iter,
    .device_count = pgsql_device_count,
    .device_touch = pgsql_device_touch,
    .entry_get = pgsql_entry_get,
    .entry_put = pgsql_entry_put,
    .entry_delete = pgsql_entry_delete,
    .entry_iter = pgsql_entry_iter,
    .rule_insert = pgsql_rule_insert,
    .rule_update = pgsql_rule_update,
    .rule_get = pgsql_rule_get,
    .rule_delete = pgsql_rule_delete,
    .rule_iter = pgsql_rule_iter,
    .attr_get = pgsql_attr_get,
    .attr_put = pgsql_attr_put,
    .attr_delete = pgsql_attr_delete,
    .attr_iter = pgsql_attr_iter,
    .history_add = pgsql_history_add,
    .history_iter = pgsql_history_iter,
    .change_add = pgsql_change_add,
    .change_iter = pgsql_change_iter,
    .change_last = pgsql_change_last,
    .notice_add = pgsql_notice_add,
    .notice_iter = pgsql_notice_iter,
    .notice_stats = pgsql_notice_stats,
    .syncstate_get = pgsql_syncstate_get,
    .syncstate_put = pgsql_syncstate_put,
    .syncstate_delete = pgsql_syncstate_delete,
    .notice_due = pgsql_notice_due,
    .notice_mark = pgsql_notice_mark,
    .template_put = pgsql_template_put,
    .template_get = pgsql_template_get,
    .template_delete = pgsql_template_delete,
    .template_iter = pgsql_template_iter,
    .admin_get = pgsql_admin_get,
    .admin_put = pgsql_admin_put,
    .admin_delete = pgsql_admin_delete,
    .admin_iter = pgsql_admin_iter,
    .token_add = pgsql_token_add,
    .token_find = pgsql_token_find,
    .token_touch = pgsql_token_touch,
    .token_delete = pgsql_token_delete,
    .token_iter = pgsql_token_iter,
    .token_count = pgsql_token_count,
    .listener_new = pgsql_listener_new,
    .listener_connect = pgsql_listener_connect,
    .listener_fd = pgsql_listener_fd,
    .listener_read = pgsql_listener_read,
    .listener_free = pgsql_listener_free,
    .try_lock = pgsql_try_lock,
    .connected = pgsql_connected,
    .syncstate_iter = pgsql_syncstate_iter,
    .restore = pgsql_restore,
    .restore_finish = pgsql_restore_finish,
    .meta_get = pgsql_meta_get,
    .accounts_canonicalize = pgsql_accounts_canonicalize,
};
