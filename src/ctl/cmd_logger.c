/*
 * cmd_logger.c: account loggers, for troubleshooting one phone
 * (mobile doAddAccountLogger, getAccountLoggers, doRemoveLogger).
 *
 * A logger makes the running abqd append every request of an account (or of
 * one of its devices) and its answer, decoded from WBXML, to a file, until
 * its time is up. Adding and removing go through the registry (history and
 * change-log rows, --dry-run); the daemon learns of them from the change log.
 * A logger whose time is up is ignored by the daemon and listed as "ended"
 * until it is removed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/* How long a logger runs when no "until" is given. */
#define LOGGER_DEFAULT_SECONDS 3600

/*
 * mobile doAddAccountLogger ACCOUNT [device DEVICE_ID] [until DURATION] FILE:
 * the duration in the attributes' spelling (30s, 45m, 6h, 1d), 1h by
 * default, at most 7d.
 */
int
do_logger_add(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	const char *file = ctl_arg(args, "file");
	const char *dur = ctl_arg(args, "duration");
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL, t[32], d[32];
	int64_t secs = LOGGER_DEFAULT_SECONDS;
	const char *perr;
	int rc;

	(void)cmd;
	if (ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	if (device_id != NULL && ctl_device_id(device_id) < 0) {
		free(account);
		return CTL_REFUSED;
	}
	if (dur != NULL && parse_duration(dur, &secs, &perr) < 0) {
		free(account);
		return ctl_fail("until %s: %s", dur, perr);
	}
	if (secs <= 0 || secs > ABQ_LOGGER_MAX_SECONDS) {
		free(account);
		return ctl_fail("until %s: a logger lasts at least 1s and at most 7d (%d seconds)",
		                dur, ABQ_LOGGER_MAX_SECONDS);
	}
	if (file == NULL || file[0] != '/') {
		free(account);
		return ctl_fail(
		    "'%s' is not an absolute path: abqd opens the file itself, from its "
		    "own working directory",
		    file != NULL ? file : "");
	}
	int64_t until = env->ctx.now + secs;
	rc = abq_registry_logger_add(&env->ctx, account, device_id, file, until, &o, &errmsg);
	if (rc != 0) {
		free(account);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (env->json) {
		json_t *j = outcome_json(&o, env->dry_run);

		json_object_set_new(j, "account", jstr(account));
		json_object_set_new(j, "deviceId", jstr(device_id));
		json_object_set_new(j, "file", jstr(file));
		json_object_set_new(j, "until", jtime(until));
		json_print(env->out, j);
	} else if (env->dry_run) {
		fprintf(env->out, "would log %s (%s) to %s for %s, until %s\n", shown(account),
		        device_id != NULL ? shown(device_id) : "every device", shown(file),
		        format_duration(secs, d), format_time(until, t));
	} else {
		fprintf(env->out, "logger %" PRId64 ": %s (%s) to %s for %s, until %s\n", o.id,
		        shown(account), device_id != NULL ? shown(device_id) : "every device",
		        shown(file), format_duration(secs, d), format_time(until, t));
	}
	abq_outcome_clear(&o);
	free(account);
	return CTL_OK;
}

/* The listing's state. */
struct logger_lister {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
	size_t count;
};

/* Print one logger (a store iteration callback). */
static int
logger_list_cb(void *arg, const struct abq_logger *lg)
{
	struct logger_lister *l = arg;
	bool active = lg->until > l->env->ctx.now;

	l->count++;
	if (l->env->json) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_integer(lg->id));
		json_object_set_new(o, "account", jstr(lg->account));
		json_object_set_new(o, "deviceId", jstr(lg->device_id));
		json_object_set_new(o, "file", jstr(lg->file));
		json_object_set_new(o, "until", jtime(lg->until));
		json_object_set_new(o, "active", json_boolean(active));
		json_object_set_new(o, "createdBy", jstr(lg->created_by));
		json_object_set_new(o, "createdAt", jtime(lg->created_at));
		jstream_item(&l->js, o);
	} else {
		char id[32], until[48], t[32], at[32];
		const char *cells[7];

		snprintf(id, sizeof(id), "%" PRId64, lg->id);
		snprintf(until, sizeof(until), "%s%s", format_time(lg->until, t),
		         active ? "" : " (ended)");
		cells[0] = id;
		cells[1] = lg->account;
		cells[2] = lg->device_id != NULL ? lg->device_id : "every device";
		cells[3] = lg->file;
		cells[4] = until;
		cells[5] = lg->created_by;
		cells[6] = format_time(lg->created_at, at);
		table_row(l->table, cells);
	}
	return 0;
}

/* mobile getAccountLoggers: every logger by id, ended ones marked. */
int
do_logger_list(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const char *const headers[] = {"ID",    "ACCOUNT", "DEVICE", "FILE",
	                                      "UNTIL", "BY",      "WHEN"};
	struct logger_lister l = {.env = env};
	const char *err = NULL;
	int r;

	(void)cmd;
	(void)args;
	if (env->json)
		jstream_begin(&l.js, env->out, NULL, "loggers");
	else
		l.table = table_new(env->out, 7, headers);
	r = abq_store_logger_iter(env->store, logger_list_cb, &l, &err);
	if (env->json)
		jstream_end(&l.js);
	else if (table_finish(&l.table) == 0 && r == 0)
		fprintf(env->out, "no logger\n");
	if (r != 0)
		return ctl_fail("store: %s", err != NULL ? err : "listing the loggers failed");
	return CTL_OK;
}

/* mobile doRemoveLogger ID|all */
int
do_logger_remove(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *word = ctl_arg(args, "id");
	struct abq_outcome o = {0};
	char *errmsg = NULL;
	long long id = 0;
	const char *perr;
	int rc;

	(void)cmd;
	if (strcasecmp(word, "all") != 0 && parse_int(word, 1, INT64_MAX, &id, &perr) < 0)
		return ctl_fail("'%s' is not a logger's id (a number, or all)", word);
	rc = abq_registry_logger_remove(&env->ctx, id, &o, &errmsg);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (env->json) {
		json_print(env->out, outcome_json(&o, env->dry_run));
	} else {
		fprintf(env->out, "%s %zu logger%s\n", env->dry_run ? "would remove" : "removed",
		        o.affected, o.affected == 1 ? "" : "s");
	}
	abq_outcome_clear(&o);
	return CTL_OK;
}
