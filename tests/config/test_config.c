/*
 * test_config.c: abqd.conf loading (src/config/config.c).
 *
 * Each test writes a config file into a fresh temporary folder and loads it:
 * the defaults, every value type, inline comments, relative paths, and every
 * form of error message with its line number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The temporary folder of the running test and the config file in it. */
struct fixture {
	char dir[PATH_MAX];
	char file[PATH_MAX + 16];
};

/* Make a fresh folder (its real path, as base_dir will be) for one test. */
static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/abq-test-config-XXXXXX";
	char *real;

	if (mkdtemp(tmpl) == NULL)
		return -1;
	real = realpath(tmpl, NULL);
	snprintf(f->dir, sizeof(f->dir), "%s", real);
	free(real);
	snprintf(f->file, sizeof(f->file), "%s/abqd.conf", f->dir);
	*state = f;
	return 0;
}

/* Remove the test's folder and what the test wrote in it. */
static int
teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f);
	return 0;
}

/* Write text as the fixture's config file. */
static void
write_conf(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->file, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Write text and load it, expecting success. */
static struct abq_config *
load_ok(struct fixture *f, const char *text, bool require_upstream)
{
	struct abq_config *c;
	char *err = NULL;

	write_conf(f, text);
	c = abq_config_load(f->file, require_upstream, &err);
	if (c == NULL)
		fail_msg("unexpected error: %s", err);
	assert_null(err);
	return c;
}

/*
 * Write text and load it, expecting the error FILE + suffix (suffix being
 * ":LINE: reason" or ": reason").
 */
static void
load_fails(struct fixture *f, const char *text, bool require_upstream, const char *suffix)
{
	struct abq_config *c;
	char *err = NULL, *want;

	write_conf(f, text);
	c = abq_config_load(f->file, require_upstream, &err);
	want = xasprintf("%s%s", f->file, suffix);
	if (c != NULL)
		fail_msg("loaded, expected error: %s", want);
	assert_non_null(err);
	assert_string_equal(err, want);
	free(want);
	free(err);
}

/* Check c holds every documented default. */
static void
check_defaults(const struct abq_config *c)
{
	assert_int_equal(c->eas_listen_count, 1);
	assert_string_equal(c->eas_listen[0].host, "127.0.0.1");
	assert_string_equal(c->eas_listen[0].port, "8080");
	assert_false(c->eas_listen[0].tls);
	assert_string_equal(c->eas_path, "/Microsoft-Server-ActiveSync");
	assert_null(c->eas_default_domain);
	assert_null(c->eas_public_url);
	assert_int_equal(c->eas_passthrough_count, 1);
	assert_string_equal(c->eas_passthrough[0], "/autodiscover/");
	assert_int_equal(c->eas_trusted_proxies_count, 0);
	assert_null(c->eas_user);
	assert_int_equal(c->eas_workers, 0);
	assert_int_equal(c->eas_max_body, 32 * 1024 * 1024);
	assert_int_equal(c->eas_header_timeout, 30);
	assert_int_equal(c->eas_max_connections_per_address, 256);
	assert_null(c->tls_cert);
	assert_null(c->tls_key);
	assert_null(c->upstream_url);
	assert_null(c->upstream_ca_file);
	assert_int_equal(c->upstream_connect_timeout, 5);
	assert_int_equal(c->upstream_request_timeout, 120);
	assert_string_equal(c->auth_method, "upstream");
	assert_int_equal(c->auth_cache_ttl, 600);
	assert_int_equal(c->auth_failure_ttl, 30);
	assert_int_equal(c->auth_max_failures_per_address, 20);
	assert_int_equal(c->auth_max_failures_per_account, 10);
	assert_string_equal(c->store_url, "sqlite:var/abqd.db");
	assert_int_equal(c->store_grace, 300);
	assert_string_equal(c->smtp_url, "smtp://127.0.0.1:25");
	assert_false(c->smtp_starttls);
	assert_null(c->smtp_from);
	assert_int_equal(c->smtp_admins_count, 0);
	assert_null(c->smtp_domain);
	assert_null(c->smtp_username);
	assert_null(c->smtp_password);
	assert_int_equal(c->admin_listen_count, 1);
	assert_string_equal(c->admin_listen[0].host, "127.0.0.1");
	assert_string_equal(c->admin_listen[0].port, "8081");
	assert_false(c->admin_listen[0].tls);
	assert_false(c->admin_metrics_public);
	assert_string_equal(c->log_level, "info");
	assert_string_equal(c->log_syslog_facility, "daemon");
}

static void
test_defaults(void **state)
{
	struct abq_config *c = abq_config_defaults("/srv/abqd");
	char *cwd;

	assert_null(c->path);
	assert_string_equal(c->base_dir, "/srv/abqd");
	check_defaults(c);
	abq_config_free(&c);
	assert_null(c);
	abq_config_free(&c);
	abq_config_free(NULL);

	c = abq_config_defaults(NULL);
	cwd = getcwd(NULL, 0);
	assert_string_equal(c->base_dir, cwd);
	free(cwd);
	abq_config_free(&c);
}

/* An empty file (and one of comments only) means every default. */
static void
test_empty_file(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c = load_ok(f, "", false);

	check_defaults(c);
	assert_string_equal(c->path, f->file);
	assert_string_equal(c->base_dir, f->dir);
	abq_config_free(&c);

	c = load_ok(f, "; a comment\n# another\n\n[eas]\n[log]\n", false);
	check_defaults(c);
	abq_config_free(&c);
}

/* The example of interfaces.md, inline comments and all. */
static const char example[] =
    "[eas]\n"
    "listen = 127.0.0.1:8080          ; several allowed; \"tls:0.0.0.0:443\" for TLS\n"
    "path = /Microsoft-Server-ActiveSync\n"
    "default_domain = example.com     ; the domain of a bare user name\n"
    "passthrough = /autodiscover/     ; other paths proxied to the upstream untouched\n"
    "trusted_proxies = 10.0.0.0/8     ; whose X-Forwarded-For gives the client address\n"
    "user = abqd                      ; drop privileges to it after binding\n"
    "workers = auto\n"
    "max_body = 32M\n"
    "header_timeout = 30s\n"
    "max_connections_per_address = 256\n"
    "[tls]\n"
    "cert = /etc/abqd/cert.pem        ; reloaded on SIGHUP without dropping connections\n"
    "key = /etc/abqd/key.pem\n"
    "[upstream]\n"
    "url = http://127.0.0.1:20000/SOGo/Microsoft-Server-ActiveSync   ; required\n"
    "ca_file = /etc/ssl/certs/ca-certificates.crt\n"
    "connect_timeout = 5s\n"
    "request_timeout = 120s           ; for everything but held Ping/Sync\n"
    "[auth]\n"
    "method = upstream                ; or imap://127.0.0.1:143 / imaps://host\n"
    "cache_ttl = 10m\n"
    "failure_ttl = 30s\n"
    "max_failures_per_address = 20    ; per minute\n"
    "max_failures_per_account = 10    ; per minute\n"
    "[store]\n"
    "url = sqlite:var/abqd.db         ; postgresql://... for several nodes\n"
    "[smtp]\n"
    "url = smtp://127.0.0.1:25        ; smtps:// or starttls = yes\n"
    "from = mobile-admin@example.com\n"
    "admins = it@example.com, security@example.com\n"
    "domain = example.com             ; address of a bare account\n"
    "username =\n"
    "password =\n"
    "[admin]\n"
    "listen = 127.0.0.1:8081\n"
    "metrics_public = no              ; yes: /metrics needs no token\n"
    "[log]\n"
    "level = info                     ; error|warn|info|debug\n"
    "syslog_facility = daemon\n";

static void
test_example(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c = load_ok(f, example, true);
	struct in_addr a;

	assert_int_equal(c->eas_listen_count, 1);
	assert_string_equal(c->eas_listen[0].host, "127.0.0.1");
	assert_string_equal(c->eas_listen[0].port, "8080");
	assert_string_equal(c->eas_path, "/Microsoft-Server-ActiveSync");
	assert_string_equal(c->eas_default_domain, "example.com");
	assert_int_equal(c->eas_passthrough_count, 1);
	assert_string_equal(c->eas_passthrough[0], "/autodiscover/");
	assert_int_equal(c->eas_trusted_proxies_count, 1);
	assert_int_equal(c->eas_trusted_proxies[0].family, AF_INET);
	assert_int_equal(c->eas_trusted_proxies[0].prefix, 8);
	inet_pton(AF_INET, "10.0.0.0", &a);
	assert_memory_equal(c->eas_trusted_proxies[0].addr, &a, 4);
	assert_string_equal(c->eas_user, "abqd");
	assert_int_equal(c->eas_workers, 0);
	assert_string_equal(c->tls_cert, "/etc/abqd/cert.pem");
	assert_string_equal(c->tls_key, "/etc/abqd/key.pem");
	assert_string_equal(c->upstream_url,
	                    "http://127.0.0.1:20000/SOGo/Microsoft-Server-ActiveSync");
	assert_string_equal(c->upstream_ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(c->upstream_request_timeout, 120);
	assert_string_equal(c->auth_method, "upstream");
	assert_string_equal(c->store_url, "sqlite:var/abqd.db");
	assert_string_equal(c->smtp_url, "smtp://127.0.0.1:25");
	assert_string_equal(c->smtp_from, "mobile-admin@example.com");
	assert_int_equal(c->smtp_admins_count, 2);
	assert_string_equal(c->smtp_admins[0], "it@example.com");
	assert_string_equal(c->smtp_admins[1], "security@example.com");
	assert_string_equal(c->smtp_domain, "example.com");
	assert_null(c->smtp_username);
	assert_null(c->smtp_password);
	assert_string_equal(c->admin_listen[0].port, "8081");
	assert_false(c->admin_metrics_public);
	assert_string_equal(c->log_level, "info");
	abq_config_free(&c);
}

/*
 * Inline comments start at ';' after white space only; '#' starts a comment
 * only at the start of a line; values are trimmed; CRLF files work; an
 * indented key is a key, not the continuation of the one above.
 */
static void
test_syntax(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;

	c = load_ok(f,
	            "[smtp]\n"
	            "password = se;cr#et   ; the comment\n"
	            "username =    bob   \n"
	            "  # indented comment\n"
	            "    from = a@b.org\n"
	            "[eas]\r\n"
	            "user = abqd\r\n",
	            false);
	assert_string_equal(c->smtp_password, "se;cr#et");
	assert_string_equal(c->smtp_username, "bob");
	assert_string_equal(c->smtp_from, "a@b.org");
	assert_string_equal(c->eas_user, "abqd");
	abq_config_free(&c);

	/* Sections and keys are case-insensitive; a UTF-8 BOM is skipped. */
	c = load_ok(f, "\xEF\xBB\xBF[EAS]\nUser = x\n[Log]\nLEVEL = DEBUG\n", false);
	assert_string_equal(c->eas_user, "x");
	assert_string_equal(c->log_level, "debug");
	abq_config_free(&c);

	/* A section may appear twice; its keys still may not. */
	c = load_ok(f, "[eas]\nuser = a\n[log]\nlevel = warn\n[eas]\npath = /x\n", false);
	assert_string_equal(c->eas_user, "a");
	assert_string_equal(c->eas_path, "/x");
	abq_config_free(&c);

	/* "key: value" is inih's concession to Python; it works too. */
	c = load_ok(f, "[eas]\nuser: y\n", false);
	assert_string_equal(c->eas_user, "y");
	abq_config_free(&c);
}

/* Long lines are read whole up to 4096 bytes. */
static void
test_long_line(void **state)
{
	struct fixture *f = *state;
	char *text, *big = xmalloc(4000);
	struct abq_config *c;

	memset(big, 'a', 3999);
	big[3999] = '\0';
	text = xasprintf("[eas]\nuser = %s\n", big);
	c = load_ok(f, text, false);
	assert_int_equal(strlen(c->eas_user), 3999);
	abq_config_free(&c);
	free(text);

	big = xrealloc(big, 5001);
	memset(big, 'a', 5000);
	big[5000] = '\0';
	text = xasprintf("[eas]\n\nuser = %s\n", big);
	load_fails(f, text, false, ":3: line too long (at most 4096 bytes)");
	free(text);
	free(big);
}

/* Relative paths are relative to the config file's folder; others stay. */
static void
test_paths(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;
	char *want, *sub, *file, *err = NULL;

	c = load_ok(f,
	            "[tls]\ncert = certs/cert.pem\nkey = /abs/key.pem\n"
	            "[upstream]\nca_file = ../ca.pem\n"
	            "[store]\nurl = sqlite:var/other.db\n",
	            false);
	want = xasprintf("%s/certs/cert.pem", f->dir);
	assert_string_equal(c->tls_cert, want);
	free(want);
	assert_string_equal(c->tls_key, "/abs/key.pem");
	want = xasprintf("%s/../ca.pem", f->dir);
	assert_string_equal(c->upstream_ca_file, want);
	free(want);
	/* The store resolves its own URL against base_dir. */
	assert_string_equal(c->store_url, "sqlite:var/other.db");
	abq_config_free(&c);

	/* Empty means unset. */
	c = load_ok(f, "[upstream]\nca_file =\n", false);
	assert_null(c->upstream_ca_file);
	abq_config_free(&c);

	/* A config given by a relative name still gets an absolute base_dir. */
	sub = xasprintf("%s/etc", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	file = xasprintf("%s/abqd.conf", sub);
	{
		FILE *fp = fopen(file, "w");

		assert_non_null(fp);
		fputs("[tls]\ncert = c.pem\nkey = k.pem\n", fp);
		fclose(fp);
	}
	{
		char *old = getcwd(NULL, 0);

		assert_int_equal(chdir(f->dir), 0);
		c = abq_config_load("etc/abqd.conf", false, &err);
		assert_int_equal(chdir(old), 0);
		free(old);
	}
	assert_non_null(c);
	assert_string_equal(c->path, "etc/abqd.conf");
	assert_string_equal(c->base_dir, sub);
	want = xasprintf("%s/c.pem", sub);
	assert_string_equal(c->tls_cert, want);
	free(want);
	abq_config_free(&c);
	free(file);
	free(sub);
}

/* Listen addresses: several per line, repeated keys, TLS, IPv6, host names. */
static void
test_listen(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;

	c = load_ok(f,
	            "[tls]\ncert = c.pem\nkey = k.pem\n"
	            "[eas]\n"
	            "listen = 127.0.0.1:8080, [::1]:8080 tls:0.0.0.0:443\n"
	            "listen = TLS:[::]:08443,localhost:80\n"
	            "[admin]\nlisten = tls:127.0.0.1:8081\n",
	            false);
	assert_int_equal(c->eas_listen_count, 5);
	assert_string_equal(c->eas_listen[0].host, "127.0.0.1");
	assert_string_equal(c->eas_listen[0].port, "8080");
	assert_false(c->eas_listen[0].tls);
	assert_string_equal(c->eas_listen[1].host, "::1");
	assert_string_equal(c->eas_listen[1].port, "8080");
	assert_false(c->eas_listen[1].tls);
	assert_string_equal(c->eas_listen[2].host, "0.0.0.0");
	assert_string_equal(c->eas_listen[2].port, "443");
	assert_true(c->eas_listen[2].tls);
	assert_string_equal(c->eas_listen[3].host, "::");
	assert_string_equal(c->eas_listen[3].port, "8443");
	assert_true(c->eas_listen[3].tls);
	assert_string_equal(c->eas_listen[4].host, "localhost");
	assert_string_equal(c->eas_listen[4].port, "80");
	assert_int_equal(c->admin_listen_count, 1);
	assert_true(c->admin_listen[0].tls);
	abq_config_free(&c);
}

/* Trusted proxies: networks and single addresses, host bits cleared. */
static void
test_cidrs(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;
	unsigned char a[16];

	c = load_ok(f,
	            "[eas]\ntrusted_proxies = 10.1.2.3/8, 192.168.0.7 fd00::1/8\n"
	            "trusted_proxies = ::1, 172.16.255.255/12, 0.0.0.0/0\n",
	            false);
	assert_int_equal(c->eas_trusted_proxies_count, 6);
	assert_int_equal(c->eas_trusted_proxies[0].family, AF_INET);
	assert_int_equal(c->eas_trusted_proxies[0].prefix, 8);
	inet_pton(AF_INET, "10.0.0.0", a);
	assert_memory_equal(c->eas_trusted_proxies[0].addr, a, 4);
	assert_int_equal(c->eas_trusted_proxies[1].prefix, 32);
	inet_pton(AF_INET, "192.168.0.7", a);
	assert_memory_equal(c->eas_trusted_proxies[1].addr, a, 4);
	assert_int_equal(c->eas_trusted_proxies[2].family, AF_INET6);
	assert_int_equal(c->eas_trusted_proxies[2].prefix, 8);
	inet_pton(AF_INET6, "fd00::", a);
	assert_memory_equal(c->eas_trusted_proxies[2].addr, a, 16);
	assert_int_equal(c->eas_trusted_proxies[3].family, AF_INET6);
	assert_int_equal(c->eas_trusted_proxies[3].prefix, 128);
	inet_pton(AF_INET6, "::1", a);
	assert_memory_equal(c->eas_trusted_proxies[3].addr, a, 16);
	assert_int_equal(c->eas_trusted_proxies[4].prefix, 12);
	inet_pton(AF_INET, "172.16.0.0", a);
	assert_memory_equal(c->eas_trusted_proxies[4].addr, a, 4);
	assert_int_equal(c->eas_trusted_proxies[5].prefix, 0);
	inet_pton(AF_INET, "0.0.0.0", a);
	assert_memory_equal(c->eas_trusted_proxies[5].addr, a, 4);
	abq_config_free(&c);

	/* An empty value is an empty list. */
	c = load_ok(f, "[eas]\ntrusted_proxies =\n", false);
	assert_int_equal(c->eas_trusted_proxies_count, 0);
	abq_config_free(&c);
}

/* Scalars of every type, spelled every accepted way. */
static void
test_values(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *word;
		bool value;
	} bools[] = {{"yes", true}, {"no", false},  {"true", true}, {"false", false},
	             {"on", true},  {"off", false}, {"1", true},    {"0", false},
	             {"YES", true}, {"Off", false}};
	struct abq_config *c;

	for (size_t i = 0; i < NELEM(bools); i++) {
		char *text = xasprintf("[admin]\nmetrics_public = %s\n[smtp]\nstarttls = %s\n",
		                       bools[i].word, bools[i].word);

		c = load_ok(f, text, false);
		assert_int_equal(c->admin_metrics_public, bools[i].value);
		assert_int_equal(c->smtp_starttls, bools[i].value);
		abq_config_free(&c);
		free(text);
	}

	c = load_ok(f,
	            "[eas]\nworkers = 8\nmax_body = 512K\nheader_timeout = 1m\n"
	            "max_connections_per_address = 1\npath = /eas\n"
	            "default_domain = Example.COM\npassthrough = /autodiscover/, /.well-known/\n"
	            "public_url = https://[2001:db8::1]:8443/sync/eas/\n"
	            "[upstream]\nurl = https://mail.example.com/Microsoft-Server-ActiveSync\n"
	            "connect_timeout = 300\nrequest_timeout = 1h\n"
	            "[auth]\nmethod = imaps://imap.example.com:993\ncache_ttl = 0\n"
	            "failure_ttl = 1d\nmax_failures_per_address = 1000000\n"
	            "max_failures_per_account = 1\n"
	            "[store]\nurl = postgresql://abqd@db/abqd\ngrace = 10m\n"
	            "[smtp]\nurl = smtps://mail.example.com\nadmins = a@x.org b@y.org,c@z.org\n"
	            "username = bob\npassword = s3cret\n"
	            "[log]\nlevel = debug\nsyslog_facility = local3\n",
	            true);
	assert_int_equal(c->eas_workers, 8);
	assert_int_equal(c->eas_max_body, 512 * 1024);
	assert_int_equal(c->eas_header_timeout, 60);
	assert_int_equal(c->eas_max_connections_per_address, 1);
	assert_string_equal(c->eas_path, "/eas");
	assert_string_equal(c->eas_default_domain, "example.com");
	assert_int_equal(c->eas_passthrough_count, 2);
	assert_string_equal(c->eas_passthrough[1], "/.well-known/");
	assert_string_equal(c->eas_public_url, "https://[2001:db8::1]:8443/sync/eas/");
	assert_string_equal(c->upstream_url,
	                    "https://mail.example.com/Microsoft-Server-ActiveSync");
	assert_int_equal(c->upstream_connect_timeout, 300);
	assert_int_equal(c->upstream_request_timeout, 3600);
	assert_string_equal(c->auth_method, "imaps://imap.example.com:993");
	assert_int_equal(c->auth_cache_ttl, 0);
	assert_int_equal(c->auth_failure_ttl, 86400);
	assert_int_equal(c->auth_max_failures_per_address, 1000000);
	assert_int_equal(c->auth_max_failures_per_account, 1);
	assert_string_equal(c->store_url, "postgresql://abqd@db/abqd");
	assert_int_equal(c->store_grace, 600);
	assert_string_equal(c->smtp_url, "smtps://mail.example.com");
	assert_int_equal(c->smtp_admins_count, 3);
	assert_string_equal(c->smtp_admins[2], "c@z.org");
	assert_string_equal(c->smtp_username, "bob");
	assert_string_equal(c->smtp_password, "s3cret");
	assert_string_equal(c->log_level, "debug");
	assert_string_equal(c->log_syslog_facility, "local3");
	abq_config_free(&c);

	c = load_ok(f,
	            "[auth]\nmethod = imap://127.0.0.1:143\n[store]\nurl = postgres://h/db\n"
	            "[eas]\nworkers = AUTO\n",
	            false);
	assert_string_equal(c->auth_method, "imap://127.0.0.1:143");
	assert_string_equal(c->store_url, "postgres://h/db");
	assert_int_equal(c->eas_workers, 0);
	abq_config_free(&c);
	c = load_ok(f, "[eas]\nworkers = 64\n", false);
	assert_int_equal(c->eas_workers, 64);
	abq_config_free(&c);
}

/* Every bad value, with the message the administrator reads. */
static void
test_bad_values(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[eas]\nlisten = 127.0.0.1\n", ":2: [eas] listen: '127.0.0.1' is not HOST:PORT"},
	    {"[eas]\nlisten = 127.0.0.1:0\n",
	     ":2: [eas] listen: '127.0.0.1:0': the port must be a number from 1 to 65535"},
	    {"[eas]\nlisten = 127.0.0.1:65536\n",
	     ":2: [eas] listen: '127.0.0.1:65536': the port must be a number from 1 to 65535"},
	    {"[eas]\nlisten = 127.0.0.1:http\n",
	     ":2: [eas] listen: '127.0.0.1:http': the port must be a number from 1 to 65535"},
	    {"[eas]\nlisten = 127.0.0.1:-1\n",
	     ":2: [eas] listen: '127.0.0.1:-1': the port must be a number from 1 to 65535"},
	    {"[eas]\nlisten = ::1:8080\n",
	     ":2: [eas] listen: '::1:8080': an IPv6 address goes in brackets ([::1]:8080)"},
	    {"[eas]\nlisten = [::1]8080\n",
	     ":2: [eas] listen: '[::1]8080' is not HOST:PORT ([ADDRESS]:PORT for IPv6)"},
	    {"[eas]\nlisten = [1.2.3.4]:80\n",
	     ":2: [eas] listen: '1.2.3.4' is not an IPv6 address"},
	    {"[eas]\nlisten = :8080\n", ":2: [eas] listen: '' is not a host name or address"},
	    {"[eas]\nlisten = 300.1.1.1:80\n",
	     ":2: [eas] listen: '300.1.1.1' is not a host name or address"},
	    {"[eas]\nlisten = ho_st:80\n",
	     ":2: [eas] listen: 'ho_st' is not a host name or address"},
	    {"[eas]\nlisten =\n", ":2: [eas] listen: needs at least one address"},
	    {"[admin]\nlisten = tls:\n", ":2: [admin] listen: 'tls:' is not HOST:PORT"},
	    {"[eas]\ntrusted_proxies = 10.0.0.0/33\n",
	     ":2: [eas] trusted_proxies: '10.0.0.0/33': the prefix length must be 0 to 32"},
	    {"[eas]\ntrusted_proxies = ::/129\n",
	     ":2: [eas] trusted_proxies: '::/129': the prefix length must be 0 to 128"},
	    {"[eas]\ntrusted_proxies = 10.0.0.0/\n",
	     ":2: [eas] trusted_proxies: '10.0.0.0/': the prefix length must be 0 to 32"},
	    {"[eas]\ntrusted_proxies = 10.0.0.0/+8\n",
	     ":2: [eas] trusted_proxies: '10.0.0.0/+8': the prefix length must be 0 to 32"},
	    {"[eas]\ntrusted_proxies = proxy.local\n",
	     ":2: [eas] trusted_proxies: 'proxy.local' is not an address or network (10.0.0.0/8, "
	     "fd00::/8)"},
	    {"[eas]\npath = Microsoft-Server-ActiveSync\n",
	     ":2: [eas] path: 'Microsoft-Server-ActiveSync' is not a path (it starts with '/')"},
	    {"[eas]\npath =\n", ":2: [eas] path: '' is not a path (it starts with '/')"},
	    {"[eas]\npassthrough = /a/, b\n",
	     ":2: [eas] passthrough: 'b' is not a path (it starts with '/')"},
	    {"[eas]\npublic_url = mail.example.com/Microsoft-Server-ActiveSync\n",
	     ":2: [eas] public_url: 'mail.example.com/Microsoft-Server-ActiveSync' does not start "
	     "with http:// or https:// (an absolute URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https:///Microsoft-Server-ActiveSync\n",
	     ":2: [eas] public_url: 'https:///Microsoft-Server-ActiveSync' has no host (an "
	     "absolute "
	     "URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://u@mail.example.com/Microsoft-Server-ActiveSync\n",
	     ":2: [eas] public_url: 'https://u@mail.example.com/Microsoft-Server-ActiveSync' has a "
	     "user name (not allowed) (an absolute URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://mail.example.com:99999/Microsoft-Server-ActiveSync\n",
	     ":2: [eas] public_url: 'https://mail.example.com:99999/Microsoft-Server-ActiveSync' "
	     "has "
	     "a malformed port (an absolute URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://mail.example.com/Microsoft-Server-ActiveSync?x=1\n",
	     ":2: [eas] public_url: 'https://mail.example.com/Microsoft-Server-ActiveSync?x=1' has "
	     "a "
	     "query or fragment (not allowed) (an absolute URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://mail.example.com/a\"b/Microsoft-Server-ActiveSync\n",
	     ":2: [eas] public_url: 'https://mail.example.com/a\"b/Microsoft-Server-ActiveSync' "
	     "holds "
	     "a byte that is not allowed in a URL path (an absolute URL ending in the [eas] path, "
	     "like https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://mail.example.com\n",
	     ":2: [eas] public_url: 'https://mail.example.com' has no path after the host (an "
	     "absolute URL ending in the [eas] path, like "
	     "https://mail.example.com/Microsoft-Server-ActiveSync)"},
	    {"[eas]\npublic_url = https://mail.example.com/ews\n",
	     ":2: [eas] public_url: 'https://mail.example.com/ews' does not end in the [eas] path "
	     "/Microsoft-Server-ActiveSync"},
	    {"[eas]\npublic_url = https://mail.example.com/Microsoft-Server-ActiveSync\npath = "
	     "/eas\n",
	     ":2: [eas] public_url: 'https://mail.example.com/Microsoft-Server-ActiveSync' does "
	     "not "
	     "end in the [eas] path /eas"},
	    {"[eas]\ndefault_domain = a b\n",
	     ":2: [eas] default_domain: 'a b' is not a domain name"},
	    {"[eas]\ndefault_domain = x@y\n",
	     ":2: [eas] default_domain: 'x@y' is not a domain name"},
	    {"[eas]\nworkers = 0\n", ":2: [eas] workers: '0' is too small (at least 1)"},
	    {"[eas]\nworkers = 65\n", ":2: [eas] workers: '65' is too large (at most 64)"},
	    {"[eas]\nworkers = many\n",
	     ":2: [eas] workers: 'many' is not a number (use auto or a number)"},
	    {"[eas]\nmax_body = 32MB\n",
	     ":2: [eas] max_body: '32MB' is not a size (use 1048576, 512K, 32M, 1G)"},
	    {"[eas]\nmax_body = 2G\n", ":2: [eas] max_body: '2G' is too large (at most 1G)"},
	    {"[eas]\nmax_body = 100\n", ":2: [eas] max_body: '100' is too small (at least 1K)"},
	    {"[eas]\nheader_timeout = 0\n",
	     ":2: [eas] header_timeout: '0' is too small (at least 1s)"},
	    {"[eas]\nheader_timeout = 2h\n",
	     ":2: [eas] header_timeout: '2h' is too large (at most 1h)"},
	    {"[eas]\nheader_timeout = soon\n",
	     ":2: [eas] header_timeout: 'soon' is not a duration (use 0, 30s, 45m, 6h, 1d)"},
	    {"[eas]\nmax_connections_per_address = 0\n",
	     ":2: [eas] max_connections_per_address: '0' is too small (at least 1)"},
	    {"[eas]\nmax_connections_per_address = 1e3\n",
	     ":2: [eas] max_connections_per_address: '1e3' is not a number"},
	    {"[eas]\nmax_connections_per_address = 99999999999999999999\n",
	     ":2: [eas] max_connections_per_address: '99999999999999999999' is too large"},
	    {"[upstream]\nconnect_timeout = 6m\n",
	     ":2: [upstream] connect_timeout: '6m' is too large (at most 5m)"},
	    {"[upstream]\nurl = ftp://x/\n",
	     ":2: [upstream] url: 'ftp://x/' is not a URL starting with http://, https://, "
	     "imap://, imaps://"},
	    {"[upstream]\nurl = http://\n",
	     ":2: [upstream] url: 'http://' is not a URL starting with http://, https://, "
	     "imap://, imaps://"},
	    {"[upstream]\nurl = http:///path\n",
	     ":2: [upstream] url: 'http:///path' is not a URL starting with http://, https://, "
	     "imap://, imaps://"},
	    {"[upstream]\nurl =\n",
	     ":2: [upstream] url: '' is not a URL starting with http://, https://, "
	     "imap://, imaps://"},
	    {"[auth]\nmethod = ldap://x\n",
	     ":2: [auth] method: 'ldap://x' is not upstream or a URL starting with imap://, "
	     "imaps://"},
	    {"[auth]\ncache_ttl = 2d\n", ":2: [auth] cache_ttl: '2d' is too large (at most 1d)"},
	    {"[auth]\nmax_failures_per_account = 0\n",
	     ":2: [auth] max_failures_per_account: '0' is too small (at least 1)"},
	    {"[store]\nurl = mysql://db\n",
	     ":2: [store] url: 'mysql://db' is not a URL starting with sqlite:, postgresql://, "
	     "postgres://"},
	    {"[store]\nurl = sqlite:\n",
	     ":2: [store] url: 'sqlite:' is not a URL starting with sqlite:, postgresql://, "
	     "postgres://"},
	    {"[smtp]\nurl = http://x\n",
	     ":2: [smtp] url: 'http://x' is not a URL starting with smtp://, smtps://"},
	    {"[smtp]\nstarttls = maybe\n", ":2: [smtp] starttls: 'maybe' is not yes or no"},
	    {"[smtp]\nfrom = admin\n", ":2: [smtp] from: 'admin' is not a mail address"},
	    {"[smtp]\nfrom = <a@b.org>\n", ":2: [smtp] from: '<a@b.org>' is not a mail address"},
	    {"[smtp]\nadmins = a@b.org, @c.org\n",
	     ":2: [smtp] admins: '@c.org' is not a mail address"},
	    {"[smtp]\nadmins = a@b.org, c@\n", ":2: [smtp] admins: 'c@' is not a mail address"},
	    {"[smtp]\nadmins = a@b@c\n", ":2: [smtp] admins: 'a@b@c' is not a mail address"},
	    {"[admin]\nmetrics_public = 2\n", ":2: [admin] metrics_public: '2' is not yes or no"},
	    {"[log]\nlevel = verbose\n",
	     ":2: [log] level: 'verbose' is not one of error, warn, info, debug"},
	    {"[log]\nsyslog_facility = kern\n",
	     ":2: [log] syslog_facility: 'kern' is not one of daemon, user, mail, auth, authpriv, "
	     "local0, local1, local2, local3, local4, local5, local6, local7"},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("%s", cases[i].text);
		load_fails(f, cases[i].text, false, cases[i].error);
	}
}

/* A list given too many items. */
static void
test_list_limits(void **state)
{
	struct fixture *f = *state;
	char *text = xstrdup("[eas]\n");

	for (int i = 0; i < 65; i++) {
		char *more = xasprintf("%slisten = 127.0.0.1:%d\n", text, 1000 + i);

		free(text);
		text = more;
	}
	load_fails(f, text, false, ":66: [eas] listen: too many values (at most 64)");
	free(text);
}

/* Errors about the file's structure, each with its line. */
static void
test_structure_errors(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[eas]\n; comment\n\nbogus = 1\n", ":4: unknown key 'bogus' in [eas]"},
	    {"[EAS]\nBogus = 1\n", ":2: unknown key 'Bogus' in [eas]"},
	    {"[eas]\n[nope]\n", ":2: unknown section [nope]"},
	    {"[eas]\npath = /a\n\n[nope]\nkey = 1\n", ":4: unknown section [nope]"},
	    {"\n\nuser = abqd\n", ":3: key 'user' is outside any section"},
	    {"[eas]\npath = /a\n; x\npath = /b\n", ":4: [eas] path: given twice (first on line 2)"},
	    {"[eas]\npath = /a\n[log]\n[eas]\npath = /b\n",
	     ":5: [eas] path: given twice (first on line 2)"},
	    {"[smtp]\npassword = a\npassword = b\n",
	     ":3: [smtp] password: given twice (first on line 2)"},
	    {"[eas]\nuser = a\njust some words\n",
	     ":3: syntax error (expected [section] or key = value)"},
	    {"[eas\nuser = a\n", ":1: syntax error (expected [section] or key = value)"},
	    {"[eas]\npath = /a\n   /b\n", ":3: syntax error (expected [section] or key = value)"},
	    /* Checks across keys. */
	    {"[eas]\nlisten = tls:0.0.0.0:443\n",
	     ":2: [eas] listen: tls:0.0.0.0:443 needs [tls] cert and key"},
	    {"[admin]\n\nlisten = 127.0.0.1:1, tls:[::1]:8081\n",
	     ":3: [admin] listen: tls:[::1]:8081 needs [tls] cert and key"},
	    {"[tls]\ncert = c.pem\n", ":2: [tls] cert: needs [tls] key too"},
	    {"[tls]\n\nkey = k.pem\n", ":3: [tls] key: needs [tls] cert too"},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("%s", cases[i].text);
		load_fails(f, cases[i].text, false, cases[i].error);
	}
}

/* abqd needs an upstream; abqctl does not. */
static void
test_require_upstream(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;

	load_fails(f, "[eas]\nuser = a\n", true, ": [upstream] url is required");
	c = load_ok(f, "[eas]\nuser = a\n", false);
	abq_config_free(&c);
	c = load_ok(f, "[upstream]\nurl = http://h/\n", true);
	assert_string_equal(c->upstream_url, "http://h/");
	abq_config_free(&c);
}

/*
 * Native mode: an imap:// or imaps:// upstream, its submission URL and its
 * per-account connection cap (only with such a url), and their errors.
 */
static void
test_native(void **state)
{
	struct fixture *f = *state;
	struct abq_config *c;

	c = load_ok(f, "[upstream]\nurl = http://h/\n", true);
	assert_false(abq_config_native(c));
	assert_null(c->upstream_submission);
	assert_int_equal(c->upstream_max_connections_per_account, 3);
	abq_config_free(&c);
	c = load_ok(f,
	            "[upstream]\nurl = imaps://mail.example.com:993\n"
	            "submission = smtp://mail.example.com:587\nmax_connections_per_account = 100\n",
	            true);
	assert_true(abq_config_native(c));
	assert_string_equal(c->upstream_url, "imaps://mail.example.com:993");
	assert_string_equal(c->upstream_submission, "smtp://mail.example.com:587");
	assert_int_equal(c->upstream_max_connections_per_account, 100);
	assert_string_equal(c->auth_method, "upstream");
	abq_config_free(&c);
	c = load_ok(f, "[upstream]\nurl = IMAP://127.0.0.1:143\nsubmission = smtps://h\n", true);
	assert_true(abq_config_native(c));
	abq_config_free(&c);

	load_fails(f, "[upstream]\nurl = pop3://h\n", true,
	           ":2: [upstream] url: 'pop3://h' is not a URL starting with http://, https://, "
	           "imap://, imaps://");
	load_fails(
	    f, "[upstream]\nurl = imaps://h\nsubmission = http://h\n", true,
	    ":3: [upstream] submission: 'http://h' is not a URL starting with smtp://, smtps://");
	load_fails(f, "[upstream]\nurl = imaps://h\nmax_connections_per_account = 0\n", true,
	           ":3: [upstream] max_connections_per_account: '0' is too small (at least 1)");
	load_fails(f, "[upstream]\nurl = imaps://h\nmax_connections_per_account = 101\n", true,
	           ":3: [upstream] max_connections_per_account: '101' is too large (at most 100)");
	load_fails(f, "[upstream]\nurl = https://h/\nsubmission = smtp://h\n", true,
	           ":3: [upstream] submission: only with an imap:// or imaps:// [upstream] url");
	c = load_ok(f,
	            "[upstream]\nurl = imaps://h\ngal = ldaps://dir.example.com/dc=example,dc=com\n"
	            "gal_bind_dn = cn=abqd,dc=example,dc=com\ngal_bind_password = s3cret\n",
	            true);
	assert_string_equal(c->upstream_gal, "ldaps://dir.example.com/dc=example,dc=com");
	assert_string_equal(c->upstream_gal_bind_dn, "cn=abqd,dc=example,dc=com");
	assert_string_equal(c->upstream_gal_bind_password, "s3cret");
	abq_config_free(&c);
	load_fails(f, "[upstream]\nurl = imaps://h\ngal = ftp://dir/\n", true,
	           ":3: [upstream] gal: 'ftp://dir/' is not a URL starting with ldap://, ldaps://, "
	           "http://, https://");
	/* A CardDAV address book: https://, or http:// to this machine only. */
	c = load_ok(f,
	            "[upstream]\nurl = imaps://h\ngal = https://dav.example.com/shared/company/\n",
	            true);
	assert_string_equal(c->upstream_gal, "https://dav.example.com/shared/company/");
	assert_null(c->upstream_gal_bind_dn);
	abq_config_free(&c);
	c = load_ok(f,
	            "[upstream]\nurl = imaps://h\ngal = http://127.0.0.1:5232/gal/book/\n"
	            "gal_bind_dn = directory\ngal_bind_password = s3cret\n",
	            true);
	assert_string_equal(c->upstream_gal_bind_dn, "directory");
	abq_config_free(&c);
	c = load_ok(f, "[upstream]\nurl = imaps://h\ngal = http://localhost/gal/\n", true);
	abq_config_free(&c);
	c = load_ok(f, "[upstream]\nurl = imaps://h\ngal = http://[::1]:8080/gal/\n", true);
	abq_config_free(&c);
	load_fails(f, "[upstream]\nurl = imaps://h\ngal = http://dav.example.com/gal/\n", true,
	           ":3: [upstream] gal: http:// to a host that is not loopback would send the "
	           "password in clear: use https://");
	load_fails(f, "[upstream]\nurl = imaps://h\ngal = http://127.0.0.1.example.com/gal/\n",
	           true,
	           ":3: [upstream] gal: http:// to a host that is not loopback would send the "
	           "password in clear: use https://");
	load_fails(f, "[upstream]\nurl = imaps://h\ngal = https://u:p@dav.example.com/gal/\n", true,
	           ":3: [upstream] gal: the address book URL carries credentials: the phone user's "
	           "are used, or gal_bind_dn (the user name) and gal_bind_password");
	load_fails(f, "[upstream]\nurl = https://h/\ngal = ldap://dir/dc=x\n", true,
	           ":3: [upstream] gal: only with an imap:// or imaps:// [upstream] url");
	load_fails(f, "[upstream]\nurl = imaps://h\ngal_bind_dn = cn=x\ngal_bind_password = y\n",
	           true, ":3: [upstream] gal_bind_dn: only with [upstream] gal");
	load_fails(f, "[upstream]\nurl = imaps://h\ngal = ldap://dir/dc=x\ngal_bind_dn = cn=x\n",
	           true, ":4: [upstream] gal_bind_dn and gal_bind_password go together");
	load_fails(f, "[upstream]\nurl = https://h/\nmax_connections_per_account = 2\n", true,
	           ":3: [upstream] max_connections_per_account: only with an imap:// or imaps:// "
	           "[upstream] url");
}

/* Files that cannot be read are reported with the system's reason. */
static void
test_file_errors(void **state)
{
	struct fixture *f = *state;
	char *err = NULL, *want, *missing = xasprintf("%s/missing.conf", f->dir);

	assert_null(abq_config_load(missing, false, &err));
	want = xasprintf("%s: No such file or directory", missing);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(missing);

	err = NULL;
	assert_null(abq_config_load(f->dir, false, &err));
	want = xasprintf("%s: Is a directory", f->dir);
	assert_string_equal(err, want);
	free(want);
	free(err);

	if (geteuid() != 0) {
		write_conf(f, "[eas]\n");
		assert_int_equal(chmod(f->file, 0), 0);
		err = NULL;
		assert_null(abq_config_load(f->file, false, &err));
		want = xasprintf("%s: Permission denied", f->file);
		assert_string_equal(err, want);
		free(want);
		free(err);
	}
}

/* -c wins, then $ABQD_CONFIG, then the system file. */
static void
test_config_path(void **state)
{
	unsetenv("ABQD_CONFIG");
	assert_string_equal(abq_config_path("x.conf"), "x.conf");
	assert_string_equal(abq_config_path(NULL), "/etc/abqd/abqd.conf");
	assert_string_equal(abq_config_path(""), "/etc/abqd/abqd.conf");
	setenv("ABQD_CONFIG", "/tmp/env.conf", 1);
	assert_string_equal(abq_config_path(NULL), "/tmp/env.conf");
	assert_string_equal(abq_config_path("x.conf"), "x.conf");
	setenv("ABQD_CONFIG", "", 1);
	assert_string_equal(abq_config_path(NULL), "/etc/abqd/abqd.conf");
	unsetenv("ABQD_CONFIG");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cidrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_structure_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_require_upstream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_native, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
	    cmocka_unit_test(test_config_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
