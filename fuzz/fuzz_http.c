/*
 * fuzz_http.c: libFuzzer target over the HTTP server layer (src/net/http_server.c).
 *
 * A real http_server serves one end of a socket pair (http_server_serve_fd)
 * on an in-process event loop; the input, but its first two bytes, is what
 * the client sends: requests, chunked bodies, trailers, pipelining. The
 * first byte seeds the split points, so a request arrives in one read or in
 * reads of any size down to one byte; the second chooses whether the client
 * shuts its side at the end. Between writes the loop runs until idle, and
 * the client reads (and discards) whatever the server answers.
 *
 * The handler's behaviour comes from the last character of each URL:
 *   'h' held, answered when the loop is idle; 'd' answered from on_headers;
 *   'w' body left waiting, resumed when the loop is idle; 'x' waiting, then
 *   answered; 'c' body cap lowered to 8; 's' answered chunked in two writes;
 *   anything else echoed at once.
 * The run ends when the loop is idle and nothing is pending; then the server
 * is freed (held and waiting requests get on_abort). Small limits make the
 * 413, 431, 503 and pipelining caps reachable.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_server.h"
#include "replay.h"

#define MAX_PENDING 64

enum act { A_ANSWER, A_RESUME, A_DENY };

static struct {
	struct http_request *req[MAX_PENDING];
	enum act act[MAX_PENDING];
	size_t n;
	unsigned events; /* handler calls: progress, for the idle test */
	unsigned seen_abort;
} P;

/* The behaviour letter: the URL's last character before any query. */
static char
url_mode(const struct http_request *req)
{
	const char *u = http_request_url(req);
	size_t n = strcspn(u, "?");

	return n > 0 ? u[n - 1] : '\0';
}

static void
pending_add(struct http_request *req, enum act a)
{
	if (P.n == MAX_PENDING) {
		http_response_simple(req, 503, NULL, NULL, 0);
		return;
	}
	P.req[P.n] = req;
	P.act[P.n] = a;
	P.n++;
}

static void
pending_forget(struct http_request *req)
{
	for (size_t i = 0; i < P.n; i++)
		if (P.req[i] == req)
			P.req[i] = NULL;
}

/* Echo the method, URL, a header and the body length. */
static void
answer(struct http_request *req)
{
	char out[256];
	size_t len;
	const char *h = http_request_header(req, "Host");
	int n;

	http_request_body(req, &len);
	n = snprintf(out, sizeof(out), "%s %.64s %zu %s", http_request_method(req),
	             http_request_url(req), len, h ? "host" : "-");
	if (url_mode(req) == 's') {
		if (http_response_start(req, 200, NULL, -1, NULL) == 0) {
			http_response_write(req, out, (size_t)n / 2);
			http_response_write(req, out + n / 2, (size_t)n - (size_t)n / 2);
			http_response_end(req);
		}
		return;
	}
	http_response_simple(req, 200, "text/plain", out, (size_t)n);
}

static void
on_request(struct http_request *req, void *arg)
{
	P.events++;
	if (url_mode(req) == 'h') {
		http_request_held(req);
		pending_add(req, A_ANSWER);
		return;
	}
	answer(req);
}

static int
on_headers(struct http_request *req, void *arg)
{
	P.events++;
	switch (url_mode(req)) {
	case 'd':
		http_response_simple(req, 401, "text/plain", "no", 2);
		return HTTP_BODY_READ;
	case 'w':
		pending_add(req, A_RESUME);
		return HTTP_BODY_WAIT;
	case 'x':
		pending_add(req, A_DENY);
		return HTTP_BODY_WAIT;
	case 'c':
		http_request_set_body_cap(req, 8);
		return HTTP_BODY_READ;
	default:
		return HTTP_BODY_READ;
	}
}

static void
on_abort(struct http_request *req, void *arg)
{
	P.events++;
	P.seen_abort++;
	pending_forget(req);
}

static void
on_drain(struct http_request *req, void *arg)
{
	P.events++;
}

static const struct http_handler handler = {on_request, on_abort, on_drain, on_headers};

/* Run the pending actions recorded while the loop ran (requests may go away meanwhile). */
static bool
pending_run(void)
{
	size_t n = P.n;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		struct http_request *req = P.req[i];

		if (req == NULL)
			continue;
		P.req[i] = NULL;
		any = true;
		switch (P.act[i]) {
		case A_ANSWER:
			answer(req);
			break;
		case A_RESUME:
			http_request_resume_body(req);
			break;
		case A_DENY:
			http_response_simple(req, 401, "text/plain", "no", 2);
			break;
		}
	}
	/* keep what was added while running */
	memmove(P.req, P.req + n, (P.n - n) * sizeof(P.req[0]));
	memmove(P.act, P.act + n, (P.n - n) * sizeof(P.act[0]));
	P.n -= n;
	return any;
}

/* Read what the server sent; false when nothing (or EOF). */
static bool
client_drain(int fd)
{
	char buf[4096];
	bool any = false;
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		any = true;
	return any;
}

/* Run the loop until a few passes in a row change nothing. */
static void
run_idle(struct event_base *base, int fd)
{
	for (int quiet = 0, rounds = 0; quiet < 3 && rounds < 10000; rounds++) {
		unsigned before = P.events;
		bool any;

		event_base_loop(base, EVLOOP_NONBLOCK);
		any = client_drain(fd);
		if (!any && P.events == before)
			any = pending_run();
		quiet = any || P.events != before ? 0 : quiet + 1;
	}
}

/* A tiny generator for the split points. */
static uint32_t
next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base *base;
	struct http_server_conf conf;
	struct http_server *srv;
	const char *err = NULL;
	int sv[2];
	uint32_t seed;
	bool shut;
	size_t off, maxpiece;
	int stuck = 0;

	if (size < 2 || size > 64 * 1024)
		return 0;
	if (base == NULL && (base = event_base_new()) == NULL)
		abort();
	seed = data[0];
	maxpiece = (size_t)(data[0] % 64) + 1;
	shut = data[1] & 1;
	data += 2;
	size -= 2;
	http_server_conf_defaults(&conf);
	conf.max_header_size = 2048;
	conf.max_body = 8192;
	conf.max_body_total = 12288;
	conf.max_pipeline = 1024;
	conf.write_high_water = 256;
	srv = http_server_new(base, &conf, &handler, NULL, &err);
	if (srv == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (http_server_serve_fd(srv, sv[0], &err) == -1)
		abort();
	memset(&P, 0, sizeof(P));
	/* seed 0: the input whole; else pieces of 1 to (seed % 64) + 1 bytes */
	for (off = 0; off < size;) {
		size_t n = seed == 0 ? size - off : 1 + next_rand(&seed) % maxpiece;
		ssize_t w;

		if (n > size - off)
			n = size - off;
		w = send(sv[1], data + off, n, MSG_NOSIGNAL);
		if (w <= 0) {
			/* full (the server stopped reading): let it run, then try once more */
			if (w == -1 && errno == EAGAIN && stuck++ == 0) {
				run_idle(base, sv[1]);
				continue;
			}
			break; /* the server closed, or reads no more */
		}
		stuck = 0;
		off += (size_t)w;
		run_idle(base, sv[1]);
	}
	if (shut)
		shutdown(sv[1], SHUT_WR);
	run_idle(base, sv[1]);
	http_server_free(&srv);
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	close(sv[1]);
	if (P.n != 0) {
		/* every pending request must have been answered or aborted */
		for (size_t i = 0; i < P.n; i++)
			if (P.req[i] != NULL)
				abort();
	}
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_http_replay"};
#endif
