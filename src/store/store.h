/*
 * store.h: the registry's persistent store.
 *
 * Callers see only the abq_store_* functions below. Each is defined whole in
 * store.c: its argument checks, the test-time fault injection and its SQL,
 * written once over the SQL driver that store_sqlite.c and store_pgsql.c
 * implement (store_sql.h), so that a backend can be added without touching a
 * caller. A new operation is its declaration and contract here and its
 * function in store.c. The contract test suite
 * (tests/store/test_store_contract.c) runs against every backend.
 *
 * Conventions (as in Dovecot's lib-sql):
 * - Functions return 0 on success and -1 on failure with *errstr_r set to a
 *   message owned by the store, valid until the next call on the same store.
 *   Lookups return 1 (found), 0 (not found) or -1.
 * - Strings in records are owned by the record; abq_*_clear() frees them.
 * - Writes happen inside abq_store_begin() / abq_store_commit(); a backend that
 *   fails mid-transaction leaves nothing half-written once the caller rolls back.
 *   abq_store_begin takes the write lock at once (SQLite BEGIN IMMEDIATE), so two
 *   processes writing at the same moment queue instead of failing.
 * - Timestamps are seconds since the epoch, UTC. DeviceIds compare
 *   case-insensitively; accounts are stored already normalised (lower case).
 * - Keys (account, device_id, names) must be non-empty; a NULL or empty key is
 *   an error with a message, never a crash. errstr_r may be NULL.
 * - A store handle is used by one thread at a time; processes share the store.
 * - Test-time fault injection: with ABQ_STORE_FAULT=N in the environment, the
 *   N-th write call (put, delete, insert, update, add, touch, commit) of the
 *   process fails with "injected fault" (counted afresh whenever the value
 *   changes). A failed commit leaves the transaction open for the rollback.
 */
#ifndef ABQ_STORE_H
#define ABQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/abq_types.h"
#include "lib/records.h"

/* The schema version this binary writes. Stores newer than this are refused. */
#define ABQ_STORE_SCHEMA_VERSION 11

/* One row of history: who changed what, when and why. */
struct abq_history {
	int64_t id; /* assigned by the store */
	int64_t at;
	char *who;     /* administrator's name, or "abqd" */
	char *what;    /* "state", "entry", "rule", "attribute", "delete", "purge", ... */
	char *subject; /* "DEVICEID/account", "DEVICEID", "rule 3", "global abqMode", ... */
	char *old_value;
	char *new_value;
	char *reason;
	char *device_id; /* for filtering by device; NULL when not about one device */
	char *account;
};
void abq_history_clear(struct abq_history *h);

/* The change log: a sequence number and what changed, for running daemons. */
enum abq_change_kind {
	ABQ_CHANGE_DEVICE = 1, /* key: "account\nDEVICEID" */
	ABQ_CHANGE_ENTRY,      /* key: "DEVICEID" or "DEVICEID/account" */
	ABQ_CHANGE_RULE,       /* key: rule id */
	ABQ_CHANGE_ATTR,       /* key: "global", "domain:D" or "account:A", then "\n" name */
	ABQ_CHANGE_TEMPLATE,   /* key: template reference (notices issue) */
	ABQ_CHANGE_LOGGER,     /* key: the logger's id, or "all" (schema version 7) */
};
struct abq_change {
	int64_t seq;
	int64_t at;
	enum abq_change_kind kind;
	char *key;
};
void abq_change_clear(struct abq_change *c);

/* A notice in the outbox (filled by the notices issue). */
struct abq_notice {
	int64_t id;
	char *recipient;
	char *kind; /* "user-quarantined", "user-blocked", "user-allowed", "digest", ... */
	char *account;
	char *device_id;
	char *template_ref;
	char *rendered; /* the whole message, or NULL when rendered at send time */
	char *state;    /* "queued", "sent", "failed" */
	int attempts;
	int64_t next_attempt;
	char *last_error;
	int64_t created;
	int64_t sent;
};
void abq_notice_clear(struct abq_notice *n);

/*
 * A notice template (schema version 3): the texts of one kind of notice
 * ("user-quarantined", "user-blocked", "user-allowed", "admin-digest",
 * "admin-immediate") in one locale ("de-DE", "de", "en"), globally (scope
 * ABQ_SCOPE_GLOBAL, domain NULL) or for one domain (ABQ_SCOPE_DOMAIN). NULL
 * texts fall back to the next template in the lookup order (src/notice/).
 */
struct abq_template {
	enum abq_scope scope; /* ABQ_SCOPE_GLOBAL or ABQ_SCOPE_DOMAIN */
	char *domain;         /* NULL for global */
	char *kind;
	char *locale; /* compared case-insensitively */
	char *from;
	char *reply_to;
	char *subject;
	char *body_plain;
	char *body_html;
	char *set_by;
	int64_t set_at;
};
void abq_template_clear(struct abq_template *t);

/*
 * An administrator of the console and the JSON API (schema version 4). The
 * name is the key (compared exactly: src/core/admins.c admits lower case only);
 * password_hash is a crypt(3) string, never the password.
 */
struct abq_admin {
	char *name;
	char *password_hash;
	char *created_by;
	int64_t created_at;
	int64_t password_at; /* when the password was last set */
	int64_t last_login;  /* 0: never */
};
void abq_admin_clear(struct abq_admin *a);

/*
 * A bearer token of an administrator (schema version 4). Only the SHA-256 of
 * the token (lower-case hex) is stored, unique across every administrator.
 */
struct abq_token {
	int64_t id; /* assigned by the store on add */
	char *admin;
	char *label; /* NULL: none */
	char *hash;
	char *created_by;
	int64_t created_at;
	int64_t last_used; /* 0: never */
};
void abq_token_clear(struct abq_token *t);

/*
 * An account logger (schema version 7): every request of account (of one
 * DeviceId when device_id is set) and its answer, decoded, appended to file
 * (an absolute path the daemon opens) until `until`. The daemon ignores a
 * logger past its until; the row stays until it is removed.
 */
struct abq_logger {
	int64_t id; /* assigned by the store on add */
	char *account;
	char *device_id; /* NULL: every device of the account */
	char *file;
	int64_t until;
	char *created_by;
	int64_t created_at;
};
void abq_logger_clear(struct abq_logger *l);

/* Filters for iteration. NULL / ABQ_STATE_NONE / 0 fields do not filter. */
struct abq_device_filter {
	const char *account;
	const char *device_id;
	const char *domain; /* accounts "x@domain"; bare accounts match default_domain */
	const char *default_domain;
	enum abq_state state;
	int64_t seen_before; /* last_seen < this */
	int64_t seen_since;  /* last_seen >= this */
	bool not_individual; /* only devices whose reason is not Individual */
};
struct abq_history_filter {
	const char *device_id;
	const char *account;
	int64_t since;
	size_t limit; /* 0: no limit; newest first when set */
};

/*
 * Iteration callbacks receive a record owned by the store (valid during the call
 * only: copy what you keep, e.g. with abq_device_copy) and return 0 to go on or
 * non-zero to stop; that value is returned by the iterator (a stop is not an
 * error: the iterator returns it without errstr).
 *
 * A callback may call any store function on the same store (get, put, delete,
 * begin/commit, another iteration), but must not close it. Iterators read in
 * batches and hold no read open while callbacks run; each goes on after the
 * key of the last record it delivered, so a record written ahead of that key
 * (in iteration order) is seen later in the same iteration and one written
 * behind it is not. Outside a transaction, batches may see other processes'
 * commits.
 */
typedef int abq_device_cb(void *arg, const struct abq_device *d);
typedef int abq_entry_cb(void *arg, const struct abq_entry *e);
typedef int abq_rule_cb(void *arg, const struct abq_rule *r);
typedef int abq_attr_cb(void *arg, const struct abq_attr *a);
typedef int abq_history_cb(void *arg, const struct abq_history *h);
typedef int abq_change_cb(void *arg, const struct abq_change *c);
typedef int abq_notice_cb(void *arg, const struct abq_notice *n);
typedef int abq_template_cb(void *arg, const struct abq_template *t);
typedef int abq_admin_cb(void *arg, const struct abq_admin *a);
typedef int abq_token_cb(void *arg, const struct abq_token *t);
typedef int abq_logger_cb(void *arg, const struct abq_logger *l);

struct abq_store;

/* Open flags. */
#define ABQ_STORE_CREATE   0x1 /* create and initialise if it does not exist ("abqctl init") */
#define ABQ_STORE_READONLY 0x2 /* no writes will be made */

/*
 * Open the store named by url ("sqlite:PATH", "sqlite:///abs/path",
 * "postgresql://..." or "postgres://..."). Relative paths are taken relative to
 * base_dir (the config file's folder) when it is not NULL. Without
 * ABQ_STORE_CREATE a missing store is an error ("... does not exist; run abqctl
 * init"). A database that is not an abqd store, or whose schema is newer than
 * ABQ_STORE_SCHEMA_VERSION, is refused. An older schema is migrated in one
 * transaction. Returns NULL with *errstr_r set to a static or thread-local
 * message on failure.
 */
struct abq_store *abq_store_open(const char *url, const char *base_dir, int flags,
                                 const char **errstr_r);
/* Close and free; sets *store to NULL. */
void abq_store_close(struct abq_store **store);
/* The backend's name ("sqlite") and a printable location (the file path). */
const char *abq_store_backend(const struct abq_store *s);
const char *abq_store_location(const struct abq_store *s);
/* The files that make up the store (for chown by a root abqctl); NULL-terminated. */
const char *const *abq_store_files(const struct abq_store *s);

int abq_store_begin(struct abq_store *s, const char **errstr_r);
int abq_store_commit(struct abq_store *s, const char **errstr_r);
void abq_store_rollback(struct abq_store *s);

/* Devices. */
int abq_store_device_get(struct abq_store *s, const char *account, const char *device_id,
                         struct abq_device *out, const char **errstr_r);
/* Insert or replace the whole record (facts and state) of (account, device_id). */
int abq_store_device_put(struct abq_store *s, const struct abq_device *d, const char **errstr_r);
/*
 * Remove the records of device_id (every account when account is NULL). *count_r
 * gets how many were removed.
 */
int abq_store_device_delete(struct abq_store *s, const char *device_id, const char *account,
                            size_t *count_r, const char **errstr_r);
/* In (account, device_id) order. */
int abq_store_device_iter(struct abq_store *s, const struct abq_device_filter *f, abq_device_cb *cb,
                          void *arg, const char **errstr_r);
/*
 * How many devices of account were first seen before `before` (all when before
 * is 0). account NULL counts the devices of every account.
 */
int abq_store_device_count(struct abq_store *s, const char *account, int64_t before,
                           size_t *count_r, const char **errstr_r);
/*
 * Batched last-seen updates: not in the change log, no history. Each element
 * names (account, device_id) and the new last_seen, last_address and
 * last_command (NULL keeps the old value). A device that does not exist is
 * skipped (it is not created), and so is an update older than the recorded
 * last_seen. Outside a transaction the batch is one transaction of its own.
 */
struct abq_seen {
	const char *account;
	const char *device_id;
	int64_t last_seen;
	const char *last_address;
	const char *last_command;
};
int abq_store_device_touch(struct abq_store *s, const struct abq_seen *v, size_t n,
                           const char **errstr_r);

/* List entries. account NULL addresses the DeviceId-alone entry. */
int abq_store_entry_get(struct abq_store *s, const char *device_id, const char *account,
                        struct abq_entry *out, const char **errstr_r);
int abq_store_entry_put(struct abq_store *s, const struct abq_entry *e, const char **errstr_r);
/*
 * Remove entries of device_id: with account NULL and all_accounts true, every
 * entry of that DeviceId; with account NULL and all_accounts false, only the
 * DeviceId-alone entry; else the DeviceId/account entry.
 */
int abq_store_entry_delete(struct abq_store *s, const char *device_id, const char *account,
                           bool all_accounts, size_t *count_r, const char **errstr_r);
/*
 * The entries no device has used since they were written, in the order of
 * abq_store_entry_iter: no device has the entry's DeviceId (with the entry's
 * account, when it names one), and no such device was purged since the entry
 * was written (a "purge" history row at or after its created_at). One query,
 * so that listing 100,000 entries costs one pass.
 */
int abq_store_entry_unseen_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb,
                                void *arg, const char **errstr_r);
/* In (device_id, account) order, DeviceId-alone first; state NONE: all. */
int abq_store_entry_iter(struct abq_store *s, enum abq_state state, abq_entry_cb *cb, void *arg,
                         const char **errstr_r);

/*
 * Rules. rule_update and rule_delete fail ("no rule with id N") when the id does
 * not exist; ids are never reused.
 */
int abq_store_rule_insert(struct abq_store *s, struct abq_rule *r, const char **errstr_r);
int abq_store_rule_update(struct abq_store *s, const struct abq_rule *r, const char **errstr_r);
int abq_store_rule_get(struct abq_store *s, int64_t id, struct abq_rule *out,
                       const char **errstr_r);
int abq_store_rule_delete(struct abq_store *s, int64_t id, const char **errstr_r);
/*
 * domain NULL and all true: every rule; domain NULL and all false: global rules
 * only; else that domain's rules. Ordered by domain (global last), order, id.
 */
int abq_store_rule_iter(struct abq_store *s, const char *domain, bool all, abq_rule_cb *cb,
                        void *arg, const char **errstr_r);

/*
 * Attributes. For ABQ_SCOPE_GLOBAL the target is ignored (records read back
 * with target NULL); names compare case-insensitively. Deleting an absent
 * attribute is not an error.
 */
int abq_store_attr_get(struct abq_store *s, enum abq_scope scope, const char *target,
                       const char *name, struct abq_attr *out, const char **errstr_r);
int abq_store_attr_put(struct abq_store *s, const struct abq_attr *a, const char **errstr_r);
int abq_store_attr_delete(struct abq_store *s, enum abq_scope scope, const char *target,
                          const char *name, const char **errstr_r);
/* Every attribute, ordered by scope, target, name. */
int abq_store_attr_iter(struct abq_store *s, abq_attr_cb *cb, void *arg, const char **errstr_r);

/* History (the id is assigned and written back). */
int abq_store_history_add(struct abq_store *s, struct abq_history *h, const char **errstr_r);
/* Oldest first, or newest first when f->limit is set. */
int abq_store_history_iter(struct abq_store *s, const struct abq_history_filter *f,
                           abq_history_cb *cb, void *arg, const char **errstr_r);

/* Change log. */
int abq_store_change_add(struct abq_store *s, enum abq_change_kind kind, const char *key,
                         int64_t at, const char **errstr_r);
/* Changes with seq > since, ascending. */
int abq_store_change_iter(struct abq_store *s, int64_t since, abq_change_cb *cb, void *arg,
                          const char **errstr_r);
/* The highest seq ever given out (0 for a new store). */
int abq_store_change_last(struct abq_store *s, int64_t *seq_r, const char **errstr_r);

/* Outbox. A notice added with state NULL is "queued". Iteration is by id. */
int abq_store_notice_add(struct abq_store *s, struct abq_notice *n, const char **errstr_r);
int abq_store_notice_iter(struct abq_store *s, const char *state, abq_notice_cb *cb, void *arg,
                          const char **errstr_r);
/*
 * How many notices are in state, and when the oldest of them was created (0
 * when there is none): one aggregate query, for /metrics.
 */
int abq_store_notice_stats(struct abq_store *s, const char *state, int64_t *count_r,
                           int64_t *oldest_r, const char **errstr_r);
/*
 * The queued notices whose next_attempt is at or before now, by id (the
 * sender's work list).
 */
int abq_store_notice_due(struct abq_store *s, int64_t now, abq_notice_cb *cb, void *arg,
                         const char **errstr_r);
/*
 * Record the outcome of one delivery attempt of notice id: its new state
 * ("queued", "sent" or "failed"), attempts, next_attempt, last_error (NULL
 * clears it) and sent (the time of delivery, or 0). Fails with "no notice with
 * id N" when there is none.
 */
int abq_store_notice_mark(struct abq_store *s, int64_t id, const char *state, int attempts,
                          int64_t next_attempt, const char *last_error, int64_t sent,
                          const char **errstr_r);

/*
 * Notice templates (schema version 3). The key is (scope, domain, kind,
 * locale); the domain is ignored (read back NULL) for ABQ_SCOPE_GLOBAL and
 * required for ABQ_SCOPE_DOMAIN; other scopes are refused. template_put
 * inserts or replaces; template_get returns 1, 0 (none) or -1;
 * template_delete removes one template (*count_r, may be NULL, gets 0 or 1;
 * removing nothing is not an error). template_iter goes by scope name,
 * domain, kind and locale.
 */
int abq_store_template_put(struct abq_store *s, const struct abq_template *t,
                           const char **errstr_r);
int abq_store_template_get(struct abq_store *s, enum abq_scope scope, const char *domain,
                           const char *kind, const char *locale, struct abq_template *out,
                           const char **errstr_r);
int abq_store_template_delete(struct abq_store *s, enum abq_scope scope, const char *domain,
                              const char *kind, const char *locale, size_t *count_r,
                              const char **errstr_r);
int abq_store_template_iter(struct abq_store *s, abq_template_cb *cb, void *arg,
                            const char **errstr_r);

/*
 * Administrators (schema version 4). admin_put inserts or replaces the whole
 * record; admin_get returns 1, 0 (none) or -1; admin_delete removes the
 * administrator and every token of theirs (*count_r, may be NULL, gets 0 or 1:
 * removing nothing is not an error); admin_iter goes by name.
 */
int abq_store_admin_get(struct abq_store *s, const char *name, struct abq_admin *out,
                        const char **errstr_r);
int abq_store_admin_put(struct abq_store *s, const struct abq_admin *a, const char **errstr_r);
int abq_store_admin_delete(struct abq_store *s, const char *name, size_t *count_r,
                           const char **errstr_r);
int abq_store_admin_iter(struct abq_store *s, abq_admin_cb *cb, void *arg, const char **errstr_r);

/*
 * Tokens (schema version 4). token_add inserts (t->id gets the new id); a hash
 * already stored is an error. token_find looks a token up by its hash: 1, 0 or
 * -1. token_touch sets last_used of token id (an unknown id is not an error:
 * the token may have just been revoked). token_delete removes admin's tokens
 * with that label, or all of them when label is NULL (*count_r, may be NULL,
 * gets how many). token_iter goes by admin name, then id (admin NULL: every
 * administrator's); token_count counts them the same way.
 */
int abq_store_token_add(struct abq_store *s, struct abq_token *t, const char **errstr_r);
int abq_store_token_find(struct abq_store *s, const char *hash, struct abq_token *out,
                         const char **errstr_r);
int abq_store_token_touch(struct abq_store *s, int64_t id, int64_t at, const char **errstr_r);
int abq_store_token_delete(struct abq_store *s, const char *admin, const char *label,
                           size_t *count_r, const char **errstr_r);
int abq_store_token_iter(struct abq_store *s, const char *admin, abq_token_cb *cb, void *arg,
                         const char **errstr_r);
int abq_store_token_count(struct abq_store *s, const char *admin, size_t *count_r,
                          const char **errstr_r);

/*
 * Account loggers (schema version 7). logger_add inserts (l->id gets the new
 * id; account and file are required, device_id may be NULL); logger_iter goes
 * by id; logger_delete removes logger id, or every logger when id is 0
 * (*count_r, may be NULL, gets how many; removing nothing is not an error).
 */
int abq_store_logger_add(struct abq_store *s, struct abq_logger *l, const char **errstr_r);
int abq_store_logger_iter(struct abq_store *s, abq_logger_cb *cb, void *arg, const char **errstr_r);
int abq_store_logger_delete(struct abq_store *s, int64_t id, size_t *count_r,
                            const char **errstr_r);

/*
 * Sync state of the virtual mailbox (schema version 2): an opaque blob per
 * (account, device_id, collection), written by the command layer through the
 * daemon (src/mailbox/commands.h, struct eas_state_accessor). collection is a
 * folder's server id or "foldersync"/"ping". device_id compares without case.
 *
 * syncstate_get returns 1 and a malloc'd copy in *state_r (NUL-terminated
 * after *len_r bytes, so text blobs read as strings; free it) and the time of
 * the last put in *updated_r (may be NULL), 0 when there is none, or -1.
 * syncstate_put inserts or replaces. syncstate_delete removes one collection,
 * or every collection of the device when collection is NULL; *count_r (may be
 * NULL) gets how many were removed; removing nothing is not an error.
 * abq_store_device_delete also removes the sync state (and the SendMail
 * ClientIds, below) of the devices it removes, so that a device decided anew
 * starts from an empty mailbox state.
 */
int abq_store_syncstate_get(struct abq_store *s, const char *account, const char *device_id,
                            const char *collection, void **state_r, size_t *len_r,
                            int64_t *updated_r, const char **errstr_r);
int abq_store_syncstate_put(struct abq_store *s, const char *account, const char *device_id,
                            const char *collection, const void *state, size_t len, int64_t updated,
                            const char **errstr_r);
int abq_store_syncstate_delete(struct abq_store *s, const char *account, const char *device_id,
                               const char *collection, size_t *count_r, const char **errstr_r);

/*
 * Native mode's folder ids (schema version 9): per account, the map between
 * the EAS folder ids a phone holds (ServerId, ParentId) and the IMAP
 * mailboxes they stand for, so that an id survives a rename (on the phone or
 * on the server) and a restart. Ids are short decimal strings ("1", "2",
 * ...) from a per-account counter kept in the store and taken in the
 * transaction that records the folder, so two workers or two nodes never
 * hand out the same id, and an id is never given again for that account,
 * not even after its folder is deleted. A mailbox (compared exactly, as the
 * server names it) has at most one id per account.
 */
struct abq_folder {
	char *account;
	char *folder_id;     /* "1", "2", ...: assigned by the store */
	char *mailbox;       /* the IMAP mailbox name, UTF-8, with the server's delimiter */
	char *mailbox_id;    /* the server's MAILBOXID (RFC 8474); NULL when it has none */
	int64_t uidvalidity; /* 0: not known yet */
	char *parent_id;     /* the parent folder's id; NULL at the top of the hierarchy */
	int64_t created;
};
void abq_folder_clear(struct abq_folder *f);
typedef int abq_folder_cb(void *arg, const struct abq_folder *f);

/*
 * folder_assign: the id of mailbox f->mailbox of f->account (f->folder_id is
 * ignored): 1 when it had one (*out is the stored record, unchanged), 0 when
 * a new id was taken from the account's counter and the folder recorded with
 * f's mailbox_id, uidvalidity, parent_id and created (*out is the new
 * record), -1. The look-up and the insert run under the write lock (in a
 * transaction of their own outside one), so that two handles assigning the
 * same mailbox get the same id. *out is cleared first; the caller clears it.
 *
 * folder_get (by id), folder_by_mailbox, folder_by_mailbox_id (the first by
 * mailbox name when, oddly, two carry the same MAILBOXID): 1 found, 0 not, -1.
 *
 * folder_iter goes through account's folders (every account's when account
 * is NULL) by account and mailbox name, so a parent comes before its children.
 *
 * folder_rename gives folder_id the name mailbox and the parent parent_id
 * (NULL: the top), keeping its id; with a delimiter (not '\0') every folder
 * under the old name (old name + delimiter + ...) is renamed with it, keeping
 * their ids and parents. A name that another folder of the account holds is
 * refused. *count_r (may be NULL) gets how many folders were renamed, 0 when
 * there is no folder folder_id (not an error).
 *
 * folder_delete removes folder_id and, with a delimiter, every folder under
 * its name; *count_r (may be NULL) gets how many; removing nothing is not an
 * error. The ids stay used.
 *
 * folder_set_uidvalidity records a mailbox's UIDVALIDITY; fails ("no folder
 * ...") when the folder does not exist.
 */
int abq_store_folder_assign(struct abq_store *s, const struct abq_folder *f, struct abq_folder *out,
                            const char **errstr_r);
int abq_store_folder_get(struct abq_store *s, const char *account, const char *folder_id,
                         struct abq_folder *out, const char **errstr_r);
int abq_store_folder_by_mailbox(struct abq_store *s, const char *account, const char *mailbox,
                                struct abq_folder *out, const char **errstr_r);
int abq_store_folder_by_mailbox_id(struct abq_store *s, const char *account, const char *mailbox_id,
                                   struct abq_folder *out, const char **errstr_r);
int abq_store_folder_iter(struct abq_store *s, const char *account, abq_folder_cb *cb, void *arg,
                          const char **errstr_r);
int abq_store_folder_rename(struct abq_store *s, const char *account, const char *folder_id,
                            const char *mailbox, const char *parent_id, char delimiter,
                            size_t *count_r, const char **errstr_r);
int abq_store_folder_delete(struct abq_store *s, const char *account, const char *folder_id,
                            char delimiter, size_t *count_r, const char **errstr_r);
int abq_store_folder_set_uidvalidity(struct abq_store *s, const char *account,
                                     const char *folder_id, int64_t uidvalidity,
                                     const char **errstr_r);

/*
 * folder_list: the ids of one listing of account's mailboxes, folders
 * renamed on the server followed (native mode's FolderSync). l[i].mailbox
 * (required), .mailbox_id (NULL: not known) and .uidvalidity (0: not known,
 * below 0: the mailbox has none, \Noselect) are read, the rest of l ignored;
 * delim is the server's hierarchy delimiter ('\0': flat). *ids_r gets a
 * malloc'd array of n malloc'd strings (the caller frees them), *renamed_r
 * (may be NULL) how many folders were found renamed.
 *
 * With probe, when a listed mailbox is not in the map, or is in it without a
 * UIDVALIDITY, and l[i] tells neither its MAILBOXID nor its UIDVALIDITY,
 * answers 1 with ids_r[i] NULL for each such mailbox (and the known ids for
 * the rest), no id assigned: the caller asks the server (STATUS) for those
 * and calls again. So a listing with nothing new costs the server nothing
 * more, and the map's UIDVALIDITY gets filled for every folder once.
 *
 * Otherwise (0), in one transaction: a listed mailbox in the map keeps its id
 * (the MAILBOXID and UIDVALIDITY given recorded); one not in it, in name
 * order (parents first), is a folder of the map no longer listed, renamed
 * on the server, when the two have the same MAILBOXID or, without MAILBOXID,
 * the same UIDVALIDITY with no other folder of the map not listed and no
 * other unknown mailbox of the listing having it (RFC 3501 lets a RENAME keep
 * UIDVALIDITY and Dovecot does; a swap, or anything ambiguous, stays a new
 * folder, which is safe): folder_rename keeps its id, with its children
 * unless a name they would take is held, under the id of its listed parent;
 * else a new id (folder_assign). -1 on failure, nothing written.
 */
int abq_store_folder_list(struct abq_store *s, const char *account, const struct abq_folder *l,
                          size_t n, char delim, bool probe, char ***ids_r, size_t *renamed_r,
                          const char **errstr_r);

/*
 * Native mode's SendMail ClientIds (schema version 10): per (account,
 * device_id), the ClientIds (MS-ASCMD 2.2.3.27: unique per message for the
 * device; in the WBXML of SendMail, SmartReply and SmartForward from 14.0)
 * of the messages the device sent or is sending, so that a request repeated
 * after a lost answer is not sent twice (Status 118). ClientIds compare
 * exactly; device_id without case.
 *
 * clientid_reserve, before the message is submitted: under the write lock (a
 * transaction of its own outside one), the ClientId is recorded as being
 * sent at `now` when the device has no such record, or when its record is a
 * reservation older than ABQ_CLIENTID_STALE (the process that made it died:
 * taken over, so the message may go out twice after a crash rather than
 * never). *result_r: ABQ_CLIENTID_RESERVED (send it), ABQ_CLIENTID_SENT
 * (sent before: do not send), ABQ_CLIENTID_SENDING (another request is
 * sending it now: do not send, let the device try later). The same call
 * prunes: every record older than ABQ_CLIENTID_KEEP seconds (of every
 * device), and the device's oldest beyond ABQ_CLIENTID_PER_DEVICE. A
 * ClientId longer than ABQ_CLIENTID_MAX bytes is an error.
 *
 * clientid_sent: the message went out; the record says sent, at `now`
 * (written again when it was pruned or reset meanwhile). clientid_release:
 * it did not go out; the reservation is removed (a sent record stays) so
 * that the device's retry is sent. clientid_delete: every ClientId of the
 * device (abqctl mobile doResetDevice; abq_store_device_delete removes them
 * with the device), *count_r (may be NULL) gets how many. clientid_get: 1
 * with *at_r and *sent_r (each may be NULL), 0 when the device has no such
 * record, -1.
 */
#define ABQ_CLIENTID_MAX        128         /* bytes of the longest ClientId recorded */
#define ABQ_CLIENTID_KEEP       (3 * 86400) /* seconds a record is kept */
#define ABQ_CLIENTID_PER_DEVICE 1000        /* records kept per device */
#define ABQ_CLIENTID_STALE      900         /* seconds after which a reservation is dead */
enum abq_clientid {
	ABQ_CLIENTID_RESERVED = 1,
	ABQ_CLIENTID_SENT,
	ABQ_CLIENTID_SENDING,
};
int abq_store_clientid_reserve(struct abq_store *s, const char *account, const char *device_id,
                               const char *client_id, int64_t now, enum abq_clientid *result_r,
                               const char **errstr_r);
int abq_store_clientid_sent(struct abq_store *s, const char *account, const char *device_id,
                            const char *client_id, int64_t now, const char **errstr_r);
int abq_store_clientid_release(struct abq_store *s, const char *account, const char *device_id,
                               const char *client_id, const char **errstr_r);
int abq_store_clientid_delete(struct abq_store *s, const char *account, const char *device_id,
                              size_t *count_r, const char **errstr_r);
int abq_store_clientid_get(struct abq_store *s, const char *account, const char *device_id,
                           const char *client_id, int64_t *at_r, bool *sent_r,
                           const char **errstr_r);

/*
 * Native mode's contacts, calendars and tasks (schema version 11;
 * docs/internals/native.md, "Ids and change detection"): per account, the
 * DAV collections shown to phones as folders, and per collection the map of
 * the resources abqd has seen, so that a phone holds short ids and a cursor
 * (a change sequence) instead of hrefs and ETags.
 *
 * A collection's id is "c" and a number from a per-account counter ("c1",
 * "c2", ...: never a mail folder's decimal id, never given again for that
 * account); (account, kind, href) has at most one. A CalDAV collection that
 * holds both events and tasks is listed twice, once per kind, with two ids.
 * An item's id is a decimal number from the collection's own counter, never
 * given again in that collection; (account, coll_id, href) has at most one.
 * Hrefs and ETags compare exactly (case-sensitive), as the server sends them;
 * an href or a sync-token longer than ABQ_PIM_HREF_MAX, or an ETag longer
 * than ABQ_PIM_ETAG_MAX bytes, is refused with a message.
 *
 * Every change to an item (added, changed, removed) takes the collection's
 * next sequence number under the write lock, so that the numbers of one
 * collection are handed out once each, in commit order, whichever worker or
 * node refreshes it. A removed item stays as a tombstone (etag NULL) so that
 * a phone behind it is told to delete it, until it is pruned.
 */
#define ABQ_PIM_HREF_MAX 1024 /* bytes of the longest href, or sync-token */
#define ABQ_PIM_ETAG_MAX 256  /* bytes of the longest ETag */
enum abq_pim_kind {
	ABQ_PIM_CONTACTS = 1,
	ABQ_PIM_CALENDAR = 2,
	ABQ_PIM_TASKS = 3,
};
struct abq_pim_coll {
	char *account;
	char *coll_id;     /* "c1", "c2", ...: assigned by the store */
	char *href;        /* the collection's path on the DAV server */
	int kind;          /* enum abq_pim_kind */
	char *name;        /* display name; NULL: none */
	bool is_default;   /* the account's default collection of its kind */
	char *token;       /* the server's sync-token, or its CTag; NULL: never refreshed */
	int64_t seq;       /* the last change sequence handed out in this collection */
	int64_t pruned;    /* tombstones up to this sequence were pruned */
	int64_t refreshed; /* time of the last refresh, 0: never */
	int64_t last_item; /* the highest item id given out in this collection */
};
void abq_pim_coll_clear(struct abq_pim_coll *c);
typedef int abq_pim_coll_cb(void *arg, const struct abq_pim_coll *c);

struct abq_pim_item {
	char *account;
	char *coll_id;
	char *item_id; /* "1", "2", ...: assigned by the store */
	char *href;
	char *etag;        /* NULL: a tombstone (the resource is gone) */
	int64_t seq;       /* the collection's sequence when the item last changed */
	int64_t added_seq; /* the sequence when it was added (or came back) */
	int64_t start;     /* an event's span (seconds since the epoch), for FilterType; */
	int64_t end;       /* 0 0: unknown, or not an event */
};
void abq_pim_item_clear(struct abq_pim_item *i);
typedef int abq_pim_item_cb(void *arg, const struct abq_pim_item *i);

/* One resource as a refresh found it: its ETag (NULL: removed) and span. */
struct abq_pim_change {
	const char *href;
	const char *etag;
	int64_t start, end;
};

/*
 * pim_coll_list: the ids of one discovery of account's collections. l[i].href,
 * .kind, .name (may be NULL) and .is_default are read, the rest of l ignored,
 * and l must be the whole discovery: in one transaction under the write lock,
 * a listed (kind, href) in the map keeps its id (its name and is_default
 * recorded), one not in it gets a new id, and every collection of account
 * whose (kind, href) is not listed is removed with its items (a calendar that
 * stopped holding tasks loses its tasks collection only). *ids_r gets a
 * malloc'd array of n malloc'd strings in l's order (the caller frees them).
 *
 * pim_coll_get: 1 (*out, cleared first), 0 when account has no coll_id, -1.
 * pim_coll_iter goes through account's collections (every account's when
 * account is NULL) by account, kind and href. pim_coll_delete removes one
 * collection with its items (*count_r, may be NULL: 0 or 1); the id stays used.
 */
int abq_store_pim_coll_list(struct abq_store *s, const char *account, const struct abq_pim_coll *l,
                            size_t n, char ***ids_r, const char **errstr_r);
int abq_store_pim_coll_get(struct abq_store *s, const char *account, const char *coll_id,
                           struct abq_pim_coll *out, const char **errstr_r);
int abq_store_pim_coll_iter(struct abq_store *s, const char *account, abq_pim_coll_cb *cb,
                            void *arg, const char **errstr_r);
int abq_store_pim_coll_delete(struct abq_store *s, const char *account, const char *coll_id,
                              size_t *count_r, const char **errstr_r);

/*
 * pim_refresh: bring collection coll_id of account up to a refresh of the
 * server, in one transaction under the write lock (its caller's, when one is
 * open). Each change of l, by href: an href not in the map is added (a new
 * item id, added_seq = seq = the next sequence); a known one whose ETag
 * differs, or which is removed, takes the next sequence (removed: its etag
 * becomes NULL, a tombstone); a tombstone whose href comes back with an ETag
 * is the same item again, added anew (added_seq = seq = the next sequence);
 * the same ETag changes nothing but the span (a span 0 0 leaves the one the
 * map has: a listing's); a removed href that is unknown,
 * or a tombstone already, changes nothing. With complete, l is the whole
 * listing of the collection: every live item not in it becomes a tombstone
 * too. token (NULL: unchanged) and refreshed = now are recorded. *seq_r (may
 * be NULL) gets the collection's sequence after it. A collection that does
 * not exist is an error ("no collection ...").
 *
 * pim_changes: the items of the collection with seq > since (tombstones
 * included), in seq order, at most limit of them (0: no limit), to cb;
 * *more_r (may be NULL) whether more follow. The caller compares its cursor
 * with the collection's pruned first: a cursor below it missed deletions and
 * starts over. A collection that does not exist has no changes.
 *
 * pim_item_get (by id), pim_item_by_href: 1 (*out, cleared first), 0, -1.
 *
 * pim_item_put: one item abqd wrote itself (a phone's Add, Change or Delete
 * went through to the server): under the write lock, with the next sequence,
 * its ETag is set (an href not in the map is added with a new id; a
 * tombstone is added anew) or, with etag NULL, it becomes a tombstone (an
 * unknown href or a tombstone already: nothing written). *item_r (may be
 * NULL; cleared first) gets the record after it (item_id NULL when there is
 * none).
 *
 * pim_prune: the collection's tombstones with seq <= upto are deleted and
 * its pruned becomes max(pruned, upto), upto taken at most to the
 * collection's seq; *count_r (may be NULL) gets how many were deleted.
 */
int abq_store_pim_refresh(struct abq_store *s, const char *account, const char *coll_id,
                          const struct abq_pim_change *l, size_t n, bool complete,
                          const char *token, int64_t now, int64_t *seq_r, const char **errstr_r);
int abq_store_pim_changes(struct abq_store *s, const char *account, const char *coll_id,
                          int64_t since, size_t limit, abq_pim_item_cb *cb, void *arg, bool *more_r,
                          const char **errstr_r);
int abq_store_pim_item_get(struct abq_store *s, const char *account, const char *coll_id,
                           const char *item_id, struct abq_pim_item *out, const char **errstr_r);
int abq_store_pim_item_by_href(struct abq_store *s, const char *account, const char *coll_id,
                               const char *href, struct abq_pim_item *out, const char **errstr_r);
int abq_store_pim_item_put(struct abq_store *s, const char *account, const char *coll_id,
                           const char *href, const char *etag, int64_t start, int64_t end,
                           struct abq_pim_item *item_r, const char **errstr_r);
int abq_store_pim_prune(struct abq_store *s, const char *account, const char *coll_id, int64_t upto,
                        size_t *count_r, const char **errstr_r);

/*
 * One identity per person (product.md): accounts recorded before [eas]
 * default_domain was set are bare ("alice") where the canonical form is now
 * "alice@example.com" (util.h account_canonical). abq_store_accounts_canonicalize
 * rewrites every bare account to "name@default_domain" in every table that
 * holds one (devices, entries, account attributes, sync state, native folder
 * ids, SendMail ClientIds, the map of contacts, calendars and tasks, history,
 * the outbox), in one transaction of its
 * own (call it outside a transaction), and records the domain under the meta
 * key "account_domain" (schema version 5). Collisions merge: of two device
 * records of one DeviceId, the one seen more recently stays (the canonical
 * one on a tie), with its sync state; of two entries or account attributes,
 * the canonical one stays. When the recorded domain is default_domain
 * already, it only reads that key; a NULL or empty default_domain does
 * nothing. *count_r (may be NULL) gets how many device, entry and attribute
 * records were rewritten or merged away. The change log is not written:
 * daemons load the registry after this has run at their start.
 */
#define ABQ_STORE_META_ACCOUNT_DOMAIN "account_domain"
int abq_store_accounts_canonicalize(struct abq_store *s, const char *default_domain,
                                    size_t *count_r, const char **errstr_r);
/* A meta value of the store (1 with *value_r, malloc'd; 0 when absent; -1). */
int abq_store_meta_get(struct abq_store *s, const char *key, char **value_r, const char **errstr_r);

/* Moving a registry: described at the end. */
struct abq_syncstate;
typedef int abq_syncstate_cb(void *arg, const struct abq_syncstate *st);
/*
 * Several nodes on one store (PostgreSQL).
 *
 * Change notices: a backend that can push (PostgreSQL's LISTEN/NOTIFY) sends
 * one notice per committed transaction that wrote change-log rows, carrying
 * the highest seq written. A listener lives on a connection of its own, so
 * that a daemon can wait for notices while its store handle is busy.
 * abq_store_listener_new returns NULL with *errstr_r NULL when the backend
 * cannot push (SQLite: the daemon reads the change log periodically instead).
 * listener_connect (re)connects and starts listening (0 or -1); listener_fd is
 * the socket to poll for reading (-1 while not connected); listener_read
 * consumes what arrived: 1 when at least one notice came (*seq_r, may be NULL,
 * gets the highest seq announced), 0 when none, -1 when the connection is
 * lost (the listener is then disconnected; connect it again). The notices
 * are a hint: a reader refreshes from the change log, which stays the truth.
 */
struct abq_store_listener;
struct abq_store_listener *abq_store_listener_new(struct abq_store *s, const char **errstr_r);
int abq_store_listener_connect(struct abq_store_listener *l, const char **errstr_r);
int abq_store_listener_fd(const struct abq_store_listener *l);
int abq_store_listener_read(struct abq_store_listener *l, int64_t *seq_r, const char **errstr_r);
void abq_store_listener_free(struct abq_store_listener **l);

/*
 * A lock held by one process (node) at a time, for as long as its store
 * handle's connection lives: work that must run on one node only (the outbox
 * sender, the digest). Returns 1 when this handle holds lock `key` (taken now
 * or before), 0 when another handle holds it, -1 on a store error. A node
 * that dies, or loses its connection, loses the lock; the others take it at
 * their next try. Backends without sharing (SQLite: one node) always return 1.
 */
#define ABQ_LOCK_SENDER 0x41425153 /* 'ABQS': the outbox sender and the digest */
int abq_store_try_lock(struct abq_store *s, int64_t key, const char **errstr_r);

/*
 * Whether the handle's connection to the store is up, as far as the last
 * call knows (a backend without connections is always up). A handle whose
 * connection was lost reconnects by itself at a later call, with growing
 * delays between attempts.
 */
bool abq_store_connected(const struct abq_store *s);

/*
 * Moving a registry into another store (abqctl mobile abq migrate-store).
 *
 * syncstate_iter goes through every sync-state blob by account, DeviceId
 * (without case) and collection. The restore calls write a record with the id
 * it had in the source store (a rule's id, a history row's id, a notice's id,
 * a change's seq), so that what refers to them (a device's rule_id, "Rule 3"
 * in history, the change log's position) stays true; they are meant for an
 * empty store, inside one transaction, followed by restore_finish, which makes
 * the store's counters go on after the highest ids restored.
 */
struct abq_syncstate {
	char *account;
	char *device_id;
	char *collection;
	void *state; /* len bytes, NUL-terminated after them */
	size_t len;
	int64_t updated;
};
void abq_syncstate_clear(struct abq_syncstate *st);
int abq_store_syncstate_iter(struct abq_store *s, abq_syncstate_cb *cb, void *arg,
                             const char **errstr_r);
/*
 * The folder-id counters (moving a registry): folder_counter_iter goes by
 * account; folder_counter_restore raises an account's counter to at least
 * c->last_id (the ids given out so far). folder_restore inserts a folder
 * under its id and raises its account's counter to it, so that a restored
 * id is never handed out again.
 */
struct abq_folder_counter {
	char *account;
	int64_t last_id; /* the highest id given out */
};
void abq_folder_counter_clear(struct abq_folder_counter *c);
typedef int abq_folder_counter_cb(void *arg, const struct abq_folder_counter *c);
int abq_store_folder_counter_iter(struct abq_store *s, abq_folder_counter_cb *cb, void *arg,
                                  const char **errstr_r);
int abq_store_folder_counter_restore(struct abq_store *s, const struct abq_folder_counter *c,
                                     const char **errstr_r);
int abq_store_folder_restore(struct abq_store *s, const struct abq_folder *f,
                             const char **errstr_r);
/*
 * The map of contacts, calendars and tasks (moving a registry), copied whole
 * so that the phones' collection ids, item ids and cursors stay true:
 * pim_counter_iter goes by account through the collection-id counters (the
 * highest collection number each account has given out), pim_counter_restore
 * raises one to at least c->last_id. pim_coll_restore inserts a collection
 * under its id with its sequence, pruned, last_item, token and refreshed, and
 * raises its account's counter to its number. pim_item_iter goes through every
 * item (tombstones included) by account, collection and seq; pim_item_restore
 * inserts one under its id.
 */
int abq_store_pim_counter_iter(struct abq_store *s, abq_folder_counter_cb *cb, void *arg,
                               const char **errstr_r);
int abq_store_pim_counter_restore(struct abq_store *s, const struct abq_folder_counter *c,
                                  const char **errstr_r);
int abq_store_pim_coll_restore(struct abq_store *s, const struct abq_pim_coll *c,
                               const char **errstr_r);
int abq_store_pim_item_iter(struct abq_store *s, abq_pim_item_cb *cb, void *arg,
                            const char **errstr_r);
int abq_store_pim_item_restore(struct abq_store *s, const struct abq_pim_item *i,
                               const char **errstr_r);
int abq_store_rule_restore(struct abq_store *s, const struct abq_rule *r, const char **errstr_r);
int abq_store_history_restore(struct abq_store *s, const struct abq_history *h,
                              const char **errstr_r);
int abq_store_notice_restore(struct abq_store *s, const struct abq_notice *n,
                             const char **errstr_r);
int abq_store_change_restore(struct abq_store *s, const struct abq_change *c,
                             const char **errstr_r);
int abq_store_restore_finish(struct abq_store *s, const char **errstr_r);

#endif
