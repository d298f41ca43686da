/*
 * provision.c: the EASProvisionDoc of a provisioning policy.
 *
 * The table of lib/provision.h gives every key its token on the Provision
 * code page and the first version that has it: MS-ASPROV 2.2.2 gives 12.0
 * only the password and attachment settings, and the rest (storage card,
 * camera, ... and even RequireDeviceEncryption) came with 12.1; a 12.0 client
 * may refuse what it does not know. 14.0 to 16.1 have the 12.1 set.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eas/provision.h"

/*
 * One application list: a container with one ApplicationName or Hash per
 * item of the canonical "a, b, c". Nothing for an empty list.
 */
static void
add_list(struct wbxml_node *doc, const struct abq_prov_def *def, const char *text)
{
	char item[300];
	unsigned item_page, item_token;
	char qname[64];

	if (text == NULL || text[0] == '\0')
		return;
	snprintf(qname, sizeof(qname), "Provision:%s", def->values);
	if (wbxml_lookup(qname, WBXML_PAGE_PROVISION, &item_page, &item_token) != 0)
		return;
	struct wbxml_node *list = wbxml_add(doc, WBXML_PAGE_PROVISION, def->token);
	for (const char *p = text; *p != '\0';) {
		const char *comma = strstr(p, ", ");
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len > 0 && len < sizeof(item)) {
			memcpy(item, p, len);
			item[len] = '\0';
			wbxml_add_text(list, item_page, item_token, item);
		}
		p += len + (comma != NULL ? 2 : 0);
	}
}

/* Add the EASProvisionDoc of policy p for protocol version eas_version. */
struct wbxml_node *
eas_policy_add_doc(struct wbxml_node *data, const struct abq_prov_policy *p, int eas_version)
{
	struct wbxml_node *doc = wbxml_addn(data, "Provision:EASProvisionDoc");
	char num[24];

	if (doc == NULL)
		return NULL;
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		const struct abq_prov_def *def = abq_prov_by_id((enum abq_prov_id)i);
		if (def->since == 0 || def->token == 0 || eas_version < def->since)
			continue;
		if (def->type == ABQ_PROV_LIST) {
			add_list(doc, def, p->text[i]);
			continue;
		}
		if (p->num[i] == ABQ_PROV_NONE)
			continue;
		snprintf(num, sizeof(num), "%" PRId64, p->num[i]);
		if (wbxml_add_text(doc, WBXML_PAGE_PROVISION, def->token, num) == NULL)
			return NULL;
	}
	return doc;
}
