/*
 * test_compose.c: SmartReply/SmartForward's outgoing message (compose.c)
 * read back with msgconv as the recipient's phone would read it: the
 * phone's text and the quoted or forwarded original in both bodies, the
 * attachments with their names, types and Content-IDs, the threading
 * headers; every output 7-bit with CRLF line ends. Also SaveInSent's copy
 * (Bcc kept) against what submission sends (Bcc dropped), and the envelope
 * recipients submission takes from a message (submit_recipients).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime/compose.h"
#include "mime/msgconv.h"
#include "native/submit.h"

/* The bytes of DIR/NAME (free them). */
static char *
read_file(const char *dir, const char *name, size_t *len_r)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

/* Every byte 7-bit, every LF after a CR, every line at most 998 bytes. */
static void
assert_7bit_crlf(const char *s, size_t len)
{
	size_t line = 0;

	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			fail_msg("8-bit byte at %zu", i);
		if (s[i] == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				fail_msg("bare LF at %zu", i);
			line = 0;
		} else if (++line > 999)
			fail_msg("line over 998 bytes at %zu", i);
	}
}

/* Lines as a phone shows them: the CRs of CRLF dropped (in place). */
static void
strip_cr(char *s, size_t *len)
{
	size_t j = 0;

	if (s == NULL)
		return;
	for (size_t i = 0; i < *len; i++)
		if (s[i] != '\r')
			s[j++] = s[i];
	s[j] = '\0';
	*len = j;
}

/*
 * compose_smart of phone (compose_data/) and original (in odir) as kind;
 * the result checked 7-bit/CRLF and parsed into *m. Returns the bytes.
 */
static char *
compose(int kind, const char *phone, const char *odir, const char *original, struct msgconv_msg *m)
{
	struct compose_req req = {.kind = kind};
	const char *err = NULL;
	char *p, *o, *out;
	size_t plen, olen, outlen;

	p = read_file(COMPOSE_DATA_DIR, phone, &plen);
	o = read_file(odir, original, &olen);
	req.phone = p;
	req.phone_len = plen;
	req.original = o;
	req.original_len = olen;
	if (compose_smart(&req, &out, &outlen, &err) != 0)
		fail_msg("compose %s + %s: %s", phone, original, err);
	free(p);
	free(o);
	assert_int_equal(strlen(out), outlen);
	assert_7bit_crlf(out, outlen);
	if (msgconv_parse(out, outlen, NULL, m, &err) != 0)
		fail_msg("the result does not parse: %s", err);
	strip_cr(m->plain, &m->plain_len);
	strip_cr(m->html, &m->html_len);
	return out;
}

/* The attachment called name, or a failure. */
static const struct msgconv_attachment *
att_named(const struct msgconv_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n_att; i++)
		if (strcmp(m->att[i].name, name) == 0)
			return &m->att[i];
	fail_msg("no attachment %s among %zu", name, m->n_att);
	return NULL;
}

/* Reply to a multipart/alternative: both bodies quoted, threading set. */
static void
test_reply_alternative(void **state)
{
	struct msgconv_msg m;
	char *out =
	    compose(COMPOSE_REPLY, "phone_alt.eml", MSGCONV_DATA_DIR, "alternative.eml", &m);

	assert_string_equal(m.subject, "Fwd: Monthly figures"); /* the phone's own */
	assert_non_null(m.plain);
	assert_non_null(strstr(m.plain, "See below, Bob.\n"));
	assert_non_null(strstr(m.plain, "On Tue, 3 Mar 2026 at 09:15, Anna Müller "
	                                "<anna@example.org> wrote:\n> Hi Bob,\n>\n"
	                                "> the report is attached. Grüße, Anna"));
	assert_true(strstr(m.plain, "See below") < strstr(m.plain, "wrote:"));
	assert_non_null(m.html);
	assert_non_null(strstr(m.html, "<div>See below, Bob.</div><br><div>On Tue, 3 Mar 2026"));
	assert_non_null(strstr(m.html, "<blockquote type=\"cite\""));
	assert_non_null(strstr(m.html, "<p>the report is attached. Grüße, Anna</p></blockquote>"));
	assert_null(strstr(m.html, "<html><body><p>Hi")); /* only the original's <body> inside */
	assert_string_equal(m.in_reply_to, "20260303091500.1234@mail.example.org");
	assert_int_equal(m.n_references, 3);
	assert_string_equal(m.references[0], "root-0@example.com");
	assert_string_equal(m.references[2], "20260303091500.1234@mail.example.org");
	assert_int_equal(m.n_att, 0);
	msgconv_msg_clear(&m);
	free(out);
}

/* Forward of a PDF and an inline image: both attached as they were. */
static void
test_forward_pdf_inline(void **state)
{
	struct msgconv_msg m, orig;
	size_t olen;
	const char *err;
	char *o = read_file(COMPOSE_DATA_DIR, "original_pdf_inline.eml", &olen);
	char *out = compose(COMPOSE_FORWARD, "phone_alt.eml", COMPOSE_DATA_DIR,
	                    "original_pdf_inline.eml", &m);

	assert_int_equal(msgconv_parse(o, olen, NULL, &orig, &err), 0);
	assert_non_null(strstr(m.plain,
	                       "See below, Bob.\n\n---------- Forwarded message "
	                       "----------\nFrom: Rita Reports <rita@example.org>\n"
	                       "Date: Wed, 4 Mar 2026 at 10:00\nSubject: Monthly figures\n"
	                       "To: Alice Test <alice@example.test>\nCc: bob@example.test\n\n"
	                       "The figures are in the PDF.\nLogo below."));
	assert_null(strstr(m.plain, "> The figures")); /* a forward is not quoted */
	assert_non_null(strstr(m.html, "<img src=\"cid:logo@example.org\""));
	assert_null(strstr(m.html, "color:red")); /* the original's <head> is not carried */
	assert_int_equal(m.n_att, 2);
	const struct msgconv_attachment *logo = att_named(&m, "logo.png");
	assert_string_equal(logo->content_type, "image/png");
	assert_string_equal(logo->content_id, "logo@example.org");
	assert_true(logo->is_inline);
	assert_int_equal(logo->size, att_named(&orig, "logo.png")->size);
	const struct msgconv_attachment *pdf = att_named(&m, "Bericht März.pdf");
	assert_string_equal(pdf->content_type, "application/pdf");
	assert_false(pdf->is_inline);
	assert_int_equal(pdf->size, att_named(&orig, "Bericht März.pdf")->size);
	/* The image sits beside the HTML in multipart/related, the PDF in mixed. */
	assert_non_null(strstr(out, "Content-Type: multipart/mixed"));
	assert_non_null(strstr(out, "Content-Type: multipart/related"));
	assert_true(strstr(out, "multipart/related") < strstr(out, "image/png"));
	assert_null(m.in_reply_to); /* only replies thread */
	msgconv_msg_clear(&m);
	msgconv_msg_clear(&orig);
	free(out);
	free(o);
}

/* A reply carries the inline image its quote shows, never the PDF. */
static void
test_reply_keeps_shown_image_only(void **state)
{
	struct msgconv_msg m;
	char *out = compose(COMPOSE_REPLY, "phone_alt.eml", COMPOSE_DATA_DIR,
	                    "original_pdf_inline.eml", &m);

	assert_int_equal(m.n_att, 1);
	assert_string_equal(m.att[0].name, "logo.png");
	assert_string_equal(m.att[0].content_id, "logo@example.org");
	assert_non_null(strstr(m.plain, "> The figures are in the PDF.\n> Logo below."));
	assert_string_equal(m.in_reply_to, "figures-1@example.org");
	assert_int_equal(m.n_references, 2);
	msgconv_msg_clear(&m);
	free(out);

	/* A plain-only phone reply shows no image: nothing attached. */
	out = compose(COMPOSE_REPLY, "phone_plain.eml", COMPOSE_DATA_DIR, "original_pdf_inline.eml",
	              &m);
	assert_int_equal(m.n_att, 0);
	assert_null(m.html);
	msgconv_msg_clear(&m);
	free(out);
}

/* An 8-bit windows-1252 original without a charset: quoted in UTF-8, sent 7-bit. */
static void
test_reply_latin1_original(void **state)
{
	struct msgconv_msg m;
	char *out =
	    compose(COMPOSE_REPLY, "phone_plain.eml", MSGCONV_DATA_DIR, "latin1_8bit.eml", &m);

	{
		const char *head = "Thanks, looks good. Grüße\n\nOn Sun";
		assert_true(strncmp(m.plain, head, strlen(head)) == 0);
	}
	assert_non_null(strstr(m.plain,
	                       "On Sun, 8 Mar 2026 at 14:00, José <jose@example.es> wrote:\n"
	                       "> Grüße aus Köln, 10 € bitte."));
	/* The phone's 8-bit part went out quoted-printable or base64. */
	assert_null(strstr(out, "Content-Transfer-Encoding: 8bit"));
	assert_null(m.in_reply_to); /* the original has no Message-ID */
	msgconv_msg_clear(&m);
	free(out);
}

/* The phone's message with its own attachment: both its and the original's kept. */
static void
test_forward_from_multipart_phone(void **state)
{
	struct msgconv_msg m;
	char *out = compose(COMPOSE_FORWARD, "phone_mixed.eml", COMPOSE_DATA_DIR,
	                    "original_pdf_inline.eml", &m);

	assert_non_null(strstr(m.plain, "My photo too.\n\n---------- Forwarded message"));
	assert_int_equal(m.n_att, 3);
	assert_string_equal(att_named(&m, "photo.jpg")->content_type, "image/jpeg");
	att_named(&m, "logo.png");
	att_named(&m, "Bericht März.pdf");
	/* One multipart/mixed: the phone's, grown. */
	const char *first = strstr(out, "multipart/mixed");
	assert_non_null(first);
	assert_null(strstr(first + 1, "multipart/mixed"));
	/* The Bcc is the phone's business: compose keeps it, submission drops it. */
	assert_non_null(strstr(out, "Bcc: dave@example.test"));
	msgconv_msg_clear(&m);
	free(out);
}

/* ReplaceMime: the phone's bytes, exactly. */
static void
test_replace_mime(void **state)
{
	struct compose_req req = {.kind = COMPOSE_REPLY, .replace_mime = true};
	size_t plen, olen, outlen;
	const char *err;
	char *p = read_file(COMPOSE_DATA_DIR, "phone_plain.eml", &plen);
	char *o = read_file(COMPOSE_DATA_DIR, "original_pdf_inline.eml", &olen);
	char *out;

	req.phone = p;
	req.phone_len = plen;
	req.original = o;
	req.original_len = olen;
	assert_int_equal(compose_smart(&req, &out, &outlen, &err), 0);
	assert_int_equal(outlen, plen);
	assert_memory_equal(out, p, plen);
	free(out);
	free(p);
	free(o);
}

/* Garbage and caps are refused, not crashed on. */
static void
test_refusals(void **state)
{
	struct compose_req req = {.kind = COMPOSE_FORWARD};
	const char *err = NULL;
	char *out;
	size_t outlen;

	assert_int_equal(compose_smart(&req, &out, &outlen, &err), -1);
	assert_non_null(err);
	req.phone = "Subject: x\r\n\r\nhi\r\n";
	req.phone_len = strlen(req.phone);
	req.original = "";
	req.original_len = 0;
	assert_int_equal(compose_smart(&req, &out, &outlen, &err), -1);
	req.kind = 7;
	req.original = req.phone;
	req.original_len = req.phone_len;
	assert_int_equal(compose_smart(&req, &out, &outlen, &err), -1);
}

/* SaveInSent keeps the Bcc, submission drops it; both get the same Date and Message-ID. */
static void
test_sent_copy_and_header_block(void **state)
{
	const char *msg =
	    "From: Alice <alice@example.test>\nTo: bob@example.test\n"
	    "Bcc: dave@example.test,\n  erin@example.test\nSubject: hi\n\nline 1\nline 2\n";
	char *copy, *hdr, *hdr2;
	size_t len, hlen, body_off, h2len, b2;
	const char *err;

	assert_int_equal(
	    compose_sent_copy(msg, strlen(msg), "alice@example.test", &copy, &len, &err), 0);
	assert_7bit_crlf(copy, len);
	assert_non_null(strstr(copy, "Bcc: dave@example.test,\r\n  erin@example.test\r\n"));
	assert_true(strncmp(copy, "Date: ", 6) == 0);
	assert_non_null(strstr(copy, "\r\nMessage-ID: <"));
	assert_non_null(strstr(copy, "@example.test>\r\nFrom: Alice"));
	assert_non_null(strstr(copy, "\r\n\r\nline 1\r\nline 2\r\n"));

	/* What submission sends of the copy: the same but the Bcc (folded lines too). */
	compose_split_header(copy, len, &hlen, &body_off);
	hdr = compose_header_block(copy, hlen, "alice@example.test", true, &h2len);
	assert_null(strstr(hdr, "Bcc"));
	assert_null(strstr(hdr, "erin"));
	assert_true(strncmp(hdr, copy, strstr(copy, "Bcc:") - copy) ==
	            0); /* same Date, Message-ID */
	assert_string_equal(hdr + h2len - 6, "hi\r\n\r\n");
	/* A message with its own Date and Message-ID keeps them, nothing added. */
	hdr2 = compose_header_block("Date: x\nMessage-Id: <a@b>\n", 26, NULL, true, &b2);
	assert_string_equal(hdr2, "Date: x\r\nMessage-Id: <a@b>\r\n\r\n");
	free(hdr);
	free(hdr2);
	free(copy);
}

/* Envelope recipients: To, Cc and Bcc, groups opened, duplicates once, IDN in ASCII. */
static void
test_recipients(void **state)
{
	const char *msg = "From: alice@example.test\r\n"
	                  "To: =?utf-8?q?Bob_M=C3=BCller?= <bob@example.test>, \"Carol, C.\" "
	                  "<carol@elsewhere.test>\r\n"
	                  "Cc: team: BOB@example.test, erin@b\xc3\xbc"
	                  "cher.example;, frank@example.test\r\n"
	                  "Bcc: dave@example.test\r\n\r\nbody: not@read.example\r\n";
	char **r, *bad = NULL;
	size_t n;
	const char *err;

	r = submit_recipients(msg, strlen(msg), 100, &n, &bad, &err);
	assert_non_null(r);
	assert_int_equal(n, 5);
	assert_string_equal(r[0], "bob@example.test");
	assert_string_equal(r[1], "carol@elsewhere.test");
	assert_string_equal(r[2], "erin@xn--bcher-kva.example");
	assert_string_equal(r[3], "frank@example.test");
	assert_string_equal(r[4], "dave@example.test");
	assert_null(r[5]);
	submit_rcpt_free(r);
	/* The cap. */
	assert_null(submit_recipients(msg, strlen(msg), 4, &n, &bad, &err));
	assert_string_equal(err, "too many recipients");
	/* No recipients; one that is no address. */
	assert_null(submit_recipients("Subject: x\r\n\r\n", 14, 100, &n, &bad, &err));
	assert_null(bad);
	assert_null(submit_recipients("To: bob\r\n\r\n", 11, 100, &n, &bad, &err));
	assert_non_null(bad);
	assert_string_equal(bad, "bob");
	free(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_alternative),
	    cmocka_unit_test(test_forward_pdf_inline),
	    cmocka_unit_test(test_reply_keeps_shown_image_only),
	    cmocka_unit_test(test_reply_latin1_original),
	    cmocka_unit_test(test_forward_from_multipart_phone),
	    cmocka_unit_test(test_replace_mime),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_sent_copy_and_header_block),
	    cmocka_unit_test(test_recipients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
