/*
 * bench_event.c: what converting one calendar object resource to a phone's
 * Calendar ApplicationData costs, as a Sync's window does it (the object's
 * text parsed, converted by pim_codec, the WBXML tree freed).
 *
 * Each .ics given is converted n times in a row: the first conversion of a
 * process, then the fastest of 5 rounds, with the zone caches off and on
 * (pim_tz_cache_enable: the answers of tz.c and the VTIMEZONEs interned by
 * pim_ical_zone). Every object of a real calendar carries its own VTIMEZONE,
 * so the uncached figure is what each object would cost without them.
 *
 * Not a test: lines of the form "name value" are for scripts:
 *   event_us apple_weekly.ics cached 41.2
 *
 * usage: bench_event [-n CALLS-PER-ROUND] FILE.ics...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eas/wbxml.h"
#include "lib/util.h"
#include "mailbox/commands.h"
#include "pim/pim.h"
#include "pim/tz.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole of a file of at most 1 MiB, NUL-terminated, or NULL. */
static char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = xmalloc((1 << 20) + 1);
	size_t n = f ? fread(buf, 1, 1 << 20, f) : 0;

	if (f == NULL || ferror(f) || !feof(f)) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len_r = n;
	return buf;
}

static int
convert(const char *data, size_t len, enum mbx_class c)
{
	static const struct mbx_pim_opts o = {.version = 161, .body_type = 1};
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *app = wbxml_add_root(d, WBXML_PAGE_AIRSYNC, 0x1D);
	const char *err = NULL;
	int rv = pim_codec.to_eas(c, data, len, app, &o, &err);

	wbxml_doc_free(&d);
	return rv;
}

/* The fastest of 5 rounds of n conversions, in microseconds each. */
static double
rounds(const char *data, size_t len, enum mbx_class c, int n)
{
	double best = 1e30;

	for (int r = 0; r < 5; r++) {
		double t0 = now_s();

		for (int i = 0; i < n; i++)
			if (convert(data, len, c) < 0)
				return -1;
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
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "-n") == 0) {
		if (parse_int(argv[2], 1, 1000000, &n, &err) < 0) {
			fprintf(stderr, "bench_event: -n %s: %s\n", argv[2], err);
			return 2;
		}
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: bench_event [-n CALLS-PER-ROUND] FILE.ics...\n");
		return 2;
	}
	for (; i < argc; i++) {
		const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		enum mbx_class c;
		size_t len;
		char *data = slurp(argv[i], &len);
		double t0, first, off, on;

		if (data == NULL) {
			fprintf(stderr, "bench_event: %s: unreadable or over 1 MiB\n", argv[i]);
			return 2;
		}
		c = strstr(data, "BEGIN:VTODO") ? MBX_CLASS_TASKS : MBX_CLASS_CALENDAR;
		pim_tz_cache_enable(true);
		t0 = now_s();
		if (convert(data, len, c) < 0) {
			fprintf(stderr, "bench_event: %s: not converted\n", argv[i]);
			return 1;
		}
		first = (now_s() - t0) * 1e6;
		pim_tz_cache_enable(false);
		off = rounds(data, len, c, (int)n);
		pim_tz_cache_enable(true);
		on = rounds(data, len, c, (int)n);
		printf("event_us %s first %.1f\n", name, first);
		printf("event_us %s uncached %.1f\n", name, off);
		printf("event_us %s cached %.1f\n", name, on);
		free(data);
	}
	return 0;
}
