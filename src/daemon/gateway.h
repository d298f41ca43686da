/*
 * gateway.h: the ActiveSync front door.
 *
 * For every request: understand it (MS-ASHTTP), authenticate the user, identify
 * the device, decide from the device's recorded state (a new device, or one
 * whose facts changed, is recorded by the store thread first, durably), then
 * forward it to the upstream (Allowed), answer it with the command's own
 * failure status (Blocked: 129, or 177 for the device limit), or serve it from
 * the quarantine mailbox (Quarantined and Discovery). One log line per request.
 */
#ifndef ABQ_DAEMON_GATEWAY_H
#define ABQ_DAEMON_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

struct event_base;
struct gateway;
struct tls_ctx;

/*
 * Build the gateway on base from cfg: open the store (starting the store
 * thread), the upstream client, the authenticator, and bind every [eas] listen
 * address. NULL with *errmsg_r (a new string) on failure.
 */
struct gateway *gateway_new(struct event_base *base, const struct abq_config *cfg, char **errmsg_r);

/*
 * What a worker process of a prefork abqd (workers.c) brings: the main process
 * bound the listeners (one socket per [eas] listen entry, in the config's
 * order; the gateway owns them) and loaded the TLS context (borrowed, NULL
 * when no listener is TLS) before dropping privileges. site_tasks: this
 * worker runs the work done once per site (the outbox sender and the
 * administrators' digest).
 */
struct gateway_worker {
	int index;
	int count; /* the workers in all */
	const int *listen_fds;
	struct tls_ctx *tls;
	bool site_tasks;
};
/* gateway_new for a worker; w NULL is gateway_new. */
struct gateway *gateway_new_worker(struct event_base *base, const struct abq_config *cfg,
                                   const struct gateway_worker *w, char **errmsg_r);
/* The store files, for chown before privileges are dropped (NULL-terminated). */
const char *const *gateway_store_files(struct gateway *gw);
/* SIGHUP: take what can change safely from a freshly loaded config. */
void gateway_reload(struct gateway *gw, const struct abq_config *cfg);
/*
 * SIGTERM: stop accepting; returns the number of requests still in flight.
 * Held long polls are ended at once (the phone reconnects elsewhere).
 */
unsigned gateway_drain(struct gateway *gw);
unsigned gateway_in_flight(const struct gateway *gw);
void gateway_free(struct gateway **gw);

#endif
