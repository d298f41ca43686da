/*
 * output.h: how abqctl prints: aligned tables for people, streamed JSON for
 * scripts (docs/abqctl.md documents the shapes).
 *
 * Both stream. A table buffers its first rows only to size the columns, then
 * prints each row as it comes; a JSON array is written element by element, so
 * that listing 100,000 devices never builds one tree of them in memory.
 */
#ifndef ABQ_CTL_OUTPUT_H
#define ABQ_CTL_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/json.h"
#include "core/registry.h"
#include "lib/log.h"

struct ctl_env;

/* A table for people. */
struct table;
struct table *table_new(FILE *out, size_t ncols, const char *const *headers);
/* Add a row of ncols cells (NULL or "" prints as "-"). */
void table_row(struct table *t, const char *const *cells);
/* Print what is buffered, free the table and return how many rows it had. */
size_t table_finish(struct table **t);

/* A JSON object whose last member is a streamed array: {"head":..., "name":[...]}. */
struct jstream {
	FILE *out;
	size_t count;
};
/* Print "{", head's members (head is consumed; may be NULL), then "name":[. */
void jstream_begin(struct jstream *js, FILE *out, json_t *head, const char *name);
/* Print one element (consumed). */
void jstream_item(struct jstream *js, json_t *item);
/* Print "]}" and a newline. */
void jstream_end(struct jstream *js);
/* Print one whole object (consumed) and a newline. */
void json_print(FILE *out, json_t *obj);

/* "Blocked (Rule 3)", "Quarantined (Mode)", "-" for no state. */
const char *fmt_state(enum abq_state s, enum abq_reason r, int64_t rule_id, char buf[64]);
/* s, or "-" when NULL or empty. */
const char *dash(const char *s);
/*
 * s as people are shown it: "-" when NULL or empty, control characters and
 * bytes that are not UTF-8 escaped ("\x1b", see text_piece in lib/log.h), so
 * that what a phone reported cannot move the cursor, clear the screen or start
 * a line. flags: TEXT_KEEP_LINES for multi-line text. The string lives until
 * the eighth call after this one: enough for the arguments of one printf.
 */
const char *shown_text(const char *s, unsigned flags);
/* shown_text(s, 0): one line of text. */
const char *shown(const char *s);

/*
 * Print what a registry operation did (or would do): for people, a line per
 * device whose state changed ("would change: alice / APPL123: Quarantined
 * (Mode) -> Allowed (Individual)"); with --json, the changes object.
 */
void print_outcome(struct ctl_env *env, const struct abq_outcome *o);

/* The device table for people, and the streaming callback shared by list commands. */
struct device_lister {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
	size_t count;
};
void device_lister_begin(struct device_lister *l, struct ctl_env *env);
int device_lister_cb(void *arg, const struct abq_device *d);
/*
 * A list entry no device has used yet, as a row after the devices (the store
 * callback of abq_registry_unseen_entries): "(any account)" for an entry of
 * every account, LAST_SEEN "not seen yet"; in JSON unseen_entry_json.
 */
int device_lister_entry_cb(void *arg, const struct abq_entry *e);
/* Close the table or the JSON array; returns how many devices were listed. */
size_t device_lister_end(struct device_lister *l);

#endif
