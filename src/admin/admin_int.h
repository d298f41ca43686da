/*
 * admin_int.h: what the admin side's files share (server.c: the listener,
 * sessions and authentication; api.c: the endpoints of docs/api.md).
 */
#ifndef ABQ_ADMIN_INT_H
#define ABQ_ADMIN_INT_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/registry.h"

/* One admin request while it is handled. */
struct admin_req {
	struct admin *a;
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *method_name;
	char *path; /* the path as sent (percent-encoded), for the log */
	char **seg; /* the decoded path segments after the leading "/" */
	size_t nseg;
	struct evkeyvalq query; /* decoded query parameters */
	const char *who;        /* the administrator, NULL before authentication */
	int status;             /* the answer's status, for the log */
};

/* What api.c needs from the admin side. */
struct abq_store *admin_store(struct admin *a);
const struct abq_config *admin_config(struct admin *a);
const struct abq_notice_conf *admin_notices(struct admin *a);

/* Answers (each sends the reply; the json_t is consumed). */
void admin_reply_json(struct admin_req *r, int status, json_t *body);
void admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A registry result that is not 0: 409 (refused, rc 1) or 503 (store, rc -1); frees errmsg. */
void admin_reply_registry(struct admin_req *r, int rc, char *errmsg);
/* 405 with Allow. */
void admin_reply_method(struct admin_req *r, const char *allow);

/*
 * The request body as a JSON object: NULL after answering 400 when it is not
 * one. An empty body reads as {} when empty_ok.
 */
json_t *admin_body(struct admin_req *r, bool empty_ok);
/* A query parameter, or NULL. */
const char *admin_query(struct admin_req *r, const char *name);

/* Every /api/v1/ path but login, logout, session and events (api.c). */
void api_dispatch(struct admin_req *r);

#endif
