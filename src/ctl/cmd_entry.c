/*
 * cmd_entry.c: the commands that write list entries or device records:
 * allow, block, quarantine, set, delete, import, export, adopt and purge.
 *
 * Each checks its words, calls one registry operation (one transaction, or a
 * rolled-back one with --dry-run), and prints a line saying what was done
 * followed by every device whose state changed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/* An import file larger than this is refused rather than read into memory. */
#define IMPORT_MAX (256u * 1024 * 1024)

/*
 * Write an entry (allow/block/quarantine/set) and report it: "APPL123: Allowed
 * (entry for every account)" or "APPL123/alice: Blocked (entry for alice)".
 */
static int
write_entry(struct ctl_env *env, const char *device_id, const char *account_word,
            enum abq_state state)
{
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	int rc;

	if (ctl_device_id(device_id) < 0)
		return CTL_REFUSED;
	if (account_word != NULL && ctl_account(env, account_word, &account) < 0)
		return CTL_REFUSED;
	rc = abq_registry_set_entry(&env->ctx, device_id, account, state, &o, &errmsg);
	if (rc != 0) {
		free(account);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json) {
		if (account != NULL)
			fprintf(env->out, "%s%s/%s: %s (entry for %s)\n",
			        env->dry_run ? "would set " : "", device_id, account,
			        abq_state_name(state), account);
		else
			fprintf(env->out, "%s%s: %s (entry for every account)\n",
			        env->dry_run ? "would set " : "", device_id, abq_state_name(state));
	}
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(account);
	return CTL_OK;
}

/* mobile abq allow|block|quarantine DEVICE_ID [account A]: the row says which state. */
int
do_entry(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	return write_entry(env, ctl_arg(args, "device-id"), ctl_arg(args, "account"),
	                   (enum abq_state)cmd->op);
}

/* mobile abq set DEVICE_ID Allowed|Blocked|Quarantined [account A] */
int
do_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	enum abq_state state;

	if (ctl_state(ctl_arg(args, "state"), false, &state) < 0)
		return CTL_REFUSED;
	return write_entry(env, ctl_arg(args, "device-id"), ctl_arg(args, "account"), state);
}

/*
 * mobile abq delete DEVICE_ID [account A]: remove the entries and the records,
 * so that the device is decided anew at its next request.
 */
int
do_delete(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	const char *account_word = ctl_arg(args, "account");
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	int rc;

	if (ctl_device_id(device_id) < 0)
		return CTL_REFUSED;
	if (account_word != NULL && ctl_account(env, account_word, &account) < 0)
		return CTL_REFUSED;
	rc = abq_registry_delete(&env->ctx, device_id, account, &o, &errmsg);
	if (rc != 0) {
		free(account);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%s %s%s%s: %zu record%s (entries and devices)\n",
		        env->dry_run ? "would delete" : "deleted", device_id,
		        account != NULL ? "/" : "", account != NULL ? account : "", o.affected,
		        o.affected == 1 ? "" : "s");
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(account);
	return CTL_OK;
}

/*
 * mobile doWipeDevice ACCOUNT DEVICE_ID [accountOnly] (op 1, 2) and mobile
 * doAbortWipe ACCOUNT DEVICE_ID (op 0): ask a device to erase itself at its
 * next request, or withdraw that before it confirms.
 */
int
do_wipe(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	bool account_only = cmd->op == 2;
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	int rc;

	if (ctl_device_id(device_id) < 0 ||
	    ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	if (cmd->op != 0)
		rc = abq_registry_wipe(&env->ctx, account, device_id, account_only, &o, &errmsg);
	else
		rc = abq_registry_wipe_abort(&env->ctx, account, device_id, &o, &errmsg);
	if (rc != 0) {
		free(account);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json) {
		if (cmd->op != 0)
			fprintf(env->out,
			        "%s %s/%s: %s at its next request (a held request is ended "
			        "now)\n",
			        env->dry_run ? "would ask for a wipe of" : "wipe requested for",
			        device_id, account,
			        account_only ? "the device erases this account's data"
			                     : "the device erases everything it holds");
		else
			fprintf(env->out, "%s %s/%s\n",
			        env->dry_run ? "would withdraw the wipe of" : "wipe withdrawn for",
			        device_id, account);
	}
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(account);
	return CTL_OK;
}

/*
 * mobile doResetDevice ACCOUNT DEVICE_ID: remove the device's sync state (every
 * collection), so that the phone starts over at its next request.
 */
int
do_reset_device(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	int rc;

	(void)cmd;
	if (ctl_device_id(device_id) < 0 ||
	    ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	rc = abq_registry_reset_device(&env->ctx, account, device_id, &o, &errmsg);
	if (rc != 0) {
		free(account);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out,
		        "%s %s/%s: %zu collection%s; the phone starts over at its next request\n",
		        env->dry_run ? "would reset the sync state of" : "sync state reset for",
		        device_id, account, o.affected, o.affected == 1 ? "" : "s");
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(account);
	return CTL_OK;
}

/* Read all of f (at most IMPORT_MAX bytes) into a new buffer. */
static int
read_all(FILE *f, const char *name, char **buf_r, size_t *len_r)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap);

	for (;;) {
		if (len == cap) {
			if (cap >= IMPORT_MAX) {
				free(buf);
				ctl_fail("%s: larger than %u bytes", name, IMPORT_MAX);
				return -1;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				ctl_fail("%s: %s", name, strerror(errno));
				free(buf);
				return -1;
			}
			break;
		}
	}
	*buf_r = buf;
	*len_r = len;
	return 0;
}

/*
 * mobile abq import FILE STATE: every line "DEVICE_ID[/account]" becomes an
 * entry. The whole file is checked first: each bad line is reported with its
 * number and then nothing is imported.
 */
int
do_import(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *path = ctl_arg(args, "file");
	const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
	struct abq_import_line *lines = NULL;
	struct abq_outcome o = {0};
	enum abq_state state;
	size_t count = 0, len = 0;
	char *text = NULL, *errmsg = NULL;
	FILE *f;
	int rc;

	if (ctl_state(ctl_arg(args, "state"), false, &state) < 0)
		return CTL_REFUSED;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL)
		return ctl_fail("%s: %s", path, strerror(errno));
	rc = read_all(f, name, &text, &len);
	if (f != stdin)
		fclose(f);
	if (rc < 0)
		return CTL_REFUSED;
	rc = abq_import_parse(text, len, &lines, &count, &errmsg);
	free(text);
	if (rc != 0) {
		/* One line per bad line: "abqctl: FILE: line 3: ..." */
		char *p = errmsg;
		while (p != NULL && *p != '\0') {
			char *nl = strchr(p, '\n');
			if (nl != NULL)
				*nl = '\0';
			fprintf(stderr, "abqctl: %s: %s\n", shown(name), shown(p));
			p = nl != NULL ? nl + 1 : NULL;
		}
		free(errmsg);
		return CTL_REFUSED;
	}
	free(errmsg);
	errmsg = NULL;
	rc = abq_registry_import(&env->ctx, lines, count, state, &o, &errmsg);
	abq_import_free(lines, count);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%s %zu entr%s as %s\n",
		        env->dry_run ? "would import" : "imported", count, count == 1 ? "y" : "ies",
		        abq_state_name(state));
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	return CTL_OK;
}

/* Export state: the output mode and how many entries were printed. */
struct exporter {
	struct ctl_env *env;
	struct jstream js;
	size_t count;
};

/* Print one entry in the import format, or as a JSON object. */
static int
export_cb(void *arg, const struct abq_entry *e)
{
	struct exporter *x = arg;

	x->count++;
	if (x->env->json) {
		jstream_item(&x->js, entry_json(e));
		return 0;
	}
	if (e->account != NULL)
		fprintf(x->env->out, "%s/%s\n", shown(e->device_id), shown(e->account));
	else
		fprintf(x->env->out, "%s\n", shown(e->device_id));
	return 0;
}

/*
 * mobile abq export [status S]: the entries in the import format, so that an
 * export can be imported again. Without a status every state is exported,
 * each group after a comment line naming it ("# Allowed").
 */
int
do_export(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const enum abq_state groups[] = {ABQ_STATE_ALLOWED, ABQ_STATE_BLOCKED,
	                                        ABQ_STATE_QUARANTINED};
	const char *status_word = ctl_arg(args, "status");
	struct exporter x = {.env = env};
	enum abq_state state = ABQ_STATE_NONE;
	const char *err = NULL;
	int rc = 0;

	if (status_word != NULL && ctl_state(status_word, false, &state) < 0)
		return CTL_REFUSED;
	if (env->json) {
		jstream_begin(&x.js, env->out, NULL, "entries");
		rc = abq_store_entry_iter(env->store, state, export_cb, &x, &err);
		jstream_end(&x.js);
	} else if (state != ABQ_STATE_NONE) {
		rc = abq_store_entry_iter(env->store, state, export_cb, &x, &err);
	} else {
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]) && rc == 0; i++) {
			fprintf(env->out, "# %s\n", abq_state_name(groups[i]));
			rc = abq_store_entry_iter(env->store, groups[i], export_cb, &x, &err);
		}
	}
	if (rc != 0)
		return ctl_fail("store: %s", err != NULL ? err : "reading the entries failed");
	return CTL_OK;
}

/*
 * mobile abq adopt [seen-since DATE]: the devices that sync now get entries of
 * their own, so that switching to Interactive or Strict cuts none of them off.
 */
int
do_adopt(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *since_word = ctl_arg(args, "date");
	struct abq_outcome o = {0};
	int64_t since = 0;
	char *errmsg = NULL;
	int rc;

	if (since_word != NULL) {
		const char *why;
		if (parse_time(since_word, &since, &why) < 0)
			return ctl_fail("seen-since '%s': %s", since_word, why);
	}
	rc = abq_registry_adopt(&env->ctx, since, &o, &errmsg);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%s %zu device%s as Individual Allowed entries\n",
		        env->dry_run ? "would adopt" : "adopted", o.affected,
		        o.affected == 1 ? "" : "s");
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	return CTL_OK;
}

/*
 * mobile abq purge not-seen DURATION: forget the devices not seen for that
 * long (their entries stay). A zero duration would forget every device and is
 * refused.
 */
int
do_purge(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *word = ctl_arg(args, "duration");
	struct abq_outcome o = {0};
	const char *why;
	char *errmsg = NULL;
	char when[32];
	int64_t secs;
	int rc;

	if (parse_duration(word, &secs, &why) < 0)
		return ctl_fail("not-seen '%s': %s", word, why);
	if (secs <= 0)
		return ctl_fail("not-seen '%s': the duration must be more than 0", word);
	if (secs >= env->ctx.now)
		return ctl_fail("not-seen '%s': longer than the time since 1970", word);
	rc = abq_registry_purge(&env->ctx, env->ctx.now - secs, &o, &errmsg);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%s %zu device%s not seen since %s\n",
		        env->dry_run ? "would forget" : "forgot", o.affected,
		        o.affected == 1 ? "" : "s", format_time(env->ctx.now - secs, when));
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	return CTL_OK;
}
