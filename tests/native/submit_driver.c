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
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native/submit.h"
#include "net/curl_loop.h"

static struct event_base *base;
static double t_last, stall_max, start_ms;

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
}

/* The submission ended: print it and stop the loop. */
static void
on_done(void *arg, const struct submit_outcome *o)
{
	double t0 = *(double *)arg;

	on_tick(-1, 0, NULL);
	printf("result=%s code=%d rcpt=%s n_rcpt=%zu bytes=%zu ms=%.1f start_ms=%.1f "
	       "stall_ms=%.1f text=%s\n",
	       submit_result_name(o->result), o->smtp_code, o->rcpt ? o->rcpt : "-", o->n_rcpt,
	       o->bytes, now_ms() - t0, start_ms, stall_max, o->text);
	if (o->detail[0])
		printf("detail=%s\n", o->detail);
	event_base_loopbreak(base);
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

	if (argc < 6) {
		fprintf(stderr, "usage: submit-driver URL USER PASSWORD FROM FILE [MAX_SIZE]\n");
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
