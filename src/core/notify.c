/*
 * notify.c: the user's notice on a state change, rendered and queued in the
 * outbox within the caller's store transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "core/notify.h"
#include "lib/util.h"
#include "lib/mime.h"
#include "notice/templates.h"

static const char *
notice_kind(enum abq_state st)
{
	switch (st) {
	case ABQ_STATE_QUARANTINED:
		return "user-quarantined";
	case ABQ_STATE_BLOCKED:
		return "user-blocked";
	case ABQ_STATE_ALLOWED:
		return "user-allowed";
	default:
		return NULL;
	}
}

/*
 * Render notice kind for device d to one recipient with the template chosen
 * for the account's domain and the device's OSLanguage, and add it to the
 * outbox. Returns 0 or -1 with *errmsg_r.
 */
static int
queue_one(const struct abq_ctx *c, const struct abq_device *d, const char *kind, const char *to,
          const char *user_address, const char *domain, char **errmsg_r)
{
	const struct abq_notice_conf *nc = c->notices;
	const char *err = NULL;
	char *msg = NULL;
	int rv = -1;

	struct abq_template t = {0};
	if (notice_template_select(c->store, domain, kind, d->os_language, &t, &err) < 0) {
		*errmsg_r = xasprintf("notice: %s", err);
		return -1;
	}
	char when[64];
	struct notice_facts f;
	notice_device_facts(d, user_address, nc->contact, &f, when);
	char *subject = notice_render(t.subject, &f, when, false);
	char *plain = notice_render(t.body_plain, &f, when, false);
	char *html = notice_render(t.body_html, &f, when, true);
	struct mime_message m = {
	    .from = t.from != NULL ? t.from : nc->from,
	    .to = to,
	    .reply_to = t.reply_to,
	    .subject = subject,
	    .body_plain = plain != NULL ? plain : "",
	    .body_html = html,
	    .date = c->now,
	};
	msg = mime_render(&m, &err);
	if (msg == NULL) {
		*errmsg_r = xasprintf("notice to %s: %s", to, err);
		goto out;
	}
	struct abq_notice n = {
	    .recipient = (char *)to,
	    .kind = (char *)kind,
	    .account = d->account,
	    .device_id = d->device_id,
	    .rendered = msg,
	    .state = (char *)"queued",
	    .next_attempt = c->now,
	    .created = c->now,
	};
	if (abq_store_notice_add(c->store, &n, &err) < 0) {
		*errmsg_r = xasprintf("store: %s", err);
		goto out;
	}
	rv = 0;
out:
	free(msg);
	free(subject);
	free(plain);
	free(html);
	abq_template_clear(&t);
	return rv;
}

/*
 * One notice of kind per administrator (the domain's abqAdmins, else the
 * global one, else [smtp] admins): admin-immediate (abqNotifyAdminsImmediately)
 * and admin-wiped.
 */
static int
queue_admins(const struct abq_ctx *c, const struct abq_policy *p, const struct abq_device *d,
             const char *kind, const char *user_address, const char *domain, char **errmsg_r)
{
	const char *list = p != NULL ? abq_policy_attr(p, d->account, "abqAdmins", NULL) : NULL;
	if (list == NULL || list[0] == '\0')
		list = c->notices->admins;
	if (list == NULL)
		return 0;
	char *copy = xstrdup(list), *save = NULL;
	int rv = 0;
	for (char *a = strtok_r(copy, ", ", &save); a != NULL && rv == 0;
	     a = strtok_r(NULL, ", ", &save))
		rv = queue_one(c, d, kind, a, user_address, domain, errmsg_r);
	free(copy);
	return rv;
}

/* The user's address: the account when it is one, else account@domain. A new string. */
static char *
user_address_of(const struct abq_ctx *c, const char *account, const char *domain)
{
	const struct abq_notice_conf *nc = c->notices;

	return strchr(account, '@') != NULL ? xstrdup(account)
	       : nc->mail_domain != NULL    ? xasprintf("%s@%s", account, nc->mail_domain)
	       : domain != NULL             ? xasprintf("%s@%s", account, domain)
	                                    : xstrdup(account);
}

int
abq_notify_state(const struct abq_ctx *c, const struct abq_policy *p, const struct abq_device *d,
                 enum abq_state old, char **errmsg_r)
{
	const struct abq_notice_conf *nc = c->notices;
	const char *kind = notice_kind(d->state);
	int rv;

	if (nc == NULL || kind == NULL || old == d->state || c->dry_run)
		return 0;
	if (d->state == ABQ_STATE_ALLOWED &&
	    (p == NULL || abq_policy_int(p, d->account, "abqNotifyUserOnAllow") == 0))
		return 0;
	/* A confirmed wipe has notices of its own (abq_notify_wiped). */
	if (d->reason == ABQ_REASON_WIPE)
		return 0;

	const char *domain = account_domain(d->account, c->default_domain);
	char *to = user_address_of(c, d->account, domain);
	rv = queue_one(c, d, kind, to, to, domain, errmsg_r);
	if (rv == 0 && d->state == ABQ_STATE_QUARANTINED && p != NULL &&
	    abq_policy_int(p, d->account, "abqNotifyAdminsImmediately") != 0)
		rv = queue_admins(c, p, d, "admin-immediate", to, domain, errmsg_r);
	free(to);
	return rv;
}

int
abq_notify_wiped(const struct abq_ctx *c, const struct abq_policy *p, const struct abq_device *d,
                 char **errmsg_r)
{
	int rv;

	if (c->notices == NULL || c->dry_run)
		return 0;
	const char *domain = account_domain(d->account, c->default_domain);
	char *to = user_address_of(c, d->account, domain);
	rv = queue_one(c, d, "user-wiped", to, to, domain, errmsg_r);
	if (rv == 0)
		rv = queue_admins(c, p, d, "admin-wiped", to, domain, errmsg_r);
	free(to);
	return rv;
}
