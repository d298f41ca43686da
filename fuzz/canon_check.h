/*
 * canon_check.h: the invariants of the one canonical request, checked by the
 * request fuzz targets over every request eas_request_parse accepts; any
 * broken one aborts (a crash for libFuzzer, a failure for the replay test).
 *
 * - path is canonical: starts with '/', no "//", no "." or ".." segment, only
 *   visible ASCII, no '%', '\', ';';
 * - fwd_path holds only the bytes a segment carries literally and upper-case
 *   %-escapes; fwd_query only unreserved bytes, '&', '=' and upper-case
 *   %-escapes, or (a base64 query) the base64 alphabet and its padding;
 * - the forwarded target (fwd_path, '?', fwd_query) parsed again with the same
 *   method and headers is accepted and gives the same canonical path, kind,
 *   forwarded forms and parameters, User being the credentials' user name
 *   when both were there.
 */
#ifndef ABQ_FUZZ_CANON_CHECK_H
#define ABQ_FUZZ_CANON_CHECK_H

#include "eas/request.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort with a line saying which invariant broke. */
static void
canon_fail(const char *what, const char *s)
{
	fprintf(stderr, "canon invariant broken: %s: \"%s\"\n", what, s != NULL ? s : "(null)");
	abort();
}

/* True if a and b are both NULL or equal strings. */
static bool
canon_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* True if s is made of bytes from set and upper-case %-escapes. */
static bool
canon_escaped_only(const char *s, const char *set)
{
	for (; *s != '\0'; s++) {
		if (*s == '%') {
			if (strchr("0123456789ABCDEF", s[1]) == NULL || s[1] == '\0' ||
			    strchr("0123456789ABCDEF", s[2]) == NULL || s[2] == '\0')
				return false;
			s += 2;
		} else if (strchr(set, *s) == NULL) {
			return false;
		}
	}
	return true;
}

#define CANON_UNRESERVED "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

#define CANON_B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

/* Check every invariant of the accepted request a (see the top of the file). */
static void
canon_check(const struct eas_request_config *cfg, const char *method, const struct eas_header *hdr,
            size_t nh, const struct eas_request *a)
{
	struct eas_request *b = NULL;
	char err[EAS_REQ_ERRBUF], *target;
	size_t n;
	const char *p = a->path;

	if (p == NULL || p[0] != '/' || a->fwd_path == NULL)
		canon_fail("path", p);
	for (size_t i = 0; p[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '\\' || ch == ';')
			canon_fail("byte in path", p);
		if (ch == '/' &&
		    (p[i + 1] == '/' ||
		     (p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == '\0')) ||
		     (p[i + 1] == '.' && p[i + 2] == '.' && (p[i + 3] == '/' || p[i + 3] == '\0'))))
			canon_fail("segment in path", p);
	}
	if (!canon_escaped_only(a->fwd_path, CANON_UNRESERVED "!$&'()*+,=:@/"))
		canon_fail("fwd_path", a->fwd_path);
	if (a->path_kind == EAS_PATH_OTHER && a->fwd_query != NULL)
		canon_fail("fwd_query on another path", a->fwd_query);
	if (a->fwd_query != NULL &&
	    !(a->path_kind == EAS_PATH_EAS && a->query_form == EAS_QUERY_BASE64
	          ? strspn(a->fwd_query, CANON_B64) == strlen(a->fwd_query)
	          : canon_escaped_only(a->fwd_query, CANON_UNRESERVED "&=")))
		canon_fail("fwd_query", a->fwd_query);
	if (a->path_kind == EAS_PATH_EAS && a->fwd_query == NULL &&
	    (a->cmd != EAS_CMD_NONE || a->device_id != NULL))
		canon_fail("no fwd_query for a command", a->path);

	n = strlen(a->fwd_path) + (a->fwd_query != NULL ? strlen(a->fwd_query) : 0) + 2;
	target = malloc(n);
	if (target == NULL)
		abort();
	snprintf(target, n, "%s%s%s", a->fwd_path, a->fwd_query != NULL ? "?" : "",
	         a->fwd_query != NULL ? a->fwd_query : "");
	if (eas_request_parse(cfg, method, target, hdr, nh, &b, err, sizeof(err)) != EAS_REQ_OK) {
		fprintf(stderr, "canon: second parse: %s\n", err);
		canon_fail("forwarded target refused", target);
	}
	if (strcmp(a->path, b->path) != 0 || a->path_kind != b->path_kind ||
	    (a->path_kind == EAS_PATH_PASSTHROUGH &&
	     a->passthrough_index != b->passthrough_index) ||
	    strcmp(a->fwd_path, b->fwd_path) != 0)
		canon_fail("path not kept", target);
	if (!canon_same(a->fwd_query, b->fwd_query))
		canon_fail("fwd_query not a fixed point", target);
	if (a->path_kind == EAS_PATH_EAS) {
		const char *user = a->user != NULL && a->auth_user != NULL ? a->auth_user : a->user;

		if (a->cmd != b->cmd || (a->fwd_query != NULL && a->query_form != b->query_form) ||
		    !canon_same(user, b->user) || !canon_same(a->device_id, b->device_id) ||
		    !canon_same(a->device_type, b->device_type) ||
		    !canon_same(a->attachment_name, b->attachment_name) ||
		    !canon_same(a->collection_id, b->collection_id) ||
		    !canon_same(a->item_id, b->item_id) || !canon_same(a->long_id, b->long_id) ||
		    !canon_same(a->occurrence, b->occurrence) ||
		    !canon_same(a->protocol_version, b->protocol_version) ||
		    a->has_policy_key != b->has_policy_key || a->policy_key != b->policy_key ||
		    a->has_locale != b->has_locale || a->locale != b->locale ||
		    a->save_in_sent != b->save_in_sent ||
		    a->accept_multipart != b->accept_multipart || b->n_extra != 0 ||
		    !canon_same(a->account, b->account))
			canon_fail("parameters not kept", target);
	}
	eas_request_free(&b);
	free(target);
}

#endif
