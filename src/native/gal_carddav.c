/*
 * gal_carddav.c: the global address list from a CardDAV address book
 * (gal_carddav.h).
 *
 * The HTTP, the XML and the href checks are the DAV client's (dav/dav.h,
 * libcurl on a curl_loop of the worker's loop, libxml2's push parser); the
 * cards are read by the project's vCard reader (pim/vcard.h). What is left
 * here is the search's shape and the mapping of a card to a GAL entry.
 *
 * Per request, a backend part (gal_carddav_backend) holds the DAV account
 * of the request's credentials (made at its first lookup) and records its
 * lookups in the order asked, as every asynchronous backend does
 * (mailbox.h): the first run of a request starts each REPORT and answers
 * MBX_PENDING; once they are back, the rerun answers them from the records.
 */
#include "native/gal_carddav.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "dav/dav.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/curl_loop.h"
#include "pim/vcard.h"

#define VALUE_MAX   1024          /* bytes of a text value kept */
#define PICTURE_MAX (1024 * 1024) /* bytes of a photo read at most */
#define CARD_MAX    (2u << 20)    /* bytes of one card (address-data) */
#define BODY_MAX    (32u << 20)   /* bytes of one REPORT answer */

struct gal_carddav {
	struct curl_loop *cl;
	char *url;
	char *user, *password; /* NULL: the phone user's */
	char *ca_file;
	unsigned connect_timeout_ms, timeout_ms;
	unsigned long lookups, failures;
};

/* ---- the configuration ---- */

int
gal_carddav_check(const struct gal_carddav_conf *c, const char **errstr)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL;
	int rv = -1;

	if (c->url == NULL) {
		*errstr = "no URL";
		return -1;
	}
	if ((u = curl_url()) == NULL)
		fatalx("curl_url failed");
	if (curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		*errstr = "not a URL (http[s]://host[:port]/path-of-the-address-book/)";
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		*errstr = "an address book URL must be http:// or https://";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || *host == '\0') {
		*errstr = "the URL names no host";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
		*errstr = "the URL carries credentials: the phone user's are used, or "
		          "gal_bind_dn and gal_bind_password";
		goto out;
	}
	if (strcasecmp(scheme, "http") == 0 && !dav_host_loopback(host)) {
		*errstr =
		    "http:// to a host that is not loopback would send the password in clear: "
		    "use https://";
		goto out;
	}
	if ((c->user == NULL) != (c->password == NULL)) {
		*errstr = "gal_bind_dn and gal_bind_password go together";
		goto out;
	}
	rv = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(password);
	curl_url_cleanup(u);
	return rv;
}

/* ---- a card as an entry ---- */

/* s cut to at most VALUE_MAX bytes, not inside a UTF-8 sequence; "" is NULL. Takes s. */
static char *
capped(char *s)
{
	size_t n;

	if (s == NULL || *s == '\0') {
		free(s);
		return NULL;
	}
	if ((n = strlen(s)) > VALUE_MAX) {
		n = VALUE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		s[n] = '\0';
	}
	return s;
}

/* The text of the first property named name, or NULL. */
static char *
first_text(const struct vcard *card, const char *name)
{
	const struct vcard_prop *p = vcard_get(card, name);

	return p ? capped(vcard_text(p)) : NULL;
}

/* A TEL's number: 4.0's tel: URI without its scheme. */
static char *
tel_number(const struct vcard_prop *p)
{
	char *t = vcard_text(p);

	if (t != NULL && strncasecmp(t, "tel:", 4) == 0)
		memmove(t, t + 4, strlen(t + 4) + 1);
	return capped(t);
}

/* The numbers: the first of each kind. */
static void
read_phones(const struct vcard *card, struct mbx_gal_entry *x)
{
	const struct vcard_prop *p;
	size_t pos = 0;

	while ((p = vcard_find(card, "TEL", &pos)) != NULL) {
		char **slot;
		if (vcard_has_type(p, "fax") || vcard_has_type(p, "pager") ||
		    vcard_has_type(p, "textphone"))
			continue;
		if (vcard_has_type(p, "cell") || vcard_has_type(p, "iphone") ||
		    vcard_has_type(p, "mobile"))
			slot = &x->mobile_phone;
		else if (vcard_has_type(p, "home"))
			slot = &x->home_phone;
		else
			slot = &x->phone;
		if (*slot == NULL)
			*slot = tel_number(p);
	}
}

/*
 * The address shown: for an exact address, the card's EMAIL equal to it
 * (none: the card does not match, false); else the preferred one.
 */
static bool
read_email(const struct vcard *card, const char *exact, struct mbx_gal_entry *x)
{
	const struct vcard_prop *p, *best = NULL;
	size_t pos = 0;

	while ((p = vcard_find(card, "EMAIL", &pos)) != NULL) {
		if (exact != NULL) {
			char *t = vcard_text(p);
			bool same = t != NULL && strcasecmp(t, exact) == 0;
			free(t);
			if (same) {
				best = p;
				break;
			}
		} else if (best == NULL || vcard_pref(p) < vcard_pref(best)) {
			best = p;
		}
	}
	if (best == NULL)
		return exact == NULL;
	x->email = capped(vcard_text(best));
	return true;
}

static void
read_picture(const struct vcard *card, struct mbx_gal_entry *x, size_t picture_max)
{
	const struct vcard_prop *p = vcard_get(card, "PHOTO");
	size_t size = p ? vcard_photo_size(p) : 0;
	uint8_t *data;
	size_t len;

	if (size == 0)
		return; /* none, or only a URI: nothing abqd fetches */
	if (size > picture_max || size > PICTURE_MAX) {
		x->picture_too_large = true;
		return;
	}
	if (vcard_photo(p, &data, &len, NULL) == 0) {
		if (len > picture_max) {
			free(data);
			x->picture_too_large = true;
			return;
		}
		x->picture = data;
		x->picture_len = len;
	}
}

/* One card into x: 1, 0 when it is not an entry of the answer (not the exact address asked). */
static int
card_entry(const struct vcard *card, const char *exact, size_t picture_max, struct mbx_gal_entry *x)
{
	const struct vcard_prop *p;

	memset(x, 0, sizeof(*x));
	if (!read_email(card, exact, x))
		return 0;
	if ((p = vcard_get(card, "N")) != NULL) {
		struct vcard_n n;
		vcard_n_get(p, &n);
		x->first_name = capped(xstrdup(n.given));
		x->last_name = capped(xstrdup(n.family));
		vcard_n_clear(&n);
	}
	x->display_name = first_text(card, "FN");
	if (x->display_name == NULL && (x->first_name != NULL || x->last_name != NULL))
		x->display_name = capped(xasprintf("%s%s%s", x->first_name ? x->first_name : "",
		                                   x->first_name && x->last_name ? " " : "",
		                                   x->last_name ? x->last_name : ""));
	if (x->display_name == NULL && x->email != NULL)
		x->display_name = xstrdup(x->email);
	if ((p = vcard_get(card, "NICKNAME")) != NULL) {
		size_t n;
		char **v = vcard_list(p, &n);
		x->alias = n > 0 ? capped(xstrdup(v[0])) : NULL;
		vcard_strv_free(v);
	}
	if ((p = vcard_get(card, "ORG")) != NULL)
		x->company = capped(vcard_comp(p, 0, " "));
	x->title = first_text(card, "TITLE");
	x->office = first_text(card, "X-EAS-OFFICELOCATION");
	read_phones(card, x);
	if (picture_max > 0)
		read_picture(card, x, picture_max);
	return 1;
}

static int
by_name(const void *a, const void *b)
{
	const struct mbx_gal_entry *x = a, *y = b;

	return strcasecmp(x->display_name ? x->display_name : "",
	                  y->display_name ? y->display_name : "");
}

/* ---- the per-request part ---- */

struct gal_part;

/* One lookup: asked, then answered (done). */
struct lookup {
	struct gal_part *p;
	char query[MBX_GAL_QUERY_MAX + 1];
	enum mbx_gal_match how;
	size_t max, picture_max;
	struct dav_op *op; /* in flight */
	bool done;
	int rv; /* 1, -1 */
	char err[300];
	struct mbx_gal_out out;
};

struct gal_part {
	struct mbx_backend base;
	struct gal_carddav *g;
	char *user, *password;
	struct dav_account *a; /* made at the first lookup */
	struct lookup **rec;   /* the request's lookups, in the order asked */
	size_t n_rec, next;
	size_t in_flight;
	void (*wait_cb)(void *);
	void *wait_arg;
};

/* Whether text, folded (g_utf8_casefold), begins with folded. */
static bool
folded_prefix(const char *text, const char *folded)
{
	char *f;
	bool yes;

	if (text == NULL)
		return false;
	f = g_utf8_casefold(text, -1);
	yes = strncmp(f, folded, strlen(folded)) == 0;
	g_free(f);
	return yes;
}

/*
 * Whether a card's display name (FN), first or last name (N), a nickname or
 * an address begins with the query (folded), as mailbox.h has a GAL match
 * it and the LDAP part asks its directory. CardDAV's text-match has no
 * "begins with" every server offers, a surname is inside FN, not at its
 * start, and N cannot be matched on every server: the server is asked for
 * the cards that contain the query, and they are sifted here.
 */
static bool
begins_with(const struct vcard *card, const char *folded)
{
	for (size_t i = 0; i < card->nprops; i++) {
		const struct vcard_prop *p = card->props[i];
		bool yes = false;

		if (vcard_is(p, "FN") || vcard_is(p, "EMAIL")) {
			char *t = vcard_text(p);
			yes = folded_prefix(t, folded);
			free(t);
		} else if (vcard_is(p, "N")) {
			struct vcard_n n;
			vcard_n_get(p, &n);
			yes = folded_prefix(n.given, folded) || folded_prefix(n.family, folded);
			vcard_n_clear(&n);
		} else if (vcard_is(p, "NICKNAME")) {
			size_t n;
			char **v = vcard_list(p, &n);
			for (size_t k = 0; k < n && !yes; k++)
				yes = folded_prefix(v[k], folded);
			vcard_strv_free(v);
		}
		if (yes)
			return true;
	}
	return false;
}

/* The cards of an answer into l->out: matching ones, sorted, cut at l->max. */
static void
read_answer(struct lookup *l, const struct dav_result *r)
{
	static const struct vcard_limits lim = {.max_input = CARD_MAX, .max_cards = 1};
	size_t keep = r->n_items < GAL_CARDDAV_KEEP_MAX ? r->n_items : GAL_CARDDAV_KEEP_MAX;
	struct mbx_gal_entry *v = keep ? xcalloc(keep, sizeof(*v)) : NULL;
	size_t n = 0, extra = 0;
	char *folded = g_utf8_casefold(l->query, -1);

	for (size_t i = 0; i < r->n_items; i++) {
		const struct dav_item *it = &r->items[i];
		const char *err;
		struct vcard *card;
		if (it->data == NULL)
			continue;
		if (n == keep) {
			extra++; /* counted, not read */
			continue;
		}
		if ((card = vcard_parse_one(it->data, it->data_len, &lim, &err)) == NULL) {
			log_debug("gal: %s: %s", it->href, err);
			continue;
		}
		if (l->how == MBX_GAL_ADDRESS || begins_with(card, folded))
			n += (size_t)card_entry(card, l->how == MBX_GAL_ADDRESS ? l->query : NULL,
			                        l->picture_max, &v[n]);
		vcard_free(card);
	}
	g_free(folded);
	if (n > 1)
		qsort(v, n, sizeof(*v), by_name);
	l->out.total = n + extra;
	l->out.n = n < l->max ? n : l->max;
	l->out.e = v;
	/* the entries past max (the one more asked) only counted */
	for (size_t i = l->out.n; i < n; i++)
		mbx_gal_entry_clear(&v[i]);
	if (l->out.n == 0) {
		free(v);
		l->out.e = NULL;
	}
}

/* dav's callback: a lookup's REPORT is answered. */
static void
lookup_done(void *arg, const struct dav_result *r)
{
	struct lookup *l = arg;
	struct gal_part *p = l->p;

	l->op = NULL;
	l->done = true;
	if (r->status == DAV_OK) {
		read_answer(l, r);
		l->rv = 1;
	} else {
		l->rv = -1;
		snprintf(l->err, sizeof(l->err), "the address book: %s: %s",
		         dav_status_name(r->status), r->error);
	}
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

static void
lookup_free(struct lookup *l)
{
	dav_op_cancel(&l->op);
	mbx_gal_out_clear(&l->out);
	free(l);
}

/* Drop the request's records; REPORTs in flight are cancelled. */
static void
part_drop(struct gal_part *p)
{
	for (size_t i = 0; i < p->n_rec; i++)
		lookup_free(p->rec[i]);
	free(p->rec);
	p->rec = NULL;
	p->n_rec = p->next = p->in_flight = 0;
	p->wait_cb = NULL;
}

/* Start l's REPORT: 0, or -1 with *errstr. */
static int
lookup_start(struct gal_part *p, struct lookup *l, const char **errstr)
{
	static const char *const name_props[] = {"FN", "EMAIL", "NICKNAME", NULL};
	static const char *const address_props[] = {"EMAIL", NULL};
	static const char *const data_props[] = {
	    "VERSION", "UID", "FN",  "N",     "NICKNAME",
	    "EMAIL",   "TEL", "ORG", "TITLE", "X-EAS-OFFICELOCATION",
	    NULL};
	static const char *const data_props_photo[] = {
	    "VERSION", "UID", "FN",  "N",     "NICKNAME",
	    "EMAIL",   "TEL", "ORG", "TITLE", "X-EAS-OFFICELOCATION",
	    "PHOTO",   NULL};
	struct gal_carddav *g = p->g;
	bool address = l->how == MBX_GAL_ADDRESS;
	struct dav_card_query q = {
	    .text = l->query,
	    .props = address ? address_props : name_props,
	    .match = address ? "equals" : "contains",
	    /* the server's matches are filtered here (begins_with): ask for room */
	    .nresults = address ? l->max + 1 : GAL_CARDDAV_KEEP_MAX,
	    .address_props = l->picture_max > 0 ? data_props_photo : data_props,
	};

	if (p->a == NULL) {
		struct dav_conf dc = {
		    .url = g->url,
		    .user = g->user ? g->user : p->user,
		    .password = g->user ? g->password : p->password,
		    .ca_file = g->ca_file,
		    .connect_timeout_ms = g->connect_timeout_ms,
		    .timeout_ms = g->timeout_ms,
		    .limits = {.max_body = BODY_MAX, .max_data = CARD_MAX},
		};
		if ((p->a = dav_account_new(g->cl, &dc, errstr)) == NULL)
			return -1;
	}
	l->op = dav_addressbook_query(p->a, g->url, &q, lookup_done, l, errstr);
	return l->op != NULL ? 0 : -1;
}

static int
p_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
             size_t picture_max, struct mbx_gal_out *out, const char **errstr_r)
{
	struct gal_part *p = (struct gal_part *)b;
	struct lookup *l;
	const char *err;

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
	l->p = p;
	snprintf(l->query, sizeof(l->query), "%s", query);
	/* XML 1.0 cannot carry control characters: they match as spaces */
	for (char *c = l->query; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	l->how = how;
	l->max = max > MBX_GAL_MAX ? MBX_GAL_MAX : max;
	l->picture_max = picture_max;
	p->rec = xrealloc(p->rec, (p->n_rec + 1) * sizeof(*p->rec));
	p->rec[p->n_rec++] = l;
	p->next++;
	if (lookup_start(p, l, &err) < 0) {
		/* answered now: a failure, as the rerun will read it */
		l->done = true;
		l->rv = -1;
		snprintf(l->err, sizeof(l->err), "the address book: %s", err);
		p->g->lookups++;
		p->g->failures++;
		abq_metrics_gal_lookup(true);
		log_warn("gal: %s", l->err);
		*errstr_r = l->err;
		return -1;
	}
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
	struct gal_part *p = (struct gal_part *)b;

	part_drop(p);
	dav_account_free(&p->a);
	free(p->user);
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p);
}

static const struct mbx_ops gal_ops = {
    .name = "gal-carddav",
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
gal_carddav_backend(struct gal_carddav *g, const char *user, const char *password)
{
	struct gal_part *p = xcalloc(1, sizeof(*p));

	p->base.ops = &gal_ops;
	p->g = g;
	p->user = xstrdup_null(user);
	p->password = xstrdup_null(password);
	return &p->base;
}

/* ---- the address book ---- */

struct gal_carddav *
gal_carddav_new(struct event_base *base, const struct gal_carddav_conf *c, const char **errstr)
{
	struct gal_carddav *g;

	if (gal_carddav_check(c, errstr) < 0)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	if ((g->cl = curl_loop_new(base, errstr)) == NULL) {
		free(g);
		return NULL;
	}
	g->url = xstrdup(c->url);
	g->user = xstrdup_null(c->user);
	g->password = xstrdup_null(c->password);
	g->ca_file = xstrdup_null(c->ca_file);
	g->connect_timeout_ms = c->connect_timeout_ms;
	g->timeout_ms = c->timeout_ms;
	return g;
}

void
gal_carddav_free(struct gal_carddav **gp)
{
	struct gal_carddav *g = *gp;

	if (g == NULL)
		return;
	curl_loop_free(&g->cl);
	free(g->url);
	free(g->user);
	if (g->password != NULL) {
		explicit_bzero(g->password, strlen(g->password));
		free(g->password);
	}
	free(g->ca_file);
	free(g);
	*gp = NULL;
}

unsigned long
gal_carddav_lookups(const struct gal_carddav *g)
{
	return g->lookups;
}

unsigned long
gal_carddav_failures(const struct gal_carddav *g)
{
	return g->failures;
}
