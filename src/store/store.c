/*
 * store.c: the store's operations, written once over the SQL driver.
 *
 * Every abq_store_* function of store.h is defined here, whole: its argument
 * checks (a NULL key is an error with a message, never a crash), the
 * test-time fault injection, and its SQL (see store_sql.h for its
 * conventions), with rows read into records by field tables (column -> struct
 * offset and type) rather than a reader per record. The drivers
 * (store_sqlite.c, store_pgsql.c) never see a NULL store, a NULL errstr_r or a
 * missing key; what only one of them has (listeners, locks, the end of a
 * restore) is an optional member of struct sql_driver.
 *
 * Statements of the point operations (get, put, delete, add) are prepared once
 * per handle and cached, keyed by the address of their SQL (a static string
 * of the operation). Iteration reads in batches of ITER_BATCH rows with a
 * statement private to that iteration (keyset pagination: each batch starts
 * after the key of the previous batch's last row, parameters ?1..?k). The
 * statement is reset before the callbacks of a batch run, so no read is
 * pending while a callback works: a callback may write to the store, open and
 * commit a transaction, or start another iteration, and the iteration goes on
 * after the last key it delivered. A row a callback inserts or moves ahead of
 * that key is seen later in the same iteration; one behind it is not.
 *
 * Fault injection: when the environment variable ABQ_STORE_FAULT is set to N,
 * the N-th write call (put, delete, insert, update, add, touch, commit) made in
 * this process after the variable took that value fails with "injected fault"
 * without reaching the driver. The count starts again whenever the value
 * changes, so a test may set it, run, unset it, and set it again.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_sql.h"

/* The column lists of the tables, in the order of the records' field tables. */
#define DEVICE_COLS                                                                                \
	"account, device_id, device_type, model, imei, friendly_name, os, os_language, "           \
	"phone_number, mobile_operator, user_agent, eas_version, last_address, last_command, "     \
	"first_seen, last_seen, state, reason, rule_id, state_by, state_at, wipe, "                \
	"wipe_account_only, wipe_by, wipe_at, wipe_acked_at, provision_status"
#define ENTRY_COLS "device_id, account, state, created_by, created_at"
#define RULE_COLS                                                                                  \
	"id, characteristic, match, pattern, level, rule_order, domain, created_by, created_at"
#define ATTR_COLS    "scope, target, name, value, set_by, set_at"
#define HISTORY_COLS "id, at, who, what, subject, old_value, new_value, reason, device_id, account"
#define CHANGE_COLS  "seq, at, kind, key"
#define NOTICE_COLS                                                                                \
	"id, recipient, kind, account, device_id, template_ref, rendered, state, attempts, "       \
	"next_attempt, last_error, created, sent"
#define TEMPLATE_COLS                                                                              \
	"scope, domain, kind, locale, from_addr, reply_to, subject, body_plain, body_html, "       \
	"set_by, set_at"
#define ADMIN_COLS          "name, password_hash, created_by, created_at, password_at, last_login"
#define SYNCSTATE_COLS      "account, device_id, collection, state, updated"
#define TOKEN_COLS          "id, admin, label, hash, created_by, created_at, last_used"
#define LOGGER_COLS         "id, account, device_id, file, until_at, created_by, created_at"
#define FOLDER_COLS         "account, folder_id, mailbox, mailbox_id, uidvalidity, parent_id, created"
#define FOLDER_COUNTER_COLS "account, last_id"
#define PIM_COLL_COLS                                                                              \
	"account, coll_id, href, kind, name, is_default, token, seq, pruned, refreshed, last_item"
#define PIM_ITEM_COLS "account, coll_id, item_id, href, etag, seq, added_seq, start_at, end_at"

#define ITER_BATCH  256
#define STR(x)      #x
#define XSTR(x)     STR(x)
#define BATCH_LIMIT " LIMIT " XSTR(ITER_BATCH)

/* ---- argument checks and fault injection ---------------------------------- */

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

/* A result pointer the caller may pass NULL for: a local stands in. */
#define OPTIONAL(type, p)                                                                          \
	type p##_dummy_;                                                                           \
	if ((p) == NULL)                                                                           \
	(p) = &p##_dummy_

/*
 * The prologue of every operation (whose parameter is errstr_r): errstr_r may
 * be NULL (the caller does not want the message), the store may not.
 */
#define CHECK_STORE(s)                                                                             \
	OPTIONAL(const char *, errstr_r);                                                          \
	REQUIRE((s) != NULL, "no store is open")

/* Fail the operation with a static message unless ok. */
#define REQUIRE(ok, msg)                                                                           \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			*errstr_r = (msg);                                                         \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

/* A write call: the fault injection may fail it here, before the driver. */
#define WRITE_CALL()                                                                               \
	do {                                                                                       \
		if (fault_now(errstr_r))                                                           \
			return -1;                                                                 \
	} while (0)

/* The operation's name in messages: "device_get" in abq_store_device_get. */
#define WHAT (__func__ + sizeof("abq_store_") - 1)

/* A key must be present and non-empty. */
static bool
key_ok(const char *k)
{
	return k != NULL && *k != '\0';
}

/* An optional key may be absent (NULL), but not empty. */
static bool
opt_ok(const char *k)
{
	return k == NULL || *k != '\0';
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

/* ---- errors and the dialect ---------------------------------------------- */

int
sql_fail(struct abq_store *db, const char **errstr_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(db->errbuf, sizeof(db->errbuf), fmt, ap);
	va_end(ap);
	*errstr_r = db->errbuf;
	return -1;
}

/* Fold a message to one line: newlines and tabs become spaces, the end is trimmed. */
void
sql_one_line(char *m)
{
	size_t n;

	for (char *p = m; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	n = strlen(m);
	while (n > 0 && m[n - 1] == ' ')
		m[--n] = '\0';
}

/* Open errors have no store to live in: they go to a per-thread buffer. */
static _Thread_local char open_errbuf[1024];

const char *
sql_open_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_errbuf, sizeof(open_errbuf), fmt, ap);
	va_end(ap);
	sql_one_line(open_errbuf);
	return open_errbuf;
}

/* Whether c may be part of an SQL word. */
static bool
word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/*
 * Expand "INSERT INTO t (cols) VALUES (...) ON CONFLICT (keys) DO REPLACE":
 * INSERT OR REPLACE, or DO UPDATE SET of every column not named in keys.
 */
static char *
expand_upsert(const struct sql_dialect *d, const char *sql)
{
	const char *on = strstr(sql, " ON CONFLICT ("), *cols, *end, *keys, *kend, *p;
	char *out, *ins;
	bool first = true;

	if (on == NULL || strstr(on, " DO REPLACE") == NULL)
		return xstrdup(sql);
	if (d->upsert_replace) {
		out = xasprintf("INSERT OR REPLACE%.*s", (int)(on - sql - 6), sql + 6);
		return out;
	}
	cols = strchr(sql, '(') + 1;
	end = strchr(cols, ')');
	keys = on + 14;
	kend = strchr(keys, ')');
	out = xasprintf("%.*s DO UPDATE SET", (int)(kend + 1 - sql), sql);
	for (p = cols; p < end;) {
		const char *w = p;
		size_t n;
		bool key = false;

		while (w < end && !word_char(*w))
			w++;
		for (n = 0; w + n < end && word_char(w[n]); n++)
			;
		p = w + n;
		if (n == 0)
			break;
		for (const char *k = keys; k < kend; k++)
			if ((k == keys || !word_char(k[-1])) && strncmp(k, w, n) == 0 &&
			    !word_char(k[n]))
				key = true;
		if (key)
			continue;
		ins = xasprintf("%s%s %.*s = EXCLUDED.%.*s", out, first ? "" : ",", (int)n, w,
		                (int)n, w);
		free(out);
		out = ins;
		first = false;
	}
	return out;
}

/* The shared SQL in the driver's dialect: a new string. */
static char *
sql_dialect(const struct sql_dialect *d, const char *sql)
{
	char *up = expand_upsert(d, sql), *out = xmalloc(strlen(up) * 2 + 64);
	size_t o = 0;
	bool quoted = false;

	for (const char *p = up; *p;) {
		const char *const *r;

		if (*p == '\'')
			quoted = !quoted;
		if (!quoted && *p == '?' && d->placeholder != '?') {
			out[o++] = d->placeholder;
			p++;
			continue;
		}
		if (!quoted && word_char(*p) && (p == up || !word_char(p[-1])) && d->renames) {
			for (r = d->renames; *r; r += 2) {
				size_t n = strlen(r[0]);

				if (strncmp(p, r[0], n) == 0 && !word_char(p[n]))
					break;
			}
			if (*r) {
				size_t m = strlen(r[1]);

				out = xrealloc(out, o + m + strlen(p) * 2 + 64);
				memcpy(out + o, r[1], m);
				o += m;
				p += strlen(r[0]);
				continue;
			}
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	free(up);
	return out;
}

/* ---- statements ----------------------------------------------------------- */

/* Finish the cached statements (before the driver closes its connection). */
static void
stmts_finish(struct abq_store *db)
{
	for (size_t i = 0; i < SQL_STMT_SLOTS; i++)
		if (db->stmts[i].st != NULL)
			db->drv->finish(db->stmts[i].st);
	memset(db->stmts, 0, sizeof(db->stmts));
}

/*
 * The cached statement of sql (shared SQL: a static string, known by its
 * address), prepared in the driver's dialect at first use, labelled what.
 */
static struct sql_stmt *
stmt_get(struct abq_store *db, const char *sql, const char *what, const char **errstr_r)
{
	size_t i = (size_t)(((uintptr_t)sql >> 3) * 2654435761u) % SQL_STMT_SLOTS, n = 0;

	for (; db->stmts[i].sql != sql; i = (i + 1) % SQL_STMT_SLOTS) {
		if (n++ == SQL_STMT_SLOTS)
			return sql_fail(db, errstr_r, "%s: too many statements", what), NULL;
		if (db->stmts[i].sql == NULL) {
			char *d = sql_dialect(db->drv->dialect, sql);

			db->stmts[i].st = db->drv->prepare(db, d, true, errstr_r);
			free(d);
			if (db->stmts[i].st == NULL)
				return NULL;
			db->stmts[i].sql = sql;
			break;
		}
	}
	db->stmts[i].st->what = what;
	return db->stmts[i].st;
}

/* A statement private to one call (an iteration, a restore), in the dialect. */
static struct sql_stmt *
stmt_new(struct abq_store *db, const char *shared_sql, const char *what, const char **errstr_r)
{
	char *sql = sql_dialect(db->drv->dialect, shared_sql);
	struct sql_stmt *st = db->drv->prepare(db, sql, false, errstr_r);

	free(sql);
	if (st != NULL)
		st->what = what;
	return st;
}

/* Binding helpers: 0 or -1, to chain with ||. */
static int
bt(struct sql_stmt *st, int i, const char *v)
{
	return st->db->drv->bind_text(st, i, v);
}

static int
bi(struct sql_stmt *st, int i, int64_t v)
{
	return st->db->drv->bind_int64(st, i, v);
}

/* A key compared without (ASCII) case: bound lower-cased. */
static int
bk(struct sql_stmt *st, int i, const char *v)
{
	char *low = v ? str_lower(xstrdup(v)) : NULL;
	int rc = bt(st, i, low);

	free(low);
	return rc;
}

/* Fail a statement whose binding failed (the driver set no message). */
static int
bind_fail(struct sql_stmt *st, const char **errstr_r)
{
	st->db->drv->reset(st);
	return sql_fail(st->db, errstr_r, "%s: cannot bind a parameter", st->what);
}

/*
 * Run a write after its parameters were bound (bind_rc 0). flags SQL_DEFER
 * when no count is wanted; *count_r (may be NULL) gets the rows written.
 */
static int
write_bound(struct sql_stmt *st, int bind_rc, int flags, size_t *count_r, const char **errstr_r)
{
	if (bind_rc != 0)
		return bind_fail(st, errstr_r);
	return st->db->drv->exec(st, count_r ? 0 : flags, count_r, errstr_r);
}

/* Run a statement whose one row holds integers (an id, a count) into v[0..n-1]. */
static int
ints_bound(struct sql_stmt *st, int bind_rc, int64_t *v, int n, const char **errstr_r)
{
	const struct sql_driver *drv = st->db->drv;
	int rc;

	if (bind_rc != 0)
		return bind_fail(st, errstr_r);
	rc = drv->next_row(st, errstr_r);
	if (rc == 0)
		sql_fail(st->db, errstr_r, "%s: no row returned", st->what);
	for (int i = 0; rc > 0 && i < n; i++)
		v[i] = drv->col_int64(st, i);
	drv->reset(st);
	return rc > 0 ? 0 : -1;
}

/* ---- the field reader ------------------------------------------------------ */

/* The type of a column, as the record holds it. */
enum sql_ftype {
	F_STR,    /* char *, NULL for SQL NULL */
	F_I64,    /* int64_t */
	F_INT,    /* int */
	F_BOOL,   /* bool, stored 0 or 1 */
	F_STATE,  /* enum abq_state, by name, NULL: NONE */
	F_REASON, /* enum abq_reason, by name, NULL: NONE */
	F_CHARAC, /* enum abq_charac, by name */
	F_MATCH,  /* enum abq_match, by name */
	F_SCOPE,  /* enum abq_scope, by name; first in its table */
	F_TARGET, /* char *, NULL when the record's scope is global (stored '') */
	F_KIND,   /* enum abq_change_kind, by name */
	F_BLOB,   /* void * (NUL-terminated copy), its length in the next field */
	F_LEN,    /* size_t, the length of the F_BLOB before it (not a column) */
};

/* One column: its type and where it goes in the record. */
struct sql_field {
	enum sql_ftype type;
	size_t off;
};

/* A generic callback pointer, cast back to its real type by sql_kind.call. */
typedef void (*any_cb)(void);

/* Flags of a continuation key's field (sql_kind.key). */
#define K_FIELD 0x0f /* the field's index */
#define K_LOWER 0x10 /* compared without case: bound lower-cased */
#define K_RANK  0x20 /* the field's rank: a scope's order, or 1 for a NULL string */
#define K_KEY   0x40 /* (set by bind_key) a NULL string is bound '' */

/*
 * A kind of record: its size, its columns in select (and insert) order, its
 * name for messages and destructor, how to call an iteration's callback with
 * it, and the fields of its continuation key (the ORDER BY of its iteration).
 */
struct sql_kind {
	const char *noun;
	size_t size;
	const struct sql_field *fields;
	size_t n;
	void (*clear)(void *);
	int (*call)(any_cb, void *, const void *);
	unsigned char key[4];
	int nkeys;
};

/* The stored names of the change-log kinds. */
static const char *const change_kind_names[] = {
    [ABQ_CHANGE_DEVICE] = "device",     [ABQ_CHANGE_ENTRY] = "entry",
    [ABQ_CHANGE_RULE] = "rule",         [ABQ_CHANGE_ATTR] = "attr",
    [ABQ_CHANGE_TEMPLATE] = "template", [ABQ_CHANGE_LOGGER] = "logger",
};

/* Parse a change kind's stored name. */
static int
kind_parse(const char *t, int *out)
{
	for (int k = ABQ_CHANGE_DEVICE; k <= ABQ_CHANGE_LOGGER; k++)
		if (strcmp(t, change_kind_names[k]) == 0) {
			*out = k;
			return 0;
		}
	return -1;
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

/* Whether a record with a scope (its first field) is global. */
static bool
rec_global(const struct sql_kind *k, const void *rec)
{
	return k->fields[0].type == F_SCOPE &&
	       *(const enum abq_scope *)(const void *)((const char *)rec + k->fields[0].off) ==
	           ABQ_SCOPE_GLOBAL;
}

/*
 * Read the current row into a clear record by the kind's field table. A
 * name the store does not know is a corrupt store; the caller clears the
 * record then.
 */
static int
read_row(struct sql_stmt *st, const struct sql_kind *rd, void *rec, const char **errstr_r)
{
	const struct sql_driver *drv = st->db->drv;
	char *base = rec;
	int c = 0; /* the column */

	for (size_t i = 0; i < rd->n; i++, c++) {
		const struct sql_field *f = &rd->fields[i];
		const char *t =
		    f->type == F_I64 || f->type == F_INT || f->type == F_BOOL || f->type == F_BLOB
		        ? NULL
		        : drv->col_text(st, c);
		void *p = base + f->off;
		long long id = rd->fields[0].type == F_I64 ? *(int64_t *)(void *)base : 0;
		size_t len;
		const void *blob;
		int v = 0;

		switch (f->type) {
		case F_STR:
		case F_TARGET:
			*(char **)p =
			    f->type == F_TARGET && rec_global(rd, rec) ? NULL : xstrdup_null(t);
			break;
		case F_I64:
			*(int64_t *)p = drv->col_int64(st, c);
			break;
		case F_INT:
			*(int *)p = (int)drv->col_int64(st, c);
			break;
		case F_BOOL:
			*(bool *)p = drv->col_int64(st, c) != 0;
			break;
		case F_STATE:
			if (t != NULL && abq_state_parse(t, true, p) < 0)
				return sql_fail(st->db, errstr_r, "unknown state '%s' in the store",
				                t);
			if (t == NULL)
				*(enum abq_state *)p = ABQ_STATE_NONE;
			break;
		case F_REASON:
			if (t != NULL && abq_reason_parse(t, p) < 0)
				return sql_fail(st->db, errstr_r,
				                "unknown reason '%s' in the store", t);
			if (t == NULL)
				*(enum abq_reason *)p = ABQ_REASON_NONE;
			break;
		case F_CHARAC:
			if (t == NULL || abq_charac_parse(t, p) < 0)
				return sql_fail(st->db, errstr_r,
				                "%s %lld: unknown characteristic in the store",
				                rd->noun, id);
			break;
		case F_MATCH:
			if (t == NULL || abq_match_parse(t, p) < 0)
				return sql_fail(st->db, errstr_r,
				                "%s %lld: unknown match in the store", rd->noun,
				                id);
			break;
		case F_SCOPE:
			if (t == NULL || abq_scope_parse(t, p) < 0)
				return sql_fail(st->db, errstr_r, "unknown %s scope in the store",
				                rd->noun);
			break;
		case F_KIND:
			if (t == NULL || kind_parse(t, &v) < 0)
				return sql_fail(st->db, errstr_r,
				                "%s %lld: unknown kind in the store", rd->noun, id);
			*(enum abq_change_kind *)p = (enum abq_change_kind)v;
			break;
		case F_BLOB:
			if ((blob = drv->col_blob(st, c, &len)) == NULL)
				return sql_fail(st->db, errstr_r, "%s: cannot read a state",
				                st->what);
			*(void **)p = xmalloc(len + 1);
			if (len > 0)
				memcpy(*(void **)p, blob, len);
			((char *)*(void **)p)[len] = '\0';
			*(size_t *)(void *)(base + rd->fields[i + 1].off) = len;
			break;
		case F_LEN: /* not a column */
			c--;
			break;
		}
	}
	return 0;
}

#define FIELD(T, type, m)                                                                          \
	{                                                                                          \
		type, offsetof(T, m)                                                               \
	}
#define DV(type, m) FIELD(struct abq_device, type, m)
static const struct sql_field device_fields[] = {
    DV(F_STR, account),
    DV(F_STR, device_id),
    DV(F_STR, device_type),
    DV(F_STR, model),
    DV(F_STR, imei),
    DV(F_STR, friendly_name),
    DV(F_STR, os),
    DV(F_STR, os_language),
    DV(F_STR, phone_number),
    DV(F_STR, mobile_operator),
    DV(F_STR, user_agent),
    DV(F_STR, eas_version),
    DV(F_STR, last_address),
    DV(F_STR, last_command),
    DV(F_I64, first_seen),
    DV(F_I64, last_seen),
    DV(F_STATE, state),
    DV(F_REASON, reason),
    DV(F_I64, rule_id),
    DV(F_STR, state_by),
    DV(F_I64, state_at),
    DV(F_INT, wipe),
    DV(F_BOOL, wipe_account_only),
    DV(F_STR, wipe_by),
    DV(F_I64, wipe_at),
    DV(F_I64, wipe_acked_at),
    DV(F_INT, provision_status),
};
#define EN(type, m) FIELD(struct abq_entry, type, m)
static const struct sql_field entry_fields[] = {
    EN(F_STR, device_id),  EN(F_STR, account),    EN(F_STATE, state),
    EN(F_STR, created_by), EN(F_I64, created_at),
};
#define RU(type, m) FIELD(struct abq_rule, type, m)
static const struct sql_field rule_fields[] = {
    RU(F_I64, id),      RU(F_CHARAC, charac),  RU(F_MATCH, match),
    RU(F_STR, pattern), RU(F_STATE, level),    RU(F_I64, order),
    RU(F_STR, domain),  RU(F_STR, created_by), RU(F_I64, created_at),
};
#define AT(type, m) FIELD(struct abq_attr, type, m)
static const struct sql_field attr_fields[] = {
    AT(F_SCOPE, scope), AT(F_TARGET, target), AT(F_STR, name),
    AT(F_STR, value),   AT(F_STR, set_by),    AT(F_I64, set_at),
};
#define HI(type, m) FIELD(struct abq_history, type, m)
static const struct sql_field history_fields[] = {
    HI(F_I64, id),        HI(F_I64, at),        HI(F_STR, who),       HI(F_STR, what),
    HI(F_STR, subject),   HI(F_STR, old_value), HI(F_STR, new_value), HI(F_STR, reason),
    HI(F_STR, device_id), HI(F_STR, account),
};
#define CH(type, m) FIELD(struct abq_change, type, m)
static const struct sql_field change_fields[] = {CH(F_I64, seq), CH(F_I64, at), CH(F_KIND, kind),
                                                 CH(F_STR, key)};
#define NO(type, m) FIELD(struct abq_notice, type, m)
static const struct sql_field notice_fields[] = {
    NO(F_I64, id),        NO(F_STR, recipient),    NO(F_STR, kind),       NO(F_STR, account),
    NO(F_STR, device_id), NO(F_STR, template_ref), NO(F_STR, rendered),   NO(F_STR, state),
    NO(F_INT, attempts),  NO(F_I64, next_attempt), NO(F_STR, last_error), NO(F_I64, created),
    NO(F_I64, sent),
};
#define TE(type, m) FIELD(struct abq_template, type, m)
static const struct sql_field template_fields[] = {
    TE(F_SCOPE, scope),   TE(F_TARGET, domain), TE(F_STR, kind),    TE(F_STR, locale),
    TE(F_STR, from),      TE(F_STR, reply_to),  TE(F_STR, subject), TE(F_STR, body_plain),
    TE(F_STR, body_html), TE(F_STR, set_by),    TE(F_I64, set_at),
};
#define AD(type, m) FIELD(struct abq_admin, type, m)
static const struct sql_field admin_fields[] = {
    AD(F_STR, name),       AD(F_STR, password_hash), AD(F_STR, created_by),
    AD(F_I64, created_at), AD(F_I64, password_at),   AD(F_I64, last_login),
};
#define TO(type, m) FIELD(struct abq_token, type, m)
static const struct sql_field token_fields[] = {
    TO(F_I64, id),         TO(F_STR, admin),      TO(F_STR, label),     TO(F_STR, hash),
    TO(F_STR, created_by), TO(F_I64, created_at), TO(F_I64, last_used),
};
#define LO(type, m) FIELD(struct abq_logger, type, m)
static const struct sql_field logger_fields[] = {
    LO(F_I64, id),    LO(F_STR, account),    LO(F_STR, device_id),  LO(F_STR, file),
    LO(F_I64, until), LO(F_STR, created_by), LO(F_I64, created_at),
};
#define SY(type, m) FIELD(struct abq_syncstate, type, m)
static const struct sql_field syncstate_fields[] = {
    SY(F_STR, account), SY(F_STR, device_id), SY(F_STR, collection),
    SY(F_BLOB, state),  SY(F_LEN, len),       SY(F_I64, updated),
};

#define FO(type, m) FIELD(struct abq_folder, type, m)
static const struct sql_field folder_fields[] = {
    FO(F_STR, account),     FO(F_STR, folder_id), FO(F_STR, mailbox), FO(F_STR, mailbox_id),
    FO(F_I64, uidvalidity), FO(F_STR, parent_id), FO(F_I64, created),
};
#define FC(type, m) FIELD(struct abq_folder_counter, type, m)
static const struct sql_field folder_counter_fields[] = {FC(F_STR, account), FC(F_I64, last_id)};
#define PC(type, m) FIELD(struct abq_pim_coll, type, m)
static const struct sql_field pim_coll_fields[] = {
    PC(F_STR, account), PC(F_STR, coll_id),     PC(F_STR, href),      PC(F_INT, kind),
    PC(F_STR, name),    PC(F_BOOL, is_default), PC(F_STR, token),     PC(F_I64, seq),
    PC(F_I64, pruned),  PC(F_I64, refreshed),   PC(F_I64, last_item),
};
#define PI(type, m) FIELD(struct abq_pim_item, type, m)
static const struct sql_field pim_item_fields[] = {
    PI(F_STR, account), PI(F_STR, coll_id),   PI(F_STR, item_id), PI(F_STR, href), PI(F_STR, etag),
    PI(F_I64, seq),     PI(F_I64, added_seq), PI(F_I64, start),   PI(F_I64, end),
};

/*
 * One kind of record: the adapters from its typed destructor and callback to
 * the generic shape, and its table; then the continuation key's fields.
 */
#define KIND(name, noun, nkeys, ...)                                                               \
	static void clear_##name(void *p)                                                          \
	{                                                                                          \
		abq_##name##_clear(p);                                                             \
	}                                                                                          \
	static int call_##name(any_cb cb, void *arg, const void *rec)                              \
	{                                                                                          \
		return ((abq_##name##_cb *)cb)(arg, rec);                                          \
	}                                                                                          \
	static const struct sql_kind name##_kind = {                                               \
	    noun,          sizeof(struct abq_##name),                                              \
	    name##_fields, sizeof(name##_fields) / sizeof(name##_fields[0]),                       \
	    clear_##name,  call_##name,                                                            \
	    {__VA_ARGS__}, nkeys}
KIND(device, "device", 2, 0, 1 | K_LOWER);
KIND(entry, "entry", 2, 0 | K_LOWER, 1);
KIND(rule, "rule", 4, 6 | K_RANK, 6, 5, 0);
KIND(attr, "attribute", 3, 0 | K_RANK, 1, 2 | K_LOWER);
KIND(history, "history", 1, 0);
KIND(change, "change", 1, 0);
KIND(notice, "notice", 1, 0);
KIND(template, "template", 4, 0, 1, 2, 3 | K_LOWER);
KIND(admin, "administrator", 1, 0);
KIND(token, "token", 2, 1, 0);
KIND(logger, "logger", 1, 0);
KIND(syncstate, "sync state", 3, 0, 1 | K_LOWER, 2);
KIND(folder, "folder", 2, 0, 2);
KIND(folder_counter, "folder counter", 1, 0);
KIND(pim_coll, "collection", 3, 0, 3, 2);
KIND(pim_item, "item", 3, 0, 1, 5);

/* Bind field c of a record to parameter i, as flags (K_*) say. */
static int
bind_field(struct sql_stmt *st, int i, const struct sql_kind *k, const void *rec, size_t c,
           int flags)
{
	const struct sql_field *f = &k->fields[c];
	const char *base = rec, *t = NULL;
	const void *p = base + f->off;
	int v = f->type == F_BOOL ? *(const bool *)p : *(const int *)p; /* the enums */

	switch (f->type) {
	case F_I64:
		return bi(st, i, *(const int64_t *)p);
	case F_INT:
	case F_BOOL:
		return bi(st, i, v);
	case F_BLOB:
		return st->db->drv->bind_blob(
		    st, i, *(void *const *)p,
		    *(const size_t *)(const void *)(base + k->fields[c + 1].off));
	case F_LEN:
		return 0;
	case F_STR:
		t = *(char *const *)p;
		break;
	case F_TARGET:
		t = rec_global(k, rec) ? "" : *(char *const *)p;
		break;
	case F_STATE:
		t = state_text((enum abq_state)v);
		break;
	case F_REASON:
		t = reason_text((enum abq_reason)v);
		break;
	case F_CHARAC:
		t = abq_charac_name((enum abq_charac)v);
		break;
	case F_MATCH:
		t = abq_match_name((enum abq_match)v);
		break;
	case F_SCOPE:
		if (flags & K_RANK) /* the enum's order, not the names' alphabetical one */
			return bi(st, i, v == ABQ_SCOPE_GLOBAL ? 0 : v == ABQ_SCOPE_DOMAIN ? 1 : 2);
		t = abq_scope_name((enum abq_scope)v);
		break;
	case F_KIND:
		t = change_kind_names[v];
		break;
	}
	if (flags & K_RANK)
		return bi(st, i, t == NULL);
	if ((flags & K_KEY) && t == NULL)
		t = "";
	return flags & K_LOWER ? bk(st, i, t) : bt(st, i, t);
}

/* Bind every column of a record, in its table's order, to ?1, ?2, ... */
static int
bind_row(struct sql_stmt *st, const struct sql_kind *k, const void *rec)
{
	int i = 1;

	for (size_t c = 0; c < k->n; c++)
		if (k->fields[c].type != F_LEN && bind_field(st, i++, k, rec, c, 0) != 0)
			return -1;
	return 0;
}

/* Bind the continuation key of a record to ?1..?nkeys. */
static int
bind_key(struct sql_stmt *st, const struct sql_kind *k, const void *rec)
{
	for (int i = 0; i < k->nkeys; i++)
		if (bind_field(st, i + 1, k, rec, k->key[i] & K_FIELD,
		               K_KEY | (k->key[i] & ~K_FIELD)))
			return -1;
	return 0;
}

/*
 * Run a cached SELECT that yields at most one row into a clear record, after
 * its parameters were bound (bind_rc 0). Returns 1 (found), 0 or -1.
 */
static int
get_one(struct sql_stmt *st, int bind_rc, const struct sql_kind *rd, void *rec,
        const char **errstr_r)
{
	int rc;

	memset(rec, 0, rd->size);
	if (bind_rc != 0)
		return bind_fail(st, errstr_r);
	rc = st->db->drv->next_row(st, errstr_r);
	if (rc > 0 && read_row(st, rd, rec, errstr_r) < 0) {
		rd->clear(rec);
		rc = -1;
	}
	st->db->drv->reset(st);
	return rc;
}

/*
 * Write a whole record with the cached statement of sql: an upsert (id_r
 * NULL; the write may be deferred), or an insert returning the new id into
 * *id_r.
 */
static int
put_row(struct abq_store *s, const char *sql, const char *what, const struct sql_kind *k,
        const void *rec, int64_t *id_r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(s, sql, what, errstr_r);

	if (st == NULL)
		return -1;
	if (id_r != NULL)
		return ints_bound(st, bind_row(st, k, rec), id_r, 1, errstr_r);
	return write_bound(st, bind_row(st, k, rec), SQL_DEFER, NULL, errstr_r);
}

/* Open a transaction of the call's own unless the caller has one (*own_r). */
static int
own_begin(struct abq_store *db, bool write_lock, bool *own_r, const char **errstr_r)
{
	*own_r = !db->drv->in_tx(db);
	return *own_r ? db->drv->begin(db, write_lock, errstr_r) : 0;
}

/* End the call's own transaction: commit after success (ret 0), else roll back. */
static int
own_end(struct abq_store *db, bool own, int ret, const char **errstr_r)
{
	if (!own)
		return ret;
	if (ret == 0 && db->drv->commit(db, errstr_r) == 0)
		return 0;
	db->drv->rollback(db);
	return -1;
}

/* ---- parameters ---------------------------------------------------------- */

/* A parameter of a point operation: text, a key (text compared without case), an integer. */
struct sql_arg {
	char type; /* 't', 'k', 'i'; 0 ends a list */
	const char *s;
	int64_t i;
};
#define T(v)      ((struct sql_arg){'t', (v), 0})
#define K(v)      ((struct sql_arg){'k', (v), 0})
#define I(v)      ((struct sql_arg){'i', NULL, (v)})
#define ARGS(...) ((const struct sql_arg[]){__VA_ARGS__, {0, NULL, 0}})
#define NOARGS    ((const struct sql_arg[]){{0, NULL, 0}})

/* Bind a list of parameters to ?1, ?2, ... */
static int
bind_args(struct sql_stmt *st, const struct sql_arg *a)
{
	for (int i = 1; a->type != 0; a++, i++)
		if (a->type == 'i'   ? bi(st, i, a->i)
		    : a->type == 'k' ? bk(st, i, a->s)
		                     : bt(st, i, a->s))
			return -1;
	return 0;
}

/* Look a record up with the cached statement of sql: 1 (found, in *out), 0 or -1. */
static int
get_args(struct abq_store *s, const char *sql, const char *what, const struct sql_kind *k,
         void *out, const struct sql_arg *a, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(s, sql, what, errstr_r);

	memset(out, 0, k->size);
	return st == NULL ? -1 : get_one(st, bind_args(st, a), k, out, errstr_r);
}

/*
 * Run a write with the cached statement of sql: counted into *count_r, or, with
 * count_r NULL, perhaps deferred by the driver.
 */
static int
write_args(struct abq_store *s, const char *sql, const char *what, const struct sql_arg *a,
           size_t *count_r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(s, sql, what, errstr_r);

	if (count_r != NULL)
		*count_r = 0;
	return st == NULL ? -1 : write_bound(st, bind_args(st, a), SQL_DEFER, count_r, errstr_r);
}

/* Run a query with the cached statement of sql whose one row holds n integers. */
static int
ints_args(struct abq_store *s, const char *sql, const char *what, const struct sql_arg *a,
          int64_t *v, int n, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(s, sql, what, errstr_r);

	return st == NULL ? -1 : ints_bound(st, bind_args(st, a), v, n, errstr_r);
}

/* A count of a query with the cached statement of sql into *count_r. */
static int
count_args(struct abq_store *s, const char *sql, const char *what, const struct sql_arg *a,
           size_t *count_r, const char **errstr_r)
{
	int64_t n = 0;

	*count_r = 0;
	if (ints_args(s, sql, what, a, &n, 1, errstr_r) < 0)
		return -1;
	*count_r = (size_t)n;
	return 0;
}

/*
 * Delete with the cached statement of sql, counted into *count_r, and then
 * with also and also2 (what goes with it; also2 may be NULL), all under the
 * same parameters, in one transaction.
 */
static int
delete_with(struct abq_store *s, const char *sql, const char *also, const char *also2,
            const char *what, const struct sql_arg *a, size_t *count_r, const char **errstr_r)
{
	size_t ignored;
	bool own;
	int ret;

	*count_r = 0;
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ret = write_args(s, sql, what, a, count_r, errstr_r);
	if (ret == 0)
		ret = write_args(s, also, what, a, &ignored, errstr_r);
	if (ret == 0 && also2 != NULL)
		ret = write_args(s, also2, what, a, &ignored, errstr_r);
	if (own_end(s, own, ret, errstr_r) < 0) {
		*count_r = 0;
		return -1;
	}
	return 0;
}

/* ---- iteration --------------------------------------------------------------- */

/*
 * The batch loop (see the top of the file). st is a statement of this
 * iteration alone, its filters and starting key bound and with a LIMIT of
 * ITER_BATCH; it is finished here, and so is sql (the statement's text, may be
 * NULL). At most `limit` records are delivered (0: no limit). Returns 0, the
 * callback's non-zero stop value, or -1.
 */
static int
run_iter(struct sql_stmt *st, int bind_rc, const struct sql_kind *k, size_t limit, any_cb cb,
         void *arg, const char **errstr_r)
{
	const struct sql_driver *drv = st->db->drv;
	size_t n, i, delivered = 0, size = k->size;
	char *batch = xcalloc(ITER_BATCH, size);
	bool more = true;
	int rc = 0, ret = bind_rc != 0 ? bind_fail(st, errstr_r) : 0;

	while (more && ret == 0) {
		n = 0;
		while (n < ITER_BATCH && (rc = drv->next_row(st, errstr_r)) > 0) {
			n++;
			if (read_row(st, k, batch + (n - 1) * size, errstr_r) < 0) {
				ret = -1;
				break;
			}
		}
		if (rc < 0)
			ret = -1;
		more = n == ITER_BATCH;
		drv->reset(st);
		if (ret == 0 && more && bind_key(st, k, batch + (n - 1) * size) != 0)
			ret = bind_fail(st, errstr_r);
		for (i = 0; i < n; i++) {
			void *rec = batch + i * size;

			if (ret == 0 && (limit == 0 || delivered < limit)) {
				ret = k->call(cb, arg, rec);
				delivered++;
			}
			k->clear(rec);
		}
		if (limit != 0 && delivered >= limit)
			more = false;
	}
	drv->finish(st);
	free(batch);
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

/* Run an iteration of kind k over sql (shared SQL) with parameters a; see run_iter. */
static int
iter_args(struct abq_store *s, const char *sql, const char *what, const struct sql_kind *k,
          const struct sql_arg *a, size_t limit, any_cb cb, void *arg, const char **errstr_r)
{
	struct sql_stmt *st = stmt_new(s, sql, what, errstr_r);

	return st == NULL ? -1 : run_iter(st, bind_args(st, a), k, limit, cb, arg, errstr_r);
}

/*
 * An iteration's optional filter: when set, append the SQL piece, its
 * parameter's number in the place of each '#', and the parameter.
 */
static void
filter(char *sql, size_t size, struct sql_arg *a, int *n, bool set, const char *piece,
       struct sql_arg v)
{
	if (!set)
		return;
	a[(*n)++] = v;
	for (; *piece; piece++)
		if (*piece == '#')
			sql_add(sql, size, "%d", *n);
		else
			sql_add(sql, size, "%c", *piece);
}

/* ---- opening, closing, transactions ---------------------------------------- */

/* The drivers by the URL's scheme; PostgreSQL takes the whole URL (libpq parses it). */
static const struct {
	const char *prefix;
	const struct sql_driver *drv;
	bool whole_url;
} schemes[] = {
    {"sqlite:", &sqlite_driver, false},
    {"postgresql://", &pgsql_driver, true},
    {"postgres://", &pgsql_driver, true},
};

/* Open the store named by url with the driver whose scheme prefixes it. */
struct abq_store *
abq_store_open(const char *url, const char *base_dir, int flags, const char **errstr_r)
{
	const char *dummy;

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
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncmp(url, schemes[i].prefix, n) == 0)
			return schemes[i].drv->open(schemes[i].whole_url ? url : url + n, base_dir,
			                            flags, errstr_r);
	}
	*errstr_r = "unknown store URL scheme (expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or "
	            "postgresql://...)";
	return NULL;
}

/* Close the store (its cached statements, then its connection); forget the pointer. */
void
abq_store_close(struct abq_store **store)
{
	if (store == NULL || *store == NULL)
		return;
	stmts_finish(*store);
	(*store)->drv->close(*store);
	*store = NULL;
}

/* The backend's name, "sqlite". */
const char *
abq_store_backend(const struct abq_store *s)
{
	return s == NULL ? "none" : s->drv->name;
}

/* A printable location: the database file for SQLite. */
const char *
abq_store_location(const struct abq_store *s)
{
	return s == NULL ? "" : s->location;
}

/* The files of the store, so that a root abqctl can hand them to abqd's user. */
const char *const *
abq_store_files(const struct abq_store *s)
{
	static const char *const none[] = {NULL};

	return s == NULL ? none : s->files;
}

/* Start a write transaction (the write lock is taken at once). */
int
abq_store_begin(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s);
	return s->drv->begin(s, true, errstr_r);
}

/*
 * Commit the open transaction. A commit counts as a write for the fault
 * injection: an injected failure leaves the transaction open, as a real one
 * would, so that the caller's rollback path runs.
 */
int
abq_store_commit(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s);
	WRITE_CALL();
	return s->drv->commit(s, errstr_r);
}

/* Discard the open transaction, if any. Never fails: there is nothing to report. */
void
abq_store_rollback(struct abq_store *s)
{
	if (s != NULL)
		s->drv->rollback(s);
}

/* ---- devices ------------------------------------------------------------- */

/* Look up (account, device_id); device_id matches without case. */
int
abq_store_device_get(struct abq_store *s, const char *account, const char *device_id,
                     struct abq_device *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(device_id) && out != NULL,
	        "device_get: account and device_id are required");
	return get_args(
	    s, "SELECT " DEVICE_COLS " FROM devices WHERE account = ?1 AND device_key = ?2", WHAT,
	    &device_kind, out, ARGS(T(account), K(device_id)), errstr_r);
}

/*
 * Write the whole device record, replacing the one of (account, device_id):
 * a DeviceId spelt in another case replaces the record and its spelling.
 */
int
abq_store_device_put(struct abq_store *s, const struct abq_device *d, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(d != NULL && key_ok(d->account) && key_ok(d->device_id),
	        "device_put: account and device_id are required");
	REQUIRE(state_ok(d->state) && d->reason >= ABQ_REASON_NONE &&
	            d->reason <= ABQ_REASON_LAST && d->wipe >= ABQ_WIPE_NONE &&
	            d->wipe <= ABQ_WIPE_ACKNOWLEDGED && d->provision_status >= 0,
	        "device_put: state, reason, wipe or provision_status out of range");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	               "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
	               "?23, ?24, ?25, ?26, ?27) "
	               "ON CONFLICT (account, device_key) DO REPLACE",
	               WHAT, &device_kind, d, NULL, errstr_r);
}

/*
 * Delete a DeviceId's records, of every account or of one, and their mailbox
 * sync state and SendMail ClientIds (store.h), in one transaction; counts the
 * records.
 */
int
abq_store_device_delete(struct abq_store *s, const char *device_id, const char *account,
                        size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(device_id), "device_delete: device_id is required");
	REQUIRE(opt_ok(account), "device_delete: empty account");
	WRITE_CALL();
	if (account == NULL)
		return delete_with(s, "DELETE FROM devices WHERE device_key = ?1",
		                   "DELETE FROM syncstate WHERE device_key = ?1",
		                   "DELETE FROM clientids WHERE device_key = ?1", WHAT,
		                   ARGS(K(device_id)), count_r, errstr_r);
	return delete_with(s, "DELETE FROM devices WHERE device_key = ?1 AND account = ?2",
	                   "DELETE FROM syncstate WHERE device_key = ?1 AND account = ?2",
	                   "DELETE FROM clientids WHERE device_key = ?1 AND account = ?2", WHAT,
	                   ARGS(K(device_id), T(account)), count_r, errstr_r);
}

/* Count an account's devices (or all) first seen before a time (0: ever). */
int
abq_store_device_count(struct abq_store *s, const char *account, int64_t before, size_t *count_r,
                       const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(count_r != NULL, "device_count: no count_r");
	if (account == NULL)
		return count_args(s, "SELECT count(*) FROM devices WHERE ?1 = 0 OR first_seen < ?1",
		                  WHAT, ARGS(I(before)), count_r, errstr_r);
	return count_args(s,
	                  "SELECT count(*) FROM devices WHERE account = ?1 AND (?2 = 0 OR "
	                  "first_seen < ?2)",
	                  WHAT, ARGS(T(account), I(before)), count_r, errstr_r);
}

/*
 * Apply the last-seen updates, in a transaction of their own unless the caller
 * has one open, so that a batch costs one sync. A device that no longer exists
 * is skipped, and so is an update older than the recorded last_seen.
 */
int
abq_store_device_touch(struct abq_store *s, const struct abq_seen *v, size_t n,
                       const char **errstr_r)
{
	bool own;
	int ret = 0;

	CHECK_STORE(s);
	REQUIRE(n == 0 || v != NULL, "device_touch: no updates");
	for (size_t i = 0; i < n; i++)
		REQUIRE(key_ok(v[i].account) && key_ok(v[i].device_id),
		        "device_touch: account and device_id are required");
	if (n == 0)
		return 0;
	WRITE_CALL();
	if (own_begin(s, false, &own, errstr_r) < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = write_args(s,
		                 "UPDATE devices SET last_seen = ?3, last_address = coalesce(?4, "
		                 "last_address), last_command = coalesce(?5, last_command) WHERE "
		                 "account = ?1 AND device_key = ?2 AND last_seen <= ?3",
		                 WHAT,
		                 ARGS(T(v[i].account), K(v[i].device_id), I(v[i].last_seen),
		                      T(v[i].last_address), T(v[i].last_command)),
		                 NULL, errstr_r);
	return own_end(s, own, ret, errstr_r);
}

/*
 * Devices in (account, device_id) order (NULL filter: every device). The
 * WHERE clause holds only the filters that are set, so that the indexes on
 * them can serve. The domain filter compares the account's tail with
 * "@domain" (not LIKE, whose % and _ would be wildcards inside a domain
 * name); bare accounts belong to default_domain.
 */
int
abq_store_device_iter(struct abq_store *s, const struct abq_device_filter *f, abq_device_cb *cb,
                      void *arg, const char **errstr_r)
{
	static const struct abq_device_filter all;
	char sql[2048] =
	    "SELECT " DEVICE_COLS " FROM devices WHERE (account, device_key) > (?1, ?2)";
	struct sql_arg a[12] = {T(""), T("")};
	int n = 2, ret;
	char *suffix;
	bool bare;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "device_iter: no callback");
	REQUIRE(f == NULL || state_ok(f->state), "device_iter: state out of range");
	if (f == NULL)
		f = &all;
	bare =
	    f->domain != NULL && f->default_domain != NULL && str_ieq(f->domain, f->default_domain);
	suffix = f->domain ? str_lower(xasprintf("@%s", f->domain)) : NULL;
	filter(sql, sizeof(sql), a, &n, f->account, " AND account = ?#", T(f->account));
	filter(sql, sizeof(sql), a, &n, f->device_id, " AND device_key = ?#", K(f->device_id));
	filter(sql, sizeof(sql), a, &n, suffix,
	       bare ? " AND (substr(account, length(account) - length(?#) + 1) = ?# OR "
	              "instr(account, '@') = 0)"
	            : " AND substr(account, length(account) - length(?#) + 1) = ?#",
	       T(suffix));
	filter(sql, sizeof(sql), a, &n, f->state != ABQ_STATE_NONE, " AND state = ?#",
	       T(state_text(f->state)));
	filter(sql, sizeof(sql), a, &n, f->seen_before, " AND last_seen < ?#", I(f->seen_before));
	filter(sql, sizeof(sql), a, &n, f->seen_since, " AND last_seen >= ?#", I(f->seen_since));
	filter(sql, sizeof(sql), a, &n, f->not_individual, " AND reason IS DISTINCT FROM ?#",
	       T(abq_reason_name(ABQ_REASON_INDIVIDUAL)));
	sql_add(sql, sizeof(sql), " ORDER BY account, device_key" BATCH_LIMIT);
	ret = iter_args(s, sql, WHAT, &device_kind, a, 0, (any_cb)cb, arg, errstr_r);
	free(suffix);
	return ret;
}

/* ---- list entries ---------------------------------------------------------- */

/* Look up an entry; account NULL is the DeviceId-alone entry (stored NULL). */
int
abq_store_entry_get(struct abq_store *s, const char *device_id, const char *account,
                    struct abq_entry *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(device_id) && out != NULL, "entry_get: device_id is required");
	REQUIRE(opt_ok(account), "entry_get: empty account");
	return get_args(s,
	                "SELECT " ENTRY_COLS " FROM entries WHERE device_key = ?1 AND "
	                "account_key = coalesce(?2, '')",
	                WHAT, &entry_kind, out, ARGS(K(device_id), T(account)), errstr_r);
}

/* Write an entry, replacing the one with the same key. */
int
abq_store_entry_put(struct abq_store *s, const struct abq_entry *e, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(e != NULL && key_ok(e->device_id), "entry_put: device_id is required");
	REQUIRE(opt_ok(e->account), "entry_put: empty account");
	REQUIRE(level_ok(e->state), "entry_put: state must be Allowed, Blocked or Quarantined");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO entries (" ENTRY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5) "
	               "ON CONFLICT (device_key, account_key) DO REPLACE",
	               WHAT, &entry_kind, e, NULL, errstr_r);
}

/* Delete entries: DeviceId/account, the DeviceId-alone one, or all of them. */
int
abq_store_entry_delete(struct abq_store *s, const char *device_id, const char *account,
                       bool all_accounts, size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(device_id), "entry_delete: device_id is required");
	REQUIRE(opt_ok(account), "entry_delete: empty account");
	WRITE_CALL();
	if (account != NULL)
		return write_args(s, "DELETE FROM entries WHERE device_key = ?1 AND account = ?2",
		                  WHAT, ARGS(K(device_id), T(account)), count_r, errstr_r);
	return write_args(s,
	                  all_accounts ? "DELETE FROM entries WHERE device_key = ?1"
	                               : "DELETE FROM entries WHERE device_key = ?1 AND account "
	                                 "IS NULL",
	                  WHAT, ARGS(K(device_id)), count_r, errstr_r);
}

/* Entries by DeviceId, the DeviceId-alone entry ('' sorts first) before accounts. */
int
abq_store_entry_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb, void *arg,
                     const char **errstr_r)
{
	char sql[512] =
	    "SELECT " ENTRY_COLS " FROM entries WHERE (device_key, account_key) > (?1, ?2)";
	struct sql_arg a[4] = {T(""), T("")};
	int n = 2;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "entry_iter: no callback");
	REQUIRE(state_ok(state), "entry_iter: state out of range");
	filter(sql, sizeof(sql), a, &n, state != ABQ_STATE_NONE, " AND state = ?#",
	       T(state_text(state)));
	sql_add(sql, sizeof(sql), " ORDER BY device_key, account_key" BATCH_LIMIT);
	return iter_args(s, sql, WHAT, &entry_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* The entries no device uses (store.h); the subqueries use the tables' DeviceId indexes. */
int
abq_store_entry_unseen_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb, void *arg,
                            const char **errstr_r)
{
	char sql[1024] =
	    "SELECT " ENTRY_COLS " FROM entries WHERE (device_key, account_key) > (?1, ?2)"
	    " AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.device_key = entries.device_key"
	    " AND (entries.account IS NULL OR d.account = entries.account))"
	    " AND NOT EXISTS (SELECT 1 FROM history h WHERE h.device_key = entries.device_key"
	    " AND (entries.account IS NULL OR h.account = entries.account)"
	    " AND h.at >= entries.created_at AND h.what = 'purge')";
	struct sql_arg a[4] = {T(""), T("")};
	int n = 2;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "entry_unseen_iter: no callback");
	REQUIRE(state_ok(state), "entry_unseen_iter: state out of range");
	filter(sql, sizeof(sql), a, &n, state != ABQ_STATE_NONE, " AND state = ?#",
	       T(state_text(state)));
	sql_add(sql, sizeof(sql), " ORDER BY device_key, account_key" BATCH_LIMIT);
	return iter_args(s, sql, WHAT, &entry_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* ---- rules ------------------------------------------------------------------- */

/* Check the fields every written rule needs. */
static bool
rule_ok(const struct abq_rule *r)
{
	return r != NULL && r->pattern != NULL && level_ok(r->level) &&
	       r->charac >= ABQ_CHAR_DEVICEID && r->charac <= ABQ_CHAR_USERAGENT &&
	       r->match >= ABQ_MATCH_EXACT && r->match <= ABQ_MATCH_REGEX && opt_ok(r->domain);
}

/*
 * Run a write of cached statement st (NULL: its preparation failed) that must
 * change a row: none is the error "MISSING with id ID", not a no-op, so that
 * "deleteRule 7" cannot do nothing.
 */
static int
write_one(struct abq_store *s, struct sql_stmt *st, int bind_rc, const char *missing, int64_t id,
          const char **errstr_r)
{
	size_t n = 0;

	if (st == NULL || write_bound(st, bind_rc, 0, &n, errstr_r) < 0)
		return -1;
	if (n == 0)
		return sql_fail(s, errstr_r, "%s with id %lld", missing, (long long)id);
	return 0;
}

/* Insert a rule and hand back the id the store assigned (never reused) in r->id. */
int
abq_store_rule_insert(struct abq_store *s, struct abq_rule *r, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(rule_ok(r), "rule_insert: incomplete or out-of-range rule");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO rules (characteristic, match, pattern, level, rule_order, "
	               "domain, created_by, created_at) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
	               "RETURNING id",
	               WHAT, &rule_kind, r, &r->id, errstr_r);
}

/* Rewrite every column of rule r->id (fails when there is no such rule). */
int
abq_store_rule_update(struct abq_store *s, const struct abq_rule *r, const char **errstr_r)
{
	struct sql_stmt *st;

	CHECK_STORE(s);
	REQUIRE(rule_ok(r) && r->id > 0, "rule_update: incomplete or out-of-range rule");
	WRITE_CALL();
	st = stmt_get(s,
	              "UPDATE rules SET characteristic = ?2, match = ?3, pattern = ?4, "
	              "level = ?5, rule_order = ?6, domain = ?7, created_by = ?8, "
	              "created_at = ?9 WHERE id = ?1",
	              WHAT, errstr_r);
	return write_one(s, st, st ? bind_row(st, &rule_kind, r) : 0, "rule_update: no rule", r->id,
	                 errstr_r);
}

/* Look up a rule by id. */
int
abq_store_rule_get(struct abq_store *s, int64_t id, struct abq_rule *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(out != NULL, "rule_get: no output record");
	return get_args(s, "SELECT " RULE_COLS " FROM rules WHERE id = ?1", WHAT, &rule_kind, out,
	                ARGS(I(id)), errstr_r);
}

/* Delete a rule by id (fails when there is no such rule). */
int
abq_store_rule_delete(struct abq_store *s, int64_t id, const char **errstr_r)
{
	struct sql_stmt *st;

	CHECK_STORE(s);
	WRITE_CALL();
	st = stmt_get(s, "DELETE FROM rules WHERE id = ?1", WHAT, errstr_r);
	return write_one(s, st, st ? bi(st, 1, id) : 0, "rule_delete: no rule", id, errstr_r);
}

#define RULE_RANK "(CASE WHEN domain IS NULL THEN 1 ELSE 0 END)"

/*
 * Rules (all, global only, or one domain's): domain rules by domain, then
 * global ones; each by order, then id.
 */
int
abq_store_rule_iter(struct abq_store *s, const char *domain, bool all, abq_rule_cb *cb, void *arg,
                    const char **errstr_r)
{
	char sql[1024] = "SELECT " RULE_COLS " FROM rules WHERE (" RULE_RANK ", coalesce(domain, "
	                 "''), rule_order, id) > (?1, ?2, ?3, ?4)";
	struct sql_arg a[6] = {I(-1), T(""), I(INT64_MIN), I(0)};
	int n = 4;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "rule_iter: no callback");
	filter(sql, sizeof(sql), a, &n, domain, " AND domain = ?#", T(domain));
	if (!domain && !all)
		sql_add(sql, sizeof(sql), " AND domain IS NULL");
	sql_add(sql, sizeof(sql),
	        " ORDER BY " RULE_RANK ", coalesce(domain, ''), rule_order, id" BATCH_LIMIT);
	return iter_args(s, sql, WHAT, &rule_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* ---- attributes ------------------------------------------------------------ */

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

/* An attribute's key; the global scope is stored with target ''. */
#define ATTR_KEY(scope, target, name)                                                              \
	ARGS(T(abq_scope_name(scope)), T((scope) == ABQ_SCOPE_GLOBAL ? "" : (target)), K(name))

/* Look up an attribute at a scope. */
int
abq_store_attr_get(struct abq_store *s, enum abq_scope scope, const char *target, const char *name,
                   struct abq_attr *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(scope_ok(scope, target) && key_ok(name) && out != NULL,
	        "attr_get: scope, target and name are required");
	return get_args(s,
	                "SELECT " ATTR_COLS " FROM attrs WHERE scope = ?1 AND target = ?2 AND "
	                "name_key = ?3",
	                WHAT, &attr_kind, out, ATTR_KEY(scope, target, name), errstr_r);
}

/* Set an attribute, replacing the previous value at that scope (and its name's spelling). */
int
abq_store_attr_put(struct abq_store *s, const struct abq_attr *a, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(a != NULL && scope_ok(a->scope, a->target) && key_ok(a->name) && a->value != NULL,
	        "attr_put: scope, target, name and value are required");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO attrs (" ATTR_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	               "ON CONFLICT (scope, target, name_key) DO REPLACE",
	               WHAT, &attr_kind, a, NULL, errstr_r);
}

/* Remove an attribute at a scope; removing an absent one is not an error. */
int
abq_store_attr_delete(struct abq_store *s, enum abq_scope scope, const char *target,
                      const char *name, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(scope_ok(scope, target) && key_ok(name),
	        "attr_delete: scope, target and name are required");
	WRITE_CALL();
	return write_args(s, "DELETE FROM attrs WHERE scope = ?1 AND target = ?2 AND name_key = ?3",
	                  WHAT, ATTR_KEY(scope, target, name), NULL, errstr_r);
}

#define ATTR_RANK "(CASE scope WHEN 'global' THEN 0 WHEN 'domain' THEN 1 ELSE 2 END)"

/*
 * Every attribute by scope (global, domain, account: the enum's order, not
 * the names' alphabetical one), then target and name.
 */
int
abq_store_attr_iter(struct abq_store *s, abq_attr_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "attr_iter: no callback");
	return iter_args(s,
	                 "SELECT " ATTR_COLS " FROM attrs WHERE (" ATTR_RANK
	                 ", target, name_key) > "
	                 "(?1, ?2, ?3) ORDER BY " ATTR_RANK ", target, name_key" BATCH_LIMIT,
	                 WHAT, &attr_kind, ARGS(I(-1), T(""), T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* ---- history, change log, outbox ---------------------------------------- */

/* A history row under a given id (history_add with an id reserved, history_restore). */
static const char history_insert_id[] = "INSERT INTO history (" HISTORY_COLS ") VALUES (?1, ?2, "
                                        "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/*
 * Append a history row and hand back its id in h->id: one the driver
 * reserved ahead (so that the insert need not wait for its answer), or the
 * one the insert returns.
 */
int
abq_store_history_add(struct abq_store *s, struct abq_history *h, const char **errstr_r)
{
	struct abq_history with_id;
	int got = 0;

	CHECK_STORE(s);
	REQUIRE(h != NULL && h->what != NULL, "history_add: what is required");
	WRITE_CALL();
	with_id = *h;
	if (s->drv->reserve_history_id != NULL &&
	    (got = s->drv->reserve_history_id(s, &with_id.id, errstr_r)) < 0)
		return -1;
	if (!got)
		return put_row(
		    s,
		    "INSERT INTO history (at, who, what, subject, old_value, new_value, "
		    "reason, device_id, account) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		    "?10) RETURNING id",
		    WHAT, &history_kind, h, &h->id, errstr_r);
	if (put_row(s, history_insert_id, WHAT, &history_kind, &with_id, NULL, errstr_r) < 0)
		return -1;
	h->id = with_id.id;
	return 0;
}

/*
 * History by id (NULL filter: all of it): oldest first, or with a limit the
 * newest rows, newest first.
 */
int
abq_store_history_iter(struct abq_store *s, const struct abq_history_filter *f, abq_history_cb *cb,
                       void *arg, const char **errstr_r)
{
	static const struct abq_history_filter all;
	struct sql_arg a[5] = {{0, NULL, 0}};
	char sql[1024];
	int n = 1;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "history_iter: no callback");
	if (f == NULL)
		f = &all;
	a[0] = I(f->limit != 0 ? INT64_MAX : 0);
	snprintf(sql, sizeof(sql), "SELECT " HISTORY_COLS " FROM history WHERE id %s ?1",
	         f->limit != 0 ? "<" : ">");
	filter(sql, sizeof(sql), a, &n, f->device_id, " AND device_key = ?#", K(f->device_id));
	filter(sql, sizeof(sql), a, &n, f->account, " AND account = ?#", T(f->account));
	filter(sql, sizeof(sql), a, &n, f->since, " AND at >= ?#", I(f->since));
	sql_add(sql, sizeof(sql), " ORDER BY id%s" BATCH_LIMIT, f->limit != 0 ? " DESC" : "");
	return iter_args(s, sql, WHAT, &history_kind, a, f->limit, (any_cb)cb, arg, errstr_r);
}

/*
 * Append a change; its seq is taken under the write lock (outside a
 * transaction, in a short one of its own), so that seq order is commit order.
 */
int
abq_store_change_add(struct abq_store *s, enum abq_change_kind kind, const char *key, int64_t at,
                     const char **errstr_r)
{
	int64_t seq = 0;
	bool own;
	int ret;

	CHECK_STORE(s);
	REQUIRE(kind >= ABQ_CHANGE_DEVICE && kind <= ABQ_CHANGE_LOGGER && key != NULL,
	        "change_add: kind and key are required");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ret = ints_args(s, "INSERT INTO changes (at, kind, key) VALUES (?1, ?2, ?3) RETURNING seq",
	                WHAT, ARGS(I(at), T(change_kind_names[kind]), T(key)), &seq, 1, errstr_r);
	if (ret == 0 && s->drv->change_written != NULL)
		s->drv->change_written(s, seq);
	return own_end(s, own, ret, errstr_r);
}

/* Changes after since, by ascending sequence number. */
int
abq_store_change_iter(struct abq_store *s, int64_t since, abq_change_cb *cb, void *arg,
                      const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "change_iter: no callback");
	return iter_args(
	    s, "SELECT " CHANGE_COLS " FROM changes WHERE seq > ?1 ORDER BY seq" BATCH_LIMIT, WHAT,
	    &change_kind, ARGS(I(since)), 0, (any_cb)cb, arg, errstr_r);
}

/* The highest seq ever given out, 0 for a new store (the driver's SQL knows where). */
int
abq_store_change_last(struct abq_store *s, int64_t *seq_r, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(seq_r != NULL, "change_last: no seq_r");
	*seq_r = 0;
	return ints_args(s, s->drv->change_last_sql, WHAT, NOARGS, seq_r, 1, errstr_r);
}

/* Queue a notice in the outbox and hand back its id in n->id. */
int
abq_store_notice_add(struct abq_store *s, struct abq_notice *n, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(n != NULL && key_ok(n->recipient) && key_ok(n->kind),
	        "notice_add: recipient and kind are required");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO outbox (recipient, kind, account, device_id, template_ref, "
	               "rendered, state, attempts, next_attempt, last_error, created, sent) "
	               "VALUES (?2, ?3, ?4, ?5, ?6, ?7, coalesce(?8, 'queued'), ?9, ?10, ?11, "
	               "?12, ?13) RETURNING id",
	               WHAT, &notice_kind, n, &n->id, errstr_r);
}

/* The outbox in the order notices were queued, all or those in one state. */
int
abq_store_notice_iter(struct abq_store *s, const char *state, abq_notice_cb *cb, void *arg,
                      const char **errstr_r)
{
	char sql[512] = "SELECT " NOTICE_COLS " FROM outbox WHERE id > ?1";
	struct sql_arg a[3] = {I(0)};
	int n = 1;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "notice_iter: no callback");
	filter(sql, sizeof(sql), a, &n, state, " AND state = ?#", T(state));
	sql_add(sql, sizeof(sql), " ORDER BY id" BATCH_LIMIT);
	return iter_args(s, sql, WHAT, &notice_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/*
 * Count the notices in one state and find the oldest, in one aggregate (the
 * outbox_due index leads with the state).
 */
int
abq_store_notice_stats(struct abq_store *s, const char *state, int64_t *count_r, int64_t *oldest_r,
                       const char **errstr_r)
{
	int64_t v[2] = {0, 0};

	CHECK_STORE(s);
	REQUIRE(key_ok(state) && count_r != NULL && oldest_r != NULL,
	        "notice_stats: a state and two results are required");
	*count_r = *oldest_r = 0;
	WRITE_CALL();
	if (ints_args(s, "SELECT count(*), coalesce(min(created), 0) FROM outbox WHERE state = ?1",
	              WHAT, ARGS(T(state)), v, 2, errstr_r) < 0)
		return -1;
	*count_r = v[0];
	*oldest_r = v[1];
	return 0;
}

/* The queued notices due at now, by id. */
int
abq_store_notice_due(struct abq_store *s, int64_t now, abq_notice_cb *cb, void *arg,
                     const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "notice_due: no callback");
	return iter_args(s,
	                 "SELECT " NOTICE_COLS
	                 " FROM outbox WHERE id > ?1 AND state = 'queued' AND "
	                 "next_attempt <= ?2 ORDER BY id" BATCH_LIMIT,
	                 WHAT, &notice_kind, ARGS(I(0), I(now)), 0, (any_cb)cb, arg, errstr_r);
}

/* Record the outcome of one delivery attempt of a notice; a missing id is an error. */
int
abq_store_notice_mark(struct abq_store *s, int64_t id, const char *state, int attempts,
                      int64_t next_attempt, const char *last_error, int64_t sent,
                      const char **errstr_r)
{
	struct sql_stmt *st;

	CHECK_STORE(s);
	REQUIRE(state != NULL &&
	            (strcmp(state, "queued") == 0 || strcmp(state, "sent") == 0 ||
	             strcmp(state, "failed") == 0) &&
	            attempts >= 0,
	        "notice_mark: state must be queued, sent or failed");
	WRITE_CALL();
	st = stmt_get(s,
	              "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, "
	              "last_error = ?5, sent = ?6 WHERE id = ?1",
	              WHAT, errstr_r);
	return write_one(s, st,
	                 st ? bind_args(st, ARGS(I(id), T(state), I(attempts), I(next_attempt),
	                                         T(last_error), I(sent)))
	                    : 0,
	                 "no notice", id, errstr_r);
}

/* ---- notice templates -------------------------------------------------------- */

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

/* The four key columns of a template; the domain is '' for global. */
#define TEMPLATE_KEY(scope, domain, kind, locale)                                                  \
	ARGS(T(abq_scope_name(scope)), T((scope) == ABQ_SCOPE_GLOBAL ? "" : (domain)), T(kind),    \
	     K(locale))
#define TEMPLATE_KEY_REQUIRED(op)                                                                  \
	op ": scope (global or domain), domain for the domain scope, kind and locale are required"

/* Insert or replace one template (and its locale's spelling). */
int
abq_store_template_put(struct abq_store *s, const struct abq_template *t, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(t != NULL && template_key_ok(t->scope, t->domain, t->kind, t->locale),
	        TEMPLATE_KEY_REQUIRED("template_put"));
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO templates (" TEMPLATE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
	               "?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (scope, domain, kind, locale_key) "
	               "DO REPLACE",
	               WHAT, &template_kind, t, NULL, errstr_r);
}

/* Look up a notice template by its key. */
int
abq_store_template_get(struct abq_store *s, enum abq_scope scope, const char *domain,
                       const char *kind, const char *locale, struct abq_template *out,
                       const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(out != NULL && template_key_ok(scope, domain, kind, locale),
	        TEMPLATE_KEY_REQUIRED("template_get"));
	return get_args(s,
	                "SELECT " TEMPLATE_COLS " FROM templates WHERE scope = ?1 AND "
	                "domain = ?2 AND kind = ?3 AND locale_key = ?4",
	                WHAT, &template_kind, out, TEMPLATE_KEY(scope, domain, kind, locale),
	                errstr_r);
}

/* Remove a notice template; removing nothing is not an error. */
int
abq_store_template_delete(struct abq_store *s, enum abq_scope scope, const char *domain,
                          const char *kind, const char *locale, size_t *count_r,
                          const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(template_key_ok(scope, domain, kind, locale),
	        TEMPLATE_KEY_REQUIRED("template_delete"));
	WRITE_CALL();
	return write_args(s,
	                  "DELETE FROM templates WHERE scope = ?1 AND domain = ?2 AND "
	                  "kind = ?3 AND locale_key = ?4",
	                  WHAT, TEMPLATE_KEY(scope, domain, kind, locale), count_r, errstr_r);
}

/* Every template by scope name, domain, kind and locale. */
int
abq_store_template_iter(struct abq_store *s, abq_template_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "template_iter: no callback");
	return iter_args(s,
	                 "SELECT " TEMPLATE_COLS " FROM templates WHERE (scope, domain, kind, "
	                 "locale_key) > (?1, ?2, ?3, ?4) ORDER BY scope, domain, kind, "
	                 "locale_key" BATCH_LIMIT,
	                 WHAT, &template_kind, ARGS(T(""), T(""), T(""), T("")), 0, (any_cb)cb, arg,
	                 errstr_r);
}

/* ---- administrators and tokens --------------------------------------------- */

/* Look up an administrator by name. */
int
abq_store_admin_get(struct abq_store *s, const char *name, struct abq_admin *out,
                    const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(name) && out != NULL, "admin_get: name is required");
	return get_args(s, "SELECT " ADMIN_COLS " FROM admins WHERE name = ?1", WHAT, &admin_kind,
	                out, ARGS(T(name)), errstr_r);
}

/* Insert or replace an administrator. */
int
abq_store_admin_put(struct abq_store *s, const struct abq_admin *a, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(a != NULL && key_ok(a->name) && key_ok(a->password_hash),
	        "admin_put: name and password_hash are required");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO admins (" ADMIN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	               "ON CONFLICT (name) DO REPLACE",
	               WHAT, &admin_kind, a, NULL, errstr_r);
}

/* Deleting an administrator's tokens (admin_delete, token_delete). */
static const char token_delete_admin[] = "DELETE FROM tokens WHERE admin = ?1";

/*
 * Remove an administrator and their tokens in one transaction (no token
 * outlives its owner); removing nothing is not an error.
 */
int
abq_store_admin_delete(struct abq_store *s, const char *name, size_t *count_r,
                       const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(name), "admin_delete: name is required");
	WRITE_CALL();
	return delete_with(s, "DELETE FROM admins WHERE name = ?1", token_delete_admin, NULL, WHAT,
	                   ARGS(T(name)), count_r, errstr_r);
}

/* Every administrator by name. */
int
abq_store_admin_iter(struct abq_store *s, abq_admin_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "admin_iter: no callback");
	return iter_args(
	    s, "SELECT " ADMIN_COLS " FROM admins WHERE name > ?1 ORDER BY name" BATCH_LIMIT, WHAT,
	    &admin_kind, ARGS(T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* Add a token, its new id into t->id; a hash already stored fails (UNIQUE). */
int
abq_store_token_add(struct abq_store *s, struct abq_token *t, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(t != NULL && key_ok(t->admin) && key_ok(t->hash),
	        "token_add: admin and hash are required");
	REQUIRE(opt_ok(t->label), "token_add: empty label");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO tokens (admin, label, hash, created_by, created_at, last_used) "
	               "VALUES (?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
	               WHAT, &token_kind, t, &t->id, errstr_r);
}

/* Look a token up by its hash. */
int
abq_store_token_find(struct abq_store *s, const char *hash, struct abq_token *out,
                     const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(hash) && out != NULL, "token_find: hash is required");
	return get_args(s, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1", WHAT, &token_kind,
	                out, ARGS(T(hash)), errstr_r);
}

/* Record that token id was used at `at`. */
int
abq_store_token_touch(struct abq_store *s, int64_t id, int64_t at, const char **errstr_r)
{
	CHECK_STORE(s);
	WRITE_CALL();
	return write_args(s, "UPDATE tokens SET last_used = ?2 WHERE id = ?1", WHAT,
	                  ARGS(I(id), I(at)), NULL, errstr_r);
}

/* Remove an administrator's tokens, those with one label or all. */
int
abq_store_token_delete(struct abq_store *s, const char *admin, const char *label, size_t *count_r,
                       const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(admin), "token_delete: admin is required");
	REQUIRE(opt_ok(label), "token_delete: empty label");
	WRITE_CALL();
	if (label == NULL)
		return write_args(s, token_delete_admin, WHAT, ARGS(T(admin)), count_r, errstr_r);
	return write_args(s, "DELETE FROM tokens WHERE admin = ?1 AND label = ?2", WHAT,
	                  ARGS(T(admin), T(label)), count_r, errstr_r);
}

/* Tokens by administrator, then id; one administrator's or all (admin NULL). */
int
abq_store_token_iter(struct abq_store *s, const char *admin, abq_token_cb *cb, void *arg,
                     const char **errstr_r)
{
	char sql[512] = "SELECT " TOKEN_COLS " FROM tokens WHERE (admin, id) > (?1, ?2)";
	struct sql_arg a[4] = {T(""), I(0)};
	int n = 2;

	CHECK_STORE(s);
	REQUIRE(cb != NULL, "token_iter: no callback");
	REQUIRE(opt_ok(admin), "token_iter: empty admin");
	filter(sql, sizeof(sql), a, &n, admin, " AND admin = ?#", T(admin));
	sql_add(sql, sizeof(sql), " ORDER BY admin, id" BATCH_LIMIT);
	return iter_args(s, sql, WHAT, &token_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* Count the tokens of one administrator, or of all (admin NULL). */
int
abq_store_token_count(struct abq_store *s, const char *admin, size_t *count_r,
                      const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(count_r != NULL, "token_count: no count_r");
	REQUIRE(opt_ok(admin), "token_count: empty admin");
	if (admin == NULL)
		return count_args(s, "SELECT count(*) FROM tokens", WHAT, NOARGS, count_r,
		                  errstr_r);
	return count_args(s, "SELECT count(*) FROM tokens WHERE admin = ?1", WHAT, ARGS(T(admin)),
	                  count_r, errstr_r);
}

/* ---- account loggers --------------------------------------------------------- */

/* Add a logger, its new id into l->id. */
int
abq_store_logger_add(struct abq_store *s, struct abq_logger *l, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(l != NULL && key_ok(l->account) && key_ok(l->file),
	        "logger_add: account and file are required");
	REQUIRE(opt_ok(l->device_id), "logger_add: empty device_id");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO loggers (account, device_id, file, until_at, created_by, "
	               "created_at) VALUES (?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
	               WHAT, &logger_kind, l, &l->id, errstr_r);
}

/* Every logger by id. */
int
abq_store_logger_iter(struct abq_store *s, abq_logger_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "logger_iter: no callback");
	return iter_args(
	    s, "SELECT " LOGGER_COLS " FROM loggers WHERE id > ?1 ORDER BY id" BATCH_LIMIT, WHAT,
	    &logger_kind, ARGS(I(0)), 0, (any_cb)cb, arg, errstr_r);
}

/* Remove logger id, or every logger (id 0). */
int
abq_store_logger_delete(struct abq_store *s, int64_t id, size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(id >= 0, "logger_delete: bad id");
	WRITE_CALL();
	if (id == 0)
		return write_args(s, "DELETE FROM loggers", WHAT, NOARGS, count_r, errstr_r);
	return write_args(s, "DELETE FROM loggers WHERE id = ?1", WHAT, ARGS(I(id)), count_r,
	                  errstr_r);
}

/* ---- sync state -------------------------------------------------------------- */

/* Read one collection's sync state into a malloc'd, NUL-terminated copy. */
int
abq_store_syncstate_get(struct abq_store *s, const char *account, const char *device_id,
                        const char *collection, void **state_r, size_t *len_r, int64_t *updated_r,
                        const char **errstr_r)
{
	struct abq_syncstate st;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(int64_t, updated_r);
	REQUIRE(key_ok(account) && key_ok(device_id) && key_ok(collection) && state_r != NULL &&
	            len_r != NULL,
	        "syncstate_get: account, device_id and collection are required");
	*state_r = NULL;
	*len_r = 0;
	rc = get_args(s,
	              "SELECT " SYNCSTATE_COLS " FROM syncstate WHERE account = ?1 AND "
	              "device_key = ?2 AND collection = ?3",
	              WHAT, &syncstate_kind, &st, ARGS(T(account), K(device_id), T(collection)),
	              errstr_r);
	if (rc > 0) {
		*state_r = st.state;
		*len_r = st.len;
		*updated_r = st.updated;
		st.state = NULL;
		abq_syncstate_clear(&st);
	}
	return rc;
}

/* Insert or replace one collection's sync state. */
int
abq_store_syncstate_put(struct abq_store *s, const char *account, const char *device_id,
                        const char *collection, const void *state, size_t len, int64_t updated,
                        const char **errstr_r)
{
	struct sql_stmt *st;

	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(device_id) && key_ok(collection),
	        "syncstate_put: account, device_id and collection are required");
	REQUIRE(state != NULL || len == 0, "syncstate_put: no state");
	WRITE_CALL();
	st = stmt_get(s,
	              "INSERT INTO syncstate (account, device_id, collection, state, updated) "
	              "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, device_key, "
	              "collection) DO REPLACE",
	              WHAT, errstr_r);
	if (st == NULL)
		return -1;
	if (len > INT32_MAX)
		return sql_fail(s, errstr_r, "syncstate_put: state of %zu bytes is too large", len);
	return write_bound(st,
	                   bind_args(st, ARGS(T(account), T(device_id), T(collection))) ||
	                       s->drv->bind_blob(st, 4, state ? state : "", len) ||
	                       bi(st, 5, updated),
	                   SQL_DEFER, NULL, errstr_r);
}

/* Remove one collection's sync state, or all of the device's (NULL); counts them. */
int
abq_store_syncstate_delete(struct abq_store *s, const char *account, const char *device_id,
                           const char *collection, size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(account) && key_ok(device_id),
	        "syncstate_delete: account and device_id are required");
	REQUIRE(opt_ok(collection), "syncstate_delete: empty collection");
	WRITE_CALL();
	if (collection == NULL)
		return write_args(s, "DELETE FROM syncstate WHERE account = ?1 AND device_key = ?2",
		                  WHAT, ARGS(T(account), K(device_id)), count_r, errstr_r);
	return write_args(s,
	                  "DELETE FROM syncstate WHERE account = ?1 AND device_key = ?2 "
	                  "AND collection = ?3",
	                  WHAT, ARGS(T(account), K(device_id), T(collection)), count_r, errstr_r);
}

/* Every sync-state blob by account, DeviceId (without case) and collection. */
int
abq_store_syncstate_iter(struct abq_store *s, abq_syncstate_cb *cb, void *arg,
                         const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "syncstate_iter: no callback");
	return iter_args(s,
	                 "SELECT " SYNCSTATE_COLS " FROM syncstate WHERE (account, device_key, "
	                 "collection) > (?1, ?2, ?3) ORDER BY account, device_key, "
	                 "collection" BATCH_LIMIT,
	                 WHAT, &syncstate_kind, ARGS(T(""), T(""), T("")), 0, (any_cb)cb, arg,
	                 errstr_r);
}

/* ---- SendMail ClientIds ----------------------------------------------------- */

/* The arguments every ClientId call checks: account, device_id, client_id. */
#define CLIENTID_KEYS(what)                                                                        \
	REQUIRE(key_ok(account) && key_ok(device_id) && key_ok(client_id),                         \
	        what ": account, device_id and client_id are required");                           \
	REQUIRE(strlen(client_id) <= ABQ_CLIENTID_MAX, what ": ClientId too long")

/*
 * The reservation's steps, in the caller's transaction: prune, insert when
 * absent, else take over a dead reservation, else tell what the record says.
 */
static int
clientid_reserve_tx(struct abq_store *s, const char *account, const char *device_id,
                    const char *client_id, int64_t now, enum abq_clientid *result_r,
                    const char **errstr_r)
{
	const struct sql_arg *key = ARGS(T(account), K(device_id), T(client_id));
	int64_t v[2] = {0, 0};
	size_t n = 0;

	if (write_args(s, "DELETE FROM clientids WHERE at < ?1", "clientid_reserve",
	               ARGS(I(now - ABQ_CLIENTID_KEEP)), &n, errstr_r) < 0 ||
	    write_args(
	        s,
	        "INSERT INTO clientids (account, device_id, client_id, at, sent) VALUES "
	        "(?1, ?2, ?3, ?4, 0) ON CONFLICT (account, device_key, client_id) DO NOTHING",
	        "clientid_reserve", ARGS(T(account), T(device_id), T(client_id), I(now)), &n,
	        errstr_r) < 0)
		return -1;
	if (n == 1) {
		*result_r = ABQ_CLIENTID_RESERVED;
		return write_args(
		    s,
		    "DELETE FROM clientids WHERE account = ?1 AND device_key = ?2 AND "
		    "client_id NOT IN (SELECT client_id FROM clientids WHERE account = ?1 "
		    "AND device_key = ?2 ORDER BY at DESC, client_id DESC LIMIT ?3)",
		    "clientid_reserve", ARGS(T(account), K(device_id), I(ABQ_CLIENTID_PER_DEVICE)),
		    &n, errstr_r);
	}
	if (write_args(
	        s,
	        "UPDATE clientids SET at = ?4 WHERE account = ?1 AND device_key = ?2 AND "
	        "client_id = ?3 AND sent = 0 AND at < ?5",
	        "clientid_reserve",
	        ARGS(T(account), K(device_id), T(client_id), I(now), I(now - ABQ_CLIENTID_STALE)),
	        &n, errstr_r) < 0)
		return -1;
	if (n == 1) {
		*result_r = ABQ_CLIENTID_RESERVED;
		return 0;
	}
	if (ints_args(s,
	              "SELECT count(*), coalesce(max(sent), 0) FROM clientids WHERE account = ?1 "
	              "AND device_key = ?2 AND client_id = ?3",
	              "clientid_reserve", key, v, 2, errstr_r) < 0)
		return -1;
	*result_r = v[1] != 0 ? ABQ_CLIENTID_SENT : ABQ_CLIENTID_SENDING;
	return 0;
}

/* Reserve a ClientId before its message is submitted; see store.h. */
int
abq_store_clientid_reserve(struct abq_store *s, const char *account, const char *device_id,
                           const char *client_id, int64_t now, enum abq_clientid *result_r,
                           const char **errstr_r)
{
	bool own;
	int ret;

	CHECK_STORE(s);
	CLIENTID_KEYS("clientid_reserve");
	REQUIRE(result_r != NULL, "clientid_reserve: no place for the result");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ret = clientid_reserve_tx(s, account, device_id, client_id, now, result_r, errstr_r);
	return own_end(s, own, ret, errstr_r);
}

/* The ClientId's message went out: its record says so (written again if it went). */
int
abq_store_clientid_sent(struct abq_store *s, const char *account, const char *device_id,
                        const char *client_id, int64_t now, const char **errstr_r)
{
	CHECK_STORE(s);
	CLIENTID_KEYS("clientid_sent");
	WRITE_CALL();
	return write_args(s,
	                  "INSERT INTO clientids (account, device_id, client_id, at, sent) VALUES "
	                  "(?1, ?2, ?3, ?4, 1) ON CONFLICT (account, device_key, client_id) "
	                  "DO REPLACE",
	                  WHAT, ARGS(T(account), T(device_id), T(client_id), I(now)), NULL,
	                  errstr_r);
}

/* The ClientId's message did not go out: its reservation goes (a sent record stays). */
int
abq_store_clientid_release(struct abq_store *s, const char *account, const char *device_id,
                           const char *client_id, const char **errstr_r)
{
	size_t n;

	CHECK_STORE(s);
	CLIENTID_KEYS("clientid_release");
	WRITE_CALL();
	return write_args(s,
	                  "DELETE FROM clientids WHERE account = ?1 AND device_key = ?2 AND "
	                  "client_id = ?3 AND sent = 0",
	                  WHAT, ARGS(T(account), K(device_id), T(client_id)), &n, errstr_r);
}

/* Remove every ClientId of a device; counts them. */
int
abq_store_clientid_delete(struct abq_store *s, const char *account, const char *device_id,
                          size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	REQUIRE(key_ok(account) && key_ok(device_id),
	        "clientid_delete: account and device_id are required");
	WRITE_CALL();
	return write_args(s, "DELETE FROM clientids WHERE account = ?1 AND device_key = ?2", WHAT,
	                  ARGS(T(account), K(device_id)), count_r, errstr_r);
}

/* Look one ClientId up: 1 with its time and whether it was sent, 0, -1. */
int
abq_store_clientid_get(struct abq_store *s, const char *account, const char *device_id,
                       const char *client_id, int64_t *at_r, bool *sent_r, const char **errstr_r)
{
	int64_t v[3] = {0, 0, 0};

	CHECK_STORE(s);
	OPTIONAL(int64_t, at_r);
	OPTIONAL(bool, sent_r);
	CLIENTID_KEYS("clientid_get");
	if (ints_args(
	        s,
	        "SELECT count(*), coalesce(max(at), 0), coalesce(max(sent), 0) FROM clientids "
	        "WHERE account = ?1 AND device_key = ?2 AND client_id = ?3",
	        WHAT, ARGS(T(account), K(device_id), T(client_id)), v, 3, errstr_r) < 0)
		return -1;
	*at_r = v[1];
	*sent_r = v[2] != 0;
	return v[0] > 0;
}

/* ---- native folder ids ------------------------------------------------------ */

/* The SQL of a folder look-up by account and one more column (?2). */
#define FOLDER_BY(col)                                                                             \
	"SELECT " FOLDER_COLS " FROM folders WHERE account = ?1 AND " col                          \
	" = ?2 ORDER BY mailbox "                                                                  \
	"LIMIT 1"

/* Take the account's next folder id from its counter (under the write lock). */
static int
folder_next_id(struct abq_store *s, const char *account, int64_t *id_r, const char **errstr_r)
{
	return ints_args(s,
	                 "INSERT INTO folder_counters (account, last_id) VALUES (?1, 1) ON "
	                 "CONFLICT (account) DO UPDATE SET last_id = folder_counters.last_id + 1 "
	                 "RETURNING last_id",
	                 "folder_assign", ARGS(T(account)), id_r, 1, errstr_r);
}

/* Raise the account's counter to at least last (restores). */
static int
folder_counter_raise(struct abq_store *s, const char *account, int64_t last, const char **errstr_r)
{
	return write_args(s,
	                  "INSERT INTO folder_counters (account, last_id) VALUES (?1, ?2) ON "
	                  "CONFLICT (account) DO UPDATE SET last_id = CASE WHEN "
	                  "folder_counters.last_id > excluded.last_id THEN folder_counters.last_id "
	                  "ELSE excluded.last_id END",
	                  "folder_counter_restore", ARGS(T(account), I(last)), NULL, errstr_r);
}

/*
 * The id of a mailbox, or a new one (store.h). Looked up and, when missing,
 * counted and inserted under the write lock, so that the look-up of a second
 * handle waits for the first one's insert.
 */
int
abq_store_folder_assign(struct abq_store *s, const struct abq_folder *f, struct abq_folder *out,
                        const char **errstr_r)
{
	struct abq_folder n;
	char num[24];
	int64_t id = 0;
	bool own;
	int rc;

	CHECK_STORE(s);
	REQUIRE(f != NULL && out != NULL && key_ok(f->account) && key_ok(f->mailbox),
	        "folder_assign: account and mailbox are required");
	REQUIRE(opt_ok(f->mailbox_id) && opt_ok(f->parent_id),
	        "folder_assign: empty mailbox_id or parent_id");
	memset(out, 0, sizeof(*out));
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	rc = get_args(s, FOLDER_BY("mailbox"), WHAT, &folder_kind, out,
	              ARGS(T(f->account), T(f->mailbox)), errstr_r);
	if (rc == 0 && (rc = folder_next_id(s, f->account, &id, errstr_r)) == 0) {
		n = *f;
		snprintf(num, sizeof(num), "%lld", (long long)id);
		n.folder_id = num;
		rc =
		    put_row(s,
		            "INSERT INTO folders (" FOLDER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
		            "?7)",
		            WHAT, &folder_kind, &n, NULL, errstr_r);
	}
	if (own_end(s, own, rc < 0 ? -1 : 0, errstr_r) < 0) {
		abq_folder_clear(out);
		return -1;
	}
	if (rc == 0) {
		out->account = xstrdup(f->account);
		out->folder_id = xstrdup(num);
		out->mailbox = xstrdup(f->mailbox);
		out->mailbox_id = xstrdup_null(f->mailbox_id);
		out->uidvalidity = f->uidvalidity;
		out->parent_id = xstrdup_null(f->parent_id);
		out->created = f->created;
	}
	return rc;
}

/* One folder of account by its id. */
int
abq_store_folder_get(struct abq_store *s, const char *account, const char *folder_id,
                     struct abq_folder *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(folder_id) && out != NULL,
	        "folder_get: account and folder_id are required");
	return get_args(s, FOLDER_BY("folder_id"), WHAT, &folder_kind, out,
	                ARGS(T(account), T(folder_id)), errstr_r);
}

/* One folder of account by its mailbox name. */
int
abq_store_folder_by_mailbox(struct abq_store *s, const char *account, const char *mailbox,
                            struct abq_folder *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(mailbox) && out != NULL,
	        "folder_by_mailbox: account and mailbox are required");
	return get_args(s, FOLDER_BY("mailbox"), WHAT, &folder_kind, out,
	                ARGS(T(account), T(mailbox)), errstr_r);
}

/* One folder of account by the server's MAILBOXID (a rename seen from the server). */
int
abq_store_folder_by_mailbox_id(struct abq_store *s, const char *account, const char *mailbox_id,
                               struct abq_folder *out, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(mailbox_id) && out != NULL,
	        "folder_by_mailbox_id: account and mailbox_id are required");
	return get_args(s, FOLDER_BY("mailbox_id"), WHAT, &folder_kind, out,
	                ARGS(T(account), T(mailbox_id)), errstr_r);
}

/* An account's folders (every account's: NULL) by account and mailbox name. */
int
abq_store_folder_iter(struct abq_store *s, const char *account, abq_folder_cb *cb, void *arg,
                      const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "folder_iter: no callback");
	REQUIRE(opt_ok(account), "folder_iter: empty account");
	if (account == NULL)
		return iter_args(s,
		                 "SELECT " FOLDER_COLS " FROM folders WHERE (account, mailbox) > "
		                 "(?1, ?2) ORDER BY account, mailbox" BATCH_LIMIT,
		                 WHAT, &folder_kind, ARGS(T(""), T("")), 0, (any_cb)cb, arg,
		                 errstr_r);
	return iter_args(s,
	                 "SELECT " FOLDER_COLS " FROM folders WHERE (account, mailbox) > (?1, ?2) "
	                 "AND account = ?3 ORDER BY account, mailbox" BATCH_LIMIT,
	                 WHAT, &folder_kind, ARGS(T(""), T(""), T(account)), 0, (any_cb)cb, arg,
	                 errstr_r);
}

/*
 * Rename a folder, keeping its id (store.h): its children first (every name
 * that begins with the old name and the delimiter gets the new name instead
 * of the old; lengths in characters on both backends), then the folder
 * itself, in one transaction.
 */
int
abq_store_folder_rename(struct abq_store *s, const char *account, const char *folder_id,
                        const char *mailbox, const char *parent_id, char delimiter, size_t *count_r,
                        const char **errstr_r)
{
	struct abq_folder old, other;
	size_t n = 0;
	char *prefix = NULL;
	bool own;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	*count_r = 0;
	REQUIRE(key_ok(account) && key_ok(folder_id) && key_ok(mailbox),
	        "folder_rename: account, folder_id and mailbox are required");
	REQUIRE(opt_ok(parent_id), "folder_rename: empty parent_id");
	REQUIRE(parent_id == NULL || strcmp(parent_id, folder_id) != 0,
	        "folder_rename: a folder cannot be its own parent");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	rc = abq_store_folder_get(s, account, folder_id, &old, errstr_r);
	if (rc > 0 && strcmp(old.mailbox, mailbox) != 0) {
		rc = abq_store_folder_by_mailbox(s, account, mailbox, &other, errstr_r);
		if (rc > 0)
			rc = sql_fail(s, errstr_r,
			              "folder_rename: mailbox '%s' of %s has folder id %s already",
			              mailbox, account, other.folder_id);
		abq_folder_clear(&other);
		if (rc == 0 && delimiter != '\0') {
			prefix = xasprintf("%s%c", old.mailbox, delimiter);
			rc =
			    write_args(s,
			               "UPDATE folders SET mailbox = ?3 || substr(mailbox, "
			               "length(?2)) WHERE account = ?1 AND substr(mailbox, 1, "
			               "length(?2)) = ?2",
			               WHAT, ARGS(T(account), T(prefix), T(mailbox)), &n, errstr_r);
		}
		rc = rc < 0 ? -1 : 1;
	}
	if (rc > 0) {
		size_t one = 0;

		rc = write_args(
		    s,
		    "UPDATE folders SET mailbox = ?3, parent_id = ?4 WHERE account = ?1 "
		    "AND folder_id = ?2",
		    WHAT, ARGS(T(account), T(folder_id), T(mailbox), T(parent_id)), &one, errstr_r);
		n += one;
	}
	abq_folder_clear(&old);
	free(prefix);
	if (own_end(s, own, rc, errstr_r) < 0)
		return -1;
	*count_r = n;
	return 0;
}

/* Remove a folder and, with a delimiter, every folder under its name. */
int
abq_store_folder_delete(struct abq_store *s, const char *account, const char *folder_id,
                        char delimiter, size_t *count_r, const char **errstr_r)
{
	struct abq_folder old;
	size_t n = 0, one = 0;
	char *prefix = NULL;
	bool own;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	*count_r = 0;
	REQUIRE(key_ok(account) && key_ok(folder_id),
	        "folder_delete: account and folder_id are required");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	rc = abq_store_folder_get(s, account, folder_id, &old, errstr_r);
	if (rc > 0 && delimiter != '\0') {
		prefix = xasprintf("%s%c", old.mailbox, delimiter);
		rc = write_args(s,
		                "DELETE FROM folders WHERE account = ?1 AND substr(mailbox, 1, "
		                "length(?2)) = ?2",
		                WHAT, ARGS(T(account), T(prefix)), &n, errstr_r);
		rc = rc < 0 ? -1 : 1;
	}
	if (rc > 0)
		rc = write_args(s, "DELETE FROM folders WHERE account = ?1 AND folder_id = ?2",
		                WHAT, ARGS(T(account), T(folder_id)), &one, errstr_r);
	abq_folder_clear(&old);
	free(prefix);
	if (own_end(s, own, rc < 0 ? -1 : 0, errstr_r) < 0)
		return -1;
	*count_r = n + one;
	return 0;
}

/* Record a mailbox's UIDVALIDITY (a folder that does not exist is an error). */
int
abq_store_folder_set_uidvalidity(struct abq_store *s, const char *account, const char *folder_id,
                                 int64_t uidvalidity, const char **errstr_r)
{
	size_t n = 0;

	CHECK_STORE(s);
	REQUIRE(key_ok(account) && key_ok(folder_id),
	        "folder_set_uidvalidity: account and folder_id are required");
	WRITE_CALL();
	if (write_args(s,
	               "UPDATE folders SET uidvalidity = ?3 WHERE account = ?1 AND folder_id = ?2",
	               WHAT, ARGS(T(account), T(folder_id), I(uidvalidity)), &n, errstr_r) < 0)
		return -1;
	if (n == 0)
		return sql_fail(s, errstr_r, "folder_set_uidvalidity: no folder %s of %s",
		                folder_id, account);
	return 0;
}

/* folder_iter's callback: a copy of each folder appended to a growing array. */
struct folder_vec {
	struct abq_folder *v;
	size_t n;
};

static int
folder_vec_add(void *arg, const struct abq_folder *f)
{
	struct folder_vec *fv = arg;

	fv->v = xrealloc(fv->v, (fv->n + 1) * sizeof(*fv->v));
	fv->v[fv->n] = (struct abq_folder){
	    .account = xstrdup(f->account),
	    .folder_id = xstrdup(f->folder_id),
	    .mailbox = xstrdup(f->mailbox),
	    .mailbox_id = xstrdup_null(f->mailbox_id),
	    .uidvalidity = f->uidvalidity,
	    .parent_id = xstrdup_null(f->parent_id),
	    .created = f->created,
	};
	fv->n++;
	return 0;
}

static void
folder_vec_clear(struct folder_vec *fv)
{
	for (size_t i = 0; i < fv->n; i++)
		abq_folder_clear(&fv->v[i]);
	free(fv->v);
	memset(fv, 0, sizeof(*fv));
}

/* Whether l[0..n) lists mailbox (a linear scan: listings are short, renames rare). */
static bool
listed(const struct abq_folder *l, size_t n, const char *mailbox)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(l[i].mailbox, mailbox) == 0)
			return true;
	}
	return false;
}

/*
 * The map's folder a listed mailbox l[i] (not in the map) was before a
 * rename on the server, as an index into map, or -1: the one not listed any
 * more with the same MAILBOXID; without MAILBOXID, the one not listed with
 * the same UIDVALIDITY when it is the only such folder of the map and l[i]
 * the only such unknown mailbox of the listing (anything else: -1, a new
 * folder, which is safe).
 */
static ssize_t
rename_match(const struct folder_vec *map, const struct abq_folder *l, size_t n,
             const bool *unknown, size_t i)
{
	ssize_t found = -1;
	size_t same = 0;

	for (size_t k = 0; k < map->n; k++) {
		const struct abq_folder *g = &map->v[k];
		if (listed(l, n, g->mailbox))
			continue;
		if (l[i].mailbox_id != NULL) {
			if (g->mailbox_id != NULL && strcmp(g->mailbox_id, l[i].mailbox_id) == 0)
				return (ssize_t)k;
		} else if (l[i].uidvalidity > 0 && g->uidvalidity == l[i].uidvalidity) {
			found = (ssize_t)k;
			same++;
		}
	}
	if (found < 0 || same != 1)
		return -1;
	for (size_t k = 0; k < n; k++) {
		if (k != i && unknown[k] && l[k].uidvalidity == l[i].uidvalidity)
			return -1;
	}
	return found;
}

/* l[i]'s parent's id (its name up to the last delim) in the map, or NULL (malloc'd). */
static char *
listed_parent(struct abq_store *s, const char *account, const char *mailbox, char delim,
              const char **errstr_r)
{
	const char *cut = delim != '\0' ? strrchr(mailbox, delim) : NULL;
	struct abq_folder p;
	char *name, *id = NULL;

	if (cut == NULL || cut == mailbox)
		return NULL;
	name = xstrndup(mailbox, (size_t)(cut - mailbox));
	if (abq_store_folder_by_mailbox(s, account, name, &p, errstr_r) > 0)
		id = xstrdup(p.folder_id);
	abq_folder_clear(&p);
	free(name);
	return id;
}

/* Record a listed mailbox's MAILBOXID and UIDVALIDITY where given and new. */
static int
folder_note(struct abq_store *s, const struct abq_folder *had, const struct abq_folder *l,
            const char **errstr_r)
{
	const char *mid = l->mailbox_id != NULL ? l->mailbox_id : had->mailbox_id;
	int64_t uv = l->uidvalidity > 0 ? l->uidvalidity : had->uidvalidity;

	if (uv == had->uidvalidity &&
	    ((mid == NULL && had->mailbox_id == NULL) ||
	     (mid != NULL && had->mailbox_id != NULL && strcmp(mid, had->mailbox_id) == 0)))
		return 0;
	return write_args(s,
	                  "UPDATE folders SET mailbox_id = ?3, uidvalidity = ?4 WHERE account = "
	                  "?1 AND folder_id = ?2",
	                  "folder_list", ARGS(T(had->account), T(had->folder_id), T(mid), I(uv)),
	                  NULL, errstr_r);
}

/* Sort order of listed mailboxes: by name, so a parent comes before its children. */
static int
by_listed_name(const void *a, const void *b)
{
	return strcmp((*(const struct abq_folder *const *)a)->mailbox,
	              (*(const struct abq_folder *const *)b)->mailbox);
}

/*
 * The ids of one listing (store.h): the known mailboxes looked up, then, in
 * name order, the unknown ones matched against the map's folders no longer
 * listed (renamed with their children) or given new ids; one transaction.
 */
int
abq_store_folder_list(struct abq_store *s, const char *account, const struct abq_folder *l,
                      size_t n, char delim, bool probe, char ***ids_r, size_t *renamed_r,
                      const char **errstr_r)
{
	struct folder_vec map = {0};
	char **ids;
	bool *unknown, ask = false, loaded = false, own;
	const struct abq_folder **order;
	size_t renamed = 0;
	int rc = 0;

	CHECK_STORE(s);
	OPTIONAL(size_t, renamed_r);
	*renamed_r = 0;
	REQUIRE(key_ok(account) && ids_r != NULL, "folder_list: account and ids_r are required");
	for (size_t i = 0; i < n; i++)
		REQUIRE(key_ok(l[i].mailbox) && opt_ok(l[i].mailbox_id),
		        "folder_list: empty mailbox or mailbox_id");
	*ids_r = NULL;
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ids = xcalloc(n ? n : 1, sizeof(*ids));
	unknown = xcalloc(n ? n : 1, sizeof(*unknown));
	order = xcalloc(n ? n : 1, sizeof(*order));
	/* The known ones; with probe, which need the server's word first. */
	for (size_t i = 0; i < n && rc >= 0; i++) {
		struct abq_folder had;
		bool told = l[i].mailbox_id != NULL || l[i].uidvalidity != 0;
		rc = abq_store_folder_by_mailbox(s, account, l[i].mailbox, &had, errstr_r);
		if (rc > 0 && probe && !told && had.uidvalidity == 0) {
			ask = true;
		} else if (rc > 0) {
			ids[i] = xstrdup(had.folder_id);
			rc = folder_note(s, &had, &l[i], errstr_r);
		} else if (rc == 0) {
			unknown[i] = true;
			ask = ask || (probe && !told);
		}
		abq_folder_clear(&had);
	}
	if (rc >= 0 && ask) {
		rc = 1; /* nothing written: the caller asks the server */
		goto out;
	}
	for (size_t i = 0; i < n && rc >= 0; i++) {
		if (unknown[i] && (l[i].mailbox_id != NULL || l[i].uidvalidity > 0) && !loaded) {
			rc = abq_store_folder_iter(s, account, folder_vec_add, &map, errstr_r);
			loaded = true;
		}
		order[i] = &l[i];
	}
	qsort(order, n, sizeof(*order), by_listed_name);
	for (size_t o = 0; o < n && rc >= 0; o++) {
		size_t i = (size_t)(order[o] - l);
		struct abq_folder f = {.account = (char *)account,
		                       .mailbox = l[i].mailbox,
		                       .mailbox_id = l[i].mailbox_id,
		                       .uidvalidity = l[i].uidvalidity > 0 ? l[i].uidvalidity : 0};
		struct abq_folder out;
		ssize_t k;
		char *parent;

		if (!unknown[i])
			continue;
		/* A child that followed its renamed parent has its id now. */
		if ((rc = abq_store_folder_by_mailbox(s, account, l[i].mailbox, &out, errstr_r)) >
		    0) {
			ids[i] = xstrdup(out.folder_id);
			rc = folder_note(s, &out, &l[i], errstr_r);
			abq_folder_clear(&out);
			continue;
		}
		abq_folder_clear(&out);
		if (rc < 0)
			break;
		k = rename_match(&map, l, n, unknown, i);
		if (k >= 0) {
			struct abq_folder *g = &map.v[k];
			size_t plen = strlen(l[i].mailbox);
			char sub = delim;
			/* Children follow unless one of their new names is held already. */
			for (size_t m = 0; m < map.n && sub != '\0'; m++) {
				if (strncmp(map.v[m].mailbox, l[i].mailbox, plen) == 0 &&
				    map.v[m].mailbox[plen] == delim)
					sub = '\0';
			}
			parent = listed_parent(s, account, l[i].mailbox, delim, errstr_r);
			rc = abq_store_folder_rename(s, account, g->folder_id, l[i].mailbox, parent,
			                             sub, NULL, errstr_r);
			free(parent);
			if (rc >= 0)
				rc = folder_note(s, g, &l[i], errstr_r);
			if (rc >= 0) {
				ids[i] = xstrdup(g->folder_id);
				renamed++;
				/* The map changed under its old names: read it again. */
				folder_vec_clear(&map);
				rc = abq_store_folder_iter(s, account, folder_vec_add, &map,
				                           errstr_r);
			}
			continue;
		}
		f.parent_id = parent = listed_parent(s, account, l[i].mailbox, delim, errstr_r);
		rc = abq_store_folder_assign(s, &f, &out, errstr_r);
		if (rc >= 0)
			ids[i] = xstrdup(out.folder_id);
		abq_folder_clear(&out);
		free(parent);
	}
	rc = rc < 0 ? -1 : 0;
out:
	if (own_end(s, own, rc < 0 ? -1 : 0, errstr_r) < 0)
		rc = -1;
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		ids = NULL;
		renamed = 0;
	}
	*ids_r = ids;
	*renamed_r = renamed;
	folder_vec_clear(&map);
	free(unknown);
	free(order);
	return rc;
}

/* Every account's folder-id counter, by account. */
int
abq_store_folder_counter_iter(struct abq_store *s, abq_folder_counter_cb *cb, void *arg,
                              const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "folder_counter_iter: no callback");
	return iter_args(s,
	                 "SELECT " FOLDER_COUNTER_COLS " FROM folder_counters WHERE account > ?1 "
	                 "ORDER BY account" BATCH_LIMIT,
	                 WHAT, &folder_counter_kind, ARGS(T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* Raise an account's counter to at least the ids it had given out. */
int
abq_store_folder_counter_restore(struct abq_store *s, const struct abq_folder_counter *c,
                                 const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(c != NULL && key_ok(c->account) && c->last_id >= 0,
	        "folder_counter_restore: account is required");
	WRITE_CALL();
	return folder_counter_raise(s, c->account, c->last_id, errstr_r);
}

/* Insert a folder under its id; its account's counter goes at least that far. */
int
abq_store_folder_restore(struct abq_store *s, const struct abq_folder *f, const char **errstr_r)
{
	const char *perr;
	long long id = 0;

	CHECK_STORE(s);
	REQUIRE(f != NULL && key_ok(f->account) && key_ok(f->folder_id) && key_ok(f->mailbox),
	        "folder_restore: account, folder_id and mailbox are required");
	WRITE_CALL();
	if (put_row(s, "INSERT INTO folders (" FOLDER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	            WHAT, &folder_kind, f, NULL, errstr_r) < 0)
		return -1;
	if (parse_int(f->folder_id, 1, LLONG_MAX, &id, &perr) < 0)
		return 0; /* not one of ours: nothing to keep the counter from */
	return folder_counter_raise(s, f->account, id, errstr_r);
}

/* ---- contacts, calendars and tasks ------------------------------------------ */

/* The SQL of a collection look-up by account and coll_id. */
#define PIM_COLL_GET "SELECT " PIM_COLL_COLS " FROM pim_colls WHERE account = ?1 AND coll_id = ?2"
/* The SQL of an item look-up by account, coll_id and one more column (?3). */
#define PIM_ITEM_BY(col)                                                                           \
	"SELECT " PIM_ITEM_COLS " FROM pim_items WHERE account = ?1 AND coll_id = ?2 AND " col     \
	" = ?3"
/* A refresh of more changes than this reads the collection's map in one go. */
#define PIM_MAP_MIN 32

/* The arguments every call on one collection checks: account and coll_id. */
#define PIM_KEYS(what)                                                                             \
	REQUIRE(key_ok(account) && key_ok(coll_id), what ": account and coll_id are required")
/* An href: present, and not longer than ABQ_PIM_HREF_MAX. */
#define PIM_HREF(what, h)                                                                          \
	REQUIRE(key_ok(h), what ": an href is required");                                          \
	REQUIRE(strlen(h) <= ABQ_PIM_HREF_MAX,                                                     \
	        what ": href longer than " XSTR(ABQ_PIM_HREF_MAX) " bytes")
/* An ETag: absent (removed) or present and not longer than ABQ_PIM_ETAG_MAX. */
#define PIM_ETAG(what, e)                                                                          \
	REQUIRE(opt_ok(e), what ": empty ETag");                                                   \
	REQUIRE((e) == NULL || strlen(e) <= ABQ_PIM_ETAG_MAX,                                      \
	        what ": ETag longer than " XSTR(ABQ_PIM_ETAG_MAX) " bytes")

static bool
pim_kind_ok(int kind)
{
	return kind >= ABQ_PIM_CONTACTS && kind <= ABQ_PIM_TASKS;
}

/* Two optional strings are the same (NULL equal only to NULL). */
static bool
same_str(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Take the account's next collection number from its counter (under the write lock). */
static int
pim_next_coll_id(struct abq_store *s, const char *account, int64_t *id_r, const char **errstr_r)
{
	return ints_args(s,
	                 "INSERT INTO pim_counters (account, last_id) VALUES (?1, 1) ON "
	                 "CONFLICT (account) DO UPDATE SET last_id = pim_counters.last_id + 1 "
	                 "RETURNING last_id",
	                 "pim_coll_list", ARGS(T(account)), id_r, 1, errstr_r);
}

/* Raise the account's collection counter to at least last (restores). */
static int
pim_counter_raise(struct abq_store *s, const char *account, int64_t last, const char **errstr_r)
{
	return write_args(s,
	                  "INSERT INTO pim_counters (account, last_id) VALUES (?1, ?2) ON "
	                  "CONFLICT (account) DO UPDATE SET last_id = CASE WHEN "
	                  "pim_counters.last_id > excluded.last_id THEN pim_counters.last_id "
	                  "ELSE excluded.last_id END",
	                  "pim_counter_restore", ARGS(T(account), I(last)), NULL, errstr_r);
}

/* Remove one collection with its items; *count_r gets 0 or 1. */
static int
pim_coll_remove(struct abq_store *s, const char *account, const char *coll_id, const char *what,
                size_t *count_r, const char **errstr_r)
{
	const struct sql_arg *a = ARGS(T(account), T(coll_id));
	size_t ignored;

	if (write_args(s, "DELETE FROM pim_items WHERE account = ?1 AND coll_id = ?2", what, a,
	               &ignored, errstr_r) < 0)
		return -1;
	return write_args(s, "DELETE FROM pim_colls WHERE account = ?1 AND coll_id = ?2", what, a,
	                  count_r, errstr_r);
}

/* pim_coll_iter's callback: a copy of each collection appended to a growing array. */
struct pim_coll_vec {
	struct abq_pim_coll *v;
	size_t n;
};

static int
pim_coll_vec_add(void *arg, const struct abq_pim_coll *c)
{
	struct pim_coll_vec *cv = arg;

	cv->v = xrealloc(cv->v, (cv->n + 1) * sizeof(*cv->v));
	cv->v[cv->n] = *c;
	cv->v[cv->n].account = xstrdup(c->account);
	cv->v[cv->n].coll_id = xstrdup(c->coll_id);
	cv->v[cv->n].href = xstrdup(c->href);
	cv->v[cv->n].name = xstrdup_null(c->name);
	cv->v[cv->n].token = xstrdup_null(c->token);
	cv->n++;
	return 0;
}

static void
pim_coll_vec_clear(struct pim_coll_vec *cv)
{
	for (size_t i = 0; i < cv->n; i++)
		abq_pim_coll_clear(&cv->v[i]);
	free(cv->v);
	memset(cv, 0, sizeof(*cv));
}

/*
 * The ids of one discovery (store.h): the account's collections read once,
 * each listed one found there by (kind, href) or given a new id, then those
 * not listed removed with their items; one transaction.
 */
int
abq_store_pim_coll_list(struct abq_store *s, const char *account, const struct abq_pim_coll *l,
                        size_t n, char ***ids_r, const char **errstr_r)
{
	struct pim_coll_vec map = {0};
	bool *kept = NULL, own;
	char **ids;
	int rc;

	CHECK_STORE(s);
	if (ids_r != NULL)
		*ids_r = NULL;
	REQUIRE(key_ok(account) && ids_r != NULL, "pim_coll_list: account and ids_r are required");
	REQUIRE(n == 0 || l != NULL, "pim_coll_list: no collections");
	for (size_t i = 0; i < n; i++) {
		PIM_HREF("pim_coll_list", l[i].href);
		REQUIRE(pim_kind_ok(l[i].kind), "pim_coll_list: kind out of range");
	}
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ids = xcalloc(n ? n : 1, sizeof(*ids));
	rc = abq_store_pim_coll_iter(s, account, pim_coll_vec_add, &map, errstr_r);
	kept = xcalloc(map.n ? map.n : 1, sizeof(*kept));
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct abq_pim_coll *c = NULL;
		int64_t num = 0;

		for (size_t k = 0; k < map.n && c == NULL; k++) {
			if (map.v[k].kind == l[i].kind && strcmp(map.v[k].href, l[i].href) == 0) {
				c = &map.v[k];
				kept[k] = true;
			}
		}
		/* Listed twice: the second is the first. */
		for (size_t j = 0; j < i && c == NULL && ids[i] == NULL; j++) {
			if (l[j].kind == l[i].kind && strcmp(l[j].href, l[i].href) == 0)
				ids[i] = xstrdup(ids[j]);
		}
		if (ids[i] != NULL)
			continue;
		if (c != NULL) {
			ids[i] = xstrdup(c->coll_id);
			if (same_str(c->name, l[i].name) && c->is_default == l[i].is_default)
				continue;
			rc = write_args(
			    s,
			    "UPDATE pim_colls SET name = ?3, is_default = ?4 WHERE "
			    "account = ?1 AND coll_id = ?2",
			    WHAT, ARGS(T(account), T(c->coll_id), T(l[i].name), I(l[i].is_default)),
			    NULL, errstr_r);
			continue;
		}
		if ((rc = pim_next_coll_id(s, account, &num, errstr_r)) < 0)
			break;
		ids[i] = xasprintf("c%lld", (long long)num);
		rc = write_args(s,
		                "INSERT INTO pim_colls (account, coll_id, href, kind, name, "
		                "is_default) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		                WHAT,
		                ARGS(T(account), T(ids[i]), T(l[i].href), I(l[i].kind),
		                     T(l[i].name), I(l[i].is_default)),
		                NULL, errstr_r);
	}
	for (size_t k = 0; k < map.n && rc == 0; k++) {
		size_t one = 0;

		if (!kept[k])
			rc = pim_coll_remove(s, account, map.v[k].coll_id, WHAT, &one, errstr_r);
	}
	if (own_end(s, own, rc, errstr_r) < 0) {
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		ids = NULL;
		rc = -1;
	}
	*ids_r = ids;
	pim_coll_vec_clear(&map);
	free(kept);
	return rc;
}

/* One collection of account by its id. */
int
abq_store_pim_coll_get(struct abq_store *s, const char *account, const char *coll_id,
                       struct abq_pim_coll *out, const char **errstr_r)
{
	CHECK_STORE(s);
	PIM_KEYS("pim_coll_get");
	REQUIRE(out != NULL, "pim_coll_get: no place for the collection");
	return get_args(s, PIM_COLL_GET, WHAT, &pim_coll_kind, out, ARGS(T(account), T(coll_id)),
	                errstr_r);
}

/* An account's collections (every account's: NULL) by account, kind and href. */
int
abq_store_pim_coll_iter(struct abq_store *s, const char *account, abq_pim_coll_cb *cb, void *arg,
                        const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "pim_coll_iter: no callback");
	REQUIRE(opt_ok(account), "pim_coll_iter: empty account");
	if (account == NULL)
		return iter_args(s,
		                 "SELECT " PIM_COLL_COLS " FROM pim_colls WHERE (account, kind, "
		                 "href) > (?1, ?2, ?3) ORDER BY account, kind, href" BATCH_LIMIT,
		                 WHAT, &pim_coll_kind, ARGS(T(""), I(0), T("")), 0, (any_cb)cb, arg,
		                 errstr_r);
	return iter_args(s,
	                 "SELECT " PIM_COLL_COLS " FROM pim_colls WHERE (account, kind, href) > "
	                 "(?1, ?2, ?3) AND account = ?4 ORDER BY account, kind, href" BATCH_LIMIT,
	                 WHAT, &pim_coll_kind, ARGS(T(account), I(0), T(""), T(account)), 0,
	                 (any_cb)cb, arg, errstr_r);
}

/* Remove one collection with its items; its id stays used. */
int
abq_store_pim_coll_delete(struct abq_store *s, const char *account, const char *coll_id,
                          size_t *count_r, const char **errstr_r)
{
	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	*count_r = 0;
	PIM_KEYS("pim_coll_delete");
	WRITE_CALL();
	return delete_with(s, "DELETE FROM pim_colls WHERE account = ?1 AND coll_id = ?2",
	                   "DELETE FROM pim_items WHERE account = ?1 AND coll_id = ?2", NULL, WHAT,
	                   ARGS(T(account), T(coll_id)), count_r, errstr_r);
}

/*
 * Apply one change to an item of collection c (under the write lock; c's
 * seq and last_item move on in memory, pim_coll_save writes them): had is
 * the item's record (NULL: the href is not in the map). With force, a live
 * item with the same ETag takes a sequence too (abqd's own write). *out (may
 * be NULL) gets the record after it. An item is updated by its id and its
 * (unique) seq: PostgreSQL, before its first ANALYZE of the table, plans
 * every look-up of (account, coll_id, x) on the seq index, which the seq
 * then narrows to the row instead of the collection.
 */
static int
pim_apply(struct abq_store *s, struct abq_pim_coll *c, const struct abq_pim_item *had,
          const struct abq_pim_change *ch, bool force, const char *what, struct abq_pim_item *out,
          const char **errstr_r)
{
	struct abq_pim_item r = {0};
	char num[24];
	int rc = 0;

	if (had == NULL && ch->etag != NULL) {
		snprintf(num, sizeof(num), "%lld", (long long)++c->last_item);
		r = (struct abq_pim_item){.item_id = num,
		                          .href = (char *)ch->href,
		                          .etag = (char *)ch->etag,
		                          .seq = ++c->seq,
		                          .start = ch->start,
		                          .end = ch->end};
		r.added_seq = r.seq;
		rc = write_args(s,
		                "INSERT INTO pim_items (" PIM_ITEM_COLS ") VALUES (?1, ?2, ?3, ?4, "
		                "?5, ?6, ?6, ?7, ?8)",
		                what,
		                ARGS(T(c->account), T(c->coll_id), T(num), T(ch->href), T(ch->etag),
		                     I(r.seq), I(r.start), I(r.end)),
		                NULL, errstr_r);
	} else if (had != NULL) {
		r = *had;
		if (ch->etag == NULL && had->etag != NULL) {
			r.etag = NULL; /* removed: a tombstone, its span kept */
			r.seq = ++c->seq;
		} else if (ch->etag != NULL) {
			r.etag = (char *)ch->etag;
			/* a span 0 0 with the same ETag (a listing's) leaves the map's */
			if (ch->start != 0 || ch->end != 0 || had->etag == NULL ||
			    strcmp(had->etag, ch->etag) != 0) {
				r.start = ch->start;
				r.end = ch->end;
			}
			if (had->etag == NULL || force || strcmp(had->etag, ch->etag) != 0)
				r.seq = ++c->seq;
			if (had->etag == NULL)
				r.added_seq = r.seq; /* back after its removal: added anew */
		}
		if (r.seq != had->seq || r.start != had->start || r.end != had->end)
			rc = write_args(s,
			                "UPDATE pim_items SET etag = ?4, seq = ?5, added_seq = ?6, "
			                "start_at = ?7, end_at = ?8 WHERE account = ?1 AND "
			                "coll_id = ?2 AND item_id = ?3 AND seq = ?9",
			                what,
			                ARGS(T(c->account), T(c->coll_id), T(had->item_id),
			                     T(r.etag), I(r.seq), I(r.added_seq), I(r.start),
			                     I(r.end), I(had->seq)),
			                NULL, errstr_r);
	}
	if (out != NULL && r.item_id != NULL) {
		*out = r;
		out->account = xstrdup(c->account);
		out->coll_id = xstrdup(c->coll_id);
		out->item_id = xstrdup(r.item_id);
		out->href = xstrdup(r.href);
		out->etag = xstrdup_null(r.etag);
	}
	return rc;
}

/* Write a collection's counters after its changes (and the refresh's token and time). */
static int
pim_coll_save(struct abq_store *s, const struct abq_pim_coll *c, const char *token,
              int64_t refreshed, const char *what, const char **errstr_r)
{
	return write_args(
	    s,
	    "UPDATE pim_colls SET seq = ?3, last_item = ?4, token = coalesce(?5, "
	    "token), refreshed = CASE WHEN ?6 = 0 THEN refreshed ELSE ?6 END "
	    "WHERE account = ?1 AND coll_id = ?2",
	    what,
	    ARGS(T(c->account), T(c->coll_id), I(c->seq), I(c->last_item), T(token), I(refreshed)),
	    NULL, errstr_r);
}

/* The collection a write goes to, read under the write lock: 0, or -1 when there is none. */
static int
pim_coll_need(struct abq_store *s, const char *account, const char *coll_id, struct abq_pim_coll *c,
              const char *what, const char **errstr_r)
{
	int rc = get_args(s, PIM_COLL_GET, what, &pim_coll_kind, c, ARGS(T(account), T(coll_id)),
	                  errstr_r);

	if (rc == 0)
		return sql_fail(s, errstr_r, "%s: no collection %s of %s", what, coll_id, account);
	return rc < 0 ? -1 : 0;
}

/* A collection's items, as pim_item_iter_coll collects them, sorted by href. */
struct pim_item_vec {
	struct abq_pim_item *v;
	size_t n;
};

static int
pim_item_vec_add(void *arg, const struct abq_pim_item *i)
{
	struct pim_item_vec *iv = arg;

	iv->v = xrealloc(iv->v, (iv->n + 1) * sizeof(*iv->v));
	iv->v[iv->n] = *i;
	iv->v[iv->n].account = NULL;
	iv->v[iv->n].coll_id = NULL;
	iv->v[iv->n].item_id = xstrdup(i->item_id);
	iv->v[iv->n].href = xstrdup(i->href);
	iv->v[iv->n].etag = xstrdup_null(i->etag);
	iv->n++;
	return 0;
}

static void
pim_item_vec_clear(struct pim_item_vec *iv)
{
	for (size_t i = 0; i < iv->n; i++)
		abq_pim_item_clear(&iv->v[i]);
	free(iv->v);
	memset(iv, 0, sizeof(*iv));
}

static int
item_by_href(const void *a, const void *b)
{
	return strcmp(((const struct abq_pim_item *)a)->href,
	              ((const struct abq_pim_item *)b)->href);
}

/* A refresh's changes, sorted by href and then by their position in the list. */
static int
change_by_href(const void *a, const void *b)
{
	const struct abq_pim_change *x = *(const struct abq_pim_change *const *)a,
	                            *y = *(const struct abq_pim_change *const *)b;
	int c = strcmp(x->href, y->href);

	return c != 0 ? c : (x > y) - (x < y);
}

/* Whether href is among the changes (sorted: their addresses by href). */
static bool
change_listed(const struct abq_pim_change *const *sorted, size_t n, const char *href)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sorted[mid]->href, href);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * The steps of a refresh (store.h) in the caller's transaction: the
 * collection read, its map too when the changes are many or complete; each
 * href's last change applied in l's order; with complete, the live items not
 * listed made tombstones; the collection's counters, token and time written.
 */
static int
pim_refresh_tx(struct abq_store *s, const char *account, const char *coll_id,
               const struct abq_pim_change *l, size_t n, bool complete, const char *token,
               int64_t now, int64_t *seq_r, const char **errstr_r)
{
	struct pim_item_vec map = {0};
	struct abq_pim_coll c;
	const struct abq_pim_change **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	bool *skip = xcalloc(n ? n : 1, sizeof(*skip));
	bool use_map = complete || n > PIM_MAP_MIN;
	int rc;

	for (size_t i = 0; i < n; i++)
		sorted[i] = &l[i];
	qsort(sorted, n, sizeof(*sorted), change_by_href);
	/* An href listed twice: its last change counts. */
	for (size_t k = 0; k + 1 < n; k++)
		skip[sorted[k] - l] = strcmp(sorted[k]->href, sorted[k + 1]->href) == 0;
	rc = pim_coll_need(s, account, coll_id, &c, "pim_refresh", errstr_r);
	if (rc == 0 && use_map) {
		rc = abq_store_pim_changes(s, account, coll_id, 0, 0, pim_item_vec_add, &map, NULL,
		                           errstr_r);
		if (map.n > 1)
			qsort(map.v, map.n, sizeof(*map.v), item_by_href);
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct abq_pim_change *ch = &l[i];
		struct abq_pim_item one = {0}, key = {.href = (char *)ch->href};
		const struct abq_pim_item *had = &one;

		if (skip[i])
			continue;
		if (use_map)
			had = map.n ? bsearch(&key, map.v, map.n, sizeof(*map.v), item_by_href)
			            : NULL;
		else if ((rc = abq_store_pim_item_by_href(s, account, coll_id, ch->href, &one,
		                                          errstr_r)) <= 0)
			had = NULL;
		if (rc >= 0)
			rc = pim_apply(s, &c, had, ch, false, "pim_refresh", NULL, errstr_r);
		abq_pim_item_clear(&one);
	}
	for (size_t k = 0; complete && k < map.n && rc == 0; k++) {
		const struct abq_pim_change gone = {.href = map.v[k].href};

		if (map.v[k].etag != NULL && !change_listed(sorted, n, map.v[k].href))
			rc = pim_apply(s, &c, &map.v[k], &gone, false, "pim_refresh", NULL,
			               errstr_r);
	}
	if (rc == 0)
		rc = pim_coll_save(s, &c, token, now, "pim_refresh", errstr_r);
	if (rc == 0)
		*seq_r = c.seq;
	abq_pim_coll_clear(&c);
	pim_item_vec_clear(&map);
	free(sorted);
	free(skip);
	return rc < 0 ? -1 : 0;
}

/* Bring a collection's map up to a refresh of the server; see store.h. */
int
abq_store_pim_refresh(struct abq_store *s, const char *account, const char *coll_id,
                      const struct abq_pim_change *l, size_t n, bool complete, const char *token,
                      int64_t now, int64_t *seq_r, const char **errstr_r)
{
	bool own;
	int ret;

	CHECK_STORE(s);
	OPTIONAL(int64_t, seq_r);
	*seq_r = 0;
	PIM_KEYS("pim_refresh");
	REQUIRE(n == 0 || l != NULL, "pim_refresh: no changes");
	for (size_t i = 0; i < n; i++) {
		PIM_HREF("pim_refresh", l[i].href);
		PIM_ETAG("pim_refresh", l[i].etag);
	}
	REQUIRE(opt_ok(token), "pim_refresh: empty token");
	REQUIRE(token == NULL || strlen(token) <= ABQ_PIM_HREF_MAX,
	        "pim_refresh: token longer than " XSTR(ABQ_PIM_HREF_MAX) " bytes");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	ret = pim_refresh_tx(s, account, coll_id, l, n, complete, token, now, seq_r, errstr_r);
	if (own_end(s, own, ret, errstr_r) < 0) {
		*seq_r = 0;
		return -1;
	}
	return 0;
}

/* pim_changes' callback: the caller's, and the last seq delivered. */
struct pim_changes_arg {
	abq_pim_item_cb *cb;
	void *arg;
	size_t n;
	int64_t last;
};

static int
pim_changes_cb(void *arg, const struct abq_pim_item *i)
{
	struct pim_changes_arg *ca = arg;

	ca->n++;
	ca->last = i->seq;
	return ca->cb(ca->arg, i);
}

/* The items changed after since, in seq order, at most limit; see store.h. */
int
abq_store_pim_changes(struct abq_store *s, const char *account, const char *coll_id, int64_t since,
                      size_t limit, abq_pim_item_cb *cb, void *arg, bool *more_r,
                      const char **errstr_r)
{
	struct pim_changes_arg ca = {cb, arg, 0, 0};
	int64_t top = 0;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(bool, more_r);
	*more_r = false;
	PIM_KEYS("pim_changes");
	REQUIRE(cb != NULL, "pim_changes: no callback");
	rc = iter_args(s,
	               "SELECT " PIM_ITEM_COLS " FROM pim_items WHERE (account, coll_id, seq) > "
	               "(?1, ?2, ?3) AND account = ?4 AND coll_id = ?5 ORDER BY account, "
	               "coll_id, seq LIMIT ?6",
	               WHAT, &pim_item_kind,
	               ARGS(T(account), T(coll_id), I(since), T(account), T(coll_id),
	                    I(limit == 0 || limit > ITER_BATCH ? ITER_BATCH : (int64_t)limit)),
	               limit, (any_cb)pim_changes_cb, &ca, errstr_r);
	if (rc != 0 || limit == 0 || ca.n < limit)
		return rc;
	if (ints_args(s,
	              "SELECT coalesce(max(seq), 0) FROM pim_items WHERE account = ?1 AND "
	              "coll_id = ?2",
	              WHAT, ARGS(T(account), T(coll_id)), &top, 1, errstr_r) < 0)
		return -1;
	*more_r = top > ca.last;
	return 0;
}

/* One item of a collection by its id. */
int
abq_store_pim_item_get(struct abq_store *s, const char *account, const char *coll_id,
                       const char *item_id, struct abq_pim_item *out, const char **errstr_r)
{
	CHECK_STORE(s);
	PIM_KEYS("pim_item_get");
	REQUIRE(key_ok(item_id) && out != NULL, "pim_item_get: item_id is required");
	return get_args(s, PIM_ITEM_BY("item_id"), WHAT, &pim_item_kind, out,
	                ARGS(T(account), T(coll_id), T(item_id)), errstr_r);
}

/* One item of a collection by its href (compared exactly). */
int
abq_store_pim_item_by_href(struct abq_store *s, const char *account, const char *coll_id,
                           const char *href, struct abq_pim_item *out, const char **errstr_r)
{
	CHECK_STORE(s);
	PIM_KEYS("pim_item_by_href");
	REQUIRE(out != NULL, "pim_item_by_href: no place for the item");
	PIM_HREF("pim_item_by_href", href);
	return get_args(s, PIM_ITEM_BY("href"), WHAT, &pim_item_kind, out,
	                ARGS(T(account), T(coll_id), T(href)), errstr_r);
}

/* One item abqd wrote itself, with the next sequence; see store.h. */
int
abq_store_pim_item_put(struct abq_store *s, const char *account, const char *coll_id,
                       const char *href, const char *etag, int64_t start, int64_t end,
                       struct abq_pim_item *item_r, const char **errstr_r)
{
	const struct abq_pim_change ch = {href, etag, start, end};
	struct abq_pim_coll c = {0};
	struct abq_pim_item had = {0}, after = {0};
	int64_t seq0;
	bool own;
	int rc;

	CHECK_STORE(s);
	if (item_r != NULL)
		memset(item_r, 0, sizeof(*item_r));
	PIM_KEYS("pim_item_put");
	PIM_HREF("pim_item_put", href);
	PIM_ETAG("pim_item_put", etag);
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	rc = pim_coll_need(s, account, coll_id, &c, WHAT, errstr_r);
	seq0 = c.seq;
	if (rc == 0)
		rc = abq_store_pim_item_by_href(s, account, coll_id, href, &had, errstr_r);
	if (rc >= 0)
		rc = pim_apply(s, &c, rc > 0 ? &had : NULL, &ch, true, WHAT, &after, errstr_r);
	if (rc == 0 && c.seq != seq0)
		rc = pim_coll_save(s, &c, NULL, 0, WHAT, errstr_r);
	abq_pim_coll_clear(&c);
	abq_pim_item_clear(&had);
	if (own_end(s, own, rc, errstr_r) < 0) {
		abq_pim_item_clear(&after);
		return -1;
	}
	if (item_r != NULL)
		*item_r = after;
	else
		abq_pim_item_clear(&after);
	return 0;
}

/* Delete a collection's tombstones up to a sequence; cursors before it start over. */
int
abq_store_pim_prune(struct abq_store *s, const char *account, const char *coll_id, int64_t upto,
                    size_t *count_r, const char **errstr_r)
{
	struct abq_pim_coll c = {0};
	bool own;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	*count_r = 0;
	PIM_KEYS("pim_prune");
	WRITE_CALL();
	if (own_begin(s, true, &own, errstr_r) < 0)
		return -1;
	rc = get_args(s, PIM_COLL_GET, WHAT, &pim_coll_kind, &c, ARGS(T(account), T(coll_id)),
	              errstr_r);
	if (upto > c.seq)
		upto = c.seq;
	if (rc > 0)
		rc = write_args(s,
		                "DELETE FROM pim_items WHERE account = ?1 AND coll_id = ?2 AND "
		                "etag IS NULL AND seq <= ?3",
		                WHAT, ARGS(T(account), T(coll_id), I(upto)), count_r, errstr_r);
	if (rc == 0 && upto > c.pruned)
		rc = write_args(s,
		                "UPDATE pim_colls SET pruned = ?3 WHERE account = ?1 AND "
		                "coll_id = ?2",
		                WHAT, ARGS(T(account), T(coll_id), I(upto)), NULL, errstr_r);
	abq_pim_coll_clear(&c);
	if (own_end(s, own, rc < 0 ? -1 : 0, errstr_r) < 0) {
		*count_r = 0;
		return -1;
	}
	return 0;
}

/* Every account's collection-id counter, by account. */
int
abq_store_pim_counter_iter(struct abq_store *s, abq_folder_counter_cb *cb, void *arg,
                           const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "pim_counter_iter: no callback");
	return iter_args(s,
	                 "SELECT " FOLDER_COUNTER_COLS " FROM pim_counters WHERE account > ?1 "
	                 "ORDER BY account" BATCH_LIMIT,
	                 WHAT, &folder_counter_kind, ARGS(T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* Raise an account's collection counter to at least the numbers it had given out. */
int
abq_store_pim_counter_restore(struct abq_store *s, const struct abq_folder_counter *c,
                              const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(c != NULL && key_ok(c->account) && c->last_id >= 0,
	        "pim_counter_restore: account is required");
	WRITE_CALL();
	return pim_counter_raise(s, c->account, c->last_id, errstr_r);
}

/* Insert a collection under its id; its account's counter goes at least that far. */
int
abq_store_pim_coll_restore(struct abq_store *s, const struct abq_pim_coll *c, const char **errstr_r)
{
	const char *perr;
	long long num = 0;

	CHECK_STORE(s);
	REQUIRE(c != NULL && key_ok(c->account) && key_ok(c->coll_id) && key_ok(c->href) &&
	            pim_kind_ok(c->kind),
	        "pim_coll_restore: account, coll_id, href and kind are required");
	WRITE_CALL();
	if (put_row(s,
	            "INSERT INTO pim_colls (" PIM_COLL_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	            "?7, ?8, ?9, ?10, ?11)",
	            WHAT, &pim_coll_kind, c, NULL, errstr_r) < 0)
		return -1;
	if (c->coll_id[0] != 'c' || parse_int(c->coll_id + 1, 1, LLONG_MAX, &num, &perr) < 0)
		return 0; /* not one of ours: nothing to keep the counter from */
	return pim_counter_raise(s, c->account, num, errstr_r);
}

/* Every item of every collection by account, collection and seq. */
int
abq_store_pim_item_iter(struct abq_store *s, abq_pim_item_cb *cb, void *arg, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(cb != NULL, "pim_item_iter: no callback");
	return iter_args(s,
	                 "SELECT " PIM_ITEM_COLS " FROM pim_items WHERE (account, coll_id, seq) > "
	                 "(?1, ?2, ?3) ORDER BY account, coll_id, seq" BATCH_LIMIT,
	                 WHAT, &pim_item_kind, ARGS(T(""), T(""), I(0)), 0, (any_cb)cb, arg,
	                 errstr_r);
}

/* Insert an item under its id. */
int
abq_store_pim_item_restore(struct abq_store *s, const struct abq_pim_item *i, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(i != NULL && key_ok(i->account) && key_ok(i->coll_id) && key_ok(i->item_id) &&
	            key_ok(i->href) && opt_ok(i->etag),
	        "pim_item_restore: account, coll_id, item_id and href are required");
	WRITE_CALL();
	return put_row(s,
	               "INSERT INTO pim_items (" PIM_ITEM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	               "?7, ?8, ?9)",
	               WHAT, &pim_item_kind, i, NULL, errstr_r);
}

/* ---- record destructors ----------------------------------------------------- */

/*
 * Free the owned strings (and blob) of a record, as its kind's field table
 * lists them, and zero it, so that a cleared record can be cleared again or
 * reused. NULL is accepted.
 */
static void
rec_clear(const struct sql_kind *k, void *rec)
{
	if (rec == NULL)
		return;
	for (size_t i = 0; i < k->n; i++)
		if (k->fields[i].type == F_STR || k->fields[i].type == F_TARGET ||
		    k->fields[i].type == F_BLOB)
			free(*(void **)(void *)((char *)rec + k->fields[i].off));
	memset(rec, 0, k->size);
}

/*
 * The destructors of store.h's records: abq_history_clear, abq_change_clear,
 * abq_notice_clear, abq_template_clear, abq_admin_clear, abq_token_clear,
 * abq_logger_clear, abq_syncstate_clear, abq_folder_clear,
 * abq_folder_counter_clear, abq_pim_coll_clear and abq_pim_item_clear.
 */
#define CLEAR(name)                                                                                \
	void abq_##name##_clear(struct abq_##name *r)                                              \
	{                                                                                          \
		rec_clear(&name##_kind, r);                                                        \
	}
CLEAR(history)
CLEAR(change)
CLEAR(notice)
CLEAR(template)
CLEAR(admin)
CLEAR(token)
CLEAR(logger)
CLEAR(syncstate)
CLEAR(folder)
CLEAR(folder_counter)
CLEAR(pim_coll)
CLEAR(pim_item)

/* ---- several nodes (store.h) -------------------------------------------- */

/* A change listener; NULL with *errstr_r NULL when the driver has none (no push). */
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
	if (s->drv->listener_new == NULL)
		return NULL; /* the caller reads the change log periodically */
	return s->drv->listener_new(s, errstr_r);
}

/* (Re)connect a listener and start listening. */
int
abq_store_listener_connect(struct abq_store_listener *l, const char **errstr_r)
{
	OPTIONAL(const char *, errstr_r);
	REQUIRE(l != NULL, "no listener");
	return l->drv->listener_connect(l, errstr_r);
}

/* The socket to poll for reading, -1 while not connected. */
int
abq_store_listener_fd(const struct abq_store_listener *l)
{
	return l == NULL ? -1 : l->drv->listener_fd(l);
}

/* Drain the notices: 1 (*seq_r: the highest), 0 (none) or -1 (lost). */
int
abq_store_listener_read(struct abq_store_listener *l, int64_t *seq_r, const char **errstr_r)
{
	OPTIONAL(const char *, errstr_r);
	REQUIRE(l != NULL, "no listener");
	return l->drv->listener_read(l, seq_r, errstr_r);
}

/* Free a listener and forget the caller's pointer to it. */
void
abq_store_listener_free(struct abq_store_listener **l)
{
	if (l == NULL || *l == NULL)
		return;
	(*l)->drv->listener_free(*l);
	*l = NULL;
}

/* Try to take lock `key` for this handle: 1 held, 0 held by another node, -1. */
int
abq_store_try_lock(struct abq_store *s, int64_t key, const char **errstr_r)
{
	CHECK_STORE(s);
	if (s->drv->try_lock == NULL)
		return 1; /* one node: the lock is trivially held */
	return s->drv->try_lock(s, key, errstr_r);
}

/* Whether the store's connection was up at the last call. */
bool
abq_store_connected(const struct abq_store *s)
{
	return s != NULL && (s->drv->connected == NULL || s->drv->connected(s));
}

/* ---- moving a registry, accounts ------------------------------------------ */

/*
 * Write a record of kind k under its source id with sql. A statement prepared
 * for the call: a migration is a one-off, and the cached statements stay the
 * daemon's.
 */
static int
restore(struct abq_store *s, const char *sql, const struct sql_kind *k, const void *rec, int64_t id,
        const char **errstr_r)
{
	struct sql_stmt *st;
	int ret;

	REQUIRE(rec != NULL && id > 0, "restore: a record with its id is required");
	if ((st = stmt_new(s, sql, "restore", errstr_r)) == NULL)
		return -1;
	ret = write_bound(st, bind_row(st, k, rec), 0, NULL, errstr_r);
	s->drv->finish(st);
	return ret;
}

/* Insert a rule under its id. */
int
abq_store_rule_restore(struct abq_store *s, const struct abq_rule *r, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(r == NULL || (key_ok(r->pattern) && state_ok(r->level)),
	        "rule_restore: pattern and level are required");
	return restore(
	    s, "INSERT INTO rules (" RULE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	    &rule_kind, r, r ? r->id : 0, errstr_r);
}

/* Insert a history row under its id. */
int
abq_store_history_restore(struct abq_store *s, const struct abq_history *h, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(h == NULL || key_ok(h->what), "history_restore: what is required");
	return restore(s, history_insert_id, &history_kind, h, h ? h->id : 0, errstr_r);
}

/* Insert a notice under its id. */
int
abq_store_notice_restore(struct abq_store *s, const struct abq_notice *n, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(n == NULL || (key_ok(n->recipient) && key_ok(n->kind)),
	        "notice_restore: recipient and kind are required");
	return restore(s,
	               "INSERT INTO outbox (" NOTICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
	               "coalesce(?8, 'queued'), ?9, ?10, ?11, ?12, ?13)",
	               &notice_kind, n, n ? n->id : 0, errstr_r);
}

/* Insert a change under its seq. */
int
abq_store_change_restore(struct abq_store *s, const struct abq_change *c, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(c == NULL || (key_ok(c->key) && c->kind >= ABQ_CHANGE_DEVICE &&
	                      c->kind <= ABQ_CHANGE_LOGGER),
	        "change_restore: kind and key are required");
	return restore(s, "INSERT INTO changes (" CHANGE_COLS ") VALUES (?1, ?2, ?3, ?4)",
	               &change_kind, c, c ? c->seq : 0, errstr_r);
}

/* After the restores: the driver's counters go on after the highest ids. */
int
abq_store_restore_finish(struct abq_store *s, const char **errstr_r)
{
	CHECK_STORE(s);
	if (s->drv->restore_finish == NULL)
		return 0; /* the backend's counters follow the ids by themselves */
	return s->drv->restore_finish(s, errstr_r);
}

/* Read a meta value: 1 with *value_r (malloc'd), 0 when absent, or -1. */
static int
meta_read(struct abq_store *s, const char *key, char **value_r, const char **errstr_r)
{
	struct sql_stmt *st =
	    stmt_get(s, "SELECT value FROM meta WHERE key = ?1", "meta_get", errstr_r);
	int rc;

	*value_r = NULL;
	if (st == NULL)
		return -1;
	if (bt(st, 1, key))
		return bind_fail(st, errstr_r);
	rc = s->drv->next_row(st, errstr_r);
	if (rc > 0) {
		*value_r = xstrdup_null(s->drv->col_text(st, 0));
		rc = *value_r != NULL;
	}
	s->drv->reset(st);
	return rc;
}

/* A meta value of the store; see store.h. */
int
abq_store_meta_get(struct abq_store *s, const char *key, char **value_r, const char **errstr_r)
{
	CHECK_STORE(s);
	REQUIRE(value_r != NULL, "meta_get: no place for the value");
	*value_r = NULL;
	REQUIRE(key_ok(key), "meta_get: no key");
	return meta_read(s, key, value_r, errstr_r);
}

/*
 * The rewrite of bare accounts to "name@domain" (store.h), one statement at a
 * time, in this order: devices that lose a collision (the one seen less
 * recently; the canonical one on a tie), then the sync state of the pairs whose
 * device is gone (and, between two states with no device, the bare one), then
 * every table's bare accounts; entries, account attributes, native folder
 * ids and the map of contacts, calendars and tasks keep the canonical record
 * of a collision. ?1 is the domain. History and the outbox
 * are rewritten too, so a filter by account finds what was recorded before.
 */
static const struct {
	const char *sql;
	bool counted; /* a registry record (device, entry, attribute) */
} canon[] = {
    {"DELETE FROM devices WHERE instr(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE instr(b.account, '@') = 0 AND b.account || '@' || ?1 = devices.account"
     " AND b.device_key = devices.device_key AND b.last_seen > devices.last_seen)",
     true},
    {"DELETE FROM devices WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = devices.account || '@' || ?1 AND c.device_key = devices.device_key)",
     true},
    {"DELETE FROM syncstate WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM devices c"
     " WHERE c.account = syncstate.account || '@' || ?1"
     " AND c.device_key = syncstate.device_key)",
     false},
    {"DELETE FROM syncstate WHERE instr(account, '@') > 0 AND EXISTS (SELECT 1 FROM devices b"
     " WHERE instr(b.account, '@') = 0 AND b.account || '@' || ?1 = syncstate.account"
     " AND b.device_key = syncstate.device_key)",
     false},
    {"DELETE FROM syncstate WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM syncstate c"
     " WHERE c.account = syncstate.account || '@' || ?1"
     " AND c.device_key = syncstate.device_key AND c.collection = syncstate.collection)",
     false},
    {"UPDATE syncstate SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE devices SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", true},
    {"DELETE FROM entries WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM entries c"
     " WHERE c.account = entries.account || '@' || ?1 AND c.device_key = entries.device_key)",
     true},
    {"UPDATE entries SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", true},
    {"DELETE FROM attrs WHERE scope = 'account' AND instr(target, '@') = 0 AND EXISTS"
     " (SELECT 1 FROM attrs c WHERE c.scope = 'account'"
     " AND c.target = attrs.target || '@' || ?1 AND c.name_key = attrs.name_key)",
     true},
    {"UPDATE attrs SET target = target || '@' || ?1"
     " WHERE scope = 'account' AND instr(target, '@') = 0",
     true},
    /* native folder ids: a canonical account that has its own keeps them */
    {"DELETE FROM folders WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM"
     " folder_counters c WHERE c.account = folders.account || '@' || ?1)",
     false},
    {"DELETE FROM folder_counters WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM"
     " folder_counters c WHERE c.account = folder_counters.account || '@' || ?1)",
     false},
    {"UPDATE folders SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE folder_counters SET account = account || '@' || ?1 WHERE instr(account, '@') = 0",
     false},
    /* SendMail ClientIds: of a ClientId recorded both ways, the canonical one stays */
    {"DELETE FROM clientids WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM clientids c"
     " WHERE c.account = clientids.account || '@' || ?1"
     " AND c.device_key = clientids.device_key AND c.client_id = clientids.client_id)",
     false},
    {"UPDATE clientids SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    /* contacts, calendars and tasks: as the folder ids, a canonical account's map stays */
    {"DELETE FROM pim_items WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM"
     " pim_counters c WHERE c.account = pim_items.account || '@' || ?1)",
     false},
    {"DELETE FROM pim_colls WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM"
     " pim_counters c WHERE c.account = pim_colls.account || '@' || ?1)",
     false},
    {"DELETE FROM pim_counters WHERE instr(account, '@') = 0 AND EXISTS (SELECT 1 FROM"
     " pim_counters c WHERE c.account = pim_counters.account || '@' || ?1)",
     false},
    {"UPDATE pim_items SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE pim_colls SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE pim_counters SET account = account || '@' || ?1 WHERE instr(account, '@') = 0", false},
    {"UPDATE history SET account = account || '@' || ?1"
     " WHERE account <> '' AND instr(account, '@') = 0",
     false},
    {"UPDATE outbox SET account = account || '@' || ?1"
     " WHERE account <> '' AND instr(account, '@') = 0",
     false},
    {"INSERT INTO meta (key, value) VALUES ('" ABQ_STORE_META_ACCOUNT_DOMAIN "', ?1)"
     " ON CONFLICT (key) DO REPLACE",
     false},
};

/*
 * Give bare accounts the default domain; see store.h. The recorded domain is
 * read first without the write lock, so that the common case (done already)
 * costs one read; it is read again under the lock, so that two processes
 * starting at once rewrite once. Every statement of canon[] runs once,
 * prepared for the call.
 */
int
abq_store_accounts_canonicalize(struct abq_store *s, const char *default_domain, size_t *count_r,
                                const char **errstr_r)
{
	char *domain, *cur = NULL;
	int rc;

	CHECK_STORE(s);
	OPTIONAL(size_t, count_r);
	*count_r = 0;
	if (default_domain == NULL || *default_domain == '\0')
		return 0;
	REQUIRE(domain_valid(default_domain), "accounts_canonicalize: not a valid domain");
	domain = str_lower(xstrdup(default_domain));
	rc = meta_read(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &cur, errstr_r);
	if (rc < 0 || (rc == 1 && strcmp(cur, domain) == 0))
		goto out;
	free(cur);
	cur = NULL;
	if ((rc = abq_store_begin(s, errstr_r)) < 0)
		goto out;
	rc = meta_read(s, ABQ_STORE_META_ACCOUNT_DOMAIN, &cur, errstr_r);
	if (rc == 1 && strcmp(cur, domain) == 0) {
		abq_store_rollback(s);
		rc = 0;
		goto out;
	}
	if (rc < 0 || fault_now(errstr_r))
		goto fail;
	for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		struct sql_stmt *st = stmt_new(s, canon[i].sql, WHAT, errstr_r);
		size_t n = 0;

		if (st == NULL)
			goto fail;
		rc = write_bound(st, bt(st, 1, domain), 0, &n, errstr_r);
		s->drv->finish(st);
		if (rc < 0)
			goto fail;
		if (canon[i].counted)
			*count_r += n;
	}
	if (abq_store_commit(s, errstr_r) == 0) {
		rc = 0;
		goto out;
	}
fail:
	abq_store_rollback(s);
	*count_r = 0;
	rc = -1;
out:
	free(cur);
	free(domain);
	return rc < 0 ? -1 : 0;
}
