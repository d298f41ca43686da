/*
 * engine.h: the ABQ decision engine.
 *
 * abq_decide() is pure: it reads only its arguments (no I/O, no clock, no
 * globals) and follows the evaluation order of product.md:
 *   1. authentication (done before the engine is called)
 *   2. effective mode Disabled            -> Allowed, reason Disabled
 *   3. entry DeviceId/account, then DeviceId alone -> its state, reason Individual;
 *      then a device that does not provision (it acknowledged its account's
 *      policy, which imposes something, with a Status other than 1) while
 *      AllowNonProvisionableDevices is 0 -> Blocked, reason Policy
 *   4. abqMaxDevicesPerAccount             -> Blocked, reason Limit
 *   5. rules, domain rules before global, ascending order -> level, reason Rule
 *      (a rule on a characteristic not reported yet stops evaluation: Discovery,
 *      until the information arrives or abqDiscoveryTimeout has passed, after
 *      which the missing characteristic counts as empty)
 *   6. the mode's default                  -> reason Mode
 *
 * The same function serves the daemon, abqctl explain and re-evaluation.
 *
 * A compiled rule set (struct abq_ruleset) indexes the rules by characteristic
 * and match kind: exact patterns are found by a hash lookup, and the glob and
 * regex rules of one characteristic are screened by one combined PCRE2 pattern
 * (JIT) before being tried one by one, so that a device that matches no rule
 * costs a handful of lookups rather than a scan of every rule.
 *
 * A policy (struct abq_policy) is the in-memory view the engine decides from:
 * attributes at every scope, list entries and compiled rule sets per domain. It
 * is built from store records and is immutable once built.
 */
#ifndef ABQ_ENGINE_H
#define ABQ_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/abq_types.h"
#include "lib/provision.h"
#include "lib/records.h"

/*
 * What the engine knows of a device. NULL model/os: not reported yet (an empty
 * string is a reported empty value). NULL device_id, device_type, user_agent
 * count as "". first_seen 0 means "seen now": its Discovery timeout has not
 * started to run (now - first_seen is taken as 0).
 */
struct abq_facts {
	const char *device_id;
	const char *device_type;
	const char *model;
	const char *os;
	const char *user_agent;
	int64_t first_seen; /* for the Discovery timeout; 0 for a device seen now */
	bool wiped;         /* its remote wipe was acknowledged: Blocked, reason Wipe */
	/*
	 * The Policy Status of its last Provision phase 2 (MS-ASPROV: 1 applied,
	 * 2 partially, 3 not applied, 4 externally managed); 0: never reported.
	 */
	int provision_status;
};

struct abq_ruleset; /* compiled, immutable */

/* Everything abq_decide needs, resolved for one (account, device). */
struct abq_inputs {
	struct abq_facts facts;
	enum abq_mode mode;
	enum abq_state entry_account; /* entry DeviceId/account, or NONE */
	enum abq_state entry_device;  /* entry DeviceId alone, or NONE */
	/*
	 * Step 4 applies to a new device and to one already blocked for Limit (so
	 * that a raised limit or a deleted older device frees it); devices_ahead is
	 * the number of the account's devices first seen before this one.
	 */
	bool limit_applies;
	int64_t max_devices; /* 0: no limit */
	size_t devices_ahead;
	const struct abq_ruleset *rules; /* may be NULL: no rules */
	int64_t discovery_timeout;       /* seconds; 0: Discovery never waits */
	int64_t now;
	/*
	 * The account's effective provisioning policy, for step 3's Policy
	 * block: whether it imposes something (abq_prov_imposes) and its
	 * AllowNonProvisionableDevices (false: a device that does not provision
	 * is Blocked).
	 */
	bool prov_imposes;
	bool allow_non_provisionable;
};

/* The evaluation step that decided, for explain. */
enum abq_step {
	ABQ_STEP_WIPE = 1,
	ABQ_STEP_DISABLED = 2,
	ABQ_STEP_ENTRY_ACCOUNT = 3,
	ABQ_STEP_ENTRY_DEVICE = 30,
	ABQ_STEP_POLICY = 31,
	ABQ_STEP_LIMIT = 4,
	ABQ_STEP_RULE = 5,
	ABQ_STEP_DISCOVERY = 50,
	ABQ_STEP_MODE = 6,
};

struct abq_verdict {
	enum abq_state state;
	enum abq_reason reason;
	int64_t rule_id;             /* Rule and Discovery: the rule */
	const struct abq_rule *rule; /* the same rule, owned by the ruleset, or NULL */
	enum abq_charac missing;     /* Discovery: the characteristic awaited */
	enum abq_step step;
};

void abq_decide(const struct abq_inputs *in, struct abq_verdict *out);

/* The state a mode gives a device no entry or rule decided. */
enum abq_state abq_mode_default(enum abq_mode mode);

/*
 * Rules match case-insensitively, always against the whole value:
 *   exact  ASCII case-insensitive equality;
 *   glob   fnmatch(3) with FNM_CASEFOLD (*, ?, [...], backslash escapes);
 *   regex  PCRE2, compiled PCRE2_CASELESS | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
 *          so "SM-G9.*" means the whole value starts with SM-G9, as in Zimbra.
 *          Bytes, not UTF-8 (no PCRE2_UTF). A match that exceeds PCRE2's match
 *          limit (a pathological pattern on a hostile value) counts as no match.
 *
 * abq_rule_check checks one rule: a pattern that is not empty, a level among
 * Allowed, Blocked, Quarantined, a known characteristic and match kind, and a
 * regex that compiles ("regex 'a(b' does not compile at offset 3: missing
 * closing parenthesis"). Returns 0, or -1 with *errmsg_r (new string the
 * caller frees; errmsg_r may be NULL).
 */
int abq_rule_check(const struct abq_rule *r, char **errmsg_r);
/*
 * Build a rule set from rules (copied), tried in the order given: position 0
 * first (callers sort; the policy sorts by order, then id). n may be 0 (an
 * empty set). Returns NULL with *errmsg_r (new string, "rule 7: ...") when a
 * rule does not pass abq_rule_check.
 *
 * A rule set is immutable and may be shared by threads: the PCRE2 match data
 * is per thread (created on a thread's first match, freed at thread exit or by
 * abq_engine_thread_done), never per rule set.
 */
struct abq_ruleset *abq_ruleset_new(const struct abq_rule *rules, size_t n, char **errmsg_r);
void abq_ruleset_free(struct abq_ruleset **rs);
size_t abq_ruleset_count(const struct abq_ruleset *rs);
/* The rule at position i (its copy, owned by the set), or NULL past the end. */
const struct abq_rule *abq_ruleset_rule(const struct abq_ruleset *rs, size_t i);

/* What step 5 found (abq_ruleset_match). */
enum abq_rule_outcome {
	ABQ_RULES_NONE = 0,  /* no rule matched: the mode decides */
	ABQ_RULES_MATCH,     /* *rule_r matched, before any rule on an unknown characteristic */
	ABQ_RULES_DISCOVERY, /* *rule_r tests *missing_r, unknown, before any rule that matched */
};
/*
 * Step 5 on its own: values[c] is the value of characteristic c (NULL counts as
 * ""), bit c of unknown set means c is not reported yet. The first rule (by
 * position) that matches a known value or tests an unknown characteristic
 * decides. abq_decide calls this; it is public for explain and for tests.
 */
enum abq_rule_outcome abq_ruleset_match(const struct abq_ruleset *rs,
                                        const char *const values[ABQ_CHAR_COUNT], unsigned unknown,
                                        const struct abq_rule **rule_r, enum abq_charac *missing_r);
/*
 * Which characteristics have a screen (bit c set: characteristic c), for tests
 * and benchmarks: a missing screen changes speed, never results.
 */
unsigned abq_ruleset_screened(const struct abq_ruleset *rs);
/* Free the calling thread's PCRE2 match data now (threads that end do it themselves). */
void abq_engine_thread_done(void);

/*
 * Policy: the view of attributes, entries and rules. Built by adding records,
 * then abq_policy_finish() compiles the per-domain rule sets.
 */
struct abq_policy;
struct abq_policy *abq_policy_new(const char *default_domain);
void abq_policy_free(struct abq_policy **p);
/*
 * Attribute values are validated here too (known name, allowed at that scope,
 * valid value; the canonical form is kept); a name that starts with
 * ABQ_PROV_PREFIX is a provisioning value (abq_policy_provisioning); -1 with *errmsg_r (new
 * string), and the policy is unchanged and still usable: a caller may log and go on. Domain and
 * account targets are case-insensitive. A later value for the same (scope, target, name) replaces
 * an earlier one.
 */
int abq_policy_add_attr(struct abq_policy *p, const struct abq_attr *a, char **errmsg_r);
/*
 * An entry (copied). A later entry for the same key replaces an earlier one;
 * entries whose state is not Allowed, Blocked or Quarantined are ignored.
 */
void abq_policy_add_entry(struct abq_policy *p, const struct abq_entry *e);
/* A rule (copied); a domain of NULL or "" is global. Checked at finish. */
void abq_policy_add_rule(struct abq_policy *p, const struct abq_rule *r);
/*
 * Compile one rule set per domain that has rules (its rules by order, id, then
 * the global rules by order, id) and the global one. -1 with *errmsg_r when a
 * rule does not compile ("rule 7: regex ..."): a policy must not silently drop
 * a Block rule. Rules added after finish need another finish.
 */
int abq_policy_finish(struct abq_policy *p, char **errmsg_r);

/*
 * Effective attributes for an account (account, then domain, then global, then
 * default). account NULL: the default domain's view. abq_policy_int gives the
 * parsed value (abq_attr_int_value) and 0 for an unknown name.
 */
enum abq_mode abq_policy_mode(const struct abq_policy *p, const char *account);
int64_t abq_policy_int(const struct abq_policy *p, const char *account, const char *name);
/* The raw effective value and the scope it came from (default: NULL value). */
const char *abq_policy_attr(const struct abq_policy *p, const char *account, const char *name,
                            enum abq_scope *scope_r);
/*
 * The entry for exactly DeviceId/account (account NULL: the DeviceId-alone
 * entry), or ABQ_STATE_NONE. No fallback from one to the other: abq_decide does
 * that, in that order.
 */
enum abq_state abq_policy_entry(const struct abq_policy *p, const char *device_id,
                                const char *account);
/* Counts, for logs and abqctl: entries and rules held. */
size_t abq_policy_entry_count(const struct abq_policy *p);
size_t abq_policy_rule_count(const struct abq_policy *p);
/* The rule set for an account's domain (domain rules, then global). Never NULL. */
const struct abq_ruleset *abq_policy_rules(const struct abq_policy *p, const char *account);
const char *abq_policy_default_domain(const struct abq_policy *p);

/*
 * The effective provisioning policy (lib/provision.h) of an account (scope
 * ACCOUNT, target the account: account, its domain, global, default), a
 * domain (domain, global, default) or the global scope (target NULL). Its
 * texts point into p: valid until p is freed. No allocation.
 */
void abq_policy_provisioning(const struct abq_policy *p, enum abq_scope scope, const char *target,
                             struct abq_prov_policy *out);

/*
 * Fill in everything but limit_applies and devices_ahead for (account,
 * facts->device_id), from the policy (those two are left as they are). *facts
 * is copied into in->facts (facts may point at in->facts itself); the strings
 * are not copied. now is copied. No allocation: a few hash lookups. The
 * provisioning inputs (prov_imposes, allow_non_provisionable) are resolved
 * only for a device that reported a Policy Status other than 1, the only
 * one they can decide; for any other they say "nothing imposed, allowed".
 */
void abq_policy_inputs(const struct abq_policy *p, const char *account,
                       const struct abq_facts *facts, int64_t now, struct abq_inputs *in);

#endif
