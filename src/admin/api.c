/*
 * api.c: the endpoints of docs/api.md under /api/v1/ (all but login, logout,
 * session and events, which server.c answers).
 *
 * Each change goes through the registry operation abqctl uses, with the same
 * context (default domain, the administrator's name, now, dry run and the
 * notice settings), and answers the changes object abqctl --json prints, from
 * the shared serializers of core/json.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_int.h"
#include "core/json.h"
#include "lib/attrs.h"
#include "lib/provision.h"
#include "lib/util.h"
#include "store/store.h"

#define PAGE_DEFAULT  100
#define PAGE_MAX      1000
#define HISTORY_LIMIT 200
#define ORDER_MIN     (-1000000000LL)
#define ORDER_MAX     1000000000LL
#define LOCALE_MAX    35

/* What a path under attributes/ may be, for a 404. */
#define ATTR_PATHS " (attributes/global/NAME, attributes/domain/D/NAME, attributes/account/A/NAME)"
/* What a path under provisioning/ may be, for a 404. */
#define PROV_PATHS                                                                                 \
	" (provisioning/global[/KEY], provisioning/domain/D[/KEY], provisioning/account/A[/KEY])"

/* The registry context of a request: abqctl's, with the administrator's name. */
static struct abq_ctx
ctx_of(struct admin_req *r, bool dry_run)
{
	struct abq_ctx c = {
	    .store = admin_store(r->a),
	    .default_domain = admin_config(r->a)->eas_default_domain,
	    .who = r->who,
	    .now = abq_now(),
	    .dry_run = dry_run,
	    .notices = admin_notices(r->a),
	};
	return c;
}

/*
 * The store did not answer: 503 with its message, so that the console can say
 * the store is down rather than that the request was wrong.
 */
static void
store_failed(struct admin_req *r, const char *err)
{
	admin_reply_error(r, 503, "unavailable", "store: %s", err != NULL ? err : "failed");
}

/*
 * A listing's answer: {key: arr} (arr consumed), or NULL after a 503 when the
 * store's iteration failed (rc != 0).
 */
static json_t *
list_object(struct admin_req *r, int rc, const char *err, const char *key, json_t *arr)
{
	json_t *ob;

	if (rc != 0) {
		json_decref(arr);
		store_failed(r, err);
		return NULL;
	}
	ob = json_object();
	json_object_set_new(ob, key, arr);
	return ob;
}

/* dryRun from the body ("dryRun": true) or the query (?dryRun=true); -1 after a 400. */
static int
dry_run_of(struct admin_req *r, json_t *body, bool *dry_r)
{
	json_t *v = body != NULL ? json_object_get(body, "dryRun") : NULL;
	const char *q = admin_query(r, "dryRun");

	*dry_r = false;
	if (v != NULL && !json_is_boolean(v)) {
		admin_reply_error(r, 400, "bad_request", "dryRun must be true or false");
		return -1;
	}
	if (v != NULL)
		*dry_r = json_is_true(v);
	if (q != NULL) {
		if (strcmp(q, "true") == 0 || strcmp(q, "1") == 0)
			*dry_r = true;
		else if (strcmp(q, "false") != 0 && strcmp(q, "0") != 0) {
			admin_reply_error(r, 400, "bad_request", "dryRun must be true or false");
			return -1;
		}
	}
	return 0;
}

/*
 * A string member: 0 and *v_r (borrowed; NULL when absent or null and
 * optional), or -1 after a 400 naming the member.
 */
static int
body_string(struct admin_req *r, json_t *body, const char *name, bool required, const char **v_r)
{
	json_t *v = json_object_get(body, name);

	*v_r = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		admin_reply_error(r, 400, "bad_request", "\"%s\" is missing", name);
		return -1;
	}
	if (!json_is_string(v)) {
		admin_reply_error(r, 400, "bad_request", "\"%s\" must be a string", name);
		return -1;
	}
	*v_r = json_string_value(v);
	return 0;
}

/*
 * An account from the path or the body, in its canonical form ([eas]
 * default_domain added to a bare name, as abqd records it); NULL after a 400.
 */
static char *
account_of(struct admin_req *r, const char *word)
{
	char *a = account_canonical(word, admin_config(r->a)->eas_default_domain);
	if (a == NULL)
		admin_reply_error(r, 400, "bad_request", "'%s' is not a valid account", word);
	return a;
}

/*
 * Whether id may be a DeviceId (the same check as the gateway's); false after a
 * 400 saying what one looks like.
 */
static bool
device_id_ok(struct admin_req *r, const char *id)
{
	if (device_id_valid(id))
		return true;
	admin_reply_error(r, 400, "bad_request",
	                  "'%s' is not a valid DeviceId (1-64 printable characters, no '/' or "
	                  "spaces)",
	                  id);
	return false;
}

/* A domain as abqctl takes it, lower-cased; NULL after a 400. */
static char *
domain_of(struct admin_req *r, const char *word)
{
	if (!domain_valid(word)) {
		admin_reply_error(r, 400, "bad_request", "'%s' is not a valid domain", word);
		return NULL;
	}
	return str_lower(xstrdup(word));
}

/* Answer a registry operation: its changes object, or its refusal. */
static void
reply_outcome(struct admin_req *r, int rc, char *errmsg, struct abq_outcome *o, bool dry_run)
{
	if (rc != 0)
		admin_reply_registry(r, rc, errmsg);
	else {
		free(errmsg);
		admin_reply_json(r, 200, outcome_json(o, dry_run));
	}
	abq_outcome_clear(o);
}

/* ------------------------------------------------------------- devices */

enum dev_sort { SORT_ACCOUNT, SORT_FIRST_SEEN, SORT_LAST_SEEN };

struct dev_query {
	const char *type, *model, *os, *q;
	enum dev_sort sort;
	size_t offset, limit;
	size_t total;
	struct abq_device *keep; /* copies: the page (by account) or every match */
	size_t nkeep, capkeep;
	json_t *unseen; /* with ?unseen=true: the page's rows of entries not seen yet */
};

/* Whether field contains want, ignoring case: the device list's filters and search. */
static bool
has(const char *field, const char *want)
{
	return field != NULL && strcasestr(field, want) != NULL;
}

/*
 * One device of the store's iteration for GET devices: skipped unless it passes
 * every filter and the search, counted, and kept when it may be on the page
 * (every match when the page is sorted here).
 */
static int
dev_cb(void *arg, const struct abq_device *d)
{
	struct dev_query *x = arg;

	if ((x->type && !has(d->device_type, x->type)) || (x->model && !has(d->model, x->model)) ||
	    (x->os && !has(d->os, x->os)))
		return 0;
	if (x->q && !has(d->account, x->q) && !has(d->device_id, x->q) &&
	    !has(d->device_type, x->q) && !has(d->model, x->q) && !has(d->os, x->q) &&
	    !has(d->user_agent, x->q) && !has(d->friendly_name, x->q))
		return 0;
	size_t i = x->total++;
	/* In the store's order only the page is kept; other orders sort every match. */
	if (x->sort == SORT_ACCOUNT && (i < x->offset || i >= x->offset + x->limit))
		return 0;
	if (x->nkeep == x->capkeep) {
		x->capkeep = x->capkeep ? 2 * x->capkeep : 64;
		x->keep = xrealloc(x->keep, x->capkeep * sizeof(*x->keep));
	}
	memset(&x->keep[x->nkeep], 0, sizeof(x->keep[0]));
	abq_device_copy(&x->keep[x->nkeep++], d);
	return 0;
}

/*
 * An entry no device has used yet (abq_registry_unseen_entries): a row after
 * every device, in whatever order the devices are; kept when on the page.
 */
static int
unseen_cb(void *arg, const struct abq_entry *e)
{
	struct dev_query *x = arg;

	if (x->q && !has(e->account, x->q) && !has(e->device_id, x->q))
		return 0;
	size_t i = x->total++;
	if (i >= x->offset && i - x->offset < x->limit)
		json_array_append_new(x->unseen, unseen_entry_json(e));
	return 0;
}

/* qsort order of GET devices?sort=first_seen: newest first, then by account. */
static int
by_first_seen_desc(const void *a, const void *b)
{
	const struct abq_device *x = a, *y = b;
	if (x->first_seen != y->first_seen)
		return x->first_seen < y->first_seen ? 1 : -1;
	return strcmp(x->account, y->account);
}

/* qsort order of GET devices?sort=last_seen: most recently seen first, then by account. */
static int
by_last_seen_desc(const void *a, const void *b)
{
	const struct abq_device *x = a, *y = b;
	if (x->last_seen != y->last_seen)
		return x->last_seen < y->last_seen ? 1 : -1;
	return strcmp(x->account, y->account);
}

/* A time parameter (ISO 8601 or seconds); -1 after a 400. */
static int
time_param(struct admin_req *r, const char *name, int64_t *t_r)
{
	const char *v = admin_query(r, name), *why;

	*t_r = 0;
	if (v == NULL)
		return 0;
	if (parse_time(v, t_r, &why) < 0) {
		admin_reply_error(r, 400, "bad_request", "%s '%s': %s", name, v, why);
		return -1;
	}
	return 0;
}

/* A count parameter (limit, offset) between min and max, dflt when absent; -1 after a 400. */
static int
count_param(struct admin_req *r, const char *name, long long min, long long max, size_t dflt,
            size_t *n_r)
{
	const char *v = admin_query(r, name), *why;
	long long n;

	*n_r = dflt;
	if (v == NULL)
		return 0;
	if (parse_int(v, min, max, &n, &why) < 0) {
		admin_reply_error(r, 400, "bad_request", "%s '%s': %s (%lld to %lld)", name, v, why,
		                  min, max);
		return -1;
	}
	*n_r = (size_t)n;
	return 0;
}

/*
 * GET devices: the registry's devices, filtered, sorted and paged; with
 * ?unseen=true the entries no device has used yet follow them.
 */
static void
list_devices(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device_filter f = {.default_domain = admin_config(r->a)->eas_default_domain};
	struct dev_query x = {.sort = SORT_ACCOUNT};
	const char *state = admin_query(r, "state"), *sort = admin_query(r, "sort");
	const char *acc = admin_query(r, "account"), *dom = admin_query(r, "domain");
	const char *unseen = admin_query(r, "unseen");
	char *account = NULL, *domain = NULL;
	const char *err = NULL;

	(void)var;
	(void)arg;
	x.type = admin_query(r, "type");
	x.model = admin_query(r, "model");
	x.os = admin_query(r, "os");
	x.q = admin_query(r, "q");
	if (state != NULL && abq_state_parse(state, true, &f.state) < 0) {
		admin_reply_error(r, 400, "bad_request",
		                  "state '%s': use Allowed, Blocked, Quarantined or Discovery",
		                  state);
		goto out;
	}
	if (sort != NULL) {
		if (strcmp(sort, "account") == 0)
			x.sort = SORT_ACCOUNT;
		else if (strcmp(sort, "-firstSeen") == 0)
			x.sort = SORT_FIRST_SEEN;
		else if (strcmp(sort, "-lastSeen") == 0)
			x.sort = SORT_LAST_SEEN;
		else {
			admin_reply_error(r, 400, "bad_request",
			                  "sort '%s': use account, -firstSeen or -lastSeen", sort);
			goto out;
		}
	}
	if ((acc != NULL && (account = account_of(r, acc)) == NULL) ||
	    (dom != NULL && (domain = domain_of(r, dom)) == NULL) ||
	    time_param(r, "seen_since", &f.seen_since) < 0 ||
	    time_param(r, "seen_before", &f.seen_before) < 0 ||
	    count_param(r, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &x.limit) < 0 ||
	    count_param(r, "offset", 0, 1000000000, 0, &x.offset) < 0)
		goto out;
	if (unseen != NULL && strcmp(unseen, "true") != 0 && strcmp(unseen, "false") != 0) {
		admin_reply_error(r, 400, "bad_request", "unseen '%s': use true or false", unseen);
		goto out;
	}
	f.account = account;
	f.domain = domain;
	if (abq_store_device_iter(admin_store(r->a), &f, dev_cb, &x, &err) != 0) {
		store_failed(r, err);
		goto out;
	}
	/* The entries have no type, model or OS: such a filter leaves none. */
	if (unseen != NULL && strcmp(unseen, "true") == 0 && !x.type && !x.model && !x.os) {
		char *errmsg = NULL;
		x.unseen = json_array();
		if (abq_registry_unseen_entries(admin_store(r->a), &f, unseen_cb, &x, &errmsg) !=
		    0) {
			admin_reply_registry(r, -1, errmsg);
			goto out;
		}
	}
	size_t from = 0, to = x.nkeep;
	if (x.sort != SORT_ACCOUNT) {
		if (x.nkeep > 1) /* an empty list has no array: qsort(NULL) is undefined */
			qsort(x.keep, x.nkeep, sizeof(*x.keep),
			      x.sort == SORT_FIRST_SEEN ? by_first_seen_desc : by_last_seen_desc);
		from = x.offset < x.nkeep ? x.offset : x.nkeep;
		to = from + x.limit < x.nkeep ? from + x.limit : x.nkeep;
	}
	json_t *o = json_object(), *arr = json_array();
	for (size_t i = from; i < to; i++)
		json_array_append_new(arr, device_json(&x.keep[i]));
	if (x.unseen != NULL)
		json_array_extend(arr, x.unseen);
	json_object_set_new(o, "devices", arr);
	json_object_set_new(o, "total", json_integer((json_int_t)x.total));
	json_object_set_new(o, "offset", json_integer((json_int_t)x.offset));
	json_object_set_new(o, "limit", json_integer((json_int_t)x.limit));
	admin_reply_json(r, 200, o);
out:
	for (size_t i = 0; i < x.nkeep; i++)
		abq_device_clear(&x.keep[i]);
	free(x.keep);
	json_decref(x.unseen);
	free(account);
	free(domain);
}

/* One history row, appended to the JSON array arg (abq_store_history_iter callback). */
static int
history_cb(void *arg, const struct abq_history *h)
{
	json_array_append_new(arg, history_json(h));
	return 0;
}

/* The device (account, device_id): 1 found, 0 after a 404, -1 after a 503. */
static int
device_lookup(struct admin_req *r, const char *account, const char *device_id, struct abq_device *d)
{
	const char *err = NULL;
	int rc = abq_store_device_get(admin_store(r->a), account, device_id, d, &err);
	if (rc < 0)
		store_failed(r, err);
	else if (rc == 0)
		admin_reply_error(r, 404, "not_found", "no device %s for %s", device_id, account);
	return rc;
}

/*
 * The device a path names (var[0] the account, var[1] the DeviceId): the
 * account in its canonical form (a new string), or NULL after a 400.
 */
static char *
device_path(struct admin_req *r, const char *const *var)
{
	char *account = account_of(r, var[0]);

	if (account != NULL && !device_id_ok(r, var[1])) {
		free(account);
		return NULL;
	}
	return account;
}

/* GET devices/{account}/{deviceId}: the device, the entries that apply to it, its history. */
static void
device_get(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device d = {0};
	struct abq_history_filter hf = {.limit = HISTORY_LIMIT};
	const char *err = NULL;
	char *account = device_path(r, var);
	json_t *entries = json_array(), *hist = json_array();

	(void)arg;
	if (account == NULL || device_lookup(r, account, var[1], &d) != 1)
		goto out;
	for (int i = 0; i < 2; i++) {
		struct abq_entry e = {0};
		int rc = abq_store_entry_get(admin_store(r->a), d.device_id,
		                             i == 0 ? account : NULL, &e, &err);
		if (rc < 0) {
			store_failed(r, err);
			goto out;
		}
		if (rc == 1) {
			json_array_append_new(entries, entry_json(&e));
			abq_entry_clear(&e);
		}
	}
	hf.device_id = d.device_id;
	hf.account = account;
	if (abq_store_history_iter(admin_store(r->a), &hf, history_cb, hist, &err) != 0) {
		store_failed(r, err);
		goto out;
	}
	json_t *o = json_object();
	json_object_set_new(o, "device", device_json(&d));
	json_object_set_new(o, "entries", entries);
	json_object_set_new(o, "history", hist);
	entries = hist = NULL;
	admin_reply_json(r, 200, o);
out:
	json_decref(entries);
	json_decref(hist);
	abq_device_clear(&d);
	free(account);
}

/*
 * POST devices/{account}/{deviceId}/allow|block|quarantine (arg: the state):
 * the entry DeviceId/account, or DeviceId alone with allAccounts.
 */
static void
device_decide(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device d = {0};
	struct abq_outcome o = {0};
	json_t *body = NULL, *all;
	char *errmsg = NULL, *account = device_path(r, var);
	bool dry;

	if (account == NULL || (body = admin_body(r, true)) == NULL ||
	    dry_run_of(r, body, &dry) < 0)
		goto out;
	all = json_object_get(body, "allAccounts");
	if (all != NULL && !json_is_boolean(all)) {
		admin_reply_error(r, 400, "bad_request", "allAccounts must be true or false");
		goto out;
	}
	if (device_lookup(r, account, var[1], &d) != 1)
		goto out;
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_set_entry(&c, d.device_id, json_is_true(all) ? NULL : account,
	                                (enum abq_state)arg, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	abq_device_clear(&d);
	json_decref(body);
	free(account);
}

/* DELETE devices/{account}/{deviceId}: forget the device and its entries. */
static void
device_delete(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device d = {0};
	struct abq_outcome o = {0};
	char *errmsg = NULL, *account = device_path(r, var);
	bool dry;

	(void)arg;
	if (account == NULL || dry_run_of(r, NULL, &dry) < 0 ||
	    device_lookup(r, account, var[1], &d) != 1)
		goto out;
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_delete(&c, d.device_id, account, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	abq_device_clear(&d);
	free(account);
}

/*
 * POST devices/{account}/{deviceId}/wipe ({"accountOnly": true} for the
 * account's data only): ask the device to erase itself; DELETE: withdraw a
 * wipe it has not confirmed. Both through the registry (history, dry run).
 */
static void
device_wipe(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device d = {0};
	struct abq_outcome o = {0};
	json_t *body = NULL, *only = NULL;
	char *errmsg = NULL, *account = device_path(r, var);
	bool dry;
	int rc;

	if (account == NULL)
		goto out;
	if (arg == 1) {
		if ((body = admin_body(r, true)) == NULL || dry_run_of(r, body, &dry) < 0)
			goto out;
		only = json_object_get(body, "accountOnly");
		if (only != NULL && !json_is_boolean(only)) {
			admin_reply_error(r, 400, "bad_request",
			                  "accountOnly must be true or false");
			goto out;
		}
	} else if (dry_run_of(r, NULL, &dry) < 0) {
		goto out;
	}
	if (device_lookup(r, account, var[1], &d) != 1)
		goto out;
	struct abq_ctx c = ctx_of(r, dry);
	if (arg == 1)
		rc = abq_registry_wipe(&c, account, d.device_id, json_is_true(only), &o, &errmsg);
	else
		rc = abq_registry_wipe_abort(&c, account, d.device_id, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	abq_device_clear(&d);
	json_decref(body);
	free(account);
}

/*
 * POST devices/{account}/{deviceId}/reset: remove the device's sync state
 * (every collection), so that the phone starts over; through the registry
 * (history, dry run), as abqctl mobile doResetDevice.
 */
static void
device_reset(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_device d = {0};
	struct abq_outcome o = {0};
	json_t *body = NULL;
	char *errmsg = NULL, *account = device_path(r, var);
	bool dry;

	(void)arg;
	if (account == NULL || (body = admin_body(r, true)) == NULL ||
	    dry_run_of(r, body, &dry) < 0 || device_lookup(r, account, var[1], &d) != 1)
		goto out;
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_reset_device(&c, account, d.device_id, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	abq_device_clear(&d);
	json_decref(body);
	free(account);
}

/* What the engine would decide for (account, device_id) now, and why. */
static void
explain(struct admin_req *r, const char *account, const char *device_id)
{
	struct abq_explanation x;
	char *errmsg = NULL;
	struct abq_ctx c = ctx_of(r, false);
	struct abq_policy *p = abq_registry_policy(admin_store(r->a), c.default_domain, &errmsg);

	if (p == NULL) {
		admin_reply_registry(r, -1, errmsg);
		return;
	}
	int rc = abq_registry_explain(&c, account, device_id, p, &x, &errmsg);
	if (rc != 0) {
		admin_reply_registry(r, rc, errmsg);
	} else {
		free(errmsg);
		admin_reply_json(r, 200, explain_json(&x));
		abq_explanation_clear(&x);
	}
	abq_policy_free(&p);
}

/* GET devices/{account}/{deviceId}/explain */
static void
device_explain(struct admin_req *r, const char *const *var, int arg)
{
	char *account = device_path(r, var);

	(void)arg;
	if (account != NULL)
		explain(r, account, var[1]);
	free(account);
}

/* GET explain?account=A&deviceId=D: a device not seen yet too. */
static void
explain_any(struct admin_req *r, const char *const *var, int arg)
{
	const char *acc = admin_query(r, "account"), *dev = admin_query(r, "deviceId");
	char *account;

	(void)var;
	(void)arg;
	if (acc == NULL || dev == NULL) {
		admin_reply_error(r, 400, "bad_request", "give account and deviceId");
		return;
	}
	if ((account = account_of(r, acc)) == NULL)
		return;
	if (device_id_ok(r, dev))
		explain(r, account, dev);
	free(account);
}

/* ------------------------------------------------------------- entries */

/* One list entry, appended to the JSON array arg (abq_store_entry_iter callback). */
static int
entry_cb(void *arg, const struct abq_entry *e)
{
	json_array_append_new(arg, entry_json(e));
	return 0;
}

/* GET entries[?state=S]: the list entries. */
static void
entries_list(struct admin_req *r, const char *const *var, int arg)
{
	enum abq_state st = ABQ_STATE_NONE;
	const char *sw = admin_query(r, "state"), *err = NULL;

	(void)var;
	(void)arg;
	if (sw != NULL && abq_state_parse(sw, false, &st) < 0) {
		admin_reply_error(r, 400, "bad_request",
		                  "state '%s': use Allowed, Blocked or Quarantined", sw);
		return;
	}
	json_t *arr = json_array(), *ob;
	int rc = abq_store_entry_iter(admin_store(r->a), st, entry_cb, arr, &err);
	if ((ob = list_object(r, rc, err, "entries", arr)) != NULL)
		admin_reply_json(r, 200, ob);
}

/* POST entries {"deviceId", "account", "state"}: write an entry (abqctl allow, block, ...). */
static void
entries_add(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	const char *dev, *acc, *sw;
	enum abq_state st;
	json_t *body;
	bool dry;

	(void)var;
	(void)arg;
	if ((body = admin_body(r, false)) == NULL || dry_run_of(r, body, &dry) < 0 ||
	    body_string(r, body, "deviceId", true, &dev) < 0 ||
	    body_string(r, body, "account", false, &acc) < 0 ||
	    body_string(r, body, "state", true, &sw) < 0 || !device_id_ok(r, dev) ||
	    (acc != NULL && (account = account_of(r, acc)) == NULL))
		goto out;
	if (abq_state_parse(sw, false, &st) < 0) {
		admin_reply_error(r, 400, "bad_request",
		                  "state '%s': use Allowed, Blocked or Quarantined", sw);
		goto out;
	}
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_set_entry(&c, dev, account, st, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	json_decref(body);
	free(account);
}

/* DELETE entries?deviceId=D[&account=A]: abqctl mobile abq delete. */
static void
entries_delete(struct admin_req *r, const char *const *var, int arg)
{
	const char *dev = admin_query(r, "deviceId"), *acc = admin_query(r, "account");
	struct abq_outcome o = {0};
	char *account = NULL, *errmsg = NULL;
	bool dry;

	(void)var;
	(void)arg;
	if (dry_run_of(r, NULL, &dry) < 0)
		return;
	if (dev == NULL) {
		admin_reply_error(r, 400, "bad_request", "give deviceId (and account)");
		return;
	}
	if (!device_id_ok(r, dev) || (acc != NULL && (account = account_of(r, acc)) == NULL))
		return;
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_delete(&c, dev, account, &o, &errmsg);
	if (rc == 1) {
		/* Nothing matched: the entry the path names is not there. */
		admin_reply_error(r, 404, "not_found", "%s", errmsg);
		free(errmsg);
		abq_outcome_clear(&o);
	} else {
		reply_outcome(r, rc, errmsg, &o, dry);
	}
	free(account);
}

/* --------------------------------------------------------------- rules */

/* One rule, appended to the JSON array arg (abq_store_rule_iter callback). */
static int
rule_cb(void *arg, const struct abq_rule *rule)
{
	json_array_append_new(arg, rule_json(rule));
	return 0;
}

/* A rule from the body; 0, or -1 after a 400 naming the problem. *domain_r is freed by the caller.
 */
static int
rule_of(struct admin_req *r, json_t *body, struct abq_rule *rule, char **domain_r)
{
	const char *ch, *m, *pat, *lvl, *dom;
	json_t *ord = json_object_get(body, "order");
	char *msg = NULL;

	memset(rule, 0, sizeof(*rule));
	*domain_r = NULL;
	rule->charac = ABQ_CHAR_DEVICEID;
	rule->match = ABQ_MATCH_REGEX;
	if (body_string(r, body, "characteristic", false, &ch) < 0 ||
	    body_string(r, body, "match", false, &m) < 0 ||
	    body_string(r, body, "pattern", true, &pat) < 0 ||
	    body_string(r, body, "level", true, &lvl) < 0 ||
	    body_string(r, body, "domain", false, &dom) < 0)
		return -1;
	if (ch != NULL && abq_charac_parse(ch, &rule->charac) < 0) {
		admin_reply_error(r, 400, "bad_request",
		                  "characteristic '%s': use DeviceId, DeviceType, DeviceModel, "
		                  "DeviceOS or UserAgent",
		                  ch);
		return -1;
	}
	if (m != NULL && abq_match_parse(m, &rule->match) < 0) {
		admin_reply_error(r, 400, "bad_request", "match '%s': use exact, glob or regex", m);
		return -1;
	}
	if (abq_state_parse(lvl, false, &rule->level) < 0) {
		admin_reply_error(r, 400, "bad_request",
		                  "level '%s': use Allowed, Blocked or Quarantined", lvl);
		return -1;
	}
	if (!json_is_integer(ord) || json_integer_value(ord) < ORDER_MIN ||
	    json_integer_value(ord) > ORDER_MAX) {
		admin_reply_error(r, 400, "bad_request",
		                  "\"order\" must be a whole number from %lld "
		                  "to %lld",
		                  ORDER_MIN, ORDER_MAX);
		return -1;
	}
	rule->order = json_integer_value(ord);
	if (pat[0] == '\0') {
		admin_reply_error(r, 400, "bad_request", "\"pattern\" is empty");
		return -1;
	}
	rule->pattern = (char *)pat;
	if (dom != NULL && (*domain_r = domain_of(r, dom)) == NULL)
		return -1;
	rule->domain = *domain_r;
	if (abq_rule_check(rule, &msg) < 0) {
		admin_reply_error(r, 400, "bad_request", "%s", msg != NULL ? msg : "bad rule");
		free(msg);
		return -1;
	}
	free(msg);
	return 0;
}

/* The rule id of the path (word), of a rule that exists; 0 after a 404/503. */
static int64_t
rule_id_of(struct admin_req *r, const char *word)
{
	const char *why, *err = NULL;
	long long id;
	struct abq_rule rule = {0};

	if (parse_int(word, 1, INT64_MAX, &id, &why) < 0) {
		admin_reply_error(r, 404, "not_found", "no rule %s", word);
		return 0;
	}
	int rc = abq_store_rule_get(admin_store(r->a), id, &rule, &err);
	if (rc < 0) {
		store_failed(r, err);
		return 0;
	}
	if (rc == 0) {
		admin_reply_error(r, 404, "not_found", "no rule %lld", id);
		return 0;
	}
	abq_rule_clear(&rule);
	return id;
}

/* POST rules/reorder {"domain", "ids"}: the orders 10, 20, 30... in the order of ids. */
static void
rules_reorder(struct admin_req *r, const char *const *var, int arg)
{
	json_t *body = admin_body(r, false), *ids;
	struct abq_outcome o = {0};
	const char *dom;
	char *domain = NULL, *errmsg = NULL;
	int64_t *v = NULL;
	bool dry;

	(void)var;
	(void)arg;
	if (body == NULL || dry_run_of(r, body, &dry) < 0 ||
	    body_string(r, body, "domain", false, &dom) < 0 ||
	    (dom != NULL && (domain = domain_of(r, dom)) == NULL))
		goto out;
	ids = json_object_get(body, "ids");
	if (!json_is_array(ids)) {
		admin_reply_error(r, 400, "bad_request", "\"ids\" must be an array of rule ids");
		goto out;
	}
	size_t n = json_array_size(ids);
	v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(ids, i);
		if (!json_is_integer(e)) {
			admin_reply_error(r, 400, "bad_request",
			                  "\"ids\" must be an array of rule ids");
			goto out;
		}
		v[i] = json_integer_value(e);
	}
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_rule_reorder(&c, domain, v, n, &o, &errmsg);
	if (rc == 1) {
		admin_reply_error(r, 400, "bad_request", "%s", errmsg);
		free(errmsg);
		abq_outcome_clear(&o);
		goto out;
	}
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	free(v);
	free(domain);
	json_decref(body);
}

/* GET rules[?domain=D]: the rules in evaluation order. */
static void
rules_list(struct admin_req *r, const char *const *var, int arg)
{
	const char *dw = admin_query(r, "domain"), *err = NULL;
	char *domain = NULL;

	(void)var;
	(void)arg;
	if (dw != NULL && (domain = domain_of(r, dw)) == NULL)
		return;
	json_t *arr = json_array(), *ob;
	int rc = abq_store_rule_iter(admin_store(r->a), domain, domain == NULL, rule_cb, arr, &err);
	if ((ob = list_object(r, rc, err, "rules", arr)) != NULL)
		admin_reply_json(r, 200, ob);
	free(domain);
}

/*
 * POST rules (var NULL): create a rule, or update the one with the same key;
 * PUT rules/{id}: change every field of rule id.
 */
static void
rules_set(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_outcome o = {0};
	struct abq_rule rule;
	char *domain = NULL, *errmsg = NULL;
	json_t *body = NULL;
	int64_t id = 0;
	bool dry;
	int rc;

	(void)arg;
	if (var[0] != NULL && (id = rule_id_of(r, var[0])) == 0)
		return;
	if ((body = admin_body(r, false)) == NULL || dry_run_of(r, body, &dry) < 0 ||
	    rule_of(r, body, &rule, &domain) < 0)
		goto out;
	struct abq_ctx c = ctx_of(r, dry);
	if (id != 0)
		rc = abq_registry_rule_update(&c, id, &rule, &o, &errmsg);
	else
		rc = abq_registry_rule_set(&c, &rule, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
out:
	json_decref(body);
	free(domain);
}

/* DELETE rules/{id} */
static void
rules_delete(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_outcome o = {0};
	char *errmsg = NULL;
	int64_t id;
	bool dry;

	(void)arg;
	if ((id = rule_id_of(r, var[0])) == 0 || dry_run_of(r, NULL, &dry) < 0)
		return;
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_rule_delete(&c, id, NULL, NULL, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
}

/* ---------------------------------------------------------- attributes */

/* One attribute set, appended as JSON to the array arg (abq_store_attr_iter callback). */
static int
attr_cb(void *arg, const struct abq_attr *at)
{
	/* Provisioning values share the table; they are listed under provisioning/. */
	if (at->name != NULL && strncmp(at->name, ABQ_PROV_PREFIX, ABQ_PROV_PREFIX_LEN) == 0)
		return 0;
	json_t *o = json_object();

	json_object_set_new(o, "scope", json_string(abq_scope_name(at->scope)));
	json_object_set_new(o, "target", jstr(at->target));
	json_object_set_new(o, "name", jstr(at->name));
	json_object_set_new(o, "value", jstr(at->value));
	json_object_set_new(o, "setBy", jstr(at->set_by));
	json_object_set_new(o, "setAt", jtime(at->set_at));
	json_array_append_new(arg, o);
	return 0;
}

/*
 * Every attribute there is, with its default, its values and the scopes it may
 * be set at: what the console's editor offers.
 */
static json_t *
known_attrs(void)
{
	static const char *const modes[] = {"Permissive", "Interactive", "Strict", "Disabled"};
	json_t *arr = json_array();

	for (const struct abq_attr_def *d = abq_attr_defs(); d->name != NULL; d++) {
		json_t *o = json_object(), *scopes = json_array(), *values = json_null();
		for (int s = ABQ_SCOPE_GLOBAL; s <= ABQ_SCOPE_ACCOUNT; s++)
			if (d->scopes & (1u << s))
				json_array_append_new(
				    scopes, json_string(abq_scope_name((enum abq_scope)s)));
		if (d->type == ABQ_ATTR_MODE) {
			values = json_array();
			for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
				json_array_append_new(values, json_string(modes[i]));
		} else if (d->type == ABQ_ATTR_BOOL) {
			values = json_array();
			json_array_append_new(values, json_string("TRUE"));
			json_array_append_new(values, json_string("FALSE"));
		}
		json_object_set_new(o, "name", json_string(d->name));
		json_object_set_new(o, "default", jstr(d->default_value));
		json_object_set_new(o, "values", values);
		json_object_set_new(o, "scopes", scopes);
		json_object_set_new(o, "help", jstr(d->help));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* GET attributes: the attributes set, and every attribute there is. */
static void
attributes_list(struct admin_req *r, const char *const *var, int arg)
{
	const char *err = NULL;

	(void)var;
	(void)arg;
	json_t *arr = json_array(), *ob;
	int rc = abq_store_attr_iter(admin_store(r->a), attr_cb, arr, &err);
	if ((ob = list_object(r, rc, err, "attributes", arr)) != NULL) {
		json_object_set_new(ob, "known", known_attrs());
		admin_reply_json(r, 200, ob);
	}
}

/*
 * PUT or DELETE attributes/global/{name}, attributes/domain/{domain}/{name},
 * attributes/account/{account}/{name} (arg: the scope): set or unset one
 * attribute.
 */
static void
attributes_set(struct admin_req *r, const char *const *var, int arg)
{
	enum abq_scope scope = (enum abq_scope)arg;
	char *target = NULL, *errmsg = NULL, *canon = NULL;
	const char *name = scope == ABQ_SCOPE_GLOBAL ? var[0] : var[1], *value = NULL;
	json_t *body = NULL;
	struct abq_outcome o = {0};
	bool dry;

	if (scope == ABQ_SCOPE_DOMAIN && (target = domain_of(r, var[0])) == NULL)
		return;
	if (scope == ABQ_SCOPE_ACCOUNT && (target = account_of(r, var[0])) == NULL)
		return;
	const struct abq_attr_def *def = abq_attr_find(name);
	if (def == NULL) {
		admin_reply_error(r, 404, "not_found", "no attribute %s", name);
		goto out;
	}
	if ((def->scopes & (1u << scope)) == 0) {
		admin_reply_error(r, 400, "bad_request", "%s cannot be set at %s scope", def->name,
		                  abq_scope_name(scope));
		goto out;
	}
	if (r->method == EVHTTP_REQ_PUT) {
		if ((body = admin_body(r, false)) == NULL || dry_run_of(r, body, &dry) < 0 ||
		    body_string(r, body, "value", true, &value) < 0)
			goto out;
		if (abq_attr_validate(def, value, &canon, &errmsg) < 0) {
			admin_reply_error(r, 400, "bad_request", "%s: %s", def->name, errmsg);
			goto out;
		}
	} else if (dry_run_of(r, NULL, &dry) < 0) {
		goto out;
	}
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_attr_set(&c, scope, target, def->name, value, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
	errmsg = NULL;
out:
	json_decref(body);
	free(target);
	free(canon);
	free(errmsg);
}

/* ---------------------------------------------------------- provisioning */

/* The word of a key's type, for the console's editor. */
static const char *
prov_type_word(enum abq_prov_type t)
{
	switch (t) {
	case ABQ_PROV_BOOL:
		return "boolean";
	case ABQ_PROV_NUMBER:
		return "number";
	case ABQ_PROV_ENUM:
		return "enum";
	case ABQ_PROV_LIST:
	default:
		return "list";
	}
}

/*
 * GET provisioning/global, provisioning/domain/{domain},
 * provisioning/account/{account} (arg: the scope): every key's effective
 * value and its source, the policy version, whether it imposes anything, and
 * what each key takes.
 */
static void
provisioning_get(struct admin_req *r, const char *const *var, int arg)
{
	enum abq_scope scope = (enum abq_scope)arg;
	char *target = NULL, *errmsg = NULL;
	struct abq_prov_policy eff;

	if (scope == ABQ_SCOPE_DOMAIN && (target = domain_of(r, var[0])) == NULL)
		return;
	if (scope == ABQ_SCOPE_ACCOUNT && (target = account_of(r, var[0])) == NULL)
		return;
	struct abq_policy *p = abq_registry_attr_policy(
	    admin_store(r->a), admin_config(r->a)->eas_default_domain, &errmsg);
	if (p == NULL) {
		store_failed(r, errmsg);
		free(errmsg);
		free(target);
		return;
	}
	abq_policy_provisioning(p, scope, target, &eff);
	json_t *ob = json_object(), *arr = json_array();
	json_object_set_new(ob, "scope", json_string(abq_scope_name(scope)));
	json_object_set_new(ob, "target", jstr(target));
	json_object_set_new(ob, "version", json_integer(abq_prov_version(&eff)));
	json_object_set_new(ob, "imposes", json_boolean(abq_prov_imposes(&eff)));
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		const struct abq_prov_def *d = abq_prov_by_id((enum abq_prov_id)i);
		json_t *o = json_object();
		json_object_set_new(o, "key", json_string(d->name));
		json_object_set_new(o, "value", jstr(eff.text[i]));
		json_object_set_new(o, "source", json_string(abq_prov_source_name(eff.from[i])));
		json_object_set_new(o, "default", jstr(d->default_value));
		json_object_set_new(o, "type", json_string(prov_type_word(d->type)));
		if (d->type == ABQ_PROV_NUMBER) {
			json_object_set_new(o, "min", json_integer(d->min));
			json_object_set_new(o, "max", json_integer(d->max));
		}
		if (d->type == ABQ_PROV_ENUM)
			json_object_set_new(o, "values", jstr(d->meanings));
		json_object_set_new(o, "optional", json_boolean(d->optional));
		json_object_set_new(o, "since",
		                    d->since != 0
		                        ? json_sprintf("%d.%d", d->since / 10, d->since % 10)
		                        : json_null());
		json_object_set_new(o, "help", jstr(d->help));
		json_array_append_new(arr, o);
	}
	json_object_set_new(ob, "provisioning", arr);
	admin_reply_json(r, 200, ob);
	abq_policy_free(&p);
	free(target);
}

/*
 * PUT or DELETE provisioning/global/{key}, provisioning/domain/{domain}/{key},
 * provisioning/account/{account}/{key} (arg: the scope): set ({"value": ...})
 * or unset one key, as abqctl mobile setProvisioning / unsetProvisioning.
 */
static void
provisioning_set(struct admin_req *r, const char *const *var, int arg)
{
	enum abq_scope scope = (enum abq_scope)arg;
	const char *key = scope == ABQ_SCOPE_GLOBAL ? var[0] : var[1], *value = NULL;
	char *target = NULL, *errmsg = NULL;
	json_t *body = NULL;
	struct abq_outcome o = {0};
	bool dry;

	if (scope == ABQ_SCOPE_DOMAIN && (target = domain_of(r, var[0])) == NULL)
		return;
	if (scope == ABQ_SCOPE_ACCOUNT && (target = account_of(r, var[0])) == NULL)
		return;
	const struct abq_prov_def *def = abq_prov_find(key);
	if (def == NULL || strncasecmp(key, ABQ_PROV_PREFIX, ABQ_PROV_PREFIX_LEN) == 0) {
		admin_reply_error(r, 404, "not_found", "no provisioning key %s", key);
		goto out;
	}
	if (r->method == EVHTTP_REQ_PUT) {
		char *canon = NULL;
		if ((body = admin_body(r, false)) == NULL || dry_run_of(r, body, &dry) < 0 ||
		    body_string(r, body, "value", true, &value) < 0)
			goto out;
		if (abq_prov_validate(def, value, &canon, &errmsg) < 0) {
			admin_reply_error(r, 400, "bad_request", "%s", errmsg);
			goto out;
		}
		free(canon);
	} else if (dry_run_of(r, NULL, &dry) < 0) {
		goto out;
	}
	struct abq_ctx c = ctx_of(r, dry);
	int rc = abq_registry_prov_set(&c, scope, target, key, value, &o, &errmsg);
	reply_outcome(r, rc, errmsg, &o, dry);
	errmsg = NULL;
out:
	json_decref(body);
	free(target);
	free(errmsg);
}

/* ------------------------------------------------------------- templates */

/* One notice template, appended to the JSON array arg (abq_store_template_iter callback). */
static int
template_cb(void *arg, const struct abq_template *t)
{
	json_array_append_new(arg, template_json(t));
	return 0;
}

/*
 * Take member name of body into *dst when present (a string sets, null
 * clears) and add field to *fields; -1 after a 400.
 */
static int
take_text(struct admin_req *r, json_t *body, const char *name, unsigned field, char **dst,
          unsigned *fields)
{
	json_t *v = json_object_get(body, name);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) && !json_is_null(v)) {
		admin_reply_error(r, 400, "bad_request", "\"%s\" must be a string or null", name);
		return -1;
	}
	*dst = json_is_string(v) ? (char *)json_string_value(v) : NULL;
	*fields |= field;
	return 0;
}

/* GET templates: every stored template. */
static void
templates_list(struct admin_req *r, const char *const *var, int arg)
{
	const char *err = NULL;

	(void)var;
	(void)arg;
	json_t *arr = json_array(), *ob;
	int rc = abq_store_template_iter(admin_store(r->a), template_cb, arr, &err);
	if ((ob = list_object(r, rc, err, "templates", arr)) != NULL)
		admin_reply_json(r, 200, ob);
}

/*
 * PUT or DELETE templates/{kind}/{locale}[?domain=D]: set
 * the texts given (null clears, a missing member keeps), or remove the
 * template.
 */
static void
templates_set(struct admin_req *r, const char *const *var, int arg)
{
	struct abq_template t = {0}, written = {0};
	struct abq_outcome o = {0};
	const char *kind, *locale = var[1], *dw = admin_query(r, "domain");
	char *domain = NULL, *errmsg = NULL;
	json_t *body = NULL;
	enum abq_scope scope = ABQ_SCOPE_GLOBAL;
	unsigned fields = 0;
	int rc;

	if ((kind = abq_template_kind_parse(var[0])) == NULL) {
		admin_reply_error(r, 400, "bad_request",
		                  "kind '%s': use quarantined, blocked, allowed, admin-digest or "
		                  "admin-immediate",
		                  var[0]);
		return;
	}
	size_t n = strlen(locale);
	if (n == 0 || n > LOCALE_MAX ||
	    strspn(locale, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
	        n) {
		admin_reply_error(r, 400, "bad_request",
		                  "locale '%s': a language tag such as en, de or de-DE", locale);
		return;
	}
	if (dw != NULL) {
		if ((domain = domain_of(r, dw)) == NULL)
			return;
		scope = ABQ_SCOPE_DOMAIN;
	}
	struct abq_ctx c = ctx_of(r, false);
	(void)arg;
	if (r->method == EVHTTP_REQ_DELETE) {
		rc = abq_registry_template_delete(&c, scope, domain, kind, locale, &o, &errmsg);
		if (rc == 1)
			admin_reply_error(r, 404, "not_found", "no %s%s %s template for locale %s",
			                  domain ? "domain " : "global", domain ? domain : "",
			                  abq_template_kind_word(kind), locale);
		else if (rc < 0) {
			admin_reply_registry(r, rc, errmsg);
			errmsg = NULL;
		} else {
			json_t *ob = json_object();
			json_object_set_new(ob, "deleted", json_integer((json_int_t)o.affected));
			admin_reply_json(r, 200, ob);
		}
		goto out;
	}
	if ((body = admin_body(r, false)) == NULL)
		goto out;
	t.scope = scope;
	t.domain = domain;
	t.kind = (char *)kind;
	t.locale = (char *)locale;
	if (take_text(r, body, "from", ABQ_TEMPLATE_FROM, &t.from, &fields) < 0 ||
	    take_text(r, body, "replyTo", ABQ_TEMPLATE_REPLY_TO, &t.reply_to, &fields) < 0 ||
	    take_text(r, body, "subject", ABQ_TEMPLATE_SUBJECT, &t.subject, &fields) < 0 ||
	    take_text(r, body, "bodyPlain", ABQ_TEMPLATE_BODY_PLAIN, &t.body_plain, &fields) < 0 ||
	    take_text(r, body, "bodyHtml", ABQ_TEMPLATE_BODY_HTML, &t.body_html, &fields) < 0)
		goto out;
	if (fields == 0) {
		admin_reply_error(
		    r, 400, "bad_request",
		    "nothing to set: give from, replyTo, subject, bodyPlain or bodyHtml");
		goto out;
	}
	rc = abq_registry_template_set(&c, &t, fields, &written, &o, &errmsg);
	if (rc != 0) {
		admin_reply_registry(r, rc, errmsg);
		errmsg = NULL;
		goto out;
	}
	json_t *ob = json_object();
	json_object_set_new(ob, "set", json_true());
	json_object_set_new(ob, "template", template_json(&written));
	admin_reply_json(r, 200, ob);
out:
	abq_template_clear(&written);
	abq_outcome_clear(&o);
	json_decref(body);
	free(domain);
	free(errmsg);
}

/* ---------------------------------------------------------------- outbox */

/* One notice of the outbox, appended to the JSON array arg (abq_store_notice_iter callback). */
static int
notice_cb(void *arg, const struct abq_notice *n)
{
	json_array_append_new(arg, notice_json(n));
	return 0;
}

/* GET outbox[?state=queued|sent|failed]: the notices. */
static void
outbox(struct admin_req *r, const char *const *var, int arg)
{
	const char *st = admin_query(r, "state"), *err = NULL;

	(void)var;
	(void)arg;
	if (st != NULL && strcmp(st, "queued") != 0 && strcmp(st, "sent") != 0 &&
	    strcmp(st, "failed") != 0) {
		admin_reply_error(r, 400, "bad_request", "state '%s': use queued, sent or failed",
		                  st);
		return;
	}
	json_t *arr = json_array(), *ob;
	int rc = abq_store_notice_iter(admin_store(r->a), st, notice_cb, arr, &err);
	if ((ob = list_object(r, rc, err, "notices", arr)) != NULL)
		admin_reply_json(r, 200, ob);
}

/* -------------------------------------------------------------- routing */

/*
 * A route: a method, a path pattern (the segments after /api/v1/, "{name}"
 * standing for any one segment), the handler and its argument. The handler
 * gets the segments standing for the pattern's {names}, in order, then NULL.
 */
typedef void route_fn(struct admin_req *r, const char *const *var, int arg);
struct route {
	enum evhttp_cmd_type method;
	const char *pattern;
	route_fn *fn;
	int arg;
};

/*
 * Every endpoint of docs/api.md but those server.c answers (login, logout,
 * session, events). The first pattern that fits the path wins (rules/reorder
 * before rules/{id}); among its rows the method picks the handler, and a
 * method none has gets a 405 naming the rows' methods in this order.
 */
static const struct route routes[] = {
    {EVHTTP_REQ_GET, "devices", list_devices, 0},
    {EVHTTP_REQ_GET, "devices/{account}/{deviceId}", device_get, 0},
    {EVHTTP_REQ_DELETE, "devices/{account}/{deviceId}", device_delete, 0},
    {EVHTTP_REQ_GET, "devices/{account}/{deviceId}/explain", device_explain, 0},
    {EVHTTP_REQ_POST, "devices/{account}/{deviceId}/allow", device_decide, ABQ_STATE_ALLOWED},
    {EVHTTP_REQ_POST, "devices/{account}/{deviceId}/block", device_decide, ABQ_STATE_BLOCKED},
    {EVHTTP_REQ_POST, "devices/{account}/{deviceId}/quarantine", device_decide,
     ABQ_STATE_QUARANTINED},
    {EVHTTP_REQ_POST, "devices/{account}/{deviceId}/wipe", device_wipe, 1},
    {EVHTTP_REQ_DELETE, "devices/{account}/{deviceId}/wipe", device_wipe, 0},
    {EVHTTP_REQ_POST, "devices/{account}/{deviceId}/reset", device_reset, 0},
    {EVHTTP_REQ_GET, "explain", explain_any, 0},
    {EVHTTP_REQ_GET, "entries", entries_list, 0},
    {EVHTTP_REQ_POST, "entries", entries_add, 0},
    {EVHTTP_REQ_DELETE, "entries", entries_delete, 0},
    {EVHTTP_REQ_GET, "rules", rules_list, 0},
    {EVHTTP_REQ_POST, "rules", rules_set, 0},
    {EVHTTP_REQ_POST, "rules/reorder", rules_reorder, 0},
    {EVHTTP_REQ_PUT, "rules/{id}", rules_set, 0},
    {EVHTTP_REQ_DELETE, "rules/{id}", rules_delete, 0},
    {EVHTTP_REQ_GET, "attributes", attributes_list, 0},
    {EVHTTP_REQ_PUT, "attributes/global/{name}", attributes_set, ABQ_SCOPE_GLOBAL},
    {EVHTTP_REQ_DELETE, "attributes/global/{name}", attributes_set, ABQ_SCOPE_GLOBAL},
    {EVHTTP_REQ_PUT, "attributes/domain/{domain}/{name}", attributes_set, ABQ_SCOPE_DOMAIN},
    {EVHTTP_REQ_DELETE, "attributes/domain/{domain}/{name}", attributes_set, ABQ_SCOPE_DOMAIN},
    {EVHTTP_REQ_PUT, "attributes/account/{account}/{name}", attributes_set, ABQ_SCOPE_ACCOUNT},
    {EVHTTP_REQ_DELETE, "attributes/account/{account}/{name}", attributes_set, ABQ_SCOPE_ACCOUNT},
    {EVHTTP_REQ_GET, "provisioning/global", provisioning_get, ABQ_SCOPE_GLOBAL},
    {EVHTTP_REQ_GET, "provisioning/domain/{domain}", provisioning_get, ABQ_SCOPE_DOMAIN},
    {EVHTTP_REQ_GET, "provisioning/account/{account}", provisioning_get, ABQ_SCOPE_ACCOUNT},
    {EVHTTP_REQ_PUT, "provisioning/global/{key}", provisioning_set, ABQ_SCOPE_GLOBAL},
    {EVHTTP_REQ_DELETE, "provisioning/global/{key}", provisioning_set, ABQ_SCOPE_GLOBAL},
    {EVHTTP_REQ_PUT, "provisioning/domain/{domain}/{key}", provisioning_set, ABQ_SCOPE_DOMAIN},
    {EVHTTP_REQ_DELETE, "provisioning/domain/{domain}/{key}", provisioning_set, ABQ_SCOPE_DOMAIN},
    {EVHTTP_REQ_PUT, "provisioning/account/{account}/{key}", provisioning_set, ABQ_SCOPE_ACCOUNT},
    {EVHTTP_REQ_DELETE, "provisioning/account/{account}/{key}", provisioning_set,
     ABQ_SCOPE_ACCOUNT},
    {EVHTTP_REQ_GET, "templates", templates_list, 0},
    {EVHTTP_REQ_PUT, "templates/{kind}/{locale}", templates_set, 0},
    {EVHTTP_REQ_DELETE, "templates/{kind}/{locale}", templates_set, 0},
    {EVHTTP_REQ_GET, "outbox", outbox, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The most {names} a pattern has. */
#define ROUTE_VARS 3

/*
 * The resources whose other paths answer "nothing at PATH" (with a hint of
 * what is there); any other path answers "no endpoint PATH".
 */
static const struct {
	const char *resource, *hint;
} resources[] = {
    {"devices", ""},
    {"entries", ""},
    {"rules", ""},
    {"outbox", ""},
    {"attributes", ATTR_PATHS},
    {"provisioning", PROV_PATHS},
    {"templates", " (templates/KIND/LOCALE)"},
};

/*
 * Whether the path after /api/v1/ fits pattern; var gets the segments that
 * stand for its {names}, then NULL.
 */
static bool
route_fits(const struct admin_req *r, const char *pattern, const char **var)
{
	size_t i = 2, nvar = 0;

	for (const char *p = pattern; *p != '\0'; i++) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (i >= r->nseg)
			return false;
		if (p[0] == '{') {
			if (nvar == ROUTE_VARS)
				return false;
			var[nvar++] = r->seg[i];
		} else if (strlen(r->seg[i]) != len || strncmp(r->seg[i], p, len) != 0) {
			return false;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	var[nvar] = NULL;
	return i == r->nseg;
}

/* The HTTP name of a route's method, for Allow. */
static const char *
method_word(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "?";
	}
}

/*
 * Route a request under /api/v1 by the routes table: the first pattern that
 * fits names the resource; its handler for the method runs, else 405 with the
 * methods it has (Allow), and a path no pattern fits is 404, with a hint when
 * the resource exists.
 */
void
api_dispatch(struct admin_req *r)
{
	const char *var[ROUTE_VARS + 1];
	const char *pattern = NULL;
	char allow[64] = "";

	for (size_t i = 0; i < NROUTES && pattern == NULL; i++)
		if (route_fits(r, routes[i].pattern, var))
			pattern = routes[i].pattern;
	if (pattern == NULL) {
		const char *what = r->nseg >= 3 ? r->seg[2] : "";
		for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++)
			if (strcmp(what, resources[i].resource) == 0) {
				admin_reply_error(r, 404, "not_found", "nothing at %s%s", r->path,
				                  resources[i].hint);
				return;
			}
		admin_reply_error(r, 404, "not_found", "no endpoint %s", r->path);
		return;
	}
	for (size_t i = 0; i < NROUTES; i++) {
		if (strcmp(routes[i].pattern, pattern) != 0)
			continue;
		if (routes[i].method == r->method) {
			routes[i].fn(r, var, routes[i].arg);
			return;
		}
		size_t n = strlen(allow);
		snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
		         method_word(routes[i].method));
	}
	admin_reply_method(r, allow);
}
