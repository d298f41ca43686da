/*
 * config.h: abqd.conf, the INI file shared by abqd and abqctl.
 *
 * inih reads the file; a table of typed keys (section, name, type, offset,
 * default, bounds) validates every value, so that adding a key is one line in
 * config.c. Unknown sections or keys and bad values are errors naming the file,
 * the line and the reason. Relative paths are relative to the config file's
 * folder (config->base_dir).
 */
#ifndef ABQ_CONFIG_H
#define ABQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One "listen" value: "127.0.0.1:8080", "[::1]:8080", "tls:0.0.0.0:443". */
struct abq_listen {
	char *host; /* numeric address or host name */
	char *port;
	bool tls;
};

/* An IPv4 or IPv6 network for trusted_proxies. */
struct abq_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

/*
 * The loaded configuration. A string key that is not set (no default, or
 * given empty: "username =") is NULL. Durations are in seconds, sizes in
 * bytes. Relative [tls] and [upstream] file names are already resolved
 * against base_dir; [store] url is kept as written (the store resolves
 * "sqlite:RELATIVE" against base_dir itself). Listen ports are canonical
 * decimal strings; CIDRs have the bits past the prefix cleared.
 */
struct abq_config {
	char *path;     /* the file read, as given (NULL for abq_config_defaults) */
	char *base_dir; /* its folder, absolute */

	/* [eas] */
	struct abq_listen *eas_listen;
	size_t eas_listen_count;
	char *eas_path;
	/* The EAS URL phones are told by Autodiscover (ends in eas_path), or NULL. */
	char *eas_public_url;
	char *eas_default_domain; /* lower-cased */
	char **eas_passthrough;
	size_t eas_passthrough_count;
	struct abq_cidr *eas_trusted_proxies;
	size_t eas_trusted_proxies_count;
	char *eas_user;
	int64_t eas_workers; /* 0: auto (one per core) */
	int64_t eas_max_body;
	int64_t eas_max_body_total; /* all bodies being read at once, per worker */
	int64_t eas_header_timeout;
	int64_t eas_max_connections_per_address;

	/* [tls] */
	char *tls_cert;
	char *tls_key;

	/* [upstream] */
	char *upstream_url;        /* http(s)://: proxy mode; imap(s)://: native mode */
	char *upstream_submission; /* native mode: smtp:// or smtps://, or NULL */
	int64_t
	    upstream_max_connections_per_account; /* native mode: IMAP connections per account */
	char *upstream_caldav;  /* native mode: calendars and tasks (http(s)://), or NULL */
	char *upstream_carddav; /* native mode: address books (http(s)://), or NULL */
	int64_t
	    upstream_dav_poll_interval; /* native mode: seconds between a held Ping's DAV polls */
	int64_t upstream_dav_max_age; /* native mode: seconds a look at a collection serves Syncs */
	char *upstream_gal;           /* native mode: ldap:// or ldaps:// URL, or NULL */
	char *upstream_gal_bind_dn;   /* NULL: anonymous */
	char *upstream_gal_bind_password; /* with gal_bind_dn */
	char *upstream_ca_file;
	int64_t upstream_connect_timeout;
	int64_t upstream_request_timeout;

	/* [auth] */
	char *auth_method; /* "upstream" or an imap:// / imaps:// URL */
	int64_t auth_cache_ttl;
	int64_t auth_failure_ttl;
	int64_t auth_max_failures_per_address;
	int64_t auth_max_failures_per_account;
	int64_t auth_max_probes_per_address; /* credential checks in flight */
	int64_t auth_max_probes_per_account;

	/* [store] */
	char *store_url;
	int64_t store_grace; /* seconds a node serves known devices after losing the store */

	/* [smtp] */
	char *smtp_url;
	bool smtp_starttls;
	char *smtp_from;
	char **smtp_admins;
	size_t smtp_admins_count;
	char *smtp_domain;
	char *smtp_username;
	char *smtp_password;

	/* [admin] */
	struct abq_listen *admin_listen;
	size_t admin_listen_count;
	bool admin_metrics_public;

	/* [log] */
	char *log_level; /* error|warn|info|debug */
	char *log_syslog_facility;
};

/*
 * Read path into a new config. Every key has its default first. Returns NULL
 * with *errmsg_r (a new string: "FILE:LINE: reason") on any error.
 * require_upstream: abqd needs [upstream] url; abqctl does not.
 */
/* Native mode: [upstream] url is imap:// or imaps:// (abqd serves ActiveSync itself). */
bool abq_config_native(const struct abq_config *cfg);
struct abq_config *abq_config_load(const char *path, bool require_upstream, char **errmsg_r);
/*
 * Defaults only, with base_dir as the folder (abqctl without a config file);
 * a NULL base_dir means the current directory.
 */
struct abq_config *abq_config_defaults(const char *base_dir);
/* Free *c and all it holds (wiping smtp_password first); sets *c to NULL. */
void abq_config_free(struct abq_config **c);

/*
 * The config file to use: the -c argument if given, else $ABQD_CONFIG, else
 * /etc/abqd/abqd.conf.
 */
const char *abq_config_path(const char *arg);

#endif
