/*
 * wbxml.h: the ActiveSync WBXML codec (MS-ASWBXML, EAS 2.5 to 16.1).
 *
 * A decoder from peer bytes into a small DOM tree, an encoder back to the
 * exact bytes Exchange and libwbxml produce, a builder API for the answers
 * abqd writes itself, an XML rendering for logs, a path lookup used to pull
 * fields such as Settings:DeviceInformation out of request bodies, and a
 * one-pass check of bodies the gateway forwards without decoding them.
 *
 * Every element is named by (code page, token); the 26 code pages of EAS 16.1
 * live in wbxml_tables.c. A qualified name is "Page:Tag" ("AirSync:Sync",
 * "Settings:Model"), with the page names of MS-ASWBXML.
 *
 * Errors are numbered (never renumbered) with wbxml_strerror(); the decoder
 * also fills a struct wbxml_error with the offset and a message that names
 * the offending byte ("unknown token 0x3F on page 2 (Email) at offset 12").
 * Documents own all their memory: wbxml_doc_free(&doc) releases every node.
 */
#ifndef ABQ_EAS_WBXML_H
#define ABQ_EAS_WBXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Code pages (wbxml_tables.c) ---- */

enum wbxml_page {
	WBXML_PAGE_AIRSYNC = 0,
	WBXML_PAGE_CONTACTS = 1,
	WBXML_PAGE_EMAIL = 2,
	WBXML_PAGE_AIRNOTIFY = 3,
	WBXML_PAGE_CALENDAR = 4,
	WBXML_PAGE_MOVE = 5,
	WBXML_PAGE_GETITEMESTIMATE = 6,
	WBXML_PAGE_FOLDERHIERARCHY = 7,
	WBXML_PAGE_MEETINGRESPONSE = 8,
	WBXML_PAGE_TASKS = 9,
	WBXML_PAGE_RESOLVERECIPIENTS = 10,
	WBXML_PAGE_VALIDATECERT = 11,
	WBXML_PAGE_CONTACTS2 = 12,
	WBXML_PAGE_PING = 13,
	WBXML_PAGE_PROVISION = 14,
	WBXML_PAGE_SEARCH = 15,
	WBXML_PAGE_GAL = 16,
	WBXML_PAGE_AIRSYNCBASE = 17,
	WBXML_PAGE_SETTINGS = 18,
	WBXML_PAGE_DOCUMENTLIBRARY = 19,
	WBXML_PAGE_ITEMOPERATIONS = 20,
	WBXML_PAGE_COMPOSEMAIL = 21,
	WBXML_PAGE_EMAIL2 = 22,
	WBXML_PAGE_NOTES = 23,
	WBXML_PAGE_RIGHTSMANAGEMENT = 24,
	WBXML_PAGE_FIND = 25,
};

#define WBXML_NPAGES  26 /* code pages 0..25 */
#define WBXML_NTOKENS 64 /* a tag token is 6 bits; 0x00-0x04 are global tokens */

/* One code page: its namespace name and its tag names indexed by token (NULL: unused). */
struct wbxml_codepage {
	const char *name;
	const char *const *tags; /* WBXML_NTOKENS entries */
};

extern const struct wbxml_codepage wbxml_codepages[WBXML_NPAGES];

/* The namespace name of a page ("AirSync"), or NULL for a page that does not exist. */
const char *wbxml_page_name(unsigned page);
/* The page number of a namespace name, or -1. */
int wbxml_page_by_name(const char *name, size_t len);
/* The tag name of (page, token), or NULL if the pair is not defined. */
const char *wbxml_tag_name(unsigned page, unsigned token);
/*
 * Resolve "Page:Tag" (or a bare "Tag", looked up on default_page) into a page
 * and a token. Returns 0, or -1 if the name is unknown.
 */
int wbxml_lookup(const char *qname, unsigned default_page, unsigned *page_r, unsigned *token_r);

/* ---- Errors ---- */

enum wbxml_err {
	WBXML_OK = 0,
	WBXML_ERR_TRUNCATED = 1,        /* input ends inside a token or an open element */
	WBXML_ERR_BAD_HEADER = 2,       /* not 03 01 6A 00 */
	WBXML_ERR_UNKNOWN_PAGE = 3,     /* SWITCH_PAGE to a page EAS does not define */
	WBXML_ERR_UNKNOWN_TOKEN = 4,    /* tag token not defined on the current page */
	WBXML_ERR_DEPTH = 5,            /* nesting deeper than the limit */
	WBXML_ERR_TOO_MANY_NODES = 6,   /* more elements than the limit */
	WBXML_ERR_TOO_LARGE = 7,        /* input larger than the limit */
	WBXML_ERR_UNTERMINATED_STR = 8, /* STR_I without its NUL */
	WBXML_ERR_ATTRIBUTES = 9,       /* a tag with the attribute bit */
	WBXML_ERR_EXTENSION = 10,       /* EXT_I/EXT_T/EXT tokens */
	WBXML_ERR_MBUINT = 11,          /* multi-byte integer longer than 32 bits */
	WBXML_ERR_UNSUPPORTED = 12,     /* ENTITY, LITERAL*, PI, STR_T */
	WBXML_ERR_UNEXPECTED = 13,      /* END or content outside any element */
	WBXML_ERR_TRAILING = 14,        /* bytes after the root element closed */
	WBXML_ERR_MIXED = 15,           /* text, opaque data and child elements mixed */
	WBXML_ERR_EMPTY = 16,           /* no root element */
	WBXML_ERR_BUILD = 17,           /* a builder call failed (see the message) */
	WBXML_ERR_INVALID = 18,         /* invalid argument */
};

/* Where and why a call failed. msg is always NUL-terminated. */
struct wbxml_error {
	enum wbxml_err code;
	size_t offset; /* input offset of the offending byte (decoder) */
	char msg[160];
};

/* A static description of an error code ("truncated input"). */
const char *wbxml_strerror(enum wbxml_err code);

/* ---- The tree ---- */

#define WBXML_NODE_TEXT   0x01 /* data holds STR_I text (NUL-terminated, len bytes) */
#define WBXML_NODE_OPAQUE 0x02 /* data holds OPAQUE bytes (len bytes, NUL after them) */

struct wbxml_doc;

struct wbxml_node {
	struct wbxml_doc *doc;
	struct wbxml_node *parent;
	struct wbxml_node *first_child;
	struct wbxml_node *last_child;
	struct wbxml_node *next;
	const char *name; /* static, from the code page table */
	uint8_t *data;    /* text or opaque bytes, or NULL */
	size_t len;
	uint8_t page;
	uint8_t token;
	uint8_t flags; /* WBXML_NODE_* */
};

/* Decoder limits; a zero field takes the default. */
struct wbxml_limits {
	size_t max_input; /* bytes; default WBXML_DEFAULT_MAX_INPUT */
	size_t max_depth; /* open elements; default WBXML_DEFAULT_MAX_DEPTH */
	size_t max_nodes; /* elements; default WBXML_DEFAULT_MAX_NODES */
};

#define WBXML_DEFAULT_MAX_INPUT (32u * 1024 * 1024)
#define WBXML_DEFAULT_MAX_DEPTH 64
#define WBXML_DEFAULT_MAX_NODES 100000

/*
 * Decode buf[0..len) into a new document. limits may be NULL (defaults),
 * err_r may be NULL. Returns WBXML_OK and sets *doc_r, or an error code with
 * *doc_r set to NULL. Never reads outside buf.
 */
enum wbxml_err wbxml_decode(const uint8_t *buf, size_t len, const struct wbxml_limits *limits,
                            struct wbxml_doc **doc_r, struct wbxml_error *err_r);

/*
 * Check that buf[0..len) is one well-formed ActiveSync WBXML document, in one
 * pass without building a tree, copying or allocating (wbxml_check.c): the
 * header 03 01 6A 00, every tag defined on its code page of EAS 16.1, no
 * attributes, no token ActiveSync does not use (ENTITY, LITERAL*, PI, STR_T,
 * EXT*), one root element properly closed and nothing after it, STR_I
 * terminated, OPAQUE within the input, no text mixed with child elements,
 * and the decoder's default limits. It accepts exactly what wbxml_decode()
 * with NULL limits accepts. Returns 0, or -1 with *errpos (byte offset) and
 * *why (static text) set; errpos and why may be NULL. For request bodies the
 * gateway forwards without decoding them.
 */
int wbxml_check(const uint8_t *buf, size_t len, size_t *errpos, const char **why);

/*
 * The same with decoder limits (NULL: the defaults), returning the error code
 * wbxml_decode() would return for the same input and limits (WBXML_OK if it
 * would decode); when both fail, *errpos equals its wbxml_error offset.
 */
enum wbxml_err wbxml_check_limits(const uint8_t *buf, size_t len, const struct wbxml_limits *limits,
                                  size_t *errpos, const char **why);

/*
 * Encode a document: header 03 01 6A 00, SWITCH_PAGE only when the page
 * changes, the content bit only on elements with content, STR_I for text and
 * OPAQUE for opaque data. On success *buf_r is a malloc'd buffer the caller
 * frees and *len_r its length.
 */
enum wbxml_err wbxml_encode(const struct wbxml_doc *doc, uint8_t **buf_r, size_t *len_r,
                            struct wbxml_error *err_r);

/* Free a document and every node in it; sets *docp to NULL. NULL is fine. */
void wbxml_doc_free(struct wbxml_doc **docp);

/* The root element, or NULL for an empty document. */
struct wbxml_node *wbxml_doc_root(const struct wbxml_doc *doc);
/* The number of elements in the document. */
size_t wbxml_doc_count(const struct wbxml_doc *doc);

/* ---- Building documents ---- */

/*
 * Builder calls return the new element, or NULL when the page/token or the
 * name is unknown, the parent already holds text, or the parent is NULL. A
 * NULL parent makes every call a no-op returning NULL, so chains can be
 * written without checks; the first failure is recorded in the document and
 * wbxml_encode() then fails with WBXML_ERR_BUILD naming it.
 */
struct wbxml_doc *wbxml_doc_new(void);
struct wbxml_node *wbxml_add_root(struct wbxml_doc *doc, unsigned page, unsigned token);
struct wbxml_node *wbxml_add(struct wbxml_node *parent, unsigned page, unsigned token);
struct wbxml_node *wbxml_add_text(struct wbxml_node *parent, unsigned page, unsigned token,
                                  const char *text);
struct wbxml_node *wbxml_add_opaque(struct wbxml_node *parent, unsigned page, unsigned token,
                                    const void *data, size_t len);
/* The same by qualified name ("Settings:Model"); a bare name is on the parent's page. */
struct wbxml_node *wbxml_addn_root(struct wbxml_doc *doc, const char *qname);
struct wbxml_node *wbxml_addn(struct wbxml_node *parent, const char *qname);
struct wbxml_node *wbxml_addn_text(struct wbxml_node *parent, const char *qname, const char *text);
struct wbxml_node *wbxml_addn_opaque(struct wbxml_node *parent, const char *qname, const void *data,
                                     size_t len);
/*
 * Replace a childless element's content with text (no NUL allowed inside,
 * STR_I cannot carry one) or opaque bytes. Returns 0 or -1.
 */
int wbxml_set_text(struct wbxml_node *node, const char *text, size_t len);
int wbxml_set_opaque(struct wbxml_node *node, const void *data, size_t len);

/* ---- Reading documents ---- */

/* The element's text, or NULL if it holds none (opaque or children). */
const char *wbxml_text(const struct wbxml_node *node);
/* "Page:Tag" of an element into buf (e.g. for messages); returns buf. */
const char *wbxml_qname(const struct wbxml_node *node, char *buf, size_t size);
/* True if the element is (page, token). */
bool wbxml_is(const struct wbxml_node *node, unsigned page, unsigned token);

/*
 * Path lookup below node: segments separated by '/', each "Page:Tag" or a bare
 * "Tag" (any page), each matching a child of the previous match; the first
 * element in document order that completes the path is returned, else NULL.
 * Example: wbxml_find(root, "Settings:DeviceInformation/Settings:Set/Settings:Model").
 */
struct wbxml_node *wbxml_find(const struct wbxml_node *node, const char *path);
/* wbxml_find() then wbxml_text(); NULL if either fails. */
const char *wbxml_find_text(const struct wbxml_node *node, const char *path);

/* ---- XML rendering for logs and debugging ---- */

#define WBXML_XML_PRETTY 0x01 /* one element a line, two-space indent */
#define WBXML_XML_HEADER 0x02 /* <?xml?> declaration and the ActiveSync DOCTYPE */
#define WBXML_XML_REDACT 0x04 /* hide passwords and opaque payloads (for logs) */
/*
 * For the account loggers: passwords, opaque payloads and message contents
 * (the text of AirSyncBase:Data and :Preview, Email:Body and :MIMEData,
 * ComposeMail:Mime, Email2:UmUserNotes, ItemOperations:Data, the Body and
 * CompressedRTF of contacts, calendar items and tasks, pictures) each become
 * "[N bytes left out]".
 */
#define WBXML_XML_LEAVE_OUT 0x08

/*
 * Render node and its subtree as XML in a new malloc'd string. The namespace
 * is declared as xmlns="Page:" on the top element and wherever the page
 * changes, as libwbxml's wbxml2xml does. Text is escaped; invalid UTF-8 and
 * control characters are replaced; opaque data is shown in base64.
 */
char *wbxml_to_xml(const struct wbxml_node *node, unsigned flags);

#endif
