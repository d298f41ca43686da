/*
 * attrs.h: the ABQ attributes administrators set at global, domain and account
 * scope (abqctl config ... set attribute NAME value VALUE).
 *
 * One table row per attribute: adding an attribute is one line in attrs.c.
 */
#ifndef ABQ_ATTRS_H
#define ABQ_ATTRS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/abq_types.h"

enum abq_attr_type {
	ABQ_ATTR_MODE,     /* Permissive|Interactive|Strict|Disabled */
	ABQ_ATTR_DURATION, /* 0, 30s, 45m, 6h, 1d */
	ABQ_ATTR_COUNT,    /* a whole number >= 0 */
	ABQ_ATTR_BOOL,     /* TRUE/FALSE, yes/no, 1/0 */
	ABQ_ATTR_ADDRESSES /* comma-separated mail addresses */
};

/* Scope bits. */
#define ABQ_ATTR_AT_GLOBAL  (1u << ABQ_SCOPE_GLOBAL)
#define ABQ_ATTR_AT_DOMAIN  (1u << ABQ_SCOPE_DOMAIN)
#define ABQ_ATTR_AT_ACCOUNT (1u << ABQ_SCOPE_ACCOUNT)
#define ABQ_ATTR_AT_ALL     (ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN | ABQ_ATTR_AT_ACCOUNT)

/*
 * The attributes by position in the table, for code that needs one without a
 * name lookup (the engine's hot path). Names stay the interface.
 */
enum abq_attr_id {
	ABQ_ATTR_ID_MODE = 0,               /* abqMode */
	ABQ_ATTR_ID_NOTIFICATIONS_INTERVAL, /* abqNotificationsInterval */
	ABQ_ATTR_ID_MAX_DEVICES,            /* abqMaxDevicesPerAccount */
	ABQ_ATTR_ID_DISCOVERY_TIMEOUT,      /* abqDiscoveryTimeout */
	ABQ_ATTR_ID_NOTIFY_USER_ON_ALLOW,   /* abqNotifyUserOnAllow */
	ABQ_ATTR_ID_NOTIFY_ADMINS_NOW,      /* abqNotifyAdminsImmediately */
	ABQ_ATTR_ID_ADMINS,                 /* abqAdmins */
};
#define ABQ_ATTR_ID_COUNT 7

struct abq_attr_def {
	const char *name;
	enum abq_attr_type type;
	const char *default_value; /* canonical form */
	unsigned scopes;
	bool reevaluates; /* a change decides devices anew */
	const char *help;
};

/* The attribute named name (case-insensitive), or NULL. */
const struct abq_attr_def *abq_attr_find(const char *name);
/* The table, terminated by a row whose name is NULL. */
const struct abq_attr_def *abq_attr_defs(void);

/*
 * Check value for def and write its canonical form into a new string *canon_r
 * (Interactive, 45m, 3, TRUE, "a@x, b@y"). Returns 0, or -1 with *errmsg_r (new
 * string) saying what is accepted.
 */
int abq_attr_validate(const struct abq_attr_def *def, const char *value, char **canon_r,
                      char **errmsg_r);

/*
 * Parsed forms of canonical values (the value must have been validated):
 * MODE: the enum abq_mode; DURATION: seconds; COUNT: the number; BOOL: 1 or 0;
 * ADDRESSES: how many addresses. A value that does not parse gives 0.
 */
int64_t abq_attr_int_value(const struct abq_attr_def *def, const char *canon);

/* The row of an attribute id; its index in the table is the id. */
const struct abq_attr_def *abq_attr_by_id(enum abq_attr_id id);
/* The id of a row of the table (def must come from abq_attr_find/abq_attr_defs). */
enum abq_attr_id abq_attr_id_of(const struct abq_attr_def *def);
/* The name of a scope bit set, for messages: "global and domain", "every scope". */
const char *abq_attr_scopes_text(unsigned scopes);

#endif
