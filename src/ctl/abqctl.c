/*
 * abqctl.c: the administrator's command line.
 *
 *     abqctl [-c FILE] [--json] [--dry-run] WORDS...
 *
 * abqctl_main() reads the options (anywhere among the words), matches the words
 * against the grammar table below, loads the config, opens the store (never
 * creating it, except for "init"), runs the command's handler and, when run as
 * root, gives the store's files back to the daemon's user. Exit status: 0 on
 * success, 1 when a request is refused or the store fails, 2 on usage errors;
 * every error is one line on stderr.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/notify.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/* The whole grammar of product.md; the first row matching the words wins. */
static const struct ctl_command commands[] = {
    {"init", do_init, 0, CTL_NO_STORE},

    {"config global get [attribute <name>]", do_config_get, ABQ_SCOPE_GLOBAL, 0},
    {"config domain <domain> get [attribute <name>]", do_config_get, ABQ_SCOPE_DOMAIN, 0},
    {"config account <account> get [attribute <name>]", do_config_get, ABQ_SCOPE_ACCOUNT, 0},
    {"config global set attribute <name> value <value>", do_config_set, ABQ_SCOPE_GLOBAL,
     CTL_DRY_RUN},
    {"config domain <domain> set attribute <name> value <value>", do_config_set, ABQ_SCOPE_DOMAIN,
     CTL_DRY_RUN},
    {"config account <account> set attribute <name> value <value>", do_config_set,
     ABQ_SCOPE_ACCOUNT, CTL_DRY_RUN},
    {"config global delete attribute <name>", do_config_delete, ABQ_SCOPE_GLOBAL, CTL_DRY_RUN},
    {"config domain <domain> delete attribute <name>", do_config_delete, ABQ_SCOPE_DOMAIN,
     CTL_DRY_RUN},
    {"config account <account> delete attribute <name>", do_config_delete, ABQ_SCOPE_ACCOUNT,
     CTL_DRY_RUN},

    {"mobile abq list [status <status>] [account <account>] [domain <domain>]", do_list, 0, 0},
    {"mobile abq allow <device-id> [account <account>]", do_entry, ABQ_STATE_ALLOWED, CTL_DRY_RUN},
    {"mobile abq block <device-id> [account <account>]", do_entry, ABQ_STATE_BLOCKED, CTL_DRY_RUN},
    {"mobile abq quarantine <device-id> [account <account>]", do_entry, ABQ_STATE_QUARANTINED,
     CTL_DRY_RUN},
    {"mobile abq delete <device-id> [account <account>]", do_delete, 0, CTL_DRY_RUN},
    {"mobile abq set <device-id> <state> [account <account>]", do_set, 0, CTL_DRY_RUN},
    {"mobile abq import <file> <state>", do_import, 0, CTL_DRY_RUN},
    {"mobile abq export [status <status>]", do_export, 0, 0},
    {"mobile abq setRule <pattern> <level> <order> [characteristic <characteristic>] "
     "[match <match>] [domain <domain>]",
     do_rule_set, 0, CTL_DRY_RUN},
    {"mobile abq deleteRule <id-or-pattern> [domain <domain>]", do_rule_delete, 0, CTL_DRY_RUN},
    {"mobile abq listRules [domain <domain>]", do_rule_list, 0, 0},
    {"mobile abq setNotificationInterval <interval>", do_notification_interval, 0, CTL_DRY_RUN},
    {"mobile abq adopt [seen-since <date>]", do_adopt, 0, CTL_DRY_RUN},
    {"mobile abq explain <device-id> account <account>", do_explain, 0, 0},
    {"mobile abq history [account <account>] [limit <n>]", do_history, 0, 0},
    {"mobile abq history <device-id> [account <account>] [limit <n>]", do_history, 0, 0},
    {"mobile abq purge not-seen <duration>", do_purge, 0, CTL_DRY_RUN},
    {"mobile abq outbox [status <status>]", do_outbox, 0, 0},
    {"mobile abq setABQMessage global <kind> <locale> [from <from>] [reply_to <reply_to>] "
     "[subject <subject>] [body_plain_file <body_plain_file>] [body_html_file <body_html_file>]",
     do_msg_set, ABQ_SCOPE_GLOBAL, 0},
    {"mobile abq setABQMessage domain <domain> <kind> <locale> [from <from>] "
     "[reply_to <reply_to>] [subject <subject>] [body_plain_file <body_plain_file>] "
     "[body_html_file <body_html_file>]",
     do_msg_set, ABQ_SCOPE_DOMAIN, 0},
    {"mobile abq getABQMessage global <kind> <locale>", do_msg_get, ABQ_SCOPE_GLOBAL, 0},
    {"mobile abq getABQMessage domain <domain> <kind> <locale>", do_msg_get, ABQ_SCOPE_DOMAIN, 0},
    {"mobile abq deleteABQMessage global <kind> <locale>", do_msg_delete, ABQ_SCOPE_GLOBAL, 0},
    {"mobile abq deleteABQMessage domain <domain> <kind> <locale>", do_msg_delete, ABQ_SCOPE_DOMAIN,
     0},
    {"mobile getDeviceList <account>", do_device_list, 0, 0},
    {"mobile getProvisioning global", do_prov_get, ABQ_SCOPE_GLOBAL, 0},
    {"mobile getProvisioning global <key>", do_prov_get, ABQ_SCOPE_GLOBAL, 0},
    {"mobile getProvisioning domain <domain>", do_prov_get, ABQ_SCOPE_DOMAIN, 0},
    {"mobile getProvisioning domain <domain> <key>", do_prov_get, ABQ_SCOPE_DOMAIN, 0},
    {"mobile getProvisioning account <account>", do_prov_get, ABQ_SCOPE_ACCOUNT, 0},
    {"mobile getProvisioning account <account> <key>", do_prov_get, ABQ_SCOPE_ACCOUNT, 0},
    {"mobile setProvisioning global <key> <value>", do_prov_set, ABQ_SCOPE_GLOBAL, CTL_DRY_RUN},
    {"mobile setProvisioning domain <domain> <key> <value>", do_prov_set, ABQ_SCOPE_DOMAIN,
     CTL_DRY_RUN},
    {"mobile setProvisioning account <account> <key> <value>", do_prov_set, ABQ_SCOPE_ACCOUNT,
     CTL_DRY_RUN},
    {"mobile unsetProvisioning global <key>", do_prov_unset, ABQ_SCOPE_GLOBAL, CTL_DRY_RUN},
    {"mobile unsetProvisioning domain <domain> <key>", do_prov_unset, ABQ_SCOPE_DOMAIN,
     CTL_DRY_RUN},
    {"mobile unsetProvisioning account <account> <key>", do_prov_unset, ABQ_SCOPE_ACCOUNT,
     CTL_DRY_RUN},
    {"mobile getDeviceInfo <account> <device-id>", do_device_info, 0, 0},
    {"mobile getAllDevices", do_all_devices, 0, 0},
    {"mobile doWipeDevice <account> <device-id>", do_wipe, 1, CTL_DRY_RUN},
    {"mobile doWipeDevice <account> <device-id> accountOnly", do_wipe, 2, CTL_DRY_RUN},
    {"mobile doAbortWipe <account> <device-id>", do_wipe, 0, CTL_DRY_RUN},
    {"mobile doResetDevice <account> <device-id>", do_reset_device, 0, CTL_DRY_RUN},
    /* Account loggers: the optional words come before the file, in either order. */
    {"mobile doAddAccountLogger <account> <file>", do_logger_add, 0, CTL_DRY_RUN},
    {"mobile doAddAccountLogger <account> device <device-id> <file>", do_logger_add, 0,
     CTL_DRY_RUN},
    {"mobile doAddAccountLogger <account> until <duration> <file>", do_logger_add, 0, CTL_DRY_RUN},
    {"mobile doAddAccountLogger <account> device <device-id> until <duration> <file>",
     do_logger_add, 0, CTL_DRY_RUN},
    {"mobile doAddAccountLogger <account> until <duration> device <device-id> <file>",
     do_logger_add, 0, CTL_DRY_RUN},
    {"mobile getAccountLoggers", do_logger_list, 0, 0},
    {"mobile doRemoveLogger <id>", do_logger_remove, 0, CTL_DRY_RUN},

    /* The administrators of the console and the JSON API (op 1: add, 0: passwd). */
    {"admin add <name>", do_admin_set, 1, 0},
    {"admin passwd <name>", do_admin_set, 0, 0},
    {"admin delete <name>", do_admin_delete, 0, 0},
    {"admin list", do_admin_list, 0, 0},
    {"admin token <name>", do_admin_token, 0, 0},
    {"admin token <name> <label>", do_admin_token, 0, 0},
    {"admin revoke <name>", do_admin_revoke, 0, 0},
    {"admin revoke <name> <label>", do_admin_revoke, 0, 0},
    {"mobile abq migrate-store <from-url> <to-url>", do_migrate_store, 0, CTL_NO_STORE},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

#define SYNOPSIS "abqctl [-c FILE] [--json] [--dry-run] COMMAND..."

/*
 * Print one "abqctl: ..." line per line of the formatted message, its control
 * characters escaped (it may quote a stored value or a file); returns CTL_REFUSED.
 */
int
ctl_fail(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	for (char *line = msg; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		char *text = text_shown(line, 0);
		fprintf(stderr, "abqctl: %s\n", text);
		free(text);
		line = nl != NULL ? nl + 1 : NULL;
	}
	free(msg);
	return CTL_REFUSED;
}

/* Turn a registry result into an exit status, printing its message when it failed. */
int
ctl_registry_status(int rc, char *errmsg)
{
	if (rc == 0) {
		free(errmsg);
		return CTL_OK;
	}
	ctl_fail("%s", errmsg != NULL ? errmsg : "the store failed");
	free(errmsg);
	return CTL_REFUSED;
}

/*
 * An account typed on the command line, in the one form abqd records:
 * "alice", "EXAMPLE\alice" and "Alice@Example.com" all name
 * "alice@example.com" when [eas] default_domain is example.com.
 */
int
ctl_account(const struct ctl_env *env, const char *word, char **account_r)
{
	*account_r =
	    account_canonical(word, env->config != NULL ? env->config->eas_default_domain : NULL);
	if (*account_r == NULL) {
		ctl_fail("'%s' is not a valid account", word);
		return -1;
	}
	return 0;
}

/*
 * A domain typed on the command line, lower-cased; one that could not be the
 * part after '@' of an account is refused.
 */
int
ctl_domain(const char *word, char **domain_r)
{
	*domain_r = NULL;
	if (!domain_valid(word)) {
		ctl_fail("'%s' is not a valid domain", word);
		return -1;
	}
	*domain_r = str_lower(xstrdup(word));
	return 0;
}

/* A DeviceId typed on the command line: 1-64 printable characters, no '/'. */
int
ctl_device_id(const char *word)
{
	if (!device_id_valid(word)) {
		ctl_fail("'%s' is not a valid DeviceId (1-64 printable characters, no '/' or "
		         "spaces)",
		         word);
		return -1;
	}
	return 0;
}

/* A state word; Discovery only where it is a filter (list), never as something to set. */
int
ctl_state(const char *word, bool allow_discovery, enum abq_state *state_r)
{
	if (abq_state_parse(word, allow_discovery, state_r) < 0) {
		ctl_fail("unknown state '%s' (use Allowed, Blocked%s)", word,
		         allow_discovery ? ", Quarantined or Discovery" : " or Quarantined");
		return -1;
	}
	return 0;
}

/*
 * The administrator's name for history: the sudo user when root runs abqctl
 * through sudo (so that history names a person, not "root"), else the login
 * name of the real uid, else "uid N".
 */
static char *
who_am_i(void)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getuid() == 0 && sudo != NULL && sudo[0] != '\0')
		return xstrdup(sudo);
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
	    pw.pw_name != NULL && pw.pw_name[0] != '\0')
		return xstrdup(pw.pw_name);
	return xasprintf("uid %lu", (unsigned long)getuid());
}

/*
 * Run as root, abqctl may have created the store's files (the database, its
 * journal); give them to the daemon's user ([eas] user) so that abqd can still
 * write them. A missing file is fine; other failures are warned about.
 */
static void
chown_store(struct ctl_env *env)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	const char *const *files;

	if (geteuid() != 0 || env->store == NULL || env->config->eas_user == NULL ||
	    env->config->eas_user[0] == '\0')
		return;
	if (getpwnam_r(env->config->eas_user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
		fprintf(stderr, "abqctl: warning: no user '%s'; store files keep their owner\n",
		        env->config->eas_user);
		return;
	}
	files = abq_store_files(env->store);
	for (size_t i = 0; files != NULL && files[i] != NULL; i++)
		if (chown(files[i], pw.pw_uid, pw.pw_gid) < 0 && errno != ENOENT)
			fprintf(stderr, "abqctl: warning: chown %s: %s\n", files[i],
			        strerror(errno));
}

/*
 * init: create the store. An existing store is opened without the create flag
 * first, so that "init" on a store that is there already says so and changes
 * nothing; a file that is not a store fails both opens with the store's reason.
 */
int
do_init(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *err = NULL;
	bool created = false;

	env->store = abq_store_open(env->config->store_url, env->config->base_dir, 0, &err);
	if (env->store == NULL) {
		env->store = abq_store_open(env->config->store_url, env->config->base_dir,
		                            ABQ_STORE_CREATE, &err);
		if (env->store == NULL)
			return ctl_fail("%s", err != NULL ? err : "cannot create the store");
		created = true;
	}
	env->ctx.store = env->store;
	if (env->json) {
		json_t *o = json_object();
		json_object_set_new(o, "ok", json_true());
		json_object_set_new(o, "created", json_boolean(created));
		json_object_set_new(o, "backend", jstr(abq_store_backend(env->store)));
		json_object_set_new(o, "store", jstr(abq_store_location(env->store)));
		json_print(env->out, o);
	} else if (created) {
		fprintf(env->out, "created store %s\n", abq_store_location(env->store));
	} else {
		fprintf(env->out, "store %s exists already\n", abq_store_location(env->store));
	}
	return CTL_OK;
}

/* -h: the synopsis, the options and every command's grammar. */
static void
print_help(FILE *out)
{
	fprintf(out,
	        "usage: %s\n"
	        "options (anywhere among the words):\n"
	        "    -c FILE     config file (default: $ABQD_CONFIG, then /etc/abqd/abqd.conf)\n"
	        "    --json      machine-readable output (docs/abqctl.md)\n"
	        "    --dry-run   show what a change would do and write nothing\n"
	        "    -h, --help  this text;  --version  the version\n"
	        "commands (literal words are case-insensitive):\n",
	        SYNOPSIS);
	grammar_print_all(commands, NCOMMANDS, out);
}

/*
 * Load the config: -c, else $ABQD_CONFIG, else /etc/abqd/abqd.conf. When
 * neither -c nor ABQD_CONFIG names a file and the default file does not exist,
 * the defaults apply with the current folder as base (the store of "make run").
 */
static struct abq_config *
load_config(const char *arg, const char **path_r)
{
	const char *path = abq_config_path(arg);
	const char *envpath = getenv("ABQD_CONFIG");
	struct abq_config *c;
	char *err = NULL;

	*path_r = path;
	if (arg == NULL && (envpath == NULL || envpath[0] == '\0') && access(path, F_OK) < 0 &&
	    errno == ENOENT) {
		char *cwd = getcwd(NULL, 0);
		if (cwd == NULL) {
			ctl_fail("cannot read the current folder: %s", strerror(errno));
			return NULL;
		}
		c = abq_config_defaults(cwd);
		free(cwd);
		return c;
	}
	c = abq_config_load(path, false, &err);
	if (c == NULL) {
		ctl_fail("%s", err != NULL ? err : path);
		free(err);
	}
	return c;
}

/* A word that is an option rather than a command word ("-" and "-5" are words). */
static bool
is_option(const char *w)
{
	return w[0] == '-' && w[1] != '\0' && !(w[1] >= '0' && w[1] <= '9');
}

/*
 * Read the options, match the command, load the config, open the store and run
 * the handler; the exit status is the handler's (or 2 for a usage error, 1 when
 * the config or the store cannot be opened).
 */
/* The whole of abqctl; main.c calls it (and fuzz/fuzz_abqctl.c, in-process). */
int
abqctl_main(int argc, char **argv)
{
	struct ctl_env env = {.out = stdout};
	const char *config_arg = NULL;
	char **words = xcalloc((size_t)argc + 1, sizeof(char *));
	size_t nwords = 0;
	bool end_of_options = false;
	struct ctl_args args;
	const struct ctl_command *cmd;
	char *errmsg = NULL, *who = NULL, *admins = NULL;
	int status = CTL_REFUSED;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (end_of_options || !is_option(a)) {
			words[nwords++] = argv[i];
		} else if (strcmp(a, "--") == 0) {
			end_of_options = true;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "abqctl: %s needs a FILE; usage: %s\n", a,
				        SYNOPSIS);
				status = CTL_USAGE;
				goto out;
			}
			config_arg = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			config_arg = a + 9;
		} else if (strncmp(a, "-c", 2) == 0 && a[2] != '-') {
			config_arg = a + 2;
		} else if (strcmp(a, "--json") == 0) {
			env.json = true;
		} else if (strcmp(a, "--dry-run") == 0) {
			env.dry_run = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_help(stdout);
			status = CTL_OK;
			goto out;
		} else if (strcmp(a, "--version") == 0) {
			printf("abqctl %s\n", ABQ_VERSION);
			status = CTL_OK;
			goto out;
		} else {
			fprintf(stderr, "abqctl: unknown option '%s'; usage: %s\n", a, SYNOPSIS);
			status = CTL_USAGE;
			goto out;
		}
	}
	if (nwords == 0) {
		fprintf(stderr, "abqctl: no command; usage: %s (abqctl --help lists them)\n",
		        SYNOPSIS);
		status = CTL_USAGE;
		goto out;
	}
	cmd = grammar_match(commands, NCOMMANDS, words, nwords, &args, &errmsg);
	if (cmd == NULL) {
		fprintf(stderr, "abqctl: %s\n", errmsg);
		free(errmsg);
		status = CTL_USAGE;
		goto out;
	}
	if (env.dry_run && (cmd->flags & CTL_DRY_RUN) == 0) {
		char *u = grammar_usage(cmd->grammar);
		fprintf(stderr, "abqctl: --dry-run does not apply here; usage: %s\n", u);
		free(u);
		status = CTL_USAGE;
		goto out;
	}

	env.config = load_config(config_arg, &env.config_path);
	if (env.config == NULL)
		goto out;
	who = who_am_i();
	env.ctx.default_domain = env.config->eas_default_domain;
	env.ctx.who = who;
	env.ctx.now = abq_now();
	env.ctx.dry_run = env.dry_run;
	/* With [smtp] from set, a state change queues the user's notice (abqd sends it). */
	struct abq_notice_conf notices;
	env.ctx.notices = abq_notice_conf_from(env.config, &notices, &admins);
	if ((cmd->flags & CTL_NO_STORE) == 0) {
		const char *err = NULL;
		env.store = abq_store_open(env.config->store_url, env.config->base_dir, 0, &err);
		if (env.store == NULL) {
			ctl_fail("%s", err != NULL ? err : "cannot open the store");
			goto out;
		}
		/* Accounts recorded bare before default_domain was set get it, once. */
		if (abq_store_accounts_canonicalize(env.store, env.config->eas_default_domain, NULL,
		                                    &err) < 0) {
			ctl_fail("store: giving accounts the default domain: %s", err);
			goto out;
		}
		env.ctx.store = env.store;
	}

	status = cmd->handler(&env, cmd, &args);
	if (fflush(env.out) != 0 || ferror(env.out)) {
		ctl_fail("writing the output: %s", strerror(errno));
		status = CTL_REFUSED;
	}
	chown_store(&env);
out:
	if (env.store != NULL)
		abq_store_close(&env.store);
	if (env.config != NULL)
		abq_config_free(&env.config);
	free(admins);
	free(who);
	free(words);
	return status;
}
