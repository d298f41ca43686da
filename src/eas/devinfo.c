/*
 * devinfo.c: DeviceInformation out of Settings and Provision request bodies.
 */
#include <stdlib.h>
#include <string.h>

#include "eas/devinfo.h"
#include "eas/wbxml.h"
#include "lib/util.h"

/* Request bodies carrying DeviceInformation are small: refuse big or deep ones. */
static const struct wbxml_limits devinfo_limits = {
    .max_input = 256 * 1024,
    .max_depth = 16,
    .max_nodes = 2000,
};

void
eas_devinfo_clear(struct eas_devinfo *d)
{
	free(d->model);
	free(d->imei);
	free(d->friendly_name);
	free(d->os);
	free(d->os_language);
	free(d->phone_number);
	free(d->user_agent);
	free(d->mobile_operator);
	memset(d, 0, sizeof(*d));
}

/* A copy of the text of set/Settings:NAME, or NULL. */
static char *
field(const struct wbxml_node *set, const char *name)
{
	const char *t = wbxml_find_text(set, name);
	return t != NULL ? xstrdup(t) : NULL;
}

int
eas_devinfo_parse(const uint8_t *body, size_t len, struct eas_devinfo *out, char **errmsg_r)
{
	struct wbxml_doc *doc = NULL;
	struct wbxml_error err;

	memset(out, 0, sizeof(*out));
	if (wbxml_decode(body, len, &devinfo_limits, &doc, &err) != WBXML_OK) {
		*errmsg_r = xstrdup(err.msg);
		return -1;
	}
	const struct wbxml_node *set =
	    wbxml_find(wbxml_doc_root(doc), "Settings:DeviceInformation/Settings:Set");
	if (set == NULL) {
		wbxml_doc_free(&doc);
		return 0;
	}
	out->model = field(set, "Settings:Model");
	out->imei = field(set, "Settings:IMEI");
	out->friendly_name = field(set, "Settings:FriendlyName");
	out->os = field(set, "Settings:OS");
	out->os_language = field(set, "Settings:OSLanguage");
	out->phone_number = field(set, "Settings:PhoneNumber");
	out->user_agent = field(set, "Settings:UserAgent");
	out->mobile_operator = field(set, "Settings:MobileOperator");
	wbxml_doc_free(&doc);
	return 1;
}
