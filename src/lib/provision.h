/*
 * provision.h: the provisioning policy abqd hands phones in Provision
 * (MS-ASPROV's EASProvisionDoc), as administrators set it at global, domain
 * and account scope (abqctl mobile setProvisioning ...).
 *
 * One table row per key, named as the EASProvisionDoc element it becomes:
 * its value type, its range or values, its default (the value that imposes
 * nothing), the first protocol version whose EASProvisionDoc has it, and its
 * WBXML token on the Provision code page. AllowNonProvisionableDevices is the
 * one key that is never sent: it tells abqd what to do with a phone that does
 * not provision.
 *
 * Values are kept in the attributes table under the name ABQ_PROV_PREFIX +
 * key ("prov:MinDevicePasswordLength"), in their canonical spelling, and
 * resolved account > domain > global > default like the ABQ attributes
 * (engine.h abq_policy_provisioning).
 */
#ifndef ABQ_PROVISION_H
#define ABQ_PROVISION_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/abq_types.h"

/* The attribute-name prefix of provisioning values in the store. */
#define ABQ_PROV_PREFIX     "prov:"
#define ABQ_PROV_PREFIX_LEN 5

enum abq_prov_type {
	ABQ_PROV_BOOL,   /* 0 or 1 (also TRUE/FALSE, yes/no, on/off) */
	ABQ_PROV_NUMBER, /* a whole number from min to max */
	ABQ_PROV_ENUM,   /* one of the values listed in the row */
	ABQ_PROV_LIST,   /* comma-separated names (application lists) */
};

/*
 * The keys by position in the table, in the order Exchange writes the
 * elements of an EASProvisionDoc (and abqd too).
 */
enum abq_prov_id {
	ABQ_PROV_DEVICE_PASSWORD_ENABLED = 0,
	ABQ_PROV_ALPHANUMERIC_PASSWORD_REQUIRED,
	ABQ_PROV_PASSWORD_RECOVERY_ENABLED,
	ABQ_PROV_REQUIRE_STORAGE_CARD_ENCRYPTION,
	ABQ_PROV_ATTACHMENTS_ENABLED,
	ABQ_PROV_MIN_PASSWORD_LENGTH,
	ABQ_PROV_MAX_INACTIVITY_LOCK,
	ABQ_PROV_MAX_PASSWORD_FAILED_ATTEMPTS,
	ABQ_PROV_MAX_ATTACHMENT_SIZE,
	ABQ_PROV_ALLOW_SIMPLE_PASSWORD,
	ABQ_PROV_PASSWORD_EXPIRATION,
	ABQ_PROV_PASSWORD_HISTORY,
	ABQ_PROV_ALLOW_STORAGE_CARD,
	ABQ_PROV_ALLOW_CAMERA,
	ABQ_PROV_REQUIRE_DEVICE_ENCRYPTION,
	ABQ_PROV_ALLOW_UNSIGNED_APPLICATIONS,
	ABQ_PROV_ALLOW_UNSIGNED_PACKAGES,
	ABQ_PROV_MIN_PASSWORD_COMPLEX_CHARS,
	ABQ_PROV_ALLOW_WIFI,
	ABQ_PROV_ALLOW_TEXT_MESSAGING,
	ABQ_PROV_ALLOW_POP_IMAP_EMAIL,
	ABQ_PROV_ALLOW_BLUETOOTH,
	ABQ_PROV_ALLOW_IRDA,
	ABQ_PROV_REQUIRE_MANUAL_SYNC_ROAMING,
	ABQ_PROV_ALLOW_DESKTOP_SYNC,
	ABQ_PROV_MAX_CALENDAR_AGE_FILTER,
	ABQ_PROV_ALLOW_HTML_EMAIL,
	ABQ_PROV_MAX_EMAIL_AGE_FILTER,
	ABQ_PROV_MAX_EMAIL_BODY_TRUNCATION,
	ABQ_PROV_MAX_EMAIL_HTML_BODY_TRUNCATION,
	ABQ_PROV_REQUIRE_SIGNED_SMIME,
	ABQ_PROV_REQUIRE_ENCRYPTED_SMIME,
	ABQ_PROV_REQUIRE_SIGNED_SMIME_ALGORITHM,
	ABQ_PROV_REQUIRE_ENCRYPTION_SMIME_ALGORITHM,
	ABQ_PROV_ALLOW_SMIME_ALGORITHM_NEGOTIATION,
	ABQ_PROV_ALLOW_SMIME_SOFT_CERTS,
	ABQ_PROV_ALLOW_BROWSER,
	ABQ_PROV_ALLOW_CONSUMER_EMAIL,
	ABQ_PROV_ALLOW_REMOTE_DESKTOP,
	ABQ_PROV_ALLOW_INTERNET_SHARING,
	ABQ_PROV_UNAPPROVED_INROM_APPLICATIONS,
	ABQ_PROV_APPROVED_APPLICATIONS,
	ABQ_PROV_ALLOW_NON_PROVISIONABLE,
};
#define ABQ_PROV_ID_COUNT 43

/* The number of a value that is not sent ("none"): the phone's own setting stays. */
#define ABQ_PROV_NONE INT64_MIN

struct abq_prov_def {
	const char *name; /* the EASProvisionDoc element */
	enum abq_prov_type type;
	int64_t min, max;          /* NUMBER: the range */
	const char *values;        /* ENUM: "0,4,5,6,7"; LIST: the element of one item */
	const char *meanings;      /* ENUM: what each value means, for messages and docs */
	bool optional;             /* "none" is a value: the element is not sent */
	const char *default_value; /* canonical; imposes nothing */
	int since;     /* first protocol version that has it (121 = 12.1); 0: never sent */
	uint8_t token; /* on the Provision code page (0: never sent) */
	const char *help;
};

/* Where an effective value comes from. */
enum abq_prov_source {
	ABQ_PROV_FROM_DEFAULT = 0,
	ABQ_PROV_FROM_GLOBAL,
	ABQ_PROV_FROM_DOMAIN,
	ABQ_PROV_FROM_ACCOUNT,
};

/*
 * The effective provisioning policy of an account (or of a domain or the
 * global scope): every key's number and canonical text and where it came
 * from. The texts point into the policy it was resolved from (or the table's
 * defaults) and stay valid as long as that policy does. No allocation.
 */
struct abq_prov_policy {
	int64_t num[ABQ_PROV_ID_COUNT]; /* BOOL 0/1, NUMBER and ENUM; ABQ_PROV_NONE: not sent */
	const char *text[ABQ_PROV_ID_COUNT]; /* canonical ("1", "6", "none", "a, b", "") */
	enum abq_prov_source from[ABQ_PROV_ID_COUNT];
};

/* The word of a source, as abqctl --json and the API give it: "default", "global", ... */
const char *abq_prov_source_name(enum abq_prov_source from);
/* The key named name (case-insensitive, with or without ABQ_PROV_PREFIX), or NULL. */
const struct abq_prov_def *abq_prov_find(const char *name);
/* The row of an id, or NULL. */
const struct abq_prov_def *abq_prov_by_id(enum abq_prov_id id);
/* The id of a row from abq_prov_find/abq_prov_by_id. */
enum abq_prov_id abq_prov_id_of(const struct abq_prov_def *def);
/* Every key name, comma-separated, for "unknown key" messages (a static string). */
const char *abq_prov_names(void);

/*
 * Check value for def and write its canonical form into a new string *canon_r
 * ("1", "6", "none", "Calc.exe, Notes.exe"). Returns 0, or -1 with *errmsg_r
 * (new string) saying what the key accepts.
 */
int abq_prov_validate(const struct abq_prov_def *def, const char *value, char **canon_r,
                      char **errmsg_r);
/* The number of a canonical value (0 for LIST, ABQ_PROV_NONE for "none"). */
int64_t abq_prov_int_value(const struct abq_prov_def *def, const char *canon);

/* Every key at its default: a policy that imposes nothing. */
void abq_prov_defaults(struct abq_prov_policy *p);
/*
 * True when some key sent to phones differs from its default
 * (AllowNonProvisionableDevices, never sent, asks nothing of a phone).
 */
bool abq_prov_imposes(const struct abq_prov_policy *p);
/*
 * The Policy Status a phone reports when it acknowledges a policy (Provision
 * phase 2, MS-ASPROV 2.2.2.54.1) in words: 1 "applied", 2 "partially
 * applied", 3 "not applied", 4 "externally managed"; 0 "never reported";
 * any other "unknown". A static string.
 */
const char *abq_prov_status_text(int status);
/*
 * The policy's version: a hash of every key's canonical effective value,
 * never 0. Equal policies have equal versions on every node and across
 * restarts; a changed value changes it.
 */
uint32_t abq_prov_version(const struct abq_prov_policy *p);
/*
 * The PolicyKey a device gets when it acknowledges policy version (phase 2 of
 * Provision, MS-ASPROV 3.1.5.1.2) and must then send with every request:
 * derived from the version, the account and the DeviceId (case-folded), so
 * that every node and restart computes the same key without storing it, and
 * a new policy version gives every device a new key. Never 0; temporary
 * (phase 1) gives the key of the first phase instead.
 */
uint32_t abq_prov_device_key(uint32_t version, const char *account, const char *device_id,
                             bool temporary);

#endif
