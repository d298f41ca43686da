/*
 * fuzz_lines.c: libFuzzer target holding net/http_lines.c to libhttp-parser's
 * own reading of any header block.
 *
 * The first input byte chooses the message and a cut; the rest is the header
 * block (and whatever follows it):
 *   bits 0-1: 0 or 3, a request after "POST / HTTP/1.1" CRLF (3: http_lines
 *             hands each plain line to one line callback, which logs it as
 *             the two header callbacks would); 1, a response
 *             after "HTTP/1.1 200 OK" CRLF; 2, a response whose status line
 *             is the input's own first line (http_status_line);
 *   bits 2-7: where the block is cut in two reads (0: not cut; k: at k/63 of
 *             its length).
 * The message is parsed twice, both times in the same two reads: by
 * libhttp-parser alone; and as abqd parses it, the start line, then
 * http_lines over the first read, the parser over the rest of it, the parser
 * over the second read. Every callback
 * (consecutive pieces of one name, value, URL, reason or body joined), the
 * flags, framing and version the parser holds at the end of the header block,
 * how far each got and the error it stopped at must be the same, or the run
 * aborts. (One flag is left out of the comparison: F_CONNECTION_KEEP_ALIVE of
 * an HTTP/1.1 message, read by nothing; http_should_keep_alive is compared.)
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include "net/http_lines.h"
#include "replay.h"

#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX (64 * 1024)

/* What one parse showed: a log of the callbacks and the state at the end. */
struct record {
	char *log;
	size_t len, cap;
	char last; /* the kind of the last data callback, to join its pieces */
};

static void
rec_put(struct record *r, const void *p, size_t n)
{
	if (n > r->cap - r->len) {
		size_t cap = r->cap ? r->cap : 256;

		while (n > cap - r->len)
			cap *= 2;
		r->log = realloc(r->log, cap);
		if (r->log == NULL)
			abort();
		r->cap = cap;
	}
	memcpy(r->log + r->len, p, n);
	r->len += n;
}

/* A data callback: a new entry "\n<kind>" unless it continues the last one. */
static int
rec_data(http_parser *p, char kind, const char *at, size_t len)
{
	struct record *r = p->data;

	if (r->last != kind) {
		char h[2] = {'\n', kind};

		rec_put(r, h, 2);
		r->last = kind;
	}
	rec_put(r, at, len);
	return 0;
}

/* An event callback, with what the parser holds at that point. */
static int
rec_event(http_parser *p, char kind)
{
	struct record *r = p->data;
	unsigned flags = p->flags;
	char h[160];
	int n;

	/* http_lines takes "Connection: keep-alive" of HTTP/1.1 itself: the flag
	 * it leaves unset is read for HTTP/1.0 only (ka, below, is compared) */
	if (p->http_major == 1 && p->http_minor == 1)
		flags &= ~(unsigned)F_CONNECTION_KEEP_ALIVE;
	n = snprintf(h, sizeof(h), "\n%c %u.%u m%u s%u f%#x cl%llu ka%d up%u", kind, p->http_major,
	             p->http_minor, p->method, p->status_code, flags,
	             (unsigned long long)p->content_length, http_should_keep_alive(p), p->upgrade);
	rec_put(r, h, (size_t)n);
	r->last = 0;
	return 0;
}

static int
on_begin(http_parser *p)
{
	return rec_event(p, 'B');
}
static int
on_url(http_parser *p, const char *at, size_t len)
{
	return rec_data(p, 'u', at, len);
}
static int
on_status(http_parser *p, const char *at, size_t len)
{
	return rec_data(p, 's', at, len);
}
static int
on_field(http_parser *p, const char *at, size_t len)
{
	return rec_data(p, 'f', at, len);
}
static int
on_value(http_parser *p, const char *at, size_t len)
{
	return rec_data(p, 'v', at, len);
}
static int
on_headers(http_parser *p)
{
	return rec_event(p, 'H');
}
static int
on_body(http_parser *p, const char *at, size_t len)
{
	return rec_data(p, 'b', at, len);
}
static int
on_complete(http_parser *p)
{
	return rec_event(p, 'C');
}
static int
on_chunk(http_parser *p)
{
	return rec_event(p, 'k');
}
static int
on_chunk_done(http_parser *p)
{
	return rec_event(p, 'K');
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
    .on_chunk_header = on_chunk,
    .on_chunk_complete = on_chunk_done,
};

/* A whole plain line (http_line_cb): logged as its name then its value. */
static int
on_line(http_parser *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
	if (settings.on_header_field(p, name, nlen) != 0)
		return HPE_CB_header_field;
	return settings.on_header_value(p, value, vlen) != 0 ? HPE_CB_header_value : 0;
}

/* The end of a parse: how far it got and its error, into the log. */
static void
rec_end(struct record *r, http_parser *p, size_t taken)
{
	char h[96];
	int n = snprintf(h, sizeof(h), "\n= %zu %s", taken, http_errno_name(HTTP_PARSER_ERRNO(p)));

	rec_put(r, h, (size_t)n);
}

/* Run the parser over m[off..end) unless it has stopped; returns the new off. */
static size_t
exec_to(http_parser *p, const char *m, size_t off, size_t end)
{
	if (off < end && HTTP_PARSER_ERRNO(p) == HPE_OK)
		off += http_parser_execute(p, &settings, m + off, end - off);
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char req_line[] = "POST / HTTP/1.1\r\n", res_line[] = "HTTP/1.1 200 OK\r\n";
	struct record a = {0}, b = {0};
	http_parser pa, pb;
	const char *line;
	size_t llen, n, cut, off;
	char *m;
	int kind;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	kind = data[0] & 3;
	line = kind == 1 ? res_line : kind == 2 ? "" : req_line;
	llen = strlen(line);
	n = llen + size - 1;
	m = malloc(n + 1);
	if (m == NULL)
		abort();
	memcpy(m, line, llen);
	memcpy(m + llen, data + 1, size - 1);
	cut = llen + (size - 1) * (size_t)(data[0] >> 2) / 63;
	if (data[0] >> 2 == 0)
		cut = n;

	/* the parser alone */
	http_parser_init(&pa, kind == 0 || kind == 3 ? HTTP_REQUEST : HTTP_RESPONSE);
	pa.data = &a;
	rec_end(&a, &pa, exec_to(&pa, m, exec_to(&pa, m, 0, cut), n));

	/* as abqd reads it */
	http_parser_init(&pb, kind == 0 || kind == 3 ? HTTP_REQUEST : HTTP_RESPONSE);
	pb.data = &b;
	if (kind == 2) {
		off = http_status_line(&pb, &settings, m, cut);
		if (off > 0 && HTTP_PARSER_ERRNO(&pb) == HPE_OK)
			off += http_lines(&pb, &settings, NULL, m + off, cut - off);
	} else {
		off = exec_to(&pb, m, 0, llen);
		if (off != llen) /* the fixed start line is always read whole */
			abort();
		off += http_lines(&pb, &settings, kind == 3 ? on_line : NULL, m + off, cut - off);
	}
	off = exec_to(&pb, m, off, cut);
	off = exec_to(&pb, m, off, n);
	rec_end(&b, &pb, off);

	if (a.len != b.len || memcmp(a.log, b.log, a.len) != 0) {
		fprintf(stderr, "fuzz_lines: the parser alone:%.*s\nwith http_lines:%.*s\n",
		        (int)a.len, a.log, (int)b.len, b.log);
		abort();
	}
	free(a.log);
	free(b.log);
	free(m);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_lines_replay"};
#endif
