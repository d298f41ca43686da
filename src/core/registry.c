/*
 * registry.c: the operations that change the device registry.
 *
 * Each public function opens one store transaction, makes its change, writes a
 * history row and a change-log row for everything it touched, decides the
 * affected devices anew with the engine, records every state that changed, and
 * commits; or rolls back on any failure and in a dry run. Device records are
 * collected during an iteration and written after it, so that no write ever
 * happens under an open store iterator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/notify.h"
#include "core/registry.h"
#include "lib/attrs.h"
#include "lib/provision.h"
#include "lib/util.h"

/* Release what an outcome holds and zero it. */
void
abq_outcome_clear(struct abq_outcome *o)
{
	for (size_t i = 0; i < o->changed_count; i++) {
		free(o->changed[i].account);
		free(o->changed[i].device_id);
	}
	free(o->changed);
	memset(o, 0, sizeof(*o));
}

/* Append a state transition of (account, device_id) to the outcome. */
static void
outcome_add(struct abq_outcome *o, const char *account, const char *device_id, enum abq_state os,
            enum abq_reason orr, int64_t orule, enum abq_state ns, enum abq_reason nr,
            int64_t nrule)
{
	if (o == NULL)
		return;
	if (o->changed_count == o->changed_cap) {
		o->changed_cap = o->changed_cap ? o->changed_cap * 2 : 16;
		o->changed = xrealloc(o->changed, o->changed_cap * sizeof(*o->changed));
	}
	struct abq_transition *t = &o->changed[o->changed_count++];
	t->account = xstrdup(account);
	t->device_id = xstrdup(device_id);
	t->old_state = os;
	t->old_reason = orr;
	t->old_rule = orule;
	t->new_state = ns;
	t->new_reason = nr;
	t->new_rule = nrule;
}

/*
 * A state as history shows it: "Quarantined (Mode)", "Blocked (Rule 3)". The
 * result is a new string.
 */
static char *
state_text(enum abq_state st, enum abq_reason r, int64_t rule)
{
	if (st == ABQ_STATE_NONE)
		return NULL;
	if (r == ABQ_REASON_RULE || r == ABQ_REASON_DISCOVERY)
		return xasprintf("%s (%s %lld)", abq_state_name(st), abq_reason_name(r),
		                 (long long)rule);
	return xasprintf("%s (%s)", abq_state_name(st), abq_reason_name(r));
}

/* "DEVICEID/account" or "DEVICEID": how entries and devices are named in history. */
static char *
subject_of(const char *device_id, const char *account)
{
	return account ? xasprintf("%s/%s", device_id, account) : xstrdup(device_id);
}

/* Turn a store error into the caller's message and return -1. */
static int
store_fail(char **errmsg_r, const char *errstr)
{
	*errmsg_r = xasprintf("store: %s", errstr ? errstr : "unknown error");
	return -1;
}

/*
 * Write one history row. All string arguments may be NULL except who, what and
 * subject.
 */
static int
history(const struct abq_ctx *c, const char *what, const char *subject, const char *old_value,
        const char *new_value, const char *reason, const char *device_id, const char *account,
        char **errmsg_r)
{
	struct abq_history h = {
	    .at = c->now,
	    .who = (char *)c->who,
	    .what = (char *)what,
	    .subject = (char *)subject,
	    .old_value = (char *)old_value,
	    .new_value = (char *)new_value,
	    .reason = (char *)reason,
	    .device_id = (char *)device_id,
	    .account = (char *)account,
	};
	const char *err;
	if (abq_store_history_add(c->store, &h, &err) < 0)
		return store_fail(errmsg_r, err);
	return 0;
}

/* Write one change-log row. */
static int
change(const struct abq_ctx *c, enum abq_change_kind kind, const char *key, char **errmsg_r)
{
	const char *err;
	if (abq_store_change_add(c->store, kind, key, c->now, &err) < 0)
		return store_fail(errmsg_r, err);
	return 0;
}

/* The change-log key of a device: "account\nDEVICEID". */
static char *
device_key(const char *account, const char *device_id)
{
	return xasprintf("%s\n%s", account, device_id);
}

/* Callbacks that load store records into a policy. */
struct load_arg {
	struct abq_policy *p;
	char *err;
};

static int
load_attr(void *arg, const struct abq_attr *a)
{
	struct load_arg *la = arg;
	return abq_policy_add_attr(la->p, a, &la->err) < 0 ? 1 : 0;
}

static int
load_entry(void *arg, const struct abq_entry *e)
{
	struct load_arg *la = arg;
	abq_policy_add_entry(la->p, e);
	return 0;
}

static int
load_rule(void *arg, const struct abq_rule *r)
{
	struct load_arg *la = arg;
	abq_policy_add_rule(la->p, r);
	return 0;
}

/*
 * Build the policy from the store: attributes, rules and, when with_entries is
 * set, every list entry. Operations on one DeviceId leave the entries out and
 * look up the two entries they need instead.
 */
static struct abq_policy *
policy_load(struct abq_store *s, const char *default_domain, bool with_entries, char **errmsg_r)
{
	struct load_arg la = {.p = abq_policy_new(default_domain)};
	const char *err = NULL;
	int rv;

	if ((rv = abq_store_attr_iter(s, load_attr, &la, &err)) != 0)
		goto fail;
	if (with_entries &&
	    (rv = abq_store_entry_iter(s, ABQ_STATE_NONE, load_entry, &la, &err)) != 0)
		goto fail;
	if ((rv = abq_store_rule_iter(s, NULL, true, load_rule, &la, &err)) != 0)
		goto fail;
	if (abq_policy_finish(la.p, &la.err) < 0)
		goto fail;
	return la.p;
fail:
	if (la.err != NULL) {
		*errmsg_r = xasprintf("store holds a bad value: %s", la.err);
		free(la.err);
	} else {
		*errmsg_r = xasprintf("store: %s", err ? err : "loading the policy failed");
	}
	abq_policy_free(&la.p);
	return NULL;
}

struct abq_policy *
abq_registry_policy(struct abq_store *s, const char *default_domain, char **errmsg_r)
{
	return policy_load(s, default_domain, true, errmsg_r);
}

/*
 * A policy of the attributes alone (with the provisioning values): what
 * abqctl and the API need to show effective values, without the entries and
 * the compiled rules.
 */
struct abq_policy *
abq_registry_attr_policy(struct abq_store *s, const char *default_domain, char **errmsg_r)
{
	struct load_arg la = {.p = abq_policy_new(default_domain)};
	const char *err = NULL;

	if (abq_store_attr_iter(s, load_attr, &la, &err) == 0)
		return la.p;
	if (la.err != NULL) {
		*errmsg_r = xasprintf("store holds a bad value: %s", la.err);
		free(la.err);
	} else {
		*errmsg_r = xasprintf("store: %s", err ? err : "loading the attributes failed");
	}
	abq_policy_free(&la.p);
	return NULL;
}

/* The engine's view of a device record. */
static void
facts_of(const struct abq_device *d, struct abq_facts *f)
{
	f->device_id = d->device_id;
	f->device_type = d->device_type;
	f->model = d->model;
	f->os = d->os;
	f->user_agent = d->user_agent;
	f->first_seen = d->first_seen;
	f->wiped = d->wipe == ABQ_WIPE_ACKNOWLEDGED;
	f->provision_status = d->provision_status;
}

/* Look up the state of one entry, or ABQ_STATE_NONE. */
static int
entry_state(struct abq_store *s, const char *device_id, const char *account, enum abq_state *st_r,
            char **errmsg_r)
{
	struct abq_entry e = {0};
	const char *err;
	int rv = abq_store_entry_get(s, device_id, account, &e, &err);
	if (rv < 0)
		return store_fail(errmsg_r, err);
	*st_r = rv == 1 ? e.state : ABQ_STATE_NONE;
	abq_entry_clear(&e);
	return 0;
}

/*
 * Fill the engine's inputs for device d: the policy's view, the entries (from
 * the policy when it holds them, else from the store), and for the device limit
 * the number of the account's devices seen before this one.
 */
static int
inputs_for(const struct abq_ctx *c, const struct abq_policy *p, bool has_entries,
           const struct abq_device *d, bool is_new, struct abq_inputs *in, char **errmsg_r)
{
	struct abq_facts f;
	const char *err;

	facts_of(d, &f);
	abq_policy_inputs(p, d->account, &f, c->now, in);
	if (!has_entries) {
		if (entry_state(c->store, d->device_id, d->account, &in->entry_account, errmsg_r) <
		        0 ||
		    entry_state(c->store, d->device_id, NULL, &in->entry_device, errmsg_r) < 0)
			return -1;
	}
	in->limit_applies = is_new || d->reason == ABQ_REASON_LIMIT;
	in->devices_ahead = 0;
	if (in->limit_applies && in->max_devices > 0) {
		size_t n;
		if (abq_store_device_count(c->store, d->account, is_new ? 0 : d->first_seen, &n,
		                           &err) < 0)
			return store_fail(errmsg_r, err);
		in->devices_ahead = n;
	}
	return 0;
}

/*
 * Record a new state for device d (already decided): update the record, write
 * history and the change log, and note the transition in the outcome.
 */
static int
record_state(const struct abq_ctx *c, const struct abq_policy *p, struct abq_device *d,
             const struct abq_verdict *v, const char *cause, struct abq_outcome *o, char **errmsg_r)
{
	enum abq_state old_state = d->state;
	char *old = state_text(d->state, d->reason, d->rule_id);
	char *new = state_text(v->state, v->reason, v->rule_id);
	char *subj = subject_of(d->device_id, d->account);
	char *key = device_key(d->account, d->device_id);
	const char *err;
	int rv = -1;

	outcome_add(o, d->account, d->device_id, d->state, d->reason, d->rule_id, v->state,
	            v->reason, v->rule_id);
	d->state = v->state;
	d->reason = v->reason;
	d->rule_id = v->rule_id;
	free(d->state_by);
	d->state_by = xstrdup(c->who);
	d->state_at = c->now;
	if (abq_store_device_put(c->store, d, &err) < 0) {
		store_fail(errmsg_r, err);
		goto out;
	}
	if (history(c, "state", subj, old, new, cause, d->device_id, d->account, errmsg_r) < 0 ||
	    change(c, ABQ_CHANGE_DEVICE, key, errmsg_r) < 0 ||
	    abq_notify_state(c, p, d, old_state, errmsg_r) < 0)
		goto out;
	rv = 0;
out:
	free(old);
	free(new);
	free(subj);
	free(key);
	return rv;
}

/* Whether a verdict differs from the state recorded on d. */
static bool
verdict_differs(const struct abq_device *d, const struct abq_verdict *v)
{
	return d->state != v->state || d->reason != v->reason || d->rule_id != v->rule_id;
}

/* Devices gathered by an iteration, to be decided after it. */
struct devlist {
	struct abq_device *v;
	size_t n, cap;
};

static int
collect_device(void *arg, const struct abq_device *d)
{
	struct devlist *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	abq_device_copy(&l->v[l->n++], d);
	return 0;
}

static void
devlist_free(struct devlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		abq_device_clear(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Decide anew every device the filter selects and record those whose state
 * changes. The policy is loaded here, inside the caller's transaction, so it
 * sees the change just made. A filter on one DeviceId loads no entries.
 */
static int
reevaluate(const struct abq_ctx *c, const struct abq_device_filter *f, const char *cause,
           struct abq_outcome *o, char **errmsg_r)
{
	bool with_entries = f->device_id == NULL;
	struct abq_policy *p = policy_load(c->store, c->default_domain, with_entries, errmsg_r);
	struct devlist l = {0};
	const char *err;
	int rv = -1;

	if (p == NULL)
		return -1;
	if (abq_store_device_iter(c->store, f, collect_device, &l, &err) != 0) {
		store_fail(errmsg_r, err);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct abq_inputs in;
		struct abq_verdict v;
		if (inputs_for(c, p, with_entries, &l.v[i], false, &in, errmsg_r) < 0)
			goto out;
		abq_decide(&in, &v);
		if (verdict_differs(&l.v[i], &v) &&
		    record_state(c, p, &l.v[i], &v, cause, o, errmsg_r) < 0)
			goto out;
	}
	rv = 0;
out:
	devlist_free(&l);
	abq_policy_free(&p);
	return rv;
}

/* Begin the operation's transaction. */
static int
op_begin(const struct abq_ctx *c, struct abq_outcome *o, char **errmsg_r)
{
	const char *err;
	if (o != NULL)
		o->dry_run = c->dry_run;
	if (abq_store_begin(c->store, &err) < 0)
		return store_fail(errmsg_r, err);
	return 0;
}

/*
 * End the operation: on success commit (or roll back a dry run); on failure roll
 * back. Returns rv, or -1 when the commit fails.
 */
static int
op_end(const struct abq_ctx *c, int rv, char **errmsg_r)
{
	const char *err;
	if (rv != 0 || c->dry_run) {
		abq_store_rollback(c->store);
		return rv;
	}
	if (abq_store_commit(c->store, &err) < 0) {
		abq_store_rollback(c->store);
		return store_fail(errmsg_r, err);
	}
	return 0;
}

/*
 * An optional account argument in its one canonical form (product.md,
 * "Identity": DOMAIN\ dropped, lower-cased, a bare name given the default
 * domain); refuses (1) an unusable one.
 */
static int
norm_account(const struct abq_ctx *c, const char *account, char **out, char **errmsg_r)
{
	*out = NULL;
	if (account == NULL)
		return 0;
	if ((*out = account_canonical(account, c->default_domain)) == NULL) {
		*errmsg_r = xasprintf("'%s' is not a valid account", account);
		return 1;
	}
	return 0;
}

/* Refuse (1) a DeviceId the registry cannot hold. */
static int
check_device_id(const char *device_id, char **errmsg_r)
{
	if (device_id == NULL || !device_id_valid(device_id)) {
		*errmsg_r = xasprintf("'%s' is not a valid DeviceId (1-64 printable characters, "
		                      "no '/' or spaces)",
		                      device_id ? device_id : "");
		return 1;
	}
	return 0;
}

/* Refuse (1) a state an administrator may not set. */
static int
check_admin_state(enum abq_state st, char **errmsg_r)
{
	if (st != ABQ_STATE_ALLOWED && st != ABQ_STATE_BLOCKED && st != ABQ_STATE_QUARANTINED) {
		*errmsg_r = xasprintf("state must be Allowed, Blocked or Quarantined");
		return 1;
	}
	return 0;
}

/*
 * Write one entry with its history and change-log rows (no re-evaluation).
 * reason goes into history ("import", or NULL).
 */
static int
put_entry(const struct abq_ctx *c, const char *device_id, const char *account, enum abq_state st,
          const char *reason, bool log_change, char **errmsg_r)
{
	struct abq_entry old = {0};
	struct abq_entry e = {
	    .device_id = (char *)device_id,
	    .account = (char *)account,
	    .state = st,
	    .created_by = (char *)c->who,
	    .created_at = c->now,
	};
	char *subj = subject_of(device_id, account);
	const char *err;
	int rv = -1, found;

	if ((found = abq_store_entry_get(c->store, device_id, account, &old, &err)) < 0 ||
	    abq_store_entry_put(c->store, &e, &err) < 0) {
		store_fail(errmsg_r, err);
		goto out;
	}
	if (history(c, "entry", subj, found == 1 ? abq_state_name(old.state) : NULL,
	            abq_state_name(st), reason, device_id, account, errmsg_r) < 0)
		goto out;
	if (log_change && change(c, ABQ_CHANGE_ENTRY, subj, errmsg_r) < 0)
		goto out;
	rv = 0;
out:
	abq_entry_clear(&old);
	free(subj);
	return rv;
}

int
abq_registry_set_entry(const struct abq_ctx *c, const char *device_id, const char *account,
                       enum abq_state state, struct abq_outcome *o, char **errmsg_r)
{
	char *acct = NULL;
	int rv;

	if ((rv = check_device_id(device_id, errmsg_r)) != 0 ||
	    (rv = check_admin_state(state, errmsg_r)) != 0 ||
	    (rv = norm_account(c, account, &acct, errmsg_r)) != 0)
		return rv;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(acct);
		return -1;
	}
	struct abq_device_filter f = {.device_id = device_id, .account = acct};
	char *subj = subject_of(device_id, acct);
	char *cause = xasprintf("entry %s", subj);
	rv = put_entry(c, device_id, acct, state, NULL, true, errmsg_r);
	if (rv == 0) {
		if (o != NULL)
			o->affected = 1;
		rv = reevaluate(c, &f, cause, o, errmsg_r);
	}
	free(subj);
	free(cause);
	free(acct);
	return op_end(c, rv, errmsg_r);
}

/* Gather the devices of device_id (one account's when account is set). */
static int
devices_of(const struct abq_ctx *c, const char *device_id, const char *account, struct devlist *l,
           char **errmsg_r)
{
	struct abq_device_filter f = {.device_id = device_id, .account = account};
	const char *err;
	if (abq_store_device_iter(c->store, &f, collect_device, l, &err) != 0)
		return store_fail(errmsg_r, err);
	return 0;
}

/*
 * Remove the device records in l, each with a history row (what: reason_what)
 * and a change-log row, noting each as a transition to no state.
 */
static int
forget_devices(const struct abq_ctx *c, struct devlist *l, const char *what, const char *reason,
               struct abq_outcome *o, char **errmsg_r)
{
	for (size_t i = 0; i < l->n; i++) {
		struct abq_device *d = &l->v[i];
		char *old = state_text(d->state, d->reason, d->rule_id);
		char *subj = subject_of(d->device_id, d->account);
		char *key = device_key(d->account, d->device_id);
		const char *err;
		size_t n;
		int rv = 0;

		if (abq_store_device_delete(c->store, d->device_id, d->account, &n, &err) < 0)
			rv = store_fail(errmsg_r, err);
		else if (history(c, what, subj, old, NULL, reason, d->device_id, d->account,
		                 errmsg_r) < 0 ||
		         change(c, ABQ_CHANGE_DEVICE, key, errmsg_r) < 0)
			rv = -1;
		else
			outcome_add(o, d->account, d->device_id, d->state, d->reason, d->rule_id,
			            ABQ_STATE_NONE, ABQ_REASON_NONE, 0);
		free(old);
		free(subj);
		free(key);
		if (rv < 0)
			return -1;
	}
	return 0;
}

int
abq_registry_delete(const struct abq_ctx *c, const char *device_id, const char *account,
                    struct abq_outcome *o, char **errmsg_r)
{
	struct devlist l = {0};
	char *acct = NULL, *subj = NULL;
	const char *err;
	size_t nentries = 0;
	int rv;

	if ((rv = check_device_id(device_id, errmsg_r)) != 0 ||
	    (rv = norm_account(c, account, &acct, errmsg_r)) != 0)
		return rv;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(acct);
		return -1;
	}
	subj = subject_of(device_id, acct);
	if ((rv = devices_of(c, device_id, acct, &l, errmsg_r)) < 0)
		goto out;
	if (abq_store_entry_delete(c->store, device_id, acct, acct == NULL, &nentries, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (l.n == 0 && nentries == 0) {
		*errmsg_r = xasprintf("no device or entry %s", subj);
		rv = 1;
		goto out;
	}
	if (nentries > 0 &&
	    (history(c, "entry", subj, "present", NULL, "delete", device_id, acct, errmsg_r) < 0 ||
	     change(c, ABQ_CHANGE_ENTRY, subj, errmsg_r) < 0)) {
		rv = -1;
		goto out;
	}
	if ((rv = forget_devices(c, &l, "delete", NULL, o, errmsg_r)) < 0)
		goto out;
	if (o != NULL)
		o->affected = l.n + nentries;
	rv = 0;
out:
	devlist_free(&l);
	free(acct);
	free(subj);
	return op_end(c, rv, errmsg_r);
}

/*
 * The device (account, device_id) an operation on one recorded device (a
 * wipe, a Policy Status) names, read inside the operation's transaction: 1
 * (refused, *errmsg_r) when it is not recorded.
 */
static int
named_device(const struct abq_ctx *c, const char *account, const char *device_id, char **acct_r,
             struct abq_device *d, char **errmsg_r)
{
	const char *err;
	int rv;

	if ((rv = check_device_id(device_id, errmsg_r)) != 0 ||
	    (rv = norm_account(c, account, acct_r, errmsg_r)) != 0)
		return rv;
	if (*acct_r == NULL) {
		*errmsg_r = xstrdup("the device's account is required");
		return 1;
	}
	rv = abq_store_device_get(c->store, *acct_r, device_id, d, &err);
	if (rv < 0)
		return store_fail(errmsg_r, err);
	if (rv == 0) {
		*errmsg_r = xasprintf("no device %s for account %s", device_id, *acct_r);
		return 1;
	}
	return 0;
}

/* Write d back with its history row ("wipe": old -> new) and change-log row. */
static int
wipe_record(const struct abq_ctx *c, const struct abq_device *d, const char *old, const char *new,
            char **errmsg_r)
{
	char *subj = subject_of(d->device_id, d->account);
	char *key = device_key(d->account, d->device_id);
	const char *err;
	int rv = 0;

	if (abq_store_device_put(c->store, d, &err) < 0)
		rv = store_fail(errmsg_r, err);
	else if (history(c, "wipe", subj, old, new, NULL, d->device_id, d->account, errmsg_r) < 0 ||
	         change(c, ABQ_CHANGE_DEVICE, key, errmsg_r) < 0)
		rv = -1;
	free(subj);
	free(key);
	return rv;
}

int
abq_registry_wipe(const struct abq_ctx *c, const char *account, const char *device_id,
                  bool account_only, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	char *acct = NULL;
	int rv;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = named_device(c, account, device_id, &acct, &d, errmsg_r)) != 0)
		goto out;
	if (d.wipe == ABQ_WIPE_ACKNOWLEDGED) {
		*errmsg_r = xasprintf("device %s of %s is already wiped; delete it to let it sync "
		                      "again",
		                      d.device_id, d.account);
		rv = 1;
		goto out;
	}
	/* AccountOnlyRemoteWipe exists from 16.1; an older device would get nothing. */
	if (account_only && (d.eas_version == NULL || strtod(d.eas_version, NULL) < 16.1)) {
		*errmsg_r = xasprintf("device %s of %s speaks EAS %s: an account-only wipe needs "
		                      "16.1; ask for a full wipe",
		                      d.device_id, d.account, d.eas_version ? d.eas_version : "?");
		rv = 1;
		goto out;
	}
	const char *old = d.wipe == ABQ_WIPE_NONE ? NULL
	                  : d.wipe_account_only   ? "requested (account only)"
	                                          : "requested";
	d.wipe = ABQ_WIPE_REQUESTED;
	d.wipe_account_only = account_only;
	free(d.wipe_by);
	d.wipe_by = xstrdup(c->who);
	d.wipe_at = c->now;
	d.wipe_acked_at = 0;
	rv = wipe_record(c, &d, old, account_only ? "requested (account only)" : "requested",
	                 errmsg_r);
	if (rv == 0 && o != NULL) {
		o->affected = 1;
		outcome_add(o, d.account, d.device_id, d.state, d.reason, d.rule_id, d.state,
		            d.reason, d.rule_id);
	}
out:
	abq_device_clear(&d);
	free(acct);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_wipe_abort(const struct abq_ctx *c, const char *account, const char *device_id,
                        struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	char *acct = NULL;
	char t[32];
	int rv;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = named_device(c, account, device_id, &acct, &d, errmsg_r)) != 0)
		goto out;
	if (d.wipe == ABQ_WIPE_NONE) {
		*errmsg_r =
		    xasprintf("no wipe was asked for device %s of %s", d.device_id, d.account);
		rv = 1;
		goto out;
	}
	if (d.wipe == ABQ_WIPE_ACKNOWLEDGED) {
		*errmsg_r = xasprintf("device %s of %s confirmed its wipe at %s: it cannot be "
		                      "aborted",
		                      d.device_id, d.account, format_time(d.wipe_acked_at, t));
		rv = 1;
		goto out;
	}
	d.wipe = ABQ_WIPE_NONE;
	d.wipe_account_only = false;
	free(d.wipe_by);
	d.wipe_by = NULL;
	d.wipe_at = 0;
	rv = wipe_record(c, &d, "requested", "aborted", errmsg_r);
	if (rv == 0 && o != NULL)
		o->affected = 1;
out:
	abq_device_clear(&d);
	free(acct);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_wipe_confirmed(const struct abq_ctx *c, const char *account, const char *device_id,
                            struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	struct abq_policy *p = NULL;
	char *acct = NULL;
	int rv;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = named_device(c, account, device_id, &acct, &d, errmsg_r)) != 0)
		goto out;
	if (d.wipe != ABQ_WIPE_REQUESTED) {
		*errmsg_r =
		    xasprintf("no wipe is pending for device %s of %s", d.device_id, d.account);
		rv = 1;
		goto out;
	}
	d.wipe = ABQ_WIPE_ACKNOWLEDGED;
	d.wipe_acked_at = c->now;
	if ((rv = wipe_record(c, &d, "requested", "acknowledged", errmsg_r)) != 0)
		goto out;
	/* Wiped: Blocked (reason Wipe) from now on, through the engine's first step. */
	p = policy_load(c->store, c->default_domain, false, errmsg_r);
	if (p == NULL) {
		rv = -1;
		goto out;
	}
	struct abq_inputs in;
	struct abq_verdict v;
	if ((rv = inputs_for(c, p, false, &d, false, &in, errmsg_r)) != 0)
		goto out;
	abq_decide(&in, &v);
	if (verdict_differs(&d, &v) &&
	    (rv = record_state(c, p, &d, &v, "wipe acknowledged", o, errmsg_r)) != 0)
		goto out;
	rv = abq_notify_wiped(c, p, &d, errmsg_r);
out:
	abq_policy_free(&p);
	abq_device_clear(&d);
	free(acct);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_reset_device(const struct abq_ctx *c, const char *account, const char *device_id,
                          struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	char *acct = NULL, *subj = NULL, *key = NULL, *old = NULL;
	const char *err;
	size_t n = 0;
	int rv;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = named_device(c, account, device_id, &acct, &d, errmsg_r)) != 0)
		goto out;
	if (abq_store_syncstate_delete(c->store, d.account, d.device_id, NULL, &n, &err) < 0 ||
	    abq_store_clientid_delete(c->store, d.account, d.device_id, NULL, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	subj = subject_of(d.device_id, d.account);
	key = device_key(d.account, d.device_id);
	old = xasprintf("%zu collection%s", n, n == 1 ? "" : "s");
	if (history(c, "reset", subj, old, "none", NULL, d.device_id, d.account, errmsg_r) < 0 ||
	    change(c, ABQ_CHANGE_DEVICE, key, errmsg_r) < 0) {
		rv = -1;
		goto out;
	}
	if (o != NULL)
		o->affected = n;
out:
	abq_device_clear(&d);
	free(acct);
	free(subj);
	free(key);
	free(old);
	return op_end(c, rv, errmsg_r);
}

/* A Policy Status as history shows it: "2 (partially applied)"; NULL for 0. */
static char *
prov_status_text(int status)
{
	return status != 0 ? xasprintf("%d (%s)", status, abq_prov_status_text(status)) : NULL;
}

int
abq_registry_provision_status(const struct abq_ctx *c, const char *account, const char *device_id,
                              int status, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	struct abq_policy *p = NULL;
	char *acct = NULL, *old = NULL, *new = NULL, *subj = NULL, *key = NULL;
	const char *err;
	int rv;

	if (status < 1 || status > 4) {
		*errmsg_r = xasprintf("%d is not a Policy Status (1 to 4)", status);
		return 1;
	}
	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = named_device(c, account, device_id, &acct, &d, errmsg_r)) != 0 ||
	    d.provision_status == status)
		goto out;
	old = prov_status_text(d.provision_status);
	new = prov_status_text(status);
	subj = subject_of(d.device_id, d.account);
	key = device_key(d.account, d.device_id);
	d.provision_status = status;
	if (abq_store_device_put(c->store, &d, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if ((rv = history(c, "provision", subj, old, new, NULL, d.device_id, d.account, errmsg_r)) <
	        0 ||
	    (rv = change(c, ABQ_CHANGE_DEVICE, key, errmsg_r)) < 0)
		goto out;
	if (o != NULL)
		o->affected = 1;
	/* Decided anew: with AllowNonProvisionableDevices 0 it may be Blocked (Policy) now. */
	if ((p = policy_load(c->store, c->default_domain, false, errmsg_r)) == NULL) {
		rv = -1;
		goto out;
	}
	struct abq_inputs in;
	struct abq_verdict v;
	if ((rv = inputs_for(c, p, false, &d, false, &in, errmsg_r)) != 0)
		goto out;
	abq_decide(&in, &v);
	if (verdict_differs(&d, &v))
		rv = record_state(c, p, &d, &v, "policy status", o, errmsg_r);
out:
	abq_policy_free(&p);
	abq_device_clear(&d);
	free(acct);
	free(old);
	free(new);
	free(subj);
	free(key);
	return op_end(c, rv, errmsg_r);
}

/* Strip leading and trailing blanks (and a CR) of s[0..*len) in place. */
static const char *
trim(const char *s, size_t *len)
{
	while (*len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		(*len)--;
	}
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t' || s[*len - 1] == '\r'))
		(*len)--;
	return s;
}

void
abq_import_free(struct abq_import_line *lines, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(lines[i].device_id);
		free(lines[i].account);
	}
	free(lines);
}

/* Append "line N: msg" to the growing error report. */
static void
report_line(char **report, size_t lineno, const char *msg)
{
	char *next = *report ? xasprintf("%s\nline %zu: %s", *report, lineno, msg)
	                     : xasprintf("line %zu: %s", lineno, msg);
	free(*report);
	*report = next;
}

int
abq_import_parse(const char *text, size_t len, struct abq_import_line **lines_r, size_t *count_r,
                 char **errmsg_r)
{
	struct abq_import_line *v = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char *report = NULL;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *s = trim(p, &l);
		p = nl ? nl + 1 : end;
		lineno++;
		if (l == 0 || s[0] == '#')
			continue;
		if (memchr(s, '\0', l) != NULL) {
			report_line(&report, lineno, "contains a NUL byte");
			continue;
		}
		const char *slash = memchr(s, '/', l);
		char *id = xstrndup(s, slash ? (size_t)(slash - s) : l);
		char *acct = NULL;
		if (!device_id_valid(id)) {
			char *m = xasprintf("'%s' is not a valid DeviceId", id);
			report_line(&report, lineno, m);
			free(m);
			free(id);
			continue;
		}
		if (slash != NULL) {
			char *raw = xstrndup(slash + 1, l - (size_t)(slash + 1 - s));
			acct = account_normalize(raw);
			if (acct == NULL) {
				char *m = xasprintf("'%s' is not a valid account", raw);
				report_line(&report, lineno, m);
				free(m);
				free(raw);
				free(id);
				continue;
			}
			free(raw);
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n].device_id = id;
		v[n].account = acct;
		n++;
	}
	if (report != NULL) {
		abq_import_free(v, n);
		*errmsg_r = report;
		return 1;
	}
	*lines_r = v;
	*count_r = n;
	return 0;
}

int
abq_registry_import(const struct abq_ctx *c, const struct abq_import_line *lines, size_t n,
                    enum abq_state state, struct abq_outcome *o, char **errmsg_r)
{
	int rv;

	if ((rv = check_admin_state(state, errmsg_r)) != 0)
		return rv;
	for (size_t i = 0; i < n; i++) {
		if ((rv = check_device_id(lines[i].device_id, errmsg_r)) != 0)
			return rv;
	}
	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	/* One change-log row ("*": every entry) rather than one per line. */
	/* The file's accounts were checked by abq_import_parse; here they take
	 * their canonical form, which needs the default domain. */
	for (size_t i = 0; i < n && rv == 0; i++) {
		char *acct = NULL;

		if ((rv = norm_account(c, lines[i].account, &acct, errmsg_r)) == 0)
			rv = put_entry(c, lines[i].device_id, acct, state, "import", false,
			               errmsg_r);
		free(acct);
	}
	if (rv == 0 && n > 0)
		rv = change(c, ABQ_CHANGE_ENTRY, "*", errmsg_r);
	if (rv == 0) {
		struct abq_device_filter f = {0};
		if (o != NULL)
			o->affected = n;
		rv = reevaluate(c, &f, "import", o, errmsg_r);
	}
	return op_end(c, rv, errmsg_r);
}

/* "DeviceModel glob 'SM-*' -> Blocked, order 10, domain example.com": a rule for history. */
static char *
rule_text(const struct abq_rule *r)
{
	return xasprintf("%s %s '%s' -> %s, order %lld%s%s", abq_charac_name(r->charac),
	                 abq_match_name(r->match), r->pattern, abq_state_name(r->level),
	                 (long long)r->order, r->domain ? ", domain " : "",
	                 r->domain ? r->domain : "");
}

/* Finding a rule by (charac, match, pattern) or by pattern alone in one domain. */
struct rule_find {
	const struct abq_rule *want; /* charac/match/pattern to match, or NULL */
	const char *pattern;         /* pattern alone, when want is NULL */
	struct abq_rule found;
	size_t matches;
};

static int
find_rule(void *arg, const struct abq_rule *r)
{
	struct rule_find *rf = arg;
	bool hit = rf->want ? (r->charac == rf->want->charac && r->match == rf->want->match &&
	                       strcmp(r->pattern, rf->want->pattern) == 0)
	                    : strcmp(r->pattern, rf->pattern) == 0;
	if (!hit)
		return 0;
	if (rf->matches++ == 0) {
		rf->found = *r;
		rf->found.pattern = xstrdup(r->pattern);
		rf->found.domain = xstrdup_null(r->domain);
		rf->found.created_by = xstrdup_null(r->created_by);
	}
	return 0;
}

/* Decide again the devices a rule or attribute in this domain (NULL: all) can touch. */
static int
reevaluate_domain(const struct abq_ctx *c, const char *domain, const char *cause,
                  struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device_filter f = {.domain = domain, .default_domain = c->default_domain};
	return reevaluate(c, &f, cause, o, errmsg_r);
}

/* A rule's domain as the registry keeps it: NULL (global) or lower case; 1 when invalid. */
static int
rule_domain(const char *domain, char **out_r, char **errmsg_r)
{
	*out_r = NULL;
	if (domain == NULL)
		return 0;
	if (domain[0] == '\0' || strchr(domain, '/') || strchr(domain, ' ')) {
		*errmsg_r = xasprintf("'%s' is not a valid domain", domain);
		return 1;
	}
	*out_r = str_lower(xstrdup(domain));
	return 0;
}

int
abq_registry_rule_set(const struct abq_ctx *c, const struct abq_rule *r, struct abq_outcome *o,
                      char **errmsg_r)
{
	struct abq_rule nr = *r;
	struct rule_find rf = {.want = r};
	char *msg = NULL, *domain = NULL, *oldtxt = NULL, *newtxt = NULL, *subj = NULL;
	const char *err;
	int rv;

	if (abq_rule_check(r, &msg) < 0) {
		*errmsg_r = msg;
		return 1;
	}
	if (rule_domain(r->domain, &domain, errmsg_r) != 0)
		return 1;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(domain);
		return -1;
	}
	if (abq_store_rule_iter(c->store, domain, false, find_rule, &rf, &err) != 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	nr.domain = domain;
	nr.created_by = (char *)c->who;
	nr.created_at = c->now;
	if (rf.matches > 0) {
		nr.id = rf.found.id;
		oldtxt = rule_text(&rf.found);
		if (abq_store_rule_update(c->store, &nr, &err) < 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
	} else if (abq_store_rule_insert(c->store, &nr, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	newtxt = rule_text(&nr);
	subj = xasprintf("rule %lld", (long long)nr.id);
	if (o != NULL) {
		o->id = nr.id;
		o->affected = 1;
	}
	if ((rv = history(c, "rule", subj, oldtxt, newtxt, NULL, NULL, NULL, errmsg_r)) < 0)
		goto out;
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)nr.id);
	if ((rv = change(c, ABQ_CHANGE_RULE, key, errmsg_r)) < 0)
		goto out;
	rv = reevaluate_domain(c, domain, subj, o, errmsg_r);
out:
	if (rf.matches > 0)
		abq_rule_clear(&rf.found);
	free(domain);
	free(oldtxt);
	free(newtxt);
	free(subj);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_rule_delete(const struct abq_ctx *c, int64_t id, const char *pattern,
                         const char *domain, struct abq_outcome *o, char **errmsg_r)
{
	struct rule_find rf = {.pattern = pattern};
	char *dom = domain ? str_lower(xstrdup(domain)) : NULL;
	char *txt = NULL, *subj = NULL;
	const char *err;
	int rv;

	if (op_begin(c, o, errmsg_r) < 0) {
		free(dom);
		return -1;
	}
	if (pattern == NULL) {
		rv = abq_store_rule_get(c->store, id, &rf.found, &err);
		if (rv < 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
		rf.matches = (size_t)rv;
		if (rv == 0) {
			*errmsg_r = xasprintf("no rule %lld", (long long)id);
			rv = 1;
			goto out;
		}
	} else {
		if (abq_store_rule_iter(c->store, dom, false, find_rule, &rf, &err) != 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
		if (rf.matches != 1) {
			*errmsg_r = rf.matches == 0
			                ? xasprintf("no rule with pattern '%s' (%s%s)", pattern,
			                            dom ? "domain " : "global", dom ? dom : "")
			                : xasprintf("%zu rules have the pattern '%s'; delete by id",
			                            rf.matches, pattern);
			rv = 1;
			goto out;
		}
	}
	if (abq_store_rule_delete(c->store, rf.found.id, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	txt = rule_text(&rf.found);
	subj = xasprintf("rule %lld", (long long)rf.found.id);
	if (o != NULL) {
		o->id = rf.found.id;
		o->affected = 1;
	}
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)rf.found.id);
	if ((rv = history(c, "rule", subj, txt, NULL, "delete", NULL, NULL, errmsg_r)) < 0 ||
	    (rv = change(c, ABQ_CHANGE_RULE, key, errmsg_r)) < 0)
		goto out;
	rv = reevaluate_domain(c, rf.found.domain, subj, o, errmsg_r);
out:
	if (rf.matches > 0)
		abq_rule_clear(&rf.found);
	free(dom);
	free(txt);
	free(subj);
	return op_end(c, rv, errmsg_r);
}

/*
 * Write (canon non-NULL) or remove (canon NULL: refused, 1, when nothing is
 * set there) the value stored as `stored` at (scope, tgt), in one operation:
 * the history row (what), the change-log row, and with reevaluates the
 * scope's devices decided anew. label names the value for people. The
 * attributes and the provisioning keys are both written here.
 */
static int
attr_write(const struct abq_ctx *c, enum abq_scope scope, const char *tgt, const char *stored,
           const char *label, const char *canon, const char *what, bool reevaluates,
           struct abq_outcome *o, char **errmsg_r)
{
	struct abq_attr old = {0};
	char *subj, *key;
	const char *err;
	int rv, found;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	subj = scope == ABQ_SCOPE_GLOBAL ? xasprintf("global %s", label)
	                                 : xasprintf("%s %s %s", abq_scope_name(scope), tgt, label);
	key = scope == ABQ_SCOPE_GLOBAL
	          ? xasprintf("global\n%s", stored)
	          : xasprintf("%s:%s\n%s", abq_scope_name(scope), tgt, stored);
	if ((found = abq_store_attr_get(c->store, scope, tgt, stored, &old, &err)) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (canon == NULL) {
		if (found == 0) {
			*errmsg_r = xasprintf("%s is not set at %s", label,
			                      scope == ABQ_SCOPE_GLOBAL ? "global scope" : subj);
			rv = 1;
			goto out;
		}
		if (abq_store_attr_delete(c->store, scope, tgt, stored, &err) < 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
	} else {
		struct abq_attr a = {
		    .scope = scope,
		    .target = (char *)tgt,
		    .name = (char *)stored,
		    .value = (char *)canon,
		    .set_by = (char *)c->who,
		    .set_at = c->now,
		};
		if (abq_store_attr_put(c->store, &a, &err) < 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
	}
	if (o != NULL)
		o->affected = 1;
	if ((rv = history(c, what, subj, found == 1 ? old.value : NULL, canon, NULL, NULL,
	                  scope == ABQ_SCOPE_ACCOUNT ? tgt : NULL, errmsg_r)) < 0 ||
	    (rv = change(c, ABQ_CHANGE_ATTR, key, errmsg_r)) < 0)
		goto out;
	rv = 0;
	if (reevaluates) {
		struct abq_device_filter f = {.default_domain = c->default_domain};
		if (scope == ABQ_SCOPE_DOMAIN)
			f.domain = tgt;
		else if (scope == ABQ_SCOPE_ACCOUNT)
			f.account = tgt;
		rv = reevaluate(c, &f, subj, o, errmsg_r);
	}
out:
	abq_attr_clear(&old);
	free(subj);
	free(key);
	return op_end(c, rv, errmsg_r);
}

/* The list of attribute names, for an error message. */
static char *
attr_names(void)
{
	char *s = NULL;
	for (const struct abq_attr_def *d = abq_attr_defs(); d->name != NULL; d++) {
		char *n = s ? xasprintf("%s, %s", s, d->name) : xstrdup(d->name);
		free(s);
		s = n;
	}
	return s;
}

int
abq_registry_attr_set(const struct abq_ctx *c, enum abq_scope scope, const char *target,
                      const char *name, const char *value, struct abq_outcome *o, char **errmsg_r)
{
	const struct abq_attr_def *def = abq_attr_find(name);
	char *canon = NULL, *tgt = NULL, *msg = NULL;
	int rv;

	if (def == NULL) {
		char *names = attr_names();
		*errmsg_r = xasprintf("unknown attribute '%s' (known: %s)", name, names);
		free(names);
		return 1;
	}
	if (!(def->scopes & (1u << scope))) {
		*errmsg_r =
		    xasprintf("%s cannot be set at %s scope", def->name, abq_scope_name(scope));
		return 1;
	}
	if (scope == ABQ_SCOPE_ACCOUNT) {
		if ((rv = norm_account(c, target, &tgt, errmsg_r)) != 0)
			return rv;
		if (tgt == NULL) {
			*errmsg_r = xstrdup("an account is required");
			return 1;
		}
	} else if (scope == ABQ_SCOPE_DOMAIN) {
		if (target == NULL || target[0] == '\0' || strpbrk(target, "/ \t@") != NULL) {
			*errmsg_r = xasprintf("'%s' is not a valid domain", target ? target : "");
			return 1;
		}
		tgt = str_lower(xstrdup(target));
	}
	if (value != NULL && abq_attr_validate(def, value, &canon, &msg) < 0) {
		*errmsg_r = msg;
		free(tgt);
		return 1;
	}
	rv = attr_write(c, scope, tgt, def->name, def->name, canon, "attribute", def->reevaluates,
	                o, errmsg_r);
	free(canon);
	free(tgt);
	return rv;
}

/*
 * Set (value non-NULL) or unset one provisioning key at a scope. The value is
 * stored in the attributes table as ABQ_PROV_PREFIX + key, with a history row
 * ("provisioning") and a change-log row in the same transaction: the daemon's
 * view rebuilds its policy at its next refresh, and the policy version of the
 * accounts concerned changes with it. AllowNonProvisionableDevices decides
 * (engine step 3, reason Policy): the devices of the scope are decided anew
 * with it, as an attribute that reevaluates; the other keys decide nothing.
 */
int
abq_registry_prov_set(const struct abq_ctx *c, enum abq_scope scope, const char *target,
                      const char *key, const char *value, struct abq_outcome *o, char **errmsg_r)
{
	const struct abq_prov_def *def = abq_prov_find(key);
	char *canon = NULL, *tgt = NULL, *name = NULL;
	int rv;

	if (def == NULL || key == NULL ||
	    strncasecmp(key, ABQ_PROV_PREFIX, ABQ_PROV_PREFIX_LEN) == 0) {
		*errmsg_r = xasprintf("unknown provisioning key '%s' (known: %s)", key ? key : "",
		                      abq_prov_names());
		return 1;
	}
	if (scope == ABQ_SCOPE_ACCOUNT) {
		if ((rv = norm_account(c, target, &tgt, errmsg_r)) != 0)
			return rv;
		if (tgt == NULL) {
			*errmsg_r = xstrdup("an account is required");
			return 1;
		}
	} else if (scope == ABQ_SCOPE_DOMAIN) {
		if (target == NULL || !domain_valid(target)) {
			*errmsg_r = xasprintf("'%s' is not a valid domain", target ? target : "");
			return 1;
		}
		tgt = str_lower(xstrdup(target));
	}
	if (value != NULL && abq_prov_validate(def, value, &canon, errmsg_r) < 0) {
		free(tgt);
		return 1;
	}
	name = xasprintf("%s%s", ABQ_PROV_PREFIX, def->name);
	rv = attr_write(c, scope, tgt, name, def->name, canon, "provisioning",
	                abq_prov_id_of(def) == ABQ_PROV_ALLOW_NON_PROVISIONABLE, o, errmsg_r);
	free(name);
	free(canon);
	free(tgt);
	return rv;
}

/* The longest locale tag a template takes ("de-DE", "zh-Hant-TW", ...). */
#define TEMPLATE_LOCALE_MAX 35

/*
 * Check a template's key and give its history subject ("global quarantined
 * en", "domain example.com blocked de") and change-log key ("global\nKIND\n
 * LOCALE", "domain:D\nKIND\nLOCALE"), new strings; *domain_r gets the domain
 * lower-cased (NULL for global). Refuses (1) a key no template can have.
 */
static int
template_key(enum abq_scope scope, const char *domain, const char *kind, const char *locale,
             char **domain_r, char **subject_r, char **key_r, char **errmsg_r)
{
	const char *full = kind != NULL ? abq_template_kind_parse(kind) : NULL;
	size_t n = locale != NULL ? strlen(locale) : 0;

	*domain_r = *subject_r = *key_r = NULL;
	if (full == NULL || strcmp(full, kind) != 0) {
		*errmsg_r = xasprintf("'%s' is not a kind of notice", kind ? kind : "");
		return 1;
	}
	if (n == 0 || n > TEMPLATE_LOCALE_MAX ||
	    strspn(locale, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
	        n) {
		*errmsg_r = xasprintf("locale '%s': a language tag such as en, de or de-DE",
		                      locale ? locale : "");
		return 1;
	}
	if (scope == ABQ_SCOPE_GLOBAL && domain == NULL) {
		*subject_r = xasprintf("global %s %s", abq_template_kind_word(kind), locale);
		*key_r = xasprintf("global\n%s\n%s", kind, locale);
		return 0;
	}
	if (scope != ABQ_SCOPE_DOMAIN || domain == NULL || !domain_valid(domain)) {
		*errmsg_r = xasprintf("a template is global or for one valid domain");
		return 1;
	}
	*domain_r = str_lower(xstrdup(domain));
	*subject_r = xasprintf("domain %s %s %s", *domain_r, abq_template_kind_word(kind), locale);
	*key_r = xasprintf("domain:%s\n%s\n%s", *domain_r, kind, locale);
	return 0;
}

/* Replace *dst by a copy of v when field is among fields; name it in the list of changes. */
static void
template_take(char **dst, const char *v, unsigned field, unsigned fields, const char *name,
              char **changed)
{
	if ((fields & field) == 0)
		return;
	free(*dst);
	*dst = xstrdup_null(v);
	char *more = *changed != NULL ? xasprintf("%s, %s", *changed, name) : xstrdup(name);
	free(*changed);
	*changed = more;
}

int
abq_registry_template_set(const struct abq_ctx *c, const struct abq_template *t, unsigned fields,
                          struct abq_template *out, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_template cur = {0};
	char *domain = NULL, *subj = NULL, *key = NULL, *changed = NULL;
	const char *err;
	int rv, found;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((fields & (ABQ_TEMPLATE_FROM | ABQ_TEMPLATE_REPLY_TO | ABQ_TEMPLATE_SUBJECT |
	               ABQ_TEMPLATE_BODY_PLAIN | ABQ_TEMPLATE_BODY_HTML)) == 0) {
		*errmsg_r = xstrdup("nothing to set: give from, reply to, subject or a body");
		return 1;
	}
	if ((rv = template_key(t->scope, t->domain, t->kind, t->locale, &domain, &subj, &key,
	                       errmsg_r)) != 0)
		return rv;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(domain);
		free(subj);
		free(key);
		return -1;
	}
	found = abq_store_template_get(c->store, t->scope, domain, t->kind, t->locale, &cur, &err);
	if (found < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (found == 0) {
		cur.scope = t->scope;
		cur.domain = xstrdup_null(domain);
		cur.kind = xstrdup(t->kind);
		cur.locale = xstrdup(t->locale);
	}
	template_take(&cur.from, t->from, ABQ_TEMPLATE_FROM, fields, "from", &changed);
	template_take(&cur.reply_to, t->reply_to, ABQ_TEMPLATE_REPLY_TO, fields, "replyTo",
	              &changed);
	template_take(&cur.subject, t->subject, ABQ_TEMPLATE_SUBJECT, fields, "subject", &changed);
	template_take(&cur.body_plain, t->body_plain, ABQ_TEMPLATE_BODY_PLAIN, fields, "bodyPlain",
	              &changed);
	template_take(&cur.body_html, t->body_html, ABQ_TEMPLATE_BODY_HTML, fields, "bodyHtml",
	              &changed);
	free(cur.set_by);
	cur.set_by = xstrdup(c->who);
	cur.set_at = c->now;
	if (abq_store_template_put(c->store, &cur, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (o != NULL)
		o->affected = 1;
	if ((rv = history(c, "template", subj, found == 1 ? "set" : NULL, changed, NULL, NULL, NULL,
	                  errmsg_r)) < 0 ||
	    (rv = change(c, ABQ_CHANGE_TEMPLATE, key, errmsg_r)) < 0)
		goto out;
	rv = 0;
out:
	if (rv == 0 && out != NULL) {
		*out = cur;
		memset(&cur, 0, sizeof(cur));
	}
	abq_template_clear(&cur);
	free(domain);
	free(subj);
	free(key);
	free(changed);
	rv = op_end(c, rv, errmsg_r);
	if (rv != 0 && out != NULL)
		abq_template_clear(out);
	return rv;
}

int
abq_registry_template_delete(const struct abq_ctx *c, enum abq_scope scope, const char *domain,
                             const char *kind, const char *locale, struct abq_outcome *o,
                             char **errmsg_r)
{
	char *dom = NULL, *subj = NULL, *key = NULL;
	const char *err;
	size_t count = 0;
	int rv;

	if ((rv = template_key(scope, domain, kind, locale, &dom, &subj, &key, errmsg_r)) != 0)
		return rv;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(dom);
		free(subj);
		free(key);
		return -1;
	}
	if (abq_store_template_delete(c->store, scope, dom, kind, locale, &count, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (count == 0) {
		*errmsg_r = xasprintf("no %s template", subj);
		rv = 1;
		goto out;
	}
	if (o != NULL)
		o->affected = count;
	if ((rv = history(c, "template", subj, "set", "deleted", NULL, NULL, NULL, errmsg_r)) < 0 ||
	    (rv = change(c, ABQ_CHANGE_TEMPLATE, key, errmsg_r)) < 0)
		goto out;
	rv = 0;
out:
	free(dom);
	free(subj);
	free(key);
	return op_end(c, rv, errmsg_r);
}

/* ---- account loggers ---- */

/*
 * The checks of a new logger (1 with *errmsg_r when refused): the file an
 * absolute path without control characters, until within the allowed time.
 */
static int
logger_check(const struct abq_ctx *c, const char *file, int64_t until, char **errmsg_r)
{
	if (file == NULL || file[0] != '/') {
		*errmsg_r = xasprintf("'%s' is not an absolute path: abqd opens the file itself, "
		                      "from its own working directory",
		                      file != NULL ? file : "");
		return 1;
	}
	for (const char *p = file; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*errmsg_r = xstrdup("the file name holds a control character");
			return 1;
		}
	if (until <= c->now) {
		*errmsg_r = xstrdup("a logger must last at least a second");
		return 1;
	}
	if (until - c->now > ABQ_LOGGER_MAX_SECONDS) {
		*errmsg_r =
		    xasprintf("a logger lasts at most 7d (%d seconds)", ABQ_LOGGER_MAX_SECONDS);
		return 1;
	}
	return 0;
}

/* Record a new logger with its history and change-log rows (registry.h). */
int
abq_registry_logger_add(const struct abq_ctx *c, const char *account, const char *device_id,
                        const char *file, int64_t until, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_logger l = {0};
	char *acct = NULL, *subj = NULL, *val = NULL, *key = NULL, t[32];
	const char *err;
	int rv;

	if ((rv = norm_account(c, account, &acct, errmsg_r)) != 0)
		return rv;
	if (acct == NULL) {
		*errmsg_r = xstrdup("a logger names an account");
		return 1;
	}
	if ((device_id != NULL && (rv = check_device_id(device_id, errmsg_r)) != 0) ||
	    (rv = logger_check(c, file, until, errmsg_r)) != 0) {
		free(acct);
		return rv;
	}
	if (op_begin(c, o, errmsg_r) < 0) {
		free(acct);
		return -1;
	}
	l = (struct abq_logger){.account = acct,
	                        .device_id = (char *)device_id,
	                        .file = (char *)file,
	                        .until = until,
	                        .created_by = (char *)c->who,
	                        .created_at = c->now};
	if (abq_store_logger_add(c->store, &l, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	subj = xasprintf("logger %lld", (long long)l.id);
	val = xasprintf("%s until %s", file, format_time(until, t));
	key = xasprintf("%lld", (long long)l.id);
	if ((rv = history(c, "logger", subj, NULL, val, NULL, device_id, acct, errmsg_r)) < 0 ||
	    (rv = change(c, ABQ_CHANGE_LOGGER, key, errmsg_r)) < 0)
		goto out;
	if (o != NULL) {
		o->affected = 1;
		o->id = l.id;
	}
out:
	free(acct);
	free(subj);
	free(val);
	free(key);
	return op_end(c, rv, errmsg_r);
}

/* A logger's history row when it is removed (a logger iteration's callback). */
struct logger_gone {
	const struct abq_ctx *c;
	int64_t id; /* 0: every logger */
	size_t found;
	char *errmsg;
};

/* Write the history row of one logger that goes (all of them, or the one asked). */
static int
logger_gone(void *arg, const struct abq_logger *l)
{
	struct logger_gone *g = arg;
	char *subj, *val, t[32];
	int rv;

	if (g->id != 0 && l->id != g->id)
		return 0;
	g->found++;
	subj = xasprintf("logger %lld", (long long)l->id);
	val = xasprintf("%s until %s", l->file, format_time(l->until, t));
	rv = history(g->c, "logger", subj, val, "removed", NULL, l->device_id, l->account,
	             &g->errmsg);
	free(subj);
	free(val);
	return rv < 0 ? -1 : 0;
}

/* Remove one logger or all, a history row each and one change-log row (registry.h). */
int
abq_registry_logger_remove(const struct abq_ctx *c, int64_t id, struct abq_outcome *o,
                           char **errmsg_r)
{
	struct logger_gone g = {.c = c, .id = id};
	const char *err = NULL;
	char *key = NULL;
	size_t count = 0;
	int rv;

	if (id < 0) {
		*errmsg_r = xstrdup("a logger's id is a positive number");
		return 1;
	}
	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if ((rv = abq_store_logger_iter(c->store, logger_gone, &g, &err)) != 0) {
		if (g.errmsg != NULL) {
			*errmsg_r = g.errmsg;
			g.errmsg = NULL;
		} else {
			store_fail(errmsg_r, err);
		}
		rv = -1;
		goto out;
	}
	if (g.found == 0) {
		*errmsg_r = id != 0 ? xasprintf("no logger with id %lld", (long long)id)
		                    : xstrdup("there is no logger");
		rv = 1;
		goto out;
	}
	if (abq_store_logger_delete(c->store, id, &count, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	key = id != 0 ? xasprintf("%lld", (long long)id) : xstrdup("all");
	if ((rv = change(c, ABQ_CHANGE_LOGGER, key, errmsg_r)) < 0)
		goto out;
	if (o != NULL)
		o->affected = count;
out:
	free(key);
	return op_end(c, rv, errmsg_r);
}

/* A listing of the entries no device has used yet. */
struct unseen {
	const struct abq_device_filter *f;
	abq_entry_cb *cb;
	void *arg;
};

/* Whether account is in domain (a bare account is in default_domain). */
static bool
account_in_domain(const char *account, const char *domain, const char *default_domain)
{
	const char *at = strrchr(account, '@');
	const char *d = at != NULL ? at + 1 : default_domain;

	return d != NULL && strcasecmp(d, domain) == 0;
}

/*
 * One entry no device has used (abq_store_entry_unseen_iter): passed on when
 * the listing's filter takes it.
 */
static int
unseen_entry(void *arg, const struct abq_entry *e)
{
	struct unseen *u = arg;
	const struct abq_device_filter *f = u->f;

	if (f->device_id != NULL && strcasecmp(f->device_id, e->device_id) != 0)
		return 0;
	if (e->account == NULL && (f->account != NULL || f->domain != NULL))
		return 0;
	if (e->account != NULL &&
	    ((f->account != NULL && strcmp(f->account, e->account) != 0) ||
	     (f->domain != NULL && !account_in_domain(e->account, f->domain, f->default_domain))))
		return 0;
	return u->cb(u->arg, e);
}

int
abq_registry_unseen_entries(struct abq_store *s, const struct abq_device_filter *f,
                            abq_entry_cb *cb, void *arg, char **errmsg_r)
{
	struct unseen u = {.f = f, .cb = cb, .arg = arg};
	const char *err = NULL;
	int rc;

	if (f->seen_since != 0 || f->seen_before != 0 || f->not_individual ||
	    f->state == ABQ_STATE_DISCOVERY)
		return 0;
	rc = abq_store_entry_unseen_iter(s, f->state, unseen_entry, &u, &err);
	if (rc != 0 && err != NULL) /* a stop comes without a message */
		return store_fail(errmsg_r, err);
	return rc;
}

int
abq_registry_adopt(const struct abq_ctx *c, int64_t seen_since, struct abq_outcome *o,
                   char **errmsg_r)
{
	struct abq_device_filter f = {.state = ABQ_STATE_ALLOWED, .seen_since = seen_since};
	struct devlist l = {0};
	const char *err;
	size_t adopted = 0;
	int rv;

	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if (abq_store_device_iter(c->store, &f, collect_device, &l, &err) != 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct abq_device *d = &l.v[i];
		enum abq_state own;
		if ((rv = entry_state(c->store, d->device_id, d->account, &own, errmsg_r)) < 0)
			goto out;
		if (own != ABQ_STATE_NONE)
			continue;
		if ((rv = put_entry(c, d->device_id, d->account, ABQ_STATE_ALLOWED, "adopt", true,
		                    errmsg_r)) < 0)
			goto out;
		adopted++;
		/* Under mode Disabled the device stays Allowed (Disabled) until ABQ is on. */
		struct abq_device_filter one = {.device_id = d->device_id, .account = d->account};
		if ((rv = reevaluate(c, &one, "adopt", o, errmsg_r)) < 0)
			goto out;
	}
	if (o != NULL)
		o->affected = adopted;
	rv = 0;
out:
	devlist_free(&l);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_purge(const struct abq_ctx *c, int64_t before, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device_filter f = {.seen_before = before};
	struct devlist l = {0};
	const char *err;
	int rv;

	if (before <= 0) {
		*errmsg_r = xstrdup("purge needs a time in the past");
		return 1;
	}
	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	if (abq_store_device_iter(c->store, &f, collect_device, &l, &err) != 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	char when[32];
	char *why = xasprintf("not seen since %s", format_time(before, when));
	rv = forget_devices(c, &l, "purge", why, o, errmsg_r);
	free(why);
	if (rv == 0 && o != NULL)
		o->affected = l.n;
out:
	devlist_free(&l);
	return op_end(c, rv, errmsg_r);
}

int
abq_registry_reevaluate(const struct abq_ctx *c, struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device_filter f = {0};
	int rv;
	if (op_begin(c, o, errmsg_r) < 0)
		return -1;
	rv = reevaluate(c, &f, "re-evaluation", o, errmsg_r);
	return op_end(c, rv, errmsg_r);
}

/* Replace *dst by a copy of src when src is set and differs; true if it changed. */
static bool
merge_fact(char **dst, const char *src)
{
	if (src == NULL || str_eq_null(*dst, src))
		return false;
	free(*dst);
	*dst = xstrdup(src);
	return true;
}

/* Merge the facts a request reported into the record; true if a rule-tested fact changed. */
static bool
merge_facts(struct abq_device *d, const struct abq_device *seen, const struct abq_ctx *c)
{
	bool tested = false;
	tested |= merge_fact(&d->device_type, seen->device_type);
	tested |= merge_fact(&d->model, seen->model);
	tested |= merge_fact(&d->os, seen->os);
	tested |= merge_fact(&d->user_agent, seen->user_agent);
	merge_fact(&d->imei, seen->imei);
	merge_fact(&d->friendly_name, seen->friendly_name);
	merge_fact(&d->os_language, seen->os_language);
	merge_fact(&d->phone_number, seen->phone_number);
	merge_fact(&d->mobile_operator, seen->mobile_operator);
	merge_fact(&d->eas_version, seen->eas_version);
	merge_fact(&d->last_address, seen->last_address);
	merge_fact(&d->last_command, seen->last_command);
	d->last_seen = c->now;
	return tested;
}

int
abq_registry_observe(const struct abq_ctx *c, const struct abq_device *seen, struct abq_device *out,
                     struct abq_outcome *o, char **errmsg_r)
{
	struct abq_device d = {0};
	struct abq_policy *p = NULL;
	char *acct = NULL;
	const char *err;
	int rv, found;

	if ((rv = check_device_id(seen->device_id, errmsg_r)) != 0 ||
	    (rv = norm_account(c, seen->account, &acct, errmsg_r)) != 0)
		return rv;
	if (acct == NULL) {
		*errmsg_r = xstrdup("an account is required");
		return 1;
	}
	if (op_begin(c, o, errmsg_r) < 0) {
		free(acct);
		return -1;
	}
	if ((found = abq_store_device_get(c->store, acct, seen->device_id, &d, &err)) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	bool is_new = found == 0, decide = is_new;
	if (is_new) {
		d.account = xstrdup(acct);
		d.device_id = xstrdup(seen->device_id);
		d.first_seen = c->now;
	}
	decide |= merge_facts(&d, seen, c);
	decide |= d.state == ABQ_STATE_DISCOVERY;
	if (decide) {
		struct abq_inputs in;
		struct abq_verdict v;
		if ((p = policy_load(c->store, c->default_domain, false, errmsg_r)) == NULL ||
		    inputs_for(c, p, false, &d, is_new, &in, errmsg_r) < 0) {
			rv = -1;
			goto out;
		}
		abq_decide(&in, &v);
		if (verdict_differs(&d, &v)) {
			rv = record_state(c, p, &d, &v, is_new ? "first request" : "reported facts",
			                  o, errmsg_r);
			goto done;
		}
	}
	rv = abq_store_device_put(c->store, &d, &err) < 0 ? store_fail(errmsg_r, err) : 0;
done:
	if (rv == 0 && out != NULL)
		abq_device_copy(out, &d);
out:
	abq_policy_free(&p);
	abq_device_clear(&d);
	free(acct);
	return op_end(c, rv, errmsg_r);
}

void
abq_explanation_clear(struct abq_explanation *x)
{
	abq_device_clear(&x->device);
	free(x->domain);
	memset(x, 0, sizeof(*x));
}

int
abq_registry_explain(const struct abq_ctx *c, const char *account, const char *device_id,
                     struct abq_policy *p, struct abq_explanation *x, char **errmsg_r)
{
	char *acct = NULL;
	const char *err;
	int rv, found;

	memset(x, 0, sizeof(*x));
	if ((rv = check_device_id(device_id, errmsg_r)) != 0 ||
	    (rv = norm_account(c, account, &acct, errmsg_r)) != 0)
		return rv;
	if (acct == NULL) {
		*errmsg_r = xstrdup("an account is required");
		return 1;
	}
	if ((found = abq_store_device_get(c->store, acct, device_id, &x->device, &err)) < 0) {
		free(acct);
		return store_fail(errmsg_r, err);
	}
	x->known = found == 1;
	if (!x->known) {
		x->device.account = acct;
		acct = NULL;
		x->device.device_id = xstrdup(device_id);
		x->device.first_seen = c->now;
	}
	free(acct);
	if (inputs_for(c, p, true, &x->device, !x->known, &x->in, errmsg_r) < 0) {
		abq_explanation_clear(x);
		return -1;
	}
	abq_decide(&x->in, &x->verdict);
	x->mode_is_default =
	    abq_policy_attr(p, x->device.account, "abqMode", &x->mode_scope) == NULL;
	x->domain = xstrdup_null(account_domain(x->device.account, c->default_domain));
	return 0;
}

int
abq_registry_rule_update(const struct abq_ctx *c, int64_t id, const struct abq_rule *r,
                         struct abq_outcome *o, char **errmsg_r)
{
	struct abq_rule old = {0}, nr = *r;
	struct rule_find rf = {.want = r};
	char *msg = NULL, *domain = NULL, *oldtxt = NULL, *newtxt = NULL, *subj = NULL;
	const char *err;
	bool have_old = false;
	int rv;

	if (abq_rule_check(r, &msg) < 0) {
		*errmsg_r = msg;
		return 1;
	}
	if (rule_domain(r->domain, &domain, errmsg_r) != 0)
		return 1;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(domain);
		return -1;
	}
	rv = abq_store_rule_get(c->store, id, &old, &err);
	if (rv < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (rv == 0) {
		*errmsg_r = xasprintf("no rule %lld", (long long)id);
		rv = 1;
		goto out;
	}
	have_old = true;
	/* Two rules with the same key would make "setRule" ambiguous. */
	if (abq_store_rule_iter(c->store, domain, false, find_rule, &rf, &err) != 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	if (rf.matches > 0 && rf.found.id != id) {
		*errmsg_r = xasprintf("rule %lld has the same characteristic, match and pattern",
		                      (long long)rf.found.id);
		rv = 1;
		goto out;
	}
	nr.id = id;
	nr.domain = domain;
	nr.created_by = (char *)c->who;
	nr.created_at = c->now;
	if (abq_store_rule_update(c->store, &nr, &err) < 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	oldtxt = rule_text(&old);
	newtxt = rule_text(&nr);
	subj = xasprintf("rule %lld", (long long)id);
	if (o != NULL) {
		o->id = id;
		o->affected = 1;
	}
	if ((rv = history(c, "rule", subj, oldtxt, newtxt, NULL, NULL, NULL, errmsg_r)) < 0)
		goto out;
	char key[32];
	snprintf(key, sizeof(key), "%lld", (long long)id);
	if ((rv = change(c, ABQ_CHANGE_RULE, key, errmsg_r)) < 0)
		goto out;
	/* A rule moved between scopes can change devices of both: decide them all. */
	rv = reevaluate_domain(c, str_eq_null(old.domain, domain) ? domain : NULL, subj, o,
	                       errmsg_r);
out:
	if (rf.matches > 0)
		abq_rule_clear(&rf.found);
	if (have_old)
		abq_rule_clear(&old);
	free(domain);
	free(oldtxt);
	free(newtxt);
	free(subj);
	return op_end(c, rv, errmsg_r);
}

/* Collecting the ids of one scope's rules. */
struct rule_ids {
	int64_t *ids;
	size_t n, cap;
};

static int
collect_rule_id(void *arg, const struct abq_rule *r)
{
	struct rule_ids *x = arg;
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 16;
		x->ids = xrealloc(x->ids, x->cap * sizeof(int64_t));
	}
	x->ids[x->n++] = r->id;
	return 0;
}

int
abq_registry_rule_reorder(const struct abq_ctx *c, const char *domain, const int64_t *ids, size_t n,
                          struct abq_outcome *o, char **errmsg_r)
{
	struct rule_ids have = {0};
	char *dom = NULL, *subj = NULL;
	const char *err;
	int rv;

	if (rule_domain(domain, &dom, errmsg_r) != 0)
		return 1;
	if (op_begin(c, o, errmsg_r) < 0) {
		free(dom);
		return -1;
	}
	if (abq_store_rule_iter(c->store, dom, false, collect_rule_id, &have, &err) != 0) {
		rv = store_fail(errmsg_r, err);
		goto out;
	}
	/* Every rule of the scope exactly once: a partial order would be a guess. */
	rv = 1;
	if (n != have.n) {
		*errmsg_r = xasprintf("the %s%s scope has %zu rules and %zu ids were given",
		                      dom ? "domain " : "global", dom ? dom : "", have.n, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t j = 0; j < have.n && !found; j++)
			found = have.ids[j] == ids[i];
		for (size_t k = 0; k < i && found; k++)
			if (ids[k] == ids[i]) {
				*errmsg_r =
				    xasprintf("rule %lld is named twice", (long long)ids[i]);
				goto out;
			}
		if (!found) {
			*errmsg_r = xasprintf("rule %lld is not a rule of the %s%s scope",
			                      (long long)ids[i], dom ? "domain " : "global",
			                      dom ? dom : "");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct abq_rule r = {0};
		char *oldtxt, *newtxt, key[32];
		int got = abq_store_rule_get(c->store, ids[i], &r, &err);

		if (got < 0) {
			rv = store_fail(errmsg_r, err);
			goto out;
		}
		if (got == 0) { /* listed above in this transaction: only a broken store */
			*errmsg_r =
			    xasprintf("rule %lld vanished during the reorder", (long long)ids[i]);
			rv = -1;
			goto out;
		}
		if (r.order == (int64_t)(i + 1) * 10) {
			abq_rule_clear(&r);
			continue;
		}
		oldtxt = rule_text(&r);
		r.order = (int64_t)(i + 1) * 10;
		newtxt = rule_text(&r);
		rv = abq_store_rule_update(c->store, &r, &err) < 0 ? store_fail(errmsg_r, err) : 0;
		free(subj);
		subj = xasprintf("rule %lld", (long long)r.id);
		if (rv == 0)
			rv = history(c, "rule", subj, oldtxt, newtxt, NULL, NULL, NULL, errmsg_r);
		snprintf(key, sizeof(key), "%lld", (long long)r.id);
		if (rv == 0)
			rv = change(c, ABQ_CHANGE_RULE, key, errmsg_r);
		free(oldtxt);
		free(newtxt);
		abq_rule_clear(&r);
		if (rv != 0)
			goto out;
		if (o != NULL)
			o->affected++;
	}
	rv = reevaluate_domain(c, dom, "rule order", o, errmsg_r);
out:
	free(have.ids);
	free(dom);
	free(subj);
	return op_end(c, rv, errmsg_r);
}
