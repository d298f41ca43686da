/*
 * request.h: understanding an ActiveSync request (MS-ASHTTP) without I/O.
 *
 * The HTTP front parses the request line and the headers; this module turns
 * the method, the raw request target (path + query) and the headers into a
 * struct eas_request: which path was asked for, the command, the device, the
 * protocol version, the policy key, the command parameters and the identity
 * (product.md, "Identity").
 *
 * Decisions (docs: eas-protocol.md, MS-ASHTTP 2.2.1.1.1):
 * - Plain query: '&'-separated name=value pairs, names compared without case,
 *   values %-decoded strictly (a '%' not followed by two hex digits is an
 *   error, %00 too), and '+' decodes to a space as in HTML form encoding (what
 *   PHP's $_GET, and so Z-Push and Horde, do). Empty pairs ("a=1&&b=2") are
 *   skipped. A parameter given twice is an error; unknown parameters are kept
 *   in req->extra (at most EAS_REQ_EXTRA_MAX) and otherwise ignored.
 * - Base64 query: chosen when the query has no '&' and no '=' except trailing
 *   padding. It is %-decoded first (a client may escape '+', '/', '='), then
 *   base64-decoded strictly (b64.h), then read field by field, every length
 *   checked against the bytes left. The DeviceId is always rendered as
 *   upper-case hex, even when its bytes are printable: Z-Push
 *   (Request::decodeBase64URI, unpack "H*") and Horde
 *   (Horde_ActiveSync_Utils::decodeBase64, unpack "H*", whose own test expects
 *   "4e696e65..." for the printable "Nine2EC7EC0BB54D") both always render
 *   hex; product.md asks for upper case, and DeviceIds compare without case.
 *   Command codes 5-8 are not defined by MS-ASHTTP 2.2.1.1.1.1.2 and Find has
 *   no code at all: those commands exist only in the plain query.
 *   Parameter tags other than 0,1,3,4,6,7,8 are kept in req->extra as "#<tag>"
 *   with the value in hex.
 * - Precedence: in a base64 query its own protocol version and policy key win
 *   over the MS-ASProtocolVersion and X-MS-PolicyKey headers (MS-ASHTTP: the
 *   fields replace the headers); with a plain query the headers win over the
 *   non-standard PolicyKey= parameter.
 * - Identity: the account comes from Authorization: Basic (account_canonical:
 *   lower-cased, "DOMAIN\" removed, "@default_domain" added to a bare name).
 *   A User= (or base64 User tag) that does not canonicalise to the same
 *   account sets user_mismatch; the credentials win.
 *   No Authorization, or a scheme other than Basic, sets no_auth and leaves
 *   account NULL. A Basic header that cannot be decoded is an error.
 * - A POST to the EAS path needs Cmd and DeviceId; OPTIONS needs neither.
 *   The query is read only for the EAS path; credentials on every path.
 * - One canonical path, decided once: the path is %-decoded strictly (a bad
 *   escape, %00, an encoded '/', '\\' or '%' (double encoding), a decoded
 *   byte outside visible ASCII are refused), a '\\' or ';' anywhere is
 *   refused, runs of '/' are collapsed and dot-segments removed (RFC 3986
 *   5.2.4); a ".." above the root is refused (EAS_REQ_EPATH). Only then is it
 *   classified, without case: the EAS path exactly (one trailing '/'
 *   allowed), a passthrough entry ("/autodiscover/" or "/autodiscover") as
 *   whole segments: "/autodiscover" and "/autodiscover/..." match,
 *   "/autodiscoverX" does not. What is forwarded is built from the canonical
 *   form (fwd_path, fwd_query), never from the raw target.
 * - A query the upstream could read otherwise is refused (EAS_REQ_EQUERY): a
 *   second '?', a '#' or a ';' anywhere in it; on the EAS path a parameter
 *   name that is not letters and digits given literally (no '%', no '+':
 *   PHP turns " DeviceId" or "Device.Id" into other names); on a passthrough
 *   path anything but unreserved bytes, '&', '=' and %-escapes.
 * - Caps: request target EAS_REQ_TARGET_MAX, query EAS_REQ_QUERY_MAX, every
 *   header value EAS_REQ_HEADER_MAX, EAS_REQ_HEADERS_MAX headers, at most
 *   EAS_REQ_PARAMS_MAX query parameters, each value EAS_REQ_VALUE_MAX.
 * - The Basic password is kept (the auth verifier needs it) in a buffer that
 *   eas_request_free wipes with explicit_bzero; eas_request_describe never
 *   prints it.
 */
#ifndef ABQ_EAS_REQUEST_H
#define ABQ_EAS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EAS_REQ_TARGET_MAX  (8 * 1024 + 1024) /* path + '?' + query */
#define EAS_REQ_QUERY_MAX   (8 * 1024)
#define EAS_REQ_HEADER_MAX  (8 * 1024)
#define EAS_REQ_HEADERS_MAX 128
#define EAS_REQ_PARAMS_MAX  64
#define EAS_REQ_EXTRA_MAX   32
#define EAS_REQ_VALUE_MAX   1024
#define EAS_REQ_USER_MAX    256
#define EAS_REQ_DEVTYPE_MAX 64
#define EAS_REQ_METHOD_MAX  16
/* Room for any detail message eas_request_parse writes. */
#define EAS_REQ_ERRBUF 192

/* Error codes: numbered, never renumbered; new ones go at the end. */
enum eas_req_err {
	EAS_REQ_OK = 0,
	EAS_REQ_EMETHOD = 1,      /* missing or malformed method */
	EAS_REQ_ETARGET = 2,      /* request target not "/path[?query]" */
	EAS_REQ_ETOOLONG = 3,     /* an input over its cap */
	EAS_REQ_EESCAPE = 4,      /* bad %-escape in the query */
	EAS_REQ_EDUPPARAM = 5,    /* a query parameter given twice */
	EAS_REQ_EPARAM = 6,       /* a parameter with an invalid value */
	EAS_REQ_EBASE64 = 7,      /* the base64 query is not base64 */
	EAS_REQ_ELAYOUT = 8,      /* base64 query fields truncated or overlong */
	EAS_REQ_EUNKNOWNCMD = 9,  /* Cmd names no MS-ASCMD command */
	EAS_REQ_ENOCMD = 10,      /* POST without Cmd */
	EAS_REQ_ENODEVICEID = 11, /* POST without DeviceId */
	EAS_REQ_EDEVICEID = 12,   /* DeviceId fails device_id_valid */
	EAS_REQ_EVERSION = 13,    /* unusable protocol version */
	EAS_REQ_EPOLICYKEY = 14,  /* policy key not a 32-bit number */
	EAS_REQ_EAUTH = 15,       /* Authorization: Basic that cannot be decoded */
	EAS_REQ_EUSER = 16,       /* the credentials' user name is unusable */
	EAS_REQ_EDUPHEADER = 17,  /* a header that must be single given twice */
	EAS_REQ_EHEADER = 18,     /* a header with control characters */
	EAS_REQ_EINVAL = 19,      /* the caller passed nonsense (NULL pointers) */
	EAS_REQ_EPATH = 20,       /* the path cannot be normalised */
	EAS_REQ_EQUERY = 21,      /* a query the upstream could read differently */
};

/* A static one-line description of an error code. */
const char *eas_request_strerror(enum eas_req_err err);

enum eas_method {
	EAS_METHOD_OTHER = 0,
	EAS_METHOD_GET,
	EAS_METHOD_HEAD,
	EAS_METHOD_POST,
	EAS_METHOD_OPTIONS,
};

enum eas_path_kind {
	EAS_PATH_OTHER = 0,   /* neither: the daemon answers 404 */
	EAS_PATH_EAS,         /* the ActiveSync endpoint */
	EAS_PATH_PASSTHROUGH, /* a configured prefix relayed as is */
};

enum eas_query_form {
	EAS_QUERY_NONE = 0,
	EAS_QUERY_PLAIN,
	EAS_QUERY_BASE64,
};

/* Every command of MS-ASCMD (and the four 2.5-only collection commands). */
enum eas_cmd {
	EAS_CMD_NONE = 0,
	EAS_CMD_SYNC,
	EAS_CMD_SENDMAIL,
	EAS_CMD_SMARTFORWARD,
	EAS_CMD_SMARTREPLY,
	EAS_CMD_GETATTACHMENT,
	EAS_CMD_GETHIERARCHY,
	EAS_CMD_CREATECOLLECTION,
	EAS_CMD_DELETECOLLECTION,
	EAS_CMD_MOVECOLLECTION,
	EAS_CMD_FOLDERSYNC,
	EAS_CMD_FOLDERCREATE,
	EAS_CMD_FOLDERDELETE,
	EAS_CMD_FOLDERUPDATE,
	EAS_CMD_MOVEITEMS,
	EAS_CMD_GETITEMESTIMATE,
	EAS_CMD_MEETINGRESPONSE,
	EAS_CMD_SEARCH,
	EAS_CMD_SETTINGS,
	EAS_CMD_PING,
	EAS_CMD_ITEMOPERATIONS,
	EAS_CMD_PROVISION,
	EAS_CMD_RESOLVERECIPIENTS,
	EAS_CMD_VALIDATECERT,
	EAS_CMD_FIND,
	EAS_CMD_COUNT /* not a command */
};

/* The MS-ASCMD name of a command ("FolderSync"); "" for EAS_CMD_NONE. */
const char *eas_cmd_name(enum eas_cmd cmd);
/* The command a name stands for (compared without case), or EAS_CMD_NONE. */
enum eas_cmd eas_cmd_from_name(const char *name);
/* The base64 command code of a command (0-22), or -1 when it has none. */
int eas_cmd_code(enum eas_cmd cmd);
/* The command a base64 command code stands for, or EAS_CMD_NONE. */
enum eas_cmd eas_cmd_from_code(int code);

/*
 * A header as the HTTP parser hands it over: NUL-terminated name and value,
 * with their lengths when the caller knows them (0: measured here).
 */
struct eas_header {
	const char *name;
	const char *value;
	size_t name_len;
	size_t value_len;
};

/* Where ActiveSync lives and which prefixes are passed through untouched. */
struct blk_cache;

struct eas_request_config {
	const char *eas_path;           /* NULL: "/Microsoft-Server-ActiveSync" */
	const char *const *passthrough; /* e.g. "/autodiscover/" */
	size_t n_passthrough;
	/*
	 * May be NULL. Requests that fit take a block of blocks->size bytes
	 * (at least 1024) from here and give it back when freed, so the cache
	 * must outlive them; blk_cache_clear empties it.
	 */
	struct blk_cache *blocks;
	/*
	 * [eas] default_domain, or NULL: a bare user name's account is
	 * name@default_domain (util.h account_canonical). Not copied.
	 */
	const char *default_domain;
};

/* A query parameter abqd does not know, kept for the logs. */
struct eas_param {
	char *name;
	char *value;
};

struct eas_request {
	enum eas_method method;
	char *method_name; /* as sent ("POST") */
	enum eas_path_kind path_kind;
	size_t passthrough_index; /* which prefix, for EAS_PATH_PASSTHROUGH */
	/*
	 * The canonical path, decoded: %-escapes decoded, runs of '/' collapsed,
	 * "." and ".." segments removed (RFC 3986 5.2.4). What was classified.
	 */
	char *path;
	/*
	 * The canonical path for the wire: every byte but the unreserved ones,
	 * the sub-delims, ':', '@' and '/' %-encoded in upper-case hex. What the
	 * gateway forwards for a passthrough path. Re-parsed, it gives path again.
	 */
	char *fwd_path;
	/*
	 * The query to forward, without its '?', or NULL for none. On the EAS
	 * path it is rebuilt from what was decided on: a plain query from the
	 * known parameters only, one of each (Cmd, User, DeviceId, DeviceType,
	 * then the others in a fixed order), values %-encoded but the unreserved
	 * bytes; a base64 query re-serialised in the MS-ASHTTP layout without
	 * unknown tags and encoded as padded standard base64. In both, User is
	 * the credentials' user name (auth_user) when both are present. On a
	 * passthrough path, the query as sent with its %-escapes in upper case
	 * (only unreserved bytes, '&', '=' and escapes are accepted there).
	 * NULL on other paths.
	 */
	char *fwd_query;
	enum eas_query_form query_form;

	enum eas_cmd cmd;
	char *user;             /* User= / base64 User as sent, or NULL */
	char *device_id;        /* validated; hex for a base64 query */
	char *device_type;      /* or NULL */
	char *protocol_version; /* "14.1", or NULL */
	bool has_policy_key;
	uint32_t policy_key;
	bool has_locale; /* base64 queries only */
	uint16_t locale;

	char *attachment_name;
	char *collection_id;
	char *item_id;
	char *long_id;
	char *occurrence;
	bool save_in_sent;
	bool accept_multipart; /* MS-ASAcceptMultiPart: T or the Options bit */

	char *user_agent;
	char *content_type;

	/* Identity. */
	bool no_auth;        /* no usable Basic credentials: answer 401 */
	char *auth_scheme;   /* the scheme as sent ("Basic", "Bearer"), or NULL */
	char *auth_user;     /* user name from the credentials, as sent */
	char *auth_password; /* wiped by eas_request_free; never printed */
	size_t auth_password_len;
	char *account;      /* account_canonical(auth_user), or NULL if no_auth */
	bool user_mismatch; /* User= names someone else; the credentials won */

	size_t n_extra;
	size_t n_extra_dropped; /* unknown parameters beyond EAS_REQ_EXTRA_MAX */
	/*
	 * Only the first n_extra entries are set. Last in the struct: the
	 * parser zeroes every field before it and leaves the entries it does
	 * not use as they are (two thirds of the struct, on every request).
	 */
	struct eas_param extra[EAS_REQ_EXTRA_MAX];
};

/*
 * Understand one request. method is the request-line method, target the raw
 * request target ("/Microsoft-Server-ActiveSync?Cmd=Sync&..."), headers the
 * n_headers header lines. On success returns EAS_REQ_OK with *req_r set (free
 * it with eas_request_free). On failure returns the error, leaves *req_r NULL
 * and writes a precise message into errbuf (errlen bytes; EAS_REQ_ERRBUF is
 * enough), e.g. "base64 query: DeviceId length 40 runs past the end (byte 6
 * of 22)". Never reads past a NUL, never trusts a length.
 */
enum eas_req_err eas_request_parse(const struct eas_request_config *cfg, const char *method,
                                   const char *target, const struct eas_header *headers,
                                   size_t n_headers, struct eas_request **req_r, char *errbuf,
                                   size_t errlen);

/*
 * The query to forward (fwd_query, in the phone's form) with the command cmd
 * in place of the phone's (EAS_CMD_NONE: the phone's command and all its
 * parameters) and, when set_key, the policy key key in place of the
 * phone's: a base64 query gets its policy key field set (4 bytes), a plain
 * query its PolicyKey= parameter replaced when it has one (the
 * X-MS-PolicyKey header carries the key otherwise). For another command
 * only the identity is kept: Cmd, User, DeviceId, DeviceType, PolicyKey, in
 * the base64 form the fixed fields and the User tag. What the gateway sends
 * the upstream when it provisions with it on the device's behalf and when
 * it puts the upstream's policy key on a forwarded request. Returns a
 * malloc'd string, or NULL when r has no query on the EAS path (or, base64,
 * cmd has no command code).
 */
char *eas_request_fwd_query_for(const struct eas_request *r, enum eas_cmd cmd, bool set_key,
                                uint32_t key);

/* Wipe the password, free everything, set *reqp to NULL. NULL is fine. */
void eas_request_free(struct eas_request **reqp);

/*
 * A one-line summary for debug logs: "POST eas cmd=Sync user=... dev=...".
 * Credentials appear only as "auth=basic:<user>"; the password never does.
 * Returns buf.
 */
char *eas_request_describe(const struct eas_request *req, char *buf, size_t len);

/*
 * Strict %-decoding of s[0..len) into out (len + 1 bytes), NUL-terminated, as
 * the request parser reads a query: a '%' must be followed by two hex digits,
 * and %00 is refused (it would cut the C string). With plus_space, '+'
 * becomes ' ' (form encoding). Returns out with *outlen set, or NULL with
 * *errpos at the offending '%'. The one reader of %-escapes, for every part
 * of abqd that reads a query (Autodiscover's JSON form too).
 */
char *eas_pct_decode(const char *s, size_t len, bool plus_space, char *out, size_t *outlen,
                     size_t *errpos);

#endif
