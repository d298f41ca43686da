/*
 * wbxml_tool.c: a small command-line front end to the WBXML codec, used by
 * the oracle test (wbxml_oracle.sh) and handy when reading captures.
 *
 *   wbxml-tool decode FILE        print the document as indented XML
 *   wbxml-tool encode FILE [OUT]  decode, re-encode, write the bytes (stdout)
 *   wbxml-tool find FILE PATH     print the text at PATH ("Settings:Model")
 *
 * FILE may be "-" for stdin. Exit status: 0 success, 1 codec error (the
 * message on stderr), 2 usage or I/O error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "lib/util.h"

#define TOOL_MAX_INPUT (64u * 1024 * 1024)

/* Read a whole file (or stdin for "-") into a new buffer, capped at TOOL_MAX_INPUT. */
static int
read_file(const char *path, uint8_t **buf_r, size_t *len_r)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		fprintf(stderr, "wbxml-tool: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			if (cap >= TOOL_MAX_INPUT) {
				fprintf(stderr, "wbxml-tool: %s: larger than %u bytes\n", path,
				        TOOL_MAX_INPUT);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "wbxml-tool: %s: read error\n", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	*buf_r = buf;
	*len_r = len;
	return 0;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return -1;
}

/* Decode FILE or explain why not; returns the document or NULL. */
static struct wbxml_doc *
load(const char *path, int *status)
{
	struct wbxml_limits lim = {.max_input = TOOL_MAX_INPUT};
	struct wbxml_error err;
	struct wbxml_doc *doc = NULL;
	uint8_t *buf;
	size_t len;

	if (read_file(path, &buf, &len) != 0) {
		*status = 2;
		return NULL;
	}
	if (wbxml_decode(buf, len, &lim, &doc, &err) != WBXML_OK) {
		fprintf(stderr, "wbxml-tool: %s: %s [error %d: %s]\n", path, err.msg, err.code,
		        wbxml_strerror(err.code));
		*status = 1;
	}
	free(buf);
	return doc;
}

/* Print usage and return the usage exit status. */
static int
usage(void)
{
	fprintf(stderr, "usage: wbxml-tool decode FILE\n"
	                "       wbxml-tool encode FILE [OUT]\n"
	                "       wbxml-tool find FILE PATH\n");
	return 2;
}

/* Dispatch the sub-commands. */
int
main(int argc, char **argv)
{
	struct wbxml_doc *doc;
	int status = 0;

	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "decode") == 0 && argc == 3) {
		char *xml;

		if ((doc = load(argv[2], &status)) == NULL)
			return status;
		xml = wbxml_to_xml(wbxml_doc_root(doc), WBXML_XML_PRETTY | WBXML_XML_HEADER);
		fputs(xml, stdout);
		free(xml);
	} else if (strcmp(argv[1], "encode") == 0 && (argc == 3 || argc == 4)) {
		struct wbxml_error err;
		uint8_t *out;
		size_t len;
		FILE *f = stdout;

		if ((doc = load(argv[2], &status)) == NULL)
			return status;
		if (wbxml_encode(doc, &out, &len, &err) != WBXML_OK) {
			fprintf(stderr, "wbxml-tool: encode: %s\n", err.msg);
			wbxml_doc_free(&doc);
			return 1;
		}
		if (argc == 4 && (f = fopen(argv[3], "wb")) == NULL) {
			fprintf(stderr, "wbxml-tool: %s: %s\n", argv[3], strerror(errno));
			status = 2;
		} else {
			if (fwrite(out, 1, len, f) != len)
				status = 2;
			if (f != stdout && fclose(f) != 0)
				status = 2;
		}
		free(out);
	} else if (strcmp(argv[1], "find") == 0 && argc == 4) {
		const char *text;

		if ((doc = load(argv[2], &status)) == NULL)
			return status;
		text = wbxml_find_text(wbxml_doc_root(doc), argv[3]);
		if (text == NULL)
			status = 1;
		else
			puts(text);
	} else {
		return usage();
	}
	wbxml_doc_free(&doc);
	if (fflush(stdout) != 0)
		status = 2;
	return status;
}
