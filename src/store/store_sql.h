/*
 * store_sql.h: the thin SQL driver under the store (internal to src/store).
 *
 * The store's operations (store.c) are written once, in one SQL, over the
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
 * Values bound as keys are lower-cased first.
 */
#ifndef ABQ_STORE_SQL_H
#define ABQ_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A statement; each driver's begins with this. */
struct sql_stmt {
	struct abq_store *db;
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

/* Slots of the statement cache: about twice the shared SQL's statements. */
#define SQL_STMT_SLOTS 128

/*
 * The open store, as store.h's callers hold it: each driver's handle begins
 * with this. The statement cache is keyed by the address of the shared SQL
 * (each operation's static string), by open addressing.
 */
struct abq_store {
	const struct sql_driver *drv;
	struct {
		const char *sql;
		struct sql_stmt *st;
	} stmts[SQL_STMT_SLOTS];
	const char *location;     /* printable: a file path, a URL without its password */
	const char *const *files; /* the files of the store (for chown), NULL-terminated */
	char errbuf[1024];        /* the last error message, handed out through errstr_r */
};

/* A change listener (store.h); each driver's begins with this. */
struct abq_store_listener {
	const struct sql_driver *drv;
};

/*
 * The driver. Every call returns 0 (or a count, or 1/0 for a row) on success
 * and -1 with the database's message in the store's error buffer.
 */
struct sql_driver {
	const char *name; /* abq_store_backend(): "sqlite" */
	const struct sql_dialect *dialect;
	/* Open the store of url (without the scheme for SQLite); see abq_store_open. */
	struct abq_store *(*open)(const char *url, const char *base_dir, int flags,
	                          const char **errstr_r);
	/* A statement of SQL already in the backend's dialect; persistent: reused. */
	struct sql_stmt *(*prepare)(struct abq_store *db, const char *sql, bool persistent,
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
	int (*begin)(struct abq_store *db, bool write_lock, const char **errstr_r);
	int (*commit)(struct abq_store *db, const char **errstr_r);
	void (*rollback)(struct abq_store *db);
	bool (*in_tx)(struct abq_store *db);
	/* Everything of the connection (the cached statements are finished already). */
	void (*close)(struct abq_store *db);
	/* The SQL of abq_store_change_last: where the highest seq is kept. */
	const char *change_last_sql;

	/*
	 * Optional, NULL when the backend has none. A change-log number written
	 * in the open transaction (for the notice sent at commit); the next
	 * history id reserved ahead in the open transaction (1 with *id_r, 0:
	 * the insert then returns its id); store.h's several nodes (no listener,
	 * the lock always held, always connected) and the end of a restore.
	 */
	void (*change_written)(struct abq_store *db, int64_t seq);
	int (*reserve_history_id)(struct abq_store *db, int64_t *id_r, const char **errstr_r);
	struct abq_store_listener *(*listener_new)(struct abq_store *db, const char **errstr_r);
	int (*listener_connect)(struct abq_store_listener *l, const char **errstr_r);
	int (*listener_fd)(const struct abq_store_listener *l);
	int (*listener_read)(struct abq_store_listener *l, int64_t *seq_r, const char **errstr_r);
	void (*listener_free)(struct abq_store_listener *l);
	int (*try_lock)(struct abq_store *db, int64_t key, const char **errstr_r);
	bool (*connected)(const struct abq_store *db);
	int (*restore_finish)(struct abq_store *db, const char **errstr_r);
};

extern const struct sql_driver sqlite_driver;
extern const struct sql_driver pgsql_driver;

/* The driver functions of a backend named by their prefix (sqlite_prepare, ...). */
#define SQL_DRIVER_FUNCS(P)                                                                        \
	.name = #P, .open = P##_open, .prepare = P##_prepare, .finish = P##_finish,                \
	.bind_int64 = P##_bind_int64, .bind_text = P##_bind_text, .bind_blob = P##_bind_blob,      \
	.exec = P##_exec, .next_row = P##_next_row, .col_int64 = P##_col_int64,                    \
	.col_text = P##_col_text, .col_blob = P##_col_blob, .reset = P##_reset,                    \
	.begin = P##_begin, .commit = P##_commit, .rollback = P##_rollback, .in_tx = P##_in_tx,    \
	.close = P##_close

/* A backend's views of a handle and of a statement: S(db) and ST(st). */
#define SQL_BACKEND_VIEWS(STORE, STMT)                                                             \
	static STORE *S(const struct abq_store *db)                                                \
	{                                                                                          \
		return (STORE *)(void *)db;                                                        \
	}                                                                                          \
	static STMT *ST(struct sql_stmt *st)                                                       \
	{                                                                                          \
		return (STMT *)(void *)st;                                                         \
	}

/* Set the store's error message from a printf format; returns -1. */
int sql_fail(struct abq_store *db, const char **errstr_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fold a message to one line (newlines and tabs to spaces, no trailing space). */
void sql_one_line(char *m);
/* An open error (no store to hold it yet), on one line: a per-thread buffer. */
const char *sql_open_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
