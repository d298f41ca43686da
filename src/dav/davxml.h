/*
 * davxml.h: a streaming reader of WebDAV answers (RFC 4918 multistatus, RFC
 * 6578 sync-collection, RFC 4791 CalDAV and RFC 6352 CardDAV properties).
 *
 * The CalDAV/CardDAV client (dav.h) feeds it an answer's body as libcurl
 * delivers it, in pieces of any size; libxml2's push parser (SAX2, with
 * namespaces) reads them and the reader calls back once per response as
 * soon as its </response> is read, so no tree of the body is ever built:
 * what is held at a time is one response (its values within their caps) and
 * the parser's window. Elements are matched by namespace URI and local name,
 * never by prefix.
 *
 * What a response carries (struct davxml_response): its href (once per href
 * of a response, for the RFC 4918 form href*-with-status), the response's
 * own status (the sync-collection "removed" form), and the properties abqd
 * asks for. Each propstat is read with its own status: the properties of a
 * 2xx propstat are merged into r->props; the names of those under another
 * status (404 for a property the resource does not have) go into r->absent.
 * The body's top-level sync-token (after the responses of a sync-collection)
 * and, for an error answer (403, 409 with a DAV:error body), its
 * preconditions are in the struct davxml_doc.
 *
 * Safety (peer-fed): no DTD is read. The SAX internalSubset callback stops
 * the parser at the first <!DOCTYPE, before any declaration in it is parsed,
 * so no entity can ever be declared; external subsets are never loaded (no
 * XML_PARSE_DTDLOAD, and XML_PARSE_NONET), and XML_PARSE_NOENT is never set.
 * What is left is the five predefined entities and character references,
 * which expand to no more than they take; a reference to any other entity
 * is libxml2's fatal "not defined" error. The body's bytes, one value's
 * bytes (calendar-data and address-data under their own, larger cap), the
 * responses of a body and the element depth are capped (struct
 * davxml_limits). A data value over its cap does not fail the body: that
 * response says so (DAVP_DATA in r->oversize) and the others are read.
 */
#ifndef ABQ_DAV_DAVXML_H
#define ABQ_DAV_DAVXML_H

#include <stdbool.h>
#include <stddef.h>

#define DAVXML_NS_DAV     "DAV:"
#define DAVXML_NS_CALDAV  "urn:ietf:params:xml:ns:caldav"
#define DAVXML_NS_CARDDAV "urn:ietf:params:xml:ns:carddav"
#define DAVXML_NS_CS      "http://calendarserver.org/ns/"
#define DAVXML_NS_ICAL    "http://apple.com/ns/ical/"

/* Defaults of struct davxml_limits (a zero field takes its default). */
#define DAVXML_DEFAULT_MAX_BODY      (64u << 20) /* bytes of one answer */
#define DAVXML_DEFAULT_MAX_VALUE     8192        /* an href, an ETag, a name, a token */
#define DAVXML_DEFAULT_MAX_DATA      (4u << 20)  /* one calendar-data or address-data */
#define DAVXML_DEFAULT_MAX_RESPONSES 100000      /* hrefs reported from one answer */
#define DAVXML_DEFAULT_MAX_DEPTH     32          /* element nesting */

struct davxml_limits {
	size_t max_body;
	size_t max_value;
	size_t max_data;
	size_t max_responses;
	unsigned max_depth;
};

/* The properties read (bits of props.have, absent and oversize). */
enum davxml_prop_bit {
	DAVP_ETAG = 1u << 0,         /* DAV:getetag */
	DAVP_RESOURCETYPE = 1u << 1, /* DAV:resourcetype */
	DAVP_DISPLAYNAME = 1u << 2,  /* DAV:displayname */
	DAVP_CTAG = 1u << 3,         /* CS:getctag */
	DAVP_SYNC_TOKEN = 1u << 4,   /* DAV:sync-token (the property) */
	DAVP_PRINCIPAL = 1u << 5,    /* DAV:current-user-principal/DAV:href */
	DAVP_CAL_HOME = 1u << 6,     /* C:calendar-home-set/DAV:href */
	DAVP_CARD_HOME = 1u << 7,    /* CR:addressbook-home-set/DAV:href */
	DAVP_COMPONENTS = 1u << 8,   /* C:supported-calendar-component-set */
	DAVP_DATA = 1u << 9,         /* C:calendar-data or CR:address-data */
	DAVP_COLOR = 1u << 10,       /* ICAL:calendar-color */
	DAVP_PRIVILEGES = 1u << 11,  /* DAV:current-user-privilege-set */
	DAVP_CONTENT_TYPE = 1u << 12 /* DAV:getcontenttype */
};

/* Bits of props.resourcetype. */
enum davxml_rtype {
	DAVRT_COLLECTION = 1u << 0,      /* DAV:collection */
	DAVRT_CALENDAR = 1u << 1,        /* C:calendar */
	DAVRT_ADDRESSBOOK = 1u << 2,     /* CR:addressbook */
	DAVRT_PRINCIPAL = 1u << 3,       /* DAV:principal */
	DAVRT_SCHEDULE_INBOX = 1u << 4,  /* C:schedule-inbox */
	DAVRT_SCHEDULE_OUTBOX = 1u << 5, /* C:schedule-outbox */
	DAVRT_SUBSCRIBED = 1u << 6       /* CS:subscribed (a read-only feed) */
};

/* Bits of props.components (C:comp name="..."). */
enum davxml_comp {
	DAVCOMP_VEVENT = 1u << 0,
	DAVCOMP_VTODO = 1u << 1,
	DAVCOMP_VJOURNAL = 1u << 2,
	DAVCOMP_OTHER = 1u << 3 /* VFREEBUSY, VAVAILABILITY, ... */
};

/*
 * The properties of a response (values NUL-terminated, NULL when not
 * given). The home sets may name several homes: the first is kept and
 * n_*_home counts them all.
 */
struct davxml_props {
	unsigned have; /* enum davxml_prop_bit */
	char *etag;    /* as sent, quotes included: If-Match takes it back as is */
	char *displayname;
	char *ctag;
	char *sync_token;
	char *principal;
	char *cal_home;
	char *card_home;
	unsigned n_cal_home, n_card_home;
	char *data; /* calendar-data or address-data, data_len bytes (NULs kept) */
	size_t data_len;
	char *color;
	char *content_type;
	unsigned resourcetype; /* enum davxml_rtype */
	unsigned components;   /* enum davxml_comp */
	bool writable;         /* DAV:write, DAV:write-content or DAV:all granted */
};

struct davxml_response {
	const char *href;          /* as written (not resolved) */
	int status;                /* the response's own status, 0 when it has propstats */
	struct davxml_props props; /* from the 2xx propstats */
	unsigned absent;           /* properties named under another status */
	unsigned oversize;         /* DAVP_DATA: the data was over max_data (dropped) */
	size_t index;              /* 0, 1, ... in the order of the body */
};

/*
 * Called once per href, from inside davxml_feed. r and its strings live
 * until it returns (the caller copies what it keeps). Return 0 to go on,
 * anything else to stop: davxml_feed then fails with "stopped".
 */
typedef int davxml_response_cb(void *arg, const struct davxml_response *r);

/* What the body was. */
enum davxml_root {
	DAVXML_ROOT_NONE = 0,    /* no root element read yet */
	DAVXML_ROOT_MULTISTATUS, /* DAV:multistatus */
	DAVXML_ROOT_ERROR,       /* DAV:error (a failed precondition) */
	DAVXML_ROOT_OTHER        /* anything else (read, ignored) */
};

/* Known preconditions of a DAV:error body (bits of doc.errors). */
enum davxml_error_bit {
	DAVERR_VALID_SYNC_TOKEN = 1u << 0,  /* DAV:valid-sync-token (RFC 6578) */
	DAVERR_NUMBER_OF_MATCHES = 1u << 1, /* DAV:number-of-matches-within-limits */
	DAVERR_NO_UID_CONFLICT = 1u << 2,   /* C:no-uid-conflict, CR:no-uid-conflict */
	DAVERR_VALID_DATA = 1u << 3,        /* C:valid-calendar-data, CR:valid-address-data */
	DAVERR_NEED_PRIVILEGES = 1u << 4,   /* DAV:need-privileges */
	DAVERR_MAX_RESOURCE_SIZE = 1u << 5, /* C:max-resource-size, CR:max-resource-size */
	DAVERR_OTHER = 1u << 6              /* any other */
};

struct davxml_doc {
	enum davxml_root root;
	char *sync_token;    /* the multistatus' own DAV:sync-token (sync-collection) */
	unsigned errors;     /* DAV:error root: enum davxml_error_bit */
	char error_name[64]; /* its first precondition's local name, "" when none */
	size_t responses;    /* hrefs reported */
	size_t bytes;        /* body bytes fed */
};

struct davxml;

/* A reader calling cb(arg, ...) per response; limits NULL: the defaults. */
struct davxml *davxml_new(const struct davxml_limits *limits, davxml_response_cb *cb, void *arg);
/*
 * Feed the next n bytes. Returns 0, or -1 with *errstr (valid until
 * davxml_free) when the body is not well-formed XML (libxml2's message with
 * its line and column), is over a cap, has a DTD, or the callback stopped
 * it. After an error every later call fails the same way.
 */
int davxml_feed(struct davxml *x, const char *p, size_t n, const char **errstr);
/* The body ended: 0 when it was a complete document, else -1 with *errstr. */
int davxml_finish(struct davxml *x, const char **errstr);
/* The document's own facts (root, top-level sync-token, preconditions). */
const struct davxml_doc *davxml_doc(const struct davxml *x);
/* Free the reader and NULL *xp. */
void davxml_free(struct davxml **xp);

/* The limits with every zero field set to its default. */
struct davxml_limits davxml_limits_or_default(const struct davxml_limits *l);
/* "HTTP/1.1 404 Not Found" -> 404; 0 when it is not a status line. */
int davxml_status_code(const char *line);

#endif
