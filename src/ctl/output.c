/*
 * output.c: tables for people and streamed JSON for scripts (see output.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/log.h"
#include "lib/util.h"

/* Rows buffered to size the columns before the table starts streaming. */
#define TABLE_BUFFERED_ROWS 1000

struct table {
	FILE *out;
	size_t ncols;
	char **headers;
	size_t *widths;
	char **cells; /* buffered rows, ncols cells each */
	size_t buffered;
	size_t rows;
	bool streaming;
};

/*
 * A cell as it is printed: "-" for nothing, control characters and bytes that
 * are not UTF-8 escaped (a user agent is whatever the phone sent), so that a
 * row stays one line and the terminal sees no escape sequence.
 */
static char *
cell_text(const char *s)
{
	return text_shown(s == NULL || s[0] == '\0' ? "-" : s, 0);
}

/* The printed width of s: UTF-8 continuation bytes take no column. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p & 0xc0) != 0x80)
			w++;
	return w;
}

/* Start a table with its column headers. */
struct table *
table_new(FILE *out, size_t ncols, const char *const *headers)
{
	struct table *t = xcalloc(1, sizeof(*t));

	t->out = out;
	t->ncols = ncols;
	t->headers = xcalloc(ncols, sizeof(char *));
	t->widths = xcalloc(ncols, sizeof(size_t));
	t->cells = xcalloc(TABLE_BUFFERED_ROWS * ncols, sizeof(char *));
	for (size_t i = 0; i < ncols; i++) {
		t->headers[i] = xstrdup(headers[i]);
		t->widths[i] = text_width(headers[i]);
	}
	return t;
}

/* Print one row padded to the column widths (the last column is not padded). */
static void
print_row(struct table *t, char *const *cells)
{
	for (size_t i = 0; i < t->ncols; i++) {
		fputs(cells[i], t->out);
		if (i + 1 == t->ncols)
			break;
		size_t w = text_width(cells[i]);
		do
			fputc(' ', t->out);
		while (++w < t->widths[i] + 2);
	}
	fputc('\n', t->out);
}

/* Print the header and the buffered rows; later rows are printed as they come. */
static void
table_flush(struct table *t)
{
	print_row(t, t->headers);
	for (size_t r = 0; r < t->buffered; r++) {
		print_row(t, &t->cells[r * t->ncols]);
		for (size_t i = 0; i < t->ncols; i++)
			free(t->cells[r * t->ncols + i]);
	}
	t->buffered = 0;
	t->streaming = true;
}

/* Add a row: buffered while the columns are being sized, then printed at once. */
void
table_row(struct table *t, const char *const *cells)
{
	char **row;
	char *tmp[32];

	if (t->streaming) {
		row = t->ncols <= 32 ? tmp : xcalloc(t->ncols, sizeof(char *));
		for (size_t i = 0; i < t->ncols; i++)
			row[i] = cell_text(cells[i]);
		print_row(t, row);
		for (size_t i = 0; i < t->ncols; i++)
			free(row[i]);
		if (row != tmp)
			free(row);
		t->rows++;
		return;
	}
	row = &t->cells[t->buffered * t->ncols];
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = cell_text(cells[i]);
		size_t w = text_width(row[i]);
		if (w > t->widths[i])
			t->widths[i] = w;
	}
	t->buffered++;
	t->rows++;
	if (t->buffered == TABLE_BUFFERED_ROWS)
		table_flush(t);
}

/* Print what is left and free the table. An empty table prints nothing. */
size_t
table_finish(struct table **tp)
{
	struct table *t = *tp;
	size_t rows;

	if (t == NULL)
		return 0;
	if (!t->streaming && t->buffered > 0)
		table_flush(t);
	rows = t->rows;
	for (size_t i = 0; i < t->ncols; i++)
		free(t->headers[i]);
	free(t->headers);
	free(t->widths);
	free(t->cells);
	free(t);
	*tp = NULL;
	return rows;
}

/*
 * A json_dump_callback sink: the bytes go to the FILE with DEL written as
 * "\u007f". jansson escapes the other controls but passes DEL; a DEL byte can
 * only be inside a string, where the escape means the same.
 */
static int
json_sink(const char *buf, size_t size, void *data)
{
	FILE *out = data;
	const char *end = buf + size, *del;

	while ((del = memchr(buf, 0x7f, (size_t)(end - buf))) != NULL) {
		fwrite(buf, 1, (size_t)(del - buf), out);
		fputs("\\u007f", out);
		buf = del + 1;
	}
	fwrite(buf, 1, (size_t)(end - buf), out);
	return 0;
}

/*
 * Print j compactly. Like all of abqctl's JSON, ASCII only and with no control
 * byte: a C1 control a phone sent (U+009B, CSI) is "\u009B", never the bytes a
 * terminal would act on when the JSON is read there.
 */
static void
json_out(FILE *out, const json_t *j)
{
	json_dump_callback(j, json_sink, out, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
}

/* Print the opening of a streamed object: "{", head's members, then "name":[. */
void
jstream_begin(struct jstream *js, FILE *out, json_t *head, const char *name)
{
	const char *key;
	json_t *value;

	js->out = out;
	js->count = 0;
	fputc('{', out);
	if (head != NULL) {
		json_object_foreach(head, key, value)
		{
			json_t *k = json_string(key);
			json_out(out, k);
			fputc(':', out);
			json_decref(k);
			json_out(out, value);
			fputc(',', out);
		}
		json_decref(head);
	}
	value = json_string(name);
	json_out(out, value);
	fputs(":[", out);
	json_decref(value);
}

/* Print one element of the streamed array and release it. */
void
jstream_item(struct jstream *js, json_t *item)
{
	if (js->count++ > 0)
		fputc(',', js->out);
	json_out(js->out, item);
	json_decref(item);
}

/* Close the streamed array and its object. */
void
jstream_end(struct jstream *js)
{
	fputs("]}\n", js->out);
}

/* Print a whole (small) JSON object and release it. */
void
json_print(FILE *out, json_t *obj)
{
	json_out(out, obj);
	fputc('\n', out);
	json_decref(obj);
}

/* A state with its reason for people: "Blocked (Rule 3)", "-" for no state. */
const char *
fmt_state(enum abq_state s, enum abq_reason r, int64_t rule_id, char buf[64])
{
	if (s == ABQ_STATE_NONE)
		snprintf(buf, 64, "-");
	else if (r == ABQ_REASON_NONE)
		snprintf(buf, 64, "%s", abq_state_name(s));
	else if (r == ABQ_REASON_DISCOVERY)
		snprintf(buf, 64, "%s (waiting for rule %" PRId64 ")", abq_state_name(s), rule_id);
	else if (rule_id != 0)
		snprintf(buf, 64, "%s (%s %" PRId64 ")", abq_state_name(s), abq_reason_name(r),
		         rule_id);
	else
		snprintf(buf, 64, "%s (%s)", abq_state_name(s), abq_reason_name(r));
	return buf;
}

/* s for a table cell or a line of text, "-" when there is nothing. */
const char *
dash(const char *s)
{
	return s == NULL || s[0] == '\0' ? "-" : s;
}

/* The strings shown_text handed out, freed when their slot comes round again. */
#define SHOWN_SLOTS 8
static char *shown_slot[SHOWN_SLOTS];
static unsigned shown_next;

/* s escaped for people, "-" for nothing (output.h). */
const char *
shown_text(const char *s, unsigned flags)
{
	char **slot = &shown_slot[shown_next++ % SHOWN_SLOTS];

	free(*slot);
	*slot = text_shown(s == NULL || s[0] == '\0' ? "-" : s, flags);
	return *slot;
}

/* One line of text as people are shown it (output.h). */
const char *
shown(const char *s)
{
	return shown_text(s, 0);
}

/* Print what an operation changed, or would change in a dry run. */
void
print_outcome(struct ctl_env *env, const struct abq_outcome *o)
{
	if (env->json) {
		json_print(env->out, outcome_json(o, env->dry_run));
		return;
	}
	for (size_t i = 0; i < o->changed_count; i++) {
		const struct abq_transition *t = &o->changed[i];
		char a[64], b[64];
		fprintf(env->out, "%s %s / %s: %s -> %s\n",
		        env->dry_run ? "would change:" : "changed:", shown(t->account),
		        shown(t->device_id), fmt_state(t->old_state, t->old_reason, t->old_rule, a),
		        t->new_state == ABQ_STATE_NONE
		            ? "forgotten"
		            : fmt_state(t->new_state, t->new_reason, t->new_rule, b));
	}
	if (o->changed_count == 0)
		fprintf(env->out, "%s\n",
		        env->dry_run ? "no device would change state" : "no device changed state");
	else
		fprintf(env->out, "%zu device%s %s\n", o->changed_count,
		        o->changed_count == 1 ? "" : "s",
		        env->dry_run ? "would change state" : "changed state");
}

/* Start listing devices: a table for people or {"devices":[ for scripts. */
void
device_lister_begin(struct device_lister *l, struct ctl_env *env)
{
	static const char *const headers[] = {"ACCOUNT", "DEVICE_ID", "TYPE",     "MODEL",
	                                      "STATE",   "REASON",    "LAST_SEEN"};

	memset(l, 0, sizeof(*l));
	l->env = env;
	if (env->json)
		jstream_begin(&l->js, env->out, NULL, "devices");
	else
		l->table = table_new(env->out, 7, headers);
}

/* Print one device (a store iteration callback). */
int
device_lister_cb(void *arg, const struct abq_device *d)
{
	struct device_lister *l = arg;
	char seen[32], reason[64];

	l->count++;
	if (l->env->json) {
		jstream_item(&l->js, device_json(d));
		return 0;
	}
	if (d->rule_id != 0)
		snprintf(reason, sizeof(reason), "%s %" PRId64, abq_reason_name(d->reason),
		         d->rule_id);
	else
		snprintf(reason, sizeof(reason), "%s",
		         d->reason == ABQ_REASON_NONE ? "-" : abq_reason_name(d->reason));
	const char *cells[] = {d->account,
	                       d->device_id,
	                       d->device_type,
	                       d->model,
	                       d->state == ABQ_STATE_NONE ? "-" : abq_state_name(d->state),
	                       reason,
	                       format_time(d->last_seen, seen)};
	table_row(l->table, cells);
	return 0;
}

int
device_lister_entry_cb(void *arg, const struct abq_entry *e)
{
	struct device_lister *l = arg;

	l->count++;
	if (l->env->json) {
		jstream_item(&l->js, unseen_entry_json(e));
		return 0;
	}
	const char *cells[] = {e->account != NULL ? e->account : "(any account)",
	                       e->device_id,
	                       "-",
	                       "-",
	                       abq_state_name(e->state),
	                       abq_reason_name(ABQ_REASON_INDIVIDUAL),
	                       "not seen yet"};
	table_row(l->table, cells);
	return 0;
}

/* Finish the listing; people are told when nothing matched. */
size_t
device_lister_end(struct device_lister *l)
{
	if (l->env->json) {
		jstream_end(&l->js);
	} else {
		table_finish(&l->table);
		if (l->count == 0)
			fprintf(l->env->out, "no devices\n");
	}
	return l->count;
}
