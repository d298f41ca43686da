/*
 * gal_ldap.c: the global address list from an LDAP directory (gal_ldap.h).
 *
 * OpenLDAP's libldap does the protocol (BER, TLS, StartTLS, binds); its
 * synchronous calls run on the worker's directory thread (net/workq.h), so
 * the loop never waits on the directory. The connection (`ld`) is the
 * thread's alone; the loop's side only queues lookups and reads their
 * results when they are handed back.
 *
 * Per request, a backend part (gal_ldap_backend) records its lookups in
 * the order asked, as every asynchronous backend does (mailbox.h): the
 * first run of a request queues each lookup and answers MBX_PENDING; once
 * they are back, the rerun answers them from the records.
 */
#include "native/gal_ldap.h"

#include <arpa/inet.h>
#include <ldap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/workq.h"

#define DEFAULT_FILTER "(|(objectClass=inetOrgPerson)(objectClass=person))"
#define VALUE_MAX      1024          /* bytes of a text attribute kept */
#define PICTURE_MAX    (1024 * 1024) /* bytes of a photo read at most */
#define FILTER_MAX     (4 * 1024)    /* the search filter built */

struct gal_ldap {
	struct workq *q;
	/* the configuration, parsed once */
	char *server;  /* "ldap://host:port" or "ldaps://host:port" */
	char *base;    /* the base DN */
	int scope;     /* LDAP_SCOPE_* */
	char *filter;  /* the people: "(...)" */
	bool starttls; /* ldap:// to a host that is not a loopback address */
	char *bind_dn, *bind_password, *ca_file;
	int connect_timeout, timeout;
	/* the thread's */
	LDAP *ld;
	/* the loop's */
	unsigned long lookups, failures;
};

/* ---- the configuration ---- */

static bool
loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (host == NULL || *host == '\0' || strcasecmp(host, "localhost") == 0)
		return host != NULL && *host != '\0';
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/*
 * Whether the URL says its scope (its third '?' field is not empty).
 * libldap reads a missing scope as "base", RFC 4516's default; a GAL
 * wants the whole tree below the base DN, so abqd's default is "sub".
 */
static bool
url_has_scope(const char *url)
{
	const char *q = strchr(url, '?');

	if (q == NULL || (q = strchr(q + 1, '?')) == NULL)
		return false;
	return q[1] != '\0' && q[1] != '?';
}

/* Parse c->url into g (when not NULL): 0, or -1 with *errstr. */
static int
parse_conf(const struct gal_ldap_conf *c, struct gal_ldap *g, const char **errstr)
{
	LDAPURLDesc *u = NULL;
	bool tls;
	int rv = -1;

	if (c->url == NULL || ldap_url_parse(c->url, &u) != LDAP_URL_SUCCESS) {
		*errstr = "not an LDAP URL (ldap://host[:port]/base-dn[??scope[?filter]])";
		return -1;
	}
	tls = strcasecmp(u->lud_scheme, "ldaps") == 0;
	if (!tls && strcasecmp(u->lud_scheme, "ldap") != 0) {
		*errstr = "the URL is neither ldap:// nor ldaps://";
		goto out;
	}
	if (u->lud_host == NULL || *u->lud_host == '\0') {
		*errstr = "the URL names no host";
		goto out;
	}
	if (u->lud_dn == NULL || *u->lud_dn == '\0') {
		*errstr = "the URL names no base DN (ldap://host/dc=example,dc=com)";
		goto out;
	}
	if (u->lud_attrs != NULL || u->lud_exts != NULL) {
		*errstr =
		    "the URL's attributes and extensions are abqd's to choose: leave them empty";
		goto out;
	}
	if (u->lud_filter != NULL && (u->lud_filter[0] != '(' || strlen(u->lud_filter) > 1024)) {
		*errstr =
		    "the URL's filter must be one parenthesised LDAP filter of at most 1024 bytes";
		goto out;
	}
	if ((c->bind_dn == NULL) != (c->bind_password == NULL)) {
		*errstr = "gal_bind_dn and gal_bind_password go together";
		goto out;
	}
	if (g != NULL) {
		int port = u->lud_port ? u->lud_port : tls ? 636 : 389;
		bool v6 = strchr(u->lud_host, ':') != NULL;
		g->server = xasprintf("%s://%s%s%s:%d", tls ? "ldaps" : "ldap", v6 ? "[" : "",
		                      u->lud_host, v6 ? "]" : "", port);
		g->base = xstrdup(u->lud_dn);
		g->scope = url_has_scope(c->url) ? u->lud_scope : LDAP_SCOPE_SUBTREE;
		g->filter = xstrdup(u->lud_filter ? u->lud_filter : DEFAULT_FILTER);
		g->starttls = !tls && !loopback(u->lud_host);
	}
	rv = 0;
out:
	ldap_free_urldesc(u);
	return rv;
}

int
gal_ldap_check(const struct gal_ldap_conf *c, const char **errstr)
{
	return parse_conf(c, NULL, errstr);
}

/* ---- the thread: the connection and the search ---- */

static void
ld_close(struct gal_ldap *g)
{
	if (g->ld != NULL)
		ldap_unbind_ext_s(g->ld, NULL, NULL);
	g->ld = NULL;
}

/* Connect and bind when not connected: 0, or -1 with *errstr (static). */
static int
ld_open(struct gal_ldap *g, const char **errstr)
{
	struct timeval ct = {g->connect_timeout, 0}, st = {g->timeout, 0};
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	struct berval cred;

	if (g->ld != NULL)
		return 0;
	if (ldap_initialize(&g->ld, g->server) != LDAP_SUCCESS) {
		g->ld = NULL;
		*errstr = "cannot set up an LDAP connection";
		return -1;
	}
	ldap_set_option(g->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(g->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(g->ld, LDAP_OPT_NETWORK_TIMEOUT, &ct);
	ldap_set_option(g->ld, LDAP_OPT_TIMEOUT, &st);
	ldap_set_option(g->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (g->ca_file != NULL)
		ldap_set_option(g->ld, LDAP_OPT_X_TLS_CACERTFILE, g->ca_file);
	ldap_set_option(g->ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	if (g->starttls && (rc = ldap_start_tls_s(g->ld, NULL, NULL)) != LDAP_SUCCESS) {
		*errstr = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR
		              ? "the directory cannot be reached"
		              : "the directory refused StartTLS, or its certificate";
		ld_close(g);
		return -1;
	}
	if (g->bind_dn != NULL) {
		cred.bv_val = g->bind_password;
		cred.bv_len = strlen(g->bind_password);
		rc = ldap_sasl_bind_s(g->ld, g->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			*errstr = rc == LDAP_INVALID_CREDENTIALS
			              ? "the directory refused gal_bind_dn's password"
			          : rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR
			              ? "the directory cannot be reached"
			              : "the directory refused the bind";
			ld_close(g);
			return -1;
		}
	}
	return 0;
}

/* query as an LDAP filter value (RFC 4515): the special bytes escaped. */
static void
escape_value(struct sbuf *b, const char *q)
{
	for (const unsigned char *p = (const unsigned char *)q; *p; p++) {
		if (*p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20 || *p == 0x7F)
			sbuf_printf(b, "\\%02x", *p);
		else
			sbuf_printf(b, "%c", *p);
	}
}

static char *
build_filter(const struct gal_ldap *g, const char *query, enum mbx_gal_match how)
{
	static const char *const prefix_attrs[] = {"cn", "displayName", "givenName",
	                                           "sn", "uid",         "mail"};
	struct sbuf b = {0};

	sbuf_printf(&b, "(&%s", g->filter);
	if (how == MBX_GAL_ADDRESS) {
		sbuf_add(&b, "(mail=");
		escape_value(&b, query);
		sbuf_add(&b, ")");
	} else {
		sbuf_add(&b, "(|");
		for (size_t i = 0; i < sizeof(prefix_attrs) / sizeof(prefix_attrs[0]); i++) {
			sbuf_printf(&b, "(%s=", prefix_attrs[i]);
			escape_value(&b, query);
			sbuf_add(&b, "*)");
		}
		sbuf_add(&b, ")");
	}
	sbuf_add(&b, ")");
	return b.p;
}

/* The first value of attr as a string (UTF-8, cut at VALUE_MAX, no NUL inside), or NULL. */
static char *
first_text(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	char *s = NULL;

	if (v != NULL && v[0] != NULL && v[0]->bv_len > 0) {
		size_t n = v[0]->bv_len < VALUE_MAX ? v[0]->bv_len : VALUE_MAX;
		s = xmemdup0(v[0]->bv_val, n); /* a NUL inside ends the string */
	}
	ldap_value_free_len(v);
	return s;
}

static void
read_picture(LDAP *ld, LDAPMessage *e, struct mbx_gal_entry *x, size_t picture_max)
{
	static const char *const attrs[] = {"jpegPhoto", "thumbnailPhoto"};

	for (size_t i = 0; i < 2 && x->picture == NULL && !x->picture_too_large; i++) {
		struct berval **v = ldap_get_values_len(ld, e, attrs[i]);
		if (v != NULL && v[0] != NULL && v[0]->bv_len > 0) {
			if (v[0]->bv_len > picture_max || v[0]->bv_len > PICTURE_MAX) {
				x->picture_too_large = true;
			} else {
				x->picture = xmalloc(v[0]->bv_len + 1);
				memcpy(x->picture, v[0]->bv_val, v[0]->bv_len);
				x->picture_len = v[0]->bv_len;
			}
		}
		ldap_value_free_len(v);
	}
}

static int
by_name(const void *a, const void *b)
{
	const struct mbx_gal_entry *x = a, *y = b;

	return strcasecmp(x->display_name ? x->display_name : "",
	                  y->display_name ? y->display_name : "");
}

/* One lookup: the job's fields in, out filled. */
struct lookup {
	struct gal_ldap *g;
	char query[MBX_GAL_QUERY_MAX + 1];
	enum mbx_gal_match how;
	size_t max, picture_max;
	/* out */
	int rv; /* 1, -1 */
	const char *err;
	struct mbx_gal_out out;
	/* the loop's: the record it belongs to, NULL once cancelled */
	struct gal_part *part;
	struct workq_job *h;
	bool done;
};

static int
search_once(struct lookup *l, const char **errstr)
{
	static const char *const text_attrs[] = {"displayName",
	                                         "cn",
	                                         "mail",
	                                         "givenName",
	                                         "sn",
	                                         "uid",
	                                         "o",
	                                         "company",
	                                         "title",
	                                         "physicalDeliveryOfficeName",
	                                         "telephoneNumber",
	                                         "homePhone",
	                                         "mobile",
	                                         NULL};
	const char *attrs[20];
	struct gal_ldap *g = l->g;
	struct timeval tv = {g->timeout, 0};
	LDAPMessage *res = NULL;
	size_t na = 0, n = 0, cap;
	char *filter;
	int rc;

	if (ld_open(g, errstr) < 0)
		return -1;
	for (na = 0; text_attrs[na]; na++)
		attrs[na] = text_attrs[na];
	if (l->picture_max > 0) {
		attrs[na++] = "jpegPhoto";
		attrs[na++] = "thumbnailPhoto";
	}
	attrs[na] = NULL;
	filter = build_filter(g, l->query, l->how);
	rc = ldap_search_ext_s(g->ld, g->base, g->scope, filter, (char **)attrs, 0, NULL, NULL, &tv,
	                       (int)(l->max + 1), &res);
	free(filter);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_msgfree(res);
		*errstr = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ? "down"
		          : rc == LDAP_TIMEOUT || rc == LDAP_TIMELIMIT_EXCEEDED
		              ? "the directory took too long"
		              : "the directory refused the search";
		return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ? -2 : -1;
	}
	cap = (size_t)ldap_count_entries(g->ld, res);
	struct mbx_gal_entry *v = cap ? xcalloc(cap, sizeof(*v)) : NULL;
	for (LDAPMessage *e = ldap_first_entry(g->ld, res); e && n < cap;
	     e = ldap_next_entry(g->ld, e)) {
		struct mbx_gal_entry *x = &v[n++];
		x->display_name = first_text(g->ld, e, "displayName");
		if (x->display_name == NULL)
			x->display_name = first_text(g->ld, e, "cn");
		x->email = first_text(g->ld, e, "mail");
		x->first_name = first_text(g->ld, e, "givenName");
		x->last_name = first_text(g->ld, e, "sn");
		x->alias = first_text(g->ld, e, "uid");
		x->company = first_text(g->ld, e, "o");
		if (x->company == NULL)
			x->company = first_text(g->ld, e, "company");
		x->title = first_text(g->ld, e, "title");
		x->office = first_text(g->ld, e, "physicalDeliveryOfficeName");
		x->phone = first_text(g->ld, e, "telephoneNumber");
		x->home_phone = first_text(g->ld, e, "homePhone");
		x->mobile_phone = first_text(g->ld, e, "mobile");
		if (l->picture_max > 0)
			read_picture(g->ld, e, x, l->picture_max);
	}
	ldap_msgfree(res);
	if (n > 1)
		qsort(v, n, sizeof(*v), by_name);
	l->out.total = n;
	l->out.n = n < l->max ? n : l->max;
	l->out.e = v;
	/* the entry past max (the one more asked) only counted */
	for (size_t i = l->out.n; i < n; i++)
		mbx_gal_entry_clear(&v[i]);
	return 1;
}

/* The thread: one lookup, once more on a fresh connection when the old one was dead. */
static void
lookup_run(void *arg)
{
	struct lookup *l = arg;
	const char *err = NULL;
	int rv = search_once(l, &err);

	if (rv == -2) {
		ld_close(l->g);
		rv = search_once(l, &err);
	}
	if (rv < 0) {
		ld_close(l->g);
		l->rv = -1;
		l->err = rv == -2 ? "the directory cannot be reached" : err;
		return;
	}
	l->rv = 1;
}

/* ---- the per-request part ---- */

struct gal_part {
	struct mbx_backend base;
	struct gal_ldap *g;
	struct lookup **rec; /* the request's lookups, in the order asked */
	size_t n_rec, next;
	size_t in_flight;
	void (*wait_cb)(void *);
	void *wait_arg;
};

static void lookup_free(struct lookup *l);

/* The loop: a lookup is back. */
static void
lookup_done(void *arg)
{
	struct lookup *l = arg;
	struct gal_part *p = l->part;

	l->done = true; /* l->h stays until its release: the waiter below may drop the record */
	p->g->lookups++;
	abq_metrics_gal_lookup(l->rv < 0);
	if (l->rv < 0) {
		p->g->failures++;
		log_warn("gal: %s", l->err);
	}
	if (--p->in_flight == 0 && p->wait_cb != NULL) {
		void (*cb)(void *) = p->wait_cb;
		p->wait_cb = NULL;
		cb(p->wait_arg);
	}
}

/* The loop: a lookup's memory goes, unless its record still holds it. */
static void
lookup_release(void *arg)
{
	struct lookup *l = arg;

	if (l->part == NULL) /* cancelled, or its record dropped meanwhile: nobody holds it */
		lookup_free(l);
	else
		l->h = NULL; /* the record's alone now */
}

static void
lookup_free(struct lookup *l)
{
	mbx_gal_out_clear(&l->out);
	free(l);
}

/* Drop the request's records; lookups in flight are cancelled (freed when the thread lets go). */
static void
part_drop(struct gal_part *p)
{
	for (size_t i = 0; i < p->n_rec; i++) {
		struct lookup *l = p->rec[i];
		if (l->h != NULL) {
			/* queued, running, or being delivered: its release frees it */
			l->part = NULL;
			workq_cancel(l->h);
		} else {
			lookup_free(l);
		}
	}
	free(p->rec);
	p->rec = NULL;
	p->n_rec = p->next = p->in_flight = 0;
	p->wait_cb = NULL;
}

static int
p_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
             size_t picture_max, struct mbx_gal_out *out, const char **errstr_r)
{
	struct gal_part *p = (struct gal_part *)b;
	struct lookup *l;

	if (p->next < p->n_rec) {
		l = p->rec[p->next++];
		if (!l->done)
			return MBX_PENDING;
		if (l->rv < 0) {
			*errstr_r = l->err;
			return -1;
		}
		out->n = l->out.n;
		out->total = l->out.total;
		out->e = out->n ? xcalloc(out->n, sizeof(*out->e)) : NULL;
		for (size_t i = 0; i < out->n; i++)
			mbx_gal_entry_copy(&out->e[i], &l->out.e[i], picture_max);
		return 1;
	}
	l = xcalloc(1, sizeof(*l));
	l->g = p->g;
	snprintf(l->query, sizeof(l->query), "%s", query);
	l->how = how;
	l->max = max;
	l->picture_max = picture_max;
	l->part = p;
	l->h = workq_add(p->g->q, l, lookup_run, lookup_done, lookup_release, GAL_LDAP_PENDING_MAX);
	if (l->h == NULL) {
		free(l);
		p->g->failures++;
		*errstr_r = "too many directory lookups waiting";
		return -1;
	}
	p->rec = xrealloc(p->rec, (p->n_rec + 1) * sizeof(*p->rec));
	p->rec[p->n_rec++] = l;
	p->next++;
	p->in_flight++;
	return MBX_PENDING;
}

static void
p_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	struct gal_part *p = (struct gal_part *)b;

	if (p->in_flight == 0) {
		cb(arg);
		return;
	}
	p->wait_cb = cb;
	p->wait_arg = arg;
}

static void
p_begin(struct mbx_backend *b)
{
	((struct gal_part *)b)->next = 0;
}

static void
p_end(struct mbx_backend *b)
{
	part_drop((struct gal_part *)b);
}

static void
p_destroy(struct mbx_backend *b)
{
	part_drop((struct gal_part *)b);
	free(b);
}

static const struct mbx_ops gal_ops = {
    .name = "gal-ldap",
    .list_folders = mbx_no_folders, /* no folder op reaches the part through a union */
    .list_items = mbx_no_list_items,
    .fetch = mbx_no_fetch,
    .set_read = mbx_no_set_read,
    .destroy = p_destroy,
    .wait = p_wait,
    .begin = p_begin,
    .end = p_end,
    .changes = mbx_no_changes,
    .set_flags = mbx_no_set_flags,
    .remove = mbx_no_remove,
    .gal_search = p_gal_search,
};

struct mbx_backend *
gal_ldap_backend(struct gal_ldap *g)
{
	struct gal_part *p = xcalloc(1, sizeof(*p));

	p->base.ops = &gal_ops;
	p->g = g;
	return &p->base;
}

/* ---- the directory ---- */

struct gal_ldap *
gal_ldap_new(struct event_base *base, const struct gal_ldap_conf *c, const char **errstr)
{
	struct gal_ldap *g = xcalloc(1, sizeof(*g));

	if (parse_conf(c, g, errstr) < 0) {
		gal_ldap_free(&g);
		return NULL;
	}
	g->bind_dn = c->bind_dn ? xstrdup(c->bind_dn) : NULL;
	g->bind_password = c->bind_password ? xstrdup(c->bind_password) : NULL;
	g->ca_file = c->ca_file ? xstrdup(c->ca_file) : NULL;
	g->connect_timeout = c->connect_timeout > 0 ? c->connect_timeout : 5;
	g->timeout = c->timeout > 0 ? c->timeout : 10;
	if ((g->q = workq_start(base, "gal", errstr)) == NULL) {
		gal_ldap_free(&g);
		return NULL;
	}
	return g;
}

void
gal_ldap_free(struct gal_ldap **gp)
{
	struct gal_ldap *g = *gp;

	if (g == NULL)
		return;
	workq_stop(&g->q); /* the thread is gone: ld is ours now */
	ld_close(g);
	free(g->server);
	free(g->base);
	free(g->filter);
	free(g->bind_dn);
	if (g->bind_password != NULL) {
		explicit_bzero(g->bind_password, strlen(g->bind_password));
		free(g->bind_password);
	}
	free(g->ca_file);
	free(g);
	*gp = NULL;
}

unsigned long
gal_ldap_lookups(const struct gal_ldap *g)
{
	return g->lookups;
}

unsigned long
gal_ldap_failures(const struct gal_ldap *g)
{
	return g->failures;
}
