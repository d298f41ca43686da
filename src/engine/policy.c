/*
 * policy.c: the in-memory view the engine decides from.
 *
 * A policy is built from store records (attributes, list entries, rules),
 * then finished (the rule sets are compiled) and from then on only read. The
 * daemon resolves one per request, so every lookup here is a hash lookup and
 * none allocates:
 *   - attributes: a global set, one set per domain and one per account, each
 *     holding the canonical string and its parsed number per attribute;
 *     resolution goes account, domain, global, then the table's default;
 *   - entries: DeviceId alone and DeviceId/account, keyed case-insensitively;
 *   - rules: one compiled set per domain that has rules (its own rules, then
 *     the global ones), and the global set every other domain uses.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine.h"
#include "lib/attrs.h"
#include "lib/hmap.h"
#include "lib/provision.h"
#include "lib/util.h"

/* The provisioning values set at one scope (lib/provision.h). */
struct prov_vals {
	uint64_t set; /* bit id: key id set here */
	int64_t num[ABQ_PROV_ID_COUNT];
	char *str[ABQ_PROV_ID_COUNT]; /* canonical */
};

/* The attributes set at one scope (global, one domain or one account). */
struct scope_vals {
	uint32_t set; /* bit id: attribute id set here */
	int64_t num[ABQ_ATTR_ID_COUNT];
	char *str[ABQ_ATTR_ID_COUNT]; /* canonical */
	struct prov_vals *prov;       /* NULL: no provisioning value set here */
};

/* A domain: its attributes and its compiled rules. */
struct domain_node {
	struct scope_vals vals;
	struct abq_ruleset *rules; /* NULL: no rules of its own, the global set applies */
};

struct abq_policy {
	char *default_domain; /* lower-cased, or NULL */
	int64_t default_num[ABQ_ATTR_ID_COUNT];
	struct scope_vals global;
	struct abq_hmap domains;     /* domain -> struct domain_node * */
	struct abq_hmap accounts;    /* account -> struct scope_vals * */
	struct abq_hmap entries_dev; /* DeviceId -> (void *)(state | ENTRY_HAS_ACCOUNTS) */
	struct abq_hmap entries_acc; /* DeviceId/account -> (void *)state */
	size_t nentries_dev;         /* DeviceId-alone entries (entries_dev also holds
	                                DeviceIds that have only account entries) */
	struct abq_rule *rules;      /* as added (deep copies) */
	size_t nrules, caprules;
	struct abq_ruleset *global_rules; /* never NULL */
};

/*
 * In entries_dev, a flag beside the DeviceId-alone state: this DeviceId has
 * DeviceId/account entries too. A device without it needs one lookup (of its
 * DeviceId), not two.
 */
#define ENTRY_HAS_ACCOUNTS 0x100u
#define ENTRY_STATE_MASK   0xffu

/* The attribute lookup of one account: its own set and its domain's. */
struct resolved {
	const struct scope_vals *account;
	const struct domain_node *domain;
};

/* Free the strings of one scope's attribute set. */
static void
scope_vals_clear(struct scope_vals *v)
{
	for (size_t i = 0; i < ABQ_ATTR_ID_COUNT; i++)
		free(v->str[i]);
	if (v->prov != NULL) {
		for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++)
			free(v->prov->str[i]);
		free(v->prov);
	}
	memset(v, 0, sizeof(*v));
}

/* hmap value destructor for account attribute sets. */
static void
free_scope_vals(void *p)
{
	if (p == NULL)
		return;
	scope_vals_clear(p);
	free(p);
}

/* hmap value destructor for domains. */
static void
free_domain(void *p)
{
	struct domain_node *d = p;
	if (d == NULL)
		return;
	scope_vals_clear(&d->vals);
	abq_ruleset_free(&d->rules);
	free(d);
}

/*
 * A new, empty policy: every attribute at its default, no entries, no rules
 * (an empty global rule set, so that abq_policy_rules never returns NULL).
 */
struct abq_policy *
abq_policy_new(const char *default_domain)
{
	struct abq_policy *p = xcalloc(1, sizeof(*p));

	if (default_domain != NULL && default_domain[0] != '\0')
		p->default_domain = str_lower(xstrdup(default_domain));
	for (size_t i = 0; i < ABQ_ATTR_ID_COUNT; i++) {
		const struct abq_attr_def *def = abq_attr_by_id((enum abq_attr_id)i);
		p->default_num[i] = abq_attr_int_value(def, def->default_value);
	}
	abq_hmap_init(&p->domains);
	abq_hmap_init(&p->accounts);
	abq_hmap_init(&p->entries_dev);
	abq_hmap_init(&p->entries_acc);
	p->global_rules = abq_ruleset_new(NULL, 0, NULL);
	return p;
}

/* Free a policy and everything it holds; sets *pp to NULL. */
void
abq_policy_free(struct abq_policy **pp)
{
	struct abq_policy *p = *pp;

	if (p == NULL)
		return;
	free(p->default_domain);
	scope_vals_clear(&p->global);
	abq_hmap_free(&p->domains, free_domain);
	abq_hmap_free(&p->accounts, free_scope_vals);
	abq_hmap_free(&p->entries_dev, NULL);
	abq_hmap_free(&p->entries_acc, NULL);
	for (size_t i = 0; i < p->nrules; i++)
		abq_rule_clear(&p->rules[i]);
	free(p->rules);
	abq_ruleset_free(&p->global_rules);
	free(p);
	*pp = NULL;
}

/* The node of a domain, created when absent. */
static struct domain_node *
domain_node_get(struct abq_policy *p, const char *domain)
{
	void **slot = abq_hmap_put(&p->domains, domain, NULL, NULL);
	if (*slot == NULL)
		*slot = xcalloc(1, sizeof(struct domain_node));
	return *slot;
}

/* The attribute set of (scope, target), created when absent. */
static struct scope_vals *
scope_vals_get(struct abq_policy *p, enum abq_scope scope, const char *target)
{
	switch (scope) {
	case ABQ_SCOPE_DOMAIN:
		return &domain_node_get(p, target)->vals;
	case ABQ_SCOPE_ACCOUNT: {
		void **slot = abq_hmap_put(&p->accounts, target, NULL, NULL);
		if (*slot == NULL)
			*slot = xcalloc(1, sizeof(struct scope_vals));
		return *slot;
	}
	case ABQ_SCOPE_GLOBAL:
	default:
		return &p->global;
	}
}

/*
 * Add one provisioning record (its name carries ABQ_PROV_PREFIX), checked as
 * abqctl checks it; every key may be set at every scope.
 */
static int
add_prov(struct abq_policy *p, const struct abq_attr *a, char **errmsg_r)
{
	const struct abq_prov_def *def = abq_prov_find(a->name);
	char *canon = NULL;

	if (def == NULL) {
		*errmsg_r = xasprintf("unknown provisioning key '%s'", a->name);
		return -1;
	}
	if (abq_prov_validate(def, a->value, &canon, errmsg_r) != 0)
		return -1;
	struct scope_vals *vals = scope_vals_get(p, a->scope, a->target);
	if (vals->prov == NULL)
		vals->prov = xcalloc(1, sizeof(*vals->prov));
	size_t id = abq_prov_id_of(def);
	free(vals->prov->str[id]);
	vals->prov->str[id] = canon;
	vals->prov->num[id] = abq_prov_int_value(def, canon);
	vals->prov->set |= (uint64_t)1 << id;
	return 0;
}

/*
 * Add one attribute record. It is checked as abqctl checks it (known name,
 * allowed at its scope, valid value), because a policy must never hold a value
 * the engine would misread; a refused record leaves the policy unchanged.
 */
int
abq_policy_add_attr(struct abq_policy *p, const struct abq_attr *a, char **errmsg_r)
{
	const struct abq_attr_def *def = abq_attr_find(a->name);
	struct scope_vals *vals;
	char *canon = NULL;

	*errmsg_r = NULL;
	if (def == NULL && a->name != NULL &&
	    strncmp(a->name, ABQ_PROV_PREFIX, ABQ_PROV_PREFIX_LEN) == 0 &&
	    (unsigned)a->scope <= ABQ_SCOPE_ACCOUNT &&
	    (a->scope == ABQ_SCOPE_GLOBAL || (a->target != NULL && a->target[0] != '\0')))
		return add_prov(p, a, errmsg_r);
	if (def == NULL) {
		*errmsg_r = xasprintf("unknown attribute '%s'", a->name != NULL ? a->name : "");
		return -1;
	}
	if ((unsigned)a->scope > ABQ_SCOPE_ACCOUNT) {
		*errmsg_r = xasprintf("%s: unknown scope", def->name);
		return -1;
	}
	if ((def->scopes & (1u << a->scope)) == 0) {
		*errmsg_r = xasprintf("%s cannot be set at %s scope (%s only)", def->name,
		                      abq_scope_name(a->scope), abq_attr_scopes_text(def->scopes));
		return -1;
	}
	if (a->scope != ABQ_SCOPE_GLOBAL && (a->target == NULL || a->target[0] == '\0')) {
		*errmsg_r = xasprintf("%s at %s scope needs a %s", def->name,
		                      abq_scope_name(a->scope), abq_scope_name(a->scope));
		return -1;
	}
	if (abq_attr_validate(def, a->value, &canon, errmsg_r) != 0)
		return -1;

	vals = scope_vals_get(p, a->scope, a->target);
	size_t id = abq_attr_id_of(def);
	free(vals->str[id]);
	vals->str[id] = canon;
	vals->num[id] = abq_attr_int_value(def, canon);
	vals->set |= 1u << id;
	return 0;
}

/*
 * Add one list entry. DeviceIds and accounts are keyed case-insensitively,
 * as product.md requires of DeviceIds.
 */
void
abq_policy_add_entry(struct abq_policy *p, const struct abq_entry *e)
{
	if (e->device_id == NULL || e->device_id[0] == '\0')
		return;
	if (e->state != ABQ_STATE_ALLOWED && e->state != ABQ_STATE_BLOCKED &&
	    e->state != ABQ_STATE_QUARANTINED)
		return;
	void **dev = abq_hmap_put(&p->entries_dev, e->device_id, NULL, NULL);
	uintptr_t v = (uintptr_t)*dev;
	if (e->account == NULL || e->account[0] == '\0') {
		if ((v & ENTRY_STATE_MASK) == ABQ_STATE_NONE)
			p->nentries_dev++;
		v = (v & ~(uintptr_t)ENTRY_STATE_MASK) | (uintptr_t)e->state;
	} else {
		void **acc = abq_hmap_put(&p->entries_acc, e->device_id, e->account, NULL);
		*acc = (void *)(uintptr_t)e->state;
		v |= ENTRY_HAS_ACCOUNTS;
	}
	*dev = (void *)v;
}

/* Add one rule (a deep copy); it is compiled by abq_policy_finish. */
void
abq_policy_add_rule(struct abq_policy *p, const struct abq_rule *r)
{
	if (p->nrules == p->caprules) {
		p->caprules = p->caprules == 0 ? 16 : p->caprules * 2;
		p->rules = xrealloc(p->rules, p->caprules * sizeof(*p->rules));
	}
	struct abq_rule *c = &p->rules[p->nrules++];
	*c = *r;
	c->pattern = xstrdup_null(r->pattern);
	c->domain = r->domain != NULL && r->domain[0] != '\0' ? xstrdup(r->domain) : NULL;
	c->created_by = xstrdup_null(r->created_by);
}

/*
 * Sort key of rules for finishing: domain rules grouped by domain
 * (case-insensitively), global ones last, each group by order, then id.
 */
static int
rule_cmp(const void *a, const void *b)
{
	const struct abq_rule *x = *(const struct abq_rule *const *)a;
	const struct abq_rule *y = *(const struct abq_rule *const *)b;

	if ((x->domain == NULL) != (y->domain == NULL))
		return x->domain == NULL ? 1 : -1;
	if (x->domain != NULL) {
		int c = strcasecmp(x->domain, y->domain);
		if (c != 0)
			return c;
	}
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return 0;
}

/*
 * Compile the rule sets. All are built before any is installed, so that a
 * rule that does not compile leaves the policy as it was.
 */
int
abq_policy_finish(struct abq_policy *p, char **errmsg_r)
{
	const struct abq_rule **sorted = xcalloc(p->nrules + 1, sizeof(*sorted));
	struct abq_rule *flat = xcalloc(p->nrules + 1, sizeof(*flat));
	struct abq_ruleset **built = xcalloc(p->nrules + 1, sizeof(*built));
	const char **built_dom = xcalloc(p->nrules + 1, sizeof(*built_dom));
	struct abq_ruleset *global = NULL;
	size_t nbuilt = 0, nglobal = 0, first_global;
	int ret = -1;

	*errmsg_r = NULL;
	for (size_t i = 0; i < p->nrules; i++)
		sorted[i] = &p->rules[i];
	qsort(sorted, p->nrules, sizeof(*sorted), rule_cmp);
	first_global = p->nrules;
	while (first_global > 0 && sorted[first_global - 1]->domain == NULL)
		first_global--;
	nglobal = p->nrules - first_global;

	for (size_t i = 0; i < nglobal; i++)
		flat[i] = *sorted[first_global + i];
	global = abq_ruleset_new(flat, nglobal, errmsg_r);
	if (global == NULL)
		goto out;

	for (size_t i = 0; i < first_global;) {
		size_t j = i, n = 0;
		while (j < first_global && strcasecmp(sorted[j]->domain, sorted[i]->domain) == 0)
			flat[n++] = *sorted[j++];
		for (size_t k = 0; k < nglobal; k++)
			flat[n++] = *sorted[first_global + k];
		built[nbuilt] = abq_ruleset_new(flat, n, errmsg_r);
		if (built[nbuilt] == NULL)
			goto out;
		built_dom[nbuilt++] = sorted[i]->domain;
		i = j;
	}

	/* Install: drop every domain's old set, then hand out the new ones. */
	for (size_t i = 0; i < p->domains.cap; i++) {
		struct domain_node *d = p->domains.slots[i].val;
		if (p->domains.slots[i].key != NULL && d != NULL)
			abq_ruleset_free(&d->rules);
	}
	for (size_t i = 0; i < nbuilt; i++) {
		domain_node_get(p, built_dom[i])->rules = built[i];
		built[i] = NULL;
	}
	abq_ruleset_free(&p->global_rules);
	p->global_rules = global;
	global = NULL;
	ret = 0;
out:
	for (size_t i = 0; i < nbuilt; i++)
		abq_ruleset_free(&built[i]);
	abq_ruleset_free(&global);
	free(built_dom);
	free(built);
	free(flat);
	free(sorted);
	return ret;
}

/*
 * Find an account's own attribute set and its domain's node: the two hash
 * lookups every effective-attribute question starts with. account NULL stands
 * for the default domain.
 */
static void
resolve(const struct abq_policy *p, const char *account, struct resolved *r)
{
	void **slot;
	const char *domain = p->default_domain;

	r->account = NULL;
	r->domain = NULL;
	if (account != NULL) {
		slot = abq_hmap_get(&p->accounts, account, NULL);
		if (slot != NULL)
			r->account = *slot;
		domain = account_domain(account, p->default_domain);
	}
	if (domain != NULL) {
		slot = abq_hmap_get(&p->domains, domain, NULL);
		if (slot != NULL)
			r->domain = *slot;
	}
}

/*
 * The set that decides attribute id for a resolved account (account, domain,
 * global), or NULL when the default applies.
 */
static const struct scope_vals *
effective(const struct abq_policy *p, const struct resolved *r, size_t id, enum abq_scope *scope_r)
{
	uint32_t bit = 1u << id;

	if (r->account != NULL && (r->account->set & bit) != 0) {
		*scope_r = ABQ_SCOPE_ACCOUNT;
		return r->account;
	}
	if (r->domain != NULL && (r->domain->vals.set & bit) != 0) {
		*scope_r = ABQ_SCOPE_DOMAIN;
		return &r->domain->vals;
	}
	*scope_r = ABQ_SCOPE_GLOBAL;
	return (p->global.set & bit) != 0 ? &p->global : NULL;
}

/* The effective number of attribute id for a resolved account. */
static int64_t
effective_num(const struct abq_policy *p, const struct resolved *r, size_t id)
{
	enum abq_scope scope;
	const struct scope_vals *v = effective(p, r, id, &scope);
	return v != NULL ? v->num[id] : p->default_num[id];
}

/* The effective mode of an account. */
enum abq_mode
abq_policy_mode(const struct abq_policy *p, const char *account)
{
	struct resolved r;

	resolve(p, account, &r);
	return (enum abq_mode)effective_num(p, &r, ABQ_ATTR_ID_MODE);
}

/* The effective parsed value of an attribute, 0 for an unknown name. */
int64_t
abq_policy_int(const struct abq_policy *p, const char *account, const char *name)
{
	const struct abq_attr_def *def = abq_attr_find(name);
	struct resolved r;

	if (def == NULL)
		return 0;
	resolve(p, account, &r);
	return effective_num(p, &r, abq_attr_id_of(def));
}

/*
 * The effective canonical value of an attribute and where it was set; NULL
 * when the default applies (the caller shows def->default_value) or the name
 * is unknown.
 */
const char *
abq_policy_attr(const struct abq_policy *p, const char *account, const char *name,
                enum abq_scope *scope_r)
{
	const struct abq_attr_def *def = abq_attr_find(name);
	enum abq_scope scope = ABQ_SCOPE_GLOBAL;
	const struct scope_vals *v = NULL;
	struct resolved r;

	if (def != NULL) {
		resolve(p, account, &r);
		v = effective(p, &r, abq_attr_id_of(def), &scope);
	}
	if (scope_r != NULL)
		*scope_r = scope;
	return v != NULL ? v->str[abq_attr_id_of(def)] : NULL;
}

/*
 * Both entries of (account, device_id) with one lookup for most devices: the
 * DeviceId/account table is consulted only for DeviceIds flagged as having
 * account entries. account may be NULL (only the DeviceId-alone entry).
 */
static void
lookup_entries(const struct abq_policy *p, const char *device_id, const char *account,
               enum abq_state *acc_r, enum abq_state *dev_r)
{
	*acc_r = *dev_r = ABQ_STATE_NONE;
	if (device_id == NULL)
		return;
	void **slot = abq_hmap_get(&p->entries_dev, device_id, NULL);
	if (slot == NULL)
		return;
	uintptr_t v = (uintptr_t)*slot;
	*dev_r = (enum abq_state)(v & ENTRY_STATE_MASK);
	if (account != NULL && (v & ENTRY_HAS_ACCOUNTS) != 0) {
		slot = abq_hmap_get(&p->entries_acc, device_id, account);
		if (slot != NULL)
			*acc_r = (enum abq_state)(uintptr_t)*slot;
	}
}

/* The entry for exactly DeviceId/account, or DeviceId alone when account is NULL. */
enum abq_state
abq_policy_entry(const struct abq_policy *p, const char *device_id, const char *account)
{
	enum abq_state acc, dev;

	lookup_entries(p, device_id, account, &acc, &dev);
	return account != NULL ? acc : dev;
}

/* How many entries the policy holds (both kinds). */
size_t
abq_policy_entry_count(const struct abq_policy *p)
{
	return p->nentries_dev + p->entries_acc.count;
}

/* How many rules were added (every domain, and global). */
size_t
abq_policy_rule_count(const struct abq_policy *p)
{
	return p->nrules;
}

/* The rule set of a resolved account's domain, else the global one. */
static const struct abq_ruleset *
rules_of(const struct abq_policy *p, const struct resolved *r)
{
	return r->domain != NULL && r->domain->rules != NULL ? r->domain->rules : p->global_rules;
}

/* The rule set that applies to an account: its domain's, else the global one. */
const struct abq_ruleset *
abq_policy_rules(const struct abq_policy *p, const char *account)
{
	struct resolved r;

	resolve(p, account, &r);
	return rules_of(p, &r);
}

/* The [eas] default_domain the policy was built with (lower-cased), or NULL. */
const char *
abq_policy_default_domain(const struct abq_policy *p)
{
	return p->default_domain;
}

/*
 * The effective provisioning policy of a resolved target (r.account and
 * r.domain may be NULL): the first of its account's, its domain's and the
 * global values that is set, else the default, for every key.
 */
static void
prov_resolved(const struct abq_policy *p, const struct resolved *r, struct abq_prov_policy *out)
{
	const struct prov_vals *chain[3];
	static const enum abq_prov_source from[3] = {ABQ_PROV_FROM_ACCOUNT, ABQ_PROV_FROM_DOMAIN,
	                                             ABQ_PROV_FROM_GLOBAL};

	abq_prov_defaults(out);
	chain[0] = r->account != NULL ? r->account->prov : NULL;
	chain[1] = r->domain != NULL ? r->domain->vals.prov : NULL;
	chain[2] = p->global.prov;
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		uint64_t bit = (uint64_t)1 << i;
		for (size_t c = 0; c < 3; c++) {
			if (chain[c] == NULL || (chain[c]->set & bit) == 0)
				continue;
			out->num[i] = chain[c]->num[i];
			out->text[i] = chain[c]->str[i];
			out->from[i] = from[c];
			break;
		}
	}
}

/*
 * Everything abq_decide needs from the policy for one request, with one
 * resolution of the account and two entry lookups: the hot path.
 */
void
abq_policy_inputs(const struct abq_policy *p, const char *account, const struct abq_facts *facts,
                  int64_t now, struct abq_inputs *in)
{
	struct resolved r;

	if (&in->facts != facts)
		in->facts = *facts;
	resolve(p, account, &r);
	in->mode = (enum abq_mode)effective_num(p, &r, ABQ_ATTR_ID_MODE);
	lookup_entries(p, facts->device_id, account, &in->entry_account, &in->entry_device);
	in->max_devices = effective_num(p, &r, ABQ_ATTR_ID_MAX_DEVICES);
	in->rules = rules_of(p, &r);
	in->discovery_timeout = effective_num(p, &r, ABQ_ATTR_ID_DISCOVERY_TIMEOUT);
	in->now = now;
	in->prov_imposes = false;
	in->allow_non_provisionable = true;
	if (facts->provision_status != 0 && facts->provision_status != 1) {
		struct abq_prov_policy pp;

		prov_resolved(p, &r, &pp);
		in->prov_imposes = abq_prov_imposes(&pp);
		in->allow_non_provisionable = pp.num[ABQ_PROV_ALLOW_NON_PROVISIONABLE] != 0;
	}
}

/*
 * The effective provisioning policy of (scope, target): for an account its
 * own values, then its domain's, then the global ones, then the defaults; for
 * a domain its values, then the global ones; for the global scope the global
 * values. Hash lookups and a walk over the keys; no allocation.
 */
void
abq_policy_provisioning(const struct abq_policy *p, enum abq_scope scope, const char *target,
                        struct abq_prov_policy *out)
{
	struct resolved r = {0};

	if (scope == ABQ_SCOPE_ACCOUNT && target != NULL) {
		resolve(p, target, &r);
	} else if (scope == ABQ_SCOPE_DOMAIN && target != NULL) {
		void **slot = abq_hmap_get(&p->domains, target, NULL);
		r.domain = slot != NULL ? *slot : NULL;
	}
	prov_resolved(p, &r, out);
}
