/*
 * upprov.h: provisioning with the upstream on a device's behalf (MS-ASPROV
 * 3.1.5.1), without I/O.
 *
 * Some upstreams (Z-Push, grommunio) answer every command with a
 * provisioning demand until the device has provisioned with them: HTTP 449
 * (EAS 12.x), or HTTP 200 with the command's root Status 142
 * (DeviceNotProvisioned), 143 (PolicyRefresh) or 144 (InvalidPolicyKey) from
 * 14.0 (MS-ASCMD global status codes). The gateway recognises such an answer
 * (eas_upprov_demand), runs both phases of Provision with the upstream
 * itself (eas_upprov_request, eas_upprov_answer) and keeps the final key
 * for the device's later requests. A remote wipe (Status 140, a Provision
 * answer with RemoteWipe) is reported, never acknowledged here.
 */
#ifndef ABQ_EAS_UPPROV_H
#define ABQ_EAS_UPPROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest body read as a possible demand: a root and its Status. */
#define EAS_UPPROV_DEMAND_MAX 256

#define EAS_UPPROV_POLICY_TYPE "MS-EAS-Provisioning-WBXML"

/* What an upstream's answer to a command says about provisioning. */
enum eas_upprov_kind {
	EAS_UPPROV_NONE = 0, /* an answer like any other */
	EAS_UPPROV_DEMAND,   /* provision first: 449, or Status 142, 143, 144 */
	EAS_UPPROV_WIPE,     /* Status 140 (RemoteWipeRequested) */
};

/*
 * What the upstream's answer (HTTP status, body[0..len)) to a command other
 * than Provision says: 449 is a demand whatever its body; a 200 whose body
 * is a WBXML document under EAS_UPPROV_DEMAND_MAX bytes with a Status child
 * of its root is a demand for 142, 143 or 144 and a wipe for 140. *status_r
 * (may be NULL) gets that Status, or the HTTP status for 449.
 */
enum eas_upprov_kind eas_upprov_demand(int http_status, const uint8_t *body, size_t len,
                                       int *status_r);

/*
 * The body of abqd's Provision to the upstream: phase 1 (temp_key NULL), the
 * policy of type MS-EAS-Provisioning-WBXML asked for, from 14.1 (version
 * "14.1", NULL: 12.1) with settings:DeviceInformation/Set/UserAgent when
 * user_agent is not NULL; phase 2 acknowledging temp_key with Status 1.
 * Returns 0 with *body_r (malloc'd) and *len_r, or -1.
 */
int eas_upprov_request(const char *version, const char *temp_key, const char *user_agent,
                       uint8_t **body_r, size_t *len_r);

/* The upstream's answer to a Provision. */
struct eas_upprov_answer {
	int status;        /* Provision's Status, 0 when absent */
	int policy_status; /* Policies/Policy/Status, 0 when absent */
	bool has_key;
	uint32_t key; /* Policies/Policy/PolicyKey */
	bool wipe;    /* RemoteWipe or AccountOnlyRemoteWipe: never acknowledged by abqd */
};

/*
 * Read the upstream's Provision answer body[0..len). Returns 0, or -1 when
 * it is not a Provision document (or a PolicyKey is not a 32-bit number).
 */
int eas_upprov_answer(const uint8_t *body, size_t len, struct eas_upprov_answer *a);

#endif
