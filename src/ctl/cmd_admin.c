/*
 * cmd_admin.c: the administrators of the console and the JSON API
 * (admin add, passwd, delete, list, token, revoke; src/core/admins.h).
 *
 * A password comes from the terminal, without echo and asked twice, or, when
 * standard input is not a terminal, as the first line of standard input, so
 * that scripts and tests can pipe it. It never appears on the command line
 * (where ps would show it), in a message or in history, and its buffers are
 * wiped once it has been hashed. A new token is printed once, alone on
 * stdout: abqd keeps only its SHA-256.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/admins.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/* Room for the longest password admins.c accepts (1024), its newline and one more byte. */
#define PASSWORD_BUF 1027

/* The terminal's settings while echo is off, restored by a signal too. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void
restore_tty_and_exit(int sig)
{
	ssize_t w;

	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	w = write(STDERR_FILENO, "\n", 1);
	(void)w;
	_exit(128 + sig);
}

/*
 * Read one line from stdin into buf (without its newline). Returns 0, or -1
 * with a message printed: end of input before anything, or a line too long.
 */
static int
read_line(char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 >= size) {
			/* Drain the rest, so that no part of it stays in stdio's buffer. */
			while ((c = getchar()) != EOF && c != '\n')
				;
			OPENSSL_cleanse(buf, size);
			ctl_fail("password too long: at most %d characters", PASSWORD_BUF - 3);
			return -1;
		}
		buf[n++] = (char)c;
	}
	if (c == EOF && n == 0) {
		ctl_fail("no password given (standard input is empty)");
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

/* Read a line from the terminal with echo off, after prompt. */
static int
read_hidden(const char *prompt, char *buf, size_t size)
{
	struct sigaction sa = {.sa_handler = restore_tty_and_exit}, old_int, old_term, old_hup;
	struct termios t;
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0) {
		ctl_fail("cannot read the terminal: %s", strerror(errno));
		return -1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ECHONL;
	tty_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0) {
		tty_changed = 0;
		ctl_fail("cannot turn off echo on the terminal: %s", strerror(errno));
		r = -1;
	} else {
		/* Only now: what is typed after the prompt must not be flushed away. */
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		r = read_line(buf, size);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_changed = 0;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	return r;
}

/*
 * The new password of name into buf: from the terminal twice (they must
 * match), or the first line of a piped stdin. 0, or -1 with a message.
 */
static int
read_password(const char *name, char *buf, size_t size)
{
	char again[PASSWORD_BUF];
	char *prompt;
	int r;

	/* Unbuffered, so that no copy of the password stays in stdio's buffer. */
	setvbuf(stdin, NULL, _IONBF, 0);
	if (!isatty(STDIN_FILENO))
		return read_line(buf, size);
	prompt = xasprintf("New password for %s: ", name);
	r = read_hidden(prompt, buf, size);
	free(prompt);
	if (r < 0)
		return -1;
	if (read_hidden("Again: ", again, sizeof(again)) < 0) {
		OPENSSL_cleanse(buf, size);
		return -1;
	}
	r = strcmp(buf, again) == 0 ? 0 : -1;
	OPENSSL_cleanse(again, sizeof(again));
	if (r < 0) {
		OPENSSL_cleanse(buf, size);
		ctl_fail("the passwords do not match; nothing changed");
	}
	return r;
}

/* A name typed on the command line, checked before anything is asked. */
static int
check_name(const char *name)
{
	char *msg = NULL;

	if (abq_admin_name_check(name, &msg) != 0) {
		ctl_fail("%s", msg);
		free(msg);
		return -1;
	}
	return 0;
}

/* 1 when the administrator exists, 0 when not (a message printed if that is wrong), -1. */
static int
exists(struct ctl_env *env, const char *name)
{
	struct abq_admin a = {0};
	const char *err = NULL;
	int r = abq_store_admin_get(env->store, name, &a, &err);

	abq_admin_clear(&a);
	if (r < 0)
		ctl_fail("store: %s", err ? err : "unknown error");
	return r;
}

/* Print {"ok": true, "name": NAME} or the sentence for people. */
static void
print_done(struct ctl_env *env, const char *name, const char *what)
{
	if (env->json) {
		json_t *o = json_object();

		json_object_set_new(o, "ok", json_true());
		json_object_set_new(o, "name", jstr(name));
		json_print(env->out, o);
	} else {
		fprintf(env->out, "administrator %s %s\n", shown(name), what);
	}
}

/* admin add NAME and admin passwd NAME (cmd->op 1 for add). */
int
do_admin_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *name = ctl_arg(args, "name");
	bool add = cmd->op == 1;
	char password[PASSWORD_BUF];
	char *msg = NULL;
	int r;

	if (check_name(name) < 0)
		return CTL_REFUSED;
	/* Refuse before asking for a password that could not be used. */
	if ((r = exists(env, name)) < 0)
		return CTL_REFUSED;
	if (add && r == 1)
		return ctl_fail("administrator '%s' exists (abqctl admin passwd %s sets a new "
		                "password)",
		                name, name);
	if (!add && r == 0)
		return ctl_fail("no administrator '%s'", name);
	if (read_password(name, password, sizeof(password)) < 0)
		return CTL_REFUSED;
	if (add)
		r = abq_admin_add(env->store, name, password, env->ctx.who, env->ctx.now, &msg);
	else
		r = abq_admin_passwd(env->store, name, password, env->ctx.who, env->ctx.now, &msg);
	OPENSSL_cleanse(password, sizeof(password));
	if (r != 0)
		return ctl_registry_status(r, msg);
	free(msg);
	print_done(env, name, add ? "added" : "has a new password");
	return CTL_OK;
}

/* admin delete NAME: the administrator and every token of theirs. */
int
do_admin_delete(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *name = ctl_arg(args, "name");
	char *msg = NULL;
	int r;

	if (check_name(name) < 0)
		return CTL_REFUSED;
	r = abq_admin_delete(env->store, name, env->ctx.who, env->ctx.now, &msg);
	if (r != 0)
		return ctl_registry_status(r, msg);
	free(msg);
	print_done(env, name, "deleted");
	return CTL_OK;
}

struct admin_lister {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
};

static int
admin_list_cb(void *arg, const struct abq_admin_info *a)
{
	struct admin_lister *l = arg;

	if (l->env->json) {
		json_t *o = json_object();

		json_object_set_new(o, "name", jstr(a->name));
		json_object_set_new(o, "createdBy", jstr(a->created_by));
		json_object_set_new(o, "createdAt", jtime(a->created_at));
		json_object_set_new(o, "passwordAt", jtime(a->password_at));
		json_object_set_new(o, "lastLogin", jtime(a->last_login));
		json_object_set_new(o, "tokens", json_integer((json_int_t)a->tokens));
		jstream_item(&l->js, o);
	} else {
		char created[32], pw[32], login[32], tokens[32];
		const char *cells[6];

		snprintf(tokens, sizeof(tokens), "%zu", a->tokens);
		cells[0] = a->name;
		cells[1] = a->created_by;
		cells[2] = format_time(a->created_at, created);
		cells[3] = format_time(a->password_at, pw);
		cells[4] = a->last_login ? format_time(a->last_login, login) : "never";
		cells[5] = tokens;
		table_row(l->table, cells);
	}
	return 0;
}

/* admin list: every administrator, by name. */
int
do_admin_list(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const char *const headers[] = {"NAME",         "CREATED BY", "CREATED",
	                                      "PASSWORD SET", "LAST LOGIN", "TOKENS"};
	struct admin_lister l = {.env = env};
	char *msg = NULL;
	int r;

	if (env->json)
		jstream_begin(&l.js, env->out, NULL, "admins");
	else
		l.table = table_new(env->out, 6, headers);
	r = abq_admin_list(env->store, admin_list_cb, &l, &msg);
	if (env->json)
		jstream_end(&l.js);
	else
		table_finish(&l.table);
	return ctl_registry_status(r, msg);
}

/* Print {"name": NAME, "label": LABEL, key: v} (v consumed): admin token and revoke. */
static void
print_token_json(struct ctl_env *env, const char *name, const char *label, const char *key,
                 json_t *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", jstr(name));
	json_object_set_new(o, "label", jstr(label));
	json_object_set_new(o, key, v);
	json_print(env->out, o);
}

/* admin token NAME [LABEL]: a new token, printed once. */
int
do_admin_token(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *name = ctl_arg(args, "name");
	const char *label = ctl_arg(args, "label");
	char *token = NULL, *msg = NULL;
	int r;

	if (check_name(name) < 0)
		return CTL_REFUSED;
	r = abq_admin_token_new(env->store, name, label, env->ctx.who, env->ctx.now, &token, &msg);
	if (r != 0)
		return ctl_registry_status(r, msg);
	free(msg);
	if (env->json)
		print_token_json(env, name, label, "token", jstr(token));
	else
		fprintf(env->out, "%s\n", token);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	return CTL_OK;
}

/* admin revoke NAME [LABEL]: remove the tokens with that label, or all of them. */
int
do_admin_revoke(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *name = ctl_arg(args, "name");
	const char *label = ctl_arg(args, "label");
	char *msg = NULL;
	size_t n = 0;
	int r;

	if (check_name(name) < 0)
		return CTL_REFUSED;
	r = abq_admin_token_revoke(env->store, name, label, env->ctx.who, env->ctx.now, &n, &msg);
	if (r != 0)
		return ctl_registry_status(r, msg);
	free(msg);
	if (env->json)
		print_token_json(env, name, label, "revoked", json_integer((json_int_t)n));
	else
		fprintf(env->out, "revoked %zu token%s of %s%s%s\n", n, n == 1 ? "" : "s",
		        shown(name), label ? " labelled " : "", label ? shown(label) : "");
	return CTL_OK;
}
