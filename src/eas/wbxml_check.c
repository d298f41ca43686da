/*
 * wbxml_check.c: a structural check of ActiveSync WBXML in one pass (see
 * wbxml.h), for request bodies the gateway forwards without decoding them.
 *
 * Why hand-written: no Debian library validates WBXML against the EAS code
 * pages in one streaming pass. libwbxml (the only WBXML library packaged)
 * converts a whole document into a tree or XML, allocating as it goes; its
 * ActiveSync tables lack the Find page of EAS 16.1 and several 16.x tokens;
 * and it accepts string tables, attributes, extensions and other charsets
 * that ActiveSync never uses. What the gateway needs is the decoder of
 * wbxml.c without the tree: the same header, the same tokens, the same
 * structure rules and limits, in a byte loop with one table look-up per tag,
 * no copy and no allocation.
 *
 * The contract is that wbxml_check_limits() accepts exactly what
 * wbxml_decode() accepts with the same limits, and when both refuse they
 * agree on the error code and the offset. fuzz/fuzz_wbxml.c asserts this on
 * every input. The check therefore mirrors the decoder's order of tests (an
 * unknown tag is reported before trailing data, a bad page before a switch
 * after the root, ...), and keeps only the state the decoder's rules read:
 * the current page, the number of open elements, whether the root has
 * closed, the element count, and what the innermost open element holds so
 * far (nothing, children, text or opaque data). The decoder's tree answers
 * that last question from the innermost node; here one variable suffices,
 * because when an element closes its parent necessarily holds a child.
 *
 * Like the decoder, STR_I text is not checked for valid UTF-8 (the decoder
 * keeps the bytes; its XML rendering replaces invalid sequences), and a
 * multi-byte integer may carry leading zero groups as long as it fits in 5
 * bytes and 32 bits.
 */
#include "eas/wbxml.h"

#include <string.h>

/* WBXML global tokens (WAP-192) and the tag bits, as in wbxml.c. */
#define TOK_SWITCH_PAGE 0x00
#define TOK_END         0x01
#define TOK_ENTITY      0x02
#define TOK_STR_I       0x03
#define TOK_LITERAL     0x04
#define TOK_PI          0x43
#define TOK_LITERAL_C   0x44
#define TOK_STR_T       0x83
#define TOK_LITERAL_A   0x84
#define TOK_OPAQUE      0xC3
#define TOK_LITERAL_AC  0xC4
#define TAG_CONTENT     0x40
#define TAG_ATTRIBUTES  0x80
#define TAG_MASK        0x3F
#define TAG_FIRST       0x05 /* tokens below are global tokens */

#define WBXML_VERSION_13  0x03
#define PUBLIC_ID_UNKNOWN 0x01
#define CHARSET_UTF8      106

/* What the innermost open element holds so far. */
enum held { HELD_NOTHING, HELD_CHILDREN, HELD_TEXT, HELD_OPAQUE };

struct checker {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	size_t *errpos;
	const char **why;
};

/* Record a failure at offset off with a static reason; returns code. */
static enum wbxml_err
fail(struct checker *c, enum wbxml_err code, size_t off, const char *why)
{
	*c->errpos = off;
	*c->why = why;
	return code;
}

/*
 * Read a multi-byte unsigned integer (WAP-192 5.1) at c->pos, with the
 * decoder's rules: at most 5 bytes and 32 bits; a cut is reported at the end
 * of the input, an overflow at the integer's first byte.
 */
static enum wbxml_err
check_mbuint(struct checker *c, uint32_t *v)
{
	size_t start = c->pos;
	uint64_t acc = 0;

	for (int i = 0; i < 5; i++) {
		uint8_t b;

		if (c->pos >= c->len)
			return fail(c, WBXML_ERR_TRUNCATED, c->len,
			            "input ends inside a multi-byte integer");
		b = c->buf[c->pos++];
		acc = (acc << 7) | (b & 0x7F);
		if (acc > UINT32_MAX)
			break;
		if ((b & 0x80) == 0) {
			*v = (uint32_t)acc;
			return WBXML_OK;
		}
	}
	return fail(c, WBXML_ERR_MBUINT, start, "multi-byte integer longer than 32 bits");
}

/* The header ActiveSync uses and the decoder requires: 03 01 6A 00 (modulo integer forms). */
static enum wbxml_err
check_header(struct checker *c)
{
	enum wbxml_err e;
	uint32_t v;
	size_t off;

	if (c->len == 0)
		return fail(c, WBXML_ERR_TRUNCATED, 0, "empty input");
	if (c->buf[0] != WBXML_VERSION_13)
		return fail(c, WBXML_ERR_BAD_HEADER, 0, "WBXML version is not 1.3");
	c->pos = 1;
	off = c->pos;
	if ((e = check_mbuint(c, &v)) != WBXML_OK)
		return e;
	if (v != PUBLIC_ID_UNKNOWN)
		return fail(c, WBXML_ERR_BAD_HEADER, off, "public identifier is not 1");
	off = c->pos;
	if ((e = check_mbuint(c, &v)) != WBXML_OK)
		return e;
	if (v != CHARSET_UTF8)
		return fail(c, WBXML_ERR_BAD_HEADER, off, "charset is not UTF-8 (106)");
	off = c->pos;
	if ((e = check_mbuint(c, &v)) != WBXML_OK)
		return e;
	if (v != 0)
		return fail(c, WBXML_ERR_BAD_HEADER, off, "string table not empty");
	return WBXML_OK;
}

/* Why a global token ActiveSync does not use is refused, and its error code. */
static enum wbxml_err
unused_token(struct checker *c, uint8_t b, size_t off)
{
	switch (b) {
	case TOK_ENTITY:
		return fail(c, WBXML_ERR_UNSUPPORTED, off, "ENTITY token not used by ActiveSync");
	case TOK_PI:
		return fail(c, WBXML_ERR_UNSUPPORTED, off, "PI token not used by ActiveSync");
	case TOK_STR_T:
		return fail(c, WBXML_ERR_UNSUPPORTED, off, "STR_T without a string table");
	case TOK_LITERAL:
	case TOK_LITERAL_C:
	case TOK_LITERAL_A:
	case TOK_LITERAL_AC:
		return fail(c, WBXML_ERR_UNSUPPORTED, off, "LITERAL token not used by ActiveSync");
	default:
		return fail(c, WBXML_ERR_EXTENSION, off, "EXT token not used by ActiveSync");
	}
}

/*
 * The end of the STR_I string starting at p (its NUL), or NULL. EAS text is
 * mostly short (keys, ids, flags): a plain loop over the first bytes costs
 * less than a call; long text (bodies, MIME) goes to memchr().
 */
static inline const uint8_t *
find_nul(const uint8_t *p, const uint8_t *end)
{
	for (int i = 0; i < 16; i++, p++) {
		if (p == end)
			return NULL;
		if (*p == 0)
			return p;
	}
	return memchr(p, 0, (size_t)(end - p));
}

/* Check buf[0..len) against the decoder's rules and limits (see wbxml.h). */
enum wbxml_err
wbxml_check_limits(const uint8_t *buf, size_t len, const struct wbxml_limits *limits,
                   size_t *errpos, const char **why)
{
	size_t max_input = WBXML_DEFAULT_MAX_INPUT;
	size_t max_depth = WBXML_DEFAULT_MAX_DEPTH;
	size_t max_nodes = WBXML_DEFAULT_MAX_NODES;
	size_t dummy_pos;
	const char *dummy_why;
	struct checker c = {.buf = buf, .len = len};
	const char *const *tags = wbxml_codepages[0].tags;
	size_t pos, depth = 0, nodes = 0;
	enum held held = HELD_NOTHING;
	bool done = false;
	enum wbxml_err e;

	c.errpos = errpos != NULL ? errpos : &dummy_pos;
	c.why = why != NULL ? why : &dummy_why;
	if (buf == NULL && len > 0)
		return fail(&c, WBXML_ERR_INVALID, 0, "no input buffer");
	if (limits != NULL) {
		if (limits->max_input)
			max_input = limits->max_input;
		if (limits->max_depth)
			max_depth = limits->max_depth;
		if (limits->max_nodes)
			max_nodes = limits->max_nodes;
	}
	if (len > max_input)
		return fail(&c, WBXML_ERR_TOO_LARGE, 0, "input larger than the limit");
	if ((e = check_header(&c)) != WBXML_OK)
		return e;

	/* The body: pos stays in a register; c.pos is only used around OPAQUE lengths. */
	pos = c.pos;
	while (pos < len) {
		size_t off = pos;
		uint8_t b = buf[pos++];
		enum held kind;

		/* Tags first: they are most of the tokens. */
		if (b < TAG_ATTRIBUTES && (b & TAG_MASK) >= TAG_FIRST) {
			if (tags[b & TAG_MASK] == NULL)
				return fail(&c, WBXML_ERR_UNKNOWN_TOKEN, off,
				            "tag not defined on the current code page");
			if (done)
				return fail(&c, WBXML_ERR_TRAILING, off,
				            "element after the root element");
			if (held == HELD_TEXT || held == HELD_OPAQUE)
				return fail(
				    &c, WBXML_ERR_MIXED, off,
				    "element inside an element holding text or opaque data");
			if (nodes >= max_nodes)
				return fail(&c, WBXML_ERR_TOO_MANY_NODES, off, "too many elements");
			nodes++;
			if (b & TAG_CONTENT) {
				if (depth >= max_depth)
					return fail(&c, WBXML_ERR_DEPTH, off,
					            "elements nested too deep");
				depth++;
				held = HELD_NOTHING;
			} else if (depth == 0) {
				done = true; /* a root without content */
			} else {
				held = HELD_CHILDREN;
			}
			continue;
		}
		switch (b) {
		case TOK_END:
			if (depth == 0)
				return fail(&c, WBXML_ERR_UNEXPECTED, off,
				            "END without an open element");
			if (--depth == 0)
				done = true;
			held = HELD_CHILDREN; /* the parent holds the element just closed */
			continue;
		case TOK_STR_I: {
			const uint8_t *nul = find_nul(buf + pos, buf + len);

			if (nul == NULL)
				return fail(&c, WBXML_ERR_UNTERMINATED_STR, off,
				            "STR_I without its terminating NUL");
			pos = (size_t)(nul - buf) + 1;
			kind = HELD_TEXT;
			break;
		}
		case TOK_OPAQUE: {
			uint32_t n;

			c.pos = pos;
			if ((e = check_mbuint(&c, &n)) != WBXML_OK)
				return e;
			pos = c.pos;
			if (n > len - pos)
				return fail(&c, WBXML_ERR_TRUNCATED, len,
				            "OPAQUE length past the end of the input");
			pos += n;
			kind = HELD_OPAQUE;
			break;
		}
		case TOK_SWITCH_PAGE:
			if (pos >= len)
				return fail(&c, WBXML_ERR_TRUNCATED, len,
				            "input ends inside SWITCH_PAGE");
			b = buf[pos++];
			if (b >= WBXML_NPAGES)
				return fail(&c, WBXML_ERR_UNKNOWN_PAGE, off,
				            "SWITCH_PAGE to an undefined code page");
			if (done)
				return fail(&c, WBXML_ERR_TRAILING, off,
				            "SWITCH_PAGE after the root element");
			tags = wbxml_codepages[b].tags;
			continue;
		default:
			if ((b & TAG_MASK) >= TAG_FIRST)
				return fail(&c, WBXML_ERR_ATTRIBUTES, off, "tag with attributes");
			return unused_token(&c, b, off);
		}
		/* Text (STR_I) or opaque data (OPAQUE) for the innermost element. */
		if (depth == 0)
			return fail(&c, done ? WBXML_ERR_TRAILING : WBXML_ERR_UNEXPECTED, off,
			            done ? "content after the root element"
			                 : "content before the root element");
		if (held != HELD_NOTHING && held != kind)
			return fail(&c, WBXML_ERR_MIXED, off,
			            "text or opaque data mixed with other content");
		held = kind;
	}
	if (nodes == 0)
		return fail(&c, WBXML_ERR_EMPTY, len, "no root element");
	if (!done)
		return fail(&c, WBXML_ERR_TRUNCATED, len, "elements still open at the end");
	return WBXML_OK;
}

/* Check buf[0..len) with the decoder's default limits: 0, or -1 with *errpos and *why. */
int
wbxml_check(const uint8_t *buf, size_t len, size_t *errpos, const char **why)
{
	return wbxml_check_limits(buf, len, NULL, errpos, why) == WBXML_OK ? 0 : -1;
}
