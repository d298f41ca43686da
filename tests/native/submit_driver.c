/*
 * submit_driver.c: one SMTP submission (src/native/submit.c) on a libevent
 * loop, for test_submit_live.py against the fixture's submission server.
 *
 *   submit-driver URL USER PASSWORD FROM FILE [MAX_SIZE]
 *
 * Sends FILE's bytes as USER and prints one line:
 *   result=<class> code=<smtp code> rcpt=<refused recipient or -> n_rcpt=N
 *   bytes=N ms=<elapsed> start_ms=<submit_start's own time> stall_ms=<the loop's
 *   longest gap> text=<server text>
 * A submission refused before connecting prints "refused=<class> ..." and
 * no connection is made. Exit 0 unless the driver itself failed. The loop's
 * longest gap is measured by a 5 ms timer: how long the loop was kept from
 * its other work (libcurl's blocking wait for QUIT's answer shows there).
 *
 *   submit-driver --queue[=CANCEL_MS] URL USER PASSWORD FROM FILE [MAX_SIZE]
 *
 * The same through a submitq (src/native/submitq.c): the submission runs on
 * the queue's thread and the outcome comes back to this loop, which prints
 * the same line plus ticks=<5 ms ticks while the submission was in flight>.
 * With CANCEL_MS, the job is cancelled that many ms after it was queued; the
 * loop runs one more second and prints "cancelled callbacks=<n>" (0 expected),
 * then the queue is stopped (a transfer still in flight is abandoned).
 *
 *   submit-driver --flood=SILENT_PORT URL USER PASSWORD FROM FILE
 *
 * The queue's caps (submitq.h), set to 3 jobs, 2 per user and 1 MiB. First
 * against 127.0.0.1:SILENT_PORT, a server that never greets (so every job
 * started stays in flight): jobs for USER, USER, USER, "other-1", "other-2",
 * then FILE's bytes padded past the byte cap; after half a second each
 * callback had is printed "flood job=<n> result=<class> text=<text>" and
 * "flood held=<jobs without an answer>". Then, with the queue stopped and a
 * new one capped at 1 job per user, against URL: a job, at once a second
 * one (refused), then, once the first was answered, a third (which must be
 * taken): "flood2 job=<n> result=<class>".
 */
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native/submit.h"
#include "native/submitq.h"
#include "net/curl_loop.h"

static struct event_base *base;
static double t_last, stall_max, start_ms;
static unsigned ticks, callbacks;
static struct submitq_job *job;

/* Monotonic milliseconds. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The 5 ms tick: the longest gap between two ticks is the loop's stall. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	double t = now_ms();

	if (t - t_last > stall_max)
		stall_max = t - t_last;
	t_last = t;
	if (what != 0) /* a tick, not on_done's last look */
		ticks++;
}

/* The submission ended: print it and stop the loop. */
static void
on_done(void *arg, const struct submit_outcome *o)
{
	double t0 = *(double *)arg;

	on_tick(-1, 0, NULL);
	callbacks++;
	job = NULL;
	printf("result=%s code=%d rcpt=%s n_rcpt=%zu bytes=%zu ms=%.1f start_ms=%.1f "
	       "stall_ms=%.1f ticks=%u text=%s\n",
	       submit_result_name(o->result), o->smtp_code, o->rcpt ? o->rcpt : "-", o->n_rcpt,
	       o->bytes, now_ms() - t0, start_ms, stall_max, ticks, o->text);
	if (o->detail[0])
		printf("detail=%s\n", o->detail);
	event_base_loopbreak(base);
}

/* --queue=CANCEL_MS: cancel the job, then give it a second to misbehave. */
static void
on_cancel(evutil_socket_t fd, short what, void *arg)
{
	struct timeval sec = {1, 0};

	(void)fd;
	(void)what;
	if (job != NULL) {
		submitq_cancel(job);
		job = NULL;
		printf("cancelled after %ld ms\n", (long)(intptr_t)arg);
		event_base_loopexit(base, &sec);
	}
}

static unsigned flood_calls;

/* --flood: one job answered; arg is its number. */
static void
on_flood(void *arg, const struct submit_outcome *o)
{
	flood_calls++;
	printf("flood job=%d result=%s text=%s\n", (int)(intptr_t)arg,
	       submit_result_name(o->result), o->text);
}

static struct submitq *flood_q;
static const struct submit_conf *flood_conf;
static char *flood_buf;
static size_t flood_n;

/* --flood, second part: the first job answered: the third must be taken. */
static void
on_flood2(void *arg, const struct submit_outcome *o)
{
	int n = (int)(intptr_t)arg;

	printf("flood2 job=%d result=%s\n", n, submit_result_name(o->result));
	if (n == 1)
		submitq_send(flood_q, flood_conf, flood_buf, flood_n, on_flood2, (void *)3);
	else if (n == 3)
		event_base_loopbreak(base);
}

/* --flood=SILENT_PORT (see the top). */
static int
run_flood(const struct submit_conf *conf, char *buf, size_t n, int silent_port)
{
	static const char *users[] = {NULL, NULL, NULL, "other-1", "other-2"};
	struct timeval half = {0, 500000}, limit = {60, 0};
	struct submit_conf c = *conf;
	char url[64];
	const char *err;
	size_t big = (1u << 20) - 100;
	char *pad;

	if ((flood_q = submitq_start(base, &err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	submitq_set_limits(flood_q, 3, 2, 1u << 20);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", silent_port);
	c.url = url;
	for (int i = 0; i < 5; i++) {
		c.user = users[i] ? users[i] : conf->user;
		submitq_send(flood_q, &c, buf, n, on_flood, (void *)(intptr_t)(i + 1));
	}
	/* Over the bytes: a queue of 1 MiB holding 2 jobs already. */
	submitq_set_limits(flood_q, 10, 10, 0);
	pad = malloc(big);
	memset(pad, 'x', big);
	c.user = "other-3";
	submitq_send(flood_q, &c, pad, big, on_flood, (void *)6);
	free(pad);
	event_base_loopexit(base, &half);
	event_base_dispatch(base);
	printf("flood held=%zu callbacks=%u\n", submitq_pending(flood_q), flood_calls);
	submitq_stop(&flood_q);

	if ((flood_q = submitq_start(base, &err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	submitq_set_limits(flood_q, 0, 1, 0);
	flood_conf = conf;
	flood_buf = buf;
	flood_n = n;
	submitq_send(flood_q, conf, buf, n, on_flood2, (void *)1);
	submitq_send(flood_q, conf, buf, n, on_flood2, (void *)2);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	submitq_stop(&flood_q);
	return 0;
}

/* Send through a submitq on base (see the top). */
static int
run_queue(const struct submit_conf *conf, char *buf, size_t n, long cancel_ms)
{
	struct timeval tv = {0, 5000};
	struct timeval ctv = {cancel_ms / 1000, (cancel_ms % 1000) * 1000};
	struct event *tick, *cancel = NULL;
	struct submitq *q;
	const char *err;
	double t0;

	if ((q = submitq_start(base, &err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	t0 = t_last = now_ms();
	job = submitq_send(q, conf, buf, n, on_done, &t0);
	memset(buf, 'Z', n); /* the queue has its own copy */
	start_ms = now_ms() - t0;
	t_last = now_ms();
	tick = event_new(base, -1, EV_PERSIST, on_tick, base);
	event_add(tick, &tv);
	if (cancel_ms >= 0) {
		cancel = evtimer_new(base, on_cancel, (void *)(intptr_t)cancel_ms);
		event_add(cancel, &ctv);
	}
	event_base_dispatch(base);
	if (cancel_ms >= 0)
		printf("cancelled callbacks=%u pending=%zu\n", callbacks, submitq_pending(q));
	event_free(tick);
	if (cancel != NULL)
		event_free(cancel);
	submitq_stop(&q);
	return 0;
}

int
main(int argc, char **argv)
{
	struct submit_conf conf = {0};
	enum submit_result refused;
	const char *err;
	struct curl_loop *cl;
	struct submit *s;
	struct event *tick;
	struct timeval tv = {0, 5000};
	char *buf;
	long n;
	FILE *f;
	double t0;
	long cancel_ms = -1;
	bool queue = false;
	int flood = 0;

	if (argc > 1 && strncmp(argv[1], "--flood=", 8) == 0) {
		char *end;
		long v = strtol(argv[1] + 8, &end, 10);
		if (end == argv[1] + 8 || *end != '\0' || v < 1 || v > 65535) {
			fprintf(stderr, "submit_driver: --flood wants a port, not %s\n",
			        argv[1] + 8);
			return 2;
		}
		flood = (int)v;
		argc--;
		argv++;
	} else if (argc > 1 && strncmp(argv[1], "--queue", 7) == 0) {
		queue = true;
		if (argv[1][7] == '=')
			cancel_ms = strtol(argv[1] + 8, NULL, 10);
		argc--;
		argv++;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: submit-driver [--queue[=CANCEL_MS] | --flood=PORT] URL "
		                "USER PASSWORD FROM "
		                "FILE [MAX_SIZE]\n");
		return 2;
	}
	conf.url = argv[1];
	conf.user = argv[2];
	conf.password = argv[3];
	conf.from = argv[4];
	conf.timeout = 20;
	if (argc > 6)
		conf.max_size = strtoul(argv[6], NULL, 10);
	if ((f = fopen(argv[5], "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
		perror(argv[5]);
		return 2;
	}
	buf = malloc((size_t)n);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(argv[5]);
		return 2;
	}
	fclose(f);
	base = event_base_new();
	if (flood > 0) {
		int rv = run_flood(&conf, buf, (size_t)n, flood);
		event_base_loop(base, EVLOOP_NONBLOCK);
		event_base_free(base);
		free(buf);
		return rv;
	}
	if (queue) {
		int rv = run_queue(&conf, buf, (size_t)n, cancel_ms);
		event_base_free(base);
		free(buf);
		return rv;
	}
	if ((cl = curl_loop_new(base, &err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	t0 = t_last = now_ms();
	s = submit_start(cl, &conf, buf, (size_t)n, on_done, &t0, &refused, &err);
	start_ms = now_ms() - t0;
	t_last = now_ms(); /* the loop's stalls from here; submit_start's own time apart */
	if (s == NULL) {
		printf("refused=%s connections=0 error=%s\n", submit_result_name(refused), err);
	} else {
		tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
		event_add(tick, &tv);
		event_base_dispatch(base);
		event_free(tick);
	}
	curl_loop_free(&cl);
	event_base_free(base);
	free(buf);
	return 0;
}
