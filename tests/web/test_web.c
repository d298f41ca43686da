/*
 * test_web.c: the console's files as abqd serves them (src/web) are the files
 * of web/ on disk, byte for byte, with the right content type and an ETag that
 * is the quoted SHA-256 of the content.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <openssl/sha.h>

#include "web/web.h"
#include "web/web_assets.h"

static size_t files_seen;

/* What a browser must be told for each kind of file the console ships. */
static const char *
expected_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".json", "application/json; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	for (i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static unsigned char *
slurp(const char *file, size_t *len_r)
{
	FILE *f = fopen(file, "rb");
	unsigned char *buf = NULL;
	long size;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len_r = (size_t)size;
	return buf;
}

/* One file of web/: served under its path, same bytes, type and hash. */
static int
check_file(const char *file, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = file + strlen(ABQ_WEB_DIR);
	const struct abq_web_asset *a;
	unsigned char md[SHA256_DIGEST_LENGTH];
	char etag[2 * SHA256_DIGEST_LENGTH + 3];
	unsigned char *data;
	size_t len, i;

	(void)st;
	if (flag != FTW_F || file[ftw->base] == '.')
		return 0;
	a = abq_web_asset(rel);
	if (a == NULL)
		fail_msg("web%s is on disk but not served", rel);
	assert_string_equal(a->path, rel);
	assert_string_equal(a->content_type, expected_type(rel));
	data = slurp(file, &len);
	assert_int_equal(a->len, len);
	assert_memory_equal(a->data, data, len);
	SHA256(data, len, md);
	etag[0] = '"';
	for (i = 0; i < sizeof(md); i++)
		snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
	etag[sizeof(etag) - 2] = '"';
	etag[sizeof(etag) - 1] = '\0';
	assert_string_equal(a->etag, etag);
	free(data);
	files_seen++;
	return 0;
}

static void
every_file_is_served(void **state)
{
	(void)state;
	files_seen = 0;
	assert_int_equal(nftw(ABQ_WEB_DIR, check_file, 16, FTW_PHYS), 0);
	assert_true(files_seen > 0);
	/* And nothing is served that is not on disk. */
	assert_int_equal(abq_web_nassets, files_seen);
}

static void
root_is_the_page(void **state)
{
	const struct abq_web_asset *root = abq_web_asset("/");
	const struct abq_web_asset *index = abq_web_asset("/index.html");

	(void)state;
	assert_non_null(root);
	assert_ptr_equal(root, index);
	assert_string_equal(root->content_type, "text/html; charset=utf-8");
	assert_non_null(memmem(root->data, root->len, "<!doctype html>", 15));
	/* A query string (cache busting) finds the same file. */
	assert_ptr_equal(abq_web_asset("/?x=1"), root);
	assert_ptr_equal(abq_web_asset("/index.html?v=2"), root);
}

static void
unknown_paths_are_null(void **state)
{
	(void)state;
	assert_null(abq_web_asset(NULL));
	assert_null(abq_web_asset(""));
	assert_null(abq_web_asset("index.html"));
	assert_null(abq_web_asset("/nope.js"));
	assert_null(abq_web_asset("/index.htm"));
	assert_null(abq_web_asset("/index.html/"));
	assert_null(abq_web_asset("/../CMakeLists.txt"));
	assert_null(abq_web_asset("/../web/index.html"));
	assert_null(abq_web_asset("//index.html"));
	assert_null(abq_web_asset("/api/v1/devices"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_file_is_served),
	    cmocka_unit_test(root_is_the_page),
	    cmocka_unit_test(unknown_paths_are_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
