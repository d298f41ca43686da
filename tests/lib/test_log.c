/*
 * test_log.c: how peer text is shown on a terminal or in a log line
 * (lib/log.c): what is kept, what is escaped, how a log value is quoted and cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

/* text_shown(in, flags) is want. */
static void
check_shown(const char *in, unsigned flags, const char *want)
{
	char *got = text_shown(in, flags);

	if (strcmp(got, want) != 0)
		fail_msg("text_shown(\"%s\", %u): \"%s\", want \"%s\"", in, flags, got, want);
	free(got);
}

/* Printable text and valid UTF-8 stay; controls and bad bytes become \xNN. */
static void
test_text_shown(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", ""},
	    {"iPhone 15 Pro", "iPhone 15 Pro"},
	    {"Ger\xc3\xa4t \xe2\x82\xac \xf0\x9f\x93\xb1",
	     "Ger\xc3\xa4t \xe2\x82\xac \xf0\x9f\x93\xb1"},
	    {"a\x1b[2Jb", "a\\x1b[2Jb"},
	    {"line\rover", "line\\x0dover"},
	    {"one\ntwo\tthree", "one\\x0atwo\\x09three"},
	    {"\x01\x1f\x7f", "\\x01\\x1f\\x7f"},
	    {"back\\slash \"q\"", "back\\slash \"q\""},
	    /* C1 controls as UTF-8: CSI, NEL, the first and the last */
	    {"x\xc2\x9b"
	     "2Jy",
	     "x\\xc2\\x9b2Jy"},
	    {"\xc2\x85\xc2\x80\xc2\x9f", "\\xc2\\x85\\xc2\\x80\\xc2\\x9f"},
	    {"\xc2\xa0", "\xc2\xa0"}, /* U+00A0 is printable */
	    /* not UTF-8: a lone C1 byte, a lone lead, overlongs, surrogates, too high */
	    {"\x9b"
	     "2J",
	     "\\x9b2J"},
	    {"\xff\xfe", "\\xff\\xfe"},
	    {"\xc3", "\\xc3"},
	    {"\xc3z", "\\xc3z"},
	    {"\xc0\xaf", "\\xc0\\xaf"},
	    {"\xc1\x9b", "\\xc1\\x9b"},
	    {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},
	    {"\xe2\x82", "\\xe2\\x82"},
	    {"\xed\xa0\x80", "\\xed\\xa0\\x80"},
	    {"\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"},
	    {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
	    {"\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"},
	    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"}, /* U+10FFFF */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_shown(cases[i].in, 0, cases[i].want);
	assert_null(text_shown(NULL, 0));
	/* Multi-line text keeps its lines and tabs, nothing else. */
	check_shown("one\ntwo\tthree\r\x1b", TEXT_KEEP_LINES, "one\ntwo\tthree\\x0d\\x1b");
	/* Inside quotes, a quote or a backslash cannot end the value or fake an escape. */
	check_shown("a\"b\\x1b", TEXT_QUOTED, "a\\\"b\\\\x1b");
}

/* One piece at a time: its length and the bytes it used. */
static void
test_text_piece(void **state)
{
	char out[TEXT_PIECE_MAX];
	size_t used;

	(void)state;
	assert_int_equal(text_piece("\xc2\x9b", 0, out, &used), 8);
	assert_int_equal(used, 2);
	assert_memory_equal(out, "\\xc2\\x9b", 8);
	assert_int_equal(text_piece("\xf0\x9f\x93\xb1!", 0, out, &used), 4);
	assert_int_equal(used, 4);
	assert_int_equal(text_piece("\xf0\x9f\x93", 0, out, &used), 4);
	assert_int_equal(used, 1);
	assert_memory_equal(out, "\\xf0", 4);
	assert_int_equal(text_piece("A", 0, out, &used), 1);
	assert_int_equal(used, 1);
}

/* A log value is one quoted token: no line break, no early quote, cut with "...". */
static void
test_log_safe(void **state)
{
	char b[32], small[12];

	(void)state;
	assert_string_equal(log_safe(b, sizeof(b), "alice"), "\"alice\"");
	assert_string_equal(log_safe(b, sizeof(b), NULL), "-");
	assert_string_equal(log_safe(b, sizeof(b), ""), "\"\"");
	/* The forged-line attempt stays on its line, inside the quotes. */
	assert_string_equal(log_safe(b, sizeof(b), "x\n2026 info: y"), "\"x\\x0a2026 info: y\"");
	assert_string_equal(log_safe(b, sizeof(b), "a\" ok=\"1"), "\"a\\\" ok=\\\"1\"");
	assert_string_equal(log_safe(b, sizeof(b), "\r\x9b\xc2\x9b"), "\"\\x0d\\x9b\\xc2\\x9b\"");
	/* Exactly full, then one byte over. */
	assert_string_equal(log_safe(small, sizeof(small), "123456789"), "\"123456789\"");
	assert_string_equal(log_safe(small, sizeof(small), "1234567890"), "\"123456...\"");
	/* A piece is never cut in two. */
	assert_string_equal(log_safe(small, sizeof(small), "12345\x1b\x1b"), "\"12345...\"");
	assert_string_equal(log_safe(small, sizeof(small), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"),
	                    "\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"");
	assert_string_equal(
	    log_safe(small, sizeof(small), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"),
	    "\"\xe2\x82\xac\xe2\x82\xac...\"");
	assert_true(strlen(log_safe(small, sizeof(small), "a\nb\nc\nd\ne\n")) < sizeof(small));
	assert_string_equal(log_safe(small, 4, "abc"), "...");
	assert_string_equal(log_text(b, sizeof(b), "/api/v1/x\r\n"), "/api/v1/x\\x0d\\x0a");
	assert_string_equal(log_text(small, sizeof(small), "abcdefghijkl"), "abcdefgh...");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_shown),
	    cmocka_unit_test(test_text_piece),
	    cmocka_unit_test(test_log_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
