/*
 * grammar.h: abqctl's command grammars and the matcher that picks one.
 *
 * Like smtpctl, abqctl is a table of grammars, one row a command:
 *
 *     "mobile abq allow <device-id> [account <account>]"
 *
 * A plain word is a literal matched case-insensitively ("ABQ" and "abq",
 * "setRule" and "setrule" alike); "<name>" takes one word, stored under name;
 * "[kw <name>]" is an optional keyword-value pair. Optional pairs follow the
 * fixed part, in any order, each at most once. The first row that matches the
 * whole command line wins; when none does, the matcher builds the one-line
 * usage message of the rows that came closest.
 */
#ifndef ABQ_CTL_GRAMMAR_H
#define ABQ_CTL_GRAMMAR_H

#include <stddef.h>
#include <stdio.h>

#define CTL_MAX_ARGS 16

/* The values a matched command line gave to the grammar's placeholders. */
struct ctl_args {
	const char *names[CTL_MAX_ARGS];
	const char *values[CTL_MAX_ARGS];
	size_t count;
};

/* The value of placeholder name, or NULL when an optional pair was absent. */
const char *ctl_arg(const struct ctl_args *a, const char *name);

struct ctl_env;
struct ctl_command;

/* A command handler returns the exit status: 0, 1 (refused or failed), 2 (usage). */
typedef int ctl_handler(struct ctl_env *env, const struct ctl_command *cmd,
                        const struct ctl_args *args);

/* Row flags. */
#define CTL_DRY_RUN  0x1 /* the command accepts --dry-run */
#define CTL_NO_STORE 0x2 /* the handler opens the store itself (init) */

struct ctl_command {
	const char *grammar;
	ctl_handler *handler;
	int op; /* handler-specific: the state of allow/block/quarantine, the scope... */
	unsigned flags;
};

/*
 * Find the row of table (n rows) that matches words. Returns the row with
 * *args filled, or NULL with *errmsg_r (a new string, one line, "reason; usage:
 * ...") naming what was expected.
 */
const struct ctl_command *grammar_match(const struct ctl_command *table, size_t n,
                                        char *const *words, size_t nwords, struct ctl_args *args,
                                        char **errmsg_r);

/*
 * The grammar written for people: placeholders upper-cased ("<device-id>" ->
 * "DEVICE_ID"). A new string.
 */
char *grammar_usage(const char *grammar);

/* Print every row's usage, one a line, for --help. */
void grammar_print_all(const struct ctl_command *table, size_t n, FILE *out);

#endif
