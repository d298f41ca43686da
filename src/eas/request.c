/*
 * request.c: MS-ASHTTP request understanding (see request.h for every
 * decision and the reasons behind it).
 *
 * The work is split the way the request is: the method, the target (path,
 * then the query in one of its two forms), the headers, the credentials, and
 * last the checks that need all of them (identity, required parameters).
 * Every function that fails writes one precise sentence into the caller's
 * buffer through req_fail() and returns the error code; the half-built
 * request is then freed by eas_request_parse, never by the helpers.
 */
#include "eas/request.h"

#include "lib/b64.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EAS_PATH_DEFAULT  "/Microsoft-Server-ActiveSync"
#define EAS_PATH_MAX      1024
#define B64_DEVICE_ID_MAX 32 /* bytes; 64 hex characters, device_id_valid's cap */

/* A name with its length, for tables compared length first. */
#define NAME_LEN(s) s, sizeof(s) - 1

/* The names of the commands, indexed by enum eas_cmd. */
static const struct {
	const char *name;
	size_t len;
} cmd_names[EAS_CMD_COUNT] = {
    [EAS_CMD_NONE] = {NAME_LEN("")},
    [EAS_CMD_SYNC] = {NAME_LEN("Sync")},
    [EAS_CMD_SENDMAIL] = {NAME_LEN("SendMail")},
    [EAS_CMD_SMARTFORWARD] = {NAME_LEN("SmartForward")},
    [EAS_CMD_SMARTREPLY] = {NAME_LEN("SmartReply")},
    [EAS_CMD_GETATTACHMENT] = {NAME_LEN("GetAttachment")},
    [EAS_CMD_GETHIERARCHY] = {NAME_LEN("GetHierarchy")},
    [EAS_CMD_CREATECOLLECTION] = {NAME_LEN("CreateCollection")},
    [EAS_CMD_DELETECOLLECTION] = {NAME_LEN("DeleteCollection")},
    [EAS_CMD_MOVECOLLECTION] = {NAME_LEN("MoveCollection")},
    [EAS_CMD_FOLDERSYNC] = {NAME_LEN("FolderSync")},
    [EAS_CMD_FOLDERCREATE] = {NAME_LEN("FolderCreate")},
    [EAS_CMD_FOLDERDELETE] = {NAME_LEN("FolderDelete")},
    [EAS_CMD_FOLDERUPDATE] = {NAME_LEN("FolderUpdate")},
    [EAS_CMD_MOVEITEMS] = {NAME_LEN("MoveItems")},
    [EAS_CMD_GETITEMESTIMATE] = {NAME_LEN("GetItemEstimate")},
    [EAS_CMD_MEETINGRESPONSE] = {NAME_LEN("MeetingResponse")},
    [EAS_CMD_SEARCH] = {NAME_LEN("Search")},
    [EAS_CMD_SETTINGS] = {NAME_LEN("Settings")},
    [EAS_CMD_PING] = {NAME_LEN("Ping")},
    [EAS_CMD_ITEMOPERATIONS] = {NAME_LEN("ItemOperations")},
    [EAS_CMD_PROVISION] = {NAME_LEN("Provision")},
    [EAS_CMD_RESOLVERECIPIENTS] = {NAME_LEN("ResolveRecipients")},
    [EAS_CMD_VALIDATECERT] = {NAME_LEN("ValidateCert")},
    [EAS_CMD_FIND] = {NAME_LEN("Find")},
};

/*
 * The base64 command codes (MS-ASHTTP 2.2.1.1.1.1.2), indexed by enum eas_cmd;
 * -1 for the commands without one (5-8 are unassigned, Find has none).
 */
static const int cmd_codes[EAS_CMD_COUNT] = {
    [EAS_CMD_NONE] = -1,
    [EAS_CMD_SYNC] = 0,
    [EAS_CMD_SENDMAIL] = 1,
    [EAS_CMD_SMARTFORWARD] = 2,
    [EAS_CMD_SMARTREPLY] = 3,
    [EAS_CMD_GETATTACHMENT] = 4,
    [EAS_CMD_GETHIERARCHY] = -1,
    [EAS_CMD_CREATECOLLECTION] = -1,
    [EAS_CMD_DELETECOLLECTION] = -1,
    [EAS_CMD_MOVECOLLECTION] = -1,
    [EAS_CMD_FOLDERSYNC] = 9,
    [EAS_CMD_FOLDERCREATE] = 10,
    [EAS_CMD_FOLDERDELETE] = 11,
    [EAS_CMD_FOLDERUPDATE] = 12,
    [EAS_CMD_MOVEITEMS] = 13,
    [EAS_CMD_GETITEMESTIMATE] = 14,
    [EAS_CMD_MEETINGRESPONSE] = 15,
    [EAS_CMD_SEARCH] = 16,
    [EAS_CMD_SETTINGS] = 17,
    [EAS_CMD_PING] = 18,
    [EAS_CMD_ITEMOPERATIONS] = 19,
    [EAS_CMD_PROVISION] = 20,
    [EAS_CMD_RESOLVERECIPIENTS] = 21,
    [EAS_CMD_VALIDATECERT] = 22,
    [EAS_CMD_FIND] = -1,
};

/* The plain query parameters abqd understands. */
enum qparam {
	QP_CMD,
	QP_USER,
	QP_DEVICEID,
	QP_DEVICETYPE,
	QP_ATTACHMENTNAME,
	QP_COLLECTIONID,
	QP_ITEMID,
	QP_LONGID,
	QP_OCCURRENCE,
	QP_SAVEINSENT,
	QP_POLICYKEY,
	QP_ACCEPTMULTIPART,
	QP_COUNT
};

static const struct {
	const char *name;
	size_t len;
} qparams[QP_COUNT] = {
    [QP_CMD] = {NAME_LEN("Cmd")},
    [QP_USER] = {NAME_LEN("User")},
    [QP_DEVICEID] = {NAME_LEN("DeviceId")},
    [QP_DEVICETYPE] = {NAME_LEN("DeviceType")},
    [QP_ATTACHMENTNAME] = {NAME_LEN("AttachmentName")},
    [QP_COLLECTIONID] = {NAME_LEN("CollectionId")},
    [QP_ITEMID] = {NAME_LEN("ItemId")},
    [QP_LONGID] = {NAME_LEN("LongId")},
    [QP_OCCURRENCE] = {NAME_LEN("Occurrence")},
    [QP_SAVEINSENT] = {NAME_LEN("SaveInSent")},
    [QP_POLICYKEY] = {NAME_LEN("PolicyKey")},
    [QP_ACCEPTMULTIPART] = {NAME_LEN("AcceptMultiPart")},
};

/* The base64 parameter tags (MS-ASHTTP 2.2.1.1.1.1.3). */
enum b64tag {
	TAG_ATTACHMENTNAME = 0,
	TAG_COLLECTIONID = 1,
	TAG_ITEMID = 3,
	TAG_LONGID = 4,
	TAG_OCCURRENCE = 6,
	TAG_OPTIONS = 7,
	TAG_USER = 8,
};

#define OPT_SAVEINSENT      0x01
#define OPT_ACCEPTMULTIPART 0x02

/*
 * A request and the strings it holds, in one allocation: its strings are
 * carved from the arena behind it (a phone's request needs a few hundred
 * bytes), and only what does not fit gets a malloc of its own. The request
 * parser runs for every request the gateway takes, so this keeps it at one
 * malloc and one free where it had a dozen of each.
 */
struct req_block {
	struct eas_request req; /* first: the block is freed through &req */
	size_t used, cap;
	/*
	 * Whether a string was malloc'd (it did not fit the arena): when none
	 * was, eas_request_free has no field to look at but the password.
	 */
	bool heap;
	struct blk_cache *cache; /* the block's cache (cfg->blocks), or NULL: free() */
	char arena[];            /* cap bytes, sized from the request (req_arena_size) */
};

/* What one parse carries besides the request: where errors go, what was seen. */
struct parse_ctx {
	struct eas_request *req;
	char *errbuf;
	size_t errlen;
	bool has_query_policy_key; /* PolicyKey= or the base64 field */
	bool seen[QP_COUNT];       /* the plain parameters given */
	bool b64_options;          /* the base64 Options tag was given */
	bool q_multipart;          /* AcceptMultiPart= or the Options bit, alone */
	unsigned char b64_version; /* the base64 query's version byte */
	size_t qlen;               /* the raw query's length */
	/*
	 * The strings being set come verbatim from the request target, which
	 * parse_target has already refused for any control byte: no check again.
	 */
	bool from_target;
	uint32_t query_policy_key;
	const char *default_domain; /* eas_request_config's, for the account */
	/*
	 * The plain query as sent is already the one fwd_plain would build
	 * (parse_plain_query: nothing escaped, known names only, spelled and
	 * ordered as fwd_plain writes them, values of unreserved bytes in their
	 * one form): it is forwarded as it came, without being rebuilt.
	 */
	bool q_canon;
	const char *qraw; /* the raw query, qlen bytes */
	/*
	 * User= (or the base64 User) is the credentials' user name byte for
	 * byte (check_request): compared once, read by the forwarded query.
	 */
	bool user_is_auth;
	/*
	 * The values being set are NUL-terminated strings in the request's
	 * arena that live as long as it (parse_plain_verbatim): kept as they
	 * are, not copied.
	 */
	bool in_place;
};

static enum eas_req_err req_fail(struct parse_ctx *c, enum eas_req_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure: format its detail into the caller's buffer, return err. */
static enum eas_req_err
req_fail(struct parse_ctx *c, enum eas_req_err err, const char *fmt, ...)
{
	va_list ap;

	if (c->errbuf != NULL && c->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(c->errbuf, c->errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* n bytes for a string of the request: from the arena, else the heap. */
static char *
req_alloc(struct parse_ctx *c, size_t n)
{
	struct req_block *b = (struct req_block *)c->req;

	if (n <= b->cap - b->used) {
		char *p = b->arena + b->used;

		b->used += n;
		return p;
	}
	b->heap = true;
	return xmalloc(n);
}

/* The bytes the arena has left. */
static size_t
req_arena_left(const struct parse_ctx *c)
{
	const struct req_block *b = (const struct req_block *)c->req;

	return b->cap - b->used;
}

/* A copy of s[0..len) as a string of the request. */
static char *
req_strndup(struct parse_ctx *c, const char *s, size_t len)
{
	char *p = req_alloc(c, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Free a string of the request unless the arena holds it. */
static void
req_str_free(struct eas_request *r, char *p)
{
	struct req_block *b = (struct req_block *)r;

	uintptr_t a = (uintptr_t)b->arena, q = (uintptr_t)p;

	if (p != NULL && (q < a || q >= a + b->cap))
		free(p);
}

/* The one-line meaning of each error code, for logs and 400 bodies. */
const char *
eas_request_strerror(enum eas_req_err err)
{
	switch (err) {
	case EAS_REQ_OK:
		return "no error";
	case EAS_REQ_EMETHOD:
		return "bad request method";
	case EAS_REQ_ETARGET:
		return "bad request target";
	case EAS_REQ_ETOOLONG:
		return "request too large";
	case EAS_REQ_EESCAPE:
		return "bad %-escape in the query";
	case EAS_REQ_EDUPPARAM:
		return "duplicate query parameter";
	case EAS_REQ_EPARAM:
		return "invalid query parameter";
	case EAS_REQ_EBASE64:
		return "query is not valid base64";
	case EAS_REQ_ELAYOUT:
		return "malformed base64 query";
	case EAS_REQ_EUNKNOWNCMD:
		return "unknown command";
	case EAS_REQ_ENOCMD:
		return "no command";
	case EAS_REQ_ENODEVICEID:
		return "no DeviceId";
	case EAS_REQ_EDEVICEID:
		return "invalid DeviceId";
	case EAS_REQ_EVERSION:
		return "invalid protocol version";
	case EAS_REQ_EPOLICYKEY:
		return "invalid policy key";
	case EAS_REQ_EAUTH:
		return "malformed Authorization header";
	case EAS_REQ_EUSER:
		return "unusable user name in the credentials";
	case EAS_REQ_EDUPHEADER:
		return "duplicate header";
	case EAS_REQ_EHEADER:
		return "invalid header value";
	case EAS_REQ_EINVAL:
		return "invalid argument";
	case EAS_REQ_EPATH:
		return "path cannot be normalised";
	case EAS_REQ_EQUERY:
		return "query could be read differently";
	}
	return "unknown error";
}

/* The MS-ASCMD name of a command; "" for EAS_CMD_NONE or an out-of-range value. */
const char *
eas_cmd_name(enum eas_cmd cmd)
{
	if ((int)cmd < 0 || cmd >= EAS_CMD_COUNT)
		return "";
	return cmd_names[cmd].name;
}

/*
 * The command name[0..len) names, without regard to case, or EAS_CMD_NONE:
 * the length picks the candidates (every request's Cmd= is looked up here).
 */
static enum eas_cmd
cmd_of_name(const char *name, size_t len)
{
	for (int i = 1; i < EAS_CMD_COUNT; i++)
		if (cmd_names[i].len == len && mem_ieq(name, cmd_names[i].name, len))
			return (enum eas_cmd)i;
	return EAS_CMD_NONE;
}

/* Look a command name up without regard to case; EAS_CMD_NONE if unknown. */
enum eas_cmd
eas_cmd_from_name(const char *name)
{
	if (name == NULL)
		return EAS_CMD_NONE;
	return cmd_of_name(name, strlen(name));
}

/* The base64 command code of a command, or -1 when the spec gives it none. */
int
eas_cmd_code(enum eas_cmd cmd)
{
	if ((int)cmd < 0 || cmd >= EAS_CMD_COUNT)
		return -1;
	return cmd_codes[cmd];
}

/* The command a base64 command code stands for, or EAS_CMD_NONE. */
enum eas_cmd
eas_cmd_from_code(int code)
{
	if (code < 0)
		return EAS_CMD_NONE;
	for (int i = 1; i < EAS_CMD_COUNT; i++)
		if (cmd_codes[i] == code)
			return (enum eas_cmd)i;
	return EAS_CMD_NONE;
}

/* True for a byte no value may hold: C0 controls and DEL. */
static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* True if s[0..len) holds no control character. */
static bool
no_ctl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (is_ctl((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * The length of the run of visible ASCII (0x21-0x7e) that starts s[0..n):
 * n when every byte is one. Eight bytes a step: a word is looked at byte by
 * byte only when it holds a byte below 0x21 or above 0x7e. Both word tests
 * are exact: a byte can borrow or carry into its neighbour only when it is
 * itself out of range.
 */
static size_t
graphic_prefix(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if ((((w - ones * 0x21) & ~w) | ((w + ones) | w)) & high)
			break;
	}
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f)
			break;
	}
	return i;
}

/*
 * The classes of the bytes of a request target, one lookup per byte (the
 * hot path runs every byte of a phone's target through them): UNRESERVED
 * (RFC 3986 2.3: letters, digits, '-' '.' '_' '~'), PATH_LIT what fwd_path
 * carries as it is (unreserved, the sub-delims a segment allows but ';',
 * ':', '@', '/'), NAME_CH what a query parameter name may hold (letters and
 * digits), QUERY_END where a plain query's value ends ('&' and the NUL after
 * the query). Bytes from 0x80 are in none.
 */
#define UNRESERVED 1
#define PATH_LIT   2
#define NAME_CH    4
#define QUERY_END  8

static const unsigned char uri_class[256] = {
    8, 0, 0, 0, 0, 0, 0,  0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0,  0, /* 0x08 */
    0, 0, 0, 0, 0, 0, 0,  0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0,  0, /* 0x18 */
    0, 2, 0, 0, 2, 0, 10, 2, /* 0x20 */
    2, 2, 2, 2, 2, 3, 3,  2, /* 0x28 */
    7, 7, 7, 7, 7, 7, 7,  7, /* 0x30 */
    7, 7, 2, 0, 0, 2, 0,  0, /* 0x38 */
    2, 7, 7, 7, 7, 7, 7,  7, /* 0x40 */
    7, 7, 7, 7, 7, 7, 7,  7, /* 0x48 */
    7, 7, 7, 7, 7, 7, 7,  7, /* 0x50 */
    7, 7, 7, 0, 0, 0, 0,  3, /* 0x58 */
    0, 7, 7, 7, 7, 7, 7,  7, /* 0x60 */
    7, 7, 7, 7, 7, 7, 7,  7, /* 0x68 */
    7, 7, 7, 7, 7, 7, 7,  7, /* 0x70 */
    7, 7, 7, 0, 0, 0, 3,  0, /* 0x78 */
};

/* True for an unreserved byte. */
static inline bool
is_unreserved(unsigned char ch)
{
	return (uri_class[ch] & UNRESERVED) != 0;
}

/* True for a byte fwd_path carries as it is. */
static inline bool
is_path_literal(unsigned char ch)
{
	return (uri_class[ch] & PATH_LIT) != 0;
}

/* The value of a hex digit, or -1. */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) into out (len + 1 bytes), NUL-terminated; returns out. */
static char *
copy_nul(char *out, const char *s, size_t len)
{
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/* Strict %-decoding (request.h). */
char *
eas_pct_decode(const char *s, size_t len, bool plus_space, char *out, size_t *outlen,
               size_t *errpos)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '%') {
			int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				*errpos = i;
				return NULL;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (ch == '+' && plus_space) {
			out[o++] = ' ';
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Parse a whole decimal number s[0..len) in [0, 2^32-1]: no sign, no space. */
static bool
parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* A protocol version as headers spell it: 1-2 digits, '.', 1 digit ("14.1"). */
static bool
version_valid(const char *v)
{
	size_t i = 0, n;

	while (v[i] >= '0' && v[i] <= '9')
		i++;
	if (i < 1 || i > 2 || v[i] != '.')
		return false;
	n = ++i;
	while (v[i] >= '0' && v[i] <= '9')
		i++;
	return i - n == 1 && v[i] == '\0';
}

/* Upper-case hex of b[0..n) into out (2n + 1 bytes), NUL-terminated. */
static char *
hex_into(char *out, const unsigned char *b, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0x0f];
	}
	out[n * 2] = '\0';
	return out;
}

/* Upper-case hex of b[0..n) as a string of the request. */
static char *
hex_upper(struct parse_ctx *c, const unsigned char *b, size_t n)
{
	return hex_into(req_alloc(c, n * 2 + 1), b, n);
}

/*
 * Keep an unknown parameter for the logs. Two unknown parameters of the same
 * name are a duplicate like any other; past EAS_REQ_EXTRA_MAX they are only
 * counted.
 */
static enum eas_req_err
add_extra(struct parse_ctx *c, const char *name, const char *value)
{
	struct eas_request *r = c->req;

	for (size_t i = 0; i < r->n_extra; i++)
		if (strcasecmp(r->extra[i].name, name) == 0)
			return req_fail(c, EAS_REQ_EDUPPARAM, "query parameter %.64s given twice",
			                name);
	if (r->n_extra == EAS_REQ_EXTRA_MAX) {
		r->n_extra_dropped++;
		return EAS_REQ_OK;
	}
	r->extra[r->n_extra].name = req_strndup(c, name, strlen(name));
	r->extra[r->n_extra].value = req_strndup(c, value, strlen(value));
	r->n_extra++;
	return EAS_REQ_OK;
}

/*
 * Store one known string parameter (plain or base64) after the checks they
 * all share: no control characters, a length cap. An empty value leaves the
 * field unset, as if the parameter were absent.
 */
static enum eas_req_err
set_param(struct parse_ctx *c, char **field, const char *name, const char *value, size_t len,
          size_t max, const char *form)
{
	if (len > max)
		return req_fail(c, EAS_REQ_ETOOLONG, "%s: %s is %zu bytes long (at most %zu)", form,
		                name, len, max);
	if (!c->from_target && !no_ctl(value, len))
		return req_fail(c, EAS_REQ_EPARAM, "%s: %s holds a control character", form, name);
	if (len == 0)
		return EAS_REQ_OK;
	req_str_free(c->req, *field);
	/* In place: value is the arena's own string (parse_ctx, in_place). */
	*field = c->in_place ? (char *)value : req_strndup(c, value, len);
	return EAS_REQ_OK;
}

/* A T/F flag of the plain query (SaveInSent=T). */
static enum eas_req_err
set_flag(struct parse_ctx *c, bool *field, const char *name, const char *value)
{
	if (strcmp(value, "T") == 0 || strcmp(value, "t") == 0)
		*field = true;
	else if (strcmp(value, "F") == 0 || strcmp(value, "f") == 0)
		*field = false;
	else
		return req_fail(c, EAS_REQ_EPARAM, "query: %s must be T or F", name);
	return EAS_REQ_OK;
}

/* Act on one known plain parameter, already %-decoded. */
static enum eas_req_err
plain_param(struct parse_ctx *c, enum qparam qp, const char *value, size_t len)
{
	struct eas_request *r = c->req;
	const char *name = qparams[qp].name;
	enum eas_req_err err;

	if (!c->from_target && !no_ctl(value, len))
		return req_fail(c, EAS_REQ_EPARAM, "query: %s holds a control character", name);
	switch (qp) {
	case QP_CMD:
		if (len == 0)
			return req_fail(c, EAS_REQ_ENOCMD, "query: Cmd is empty");
		r->cmd = cmd_of_name(value, len);
		if (r->cmd == EAS_CMD_NONE)
			return req_fail(c, EAS_REQ_EUNKNOWNCMD, "query: unknown command \"%.40s\"",
			                value);
		return EAS_REQ_OK;
	case QP_USER:
		return set_param(c, &r->user, name, value, len, EAS_REQ_USER_MAX, "query");
	case QP_DEVICEID:
		if (!device_id_valid(value))
			return req_fail(c, EAS_REQ_EDEVICEID,
			                "query: DeviceId must be 1-64 printable characters "
			                "without '/' or white space");
		r->device_id = c->in_place ? (char *)value : req_strndup(c, value, len);
		return EAS_REQ_OK;
	case QP_DEVICETYPE:
		return set_param(c, &r->device_type, name, value, len, EAS_REQ_DEVTYPE_MAX,
		                 "query");
	case QP_ATTACHMENTNAME:
		return set_param(c, &r->attachment_name, name, value, len, EAS_REQ_VALUE_MAX,
		                 "query");
	case QP_COLLECTIONID:
		return set_param(c, &r->collection_id, name, value, len, EAS_REQ_VALUE_MAX,
		                 "query");
	case QP_ITEMID:
		return set_param(c, &r->item_id, name, value, len, EAS_REQ_VALUE_MAX, "query");
	case QP_LONGID:
		return set_param(c, &r->long_id, name, value, len, EAS_REQ_VALUE_MAX, "query");
	case QP_OCCURRENCE:
		return set_param(c, &r->occurrence, name, value, len, EAS_REQ_VALUE_MAX, "query");
	case QP_SAVEINSENT:
		return set_flag(c, &r->save_in_sent, name, value);
	case QP_ACCEPTMULTIPART:
		if ((err = set_flag(c, &r->accept_multipart, name, value)) != EAS_REQ_OK)
			return err;
		c->q_multipart = r->accept_multipart;
		return EAS_REQ_OK;
	case QP_POLICYKEY:
		if (!parse_u32(value, len, &c->query_policy_key))
			return req_fail(
			    c, EAS_REQ_EPOLICYKEY,
			    "query: PolicyKey is not a number between 0 and 4294967295");
		c->has_query_policy_key = true;
		return EAS_REQ_OK;
	case QP_COUNT:
		break;
	}
	return req_fail(c, EAS_REQ_EINVAL, "query: internal error");
}

/*
 * Whether one known pair, already taken by plain_param, is written exactly
 * as fwd_plain would write it: after the previous pair in fwd_plain's order,
 * the name spelled as in qparams, a value that is not empty, of unreserved
 * bytes only (unreserved: the caller has looked), and in the one form
 * fwd_plain gives it (the command's own name, T or F, a number without
 * leading zeros).
 */
static inline bool
plain_canonical(const struct parse_ctx *c, int qp, int last, const char *name, bool has_eq,
                const char *value, size_t vlen, bool unreserved)
{
	if (qp <= last || !has_eq || vlen == 0 || !unreserved ||
	    memcmp(name, qparams[qp].name, qparams[qp].len) != 0)
		return false;
	switch (qp) {
	case QP_CMD:
		return strcmp(value, eas_cmd_name(c->req->cmd)) == 0;
	case QP_SAVEINSENT:
	case QP_ACCEPTMULTIPART:
		return vlen == 1 && (value[0] == 'T' || value[0] == 'F');
	case QP_POLICYKEY:
		return value[0] != '0' || vlen == 1;
	default:
		return true;
	}
}

/*
 * parse_plain_query for a query with nothing to decode (no '%', no '+': the
 * query of nearly every phone), when the arena has room for it: the same
 * pairs, checks, errors in the same order and the same canonical test, in
 * one walk over each pair. The query is copied once into the arena and cut
 * there into NUL-terminated names and values, which the known parameters
 * keep as they are instead of a copy each. Not inlined: inside
 * eas_request_parse its byte loops ran short of registers and reloaded the
 * buffer and the class table from the stack on every byte (bench/callgrind.sh).
 */
static __attribute__((noinline)) enum eas_req_err
parse_plain_verbatim(struct parse_ctx *c, const char *q, size_t qlen)
{
	bool *seen = c->seen;
	size_t start = 0, nparams = 0;
	enum eas_req_err err = EAS_REQ_OK;
	char *buf = req_alloc(c, qlen + 1); /* in the arena: the caller has looked */
	bool canon = true;                  /* see parse_ctx, q_canon */
	int last = -1;

	memcpy(buf, q, qlen);
	buf[qlen] = '\0';
	c->from_target = true;
	c->in_place = true;
	while (start <= qlen && err == EAS_REQ_OK) {
		size_t i = start, nlen, vlen = 0;
		char *name = buf + start, *value;
		unsigned cls = UNRESERVED; /* the classes all the value's bytes share */
		bool has_eq;
		int qp;

		if (start == qlen || buf[start] == '&') {
			canon = false; /* an empty pair */
			start++;
			continue;
		}
		if (++nparams > EAS_REQ_PARAMS_MAX) {
			err = req_fail(c, EAS_REQ_ETOOLONG, "query: more than %d parameters",
			               EAS_REQ_PARAMS_MAX);
			break;
		}
		/* The NUL at buf[qlen] stops both walks: the query holds no other. */
		while (uri_class[(unsigned char)buf[i]] & NAME_CH)
			i++;
		nlen = i - start;
		/* A name is letters and digits given literally (parse_plain_query). */
		if (i < qlen && buf[i] != '=' && buf[i] != '&') {
			err = req_fail(c, EAS_REQ_EQUERY,
			               "query: parameter name with '%c' at byte %zu (names are "
			               "letters and digits)",
			               buf[i], i + 1);
			break;
		}
		if (nlen == 0) {
			err = req_fail(c, EAS_REQ_EPARAM,
			               "query: parameter without a name at byte %zu", start + 1);
			break;
		}
		has_eq = i < qlen && buf[i] == '=';
		buf[i] = '\0'; /* the name's end: its '=', its '&' or the query's NUL */
		value = buf + i;
		start = i + 1;
		if (has_eq) {
			size_t j = i + 1;

			for (unsigned k; !((k = uri_class[(unsigned char)buf[j]]) & QUERY_END); j++)
				cls &= k;
			buf[j] = '\0';
			value = buf + i + 1;
			vlen = j - i - 1;
			start = j + 1;
		}
		for (qp = 0; qp < QP_COUNT; qp++)
			if (qparams[qp].len == nlen && mem_ieq(name, qparams[qp].name, nlen))
				break;
		if (qp == QP_COUNT) {
			canon = false;
			if (nlen > 64 || vlen > EAS_REQ_VALUE_MAX)
				err = req_fail(c, EAS_REQ_ETOOLONG,
				               "query: an unknown parameter is too long");
			else
				err = add_extra(c, name, value);
			continue;
		}
		if (seen[qp]) {
			err = req_fail(c, EAS_REQ_EDUPPARAM, "query: %s given twice",
			               qparams[qp].name);
			continue;
		}
		seen[qp] = true;
		err = plain_param(c, (enum qparam)qp, value, vlen);
		if (canon && err == EAS_REQ_OK)
			canon = plain_canonical(c, qp, last, name, has_eq, value, vlen,
			                        (cls & UNRESERVED) != 0);
		last = qp;
	}
	c->q_canon = canon && err == EAS_REQ_OK;
	c->qraw = q;
	c->from_target = false;
	c->in_place = false;
	return err;
}

/*
 * The plain query: split on '&', each pair on its first '=', decode name and
 * value, refuse duplicates, dispatch the known names and keep the others.
 */
static enum eas_req_err
parse_plain_query(struct parse_ctx *c, const char *q, size_t qlen)
{
	bool *seen = c->seen;
	size_t start = 0, nparams = 0;
	enum eas_req_err err = EAS_REQ_OK;
	/* Decoded name and value of one pair: at most the pair's length + 2. */
	char stackbuf[512];
	char *scratch;
	/*
	 * Nearly every phone's query has nothing to decode: then each name and
	 * value is a plain copy of bytes parse_target has checked.
	 */
	bool verbatim = memchr(q, '%', qlen) == NULL && memchr(q, '+', qlen) == NULL;
	bool canon = verbatim; /* see parse_ctx, q_canon */
	int last = -1;

	if (verbatim && qlen < req_arena_left(c))
		return parse_plain_verbatim(c, q, qlen);
	scratch = qlen + 2 <= sizeof(stackbuf) ? stackbuf : xmalloc(qlen + 2);

	c->from_target = verbatim;

	while (start <= qlen && err == EAS_REQ_OK) {
		const char *pair = q + start, *eq;
		size_t end = start, plen, nlen, vlen, pos;
		char *name, *value;
		int qp;

		{
			const char *amp = memchr(q + start, '&', qlen - start);

			end = amp != NULL ? (size_t)(amp - q) : qlen;
		}
		plen = end - start;
		start = end + 1;
		if (plen == 0) {
			canon = false;
			continue;
		}
		if (++nparams > EAS_REQ_PARAMS_MAX) {
			err = req_fail(c, EAS_REQ_ETOOLONG, "query: more than %d parameters",
			               EAS_REQ_PARAMS_MAX);
			break;
		}
		eq = memchr(pair, '=', plen);
		nlen = eq != NULL ? (size_t)(eq - pair) : plen;
		if (nlen == 0) {
			err = req_fail(c, EAS_REQ_EPARAM,
			               "query: parameter without a name at byte %zu",
			               (size_t)(pair - q) + 1);
			break;
		}
		/*
		 * A name is letters and digits, given literally: PHP reads
		 * "+DeviceId" as "DeviceId" and "Device.Id" as "Device_Id", so
		 * any other spelling could name another parameter upstream.
		 */
		for (pos = 0; pos < nlen; pos++) {
			unsigned char ch = (unsigned char)pair[pos];

			if (!(uri_class[ch] & NAME_CH))
				break;
		}
		if (pos < nlen) {
			err = req_fail(c, EAS_REQ_EQUERY,
			               "query: parameter name with '%c' at byte %zu (names are "
			               "letters and digits)",
			               pair[pos], (size_t)(pair - q) + pos + 1);
			break;
		}
		name = copy_nul(scratch, pair, nlen);
		value = scratch + nlen + 1;
		if (eq != NULL && verbatim) {
			vlen = plen - (size_t)(eq + 1 - pair);
			copy_nul(value, eq + 1, vlen);
		} else if (eq != NULL) {
			if (eas_pct_decode(eq + 1, plen - (size_t)(eq + 1 - pair), true, value,
			                   &vlen, &pos) == NULL) {
				err =
				    req_fail(c, EAS_REQ_EESCAPE, "query: bad %%-escape at byte %zu",
				             (size_t)(eq + 1 - q) + pos + 1);
				break;
			}
		} else {
			value[0] = '\0';
			vlen = 0;
		}
		for (qp = 0; qp < QP_COUNT; qp++)
			if (qparams[qp].len == nlen && mem_ieq(name, qparams[qp].name, nlen))
				break;
		if (qp == QP_COUNT) {
			canon = false;
			if (nlen > 64 || vlen > EAS_REQ_VALUE_MAX)
				err = req_fail(c, EAS_REQ_ETOOLONG,
				               "query: an unknown parameter is too long");
			else if (!verbatim && !no_ctl(value, vlen))
				err = req_fail(c, EAS_REQ_EPARAM,
				               "query: %s holds a control character", name);
			else
				err = add_extra(c, name, value);
			continue;
		}
		if (seen[qp]) {
			err = req_fail(c, EAS_REQ_EDUPPARAM, "query: %s given twice",
			               qparams[qp].name);
			continue;
		}
		seen[qp] = true;
		err = plain_param(c, (enum qparam)qp, value, vlen);
		if (canon && err == EAS_REQ_OK) {
			bool unres = true;

			for (size_t i = 0; i < vlen && unres; i++)
				unres = is_unreserved((unsigned char)value[i]);
			canon = plain_canonical(c, qp, last, name, eq != NULL, value, vlen, unres);
		}
		last = qp;
	}
	c->q_canon = canon && err == EAS_REQ_OK;
	c->qraw = q;
	c->from_target = false;
	if (scratch != stackbuf)
		free(scratch);
	return err;
}

/*
 * Take want bytes of field what at *pos, or fail saying where the query ended.
 * A variable field (len_byte true) reports its length and the byte (from 1)
 * where its value starts: "DeviceId length 40 runs past the end (byte 6 of 22)".
 */
static enum eas_req_err
b64_take(struct parse_ctx *c, size_t n, size_t *pos, size_t want, const char *what, bool len_byte)
{
	if (want <= n - *pos) {
		*pos += want;
		return EAS_REQ_OK;
	}
	if (len_byte)
		return req_fail(c, EAS_REQ_ELAYOUT,
		                "base64 query: %s length %zu runs past the end (byte %zu of %zu)",
		                what, want, *pos + 1, n);
	return req_fail(c, EAS_REQ_ELAYOUT, "base64 query: ends before the %s (byte %zu of %zu)",
	                what, *pos + 1, n);
}

/* The name of a base64 parameter tag for messages. */
static const char *
tag_name(unsigned tag)
{
	switch (tag) {
	case TAG_ATTACHMENTNAME:
		return "AttachmentName";
	case TAG_COLLECTIONID:
		return "CollectionId";
	case TAG_ITEMID:
		return "ItemId";
	case TAG_LONGID:
		return "LongId";
	case TAG_OCCURRENCE:
		return "Occurrence";
	case TAG_OPTIONS:
		return "Options";
	case TAG_USER:
		return "User";
	}
	return "unknown parameter";
}

/* The tagged parameters after the DeviceType, to the end of the bytes. */
static enum eas_req_err
parse_b64_params(struct parse_ctx *c, const unsigned char *b, size_t n, size_t pos)
{
	struct eas_request *r = c->req;
	uint32_t seen = 0;
	size_t nparams = 0;
	enum eas_req_err err;

	while (pos < n) {
		unsigned tag = b[pos], len;
		size_t vpos;
		char **field = NULL;

		pos++;
		if ((err = b64_take(c, n, &pos, 1, "parameter length", false)) != EAS_REQ_OK)
			return err;
		len = b[pos - 1];
		vpos = pos;
		if ((err = b64_take(c, n, &pos, len, tag_name(tag), true)) != EAS_REQ_OK)
			return err;
		if (++nparams > EAS_REQ_PARAMS_MAX)
			return req_fail(c, EAS_REQ_ETOOLONG,
			                "base64 query: more than %d parameters",
			                EAS_REQ_PARAMS_MAX);
		if (tag < 32) {
			if (seen & (1u << tag))
				return req_fail(
				    c, EAS_REQ_EDUPPARAM,
				    "base64 query: %s (tag %u) given twice (byte %zu of %zu)",
				    tag_name(tag), tag, vpos - 1, n);
			seen |= 1u << tag;
		}
		switch (tag) {
		case TAG_ATTACHMENTNAME:
			field = &r->attachment_name;
			break;
		case TAG_COLLECTIONID:
			field = &r->collection_id;
			break;
		case TAG_ITEMID:
			field = &r->item_id;
			break;
		case TAG_LONGID:
			field = &r->long_id;
			break;
		case TAG_OCCURRENCE:
			field = &r->occurrence;
			break;
		case TAG_USER:
			field = &r->user;
			break;
		case TAG_OPTIONS:
			if (len != 1)
				return req_fail(c, EAS_REQ_EPARAM,
				                "base64 query: Options length %u (must be 1) (byte "
				                "%zu of %zu)",
				                len, vpos, n);
			r->save_in_sent = (b[vpos] & OPT_SAVEINSENT) != 0;
			c->b64_options = true;
			c->q_multipart = (b[vpos] & OPT_ACCEPTMULTIPART) != 0;
			r->accept_multipart = r->accept_multipart || c->q_multipart;
			continue;
		default: {
			char name[8], hex[2 * 255 + 1]; /* len is one byte */

			snprintf(name, sizeof(name), "#%u", tag);
			err = add_extra(c, name, hex_into(hex, b + vpos, len));
			if (err != EAS_REQ_OK)
				return err;
			continue;
		}
		}
		if (memchr(b + vpos, '\0', len) != NULL)
			return req_fail(c, EAS_REQ_EPARAM,
			                "base64 query: %s holds a NUL byte (byte %zu of %zu)",
			                tag_name(tag), vpos + 1, n);
		err = set_param(c, field, tag_name(tag), (const char *)b + vpos, len,
		                tag == TAG_USER ? EAS_REQ_USER_MAX : EAS_REQ_VALUE_MAX,
		                "base64 query");
		if (err != EAS_REQ_OK)
			return err;
	}
	return EAS_REQ_OK;
}

/*
 * The decoded base64 query (MS-ASHTTP 2.2.1.1.1.1): version, command, locale,
 * DeviceId, policy key, DeviceType, then tagged parameters. Every length is
 * checked against the bytes left before it is used.
 */
static enum eas_req_err
parse_b64_layout(struct parse_ctx *c, const unsigned char *b, size_t n)
{
	struct eas_request *r = c->req;
	size_t pos = 0, len;
	enum eas_req_err err;

	if ((err = b64_take(c, n, &pos, 1, "protocol version", false)) != EAS_REQ_OK)
		return err;
	switch (b[0]) {
	case 121:
	case 140:
	case 141:
	case 160:
	case 161:
		c->b64_version = b[0];
		r->protocol_version = req_alloc(c, 5);
		snprintf(r->protocol_version, 5, "%u.%u", b[0] / 10u, b[0] % 10u);
		break;
	default:
		return req_fail(c, EAS_REQ_EVERSION,
		                "base64 query: unknown protocol version %u (byte 1 of %zu)", b[0],
		                n);
	}
	if ((err = b64_take(c, n, &pos, 1, "command code", false)) != EAS_REQ_OK)
		return err;
	r->cmd = eas_cmd_from_code(b[1]);
	if (r->cmd == EAS_CMD_NONE)
		return req_fail(c, EAS_REQ_EUNKNOWNCMD,
		                "base64 query: unknown command code %u (byte 2 of %zu)", b[1], n);
	if ((err = b64_take(c, n, &pos, 2, "locale", false)) != EAS_REQ_OK)
		return err;
	r->has_locale = true;
	r->locale = (uint16_t)(b[2] | b[3] << 8);

	if ((err = b64_take(c, n, &pos, 1, "DeviceId length", false)) != EAS_REQ_OK)
		return err;
	len = b[pos - 1];
	if (len == 0)
		return req_fail(c, EAS_REQ_EDEVICEID,
		                "base64 query: DeviceId length 0 (byte %zu of %zu)", pos, n);
	if ((err = b64_take(c, n, &pos, len, "DeviceId", true)) != EAS_REQ_OK)
		return err;
	if (len > B64_DEVICE_ID_MAX)
		return req_fail(c, EAS_REQ_EDEVICEID,
		                "base64 query: DeviceId of %zu bytes is longer than %d (byte %zu "
		                "of %zu)",
		                len, B64_DEVICE_ID_MAX, pos - len, n);
	r->device_id = hex_upper(c, b + pos - len, len);

	if ((err = b64_take(c, n, &pos, 1, "policy key length", false)) != EAS_REQ_OK)
		return err;
	len = b[pos - 1];
	if (len != 0 && len != 4)
		return req_fail(c, EAS_REQ_ELAYOUT,
		                "base64 query: policy key length %zu (must be 0 or 4) (byte %zu of "
		                "%zu)",
		                len, pos, n);
	if ((err = b64_take(c, n, &pos, len, "policy key", true)) != EAS_REQ_OK)
		return err;
	if (len == 4) {
		const unsigned char *k = b + pos - 4;

		c->has_query_policy_key = true;
		c->query_policy_key = (uint32_t)k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 |
		                      (uint32_t)k[3] << 24;
	}

	if ((err = b64_take(c, n, &pos, 1, "DeviceType length", false)) != EAS_REQ_OK)
		return err;
	len = b[pos - 1];
	if ((err = b64_take(c, n, &pos, len, "DeviceType", true)) != EAS_REQ_OK)
		return err;
	for (size_t i = pos - len; i < pos; i++)
		if (b[i] <= 0x20 || b[i] >= 0x7f)
			return req_fail(c, EAS_REQ_EPARAM,
			                "base64 query: DeviceType holds a byte that is not "
			                "printable ASCII (byte %zu of %zu)",
			                i + 1, n);
	if (len > 0)
		r->device_type = req_strndup(c, (const char *)b + pos - len, len);

	return parse_b64_params(c, b, n, pos);
}

/* The base64 query: %-decode if needed, base64-decode strictly, read the layout. */
static enum eas_req_err
parse_b64_query(struct parse_ctx *c, const char *q, size_t qlen)
{
	char textbuf[256], bytesbuf[256];
	char *text = NULL;
	const char *in = q;
	size_t inlen = qlen, blen, pos;
	unsigned char *bytes;
	const char *why;
	enum eas_req_err err;

	if (memchr(q, '%', qlen) != NULL) {
		text = qlen < sizeof(textbuf) ? textbuf : xmalloc(qlen + 1);
		if (eas_pct_decode(q, qlen, false, text, &inlen, &pos) == NULL) {
			if (text != textbuf)
				free(text);
			return req_fail(c, EAS_REQ_EESCAPE,
			                "base64 query: bad %%-escape at byte %zu", pos + 1);
		}
		in = text;
	}
	bytes = B64_DECODED_MAX(inlen) <= sizeof(bytesbuf) ? (unsigned char *)bytesbuf
	                                                   : xmalloc(B64_DECODED_MAX(inlen));
	if (b64_decode(in, inlen, bytes, &blen, &pos, &why) != 0) {
		err = req_fail(c, EAS_REQ_EBASE64, "base64 query: %s at character %zu of %zu", why,
		               pos + 1, inlen);
	} else {
		err = parse_b64_layout(c, bytes, blen);
	}
	if (bytes != (unsigned char *)bytesbuf)
		free(bytes);
	if (text != NULL && text != textbuf)
		free(text);
	return err;
}

/*
 * A query is base64 when it has no '&' and no '=' other than trailing padding
 * (raw or %3D-escaped is left to the decoder: '%' is not base64 either way).
 */
static bool
query_is_base64(const char *q, size_t qlen)
{
	size_t end = qlen;

	if (memchr(q, '&', qlen) != NULL)
		return false;
	while (end > 0 && q[end - 1] == '=')
		end--;
	return memchr(q, '=', end) == NULL;
}

/* The method: an upper-case token of at most EAS_REQ_METHOD_MAX letters. */
static enum eas_req_err
parse_method(struct parse_ctx *c, const char *method)
{
	struct eas_request *r = c->req;
	size_t len = strnlen(method, EAS_REQ_METHOD_MAX + 1);

	if (len == 0 || len > EAS_REQ_METHOD_MAX)
		return req_fail(c, EAS_REQ_EMETHOD, "method missing or longer than %d characters",
		                EAS_REQ_METHOD_MAX);
	for (size_t i = 0; i < len; i++)
		if (method[i] < 'A' || method[i] > 'Z')
			return req_fail(c, EAS_REQ_EMETHOD,
			                "method is not an upper-case word (character %zu)", i + 1);
	r->method_name = req_strndup(c, method, len);
#define METHOD_IS(m) (len == sizeof(m) - 1 && memcmp(method, m, len) == 0)
	if (METHOD_IS("POST"))
		r->method = EAS_METHOD_POST;
	else if (METHOD_IS("OPTIONS"))
		r->method = EAS_METHOD_OPTIONS;
	else if (METHOD_IS("GET"))
		r->method = EAS_METHOD_GET;
	else if (METHOD_IS("HEAD"))
		r->method = EAS_METHOD_HEAD;
	else
		r->method = EAS_METHOD_OTHER;
#undef METHOD_IS
	return EAS_REQ_OK;
}

/*
 * True if the raw path p[0..len) (p[0] is '/') is its own canonical form:
 * nothing to decode or refuse, no "//", no "." or ".." segment. A phone's
 * "/Microsoft-Server-ActiveSync" is, and takes only this one pass; the
 * segments are looked at from their '/', so the other bytes take one test.
 */
static bool
path_is_canonical(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '/') {
			size_t k = i + 1; /* where the segment after it starts */

			if (k < len && p[k] == '/')
				return false;
			if (k < len && p[k] == '.') {
				k++;
				if (k < len && p[k] == '.')
					k++;
				if (k == len || p[k] == '/')
					return false; /* a "." or ".." segment */
			}
		} else if (!is_path_literal(ch)) {
			return false;
		}
	}
	return true;
}

/*
 * Strict %-decoding of the path p[0..len) into out (len + 1 bytes) with runs
 * of '/' collapsed. Refused: a bad escape; a '\' or ';', raw or encoded; an
 * encoded '/' (it would be a separator upstream and not here) or '%' (an
 * upstream that decodes twice would see what abqd did not); a decoded byte
 * outside visible ASCII. Returns the length written, or (size_t)-1 with the
 * error recorded.
 */
static size_t
path_decode(struct parse_ctx *c, const char *p, size_t len, char *out, enum eas_req_err *err)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\\' || ch == ';') {
			*err = req_fail(c, EAS_REQ_EPATH, "path: '%c' at byte %zu", ch, i + 1);
			return (size_t)-1;
		}
		if (ch == '%') {
			int hi = i + 2 < len ? hexval((unsigned char)p[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)p[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				*err = req_fail(c, EAS_REQ_EPATH, "path: bad %%-escape at byte %zu",
				                i + 1);
				return (size_t)-1;
			}
			ch = (unsigned char)(hi << 4 | lo);
			if (ch == '/' || ch == '\\' || ch == ';' || ch == '%') {
				*err = req_fail(c, EAS_REQ_EPATH,
				                "path: encoded '%c' (%%%02X) at byte %zu", ch, ch,
				                i + 1);
				return (size_t)-1;
			}
			if (ch <= 0x20 || ch >= 0x7f) {
				*err = req_fail(c, EAS_REQ_EPATH,
				                "path: %%%02X at byte %zu is not a visible ASCII "
				                "character",
				                ch, i + 1);
				return (size_t)-1;
			}
			out[o++] = (char)ch;
			i += 2;
			continue;
		}
		if (ch == '/' && o > 0 && out[o - 1] == '/')
			continue; /* decoded bytes are never '/': only raw ones collapse */
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o;
}

/*
 * Remove the dot-segments of the decoded, collapsed path s[0..n) (s[0] is
 * '/') in place, as RFC 3986 5.2.4 does, except that a ".." at the root is
 * refused rather than dropped: it means the client aimed above it. A path
 * that ends in a dot-segment or '/' keeps a trailing '/'. Returns the new
 * length, or (size_t)-1 with the error recorded.
 */
static size_t
path_remove_dots(struct parse_ctx *c, char *s, size_t n, enum eas_req_err *err)
{
	size_t w = 0, i = 0;
	bool slash_end = false;

	while (i < n) {
		size_t j = i + 1, sl;

		while (j < n && s[j] != '/')
			j++;
		sl = j - i - 1;
		slash_end = true;
		if (sl == 2 && s[i + 1] == '.' && s[i + 2] == '.') {
			if (w == 0) {
				*err =
				    req_fail(c, EAS_REQ_EPATH, "path: '..' climbs above the root");
				return (size_t)-1;
			}
			while (s[w - 1] != '/')
				w--;
			w--;
		} else if (!(sl == 1 && s[i + 1] == '.') && sl > 0) {
			memmove(s + w, s + i, sl + 1);
			w += sl + 1;
			slash_end = false;
		}
		i = j;
	}
	if (slash_end || w == 0)
		s[w++] = '/';
	s[w] = '\0';
	return w;
}

/*
 * The canonical path of the raw p[0..len) into r->path, and its wire form
 * into r->fwd_path (the same string when nothing needs escaping), its
 * length into *outlen.
 */
static enum eas_req_err
canon_path(struct parse_ctx *c, const char *p, size_t len, size_t *outlen)
{
	struct eas_request *r = c->req;
	enum eas_req_err err = EAS_REQ_OK;
	size_t n, extra = 0;
	char *s;

	if (path_is_canonical(p, len)) {
		r->path = req_strndup(c, p, len);
		r->fwd_path = r->path;
		*outlen = len;
		return EAS_REQ_OK;
	}
	r->path = s = req_alloc(c, len + 1);
	s[0] = '\0';
	if ((n = path_decode(c, p, len, s, &err)) == (size_t)-1 ||
	    (n = path_remove_dots(c, s, n, &err)) == (size_t)-1)
		return err;
	*outlen = n;
	for (size_t i = 0; i < n; i++)
		if (!is_path_literal((unsigned char)s[i]))
			extra += 2;
	if (extra == 0) {
		r->fwd_path = r->path;
		return EAS_REQ_OK;
	}
	/* Within the cap a second parse of the forwarded form applies. */
	if (n + extra > EAS_PATH_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG,
		                "path: %zu bytes once %%-encoded for the upstream (at most %d)",
		                n + extra, EAS_PATH_MAX);
	r->fwd_path = req_alloc(c, n + extra + 1);
	{
		static const char digits[] = "0123456789ABCDEF";
		char *o = r->fwd_path;

		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)s[i];

			if (is_path_literal(ch)) {
				*o++ = (char)ch;
			} else {
				*o++ = '%';
				*o++ = digits[ch >> 4];
				*o++ = digits[ch & 0x0f];
			}
		}
		*o = '\0';
	}
	return EAS_REQ_OK;
}

/*
 * True if the canonical path[0..len) is under the passthrough entry: the
 * entry's name, or below it ("/autodiscover/" and "/autodiscover" both take
 * "/autodiscover" and "/autodiscover/x", never "/autodiscoverx").
 */
static bool
path_under(const char *path, size_t len, const char *entry)
{
	size_t elen = strlen(entry);

	while (elen > 0 && entry[elen - 1] == '/')
		elen--;
	if (elen > len || strncasecmp(path, entry, elen) != 0)
		return false;
	return elen == len || path[elen] == '/';
}

/*
 * A passthrough path's query q[0..qlen): forwarded only when made of
 * unreserved bytes, '&', '=' and %-escapes (re-emitted in upper case, %00
 * refused), so that no upstream can split or decode it another way.
 */
static enum eas_req_err
pass_query(struct parse_ctx *c, const char *q, size_t qlen)
{
	static const char digits[] = "0123456789ABCDEF";
	char *out;

	if (qlen == 0)
		return EAS_REQ_OK;
	out = req_alloc(c, qlen + 1);
	c->req->fwd_query = out;
	for (size_t i = 0; i < qlen; i++) {
		unsigned char ch = (unsigned char)q[i];

		if (ch == '%') {
			int hi = i + 2 < qlen ? hexval((unsigned char)q[i + 1]) : -1;
			int lo = i + 2 < qlen ? hexval((unsigned char)q[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return req_fail(c, EAS_REQ_EESCAPE,
				                "query: bad %%-escape at byte %zu", i + 1);
			*out++ = '%';
			*out++ = digits[hi];
			*out++ = digits[lo];
			i += 2;
		} else if (is_unreserved(ch) || ch == '&' || ch == '=') {
			*out++ = (char)ch;
		} else {
			return req_fail(
			    c, EAS_REQ_EQUERY,
			    "passthrough query: '%c' at byte %zu (only letters, digits, "
			    "'-._~&=' and %%-escapes)",
			    ch, i + 1);
		}
	}
	*out = '\0';
	return EAS_REQ_OK;
}

/* True if path[0..len) is the EAS path, without case, one trailing '/' allowed. */
static bool
path_is_eas(const char *path, size_t len, const char *eas)
{
	size_t elen = strlen(eas);

	if (len == elen + 1 && path[elen] == '/' && elen > 0 && eas[elen - 1] != '/')
		len = elen;
	return len == elen && mem_ieq(path, eas, elen);
}

/*
 * The target: "/path" or "/path?query", tlen its strnlen capped at
 * EAS_REQ_TARGET_MAX + 1. Classifies the path, and for the EAS path reads
 * the query in whichever form it comes.
 */
static enum eas_req_err
parse_target(struct parse_ctx *c, const struct eas_request_config *cfg, const char *target,
             size_t tlen)
{
	struct eas_request *r = c->req;
	const char *eas = cfg != NULL && cfg->eas_path != NULL ? cfg->eas_path : EAS_PATH_DEFAULT;
	size_t plen, qlen;
	const char *qmark;
	enum eas_req_err err;

	if (tlen > EAS_REQ_TARGET_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG, "request target longer than %d bytes",
		                EAS_REQ_TARGET_MAX);
	if (tlen == 0 || target[0] != '/')
		return req_fail(c, EAS_REQ_ETARGET, "request target does not start with '/'");
	qmark = memchr(target, '?', tlen);
	plen = qmark != NULL ? (size_t)(qmark - target) : tlen;
	qlen = qmark != NULL ? tlen - plen - 1 : 0;
	if (plen > EAS_PATH_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG, "path longer than %d bytes", EAS_PATH_MAX);
	if (qlen > EAS_REQ_QUERY_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG, "query of %zu bytes (at most %d)", qlen,
		                EAS_REQ_QUERY_MAX);
	{
		size_t bad = graphic_prefix(target, tlen);

		if (bad < tlen)
			return req_fail(c, EAS_REQ_ETARGET,
			                "request target holds a control, space or non-ASCII byte "
			                "(byte %zu)",
			                bad + 1);
	}
	if ((err = canon_path(c, target, plen, &plen)) != EAS_REQ_OK)
		return err;
	if (path_is_eas(r->path, plen, eas)) {
		r->path_kind = EAS_PATH_EAS;
	} else {
		for (size_t i = 0;
		     cfg != NULL && cfg->passthrough != NULL && i < cfg->n_passthrough; i++) {
			const char *p = cfg->passthrough[i];

			if (p != NULL && p[0] != '\0' && path_under(r->path, plen, p)) {
				r->path_kind = EAS_PATH_PASSTHROUGH;
				r->passthrough_index = i;
				return pass_query(c, qmark != NULL ? qmark + 1 : "", qlen);
			}
		}
		return EAS_REQ_OK;
	}
	if (qlen == 0)
		return EAS_REQ_OK;
	c->qlen = qlen;
	{
		/* The query ends at the target's NUL: one pass for all three. */
		size_t bad = strcspn(qmark + 1, "?#;");

		if (bad < qlen)
			return req_fail(c, EAS_REQ_EQUERY,
			                "query: %s'%c' at byte %zu (the upstream could read it "
			                "differently)",
			                qmark[1 + bad] == '?' ? "a second " : "", qmark[1 + bad],
			                bad + 1);
	}
	if (qlen == 0)
		return EAS_REQ_OK;
	if (query_is_base64(qmark + 1, qlen)) {
		r->query_form = EAS_QUERY_BASE64;
		return parse_b64_query(c, qmark + 1, qlen);
	}
	r->query_form = EAS_QUERY_PLAIN;
	return parse_plain_query(c, qmark + 1, qlen);
}

/* The headers abqd reads, in the order they are checked. */
enum known_hdr { KH_AUTH, KH_VERSION, KH_POLICYKEY, KH_MULTIPART, KH_UA, KH_CTYPE, KH_COUNT };

static const struct {
	const char *name;
	size_t len;
	bool single; /* a second one is an error; else the first counts */
} known_hdrs[KH_COUNT] = {
    [KH_AUTH] = {NAME_LEN("Authorization"), true},
    [KH_VERSION] = {NAME_LEN("MS-ASProtocolVersion"), true},
    [KH_POLICYKEY] = {NAME_LEN("X-MS-PolicyKey"), true},
    [KH_MULTIPART] = {NAME_LEN("MS-ASAcceptMultiPart"), true},
    [KH_UA] = {NAME_LEN("User-Agent"), false},
    [KH_CTYPE] = {NAME_LEN("Content-Type"), false},
};

/*
 * Where each known header is: its first occurrence, and how many there are;
 * and the first header the caller left without a name or a value.
 */
struct hdr_index {
	const char *first[KH_COUNT];
	size_t first_len[KH_COUNT]; /* its value's length, or 0: measure it */
	unsigned count[KH_COUNT];
	size_t bad; /* that header's index, or n_headers when there is none */
};

/* The length of known header k's first value: as given, else measured (capped). */
static size_t
first_len(const struct hdr_index *ix, enum known_hdr k)
{
	return ix->first_len[k] != 0 ? ix->first_len[k]
	                             : strnlen(ix->first[k], EAS_REQ_HEADER_MAX + 1);
}

/*
 * The known header a name of len bytes is, or -1: the length picks the one
 * candidate (the two of 20 bytes differ at their sixth), one case-blind
 * compare decides.
 */
static int
known_hdr_of(const char *name, size_t len)
{
	int k;

	switch (len) {
	case sizeof("User-Agent") - 1:
		k = KH_UA;
		break;
	case sizeof("Content-Type") - 1:
		k = KH_CTYPE;
		break;
	case sizeof("Authorization") - 1:
		k = KH_AUTH;
		break;
	case sizeof("X-MS-PolicyKey") - 1:
		k = KH_POLICYKEY;
		break;
	case sizeof("MS-ASProtocolVersion") - 1: /* and MS-ASAcceptMultiPart */
		k = (name[5] | 0x20) == 'p' ? KH_VERSION : KH_MULTIPART;
		break;
	default:
		return -1;
	}
	return known_hdrs[k].len == len && mem_ieq(name, known_hdrs[k].name, len) ? k : -1;
}

/*
 * One pass over the headers: each name looked up once (known_hdr_of). A
 * header without a name or value stops it with nothing indexed (ix->bad:
 * parse_headers refuses the request).
 */
static void
index_headers(const struct eas_header *h, size_t n, struct hdr_index *ix)
{
	memset(ix, 0, sizeof(*ix));
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int k;

		if (h[i].name == NULL || h[i].value == NULL) {
			memset(ix, 0, sizeof(*ix));
			ix->bad = i;
			return;
		}
		len = h[i].name_len != 0 ? h[i].name_len : strlen(h[i].name);
		k = known_hdr_of(h[i].name, len);
		if (k >= 0 && ix->count[k]++ == 0) {
			ix->first[k] = h[i].value;
			ix->first_len[k] = h[i].value_len;
		}
	}
	ix->bad = n;
}

/*
 * A known header's value with surrounding blanks cut (in *len), NULL if
 * absent. A second occurrence of a header that must be single is an error,
 * as are an over-long value and a control character; reported through *err.
 */
static const char *
header_get(struct parse_ctx *c, const struct hdr_index *ix, enum known_hdr k, size_t *len,
           enum eas_req_err *err)
{
	const char *name = known_hdrs[k].name;
	const char *v = ix->first[k];
	size_t vlen;

	*err = EAS_REQ_OK;
	*len = 0;
	if (v == NULL)
		return NULL;
	if (known_hdrs[k].single && ix->count[k] > 1) {
		*err = req_fail(c, EAS_REQ_EDUPHEADER, "header %s given twice", name);
		return NULL;
	}
	vlen = first_len(ix, k);
	if (vlen > EAS_REQ_HEADER_MAX) {
		*err = req_fail(c, EAS_REQ_ETOOLONG, "header %s longer than %d bytes", name,
		                EAS_REQ_HEADER_MAX);
		return NULL;
	}
	/*
	 * Not a repeat of the HTTP server's check: libhttp-parser (2.9.4), which
	 * reads the lines http_lines leaves to it, never checks the first byte
	 * of a value ("User-Agent: \x01x" reaches the gateway as it is).
	 */
	if (!field_value_ok(v, vlen)) {
		*err = req_fail(c, EAS_REQ_EHEADER, "header %s holds a control character", name);
		return NULL;
	}
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	*len = vlen;
	return v;
}

/*
 * Authorization: Basic base64(user ":" password). The decoded buffer and
 * every copy of the password are wiped before they are freed. Other schemes
 * leave no_auth set with the scheme recorded.
 */
static enum eas_req_err
parse_authorization(struct parse_ctx *c, const char *v, size_t len)
{
	struct eas_request *r = c->req;
	size_t slen = 0, pos, blen, room;
	unsigned char stackbuf[256], *buf;
	const char *why, *colon;
	char acct[ACCOUNT_MAX + 1];
	long alen;
	bool in_arena;
	enum eas_req_err err = EAS_REQ_OK;

	while (slen < len && v[slen] != ' ' && v[slen] != '\t')
		slen++;
	if (slen == 0 || slen > 32)
		return req_fail(c, EAS_REQ_EAUTH, "Authorization: no scheme");
	for (size_t i = 0; i < slen; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') &&
		    !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_' && ch != '.')
			return req_fail(c, EAS_REQ_EAUTH, "Authorization: malformed scheme");
	}
	r->auth_scheme = req_strndup(c, v, slen);
	if (!(slen == 5 && mem_ieq(v, "Basic", 5)))
		return EAS_REQ_OK; /* no_auth stays set */
	v += slen, len -= slen;
	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	if (len == 0)
		return req_fail(c, EAS_REQ_EAUTH, "Authorization: Basic without credentials");
	/*
	 * Decoded into the request's arena when it has room: the user name and
	 * the password are then cut where they are (eas_request_free wipes the
	 * password there), not copied out of a buffer wiped at once. On a
	 * failure the decoded bytes are wiped here wherever they are.
	 */
	room = B64_DECODED_MAX(len) + 1;
	in_arena = room <= req_arena_left(c);
	if (in_arena)
		buf = (unsigned char *)req_alloc(c, room);
	else
		buf = room <= sizeof(stackbuf) ? stackbuf : xmalloc(room);
	if (b64_decode(v, len, buf, &blen, &pos, &why) != 0) {
		err = req_fail(c, EAS_REQ_EAUTH,
		               "Authorization: Basic credentials are not base64: %s at character "
		               "%zu",
		               why, pos + 1);
		goto out;
	}
	if (memchr(buf, '\0', blen) != NULL) {
		err = req_fail(c, EAS_REQ_EAUTH, "Authorization: credentials hold a NUL byte");
		goto out;
	}
	colon = memchr(buf, ':', blen);
	if (colon == NULL) {
		err = req_fail(c, EAS_REQ_EAUTH,
		               "Authorization: no ':' between user name and password");
		goto out;
	}
	pos = (size_t)(colon - (const char *)buf);
	if (pos > EAS_REQ_USER_MAX) {
		err = req_fail(c, EAS_REQ_EUSER, "Authorization: user name longer than %d bytes",
		               EAS_REQ_USER_MAX);
		goto out;
	}
	r->auth_password_len = blen - pos - 1;
	if (in_arena) {
		buf[pos] = '\0';  /* the colon */
		buf[blen] = '\0'; /* room has a byte more than was decoded */
		r->auth_user = (char *)buf;
		r->auth_password = (char *)buf + pos + 1;
	} else {
		r->auth_user = req_strndup(c, (const char *)buf, pos);
		r->auth_password = req_strndup(c, colon + 1, r->auth_password_len);
	}
	/* The one spelling of the account (product.md, Identity). */
	alen = account_canonical_into(r->auth_user, c->default_domain, acct);
	if (alen < 0) {
		err = req_fail(c, EAS_REQ_EUSER,
		               "Authorization: the user name is empty, is not one name and at "
		               "most one domain, or holds control characters, '/' or white "
		               "space");
		goto out;
	}
	r->account = req_strndup(c, acct, (size_t)alen);
	r->no_auth = false;
out:
	if (!in_arena || err != EAS_REQ_OK)
		explicit_bzero(buf, room);
	if (!in_arena && buf != stackbuf)
		free(buf);
	return err;
}

/* The headers abqd reads: credentials, policy key, version and the plain ones. */
static enum eas_req_err
parse_headers(struct parse_ctx *c, size_t n, const struct hdr_index *ix)
{
	struct eas_request *r = c->req;
	enum eas_req_err err;
	const char *v;
	size_t len;

	if (n > EAS_REQ_HEADERS_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG, "more than %d headers", EAS_REQ_HEADERS_MAX);
	if (ix->bad < n)
		return req_fail(c, EAS_REQ_EINVAL, "header %zu has no name or value", ix->bad);

	v = header_get(c, ix, KH_AUTH, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL && len > 0 && (err = parse_authorization(c, v, len)) != EAS_REQ_OK)
		return err;

	v = header_get(c, ix, KH_VERSION, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL && r->protocol_version == NULL) {
		char *s = req_strndup(c, v, len);

		if (!version_valid(s))
			return req_fail(c, EAS_REQ_EVERSION,
			                "MS-ASProtocolVersion is not a version like 14.1");
		r->protocol_version = s;
	}

	v = header_get(c, ix, KH_POLICYKEY, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL && len > 0 && r->query_form != EAS_QUERY_BASE64) {
		if (!parse_u32(v, len, &r->policy_key))
			return req_fail(c, EAS_REQ_EPOLICYKEY,
			                "X-MS-PolicyKey is not a number between 0 and 4294967295");
		r->has_policy_key = true;
	}
	if (!r->has_policy_key && c->has_query_policy_key) {
		r->has_policy_key = true;
		r->policy_key = c->query_policy_key;
	}

	v = header_get(c, ix, KH_MULTIPART, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL) {
		if (len == 1 && (*v == 'T' || *v == 't'))
			r->accept_multipart = true;
		else if (!(len == 1 && (*v == 'F' || *v == 'f')))
			return req_fail(c, EAS_REQ_EHEADER, "MS-ASAcceptMultiPart must be T or F");
	}

	v = header_get(c, ix, KH_UA, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL)
		r->user_agent = req_strndup(c, v, len);
	v = header_get(c, ix, KH_CTYPE, &len, &err);
	if (err != EAS_REQ_OK)
		return err;
	if (v != NULL)
		r->content_type = req_strndup(c, v, len);
	return EAS_REQ_OK;
}

/*
 * Checks that need the whole request: identity (product.md: the credentials
 * win over User=) and the parameters a POST to the EAS path cannot lack.
 */
static enum eas_req_err
check_request(struct parse_ctx *c)
{
	struct eas_request *r = c->req;

	c->user_is_auth =
	    r->user != NULL && r->auth_user != NULL && strcmp(r->user, r->auth_user) == 0;
	if (r->account != NULL && r->user != NULL) {
		/* User= spelled as the credentials' name (the usual case) names the same account.
		 */
		r->user_mismatch = !c->user_is_auth &&
		                   !account_is_canonical_of(r->user, r->account, c->default_domain);
	}
	if (r->path_kind != EAS_PATH_EAS || r->method != EAS_METHOD_POST)
		return EAS_REQ_OK;
	if (r->cmd == EAS_CMD_NONE)
		return req_fail(c, EAS_REQ_ENOCMD, "POST without a command (Cmd=)");
	if (r->device_id == NULL)
		return req_fail(c, EAS_REQ_ENODEVICEID, "POST without a DeviceId");
	return EAS_REQ_OK;
}

/* Append name=value to the query being built at *o, the value %-encoded. */
static char *
fwd_add(char *o, bool *first, const char *name, size_t nlen, const char *v)
{
	static const char digits[] = "0123456789ABCDEF";

	if (!*first)
		*o++ = '&';
	*first = false;
	memcpy(o, name, nlen);
	o += nlen;
	*o++ = '=';
	for (; *v != '\0'; v++) {
		unsigned char ch = (unsigned char)*v;

		if (is_unreserved(ch)) {
			*o++ = (char)ch;
		} else {
			*o++ = '%';
			*o++ = digits[ch >> 4];
			*o++ = digits[ch & 0x0f];
		}
	}
	return o;
}

/*
 * The plain query to forward: the known parameters that were given, one of
 * each, in the order of enum qparam (Cmd, User, DeviceId, DeviceType, ...),
 * under their own names, values %-encoded but the unreserved bytes. User is
 * the credentials' user name when there are credentials.
 */
static enum eas_req_err
fwd_plain_build(struct parse_ctx *c)
{
	struct eas_request *r = c->req;
	const char *v[QP_COUNT] = {NULL};
	char key[16];
	size_t size = 1;
	bool first = true;
	char *o;

	if (r->cmd != EAS_CMD_NONE)
		v[QP_CMD] = eas_cmd_name(r->cmd);
	if (r->user != NULL)
		v[QP_USER] = r->auth_user != NULL ? r->auth_user : r->user;
	v[QP_DEVICEID] = r->device_id;
	v[QP_DEVICETYPE] = r->device_type;
	v[QP_ATTACHMENTNAME] = r->attachment_name;
	v[QP_COLLECTIONID] = r->collection_id;
	v[QP_ITEMID] = r->item_id;
	v[QP_LONGID] = r->long_id;
	v[QP_OCCURRENCE] = r->occurrence;
	if (c->seen[QP_SAVEINSENT])
		v[QP_SAVEINSENT] = r->save_in_sent ? "T" : "F";
	if (c->has_query_policy_key) {
		snprintf(key, sizeof(key), "%u", c->query_policy_key);
		v[QP_POLICYKEY] = key;
	}
	if (c->seen[QP_ACCEPTMULTIPART])
		v[QP_ACCEPTMULTIPART] = c->q_multipart ? "T" : "F";
	/*
	 * Room without measuring each value: the values from the query are
	 * decoded from at most qlen bytes, each byte escaped into at most
	 * three; the user name may come from the credentials; the names, the
	 * command's name and the policy key fit in the rest.
	 */
	for (int qp = 0; qp < QP_COUNT; qp++)
		if (v[qp] != NULL)
			size += qparams[qp].len + 2;
	if (size == 1)
		return EAS_REQ_OK;
	size += 3 * c->qlen + 32 + (v[QP_USER] != NULL ? 3 * strlen(v[QP_USER]) : 0);
	o = r->fwd_query = req_alloc(c, size);
	for (int qp = 0; qp < QP_COUNT; qp++)
		if (v[qp] != NULL)
			o = fwd_add(o, &first, qparams[qp].name, qparams[qp].len, v[qp]);
	*o = '\0';
	/* Escaping can triple a value: keep what is forwarded within the cap. */
	if ((size_t)(o - r->fwd_query) > EAS_REQ_QUERY_MAX)
		return req_fail(c, EAS_REQ_ETOOLONG,
		                "query: %zu bytes once %%-encoded for the upstream (at most %d)",
		                (size_t)(o - r->fwd_query), EAS_REQ_QUERY_MAX);
	return EAS_REQ_OK;
}

/*
 * The plain query to forward. The usual phone's query is already in that
 * form (parse_ctx, q_canon): then it is copied, not rebuilt, unless its User=
 * is not the credentials' user name as sent. Debug and fuzzing builds build
 * it too and abort when the two differ.
 */
static enum eas_req_err
fwd_plain(struct parse_ctx *c)
{
	struct eas_request *r = c->req;

	if (!c->q_canon || (r->user != NULL && r->auth_user != NULL && !c->user_is_auth))
		return fwd_plain_build(c);
#if !defined(NDEBUG) || defined(ABQ_FUZZ_BUILD)
	{
		enum eas_req_err err = fwd_plain_build(c);

		if (err != EAS_REQ_OK || r->fwd_query == NULL || strlen(r->fwd_query) != c->qlen ||
		    memcmp(r->fwd_query, c->qraw, c->qlen) != 0)
			abort(); /* the copied query would not be the canonical one */
		req_str_free(r, r->fwd_query);
	}
#endif
	r->fwd_query = req_strndup(c, c->qraw, c->qlen);
	return EAS_REQ_OK;
}

/* Append one tagged base64 parameter (tag, length byte, value) at b + *n. */
static void
fwd_b64_tag(unsigned char *b, size_t *n, unsigned tag, const char *v)
{
	size_t len;

	if (v == NULL)
		return;
	len = strlen(v);
	b[(*n)++] = (unsigned char)tag;
	b[(*n)++] = (unsigned char)len;
	memcpy(b + *n, v, len);
	*n += len;
}

/*
 * The base64 query to forward: the decoded fields in the MS-ASHTTP layout
 * (version, command code, locale, DeviceId, policy key, DeviceType), then
 * the known tags in tag order, unknown tags left out; User is the
 * credentials' user name when there are credentials. Standard base64 with
 * its padding, no %-escape.
 */
static enum eas_req_err
fwd_b64(struct parse_ctx *c)
{
	struct eas_request *r = c->req;
	/* Fixed fields, 255-byte fields and tags, and a user name of 256. */
	unsigned char b[8 + B64_DEVICE_ID_MAX + 8 * (2 + 255) + EAS_REQ_USER_MAX];
	size_t n = 0, len;
	const char *user = r->user != NULL && r->auth_user != NULL ? r->auth_user : r->user;

	if (user != NULL && strlen(user) > 255)
		return req_fail(c, EAS_REQ_EUSER,
		                "base64 query: the credentials' user name is longer than 255 "
		                "bytes");
	b[n++] = c->b64_version;
	b[n++] = (unsigned char)eas_cmd_code(r->cmd);
	b[n++] = (unsigned char)(r->locale & 0xff);
	b[n++] = (unsigned char)(r->locale >> 8);
	len = strlen(r->device_id) / 2;
	b[n++] = (unsigned char)len;
	for (size_t i = 0; i < len; i++)
		b[n++] = (unsigned char)(hexval((unsigned char)r->device_id[2 * i]) << 4 |
		                         hexval((unsigned char)r->device_id[2 * i + 1]));
	if (c->has_query_policy_key) {
		b[n++] = 4;
		for (int k = 0; k < 4; k++)
			b[n++] = (unsigned char)(c->query_policy_key >> (8 * k));
	} else {
		b[n++] = 0;
	}
	len = r->device_type != NULL ? strlen(r->device_type) : 0;
	b[n++] = (unsigned char)len;
	memcpy(b + n, r->device_type != NULL ? r->device_type : "", len);
	n += len;
	fwd_b64_tag(b, &n, TAG_ATTACHMENTNAME, r->attachment_name);
	fwd_b64_tag(b, &n, TAG_COLLECTIONID, r->collection_id);
	fwd_b64_tag(b, &n, TAG_ITEMID, r->item_id);
	fwd_b64_tag(b, &n, TAG_LONGID, r->long_id);
	fwd_b64_tag(b, &n, TAG_OCCURRENCE, r->occurrence);
	if (c->b64_options) {
		b[n++] = TAG_OPTIONS;
		b[n++] = 1;
		b[n++] = (unsigned char)((r->save_in_sent ? OPT_SAVEINSENT : 0) |
		                         (c->q_multipart ? OPT_ACCEPTMULTIPART : 0));
	}
	fwd_b64_tag(b, &n, TAG_USER, user);

	r->fwd_query = req_alloc(c, B64_ENCODED_LEN(n) + 1);
	b64_encode(b, n, r->fwd_query);
	return EAS_REQ_OK;
}

/*
 * The query to forward for the EAS path, built from what was decided on (the
 * passthrough query is set by parse_target). Runs last: the user name of the
 * credentials replaces User=, and it is known only after the headers.
 */
static enum eas_req_err
build_fwd_query(struct parse_ctx *c)
{
	struct eas_request *r = c->req;

	if (r->path_kind != EAS_PATH_EAS)
		return EAS_REQ_OK;
	/*
	 * What is forwarded as User= holds no control byte, as a User= may not
	 * (so a credentials' name equal to the User= sent has none either).
	 */
	if (r->user != NULL && r->auth_user != NULL && !c->user_is_auth &&
	    !no_ctl(r->auth_user, strlen(r->auth_user)))
		return req_fail(c, EAS_REQ_EUSER,
		                "the credentials' user name holds a control character");
	if (r->query_form == EAS_QUERY_PLAIN)
		return fwd_plain(c);
	if (r->query_form == EAS_QUERY_BASE64)
		return fwd_b64(c);
	return EAS_REQ_OK;
}

/*
 * The arena for a request's strings: what its target and the headers read
 * can give at most (decoded values, the hex DeviceId, the credentials and
 * the account), within bounds. A held request keeps its block for as long
 * as it is held, so it is sized, not fixed; what does not fit gets a malloc.
 */
static size_t
req_arena_size(size_t tlen, const struct hdr_index *ix)
{
	size_t est = 64 + 2 * tlen;

	for (int k = 0; k < KH_COUNT; k++)
		if (ix->first[k] != NULL)
			est += (k == KH_AUTH ? 3 : 1) * first_len(ix, (enum known_hdr)k);
	return est < 256 ? 256 : est > 4096 ? 4096 : est;
}

/* Understand one request; see request.h. */
enum eas_req_err
eas_request_parse(const struct eas_request_config *cfg, const char *method, const char *target,
                  const struct eas_header *headers, size_t n_headers, struct eas_request **req_r,
                  char *errbuf, size_t errlen)
{
	struct parse_ctx c = {.errbuf = errbuf, .errlen = errlen};
	struct hdr_index ix;
	size_t tlen;
	enum eas_req_err err;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (req_r == NULL)
		return req_fail(&c, EAS_REQ_EINVAL, "no place for the request");
	*req_r = NULL;
	if (method == NULL || target == NULL || (headers == NULL && n_headers > 0))
		return req_fail(&c, EAS_REQ_EINVAL, "method, target or headers missing");
	/* The headers are looked at once, here; parse_headers refuses bad ones. */
	memset(&ix, 0, sizeof(ix));
	if (n_headers <= EAS_REQ_HEADERS_MAX)
		index_headers(headers, n_headers, &ix);
	/* Measured once, for the arena and parse_target (which refuses it over the cap). */
	tlen = strnlen(target, EAS_REQ_TARGET_MAX + 1);
	{
		size_t cap = req_arena_size(tlen, &ix);
		struct req_block *b;
		struct blk_cache *bc = cfg != NULL ? cfg->blocks : NULL;

		if (bc != NULL && sizeof(*b) + cap > bc->size)
			bc = NULL;
		/* The arena is not zeroed; a cached block's arena is all the rest of it. */
		b = bc != NULL ? blk_alloc(bc) : xmalloc(sizeof(*b) + cap);
		/* All but extra[], which is read only below n_extra (request.h). */
		memset(&b->req, 0, offsetof(struct eas_request, extra));
		b->used = 0;
		b->heap = false;
		b->cap = bc != NULL ? bc->size - sizeof(*b) : cap;
		b->cache = bc;
		c.req = &b->req;
	}
	c.req->no_auth = true;
	c.default_domain = cfg != NULL ? cfg->default_domain : NULL;
	if ((err = parse_method(&c, method)) != EAS_REQ_OK ||
	    (err = parse_target(&c, cfg, target, tlen)) != EAS_REQ_OK ||
	    (err = parse_headers(&c, n_headers, &ix)) != EAS_REQ_OK ||
	    (err = check_request(&c)) != EAS_REQ_OK || (err = build_fwd_query(&c)) != EAS_REQ_OK) {
		eas_request_free(&c.req);
		return err;
	}
	*req_r = c.req;
	return EAS_REQ_OK;
}

/* Free a request: wipe the password first, then every string. */
void
eas_request_free(struct eas_request **reqp)
{
	struct eas_request *r;
	struct req_block *b;

	if (reqp == NULL || *reqp == NULL)
		return;
	r = *reqp;
	b = (struct req_block *)r;
	if (r->auth_password != NULL)
		explicit_bzero(r->auth_password, r->auth_password_len);
	if (!b->heap)
		goto out; /* every string is in the arena (req_alloc) */
	req_str_free(r, r->auth_password);
	req_str_free(r, r->method_name);
	if (r->fwd_path != r->path)
		req_str_free(r, r->fwd_path);
	req_str_free(r, r->path);
	req_str_free(r, r->fwd_query);
	req_str_free(r, r->user);
	req_str_free(r, r->device_id);
	req_str_free(r, r->device_type);
	req_str_free(r, r->protocol_version);
	req_str_free(r, r->attachment_name);
	req_str_free(r, r->collection_id);
	req_str_free(r, r->item_id);
	req_str_free(r, r->long_id);
	req_str_free(r, r->occurrence);
	req_str_free(r, r->user_agent);
	req_str_free(r, r->content_type);
	req_str_free(r, r->auth_scheme);
	req_str_free(r, r->auth_user);
	req_str_free(r, r->account);
	for (size_t i = 0; i < r->n_extra; i++) {
		req_str_free(r, r->extra[i].name);
		req_str_free(r, r->extra[i].value);
	}
out:
	if (b->cache != NULL)
		blk_free(b->cache, r);
	else
		free(r);
	*reqp = NULL;
}

/* Append "key=value " to buf at *off, truncating quietly when full. */
static void
describe_add(char *buf, size_t len, size_t *off, const char *key, const char *value)
{
	int n;

	if (value == NULL || *off >= len)
		return;
	n = snprintf(buf + *off, len - *off, " %s=%.128s", key, value);
	if (n > 0)
		*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

/*
 * A one-line summary for debug logs. The password is never read here; the
 * credentials show as "auth=basic:<user>" only.
 */
char *
eas_request_describe(const struct eas_request *r, char *buf, size_t len)
{
	static const char *const kinds[] = {"other", "eas", "passthrough"};
	static const char *const forms[] = {"none", "plain", "base64"};
	size_t off = 0;
	char num[32];
	int n;

	if (buf == NULL || len == 0)
		return buf;
	buf[0] = '\0';
	if (r == NULL)
		return buf;
	n = snprintf(buf, len, "%s %s query=%s", r->method_name ? r->method_name : "-",
	             kinds[r->path_kind], forms[r->query_form]);
	off = n > 0 ? ((size_t)n < len ? (size_t)n : len - 1) : 0;
	if (r->cmd != EAS_CMD_NONE)
		describe_add(buf, len, &off, "cmd", eas_cmd_name(r->cmd));
	describe_add(buf, len, &off, "account", r->account);
	describe_add(buf, len, &off, "user", r->user);
	describe_add(buf, len, &off, "dev", r->device_id);
	describe_add(buf, len, &off, "type", r->device_type);
	describe_add(buf, len, &off, "ver", r->protocol_version);
	if (r->has_policy_key) {
		snprintf(num, sizeof(num), "%u", r->policy_key);
		describe_add(buf, len, &off, "policykey", num);
	}
	if (r->auth_user != NULL) {
		char *a = xasprintf("basic:%s", r->auth_user);

		describe_add(buf, len, &off, "auth", a);
		free(a);
	} else if (r->auth_scheme != NULL) {
		describe_add(buf, len, &off, "auth", r->auth_scheme);
	} else {
		describe_add(buf, len, &off, "auth", "none");
	}
	if (r->user_mismatch)
		describe_add(buf, len, &off, "user_mismatch", "yes");
	return buf;
}

/* ---- the forwarded query for another command or policy key ---- */

/* The plain fwd_query's pair p[0..len) named name (as abqd writes it). */
static bool
pair_named(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && p[n] == '=' && memcmp(p, name, n) == 0;
}

/*
 * eas_request_fwd_query_for for a plain query: the canonical pairs of
 * fwd_query copied in their order, Cmd and PolicyKey replaced; for another
 * command only Cmd, User, DeviceId, DeviceType and PolicyKey are kept (the
 * others belong to the phone's command).
 */
static char *
fwd_plain_for(const struct eas_request *r, enum eas_cmd cmd, bool set_key, uint32_t key)
{
	const char *q = r->fwd_query;
	size_t qlen = strlen(q);
	char *out = xmalloc(qlen + 64), *o = out;

	for (const char *p = q; p < q + qlen;) {
		const char *amp = strchr(p, '&');
		size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		char v[48];
		const char *w = NULL;
		size_t wlen = len;

		if (pair_named(p, len, "PolicyKey") && set_key) {
			snprintf(v, sizeof(v), "PolicyKey=%u", key);
			w = v;
			wlen = strlen(v);
		} else if (pair_named(p, len, "Cmd") && cmd != EAS_CMD_NONE) {
			snprintf(v, sizeof(v), "Cmd=%s", eas_cmd_name(cmd));
			w = v;
			wlen = strlen(v);
		} else if (cmd == EAS_CMD_NONE || pair_named(p, len, "User") ||
		           pair_named(p, len, "DeviceId") || pair_named(p, len, "DeviceType") ||
		           pair_named(p, len, "PolicyKey")) {
			w = p;
		}
		if (w != NULL) {
			if (o != out)
				*o++ = '&';
			memcpy(o, w, wlen);
			o += wlen;
		}
		p += len + (amp != NULL);
	}
	*o = '\0';
	return out;
}

/*
 * eas_request_fwd_query_for for a base64 query: fwd_query (abqd's own
 * encoding, so well-formed; lengths are checked all the same) decoded, the
 * command code and the policy key field replaced, for another command only
 * the User tag kept, encoded again.
 */
static char *
fwd_b64_for(const struct eas_request *r, enum eas_cmd cmd, bool set_key, uint32_t key)
{
	size_t qlen = strlen(r->fwd_query), n = 0, pos = 0, len, ep;
	unsigned char *in = xmalloc(B64_DECODED_MAX(qlen) + 1),
	              *b = xmalloc(B64_DECODED_MAX(qlen) + 8);
	const char *why;
	char *out = NULL;

	if (b64_decode(r->fwd_query, qlen, in, &len, &ep, &why) != 0 || len < 5)
		goto out;
	b[n++] = in[0];
	b[n++] = cmd != EAS_CMD_NONE ? (unsigned char)eas_cmd_code(cmd) : in[1];
	b[n++] = in[2];
	b[n++] = in[3];
	pos = 4;
	/* DeviceId, policy key, DeviceType: each a length byte and its bytes. */
	for (int field = 0; field < 3; field++) {
		if (pos >= len || pos + 1 + in[pos] > len)
			goto out;
		size_t flen = in[pos];
		if (field == 1 && set_key) {
			b[n++] = 4;
			for (int k = 0; k < 4; k++)
				b[n++] = (unsigned char)(key >> (8 * k));
		} else {
			memcpy(b + n, in + pos, 1 + flen);
			n += 1 + flen;
		}
		pos += 1 + flen;
	}
	while (pos < len) {
		if (pos + 2 > len || pos + 2 + in[pos + 1] > len)
			goto out;
		size_t tlen = 2 + (size_t)in[pos + 1];
		if (cmd == EAS_CMD_NONE || in[pos] == TAG_USER) {
			memcpy(b + n, in + pos, tlen);
			n += tlen;
		}
		pos += tlen;
	}
	out = xmalloc(B64_ENCODED_LEN(n) + 1);
	b64_encode(b, n, out);
out:
	free(in);
	free(b);
	return out;
}

/* The query to forward with another command or policy key; see request.h. */
char *
eas_request_fwd_query_for(const struct eas_request *r, enum eas_cmd cmd, bool set_key, uint32_t key)
{
	if (r == NULL || r->path_kind != EAS_PATH_EAS || r->fwd_query == NULL)
		return NULL;
	if (cmd != EAS_CMD_NONE && r->query_form == EAS_QUERY_BASE64 && eas_cmd_code(cmd) < 0)
		return NULL;
	if (r->query_form == EAS_QUERY_BASE64)
		return fwd_b64_for(r, cmd, set_key, key);
	return fwd_plain_for(r, cmd, set_key, key);
}
