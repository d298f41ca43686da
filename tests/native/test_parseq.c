/*
 * test_parseq.c: messages parsed on a thread of their own
 * (src/native/parseq.c): a batch comes back parsed as msgconv_parse parses
 * it (a message from its outline, the INTERNALDATE when it has no Date);
 * the caller's loop keeps running while a heavy batch is parsed; a
 * cancelled job (waiting or being parsed) never calls back and its batch is
 * freed; stopping with jobs in flight calls nothing back; the caps refuse a
 * batch and leave it to the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <event2/event.h>
#include <valgrind/valgrind.h>

#include "lib/util.h"
#include "native/parseq.h"

/* What the callbacks saw. */
struct seen {
	int calls;
	struct parseq_msg *v;
	size_t n;
	int ticks_before; /* the timer's ticks when the batch came back */
};

static int ticks;
static double last_tick_ms, longest_gap_ms;

/* CLOCK_MONOTONIC in ms. */
static double
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* A parsed batch: kept for the test to read, the loop stopped. */
static void
on_done(void *arg, struct parseq_msg *v, size_t n)
{
	struct seen *s = arg;

	s->calls++;
	s->v = v;
	s->n = n;
	s->ticks_before = ticks;
}

/* A message from its text: raw malloc'd. */
static void
set_raw(struct parseq_msg *p, const char *text)
{
	p->raw = xstrdup(text);
	p->raw_len = strlen(text);
}

/* An HTML-only message of about size bytes (malloc'd). */
static char *
big_html(size_t size)
{
	const char *row = "<tr><td><p>lorem ipsum dolor sit amet <b>bold</b> <a "
	                  "href=\"https://example.com/\">link</a></p></td></tr>\n";
	size_t rl = strlen(row), n = size / rl + 1;
	const char *head = "From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
	                   "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><table>";
	char *s = xmalloc(strlen(head) + n * rl + 64);
	char *p = s + strlen(head);

	memcpy(s, head, strlen(head));
	for (size_t i = 0; i < n; i++, p += rl)
		memcpy(p, row, rl);
	static const char tail[] = "</table></body></html>\r\n";
	memcpy(p, tail, sizeof(tail)); /* 64 bytes were kept for it */
	return s;
}

/* The loop's timer: counts its ticks. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	double t = now_ms();
	if (t - last_tick_ms > longest_gap_ms)
		longest_gap_ms = t - last_tick_ms;
	last_tick_ms = t;
	ticks++;
}

/* Run base until q has nothing pending (at most ~20 s). */
static void
run_until_idle(struct event_base *base, struct parseq *q)
{
	for (int i = 0; i < 20000 && parseq_pending(q) > 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(parseq_pending(q), 0);
}

/* A batch comes back parsed, each message as msgconv would read it. */
static void
test_batch_parsed(void **state)
{
	struct event_base *base = event_base_new();
	const char *err = NULL;
	struct parseq *q = parseq_start(base, &err);
	struct seen s = {0};
	struct parseq_msg *v = xcalloc(4, sizeof(*v));

	(void)state;
	assert_non_null(q);
	set_raw(&v[0], "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\n"
	               "Subject: hello\r\nDate: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\nhi\r\n");
	set_raw(&v[1], "Subject: no date\r\n\r\nbody\r\n");
	v[1].internal_date = 1700000000;
	/* a large message: its first bytes, and its outline parsed instead */
	set_raw(&v[2], "Subject: cut\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
	v[2].outline = xstrdup("Subject: from the outline\r\n\r\ntext\r\n");
	v[2].outline_len = strlen(v[2].outline);
	set_raw(&v[3], "Subject: html\r\nContent-Type: text/html\r\n\r\n<p>one</p><p>two</p>\r\n");
	assert_non_null(parseq_parse(q, v, 4, on_done, &s));
	assert_int_equal(parseq_pending(q), 1);
	run_until_idle(base, q);

	assert_int_equal(s.calls, 1);
	assert_ptr_equal(s.v, v);
	assert_int_equal(s.n, 4);
	assert_int_equal(v[0].rv, 0);
	assert_string_equal(v[0].m.subject, "hello");
	assert_string_equal(v[0].m.plain, "hi\r\n");
	assert_null(v[0].m.mime); /* no copy: type 4's MIME is raw itself */
	assert_int_equal(v[1].rv, 0);
	assert_int_equal(v[1].m.date_received, 1700000000);
	assert_int_equal(v[2].rv, 0);
	assert_string_equal(v[2].m.subject, "from the outline");
	assert_null(v[2].m.mime); /* an outline's MIME is the raw bytes' */
	assert_null(v[2].m.html_text);
	/* an HTML-only body comes back rendered as text too */
	assert_int_equal(v[3].rv, 0);
	assert_non_null(v[3].m.html_text);
	assert_non_null(strstr(v[3].m.html_text, "one"));
	parseq_msgs_free(v, 4);
	parseq_stop(&q);
	assert_null(q);
	event_base_free(base);
}

/* A heavy batch is parsed while the caller's loop keeps running. */
static void
test_loop_not_held(void **state)
{
	struct event_base *base = event_base_new();
	const char *err = NULL;
	struct parseq *q = parseq_start(base, &err);
	struct seen s = {0};
	enum { N = 12 };
	struct parseq_msg *v = xcalloc(N, sizeof(*v));
	struct timeval ms2 = {0, 2000};
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);

	(void)state;
	for (int i = 0; i < N; i++) {
		v[i].raw = big_html(400 * 1024);
		v[i].raw_len = strlen(v[i].raw);
	}
	ticks = 0;
	longest_gap_ms = 0;
	last_tick_ms = now_ms();
	double t0 = last_tick_ms;
	event_add(tick, &ms2);
	assert_non_null(parseq_parse(q, v, N, on_done, &s));
	run_until_idle(base, q);
	event_free(tick);
	print_message("%d HTML messages of 400 KB parsed and rendered on the thread in %.1f ms; "
	              "the loop's longest gap %.1f ms (timer 2 ms)\n",
	              N, now_ms() - t0, longest_gap_ms);

	assert_int_equal(s.calls, 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(v[i].rv, 0);
	/*
	 * N messages of 400 KB take several ms each: the timer ran meanwhile
	 * (valgrind runs one thread at a time, the parsing one as long as it likes)
	 */
	if (!RUNNING_ON_VALGRIND)
		assert_true(s.ticks_before >= 2);
	parseq_msgs_free(v, N);
	parseq_stop(&q);
	event_base_free(base);
}

/* A cancelled job, waiting or being parsed, never calls back; its batch is freed. */
static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	const char *err = NULL;
	struct parseq *q = parseq_start(base, &err);
	struct seen a = {0}, b = {0}, c = {0};
	struct parseq_msg *va = xcalloc(4, sizeof(*va));
	struct parseq_msg *vb = xcalloc(1, sizeof(*vb));
	struct parseq_msg *vc = xcalloc(1, sizeof(*vc));

	(void)state;
	for (int i = 0; i < 4; i++) {
		va[i].raw = big_html(256 * 1024);
		va[i].raw_len = strlen(va[i].raw);
	}
	set_raw(&vb[0], "Subject: b\r\n\r\nb\r\n");
	set_raw(&vc[0], "Subject: c\r\n\r\nc\r\n");
	struct parseq_job *ja = parseq_parse(q, va, 4, on_done, &a);
	struct parseq_job *jb = parseq_parse(q, vb, 1, on_done, &b);
	struct parseq_job *jc = parseq_parse(q, vc, 1, on_done, &c);
	assert_non_null(ja);
	assert_non_null(jb);
	assert_non_null(jc);
	assert_int_equal(parseq_pending(q), 3);
	/* a's being parsed (or about to be); b waits behind it */
	parseq_cancel(ja);
	parseq_cancel(jb);
	run_until_idle(base, q);

	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);
	assert_string_equal(vc[0].m.subject, "c");
	parseq_msgs_free(vc, 1);
	parseq_stop(&q);
	event_base_free(base);
}

/* Stopping with jobs in flight calls nothing back and frees every batch. */
static void
test_stop_in_flight(void **state)
{
	struct event_base *base = event_base_new();
	const char *err = NULL;
	struct parseq *q = parseq_start(base, &err);
	struct seen s = {0};

	(void)state;
	for (int k = 0; k < 3; k++) {
		struct parseq_msg *v = xcalloc(2, sizeof(*v));
		v[0].raw = big_html(128 * 1024);
		v[0].raw_len = strlen(v[0].raw);
		set_raw(&v[1], "Subject: x\r\n\r\nx\r\n");
		assert_non_null(parseq_parse(q, v, 2, on_done, &s));
	}
	parseq_stop(&q);
	assert_null(q);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(s.calls, 0);
	event_base_free(base);
}

/* Over a cap, a batch is refused and stays the caller's. */
static void
test_caps(void **state)
{
	struct event_base *base = event_base_new();
	const char *err = NULL;
	struct parseq *q = parseq_start(base, &err);
	struct seen s = {0};
	struct parseq_msg *v1 = xcalloc(1, sizeof(*v1));
	struct parseq_msg *v2 = xcalloc(1, sizeof(*v2));
	struct parseq_msg *v3 = xcalloc(1, sizeof(*v3));

	(void)state;
	set_raw(&v1[0], "Subject: one\r\n\r\n1\r\n");
	set_raw(&v2[0], "Subject: two\r\n\r\n2\r\n");
	v3[0].raw = big_html(4096);
	v3[0].raw_len = strlen(v3[0].raw);
	parseq_set_limits(q, 1, 1024);
	assert_null(parseq_parse(q, v3, 1, on_done, &s)); /* over the bytes */
	assert_int_equal(parseq_pending(q), 0);
	assert_non_null(parseq_parse(q, v1, 1, on_done, &s));
	assert_null(parseq_parse(q, v2, 1, on_done, &s)); /* over the jobs */
	assert_null(v2[0].m.subject);                     /* untouched */
	run_until_idle(base, q);
	assert_int_equal(s.calls, 1);
	/* the job delivered, there is room again */
	assert_non_null(parseq_parse(q, v2, 1, on_done, &s));
	run_until_idle(base, q);
	assert_int_equal(s.calls, 2);
	assert_string_equal(v2[0].m.subject, "two");
	parseq_msgs_free(v1, 1);
	parseq_msgs_free(v2, 1);
	parseq_msgs_free(v3, 1);
	parseq_stop(&q);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_parsed), cmocka_unit_test(test_loop_not_held),
	    cmocka_unit_test(test_cancel),       cmocka_unit_test(test_stop_in_flight),
	    cmocka_unit_test(test_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
