/*
 * fuzz_wbxml.c: libFuzzer target over the WBXML codec.
 *
 * Each input is decoded with small limits (so that the depth and node caps
 * are reached too). A document that decodes is rendered as XML, looked up,
 * re-encoded, decoded again and compared node by node with the first tree:
 * decode(encode(decode(x))) must equal decode(x), and encoding that second
 * tree must give the same bytes again (the encoder is canonical).
 *
 * Built with -DABQ_FUZZ_REPLAY it gets a main() that feeds every file of the
 * directories (or files) named on the command line, and every truncation of
 * each, through the same function: the corpus replay test of the normal build.
 */
#include "eas/wbxml.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Compare two trees: same shape, pages, tokens, flags and content. */
static int
same_tree(const struct wbxml_node *a, const struct wbxml_node *b)
{
	for (; a != NULL && b != NULL; a = a->next, b = b->next) {
		if (a->page != b->page || a->token != b->token || a->flags != b->flags ||
		    a->len != b->len || strcmp(a->name, b->name) != 0)
			return 0;
		if (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)
			return 0;
		if (!same_tree(a->first_child, b->first_child))
			return 0;
	}
	return a == NULL && b == NULL;
}

/* One input: decode, render, look up, re-encode, decode again, compare. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wbxml_limits lim = {.max_input = 1 << 20, .max_depth = 32, .max_nodes = 4096};
	struct wbxml_doc *doc = NULL, *doc2 = NULL;
	struct wbxml_error err;
	uint8_t *out = NULL, *out2 = NULL;
	size_t len, len2;
	char *xml;

	if (wbxml_decode(data, size, &lim, &doc, &err) != WBXML_OK) {
		if (doc != NULL || err.msg[0] == '\0' || err.code == WBXML_OK)
			abort();
		return 0;
	}
	xml = wbxml_to_xml(wbxml_doc_root(doc), WBXML_XML_PRETTY | WBXML_XML_REDACT);
	free(xml);
	(void)wbxml_find(wbxml_doc_root(doc), "AirSync:Collections/Collection/AirSync:SyncKey");
	if (wbxml_encode(doc, &out, &len, &err) != WBXML_OK)
		abort();
	if (len > size)
		abort(); /* canonical form is never longer than what decoded */
	if (wbxml_decode(out, len, &lim, &doc2, &err) != WBXML_OK)
		abort();
	if (!same_tree(wbxml_doc_root(doc), wbxml_doc_root(doc2)))
		abort();
	if (wbxml_encode(doc2, &out2, &len2, &err) != WBXML_OK || len2 != len ||
	    memcmp(out, out2, len) != 0)
		abort();
	free(out);
	free(out2);
	wbxml_doc_free(&doc);
	wbxml_doc_free(&doc2);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
/* Feed one file, and each of its prefixes, through the target. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	for (long i = 0; i <= n; i++)
		LLVMFuzzerTestOneInput(buf, (size_t)i);
	free(buf);
	return 0;
}

/* Replay every .wbxml file of the named directories (or the named files). */
int
main(int argc, char **argv)
{
	int files = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (d == NULL) {
			failed += replay_file(argv[i]) != 0;
			files++;
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);
			char path[4096];

			if (l < 6 || strcmp(e->d_name + l - 6, ".wbxml") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			failed += replay_file(path) != 0;
			files++;
		}
		closedir(d);
	}
	printf("fuzz_wbxml_replay: %d files, %d failed\n", files, failed);
	return files == 0 || failed != 0;
}
#endif
