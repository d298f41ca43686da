/*
 * imap_parse.h: an incremental parser of IMAP server responses (RFC 9051,
 * RFC 3501 and the extensions abqd uses: CONDSTORE/QRESYNC, ESEARCH,
 * UIDPLUS, SPECIAL-USE, BINARY, LITERAL+).
 *
 * Why our own: abqd's event loop never waits, and no library Debian keeps
 * fits one. libetpan is blocking (and its -dev package pulls libcurl's
 * GnuTLS flavour, which replaces the OpenSSL one abqd builds against);
 * libcurl's IMAP has no IDLE and no general FETCH parsing. The grammar abqd
 * reads is small: this file.
 *
 * How it is fed. imap_parser_feed takes the server's bytes in any chunks
 * (one byte at a time gives the same events as the whole stream at once) and
 * calls on_response once per complete response: a continuation request
 * ("+ ..."), a tagged status ("a1 OK [code] text"), an untagged status
 * ("* OK/NO/BAD/BYE/PREAUTH [code] text") or untagged data ("* 3 EXISTS",
 * "* LIST ...", "* 7 FETCH (...)"). Untagged data is kept generically, as a
 * small tree of nodes (atom, number, string, NIL, list); typed helpers below
 * read what abqd needs from it. The tree and every string in it live until
 * on_response returns: copy what must outlive it.
 *
 * Large literals. The literal value of a FETCH item BODY[section]<origin> or
 * BINARY[section]<origin> is never held: when on_chunk is set, its bytes go
 * to on_chunk as they arrive (in pieces of any size), and the item's node in
 * the FETCH response is a string marked streamed (length only, no bytes).
 * Without on_chunk such a literal is held like any other, under the caps.
 *
 * Caps (on what a server may make abqd hold; any one passed is an error):
 *   IMAP_LINE_MAX       bytes of one line (between literals)
 *   IMAP_LITERAL_MAX    bytes of one literal that is held (not streamed)
 *   IMAP_RESPONSE_MAX   bytes of one response held in all (lines + literals)
 *   IMAP_DEPTH_MAX      nesting of parenthesised lists
 *   IMAP_NODES_MAX      nodes of one response's tree
 * Malformed input (a bad line, a cap passed) makes imap_parser_feed return -1
 * with a precise *errstr; the parser then refuses everything (the caller
 * drops the connection).
 */
#ifndef ABQ_IMAP_PARSE_H
#define ABQ_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/uidset.h"

#define IMAP_LINE_MAX     (1024 * 1024)
#define IMAP_LITERAL_MAX  (1024 * 1024)
#define IMAP_RESPONSE_MAX (4 * 1024 * 1024)
#define IMAP_DEPTH_MAX    32
#define IMAP_NODES_MAX    262144
/* A mailbox name, in UTF-8 once decoded, at most this many bytes. */
#define IMAP_MAILBOX_MAX 1024
/* A tag abqd reads, at most this many bytes. */
#define IMAP_TAG_MAX 32

enum imap_node_type {
	IMAP_NODE_ATOM,   /* includes flags (\Seen) and FETCH item names (BODY[1]<0>) */
	IMAP_NODE_NUMBER, /* an atom of digits that fits 63 bits: num, and s as sent */
	IMAP_NODE_STRING, /* quoted or literal */
	IMAP_NODE_NIL,
	IMAP_NODE_LIST, /* (...) */
};

struct imap_node {
	enum imap_node_type type;
	bool streamed;           /* STRING whose bytes went to on_chunk: len only, s is "" */
	uint32_t n;              /* LIST: its children */
	size_t len;              /* ATOM, NUMBER, STRING: bytes of s */
	const char *s;           /* ATOM, NUMBER, STRING: NUL-terminated (NIL, LIST: NULL) */
	uint64_t num;            /* NUMBER */
	struct imap_node *child; /* LIST: the first child */
	struct imap_node *next;  /* the next sibling */
};

enum imap_resp_kind {
	IMAP_RESP_CONTINUE, /* "+ text" */
	IMAP_RESP_TAGGED,   /* "tag OK|NO|BAD [code] text" */
	IMAP_RESP_STATUS,   /* "* OK|NO|BAD|BYE|PREAUTH [code] text" */
	IMAP_RESP_DATA,     /* any other untagged response */
};

enum imap_status {
	IMAP_OK,
	IMAP_NO,
	IMAP_BAD,
	IMAP_BYE,
	IMAP_PREAUTH,
};

struct imap_response {
	enum imap_resp_kind kind;
	const char *tag;         /* TAGGED */
	enum imap_status status; /* TAGGED, STATUS */
	/*
	 * TAGGED, STATUS: the response code's name, upper-cased ("UIDVALIDITY",
	 * "CAPABILITY", "APPENDUID"...), or NULL; its arguments as nodes (the
	 * first, then ->next), NULL when none.
	 */
	const char *code;
	const struct imap_node *code_args;
	const char *text; /* TAGGED, STATUS, CONTINUE: the human text ("" when none) */
	/*
	 * DATA: the response's name upper-cased ("EXISTS", "FETCH", "LIST",
	 * "CAPABILITY", "SEARCH"...), the number before it ("* 3 EXISTS"), and
	 * the nodes after it (the first, then ->next; NULL when none).
	 */
	const char *name;
	bool has_number;
	uint32_t number;
	const struct imap_node *data;
};

/* Where a streamed literal's bytes come from. */
struct imap_literal_info {
	uint32_t seq;     /* the FETCH response's message sequence number */
	const char *item; /* the item as sent, upper-cased: "BODY[1.2]<0>", "BINARY[2]" */
	uint64_t size;    /* the literal's whole length */
	uint64_t offset;  /* where this piece starts within it */
};

struct imap_parser_cbs {
	/* One complete response; return 0, or -1 to stop (feed returns -1 with errstr). */
	int (*on_response)(const struct imap_response *r, void *arg);
	/*
	 * A piece of a streamed literal (NULL: nothing is streamed). Pieces come
	 * in order; the last one ends at size. A literal of size 0 gives one call
	 * with len 0. Return 0, or -1 to stop as above.
	 */
	int (*on_chunk)(const struct imap_literal_info *li, const char *data, size_t len,
	                void *arg);
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_parser_cbs *cbs, void *arg);
void imap_parser_free(struct imap_parser *p);
/*
 * Feed len bytes. Returns 0, or -1 with *errstr (static text, or the
 * parser's own buffer, valid until the next call) on malformed input, a cap
 * passed or a callback's -1; after -1 every call fails the same way.
 */
int imap_parser_feed(struct imap_parser *p, const char *data, size_t len, const char **errstr);
/* Whether the parser is between responses (no partial response held). */
bool imap_parser_idle(const struct imap_parser *p);
/* Bytes the parser holds now (the response being read). */
size_t imap_parser_held(const struct imap_parser *p);

/* ---- nodes ---- */

/* The node's text as a string: ATOM, NUMBER, STRING; NULL for NIL, LIST, NULL. */
const char *imap_node_str(const struct imap_node *n);
/* The index-th child of a LIST (NULL if none or not a list). */
const struct imap_node *imap_node_child(const struct imap_node *n, uint32_t index);
/* Whether n is an ATOM equal to s without regard to ASCII case. */
bool imap_node_is(const struct imap_node *n, const char *s);
/* One line of text for a node list (tests, debugging): into buf, returns buf. */
const char *imap_node_dump(const struct imap_node *first, char *buf, size_t len);
/*
 * One line of text for a whole response (tests, the probe tool): kind, tag,
 * status, code and its arguments, text, or name, number and data. Returns buf.
 */
const char *imap_response_dump(const struct imap_response *r, char *buf, size_t len);

/* ---- uid sets (also message sequence sets): lib/uidset.h ---- */

/*
 * The most ranges a set read from a server may have (struct uidset's
 * max_ranges; the readers below set it on a set that has none).
 */
#define IMAP_UIDSET_MAX 65536

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---- */

/*
 * Decode a mailbox name from modified UTF-7 to UTF-8 into out (cap bytes,
 * NUL-terminated). Returns the length, or -1 (malformed, or too long).
 */
long imap_mutf7_decode(const char *in, size_t len, char *out, size_t cap);
/* Encode UTF-8 to modified UTF-7 the same way; -1 for invalid UTF-8 or too long. */
long imap_mutf7_encode(const char *in, size_t len, char *out, size_t cap);

/* ---- typed readers of responses ---- */

/* Capabilities abqd acts on (also the names ENABLED reports). */
#define IMAP_CAP_IMAP4REV1     (1u << 0)
#define IMAP_CAP_IMAP4REV2     (1u << 1)
#define IMAP_CAP_STARTTLS      (1u << 2)
#define IMAP_CAP_LOGINDISABLED (1u << 3)
#define IMAP_CAP_AUTH_PLAIN    (1u << 4)
#define IMAP_CAP_SASL_IR       (1u << 5)
#define IMAP_CAP_LITERAL_PLUS  (1u << 6)
#define IMAP_CAP_LITERAL_MINUS (1u << 7)
#define IMAP_CAP_IDLE          (1u << 8)
#define IMAP_CAP_ENABLE        (1u << 9)
#define IMAP_CAP_CONDSTORE     (1u << 10)
#define IMAP_CAP_QRESYNC       (1u << 11)
#define IMAP_CAP_UTF8_ACCEPT   (1u << 12)
#define IMAP_CAP_UIDPLUS       (1u << 13)
#define IMAP_CAP_MOVE          (1u << 14)
#define IMAP_CAP_SPECIAL_USE   (1u << 15)
#define IMAP_CAP_LIST_EXTENDED (1u << 16)
#define IMAP_CAP_LIST_STATUS   (1u << 17)
#define IMAP_CAP_NOTIFY        (1u << 18)
#define IMAP_CAP_ESEARCH       (1u << 19)
#define IMAP_CAP_BINARY        (1u << 20)
#define IMAP_CAP_COMPRESS      (1u << 21) /* COMPRESS=DEFLATE */
#define IMAP_CAP_NAMESPACE     (1u << 22)
#define IMAP_CAP_UNSELECT      (1u << 23)
#define IMAP_CAP_ID            (1u << 24)
#define IMAP_CAP_CHILDREN      (1u << 25)
#define IMAP_CAP_SORT          (1u << 26)
#define IMAP_CAP_ESORT         (1u << 27)
#define IMAP_CAP_STATUS_SIZE   (1u << 28)
#define IMAP_CAP_OBJECTID      (1u << 29) /* RFC 8474: MAILBOXID, EMAILID */

/* The bit of one capability name (case-insensitive), 0 for one abqd ignores. */
uint32_t imap_cap_bit(const char *name);
/*
 * Whether a NO's response code says "not now" rather than "no" (RFC 5530:
 * UNAVAILABLE, INUSE, LIMIT, SERVERBUG; Dovecot answers a login with
 * UNAVAILABLE while its auth process starts): a login refused so is not a
 * wrong password. NULL (no code): false.
 */
bool imap_code_transient(const char *code);
/* The bits of a list of atoms (CAPABILITY data, a CAPABILITY code, ENABLED). */
uint32_t imap_caps_of(const struct imap_node *first);
/* The name of one bit ("LITERAL+"), NULL for none. */
const char *imap_cap_name(uint32_t bit);

/* LIST flags. */
#define IMAP_LIST_NOSELECT      (1u << 0)
#define IMAP_LIST_NONEXISTENT   (1u << 1)
#define IMAP_LIST_NOINFERIORS   (1u << 2)
#define IMAP_LIST_HASCHILDREN   (1u << 3)
#define IMAP_LIST_HASNOCHILDREN (1u << 4)
#define IMAP_LIST_MARKED        (1u << 5)
#define IMAP_LIST_UNMARKED      (1u << 6)
#define IMAP_LIST_SUBSCRIBED    (1u << 7)
#define IMAP_LIST_REMOTE        (1u << 8)
#define IMAP_LIST_ALL           (1u << 9) /* SPECIAL-USE from here on */
#define IMAP_LIST_ARCHIVE       (1u << 10)
#define IMAP_LIST_DRAFTS        (1u << 11)
#define IMAP_LIST_FLAGGED       (1u << 12)
#define IMAP_LIST_JUNK          (1u << 13)
#define IMAP_LIST_SENT          (1u << 14)
#define IMAP_LIST_TRASH         (1u << 15)
#define IMAP_LIST_IMPORTANT     (1u << 16)
#define IMAP_LIST_SPECIAL_USE                                                                      \
	(IMAP_LIST_ALL | IMAP_LIST_ARCHIVE | IMAP_LIST_DRAFTS | IMAP_LIST_FLAGGED |                \
	 IMAP_LIST_JUNK | IMAP_LIST_SENT | IMAP_LIST_TRASH | IMAP_LIST_IMPORTANT)

struct imap_list {
	uint32_t flags;
	char delim;                      /* '\0' for NIL (a flat namespace) */
	const char *raw;                 /* the name as sent (lives with the response) */
	char name[IMAP_MAILBOX_MAX + 1]; /* in UTF-8 */
};

/*
 * A LIST (or LSUB) response. utf8: the server sends UTF-8 names (UTF8=ACCEPT
 * enabled), else they are decoded from modified UTF-7. 0 or -1 with *errstr.
 */
int imap_list_read(const struct imap_response *r, bool utf8, struct imap_list *out,
                   const char **errstr);

#define IMAP_STATUS_MESSAGES      (1u << 0)
#define IMAP_STATUS_UIDNEXT       (1u << 1)
#define IMAP_STATUS_UIDVALIDITY   (1u << 2)
#define IMAP_STATUS_UNSEEN        (1u << 3)
#define IMAP_STATUS_HIGHESTMODSEQ (1u << 4)
#define IMAP_STATUS_RECENT        (1u << 5)
#define IMAP_STATUS_SIZE          (1u << 6)
#define IMAP_STATUS_MAILBOXID     (1u << 7)

struct imap_status_data {
	const char *raw; /* the mailbox as sent */
	uint32_t have;   /* IMAP_STATUS_* present */
	uint32_t messages, uidnext, uidvalidity, unseen, recent;
	uint64_t highestmodseq, size;
	const char *mailboxid; /* RFC 8474 MAILBOXID (lives with the response); NULL: none */
};

/* A STATUS response. 0 or -1 with *errstr. */
int imap_status_read(const struct imap_response *r, struct imap_status_data *out,
                     const char **errstr);

/*
 * VANISHED [(EARLIER)] uid-set: into *set (added to it). 0, or -1 with
 * *errstr (a malformed set, or *set would pass its cap).
 */
int imap_vanished_read(const struct imap_response *r, bool *earlier, struct uidset *set,
                       const char **errstr);

/*
 * SEARCH n n n [(MODSEQ m)]: the numbers added to *set, *modseq (0 if
 * none). 0, or -1 with *errstr (malformed, or *set would pass its cap).
 */
int imap_search_read(const struct imap_response *r, struct uidset *set, uint64_t *modseq,
                     const char **errstr);

struct imap_esearch {
	const char *tag; /* the command's tag, NULL if none */
	bool uid;
	bool has_min, has_max, has_count;
	uint32_t min, max, count;
	uint64_t modseq;
	struct uidset all; /* ALL: added to (caller clears) */
};

/* An ESEARCH response. 0 or -1 with *errstr. */
int imap_esearch_read(const struct imap_response *r, struct imap_esearch *out, const char **errstr);

/* Message flags abqd acts on. */
#define IMAP_FLAG_SEEN      (1u << 0)
#define IMAP_FLAG_ANSWERED  (1u << 1)
#define IMAP_FLAG_FLAGGED   (1u << 2)
#define IMAP_FLAG_DELETED   (1u << 3)
#define IMAP_FLAG_DRAFT     (1u << 4)
#define IMAP_FLAG_RECENT    (1u << 5)
#define IMAP_FLAG_FORWARDED (1u << 6) /* $Forwarded */

/* The bits of a flag list (other flags are ignored). */
uint32_t imap_flags_of(const struct imap_node *list);

struct imap_address {
	const char *name, *adl, *mailbox, *host; /* NULL for NIL */
};

struct imap_envelope {
	const char *date, *subject, *in_reply_to, *message_id; /* NULL for NIL */
	/* Address lists: a LIST node of addresses, or NULL for NIL. */
	const struct imap_node *from, *sender, *reply_to, *to, *cc, *bcc;
};

/*
 * The index-th address of an address list (as in imap_envelope). Returns 0,
 * or -1 when there is none or it is malformed. Group syntax (mailbox without
 * host) is returned as it is.
 */
int imap_address_get(const struct imap_node *list, uint32_t index, struct imap_address *out);

/* A body part of a BODYSTRUCTURE, with its section number. */
struct imap_body {
	char section[64]; /* "1", "2.1"; "" for the top multipart; "TEXT" never */
	bool multipart;
	const char *type; /* upper-cased as sent is not guaranteed: compare case-insensitively */
	const char *subtype;
	const struct imap_node *params;          /* LIST of name value ..., or NULL */
	const char *id, *description, *encoding; /* NULL for NIL; single parts only */
	uint64_t size;                           /* single parts: octets */
	uint32_t lines;                          /* TEXT and MESSAGE/RFC822 parts */
	const char *disposition;                 /* "attachment", "inline", or NULL */
	const struct imap_node *disp_params;     /* LIST, or NULL */
	struct imap_body *child;                 /* multipart: parts; message/rfc822: its body */
	struct imap_body *next;
};

/* A parameter of a LIST of name value pairs (case-insensitive name), or NULL. */
const char *imap_param(const struct imap_node *params, const char *name);

/* One BODY[section]<origin> or BINARY[section]<origin> item of a FETCH. */
struct imap_body_item {
	const char *item;  /* the item as sent: "BODY[1.2]<0>" */
	char section[128]; /* "1.2", "HEADER", "" (cut to fit) */
	bool binary;
	bool has_origin;
	uint64_t origin;
	const struct imap_node *value; /* STRING (maybe streamed) or NIL */
};

#define IMAP_FETCH_UID           (1u << 0)
#define IMAP_FETCH_FLAGS         (1u << 1)
#define IMAP_FETCH_MODSEQ        (1u << 2)
#define IMAP_FETCH_INTERNALDATE  (1u << 3)
#define IMAP_FETCH_SIZE          (1u << 4)
#define IMAP_FETCH_ENVELOPE      (1u << 5)
#define IMAP_FETCH_BODYSTRUCTURE (1u << 6)

#define IMAP_FETCH_BODY_ITEMS 8

struct imap_fetch {
	uint32_t seq;
	uint32_t have; /* IMAP_FETCH_* present */
	uint32_t uid;
	uint32_t flags;                    /* IMAP_FLAG_* */
	const struct imap_node *flag_list; /* all flags, as sent */
	uint64_t modseq;
	time_t internaldate; /* UTC seconds */
	uint64_t size;       /* RFC822.SIZE */
	struct imap_envelope envelope;
	struct imap_body *body; /* BODYSTRUCTURE (or BODY), owned: imap_fetch_clear */
	struct imap_body_item items[IMAP_FETCH_BODY_ITEMS];
	unsigned nitems;
};

/*
 * A FETCH response (lives with it; call imap_fetch_clear after). 0 or -1 with
 * *errstr; items past IMAP_FETCH_BODY_ITEMS are an error.
 */
int imap_fetch_read(const struct imap_response *r, struct imap_fetch *out, const char **errstr);
void imap_fetch_clear(struct imap_fetch *f);
/* The part with this section in a body tree, or NULL. */
const struct imap_body *imap_body_find(const struct imap_body *b, const char *section);
/* Free a body tree (imap_fetch_clear does it for the fetch's). */
void imap_body_free(struct imap_body *b);

/* An IMAP date-time ("17-Jul-1996 02:44:25 -0700") as UTC seconds. 0 or -1. */
int imap_datetime_parse(const char *s, time_t *out);

#endif
