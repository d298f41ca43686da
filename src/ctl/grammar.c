/*
 * grammar.c: matching a command line against abqctl's table of grammars.
 *
 * A grammar is split into tokens on spaces each time it is matched: the table
 * is small and the command line short, so there is nothing to precompute.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/grammar.h"
#include "lib/util.h"

#define MAX_TOKENS 32
#define TOKEN_MAX  64

/* One token of a grammar: a literal, a placeholder, or an optional pair. */
struct token {
	enum { TOK_LITERAL, TOK_PLACEHOLDER, TOK_OPTION } kind;
	char word[TOKEN_MAX]; /* the literal, or the option's keyword */
	char name[TOKEN_MAX]; /* the placeholder's name */
};

/*
 * Split grammar into tokens. "[kw <name>]" becomes one TOK_OPTION token. The
 * table is ours, so a malformed grammar is a programming error.
 */
static size_t
tokenize(const char *grammar, struct token *t)
{
	size_t n = 0;
	const char *p = grammar;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (n == MAX_TOKENS)
			fatalx("grammar too long: %s", grammar);
		const char *end = strchr(p, ' ');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		struct token *tk = &t[n++];
		memset(tk, 0, sizeof(*tk));
		if (len >= TOKEN_MAX)
			fatalx("grammar word too long: %s", grammar);
		if (p[0] == '[') {
			/* "[kw" then "<name>]" */
			tk->kind = TOK_OPTION;
			memcpy(tk->word, p + 1, len - 1);
			p += len;
			while (*p == ' ')
				p++;
			end = strchr(p, ']');
			if (p[0] != '<' || end == NULL || end[-1] != '>' ||
			    (size_t)(end - p - 2) >= TOKEN_MAX)
				fatalx("bad optional pair in grammar: %s", grammar);
			memcpy(tk->name, p + 1, (size_t)(end - p - 2));
			p = end + 1;
			continue;
		}
		if (p[0] == '<') {
			if (len < 3 || p[len - 1] != '>')
				fatalx("bad placeholder in grammar: %s", grammar);
			tk->kind = TOK_PLACEHOLDER;
			memcpy(tk->name, p + 1, len - 2);
		} else {
			tk->kind = TOK_LITERAL;
			memcpy(tk->word, p, len);
		}
		p += len;
	}
	return n;
}

/* Write a placeholder's name as people read it: "device-id" -> "DEVICE_ID". */
static void
print_placeholder(FILE *f, const char *name)
{
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (c == '-')
			c = '_';
		else if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		fputc(c, f);
	}
}

/* Print one token as it appears in a usage line. */
static void
print_token(FILE *f, const struct token *t)
{
	switch (t->kind) {
	case TOK_LITERAL:
		fputs(t->word, f);
		break;
	case TOK_PLACEHOLDER:
		print_placeholder(f, t->name);
		break;
	case TOK_OPTION:
		fprintf(f, "[%s ", t->word);
		print_placeholder(f, t->name);
		fputc(']', f);
		break;
	}
}

/* The grammar written for people, as a new string. */
char *
grammar_usage(const char *grammar)
{
	struct token t[MAX_TOKENS];
	size_t n = tokenize(grammar, t);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(' ', f);
		print_token(f, &t[i]);
	}
	fclose(f);
	return buf;
}

/* The value of placeholder name in a matched command line, or NULL. */
const char *
ctl_arg(const struct ctl_args *a, const char *name)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->names[i], name) == 0)
			return a->values[i];
	return NULL;
}

/*
 * A placeholder's name, kept for the life of the process: tokens live on the
 * stack, and args must name its values after the match returns, so the few
 * distinct names of the table are interned in a small static pool.
 */
static const char *
intern(const char *name)
{
	static char pool[64][TOKEN_MAX];
	static size_t used;

	for (size_t i = 0; i < used; i++)
		if (strcmp(pool[i], name) == 0)
			return pool[i];
	if (used == 64)
		fatalx("too many placeholder names");
	memcpy(pool[used], name, strlen(name) + 1);
	return pool[used++];
}

/* Add one placeholder value to args. */
static void
args_add(struct ctl_args *a, const char *name, const char *value)
{
	if (a->count == CTL_MAX_ARGS)
		fatalx("too many arguments in a grammar");
	a->names[a->count] = intern(name);
	a->values[a->count] = value;
	a->count++;
}

/* How far a row got, to pick the rows to show in a usage message. */
struct attempt {
	size_t score;    /* fixed tokens matched; +1000 when the fixed part matched */
	char *why;       /* what went wrong, a new string */
	size_t next_tok; /* the fixed token that failed (or n when all matched) */
	bool missing;    /* the command line ended too early */
};

/*
 * Match one row. Returns true when the whole command line matches; else
 * fills *at with how far it got and why it stopped.
 */
static bool
match_row(const char *grammar, char *const *w, size_t nw, struct ctl_args *a, struct attempt *at)
{
	struct token t[MAX_TOKENS];
	size_t n = tokenize(grammar, t);
	size_t i = 0, k = 0;

	memset(a, 0, sizeof(*a));
	at->why = NULL;
	at->missing = false;
	for (; k < n && t[k].kind != TOK_OPTION; k++) {
		at->score = k;
		at->next_tok = k;
		if (i >= nw) {
			char *name = NULL;
			size_t len;
			FILE *f = open_memstream(&name, &len);
			if (f == NULL)
				fatalx("out of memory");
			print_token(f, &t[k]);
			fclose(f);
			at->why = xasprintf("missing %s", name);
			at->missing = true;
			free(name);
			return false;
		}
		if (t[k].kind == TOK_LITERAL) {
			if (strcasecmp(t[k].word, w[i]) != 0) {
				at->why = xasprintf("unexpected word '%s'", w[i]);
				return false;
			}
		} else {
			/*
			 * A keyword of this row's optional pairs is not taken as a
			 * value: "history account" is a missing ACCOUNT, not the
			 * history of a device called "account".
			 */
			for (size_t j = k + 1; j < n; j++)
				if (t[j].kind == TOK_OPTION && strcasecmp(t[j].word, w[i]) == 0) {
					at->why = xasprintf("unexpected word '%s'", w[i]);
					return false;
				}
			args_add(a, t[k].name, w[i]);
		}
		i++;
	}
	at->score = 1000 + k;
	at->next_tok = k;
	while (i < nw) {
		size_t j;
		for (j = k; j < n; j++)
			if (strcasecmp(t[j].word, w[i]) == 0)
				break;
		if (j == n) {
			at->why = xasprintf("unexpected word '%s'", w[i]);
			return false;
		}
		if (ctl_arg(a, t[j].name) != NULL) {
			at->why = xasprintf("'%s' given twice", t[j].word);
			return false;
		}
		if (i + 1 >= nw) {
			char *name = NULL;
			size_t len;
			FILE *f = open_memstream(&name, &len);
			if (f == NULL)
				fatalx("out of memory");
			print_placeholder(f, t[j].name);
			fclose(f);
			at->why = xasprintf("missing %s after '%s'", name, t[j].word);
			free(name);
			return false;
		}
		args_add(a, t[j].name, w[i + 1]);
		i += 2;
	}
	return true;
}

/*
 * Build the usage message from the rows that got furthest: one row's full
 * usage when a single row is closest, else the words shared by the closest
 * rows followed by the alternatives they expect next ("mobile abq
 * allow|block|... ...").
 */
static char *
usage_message(const struct ctl_command *table, size_t n, const struct attempt *at, size_t best,
              const char *why, bool missing)
{
	size_t ties = 0, first = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		fatalx("out of memory");
	for (size_t r = 0; r < n; r++)
		if (at[r].score == best) {
			if (ties++ == 0)
				first = r;
		}
	fprintf(f, "%s; usage: ", ties > 1 && missing ? "incomplete command" : why);
	if (ties == 1) {
		char *u = grammar_usage(table[first].grammar);
		fputs(u, f);
		free(u);
	} else {
		struct token t[MAX_TOKENS];
		size_t nt = tokenize(table[first].grammar, t);
		size_t shared = at[first].next_tok;
		for (size_t k = 0; k < shared && k < nt; k++) {
			print_token(f, &t[k]);
			fputc(' ', f);
		}
		/* The distinct next tokens of the tied rows, in table order. */
		char seen[64][TOKEN_MAX + 16];
		size_t nseen = 0;
		for (size_t r = 0; r < n; r++) {
			if (at[r].score != best)
				continue;
			struct token rt[MAX_TOKENS];
			size_t rn = tokenize(table[r].grammar, rt);
			if (at[r].next_tok >= rn)
				continue;
			char word[TOKEN_MAX + 16];
			char *wb = NULL;
			size_t wl = 0;
			FILE *wf = open_memstream(&wb, &wl);
			if (wf == NULL)
				fatalx("out of memory");
			print_token(wf, &rt[at[r].next_tok]);
			fclose(wf);
			snprintf(word, sizeof(word), "%s", wb);
			free(wb);
			bool dup = false;
			for (size_t s = 0; s < nseen; s++)
				if (strcasecmp(seen[s], word) == 0)
					dup = true;
			if (dup || nseen == 64)
				continue;
			snprintf(seen[nseen], sizeof(seen[nseen]), "%s", word);
			if (nseen > 0)
				fputc('|', f);
			fputs(seen[nseen], f);
			nseen++;
		}
		fputs(" ...", f);
	}
	fclose(f);
	return buf;
}

/* Find the row that matches words, or build the usage message. */
const struct ctl_command *
grammar_match(const struct ctl_command *table, size_t n, char *const *words, size_t nwords,
              struct ctl_args *args, char **errmsg_r)
{
	struct attempt *at = xcalloc(n, sizeof(*at));
	size_t best = 0, best_row = 0;
	const struct ctl_command *found = NULL;

	for (size_t r = 0; r < n; r++) {
		if (match_row(table[r].grammar, words, nwords, args, &at[r])) {
			found = &table[r];
			break;
		}
		if (at[r].score > best || r == 0) {
			best = at[r].score;
			best_row = r;
		}
	}
	if (found == NULL) {
		*errmsg_r =
		    usage_message(table, n, at, best, at[best_row].why, at[best_row].missing);
		memset(args, 0, sizeof(*args));
	}
	for (size_t r = 0; r < n; r++)
		free(at[r].why);
	free(at);
	return found;
}

/* Print every row's usage, one a line. */
void
grammar_print_all(const struct ctl_command *table, size_t n, FILE *out)
{
	for (size_t r = 0; r < n; r++) {
		char *u = grammar_usage(table[r].grammar);
		fprintf(out, "    abqctl %s%s\n", u,
		        (table[r].flags & CTL_DRY_RUN) != 0 ? " [--dry-run]" : "");
		free(u);
	}
}
