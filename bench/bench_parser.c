/*
 * bench_parser.c: what libhttp-parser costs per proxied request.
 *
 * abqd parses two messages per proxied request with libhttp-parser: the
 * phone's request and the upstream's response. This times each on its own,
 * with callbacks that do nothing, using the bytes of the proxy benchmark
 * (bench/proxy.lua's FolderSync POST, and the response the benchmark's nginx
 * upstream sends), so the parser's share of abqd's user time per request can be
 * read next to the profile. The request is also timed with a one-byte path, to
 * show what its 86-byte query costs.
 *
 * Not a test: it asserts nothing but that the messages parse. Lines of the
 * form "name value" are for scripts:
 *   parser_request_ns 592.1
 *
 * usage: bench_parser [ITERATIONS]
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char request[] =
    "POST /Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=BENCH1&"
    "DeviceType=iPhone HTTP/1.1\r\n"
    "Host: 127.0.0.1:18602\r\n"
    "Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
    "MS-ASProtocolVersion: 14.1\r\n"
    "Content-Type: application/vnd.ms-sync.wbxml\r\n"
    "User-Agent: Apple-iPhone/1402.100\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "\x03\x01\x6a\x00\x00\x07\x56\x52\x03\x30\x00\x01\x01";

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Server: nginx/1.22.1\r\n"
                               "Date: Sat, 28 Nov 2026 14:12:58 GMT\r\n"
                               "Content-Type: application/vnd.ms-sync.wbxml\r\n"
                               "Content-Length: 52\r\n"
                               "Connection: keep-alive\r\n"
                               "MS-Server-ActiveSync: 14.1\r\n"
                               "\r\n"
                               "FOLDERSYNC-RESPONSE-0123456789abcdef0123456789abcdef";

static int complete;

static int
on_data(http_parser *p, const char *at, size_t len)
{
	(void)p;
	(void)at;
	(void)len;
	return 0;
}

static int
on_event(http_parser *p)
{
	(void)p;
	return 0;
}

static int
on_complete(http_parser *p)
{
	(void)p;
	complete++;
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per parse of msg (len bytes, the trailing NUL of the literal excluded). */
static double
time_parse(const char *name, enum http_parser_type type, const char *msg, size_t len, long n)
{
	http_parser_settings s = {
	    .on_url = on_data,
	    .on_status = on_data,
	    .on_header_field = on_data,
	    .on_header_value = on_data,
	    .on_headers_complete = on_event,
	    .on_body = on_data,
	    .on_message_complete = on_complete,
	};
	http_parser p;
	double t0, t1;

	complete = 0;
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		http_parser_init(&p, type);
		if (http_parser_execute(&p, &s, msg, len) != len) {
			fprintf(stderr, "%s: %s\n", name,
			        http_errno_description(HTTP_PARSER_ERRNO(&p)));
			exit(1);
		}
	}
	t1 = now_s();
	if (complete != n) {
		fprintf(stderr, "%s: %d of %ld messages complete\n", name, complete, n);
		exit(1);
	}
	printf("%s_bytes %zu\n", name, len);
	printf("%s_ns %.1f\n", name, (t1 - t0) / (double)n * 1e9);
	return (t1 - t0) / (double)n * 1e9;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
	double req, resp;

	if (n <= 0) {
		fprintf(stderr, "usage: bench_parser [ITERATIONS]\n");
		return 2;
	}
	printf("libhttp-parser %lu.%lu.%lu, %ld parses each\n", (http_parser_version() >> 16) & 255,
	       (http_parser_version() >> 8) & 255, http_parser_version() & 255, n);
	req = time_parse("parser_request", HTTP_REQUEST, request, sizeof(request) - 1, n);
	/* The same request with "/x" for its target: what the query costs. */
	{
		const char *rest = strstr(request, " HTTP/1.1\r\n");
		size_t len = sizeof(request) - 1 - (size_t)(rest - request);
		char shortreq[sizeof(request)];

		memcpy(shortreq, "POST /x", 7);
		memcpy(shortreq + 7, rest, len);
		time_parse("parser_request_short_path", HTTP_REQUEST, shortreq, 7 + len, n);
	}
	resp = time_parse("parser_response", HTTP_RESPONSE, response, sizeof(response) - 1, n);
	printf("parser_per_proxied_request_ns %.1f\n", req + resp);
	return 0;
}
