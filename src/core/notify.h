/*
 * notify.h: the user's notice, queued in the outbox inside the transaction of
 * the state change that causes it (registry.c's record_state).
 */
#ifndef ABQ_CORE_NOTIFY_H
#define ABQ_CORE_NOTIFY_H

#include "core/registry.h"

/*
 * Device d (its new state already set) went from old to its state. When
 * c->notices is set and the change calls for a notice (Quarantined, Blocked,
 * or Allowed with abqNotifyUserOnAllow TRUE in p), render it and add it to
 * the outbox through c->store. Returns 0 (also when nothing is due), or -1
 * with *errmsg_r (new string).
 */
int abq_notify_state(const struct abq_ctx *c, const struct abq_policy *p,
                     const struct abq_device *d, enum abq_state old, char **errmsg_r);

/*
 * A device confirmed its remote wipe: the user-wiped notice to its user and
 * admin-wiped to the administrators (the domain's abqAdmins, else the global
 * one, else [smtp] admins). Nothing without notices or in a dry run.
 */
int abq_notify_wiped(const struct abq_ctx *c, const struct abq_policy *p,
                     const struct abq_device *d, char **errmsg_r);

struct abq_config;
/*
 * The notice settings abqctl, the admin API and abqd all act with: NULL when
 * [smtp] from is not set (no notices are queued); else nc filled from cfg
 * (borrowing its strings) and returned, with *admins_r the joined [smtp]
 * admins that nc->admins points to (the caller frees it after use).
 */
const struct abq_notice_conf *abq_notice_conf_from(const struct abq_config *cfg,
                                                   struct abq_notice_conf *nc, char **admins_r);

#endif
