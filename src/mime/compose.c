/*
 * compose.c: SmartReply/SmartForward's message and SaveInSent's copy
 * (compose.h).
 *
 * Design: the phone's message is parsed with GMime and changed in place:
 * each of its text bodies (the text/plain and text/html of its
 * multipart/alternative, or its one text part; in a multipart/mixed or
 * related, the first part's) gets the original's text added, and the
 * original's parts to carry (a forward's attachments, a reply's inline
 * images its quoted HTML shows) are added around the phone's body:
 * multipart/related [body, inline images] and multipart/mixed [...,
 * attachments], reusing the phone's own mixed when it has one. The parts are
 * the original's GMime objects (shared, not copied): their headers (name,
 * type, Content-ID, disposition) and encoded contents go out as they came.
 * The original's text comes from msgconv (decoded to UTF-8; an HTML-only
 * original rendered for the plain quote, a plain-only one in <pre> for the
 * HTML quote). A last walk makes every part 7-bit safe and RFC 2047-encodes
 * header values with raw 8-bit text; GMime writes the result with CRLF.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <gmime/gmime.h>

#include "lib/util.h"
#include "mime/compose.h"
#include "mime/msgconv.h"

#define MAX_REFERENCES 64

/* ---- header block (shared with submit.c) ------------------------------ */

void
compose_split_header(const char *msg, size_t len, size_t *hdr_len, size_t *body_off)
{
	size_t i = 0;

	while (i < len) {
		if (msg[i] == '\n') { /* an empty line (LF) */
			*hdr_len = i;
			*body_off = i + 1;
			return;
		}
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			*hdr_len = i;
			*body_off = i + 2;
			return;
		}
		const char *nl = memchr(msg + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - msg) + 1;
	}
	*hdr_len = len;
	*body_off = len;
}

/* Whether the header field starting at f (n bytes) is called name. */
static bool
field_is(const char *f, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(f, name, k) != 0)
		return false;
	for (size_t i = k; i < n && f[i] != '\n'; i++) {
		if (f[i] == ':')
			return true;
		if (f[i] != ' ' && f[i] != '\t')
			return false;
	}
	return false;
}

/* An RFC 5322 date of now, in UTC, whatever the locale. */
static void
date_now(char *buf, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The domain of address a ("x@dom"), or NULL when a is no such address. */
static const char *
domain_of(const char *a)
{
	const char *at = a ? strrchr(a, '@') : NULL;

	if (at == NULL || at == a || at[1] == '\0')
		return NULL;
	for (const unsigned char *p = (const unsigned char *)at + 1; *p; p++)
		if (*p <= ' ' || *p == '<' || *p == '>' || *p >= 0x7f)
			return NULL;
	return at + 1;
}

char *
compose_header_block(const char *msg, size_t hdr_len, const char *from, bool drop_bcc,
                     size_t *len_r)
{
	struct sbuf b = {0}, fields = {0};
	bool have_date = false, have_id = false;
	size_t i = 0;

	while (i < hdr_len) {
		/* One field: its first line and the folded lines after it. */
		size_t start = i, end;
		do {
			const char *nl = memchr(msg + i, '\n', hdr_len - i);
			i = nl ? (size_t)(nl - msg) + 1 : hdr_len;
		} while (i < hdr_len && (msg[i] == ' ' || msg[i] == '\t'));
		end = i;
		if (drop_bcc && field_is(msg + start, end - start, "Bcc"))
			continue;
		if (field_is(msg + start, end - start, "Date"))
			have_date = true;
		if (field_is(msg + start, end - start, "Message-ID"))
			have_id = true;
		/* Copy its lines with CRLF ends. */
		for (size_t p = start; p < end;) {
			const char *nl = memchr(msg + p, '\n', end - p);
			size_t e = nl ? (size_t)(nl - msg) : end;
			size_t le = e > p && msg[e - 1] == '\r' ? e - 1 : e;
			sbuf_addn(&fields, msg + p, le - p);
			sbuf_add(&fields, "\r\n");
			p = nl ? e + 1 : end;
		}
	}
	if (!have_date) {
		char d[64];
		date_now(d, sizeof(d));
		sbuf_printf(&b, "Date: %s\r\n", d);
	}
	if (!have_id) {
		uint32_t r[4] = {0};
		const char *dom = domain_of(from);
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r[0] ^= (uint32_t)time(NULL);
		sbuf_printf(&b, "Message-ID: <%08x%08x%08x%08x@%s>\r\n", r[0], r[1], r[2], r[3],
		            dom ? dom : "abqd.invalid");
	}
	if (fields.p != NULL)
		sbuf_addn(&b, fields.p, fields.len);
	free(fields.p);
	sbuf_add(&b, "\r\n");
	*len_r = b.len;
	return sbuf_take(&b);
}

int
compose_sent_copy(const char *msg, size_t len, const char *from, char **out, size_t *out_len,
                  const char **errstr)
{
	size_t hdr_len, body_off, hl;
	struct sbuf b = {0};
	char *hdr;

	if (msg == NULL || len == 0) {
		*errstr = "empty message";
		return -1;
	}
	if (len > COMPOSE_MAX_INPUT) {
		*errstr = "message too large";
		return -1;
	}
	compose_split_header(msg, len, &hdr_len, &body_off);
	hdr = compose_header_block(msg, hdr_len, from, false, &hl);
	sbuf_addn(&b, hdr, hl);
	free(hdr);
	/* The body with bare LFs as CRLF, as submit.c sends it. */
	for (size_t p = body_off; p < len;) {
		const char *nl = memchr(msg + p, '\n', len - p);
		size_t e = nl ? (size_t)(nl - msg) : len;
		size_t le = e > p && msg[e - 1] == '\r' ? e - 1 : e;
		sbuf_addn(&b, msg + p, le - p);
		if (nl)
			sbuf_add(&b, "\r\n");
		p = nl ? e + 1 : len;
	}
	*out_len = b.len;
	*out = sbuf_take(&b);
	return 0;
}

/* ---- text ------------------------------------------------------------- */

/* The first occurrence of needle in h[0..n) without regard to ASCII case. */
static const char *
find_ci(const char *h, size_t n, const char *needle, bool last)
{
	size_t k = strlen(needle);
	const char *found = NULL;

	for (size_t i = 0; k <= n && i <= n - k; i++) {
		if (strncasecmp(h + i, needle, k) == 0) {
			found = h + i;
			if (!last)
				break;
		}
	}
	return found;
}

/* Append text's lines quoted: "> line", ">" for an empty one, ">>..." kept tight. */
static void
quote_lines(struct sbuf *b, const char *text, size_t len)
{
	size_t p = 0;

	while (p < len) {
		const char *nl = memchr(text + p, '\n', len - p);
		size_t e = nl ? (size_t)(nl - text) : len;
		size_t le = e > p && text[e - 1] == '\r' ? e - 1 : e;
		if (le == p)
			sbuf_add(b, ">\n");
		else {
			sbuf_add(b, text[p] == '>' ? ">" : "> ");
			sbuf_addn(b, text + p, le - p);
			sbuf_add(b, "\n");
		}
		p = nl ? e + 1 : len;
	}
}

/* What the original says of itself, decoded (UTF-8 strings; g_free them). */
struct orig_info {
	char *from, *to, *cc, *subject, *date;
};

/* Format a GDateTime as "Mon, 2 Dec 2026 at 10:00" in its own offset. */
static char *
format_date(GDateTime *d)
{
	static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int dow = g_date_time_get_day_of_week(d), mon = g_date_time_get_month(d);

	if (dow < 1 || dow > 7 || mon < 1 || mon > 12)
		return NULL;
	return g_strdup_printf("%s, %d %s %d at %02d:%02d", days[dow - 1],
	                       g_date_time_get_day_of_month(d), months[mon - 1],
	                       g_date_time_get_year(d), g_date_time_get_hour(d),
	                       g_date_time_get_minute(d));
}

/* The original's From, To, Cc, Subject and Date for the quote's lines. */
static void
orig_info_get(GMimeMessage *m, struct orig_info *oi)
{
	InternetAddressList *cc = g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_CC);
	const char *subj = g_mime_message_get_subject(m);
	GDateTime *d = g_mime_message_get_date(m);

	oi->from = internet_address_list_to_string(g_mime_message_get_from(m), NULL, FALSE);
	oi->to = internet_address_list_to_string(
	    g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO), NULL, FALSE);
	oi->cc = cc && internet_address_list_length(cc) > 0
	             ? internet_address_list_to_string(cc, NULL, FALSE)
	             : NULL;
	oi->subject = g_strdup(subj ? subj : "");
	oi->date = d ? format_date(d) : NULL;
	if (oi->from == NULL)
		oi->from = g_strdup("");
	if (oi->to == NULL)
		oi->to = g_strdup("");
}

static void
orig_info_clear(struct orig_info *oi)
{
	g_free(oi->from);
	g_free(oi->to);
	g_free(oi->cc);
	g_free(oi->subject);
	g_free(oi->date);
}

/* The plain text added to the phone's plain body. */
static char *
plain_quote(int kind, const struct orig_info *oi, const char *text, size_t len)
{
	struct sbuf b = {0};

	if (kind == COMPOSE_REPLY) {
		if (oi->date)
			sbuf_printf(&b, "\n\nOn %s, %s wrote:\n", oi->date, oi->from);
		else
			sbuf_printf(&b, "\n\n%s wrote:\n", oi->from);
		quote_lines(&b, text, len);
	} else {
		sbuf_add(&b, "\n\n---------- Forwarded message ----------\n");
		sbuf_printf(&b, "From: %s\n", oi->from);
		if (oi->date)
			sbuf_printf(&b, "Date: %s\n", oi->date);
		sbuf_printf(&b, "Subject: %s\nTo: %s\n", oi->subject, oi->to);
		if (oi->cc)
			sbuf_printf(&b, "Cc: %s\n", oi->cc);
		sbuf_add(&b, "\n");
		sbuf_addn(&b, text, len);
		if (len > 0 && text[len - 1] != '\n')
			sbuf_add(&b, "\n");
	}
	return sbuf_take(&b);
}

/* The HTML added to the phone's HTML body (the original's <body> inside). */
static char *
html_quote(int kind, const struct orig_info *oi, const char *html, size_t len)
{
	struct sbuf b = {0};
	const char *s = html, *e = html + len, *t;

	/* Only what the original's <body> holds. */
	if ((t = find_ci(html, len, "<body", false)) != NULL &&
	    (t = memchr(t, '>', (size_t)(e - t))) != NULL)
		s = t + 1;
	if ((t = find_ci(s, (size_t)(e - s), "</body", true)) != NULL)
		e = t;
	if (kind == COMPOSE_REPLY) {
		sbuf_add(&b, "<br><div>");
		if (oi->date) {
			sbuf_add(&b, "On ");
			sbuf_add_escaped(&b, oi->date);
			sbuf_add(&b, ", ");
		}
		sbuf_add_escaped(&b, oi->from);
		sbuf_add(&b, " wrote:<br></div><blockquote type=\"cite\" style=\"margin:0 0 0 .8ex;"
		             "border-left:1px solid #ccc;padding-left:1ex\">");
		sbuf_addn(&b, s, (size_t)(e - s));
		sbuf_add(&b, "</blockquote>");
	} else {
		sbuf_add(&b, "<br><div>---------- Forwarded message ----------<br>From: ");
		sbuf_add_escaped(&b, oi->from);
		if (oi->date) {
			sbuf_add(&b, "<br>Date: ");
			sbuf_add_escaped(&b, oi->date);
		}
		sbuf_add(&b, "<br>Subject: ");
		sbuf_add_escaped(&b, oi->subject);
		sbuf_add(&b, "<br>To: ");
		sbuf_add_escaped(&b, oi->to);
		if (oi->cc) {
			sbuf_add(&b, "<br>Cc: ");
			sbuf_add_escaped(&b, oi->cc);
		}
		sbuf_add(&b, "<br></div><br>");
		sbuf_addn(&b, s, (size_t)(e - s));
	}
	return sbuf_take(&b);
}

/* ---- the parts -------------------------------------------------------- */

/*
 * Parse len bytes with GMime's loose modes; NULL when no message. The stream
 * reads the caller's bytes in place (*ba_r, freed with g_byte_array_free(ba,
 * FALSE) once the message is gone): the original's parts are sub-streams of
 * it until the result is written.
 */
static GMimeMessage *
parse(const char *raw, size_t len, GByteArray **ba_r)
{
	GMimeParserOptions *po = g_mime_parser_options_new();
	GByteArray *ba = g_byte_array_new_take((guint8 *)(uintptr_t)raw, len);
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *m;

	g_mime_parser_options_set_rfc2047_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	st = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, po);
	g_object_unref(parser);
	g_object_unref(st);
	g_mime_parser_options_free(po);
	*ba_r = ba;
	return m;
}

/* Whether o is text/<sub>. */
static bool
is_type(GMimeObject *o, const char *type, const char *sub)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	return ct != NULL && g_mime_content_type_is_type(ct, type, sub);
}

/* Whether leaf o is shown as a body rather than offered as an attachment. */
static bool
is_body_text(GMimeObject *o)
{
	const char *disp = g_mime_object_get_disposition(o);

	if (disp != NULL && strcasecmp(disp, "attachment") == 0)
		return false;
	if (GMIME_IS_PART(o) && g_mime_part_get_filename(GMIME_PART(o)) != NULL)
		return false;
	return is_type(o, "text", "plain") || is_type(o, "text", "html") ||
	       is_type(o, "text", "calendar");
}

/* Count the multipart/ and message/ mentions (msgconv's cap, before parsing). */
static size_t
containers(const char *raw, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i + 10 <= len; i++)
		if ((raw[i] == 'm' || raw[i] == 'M') &&
		    (strncasecmp(raw + i, "multipart/", 10) == 0 ||
		     strncasecmp(raw + i, "message/", 8) == 0))
			n++;
	return n;
}

/* Set the best 7-bit-safe encoding of part p (QP or base64 when needed). */
static void
make_7bit(GMimePart *p)
{
	GMimeContentEncoding enc = g_mime_part_get_content_encoding(p);

	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE)
		return;
	if (g_mime_part_get_content(p) == NULL)
		return;
	GMimeContentEncoding best =
	    g_mime_part_get_best_content_encoding(p, GMIME_ENCODING_CONSTRAINT_7BIT);
	if (best != GMIME_CONTENT_ENCODING_7BIT && best != enc)
		g_mime_part_set_content_encoding(p, best);
}

/* Re-encode the header values of o written with raw 8-bit bytes (RFC 2047). */
static void
encode_headers(GMimeObject *o)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(o);
	int n = hl ? g_mime_header_list_get_count(hl) : 0;

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *raw = g_mime_header_get_raw_value(h);
		bool eight = false;

		for (const unsigned char *p = (const unsigned char *)raw; p && *p && !eight; p++)
			eight = *p >= 0x80;
		if (!eight)
			continue;
		char *v = g_strdup(g_mime_header_get_value(h));
		if (v != NULL && g_utf8_validate(v, -1, NULL))
			g_mime_header_set_value(h, NULL, v, "utf-8");
		g_free(v);
	}
}

/* The last walk: every leaf 7-bit safe, 8-bit headers encoded. */
static void
make_safe(GMimeObject *o, int depth, int *budget)
{
	if (depth > MSGCONV_MAX_DEPTH || --*budget < 0)
		return;
	encode_headers(o);
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
			make_safe(g_mime_multipart_get_part(mp, i), depth + 1, budget);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *in = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		if (in != NULL) {
			encode_headers(GMIME_OBJECT(in));
			GMimeObject *b = g_mime_message_get_mime_part(in);
			if (b != NULL)
				make_safe(b, depth + 1, budget);
		}
	} else if (GMIME_IS_PART(o)) {
		make_7bit(GMIME_PART(o));
	}
}

/* What the walk over the phone's bodies did. */
struct add_quote {
	const char *plain, *html;
	int n_plain, n_html, budget;
};

/* Insert html_q before the HTML's </body>, or after it all. */
static char *
insert_html(const char *html, const char *q)
{
	size_t n = strlen(html);
	const char *end = find_ci(html, n, "</body", true);
	struct sbuf b = {0};

	if (end == NULL)
		end = html + n;
	sbuf_addn(&b, html, (size_t)(end - html));
	sbuf_add(&b, q);
	sbuf_add(&b, end);
	return sbuf_take(&b);
}

/* Add the quotes to the phone's text bodies under o. */
static void
add_quotes(GMimeObject *o, int depth, struct add_quote *q)
{
	if (depth > MSGCONV_MAX_DEPTH || --q->budget < 0)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		if (is_type(o, "multipart", "alternative")) {
			for (int i = 0; i < n; i++)
				add_quotes(g_mime_multipart_get_part(mp, i), depth + 1, q);
		} else if (n > 0 && !is_type(o, "multipart", "signed") &&
		           !is_type(o, "multipart", "encrypted"))
			add_quotes(g_mime_multipart_get_part(mp, 0), depth + 1, q);
		return;
	}
	if (!GMIME_IS_TEXT_PART(o) || !is_body_text(o))
		return;
	bool html = is_type(o, "text", "html");
	if (!html && !is_type(o, "text", "plain"))
		return;
	if ((html && q->n_html > 0) || (!html && q->n_plain > 0))
		return; /* one of each: the alternative's */
	char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
	size_t tl = t ? strlen(t) : 0;
	if (!html) /* the quote's own blank line follows the phone's last line */
		while (tl > 0 && (t[tl - 1] == '\n' || t[tl - 1] == '\r'))
			tl--;
	char *nt = html ? insert_html(t ? t : "", q->html)
	                : xasprintf("%.*s%s", (int)tl, t ? t : "", q->plain);
	g_mime_text_part_set_text(GMIME_TEXT_PART(o), nt);
	g_free(t);
	free(nt);
	if (html)
		q->n_html++;
	else
		q->n_plain++;
}

/* The parts of the original a forward carries (or a reply's shown images). */
struct carry {
	GPtrArray *inline_parts, *attached;
	const char *html; /* the quoted HTML, to tell which images it shows; NULL: none */
	bool forward;
	int budget;
};

/* Whether the HTML shows cid:<id>. */
static bool
shows_cid(const char *html, const char *id)
{
	char *ref;
	bool r;

	if (html == NULL || id == NULL)
		return false;
	ref = xasprintf("cid:%s", id);
	r = find_ci(html, strlen(html), ref, false) != NULL;
	free(ref);
	return r;
}

/* Collect the original's parts under o that go with the message. */
static void
carry_parts(GMimeObject *o, int depth, struct carry *c)
{
	if (depth > MSGCONV_MAX_DEPTH || --c->budget < 0)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		if (is_type(o, "multipart", "signed") && n > 1)
			n = 1; /* the content, not the signature */
		if (is_type(o, "multipart", "encrypted"))
			n = 0;
		for (int i = 0; i < n; i++)
			carry_parts(g_mime_multipart_get_part(mp, i), depth + 1, c);
		return;
	}
	if (!GMIME_IS_MESSAGE_PART(o) && (!GMIME_IS_PART(o) || is_body_text(o)))
		return;
	if (is_type(o, "application", "pgp-signature") ||
	    is_type(o, "application", "pkcs7-signature") ||
	    is_type(o, "application", "x-pkcs7-signature"))
		return;
	const char *cid = g_mime_object_get_content_id(o);
	const char *disp = g_mime_object_get_disposition(o);
	bool shown = cid != NULL && (disp == NULL || strcasecmp(disp, "attachment") != 0) &&
	             shows_cid(c->html, cid);
	if (shown)
		g_ptr_array_add(c->inline_parts, o);
	else if (c->forward)
		g_ptr_array_add(c->attached, o);
}

/* Put the carried parts around the phone's body (see the top of the file). */
static void
attach(GMimeMessage *pm, struct carry *c)
{
	GMimeObject *top = g_mime_message_get_mime_part(pm);

	if (c->inline_parts->len > 0) {
		bool mixed = is_type(top, "multipart", "mixed");
		GMimeObject *body =
		    mixed ? g_mime_multipart_get_part(GMIME_MULTIPART(top), 0) : top;
		GMimeMultipart *rel = g_mime_multipart_new_with_subtype("related");

		g_mime_multipart_add(rel, body);
		for (guint i = 0; i < c->inline_parts->len; i++)
			g_mime_multipart_add(rel, g_ptr_array_index(c->inline_parts, i));
		if (mixed)
			g_object_unref(
			    g_mime_multipart_replace(GMIME_MULTIPART(top), 0, GMIME_OBJECT(rel)));
		else {
			g_mime_message_set_mime_part(pm, GMIME_OBJECT(rel));
			top = GMIME_OBJECT(rel);
		}
		g_object_unref(rel);
	}
	if (c->attached->len > 0) {
		if (!is_type(top, "multipart", "mixed")) {
			GMimeMultipart *mix = g_mime_multipart_new_with_subtype("mixed");
			g_mime_multipart_add(mix, top);
			g_mime_message_set_mime_part(pm, GMIME_OBJECT(mix));
			g_object_unref(mix);
			top = GMIME_OBJECT(mix);
		}
		for (guint i = 0; i < c->attached->len; i++)
			g_mime_multipart_add(GMIME_MULTIPART(top),
			                     g_ptr_array_index(c->attached, i));
	}
}

/* A reply's In-Reply-To and References, unless the phone set them. */
static void
threading(GMimeMessage *pm, const struct msgconv_msg *om)
{
	GMimeObject *o = GMIME_OBJECT(pm);
	struct sbuf b = {0};

	if (om->message_id == NULL)
		return;
	if (g_mime_object_get_header(o, "In-Reply-To") == NULL) {
		char *v = xasprintf("<%s>", om->message_id);
		g_mime_object_set_header(o, "In-Reply-To", v, NULL);
		free(v);
	}
	if (g_mime_object_get_header(o, "References") == NULL) {
		size_t first = om->n_references > MAX_REFERENCES - 1
		                   ? om->n_references - (MAX_REFERENCES - 1)
		                   : 0;
		for (size_t i = first; i < om->n_references; i++)
			sbuf_printf(&b, "<%s> ", om->references[i]);
		sbuf_printf(&b, "<%s>", om->message_id);
		g_mime_object_set_header(o, "References", b.p, NULL);
		free(b.p);
	}
}

/* A text part holding text, 7-bit safe. */
static GMimeObject *
new_text(const char *sub, const char *text)
{
	GMimeTextPart *t = g_mime_text_part_new_with_subtype(sub);

	g_mime_text_part_set_text(t, text);
	return GMIME_OBJECT(t);
}

/* The whole of msgconv's body of type, or an empty one. */
static char *
body_text(const struct msgconv_msg *m, int type, size_t *len_r)
{
	struct msgconv_body b;
	const char *err;

	*len_r = 0;
	if (msgconv_body(m, type, 0, false, &b, &err) != 0 || b.data == NULL) {
		msgconv_body_clear(&b);
		return xstrdup("");
	}
	char *d = b.data;
	*len_r = b.len;
	b.data = NULL;
	msgconv_body_clear(&b);
	return d;
}

int
compose_smart(const struct compose_req *req, char **out, size_t *out_len, const char **errstr)
{
	struct msgconv_msg om;
	struct orig_info oi = {0};
	struct add_quote q = {0};
	struct carry c = {0};
	GMimeMessage *pm = NULL, *orig = NULL;
	GByteArray *pba = NULL, *oba = NULL;
	char *ptext = NULL, *htext = NULL, *pq = NULL, *hq = NULL;
	size_t plen, hlen;
	int rv = -1;

	*out = NULL;
	*out_len = 0;
	memset(&om, 0, sizeof(om));
	if (req->phone == NULL || req->phone_len == 0) {
		*errstr = "the phone sent no message";
		return -1;
	}
	if (req->phone_len > COMPOSE_MAX_INPUT || req->original_len > COMPOSE_MAX_INPUT) {
		*errstr = "message too large";
		return -1;
	}
	if (req->replace_mime) {
		*out = xmalloc(req->phone_len + 1);
		memcpy(*out, req->phone, req->phone_len);
		(*out)[req->phone_len] = '\0';
		*out_len = req->phone_len;
		return 0;
	}
	if (req->kind != COMPOSE_REPLY && req->kind != COMPOSE_FORWARD) {
		*errstr = "neither a reply nor a forward";
		return -1;
	}
	if (containers(req->phone, req->phone_len) > MSGCONV_MAX_CONTAINERS) {
		*errstr = "too many MIME containers";
		return -1;
	}
	/* msgconv reads the original (and applies its caps to it). */
	if (msgconv_parse(req->original, req->original_len, &(struct msgconv_opts){.no_mime = true},
	                  &om, errstr) != 0)
		goto out;
	if ((pm = parse(req->phone, req->phone_len, &pba)) == NULL) {
		*errstr = "the phone's message cannot be read";
		goto out;
	}
	if ((orig = parse(req->original, req->original_len, &oba)) == NULL) {
		*errstr = "the original cannot be read";
		goto out;
	}
	orig_info_get(orig, &oi);
	ptext = body_text(&om, MSGCONV_BODY_PLAIN, &plen);
	htext = body_text(&om, MSGCONV_BODY_HTML, &hlen);
	pq = plain_quote(req->kind, &oi, ptext, plen);
	hq = html_quote(req->kind, &oi, htext, hlen);

	/* The phone's bodies get the original's text. */
	q.plain = pq;
	q.html = hq;
	q.budget = COMPOSE_MAX_PARTS;
	GMimeObject *top = g_mime_message_get_mime_part(pm);
	if (top != NULL)
		add_quotes(top, 0, &q);
	if (q.n_plain + q.n_html == 0) {
		/* No text body (only attachments, or nothing): one in front. */
		GMimeObject *t = new_text("plain", pq + 2);
		if (top == NULL)
			g_mime_message_set_mime_part(pm, t);
		else if (is_type(top, "multipart", "mixed"))
			g_mime_multipart_insert(GMIME_MULTIPART(top), 0, t);
		else {
			GMimeMultipart *mix = g_mime_multipart_new_with_subtype("mixed");
			g_mime_multipart_add(mix, t);
			g_mime_multipart_add(mix, top);
			g_mime_message_set_mime_part(pm, GMIME_OBJECT(mix));
			g_object_unref(mix);
		}
		g_object_unref(t);
	}

	/* The original's parts that go along. */
	c.inline_parts = g_ptr_array_new();
	c.attached = g_ptr_array_new();
	c.html = q.n_html > 0 ? hq : NULL;
	c.forward = req->kind == COMPOSE_FORWARD;
	c.budget = COMPOSE_MAX_PARTS;
	if (g_mime_message_get_mime_part(orig) != NULL)
		carry_parts(g_mime_message_get_mime_part(orig), 0, &c);
	attach(pm, &c);
	if (req->kind == COMPOSE_REPLY)
		threading(pm, &om);
	if (g_mime_object_get_header(GMIME_OBJECT(pm), "MIME-Version") == NULL)
		g_mime_object_set_header(GMIME_OBJECT(pm), "MIME-Version", "1.0", NULL);

	/* 7-bit safe, then written with CRLF. */
	int budget = COMPOSE_MAX_PARTS * 2;
	encode_headers(GMIME_OBJECT(pm));
	make_safe(g_mime_message_get_mime_part(pm), 0, &budget);
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *mem = g_mime_stream_mem_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	if (g_mime_object_write_to_stream(GMIME_OBJECT(pm), fo, mem) < 0) {
		*errstr = "the message cannot be written";
	} else {
		GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		*out = xmalloc(ba->len + 1);
		memcpy(*out, ba->data, ba->len);
		(*out)[ba->len] = '\0';
		*out_len = ba->len;
		rv = 0;
	}
	g_object_unref(mem);
	g_mime_format_options_free(fo);
out:
	if (c.inline_parts)
		g_ptr_array_free(c.inline_parts, TRUE);
	if (c.attached)
		g_ptr_array_free(c.attached, TRUE);
	orig_info_clear(&oi);
	free(ptext);
	free(htext);
	free(pq);
	free(hq);
	if (pm)
		g_object_unref(pm);
	if (orig)
		g_object_unref(orig);
	if (pba)
		g_byte_array_free(pba, FALSE);
	if (oba)
		g_byte_array_free(oba, FALSE);
	msgconv_msg_clear(&om);
	return rv;
}

/* ---- iTIP replies --------------------------------------------------------- */

int
compose_itip_reply(const char *from, const char *to, const char *subject, const char *text,
                   const char *ics, char **out, size_t *out_len, const char **errstr)
{
	GMimeMessage *m;
	GMimeMultipart *alt;
	GMimePart *cal;
	GMimeStream *st;
	GMimeDataWrapper *w;
	GMimeFormatOptions *fo;
	char *raw;
	int rv;

	if (from == NULL || to == NULL || ics == NULL || strlen(ics) > COMPOSE_MAX_INPUT) {
		*errstr = "no sender, no recipient or no calendar";
		return -1;
	}
	msgconv_init();
	m = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, NULL, from);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, NULL, to);
	g_mime_message_set_subject(m, subject ? subject : "", "utf-8");
	alt = g_mime_multipart_new_with_subtype("alternative");
	GMimeObject *t = new_text("plain", text ? text : "");
	g_mime_multipart_add(alt, t);
	g_object_unref(t);
	cal = g_mime_part_new_with_type("text", "calendar");
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(cal), "charset", "utf-8");
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(cal), "method", "REPLY");
	st = g_mime_stream_mem_new_with_buffer(ics, strlen(ics));
	w = g_mime_data_wrapper_new_with_stream(st, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(cal, w);
	g_object_unref(w);
	g_object_unref(st);
	g_mime_part_set_content_encoding(cal, GMIME_CONTENT_ENCODING_BASE64);
	g_mime_multipart_add(alt, GMIME_OBJECT(cal));
	g_object_unref(cal);
	g_mime_message_set_mime_part(m, GMIME_OBJECT(alt));
	g_object_unref(alt);
	encode_headers(GMIME_OBJECT(m));
	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	raw = g_mime_object_to_string(GMIME_OBJECT(m), fo);
	g_mime_format_options_free(fo);
	g_object_unref(m);
	if (raw == NULL) {
		*errstr = "the message cannot be written";
		return -1;
	}
	rv = compose_sent_copy(raw, strlen(raw), from, out, out_len, errstr);
	g_free(raw);
	return rv;
}
