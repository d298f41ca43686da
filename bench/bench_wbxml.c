/*
 * bench_wbxml.c: what the one-pass WBXML check costs per forwarded body.
 *
 * The gateway runs wbxml_check() on every WBXML request body it forwards.
 * This times it on a typical Sync request (tests/eas/wbxml-corpus/
 * sync-request.wbxml, 145 bytes: one collection with options, a change, a
 * delete and a fetch, on three code pages), next to a full wbxml_decode() of
 * the same bytes for scale. Each is timed in 10 rounds and the fastest round
 * is reported: the machine is shared, and the minimum is the cost of the code
 * rather than of its neighbours.
 *
 * Not a test: it asserts nothing but that the body is accepted. Lines of the
 * form "name value" are for scripts:
 *   wbxml_check_sync_ns 120.5
 *
 * usage: bench_wbxml [CALLS-PER-ROUND]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "eas/wbxml.h"

/* tests/eas/wbxml-corpus/sync-request.wbxml */
static const uint8_t sync_request[] = {
    0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x4f, 0x4b, 0x03, 0x31, 0x32, 0x39, 0x38, 0x37, 0x34,
    0x35, 0x00, 0x01, 0x52, 0x03, 0x35, 0x00, 0x01, 0x5e, 0x03, 0x31, 0x00, 0x01, 0x13, 0x55,
    0x03, 0x32, 0x35, 0x00, 0x01, 0x57, 0x58, 0x03, 0x33, 0x00, 0x01, 0x00, 0x11, 0x45, 0x46,
    0x03, 0x32, 0x00, 0x01, 0x47, 0x03, 0x35, 0x31, 0x32, 0x30, 0x30, 0x00, 0x01, 0x48, 0x03,
    0x30, 0x00, 0x01, 0x01, 0x00, 0x00, 0x62, 0x03, 0x30, 0x00, 0x01, 0x01, 0x56, 0x48, 0x4d,
    0x03, 0x35, 0x3a, 0x31, 0x37, 0x00, 0x01, 0x5d, 0x00, 0x02, 0x55, 0x03, 0x31, 0x00, 0x01,
    0x7a, 0x7b, 0x03, 0x32, 0x00, 0x01, 0x7d, 0x03, 0x46, 0x6f, 0x6c, 0x6c, 0x6f, 0x77, 0x20,
    0x75, 0x70, 0x00, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x49, 0x4d, 0x03, 0x35, 0x3a, 0x31,
    0x32, 0x00, 0x01, 0x01, 0x4a, 0x4d, 0x03, 0x35, 0x3a, 0x32, 0x30, 0x00, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x55, 0x03, 0x31, 0x30, 0x30, 0x00, 0x01, 0x01};

/* CPU seconds of this thread: the machine is shared, wall time would count others. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Defeats dead-code elimination of the timed calls. */
static volatile size_t sink;

#define ROUNDS 10

/* Time ROUNDS rounds of n calls of wbxml_check() on buf; prints and returns the best ns per call.
 */
static double
time_check(const char *name, const uint8_t *buf, size_t len, long n)
{
	const char *why = NULL;
	size_t pos = 0;
	double best = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_s(), ns;

		for (long i = 0; i < n; i++) {
			if (wbxml_check(buf, len, &pos, &why) != 0) {
				fprintf(stderr, "%s: refused at %zu: %s\n", name, pos, why);
				exit(1);
			}
			sink += pos;
		}
		ns = (now_s() - t0) / (double)n * 1e9;
		if (r == 0 || ns < best)
			best = ns;
	}
	printf("%s_bytes %zu\n", name, len);
	printf("%s_ns %.1f\n", name, best);
	return best;
}

/* The same for full decodes (tree built and freed), for comparison. */
static double
time_decode(const char *name, const uint8_t *buf, size_t len, long n)
{
	struct wbxml_doc *doc;
	struct wbxml_error err;
	double best = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_s(), ns;

		for (long i = 0; i < n; i++) {
			if (wbxml_decode(buf, len, NULL, &doc, &err) != WBXML_OK) {
				fprintf(stderr, "%s: %s\n", name, err.msg);
				exit(1);
			}
			sink += wbxml_doc_count(doc);
			wbxml_doc_free(&doc);
		}
		ns = (now_s() - t0) / (double)n * 1e9;
		if (r == 0 || ns < best)
			best = ns;
	}
	printf("%s_ns %.1f\n", name, best);
	return best;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 500000;
	double check, decode;

	if (n <= 0) {
		fprintf(stderr, "usage: bench_wbxml [CALLS-PER-ROUND]\n");
		return 2;
	}
	printf("best of %d rounds of %ld calls\n", ROUNDS, n);
	check = time_check("wbxml_check_sync", sync_request, sizeof(sync_request), n);
	decode = time_decode("wbxml_decode_sync", sync_request, sizeof(sync_request), n / 10);
	printf("wbxml_check_sync_ns_per_byte %.2f\n", check / (double)sizeof(sync_request));
	printf("wbxml_decode_over_check %.1f\n", decode / check);
	return 0;
}
