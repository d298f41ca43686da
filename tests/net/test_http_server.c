/*
 * test_http_server.c: the HTTP server layer over real sockets.
 *
 * Each test starts an http_server on 127.0.0.1:0 with its own conf; the event
 * loop runs in a second thread (libevent made thread-aware with
 * evthread_use_pthreads) and the test thread is the client, speaking raw TCP
 * or TLS with blocking sockets and receive timeouts. The handler records what
 * it saw under a mutex; anything the test must do on the server side
 * (answering a held request, tls_reload) is run on the loop's thread through
 * run_on_loop().
 *
 * Handler routes: /hold keeps the request; /stream answers 4 MiB chunked,
 * pausing whenever http_response_write reports backpressure and resuming in
 * on_drain; anything else is echoed as "<method> <url> <body length>
 * client=<client address>".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "net/http_server.h"
#include "net/tls.h"

#define MAX_HELD     4096
#define STREAM_TOTAL (4u * 1024 * 1024)
#define STREAM_CHUNK (16u * 1024)
#define MEM_CONNS    2000

static struct {
	struct event_base *base;
	struct http_server *srv;
	struct tls_ctx *tls;
	pthread_t thr;
	bool running;
	int port, tls_port;
	char dir[64];

	pthread_mutex_t mu;
	int nreq;
	char method[16], url[256], xtest[64], client[64];
	char body[4096];
	size_t body_len;
	struct http_request *held[MAX_HELD];
	int nheld;
	int aborts;
	size_t produced;
	int pauses, resumes;
	bool stream_done;
	char log[8192];
	size_t log_len;
	/* on_headers (handler_hdrs) */
	const struct http_handler *handler;
	int nheaders;
	struct http_request *waiting;
	char hdr_url[256];
} F;

/* Milliseconds on a monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Timing limits grow under valgrind. */
static int
slow(int ms)
{
	return RUNNING_ON_VALGRIND ? ms * 20 : ms;
}

/* ---- the handler (runs on the loop thread) ---- */

/* Produce the stream until done or told to pause. */
static void
stream_pump(struct http_request *req)
{
	static unsigned char chunk[STREAM_CHUNK];

	for (;;) {
		size_t n;
		int r;

		pthread_mutex_lock(&F.mu);
		if (F.produced >= STREAM_TOTAL) {
			F.stream_done = true;
			pthread_mutex_unlock(&F.mu);
			http_response_end(req);
			return;
		}
		n = STREAM_TOTAL - F.produced < STREAM_CHUNK ? STREAM_TOTAL - F.produced
		                                             : STREAM_CHUNK;
		for (size_t i = 0; i < n; i++)
			chunk[i] = (unsigned char)((F.produced + i) % 251);
		F.produced += n;
		pthread_mutex_unlock(&F.mu);
		r = http_response_write(req, chunk, n);
		assert_true(r >= 0);
		if (r == 1) {
			pthread_mutex_lock(&F.mu);
			F.pauses++;
			pthread_mutex_unlock(&F.mu);
			return;
		}
	}
}

static void
on_request(struct http_request *req, void *arg)
{
	const char *url = http_request_url(req), *x;
	size_t len;
	const void *body = http_request_body(req, &len);
	char out[512];

	pthread_mutex_lock(&F.mu);
	F.nreq++;
	snprintf(F.method, sizeof(F.method), "%s", http_request_method(req));
	snprintf(F.url, sizeof(F.url), "%s", url);
	x = http_request_header(req, "x-test");
	snprintf(F.xtest, sizeof(F.xtest), "%s", x ? x : "");
	snprintf(F.client, sizeof(F.client), "%s", http_request_client(req));
	F.body_len = len < sizeof(F.body) ? len : sizeof(F.body);
	memcpy(F.body, body, F.body_len);
	if (len == 0) /* no body reads as "", never as a pointer past the request */
		assert_int_equal(*(const char *)body, '\0');
	if (strcmp(url, "/hold") == 0) {
		if (F.nheld < MAX_HELD)
			F.held[F.nheld++] = req;
		pthread_mutex_unlock(&F.mu);
		return;
	}
	pthread_mutex_unlock(&F.mu);
	if (strcmp(url, "/stream") == 0) {
		assert_int_equal(http_response_start(req, 200, NULL, -1, NULL), 0);
		stream_pump(req);
		return;
	}
	if (strncmp(url, "/bighead/", 9) == 0) {
		/* A head of any size: X-Big of N bytes, then X-After, then a body. */
		size_t n = strtoul(url + 9, NULL, 10);
		char *v = malloc(n + 1);
		const char *h[] = {"X-Big", v, "X-After", "1", NULL};

		memset(v, 'h', n);
		v[n] = '\0';
		assert_int_equal(http_response_start(req, 200, NULL, 4, h), 0);
		assert_int_equal(http_response_write(req, "done", 4), 0);
		assert_int_equal(http_response_end(req), 0);
		free(v);
		return;
	}
	if (strcmp(url, "/headers") == 0) {
		/* Every header as "name=value;", after checking the index's lengths. */
		char all[4096];
		size_t n = 0, nl, vl;
		const char *name, *value;

		for (size_t i = 0; http_request_header_at(req, i, &name, &value, &nl, &vl); i++) {
			int k = nl == strlen(name) && vl == strlen(value)
			            ? snprintf(all + n, sizeof(all) - n, "%s=%s;", name, value)
			            : snprintf(all + n, sizeof(all) - n, "BAD LENGTHS AT %zu;", i);
			if (k < 0 || (size_t)k >= sizeof(all) - n)
				break;
			n += (size_t)k;
		}
		assert_int_equal(http_response_simple(req, 200, "text/plain", all, n), 0);
		return;
	}
	snprintf(out, sizeof(out), "%s %s %zu client=%s", http_request_method(req), url, len,
	         http_request_client(req));
	assert_int_equal(http_response_simple(req, 200, "text/plain", out, strlen(out)), 0);
}

static void
on_abort(struct http_request *req, void *arg)
{
	assert_string_equal(http_request_peer(req), "127.0.0.1");
	pthread_mutex_lock(&F.mu);
	F.aborts++;
	for (int i = 0; i < F.nheld; i++)
		if (F.held[i] == req)
			F.held[i] = NULL;
	pthread_mutex_unlock(&F.mu);
	assert_int_equal(http_response_write(req, "x", 1), -1);
}

static void
on_drain(struct http_request *req, void *arg)
{
	pthread_mutex_lock(&F.mu);
	F.resumes++;
	pthread_mutex_unlock(&F.mu);
	stream_pump(req);
}

static void
on_log(void *arg, enum http_log_level level, const char *msg)
{
	pthread_mutex_lock(&F.mu);
	size_t n = strlen(msg);
	if (F.log_len + n + 2 < sizeof(F.log)) {
		memcpy(F.log + F.log_len, msg, n);
		F.log_len += n;
		F.log[F.log_len++] = '\n';
		F.log[F.log_len] = '\0';
	}
	pthread_mutex_unlock(&F.mu);
}

static const struct http_handler handler = {on_request, on_abort, on_drain, NULL};

/*
 * on_headers by URL: /wait leaves the body waiting (F.waiting), /deny answers
 * 401 at once, /cap lowers the body cap to 10 bytes; anything else reads.
 */
static int
on_headers(struct http_request *req, void *arg)
{
	const char *url = http_request_url(req);

	pthread_mutex_lock(&F.mu);
	F.nheaders++;
	snprintf(F.hdr_url, sizeof(F.hdr_url), "%s", url);
	pthread_mutex_unlock(&F.mu);
	if (strcmp(url, "/wait") == 0) {
		pthread_mutex_lock(&F.mu);
		F.waiting = req;
		pthread_mutex_unlock(&F.mu);
		return HTTP_BODY_WAIT;
	}
	if (strcmp(url, "/deny") == 0) {
		assert_int_equal(http_response_simple(req, 401, "text/plain", "who?", 4), 0);
		return HTTP_BODY_READ; /* ignored: answered */
	}
	if (strcmp(url, "/cap") == 0)
		http_request_set_body_cap(req, 10);
	return HTTP_BODY_READ;
}

/* on_abort that also forgets a waiting request. */
static void
on_abort_hdrs(struct http_request *req, void *arg)
{
	pthread_mutex_lock(&F.mu);
	if (F.waiting == req)
		F.waiting = NULL;
	pthread_mutex_unlock(&F.mu);
	on_abort(req, arg);
}

static const struct http_handler handler_hdrs = {on_request, on_abort_hdrs, on_drain, on_headers};

/* ---- running the server ---- */

static void *
loop_thread(void *arg)
{
	event_base_loop(F.base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* Start a server with conf (NULL: defaults), plus a TLS listener if F.tls. */
static void
start_server(const struct http_server_conf *conf)
{
	struct http_server_conf d;
	const char *err = NULL;

	if (conf == NULL) {
		http_server_conf_defaults(&d);
		conf = &d;
	}
	d = *conf;
	d.log = on_log;
	F.base = event_base_new();
	assert_non_null(F.base);
	F.srv = http_server_new(F.base, &d, F.handler ? F.handler : &handler, NULL, &err);
	assert_non_null(F.srv);
	assert_int_equal(http_server_listen(F.srv, "127.0.0.1:0", NULL, &F.port, &err), 0);
	assert_true(F.port > 0);
	if (F.tls)
		assert_int_equal(http_server_listen(F.srv, "127.0.0.1:0", F.tls, &F.tls_port, &err),
		                 0);
	assert_int_equal(pthread_create(&F.thr, NULL, loop_thread, NULL), 0);
	F.running = true;
}

struct on_loop {
	void (*fn)(void *);
	void *arg;
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void
on_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct on_loop *o = arg;

	o->fn(o->arg);
	pthread_mutex_lock(&o->mu);
	o->done = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

/* Run fn(arg) on the loop thread and wait for it. */
static void
run_on_loop(void (*fn)(void *), void *arg)
{
	struct on_loop o = {fn, arg, false, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
	struct timeval tv = {0, 0};

	assert_int_equal(event_base_once(F.base, -1, EV_TIMEOUT, on_loop_cb, &o, &tv), 0);
	pthread_mutex_lock(&o.mu);
	while (!o.done)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
}

static int
setup(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	char dir[64];

	memcpy(dir, F.dir, sizeof(dir));
	memset(&F, 0, sizeof(F));
	memcpy(F.dir, dir, sizeof(dir));
	F.mu = mu;
	return 0;
}

static int
teardown(void **state)
{
	if (F.running) {
		event_base_loopbreak(F.base);
		pthread_join(F.thr, NULL);
		F.running = false;
	}
	http_server_free(&F.srv);
	if (F.base) {
		/* let libevent finish freeing bufferevents (deferred finalizers) */
		for (int i = 0; i < 3; i++)
			event_base_loop(F.base, EVLOOP_NONBLOCK);
		event_base_free(F.base);
	}
	F.base = NULL;
	tls_ctx_free(&F.tls);
	return 0;
}

/* ---- a small blocking client ---- */

static int
cli_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
cli_send(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

static void
cli_sends(int fd, const char *s)
{
	cli_send(fd, s, strlen(s));
}

struct resp {
	int status;
	char head[4096];
	unsigned char *body;
	size_t len;
};

/* Read exactly n bytes; -1 on EOF or timeout. */
static int
read_n(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = recv(fd, p, n, 0);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Read a CRLF-terminated line (byte by byte, never past it). */
static int
read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		if (read_n(fd, buf + n, 1) == -1)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

/* Read one response (Content-Length, chunked, or to EOF); -1 on EOF first. */
static int
read_response(int fd, struct resp *r)
{
	char line[1024];
	const char *cl;

	memset(r, 0, sizeof(*r));
	do {
		if (read_line(fd, line, sizeof(line)) == -1)
			return -1;
	} while (strncmp(line, "HTTP/1.1 100", 12) == 0 && read_line(fd, line, sizeof(line)) == 0);
	if (sscanf(line, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	for (;;) {
		if (read_line(fd, line, sizeof(line)) == -1)
			return -1;
		if (strcmp(line, "\r\n") == 0)
			break;
		if (strlen(r->head) + strlen(line) + 1 < sizeof(r->head))
			strncat(r->head, line, sizeof(r->head) - strlen(r->head) - 1);
	}
	cl = strcasestr(r->head, "Content-Length:");
	if (cl) {
		r->len = strtoul(cl + 15, NULL, 10);
		r->body = malloc(r->len + 1);
		if (read_n(fd, r->body, r->len) == -1)
			return -1;
		r->body[r->len] = '\0';
		return 0;
	}
	if (strcasestr(r->head, "Transfer-Encoding: chunked")) {
		size_t cap = 0;
		for (;;) {
			size_t n;
			if (read_line(fd, line, sizeof(line)) == -1)
				return -1;
			n = strtoul(line, NULL, 16);
			if (n == 0) {
				read_line(fd, line, sizeof(line));
				break;
			}
			if (r->len + n + 1 > cap) {
				cap = (r->len + n + 1) * 2;
				r->body = realloc(r->body, cap);
			}
			if (read_n(fd, r->body + r->len, n) == -1 ||
			    read_line(fd, line, sizeof(line)) == -1)
				return -1;
			r->len += n;
		}
		if (r->body)
			r->body[r->len] = '\0';
		return 0;
	}
	return 0;
}

/* True if the server closes fd within ms (EOF or reset). */
static bool
closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	while (poll(&p, 1, ms) == 1) {
		ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;
	}
	return false;
}

/* Wait until cond_fn() is true or ms pass. */
static bool
wait_for(bool (*cond_fn)(void), int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (cond_fn())
			return true;
		usleep(1000);
	}
	return cond_fn();
}

static int want_held;
static bool
held_reached(void)
{
	pthread_mutex_lock(&F.mu);
	bool ok = F.nheld >= want_held;
	pthread_mutex_unlock(&F.mu);
	return ok;
}

static int want_aborts;
static bool
aborts_reached(void)
{
	pthread_mutex_lock(&F.mu);
	bool ok = F.aborts >= want_aborts;
	pthread_mutex_unlock(&F.mu);
	return ok;
}

/* ---- tests ---- */

static void
test_post_body(void **state)
{
	struct resp r;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\nHost: x\r\n"
	              "X-TEST: Abc\r\nContent-Length: 11\r\n\r\nhello=world");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body,
	                    "POST /Microsoft-Server-ActiveSync?Cmd=Ping 11 client=127.0.0.1");
	assert_string_equal(F.method, "POST");
	assert_string_equal(F.xtest, "Abc");
	assert_int_equal(F.body_len, 11);
	assert_memory_equal(F.body, "hello=world", 11);
	free(r.body);
	close(fd);
}

/*
 * The request's header index, as the handler sees it: names, values and
 * their lengths, for a few headers, for more than the connection records the
 * ends of (the rest are measured), for an empty value, a name or value that
 * arrives in two reads, and on the next request of the same connection.
 */
static void
test_header_index(void **state)
{
	char req[4096], want[4096];
	struct resp r;
	size_t n, w;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	for (int count = 1; count <= 40; count += 13) {
		n = (size_t)snprintf(req, sizeof(req), "GET /headers HTTP/1.1\r\n");
		w = 0;
		for (int i = 0; i < count; i++) {
			n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: %.*s\r\n", i, i % 7,
			                      "abcdefg");
			w += (size_t)snprintf(want + w, sizeof(want) - w, "X-H%d=%.*s;", i, i % 7,
			                      "abcdefg");
		}
		snprintf(req + n, sizeof(req) - n, "\r\n");
		cli_sends(fd, req);
		assert_int_equal(read_response(fd, &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal((char *)r.body, want);
		free(r.body);
	}
	/* In pieces: a name and a value cut across reads. */
	cli_sends(fd, "GET /headers HTTP/1.1\r\nX-Lo");
	usleep(20000);
	cli_sends(fd, "ng-Name: first ha");
	usleep(20000);
	cli_sends(fd, "lf, second half\r\nX-Empty:\r\nX-Last: z\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body,
	                    "X-Long-Name=first half, second half;X-Empty=;X-Last=z;");
	free(r.body);
	close(fd);
}

/*
 * Response heads larger than the buffers they are put together in (the
 * listener's 4 KiB, a 2 KiB stack one when something is queued): the head
 * comes out whole and in order, then the body, on one kept-alive connection.
 */
static void
test_big_head(void **state)
{
	static const size_t sizes[] = {10, 2000, 3000, 4080, 4100, 9000, 30};
	size_t cap = 64 * 1024;
	char *got = malloc(cap), req[64];
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = 0;
		size_t wcap = sizes[k] + 64;
		char *want = malloc(wcap);

		snprintf(req, sizeof(req), "GET /bighead/%zu HTTP/1.1\r\n\r\n", sizes[k]);
		cli_sends(fd, req);
		/* Read until the body, "done", has come. */
		while (n < 4 || memcmp(got + n - 4, "done", 4) != 0) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			ssize_t r;

			assert_int_equal(poll(&p, 1, slow(3000)), 1);
			r = recv(fd, got + n, cap - 1 - n, 0);
			assert_true(r > 0);
			n += (size_t)r;
		}
		got[n] = '\0';
		assert_non_null(strstr(got, "HTTP/1.1 200 OK\r\n"));
		memcpy(want, "\r\nX-Big: ", 9);
		memset(want + 9, 'h', sizes[k]);
		snprintf(want + 9 + sizes[k], wcap - 9 - sizes[k], "%s",
		         "\r\nX-After: 1\r\nContent-Length: 4\r\n\r\ndone");
		assert_non_null(strstr(got, want));
		free(want);
	}
	free(got);
	close(fd);
}

static void
test_keepalive(void **state)
{
	struct resp r;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	for (int i = 0; i < 2; i++) {
		cli_sends(fd, "GET /k HTTP/1.1\r\nHost: x\r\n\r\n");
		assert_int_equal(read_response(fd, &r), 0);
		assert_int_equal(r.status, 200);
		assert_null(strcasestr(r.head, "Connection: close"));
		free(r.body);
	}
	assert_int_equal(F.nreq, 2);
	/* HTTP/1.0 with keep-alive asked for */
	cli_sends(fd, "GET /k10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_non_null(strcasestr(r.head, "Connection: keep-alive"));
	free(r.body);
	close(fd);
}

static void
test_pipelined(void **state)
{
	struct resp r;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n"
	              "Content-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /a 0 client=127.0.0.1");
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /b 3 client=127.0.0.1");
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /c 0 client=127.0.0.1");
	free(r.body);
	close(fd);
}

/*
 * Request lines as a phone sends them and their neighbours: the server reads
 * "POST <target> HTTP/1.1" with a plain target without walking the target
 * through libhttp-parser's URL states (conn_line), and every other line
 * through the parser; the handler sees the same method and URL either way,
 * and what the parser refuses is refused. Each line is sent whole in one
 * write, then cut after every byte of the line, on a fresh connection.
 */
static void
test_request_line(void **state)
{
	static const struct {
		const char *line; /* without CRLF unless it ends otherwise */
		int status;
		const char *echo; /* "<method> <url>", or NULL */
	} cases[] = {
	    {"POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b&DeviceId=X1&DeviceType=iPhone "
	     "HTTP/1.1\r\n",
	     200,
	     "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b&DeviceId=X1&DeviceType=iPhone"},
	    {"POST / HTTP/1.1\r\n", 200, "POST /"},
	    {"POST /a?b?c=d;e:f@g!$&'()*+,=~_. HTTP/1.1\r\n", 200,
	     "POST /a?b?c=d;e:f@g!$&'()*+,=~_."},
	    {"POST /a#frag HTTP/1.1\r\n", 200, "POST /a#frag"},
	    {"POST /a\"b HTTP/1.1\r\n", 200, "POST /a\"b"},
	    {"POST /\xc3\xa9 HTTP/1.1\r\n", 200, "POST /\xc3\xa9"},
	    {"POST /a HTTP/1.0\r\n", 200, "POST /a"},
	    {"POST /a HTTP/1.1\n", 200, "POST /a"},
	    {"POST  /a HTTP/1.1\r\n", 200, "POST /a"},
	    {"PUT /a HTTP/1.1\r\n", 200, "PUT /a"},
	    {"POST /a\x7f HTTP/1.1\r\n", 400, NULL},
	    {"POST /a\x01 HTTP/1.1\r\n", 400, NULL},
	    {"post /a HTTP/1.1\r\n", 400, NULL},
	    {"POST /a HTTP/1.1 \r\n", 400, NULL},
	    {"POST /a HTTP/9.1\r\n", 200, "POST /a"},
	    {"POST a HTTP/1.1\r\n", 400, NULL},
	};
	const char *rest = "Host: x\r\nContent-Length: 3\r\n\r\nxyz";
	char want[512];
	struct resp r;
	int fd;

	start_server(NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].line);

		/* cut: 0 sends the line whole, k > 0 sends its first k bytes, then the rest */
		for (size_t cut = 0; cut < n; cut++) {
			fd = cli_connect(F.port);
			cli_send(fd, cases[i].line, cut == 0 ? n : cut);
			if (cut > 0) {
				usleep(2000);
				cli_send(fd, cases[i].line + cut, n - cut);
			}
			cli_sends(fd, rest);
			assert_int_equal(read_response(fd, &r), 0);
			if (r.status != cases[i].status)
				fail_msg("line %zu cut %zu: status %d, want %d", i, cut, r.status,
				         cases[i].status);
			if (cases[i].echo != NULL) {
				snprintf(want, sizeof(want), "%s 3 client=127.0.0.1",
				         cases[i].echo);
				assert_string_equal((char *)r.body, want);
			}
			free(r.body);
			close(fd);
		}
	}
	/* Pipelined: each request's line is read as the first was. */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /one?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1"
	              "POST /two?b=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n22"
	              "POST /three#x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /one?a=1 1 client=127.0.0.1");
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /two?b=2 2 client=127.0.0.1");
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /three#x 0 client=127.0.0.1");
	free(r.body);
	close(fd);
}

#define REQ_CAP (32 * 1024)

/* Append len bytes of s (or len times the byte fill when s is NULL) at b[*n]. */
static void
buf_put(char *b, size_t cap, size_t *n, const char *s, size_t len, char fill)
{
	assert_true(len <= cap - *n);
	if (s != NULL)
		memcpy(b + *n, s, len);
	else
		memset(b + *n, fill, len);
	*n += len;
}
#define BUF_LIT(b, n, lit) buf_put(b, REQ_CAP, n, lit, sizeof(lit) - 1, 0)

/*
 * The target counts against max_header_size (4 KiB here) however the line is
 * read: a 3,000-byte target is served, the same with a header that takes
 * the block over the cap is 431, and so are a 4,200-byte target (the whole
 * request in one read: refused while the line is taken) and a 20,000-byte
 * one (more than a read: refused by the parser). Each request is sent in
 * one write.
 */
static void
test_request_line_cap(void **state)
{
	static const struct {
		size_t target;
		bool header;
		int status;
	} cases[] = {
	    {3000, false, 200}, {3000, true, 431}, {4200, false, 431}, {20000, false, 431}};
	char *req = malloc(REQ_CAP);
	struct http_server_conf c;
	struct resp r;

	http_server_conf_defaults(&c);
	c.max_header_size = 4096;
	start_server(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = cli_connect(F.port);
		size_t n = 0;

		BUF_LIT(req, &n, "POST /");
		buf_put(req, REQ_CAP, &n, NULL, cases[i].target - 1, 'a');
		BUF_LIT(req, &n, " HTTP/1.1\r\nHost: x\r\n");
		if (cases[i].header) {
			BUF_LIT(req, &n, "X-Big: ");
			buf_put(req, REQ_CAP, &n, NULL, 2000, 'v');
			BUF_LIT(req, &n, "\r\n");
		}
		BUF_LIT(req, &n, "Content-Length: 0\r\n\r\n");
		cli_send(fd, req, n);
		assert_int_equal(read_response(fd, &r), 0);
		if (r.status != cases[i].status)
			fail_msg("case %zu: status %d, want %d", i, r.status, cases[i].status);
		free(r.body);
		close(fd);
	}
	assert_int_equal(F.nreq, 1);
	free(req);
}

/*
 * More than one read's worth (16 KiB) arriving at once: a 200 KiB body in one
 * write, and 600 pipelined requests (20 KB) in one write. The connection's read
 * event is edge-triggered, so each full read must be followed by another
 * without a new edge from the kernel; nothing may be left unread.
 */
static void
test_burst(void **state)
{
	size_t blen = 200 * 1024, n = 0;
	char *body = malloc(blen), *many = malloc(600 * 64);
	char head[128], want[128];
	struct http_server_conf c;
	struct resp r;
	int fd;

	http_server_conf_defaults(&c);
	c.max_body = 1024 * 1024;
	start_server(&c);
	memset(body, 'b', blen);
	fd = cli_connect(F.port);
	snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
	         blen);
	{
		char *all = malloc(strlen(head) + blen);

		memcpy(all, head, strlen(head));
		memcpy(all + strlen(head), body, blen);
		cli_send(fd, all, strlen(head) + blen);
		free(all);
	}
	assert_int_equal(read_response(fd, &r), 0);
	snprintf(want, sizeof(want), "POST /big %zu client=127.0.0.1", blen);
	assert_string_equal((char *)r.body, want);
	free(r.body);
	for (int i = 0; i < 600; i++) {
		int k =
		    snprintf(many + n, 600 * 64 - n, "POST /p%d HTTP/1.1\r\nHost: x\r\n\r\n", i);

		assert_true(k > 0 && (size_t)k < 600 * 64 - n);
		n += (size_t)k;
	}
	assert_true(n > 16 * 1024);
	cli_send(fd, many, n);
	for (int i = 0; i < 600; i++) {
		assert_int_equal(read_response(fd, &r), 0);
		snprintf(want, sizeof(want), "POST /p%d 0 client=127.0.0.1", i);
		assert_string_equal((char *)r.body, want);
		free(r.body);
	}
	close(fd);
	free(body);
	free(many);
}

/*
 * A client that sends its request and its FIN together: the request is
 * answered, and the end of the stream that came with it is seen (the read
 * that took the request came back short, and no further edge comes), so the
 * connection is closed at once rather than at the idle timeout.
 */
static void
test_request_then_fin(void **state)
{
	struct resp r;

	start_server(NULL);
	for (int i = 0; i < 20; i++) {
		int fd = cli_connect(F.port);

		cli_sends(fd, "POST /fin HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
		shutdown(fd, SHUT_WR);
		assert_int_equal(read_response(fd, &r), 0);
		assert_string_equal((char *)r.body, "POST /fin 2 client=127.0.0.1");
		free(r.body);
		assert_true(closed_within(fd, slow(2000)));
		close(fd);
	}
}

static void
test_connection_close(void **state)
{
	struct resp r;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_non_null(strcasestr(r.head, "Connection: close"));
	free(r.body);
	assert_true(closed_within(fd, slow(1000)));
	close(fd);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /c10 HTTP/1.0\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_true(closed_within(fd, slow(1000)));
	close(fd);
}

static void
test_chunked_body(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;

	http_server_conf_defaults(&c);
	c.max_body = 16;
	start_server(&c);
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(F.body_len, 11);
	assert_memory_equal(F.body, "hello world", 11);
	free(r.body);
	/* over max_body in chunks */
	cli_sends(fd, "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 413);
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
}

static void
test_body_too_large(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;
	int64_t t0;

	http_server_conf_defaults(&c);
	c.max_body = 1024;
	start_server(&c);
	fd = cli_connect(F.port);
	t0 = now_ms();
	cli_sends(fd, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 413);
	assert_true(now_ms() - t0 < slow(500));
	assert_non_null(strcasestr(r.head, "Connection: close"));
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	assert_int_equal(F.nreq, 0);
	close(fd);
}

static void
test_header_too_large(void **state)
{
	struct resp r;
	char *big = malloc(20000);
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET / HTTP/1.1\r\nX-Big: ");
	memset(big, 'a', 20000);
	cli_send(fd, big, 20000);
	cli_sends(fd, "\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 431);
	free(r.body);
	free(big);
	close(fd);
	assert_int_equal(F.nreq, 0);
}

/*
 * The header cap's edge (16 KiB by default, counted as the server keeps the
 * block: the URL, names and values, 3 bytes of terminators to spare): a
 * value that just fits is served, one byte more is 431, on fresh
 * connections and after a small request has kept the connection's buffer.
 */
static void
test_header_cap_edge(void **state)
{
	size_t max = 16 * 1024, fit = max - 9; /* "/" NUL "X-B" NUL value + 3 */
	char *v = malloc(max + 1), *req = malloc(max + 64);
	struct resp r;

	start_server(NULL);
	for (int warm = 0; warm < 2; warm++) {
		for (size_t extra = 0; extra < 2; extra++) {
			int fd = cli_connect(F.port);

			if (warm) {
				cli_sends(fd, "GET /small HTTP/1.1\r\nX-A: b\r\n\r\n");
				assert_int_equal(read_response(fd, &r), 0);
				assert_int_equal(r.status, 200);
				free(r.body);
			}
			memset(v, 'v', fit + extra);
			v[fit + extra] = '\0';
			snprintf(req, max + 64, "GET / HTTP/1.1\r\nX-B: %s\r\n\r\n", v);
			cli_sends(fd, req);
			assert_int_equal(read_response(fd, &r), 0);
			if (r.status != (extra ? 431 : 200))
				fail_msg("value of %zu bytes (warm %d): status %d", fit + extra,
				         warm, r.status);
			free(r.body);
			close(fd);
		}
	}
	free(v);
	free(req);
}

static void
test_header_timeout(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;
	int64_t t0;

	http_server_conf_defaults(&c);
	c.header_timeout_ms = 1000;
	start_server(&c);
	fd = cli_connect(F.port);
	t0 = now_ms();
	cli_sends(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n");
	usleep(300 * 1000);
	cli_sends(fd, "X-A: 1\r\n"); /* trickling does not extend the deadline */
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 408);
	assert_true(now_ms() - t0 >= 900);
	assert_true(now_ms() - t0 < slow(2500));
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	assert_int_equal(F.nreq, 0);
}

/*
 * The keep-alive idle deadline moves with each response: a connection used
 * again before its first idle deadline outlives it, and is closed
 * idle_timeout_ms after its last response.
 */
static void
test_idle_timeout_moves(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;
	int64_t t1;

	http_server_conf_defaults(&c);
	c.idle_timeout_ms = 1000;
	start_server(&c);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	usleep(600 * 1000);
	cli_sends(fd, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	t1 = now_ms();
	/* past the first response's deadline (at most t1 + 400 ms): still open */
	assert_false(closed_within(fd, 700));
	assert_true(closed_within(fd, slow(2000)));
	assert_true(now_ms() - t1 >= 900);
	close(fd);
	assert_int_equal(F.nreq, 2);
}

/*
 * A request begun on an idle kept-alive connection has the header deadline,
 * not what is left of the (longer) idle one.
 */
static void
test_header_timeout_after_idle(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;
	int64_t t0;

	http_server_conf_defaults(&c);
	c.header_timeout_ms = 1000;
	c.idle_timeout_ms = 30000;
	start_server(&c);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	t0 = now_ms();
	cli_sends(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 408);
	assert_true(now_ms() - t0 >= 900);
	assert_true(now_ms() - t0 < slow(2500));
	free(r.body);
	close(fd);
	assert_int_equal(F.nreq, 1);
}

static void
test_malformed(void **state)
{
	struct resp r;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /x HTTP/1.1\r\nAuthorization: Basic c2VjcmV0\r\nBad Header\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strcasestr(r.head, "Connection: close"));
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	fd = cli_connect(F.port);
	cli_sends(fd, "\x01\x02 garbage\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 400);
	free(r.body);
	close(fd);
	/* the daemon goes on */
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	close(fd);
	pthread_mutex_lock(&F.mu);
	assert_non_null(strstr(F.log, "status=400"));
	assert_null(strstr(F.log, "c2VjcmV0"));
	pthread_mutex_unlock(&F.mu);
}

static void
test_abort(void **state)
{
	int fd;
	int64_t t0, dt;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	want_held = 1;
	assert_true(wait_for(held_reached, slow(2000)));
	t0 = now_ms();
	close(fd);
	want_aborts = 1;
	assert_true(wait_for(aborts_reached, slow(2000)));
	dt = now_ms() - t0;
	print_message("on_abort after %lld ms\n", (long long)dt);
	assert_true(dt < slow(100));
}

/*
 * Responses put together in pieces, as the gateway relays them: a head whose
 * body comes later while another connection answers in between; a body in
 * two writes; a body larger than one send's buffer; an empty body; a HEAD;
 * heads refused for a CR or LF in a header (or a NUL within the lengths
 * given), which leave nothing behind.
 * Each client gets exactly its own bytes, in order.
 */
#define BIG_LEN 100000
static unsigned char big[BIG_LEN];

static void
pieces_start_a(void *arg)
{
	assert_int_equal(http_response_start(F.held[0], 200, NULL, 10, NULL), 0);
}

static void
pieces_answer_b(void *arg)
{
	/* With their lengths (http_response_start_n): exactly those bytes go out. */
	const struct http_header h[] = {{"X-Conn", "b", 6, 1}, {"X-Lengths-Count", "abcdef", 9, 3}};

	assert_int_equal(http_response_start_n(F.held[1], 201, NULL, 5, h, 2), 0);
	assert_int_equal(http_response_write(F.held[1], "hello", 5), 0);
	assert_int_equal(http_response_write(F.held[1], "!", 1), -1); /* past the length */
	assert_int_equal(http_response_end(F.held[1]), 0);
}

static void
pieces_finish_a(void *arg)
{
	assert_int_equal(http_response_write(F.held[0], "01234", 5), 0);
	assert_int_equal(http_response_write(F.held[0], "56789", 5), 0);
	assert_int_equal(http_response_end(F.held[0]), 0);
}

/* Headers that would split the head are refused, and nothing is queued. */
static void
pieces_refuse_crlf(void *arg)
{
	const char *in_value[] = {"X-A", "ok", "X-B", "a long enough value\r\nInjected: 1", NULL};
	const char *in_tail[] = {"X-C", "v\n", NULL};
	const char *in_name[] = {"X\rD", "v", NULL};
	const char *odd[] = {"X-E", NULL};

	assert_int_equal(http_response_start(F.held[1], 200, NULL, 1, in_value), -1);
	assert_int_equal(http_response_start(F.held[1], 200, NULL, 1, in_tail), -1);
	assert_int_equal(http_response_start(F.held[1], 200, NULL, 1, in_name), -1);
	assert_int_equal(http_response_start(F.held[1], 200, NULL, 1, odd), -1);
	assert_int_equal(http_response_start(F.held[1], 200, "Fine\r\nX: y", 1, NULL), -1);
	/* The same with the lengths given, and a NUL within them (wherever it is). */
	const struct http_header n_value[] = {{"X-A", "ok", 3, 2},
	                                      {"X-B", "a long enough value\r\nInjected: 1", 3, 32}};
	const struct http_header n_last[] = {{"X-C", "0123456789\n", 3, 11}};
	const struct http_header n_name[] = {{"X-Long-Name\r", "v", 12, 1}};
	const struct http_header n_nul[] = {{"X-N", "0123456789\0abc", 3, 14}};
	const struct http_header n_nul_short[] = {{"X-N", "a\0b", 3, 3}};

	assert_int_equal(http_response_start_n(F.held[1], 200, NULL, 1, n_value, 2), -1);
	assert_int_equal(http_response_start_n(F.held[1], 200, NULL, 1, n_last, 1), -1);
	assert_int_equal(http_response_start_n(F.held[1], 200, NULL, 1, n_name, 1), -1);
	assert_int_equal(http_response_start_n(F.held[1], 200, NULL, 1, n_nul, 1), -1);
	assert_int_equal(http_response_start_n(F.held[1], 200, NULL, 1, n_nul_short, 1), -1);
}

static void
pieces_big(void *arg)
{
	assert_int_equal(http_response_start(F.held[2], 200, NULL, BIG_LEN, NULL), 0);
	assert_true(http_response_write(F.held[2], big, BIG_LEN) >= 0);
	assert_int_equal(http_response_end(F.held[2]), 0);
}

static void
pieces_start_empty(void *arg)
{
	assert_int_equal(http_response_start(F.held[3], 204, NULL, 0, NULL), 0);
	assert_int_equal(http_response_end(F.held[3]), 0);
}

static void
pieces_head(void *arg)
{
	assert_int_equal(http_response_start(F.held[4], 200, NULL, 7, NULL), 0);
	assert_int_equal(http_response_write(F.held[4], "ignored", 7), 0);
	assert_int_equal(http_response_end(F.held[4]), 0);
}

static void
test_response_pieces(void **state)
{
	struct resp r;
	char line[256];
	int a, b;

	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = (unsigned char)(i % 253);
	start_server(NULL);
	a = cli_connect(F.port);
	b = cli_connect(F.port);
	cli_sends(a, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	want_held = 1;
	assert_true(wait_for(held_reached, slow(2000)));
	cli_sends(b, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	want_held = 2;
	assert_true(wait_for(held_reached, slow(2000)));

	/* B's refused heads leave no trace: its answer below is the first bytes it gets. */
	run_on_loop(pieces_refuse_crlf, NULL);
	/* A's head waits for its body; B answers meanwhile. */
	run_on_loop(pieces_start_a, NULL);
	run_on_loop(pieces_answer_b, NULL);
	assert_int_equal(read_response(b, &r), 0);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.head, "X-Conn: b\r\nX-Lengths: abc\r\n"));
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.body, "hello", 5);
	free(r.body);
	/* A's head is on the wire before its body. */
	assert_int_equal(read_line(a, line, sizeof(line)), 0);
	assert_string_equal(line, "HTTP/1.1 200 OK\r\n");
	run_on_loop(pieces_finish_a, NULL);
	for (;;) {
		assert_int_equal(read_line(a, line, sizeof(line)), 0);
		if (strcmp(line, "\r\n") == 0)
			break;
	}
	assert_int_equal(read_n(a, line, 10), 0);
	assert_memory_equal(line, "0123456789", 10);

	/* The same connection again: a body far larger than one buffer. */
	cli_sends(a, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	want_held = 3;
	assert_true(wait_for(held_reached, slow(2000)));
	run_on_loop(pieces_big, NULL);
	assert_int_equal(read_response(a, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, BIG_LEN);
	assert_memory_equal(r.body, big, BIG_LEN);
	free(r.body);

	/* An empty body, then a HEAD: heads only, and the connection goes on. */
	cli_sends(a, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	want_held = 4;
	assert_true(wait_for(held_reached, slow(2000)));
	usleep(slow(50) * 1000); /* the HEAD waits behind the first */
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.nheld, 4);
	pthread_mutex_unlock(&F.mu);
	run_on_loop(pieces_start_empty, NULL);
	want_held = 5;
	assert_true(wait_for(held_reached, slow(2000)));
	run_on_loop(pieces_head, NULL);
	assert_int_equal(read_response(a, &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.len, 0);
	free(r.body);
	assert_int_equal(read_line(a, line, sizeof(line)), 0);
	assert_string_equal(line, "HTTP/1.1 200 OK\r\n");
	for (;;) {
		assert_int_equal(read_line(a, line, sizeof(line)), 0);
		if (strcmp(line, "\r\n") == 0)
			break;
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			assert_string_equal(line, "Content-Length: 7\r\n");
	}
	/* Nothing follows the HEAD's head: the next bytes answer the next request. */
	cli_sends(a, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(a, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr((char *)r.body, "GET /after 0"));
	free(r.body);
	close(a);
	close(b);
}

static void
test_stream_backpressure(void **state)
{
	struct resp r;
	int fd;
	size_t produced;
	int pauses;

	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	usleep(slow(300) * 1000); /* not reading */
	pthread_mutex_lock(&F.mu);
	produced = F.produced;
	pauses = F.pauses;
	pthread_mutex_unlock(&F.mu);
	print_message("stream: %zu bytes produced while the client did not read\n", produced);
	assert_true(pauses >= 1);
	assert_true(produced < STREAM_TOTAL);
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, STREAM_TOTAL);
	for (size_t i = 0; i < r.len; i++)
		if (r.body[i] != (unsigned char)(i % 251))
			fail_msg("byte %zu differs", i);
	free(r.body);
	pthread_mutex_lock(&F.mu);
	assert_true(F.resumes >= 1);
	assert_true(F.stream_done);
	pthread_mutex_unlock(&F.mu);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
}

/*
 * The epoll registration of the server's end of the connection whose client
 * end is cfd: its events (from /proc/self/fdinfo of the loop's epoll
 * descriptor), or -1 when it is not registered.
 */
static long long
server_epoll_events(int cfd)
{
	struct sockaddr_in me, peer;
	socklen_t len = sizeof(me);
	char path[64], link[64], line[256];
	int sfd = -1;
	long long ev = -1;

	assert_int_equal(getsockname(cfd, (struct sockaddr *)&me, &len), 0);
	for (int fd = 0; fd < 1024 && sfd < 0; fd++) {
		len = sizeof(peer);
		if (fd != cfd && getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
		    peer.sin_family == AF_INET && peer.sin_port == me.sin_port)
			sfd = fd;
	}
	assert_true(sfd >= 0);
	for (int fd = 0; fd < 1024 && ev < 0; fd++) {
		FILE *f;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:[eventpoll]") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			int tfd;
			unsigned long long e;

			if (sscanf(line, "tfd: %d events: %llx", &tfd, &e) == 2 && tfd == sfd)
				ev = (long long)e;
		}
		fclose(f);
	}
	return ev;
}

#define EP_IN  0x1LL
#define EP_OUT 0x4LL
#define EP_ET  0x80000000LL
static int epoll_cfd;
static bool
conn_edge_read_only(void)
{
	long long ev = server_epoll_events(epoll_cfd);
	return ev >= 0 && (ev & EP_IN) && (ev & EP_ET) && !(ev & EP_OUT);
}

/*
 * The server's read event is edge-triggered while nothing waits to be
 * written, and level-triggered while the bufferevent writes (epoll keeps
 * one EPOLLET per descriptor, and libevent's writer needs level-triggered
 * write events): between requests the connection is registered for input,
 * edge-triggered; while a 4 MiB answer waits on a client that does not
 * read, for output without EPOLLET; after it, edge-triggered again.
 */
static void
test_epoll_modes(void **state)
{
	struct resp r;
	long long ev;

	start_server(NULL);
	epoll_cfd = cli_connect(F.port);
	cli_sends(epoll_cfd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(epoll_cfd, &r), 0);
	free(r.body);
	assert_true(wait_for(conn_edge_read_only, slow(2000)));
	cli_sends(epoll_cfd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	usleep(slow(300) * 1000); /* not reading: the answer waits in the server */
	ev = server_epoll_events(epoll_cfd);
	print_message("registered while the answer waits: 0x%llx\n", ev);
	assert_true(ev & EP_OUT);
	assert_false(ev & EP_ET);
	assert_int_equal(read_response(epoll_cfd, &r), 0);
	assert_int_equal(r.len, STREAM_TOTAL);
	free(r.body);
	cli_sends(epoll_cfd, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(epoll_cfd, &r), 0);
	assert_string_equal((char *)r.body, "GET /x 0 client=127.0.0.1");
	free(r.body);
	assert_true(wait_for(conn_edge_read_only, slow(2000)));
	close(epoll_cfd);
}

static void
test_xff(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd;

	http_server_conf_defaults(&c);
	c.trusted_proxies = "10.0.0.0/8, 127.0.0.1/32";
	start_server(&c);
	fd = cli_connect(F.port);
	cli_sends(
	    fd, "GET /x HTTP/1.1\r\nX-Forwarded-For: 203.0.113.5, 198.51.100.9, 10.1.1.1\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /x 0 client=198.51.100.9");
	free(r.body);
	cli_sends(fd, "GET /x HTTP/1.1\r\nX-Forwarded-For: junk\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /x 0 client=127.0.0.1");
	free(r.body);
	close(fd);
	teardown(state);

	c.trusted_proxies = "10.0.0.0/8";
	start_server(&c);
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /x HTTP/1.1\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /x 0 client=127.0.0.1");
	free(r.body);
	close(fd);

	const char *err = NULL;
	c.trusted_proxies = "10.0.0.0/33";
	assert_null(http_server_new(F.base, &c, &handler, NULL, &err));
	assert_non_null(err);
}

static unsigned conn_count_result;
static void
get_conn_count(void *arg)
{
	conn_count_result = http_server_conn_count(F.srv);
}

static void
test_per_addr_cap(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd[3];

	http_server_conf_defaults(&c);
	c.max_conns_per_addr = 2;
	start_server(&c);
	for (int i = 0; i < 2; i++) {
		fd[i] = cli_connect(F.port);
		cli_sends(fd[i], "GET /x HTTP/1.1\r\n\r\n");
		assert_int_equal(read_response(fd[i], &r), 0);
		free(r.body);
	}
	fd[2] = cli_connect(F.port);
	assert_true(closed_within(fd[2], slow(2000)));
	close(fd[2]);
	close(fd[0]);
	for (int i = 0; i < 200; i++) {
		run_on_loop(get_conn_count, NULL);
		if (conn_count_result == 1)
			break;
		usleep(10000);
	}
	assert_int_equal(conn_count_result, 1);
	fd[2] = cli_connect(F.port);
	cli_sends(fd[2], "GET /x HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(fd[2], &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	close(fd[1]);
	close(fd[2]);
}

/*
 * Behind a trusted proxy the cap applies to the X-Forwarded-For client: a
 * second connection for the same client gets 503, another client is served.
 */
static void
test_per_addr_cap_proxied(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fd[3];

	http_server_conf_defaults(&c);
	c.max_conns_per_addr = 1;
	c.trusted_proxies = "127.0.0.0/8";
	start_server(&c);
	for (int i = 0; i < 3; i++) {
		fd[i] = cli_connect(F.port);
		cli_sends(fd[i], i == 2
		                     ? "GET /x HTTP/1.1\r\nX-Forwarded-For: 198.51.100.2\r\n\r\n"
		                     : "GET /x HTTP/1.1\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n");
		assert_int_equal(read_response(fd[i], &r), 0);
		assert_int_equal(r.status, i == 1 ? 503 : 200);
		free(r.body);
	}
	assert_true(closed_within(fd[1], slow(3000)));
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* Count occurrences of needle in the captured log. */
static int
log_count(const char *needle)
{
	int n = 0;

	pthread_mutex_lock(&F.mu);
	for (const char *p = F.log; (p = strstr(p, needle)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&F.mu);
	return n;
}

/*
 * Descriptor exhaustion: the accept fails with EMFILE, the listener pauses
 * (a few log lines, not a spin), and once descriptors are back the waiting
 * client is served.
 */
static void
test_emfile(void **state)
{
	struct rlimit old, lim;
	struct dirent *de;
	DIR *d;
	int maxfd = 0, dups[4096], ndup = 0, fd;
	struct resp r;

	if (RUNNING_ON_VALGRIND) {
		skip(); /* valgrind keeps its own descriptors above the limit */
		return;
	}
	start_server(NULL);
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if ((int)strtol(de->d_name, NULL, 10) > maxfd)
			maxfd = (int)strtol(de->d_name, NULL, 10);
	closedir(d);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)maxfd + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	while (ndup < 4096 && (fd = dup(0)) != -1)
		dups[ndup++] = fd;
	assert_true(ndup > 0);
	close(dups[--ndup]); /* exactly one free descriptor: the client's */
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /after-emfile HTTP/1.1\r\nConnection: close\r\n\r\n");
	usleep(600 * 1000);
	int pauses = log_count("pausing accepts");
	print_message("EMFILE: %d accept pauses logged in 600 ms\n", pauses);
	assert_true(pauses >= 1 && pauses <= 10);
	while (ndup > 0)
		close(dups[--ndup]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body, "GET /after-emfile 0 client=127.0.0.1");
	free(r.body);
	close(fd);
}

/* Hostile bytes: every connection gets an answer or a close, none a crash. */
static void
test_garbage(void **state)
{
	static const char *const inputs[] = {
	    "\r\n\r\n\r\n",
	    "GET / HTTP/9.9\r\n\r\n",
	    "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	    "CONNECT a:1 HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nrawbytes",
	    "GET /\x00 HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1\r\n:\r\n\r\n",
	    "GET / HTTP/1.1\r\nX:\r\nY\r\n\r\n",
	};
	unsigned seed = 12345;
	struct resp r;
	char buf[512];
	int fd;

	start_server(NULL);
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		fd = cli_connect(F.port);
		cli_send(fd, inputs[i], strlen(inputs[i]) + (i == 8 ? 12 : 0));
		shutdown(fd, SHUT_WR);
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			;
		close(fd);
	}
	for (int i = 0; i < 100; i++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(buf));
		for (size_t k = 0; k < n; k++)
			buf[k] = (char)rand_r(&seed);
		if (i % 2)
			memcpy(buf, "GET / HTTP/1.1\r\n", n < 16 ? n : 16);
		fd = cli_connect(F.port);
		cli_send(fd, buf, n);
		shutdown(fd, SHUT_WR);
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			;
		close(fd);
	}
	fd = cli_connect(F.port);
	cli_sends(fd, "GET /alive HTTP/1.1\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	close(fd);
}

/* ---- TLS ---- */

static void
make_cert(const char *cn)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
	         "%s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	         "-keyout %s/key.pem -out %s/cert.pem -days 1 -subj /CN=%s 2>/dev/null",
	         OPENSSL_BIN, F.dir, F.dir, cn);
	assert_int_equal(system(cmd), 0);
}

struct tls_cli {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char cn[64];
};

static void
tls_connect(struct tls_cli *t)
{
	X509 *cert;

	t->fd = cli_connect(F.tls_port);
	t->ctx = SSL_CTX_new(TLS_client_method());
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, t->fd);
	assert_int_equal(SSL_connect(t->ssl), 1);
	cert = SSL_get1_peer_certificate(t->ssl);
	assert_non_null(cert);
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, t->cn,
	                          sizeof(t->cn));
	X509_free(cert);
}

/* Send a request and read everything until the server closes. */
static void
tls_request(struct tls_cli *t, const char *req, char *out, size_t cap)
{
	size_t n = 0;
	int r;

	if (req)
		assert_int_equal(SSL_write(t->ssl, req, (int)strlen(req)), (int)strlen(req));
	while (n + 1 < cap && (r = SSL_read(t->ssl, out + n, (int)(cap - 1 - n))) > 0)
		n += (size_t)r;
	out[n] = '\0';
}

static void
tls_close(struct tls_cli *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	close(t->fd);
}

static void
do_reload(void *arg)
{
	const char *err = NULL;

	*(int *)arg = tls_reload(F.tls, &err);
}

static void
answer_held(void *arg)
{
	pthread_mutex_lock(&F.mu);
	struct http_request *req = F.held[0];
	F.held[0] = NULL;
	pthread_mutex_unlock(&F.mu);
	assert_non_null(req);
	assert_true(http_request_is_tls(req));
	*(int *)arg = http_response_simple(req, 200, "text/plain", "late", 4);
}

static void
test_tls_reload(void **state)
{
	char cert[128], key[128], buf[4096];
	const char *err = NULL;
	struct tls_cli a, b;
	int rc = -1;

	make_cert("one");
	snprintf(cert, sizeof(cert), "%s/cert.pem", F.dir);
	snprintf(key, sizeof(key), "%s/key.pem", F.dir);
	F.tls = tls_ctx_new(cert, key, &err);
	assert_non_null(F.tls);
	assert_null(tls_ctx_new("/nonexistent", key, &err));
	start_server(NULL);

	tls_connect(&a);
	assert_string_equal(a.cn, "one");
	tls_request(&a, "GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buf,
	            sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	assert_non_null(strstr(buf, "GET /t 0 client=127.0.0.1"));
	tls_close(&a);

	/* an old connection holds a request across the reload */
	tls_connect(&a);
	assert_int_equal(SSL_write(a.ssl, "GET /hold HTTP/1.1\r\nConnection: close\r\n\r\n", 41),
	                 41);
	want_held = 1;
	assert_true(wait_for(held_reached, slow(2000)));

	make_cert("two");
	run_on_loop(do_reload, &rc);
	assert_int_equal(rc, 0);
	tls_connect(&b);
	assert_string_equal(b.cn, "two");
	tls_request(&b, "GET /t2 HTTP/1.1\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "GET /t2 0"));
	tls_close(&b);

	assert_int_equal(F.aborts, 0);
	run_on_loop(answer_held, &rc);
	assert_int_equal(rc, 0);
	tls_request(&a, NULL, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	assert_non_null(strstr(buf, "late"));
	tls_close(&a);
}

/* ---- memory per held connection ---- */

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
test_memory_held(void **state)
{
	static int fds[MEM_CONNS];
	const char *req =
	    "POST /hold HTTP/1.1\r\nHost: mail.example.com\r\n"
	    "User-Agent: Apple-iPhone/1801.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"
	    "MS-ASProtocolVersion: 14.1\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
	    "Content-Length: 16\r\n\r\n0123456789abcdef";
	long before, after;

	start_server(NULL);
	/* warm up allocator and loop with one round trip */
	fds[0] = cli_connect(F.port);
	cli_sends(fds[0], "GET /warm HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_true(closed_within(fds[0], slow(3000)));
	close(fds[0]);
	before = rss_kib();
	for (int i = 0; i < MEM_CONNS; i++) {
		fds[i] = cli_connect(F.port);
		cli_sends(fds[i], req);
	}
	want_held = MEM_CONNS;
	assert_true(wait_for(held_reached, slow(20000)));
	after = rss_kib();
	print_message("memory: %d held connections, RSS %ld -> %ld KiB, %.2f KiB per held "
	              "connection (%s)\n",
	              MEM_CONNS, before, after, (double)(after - before) / MEM_CONNS,
	              RUNNING_ON_VALGRIND ? "valgrind" :
#if defined(__SANITIZE_ADDRESS__)
	                                  "ASan build, inflated"
#else
	                                  "plain build"
#endif
	);
	for (int i = 0; i < MEM_CONNS; i++)
		close(fds[i]);
	want_aborts = MEM_CONNS;
	assert_true(wait_for(aborts_reached, slow(10000)));
}

/* ---- trailers, on_headers, body memory ---- */

/* The request of the trailer finding: a header block over 1 KiB, a chunked body, a trailer. */
static char *
trailer_request(size_t pad, const char *trailers)
{
	size_t cap = pad + strlen(trailers) + 256;
	char *s = malloc(cap), *a = malloc(pad + 1);

	memset(a, 'A', pad);
	a[pad] = '\0';
	snprintf(s, cap,
	         "POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n"
	         "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n%s\r\n",
	         a, trailers);
	free(a);
	return s;
}

/* Send req then a pipelined GET; both answered 200, the trailer never seen as a header. */
static void
trailer_round(int fd, const char *req)
{
	struct resp r;

	cli_sends(fd, req);
	cli_sends(fd, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body, "POST /Microsoft-Server-ActiveSync 3 client=127.0.0.1");
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body, "GET /next 0 client=127.0.0.1");
	free(r.body);
}

/*
 * Trailers after a chunked body are counted and dropped: after a header block
 * over the kept buffer size (the use-after-free of the finding), many of
 * them, after a small block, split byte by byte; and one over
 * max_header_size gets 431.
 */
static void
test_trailers(void **state)
{
	struct resp r;
	char many[4096] = "", *req;
	int fd;

	start_server(NULL);
	fd = cli_connect(F.port);
	req = trailer_request(1100, "X-Trailer: 1\r\n");
	trailer_round(fd, req);
	free(req);
	for (int i = 0; i < 100; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-T%d: %d\r\n", i, i);
	req = trailer_request(1100, many);
	trailer_round(fd, req);
	free(req);
	req = trailer_request(5, "X-Trailer: 1\r\nX-Other: 2\r\n");
	trailer_round(fd, req);
	/* the same, a byte per send */
	for (size_t i = 0; req[i]; i++) {
		cli_send(fd, req + i, 1);
		usleep(100);
	}
	cli_sends(fd, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "GET /next 0 client=127.0.0.1");
	free(r.body);
	free(req);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.nreq, 8);
	pthread_mutex_unlock(&F.mu);
	/* a trailer over max_header_size (16 KiB) */
	{
		char *huge = malloc(20000);

		memcpy(huge, "X-Huge: ", 8);
		memset(huge + 8, 'b', 20000 - 11);
		memcpy(huge + 20000 - 3, "\r\n", 3);
		req = trailer_request(1100, huge);
		cli_sends(fd, req);
		assert_int_equal(read_response(fd, &r), 0);
		assert_int_equal(r.status, 431);
		free(r.body);
		assert_true(closed_within(fd, slow(3000)));
		free(huge);
		free(req);
	}
	close(fd);
}

static int want_headers;
static bool
headers_reached(void)
{
	pthread_mutex_lock(&F.mu);
	bool ok = F.nheaders >= want_headers;
	pthread_mutex_unlock(&F.mu);
	return ok;
}

static void
resume_waiting(void *arg)
{
	assert_non_null(F.waiting);
	http_request_resume_body(F.waiting);
	F.waiting = NULL;
}

static void
deny_waiting(void *arg)
{
	assert_non_null(F.waiting);
	assert_int_equal(http_response_simple(F.waiting, 401, "text/plain", "no", 2), 0);
	F.waiting = NULL;
}

/* True if nothing arrives on fd within ms. */
static bool
silent_for(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 0;
}

/*
 * on_headers: WAIT leaves the body unread and on_request waits for the
 * resume; 100 Continue goes out only when the body is to be read; an answer
 * from on_headers or while waiting closes the connection and on_request is
 * never called; a lowered cap refuses a larger body before it is read.
 */
static void
test_on_headers(void **state)
{
	struct resp r;
	char line[256];
	int fd;

	F.handler = &handler_hdrs;
	start_server(NULL);
	/* WAIT, then resume: the body is read then */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
	want_headers = 1;
	assert_true(wait_for(headers_reached, slow(2000)));
	assert_true(silent_for(fd, slow(200)));
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.nreq, 0);
	pthread_mutex_unlock(&F.mu);
	run_on_loop(resume_waiting, NULL);
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body, "POST /wait 5 client=127.0.0.1");
	free(r.body);
	/* keep-alive goes on: READ for a plain request */
	cli_sends(fd, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /read 2 client=127.0.0.1");
	free(r.body);
	/* Expect: 100-continue while waiting: nothing until the resume */
	cli_sends(fd, "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	              "Expect: 100-continue\r\n\r\n");
	want_headers = 3;
	assert_true(wait_for(headers_reached, slow(2000)));
	assert_true(silent_for(fd, slow(200)));
	run_on_loop(resume_waiting, NULL);
	assert_int_equal(read_line(fd, line, sizeof(line)), 0);
	assert_string_equal(line, "HTTP/1.1 100 Continue\r\n");
	assert_int_equal(read_line(fd, line, sizeof(line)), 0);
	cli_sends(fd, "xyz");
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /wait 3 client=127.0.0.1");
	free(r.body);
	/* answered while waiting: no 100 Continue, Connection: close, no on_request */
	cli_sends(fd, "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	              "Expect: 100-continue\r\n\r\n");
	want_headers = 4;
	assert_true(wait_for(headers_reached, slow(2000)));
	run_on_loop(deny_waiting, NULL);
	assert_int_equal(read_line(fd, line, sizeof(line)), 0);
	assert_string_equal(line, "HTTP/1.1 401 Unauthorized\r\n");
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.nreq, 3);
	assert_int_equal(F.aborts, 0);
	pthread_mutex_unlock(&F.mu);
	/* answered from inside on_headers, body and a pipelined request sent along */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	              "Expect: 100-continue\r\n\r\nabcGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(read_line(fd, line, sizeof(line)), 0);
	assert_string_equal(line, "HTTP/1.1 401 Unauthorized\r\n");
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	/* a body over the request's cap: 413 before a byte is read, on_abort once */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /cap HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 413);
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	/* chunked over the cap */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /cap HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n");
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 413);
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.nreq, 3);
	assert_int_equal(F.aborts, 2);
	pthread_mutex_unlock(&F.mu);
}

/* The client goes away while its body waits, or while it is read: on_abort once each. */
static void
test_on_headers_abort(void **state)
{
	int fd;

	F.handler = &handler_hdrs;
	start_server(NULL);
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe");
	want_headers = 1;
	assert_true(wait_for(headers_reached, slow(2000)));
	close(fd);
	want_aborts = 1;
	assert_true(wait_for(aborts_reached, slow(2000)));
	/* while the body is read */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe");
	want_headers = 2;
	assert_true(wait_for(headers_reached, slow(2000)));
	usleep(50 * 1000);
	close(fd);
	want_aborts = 2;
	assert_true(wait_for(aborts_reached, slow(2000)));
	usleep(100 * 1000);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.aborts, 2);
	assert_int_equal(F.nreq, 0);
	assert_null(F.waiting);
	pthread_mutex_unlock(&F.mu);
}

static size_t body_bytes_seen;
static void
get_body_bytes(void *arg)
{
	body_bytes_seen = http_server_body_bytes(F.srv);
}

static size_t
body_bytes(void)
{
	run_on_loop(get_body_bytes, NULL);
	return body_bytes_seen;
}

/*
 * Bodies grow as their bytes come: 16 connections announcing 32 MiB and
 * sending 6000 bytes hold a few KiB each, not 32 MiB. A body that would take
 * the server's total over max_body_total gets 503 with Retry-After; memory
 * comes back when requests end. max_body must fit the body's 32-bit sizes.
 */
#define ANNOUNCERS 16
static void
test_body_memory(void **state)
{
	struct http_server_conf c;
	struct resp r;
	int fds[ANNOUNCERS], fd;
	char *body = malloc(40000);
	int64_t end;

	memset(body, 'b', 40000);
	http_server_conf_defaults(&c);
	c.max_body = 64 * 1024 * 1024;
	c.max_body_total = 160 * 1024;
	start_server(&c);
	for (int i = 0; i < ANNOUNCERS; i++) {
		fds[i] = cli_connect(F.port);
		cli_sends(fds[i],
		          "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n");
		cli_send(fds[i], body, 6000);
	}
	end = now_ms() + slow(3000);
	while (body_bytes() < ANNOUNCERS * 6000 && now_ms() < end)
		usleep(1000);
	print_message("%d bodies announced at 32 MiB, 6000 bytes sent: %zu bytes held\n",
	              ANNOUNCERS, body_bytes());
	assert_true(body_bytes() >= ANNOUNCERS * 6000);
	assert_true(body_bytes() <= ANNOUNCERS * 8192);
	/* one more grows over the 160 KiB budget: 503, closed */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n");
	cli_send(fd, body, 40000);
	assert_int_equal(read_response(fd, &r), 0);
	assert_int_equal(r.status, 503);
	assert_non_null(strcasestr(r.head, "Retry-After: 5"));
	free(r.body);
	assert_true(closed_within(fd, slow(3000)));
	close(fd);
	for (int i = 0; i < ANNOUNCERS; i++)
		close(fds[i]);
	end = now_ms() + slow(3000);
	while (body_bytes() > 0 && now_ms() < end)
		usleep(1000);
	assert_int_equal(body_bytes(), 0);
	/* a whole large body still goes through, and its memory comes back */
	fd = cli_connect(F.port);
	cli_sends(fd, "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n");
	cli_send(fd, body, 40000);
	assert_int_equal(read_response(fd, &r), 0);
	assert_string_equal((char *)r.body, "POST /ok 40000 client=127.0.0.1");
	free(r.body);
	close(fd);
	assert_int_equal(body_bytes(), 0);
	free(body);

	/* A body's sizes are 32-bit: a max_body of 4 GiB or more is refused, not cut short. */
	const char *err = NULL;
	c.max_body = (size_t)UINT32_MAX + 1;
	assert_null(http_server_new(F.base, &c, &handler, NULL, &err));
	assert_non_null(err);
	c.max_body = UINT32_MAX;
	struct http_server *srv = http_server_new(F.base, &c, &handler, NULL, &err);
	assert_non_null(srv);
	http_server_free(&srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_head, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_cap_edge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_line_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_then_fin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chunked_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout_moves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_timeout_after_idle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_response_pieces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_epoll_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_per_addr_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_per_addr_cap_proxied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emfile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_held, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trailers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_on_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_on_headers_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_memory, setup, teardown),
	};
	int rc;

	evthread_use_pthreads();
	snprintf(F.dir, sizeof(F.dir), "/tmp/abq-net-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
		if (system(cmd) != 0)
			rc = rc ? rc : 1;
	}
	return rc;
}
