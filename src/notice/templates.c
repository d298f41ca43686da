/*
 * templates.c: built-in English notice texts and the template lookup.
 *
 * Design: the built-in texts are static abq_template records, one per kind,
 * with the placeholders of notice_render_template (render.h) plus
 * {first_seen}; notice_render renders one text. Stored templates are looked up
 * from the most specific key to the least, and any text a stored template
 * leaves empty is filled from the built-in one, so an administrator may
 * override the subject alone.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/util.h"
#include "notice/templates.h"

#define DEVICE_PLAIN                                                                               \
	"Device:      {model} ({device_type})\n"                                                   \
	"Device ID:   {device_id}\n"                                                               \
	"OS:          {os}\n"                                                                      \
	"User agent:  {user_agent}\n"                                                              \
	"IMEI:        {imei}\n"                                                                    \
	"EAS version: {eas_version}\n"                                                             \
	"First seen:  {first_seen}\n"                                                              \
	"Account:     {account}\n"
#define DEVICE_HTML                                                                                \
	"<table><tr><td>Device</td><td>{model} ({device_type})</td></tr>"                          \
	"<tr><td>Device ID</td><td>{device_id}</td></tr>"                                          \
	"<tr><td>OS</td><td>{os}</td></tr>"                                                        \
	"<tr><td>User agent</td><td>{user_agent}</td></tr>"                                        \
	"<tr><td>IMEI</td><td>{imei}</td></tr>"                                                    \
	"<tr><td>EAS version</td><td>{eas_version}</td></tr>"                                      \
	"<tr><td>First seen</td><td>{first_seen}</td></tr>"                                        \
	"<tr><td>Account</td><td>{account}</td></tr></table>"

static const struct abq_template builtins[] = {
    {.kind = "user-quarantined",
     .locale = "en",
     .subject = "Your device {device_id} has been put in quarantine",
     .body_plain = "A device connected to your mailbox {account} and has been put in "
                   "quarantine (state: {state}).\nUntil an administrator allows it, it cannot "
                   "sync your mail, calendar and contacts: it shows only a message explaining "
                   "this.\n\nWhat happens next: an administrator allows or blocks the device. "
                   "Once it is allowed, your mail appears on it by itself; there is nothing to "
                   "do on the device.\n\n" DEVICE_PLAIN
                   "\nIf this is not your device, or for help, contact {contact}.\n",
     .body_html = "<html><body><p>A device connected to your mailbox {account} and has been "
                  "put in quarantine (state: {state}). Until an administrator allows it, it "
                  "cannot sync your mail, calendar and contacts: it shows only a message "
                  "explaining this.</p><p>What happens next: an administrator allows or blocks "
                  "the device. Once it is allowed, your mail appears on it by itself; there is "
                  "nothing to do on the device.</p>" DEVICE_HTML
                  "<p>If this is not your device, or for help, contact {contact}.</p>"
                  "</body></html>"},
    {.kind = "user-blocked",
     .locale = "en",
     .subject = "Your device {device_id} was blocked",
     .body_plain = "A device of your mailbox {account} was blocked (state: {state}); it cannot "
                   "synchronise mail.\n\n" DEVICE_PLAIN "\nFor help, contact {contact}.\n",
     .body_html = "<html><body><p>A device of your mailbox {account} was blocked (state: "
                  "{state}); it cannot synchronise mail.</p>" DEVICE_HTML
                  "<p>For help, contact {contact}.</p></body></html>"},
    {.kind = "user-allowed",
     .locale = "en",
     .subject = "Your device {device_id} was allowed",
     .body_plain = "A device of your mailbox {account} was allowed (state: {state}); it now "
                   "synchronises your mail.\n\n" DEVICE_PLAIN "\nFor help, contact {contact}.\n",
     .body_html = "<html><body><p>A device of your mailbox {account} was allowed (state: "
                  "{state}); it now synchronises your mail.</p>" DEVICE_HTML
                  "<p>For help, contact {contact}.</p></body></html>"},
    {.kind = "user-wiped",
     .locale = "en",
     .subject = "Your device {device_id} has been wiped",
     .body_plain = "An administrator asked for a device of your mailbox {account} to be "
                   "wiped, and the device has confirmed it: it erased what it held (for an "
                   "account-only wipe, the data of this mailbox only). It is now blocked "
                   "(state: {state}).\n\n" DEVICE_PLAIN
                   "\nIf this was not meant to happen, contact {contact} at once.\n",
     .body_html = "<html><body><p>An administrator asked for a device of your mailbox "
                  "{account} to be wiped, and the device has confirmed it: it erased what it "
                  "held (for an account-only wipe, the data of this mailbox only). It is now "
                  "blocked (state: {state}).</p>" DEVICE_HTML
                  "<p>If this was not meant to happen, contact {contact} at once.</p>"
                  "</body></html>"},
    {.kind = "admin-wiped",
     .locale = "en",
     .subject = "Device {device_id} of {account} confirmed its remote wipe",
     .body_plain = "The device confirmed the remote wipe that was asked for; it is now blocked "
                   "(state: {state}) until you delete it.\n\n" DEVICE_PLAIN
                   "\nDetails:     abqctl mobile getDeviceInfo {account} {device_id}\n"
                   "To delete it: abqctl mobile abq delete {device_id} account {account}\n",
     .body_html = "<html><body><p>The device confirmed the remote wipe that was asked for; "
                  "it is now blocked (state: {state}) until you delete it.</p>" DEVICE_HTML
                  "<p>Details: <code>abqctl mobile getDeviceInfo {account} {device_id}</code>"
                  "<br>To delete it: <code>abqctl mobile abq delete {device_id} account "
                  "{account}</code></p></body></html>"},
    {.kind = "admin-immediate",
     .locale = "en",
     .subject = "Device {device_id} of {account} quarantined",
     .body_plain = "A new device has been put in quarantine: it gets only the quarantine "
                   "mailbox until you allow or block it.\n\n" DEVICE_PLAIN
                   "\nTo allow it:  abqctl mobile abq allow {device_id} account {account}\n"
                   "To block it:  abqctl mobile abq block {device_id} account {account}\n",
     .body_html = "<html><body><p>A new device has been put in quarantine: it gets only "
                  "the quarantine mailbox until you allow or block it.</p>" DEVICE_HTML
                  "<p>To allow it: <code>abqctl mobile abq allow {device_id} account "
                  "{account}</code><br>To block it: <code>abqctl mobile abq block {device_id} "
                  "account {account}</code></p></body></html>"},
    /*
     * The digest: {devices} is the list, built by the caller with the entry
     * texts of admin-digest-entry, once per device.
     */
    {.kind = "admin-digest",
     .locale = "en",
     .subject = "Devices put in quarantine",
     .body_plain = "These devices were quarantined since the previous digest:\n\n{devices}",
     .body_html = "<html><body><p>These devices were quarantined since the previous "
                  "digest:</p>{devices}</body></html>"},
    {.kind = "admin-digest-entry",
     .locale = "en",
     .subject = "",
     .body_plain = DEVICE_PLAIN "  abqctl mobile abq allow {device_id} account {account}\n"
                                "  abqctl mobile abq block {device_id} account {account}\n\n",
     .body_html = DEVICE_HTML "<p><code>abqctl mobile abq allow {device_id} account "
                              "{account}</code><br><code>abqctl mobile abq block {device_id} "
                              "account {account}</code></p>"},
};

/* The built-in template of kind. */
const struct abq_template *
notice_template_builtin(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].kind, kind) == 0)
			return &builtins[i];
	return NULL;
}

/* English names of languages as Windows Phone and old clients report them. */
static const struct {
	const char *name, *code;
} lang_names[] = {
    {"english", "en"},   {"german", "de"},     {"deutsch", "de"},   {"french", "fr"},
    {"francais", "fr"},  {"français", "fr"},   {"spanish", "es"},   {"italian", "it"},
    {"dutch", "nl"},     {"portuguese", "pt"}, {"swedish", "sv"},   {"danish", "da"},
    {"norwegian", "no"}, {"finnish", "fi"},    {"polish", "pl"},    {"czech", "cs"},
    {"russian", "ru"},   {"japanese", "ja"},   {"chinese", "zh"},   {"korean", "ko"},
    {"turkish", "tr"},   {"greek", "el"},      {"hungarian", "hu"}, {"ukrainian", "uk"},
};

/* The language code of an OSLanguage value. */
void
notice_locale_lang(const char *os_language, char *out, size_t size)
{
	size_t i, n;

	if (size == 0)
		return;
	out[0] = '\0';
	if (os_language == NULL || *os_language == '\0')
		return;
	for (i = 0; i < sizeof(lang_names) / sizeof(lang_names[0]); i++)
		if (strcasecmp(os_language, lang_names[i].name) == 0) {
			snprintf(out, size, "%s", lang_names[i].code);
			return;
		}
	n = strcspn(os_language, "-_");
	if (n < 2 || n > 3)
		return;
	for (i = 0; i < n && i + 1 < size; i++) {
		if (!isalpha((unsigned char)os_language[i])) {
			out[0] = '\0';
			return;
		}
		out[i] = (char)tolower((unsigned char)os_language[i]);
	}
	out[i] = '\0';
}

/* Copy the fields of t into out, taking the built-in text for empty ones. */
static void
fill(struct abq_template *out, const struct abq_template *t, const struct abq_template *b)
{
#define PICK(f) xstrdup_null(t->f != NULL && *t->f != '\0' ? t->f : b->f)
	out->scope = t->scope;
	out->domain = xstrdup_null(t->domain);
	out->kind = xstrdup(b->kind);
	out->locale = xstrdup_null(t->locale);
	out->from = xstrdup_null(t->from);
	out->reply_to = xstrdup_null(t->reply_to);
	out->subject = PICK(subject);
	out->body_plain = PICK(body_plain);
	out->body_html = PICK(body_html);
	out->set_by = xstrdup_null(t->set_by);
	out->set_at = t->set_at;
#undef PICK
}

/*
 * The one lookup order of stored templates (see templates.h): the most
 * specific key first, the domain's before the global ones, the device's
 * locale before its language.
 */
int
notice_template_find(struct abq_store *s, const char *domain, const char *kind, const char *locale,
                     struct abq_template *out, const char **errstr_r)
{
	struct choice {
		enum abq_scope scope;
		const char *locale;
	} order[4];
	char lang[8];
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	notice_locale_lang(locale, lang, sizeof(lang));
	if (domain != NULL && *domain != '\0') {
		if (locale != NULL && *locale != '\0')
			order[n++] = (struct choice){ABQ_SCOPE_DOMAIN, locale};
		if (lang[0] != '\0')
			order[n++] = (struct choice){ABQ_SCOPE_DOMAIN, lang};
	}
	if (locale != NULL && *locale != '\0')
		order[n++] = (struct choice){ABQ_SCOPE_GLOBAL, locale};
	if (lang[0] != '\0')
		order[n++] = (struct choice){ABQ_SCOPE_GLOBAL, lang};
	for (i = 0; i < n; i++) {
		int rc = abq_store_template_get(s, order[i].scope, domain, kind, order[i].locale,
		                                out, errstr_r);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * Choose the template of a notice: the stored one found in the lookup order,
 * its empty texts filled from the built-in one, or the built-in one.
 */
int
notice_template_select(struct abq_store *s, const char *domain, const char *kind,
                       const char *locale, struct abq_template *out, const char **errstr_r)
{
	const struct abq_template *b = notice_template_builtin(kind);
	struct abq_template t;

	memset(out, 0, sizeof(*out));
	if (b == NULL) {
		*errstr_r = "unknown notice kind";
		return -1;
	}
	int rc = notice_template_find(s, domain, kind, locale, &t, errstr_r);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		fill(out, &t, b);
		abq_template_clear(&t);
		return 0;
	}
	fill(out, b, b);
	return 0;
}

/* s with every placeholder ph replaced by val: a new string. */
char *
notice_replace(const char *s, const char *ph, const char *val)
{
	size_t phlen = strlen(ph), vlen = strlen(val), n = 0;
	const char *hit;

	for (hit = strstr(s, ph); hit != NULL; hit = strstr(hit + phlen, ph))
		n++;
	char *out = xmalloc(strlen(s) + n * vlen + 1), *o = out;
	while ((hit = strstr(s, ph)) != NULL) {
		memcpy(o, s, (size_t)(hit - s));
		o += hit - s;
		memcpy(o, val, vlen);
		o += vlen;
		s = hit + phlen;
	}
	memcpy(o, s, strlen(s) + 1);
	return out;
}

void
notice_device_facts(const struct abq_device *d, const char *email, const char *contact,
                    struct notice_facts *f, char when[64])
{
	snprintf(when, 64, "unknown");
	if (d->first_seen > 0) {
		time_t ts = (time_t)d->first_seen;
		struct tm tm;
		gmtime_r(&ts, &tm);
		strftime(when, 64, "%Y-%m-%d %H:%M:%S UTC", &tm);
	}
	*f = (struct notice_facts){
	    .account = d->account,
	    .email = email,
	    .device_id = d->device_id,
	    .device_type = d->device_type,
	    .model = d->model,
	    .os = d->os,
	    .user_agent = d->user_agent,
	    .imei = d->imei,
	    .eas_version = d->eas_version,
	    .state = abq_state_name(d->state),
	    .contact = contact,
	};
}

char *
notice_render(const char *tmpl, const struct notice_facts *f, const char *when, bool html)
{
	if (tmpl == NULL)
		return NULL;
	char *t = notice_replace(tmpl, "{first_seen}", when);
	char *r = notice_render_template(t, f, html);
	free(t);
	return r;
}
