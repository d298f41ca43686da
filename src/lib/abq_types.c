/*
 * abq_types.c: the canonical spellings of ABQ's vocabulary (see abq_types.h).
 *
 * Each enum has one table of names indexed by its value; printing indexes it,
 * parsing searches it case-insensitively. The spellings are user interface and
 * store format, so they are written once, here.
 */
#include "lib/abq_types.h"

#include <stddef.h>
#include <strings.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const state_names[] = {
    [ABQ_STATE_NONE] = "None",           [ABQ_STATE_ALLOWED] = "Allowed",
    [ABQ_STATE_BLOCKED] = "Blocked",     [ABQ_STATE_QUARANTINED] = "Quarantined",
    [ABQ_STATE_DISCOVERY] = "Discovery",
};

static const char *const reason_names[] = {
    [ABQ_REASON_NONE] = "None",           [ABQ_REASON_INDIVIDUAL] = "Individual",
    [ABQ_REASON_LIMIT] = "Limit",         [ABQ_REASON_RULE] = "Rule",
    [ABQ_REASON_MODE] = "Mode",           [ABQ_REASON_DISABLED] = "Disabled",
    [ABQ_REASON_DISCOVERY] = "Discovery", [ABQ_REASON_WIPE] = "Wipe",
    [ABQ_REASON_POLICY] = "Policy",
};

static const char *const mode_names[] = {
    [ABQ_MODE_PERMISSIVE] = "Permissive",
    [ABQ_MODE_INTERACTIVE] = "Interactive",
    [ABQ_MODE_STRICT] = "Strict",
    [ABQ_MODE_DISABLED] = "Disabled",
};

static const char *const charac_names[] = {
    [ABQ_CHAR_DEVICEID] = "DeviceId",       [ABQ_CHAR_DEVICETYPE] = "DeviceType",
    [ABQ_CHAR_DEVICEMODEL] = "DeviceModel", [ABQ_CHAR_DEVICEOS] = "DeviceOS",
    [ABQ_CHAR_USERAGENT] = "UserAgent",
};

static const char *const match_names[] = {
    [ABQ_MATCH_EXACT] = "exact",
    [ABQ_MATCH_GLOB] = "glob",
    [ABQ_MATCH_REGEX] = "regex",
};

static const char *const scope_names[] = {
    [ABQ_SCOPE_GLOBAL] = "global",
    [ABQ_SCOPE_DOMAIN] = "domain",
    [ABQ_SCOPE_ACCOUNT] = "account",
};

/* The name of value v in a table of n names, or "?" when v is out of range. */
static const char *
name_of(const char *const *names, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n || names[v] == NULL)
		return "?";
	return names[v];
}

/*
 * The index of s in names[first..n), compared case-insensitively, or -1.
 * first lets a parser skip the "None" entry, which is a printed placeholder
 * and never a word a user may type.
 */
static int
index_of(const char *const *names, size_t first, size_t n, const char *s)
{
	if (s == NULL)
		return -1;
	for (size_t i = first; i < n; i++)
		if (names[i] != NULL && strcasecmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* "Allowed", "Blocked", ...; "None" for ABQ_STATE_NONE. */
const char *
abq_state_name(enum abq_state s)
{
	return name_of(state_names, NELEM(state_names), (int)s);
}

/* "Individual", "Rule", ...; "None" for ABQ_REASON_NONE. */
const char *
abq_reason_name(enum abq_reason r)
{
	return name_of(reason_names, NELEM(reason_names), (int)r);
}

/* "Permissive", "Interactive", "Strict" or "Disabled". */
const char *
abq_mode_name(enum abq_mode m)
{
	return name_of(mode_names, NELEM(mode_names), (int)m);
}

/* "DeviceId", "DeviceType", "DeviceModel", "DeviceOS" or "UserAgent". */
const char *
abq_charac_name(enum abq_charac c)
{
	return name_of(charac_names, NELEM(charac_names), (int)c);
}

/* "exact", "glob" or "regex". */
const char *
abq_match_name(enum abq_match m)
{
	return name_of(match_names, NELEM(match_names), (int)m);
}

/* "global", "domain" or "account". */
const char *
abq_scope_name(enum abq_scope s)
{
	return name_of(scope_names, NELEM(scope_names), (int)s);
}

/*
 * Parse a state name. Administrators may set Allowed, Blocked or Quarantined;
 * Discovery is the engine's own and is accepted only when allow_discovery
 * says the caller reads engine output (the store, a --json filter). "None" is
 * never accepted.
 */
int
abq_state_parse(const char *s, bool allow_discovery, enum abq_state *out)
{
	int i = index_of(state_names, ABQ_STATE_ALLOWED, NELEM(state_names), s);

	if (i < 0 || (i == ABQ_STATE_DISCOVERY && !allow_discovery))
		return -1;
	*out = (enum abq_state)i;
	return 0;
}

/* Parse a reason name ("None" excluded). */
int
abq_reason_parse(const char *s, enum abq_reason *out)
{
	int i = index_of(reason_names, ABQ_REASON_INDIVIDUAL, NELEM(reason_names), s);

	if (i < 0)
		return -1;
	*out = (enum abq_reason)i;
	return 0;
}

/* Parse a mode name. */
int
abq_mode_parse(const char *s, enum abq_mode *out)
{
	int i = index_of(mode_names, 0, NELEM(mode_names), s);

	if (i < 0)
		return -1;
	*out = (enum abq_mode)i;
	return 0;
}

/* Parse a rule characteristic name. */
int
abq_charac_parse(const char *s, enum abq_charac *out)
{
	int i = index_of(charac_names, 0, NELEM(charac_names), s);

	if (i < 0)
		return -1;
	*out = (enum abq_charac)i;
	return 0;
}

/* Parse a match kind. */
int
abq_match_parse(const char *s, enum abq_match *out)
{
	int i = index_of(match_names, 0, NELEM(match_names), s);

	if (i < 0)
		return -1;
	*out = (enum abq_match)i;
	return 0;
}

/* Parse an attribute scope. */
int
abq_scope_parse(const char *s, enum abq_scope *out)
{
	int i = index_of(scope_names, 0, NELEM(scope_names), s);

	if (i < 0)
		return -1;
	*out = (enum abq_scope)i;
	return 0;
}
