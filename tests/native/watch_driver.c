/*
 * watch-driver: the push watcher (src/native/watch.c) on a libevent loop,
 * driven line by line on stdin by tests/native/test_watch_live.py.
 *
 *   watch-driver URL CA_FILE MAX_CONNECTIONS SWEEP_SECONDS LINGER_SECONDS
 *
 * Commands (one per line):
 *   sub ID ACCOUNT PASSWORD MBOX[,MBOX...]   subscribe (the account is the user)
 *   unsub ID                                 unsubscribe
 *   state ACCOUNT                            print "state ACCOUNT conns=N watching=0|1
 *                                            notify=0|1 watchers=N"
 *   quit
 * Events printed: "changed ID MBOX TIME" (TIME: CLOCK_REALTIME seconds),
 * "error ID REASON MSG", "subscribed ID", "unsubscribed ID".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "native/watch.h"

#define MAX_SUBS 64

struct sub {
	int id;
	struct watch_sub *h;
};

static struct event_base *base;
static struct watch_registry *reg;
static struct sub subs[MAX_SUBS];
static char line[8192];
static size_t linelen;

/* Now as CLOCK_REALTIME seconds (compared with the test's time.time()). */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A watched mailbox changed. */
static void
on_changed(void *arg, const char *mailbox)
{
	struct sub *s = arg;

	printf("changed %d %s %.3f\n", s->id, mailbox, now());
	fflush(stdout);
}

/* The account cannot be watched. */
static void
on_error(void *arg, enum imap_error e, const char *msg)
{
	struct sub *s = arg;

	printf("error %d %s %s\n", s->id, e == IMAP_ERR_AUTH ? "auth" : imap_error_str(e), msg);
	fflush(stdout);
}

/* One command line. */
static void
command(char *l)
{
	char *argv[8];
	int argc = 0;
	char *save = NULL;

	for (char *t = strtok_r(l, " ", &save); t != NULL && argc < 8;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	if (argc == 0)
		return;
	if (strcmp(argv[0], "quit") == 0) {
		event_base_loopbreak(base);
	} else if (strcmp(argv[0], "sub") == 0 && argc == 5) {
		const char *names[64];
		size_t n = 0;
		char *save2 = NULL;
		int id = atoi(argv[1]);
		struct watch_cbs cbs = {on_changed, on_error};
		const char *err = NULL;

		if (id <= 0 || id >= MAX_SUBS || subs[id].h != NULL) {
			printf("bad id %d\n", id);
			fflush(stdout);
			return;
		}
		for (char *t = strtok_r(argv[4], ",", &save2); t != NULL && n < 64;
		     t = strtok_r(NULL, ",", &save2))
			names[n++] = t;
		subs[id].id = id;
		subs[id].h = watch_subscribe(reg, argv[2], argv[2], argv[3], names, n, &cbs,
		                             &subs[id], &err);
		if (subs[id].h == NULL)
			printf("sub failed %d %s\n", id, err);
		else
			printf("subscribed %d\n", id);
	} else if (strcmp(argv[0], "unsub") == 0 && argc == 2) {
		int id = atoi(argv[1]);

		if (id > 0 && id < MAX_SUBS && subs[id].h != NULL) {
			watch_unsubscribe(subs[id].h);
			subs[id].h = NULL;
		}
		printf("unsubscribed %d\n", id);
	} else if (strcmp(argv[0], "state") == 0 && argc == 2) {
		printf("state %s conns=%u watching=%d notify=%d watchers=%u\n", argv[1],
		       watch_connections(reg, argv[1]), watch_is_watching(reg, argv[1]),
		       watch_uses_notify(reg, argv[1]), watch_watchers(reg));
	} else {
		printf("bad command\n");
	}
	fflush(stdout);
}

/* Lines on stdin. */
static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)what;
	(void)arg;
	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return;
		event_base_loopbreak(base);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			line[linelen] = '\0';
			command(line);
			linelen = 0;
		} else if (linelen + 1 < sizeof(line)) {
			line[linelen++] = buf[i];
		}
	}
}

int
main(int argc, char **argv)
{
	struct watch_conf conf = {0};
	struct event *ev;
	const char *err = NULL;

	if (argc != 6) {
		fprintf(stderr, "usage: %s URL CA_FILE MAX_CONNECTIONS SWEEP LINGER\n", argv[0]);
		return 2;
	}
	log_init("watch-driver", true, getenv("WATCH_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, 0);
	conf.url = argv[1];
	conf.ca_file = argv[2];
	conf.max_connections = (unsigned)atoi(argv[3]);
	conf.sweep_interval = (unsigned)atoi(argv[4]);
	conf.linger = (unsigned)atoi(argv[5]);
	conf.backoff_min = 250;
	conf.backoff_max = 4000;
	base = event_base_new();
	reg = watch_registry_new(base, &conf, &err);
	if (reg == NULL) {
		fprintf(stderr, "watch_registry_new: %s\n", err);
		return 1;
	}
	ev = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin, NULL);
	event_add(ev, NULL);
	event_base_dispatch(base);
	for (int i = 0; i < MAX_SUBS; i++)
		if (subs[i].h != NULL)
			watch_unsubscribe(subs[i].h);
	watch_registry_free(reg);
	event_free(ev);
	/* Let libevent finish freeing the bufferevents (their deferred callbacks). */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return 0;
}
