/*
 * json.c: the JSON shapes shared by abqctl --json and the admin API (json.h).
 *
 * Moved here from abqctl's output code so that a device, an entry, a rule or a
 * changes object reads the same whichever tool printed it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lib/util.h"

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

/*
 * A device's remote wipe: null when none was asked for, else its state
 * ("requested", "acknowledged"), whether only the account's data goes, who
 * asked and when, and when the device confirmed.
 */
static json_t *
wipe_json(const struct abq_device *d)
{
	json_t *o;

	if (d->wipe == ABQ_WIPE_NONE)
		return json_null();
	o = json_object();
	json_object_set_new(
	    o, "state",
	    json_string(d->wipe == ABQ_WIPE_ACKNOWLEDGED ? "acknowledged" : "requested"));
	json_object_set_new(o, "accountOnly", json_boolean(d->wipe_account_only));
	json_object_set_new(o, "requestedBy", jstr(d->wipe_by));
	json_object_set_new(o, "requestedAt", jtime(d->wipe_at));
	json_object_set_new(o, "acknowledgedAt",
	                    d->wipe_acked_at ? jtime(d->wipe_acked_at) : json_null());
	return o;
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
	json_object_set_new(o, "wipe", wipe_json(d));
	json_object_set_new(o, "provisionStatus",
	                    d->provision_status != 0 ? json_integer(d->provision_status)
	                                             : json_null());
	return o;
}

json_t *
unseen_entry_json(const struct abq_entry *e)
{
	struct abq_device d = {
	    .account = e->account,
	    .device_id = e->device_id,
	    .state = e->state,
	    .reason = ABQ_REASON_INDIVIDUAL,
	    .state_by = e->created_by,
	    .state_at = e->created_at,
	};
	json_t *o = device_json(&d);

	json_object_set_new(o, "notSeenYet", json_true());
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

/* A rule for people: "DeviceModel glob 'SM-*' -> Blocked". A new string. */
char *
fmt_rule(const struct abq_rule *r)
{
	return xasprintf("%s %s '%s' -> %s", abq_charac_name(r->charac), abq_match_name(r->match),
	                 r->pattern != NULL ? r->pattern : "", abq_state_name(r->level));
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

/* One element of the changes object's "changed" array. */
static json_t *
transition_json(const struct abq_transition *t)
{
	json_t *c = json_object();

	json_object_set_new(c, "account", jstr(t->account));
	json_object_set_new(c, "deviceId", jstr(t->device_id));
	json_object_set_new(c, "from", state_json(t->old_state, t->old_reason, t->old_rule));
	json_object_set_new(c, "to", state_json(t->new_state, t->new_reason, t->new_rule));
	return c;
}

/* The changes object of docs/abqctl.md. */
json_t *
outcome_json(const struct abq_outcome *o, bool dry_run)
{
	json_t *head = json_object();
	json_t *changed = json_array();

	json_object_set_new(head, "ok", json_true());
	json_object_set_new(head, "dryRun", json_boolean(o->dry_run || dry_run));
	json_object_set_new(head, "affected", json_integer((json_int_t)o->affected));
	json_object_set_new(head, "id", jid(o->id));
	for (size_t i = 0; i < o->changed_count; i++)
		json_array_append_new(changed, transition_json(&o->changed[i]));
	json_object_set_new(head, "changed", changed);
	return head;
}

/* A notice of the outbox. */
json_t *
notice_json(const struct abq_notice *n)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", jid(n->id));
	json_object_set_new(o, "kind", jstr(n->kind));
	json_object_set_new(o, "recipient", jstr(n->recipient));
	json_object_set_new(o, "account", jstr(n->account));
	json_object_set_new(o, "deviceId", jstr(n->device_id));
	json_object_set_new(o, "state", jstr(n->state));
	json_object_set_new(o, "attempts", json_integer(n->attempts));
	json_object_set_new(o, "nextAttempt", jtime(n->next_attempt));
	json_object_set_new(o, "lastError", jstr(n->last_error));
	json_object_set_new(o, "created", jtime(n->created));
	json_object_set_new(o, "sent", jtime(n->sent));
	return o;
}

/* The user kinds and the words abqctl and the API name them by. */
static const char *const kind_words[][2] = {{"quarantined", "user-quarantined"},
                                            {"blocked", "user-blocked"},
                                            {"allowed", "user-allowed"},
                                            {"wiped", "user-wiped"}};

const char *
abq_template_kind_word(const char *kind)
{
	for (size_t i = 0; i < sizeof(kind_words) / sizeof(kind_words[0]); i++)
		if (kind != NULL && strcmp(kind, kind_words[i][1]) == 0)
			return kind_words[i][0];
	return kind;
}

const char *
abq_template_kind_parse(const char *word)
{
	static const char *const others[] = {"admin-digest", "admin-immediate", "admin-wiped"};

	for (size_t i = 0; i < sizeof(kind_words) / sizeof(kind_words[0]); i++)
		if (strcmp(word, kind_words[i][0]) == 0 || strcmp(word, kind_words[i][1]) == 0)
			return kind_words[i][1];
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (strcmp(word, others[i]) == 0)
			return others[i];
	return NULL;
}

/* A notice template. */
json_t *
template_json(const struct abq_template *t)
{
	json_t *o = json_object();

	json_object_set_new(o, "scope", jstr(t->scope == ABQ_SCOPE_DOMAIN ? "domain" : "global"));
	json_object_set_new(o, "domain", jstr(t->domain));
	json_object_set_new(o, "kind", jstr(abq_template_kind_word(t->kind)));
	json_object_set_new(o, "locale", jstr(t->locale));
	json_object_set_new(o, "from", jstr(t->from));
	json_object_set_new(o, "replyTo", jstr(t->reply_to));
	json_object_set_new(o, "subject", jstr(t->subject));
	json_object_set_new(o, "bodyPlain", jstr(t->body_plain));
	json_object_set_new(o, "bodyHtml", jstr(t->body_html));
	json_object_set_new(o, "setBy", jstr(t->set_by));
	json_object_set_new(o, "setAt", jtime(t->set_at));
	return o;
}

/* The value of characteristic ch among the facts (NULL: not reported). */
static const char *
fact_of(const struct abq_facts *f, enum abq_charac ch)
{
	switch (ch) {
	case ABQ_CHAR_DEVICEID:
		return f->device_id;
	case ABQ_CHAR_DEVICETYPE:
		return f->device_type;
	case ABQ_CHAR_DEVICEMODEL:
		return f->model;
	case ABQ_CHAR_DEVICEOS:
		return f->os;
	case ABQ_CHAR_USERAGENT:
		return f->user_agent;
	}
	return NULL;
}

/* How people name a characteristic inside a sentence. */
static const char *
fact_label(enum abq_charac ch)
{
	switch (ch) {
	case ABQ_CHAR_DEVICEID:
		return "DeviceId";
	case ABQ_CHAR_DEVICETYPE:
		return "type";
	case ABQ_CHAR_DEVICEMODEL:
		return "model";
	case ABQ_CHAR_DEVICEOS:
		return "OS";
	case ABQ_CHAR_USERAGENT:
		return "user agent";
	}
	return "?";
}

/* Where the effective mode comes from: "global", "domain example.com", "default"... */
char *
abq_explain_mode_source(const struct abq_explanation *x)
{
	if (x->mode_is_default)
		return xstrdup("default");
	switch (x->mode_scope) {
	case ABQ_SCOPE_GLOBAL:
		return xstrdup("global");
	case ABQ_SCOPE_DOMAIN:
		return xasprintf("domain %s", x->domain != NULL ? x->domain : "?");
	case ABQ_SCOPE_ACCOUNT:
		return xasprintf("account %s", x->device.account);
	}
	return xstrdup("?");
}

/* The step number of product.md for a verdict (entries are both step 3). */
static int
step_number(enum abq_step s)
{
	switch (s) {
	case ABQ_STEP_ENTRY_DEVICE:
	case ABQ_STEP_POLICY:
		return 3;
	case ABQ_STEP_DISCOVERY:
		return 5;
	default:
		return (int)s;
	}
}

/* The sentence saying which step decided and why. A new string. */
char *
abq_explain_text(const struct abq_explanation *x)
{
	const struct abq_verdict *v = &x->verdict;
	const struct abq_device *d = &x->device;
	char *src = abq_explain_mode_source(x);
	char *rule = v->rule != NULL ? fmt_rule(v->rule) : NULL;
	const char *mode = abq_mode_name(x->in.mode);
	const char *state = abq_state_name(v->state);
	char *s;

	switch (v->step) {
	case ABQ_STEP_WIPE:
		s = xasprintf("step 1: remote wipe acknowledged%s -> Blocked until the device is "
		              "deleted",
		              d->wipe_acked_at > 0 ? "" : " (recorded)");
		break;
	case ABQ_STEP_DISABLED:
		s = xasprintf("step 2: mode Disabled (%s) -> %s, no access control", src, state);
		break;
	case ABQ_STEP_ENTRY_ACCOUNT:
		s = xasprintf("step 3: entry %s/%s -> %s", d->device_id, d->account, state);
		break;
	case ABQ_STEP_ENTRY_DEVICE:
		s = xasprintf("step 3: entry %s (every account) -> %s", d->device_id, state);
		break;
	case ABQ_STEP_POLICY:
		s = xasprintf(
		    "step 3: no list entry; the device acknowledged its policy with Status "
		    "%d (%s) and AllowNonProvisionableDevices is 0 -> Blocked",
		    x->in.facts.provision_status,
		    abq_prov_status_text(x->in.facts.provision_status));
		break;
	case ABQ_STEP_LIMIT:
		s = xasprintf("step 4: abqMaxDevicesPerAccount is %" PRId64
		              " and the account has %zu older device%s -> %s",
		              x->in.max_devices, x->in.devices_ahead,
		              x->in.devices_ahead == 1 ? "" : "s", state);
		break;
	case ABQ_STEP_RULE:
		if (v->rule != NULL)
			s = xasprintf("step 5: rule %" PRId64 " (%s) matches %s '%s'", v->rule_id,
			              rule, fact_label(v->rule->charac),
			              fact_of(&x->in.facts, v->rule->charac) != NULL
			                  ? fact_of(&x->in.facts, v->rule->charac)
			                  : "");
		else
			s = xasprintf("step 5: rule %" PRId64 " matches -> %s", v->rule_id, state);
		break;
	case ABQ_STEP_DISCOVERY:
		s = xasprintf("step 5: rule %" PRId64 " (%s) needs the %s, not reported yet -> "
		              "Discovery",
		              v->rule_id, rule != NULL ? rule : "?", fact_label(v->missing));
		break;
	case ABQ_STEP_MODE:
	default:
		s = xasprintf("step 6: no entry, no rule matched; mode %s (%s) -> %s", mode, src,
		              state);
		break;
	}
	free(src);
	free(rule);
	return s;
}

/* The explain object of docs/abqctl.md. */
json_t *
explain_json(const struct abq_explanation *x)
{
	json_t *o = json_object();
	char *text = abq_explain_text(x);

	json_object_set_new(o, "account", jstr(x->device.account));
	json_object_set_new(o, "deviceId", jstr(x->device.device_id));
	json_object_set_new(o, "known", json_boolean(x->known));
	json_object_set_new(o, "domain", jstr(x->domain));
	json_object_set_new(o, "mode", json_string(abq_mode_name(x->in.mode)));
	json_object_set_new(
	    o, "modeSource",
	    json_string(x->mode_is_default ? "default" : abq_scope_name(x->mode_scope)));
	json_object_set_new(o, "step", json_integer(step_number(x->verdict.step)));
	json_object_set_new(o, "state", jstate(x->verdict.state));
	json_object_set_new(o, "reason", jreason(x->verdict.reason));
	json_object_set_new(o, "ruleId", jid(x->verdict.rule_id));
	json_object_set_new(o, "rule",
	                    x->verdict.rule != NULL ? rule_json(x->verdict.rule) : json_null());
	json_object_set_new(o, "missing",
	                    x->verdict.step == ABQ_STEP_DISCOVERY
	                        ? json_string(abq_charac_name(x->verdict.missing))
	                        : json_null());
	json_object_set_new(o, "explanation", json_string(text));
	if (x->known) {
		json_object_set_new(o, "recordedState", jstate(x->device.state));
		json_object_set_new(o, "recordedReason", jreason(x->device.reason));
	}
	free(text);
	return o;
}
