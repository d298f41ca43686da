/*
 * upprov.c: the Provision abqd runs with the upstream for a device (see
 * upprov.h).
 */
#include "eas/upprov.h"

#include <stdlib.h>
#include <string.h>

#include "eas/status.h"
#include "eas/wbxml.h"
#include "lib/util.h"

/* Provision answers hold a policy document: small, and never deep. */
static const struct wbxml_limits answer_limits = {
    .max_input = 64 * 1024,
    .max_depth = 16,
    .max_nodes = 2000,
};

/* A decimal number text of at most 10 digits as an integer, or -1. */
static long long
number(const char *t)
{
	long long v = 0;

	if (t == NULL || t[0] == '\0' || strlen(t) > 10)
		return -1;
	for (const char *p = t; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* The text of the direct child of n named name (any code page), or NULL. */
static const char *
child_text(const struct wbxml_node *n, const char *name)
{
	for (const struct wbxml_node *c = n != NULL ? n->first_child : NULL; c != NULL; c = c->next)
		if (c->name != NULL && strcmp(c->name, name) == 0)
			return wbxml_text(c);
	return NULL;
}

enum eas_upprov_kind
eas_upprov_demand(int http_status, const uint8_t *body, size_t len, int *status_r)
{
	struct wbxml_limits lim = {
	    .max_input = EAS_UPPROV_DEMAND_MAX, .max_depth = 4, .max_nodes = 16};
	struct wbxml_doc *doc = NULL;
	enum eas_upprov_kind kind = EAS_UPPROV_NONE;
	long long st;

	if (status_r != NULL)
		*status_r = 0;
	if (http_status == 449) {
		if (status_r != NULL)
			*status_r = 449;
		return EAS_UPPROV_DEMAND;
	}
	if (http_status != 200 || body == NULL || len == 0 || len >= EAS_UPPROV_DEMAND_MAX ||
	    wbxml_decode(body, len, &lim, &doc, NULL) != WBXML_OK)
		return EAS_UPPROV_NONE;
	st = number(child_text(wbxml_doc_root(doc), "Status"));
	if (st == EAS_STATUS_NOT_PROVISIONED || st == 143 || st == EAS_STATUS_INVALID_POLICY_KEY)
		kind = EAS_UPPROV_DEMAND;
	else if (st == EAS_STATUS_REMOTE_WIPE)
		kind = EAS_UPPROV_WIPE;
	if (kind != EAS_UPPROV_NONE && status_r != NULL)
		*status_r = (int)st;
	wbxml_doc_free(&doc);
	return kind;
}

int
eas_upprov_request(const char *version, const char *temp_key, const char *user_agent,
                   uint8_t **body_r, size_t *len_r)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *r = wbxml_addn_root(doc, "Provision:Provision"), *p;
	int rv;

	/* MS-ASPROV 2.2.2.52: DeviceInformation goes with phase 1 from 14.1 on. */
	if (temp_key == NULL && user_agent != NULL && eas_version_number(version) >= 141)
		wbxml_addn_text(
		    wbxml_addn(wbxml_addn(r, "Settings:DeviceInformation"), "Settings:Set"),
		    "Settings:UserAgent", user_agent);
	p = wbxml_addn(wbxml_addn(r, "Provision:Policies"), "Provision:Policy");
	wbxml_addn_text(p, "Provision:PolicyType", EAS_UPPROV_POLICY_TYPE);
	if (temp_key != NULL) {
		wbxml_addn_text(p, "Provision:PolicyKey", temp_key);
		wbxml_addn_text(p, "Provision:Status", "1");
	}
	rv = wbxml_encode(doc, body_r, len_r, NULL) == WBXML_OK ? 0 : -1;
	wbxml_doc_free(&doc);
	return rv;
}

int
eas_upprov_answer(const uint8_t *body, size_t len, struct eas_upprov_answer *a)
{
	struct wbxml_doc *doc = NULL;
	const struct wbxml_node *root, *policy;
	long long v;
	int rv = -1;

	memset(a, 0, sizeof(*a));
	if (body == NULL || wbxml_decode(body, len, &answer_limits, &doc, NULL) != WBXML_OK)
		return -1;
	root = wbxml_doc_root(doc);
	if (root == NULL || root->page != WBXML_PAGE_PROVISION || root->name == NULL ||
	    strcmp(root->name, "Provision") != 0)
		goto out;
	a->status =
	    (int)(number(child_text(root, "Status")) > 0 ? number(child_text(root, "Status")) : 0);
	a->wipe = wbxml_find(root, "Provision:RemoteWipe") != NULL ||
	          wbxml_find(root, "Provision:AccountOnlyRemoteWipe") != NULL;
	policy = wbxml_find(root, "Provision:Policies/Provision:Policy");
	if (policy != NULL) {
		v = number(child_text(policy, "Status"));
		a->policy_status = v > 0 ? (int)v : 0;
		const char *k = child_text(policy, "PolicyKey");
		if (k != NULL) {
			v = number(k);
			if (v < 0 || v > 0xffffffffLL)
				goto out;
			a->has_key = true;
			a->key = (uint32_t)v;
		}
	}
	rv = 0;
out:
	wbxml_doc_free(&doc);
	return rv;
}
