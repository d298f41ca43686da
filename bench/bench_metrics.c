/*
 * bench_metrics.c: what recording one proxied request's series costs in a
 * prefork abqd with 2 workers (lib/metrics.c), each worker on its own table
 * against both workers on one table.
 *
 * Two processes forked after abq_metrics_share(2), each pinned to its own CPU
 * (0 and 1; -u: not pinned, as abqd's workers are not), record n times what the gateway records per
 * proxied request: the held gauge +1, the upstream latency (one bucket and the sum), the upstream's
 * health, the held gauge -1, the request counter. "own" gives each its table
 * (abq_metrics_worker, as abqd does); "one" leaves both on the main process's
 * table, as before the tables were per process, so the same cache lines are
 * written from both CPUs. The figure is the processes' CPU time (user and
 * system) per request, the median of the rounds; the scrape afterwards checks
 * that every request was counted.
 *
 * Not a test: lines of the form "name value" are for scripts:
 *   metrics_ns_per_request own 22.5
 *
 * usage: bench_metrics [-u] [-n REQUESTS-PER-PROCESS] [-r ROUNDS]
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/metrics.h"
#include "lib/util.h"

#define ROUNDS_MAX 99

/* One worker: pinned to cpu (unless -1), on its own table or on the main process's. */
static void
worker(int i, int cpu, bool own, long n)
{
	cpu_set_t set;

	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set); /* best effort: one CPU still runs */
	}
	if (own)
		abq_metrics_worker(i);
	for (long k = 0; k < n; k++) {
		abq_metrics_held(ABQ_HELD_PROXIED, +1);
		abq_metrics_upstream_latency(0.003);
		abq_health_upstream(true);
		abq_metrics_held(ABQ_HELD_PROXIED, -1);
		abq_metrics_request(3, ABQ_OUTCOME_PROXIED);
	}
	_exit(0);
}

/* The CPU seconds of the reaped children so far. */
static double
children_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One round: nanoseconds of CPU per request, or -1 (a fork or a worker failed). */
static double
round_ns(bool own, bool pin, long n)
{
	double before = children_cpu();
	int status, failed = 0;

	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return -1;
		if (pid == 0)
			worker(i, pin ? i : -1, own, n);
	}
	while (wait(&status) > 0)
		failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (failed)
		return -1;
	return (children_cpu() - before) * 1e9 / (2.0 * (double)n);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	long n = 10000000;
	int rounds = 5, opt;
	bool pin = true;

	while ((opt = getopt(argc, argv, "n:r:u")) != -1) {
		long long v;
		const char *err;

		if (opt == 'u') {
			pin = false;
		} else if (opt == 'n' && parse_int(optarg, 1, 1000000000, &v, &err) == 0) {
			n = (long)v;
		} else if (opt == 'r' && parse_int(optarg, 1, ROUNDS_MAX, &v, &err) == 0) {
			rounds = (int)v;
		} else {
			if (opt == 'n' || opt == 'r')
				fprintf(stderr, "bench_metrics: -%c: %s\n", opt, err);
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	if (abq_metrics_share(2) < 0) {
		fprintf(stderr, "bench_metrics: cannot share the metrics\n");
		return 1;
	}
	/* Interleaved, so that a change in the machine's load hits both alike. */
	double ns[2][ROUNDS_MAX];
	for (int r = 0; r < rounds; r++) {
		for (int m = 0; m < 2; m++) {
			ns[m][r] = round_ns(m == 0, pin, n);
			if (ns[m][r] < 0) {
				fprintf(stderr, "bench_metrics: a worker failed\n");
				return 1;
			}
		}
	}
	for (int m = 0; m < 2; m++) {
		qsort(ns[m], (size_t)rounds, sizeof(double), cmp_double);
		printf("metrics_ns_per_request %s%s %.1f\n", m == 0 ? "own" : "one",
		       pin ? "" : " unpinned", ns[m][rounds / 2]);
	}
	/* Every request counted: 2 processes, 2 layouts, n each per round. */
	char *text = abq_metrics_render(NULL, NULL);
	char want[96];
	snprintf(want, sizeof(want),
	         "abqd_requests_total{command=\"3\",outcome=\"proxied\"} %lld\n",
	         (long long)n * 4 * rounds);
	int ok = strstr(text, want) != NULL;
	free(text);
	if (!ok) {
		fprintf(stderr, "bench_metrics: requests lost (want %s)\n", want);
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: bench_metrics [-u] [-n REQUESTS-PER-PROCESS] [-r ROUNDS]\n");
	return 2;
}
