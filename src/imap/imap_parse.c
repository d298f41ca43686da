/*
 * imap_parse.c: the incremental IMAP response parser (imap_parse.h).
 *
 * Two layers. The framing layer (imap_parser_feed) cuts the byte stream into
 * responses: a response is a line, or a line ending in a literal announcement
 * "{N}" (or "~{N}") followed by N bytes and the rest of the line, and so on.
 * It holds the response's bytes in one capped buffer, exactly as sent, except
 * that a streamed literal (BODY[...]/BINARY[...] of a FETCH, when on_chunk is
 * set) goes to on_chunk and is replaced in the buffer by a marker: a NUL byte
 * (never valid in a line, so refused there) and its length in decimal. Status
 * responses (tagged, "* OK/NO/BAD/BYE/PREAUTH", "+") carry no literals: their
 * text is read to the end of the line whatever it ends with.
 *
 * The tree layer (parse_response) reads one complete response from that
 * buffer into nodes. Nodes come from blocks kept across responses; strings
 * are copied (unescaped, NUL-terminated) into one text area sized for the
 * response before parsing starts (a token never copies more than its bytes on
 * the wire plus its NUL), so no pointer moves while the tree is built.
 */
#include "imap/imap_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cbuf.h"
#include "lib/util.h"

enum pstate { P_LINE, P_LITERAL, P_STREAM, P_DEAD };

#define NODE_BLOCK 256

struct node_block {
	struct node_block *next;
	size_t used;
	struct imap_node n[NODE_BLOCK];
};

struct imap_parser {
	struct imap_parser_cbs cbs;
	void *arg;
	struct cbuf buf;   /* the response so far, as framed above */
	size_t line_start; /* where the current line segment starts in buf */
	uint64_t lit_left; /* bytes of the literal still to come */
	enum pstate state;
	bool first_seen; /* the first line of this response was classified */
	bool literals;   /* this response may carry literals (not a status) */
	struct imap_literal_info li;
	char li_item[128];
	/* The tree of the response being parsed. */
	struct node_block *blocks, *cur;
	size_t nnodes;
	char *text; /* the text area */
	size_t text_cap, text_used;
	char err[192];
	const char *dead; /* the error that killed the parser */
};

/* ---- the framing layer ---- */

/* A parser calling cbs with arg. */
struct imap_parser *
imap_parser_new(const struct imap_parser_cbs *cbs, void *arg)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->cbs = *cbs;
	p->arg = arg;
	cbuf_init(&p->buf, IMAP_RESPONSE_MAX);
	p->state = P_LINE;
	return p;
}

/* Free the parser and its blocks. */
void
imap_parser_free(struct imap_parser *p)
{
	struct node_block *b, *nb;

	if (p == NULL)
		return;
	for (b = p->blocks; b != NULL; b = nb) {
		nb = b->next;
		free(b);
	}
	cbuf_reset(&p->buf);
	free(p->text);
	free(p);
}

/* Whether no partial response is held. */
bool
imap_parser_idle(const struct imap_parser *p)
{
	return p->state == P_LINE && p->buf.len == 0;
}

/* Bytes of the response being read. */
size_t
imap_parser_held(const struct imap_parser *p)
{
	return p->buf.len;
}

static int fail(struct imap_parser *p, const char **errstr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Kill the parser with a message (formatted into p->err). Returns -1. */
static int
fail(struct imap_parser *p, const char **errstr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->state = P_DEAD;
	p->dead = p->err;
	*errstr = p->err;
	return -1;
}

static int parse_response(struct imap_parser *p, const char **errstr);

/*
 * Classify the first line of a response (s, n bytes with its CRLF): whether
 * literals may follow. A continuation and status responses carry none.
 */
static bool
may_have_literals(const char *s, size_t n)
{
	const char *sp, *w;
	size_t wl;

	if (n > 0 && s[0] == '+')
		return false;
	sp = memchr(s, ' ', n);
	if (sp == NULL)
		return true;
	w = sp + 1;
	wl = strcspn(w, " \r"); /* the buffer holds a CR before its end */
	if (wl > (size_t)(s + n - w))
		wl = (size_t)(s + n - w);
	if ((wl == 2 && (mem_ieq(w, "OK", 2) || mem_ieq(w, "NO", 2))) ||
	    (wl == 3 && (mem_ieq(w, "BAD", 3) || mem_ieq(w, "BYE", 3))) ||
	    (wl == 7 && mem_ieq(w, "PREAUTH", 7)))
		return false;
	return true;
}

/*
 * Whether the literal announced at buf[lit] (its '{' or '~') is a FETCH
 * BODY[...]/BINARY[...] value to stream: sets p->li (seq, item) if so.
 */
static bool
literal_streams(struct imap_parser *p, size_t lit)
{
	const char *b = p->buf.p;
	size_t i, end, start, nl;
	uint64_t seq = 0;

	if (p->cbs.on_chunk == NULL || lit < 2 || b[lit - 1] != ' ')
		return false;
	/* "* N FETCH (" */
	if (p->buf.len < 4 || b[0] != '*' || b[1] != ' ')
		return false;
	for (i = 2; i < lit && b[i] >= '0' && b[i] <= '9' && i < 12; i++)
		seq = seq * 10 + (uint64_t)(b[i] - '0');
	if (i == 2 || seq == 0 || seq > UINT32_MAX || i + 7 > lit || !mem_ieq(b + i, " FETCH ", 7))
		return false;
	end = lit - 1; /* the space before the literal */
	i = end;
	if (i > 0 && b[i - 1] == '>') {
		while (i > 0 && b[i - 1] != '<')
			i--;
		if (i == 0)
			return false;
		i--;
	}
	if (i == 0 || b[i - 1] != ']')
		return false;
	while (i > 0 && b[i - 1] != '[')
		i--;
	if (i == 0)
		return false;
	i--; /* at '[' */
	start = i;
	while (start > 0 && b[start - 1] != ' ' && b[start - 1] != '(')
		start--;
	nl = i - start;
	if (!((nl == 4 && mem_ieq(b + start, "BODY", 4)) ||
	      (nl == 6 && mem_ieq(b + start, "BINARY", 6))))
		return false;
	if (end - start >= sizeof(p->li_item))
		return false;
	memcpy(p->li_item, b + start, end - start);
	p->li_item[end - start] = '\0';
	for (char *c = p->li_item; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	p->li.seq = (uint32_t)seq;
	p->li.item = p->li_item;
	return true;
}

/*
 * A line segment ended (its LF is the last byte of buf): a literal follows,
 * or the response is complete and is parsed.
 */
static int
end_of_line(struct imap_parser *p, const char **errstr)
{
	char *s = p->buf.p + p->line_start;
	size_t n = p->buf.len - p->line_start, i, lit;
	uint64_t len = 0;
	int digits = 0;

	if (n < 2 || s[n - 2] != '\r')
		return fail(p, errstr, "line not ended by CRLF");
	if (memchr(s, '\0', n) != NULL)
		return fail(p, errstr, "NUL byte in a line");
	if (!p->first_seen) {
		p->first_seen = true;
		p->literals = may_have_literals(s, n);
	}
	/* "...{123}\r\n" or "...{123+}\r\n", maybe "~{123}" */
	if (p->literals && n >= 5 && s[n - 3] == '}') {
		i = n - 3;
		if (i > 0 && s[i - 1] == '+')
			i--;
		while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
			i--;
			digits++;
		}
		if (i > 0 && s[i - 1] == '{' && digits > 0) {
			if (digits > 18)
				return fail(p, errstr, "literal length too large");
			for (size_t k = i; k < i + (size_t)digits; k++)
				len = len * 10 + (uint64_t)(s[k] - '0');
			lit = p->line_start + i - 1;
			if (lit > 0 && p->buf.p[lit - 1] == '~')
				lit--;
			if (literal_streams(p, lit)) {
				char mark[24];
				int ml = snprintf(mark, sizeof(mark), "%c%llu", '\0',
				                  (unsigned long long)len);

				p->buf.len = (uint32_t)lit;
				if (cbuf_append(&p->buf, mark, (size_t)ml) < 0)
					return fail(p, errstr, "response longer than %d bytes",
					            IMAP_RESPONSE_MAX);
				p->line_start = p->buf.len;
				p->li.size = len;
				p->li.offset = 0;
				if (len == 0) {
					if (p->cbs.on_chunk(&p->li, "", 0, p->arg) < 0)
						return fail(p, errstr,
						            "stopped by the literal's reader");
					return 0;
				}
				p->lit_left = len;
				p->state = P_STREAM;
				return 0;
			}
			if (len > IMAP_LITERAL_MAX)
				return fail(p, errstr, "literal of %llu bytes over the cap of %d",
				            (unsigned long long)len, IMAP_LITERAL_MAX);
			if (p->buf.len + len > IMAP_RESPONSE_MAX)
				return fail(p, errstr, "response longer than %d bytes",
				            IMAP_RESPONSE_MAX);
			p->lit_left = len;
			if (len > 0)
				p->state = P_LITERAL;
			p->line_start = p->buf.len;
			return 0;
		}
	}
	if (parse_response(p, errstr) < 0)
		return -1;
	cbuf_clear(&p->buf, 64 * 1024);
	p->line_start = 0;
	p->first_seen = false;
	return 0;
}

/* Feed bytes: see imap_parse.h. */
int
imap_parser_feed(struct imap_parser *p, const char *data, size_t len, const char **errstr)
{
	while (len > 0) {
		size_t n;
		const char *lf;

		switch (p->state) {
		case P_DEAD:
			*errstr = p->dead;
			return -1;
		case P_LINE:
			lf = memchr(data, '\n', len);
			n = lf != NULL ? (size_t)(lf - data) + 1 : len;
			if (p->buf.len - p->line_start + n > IMAP_LINE_MAX)
				return fail(p, errstr, "line longer than %d bytes", IMAP_LINE_MAX);
			if (cbuf_append(&p->buf, data, n) < 0)
				return fail(p, errstr, "response longer than %d bytes",
				            IMAP_RESPONSE_MAX);
			data += n;
			len -= n;
			if (lf != NULL && end_of_line(p, errstr) < 0)
				return -1;
			break;
		case P_LITERAL:
			n = len < p->lit_left ? len : (size_t)p->lit_left;
			if (cbuf_append(&p->buf, data, n) < 0)
				return fail(p, errstr, "response longer than %d bytes",
				            IMAP_RESPONSE_MAX);
			data += n;
			len -= n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				p->state = P_LINE;
				p->line_start = p->buf.len;
			}
			break;
		case P_STREAM:
			n = len < p->lit_left ? len : (size_t)p->lit_left;
			if (p->cbs.on_chunk(&p->li, data, n, p->arg) < 0)
				return fail(p, errstr, "stopped by the literal's reader");
			p->li.offset += n;
			data += n;
			len -= n;
			p->lit_left -= n;
			if (p->lit_left == 0)
				p->state = P_LINE;
			break;
		}
	}
	if (p->state == P_DEAD) {
		*errstr = p->dead;
		return -1;
	}
	return 0;
}

/* ---- the tree layer ---- */

struct rd {
	struct imap_parser *p;
	const char *s, *end, *start;
	const char **errstr;
};

/* A malformed response: the message with where in the response. Returns -1. */
static int
rd_fail(struct rd *r, const char *what)
{
	snprintf(r->p->err, sizeof(r->p->err), "%s at byte %zu of a response", what,
	         (size_t)(r->s - r->start));
	*r->errstr = r->p->err;
	return -1;
}

/* A node from the blocks kept across responses, under IMAP_NODES_MAX. */
static struct imap_node *
node_new(struct rd *r, enum imap_node_type t)
{
	struct imap_parser *p = r->p;
	struct imap_node *n;

	if (p->nnodes >= IMAP_NODES_MAX) {
		rd_fail(r, "too many items in one response");
		return NULL;
	}
	if (p->cur == NULL || p->cur->used == NODE_BLOCK) {
		struct node_block *nb = p->cur != NULL ? p->cur->next : p->blocks;

		if (nb == NULL) {
			nb = xmalloc(sizeof(*nb));
			nb->next = NULL;
			if (p->cur != NULL)
				p->cur->next = nb;
			else
				p->blocks = nb;
		}
		nb->used = 0;
		p->cur = nb;
	}
	n = &p->cur->n[p->cur->used++];
	p->nnodes++;
	memset(n, 0, sizeof(*n));
	n->type = t;
	return n;
}

/* Copy n bytes into the text area, NUL-terminated. */
static char *
text_copy(struct imap_parser *p, const char *s, size_t n)
{
	char *t = p->text + p->text_used;

	memcpy(t, s, n);
	t[n] = '\0';
	p->text_used += n + 1;
	return t;
}

/* Whether c ends an atom (in a response code ']' does too). */
static bool
is_atom_end(char c, bool in_code)
{
	return c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n' || c == '"' || c == '{' ||
	       c == '\0' || (in_code && c == ']');
}

static int parse_value(struct rd *r, int depth, bool in_code, struct imap_node **out);

/* Values separated by spaces until stop (')' or ']' or the end). */
static int
parse_values(struct rd *r, int depth, bool in_code, char stop, struct imap_node **first,
             uint32_t *count)
{
	struct imap_node *last = NULL, *v = NULL;
	uint32_t k = 0;

	*first = NULL;
	for (;;) {
		while (r->s < r->end && *r->s == ' ')
			r->s++;
		if (r->s >= r->end) {
			if (stop != '\0')
				return rd_fail(r, stop == ')' ? "list not closed"
				                              : "response code not closed");
			break;
		}
		if (stop != '\0' && *r->s == stop)
			break;
		if (parse_value(r, depth, in_code, &v) < 0)
			return -1;
		if (last == NULL)
			*first = v;
		else
			last->next = v;
		last = v;
		k++;
		/* Lists may follow each other without a space (body-type-mpart). */
		if (r->s < r->end && *r->s != ' ' && *r->s != stop &&
		    !(v->type == IMAP_NODE_LIST && *r->s == '('))
			return rd_fail(r, "no space between items");
	}
	if (count != NULL)
		*count = k;
	return 0;
}

/* One value: list, quoted, literal, streamed literal, atom/number/NIL. */
static int
parse_value(struct rd *r, int depth, bool in_code, struct imap_node **out)
{
	struct imap_parser *p = r->p;
	struct imap_node *n;
	const char *a;
	unsigned char c = (unsigned char)*r->s;

	if (c == '(') {
		if (depth >= IMAP_DEPTH_MAX)
			return rd_fail(r, "lists nested too deep");
		if ((n = node_new(r, IMAP_NODE_LIST)) == NULL)
			return -1;
		r->s++;
		if (parse_values(r, depth + 1, in_code, ')', &n->child, &n->n) < 0)
			return -1;
		r->s++; /* ')' */
		*out = n;
		return 0;
	}
	if (c == '"') {
		char *t = p->text + p->text_used;
		size_t k = 0;

		r->s++;
		for (;;) {
			if (r->s >= r->end)
				return rd_fail(r, "quoted string not closed");
			c = (unsigned char)*r->s;
			if (c == '"')
				break;
			if (c == '\r' || c == '\n' || c == '\0')
				return rd_fail(r, "line break in a quoted string");
			if (c == '\\') {
				r->s++;
				if (r->s >= r->end || (*r->s != '\\' && *r->s != '"'))
					return rd_fail(r, "bad escape in a quoted string");
				c = (unsigned char)*r->s;
			}
			t[k++] = (char)c;
			r->s++;
		}
		r->s++;
		t[k] = '\0';
		p->text_used += k + 1;
		if ((n = node_new(r, IMAP_NODE_STRING)) == NULL)
			return -1;
		n->s = t;
		n->len = k;
		*out = n;
		return 0;
	}
	if (c == '{' || (c == '~' && r->s + 1 < r->end && r->s[1] == '{')) {
		uint64_t len = 0;

		r->s += c == '~' ? 2 : 1;
		while (r->s < r->end && *r->s >= '0' && *r->s <= '9')
			len = len * 10 + (uint64_t)(*r->s++ - '0'); /* at most 18 digits */
		if (r->s < r->end && *r->s == '+')
			r->s++;
		if (r->end - r->s < 3 || r->s[0] != '}' || r->s[1] != '\r' || r->s[2] != '\n')
			return rd_fail(r, "bad literal");
		r->s += 3;
		if ((uint64_t)(r->end - r->s) < len)
			return rd_fail(r, "literal cut short");
		if ((n = node_new(r, IMAP_NODE_STRING)) == NULL)
			return -1;
		n->s = text_copy(p, r->s, (size_t)len);
		n->len = (size_t)len;
		r->s += len;
		*out = n;
		return 0;
	}
	if (c == '\0') {
		uint64_t len = 0;

		r->s++;
		while (r->s < r->end && *r->s >= '0' && *r->s <= '9')
			len = len * 10 + (uint64_t)(*r->s++ - '0');
		if ((n = node_new(r, IMAP_NODE_STRING)) == NULL)
			return -1;
		n->s = "";
		n->len = (size_t)len;
		n->streamed = true;
		*out = n;
		return 0;
	}
	/* An atom: a flag (\Seen, \*), a FETCH item (BODY[HEADER.FIELDS (A B)]<0>). */
	a = r->s;
	while (r->s < r->end && !is_atom_end(*r->s, in_code)) {
		c = (unsigned char)*r->s;
		if (c < 0x20 || c == 0x7f)
			return rd_fail(r, "control character in an atom");
		if (c == '[' && !in_code) {
			while (r->s < r->end && *r->s != ']') {
				if ((unsigned char)*r->s < 0x20)
					return rd_fail(r, "section not closed");
				r->s++;
			}
			if (r->s >= r->end)
				return rd_fail(r, "section not closed");
		}
		if (c == '<' && r->s > a && r->s[-1] == ']') {
			r->s++;
			while (r->s < r->end && ((*r->s >= '0' && *r->s <= '9') || *r->s == '.'))
				r->s++;
			if (r->s >= r->end || *r->s != '>')
				return rd_fail(r, "partial origin not closed");
		}
		r->s++;
	}
	if (r->s == a) {
		char what[48];

		if (c >= 0x21 && c < 0x7f)
			snprintf(what, sizeof(what), "unexpected '%c'", c);
		else
			snprintf(what, sizeof(what), "unexpected byte 0x%02x", c);
		return rd_fail(r, what);
	}
	{
		size_t len = (size_t)(r->s - a), i;
		bool digits = len <= 18;

		for (i = 0; i < len && digits; i++)
			digits = a[i] >= '0' && a[i] <= '9';
		if (len == 3 && mem_ieq(a, "NIL", 3)) {
			if ((n = node_new(r, IMAP_NODE_NIL)) == NULL)
				return -1;
		} else if (digits) {
			if ((n = node_new(r, IMAP_NODE_NUMBER)) == NULL)
				return -1;
			for (i = 0; i < len; i++)
				n->num = n->num * 10 + (uint64_t)(a[i] - '0');
			n->s = text_copy(p, a, len);
			n->len = len;
		} else {
			if ((n = node_new(r, IMAP_NODE_ATOM)) == NULL)
				return -1;
			n->s = text_copy(p, a, len);
			n->len = len;
		}
	}
	*out = n;
	return 0;
}

/* A word up to a space or the end, upper-cased into the text area. */
static char *
read_word(struct rd *r, bool in_code)
{
	const char *a = r->s;
	char *w;

	while (r->s < r->end && *r->s != ' ' && !(in_code && *r->s == ']'))
		r->s++;
	w = text_copy(r->p, a, (size_t)(r->s - a));
	for (char *c = w; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	return w;
}

/* "[CODE args] text" or "text" after a status word. */
static int
parse_resp_text(struct rd *r, struct imap_response *out)
{
	out->code = NULL;
	out->code_args = NULL;
	if (r->s < r->end && *r->s == ' ')
		r->s++;
	if (r->s < r->end && *r->s == '[') {
		const char *save;

		r->s++;
		out->code = read_word(r, true);
		if (out->code[0] == '\0')
			return rd_fail(r, "empty response code");
		if (r->s < r->end && *r->s == ' ') {
			struct imap_node *first;
			size_t used = r->p->text_used, nn = r->p->nnodes;
			struct node_block *cur = r->p->cur;
			size_t cur_used = cur != NULL ? cur->used : 0;

			r->s++;
			save = r->s;
			if (parse_values(r, 0, true, ']', &first, NULL) < 0) {
				/* Not items: the arguments as one atom, up to ']'. */
				const char *e = memchr(save, ']', (size_t)(r->end - save));
				struct imap_node *n;

				if (e == NULL)
					return rd_fail(r, "response code not closed");
				r->p->text_used = used;
				r->p->nnodes = nn;
				r->p->cur = cur;
				if (cur != NULL)
					cur->used = cur_used;
				if ((n = node_new(r, IMAP_NODE_ATOM)) == NULL)
					return -1;
				n->s = text_copy(r->p, save, (size_t)(e - save));
				n->len = (size_t)(e - save);
				first = n;
				r->s = e;
			}
			out->code_args = first;
		}
		if (r->s >= r->end || *r->s != ']')
			return rd_fail(r, "response code not closed");
		r->s++;
		if (r->s < r->end && *r->s == ' ')
			r->s++;
	}
	out->text = text_copy(r->p, r->s, (size_t)(r->end - r->s));
	r->s = r->end;
	return 0;
}

/* Parse the complete response in p->buf and hand it to on_response. */
static int
parse_response(struct imap_parser *p, const char **errstr)
{
	struct imap_response resp;
	struct rd r = {.p = p, .errstr = errstr};
	size_t need = (size_t)p->buf.len * 2 + 64;
	const char *w;
	char *word;
	size_t wl;

	if (p->text_cap < need || p->text_cap > 256 * 1024 + need) {
		free(p->text);
		p->text_cap = need < 4096 ? 4096 : need;
		p->text = xmalloc(p->text_cap);
	}
	p->text_used = 0;
	p->nnodes = 0;
	p->cur = NULL;
	memset(&resp, 0, sizeof(resp));
	r.s = r.start = p->buf.p;
	r.end = p->buf.p + p->buf.len - 2; /* the last CRLF */

	if (*r.s == '+') {
		resp.kind = IMAP_RESP_CONTINUE;
		r.s++;
		if (r.s < r.end && *r.s == ' ')
			r.s++;
		resp.text = text_copy(p, r.s, (size_t)(r.end - r.s));
		goto deliver;
	}
	w = r.s;
	while (r.s < r.end && *r.s != ' ')
		r.s++;
	wl = (size_t)(r.s - w);
	if (r.s >= r.end)
		return rd_fail(&r, "response without a space after its tag");
	r.s++;
	if (wl == 1 && *w == '*') {
		const char *nw = r.s;
		uint64_t num = 0;
		size_t k;

		word = read_word(&r, false);
		k = strlen(word);
		if (strcmp(word, "OK") == 0 || strcmp(word, "NO") == 0 ||
		    strcmp(word, "BAD") == 0 || strcmp(word, "BYE") == 0 ||
		    strcmp(word, "PREAUTH") == 0) {
			resp.kind = IMAP_RESP_STATUS;
			resp.status = word[0] == 'O'   ? IMAP_OK
			              : word[0] == 'N' ? IMAP_NO
			              : word[1] == 'A' ? IMAP_BAD
			              : word[0] == 'B' ? IMAP_BYE
			                               : IMAP_PREAUTH;
			if (parse_resp_text(&r, &resp) < 0)
				return -1;
			goto deliver;
		}
		resp.kind = IMAP_RESP_DATA;
		if (k > 0 && strspn(word, "0123456789") == k) {
			if (k > 10)
				return rd_fail(&r, "message number too large");
			for (size_t i = 0; i < k; i++)
				num = num * 10 + (uint64_t)(nw[i] - '0');
			if (num > UINT32_MAX)
				return rd_fail(&r, "message number too large");
			resp.has_number = true;
			resp.number = (uint32_t)num;
			if (r.s >= r.end)
				return rd_fail(&r, "number without a name");
			r.s++;
			word = read_word(&r, false);
		}
		if (word[0] == '\0')
			return rd_fail(&r, "untagged response without a name");
		for (const char *c = word; *c != '\0'; c++)
			if ((unsigned char)*c < 0x21 || *c == '(' || *c == ')' || *c == '"' ||
			    *c == '{' || *c == '\\')
				return rd_fail(&r, "bad untagged response name");
		resp.name = word;
		if (r.s < r.end) {
			struct imap_node *first;

			r.s++;
			if (parse_values(&r, 0, false, '\0', &first, NULL) < 0)
				return -1;
			resp.data = first;
		}
		goto deliver;
	}
	if (wl > IMAP_TAG_MAX)
		return rd_fail(&r, "tag too long");
	for (size_t i = 0; i < wl; i++)
		if ((unsigned char)w[i] < 0x21 || (unsigned char)w[i] >= 0x7f || w[i] == '(' ||
		    w[i] == ')' || w[i] == '{' || w[i] == '"' || w[i] == '\\' || w[i] == '+' ||
		    w[i] == '%' || w[i] == '*')
			return rd_fail(&r, "bad tag");
	resp.kind = IMAP_RESP_TAGGED;
	resp.tag = text_copy(p, w, wl);
	word = read_word(&r, false);
	if (strcmp(word, "OK") == 0)
		resp.status = IMAP_OK;
	else if (strcmp(word, "NO") == 0)
		resp.status = IMAP_NO;
	else if (strcmp(word, "BAD") == 0)
		resp.status = IMAP_BAD;
	else
		return rd_fail(&r, "tagged response neither OK, NO nor BAD");
	if (parse_resp_text(&r, &resp) < 0)
		return -1;
deliver:
	if (resp.text == NULL)
		resp.text = "";
	if (p->cbs.on_response(&resp, p->arg) < 0) {
		snprintf(p->err, sizeof(p->err), "stopped by the response's reader");
		*errstr = p->err;
		return -1;
	}
	return 0;
}

/* ---- nodes ---- */

/* A node's text; NULL for NIL and lists. */
const char *
imap_node_str(const struct imap_node *n)
{
	if (n == NULL || n->type == IMAP_NODE_NIL || n->type == IMAP_NODE_LIST)
		return NULL;
	return n->s;
}

/* The index-th child of a list. */
const struct imap_node *
imap_node_child(const struct imap_node *n, uint32_t index)
{
	const struct imap_node *c;

	if (n == NULL || n->type != IMAP_NODE_LIST)
		return NULL;
	for (c = n->child; c != NULL && index > 0; c = c->next)
		index--;
	return c;
}

/* Whether a node is the atom s (case-insensitive). */
bool
imap_node_is(const struct imap_node *n, const char *s)
{
	return n != NULL && n->type == IMAP_NODE_ATOM && strcasecmp(n->s, s) == 0;
}

/* Append to buf (len bytes, NUL-terminated), cutting what does not fit. */
static void
dump_add(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
	if (*at + 1 >= len)
		return;
	if (n > len - 1 - *at)
		n = len - 1 - *at;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
}

/* Write nodes and their siblings into buf (see imap_node_dump). */
static void
dump_nodes(const struct imap_node *n, char *buf, size_t len, size_t *at)
{
	char tmp[48];

	for (; n != NULL; n = n->next) {
		switch (n->type) {
		case IMAP_NODE_ATOM:
			dump_add(buf, len, at, n->s, n->len);
			break;
		case IMAP_NODE_NUMBER:
			snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)n->num);
			dump_add(buf, len, at, tmp, strlen(tmp));
			break;
		case IMAP_NODE_STRING:
			if (n->streamed) {
				snprintf(tmp, sizeof(tmp), "<streamed %zu>", n->len);
				dump_add(buf, len, at, tmp, strlen(tmp));
				break;
			}
			dump_add(buf, len, at, "\"", 1);
			for (size_t i = 0; i < n->len; i++) {
				unsigned char c = (unsigned char)n->s[i];

				if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
					snprintf(tmp, sizeof(tmp), "\\x%02x", c);
					dump_add(buf, len, at, tmp, 4);
				} else {
					dump_add(buf, len, at, n->s + i, 1);
				}
			}
			dump_add(buf, len, at, "\"", 1);
			break;
		case IMAP_NODE_NIL:
			dump_add(buf, len, at, "NIL", 3);
			break;
		case IMAP_NODE_LIST:
			dump_add(buf, len, at, "(", 1);
			dump_nodes(n->child, buf, len, at);
			dump_add(buf, len, at, ")", 1);
			break;
		}
		if (n->next != NULL)
			dump_add(buf, len, at, " ", 1);
	}
}

/* A node list as one line of text. */
const char *
imap_node_dump(const struct imap_node *first, char *buf, size_t len)
{
	size_t at = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	dump_nodes(first, buf, len, &at);
	return buf;
}

/* A response as one line of text. */
const char *
imap_response_dump(const struct imap_response *r, char *buf, size_t len)
{
	static const char *const st[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};
	size_t at = 0;
	char tmp[64];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	switch (r->kind) {
	case IMAP_RESP_CONTINUE:
		dump_add(buf, len, &at, "+ ", 2);
		dump_add(buf, len, &at, r->text, strlen(r->text));
		return buf;
	case IMAP_RESP_TAGGED:
	case IMAP_RESP_STATUS:
		snprintf(tmp, sizeof(tmp), "%s %s", r->kind == IMAP_RESP_TAGGED ? r->tag : "*",
		         st[r->status]);
		dump_add(buf, len, &at, tmp, strlen(tmp));
		if (r->code != NULL) {
			dump_add(buf, len, &at, " [", 2);
			dump_add(buf, len, &at, r->code, strlen(r->code));
			if (r->code_args != NULL) {
				dump_add(buf, len, &at, " ", 1);
				dump_nodes(r->code_args, buf, len, &at);
			}
			dump_add(buf, len, &at, "]", 1);
		}
		dump_add(buf, len, &at, " text=", 6);
		dump_add(buf, len, &at, r->text, strlen(r->text));
		return buf;
	case IMAP_RESP_DATA:
		if (r->has_number)
			snprintf(tmp, sizeof(tmp), "* %u %s", r->number, r->name);
		else
			snprintf(tmp, sizeof(tmp), "* %.40s", r->name);
		dump_add(buf, len, &at, tmp, strlen(tmp));
		if (r->data != NULL) {
			dump_add(buf, len, &at, " ", 1);
			dump_nodes(r->data, buf, len, &at);
		}
		return buf;
	}
	return buf;
}

/* ---- modified UTF-7 ---- */

static const char mb64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* The value of a modified base64 character, -1 for none. */
static int
mb64_val(char c)
{
	const char *x = c != '\0' ? strchr(mb64, c) : NULL;

	return x != NULL ? (int)(x - mb64) : -1;
}

/* Append one code point as UTF-8 to out (cap bytes, room for the NUL). */
static int
put_utf8(char *out, size_t cap, size_t *at, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*at + n + 1 > cap)
		return -1;
	memcpy(out + *at, b, n);
	*at += n;
	return 0;
}

/* Modified UTF-7 to UTF-8. */
long
imap_mutf7_decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t i = 0, at = 0;

	if (cap == 0)
		return -1;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (at + 2 > cap)
				return -1;
			out[at++] = (char)c;
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			if (at + 2 > cap)
				return -1;
			out[at++] = '&';
			i++;
			continue;
		}
		{
			uint32_t bits = 0, hi_sur = 0;
			int nbits = 0, v;
			bool any = false;

			while (i < len && in[i] != '-') {
				if ((v = mb64_val(in[i])) < 0)
					return -1;
				bits = (bits << 6) | (uint32_t)v;
				nbits += 6;
				i++;
				if (nbits >= 16) {
					uint32_t u = (bits >> (nbits - 16)) & 0xffff;

					nbits -= 16;
					any = true;
					if (u >= 0xd800 && u <= 0xdbff) {
						if (hi_sur != 0)
							return -1;
						hi_sur = u;
						continue;
					}
					if (u >= 0xdc00 && u <= 0xdfff) {
						if (hi_sur == 0)
							return -1;
						u = 0x10000 + ((hi_sur - 0xd800) << 10) +
						    (u - 0xdc00);
						hi_sur = 0;
					} else if (hi_sur != 0) {
						return -1;
					}
					if (u >= 0x20 && u <= 0x7e)
						return -1; /* must have been written directly */
					if (put_utf8(out, cap, &at, u) < 0)
						return -1;
				}
			}
			if (i >= len || !any || hi_sur != 0 || nbits >= 6 ||
			    (bits & ((1u << nbits) - 1)) != 0)
				return -1;
			i++; /* '-' */
		}
	}
	out[at] = '\0';
	return (long)at;
}

/* The next code point of UTF-8 s (n bytes left): its length, 0 if invalid. */
static size_t
get_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t k, i;
	uint32_t v;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		k = 2;
		v = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		k = 3;
		v = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		k = 4;
		v = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if ((k == 3 && v < 0x800) || (k == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return k;
}

/* UTF-8 to modified UTF-7. */
long
imap_mutf7_encode(const char *in, size_t len, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, at = 0;

	if (cap == 0)
		return -1;
	while (i < len) {
		if (s[i] >= 0x20 && s[i] <= 0x7e) {
			size_t need = s[i] == '&' ? 2 : 1;

			if (at + need + 1 > cap)
				return -1;
			out[at++] = (char)s[i];
			if (s[i] == '&')
				out[at++] = '-';
			i++;
			continue;
		}
		/* A run of other characters: UTF-16, base64 with ',' for '/'. */
		{
			uint32_t bits = 0;
			int nbits = 0;

			if (at + 2 > cap)
				return -1;
			out[at++] = '&';
			while (i < len && !(s[i] >= 0x20 && s[i] <= 0x7e)) {
				uint32_t cp, units[2];
				size_t k = get_utf8(s + i, len - i, &cp), nu = 1;

				if (k == 0 || cp < 0x20)
					return -1;
				i += k;
				if (cp >= 0x10000) {
					units[0] = 0xd800 + ((cp - 0x10000) >> 10);
					units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
					nu = 2;
				} else {
					units[0] = cp;
				}
				for (size_t u = 0; u < nu; u++) {
					bits = (bits << 16) | units[u];
					nbits += 16;
					while (nbits >= 6) {
						if (at + 2 > cap)
							return -1;
						out[at++] = mb64[(bits >> (nbits - 6)) & 0x3f];
						nbits -= 6;
					}
				}
			}
			if (nbits > 0) {
				if (at + 2 > cap)
					return -1;
				out[at++] = mb64[(bits << (6 - nbits)) & 0x3f];
			}
			if (at + 2 > cap)
				return -1;
			out[at++] = '-';
		}
	}
	out[at] = '\0';
	return (long)at;
}
