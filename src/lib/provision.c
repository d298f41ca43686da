/*
 * provision.c: the table of provisioning keys (MS-ASPROV 2.2.2, the children
 * of EASProvisionDoc) and the validation of their values.
 *
 * Every key an administrator can set with "abqctl mobile setProvisioning" is
 * one row below, in the order the elements are written. Validation turns what
 * was typed into one canonical spelling (the one stored, printed, hashed into
 * the policy version and sent), and says plainly what a key accepts when it
 * refuses a value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hmap.h"
#include "lib/provision.h"
#include "lib/siphash.h"
#include "lib/util.h"

/* Caps on an application list: items, bytes of one item, bytes of the list. */
#define LIST_MAX_ITEMS 100
#define LIST_MAX_ITEM  256
#define LIST_MAX_TEXT  4096

#define B(id, name, def, since, tok, help)                                                         \
	[id] = {name, ABQ_PROV_BOOL, 0, 1, NULL, NULL, false, def, since, tok, help}
#define N(id, name, lo, hi, opt, def, since, tok, help)                                            \
	[id] = {name, ABQ_PROV_NUMBER, lo, hi, NULL, NULL, opt, def, since, tok, help}
#define E(id, name, vals, means, opt, def, since, tok, help)                                       \
	[id] = {name, ABQ_PROV_ENUM, 0, 0, vals, means, opt, def, since, tok, help}
#define L(id, name, item, since, tok, help)                                                        \
	[id] = {name, ABQ_PROV_LIST, 0, 0, item, NULL, false, "", since, tok, help}

/* Order matters: the index of a row is its enum abq_prov_id, and the order sent. */
static const struct abq_prov_def prov_table[] = {
    B(ABQ_PROV_DEVICE_PASSWORD_ENABLED, "DevicePasswordEnabled", "0", 120, 0x0E,
      "require a device password (PIN)"),
    B(ABQ_PROV_ALPHANUMERIC_PASSWORD_REQUIRED, "AlphanumericDevicePasswordRequired", "0", 120, 0x0F,
      "require letters and digits in the password"),
    B(ABQ_PROV_PASSWORD_RECOVERY_ENABLED, "PasswordRecoveryEnabled", "0", 120, 0x11,
      "the phone may send a recovery password to the server"),
    B(ABQ_PROV_REQUIRE_STORAGE_CARD_ENCRYPTION, "RequireStorageCardEncryption", "0", 121, 0x10,
      "encrypt the storage card"),
    B(ABQ_PROV_ATTACHMENTS_ENABLED, "AttachmentsEnabled", "1", 120, 0x13,
      "attachments may be downloaded"),
    N(ABQ_PROV_MIN_PASSWORD_LENGTH, "MinDevicePasswordLength", 1, 16, true, "none", 120, 0x14,
      "shortest password (1 = no minimum)"),
    N(ABQ_PROV_MAX_INACTIVITY_LOCK, "MaxInactivityTimeDeviceLock", 0, 9999, true, "none", 120, 0x15,
      "seconds of inactivity before the phone locks (9999 = never)"),
    N(ABQ_PROV_MAX_PASSWORD_FAILED_ATTEMPTS, "MaxDevicePasswordFailedAttempts", 4, 16, true, "none",
      120, 0x16, "failed password attempts before the phone wipes or locks itself"),
    N(ABQ_PROV_MAX_ATTACHMENT_SIZE, "MaxAttachmentSize", 0, INT32_MAX, true, "none", 120, 0x17,
      "largest attachment downloaded, in bytes"),
    B(ABQ_PROV_ALLOW_SIMPLE_PASSWORD, "AllowSimpleDevicePassword", "1", 120, 0x18,
      "allow simple passwords (1111, 1234)"),
    N(ABQ_PROV_PASSWORD_EXPIRATION, "DevicePasswordExpiration", 0, 730, true, "none", 120, 0x19,
      "days before the password expires (0 = never)"),
    N(ABQ_PROV_PASSWORD_HISTORY, "DevicePasswordHistory", 0, 50, true, "none", 120, 0x1A,
      "previous passwords that may not be used again"),
    B(ABQ_PROV_ALLOW_STORAGE_CARD, "AllowStorageCard", "1", 121, 0x1B,
      "the storage card may be used"),
    B(ABQ_PROV_ALLOW_CAMERA, "AllowCamera", "1", 121, 0x1C, "the camera may be used"),
    B(ABQ_PROV_REQUIRE_DEVICE_ENCRYPTION, "RequireDeviceEncryption", "0", 121, 0x1D,
      "encrypt the phone"),
    B(ABQ_PROV_ALLOW_UNSIGNED_APPLICATIONS, "AllowUnsignedApplications", "1", 121, 0x1E,
      "unsigned applications may run"),
    B(ABQ_PROV_ALLOW_UNSIGNED_PACKAGES, "AllowUnsignedInstallationPackages", "1", 121, 0x1F,
      "unsigned installation packages may be installed"),
    N(ABQ_PROV_MIN_PASSWORD_COMPLEX_CHARS, "MinDevicePasswordComplexCharacters", 1, 4, true, "none",
      121, 0x20, "character groups a password needs (lower case, upper case, digits, others)"),
    B(ABQ_PROV_ALLOW_WIFI, "AllowWiFi", "1", 121, 0x21, "Wi-Fi may be used"),
    B(ABQ_PROV_ALLOW_TEXT_MESSAGING, "AllowTextMessaging", "1", 121, 0x22,
      "text messages (SMS) may be used"),
    B(ABQ_PROV_ALLOW_POP_IMAP_EMAIL, "AllowPOPIMAPEmail", "1", 121, 0x23,
      "POP and IMAP accounts may be used"),
    E(ABQ_PROV_ALLOW_BLUETOOTH, "AllowBluetooth", "0,1,2",
      "0 (disabled), 1 (hands-free only) or 2 (allowed)", false, "2", 121, 0x24, "Bluetooth use"),
    B(ABQ_PROV_ALLOW_IRDA, "AllowIrDA", "1", 121, 0x25, "infrared connections may be used"),
    B(ABQ_PROV_REQUIRE_MANUAL_SYNC_ROAMING, "RequireManualSyncWhenRoaming", "0", 121, 0x26,
      "synchronise only by hand while roaming"),
    B(ABQ_PROV_ALLOW_DESKTOP_SYNC, "AllowDesktopSync", "1", 121, 0x27,
      "the phone may synchronise with a desktop computer"),
    E(ABQ_PROV_MAX_CALENDAR_AGE_FILTER, "MaxCalendarAgeFilter", "0,4,5,6,7",
      "0 (all), 4 (2 weeks), 5 (1 month), 6 (3 months) or 7 (6 months)", false, "0", 121, 0x28,
      "how far back calendar items are synchronised"),
    B(ABQ_PROV_ALLOW_HTML_EMAIL, "AllowHTMLEmail", "1", 121, 0x29, "HTML mail may be shown"),
    E(ABQ_PROV_MAX_EMAIL_AGE_FILTER, "MaxEmailAgeFilter", "0,1,2,3,4,5",
      "0 (all), 1 (1 day), 2 (3 days), 3 (1 week), 4 (2 weeks) or 5 (1 month)", false, "0", 121,
      0x2A, "how far back mail is synchronised"),
    N(ABQ_PROV_MAX_EMAIL_BODY_TRUNCATION, "MaxEmailBodyTruncationSize", -1, INT32_MAX, true, "none",
      121, 0x2B, "plain-text mail is truncated to this size (-1 = never, 0 = headers only)"),
    N(ABQ_PROV_MAX_EMAIL_HTML_BODY_TRUNCATION, "MaxEmailHTMLBodyTruncationSize", -1, INT32_MAX,
      true, "none", 121, 0x2C,
      "HTML mail is truncated to this size (-1 = never, 0 = headers only)"),
    B(ABQ_PROV_REQUIRE_SIGNED_SMIME, "RequireSignedSMIMEMessages", "0", 121, 0x2D,
      "sent mail must be signed (S/MIME)"),
    B(ABQ_PROV_REQUIRE_ENCRYPTED_SMIME, "RequireEncryptedSMIMEMessages", "0", 121, 0x2E,
      "sent mail must be encrypted (S/MIME)"),
    E(ABQ_PROV_REQUIRE_SIGNED_SMIME_ALGORITHM, "RequireSignedSMIMEAlgorithm", "0,1",
      "0 (SHA1) or 1 (MD5)", true, "none", 121, 0x2F, "the algorithm that signs mail"),
    E(ABQ_PROV_REQUIRE_ENCRYPTION_SMIME_ALGORITHM, "RequireEncryptionSMIMEAlgorithm", "0,1,2,3,4",
      "0 (TripleDES), 1 (DES), 2 (RC2 128-bit), 3 (RC2 64-bit) or 4 (RC2 40-bit)", true, "none",
      121, 0x30, "the algorithm that encrypts mail"),
    E(ABQ_PROV_ALLOW_SMIME_ALGORITHM_NEGOTIATION, "AllowSMIMEEncryptionAlgorithmNegotiation",
      "0,1,2", "0 (no negotiation), 1 (strong algorithms only) or 2 (any algorithm)", false, "2",
      121, 0x31, "whether the encryption algorithm may be negotiated"),
    B(ABQ_PROV_ALLOW_SMIME_SOFT_CERTS, "AllowSMIMESoftCerts", "1", 121, 0x32,
      "certificates stored in software may be used"),
    B(ABQ_PROV_ALLOW_BROWSER, "AllowBrowser", "1", 121, 0x33, "the web browser may be used"),
    B(ABQ_PROV_ALLOW_CONSUMER_EMAIL, "AllowConsumerEmail", "1", 121, 0x34,
      "personal mail accounts may be used"),
    B(ABQ_PROV_ALLOW_REMOTE_DESKTOP, "AllowRemoteDesktop", "1", 121, 0x35,
      "remote desktop may be used"),
    B(ABQ_PROV_ALLOW_INTERNET_SHARING, "AllowInternetSharing", "1", 121, 0x36,
      "the phone may share its connection (tethering)"),
    L(ABQ_PROV_UNAPPROVED_INROM_APPLICATIONS, "UnapprovedInROMApplicationList", "ApplicationName",
      121, 0x37, "built-in applications that may not run"),
    L(ABQ_PROV_APPROVED_APPLICATIONS, "ApprovedApplicationList", "Hash", 121, 0x39,
      "the only installed applications that may run (their hashes)"),
    B(ABQ_PROV_ALLOW_NON_PROVISIONABLE, "AllowNonProvisionableDevices", "1", 0, 0,
      "whether phones that do not provision may sync (for the gateway); never sent to "
      "phones"),
    {NULL, 0, 0, 0, NULL, NULL, false, NULL, 0, 0, NULL},
};

#undef B
#undef N
#undef E
#undef L

_Static_assert(sizeof(prov_table) / sizeof(prov_table[0]) == ABQ_PROV_ID_COUNT + 1,
               "ABQ_PROV_ID_COUNT must match the provisioning table");

/*
 * Look a key up by name, ignoring case and the store's "prov:" prefix, so
 * that the store's names and what administrators type both find it.
 */
const struct abq_prov_def *
abq_prov_find(const char *name)
{
	if (name == NULL)
		return NULL;
	if (strncasecmp(name, ABQ_PROV_PREFIX, ABQ_PROV_PREFIX_LEN) == 0)
		name += ABQ_PROV_PREFIX_LEN;
	for (const struct abq_prov_def *d = prov_table; d->name != NULL; d++)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* The word of a source (provision.h). */
const char *
abq_prov_source_name(enum abq_prov_source from)
{
	switch (from) {
	case ABQ_PROV_FROM_GLOBAL:
		return "global";
	case ABQ_PROV_FROM_DOMAIN:
		return "domain";
	case ABQ_PROV_FROM_ACCOUNT:
		return "account";
	case ABQ_PROV_FROM_DEFAULT:
	default:
		return "default";
	}
}

/* The row of an id; ids are table indexes. */
const struct abq_prov_def *
abq_prov_by_id(enum abq_prov_id id)
{
	if ((unsigned)id >= ABQ_PROV_ID_COUNT)
		return NULL;
	return &prov_table[id];
}

/* The id of a row: its index in the table. */
enum abq_prov_id
abq_prov_id_of(const struct abq_prov_def *def)
{
	return (enum abq_prov_id)(def - prov_table);
}

/* Every key name joined by ", ", built once (the table never changes). */
const char *
abq_prov_names(void)
{
	static char names[2048];

	if (names[0] == '\0') {
		size_t len = 0;
		for (const struct abq_prov_def *d = prov_table; d->name != NULL; d++) {
			size_t n = strlen(d->name);
			if (len + n + 3 >= sizeof(names))
				break;
			if (len > 0) {
				memcpy(names + len, ", ", 2);
				len += 2;
			}
			memcpy(names + len, d->name, n);
			len += n;
			names[len] = '\0';
		}
	}
	return names;
}

/* True when word is one of the comma-separated values of list. */
static bool
in_values(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; *p != '\0';) {
		const char *c = strchr(p, ',');
		size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len + (c != NULL);
	}
	return false;
}

/* True for the bytes allowed in one item of an application list. */
static bool
item_char_ok(const struct abq_prov_def *def, unsigned char c)
{
	if (c < 0x20 || c == 0x7f || c == ',')
		return false;
	/* A hash is base64 or hexadecimal: no spaces, ASCII only. */
	if (strcmp(def->values, "Hash") == 0)
		return c > 0x20 && c < 0x7f;
	return true;
}

/*
 * Validate an application list: items separated by commas, each trimmed and
 * checked, written back joined by ", ". Empty is valid (no list is sent).
 */
static int
validate_list(const struct abq_prov_def *def, const char *value, char **canon_r, char **errmsg_r)
{
	size_t len = 0, items = 0;
	char *out;

	if (strlen(value) > LIST_MAX_TEXT) {
		*errmsg_r = xasprintf("%s takes at most %d bytes of %s values", def->name,
		                      LIST_MAX_TEXT, def->values);
		return -1;
	}
	out = xmalloc(strlen(value) * 2 + 1);
	out[0] = '\0';
	for (const char *p = value; *p != '\0';) {
		const char *comma = strchr(p, ',');
		const char *end = comma != NULL ? comma : p + strlen(p);
		const char *b = p, *e = end;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		p = comma != NULL ? comma + 1 : end;
		if (b == e)
			continue; /* "a,,b" and a trailing comma: nothing there */
		bool ok = (size_t)(e - b) <= LIST_MAX_ITEM;
		for (const char *q = b; ok && q < e; q++)
			ok = item_char_ok(def, (unsigned char)*q);
		if (!ok || ++items > LIST_MAX_ITEMS) {
			*errmsg_r =
			    ok ? xasprintf("%s takes at most %d %s values", def->name,
			                   LIST_MAX_ITEMS, def->values)
			       : xasprintf("%s takes %s values separated by commas (each 1-%d "
			                   "printable characters%s); '%.*s' is not one",
			                   def->name, def->values, LIST_MAX_ITEM,
			                   strcmp(def->values, "Hash") == 0 ? ", no spaces" : "",
			                   (int)(e - b), b);
			free(out);
			return -1;
		}
		if (len > 0) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		memcpy(out + len, b, (size_t)(e - b));
		len += (size_t)(e - b);
		out[len] = '\0';
	}
	*canon_r = out;
	return 0;
}

/*
 * Validate value for def and produce its canonical spelling. Each type says
 * what it accepts when it refuses, so that the administrator does not have to
 * open MS-ASPROV: "MaxCalendarAgeFilter takes 0 (all), 4 (2 weeks), ...".
 */
int
abq_prov_validate(const struct abq_prov_def *def, const char *value, char **canon_r,
                  char **errmsg_r)
{
	*canon_r = NULL;
	*errmsg_r = NULL;
	if (def == NULL) {
		*errmsg_r = xstrdup("unknown provisioning key");
		return -1;
	}
	if (value == NULL || value[0] == '\0') {
		/* An empty application list is a value: no list is sent. */
		if (def->type == ABQ_PROV_LIST) {
			*canon_r = xstrdup("");
			return 0;
		}
		*errmsg_r = xasprintf("%s needs a value", def->name);
		return -1;
	}
	if (def->optional && strcasecmp(value, "none") == 0) {
		*canon_r = xstrdup("none");
		return 0;
	}
	switch (def->type) {
	case ABQ_PROV_BOOL: {
		static const char *const yes[] = {"1", "TRUE", "yes", "on"};
		static const char *const no[] = {"0", "FALSE", "no", "off"};
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcasecmp(value, yes[i]) == 0) {
				*canon_r = xstrdup("1");
				return 0;
			}
			if (strcasecmp(value, no[i]) == 0) {
				*canon_r = xstrdup("0");
				return 0;
			}
		}
		*errmsg_r = xasprintf("%s takes 1 or 0 (also TRUE/FALSE, yes/no, on/off), not '%s'",
		                      def->name, value);
		return -1;
	}
	case ABQ_PROV_NUMBER: {
		const char *errstr = NULL;
		long long n;
		if (parse_int(value, def->min, def->max, &n, &errstr) != 0) {
			*errmsg_r =
			    xasprintf("%s takes a whole number from %lld to %lld%s; '%s' is %s",
			              def->name, (long long)def->min, (long long)def->max,
			              def->optional ? " or none (not sent)" : "", value,
			              errstr != NULL ? errstr : "not one");
			return -1;
		}
		*canon_r = xasprintf("%lld", n);
		return 0;
	}
	case ABQ_PROV_ENUM: {
		const char *errstr = NULL;
		long long n;
		/* Parsed first so that "04" or " 4" find 4 and come back as "4". */
		if (parse_int(value, 0, 99, &n, &errstr) == 0) {
			char buf[8];
			snprintf(buf, sizeof(buf), "%lld", n);
			if (in_values(def->values, buf)) {
				*canon_r = xstrdup(buf);
				return 0;
			}
		}
		*errmsg_r = xasprintf("%s takes %s%s, not '%s'", def->name, def->meanings,
		                      def->optional ? ", or none (not sent)" : "", value);
		return -1;
	}
	case ABQ_PROV_LIST:
		return validate_list(def, value, canon_r, errmsg_r);
	}
	*errmsg_r = xasprintf("%s has an unknown type", def->name);
	return -1;
}

/* The number a canonical value stands for, so that the builder compares integers. */
int64_t
abq_prov_int_value(const struct abq_prov_def *def, const char *canon)
{
	const char *errstr;
	long long n;

	if (def == NULL || canon == NULL || def->type == ABQ_PROV_LIST)
		return 0;
	if (strcmp(canon, "none") == 0)
		return ABQ_PROV_NONE;
	if (parse_int(canon, INT32_MIN, INT32_MAX, &n, &errstr) != 0)
		return 0;
	return (int64_t)n;
}

/* Every key at the table's default, from nowhere but the default. */
void
abq_prov_defaults(struct abq_prov_policy *p)
{
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		p->text[i] = prov_table[i].default_value;
		p->num[i] = abq_prov_int_value(&prov_table[i], prov_table[i].default_value);
		p->from[i] = ABQ_PROV_FROM_DEFAULT;
	}
}

/*
 * Whether the policy asks anything of a phone: a value other than the
 * default (the source does not matter: a default set explicitly imposes
 * nothing either) of a key that is sent; AllowNonProvisionableDevices only
 * says what abqd does with a phone that does not provision.
 */
bool
abq_prov_imposes(const struct abq_prov_policy *p)
{
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++)
		if (prov_table[i].since != 0 &&
		    strcmp(p->text[i] != NULL ? p->text[i] : "", prov_table[i].default_value) != 0)
			return true;
	return false;
}

/* A Policy Status in words (provision.h). */
const char *
abq_prov_status_text(int status)
{
	static const char *const words[] = {"never reported", "applied", "partially applied",
	                                    "not applied", "externally managed"};

	return status >= 0 && status <= 4 ? words[status] : "unknown";
}

/*
 * The policy version: SipHash (fixed key: it must agree between nodes and
 * restarts) over "Name=value\n" for every key in table order, folded to 32
 * bits, 0 replaced by 1. The source of a value is left out: moving a value
 * from the domain to the global scope is not a new policy for the phone.
 */
uint32_t
abq_prov_device_key(uint32_t version, const char *account, const char *device_id, bool temporary)
{
	static const uint8_t key[SIPHASH_KEY_LEN] = {'a', 'b', 'q', 'd', '-', 'p', 'o', 'l',
	                                             'i', 'c', 'y', '-', 'k', 'e', 'y', '1'};
	uint8_t out[SIPHASH_OUT_LEN],
	    vb[5] = {(uint8_t)(version >> 24), (uint8_t)(version >> 16), (uint8_t)(version >> 8),
	             (uint8_t)version, temporary ? 'T' : 'F'};
	struct siphash h;
	uint32_t v = 0;

	siphash_init(&h, key);
	siphash_update(&h, vb, sizeof(vb));
	siphash_update(&h, account != NULL ? account : "", account != NULL ? strlen(account) : 0);
	siphash_update(&h, "/", 1);
	for (const char *c = device_id != NULL ? device_id : ""; *c; c++) {
		unsigned char l = abq_lc((unsigned char)*c);
		siphash_update(&h, &l, 1);
	}
	siphash_final(&h, out);
	for (size_t i = 0; i < sizeof(out); i++)
		v ^= (uint32_t)out[i] << (8 * (i % 4));
	return v != 0 ? v : 1;
}

uint32_t
abq_prov_version(const struct abq_prov_policy *p)
{
	static const uint8_t key[SIPHASH_KEY_LEN] = {'a', 'b', 'q', 'd', '-', 'p', 'r', 'o',
	                                             'v', 'i', 's', 'i', 'o', 'n', '-', '1'};
	uint8_t out[SIPHASH_OUT_LEN];
	struct siphash h;
	uint32_t v = 0;

	siphash_init(&h, key);
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		const char *t = p->text[i] != NULL ? p->text[i] : "";
		siphash_update(&h, prov_table[i].name, strlen(prov_table[i].name));
		siphash_update(&h, "=", 1);
		siphash_update(&h, t, strlen(t));
		siphash_update(&h, "\n", 1);
	}
	siphash_final(&h, out);
	for (size_t i = 0; i < sizeof(out); i++)
		v ^= (uint32_t)out[i] << (8 * (i % 4));
	return v != 0 ? v : 1;
}
