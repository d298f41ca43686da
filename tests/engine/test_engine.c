/*
 * test_engine.c: the decision engine on tables of cases.
 *
 * abq_decide is pure, so most tests build struct abq_inputs by hand and check
 * the verdict; the rule tests check each characteristic and match kind alone
 * and among decoys (which gives the characteristic a screen, so a screen that
 * refused a value it should pass would show), and compare the indexed rule
 * sets with a naive evaluator on many values; the policy tests build views
 * with thousands of accounts, domains and entries.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <fnmatch.h>
#include <locale.h>
#include <pcre2.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "lib/attrs.h"
#include "lib/hmap.h"
#include "lib/util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NOW      1700000000

#define A    ABQ_STATE_ALLOWED
#define B    ABQ_STATE_BLOCKED
#define Q    ABQ_STATE_QUARANTINED
#define D    ABQ_STATE_DISCOVERY
#define NONE ABQ_STATE_NONE

/* A rule for tables; pattern and domain are not written through. */
static struct abq_rule
mkrule(int64_t id, enum abq_charac c, enum abq_match m, const char *pattern, enum abq_state level,
       int64_t order, const char *domain)
{
	struct abq_rule r = {0};
	r.id = id;
	r.charac = c;
	r.match = m;
	r.pattern = (char *)pattern;
	r.level = level;
	r.order = order;
	r.domain = (char *)domain;
	return r;
}

/* Inputs for a device with every fact known, no entries, no limit, no rules. */
static struct abq_inputs
base_inputs(enum abq_mode mode)
{
	struct abq_inputs in = {0};
	in.facts.device_id = "ABCDEF0123456789";
	in.facts.device_type = "iPhone";
	in.facts.model = "iPhone15,2";
	in.facts.os = "iOS 17.5";
	in.facts.user_agent = "Apple-iPhone15C2/2105.258";
	in.facts.first_seen = NOW - 60;
	in.mode = mode;
	in.discovery_timeout = 900;
	in.now = NOW;
	return in;
}

/* ---- modes ---------------------------------------------------------------- */

/* Each mode alone decides: its default state, reason Mode (Disabled: Allowed, reason Disabled). */
static void
test_mode_defaults(void **state)
{
	static const struct {
		enum abq_mode mode;
		enum abq_state want;
		enum abq_reason reason;
		enum abq_step step;
	} cases[] = {
	    {ABQ_MODE_PERMISSIVE, A, ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {ABQ_MODE_INTERACTIVE, Q, ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {ABQ_MODE_STRICT, B, ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {ABQ_MODE_DISABLED, A, ABQ_REASON_DISABLED, ABQ_STEP_DISABLED},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_inputs in = base_inputs(cases[i].mode);
		struct abq_verdict v;
		abq_decide(&in, &v);
		assert_int_equal(v.state, cases[i].want);
		assert_int_equal(v.reason, cases[i].reason);
		assert_int_equal(v.step, cases[i].step);
		assert_int_equal(v.rule_id, 0);
		assert_null(v.rule);
	}
	assert_int_equal(abq_mode_default(ABQ_MODE_PERMISSIVE), A);
	assert_int_equal(abq_mode_default(ABQ_MODE_INTERACTIVE), Q);
	assert_int_equal(abq_mode_default(ABQ_MODE_STRICT), B);
	assert_int_equal(abq_mode_default(ABQ_MODE_DISABLED), A);
}

/*
 * A wiped device is Blocked (reason Wipe) before anything else is looked at:
 * in every mode, Disabled included, and over an allow entry for its account.
 */
static void
test_wiped_first(void **state)
{
	static const enum abq_mode modes[] = {ABQ_MODE_PERMISSIVE, ABQ_MODE_INTERACTIVE,
	                                      ABQ_MODE_STRICT, ABQ_MODE_DISABLED};
	for (size_t i = 0; i < NELEM(modes); i++) {
		struct abq_inputs in = base_inputs(modes[i]);
		struct abq_verdict v;
		in.entry_account = A;
		in.entry_device = A;
		in.facts.wiped = true;
		abq_decide(&in, &v);
		assert_int_equal(v.state, B);
		assert_int_equal(v.reason, ABQ_REASON_WIPE);
		assert_int_equal(v.step, ABQ_STEP_WIPE);
		in.facts.wiped = false;
		abq_decide(&in, &v);
		assert_int_equal(v.state, A);
		assert_int_not_equal(v.reason, ABQ_REASON_WIPE);
	}
	assert_string_equal(abq_reason_name(ABQ_REASON_WIPE), "Wipe");
}

/*
 * Step 3's Policy block: a device that acknowledged its policy with a Status
 * other than 1 is Blocked (reason Policy) only when its account's policy
 * imposes something and AllowNonProvisionableDevices is 0; after the list
 * entries (an entry exempts it), before the device limit and the rules.
 */
static void
test_policy_step(void **state)
{
	static const struct {
		int status;
		bool imposes, allow;
		enum abq_state entry_account, entry_device;
		enum abq_mode mode;
		bool over_limit, rule;
		enum abq_state want;
		enum abq_reason reason;
		enum abq_step step;
	} cases[] = {
	    /* The statuses: 2, 3, 4 do not provision; 0 (never reported) and 1 do. */
	    {2, true, false, NONE, NONE, ABQ_MODE_PERMISSIVE, false, false, B, ABQ_REASON_POLICY,
	     ABQ_STEP_POLICY},
	    {3, true, false, NONE, NONE, ABQ_MODE_PERMISSIVE, false, false, B, ABQ_REASON_POLICY,
	     ABQ_STEP_POLICY},
	    {4, true, false, NONE, NONE, ABQ_MODE_INTERACTIVE, false, false, B, ABQ_REASON_POLICY,
	     ABQ_STEP_POLICY},
	    {1, true, false, NONE, NONE, ABQ_MODE_PERMISSIVE, false, false, A, ABQ_REASON_MODE,
	     ABQ_STEP_MODE},
	    {0, true, false, NONE, NONE, ABQ_MODE_INTERACTIVE, false, false, Q, ABQ_REASON_MODE,
	     ABQ_STEP_MODE},
	    /* AllowNonProvisionableDevices 1 (the default), or nothing imposed: no block. */
	    {2, true, true, NONE, NONE, ABQ_MODE_PERMISSIVE, false, false, A, ABQ_REASON_MODE,
	     ABQ_STEP_MODE},
	    {3, false, false, NONE, NONE, ABQ_MODE_PERMISSIVE, false, false, A, ABQ_REASON_MODE,
	     ABQ_STEP_MODE},
	    /* An entry exempts it, either entry, whatever state it gives. */
	    {2, true, false, A, NONE, ABQ_MODE_PERMISSIVE, false, false, A, ABQ_REASON_INDIVIDUAL,
	     ABQ_STEP_ENTRY_ACCOUNT},
	    {2, true, false, NONE, A, ABQ_MODE_STRICT, false, false, A, ABQ_REASON_INDIVIDUAL,
	     ABQ_STEP_ENTRY_DEVICE},
	    {2, true, false, NONE, Q, ABQ_MODE_PERMISSIVE, false, false, Q, ABQ_REASON_INDIVIDUAL,
	     ABQ_STEP_ENTRY_DEVICE},
	    /* Before the device limit and an allowing rule. */
	    {2, true, false, NONE, NONE, ABQ_MODE_PERMISSIVE, true, false, B, ABQ_REASON_POLICY,
	     ABQ_STEP_POLICY},
	    {2, true, false, NONE, NONE, ABQ_MODE_STRICT, false, true, B, ABQ_REASON_POLICY,
	     ABQ_STEP_POLICY},
	    {1, true, false, NONE, NONE, ABQ_MODE_PERMISSIVE, true, false, B, ABQ_REASON_LIMIT,
	     ABQ_STEP_LIMIT},
	    {1, true, false, NONE, NONE, ABQ_MODE_STRICT, false, true, A, ABQ_REASON_RULE,
	     ABQ_STEP_RULE},
	    /* Disabled and a wipe come first. */
	    {2, true, false, NONE, NONE, ABQ_MODE_DISABLED, false, false, A, ABQ_REASON_DISABLED,
	     ABQ_STEP_DISABLED},
	};
	struct abq_rule r = mkrule(7, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", A, 1, NULL);
	struct abq_ruleset *rs = abq_ruleset_new(&r, 1, NULL);
	(void)state;

	assert_non_null(rs);
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_inputs in = base_inputs(cases[i].mode);
		struct abq_verdict v;
		in.facts.provision_status = cases[i].status;
		in.prov_imposes = cases[i].imposes;
		in.allow_non_provisionable = cases[i].allow;
		in.entry_account = cases[i].entry_account;
		in.entry_device = cases[i].entry_device;
		if (cases[i].over_limit) {
			in.limit_applies = true;
			in.max_devices = 1;
			in.devices_ahead = 1;
		}
		if (cases[i].rule)
			in.rules = rs;
		abq_decide(&in, &v);
		if (v.state != cases[i].want || v.reason != cases[i].reason ||
		    v.step != cases[i].step)
			fail_msg("case %zu: got %s/%s step %d", i, abq_state_name(v.state),
			         abq_reason_name(v.reason), (int)v.step);
		assert_int_equal(v.rule_id, cases[i].rule && v.step == ABQ_STEP_RULE ? 7 : 0);
	}
	struct abq_inputs in = base_inputs(ABQ_MODE_PERMISSIVE);
	struct abq_verdict v;
	in.facts.provision_status = 2;
	in.prov_imposes = true;
	in.facts.wiped = true;
	abq_decide(&in, &v);
	assert_int_equal(v.reason, ABQ_REASON_WIPE);
	abq_ruleset_free(&rs);
	assert_string_equal(abq_reason_name(ABQ_REASON_POLICY), "Policy");
}

/* ---- entries, Disabled, limit: steps 2-4 ---------------------------------- */

/* Steps 2-4 on a table: Disabled, account entry over device entry, the device limit. */
static void
test_entries_and_limit(void **state)
{
	static const struct {
		const char *what;
		enum abq_mode mode;
		enum abq_state entry_account, entry_device;
		bool limit_applies;
		int64_t max;
		size_t ahead;
		enum abq_state want;
		enum abq_reason reason;
		enum abq_step step;
	} cases[] = {
	    {"device entry", ABQ_MODE_STRICT, NONE, A, false, 0, 0, A, ABQ_REASON_INDIVIDUAL,
	     ABQ_STEP_ENTRY_DEVICE},
	    {"device entry blocks", ABQ_MODE_PERMISSIVE, NONE, B, false, 0, 0, B,
	     ABQ_REASON_INDIVIDUAL, ABQ_STEP_ENTRY_DEVICE},
	    {"account entry", ABQ_MODE_PERMISSIVE, Q, NONE, false, 0, 0, Q, ABQ_REASON_INDIVIDUAL,
	     ABQ_STEP_ENTRY_ACCOUNT},
	    {"account entry wins over device entry", ABQ_MODE_INTERACTIVE, A, B, false, 0, 0, A,
	     ABQ_REASON_INDIVIDUAL, ABQ_STEP_ENTRY_ACCOUNT},
	    {"account block wins over device allow", ABQ_MODE_INTERACTIVE, B, A, false, 0, 0, B,
	     ABQ_REASON_INDIVIDUAL, ABQ_STEP_ENTRY_ACCOUNT},
	    {"Disabled beats a block entry", ABQ_MODE_DISABLED, B, B, true, 1, 5, A,
	     ABQ_REASON_DISABLED, ABQ_STEP_DISABLED},
	    {"entry beats the limit", ABQ_MODE_PERMISSIVE, NONE, A, true, 1, 5, A,
	     ABQ_REASON_INDIVIDUAL, ABQ_STEP_ENTRY_DEVICE},
	    {"a Discovery entry is no entry", ABQ_MODE_STRICT, D, D, false, 0, 0, B,
	     ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {"limit below", ABQ_MODE_PERMISSIVE, NONE, NONE, true, 3, 2, A, ABQ_REASON_MODE,
	     ABQ_STEP_MODE},
	    {"limit at", ABQ_MODE_PERMISSIVE, NONE, NONE, true, 3, 3, B, ABQ_REASON_LIMIT,
	     ABQ_STEP_LIMIT},
	    {"limit above", ABQ_MODE_INTERACTIVE, NONE, NONE, true, 3, 7, B, ABQ_REASON_LIMIT,
	     ABQ_STEP_LIMIT},
	    {"limit 1, first device", ABQ_MODE_PERMISSIVE, NONE, NONE, true, 1, 0, A,
	     ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {"limit does not apply", ABQ_MODE_PERMISSIVE, NONE, NONE, false, 3, 7, A,
	     ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {"limit 0 is no limit", ABQ_MODE_PERMISSIVE, NONE, NONE, true, 0, 1000, A,
	     ABQ_REASON_MODE, ABQ_STEP_MODE},
	    {"limit in Disabled", ABQ_MODE_DISABLED, NONE, NONE, true, 1, 5, A, ABQ_REASON_DISABLED,
	     ABQ_STEP_DISABLED},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_inputs in = base_inputs(cases[i].mode);
		struct abq_verdict v;
		in.entry_account = cases[i].entry_account;
		in.entry_device = cases[i].entry_device;
		in.limit_applies = cases[i].limit_applies;
		in.max_devices = cases[i].max;
		in.devices_ahead = cases[i].ahead;
		abq_decide(&in, &v);
		print_message("case: %s\n", cases[i].what);
		assert_int_equal(v.state, cases[i].want);
		assert_int_equal(v.reason, cases[i].reason);
		assert_int_equal(v.step, cases[i].step);
	}
}

/* The limit comes before rules, rules before the mode; entries before rules. */
static void
test_step_order_with_rules(void **state)
{
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iphone", A, 1, NULL),
	};
	char *err = NULL;
	struct abq_ruleset *rs = abq_ruleset_new(rules, NELEM(rules), &err);
	assert_non_null(rs);
	struct abq_inputs in = base_inputs(ABQ_MODE_STRICT);
	struct abq_verdict v;
	in.rules = rs;

	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.reason, ABQ_REASON_RULE);
	assert_int_equal(v.rule_id, 1);
	assert_ptr_equal(v.rule, abq_ruleset_rule(rs, 0));
	assert_int_equal(v.step, ABQ_STEP_RULE);

	in.limit_applies = true;
	in.max_devices = 1;
	in.devices_ahead = 1;
	abq_decide(&in, &v);
	assert_int_equal(v.state, B);
	assert_int_equal(v.reason, ABQ_REASON_LIMIT);

	in.entry_device = Q;
	abq_decide(&in, &v);
	assert_int_equal(v.state, Q);
	assert_int_equal(v.reason, ABQ_REASON_INDIVIDUAL);
	abq_ruleset_free(&rs);
	assert_null(rs);
}

/* ---- rules: characteristic x match kind ----------------------------------- */

struct match_case {
	enum abq_charac charac;
	enum abq_match match;
	const char *pattern;
	const char *value;
	bool want;
};

static const struct match_case match_cases[] = {
    /* exact: ASCII case-insensitive equality of the whole value */
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "ABC123", "abc123", true},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "ABC123", "ABC1234", false},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "ABC123", "ABC12", false},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", "IPHONE", true},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", "iPhone ", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "SM-G991B", "sm-g991b", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "Android 14", "ANDROID 14", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "Android 14", "Android 1", false},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_EXACT, "Outlook-iOS/2.0", "outlook-ios/2.0", true},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_EXACT, "Outlook-iOS/2.0", "Outlook-iOS/2.00", false},
    /* glob: fnmatch with FNM_CASEFOLD, whole value */
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "ABC*", "abcdef", true},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "ABC*", "xabc", false},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "iPhone*", "IPHONE", true},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "iPhone*", "MyiPhone", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-G9*", "sm-g991b", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[AG]9?", "sm-a90", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[AG]9?", "SM-B90", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[!AG]9?", "SM-B90", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[]x]*", "SM-]1", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[[:digit:]]*", "SM-9x", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-[[:digit:]]*", "SM-x9", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "iOS 1?.*", "IOS 17.5", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "iOS 1?.*", "iOS 7.1", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "a\\*b", "A*B", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "a\\*b", "axb", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "v1.0 (x)+", "V1.0 (X)+", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "v1.0 (x)+", "v1x0 (x)+", false},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "*Outlook*", "Mozilla outlook-android", true},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "*", "", true},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "?*", "", false},
    /* regex: PCRE2, caseless, anchored to the whole value */
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "ABC[0-9]+", "abc42", true},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "ABC[0-9]+", "abc42x", false},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "ABC", "xABC", false},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "iPhone|iPad", "IPAD", true},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "iPhone|iPad", "iPadX", false},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "iPhone|iPad", "AiPhone", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "^SM-[A-Z]\\d{3}.*$", "sm-g991b", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "^SM-[A-Z]\\d{3}.*$", "SM-991B", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "\\Qa.b", "A.B", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "\\Qa.b", "axb", false},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "(a)\\1x", "AAX", true},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "(a)\\1x", "abx", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Android 1[0-4](\\..*)?", "android 13.2", true},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Android 1[0-4](\\..*)?", "Android 15", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "(?-i)iOS.*", "IOS 17", false},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "(?-i)iOS.*", "iOS 17", true},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android/1[0-4].*", "android/13 Mobile", true},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android/1[0-4].*", "Mozilla Android/13", false},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android", "Android/13", false},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Apple-.*$", "Apple-x\n", false},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, ".*", "", true},
};

/* The value of a characteristic in a value vector. */
static void
set_value(const char *values[ABQ_CHAR_COUNT], enum abq_charac c, const char *v)
{
	for (size_t i = 0; i < ABQ_CHAR_COUNT; i++)
		values[i] = "unrelated";
	values[c] = v;
}

static int naive_match(const struct abq_rule *rules, size_t n,
                       const char *const values[ABQ_CHAR_COUNT]);

/* Every characteristic with every match kind, alone and among decoys. */
static void
test_rule_matching(void **state)
{
	for (size_t i = 0; i < NELEM(match_cases); i++) {
		const struct match_case *mc = &match_cases[i];
		const char *values[ABQ_CHAR_COUNT];
		const struct abq_rule *hit;
		char *err = NULL;
		set_value(values, mc->charac, mc->value);
		print_message("case %zu: %s %s '%s' on '%s'\n", i, abq_charac_name(mc->charac),
		              abq_match_name(mc->match), mc->pattern, mc->value);

		/* Alone. */
		struct abq_rule one[] = {mkrule(7, mc->charac, mc->match, mc->pattern, B, 1, NULL)};
		struct abq_ruleset *rs = abq_ruleset_new(one, 1, &err);
		assert_non_null(rs);
		enum abq_rule_outcome o = abq_ruleset_match(rs, values, 0, &hit, NULL);
		assert_int_equal(o, mc->want ? ABQ_RULES_MATCH : ABQ_RULES_NONE);
		if (mc->want)
			assert_int_equal(hit->id, 7);
		abq_ruleset_free(&rs);

		/*
		 * Among decoys on the same characteristic (a screen is built) and
		 * on the others: the decoys match none of the values above.
		 */
		struct abq_rule many[] = {
		    mkrule(1, mc->charac, ABQ_MATCH_GLOB, "zzdecoy*", A, 1, NULL),
		    mkrule(2, mc->charac, ABQ_MATCH_REGEX, "qq[0-9]+decoy", A, 2, NULL),
		    mkrule(3, mc->charac, ABQ_MATCH_EXACT, "decoy", A, 3, NULL),
		    mkrule(7, mc->charac, mc->match, mc->pattern, B, 4, NULL),
		    mkrule(4, mc->charac, ABQ_MATCH_REGEX, "z{3}", A, 5, NULL),
		    mkrule(5, (mc->charac + 1) % ABQ_CHAR_COUNT, ABQ_MATCH_GLOB, "x*", A, 6, NULL),
		    mkrule(6, (mc->charac + 2) % ABQ_CHAR_COUNT, ABQ_MATCH_REGEX, "y.*", A, 7,
		           NULL),
		};
		rs = abq_ruleset_new(many, NELEM(many), &err);
		assert_non_null(rs);
		assert_int_equal(abq_ruleset_count(rs), NELEM(many));
		o = abq_ruleset_match(rs, values, 0, &hit, NULL);
		assert_int_equal(o, mc->want ? ABQ_RULES_MATCH : ABQ_RULES_NONE);
		if (mc->want)
			assert_int_equal(hit->id, 7);
		/* The value on another characteristic is not seen by this rule. */
		const char *other[ABQ_CHAR_COUNT];
		set_value(other, (mc->charac + 3) % ABQ_CHAR_COUNT, mc->value);
		int want = naive_match(many, NELEM(many), other);
		o = abq_ruleset_match(rs, other, 0, &hit, NULL);
		assert_int_equal(o, want < 0 ? ABQ_RULES_NONE : ABQ_RULES_MATCH);
		if (want >= 0)
			assert_int_equal(hit->id, many[want].id);
		abq_ruleset_free(&rs);
	}
}

/* NULL facts count as "" for DeviceId, DeviceType and UserAgent. */
static void
test_null_facts_are_empty(void **state)
{
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "?*", A, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "", A, 2, NULL),
	    mkrule(3, ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "(?:)", B, 3, NULL),
	};
	char *err = NULL;
	/* An empty pattern is refused... */
	assert_null(abq_ruleset_new(rules, NELEM(rules), &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "rule 2: a rule needs a pattern"));
	free(err);
	/* ...but a regex that matches the empty value is fine. */
	rules[1] = rules[0];
	struct abq_ruleset *rs = abq_ruleset_new(rules, NELEM(rules), &err);
	assert_non_null(rs);
	struct abq_inputs in = base_inputs(ABQ_MODE_PERMISSIVE);
	struct abq_verdict v;
	in.facts.user_agent = NULL;
	in.facts.device_type = NULL;
	in.facts.device_id = NULL;
	in.rules = rs;
	abq_decide(&in, &v);
	assert_int_equal(v.state, B);
	assert_int_equal(v.rule_id, 3);
	abq_ruleset_free(&rs);
}

/* Position decides between rules in a rule set, whatever their kind. */
static void
test_rule_positions(void **state)
{
	static const struct {
		enum abq_match first, second;
	} kinds[] = {
	    {ABQ_MATCH_EXACT, ABQ_MATCH_GLOB},  {ABQ_MATCH_GLOB, ABQ_MATCH_EXACT},
	    {ABQ_MATCH_REGEX, ABQ_MATCH_EXACT}, {ABQ_MATCH_EXACT, ABQ_MATCH_REGEX},
	    {ABQ_MATCH_GLOB, ABQ_MATCH_REGEX},  {ABQ_MATCH_REGEX, ABQ_MATCH_GLOB},
	    {ABQ_MATCH_EXACT, ABQ_MATCH_EXACT},
	};
	const char *pat[] = {[ABQ_MATCH_EXACT] = "sm-g991b",
	                     [ABQ_MATCH_GLOB] = "SM-G*",
	                     [ABQ_MATCH_REGEX] = "SM-G\\d+B"};
	for (size_t i = 0; i < NELEM(kinds); i++) {
		struct abq_rule rules[] = {
		    mkrule(10, ABQ_CHAR_DEVICEMODEL, kinds[i].first, pat[kinds[i].first], Q, 5,
		           NULL),
		    mkrule(20, ABQ_CHAR_DEVICEMODEL, kinds[i].second, pat[kinds[i].second], B, 1,
		           NULL),
		};
		const char *values[ABQ_CHAR_COUNT];
		const struct abq_rule *hit;
		set_value(values, ABQ_CHAR_DEVICEMODEL, "SM-G991B");
		struct abq_ruleset *rs = abq_ruleset_new(rules, 2, NULL);
		assert_non_null(rs);
		/* The ruleset does not sort: position 0 wins. */
		assert_int_equal(abq_ruleset_match(rs, values, 0, &hit, NULL), ABQ_RULES_MATCH);
		assert_int_equal(hit->id, 10);
		assert_int_equal(hit->level, Q);
		abq_ruleset_free(&rs);
	}
	/* A rule on another characteristic given first wins as well. */
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Apple-.*", A, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "abcdef0123456789", B, 2, NULL),
	};
	struct abq_ruleset *rs = abq_ruleset_new(rules, 2, NULL);
	struct abq_inputs in = base_inputs(ABQ_MODE_STRICT);
	struct abq_verdict v;
	in.rules = rs;
	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.rule_id, 1);
	abq_ruleset_free(&rs);
}

/* ---- the index against a naive evaluator ---------------------------------- */

/* First rule (by position) that matches, the slow and obvious way; -1: none. */
static int
naive_match(const struct abq_rule *rules, size_t n, const char *const values[ABQ_CHAR_COUNT])
{
	for (size_t i = 0; i < n; i++) {
		const char *v = values[rules[i].charac];
		bool m = false;
		switch (rules[i].match) {
		case ABQ_MATCH_EXACT:
			m = strcasecmp(rules[i].pattern, v) == 0;
			break;
		case ABQ_MATCH_GLOB:
			m = fnmatch(rules[i].pattern, v, FNM_CASEFOLD) == 0;
			break;
		case ABQ_MATCH_REGEX: {
			int err;
			PCRE2_SIZE off;
			pcre2_code *re = pcre2_compile(
			    (PCRE2_SPTR)rules[i].pattern, PCRE2_ZERO_TERMINATED,
			    PCRE2_CASELESS | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, NULL);
			assert_non_null(re);
			pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
			m = pcre2_match(re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL) >= 0;
			pcre2_match_data_free(md);
			pcre2_code_free(re);
			break;
		}
		}
		if (m)
			return (int)i;
	}
	return -1;
}

static const struct abq_rule cross_rules[] = {
    {.id = 1, .charac = ABQ_CHAR_DEVICETYPE, .match = ABQ_MATCH_GLOB, .pattern = "iPhone*"},
    {.id = 2,
     .charac = ABQ_CHAR_DEVICEMODEL,
     .match = ABQ_MATCH_REGEX,
     .pattern = "^SM-[A-Z]\\d{3}.*$"},
    {.id = 3,
     .charac = ABQ_CHAR_USERAGENT,
     .match = ABQ_MATCH_REGEX,
     .pattern = "Android/1[0-4].*"},
    {.id = 4, .charac = ABQ_CHAR_DEVICEMODEL, .match = ABQ_MATCH_EXACT, .pattern = "Pixel 8"},
    {.id = 5, .charac = ABQ_CHAR_DEVICEMODEL, .match = ABQ_MATCH_GLOB, .pattern = "Pixel ?"},
    {.id = 6, .charac = ABQ_CHAR_DEVICEOS, .match = ABQ_MATCH_REGEX, .pattern = "iOS 1[5-7]\\..*"},
    {.id = 7, .charac = ABQ_CHAR_DEVICEOS, .match = ABQ_MATCH_GLOB, .pattern = "Android [0-9]"},
    {.id = 8, .charac = ABQ_CHAR_DEVICEID, .match = ABQ_MATCH_REGEX, .pattern = "(\\w)\\1.*"},
    {.id = 9, .charac = ABQ_CHAR_DEVICEID, .match = ABQ_MATCH_GLOB, .pattern = "*[0-3]"},
    {.id = 10, .charac = ABQ_CHAR_DEVICEOS, .match = ABQ_MATCH_REGEX, .pattern = "\\QiOS 1"},
    {.id = 11, .charac = ABQ_CHAR_USERAGENT, .match = ABQ_MATCH_GLOB, .pattern = "*Outlook*"},
    {.id = 12,
     .charac = ABQ_CHAR_USERAGENT,
     .match = ABQ_MATCH_REGEX,
     .pattern = "Apple-(iPhone|iPad)\\d+C\\d/.*"},
    {.id = 13, .charac = ABQ_CHAR_DEVICETYPE, .match = ABQ_MATCH_EXACT, .pattern = "Android"},
    {.id = 14,
     .charac = ABQ_CHAR_DEVICEMODEL,
     .match = ABQ_MATCH_REGEX,
     .pattern = "(*COMMIT)ab|a.*"},
    {.id = 15,
     .charac = ABQ_CHAR_DEVICETYPE,
     .match = ABQ_MATCH_REGEX,
     .pattern = "(?x) i pad # comment"},
    {.id = 16, .charac = ABQ_CHAR_DEVICETYPE, .match = ABQ_MATCH_GLOB, .pattern = "[sS]AMSUNG*"},
    /* Group numbers would shift in an alternation: no screen for DeviceId. */
    {.id = 17, .charac = ABQ_CHAR_DEVICEID, .match = ABQ_MATCH_REGEX, .pattern = "(dev)x.*"},
    {.id = 18, .charac = ABQ_CHAR_DEVICEID, .match = ABQ_MATCH_REGEX, .pattern = "(q|r)(?1)x"},
    {.id = 19,
     .charac = ABQ_CHAR_DEVICEOS,
     .match = ABQ_MATCH_REGEX,
     .pattern = "(win)(dows)? \\d+"},
    /* Bracket expressions translated into the screen. */
    {.id = 20, .charac = ABQ_CHAR_DEVICEOS, .match = ABQ_MATCH_GLOB, .pattern = "Android [4-8]*"},
    {.id = 21, .charac = ABQ_CHAR_USERAGENT, .match = ABQ_MATCH_GLOB, .pattern = "SM-[!ab-]*"},
    {.id = 22, .charac = ABQ_CHAR_USERAGENT, .match = ABQ_MATCH_GLOB, .pattern = "[]-]x*"},
    {.id = 23, .charac = ABQ_CHAR_USERAGENT, .match = ABQ_MATCH_GLOB, .pattern = "v[.]?"},
};

static const char *const cross_values[] = {
    "",
    "iPhone",
    "iphone12",
    "IPAD",
    "ipad",
    "Android",
    "SM-G991B",
    "sm-a5",
    "SAMSUNGSMG991B",
    "Pixel 8",
    "pixel 9",
    "Pixel 10",
    "iOS 17.5",
    "iOS 14.1",
    "ios 1",
    "Android 9",
    "Android 14",
    "Android/13 Mobile",
    "Outlook-iOS/2.0",
    "Apple-iPhone15C2/2105.258",
    "Android 5.1",
    "android 3",
    "SM-c1",
    "SM-a1",
    "SM-B",
    "SM--",
    "SM-",
    "-x",
    "]xy",
    "x",
    "v.1",
    "vx1",
    "QRX",
    "qqx",
    "devx",
    "Windows 11",
    "win 7",
    "AAB",
    "xx7",
    "dev1",
    "DEV4",
    "abz",
    "ab",
    "azz",
};

/* The index (exact table, screens, bounds) agrees with a naive first-match scan. */
static void
test_index_against_naive(void **state)
{
	size_t n = NELEM(cross_rules);
	struct abq_rule rules[NELEM(cross_rules)];
	for (size_t i = 0; i < n; i++) {
		rules[i] = cross_rules[i];
		rules[i].level = A;
	}
	/* Every rotation of the rule list, so that positions vary. */
	for (size_t rot = 0; rot < n; rot++) {
		struct abq_rule r[NELEM(cross_rules)];
		for (size_t i = 0; i < n; i++)
			r[i] = rules[(i + rot) % n];
		char *err = NULL;
		struct abq_ruleset *rs = abq_ruleset_new(r, n, &err);
		if (rs == NULL)
			fail_msg("%s", err);
		/*
		 * Screens where every pattern rule can be screened (OS, UserAgent);
		 * none where a regex refers to groups (DeviceId), uses a verb
		 * (DeviceModel) or (?x) comments (DeviceType: does not compile).
		 */
		assert_int_equal(abq_ruleset_screened(rs),
		                 (1u << ABQ_CHAR_DEVICEOS) | (1u << ABQ_CHAR_USERAGENT));
		size_t nv = NELEM(cross_values);
		for (size_t a = 0; a < nv; a++) {
			for (size_t c = 0; c < ABQ_CHAR_COUNT; c++) {
				const char *values[ABQ_CHAR_COUNT];
				for (size_t k = 0; k < ABQ_CHAR_COUNT; k++)
					values[k] = cross_values[(a + k * 7 + c) % nv];
				const struct abq_rule *hit = NULL;
				int want = naive_match(r, n, values);
				enum abq_rule_outcome o =
				    abq_ruleset_match(rs, values, 0, &hit, NULL);
				if (want < 0) {
					assert_int_equal(o, ABQ_RULES_NONE);
				} else {
					assert_int_equal(o, ABQ_RULES_MATCH);
					assert_int_equal(hit->id, r[want].id);
				}
			}
		}
		abq_ruleset_free(&rs);
	}
}

/* Which patterns may go into a screen; results must not depend on it either way. */
static void
test_screen_eligibility(void **state)
{
	static const struct {
		enum abq_match match;
		const char *pattern, *value;
		bool screened, matches;
	} cases[] = {
	    {ABQ_MATCH_REGEX, "SM-[A-Z]\\d{3}.*", "sm-g991b", true, true},
	    {ABQ_MATCH_REGEX, "\\Qa.b", "A.B", true, true},
	    {ABQ_MATCH_REGEX, "(?-i)iOS.*", "iOS 1", true, true},
	    {ABQ_MATCH_REGEX, "(?i:x)|(y)", "Y", true, true},
	    {ABQ_MATCH_REGEX, "(a)\\1", "aA", false, true},
	    {ABQ_MATCH_REGEX, "(?<n>a)\\k<n>", "aa", false, true},
	    {ABQ_MATCH_REGEX, "(q|r)(?1)x", "qrx", false, true},
	    {ABQ_MATCH_REGEX, "(a(?-1)?b)", "aabb", false, true},
	    {ABQ_MATCH_REGEX, "a(?R)?b", "aabb", false, true},
	    {ABQ_MATCH_REGEX, "(a)?(?(1)b|c)", "ab", false, true},
	    {ABQ_MATCH_REGEX, "(*COMMIT)ab|a.*", "ax", false, false},
	    {ABQ_MATCH_REGEX, "(?x) a b # comment", "ab", false, true},
	    {ABQ_MATCH_GLOB, "SM-[]x]*", "SM-]", true, true},
	    {ABQ_MATCH_GLOB, "SM-[!a-c]?", "SM-dd", true, true},
	    {ABQ_MATCH_GLOB, "a\\*b", "a*B", true, true},
	    {ABQ_MATCH_GLOB, "[[:digit:]]*", "7x", false, true},
	    {ABQ_MATCH_GLOB, "caf\xc3\xa9*", "caf\xc3\xa9 au lait", false, true},
	    {ABQ_MATCH_GLOB, "a[b", "a[b", false, true},
	    {ABQ_MATCH_GLOB, "ab\\", "ab\\", false, false},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_rule rules[] = {
		    mkrule(1, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "zz*", A, 1, NULL),
		    mkrule(2, ABQ_CHAR_DEVICEMODEL, cases[i].match, cases[i].pattern, B, 2, NULL),
		};
		const char *values[ABQ_CHAR_COUNT];
		const struct abq_rule *hit;
		struct abq_ruleset *rs = abq_ruleset_new(rules, 2, NULL);
		print_message("case: %s\n", cases[i].pattern);
		assert_non_null(rs);
		assert_int_equal(abq_ruleset_screened(rs) != 0, cases[i].screened);
		set_value(values, ABQ_CHAR_DEVICEMODEL, cases[i].value);
		assert_int_equal(abq_ruleset_match(rs, values, 0, &hit, NULL),
		                 cases[i].matches ? ABQ_RULES_MATCH : ABQ_RULES_NONE);
		abq_ruleset_free(&rs);
	}
	/* One pattern rule alone gets no screen: it would only repeat it. */
	struct abq_rule one = mkrule(1, ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "x*", A, 1, NULL);
	struct abq_ruleset *rs = abq_ruleset_new(&one, 1, NULL);
	assert_int_equal(abq_ruleset_screened(rs), 0);
	abq_ruleset_free(&rs);
}

/*
 * In a UTF-8 locale fnmatch's "?" and brackets take a whole multibyte
 * character; the screen must still let such values through.
 */
static void
test_screen_multibyte_locale(void **state)
{
	if (setlocale(LC_ALL, "C.UTF-8") == NULL) {
		print_message("no C.UTF-8 locale: skipped\n");
		skip();
	}
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "zz*", A, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "caf?", B, 2, NULL),
	    mkrule(3, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "[!x]tre", Q, 3, NULL),
	};
	const char *models[] = {"caf\xc3\xa9", "\xc3\xaatre", "cafe", "xtre"};
	struct abq_ruleset *rs = abq_ruleset_new(rules, NELEM(rules), NULL);
	assert_int_equal(abq_ruleset_screened(rs), 1u << ABQ_CHAR_DEVICEMODEL);
	for (size_t i = 0; i < NELEM(models); i++) {
		const char *values[ABQ_CHAR_COUNT];
		const struct abq_rule *hit;
		set_value(values, ABQ_CHAR_DEVICEMODEL, models[i]);
		int want = naive_match(rules, NELEM(rules), values);
		enum abq_rule_outcome o = abq_ruleset_match(rs, values, 0, &hit, NULL);
		assert_int_equal(o, want < 0 ? ABQ_RULES_NONE : ABQ_RULES_MATCH);
		if (want >= 0)
			assert_int_equal(hit->id, rules[want].id);
	}
	/* fnmatch did take "\xc3\xa9" as one character here. */
	assert_int_equal(fnmatch("caf?", "caf\xc3\xa9", FNM_CASEFOLD), 0);
	abq_ruleset_free(&rs);
	setlocale(LC_ALL, "C");
}

/* ---- Discovery ------------------------------------------------------------- */

/* Discovery: unknown model/OS stops step 5 at the first rule that needs it, until the timeout. */
static void
test_discovery(void **state)
{
	static const struct {
		const char *what;
		const char *type, *model, *os;
		int64_t first_seen, timeout;
		enum abq_state want;
		enum abq_reason reason;
		int64_t rule_id;
		enum abq_charac missing;
	} cases[] = {
	    {"model unknown: Discovery", "Android", NULL, "Android 14", NOW - 60, 900, D,
	     ABQ_REASON_DISCOVERY, 2, ABQ_CHAR_DEVICEMODEL},
	    {"earlier type rule decides first", "iPhone", NULL, NULL, NOW - 60, 900, A,
	     ABQ_REASON_RULE, 1, 0},
	    {"first_seen 0 is seen now", "Android", NULL, "x", 0, 900, D, ABQ_REASON_DISCOVERY, 2,
	     ABQ_CHAR_DEVICEMODEL},
	    {"just before the timeout", "Android", NULL, "x", NOW - 899, 900, D,
	     ABQ_REASON_DISCOVERY, 2, ABQ_CHAR_DEVICEMODEL},
	    {"timeout passed: missing model is empty (rule 4 matches \"\")", "Android", NULL,
	     "Android 14", NOW - 900, 900, A, ABQ_REASON_RULE, 4, 0},
	    {"long after the timeout", "Android", NULL, "Android 14", NOW - 50000, 900, A,
	     ABQ_REASON_RULE, 4, 0},
	    {"timeout 0: never waits", "Android", NULL, "Android 14", NOW - 1, 0, A,
	     ABQ_REASON_RULE, 4, 0},
	    {"model known, matching", "Android", "SM-G991B", "Android 14", NOW - 60, 900, B,
	     ABQ_REASON_RULE, 2, 0},
	    {"model known, not matching", "Android", "Pixel 8", "Android 14", NOW - 60, 900, Q,
	     ABQ_REASON_MODE, 0, 0},
	    {"empty model is known", "Android", "", "Android 14", NOW - 60, 900, A, ABQ_REASON_RULE,
	     4, 0},
	    {"model known, OS unknown: OS rule stops", "Android", "Pixel 8", NULL, NOW - 60, 900, D,
	     ABQ_REASON_DISCOVERY, 3, ABQ_CHAR_DEVICEOS},
	    {"both unknown: the earlier rule is awaited", "Android", NULL, NULL, NOW - 60, 900, D,
	     ABQ_REASON_DISCOVERY, 2, ABQ_CHAR_DEVICEMODEL},
	};
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", A, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-*", B, 2, NULL),
	    mkrule(3, ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Android [0-9]", A, 3, NULL),
	    mkrule(4, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "(SM-X)?", A, 4, NULL),
	};
	struct abq_ruleset *rs = abq_ruleset_new(rules, NELEM(rules), NULL);
	assert_non_null(rs);
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_inputs in = base_inputs(ABQ_MODE_INTERACTIVE);
		struct abq_verdict v;
		in.rules = rs;
		in.facts.device_type = cases[i].type;
		in.facts.model = cases[i].model;
		in.facts.os = cases[i].os;
		in.facts.first_seen = cases[i].first_seen;
		in.discovery_timeout = cases[i].timeout;
		abq_decide(&in, &v);
		print_message("case: %s\n", cases[i].what);
		assert_int_equal(v.state, cases[i].want);
		assert_int_equal(v.reason, cases[i].reason);
		assert_int_equal(v.rule_id, cases[i].rule_id);
		if (cases[i].want == D) {
			assert_int_equal(v.missing, cases[i].missing);
			assert_int_equal(v.step, ABQ_STEP_DISCOVERY);
			assert_non_null(v.rule);
			assert_int_equal(v.rule->id, cases[i].rule_id);
		}
	}
	abq_ruleset_free(&rs);

	/* A later rule that matches does not decide before an unknown one. */
	struct abq_rule later[] = {
	    mkrule(1, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "x", B, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", A, 2, NULL),
	};
	rs = abq_ruleset_new(later, 2, NULL);
	struct abq_inputs in = base_inputs(ABQ_MODE_STRICT);
	struct abq_verdict v;
	in.rules = rs;
	in.facts.model = NULL;
	abq_decide(&in, &v);
	assert_int_equal(v.state, D);
	assert_int_equal(v.rule_id, 1);
	/* No rule on the unknown characteristic: no Discovery. */
	in.facts.model = "iPhone15,2";
	in.facts.os = NULL;
	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.rule_id, 2);
	/* An entry decides before Discovery. */
	in.facts.model = NULL;
	in.entry_device = B;
	abq_decide(&in, &v);
	assert_int_equal(v.state, B);
	assert_int_equal(v.reason, ABQ_REASON_INDIVIDUAL);
	abq_ruleset_free(&rs);
}

/* ---- rule_check ---------------------------------------------------------- */

/* abq_rule_check refuses what cannot be a rule, with messages that say why. */
static void
test_rule_check(void **state)
{
	static const struct {
		enum abq_charac charac;
		enum abq_match match;
		const char *pattern;
		enum abq_state level;
		const char *err; /* NULL: valid */
	} cases[] = {
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "a(b", B,
	     "regex 'a(b' does not compile at offset 3: missing closing parenthesis"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "[a-", B, "regex '[a-' does not compile"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "x{2,1}", B, "at offset"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "", B, "needs a pattern"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "", A, "needs a pattern"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, NULL, A, "needs a pattern"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "x", NONE, "Allowed, Blocked or Quarantined"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_EXACT, "x", D, "Allowed, Blocked or Quarantined"},
	    {ABQ_CHAR_COUNT, ABQ_MATCH_EXACT, "x", A, "DeviceId, DeviceType"},
	    {ABQ_CHAR_DEVICEID, 9, "x", A, "exact, glob or regex"},
	    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "SM-G9.*", A, NULL},
	    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "[", Q, NULL},
	    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "iOS 17", B, NULL},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_rule r = mkrule(0, cases[i].charac, cases[i].match, cases[i].pattern,
		                           cases[i].level, 1, NULL);
		char *err = NULL;
		int rc = abq_rule_check(&r, &err);
		print_message("case %zu\n", i);
		if (cases[i].err == NULL) {
			assert_int_equal(rc, 0);
			assert_null(err);
			assert_int_equal(abq_rule_check(&r, NULL), 0);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(err);
			if (strstr(err, cases[i].err) == NULL)
				fail_msg("'%s' lacks '%s'", err, cases[i].err);
			free(err);
			assert_int_equal(abq_rule_check(&r, NULL), -1);
		}
	}
	/* A rule set with a bad rule names it. */
	struct abq_rule rules[] = {
	    mkrule(3, ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "x*", A, 1, NULL),
	    mkrule(7, ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "a(b", A, 2, NULL),
	};
	char *err = NULL;
	assert_null(abq_ruleset_new(rules, 2, &err));
	assert_string_equal(err, "rule 7: regex 'a(b' does not compile at offset 3: missing "
	                         "closing parenthesis");
	free(err);
	/* An empty set is a set. */
	struct abq_ruleset *rs = abq_ruleset_new(NULL, 0, &err);
	assert_non_null(rs);
	assert_int_equal(abq_ruleset_count(rs), 0);
	assert_null(abq_ruleset_rule(rs, 0));
	abq_ruleset_free(&rs);
}

/* ---- attributes ---------------------------------------------------------- */

/* Each attribute with good values (canonical forms) and bad ones (messages). */
static void
test_attrs_validate(void **state)
{
	static const struct {
		const char *name, *value;
		const char *canon; /* NULL: refused */
		const char *err;   /* part of the message when refused */
		int64_t num;
	} cases[] = {
	    {"abqMode", "interactive", "Interactive", NULL, ABQ_MODE_INTERACTIVE},
	    {"abqMode", "STRICT", "Strict", NULL, ABQ_MODE_STRICT},
	    {"abqMode", "Permissive", "Permissive", NULL, ABQ_MODE_PERMISSIVE},
	    {"abqMode", "disabled", "Disabled", NULL, ABQ_MODE_DISABLED},
	    {"abqMode", "foo", NULL, "abqMode takes Permissive, Interactive, Strict or Disabled",
	     0},
	    {"abqMode", "", NULL, "abqMode takes Permissive", 0},
	    {"abqNotificationsInterval", "0", "0", NULL, 0},
	    {"abqNotificationsInterval", "3600", "1h", NULL, 3600},
	    {"abqNotificationsInterval", "45M", "45m", NULL, 2700},
	    {"abqNotificationsInterval", "90", "90s", NULL, 90},
	    {"abqNotificationsInterval", "1d", "1d", NULL, 86400},
	    {"abqNotificationsInterval", "-5", NULL, "abqNotificationsInterval takes a duration",
	     0},
	    {"abqNotificationsInterval", "soon", NULL, "'soon' is not one", 0},
	    {"abqNotificationsInterval", "99999999999999999999", NULL, "too large", 0},
	    {"abqMaxDevicesPerAccount", "3", "3", NULL, 3},
	    {"abqMaxDevicesPerAccount", "0", "0", NULL, 0},
	    {"abqMaxDevicesPerAccount", "007", "7", NULL, 7},
	    {"abqMaxDevicesPerAccount", "-1", NULL, "abqMaxDevicesPerAccount takes a whole number",
	     0},
	    {"abqMaxDevicesPerAccount", "three", NULL, "not a number", 0},
	    {"abqMaxDevicesPerAccount", "3 ", NULL, "not a number", 0},
	    {"abqDiscoveryTimeout", "900", "15m", NULL, 900},
	    {"abqDiscoveryTimeout", "2w", "2w", NULL, 1209600},
	    {"abqDiscoveryTimeout", "15 m", NULL, "abqDiscoveryTimeout takes a duration", 0},
	    {"abqNotifyUserOnAllow", "yes", "TRUE", NULL, 1},
	    {"abqNotifyUserOnAllow", "true", "TRUE", NULL, 1},
	    {"abqNotifyUserOnAllow", "On", "TRUE", NULL, 1},
	    {"abqNotifyUserOnAllow", "0", "FALSE", NULL, 0},
	    {"abqNotifyUserOnAllow", "No", "FALSE", NULL, 0},
	    {"abqNotifyUserOnAllow", "maybe", NULL, "abqNotifyUserOnAllow takes TRUE or FALSE", 0},
	    {"abqNotifyAdminsImmediately", "1", "TRUE", NULL, 1},
	    {"abqNotifyAdminsImmediately", "FALSE", "FALSE", NULL, 0},
	    {"abqNotifyAdminsImmediately", "", NULL, "takes TRUE or FALSE", 0},
	    {"abqAdmins", "", "", NULL, 0},
	    {"abqAdmins", "a@x.com", "a@x.com", NULL, 1},
	    {"abqAdmins", " A.B@Example.COM , root@mail.example.org ",
	     "A.B@example.com, root@mail.example.org", NULL, 2},
	    {"abqAdmins", "a@x.com,", "a@x.com", NULL, 1},
	    {"abqAdmins", "not-an-address", NULL,
	     "abqAdmins takes mail addresses separated by commas", 0},
	    {"abqAdmins", "a@x.com b@y.com", NULL, "'a@x.com b@y.com' is not one", 0},
	    {"abqAdmins", "a@x.com,,b@y.com", NULL, "has an empty one", 0},
	    {"abqAdmins", "a@x..com", NULL, "is not one", 0},
	    {"abqAdmins", "@x.com", NULL, "is not one", 0},
	    {"abqAdmins", "a@", NULL, "is not one", 0},
	    {"abqAdmins", "<a@x.com>", NULL, "is not one", 0},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct abq_attr_def *def = abq_attr_find(cases[i].name);
		char *canon = NULL, *err = NULL;
		assert_non_null(def);
		print_message("case: %s '%s'\n", cases[i].name, cases[i].value);
		int rc = abq_attr_validate(def, cases[i].value, &canon, &err);
		if (cases[i].canon != NULL) {
			if (rc != 0)
				fail_msg("refused: %s", err);
			assert_string_equal(canon, cases[i].canon);
			assert_null(err);
			assert_int_equal(abq_attr_int_value(def, canon), cases[i].num);
			/* The canonical form is a fixed point. */
			char *again = NULL;
			assert_int_equal(abq_attr_validate(def, canon, &again, &err), 0);
			assert_string_equal(again, canon);
			free(again);
			free(canon);
		} else {
			assert_int_equal(rc, -1);
			assert_null(canon);
			assert_non_null(err);
			if (strstr(err, cases[i].err) == NULL)
				fail_msg("'%s' lacks '%s'", err, cases[i].err);
			free(err);
		}
	}
}

/* The attribute table itself: names, types, defaults, scopes, ids. */
static void
test_attrs_table(void **state)
{
	static const struct {
		const char *name;
		enum abq_attr_type type;
		const char *def;
		unsigned scopes;
		bool reevaluates;
		enum abq_attr_id id;
	} rows[] = {
	    {"abqMode", ABQ_ATTR_MODE, "Permissive", ABQ_ATTR_AT_ALL, true, ABQ_ATTR_ID_MODE},
	    {"abqNotificationsInterval", ABQ_ATTR_DURATION, "1h",
	     ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false, ABQ_ATTR_ID_NOTIFICATIONS_INTERVAL},
	    {"abqMaxDevicesPerAccount", ABQ_ATTR_COUNT, "0", ABQ_ATTR_AT_ALL, true,
	     ABQ_ATTR_ID_MAX_DEVICES},
	    {"abqDiscoveryTimeout", ABQ_ATTR_DURATION, "15m", ABQ_ATTR_AT_ALL, true,
	     ABQ_ATTR_ID_DISCOVERY_TIMEOUT},
	    {"abqNotifyUserOnAllow", ABQ_ATTR_BOOL, "FALSE", ABQ_ATTR_AT_ALL, false,
	     ABQ_ATTR_ID_NOTIFY_USER_ON_ALLOW},
	    {"abqNotifyAdminsImmediately", ABQ_ATTR_BOOL, "FALSE",
	     ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false, ABQ_ATTR_ID_NOTIFY_ADMINS_NOW},
	    {"abqAdmins", ABQ_ATTR_ADDRESSES, "", ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false,
	     ABQ_ATTR_ID_ADMINS},
	};
	size_t count = 0;
	for (const struct abq_attr_def *d = abq_attr_defs(); d->name != NULL; d++)
		count++;
	assert_int_equal(count, NELEM(rows));
	assert_int_equal(count, ABQ_ATTR_ID_COUNT);
	for (size_t i = 0; i < NELEM(rows); i++) {
		const struct abq_attr_def *d = abq_attr_find(rows[i].name);
		assert_non_null(d);
		assert_string_equal(d->name, rows[i].name);
		assert_int_equal(d->type, rows[i].type);
		assert_string_equal(d->default_value, rows[i].def);
		assert_int_equal(d->scopes, rows[i].scopes);
		assert_int_equal(d->reevaluates, rows[i].reevaluates);
		assert_non_null(d->help);
		assert_ptr_equal(abq_attr_by_id(rows[i].id), d);
		assert_int_equal(abq_attr_id_of(d), rows[i].id);
		/* Defaults are canonical. */
		char *canon = NULL, *err = NULL;
		assert_int_equal(abq_attr_validate(d, d->default_value, &canon, &err), 0);
		assert_string_equal(canon, d->default_value);
		free(canon);
	}
	assert_ptr_equal(abq_attr_find("ABQMODE"), abq_attr_find("abqMode"));
	assert_null(abq_attr_find("abqColour"));
	assert_null(abq_attr_find(NULL));
	assert_null(abq_attr_by_id(ABQ_ATTR_ID_COUNT));
	char *canon = NULL, *err = NULL;
	assert_int_equal(abq_attr_validate(abq_attr_find("abqMode"), NULL, &canon, &err), -1);
	assert_string_equal(err, "abqMode needs a value");
	free(err);
	assert_string_equal(abq_attr_scopes_text(ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN),
	                    "global and domain");
}

/* ---- policy -------------------------------------------------------------- */

/* Add an attribute that must be accepted. */
static void
add_attr(struct abq_policy *p, enum abq_scope scope, const char *target, const char *name,
         const char *value)
{
	struct abq_attr a = {
	    .scope = scope, .target = (char *)target, .name = (char *)name, .value = (char *)value};
	char *err = NULL;
	if (abq_policy_add_attr(p, &a, &err) != 0)
		fail_msg("%s %s %s: %s", target ? target : "global", name, value, err);
}

/* Add an attribute that must be refused with a message containing want. */
static void
add_attr_bad(struct abq_policy *p, enum abq_scope scope, const char *target, const char *name,
             const char *value, const char *want)
{
	struct abq_attr a = {
	    .scope = scope, .target = (char *)target, .name = (char *)name, .value = (char *)value};
	char *err = NULL;
	assert_int_equal(abq_policy_add_attr(p, &a, &err), -1);
	assert_non_null(err);
	if (strstr(err, want) == NULL)
		fail_msg("'%s' lacks '%s'", err, want);
	free(err);
}

#define NDOMAINS  20
#define NACCOUNTS 20000

/* Attribute resolution account > domain > global > default, with thousands of accounts. */
static void
test_policy_resolution(void **state)
{
	struct abq_policy *p = abq_policy_new("Example.COM");
	char account[64], domain[64];
	enum abq_scope scope;

	assert_string_equal(abq_policy_default_domain(p), "example.com");
	/* Defaults before anything is set. */
	assert_int_equal(abq_policy_mode(p, "alice@example.com"), ABQ_MODE_PERMISSIVE);
	assert_null(abq_policy_attr(p, "alice", "abqMode", &scope));
	assert_int_equal(abq_policy_int(p, "alice", "abqDiscoveryTimeout"), 900);
	assert_int_equal(abq_policy_int(p, "alice", "abqNotificationsInterval"), 3600);
	assert_int_equal(abq_policy_int(p, "alice", "abqMaxDevicesPerAccount"), 0);
	assert_int_equal(abq_policy_int(p, "alice", "abqNoSuchThing"), 0);

	add_attr(p, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "interactive");
	add_attr(p, ABQ_SCOPE_GLOBAL, NULL, "abqMaxDevicesPerAccount", "5");
	/* Domain d<k>: Strict for even k; account overrides for every 7th account. */
	for (int k = 0; k < NDOMAINS; k++) {
		snprintf(domain, sizeof(domain), "D%d.Example", k);
		if (k % 2 == 0)
			add_attr(p, ABQ_SCOPE_DOMAIN, domain, "abqMode", "Strict");
		if (k % 5 == 0)
			add_attr(p, ABQ_SCOPE_DOMAIN, domain, "abqDiscoveryTimeout", "1h");
	}
	for (int i = 0; i < NACCOUNTS; i++) {
		snprintf(account, sizeof(account), "user%d@d%d.example", i, i % NDOMAINS);
		if (i % 7 == 0)
			add_attr(p, ABQ_SCOPE_ACCOUNT, account, "abqMode", "Permissive");
		if (i % 11 == 0)
			add_attr(p, ABQ_SCOPE_ACCOUNT, account, "abqMaxDevicesPerAccount", "2");
	}
	/* The default domain, for bare accounts. */
	add_attr(p, ABQ_SCOPE_DOMAIN, "example.com", "abqMode", "Disabled");
	add_attr(p, ABQ_SCOPE_ACCOUNT, "bob", "abqMode", "Strict");
	/* A later value replaces an earlier one. */
	add_attr(p, ABQ_SCOPE_DOMAIN, "d1.example", "abqMaxDevicesPerAccount", "9");
	add_attr(p, ABQ_SCOPE_DOMAIN, "d1.example", "abqMaxDevicesPerAccount", "4");

	for (int i = 0; i < NACCOUNTS; i++) {
		int k = i % NDOMAINS;
		snprintf(account, sizeof(account), "user%d@d%d.example", i, k);
		enum abq_mode want = i % 7 == 0   ? ABQ_MODE_PERMISSIVE
		                     : k % 2 == 0 ? ABQ_MODE_STRICT
		                                  : ABQ_MODE_INTERACTIVE;
		enum abq_scope want_scope = i % 7 == 0   ? ABQ_SCOPE_ACCOUNT
		                            : k % 2 == 0 ? ABQ_SCOPE_DOMAIN
		                                         : ABQ_SCOPE_GLOBAL;
		assert_int_equal(abq_policy_mode(p, account), want);
		assert_string_equal(abq_policy_attr(p, account, "abqMode", &scope),
		                    abq_mode_name(want));
		assert_int_equal(scope, want_scope);
		int64_t max = i % 11 == 0 ? 2 : k == 1 ? 4 : 5;
		assert_int_equal(abq_policy_int(p, account, "abqMaxDevicesPerAccount"), max);
		assert_int_equal(abq_policy_int(p, account, "ABQDISCOVERYTIMEOUT"),
		                 k % 5 == 0 ? 3600 : 900);
	}
	/* Upper case in the account is the same account and domain. */
	assert_int_equal(abq_policy_mode(p, "USER7@D7.EXAMPLE"), ABQ_MODE_PERMISSIVE);
	assert_int_equal(abq_policy_mode(p, "user1@D0.Example"), ABQ_MODE_STRICT);
	/* Bare accounts belong to the default domain. */
	assert_int_equal(abq_policy_mode(p, "carol"), ABQ_MODE_DISABLED);
	assert_int_equal(abq_policy_mode(p, "carol@example.com"), ABQ_MODE_DISABLED);
	assert_int_equal(abq_policy_mode(p, "bob"), ABQ_MODE_STRICT);
	assert_int_equal(abq_policy_mode(p, NULL), ABQ_MODE_DISABLED);
	/* An unknown domain falls to global. */
	assert_int_equal(abq_policy_mode(p, "x@elsewhere.org"), ABQ_MODE_INTERACTIVE);

	/* Refusals leave the policy as it was. */
	add_attr_bad(p, ABQ_SCOPE_GLOBAL, NULL, "abqColour", "blue", "unknown attribute");
	add_attr_bad(p, ABQ_SCOPE_ACCOUNT, "a@b.c", "abqAdmins", "x@y.z",
	             "abqAdmins cannot be set at account scope (global and domain only)");
	add_attr_bad(p, ABQ_SCOPE_ACCOUNT, "a@b.c", "abqNotificationsInterval", "1h",
	             "cannot be set at account scope");
	add_attr_bad(p, ABQ_SCOPE_DOMAIN, NULL, "abqMode", "Strict", "needs a domain");
	add_attr_bad(p, ABQ_SCOPE_DOMAIN, "", "abqMode", "Strict", "needs a domain");
	add_attr_bad(p, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Lenient",
	             "abqMode takes Permissive, Interactive, Strict or Disabled");
	assert_int_equal(abq_policy_mode(p, "x@elsewhere.org"), ABQ_MODE_INTERACTIVE);

	/* Global and domain attributes that accounts may not override. */
	add_attr(p, ABQ_SCOPE_GLOBAL, NULL, "abqAdmins", "root@example.com");
	add_attr(p, ABQ_SCOPE_DOMAIN, "d3.example", "abqAdmins", "Boss@D3.example");
	assert_string_equal(abq_policy_attr(p, "u@d3.example", "abqAdmins", &scope),
	                    "Boss@d3.example");
	assert_int_equal(scope, ABQ_SCOPE_DOMAIN);
	assert_string_equal(abq_policy_attr(p, "u@d4.example", "abqAdmins", &scope),
	                    "root@example.com");
	assert_int_equal(scope, ABQ_SCOPE_GLOBAL);
	assert_null(abq_policy_attr(p, "u@d4.example", "abqNotifyUserOnAllow", &scope));
	abq_policy_free(&p);
	assert_null(p);
}

#define NENTRIES 30000

/* Entries of both kinds, many of them, looked up case-insensitively. */
static void
test_policy_entries(void **state)
{
	struct abq_policy *p = abq_policy_new("example.com");
	char id[32], account[64];

	for (int i = 0; i < NENTRIES; i++) {
		snprintf(id, sizeof(id), "DEV%08X", i);
		snprintf(account, sizeof(account), "user%d@example.com", i);
		struct abq_entry e = {.device_id = id, .state = (i % 3) + A};
		if (i % 2 == 0)
			e.account = account;
		abq_policy_add_entry(p, &e);
	}
	/* Ignored: no DeviceId, states an entry cannot hold. */
	struct abq_entry bad[] = {
	    {.device_id = NULL, .state = A},
	    {.device_id = "", .state = A},
	    {.device_id = "ZZ1", .state = D},
	    {.device_id = "ZZ2", .state = NONE},
	};
	for (size_t i = 0; i < NELEM(bad); i++)
		abq_policy_add_entry(p, &bad[i]);
	assert_int_equal(abq_policy_entry_count(p), NENTRIES);
	assert_int_equal(abq_policy_entry(p, "ZZ1", NULL), NONE);

	for (int i = 0; i < NENTRIES; i++) {
		snprintf(id, sizeof(id), "dev%08x", i); /* DeviceIds compare case-insensitively */
		snprintf(account, sizeof(account), "user%d@example.com", i);
		enum abq_state want = (enum abq_state)((i % 3) + A);
		if (i % 2 == 0) {
			assert_int_equal(abq_policy_entry(p, id, account), want);
			assert_int_equal(abq_policy_entry(p, id, NULL), NONE);
			assert_int_equal(abq_policy_entry(p, id, "someone@example.com"), NONE);
		} else {
			assert_int_equal(abq_policy_entry(p, id, NULL), want);
			assert_int_equal(abq_policy_entry(p, id, account), NONE);
		}
	}
	assert_int_equal(abq_policy_entry(p, NULL, NULL), NONE);
	assert_int_equal(abq_policy_entry(p, "DEV", NULL), NONE);

	/* Both kinds for one DeviceId; the later entry for a key replaces the earlier. */
	struct abq_entry e1 = {.device_id = "PHONE1", .state = B};
	struct abq_entry e2 = {.device_id = "phone1", .account = "alice", .state = Q};
	struct abq_entry e3 = {.device_id = "Phone1", .account = "ALICE", .state = A};
	abq_policy_add_entry(p, &e1);
	abq_policy_add_entry(p, &e2);
	abq_policy_add_entry(p, &e3);
	assert_int_equal(abq_policy_entry(p, "PHONE1", "alice"), A);
	assert_int_equal(abq_policy_entry(p, "PHONE1", NULL), B);
	assert_int_equal(abq_policy_finish(p, &(char *){NULL}), 0);

	/* Through abq_policy_inputs and abq_decide. */
	static const struct {
		const char *account, *device;
		enum abq_state want;
		enum abq_step step;
	} cases[] = {
	    {"alice", "phone1", A, ABQ_STEP_ENTRY_ACCOUNT},
	    {"bob", "phone1", B, ABQ_STEP_ENTRY_DEVICE},
	    {"bob", "phone2", A, ABQ_STEP_MODE},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_facts f = {.device_id = cases[i].device};
		struct abq_inputs in = {0};
		struct abq_verdict v;
		abq_policy_inputs(p, cases[i].account, &f, NOW, &in);
		assert_ptr_equal(in.facts.device_id, cases[i].device);
		assert_int_equal(in.now, NOW);
		abq_decide(&in, &v);
		assert_int_equal(v.state, cases[i].want);
		assert_int_equal(v.step, cases[i].step);
	}
	abq_policy_free(&p);
}

/* abq_policy_inputs resolves mode, limit, timeout and rules; keeps limit_applies. */
static void
test_policy_inputs(void **state)
{
	struct abq_policy *p = abq_policy_new("example.com");
	char *err = NULL;

	add_attr(p, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "Interactive");
	add_attr(p, ABQ_SCOPE_DOMAIN, "corp.example", "abqMaxDevicesPerAccount", "2");
	add_attr(p, ABQ_SCOPE_ACCOUNT, "ceo@corp.example", "abqMaxDevicesPerAccount", "0");
	add_attr(p, ABQ_SCOPE_ACCOUNT, "ceo@corp.example", "abqDiscoveryTimeout", "30s");
	struct abq_rule r = mkrule(1, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", A, 1, NULL);
	abq_policy_add_rule(p, &r);
	assert_int_equal(abq_policy_finish(p, &err), 0);

	struct abq_inputs in = {0};
	in.limit_applies = true;
	in.devices_ahead = 2;
	in.facts.device_id = "X1";
	in.facts.device_type = "Android";
	abq_policy_inputs(p, "staff@corp.example", &in.facts, NOW, &in);
	assert_true(in.limit_applies);
	assert_int_equal(in.devices_ahead, 2);
	assert_string_equal(in.facts.device_id, "X1");
	assert_int_equal(in.mode, ABQ_MODE_INTERACTIVE);
	assert_int_equal(in.max_devices, 2);
	assert_int_equal(in.discovery_timeout, 900);
	assert_int_equal(in.entry_account, NONE);
	assert_int_equal(in.entry_device, NONE);
	assert_ptr_equal(in.rules, abq_policy_rules(p, "staff@corp.example"));
	assert_int_equal(abq_ruleset_count(in.rules), 1);
	struct abq_verdict v;
	abq_decide(&in, &v);
	assert_int_equal(v.state, B);
	assert_int_equal(v.reason, ABQ_REASON_LIMIT);

	abq_policy_inputs(p, "ceo@corp.example", &in.facts, NOW, &in);
	assert_int_equal(in.max_devices, 0);
	assert_int_equal(in.discovery_timeout, 30);
	abq_decide(&in, &v);
	assert_int_equal(v.state, Q);
	assert_int_equal(v.reason, ABQ_REASON_MODE);
	in.facts.device_type = "IPHONE";
	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.reason, ABQ_REASON_RULE);
	abq_policy_free(&p);
}

/*
 * abq_policy_inputs resolves the provisioning inputs of a device that
 * reported a Status other than 1: whether its account's policy imposes
 * something (AllowNonProvisionableDevices alone does not) and that key,
 * account over domain over global.
 */
static void
test_policy_inputs_provisioning(void **state)
{
	struct abq_policy *p = abq_policy_new("example.com");
	struct abq_inputs in = {0};
	struct abq_verdict v;
	char *err = NULL;
	(void)state;

	add_attr(p, ABQ_SCOPE_GLOBAL, NULL, "prov:AllowNonProvisionableDevices", "0");
	add_attr(p, ABQ_SCOPE_DOMAIN, "corp.example", "prov:MinDevicePasswordLength", "6");
	add_attr(p, ABQ_SCOPE_ACCOUNT, "ceo@corp.example", "prov:AllowNonProvisionableDevices",
	         "1");
	assert_int_equal(abq_policy_finish(p, &err), 0);

	in.facts.device_id = "X1";
	in.facts.provision_status = 2;
	abq_policy_inputs(p, "staff@corp.example", &in.facts, NOW, &in);
	assert_true(in.prov_imposes);
	assert_false(in.allow_non_provisionable);
	abq_decide(&in, &v);
	assert_int_equal(v.state, B);
	assert_int_equal(v.reason, ABQ_REASON_POLICY);

	/* The account's own AllowNonProvisionableDevices 1. */
	abq_policy_inputs(p, "ceo@corp.example", &in.facts, NOW, &in);
	assert_true(in.prov_imposes);
	assert_true(in.allow_non_provisionable);
	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.reason, ABQ_REASON_MODE);

	/* Another domain: AllowNonProvisionableDevices 0 but nothing imposed. */
	abq_policy_inputs(p, "bob@example.com", &in.facts, NOW, &in);
	assert_false(in.prov_imposes);
	assert_false(in.allow_non_provisionable);
	abq_decide(&in, &v);
	assert_int_equal(v.reason, ABQ_REASON_MODE);

	/* A device that applied its policy is not looked at. */
	in.facts.provision_status = 1;
	abq_policy_inputs(p, "staff@corp.example", &in.facts, NOW, &in);
	abq_decide(&in, &v);
	assert_int_equal(v.state, A);
	assert_int_equal(v.reason, ABQ_REASON_MODE);
	abq_policy_free(&p);
}

/* Rules by order (then id) whatever the insertion order; domain rules first. */
static void
test_policy_rules(void **state)
{
	struct abq_policy *p = abq_policy_new("example.com");
	char *err = NULL;
	struct abq_rule rules[] = {
	    /* global */
	    mkrule(1, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "*", Q, 100, NULL),
	    mkrule(2, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPhone", A, 20, NULL),
	    mkrule(3, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "iPhone|Android", B, 10, NULL),
	    mkrule(9, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "Pixel 8", A, 5, ""),
	    /* corp.example: an Android rule with a high order still comes first */
	    mkrule(4, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "Android", A, 500, "Corp.Example"),
	    /* same order: the smaller id first */
	    mkrule(6, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPad", Q, 7, "lab.example"),
	    mkrule(5, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "iPad", B, 7, "lab.example"),
	    /* the default domain's rules apply to bare accounts */
	    mkrule(7, ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "WindowsMail", B, 1, "example.com"),
	};
	for (size_t i = 0; i < NELEM(rules); i++)
		abq_policy_add_rule(p, &rules[i]);
	assert_int_equal(abq_policy_rule_count(p), NELEM(rules));
	/* Before finish: an empty set, never NULL. */
	assert_non_null(abq_policy_rules(p, "a@corp.example"));
	assert_int_equal(abq_policy_finish(p, &err), 0);
	assert_null(err);

	static const struct {
		const char *account, *type;
		int64_t rule;
	} cases[] = {
	    {"a@other.example", "iPhone", 3}, /* order 10 beats order 20 */
	    {"a@other.example", "Nokia", 1},
	    {"a@corp.example", "android", 4}, /* domain rule before global */
	    {"a@CORP.example", "iPhone", 3},  /* global rules still apply in the domain */
	    {"a@lab.example", "iPad", 5},
	    {"a@lab.example", "iPhone", 3},
	    {"bare", "WindowsMail", 7},
	    {"x@example.com", "WindowsMail", 7},
	    {"x@other.example", "WindowsMail", 1},
	};
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct abq_facts f = {
		    .device_id = "ID", .device_type = cases[i].type, .model = "m", .os = "o"};
		struct abq_inputs in = {0};
		struct abq_verdict v;
		abq_policy_inputs(p, cases[i].account, &f, NOW, &in);
		abq_decide(&in, &v);
		print_message("case: %s %s\n", cases[i].account, cases[i].type);
		assert_int_equal(v.reason, ABQ_REASON_RULE);
		assert_int_equal(v.rule_id, cases[i].rule);
	}
	/* Per-domain sets: the domain's rules then every global one. */
	assert_int_equal(abq_ruleset_count(abq_policy_rules(p, "a@corp.example")), 5);
	assert_int_equal(abq_ruleset_count(abq_policy_rules(p, "a@lab.example")), 6);
	assert_int_equal(abq_ruleset_count(abq_policy_rules(p, "a@nowhere.example")), 4);
	assert_int_equal(abq_ruleset_rule(abq_policy_rules(p, "a@nowhere.example"), 0)->id, 9);
	assert_ptr_equal(abq_policy_rules(p, "a@nowhere.example"),
	                 abq_policy_rules(p, "b@elsewhere.example"));

	/* A rule that does not compile fails finish and keeps the rules that were. */
	struct abq_rule bad = mkrule(42, ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "(", B, 1, NULL);
	abq_policy_add_rule(p, &bad);
	assert_int_equal(abq_policy_finish(p, &err), -1);
	assert_non_null(strstr(err, "rule 42: regex '(' does not compile"));
	free(err);
	assert_int_equal(abq_ruleset_count(abq_policy_rules(p, "a@corp.example")), 5);
	abq_policy_free(&p);
}

/* ---- the hash map ------------------------------------------------------ */

/* The case twin of byte c under ASCII folding only, or c itself. */
static unsigned char
ascii_twin(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return (unsigned char)(c - 32);
	if (c >= 'A' && c <= 'Z')
		return (unsigned char)(c + 32);
	return c;
}

/*
 * Keys of every length around the 8-byte steps, holding every byte value:
 * found under any ASCII case, never found when one byte differs by 0x20
 * without being an ASCII letter ('@' and '`', '[' and '{', 0xC1 and 0xE1).
 */
static void
test_hmap_case_folding(void **state)
{
	struct abq_hmap m;
	char key[64], probe[64];
	unsigned seed = 1;

	abq_hmap_init(&m);
	for (size_t len = 1; len < 40; len++) {
		for (int round = 0; round < 16; round++) {
			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				key[i] = (char)(1 + (seed >> 16) % 255);
			}
			key[len] = '\0';
			bool created;
			void **slot = abq_hmap_put(&m, key, NULL, &created);
			if (created)
				*slot = (void *)(uintptr_t)(len * 100 + (size_t)round + 1);
			uintptr_t val = (uintptr_t)*slot;
			/* Any mix of cases finds it. */
			for (size_t i = 0; i < len; i++)
				probe[i] = (char)((i + (size_t)round) % 2
				                      ? ascii_twin((unsigned char)key[i])
				                      : (unsigned char)key[i]);
			probe[len] = '\0';
			slot = abq_hmap_get(&m, probe, NULL);
			assert_non_null(slot);
			assert_int_equal((uintptr_t)*slot, val);
			assert_non_null(abq_hmap_get_len(&m, probe, len));
			/* A byte changed by 0x20 that is not a letter: another key. */
			for (size_t i = 0; i < len; i++) {
				unsigned char c = (unsigned char)key[i];
				if (ascii_twin(c) != c || (c ^ 0x20) == 0)
					continue;
				memcpy(probe, key, len + 1);
				probe[i] = (char)(c ^ 0x20);
				if (abq_hmap_get(&m, probe, NULL) == NULL)
					continue;
				/* Only if that other key was inserted itself. */
				fail_msg("len %zu byte %zu: 0x%02x folded to 0x%02x", len, i, c,
				         c ^ 0x20);
			}
			/* One byte shorter: not found. */
			memcpy(probe, key, len + 1);
			probe[len - 1] = '\0';
			if (len > 4) /* (short random keys may exist already) */
				assert_null(abq_hmap_get(&m, probe, NULL));
		}
	}
	/* Two-part keys equal the joined key, in any case. */
	bool created;
	*abq_hmap_put(&m, "DeviceABC", "Alice@Example.com", &created) = (void *)7;
	assert_true(created);
	assert_ptr_equal(*abq_hmap_get(&m, "deviceabc", "ALICE@example.COM"), (void *)7);
	assert_null(abq_hmap_get(&m, "deviceab", "calice@example.com"));
	assert_null(abq_hmap_get(&m, "deviceabc", NULL));
	abq_hmap_put(&m, "deviceABC", "alice@example.com", &created);
	assert_false(created);
	abq_hmap_free(&m, NULL);
	assert_int_equal(m.count, 0);
}

/* ---- threads ------------------------------------------------------------- */

struct thread_arg {
	const struct abq_ruleset *rs;
	int failures;
};

/* Match the same values many times; count wrong answers. */
static void *
thread_main(void *argp)
{
	struct thread_arg *arg = argp;
	for (int i = 0; i < 2000; i++) {
		const char *values[ABQ_CHAR_COUNT] = {"id", "Android", "SM-G991B", "Android 14",
		                                      i % 2 ? "Android/13" : "nothing"};
		const struct abq_rule *hit;
		enum abq_rule_outcome o = abq_ruleset_match(arg->rs, values, 0, &hit, NULL);
		if (o != ABQ_RULES_MATCH || hit->id != (i % 2 ? 1 : 2))
			arg->failures++;
	}
	return NULL;
}

/* One rule set used by several threads at once (per-thread match data). */
static void
test_threads_share_a_ruleset(void **state)
{
	struct abq_rule rules[] = {
	    mkrule(1, ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android/1[0-4].*", A, 1, NULL),
	    mkrule(2, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "SM-[A-Z]\\d{3}.*", B, 2, NULL),
	    mkrule(3, ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-*", Q, 3, NULL),
	};
	struct abq_ruleset *rs = abq_ruleset_new(rules, NELEM(rules), NULL);
	pthread_t t[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){rs, 0};
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	abq_ruleset_free(&rs);
}

/* Release this thread's match data so that valgrind sees every block freed. */
static int
teardown_thread(void **state)
{
	abq_engine_thread_done();
	return 0;
}

/* Run every test; the group teardown frees this thread's match data. */
int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode_defaults),
	    cmocka_unit_test(test_wiped_first),
	    cmocka_unit_test(test_policy_step),
	    cmocka_unit_test(test_policy_inputs_provisioning),
	    cmocka_unit_test(test_entries_and_limit),
	    cmocka_unit_test(test_step_order_with_rules),
	    cmocka_unit_test(test_rule_matching),
	    cmocka_unit_test(test_null_facts_are_empty),
	    cmocka_unit_test(test_rule_positions),
	    cmocka_unit_test(test_index_against_naive),
	    cmocka_unit_test(test_screen_eligibility),
	    cmocka_unit_test(test_screen_multibyte_locale),
	    cmocka_unit_test(test_discovery),
	    cmocka_unit_test(test_rule_check),
	    cmocka_unit_test(test_attrs_validate),
	    cmocka_unit_test(test_attrs_table),
	    cmocka_unit_test(test_policy_resolution),
	    cmocka_unit_test(test_policy_entries),
	    cmocka_unit_test(test_policy_inputs),
	    cmocka_unit_test(test_policy_rules),
	    cmocka_unit_test(test_hmap_case_folding),
	    cmocka_unit_test(test_threads_share_a_ruleset),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_thread);
}
