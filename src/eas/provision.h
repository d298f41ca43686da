/*
 * provision.h: the EASProvisionDoc abqd writes into a Provision answer
 * (MS-ASPROV 2.2.2.28), from an effective provisioning policy
 * (lib/provision.h).
 */
#ifndef ABQ_EAS_PROVISION_H
#define ABQ_EAS_PROVISION_H

#include "eas/wbxml.h"
#include "lib/provision.h"

/*
 * Add Provision:EASProvisionDoc under data (a Provision:Data element) with
 * the elements protocol version eas_version (121 for 12.1, 161 for 16.1)
 * has, in the order Exchange writes them, each with its effective value;
 * a value of none and an empty application list are left out, as is
 * AllowNonProvisionableDevices (the server's business, never sent). Returns
 * the EASProvisionDoc element, or NULL when data is NULL or a builder call
 * failed (recorded in the document, see wbxml.h).
 */
struct wbxml_node *eas_policy_add_doc(struct wbxml_node *data, const struct abq_prov_policy *p,
                                      int eas_version);

#endif
