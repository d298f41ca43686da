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
 * The store's operations are store.c's, over the driver at the end of this
 * file (store_sql.h): ?N becomes $N, integers are sent typed bigint,
 * upserts are ON CONFLICT ... DO UPDATE of every column but the key. Persistent
 * statements are prepared once per connection (PQprepare on first use). Inside
 * a transaction, writes that return nothing but success (and history_add, with
 * ids fetched ahead from its sequence) are sent in libpq pipeline mode and
 * their results read every PIPE_MAX writes or at the next exchange: a failure
 * then surfaces at a later call of the same transaction, at the latest its
 * commit, which fails. An iteration's batch is one complete query whose rows
 * are read before any callback runs.
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
#include "store/store_sql.h"

#define WRITE_LOCK_KEY "1094865220" /* 0x41425144, 'ABQD' */
#define APPLICATION    "abqd"
#define MAX_PARAMS     32
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
    /* 5 -> 6: a device's remote wipe (records.h). */
    "ALTER TABLE devices ADD COLUMN wipe INTEGER NOT NULL DEFAULT 0,"
    " ADD COLUMN wipe_account_only INTEGER NOT NULL DEFAULT 0,"
    " ADD COLUMN wipe_by TEXT,"
    " ADD COLUMN wipe_at BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN wipe_acked_at BIGINT NOT NULL DEFAULT 0;",
    /* 6 -> 7: account loggers (abqctl mobile doAddAccountLogger). */
    "CREATE TABLE loggers ("
    " id BIGSERIAL PRIMARY KEY,"
    " account TEXT COLLATE \"C\" NOT NULL,"
    " device_id TEXT COLLATE \"C\","
    " file TEXT NOT NULL,"
    " until_at BIGINT NOT NULL DEFAULT 0,"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL DEFAULT 0);",
    /* 7 -> 8: the Policy Status a device last acknowledged (records.h). */
    "ALTER TABLE devices ADD COLUMN provision_status INTEGER NOT NULL DEFAULT 0;",
    /* 8 -> 9: native mode's folder ids and the per-account counter they come from. */
    "CREATE TABLE folders ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " folder_id TEXT COLLATE \"C\" NOT NULL,"
    " mailbox TEXT COLLATE \"C\" NOT NULL,"
    " mailbox_id TEXT COLLATE \"C\","
    " uidvalidity BIGINT NOT NULL DEFAULT 0,"
    " parent_id TEXT COLLATE \"C\","
    " created BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, folder_id));"
    "CREATE UNIQUE INDEX folders_mailbox ON folders (account, mailbox);"
    "CREATE INDEX folders_mailbox_id ON folders (account, mailbox_id);"
    "CREATE TABLE folder_counters ("
    " account TEXT COLLATE \"C\" PRIMARY KEY,"
    " last_id BIGINT NOT NULL DEFAULT 0);",
    /* 9 -> 10: native mode's SendMail ClientIds, sent or being sent. */
    "CREATE TABLE clientids ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " device_id TEXT COLLATE \"C\" NOT NULL,"
    " device_key TEXT COLLATE \"C\" GENERATED ALWAYS AS (lower(device_id)) STORED,"
    " client_id TEXT COLLATE \"C\" NOT NULL,"
    " at BIGINT NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, device_key, client_id));"
    "CREATE INDEX clientids_at ON clientids (at);",
    /* 10 -> 11: native mode's contacts, calendars and tasks (collections, items, counters). */
    "CREATE TABLE pim_colls ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " coll_id TEXT COLLATE \"C\" NOT NULL,"
    " href TEXT COLLATE \"C\" NOT NULL,"
    " kind INTEGER NOT NULL,"
    " name TEXT,"
    " is_default INTEGER NOT NULL DEFAULT 0,"
    " token TEXT,"
    " seq BIGINT NOT NULL DEFAULT 0,"
    " pruned BIGINT NOT NULL DEFAULT 0,"
    " refreshed BIGINT NOT NULL DEFAULT 0,"
    " last_item BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, coll_id));"
    "CREATE UNIQUE INDEX pim_colls_href ON pim_colls (account, kind, href);"
    "CREATE TABLE pim_items ("
    " account TEXT COLLATE \"C\" NOT NULL,"
    " coll_id TEXT COLLATE \"C\" NOT NULL,"
    " item_id TEXT COLLATE \"C\" NOT NULL,"
    " href TEXT COLLATE \"C\" NOT NULL,"
    " etag TEXT COLLATE \"C\","
    " seq BIGINT NOT NULL,"
    " added_seq BIGINT NOT NULL,"
    " start_at BIGINT NOT NULL DEFAULT 0,"
    " end_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, coll_id, item_id));"
    "CREATE UNIQUE INDEX pim_items_href ON pim_items (account, coll_id, href);"
    "CREATE UNIQUE INDEX pim_items_seq ON pim_items (account, coll_id, seq);"
    "CREATE TABLE pim_counters ("
    " account TEXT COLLATE \"C\" PRIMARY KEY,"
    " last_id BIGINT NOT NULL DEFAULT 0);",
};

/* The open store. */
struct pg_store {
	struct abq_store sql; /* first: the shared layer's part */
	PGconn *conn;
	char *url;      /* as configured, for reconnecting (never printed) */
	char *location; /* the URL without its password */
	/* A transaction is open for the caller: a lost connection is not replaced under it. */
	bool tx_open;
	/* Reconnection after a lost connection (monotonic milliseconds). */
	int64_t retry_at, retry_ms;
	/* The connection's generation (one more at each reconnection), for prepared statements. */
	unsigned gen, nstmts;
	/* Session advisory locks held on this connection (abq_store_try_lock). */
	int64_t locks[MAX_LOCKS];
	int nlocks;
	bool readonly;
	const char *files[1];
	/* Change-log numbers taken in the open transaction (for the rollback). */
	int64_t tx_first_seq, tx_last_seq;
	/* Writes sent in pipeline mode whose results are not read yet. */
	int queued;
	const char *queued_what[PIPE_MAX];
	/* History ids taken ahead from the sequence in the open transaction. */
	int64_t hist_ids[PIPE_MAX];
	int hist_n, hist_i, hist_block;
};

/* Parameters of one statement, sent as text (ints typed bigint) or binary (bytea). */
struct params {
	int n;
	const char *v[MAX_PARAMS];
	Oid type[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char *own[MAX_PARAMS];
};

/*
 * A statement: its SQL, its parameters and its result. A persistent one is
 * prepared under its own name on first use, and again on a new connection.
 */
struct pg_stmt {
	struct sql_stmt base; /* first */
	char *sql;
	char name[16]; /* "" for a one-off statement (PQexecParams) */
	unsigned gen;  /* the connection generation it is prepared on; 0: not yet */
	struct params p;
	PGresult *res;
	int row;
	unsigned char *blob; /* the last bytea column read, unescaped */
};

SQL_BACKEND_VIEWS(struct pg_store, struct pg_stmt)

/* Fail with the server's (or libpq's) message, prefixed by what was being done. */
static int
db_fail(struct pg_store *s, const char *what, const PGresult *res, const char **errstr_r)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (m == NULL || *m == '\0')
		m = PQerrorMessage(s->conn);
	if (m == NULL || *m == '\0')
		m = "unknown error";
	sql_fail(&s->sql, errstr_r, "%s: %s", what, m);
	sql_one_line(s->sql.errbuf);
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

/* Prepare a persistent statement on this connection if it is not yet. */
static int
pg_prepare(struct pg_stmt *st, const char **errstr_r)
{
	struct pg_store *s = S(st->base.db);
	PGresult *res;

	if (st->gen == s->gen)
		return 0;
	res = PQprepare(s->conn, st->name, st->sql, st->p.n, st->p.type);
	if (!res_ok(res)) {
		db_fail(s, st->base.what, res, errstr_r);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	st->gen = s->gen;
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
queue_stmt(struct pg_stmt *st, const char **errstr_r)
{
	struct pg_store *s = S(st->base.db);
	const char *what = st->base.what;

	if (st->gen != s->gen && (pipe_flush(s, errstr_r) < 0 || pg_prepare(st, errstr_r) < 0))
		return -1;
	if (PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(s->conn) != 1)
		return db_fail(s, what, NULL, errstr_r);
	if (PQsendQueryPrepared(s->conn, st->name, st->p.n, st->p.v, st->p.len, st->p.fmt, 0) !=
	    1) {
		db_fail(s, what, NULL, errstr_r);
		pipe_flush(s, errstr_r);
		return -1;
	}
	s->queued_what[s->queued++] = what;
	if (s->queued >= PIPE_MAX)
		return pipe_flush(s, errstr_r);
	return 0;
}

/* Run a statement: its result, or NULL with *errstr_r set. */
static PGresult *
pg_run(struct pg_stmt *st, const char **errstr_r)
{
	struct pg_store *s = S(st->base.db);
	const struct params *p = &st->p;
	PGresult *res;

	if (pipe_flush(s, errstr_r) < 0 || (st->name[0] && pg_prepare(st, errstr_r) < 0))
		return NULL;
	if (st->name[0])
		res = PQexecPrepared(s->conn, st->name, p->n, p->v, p->len, p->fmt, 0);
	else
		res = PQexecParams(s->conn, st->sql, p->n, p->type, p->v, p->len, p->fmt, 0);
	if (!res_ok(res)) {
		db_fail(s, st->base.what, res, errstr_r);
		PQclear(res);
		return NULL;
	}
	return res;
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

/* ---- opening --------------------------------------------------------------- */

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
		*errstr_r = sql_open_error("cannot read store %s: %s", where,
		                           res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		goto out;
	}
	if (PQgetisnull(res, 0, 0)) {
		*errstr_r = sql_open_error("store %s: no schema of search_path exists to hold the "
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
			    sql_open_error("cannot read store %s: %s", where,
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
		*errstr_r =
		    sql_open_error("%s (schema %s) is not an abqd store", where, id->schema);
		return -1;
	}
	if (id->version > ABQ_STORE_SCHEMA_VERSION) {
		*errstr_r =
		    sql_open_error("%s has schema version %" PRId64 ", newer than this abqd (%d); "
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

		sql_one_line(m);
		*errstr_r = sql_open_error("%s %s: %s", what, where, m);
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
		*errstr_r = sql_open_error("cannot connect to store %s: %s", where,
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
		*errstr_r = sql_open_error("store %s (schema %s) does not exist; run 'abqctl init'",
		                           where, id.schema);
		goto fail;
	}
	if (judged == 0 && (flags & ABQ_STORE_READONLY)) {
		*errstr_r = sql_open_error("store %s has schema version %" PRId64
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
	s->sql.drv = &pgsql_driver;
	s->gen = 1;
	s->conn = conn;
	s->url = xstrdup(url);
	s->readonly = (flags & ABQ_STORE_READONLY) != 0;
	s->location = where;
	s->files[0] = NULL; /* no files: the store lives in the server */
	s->sql.location = s->location;
	s->sql.files = s->files;
	return &s->sql;
fail:
	PQfinish(conn);
	free(where);
	return NULL;
}

static void pgsql_rollback(struct abq_store *db);

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
		return sql_fail(&s->sql, errstr_r, "connection to the store lost in a transaction");
	now = mono_ms();
	if (now < s->retry_at)
		return sql_fail(&s->sql, errstr_r,
		                "store unreachable, next attempt in %" PRId64 " ms",
		                s->retry_at - now);
	s->gen++; /* statements are prepared again on the new connection */
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
pgsql_close(struct abq_store *db)
{
	struct pg_store *s = S(db);

	pgsql_rollback(db);
	PQfinish(s->conn);
	free(s->location);
	if (s->url != NULL)
		explicit_bzero(s->url, strlen(s->url)); /* it may carry a password */
	free(s->url);
	free(s);
}

/* ---- transactions ---------------------------------------------------------- */

static bool
in_tx(const struct pg_store *s)
{
	return PQtransactionStatus(s->conn) != PQTRANS_IDLE;
}

/*
 * Commit; on failure the transaction stays open (or aborted) for the caller's
 * rollback. PostgreSQL turns COMMIT of a failed transaction into a rollback:
 * that is reported as a failure, not as success.
 */
static int
pgsql_commit(struct abq_store *db, const char **errstr_r)
{
	struct pg_store *s = S(db);
	PGresult *res;

	if (!in_tx(s))
		return sql_fail(&s->sql, errstr_r, "commit: no transaction is open");
	if (pipe_flush(s, errstr_r) < 0)
		return -1;
	if (PQtransactionStatus(s->conn) == PQTRANS_INERROR)
		return sql_fail(&s->sql, errstr_r,
		                "commit: the transaction failed earlier; roll it back");
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
		return sql_fail(&s->sql, errstr_r,
		                "commit: the transaction was rolled back by the server");
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
pgsql_rollback(struct abq_store *db)
{
	struct pg_store *s = S(db);
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

/*
 * Take the next history id of the open transaction from ids fetched ahead
 * (blocks of 16 doubling to PIPE_MAX, so a small transaction wastes few), so
 * that the insert can go down the pipeline. Ids taken under the write lock
 * keep history in commit order; the unused rest of a block is a harmless gap.
 */
static int
next_history_id(struct pg_store *s, int64_t *id_r, const char **errstr_r)
{
	char block[16];
	const char *v = block;
	PGresult *res;
	int i;

	if (s->hist_i == s->hist_n) {
		s->hist_block = s->hist_block == 0 ? 16 : s->hist_block * 2;
		if (s->hist_block > PIPE_MAX)
			s->hist_block = PIPE_MAX;
		snprintf(block, sizeof(block), "%d", s->hist_block);
		if (pipe_flush(s, errstr_r) < 0)
			return -1;
		res = PQexecParams(s->conn,
		                   "SELECT nextval(pg_get_serial_sequence('history', 'id')) FROM "
		                   "generate_series(1, $1::int)",
		                   1, NULL, &v, NULL, NULL, 0);
		if (!res_ok(res)) {
			db_fail(s, "history_add", res, errstr_r);
			PQclear(res);
			return -1;
		}
		s->hist_n = PQntuples(res) < PIPE_MAX ? PQntuples(res) : PIPE_MAX;
		s->hist_i = 0;
		for (i = 0; i < s->hist_n; i++)
			s->hist_ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		PQclear(res);
		if (s->hist_n == 0)
			return sql_fail(&s->sql, errstr_r, "history_add: no id from the sequence");
	}
	*id_r = s->hist_ids[s->hist_i++];
	return 0;
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
		return sql_fail(&s->sql, errstr_r, "try_lock: too many locks");
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
	return PQstatus(S(store)->conn) == CONNECTION_OK;
}

/* A LISTEN connection of its own (store.h). */
struct pg_listener {
	struct abq_store_listener base; /* first */
	char *url;
	PGconn *conn;
	char errbuf[1024];
};

static struct abq_store_listener *
pgsql_listener_new(struct abq_store *store, const char **errstr_r)
{
	struct pg_listener *l = xcalloc(1, sizeof(*l));

	(void)errstr_r;
	l->base.drv = &pgsql_driver;
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
	sql_one_line(l->errbuf);
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

/* ---- the driver (store_sql.h) ---------------------------------------------- */

/* A statement; persistent ones get a name of their own and are prepared on first use. */
static struct sql_stmt *
pgsql_prepare(struct abq_store *db, const char *sql, bool persistent, const char **errstr_r)
{
	struct pg_stmt *st = xcalloc(1, sizeof(*st));

	(void)errstr_r;
	st->base.db = db;
	st->sql = xstrdup(sql);
	if (persistent)
		snprintf(st->name, sizeof(st->name), "abq_%u", ++S(db)->nstmts);
	return &st->base;
}

static void
pgsql_reset(struct sql_stmt *sst)
{
	struct pg_stmt *st = ST(sst);

	PQclear(st->res);
	st->res = NULL;
	PQfreemem(st->blob);
	st->blob = NULL;
}

static void
pgsql_finish(struct sql_stmt *sst)
{
	struct pg_stmt *st = ST(sst);

	pgsql_reset(sst);
	for (int i = 0; i < MAX_PARAMS; i++)
		free(st->p.own[i]);
	free(st->sql);
	free(st);
}

/* Set parameter i (1-based) to a copy of len bytes of v (NULL: SQL NULL) of a type. */
static int
p_set(struct sql_stmt *sst, int i, const char *v, size_t len, Oid type, int fmt)
{
	struct params *p = &ST(sst)->p;

	if (i < 1 || i > MAX_PARAMS || len > INT32_MAX)
		return -1;
	free(p->own[--i]);
	p->own[i] = NULL;
	if (v != NULL) {
		p->own[i] = xmalloc(len + 1);
		memcpy(p->own[i], v, len);
		p->own[i][len] = '\0';
	}
	p->v[i] = p->own[i];
	p->len[i] = (int)len;
	p->type[i] = type;
	p->fmt[i] = fmt;
	if (i >= p->n)
		p->n = i + 1;
	return 0;
}

/* Integers go as decimal text typed bigint, so that the SQL needs no casts. */
static int
pgsql_bind_int64(struct sql_stmt *st, int i, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	return p_set(st, i, num, strlen(num), 20 /* int8 */, 0);
}

static int
pgsql_bind_text(struct sql_stmt *st, int i, const char *v)
{
	return p_set(st, i, v, v ? strlen(v) : 0, 25 /* text */, 0);
}

static int
pgsql_bind_blob(struct sql_stmt *st, int i, const void *v, size_t len)
{
	return p_set(st, i, v ? v : "", len, 17 /* bytea */, 1);
}

/*
 * Run a write. With SQL_DEFER inside a transaction it goes down the pipeline
 * (its failure surfaces at a later call); else it runs now and counts.
 */
static int
pgsql_exec(struct sql_stmt *sst, int flags, size_t *changes_r, const char **errstr_r)
{
	struct pg_stmt *st = ST(sst);
	struct pg_store *s = S(sst->db);
	PGresult *res;

	if ((flags & SQL_DEFER) && st->name[0] &&
	    (s->queued > 0 || PQtransactionStatus(s->conn) == PQTRANS_INTRANS))
		return queue_stmt(st, errstr_r);
	if ((res = pg_run(st, errstr_r)) == NULL)
		return -1;
	if (changes_r != NULL)
		*changes_r = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

/* The first call runs the statement; each call moves to the next row of its result. */
static int
pgsql_next_row(struct sql_stmt *sst, const char **errstr_r)
{
	struct pg_stmt *st = ST(sst);

	if (st->res == NULL) {
		if ((st->res = pg_run(st, errstr_r)) == NULL)
			return -1;
		st->row = -1;
	}
	PQfreemem(st->blob);
	st->blob = NULL;
	return ++st->row < PQntuples(st->res) ? 1 : 0;
}

static const char *
pgsql_col_text(struct sql_stmt *sst, int c)
{
	struct pg_stmt *st = ST(sst);

	return PQgetisnull(st->res, st->row, c) ? NULL : PQgetvalue(st->res, st->row, c);
}

static int64_t
pgsql_col_int64(struct sql_stmt *st, int c)
{
	const char *t = pgsql_col_text(st, c);

	return t ? strtoll(t, NULL, 10) : 0;
}

/* A bytea column, unescaped from its text form (kept until the next row). */
static const void *
pgsql_col_blob(struct sql_stmt *sst, int c, size_t *len_r)
{
	struct pg_stmt *st = ST(sst);

	PQfreemem(st->blob);
	*len_r = 0;
	st->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, c), len_r);
	return st->blob;
}

/*
 * BEGIN; with write_lock also take the write lock now, so that a second
 * writer queues here (as with SQLite's BEGIN IMMEDIATE).
 */
static int
pgsql_begin(struct abq_store *db, bool write_lock, const char **errstr_r)
{
	struct pg_store *s = S(db);

	if (s->tx_open || (PQstatus(s->conn) == CONNECTION_OK && in_tx(s)))
		return sql_fail(db, errstr_r, "begin: a transaction is already open");
	s->tx_first_seq = s->tx_last_seq = 0;
	s->hist_n = s->hist_i = s->hist_block = 0;
	if (exec_simple(s,
	                write_lock ? "BEGIN ISOLATION LEVEL READ COMMITTED; "
	                             "SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")"
	                           : "BEGIN",
	                "begin", errstr_r) < 0) {
		if (PQstatus(s->conn) == CONNECTION_OK && in_tx(s))
			PQclear(PQexec(s->conn, "ROLLBACK"));
		return -1;
	}
	s->tx_open = true;
	return 0;
}

static bool
pgsql_in_tx(struct abq_store *db)
{
	return S(db)->tx_open;
}

/* A change-log number taken in the open transaction: for the notice and the rollback. */
static void
pgsql_change_written(struct abq_store *db, int64_t seq)
{
	struct pg_store *s = S(db);

	if (s->tx_first_seq == 0)
		s->tx_first_seq = seq;
	s->tx_last_seq = seq;
}

/* Inside a transaction, history ids come from ids fetched ahead: the insert can be piped. */
static int
pgsql_reserve_history_id(struct abq_store *db, int64_t *id_r, const char **errstr_r)
{
	struct pg_store *s = S(db);

	if (s->queued == 0 && PQtransactionStatus(s->conn) != PQTRANS_INTRANS)
		return 0;
	return next_history_id(s, id_r, errstr_r) < 0 ? -1 : 1;
}

/* The shared SQL's "instr" is strpos here, its meta table abqd_meta. */
static const char *const pgsql_renames[] = {"instr", "strpos", "meta", "abqd_meta", NULL};

static const struct sql_dialect pgsql_dialect = {'$', false, pgsql_renames};

const struct sql_driver pgsql_driver = {
    .dialect = &pgsql_dialect,
    SQL_DRIVER_FUNCS(pgsql),
    /* The highest committed seq (see the top of the file). */
    .change_last_sql = "SELECT coalesce(max(seq), 0) FROM changes",
    .change_written = pgsql_change_written,
    .reserve_history_id = pgsql_reserve_history_id,
    .listener_new = pgsql_listener_new,
    .listener_connect = pgsql_listener_connect,
    .listener_fd = pgsql_listener_fd,
    .listener_read = pgsql_listener_read,
    .listener_free = pgsql_listener_free,
    .try_lock = pgsql_try_lock,
    .connected = pgsql_connected,
    .restore_finish = pgsql_restore_finish,
};
