/*
 * workers.h: abqd as one main process and N worker processes (prefork).
 *
 * The main process binds the [eas] listeners (one SO_REUSEPORT socket per
 * worker and address, so the kernel spreads the connections), loads the TLS
 * certificate, creates or checks the store and gives its files to [eas] user,
 * drops privileges, then forks the workers. Each worker runs the whole gateway
 * on its own event loop with its own store handle; the store's change log
 * makes them behave as one, as it does for abqctl. The main process opens no
 * connection itself: it restarts a worker that dies (with a growing delay),
 * forwards SIGTERM and SIGHUP to every worker, and exits 0 when they have all
 * ended after SIGTERM.
 *
 * Worker 0 also runs what must happen once per site (the outbox sender and
 * the administrators' digest; the admin listener belongs there too): a
 * restarted worker 0 takes it over again.
 */
#ifndef ABQ_DAEMON_WORKERS_H
#define ABQ_DAEMON_WORKERS_H

#include "config/config.h"
#include "daemon/gateway.h"

/* The number of processes [eas] workers asks for (auto: one per online CPU). */
int workers_count(const struct abq_config *cfg);

/*
 * Run the prefork abqd with n >= 2 workers. In the main process it returns the
 * exit status when everything has ended, with *worker_r NULL. In a worker it
 * returns 0 with *worker_r set: the caller builds its gateway with
 * gateway_new_worker(), registers its signal events (not SIGINT: the main
 * process turns a Ctrl-C into SIGTERM for all), calls workers_ready() and
 * runs its loop; its exit status is the worker's.
 */
int workers_run(const struct abq_config *cfg, const char *config_path, int n,
                const struct gateway_worker **worker_r);

/* A worker serves: tell the main process, and let the blocked signals in. */
void workers_ready(const struct gateway_worker *w);

/*
 * Give the store files to user, then become that user for good (both the
 * single-process and the prefork abqd call it after binding). 0 or -1, logged.
 */
int drop_privileges(const char *user, const char *const *files);

#endif
