/*
 * vcard.c: the vCard reader, writer and card model (vcard.h).
 *
 * The reader goes line by line: a physical line ends at CRLF, LF or CR; a
 * logical line is a physical one and its continuations (a leading space or
 * tab), or, when its parameters say QUOTED-PRINTABLE, the physical lines
 * joined over soft breaks. Each logical line becomes a property with its
 * bytes as read; when END:VCARD closes the card and its version is known,
 * every value is decoded (quoted-printable, charset), turned into 3.0's
 * escapes if the card is 2.1, and cleaned to valid UTF-8.
 *
 * By hand, and why: see vcard.h.
 */
#include "pim/vcard.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/b64.h"
#include "lib/util.h"

#define FOLD_AT 75 /* octets of a written line, CRLF apart */

static const char REPL[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* ---- UTF-8 --------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

static bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	while (n > 0) {
		size_t k = utf8_seq(p, n);

		if (k == 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

char *
vcard_clean_utf8(const char *s, size_t len, bool keep_breaks)
{
	struct sbuf b = {0};
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0, i = 0;

	sbuf_addn(&b, "", 0);
	while (i < len) {
		size_t k = utf8_seq(p + i, len - i);
		bool bad = k == 0;

		if (k == 1) {
			unsigned char c = p[i];
			bad =
			    (c < 0x20 && c != '\t' && !(keep_breaks && (c == '\r' || c == '\n'))) ||
			    c == 0x7F;
		}
		if (bad) {
			sbuf_addn(&b, s + run, i - run);
			sbuf_addn(&b, REPL, 3);
			i++;
			run = i;
		} else
			i += k;
	}
	sbuf_addn(&b, s + run, len - run);
	return sbuf_take(&b);
}

/* ---- Charsets ------------------------------------------------------------ */

/* Windows-1252's 0x80-0x9F (0: undefined, read as ISO-8859-1). */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

static void
put_cp(struct sbuf *b, unsigned cp)
{
	char u[3];

	if (cp < 0x80) {
		u[0] = (char)cp;
		sbuf_addn(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		sbuf_addn(b, u, 2);
	} else {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		sbuf_addn(b, u, 3);
	}
}

/* Single-byte text (cp1252: Windows-1252, else ISO-8859-1) as UTF-8. */
static char *
from_8bit(const char *s, size_t n, bool cp1252, size_t *len_r)
{
	struct sbuf b = {0};

	sbuf_addn(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i];

		if (cp1252 && c >= 0x80 && c <= 0x9F && cp1252_high[c - 0x80] != 0)
			c = cp1252_high[c - 0x80];
		put_cp(&b, c);
	}
	*len_r = b.len;
	return sbuf_take(&b);
}

/* Text in charset through iconv; a byte it cannot convert becomes U+FFFD. NULL if unknown. */
static char *
from_iconv(const char *s, size_t n, const char *charset, size_t *len_r)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	struct sbuf b = {0};
	char *in = (char *)s;
	size_t left = n;
	char out[1024];

	if (cd == (iconv_t)-1)
		return NULL;
	sbuf_addn(&b, "", 0);
	while (left > 0) {
		char *o = out;
		size_t room = sizeof(out);
		size_t r = iconv(cd, &in, &left, &o, &room);

		sbuf_addn(&b, out, (size_t)(o - out));
		if (r == (size_t)-1 && errno != E2BIG) {
			/* EILSEQ or EINVAL (cut short): one byte replaced, then go on. */
			sbuf_addn(&b, REPL, 3);
			in++;
			left--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
	{
		char *o = out;
		size_t room = sizeof(out);
		iconv(cd, NULL, NULL, &o, &room);
		sbuf_addn(&b, out, (size_t)(o - out));
	}
	iconv_close(cd);
	*len_r = b.len;
	return sbuf_take(&b);
}

/*
 * s[0..n) in charset (NULL: undeclared) as UTF-8, line breaks kept (they are
 * escaped afterwards); invalid UTF-8 that is left becomes U+FFFD there.
 */
static char *
to_utf8(const char *s, size_t n, const char *charset, bool is21, size_t *len_r)
{
	char *r;

	if (charset != NULL &&
	    (strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "UTF8") == 0 ||
	     strcasecmp(charset, "US-ASCII") == 0))
		charset = NULL;
	if (charset == NULL) {
		if (is21 && !utf8_valid(s, n))
			return from_8bit(s, n, true, len_r);
		*len_r = n;
		return xmemdup0(s, n);
	}
	if (strcasecmp(charset, "WINDOWS-1252") == 0 || strcasecmp(charset, "CP1252") == 0)
		return from_8bit(s, n, true, len_r);
	if (strcasecmp(charset, "ISO-8859-1") == 0 || strcasecmp(charset, "ISO8859-1") == 0 ||
	    strcasecmp(charset, "LATIN1") == 0)
		return from_8bit(s, n, false, len_r);
	if ((r = from_iconv(s, n, charset, len_r)) != NULL)
		return r;
	/* A charset nobody knows: as if undeclared. */
	return to_utf8(s, n, NULL, is21, len_r);
}

/* ---- Quoted-printable ---------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode in place (soft breaks were joined by the reader); returns the new length. */
static size_t
qp_decode(char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int h, l;

		if (s[i] == '=' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			s[o++] = (char)(h * 16 + l);
			i += 2;
		} else
			s[o++] = s[i];
	}
	s[o] = '\0';
	return o;
}

/* ---- Properties ---------------------------------------------------------- */

static void
param_clear(struct vcard_param *p)
{
	free(p->name);
	for (size_t i = 0; i < p->nvalues; i++)
		free(p->values[i]);
	free(p->values);
}

static void
prop_free(struct vcard_prop *p)
{
	if (p == NULL)
		return;
	free(p->group);
	free(p->name);
	for (size_t i = 0; i < p->nparams; i++)
		param_clear(&p->params[i]);
	free(p->params);
	free(p->value);
	free(p);
}

bool
vcard_is(const struct vcard_prop *prop, const char *name)
{
	return prop != NULL && strcasecmp(prop->name, name) == 0;
}

struct vcard_param *
vcard_param(const struct vcard_prop *prop, const char *name)
{
	for (size_t i = 0; i < prop->nparams; i++)
		if (strcasecmp(prop->params[i].name, name) == 0)
			return &prop->params[i];
	return NULL;
}

const char *
vcard_param_value(const struct vcard_prop *prop, const char *name)
{
	struct vcard_param *p = vcard_param(prop, name);

	return p != NULL && p->nvalues > 0 ? p->values[0] : NULL;
}

static struct vcard_param *
param_new(struct vcard_prop *prop, const char *name, size_t namelen)
{
	struct vcard_param *p;

	prop->params = xrealloc(prop->params, (prop->nparams + 1) * sizeof(*prop->params));
	p = &prop->params[prop->nparams++];
	p->name = xmemdup0(name, namelen);
	p->values = NULL;
	p->nvalues = 0;
	return p;
}

static void
param_push(struct vcard_param *p, char *value)
{
	p->values = xrealloc(p->values, (p->nvalues + 1) * sizeof(*p->values));
	p->values[p->nvalues++] = value;
}

/* Parameter values hold no CR: a CRLF or a lone CR is a line feed (written ^n). */
static char *
clean_param(const char *s, size_t n)
{
	char *c = vcard_clean_utf8(s, n, true);
	size_t o = 0;

	for (size_t i = 0; c[i] != '\0'; i++) {
		if (c[i] == '\r') {
			if (c[i + 1] != '\n')
				c[o++] = '\n';
		} else
			c[o++] = c[i];
	}
	c[o] = '\0';
	return c;
}

void
vcard_param_add(struct vcard_prop *prop, const char *name, const char *value)
{
	struct vcard_param *p = param_new(prop, name, strlen(name));

	param_push(p, clean_param(value, strlen(value)));
}

void
vcard_param_add_list(struct vcard_prop *prop, const char *name, const char *const *values, size_t n)
{
	struct vcard_param *p = param_new(prop, name, strlen(name));

	for (size_t i = 0; i < n; i++)
		param_push(p, clean_param(values[i], strlen(values[i])));
}

void
vcard_param_remove(struct vcard_prop *prop, const char *name)
{
	size_t o = 0;

	for (size_t i = 0; i < prop->nparams; i++) {
		if (strcasecmp(prop->params[i].name, name) == 0)
			param_clear(&prop->params[i]);
		else
			prop->params[o++] = prop->params[i];
	}
	prop->nparams = o;
}

/* Whether the comma list s (one parameter value) holds item, any case. */
static bool
list_has(const char *s, const char *item)
{
	size_t n = strlen(item);

	while (*s != '\0') {
		const char *e = strchr(s, ',');
		size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
		const char *a = s, *z = s + len;

		while (a < z && (*a == ' ' || *a == '\t'))
			a++;
		while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		if ((size_t)(z - a) == n && strncasecmp(a, item, n) == 0)
			return true;
		if (e == NULL)
			break;
		s = e + 1;
	}
	return false;
}

bool
vcard_has_type(const struct vcard_prop *prop, const char *type)
{
	for (size_t i = 0; i < prop->nparams; i++) {
		const struct vcard_param *p = &prop->params[i];

		if (strcasecmp(p->name, "TYPE") != 0)
			continue;
		for (size_t k = 0; k < p->nvalues; k++)
			if (list_has(p->values[k], type))
				return true;
	}
	return false;
}

int
vcard_pref(const struct vcard_prop *prop)
{
	const char *v = vcard_param_value(prop, "PREF");

	if (v != NULL) {
		long long n;
		const char *err;

		if (parse_int(v, 1, 100, &n, &err) == 0)
			return (int)n;
	}
	return vcard_has_type(prop, "pref") ? 1 : 101;
}

void
vcard_set_pref(struct vcard *card, struct vcard_prop *prop, int rank)
{
	char buf[16];

	if (rank < 1 || rank > 100)
		rank = 1;
	if (card->version == VCARD_V40) {
		vcard_param_remove(prop, "PREF");
		snprintf(buf, sizeof(buf), "%d", rank);
		vcard_param_add(prop, "PREF", buf);
	} else if (!vcard_has_type(prop, "pref"))
		vcard_param_add(prop, "TYPE", "pref");
}

/* ---- Escapes ------------------------------------------------------------- */

char *
vcard_escape(const char *text)
{
	struct sbuf b = {0};
	char *r;

	sbuf_addn(&b, "", 0);
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '\\':
			sbuf_addn(&b, "\\\\", 2);
			break;
		case ',':
			sbuf_addn(&b, "\\,", 2);
			break;
		case ';':
			sbuf_addn(&b, "\\;", 2);
			break;
		case '\r':
			if (p[1] == '\n')
				p++;
			sbuf_addn(&b, "\\n", 2);
			break;
		case '\n':
			sbuf_addn(&b, "\\n", 2);
			break;
		default:
			sbuf_addn(&b, p, 1);
		}
	}
	r = vcard_clean_utf8(b.p, b.len, false);
	free(b.p);
	return r;
}

char *
vcard_unescape(const char *raw, size_t len)
{
	char *o = xmalloc(len + 1);
	size_t k = 0;

	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\\' && i + 1 < len) {
			char c = raw[i + 1];

			if (c == 'n' || c == 'N') {
				o[k++] = '\n';
				i++;
				continue;
			}
			/* "\:" is no escape of the RFCs, but Google writes URLs so. */
			if (c == ',' || c == ';' || c == '\\' || c == ':') {
				o[k++] = c;
				i++;
				continue;
			}
		}
		o[k++] = raw[i];
	}
	o[k] = '\0';
	return o;
}

char **
vcard_split(const char *raw, char sep, size_t *n_r)
{
	size_t n = 0, cap = 4;
	char **v = xmalloc(cap * sizeof(*v));
	const char *start = raw, *p = raw;

	for (;; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == sep || *p == '\0') {
			if (n + 2 > cap) {
				cap *= 2;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n++] = xstrndup(start, (size_t)(p - start));
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	v[n] = NULL;
	if (n_r != NULL)
		*n_r = n;
	return v;
}

void
vcard_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Line breaks in a raw value escaped (CRLF, CR, LF: \n), then cleaned. */
static char *
raw_clean(const char *s, size_t n)
{
	struct sbuf b = {0};
	char *r;

	sbuf_addn(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			sbuf_addn(&b, "\\n", 2);
		} else
			sbuf_addn(&b, s + i, 1);
	}
	r = vcard_clean_utf8(b.p, b.len, false);
	free(b.p);
	return r;
}

void
vcard_set_raw(struct vcard_prop *prop, const char *raw)
{
	char *v = raw_clean(raw, strlen(raw));

	free(prop->value);
	prop->value = v;
}

char *
vcard_text(const struct vcard_prop *prop)
{
	return vcard_unescape(prop->value, strlen(prop->value));
}

void
vcard_set_text(struct vcard_prop *prop, const char *text)
{
	free(prop->value);
	prop->value = vcard_escape(text);
}

char **
vcard_list(const struct vcard_prop *prop, size_t *n_r)
{
	size_t n;
	char **v = vcard_split(prop->value, ',', &n);

	for (size_t i = 0; i < n; i++) {
		char *u = vcard_unescape(v[i], strlen(v[i]));

		free(v[i]);
		v[i] = u;
	}
	if (n_r != NULL)
		*n_r = n;
	return v;
}

/* ---- The card ------------------------------------------------------------ */

struct vcard *
vcard_new(int version)
{
	struct vcard *c = xcalloc(1, sizeof(*c));

	c->version = version == VCARD_V40 ? VCARD_V40 : VCARD_V30;
	return c;
}

void
vcard_free(struct vcard *card)
{
	if (card == NULL)
		return;
	for (size_t i = 0; i < card->nprops; i++)
		prop_free(card->props[i]);
	free(card->props);
	free(card);
}

void
vcard_free_all(struct vcard **cards, size_t n)
{
	if (cards == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		vcard_free(cards[i]);
	free(cards);
}

static void
card_insert(struct vcard *card, size_t at, struct vcard_prop *p)
{
	if (card->nprops == card->cap) {
		card->cap = card->cap ? card->cap * 2 : 16;
		card->props = xrealloc(card->props, card->cap * sizeof(*card->props));
	}
	memmove(card->props + at + 1, card->props + at, (card->nprops - at) * sizeof(*card->props));
	card->props[at] = p;
	card->nprops++;
}

size_t
vcard_index(const struct vcard *card, const struct vcard_prop *prop)
{
	for (size_t i = 0; i < card->nprops; i++)
		if (card->props[i] == prop)
			return i;
	return card->nprops;
}

struct vcard_prop *
vcard_find(const struct vcard *card, const char *name, size_t *pos)
{
	for (size_t i = *pos; i < card->nprops; i++) {
		if (name == NULL || strcasecmp(card->props[i]->name, name) == 0) {
			*pos = i + 1;
			return card->props[i];
		}
	}
	*pos = card->nprops;
	return NULL;
}

struct vcard_prop *
vcard_get(const struct vcard *card, const char *name)
{
	size_t pos = 0;

	return vcard_find(card, name, &pos);
}

struct vcard_prop *
vcard_add_before(struct vcard *card, const struct vcard_prop *before, const char *group,
                 const char *name, const char *raw)
{
	struct vcard_prop *p = xcalloc(1, sizeof(*p));
	size_t at = before != NULL ? vcard_index(card, before) : card->nprops;

	p->group = group != NULL && *group != '\0' ? xstrdup(group) : NULL;
	p->name = xstrdup(name);
	p->value = raw_clean(raw, strlen(raw));
	card_insert(card, at, p);
	return p;
}

struct vcard_prop *
vcard_add(struct vcard *card, const char *group, const char *name, const char *raw)
{
	return vcard_add_before(card, NULL, group, name, raw);
}

struct vcard_prop *
vcard_add_text(struct vcard *card, const char *name, const char *text)
{
	struct vcard_prop *p = vcard_add(card, NULL, name, "");

	vcard_set_text(p, text);
	return p;
}

void
vcard_remove(struct vcard *card, struct vcard_prop *prop)
{
	size_t i = vcard_index(card, prop);

	if (i == card->nprops)
		return;
	memmove(card->props + i, card->props + i + 1,
	        (card->nprops - i - 1) * sizeof(*card->props));
	card->nprops--;
	prop_free(prop);
}

size_t
vcard_remove_all(struct vcard *card, const char *name)
{
	size_t o = 0, n = 0;

	for (size_t i = 0; i < card->nprops; i++) {
		if (strcasecmp(card->props[i]->name, name) == 0) {
			prop_free(card->props[i]);
			n++;
		} else
			card->props[o++] = card->props[i];
	}
	card->nprops = o;
	return n;
}

/* ---- Reading ------------------------------------------------------------- */

struct reader {
	const char *p, *end;
	const struct vcard_limits *lim;
	const char *errstr;
	struct sbuf line; /* the logical line being read */
};

/* The next physical line (without its break) into [*s, *s + *n); false at the end. */
static bool
phys_line(struct reader *r, const char **s, size_t *n)
{
	const char *p = r->p;

	if (p >= r->end)
		return false;
	*s = p;
	while (p < r->end && *p != '\n' && *p != '\r')
		p++;
	*n = (size_t)(p - *s);
	if (p < r->end && *p == '\r') {
		p++;
		if (p < r->end && *p == '\n')
			p++;
	} else if (p < r->end && *p == '\n')
		p++;
	r->p = p;
	return true;
}

static bool
name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static bool
is_encoding_word(const char *s, size_t n)
{
	static const char *const w[] = {"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (strlen(w[i]) == n && strncasecmp(s, w[i], n) == 0)
			return true;
	return false;
}

/*
 * A parameter value at *pp (quoted or not, RFC 6868 decoded), up to an
 * unquoted ',' ';' or ':' or the end; *pp is left on that character.
 * Returns the value (not yet cleaned), or NULL for an unclosed quote.
 */
static char *
param_value(const char **pp, const char *end)
{
	struct sbuf b = {0};
	const char *p = *pp;
	bool quoted = false;

	sbuf_addn(&b, "", 0);
	while (p < end) {
		char c = *p;

		if (c == '"') {
			quoted = !quoted;
			p++;
			continue;
		}
		if (!quoted && (c == ',' || c == ';' || c == ':'))
			break;
		if (c == '^' && p + 1 < end &&
		    (p[1] == '^' || p[1] == 'n' || p[1] == 'N' || p[1] == '\'')) {
			char d = p[1] == '^' ? '^' : p[1] == '\'' ? '"' : '\n';
			sbuf_addn(&b, &d, 1);
			p += 2;
			continue;
		}
		sbuf_addn(&b, &c, 1);
		p++;
	}
	*pp = p;
	if (quoted) {
		free(b.p);
		return NULL;
	}
	return sbuf_take(&b);
}

/*
 * Parse one logical line into a property (bytes of the value as read).
 * Returns the property, or NULL for a line to ignore (no name, no colon, an
 * unclosed quote), or NULL with r->errstr set for a cap.
 */
static struct vcard_prop *
parse_line(struct reader *r, const char *s, size_t n)
{
	const char *p = s, *end = s + n, *name, *dot = NULL;
	struct vcard_prop *prop;
	size_t nvalues = 0;

	while (p < end && (name_char(*p) || *p == '.')) {
		if (*p == '.')
			dot = p;
		p++;
	}
	if (p == end || (*p != ';' && *p != ':'))
		return NULL;
	name = dot != NULL ? dot + 1 : s;
	if (name == p || dot == s)
		return NULL;
	prop = xcalloc(1, sizeof(*prop));
	prop->group = dot != NULL ? xmemdup0(s, (size_t)(dot - s)) : NULL;
	prop->name = xmemdup0(name, (size_t)(p - name));
	while (p < end && *p == ';') {
		const char *pn = ++p;
		struct vcard_param *param = NULL;
		bool named, valid;

		while (p < end && *p != '=' && *p != ';' && *p != ':' && *p != ',' && *p != '"')
			p++;
		named = p < end && *p == '=';
		if (named) {
			valid = p > pn;
			for (const char *q = pn; q < p; q++)
				valid = valid && name_char(*q);
			if (valid)
				param = param_new(prop, pn, (size_t)(p - pn));
			p++;
		} else {
			/* 2.1's bare parameter ("TEL;CELL;HOME:"): a TYPE or ENCODING value. */
			p = pn;
			if (p < end && (*p == ';' || *p == ':'))
				continue;
		}
		for (;;) {
			char *v = param_value(&p, end);

			if (v == NULL)
				goto ignore;
			if (++nvalues > r->lim->max_params) {
				free(v);
				prop_free(prop);
				r->errstr =
				    "vCard: a property with more parameter values than its cap "
				    "(vcard_limits.max_params)";
				return NULL;
			}
			if (!named && param == NULL) {
				const char *pname =
				    is_encoding_word(v, strlen(v)) ? "ENCODING" : "TYPE";
				param = param_new(prop, pname, strlen(pname));
			}
			if (param != NULL)
				param_push(param, v);
			else
				free(v);
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			break;
		}
	}
	if (p >= end || *p != ':')
		goto ignore;
	p++;
	prop->value = xmemdup0(p, (size_t)(end - p));
	return prop;
ignore:
	prop_free(prop);
	return NULL;
}

/* Whether prop's ENCODING says quoted-printable. */
static bool
prop_is_qp(const struct vcard_prop *prop)
{
	for (size_t i = 0; i < prop->nparams; i++) {
		const struct vcard_param *p = &prop->params[i];

		if (strcasecmp(p->name, "ENCODING") != 0)
			continue;
		for (size_t k = 0; k < p->nvalues; k++)
			if (strcasecmp(p->values[k], "QUOTED-PRINTABLE") == 0)
				return true;
	}
	return false;
}

static bool
prop_is_b64(const struct vcard_prop *prop)
{
	for (size_t i = 0; i < prop->nparams; i++) {
		const struct vcard_param *p = &prop->params[i];

		if (strcasecmp(p->name, "ENCODING") != 0)
			continue;
		for (size_t k = 0; k < p->nvalues; k++)
			if (strcasecmp(p->values[k], "B") == 0 ||
			    strcasecmp(p->values[k], "BASE64") == 0)
				return true;
	}
	return false;
}

/* Append to the logical line, within the line cap. */
static bool
line_add(struct reader *r, const char *s, size_t n)
{
	if (r->line.len + n > r->lim->max_line) {
		r->errstr = "vCard: a line longer than its cap (vcard_limits.max_line)";
		return false;
	}
	sbuf_addn(&r->line, s, n);
	return true;
}

/*
 * A NUL inside a line becomes DEL: both end as U+FFFD in a value (and make
 * a name invalid), and the line can then be handled as a C string.
 */
static void
nul_to_del(struct sbuf *line)
{
	char *p = line->p, *end = line->p + line->len;

	while ((p = memchr(p, '\0', (size_t)(end - p))) != NULL)
		*p++ = 0x7F;
}

/*
 * The next logical line into r->line (NUL-terminated); false at the end of
 * the input or with r->errstr for a cap.
 */
static bool
logical_line(struct reader *r)
{
	const char *s;
	size_t n;
	bool qp = false;

	r->line.len = 0;
	if (r->line.p != NULL)
		r->line.p[0] = '\0';
	do {
		if (!phys_line(r, &s, &n))
			return false;
	} while (n == 0);
	if (!line_add(r, s, n))
		return false;
	/* Quoted-printable continues over soft breaks: its header is on this first line. */
	if (memchr(s, ':', n) != NULL) {
		for (size_t i = 0; i + 16 <= n && s[i] != ':'; i++) {
			if (strncasecmp(s + i, "QUOTED-PRINTABLE", 16) == 0) {
				/* Over a cap, the line is refused by its real parse anyway. */
				struct reader hr = {.lim = r->lim};
				struct vcard_prop *h;

				h = parse_line(&hr, s, n);
				qp = h != NULL && prop_is_qp(h);
				prop_free(h);
				break;
			}
		}
	}
	if (qp) {
		while (r->line.len > 0 && r->line.p[r->line.len - 1] == '=' && r->p < r->end) {
			r->line.len--;
			if (!phys_line(r, &s, &n) || !line_add(r, s, n))
				return r->errstr == NULL;
		}
		r->line.p[r->line.len] = '\0';
		nul_to_del(&r->line);
		return true;
	}
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t')) {
		phys_line(r, &s, &n);
		if (!line_add(r, s + 1, n - 1))
			return false;
	}
	nul_to_del(&r->line);
	return true;
}

/* Whether prop's value (bytes as read) is word, white space around it apart. */
static bool
value_is(const struct vcard_prop *prop, const char *word)
{
	const char *v = prop->value;
	size_t n = strlen(v), k = strlen(word);

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	return n == k && strncasecmp(v, word, k) == 0;
}

/* The decoded size of a base64 text (white space skipped). */
static size_t
b64_size(const char *s, size_t n)
{
	size_t c = 0, pad = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			pad++;
		else if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			c++;
	}
	(void)pad;
	return c / 4 * 3 + (c % 4 == 3 ? 2 : c % 4 == 2 ? 1 : 0);
}

/* Where a data: URI's base64 data starts, or NULL when v is no base64 data: URI. */
static const char *
data_uri_b64(const char *v)
{
	const char *comma;

	if (strncasecmp(v, "data:", 5) != 0 || (comma = strchr(v, ',')) == NULL)
		return NULL;
	if (comma - v < 12 || strncasecmp(comma - 7, ";base64", 7) != 0)
		return NULL;
	return comma + 1;
}

size_t
vcard_photo_size(const struct vcard_prop *prop)
{
	const char *d;

	if (prop_is_b64(prop))
		return b64_size(prop->value, strlen(prop->value));
	if ((d = data_uri_b64(prop->value)) != NULL)
		return b64_size(d, strlen(d));
	return 0;
}

/* How a 2.1 value's ',' and ';' go into 3.0. */
enum kind21 { K_OTHER, K_TEXT, K_STRUCT, K_LIST };

static enum kind21
kind21(const char *name)
{
	static const char *const text[] = {"FN",          "NOTE",  "TITLE", "ROLE",
	                                   "EMAIL",       "TEL",   "LABEL", "MAILER",
	                                   "SORT-STRING", "CLASS", "NAME"};
	static const char *const structured[] = {"N", "ADR", "ORG", "GEO"};

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		if (strcasecmp(name, text[i]) == 0)
			return K_TEXT;
	for (size_t i = 0; i < sizeof(structured) / sizeof(structured[0]); i++)
		if (strcasecmp(name, structured[i]) == 0)
			return K_STRUCT;
	if (strcasecmp(name, "CATEGORIES") == 0 || strcasecmp(name, "NICKNAME") == 0)
		return K_LIST;
	return K_OTHER;
}

/*
 * A decoded 2.1 value in 3.0's escapes: in 2.1 a backslash escapes only
 * ';' (and is otherwise itself), commas are plain text, line breaks come
 * from quoted-printable.
 */
static char *
escape21(const char *s, size_t n, enum kind21 k)
{
	struct sbuf b = {0};

	sbuf_addn(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\') {
			char d = i + 1 < n ? s[i + 1] : '\0';
			if (d == ';' || d == ',' || d == '\\' || d == 'n' || d == 'N') {
				sbuf_addn(&b, s + i, 2);
				i++;
			} else
				sbuf_addn(&b, "\\\\", 2);
		} else if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			sbuf_addn(&b, "\\n", 2);
		} else if (c == ',' && (k == K_TEXT || k == K_STRUCT)) {
			sbuf_addn(&b, "\\,", 2);
		} else if (c == ';' && k == K_TEXT) {
			sbuf_addn(&b, "\\;", 2);
		} else if (c == ';' && k == K_LIST) {
			sbuf_addn(&b, ",", 1);
		} else
			sbuf_addn(&b, &c, 1);
	}
	return sbuf_take(&b);
}

/*
 * ENCODING once the value is decoded: QUOTED-PRINTABLE, 8BIT and 7BIT say
 * nothing any more (and a written QUOTED-PRINTABLE would make a reader join
 * lines), 2.1's BASE64 is 3.0's b; a parameter left without values goes.
 */
static void
fix_encoding(struct vcard_prop *p)
{
	size_t o = 0;

	for (size_t i = 0; i < p->nparams; i++) {
		struct vcard_param *e = &p->params[i];
		size_t k2 = 0;

		if (strcasecmp(e->name, "ENCODING") == 0) {
			for (size_t k = 0; k < e->nvalues; k++) {
				char *v = e->values[k];

				if (strcasecmp(v, "QUOTED-PRINTABLE") == 0 ||
				    strcasecmp(v, "8BIT") == 0 || strcasecmp(v, "7BIT") == 0) {
					free(v);
					continue;
				}
				if (strcasecmp(v, "BASE64") == 0) {
					free(v);
					v = xstrdup("b");
				}
				e->values[k2++] = v;
			}
			e->nvalues = k2;
			if (k2 == 0) {
				param_clear(e);
				continue;
			}
		}
		p->params[o++] = *e;
	}
	p->nparams = o;
}

/* Decode one property's value now that the card's version is known. */
static void
finish_prop(struct vcard_prop *p, bool is21)
{
	const char *cs;
	size_t n = strlen(p->value);
	char *v, *t;
	bool qp = prop_is_qp(p);

	/* Parameter values: valid UTF-8. */
	for (size_t i = 0; i < p->nparams; i++) {
		for (size_t k = 0; k < p->params[i].nvalues; k++) {
			char *c =
			    clean_param(p->params[i].values[k], strlen(p->params[i].values[k]));
			free(p->params[i].values[k]);
			p->params[i].values[k] = c;
		}
	}
	cs = vcard_param_value(p, "CHARSET");
	if (prop_is_b64(p)) {
		/* Base64: white space out (2.1 indents it). */
		size_t o = 0;
		for (size_t i = 0; i < n; i++)
			if (p->value[i] != ' ' && p->value[i] != '\t')
				p->value[o++] = p->value[i];
		v = vcard_clean_utf8(p->value, o, false);
	} else {
		if (qp)
			n = qp_decode(p->value, n);
		t = to_utf8(p->value, n, cs, is21, &n);
		if (is21) {
			v = escape21(t, n, kind21(p->name));
			free(t);
			t = v;
			n = strlen(t);
		}
		v = raw_clean(t, n);
		free(t);
	}
	free(p->value);
	p->value = v;
	vcard_param_remove(p, "CHARSET");
	fix_encoding(p);
}

static void
finish_card(struct vcard *c, bool is21)
{
	for (size_t i = 0; i < c->nprops; i++)
		finish_prop(c->props[i], is21);
}

static void
limits_fill(struct vcard_limits *l, const struct vcard_limits *in)
{
	if (in != NULL)
		*l = *in;
	else
		memset(l, 0, sizeof(*l));
	if (l->max_input == 0)
		l->max_input = VCARD_DEFAULT_MAX_INPUT;
	if (l->max_line == 0)
		l->max_line = VCARD_DEFAULT_MAX_LINE;
	if (l->max_cards == 0)
		l->max_cards = VCARD_DEFAULT_MAX_CARDS;
	if (l->max_props == 0)
		l->max_props = VCARD_DEFAULT_MAX_PROPS;
	if (l->max_total == 0)
		l->max_total = VCARD_DEFAULT_MAX_TOTAL;
	if (l->max_params == 0)
		l->max_params = VCARD_DEFAULT_MAX_PARAMS;
	if (l->max_photo == 0)
		l->max_photo = VCARD_DEFAULT_MAX_PHOTO;
	if (l->max_depth == 0)
		l->max_depth = VCARD_DEFAULT_MAX_DEPTH;
}

int
vcard_parse(const char *buf, size_t len, const struct vcard_limits *limits, struct vcard ***cards_r,
            size_t *n_r, const char **errstr)
{
	struct vcard_limits lim;
	struct reader r;
	struct vcard **cards = NULL, *cur = NULL;
	size_t ncards = 0, depth = 0, total = 0;
	int version = 0;

	*cards_r = NULL;
	*n_r = 0;
	limits_fill(&lim, limits);
	if (len > lim.max_input) {
		*errstr = "vCard: input larger than its cap (vcard_limits.max_input)";
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.p = buf;
	r.end = buf + len;
	r.lim = &lim;
	while (logical_line(&r)) {
		struct vcard_prop *p = parse_line(&r, r.line.p, r.line.len);

		if (p == NULL) {
			if (r.errstr != NULL)
				break;
			continue;
		}
		if (cur == NULL) {
			/* Outside a card only BEGIN:VCARD counts. */
			if (vcard_is(p, "BEGIN") && value_is(p, "VCARD")) {
				if (ncards == lim.max_cards) {
					r.errstr = "vCard: more cards than its cap "
					           "(vcard_limits.max_cards)";
					prop_free(p);
					break;
				}
				cur = vcard_new(VCARD_V30);
				version = 0;
			}
			prop_free(p);
			continue;
		}
		if (depth > 0) {
			/* Inside a nested card (2.1's AGENT): skipped whole. */
			if (vcard_is(p, "END") && value_is(p, "VCARD"))
				depth--;
			if (!(vcard_is(p, "BEGIN") && value_is(p, "VCARD"))) {
				prop_free(p);
				continue;
			}
		}
		if (vcard_is(p, "BEGIN") && value_is(p, "VCARD")) {
			prop_free(p);
			if (++depth > lim.max_depth) {
				r.errstr = "vCard: cards nested deeper than the cap "
				           "(vcard_limits.max_depth)";
				break;
			}
			continue;
		}
		if (vcard_is(p, "END") && value_is(p, "VCARD")) {
			prop_free(p);
			cur->from_21 = version == 21;
			cur->version = version == 40 ? VCARD_V40 : VCARD_V30;
			finish_card(cur, version == 21);
			cards = xrealloc(cards, (ncards + 1) * sizeof(*cards));
			cards[ncards++] = cur;
			cur = NULL;
			continue;
		}
		if (vcard_is(p, "VERSION")) {
			if (version == 0)
				version = value_is(p, "2.1") ? 21 : value_is(p, "4.0") ? 40 : 30;
			prop_free(p);
			continue;
		}
		if (vcard_is(p, "PHOTO") && vcard_photo_size(p) > lim.max_photo) {
			prop_free(p);
			r.errstr = "vCard: a PHOTO larger than its cap (vcard_limits.max_photo)";
			break;
		}
		if (cur->nprops == lim.max_props) {
			prop_free(p);
			r.errstr = "vCard: a card with more properties than its cap "
			           "(vcard_limits.max_props)";
			break;
		}
		if (total++ == lim.max_total) {
			prop_free(p);
			r.errstr = "vCard: more properties in the input than its cap "
			           "(vcard_limits.max_total)";
			break;
		}
		card_insert(cur, cur->nprops, p);
	}
	free(r.line.p);
	if (r.errstr == NULL && cur != NULL)
		r.errstr = "vCard: the input ends inside a card (no END:VCARD)";
	if (r.errstr == NULL && ncards == 0)
		r.errstr = "vCard: no BEGIN:VCARD in the input";
	if (r.errstr != NULL) {
		vcard_free(cur);
		vcard_free_all(cards, ncards);
		*errstr = r.errstr;
		return -1;
	}
	*cards_r = cards;
	*n_r = ncards;
	return 0;
}

struct vcard *
vcard_parse_one(const char *buf, size_t len, const struct vcard_limits *limits, const char **errstr)
{
	struct vcard **cards, *c;
	size_t n;

	if (vcard_parse(buf, len, limits, &cards, &n, errstr) < 0)
		return NULL;
	if (n != 1) {
		vcard_free_all(cards, n);
		*errstr = "vCard: more than one card where one was expected";
		return NULL;
	}
	c = cards[0];
	free(cards);
	return c;
}

/* ---- Writing ------------------------------------------------------------- */

/* Append line[0..n) folded at FOLD_AT octets, never inside a UTF-8 sequence, and CRLF. */
static void
fold(struct sbuf *out, const char *line, size_t n)
{
	size_t pos = 0, room = FOLD_AT;

	while (n - pos > room) {
		size_t cut = pos + room;

		while (cut > pos && ((unsigned char)line[cut] & 0xC0) == 0x80)
			cut--;
		if (cut == pos)
			cut = pos + room;
		sbuf_addn(out, line + pos, cut - pos);
		sbuf_addn(out, "\r\n ", 3);
		pos = cut;
		room = FOLD_AT - 1;
	}
	sbuf_addn(out, line + pos, n - pos);
	sbuf_addn(out, "\r\n", 2);
}

static void
put_param_value(struct sbuf *b, const char *v)
{
	bool quote = v[strcspn(v, ",;:")] != '\0';

	if (quote)
		sbuf_addn(b, "\"", 1);
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '^' && (p[1] == '^' || p[1] == 'n' || p[1] == 'N' || p[1] == '\''))
			sbuf_addn(b, "^^", 2);
		else if (*p == '"')
			sbuf_addn(b, "^'", 2);
		else if (*p == '\n')
			sbuf_addn(b, "^n", 2);
		else
			sbuf_addn(b, p, 1);
	}
	if (quote)
		sbuf_addn(b, "\"", 1);
}

char *
vcard_write(const struct vcard *card, size_t *len_r)
{
	struct sbuf out = {0}, line = {0};

	sbuf_add(&out, "BEGIN:VCARD\r\n");
	sbuf_add(&out, card->version == VCARD_V40 ? "VERSION:4.0\r\n" : "VERSION:3.0\r\n");
	for (size_t i = 0; i < card->nprops; i++) {
		const struct vcard_prop *p = card->props[i];

		line.len = 0;
		if (p->group != NULL) {
			sbuf_add(&line, p->group);
			sbuf_addn(&line, ".", 1);
		}
		sbuf_add(&line, p->name);
		for (size_t k = 0; k < p->nparams; k++) {
			sbuf_addn(&line, ";", 1);
			sbuf_add(&line, p->params[k].name);
			sbuf_addn(&line, "=", 1);
			for (size_t j = 0; j < p->params[k].nvalues; j++) {
				if (j > 0)
					sbuf_addn(&line, ",", 1);
				put_param_value(&line, p->params[k].values[j]);
			}
		}
		sbuf_addn(&line, ":", 1);
		sbuf_add(&line, p->value);
		fold(&out, line.p, line.len);
	}
	sbuf_add(&out, "END:VCARD\r\n");
	free(line.p);
	if (len_r != NULL)
		*len_r = out.len;
	return sbuf_take(&out);
}

/* ---- Structured values --------------------------------------------------- */

char *
vcard_comp(const struct vcard_prop *prop, size_t i, const char *joiner)
{
	size_t n;
	char **comps = vcard_split(prop->value, ';', &n);
	struct sbuf b = {0};

	sbuf_addn(&b, "", 0);
	if (i < n) {
		size_t m;
		char **items = vcard_split(comps[i], ',', &m);
		bool first = true;

		for (size_t k = 0; k < m; k++) {
			char *u = vcard_unescape(items[k], strlen(items[k]));

			if (*u != '\0') {
				if (!first)
					sbuf_add(&b, joiner);
				sbuf_add(&b, u);
				first = false;
			}
			free(u);
		}
		vcard_strv_free(items);
	}
	vcard_strv_free(comps);
	return sbuf_take(&b);
}

void
vcard_set_comps(struct vcard_prop *prop, const char *const *comps, size_t n)
{
	size_t have;
	char **old = vcard_split(prop->value, ';', &have);
	struct sbuf b = {0};
	size_t total = have > n ? have : n;

	sbuf_addn(&b, "", 0);
	for (size_t i = 0; i < total; i++) {
		if (i > 0)
			sbuf_addn(&b, ";", 1);
		if (i < n && comps[i] != NULL) {
			char *e = vcard_escape(comps[i]);
			sbuf_add(&b, e);
			free(e);
		} else if (i < have)
			sbuf_add(&b, old[i]);
	}
	vcard_strv_free(old);
	free(prop->value);
	prop->value = sbuf_take(&b);
}

void
vcard_n_get(const struct vcard_prop *prop, struct vcard_n *n)
{
	n->family = vcard_comp(prop, 0, " ");
	n->given = vcard_comp(prop, 1, " ");
	n->additional = vcard_comp(prop, 2, " ");
	n->prefix = vcard_comp(prop, 3, " ");
	n->suffix = vcard_comp(prop, 4, " ");
}

void
vcard_n_clear(struct vcard_n *n)
{
	free(n->family);
	free(n->given);
	free(n->additional);
	free(n->prefix);
	free(n->suffix);
	memset(n, 0, sizeof(*n));
}

void
vcard_adr_get(const struct vcard_prop *prop, struct vcard_adr *a)
{
	a->pobox = vcard_comp(prop, 0, ", ");
	a->ext = vcard_comp(prop, 1, ", ");
	a->street = vcard_comp(prop, 2, "\n");
	a->locality = vcard_comp(prop, 3, ", ");
	a->region = vcard_comp(prop, 4, ", ");
	a->code = vcard_comp(prop, 5, ", ");
	a->country = vcard_comp(prop, 6, ", ");
}

void
vcard_adr_clear(struct vcard_adr *a)
{
	free(a->pobox);
	free(a->ext);
	free(a->street);
	free(a->locality);
	free(a->region);
	free(a->code);
	free(a->country);
	memset(a, 0, sizeof(*a));
}

/* ---- Dates --------------------------------------------------------------- */

static bool
digits(const char *s, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

static int
month_days(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = year == 0 || (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int
vcard_date(const struct vcard_prop *prop, int *year, int *month, int *day)
{
	const char *v = prop->value, *vt = vcard_param_value(prop, "VALUE");
	const char *omit = vcard_param_value(prop, "X-APPLE-OMIT-YEAR");
	size_t n;
	int y = 0, m, d;

	if (vt != NULL && strcasecmp(vt, "text") == 0)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, "Tt ");
	if (n == 10 && v[4] == '-' && v[7] == '-' && digits(v, 4, &y) && digits(v + 5, 2, &m) &&
	    digits(v + 8, 2, &d))
		;
	else if (n == 8 && digits(v, 4, &y) && digits(v + 4, 2, &m) && digits(v + 6, 2, &d))
		;
	else if (n == 6 && v[0] == '-' && v[1] == '-' && digits(v + 2, 2, &m) &&
	         digits(v + 4, 2, &d))
		y = 0;
	else if (n == 7 && v[0] == '-' && v[1] == '-' && v[4] == '-' && digits(v + 2, 2, &m) &&
	         digits(v + 5, 2, &d))
		y = 0;
	else
		return -1;
	if (omit != NULL) {
		int oy;
		if (strlen(omit) == 4 && digits(omit, 4, &oy) && oy == y)
			y = 0;
	}
	if (m < 1 || m > 12 || d < 1 || d > month_days(y, m))
		return -1;
	*year = y;
	*month = m;
	*day = d;
	return 0;
}

void
vcard_set_date(struct vcard *card, struct vcard_prop *prop, int year, int month, int day)
{
	char buf[32];
	const char *vt = vcard_param_value(prop, "VALUE");

	if (vt != NULL && strcasecmp(vt, "date") != 0)
		vcard_param_remove(prop, "VALUE");
	vcard_param_remove(prop, "X-APPLE-OMIT-YEAR");
	if (card->version == VCARD_V40) {
		if (year > 0)
			snprintf(buf, sizeof(buf), "%04d%02d%02d", year, month, day);
		else
			snprintf(buf, sizeof(buf), "--%02d%02d", month, day);
	} else {
		/* 3.0 has no date without a year: Apple's convention, year 1604. */
		snprintf(buf, sizeof(buf), "%04d-%02d-%02d", year > 0 ? year : 1604, month, day);
		if (year == 0)
			vcard_param_add(prop, "X-APPLE-OMIT-YEAR", "1604");
	}
	vcard_set_raw(prop, buf);
}

/* ---- Photos -------------------------------------------------------------- */

static int
b64_decode_loose(const char *s, size_t n, uint8_t **data_r, size_t *len_r)
{
	char *clean = xmalloc(n + 1);
	size_t k = 0, outlen, errpos;
	unsigned char *out;
	const char *err;

	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			clean[k++] = s[i];
	out = xmalloc(B64_DECODED_MAX(k) + 1);
	if (b64_decode(clean, k, out, &outlen, &errpos, &err) < 0) {
		free(clean);
		free(out);
		return -1;
	}
	free(clean);
	*data_r = out;
	*len_r = outlen;
	return 0;
}

int
vcard_photo(const struct vcard_prop *prop, uint8_t **data_r, size_t *len_r, char **mediatype_r)
{
	const char *d;
	char *mt = NULL;

	if (prop_is_b64(prop)) {
		const char *t = vcard_param_value(prop, "TYPE");

		if (b64_decode_loose(prop->value, strlen(prop->value), data_r, len_r) < 0)
			return -1;
		if (t != NULL)
			mt = strchr(t, '/') != NULL ? str_lower(xstrdup(t))
			                            : str_lower(xasprintf("image/%s", t));
	} else if ((d = data_uri_b64(prop->value)) != NULL) {
		const char *semi = strchr(prop->value + 5, ';');

		if (b64_decode_loose(d, strlen(d), data_r, len_r) < 0)
			return -1;
		if (semi != NULL && semi > prop->value + 5)
			mt = str_lower(xstrndup(prop->value + 5, (size_t)(semi - prop->value - 5)));
	} else
		return -1;
	if (mediatype_r != NULL)
		*mediatype_r = mt;
	else
		free(mt);
	return 0;
}

void
vcard_set_photo(struct vcard *card, struct vcard_prop *prop, const uint8_t *data, size_t len)
{
	const char *sub = "jpeg";
	char *b64 = xmalloc(B64_ENCODED_LEN(len) + 1), *v;

	if (len >= 8 && memcmp(data, "\x89PNG", 4) == 0)
		sub = "png";
	else if (len >= 6 && memcmp(data, "GIF8", 4) == 0)
		sub = "gif";
	b64_encode(data, len, b64);
	vcard_param_remove(prop, "ENCODING");
	vcard_param_remove(prop, "TYPE");
	vcard_param_remove(prop, "VALUE");
	vcard_param_remove(prop, "MEDIATYPE");
	if (card->version == VCARD_V40) {
		v = xasprintf("data:image/%s;base64,%s", sub, b64);
		free(b64);
	} else {
		char up[8];
		size_t i;

		for (i = 0; sub[i] != '\0'; i++)
			up[i] = (char)(sub[i] - 'a' + 'A');
		up[i] = '\0';
		vcard_param_add(prop, "ENCODING", "b");
		vcard_param_add(prop, "TYPE", up);
		v = b64;
	}
	free(prop->value);
	prop->value = v;
}
