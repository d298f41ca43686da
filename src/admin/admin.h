/*
 * admin.h: the admin listener ([admin] listen): the JSON API of docs/api.md,
 * the web console's files, /healthz, /metrics and the change events.
 *
 * It runs on a thread of its own with its own event loop (libevent's evhttp)
 * and its own store handle, so that a slow password hash or a long listing
 * never holds up the ActiveSync side. Changes go through the registry
 * operations in store transactions; the EAS side learns of them from the
 * change log as it does of abqctl's.
 */
#ifndef ABQ_ADMIN_H
#define ABQ_ADMIN_H

#include "config/config.h"

struct admin;

/*
 * Bind every [admin] listen address (before the privilege drop, so that a
 * low port works) and load the [tls] certificate for tls: addresses. cfg is
 * borrowed and must outlive the admin side. NULL with *errmsg_r (new string).
 */
struct admin *admin_new(const struct abq_config *cfg, char **errmsg_r);
/*
 * Open the admin side's store handle and start its thread (after the
 * privilege drop, so that the files it creates belong to the daemon's user).
 * 0, or -1 with *errmsg_r.
 */
int admin_start(struct admin *a, char **errmsg_r);
/* SIGHUP: the admin thread reloads the [tls] certificate for new connections. */
void admin_reload(struct admin *a);
/* Stop the thread (closing every admin connection), free, set *a to NULL. */
void admin_free(struct admin **a);

#endif
