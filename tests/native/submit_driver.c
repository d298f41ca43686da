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

	if (argc > 1 && strncmp(argv[1], "--queue", 7) == 0) {
		queue = true;
		if (argv[1][7] == '=')
			cancel_ms = strtol(argv[1] + 8, NULL, 10);
		argc--;
		argv++;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: submit-driver [--queue[=CANCEL_MS]] URL USER PASSWORD FROM "
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
