/*
 * records.h: the registry's records (a device, a list entry, a rule, an
 * attribute), shared by the engine, which decides from them, and the store,
 * which keeps them. Strings are owned by the record; abq_*_clear() frees them.
 */
#ifndef ABQ_RECORDS_H
#define ABQ_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/abq_types.h"

/* A device: the pair (account, DeviceId) and everything known about it. */
struct abq_device {
	char *account;   /* normalised account, key part 1 */
	char *device_id; /* key part 2, compared case-insensitively */
	char *device_type;
	char *model; /* NULL: not reported yet (Settings/Provision) */
	char *imei;
	char *friendly_name;
	char *os; /* NULL: not reported yet */
	char *os_language;
	char *phone_number;
	char *mobile_operator;
	char *user_agent;
	char *eas_version;
	char *last_address;
	char *last_command;
	int64_t first_seen;
	int64_t last_seen;
	enum abq_state state;
	enum abq_reason reason;
	int64_t rule_id;  /* with ABQ_REASON_RULE / ABQ_REASON_DISCOVERY, else 0 */
	char *state_by;   /* administrator's name, or "abqd" */
	int64_t state_at; /* when the state was set */
	/* Remote wipe: requested by whom and when, acknowledged when (0: not yet). */
	enum abq_wipe wipe;
	bool wipe_account_only; /* AccountOnlyRemoteWipe (EAS 16.1): the account's data only */
	char *wipe_by;
	int64_t wipe_at;
	int64_t wipe_acked_at;
	/*
	 * The Status of the policy the device last acknowledged in Provision
	 * phase 2 (MS-ASPROV: 1 applied, 2 partially applied, 3 not applied, 4
	 * externally managed); 0: never reported.
	 */
	int provision_status;
};
void abq_device_clear(struct abq_device *d);
/* Deep copy; dst must be clear (zeroed). */
void abq_device_copy(struct abq_device *dst, const struct abq_device *src);

/* A list entry: DeviceId alone (account NULL) or DeviceId/account. */
struct abq_entry {
	char *device_id;
	char *account; /* NULL: applies to every account */
	enum abq_state state;
	char *created_by;
	int64_t created_at;
};
void abq_entry_clear(struct abq_entry *e);

/* A rule. Rules with a domain are tried before global ones, each in ascending order. */
struct abq_rule {
	int64_t id; /* assigned by the store on insert */
	enum abq_charac charac;
	enum abq_match match;
	char *pattern;
	enum abq_state level; /* Allowed, Blocked or Quarantined */
	int64_t order;
	char *domain; /* NULL: global */
	char *created_by;
	int64_t created_at;
};
void abq_rule_clear(struct abq_rule *r);

/* An attribute at a scope. target is NULL for global, the domain, or the account. */
struct abq_attr {
	enum abq_scope scope;
	char *target;
	char *name;
	char *value;
	char *set_by;
	int64_t set_at;
};
void abq_attr_clear(struct abq_attr *a);

#endif
