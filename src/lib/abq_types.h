/*
 * abq_types.h: the vocabulary of ABQ shared by every layer.
 *
 * States, reasons, modes, rule characteristics and match kinds, with their
 * canonical spellings. The spellings are part of the user interface (abqctl
 * output, --json, the store's text columns), so they never change; parsing is
 * case-insensitive, printing always uses the canonical form.
 */
#ifndef ABQ_TYPES_H
#define ABQ_TYPES_H

#include <stdbool.h>
#include <stdint.h>

/* A device's state. ABQ_STATE_NONE means "no state": no list entry, no record. */
enum abq_state {
	ABQ_STATE_NONE = 0,
	ABQ_STATE_ALLOWED,
	ABQ_STATE_BLOCKED,
	ABQ_STATE_QUARANTINED,
	ABQ_STATE_DISCOVERY, /* decided by the engine only, never set by an administrator */
};

/* Why a device has its state: the evaluation step that decided it. */
enum abq_reason {
	ABQ_REASON_NONE = 0,
	ABQ_REASON_INDIVIDUAL, /* a list entry (DeviceId/account or DeviceId) */
	ABQ_REASON_LIMIT,      /* abqMaxDevicesPerAccount */
	ABQ_REASON_RULE,       /* a rule, whose id goes with it */
	ABQ_REASON_MODE,       /* the effective mode's default */
	ABQ_REASON_DISABLED,   /* effective mode Disabled */
	ABQ_REASON_DISCOVERY, /* waiting for a characteristic a rule needs (rule id goes with it) */
	ABQ_REASON_WIPE,      /* wiped: blocked until an administrator deletes the device */
	ABQ_REASON_POLICY,    /* does not provision, AllowNonProvisionableDevices 0 */
};
#define ABQ_REASON_LAST ABQ_REASON_POLICY

/* A device's remote wipe (abqctl mobile doWipeDevice). */
enum abq_wipe {
	ABQ_WIPE_NONE = 0,
	ABQ_WIPE_REQUESTED,    /* asked for; the device's next request gets it */
	ABQ_WIPE_ACKNOWLEDGED, /* the device confirmed it; now Blocked (reason Wipe) */
};

enum abq_mode {
	ABQ_MODE_PERMISSIVE = 0,
	ABQ_MODE_INTERACTIVE,
	ABQ_MODE_STRICT,
	ABQ_MODE_DISABLED,
};

/* What a rule tests. */
enum abq_charac {
	ABQ_CHAR_DEVICEID = 0,
	ABQ_CHAR_DEVICETYPE,
	ABQ_CHAR_DEVICEMODEL,
	ABQ_CHAR_DEVICEOS,
	ABQ_CHAR_USERAGENT,
};
#define ABQ_CHAR_COUNT 5

enum abq_match {
	ABQ_MATCH_EXACT = 0,
	ABQ_MATCH_GLOB,
	ABQ_MATCH_REGEX,
};

/* Canonical names. Each returns a static string; "?" for an out-of-range value. */
const char *abq_state_name(enum abq_state);
const char *abq_reason_name(enum abq_reason);
const char *abq_mode_name(enum abq_mode);
const char *abq_charac_name(enum abq_charac);
const char *abq_match_name(enum abq_match);

/*
 * Parsers: case-insensitive, return 0 and set *out, or -1 for an unknown word.
 * abq_state_parse accepts only the states an administrator may set (Allowed,
 * Blocked, Quarantined) unless allow_discovery is true.
 */
int abq_state_parse(const char *s, bool allow_discovery, enum abq_state *out);
int abq_reason_parse(const char *s, enum abq_reason *out);
int abq_mode_parse(const char *s, enum abq_mode *out);
int abq_charac_parse(const char *s, enum abq_charac *out);
int abq_match_parse(const char *s, enum abq_match *out);

/* Attribute scopes. */
enum abq_scope {
	ABQ_SCOPE_GLOBAL = 0,
	ABQ_SCOPE_DOMAIN,
	ABQ_SCOPE_ACCOUNT,
};
const char *abq_scope_name(enum abq_scope);
int abq_scope_parse(const char *s, enum abq_scope *out);

#endif
