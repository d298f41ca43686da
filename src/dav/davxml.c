/*
 * davxml.c: the streaming multistatus reader (davxml.h) on libxml2's push
 * parser.
 *
 * libxml2 does the XML (encodings, well-formedness, namespaces); this file
 * is only the SAX2 handler: a stack of element roles, where an element's
 * role depends on its (namespace URI, local name) and on its parent's role,
 * so a DAV:href means the response's href under DAV:response, a principal
 * under DAV:current-user-principal and nothing anywhere else. Elements of no
 * role are skipped with everything under them. Text is collected only for
 * the elements whose value is kept, each into one buffer under its cap.
 * The handler has no tree-building callbacks: xmlCreatePushParserCtxt with
 * our own xmlSAXHandler builds nothing.
 */
#include "dav/davxml.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

/* Roles: what an element is where it stands. */
enum role {
	R_SKIP = 0, /* no meaning here: skipped with its subtree */
	R_MULTISTATUS,
	R_ERROR_ROOT,
	R_OTHER_ROOT,
	R_TOP_SYNC_TOKEN,
	R_RESPONSE,
	R_RESP_HREF,
	R_RESP_STATUS,
	R_PROPSTAT,
	R_PS_STATUS,
	R_PROP,
	/* properties (children of DAV:prop) */
	R_GETETAG,
	R_RESOURCETYPE,
	R_DISPLAYNAME,
	R_GETCTAG,
	R_SYNC_TOKEN,
	R_CUP,
	R_CAL_HOME,
	R_CARD_HOME,
	R_SCCS,
	R_CAL_DATA,
	R_ADDR_DATA,
	R_COLOR,
	R_CUPS,
	R_CONTENT_TYPE,
	R_OTHER_PROP,
	/* inside properties */
	R_PROP_HREF,   /* the href of current-user-principal or of a home set */
	R_RTYPE,       /* a child of resourcetype */
	R_COMP,        /* C:comp */
	R_PRIVILEGE,   /* DAV:privilege */
	R_PRIV,        /* a child of DAV:privilege */
	R_PRECONDITION /* a child of a DAV:error root */
};

/* Names of the namespaces (index into ns_uri). */
enum ns { NS_DAV, NS_CALDAV, NS_CARDDAV, NS_CS, NS_ICAL, NS_NONE };

static const char *const ns_uri[] = {DAVXML_NS_DAV, DAVXML_NS_CALDAV, DAVXML_NS_CARDDAV,
                                     DAVXML_NS_CS, DAVXML_NS_ICAL};

/* A property element and what it is. */
struct propname {
	enum ns ns;
	const char *name;
	enum role role;
	unsigned bit;
};

static const struct propname props[] = {
    {NS_DAV, "getetag", R_GETETAG, DAVP_ETAG},
    {NS_DAV, "resourcetype", R_RESOURCETYPE, DAVP_RESOURCETYPE},
    {NS_DAV, "displayname", R_DISPLAYNAME, DAVP_DISPLAYNAME},
    {NS_CS, "getctag", R_GETCTAG, DAVP_CTAG},
    {NS_DAV, "sync-token", R_SYNC_TOKEN, DAVP_SYNC_TOKEN},
    {NS_DAV, "current-user-principal", R_CUP, DAVP_PRINCIPAL},
    {NS_CALDAV, "calendar-home-set", R_CAL_HOME, DAVP_CAL_HOME},
    {NS_CARDDAV, "addressbook-home-set", R_CARD_HOME, DAVP_CARD_HOME},
    {NS_CALDAV, "supported-calendar-component-set", R_SCCS, DAVP_COMPONENTS},
    {NS_CALDAV, "calendar-data", R_CAL_DATA, DAVP_DATA},
    {NS_CARDDAV, "address-data", R_ADDR_DATA, DAVP_DATA},
    {NS_ICAL, "calendar-color", R_COLOR, DAVP_COLOR},
    {NS_DAV, "current-user-privilege-set", R_CUPS, DAVP_PRIVILEGES},
    {NS_DAV, "getcontenttype", R_CONTENT_TYPE, DAVP_CONTENT_TYPE},
};

/* Children of DAV:resourcetype. */
static const struct {
	enum ns ns;
	const char *name;
	unsigned bit;
} rtypes[] = {
    {NS_DAV, "collection", DAVRT_COLLECTION},
    {NS_CALDAV, "calendar", DAVRT_CALENDAR},
    {NS_CARDDAV, "addressbook", DAVRT_ADDRESSBOOK},
    {NS_DAV, "principal", DAVRT_PRINCIPAL},
    {NS_CALDAV, "schedule-inbox", DAVRT_SCHEDULE_INBOX},
    {NS_CALDAV, "schedule-outbox", DAVRT_SCHEDULE_OUTBOX},
    {NS_CS, "subscribed", DAVRT_SUBSCRIBED},
};

/* Preconditions of a DAV:error body. */
static const struct {
	enum ns ns;
	const char *name;
	unsigned bit;
} preconds[] = {
    {NS_DAV, "valid-sync-token", DAVERR_VALID_SYNC_TOKEN},
    {NS_DAV, "number-of-matches-within-limits", DAVERR_NUMBER_OF_MATCHES},
    {NS_DAV, "need-privileges", DAVERR_NEED_PRIVILEGES},
    {NS_CALDAV, "no-uid-conflict", DAVERR_NO_UID_CONFLICT},
    {NS_CARDDAV, "no-uid-conflict", DAVERR_NO_UID_CONFLICT},
    {NS_CALDAV, "valid-calendar-data", DAVERR_VALID_DATA},
    {NS_CARDDAV, "valid-address-data", DAVERR_VALID_DATA},
    {NS_CALDAV, "max-resource-size", DAVERR_MAX_RESOURCE_SIZE},
    {NS_CARDDAV, "max-resource-size", DAVERR_MAX_RESOURCE_SIZE},
};

struct davxml {
	struct davxml_limits lim;
	davxml_response_cb *cb;
	void *arg;
	xmlParserCtxtPtr ctxt;
	struct davxml_doc doc;

	/* element stack: the role at each depth (1-based; stack[0] unused) */
	unsigned char *stack;
	unsigned depth;

	/* the text being collected */
	struct sbuf text;
	enum role text_role; /* R_SKIP: none */
	unsigned text_depth;
	bool text_over; /* a data value over its cap: the rest is dropped */

	/* the response being read */
	char **hrefs;
	size_t n_hrefs, cap_hrefs;
	int resp_status;
	struct davxml_props props; /* merged from the 2xx propstats */
	unsigned absent, oversize;
	/* the propstat being read */
	struct davxml_props ps;
	unsigned ps_named; /* properties named in it */
	int ps_status;
	bool ps_has_status;

	bool failed, finished;
	bool xml_error; /* the failure is libxml2's */
	char err[256];
};

/* Record the failure (only the first message is kept). */
static void __attribute__((format(printf, 2, 0)))
failv(struct davxml *x, const char *fmt, va_list ap)
{
	if (!x->failed) {
		x->failed = true;
		vsnprintf(x->err, sizeof(x->err), fmt, ap);
	}
}

/*
 * Fail from one of our SAX callbacks, and stop the parser (xmlStopParser is
 * meant for SAX callbacks). libxml2's own errors are only recorded
 * (on_xml_error): it halts by itself where it must, and stopping it from
 * inside its error path (the encoding switch, say) pulls its input away
 * under it.
 */
static void __attribute__((format(printf, 2, 3))) fail(struct davxml *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failv(x, fmt, ap);
	va_end(ap);
	if (x->ctxt != NULL)
		xmlStopParser(x->ctxt);
}

/* Record libxml2's error without touching the parser. */
static void __attribute__((format(printf, 2, 3))) note(struct davxml *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failv(x, fmt, ap);
	va_end(ap);
}

static enum ns
ns_of(const xmlChar *uri)
{
	if (uri == NULL)
		return NS_NONE;
	for (size_t i = 0; i < sizeof(ns_uri) / sizeof(ns_uri[0]); i++)
		if (strcmp((const char *)uri, ns_uri[i]) == 0)
			return (enum ns)i;
	return NS_NONE;
}

static bool
is(enum ns ns, const xmlChar *local, enum ns want_ns, const char *want)
{
	return ns == want_ns && strcmp((const char *)local, want) == 0;
}

static void
props_clear(struct davxml_props *p)
{
	free(p->etag);
	free(p->displayname);
	free(p->ctag);
	free(p->sync_token);
	free(p->principal);
	free(p->cal_home);
	free(p->card_home);
	free(p->data);
	free(p->color);
	free(p->content_type);
	memset(p, 0, sizeof(*p));
}

/* Move src's values into dst where dst has none (the first propstat wins). */
static void
props_merge(struct davxml_props *dst, struct davxml_props *src)
{
#define TAKE(f)                                                                                    \
	do {                                                                                       \
		if (dst->f == NULL) {                                                              \
			dst->f = src->f;                                                           \
			src->f = NULL;                                                             \
		}                                                                                  \
	} while (0)
	TAKE(etag);
	TAKE(displayname);
	TAKE(ctag);
	TAKE(sync_token);
	TAKE(principal);
	TAKE(cal_home);
	TAKE(card_home);
	TAKE(color);
	TAKE(content_type);
#undef TAKE
	if (dst->data == NULL && src->data != NULL) {
		dst->data = src->data;
		dst->data_len = src->data_len;
		src->data = NULL;
	}
	dst->have |= src->have;
	dst->n_cal_home += src->n_cal_home;
	dst->n_card_home += src->n_card_home;
	dst->resourcetype |= src->resourcetype;
	dst->components |= src->components;
	dst->writable = dst->writable || src->writable;
	props_clear(src);
}

static void
response_clear(struct davxml *x)
{
	for (size_t i = 0; i < x->n_hrefs; i++)
		free(x->hrefs[i]);
	x->n_hrefs = 0;
	x->resp_status = 0;
	props_clear(&x->props);
	props_clear(&x->ps);
	x->absent = x->oversize = x->ps_named = 0;
	x->ps_status = 0;
	x->ps_has_status = false;
}

int
davxml_status_code(const char *line)
{
	const char *p = line;

	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (strncmp(p, "HTTP/", 5) != 0)
		return 0;
	p += 5;
	while (*p != '\0' && *p != ' ')
		p++;
	while (*p == ' ')
		p++;
	if (p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
	    (p[3] != '\0' && p[3] != ' ' && p[3] != '\r' && p[3] != '\n'))
		return 0;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* The role of a child (ns, local) of an element of role parent. */
static enum role
role_of(struct davxml *x, enum role parent, enum ns ns, const xmlChar *local, unsigned *bit_r)
{
	*bit_r = 0;
	switch (parent) {
	case R_MULTISTATUS:
		if (is(ns, local, NS_DAV, "response"))
			return R_RESPONSE;
		if (is(ns, local, NS_DAV, "sync-token"))
			return R_TOP_SYNC_TOKEN;
		return R_SKIP;
	case R_RESPONSE:
		if (is(ns, local, NS_DAV, "href"))
			return R_RESP_HREF;
		if (is(ns, local, NS_DAV, "status"))
			return R_RESP_STATUS;
		if (is(ns, local, NS_DAV, "propstat"))
			return R_PROPSTAT;
		return R_SKIP;
	case R_PROPSTAT:
		if (is(ns, local, NS_DAV, "prop"))
			return R_PROP;
		if (is(ns, local, NS_DAV, "status"))
			return R_PS_STATUS;
		return R_SKIP;
	case R_PROP:
		for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
			if (is(ns, local, props[i].ns, props[i].name)) {
				*bit_r = props[i].bit;
				return props[i].role;
			}
		return R_OTHER_PROP;
	case R_CUP:
	case R_CAL_HOME:
	case R_CARD_HOME:
		return is(ns, local, NS_DAV, "href") ? R_PROP_HREF : R_SKIP;
	case R_RESOURCETYPE:
		for (size_t i = 0; i < sizeof(rtypes) / sizeof(rtypes[0]); i++)
			if (is(ns, local, rtypes[i].ns, rtypes[i].name)) {
				*bit_r = rtypes[i].bit;
				return R_RTYPE;
			}
		return R_SKIP;
	case R_SCCS:
		return is(ns, local, NS_CALDAV, "comp") ? R_COMP : R_SKIP;
	case R_CUPS:
		return is(ns, local, NS_DAV, "privilege") ? R_PRIVILEGE : R_SKIP;
	case R_PRIVILEGE:
		if (is(ns, local, NS_DAV, "write") || is(ns, local, NS_DAV, "write-content") ||
		    is(ns, local, NS_DAV, "all"))
			return R_PRIV;
		return R_SKIP;
	case R_ERROR_ROOT:
		if (ns == NS_DAV || ns == NS_CALDAV || ns == NS_CARDDAV) {
			*bit_r = DAVERR_OTHER;
			for (size_t i = 0; i < sizeof(preconds) / sizeof(preconds[0]); i++)
				if (is(ns, local, preconds[i].ns, preconds[i].name))
					*bit_r = preconds[i].bit;
			return R_PRECONDITION;
		}
		return R_SKIP;
	default:
		(void)x;
		return R_SKIP;
	}
}

/* Whether an element of this role has its text kept. */
static bool
keeps_text(enum role r)
{
	switch (r) {
	case R_TOP_SYNC_TOKEN:
	case R_RESP_HREF:
	case R_RESP_STATUS:
	case R_PS_STATUS:
	case R_GETETAG:
	case R_DISPLAYNAME:
	case R_GETCTAG:
	case R_SYNC_TOKEN:
	case R_CAL_DATA:
	case R_ADDR_DATA:
	case R_COLOR:
	case R_CONTENT_TYPE:
	case R_PROP_HREF:
		return true;
	default:
		return false;
	}
}

/* The comp element's name attribute as a component bit. */
static unsigned
comp_bit(int nb_attributes, const xmlChar **attrs)
{
	for (int i = 0; i < nb_attributes; i++) {
		const xmlChar **a = attrs + 5 * i; /* localname, prefix, URI, value, end */
		if (a[2] != NULL || strcmp((const char *)a[0], "name") != 0)
			continue;
		size_t n = (size_t)(a[4] - a[3]);
		const char *v = (const char *)a[3];
		if (n == 6 && strncasecmp(v, "VEVENT", 6) == 0)
			return DAVCOMP_VEVENT;
		if (n == 5 && strncasecmp(v, "VTODO", 5) == 0)
			return DAVCOMP_VTODO;
		if (n == 8 && strncasecmp(v, "VJOURNAL", 8) == 0)
			return DAVCOMP_VJOURNAL;
		return DAVCOMP_OTHER;
	}
	return 0;
}

static void
on_start(void *arg, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
         int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
         const xmlChar **attrs)
{
	struct davxml *x = arg;
	enum ns ns = ns_of(uri);
	enum role parent, r;
	unsigned bit = 0;

	if (x->failed)
		return;
	if (x->depth >= x->lim.max_depth) {
		fail(x, "elements nested deeper than %u", x->lim.max_depth);
		return;
	}
	parent = x->depth == 0 ? R_SKIP : (enum role)x->stack[x->depth];
	if (x->depth == 0) {
		if (is(ns, local, NS_DAV, "multistatus")) {
			r = R_MULTISTATUS;
			x->doc.root = DAVXML_ROOT_MULTISTATUS;
		} else if (is(ns, local, NS_DAV, "error")) {
			r = R_ERROR_ROOT;
			x->doc.root = DAVXML_ROOT_ERROR;
		} else {
			r = R_OTHER_ROOT;
			x->doc.root = DAVXML_ROOT_OTHER;
		}
	} else if (parent == R_SKIP || parent == R_OTHER_ROOT) {
		r = R_SKIP;
	} else {
		r = role_of(x, parent, ns, local, &bit);
	}
	x->stack[++x->depth] = (unsigned char)r;

	switch (r) {
	case R_RESPONSE:
		response_clear(x);
		break;
	case R_PROPSTAT:
		props_clear(&x->ps);
		x->ps_named = 0;
		x->ps_status = 0;
		x->ps_has_status = false;
		break;
	case R_RTYPE:
		x->ps.resourcetype |= bit;
		break;
	case R_COMP:
		x->ps.components |= comp_bit(nb_attributes, attrs);
		break;
	case R_PRIV:
		x->ps.writable = true;
		break;
	case R_PRECONDITION:
		x->doc.errors |= bit;
		if (x->doc.error_name[0] == '\0' && bit != DAVERR_OTHER)
			snprintf(x->doc.error_name, sizeof(x->doc.error_name), "%s",
			         (const char *)local);
		break;
	default:
		if (bit != 0)
			x->ps_named |= bit; /* a property */
		if (r == R_CAL_HOME)
			x->ps.n_cal_home++;
		else if (r == R_CARD_HOME)
			x->ps.n_card_home++;
		break;
	}
	if (keeps_text(r)) {
		free(x->text.p);
		x->text = (struct sbuf){0};
		x->text_role = r;
		x->text_depth = x->depth;
		x->text_over = false;
	}
}

static void
on_text(void *arg, const xmlChar *ch, int len)
{
	struct davxml *x = arg;
	bool data;
	size_t cap;

	if (x->failed || x->text_role == R_SKIP || x->depth != x->text_depth || x->text_over)
		return;
	data = x->text_role == R_CAL_DATA || x->text_role == R_ADDR_DATA;
	cap = data ? x->lim.max_data : x->lim.max_value;
	if ((size_t)len > cap - x->text.len) {
		if (data) {
			x->text_over = true;
			free(x->text.p);
			x->text = (struct sbuf){0};
			return;
		}
		fail(x, "a value over %zu bytes", cap);
		return;
	}
	sbuf_addn(&x->text, (const char *)ch, (size_t)len);
}

/* The collected text, blanks around it trimmed, as a new string. */
static char *
trimmed(struct davxml *x)
{
	const char *p = x->text.p ? x->text.p : "";
	size_t n = x->text.len;

	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
		p++;
		n--;
	}
	while (n > 0 &&
	       (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	return xmemdup0(p, n);
}

static void
set_once(char **slot, char *v)
{
	if (*slot == NULL)
		*slot = v;
	else
		free(v);
}

/* A text element ended: put its value where it belongs. */
static void
text_done(struct davxml *x, enum role r)
{
	char *v;

	if (r == R_CAL_DATA || r == R_ADDR_DATA) {
		if (x->text_over) {
			x->oversize |= DAVP_DATA;
			return;
		}
		if (x->ps.data == NULL) {
			x->ps.data_len = x->text.len;
			x->ps.data = x->text.p ? x->text.p : xstrdup("");
			x->text = (struct sbuf){0};
			x->ps.have |= DAVP_DATA;
		}
		return;
	}
	v = trimmed(x);
	switch (r) {
	case R_TOP_SYNC_TOKEN:
		set_once(&x->doc.sync_token, v);
		return;
	case R_RESP_HREF:
		if (*v == '\0') {
			free(v);
			fail(x, "an empty href in response %zu", x->doc.responses);
			return;
		}
		if (x->n_hrefs == x->cap_hrefs) {
			x->cap_hrefs = x->cap_hrefs ? 2 * x->cap_hrefs : 4;
			x->hrefs = xrealloc(x->hrefs, x->cap_hrefs * sizeof(*x->hrefs));
		}
		x->hrefs[x->n_hrefs++] = v;
		if (x->doc.responses + x->n_hrefs > x->lim.max_responses)
			fail(x, "more than %zu responses", x->lim.max_responses);
		return;
	case R_RESP_STATUS:
	case R_PS_STATUS: {
		int code = davxml_status_code(v);
		if (code == 0)
			fail(x, "a status that is no HTTP status line: \"%.64s\"", v);
		else if (r == R_RESP_STATUS)
			x->resp_status = code;
		else {
			x->ps_status = code;
			x->ps_has_status = true;
		}
		free(v);
		return;
	}
	case R_GETETAG:
		set_once(&x->ps.etag, v);
		break;
	case R_DISPLAYNAME:
		set_once(&x->ps.displayname, v);
		break;
	case R_GETCTAG:
		set_once(&x->ps.ctag, v);
		break;
	case R_SYNC_TOKEN:
		set_once(&x->ps.sync_token, v);
		break;
	case R_COLOR:
		set_once(&x->ps.color, v);
		break;
	case R_CONTENT_TYPE:
		set_once(&x->ps.content_type, v);
		break;
	case R_PROP_HREF: {
		enum role owner = (enum role)x->stack[x->depth - 1];
		char **slot = owner == R_CUP        ? &x->ps.principal
		              : owner == R_CAL_HOME ? &x->ps.cal_home
		                                    : &x->ps.card_home;
		if (*v == '\0') {
			free(v);
			return;
		}
		set_once(slot, v);
		x->ps.have |= owner == R_CUP        ? DAVP_PRINCIPAL
		              : owner == R_CAL_HOME ? DAVP_CAL_HOME
		                                    : DAVP_CARD_HOME;
		return;
	}
	default:
		free(v);
		return;
	}
	/* A simple property: it is there. */
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (props[i].role == r)
			x->ps.have |= props[i].bit;
}

/* A response ended: report it once per href. */
static void
response_done(struct davxml *x)
{
	struct davxml_response r;

	if (x->n_hrefs == 0) {
		fail(x, "response %zu has no href", x->doc.responses);
		return;
	}
	for (size_t i = 0; i < x->n_hrefs && !x->failed; i++) {
		memset(&r, 0, sizeof(r));
		r.href = x->hrefs[i];
		r.status = x->resp_status;
		r.props = x->props;
		r.absent = x->absent;
		r.oversize = x->oversize;
		r.index = x->doc.responses++;
		if (x->cb != NULL && x->cb(x->arg, &r) != 0)
			fail(x, "stopped at response %zu", r.index);
	}
	response_clear(x);
}

static void
on_end(void *arg, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	struct davxml *x = arg;
	enum role r;

	if (x->failed || x->depth == 0)
		return;
	r = (enum role)x->stack[x->depth];
	if (x->text_role != R_SKIP && x->text_depth == x->depth) {
		text_done(x, r);
		free(x->text.p);
		x->text = (struct sbuf){0};
		x->text_role = R_SKIP;
		x->text_over = false;
	}
	switch (r) {
	case R_PROPSTAT:
		/* No status at all is read as success (the element is required). */
		if (!x->ps_has_status || (x->ps_status >= 200 && x->ps_status < 300)) {
			/* A property element that was there but empty counts as given. */
			x->ps.have |=
			    x->ps_named & (DAVP_RESOURCETYPE | DAVP_COMPONENTS | DAVP_PRIVILEGES);
			props_merge(&x->props, &x->ps);
		} else {
			x->absent |= x->ps_named;
			props_clear(&x->ps);
		}
		x->ps_named = 0;
		break;
	case R_RESPONSE:
		response_done(x);
		break;
	default:
		break;
	}
	if (!x->failed)
		x->depth--;
}

/* A DOCTYPE: refused before anything in it is read (see davxml.h). */
static void
on_doctype(void *arg, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	fail(arg, "a document type declaration (DTDs are refused)");
}

/* libxml2's own errors: the first one of level error or worse stops the parse. */
static void
on_xml_error(void *arg, xmlErrorPtr e)
{
	struct davxml *x = arg;
	char msg[160];
	size_t n;

	if (e == NULL || e->level < XML_ERR_ERROR)
		return;
	snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "unknown error");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	x->xml_error = x->xml_error || !x->failed;
	if (e->line > 0)
		note(x, "XML error at line %d column %d: %s", e->line, e->int2, msg);
	else
		note(x, "XML error: %s", msg); /* the encoding layer's: no position */
}

/*
 * libxml2 reports some errors without its parser context (the encoding
 * conversion, "xmlParseChunk: encoder error") through its thread's generic
 * handlers, which print to stderr: peer bytes would write to abqd's stderr.
 * While we parse, those handlers are ours (structured: the reader's error;
 * generic: nothing), and the caller's are put back after.
 */
struct quiet {
	xmlGenericErrorFunc generic;
	void *generic_ctx;
	xmlStructuredErrorFunc structured;
	void *structured_ctx;
};

static void
silent(void *ctx, const char *msg, ...)
{
}

static void
quiet_begin(struct davxml *x, struct quiet *q)
{
	q->generic = xmlGenericError;
	q->generic_ctx = xmlGenericErrorContext;
	q->structured = xmlStructuredError;
	q->structured_ctx = xmlStructuredErrorContext;
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(x, on_xml_error);
}

static void
quiet_end(const struct quiet *q)
{
	xmlSetGenericErrorFunc(q->generic_ctx, q->generic);
	xmlSetStructuredErrorFunc(q->structured_ctx, q->structured);
}

struct davxml_limits
davxml_limits_or_default(const struct davxml_limits *l)
{
	struct davxml_limits d = l ? *l : (struct davxml_limits){0};

	if (d.max_body == 0)
		d.max_body = DAVXML_DEFAULT_MAX_BODY;
	if (d.max_value == 0)
		d.max_value = DAVXML_DEFAULT_MAX_VALUE;
	if (d.max_data == 0)
		d.max_data = DAVXML_DEFAULT_MAX_DATA;
	if (d.max_responses == 0)
		d.max_responses = DAVXML_DEFAULT_MAX_RESPONSES;
	if (d.max_depth == 0)
		d.max_depth = DAVXML_DEFAULT_MAX_DEPTH;
	if (d.max_depth > 255)
		d.max_depth = 255; /* roles are kept in bytes, libxml2 stops at 256 */
	return d;
}

struct davxml *
davxml_new(const struct davxml_limits *limits, davxml_response_cb *cb, void *arg)
{
	struct davxml *x = xcalloc(1, sizeof(*x));
	xmlSAXHandler sax;
	struct quiet q;

	xmlInitParser(); /* once; later calls return at once */
	x->lim = davxml_limits_or_default(limits);
	x->cb = cb;
	x->arg = arg;
	x->stack = xcalloc(x->lim.max_depth + 1, 1);
	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = on_start;
	sax.endElementNs = on_end;
	sax.characters = on_text;
	sax.cdataBlock = on_text;
	sax.internalSubset = on_doctype;
	sax.serror = on_xml_error;
	/* entityDecl, getEntity, externalSubset, resolveEntity: none (see davxml.h). */
	quiet_begin(x, &q);
	x->ctxt = xmlCreatePushParserCtxt(&sax, x, NULL, 0, NULL);
	quiet_end(&q);
	if (x->ctxt == NULL)
		fatalx("xmlCreatePushParserCtxt failed");
	xmlCtxtUseOptions(x->ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	/* NOCDATA clears cdataBlock; CDATA then comes through characters. */
	x->ctxt->replaceEntities = 0;
	return x;
}

/* After a chunk: libxml2's own failure when no callback said why. */
static int
check(struct davxml *x, int rc, const char **errstr)
{
	if (!x->failed && (rc != 0 || !x->ctxt->wellFormed)) {
		const xmlError *e = xmlCtxtGetLastError(x->ctxt);
		if (e != NULL && e->message != NULL)
			on_xml_error(x, (xmlErrorPtr)e);
		if (!x->failed && rc == XML_ERR_INVALID_ENCODING)
			fail(x, "XML error: the bytes do not match the document's encoding");
		if (!x->failed)
			fail(x, "XML error %d", rc);
	}
	if (x->failed) {
		*errstr = x->err;
		return -1;
	}
	return 0;
}

int
davxml_feed(struct davxml *x, const char *p, size_t n, const char **errstr)
{
	if (x->failed || x->finished) {
		*errstr = x->failed ? x->err : "fed after the end";
		return -1;
	}
	if (n > x->lim.max_body - x->doc.bytes) {
		fail(x, "a body over %zu bytes", x->lim.max_body);
		*errstr = x->err;
		return -1;
	}
	x->doc.bytes += n;
	while (n > 0) {
		int k = n > (1u << 20) ? 1 << 20 : (int)n;
		struct quiet q;
		quiet_begin(x, &q);
		int rc = xmlParseChunk(x->ctxt, p, k, 0);
		quiet_end(&q);
		if (check(x, rc, errstr) < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
davxml_finish(struct davxml *x, const char **errstr)
{
	int rc;

	if (x->failed) {
		*errstr = x->err;
		return -1;
	}
	if (x->finished)
		return 0;
	x->finished = true;
	if (x->doc.bytes == 0) {
		fail(x, "an empty body");
		*errstr = x->err;
		return -1;
	}
	struct quiet q;
	quiet_begin(x, &q);
	rc = xmlParseChunk(x->ctxt, NULL, 0, 1);
	quiet_end(&q);
	if (check(x, rc, errstr) < 0) {
		/* libxml2 says "Extra content" or "Premature end" for a cut body. */
		if (x->xml_error && x->depth > 0)
			snprintf(x->err, sizeof(x->err),
			         "the body ends inside the document (%u elements open)", x->depth);
		return -1;
	}
	if (x->doc.root == DAVXML_ROOT_NONE || x->depth != 0) {
		fail(x, "the body ends inside the document");
		*errstr = x->err;
		return -1;
	}
	return 0;
}

const struct davxml_doc *
davxml_doc(const struct davxml *x)
{
	return &x->doc;
}

void
davxml_free(struct davxml **xp)
{
	struct davxml *x = *xp;

	if (x == NULL)
		return;
	response_clear(x);
	free(x->hrefs);
	free(x->text.p);
	free(x->doc.sync_token);
	free(x->stack);
	if (x->ctxt != NULL) {
		if (x->ctxt->myDoc != NULL)
			xmlFreeDoc(x->ctxt->myDoc);
		xmlFreeParserCtxt(x->ctxt);
	}
	free(x);
	*xp = NULL;
}
