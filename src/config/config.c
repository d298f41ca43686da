/*
 * config.c: abqd.conf (see config.h and abqd.conf(5)).
 *
 * inih splits the file into (section, key, value); everything else is driven
 * by one table of typed keys below. Each row names the key, its type, the
 * field it fills, its default as text and its bounds; the default goes through
 * the same parser as the file, so a default can never be a value the file
 * would refuse. Adding a key is one row here and one field in config.h.
 *
 * Line numbers: the Debian inih is built without INI_HANDLER_LINENO, so the
 * file is fed to ini_parse_stream() through our own reader, which counts the
 * lines it hands over (one line per call) and checks section headers itself,
 * so that an unknown section is reported even when it holds no key.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define DEFAULT_CONFIG_PATH "/etc/abqd/abqd.conf"
#define MAX_LINE            4096 /* longest line accepted, in bytes */

enum key_type {
	K_STRING,    /* any text; empty: unset (NULL) */
	K_PATH,      /* a file name, relative to the config's folder; empty: unset */
	K_URLPATH,   /* an HTTP path starting with '/' */
	K_URLPATHS,  /* a list of those */
	K_DOMAIN,    /* a mail domain, lower-cased; empty: unset */
	K_BOOL,      /* yes/no, true/false, on/off, 1/0 */
	K_INT,       /* a whole number in [min, max] */
	K_WORKERS,   /* "auto" (0) or a number in [min, max] */
	K_DURATION,  /* parse_duration() in [min, max] seconds */
	K_SIZE,      /* parse_size() in [min, max] bytes */
	K_LISTEN,    /* a list of [tls:]host:port, at least min, at most max */
	K_CIDRS,     /* a list of networks, at most max */
	K_ADDRESS,   /* one mail address; empty: unset */
	K_ADDRESSES, /* a list of mail addresses, at most max */
	K_CHOICE,    /* one of the words, or a URL with one of the prefixes, in choices */
	K_PUBURL,    /* an absolute http:// or https:// URL without query; empty: unset */
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;       /* the field in struct abq_config */
	size_t count_offset; /* lists: the size_t count beside it */
	const char *def;     /* default, as the file would spell it; NULL: unset */
	int64_t min, max;    /* bounds; for lists, the number of items */
	const char *choices; /* K_CHOICE: "word|word|scheme://|scheme:" */
};

#define F(field)  offsetof(struct abq_config, field), 0
#define FL(field) offsetof(struct abq_config, field), offsetof(struct abq_config, field##_count)
#define MINUTE    60
#define HOUR      3600
#define DAY       86400
#define KIB       1024
#define GIB       (1024 * 1024 * 1024)
#define MANY      1000000

/* Every key of abqd.conf. Keep in step with man/abqd.conf.5 and docs/config.md. */
static const struct key keys[] = {
    {"eas", "listen", K_LISTEN, FL(eas_listen), "127.0.0.1:8080", 1, 64, NULL},
    {"eas", "path", K_URLPATH, F(eas_path), "/Microsoft-Server-ActiveSync", 0, 0, NULL},
    {"eas", "public_url", K_PUBURL, F(eas_public_url), NULL, 0, 0, NULL},
    {"eas", "default_domain", K_DOMAIN, F(eas_default_domain), NULL, 0, 0, NULL},
    {"eas", "passthrough", K_URLPATHS, FL(eas_passthrough), "/autodiscover/", 0, 256, NULL},
    {"eas", "trusted_proxies", K_CIDRS, FL(eas_trusted_proxies), NULL, 0, 1024, NULL},
    {"eas", "user", K_STRING, F(eas_user), NULL, 0, 0, NULL},
    {"eas", "workers", K_WORKERS, F(eas_workers), "auto", 1, 64, NULL},
    {"eas", "max_body", K_SIZE, F(eas_max_body), "32M", KIB, GIB, NULL},
    {"eas", "max_body_total", K_SIZE, F(eas_max_body_total), "256M", KIB, 64LL * GIB, NULL},
    {"eas", "header_timeout", K_DURATION, F(eas_header_timeout), "30s", 1, HOUR, NULL},
    {"eas", "max_connections_per_address", K_INT, F(eas_max_connections_per_address), "256", 1,
     MANY, NULL},

    {"tls", "cert", K_PATH, F(tls_cert), NULL, 0, 0, NULL},
    {"tls", "key", K_PATH, F(tls_key), NULL, 0, 0, NULL},

    {"upstream", "url", K_CHOICE, F(upstream_url), NULL, 0, 0, "http://|https://|imap://|imaps://"},
    {"upstream", "ca_file", K_PATH, F(upstream_ca_file), NULL, 0, 0, NULL},
    {"upstream", "connect_timeout", K_DURATION, F(upstream_connect_timeout), "5s", 1, 5 * MINUTE,
     NULL},
    {"upstream", "request_timeout", K_DURATION, F(upstream_request_timeout), "120s", 1, HOUR, NULL},
    {"upstream", "submission", K_CHOICE, F(upstream_submission), NULL, 0, 0, "smtp://|smtps://"},
    {"upstream", "max_connections_per_account", K_INT, F(upstream_max_connections_per_account), "3",
     1, 100, NULL},
    {"upstream", "caldav", K_CHOICE, F(upstream_caldav), NULL, 0, 0, "http://|https://"},
    {"upstream", "carddav", K_CHOICE, F(upstream_carddav), NULL, 0, 0, "http://|https://"},
    {"upstream", "dav_poll_interval", K_DURATION, F(upstream_dav_poll_interval), "60s", 10, HOUR,
     NULL},
    {"upstream", "dav_max_age", K_DURATION, F(upstream_dav_max_age), "5s", 0, 10 * MINUTE, NULL},
    {"upstream", "gal", K_CHOICE, F(upstream_gal), NULL, 0, 0, "ldap://|ldaps://"},
    {"upstream", "gal_bind_dn", K_STRING, F(upstream_gal_bind_dn), NULL, 0, 0, NULL},
    {"upstream", "gal_bind_password", K_STRING, F(upstream_gal_bind_password), NULL, 0, 0, NULL},

    {"auth", "method", K_CHOICE, F(auth_method), "upstream", 0, 0, "upstream|imap://|imaps://"},
    {"auth", "cache_ttl", K_DURATION, F(auth_cache_ttl), "10m", 0, DAY, NULL},
    {"auth", "failure_ttl", K_DURATION, F(auth_failure_ttl), "30s", 0, DAY, NULL},
    {"auth", "max_failures_per_address", K_INT, F(auth_max_failures_per_address), "20", 1, MANY,
     NULL},
    {"auth", "max_failures_per_account", K_INT, F(auth_max_failures_per_account), "10", 1, MANY,
     NULL},
    {"auth", "max_probes_per_address", K_INT, F(auth_max_probes_per_address), "4", 1, 10000, NULL},
    {"auth", "max_probes_per_account", K_INT, F(auth_max_probes_per_account), "4", 1, 10000, NULL},

    {"store", "url", K_CHOICE, F(store_url), "sqlite:var/abqd.db", 0, 0,
     "sqlite:|postgresql://|postgres://"},
    {"store", "grace", K_DURATION, F(store_grace), "300s", 0, DAY, NULL},

    {"smtp", "url", K_CHOICE, F(smtp_url), "smtp://127.0.0.1:25", 0, 0, "smtp://|smtps://"},
    {"smtp", "starttls", K_BOOL, F(smtp_starttls), "no", 0, 0, NULL},
    {"smtp", "from", K_ADDRESS, F(smtp_from), NULL, 0, 0, NULL},
    {"smtp", "admins", K_ADDRESSES, FL(smtp_admins), NULL, 0, 256, NULL},
    {"smtp", "domain", K_DOMAIN, F(smtp_domain), NULL, 0, 0, NULL},
    {"smtp", "username", K_STRING, F(smtp_username), NULL, 0, 0, NULL},
    {"smtp", "password", K_STRING, F(smtp_password), NULL, 0, 0, NULL},

    {"admin", "listen", K_LISTEN, FL(admin_listen), "127.0.0.1:8081", 1, 64, NULL},
    {"admin", "metrics_public", K_BOOL, F(admin_metrics_public), "no", 0, 0, NULL},

    {"log", "level", K_CHOICE, F(log_level), "info", 0, 0, "error|warn|info|debug"},
    {"log", "syslog_facility", K_CHOICE, F(log_syslog_facility), "daemon", 0, 0,
     "daemon|user|mail|auth|authpriv|local0|local1|local2|local3|local4|local5|local6|local7"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The state of one load: where we are in the file and the first error. */
struct load {
	struct abq_config *c;
	const char *file;
	FILE *fp;
	int lineno;
	int seen[NKEYS]; /* line of each key's first occurrence, 0 if not yet */
	char *error;     /* the first error, complete ("FILE:LINE: ..."), or NULL */
};

/* The address of a key's field in c. */
static void *
field(struct abq_config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

/* The address of a list key's item count in c. */
static size_t *
count_field(struct abq_config *c, const struct key *k)
{
	return (size_t *)((char *)c + k->count_offset);
}

/* Whether values of this type accumulate (repeated key, several per line). */
static bool
is_list(enum key_type t)
{
	return t == K_URLPATHS || t == K_LISTEN || t == K_CIDRS || t == K_ADDRESSES;
}

/*
 * Empty a list field, freeing what it holds: the first occurrence of a list
 * key in the file replaces the default instead of adding to it.
 */
static void
list_clear(struct abq_config *c, const struct key *k)
{
	size_t *n = count_field(c, k);

	if (k->type == K_LISTEN) {
		struct abq_listen **l = field(c, k);

		for (size_t i = 0; i < *n; i++) {
			free((*l)[i].host);
			free((*l)[i].port);
		}
		free(*l);
		*l = NULL;
	} else if (k->type == K_CIDRS) {
		struct abq_cidr **l = field(c, k);

		free(*l);
		*l = NULL;
	} else {
		char ***l = field(c, k);

		for (size_t i = 0; i < *n; i++)
			free((*l)[i]);
		free(*l);
		*l = NULL;
	}
	*n = 0;
}

/* Replace a string field, freeing (and for secrets first wiping) the old value. */
static void
set_string(char **dst, char *s)
{
	if (*dst != NULL) {
		explicit_bzero(*dst, strlen(*dst));
		free(*dst);
	}
	*dst = s;
}

/* Whether s holds a control character or white space (bytes <= 0x20, DEL). */
static bool
has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

/*
 * Split a list value at commas and white space and hand each item to fn.
 * Empty items (",,", trailing commas) are skipped, so that both
 * "a, b" and "a b" mean two items.
 */
static int
for_each_item(const char *value,
              int (*fn)(struct abq_config *, const struct key *, const char *, char **),
              struct abq_config *c, const struct key *k, char **err)
{
	const char *p = value;

	while (*p) {
		size_t len = strcspn(p, ", \t");

		if (len > 0) {
			char *item = xstrndup(p, len);
			int r = fn(c, k, item, err);

			free(item);
			if (r < 0)
				return -1;
		}
		p += len;
		p += strspn(p, ", \t");
	}
	return 0;
}

/* Check a list is not growing past the row's maximum before adding one more item. */
static int
list_room(struct abq_config *c, const struct key *k, char **err)
{
	if ((int64_t)*count_field(c, k) >= k->max) {
		*err = xasprintf("too many values (at most %lld)", (long long)k->max);
		return -1;
	}
	return 0;
}

/*
 * Whether host is a plausible host name or IPv4 address: letters, digits,
 * '-' and '.'; an all-numeric name must be a valid dotted quad.
 */
static bool
host_valid(const char *host)
{
	bool numeric = true;
	struct in_addr a4;

	if (*host == '\0' || strlen(host) > 253)
		return false;
	for (const char *p = host; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
		if (isalpha((unsigned char)*p) || *p == '-')
			numeric = false;
	}
	return !numeric || inet_pton(AF_INET, host, &a4) == 1;
}

/*
 * Parse one listen address: "[tls:]HOST:PORT" with an IPv6 HOST in brackets
 * ("[::1]:8080"). The port is kept as the canonical decimal string that
 * getaddrinfo() wants.
 */
static int
add_listen(struct abq_config *c, const struct key *k, const char *item, char **err)
{
	struct abq_listen **l = field(c, k);
	size_t *n = count_field(c, k);
	const char *p = item, *colon, *errstr;
	char *host = NULL;
	struct in6_addr a6;
	bool tls = false;
	long long port;

	if (list_room(c, k, err) < 0)
		return -1;
	if (strncasecmp(p, "tls:", 4) == 0) {
		tls = true;
		p += 4;
	}
	if (*p == '[') {
		const char *close = strchr(p, ']');

		if (close == NULL || close[1] != ':') {
			*err = xasprintf("'%s' is not HOST:PORT ([ADDRESS]:PORT for IPv6)", item);
			return -1;
		}
		host = xstrndup(p + 1, (size_t)(close - p - 1));
		colon = close + 1;
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*err = xasprintf("'%s' is not an IPv6 address", host);
			goto fail;
		}
	} else {
		colon = strrchr(p, ':');
		if (colon == NULL) {
			*err = xasprintf("'%s' is not HOST:PORT", item);
			return -1;
		}
		host = xstrndup(p, (size_t)(colon - p));
		if (strchr(host, ':') != NULL) {
			*err =
			    xasprintf("'%s': an IPv6 address goes in brackets ([::1]:8080)", item);
			goto fail;
		}
		if (!host_valid(host)) {
			*err = xasprintf("'%s' is not a host name or address", host);
			goto fail;
		}
	}
	if (colon[1] < '0' || colon[1] > '9' ||
	    parse_int(colon + 1, 1, 65535, &port, &errstr) < 0) {
		*err = xasprintf("'%s': the port must be a number from 1 to 65535", item);
		goto fail;
	}
	*l = xrealloc(*l, (*n + 1) * sizeof(**l));
	(*l)[*n].host = host;
	(*l)[*n].port = xasprintf("%lld", port);
	(*l)[*n].tls = tls;
	(*n)++;
	return 0;
fail:
	free(host);
	return -1;
}

/*
 * Parse one network: "10.0.0.0/8", "fd00::/8", or a single address (a /32 or
 * /128). Bits beyond the prefix are cleared so that matching can compare
 * bytes directly.
 */
static int
add_cidr(struct abq_config *c, const struct key *k, const char *item, char **err)
{
	struct abq_cidr **l = field(c, k);
	size_t *n = count_field(c, k);
	struct abq_cidr net;
	const char *slash = strchr(item, '/'), *errstr;
	char *addr;
	unsigned bits;
	long long prefix;

	if (list_room(c, k, err) < 0)
		return -1;
	memset(&net, 0, sizeof(net));
	addr = slash ? xstrndup(item, (size_t)(slash - item)) : xstrdup(item);
	if (inet_pton(AF_INET, addr, net.addr) == 1) {
		net.family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, addr, net.addr) == 1) {
		net.family = AF_INET6;
		bits = 128;
	} else {
		*err = xasprintf("'%s' is not an address or network (10.0.0.0/8, fd00::/8)", item);
		free(addr);
		return -1;
	}
	free(addr);
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' ||
		    parse_int(slash + 1, 0, bits, &prefix, &errstr) < 0) {
			*err = xasprintf("'%s': the prefix length must be 0 to %u", item, bits);
			return -1;
		}
		net.prefix = (unsigned)prefix;
	} else
		net.prefix = bits;
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned keep = net.prefix > i * 8 ? net.prefix - i * 8 : 0;

		if (keep < 8)
			net.addr[i] &= (unsigned char)(0xff00u >> keep);
	}
	*l = xrealloc(*l, (*n + 1) * sizeof(**l));
	(*l)[*n] = net;
	(*n)++;
	return 0;
}

/*
 * Whether s is a plain mail address: LOCAL@DOMAIN, both parts non-empty, one
 * '@', no white space and none of the characters that would need quoting in
 * a mail header.
 */
static bool
address_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	if (has_space_or_control(s) || strpbrk(s, "<>()[],;:\"\\") != NULL)
		return false;
	return true;
}

/* Append one mail address to a list. */
static int
add_address(struct abq_config *c, const struct key *k, const char *item, char **err)
{
	char ***l = field(c, k);
	size_t *n = count_field(c, k);

	if (list_room(c, k, err) < 0)
		return -1;
	if (!address_valid(item)) {
		*err = xasprintf("'%s' is not a mail address", item);
		return -1;
	}
	*l = xrealloc(*l, (*n + 1) * sizeof(**l));
	(*l)[(*n)++] = xstrdup(item);
	return 0;
}

/* Whether s is an HTTP request path: starts with '/', no white space. */
static bool
urlpath_valid(const char *s)
{
	return s[0] == '/' && !has_space_or_control(s);
}

/* Append one HTTP path to a list. */
static int
add_urlpath(struct abq_config *c, const struct key *k, const char *item, char **err)
{
	char ***l = field(c, k);
	size_t *n = count_field(c, k);

	if (list_room(c, k, err) < 0)
		return -1;
	if (!urlpath_valid(item)) {
		*err = xasprintf("'%s' is not a path (it starts with '/')", item);
		return -1;
	}
	*l = xrealloc(*l, (*n + 1) * sizeof(**l));
	(*l)[(*n)++] = xstrdup(item);
	return 0;
}

/*
 * A public URL (K_PUBURL): "http://" or "https://" (any case), a host of
 * letters, digits, '-', '.', '_' or a bracketed IPv6 address, an optional
 * port (1-65535), then a path. Only bytes that may stand in a URL's path
 * as they are (RFC 3986 unreserved, sub-delims but ''', ':', '@', '/', '%'),
 * so that the URL goes into XML and JSON answers as it is written; no user
 * name, query or fragment. Returns NULL, or what is wrong.
 */
static const char *
puburl_error(const char *v)
{
	const char *p, *host;
	size_t n;

	if (strncasecmp(v, "https://", 8) == 0)
		p = v + 8;
	else if (strncasecmp(v, "http://", 7) == 0)
		p = v + 7;
	else
		return "does not start with http:// or https://";
	host = p;
	if (*p == '[') {
		n = strspn(p + 1, "0123456789abcdefABCDEF:.");
		if (n == 0 || p[1 + n] != ']')
			return "has a malformed [IPv6] host";
		p += n + 2;
	} else {
		p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._");
		if (p == host)
			return "has no host";
	}
	if (*p == ':') {
		long port = 0;
		n = strspn(p + 1, "0123456789");
		for (size_t i = 0; i < n && i < 6; i++)
			port = port * 10 + (p[1 + i] - '0');
		if (n == 0 || n > 5 || port == 0 || port > 65535)
			return "has a malformed port";
		p += n + 1;
	}
	if (*p != '/')
		return *p == '@' ? "has a user name (not allowed)" : "has no path after the host";
	for (; *p != '\0'; p++) {
		if (*p == '?' || *p == '#')
			return "has a query or fragment (not allowed)";
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
		           "!$&()*+,;=:@/%",
		           *p) == NULL)
			return "holds a byte that is not allowed in a URL path";
	}
	return NULL;
}

/*
 * Check value against a K_CHOICE row. Entries without ':' are words that
 * must match whole (case-insensitively; the table's spelling is kept).
 * Entries with ':' are URL prefixes: the value must start with one and go on
 * without white space, and after "scheme://" a host must follow. Returns the
 * value to store, or NULL with *err.
 */
static char *
parse_choice(const struct key *k, const char *value, char **err)
{
	const char *p = k->choices;
	char words[256] = "", prefixes[256] = "";

	while (*p) {
		size_t len = strcspn(p, "|");
		bool prefix = memchr(p, ':', len) != NULL;
		char *list = prefix ? prefixes : words;
		size_t used = strlen(list);

		snprintf(list + used, sizeof(words) - used, "%s%.*s", used ? ", " : "", (int)len,
		         p);
		if (prefix) {
			bool slashes = len >= 2 && p[len - 1] == '/' && p[len - 2] == '/';

			if (strncasecmp(value, p, len) == 0 && value[len] != '\0' &&
			    !has_space_or_control(value) &&
			    !(slashes && (value[len] == '/' || value[len] == ':')))
				return xstrdup(value);
		} else if (strlen(value) == len && strncasecmp(value, p, len) == 0)
			return xstrndup(p, len);
		p += len;
		if (*p == '|')
			p++;
	}
	if (*prefixes == '\0')
		*err = xasprintf("'%s' is not one of %s", value, words);
	else
		*err = xasprintf("'%s' is not %s%sa URL starting with %s", value, words,
		                 *words ? " or " : "", prefixes);
	return NULL;
}

/* Print a byte count with the largest exact binary unit (for error messages). */
static const char *
format_size(int64_t n, char buf[32])
{
	static const char units[] = "GMK";
	static const int64_t factors[] = {GIB, 1024 * 1024, KIB};

	for (int i = 0; i < 3; i++)
		if (n != 0 && n % factors[i] == 0) {
			snprintf(buf, 32, "%lld%c", (long long)(n / factors[i]), units[i]);
			return buf;
		}
	snprintf(buf, 32, "%lld", (long long)n);
	return buf;
}

/* The error for a number outside [min, max], spelled in the key's own units. */
static char *
range_error(const struct key *k, const char *value, int64_t v)
{
	char b[32];
	bool low = v < k->min;
	int64_t bound = low ? k->min : k->max;
	const char *what = low ? "too small (at least" : "too large (at most";

	if (k->type == K_DURATION)
		return xasprintf("'%s' is %s %s)", value, what, format_duration(bound, b));
	if (k->type == K_SIZE)
		return xasprintf("'%s' is %s %s)", value, what, format_size(bound, b));
	return xasprintf("'%s' is %s %lld)", value, what, (long long)bound);
}

/*
 * Parse value according to k and store it in c. List types append (the
 * caller clears the default first). Returns 0, or -1 with *err set to a new
 * string saying what is wrong with the value.
 */
static int
set_value(struct abq_config *c, const struct key *k, const char *value, char **err)
{
	const char *errstr;
	long long ll;
	int64_t v;
	char *s;

	switch (k->type) {
	case K_STRING:
		set_string(field(c, k), *value ? xstrdup(value) : NULL);
		return 0;
	case K_PATH:
		if (*value == '\0')
			s = NULL;
		else if (value[0] == '/')
			s = xstrdup(value);
		else
			s = xasprintf("%s/%s", c->base_dir, value);
		set_string(field(c, k), s);
		return 0;
	case K_URLPATH:
		if (!urlpath_valid(value)) {
			*err = xasprintf("'%s' is not a path (it starts with '/')", value);
			return -1;
		}
		set_string(field(c, k), xstrdup(value));
		return 0;
	case K_DOMAIN:
		if (*value != '\0' && (has_space_or_control(value) || strpbrk(value, "@/") ||
		                       value[0] == '.' || strlen(value) > 253)) {
			*err = xasprintf("'%s' is not a domain name", value);
			return -1;
		}
		set_string(field(c, k), *value ? str_lower(xstrdup(value)) : NULL);
		return 0;
	case K_ADDRESS:
		if (*value != '\0' && !address_valid(value)) {
			*err = xasprintf("'%s' is not a mail address", value);
			return -1;
		}
		set_string(field(c, k), *value ? xstrdup(value) : NULL);
		return 0;
	case K_PUBURL: {
		const char *why = *value != '\0' ? puburl_error(value) : NULL;

		if (why != NULL) {
			*err = xasprintf("'%s' %s (an absolute URL ending in the [eas] path, like "
			                 "https://mail.example.com/Microsoft-Server-ActiveSync)",
			                 value, why);
			return -1;
		}
		set_string(field(c, k), *value ? xstrdup(value) : NULL);
		return 0;
	}
	case K_CHOICE:
		if ((s = parse_choice(k, value, err)) == NULL)
			return -1;
		set_string(field(c, k), s);
		return 0;
	case K_BOOL: {
		static const char *yes[] = {"yes", "true", "on", "1"};
		static const char *no[] = {"no", "false", "off", "0"};

		for (size_t i = 0; i < 4; i++) {
			if (str_ieq(value, yes[i]) || str_ieq(value, no[i])) {
				*(bool *)field(c, k) = str_ieq(value, yes[i]);
				return 0;
			}
		}
		*err = xasprintf("'%s' is not yes or no", value);
		return -1;
	}
	case K_WORKERS:
		if (str_ieq(value, "auto")) {
			*(int64_t *)field(c, k) = 0;
			return 0;
		}
		/* FALLTHROUGH */
	case K_INT:
		if (parse_int(value, INT64_MIN, INT64_MAX, &ll, &errstr) < 0) {
			*err = xasprintf("'%s' is %s%s", value, errstr,
			                 k->type == K_WORKERS ? " (use auto or a number)" : "");
			return -1;
		}
		v = ll;
		goto bounds;
	case K_DURATION:
		if (parse_duration(value, &v, &errstr) < 0) {
			*err = xasprintf("'%s' is %s", value, errstr);
			return -1;
		}
		goto bounds;
	case K_SIZE:
		if (parse_size(value, &v, &errstr) < 0) {
			*err = xasprintf("'%s' is %s", value, errstr);
			return -1;
		}
		goto bounds;
	case K_LISTEN:
		if (for_each_item(value, add_listen, c, k, err) < 0)
			return -1;
		if ((int64_t)*count_field(c, k) < k->min) {
			*err = xasprintf("needs at least one address");
			return -1;
		}
		return 0;
	case K_CIDRS:
		return for_each_item(value, add_cidr, c, k, err);
	case K_ADDRESSES:
		return for_each_item(value, add_address, c, k, err);
	case K_URLPATHS:
		return for_each_item(value, add_urlpath, c, k, err);
	}
	*err = xasprintf("internal error: key type %d", (int)k->type);
	return -1;
bounds:
	if (v < k->min || v > k->max) {
		*err = range_error(k, value, v);
		return -1;
	}
	*(int64_t *)field(c, k) = v;
	return 0;
}

/* The table row for section/name (case-insensitive), or NULL. */
static const struct key *
key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (str_ieq(keys[i].section, section) && str_ieq(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* The canonical spelling of a section, or NULL if the table has no such section. */
static const char *
section_find(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (str_ieq(keys[i].section, section))
			return keys[i].section;
	return NULL;
}

/* Record the first error of a load as "FILE:LINE: message". */
static void load_error(struct load *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
load_error(struct load *ld, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ld->error != NULL)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	ld->error = xasprintf("%s:%d: %s", ld->file, ld->lineno, msg);
	free(msg);
}

/*
 * inih's line reader: hand over the next line of the file, counting lines
 * for error messages and checking section headers against the table. An
 * over-long line is an error rather than being split (fgets would), and a
 * recorded error ends the parse by reporting end of file.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	char *line = NULL, *p;
	size_t cap = 0;
	ssize_t len;

	if (ld->error != NULL)
		return NULL;
	errno = 0;
	len = getline(&line, &cap, ld->fp);
	if (len < 0) {
		if (errno != 0 && ferror(ld->fp))
			ld->error = xasprintf("%s: %s", ld->file, strerror(errno));
		free(line);
		return NULL;
	}
	ld->lineno++;
	if (len > MAX_LINE || (size_t)len + 1 > (size_t)num) {
		load_error(ld, "line too long (at most %d bytes)", MAX_LINE);
		free(line);
		return NULL;
	}
	p = line;
	if (ld->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	p += strspn(p, " \t");
	if (*p == '[') {
		size_t n = strcspn(p + 1, "]\r\n");

		if (p[1 + n] == ']') {
			char *name = xstrndup(p + 1, n);

			if (section_find(name) == NULL)
				load_error(ld, "unknown section [%s]", name);
			free(name);
		}
	}
	memcpy(str, line, (size_t)len + 1);
	free(line);
	return ld->error != NULL ? NULL : str;
}

/*
 * inih's handler: one "key = value" of the file. Finds the row, refuses
 * unknown keys and repeated scalar keys, and parses the value into the
 * config. Returns 1 to go on, 0 to stop at an error.
 */
static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	const struct key *k;
	const char *sec;
	char *err = NULL;
	size_t i;

	if (*section == '\0') {
		load_error(ld, "key '%s' is outside any section", name);
		return 0;
	}
	if ((sec = section_find(section)) == NULL) {
		load_error(ld, "unknown section [%s]", section);
		return 0;
	}
	if ((k = key_find(section, name)) == NULL) {
		load_error(ld, "unknown key '%s' in [%s]", name, sec);
		return 0;
	}
	i = (size_t)(k - keys);
	if (ld->seen[i] != 0 && !is_list(k->type)) {
		load_error(ld, "[%s] %s: given twice (first on line %d)", k->section, k->name,
		           ld->seen[i]);
		return 0;
	}
	if (ld->seen[i] == 0) {
		ld->seen[i] = ld->lineno;
		if (is_list(k->type))
			list_clear(ld->c, k);
	}
	if (set_value(ld->c, k, value, &err) < 0) {
		load_error(ld, "[%s] %s: %s", k->section, k->name, err);
		free(err);
		return 0;
	}
	return 1;
}

/* Brackets around an IPv6 host when a listen address is printed back. */
#define OPEN_BRACKET(l)  (strchr((l)->host, ':') ? "[" : "")
#define CLOSE_BRACKET(l) (strchr((l)->host, ':') ? "]" : "")

/* The first tls: address of a listen list, or NULL. */
static const struct abq_listen *
first_tls(const struct abq_listen *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].tls)
			return &l[i];
	return NULL;
}

/* The line where the key section/name was given, for checks across keys. */
static int
seen_line(const struct load *ld, const char *section, const char *name)
{
	return ld->seen[key_find(section, name) - keys];
}

/*
 * Checks that involve several keys, made once the whole file is read: TLS
 * listeners need a certificate and key, which go together, and abqd needs an
 * upstream.
 */
static void
check_config(struct load *ld, bool require_upstream)
{
	struct abq_config *c = ld->c;
	const struct abq_listen *t;

	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		bool has_cert = c->tls_cert != NULL;

		ld->lineno = seen_line(ld, "tls", has_cert ? "cert" : "key");
		load_error(ld, "[tls] %s: needs [tls] %s too", has_cert ? "cert" : "key",
		           has_cert ? "key" : "cert");
		return;
	}
	if (c->tls_cert == NULL) {
		if ((t = first_tls(c->eas_listen, c->eas_listen_count)) != NULL) {
			ld->lineno = seen_line(ld, "eas", "listen");
			load_error(ld, "[eas] listen: tls:%s%s%s:%s needs [tls] cert and key",
			           OPEN_BRACKET(t), t->host, CLOSE_BRACKET(t), t->port);
			return;
		}
		if ((t = first_tls(c->admin_listen, c->admin_listen_count)) != NULL) {
			ld->lineno = seen_line(ld, "admin", "listen");
			load_error(ld, "[admin] listen: tls:%s%s%s:%s needs [tls] cert and key",
			           OPEN_BRACKET(t), t->host, CLOSE_BRACKET(t), t->port);
			return;
		}
	}
	if (c->eas_public_url != NULL) {
		/* The path of the URL, after "scheme://host[:port]". */
		const char *path = strchr(strstr(c->eas_public_url, "://") + 3, '/');
		size_t plen = strlen(path), elen = strlen(c->eas_path);

		/*
		 * As the EAS path is matched: without case, one trailing '/' allowed;
		 * a reverse proxy may put it under a prefix of its own.
		 */
		if (plen > 1 && path[plen - 1] == '/' && c->eas_path[elen - 1] != '/')
			plen--;
		if (plen < elen || strncasecmp(path + plen - elen, c->eas_path, elen) != 0) {
			ld->lineno = seen_line(ld, "eas", "public_url");
			load_error(ld, "[eas] public_url: '%s' does not end in the [eas] path %s",
			           c->eas_public_url, c->eas_path);
			return;
		}
	}
	if (!abq_config_native(c)) {
		static const char *const native_only[] = {"submission",
		                                          "max_connections_per_account", "gal",
		                                          "gal_bind_dn", "gal_bind_password"};
		for (size_t i = 0; i < sizeof(native_only) / sizeof(native_only[0]); i++) {
			if ((ld->lineno = seen_line(ld, "upstream", native_only[i])) == 0)
				continue;
			load_error(ld,
			           "[upstream] %s: only with an imap:// or imaps:// [upstream] url",
			           native_only[i]);
			return;
		}
	}
	if ((c->upstream_gal_bind_dn != NULL || c->upstream_gal_bind_password != NULL) &&
	    c->upstream_gal == NULL) {
		ld->lineno = seen_line(
		    ld, "upstream", c->upstream_gal_bind_dn ? "gal_bind_dn" : "gal_bind_password");
		load_error(ld, "[upstream] %s: only with [upstream] gal",
		           c->upstream_gal_bind_dn ? "gal_bind_dn" : "gal_bind_password");
		return;
	}
	if ((c->upstream_gal_bind_dn == NULL) != (c->upstream_gal_bind_password == NULL)) {
		ld->lineno = seen_line(
		    ld, "upstream", c->upstream_gal_bind_dn ? "gal_bind_dn" : "gal_bind_password");
		load_error(ld, "[upstream] gal_bind_dn and gal_bind_password go together");
		return;
	}
	if (require_upstream && c->upstream_url == NULL)
		ld->error = xasprintf("%s: [upstream] url is required", ld->file);
}

/*
 * Native mode: abqd answers ActiveSync itself from the IMAP server the
 * [upstream] url names, instead of proxying to an ActiveSync server.
 */
bool
abq_config_native(const struct abq_config *cfg)
{
	const char *u = cfg->upstream_url;
	return u != NULL &&
	       (strncasecmp(u, "imap://", 7) == 0 || strncasecmp(u, "imaps://", 8) == 0);
}

/*
 * A config holding every default, with base_dir as the folder relative paths
 * are resolved against (the current directory if NULL).
 */
struct abq_config *
abq_config_defaults(const char *base_dir)
{
	struct abq_config *c = xcalloc(1, sizeof(*c));

	if (base_dir != NULL)
		c->base_dir = xstrdup(base_dir);
	else {
		char *cwd = getcwd(NULL, 0);

		c->base_dir = xstrdup(cwd != NULL ? cwd : "/");
		free(cwd);
	}
	for (size_t i = 0; i < NKEYS; i++) {
		char *err = NULL;

		if (keys[i].def == NULL)
			continue;
		if (set_value(c, &keys[i], keys[i].def, &err) < 0)
			fatalx("bad default for [%s] %s: %s", keys[i].section, keys[i].name, err);
	}
	return c;
}

/*
 * The absolute folder of the file at path, for resolving the relative paths
 * it holds. realpath() of the folder, so that symlinks and ".." are settled
 * once here.
 */
static char *
folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *abs;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	abs = realpath(dir, NULL);
	free(dir);
	if (abs == NULL)
		return NULL;
	dir = xstrdup(abs);
	free(abs);
	return dir;
}

/*
 * Read the config file at path: defaults first, then every key of the file
 * through the table, then the checks across keys. inih's process-wide
 * options are set for our syntax (no multi-line values, inline ';' comments
 * after white space, long lines) and restored afterwards.
 */
struct abq_config *
abq_config_load(const char *path, bool require_upstream, char **errmsg_r)
{
	struct load ld;
	struct stat st;
	char *base = NULL;
	bool s_multiline = ini_allow_multiline, s_inline = ini_allow_inline_comments;
	bool s_stack = ini_use_stack, s_realloc = ini_allow_realloc,
	     s_stop = ini_stop_on_first_error;
	bool s_novalue = ini_allow_no_value;
	char *s_prefixes = ini_inline_comment_prefixes;
	int s_maxline = ini_max_line, s_initial = ini_initial_alloc;
	int r;

	memset(&ld, 0, sizeof(ld));
	*errmsg_r = NULL;
	ld.file = path;
	if ((ld.fp = fopen(path, "r")) == NULL) {
		*errmsg_r = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(ld.fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		*errmsg_r = xasprintf("%s: %s", path, strerror(EISDIR));
		fclose(ld.fp);
		return NULL;
	}
	if ((base = folder_of(path)) == NULL) {
		*errmsg_r = xasprintf("%s: %s", path, strerror(errno));
		fclose(ld.fp);
		return NULL;
	}
	ld.c = abq_config_defaults(base);
	free(base);
	ld.c->path = xstrdup(path);

	ini_allow_multiline = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = ";";
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = MAX_LINE + 3;
	ini_initial_alloc = MAX_LINE + 3; /* Debian's inih sizes the heap buffer by this */
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
	r = ini_parse_stream(read_line, &ld, on_key, &ld);
	ini_allow_multiline = s_multiline;
	ini_allow_inline_comments = s_inline;
	ini_inline_comment_prefixes = s_prefixes;
	ini_use_stack = s_stack;
	ini_allow_realloc = s_realloc;
	ini_max_line = s_maxline;
	ini_initial_alloc = s_initial;
	ini_stop_on_first_error = s_stop;
	ini_allow_no_value = s_novalue;
	fclose(ld.fp);

	if (ld.error == NULL && r > 0) {
		ld.lineno = r;
		load_error(&ld, "syntax error (expected [section] or key = value)");
	} else if (ld.error == NULL && r < 0)
		ld.error = xasprintf("%s: cannot read the file", path);
	if (ld.error == NULL)
		check_config(&ld, require_upstream);
	if (ld.error != NULL) {
		*errmsg_r = ld.error;
		abq_config_free(&ld.c);
		return NULL;
	}
	return ld.c;
}

/*
 * Free a config and everything it holds, walking the key table so that no
 * field is forgotten. Secrets are wiped before their memory goes back to the
 * allocator.
 */
void
abq_config_free(struct abq_config **cp)
{
	struct abq_config *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	if (c->smtp_password != NULL)
		explicit_bzero(c->smtp_password, strlen(c->smtp_password));
	if (c->upstream_gal_bind_password != NULL)
		explicit_bzero(c->upstream_gal_bind_password,
		               strlen(c->upstream_gal_bind_password));
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];

		if (is_list(k->type))
			list_clear(c, k);
		else if (k->type != K_BOOL && k->type != K_INT && k->type != K_WORKERS &&
		         k->type != K_DURATION && k->type != K_SIZE)
			set_string(field(c, k), NULL);
	}
	free(c->path);
	free(c->base_dir);
	explicit_bzero(c, sizeof(*c));
	free(c);
	*cp = NULL;
}

/* The config file to read: -c, else $ABQD_CONFIG, else the system file. */
const char *
abq_config_path(const char *arg)
{
	const char *env;

	if (arg != NULL && *arg != '\0')
		return arg;
	env = getenv("ABQD_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return DEFAULT_CONFIG_PATH;
}
