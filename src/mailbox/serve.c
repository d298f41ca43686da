/*
 * serve.c: the quarantine mailbox served from the store (serve.h).
 *
 * One call per request, on the caller's store handle: read the device's
 * record, build its quarantine mailbox (mailbox_quarantine.c) with the alert
 * an administrator's template or the built-in text says, and run the command
 * layer (commands.c) in one transaction, its sync state read and written
 * through the accessors below, so that what a command wrote is durable
 * before the phone sees the answer.
 */
#include <stdlib.h>

#include "lib/log.h"
#include "lib/provision.h"
#include "lib/util.h"
#include "mailbox/mailbox.h"
#include "mailbox/serve.h"
#include "notice/templates.h"

/* The command layer's sync-state reader, on the caller's store handle. */
static int
state_get(void *arg, const char *account, const char *device_id, const char *collection,
          char **blob_r, size_t *len_r)
{
	struct abq_store *s = arg;
	const char *err;
	void *v = NULL;
	int rv = abq_store_syncstate_get(s, account, device_id, collection, &v, len_r, NULL, &err);
	if (rv < 0)
		log_warn("store: sync state of %s/%s: %s", device_id, account, err);
	*blob_r = v;
	return rv;
}

/* The command layer's sync-state writer. */
static int
state_put(void *arg, const char *account, const char *device_id, const char *collection,
          const char *blob, size_t len)
{
	struct abq_store *s = arg;
	const char *err;
	if (abq_store_syncstate_put(s, account, device_id, collection, blob, len, abq_now(), &err) <
	    0) {
		log_warn("store: saving sync state of %s/%s: %s", device_id, account, err);
		return -1;
	}
	return 0;
}

/* The command layer's sync-state remover (collection NULL: all of the device's). */
static int
state_del(void *arg, const char *account, const char *device_id, const char *collection)
{
	struct abq_store *s = arg;
	const char *err;
	size_t n;
	if (abq_store_syncstate_delete(s, account, device_id, collection, &n, &err) < 0) {
		log_warn("store: deleting sync state of %s/%s: %s", device_id, account, err);
		return -1;
	}
	return 0;
}

/*
 * The quarantine template an administrator stored for device d, if any, in
 * the notices' lookup order (notice_template_find). Fills *t and returns
 * true, or returns false (nothing stored, or a store error, which is logged:
 * the built-in alert is used).
 */
static bool
stored_template(struct abq_store *s, const char *default_domain, const struct abq_device *d,
                struct abq_template *t)
{
	const char *err;
	int rv = notice_template_find(s, account_domain(d->account, default_domain),
	                              "user-quarantined", d->os_language, t, &err);
	if (rv < 0)
		log_warn("store: quarantine template: %s", err);
	return rv == 1;
}

/* The device a Provision is answered for, and the version of its policy. */
struct provisioned {
	const char *account, *device_id;
	uint32_t version;
};

/* mbx_serve_in's policy_key: the keys of lib/provision.h for this device and version. */
static uint32_t
device_policy_key(void *arg, bool final)
{
	const struct provisioned *pv = arg;

	return abq_prov_device_key(pv->version, pv->account, pv->device_id, !final);
}

/* Answer one request from the device's quarantine mailbox; see serve.h. */
int
mbx_quarantine_serve(struct abq_store *s, const char *default_domain,
                     const struct mbx_quarantine_req *r, struct mbx_serve_out *out, char **errmsg_r)
{
	struct abq_device d = {0};
	const char *err;
	int rv;
	int found = abq_store_device_get(s, r->account, r->device_id, &d, &err);
	if (found != 1) {
		*errmsg_r = xasprintf("device %s/%s: %s", r->device_id, r->account,
		                      found < 0 ? err : "not in the registry");
		return -1;
	}
	struct notice_facts facts = {
	    .account = d.account,
	    .email = r->email,
	    .device_id = d.device_id,
	    .device_type = d.device_type,
	    .model = d.model,
	    .os = d.os,
	    .user_agent = d.user_agent,
	    .imei = d.imei,
	    .eas_version = d.eas_version,
	    .state = abq_state_name(d.state),
	    .contact = r->contact,
	};
	struct mbx_quarantine_config cfg = {.sender = r->sender, .date = d.first_seen};
	/*
	 * The alert of a quarantined device says what the user's mail says: a
	 * template an administrator stored for the quarantine notice (domain, then
	 * global; the device's locale, then its language) replaces the mailbox's
	 * built-in text. Discovery keeps its neutral text.
	 */
	struct abq_template t = {0};
	if (d.state == ABQ_STATE_QUARANTINED && stored_template(s, default_domain, &d, &t)) {
		if (t.subject != NULL)
			cfg.subject = t.subject;
		if (t.body_plain != NULL)
			cfg.body_plain = t.body_plain;
		if (t.body_html != NULL)
			cfg.body_html = t.body_html;
		if (t.from != NULL)
			cfg.sender = t.from;
	}
	struct mbx_backend *box = mbx_quarantine_new(&cfg, &facts);
	struct mbx_serve_in in = {
	    .cmd = r->cmd,
	    .version = r->version,
	    .body = r->body,
	    .body_len = r->body_len,
	    .account = d.account,
	    .device_id = d.device_id,
	    .email = r->email,
	    .backend = box,
	    .state = {.arg = s, .get = state_get, .put = state_put, .del = state_del},
	    .now = abq_now(),
	    .wipe = d.wipe != ABQ_WIPE_REQUESTED ? 0
	            : d.wipe_account_only        ? 2
	                                         : 1,
	};
	/*
	 * A device that is not in quarantine asks abqd for its policy (the gateway
	 * sends only its Provision here): the account's effective provisioning
	 * policy, with the keys every node derives alike. The quarantine mailbox
	 * keeps the policy that imposes nothing.
	 */
	struct provisioned pv = {d.account, d.device_id, 0};
	if (r->cmd == EAS_CMD_PROVISION && r->policy != NULL && d.state != ABQ_STATE_QUARANTINED &&
	    d.state != ABQ_STATE_DISCOVERY && abq_prov_imposes(r->policy)) {
		pv.version = abq_prov_version(r->policy);
		in.policy = r->policy;
		in.policy_key = device_policy_key;
		in.policy_key_arg = &pv;
	}
	/* One transaction: the sync state a command writes is durable before its answer. */
	if (abq_store_begin(s, &err) < 0) {
		rv = -1;
		*errmsg_r = xasprintf("store: %s", err);
	} else {
		rv = mbx_serve(&in, out) < 0 ? -1 : 0;
		if (rv < 0) {
			abq_store_rollback(s);
			*errmsg_r = xstrdup(out->detail ? out->detail : "mailbox failed");
		} else if (abq_store_commit(s, &err) < 0) {
			abq_store_rollback(s);
			rv = -1;
			*errmsg_r = xasprintf("store: %s", err);
		}
	}
	mbx_destroy(&box);
	abq_template_clear(&t);
	abq_device_clear(&d);
	return rv;
}
