/*
 * msgconv.c: an Internet message as an EAS e-mail item (msgconv.h).
 *
 * GMime parses the bytes in place (a memory stream over the caller's buffer,
 * not a copy; the parts' contents stay sub-streams of it until they are
 * decoded), with its loose RFC 2047, address and parameter modes, which read
 * what real mailers write: encoded words inside quoted strings or words,
 * without the spaces around them, names split over RFC 2231 continuations.
 * The walk over the parts then picks the bodies (the first text/plain and
 * text/html that are not attachments; a further plain text outside a
 * multipart/alternative is appended, as a mailing list footer is) and lists
 * every other leaf as an attachment, numbered as IMAP numbers sections.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <libxml/parser.h>

#include "lib/util.h"
#include "mime/html2text.h"
#include "mime/msgconv.h"

#define MSGCONV_MAX_REFERENCES 64 /* References kept (the oldest first) */
#define SECTION_MAX            (MSGCONV_MAX_DEPTH * 12)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* GMime's type system, charset tables and iconv cache; libxml2's globals. */
static void
init_libraries(void)
{
	g_mime_init();
	xmlInitParser();
}

void
msgconv_init(void)
{
	pthread_once(&init_once, init_libraries);
}

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * n bytes of s as valid UTF-8 (malloc'd, NUL-terminated; its length in
 * *len_r): NUL bytes dropped, a byte that starts no valid sequence replaced
 * by U+FFFD; in a header value, control characters become spaces.
 */
static char *
clean_utf8(const char *s, size_t n, bool header, size_t *len_r)
{
	struct sbuf b = {0};

	while (n > 0) {
		const gchar *end;
		g_utf8_validate_len(s, n, &end);
		size_t ok = (size_t)(end - s);
		if (!header)
			sbuf_addn(&b, s, ok);
		else {
			size_t run = 0;
			for (size_t i = 0; i < ok; i++) {
				if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
					sbuf_addn(&b, s + run, i - run);
					sbuf_addn(&b, " ", 1);
					run = i + 1;
				}
			}
			sbuf_addn(&b, s + run, ok - run);
		}
		s += ok;
		n -= ok;
		if (n > 0) {
			if (*s != '\0')
				sbuf_addn(&b, "\xEF\xBF\xBD", 3);
			s++;
			n--;
		}
	}
	if (len_r != NULL)
		*len_r = b.len;
	return sbuf_take(&b);
}

/* A header value as clean UTF-8 ("" for NULL). */
static char *
clean_header(const char *s)
{
	return s ? clean_utf8(s, strlen(s), true, NULL) : xstrdup("");
}

/* Whether n bytes are valid UTF-8 but for NUL bytes. */
static bool
utf8_ok(const char *s, size_t n)
{
	while (n > 0) {
		const gchar *end;
		if (g_utf8_validate_len(s, n, &end))
			return true;
		if (*end != '\0')
			return false;
		n -= (size_t)(end - s) + 1;
		s = end + 1;
	}
	return true;
}

/* ISO-8859-1 to UTF-8: every byte is a character. */
static char *
latin1_to_utf8(const char *s, size_t n, size_t *len_r)
{
	struct sbuf b = {0};

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0)
			continue;
		if (c < 0x80)
			sbuf_addn(&b, (const char *)&c, 1);
		else {
			char u[2] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F))};
			sbuf_addn(&b, u, 2);
		}
	}
	*len_r = b.len;
	return sbuf_take(&b);
}

/* from converted by iconv into clean UTF-8, or NULL when it does not convert. */
static char *
convert(const char *s, size_t n, const char *from, size_t *len_r)
{
	gsize out_n = 0;
	GError *err = NULL;
	gchar *u;
	char *r;

	if (n == 0) { /* an empty part (GMime gives no buffer at all) */
		*len_r = 0;
		return xstrdup("");
	}
	u = g_convert(s, (gssize)n, "UTF-8", from, NULL, &out_n, &err);

	if (u == NULL) {
		g_clear_error(&err);
		return NULL;
	}
	r = clean_utf8(u, out_n, false, len_r);
	g_free(u);
	return r;
}

/* Whether charset names US-ASCII (which 8-bit text declares wrongly). */
static bool
charset_is_ascii(const char *cs)
{
	return strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0 ||
	       strcasecmp(cs, "ansi_x3.4-1968") == 0;
}

static bool
charset_is_utf8(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0;
}

/*
 * Text of a body part in UTF-8: the declared charset when iconv knows it and
 * the bytes convert (ISO-8859-1 read as its superset windows-1252, as
 * browsers and mail readers do); else UTF-8 when the bytes are; else the
 * first fallback that converts; else ISO-8859-1, which always does.
 */
static char *
text_to_utf8(const char *s, size_t n, const char *charset, const char *const *fallbacks,
             size_t *len_r)
{
	char *r;

	if (charset != NULL && !charset_is_ascii(charset) && !charset_is_utf8(charset)) {
		const char *ic = g_mime_charset_iconv_name(charset);
		if (ic != NULL &&
		    (strcasecmp(ic, "iso-8859-1") == 0 || strcasecmp(ic, "latin1") == 0) &&
		    (r = convert(s, n, "windows-1252", len_r)) != NULL)
			return r;
		if (ic != NULL && (r = convert(s, n, ic, len_r)) != NULL)
			return r;
	}
	if ((charset != NULL && charset_is_utf8(charset)) || utf8_ok(s, n))
		return clean_utf8(s, n, false, len_r);
	for (size_t i = 0; fallbacks[i] != NULL; i++)
		if ((r = convert(s, n, fallbacks[i], len_r)) != NULL)
			return r;
	return latin1_to_utf8(s, n, len_r);
}

/* ---- the walk over the parts ------------------------------------------ */

struct walk {
	struct msgconv_msg *m;
	const char *const *fallbacks;
	struct sbuf plain, html;
	bool have_plain, have_html;
	size_t att_cap;
	const char *method; /* the calendar's METHOD (static), or NULL */
	bool smime, smime_signed;
};

/* A part's content with its transfer encoding undone (free with g_byte_array_free). */
static GByteArray *
part_bytes(GMimePart *p)
{
	GMimeDataWrapper *w = g_mime_part_get_content(p);
	GMimeStream *mem = g_mime_stream_mem_new();
	GByteArray *ba;

	if (w != NULL)
		g_mime_data_wrapper_write_to_stream(w, mem);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	g_object_unref(mem);
	return ba;
}

/* A part's decoded size, counted without keeping it. */
static size_t
part_size(GMimeObject *o)
{
	GMimeStream *null = g_mime_stream_null_new();
	size_t n;

	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (inner != NULL)
			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, null);
	} else if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
		if (w != NULL)
			g_mime_data_wrapper_write_to_stream(w, null);
	}
	n = GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	return n;
}

/*
 * The charset an HTML document names in its first 2 KiB (<meta charset=x>
 * or <meta http-equiv content="...; charset=x">) into cs; false when none.
 */
static bool
html_meta_charset(const char *s, size_t n, char cs[40])
{
	size_t k = 0;

	if (n > 2048)
		n = 2048;
	for (size_t i = 0; i + 8 <= n; i++) {
		if (strncasecmp(s + i, "charset=", 8) != 0)
			continue;
		i += 8;
		while (i < n && (s[i] == '"' || s[i] == '\'' || s[i] == ' '))
			i++;
		while (i < n && k < 39 && (isalnum((unsigned char)s[i]) || strchr("-_.:", s[i])))
			cs[k++] = s[i++];
		cs[k] = '\0';
		return k > 0;
	}
	return false;
}

/* A text part's content in UTF-8 (an HTML part without a declared charset: its <meta>'s). */
static char *
part_text(struct walk *w, GMimePart *p, bool html, size_t *len_r)
{
	GByteArray *ba = part_bytes(p);
	const char *cs = g_mime_object_get_content_type_parameter(GMIME_OBJECT(p), "charset");
	char meta[40];
	char *t;

	if (cs == NULL && html && html_meta_charset((const char *)ba->data, ba->len, meta))
		cs = meta;
	t = text_to_utf8((const char *)ba->data, ba->len, cs, w->fallbacks, len_r);

	g_byte_array_free(ba, TRUE);
	return t;
}

/* The METHOD of an iCalendar text (REQUEST, CANCEL...), as a static, or NULL. */
static const char *
calendar_method(const char *t)
{
	static const char *const methods[] = {"REQUEST", "CANCEL", "REPLY", "PUBLISH", "COUNTER"};

	for (const char *l = t; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncasecmp(l, "METHOD:", 7) != 0)
			continue;
		const char *v = l + 7;
		size_t vl = strcspn(v, "\r\n");
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
			if (strlen(methods[i]) == vl && strncasecmp(v, methods[i], vl) == 0)
				return methods[i];
		return NULL;
	}
	return NULL;
}

/*
 * Whether a leaf is an iCalendar object: text/calendar, or an attached
 * file named *.ics as some mailers send one (application/ics,
 * application/octet-stream).
 */
static bool
is_calendar(GMimeObject *o, const char *type)
{
	const char *name;
	size_t n;

	if (strcmp(type, "text/calendar") == 0)
		return true;
	if (strcmp(type, "application/ics") != 0 && strcmp(type, "application/octet-stream") != 0)
		return false;
	name = GMIME_IS_PART(o) ? g_mime_part_get_filename(GMIME_PART(o)) : NULL;
	return name != NULL && (n = strlen(name)) > 4 && strcasecmp(name + n - 4, ".ics") == 0;
}

/* A name for an attachment that has none, from its type. */
static const char *
default_name(const char *type)
{
	static const struct {
		const char *type, *name;
	} names[] = {
	    {"text/calendar", "invite.ics"},
	    {"text/plain", "attachment.txt"},
	    {"text/html", "attachment.html"},
	    {"application/pdf", "attachment.pdf"},
	    {"image/jpeg", "image.jpg"},
	    {"image/png", "image.png"},
	    {"image/gif", "image.gif"},
	    {"application/pkcs7-mime", "smime.p7m"},
	    {"application/x-pkcs7-mime", "smime.p7m"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(type, names[i].type) == 0)
			return names[i].name;
	return "attachment";
}

/* A display name: clean, without a directory part; NULL when nothing is left. */
static char *
display_name(const char *raw)
{
	char *n, *base;

	if (raw == NULL)
		return NULL;
	n = clean_header(raw);
	base = n;
	for (char *p = n; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	while (*base == ' ')
		base++;
	if (*base == '\0') {
		free(n);
		return NULL;
	}
	if (base != n)
		memmove(n, base, strlen(base) + 1);
	return n;
}

/* The part's "type/subtype" in lower case (malloc'd). */
static char *
mime_type(GMimeObject *o)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	char *g = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	char *t = clean_header(g ? g : "application/octet-stream");

	g_free(g);
	return str_lower(t);
}

/* Add part o at section as an attachment. */
static void
add_attachment(struct walk *w, GMimeObject *o, const char *section, const char *type)
{
	struct msgconv_msg *m = w->m;
	const char *disp = g_mime_object_get_disposition(o);
	const char *cid = g_mime_object_get_content_id(o);
	struct msgconv_attachment *a;
	char *name = NULL;

	if (m->n_att >= MSGCONV_MAX_ATTACHMENTS)
		return;
	if (m->n_att == w->att_cap) {
		w->att_cap = w->att_cap ? w->att_cap * 2 : 4;
		m->att = xrealloc(m->att, w->att_cap * sizeof(*m->att));
	}
	if (GMIME_IS_PART(o))
		name = display_name(g_mime_part_get_filename(GMIME_PART(o)));
	else {
		name = display_name(g_mime_object_get_content_disposition_parameter(o, "filename"));
		if (name == NULL)
			name = display_name(g_mime_object_get_content_type_parameter(o, "name"));
	}
	if (name == NULL && GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		const char *subj = inner ? g_mime_message_get_subject(inner) : NULL;
		char *s = display_name(subj);
		name = s ? xasprintf("%s.eml", s) : xstrdup("message.eml");
		free(s);
	}
	a = &m->att[m->n_att++];
	memset(a, 0, sizeof(*a));
	a->section = xstrdup(section);
	a->name = name ? name : xstrdup(default_name(type));
	a->content_type = xstrdup(type);
	a->content_id = cid && *cid ? clean_header(cid) : NULL;
	a->size = part_size(o);
	a->is_inline = disp ? strcasecmp(disp, "inline") == 0 : a->content_id != NULL;
}

/* Append a text body (a blank line between two plain parts). */
static void
add_text(struct sbuf *b, bool *have, const char *t, size_t n)
{
	if (*have && b->len > 0 && n > 0)
		sbuf_addn(b, "\n\n", 2);
	sbuf_addn(b, t, n);
	*have = true;
}

/*
 * A leaf part at section: a body, the calendar, or an attachment. alt: a
 * direct child of a multipart/alternative (another rendering of the same
 * body, never a body of its own or an attachment when it is text).
 */
static void
walk_leaf(struct walk *w, GMimeObject *o, const char *section, bool alt)
{
	char *type = mime_type(o);
	const char *disp = g_mime_object_get_disposition(o);
	bool attached = disp != NULL && strcasecmp(disp, "attachment") == 0;
	bool named = GMIME_IS_PART(o) && g_mime_part_get_filename(GMIME_PART(o)) != NULL;

	if (GMIME_IS_MESSAGE_PART(o) || !GMIME_IS_PART(o)) {
		if (GMIME_IS_MESSAGE_PART(o))
			add_attachment(w, o, section, type);
		free(type);
		return;
	}
	GMimePart *p = GMIME_PART(o);
	if (!attached && !named &&
	    (strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0)) {
		bool html = type[5] == 'h';
		bool *have = html ? &w->have_html : &w->have_plain;
		if (!*have || (!alt && !html)) {
			size_t n;
			char *t = part_text(w, p, html, &n);
			add_text(html ? &w->html : &w->plain, have, t, n);
			free(t);
			free(type);
			return;
		}
		if (alt) {
			free(type);
			return;
		}
	} else if (is_calendar(o, type)) {
		size_t n;
		char *t = part_text(w, p, false, &n);
		const char *method = calendar_method(t);
		if (method != NULL && w->m->calendar == NULL) {
			w->method = method;
			w->m->calendar = t;
			w->m->calendar_len = n;
		} else
			free(t);
		if (alt && !attached) {
			free(type);
			return;
		}
	} else if (strcmp(type, "application/pkcs7-mime") == 0 ||
	           strcmp(type, "application/x-pkcs7-mime") == 0)
		w->smime = true;
	add_attachment(w, o, section, type);
	free(type);
}

/* Whether o is a detached signature (of a multipart/signed). */
static bool
is_signature(GMimeObject *o)
{
	char *t = mime_type(o);
	bool sig = strcmp(t, "application/pkcs7-signature") == 0 ||
	           strcmp(t, "application/x-pkcs7-signature") == 0 ||
	           strcmp(t, "application/pgp-signature") == 0;

	free(t);
	return sig;
}

/* The children of multipart mp, whose section is prefix ("" at the top). */
static void
walk_multipart(struct walk *w, GMimeMultipart *mp, const char *prefix, int depth)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(mp));
	const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
	bool alt = sub && strcasecmp(sub, "alternative") == 0;
	bool sig = sub && strcasecmp(sub, "signed") == 0;
	int n = g_mime_multipart_get_count(mp);

	if (sig) {
		const char *proto =
		    g_mime_object_get_content_type_parameter(GMIME_OBJECT(mp), "protocol");
		if (proto && (strcasecmp(proto, "application/pkcs7-signature") == 0 ||
		              strcasecmp(proto, "application/x-pkcs7-signature") == 0))
			w->smime_signed = true;
	}
	for (int i = 0; i < n; i++) {
		GMimeObject *c = g_mime_multipart_get_part(mp, i);
		char section[SECTION_MAX + 16];

		int k =
		    snprintf(section, sizeof(section), "%s%s%d", prefix, *prefix ? "." : "", i + 1);
		if (k < 0 || (size_t)k > SECTION_MAX)
			continue; /* a path too long to name: the part is not listed */
		if (GMIME_IS_MULTIPART(c)) {
			if (depth + 1 < MSGCONV_MAX_DEPTH)
				walk_multipart(w, GMIME_MULTIPART(c), section, depth + 1);
		} else if (!(sig && i > 0 && is_signature(c)))
			walk_leaf(w, c, section, alt);
	}
}

/* ---- headers ---------------------------------------------------------- */

/* Append name (quoted) and address as EAS lists show them. */
static void
add_mailbox(struct sbuf *b, InternetAddress *ia)
{
	const char *name = internet_address_get_name(ia);
	const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	char *n = name && *name ? clean_header(name) : NULL;
	char *a = clean_header(addr ? addr : "");

	if (b->len > 0)
		sbuf_addn(b, ", ", 2);
	if (n != NULL) {
		sbuf_addn(b, "\"", 1);
		for (const char *p = n; *p; p++) {
			if (*p == '"' || *p == '\\')
				sbuf_addn(b, "\\", 1);
			sbuf_addn(b, p, 1);
		}
		sbuf_printf(b, "\" <%s>", a);
	} else
		sbuf_add(b, a);
	free(n);
	free(a);
}

/* An address list as "\"Name\" <addr>, addr2"; display: the names only, "; " between. */
static char *
address_list(InternetAddressList *l, bool display)
{
	struct sbuf b = {0};
	int n = l ? internet_address_list_length(l) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		InternetAddressList *members = NULL;
		int k = 1;
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
			k = members ? internet_address_list_length(members) : 0;
		}
		for (int j = 0; j < k; j++) {
			InternetAddress *x =
			    members ? internet_address_list_get_address(members, j) : ia;
			if (!INTERNET_ADDRESS_IS_MAILBOX(x))
				continue;
			if (!display) {
				add_mailbox(&b, x);
				continue;
			}
			const char *name = internet_address_get_name(x);
			const char *addr =
			    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(x));
			char *v = clean_header(name && *name ? name : addr ? addr : "");
			if (b.len > 0)
				sbuf_addn(&b, "; ", 2);
			sbuf_add(&b, v);
			free(v);
		}
	}
	return sbuf_take(&b);
}

/* Importance from Importance, X-Priority or X-MSMail-Priority. */
static int
importance(GMimeObject *o)
{
	const char *v = g_mime_object_get_header(o, "Importance");

	if (v == NULL)
		v = g_mime_object_get_header(o, "X-MSMail-Priority");
	if (v != NULL) {
		while (isspace((unsigned char)*v))
			v++;
		if (strncasecmp(v, "high", 4) == 0 || strncasecmp(v, "urgent", 6) == 0)
			return MSGCONV_IMPORTANCE_HIGH;
		if (strncasecmp(v, "low", 3) == 0 || strncasecmp(v, "non-urgent", 10) == 0)
			return MSGCONV_IMPORTANCE_LOW;
		return MSGCONV_IMPORTANCE_NORMAL;
	}
	if ((v = g_mime_object_get_header(o, "X-Priority")) != NULL) {
		while (isspace((unsigned char)*v))
			v++;
		if (*v == '1' || *v == '2')
			return MSGCONV_IMPORTANCE_HIGH;
		if (*v == '4' || *v == '5')
			return MSGCONV_IMPORTANCE_LOW;
	}
	return MSGCONV_IMPORTANCE_NORMAL;
}

/* The subject without its reply and forward prefixes ("Re: Fwd: AW: x" -> "x"). */
static char *
topic_of(const char *subject)
{
	static const char *const prefixes[] = {"re", "fwd", "fw", "aw", "wg", "sv", "vs", "tr"};
	const char *s = subject;

	for (bool again = true; again;) {
		again = false;
		while (*s == ' ' || *s == '\t')
			s++;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			size_t l = strlen(prefixes[i]);
			const char *p = s + l;
			if (strncasecmp(s, prefixes[i], l) != 0)
				continue;
			if (*p == '[') { /* "Re[2]:" */
				p++;
				while (isdigit((unsigned char)*p))
					p++;
				if (*p != ']')
					continue;
				p++;
			}
			if (*p == ':') {
				s = p + 1;
				again = true;
				break;
			}
		}
	}
	return xstrdup(s);
}

/* A message id without its brackets, clean; NULL for none. */
static char *
bare_id(const char *id)
{
	return id && *id ? clean_header(id) : NULL;
}

/* The threading headers. */
static void
threading(struct msgconv_msg *m, GMimeMessage *msg, GMimeParserOptions *po)
{
	const char *v;

	m->message_id = bare_id(g_mime_message_get_message_id(msg));
	if ((v = g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To")) != NULL) {
		char *id = g_mime_utils_decode_message_id(v);
		m->in_reply_to = bare_id(id);
		g_free(id);
	}
	if ((v = g_mime_object_get_header(GMIME_OBJECT(msg), "References")) != NULL) {
		GMimeReferences *refs = g_mime_references_parse(po, v);
		int n = refs ? g_mime_references_length(refs) : 0;
		if (n > MSGCONV_MAX_REFERENCES)
			n = MSGCONV_MAX_REFERENCES;
		if (n > 0)
			m->references = xcalloc((size_t)n, sizeof(char *));
		for (int i = 0; i < n; i++) {
			char *id = bare_id(g_mime_references_get_message_id(refs, i));
			if (id != NULL)
				m->references[m->n_references++] = id;
		}
		if (refs != NULL)
			g_mime_references_free(refs);
	}
}

/* ---- the message ------------------------------------------------------ */

/*
 * How many times "multipart/" or "message/" appears (case-insensitively),
 * counted up to limit + 1: an upper bound on the containers GMime would
 * nest, each a level of its recursive parser.
 */
static size_t
count_containers(const char *raw, size_t len, size_t limit)
{
	size_t n = 0;

	for (size_t i = 0; i + 8 <= len && n <= limit; i++) {
		if ((raw[i] | 0x20) != 'm')
			continue;
		if ((i + 10 <= len && strncasecmp(raw + i, "multipart/", 10) == 0) ||
		    strncasecmp(raw + i, "message/", 8) == 0)
			n++;
	}
	return n;
}

int
msgconv_parse(const char *raw, size_t len, const struct msgconv_opts *opts, struct msgconv_msg *out,
              const char **errstr)
{
	static const char *const default_fallbacks[] = {"windows-1252", "iso-8859-1", NULL};
	const char *fallbacks[MSGCONV_MAX_FALLBACKS + 2];
	const struct msgconv_opts none = {0};
	struct walk w = {0};
	GMimeParserOptions *po;
	GByteArray *ba;
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *msg;
	GMimeObject *body;
	GDateTime *date;
	size_t nf = 0;

	memset(out, 0, sizeof(*out));
	out->importance = MSGCONV_IMPORTANCE_NORMAL;
	out->message_class = "IPM.Note";
	out->content_class = "urn:content-classes:message";
	out->internet_cpid = 65001;
	out->native_body_type = MSGCONV_BODY_PLAIN;
	if (opts == NULL)
		opts = &none;
	if (raw == NULL || len == 0) {
		*errstr = "empty message";
		return -1;
	}
	if (len > (size_t)G_MAXUINT) {
		*errstr = "message too large";
		return -1;
	}
	if (count_containers(raw, len, MSGCONV_MAX_CONTAINERS) > MSGCONV_MAX_CONTAINERS) {
		*errstr = "too many MIME containers";
		return -1;
	}
	msgconv_init();

	/* Headers in 8-bit: UTF-8 when valid, else the fallbacks, as bodies. */
	fallbacks[nf++] = "UTF-8";
	for (const char *const *f = opts->fallback_charsets ? opts->fallback_charsets
	                                                    : default_fallbacks;
	     *f != NULL && nf <= MSGCONV_MAX_FALLBACKS; f++)
		fallbacks[nf++] = *f;
	fallbacks[nf] = NULL;
	w.m = out;
	w.fallbacks = fallbacks + 1;

	po = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(po, fallbacks);

	/* A stream over the caller's bytes, which GMime only reads: no copy. */
	ba = g_byte_array_new_take((guint8 *)(uintptr_t)raw, len);
	st = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, po);
	if (msg == NULL) {
		g_object_unref(parser);
		g_object_unref(st);
		g_byte_array_free(ba, FALSE);
		g_mime_parser_options_free(po);
		*errstr = "not an Internet message";
		return -1;
	}

	out->from = address_list(g_mime_message_get_from(msg), false);
	out->to = address_list(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO), false);
	out->cc = address_list(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_CC), false);
	out->reply_to = address_list(g_mime_message_get_reply_to(msg), false);
	out->display_to =
	    address_list(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO), true);
	out->subject = clean_header(g_mime_message_get_subject(msg));
	const char *tt = g_mime_object_get_header(GMIME_OBJECT(msg), "Thread-Topic");
	if (tt != NULL) {
		char *d = g_mime_utils_header_decode_text(po, tt);
		out->thread_topic = clean_header(d);
		g_free(d);
	} else
		out->thread_topic = topic_of(out->subject);
	out->importance = importance(GMIME_OBJECT(msg));
	date = g_mime_message_get_date(msg);
	out->date_received = date ? (int64_t)g_date_time_to_unix(date) : opts->date_fallback;
	threading(out, msg, po);

	body = g_mime_message_get_mime_part(msg);
	if (body != NULL && GMIME_IS_MULTIPART(body))
		walk_multipart(&w, GMIME_MULTIPART(body), "", 0);
	else if (body != NULL)
		walk_leaf(&w, body, "1", false);

	if (w.have_plain)
		out->plain =
		    clean_utf8(w.plain.p ? w.plain.p : "", w.plain.len, false, &out->plain_len);
	if (w.have_html) {
		out->html = clean_utf8(w.html.p ? w.html.p : "", w.html.len, false, &out->html_len);
		out->native_body_type = MSGCONV_BODY_HTML;
	}
	free(w.plain.p);
	free(w.html.p);
	if (w.smime) {
		out->message_class = "IPM.Note.SMIME";
	} else if (w.smime_signed) {
		out->message_class = "IPM.Note.SMIME.MultipartSigned";
	} else if (w.method != NULL && strcmp(w.method, "REQUEST") == 0) {
		out->message_class = "IPM.Schedule.Meeting.Request";
		out->content_class = "urn:content-classes:calendarmessage";
	} else if (w.method != NULL && strcmp(w.method, "CANCEL") == 0) {
		out->message_class = "IPM.Schedule.Meeting.Canceled";
		out->content_class = "urn:content-classes:calendarmessage";
	}
	if (!opts->no_mime) {
		out->mime = xmalloc(len + 1);
		memcpy(out->mime, raw, len);
		out->mime[len] = '\0';
		out->mime_len = len;
	}

	g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(st);
	g_byte_array_free(ba, FALSE);
	g_mime_parser_options_free(po);
	return 0;
}

void
msgconv_msg_clear(struct msgconv_msg *m)
{
	free(m->from);
	free(m->to);
	free(m->cc);
	free(m->reply_to);
	free(m->subject);
	free(m->display_to);
	free(m->thread_topic);
	free(m->message_id);
	free(m->in_reply_to);
	for (size_t i = 0; i < m->n_references; i++)
		free(m->references[i]);
	free(m->references);
	for (size_t i = 0; i < m->n_att; i++) {
		free(m->att[i].section);
		free(m->att[i].name);
		free(m->att[i].content_type);
		free(m->att[i].content_id);
	}
	free(m->att);
	free(m->plain);
	free(m->html);
	free(m->calendar);
	free(m->mime);
	free(m->html_text);
	memset(m, 0, sizeof(*m));
}

/* The HTML-only body's rendering, made ahead (see msgconv.h). */
void
msgconv_render(struct msgconv_msg *m)
{
	if (m->plain != NULL || m->html == NULL || m->html_text != NULL)
		return;
	msgconv_init();
	m->html_text = html_to_text(m->html, m->html_len, &m->html_text_len);
}

/* ---- bodies ----------------------------------------------------------- */

/* Plain text as an HTML document (escaped, in a <pre> that wraps). */
static char *
plain_to_html(const char *t, size_t n, size_t *len_r)
{
	struct sbuf b = {0};

	sbuf_add(&b, "<html><head><meta charset=\"utf-8\"></head><body>"
	             "<pre style=\"white-space: pre-wrap; word-wrap: break-word\">");
	sbuf_addn_escaped(&b, t, n);
	sbuf_add(&b, "</pre></body></html>");
	*len_r = b.len;
	return sbuf_take(&b);
}

/*
 * The longest prefix of s no longer than max bytes that does not end inside
 * a UTF-8 sequence (at most 3 bytes are given back, so bytes that are no
 * UTF-8, as a MIME body's may be, still cut near max).
 */
static size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = max;

	for (int k = 0; k < 3 && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; k++)
		n--;
	return n;
}

int
msgconv_body(const struct msgconv_msg *msg, int type, size_t truncation_size, bool all_or_none,
             struct msgconv_body *out, const char **errstr)
{
	char *made = NULL;
	const char *src = "";
	size_t n = 0, cut;

	memset(out, 0, sizeof(*out));
	switch (type) {
	case MSGCONV_BODY_PLAIN:
		if (msg->plain != NULL) {
			src = msg->plain;
			n = msg->plain_len;
		} else if (msg->html_text != NULL) {
			src = msg->html_text;
			n = msg->html_text_len;
		} else if (msg->html != NULL) {
			msgconv_init();
			src = made = html_to_text(msg->html, msg->html_len, &n);
		}
		break;
	case MSGCONV_BODY_HTML:
		if (msg->html != NULL) {
			src = msg->html;
			n = msg->html_len;
		} else
			src = made =
			    plain_to_html(msg->plain ? msg->plain : "", msg->plain_len, &n);
		break;
	case MSGCONV_BODY_MIME:
		if (msg->mime == NULL) {
			*errstr = "the message's MIME was not kept";
			return -1;
		}
		src = msg->mime;
		n = msg->mime_len;
		break;
	default:
		*errstr = "unknown body type";
		return -1;
	}
	out->type = type;
	out->estimated_size = n;
	cut = n;
	if (truncation_size > 0 && truncation_size < n) {
		cut = utf8_cut(src, truncation_size);
		out->truncated = true;
	}
	if (out->truncated && all_or_none) {
		free(made);
		return 0;
	}
	if (made != NULL && cut == n) {
		out->data = made;
	} else {
		out->data = xmalloc(cut + 1);
		memcpy(out->data, src, cut);
		out->data[cut] = '\0';
		free(made);
	}
	out->len = cut;
	return 0;
}

void
msgconv_body_clear(struct msgconv_body *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

char *
msgconv_preview(const struct msgconv_msg *msg, size_t max_chars)
{
	struct sbuf b = {0};
	char *made = NULL;
	const char *s = msg->plain;
	size_t n = msg->plain_len, chars = 0;
	bool space = false;

	if (s == NULL && msg->html_text != NULL) {
		s = msg->html_text;
		n = msg->html_text_len;
	} else if (s == NULL && msg->html != NULL) {
		msgconv_init();
		s = made = html_to_text(msg->html, msg->html_len, &n);
	}
	for (size_t i = 0; s != NULL && i < n && chars < max_chars;) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
			space = true;
			i++;
			continue;
		}
		if (c == 0xC2 && i + 1 < n &&
		    (unsigned char)s[i + 1] == 0xA0) { /* no-break space */
			space = true;
			i += 2;
			continue;
		}
		if (space && b.len > 0) {
			sbuf_addn(&b, " ", 1);
			if (++chars == max_chars)
				break;
		}
		space = false;
		size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (l > n - i)
			l = n - i;
		sbuf_addn(&b, s + i, l);
		i += l;
		chars++;
	}
	free(made);
	while (b.len > 0 && b.p[b.len - 1] == ' ')
		b.p[--b.len] = '\0';
	return sbuf_take(&b);
}

/* ---- one part by its section ------------------------------------------ */

/*
 * The object at section below body (a message's MIME part): each number
 * picks a child of a multipart; a body that is not multipart is "1".
 * NULL when the section is malformed or names nothing.
 */
static GMimeObject *
part_at(GMimeObject *body, const char *section)
{
	GMimeObject *o = body;
	const char *p = section;

	if (body == NULL || strlen(section) > SECTION_MAX)
		return NULL;
	if (!GMIME_IS_MULTIPART(body))
		return strcmp(section, "1") == 0 ? body : NULL;
	while (*p) {
		char *end;
		unsigned long n;

		if (!isdigit((unsigned char)*p))
			return NULL;
		n = strtoul(p, &end, 10);
		if (o == NULL || !GMIME_IS_MULTIPART(o) || n == 0 ||
		    n > (unsigned long)g_mime_multipart_get_count(GMIME_MULTIPART(o)))
			return NULL;
		o = g_mime_multipart_get_part(GMIME_MULTIPART(o), (int)n - 1);
		if (*end == '.' && end[1] != '\0')
			end++;
		else if (*end != '\0')
			return NULL;
		p = end;
	}
	return o;
}

int
msgconv_part(const char *raw, size_t len, const char *section, char **data_r, size_t *len_r,
             char **type_r, const char **errstr)
{
	GMimeParserOptions *po;
	GByteArray *ba, *out = NULL;
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *msg;
	GMimeObject *o;

	*data_r = NULL;
	*len_r = 0;
	*type_r = NULL;
	if (raw == NULL || len == 0 || len > (size_t)G_MAXUINT) {
		*errstr = "no message";
		return -1;
	}
	if (count_containers(raw, len, MSGCONV_MAX_CONTAINERS) > MSGCONV_MAX_CONTAINERS) {
		*errstr = "too many MIME containers";
		return -1;
	}
	msgconv_init();
	po = g_mime_parser_options_new();
	g_mime_parser_options_set_parameter_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	ba = g_byte_array_new_take((guint8 *)(uintptr_t)raw, len);
	st = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, po);
	o = msg ? part_at(g_mime_message_get_mime_part(msg), section) : NULL;
	if (o != NULL && GMIME_IS_PART(o)) {
		out = part_bytes(GMIME_PART(o));
	} else if (o != NULL && GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		GMimeStream *mem = g_mime_stream_mem_new();
		if (inner != NULL)
			g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
		out = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
		g_object_unref(mem);
	}
	if (out != NULL) {
		*data_r = xmalloc(out->len + 1);
		if (out->len)
			memcpy(*data_r, out->data, out->len);
		(*data_r)[out->len] = '\0';
		*len_r = out->len;
		*type_r = mime_type(o);
		g_byte_array_free(out, TRUE);
	}
	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(st);
	g_byte_array_free(ba, FALSE);
	g_mime_parser_options_free(po);
	if (msg == NULL) {
		*errstr = "not an Internet message";
		return -1;
	}
	return *data_r != NULL ? 1 : 0;
}
