/*
 * autodiscover.h: Autodiscover for ActiveSync (MS-ASCMD 2.2.1.1, MS-OXDSCLI)
 * answered by abqd itself, without I/O: which requests are its own, what they
 * ask, and the answer.
 *
 * Two forms are abqd's, once [eas] public_url is set:
 * - POX: POST /autodiscover/autodiscover.xml whose body is an Autodiscover
 *   Request (mobilesync request schema) with an EMailAddress and the
 *   mobilesync AcceptableResponseSchema. The answer is the mobilesync
 *   Response: Culture, User (DisplayName, EMailAddress), Action / Settings /
 *   Server (Type MobileSync, Url and Name the public URL).
 * - JSON, as Outlook mobile asks: GET /autodiscover/autodiscover.json?Email=
 *   ADDR&Protocol=ActiveSync, or GET /autodiscover/autodiscover.json/v1.0/ADDR
 *   ?Protocol=ActiveSync; the answer is {"Protocol":"ActiveSync","Url":URL}.
 * Paths are compared without case (phones spell them in several ways).
 *
 * Decisions:
 * - Only the authenticated account's own address is answered: an address
 *   that does not canonicalise to the account (util.h account_is_canonical_of),
 *   and is not the account's mail address either, gets "The email address
 *   cannot be found" (MS-OXDSCLI ErrorCode 500 in the POX Response's Error;
 *   HTTP 404 with {"ErrorCode":"UserNotFound"} in JSON), never settings.
 * - A POX body that is not well-formed XML, holds a DTD (no entity is ever
 *   expanded, nothing is loaded from the network: XML_PARSE_NONET, no
 *   XML_PARSE_NOENT, no DTD loading; a document with a DTD is refused
 *   outright), has no Autodiscover / Request / EMailAddress /
 *   AcceptableResponseSchema, or an unusable address, gets ErrorCode 600
 *   Invalid Request. A JSON request without an address gets HTTP 400
 *   {"ErrorCode":"InvalidRequest"}.
 * - Another AcceptableResponseSchema (Outlook's, say), or another Protocol in
 *   JSON (EWS, AutodiscoverV1, none), is not abqd's: it goes to the upstream
 *   when there is one (AUTOD_FORWARD); without one it gets ErrorCode 601 in
 *   POX, HTTP 400 {"ErrorCode":"InvalidProtocol"} in JSON.
 * - Error answers in POX are HTTP 200, as Exchange sends them; the Error
 *   element carries no Time or Id (they are optional and would need a clock).
 * - The body is capped at AUTOD_BODY_MAX (the gateway answers 413 above it);
 *   addresses at AUTOD_ADDR_MAX bytes.
 */
#ifndef ABQ_EAS_AUTODISCOVER_H
#define ABQ_EAS_AUTODISCOVER_H

#include <stdbool.h>
#include <stddef.h>

#define AUTOD_BODY_MAX (64 * 1024)
#define AUTOD_ADDR_MAX 320

#define AUTOD_NS_RESPONSE "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
#define AUTOD_NS_MS_REQUEST                                                                        \
	"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
#define AUTOD_NS_MS_RESPONSE                                                                       \
	"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"

/*
 * Set libxml2 up once, before any parse (from the thread that starts the
 * others); later calls do nothing.
 */
void autod_init(void);

/* Which Autodiscover form a path and method are. */
enum autod_kind {
	AUTOD_NONE = 0, /* not one of abqd's forms: passed through */
	AUTOD_POX,      /* POST .../autodiscover.xml */
	AUTOD_JSON,     /* GET .../autodiscover.json[/v1.0/ADDR] */
};

/* What a request asks, once read. */
enum autod_status {
	AUTOD_OK = 0,      /* ActiveSync settings for req->email */
	AUTOD_INVALID,     /* 600 / 400: malformed, no address */
	AUTOD_OTHER_SCHEMA /* another response schema or protocol: not abqd's */
};

struct autod_request {
	enum autod_kind kind;
	char *email;  /* as sent (trimmed, decoded), or NULL */
	char *schema; /* POX AcceptableResponseSchema / JSON Protocol as sent, or NULL */
};

/*
 * The form of a request: path is the canonical path (eas/request.h: decoded,
 * dot-segments gone), method the request's ("POST"). AUTOD_NONE for every
 * other path or method.
 */
enum autod_kind autod_path_kind(const char *path, const char *method);

/*
 * Read a POX body body[0..len) into *req (cleared first; free with
 * autod_request_clear). Returns what it asks; *why says in a few words what
 * was wrong (a static string) unless AUTOD_OK.
 */
enum autod_status autod_parse_pox(const void *body, size_t len, struct autod_request *req,
                                  const char **why);

/*
 * Read a JSON request: path the canonical path, query the query as forwarded
 * (eas_request.fwd_query: '&'-separated, %-escapes, or NULL). As
 * autod_parse_pox.
 */
enum autod_status autod_parse_json(const char *path, const char *query, struct autod_request *req,
                                   const char **why);

/* Free what a parse put in req. */
void autod_request_clear(struct autod_request *req);

/* Who asks, and what abqd tells them. */
struct autod_ctx {
	const char *account;        /* the authenticated account (canonical) */
	const char *address;        /* its mail address (NULL: the account) */
	const char *default_domain; /* [eas] default_domain, or NULL */
	const char *public_url;     /* [eas] public_url */
	bool can_forward;           /* an upstream takes what is not abqd's */
};

/* An answer: HTTP status, Content-Type and body (free body). */
struct autod_answer {
	int status;
	const char *content_type;
	char *body;
	size_t len;
};

enum { AUTOD_ANSWER = 0, AUTOD_FORWARD = 1 };

/*
 * The answer to a request read with status st: AUTOD_ANSWER with *ans filled
 * (free ans->body), or AUTOD_FORWARD (ans untouched) when the request is
 * not abqd's and ctx->can_forward.
 */
int autod_answer(const struct autod_request *req, enum autod_status st, const struct autod_ctx *ctx,
                 struct autod_answer *ans);

/* Whether address stands for ctx's account (its canonical form or its mail address). */
bool autod_address_is_own(const char *address, const struct autod_ctx *ctx);

#endif
