/*
 * autodiscover.c: Autodiscover for ActiveSync, read and answered without I/O
 * (autodiscover.h for the forms and the decisions).
 *
 * The POX body is read by libxml2 with the network off and no entity
 * substituted; a body that declares a DTD is refused before libxml2 sees it
 * and again after (a DTD in another encoding), so no entity of the phone's is
 * ever defined, let alone expanded or fetched. Only text and CDATA count as an
 * element's text: an entity reference there makes the request invalid.
 */
#include "eas/autodiscover.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "eas/request.h"
#include "lib/util.h"

#define XML_PATH      "/autodiscover/autodiscover.xml"
#define JSON_PATH     "/autodiscover/autodiscover.json"
#define JSON_V1       "/v1.0/"
#define PROTOCOL_EAS  "ActiveSync"
#define JSON_TYPE     "application/json; charset=utf-8"
#define XML_TYPE      "text/xml; charset=utf-8"
#define NOT_FOUND_MSG "The email address cannot be found."

/* Set libxml2 up (autodiscover.h). */
void
autod_init(void)
{
	xmlInitParser();
}

/* The form of a request: its canonical path and method. */
enum autod_kind
autod_path_kind(const char *path, const char *method)
{
	size_t jl = strlen(JSON_PATH);

	if (path == NULL || method == NULL)
		return AUTOD_NONE;
	if (strcasecmp(path, XML_PATH) == 0)
		return strcmp(method, "POST") == 0 ? AUTOD_POX : AUTOD_NONE;
	if (strncasecmp(path, JSON_PATH, jl) != 0 || strcmp(method, "GET") != 0)
		return AUTOD_NONE;
	if (path[jl] == '\0')
		return AUTOD_JSON;
	/* .../autodiscover.json/v1.0/ADDR: the address is one segment */
	if (strncasecmp(path + jl, JSON_V1, strlen(JSON_V1)) == 0 &&
	    path[jl + strlen(JSON_V1)] != '\0' && strchr(path + jl + strlen(JSON_V1), '/') == NULL)
		return AUTOD_JSON;
	return AUTOD_NONE;
}

/* Free what a parse put in req. */
void
autod_request_clear(struct autod_request *req)
{
	free(req->email);
	free(req->schema);
	memset(req, 0, sizeof(*req));
}

/*
 * Whether s[0..n) may be an address abqd looks at: at most AUTOD_ADDR_MAX
 * bytes, one '@' with something either side, no control byte, space or '/',
 * and an account can be made of it.
 */
static bool
address_usable(const char *s, size_t n)
{
	char buf[ACCOUNT_MAX + 1];
	const char *at = memchr(s, '@', n);

	if (n == 0 || n > AUTOD_ADDR_MAX || at == NULL || at == s || at == s + n - 1 ||
	    memchr(at + 1, '@', n - (size_t)(at - s) - 1) != NULL || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '/')
			return false;
	return account_canonical_into(s, NULL, buf) >= 0;
}

/* ---- POX ---- */

/* The first element child of n named name (local name), or NULL. */
static xmlNode *
child(xmlNode *n, const char *name)
{
	for (xmlNode *c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

/*
 * The text of element n, white space around it trimmed, as a new string: NULL
 * when n is absent, holds anything but text and CDATA (an entity reference,
 * an element), or its text exceeds cap bytes.
 */
static char *
element_text(const xmlNode *n, size_t cap)
{
	struct sbuf b = {0};
	char *s;
	size_t len, lead;

	if (n == NULL)
		return NULL;
	for (const xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_COMMENT_NODE)
			continue;
		if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) ||
		    c->content == NULL || b.len + strlen((const char *)c->content) > cap + 64) {
			free(b.p);
			return NULL;
		}
		sbuf_add(&b, (const char *)c->content);
	}
	s = sbuf_take(&b);
	len = strlen(s);
	while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
		len--;
	lead = strspn(s, " \t\r\n");
	if (lead > len)
		lead = len;
	memmove(s, s + lead, len - lead);
	s[len - lead] = '\0';
	if (len - lead > cap) {
		free(s);
		return NULL;
	}
	return s;
}

/* Read a POX body (autodiscover.h). */
enum autod_status
autod_parse_pox(const void *body, size_t len, struct autod_request *req, const char **why)
{
	xmlDoc *doc;
	xmlNode *root, *r;
	enum autod_status st = AUTOD_INVALID;
	static const char *const no_dtd = "a DTD (entities are not accepted)";

	memset(req, 0, sizeof(*req));
	req->kind = AUTOD_POX;
	*why = NULL;
	if (len == 0) {
		*why = "empty body";
		return AUTOD_INVALID;
	}
	if (len > AUTOD_BODY_MAX) {
		*why = "body too large";
		return AUTOD_INVALID;
	}
	/* No DTD in the bytes as sent; NUL bytes mean another encoding than UTF-8. */
	if (memmem(body, len, "<!DOCTYPE", 9) != NULL || memchr(body, '\0', len) != NULL) {
		*why = memchr(body, '\0', len) != NULL ? "a NUL byte (not UTF-8)" : no_dtd;
		return AUTOD_INVALID;
	}
	doc = xmlReadMemory(body, (int)len, NULL, NULL,
	                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		*why = "not well-formed XML";
		return AUTOD_INVALID;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		*why = no_dtd;
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || strcmp((const char *)root->name, "Autodiscover") != 0) {
		*why = "the root element is not Autodiscover";
		goto out;
	}
	if ((r = child(root, "Request")) == NULL) {
		*why = "no Request element";
		goto out;
	}
	req->schema = element_text(child(r, "AcceptableResponseSchema"), 1024);
	if (req->schema == NULL || req->schema[0] == '\0') {
		*why = "no AcceptableResponseSchema";
		goto out;
	}
	if (strcmp(req->schema, AUTOD_NS_MS_RESPONSE) != 0) {
		*why = "another response schema";
		st = AUTOD_OTHER_SCHEMA;
		goto out;
	}
	req->email = element_text(child(r, "EMailAddress"), AUTOD_ADDR_MAX);
	if (req->email == NULL || !address_usable(req->email, strlen(req->email))) {
		*why = req->email == NULL ? "no EMailAddress" : "an unusable EMailAddress";
		goto out;
	}
	st = AUTOD_OK;
out:
	xmlFreeDoc(doc);
	return st;
}

/* ---- JSON ---- */

/*
 * A query value v[0..n) %-decoded by the request parser's reader ('+' is a
 * space, as in form encoding) into a new string, or NULL for a bad escape,
 * %00 or more than cap bytes.
 */
static char *
query_value(const char *v, size_t n, size_t cap)
{
	char *out;
	size_t len, pos;

	if (n > cap * 3)
		return NULL;
	out = xmalloc(n + 1);
	if (eas_pct_decode(v, n, true, out, &len, &pos) == NULL || len > cap) {
		free(out);
		return NULL;
	}
	return out;
}

/* Read a JSON request (autodiscover.h). */
enum autod_status
autod_parse_json(const char *path, const char *query, struct autod_request *req, const char **why)
{
	size_t jl = strlen(JSON_PATH), vl = strlen(JSON_V1);
	const char *q = query != NULL ? query : "";
	char *email_q = NULL;
	bool seen_email = false, seen_proto = false;

	memset(req, 0, sizeof(*req));
	req->kind = AUTOD_JSON;
	*why = NULL;
	while (*q != '\0') {
		size_t n = strcspn(q, "&"), nl = strcspn(q, "=");
		const char *eq = nl < n ? q + nl : NULL;
		bool is_email = eq != NULL && nl == 5 && strncasecmp(q, "Email", 5) == 0;
		bool is_proto = eq != NULL && nl == 8 && strncasecmp(q, "Protocol", 8) == 0;

		if (is_email || is_proto) {
			bool *seen = is_email ? &seen_email : &seen_proto;
			char *v = query_value(eq + 1, n - nl - 1, is_email ? AUTOD_ADDR_MAX : 64);

			if (*seen || v == NULL) {
				free(v);
				*why = *seen ? "a parameter given twice"
				             : "a malformed parameter value";
				goto invalid;
			}
			*seen = true;
			if (is_email)
				email_q = v;
			else
				req->schema = v;
		}
		q += n;
		if (*q == '&')
			q++;
	}
	if (req->schema == NULL || strcasecmp(req->schema, PROTOCOL_EAS) != 0) {
		*why = req->schema == NULL ? "no Protocol" : "another Protocol";
		free(email_q);
		return AUTOD_OTHER_SCHEMA;
	}
	if (path != NULL && strlen(path) > jl + vl && strncasecmp(path + jl, JSON_V1, vl) == 0) {
		/* The address in the path wins over an Email parameter. */
		free(email_q);
		email_q = NULL;
		req->email = xstrdup(path + jl + vl);
	} else {
		req->email = email_q;
		email_q = NULL;
	}
	if (req->email == NULL || !address_usable(req->email, strlen(req->email))) {
		*why = req->email == NULL ? "no Email" : "an unusable Email";
		goto invalid;
	}
	return AUTOD_OK;
invalid:
	free(email_q);
	return AUTOD_INVALID;
}

/* ---- the answer ---- */

/* Whether address stands for ctx's account (autodiscover.h). */
bool
autod_address_is_own(const char *address, const struct autod_ctx *ctx)
{
	if (address == NULL || ctx->account == NULL)
		return false;
	if (account_is_canonical_of(address, ctx->account, ctx->default_domain))
		return true;
	return ctx->address != NULL && strcasecmp(address, ctx->address) == 0;
}

/* Append s to b as the inside of a JSON string. */
static void
json_add(struct sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			sbuf_printf(b, "\\u%04x", c);
		else
			sbuf_addn(b, s, 1);
	}
}

/* The start of every POX answer, up to the mobilesync Response's opening tag. */
#define POX_HEAD                                                                                   \
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"                                           \
	"<Autodiscover xmlns=\"" AUTOD_NS_RESPONSE "\">\r\n"                                       \
	"  <Response xmlns=\"" AUTOD_NS_MS_RESPONSE "\">\r\n"
#define POX_TAIL "  </Response>\r\n</Autodiscover>\r\n"

/* A POX error answer: Response / Error with code and message (HTTP 200). */
static void
pox_error(struct autod_answer *ans, int code, const char *message)
{
	struct sbuf b = {0};

	sbuf_add(&b, POX_HEAD);
	sbuf_printf(&b,
	            "    <Error>\r\n      <ErrorCode>%d</ErrorCode>\r\n"
	            "      <Message>%s</Message>\r\n      <DebugData />\r\n    </Error>\r\n",
	            code, message);
	sbuf_add(&b, POX_TAIL);
	ans->status = 200;
	ans->content_type = XML_TYPE;
	ans->len = b.len;
	ans->body = sbuf_take(&b);
}

/* A JSON answer {"ErrorCode":code,"ErrorMessage":message} with HTTP status. */
static void
json_error(struct autod_answer *ans, int status, const char *code, const char *message)
{
	ans->status = status;
	ans->content_type = JSON_TYPE;
	ans->body = xasprintf("{\"ErrorCode\":\"%s\",\"ErrorMessage\":\"%s\"}", code, message);
	ans->len = strlen(ans->body);
}

/* The settings: the mobilesync Response, or the JSON object. */
static void
settings(const struct autod_request *req, const struct autod_ctx *ctx, struct autod_answer *ans)
{
	struct sbuf b = {0};

	if (req->kind == AUTOD_JSON) {
		sbuf_add(&b, "{\"Protocol\":\"" PROTOCOL_EAS "\",\"Url\":\"");
		json_add(&b, ctx->public_url);
		sbuf_add(&b, "\"}");
		ans->content_type = JSON_TYPE;
	} else {
		sbuf_add(&b, POX_HEAD "    <Culture>en:us</Culture>\r\n    <User>\r\n"
		                      "      <DisplayName>");
		sbuf_add_escaped(&b, req->email);
		sbuf_add(&b, "</DisplayName>\r\n      <EMailAddress>");
		sbuf_add_escaped(&b, req->email);
		sbuf_add(
		    &b, "</EMailAddress>\r\n    </User>\r\n    <Action>\r\n      <Settings>\r\n"
		        "        <Server>\r\n          <Type>MobileSync</Type>\r\n          <Url>");
		sbuf_add_escaped(&b, ctx->public_url);
		sbuf_add(&b, "</Url>\r\n          <Name>");
		sbuf_add_escaped(&b, ctx->public_url);
		sbuf_add(&b,
		         "</Name>\r\n        </Server>\r\n      </Settings>\r\n    </Action>\r\n");
		sbuf_add(&b, POX_TAIL);
		ans->content_type = XML_TYPE;
	}
	ans->status = 200;
	ans->len = b.len;
	ans->body = sbuf_take(&b);
}

/* The answer to a request read with status st (autodiscover.h). */
int
autod_answer(const struct autod_request *req, enum autod_status st, const struct autod_ctx *ctx,
             struct autod_answer *ans)
{
	bool json = req->kind == AUTOD_JSON;

	if (st == AUTOD_OTHER_SCHEMA && ctx->can_forward)
		return AUTOD_FORWARD;
	memset(ans, 0, sizeof(*ans));
	switch (st) {
	case AUTOD_OTHER_SCHEMA:
		if (json)
			json_error(ans, 400, "InvalidProtocol",
			           "The given protocol value is invalid. Supported values are "
			           "'" PROTOCOL_EAS "'.");
		else
			pox_error(ans, 601, "Provider is not available");
		break;
	case AUTOD_INVALID:
		if (json)
			json_error(ans, 400, "InvalidRequest", "Invalid Request");
		else
			pox_error(ans, 600, "Invalid Request");
		break;
	case AUTOD_OK:
		if (!autod_address_is_own(req->email, ctx)) {
			if (json)
				json_error(ans, 404, "UserNotFound", NOT_FOUND_MSG);
			else
				pox_error(ans, 500, NOT_FOUND_MSG);
			break;
		}
		settings(req, ctx, ans);
		break;
	}
	return AUTOD_ANSWER;
}
