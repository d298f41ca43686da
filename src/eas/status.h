/*
 * status.h: answering a command with a status instead of serving it.
 *
 * A device that may not sync gets the answer product.md sets out: at EAS 14.0
 * and later, HTTP 200 with the command's root element holding only Status
 * (129 DeviceIsBlockedForThisUser, 177 MaximumDevicesReached, 130
 * AccessDenied); for commands whose response has no root Status, for requests
 * without a version, and at 12.1 and earlier, HTTP 403 with no body.
 */
#ifndef ABQ_EAS_STATUS_H
#define ABQ_EAS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "eas/request.h"

#define EAS_STATUS_ACCESS_DENIED      130
#define EAS_STATUS_DEVICE_BLOCKED     129
#define EAS_STATUS_MAX_DEVICES        177
#define EAS_STATUS_REMOTE_WIPE        140 /* RemoteWipeRequested: Provision now */
#define EAS_STATUS_NOT_PROVISIONED    142 /* DeviceNotProvisioned */
#define EAS_STATUS_INVALID_POLICY_KEY 144 /* InvalidPolicyKey: provision again */

/*
 * The answer to cmd at protocol version (e.g. "14.1", NULL: none) carrying
 * status. Sets *http_status; for 200, *body_r is a malloc'd WBXML document and
 * *len_r its length; for 403, *body_r is NULL and *len_r 0. Returns 0, or -1
 * if the document could not be built (then the caller answers 403).
 */
int eas_status_response(enum eas_cmd cmd, const char *version, int status, int *http_status,
                        uint8_t **body_r, size_t *len_r);

/* The root element ("FolderHierarchy:FolderSync") of cmd's response, or NULL if none carries
 * Status. */
const char *eas_status_root(enum eas_cmd cmd);

/* The version as a number (141 for "14.1"); 0 when absent or unreadable. */
int eas_version_number(const char *version);

#endif
