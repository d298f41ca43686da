/*
 * view.h: a running daemon's in-memory view of the registry.
 *
 * The daemon decides from memory: the policy (attributes, entries, compiled
 * rules) and the recorded state of every known device. The view is loaded once,
 * then kept current by reading the store's change log: abq_view_refresh() reads
 * the rows written since the last one it saw, rebuilds the policy when an
 * attribute, rule or entry changed, and re-reads only the devices named. An
 * abqctl change, or another abqd node sharing the store, is thus seen at the
 * next refresh (the daemon refreshes at least once a second).
 *
 * A view is used by one thread at a time; the policy it hands out is
 * immutable and stays valid until the next refresh that rebuilds it.
 */
#ifndef ABQ_VIEW_H
#define ABQ_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "store/store.h"

/* A known device's recorded decision. */
struct abq_view_device {
	enum abq_state state;
	enum abq_reason reason;
	int64_t rule_id;
	int64_t first_seen;
	enum abq_wipe wipe;     /* a requested wipe is served before any state */
	bool wipe_account_only; /* AccountOnlyRemoteWipe */
	/*
	 * The version of the provisioning policy the device must have
	 * acknowledged (abq_prov_version of its account's effective policy), or
	 * 0 when that policy imposes nothing.
	 */
	uint32_t policy;
};
/* The view's record of a device record. */
void abq_view_device_of(const struct abq_device *d, struct abq_view_device *out);

struct abq_view;

/*
 * Load the whole view from the store. Returns NULL with *errmsg_r (a new
 * string) on failure.
 */
struct abq_view *abq_view_load(struct abq_store *s, const char *default_domain, char **errmsg_r);
void abq_view_free(struct abq_view **v);

/*
 * Called by abq_view_refresh for each device whose record changed (state NONE
 * when the record is gone), and for each device whose provisioning policy
 * version changed with an attribute, after the view has been updated.
 */
typedef void abq_view_device_cb(void *arg, const char *account, const char *device_id,
                                const struct abq_view_device *now);

/*
 * Apply the store's changes since the last load or refresh. *changes_r (may be
 * NULL) gets the number of change-log rows applied. Returns 0, or -1 with
 * *errmsg_r; on failure the view keeps its previous state and the same changes
 * are tried again at the next refresh.
 */
int abq_view_refresh(struct abq_view *v, struct abq_store *s, abq_view_device_cb *cb, void *arg,
                     size_t *changes_r, char **errmsg_r);

/* The recorded decision of (account, device_id); false when the device is unknown. */
bool abq_view_device(const struct abq_view *v, const char *account, const char *device_id,
                     struct abq_view_device *out);

/* The current policy, to decide new devices and explain. */
const struct abq_policy *abq_view_policy(const struct abq_view *v);

/*
 * The effective provisioning policy of an account (account, its domain,
 * global, default), from memory: the hot path of Provision and of the policy
 * key check. Its texts stay valid until the next refresh that rebuilds the
 * policy. abqctl and the API, which hold no view, use
 * abq_registry_attr_policy() and abq_policy_provisioning() instead.
 */
void abq_view_provisioning(const struct abq_view *v, const char *account,
                           struct abq_prov_policy *out);

/*
 * The account loggers (store.h struct abq_logger), all of them, ended ones
 * too, by id; reloaded whole by a refresh that reads a logger change. The
 * array stays valid until the next refresh. abq_view_loggers_gen counts the
 * reloads, so that a caller can tell the list changed.
 */
const struct abq_logger *abq_view_loggers(const struct abq_view *v, size_t *n_r);
unsigned abq_view_loggers_gen(const struct abq_view *v);

/* How many devices the view knows; the last change-log sequence applied. */
size_t abq_view_device_count(const struct abq_view *v);
int64_t abq_view_seq(const struct abq_view *v);

#endif
