/*
 * digest.h: the administrators' digest of newly quarantined devices.
 *
 * Since when: the created time of the newest notice of kind "admin-digest"
 * in the outbox (any state), so it survives restarts without a store op of
 * its own; 0 when no digest was ever queued. A digest queued at time T lists
 * the history rows what='state' whose new value starts with "Quarantined"
 * and whose time is in [since, T), and of those only the devices that are
 * still Quarantined when it is built (one line per device and account); the
 * next digest starts at T, so a quarantine written in the second T is in the
 * next one. Nothing new: nothing is queued and "since" does not move.
 *
 * Recipients: a device's domain's abqAdmins, else the global abqAdmins, else
 * [smtp] admins; devices are grouped by their recipients and each group gets
 * one notice per address, all queued in one transaction.
 */
#ifndef ABQ_NOTICE_DIGEST_H
#define ABQ_NOTICE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct notice_digest_conf {
	const char *from;          /* the sender */
	const char *const *admins; /* [smtp] admins */
	size_t n_admins;
	const char *default_domain; /* a bare account's domain; may be NULL */
};

/* The global abqNotificationsInterval in seconds (its default when unset). */
int64_t notice_digest_interval(struct abq_store *s);

/*
 * Queue the digest when one is due at now: *next_r gets the time of the
 * next check. Returns the number of notices queued (0: none due or nothing
 * new), or -1 with *errstr_r.
 */
int notice_digest_run(struct abq_store *s, const struct notice_digest_conf *dc, int64_t now,
                      int64_t *next_r, const char **errstr_r);

#endif
