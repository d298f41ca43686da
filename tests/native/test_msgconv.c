/*
 * test_msgconv.c: real-world-shaped messages (data/) read as a phone gets
 * them: the EAS fields, the attachment list with IMAP section paths, bodies
 * per BodyPreference (truncation, AllOrNone), charsets and the Preview.
 *
 * The section paths expected are RFC 3501's numbering (what Dovecot's
 * BODYSTRUCTURE gives): a top-level multipart's parts 1, 2...; a nested
 * multipart's 2.1, 2.2; a message that is not multipart has its body at 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/html2text.h"
#include "mime/msgconv.h"

/* data/NAME parsed into *m with opts (NULL: the defaults); asserts success. */
static void
parse_file(const char *name, const struct msgconv_opts *opts, struct msgconv_msg *m)
{
	char path[512];
	const char *err = NULL;
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", MSGCONV_DATA_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (msgconv_parse(buf, (size_t)n, opts, m, &err) != 0)
		fail_msg("%s: %s", name, err);
	free(buf);
}

/* The body of type, whole; its text (free it). */
static char *
body_of(const struct msgconv_msg *m, int type)
{
	struct msgconv_body b;
	const char *err;
	char *d;

	assert_int_equal(msgconv_body(m, type, 0, false, &b, &err), 0);
	assert_int_equal(b.type, type);
	assert_false(b.truncated);
	assert_int_equal(b.len, b.estimated_size);
	assert_int_equal(strlen(b.data), b.len);
	d = b.data;
	b.data = NULL;
	msgconv_body_clear(&b);
	return d;
}

/* The text with CRLF turned into LF, in place. */
static char *
lf(char *s)
{
	char *o = s;

	for (const char *p = s; *p; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			*o++ = *p;
	*o = '\0';
	return s;
}

/* multipart/alternative: headers, RFC 2047 name, threading, both bodies. */
static void
test_alternative(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("alternative.eml", NULL, &m);
	assert_string_equal(m.from, "\"Anna Müller\" <anna@example.org>");
	assert_string_equal(m.to, "\"Bob Smith\" <bob@example.com>, carol@example.com");
	assert_string_equal(m.cc, "\"Dan, the Boss\" <dan@example.com>");
	assert_string_equal(m.reply_to, "reports@example.org");
	assert_string_equal(m.display_to, "Bob Smith; carol@example.com");
	assert_string_equal(m.subject, "Re: Fwd: Quarterly report");
	assert_string_equal(m.thread_topic, "Quarterly report");
	assert_int_equal(m.importance, MSGCONV_IMPORTANCE_HIGH);
	assert_int_equal(m.date_received, 1772525700); /* 2026-03-03T08:15:00Z */
	assert_string_equal(m.message_class, "IPM.Note");
	assert_string_equal(m.content_class, "urn:content-classes:message");
	assert_int_equal(m.internet_cpid, 65001);
	assert_string_equal(m.message_id, "20260303091500.1234@mail.example.org");
	assert_string_equal(m.in_reply_to, "parent-1@example.com");
	assert_int_equal(m.n_references, 2);
	assert_string_equal(m.references[0], "root-0@example.com");
	assert_string_equal(m.references[1], "parent-1@example.com");
	assert_int_equal(m.n_att, 0);
	assert_int_equal(m.native_body_type, MSGCONV_BODY_HTML);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(lf(t), "Hi Bob,\n\nthe report is attached. Grüße, Anna");
	free(t);
	t = body_of(&m, MSGCONV_BODY_HTML);
	assert_string_equal(lf(t), "<html><body><p>Hi Bob,</p><p>the report is attached. Grüße, "
	                           "Anna</p></body></html>");
	free(t);
	t = msgconv_preview(&m, 255);
	assert_string_equal(t, "Hi Bob, the report is attached. Grüße, Anna");
	free(t);
	t = msgconv_preview(&m, 10);
	assert_string_equal(t, "Hi Bob, th");
	free(t);
	/* MIME: the message's own bytes. */
	t = body_of(&m, MSGCONV_BODY_MIME);
	assert_int_equal(strncmp(t, "Return-Path: <anna@example.org>\r\n", 33), 0);
	free(t);
	msgconv_msg_clear(&m);
}

/* multipart/mixed with a PDF: section 2, name, decoded size; X-Priority 5. */
static void
test_mixed_pdf(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("mixed_pdf.eml", NULL, &m);
	assert_int_equal(m.importance, MSGCONV_IMPORTANCE_LOW);
	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].section, "2");
	assert_string_equal(m.att[0].name, "report.pdf");
	assert_string_equal(m.att[0].content_type, "application/pdf");
	assert_int_equal(m.att[0].size, 1000);
	assert_false(m.att[0].is_inline);
	assert_null(m.att[0].content_id);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "See the attached report.");
	free(t);
	t = body_of(&m, MSGCONV_BODY_HTML);
	assert_string_equal(t, "<p>See the <b>attached</b> report.</p>");
	free(t);
	msgconv_msg_clear(&m);
}

/*
 * A nested multipart (2.1, 2.2: an attached text and an inline image with a
 * Content-ID) and a message/rfc822 (3), listed as one attachment named
 * after its subject: its own parts (3.1, 3.2) are not listed.
 */
static void
test_nested_rfc822(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("nested_rfc822.eml", NULL, &m);
	assert_int_equal(m.n_att, 3);
	assert_string_equal(m.att[0].section, "2.1");
	assert_string_equal(m.att[0].name, "notes.txt");
	assert_string_equal(m.att[0].content_type, "text/plain");
	assert_false(m.att[0].is_inline);
	assert_string_equal(m.att[1].section, "2.2");
	assert_string_equal(m.att[1].content_type, "image/png");
	assert_string_equal(m.att[1].name, "image.png");
	assert_string_equal(m.att[1].content_id, "logo@example.com");
	assert_true(m.att[1].is_inline);
	assert_int_equal(m.att[1].size, 8 + 512);
	assert_string_equal(m.att[2].section, "3");
	assert_string_equal(m.att[2].content_type, "message/rfc822");
	assert_string_equal(m.att[2].name, "Inner subject.eml");
	assert_true(m.att[2].size > 200);
	assert_int_equal(m.native_body_type, MSGCONV_BODY_PLAIN);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "Forwarding the message below, with notes.");
	free(t);
	assert_string_equal(m.thread_topic, "Inner subject");
	msgconv_msg_clear(&m);
}

/* RFC 2047: B and Q words, several charsets, a word glued to text, a name in quotes. */
static void
test_rfc2047(void **state)
{
	struct msgconv_msg m;

	parse_file("rfc2047.eml", NULL, &m);
	assert_string_equal(m.subject, "Übersicht für März und cafés");
	assert_string_equal(m.from, "\"André Pirard\" <pirard@example.be>");
	assert_string_equal(m.to, "\"Иван\" <ivan@example.ru>");
	assert_string_equal(m.display_to, "Иван");
	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].section, "2");
	assert_string_equal(m.att[0].name, "Preise März.xls");
	assert_int_equal(m.att[0].size, 5);
	msgconv_msg_clear(&m);
}

/* RFC 2231 continuations with a charset; a message that is one attachment (section 1). */
static void
test_rfc2231_single_part(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("rfc2231.eml", NULL, &m);
	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].section, "1");
	assert_string_equal(m.att[0].name, "€ rates 2026.pdf");
	assert_string_equal(m.att[0].content_type, "application/pdf");
	assert_int_equal(m.att[0].size, 9);
	assert_null(m.plain);
	assert_null(m.html);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "");
	free(t);
	msgconv_msg_clear(&m);
}

/* Undeclared 8-bit latin-1 (body and headers): windows-1252 by default, or the fallback given. */
static void
test_latin1_8bit(void **state)
{
	static const char *const latin1[] = {"iso-8859-1", NULL};
	struct msgconv_opts opts = {.fallback_charsets = latin1};
	struct msgconv_msg m;
	char *t;

	parse_file("latin1_8bit.eml", NULL, &m);
	assert_string_equal(m.subject, "Café con leche");
	assert_string_equal(m.from, "\"José\" <jose@example.es>");
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(lf(t), "Grüße aus Köln, 10 € bitte.\n");
	free(t);
	msgconv_msg_clear(&m);

	/* 0x80 is a C1 control in ISO-8859-1, the euro sign in windows-1252. */
	parse_file("latin1_8bit.eml", &opts, &m);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(lf(t), "Grüße aus Köln, 10 \xC2\x80 bitte.\n");
	free(t);
	msgconv_msg_clear(&m);
}

/* Quoted-printable: soft line breaks joined, even inside a UTF-8 character. */
static void
test_qp_soft_breaks(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("qp_soft.eml", NULL, &m);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(lf(t), "This is a long line that was wrapped by the sender's mailer at "
	                           "seventy-six characters, with a café split across the soft "
	                           "break, and a=b.\nSecond line. \n");
	free(t);
	msgconv_msg_clear(&m);
}

/* An HTML-only newsletter asked as plain text: rendered, script and style gone. */
static void
test_html_newsletter(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("newsletter_html.eml", NULL, &m);
	assert_null(m.plain);
	assert_int_equal(m.native_body_type, MSGCONV_BODY_HTML);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "Spring sale\n"
	                       "\n"
	                       "Dear customer,\n"
	                       "our spring sale starts today & runs until Sunday. Café édition "
	                       "€5\xC2\xA0off.\n"
	                       "\n"
	                       "- Shoes\n"
	                       "- Shirts\n"
	                       "\n"
	                       "1. Visit\n"
	                       "2. Buy\n"
	                       "\n"
	                       "See the offers <https://shop.example/sale> or write to "
	                       "help@shop.example.\n"
	                       "\n"
	                       "Item Price\n"
	                       "Hat 10");
	assert_null(strstr(t, "tracking"));
	assert_null(strstr(t, "color"));
	assert_null(strstr(t, "newsletter"));
	free(t);
	/* The HTML itself, converted from its declared ISO-8859-1. */
	t = body_of(&m, MSGCONV_BODY_HTML);
	assert_non_null(strstr(t, "Café &eacute;dition"));
	free(t);
	t = msgconv_preview(&m, 40);
	assert_string_equal(t, "Spring sale Dear customer, our spring sa");
	free(t);
	msgconv_msg_clear(&m);
}

/*
 * The HTML-only body rendered ahead (msgconv_render, done off the loop):
 * type 1 and the Preview read the rendering, the same text as rendered when
 * asked; a message with a plain body is left as it is.
 */
static void
test_render_ahead(void **state)
{
	struct msgconv_msg m;
	char *t, *pv, *t2, *pv2;

	(void)state;
	parse_file("newsletter_html.eml", NULL, &m);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	pv = msgconv_preview(&m, 40);
	assert_null(m.html_text);
	msgconv_render(&m);
	assert_non_null(m.html_text);
	assert_string_equal(m.html_text, t);
	assert_int_equal(m.html_text_len, strlen(t));
	t2 = body_of(&m, MSGCONV_BODY_PLAIN);
	pv2 = msgconv_preview(&m, 40);
	assert_string_equal(t2, t);
	assert_string_equal(pv2, pv);
	/* what type 1 sends is the rendering kept */
	m.html_text[0] = 'X';
	free(t2);
	t2 = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_int_equal(t2[0], 'X');
	free(t);
	free(t2);
	free(pv);
	free(pv2);
	msgconv_msg_clear(&m);

	parse_file("alternative.eml", NULL, &m);
	msgconv_render(&m);
	assert_null(m.html_text);
	msgconv_msg_clear(&m);
}

/* An HTML part with no charset parameter: the one its <meta> names (not windows-1252). */
static void
test_html_meta_charset(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("html_meta_charset.eml", NULL, &m);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "Zażółć gęślą jaźń");
	free(t);
	msgconv_msg_clear(&m);
}

/* A plain-only message asked as HTML: escaped text in <pre>. */
static void
test_plain_as_html(void **state)
{
	static const char raw[] = "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n"
	                          "\r\nif a < b && c > d\r\n\"quoted\"\r\n";
	struct msgconv_msg m;
	const char *err;
	char *t;

	assert_int_equal(msgconv_parse(raw, sizeof(raw) - 1, NULL, &m, &err), 0);
	assert_int_equal(m.native_body_type, MSGCONV_BODY_PLAIN);
	t = body_of(&m, MSGCONV_BODY_HTML);
	assert_non_null(strstr(t, "<pre"));
	assert_non_null(
	    strstr(t, ">if a &lt; b &amp;&amp; c &gt; d\r\n&quot;quoted&quot;\r\n</pre>"));
	free(t);
	msgconv_msg_clear(&m);
}

/* S/MIME: multipart/signed (signature not listed) and an opaque enveloped message. */
static void
test_smime(void **state)
{
	struct msgconv_msg m;
	char *t;

	parse_file("smime_signed.eml", NULL, &m);
	assert_string_equal(m.message_class, "IPM.Note.SMIME.MultipartSigned");
	assert_int_equal(m.n_att, 0);
	t = body_of(&m, MSGCONV_BODY_PLAIN);
	assert_string_equal(t, "Signed text.");
	free(t);
	msgconv_msg_clear(&m);

	parse_file("smime_enveloped.eml", NULL, &m);
	assert_string_equal(m.message_class, "IPM.Note.SMIME");
	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].section, "1");
	assert_string_equal(m.att[0].name, "smime.p7m");
	assert_string_equal(m.att[0].content_type, "application/pkcs7-mime");
	msgconv_msg_clear(&m);
}

/* A meeting request: class, content class, the calendar kept, the .ics attachment at 2. */
static void
test_meeting_request(void **state)
{
	struct msgconv_msg m;

	parse_file("meeting_request.eml", NULL, &m);
	assert_string_equal(m.message_class, "IPM.Schedule.Meeting.Request");
	assert_string_equal(m.content_class, "urn:content-classes:calendarmessage");
	assert_non_null(m.calendar);
	assert_non_null(strstr(m.calendar, "UID:meeting-1@example.com"));
	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].section, "2");
	assert_string_equal(m.att[0].name, "invite.ics");
	assert_string_equal(m.att[0].content_type, "application/ics");
	msgconv_msg_clear(&m);
}

/*
 * Truncation never cuts a UTF-8 character: "ab€" (61 62 E2 82 AC) cut at 3
 * or 4 bytes gives "ab", at 5 the whole; Truncated and EstimatedDataSize.
 * AllOrNone: a body that does not fit gets no data, one that fits all of it.
 */
static void
test_truncation(void **state)
{
	static const char raw[] = "From: a@example.com\r\nSubject: t\r\n"
	                          "Content-Type: text/plain; charset=utf-8\r\n\r\nab\xE2\x82\xAC";
	struct msgconv_msg m;
	struct msgconv_body b;
	const char *err;

	assert_int_equal(msgconv_parse(raw, sizeof(raw) - 1, NULL, &m, &err), 0);
	for (size_t cut = 3; cut <= 4; cut++) {
		assert_int_equal(msgconv_body(&m, MSGCONV_BODY_PLAIN, cut, false, &b, &err), 0);
		assert_string_equal(b.data, "ab");
		assert_int_equal(b.len, 2);
		assert_true(b.truncated);
		assert_int_equal(b.estimated_size, 5);
		msgconv_body_clear(&b);
	}
	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_PLAIN, 5, false, &b, &err), 0);
	assert_string_equal(b.data, "ab\xE2\x82\xAC");
	assert_false(b.truncated);
	msgconv_body_clear(&b);

	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_PLAIN, 4, true, &b, &err), 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_true(b.truncated);
	assert_int_equal(b.estimated_size, 5);
	msgconv_body_clear(&b);
	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_PLAIN, 5, true, &b, &err), 0);
	assert_string_equal(b.data, "ab\xE2\x82\xAC");
	assert_false(b.truncated);
	msgconv_body_clear(&b);
	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_PLAIN, 0, true, &b, &err), 0);
	assert_string_equal(b.data, "ab\xE2\x82\xAC");
	msgconv_body_clear(&b);

	/* MIME truncated on the same rule; an unknown type is refused. */
	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_MIME, 10, false, &b, &err), 0);
	assert_string_equal(b.data, "From: a@ex");
	assert_int_equal(b.estimated_size, sizeof(raw) - 1);
	msgconv_body_clear(&b);
	assert_int_equal(msgconv_body(&m, 3, 0, false, &b, &err), -1);
	msgconv_msg_clear(&m);

	/* Without the bytes kept, no MIME. */
	assert_int_equal(
	    msgconv_parse(raw, sizeof(raw) - 1, &(struct msgconv_opts){.no_mime = true}, &m, &err),
	    0);
	assert_null(m.mime);
	assert_int_equal(msgconv_body(&m, MSGCONV_BODY_MIME, 0, false, &b, &err), -1);
	msgconv_msg_clear(&m);
}

/* No Date: the fallback (INTERNALDATE); nothing at all is refused. */
static void
test_date_fallback_and_empty(void **state)
{
	static const char raw[] = "Subject: no date\r\n\r\nbody\r\n";
	struct msgconv_msg m;
	const char *err = NULL;

	assert_int_equal(msgconv_parse(raw, sizeof(raw) - 1,
	                               &(struct msgconv_opts){.date_fallback = 1700000000}, &m,
	                               &err),
	                 0);
	assert_int_equal(m.date_received, 1700000000);
	assert_string_equal(m.from, "");
	assert_string_equal(m.to, "");
	msgconv_msg_clear(&m);
	/* An unreadable Date too; an encoded Thread-Topic is decoded. */
	static const char bad[] = "Date: not a date at all\r\n"
	                          "Thread-Topic: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx\r\n";
	assert_int_equal(msgconv_parse(bad, sizeof(bad) - 1,
	                               &(struct msgconv_opts){.date_fallback = 1700000000}, &m,
	                               &err),
	                 0);
	assert_int_equal(m.date_received, 1700000000);
	assert_string_equal(m.thread_topic, "Grüße");
	msgconv_msg_clear(&m);
	static const char re[] = "Subject: Re[2]: AW: Fwd:Budget: 2026\r\n\r\nx\r\n";
	assert_int_equal(msgconv_parse(re, sizeof(re) - 1, NULL, &m, &err), 0);
	assert_string_equal(m.thread_topic, "Budget: 2026");
	msgconv_msg_clear(&m);
	assert_int_equal(msgconv_parse("", 0, NULL, &m, &err), -1);
	assert_non_null(err);
	msgconv_msg_clear(&m);
}

/* The renderer alone: <br>, nested lists, a link that is its address, pre kept. */
static void
test_html_to_text(void **state)
{
	static const char html[] = "<div>one<br>two</div><ul><li>a<ul><li>b</li></ul></li></ul>"
	                           "<p><a href=\"https://x.example/\">https://x.example/</a></p>"
	                           "<pre>  keep\n   this</pre><p>&lt;tag&gt; &#8364;</p>";
	size_t n;
	char *t = html_to_text(html, sizeof(html) - 1, &n);

	assert_string_equal(t, "one\ntwo\n\n- a\n\n  - b\n\nhttps://x.example/\n\n  keep\n   "
	                       "this\n\n<tag> €");
	assert_int_equal(n, strlen(t));
	free(t);
	t = html_to_text("", 0, &n);
	assert_string_equal(t, "");
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alternative),
	    cmocka_unit_test(test_mixed_pdf),
	    cmocka_unit_test(test_nested_rfc822),
	    cmocka_unit_test(test_rfc2047),
	    cmocka_unit_test(test_rfc2231_single_part),
	    cmocka_unit_test(test_latin1_8bit),
	    cmocka_unit_test(test_qp_soft_breaks),
	    cmocka_unit_test(test_html_newsletter),
	    cmocka_unit_test(test_render_ahead),
	    cmocka_unit_test(test_html_meta_charset),
	    cmocka_unit_test(test_plain_as_html),
	    cmocka_unit_test(test_smime),
	    cmocka_unit_test(test_meeting_request),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_date_fallback_and_empty),
	    cmocka_unit_test(test_html_to_text),
	};
	msgconv_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
