/*
 * bench_tz.c: what matching a phone's TimeZone blob to an Olson zone costs.
 *
 * The command layer calls pim_tz_to_ical for every calendar item a phone
 * sends. This times, on a nameless blob of the EU's rules at +01 (what iOS
 * sends for Berlin: no name to go by, so every built-in zone is a
 * candidate) and on one naming its zone:
 *  - the first match of a process: libical loads all its built-in zones
 *    from the system tzdata, and their rules for the year are computed;
 *  - the first match in another year (that year's rules computed);
 *  - a match without the answer cache (the year's table of rules kept);
 *  - a match from the answer cache;
 *  - a blob no zone follows (every zone's rules compared, then a zone
 *    built from the blob and freed);
 *  - pim_tz_from_ical of a built-in zone (the other direction), without
 *    and with its cache.
 * Each repeated figure is the fastest of 10 rounds (the machine is shared).
 *
 * Not a test: lines of the form "name value" are for scripts:
 *   tz_match_cached_us 0.215
 *
 * usage: bench_tz [CALLS-PER-ROUND]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "pim/tz.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const int64_t at = 1782907200; /* 2026-07-01T12:00:00Z */

/* The fastest round of n pim_tz_from_ical of zone, in microseconds each. */
static double
from_rounds(icaltimezone *zone, int n)
{
	struct pim_eas_tz tz;
	double best = 1e30;

	for (int r = 0; r < 10; r++) {
		double t0 = now_s();

		for (int i = 0; i < n; i++)
			if (pim_tz_from_ical(zone, at, &tz) < 0)
				abort();
		if ((now_s() - t0) / n < best)
			best = (now_s() - t0) / n;
	}
	return best * 1e6;
}

/* The fastest round of n matches, in microseconds per match. */
static double
rounds(const struct pim_eas_tz *tz, const char *hint, int n)
{
	double best = 1e30;
	bool owned;

	for (int r = 0; r < 10; r++) {
		double t0 = now_s();

		for (int i = 0; i < n; i++) {
			icaltimezone *z = pim_tz_to_ical(tz, at, hint, &owned);

			if (z == NULL)
				abort();
			if (owned)
				icaltimezone_free(z, 1);
		}
		if ((now_s() - t0) / n < best)
			best = (now_s() - t0) / n;
	}
	return best * 1e6;
}

int
main(int argc, char **argv)
{
	long long n = 200;
	const char *err;

	if (argc > 1 && parse_int(argv[1], 1, 1000000, &n, &err) < 0) {
		fprintf(stderr, "bench_tz: %s: %s\n", argv[1], err);
		return 2;
	}
	struct pim_eas_tz tz, named, custom;
	icaltimezone *berlin;
	double t0, first;
	bool owned;

	if (n <= 0)
		n = 200;
	memset(&tz, 0, sizeof(tz));
	tz.bias = -60;
	tz.daylight_bias = -60;
	tz.standard_date = (struct pim_systemtime){0, 10, 0, 5, 3, 0, 0, 0};
	tz.daylight_date = (struct pim_systemtime){0, 3, 0, 5, 2, 0, 0, 0};
	named = tz;
	snprintf(named.standard_name, sizeof(named.standard_name), "Europe/Berlin");

	t0 = now_s();
	if (pim_tz_to_ical(&tz, at, NULL, &owned) == NULL)
		return 1;
	first = (now_s() - t0) * 1e3;
	printf("tz_match_first_ms %.1f\n", first);

	pim_tz_cache_enable(false);
	/* Another year's table, the zones loaded. */
	t0 = now_s();
	if (pim_tz_to_ical(&tz, at + 365 * 86400, NULL, &owned) == NULL)
		return 1;
	printf("tz_year_table_ms %.1f\n", (now_s() - t0) * 1e3);
	printf("tz_match_uncached_us %.2f\n", rounds(&tz, NULL, n));
	printf("tz_match_named_uncached_us %.2f\n", rounds(&named, NULL, n));
	custom = tz;
	custom.daylight_date.day = 2; /* the second Sunday of March: no zone's rule */
	printf("tz_match_custom_uncached_us %.2f\n", rounds(&custom, NULL, n / 10 + 1));
	berlin = icaltimezone_get_builtin_timezone("Europe/Berlin");
	printf("tz_from_ical_uncached_us %.1f\n", from_rounds(berlin, n / 10 + 1));
	pim_tz_cache_enable(true);
	printf("tz_match_cached_us %.3f\n", rounds(&tz, NULL, n * 100));
	printf("tz_from_ical_cached_us %.3f\n", from_rounds(berlin, n * 100));
	return 0;
}
