/*
 * store_sqlite.c: the SQLite backend of the store (the default).
 *
 * One database file, in WAL mode with synchronous=FULL so that a committed
 * decision survives a power cut before abqd answers the phone. The file says
 * what it is: PRAGMA application_id is 'ABQD' and PRAGMA user_version is the
 * schema version, so that abqd refuses a foreign database or a newer schema
 * instead of writing into it, and migrates an older one in one transaction.
 *
 * The store's operations are store.c's, over the driver at the end of this
 * file (store_sql.h): statements cached with SQLITE_PREPARE_PERSISTENT,
 * so that importing a hundred thousand entries in one transaction costs a few
 * hundred milliseconds. The shared SQL's key columns are this schema's NOCASE
 * columns (device_key is device_id, ...), its upserts INSERT OR REPLACE.
 *
 * A handle is for one thread at a time (SQLITE_OPEN_NOMUTEX); processes share
 * the file, and writers queue on the 10 s busy timeout.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"
#include "store/store_sql.h"

#define ABQD_APPLICATION_ID 0x41425144 /* 'ABQD' */
#define BUSY_TIMEOUT_MS     10000

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
    /* 5 -> 6: a device's remote wipe (records.h). */
    "ALTER TABLE devices ADD COLUMN wipe INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN wipe_account_only INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN wipe_by TEXT;"
    "ALTER TABLE devices ADD COLUMN wipe_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN wipe_acked_at INTEGER NOT NULL DEFAULT 0;",
    /* 6 -> 7: account loggers (abqctl mobile doAddAccountLogger). */
    "CREATE TABLE loggers ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " account TEXT NOT NULL,"
    " device_id TEXT,"
    " file TEXT NOT NULL,"
    " until_at INTEGER NOT NULL DEFAULT 0,"
    " created_by TEXT,"
    " created_at INTEGER NOT NULL DEFAULT 0);",
    /* 7 -> 8: the Policy Status a device last acknowledged (records.h). */
    "ALTER TABLE devices ADD COLUMN provision_status INTEGER NOT NULL DEFAULT 0;",
    /*
     * 8 -> 9: native mode's folder ids (store.h abq_folder): the map between
     * an account's EAS folder ids and its IMAP mailboxes, and the per-account
     * counter the ids come from (never reused).
     */
    "CREATE TABLE folders ("
    " account TEXT NOT NULL,"
    " folder_id TEXT NOT NULL,"
    " mailbox TEXT NOT NULL," /* UTF-8, the server's delimiter */
    " mailbox_id TEXT,"       /* RFC 8474 MAILBOXID; NULL: none */
    " uidvalidity INTEGER NOT NULL DEFAULT 0,"
    " parent_id TEXT," /* NULL: at the top */
    " created INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, folder_id));"
    "CREATE UNIQUE INDEX folders_mailbox ON folders (account, mailbox);"
    "CREATE INDEX folders_mailbox_id ON folders (account, mailbox_id);"
    "CREATE TABLE folder_counters ("
    " account TEXT NOT NULL PRIMARY KEY,"
    " last_id INTEGER NOT NULL DEFAULT 0);",
    /*
     * 9 -> 10: native mode's SendMail ClientIds (store.h abq_store_clientid_*):
     * a message a device sent, or is sending, so that its repetition is not
     * sent again.
     */
    "CREATE TABLE clientids ("
    " account TEXT NOT NULL,"
    " device_id TEXT NOT NULL COLLATE NOCASE,"
    " client_id TEXT NOT NULL," /* exactly as the device sent it */
    " at INTEGER NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0," /* 0: being sent, 1: sent */
    " PRIMARY KEY (account, device_id, client_id));"
    "CREATE INDEX clientids_at ON clientids (at);",
    /*
     * 10 -> 11: native mode's contacts, calendars and tasks: the DAV
     * collections of an account (ids from a per-account counter) and the
     * map of their items (ids from the collection's own counter, last_item),
     * each change numbered by the collection's sequence (seq).
     */
    "CREATE TABLE pim_colls ("
    " account TEXT NOT NULL,"
    " coll_id TEXT NOT NULL," /* "c1", "c2", ... */
    " href TEXT NOT NULL,"
    " kind INTEGER NOT NULL," /* 1 contacts, 2 calendar, 3 tasks */
    " name TEXT,"
    " is_default INTEGER NOT NULL DEFAULT 0,"
    " token TEXT," /* the sync-token or CTag; NULL: never refreshed */
    " seq INTEGER NOT NULL DEFAULT 0,"
    " pruned INTEGER NOT NULL DEFAULT 0,"
    " refreshed INTEGER NOT NULL DEFAULT 0,"
    " last_item INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, coll_id));"
    "CREATE UNIQUE INDEX pim_colls_href ON pim_colls (account, kind, href);"
    "CREATE TABLE pim_items ("
    " account TEXT NOT NULL,"
    " coll_id TEXT NOT NULL,"
    " item_id TEXT NOT NULL,"
    " href TEXT NOT NULL,"
    " etag TEXT," /* NULL: a tombstone */
    " seq INTEGER NOT NULL,"
    " added_seq INTEGER NOT NULL,"
    " start_at INTEGER NOT NULL DEFAULT 0,"
    " end_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account, coll_id, item_id));"
    "CREATE UNIQUE INDEX pim_items_href ON pim_items (account, coll_id, href);"
    "CREATE UNIQUE INDEX pim_items_seq ON pim_items (account, coll_id, seq);"
    "CREATE TABLE pim_counters ("
    " account TEXT NOT NULL PRIMARY KEY,"
    " last_id INTEGER NOT NULL DEFAULT 0);",
};

/* The open store. */
struct sqlite_store {
	struct abq_store sql; /* first: the shared layer's part */
	sqlite3 *db;
	char *path;
	char *wal_path;
	char *shm_path;
	const char *files[4];
};

/* A statement: SQLite's, and the rows its last exec wrote. */
struct sqlite_stmt {
	struct sql_stmt base; /* first */
	sqlite3_stmt *st;
};

SQL_BACKEND_VIEWS(struct sqlite_store, struct sqlite_stmt)

/* Fail with SQLite's own message, prefixed by what was being done. */
static int
db_fail(struct sqlite_store *s, const char *what, const char **errstr_r)
{
	return sql_fail(&s->sql, errstr_r, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- opening ----------------------------------------------------------- */

/*
 * The file named by the rest of the URL: "PATH" (relative to base_dir when
 * given) or "///ABS/PATH". Returns a new string, or NULL with *errstr_r set.
 */
static char *
url_path(const char *rest, const char *base_dir, const char **errstr_r)
{
	if (strncmp(rest, "//", 2) == 0) {
		if (rest[2] != '/') {
			*errstr_r = sql_open_error("store URL 'sqlite:%s' names a host; use "
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
		*errstr_r = sql_open_error("%s is not an abqd store", path);
		return -1;
	}
	if (id->version > ABQ_STORE_SCHEMA_VERSION) {
		*errstr_r = sql_open_error("%s has schema version %lld, newer than this abqd (%d); "
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
		*errstr_r = sql_open_error("cannot initialise %s: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if ((rc = read_identity(db, &id)) != SQLITE_OK) {
		*errstr_r = sql_open_error("cannot initialise %s: %s", path, sqlite3_errstr(rc));
		goto fail;
	}
	rc = judge_identity(path, &id, errstr_r);
	if (rc < 0)
		goto fail;
	for (v = id.version; v < ABQ_STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &err) != SQLITE_OK) {
			*errstr_r = sql_open_error("cannot upgrade %s to schema version %lld: %s",
			                           path, (long long)v + 1, err ? err : "?");
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
	*errstr_r = sql_open_error("cannot initialise %s: %s", path, sqlite3_errmsg(db));
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
			*errstr_r = sql_open_error("store %s is a folder, not a file", path);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		*errstr_r = sql_open_error("store %s: %s", path, strerror(errno));
		return -1;
	}
	if (!(flags & ABQ_STORE_CREATE)) {
		*errstr_r = sql_open_error("store %s does not exist; run 'abqctl init'", path);
		return -1;
	}
	slash = strrchr(path, '/');
	if (slash == NULL)
		return 0;
	dir = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		*errstr_r =
		    sql_open_error("cannot create store %s: folder %s does not exist", path, dir);
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
		*errstr_r = sql_open_error("cannot open store %s: %s", path,
		                           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (!(flags & ABQ_STORE_READONLY) && sqlite3_db_readonly(db, "main") == 1) {
		/* SQLite falls back to read-only on a file it cannot write. */
		*errstr_r = sql_open_error("store %s is not writable by this user", path);
		goto fail;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if ((rc = read_identity(db, &id)) != SQLITE_OK) {
		if (rc == SQLITE_NOTADB)
			*errstr_r = sql_open_error(
			    "%s is not an abqd store (file is not a database)", path);
		else
			*errstr_r =
			    sql_open_error("cannot read store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if ((judged = judge_identity(path, &id, errstr_r)) < 0)
		goto fail;
	if (judged == 0 && id.objects == 0 && !(flags & ABQ_STORE_CREATE)) {
		*errstr_r = sql_open_error("store %s is empty; run 'abqctl init'", path);
		goto fail;
	}
	if (judged == 0 && (flags & ABQ_STORE_READONLY)) {
		*errstr_r =
		    sql_open_error("store %s has schema version %lld and needs an upgrade to "
		                   "%d; open it read-write once",
		                   path, (long long)id.version, ABQ_STORE_SCHEMA_VERSION);
		goto fail;
	}
	if (!(flags & ABQ_STORE_READONLY) &&
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK) {
		*errstr_r = sql_open_error("cannot open store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (sqlite3_exec(db,
	                 "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
	                 "PRAGMA cache_size = -16384",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    ((flags & ABQ_STORE_READONLY) &&
	     sqlite3_exec(db, "PRAGMA query_only = ON", NULL, NULL, NULL) != SQLITE_OK)) {
		*errstr_r = sql_open_error("cannot open store %s: %s", path, sqlite3_errmsg(db));
		goto fail;
	}
	if (judged == 0 && migrate(db, path, errstr_r) < 0)
		goto fail;

	s = xcalloc(1, sizeof(*s));
	s->sql.drv = &sqlite_driver;
	s->db = db;
	s->path = path;
	s->wal_path = xasprintf("%s-wal", path);
	s->shm_path = xasprintf("%s-shm", path);
	s->files[0] = s->path;
	s->files[1] = s->wal_path;
	s->files[2] = s->shm_path;
	s->files[3] = NULL;
	s->sql.location = s->path;
	s->sql.files = s->files; /* the database file and its WAL companions */
	return &s->sql;
fail:
	sqlite3_close(db);
	free(path);
	return NULL;
}

/* Close: an open transaction is rolled back (the statements are finalized already). */
static void
sqlite_close(struct abq_store *db)
{
	struct sqlite_store *s = S(db);

	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s->path);
	free(s->wal_path);
	free(s->shm_path);
	free(s);
}

/* ---- the driver (store_sql.h) ----------------------------------------------- */

/* A statement; persistent ones are kept by the shared layer's cache. */
static struct sql_stmt *
sqlite_prepare(struct abq_store *db, const char *sql, bool persistent, const char **errstr_r)
{
	struct sqlite_stmt *st = xcalloc(1, sizeof(*st));

	if (sqlite3_prepare_v3(S(db)->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
	                       &st->st, NULL) != SQLITE_OK) {
		db_fail(S(db), "prepare", errstr_r);
		sqlite3_finalize(st->st);
		free(st);
		return NULL;
	}
	st->base.db = db;
	return &st->base;
}

static void
sqlite_finish(struct sql_stmt *st)
{
	sqlite3_finalize(ST(st)->st);
	free(st);
}

/* Bindings: 0 or -1 (SQLite's message stays on the connection). */
static int
sqlite_bind_int64(struct sql_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(ST(st)->st, i, v) == SQLITE_OK ? 0 : -1;
}

static int
sqlite_bind_text(struct sql_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(ST(st)->st, i, v, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

static int
sqlite_bind_blob(struct sql_stmt *st, int i, const void *v, size_t len)
{
	if (len > INT32_MAX)
		return -1;
	return sqlite3_bind_blob(ST(st)->st, i, v, (int)len, SQLITE_TRANSIENT) == SQLITE_OK ? 0
	                                                                                    : -1;
}

/*
 * Run a statement that returns no row and reset it. On failure the message
 * is taken before the reset, which would otherwise be free to replace it.
 */
static int
sqlite_exec(struct sql_stmt *st, int flags, size_t *changes_r, const char **errstr_r)
{
	struct sqlite_stmt *s = ST(st);
	int rc = sqlite3_step(s->st);

	(void)flags;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_fail(S(st->db), st->what, errstr_r);
		sqlite3_reset(s->st);
		return -1;
	}
	if (changes_r != NULL)
		*changes_r = (size_t)sqlite3_changes(S(st->db)->db);
	sqlite3_reset(s->st);
	return 0;
}

/* Step to the next row: 1, 0 at the end, -1 (the statement is reset then). */
static int
sqlite_next_row(struct sql_stmt *st, const char **errstr_r)
{
	int rc = sqlite3_step(ST(st)->st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	db_fail(S(st->db), st->what, errstr_r);
	sqlite3_reset(ST(st)->st);
	return -1;
}

static int64_t
sqlite_col_int64(struct sql_stmt *st, int c)
{
	return sqlite3_column_int64(ST(st)->st, c);
}

static const char *
sqlite_col_text(struct sql_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(ST(st)->st, c);
}

/* A blob column; SQLite gives NULL for an empty one, which is "". */
static const void *
sqlite_col_blob(struct sql_stmt *st, int c, size_t *len_r)
{
	const void *b = sqlite3_column_blob(ST(st)->st, c);
	int n = sqlite3_column_bytes(ST(st)->st, c);

	*len_r = n > 0 ? (size_t)n : 0;
	return b != NULL ? b : "";
}

static void
sqlite_reset(struct sql_stmt *st)
{
	sqlite3_reset(ST(st)->st);
}

/*
 * BEGIN IMMEDIATE takes the write lock now (whatever write_lock says: SQLite
 * has no other kind of write transaction): a second writer waits here, up to
 * the busy timeout, rather than failing later at its first write.
 */
static int
sqlite_begin(struct abq_store *db, bool write_lock, const char **errstr_r)
{
	(void)write_lock;
	if (!sqlite3_get_autocommit(S(db)->db))
		return sql_fail(db, errstr_r, "begin: a transaction is already open");
	if (sqlite3_exec(S(db)->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(S(db), "begin", errstr_r);
	return 0;
}

/* Commit; on failure the transaction stays open for the caller to roll back. */
static int
sqlite_commit(struct abq_store *db, const char **errstr_r)
{
	if (sqlite3_get_autocommit(S(db)->db))
		return sql_fail(db, errstr_r, "commit: no transaction is open");
	if (sqlite3_exec(S(db)->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(S(db), "commit", errstr_r);
	return 0;
}

/* Roll back if a transaction is open (SQLite may have ended it after an error). */
static void
sqlite_rollback(struct abq_store *db)
{
	if (!sqlite3_get_autocommit(S(db)->db))
		sqlite3_exec(S(db)->db, "ROLLBACK", NULL, NULL, NULL);
}

static bool
sqlite_in_tx(struct abq_store *db)
{
	return !sqlite3_get_autocommit(S(db)->db);
}

/* The shared SQL's key columns are this schema's NOCASE columns. */
static const char *const sqlite_renames[] = {
    "device_key", "device_id", "account_key", "coalesce(account, '')", "name_key", "name",
    "locale_key", "locale",    NULL,
};

static const struct sql_dialect sqlite_dialect = {'?', true, sqlite_renames};

const struct sql_driver sqlite_driver = {
    .dialect = &sqlite_dialect,
    SQL_DRIVER_FUNCS(sqlite),
    /* sqlite_sequence remembers the highest seq even after old rows are pruned. */
    .change_last_sql = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = "
                       "'changes'), 0), coalesce((SELECT max(seq) FROM changes), 0))",
};
