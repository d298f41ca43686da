/*
 * dav.c: the CalDAV/CardDAV client (dav.h).
 *
 * Design: an operation is a small state machine of HTTP requests. Each
 * request is one libcurl easy handle on the account's curl_loop; its body
 * goes, as libcurl hands it over, into a davxml reader (a 207 answer, or an
 * XML error body) or is counted and dropped; the reader calls back per
 * response, and the operation keeps what it needs of each (collections,
 * items, removed hrefs) after resolving the href. When the transfer ends
 * the operation either starts its next request (discovery's steps, a
 * same-server redirect, the next multiget batch) or calls back once.
 *
 * Written here rather than taken from a library: the C WebDAV clients
 * Debian has (neon, libsoup's) bring their own HTTP stacks and event loops,
 * where abqd's rule is libcurl's multi interface on the worker's libevent
 * loop; what is left above libcurl and libxml2 is the protocol's steps.
 *
 * Hrefs: a server's href is resolved against the URL of the request it
 * answered with libcurl's URL API (curl_url), and kept only when its
 * scheme, host and port are the configured server's; what is kept is its
 * path (and query). A request's URL is always the configured server's
 * origin and such a path, so neither an href nor a Location header can send
 * the credentials elsewhere (CURLOPT_FOLLOWLOCATION is off).
 */
#include "dav/dav.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "lib/util.h"
#include "net/curl_loop.h"

enum op_type { OP_DISCOVER, OP_LIST, OP_SYNC, OP_MULTIGET, OP_QUERY, OP_PUT, OP_DELETE };

/* Discovery's steps. */
enum step {
	ST_START,      /* PROPFIND Depth 0 on the configured URL */
	ST_WELL_KNOWN, /* the same on /.well-known/caldav or carddav */
	ST_PRINCIPAL,  /* PROPFIND Depth 0 on the principal: the home set */
	ST_HOME,       /* PROPFIND Depth 1 on the home: the collections */
	ST_ONE         /* the one request of the other operations (or a batch) */
};

struct dav_account {
	struct curl_loop *cl;
	char *scheme, *host, *port; /* the configured server's, port always given */
	char *origin;               /* scheme://host:port */
	char *path;                 /* the configured URL's path (and query) */
	char *user, *password;
	char *ca_file;
	bool tls_insecure;
	long connect_timeout_ms, timeout_ms;
	struct davxml_limits lim;
	size_t multiget_max;
	TAILQ_HEAD(, dav_op) ops;
	size_t n_ops;
};

struct dav_op {
	TAILQ_ENTRY(dav_op) link;
	struct dav_account *a;
	enum op_type type;
	enum dav_kind kind;
	enum step step;
	dav_done_cb *done;
	void *arg;

	/* The request: kept for a redirect's repeat. */
	const char *method;
	const char *depth; /* NULL: no Depth header */
	char *path;        /* the request's path on the server */
	char *url;         /* origin + path */
	char *body;
	size_t body_len;
	char *content_type;
	char *cond; /* an If-Match or If-None-Match header line, or NULL */
	unsigned redirects;

	/* The transfer in flight. */
	CURL *easy;
	struct curl_slist *hdrs;
	struct davxml *x;
	bool decided;    /* the first body bytes have come: x or dropped */
	bool xml_answer; /* x reads a 207 (else an error body, best effort) */
	bool over_cap;
	size_t got;
	char *etag_hdr;
	char curl_err[CURL_ERROR_SIZE];
	long http;
	size_t requests;

	/* What the operation gathers. */
	char *target; /* the collection or resource path asked about */
	bool start_multistatus;
	char *start_error;
	char *found_principal, *found_home;
	struct dav_discovery disc;
	size_t cap_colls;
	struct dav_item *items;
	size_t n_items, cap_items;
	char **removed;
	size_t n_removed, cap_removed;
	char *token;
	bool more;
	char **hrefs; /* multiget: the paths asked */
	size_t n_hrefs, next_href;

	/* The outcome when it failed. */
	enum dav_status fail;
	bool failed;
	char err[512];
};

static const char *const status_names[] = {
    "ok",           "conflict",  "not found",         "token invalid", "precondition failed",
    "auth refused", "forbidden", "unexpected status", "network",       "protocol",
    "refused",
};

const char *
dav_status_name(enum dav_status s)
{
	if ((size_t)s < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[s];
	return "unknown";
}

static void __attribute__((format(printf, 3, 4)))
op_fail(struct dav_op *op, enum dav_status st, const char *fmt, ...)
{
	va_list ap;

	if (op->failed)
		return;
	op->failed = true;
	op->fail = st;
	va_start(ap, fmt);
	vsnprintf(op->err, sizeof(op->err), fmt, ap);
	va_end(ap);
}

/* ---- URLs ---- */

/* Whether host is this machine (http:// without TLS is fine there). */
bool
dav_host_loopback(const char *host)
{
	struct in_addr a4;

	/* an address literal, whole: "127.0.0.1.example.com" is a name anywhere */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0;
}

/* The path and query of u as one string. */
static char *
path_of(CURLU *u)
{
	char *path = NULL, *query = NULL, *out;

	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		return NULL;
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query != NULL)
		out = xasprintf("%s?%s", path, query);
	else
		out = xstrdup(path);
	curl_free(path);
	curl_free(query);
	return out;
}

/*
 * Resolve href against the URL base (a path of the server, or NULL: the
 * configured URL) and return its path, or NULL with why (static) when it
 * is no URL or points at another server.
 */
static char *
resolve(const struct dav_account *a, const char *base, const char *href, const char **why)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
	char *base_url = xasprintf("%s%s", a->origin, base ? base : a->path);

	if (u == NULL)
		fatalx("curl_url failed");
	if (curl_url_set(u, CURLUPART_URL, base_url, 0) != CURLUE_OK) {
		*why = "the request URL is no URL";
		goto out;
	}
	/* A relative href is resolved against the URL already in u. */
	if (curl_url_set(u, CURLUPART_URL, href, 0) != CURLUE_OK) {
		*why = "is no URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		*why = "is no URL";
		goto out;
	}
	if (strcasecmp(scheme, a->scheme) != 0 || strcasecmp(host, a->host) != 0 ||
	    strcmp(port, a->port) != 0) {
		*why = "points at another server";
		goto out;
	}
	if ((out = path_of(u)) == NULL)
		*why = "has no path";
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	free(base_url);
	return out;
}

/* Two paths naming the same collection (a trailing slash or not). */
static bool
same_path(const char *p, const char *q)
{
	size_t n = strlen(p), m = strlen(q);

	if (n > 0 && p[n - 1] == '/')
		n--;
	if (m > 0 && q[m - 1] == '/')
		m--;
	return n == m && memcmp(p, q, n) == 0;
}

/* A header value from a caller (an ETag): printable ASCII only, no line breaks. */
static bool
header_safe(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || n >= max)
			return false;
	return n > 0;
}

/* ---- Transfers ---- */

static void on_done(void *arg, CURL *easy, CURLcode rc);
static int on_response(void *arg, const struct davxml_response *r);

/* Drop what belongs to the transfer in flight (not the request itself). */
static void
xfer_clear(struct dav_op *op)
{
	if (op->easy != NULL) {
		curl_loop_remove(op->a->cl, op->easy);
		curl_easy_cleanup(op->easy);
		op->easy = NULL;
	}
	curl_slist_free_all(op->hdrs);
	op->hdrs = NULL;
	davxml_free(&op->x);
	free(op->etag_hdr);
	op->etag_hdr = NULL;
	op->decided = op->xml_answer = op->over_cap = false;
	op->got = 0;
	op->http = 0;
	op->curl_err[0] = '\0';
}

/* The first body bytes: read them as XML (a 207, an XML error body) or drop them. */
static void
decide(struct dav_op *op)
{
	char *ct = NULL;

	op->decided = true;
	curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &op->http);
	curl_easy_getinfo(op->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (op->http == 207) {
		op->x = davxml_new(&op->a->lim, on_response, op);
		op->xml_answer = true;
	} else if (op->http >= 400 && ct != NULL && strstr(ct, "xml") != NULL) {
		struct davxml_limits l = op->a->lim;
		l.max_body = DAV_MAX_ERROR_BODY;
		op->x = davxml_new(&l, NULL, NULL);
	}
}

/* CURLOPT_WRITEFUNCTION: the body as it comes. */
static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct dav_op *op = arg;
	size_t n = size * nmemb, cap;
	const char *err;

	if (!op->decided)
		decide(op);
	cap = op->xml_answer ? op->a->lim.max_body : DAV_MAX_ERROR_BODY;
	if (n > cap - op->got) {
		op->over_cap = true;
		return 0;
	}
	op->got += n;
	if (op->x != NULL && davxml_feed(op->x, p, n, &err) < 0) {
		if (!op->xml_answer) {
			davxml_free(&op->x); /* an unreadable error body: its status is enough */
			return n;
		}
		op_fail(op, DAV_PROTOCOL, "%s %s: %s", op->method, op->path, err);
		return 0;
	}
	return n;
}

/* CURLOPT_HEADERFUNCTION: the ETag of the answer. */
static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct dav_op *op = arg;
	size_t n = size * nmemb, k;

	if (n > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 1xx) */
		free(op->etag_hdr);
		op->etag_hdr = NULL;
	} else if (n > 5 && strncasecmp(p, "ETag:", 5) == 0 && n < 1024) {
		const char *v = p + 5;
		k = n - 5;
		while (k > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			k--;
		}
		while (k > 0 && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
			k--;
		free(op->etag_hdr);
		op->etag_hdr = k > 0 ? xstrndup(v, k) : NULL;
	}
	return n;
}

/* Start op's request (method, path, depth, body) on the loop. */
static int
send_request(struct dav_op *op, const char **errstr)
{
	struct dav_account *a = op->a;
	struct curl_slist *h = NULL;
	char line[128];

	xfer_clear(op);
	free(op->url);
	op->url = xasprintf("%s%s", a->origin, op->path);
	if ((op->easy = curl_easy_init()) == NULL) {
		*errstr = "curl_easy_init failed";
		return -1;
	}
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	if (op->body != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s",
		         op->content_type ? op->content_type : "application/xml; charset=utf-8");
		h = curl_slist_append(h, line);
	}
	if (op->depth != NULL) {
		snprintf(line, sizeof(line), "Depth: %s", op->depth);
		h = curl_slist_append(h, line);
	}
	if (op->cond != NULL)
		h = curl_slist_append(h, op->cond);
	if (h == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	op->hdrs = h;
	curl_easy_setopt(op->easy, CURLOPT_URL, op->url);
	curl_easy_setopt(op->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(op->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(op->easy, CURLOPT_CUSTOMREQUEST, op->method);
	if (op->body != NULL) {
		curl_easy_setopt(op->easy, CURLOPT_POSTFIELDS, op->body);
		curl_easy_setopt(op->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)op->body_len);
	}
	curl_easy_setopt(op->easy, CURLOPT_HTTPHEADER, op->hdrs);
	curl_easy_setopt(op->easy, CURLOPT_USERAGENT, "abqd/" ABQ_VERSION);
	curl_easy_setopt(op->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(op->easy, CURLOPT_USERNAME, a->user);
	curl_easy_setopt(op->easy, CURLOPT_PASSWORD, a->password);
	/* Compressed answers welcome: the caps count the bytes after decoding. */
	curl_easy_setopt(op->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(op->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(op->easy, CURLOPT_WRITEDATA, op);
	curl_easy_setopt(op->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(op->easy, CURLOPT_HEADERDATA, op);
	curl_easy_setopt(op->easy, CURLOPT_ERRORBUFFER, op->curl_err);
	curl_easy_setopt(op->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(op->easy, CURLOPT_CONNECTTIMEOUT_MS, a->connect_timeout_ms);
	curl_easy_setopt(op->easy, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	if (a->ca_file != NULL)
		curl_easy_setopt(op->easy, CURLOPT_CAINFO, a->ca_file);
	if (a->tls_insecure) {
		curl_easy_setopt(op->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(op->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	op->curl_err[0] = '\0';
	if (curl_loop_add(a->cl, op->easy, on_done, op, errstr) < 0) {
		curl_easy_cleanup(op->easy);
		op->easy = NULL;
		return -1;
	}
	op->requests++;
	return 0;
}

/* Set the next request of op (the path is copied, the body taken). */
static void
set_request(struct dav_op *op, const char *method, const char *path, const char *depth, char *body)
{
	op->method = method;
	free(op->path);
	op->path = xstrdup(path);
	op->depth = depth;
	free(op->body);
	op->body = body;
	op->body_len = body ? strlen(body) : 0;
	op->redirects = 0;
}

/* ---- Request bodies ---- */

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
#define NS_D     "xmlns:D=\"DAV:\""
#define NS_C     "xmlns:C=\"" DAVXML_NS_CALDAV "\""
#define NS_CR    "xmlns:CR=\"" DAVXML_NS_CARDDAV "\""
#define NS_CS    "xmlns:CS=\"" DAVXML_NS_CS "\""
#define NS_I     "xmlns:I=\"" DAVXML_NS_ICAL "\""

static char *
body_principal(enum dav_kind kind)
{
	if (kind == DAV_CALDAV)
		return xstrdup(XML_DECL "<D:propfind " NS_D " " NS_C "><D:prop>"
		                        "<D:current-user-principal/><C:calendar-home-set/>"
		                        "<D:resourcetype/></D:prop></D:propfind>");
	return xstrdup(XML_DECL "<D:propfind " NS_D " " NS_CR "><D:prop>"
	                        "<D:current-user-principal/><CR:addressbook-home-set/>"
	                        "<D:resourcetype/></D:prop></D:propfind>");
}

static char *
body_home(enum dav_kind kind)
{
	if (kind == DAV_CALDAV)
		return xstrdup(XML_DECL
		               "<D:propfind " NS_D " " NS_C " " NS_CS " " NS_I "><D:prop>"
		               "<D:resourcetype/><D:displayname/><CS:getctag/><D:sync-token/>"
		               "<C:supported-calendar-component-set/><I:calendar-color/>"
		               "<D:current-user-privilege-set/></D:prop></D:propfind>");
	return xstrdup(XML_DECL "<D:propfind " NS_D " " NS_CS "><D:prop>"
	                        "<D:resourcetype/><D:displayname/><CS:getctag/><D:sync-token/>"
	                        "<D:current-user-privilege-set/></D:prop></D:propfind>");
}

/* ---- Gathering from the answers ---- */

static void
add_item(struct dav_op *op, const char *href, const char *etag, const char *data, size_t len,
         int status, bool oversize)
{
	struct dav_item *it;

	if (op->n_items == op->cap_items) {
		op->cap_items = op->cap_items ? 2 * op->cap_items : 16;
		op->items = xrealloc(op->items, op->cap_items * sizeof(*op->items));
	}
	it = &op->items[op->n_items++];
	memset(it, 0, sizeof(*it));
	it->href = xstrdup(href);
	it->etag = xstrdup_null(etag);
	if (data != NULL) {
		it->data = xmemdup0(data, len);
		it->data_len = len;
	}
	it->status = status;
	it->oversize = oversize;
}

static void
add_removed(struct dav_op *op, char *href)
{
	if (op->n_removed == op->cap_removed) {
		op->cap_removed = op->cap_removed ? 2 * op->cap_removed : 16;
		op->removed = xrealloc(op->removed, op->cap_removed * sizeof(*op->removed));
	}
	op->removed[op->n_removed++] = href;
}

/* A collection of the home's Depth 1 answer, if it is one of the kind asked. */
static void
add_collection(struct dav_op *op, char *path, const struct davxml_response *r)
{
	const struct davxml_props *p = &r->props;
	unsigned want = op->kind == DAV_CALDAV ? DAVRT_CALENDAR : DAVRT_ADDRESSBOOK;
	struct dav_collection *c;

	if (r->status != 0 || !(p->resourcetype & want) || same_path(path, op->found_home)) {
		free(path);
		return;
	}
	if (op->disc.n_colls == op->cap_colls) {
		op->cap_colls = op->cap_colls ? 2 * op->cap_colls : 8;
		op->disc.colls = xrealloc(op->disc.colls, op->cap_colls * sizeof(*op->disc.colls));
	}
	c = &op->disc.colls[op->disc.n_colls++];
	memset(c, 0, sizeof(*c));
	c->href = path;
	c->kind = op->kind;
	/* RFC 4791 5.2.3: without the property, every component is taken. */
	c->components =
	    (p->have & DAVP_COMPONENTS) && op->kind == DAV_CALDAV
	        ? p->components
	        : (op->kind == DAV_CALDAV ? DAVCOMP_VEVENT | DAVCOMP_VTODO | DAVCOMP_VJOURNAL : 0);
	c->name = xstrdup_null(p->displayname);
	c->color = xstrdup_null(p->color);
	c->ctag = xstrdup_null(p->ctag);
	c->sync_token = p->sync_token && *p->sync_token ? xstrdup(p->sync_token) : NULL;
	c->can_sync = c->sync_token != NULL;
	c->writable = (p->have & DAVP_PRIVILEGES) ? p->writable : true;
}

/* davxml's callback: one response of a 207 answer. */
static int
on_response(void *arg, const struct davxml_response *r)
{
	struct dav_op *op = arg;
	const struct davxml_props *p = &r->props;
	const char *why = "";
	char *path = resolve(op->a, op->path, r->href, &why);

	if (path == NULL) {
		op_fail(op,
		        strcmp(why, "points at another server") == 0 ? DAV_REFUSED : DAV_PROTOCOL,
		        "%s %s: the href %.200s %s", op->method, op->path, r->href, why);
		return 1;
	}
	switch (op->type) {
	case OP_DISCOVER:
		if (op->step == ST_HOME) {
			add_collection(op, path, r);
			return 0;
		}
		if (p->principal != NULL && op->found_principal == NULL) {
			char *pp = resolve(op->a, op->path, p->principal, &why);
			if (pp == NULL) {
				op_fail(op,
				        strcmp(why, "points at another server") == 0 ? DAV_REFUSED
				                                                     : DAV_PROTOCOL,
				        "%s %s: the principal %.200s %s", op->method, op->path,
				        p->principal, why);
				free(path);
				return 1;
			}
			op->found_principal = pp;
		}
		const char *home = op->kind == DAV_CALDAV ? p->cal_home : p->card_home;
		if (home != NULL && op->found_home == NULL) {
			char *hp = resolve(op->a, op->path, home, &why);
			if (hp == NULL) {
				op_fail(op,
				        strcmp(why, "points at another server") == 0 ? DAV_REFUSED
				                                                     : DAV_PROTOCOL,
				        "%s %s: the %s %.200s %s", op->method, op->path,
				        op->kind == DAV_CALDAV ? "calendar-home-set"
				                               : "addressbook-home-set",
				        home, why);
				free(path);
				return 1;
			}
			op->found_home = hp;
		}
		free(path);
		return 0;
	case OP_LIST:
		if (!same_path(path, op->target) && r->status == 0 &&
		    !(p->resourcetype & DAVRT_COLLECTION) && (p->have & DAVP_ETAG))
			add_item(op, path, p->etag, NULL, 0, 200, false);
		free(path);
		return 0;
	case OP_SYNC:
		if (same_path(path, op->target)) {
			/* RFC 6578 3.6: the collection itself with 507: truncated. */
			if (r->status == 507)
				op->more = true;
			free(path);
		} else if (r->status == 404 || r->status == 410) {
			add_removed(op, path);
		} else if (r->status != 0 && (r->status < 200 || r->status > 299)) {
			free(path); /* some other trouble with one member: not a change we can read
			             */
		} else if (path[strlen(path) - 1] == '/' && !(p->have & DAVP_ETAG)) {
			free(path); /* a sub-collection */
		} else {
			add_item(op, path, p->etag, NULL, 0, 200, false);
			free(path);
		}
		return 0;
	case OP_QUERY:
		if (same_path(path, op->target)) {
			/* RFC 6352 8.6.1: the collection itself with 507: cut at the limit. */
			if (r->status == 507)
				op->more = true;
		} else if ((r->status == 0 || (r->status >= 200 && r->status <= 299)) &&
		           op->kind == DAV_CALDAV && (p->have & DAVP_ETAG)) {
			/* a calendar-query asks the ETags only (dav_calendar_uid_query) */
			add_item(op, path, p->etag, NULL, 0, 200, false);
		} else if ((r->status == 0 || (r->status >= 200 && r->status <= 299)) &&
		           (p->have & DAVP_DATA) && !(r->oversize & DAVP_DATA)) {
			add_item(op, path, p->etag, p->data, p->data_len, 200, false);
		} /* else a card the server could not give, or over the data cap: left out */
		free(path);
		return 0;
	case OP_MULTIGET:
		if (r->status != 0 && (r->status < 200 || r->status > 299))
			add_item(op, path, NULL, NULL, 0, r->status, false);
		else if (r->oversize & DAVP_DATA)
			add_item(op, path, p->etag, NULL, 0, 200, true);
		else if (p->have & DAVP_DATA)
			add_item(op, path, p->etag, p->data, p->data_len, 200, false);
		else
			add_item(op, path, NULL, NULL, 0, 404, false);
		free(path);
		return 0;
	default:
		free(path);
		return 0;
	}
}

/* ---- Ending ---- */

static void
op_free(struct dav_op *op)
{
	xfer_clear(op);
	free(op->path);
	free(op->url);
	free(op->body);
	free(op->cond);
	free(op->content_type);
	free(op->target);
	free(op->start_error);
	free(op->found_principal);
	free(op->found_home);
	for (size_t i = 0; i < op->disc.n_colls; i++) {
		struct dav_collection *c = &op->disc.colls[i];
		free(c->href);
		free(c->name);
		free(c->color);
		free(c->ctag);
		free(c->sync_token);
	}
	free(op->disc.colls);
	for (size_t i = 0; i < op->n_items; i++) {
		free(op->items[i].href);
		free(op->items[i].etag);
		free(op->items[i].data);
	}
	free(op->items);
	for (size_t i = 0; i < op->n_removed; i++)
		free(op->removed[i]);
	free(op->removed);
	free(op->token);
	for (size_t i = 0; i < op->n_hrefs; i++)
		free(op->hrefs[i]);
	free(op->hrefs);
	free(op);
}

/* Call back once and free the operation. */
static void
finish(struct dav_op *op)
{
	struct dav_result r;
	char *etag = op->etag_hdr;

	TAILQ_REMOVE(&op->a->ops, op, link);
	op->a->n_ops--;
	memset(&r, 0, sizeof(r));
	r.http = op->http;
	op->etag_hdr = NULL;
	xfer_clear(op);
	r.status = op->failed ? op->fail : DAV_OK;
	r.error = op->failed ? op->err : "";
	r.requests = op->requests;
	if (!op->failed) {
		if (op->type == OP_DISCOVER) {
			op->disc.principal = op->found_principal;
			op->disc.home = op->found_home;
			r.discovery = &op->disc;
		}
		r.items = op->items;
		r.n_items = op->n_items;
		r.removed = op->removed;
		r.n_removed = op->n_removed;
		r.sync_token = op->token;
		r.more = op->more;
		/* A weak ETag cannot be matched by If-Match: none, then. */
		if (etag != NULL && strncmp(etag, "W/", 2) != 0)
			r.etag = etag;
	}
	op->done(op->arg, &r);
	free(etag);
	op_free(op);
}

/* The answer's HTTP status as a failure of op. */
static void
fail_status(struct dav_op *op, const char *expected)
{
	const struct davxml_doc *d = op->x ? davxml_doc(op->x) : NULL;
	const char *pre = d && d->error_name[0] ? d->error_name : NULL;
	enum dav_status st;

	switch (op->http) {
	case 401:
		st = DAV_AUTH;
		break;
	case 404:
	case 410:
		st = DAV_NOT_FOUND;
		break;
	case 412:
		st = DAV_CONFLICT;
		break;
	case 403:
	case 409:
		st = pre ? DAV_PRECONDITION : (op->http == 403 ? DAV_FORBIDDEN : DAV_HTTP);
		break;
	default:
		st = DAV_HTTP;
		break;
	}
	if (pre != NULL)
		op_fail(op, st, "%s %s: HTTP %ld (%s)", op->method, op->path, op->http, pre);
	else
		op_fail(op, st, "%s %s: HTTP %ld%s%s", op->method, op->path, op->http,
		        expected ? ", expected " : "", expected ? expected : "");
}

/* A 3xx to a PROPFIND or REPORT: ask again there if it is the same server. */
static bool
redirect(struct dav_op *op)
{
	char *loc = NULL, *path;
	const char *why = "", *err;

	if (op->http < 300 || op->http > 399 || op->http == 304)
		return false;
	if (strcmp(op->method, "PROPFIND") != 0 && strcmp(op->method, "REPORT") != 0)
		return false;
	curl_easy_getinfo(op->easy, CURLINFO_REDIRECT_URL, &loc);
	if (loc == NULL) {
		op_fail(op, DAV_HTTP, "%s %s: HTTP %ld without a Location", op->method, op->path,
		        op->http);
		return true;
	}
	if (++op->redirects > DAV_MAX_REDIRECTS) {
		op_fail(op, DAV_HTTP, "%s %s: more than %d redirects", op->method, op->path,
		        DAV_MAX_REDIRECTS);
		return true;
	}
	if ((path = resolve(op->a, op->path, loc, &why)) == NULL) {
		op_fail(op, strcmp(why, "points at another server") == 0 ? DAV_REFUSED : DAV_HTTP,
		        "%s %s: redirected to %.200s, which %s", op->method, op->path, loc, why);
		return true;
	}
	free(op->path);
	op->path = path;
	if (send_request(op, &err) < 0)
		op_fail(op, DAV_NETWORK, "%s %s: %s", op->method, op->path, err);
	return true;
}

/* Start the request set up in op, or fail op with why. */
static void
next_request(struct dav_op *op)
{
	const char *err;

	if (send_request(op, &err) < 0)
		op_fail(op, DAV_NETWORK, "%s %s: %s", op->method, op->path, err);
}

/* Discovery: the answer of the current step (a 207 read, or another status). */
static void
discover_step(struct dav_op *op)
{
	bool ms = op->http == 207;

	switch (op->step) {
	case ST_START:
	case ST_WELL_KNOWN:
		if (op->http == 401) {
			fail_status(op, NULL);
			return;
		}
		if (op->step == ST_START) {
			op->start_multistatus = ms;
			if (!ms)
				op->start_error =
				    xasprintf("PROPFIND %s: HTTP %ld", op->path, op->http);
		}
		if (ms && op->found_home != NULL) {
			op->disc.well_known = op->step == ST_WELL_KNOWN;
		} else if (ms && op->found_principal != NULL) {
			op->disc.well_known = op->step == ST_WELL_KNOWN;
			op->step = ST_PRINCIPAL;
			set_request(op, "PROPFIND", op->found_principal, "0",
			            body_principal(op->kind));
			next_request(op);
			return;
		} else if (op->step == ST_START) {
			op->step = ST_WELL_KNOWN;
			set_request(op, "PROPFIND",
			            op->kind == DAV_CALDAV ? "/.well-known/caldav"
			                                   : "/.well-known/carddav",
			            "0", body_principal(op->kind));
			next_request(op);
			return;
		} else if (op->start_multistatus) {
			/* No principal anywhere: the configured URL is taken as the home. */
			op->found_home = xstrdup(op->a->path);
		} else {
			op_fail(op, op->http == 207 ? DAV_PROTOCOL : DAV_HTTP,
			        "discovery found no principal: %s; PROPFIND %s: %s",
			        op->start_error, op->path,
			        ms ? "names none" : "no 207 Multi-Status");
			return;
		}
		break;
	case ST_PRINCIPAL:
		if (!ms) {
			fail_status(op, "207");
			return;
		}
		if (op->found_home == NULL) {
			op_fail(
			    op, DAV_PROTOCOL, "PROPFIND %s: the principal names no %s", op->path,
			    op->kind == DAV_CALDAV ? "calendar-home-set" : "addressbook-home-set");
			return;
		}
		break;
	case ST_HOME:
		if (!ms)
			fail_status(op, "207");
		else
			op->step = ST_ONE; /* done */
		return;
	default:
		return;
	}
	/* The home is known: list it. */
	op->step = ST_HOME;
	set_request(op, "PROPFIND", op->found_home, "1", body_home(op->kind));
	next_request(op);
}

static char *
body_multiget(struct dav_op *op)
{
	struct sbuf b = {0};
	size_t end = op->next_href + op->a->multiget_max;

	if (end > op->n_hrefs)
		end = op->n_hrefs;
	if (op->kind == DAV_CALDAV)
		sbuf_add(&b, XML_DECL "<C:calendar-multiget " NS_D " " NS_C "><D:prop>"
		                      "<D:getetag/><C:calendar-data/></D:prop>");
	else
		sbuf_add(&b, XML_DECL "<CR:addressbook-multiget " NS_D " " NS_CR "><D:prop>"
		                      "<D:getetag/><CR:address-data/></D:prop>");
	for (; op->next_href < end; op->next_href++) {
		sbuf_add(&b, "<D:href>");
		sbuf_add_escaped(&b, op->hrefs[op->next_href]);
		sbuf_add(&b, "</D:href>");
	}
	sbuf_add(&b,
	         op->kind == DAV_CALDAV ? "</C:calendar-multiget>" : "</CR:addressbook-multiget>");
	return sbuf_take(&b);
}

/* The answer to a request of op, read whole: go on or finish. */
static void
answered(struct dav_op *op)
{
	switch (op->type) {
	case OP_DISCOVER:
		discover_step(op);
		if (op->failed || op->step == ST_ONE)
			finish(op);
		return; /* else the next step's request is on its way */
	case OP_LIST:
		if (op->http != 207)
			fail_status(op, "207");
		break;
	case OP_SYNC:
		if (op->http == 207) {
			const struct davxml_doc *d = davxml_doc(op->x);
			if (d->sync_token == NULL || d->sync_token[0] == '\0')
				op_fail(op, DAV_PROTOCOL,
				        "REPORT %s: the sync-collection answer has no "
				        "sync-token",
				        op->path);
			else
				op->token = xstrdup(d->sync_token);
		} else if ((op->http == 403 || op->http == 409) && op->x != NULL &&
		           (davxml_doc(op->x)->errors & DAVERR_VALID_SYNC_TOKEN)) {
			op_fail(op, DAV_TOKEN_INVALID, "REPORT %s: HTTP %ld (valid-sync-token)",
			        op->path, op->http);
		} else {
			fail_status(op, "207");
		}
		break;
	case OP_MULTIGET:
		if (op->http != 207) {
			fail_status(op, "207");
			break;
		}
		if (op->next_href < op->n_hrefs) {
			set_request(op, "REPORT", op->target, "1", body_multiget(op));
			next_request(op);
			if (!op->failed)
				return;
		}
		break;
	case OP_QUERY:
		if (op->http != 207)
			fail_status(op, "207");
		break;
	case OP_PUT:
		if (op->http != 200 && op->http != 201 && op->http != 204)
			fail_status(op, NULL);
		break;
	case OP_DELETE:
		if (op->http != 200 && op->http != 204)
			fail_status(op, NULL);
		break;
	}
	finish(op);
}

/* curl_loop's callback: the transfer ended. */
static void
on_done(void *arg, CURL *easy, CURLcode rc)
{
	struct dav_op *op = arg;
	const char *err;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &op->http);
	if (!op->decided && rc == CURLE_OK && op->http == 207) {
		/* A 207 without a body. */
		op_fail(op, DAV_PROTOCOL, "%s %s: a 207 answer without a body", op->method,
		        op->path);
	}
	if (op->failed) { /* refused or unreadable while the body came */
		finish(op);
		return;
	}
	if (rc != CURLE_OK) {
		if (op->over_cap)
			op_fail(op, DAV_PROTOCOL, "%s %s: an answer over %zu bytes", op->method,
			        op->path,
			        op->xml_answer ? op->a->lim.max_body : (size_t)DAV_MAX_ERROR_BODY);
		else
			op_fail(op, DAV_NETWORK, "%s %s: %s%s%s", op->method, op->path,
			        curl_easy_strerror(rc), op->curl_err[0] ? ": " : "", op->curl_err);
		finish(op);
		return;
	}
	if (op->x != NULL && op->xml_answer && davxml_finish(op->x, &err) < 0) {
		op_fail(op, DAV_PROTOCOL, "%s %s: %s", op->method, op->path, err);
		finish(op);
		return;
	}
	if (op->x != NULL && !op->xml_answer) {
		const char *ignored;
		(void)davxml_finish(op->x, &ignored);
	}
	if (redirect(op)) {
		if (op->failed)
			finish(op);
		return;
	}
	answered(op);
}

/* ---- Operations ---- */

static struct dav_op *
op_new(struct dav_account *a, enum op_type type, dav_done_cb *done, void *arg)
{
	struct dav_op *op = xcalloc(1, sizeof(*op));

	op->a = a;
	op->type = type;
	op->done = done;
	op->arg = arg;
	op->step = ST_ONE;
	return op;
}

/* Send op's first request; on failure free it and return NULL. */
static struct dav_op *
op_start(struct dav_op *op, const char **errstr)
{
	if (send_request(op, errstr) < 0) {
		op_free(op);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&op->a->ops, op, link);
	op->a->n_ops++;
	return op;
}

/* A caller's href (path or URL of the server) as a path, or NULL with *errstr. */
static char *
caller_path(struct dav_account *a, const char *href, const char **errstr)
{
	const char *why;
	char *p;

	if (href == NULL || *href == '\0') {
		*errstr = "no href";
		return NULL;
	}
	if ((p = resolve(a, NULL, href, &why)) == NULL)
		*errstr = strcmp(why, "points at another server") == 0
		              ? "the href points at another server"
		              : "the href is no URL";
	return p;
}

struct dav_op *
dav_discover(struct dav_account *a, enum dav_kind kind, dav_done_cb *done, void *arg,
             const char **errstr)
{
	struct dav_op *op = op_new(a, OP_DISCOVER, done, arg);

	op->kind = kind;
	op->step = ST_START;
	set_request(op, "PROPFIND", a->path, "0", body_principal(kind));
	return op_start(op, errstr);
}

struct dav_op *
dav_list(struct dav_account *a, const char *collection, dav_done_cb *done, void *arg,
         const char **errstr)
{
	char *path = caller_path(a, collection, errstr);
	struct dav_op *op;

	if (path == NULL)
		return NULL;
	op = op_new(a, OP_LIST, done, arg);
	op->target = path;
	set_request(op, "PROPFIND", path, "1",
	            xstrdup(XML_DECL "<D:propfind " NS_D "><D:prop><D:getetag/><D:resourcetype/>"
	                             "</D:prop></D:propfind>"));
	return op_start(op, errstr);
}

struct dav_op *
dav_sync(struct dav_account *a, const char *collection, const char *token, dav_done_cb *done,
         void *arg, const char **errstr)
{
	char *path = caller_path(a, collection, errstr);
	struct dav_op *op;
	struct sbuf b = {0};

	if (path == NULL)
		return NULL;
	if (token != NULL && strlen(token) > a->lim.max_value) {
		free(path);
		*errstr = "a sync token over the value cap";
		return NULL;
	}
	op = op_new(a, OP_SYNC, done, arg);
	op->target = path;
	sbuf_add(&b, XML_DECL "<D:sync-collection " NS_D "><D:sync-token>");
	if (token != NULL)
		sbuf_add_escaped(&b, token);
	sbuf_add(&b, "</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop>"
	             "</D:sync-collection>");
	/* RFC 6578 3.2: Depth 0 (the sync-level says how deep). */
	set_request(op, "REPORT", path, "0", sbuf_take(&b));
	return op_start(op, errstr);
}

struct dav_op *
dav_multiget(struct dav_account *a, enum dav_kind kind, const char *collection,
             const char *const *hrefs, size_t n, dav_done_cb *done, void *arg, const char **errstr)
{
	char *path;
	struct dav_op *op;

	if (n == 0) {
		*errstr = "no hrefs";
		return NULL;
	}
	if (n > DAV_MAX_HREFS) {
		*errstr = "more hrefs than DAV_MAX_HREFS";
		return NULL;
	}
	if ((path = caller_path(a, collection, errstr)) == NULL)
		return NULL;
	op = op_new(a, OP_MULTIGET, done, arg);
	op->kind = kind;
	op->target = path;
	op->hrefs = xcalloc(n, sizeof(*op->hrefs));
	for (size_t i = 0; i < n; i++) {
		if ((op->hrefs[i] = caller_path(a, hrefs[i], errstr)) == NULL) {
			op_free(op);
			return NULL;
		}
		op->n_hrefs++;
	}
	/* RFC 4791 7.9 and RFC 6352 8.7 disagree on Depth; servers take 1. */
	set_request(op, "REPORT", path, "1", body_multiget(op));
	return op_start(op, errstr);
}

/* A vCard property name (RFC 6350 3.3: an IANA token or an x-name). */
static bool
vcard_name(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-') ||
		    n >= 64)
			return false;
	return n > 0;
}

/*
 * Why s cannot be an XML 1.0 text (not UTF-8, or a control character but
 * the tab), or NULL when it can.
 */
static const char *
xml_text_bad(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t k;
		unsigned c = *p, v;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return "a query text with control characters";
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return "a query text that is not UTF-8";
		v = c & (0x3fu >> k);
		for (size_t i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return "a query text that is not UTF-8";
			v = (v << 6) | (p[i] & 0x3fu);
		}
		/* overlong forms, surrogates, past U+10FFFF */
		if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10ffff)) ||
		    (v >= 0xd800 && v <= 0xdfff))
			return "a query text that is not UTF-8";
		/* C1 controls, the non-characters XML 1.0 leaves out */
		if ((v >= 0x80 && v <= 0x9f) || v == 0xfffe || v == 0xffff)
			return "a query text with control characters";
		p += k + 1;
	}
	return NULL;
}

char *
dav_addressbook_query_body(const struct dav_card_query *q, const char **errstr)
{
	static const char *const matches[] = {"contains", "equals", "starts-with", "ends-with"};
	const char *match = q->match ? q->match : "contains";
	struct sbuf b = {0};
	bool known = false;

	if (q->text == NULL) {
		*errstr = "no query text";
		return NULL;
	}
	if (strlen(q->text) > DAV_QUERY_TEXT_MAX) {
		*errstr = "a query text too long (over DAV_QUERY_TEXT_MAX bytes)";
		return NULL;
	}
	if ((*errstr = xml_text_bad(q->text)) != NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++)
		known = known || strcmp(match, matches[i]) == 0;
	if (!known) {
		*errstr = "an unknown text-match type";
		return NULL;
	}
	if (q->props == NULL || q->props[0] == NULL) {
		*errstr = "a query without properties";
		return NULL;
	}
	for (size_t i = 0; q->props[i] != NULL; i++)
		if (!vcard_name(q->props[i])) {
			*errstr = "a query property that is not a vCard name";
			return NULL;
		}
	for (size_t i = 0; q->address_props && q->address_props[i] != NULL; i++)
		if (!vcard_name(q->address_props[i])) {
			*errstr = "an address-data property that is not a vCard name";
			return NULL;
		}
	sbuf_add(&b, XML_DECL "<CR:addressbook-query " NS_D " " NS_CR "><D:prop><D:getetag/>");
	if (q->address_props != NULL) {
		sbuf_add(&b, "<CR:address-data>");
		for (size_t i = 0; q->address_props[i] != NULL; i++)
			sbuf_printf(&b, "<CR:prop name=\"%s\"/>", q->address_props[i]);
		sbuf_add(&b, "</CR:address-data>");
	} else {
		sbuf_add(&b, "<CR:address-data/>");
	}
	sbuf_add(&b, "</D:prop><CR:filter test=\"anyof\">");
	for (size_t i = 0; q->props[i] != NULL; i++) {
		sbuf_printf(&b,
		            "<CR:prop-filter name=\"%s\"><CR:text-match "
		            "collation=\"i;unicode-casemap\" match-type=\"%s\">",
		            q->props[i], match);
		sbuf_add_escaped(&b, q->text);
		sbuf_add(&b, "</CR:text-match></CR:prop-filter>");
	}
	sbuf_add(&b, "</CR:filter>");
	if (q->nresults > 0)
		sbuf_printf(&b, "<CR:limit><CR:nresults>%zu</CR:nresults></CR:limit>", q->nresults);
	sbuf_add(&b, "</CR:addressbook-query>");
	return sbuf_take(&b);
}

struct dav_op *
dav_addressbook_query(struct dav_account *a, const char *collection, const struct dav_card_query *q,
                      dav_done_cb *done, void *arg, const char **errstr)
{
	char *path, *body;
	struct dav_op *op;

	if ((body = dav_addressbook_query_body(q, errstr)) == NULL)
		return NULL;
	if ((path = caller_path(a, collection, errstr)) == NULL) {
		free(body);
		return NULL;
	}
	op = op_new(a, OP_QUERY, done, arg);
	op->kind = DAV_CARDDAV;
	op->target = path;
	/* RFC 6352 8.6: Depth 1 (the collection's members). */
	set_request(op, "REPORT", path, "1", body);
	return op_start(op, errstr);
}

char *
dav_calendar_uid_query_body(const char *uid, const char **errstr)
{
	struct sbuf b = {0};

	if (uid == NULL || *uid == '\0') {
		*errstr = "no UID";
		return NULL;
	}
	if (strlen(uid) > DAV_UID_MAX) {
		*errstr = "a UID too long (over DAV_UID_MAX bytes)";
		return NULL;
	}
	if ((*errstr = xml_text_bad(uid)) != NULL)
		return NULL;
	/* RFC 4791 7.8.6 and 9.7.5: the events whose UID is uid, octet for octet */
	sbuf_add(&b, XML_DECL "<C:calendar-query " NS_D " " NS_C "><D:prop><D:getetag/></D:prop>"
	                      "<C:filter><C:comp-filter name=\"VCALENDAR\"><C:comp-filter "
	                      "name=\"VEVENT\"><C:prop-filter name=\"UID\"><C:text-match "
	                      "collation=\"i;octet\" match-type=\"equals\">");
	sbuf_add_escaped(&b, uid);
	sbuf_add(&b, "</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter>"
	             "</C:calendar-query>");
	return sbuf_take(&b);
}

struct dav_op *
dav_calendar_uid_query(struct dav_account *a, const char *collection, const char *uid,
                       dav_done_cb *done, void *arg, const char **errstr)
{
	char *path, *body;
	struct dav_op *op;

	if ((body = dav_calendar_uid_query_body(uid, errstr)) == NULL)
		return NULL;
	if ((path = caller_path(a, collection, errstr)) == NULL) {
		free(body);
		return NULL;
	}
	op = op_new(a, OP_QUERY, done, arg);
	op->kind = DAV_CALDAV;
	op->target = path;
	/* RFC 4791 7.8: Depth 1 (the collection's members). */
	set_request(op, "REPORT", path, "1", body);
	return op_start(op, errstr);
}

struct dav_op *
dav_put(struct dav_account *a, const char *href, const char *content_type, const char *body,
        size_t len, const char *etag, dav_done_cb *done, void *arg, const char **errstr)
{
	char *path;
	struct dav_op *op;

	if (etag != NULL && !header_safe(etag, 1024)) {
		*errstr = "an ETag that cannot be sent in a header";
		return NULL;
	}
	if (content_type == NULL || !header_safe(content_type, 100)) {
		*errstr = "no content type, or one that cannot be sent in a header";
		return NULL;
	}
	if ((path = caller_path(a, href, errstr)) == NULL)
		return NULL;
	op = op_new(a, OP_PUT, done, arg);
	op->target = path;
	op->cond = etag ? xasprintf("If-Match: %s", etag) : xstrdup("If-None-Match: *");
	op->content_type = xstrdup(content_type);
	set_request(op, "PUT", path, NULL, xmemdup0(body ? body : "", len));
	op->body_len = len;
	return op_start(op, errstr);
}

struct dav_op *
dav_delete(struct dav_account *a, const char *href, const char *etag, dav_done_cb *done, void *arg,
           const char **errstr)
{
	char *path;
	struct dav_op *op;

	if (etag != NULL && !header_safe(etag, 1024)) {
		*errstr = "an ETag that cannot be sent in a header";
		return NULL;
	}
	if ((path = caller_path(a, href, errstr)) == NULL)
		return NULL;
	op = op_new(a, OP_DELETE, done, arg);
	op->target = path;
	op->cond = etag ? xasprintf("If-Match: %s", etag) : NULL;
	set_request(op, "DELETE", path, NULL, NULL);
	return op_start(op, errstr);
}

void
dav_op_cancel(struct dav_op **opp)
{
	struct dav_op *op = *opp;

	if (op == NULL)
		return;
	TAILQ_REMOVE(&op->a->ops, op, link);
	op->a->n_ops--;
	op_free(op);
	*opp = NULL;
}

size_t
dav_account_ops(const struct dav_account *a)
{
	return a->n_ops;
}

/* ---- The account ---- */

struct dav_account *
dav_account_new(struct curl_loop *cl, const struct dav_conf *conf, const char **errstr)
{
	struct dav_account *a;
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL;

	if (conf->url == NULL || conf->user == NULL || conf->password == NULL) {
		*errstr = "a DAV account needs a URL, a user and a password";
		return NULL;
	}
	if ((u = curl_url()) == NULL)
		fatalx("curl_url failed");
	a = xcalloc(1, sizeof(*a));
	TAILQ_INIT(&a->ops);
	if (curl_url_set(u, CURLUPART_URL, conf->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		*errstr = "the DAV URL is no URL";
		goto fail;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		*errstr = "the DAV URL must be http:// or https://";
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
		*errstr = "the DAV URL carries credentials: the user's own are used";
		goto fail;
	}
	if (strcasecmp(scheme, "http") == 0 && !dav_host_loopback(host) && !conf->plain_http) {
		*errstr =
		    "http:// to a host that is not loopback would send the password in clear: "
		    "use https://";
		goto fail;
	}
	a->cl = cl;
	a->scheme = str_lower(xstrdup(scheme));
	a->host = xstrdup(host);
	a->port = xstrdup(port);
	a->origin = xasprintf("%s://%s:%s", a->scheme, a->host, a->port);
	if ((a->path = path_of(u)) == NULL)
		a->path = xstrdup("/");
	a->user = xstrdup(conf->user);
	a->password = xstrdup(conf->password);
	a->ca_file = xstrdup_null(conf->ca_file);
	a->tls_insecure = conf->tls_insecure;
	a->connect_timeout_ms = conf->connect_timeout_ms ? (long)conf->connect_timeout_ms
	                                                 : DAV_DEFAULT_CONNECT_TIMEOUT_MS;
	a->timeout_ms = conf->timeout_ms ? (long)conf->timeout_ms : DAV_DEFAULT_TIMEOUT_MS;
	a->lim = davxml_limits_or_default(&conf->limits);
	a->multiget_max = conf->multiget_max ? conf->multiget_max : DAV_DEFAULT_MULTIGET_MAX;
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return a;
fail:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(password);
	curl_url_cleanup(u);
	free(a);
	return NULL;
}

void
dav_account_free(struct dav_account **ap)
{
	struct dav_account *a = *ap;

	if (a == NULL)
		return;
	while (!TAILQ_EMPTY(&a->ops)) {
		struct dav_op *op = TAILQ_FIRST(&a->ops);
		dav_op_cancel(&op);
	}
	explicit_bzero(a->password, strlen(a->password));
	free(a->password);
	free(a->user);
	free(a->scheme);
	free(a->host);
	free(a->port);
	free(a->origin);
	free(a->path);
	free(a->ca_file);
	free(a);
	*ap = NULL;
}
