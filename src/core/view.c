/*
 * view.c: the in-memory view of the registry, kept current from the change log.
 *
 * Devices live in the engine's case-insensitive hash map keyed by
 * "account/DEVICEID". The map never removes keys, so a deleted device keeps its
 * slot with state NONE (it is reported unknown) until the view is reloaded; a
 * device deleted and seen again reuses the slot.
 *
 * The account loggers are few (troubleshooting one phone at a time): a
 * logger change in the log reloads their whole list.
 */
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "core/view.h"
#include "lib/hmap.h"
#include "lib/util.h"

struct abq_view {
	char *default_domain;
	struct abq_policy *policy;
	/*
	 * The last account policy_of resolved and its version: devices come
	 * from the store by account, so a load resolves each account's policy
	 * once, not once per device. Dropped when the policy is replaced.
	 */
	char *memo_account;
	uint32_t memo_policy;
	struct abq_hmap devices; /* "account/DEVICEID" -> struct abq_view_device * */
	size_t known;            /* devices whose state is not NONE */
	int64_t seq;
	struct abq_logger *loggers; /* by id */
	size_t nloggers;
	unsigned loggers_gen; /* reloads of the list */
};

/* A list of loggers being read (abq_store_logger_iter callback). */
struct logger_list {
	struct abq_logger *v;
	size_t n, cap;
};

/* Copy one logger into the list being read. */
static int
collect_logger(void *arg, const struct abq_logger *l)
{
	struct logger_list *ll = arg;

	if (ll->n == ll->cap) {
		ll->cap = ll->cap ? ll->cap * 2 : 8;
		ll->v = xrealloc(ll->v, ll->cap * sizeof(*ll->v));
	}
	ll->v[ll->n++] = (struct abq_logger){
	    .id = l->id,
	    .account = xstrdup(l->account),
	    .device_id = xstrdup_null(l->device_id),
	    .file = xstrdup(l->file),
	    .until = l->until,
	    .created_by = xstrdup_null(l->created_by),
	    .created_at = l->created_at,
	};
	return 0;
}

/* Free a list of loggers. */
static void
loggers_free(struct abq_logger *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		abq_logger_clear(&v[i]);
	free(v);
}

/* Read every logger into *ll (empty on failure): 0, or -1 with *errmsg_r. */
static int
loggers_read(struct abq_store *s, struct logger_list *ll, char **errmsg_r)
{
	const char *err = NULL;

	memset(ll, 0, sizeof(*ll));
	if (abq_store_logger_iter(s, collect_logger, ll, &err) != 0) {
		loggers_free(ll->v, ll->n);
		memset(ll, 0, sizeof(*ll));
		*errmsg_r = xasprintf("store: %s", err ? err : "reading the loggers failed");
		return -1;
	}
	return 0;
}

/* Record (or forget, with state NONE) one device in the map. */
static void
view_set(struct abq_view *v, const char *account, const char *device_id,
         const struct abq_view_device *d)
{
	bool created;
	void **slot = abq_hmap_put(&v->devices, account, device_id, &created);
	struct abq_view_device *cur = *slot;
	if (cur == NULL)
		cur = *slot = xcalloc(1, sizeof(*cur));
	if (cur->state == ABQ_STATE_NONE && d->state != ABQ_STATE_NONE)
		v->known++;
	else if (cur->state != ABQ_STATE_NONE && d->state == ABQ_STATE_NONE)
		v->known--;
	*cur = *d;
}

/* What the view keeps of a device record (view.h). */
void
abq_view_device_of(const struct abq_device *d, struct abq_view_device *out)
{
	*out = (struct abq_view_device){
	    .state = d->state,
	    .reason = d->reason,
	    .rule_id = d->rule_id,
	    .first_seen = d->first_seen,
	    .wipe = d->wipe,
	    .wipe_account_only = d->wipe_account_only,
	};
}

/* The version of an account's provisioning policy, 0 when it imposes nothing. */
static uint32_t
policy_of(struct abq_view *v, const char *account)
{
	struct abq_prov_policy pp;

	if (v->memo_account != NULL && strcmp(v->memo_account, account) == 0)
		return v->memo_policy;
	abq_policy_provisioning(v->policy, ABQ_SCOPE_ACCOUNT, account, &pp);
	free(v->memo_account);
	v->memo_account = xstrdup(account);
	v->memo_policy = abq_prov_imposes(&pp) ? abq_prov_version(&pp) : 0;
	return v->memo_policy;
}

/* The policy changes: what policy_of remembers goes. */
static void
policy_replace(struct abq_view *v, struct abq_policy *np)
{
	abq_policy_free(&v->policy);
	v->policy = np;
	free(v->memo_account);
	v->memo_account = NULL;
}

/* Iteration callback of the initial load. */
static int
load_device(void *arg, const struct abq_device *d)
{
	struct abq_view *v = arg;
	struct abq_view_device vd;

	abq_view_device_of(d, &vd);
	vd.policy = policy_of(v, d->account);
	view_set(v, d->account, d->device_id, &vd);
	return 0;
}

/*
 * After an attribute changed: every known device's policy version anew,
 * reported to cb when it moved (a policy set, changed or removed for its
 * account, domain or globally). Rare, and a walk of the map.
 */
static void
repolicy(struct abq_view *v, abq_view_device_cb *cb, void *arg)
{
	for (size_t i = 0; i < v->devices.cap; i++) {
		const struct abq_hmap_slot *sl = &v->devices.slots[i];
		struct abq_view_device *d = sl->key != NULL ? sl->val : NULL;
		const char *slash;

		if (d == NULL || d->state == ABQ_STATE_NONE ||
		    (slash = strchr(sl->key, '/')) == NULL)
			continue;
		char *account = xstrndup(sl->key, (size_t)(slash - sl->key));
		uint32_t pol = policy_of(v, account);
		if (pol != d->policy) {
			d->policy = pol;
			if (cb != NULL)
				cb(arg, account, slash + 1, d);
		}
		free(account);
	}
}

void
abq_view_free(struct abq_view **vp)
{
	struct abq_view *v = *vp;
	if (v == NULL)
		return;
	policy_replace(v, NULL);
	abq_hmap_free(&v->devices, free);
	loggers_free(v->loggers, v->nloggers);
	free(v->default_domain);
	free(v);
	*vp = NULL;
}

struct abq_view *
abq_view_load(struct abq_store *s, const char *default_domain, char **errmsg_r)
{
	struct abq_view *v = xcalloc(1, sizeof(*v));
	struct abq_device_filter all = {0};
	const char *err;

	v->default_domain = xstrdup_null(default_domain);
	abq_hmap_init(&v->devices);
	/*
	 * The sequence is read before the data: a change committed while loading is
	 * applied again at the next refresh, which is harmless, rather than missed.
	 */
	if (abq_store_change_last(s, &v->seq, &err) < 0) {
		*errmsg_r = xasprintf("store: %s", err);
		goto fail;
	}
	/* The policy first: each device's provisioning version comes from it. */
	if ((v->policy = abq_registry_policy(s, default_domain, errmsg_r)) == NULL)
		goto fail;
	err = NULL;
	if (abq_store_device_iter(s, &all, load_device, v, &err) != 0) {
		*errmsg_r = xasprintf("store: %s", err ? err : "loading devices failed");
		goto fail;
	}
	struct logger_list ll;
	if (loggers_read(s, &ll, errmsg_r) < 0)
		goto fail;
	v->loggers = ll.v;
	v->nloggers = ll.n;
	return v;
fail:
	abq_view_free(&v);
	return NULL;
}

/* The changes read by one refresh. */
struct pending {
	struct abq_change *v;
	size_t n, cap;
	int64_t last;
	size_t rows;
	bool policy;  /* an attribute, rule, entry or template changed */
	bool loggers; /* a logger was added or removed */
};

static int
collect_change(void *arg, const struct abq_change *c)
{
	struct pending *p = arg;
	p->last = c->seq;
	p->rows++;
	if (c->kind == ABQ_CHANGE_LOGGER) {
		p->loggers = true;
		return 0;
	}
	if (c->kind != ABQ_CHANGE_DEVICE) {
		p->policy = true;
		return 0;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 32;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n].seq = c->seq;
	p->v[p->n].kind = c->kind;
	p->v[p->n].at = c->at;
	p->v[p->n].key = xstrdup(c->key);
	p->n++;
	return 0;
}

static void
pending_free(struct pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].key);
	free(p->v);
}

int
abq_view_refresh(struct abq_view *v, struct abq_store *s, abq_view_device_cb *cb, void *arg,
                 size_t *changes_r, char **errmsg_r)
{
	struct pending p = {.last = v->seq};
	struct abq_policy *np = NULL;
	struct logger_list ll = {0};
	const char *err;
	size_t rows = 0;
	int rv = -1;

	if (changes_r != NULL)
		*changes_r = 0;
	if (abq_store_change_iter(s, v->seq, collect_change, &p, &err) != 0) {
		*errmsg_r = xasprintf("store: %s", err);
		goto out;
	}
	if (p.last == v->seq) {
		rv = 0;
		goto out;
	}
	rows = p.rows;
	/* Read everything first, so that a failure leaves the view as it was. */
	if (p.policy && (np = abq_registry_policy(s, v->default_domain, errmsg_r)) == NULL)
		goto out;
	if (p.loggers && loggers_read(s, &ll, errmsg_r) < 0) {
		abq_policy_free(&np);
		goto out;
	}
	struct abq_view_device *now = xcalloc(p.n ? p.n : 1, sizeof(*now));
	char **accounts = xcalloc(p.n ? p.n : 1, sizeof(*accounts));
	for (size_t i = 0; i < p.n; i++) {
		char *nl = strchr(p.v[i].key, '\n');
		struct abq_device d = {0};
		int found;
		if (nl == NULL)
			continue; /* not a device key; nothing to apply */
		*nl = '\0';
		accounts[i] = p.v[i].key;
		found = abq_store_device_get(s, accounts[i], nl + 1, &d, &err);
		if (found < 0) {
			*errmsg_r = xasprintf("store: %s", err);
			free(now);
			free(accounts);
			abq_policy_free(&np);
			loggers_free(ll.v, ll.n);
			goto out;
		}
		if (found == 1)
			abq_view_device_of(&d, &now[i]);
		abq_device_clear(&d);
	}
	if (np != NULL) {
		policy_replace(v, np);
		repolicy(v, cb, arg);
	}
	if (p.loggers) {
		loggers_free(v->loggers, v->nloggers);
		v->loggers = ll.v;
		v->nloggers = ll.n;
		v->loggers_gen++;
	}
	for (size_t i = 0; i < p.n; i++) {
		if (accounts[i] == NULL)
			continue;
		const char *id = accounts[i] + strlen(accounts[i]) + 1;
		if (now[i].state != ABQ_STATE_NONE)
			now[i].policy = policy_of(v, accounts[i]);
		view_set(v, accounts[i], id, &now[i]);
		if (cb != NULL)
			cb(arg, accounts[i], id, &now[i]);
	}
	free(now);
	free(accounts);
	v->seq = p.last;
	if (changes_r != NULL)
		*changes_r = rows;
	rv = 0;
out:
	pending_free(&p);
	return rv;
}

bool
abq_view_device(const struct abq_view *v, const char *account, const char *device_id,
                struct abq_view_device *out)
{
	void **slot = abq_hmap_get(&v->devices, account, device_id);
	const struct abq_view_device *d = slot ? *slot : NULL;
	if (d == NULL || d->state == ABQ_STATE_NONE)
		return false;
	if (out != NULL)
		*out = *d;
	return true;
}

const struct abq_policy *
abq_view_policy(const struct abq_view *v)
{
	return v->policy;
}

/* The effective provisioning policy of an account, from the view's policy. */
void
abq_view_provisioning(const struct abq_view *v, const char *account, struct abq_prov_policy *out)
{
	abq_policy_provisioning(v->policy, ABQ_SCOPE_ACCOUNT, account, out);
}

/* The loggers as last read (view.h). */
const struct abq_logger *
abq_view_loggers(const struct abq_view *v, size_t *n_r)
{
	*n_r = v->nloggers;
	return v->loggers;
}

/* How many times the loggers were reloaded. */
unsigned
abq_view_loggers_gen(const struct abq_view *v)
{
	return v->loggers_gen;
}

size_t
abq_view_device_count(const struct abq_view *v)
{
	return v->known;
}

int64_t
abq_view_seq(const struct abq_view *v)
{
	return v->seq;
}
