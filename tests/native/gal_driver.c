/*
 * gal_driver.c: global address list lookups (src/native/gal_ldap.c, or
 * src/native/gal_carddav.c for an http(s):// URL) on a libevent loop, as
 * the command layer makes them, for test_gal_live.py against a real slapd
 * and test_gal_carddav_live.py against a real Radicale.
 *
 *   gal-driver [--bind DN --password PW] [--user U --user-password PW]
 *              [--picture MAX] [--max N] URL [@]QUERY...
 *
 * --user and --user-password are the phone user's credentials (an
 * address book is read with them unless --bind names others).
 *
 * Each QUERY is looked up in turn, in one request (a QUERY beginning with
 * '@' is an exact address), the request run again until no lookup pends,
 * as mbx_run does; then one JSON line per lookup:
 *   {"query": Q, "rv": 1|-1, "error": E, "total": T,
 *    "entries": [{"display_name": ..., "email": ..., ..., "picture": LEN,
 *                 "too_large": BOOL}, ...]}
 * and a last line {"lookups": L, "failures": F, "runs": R, "stall_ms": S}:
 * how many times the request ran, and the loop's longest gap seen by a 2 ms
 * timer while the lookups were made (the thread keeps the loop free).
 * --check URL only checks the configuration: "ok" or the message, exit 0.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "mailbox/mailbox.h"
#include "native/gal_carddav.h"
#include "native/gal_ldap.h"

static struct event_base *base;
static double t_last, stall_max;
static bool waiting;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	double t = now_ms();

	(void)fd;
	(void)what;
	(void)arg;
	if (t - t_last > stall_max)
		stall_max = t - t_last;
	t_last = t;
}

static void
on_waited(void *arg)
{
	(void)arg;
	waiting = false;
	event_base_loopbreak(base);
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A whole number of the command line in [0, max], or exit 2. */
static long long
number(const char *s, long long max)
{
	const char *err;
	long long v;

	if (parse_int(s, 0, max, &v, &err) < 0) {
		fprintf(stderr, "gal-driver: %s: %s\n", s, err);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct gal_ldap_conf c = {.connect_timeout = 3, .timeout = 5};
	const char *user = NULL, *user_password = NULL;
	bool dav;
	size_t picture = 0, max = 20;
	const char *err = NULL;
	int i = 1, runs = 0;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
			c.bind_dn = argv[++i];
		else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc)
			c.bind_password = argv[++i];
		else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--user-password") == 0 && i + 1 < argc)
			user_password = argv[++i];
		else if (strcmp(argv[i], "--picture") == 0 && i + 1 < argc)
			picture = (size_t)number(argv[++i], 1 << 24);
		else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
			max = (size_t)number(argv[++i], MBX_GAL_MAX);
		else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) {
			c.url = argv[++i];
			if (strncmp(c.url, "http", 4) == 0) {
				struct gal_carddav_conf dc = {
				    .url = c.url, .user = c.bind_dn, .password = c.bind_password};
				puts(gal_carddav_check(&dc, &err) == 0 ? "ok" : err);
			} else {
				puts(gal_ldap_check(&c, &err) == 0 ? "ok" : err);
			}
			return 0;
		} else {
			fprintf(stderr, "gal-driver: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: gal-driver [--bind DN --password PW] [--picture MAX] "
		                "[--max N] URL [@]QUERY...\n");
		return 2;
	}
	c.url = argv[i++];
	dav = strncmp(c.url, "http", 4) == 0;
	base = event_base_new();
	struct gal_ldap *g = NULL;
	struct gal_carddav *gd = NULL;
	struct mbx_backend *b;
	if (dav) {
		struct gal_carddav_conf dc = {.url = c.url,
		                              .user = c.bind_dn,
		                              .password = c.bind_password,
		                              .connect_timeout_ms = 3000,
		                              .timeout_ms = 5000};
		gd = gal_carddav_new(base, &dc, &err);
	} else {
		g = gal_ldap_new(base, &c, &err);
	}
	if (g == NULL && gd == NULL) {
		fprintf(stderr, "gal-driver: %s\n", err);
		return 1;
	}
	b = dav ? gal_carddav_backend(gd, user, user_password) : gal_ldap_backend(g);
	struct timeval tick = {0, 2000};
	struct event *ev = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev, &tick);
	size_t nq = (size_t)(argc - i);
	struct mbx_gal_out *out = calloc(nq, sizeof(*out));
	int *rv = calloc(nq, sizeof(*rv));
	const char **errs = calloc(nq, sizeof(*errs));
	bool pending;
	t_last = now_ms();
	do {
		pending = false;
		runs++;
		mbx_begin(b);
		for (size_t k = 0; k < nq; k++) {
			const char *q = argv[i + (int)k];
			bool address = q[0] == '@';
			mbx_gal_out_clear(&out[k]);
			errs[k] = NULL;
			rv[k] = mbx_gal_search(b, address ? q + 1 : q,
			                       address ? MBX_GAL_ADDRESS : MBX_GAL_PREFIX, max,
			                       picture, &out[k], &errs[k]);
			pending = pending || rv[k] == MBX_PENDING;
		}
		if (pending) {
			waiting = true;
			mbx_wait(b, on_waited, NULL);
			while (waiting)
				event_base_loop(base, EVLOOP_ONCE);
		}
	} while (pending && runs < 10);
	for (size_t k = 0; k < nq; k++) {
		json_t *o = json_object(), *a = json_array();
		json_object_set_new(o, "query", json_string(argv[i + (int)k]));
		json_object_set_new(o, "rv", json_integer(rv[k]));
		json_object_set_new(o, "error", str_or_null(rv[k] < 0 ? errs[k] : NULL));
		json_object_set_new(o, "total", json_integer((json_int_t)out[k].total));
		for (size_t j = 0; j < out[k].n; j++) {
			const struct mbx_gal_entry *e = &out[k].e[j];
			json_t *x = json_object();
			json_object_set_new(x, "display_name", str_or_null(e->display_name));
			json_object_set_new(x, "email", str_or_null(e->email));
			json_object_set_new(x, "first_name", str_or_null(e->first_name));
			json_object_set_new(x, "last_name", str_or_null(e->last_name));
			json_object_set_new(x, "alias", str_or_null(e->alias));
			json_object_set_new(x, "company", str_or_null(e->company));
			json_object_set_new(x, "title", str_or_null(e->title));
			json_object_set_new(x, "office", str_or_null(e->office));
			json_object_set_new(x, "phone", str_or_null(e->phone));
			json_object_set_new(x, "home_phone", str_or_null(e->home_phone));
			json_object_set_new(x, "mobile_phone", str_or_null(e->mobile_phone));
			json_object_set_new(x, "picture", json_integer((json_int_t)e->picture_len));
			json_object_set_new(x, "too_large", json_boolean(e->picture_too_large));
			json_array_append_new(a, x);
		}
		json_object_set_new(o, "entries", a);
		char *line = json_dumps(o, JSON_COMPACT);
		puts(line);
		free(line);
		json_decref(o);
		mbx_gal_out_clear(&out[k]);
	}
	mbx_end(b);
	printf("{\"lookups\": %lu, \"failures\": %lu, \"runs\": %d, \"stall_ms\": %.1f}\n",
	       dav ? gal_carddav_lookups(gd) : gal_ldap_lookups(g),
	       dav ? gal_carddav_failures(gd) : gal_ldap_failures(g), runs, stall_max);
	mbx_destroy(&b);
	gal_ldap_free(&g);
	gal_carddav_free(&gd);
	event_free(ev);
	event_base_free(base);
	free(out);
	free(rv);
	free(errs);
	return 0;
}
