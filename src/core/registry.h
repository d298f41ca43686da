/*
 * registry.h: the operations that change the device registry.
 *
 * Every administrative act (abqctl now, the JSON API later) and every decision
 * the daemon records goes through one of these functions. Each runs in one store
 * transaction that writes the change, a history row per change, a change-log
 * row, and the re-evaluation of the devices it affects, so that nothing is ever
 * half-written. With dry_run set the same work is done and reported, then
 * rolled back.
 *
 * The engine (engine/engine.h) decides; this layer loads the policy it decides
 * from, feeds it each device, and records the outcome.
 */
#ifndef ABQ_REGISTRY_H
#define ABQ_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "store/store.h"

/* The name recorded when abqd itself decides. */
#define ABQ_WHO_DAEMON "abqd"

/* A device whose state changed (or would change, in a dry run). */
struct abq_transition {
	char *account;
	char *device_id;
	enum abq_state old_state;
	enum abq_reason old_reason;
	int64_t old_rule;
	enum abq_state new_state;
	enum abq_reason new_reason;
	int64_t new_rule;
};

/* What an operation did, for abqctl to print. */
struct abq_outcome {
	struct abq_transition *changed; /* devices whose state changed */
	size_t changed_count;
	size_t changed_cap;
	size_t affected; /* records written or removed by the operation itself */
	int64_t id;      /* a created rule's id */
	bool dry_run;
};
void abq_outcome_clear(struct abq_outcome *o);

/*
 * What the user's notices need ([smtp] from and domain). With it set in the
 * context, a device that becomes Quarantined or Blocked (or Allowed, when
 * abqNotifyUserOnAllow is TRUE) gets a notice queued in the outbox in the
 * same transaction as its state change (core/notify.c).
 */
struct abq_notice_conf {
	const char *from;        /* the sender; required */
	const char *mail_domain; /* a bare account's mail domain; NULL: its account domain */
	const char *contact;     /* whom to contact; NULL: the default sentence */
	const char *admins;      /* [smtp] admins, comma-separated; NULL: none */
};

/* The context of an operation. */
struct abq_ctx {
	struct abq_store *store;
	const char *default_domain; /* [eas] default_domain, may be NULL */
	const char *who;            /* administrator's name, or ABQ_WHO_DAEMON */
	int64_t now;
	bool dry_run;
	const struct abq_notice_conf *notices; /* NULL: no notices are queued */
};

/*
 * Load the policy (attributes, entries, rules) from the store. Returns NULL
 * with *errmsg_r (new string).
 */
struct abq_policy *abq_registry_policy(struct abq_store *s, const char *default_domain,
                                       char **errmsg_r);

/*
 * The attributes alone, provisioning values included (no entries, no rules):
 * for abq_policy_provisioning and abq_policy_attr outside the daemon. NULL
 * with *errmsg_r.
 */
struct abq_policy *abq_registry_attr_policy(struct abq_store *s, const char *default_domain,
                                            char **errmsg_r);

/*
 * All operations return 0 on success, 1 when the request is refused (unknown
 * device or rule, bad value: *errmsg_r says why), -1 on a store failure
 * (*errmsg_r). *errmsg_r is a new string the caller frees.
 */

/*
 * doWipeDevice: ask the recorded device (account, device_id) to erase itself
 * (account_only: the account's data only, EAS 16.1 devices) at its next
 * request. Asking again replaces the request; refused (1) for an unknown
 * device, one already wiped, or account_only below 16.1.
 */
int abq_registry_wipe(const struct abq_ctx *c, const char *account, const char *device_id,
                      bool account_only, struct abq_outcome *o, char **errmsg_r);
/* doAbortWipe: withdraw a wipe the device has not confirmed (refused, 1, otherwise). */
int abq_registry_wipe_abort(const struct abq_ctx *c, const char *account, const char *device_id,
                            struct abq_outcome *o, char **errmsg_r);
/*
 * The device confirmed its pending wipe (the daemon, at its Provision): record
 * it, block the device (reason Wipe) and queue the wiped notices. Refused (1)
 * when no wipe is pending.
 */
int abq_registry_wipe_confirmed(const struct abq_ctx *c, const char *account, const char *device_id,
                                struct abq_outcome *o, char **errmsg_r);
/*
 * doResetDevice: remove every collection's sync state of the recorded device
 * (account, device_id), so that the phone starts over at its next request
 * (its next Sync or FolderSync finds no state for its SyncKey), and the
 * SendMail ClientIds native mode remembers for it, with a history row
 * ("reset": "N collections" -> "none") and a change-log row. The
 * device's state and facts stay. o->affected gets how many collections were
 * removed (0 is not a refusal). Refused (1) for a device not recorded.
 */
int abq_registry_reset_device(const struct abq_ctx *c, const char *account, const char *device_id,
                              struct abq_outcome *o, char **errmsg_r);
/*
 * The device acknowledged its policy (the daemon, at its Provision phase 2)
 * with status (MS-ASPROV: 1 applied, 2 partially applied, 3 not applied, 4
 * externally managed): recorded when it changed (history "provision",
 * change log), and the device decided anew, Blocked (reason Policy) when it
 * does not provision and its account's AllowNonProvisionableDevices is 0.
 * The same status again writes nothing. Refused (1) for a status outside 1 to
 * 4 or a device not recorded.
 */
int abq_registry_provision_status(const struct abq_ctx *c, const char *account,
                                  const char *device_id, int status, struct abq_outcome *o,
                                  char **errmsg_r);

/*
 * Account loggers. The longest a logger may run: a forgotten one stops by
 * itself.
 */
#define ABQ_LOGGER_MAX_SECONDS (7 * 86400)
/*
 * doAddAccountLogger: log every request of account (of device_id alone when
 * not NULL) and its answer, decoded, to file until `until`; o->id gets the new
 * logger's id. Refused (1) for a bad account or DeviceId, a file that is not
 * an absolute path, or an until not in (now, now + ABQ_LOGGER_MAX_SECONDS].
 */
int abq_registry_logger_add(const struct abq_ctx *c, const char *account, const char *device_id,
                            const char *file, int64_t until, struct abq_outcome *o,
                            char **errmsg_r);
/*
 * doRemoveLogger: remove logger id, or every logger (id 0). Refused (1) when
 * there is no such logger (for id 0: when there is none at all).
 */
int abq_registry_logger_remove(const struct abq_ctx *c, int64_t id, struct abq_outcome *o,
                               char **errmsg_r);

/* allow / block / quarantine / set: write the entry, decide that DeviceId anew. */
int abq_registry_set_entry(const struct abq_ctx *c, const char *device_id, const char *account,
                           enum abq_state state, struct abq_outcome *o, char **errmsg_r);
/*
 * delete: remove the entries and device records of device_id (one account's with
 * account), so it is decided anew at its next request. Refused (1) when nothing
 * matches.
 */
int abq_registry_delete(const struct abq_ctx *c, const char *device_id, const char *account,
                        struct abq_outcome *o, char **errmsg_r);

/* One line of an import file. */
struct abq_import_line {
	char *device_id;
	char *account; /* NULL: DeviceId alone */
};
/*
 * Parse an import file: "DEVICE_ID[/account]" a line, '#' comments and blank
 * lines ignored. Every bad line is reported in *errmsg_r ("line 3: ...\nline
 * 9: ..."), and then nothing is returned (1).
 */
int abq_import_parse(const char *text, size_t len, struct abq_import_line **lines_r,
                     size_t *count_r, char **errmsg_r);
void abq_import_free(struct abq_import_line *lines, size_t count);
int abq_registry_import(const struct abq_ctx *c, const struct abq_import_line *lines, size_t n,
                        enum abq_state state, struct abq_outcome *o, char **errmsg_r);

/*
 * Rules. A rule whose (domain, characteristic, match, pattern) exists already
 * is updated (level, order) rather than duplicated. The regex is checked first.
 */
int abq_registry_rule_set(const struct abq_ctx *c, const struct abq_rule *r, struct abq_outcome *o,
                          char **errmsg_r);
/* By id (pattern NULL) or by pattern within domain (NULL: global). */
int abq_registry_rule_delete(const struct abq_ctx *c, int64_t id, const char *pattern,
                             const char *domain, struct abq_outcome *o, char **errmsg_r);

/*
 * Change every field of rule id (the admin API's PUT). Refused when there is
 * no such rule or another rule has the same (domain, characteristic, match,
 * pattern).
 */
int abq_registry_rule_update(const struct abq_ctx *c, int64_t id, const struct abq_rule *r,
                             struct abq_outcome *o, char **errmsg_r);
/*
 * Give the rules of one scope (domain NULL: the global rules) the orders 10,
 * 20, 30... in the order of ids, in one transaction. Every rule of the scope
 * must be named exactly once.
 */
int abq_registry_rule_reorder(const struct abq_ctx *c, const char *domain, const int64_t *ids,
                              size_t n, struct abq_outcome *o, char **errmsg_r);

/* Attributes: validated against lib/attrs.h; value NULL unsets. */
int abq_registry_attr_set(const struct abq_ctx *c, enum abq_scope scope, const char *target,
                          const char *name, const char *value, struct abq_outcome *o,
                          char **errmsg_r);

/*
 * Provisioning (lib/provision.h): set one key (its EASProvisionDoc name) at a
 * scope, or unset it with value NULL; validated, with history and the change
 * log. Refused (1) for an unknown key, a bad value (the message says what the
 * key takes), or unsetting a key not set at that scope.
 */
int abq_registry_prov_set(const struct abq_ctx *c, enum abq_scope scope, const char *target,
                          const char *key, const char *value, struct abq_outcome *o,
                          char **errmsg_r);

/*
 * Notice templates. The texts a template set names (ABQ_TEMPLATE_*): the
 * others it has stay.
 */
enum {
	ABQ_TEMPLATE_FROM = 1u << 0,
	ABQ_TEMPLATE_REPLY_TO = 1u << 1,
	ABQ_TEMPLATE_SUBJECT = 1u << 2,
	ABQ_TEMPLATE_BODY_PLAIN = 1u << 3,
	ABQ_TEMPLATE_BODY_HTML = 1u << 4,
};
/*
 * Set the texts of template (t->scope, t->domain, t->kind, t->locale) that
 * fields names to those of t (NULL clears one), creating the template when
 * there is none; set_by and set_at come from the context. *out (may be NULL)
 * gets the template as written. Refused (1) when fields names nothing, or the
 * kind (the full name: "user-quarantined", ...), locale, scope or domain is not
 * one a template can have.
 */
int abq_registry_template_set(const struct abq_ctx *c, const struct abq_template *t,
                              unsigned fields, struct abq_template *out, struct abq_outcome *o,
                              char **errmsg_r);
/* Remove one template. Refused (1) when there is none (or the key is not one). */
int abq_registry_template_delete(const struct abq_ctx *c, enum abq_scope scope, const char *domain,
                                 const char *kind, const char *locale, struct abq_outcome *o,
                                 char **errmsg_r);

/*
 * adopt: every device seen since seen_since (0: all) that is Allowed now and has
 * no entry of its own gets an Individual Allowed DeviceId/account entry.
 */
int abq_registry_adopt(const struct abq_ctx *c, int64_t seen_since, struct abq_outcome *o,
                       char **errmsg_r);

/* purge: forget devices not seen since before (their entries stay). */
int abq_registry_purge(const struct abq_ctx *c, int64_t before, struct abq_outcome *o,
                       char **errmsg_r);

/*
 * The list entries no device has used yet, for a listing of devices with
 * filter f to show after the devices (abqctl mobile abq list, the console):
 * an entry DeviceId/account while there is no device (account, DeviceId), an
 * entry for the DeviceId alone while no account has a device of that DeviceId.
 * f's state, account, domain and device_id apply to the entry (one for every
 * account only when no account or domain is asked for); a filter on when a
 * device was seen, or on not_individual, leaves none. cb gets each entry in
 * the store's order (see abq_store_entry_iter) and may stop the listing by
 * returning non-zero, which is returned. -1 with *errmsg_r on a store failure.
 */
int abq_registry_unseen_entries(struct abq_store *s, const struct abq_device_filter *f,
                                abq_entry_cb *cb, void *arg, char **errmsg_r);

/*
 * Decide again every device not held by an entry (and the Discovery devices
 * whose timeout passed). Used after changes above; also on its own by the
 * daemon.
 */
int abq_registry_reevaluate(const struct abq_ctx *c, struct abq_outcome *o, char **errmsg_r);

/*
 * The daemon's path, and the test tool's: a request from (account, device)
 * carrying these facts (fields left NULL are not reported by this request).
 * A new device is decided, recorded and logged in history; a known one has its
 * facts updated and, when a fact a rule can test changed or it is in
 * Discovery (whose timeout may have passed), is decided again. *out gets the device as recorded.
 */
int abq_registry_observe(const struct abq_ctx *c, const struct abq_device *seen,
                         struct abq_device *out, struct abq_outcome *o, char **errmsg_r);

/*
 * explain: what the engine would decide for (account, device_id) now, with the
 * inputs it used. A device not in the registry is explained as a new one with
 * only its DeviceId known. Returns 1 when account is not a valid account.
 */
struct abq_explanation {
	struct abq_inputs in;
	struct abq_verdict verdict;
	bool known;               /* the device is in the registry */
	struct abq_device device; /* the record when known */
	enum abq_scope mode_scope;
	bool mode_is_default;
	char *domain;
};
int abq_registry_explain(const struct abq_ctx *c, const char *account, const char *device_id,
                         struct abq_policy *p, struct abq_explanation *x, char **errmsg_r);
void abq_explanation_clear(struct abq_explanation *x);

#endif
