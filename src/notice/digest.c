/*
 * digest.c: the administrators' digest (see digest.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/attrs.h"
#include "lib/util.h"
#include "notice/digest.h"
#include "lib/mime.h"
#include "notice/templates.h"

#define KIND "admin-digest"

/* One device of the digest. */
struct item {
	struct abq_device d;
	char *admins; /* the recipients, comma-separated */
};

struct collect {
	int64_t before;
	struct item *v;
	size_t n, cap;
};

/* A string attribute of scope/target, or NULL (a new string). */
static char *
attr_str(struct abq_store *s, enum abq_scope scope, const char *target, const char *name)
{
	struct abq_attr a = {0};
	const char *err;
	char *v = NULL;

	if (abq_store_attr_get(s, scope, target, name, &a, &err) == 1 && a.value != NULL &&
	    *a.value != '\0')
		v = xstrdup(a.value);
	abq_attr_clear(&a);
	return v;
}

int64_t
notice_digest_interval(struct abq_store *s)
{
	const struct abq_attr_def *def = abq_attr_find("abqNotificationsInterval");
	char *v = attr_str(s, ABQ_SCOPE_GLOBAL, NULL, def->name);
	int64_t secs = abq_attr_int_value(def, v != NULL ? v : def->default_value);

	free(v);
	return secs;
}

/* Free a device's strings and zero it, so a second reset is harmless. */
static void
dev_reset(struct abq_device *d)
{
	abq_device_clear(d);
	memset(d, 0, sizeof(*d));
}

/* The newest digest's created time. */
static int
newest_digest(void *arg, const struct abq_notice *n)
{
	int64_t *last = arg;

	if (n->kind != NULL && strcmp(n->kind, KIND) == 0 && n->created > *last)
		*last = n->created;
	return 0;
}

/* A quarantine in the window: remember (account, device) once. */
static int
quarantined(void *arg, const struct abq_history *h)
{
	struct collect *c = arg;

	if (h->at >= c->before || h->what == NULL || strcmp(h->what, "state") != 0 ||
	    h->new_value == NULL || strncmp(h->new_value, "Quarantined", 11) != 0 ||
	    h->device_id == NULL || h->account == NULL)
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].d.device_id, h->device_id) == 0 &&
		    strcmp(c->v[i].d.account, h->account) == 0)
			return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
	c->v[c->n].d.device_id = xstrdup(h->device_id);
	c->v[c->n].d.account = xstrdup(h->account);
	c->n++;
	return 0;
}

/* Render the texts of one entry or the digest around it. */
static char *
render(const char *tmpl, const struct abq_device *d, const char *email, bool html)
{
	char when[64];
	struct notice_facts f;
	if (tmpl == NULL)
		return NULL;
	if (d == NULL)
		return xstrdup(tmpl);
	notice_device_facts(d, email, NULL, &f, when);
	return notice_render(tmpl, &f, when, html);
}

/* Queue one digest per address of the group of items (same admins). */
static int
queue_group(struct abq_store *s, const struct notice_digest_conf *dc, struct item *v, size_t n,
            const char *admins, const char *domain, int64_t now, const char **errstr_r)
{
	struct abq_template outer = {0}, entry = {0};
	char *plain_list = xstrdup(""), *html_list = xstrdup("");
	int queued = -1;

	if (notice_template_select(s, domain, KIND, NULL, &outer, errstr_r) < 0 ||
	    notice_template_select(s, domain, "admin-digest-entry", NULL, &entry, errstr_r) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].admins, admins) != 0)
			continue;
		char *p = render(entry.body_plain, &v[i].d, NULL, false);
		char *h = render(entry.body_html, &v[i].d, NULL, true);
		char *np = xasprintf("%s%s", plain_list, p ? p : "");
		char *nh = xasprintf("%s%s", html_list, h ? h : "");
		free(p);
		free(h);
		free(plain_list);
		free(html_list);
		plain_list = np;
		html_list = nh;
	}
	char *plain =
	    outer.body_plain ? notice_replace(outer.body_plain, "{devices}", plain_list) : NULL;
	char *html =
	    outer.body_html ? notice_replace(outer.body_html, "{devices}", html_list) : NULL;
	char *list = xstrdup(admins), *save = NULL;
	queued = 0;
	for (char *a = strtok_r(list, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*a))
			a++;
		size_t l = strlen(a);
		while (l > 0 && isspace((unsigned char)a[l - 1]))
			a[--l] = '\0';
		if (*a == '\0')
			continue;
		struct mime_message m = {
		    .from = outer.from != NULL ? outer.from : dc->from,
		    .to = a,
		    .reply_to = outer.reply_to,
		    .subject = outer.subject,
		    .body_plain = plain != NULL ? plain : "",
		    .body_html = html,
		    .date = now,
		};
		char *msg = mime_render(&m, errstr_r);
		if (msg == NULL) {
			queued = -1;
			break;
		}
		struct abq_notice nt = {
		    .recipient = a,
		    .kind = (char *)KIND,
		    .rendered = msg,
		    .state = (char *)"queued",
		    .next_attempt = now,
		    .created = now,
		};
		int rc = abq_store_notice_add(s, &nt, errstr_r);
		free(msg);
		if (rc < 0) {
			queued = -1;
			break;
		}
		queued++;
	}
	free(list);
	free(plain);
	free(html);
out:
	free(plain_list);
	free(html_list);
	abq_template_clear(&outer);
	abq_template_clear(&entry);
	return queued;
}

int
notice_digest_run(struct abq_store *s, const struct notice_digest_conf *dc, int64_t now,
                  int64_t *next_r, const char **errstr_r)
{
	int64_t interval = notice_digest_interval(s), last = 0;
	struct collect c = {.before = now};
	int total = 0;

	if (interval <= 0) {
		*next_r = now + 60; /* 0 = never: look again later for a change */
		return 0;
	}
	if (abq_store_notice_iter(s, NULL, newest_digest, &last, errstr_r) < 0)
		return -1;
	if (last > 0 && now < last + interval) {
		*next_r = last + interval;
		return 0;
	}
	*next_r = now + interval;
	struct abq_history_filter hf = {.since = last};
	if (abq_store_history_iter(s, &hf, quarantined, &c, errstr_r) < 0) {
		total = -1;
		goto out;
	}
	/* Keep the devices still Quarantined, with their facts and recipients. */
	size_t k = 0;
	for (size_t i = 0; i < c.n; i++) {
		struct abq_device d = {0};
		int f = abq_store_device_get(s, c.v[i].d.account, c.v[i].d.device_id, &d, errstr_r);
		if (f < 0) {
			abq_device_clear(&d);
			total = -1;
			goto out;
		}
		if (f == 0 || d.state != ABQ_STATE_QUARANTINED) {
			abq_device_clear(&d);
			dev_reset(&c.v[i].d);
			continue;
		}
		const char *domain = account_domain(d.account, dc->default_domain);
		char *admins = domain ? attr_str(s, ABQ_SCOPE_DOMAIN, domain, "abqAdmins") : NULL;
		if (admins == NULL)
			admins = attr_str(s, ABQ_SCOPE_GLOBAL, NULL, "abqAdmins");
		if (admins == NULL && dc->n_admins > 0) {
			admins = xstrdup("");
			for (size_t j = 0; j < dc->n_admins; j++) {
				char *x = xasprintf("%s%s%s", admins, j ? "," : "", dc->admins[j]);
				free(admins);
				admins = x;
			}
		}
		dev_reset(&c.v[i].d);
		if (admins == NULL) {
			abq_device_clear(&d);
			continue;
		}
		c.v[k].d = d;
		c.v[k].admins = admins;
		k++;
	}
	c.n = k;
	if (c.n == 0)
		goto out;
	if (abq_store_begin(s, errstr_r) < 0) {
		total = -1;
		goto out;
	}
	for (size_t i = 0; i < c.n; i++) {
		bool first = true;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c.v[j].admins, c.v[i].admins) == 0)
				first = false;
		if (!first)
			continue;
		const char *domain = account_domain(c.v[i].d.account, dc->default_domain);
		int q = queue_group(s, dc, c.v, c.n, c.v[i].admins, domain, now, errstr_r);
		if (q < 0) {
			abq_store_rollback(s);
			total = -1;
			goto out;
		}
		total += q;
	}
	if (abq_store_commit(s, errstr_r) < 0) {
		abq_store_rollback(s);
		total = -1;
	}
out:
	for (size_t i = 0; i < c.n; i++) {
		dev_reset(&c.v[i].d);
		free(c.v[i].admins);
	}
	free(c.v);
	return total;
}
