/*
 * test_util.c: table-driven tests of lib/util.c and lib/abq_types.c.
 *
 * Every parser is fed its accepted spellings and each kind of bad input, and
 * the error message is checked too, since it is what a user reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/abq_types.h"
#include "lib/b64.h"
#include "lib/cbuf.h"
#include "lib/util.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The allocators return usable memory, zero sizes included. */
static void
test_alloc(void **state)
{
	char *p = xmalloc(0);
	int *z = xcalloc(4, sizeof(int));
	char *s;

	assert_non_null(p);
	free(p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(z[i], 0);
	z = xrealloc(z, 100 * sizeof(int));
	z[99] = 7;
	free(z);
	free(xcalloc(0, 0));

	s = xstrdup("abc");
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	/* peer bytes with a NUL: all n of them, then a NUL (xstrndup would stop at 1) */
	s = xmemdup0("a\0bc", 4);
	assert_memory_equal(s, "a\0bc\0", 5);
	free(s);
	s = xmemdup0("", 0);
	assert_int_equal(s[0], '\0');
	free(s);
	assert_null(xstrdup_null(NULL));
	s = xstrdup_null("x");
	assert_string_equal(s, "x");
	free(s);
	s = xasprintf("%s=%d", "n", 42);
	assert_string_equal(s, "n=42");
	free(s);
}

/* fatalx prints "abqd: MESSAGE" on stderr and exits with status 1. */
static void
test_fatalx(void **state)
{
	int fds[2], status;
	char buf[128];
	size_t len;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		fatalx("broken %d", 7);
	}
	close(fds[1]);
	/* stderr is unbuffered: the message may come in several writes. */
	len = 0;
	while (len < sizeof(buf) - 1 && (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	buf[len] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_string_equal(buf, "abqd: broken 7\n");
}

/* String helpers, NULL handling included. */
static void
test_strings(void **state)
{
	char s[] = "MiXeD-Case_1\xc3\x89";

	assert_string_equal(str_lower(s), "mixed-case_1\xc3\x89");
	assert_null(str_lower(NULL));

	assert_true(str_ieq("Allowed", "aLLOWED"));
	assert_false(str_ieq("Allowed", "Allow"));
	assert_true(str_ieq(NULL, NULL));
	assert_false(str_ieq(NULL, ""));
	assert_false(str_ieq("", NULL));

	assert_true(str_eq_null("a", "a"));
	assert_false(str_eq_null("a", "A"));
	assert_true(str_eq_null(NULL, NULL));
	assert_false(str_eq_null(NULL, "a"));
	assert_false(str_eq_null("a", NULL));
}

struct int_case {
	const char *in;
	long long min, max;
	int rc;
	long long out;
	const char *err;
};

static void
test_parse_int(void **state)
{
	static const struct int_case cases[] = {
	    {"0", 0, 10, 0, 0, NULL},
	    {"10", 0, 10, 0, 10, NULL},
	    {"-5", -10, 10, 0, -5, NULL},
	    {"+7", 0, 10, 0, 7, NULL},
	    {"007", 0, 10, 0, 7, NULL},
	    {"9223372036854775807", 0, INT64_MAX, 0, INT64_MAX, NULL},
	    {"-9223372036854775808", INT64_MIN, 0, 0, INT64_MIN, NULL},
	    {"", 0, 10, -1, 0, "not a number"},
	    {NULL, 0, 10, -1, 0, "not a number"},
	    {" 5", 0, 10, -1, 0, "not a number"},
	    {"5 ", 0, 10, -1, 0, "not a number"},
	    {"5x", 0, 10, -1, 0, "not a number"},
	    {"x5", 0, 10, -1, 0, "not a number"},
	    {"-", 0, 10, -1, 0, "not a number"},
	    {"0x10", 0, 100, -1, 0, "not a number"},
	    {"1.5", 0, 10, -1, 0, "not a number"},
	    {"11", 0, 10, -1, 0, "too large"},
	    {"-1", 0, 10, -1, 0, "too small"},
	    {"9223372036854775808", 0, INT64_MAX, -1, 0, "too large"},
	    {"99999999999999999999999", INT64_MIN, INT64_MAX, -1, 0, "too large"},
	    {"-99999999999999999999999", INT64_MIN, INT64_MAX, -1, 0, "too small"},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct int_case *c = &cases[i];
		const char *err = NULL;
		long long out = -12345;

		print_message("parse_int(\"%s\")\n", c->in ? c->in : "(null)");
		assert_int_equal(parse_int(c->in, c->min, c->max, &out, &err), c->rc);
		if (c->rc == 0)
			assert_true(out == c->out);
		else {
			assert_string_equal(err, c->err);
			assert_true(out == -12345);
		}
	}
}

struct scaled_case {
	const char *in;
	int rc;
	int64_t out;
	const char *err;
};

#define DUR_ERR "not a duration (use 0, 30s, 45m, 6h, 1d)"

static void
test_parse_duration(void **state)
{
	static const struct scaled_case cases[] = {
	    {"0", 0, 0, NULL},
	    {"90", 0, 90, NULL},
	    {"30s", 0, 30, NULL},
	    {"45m", 0, 2700, NULL},
	    {"6h", 0, 21600, NULL},
	    {"1d", 0, 86400, NULL},
	    {"2w", 0, 1209600, NULL},
	    {"10M", 0, 600, NULL},
	    {"0s", 0, 0, NULL},
	    {"9223372036854775807", 0, INT64_MAX, NULL},
	    {"", -1, 0, DUR_ERR},
	    {NULL, -1, 0, DUR_ERR},
	    {"s", -1, 0, DUR_ERR},
	    {"-5s", -1, 0, DUR_ERR},
	    {"+5s", -1, 0, DUR_ERR},
	    {" 5s", -1, 0, DUR_ERR},
	    {"5s ", -1, 0, DUR_ERR},
	    {"5 s", -1, 0, DUR_ERR},
	    {"5x", -1, 0, DUR_ERR},
	    {"5ms", -1, 0, DUR_ERR},
	    {"1h30m", -1, 0, DUR_ERR},
	    {"1.5h", -1, 0, DUR_ERR},
	    {"9223372036854775808", -1, 0, "too large"},
	    {"15250284452472w", -1, 0, "too large"},
	    {"106751991167301d", -1, 0, "too large"},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct scaled_case *c = &cases[i];
		const char *err = NULL;
		int64_t out = -1;

		print_message("parse_duration(\"%s\")\n", c->in ? c->in : "(null)");
		assert_int_equal(parse_duration(c->in, &out, &err), c->rc);
		if (c->rc == 0)
			assert_true(out == c->out);
		else
			assert_string_equal(err, c->err);
	}
}

static void
test_format_duration(void **state)
{
	static const struct {
		int64_t in;
		const char *out;
	} cases[] = {
	    {0, "0"},       {1, "1s"},      {59, "59s"},
	    {60, "1m"},     {90, "90s"},    {2700, "45m"},
	    {3600, "1h"},   {5400, "90m"},  {86400, "1d"},
	    {90000, "25h"}, {604800, "1w"}, {1209600, "2w"},
	    {691200, "8d"}, {-60, "-1m"},   {INT64_MAX, "9223372036854775807s"},
	};
	char buf[32];

	for (size_t i = 0; i < NELEM(cases); i++) {
		int64_t back;
		const char *err;

		assert_string_equal(format_duration(cases[i].in, buf), cases[i].out);
		if (cases[i].in >= 0) {
			assert_int_equal(parse_duration(buf, &back, &err), 0);
			assert_true(back == cases[i].in);
		}
	}
}

#define SIZE_ERR "not a size (use 1048576, 512K, 32M, 1G)"

static void
test_parse_size(void **state)
{
	static const struct scaled_case cases[] = {
	    {"0", 0, 0, NULL},
	    {"1048576", 0, 1048576, NULL},
	    {"512K", 0, 524288, NULL},
	    {"512k", 0, 524288, NULL},
	    {"32M", 0, 33554432, NULL},
	    {"1G", 0, 1073741824, NULL},
	    {"1g", 0, 1073741824, NULL},
	    {"", -1, 0, SIZE_ERR},
	    {NULL, -1, 0, SIZE_ERR},
	    {"M", -1, 0, SIZE_ERR},
	    {"32MB", -1, 0, SIZE_ERR},
	    {"1T", -1, 0, SIZE_ERR},
	    {"-1", -1, 0, SIZE_ERR},
	    {"1.5M", -1, 0, SIZE_ERR},
	    {" 1M", -1, 0, SIZE_ERR},
	    {"9223372036854775808", -1, 0, "too large"},
	    {"9007199254740992K", -1, 0, "too large"},
	    {"8589934592G", -1, 0, "too large"},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct scaled_case *c = &cases[i];
		const char *err = NULL;
		int64_t out = -1;

		print_message("parse_size(\"%s\")\n", c->in ? c->in : "(null)");
		assert_int_equal(parse_size(c->in, &out, &err), c->rc);
		if (c->rc == 0)
			assert_true(out == c->out);
		else
			assert_string_equal(err, c->err);
	}
}

static void
test_format_time(void **state)
{
	char buf[32];

	assert_string_equal(format_time(0, buf), "-");
	assert_string_equal(format_time(1, buf), "1970-01-01T00:00:01Z");
	assert_string_equal(format_time(1795845314, buf), "2026-11-28T05:55:14Z");
	assert_string_equal(format_time(951782400, buf), "2000-02-29T00:00:00Z");
	assert_string_equal(format_time(-1, buf), "1969-12-31T23:59:59Z");
}

#define TIME_ERR "not a time (use 2026-11-28, 2026-11-28T05:55:14Z or seconds since 1970)"
#define DATE_ERR "no such date or time"

static void
test_parse_time(void **state)
{
	static const struct scaled_case cases[] = {
	    {"2026-11-28", 0, 1795824000, NULL},
	    {"2026-11-28T05:55:14Z", 0, 1795845314, NULL},
	    {"2026-11-28 05:55:14", 0, 1795845314, NULL},
	    {"1970-01-01", 0, 0, NULL},
	    {"2000-02-29", 0, 951782400, NULL},
	    {"2024-02-29T23:59:59Z", 0, 1709251199, NULL},
	    {"1795845314", 0, 1795845314, NULL},
	    {"0", 0, 0, NULL},
	    {"", -1, 0, TIME_ERR},
	    {NULL, -1, 0, TIME_ERR},
	    {"yesterday", -1, 0, TIME_ERR},
	    {"2026-11-28T05:55:14", -1, 0, TIME_ERR},
	    {"2026-11-28T05:55Z", -1, 0, TIME_ERR},
	    {"2026-11-28 05:55:14Z", -1, 0, TIME_ERR},
	    {"2026-11-28x", -1, 0, TIME_ERR},
	    {"2026-11-28 ", -1, 0, TIME_ERR},
	    {"2026-1-28", -1, 0, TIME_ERR},
	    {"26-11-28", -1, 0, TIME_ERR},
	    {"2026/11/28", -1, 0, TIME_ERR},
	    {"-5", -1, 0, TIME_ERR},
	    {"12abc", -1, 0, TIME_ERR},
	    {"99999999999999999999", -1, 0, "too large"},
	    {"2026-02-30", -1, 0, DATE_ERR},
	    {"2025-02-29", -1, 0, DATE_ERR},
	    {"1900-02-29", -1, 0, DATE_ERR},
	    {"2026-13-01", -1, 0, DATE_ERR},
	    {"2026-00-10", -1, 0, DATE_ERR},
	    {"2026-04-31", -1, 0, DATE_ERR},
	    {"2026-04-00", -1, 0, DATE_ERR},
	    {"2026-04-01T24:00:00Z", -1, 0, DATE_ERR},
	    {"2026-04-01T23:60:00Z", -1, 0, DATE_ERR},
	    {"2026-04-01 23:59:60", -1, 0, DATE_ERR},
	    {"1969-12-31", -1, 0, DATE_ERR},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct scaled_case *c = &cases[i];
		const char *err = NULL;
		int64_t out = -1;

		print_message("parse_time(\"%s\")\n", c->in ? c->in : "(null)");
		assert_int_equal(parse_time(c->in, &out, &err), c->rc);
		if (c->rc == 0)
			assert_true(out == c->out);
		else
			assert_string_equal(err, c->err);
	}
}

/* ABQ_NOW overrides the clock only when it is a valid number. */
static void
test_abq_now(void **state)
{
	int64_t t;

	unsetenv("ABQ_NOW");
	t = abq_now();
	assert_true(t > 1700000000);
	setenv("ABQ_NOW", "1795845314", 1);
	assert_true(abq_now() == 1795845314);
	setenv("ABQ_NOW", "soon", 1);
	assert_true(abq_now() >= t);
	setenv("ABQ_NOW", "-5", 1);
	assert_true(abq_now() >= t);
	setenv("ABQ_NOW", "", 1);
	assert_true(abq_now() >= t);
	unsetenv("ABQ_NOW");
}

/* domain_valid: what abqctl and the admin API accept as a domain. */
static void
test_domain_valid(void **state)
{
	static const char *const good[] = {
	    "example.com",           "EXAMPLE.com",       "a",
	    "xn--bcher-kva.example", "sub.example.co.uk", "caf\xc3\xa9.example"};
	static const char *const bad[] = {
	    "",       "a/b", "alice@example.com", "exa mple.com", "example.com\t", "ex\nample",
	    "ex\x7f", "@"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!domain_valid(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (domain_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(domain_valid(NULL));
}

/* mem_ieq: ASCII letters fold, nothing else does. */
static void
test_mem_ieq(void **state)
{
	assert_true(mem_ieq("X-Forwarded-For", "x-forwarded-for", 15));
	assert_true(mem_ieq("CONTENT-length", "Content-Length", 14));
	assert_true(mem_ieq("ab", "xy", 0));
	assert_false(mem_ieq("Host", "Hosu", 4));
	/* Only letters fold: '@' (0x40) and '`' (0x60) differ by the same bit. */
	assert_false(mem_ieq("@", "`", 1));
	assert_false(mem_ieq("[", "{", 1));
	assert_false(mem_ieq("\xc9", "\xe9", 1));
	/* Against a byte-at-a-time reference, at every position of 1-20 bytes. */
	for (size_t len = 1; len <= 20; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				int others[] = {c, c ^ 0x20, c ^ 0x80, c ^ 0x01, c ^ 0x40};

				for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
					char x[21], y[21];
					int d = others[k];
					int lc = c >= 'A' && c <= 'Z' ? c | 0x20 : c;
					int ld = d >= 'A' && d <= 'Z' ? d | 0x20 : d;

					memset(x, 'q', len);
					memset(y, 'Q', len);
					x[pos] = (char)c;
					y[pos] = (char)d;
					if (mem_ieq(x, y, len) != (lc == ld))
						fail_msg("len %zu pos %zu: 0x%02x vs 0x%02x", len,
						         pos, c, d);
				}
			}
		}
	}
}

/*
 * field_value_len against a byte-at-a-time reference: every byte value at
 * every position of strings of 1 to 72 bytes, so each lands in a whole word
 * and in the tail, and in a 16-byte step and the overlapping last one; amid
 * plain bytes, amid tabs (allowed, but flagged by the word test) and amid
 * obs-text.
 */
static void
test_field_value_len(void **state)
{
	char buf[73];

	assert_int_equal(field_value_len(""), 0);
	assert_int_equal(field_value_len("Basic YWxpY2U6c2VjcmV0"), 22);
	assert_int_equal(field_value_len("a\tb"), 3);
	assert_int_equal(field_value_len("Apple-iPhone/1402.100\r"), -1);
	assert_int_equal(field_value_len("\xc3\xa9t\xc3\xa9 \xff\x80"), 8);
	/* field_value_ok looks at exactly n bytes. */
	assert_true(field_value_ok("abc\r\n", 3));
	assert_false(field_value_ok("abc\r\n", 4));
	assert_true(field_value_ok("", 0));
	for (size_t f = 0; f < 3; f++) {
		static const char fill[] = {'x', '\t', '\x80'};

		for (size_t len = 1; len <= 72; len++) {
			for (size_t pos = 0; pos < len; pos++) {
				for (int c = 1; c < 256; c++) {
					bool bad = (c < 0x20 && c != '\t') || c == 0x7f;

					memset(buf, fill[f], len);
					buf[len] = '\0';
					buf[pos] = (char)c;
					if (field_value_len(buf) != (bad ? -1 : (long)len) ||
					    field_value_ok(buf, len) == bad)
						fail_msg("fill 0x%02x, len %zu, byte 0x%02x at %zu",
						         (unsigned char)fill[f], len, c, pos);
				}
			}
		}
	}
}

/* field_name_ok against a byte-by-byte reference, every byte at every place. */
static void
test_field_name_ok(void **state)
{
	char buf[41];

	(void)state;
	assert_true(field_name_ok("X-Forwarded-For", 15));
	assert_true(field_name_ok("", 0));
	assert_false(field_name_ok("Host:", 5));
	assert_true(field_name_ok("Host:", 4)); /* exactly n bytes */
	assert_false(field_name_ok("X-Bad Name", 10));
	for (size_t len = 1; len <= 40; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				bool bad = c <= 0x20 || c == 0x7f || c == ':';

				memset(buf, 'x', len);
				buf[pos] = (char)c;
				if (field_name_ok(buf, len) == bad)
					fail_msg("len %zu, byte 0x%02x at %zu", len, c, pos);
			}
		}
	}
}

/* fmt_u64: the digits, unterminated, and their count; the bytes after them untouched. */
static void
test_fmt_u64(void **state)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {{0, "0"},
	             {7, "7"},
	             {10, "10"},
	             {52, "52"},
	             {1000000, "1000000"},
	             {UINT64_MAX, "18446744073709551615"}};
	char buf[24];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, '#', sizeof(buf));
		assert_int_equal(fmt_u64(buf, cases[i].v), strlen(cases[i].s));
		assert_memory_equal(buf, cases[i].s, strlen(cases[i].s));
		assert_int_equal(buf[strlen(cases[i].s)], '#');
	}
}

/* request_target_ok against a byte-by-byte reference, every byte at every place. */
static void
test_request_target_ok(void **state)
{
	char buf[41];

	(void)state;
	assert_true(request_target_ok("/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b", 48));
	assert_true(request_target_ok("http://host:8080/", 17)); /* ':' is allowed */
	assert_true(request_target_ok("", 0));
	assert_false(request_target_ok("/a b", 4));
	assert_true(request_target_ok("/a b", 2)); /* exactly n bytes */
	for (size_t len = 1; len <= 40; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 0; c < 256; c++) {
				bool bad = c <= 0x20 || c == 0x7f;

				memset(buf, 'x', len);
				buf[pos] = (char)c;
				if (request_target_ok(buf, len) == bad)
					fail_msg("len %zu, byte 0x%02x at %zu", len, c, pos);
			}
		}
	}
}

static void
test_account_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"alice", "alice"},
	    {"Alice@Example.COM", "alice@example.com"},
	    {"CORP\\Alice", "alice"},
	    {"a\\b\\Carol", "carol"},
	    {"CORP\\bob@example.com", "bob@example.com"},
	    {"J\xc3\x89r\xc3\xb4me", "j\xc3\x89r\xc3\xb4me"},
	    {"user.name+tag@x.org", "user.name+tag@x.org"},
	    {"", NULL},
	    {NULL, NULL},
	    {"CORP\\", NULL},
	    {"\\", NULL},
	    {"al ice", NULL},
	    {" alice", NULL},
	    {"alice ", NULL},
	    {"al\tice", NULL},
	    {"al\nice", NULL},
	    {"al\x7f", NULL},
	    {"al\x01", NULL},
	    {"a/b", NULL},
	};
	char long_ok[257], long_bad[258];
	char *s;

	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("account_normalize(\"%s\")\n", cases[i].in ? cases[i].in : "(null)");
		s = account_normalize(cases[i].in);
		if (cases[i].out == NULL)
			assert_null(s);
		else
			assert_string_equal(s, cases[i].out);
		free(s);
		/* account_is answers the same question without a copy. */
		if (cases[i].out != NULL) {
			char other[300];

			assert_true(account_is(cases[i].in, cases[i].out));
			snprintf(other, sizeof(other), "%sx", cases[i].out);
			assert_false(account_is(cases[i].in, other));
			assert_false(account_is(cases[i].in, cases[i].out + 1));
		} else {
			assert_false(account_is(cases[i].in, "alice"));
			assert_false(account_is(cases[i].in, ""));
		}
	}
	assert_false(account_is("alice", NULL));
	assert_false(account_is("Alice", "Alice")); /* the account is lower case */

	memset(long_ok, 'A', 256);
	long_ok[256] = '\0';
	s = account_normalize(long_ok);
	assert_non_null(s);
	assert_int_equal(strlen(s), 256);
	assert_int_equal(s[0], 'a');
	free(s);
	memset(long_bad, 'a', 257);
	long_bad[257] = '\0';
	assert_null(account_normalize(long_bad));
	/* The limit applies to the account, after the prefix is gone. */
	s = xasprintf("DOMAIN\\%s", long_ok);
	{
		char *a = account_normalize(s);

		assert_non_null(a);
		assert_int_equal(strlen(a), 256);
		free(a);
	}
	free(s);
}

/* Every spelling of one person gives one account (product.md, Identity). */
static void
test_account_canonical(void **state)
{
	static const struct {
		const char *in, *dom, *out;
	} cases[] = {
	    {"alice", "example.com", "alice@example.com"},
	    {"Alice", "example.com", "alice@example.com"},
	    {"ALICE", "Example.COM", "alice@example.com"},
	    {"EXAMPLE\\alice", "example.com", "alice@example.com"},
	    {"example.com\\Alice", "example.com", "alice@example.com"},
	    {"a\\b\\alice", "example.com", "alice@example.com"},
	    {"alice@EXAMPLE.com", "example.com", "alice@example.com"},
	    {"Alice@Example.Com", "example.com", "alice@example.com"},
	    {"EXAMPLE\\alice@example.com", "example.com", "alice@example.com"},
	    {"alice@example.com", NULL, "alice@example.com"},
	    {"alice@corp.org", "example.com", "alice@corp.org"},
	    {"alice", NULL, "alice"},
	    {"alice", "", "alice"},
	    {"Alice", NULL, "alice"},
	    {"EXAMPLE\\Alice", NULL, "alice"},
	    {"alice@", "example.com", NULL},
	    {"alice@", NULL, NULL},
	    {"@x", "example.com", NULL},
	    {"@x", NULL, NULL},
	    {"@", "example.com", NULL},
	    {"a@b@c", "example.com", NULL},
	    {"a@b@c", NULL, NULL},
	    {"EXAMPLE\\", "example.com", NULL},
	    {"", "example.com", NULL},
	    {NULL, "example.com", NULL},
	    {"al ice", "example.com", NULL},
	    {"al\tice", "example.com", NULL},
	    {"al\nice@example.com", NULL, NULL},
	    {"al\x7f", "example.com", NULL},
	    {"a/b", "example.com", NULL},
	    {"alice@x/y", NULL, NULL},
	    {"alice@ex ample.com", NULL, NULL},
	};
	char buf[ACCOUNT_MAX + 1], big[ACCOUNT_MAX + 2];
	char *s;

	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("account_canonical(\"%s\", %s)\n",
		              cases[i].in ? cases[i].in : "(null)",
		              cases[i].dom ? cases[i].dom : "(null)");
		s = account_canonical(cases[i].in, cases[i].dom);
		if (cases[i].out == NULL) {
			assert_null(s);
			assert_int_equal(account_canonical_into(cases[i].in, cases[i].dom, buf),
			                 -1);
			assert_false(account_is_canonical_of(cases[i].in, "alice@example.com",
			                                     cases[i].dom));
		} else {
			assert_string_equal(s, cases[i].out);
			assert_int_equal(account_canonical_into(cases[i].in, cases[i].dom, buf),
			                 (long)strlen(cases[i].out));
			assert_string_equal(buf, cases[i].out);
			assert_true(
			    account_is_canonical_of(cases[i].in, cases[i].out, cases[i].dom));
			assert_false(
			    account_is_canonical_of(cases[i].in, "bob@example.com", cases[i].dom));
			assert_false(account_is_canonical_of(cases[i].in, NULL, cases[i].dom));
		}
		free(s);
	}
	/* The canonical form is what counts: a bare User= against a full account. */
	assert_true(account_is_canonical_of("alice", "alice@example.com", "example.com"));
	assert_true(account_is_canonical_of("EXAMPLE\\Alice", "alice@example.com", "example.com"));
	assert_false(account_is_canonical_of("alice", "alice@example.com", NULL));
	assert_false(account_is_canonical_of("alice", "alice", "example.com"));
	/* Without a default domain, account_normalize is account_canonical(user, NULL). */
	s = account_normalize("a@b@c");
	assert_null(s);
	/* The length cap holds for the canonical form, the added domain included. */
	memset(big, 'a', 250);
	big[250] = '\0';
	s = account_canonical(big, "example.com");
	assert_null(s);
	s = account_canonical(big, NULL);
	assert_non_null(s);
	free(s);
	memset(big, 'a', 244);
	big[244] = '\0';
	s = account_canonical(big, "example.com"); /* 244 + 1 + 11 = 256 */
	assert_non_null(s);
	assert_int_equal(strlen(s), ACCOUNT_MAX);
	free(s);
}

static void
test_account_domain(void **state)
{
	const char *def = "example.com";

	assert_string_equal(account_domain("alice@corp.org", def), "corp.org");
	assert_string_equal(account_domain("alice@corp.org", NULL), "corp.org");
	assert_ptr_equal(account_domain("alice", def), def);
	assert_null(account_domain("alice", NULL));
	assert_string_equal(account_domain("a@b@c.org", def), "c.org");
	assert_ptr_equal(account_domain("alice@", def), def);
	assert_ptr_equal(account_domain(NULL, def), def);
}

static void
test_device_id_valid(void **state)
{
	static const struct {
		const char *in;
		bool ok;
	} cases[] = {
	    {"ApplC39HXXXXXXXX", true},
	    {"a", true},
	    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
	    {"~!@#$%^&*()_+-=[]{}|;:'\",.<>?\\`", true},
	    {"", false},
	    {NULL, false},
	    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX", false},
	    {"a/b", false},
	    {"a b", false},
	    {"a\tb", false},
	    {"a\x7f", false},
	    {"a\x01", false},
	    {"\xc3\x89", false},
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("device_id_valid(\"%s\")\n", cases[i].in ? cases[i].in : "(null)");
		assert_int_equal(device_id_valid(cases[i].in), cases[i].ok);
	}
}

/* Canonical names print, parse back case-insensitively, and refuse the rest. */
static void
test_types(void **state)
{
	enum abq_state st;
	enum abq_reason r;
	enum abq_mode m;
	enum abq_charac ch;
	enum abq_match mt;
	enum abq_scope sc;

	assert_string_equal(abq_state_name(ABQ_STATE_NONE), "None");
	assert_string_equal(abq_state_name(ABQ_STATE_ALLOWED), "Allowed");
	assert_string_equal(abq_state_name(ABQ_STATE_BLOCKED), "Blocked");
	assert_string_equal(abq_state_name(ABQ_STATE_QUARANTINED), "Quarantined");
	assert_string_equal(abq_state_name(ABQ_STATE_DISCOVERY), "Discovery");
	assert_string_equal(abq_state_name((enum abq_state)99), "?");
	assert_string_equal(abq_state_name((enum abq_state) - 1), "?");

	assert_int_equal(abq_state_parse("allowed", false, &st), 0);
	assert_int_equal(st, ABQ_STATE_ALLOWED);
	assert_int_equal(abq_state_parse("BLOCKED", false, &st), 0);
	assert_int_equal(st, ABQ_STATE_BLOCKED);
	assert_int_equal(abq_state_parse("Quarantined", false, &st), 0);
	assert_int_equal(st, ABQ_STATE_QUARANTINED);
	assert_int_equal(abq_state_parse("Discovery", false, &st), -1);
	assert_int_equal(abq_state_parse("discovery", true, &st), 0);
	assert_int_equal(st, ABQ_STATE_DISCOVERY);
	assert_int_equal(abq_state_parse("None", true, &st), -1);
	assert_int_equal(abq_state_parse("allow", true, &st), -1);
	assert_int_equal(abq_state_parse("", true, &st), -1);
	assert_int_equal(abq_state_parse(NULL, true, &st), -1);

	{
		static const char *reasons[] = {"None",     "Individual", "Limit", "Rule",  "Mode",
		                                "Disabled", "Discovery",  "Wipe",  "Policy"};

		for (int i = 0; i < (int)NELEM(reasons); i++)
			assert_string_equal(abq_reason_name((enum abq_reason)i), reasons[i]);
		for (int i = 1; i < (int)NELEM(reasons); i++) {
			char *low = str_lower(xstrdup(reasons[i]));

			assert_int_equal(abq_reason_parse(low, &r), 0);
			assert_int_equal(r, i);
			free(low);
		}
		assert_int_equal(abq_reason_parse("None", &r), -1);
		assert_int_equal(abq_reason_parse("Rules", &r), -1);
		assert_string_equal(abq_reason_name((enum abq_reason)9), "?");
	}
	{
		static const char *modes[] = {"Permissive", "Interactive", "Strict", "Disabled"};

		for (int i = 0; i < (int)NELEM(modes); i++) {
			assert_string_equal(abq_mode_name((enum abq_mode)i), modes[i]);
			assert_int_equal(abq_mode_parse(modes[i], &m), 0);
			assert_int_equal(m, i);
		}
		assert_int_equal(abq_mode_parse("strict", &m), 0);
		assert_int_equal(m, ABQ_MODE_STRICT);
		assert_int_equal(abq_mode_parse("Open", &m), -1);
		assert_string_equal(abq_mode_name((enum abq_mode)4), "?");
	}
	{
		static const char *chars[] = {"DeviceId", "DeviceType", "DeviceModel", "DeviceOS",
		                              "UserAgent"};

		assert_int_equal(NELEM(chars), ABQ_CHAR_COUNT);
		for (int i = 0; i < (int)NELEM(chars); i++) {
			assert_string_equal(abq_charac_name((enum abq_charac)i), chars[i]);
			assert_int_equal(abq_charac_parse(chars[i], &ch), 0);
			assert_int_equal(ch, i);
		}
		assert_int_equal(abq_charac_parse("deviceos", &ch), 0);
		assert_int_equal(ch, ABQ_CHAR_DEVICEOS);
		assert_int_equal(abq_charac_parse("Device", &ch), -1);
		assert_string_equal(abq_charac_name((enum abq_charac)ABQ_CHAR_COUNT), "?");
	}
	{
		static const char *matches[] = {"exact", "glob", "regex"};

		for (int i = 0; i < (int)NELEM(matches); i++) {
			assert_string_equal(abq_match_name((enum abq_match)i), matches[i]);
			assert_int_equal(abq_match_parse(matches[i], &mt), 0);
			assert_int_equal(mt, i);
		}
		assert_int_equal(abq_match_parse("REGEX", &mt), 0);
		assert_int_equal(mt, ABQ_MATCH_REGEX);
		assert_int_equal(abq_match_parse("regexp", &mt), -1);
		assert_string_equal(abq_match_name((enum abq_match)3), "?");
	}
	{
		static const char *scopes[] = {"global", "domain", "account"};

		for (int i = 0; i < (int)NELEM(scopes); i++) {
			assert_string_equal(abq_scope_name((enum abq_scope)i), scopes[i]);
			assert_int_equal(abq_scope_parse(scopes[i], &sc), 0);
			assert_int_equal(sc, i);
		}
		assert_int_equal(abq_scope_parse("Domain", &sc), 0);
		assert_int_equal(sc, ABQ_SCOPE_DOMAIN);
		assert_int_equal(abq_scope_parse("user", &sc), -1);
		assert_int_equal(abq_scope_parse(NULL, &sc), -1);
		assert_string_equal(abq_scope_name((enum abq_scope)3), "?");
	}
}

/* The encoders of the one base64 module: RFC 4648's test vectors, both alphabets. */
static void
test_b64_encoders(void **state)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
	                                  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[16];
	(void)state;

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		size_t n = strlen(in[i]);
		assert_int_equal(b64_encode((const unsigned char *)in[i], n, out), strlen(std[i]));
		assert_string_equal(out, std[i]);
		assert_int_equal(strlen(out), B64_ENCODED_LEN(n));
		assert_int_equal(b64url_encode((const unsigned char *)in[i], n, out),
		                 strlen(url[i]));
		assert_string_equal(out, url[i]);
		assert_int_equal(strlen(out), B64URL_ENCODED_LEN(n));
	}
	/* The two alphabets differ in 62 and 63. */
	static const unsigned char hi[] = {0xfb, 0xff, 0xbf};
	b64_encode(hi, 3, out);
	assert_string_equal(out, "+/+/");
	b64url_encode(hi, 3, out);
	assert_string_equal(out, "-_-_");
	/* What the encoder writes, the decoder reads back. */
	unsigned char back[8];
	size_t blen, pos;
	const char *why;
	b64_encode((const unsigned char *)"fooba", 5, out);
	assert_int_equal(b64_decode(out, strlen(out), back, &blen, &pos, &why), 0);
	assert_int_equal(blen, 5);
	assert_memory_equal(back, "fooba", 5);
}

/*
 * The capped buffer takes bytes up to its cap and refuses, whole and without
 * a change, an append that would pass it; it starts in the caller's storage,
 * moves to the heap beyond it, and a reset gives the heap back (the storage
 * is used again once the buffer is started in it again).
 */
static void
test_cbuf(void **state)
{
	char storage[16], big[100];
	struct cbuf b;

	(void)state;
	memset(big, 'x', sizeof(big));
	/* Without storage: nothing allocated until the first append. */
	cbuf_init(&b, 40);
	assert_null(b.p);
	assert_int_equal(cbuf_append(&b, "", 0), 0);
	assert_int_equal(cbuf_append(&b, "hello", 5), 0);
	assert_non_null(b.p);
	assert_memory_equal(b.p, "hello", 5);
	assert_int_equal(cbuf_append(&b, big, 35), 0); /* exactly the cap */
	assert_int_equal(b.len, 40);
	assert_true(b.cap <= 40);
	assert_int_equal(cbuf_append(&b, "y", 1), -1); /* one past: refused */
	assert_int_equal(b.len, 40);
	assert_memory_equal(b.p, "hellox", 6);
	cbuf_reset(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	/* An append larger than the cap on an empty buffer: refused, nothing kept. */
	assert_int_equal(cbuf_append(&b, big, 41), -1);
	assert_int_equal(b.len, 0);
	cbuf_reset(&b);

	/* With storage: the usual message stays there, a larger one moves to the heap. */
	cbuf_init_with(&b, storage, sizeof(storage), 1000);
	assert_int_equal(cbuf_append(&b, "0123456789", 10), 0);
	assert_ptr_equal(b.p, storage);
	assert_int_equal(cbuf_append(&b, "abcdef", 6), 0);
	assert_ptr_equal(b.p, storage); /* 16 bytes: still in it */
	assert_int_equal(cbuf_append(&b, "!", 1), 0);
	assert_ptr_not_equal(b.p, storage);
	assert_memory_equal(b.p, "0123456789abcdef!", 17);
	for (int i = 0; i < 9; i++)
		assert_int_equal(cbuf_append(&b, big, 100), 0);
	assert_int_equal(b.len, 917);
	assert_int_equal(cbuf_append(&b, big, 84), -1);
	assert_int_equal(cbuf_append(&b, big, 83), 0);
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.cap, 1000);
	assert_int_equal(cbuf_heap(&b), 1000);
	cbuf_reset(&b);
	assert_null(b.p); /* the heap given back, the storage not remembered */
	assert_int_equal(b.len, 0);
	assert_int_equal(cbuf_heap(&b), 0);
	cbuf_init_with(&b, storage, sizeof(storage), 1000);
	assert_int_equal(cbuf_append(&b, "abc", 3), 0);
	assert_ptr_equal(b.p, storage);
	assert_int_equal(cbuf_heap(&b), 0);
	cbuf_reset(&b); /* still in the storage: it stays there */
	assert_ptr_equal(b.p, storage);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, sizeof(storage));
	cbuf_reset(&b);

	/* Storage larger than the cap: only max of it is used. */
	cbuf_init_with(&b, storage, sizeof(storage), 4);
	assert_int_equal(cbuf_append(&b, "abcd", 4), 0);
	assert_int_equal(cbuf_append(&b, "e", 1), -1);
	assert_ptr_equal(b.p, storage);
	cbuf_reset(&b);
}

/*
 * Growth charged to a budget, in two steps: cbuf_grow_size says the capacity
 * (the doubling from the first size, capped at max, 0 past it) without a
 * change, cbuf_resize makes exactly that capacity, cbuf_heap says what the
 * heap holds; cbuf_set_max lowers the cap (never below len), cbuf_clear keeps
 * a small heap; sizes are 32-bit, a larger max is clamped.
 */
static void
test_cbuf_budget(void **state)
{
	char storage[100], big[5000];
	struct cbuf b;

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(sizeof(struct cbuf), 24);
	/* In storage: what fits needs nothing; beyond it, the first size, then doubling. */
	cbuf_init_with(&b, storage, sizeof(storage), 10000);
	assert_int_equal(cbuf_append(&b, big, 60), 0);
	assert_int_equal(cbuf_grow_size(&b, 40, 4096), 100);
	assert_int_equal(cbuf_grow_size(&b, 41, 4096), 4096);
	assert_int_equal(cbuf_grow_size(&b, 5000, 4096), 8192);
	assert_int_equal(cbuf_grow_size(&b, 9940, 4096), 10000); /* capped at max */
	assert_int_equal(cbuf_grow_size(&b, 9941, 4096), 0);     /* past max */
	assert_ptr_equal(b.p, storage);                          /* nothing changed */
	assert_int_equal(b.cap, 100);
	assert_int_equal(cbuf_heap(&b), 0);
	/* A capacity the caller chose (e.g. what is still announced), the bytes moved. */
	cbuf_resize(&b, 4000);
	assert_ptr_not_equal(b.p, storage);
	assert_int_equal(b.cap, 4000);
	assert_int_equal(cbuf_heap(&b), 4000);
	assert_memory_equal(b.p, big, 60);
	/* From a heap buffer the next size is twice it. */
	assert_int_equal(cbuf_grow_size(&b, 3941, 4096), 8000);
	cbuf_resize(&b, 20000); /* clamped to max */
	assert_int_equal(b.cap, 10000);
	cbuf_resize(&b, 10); /* never below len */
	assert_int_equal(b.cap, 60);
	assert_memory_equal(b.p, big, 60);
	/* A lower cap: the heap follows it down; never below len. */
	cbuf_resize(&b, 1000);
	cbuf_set_max(&b, 500);
	assert_int_equal(b.max, 500);
	assert_int_equal(cbuf_heap(&b), 500);
	assert_int_equal(cbuf_append(&b, big, 441), -1);
	assert_int_equal(cbuf_append(&b, big, 440), 0);
	cbuf_set_max(&b, 10);
	assert_int_equal(b.max, 500);
	cbuf_set_max(&b, 9000); /* never raised */
	assert_int_equal(b.max, 500);
	/* clear keeps a heap up to keep bytes, gives back a larger one */
	cbuf_clear(&b, 500);
	assert_int_equal(b.len, 0);
	assert_int_equal(cbuf_heap(&b), 500);
	cbuf_clear(&b, 499);
	assert_null(b.p);
	assert_int_equal(cbuf_heap(&b), 0);
	cbuf_reset(&b);

	/* In storage, a lower cap lowers the room used there. */
	cbuf_init_with(&b, storage, sizeof(storage), 10000);
	cbuf_set_max(&b, 50);
	assert_int_equal(b.cap, 50);
	assert_int_equal(cbuf_append(&b, big, 51), -1);
	assert_int_equal(cbuf_append(&b, big, 50), 0);
	assert_ptr_equal(b.p, storage);
	cbuf_reset(&b);

	/* cbuf_reserve starts the heap at CBUF_MIN; a cap over 4 GiB is clamped. */
	cbuf_init(&b, (size_t)1 << 40);
	assert_int_equal(b.max, UINT32_MAX);
	assert_int_equal(cbuf_append(&b, "a", 1), 0);
	assert_int_equal(b.cap, CBUF_MIN);
	assert_int_equal(cbuf_grow_size(&b, UINT32_MAX, 64), 0);
	assert_int_equal(cbuf_grow_size(&b, UINT32_MAX - 1, 64), UINT32_MAX);
	cbuf_reset(&b);
	assert_int_equal(cbuf_grow_size(&b, 3, 0), 4); /* no first size: doubling from 1 */
}

/* The one HTML/XML escaper: the five specials as entities, the rest as is, lengths honoured. */
static void
test_sbuf_escaped(void **state)
{
	struct sbuf b = {0};

	(void)state;
	sbuf_add_escaped(&b, "a<b>&\"c'd\xc3\xa9");
	assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&#39;d\xc3\xa9");
	b.len = 0;
	sbuf_addn_escaped(&b, "<x>tail", 3);
	assert_string_equal(b.p, "&lt;x&gt;");
	b.len = 0;
	sbuf_add_escaped(&b, "");
	assert_int_equal(b.len, 0);
	free(b.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc),
	    cmocka_unit_test(test_fatalx),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_parse_int),
	    cmocka_unit_test(test_parse_duration),
	    cmocka_unit_test(test_format_duration),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_format_time),
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_abq_now),
	    cmocka_unit_test(test_domain_valid),
	    cmocka_unit_test(test_mem_ieq),
	    cmocka_unit_test(test_field_value_len),
	    cmocka_unit_test(test_field_name_ok),
	    cmocka_unit_test(test_request_target_ok),
	    cmocka_unit_test(test_fmt_u64),
	    cmocka_unit_test(test_account_normalize),
	    cmocka_unit_test(test_account_canonical),
	    cmocka_unit_test(test_account_domain),
	    cmocka_unit_test(test_device_id_valid),
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_b64_encoders),
	    cmocka_unit_test(test_cbuf),
	    cmocka_unit_test(test_sbuf_escaped),
	    cmocka_unit_test(test_cbuf_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
