/*
 * main.c: abqd, the ActiveSync gateway daemon.
 *
 *   abqd [-c FILE] [-d] [-n]
 *
 * Reads the config (-c, else $ABQD_CONFIG, else /etc/abqd/abqd.conf), opens
 * the store, binds the listeners, drops privileges to [eas] user, and serves
 * until SIGTERM or SIGINT (drain: stop accepting, let requests in flight end
 * for up to DRAIN_SECONDS). SIGHUP reloads what can change safely: the log
 * level and the TLS certificate. -n checks the config and exits.
 */
#include <event2/event.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "daemon/gateway.h"
#include "daemon/workers.h"
#include "lib/log.h"
#include "lib/util.h"

#define DRAIN_SECONDS 10

struct daemon {
	struct event_base *base;
	struct gateway *gw;
	struct admin *admin;
	const char *config_path;
	struct event *drain_timer;
	int drain_ticks;
};

/* The command line's help, on a wrong option: exit status 2, as for any usage error. */
static void
usage(void)
{
	fprintf(stderr, "usage: abqd [-c FILE] [-d] [-n]\n"
	                "  -c FILE  config file (default: $ABQD_CONFIG, then /etc/abqd/abqd.conf)\n"
	                "  -d       stay in the foreground and log to stderr\n"
	                "  -n       check the config, print 'configuration OK' or the error\n");
	exit(2);
}

/* Log settings from the config: level and syslog facility. */
static int
log_settings(const struct abq_config *cfg, enum log_level *level, int *facility)
{
	if (log_level_parse(cfg->log_level, level) < 0) {
		fprintf(stderr, "abqd: [log] level '%s' is not error, warn, info or debug\n",
		        cfg->log_level);
		return -1;
	}
	if (log_facility_parse(cfg->log_syslog_facility, facility) < 0) {
		fprintf(stderr, "abqd: [log] syslog_facility '%s' is unknown\n",
		        cfg->log_syslog_facility);
		return -1;
	}
	return 0;
}

/* A start-up error, to the log and to stderr; err is freed. */
static void
start_failed(char *err)
{
	log_error("%s", err);
	fprintf(stderr, "abqd: %s\n", err);
	free(err);
}

/*
 * Every 100 ms while draining: stop the loop once no request is in flight, or
 * after DRAIN_SECONDS with the rest cut (a phone retries a cut request).
 */
static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	unsigned left = gateway_in_flight(d->gw);
	if (left == 0 || ++d->drain_ticks >= DRAIN_SECONDS * 10) {
		if (left > 0)
			log_warn("shutdown: %u requests still open after %d s, closing them", left,
			         DRAIN_SECONDS);
		event_base_loopbreak(d->base);
	}
}

/*
 * SIGTERM (or SIGINT): drain, so that a restart loses no request that can still
 * finish; a second signal exits at once.
 */
static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	if (d->drain_timer != NULL) {
		log_info("second signal: exiting now");
		event_base_loopbreak(d->base);
		return;
	}
	unsigned left = gateway_drain(d->gw);
	log_info("%s: draining, %u requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM", left);
	struct timeval tick = {0, 100000};
	d->drain_timer = event_new(d->base, -1, EV_PERSIST, on_drain_tick, d);
	event_add(d->drain_timer, &tick);
}

/*
 * SIGHUP: load the config again and take what can change while running (the log
 * level, the TLS certificates of the gateway and the admin listener); a config
 * that does not load leaves the running one in place.
 */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char *err = NULL;
	enum log_level level;
	int facility;
	(void)sig;
	(void)what;

	struct abq_config *cfg = abq_config_load(d->config_path, true, &err);
	if (cfg == NULL) {
		log_error("reload: %s; keeping the running configuration", err);
		free(err);
		return;
	}
	if (log_settings(cfg, &level, &facility) == 0)
		log_set_level(level);
	gateway_reload(d->gw, cfg);
	admin_reload(d->admin);
	log_info("reload: log level %s; other changes need a restart", cfg->log_level);
	abq_config_free(&cfg);
}

/*
 * Without a mail domain or a default domain, an account without "@" has no
 * address: UserInformation and the quarantine alert's To give the bare
 * account name, which phones show as a broken address. Said once, at start
 * (before the workers fork).
 */
static void
warn_no_domain(const struct abq_config *cfg)
{
	if (cfg->smtp_domain == NULL && cfg->eas_default_domain == NULL)
		log_warn("neither [smtp] domain nor [eas] default_domain is set: an account "
		         "without a domain is given its bare name as its address (UserInformation, "
		         "the quarantine alert); set [smtp] domain or [eas] default_domain");
}

/*
 * abqd: read the config (-n: only check it), then either supervise the prefork
 * workers or run the gateway (and, on the site's process, the admin listener)
 * on one event loop, with privileges dropped after binding, until SIGTERM has
 * drained it.
 */
int
main(int argc, char **argv)
{
	const char *cpath = NULL;
	bool foreground = false, check = false;
	int ch, rv = 1;
	char *err = NULL;
	struct daemon d = {0};
	struct event *sterm = NULL, *sint = NULL, *shup = NULL;
	enum log_level level;
	int facility;

	/*
	 * No glibc fastbins: every request allocates a few blocks over 1 KiB,
	 * and each such allocation first consolidates the fastbins (profiled
	 * at a few percent of the proxy path). The per-thread cache still
	 * serves the small blocks without locking.
	 */
	mallopt(M_MXFAST, 0);

	while ((ch = getopt(argc, argv, "c:dnhV")) != -1) {
		switch (ch) {
		case 'c':
			cpath = optarg;
			break;
		case 'd':
			foreground = true;
			break;
		case 'n':
			check = true;
			break;
		case 'V':
			printf("abqd %s\n", ABQ_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	d.config_path = abq_config_path(cpath);
	struct abq_config *cfg = abq_config_load(d.config_path, true, &err);
	if (cfg == NULL) {
		fprintf(stderr, "abqd: %s\n", err);
		free(err);
		return 1;
	}
	if (log_settings(cfg, &level, &facility) < 0)
		goto out;
	if (check) {
		printf("configuration OK\n");
		rv = 0;
		goto out;
	}
	log_init("abqd", foreground, level, facility);
	warn_no_domain(cfg);
	signal(SIGPIPE, SIG_IGN);
	/* [eas] workers > 1: the main process supervises, each worker goes on below. */
	const struct gateway_worker *wk = NULL;
	int nworkers = workers_count(cfg);
	if (nworkers > 1) {
		rv = workers_run(cfg, d.config_path, nworkers, &wk);
		if (wk == NULL)
			goto out;
		rv = 1;
	}
	/*
	 * The epoll changelist folds the add/delete of a write event made within
	 * one loop pass into a single epoll_ctl (or none): a proxied request
	 * enables and disables writing on two sockets every time.
	 */
	struct event_config *ecfg = event_config_new();
	if (ecfg != NULL)
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	d.base = ecfg != NULL ? event_base_new_with_config(ecfg) : NULL;
	if (ecfg != NULL)
		event_config_free(ecfg);
	if (d.base == NULL) {
		log_error("cannot start the event loop");
		goto out;
	}
	/*
	 * Signals first: from the moment a listener is bound, a SIGTERM must be a
	 * drain, never the default death (a supervisor may send it as soon as the
	 * port answers). The events run once the loop does.
	 */
	sterm = evsignal_new(d.base, SIGTERM, on_term, &d);
	sint = evsignal_new(d.base, SIGINT, on_term, &d);
	shup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	event_add(sterm, NULL);
	if (wk == NULL) /* workers: the main process turns Ctrl-C into SIGTERM */
		event_add(sint, NULL);
	event_add(shup, NULL);
	if ((d.gw = gateway_new_worker(d.base, cfg, wk, &err)) == NULL) {
		start_failed(err);
		goto out;
	}
	/*
	 * The admin listener binds now too (a low port needs root) and starts after
	 * the drop. Prefork: in worker 0 only, bound there (its event base must not
	 * be shared across a fork), already without privileges.
	 */
	if ((wk == NULL || wk->site_tasks) && (d.admin = admin_new(cfg, &err)) == NULL) {
		start_failed(err);
		goto out;
	}
	if (wk == NULL && cfg->eas_user != NULL &&
	    drop_privileges(cfg->eas_user, gateway_store_files(d.gw)) < 0)
		goto out;
	if (d.admin != NULL && admin_start(d.admin, &err) < 0) {
		start_failed(err);
		goto out;
	}
	if (wk != NULL)
		workers_ready(wk);
	else
		log_info("abqd %s started; upstream %s", ABQ_VERSION, cfg->upstream_url);
	event_base_dispatch(d.base);
	log_info("abqd stopping");
	rv = 0;
out:
	if (sterm != NULL)
		event_free(sterm);
	if (sint != NULL)
		event_free(sint);
	if (shup != NULL)
		event_free(shup);
	if (d.drain_timer != NULL)
		event_free(d.drain_timer);
	admin_free(&d.admin);
	gateway_free(&d.gw);
	if (d.base != NULL) {
		/* Let libevent finish freeing the connections' bufferevents. */
		event_base_loop(d.base, EVLOOP_NONBLOCK);
		event_base_free(d.base);
	}
	abq_config_free(&cfg);
	return rv;
}
