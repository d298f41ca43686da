/*
 * attrs.c: the table of ABQ attributes and the validation of their values.
 *
 * Every attribute an administrator can set with "abqctl config ... set
 * attribute" is one row below. Validation turns what was typed into one
 * canonical spelling (the one stored, printed and compared), so that "45M",
 * "2700" and "45m" are the same value, and says plainly what is accepted when
 * a value is refused.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/attrs.h"
#include "lib/util.h"

/* Order matters: the index of a row is its enum abq_attr_id. */
static const struct abq_attr_def attr_table[] = {
    [ABQ_ATTR_ID_MODE] = {"abqMode", ABQ_ATTR_MODE, "Permissive", ABQ_ATTR_AT_ALL, true,
                          "access control mode: Permissive, Interactive, Strict or Disabled"},
    [ABQ_ATTR_ID_NOTIFICATIONS_INTERVAL] = {"abqNotificationsInterval", ABQ_ATTR_DURATION, "1h",
                                            ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false,
                                            "how often administrators get the digest of newly "
                                            "quarantined devices (0 = never)"},
    [ABQ_ATTR_ID_MAX_DEVICES] = {"abqMaxDevicesPerAccount", ABQ_ATTR_COUNT, "0", ABQ_ATTR_AT_ALL,
                                 true,
                                 "devices an account may sync; a new device beyond it is "
                                 "blocked (0 = no limit)"},
    [ABQ_ATTR_ID_DISCOVERY_TIMEOUT] = {"abqDiscoveryTimeout", ABQ_ATTR_DURATION, "15m",
                                       ABQ_ATTR_AT_ALL, true,
                                       "how long a device may stay in Discovery before a "
                                       "characteristic it has not sent counts as empty"},
    [ABQ_ATTR_ID_NOTIFY_USER_ON_ALLOW] = {"abqNotifyUserOnAllow", ABQ_ATTR_BOOL, "FALSE",
                                          ABQ_ATTR_AT_ALL, false,
                                          "also tell users when a device of theirs becomes "
                                          "Allowed"},
    [ABQ_ATTR_ID_NOTIFY_ADMINS_NOW] = {"abqNotifyAdminsImmediately", ABQ_ATTR_BOOL, "FALSE",
                                       ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false,
                                       "mail administrators at once for each quarantined "
                                       "device, besides the digest"},
    [ABQ_ATTR_ID_ADMINS] = {"abqAdmins", ABQ_ATTR_ADDRESSES, "",
                            ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN, false,
                            "administrators who get notices (overrides [smtp] admins for a "
                            "domain)"},
    {NULL, 0, NULL, 0, false, NULL},
};

_Static_assert(sizeof(attr_table) / sizeof(attr_table[0]) == ABQ_ATTR_ID_COUNT + 1,
               "ABQ_ATTR_ID_COUNT must match the attribute table");

/*
 * Look an attribute up by name, ignoring case, since administrators type
 * "abqmode" as often as "abqMode". Returns NULL for an unknown name.
 */
const struct abq_attr_def *
abq_attr_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (const struct abq_attr_def *d = attr_table; d->name != NULL; d++)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* The whole table, for listings ("abqctl config global get all"). */
const struct abq_attr_def *
abq_attr_defs(void)
{
	return attr_table;
}

/* The row of an id; ids are table indexes, so this is an array access. */
const struct abq_attr_def *
abq_attr_by_id(enum abq_attr_id id)
{
	if ((unsigned)id >= ABQ_ATTR_ID_COUNT)
		return NULL;
	return &attr_table[id];
}

/* The id of a row: its index in the table. */
enum abq_attr_id
abq_attr_id_of(const struct abq_attr_def *def)
{
	return (enum abq_attr_id)(def - attr_table);
}

/* Scope bits in words, for "cannot be set per account (global and domain only)". */
const char *
abq_attr_scopes_text(unsigned scopes)
{
	switch (scopes & ABQ_ATTR_AT_ALL) {
	case ABQ_ATTR_AT_ALL:
		return "global, domain and account";
	case ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_DOMAIN:
		return "global and domain";
	case ABQ_ATTR_AT_GLOBAL | ABQ_ATTR_AT_ACCOUNT:
		return "global and account";
	case ABQ_ATTR_AT_DOMAIN | ABQ_ATTR_AT_ACCOUNT:
		return "domain and account";
	case ABQ_ATTR_AT_GLOBAL:
		return "global";
	case ABQ_ATTR_AT_DOMAIN:
		return "domain";
	case ABQ_ATTR_AT_ACCOUNT:
		return "account";
	default:
		return "no scope";
	}
}

/* True for the bytes allowed in the local part of an address we accept. */
static bool
local_char_ok(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("@,;<>()[]\\\"", c) == NULL;
}

/*
 * Check one trimmed address ("local@domain"): a local part of printable
 * characters that need no quoting, and a domain of dot-separated labels.
 * Deliberately narrower than RFC 5322: these are administrators' addresses.
 */
static bool
address_ok(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	if (at == NULL || at == s)
		return false;
	for (const char *p = s; p < at; p++)
		if (!local_char_ok((unsigned char)*p))
			return false;
	const char *dom = at + 1, *end = s + len;
	if (dom == end)
		return false;
	/* Domain: labels of letters, digits and '-', separated by single dots. */
	size_t label = 0;
	for (const char *p = dom; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-') {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/*
 * Validate a comma-separated list of addresses: each is trimmed, checked and
 * written back joined by ", " with its domain lower-cased. An empty list is
 * valid (it means "no one" at that scope, or "use [smtp] admins" by default).
 */
static int
validate_addresses(const struct abq_attr_def *def, const char *value, char **canon_r,
                   char **errmsg_r)
{
	size_t cap = strlen(value) * 2 + 1, len = 0;
	char *out = xmalloc(cap);
	const char *p = value;

	out[0] = '\0';
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma != NULL ? comma : p + strlen(p);
		const char *b = p, *e = end;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (b == e) {
			/* Tolerate "a@x," and ", a@x" but not "a@x,,b@y". */
			if (comma == NULL || p == value || comma[1] == '\0') {
				p = comma != NULL ? comma + 1 : end;
				continue;
			}
			*errmsg_r = xasprintf("%s takes mail addresses separated by commas; "
			                      "'%s' has an empty one",
			                      def->name, value);
			free(out);
			return -1;
		}
		if (!address_ok(b, (size_t)(e - b))) {
			*errmsg_r = xasprintf("%s takes mail addresses separated by commas "
			                      "(admin@example.com, b@example.com); '%.*s' is "
			                      "not one",
			                      def->name, (int)(e - b), b);
			free(out);
			return -1;
		}
		if (len > 0) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		const char *at = memchr(b, '@', (size_t)(e - b));
		for (const char *q = b; q < e; q++) {
			char c = *q;
			if (q > at && c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			out[len++] = c;
		}
		out[len] = '\0';
		p = comma != NULL ? comma + 1 : end;
	}
	*canon_r = out;
	return 0;
}

/*
 * Validate value for def and produce its canonical spelling. Each type says
 * what it accepts when it refuses, so that the administrator does not have to
 * open the manual: "abqMode takes Permissive, Interactive, Strict or Disabled".
 */
int
abq_attr_validate(const struct abq_attr_def *def, const char *value, char **canon_r,
                  char **errmsg_r)
{
	const char *errstr = NULL;

	*canon_r = NULL;
	*errmsg_r = NULL;
	if (def == NULL) {
		*errmsg_r = xstrdup("unknown attribute");
		return -1;
	}
	if (value == NULL) {
		*errmsg_r = xasprintf("%s needs a value", def->name);
		return -1;
	}
	switch (def->type) {
	case ABQ_ATTR_MODE: {
		enum abq_mode m;
		if (abq_mode_parse(value, &m) != 0) {
			*errmsg_r = xasprintf("%s takes Permissive, Interactive, Strict or "
			                      "Disabled, not '%s'",
			                      def->name, value);
			return -1;
		}
		*canon_r = xstrdup(abq_mode_name(m));
		return 0;
	}
	case ABQ_ATTR_DURATION: {
		int64_t secs;
		char buf[32];
		if (parse_duration(value, &secs, &errstr) != 0 || secs < 0) {
			bool big = errstr != NULL && strcmp(errstr, "too large") == 0;
			*errmsg_r = xasprintf("%s takes a duration: 0, 90 (seconds), 30s, 45m, "
			                      "6h, 1d or 2w; '%s' is %s",
			                      def->name, value, big ? "too large" : "not one");
			return -1;
		}
		*canon_r = xstrdup(format_duration(secs, buf));
		return 0;
	}
	case ABQ_ATTR_COUNT: {
		long long n;
		if (parse_int(value, 0, INT32_MAX, &n, &errstr) != 0) {
			*errmsg_r = xasprintf("%s takes a whole number from 0 to %d; '%s' is "
			                      "%s",
			                      def->name, INT32_MAX, value,
			                      errstr != NULL ? errstr : "not one");
			return -1;
		}
		*canon_r = xasprintf("%lld", n);
		return 0;
	}
	case ABQ_ATTR_BOOL: {
		static const char *const yes[] = {"TRUE", "yes", "1", "on"};
		static const char *const no[] = {"FALSE", "no", "0", "off"};
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcasecmp(value, yes[i]) == 0) {
				*canon_r = xstrdup("TRUE");
				return 0;
			}
			if (strcasecmp(value, no[i]) == 0) {
				*canon_r = xstrdup("FALSE");
				return 0;
			}
		}
		*errmsg_r = xasprintf("%s takes TRUE or FALSE (also yes/no, on/off, 1/0), not "
		                      "'%s'",
		                      def->name, value);
		return -1;
	}
	case ABQ_ATTR_ADDRESSES:
		return validate_addresses(def, value, canon_r, errmsg_r);
	}
	*errmsg_r = xasprintf("%s has an unknown type", def->name);
	return -1;
}

/*
 * The number a canonical value stands for, so that the engine compares
 * integers rather than strings on every request.
 */
int64_t
abq_attr_int_value(const struct abq_attr_def *def, const char *canon)
{
	const char *errstr;

	if (def == NULL || canon == NULL)
		return 0;
	switch (def->type) {
	case ABQ_ATTR_MODE: {
		enum abq_mode m;
		return abq_mode_parse(canon, &m) == 0 ? (int64_t)m : 0;
	}
	case ABQ_ATTR_DURATION: {
		int64_t secs;
		return parse_duration(canon, &secs, &errstr) == 0 ? secs : 0;
	}
	case ABQ_ATTR_COUNT: {
		long long n;
		return parse_int(canon, 0, INT64_MAX, &n, &errstr) == 0 ? (int64_t)n : 0;
	}
	case ABQ_ATTR_BOOL:
		return strcasecmp(canon, "TRUE") == 0 || strcasecmp(canon, "yes") == 0 ||
		       strcasecmp(canon, "on") == 0 || strcmp(canon, "1") == 0;
	case ABQ_ATTR_ADDRESSES: {
		int64_t n = 0;
		for (const char *p = canon; *p != '\0'; p++)
			n += *p == '@';
		return n;
	}
	}
	return 0;
}
