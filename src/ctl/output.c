/*
 * output.c: tables for people and streamed JSON for scripts (see output.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
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
 * A cell as it is printed: "-" for nothing, control characters (a user agent
 * is whatever the phone sent) replaced by '?' so that a row stays one line.
 */
static char *
cell_text(const char *s)
{
	char *c = xstrdup(s == NULL || s[0] == '\0' ? "-" : s);

	for (char *p = c; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
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

/* Print the opening of a streamed object: "{", head's members, then "name":[. */
void
jstream_begin(struct jstream *js, FILE *out, json_t *head, const char *name)
{
	const char *key;
	json_t *value;
	char *s;

	js->out = out;
	js->count = 0;
	fputc('{', out);
	if (head != NULL) {
		json_object_foreach(head, key, value)
		{
			json_t *k = json_string(key);
			s = json_dumps(k, JSON_ENCODE_ANY);
			fprintf(out, "%s:", s);
			free(s);
			json_decref(k);
			s = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
			fprintf(out, "%s,", s);
			free(s);
		}
		json_decref(head);
	}
	value = json_string(name);
	s = json_dumps(value, JSON_ENCODE_ANY);
	fprintf(out, "%s:[", s);
	free(s);
	json_decref(value);
}

/* Print one element of the streamed array and release it. */
void
jstream_item(struct jstream *js, json_t *item)
{
	if (js->count++ > 0)
		fputc(',', js->out);
	json_dumpf(item, js->out, JSON_COMPACT);
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
	json_dumpf(obj, out, JSON_COMPACT);
	fputc('\n', out);
	json_decref(obj);
}

/*
 * A JSON string, or null for NULL. Device facts are whatever the phone sent and
 * may not be UTF-8, which jansson refuses; such bytes become '?' rather than
 * losing the whole value.
 */
json_t *
jstr(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	if (j == NULL) {
		char *c = xstrdup(s);
		for (unsigned char *p = (unsigned char *)c; *p != '\0'; p++)
			if (*p >= 0x80)
				*p = '?';
		j = json_string(c);
		free(c);
	}
	return j != NULL ? j : json_null();
}

/* A timestamp as ISO 8601, or null for "never" (0). */
json_t *
jtime(int64_t t)
{
	char buf[32];

	return t == 0 ? json_null() : json_string(format_time(t, buf));
}

/* A state's canonical name, or null for no state. */
json_t *
jstate(enum abq_state s)
{
	return s == ABQ_STATE_NONE ? json_null() : json_string(abq_state_name(s));
}

/* A reason's canonical name, or null for none. */
json_t *
jreason(enum abq_reason r)
{
	return r == ABQ_REASON_NONE ? json_null() : json_string(abq_reason_name(r));
}

/* A rule id, or null for none (ids start at 1). */
json_t *
jid(int64_t id)
{
	return id == 0 ? json_null() : json_integer(id);
}

/* The device object of docs/abqctl.md. */
json_t *
device_json(const struct abq_device *d)
{
	json_t *o = json_object();

	json_object_set_new(o, "account", jstr(d->account));
	json_object_set_new(o, "deviceId", jstr(d->device_id));
	json_object_set_new(o, "deviceType", jstr(d->device_type));
	json_object_set_new(o, "model", jstr(d->model));
	json_object_set_new(o, "imei", jstr(d->imei));
	json_object_set_new(o, "friendlyName", jstr(d->friendly_name));
	json_object_set_new(o, "os", jstr(d->os));
	json_object_set_new(o, "osLanguage", jstr(d->os_language));
	json_object_set_new(o, "phoneNumber", jstr(d->phone_number));
	json_object_set_new(o, "mobileOperator", jstr(d->mobile_operator));
	json_object_set_new(o, "userAgent", jstr(d->user_agent));
	json_object_set_new(o, "easVersion", jstr(d->eas_version));
	json_object_set_new(o, "lastAddress", jstr(d->last_address));
	json_object_set_new(o, "lastCommand", jstr(d->last_command));
	json_object_set_new(o, "firstSeen", jtime(d->first_seen));
	json_object_set_new(o, "lastSeen", jtime(d->last_seen));
	json_object_set_new(o, "state", jstate(d->state));
	json_object_set_new(o, "reason", jreason(d->reason));
	json_object_set_new(o, "ruleId", jid(d->rule_id));
	json_object_set_new(o, "stateBy", jstr(d->state_by));
	json_object_set_new(o, "stateAt", jtime(d->state_at));
	return o;
}

/* The entry object of export and getDeviceInfo. */
json_t *
entry_json(const struct abq_entry *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "deviceId", jstr(e->device_id));
	json_object_set_new(o, "account", jstr(e->account));
	json_object_set_new(o, "state", jstate(e->state));
	json_object_set_new(o, "createdBy", jstr(e->created_by));
	json_object_set_new(o, "createdAt", jtime(e->created_at));
	return o;
}

/* The rule object of listRules. */
json_t *
rule_json(const struct abq_rule *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "characteristic", json_string(abq_charac_name(r->charac)));
	json_object_set_new(o, "match", json_string(abq_match_name(r->match)));
	json_object_set_new(o, "pattern", jstr(r->pattern));
	json_object_set_new(o, "level", jstate(r->level));
	json_object_set_new(o, "order", json_integer(r->order));
	json_object_set_new(o, "domain", jstr(r->domain));
	json_object_set_new(o, "createdBy", jstr(r->created_by));
	json_object_set_new(o, "createdAt", jtime(r->created_at));
	return o;
}

/* The history object. */
json_t *
history_json(const struct abq_history *h)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(h->id));
	json_object_set_new(o, "at", jtime(h->at));
	json_object_set_new(o, "who", jstr(h->who));
	json_object_set_new(o, "what", jstr(h->what));
	json_object_set_new(o, "subject", jstr(h->subject));
	json_object_set_new(o, "old", jstr(h->old_value));
	json_object_set_new(o, "new", jstr(h->new_value));
	json_object_set_new(o, "reason", jstr(h->reason));
	json_object_set_new(o, "deviceId", jstr(h->device_id));
	json_object_set_new(o, "account", jstr(h->account));
	return o;
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

/* A rule for people: "DeviceModel glob 'SM-*' -> Blocked". A new string. */
char *
fmt_rule(const struct abq_rule *r)
{
	return xasprintf("%s %s '%s' -> %s", abq_charac_name(r->charac), abq_match_name(r->match),
	                 r->pattern != NULL ? r->pattern : "", abq_state_name(r->level));
}

/* s for a table cell or a line of text, "-" when there is nothing. */
const char *
dash(const char *s)
{
	return s == NULL || s[0] == '\0' ? "-" : s;
}

/* The "from"/"to" object of a change. */
static json_t *
state_json(enum abq_state s, enum abq_reason r, int64_t rule)
{
	json_t *o = json_object();

	json_object_set_new(o, "state", jstate(s));
	json_object_set_new(o, "reason", jreason(r));
	json_object_set_new(o, "ruleId", jid(rule));
	return o;
}

/* Print what an operation changed, or would change in a dry run. */
void
print_outcome(struct ctl_env *env, const struct abq_outcome *o)
{
	if (env->json) {
		struct jstream js;
		json_t *head = json_object();
		json_object_set_new(head, "ok", json_true());
		json_object_set_new(head, "dryRun", json_boolean(o->dry_run || env->dry_run));
		json_object_set_new(head, "affected", json_integer((json_int_t)o->affected));
		json_object_set_new(head, "id", jid(o->id));
		jstream_begin(&js, env->out, head, "changed");
		for (size_t i = 0; i < o->changed_count; i++) {
			const struct abq_transition *t = &o->changed[i];
			json_t *c = json_object();
			json_object_set_new(c, "account", jstr(t->account));
			json_object_set_new(c, "deviceId", jstr(t->device_id));
			json_object_set_new(c, "from",
			                    state_json(t->old_state, t->old_reason, t->old_rule));
			json_object_set_new(c, "to",
			                    state_json(t->new_state, t->new_reason, t->new_rule));
			jstream_item(&js, c);
		}
		jstream_end(&js);
		return;
	}
	for (size_t i = 0; i < o->changed_count; i++) {
		const struct abq_transition *t = &o->changed[i];
		char a[64], b[64];
		fprintf(env->out, "%s %s / %s: %s -> %s\n",
		        env->dry_run ? "would change:" : "changed:", dash(t->account),
		        dash(t->device_id), fmt_state(t->old_state, t->old_reason, t->old_rule, a),
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
