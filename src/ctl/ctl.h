/*
 * ctl.h: what abqctl's command handlers share: the environment a command runs
 * in (config, store, registry context, output options) and the handlers the
 * grammar table in abqctl.c points to.
 */
#ifndef ABQ_CTL_H
#define ABQ_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "core/registry.h"
#include "ctl/grammar.h"

/* Exit statuses (interfaces.md). */
#define CTL_OK      0
#define CTL_REFUSED 1
#define CTL_USAGE   2

struct ctl_env {
	struct abq_config *config;
	const char *config_path;
	struct abq_store *store; /* NULL for init until it opens the store */
	struct abq_ctx ctx;      /* store, default_domain, who, now, dry_run */
	bool json;
	bool dry_run;
	FILE *out;
};

/*
 * Print "abqctl: " and the message to stderr, one line per line of msg (a
 * multi-line registry message gives several prefixed lines). Returns
 * CTL_REFUSED so that handlers can `return ctl_fail(...)`.
 */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Report a registry result (0, 1 or -1 with errmsg, which is freed) and turn it
 * into an exit status.
 */
int ctl_registry_status(int rc, char *errmsg);

/* Command-line values, checked and normalised; each returns 0 or prints the error and -1. */
/* An account in its canonical form (util.h account_canonical, [eas] default_domain). */
int ctl_account(const struct ctl_env *env, const char *word, char **account_r);
int ctl_domain(const char *word, char **domain_r);
int ctl_device_id(const char *word);
int ctl_state(const char *word, bool allow_discovery, enum abq_state *state_r);

/* abqctl.c: the whole command (main.c's main calls it), and init. */
int abqctl_main(int argc, char **argv);
ctl_handler do_init;

/* cmd_config.c */
ctl_handler do_config_get, do_config_set, do_config_delete;

/* cmd_provision.c: the provisioning policy handed to phones. */
ctl_handler do_prov_get, do_prov_set, do_prov_unset;

/* cmd_entry.c: the list entries and the device records. */
/*
 * The scope's target of a config or provisioning row (op: the scope) from
 * the command line, normalised, NULL for global; -1 after a refusal.
 */
int ctl_scope_target(const struct ctl_env *env, const struct ctl_command *cmd,
                     const struct ctl_args *args, char **target_r);
/* "global", "domain example.com", "account alice@example.com": a new string. */
char *ctl_scope_text(enum abq_scope scope, const char *target);

ctl_handler do_entry, do_set, do_delete, do_wipe, do_import, do_export, do_adopt, do_purge;
ctl_handler do_reset_device;

/* cmd_device.c: reading the registry. */
ctl_handler do_list, do_device_list, do_device_info, do_all_devices, do_history, do_explain;

/* cmd_rule.c */
ctl_handler do_rule_set, do_rule_delete, do_rule_list, do_notification_interval;

/* cmd_notice.c: the outbox and the notice templates. */
ctl_handler do_outbox, do_msg_set, do_msg_get, do_msg_delete;

/* cmd_logger.c: account loggers (doAddAccountLogger, getAccountLoggers, doRemoveLogger). */
ctl_handler do_logger_add, do_logger_list, do_logger_remove;

/* cmd_admin.c: the administrators of the console and the JSON API. */
ctl_handler do_admin_set, do_admin_delete, do_admin_list, do_admin_token, do_admin_revoke;
/* cmd_migrate.c: moving a registry into another (empty) store. */
ctl_handler do_migrate_store;

#endif
