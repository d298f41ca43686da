/*
 * cmd_notice.c: the outbox and the notice templates.
 *
 *     mobile abq outbox [status queued|sent|failed]
 *     mobile abq setABQMessage global|domain D quarantined|blocked|allowed LOCALE
 *         [from ADDR] [reply_to ADDR] [subject TEXT] [body_plain_file F] [body_html_file F]
 *     mobile abq getABQMessage global|domain D quarantined|blocked|allowed LOCALE
 *     mobile abq deleteABQMessage global|domain D quarantined|blocked|allowed LOCALE
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/* A template body file is at most this large. */
#define BODY_MAX (1024u * 1024)

/* outbox output state. */
struct notice_lister {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
	size_t count;
};

static int
notice_cb(void *arg, const struct abq_notice *n)
{
	struct notice_lister *l = arg;
	char id[24], attempts[24], next[32];

	l->count++;
	if (l->env->json) {
		jstream_item(&l->js, notice_json(n));
		return 0;
	}
	snprintf(id, sizeof(id), "%" PRId64, n->id);
	snprintf(attempts, sizeof(attempts), "%d", n->attempts);
	const char *cells[] = {
	    id,
	    n->kind,
	    n->recipient,
	    n->state,
	    attempts,
	    strcmp(n->state, "queued") == 0 ? format_time(n->next_attempt, next) : "-",
	    n->last_error};
	table_row(l->table, cells);
	return 0;
}

/* mobile abq outbox [status S]: the notices, by id. */
int
do_outbox(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const char *const headers[] = {"ID",       "KIND",         "RECIPIENT", "STATE",
	                                      "ATTEMPTS", "NEXT_ATTEMPT", "LAST_ERROR"};
	const char *status = ctl_arg(args, "status");
	struct notice_lister l = {.env = env};
	const char *err = NULL;
	int rc;

	(void)cmd;
	if (status != NULL && strcmp(status, "queued") != 0 && strcmp(status, "sent") != 0 &&
	    strcmp(status, "failed") != 0)
		return ctl_fail("status %s: expected queued, sent or failed", status);
	if (env->json)
		jstream_begin(&l.js, env->out, NULL, "notices");
	else
		l.table = table_new(env->out, 7, headers);
	rc = abq_store_notice_iter(env->store, status, notice_cb, &l, &err);
	if (env->json) {
		jstream_end(&l.js);
	} else {
		table_finish(&l.table);
		if (l.count == 0)
			fprintf(env->out, "no notices\n");
	}
	if (rc != 0)
		return ctl_fail("store: %s", err != NULL ? err : "reading the outbox failed");
	return CTL_OK;
}

/* The template key of a command line: scope (cmd->op), domain, kind, locale. */
struct msg_key {
	enum abq_scope scope;
	char *domain;
	const char *kind;
	const char *kind_word;
	const char *locale;
};

static int
msg_key(const struct ctl_command *cmd, const struct ctl_args *args, struct msg_key *k)
{
	static const char *const kinds[][2] = {{"quarantined", "user-quarantined"},
	                                       {"blocked", "user-blocked"},
	                                       {"allowed", "user-allowed"},
	                                       {"wiped", "user-wiped"}};
	memset(k, 0, sizeof(*k));
	k->scope = (enum abq_scope)cmd->op;
	k->kind_word = ctl_arg(args, "kind");
	k->locale = ctl_arg(args, "locale");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(k->kind_word, kinds[i][0]) == 0)
			k->kind = kinds[i][1];
	if (k->kind == NULL) {
		ctl_fail("%s: expected quarantined, blocked, allowed or wiped", k->kind_word);
		return -1;
	}
	size_t n = strlen(k->locale);
	if (n == 0 || n > 35 ||
	    strspn(k->locale, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	                      "vwxyz0123456789-_") != n) {
		ctl_fail("locale %s: expected a language tag such as en, de or de-DE", k->locale);
		return -1;
	}
	if (k->scope == ABQ_SCOPE_DOMAIN && ctl_domain(ctl_arg(args, "domain"), &k->domain) < 0)
		return -1;
	return 0;
}

/* "global" or "domain D", for messages. */
static char *
msg_where(const struct msg_key *k)
{
	return k->scope == ABQ_SCOPE_DOMAIN ? xasprintf("domain %s", k->domain) : xstrdup("global");
}

/* Read a whole text file into a new string; NULL after printing the error. */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		ctl_fail("%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= BODY_MAX) {
				ctl_fail("%s: larger than %u bytes", path, BODY_MAX);
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		ctl_fail("%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		ctl_fail("%s: holds a NUL byte", path);
		free(buf);
		return NULL;
	}
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

/*
 * mobile abq setABQMessage ...: set the given texts of one template (the
 * others it already has stay), through the registry.
 */
int
do_msg_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *from = ctl_arg(args, "from"), *reply_to = ctl_arg(args, "reply_to");
	const char *subject = ctl_arg(args, "subject");
	const char *plain_file = ctl_arg(args, "body_plain_file");
	const char *html_file = ctl_arg(args, "body_html_file");
	struct abq_outcome o = {0};
	struct msg_key k;
	char *plain = NULL, *html = NULL, *where = NULL, *errmsg = NULL;
	unsigned fields = 0;
	int rc = CTL_REFUSED;

	if (msg_key(cmd, args, &k) < 0)
		goto out;
	if (from == NULL && reply_to == NULL && subject == NULL && plain_file == NULL &&
	    html_file == NULL) {
		ctl_fail("nothing to set: give from, reply_to, subject, body_plain_file or "
		         "body_html_file");
		goto out;
	}
	if ((plain_file != NULL && (plain = read_text(plain_file)) == NULL) ||
	    (html_file != NULL && (html = read_text(html_file)) == NULL))
		goto out;
	fields |= from != NULL ? ABQ_TEMPLATE_FROM : 0;
	fields |= reply_to != NULL ? ABQ_TEMPLATE_REPLY_TO : 0;
	fields |= subject != NULL ? ABQ_TEMPLATE_SUBJECT : 0;
	fields |= plain != NULL ? ABQ_TEMPLATE_BODY_PLAIN : 0;
	fields |= html != NULL ? ABQ_TEMPLATE_BODY_HTML : 0;
	struct abq_template t = {
	    .scope = k.scope,
	    .domain = k.domain,
	    .kind = (char *)k.kind,
	    .locale = (char *)k.locale,
	    .from = (char *)from,
	    .reply_to = (char *)reply_to,
	    .subject = (char *)subject,
	    .body_plain = plain,
	    .body_html = html,
	};
	int r = abq_registry_template_set(&env->ctx, &t, fields, NULL, &o, &errmsg);
	abq_outcome_clear(&o);
	if ((rc = ctl_registry_status(r, errmsg)) != CTL_OK)
		goto out;
	where = msg_where(&k);
	if (env->json) {
		json_t *jo = json_object();
		json_object_set_new(jo, "set", json_true());
		json_print(env->out, jo);
	} else {
		fprintf(env->out, "set %s %s message for locale %s\n", where, k.kind_word,
		        k.locale);
	}
out:
	free(plain);
	free(html);
	free(where);
	free(k.domain);
	return rc;
}

/* mobile abq getABQMessage ...: one stored template. */
int
do_msg_get(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	struct abq_template t = {0};
	struct msg_key k;
	char *where = NULL, at[32];
	const char *err = NULL;
	int rc = CTL_REFUSED, found;

	if (msg_key(cmd, args, &k) < 0)
		goto out;
	where = msg_where(&k);
	found = abq_store_template_get(env->store, k.scope, k.domain, k.kind, k.locale, &t, &err);
	if (found < 0) {
		ctl_fail("store: %s", err);
		goto out;
	}
	if (found == 0) {
		ctl_fail("no %s %s message for locale %s (the built-in English text applies)",
		         where, k.kind_word, k.locale);
		goto out;
	}
	if (env->json) {
		json_print(env->out, template_json(&t));
	} else {
		fprintf(env->out,
		        "message:   %s %s, locale %s\nfrom:      %s\nreply_to:  %s\nsubject:   %s\n"
		        "set by:    %s at %s\nbody_plain:\n%s\nbody_html:\n%s\n",
		        shown(where), k.kind_word, shown(t.locale), shown(t.from),
		        shown(t.reply_to), shown(t.subject), shown(t.set_by),
		        format_time(t.set_at, at), shown_text(t.body_plain, TEXT_KEEP_LINES),
		        shown_text(t.body_html, TEXT_KEEP_LINES));
	}
	rc = CTL_OK;
out:
	free(where);
	free(k.domain);
	abq_template_clear(&t);
	return rc;
}

/* mobile abq deleteABQMessage ...: remove one stored template, through the registry. */
int
do_msg_delete(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	struct abq_outcome o = {0};
	struct msg_key k;
	char *where = NULL, *errmsg = NULL;
	int rc = CTL_REFUSED, r;

	if (msg_key(cmd, args, &k) < 0)
		goto out;
	where = msg_where(&k);
	r = abq_registry_template_delete(&env->ctx, k.scope, k.domain, k.kind, k.locale, &o,
	                                 &errmsg);
	if (r == 1) {
		free(errmsg);
		ctl_fail("no %s %s message for locale %s", where, k.kind_word, k.locale);
		goto out;
	}
	if ((rc = ctl_registry_status(r, errmsg)) != CTL_OK)
		goto out;
	if (env->json) {
		json_t *jo = json_object();
		json_object_set_new(jo, "deleted", json_integer((json_int_t)o.affected));
		json_print(env->out, jo);
	} else {
		fprintf(env->out, "deleted %s %s message for locale %s\n", where, k.kind_word,
		        k.locale);
	}
out:
	abq_outcome_clear(&o);
	free(where);
	free(k.domain);
	return rc;
}
