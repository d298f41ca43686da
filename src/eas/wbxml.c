/*
 * wbxml.c: the ActiveSync WBXML codec (see wbxml.h).
 *
 * Why hand-written rather than libwbxml: libwbxml is a generic WBXML/XML
 * converter. Its ActiveSync tables misname tokens (Settings 0x2B is
 * "ihsManagementInformation", Email 0x19 "Reply-To", ...) and lack the Find
 * page of EAS 16.1; it carries string tables, charsets, attribute and
 * extension machinery that EAS never uses; and it has no size, depth or node
 * caps fit for a daemon fed by hostile peers. EAS WBXML is a small fixed
 * subset: the header 03 01 6A 00, SWITCH_PAGE, tags with the content bit,
 * STR_I, OPAQUE and END. A table-driven codec handles it in a few hundred
 * lines, and libwbxml stays what it is best at: an independent oracle in the
 * tests (tests/eas/wbxml_oracle.sh).
 *
 * The decoder is strict: any token ActiveSync does not use, an undefined tag,
 * a page switch to an unknown page, text mixed with child elements, bytes
 * after the root element, or input past a limit is an error with the offset.
 * Every node and every string of a document lives in one arena freed at once.
 */
#include "eas/wbxml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* WBXML global tokens (WAP-192) and the tag bits. */
#define TOK_SWITCH_PAGE 0x00
#define TOK_END         0x01
#define TOK_ENTITY      0x02
#define TOK_STR_I       0x03
#define TOK_LITERAL     0x04
#define TOK_EXT_I_0     0x40
#define TOK_EXT_I_2     0x42
#define TOK_PI          0x43
#define TOK_LITERAL_C   0x44
#define TOK_EXT_T_0     0x80
#define TOK_EXT_T_2     0x82
#define TOK_STR_T       0x83
#define TOK_LITERAL_A   0x84
#define TOK_EXT_0       0xC0
#define TOK_EXT_2       0xC2
#define TOK_OPAQUE      0xC3
#define TOK_LITERAL_AC  0xC4
#define TAG_CONTENT     0x40
#define TAG_ATTRIBUTES  0x80
#define TAG_MASK        0x3F

#define WBXML_VERSION_13  0x03
#define PUBLIC_ID_UNKNOWN 0x01
#define CHARSET_UTF8      106

#define ARENA_BLOCK 65536

struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t size;
	max_align_t mem[];
};

struct wbxml_doc {
	struct arena_block *blocks;
	struct wbxml_node *root;
	size_t count;
	bool build_failed;
	char build_msg[160];
};

/* A growable byte buffer for the encoder, the XML writer and decoder scratch. */
struct dbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static const char *const err_names[] = {
    [WBXML_OK] = "success",
    [WBXML_ERR_TRUNCATED] = "truncated input",
    [WBXML_ERR_BAD_HEADER] = "bad header",
    [WBXML_ERR_UNKNOWN_PAGE] = "unknown code page",
    [WBXML_ERR_UNKNOWN_TOKEN] = "unknown token",
    [WBXML_ERR_DEPTH] = "depth limit",
    [WBXML_ERR_TOO_MANY_NODES] = "node limit",
    [WBXML_ERR_TOO_LARGE] = "input size limit",
    [WBXML_ERR_UNTERMINATED_STR] = "string not terminated",
    [WBXML_ERR_ATTRIBUTES] = "attribute tokens are not used by ActiveSync",
    [WBXML_ERR_EXTENSION] = "extension tokens not supported",
    [WBXML_ERR_MBUINT] = "multi-byte integer overflow",
    [WBXML_ERR_UNSUPPORTED] = "token not used by ActiveSync",
    [WBXML_ERR_UNEXPECTED] = "token outside any element",
    [WBXML_ERR_TRAILING] = "data after the root element",
    [WBXML_ERR_MIXED] = "mixed content",
    [WBXML_ERR_EMPTY] = "no root element",
    [WBXML_ERR_BUILD] = "document builder failed",
    [WBXML_ERR_INVALID] = "invalid argument",
};

/* The static description of an error code; unknown codes get a generic text. */
const char *
wbxml_strerror(enum wbxml_err code)
{
	if ((unsigned)code >= sizeof(err_names) / sizeof(err_names[0]) || err_names[code] == NULL)
		return "unknown WBXML error";
	return err_names[code];
}

/* Fill *err (if any) with code, offset and a formatted message; returns code. */
static enum wbxml_err set_err(struct wbxml_error *err, enum wbxml_err code, size_t offset,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum wbxml_err
set_err(struct wbxml_error *err, enum wbxml_err code, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	err->offset = offset;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* ---- Buffers and the arena ---- */

/* Make room for n more bytes in b, doubling so that appends stay linear. */
static void
dbuf_reserve(struct dbuf *b, size_t n)
{
	size_t want, cap;

	if (n > SIZE_MAX - b->len)
		fatalx("wbxml: buffer size overflow");
	want = b->len + n;
	if (want <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

/* Append n bytes to b. */
static void
dbuf_add(struct dbuf *b, const void *data, size_t n)
{
	if (n == 0)
		return;
	dbuf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/* Append one byte to b. */
static void
dbuf_byte(struct dbuf *b, uint8_t c)
{
	dbuf_reserve(b, 1);
	b->p[b->len++] = c;
}

/* Append a NUL-terminated string to b (without its NUL). */
static void
dbuf_str(struct dbuf *b, const char *s)
{
	dbuf_add(b, s, strlen(s));
}

/*
 * Allocate n zeroed bytes from the document's arena, aligned for any type.
 * Large requests get a block of their own so that small blocks stay dense.
 */
static void *
arena_alloc(struct wbxml_doc *doc, size_t n)
{
	const size_t align = sizeof(max_align_t);
	struct arena_block *b = doc->blocks;
	void *p;

	if (n > SIZE_MAX / 2)
		fatalx("wbxml: allocation of %zu bytes", n);
	n = n ? (n + align - 1) / align * align : align;
	if (b == NULL || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;

		b = xmalloc(sizeof(*b) + size);
		b->size = size;
		b->used = 0;
		if (size == n && doc->blocks != NULL) {
			/* Keep the current small block first: it still has room. */
			b->next = doc->blocks->next;
			doc->blocks->next = b;
		} else {
			b->next = doc->blocks;
			doc->blocks = b;
		}
	}
	p = (unsigned char *)b->mem + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

/* Copy len bytes into the arena with a NUL after them (text is then a C string). */
static uint8_t *
arena_copy(struct wbxml_doc *doc, const void *data, size_t len)
{
	uint8_t *p;

	if (len == SIZE_MAX)
		fatalx("wbxml: string too large");
	p = arena_alloc(doc, len + 1);
	if (len > 0)
		memcpy(p, data, len);
	p[len] = '\0';
	return p;
}

/* A new empty document (for the builder and the decoder). */
struct wbxml_doc *
wbxml_doc_new(void)
{
	return xcalloc(1, sizeof(struct wbxml_doc));
}

/* Free a document with every block of its arena; sets *docp to NULL. */
void
wbxml_doc_free(struct wbxml_doc **docp)
{
	struct arena_block *b, *next;

	if (docp == NULL || *docp == NULL)
		return;
	for (b = (*docp)->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(*docp);
	*docp = NULL;
}

/* The root element of a document, or NULL. */
struct wbxml_node *
wbxml_doc_root(const struct wbxml_doc *doc)
{
	return doc ? doc->root : NULL;
}

/* The number of elements of a document. */
size_t
wbxml_doc_count(const struct wbxml_doc *doc)
{
	return doc ? doc->count : 0;
}

/* Allocate an element (page, token) and append it to parent, or make it the root. */
static struct wbxml_node *
node_append(struct wbxml_doc *doc, struct wbxml_node *parent, unsigned page, unsigned token,
            const char *name)
{
	struct wbxml_node *n = arena_alloc(doc, sizeof(*n));

	n->doc = doc;
	n->parent = parent;
	n->name = name;
	n->page = (uint8_t)page;
	n->token = (uint8_t)token;
	if (parent == NULL) {
		doc->root = n;
	} else {
		if (parent->last_child != NULL)
			parent->last_child->next = n;
		else
			parent->first_child = n;
		parent->last_child = n;
	}
	doc->count++;
	return n;
}

/* ---- Decoder ---- */

struct decoder {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	size_t max_depth;
	size_t max_nodes;
	struct wbxml_doc *doc;
	struct wbxml_node *cur; /* innermost open element */
	size_t depth;           /* open elements */
	unsigned page;
	bool done; /* the root element is closed */
	/* Content of cur collected across STR_I/OPAQUE tokens, stored at its END. */
	struct dbuf pending;
	uint8_t pending_kind; /* 0, WBXML_NODE_TEXT or WBXML_NODE_OPAQUE */
	struct wbxml_error *err;
};

/* Describe node as "Page:Tag" into buf; returns buf. */
const char *
wbxml_qname(const struct wbxml_node *node, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	if (node == NULL)
		snprintf(buf, size, "(none)");
	else
		snprintf(buf, size, "%s:%s", wbxml_page_name(node->page), node->name);
	return buf;
}

/* Fail with "truncated input at offset N (what)". */
static enum wbxml_err
truncated(struct decoder *d, const char *what)
{
	return set_err(d->err, WBXML_ERR_TRUNCATED, d->len, "truncated input at offset %zu (%s)",
	               d->len, what);
}

/*
 * Read a multi-byte unsigned integer (WAP-192 5.1): 7 bits a byte, most
 * significant first, high bit set on all but the last. At most 5 bytes and
 * 32 bits; anything longer is an overflow, never a wrap.
 */
static enum wbxml_err
read_mbuint(struct decoder *d, uint32_t *v, const char *what)
{
	size_t start = d->pos;
	uint64_t acc = 0;

	for (int i = 0;; i++) {
		uint8_t b;

		if (i == 5)
			return set_err(d->err, WBXML_ERR_MBUINT, start,
			               "multi-byte integer overflow at offset %zu (%s)", start,
			               what);
		if (d->pos >= d->len)
			return truncated(d, what);
		b = d->buf[d->pos++];
		acc = (acc << 7) | (b & 0x7F);
		if (acc > UINT32_MAX)
			return set_err(d->err, WBXML_ERR_MBUINT, start,
			               "multi-byte integer overflow at offset %zu (%s)", start,
			               what);
		if ((b & 0x80) == 0)
			break;
	}
	*v = (uint32_t)acc;
	return WBXML_OK;
}

/* Check the header ActiveSync requires: version 1.3, public id 1, UTF-8, no string table. */
static enum wbxml_err
read_header(struct decoder *d)
{
	enum wbxml_err e;
	uint32_t v;
	size_t off;

	if (d->len == 0)
		return truncated(d, "header");
	if (d->buf[0] != WBXML_VERSION_13)
		return set_err(d->err, WBXML_ERR_BAD_HEADER, 0,
		               "bad header: WBXML version byte 0x%02X, ActiveSync uses 0x03 (1.3)",
		               d->buf[0]);
	d->pos = 1;
	off = d->pos;
	if ((e = read_mbuint(d, &v, "public identifier")) != WBXML_OK)
		return e;
	if (v != PUBLIC_ID_UNKNOWN)
		return set_err(d->err, WBXML_ERR_BAD_HEADER, off,
		               "bad header: public identifier %u, ActiveSync uses 1", v);
	off = d->pos;
	if ((e = read_mbuint(d, &v, "charset")) != WBXML_OK)
		return e;
	if (v != CHARSET_UTF8)
		return set_err(d->err, WBXML_ERR_BAD_HEADER, off,
		               "bad header: charset %u, ActiveSync uses UTF-8 (106)", v);
	off = d->pos;
	if ((e = read_mbuint(d, &v, "string table length")) != WBXML_OK)
		return e;
	if (v != 0)
		return set_err(d->err, WBXML_ERR_BAD_HEADER, off,
		               "bad header: string table of %u bytes, ActiveSync uses none", v);
	return WBXML_OK;
}

/* Open a new element for tag byte b at offset off. */
static enum wbxml_err
decode_tag(struct decoder *d, uint8_t b, size_t off)
{
	unsigned token = b & TAG_MASK;
	const char *name;
	struct wbxml_node *n;
	char q[96];

	if (b & TAG_ATTRIBUTES)
		return set_err(d->err, WBXML_ERR_ATTRIBUTES, off,
		               "attribute tokens are not used by ActiveSync (tag 0x%02X at offset "
		               "%zu)",
		               b, off);
	name = wbxml_tag_name(d->page, token);
	if (name == NULL)
		return set_err(d->err, WBXML_ERR_UNKNOWN_TOKEN, off,
		               "unknown token 0x%02X on page %u (%s) at offset %zu", token, d->page,
		               wbxml_page_name(d->page), off);
	if (d->done)
		return set_err(d->err, WBXML_ERR_TRAILING, off,
		               "element after the root element at offset %zu", off);
	if (d->cur != NULL && d->pending_kind != 0)
		return set_err(d->err, WBXML_ERR_MIXED, off,
		               "element %s mixes text and child elements at offset %zu",
		               wbxml_qname(d->cur, q, sizeof(q)), off);
	if (d->doc->count >= d->max_nodes)
		return set_err(d->err, WBXML_ERR_TOO_MANY_NODES, off,
		               "node limit (%zu elements) reached at offset %zu", d->max_nodes,
		               off);
	if ((b & TAG_CONTENT) && d->depth >= d->max_depth)
		return set_err(d->err, WBXML_ERR_DEPTH, off,
		               "depth limit (%zu open elements) reached at offset %zu",
		               d->max_depth, off);
	n = node_append(d->doc, d->cur, d->page, token, name);
	if (b & TAG_CONTENT) {
		d->cur = n;
		d->depth++;
	} else if (d->cur == NULL) {
		d->done = true; /* a root without content */
	}
	return WBXML_OK;
}

/* Close the innermost element at offset off, storing its collected content. */
static enum wbxml_err
decode_end(struct decoder *d, size_t off)
{
	struct wbxml_node *n = d->cur;

	if (n == NULL)
		return set_err(d->err, WBXML_ERR_UNEXPECTED, off,
		               "END outside any element at offset %zu", off);
	if (d->pending_kind != 0) {
		n->data = arena_copy(d->doc, d->pending.p, d->pending.len);
		n->len = d->pending.len;
		n->flags |= d->pending_kind;
		d->pending.len = 0;
		d->pending_kind = 0;
	}
	d->cur = n->parent;
	d->depth--;
	if (d->depth == 0)
		d->done = true;
	return WBXML_OK;
}

/* Append text or opaque bytes to the content of the innermost element. */
static enum wbxml_err
decode_content(struct decoder *d, uint8_t kind, const uint8_t *p, size_t n, size_t off)
{
	char q[96];

	if (d->cur == NULL)
		return set_err(d->err, d->done ? WBXML_ERR_TRAILING : WBXML_ERR_UNEXPECTED, off,
		               "%s outside any element at offset %zu",
		               kind == WBXML_NODE_TEXT ? "string" : "opaque data", off);
	if (d->cur->first_child != NULL || (d->pending_kind != 0 && d->pending_kind != kind))
		return set_err(d->err, WBXML_ERR_MIXED, off,
		               "element %s mixes %s with other content at offset %zu",
		               wbxml_qname(d->cur, q, sizeof(q)),
		               kind == WBXML_NODE_TEXT ? "text" : "opaque data", off);
	d->pending_kind = kind;
	dbuf_add(&d->pending, p, n);
	return WBXML_OK;
}

/* Decode one token of the body at d->pos. */
static enum wbxml_err
decode_token(struct decoder *d)
{
	size_t off = d->pos;
	uint8_t b = d->buf[d->pos++];
	enum wbxml_err e;
	uint32_t n;

	switch (b) {
	case TOK_SWITCH_PAGE:
		if (d->pos >= d->len)
			return truncated(d, "SWITCH_PAGE");
		b = d->buf[d->pos++];
		if (b >= WBXML_NPAGES)
			return set_err(d->err, WBXML_ERR_UNKNOWN_PAGE, off,
			               "unknown code page %u at offset %zu", b, off);
		if (d->done)
			return set_err(d->err, WBXML_ERR_TRAILING, off,
			               "SWITCH_PAGE after the root element at offset %zu", off);
		d->page = b;
		return WBXML_OK;
	case TOK_END:
		return decode_end(d, off);
	case TOK_STR_I: {
		const uint8_t *s = d->buf + d->pos;
		const uint8_t *nul = memchr(s, 0, d->len - d->pos);

		if (nul == NULL)
			return set_err(d->err, WBXML_ERR_UNTERMINATED_STR, off,
			               "string not terminated (STR_I at offset %zu)", off);
		d->pos += (size_t)(nul - s) + 1;
		return decode_content(d, WBXML_NODE_TEXT, s, (size_t)(nul - s), off);
	}
	case TOK_OPAQUE:
		if ((e = read_mbuint(d, &n, "OPAQUE length")) != WBXML_OK)
			return e;
		if (n > d->len - d->pos)
			return set_err(d->err, WBXML_ERR_TRUNCATED, d->len,
			               "truncated input at offset %zu (OPAQUE at offset %zu "
			               "announces %u bytes)",
			               d->len, off, n);
		d->pos += n;
		return decode_content(d, WBXML_NODE_OPAQUE, d->buf + d->pos - n, n, off);
	case TOK_ENTITY:
	case TOK_LITERAL:
	case TOK_PI:
	case TOK_LITERAL_C:
	case TOK_LITERAL_A:
	case TOK_LITERAL_AC:
	case TOK_STR_T:
		return set_err(
		    d->err, WBXML_ERR_UNSUPPORTED, off,
		    "token 0x%02X (entity, literal, PI or string table reference) is not "
		    "used by ActiveSync, at offset %zu",
		    b, off);
	default:
		if ((b >= TOK_EXT_I_0 && b <= TOK_EXT_I_2) ||
		    (b >= TOK_EXT_T_0 && b <= TOK_EXT_T_2) || (b >= TOK_EXT_0 && b <= TOK_EXT_2))
			return set_err(d->err, WBXML_ERR_EXTENSION, off,
			               "extension tokens not supported (0x%02X at offset %zu)", b,
			               off);
		return decode_tag(d, b, off);
	}
}

/* Decode a whole ActiveSync WBXML document (see wbxml.h). */
enum wbxml_err
wbxml_decode(const uint8_t *buf, size_t len, const struct wbxml_limits *limits,
             struct wbxml_doc **doc_r, struct wbxml_error *err_r)
{
	struct decoder d = {0};
	size_t max_input = WBXML_DEFAULT_MAX_INPUT;
	enum wbxml_err e;

	if (err_r != NULL) {
		err_r->code = WBXML_OK;
		err_r->offset = 0;
		err_r->msg[0] = '\0';
	}
	if (doc_r == NULL)
		return set_err(err_r, WBXML_ERR_INVALID, 0, "no place for the document");
	*doc_r = NULL;
	if (buf == NULL && len > 0)
		return set_err(err_r, WBXML_ERR_INVALID, 0, "no input buffer");
	d.max_depth = WBXML_DEFAULT_MAX_DEPTH;
	d.max_nodes = WBXML_DEFAULT_MAX_NODES;
	if (limits != NULL) {
		if (limits->max_input)
			max_input = limits->max_input;
		if (limits->max_depth)
			d.max_depth = limits->max_depth;
		if (limits->max_nodes)
			d.max_nodes = limits->max_nodes;
	}
	if (len > max_input)
		return set_err(err_r, WBXML_ERR_TOO_LARGE, 0,
		               "input of %zu bytes exceeds the limit of %zu", len, max_input);
	d.buf = buf;
	d.len = len;
	d.err = err_r;
	if ((e = read_header(&d)) != WBXML_OK)
		return e;
	d.doc = wbxml_doc_new();
	while (d.pos < d.len) {
		if ((e = decode_token(&d)) != WBXML_OK)
			goto fail;
	}
	if (d.doc->root == NULL) {
		e = set_err(err_r, WBXML_ERR_EMPTY, d.len,
		            "no root element (input ends at offset %zu)", d.len);
		goto fail;
	}
	if (!d.done) {
		e = set_err(err_r, WBXML_ERR_TRUNCATED, d.len,
		            "truncated input at offset %zu (%zu element%s still open)", d.len,
		            d.depth, d.depth == 1 ? "" : "s");
		goto fail;
	}
	free(d.pending.p);
	*doc_r = d.doc;
	return WBXML_OK;
fail:
	free(d.pending.p);
	wbxml_doc_free(&d.doc);
	return e;
}

/* ---- Encoder ---- */

/* Append a multi-byte unsigned integer (at most 5 bytes for 32 bits). */
static void
put_mbuint(struct dbuf *b, uint32_t v)
{
	uint8_t tmp[5];
	int n = 0;

	do {
		tmp[n++] = v & 0x7F;
		v >>= 7;
	} while (v != 0);
	while (n > 1)
		dbuf_byte(b, tmp[--n] | 0x80);
	dbuf_byte(b, tmp[0]);
}

/* True if the element is written with the content bit (children, text or opaque data). */
static bool
has_content(const struct wbxml_node *n)
{
	return n->first_child != NULL || (n->flags & (WBXML_NODE_TEXT | WBXML_NODE_OPAQUE)) != 0;
}

/* Write one start tag and the element's own content; the END comes later. */
static enum wbxml_err
encode_start(struct dbuf *b, const struct wbxml_node *n, unsigned *page, struct wbxml_error *err)
{
	if (wbxml_tag_name(n->page, n->token) == NULL)
		return set_err(err, WBXML_ERR_UNKNOWN_TOKEN, 0, "unknown token 0x%02X on page %u",
		               n->token, n->page);
	if (n->page != *page) {
		dbuf_byte(b, TOK_SWITCH_PAGE);
		dbuf_byte(b, n->page);
		*page = n->page;
	}
	dbuf_byte(b, n->token | (has_content(n) ? TAG_CONTENT : 0));
	if (n->flags & WBXML_NODE_TEXT) {
		if (memchr(n->data, 0, n->len) != NULL)
			return set_err(err, WBXML_ERR_INVALID, 0, "text of %s:%s holds a NUL",
			               wbxml_page_name(n->page), n->name);
		dbuf_byte(b, TOK_STR_I);
		dbuf_add(b, n->data, n->len);
		dbuf_byte(b, 0);
	} else if (n->flags & WBXML_NODE_OPAQUE) {
		if (n->len > UINT32_MAX)
			return set_err(err, WBXML_ERR_INVALID, 0,
			               "opaque data of %zu bytes is too large", n->len);
		dbuf_byte(b, TOK_OPAQUE);
		put_mbuint(b, (uint32_t)n->len);
		dbuf_add(b, n->data, n->len);
	}
	return WBXML_OK;
}

/*
 * Encode a document by walking the tree without recursion: down to the first
 * child, else across to the next sibling, closing every element left behind.
 */
enum wbxml_err
wbxml_encode(const struct wbxml_doc *doc, uint8_t **buf_r, size_t *len_r, struct wbxml_error *err_r)
{
	static const uint8_t header[] = {WBXML_VERSION_13, PUBLIC_ID_UNKNOWN, 0x6A, 0x00};
	struct dbuf b = {0};
	const struct wbxml_node *n, *root;
	unsigned page = 0;
	enum wbxml_err e;

	if (err_r != NULL) {
		err_r->code = WBXML_OK;
		err_r->offset = 0;
		err_r->msg[0] = '\0';
	}
	if (buf_r == NULL || len_r == NULL || doc == NULL)
		return set_err(err_r, WBXML_ERR_INVALID, 0, "missing document or output");
	*buf_r = NULL;
	*len_r = 0;
	if (doc->build_failed)
		return set_err(err_r, WBXML_ERR_BUILD, 0, "%s", doc->build_msg);
	root = doc->root;
	if (root == NULL)
		return set_err(err_r, WBXML_ERR_EMPTY, 0, "no root element");
	dbuf_add(&b, header, sizeof(header));
	n = root;
	for (;;) {
		if ((e = encode_start(&b, n, &page, err_r)) != WBXML_OK) {
			free(b.p);
			return e;
		}
		if (n->first_child != NULL) {
			n = n->first_child;
			continue;
		}
		if (has_content(n))
			dbuf_byte(&b, TOK_END);
		while (n != root && n->next == NULL) {
			n = n->parent;
			dbuf_byte(&b, TOK_END);
		}
		if (n == root)
			break;
		n = n->next;
	}
	*buf_r = b.p;
	*len_r = b.len;
	return WBXML_OK;
}

/* ---- Builder ---- */

/* Record the first builder failure of doc; wbxml_encode() reports it. */
static void build_fail(struct wbxml_doc *doc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
build_fail(struct wbxml_doc *doc, const char *fmt, ...)
{
	va_list ap;

	if (doc == NULL || doc->build_failed)
		return;
	doc->build_failed = true;
	va_start(ap, fmt);
	vsnprintf(doc->build_msg, sizeof(doc->build_msg), fmt, ap);
	va_end(ap);
}

/* Create (page, token) under parent (NULL: as the root of doc), checking everything. */
static struct wbxml_node *
build_node(struct wbxml_doc *doc, struct wbxml_node *parent, unsigned page, unsigned token)
{
	const char *name = wbxml_tag_name(page, token);
	char q[96];

	if (doc == NULL)
		return NULL;
	if (name == NULL) {
		build_fail(doc, "unknown token 0x%02X on page %u", token, page);
		return NULL;
	}
	if (parent == NULL && doc->root != NULL) {
		build_fail(doc, "the document already has a root element");
		return NULL;
	}
	if (parent != NULL && (parent->flags & (WBXML_NODE_TEXT | WBXML_NODE_OPAQUE))) {
		build_fail(doc, "element %s holds text and cannot take children",
		           wbxml_qname(parent, q, sizeof(q)));
		return NULL;
	}
	return node_append(doc, parent, page, token, name);
}

/* Create the root element (page, token) of an empty document. */
struct wbxml_node *
wbxml_add_root(struct wbxml_doc *doc, unsigned page, unsigned token)
{
	return build_node(doc, NULL, page, token);
}

/* Append a child element (page, token) to parent. */
struct wbxml_node *
wbxml_add(struct wbxml_node *parent, unsigned page, unsigned token)
{
	if (parent == NULL)
		return NULL;
	return build_node(parent->doc, parent, page, token);
}

/* Append a child element holding text. */
struct wbxml_node *
wbxml_add_text(struct wbxml_node *parent, unsigned page, unsigned token, const char *text)
{
	struct wbxml_node *n = wbxml_add(parent, page, token);

	if (n == NULL || text == NULL)
		return n;
	if (wbxml_set_text(n, text, strlen(text)) != 0)
		return NULL;
	return n;
}

/* Append a child element holding opaque bytes. */
struct wbxml_node *
wbxml_add_opaque(struct wbxml_node *parent, unsigned page, unsigned token, const void *data,
                 size_t len)
{
	struct wbxml_node *n = wbxml_add(parent, page, token);

	if (n == NULL)
		return NULL;
	if (wbxml_set_opaque(n, data, len) != 0)
		return NULL;
	return n;
}

/* Resolve a qualified name for the builder, recording a failure if it is unknown. */
static int
build_lookup(struct wbxml_doc *doc, const char *qname, unsigned default_page, unsigned *page,
             unsigned *token)
{
	if (wbxml_lookup(qname, default_page, page, token) == 0)
		return 0;
	build_fail(doc, "unknown element name '%s'", qname ? qname : "(null)");
	return -1;
}

/* Create the root element by qualified name. */
struct wbxml_node *
wbxml_addn_root(struct wbxml_doc *doc, const char *qname)
{
	unsigned page, token;

	if (doc == NULL || build_lookup(doc, qname, WBXML_NPAGES, &page, &token) != 0)
		return NULL;
	return build_node(doc, NULL, page, token);
}

/* Append a child element by name; a bare name is on the parent's page. */
struct wbxml_node *
wbxml_addn(struct wbxml_node *parent, const char *qname)
{
	unsigned page, token;

	if (parent == NULL || build_lookup(parent->doc, qname, parent->page, &page, &token) != 0)
		return NULL;
	return build_node(parent->doc, parent, page, token);
}

/* Append a child element with text, by name. */
struct wbxml_node *
wbxml_addn_text(struct wbxml_node *parent, const char *qname, const char *text)
{
	struct wbxml_node *n = wbxml_addn(parent, qname);

	if (n == NULL || text == NULL)
		return n;
	if (wbxml_set_text(n, text, strlen(text)) != 0)
		return NULL;
	return n;
}

/* Append a child element with opaque bytes, by name. */
struct wbxml_node *
wbxml_addn_opaque(struct wbxml_node *parent, const char *qname, const void *data, size_t len)
{
	struct wbxml_node *n = wbxml_addn(parent, qname);

	if (n == NULL)
		return NULL;
	if (wbxml_set_opaque(n, data, len) != 0)
		return NULL;
	return n;
}

/* Store content of the given kind in a childless element. */
static int
set_content(struct wbxml_node *node, uint8_t kind, const void *data, size_t len)
{
	char q[96];

	if (node == NULL || (data == NULL && len > 0))
		return -1;
	if (node->first_child != NULL) {
		build_fail(node->doc, "element %s has children and cannot hold content",
		           wbxml_qname(node, q, sizeof(q)));
		return -1;
	}
	if (kind == WBXML_NODE_TEXT && len > 0 && memchr(data, 0, len) != NULL) {
		build_fail(node->doc, "text for %s holds a NUL byte",
		           wbxml_qname(node, q, sizeof(q)));
		return -1;
	}
	node->data = arena_copy(node->doc, data, len);
	node->len = len;
	node->flags = (uint8_t)((node->flags & ~(WBXML_NODE_TEXT | WBXML_NODE_OPAQUE)) | kind);
	return 0;
}

/* Set the text of a childless element (len bytes, no NUL inside). */
int
wbxml_set_text(struct wbxml_node *node, const char *text, size_t len)
{
	return set_content(node, WBXML_NODE_TEXT, text, len);
}

/* Set the opaque bytes of a childless element. */
int
wbxml_set_opaque(struct wbxml_node *node, const void *data, size_t len)
{
	return set_content(node, WBXML_NODE_OPAQUE, data, len);
}

/* ---- Reading ---- */

/* The text of an element, or NULL if it holds none. */
const char *
wbxml_text(const struct wbxml_node *node)
{
	if (node == NULL || (node->flags & WBXML_NODE_TEXT) == 0)
		return NULL;
	return (const char *)node->data;
}

/* True if node is the element (page, token). */
bool
wbxml_is(const struct wbxml_node *node, unsigned page, unsigned token)
{
	return node != NULL && node->page == page && node->token == token;
}

/* Does element n match one path segment seg[0..len) ("Page:Tag" or "Tag")? */
static bool
segment_matches(const struct wbxml_node *n, const char *seg, size_t len)
{
	const char *colon = memchr(seg, ':', len);

	if (colon != NULL) {
		size_t plen = (size_t)(colon - seg);
		const char *pname = wbxml_page_name(n->page);

		if (strlen(pname) != plen || memcmp(pname, seg, plen) != 0)
			return false;
		len -= plen + 1;
		seg = colon + 1;
	}
	return strlen(n->name) == len && memcmp(n->name, seg, len) == 0;
}

/*
 * Find the first child of node matching the first segment of path whose own
 * subtree completes the rest of the path (backtracking over siblings).
 */
struct wbxml_node *
wbxml_find(const struct wbxml_node *node, const char *path)
{
	const char *slash;
	size_t len;

	if (node == NULL || path == NULL)
		return NULL;
	if (*path == '\0')
		return (struct wbxml_node *)node;
	slash = strchr(path, '/');
	len = slash ? (size_t)(slash - path) : strlen(path);
	for (struct wbxml_node *c = node->first_child; c != NULL; c = c->next) {
		struct wbxml_node *r;

		if (!segment_matches(c, path, len))
			continue;
		if (slash == NULL)
			return c;
		if ((r = wbxml_find(c, slash + 1)) != NULL)
			return r;
	}
	return NULL;
}

/* The text at path below node, or NULL. */
const char *
wbxml_find_text(const struct wbxml_node *node, const char *path)
{
	return wbxml_text(wbxml_find(node, path));
}

/* ---- XML rendering ---- */

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if the
 * bytes are not one: overlong forms, surrogates and code points above
 * U+10FFFF are invalid.
 */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t need;

	if (p[0] < 0xC2 || p[0] > 0xF4)
		return 0;
	need = p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
	if (n < need)
		return 0;
	cp = p[0] & (0x7F >> need);
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need;
}

/* Append text escaped for XML; bytes XML cannot carry become U+FFFD. */
static void
xml_escape(struct dbuf *b, const uint8_t *p, size_t n)
{
	static const char replacement[] = "\xEF\xBF\xBD";
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;

		if (c == '&')
			dbuf_str(b, "&amp;");
		else if (c == '<')
			dbuf_str(b, "&lt;");
		else if (c == '>')
			dbuf_str(b, "&gt;");
		else if (c == '"')
			dbuf_str(b, "&quot;");
		else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			dbuf_str(b, replacement);
		else if (c < 0x80)
			dbuf_byte(b, c);
		else if ((k = utf8_seq(p + i, n - i)) != 0) {
			dbuf_add(b, p + i, k);
			i += k;
			continue;
		} else
			dbuf_str(b, replacement);
		i++;
	}
}

/* Append the base64 encoding (RFC 4648, padded) of p[0..n). */
static void
put_base64(struct dbuf *b, const uint8_t *p, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};

		dbuf_add(b, q, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63],
		             i + 1 < n ? tbl[(v >> 6) & 63] : '=', '='};

		dbuf_add(b, q, 4);
	}
}

/* True for the elements whose text is a credential, hidden by WBXML_XML_REDACT. */
static bool
is_secret(const struct wbxml_node *n)
{
	return wbxml_is(n, WBXML_PAGE_SETTINGS, 0x15) ||       /* Settings:Password */
	       wbxml_is(n, WBXML_PAGE_ITEMOPERATIONS, 0x15) || /* ItemOperations:Password */
	       wbxml_is(n, WBXML_PAGE_SEARCH, 0x1F);           /* Search:Password */
}

/* True for the elements whose text is a message's content, left out by WBXML_XML_LEAVE_OUT. */
static bool
is_content(const struct wbxml_node *n)
{
	static const uint8_t content[][2] = {
	    {WBXML_PAGE_AIRSYNCBASE, 0x0B},       /* Data */
	    {WBXML_PAGE_AIRSYNCBASE, 0x18},       /* Preview */
	    {WBXML_PAGE_EMAIL, 0x0C},             /* Body (EAS 2.5) */
	    {WBXML_PAGE_EMAIL, 0x36},             /* MIMEData (EAS 2.5) */
	    {WBXML_PAGE_COMPOSEMAIL, 0x10},       /* Mime */
	    {WBXML_PAGE_EMAIL2, 0x06},            /* UmUserNotes */
	    {WBXML_PAGE_ITEMOPERATIONS, 0x0C},    /* Data */
	    {WBXML_PAGE_CONTACTS, 0x09},          /* Body (EAS 2.5) */
	    {WBXML_PAGE_CONTACTS, 0x3B},          /* CompressedRTF */
	    {WBXML_PAGE_CONTACTS, 0x3C},          /* Picture */
	    {WBXML_PAGE_CALENDAR, 0x0B},          /* Body (EAS 2.5) */
	    {WBXML_PAGE_CALENDAR, 0x10},          /* CompressedRTF */
	    {WBXML_PAGE_TASKS, 0x05},             /* Body (EAS 2.5) */
	    {WBXML_PAGE_TASKS, 0x21},             /* CompressedRTF */
	    {WBXML_PAGE_GAL, 0x12},               /* Data (a picture) */
	    {WBXML_PAGE_RESOLVERECIPIENTS, 0x1C}, /* Data (a picture) */
	};

	for (size_t i = 0; i < sizeof(content) / sizeof(content[0]); i++)
		if (wbxml_is(n, content[i][0], content[i][1]))
			return true;
	return false;
}

/* Newline and indentation before a tag at the given depth (pretty mode only). */
static void
xml_indent(struct dbuf *b, unsigned flags, size_t depth)
{
	if ((flags & WBXML_XML_PRETTY) == 0)
		return;
	dbuf_byte(b, '\n');
	for (size_t i = 0; i < depth; i++)
		dbuf_str(b, "  ");
}

/* Write the start tag of n (and its content, and "/>" if it has none). */
static void
xml_start(struct dbuf *b, const struct wbxml_node *n, const struct wbxml_node *top, unsigned flags)
{
	char tmp[48];

	dbuf_byte(b, '<');
	dbuf_str(b, n->name);
	if (n == top || n->page != n->parent->page) {
		dbuf_str(b, " xmlns=\"");
		dbuf_str(b, wbxml_page_name(n->page));
		dbuf_str(b, ":\"");
	}
	if (!has_content(n)) {
		dbuf_str(b, "/>");
		return;
	}
	dbuf_byte(b, '>');
	if ((flags & WBXML_XML_LEAVE_OUT) && (n->flags & (WBXML_NODE_TEXT | WBXML_NODE_OPAQUE)) &&
	    (is_secret(n) || is_content(n) || (n->flags & WBXML_NODE_OPAQUE))) {
		snprintf(tmp, sizeof(tmp), "[%zu bytes left out]", n->len);
		dbuf_str(b, tmp);
	} else if ((flags & WBXML_XML_REDACT) &&
	           (n->flags & (WBXML_NODE_TEXT | WBXML_NODE_OPAQUE)) &&
	           (is_secret(n) || (n->flags & WBXML_NODE_OPAQUE))) {
		snprintf(tmp, sizeof(tmp), "[%zu bytes hidden]", n->len);
		dbuf_str(b, tmp);
	} else if (n->flags & WBXML_NODE_TEXT) {
		xml_escape(b, n->data, n->len);
	} else if (n->flags & WBXML_NODE_OPAQUE) {
		put_base64(b, n->data, n->len);
	}
}

/* Write the end tag of n (nothing if it was written as an empty element). */
static void
xml_end(struct dbuf *b, const struct wbxml_node *n, unsigned flags, size_t depth)
{
	if (!has_content(n))
		return;
	if (n->first_child != NULL)
		xml_indent(b, flags, depth);
	dbuf_str(b, "</");
	dbuf_str(b, n->name);
	dbuf_byte(b, '>');
}

/* Render a subtree as XML, iteratively like the encoder (see wbxml.h). */
char *
wbxml_to_xml(const struct wbxml_node *node, unsigned flags)
{
	struct dbuf b = {0};
	const struct wbxml_node *n = node;
	size_t depth = 0;

	if (flags & WBXML_XML_HEADER) {
		dbuf_str(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
		if (flags & WBXML_XML_PRETTY)
			dbuf_byte(&b, '\n');
		dbuf_str(&b, "<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" "
		             "\"http://www.microsoft.com/\">");
	}
	while (n != NULL) {
		if (b.len > 0)
			xml_indent(&b, flags, depth);
		xml_start(&b, n, node, flags);
		if (n->first_child != NULL) {
			n = n->first_child;
			depth++;
			continue;
		}
		xml_end(&b, n, flags, depth);
		while (n != node && n->next == NULL) {
			n = n->parent;
			depth--;
			xml_end(&b, n, flags, depth);
		}
		if (n == node)
			break;
		n = n->next;
	}
	if (flags & WBXML_XML_PRETTY)
		dbuf_byte(&b, '\n');
	dbuf_byte(&b, '\0');
	return (char *)b.p;
}
