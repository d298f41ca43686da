/*
 * store_sql.c: the store's operations, written once over the SQL driver.
 *
 * Every operation of struct abq_store_ops but opening and a backend's
 * specialities lives here, in one SQL (see store_sql.h for its conventions),
 * with rows read into records by field tables (column -> struct offset and
 * type) rather than a reader per record. Both ops tables are at the end: the
 * shared operations with each backend's own.
 *
 * Statements of the point operations (get, put, delete, add) are prepared once
 * per handle and cached. Iteration reads in batches of ITER_BATCH rows with a
 * statement private to that iteration (keyset pagination: each batch starts
 * after the key of the previous batch's last row, parameters ?1..?k). The
 * statement is reset before the callbacks of a batch run, so no read is
 * pending while a callback works: a callback may write to the store, open and
 * commit a transaction, or start another iteration, and the iteration goes on
 * after the last key it delivered. A row a callback inserts or moves ahead of
 * that key is seen later in the same iteration; one behind it is not.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_cols.h"
#include "store/store_sql.h"

#define ITER_BATCH  256
#define STR(x)      #x
#define XSTR(x)     STR(x)
#define BATCH_LIMIT " LIMIT " XSTR(ITER_BATCH)

/* The shared SQL of the cached statements (store_sql.h: key columns, upserts). */
static const char *const stmt_sql[SQ_COUNT] = {
    [SQ_DEVICE_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE account = ?1 AND device_key = ?2",
    [SQ_DEVICE_PUT] = "INSERT INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                      "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) "
                      "ON CONFLICT (account, device_key) DO REPLACE",
    [SQ_DEVICE_DELETE_ALL] = "DELETE FROM devices WHERE device_key = ?1",
    [SQ_DEVICE_DELETE_ONE] = "DELETE FROM devices WHERE device_key = ?1 AND account = ?2",
    [SQ_DEVICE_COUNT] = "SELECT count(*) FROM devices WHERE account = ?1 AND (?2 = 0 OR "
                        "first_seen < ?2)",
    [SQ_DEVICE_COUNT_ALL] = "SELECT count(*) FROM devices WHERE ?1 = 0 OR first_seen < ?1",
    [SQ_DEVICE_TOUCH] = "UPDATE devices SET last_seen = ?3, last_address = coalesce(?4, "
                        "last_address), last_command = coalesce(?5, last_command) WHERE "
                        "account = ?1 AND device_key = ?2 AND last_seen <= ?3",
    [SQ_ENTRY_GET] = "SELECT " ENTRY_COLS " FROM entries WHERE device_key = ?1 AND "
                     "account_key = coalesce(?2, '')",
    [SQ_ENTRY_PUT] = "INSERT INTO entries (" ENTRY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5) "
                     "ON CONFLICT (device_key, account_key) DO REPLACE",
    [SQ_ENTRY_DELETE_ALL] = "DELETE FROM entries WHERE device_key = ?1",
    [SQ_ENTRY_DELETE_ALONE] = "DELETE FROM entries WHERE device_key = ?1 AND account IS NULL",
    [SQ_ENTRY_DELETE_ONE] = "DELETE FROM entries WHERE device_key = ?1 AND account = ?2",
    [SQ_RULE_INSERT] = "INSERT INTO rules (characteristic, match, pattern, level, rule_order, "
                       "domain, created_by, created_at) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                       "RETURNING id",
    [SQ_RULE_UPDATE] = "UPDATE rules SET characteristic = ?2, match = ?3, pattern = ?4, "
                       "level = ?5, rule_order = ?6, domain = ?7, created_by = ?8, "
                       "created_at = ?9 WHERE id = ?1",
    [SQ_RULE_GET] = "SELECT " RULE_COLS " FROM rules WHERE id = ?1",
    [SQ_RULE_DELETE] = "DELETE FROM rules WHERE id = ?1",
    [SQ_ATTR_GET] = "SELECT " ATTR_COLS " FROM attrs WHERE scope = ?1 AND target = ?2 AND "
                    "name_key = ?3",
    [SQ_ATTR_PUT] = "INSERT INTO attrs (" ATTR_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (scope, target, name_key) DO REPLACE",
    [SQ_ATTR_DELETE] = "DELETE FROM attrs WHERE scope = ?1 AND target = ?2 AND name_key = ?3",
    [SQ_HISTORY_ADD] = "INSERT INTO history (at, who, what, subject, old_value, new_value, "
                       "reason, device_id, account) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                       "RETURNING id",
    [SQ_HISTORY_ADD_ID] = "INSERT INTO history (" HISTORY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                          "?6, ?7, ?8, ?9, ?10)",
    [SQ_CHANGE_ADD] = "INSERT INTO changes (at, kind, key) VALUES (?1, ?2, ?3) RETURNING seq",
    [SQ_NOTICE_ADD] = "INSERT INTO outbox (recipient, kind, account, device_id, template_ref, "
                      "rendered, state, attempts, next_attempt, last_error, created, sent) "
                      "VALUES (?2, ?3, ?4, ?5, ?6, ?7, coalesce(?8, 'queued'), ?9, ?10, ?11, "
                      "?12, ?13) RETURNING id",
    [SQ_NOTICE_MARK] = "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, "
                       "last_error = ?5, sent = ?6 WHERE id = ?1",
    [SQ_NOTICE_STATS] = "SELECT count(*), coalesce(min(created), 0) FROM outbox WHERE state = ?1",
    [SQ_TEMPLATE_GET] = "SELECT " TEMPLATE_COLS " FROM templates WHERE scope = ?1 AND "
                        "domain = ?2 AND kind = ?3 AND locale_key = ?4",
    [SQ_TEMPLATE_PUT] = "INSERT INTO templates (" TEMPLATE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, "
                        "?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (scope, domain, kind, locale_key) "
                        "DO REPLACE",
    [SQ_TEMPLATE_DELETE] = "DELETE FROM templates WHERE scope = ?1 AND domain = ?2 AND "
                           "kind = ?3 AND locale_key = ?4",
    [SQ_SYNCSTATE_GET] = "SELECT " SYNCSTATE_COLS " FROM syncstate WHERE account = ?1 AND "
                         "device_key = ?2 AND collection = ?3",
    [SQ_SYNCSTATE_PUT] = "INSERT INTO syncstate (account, device_id, collection, state, updated) "
                         "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, device_key, "
                         "collection) DO REPLACE",
    [SQ_SYNCSTATE_DELETE_ONE] = "DELETE FROM syncstate WHERE account = ?1 AND device_key = ?2 "
                                "AND collection = ?3",
    [SQ_SYNCSTATE_DELETE_DEVICE] = "DELETE FROM syncstate WHERE account = ?1 AND device_key = ?2",
    [SQ_SYNCSTATE_DELETE_DEVID] = "DELETE FROM syncstate WHERE device_key = ?1",
    [SQ_SYNCSTATE_DELETE_DEVID_ACCOUNT] = "DELETE FROM syncstate WHERE device_key = ?1 AND "
                                          "account = ?2",
    [SQ_ADMIN_GET] = "SELECT " ADMIN_COLS " FROM admins WHERE name = ?1",
    [SQ_ADMIN_PUT] = "INSERT INTO admins (" ADMIN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                     "ON CONFLICT (name) DO REPLACE",
    [SQ_ADMIN_DELETE] = "DELETE FROM admins WHERE name = ?1",
    [SQ_TOKEN_ADD] = "INSERT INTO tokens (admin, label, hash, created_by, created_at, last_used) "
                     "VALUES (?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
    [SQ_TOKEN_FIND] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1",
    [SQ_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
    [SQ_TOKEN_DELETE_ADMIN] = "DELETE FROM tokens WHERE admin = ?1",
    [SQ_TOKEN_DELETE_LABEL] = "DELETE FROM tokens WHERE admin = ?1 AND label = ?2",
    [SQ_TOKEN_COUNT] = "SELECT count(*) FROM tokens WHERE admin = ?1",
    [SQ_TOKEN_COUNT_ALL] = "SELECT count(*) FROM tokens",
    [SQ_META_GET] = "SELECT value FROM meta WHERE key = ?1",
};

/* ---- errors and the dialect ---------------------------------------------- */

int
sql_fail(struct sql_db *db, const char **errstr_r, const char *fmt, ...)
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

char *
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

void
sql_db_init(struct sql_db *db, const struct abq_store_ops *ops, const struct sql_driver *drv)
{
	db->base.ops = ops;
	db->drv = drv;
}

void
sql_db_finish(struct sql_db *db)
{
	for (size_t i = 0; i < SQ_COUNT; i++)
		if (db->stmt[i] != NULL)
			db->drv->finish(db->stmt[i]);
	memset(db->stmt, 0, sizeof(db->stmt));
}

static struct sql_db *
D(struct abq_store *s)
{
	return (struct sql_db *)(void *)s;
}

/* The cached statement id, prepared on first use, labelled what. */
static struct sql_stmt *
stmt_get(struct sql_db *db, enum sql_stmt_id id, const char *what, const char **errstr_r)
{
	if (db->stmt[id] == NULL) {
		char *sql =
		    sql_dialect(db->drv->dialect,
		                id == SQ_CHANGE_LAST ? db->drv->change_last_sql : stmt_sql[id]);

		db->stmt[id] = db->drv->prepare(db, sql, true, errstr_r);
		free(sql);
		if (db->stmt[id] == NULL)
			return NULL;
	}
	db->stmt[id]->what = what;
	return db->stmt[id];
}

/* A statement private to one call (an iteration, a restore), in the dialect. */
static struct sql_stmt *
stmt_new(struct sql_db *db, const char *shared_sql, const char *what, const char **errstr_r)
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
    [ABQ_CHANGE_DEVICE] = "device", [ABQ_CHANGE_ENTRY] = "entry",       [ABQ_CHANGE_RULE] = "rule",
    [ABQ_CHANGE_ATTR] = "attr",     [ABQ_CHANGE_TEMPLATE] = "template",
};

/* Parse a change kind's stored name. */
static int
kind_parse(const char *t, int *out)
{
	for (int k = ABQ_CHANGE_DEVICE; k <= ABQ_CHANGE_TEMPLATE; k++)
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
		const char *t = f->type == F_I64 || f->type == F_INT || f->type == F_BLOB
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
    DV(F_STR, account),      DV(F_STR, device_id),
    DV(F_STR, device_type),  DV(F_STR, model),
    DV(F_STR, imei),         DV(F_STR, friendly_name),
    DV(F_STR, os),           DV(F_STR, os_language),
    DV(F_STR, phone_number), DV(F_STR, mobile_operator),
    DV(F_STR, user_agent),   DV(F_STR, eas_version),
    DV(F_STR, last_address), DV(F_STR, last_command),
    DV(F_I64, first_seen),   DV(F_I64, last_seen),
    DV(F_STATE, state),      DV(F_REASON, reason),
    DV(F_I64, rule_id),      DV(F_STR, state_by),
    DV(F_I64, state_at),
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
#define SY(type, m) FIELD(struct abq_syncstate, type, m)
static const struct sql_field syncstate_fields[] = {
    SY(F_STR, account), SY(F_STR, device_id), SY(F_STR, collection),
    SY(F_BLOB, state),  SY(F_LEN, len),       SY(F_I64, updated),
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
KIND(syncstate, "sync state", 3, 0, 1 | K_LOWER, 2);

/* Bind field c of a record to parameter i, as flags (K_*) say. */
static int
bind_field(struct sql_stmt *st, int i, const struct sql_kind *k, const void *rec, size_t c,
           int flags)
{
	const struct sql_field *f = &k->fields[c];
	const char *base = rec, *t = NULL;
	const void *p = base + f->off;
	int v = *(const int *)p; /* the enums */

	switch (f->type) {
	case F_I64:
		return bi(st, i, *(const int64_t *)p);
	case F_INT:
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
 * Write a whole record with cached statement id: an upsert (id_r NULL; the
 * write may be deferred), or an insert returning the new id into *id_r.
 */
static int
put_row(struct abq_store *s, enum sql_stmt_id id, const char *what, const struct sql_kind *k,
        const void *rec, int64_t *id_r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get((struct sql_db *)(void *)s, id, what, errstr_r);

	if (st == NULL)
		return -1;
	if (id_r != NULL)
		return ints_bound(st, bind_row(st, k, rec), id_r, 1, errstr_r);
	return write_bound(st, bind_row(st, k, rec), SQL_DEFER, NULL, errstr_r);
}

/* Open a transaction of the call's own unless the caller has one (*own_r). */
static int
own_begin(struct sql_db *db, bool write_lock, bool *own_r, const char **errstr_r)
{
	*own_r = !db->drv->in_tx(db);
	return *own_r ? db->drv->begin(db, write_lock, errstr_r) : 0;
}

/* End the call's own transaction: commit after success (ret 0), else roll back. */
static int
own_end(struct sql_db *db, bool own, int ret, const char **errstr_r)
{
	if (!own)
		return ret;
	if (ret == 0 && db->drv->commit(db, errstr_r) == 0)
		return 0;
	db->drv->rollback(db);
	return -1;
}

/* ---- transactions ---------------------------------------------------------- */

static int
sql_store_begin(struct abq_store *s, const char **errstr_r)
{
	return D(s)->drv->begin(D(s), true, errstr_r);
}

static int
sql_store_commit(struct abq_store *s, const char **errstr_r)
{
	return D(s)->drv->commit(D(s), errstr_r);
}

static void
sql_store_rollback(struct abq_store *s)
{
	D(s)->drv->rollback(D(s));
}

/* The store's location and files, as the backend set them at open. */
static const char *
sql_store_location(const struct abq_store *s)
{
	return ((const struct sql_db *)(const void *)s)->location;
}

static const char *const *
sql_store_files(const struct abq_store *s)
{
	return ((const struct sql_db *)(const void *)s)->files;
}

/* Close: the cached statements, then the backend's connection. */
static void
sql_store_close(struct abq_store *s)
{
	sql_db_finish(D(s));
	D(s)->drv->close(D(s));
}

/* ---- parameters ---------------------------------------------------------- */

/* A parameter of a point operation: text, a key (text compared without case), an integer. */
struct sql_arg {
	char type; /* 't', 'k', 'i'; 0 ends a list */
	const char *s;
	int64_t i;
};
#define T(v)                                                                                       \
	{                                                                                          \
		't', (v), 0                                                                        \
	}
#define K(v)                                                                                       \
	{                                                                                          \
		'k', (v), 0                                                                        \
	}
#define I(v)                                                                                       \
	{                                                                                          \
		'i', NULL, (v)                                                                     \
	}
#define ARGS(...) ((const struct sql_arg[]){__VA_ARGS__, {0, NULL, 0}})
#define V(...)    ((struct sql_arg)__VA_ARGS__)
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

/* Look a record up with cached statement id: 1 (found, in *out), 0 or -1. */
static int
get_args(struct abq_store *s, enum sql_stmt_id id, const char *what, const struct sql_kind *k,
         void *out, const struct sql_arg *a, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), id, what, errstr_r);

	memset(out, 0, k->size);
	return st == NULL ? -1 : get_one(st, bind_args(st, a), k, out, errstr_r);
}

/*
 * Run a write with cached statement id: counted into *count_r, or, with
 * count_r NULL, perhaps deferred by the driver.
 */
static int
write_args(struct abq_store *s, enum sql_stmt_id id, const char *what, const struct sql_arg *a,
           size_t *count_r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), id, what, errstr_r);

	if (count_r != NULL)
		*count_r = 0;
	return st == NULL ? -1 : write_bound(st, bind_args(st, a), SQL_DEFER, count_r, errstr_r);
}

/* Run a query with cached statement id whose one row holds n integers. */
static int
ints_args(struct abq_store *s, enum sql_stmt_id id, const char *what, const struct sql_arg *a,
          int64_t *v, int n, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), id, what, errstr_r);

	return st == NULL ? -1 : ints_bound(st, bind_args(st, a), v, n, errstr_r);
}

/* A count of a query with cached statement id into *count_r. */
static int
count_args(struct abq_store *s, enum sql_stmt_id id, const char *what, const struct sql_arg *a,
           size_t *count_r, const char **errstr_r)
{
	int64_t n = 0;

	*count_r = 0;
	if (ints_args(s, id, what, a, &n, 1, errstr_r) < 0)
		return -1;
	*count_r = (size_t)n;
	return 0;
}

/*
 * Delete with cached statement id, counted into *count_r, and then with also
 * (what goes with it), both under the same parameters, in one transaction.
 */
static int
delete_with(struct abq_store *s, enum sql_stmt_id id, enum sql_stmt_id also, const char *what,
            const struct sql_arg *a, size_t *count_r, const char **errstr_r)
{
	size_t ignored;
	bool own;
	int ret;

	*count_r = 0;
	if (own_begin(D(s), true, &own, errstr_r) < 0)
		return -1;
	ret = write_args(s, id, what, a, count_r, errstr_r);
	if (ret == 0)
		ret = write_args(s, also, what, a, &ignored, errstr_r);
	if (own_end(D(s), own, ret, errstr_r) < 0) {
		*count_r = 0;
		return -1;
	}
	return 0;
}

/* ---- devices ------------------------------------------------------------- */

/* Look up (account, device_id); device_id matches without case. */
static int
sql_device_get(struct abq_store *s, const char *account, const char *device_id,
               struct abq_device *out, const char **errstr_r)
{
	return get_args(s, SQ_DEVICE_GET, "device_get", &device_kind, out,
	                ARGS(T(account), K(device_id)), errstr_r);
}

/*
 * Write the whole device record, replacing the one of (account, device_id):
 * a DeviceId spelt in another case replaces the record and its spelling.
 */
static int
sql_device_put(struct abq_store *s, const struct abq_device *d, const char **errstr_r)
{
	return put_row(s, SQ_DEVICE_PUT, "device_put", &device_kind, d, NULL, errstr_r);
}

/*
 * Delete a DeviceId's records, of every account or of one, and their mailbox
 * sync state (store.h), in one transaction; counts the records.
 */
static int
sql_device_delete(struct abq_store *s, const char *device_id, const char *account, size_t *count_r,
                  const char **errstr_r)
{
	return delete_with(s, account ? SQ_DEVICE_DELETE_ONE : SQ_DEVICE_DELETE_ALL,
	                   account ? SQ_SYNCSTATE_DELETE_DEVID_ACCOUNT : SQ_SYNCSTATE_DELETE_DEVID,
	                   "device_delete",
	                   account ? ARGS(K(device_id), T(account)) : ARGS(K(device_id)), count_r,
	                   errstr_r);
}

/* Count an account's devices (or all) first seen before a time (0: ever). */
static int
sql_device_count(struct abq_store *s, const char *account, int64_t before, size_t *count_r,
                 const char **errstr_r)
{
	return count_args(s, account ? SQ_DEVICE_COUNT : SQ_DEVICE_COUNT_ALL, "device_count",
	                  account ? ARGS(T(account), I(before)) : ARGS(I(before)), count_r,
	                  errstr_r);
}

/*
 * Apply the last-seen updates, in a transaction of their own unless the caller
 * has one open, so that a batch costs one sync. A device that no longer exists
 * is skipped, and so is an update older than the recorded last_seen.
 */
static int
sql_device_touch(struct abq_store *s, const struct abq_seen *v, size_t n, const char **errstr_r)
{
	bool own;
	int ret = 0;

	if (own_begin(D(s), false, &own, errstr_r) < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = write_args(s, SQ_DEVICE_TOUCH, "device_touch",
		                 ARGS(T(v[i].account), K(v[i].device_id), I(v[i].last_seen),
		                      T(v[i].last_address), T(v[i].last_command)),
		                 NULL, errstr_r);
	return own_end(D(s), own, ret, errstr_r);
}

/* ---- list entries ---------------------------------------------------------- */

/* Look up an entry; account NULL is the DeviceId-alone entry (stored NULL). */
static int
sql_entry_get(struct abq_store *s, const char *device_id, const char *account,
              struct abq_entry *out, const char **errstr_r)
{
	return get_args(s, SQ_ENTRY_GET, "entry_get", &entry_kind, out,
	                ARGS(K(device_id), T(account)), errstr_r);
}

/* Write an entry, replacing the one with the same key. */
static int
sql_entry_put(struct abq_store *s, const struct abq_entry *e, const char **errstr_r)
{
	return put_row(s, SQ_ENTRY_PUT, "entry_put", &entry_kind, e, NULL, errstr_r);
}

/* Delete entries: DeviceId/account, the DeviceId-alone one, or all of them. */
static int
sql_entry_delete(struct abq_store *s, const char *device_id, const char *account, bool all_accounts,
                 size_t *count_r, const char **errstr_r)
{
	return write_args(s,
	                  account        ? SQ_ENTRY_DELETE_ONE
	                  : all_accounts ? SQ_ENTRY_DELETE_ALL
	                                 : SQ_ENTRY_DELETE_ALONE,
	                  "entry_delete",
	                  account ? ARGS(K(device_id), T(account)) : ARGS(K(device_id)), count_r,
	                  errstr_r);
}

/* ---- rules ------------------------------------------------------------------- */

/* Insert a rule and hand back the id the store assigned (never reused). */
static int
sql_rule_insert(struct abq_store *s, struct abq_rule *r, const char **errstr_r)
{
	return put_row(s, SQ_RULE_INSERT, "rule_insert", &rule_kind, r, &r->id, errstr_r);
}

/* Rewrite every column of rule r->id; a missing id is an error, not a no-op. */
static int
sql_rule_update(struct abq_store *s, const struct abq_rule *r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), SQ_RULE_UPDATE, "rule_update", errstr_r);
	size_t n = 0;

	if (st == NULL || write_bound(st, bind_row(st, &rule_kind, r), 0, &n, errstr_r) < 0)
		return -1;
	if (n == 0)
		return sql_fail(D(s), errstr_r, "rule_update: no rule with id %lld",
		                (long long)r->id);
	return 0;
}

/* Look up a rule by id. */
static int
sql_rule_get(struct abq_store *s, int64_t id, struct abq_rule *out, const char **errstr_r)
{
	return get_args(s, SQ_RULE_GET, "rule_get", &rule_kind, out, ARGS(I(id)), errstr_r);
}

/* Delete a rule by id; a missing id is an error so "deleteRule 7" cannot do nothing. */
static int
sql_rule_delete(struct abq_store *s, int64_t id, const char **errstr_r)
{
	size_t n = 0;

	if (write_args(s, SQ_RULE_DELETE, "rule_delete", ARGS(I(id)), &n, errstr_r) < 0)
		return -1;
	if (n == 0)
		return sql_fail(D(s), errstr_r, "rule_delete: no rule with id %lld", (long long)id);
	return 0;
}

/* ---- attributes ------------------------------------------------------------ */

/* An attribute's key; the global scope is stored with target ''. */
#define ATTR_KEY(scope, target, name)                                                              \
	ARGS(T(abq_scope_name(scope)),                                                             \
	     T((scope) == ABQ_SCOPE_GLOBAL || (target) == NULL ? "" : (target)), K(name))

static int
sql_attr_get(struct abq_store *s, enum abq_scope scope, const char *target, const char *name,
             struct abq_attr *out, const char **errstr_r)
{
	return get_args(s, SQ_ATTR_GET, "attr_get", &attr_kind, out, ATTR_KEY(scope, target, name),
	                errstr_r);
}

/* Set an attribute, replacing the previous value at that scope (and its name's spelling). */
static int
sql_attr_put(struct abq_store *s, const struct abq_attr *a, const char **errstr_r)
{
	return put_row(s, SQ_ATTR_PUT, "attr_put", &attr_kind, a, NULL, errstr_r);
}

/* Remove an attribute at a scope; nothing to remove is not an error. */
static int
sql_attr_delete(struct abq_store *s, enum abq_scope scope, const char *target, const char *name,
                const char **errstr_r)
{
	return write_args(s, SQ_ATTR_DELETE, "attr_delete", ATTR_KEY(scope, target, name), NULL,
	                  errstr_r);
}

/* ---- history, change log, outbox ---------------------------------------- */

/*
 * Append a history row and hand back its id: one the driver reserved ahead
 * (so that the insert need not wait for its answer), or the one the insert
 * returns.
 */
static int
sql_history_add(struct abq_store *s, struct abq_history *h, const char **errstr_r)
{
	struct sql_db *db = D(s);
	struct abq_history with_id = *h;
	int got = 0;

	if (db->drv->reserve_history_id != NULL &&
	    (got = db->drv->reserve_history_id(db, &with_id.id, errstr_r)) < 0)
		return -1;
	if (!got)
		return put_row(s, SQ_HISTORY_ADD, "history_add", &history_kind, h, &h->id,
		               errstr_r);
	if (put_row(s, SQ_HISTORY_ADD_ID, "history_add", &history_kind, &with_id, NULL, errstr_r) <
	    0)
		return -1;
	h->id = with_id.id;
	return 0;
}

/*
 * Append a change; its seq is taken under the write lock (outside a
 * transaction, in a short one of its own), so that seq order is commit order.
 */
static int
sql_change_add(struct abq_store *s, enum abq_change_kind kind, const char *key, int64_t at,
               const char **errstr_r)
{
	int64_t seq = 0;
	bool own;
	int ret;

	if (own_begin(D(s), true, &own, errstr_r) < 0)
		return -1;
	ret = ints_args(s, SQ_CHANGE_ADD, "change_add",
	                ARGS(I(at), T(change_kind_names[kind]), T(key)), &seq, 1, errstr_r);
	if (ret == 0 && D(s)->drv->change_written != NULL)
		D(s)->drv->change_written(D(s), seq);
	return own_end(D(s), own, ret, errstr_r);
}

/* The highest seq ever given out (the driver's SQL knows where it is kept). */
static int
sql_change_last(struct abq_store *s, int64_t *seq_r, const char **errstr_r)
{
	*seq_r = 0;
	return ints_args(s, SQ_CHANGE_LAST, "change_last", NOARGS, seq_r, 1, errstr_r);
}

/* Queue a notice and hand back its id. */
static int
sql_notice_add(struct abq_store *s, struct abq_notice *n, const char **errstr_r)
{
	return put_row(s, SQ_NOTICE_ADD, "notice_add", &notice_kind, n, &n->id, errstr_r);
}

/* One aggregate over the rows in state (the outbox_due index leads with it). */
static int
sql_notice_stats(struct abq_store *s, const char *state, int64_t *count_r, int64_t *oldest_r,
                 const char **errstr_r)
{
	int64_t v[2] = {0, 0};

	if (ints_args(s, SQ_NOTICE_STATS, "notice_stats", ARGS(T(state)), v, 2, errstr_r) < 0)
		return -1;
	*count_r = v[0];
	*oldest_r = v[1];
	return 0;
}

/* Record the outcome of a delivery attempt; a missing id is an error. */
static int
sql_notice_mark(struct abq_store *s, int64_t id, const char *state, int attempts,
                int64_t next_attempt, const char *last_error, int64_t sent, const char **errstr_r)
{
	size_t n = 0;

	if (write_args(s, SQ_NOTICE_MARK, "notice_mark",
	               ARGS(I(id), T(state), I(attempts), I(next_attempt), T(last_error), I(sent)),
	               &n, errstr_r) < 0)
		return -1;
	if (n == 0)
		return sql_fail(D(s), errstr_r, "no notice with id %lld", (long long)id);
	return 0;
}

/* ---- notice templates -------------------------------------------------------- */

/* The four key columns of a template; the domain is '' for global. */
#define TEMPLATE_KEY(scope, domain, kind, locale)                                                  \
	ARGS(T(abq_scope_name(scope)), T((scope) == ABQ_SCOPE_GLOBAL ? "" : (domain)), T(kind),    \
	     K(locale))

/* Insert or replace one template (and its locale's spelling). */
static int
sql_template_put(struct abq_store *s, const struct abq_template *t, const char **errstr_r)
{
	return put_row(s, SQ_TEMPLATE_PUT, "template_put", &template_kind, t, NULL, errstr_r);
}

static int
sql_template_get(struct abq_store *s, enum abq_scope scope, const char *domain, const char *kind,
                 const char *locale, struct abq_template *out, const char **errstr_r)
{
	return get_args(s, SQ_TEMPLATE_GET, "template_get", &template_kind, out,
	                TEMPLATE_KEY(scope, domain, kind, locale), errstr_r);
}

static int
sql_template_delete(struct abq_store *s, enum abq_scope scope, const char *domain, const char *kind,
                    const char *locale, size_t *count_r, const char **errstr_r)
{
	return write_args(s, SQ_TEMPLATE_DELETE, "template_delete",
	                  TEMPLATE_KEY(scope, domain, kind, locale), count_r, errstr_r);
}

/* ---- administrators and tokens --------------------------------------------- */

static int
sql_admin_get(struct abq_store *s, const char *name, struct abq_admin *out, const char **errstr_r)
{
	return get_args(s, SQ_ADMIN_GET, "admin_get", &admin_kind, out, ARGS(T(name)), errstr_r);
}

static int
sql_admin_put(struct abq_store *s, const struct abq_admin *a, const char **errstr_r)
{
	return put_row(s, SQ_ADMIN_PUT, "admin_put", &admin_kind, a, NULL, errstr_r);
}

/* Remove an administrator and their tokens in one transaction: no token outlives its owner. */
static int
sql_admin_delete(struct abq_store *s, const char *name, size_t *count_r, const char **errstr_r)
{
	return delete_with(s, SQ_ADMIN_DELETE, SQ_TOKEN_DELETE_ADMIN, "admin_delete", ARGS(T(name)),
	                   count_r, errstr_r);
}

/* Add a token; a hash already stored fails on the UNIQUE constraint. */
static int
sql_token_add(struct abq_store *s, struct abq_token *t, const char **errstr_r)
{
	return put_row(s, SQ_TOKEN_ADD, "token_add", &token_kind, t, &t->id, errstr_r);
}

static int
sql_token_find(struct abq_store *s, const char *hash, struct abq_token *out, const char **errstr_r)
{
	return get_args(s, SQ_TOKEN_FIND, "token_find", &token_kind, out, ARGS(T(hash)), errstr_r);
}

static int
sql_token_touch(struct abq_store *s, int64_t id, int64_t at, const char **errstr_r)
{
	return write_args(s, SQ_TOKEN_TOUCH, "token_touch", ARGS(I(id), I(at)), NULL, errstr_r);
}

static int
sql_token_delete(struct abq_store *s, const char *admin, const char *label, size_t *count_r,
                 const char **errstr_r)
{
	return write_args(s, label ? SQ_TOKEN_DELETE_LABEL : SQ_TOKEN_DELETE_ADMIN, "token_delete",
	                  label ? ARGS(T(admin), T(label)) : ARGS(T(admin)), count_r, errstr_r);
}

static int
sql_token_count(struct abq_store *s, const char *admin, size_t *count_r, const char **errstr_r)
{
	return count_args(s, admin ? SQ_TOKEN_COUNT : SQ_TOKEN_COUNT_ALL, "token_count",
	                  admin ? ARGS(T(admin)) : NOARGS, count_r, errstr_r);
}

/* ---- sync state -------------------------------------------------------------- */

/* Read one collection's sync state into a malloc'd, NUL-terminated copy. */
static int
sql_syncstate_get(struct abq_store *s, const char *account, const char *device_id,
                  const char *collection, void **state_r, size_t *len_r, int64_t *updated_r,
                  const char **errstr_r)
{
	struct abq_syncstate st;
	int rc = get_args(s, SQ_SYNCSTATE_GET, "syncstate_get", &syncstate_kind, &st,
	                  ARGS(T(account), K(device_id), T(collection)), errstr_r);

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
static int
sql_syncstate_put(struct abq_store *s, const char *account, const char *device_id,
                  const char *collection, const void *state, size_t len, int64_t updated,
                  const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), SQ_SYNCSTATE_PUT, "syncstate_put", errstr_r);

	if (st == NULL)
		return -1;
	if (len > INT32_MAX)
		return sql_fail(D(s), errstr_r, "syncstate_put: state of %zu bytes is too large",
		                len);
	return write_bound(st,
	                   bind_args(st, ARGS(T(account), T(device_id), T(collection))) ||
	                       D(s)->drv->bind_blob(st, 4, state, len) || bi(st, 5, updated),
	                   SQL_DEFER, NULL, errstr_r);
}

/* Remove one collection's sync state, or all of the device's; counts them. */
static int
sql_syncstate_delete(struct abq_store *s, const char *account, const char *device_id,
                     const char *collection, size_t *count_r, const char **errstr_r)
{
	return write_args(s, collection ? SQ_SYNCSTATE_DELETE_ONE : SQ_SYNCSTATE_DELETE_DEVICE,
	                  "syncstate_delete",
	                  collection ? ARGS(T(account), K(device_id), T(collection))
	                             : ARGS(T(account), K(device_id)),
	                  count_r, errstr_r);
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
	struct sql_stmt *st = stmt_new(D(s), sql, what, errstr_r);

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

/*
 * Devices in (account, device_id) order. The WHERE clause holds only the
 * filters that are set, so that the indexes on them can serve. The domain
 * filter compares the account's tail with "@domain" (not LIKE, whose % and _
 * would be wildcards inside a domain name); bare accounts belong to
 * default_domain.
 */
static int
sql_device_iter(struct abq_store *s, const struct abq_device_filter *f, abq_device_cb *cb,
                void *arg, const char **errstr_r)
{
	char sql[2048] =
	    "SELECT " DEVICE_COLS " FROM devices WHERE (account, device_key) > (?1, ?2)";
	bool bare =
	    f->domain != NULL && f->default_domain != NULL && str_ieq(f->domain, f->default_domain);
	char *suffix = f->domain ? str_lower(xasprintf("@%s", f->domain)) : NULL;
	struct sql_arg a[12] = {T(""), T("")};
	int n = 2, ret;

	filter(sql, sizeof(sql), a, &n, f->account, " AND account = ?#", V(T(f->account)));
	filter(sql, sizeof(sql), a, &n, f->device_id, " AND device_key = ?#", V(K(f->device_id)));
	filter(sql, sizeof(sql), a, &n, suffix,
	       bare ? " AND (substr(account, length(account) - length(?#) + 1) = ?# OR "
	              "instr(account, '@') = 0)"
	            : " AND substr(account, length(account) - length(?#) + 1) = ?#",
	       V(T(suffix)));
	filter(sql, sizeof(sql), a, &n, f->state != ABQ_STATE_NONE, " AND state = ?#",
	       V(T(state_text(f->state))));
	filter(sql, sizeof(sql), a, &n, f->seen_before, " AND last_seen < ?#",
	       V(I(f->seen_before)));
	filter(sql, sizeof(sql), a, &n, f->seen_since, " AND last_seen >= ?#", V(I(f->seen_since)));
	filter(sql, sizeof(sql), a, &n, f->not_individual, " AND reason IS DISTINCT FROM ?#",
	       V(T(abq_reason_name(ABQ_REASON_INDIVIDUAL))));
	sql_add(sql, sizeof(sql), " ORDER BY account, device_key" BATCH_LIMIT);
	ret = iter_args(s, sql, "device_iter", &device_kind, a, 0, (any_cb)cb, arg, errstr_r);
	free(suffix);
	return ret;
}

/* Entries by DeviceId, the DeviceId-alone entry ('' sorts first) before accounts. */
static int
sql_entry_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb, void *arg,
               const char **errstr_r)
{
	char sql[512] =
	    "SELECT " ENTRY_COLS " FROM entries WHERE (device_key, account_key) > (?1, ?2)";
	struct sql_arg a[4] = {T(""), T("")};
	int n = 2;

	filter(sql, sizeof(sql), a, &n, state != ABQ_STATE_NONE, " AND state = ?#",
	       V(T(state_text(state))));
	sql_add(sql, sizeof(sql), " ORDER BY device_key, account_key" BATCH_LIMIT);
	return iter_args(s, sql, "entry_iter", &entry_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

#define RULE_RANK "(CASE WHEN domain IS NULL THEN 1 ELSE 0 END)"

/* Rules: domain rules by domain, then global ones; each by order, then id. */
static int
sql_rule_iter(struct abq_store *s, const char *domain, bool all, abq_rule_cb *cb, void *arg,
              const char **errstr_r)
{
	char sql[1024] = "SELECT " RULE_COLS " FROM rules WHERE (" RULE_RANK ", coalesce(domain, "
	                 "''), rule_order, id) > (?1, ?2, ?3, ?4)";
	struct sql_arg a[6] = {I(-1), T(""), I(INT64_MIN), I(0)};
	int n = 4;

	filter(sql, sizeof(sql), a, &n, domain, " AND domain = ?#", V(T(domain)));
	if (!domain && !all)
		sql_add(sql, sizeof(sql), " AND domain IS NULL");
	sql_add(sql, sizeof(sql),
	        " ORDER BY " RULE_RANK ", coalesce(domain, ''), rule_order, id" BATCH_LIMIT);
	return iter_args(s, sql, "rule_iter", &rule_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

#define ATTR_RANK "(CASE scope WHEN 'global' THEN 0 WHEN 'domain' THEN 1 ELSE 2 END)"

/*
 * Attributes by scope (global, domain, account: the enum's order, not the
 * names' alphabetical one), then target and name.
 */
static int
sql_attr_iter(struct abq_store *s, abq_attr_cb *cb, void *arg, const char **errstr_r)
{
	return iter_args(
	    s,
	    "SELECT " ATTR_COLS " FROM attrs WHERE (" ATTR_RANK ", target, name_key) > "
	    "(?1, ?2, ?3) ORDER BY " ATTR_RANK ", target, name_key" BATCH_LIMIT,
	    "attr_iter", &attr_kind, ARGS(I(-1), T(""), T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* History by id: oldest first, or with a limit the newest rows, newest first. */
static int
sql_history_iter(struct abq_store *s, const struct abq_history_filter *f, abq_history_cb *cb,
                 void *arg, const char **errstr_r)
{
	bool newest = f->limit != 0;
	struct sql_arg a[5] = {I(newest ? INT64_MAX : 0)};
	char sql[1024];
	int n = 1;

	snprintf(sql, sizeof(sql), "SELECT " HISTORY_COLS " FROM history WHERE id %s ?1",
	         newest ? "<" : ">");
	filter(sql, sizeof(sql), a, &n, f->device_id, " AND device_key = ?#", V(K(f->device_id)));
	filter(sql, sizeof(sql), a, &n, f->account, " AND account = ?#", V(T(f->account)));
	filter(sql, sizeof(sql), a, &n, f->since, " AND at >= ?#", V(I(f->since)));
	sql_add(sql, sizeof(sql), " ORDER BY id%s" BATCH_LIMIT, newest ? " DESC" : "");
	return iter_args(s, sql, "history_iter", &history_kind, a, f->limit, (any_cb)cb, arg,
	                 errstr_r);
}

/* Changes after since, by ascending sequence number. */
static int
sql_change_iter(struct abq_store *s, int64_t since, abq_change_cb *cb, void *arg,
                const char **errstr_r)
{
	return iter_args(
	    s, "SELECT " CHANGE_COLS " FROM changes WHERE seq > ?1 ORDER BY seq" BATCH_LIMIT,
	    "change_iter", &change_kind, ARGS(I(since)), 0, (any_cb)cb, arg, errstr_r);
}

/* The outbox in the order notices were queued, all or those in one state. */
static int
sql_notice_iter(struct abq_store *s, const char *state, abq_notice_cb *cb, void *arg,
                const char **errstr_r)
{
	char sql[512] = "SELECT " NOTICE_COLS " FROM outbox WHERE id > ?1";
	struct sql_arg a[3] = {I(0)};
	int n = 1;

	filter(sql, sizeof(sql), a, &n, state, " AND state = ?#", V(T(state)));
	sql_add(sql, sizeof(sql), " ORDER BY id" BATCH_LIMIT);
	return iter_args(s, sql, "notice_iter", &notice_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* The queued notices due at now, by id. */
static int
sql_notice_due(struct abq_store *s, int64_t now, abq_notice_cb *cb, void *arg,
               const char **errstr_r)
{
	return iter_args(
	    s,
	    "SELECT " NOTICE_COLS " FROM outbox WHERE id > ?1 AND state = 'queued' AND "
	    "next_attempt <= ?2 ORDER BY id" BATCH_LIMIT,
	    "notice_due", &notice_kind, ARGS(I(0), I(now)), 0, (any_cb)cb, arg, errstr_r);
}

/* Every template by scope name, domain, kind and locale. */
static int
sql_template_iter(struct abq_store *s, abq_template_cb *cb, void *arg, const char **errstr_r)
{
	return iter_args(s,
	                 "SELECT " TEMPLATE_COLS " FROM templates WHERE (scope, domain, kind, "
	                 "locale_key) > (?1, ?2, ?3, ?4) ORDER BY scope, domain, kind, "
	                 "locale_key" BATCH_LIMIT,
	                 "template_iter", &template_kind, ARGS(T(""), T(""), T(""), T("")), 0,
	                 (any_cb)cb, arg, errstr_r);
}

/* Every administrator by name. */
static int
sql_admin_iter(struct abq_store *s, abq_admin_cb *cb, void *arg, const char **errstr_r)
{
	return iter_args(
	    s, "SELECT " ADMIN_COLS " FROM admins WHERE name > ?1 ORDER BY name" BATCH_LIMIT,
	    "admin_iter", &admin_kind, ARGS(T("")), 0, (any_cb)cb, arg, errstr_r);
}

/* Tokens by administrator, then id; one administrator's or all. */
static int
sql_token_iter(struct abq_store *s, const char *admin, abq_token_cb *cb, void *arg,
               const char **errstr_r)
{
	char sql[512] = "SELECT " TOKEN_COLS " FROM tokens WHERE (admin, id) > (?1, ?2)";
	struct sql_arg a[4] = {T(""), I(0)};
	int n = 2;

	filter(sql, sizeof(sql), a, &n, admin, " AND admin = ?#", V(T(admin)));
	sql_add(sql, sizeof(sql), " ORDER BY admin, id" BATCH_LIMIT);
	return iter_args(s, sql, "token_iter", &token_kind, a, 0, (any_cb)cb, arg, errstr_r);
}

/* Every sync-state blob by account, DeviceId (without case) and collection. */
static int
sql_syncstate_iter(struct abq_store *s, abq_syncstate_cb *cb, void *arg, const char **errstr_r)
{
	return iter_args(s,
	                 "SELECT " SYNCSTATE_COLS " FROM syncstate WHERE (account, device_key, "
	                 "collection) > (?1, ?2, ?3) ORDER BY account, device_key, "
	                 "collection" BATCH_LIMIT,
	                 "syncstate_iter", &syncstate_kind, ARGS(T(""), T(""), T("")), 0,
	                 (any_cb)cb, arg, errstr_r);
}

/* ---- moving a registry, accounts ------------------------------------------ */

/*
 * Write a record under its source id. A statement prepared for the call: a
 * migration is a one-off, and the cached statements stay the daemon's.
 */
static int
sql_restore(struct abq_store *s, enum abq_restore_kind kind, const void *rec, const char **errstr_r)
{
	static const struct {
		const char *sql;
		const struct sql_kind *k;
	} by_kind[] = {
	    [ABQ_RESTORE_RULE] = {"INSERT INTO rules (" RULE_COLS
	                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	                          "?7, ?8, ?9)",
	                          &rule_kind},
	    [ABQ_RESTORE_HISTORY] = {NULL, &history_kind}, /* SQ_HISTORY_ADD_ID's */
	    [ABQ_RESTORE_NOTICE] = {"INSERT INTO outbox (" NOTICE_COLS ") VALUES (?1, ?2, ?3, ?4, "
	                            "?5, ?6, ?7, coalesce(?8, 'queued'), ?9, ?10, ?11, ?12, ?13)",
	                            &notice_kind},
	    [ABQ_RESTORE_CHANGE] = {"INSERT INTO changes (" CHANGE_COLS ") VALUES (?1, ?2, ?3, ?4)",
	                            &change_kind},
	};
	struct sql_stmt *st;
	int ret;

	if (kind < ABQ_RESTORE_RULE || kind > ABQ_RESTORE_CHANGE)
		return sql_fail(D(s), errstr_r, "restore: unknown kind %d", (int)kind);
	st = stmt_new(D(s), by_kind[kind].sql ? by_kind[kind].sql : stmt_sql[SQ_HISTORY_ADD_ID],
	              "restore", errstr_r);
	if (st == NULL)
		return -1;
	ret = write_bound(st, bind_row(st, by_kind[kind].k, rec), 0, NULL, errstr_r);
	D(s)->drv->finish(st);
	return ret;
}

/* Read a meta value: 1 with *value_r (malloc'd), 0 when absent, or -1. */
static int
sql_meta_get(struct abq_store *s, const char *key, char **value_r, const char **errstr_r)
{
	struct sql_stmt *st = stmt_get(D(s), SQ_META_GET, "meta_get", errstr_r);
	int rc;

	*value_r = NULL;
	if (st == NULL)
		return -1;
	if (bt(st, 1, key))
		return bind_fail(st, errstr_r);
	rc = D(s)->drv->next_row(st, errstr_r);
	if (rc > 0) {
		*value_r = xstrdup_null(D(s)->drv->col_text(st, 0));
		rc = *value_r != NULL;
	}
	D(s)->drv->reset(st);
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

/* Give bare accounts "@domain" in every table, inside the caller's transaction. */
static int
sql_accounts_canonicalize(struct abq_store *s, const char *domain, size_t *count_r,
                          const char **errstr_r)
{
	*count_r = 0;
	for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		struct sql_stmt *st =
		    stmt_new(D(s), canon[i].sql, "accounts_canonicalize", errstr_r);
		size_t n = 0;
		int ret;

		if (st == NULL)
			return -1;
		ret = write_bound(st, bt(st, 1, domain), 0, &n, errstr_r);
		D(s)->drv->finish(st);
		if (ret < 0)
			return -1;
		if (canon[i].counted)
			*count_r += n;
	}
	return 0;
}

/* ---- the ops tables ------------------------------------------------------------ */

#define SHARED_OPS                                                                                 \
	.close = sql_store_close, .location = sql_store_location, .files = sql_store_files,        \
	.begin = sql_store_begin, .commit = sql_store_commit, .rollback = sql_store_rollback,      \
	.device_get = sql_device_get, .device_put = sql_device_put,                                \
	.device_delete = sql_device_delete, .device_iter = sql_device_iter,                        \
	.device_count = sql_device_count, .device_touch = sql_device_touch,                        \
	.entry_get = sql_entry_get, .entry_put = sql_entry_put, .entry_delete = sql_entry_delete,  \
	.entry_iter = sql_entry_iter, .rule_insert = sql_rule_insert,                              \
	.rule_update = sql_rule_update, .rule_get = sql_rule_get, .rule_delete = sql_rule_delete,  \
	.rule_iter = sql_rule_iter, .attr_get = sql_attr_get, .attr_put = sql_attr_put,            \
	.attr_delete = sql_attr_delete, .attr_iter = sql_attr_iter,                                \
	.history_add = sql_history_add, .history_iter = sql_history_iter,                          \
	.change_add = sql_change_add, .change_iter = sql_change_iter,                              \
	.change_last = sql_change_last, .notice_add = sql_notice_add,                              \
	.notice_iter = sql_notice_iter, .notice_stats = sql_notice_stats,                          \
	.syncstate_get = sql_syncstate_get, .syncstate_put = sql_syncstate_put,                    \
	.syncstate_delete = sql_syncstate_delete, .notice_due = sql_notice_due,                    \
	.notice_mark = sql_notice_mark, .template_put = sql_template_put,                          \
	.template_get = sql_template_get, .template_delete = sql_template_delete,                  \
	.template_iter = sql_template_iter, .admin_get = sql_admin_get,                            \
	.admin_put = sql_admin_put, .admin_delete = sql_admin_delete,                              \
	.admin_iter = sql_admin_iter, .token_add = sql_token_add, .token_find = sql_token_find,    \
	.token_touch = sql_token_touch, .token_delete = sql_token_delete,                          \
	.token_iter = sql_token_iter, .token_count = sql_token_count,                              \
	.syncstate_iter = sql_syncstate_iter, .restore = sql_restore, .meta_get = sql_meta_get,    \
	.accounts_canonicalize = sql_accounts_canonicalize

const struct abq_store_ops abq_store_sqlite_ops = {
    .name = "sqlite",
    .scheme = "sqlite:",
    .open = sqlite_open,
    SHARED_OPS,
};

const struct abq_store_ops abq_store_pgsql_ops = {
    .name = "pgsql",
    .scheme = "postgresql://",
    .open = pgsql_open,
    .listener_new = pgsql_listener_new,
    .listener_connect = pgsql_listener_connect,
    .listener_fd = pgsql_listener_fd,
    .listener_read = pgsql_listener_read,
    .listener_free = pgsql_listener_free,
    .try_lock = pgsql_try_lock,
    .connected = pgsql_connected,
    .restore_finish = pgsql_restore_finish,
    SHARED_OPS,
};
