/*
 * decide.c: abq_decide, the evaluation order of product.md in one function.
 *
 * Pure by design: everything it needs arrives in struct abq_inputs (the
 * caller resolved the mode, entries, limit and rule set from the policy and
 * the store, and passes the time), so the daemon, abqctl explain and the
 * re-evaluation after a change all get the same answer for the same inputs,
 * and the unit tests drive it with tables of cases.
 */
#include <string.h>

#include "engine/engine.h"

/* The state the mode gives a device no entry or rule decided. */
enum abq_state
abq_mode_default(enum abq_mode mode)
{
	switch (mode) {
	case ABQ_MODE_PERMISSIVE:
	case ABQ_MODE_DISABLED:
		return ABQ_STATE_ALLOWED;
	case ABQ_MODE_INTERACTIVE:
		return ABQ_STATE_QUARANTINED;
	case ABQ_MODE_STRICT:
		return ABQ_STATE_BLOCKED;
	}
	/* A mode that cannot be: fail closed. */
	return ABQ_STATE_BLOCKED;
}

/* Is s a state an entry can hold (Discovery and NONE are not)? */
static bool
entry_state(enum abq_state s)
{
	return s == ABQ_STATE_ALLOWED || s == ABQ_STATE_BLOCKED || s == ABQ_STATE_QUARANTINED;
}

/*
 * Is the Discovery timeout still running for this device? first_seen 0 means
 * the device is seen now. A timeout of 0 means Discovery never waits.
 */
static bool
discovery_waiting(const struct abq_inputs *in)
{
	int64_t elapsed = in->facts.first_seen > 0 ? in->now - in->facts.first_seen : 0;
	return in->discovery_timeout > 0 && elapsed < in->discovery_timeout;
}

/*
 * Does the device not provision while its account does not let such devices
 * sync? It acknowledged a policy with a Status other than 1 (partially or not
 * applied, externally managed), the account's policy imposes something, and
 * its AllowNonProvisionableDevices is 0. A device that never reported a
 * Status (0) is not judged: it gets the provisioning demand instead.
 */
static bool
does_not_provision(const struct abq_inputs *in)
{
	return in->facts.provision_status != 0 && in->facts.provision_status != 1 &&
	       in->prov_imposes && !in->allow_non_provisionable;
}

/*
 * Decide (account, device) from its inputs: first match wins, in the order
 * wiped (a wiped device stays Blocked whatever else says, even with ABQ
 * Disabled, until an administrator deletes it), Disabled, entry DeviceId/account, entry DeviceId,
 * a device that does not provision (Policy), device limit, rules (with
 * Discovery), mode default. See engine.h and product.md.
 */
void
abq_decide(const struct abq_inputs *in, struct abq_verdict *out)
{
	memset(out, 0, sizeof(*out));

	if (in->facts.wiped) {
		out->state = ABQ_STATE_BLOCKED;
		out->reason = ABQ_REASON_WIPE;
		out->step = ABQ_STEP_WIPE;
		return;
	}
	if (in->mode == ABQ_MODE_DISABLED) {
		out->state = ABQ_STATE_ALLOWED;
		out->reason = ABQ_REASON_DISABLED;
		out->step = ABQ_STEP_DISABLED;
		return;
	}
	if (entry_state(in->entry_account)) {
		out->state = in->entry_account;
		out->reason = ABQ_REASON_INDIVIDUAL;
		out->step = ABQ_STEP_ENTRY_ACCOUNT;
		return;
	}
	if (entry_state(in->entry_device)) {
		out->state = in->entry_device;
		out->reason = ABQ_REASON_INDIVIDUAL;
		out->step = ABQ_STEP_ENTRY_DEVICE;
		return;
	}
	if (does_not_provision(in)) {
		out->state = ABQ_STATE_BLOCKED;
		out->reason = ABQ_REASON_POLICY;
		out->step = ABQ_STEP_POLICY;
		return;
	}
	if (in->limit_applies && in->max_devices > 0 &&
	    (uint64_t)in->devices_ahead >= (uint64_t)in->max_devices) {
		out->state = ABQ_STATE_BLOCKED;
		out->reason = ABQ_REASON_LIMIT;
		out->step = ABQ_STEP_LIMIT;
		return;
	}
	if (in->rules != NULL && abq_ruleset_count(in->rules) > 0) {
		const char *values[ABQ_CHAR_COUNT] = {
		    [ABQ_CHAR_DEVICEID] = in->facts.device_id,
		    [ABQ_CHAR_DEVICETYPE] = in->facts.device_type,
		    [ABQ_CHAR_DEVICEMODEL] = in->facts.model,
		    [ABQ_CHAR_DEVICEOS] = in->facts.os,
		    [ABQ_CHAR_USERAGENT] = in->facts.user_agent,
		};
		unsigned unknown = 0;
		if ((in->facts.model == NULL || in->facts.os == NULL) && discovery_waiting(in)) {
			if (in->facts.model == NULL)
				unknown |= 1u << ABQ_CHAR_DEVICEMODEL;
			if (in->facts.os == NULL)
				unknown |= 1u << ABQ_CHAR_DEVICEOS;
		}
		const struct abq_rule *rule = NULL;
		enum abq_charac missing = ABQ_CHAR_DEVICEID;
		switch (abq_ruleset_match(in->rules, values, unknown, &rule, &missing)) {
		case ABQ_RULES_MATCH:
			out->state = rule->level;
			out->reason = ABQ_REASON_RULE;
			out->rule_id = rule->id;
			out->rule = rule;
			out->step = ABQ_STEP_RULE;
			return;
		case ABQ_RULES_DISCOVERY:
			out->state = ABQ_STATE_DISCOVERY;
			out->reason = ABQ_REASON_DISCOVERY;
			out->rule_id = rule->id;
			out->rule = rule;
			out->missing = missing;
			out->step = ABQ_STEP_DISCOVERY;
			return;
		case ABQ_RULES_NONE:
			break;
		}
	}
	out->state = abq_mode_default(in->mode);
	out->reason = ABQ_REASON_MODE;
	out->step = ABQ_STEP_MODE;
}
