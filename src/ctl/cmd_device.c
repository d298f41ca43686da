/*
 * cmd_device.c: the commands that read the registry: list, getDeviceList,
 * getAllDevices, getDeviceInfo, history and explain.
 *
 * Listings stream from the store's iterators straight to the output (a table
 * or a JSON array), so that 100,000 devices cost one row of memory at a time.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/provision.h"
#include "lib/util.h"

/*
 * Run one device listing with filter f; with lists, the entries no device
 * has used yet follow the devices (abqctl mobile abq list).
 */
static int
list_devices(struct ctl_env *env, const struct abq_device_filter *f, bool lists)
{
	struct device_lister l;
	const char *err = NULL;
	char *errmsg = NULL;
	int rc;

	device_lister_begin(&l, env);
	rc = abq_store_device_iter(env->store, f, device_lister_cb, &l, &err);
	if (rc == 0 && lists &&
	    abq_registry_unseen_entries(env->store, f, device_lister_entry_cb, &l, &errmsg) != 0)
		rc = -1;
	device_lister_end(&l);
	if (errmsg != NULL) {
		ctl_fail("%s", errmsg);
		free(errmsg);
		return CTL_REFUSED;
	}
	if (rc != 0)
		return ctl_fail("store: %s", err != NULL ? err : "listing the devices failed");
	return CTL_OK;
}

/*
 * mobile abq list [status S] [account A] [domain D]: the devices, then the
 * entries no device has used yet (the allowed, blocked and quarantined lists
 * as the administrator filled them).
 */
int
do_list(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	struct abq_device_filter f = {.default_domain = env->config->eas_default_domain};
	const char *status = ctl_arg(args, "status");
	const char *account_word = ctl_arg(args, "account");
	const char *domain_word = ctl_arg(args, "domain");
	char *account = NULL, *domain = NULL;
	int rc = CTL_REFUSED;

	if (status != NULL && ctl_state(status, true, &f.state) < 0)
		goto out;
	if (account_word != NULL && ctl_account(env, account_word, &account) < 0)
		goto out;
	if (domain_word != NULL && ctl_domain(domain_word, &domain) < 0)
		goto out;
	f.account = account;
	f.domain = domain;
	rc = list_devices(env, &f, true);
out:
	free(account);
	free(domain);
	return rc;
}

/* mobile getDeviceList ACCOUNT: the devices of one account. */
int
do_device_list(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	struct abq_device_filter f = {.default_domain = env->config->eas_default_domain};
	char *account = NULL;
	int rc;

	if (ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	f.account = account;
	rc = list_devices(env, &f, false);
	free(account);
	return rc;
}

/* mobile getAllDevices */
int
do_all_devices(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	struct abq_device_filter f = {.default_domain = env->config->eas_default_domain};

	return list_devices(env, &f, false);
}

/* One "label: value" line of getDeviceInfo; the value as people are shown it. */
static void
info_line(FILE *out, const char *label, const char *value)
{
	fprintf(out, "%-16s %s\n", label, shown(value));
}

/*
 * mobile getDeviceInfo ACCOUNT DEVICE_ID: everything known about one device,
 * with the entries that apply to it (its own, then its DeviceId's).
 */
int
do_device_info(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	struct abq_device d = {0};
	struct abq_entry entries[2];
	bool have[2] = {false, false};
	char *account = NULL;
	const char *err = NULL;
	int rc, status = CTL_REFUSED;

	memset(entries, 0, sizeof(entries));
	if (ctl_device_id(device_id) < 0 ||
	    ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	rc = abq_store_device_get(env->store, account, device_id, &d, &err);
	if (rc < 0) {
		ctl_fail("store: %s", err != NULL ? err : "reading the device failed");
		goto out;
	}
	if (rc == 0) {
		ctl_fail("no device %s for account %s", device_id, account);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		rc = abq_store_entry_get(env->store, d.device_id, i == 0 ? account : NULL,
		                         &entries[i], &err);
		if (rc < 0) {
			ctl_fail("store: %s", err != NULL ? err : "reading the entries failed");
			goto out;
		}
		have[i] = rc == 1;
	}
	if (env->json) {
		json_t *o = json_object();
		json_t *a = json_array();
		json_object_set_new(o, "device", device_json(&d));
		for (int i = 0; i < 2; i++)
			if (have[i])
				json_array_append_new(a, entry_json(&entries[i]));
		json_object_set_new(o, "entries", a);
		json_print(env->out, o);
	} else {
		char buf[64], t1[32], t2[32];
		FILE *out = env->out;
		info_line(out, "account:", d.account);
		info_line(out, "device id:", d.device_id);
		info_line(out, "type:", d.device_type);
		info_line(out, "model:", d.model);
		info_line(out, "os:", d.os);
		info_line(out, "os language:", d.os_language);
		info_line(out, "imei:", d.imei);
		info_line(out, "friendly name:", d.friendly_name);
		info_line(out, "phone number:", d.phone_number);
		info_line(out, "operator:", d.mobile_operator);
		info_line(out, "user agent:", d.user_agent);
		info_line(out, "eas version:", d.eas_version);
		info_line(out, "last address:", d.last_address);
		info_line(out, "last command:", d.last_command);
		info_line(out, "first seen:", format_time(d.first_seen, t1));
		info_line(out, "last seen:", format_time(d.last_seen, t2));
		info_line(out, "state:", fmt_state(d.state, d.reason, d.rule_id, buf));
		fprintf(out, "%-16s %s at %s\n", "state set by:", shown(d.state_by),
		        format_time(d.state_at, t1));
		if (d.wipe != ABQ_WIPE_NONE) {
			fprintf(out, "%-16s %s%s by %s at %s\n",
			        "wipe:", d.wipe_account_only ? "account only, " : "", "requested",
			        shown(d.wipe_by), format_time(d.wipe_at, t1));
			info_line(out, "wipe confirmed:",
			          d.wipe == ABQ_WIPE_ACKNOWLEDGED
			              ? format_time(d.wipe_acked_at, t2)
			              : "not yet (the device gets it at its next request)");
		}
		if (d.provision_status != 0)
			fprintf(out, "%-16s Status %d (%s)\n", "policy:", d.provision_status,
			        abq_prov_status_text(d.provision_status));
		for (int i = 0; i < 2; i++) {
			if (!have[i])
				continue;
			fprintf(out, "%-16s %s%s%s: %s (by %s at %s)\n",
			        "entry:", shown(entries[i].device_id),
			        entries[i].account != NULL ? "/" : "",
			        entries[i].account != NULL ? shown(entries[i].account) : "",
			        abq_state_name(entries[i].state), shown(entries[i].created_by),
			        format_time(entries[i].created_at, t2));
		}
		if (!have[0] && !have[1])
			info_line(out, "entry:", "none (decided by rules and mode)");
	}
	status = CTL_OK;
out:
	for (int i = 0; i < 2; i++)
		if (have[i])
			abq_entry_clear(&entries[i]);
	abq_device_clear(&d);
	free(account);
	return status;
}

/* History listing state. */
struct historian {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
	size_t count;
};

/* Print one history row. */
static int
history_cb(void *arg, const struct abq_history *h)
{
	struct historian *x = arg;
	char at[32];

	x->count++;
	if (x->env->json) {
		jstream_item(&x->js, history_json(h));
		return 0;
	}
	const char *cells[] = {format_time(h->at, at), h->who,       h->what,  h->subject,
	                       h->old_value,           h->new_value, h->reason};
	table_row(x->table, cells);
	return 0;
}

/*
 * mobile abq history [DEVICE_ID] [account A] [limit N]: who changed what, when
 * and why; oldest first, or the N newest first with limit.
 */
int
do_history(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const char *const headers[] = {"AT",  "WHO", "WHAT",  "SUBJECT",
	                                      "OLD", "NEW", "REASON"};
	const char *device_id = ctl_arg(args, "device-id");
	const char *account_word = ctl_arg(args, "account");
	const char *limit_word = ctl_arg(args, "n");
	struct abq_history_filter f = {0};
	struct historian x = {.env = env};
	char *account = NULL;
	const char *err = NULL;
	int rc;

	if (device_id != NULL && ctl_device_id(device_id) < 0)
		return CTL_REFUSED;
	if (account_word != NULL && ctl_account(env, account_word, &account) < 0)
		return CTL_REFUSED;
	if (limit_word != NULL) {
		long long n;
		const char *why;
		if (parse_int(limit_word, 1, 100000000, &n, &why) < 0) {
			free(account);
			return ctl_fail("limit '%s': %s", limit_word, why);
		}
		f.limit = (size_t)n;
	}
	f.device_id = device_id;
	f.account = account;
	if (env->json)
		jstream_begin(&x.js, env->out, NULL, "history");
	else
		x.table = table_new(env->out, 7, headers);
	rc = abq_store_history_iter(env->store, &f, history_cb, &x, &err);
	if (env->json) {
		jstream_end(&x.js);
	} else {
		table_finish(&x.table);
		if (x.count == 0)
			fprintf(env->out, "no history\n");
	}
	free(account);
	if (rc != 0)
		return ctl_fail("store: %s", err != NULL ? err : "reading the history failed");
	return CTL_OK;
}

/*
 * mobile abq explain DEVICE_ID account A: what the engine decides for this
 * device now, which step decided and why, from the same inputs abqd uses.
 */
int
do_explain(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *device_id = ctl_arg(args, "device-id");
	struct abq_explanation x;
	struct abq_policy *p;
	char *account = NULL, *errmsg = NULL;
	int rc;

	if (ctl_device_id(device_id) < 0 ||
	    ctl_account(env, ctl_arg(args, "account"), &account) < 0)
		return CTL_REFUSED;
	p = abq_registry_policy(env->store, env->config->eas_default_domain, &errmsg);
	if (p == NULL) {
		free(account);
		return ctl_registry_status(-1, errmsg);
	}
	rc = abq_registry_explain(&env->ctx, account, device_id, p, &x, &errmsg);
	free(account);
	if (rc != 0) {
		abq_policy_free(&p);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (env->json) {
		json_print(env->out, explain_json(&x));
	} else {
		char buf[64], *text = abq_explain_text(&x), *src = abq_explain_mode_source(&x);
		FILE *out = env->out;
		if (x.known)
			fprintf(
			    out,
			    "%s / %s: type %s, model %s, OS %s, user agent %s; recorded state %s\n",
			    shown(x.device.account), shown(x.device.device_id),
			    shown(x.device.device_type), shown(x.device.model), shown(x.device.os),
			    shown(x.device.user_agent),
			    fmt_state(x.device.state, x.device.reason, x.device.rule_id, buf));
		else
			fprintf(out,
			        "%s / %s: not in the registry; explained as a new device of which "
			        "only the DeviceId is known\n",
			        shown(x.device.account), shown(x.device.device_id));
		fprintf(out, "domain %s; mode %s (%s)\n", shown(x.domain), abq_mode_name(x.in.mode),
		        shown(src));
		/* It quotes the fact a rule matched: the phone's own text. */
		fprintf(out, "%s\n", shown(text));
		fprintf(out, "decision: %s\n",
		        fmt_state(x.verdict.state, x.verdict.reason, x.verdict.rule_id, buf));
		if (x.known &&
		    (x.device.state != x.verdict.state || x.device.reason != x.verdict.reason ||
		     x.device.rule_id != x.verdict.rule_id))
			fprintf(out, "note: the recorded state differs; the device is decided "
			             "anew at its next request\n");
		free(text);
		free(src);
	}
	abq_explanation_clear(&x);
	abq_policy_free(&p);
	return CTL_OK;
}
