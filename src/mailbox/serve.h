/*
 * serve.h: the quarantine mailbox served from the store.
 *
 * The wiring between the command layer (commands.h), the quarantine mailbox
 * (mailbox.h) and the store: the device's record gives the alert its facts,
 * a quarantine template an administrator stored gives it its text, and the
 * device's sync state is read and written through the same store handle, in
 * one transaction per command. The daemon's store thread (daemon/storeq.c)
 * calls it with its own handle; nothing here touches a socket or the loop.
 */
#ifndef ABQ_MAILBOX_SERVE_H
#define ABQ_MAILBOX_SERVE_H

#include <stddef.h>

#include "eas/request.h"
#include "mailbox/commands.h"
#include "store/store.h"

/* One request of a quarantined (or Discovery) device; strings borrowed. */
struct mbx_quarantine_req {
	const char *account;   /* normalised account */
	const char *device_id; /* the registry's DeviceId */
	enum eas_cmd cmd;
	const char *version; /* MS-ASProtocolVersion; NULL counts as 14.1 */
	const void *body;    /* the WBXML request body (may be empty) */
	size_t body_len;
	const char *email;   /* the user's address; NULL: the account */
	const char *sender;  /* the alert's From; NULL: the built-in one */
	const char *contact; /* whom the alert names to contact; NULL: the default */
	/*
	 * The account's effective provisioning policy (lib/provision.h), handed
	 * out by the Provision of a device that is not in quarantine, with the
	 * keys abq_prov_device_key derives; NULL, or for a quarantined device:
	 * a policy that imposes nothing.
	 */
	const struct abq_prov_policy *policy;
};

/*
 * Answer r from the quarantine mailbox of the device as recorded in s (the
 * alert of a quarantined device takes the "user-quarantined" template stored
 * for its domain or globally, in notice_template_find's order; Discovery
 * keeps its neutral text). default_domain is the domain of accounts without
 * one. The sync state the command writes is committed before this returns.
 * Returns 0 with *out filled (mbx_serve_out_clear it), or -1 with *errmsg_r
 * (a new string: the device is not recorded, the store failed, or the
 * command layer refused the request; *out may hold its note, and must be
 * cleared all the same).
 */
int mbx_quarantine_serve(struct abq_store *s, const char *default_domain,
                         const struct mbx_quarantine_req *r, struct mbx_serve_out *out,
                         char **errmsg_r);

#endif
