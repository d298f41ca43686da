/*
 * davmbx_driver.c: native mode's DAV backend (src/native/mailbox_dav.c) on a
 * libevent loop, as the command layer drives it, for test_davmbx_live.py
 * against a real Radicale (and, under ABQ_DAVMBX_WRAP, valgrind).
 *
 *   davmbx-driver STORE CALDAV CARDDAV USER PASSWORD OP [ARGS...]
 *
 * STORE is a SQLite store (created when missing); the backend reaches it as
 * the daemon's store thread would, each job run from the loop's next turn.
 * CALDAV and CARDDAV are URLs ("-": none). OP, one request of the backend
 * (run again until nothing pends, as mbx_run does), prints one JSON line:
 *   folders                         {"folders": [{"id", "name", "type"}...]}
 *   changes ID CURSOR WINDOW [FLOOR]
 *                                   {"rv", "adds": [...], "changed": [...],
 *                                    "deletes": [...], "more", "total", "cursor",
 *                                    "objects": {id: data}, "spans": {id: [start, end]}}
 *                                   (CURSOR "-": none; FLOOR: the window's span_floor;
 *                                    end -1: for ever, 0 0: unknown)
 *   fetch ID ITEM                   {"rv", "data", "etag"}
 *   add ID FILE CURSOR              {"rv", "id", "cursor"}
 *   change ID ITEM FILE CURSOR      {"rv", "cursor"}   (If-Match on what fetch_object read)
 *   remove ID ITEM CURSOR           {"rv", "cursor"}
 *   cancel ID                       a changes() started, the backend destroyed with it
 *                                   in flight: {"cancelled": true} and nothing called back
 *   together ID CURSOR N [drop]     N requests (backends of the same worker) ask
 *                                   changes() in the same loop turn: {"results": [{"rv",
 *                                   "adds", "changed"}...], "refreshes", "joined"};
 *                                   drop: the first is destroyed once the others wait for
 *                                   its refresh (its result left out)
 * and a last line {"runs": N}. rv: 1, 0, -1, or the MBX_* codes.
 * ABQ_DAVMBX_MAX_AGE=SECONDS in the environment: the conf's max_age_s
 * ([upstream] dav_max_age), 0 when not set.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mailbox/mailbox.h"
#include "native/mailbox_dav.h"
#include "net/curl_loop.h"
#include "store/store.h"

static struct event_base *base;
static struct abq_store *store;
static bool waiting;

/* A store job, run from the loop's next turn (as the store thread would, later). */
struct sjob {
	int (*run)(struct abq_store *s, void *job);
	void (*done)(void *job, int rv);
	void (*release)(void *job);
	void *job;
	bool cancelled;
	struct event *ev;
};

static void
sjob_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sjob *j = arg;
	int rv;

	(void)fd;
	(void)what;
	rv = j->run(store, j->job);
	if (!j->cancelled)
		j->done(j->job, rv);
	j->release(j->job);
	event_free(j->ev);
	free(j);
}

static void *
store_call(void *arg, int (*run)(struct abq_store *s, void *job), void (*done)(void *job, int rv),
           void (*release)(void *job), void *job)
{
	struct sjob *j = calloc(1, sizeof(*j));
	struct timeval now = {0, 0};

	(void)arg;
	j->run = run;
	j->done = done;
	j->release = release;
	j->job = job;
	j->ev = evtimer_new(base, sjob_fire, j);
	evtimer_add(j->ev, &now);
	return j;
}

static void
store_cancel(void *arg, void *handle)
{
	(void)arg;
	((struct sjob *)handle)->cancelled = true;
}

static void
on_waited(void *arg)
{
	(void)arg;
	waiting = false;
}

/* Wait for the backend's work (pending), as mbx_run does between runs. */
static void
wait_for(struct mbx_backend *b)
{
	waiting = true;
	mbx_wait(b, on_waited, NULL);
	while (waiting)
		event_base_loop(base, EVLOOP_ONCE);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0)
		exit(2);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static json_t *
ids_of(const struct mbx_change_item *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i].id));
	return a;
}

static int together_left;

static void
together_waited(void *arg)
{
	(void)arg;
	together_left--;
}

/*
 * Loop turns, one at a time, until the worker has made and joined so many
 * refreshes (or 10 s): the first's refresh is still in flight then.
 */
static void
turns_until(const struct mbx_dav_shared *shared, unsigned long made, unsigned long joined)
{
	struct timeval tick = {0, 10000};
	unsigned long r, j;

	for (int i = 0; i < 1000; i++) {
		mbx_dav_shared_stats(shared, &r, &j);
		if (r >= made && j >= joined)
			return;
		event_base_loopexit(base, &tick); /* a turn returns at the latest then */
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/* The op "together": N backends' changes() started at once, then answered. */
static int
together(struct curl_loop *cl, struct mbx_dav_shared *shared, const struct mbx_dav_conf *conf,
         struct mbx_dav_store *st, char **argv, json_t *out)
{
	struct mbx_backend *bs[16];
	long long n, first = 0;
	bool drop = argv[10] != NULL && strcmp(argv[10], "drop") == 0;
	const char *err = NULL;
	json_t *results = json_array();
	unsigned long refreshes, joined;

	if (parse_int(argv[9], 1, 16, &n, &err) < 0) {
		fprintf(stderr, "davmbx-driver: N %s: %s\n", argv[9], err);
		exit(2);
	}
	for (long long i = 0; i < n; i++) {
		if ((bs[i] = mbx_dav_new(cl, shared, conf, st, argv[4], argv[4], argv[5], &err)) ==
		    NULL) {
			fprintf(stderr, "davmbx-driver: %s\n", err);
			exit(1);
		}
	}
	/* Runs as mbx_run makes them, all backends each time, until none pends. */
	for (int run = 0; run < 20; run++) {
		json_array_clear(results);
		together_left = 0;
		for (long long i = first; i < n; i++) {
			struct mbx_window w = {.size = 100};
			struct mbx_changes ch;
			const char *e2 = NULL;
			json_t *x = json_object();
			int rv;

			mbx_begin(bs[i]);
			rv = mbx_changes(bs[i], argv[7], strcmp(argv[8], "-") ? argv[8] : NULL, &w,
			                 &ch, &e2);
			json_object_set_new(x, "rv", json_integer(rv));
			if (rv == MBX_PENDING) {
				together_left++;
				mbx_wait(bs[i], together_waited, NULL);
			} else if (rv == 1) {
				json_object_set_new(x, "adds", ids_of(ch.adds, ch.n_adds));
				json_object_set_new(x, "changed", ids_of(ch.changed, ch.n_changed));
				mbx_changes_clear(&ch);
			}
			json_array_append_new(results, x);
			/* its refresh in flight before the others ask */
			if (drop && first == 0 && i == 0)
				turns_until(shared, 1, 0);
		}
		if (together_left == 0)
			break;
		if (drop && first == 0) {
			/* the others wait for the first's refresh, which then goes away */
			turns_until(shared, 1, (unsigned long)n - 1);
			mbx_destroy(&bs[0]);
			together_left--;
			first = 1;
		}
		while (together_left > 0)
			event_base_loop(base, EVLOOP_ONCE);
	}
	for (long long i = first; i < n; i++) {
		mbx_end(bs[i]);
		mbx_destroy(&bs[i]);
	}
	mbx_dav_shared_stats(shared, &refreshes, &joined);
	json_object_set_new(out, "results", results);
	json_object_set_new(out, "refreshes", json_integer((json_int_t)refreshes));
	json_object_set_new(out, "joined", json_integer((json_int_t)joined));
	return 0;
}

int
main(int argc, char **argv)
{
	struct mbx_dav_conf conf = {.connect_timeout_ms = 5000, .timeout_ms = 20000};
	struct mbx_dav_store st = {NULL, store_call, store_cancel};
	const char *err = NULL, *op;
	struct curl_loop *cl;
	struct mbx_dav_shared *shared;
	struct mbx_backend *b;
	json_t *out = json_object();
	int runs = 0, rv = 0;
	bool pending;

	if (argc < 7) {
		fprintf(stderr,
		        "usage: davmbx-driver STORE CALDAV CARDDAV USER PASSWORD OP [ARGS]\n");
		return 2;
	}
	if ((store = abq_store_open(argv[1], NULL, ABQ_STORE_CREATE, &err)) == NULL) {
		fprintf(stderr, "davmbx-driver: %s\n", err);
		return 1;
	}
	if (getenv("ABQ_DAVMBX_MAX_AGE") != NULL) {
		long long age;
		const char *e2;

		if (parse_int(getenv("ABQ_DAVMBX_MAX_AGE"), 0, 3600, &age, &e2) < 0) {
			fprintf(stderr, "davmbx-driver: ABQ_DAVMBX_MAX_AGE: %s\n", e2);
			return 2;
		}
		conf.max_age_s = (unsigned)age;
	}
	conf.caldav = strcmp(argv[2], "-") ? argv[2] : NULL;
	conf.carddav = strcmp(argv[3], "-") ? argv[3] : NULL;
	op = argv[6];
	base = event_base_new();
	cl = curl_loop_new(base, &err);
	shared = mbx_dav_shared_new();
	b = mbx_dav_new(cl, shared, &conf, &st, argv[4], argv[4], argv[5], &err);
	if (b == NULL) {
		fprintf(stderr, "davmbx-driver: %s\n", err);
		return 1;
	}
	if (strcmp(op, "together") == 0 && argc > 9) {
		rv = together(cl, shared, &conf, &st, argv, out);
		mbx_destroy(&b);
		goto done;
	}
	if (strcmp(op, "cancel") == 0 && argc > 7) {
		struct mbx_window w = {100, 0, 0};
		struct mbx_changes ch;
		mbx_begin(b);
		rv = mbx_changes(b, argv[7], NULL, &w, &ch, &err);
		/* one loop turn: the store job runs, the DAV request starts */
		event_base_loop(base, EVLOOP_NONBLOCK);
		mbx_destroy(&b); /* with its work in flight: nothing may call back */
		for (int i = 0; i < 20; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
		json_object_set_new(out, "cancelled", json_boolean(rv == MBX_PENDING));
		goto done;
	}
	do {
		const char *e2 = NULL;
		pending = false;
		runs++;
		mbx_begin(b);
		json_object_clear(out);
		if (strcmp(op, "folders") == 0) {
			const struct mbx_folder *f;
			size_t n;
			rv = mbx_list_folders(b, &f, &n, &e2);
			if (rv == 0) {
				json_t *a = json_array();
				for (size_t i = 0; i < n; i++) {
					json_t *x = json_object();
					json_object_set_new(x, "id", json_string(f[i].id));
					json_object_set_new(x, "name", json_string(f[i].name));
					json_object_set_new(x, "type", json_integer(f[i].type));
					json_array_append_new(a, x);
				}
				json_object_set_new(out, "folders", a);
			}
		} else if (strcmp(op, "changes") == 0 && argc > 9) {
			long long ws;
			if (parse_int(argv[9], 0, 10000, &ws, &e2) < 0) {
				fprintf(stderr, "davmbx-driver: WINDOW %s: %s\n", argv[9], e2);
				return 2;
			}
			long long floor = 0;
			if (argc > 10 && parse_int(argv[10], 0, 1LL << 40, &floor, &e2) < 0) {
				fprintf(stderr, "davmbx-driver: FLOOR %s: %s\n", argv[10], e2);
				return 2;
			}
			struct mbx_window w = {(size_t)ws, 0, floor};
			struct mbx_changes ch;
			rv = mbx_changes(b, argv[7], strcmp(argv[8], "-") ? argv[8] : NULL, &w, &ch,
			                 &e2);
			if (rv == 1) {
				json_t *objs = json_object(), *spans = json_object();
				json_object_set_new(out, "adds", ids_of(ch.adds, ch.n_adds));
				json_object_set_new(out, "changed",
				                    ids_of(ch.changed, ch.n_changed));
				json_object_set_new(out, "deletes",
				                    ids_of(ch.deletes, ch.n_deletes));
				json_object_set_new(out, "more", json_boolean(ch.more_available));
				json_object_set_new(out, "total",
				                    json_integer((json_int_t)ch.total));
				json_object_set_new(out, "cursor", json_string(ch.cursor));
				for (size_t k = 0; k < 2 && !pending; k++) {
					const struct mbx_change_item *v = k ? ch.changed : ch.adds;
					size_t n = k ? ch.n_changed : ch.n_adds;
					for (size_t i = 0; i < n; i++) {
						struct mbx_object o;
						json_object_set_new(
						    spans, v[i].id,
						    json_pack("[II]", (json_int_t)v[i].start,
						              v[i].end == MBX_SPAN_OPEN
						                  ? (json_int_t)-1
						                  : (json_int_t)v[i].end));
						int fr =
						    mbx_fetch_object(b, argv[7], v[i].id, &o, &e2);
						if (fr == MBX_PENDING) {
							pending = true;
							break;
						}
						if (fr == 1)
							json_object_set_new(objs, v[i].id,
							                    json_string(o.data));
						mbx_object_clear(&o);
					}
				}
				json_object_set_new(out, "objects", objs);
				json_object_set_new(out, "spans", spans);
				mbx_changes_clear(&ch);
			}
		} else if (strcmp(op, "fetch") == 0 && argc > 8) {
			struct mbx_object o;
			rv = mbx_fetch_object(b, argv[7], argv[8], &o, &e2);
			if (rv == 1) {
				json_object_set_new(out, "data", json_string(o.data));
				json_object_set_new(out, "etag", json_string(o.etag ? o.etag : ""));
			}
			mbx_object_clear(&o);
		} else if ((strcmp(op, "add") == 0 && argc > 9) ||
		           (strcmp(op, "change") == 0 && argc > 10) ||
		           (strcmp(op, "remove") == 0 && argc > 9)) {
			char cursor[MBX_CURSOR_MAX + 1], id[MBX_ID_MAX + 1] = "";
			size_t len = 0;
			bool add = strcmp(op, "add") == 0, change = strcmp(op, "change") == 0;
			const char *cur = argv[add ? 9 : change ? 10 : 9];
			snprintf(cursor, sizeof(cursor), "%s", strcmp(cur, "-") ? cur : "");
			if (strcmp(op, "remove") == 0) {
				rv = mbx_remove(b, argv[7], argv[8], false, cursor, &e2);
			} else {
				char *data = slurp(argv[add ? 8 : 9], &len);
				struct mbx_object o = {0};
				int fr = add ? 1 : mbx_fetch_object(b, argv[7], argv[8], &o, &e2);
				rv = fr != 1 ? fr
				             : mbx_put_object(b, argv[7], add ? NULL : argv[8],
				                              o.etag, data, len, "uid", cursor,
				                              add ? id : NULL, &e2);
				mbx_object_clear(&o);
				free(data);
			}
			if (rv == 1) {
				if (add)
					json_object_set_new(out, "id", json_string(id));
				json_object_set_new(out, "cursor", json_string(cursor));
			}
		} else {
			fprintf(stderr, "davmbx-driver: bad op\n");
			return 2;
		}
		pending = pending || rv == MBX_PENDING;
		if (rv == -1)
			json_object_set_new(out, "error", json_string(e2 ? e2 : "?"));
		if (pending)
			wait_for(b);
	} while (pending && runs < 20);
	json_object_set_new(out, "rv", json_integer(rv));
	mbx_end(b);
	mbx_destroy(&b);
done:;
	char *line = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	puts(line);
	free(line);
	printf("{\"runs\": %d}\n", runs);
	json_decref(out);
	mbx_dav_shared_free(&shared);
	curl_loop_free(&cl);
	event_base_free(base);
	abq_store_close(&store);
	return 0;
}
