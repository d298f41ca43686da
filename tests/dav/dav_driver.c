/*
 * dav_driver.c: the CalDAV/CardDAV client (src/dav/dav.c) on a libevent
 * loop, one operation per run, for test_dav_live.py against a real server.
 *
 *   dav-driver [options] discover caldav|carddav
 *   dav-driver [options] list COLLECTION
 *   dav-driver [options] sync COLLECTION [TOKEN]
 *   dav-driver [options] multiget caldav|carddav COLLECTION HREF...
 *   dav-driver [options] put HREF CONTENT-TYPE FILE [ETAG]   (no ETAG: a new resource)
 *   dav-driver [options] delete HREF [ETAG]
 *   dav-driver [options] cancel COLLECTION
 *
 * Options: --url URL (required), --user USER (required); the password is
 * read from the environment variable DAV_PASSWORD (never the command line);
 * --ca FILE, --insecure, --timeout-ms N, --max-data N, --max-body N,
 * --multiget-max N, --plain-http.
 *
 * Prints the result as one JSON object on stdout: status (dav_status_name),
 * http, error, requests, and what the operation gives (discovery, items,
 * removed, sync_token, more, etag); a multiget's data are printed whole.
 * Exit 0 when the driver ran (whatever the status), 2 when the operation
 * could not start (the reason on stderr), 1 on a usage error.
 *
 * "cancel" checks the lifetimes: it starts a discovery, a listing and a
 * sync of COLLECTION at once, cancels the sync at once; whichever of the
 * other two calls back first cancels the other from its callback and frees
 * the account there; then it starts
 * three more on a new account and frees it with all of them in flight; the
 * loop runs on for half a second. It prints {"callbacks": 1,
 * "freed_in_callback": true, "in_flight_at_free": 3, "transfers": 0} when
 * all is well: any other callback is a bug, and under valgrind or ASan
 * nothing may leak.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/dav.h"
#include "net/curl_loop.h"

static struct event_base *base;
static json_t *out;
static int callbacks;

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A string that may hold bytes that are not UTF-8: as is when it is UTF-8. */
static json_t *
data_json(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);

	return j ? j : json_string("(not UTF-8)");
}

static void
on_done(void *arg, const struct dav_result *r)
{
	json_t *o = json_object();

	callbacks++;
	json_object_set_new(o, "status", json_string(dav_status_name(r->status)));
	json_object_set_new(o, "http", json_integer(r->http));
	json_object_set_new(o, "error", json_string(r->error));
	json_object_set_new(o, "requests", json_integer((json_int_t)r->requests));
	if (r->discovery != NULL) {
		const struct dav_discovery *d = r->discovery;
		json_t *dj = json_object(), *cj = json_array();
		json_object_set_new(dj, "principal", str_or_null(d->principal));
		json_object_set_new(dj, "home", str_or_null(d->home));
		json_object_set_new(dj, "well_known", json_boolean(d->well_known));
		for (size_t i = 0; i < d->n_colls; i++) {
			const struct dav_collection *c = &d->colls[i];
			json_t *comps = json_array();
			if (c->components & DAVCOMP_VEVENT)
				json_array_append_new(comps, json_string("VEVENT"));
			if (c->components & DAVCOMP_VTODO)
				json_array_append_new(comps, json_string("VTODO"));
			if (c->components & DAVCOMP_VJOURNAL)
				json_array_append_new(comps, json_string("VJOURNAL"));
			if (c->components & DAVCOMP_OTHER)
				json_array_append_new(comps, json_string("other"));
			json_array_append_new(
			    cj,
			    json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:b}", "href",
			              c->href, "kind",
			              c->kind == DAV_CALDAV ? "calendar" : "addressbook",
			              "components", comps, "name", str_or_null(c->name), "color",
			              str_or_null(c->color), "ctag", str_or_null(c->ctag),
			              "sync_token", str_or_null(c->sync_token), "can_sync",
			              c->can_sync, "writable", c->writable));
		}
		json_object_set_new(dj, "collections", cj);
		json_object_set_new(o, "discovery", dj);
	}
	if (r->items != NULL || r->n_items > 0) {
		json_t *items = json_array();
		for (size_t i = 0; i < r->n_items; i++) {
			const struct dav_item *it = &r->items[i];
			json_t *ij = json_pack("{s:s, s:o, s:i, s:b}", "href", it->href, "etag",
			                       str_or_null(it->etag), "status", it->status,
			                       "oversize", it->oversize);
			if (it->data != NULL) {
				json_object_set_new(ij, "data", data_json(it->data, it->data_len));
				if (strlen(it->data) != it->data_len)
					json_object_set_new(ij, "data_has_nul", json_true());
			}
			json_array_append_new(items, ij);
		}
		json_object_set_new(o, "items", items);
	} else {
		json_object_set_new(o, "items", json_array());
	}
	json_t *removed = json_array();
	for (size_t i = 0; i < r->n_removed; i++)
		json_array_append_new(removed, json_string(r->removed[i]));
	json_object_set_new(o, "removed", removed);
	json_object_set_new(o, "sync_token", str_or_null(r->sync_token));
	json_object_set_new(o, "more", json_boolean(r->more));
	json_object_set_new(o, "etag", str_or_null(r->etag));
	out = o;
	if (arg == NULL)
		event_base_loopbreak(base);
}

static char *
read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(p);
		return NULL;
	}
	fclose(f);
	*len_r = (size_t)n;
	return p;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: dav-driver --url URL --user USER [options] "
	        "discover|list|sync|multiget|put|delete|cancel ARGS (DAV_PASSWORD in env)\n");
	exit(1);
}

/* cancel: the callbacks of the lifetime check (see the head comment). */
struct cancel_state {
	struct dav_account *a;
	struct dav_op *disc, *list;
};

/*
 * Whichever of the discovery and the listing ends first cancels the other
 * from its callback (its handle is still valid: it has not called back),
 * then frees the account.
 */
static void
cancel_disc_done(void *arg, const struct dav_result *r)
{
	struct cancel_state *cs = arg;

	callbacks++;
	cs->disc = NULL; /* gone once this returns */
	dav_op_cancel(&cs->list);
	dav_account_free(&cs->a);
}

static void
cancel_list_done(void *arg, const struct dav_result *r)
{
	struct cancel_state *cs = arg;

	callbacks++;
	cs->list = NULL;
	dav_op_cancel(&cs->disc);
	dav_account_free(&cs->a);
}

static void
never(void *arg, const struct dav_result *r)
{
	callbacks += 1000; /* a cancelled operation called back */
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

int
main(int argc, char **argv)
{
	struct dav_conf conf = {0};
	struct curl_loop *cl;
	struct dav_account *a;
	struct dav_op *op = NULL;
	const char *err = NULL, *cmd;
	char *body = NULL;
	int i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--insecure") == 0)
			conf.tls_insecure = true;
		else if (strcmp(o, "--plain-http") == 0)
			conf.plain_http = true;
		else if (i + 1 >= argc)
			usage();
		else if (strcmp(o, "--url") == 0)
			conf.url = argv[++i];
		else if (strcmp(o, "--user") == 0)
			conf.user = argv[++i];
		else if (strcmp(o, "--ca") == 0)
			conf.ca_file = argv[++i];
		else if (strcmp(o, "--timeout-ms") == 0)
			conf.timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(o, "--max-data") == 0)
			conf.limits.max_data = strtoul(argv[++i], NULL, 10);
		else if (strcmp(o, "--max-body") == 0)
			conf.limits.max_body = strtoul(argv[++i], NULL, 10);
		else if (strcmp(o, "--multiget-max") == 0)
			conf.multiget_max = strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	conf.password = getenv("DAV_PASSWORD");
	if (i >= argc || conf.url == NULL || conf.user == NULL || conf.password == NULL)
		usage();
	cmd = argv[i++];
	base = event_base_new();
	if ((cl = curl_loop_new(base, &err)) == NULL) {
		fprintf(stderr, "dav-driver: %s\n", err);
		return 1;
	}
	if ((a = dav_account_new(cl, &conf, &err)) == NULL) {
		fprintf(stderr, "dav-driver: %s\n", err);
		curl_loop_free(&cl);
		event_base_free(base);
		return 2;
	}
	if (strcmp(cmd, "discover") == 0 && i + 1 == argc) {
		op = dav_discover(a, strcmp(argv[i], "carddav") == 0 ? DAV_CARDDAV : DAV_CALDAV,
		                  on_done, NULL, &err);
	} else if (strcmp(cmd, "list") == 0 && i + 1 == argc) {
		op = dav_list(a, argv[i], on_done, NULL, &err);
	} else if (strcmp(cmd, "sync") == 0 && (i + 1 == argc || i + 2 == argc)) {
		op = dav_sync(a, argv[i], i + 2 == argc ? argv[i + 1] : NULL, on_done, NULL, &err);
	} else if (strcmp(cmd, "multiget") == 0 && i + 2 < argc) {
		op = dav_multiget(a, strcmp(argv[i], "carddav") == 0 ? DAV_CARDDAV : DAV_CALDAV,
		                  argv[i + 1], (const char *const *)argv + i + 2,
		                  (size_t)(argc - i - 2), on_done, NULL, &err);
	} else if (strcmp(cmd, "put") == 0 && (i + 3 == argc || i + 4 == argc)) {
		size_t len;
		if ((body = read_file(argv[i + 2], &len)) == NULL) {
			fprintf(stderr, "dav-driver: cannot read %s\n", argv[i + 2]);
			return 1;
		}
		op = dav_put(a, argv[i], argv[i + 1], body, len, i + 4 == argc ? argv[i + 3] : NULL,
		             on_done, NULL, &err);
		free(body); /* copied */
	} else if (strcmp(cmd, "delete") == 0 && (i + 1 == argc || i + 2 == argc)) {
		op =
		    dav_delete(a, argv[i], i + 2 == argc ? argv[i + 1] : NULL, on_done, NULL, &err);
	} else if (strcmp(cmd, "cancel") == 0 && i + 1 == argc) {
		struct cancel_state cs = {a, NULL, NULL};
		struct dav_op *sync;
		struct timeval half = {0, 500000};
		const char *hrefs[] = {argv[i]};
		cs.disc = dav_discover(a, DAV_CALDAV, cancel_disc_done, &cs, &err);
		cs.list = dav_list(a, argv[i], cancel_list_done, &cs, &err);
		sync = dav_sync(a, argv[i], NULL, never, NULL, &err);
		if (cs.disc == NULL || cs.list == NULL || sync == NULL) {
			fprintf(stderr, "dav-driver: %s\n", err);
			return 2;
		}
		dav_op_cancel(&sync);
		while (cs.a != NULL && event_base_loop(base, EVLOOP_ONCE) == 0)
			;
		/* Again, the account freed with everything in flight. */
		a = dav_account_new(cl, &conf, &err);
		if (dav_discover(a, DAV_CARDDAV, never, NULL, &err) == NULL ||
		    dav_list(a, argv[i], never, NULL, &err) == NULL ||
		    dav_multiget(a, DAV_CALDAV, argv[i], hrefs, 1, never, NULL, &err) == NULL) {
			fprintf(stderr, "dav-driver: %s\n", err);
			return 2;
		}
		/* Freed before the loop runs again: no answer can have come. */
		size_t left = dav_account_ops(a);
		dav_account_free(&a);
		struct event *t = evtimer_new(base, on_timeout, NULL);
		evtimer_add(t, &half);
		event_base_dispatch(base);
		event_free(t);
		printf("{\"callbacks\": %d, \"freed_in_callback\": %s, \"in_flight_at_free\": %zu, "
		       "\"transfers\": %u}\n",
		       callbacks, cs.a == NULL ? "true" : "false", left, curl_loop_running(cl));
		curl_loop_free(&cl);
		event_base_free(base);
		return 0;
	} else {
		usage();
	}
	if (op == NULL) {
		fprintf(stderr, "dav-driver: %s\n", err);
		dav_account_free(&a);
		curl_loop_free(&cl);
		event_base_free(base);
		return 2;
	}
	event_base_dispatch(base);
	if (out != NULL) {
		json_object_set_new(out, "callbacks", json_integer(callbacks));
		json_object_set_new(out, "ops_left", json_integer((json_int_t)dav_account_ops(a)));
		char *s = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
		printf("%s\n", s);
		free(s);
		json_decref(out);
	}
	dav_account_free(&a);
	curl_loop_free(&cl);
	event_base_free(base);
	return out != NULL ? 0 : 1;
}
