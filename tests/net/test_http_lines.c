/*
 * test_http_lines.c: src/net/http_lines.c takes the lines it should and no
 * others. (That what it takes reads as libhttp-parser reads it is
 * fuzz/fuzz_lines.c's check, replayed over fuzz/corpus/lines.) A phone's and
 * an upstream's header blocks are taken whole up to the empty line, the
 * framing lines through the parser (its flags show them); every kind of line
 * it leaves (folded into, empty value, blank before the colon, bare LF or CR,
 * control byte, cut by the buffer) stops the walk right before that line; a
 * refused framing line and a failing callback stop it with the parser's error.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "net/http_lines.h"

static struct {
	int fields, values, lines;
	char last_field[64], last_value[256];
	int fail_field; /* the field callback fails on this call (1-based), 0: never */
} seen;

static int
on_field(http_parser *p, const char *at, size_t len)
{
	(void)p;
	seen.fields++;
	snprintf(seen.last_field, sizeof(seen.last_field), "%.*s", (int)len, at);
	return seen.fail_field == seen.fields ? -1 : 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
	(void)p;
	seen.values++;
	snprintf(seen.last_value, sizeof(seen.last_value), "%.*s", (int)len, at);
	return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
};

/* A request parser standing after its request line. */
static void
start_request(http_parser *p)
{
	static const char line[] = "POST / HTTP/1.1\r\n";

	memset(&seen, 0, sizeof(seen));
	http_parser_init(p, HTTP_REQUEST);
	assert_int_equal(http_parser_execute(p, &settings, line, sizeof(line) - 1),
	                 sizeof(line) - 1);
}

static void
test_phone_block(void **state)
{
	static const char block[] = "Host: mail.example.com\r\n"
	                            "Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
	                            "MS-ASProtocolVersion: 14.1\r\n"
	                            "Content-Length: 13\r\n"
	                            "Content-Type: application/vnd.ms-sync.wbxml\r\n"
	                            "User-Agent: Apple-iPhone/1402.100\r\n"
	                            "\r\n"
	                            "0123456789abc";
	http_parser p;
	(void)state;

	start_request(&p);
	size_t k = http_lines(&p, &settings, NULL, block, sizeof(block) - 1);
	assert_int_equal(k, strstr(block, "\r\n\r\n") + 2 - block);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
	assert_int_equal(seen.fields, 6);
	assert_int_equal(seen.values, 6);
	assert_string_equal(seen.last_field, "User-Agent");
	assert_string_equal(seen.last_value, "Apple-iPhone/1402.100");
	/* the rest through the parser: the Content-Length it read frames the body */
	assert_int_equal(http_parser_execute(&p, &settings, block + k, sizeof(block) - 1 - k),
	                 sizeof(block) - 1 - k);
	assert_true(p.flags & F_CONTENTLENGTH);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
}

static void
test_upstream_block(void **state)
{
	static const char msg[] = "HTTP/1.1 200 OK\r\n"
	                          "Server: nginx\r\n"
	                          "Content-Length: 4\r\n"
	                          "Connection: close\r\n"
	                          "MS-Server-ActiveSync: 14.1\r\n"
	                          "\r\n"
	                          "WBXM";
	http_parser p;
	(void)state;

	memset(&seen, 0, sizeof(seen));
	http_parser_init(&p, HTTP_RESPONSE);
	size_t k = http_status_line(&p, &settings, msg, sizeof(msg) - 1);
	assert_int_equal(k, 17);
	assert_int_equal(p.status_code, 200);
	k += http_lines(&p, &settings, NULL, msg + k, sizeof(msg) - 1 - k);
	assert_int_equal(k, strstr(msg, "\r\n\r\n") + 2 - msg);
	assert_int_equal(seen.fields, 4);
	assert_string_equal(seen.last_value, "14.1");
	http_parser_execute(&p, &settings, msg + k, sizeof(msg) - 1 - k);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
	assert_false(http_should_keep_alive(&p)); /* "Connection: close", read by the parser */
}

/* Lines left to the parser: the walk stops right before them. */
static void
test_stops(void **state)
{
	static const char *const left[] = {
	    "X-B: folded\r\n  into\r\n",     /* the next line folds into it */
	    "X-B: tab-folded\r\n\tinto\r\n", /* the same with HTAB */
	    "X-B:\r\n",                      /* empty value */
	    "X-B: \r\n",                     /* blanks only */
	    "X-B:  two spaces\r\n",          /* more than one blank before the value */
	    "X-B:\tv\r\n",                   /* HTAB before the value */
	    "X-B : v\r\n",                   /* blank before the colon */
	    "X-B: v\nX-C: w\r\n",            /* bare LF */
	    "X-B: v\rX-C: w\r\n",            /* bare CR */
	    "X-B: a\x01z\r\n",               /* control byte */
	    "X-B: a\x7fz\r\n",               /* DEL */
	    "X-B: 0123456789\x1b"
	    "0123456789\r\n",         /* control byte past a whole word */
	    "X-\xc3\xa9: v\r\n",      /* a name byte that is no token */
	    "X-B v\r\n",              /* no colon */
	    ": v\r\n",                /* no name */
	    "X-B: cut by the buffer", /* no line end yet */
	    "X-B: v\r\n",             /* no byte after the line: folding unknown */
	};
	char buf[256];
	(void)state;

	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
		http_parser p;
		size_t n = (size_t)snprintf(buf, sizeof(buf), "X-A: a\r\n%s", left[i]);

		start_request(&p);
		assert_int_equal(http_lines(&p, &settings, NULL, buf, n), 8);
		assert_int_equal(seen.fields, 1);
		assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
	}
}

/* What the parser refuses in a framing line, and a failing callback. */
static void
test_errors(void **state)
{
	static const char bad_length[] = "X-A: a\r\nContent-Length: 1a\r\n\r\n";
	static const char second[] = "X-A: a\r\nX-B: b\r\n\r\n";
	http_parser p;
	(void)state;

	start_request(&p);
	size_t k = http_lines(&p, &settings, NULL, bad_length, sizeof(bad_length) - 1);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_INVALID_CONTENT_LENGTH);
	assert_true(k > 8 && k < sizeof(bad_length) - 1);

	start_request(&p);
	seen.fail_field = 2;
	k = http_lines(&p, &settings, NULL, second, sizeof(second) - 1);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_CB_header_field);
	assert_int_equal(k, 8); /* stops before the line whose callback failed */
}

/*
 * A line callback takes the plain lines in place of the two header
 * callbacks; its error stops the walk before its line, with the error it
 * names.
 */
static int
on_line_fail_second(http_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
	(void)p;
	seen.lines++;
	seen.fields++;
	seen.values++;
	snprintf(seen.last_field, sizeof(seen.last_field), "%.*s", (int)nlen, name);
	snprintf(seen.last_value, sizeof(seen.last_value), "%.*s", (int)vlen, v);
	return seen.lines == 2 ? HPE_CB_header_value : 0;
}

static void
test_line_callback(void **state)
{
	static const char block[] = "X-A: a\r\nContent-Length: 0\r\nX-B: b\r\nX-C: c\r\n\r\n";
	http_parser p;
	size_t k;
	(void)state;

	start_request(&p);
	k = http_lines(&p, &settings, on_line_fail_second, block, sizeof(block) - 1);
	assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_CB_header_value);
	assert_int_equal(k, 27); /* before X-B */
	/* X-A and X-B by the line callback, Content-Length by the parser's */
	assert_int_equal(seen.lines, 2);
	assert_int_equal(seen.fields, 3);
	assert_string_equal(seen.last_field, "X-B");
	assert_string_equal(seen.last_value, "b");
	assert_true(p.flags & F_CONTENTLENGTH);
}

/* Status lines http_status_line leaves to the parser: nothing read. */
static void
test_status_left(void **state)
{
	static const char *const left[] = {
	    "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 200 OK\n\r\n", "HTTP/2.0 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",   "HTTP/1.1 200 OK",       "http/1.1 200 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\rX\n\r\n",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
		http_parser p;

		http_parser_init(&p, HTTP_RESPONSE);
		assert_int_equal(http_status_line(&p, &settings, left[i], strlen(left[i])), 0);
		assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
	}
}

/*
 * http_target_span against RFC 3986's sets spelled out, byte by byte: every
 * byte value at every position of targets of 1 to 72 bytes, so each lands in
 * a 16-byte step and in the tail.
 */
static void
test_target_span(void **state)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	                         "-._~"        /* unreserved */
	                         "!$&'()*+,;=" /* sub-delims */
	                         ":@/?%";
	char buf[73];

	(void)state;
	assert_int_equal(http_target_span("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice"
	                                  "&DeviceId=ABC123&DeviceType=iPhone HTTP/1.1",
	                                  91),
	                 82);
	assert_int_equal(http_target_span("", 0), 0);
	for (size_t len = 1; len <= 72; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				bool good = c != 0 && strchr(ok, c) != NULL;
				size_t want = good ? len : pos;

				memset(buf, 'a', len);
				buf[pos] = (char)c;
				if (http_target_span(buf, len) != want)
					fail_msg("len %zu, byte 0x%02x at %zu: %zu", len, c, pos,
					         http_target_span(buf, len));
			}
		}
	}
}

/*
 * http_token_span and http_value_span against RFC 9110's sets spelled out,
 * byte by byte: every byte value at every position of 1 to 72 bytes, so each
 * lands in a 16-byte step and in the tail.
 */
static void
test_line_spans(void **state)
{
	static const char tchar[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	                            "!#$%&'*+-.^_`|~";
	char buf[73];

	(void)state;
	assert_int_equal(http_token_span("MS-ASProtocolVersion: 14.1\r\n", 28), 20);
	assert_int_equal(http_value_span("Basic YWxpY2U6c2VjcmV0\r\nHost: x\r\n", 33), 22);
	assert_int_equal(http_token_span("", 0), 0);
	assert_int_equal(http_value_span("", 0), 0);
	for (size_t len = 1; len <= 72; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				bool token = c != 0 && strchr(tchar, c) != NULL;
				bool value = c == '\t' || (c >= 0x20 && c != 0x7f);

				memset(buf, 'a', len);
				buf[pos] = (char)c;
				if (http_token_span(buf, len) != (token ? len : pos) ||
				    http_value_span(buf, len) != (value ? len : pos))
					fail_msg("len %zu, byte 0x%02x at %zu: %zu %zu", len, c,
					         pos, http_token_span(buf, len),
					         http_value_span(buf, len));
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phone_block), cmocka_unit_test(test_upstream_block),
	    cmocka_unit_test(test_stops),       cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_status_left), cmocka_unit_test(test_target_span),
	    cmocka_unit_test(test_line_spans),  cmocka_unit_test(test_line_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
