/*
 * test_registry.c: the registry operations on a real SQLite store.
 *
 * Each test opens a fresh store in a temporary folder and drives the same
 * functions abqctl and abqd call, then checks what an administrator would see:
 * device states and reasons, history rows, change-log rows, and that dry runs
 * and failed operations leave nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/registry.h"
#include "lib/util.h"

struct fixture {
	char dir[64];
	struct abq_store *store;
	struct abq_ctx ctx;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *err = NULL;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/abq-registry-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	char *url = xasprintf("sqlite:%s/abqd.db", fx->dir);
	fx->store = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);
	free(url);
	if (fx->store == NULL)
		fail_msg("open: %s", err);
	fx->ctx.store = fx->store;
	fx->ctx.default_domain = "example.com";
	fx->ctx.who = "admin";
	fx->ctx.now = 1800000000;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	abq_store_close(&fx->store);
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(cmd);
	free(fx);
	return 0;
}

/* A device as abqd reports it at its first request, then as recorded. */
static void
seen(struct fixture *fx, const char *account, const char *id, const char *type, const char *model,
     struct abq_device *out)
{
	struct abq_device d = {
	    .account = (char *)account,
	    .device_id = (char *)id,
	    .device_type = (char *)type,
	    .model = (char *)model,
	    .user_agent = (char *)"TestAgent/1.0",
	};
	struct abq_ctx c = fx->ctx;
	char *msg = NULL;
	c.who = ABQ_WHO_DAEMON;
	memset(out, 0, sizeof(*out));
	int rv = abq_registry_observe(&c, &d, out, NULL, &msg);
	if (rv != 0)
		fail_msg("observe: %s", msg);
}

/* The recorded state of (account, id). */
static void
get(struct fixture *fx, const char *account, const char *id, enum abq_state st, enum abq_reason r)
{
	struct abq_device d = {0};
	const char *err = NULL;
	/* recorded under the account's canonical form (example.com is the default domain) */
	char *acct = account_canonical(account, fx->ctx.default_domain);
	int rv = abq_store_device_get(fx->store, acct, id, &d, &err);
	free(acct);
	if (rv != 1)
		fail_msg("device %s/%s: rv %d %s", id, account, rv, err ? err : "");
	if (d.state != st || d.reason != r)
		fail_msg("device %s/%s is %s (%s), expected %s (%s)", id, account,
		         abq_state_name(d.state), abq_reason_name(d.reason), abq_state_name(st),
		         abq_reason_name(r));
	abq_device_clear(&d);
}

static void
set_attr(struct fixture *fx, enum abq_scope scope, const char *target, const char *name,
         const char *value)
{
	char *msg = NULL;
	struct abq_outcome o = {0};
	int rv = abq_registry_attr_set(&fx->ctx, scope, target, name, value, &o, &msg);
	if (rv != 0)
		fail_msg("attr_set %s=%s: %s", name, value, msg);
	abq_outcome_clear(&o);
}

static int
count_cb(void *arg, const void *rec)
{
	(void)rec;
	(*(size_t *)arg)++;
	return 0;
}

static size_t
history_count(struct fixture *fx)
{
	struct abq_history_filter f = {0};
	size_t n = 0;
	const char *err;
	assert_int_equal(
	    abq_store_history_iter(fx->store, &f, (abq_history_cb *)count_cb, &n, &err), 0);
	return n;
}

static int64_t
last_change(struct fixture *fx)
{
	int64_t seq = -1;
	const char *err;
	assert_int_equal(abq_store_change_last(fx->store, &seq, &err), 0);
	return seq;
}

/* Collects the kinds and recipients of the outbox (abq_store_notice_iter). */
static int
notice_cb(void *arg, const struct abq_notice *n)
{
	char *list = arg;
	size_t len = strlen(list);
	snprintf(list + len, 512 - len, "%s>%s ", n->kind, n->recipient);
	return 0;
}

/*
 * Remote wipe: asked for (history, change log, state unchanged), refused for
 * an unknown device and account-only below 16.1, withdrawn, asked again and
 * confirmed: Blocked (Wipe) whatever the entries say, both wiped notices
 * queued; then neither withdrawn nor asked again, until the device is deleted.
 */
static void
test_wipe(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	struct abq_notice_conf nc = {.from = "it@example.com", .admins = "sec@example.com"};
	char *msg = NULL, outbox[512] = "";
	const char *err;
	size_t h0;
	int64_t c0;

	seen(fx, "alice", "PHONE1", "iPhone", "iPhone15,3", &d);
	abq_device_clear(&d);
	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "PHONE1", "alice", ABQ_STATE_ALLOWED, NULL, &msg), 0);
	assert_int_equal(abq_registry_wipe(&fx->ctx, "alice", "NOPE", false, NULL, &msg), 1);
	assert_non_null(strstr(msg, "no device NOPE"));
	free(msg);
	msg = NULL;
	assert_int_equal(abq_registry_wipe(&fx->ctx, "alice", "PHONE1", true, NULL, &msg), 1);
	assert_non_null(strstr(msg, "needs 16.1"));
	free(msg);
	msg = NULL;
	h0 = history_count(fx);
	c0 = last_change(fx);
	fx->ctx.dry_run = true;
	assert_int_equal(abq_registry_wipe(&fx->ctx, "alice", "PHONE1", false, &o, &msg), 0);
	fx->ctx.dry_run = false;
	abq_outcome_clear(&o);
	assert_int_equal(history_count(fx), h0);
	assert_int_equal(
	    abq_registry_wipe(&fx->ctx, "ALICE@example.com", "phone1", false, &o, &msg), 0);
	abq_outcome_clear(&o);
	assert_int_equal(history_count(fx), h0 + 1);
	assert_true(last_change(fx) > c0);
	assert_int_equal(abq_store_device_get(fx->store, "alice@example.com", "PHONE1", &d, &err),
	                 1);
	assert_int_equal(d.wipe, ABQ_WIPE_REQUESTED);
	assert_string_equal(d.wipe_by, "admin");
	assert_int_equal(d.wipe_at, fx->ctx.now);
	assert_int_equal(d.state, ABQ_STATE_ALLOWED);
	abq_device_clear(&d);
	assert_int_equal(abq_registry_wipe_abort(&fx->ctx, "alice", "PHONE1", NULL, &msg), 0);
	assert_int_equal(abq_registry_wipe_abort(&fx->ctx, "alice", "PHONE1", NULL, &msg), 1);
	free(msg);
	msg = NULL;
	assert_int_equal(abq_registry_wipe(&fx->ctx, "alice", "PHONE1", false, NULL, &msg), 0);

	struct abq_ctx c = fx->ctx;
	c.who = ABQ_WHO_DAEMON;
	c.notices = &nc;
	assert_int_equal(abq_registry_wipe_confirmed(&c, "alice", "PHONE1", NULL, &msg), 0);
	get(fx, "alice", "PHONE1", ABQ_STATE_BLOCKED, ABQ_REASON_WIPE);
	assert_int_equal(abq_store_device_get(fx->store, "alice@example.com", "PHONE1", &d, &err),
	                 1);
	assert_int_equal(d.wipe, ABQ_WIPE_ACKNOWLEDGED);
	assert_int_equal(d.wipe_acked_at, c.now);
	abq_device_clear(&d);
	assert_int_equal(abq_store_notice_iter(fx->store, NULL, notice_cb, outbox, &err), 0);
	assert_string_equal(outbox, "user-wiped>alice@example.com admin-wiped>sec@example.com ");
	/* Confirmed: not again, not withdrawn; a re-decision keeps it Blocked. */
	assert_int_equal(abq_registry_wipe_confirmed(&c, "alice", "PHONE1", NULL, &msg), 1);
	free(msg);
	msg = NULL;
	assert_int_equal(abq_registry_wipe_abort(&fx->ctx, "alice", "PHONE1", NULL, &msg), 1);
	assert_non_null(strstr(msg, "cannot be aborted"));
	free(msg);
	msg = NULL;
	assert_int_equal(abq_registry_wipe(&fx->ctx, "alice", "PHONE1", false, NULL, &msg), 1);
	assert_non_null(strstr(msg, "already wiped"));
	free(msg);
	msg = NULL;
	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Disabled");
	get(fx, "alice", "PHONE1", ABQ_STATE_BLOCKED, ABQ_REASON_WIPE);
	/* Deleted: a new device at its next request. */
	assert_int_equal(abq_registry_delete(&fx->ctx, "PHONE1", "alice", NULL, &msg), 0);
	seen(fx, "alice", "PHONE1", "iPhone", "iPhone15,3", &d);
	assert_int_equal(d.wipe, ABQ_WIPE_NONE);
	assert_int_equal(d.state, ABQ_STATE_ALLOWED);
	abq_device_clear(&d);
}

/* Collects "what:old>new(reason)" of a device's history rows, oldest first. */
static int
history_cb(void *arg, const struct abq_history *h)
{
	char *list = arg;
	size_t len = strlen(list);
	snprintf(list + len, 1024 - len, "%s:%s>%s(%s) ", h->what,
	         h->old_value ? h->old_value : "-", h->new_value ? h->new_value : "-",
	         h->reason ? h->reason : "-");
	return 0;
}

/* The history of one device as history_cb writes it. */
static const char *
device_history(struct fixture *fx, const char *account, const char *id)
{
	static char list[1024];
	struct abq_history_filter f = {.device_id = id, .account = account};
	const char *err;

	list[0] = '\0';
	assert_int_equal(abq_store_history_iter(fx->store, &f, history_cb, list, &err), 0);
	return list;
}

/* Set a provisioning key that must be accepted; returns the devices it changed. */
static size_t
set_prov(struct fixture *fx, enum abq_scope scope, const char *target, const char *key,
         const char *value)
{
	struct abq_outcome o = {0};
	char *msg = NULL;

	if (abq_registry_prov_set(&fx->ctx, scope, target, key, value, &o, &msg) != 0)
		fail_msg("prov_set %s=%s: %s", key, value ? value : "(unset)", msg);
	size_t n = o.changed_count;
	abq_outcome_clear(&o);
	return n;
}

/*
 * AllowNonProvisionableDevices: a device that acknowledges its policy with
 * Status 2 while the key is 0 and the policy imposes something is Blocked
 * (Policy) with a history row for the status and one for the state; the same
 * status again writes nothing; the key back at 1 decides it again (Allowed);
 * an allow entry exempts it; an account's own value overrides the global one.
 */
static void
test_provision_status(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	struct abq_ctx c = fx->ctx;
	char *msg = NULL;
	const char *err;

	c.who = ABQ_WHO_DAEMON;
	seen(fx, "alice", "PHONE1", "iPhone", "iPhone15,3", &d);
	abq_device_clear(&d);
	seen(fx, "alice", "PHONE2", "Android", "Pixel 8", &d);
	abq_device_clear(&d);
	assert_int_equal(set_prov(fx, ABQ_SCOPE_GLOBAL, NULL, "DevicePasswordEnabled", "1"), 0);
	assert_int_equal(set_prov(fx, ABQ_SCOPE_GLOBAL, NULL, "AllowNonProvisionableDevices", "0"),
	                 0);
	get(fx, "alice", "PHONE1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);

	/* Refused: not a Policy Status, not a recorded device. */
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE1", 5, NULL, &msg), 1);
	free(msg);
	msg = NULL;
	assert_int_equal(abq_registry_provision_status(&c, "alice", "NOPE", 2, NULL, &msg), 1);
	assert_non_null(strstr(msg, "no device NOPE"));
	free(msg);
	msg = NULL;

	/* Applied: recorded, still Allowed. */
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE2", 1, &o, &msg), 0);
	assert_int_equal(o.changed_count, 0);
	abq_outcome_clear(&o);
	get(fx, "alice", "PHONE2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
	assert_non_null(strstr(device_history(fx, "alice@example.com", "PHONE2"),
	                       "provision:->1 (applied)(-)"));

	/* Partially applied: Blocked (Policy), in history and the change log. */
	size_t h0 = history_count(fx);
	int64_t c0 = last_change(fx);
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE1", 2, &o, &msg), 0);
	assert_int_equal(o.changed_count, 1);
	assert_int_equal(o.changed[0].new_reason, ABQ_REASON_POLICY);
	abq_outcome_clear(&o);
	get(fx, "alice", "PHONE1", ABQ_STATE_BLOCKED, ABQ_REASON_POLICY);
	assert_int_equal(history_count(fx), h0 + 2);
	assert_true(last_change(fx) > c0);
	assert_non_null(strstr(device_history(fx, "alice@example.com", "PHONE1"),
	                       "provision:->2 (partially applied)(-) "
	                       "state:Allowed (Mode)>Blocked (Policy)(policy status) "));
	assert_int_equal(abq_store_device_get(fx->store, "alice@example.com", "PHONE1", &d, &err),
	                 1);
	assert_int_equal(d.provision_status, 2);
	abq_device_clear(&d);

	/* The explanation says why. */
	struct abq_explanation x = {0};
	struct abq_policy *p = abq_registry_policy(fx->store, "example.com", &msg);
	assert_non_null(p);
	assert_int_equal(abq_registry_explain(&fx->ctx, "alice", "PHONE1", p, &x, &msg), 0);
	assert_int_equal(x.verdict.step, ABQ_STEP_POLICY);
	char *text = abq_explain_text(&x);
	assert_non_null(strstr(text, "Status 2 (partially applied)"));
	assert_non_null(strstr(text, "AllowNonProvisionableDevices is 0 -> Blocked"));
	free(text);
	abq_explanation_clear(&x);
	abq_policy_free(&p);

	/* The same status again: nothing written. */
	h0 = history_count(fx);
	c0 = last_change(fx);
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE1", 2, NULL, &msg), 0);
	assert_int_equal(history_count(fx), h0);
	assert_int_equal(last_change(fx), c0);

	/* The key back at 1: decided again, Allowed; at 0 again: Blocked. */
	assert_int_equal(set_prov(fx, ABQ_SCOPE_GLOBAL, NULL, "AllowNonProvisionableDevices", "1"),
	                 1);
	get(fx, "alice", "PHONE1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
	assert_non_null(strstr(device_history(fx, "alice@example.com", "PHONE1"),
	                       "state:Blocked (Policy)>Allowed (Mode)(global "
	                       "AllowNonProvisionableDevices)"));
	assert_int_equal(set_prov(fx, ABQ_SCOPE_GLOBAL, NULL, "AllowNonProvisionableDevices", "0"),
	                 1);
	get(fx, "alice", "PHONE1", ABQ_STATE_BLOCKED, ABQ_REASON_POLICY);

	/* Another key changes no decision. */
	assert_int_equal(set_prov(fx, ABQ_SCOPE_GLOBAL, NULL, "AllowCamera", "0"), 0);

	/* The account's own value, and unset again. */
	assert_int_equal(
	    set_prov(fx, ABQ_SCOPE_ACCOUNT, "alice", "AllowNonProvisionableDevices", "1"), 1);
	get(fx, "alice", "PHONE1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
	assert_int_equal(
	    set_prov(fx, ABQ_SCOPE_ACCOUNT, "alice", "AllowNonProvisionableDevices", NULL), 1);
	get(fx, "alice", "PHONE1", ABQ_STATE_BLOCKED, ABQ_REASON_POLICY);

	/* An administrator's allow entry exempts the device. */
	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "PHONE1", "alice", ABQ_STATE_ALLOWED, NULL, &msg), 0);
	get(fx, "alice", "PHONE1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);

	/* Applied after all: the other device is Blocked by Status 3, then Allowed by 1. */
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE2", 3, NULL, &msg), 0);
	get(fx, "alice", "PHONE2", ABQ_STATE_BLOCKED, ABQ_REASON_POLICY);
	assert_int_equal(abq_registry_provision_status(&c, "alice", "PHONE2", 1, NULL, &msg), 0);
	get(fx, "alice", "PHONE2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
}

/* The story: Interactive quarantines, allow and block take effect, Strict blocks. */
static void
test_story(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "interactive");
	seen(fx, "ceo@example.com", "APPLF17ABC", "iPhone", NULL, &d);
	assert_int_equal(d.state, ABQ_STATE_QUARANTINED);
	assert_int_equal(d.reason, ABQ_REASON_MODE);
	assert_string_equal(d.state_by, "abqd");
	abq_device_clear(&d);
	seen(fx, "bob", "ANDROIDC0FFEE", "Android", "SM-S918B", &d);
	abq_device_clear(&d);
	get(fx, "bob", "ANDROIDC0FFEE", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);

	int64_t seq = last_change(fx);
	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "applf17abc", NULL, ABQ_STATE_ALLOWED, &o, &msg), 0);
	assert_int_equal(o.changed_count, 1);
	assert_int_equal(o.changed[0].old_state, ABQ_STATE_QUARANTINED);
	assert_int_equal(o.changed[0].new_state, ABQ_STATE_ALLOWED);
	assert_true(last_change(fx) > seq);
	abq_outcome_clear(&o);
	get(fx, "ceo@example.com", "APPLF17ABC", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);

	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "ANDROIDC0FFEE", "BOB", ABQ_STATE_BLOCKED, &o, &msg),
	    0);
	abq_outcome_clear(&o);
	get(fx, "bob", "ANDROIDC0FFEE", ABQ_STATE_BLOCKED, ABQ_REASON_INDIVIDUAL);

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Strict");
	/* Individual states stay. */
	get(fx, "ceo@example.com", "APPLF17ABC", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
	seen(fx, "carol@example.com", "NEWPHONE1", "iPhone", NULL, &d);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	assert_int_equal(d.reason, ABQ_REASON_MODE);
	abq_device_clear(&d);

	/* delete: decided anew at its next request. */
	assert_int_equal(abq_registry_delete(&fx->ctx, "APPLF17ABC", NULL, &o, &msg), 0);
	assert_int_equal(o.affected, 2); /* one record, one entry */
	abq_outcome_clear(&o);
	struct abq_device gone = {0};
	const char *err;
	assert_int_equal(
	    abq_store_device_get(fx->store, "ceo@example.com", "APPLF17ABC", &gone, &err), 0);
	seen(fx, "ceo@example.com", "APPLF17ABC", "iPhone", NULL, &d);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	abq_device_clear(&d);

	/* Nothing to delete is refused. */
	assert_int_equal(abq_registry_delete(&fx->ctx, "NOSUCHDEVICE", NULL, &o, &msg), 1);
	assert_non_null(strstr(msg, "NOSUCHDEVICE"));
	free(msg);
	abq_outcome_clear(&o);
}

/* Mode changes re-decide Mode devices; dry runs report and write nothing. */
static void
test_mode_change_and_dry_run(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;

	seen(fx, "alice", "DEV1", "iPhone", NULL, &d);
	assert_int_equal(d.state, ABQ_STATE_ALLOWED); /* default mode Permissive */
	abq_device_clear(&d);
	seen(fx, "alice@other.org", "DEV2", "Android", NULL, &d);
	abq_device_clear(&d);

	size_t h = history_count(fx);
	int64_t seq = last_change(fx);
	struct abq_ctx dry = fx->ctx;
	dry.dry_run = true;
	assert_int_equal(
	    abq_registry_attr_set(&dry, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Strict", &o, &msg), 0);
	assert_true(o.dry_run);
	assert_int_equal(o.changed_count, 2);
	abq_outcome_clear(&o);
	assert_int_equal(history_count(fx), h);
	assert_int_equal(last_change(fx), seq);
	get(fx, "alice", "DEV1", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);

	/* A domain override touches only that domain's devices ("alice" is example.com). */
	assert_int_equal(abq_registry_attr_set(&fx->ctx, ABQ_SCOPE_DOMAIN, "Example.COM", "abqMode",
	                                       "Interactive", &o, &msg),
	                 0);
	assert_int_equal(o.changed_count, 1);
	assert_string_equal(o.changed[0].account, "alice@example.com");
	abq_outcome_clear(&o);
	get(fx, "alice", "DEV1", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);
	get(fx, "alice@other.org", "DEV2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);

	/* An account override beats the domain. */
	set_attr(fx, ABQ_SCOPE_ACCOUNT, "Alice", "abqMode", "Disabled");
	get(fx, "alice", "DEV1", ABQ_STATE_ALLOWED, ABQ_REASON_DISABLED);
	/* Unsetting it returns to the domain's mode. */
	assert_int_equal(
	    abq_registry_attr_set(&fx->ctx, ABQ_SCOPE_ACCOUNT, "alice", "abqMode", NULL, &o, &msg),
	    0);
	abq_outcome_clear(&o);
	get(fx, "alice", "DEV1", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);

	/* Bad input is refused with a message and writes nothing. */
	h = history_count(fx);
	assert_int_equal(
	    abq_registry_attr_set(&fx->ctx, ABQ_SCOPE_GLOBAL, NULL, "abqMood", "Strict", &o, &msg),
	    1);
	assert_non_null(strstr(msg, "unknown attribute 'abqMood'"));
	free(msg);
	assert_int_equal(abq_registry_attr_set(&fx->ctx, ABQ_SCOPE_GLOBAL, NULL, "abqMode",
	                                       "Strictest", &o, &msg),
	                 1);
	assert_non_null(strstr(msg, "Interactive"));
	free(msg);
	assert_int_equal(history_count(fx), h);
}

/* Rules decide devices; a rule on a characteristic not reported yet gives Discovery. */
static void
test_rules_and_discovery(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	struct abq_rule r = {.charac = ABQ_CHAR_DEVICEMODEL,
	                     .match = ABQ_MATCH_GLOB,
	                     .pattern = (char *)"SM-*",
	                     .level = ABQ_STATE_BLOCKED,
	                     .order = 10};
	assert_int_equal(abq_registry_rule_set(&fx->ctx, &r, &o, &msg), 0);
	int64_t id = o.id;
	assert_true(id > 0);
	abq_outcome_clear(&o);

	/* Model not reported yet: Discovery, then decided when it arrives. */
	seen(fx, "bob", "ANDR1", "Android", NULL, &d);
	assert_int_equal(d.state, ABQ_STATE_DISCOVERY);
	assert_int_equal(d.rule_id, id);
	abq_device_clear(&d);
	seen(fx, "bob", "ANDR1", NULL, "SM-G991B", &d);
	assert_int_equal(d.state, ABQ_STATE_BLOCKED);
	assert_int_equal(d.reason, ABQ_REASON_RULE);
	abq_device_clear(&d);
	seen(fx, "bob", "ANDR2", "Android", "Pixel 8", &d);
	assert_int_equal(d.state, ABQ_STATE_QUARANTINED);
	abq_device_clear(&d);

	/* The same (characteristic, match, pattern) updates the rule rather than adding one. */
	r.level = ABQ_STATE_ALLOWED;
	assert_int_equal(abq_registry_rule_set(&fx->ctx, &r, &o, &msg), 0);
	assert_int_equal(o.id, id);
	assert_int_equal(o.changed_count, 1);
	abq_outcome_clear(&o);
	get(fx, "bob", "ANDR1", ABQ_STATE_ALLOWED, ABQ_REASON_RULE);

	/* A regex that does not compile: PCRE2's message and offset. */
	struct abq_rule bad = {.charac = ABQ_CHAR_DEVICEID,
	                       .match = ABQ_MATCH_REGEX,
	                       .pattern = (char *)"ab(c",
	                       .level = ABQ_STATE_BLOCKED,
	                       .order = 1};
	assert_int_equal(abq_registry_rule_set(&fx->ctx, &bad, &o, &msg), 1);
	assert_non_null(strstr(msg, "offset"));
	free(msg);

	/* Delete by pattern, then by an id that is gone. */
	assert_int_equal(abq_registry_rule_delete(&fx->ctx, 0, "SM-*", NULL, &o, &msg), 0);
	assert_int_equal(o.changed_count, 1);
	abq_outcome_clear(&o);
	get(fx, "bob", "ANDR1", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);
	assert_int_equal(abq_registry_rule_delete(&fx->ctx, id, NULL, NULL, &o, &msg), 1);
	free(msg);
}

/* The API's rule change by id and reorder: devices decided anew, history, refusals. */
static void
test_rule_update_and_reorder(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;
	int64_t ids[3];
	const char *pats[] = {"SM-*", "Pixel*", "iPhone*"};

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	for (int i = 0; i < 3; i++) {
		struct abq_rule r = {.charac = ABQ_CHAR_DEVICEMODEL,
		                     .match = ABQ_MATCH_GLOB,
		                     .pattern = (char *)pats[i],
		                     .level = ABQ_STATE_QUARANTINED,
		                     .order = 100 - i};
		assert_int_equal(abq_registry_rule_set(&fx->ctx, &r, &o, &msg), 0);
		ids[i] = o.id;
		abq_outcome_clear(&o);
	}
	seen(fx, "bob", "ANDR1", "Android", "Pixel 8", &d);
	assert_int_equal(d.state, ABQ_STATE_QUARANTINED);
	abq_device_clear(&d);

	/* Rule 2 now blocks: the Pixel is decided anew by it. */
	size_t h0 = history_count(fx);
	int64_t c0 = last_change(fx);
	struct abq_rule u = {.charac = ABQ_CHAR_DEVICEMODEL,
	                     .match = ABQ_MATCH_GLOB,
	                     .pattern = (char *)"Pixel*",
	                     .level = ABQ_STATE_BLOCKED,
	                     .order = 5};
	assert_int_equal(abq_registry_rule_update(&fx->ctx, ids[1], &u, &o, &msg), 0);
	assert_int_equal(o.id, ids[1]);
	assert_int_equal(o.changed_count, 1);
	abq_outcome_clear(&o);
	get(fx, "bob", "ANDR1", ABQ_STATE_BLOCKED, ABQ_REASON_RULE);
	assert_true(history_count(fx) > h0);
	assert_true(last_change(fx) > c0);

	/* The key of another rule, an unknown id, a bad regex: refused, nothing written. */
	u.pattern = (char *)"SM-*";
	assert_int_equal(abq_registry_rule_update(&fx->ctx, ids[1], &u, &o, &msg), 1);
	assert_non_null(strstr(msg, "same"));
	free(msg);
	u.pattern = (char *)"x";
	assert_int_equal(abq_registry_rule_update(&fx->ctx, 999, &u, &o, &msg), 1);
	free(msg);
	u.match = ABQ_MATCH_REGEX;
	u.pattern = (char *)"ab(c";
	assert_int_equal(abq_registry_rule_update(&fx->ctx, ids[1], &u, &o, &msg), 1);
	free(msg);

	/* Reorder: every rule of the scope once, orders 10, 20, 30. */
	int64_t part[] = {ids[0], ids[1]};
	assert_int_equal(abq_registry_rule_reorder(&fx->ctx, NULL, part, 2, &o, &msg), 1);
	free(msg);
	int64_t twice[] = {ids[0], ids[0], ids[1]};
	assert_int_equal(abq_registry_rule_reorder(&fx->ctx, NULL, twice, 3, &o, &msg), 1);
	free(msg);
	int64_t order[] = {ids[2], ids[0], ids[1]};
	assert_int_equal(abq_registry_rule_reorder(&fx->ctx, NULL, order, 3, &o, &msg), 0);
	abq_outcome_clear(&o);
	for (int i = 0; i < 3; i++) {
		struct abq_rule r = {0};
		const char *err = NULL;
		assert_int_equal(abq_store_rule_get(fx->store, order[i], &r, &err), 1);
		assert_int_equal(r.order, (i + 1) * 10);
		abq_rule_clear(&r);
	}
}

/* The device limit blocks the newest device and frees it when the limit rises. */
static void
test_limit(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMaxDevicesPerAccount", "2");
	for (int i = 0; i < 3; i++) {
		char id[16];
		snprintf(id, sizeof(id), "LIM%d", i);
		fx->ctx.now++;
		seen(fx, "dave", id, "iPhone", NULL, &d);
		assert_int_equal(d.state, i < 2 ? ABQ_STATE_ALLOWED : ABQ_STATE_BLOCKED);
		if (i == 2)
			assert_int_equal(d.reason, ABQ_REASON_LIMIT);
		abq_device_clear(&d);
	}
	set_attr(fx, ABQ_SCOPE_ACCOUNT, "dave", "abqMaxDevicesPerAccount", "3");
	get(fx, "dave", "LIM2", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
	get(fx, "dave", "LIM0", ABQ_STATE_ALLOWED, ABQ_REASON_MODE);
}

/* Import: every bad line reported, nothing imported; a good file imports and re-decides. */
static void
test_import(void **state)
{
	struct fixture *fx = *state;
	struct abq_import_line *lines = NULL;
	struct abq_device d;
	struct abq_outcome o = {0};
	size_t n = 0;
	char *msg = NULL;

	const char *bad = "GOOD1\n# comment\nbad id\nGOOD2/alice\nX/\n\n"
	                  "ok/ spaced acct\n";
	assert_int_equal(abq_import_parse(bad, strlen(bad), &lines, &n, &msg), 1);
	assert_non_null(strstr(msg, "line 3:"));
	assert_non_null(strstr(msg, "line 5:"));
	assert_non_null(strstr(msg, "line 7:"));
	assert_null(strstr(msg, "line 1:"));
	free(msg);

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	seen(fx, "alice", "GOOD2", "iPhone", NULL, &d);
	abq_device_clear(&d);
	const char *good = "GOOD1\r\n  GOOD2/Alice  \n";
	assert_int_equal(abq_import_parse(good, strlen(good), &lines, &n, &msg), 0);
	assert_int_equal(n, 2);
	assert_string_equal(lines[1].account, "alice");
	assert_int_equal(abq_registry_import(&fx->ctx, lines, n, ABQ_STATE_ALLOWED, &o, &msg), 0);
	assert_int_equal(o.affected, 2);
	assert_int_equal(o.changed_count, 1);
	abq_outcome_clear(&o);
	abq_import_free(lines, n);
	get(fx, "alice", "GOOD2", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
}

/* adopt turns syncing devices into Individual entries; purge forgets stale ones. */
static void
test_adopt_and_purge(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;

	seen(fx, "alice", "OLD1", "iPhone", NULL, &d);
	abq_device_clear(&d);
	fx->ctx.now += 86400 * 10;
	seen(fx, "bob", "NEW1", "Android", NULL, &d);
	abq_device_clear(&d);

	assert_int_equal(abq_registry_adopt(&fx->ctx, fx->ctx.now - 86400, &o, &msg), 0);
	assert_int_equal(o.affected, 1);
	abq_outcome_clear(&o);
	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Strict");
	get(fx, "bob", "NEW1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
	get(fx, "alice", "OLD1", ABQ_STATE_BLOCKED, ABQ_REASON_MODE);

	assert_int_equal(abq_registry_purge(&fx->ctx, fx->ctx.now - 86400 * 5, &o, &msg), 0);
	assert_int_equal(o.affected, 1);
	abq_outcome_clear(&o);
	struct abq_device gone = {0};
	const char *err;
	assert_int_equal(abq_store_device_get(fx->store, "alice@example.com", "OLD1", &gone, &err),
	                 0);
	get(fx, "bob", "NEW1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
}

/* A store failure in the middle of an operation leaves nothing half-written. */
static void
test_fault_rolls_back(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_outcome o = {0};
	char *msg = NULL;

	set_attr(fx, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	seen(fx, "alice", "F1", "iPhone", NULL, &d);
	abq_device_clear(&d);
	size_t h = history_count(fx);
	int64_t seq = last_change(fx);
	/* Fail at each write of allow in turn: entry, history, change, device, ... */
	int failures = 0, n;
	for (n = 1; n <= 12; n++) {
		char v[8];
		snprintf(v, sizeof(v), "%d", n);
		setenv("ABQ_STORE_FAULT", v, 1);
		int rv =
		    abq_registry_set_entry(&fx->ctx, "F1", "alice", ABQ_STATE_ALLOWED, &o, &msg);
		unsetenv("ABQ_STORE_FAULT");
		abq_outcome_clear(&o);
		if (rv == 0)
			break; /* past the last write: it went through */
		assert_int_equal(rv, -1);
		failures++;
		assert_non_null(strstr(msg, "injected fault"));
		free(msg);
		msg = NULL;
		assert_int_equal(history_count(fx), h);
		assert_int_equal(last_change(fx), seq);
		get(fx, "alice", "F1", ABQ_STATE_QUARANTINED, ABQ_REASON_MODE);
	}
	/* entry, its history, its change, the device, its history, its change, commit */
	assert_true(failures >= 6);
	assert_true(n <= 12);
	get(fx, "alice", "F1", ABQ_STATE_ALLOWED, ABQ_REASON_INDIVIDUAL);
}

/* explain names the step that decides. */
static void
test_explain(void **state)
{
	struct fixture *fx = *state;
	struct abq_device d;
	struct abq_explanation x;
	char *msg = NULL;

	set_attr(fx, ABQ_SCOPE_DOMAIN, "example.com", "abqMode", "Strict");
	seen(fx, "alice", "EX1", "iPhone", NULL, &d);
	abq_device_clear(&d);
	struct abq_policy *p = abq_registry_policy(fx->store, "example.com", &msg);
	assert_non_null(p);
	assert_int_equal(abq_registry_explain(&fx->ctx, "Alice", "EX1", p, &x, &msg), 0);
	assert_true(x.known);
	assert_int_equal(x.verdict.state, ABQ_STATE_BLOCKED);
	assert_int_equal(x.verdict.step, ABQ_STEP_MODE);
	assert_int_equal(x.mode_scope, ABQ_SCOPE_DOMAIN);
	assert_string_equal(x.domain, "example.com");
	abq_explanation_clear(&x);
	assert_int_equal(abq_registry_explain(&fx->ctx, "zed@other.org", "NEWONE", p, &x, &msg), 0);
	assert_false(x.known);
	assert_int_equal(x.verdict.state, ABQ_STATE_ALLOWED);
	assert_true(x.mode_is_default);
	abq_explanation_clear(&x);
	abq_policy_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_story, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wipe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_provision_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_change_and_dry_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rules_and_discovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rule_update_and_reorder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_adopt_and_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault_rolls_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
