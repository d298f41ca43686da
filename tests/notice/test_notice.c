/*
 * test_notice.c: unit tests of the notices' MIME rendering, encoded words,
 * locale parsing and template choice (against a real SQLite store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/mime.h"
#include "notice/sender.h"
#include "notice/templates.h"
#include "store/store.h"

/* Every line of msg ends in CRLF and is at most max octets. */
static void
assert_lines(const char *msg, size_t max)
{
	const char *p = msg, *nl;

	while ((nl = strchr(p, '\n')) != NULL) {
		assert_true(nl > p && nl[-1] == '\r');
		assert_true((size_t)(nl - p - 1) <= max);
		p = nl + 1;
	}
	assert_string_equal(p, "");
}

/* Quoted-printable: '=', non-ASCII, trailing space, long lines, LF to CRLF. */
static void
test_qp(void **state)
{
	char *q = mime_qp("a=b é \nline2\r\nend");
	char long_line[300];

	assert_string_equal(q, "a=3Db =C3=A9=20\r\nline2\r\nend\r\n");
	free(q);
	memset(long_line, 'x', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	q = mime_qp(long_line);
	assert_lines(q, 76);
	free(q);
}

/* Encoded words: ASCII stays, UTF-8 is B-encoded in words <= 75, CR/LF gone. */
static void
test_encoded_words(void **state)
{
	char *h = mime_encode_header("Device blocked");

	assert_string_equal(h, "Device blocked");
	free(h);
	h = mime_encode_header("Gerät");
	assert_string_equal(h, "=?UTF-8?B?R2Vyw6R0?=");
	free(h);
	h = mime_encode_header("a\r\nBcc: evil@example.com");
	assert_null(strchr(h, '\n'));
	free(h);
	h = mime_encode_header("ééééééééééééééééééééééééééééééééééééééééééééééé");
	assert_non_null(strstr(h, "?=\r\n =?UTF-8?B?"));
	for (const char *p = h, *e; *p; p = e + (*e ? 2 : 0)) {
		e = strstr(p, "\r\n");
		if (e == NULL)
			e = p + strlen(p);
		assert_true(e - p <= 76);
	}
	free(h);
}

/* The whole message: headers, parts, CRLF, refusals of injected headers. */
static void
test_render(void **state)
{
	const char *err = NULL;
	struct mime_message m = {.from = "ABQ <mobile-admin@example.com>",
	                         .to = "alice@example.com",
	                         .reply_to = "it@example.com",
	                         .subject = "Ihr Gerät",
	                         .body_plain = "Hello\nWorld",
	                         .date = 1700000000};
	char *msg = mime_render(&m, &err), *msg2;

	assert_non_null(msg);
	assert_lines(msg, 998);
	assert_non_null(strstr(msg, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(msg, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(msg, "@example.com>\r\n"));
	assert_non_null(strstr(msg, "From: ABQ <mobile-admin@example.com>\r\n"));
	assert_non_null(strstr(msg, "To: alice@example.com\r\n"));
	assert_non_null(strstr(msg, "Reply-To: it@example.com\r\n"));
	assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
	assert_non_null(strstr(msg, "Auto-Submitted: auto-generated\r\n"));
	assert_non_null(strstr(msg, "multipart/alternative"));
	assert_non_null(strstr(msg, "text/plain; charset=UTF-8"));
	assert_non_null(strstr(msg, "text/html; charset=UTF-8"));
	assert_non_null(strstr(msg, "Hello\r\nWorld\r\n"));
	msg2 = mime_render(&m, &err);
	assert_string_not_equal(strstr(msg, "Message-ID:"), strstr(msg2, "Message-ID:"));
	free(msg);
	free(msg2);

	m.to = "alice@example.com\r\nBcc: evil@example.com";
	assert_null(mime_render(&m, &err));
	assert_non_null(err);
	m.to = "alice@example.com";
	m.reply_to = "x\nBcc: y";
	assert_null(mime_render(&m, &err));
	m.reply_to = NULL;
	m.from = NULL;
	assert_null(mime_render(&m, &err));
}

/* OSLanguage values to languages. */
static void
test_locale(void **state)
{
	char l[8];

	notice_locale_lang("de-DE", l, sizeof(l));
	assert_string_equal(l, "de");
	notice_locale_lang("German", l, sizeof(l));
	assert_string_equal(l, "de");
	notice_locale_lang("fr", l, sizeof(l));
	assert_string_equal(l, "fr");
	notice_locale_lang("", l, sizeof(l));
	assert_string_equal(l, "");
	notice_locale_lang("Klingonese", l, sizeof(l));
	assert_string_equal(l, "");
}

/* The retry delays grow and are capped at an hour. */
static void
test_retry_delay(void **state)
{
	assert_int_equal(notice_retry_delay(1), 30);
	assert_int_equal(notice_retry_delay(2), 60);
	assert_true(notice_retry_delay(4) > notice_retry_delay(3));
	assert_int_equal(notice_retry_delay(100), 3600);
}

/* Template choice: domain+locale, domain+lang, global+locale, global+lang, built-in. */
static void
test_select(void **state)
{
	char dir[] = "/tmp/abq-notice-XXXXXX", url[128];
	const char *err = NULL;
	struct abq_store *s;
	struct abq_template t;
	struct abq_template g_de = {.scope = ABQ_SCOPE_GLOBAL,
	                            .kind = "user-blocked",
	                            .locale = "de",
	                            .subject = "global de"};
	struct abq_template d_dede = {.scope = ABQ_SCOPE_DOMAIN,
	                              .domain = "example.com",
	                              .kind = "user-blocked",
	                              .locale = "de-DE",
	                              .subject = "domain de-DE"};
	struct abq_template d_fr = {.scope = ABQ_SCOPE_DOMAIN,
	                            .domain = "example.com",
	                            .kind = "user-blocked",
	                            .locale = "fr",
	                            .subject = "domain fr",
	                            .from = "it@example.com"};

	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "sqlite:%s/abq.db", dir);
	s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);
	assert_non_null(s);
	assert_int_equal(abq_store_template_put(s, &g_de, &err), 0);
	assert_int_equal(abq_store_template_put(s, &d_dede, &err), 0);
	assert_int_equal(abq_store_template_put(s, &d_fr, &err), 0);

#define PICKED(domain, locale, want)                                                               \
	do {                                                                                       \
		assert_int_equal(                                                                  \
		    notice_template_select(s, domain, "user-blocked", locale, &t, &err), 0);       \
		assert_string_equal(t.subject, want);                                              \
		assert_non_null(t.body_plain);                                                     \
		assert_non_null(t.body_html);                                                      \
		abq_template_clear(&t);                                                            \
	} while (0)
	PICKED("example.com", "de-DE", "domain de-DE");
	PICKED("example.com", "de-AT", "global de");
	PICKED("example.com", "French", "domain fr");
	PICKED("other.com", "fr-FR", "Your device {device_id} was blocked");
	PICKED("other.com", "German", "global de");
	PICKED(NULL, "de-CH", "global de");
	PICKED(NULL, NULL, "Your device {device_id} was blocked");
#undef PICKED
	assert_int_equal(notice_template_select(s, NULL, "no-such-kind", NULL, &t, &err), -1);
	for (const char *const *k =
	         (const char *const[]){"user-quarantined", "user-blocked", "user-allowed",
	                               "admin-digest", "admin-immediate", NULL};
	     *k; k++)
		assert_non_null(notice_template_builtin(*k));
	assert_non_null(strstr(notice_template_builtin("admin-digest-entry")->body_plain,
	                       "abqctl mobile abq allow {device_id} account {account}"));
	abq_store_close(&s);
	snprintf(url, sizeof(url), "rm -rf '%s'", dir);
	assert_int_equal(system(url), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qp),          cmocka_unit_test(test_encoded_words),
	    cmocka_unit_test(test_render),      cmocka_unit_test(test_locale),
	    cmocka_unit_test(test_retry_delay), cmocka_unit_test(test_select),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
