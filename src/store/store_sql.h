/*
 * store_sql.h: the thin SQL driver under the store (internal to src/store).
 *
 * The store's operations (store_sql.c) are written once, in one SQL, over the
 * small table of struct sql_driver; each backend (store_sqlite.c,
 * store_pgsql.c) implements the table for its library and keeps only what is
 * its own: connecting, its migrations, its transactions and specialities.
 *
 * The shared SQL is written with numbered parameters (?1, ?2, ...) and with
 * the key columns of the PostgreSQL schema (device_key, account_key,
 * name_key, locale_key: the case-folded copies of DeviceIds, attribute names
 * and template locales); upserts are written "INSERT INTO t (cols) VALUES
 * (...) ON CONFLICT (keys) DO REPLACE". sql_dialect() turns that into the
 * backend's SQL once per statement (struct sql_dialect says how).
 *
 * Bindings: a parameter keeps its value until it is bound again (a reset does
 * not clear it), so that an iteration rebinds only its continuation key.
 * Values bound as keys (sql_bind_key) are lower-cased first.
 */
#ifndef ABQ_STORE_SQL_H
#define ABQ_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_private.h"

struct sql_db;

/* A statement; each driver's begins with this. */
struct sql_stmt {
	struct sql_db *db;
	const char *what; /* the operation, for error messages */
};

/* How the shared SQL becomes the backend's. */
struct sql_dialect {
	char placeholder;           /* '?' (kept) or '$' (?N becomes $N) */
	bool upsert_replace;        /* "INSERT OR REPLACE" instead of ON CONFLICT ... DO UPDATE */
	const char *const *renames; /* pairs of words to replace (key columns), NULL-ended */
};

/* exec flags. */
#define SQL_DEFER 0x1 /* the driver may send the write now and read its result later */

/*
 * The driver. Every call returns 0 (or a count, or 1/0 for a row) on success
 * and -1 with the database's message in the store's error buffer.
 */
struct sql_driver {
	const struct sql_dialect *dialect;
	/* A statement of SQL already in the backend's dialect; persistent: reused. */
	struct sql_stmt *(*prepare)(struct sql_db *db, const char *sql, bool persistent,
	                            const char **errstr_r);
	void (*finish)(struct sql_stmt *st);
	/* Bind parameter i (1-based); text NULL is SQL NULL; the value is copied. */
	int (*bind_int64)(struct sql_stmt *st, int i, int64_t v);
	int (*bind_text)(struct sql_stmt *st, int i, const char *v);
	int (*bind_blob)(struct sql_stmt *st, int i, const void *v, size_t len);
	/* Run a statement that returns no row; *changes_r (may be NULL): rows written. */
	int (*exec)(struct sql_stmt *st, int flags, size_t *changes_r, const char **errstr_r);
	/* Run (at the first call) and go to the next row: 1, 0 at the end, or -1. */
	int (*next_row)(struct sql_stmt *st, const char **errstr_r);
	/*
	 * Column getters of the current row (0-based): NULL text for SQL NULL, 0
	 * for a NULL integer; a blob is never NULL but when it cannot be read.
	 */
	int64_t (*col_int64)(struct sql_stmt *st, int c);
	const char *(*col_text)(struct sql_stmt *st, int c);
	const void *(*col_blob)(struct sql_stmt *st, int c, size_t *len_r);
	/* Forget the result (keep the bindings) for the statement's next run. */
	void (*reset)(struct sql_stmt *st);

	/* Transactions; write_lock: serialise with the other writers at once. */
	int (*begin)(struct sql_db *db, bool write_lock, const char **errstr_r);
	int (*commit)(struct sql_db *db, const char **errstr_r);
	void (*rollback)(struct sql_db *db);
	bool (*in_tx)(struct sql_db *db);
	/* The SQL of what differs beyond the dialect (see store_sql.c). */
	const char *change_last_sql;
	/*
	 * Optional. A change-log number written in the open transaction (for the
	 * notice sent at commit); the next history id reserved ahead in the open
	 * transaction (1 with *id_r, 0 when the driver has none: the insert then
	 * returns its id). close: everything of the connection.
	 */
	void (*change_written)(struct sql_db *db, int64_t seq);
	int (*reserve_history_id)(struct sql_db *db, int64_t *id_r, const char **errstr_r);
	void (*close)(struct sql_db *db);
};

/* The cached statements of the shared operations. */
enum sql_stmt_id {
	SQ_DEVICE_GET,
	SQ_DEVICE_PUT,
	SQ_DEVICE_DELETE_ALL,
	SQ_DEVICE_DELETE_ONE,
	SQ_DEVICE_COUNT,
	SQ_DEVICE_COUNT_ALL,
	SQ_DEVICE_TOUCH,
	SQ_ENTRY_GET,
	SQ_ENTRY_PUT,
	SQ_ENTRY_DELETE_ALL,
	SQ_ENTRY_DELETE_ALONE,
	SQ_ENTRY_DELETE_ONE,
	SQ_RULE_INSERT,
	SQ_RULE_UPDATE,
	SQ_RULE_GET,
	SQ_RULE_DELETE,
	SQ_ATTR_GET,
	SQ_ATTR_PUT,
	SQ_ATTR_DELETE,
	SQ_HISTORY_ADD,
	SQ_HISTORY_ADD_ID,
	SQ_CHANGE_ADD,
	SQ_CHANGE_LAST,
	SQ_NOTICE_ADD,
	SQ_NOTICE_MARK,
	SQ_NOTICE_STATS,
	SQ_TEMPLATE_GET,
	SQ_TEMPLATE_PUT,
	SQ_TEMPLATE_DELETE,
	SQ_SYNCSTATE_GET,
	SQ_SYNCSTATE_PUT,
	SQ_SYNCSTATE_DELETE_ONE,
	SQ_SYNCSTATE_DELETE_DEVICE,
	SQ_SYNCSTATE_DELETE_DEVID,
	SQ_SYNCSTATE_DELETE_DEVID_ACCOUNT,
	SQ_ADMIN_GET,
	SQ_ADMIN_PUT,
	SQ_ADMIN_DELETE,
	SQ_TOKEN_ADD,
	SQ_TOKEN_FIND,
	SQ_TOKEN_TOUCH,
	SQ_TOKEN_DELETE_ADMIN,
	SQ_TOKEN_DELETE_LABEL,
	SQ_TOKEN_COUNT,
	SQ_TOKEN_COUNT_ALL,
	SQ_META_GET,
	SQ_COUNT
};

/* The open store of an SQL backend: each backend's struct begins with this. */
struct sql_db {
	struct abq_store_base base; /* first: store.c finds the ops here */
	const struct sql_driver *drv;
	struct sql_stmt *stmt[SQ_COUNT];
	const char *location;     /* printable: a file path, a URL without its password */
	const char *const *files; /* the files of the store (for chown), NULL-terminated */
	char errbuf[1024];        /* the last error message, handed out through errstr_r */
};

/*
 * What each backend exports for its ops table (store_sql.c holds both tables,
 * the shared operations filled in once): open; the
 * PostgreSQL backend also its listener, lock, connection state and counters.
 */
struct abq_store *sqlite_open(const char *rest, const char *base_dir, int flags,
                              const char **errstr_r);
struct abq_store *pgsql_open(const char *url, const char *base_dir, int flags,
                             const char **errstr_r);
struct abq_store_listener *pgsql_listener_new(struct abq_store *s, const char **errstr_r);
int pgsql_listener_connect(struct abq_store_listener *l, const char **errstr_r);
int pgsql_listener_fd(const struct abq_store_listener *l);
int pgsql_listener_read(struct abq_store_listener *l, int64_t *seq_r, const char **errstr_r);
void pgsql_listener_free(struct abq_store_listener *l);
int pgsql_try_lock(struct abq_store *s, int64_t key, const char **errstr_r);
bool pgsql_connected(const struct abq_store *s);
int pgsql_restore_finish(struct abq_store *s, const char **errstr_r);

/* The driver functions of a backend named by their prefix (sqlite_prepare, ...). */
#define SQL_DRIVER_FUNCS(P)                                                                        \
	.prepare = P##_prepare, .finish = P##_finish, .bind_int64 = P##_bind_int64,                \
	.bind_text = P##_bind_text, .bind_blob = P##_bind_blob, .exec = P##_exec,                  \
	.next_row = P##_next_row, .col_int64 = P##_col_int64, .col_text = P##_col_text,            \
	.col_blob = P##_col_blob, .reset = P##_reset, .begin = P##_begin, .commit = P##_commit,    \
	.rollback = P##_rollback, .in_tx = P##_in_tx, .close = P##_close

/* A backend's views of a handle and of a statement: S(db) and ST(st). */
#define SQL_BACKEND_VIEWS(STORE, STMT)                                                             \
	static STORE *S(struct sql_db *db)                                                         \
	{                                                                                          \
		return (STORE *)(void *)db;                                                        \
	}                                                                                          \
	static STMT *ST(struct sql_stmt *st)                                                       \
	{                                                                                          \
		return (STMT *)(void *)st;                                                         \
	}

/* Set the store's error message from a printf format; returns -1. */
int sql_fail(struct sql_db *db, const char **errstr_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The shared SQL in the driver's dialect: a new string. */
char *sql_dialect(const struct sql_dialect *d, const char *sql);
/* Set up a new store handle (after the backend filled in its connection). */
void sql_db_init(struct sql_db *db, const struct abq_store_ops *ops, const struct sql_driver *drv);
/* Finalize the cached statements (before the backend closes its connection). */
void sql_db_finish(struct sql_db *db);
/* Fold a message to one line (newlines and tabs to spaces, no trailing space). */
void sql_one_line(char *m);
/* An open error (no store to hold it yet), on one line: a per-thread buffer. */
const char *sql_open_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
