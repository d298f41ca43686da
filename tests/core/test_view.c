/*
 * test_view.c: the daemon's in-memory view follows changes made through
 * another store handle (another process: abqctl, or another abqd node).
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

#include "core/registry.h"
#include "core/view.h"
#include "lib/util.h"

struct fixture {
	char dir[64];
	struct abq_store *admin;  /* the handle abqctl would use */
	struct abq_store *daemon; /* the daemon's own handle */
	struct abq_ctx ctx;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *err = NULL;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/abq-view-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	char *url = xasprintf("sqlite:%s/abqd.db", fx->dir);
	fx->admin = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);
	assert_non_null(fx->admin);
	fx->daemon = abq_store_open(url, NULL, 0, &err);
	assert_non_null(fx->daemon);
	free(url);
	fx->ctx.store = fx->admin;
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
	abq_store_close(&fx->admin);
	abq_store_close(&fx->daemon);
	char *cmd = xasprintf("rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(cmd);
	free(fx);
	return 0;
}

/* What the refresh callback saw. */
struct seen_log {
	char last[128];
	enum abq_state state;
	int calls;
};

static void
on_device(void *arg, const char *account, const char *device_id, const struct abq_view_device *now)
{
	struct seen_log *l = arg;
	snprintf(l->last, sizeof(l->last), "%s/%s", account, device_id);
	l->state = now->state;
	l->calls++;
}

static void
observe(struct fixture *fx, const char *account, const char *id)
{
	struct abq_device d = {
	    .account = (char *)account, .device_id = (char *)id, .device_type = (char *)"iPhone"};
	char *msg = NULL;
	struct abq_ctx c = fx->ctx;
	c.who = ABQ_WHO_DAEMON;
	if (abq_registry_observe(&c, &d, NULL, NULL, &msg) != 0)
		fail_msg("observe: %s", msg);
}

/*
 * A provisioning policy set for a domain reaches the devices of that domain
 * (their policy version, reported by the refresh), a change moves it, other
 * domains stay at 0, and unset it is 0 again.
 */
static void
test_view_policy_versions(void **state)
{
	struct fixture *fx = *state;
	struct abq_view_device vd;
	struct seen_log log = {0};
	struct abq_outcome o = {0};
	size_t n;
	char *msg = NULL;

	observe(fx, "alice", "DEVA");
	observe(fx, "carol@other.com", "DEVC");
	struct abq_view *v = abq_view_load(fx->daemon, "example.com", &msg);
	assert_non_null(v);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.policy, 0);
	assert_int_equal(abq_registry_prov_set(&fx->ctx, ABQ_SCOPE_DOMAIN, "example.com",
	                                       "DevicePasswordEnabled", "1", &o, &msg),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.last, "alice@example.com/deva");
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	uint32_t first = vd.policy;
	assert_int_not_equal(first, 0);
	assert_true(abq_view_device(v, "carol@other.com", "DEVC", &vd));
	assert_int_equal(vd.policy, 0);
	/* Loaded anew (a restart): the same version. */
	struct abq_view *v2 = abq_view_load(fx->daemon, "example.com", &msg);
	assert_true(abq_view_device(v2, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.policy, first);
	abq_view_free(&v2);
	assert_int_equal(abq_registry_prov_set(&fx->ctx, ABQ_SCOPE_DOMAIN, "example.com",
	                                       "MinDevicePasswordLength", "6", &o, &msg),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_int_equal(log.calls, 2);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_not_equal(vd.policy, 0);
	assert_int_not_equal(vd.policy, first);
	assert_int_equal(abq_registry_prov_set(&fx->ctx, ABQ_SCOPE_DOMAIN, "example.com",
	                                       "MinDevicePasswordLength", NULL, &o, &msg),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_registry_prov_set(&fx->ctx, ABQ_SCOPE_DOMAIN, "example.com",
	                                       "DevicePasswordEnabled", NULL, &o, &msg),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.policy, 0);
	abq_view_free(&v);
}

static void
test_view_follows_changes(void **state)
{
	struct fixture *fx = *state;
	struct abq_view_device vd;
	struct seen_log log = {0};
	size_t n;
	char *msg = NULL;
	struct abq_outcome o = {0};

	observe(fx, "alice", "DEVA");
	struct abq_view *v = abq_view_load(fx->daemon, "example.com", &msg);
	assert_non_null(v);
	assert_int_equal(abq_view_device_count(v), 1);
	assert_true(abq_view_device(v, "alice@example.com", "deva", &vd));
	assert_int_equal(vd.state, ABQ_STATE_ALLOWED);
	assert_false(abq_view_device(v, "bob@example.com", "DEVA", NULL));

	/* Nothing changed: nothing applied. */
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_int_equal(n, 0);
	assert_int_equal(log.calls, 0);

	/* A mode change made elsewhere: the policy is rebuilt, the device reported. */
	assert_int_equal(abq_registry_attr_set(&fx->ctx, ABQ_SCOPE_GLOBAL, NULL, "abqMode",
	                                       "Interactive", &o, &msg),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_policy_mode(abq_view_policy(v), "alice"), ABQ_MODE_PERMISSIVE);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_int_equal(n, 2); /* the attribute, the device */
	assert_int_equal(abq_policy_mode(abq_view_policy(v), "alice"), ABQ_MODE_INTERACTIVE);
	assert_int_equal(log.calls, 1);
	assert_string_equal(log.last, "alice@example.com/DEVA");
	assert_int_equal(log.state, ABQ_STATE_QUARANTINED);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.state, ABQ_STATE_QUARANTINED);

	/* A new device and an allow. */
	observe(fx, "bob", "DEVB");
	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "DEVA", NULL, ABQ_STATE_ALLOWED, &o, &msg), 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_int_equal(abq_view_device_count(v), 2);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.state, ABQ_STATE_ALLOWED);
	assert_int_equal(vd.reason, ABQ_REASON_INDIVIDUAL);
	assert_int_equal(abq_policy_entry(abq_view_policy(v), "DEVA", NULL), ABQ_STATE_ALLOWED);

	/* delete: the device becomes unknown to the view. */
	assert_int_equal(abq_registry_delete(&fx->ctx, "DEVB", NULL, &o, &msg), 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, fx->daemon, on_device, &log, &n, &msg), 0);
	assert_false(abq_view_device(v, "bob@example.com", "DEVB", NULL));
	assert_int_equal(log.state, ABQ_STATE_NONE);
	assert_int_equal(abq_view_device_count(v), 1);

	/* Seen again: known again. */
	observe(fx, "bob", "DEVB");
	assert_int_equal(abq_view_refresh(v, fx->daemon, NULL, NULL, &n, &msg), 0);
	assert_true(abq_view_device(v, "bob@example.com", "DEVB", &vd));
	assert_int_equal(vd.state, ABQ_STATE_QUARANTINED);
	assert_int_equal(abq_view_device_count(v), 2);
	abq_view_free(&v);
	assert_null(v);
}

/* A failed refresh leaves the view as it was and the change is applied later. */
static void
test_view_refresh_failure_retries(void **state)
{
	struct fixture *fx = *state;
	struct abq_view_device vd;
	struct abq_outcome o = {0};
	char *msg = NULL;
	size_t n;

	observe(fx, "alice", "DEVA");
	struct abq_view *v = abq_view_load(fx->daemon, "example.com", &msg);
	assert_non_null(v);
	int64_t seq = abq_view_seq(v);
	assert_int_equal(
	    abq_registry_set_entry(&fx->ctx, "DEVA", "alice", ABQ_STATE_BLOCKED, &o, &msg), 0);
	abq_outcome_clear(&o);
	/* Make the daemon's reads fail: a rule the engine cannot compile. */
	const char *err;
	struct abq_rule bad = {.charac = ABQ_CHAR_DEVICEID,
	                       .match = ABQ_MATCH_REGEX,
	                       .pattern = (char *)"(",
	                       .level = ABQ_STATE_BLOCKED,
	                       .order = 1,
	                       .created_by = (char *)"x"};
	assert_int_equal(abq_store_rule_insert(fx->admin, &bad, &err), 0);
	assert_int_equal(abq_store_change_add(fx->admin, ABQ_CHANGE_RULE, "1", fx->ctx.now, &err),
	                 0);
	assert_int_equal(abq_view_refresh(v, fx->daemon, NULL, NULL, &n, &msg), -1);
	assert_non_null(strstr(msg, "does not compile"));
	free(msg);
	assert_int_equal(abq_view_seq(v), seq);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.state, ABQ_STATE_ALLOWED);
	/* Repaired: the pending changes apply. */
	assert_int_equal(abq_store_rule_delete(fx->admin, bad.id, &err), 0);
	assert_int_equal(abq_view_refresh(v, fx->daemon, NULL, NULL, &n, &msg), 0);
	assert_true(abq_view_device(v, "alice@example.com", "DEVA", &vd));
	assert_int_equal(vd.state, ABQ_STATE_BLOCKED);
	abq_view_free(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_view_follows_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_view_policy_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_view_refresh_failure_retries, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
