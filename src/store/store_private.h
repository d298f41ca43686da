/*
 * store_private.h: the backends' side of the store (internal to src/store).
 *
 * struct abq_store_ops is the one door between store.c, which checks the
 * callers' arguments, and a backend. Both SQL backends fill most of it with
 * the shared operations of store_sql.c, written once over the driver of
 * store_sql.h.
 */
#ifndef ABQ_STORE_PRIVATE_H
#define ABQ_STORE_PRIVATE_H

#include "store/store.h"

enum abq_restore_kind {
	ABQ_RESTORE_RULE = 1, /* struct abq_rule */
	ABQ_RESTORE_HISTORY,  /* struct abq_history */
	ABQ_RESTORE_NOTICE,   /* struct abq_notice */
	ABQ_RESTORE_CHANGE,   /* struct abq_change */
};

/*
 * The backend's table. store.c calls these after checking arguments; the
 * comments on the abq_store_* wrappers above are the contract.
 */
struct abq_store_ops {
	const char *name;   /* "sqlite" */
	const char *scheme; /* URL prefix handled, "sqlite:" */
	struct abq_store *(*open)(const char *url_rest, const char *base_dir, int flags,
	                          const char **errstr_r);
	void (*close)(struct abq_store *s);
	const char *(*location)(const struct abq_store *s);
	const char *const *(*files)(const struct abq_store *s);
	int (*begin)(struct abq_store *s, const char **errstr_r);
	int (*commit)(struct abq_store *s, const char **errstr_r);
	void (*rollback)(struct abq_store *s);

	int (*device_get)(struct abq_store *, const char *, const char *, struct abq_device *,
	                  const char **);
	int (*device_put)(struct abq_store *, const struct abq_device *, const char **);
	int (*device_delete)(struct abq_store *, const char *, const char *, size_t *,
	                     const char **);
	int (*device_iter)(struct abq_store *, const struct abq_device_filter *, abq_device_cb *,
	                   void *, const char **);
	int (*device_count)(struct abq_store *, const char *, int64_t, size_t *, const char **);
	int (*device_touch)(struct abq_store *, const struct abq_seen *, size_t, const char **);

	int (*entry_get)(struct abq_store *, const char *, const char *, struct abq_entry *,
	                 const char **);
	int (*entry_put)(struct abq_store *, const struct abq_entry *, const char **);
	int (*entry_delete)(struct abq_store *, const char *, const char *, bool, size_t *,
	                    const char **);
	int (*entry_iter)(struct abq_store *, enum abq_state, abq_entry_cb *, void *,
	                  const char **);

	int (*rule_insert)(struct abq_store *, struct abq_rule *, const char **);
	int (*rule_update)(struct abq_store *, const struct abq_rule *, const char **);
	int (*rule_get)(struct abq_store *, int64_t, struct abq_rule *, const char **);
	int (*rule_delete)(struct abq_store *, int64_t, const char **);
	int (*rule_iter)(struct abq_store *, const char *, bool, abq_rule_cb *, void *,
	                 const char **);

	int (*attr_get)(struct abq_store *, enum abq_scope, const char *, const char *,
	                struct abq_attr *, const char **);
	int (*attr_put)(struct abq_store *, const struct abq_attr *, const char **);
	int (*attr_delete)(struct abq_store *, enum abq_scope, const char *, const char *,
	                   const char **);
	int (*attr_iter)(struct abq_store *, abq_attr_cb *, void *, const char **);

	int (*history_add)(struct abq_store *, struct abq_history *, const char **);
	int (*history_iter)(struct abq_store *, const struct abq_history_filter *, abq_history_cb *,
	                    void *, const char **);

	int (*change_add)(struct abq_store *, enum abq_change_kind, const char *, int64_t,
	                  const char **);
	int (*change_iter)(struct abq_store *, int64_t, abq_change_cb *, void *, const char **);
	int (*change_last)(struct abq_store *, int64_t *, const char **);

	int (*notice_add)(struct abq_store *, struct abq_notice *, const char **);
	int (*notice_iter)(struct abq_store *, const char *, abq_notice_cb *, void *,
	                   const char **);
	int (*notice_stats)(struct abq_store *, const char *, int64_t *, int64_t *, const char **);

	int (*syncstate_get)(struct abq_store *, const char *, const char *, const char *, void **,
	                     size_t *, int64_t *, const char **);
	int (*syncstate_put)(struct abq_store *, const char *, const char *, const char *,
	                     const void *, size_t, int64_t, const char **);
	int (*syncstate_delete)(struct abq_store *, const char *, const char *, const char *,
	                        size_t *, const char **);

	int (*notice_due)(struct abq_store *, int64_t, abq_notice_cb *, void *, const char **);
	int (*notice_mark)(struct abq_store *, int64_t, const char *, int, int64_t, const char *,
	                   int64_t, const char **);
	int (*template_put)(struct abq_store *, const struct abq_template *, const char **);
	int (*template_get)(struct abq_store *, enum abq_scope, const char *, const char *,
	                    const char *, struct abq_template *, const char **);
	int (*template_delete)(struct abq_store *, enum abq_scope, const char *, const char *,
	                       const char *, size_t *, const char **);
	int (*template_iter)(struct abq_store *, abq_template_cb *, void *, const char **);

	int (*admin_get)(struct abq_store *, const char *, struct abq_admin *, const char **);
	int (*admin_put)(struct abq_store *, const struct abq_admin *, const char **);
	int (*admin_delete)(struct abq_store *, const char *, size_t *, const char **);
	int (*admin_iter)(struct abq_store *, abq_admin_cb *, void *, const char **);
	int (*token_add)(struct abq_store *, struct abq_token *, const char **);
	int (*token_find)(struct abq_store *, const char *, struct abq_token *, const char **);
	int (*token_touch)(struct abq_store *, int64_t, int64_t, const char **);
	int (*token_delete)(struct abq_store *, const char *, const char *, size_t *,
	                    const char **);
	int (*token_iter)(struct abq_store *, const char *, abq_token_cb *, void *, const char **);
	int (*token_count)(struct abq_store *, const char *, size_t *, const char **);
	/* Several nodes (see the end of this file); NULL: not supported by the backend. */
	struct abq_store_listener *(*listener_new)(struct abq_store *, const char **);
	int (*listener_connect)(struct abq_store_listener *, const char **);
	int (*listener_fd)(const struct abq_store_listener *);
	int (*listener_read)(struct abq_store_listener *, int64_t *, const char **);
	void (*listener_free)(struct abq_store_listener *);
	int (*try_lock)(struct abq_store *, int64_t, const char **);
	bool (*connected)(const struct abq_store *);

	/* Moving a registry (see the end of this file). */
	int (*syncstate_iter)(struct abq_store *, abq_syncstate_cb *, void *, const char **);
	int (*restore)(struct abq_store *, enum abq_restore_kind, const void *, const char **);
	int (*restore_finish)(struct abq_store *, const char **);

	/* Accounts (abq_store_accounts_canonicalize), schema version 5. */
	int (*meta_get)(struct abq_store *, const char *, char **, const char **);
	/* Inside the caller's transaction; also records the meta key. */
	int (*accounts_canonicalize)(struct abq_store *, const char *, size_t *, const char **);
};

/*
 * Every backend's struct abq_store begins with this header, so that store.c can
 * find the ops table.
 */
struct abq_store_base {
	const struct abq_store_ops *ops;
};

extern const struct abq_store_ops abq_store_sqlite_ops;
extern const struct abq_store_ops abq_store_pgsql_ops;

/* Every backend's listener begins with this header. */
struct abq_store_listener_base {
	const struct abq_store_ops *ops;
};

#endif
