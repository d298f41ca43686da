/*
 * dav.h: the CalDAV/CardDAV client of native mode, asynchronous on a
 * curl_loop (net/curl_loop.h).
 *
 * One dav_account per configured server and user: `[upstream] caldav` or
 * `carddav`, the user's own credentials (HTTP Basic, sent only to that
 * server), TLS options, timeouts and caps. Its operations each make one or
 * a few HTTP requests through libcurl's multi interface on the caller's
 * event loop, read the answers as they arrive with davxml (libxml2's push
 * parser: no tree of a body is built), and call back once, from the loop:
 *
 * - dav_discover: PROPFIND DAV:current-user-principal on the configured URL
 *   (then on /.well-known/caldav or /.well-known/carddav of the same server
 *   when that names none, RFC 6764), the principal's calendar-home-set or
 *   addressbook-home-set (RFC 4791 6.2.1, RFC 6352 7.1.1), then Depth 1 on
 *   the home: each calendar (with its components) or address book, its
 *   name, color, CTag, sync-token and whether the user may write to it.
 * - dav_list: Depth 1 DAV:getetag of a collection (href and ETag per item),
 *   the change detection of servers without sync-collection (with the CTag).
 * - dav_sync: REPORT DAV:sync-collection (RFC 6578) from a token: the
 *   changed items with their ETags, the removed hrefs, the new token; a
 *   token the server no longer knows (403 or 409 with DAV:valid-sync-token)
 *   is DAV_TOKEN_INVALID, so the caller lists the collection again.
 * - dav_multiget: calendar-multiget or addressbook-multiget of hrefs, at most
 *   conf.multiget_max per REPORT: href, ETag and data of each.
 * - dav_addressbook_query: an addressbook-query REPORT (RFC 6352 8.6) of
 *   one address book: text-match prop-filters (any of them), a limit on the
 *   results; href, ETag and vCard of each card that matches.
 * - dav_calendar_uid_query: a calendar-query REPORT (RFC 4791 7.8) of one
 *   calendar for the events with one UID; href and ETag of each.
 * - dav_put: PUT with If-Match on the ETag, or If-None-Match: * for a new
 *   resource; the new ETag when the server gives one; 412 is DAV_CONFLICT.
 * - dav_delete: DELETE with If-Match.
 *
 * Security: every href a server sends is resolved against the request's URL
 * (libcurl's URL API) and refused (DAV_REFUSED) when it points at another
 * scheme, host or port than the configured server's; redirects are never
 * followed by libcurl, only by us and only on the same server; so the
 * credentials go to no other place. The configured URL may not carry
 * credentials, and http:// is refused for a host that is not loopback
 * unless conf.plain_http says otherwise. Bodies are capped (davxml's caps;
 * error bodies at DAV_MAX_ERROR_BODY). The password is never in a log line
 * or an error string, and is wiped when the account is freed.
 *
 * Hrefs given back are the server's paths (the resolved URL's path and
 * query, percent-encoding as the server wrote it), and hrefs are taken as
 * paths or full URLs of the same server.
 *
 * Lifetimes: an operation's callback is called exactly once, from the loop
 * (never from inside the call that started it), unless it is cancelled
 * first (dav_op_cancel, or dav_account_free for all of an account's): then
 * never. The result and everything it points to live until the callback
 * returns; the operation's handle is gone then too. A callback may start
 * operations, cancel others, or free the account; it must not free the
 * curl_loop. Everything runs on the loop's thread.
 */
#ifndef ABQ_DAV_DAV_H
#define ABQ_DAV_DAV_H

#include <stdbool.h>
#include <stddef.h>

#include "dav/davxml.h"

struct curl_loop;
struct dav_account;
struct dav_op;

#define DAV_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DAV_DEFAULT_TIMEOUT_MS         60000
#define DAV_DEFAULT_MULTIGET_MAX       50
#define DAV_MAX_ERROR_BODY             (64u << 10) /* an error answer's body */
#define DAV_MAX_REDIRECTS              5           /* same-server redirects of one request */
#define DAV_MAX_HREFS                  10000       /* hrefs of one multiget */

enum dav_kind { DAV_CALDAV, DAV_CARDDAV };

enum dav_status {
	DAV_OK = 0,
	DAV_CONFLICT,      /* 412: the ETag no longer matches (or the resource exists) */
	DAV_NOT_FOUND,     /* 404 or 410 on the request's own resource */
	DAV_TOKEN_INVALID, /* sync: the token is no longer valid; start over */
	DAV_PRECONDITION,  /* 403/409 naming another precondition (error says which) */
	DAV_AUTH,          /* 401: the credentials were refused */
	DAV_FORBIDDEN,     /* 403 without a precondition */
	DAV_HTTP,          /* another status than the operation expects */
	DAV_NETWORK,       /* cannot connect, TLS, timeout, connection lost */
	DAV_PROTOCOL,      /* bad XML, over a cap, an answer missing what it must hold */
	DAV_REFUSED        /* an href or a redirect pointing at another server */
};

struct dav_conf {
	const char *url; /* https://host[:port]/path/: where discovery starts */
	const char *user;
	const char *password;
	const char *ca_file;         /* PEM CA bundle; NULL: the system's */
	bool tls_insecure;           /* do not verify the server's certificate (tests) */
	bool plain_http;             /* allow http:// to a host that is not loopback */
	unsigned connect_timeout_ms; /* 0: DAV_DEFAULT_CONNECT_TIMEOUT_MS */
	unsigned timeout_ms;         /* one request; 0: DAV_DEFAULT_TIMEOUT_MS */
	struct davxml_limits limits; /* zeros: davxml's defaults */
	size_t multiget_max;         /* hrefs per REPORT; 0: DAV_DEFAULT_MULTIGET_MAX */
};

/* A calendar or an address book. */
struct dav_collection {
	char *href;          /* its path */
	enum dav_kind kind;  /* DAV_CALDAV: a calendar */
	unsigned components; /* DAVCOMP_* it takes (all when the server does not say) */
	char *name;          /* displayname, NULL when none */
	char *color;         /* Apple's calendar-color, NULL when none */
	char *ctag;          /* CS:getctag, NULL when none */
	char *sync_token;    /* DAV:sync-token, NULL when none */
	bool can_sync;       /* a sync-token was given: sync-collection is offered */
	bool writable;       /* write privilege (true when the server does not say) */
};

struct dav_discovery {
	char *principal; /* NULL when the server names none (then home is the URL) */
	char *home;      /* the calendar or address book home */
	bool well_known; /* found through /.well-known/ */
	struct dav_collection *colls;
	size_t n_colls;
};

/* An item of a listing, a sync or a multiget. */
struct dav_item {
	char *href;
	char *etag; /* NULL when the server gave none */
	char *data; /* multiget: the iCalendar or vCard text (NUL-terminated) */
	size_t data_len;
	int status;    /* multiget: 404 for an href the server does not have, else 200 */
	bool oversize; /* multiget: the data was over limits.max_data (dropped) */
};

struct dav_result {
	enum dav_status status;
	long http;         /* the last HTTP status, 0 when none */
	const char *error; /* why, naming the request ("" on DAV_OK); never the password */
	size_t requests;   /* HTTP requests made */
	/* dav_discover */
	const struct dav_discovery *discovery;
	/* dav_list, dav_sync (changed items), dav_multiget */
	const struct dav_item *items;
	size_t n_items;
	/* dav_sync */
	char *const *removed;
	size_t n_removed;
	const char *sync_token; /* the new token */
	bool more;              /* truncated (507): sync again from the new token; a query cut */
	/* dav_put */
	const char *etag; /* the new strong ETag, NULL when the server gave none */
};

typedef void dav_done_cb(void *arg, const struct dav_result *r);

/*
 * An account on cl (which outlives it). Checks and copies conf. Returns NULL
 * with *errstr (static) for a URL that is not http(s), carries credentials,
 * or is http:// to a host that is not loopback without conf.plain_http.
 */
struct dav_account *dav_account_new(struct curl_loop *cl, const struct dav_conf *conf,
                                    const char **errstr);
/* Cancel every operation still running (no callbacks), wipe the password, free. */
void dav_account_free(struct dav_account **ap);

/*
 * The operations. Each returns its handle, or NULL with *errstr (static)
 * when it cannot start (an href of another server, too many hrefs, no
 * hrefs, libcurl refused the transfer): done is then never called.
 */
struct dav_op *dav_discover(struct dav_account *a, enum dav_kind kind, dav_done_cb *done, void *arg,
                            const char **errstr);
struct dav_op *dav_list(struct dav_account *a, const char *collection, dav_done_cb *done, void *arg,
                        const char **errstr);
/* token NULL or "": the initial sync (every item). */
struct dav_op *dav_sync(struct dav_account *a, const char *collection, const char *token,
                        dav_done_cb *done, void *arg, const char **errstr);
struct dav_op *dav_multiget(struct dav_account *a, enum dav_kind kind, const char *collection,
                            const char *const *hrefs, size_t n, dav_done_cb *done, void *arg,
                            const char **errstr);
/*
 * An addressbook-query (RFC 6352 8.6): the cards of the address book
 * collection whose properties props (vCard names: "FN", "EMAIL", ...) match
 * text as match says (RFC 6352 10.5.4: "contains", "equals", "starts-with",
 * "ends-with"; the collation i;unicode-casemap, so without regard to case),
 * any of them (test="anyof"); at most nresults asked (0: no limit asked;
 * servers may ignore it). address_props, when not NULL, asks for just those
 * properties of each card (RFC 6352 10.4.2; servers may send whole cards).
 */
struct dav_card_query {
	const char *text;                 /* UTF-8; no control characters but tab */
	const char *const *props;         /* NULL-terminated, at least one */
	const char *match;                /* NULL: "contains" */
	size_t nresults;                  /* 0: none asked */
	const char *const *address_props; /* NULL-terminated, or NULL: whole cards */
};
#define DAV_QUERY_TEXT_MAX 1024 /* bytes of a query's text */
/*
 * The REPORT's body (malloc'd), or NULL with *errstr (static): text over
 * DAV_QUERY_TEXT_MAX, with control characters (XML 1.0 cannot carry them) or
 * not UTF-8, a property name that is not a vCard name, an unknown match
 * type. The text goes in escaped (< & > " ').
 */
char *dav_addressbook_query_body(const struct dav_card_query *q, const char **errstr);
/*
 * The items (href, ETag, data: dav_multiget's form) of the cards that
 * match; r.more when the server says it cut the answer at the limit (RFC
 * 6352 8.6.1: 507 on the collection).
 */
struct dav_op *dav_addressbook_query(struct dav_account *a, const char *collection,
                                     const struct dav_card_query *q, dav_done_cb *done, void *arg,
                                     const char **errstr);
/*
 * A calendar-query (RFC 4791 7.8) of one calendar collection for the
 * events whose UID is uid (text-match i;octet, equals: RFC 4791 9.7.5),
 * their ETags only: the items (href, ETag, no data) of the objects that
 * hold it, so that a client about to add an event finds the one the
 * calendar has (a UID is unique in a calendar: RFC 4791 5.3.2.1).
 */
#define DAV_UID_MAX 255 /* bytes of a UID looked up */
/*
 * The REPORT's body (malloc'd), or NULL with *errstr (static): no UID,
 * one over DAV_UID_MAX, with control characters or not UTF-8. The UID
 * goes in escaped (< & > " ').
 */
char *dav_calendar_uid_query_body(const char *uid, const char **errstr);
struct dav_op *dav_calendar_uid_query(struct dav_account *a, const char *collection,
                                      const char *uid, dav_done_cb *done, void *arg,
                                      const char **errstr);
/* etag NULL: a new resource (If-None-Match: *). body is copied. */
struct dav_op *dav_put(struct dav_account *a, const char *href, const char *content_type,
                       const char *body, size_t len, const char *etag, dav_done_cb *done, void *arg,
                       const char **errstr);
/* etag NULL: unconditional. */
struct dav_op *dav_delete(struct dav_account *a, const char *href, const char *etag,
                          dav_done_cb *done, void *arg, const char **errstr);

/* Stop an operation (its callback is never called), free it, NULL *opp. */
void dav_op_cancel(struct dav_op **opp);
/* Operations of the account still running. */
size_t dav_account_ops(const struct dav_account *a);

/* "ok", "conflict", "token invalid", ... for logs. */
const char *dav_status_name(enum dav_status s);

/*
 * Whether a URL's host is this machine, where http:// without TLS does not
 * send a password across a network: "localhost", "[::1]", or an IPv4
 * address literal in 127.0.0.0/8 (a name that starts with "127." is not).
 */
bool dav_host_loopback(const char *host);

#endif
