/*
 * gateway.c: one exchange per request, from the phone's bytes to the answer.
 *
 *   on_headers (no body read yet) -> parse (400/404/405) -> credentials? (401)
 *     -> auth_check while the body waits unread
 *     -> auth_done: DENIED 401 | UNAVAILABLE, RATE_LIMITED 503 (body never read)
 *        OK: read the body
 *   on_request (body whole) -> decide:
 *        Autodiscover for ActiveSync (with [eas] public_url) -> abqd's own answer
 *          (eas/autodiscover.h; another schema or protocol -> proxy)
 *        OPTIONS and passthrough paths -> proxy
 *        POST on the EAS path -> WBXML checked (400), then:
 *              known device, same facts -> its recorded state
 *              new device or new facts  -> storeq_observe -> observed -> state
 *     -> act: Allowed -> proxy (or, with the mailbox's keys, start over / handover);
 *             Blocked -> deny (129, 177); Quarantined, Discovery -> the quarantine
 *             mailbox (serve_mailbox, on the store thread)
 *     -> respond -> exchange_finish (the log line, the metrics)
 *
 * The functions below come in that order, each section under a "----" line;
 * all of them are declared first, so that none has to come before its caller.
 *
 * The recorded decisions live in a hash map on the loop's thread, filled at
 * start and kept current by the store thread (the change log). When a device
 * stops being Allowed, the requests it holds are ended at once.
 *
 * An exchange is finished (logged and freed) exactly once: after its response
 * ended, or when the phone went away (on_abort).
 */
#include <event2/event.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "auth/auth.h"
#include "core/registry.h"
#include "core/notify.h"
#include "core/view.h"
#include "daemon/gateway.h"
#include "daemon/reqlog.h"
#include "daemon/storeq.h"
#include "eas/autodiscover.h"
#include "eas/devinfo.h"
#include "eas/request.h"
#include "eas/status.h"
#include "eas/upprov.h"
#include "eas/wbxml.h"
#include "lib/b64.h"
#include "lib/cbuf.h"
#include "lib/hmap.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/provision.h"
#include "lib/timers.h"
#include "lib/util.h"
#include "mailbox/commands.h"
#include "mailbox/mailbox.h"
#include "net/curl_loop.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "notice/sender.h"
#include "proxy/upstream.h"
#include "mailbox/mailbox_union.h"
#include "mailbox/run.h"
#include "native/imap_pool.h"
#include "native/mailbox_dav.h"
#include "native/mailbox_imap.h"
#include "native/gal_carddav.h"
#include "native/gal_ldap.h"
#include "native/parseq.h"
#include "native/submitq.h"
#include "native/watch.h"
#include "pim/pim.h"

/* Long polls are held up to 59 minutes; a little more for the upstream's answer. */
#define HELD_TIMEOUT_S 3660
#define RETRY_AFTER_S  "30"
/* Seconds one directory search may take ([upstream] gal), below request_timeout. */
#define GAL_SEARCH_TIMEOUT 15
#define WBXML_TYPE         "application/vnd.ms-sync.wbxml"
/* Phones at once (each held long poll also holds an upstream connection). */
#define MAX_CONNS 100000
/* How often a busy device's last-seen time is written. */
#define TOUCH_INTERVAL_S 60
/* Seconds between the notice sender's outbox scans (it is also kicked). */
#define NOTICE_INTERVAL_S 2
/* The upstream's FolderSync answer held whole at a handover (a few KiB in practice). */
#define HANDOVER_MAX (1024 * 1024)
/* The upstream's answer to abqd's Provision (a policy: a few hundred bytes in practice). */
#define UPPROV_ANSWER_MAX (64 * 1024)
/*
 * Native mode: IMAP logins in flight at once, the pool's and the watchers'
 * together (imap_client.h, the gate). Past it a connection waits its turn
 * instead of starting a login the server may not finish in connect_timeout:
 * measured with 1,000 accounts reconnecting at once (bench/native_held.sh),
 * without a gate most watchers' logins timed out and retried for minutes.
 */
#define IMAP_LOGINS_IN_FLIGHT 32

/* What the loop knows of a device. */
struct devstate {
	enum abq_state state;
	enum abq_reason reason;
	int64_t rule_id;
	bool facts_known; /* device_type and user_agent below are what was recorded */
	bool wipe;        /* a remote wipe is pending: every request gets the demand */
	/*
	 * The PolicyKey an Allowed device must send (abq_prov_device_key of its
	 * account's policy version); 0: the policy imposes nothing, and Provision
	 * goes to the upstream as any command.
	 */
	uint32_t policy_key;
	/*
	 * The upstream's own PolicyKey for this device (up_keyed): abqd
	 * provisioned with the upstream on the device's behalf when it demanded
	 * it (upprov_start), and puts this key on every request it forwards for
	 * the device. In memory only: after a restart (or in another worker) the
	 * upstream's next demand provisions again.
	 */
	bool up_keyed;
	uint32_t up_key;
	/* The upstream asked for a remote wipe: the phone's Provision goes to it, untouched. */
	bool up_wipe;
	int64_t touched; /* when its last-seen time was last queued */
	char *device_type;
	char *user_agent;
};

struct exchange;

/*
 * A handover (handover() below): the upstream's answer to the FolderSync 0
 * abqd sent for a phone leaving the quarantine mailbox, held until it is
 * whole. The headers are the upstream's, hop-by-hop ones left out.
 */
struct handover {
	int status;
	char *reason;
	char **headers; /* name, value, ..., NULL */
	int64_t content_length;
	struct cbuf body; /* at most HANDOVER_MAX */
};

/*
 * Provisioning with the upstream for one exchange (upprov_* below): the
 * upstream's answer held while it may be a provisioning demand, then abqd's
 * own Provision (phase 1, phase 2) and its answer.
 */
struct upprov {
	int phase;     /* 0: the phone's request; 1, 2: abqd's Provision phase in flight */
	bool holding;  /* the answer to the phone's request is held (a possible demand) */
	bool retried;  /* the phone's request went again, with the upstream's new key */
	bool handover; /* the request was a handover's FolderSync: retried as one */
	int status;    /* the held answer's */
	char *reason;
	char **headers; /* name, value, ..., NULL; hop-by-hop ones left out */
	int64_t content_length;
	struct cbuf body;  /* the held answer (under EAS_UPPROV_DEMAND_MAX) */
	struct cbuf pbody; /* the answer to abqd's Provision phase (UPPROV_ANSWER_MAX) */
	int demand;        /* 449, or the Status (142, 143, 144), for the log */
	int phase_status;  /* the HTTP status of a phase's answer */
	uint32_t temp_key; /* phase 1's key, acknowledged in phase 2 */
};

struct gateway {
	struct event_base *base;
	/* Kept for reuse (util.h): exchanges, and parsed requests (rcfg.blocks). */
	struct blk_cache exchange_blocks, ereq_blocks;
	struct http_server *srv;
	struct tls_ctx *tls;
	bool tls_borrowed;   /* the main process's (prefork): not freed here */
	struct upstream *up; /* proxy mode; NULL in native mode */
	/* Native mode ([upstream] url imap:// or imaps://): the accounts' IMAP connections. */
	bool native;
	struct imap_pool *pool;
	struct watch_registry *watch; /* native mode: push for held Pings */
	struct imap_gate *imap_gate;  /* native mode: IMAP logins in flight (pool and watch) */
	/* Native mode with [upstream] submission: SendMail & co. on their own thread. */
	struct submitq *submitq;
	/* native mode: fetched messages parsed (GMime) off the loop */
	struct parseq *parseq;
	struct gal_ldap *gal;        /* native mode's address list ([upstream] gal), or NULL */
	struct gal_carddav *gal_dav; /* the same from a CardDAV address book, or NULL */
	/* native mode's contacts, calendars and tasks ([upstream] caldav, carddav), or NULLs */
	struct curl_loop *dav_cl;
	struct mbx_dav_shared *dav_shared;
	struct mbx_dav_conf dav_conf;
	struct mbx_dav_store dav_store;
	const struct mbx_pim_codec *pim; /* the conversions of contacts, calendars and tasks */
	int dav_poll_s;                  /* [upstream] dav_poll_interval */
	char *submission_url, *submission_ca;
	struct mbx_async_state native_state; /* the sync state through the store thread */
	struct auth *auth;
	struct storeq *sq;
	struct eas_request_config rcfg;
	char **passthrough;
	size_t npassthrough;
	/*
	 * The configured entries among them; with public_url and none of them
	 * covering Autodiscover, one more ("/autodiscover") for abqd's own answers.
	 */
	size_t npass_conf;
	char *public_url; /* [eas] public_url: Autodiscover answered here; NULL: passed through */
	char *upstream_hostport; /* for a passthrough request's target */
	struct abq_hmap devices; /* "account/DEVICEID" -> struct devstate * */
	LIST_HEAD(, exchange) exchanges;
	unsigned in_flight;
	bool draining;
	/* The store's initial report is over: later state changes are decisions. */
	bool loaded;
	char *default_domain;          /* of bare accounts */
	char *mail_domain;             /* [smtp] domain: the address of a bare account */
	char *sender;                  /* [smtp] from: the quarantine alert's sender */
	struct notice_sender *notices; /* the outbox sender; NULL: notices off */
	int64_t store_grace;           /* [store] grace: seconds served from memory */
	struct event *trim_timer;      /* gives freed memory back (on_trim) */
	unsigned trim_last;            /* in_flight at the previous tick */
	struct reqlog *reqlog;         /* the account loggers (reqlog.h) */
};

/* What became of a request (the outcomes table below gives its word and metric). */
enum outcome {
	OUT_NONE, /* not decided yet: "-" in the log line */
	OUT_PROXIED,
	OUT_MAILBOX,
	OUT_MAILBOX_HELD,
	OUT_BLOCKED,
	OUT_LIMIT,
	OUT_UNAUTHORIZED,
	OUT_RATE_LIMITED,
	OUT_BAD_REQUEST,
	OUT_BAD_WBXML,
	OUT_NOT_FOUND,
	OUT_BAD_METHOD,
	OUT_START_OVER,
	OUT_WIPE,
	OUT_PROVISION,
	OUT_HANDOVER,
	OUT_CUT,
	OUT_CLIENT_GONE,
	OUT_CLIENT_GONE_WHILE_HELD,
	OUT_UPSTREAM_FAILED,
	OUT_UPSTREAM_BUSY,
	OUT_STORE_FAILED,
	OUT_STORE_LOST,
	OUT_MAILBOX_FAILED,
	OUT_AUTH_UNAVAILABLE,
	OUT_NO_DECISION,
	OUT_SHUTTING_DOWN,
	OUT_AUTODISCOVER,
	OUT_UPSTREAM_PROVISION,
	OUT_NATIVE,        /* native mode: answered from the user's IMAP mailbox */
	OUT_NATIVE_HELD,   /* ... a Ping held */
	OUT_NATIVE_FAILED, /* ... the IMAP server or the sync state failed */
	OUT_COUNT
};

struct exchange {
	struct gateway *gw;
	LIST_ENTRY(exchange) link; /* in gw->exchanges */
	struct http_request *hreq; /* NULL once the response ended */
	struct eas_request *ereq;
	struct auth_pending *ap;
	struct storeq_job *job;
	struct upstream_req *ureq;
	struct timeval t0; /* loop_time of the request's arrival */
	enum outcome outcome;
	enum abq_state decision;
	int upstream_status;
	int status;
	bool started; /* the response's status line went out */
	/*
	 * A 200 WBXML answer that may be a provisioning demand, its status line
	 * and headers kept by the upstream client (upstream_keep_headers) until
	 * its body shows what it is (up_on_body).
	 */
	bool up_deferred;
	bool up_keyed;       /* the device's upstream key (devstate.up_key) at act() */
	uint32_t up_key;     /* goes on the request forwarded (upprov_key) */
	bool held;           /* a long poll (Ping, Sync) */
	bool authed;         /* the credentials were checked and are good */
	bool body_waits;     /* on_headers left the body unread (HTTP_BODY_WAIT) */
	unsigned char autod; /* enum autod_kind: an Autodiscover request of abqd's */
	/* Counted in abqd_held_requests now: 0 no, 1 proxied, 2 mailbox. */
	signed char held_gauge;
	struct eas_devinfo info;
	bool has_info;
	char client[64]; /* the client's address, for the log line */
	/* A Ping (or hanging Sync) held by the quarantine mailbox: its answer when the wait ends.
	 */
	struct event *hold_timer;
	struct event *poll_timer; /* native mode: a held Ping's next look at its DAV folders */
	struct mbx_serve_out hold;
	int hold_total;             /* the heartbeat of the first hold (a rerun keeps its end) */
	struct watch_sub *watching; /* native mode: the held Ping's push subscription */
	struct handover *ho;        /* a handover's upstream answer, or NULL */
	struct upprov *upp;         /* provisioning with the upstream, or NULL */
	struct logcap *logcap;      /* what an account logger writes at the end, or NULL */
	struct native_run *native;  /* native mode: the command being run, or NULL */
};

/*
 * An exchange an account logger takes (reqlog.h): the request's body and the
 * answer the phone got, each kept up to REQLOG_BODY_MAX, written out when the
 * exchange ends.
 */
struct logcap {
	struct cbuf req, ans;
	size_t req_total, ans_total;
	int64_t at;
};

/* ---- forward declarations, in the order of the definitions below ---- */

static void devstate_free(void *p);
static struct devstate *dev_slot(struct gateway *gw, const char *account, const char *device_id);
static struct devstate *dev_get(const struct gateway *gw, const char *account,
                                const char *device_id);

static int on_headers(struct http_request *hreq, void *arg);
static void on_request(struct http_request *hreq, void *arg);
static void on_abort(struct http_request *hreq, void *arg);
static void on_drain(struct http_request *hreq, void *arg);

static void auth_done(void *arg, enum auth_result result, bool from_cache);

static void decide(struct exchange *x);
static void autodiscover(struct exchange *x);
static bool facts_differ(const struct devstate *s, const struct eas_request *r,
                         const struct exchange *x);
static void observed(void *arg, int rv, const struct abq_device *d, const char *errmsg);

static void act(struct exchange *x, const struct devstate *s, enum abq_state state,
                enum abq_reason reason);
static bool start_over(struct exchange *x);
static bool body_well_formed(struct exchange *x);

static void proxy(struct exchange *x);
static void proxy_via(struct exchange *x, const void *own_body, size_t own_len,
                      const struct upstream_cbs *cbs);
static bool cmd_idempotent(enum eas_cmd cmd);
static const char *join3(char *stack, size_t cap, struct sbuf *spill, const char *a,
                         const char *sep, const char *b, size_t *len);
static void up_on_response(void *arg, int status, const char *reason,
                           const struct upstream_header *headers, size_t n);
static void up_on_body(void *arg, const void *data, size_t len);
static void up_start(struct exchange *x, int status, const char *reason,
                     const struct upstream_header *headers, size_t n);
static bool up_deferred_end(struct exchange *x, const void *data, size_t len);
static void upprov_hold(struct exchange *x, int status, const char *reason,
                        const struct upstream_header *headers, size_t n);
static void up_on_done(void *arg, enum upstream_result result);

static void deny(struct exchange *x, int eas_status, enum outcome outcome);
static bool policy_demand(struct exchange *x, const struct devstate *s);
static void provision_demand(struct exchange *x, int eas_status, enum outcome outcome);

static void serve_mailbox(struct exchange *x);
static void native_serve(struct exchange *x);
static void native_options(struct exchange *x);
static void native_detach(struct exchange *x);
struct native_run;
static void native_stream_pump(struct native_run *nr);
static void native_stream_end(struct native_run *nr);
static void native_drained(struct native_run *nr);
static char *user_address(const struct gateway *gw, const char *account);
static void served(void *arg, int rv, struct mbx_serve_out *out, const char *errmsg);
static void hold_expired(evutil_socket_t fd, short what, void *arg);

static void handover(struct exchange *x);
static void handover_send(struct exchange *x, const void *body, size_t len);
static void ho_on_response(void *arg, int status, const char *reason,
                           const struct upstream_header *headers, size_t n);
static void ho_on_body(void *arg, const void *data, size_t len);
static void ho_on_done(void *arg, enum upstream_result result);
static int handover_answer(const uint8_t *in, size_t len, uint8_t **out_r, size_t *len_r,
                           const char **why);
static void handover_deletes(struct wbxml_node *changes, size_t others);
static void wbxml_copy(struct wbxml_node *parent, const struct wbxml_node *n);
static bool fh_is(const struct wbxml_node *n, const char *tag);
static void handover_free(struct handover **hop);

static bool upprov_phone_provision(struct exchange *x, const struct devstate *s);
static bool upprov_key(const struct exchange *x, uint32_t *key);
static bool upprov_drops(const struct exchange *x, const char *name, size_t len);
static char **upprov_copy_headers(const struct upstream_header *headers, size_t n);
static bool upprov_watch(struct exchange *x, int status, const char *reason,
                         const struct upstream_header *headers, size_t n);
static void upprov_body(struct exchange *x, const void *data, size_t len);
static void upprov_done(struct exchange *x, enum upstream_result result);
static bool upprov_handover_demand(struct exchange *x);
static void upprov_start(struct exchange *x);
static void upprov_send(struct exchange *x, int phase);
static void upp_on_response(void *arg, int status, const char *reason,
                            const struct upstream_header *headers, size_t n);
static void upp_on_body(void *arg, const void *data, size_t len);
static void upp_on_done(void *arg, enum upstream_result result);
static void upprov_failed(struct exchange *x, const char *why);
static void upprov_relay(struct exchange *x);
static void upprov_free(struct upprov **up);

static void respond_out(struct exchange *x, const struct mbx_serve_out *out);
static void respond(struct exchange *x, int status, const char *ctype, const void *body, size_t len,
                    const char *const *extra);
static void respond_text(struct exchange *x, int status, const char *text,
                         const char *const *extra);
static void respond_401(struct exchange *x);
static void respond_503(struct exchange *x, enum outcome why, const char *retry_after);
static void hold_begin(struct exchange *x, enum abq_held_kind kind);
static void hold_end(struct exchange *x);
static void hold_start(struct exchange *x, struct mbx_serve_out *out, enum outcome o);
static void hold_stop(struct exchange *x);
static void native_watch(struct exchange *x, const struct mbx_backend *b,
                         const struct mbx_serve_out *out);

static enum abq_req_outcome metrics_outcome(const struct exchange *x);
static long long elapsed_ms(const struct exchange *x);
static void exchange_finish(struct exchange *x);

static void on_device(void *arg, const char *account, const char *device_id,
                      const struct abq_view_device *now);
static void end_for_state(struct gateway *gw, const char *account, const char *device_id,
                          enum abq_state state, enum abq_reason reason);

static void on_loggers(void *arg, const struct abq_logger *v, size_t n);
static void logcap_begin(struct exchange *x);
static void logcap_answer(struct exchange *x, const void *data, size_t len);
static void logcap_end(struct exchange *x);

static void http_log(void *arg, enum http_log_level level, const char *msg);
static const char *metrics_cmd_name(int cmd);
static char *cidr_list(const struct abq_config *cfg);
static void on_trim(evutil_socket_t fd, short what, void *arg);

/* ---- the device map ---- */

/* Free one device's entry (the map's destructor). */
static void
devstate_free(void *p)
{
	struct devstate *d = p;
	free(d->device_type);
	free(d->user_agent);
	free(d);
}

/* The slot of (account, device_id), created empty if absent. */
static struct devstate *
dev_slot(struct gateway *gw, const char *account, const char *device_id)
{
	void **slot = abq_hmap_put(&gw->devices, account, device_id, NULL);
	if (*slot == NULL)
		*slot = xcalloc(1, sizeof(struct devstate));
	return *slot;
}

/* The recorded entry of (account, device_id), or NULL when the loop knows nothing of it. */
static struct devstate *
dev_get(const struct gateway *gw, const char *account, const char *device_id)
{
	void **slot = abq_hmap_get(&gw->devices, account, device_id);
	return slot != NULL ? *slot : NULL;
}

/* ---- a request arrives: the HTTP server's callbacks ---- */

/*
 * The header block is complete, no body byte read. Everything that needs no
 * body is settled here: the request is parsed and classified (400, 404, 405),
 * and the credentials are checked before a byte of the body is read. Without
 * usable credentials, or with refused ones, the answer comes from the headers
 * and the body is never read (the connection closes after the answer); while
 * a probe runs the body waits unread. So no request that fails
 * authentication costs abqd more than its headers.
 */
static int
on_headers(struct http_request *hreq, void *arg)
{
	struct gateway *gw = arg;
	struct exchange *x = blk_alloc(&gw->exchange_blocks);
	struct eas_header h[EAS_REQ_HEADERS_MAX];
	size_t n = 0;
	const char *name, *value;
	char err[EAS_REQ_ERRBUF];

	memset(x, 0, sizeof(*x));
	loop_time(gw->base, &x->t0);
	x->gw = gw;
	x->hreq = hreq;
	LIST_INSERT_HEAD(&gw->exchanges, x, link);
	gw->in_flight++;
	http_request_set_data(hreq, x);
	{ /* a copy for the log line, which outlives hreq */
		const char *cl = http_request_client(hreq);
		size_t cn = strnlen(cl, sizeof(x->client) - 1);

		memcpy(x->client, cl, cn);
		x->client[cn] = '\0';
	}

	for (size_t i = 0, nlen, vlen; http_request_header_at(hreq, i, &name, &value, &nlen, &vlen);
	     i++) {
		if (n == EAS_REQ_HEADERS_MAX) {
			x->outcome = OUT_BAD_REQUEST;
			respond_text(x, 400, "too many headers\n", NULL);
			return HTTP_BODY_READ;
		}
		h[n] = (struct eas_header){name, value, nlen, vlen};
		n++;
	}
	enum eas_req_err e =
	    eas_request_parse(&gw->rcfg, http_request_method(hreq), http_request_url(hreq), h, n,
	                      &x->ereq, err, sizeof(err));
	if (e != EAS_REQ_OK) {
		char safe[EAS_REQ_ERRBUF * 4];

		log_warn("addr=%s: bad request: %s", x->client, log_safe(safe, sizeof(safe), err));
		x->outcome = OUT_BAD_REQUEST;
		char *body = xasprintf("bad request: %s\n", safe);
		respond_text(x, 400, body, NULL);
		free(body);
		return HTTP_BODY_READ;
	}
	if (x->ereq->path_kind == EAS_PATH_PASSTHROUGH && gw->public_url != NULL) {
		x->autod = (unsigned char)autod_path_kind(x->ereq->path, http_request_method(hreq));
		if (x->autod != AUTOD_NONE)
			http_request_set_body_cap(hreq, AUTOD_BODY_MAX); /* 413 above it */
		else if (x->ereq->passthrough_index >= gw->npass_conf)
			x->ereq->path_kind = EAS_PATH_OTHER; /* only abqd's entry took it */
	}
	if (x->ereq->path_kind == EAS_PATH_OTHER) {
		x->outcome = OUT_NOT_FOUND;
		respond_text(x, 404, "not found\n", NULL);
		return HTTP_BODY_READ;
	}
	if (x->ereq->path_kind == EAS_PATH_EAS && x->ereq->method != EAS_METHOD_POST &&
	    x->ereq->method != EAS_METHOD_OPTIONS) {
		/* Fail closed: only POST is decided, and only OPTIONS needs no decision. */
		static const char *const allow[] = {"Allow", "OPTIONS, POST", NULL};
		x->outcome = OUT_BAD_METHOD;
		respond_text(x, 405, "method not allowed\n", allow);
		return HTTP_BODY_READ;
	}
	if (x->ereq->user_mismatch)
		log_info("user=%s dev=%s: the query names another user; the credentials win",
		         x->ereq->account, x->ereq->device_id ? x->ereq->device_id : "-");
	if (x->ereq->no_auth || x->ereq->account == NULL) {
		respond_401(x);
		return HTTP_BODY_READ;
	}
	{
		const char *authz = http_request_header(hreq, "Authorization");
		enum auth_result r;

		/* A cache answer goes on now (x may be gone after it). */
		if (auth_check_cached(gw->auth, x->ereq->auth_user, x->ereq->auth_password, authz,
		                      &r)) {
			auth_done(x, r, true);
			return HTTP_BODY_READ;
		}
		x->body_waits = true;
		x->ap = auth_check(gw->auth, x->ereq->auth_user, x->ereq->auth_password, authz,
		                   x->client, auth_done, x);
		return HTTP_BODY_WAIT;
	}
}

/* The body is whole, and the credentials were good (on_headers): decide. */
static void
on_request(struct http_request *hreq, void *arg)
{
	struct exchange *x = http_request_get_data(hreq);

	(void)arg;
	if (x == NULL || !x->authed) {
		/* on_headers answers every other request before its body is read */
		log_warn("gateway: a request reached on_request without checked credentials");
		if (x != NULL) {
			x->outcome = OUT_BAD_REQUEST;
			respond_text(x, 500, "internal error\n", NULL);
		} else {
			http_response_simple(hreq, 500, "text/plain", "internal error\n", 15);
		}
		return;
	}
	logcap_begin(x);
	decide(x);
}

/*
 * The phone went away (or the server is freed) before the answer ended: finish
 * the exchange as 499, with whatever it still waits for cancelled by
 * exchange_finish.
 */
static void
on_abort(struct http_request *hreq, void *arg)
{
	struct exchange *x = http_request_get_data(hreq);
	(void)arg;
	if (x == NULL)
		return;
	x->outcome = x->held ? OUT_CLIENT_GONE_WHILE_HELD : OUT_CLIENT_GONE;
	x->status = 499;
	x->hreq = NULL;
	exchange_finish(x);
}

/*
 * The phone's side took what was written: let a paused upstream answer flow
 * again (up_on_body paused it when the output filled up), or a native
 * streamed answer read its next window (native_stream_pump).
 */
static void
on_drain(struct http_request *hreq, void *arg)
{
	struct exchange *x = http_request_get_data(hreq);
	(void)arg;
	if (x != NULL && x->ureq != NULL)
		upstream_resume(x->ureq);
	else if (x != NULL && x->native != NULL)
		native_drained(x->native);
}

static const struct http_handler handler = {
    .on_request = on_request,
    .on_abort = on_abort,
    .on_drain = on_drain,
    .on_headers = on_headers,
};

/* ---- authenticating ---- */

/*
 * The credentials were checked (from the cache or by a probe) while the body
 * waited unread: read it now, or answer from the headers alone.
 */
static void
auth_done(void *arg, enum auth_result result, bool from_cache)
{
	struct exchange *x = arg;
	char ra[16];

	(void)from_cache;
	x->ap = NULL;
	switch (result) {
	case AUTH_OK:
		x->authed = true;
		if (x->body_waits) {
			x->body_waits = false;
			http_request_resume_body(x->hreq); /* on_request follows from the loop */
		}
		return;
	case AUTH_DENIED:
		respond_401(x);
		return;
	case AUTH_UNAVAILABLE:
	case AUTH_RATE_LIMITED:
		snprintf(ra, sizeof(ra), "%u", auth_retry_after(x->gw->auth, result));
		respond_503(
		    x, result == AUTH_RATE_LIMITED ? OUT_RATE_LIMITED : OUT_AUTH_UNAVAILABLE, ra);
		return;
	}
}

/* ---- deciding ---- */

/* Authenticated: decide and serve. */
static void
decide(struct exchange *x)
{
	struct gateway *gw = x->gw;
	const struct eas_request *r = x->ereq;

	if (x->autod != AUTOD_NONE) {
		autodiscover(x);
		return;
	}
	if (gw->native && r->path_kind == EAS_PATH_EAS && r->method == EAS_METHOD_OPTIONS) {
		native_options(x);
		return;
	}
	if (r->path_kind == EAS_PATH_PASSTHROUGH ||
	    (r->path_kind == EAS_PATH_EAS && r->method == EAS_METHOD_OPTIONS)) {
		x->outcome = OUT_PROXIED;
		proxy(x);
		return;
	}
	if (r->path_kind != EAS_PATH_EAS || r->method != EAS_METHOD_POST || r->device_id == NULL) {
		/* on_request let nothing else through; nothing undecided is forwarded */
		x->outcome = OUT_BAD_REQUEST;
		respond_text(x, 400, "bad request\n", NULL);
		return;
	}
	eas_devinfo_clear(&x->info);
	x->has_info = false;
	if (r->cmd == EAS_CMD_SETTINGS || r->cmd == EAS_CMD_PROVISION) {
		size_t blen = 0;
		const void *body = http_request_body(x->hreq, &blen);
		char *msg = NULL;
		int rv = blen > 0 ? eas_devinfo_parse(body, blen, &x->info, &msg) : 0;
		if (rv < 0) {
			log_warn("user=%s dev=%s cmd=%s: malformed WBXML body: %s", r->account,
			         r->device_id, eas_cmd_name(r->cmd), msg);
			free(msg);
			x->outcome = OUT_BAD_WBXML;
			respond_text(x, 400, "malformed WBXML body\n", NULL);
			return;
		}
		x->has_info = rv == 1;
	}
	/* Past the grace period of a lost store no decision is trusted any more. */
	int64_t down = storeq_down_since(gw->sq);
	if (down != 0) {
		struct timeval now;
		event_base_gettimeofday_cached(gw->base, &now);
		if (now.tv_sec - down >= gw->store_grace) {
			respond_503(x, OUT_STORE_LOST, RETRY_AFTER_S);
			return;
		}
	}
	struct devstate *s = dev_get(gw, r->account, r->device_id);
	if (s != NULL && s->state != ABQ_STATE_NONE && s->state != ABQ_STATE_DISCOVERY &&
	    !facts_differ(s, r, x)) {
		struct timeval tv;
		event_base_gettimeofday_cached(gw->base, &tv);
		/* Last seen is kept to the minute: one store write a minute per device. */
		if (tv.tv_sec - s->touched >= TOUCH_INTERVAL_S) {
			s->touched = tv.tv_sec;
			storeq_touch(gw->sq, r->account, r->device_id, tv.tv_sec, x->client,
			             eas_cmd_name(r->cmd));
		}
		act(x, s, s->state, s->reason);
		return;
	}
	struct abq_device seen = {
	    .account = r->account,
	    .device_id = r->device_id,
	    .device_type = r->device_type,
	    .user_agent = x->has_info && x->info.user_agent ? x->info.user_agent : r->user_agent,
	    .eas_version = r->protocol_version,
	    .last_address = x->client,
	    .last_command = (char *)eas_cmd_name(r->cmd),
	};
	if (x->has_info) {
		seen.model = x->info.model;
		seen.imei = x->info.imei;
		seen.friendly_name = x->info.friendly_name;
		seen.os = x->info.os;
		seen.os_language = x->info.os_language;
		seen.phone_number = x->info.phone_number;
		seen.mobile_operator = x->info.mobile_operator;
	}
	x->job = storeq_observe(gw->sq, &seen, observed, x);
}

/*
 * Autodiscover for ActiveSync, answered here for the authenticated account
 * (eas/autodiscover.h): nothing is recorded, no device is involved. A request
 * for another schema or protocol goes to the upstream as any passthrough
 * request does.
 */
static void
autodiscover(struct exchange *x)
{
	struct gateway *gw = x->gw;
	const struct eas_request *r = x->ereq;
	struct autod_request req;
	struct autod_answer ans;
	const char *why = NULL;
	enum autod_status st;
	size_t blen = 0;
	const void *body = http_request_body(x->hreq, &blen);
	char *address = user_address(gw, r->account);
	struct autod_ctx ctx = {
	    .account = r->account,
	    .address = address,
	    .default_domain = gw->default_domain,
	    .public_url = gw->public_url,
	    .can_forward = gw->up != NULL,
	};

	if (x->autod == AUTOD_POX)
		st = autod_parse_pox(body, blen, &req, &why);
	else
		st = autod_parse_json(r->path, r->fwd_query, &req, &why);
	int verdict = autod_answer(&req, st, &ctx, &ans);
	if (st == AUTOD_OK && !autod_address_is_own(req.email, &ctx))
		why = "an address that is not the account's";
	if (why != NULL)
		log_info("user=%s: autodiscover %s: %s%s", r->account,
		         x->autod == AUTOD_POX ? "POX" : "JSON", why,
		         verdict == AUTOD_FORWARD ? ", passed to the upstream" : "");
	autod_request_clear(&req);
	free(address);
	if (verdict == AUTOD_FORWARD) {
		x->outcome = OUT_PROXIED;
		proxy(x);
		return;
	}
	x->outcome = OUT_AUTODISCOVER;
	respond(x, ans.status, ans.content_type, ans.body, ans.len, NULL);
	free(ans.body);
}

/* Whether what this request says of the device differs from what is recorded. */
static bool
facts_differ(const struct devstate *s, const struct eas_request *r, const struct exchange *x)
{
	const char *ua = x->has_info && x->info.user_agent ? x->info.user_agent : r->user_agent;
	return !s->facts_known || x->has_info ||
	       (r->device_type != NULL && !str_eq_null(s->device_type, r->device_type)) ||
	       (ua != NULL && !str_eq_null(s->user_agent, ua));
}

/* The store thread recorded the device. */
static void
observed(void *arg, int rv, const struct abq_device *d, const char *errmsg)
{
	struct exchange *x = arg;
	x->job = NULL;
	if (rv != 0) {
		if (rv > 0) {
			x->outcome = OUT_BAD_REQUEST;
			respond_text(x, 400, errmsg ? errmsg : "bad request\n", NULL);
			return;
		}
		/*
		 * The store could not record what the phone reported: a device known
		 * from the last view keeps its decision (the grace period of a lost
		 * store, checked in decide()); an unknown one cannot be decided.
		 */
		const struct devstate *s = dev_get(x->gw, x->ereq->account, x->ereq->device_id);
		if (s != NULL && s->state != ABQ_STATE_NONE && s->state != ABQ_STATE_DISCOVERY) {
			act(x, s, s->state, s->reason);
			return;
		}
		respond_503(x, OUT_STORE_FAILED, RETRY_AFTER_S);
		return;
	}
	struct devstate *s = dev_slot(x->gw, d->account, d->device_id);
	/* Recorded new or re-decided: counted here, or by on_device if this exchange is gone. */
	if (s->state != d->state && d->state != ABQ_STATE_NONE)
		abq_metrics_decision(d->state, d->reason);
	s->state = d->state;
	s->reason = d->reason;
	s->rule_id = d->rule_id;
	s->wipe = d->wipe == ABQ_WIPE_REQUESTED;
	free(s->device_type);
	free(s->user_agent);
	s->device_type = xstrdup_null(d->device_type);
	s->user_agent = xstrdup_null(d->user_agent);
	s->facts_known = true;
	act(x, s, d->state, d->reason);
}

/* ---- acting on the decision ---- */

/*
 * Serve the request according to the device's state; s is the loop's entry
 * of the device (dev_get), or NULL.
 */
static void
act(struct exchange *x, const struct devstate *s, enum abq_state state, enum abq_reason reason)
{
	x->decision = state;
	x->up_keyed = s != NULL && s->up_keyed;
	x->up_key = s != NULL ? s->up_key : 0;
	/* A pending wipe comes before every state: a lost phone is blocked and wiped. */
	if (s != NULL && s->wipe) {
		if (x->ereq->cmd == EAS_CMD_PROVISION) {
			x->outcome = OUT_WIPE;
			serve_mailbox(x);
		} else {
			provision_demand(x, EAS_STATUS_REMOTE_WIPE, OUT_WIPE);
		}
		return;
	}
	upprov_free(&x->upp); /* a request decided anew */
	x->up_deferred = false;
	if (state == ABQ_STATE_ALLOWED && x->ereq->cmd == EAS_CMD_PROVISION &&
	    upprov_phone_provision(x, s))
		return;
	if (state == ABQ_STATE_ALLOWED && s != NULL && s->policy_key != 0 && policy_demand(x, s))
		return;
	switch (state) {
	case ABQ_STATE_ALLOWED:
		if (x->gw->native) {
			/* Sync keys carry the quarantine mailbox's prefix here too: no start over.
			 */
			native_serve(x);
			break;
		}
		if (!start_over(x) && body_well_formed(x))
			proxy(x);
		break;
	case ABQ_STATE_BLOCKED:
		if (reason == ABQ_REASON_LIMIT)
			deny(x, EAS_STATUS_MAX_DEVICES, OUT_LIMIT);
		else
			deny(x, EAS_STATUS_DEVICE_BLOCKED, OUT_BLOCKED);
		break;
	case ABQ_STATE_QUARANTINED:
	case ABQ_STATE_DISCOVERY:
		serve_mailbox(x);
		break;
	default:
		respond_503(x, OUT_NO_DECISION, RETRY_AFTER_S);
		break;
	}
}

/*
 * An allowed device that still speaks with the quarantine mailbox's sync keys
 * or folders: its FolderSync is handed over to the upstream's folders
 * (handover()); Sync, GetItemEstimate and Ping are told to start over (Sync
 * 3 per collection, GetItemEstimate 4, Ping 7), so that the phone runs a
 * FolderSync. A byte scan for the prefix keeps this off the hot path of every
 * other request.
 */
static bool
start_over(struct exchange *x)
{
	const struct eas_request *r = x->ereq;
	size_t len = 0;
	const uint8_t *body;
	struct mbx_serve_out out;

	if (r->cmd != EAS_CMD_FOLDERSYNC && r->cmd != EAS_CMD_SYNC && r->cmd != EAS_CMD_PING &&
	    r->cmd != EAS_CMD_GETITEMESTIMATE)
		return false;
	body = http_request_body(x->hreq, &len);
	if (len == 0 || memmem(body, len, MBX_KEY_PREFIX, strlen(MBX_KEY_PREFIX)) == NULL ||
	    mbx_request_has_key(r->cmd, body, len) != 1)
		return false;
	if (r->cmd == EAS_CMD_FOLDERSYNC) {
		handover(x);
		return true;
	}
	memset(&out, 0, sizeof(out));
	if (mbx_start_over_body(r->cmd, r->protocol_version, body, len, &out) < 0) {
		mbx_serve_out_clear(&out);
		return false;
	}
	x->outcome = OUT_START_OVER;
	respond_out(x, &out);
	mbx_serve_out_clear(&out);
	return true;
}

/*
 * What an allowed device sends the upstream must be well-formed WBXML of the
 * EAS code pages (wbxml_check: one pass, no tree, no copy); else 400 and
 * nothing is forwarded. SendMail, SmartReply and SmartForward below 14.0
 * carry MIME (MS-ASCMD 2.2.1.15), which is passed as it is. Returns whether
 * the request may go on (false: answered).
 */
static bool
body_well_formed(struct exchange *x)
{
	const struct eas_request *r = x->ereq;
	size_t len = 0, pos = 0;
	const char *why = NULL;
	const uint8_t *body = http_request_body(x->hreq, &len);

	if (len == 0)
		return true;
	if ((r->cmd == EAS_CMD_SENDMAIL || r->cmd == EAS_CMD_SMARTREPLY ||
	     r->cmd == EAS_CMD_SMARTFORWARD) &&
	    (r->protocol_version == NULL || strtod(r->protocol_version, NULL) < 14.0))
		return true;
	if (wbxml_check(body, len, &pos, &why) == 0)
		return true;
	log_warn("user=%s dev=%s cmd=%s: malformed WBXML body: %s at byte %zu", r->account,
	         r->device_id, eas_cmd_name(r->cmd), why, pos);
	x->outcome = OUT_BAD_WBXML;
	respond_text(x, 400, "malformed WBXML body\n", NULL);
	return false;
}

/* ---- proxying (Allowed) ---- */

static const struct upstream_cbs up_cbs = {
    .on_response = up_on_response,
    .on_body = up_on_body,
    .on_done = up_on_done,
};

/* Forward the request as it came, to the upstream, and stream its answer back. */
static void
proxy(struct exchange *x)
{
	proxy_via(x, NULL, 0, &up_cbs);
}

/*
 * Forward the request to the upstream: as it came, or (own_body not NULL)
 * with abqd's own body in place of the phone's; its answer goes to cbs.
 */
static void
proxy_via(struct exchange *x, const void *own_body, size_t own_len, const struct upstream_cbs *cbs)
{
	struct gateway *gw = x->gw;
	struct http_request *hreq = x->hreq;
	const char *target;
	struct upstream_header h[EAS_REQ_HEADERS_MAX + 4];
	size_t n = 0, nin, tlen = 0, xff_len = 0;
	const char *xff_in = NULL;

	if (gw->native) {
		/* Nothing is forwarded in native mode: there is no ActiveSync server behind. */
		x->outcome = OUT_NOT_FOUND;
		respond_text(x, 404, "not found\n", NULL);
		return;
	}
	struct sbuf tb = {0}, xb = {0};
	char tstack[512], xstack[128], keytext[16];
	uint32_t key = 0;
	bool keyed = upprov_key(x, &key);
	char *keyq = NULL;

	/*
	 * What is forwarded is what was decided on: the canonical path and the
	 * query rebuilt from the parsed parameters (request.h, fwd_path and
	 * fwd_query), never the phone's raw target.
	 */
	const char *q = x->ereq->fwd_query;
	/* OPTIONS on the EAS path is undecided: it carries no command, query or body. */
	bool bare = x->ereq->path_kind == EAS_PATH_EAS && x->ereq->method == EAS_METHOD_OPTIONS;
	if (bare)
		q = NULL;
	/* The upstream's key (or abqd's Provision to it) in the query too (upprov_key). */
	if (keyed && q != NULL) {
		keyq = eas_request_fwd_query_for(
		    x->ereq,
		    x->upp != NULL && x->upp->phase != 0 ? EAS_CMD_PROVISION : EAS_CMD_NONE, true,
		    key);
		if (keyq != NULL)
			q = keyq;
	}
	if (x->ereq->path_kind == EAS_PATH_PASSTHROUGH)
		target = q != NULL
		             ? join3(tstack, sizeof(tstack), &tb, x->ereq->fwd_path, "?", q, &tlen)
		             : x->ereq->fwd_path;
	else
		target = q != NULL ? join3(tstack, sizeof(tstack), &tb, upstream_base_path(gw->up),
		                           "?", q, &tlen)
		                   : upstream_base_path(gw->up);
	const struct http_req_header *in = http_request_headers(hreq, &nin);
	for (size_t i = 0; i < nin && n < EAS_REQ_HEADERS_MAX; i++) {
		const char *name = in[i].name, *value = in[i].value;
		size_t nlen = in[i].nlen, vlen = in[i].vlen;

		if (nlen == 15 && mem_ieq(name, "X-Forwarded-For", 15)) {
			/*
			 * Several fields are one list in their order (http_request_client
			 * reads them so): forwarded as one field, the peer last.
			 */
			if (xff_in != NULL) {
				if (xb.p == NULL)
					sbuf_addn(&xb, xff_in, strlen(xff_in));
				sbuf_addn(&xb, ", ", 2);
				sbuf_addn(&xb, value, vlen);
				xff_in = xb.p;
			} else {
				xff_in = value;
			}
			continue;
		}
		if (upstream_hop_header(name, nlen) || (keyed && upprov_drops(x, name, nlen)))
			continue;
		h[n].name = name;
		h[n].value = value;
		h[n].name_len = nlen;
		h[n].value_len = vlen;
		n++;
	}
	const char *peer = http_request_peer(hreq);
	if (xb.p != NULL) {
		sbuf_addn(&xb, ", ", 2);
		sbuf_addn(&xb, peer, strlen(peer));
		xff_in = xb.p;
		xff_len = xb.len;
	} else if (xff_in != NULL) {
		xff_in = join3(xstack, sizeof(xstack), &xb, xff_in, ", ", peer, &xff_len);
	}
	/* abqd's own headers with their lengths, which upstream_send need not measure. */
	h[n] = (struct upstream_header){.name = "X-Forwarded-For",
	                                .value = xff_in != NULL ? xff_in : peer,
	                                .name_len = 15,
	                                .value_len = xff_len};
	n++;
	h[n] = http_request_is_tls(hreq)
	           ? (struct upstream_header){"X-Forwarded-Proto", "https", 17, 5}
	           : (struct upstream_header){"X-Forwarded-Proto", "http", 17, 4};
	n++;
	if (keyed) {
		int kl = snprintf(keytext, sizeof(keytext), "%" PRIu32, key);

		h[n++] = (struct upstream_header){"X-MS-PolicyKey", keytext, 14, (size_t)kl};
		if (x->upp != NULL && x->upp->phase != 0)
			h[n++] = (struct upstream_header){"Content-Type", WBXML_TYPE, 12,
			                                  sizeof(WBXML_TYPE) - 1};
	}

	size_t blen = own_len;
	const void *body = own_body != NULL ? own_body
	                   : bare           ? NULL
	                                    : http_request_body(hreq, &blen);
	x->held = (x->upp == NULL || x->upp->phase == 0) &&
	          (x->ereq->cmd == EAS_CMD_PING || x->ereq->cmd == EAS_CMD_SYNC);
	struct upstream_req_spec spec = {
	    .method = http_request_method(hreq),
	    .target = target,
	    .target_len = tlen,
	    .headers = h,
	    .nheaders = n,
	    .body = body,
	    .body_len = blen,
	    .timeout = x->held ? HELD_TIMEOUT_S : UPSTREAM_TIMEOUT_DEFAULT,
	};
	spec.fresh = !cmd_idempotent(x->ereq->cmd);
	x->outcome = OUT_PROXIED;
	x->ureq = upstream_send(gw->up, &spec, cbs, x);
	free(tb.p);
	free(xb.p);
	free(keyq);
	if (x->ureq == NULL)
		respond_503(x, OUT_UPSTREAM_BUSY, RETRY_AFTER_S);
	else if (x->held)
		hold_begin(x, ABQ_HELD_PROXIED);
}

/*
 * Whether a command may be sent twice without harm, so that it may ride a
 * pooled upstream connection (upstream.h, fresh). Sending mail, moving items
 * and changing folders would be done twice if a pooled connection that the
 * upstream closed had read the request first; Sync, Ping and the reads are
 * safe to repeat (a repeated SyncKey is answered again, MS-ASCMD 3.1.5.9).
 */
static bool
cmd_idempotent(enum eas_cmd cmd)
{
	switch (cmd) {
	case EAS_CMD_SENDMAIL:
	case EAS_CMD_SMARTFORWARD:
	case EAS_CMD_SMARTREPLY:
	case EAS_CMD_MOVEITEMS:
	case EAS_CMD_MEETINGRESPONSE:
	case EAS_CMD_FOLDERCREATE:
	case EAS_CMD_FOLDERDELETE:
	case EAS_CMD_FOLDERUPDATE:
	case EAS_CMD_CREATECOLLECTION:
	case EAS_CMD_DELETECOLLECTION:
	case EAS_CMD_MOVECOLLECTION:
		return false;
	default:
		return true;
	}
}

/*
 * a, sep and b joined, its length in *len: in stack (cap bytes) when they
 * fit, which is the usual case on this per-request path, else in spill (the
 * caller frees spill->p).
 */
static const char *
join3(char *stack, size_t cap, struct sbuf *spill, const char *a, const char *sep, const char *b,
      size_t *len)
{
	size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);

	*len = la + ls + lb;
	if (la + ls + lb < cap) {
		memcpy(stack, a, la);
		memcpy(stack + la, sep, ls);
		memcpy(stack + la + ls, b, lb + 1);
		return stack;
	}
	sbuf_addn(spill, a, la);
	sbuf_addn(spill, sep, ls);
	sbuf_addn(spill, b, lb);
	return spill->p;
}

/*
 * The upstream's status line and headers: passed on to the phone without the
 * hop-by-hop headers. A 401 from the upstream makes the authenticator forget
 * the credentials it had cached as good, so that the next request checks them
 * again.
 */
static void
up_on_response(void *arg, int status, const char *reason, const struct upstream_header *headers,
               size_t n)
{
	struct exchange *x = arg;

	if (upprov_watch(x, status, reason, headers, n))
		return; /* held or deferred: it may be a provisioning demand */
	up_start(x, status, reason, headers, n);
}

/* The upstream's status line and headers go to the phone (up_on_response). */
static void
up_start(struct exchange *x, int status, const char *reason, const struct upstream_header *headers,
         size_t n)
{
	struct http_header stack_h[32];
	struct http_header *h = n <= 32 ? stack_h : xcalloc(n, sizeof(*h));
	size_t k = 0;

	x->upstream_status = status;
	hold_end(x);
	if (status == 401 && x->ereq->auth_user != NULL)
		auth_forget(x->gw->auth, x->ereq->auth_user, x->ereq->auth_password);
	for (size_t i = 0; i < n; i++) {
		if (upstream_hop_header(headers[i].name, headers[i].name_len))
			continue;
		/* The lengths the upstream's parser measured go along. */
		h[k++] = (struct http_header){headers[i].name, headers[i].value,
		                              headers[i].name_len, headers[i].value_len};
	}
	x->status = status;
	if (http_response_start_n(x->hreq, status, reason, upstream_req_content_length(x->ureq), h,
	                          k) == 0)
		x->started = true;
	if (h != stack_h)
		free(h);
}

/*
 * A piece of the upstream's body: written to the phone, and the upstream paused
 * while the phone's output is full (on_drain resumes it).
 */
static void
up_on_body(void *arg, const void *data, size_t len)
{
	struct exchange *x = arg;
	if (x->up_deferred && up_deferred_end(x, data, len))
		return;
	if (x->upp != NULL && x->upp->holding) {
		upprov_body(x, data, len);
		return;
	}
	if (!x->started)
		return;
	logcap_answer(x, data, len);
	if (http_response_write(x->hreq, data, len) == 1)
		upstream_pause(x->ureq);
}

/*
 * The upstream's answer ended: finish the exchange; on a failure, 503 if
 * nothing went out yet, else the response is cut (the phone sees a short body
 * and retries).
 */
static void
up_on_done(void *arg, enum upstream_result result)
{
	struct exchange *x = arg;
	if (x->up_deferred)
		(void)up_deferred_end(x, NULL, 0);
	if (x->upp != NULL && x->upp->holding) {
		upprov_done(x, result);
		return;
	}
	x->ureq = NULL;
	if (result == UPSTREAM_OK && x->started) {
		http_response_end(x->hreq);
		x->hreq = NULL;
		exchange_finish(x);
		return;
	}
	log_warn("upstream: %s for user=%s dev=%s", upstream_strerror(result),
	         x->ereq->account ? x->ereq->account : "-",
	         x->ereq->device_id ? x->ereq->device_id : "-");
	if (!x->started) {
		respond_503(x, OUT_UPSTREAM_FAILED, RETRY_AFTER_S);
		return;
	}
	x->outcome = OUT_UPSTREAM_FAILED;
	http_response_abort(x->hreq);
	x->hreq = NULL;
	exchange_finish(x);
}

/* ---- denying (Blocked) ---- */

/* The command's own failure answer: 200 with Status, or 403. */
static void
deny(struct exchange *x, int eas_status, enum outcome outcome)
{
	int http;
	uint8_t *body = NULL;
	size_t len = 0;

	x->outcome = outcome;
	if (eas_status_response(x->ereq->cmd, x->ereq->protocol_version, eas_status, &http, &body,
	                        &len) < 0 ||
	    http != 200) {
		respond_text(x, 403, "forbidden\n", NULL);
		free(body);
		return;
	}
	respond(x, 200, WBXML_TYPE, body, len, NULL);
	free(body);
}

/*
 * An Allowed device whose account has a provisioning policy that imposes
 * something (MS-ASPROV 3.1.5.1): abqd answers its Provision itself (the
 * command layer hands out the account's policy and the keys of
 * abq_prov_device_key), and any other command without the device's current
 * PolicyKey gets the provisioning demand: Status 142 (DeviceNotProvisioned)
 * without a key or with 0, 144 (InvalidPolicyKey) with another one, the
 * key of an older policy included. Returns whether the request was taken
 * care of here (false: it goes on to the upstream).
 */
static bool
policy_demand(struct exchange *x, const struct devstate *s)
{
	const struct eas_request *r = x->ereq;

	if (r->cmd == EAS_CMD_PROVISION) {
		x->outcome = OUT_PROVISION;
		serve_mailbox(x);
		return true;
	}
	if (r->has_policy_key && r->policy_key == s->policy_key)
		return false;
	provision_demand(x,
	                 r->has_policy_key && r->policy_key != 0 ? EAS_STATUS_INVALID_POLICY_KEY
	                                                         : EAS_STATUS_NOT_PROVISIONED,
	                 OUT_PROVISION);
	return true;
}

/*
 * The provisioning demand (a pending remote wipe, MS-ASPROV 3.2.5.1.2, or a
 * policy not acknowledged): HTTP 449 below 14.0, else the command's status
 * (or 449 where the command has no status to carry it). Nothing reaches the
 * upstream or the quarantine mailbox.
 */
static void
provision_demand(struct exchange *x, int eas_status, enum outcome outcome)
{
	const struct eas_request *r = x->ereq;
	uint8_t *body = NULL;
	size_t len = 0;
	int http = 0;

	x->outcome = outcome;
	if (eas_status_response(r->cmd, r->protocol_version, eas_status, &http, &body, &len) == 0 &&
	    http == 200) {
		respond(x, 200, WBXML_TYPE, body, len, NULL);
		free(body);
		return;
	}
	free(body);
	respond_text(x, 449, "provisioning required\n", NULL);
}

/* ---- the quarantine mailbox (Quarantined, Discovery) ---- */

/* A quarantined or Discovery device: the quarantine mailbox answers. */
static void
serve_mailbox(struct exchange *x)
{
	const struct eas_request *r = x->ereq;
	size_t len = 0;
	const void *body = http_request_body(x->hreq, &len);
	char *email = user_address(x->gw, r->account);
	struct storeq_serve_req sr = {
	    .account = r->account,
	    .device_id = r->device_id,
	    .cmd = (int)r->cmd,
	    .version = r->protocol_version,
	    .body = body,
	    .body_len = len,
	    .email = email,
	    .sender = x->gw->sender,
	};
	x->job = storeq_serve(x->gw->sq, &sr, served, x);
	free(email);
}

/* The user's address: the account when it is one, else account@[smtp] domain. */
static char *
user_address(const struct gateway *gw, const char *account)
{
	if (strchr(account, '@') != NULL)
		return xstrdup(account);
	const char *d = gw->mail_domain ? gw->mail_domain : gw->default_domain;
	return d ? xasprintf("%s@%s", account, d) : xstrdup(account);
}

/* The store thread answered from the quarantine mailbox. */
static void
served(void *arg, int rv, struct mbx_serve_out *out, const char *errmsg)
{
	struct exchange *x = arg;
	x->job = NULL;
	if (rv < 0) {
		log_warn("user=%s dev=%s cmd=%s: quarantine mailbox: %s", x->ereq->account,
		         x->ereq->device_id, eas_cmd_name(x->ereq->cmd),
		         errmsg ? errmsg : "failed");
		if (out->http_status >= 400 && out->http_status < 500) {
			x->outcome = OUT_MAILBOX;
			respond_out(x, out);
		} else {
			respond_503(x, OUT_MAILBOX_FAILED, RETRY_AFTER_S);
		}
		return;
	}
	if (out->hold_seconds > 0) {
		hold_start(x, out, OUT_MAILBOX_HELD);
		return;
	}
	if (x->outcome != OUT_WIPE && x->outcome != OUT_PROVISION)
		x->outcome = OUT_MAILBOX;
	if (out->wipe_acked) {
		/* Confirmed (storeq recorded it): Blocked, reason Wipe, without waiting for the
		 * log. */
		struct devstate *s = dev_slot(x->gw, x->ereq->account, x->ereq->device_id);
		log_info("user=%s dev=%s: remote wipe confirmed", x->ereq->account,
		         x->ereq->device_id);
		s->wipe = false;
		s->state = ABQ_STATE_BLOCKED;
		s->reason = ABQ_REASON_WIPE;
		s->rule_id = 0;
		x->outcome = OUT_WIPE;
	}
	respond_out(x, out);
}

/*
 * Hold out (a Ping's, or a hanging Sync's, "no changes" answer) until its
 * wait ends, or a push or a state change ends it first; the exchange takes
 * the answer. A rerun of a native Ping (push found nothing for it) keeps the
 * end of the first hold.
 */
static void
hold_start(struct exchange *x, struct mbx_serve_out *out, enum outcome o)
{
	int secs = out->hold_seconds;
	if (x->hold_total == 0) {
		x->hold_total = secs;
	} else {
		double left = x->hold_total - loop_seconds_since(x->gw->base, &x->t0);
		secs = left < 1 ? 1 : left < secs ? (int)left : secs;
	}
	struct timeval tv = {secs, 0};
	x->hold = *out;
	memset(out, 0, sizeof(*out)); /* the exchange owns the body now */
	x->held = true;
	x->outcome = o;
	x->hold_timer = evtimer_new(x->gw->base, hold_expired, x);
	evtimer_add(x->hold_timer, &tv);
	hold_begin(x, o == OUT_NATIVE_HELD ? ABQ_HELD_NATIVE : ABQ_HELD_MAILBOX);
}

/* Stop holding: the timer, the held answer, the push subscription (a no-op when none). */
static void
hold_stop(struct exchange *x)
{
	if (x->hold_timer != NULL) {
		event_free(x->hold_timer);
		x->hold_timer = NULL;
	}
	if (x->watching != NULL) {
		watch_unsubscribe(x->watching);
		x->watching = NULL;
	}
	if (x->poll_timer != NULL) {
		event_free(x->poll_timer);
		x->poll_timer = NULL;
	}
	mbx_serve_out_clear(&x->hold);
	hold_end(x);
}

/* The wait of a Ping (or hanging Sync) held by the mailbox ended: no changes. */
static void
hold_expired(evutil_socket_t fd, short what, void *arg)
{
	struct exchange *x = arg;
	(void)fd;
	(void)what;
	struct mbx_serve_out out = x->hold;
	memset(&x->hold, 0, sizeof(x->hold));
	hold_stop(x);
	x->outcome = x->outcome == OUT_NATIVE_HELD ? OUT_NATIVE : OUT_MAILBOX;
	respond_out(x, &out);
	mbx_serve_out_clear(&out);
}

/* ---- native mode: the Allowed device served from its IMAP mailbox ---- */

/* The EAS versions native mode speaks, announced by OPTIONS. */
#define NATIVE_VERSIONS "12.1,14.0,14.1,16.0,16.1"
/*
 * The commands it serves (MS-ASProtocolCommands); SendMail, SmartReply and
 * SmartForward too when [upstream] submission is set. The others
 * (MeetingResponse, ResolveRecipients, ValidateCert, Find) get their
 * command's failure status from the command layer for now.
 */
#define NATIVE_COMMANDS                                                                            \
	"Sync,FolderSync,GetItemEstimate,Ping,Provision,Settings,ItemOperations,GetAttachment,"    \
	"MoveItems,FolderCreate,FolderUpdate,FolderDelete,Search"
#define NATIVE_COMMANDS_SEND NATIVE_COMMANDS ",SendMail,SmartReply,SmartForward"

/*
 * One command of an Allowed device run by mbx_run over the account's IMAP
 * backend. It lives until mbx_run is done, even when the phone goes away
 * first (x NULL then): mbx_run calls back exactly once, and the backend and
 * the store thread's jobs it waits for must find it.
 */
struct native_run {
	struct gateway *gw;
	struct exchange *x; /* NULL once the exchange finished */
	struct mbx_serve_in in;
	/*
	 * The IMAP backend (the mail folders): in.backend itself, or, with a
	 * directory ([upstream] gal), the default part of the union in.backend
	 * (mailbox_union.h), which owns it.
	 */
	struct mbx_backend *imap;
	struct mbx_imap_folder_map map;
	uint8_t *body;
	char *account, *device_id, *version, *email;
	/* the query's GetAttachment and 12.1 compose fields (mbx_serve_in's) */
	char *attachment_name, *collection_id, *item_id, *long_id;
	/*
	 * A streamed answer (native_stream_start): the part, its type, the
	 * decoded bytes written so far; waiting on the backend, or inside the
	 * pump (the phone going away then leaves the freeing to it).
	 */
	bool streaming, waiting, pumping;
	struct mbx_stream stream;
	char *stream_type;
	uint64_t off;
};

/* A state read or folder assignment on the store thread, and whom to tell. */
struct native_wait {
	union {
		mbx_state_got_fn got;
		void (*done)(void *arg,
		             int rv); /* a state written, a folder change followed, a ClientId op */
		mbx_imap_ids_fn ids;
	} fn;
	void *arg;
};

/* The store thread read a collection's state. */
static void
native_state_got(void *arg, int rv, char *blob, size_t len)
{
	struct native_wait w = *(struct native_wait *)arg;
	free(arg);
	w.fn.got(w.arg, rv, blob, len);
}

/* mbx_run reads a collection's state: through the store thread. */
static void
native_state_get(void *arg, const char *account, const char *device_id, const char *collection,
                 mbx_state_got_fn done, void *done_arg)
{
	struct gateway *gw = arg;
	struct native_wait *w = xcalloc(1, sizeof(*w));
	w->fn.got = done;
	w->arg = done_arg;
	storeq_state_get(gw->sq, account, device_id, collection, native_state_got, w);
}

/* The store thread wrote a request's state, followed a folder change or did a ClientId op. */
static void
native_store_done(void *arg, int rv)
{
	struct native_wait w = *(struct native_wait *)arg;
	free(arg);
	w.fn.done(w.arg, rv);
}

/* mbx_run commits a request's staged writes: one transaction on the store thread. */
static void
native_state_commit(void *arg, const char *account, const char *device_id,
                    const struct mbx_state_op *ops, size_t n, mbx_state_committed_fn done,
                    void *done_arg)
{
	struct gateway *gw = arg;
	struct native_wait *w = xcalloc(1, sizeof(*w));
	w->fn.done = done;
	w->arg = done_arg;
	storeq_state_commit(gw->sq, account, device_id, ops, n, native_store_done, w);
}

/* mbx_run reserves, keeps or releases a SendMail ClientId: on the store thread. */
static void
native_client_id(void *arg, const char *account, const char *device_id, const char *client_id,
                 int op, mbx_client_id_fn done, void *done_arg)
{
	struct gateway *gw = arg;
	struct native_wait *w = xcalloc(1, sizeof(*w));
	w->fn.done = done;
	w->arg = done_arg;
	storeq_client_id(gw->sq, account, device_id, client_id, op, native_store_done, w);
}

/* The store thread gave the folder ids. */
static void
native_ids(void *arg, int rv, char **ids)
{
	struct native_wait w = *(struct native_wait *)arg;
	free(arg);
	w.fn.ids(w.arg, rv, ids);
}

/*
 * The backend asks for its mailboxes' folder ids: from the store's map, under
 * the account as abqd keys it (the login name may be a bare one).
 */
/* Native mode's DAV backends reach the store through the store thread (storeq_call). */
static void *
native_store_call(void *arg, int (*run)(struct abq_store *s, void *job),
                  void (*done)(void *job, int rv), void (*release)(void *job), void *job)
{
	struct gateway *gw = arg;

	return storeq_call(gw->sq, run, done, release, job);
}

static void
native_store_cancel(void *arg, void *handle)
{
	(void)arg;
	storeq_cancel(handle);
}

static void
native_assign(void *arg, const char *account, const struct mbx_imap_listed *l, size_t n, char delim,
              bool probe, mbx_imap_ids_fn done, void *done_arg)
{
	struct native_run *nr = arg;
	struct native_wait *w = xcalloc(1, sizeof(*w));
	struct abq_folder *f = xcalloc(n ? n : 1, sizeof(*f));
	(void)account;
	w->fn.ids = done;
	w->arg = done_arg;
	for (size_t i = 0; i < n; i++) {
		f[i].mailbox = (char *)l[i].mailbox;
		f[i].mailbox_id = (char *)l[i].mailbox_id;
		f[i].uidvalidity = l[i].uidvalidity;
	}
	storeq_folder_assign(nr->gw->sq, nr->account, f, n, delim, probe, native_ids, w);
	free(f);
}

/* The device renamed or deleted a folder: the store's map follows (ids kept on rename). */
static void
native_change(void *arg, const char *account, const char *folder_id, const char *mailbox,
              const char *parent_id, char delim, mbx_imap_done_fn done, void *done_arg)
{
	struct native_run *nr = arg;
	struct native_wait *w = xcalloc(1, sizeof(*w));
	(void)account;
	w->fn.done = done;
	w->arg = done_arg;
	storeq_folder_change(nr->gw->sq, nr->account, folder_id, mailbox, parent_id, delim,
	                     native_store_done, w);
}

/* Free a finished run (the backend wipes the password it kept). */
static void
native_run_free(struct native_run *nr)
{
	mbx_destroy(&nr->in.backend);
	free(nr->body);
	free(nr->account);
	free(nr->device_id);
	free(nr->version);
	free(nr->email);
	free(nr->attachment_name);
	free(nr->collection_id);
	free(nr->item_id);
	free(nr->long_id);
	free(nr);
}

/*
 * The phone went away while its command ran: the run ends on its own; a
 * stream paused for the phone's output (nothing else calls it back) ends now.
 */
static void
native_detach(struct exchange *x)
{
	struct native_run *nr = x->native;

	nr->x = NULL;
	x->native = NULL;
	if (nr->streaming && !nr->waiting && !nr->pumping)
		native_stream_end(nr);
}

/*
 * A mailbox a held Ping waits on changed: the Ping is decided and run again,
 * through the gate as a new request would be (it answers, or holds on).
 */
static void
native_pushed(void *arg, const char *mailbox)
{
	struct exchange *x = arg;
	const struct devstate *s = dev_get(x->gw, x->ereq->account, x->ereq->device_id);
	log_debug("user=%s dev=%s: %s changed: the held %s runs again", x->ereq->account,
	          x->ereq->device_id, mailbox, eas_cmd_name(x->ereq->cmd));
	hold_stop(x);
	if (s == NULL || s->state == ABQ_STATE_NONE)
		decide(x);
	else
		act(x, s, s->state, s->reason);
}

/* The account cannot be watched (a refused login): the Ping waits out its heartbeat. */
static void
native_push_failed(void *arg, enum imap_error e, const char *msg)
{
	struct exchange *x = arg;
	log_info("user=%s dev=%s: no push for the held %s: %s: %s", x->ereq->account,
	         x->ereq->device_id, eas_cmd_name(x->ereq->cmd), imap_error_str(e), msg);
}

/* A held Ping's DAV folders are due a look: it runs again. */
static void
native_polled(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	native_pushed(arg, "contacts/calendars (poll)");
}

/*
 * Subscribe a held Ping to push: the IMAP names of the folders it waits on
 * (out->watch, as the backend listed them for this run) watched by the
 * account's watcher (watch.h), logged in as the phone logged in.
 */
static void
native_watch(struct exchange *x, const struct mbx_backend *b, const struct mbx_serve_out *out)
{
	static const struct watch_cbs cbs = {native_pushed, native_push_failed};
	const char *names[MBX_PING_FOLDERS_MAX];
	size_t n = 0;
	const char *err = NULL;

	/*
	 * Contacts, calendars and tasks have no push of their own: the held
	 * Ping runs again every [upstream] dav_poll_interval, and its run asks
	 * the DAV server (its answer shared by the account's devices for a
	 * while: mailbox_dav.h).
	 */
	for (size_t i = 0; i < out->n_watch && x->gw->dav_cl != NULL && x->poll_timer == NULL;
	     i++) {
		if (strncmp(out->watch[i], MBX_DAV_PREFIX, strlen(MBX_DAV_PREFIX)) != 0)
			continue;
		struct timeval tv = {x->gw->dav_poll_s, 0};
		x->poll_timer = evtimer_new(x->gw->base, native_polled, x);
		evtimer_add(x->poll_timer, &tv);
	}
	if (x->gw->watch == NULL || x->watching != NULL)
		return;
	for (size_t i = 0; i < out->n_watch && n < MBX_PING_FOLDERS_MAX; i++)
		if ((names[n] = mbx_imap_mailbox(b, out->watch[i])) != NULL)
			n++;
	if (n == 0)
		return;
	x->watching = watch_subscribe(x->gw->watch, x->ereq->account, x->ereq->auth_user,
	                              x->ereq->auth_password, names, n, &cbs, x, &err);
	if (x->watching == NULL)
		log_info("user=%s dev=%s: no push for the held %s: %s", x->ereq->account,
		         x->ereq->device_id, eas_cmd_name(x->ereq->cmd), err);
}

/*
 * A streamed answer is over (sent, cut or abandoned): the backend's request
 * ends, the run is freed.
 */
static void
native_stream_end(struct native_run *nr)
{
	mbx_end(nr->in.backend);
	free(nr->stream.suffix);
	free(nr->stream_type);
	native_run_free(nr);
}

/* The IMAP fetch of a window is done: go on writing. */
static void
native_stream_woke(void *arg)
{
	struct native_run *nr = arg;

	nr->waiting = false;
	native_stream_pump(nr);
}

/*
 * Write the streamed part window by window (MBX_STREAM_CHUNK decoded bytes,
 * base64-encoded for ItemOperations), each read from the IMAP server only
 * when the phone's output has drained (http_response_write's 1 pauses,
 * on_drain resumes) and dropped once written: abqd holds one window, however
 * large the attachment and however slow the phone. Then the suffix, and the
 * exchange ends. A window that cannot be read (the IMAP connection lost, the
 * message gone) cuts the answer: the connection is closed short of its
 * Content-Length, the phone sees a truncated answer and retries; logged.
 */
static void
native_stream_pump(struct native_run *nr)
{
	const struct mbx_stream *st = &nr->stream;

	nr->pumping = true;
	for (;;) {
		struct exchange *x = nr->x;
		struct mbx_part part;
		const char *err = "no such part";
		int rv, w = 0;
		size_t got;

		if (x == NULL) { /* the phone went away */
			nr->pumping = false;
			native_stream_end(nr);
			return;
		}
		if (nr->off >= st->total) {
			if (st->suffix_len > 0) {
				logcap_answer(x, st->suffix, st->suffix_len);
				(void)http_response_write(x->hreq, st->suffix, st->suffix_len);
			}
			http_response_end(x->hreq);
			x->hreq = NULL;
			x->native = NULL;
			exchange_finish(x);
			nr->pumping = false;
			native_stream_end(nr);
			return;
		}
		rv = mbx_fetch_part(nr->in.backend, st->folder, st->item, st->section, nr->off,
		                    MBX_STREAM_CHUNK, &part, &err);
		if (rv == MBX_PENDING) {
			nr->waiting = true;
			nr->pumping = false;
			mbx_wait(nr->in.backend, native_stream_woke, nr);
			return;
		}
		mbx_forget_parts(nr->in.backend);
		got = rv == 1 ? part.len : 0;
		if (got > 0) {
			if (st->base64) {
				char *b64 = xmalloc(B64_ENCODED_LEN(part.len) + 1);
				size_t n =
				    b64_encode((const unsigned char *)part.data, part.len, b64);
				logcap_answer(x, b64, n);
				w = http_response_write(x->hreq, b64, n);
				free(b64);
			} else {
				logcap_answer(x, part.data, part.len);
				w = http_response_write(x->hreq, part.data, part.len);
			}
			nr->off += part.len;
		}
		mbx_part_clear(&part);
		if (got == 0 || w < 0) {
			log_warn(
			    "user=%s dev=%s cmd=%s: native: the attachment's stream cut at %" PRIu64
			    " of %" PRIu64 " bytes: %s",
			    x->ereq->account, x->ereq->device_id, eas_cmd_name(x->ereq->cmd),
			    nr->off, st->total,
			    w < 0     ? "the phone's connection failed"
			    : rv == 1 ? "the part ended early"
			              : err);
			x->outcome = OUT_NATIVE_FAILED;
			http_response_abort(x->hreq);
			x->hreq = NULL;
			x->native = NULL;
			exchange_finish(x);
			nr->pumping = false;
			native_stream_end(nr);
			return;
		}
		if (w == 1) { /* the phone's output is full: on_drain resumes */
			/* a slow phone does not keep one of the account's IMAP connections */
			mbx_release(nr->in.backend);
			nr->pumping = false;
			return;
		}
	}
}

/* The phone's output drained: a stream paused for it goes on. */
static void
native_drained(struct native_run *nr)
{
	if (nr->streaming && !nr->waiting && !nr->pumping)
		native_stream_pump(nr);
}

/*
 * Start a streamed answer (mbx_serve_out.stream): the head with the whole
 * Content-Length, the prefix, then the part (native_stream_pump) within one
 * request of the run's backend; the run lives until the stream ends.
 */
static void
native_stream_start(struct exchange *x, struct native_run *nr, struct mbx_serve_out *out)
{
	const char *h[2 * MBX_OUT_HEADERS + 3];
	size_t n = 0;

	nr->stream = out->stream;
	out->stream.suffix = NULL;
	nr->stream_type =
	    xstrdup(out->content_type ? out->content_type : "application/octet-stream");
	nr->streaming = true;
	nr->off = 0;
	h[n++] = "Content-Type";
	h[n++] = nr->stream_type;
	for (size_t i = 0; i < out->n_headers && i < MBX_OUT_HEADERS; i++) {
		h[n++] = out->headers[i][0];
		h[n++] = out->headers[i][1];
	}
	h[n] = NULL;
	x->native = nr;
	x->outcome = OUT_NATIVE;
	x->status = 200;
	log_debug("user=%s dev=%s: native: streaming %" PRIu64 " bytes of part %s of %s",
	          x->ereq->account, x->ereq->device_id, nr->stream.total, nr->stream.section,
	          nr->stream.item);
	if (http_response_start(x->hreq, 200, NULL, (int64_t)mbx_stream_length(out), h) < 0 ||
	    (out->body_len > 0 && http_response_write(x->hreq, out->body, out->body_len) < 0)) {
		x->outcome = OUT_NATIVE_FAILED;
		http_response_abort(x->hreq);
		x->hreq = NULL;
		x->native = NULL;
		exchange_finish(x);
		native_stream_end(nr);
		return;
	}
	logcap_answer(x, out->body, out->body_len);
	mbx_begin(nr->in.backend);
	native_stream_pump(nr);
}

/*
 * mbx_run answered: the command's answer to the phone (a Ping's hold as the
 * quarantine mailbox's), or the IMAP server's failure as HTTP: a refused
 * login 401 (the phone asks its user), no connection 503 with Retry-After.
 */
static void
native_done(void *arg, int rv, struct mbx_serve_out *out)
{
	struct native_run *nr = arg;
	struct exchange *x = nr->x;
	enum mbx_imap_failure why = mbx_imap_failure(nr->imap);

	if (x == NULL) {
		native_run_free(nr);
		return;
	}
	x->native = NULL;
	if (why == MBX_IMAP_AUTH) {
		log_info("user=%s dev=%s: the IMAP server refused the login", x->ereq->account,
		         x->ereq->device_id);
		respond_401(x);
	} else if (rv < 0) {
		x->outcome = OUT_BAD_WBXML;
		respond_text(x, 400, "malformed request\n", NULL);
	} else if (out->http_status >= 500) {
		log_warn("user=%s dev=%s cmd=%s: native: HTTP %d%s", x->ereq->account,
		         x->ereq->device_id, eas_cmd_name(x->ereq->cmd), out->http_status,
		         why == MBX_IMAP_UNAVAILABLE ? " (IMAP server unavailable)" : "");
		respond_503(x, OUT_NATIVE_FAILED, RETRY_AFTER_S);
	} else if (out->hold_seconds > 0) {
		native_watch(x, nr->imap, out);
		hold_start(x, out, OUT_NATIVE_HELD);
	} else if (out->stream.on && out->http_status == 200) {
		native_stream_start(x, nr, out);
		return;
	} else {
		x->outcome = OUT_NATIVE;
		respond_out(x, out);
	}
	native_run_free(nr);
}

/*
 * An Allowed device's command in native mode. Provision and Settings are
 * answered as the quarantine mailbox answers them (abqd's own policy);
 * everything else runs through the command layer over the account's IMAP
 * mailbox (mbx_run), logging in with the phone's credentials.
 */
static void
native_serve(struct exchange *x)
{
	struct gateway *gw = x->gw;
	const struct eas_request *r = x->ereq;
	size_t len = 0;
	const void *body;

	if (r->cmd == EAS_CMD_PROVISION || r->cmd == EAS_CMD_SETTINGS) {
		serve_mailbox(x);
		return;
	}
	if (!body_well_formed(x))
		return;
	body = http_request_body(x->hreq, &len);
	struct native_run *nr = xcalloc(1, sizeof(*nr));
	nr->gw = gw;
	nr->x = x;
	x->native = nr;
	if (len > 0) {
		nr->body = xmalloc(len);
		memcpy(nr->body, body, len);
	}
	nr->account = xstrdup(r->account);
	nr->device_id = xstrdup(r->device_id);
	nr->version = xstrdup_null(r->protocol_version);
	nr->email = user_address(gw, r->account);
	nr->map.arg = nr;
	nr->map.assign = native_assign;
	nr->map.change = native_change;
	nr->in.cmd = r->cmd;
	nr->in.version = nr->version;
	nr->in.body = nr->body;
	nr->in.body_len = len;
	nr->in.account = nr->account;
	nr->in.device_id = nr->device_id;
	nr->in.email = nr->email;
	nr->in.now = (int64_t)time(NULL);
	/* GetAttachment's name; SendMail, SmartReply, SmartForward before 14.0. */
	nr->attachment_name = xstrdup_null(r->attachment_name);
	nr->collection_id = xstrdup_null(r->collection_id);
	nr->item_id = xstrdup_null(r->item_id);
	nr->long_id = xstrdup_null(r->long_id);
	nr->in.attachment_name = nr->attachment_name;
	nr->in.collection_id = nr->collection_id;
	nr->in.item_id = nr->item_id;
	nr->in.long_id = nr->long_id;
	nr->in.save_in_sent = r->save_in_sent;
	nr->in.may_stream = true;
	nr->imap = mbx_imap_new(gw->pool, r->account, r->auth_user, r->auth_password, &nr->map);
	if (gw->submitq != NULL) {
		struct mbx_imap_send send = {.q = gw->submitq,
		                             .url = gw->submission_url,
		                             .from = nr->email,
		                             .ca_file = gw->submission_ca};
		mbx_imap_set_send(nr->imap, &send);
	}
	mbx_imap_set_parseq(nr->imap, gw->parseq);
	nr->in.backend = nr->imap;
	nr->in.pim = gw->pim;
	if (gw->gal != NULL || gw->gal_dav != NULL || gw->dav_cl != NULL) {
		/*
		 * The DAV servers' collections and the directory join the mailbox:
		 * one hierarchy, folders routed by id (mailbox_union.h).
		 */
		struct mbx_union_part parts[3] = {{nr->imap, NULL}};
		size_t n = 1;
		const char *err = NULL;
		struct mbx_backend *u;
		if (gw->dav_cl != NULL) {
			struct mbx_backend *dav =
			    mbx_dav_new(gw->dav_cl, gw->dav_shared, &gw->dav_conf, &gw->dav_store,
			                r->account, r->auth_user, r->auth_password, &err);
			if (dav != NULL)
				parts[n++] = (struct mbx_union_part){dav, MBX_DAV_PREFIX};
			else
				log_warn("native: contacts and calendars: %s", err);
		}
		if (gw->gal != NULL)
			parts[n++] = (struct mbx_union_part){gal_ldap_backend(gw->gal), "g"};
		else if (gw->gal_dav != NULL)
			parts[n++] = (struct mbx_union_part){
			    gal_carddav_backend(gw->gal_dav, r->auth_user, r->auth_password), "g"};
		if ((u = mbx_union_new(parts, n, &err)) != NULL) {
			nr->in.backend = u;
		} else {
			log_warn("native: %s", err); /* cannot be: every part owns cursors */
			for (size_t i = 1; i < n; i++)
				mbx_destroy(&parts[i].backend);
		}
	}
	mbx_run(&nr->in, &gw->native_state, 0, native_done, nr);
}

/*
 * OPTIONS in native mode: abqd is the ActiveSync server, so it says which
 * versions and commands it serves.
 */
static void
native_options(struct exchange *x)
{
	const char *const h[] = {"MS-Server-ActiveSync",
	                         "14.1",
	                         "MS-ASProtocolVersions",
	                         NATIVE_VERSIONS,
	                         "MS-ASProtocolCommands",
	                         x->gw->submitq ? NATIVE_COMMANDS_SEND : NATIVE_COMMANDS,
	                         "Allow",
	                         "OPTIONS,POST",
	                         NULL};
	x->outcome = OUT_NATIVE;
	respond(x, 200, NULL, NULL, 0, h);
}

/*
 * Whether an imap:// URL names a loopback host, where logging in without
 * STARTTLS is allowed (tests, a server on the same machine).
 */
static bool
native_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	if (h == NULL || strncasecmp(url, "imap://", 7) != 0)
		return false;
	h += 3;
	return strncmp(h, "127.", 4) == 0 || strncasecmp(h, "localhost", 9) == 0 ||
	       strncmp(h, "[::1]", 5) == 0;
}

/* ---- the handover: from the quarantine mailbox to the real folders ---- */

/*
 * A phone allowed while it spoke to the quarantine mailbox sends its next
 * FolderSync with the mailbox's sync key. FolderSync Status 9 would make it
 * start over, and iOS and Android then throw the whole account away. So abqd
 * asks the upstream for the folder hierarchy itself (FolderSync, SyncKey 0)
 * and gives the phone that answer with a Delete for each quarantine folder
 * added: the phone swaps the quarantine folders for the real ones and goes
 * on with the upstream's SyncKey, as after any change of the hierarchy. The
 * answer is small and held whole (up to HANDOVER_MAX); one that is larger or
 * is not a FolderSync Status 1 (a provisioning demand, an error) goes to the
 * phone as the upstream sent it.
 */

static const struct upstream_cbs ho_cbs = {
    .on_response = ho_on_response,
    .on_body = ho_on_body,
    .on_done = ho_on_done,
};

/*
 * An allowed phone's FolderSync with the quarantine mailbox's key: ask the
 * upstream for its whole hierarchy (FolderSync, SyncKey 0, with the phone's
 * query and headers) and hand it over (above).
 */
static void
handover(struct exchange *x)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	uint8_t *body = NULL;
	size_t len = 0;

	handover_free(&x->ho); /* a request decided anew */
	wbxml_addn_text(wbxml_addn_root(doc, "FolderHierarchy:FolderSync"), "SyncKey", "0");
	if (wbxml_encode(doc, &body, &len, NULL) != WBXML_OK) {
		wbxml_doc_free(&doc);
		respond_503(x, OUT_MAILBOX_FAILED, RETRY_AFTER_S);
		return;
	}
	wbxml_doc_free(&doc);
	log_info("user=%s dev=%s: FolderSync with the quarantine mailbox's key: asking the "
	         "upstream for its folders",
	         x->ereq->account, x->ereq->device_id);
	x->ho = xcalloc(1, sizeof(*x->ho));
	cbuf_init(&x->ho->body, HANDOVER_MAX);
	proxy_via(x, body, len, &ho_cbs); /* the body is copied: it is small */
	free(body);
}

/* Send the held answer with the upstream's status and headers, then finish. */
static void
handover_send(struct exchange *x, const void *body, size_t len)
{
	struct handover *ho = x->ho;
	struct http_request *hreq = x->hreq;

	x->status = ho->status;
	logcap_answer(x, body, len);
	if (http_response_start(hreq, ho->status, ho->reason, (int64_t)len,
	                        (const char *const *)ho->headers) == 0) {
		if (len > 0)
			http_response_write(hreq, body, len);
		http_response_end(hreq);
	}
	x->hreq = NULL;
	exchange_finish(x);
}

/* The upstream's status line and headers: kept for the answer. */
static void
ho_on_response(void *arg, int status, const char *reason, const struct upstream_header *headers,
               size_t n)
{
	struct exchange *x = arg;
	struct handover *ho = x->ho;
	size_t k = 0;

	x->upstream_status = status;
	if (status == 401 && x->ereq->auth_user != NULL)
		auth_forget(x->gw->auth, x->ereq->auth_user, x->ereq->auth_password);
	ho->status = status;
	ho->reason = xstrdup_null(reason);
	ho->content_length = upstream_req_content_length(x->ureq);
	ho->headers = xcalloc(2 * n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		if (upstream_hop_header(headers[i].name, headers[i].name_len))
			continue;
		ho->headers[k++] = xstrdup(headers[i].name);
		ho->headers[k++] = xstrdup(headers[i].value);
	}
}

/*
 * A piece of the answer: held, unless the answer outgrows HANDOVER_MAX; then
 * what is held goes out and the rest is streamed as for any proxied request.
 */
static void
ho_on_body(void *arg, const void *data, size_t len)
{
	struct exchange *x = arg;
	struct handover *ho = x->ho;

	if (!x->started && cbuf_append(&ho->body, data, len) == 0)
		return;
	if (!x->started) {
		log_warn("user=%s dev=%s: the upstream's FolderSync answer is over %d bytes: "
		         "relayed as it is, without the quarantine folders' Deletes",
		         x->ereq->account, x->ereq->device_id, HANDOVER_MAX);
		x->outcome = OUT_PROXIED;
		x->status = ho->status;
		if (http_response_start(x->hreq, ho->status, ho->reason, ho->content_length,
		                        (const char *const *)ho->headers) == 0)
			x->started = true;
		if (x->started && ho->body.len > 0) {
			logcap_answer(x, ho->body.p, ho->body.len);
			http_response_write(x->hreq, ho->body.p, ho->body.len);
		}
		cbuf_reset(&ho->body);
	}
	if (x->started)
		up_on_body(x, data, len);
	else /* the answer could not start: held again, for ho_on_done */
		(void)cbuf_append(&ho->body, data, len);
}

/* The whole answer is in: the phone's answer with the Deletes, or the upstream's as it is. */
static void
ho_on_done(void *arg, enum upstream_result result)
{
	struct exchange *x = arg;
	struct handover *ho = x->ho;
	uint8_t *out = NULL;
	size_t olen = 0;
	const char *why = "not HTTP 200";

	if (x->started || result != UPSTREAM_OK) {
		up_on_done(x, result); /* streamed, or failed: as for any proxied request */
		return;
	}
	x->ureq = NULL;
	if (upprov_handover_demand(x))
		return; /* provisioning with the upstream, then the handover again */
	if (ho->status == 200 &&
	    handover_answer((const uint8_t *)ho->body.p, ho->body.len, &out, &olen, &why) == 0) {
		log_info("user=%s dev=%s: handover: the upstream's folders replace the quarantine "
		         "mailbox's",
		         x->ereq->account, x->ereq->device_id);
		x->outcome = OUT_HANDOVER;
		handover_send(x, out, olen);
		free(out);
		return;
	}
	log_warn("user=%s dev=%s: handover: the upstream's FolderSync answer (HTTP %d) is %s: "
	         "relayed as it is",
	         x->ereq->account, x->ereq->device_id, ho->status, why);
	x->outcome = OUT_PROXIED;
	handover_send(x, ho->body.p, ho->body.len);
}

/*
 * The phone's answer from the upstream's FolderSync answer (in, len): the
 * same document with Count and the quarantine folders' Deletes first in
 * Changes. Returns 0 with *out_r (malloc'd) and *len_r, or -1 with *why
 * (static) when in is not a FolderSync Status 1 answer with a SyncKey.
 */
static int
handover_answer(const uint8_t *in, size_t len, uint8_t **out_r, size_t *len_r, const char **why)
{
	struct wbxml_limits lim = {.max_input = HANDOVER_MAX};
	struct wbxml_doc *up = NULL, *doc = NULL;
	const struct wbxml_node *root;
	struct wbxml_node *r;
	const char *st, *key;
	bool changes = false;
	int rv = -1;

	*why = "not WBXML";
	if (wbxml_decode(in, len, &lim, &up, NULL) != WBXML_OK)
		goto out;
	root = wbxml_doc_root(up);
	st = wbxml_find_text(root, "FolderHierarchy:Status");
	key = wbxml_find_text(root, "FolderHierarchy:SyncKey");
	*why = "not FolderSync Status 1";
	if (!fh_is(root, "FolderSync") || st == NULL || strcmp(st, "1") != 0 || key == NULL ||
	    key[0] == '\0')
		goto out;
	doc = wbxml_doc_new();
	r = wbxml_add_root(doc, root->page, root->token);
	for (const struct wbxml_node *c = root->first_child; c != NULL; c = c->next) {
		if (!fh_is(c, "Changes")) {
			wbxml_copy(r, c);
			continue;
		}
		struct wbxml_node *ch = wbxml_add(r, c->page, c->token);
		size_t others = 0;

		changes = true;
		for (const struct wbxml_node *k = c->first_child; k != NULL; k = k->next)
			others += fh_is(k, "Add") || fh_is(k, "Update") || fh_is(k, "Delete");
		handover_deletes(ch, others);
		for (const struct wbxml_node *k = c->first_child; k != NULL; k = k->next)
			if (!fh_is(k, "Count"))
				wbxml_copy(ch, k);
	}
	if (!changes)
		handover_deletes(wbxml_addn(r, "FolderHierarchy:Changes"), 0);
	*why = "cannot encode";
	if (wbxml_encode(doc, out_r, len_r, NULL) == WBXML_OK)
		rv = 0;
out:
	wbxml_doc_free(&up);
	wbxml_doc_free(&doc);
	return rv;
}

/* Changes' Count and a Delete for each quarantine folder, under changes. */
static void
handover_deletes(struct wbxml_node *changes, size_t others)
{
	const char *const *ids;
	size_t nq = mbx_quarantine_folder_ids(&ids);
	char count[24];

	snprintf(count, sizeof(count), "%zu", others + nq);
	wbxml_addn_text(changes, "FolderHierarchy:Count", count);
	for (size_t i = 0; i < nq; i++)
		wbxml_addn_text(wbxml_addn(changes, "FolderHierarchy:Delete"),
		                "FolderHierarchy:ServerId", ids[i]);
}

/* Append a copy of n and its subtree under parent. */
static void
wbxml_copy(struct wbxml_node *parent, const struct wbxml_node *n)
{
	struct wbxml_node *c;

	if (n->flags & WBXML_NODE_TEXT) {
		wbxml_add_text(parent, n->page, n->token, (const char *)n->data);
		return;
	}
	if (n->flags & WBXML_NODE_OPAQUE) {
		wbxml_add_opaque(parent, n->page, n->token, n->data, n->len);
		return;
	}
	c = wbxml_add(parent, n->page, n->token);
	for (const struct wbxml_node *k = n->first_child; k != NULL; k = k->next)
		wbxml_copy(c, k);
}

/* Whether n is FolderHierarchy:<tag>. */
static bool
fh_is(const struct wbxml_node *n, const char *tag)
{
	return n != NULL && n->page == WBXML_PAGE_FOLDERHIERARCHY && n->name != NULL &&
	       strcmp(n->name, tag) == 0;
}

/* Free a handover's answer; sets *hop to NULL. NULL is fine. */
static void
handover_free(struct handover **hop)
{
	struct handover *ho = *hop;

	if (ho == NULL)
		return;
	for (size_t i = 0; ho->headers != NULL && ho->headers[i] != NULL; i++)
		free(ho->headers[i]);
	free(ho->headers);
	free(ho->reason);
	cbuf_reset(&ho->body);
	free(ho);
	*hop = NULL;
}

/* ---- provisioning with the upstream (Allowed, proxied) ---- */

/*
 * Some upstreams (Z-Push, grommunio) answer every command with a
 * provisioning demand until the device has provisioned with them: HTTP 449
 * at 12.x, or a small WBXML answer whose root Status is 142, 143 or 144
 * (eas/upprov.h). The phone must not see it: it provisions with abqd (or not
 * at all, when abqd's policy imposes nothing). So abqd holds such an answer
 * (upprov_watch: 449, or a 200 WBXML answer under EAS_UPPROV_DEMAND_MAX
 * bytes; anything larger streams as it comes), runs both phases of
 * Provision with the upstream itself with the phone's credentials, query
 * identity, protocol version and User-Agent, keeps the upstream's final key
 * for the device (devstate.up_key) and sends the phone's request again with
 * it. Every later request of the device carries that key in place of the
 * phone's (proxy_via, upprov_key). The phone gets the answer to its request,
 * or a 503 with Retry-After when provisioning failed.
 *
 * Sending the phone's request again is safe for every command, SendMail and
 * MoveItems included: the upstream refused it with the demand before
 * running the command (that is what 449 and Status 142-144 say, MS-ASPROV
 * 3.1.5.1), so the one retry is its only execution. A second demand on the
 * retry is not retried again (503).
 *
 * A remote wipe the upstream asks for (Status 140, or RemoteWipe in its
 * Provision answer) is never acknowledged by abqd: it goes to the phone as it
 * came, and the phone's own Provision then goes to the upstream untouched
 * (devstate.up_wipe), so that the phone hears the directive and confirms it
 * itself. Wiping is the upstream's administrator's decision; abqd neither
 * eats nor answers it.
 */

static const struct upstream_cbs upp_cbs = {
    .on_response = upp_on_response,
    .on_body = upp_on_body,
    .on_done = upp_on_done,
};

/*
 * An Allowed device's own Provision (act): with a remote wipe of the
 * upstream's pending it goes to the upstream untouched; with abqd's policy
 * imposing something, policy_demand answers it (returns false); else abqd
 * answers it with the policy that imposes nothing, so that the phone never
 * gets the upstream's policy (abqd provisions with the upstream itself when
 * it demands). Returns whether the request was taken care of here.
 */
static bool
upprov_phone_provision(struct exchange *x, const struct devstate *s)
{
	if (s != NULL && s->up_wipe) {
		log_info("user=%s dev=%s: Provision passed to the upstream, which asked for a "
		         "remote wipe",
		         x->ereq->account, x->ereq->device_id);
		if (body_well_formed(x))
			proxy(x);
		return true;
	}
	if (s != NULL && s->policy_key != 0)
		return false;
	x->outcome = OUT_PROVISION;
	serve_mailbox(x);
	return true;
}

/*
 * The policy key a request forwarded now carries in place of the phone's:
 * during abqd's Provision with the upstream, 0 (phase 1) or the temporary
 * key (phase 2); for any other request of a device with an upstream key
 * (EAS POST, not the phone's own Provision), that key. Returns false when
 * the phone's key goes as it came.
 */
static bool
upprov_key(const struct exchange *x, uint32_t *key)
{
	const struct eas_request *r = x->ereq;

	if (x->upp != NULL && x->upp->phase != 0) {
		*key = x->upp->phase == 1 ? 0 : x->upp->temp_key;
		return true;
	}
	if (!x->up_keyed || r->path_kind != EAS_PATH_EAS || r->method != EAS_METHOD_POST ||
	    r->device_id == NULL || r->account == NULL || r->cmd == EAS_CMD_PROVISION)
		return false;
	*key = x->up_key;
	return true;
}

/*
 * Whether a header of the phone's request is left out when abqd sets the
 * policy key (upprov_key): X-MS-PolicyKey; for abqd's Provision also the
 * phone's body's Content-Type and Content-Encoding (it sends a WBXML body of
 * its own).
 */
static bool
upprov_drops(const struct exchange *x, const char *name, size_t len)
{
	if (len == 14 && mem_ieq(name, "X-MS-PolicyKey", 14))
		return true;
	if (x->upp == NULL || x->upp->phase == 0)
		return false;
	return (len == 12 && mem_ieq(name, "Content-Type", 12)) ||
	       (len == 16 && mem_ieq(name, "Content-Encoding", 16));
}

/* A copy of the upstream's headers without the hop-by-hop ones: name, value, ..., NULL. */
static char **
upprov_copy_headers(const struct upstream_header *headers, size_t n)
{
	char **h = xcalloc(2 * n + 1, sizeof(char *));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (upstream_hop_header(headers[i].name, headers[i].name_len))
			continue;
		h[k++] = xstrdup(headers[i].name);
		h[k++] = xstrdup(headers[i].value);
	}
	return h;
}

/*
 * The upstream's status line and headers for an Allowed device's command
 * (up_on_response): a 449 is held (upprov_body, upprov_done) instead of
 * passed on; a 200 WBXML answer that is small enough to be a demand
 * (Content-Length under EAS_UPPROV_DEMAND_MAX, or chunked) waits for its
 * first body piece (up_deferred_end), which shows whether it must be held.
 * Returns whether the answer was held or deferred.
 */
static bool
upprov_watch(struct exchange *x, int status, const char *reason,
             const struct upstream_header *headers, size_t n)
{
	const struct eas_request *r = x->ereq;
	int64_t cl;
	bool wbxml = false;

	if ((status != 449 && status != 200) || x->decision != ABQ_STATE_ALLOWED ||
	    r->path_kind != EAS_PATH_EAS || r->method != EAS_METHOD_POST || r->device_id == NULL ||
	    r->cmd == EAS_CMD_PROVISION)
		return false;
	cl = upstream_req_content_length(x->ureq);
	if (status == 200) {
		for (size_t i = 0; i < n && !wbxml; i++)
			wbxml = headers[i].name_len == 12 &&
			        mem_ieq(headers[i].name, "Content-Type", 12) &&
			        strncasecmp(headers[i].value, WBXML_TYPE, strlen(WBXML_TYPE)) == 0;
		if (!wbxml || cl == 0 || cl >= EAS_UPPROV_DEMAND_MAX)
			return false;
	}
	hold_end(x); /* a held Ping's wait is over, whatever the answer */
	if (status == 200) {
		/* Decided on its body (up_deferred_end): nothing copied meanwhile. */
		upstream_keep_headers(x->ureq);
		x->upstream_status = status;
		x->up_deferred = true;
		return true;
	}
	upprov_hold(x, status, reason, headers, n);
	return true;
}

/*
 * The first piece of a deferred answer's body (NULL at its end when it had
 * none): an answer whole in this piece and no demand (the usual case) goes
 * to the phone as it came (returns false: up_on_body writes the piece);
 * anything else is held as upprov_watch holds a 449 (returns true).
 */
static bool
up_deferred_end(struct exchange *x, const void *data, size_t len)
{
	struct upstream_header stack_h[32], *h = stack_h;
	const char *reason = "";
	size_t n = upstream_req_headers(x->ureq, &reason, h, 32);
	int st = 0;
	bool held = true;

	x->up_deferred = false;
	if (n > 32) {
		h = xcalloc(n, sizeof(*h));
		(void)upstream_req_headers(x->ureq, &reason, h, n);
	}
	if (data != NULL && upstream_req_content_length(x->ureq) == (int64_t)len &&
	    eas_upprov_demand(x->upstream_status, data, len, &st) == EAS_UPPROV_NONE) {
		up_start(x, x->upstream_status, reason, h, n);
		held = false;
	} else {
		upprov_hold(x, x->upstream_status, reason, h, n);
		if (data != NULL)
			upprov_body(x, data, len);
	}
	if (h != stack_h)
		free(h);
	return held;
}

/* Hold the upstream's answer (upprov_body, upprov_done): it may be a demand. */
static void
upprov_hold(struct exchange *x, int status, const char *reason,
            const struct upstream_header *headers, size_t n)
{
	x->upstream_status = status;
	if (x->upp == NULL)
		x->upp = xcalloc(1, sizeof(*x->upp));
	struct upprov *up = x->upp;
	for (size_t i = 0; up->headers != NULL && up->headers[i] != NULL; i++)
		free(up->headers[i]);
	free(up->headers);
	free(up->reason);
	cbuf_reset(&up->body);
	up->holding = true;
	up->status = status;
	up->reason = xstrdup_null(reason);
	up->content_length = upstream_req_content_length(x->ureq);
	up->headers = upprov_copy_headers(headers, n);
	cbuf_init(&up->body, EAS_UPPROV_DEMAND_MAX - 1); /* "under" the cap */
}

/*
 * A piece of a held answer: kept (a 449's body is dropped), unless the
 * answer outgrows EAS_UPPROV_DEMAND_MAX: then it is no demand, and what is
 * held goes out and the rest streams as for any proxied request.
 */
static void
upprov_body(struct exchange *x, const void *data, size_t len)
{
	struct upprov *up = x->upp;

	if (up->status == 449 || cbuf_append(&up->body, data, len) == 0)
		return;
	up->holding = false;
	x->status = up->status;
	if (http_response_start(x->hreq, up->status, up->reason, up->content_length,
	                        (const char *const *)up->headers) == 0)
		x->started = true;
	if (x->started && up->body.len > 0)
		http_response_write(x->hreq, up->body.p, up->body.len);
	cbuf_reset(&up->body);
	up_on_body(x, data, len);
}

/*
 * The held answer is whole: a demand starts abqd's Provision with the
 * upstream (or, on the retry, a 503); anything else goes to the phone as it
 * came, a remote wipe (Status 140) noted in the log and in up_wipe.
 */
static void
upprov_done(struct exchange *x, enum upstream_result result)
{
	struct upprov *up = x->upp;
	int st = 0;

	up->holding = false;
	if (result != UPSTREAM_OK) {
		up_on_done(x, result); /* nothing went out: a 503 */
		return;
	}
	x->ureq = NULL;
	switch (eas_upprov_demand(up->status, (const uint8_t *)up->body.p, up->body.len, &st)) {
	case EAS_UPPROV_DEMAND:
		up->demand = st;
		if (up->retried) {
			upprov_failed(x,
			              "the upstream demanded provisioning again with its new key");
			return;
		}
		upprov_start(x);
		return;
	case EAS_UPPROV_WIPE: {
		struct devstate *s = dev_slot(x->gw, x->ereq->account, x->ereq->device_id);
		log_info("user=%s dev=%s cmd=%s: the upstream asks for a remote wipe (Status 140): "
		         "passed to the phone, its Provision goes to the upstream",
		         x->ereq->account, x->ereq->device_id, eas_cmd_name(x->ereq->cmd));
		s->up_wipe = true;
		break;
	}
	case EAS_UPPROV_NONE:
		break;
	}
	upprov_relay(x);
}

/*
 * A handover's FolderSync (ho_on_done) answered with a provisioning demand:
 * provision with the upstream, then hand over again (upprov_start). A
 * remote wipe is noted and relayed as any answer. Returns whether the
 * exchange went on here.
 */
static bool
upprov_handover_demand(struct exchange *x)
{
	struct handover *ho = x->ho;
	int st = 0;
	enum eas_upprov_kind k =
	    eas_upprov_demand(ho->status, (const uint8_t *)ho->body.p, ho->body.len, &st);

	if (k == EAS_UPPROV_WIPE) {
		dev_slot(x->gw, x->ereq->account, x->ereq->device_id)->up_wipe = true;
		log_info("user=%s dev=%s: the upstream asks for a remote wipe (Status 140): passed "
		         "to the phone, its Provision goes to the upstream",
		         x->ereq->account, x->ereq->device_id);
		return false;
	}
	if (k != EAS_UPPROV_DEMAND)
		return false;
	if (x->upp == NULL)
		x->upp = xcalloc(1, sizeof(*x->upp));
	x->upp->handover = true;
	x->upp->demand = st;
	if (x->upp->retried) {
		upprov_failed(x, "the upstream demanded provisioning again with its new key");
		return true;
	}
	upprov_start(x);
	return true;
}

/* The upstream demanded provisioning: its phase 1. */
static void
upprov_start(struct exchange *x)
{
	log_info("user=%s dev=%s cmd=%s ver=%s: the upstream demands provisioning (%d): "
	         "provisioning with it for the device",
	         x->ereq->account, x->ereq->device_id, eas_cmd_name(x->ereq->cmd),
	         x->ereq->protocol_version ? x->ereq->protocol_version : "-", x->upp->demand);
	upprov_send(x, 1);
}

/*
 * Send abqd's Provision phase (1 or 2) to the upstream: the phone's
 * credentials, identity (the query rebuilt for Provision) and headers, with
 * abqd's body, Content-Type and policy key (proxy_via, upprov_key).
 */
static void
upprov_send(struct exchange *x, int phase)
{
	struct upprov *up = x->upp;
	uint8_t *body = NULL;
	size_t len = 0;
	char temp[16];
	const char *ua =
	    x->has_info && x->info.user_agent ? x->info.user_agent : x->ereq->user_agent;

	snprintf(temp, sizeof(temp), "%" PRIu32, up->temp_key);
	if (eas_upprov_request(x->ereq->protocol_version, phase == 2 ? temp : NULL, ua, &body,
	                       &len) < 0) {
		upprov_failed(x, "cannot build the Provision request");
		return;
	}
	up->phase = phase;
	up->phase_status = 0;
	cbuf_reset(&up->pbody);
	cbuf_init(&up->pbody, UPPROV_ANSWER_MAX);
	proxy_via(x, body, len, &upp_cbs); /* the body is copied: it is small */
	free(body);
}

/* The status line of the upstream's answer to abqd's Provision. */
static void
upp_on_response(void *arg, int status, const char *reason, const struct upstream_header *headers,
                size_t n)
{
	struct exchange *x = arg;

	(void)reason;
	(void)headers;
	(void)n;
	x->upp->phase_status = status;
	if (status == 401 && x->ereq->auth_user != NULL)
		auth_forget(x->gw->auth, x->ereq->auth_user, x->ereq->auth_password);
}

/* A piece of that answer: kept up to the cap (a policy is a few hundred bytes). */
static void
upp_on_body(void *arg, const void *data, size_t len)
{
	struct exchange *x = arg;

	if (cbuf_append(&x->upp->pbody, data, len) < 0)
		x->upp->phase_status = -1; /* over the cap: refused in upp_on_done */
}

/*
 * The upstream's answer to abqd's Provision is whole. Phase 1 with a
 * temporary key: phase 2 acknowledges it. Phase 2 with the final key: kept
 * for the device, and the phone's request goes again (or the handover runs
 * again) with it. A RemoteWipe is not acknowledged: the phone gets the
 * upstream's demand as it came, and provisions (with the upstream) itself.
 */
static void
upp_on_done(void *arg, enum upstream_result result)
{
	struct exchange *x = arg;
	struct upprov *up = x->upp;
	struct eas_upprov_answer a;
	char why[160];

	x->ureq = NULL;
	if (result != UPSTREAM_OK) {
		snprintf(why, sizeof(why), "phase %d: %s", up->phase, upstream_strerror(result));
		upprov_failed(x, why);
		return;
	}
	if (up->phase_status != 200 ||
	    eas_upprov_answer((const uint8_t *)up->pbody.p, up->pbody.len, &a) < 0) {
		if (up->phase_status == -1)
			snprintf(why, sizeof(why), "phase %d: an answer over 64 KiB", up->phase);
		else if (up->phase_status != 200)
			snprintf(why, sizeof(why), "phase %d: HTTP %d", up->phase,
			         up->phase_status);
		else
			snprintf(why, sizeof(why), "phase %d: not a Provision answer", up->phase);
		upprov_failed(x, why);
		return;
	}
	if (a.wipe) {
		dev_slot(x->gw, x->ereq->account, x->ereq->device_id)->up_wipe = true;
		log_info("user=%s dev=%s: the upstream's Provision carries a remote wipe: not "
		         "acknowledged; its demand goes to the phone, whose Provision goes to the "
		         "upstream",
		         x->ereq->account, x->ereq->device_id);
		upprov_relay(x);
		return;
	}
	if (a.status != 1 || a.policy_status != 1 || !a.has_key) {
		snprintf(why, sizeof(why), "phase %d: Status %d, Policy Status %d%s", up->phase,
		         a.status, a.policy_status, a.has_key ? "" : ", no PolicyKey");
		upprov_failed(x, why);
		return;
	}
	if (up->phase == 1) {
		up->temp_key = a.key;
		upprov_send(x, 2);
		return;
	}
	struct devstate *s = dev_slot(x->gw, x->ereq->account, x->ereq->device_id);
	s->up_keyed = x->up_keyed = true;
	s->up_key = x->up_key = a.key;
	s->up_wipe = false;
	log_info("user=%s dev=%s: provisioned with the upstream (its PolicyKey %" PRIu32
	         "): the %s goes again with it",
	         x->ereq->account, x->ereq->device_id, a.key,
	         up->handover ? "handover" : eas_cmd_name(x->ereq->cmd));
	up->phase = 0;
	up->retried = true;
	cbuf_reset(&up->body);
	cbuf_reset(&up->pbody);
	/* The one retry: the upstream refused the request unexecuted (see above). */
	if (up->handover)
		handover(x);
	else
		proxy(x);
}

/* Provisioning with the upstream failed: the phone gets a 503, never the demand. */
static void
upprov_failed(struct exchange *x, const char *why)
{
	log_warn("user=%s dev=%s cmd=%s: provisioning with the upstream failed: %s; 503 to the "
	         "phone",
	         x->ereq->account, x->ereq->device_id, eas_cmd_name(x->ereq->cmd), why);
	respond_503(x, OUT_UPSTREAM_PROVISION, RETRY_AFTER_S);
}

/*
 * The held answer goes to the phone as the upstream sent it (not a demand,
 * or a remote wipe's). A handover's answer is the handover's own.
 */
static void
upprov_relay(struct exchange *x)
{
	struct upprov *up = x->upp;
	struct http_request *hreq = x->hreq;

	if (up->handover && x->ho != NULL) {
		x->outcome = OUT_PROXIED;
		handover_send(x, x->ho->body.p, x->ho->body.len);
		return;
	}
	x->status = up->status;
	if (http_response_start(hreq, up->status, up->reason,
	                        up->status == 449 ? 0 : (int64_t)up->body.len,
	                        (const char *const *)up->headers) == 0) {
		if (up->status != 449 && up->body.len > 0)
			http_response_write(hreq, up->body.p, up->body.len);
		http_response_end(hreq);
	}
	x->hreq = NULL;
	exchange_finish(x);
}

/* Free an exchange's provisioning state; sets *upp to NULL. NULL is fine. */
static void
upprov_free(struct upprov **upp)
{
	struct upprov *up = *upp;

	if (up == NULL)
		return;
	for (size_t i = 0; up->headers != NULL && up->headers[i] != NULL; i++)
		free(up->headers[i]);
	free(up->headers);
	free(up->reason);
	cbuf_reset(&up->body);
	cbuf_reset(&up->pbody);
	free(up);
	*upp = NULL;
}

/* ---- answering ---- */

/* Send an answer the command layer built (status, type, headers, body). */
static void
respond_out(struct exchange *x, const struct mbx_serve_out *out)
{
	const char *h[2 * MBX_OUT_HEADERS + 1];
	size_t n = 0;
	for (size_t i = 0; i < out->n_headers && i < MBX_OUT_HEADERS; i++) {
		h[n++] = out->headers[i][0];
		h[n++] = out->headers[i][1];
	}
	h[n] = NULL;
	respond(x, out->http_status, out->body_len > 0 ? out->content_type : NULL, out->body,
	        out->body_len, h);
}

/* Answer with a small body and extra headers (NULL-terminated pairs), then finish. */
static void
respond(struct exchange *x, int status, const char *ctype, const void *body, size_t len,
        const char *const *extra)
{
	const char *h[12];
	size_t n = 0;
	if (ctype != NULL) {
		h[n++] = "Content-Type";
		h[n++] = ctype;
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 10; i += 2) {
		h[n++] = extra[i];
		h[n++] = extra[i + 1];
	}
	h[n] = NULL;
	x->status = status;
	logcap_answer(x, body, len);
	/* The line is logged while the request (and its address) still exists. */
	struct http_request *hreq = x->hreq;
	if (http_response_start(hreq, status, NULL, (int64_t)len, h) == 0) {
		if (len > 0)
			http_response_write(hreq, body, len);
		http_response_end(hreq);
	}
	x->hreq = NULL;
	exchange_finish(x);
}

/* A short plain-text answer of abqd's own (errors and refusals). */
static void
respond_text(struct exchange *x, int status, const char *text, const char *const *extra)
{
	respond(x, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

/*
 * No usable or no good credentials: 401 with the Basic challenge, so that the
 * phone asks its user.
 */
static void
respond_401(struct exchange *x)
{
	static const char *const h[] = {"WWW-Authenticate", "Basic realm=\"ActiveSync\"", NULL};
	x->outcome = OUT_UNAUTHORIZED;
	respond_text(x, 401, "authentication required\n", h);
}

/*
 * abqd cannot answer now (store, upstream or authenticator unavailable,
 * shutting down): 503 with Retry-After, which phones honour.
 */
static void
respond_503(struct exchange *x, enum outcome why, const char *retry_after)
{
	const char *const h[] = {"Retry-After", retry_after, NULL};
	x->outcome = why;
	respond_text(x, 503, "service unavailable, try again later\n", h);
}

/* A long poll starts being held: proxied (waiting for the upstream) or by the mailbox. */
static void
hold_begin(struct exchange *x, enum abq_held_kind kind)
{
	if (x->held_gauge != 0)
		return;
	x->held_gauge = (signed char)(kind + 1);
	abq_metrics_held(kind, +1);
	if (x->hreq != NULL)
		http_request_held(x->hreq);
}

/* The hold ends, whichever way; a no-op when nothing is held. */
static void
hold_end(struct exchange *x)
{
	if (x->held_gauge == 0)
		return;
	abq_metrics_held((enum abq_held_kind)(x->held_gauge - 1), -1);
	x->held_gauge = 0;
}

/* ---- finishing ---- */

/*
 * What became of a request: its word in the log line and its outcome in
 * abqd_requests_total (docs/api.md), in one table so the two cannot disagree.
 * OPTIONS and passthrough requests that were proxied count as other.
 */
static const struct {
	const char *word;
	enum abq_req_outcome metric;
} outcomes[OUT_COUNT] = {
    [OUT_NONE] = {"-", ABQ_OUTCOME_OTHER},
    [OUT_PROXIED] = {"proxied", ABQ_OUTCOME_PROXIED},
    [OUT_MAILBOX] = {"mailbox", ABQ_OUTCOME_MAILBOX},
    [OUT_MAILBOX_HELD] = {"mailbox-held", ABQ_OUTCOME_OTHER},
    [OUT_BLOCKED] = {"blocked", ABQ_OUTCOME_BLOCKED},
    [OUT_LIMIT] = {"limit", ABQ_OUTCOME_LIMIT},
    [OUT_UNAUTHORIZED] = {"unauthorized", ABQ_OUTCOME_UNAUTHORIZED},
    [OUT_RATE_LIMITED] = {"rate-limited", ABQ_OUTCOME_RATE_LIMITED},
    [OUT_BAD_REQUEST] = {"bad-request", ABQ_OUTCOME_BAD_REQUEST},
    [OUT_BAD_WBXML] = {"bad-wbxml", ABQ_OUTCOME_BAD_REQUEST},
    [OUT_NOT_FOUND] = {"not-found", ABQ_OUTCOME_OTHER},
    [OUT_BAD_METHOD] = {"bad-method", ABQ_OUTCOME_BAD_REQUEST},
    [OUT_START_OVER] = {"start-over", ABQ_OUTCOME_OTHER},
    [OUT_WIPE] = {"wipe", ABQ_OUTCOME_OTHER},
    [OUT_PROVISION] = {"provision", ABQ_OUTCOME_OTHER},
    [OUT_HANDOVER] = {"handover", ABQ_OUTCOME_PROXIED},
    [OUT_CUT] = {"cut", ABQ_OUTCOME_OTHER},
    [OUT_CLIENT_GONE] = {"client-gone", ABQ_OUTCOME_OTHER},
    [OUT_CLIENT_GONE_WHILE_HELD] = {"client-gone-while-held", ABQ_OUTCOME_OTHER},
    [OUT_UPSTREAM_FAILED] = {"upstream-failed", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_UPSTREAM_BUSY] = {"upstream-busy", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_STORE_FAILED] = {"store-failed", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_STORE_LOST] = {"store-lost", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_MAILBOX_FAILED] = {"mailbox-failed", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_AUTH_UNAVAILABLE] = {"auth-unavailable", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_NO_DECISION] = {"no-decision", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_SHUTTING_DOWN] = {"shutting-down", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_AUTODISCOVER] = {"autodiscover", ABQ_OUTCOME_OTHER},
    [OUT_NATIVE] = {"native", ABQ_OUTCOME_PROXIED},
    [OUT_NATIVE_HELD] = {"native-held", ABQ_OUTCOME_OTHER},
    [OUT_NATIVE_FAILED] = {"native-failed", ABQ_OUTCOME_UNAVAILABLE},
    [OUT_UPSTREAM_PROVISION] = {"upstream-provision", ABQ_OUTCOME_UNAVAILABLE},
};

/* The metrics outcome of a finished exchange. */
static enum abq_req_outcome
metrics_outcome(const struct exchange *x)
{
	if (x->outcome == OUT_PROXIED)
		return x->ereq != NULL && x->ereq->path_kind == EAS_PATH_EAS &&
		               x->ereq->method == EAS_METHOD_POST
		           ? ABQ_OUTCOME_PROXIED
		           : ABQ_OUTCOME_OTHER;
	return outcomes[x->outcome].metric;
}

/* Milliseconds since the request arrived, for the log line and the latency histogram. */
static long long
elapsed_ms(const struct exchange *x)
{
	return (long long)(loop_seconds_since(x->gw->base, &x->t0) * 1000);
}

/* Log the request's line and free the exchange. */
static void
exchange_finish(struct exchange *x)
{
	struct gateway *gw = x->gw;
	const struct eas_request *r = x->ereq;
	char up[16] = "-";

	/* The request line costs a format: only when it is written. */
	if (log_enabled(LOG_LEVEL_INFO)) {
		if (x->upstream_status > 0)
			snprintf(up, sizeof(up), "%d", x->upstream_status);
		log_info("user=%s dev=%s cmd=%s ver=%s addr=%s decision=%s outcome=%s upstream=%s "
		         "status=%d ms=%lld",
		         r && r->account ? r->account : "-", r && r->device_id ? r->device_id : "-",
		         r ? (r->cmd != EAS_CMD_NONE ? eas_cmd_name(r->cmd)
		                                     : (r->method_name ? r->method_name : "-"))
		           : "-",
		         r && r->protocol_version ? r->protocol_version : "-",
		         x->client[0] ? x->client : "-",
		         x->decision != ABQ_STATE_NONE ? abq_state_name(x->decision) : "-",
		         outcomes[x->outcome].word, up, x->status, elapsed_ms(x));
	}
	abq_metrics_request(r != NULL ? (int)r->cmd : 0, metrics_outcome(x));
	logcap_end(x);
	hold_end(x);
	if (x->ap != NULL)
		auth_cancel(x->ap);
	if (x->job != NULL)
		storeq_cancel(x->job);
	if (x->ureq != NULL)
		upstream_cancel(x->ureq);
	if (x->native != NULL)
		native_detach(x);
	hold_stop(x);
	handover_free(&x->ho);
	upprov_free(&x->upp);
	LIST_REMOVE(x, link);
	gw->in_flight--;
	eas_request_free(&x->ereq);
	eas_devinfo_clear(&x->info);
	blk_free(&gw->exchange_blocks, x);
}

/* ---- decisions pushed by the store thread ---- */

/* The store thread reports a recorded decision (start, or the change log). */
static void
on_device(void *arg, const char *account, const char *device_id, const struct abq_view_device *now)
{
	struct gateway *gw = arg;
	struct devstate *d = dev_slot(gw, account, device_id);
	bool wipe = now->wipe == ABQ_WIPE_REQUESTED;
	/* A wipe asked for ends what the device holds, as a state change does. */
	bool changed = d->state != now->state || (wipe && !d->wipe);
	if (d->state != now->state && gw->loaded && now->state != ABQ_STATE_NONE)
		abq_metrics_decision(now->state, now->reason);
	d->state = now->state;
	d->reason = now->reason;
	d->rule_id = now->rule_id;
	d->wipe = wipe;
	d->policy_key =
	    now->policy != 0 ? abq_prov_device_key(now->policy, account, device_id, false) : 0;
	if (now->state == ABQ_STATE_NONE)
		d->facts_known = false;
	if (changed && !LIST_EMPTY(&gw->exchanges))
		end_for_state(gw, account, device_id, now->state, now->reason);
}

/*
 * A device changed state: end what it holds. A request whose answer has not
 * started gets the new state's answer; one already streaming is cut.
 */
static void
end_for_state(struct gateway *gw, const char *account, const char *device_id, enum abq_state state,
              enum abq_reason reason)
{
	struct exchange *x, *next;
	const struct devstate *s = dev_get(gw, account, device_id);
	bool wipe = s != NULL && s->wipe;
	for (x = LIST_FIRST(&gw->exchanges); x != NULL; x = next) {
		next = LIST_NEXT(x, link);
		if ((x->ureq == NULL && x->hold_timer == NULL) || x->ereq->account == NULL ||
		    x->ereq->device_id == NULL || strcmp(x->ereq->account, account) != 0 ||
		    strcasecmp(x->ereq->device_id, device_id) != 0)
			continue;
		if (x->hold_timer != NULL) {
			/*
			 * Held by the quarantine mailbox, or in native mode for an
			 * Allowed device: ended when the device leaves that side.
			 */
			bool native_held = x->outcome == OUT_NATIVE_HELD;
			if (!wipe && (native_held ? state == ABQ_STATE_ALLOWED
			                          : (state == ABQ_STATE_QUARANTINED ||
			                             state == ABQ_STATE_DISCOVERY)))
				continue;
			log_info("user=%s dev=%s: now %s, ending the mailbox's held %s", account,
			         device_id, abq_state_name(state), eas_cmd_name(x->ereq->cmd));
			hold_stop(x); /* before a new answer that may hold again */
			if (state == ABQ_STATE_NONE)
				decide(x);
			else
				act(x, dev_get(gw, account, device_id), state, reason);
			continue;
		}
		if (state == ABQ_STATE_ALLOWED && !wipe)
			continue;
		log_info("user=%s dev=%s: now %s%s, ending its held request", account, device_id,
		         abq_state_name(state), wipe ? " with a wipe pending" : "");
		upstream_cancel(x->ureq);
		x->ureq = NULL;
		hold_end(x);
		if (!x->started && state == ABQ_STATE_NONE) {
			decide(x); /* deleted: decided anew, as at a first request */
		} else if (!x->started) {
			act(x, dev_get(gw, account, device_id), state, reason);
		} else {
			x->outcome = OUT_CUT;
			http_response_abort(x->hreq);
			x->hreq = NULL;
			exchange_finish(x);
		}
	}
}

/* ---- account loggers ---- */

/* The store thread reports the loggers (at start, and after each logger change). */
static void
on_loggers(void *arg, const struct abq_logger *v, size_t n)
{
	struct gateway *gw = arg;

	reqlog_set(gw->reqlog, v, n, abq_now());
}

/*
 * A request whose account (and device) a logger takes: keep its body (the
 * phone's, whole, read by now) for the entry written at the end.
 */
static void
logcap_begin(struct exchange *x)
{
	struct gateway *gw = x->gw;
	const struct eas_request *r = x->ereq;
	int64_t now;
	size_t blen = 0;
	const void *body;

	if (r == NULL || !reqlog_any(gw->reqlog))
		return;
	now = abq_now(); /* the clock abqctl gave the logger's until by */
	if (!reqlog_wants(gw->reqlog, r->account, r->device_id, now))
		return;
	x->logcap = xcalloc(1, sizeof(*x->logcap));
	cbuf_init(&x->logcap->req, REQLOG_BODY_MAX);
	cbuf_init(&x->logcap->ans, REQLOG_BODY_MAX);
	x->logcap->at = now;
	body = http_request_body(x->hreq, &blen);
	x->logcap->req_total = blen;
	if (blen > 0)
		(void)cbuf_append(&x->logcap->req, body,
		                  blen < REQLOG_BODY_MAX ? blen : REQLOG_BODY_MAX);
}

/* A piece of the answer the phone gets: kept up to REQLOG_BODY_MAX, never delaying it. */
static void
logcap_answer(struct exchange *x, const void *data, size_t len)
{
	struct logcap *c = x->logcap;

	if (c == NULL || len == 0)
		return;
	c->ans_total += len;
	if (c->ans.len < REQLOG_BODY_MAX) {
		size_t room = REQLOG_BODY_MAX - c->ans.len;
		(void)cbuf_append(&c->ans, data, len < room ? len : room);
	}
}

/* The exchange ends: its entry to the loggers that still take it, then the copy goes. */
static void
logcap_end(struct exchange *x)
{
	struct logcap *c = x->logcap;
	const struct eas_request *r = x->ereq;

	if (c == NULL)
		return;
	x->logcap = NULL;
	struct reqlog_entry e = {
	    .at = c->at,
	    .client = x->client[0] ? x->client : NULL,
	    .account = r->account,
	    .device_id = r->device_id,
	    .cmd = r->cmd != EAS_CMD_NONE ? eas_cmd_name(r->cmd) : r->method_name,
	    .version = r->protocol_version,
	    .status = x->status,
	    .outcome = outcomes[x->outcome].word,
	    .ms = elapsed_ms(x),
	    .req = c->req.p,
	    .req_len = c->req.len,
	    .req_total = c->req_total,
	    .ans = c->ans.p,
	    .ans_len = c->ans.len,
	    .ans_total = c->ans_total,
	};
	reqlog_write(x->gw->reqlog, &e, abq_now());
	cbuf_reset(&c->req);
	cbuf_reset(&c->ans);
	free(c);
}

/* ---- setting up and tearing down ---- */

/* The HTTP server's messages, into abqd's log at the same level. */
static void
http_log(void *arg, enum http_log_level level, const char *msg)
{
	(void)arg;
	if (level == HTTP_LOG_WARN)
		log_warn("%s", msg);
	else if (level == HTTP_LOG_INFO)
		log_info("%s", msg);
	else
		log_debug("%s", msg);
}

_Static_assert(EAS_CMD_COUNT <= ABQ_METRICS_COMMANDS_MAX, "every command has a metrics slot");

/* The metrics' command label: the MS-ASCMD name (lib/metrics.h takes it as a callback). */
static const char *
metrics_cmd_name(int cmd)
{
	return eas_cmd_name((enum eas_cmd)cmd);
}

/* "a, b" from a list, for the trusted_proxies conf string. */
static char *
cidr_list(const struct abq_config *cfg)
{
	char *s = NULL;
	for (size_t i = 0; i < cfg->eas_trusted_proxies_count; i++) {
		char addr[64];
		const struct abq_cidr *c = &cfg->eas_trusted_proxies[i];
		if (evutil_inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
			continue;
		char *n = s ? xasprintf("%s,%s/%u", s, addr, c->prefix)
		            : xasprintf("%s/%u", addr, c->prefix);
		free(s);
		s = n;
	}
	return s;
}

/* The single-process gateway: gateway_new_worker without a worker's listeners. */
struct gateway *
gateway_new(struct event_base *base, const struct abq_config *cfg, char **errmsg_r)
{
	return gateway_new_worker(base, cfg, NULL, errmsg_r);
}

/* Seconds between two looks at the heap (on_trim). */
#define TRIM_SECONDS 30

/*
 * Every TRIM_SECONDS: when fewer requests are in flight than at the previous
 * tick (held phones went away), hand the heap's free pages back to the kernel.
 * glibc keeps what a burst of held connections freed (bench/held.sh measured
 * 25 MiB in use against 400 MiB resident after 50,000 Pings ended), and
 * malloc_trim(0) releases the free pages inside its arenas, not only their
 * tops. It costs a walk of the arenas, a few milliseconds at most, and only
 * after the load fell.
 */
static void
on_trim(evutil_socket_t fd, short what, void *arg)
{
	struct gateway *gw = arg;

	if (gw->in_flight < gw->trim_last)
		malloc_trim(0);
	gw->trim_last = gw->in_flight;
}

/*
 * Build the gateway (gateway.h): the store thread with the device map loaded
 * from the store, the authenticator, the upstream client, the notice sender on
 * the site's worker, and the [eas] listeners (bound here, or the worker's,
 * bound by the main process).
 */
struct gateway *
gateway_new_worker(struct event_base *base, const struct abq_config *cfg,
                   const struct gateway_worker *w, char **errmsg_r)
{
	struct gateway *gw = xcalloc(1, sizeof(*gw));
	const char *err = NULL;
	char *trusted = NULL;

	gw->base = base;
	abq_hmap_init(&gw->devices);
	abq_metrics_commands(metrics_cmd_name, EAS_CMD_COUNT);
	abq_metrics_init(abq_now());
	gw->default_domain = xstrdup_null(cfg->eas_default_domain);
	gw->mail_domain = xstrdup_null(cfg->smtp_domain);
	gw->sender = xstrdup_null(cfg->smtp_from);
	gw->npassthrough = gw->npass_conf = cfg->eas_passthrough_count;
	gw->passthrough = xcalloc(gw->npassthrough + 2, sizeof(char *));
	for (size_t i = 0; i < gw->npassthrough; i++)
		gw->passthrough[i] = xstrdup(cfg->eas_passthrough[i]);
	gw->public_url = xstrdup_null(cfg->eas_public_url);
	if (gw->public_url != NULL) {
		bool covered = false;
		autod_init();
		for (size_t i = 0; i < gw->npass_conf; i++) {
			size_t n = strlen(gw->passthrough[i]);
			while (n > 0 && gw->passthrough[i][n - 1] == '/')
				n--;
			covered |= n == 0 || (n == 13 && strncasecmp(gw->passthrough[i],
			                                             "/autodiscover", n) == 0);
		}
		/* Autodiscover reaches abqd even when no passthrough entry takes it. */
		if (!covered)
			gw->passthrough[gw->npassthrough++] = xstrdup("/autodiscover");
		log_info("autodiscover: ActiveSync answered by abqd with %s; other Autodiscover "
		         "requests go to the upstream%s",
		         gw->public_url, covered ? "" : " only under a [eas] passthrough entry");
	} else {
		log_info(
		    "autodiscover: no [eas] public_url: Autodiscover requests go to the upstream "
		    "through [eas] passthrough");
	}
	gw->rcfg.eas_path = cfg->eas_path;
	gw->rcfg.passthrough = (const char *const *)gw->passthrough;
	gw->rcfg.n_passthrough = gw->npassthrough;
	gw->exchange_blocks.size = sizeof(struct exchange);
	gw->ereq_blocks.size = 2048; /* a request and its strings, as a phone sends them */
	gw->rcfg.blocks = &gw->ereq_blocks;
	gw->rcfg.default_domain = gw->default_domain;

	/* Notices are on when [smtp] from is set: the sender delivers the outbox. */
	char *admins = NULL;
	struct abq_notice_conf ncs;
	const struct abq_notice_conf *nc = abq_notice_conf_from(cfg, &ncs, &admins);
	gw->store_grace = cfg->store_grace;
	gw->sq = storeq_start(base, cfg->store_url, cfg->base_dir, cfg->eas_default_domain, nc,
	                      on_device, gw, errmsg_r);
	free(admins);
	if (gw->sq == NULL)
		goto fail;
	gw->loaded = true;
	gw->reqlog = reqlog_new(base);
	storeq_set_logger_cb(gw->sq, on_loggers, gw);
	/* One sender (and digest) per site: in a prefork abqd, only one worker's. */
	if (cfg->smtp_from != NULL && (w == NULL || w->site_tasks)) {
		/* After storeq_start: the sender opens the store it created. */
		struct notice_sender_config sc = {
		    .store_url = cfg->store_url,
		    .base_dir = cfg->base_dir,
		    .smtp_url = cfg->smtp_url,
		    .starttls = cfg->smtp_starttls,
		    .from = cfg->smtp_from,
		    .username = cfg->smtp_username,
		    .password = cfg->smtp_password,
		    .interval = NOTICE_INTERVAL_S,
		    .admins = (const char *const *)cfg->smtp_admins,
		    .n_admins = cfg->smtp_admins_count,
		    .default_domain = cfg->eas_default_domain,
		};
		if ((gw->notices = notice_sender_start(&sc, &err)) == NULL) {
			*errmsg_r = xasprintf("notice sender: %s", err);
			goto fail;
		}
		storeq_set_sender(gw->sq, gw->notices);
		log_info("notices: on, through %s", cfg->smtp_url);
	}

	struct upstream_conf uc = {
	    .url = cfg->upstream_url,
	    .ca_file = cfg->upstream_ca_file,
	    .connect_timeout = (unsigned)cfg->upstream_connect_timeout,
	    .request_timeout = (unsigned)cfg->upstream_request_timeout,
	    /* Every held long poll holds one upstream connection. */
	    .max_conns = MAX_CONNS,
	};
	gw->native = abq_config_native(cfg);
	if (gw->native) {
		/*
		 * max_connections_per_account is the site's, not each worker's: the
		 * kernel spreads an account's phones over every worker, each with a
		 * pool and a watcher of its own. A worker takes its share (at least
		 * one), so that the mail server sees what the administrator set.
		 */
		unsigned nw = w != NULL && w->count > 1 ? (unsigned)w->count : 1;
		unsigned share = (unsigned)cfg->upstream_max_connections_per_account / nw;
		gw->imap_gate = imap_gate_new(IMAP_LOGINS_IN_FLIGHT);
		struct imap_pool_conf pc = {
		    .url = cfg->upstream_url,
		    .ca_file = cfg->upstream_ca_file,
		    .allow_plaintext = native_loopback(cfg->upstream_url),
		    .max_per_account = share > 0 ? share : 1,
		    .connect_timeout = (unsigned)cfg->upstream_connect_timeout,
		    .gate = gw->imap_gate,
		};
		if ((gw->pool = imap_pool_new(base, &pc, &err)) == NULL) {
			*errmsg_r = xasprintf("upstream: %s", err);
			goto fail;
		}
		struct watch_conf wc = {
		    .url = cfg->upstream_url,
		    .ca_file = cfg->upstream_ca_file,
		    .allow_plaintext = pc.allow_plaintext,
		    .max_connections = pc.max_per_account,
		    .connect_timeout = pc.connect_timeout,
		    .gate = gw->imap_gate,
		};
		if ((gw->watch = watch_registry_new(base, &wc, &err)) == NULL) {
			*errmsg_r = xasprintf("upstream: %s", err);
			goto fail;
		}
		if ((gw->parseq = parseq_start(base, &err)) == NULL) {
			*errmsg_r = xasprintf("upstream: %s", err);
			goto fail;
		}
		gw->native_state.arg = gw;
		gw->native_state.get = native_state_get;
		gw->native_state.commit = native_state_commit;
		gw->native_state.client_id = native_client_id;
		/*
		 * The PIM codec: calendars, contacts and tasks once DAV is set
		 * below, and always the invitations in mail (MeetingRequest).
		 */
		gw->pim = &pim_codec;
		log_info("native mode: ActiveSync served from %s, at most %u IMAP connections per "
		         "account%s",
		         cfg->upstream_url, pc.max_per_account, nw > 1 ? " in this worker" : "");
		if (cfg->upstream_submission != NULL) {
			if ((gw->submitq = submitq_start(base, &err)) == NULL) {
				*errmsg_r = xasprintf("upstream: %s", err);
				goto fail;
			}
			gw->submission_url = xstrdup(cfg->upstream_submission);
			/* The mail server's CA: [upstream] ca_file serves IMAP and submission. */
			gw->submission_ca = xstrdup_null(cfg->upstream_ca_file);
			log_info("native mode: mail sent through %s", cfg->upstream_submission);
		}
		if (cfg->upstream_caldav != NULL || cfg->upstream_carddav != NULL) {
			if ((gw->dav_cl = curl_loop_new(base, &err)) == NULL) {
				*errmsg_r = xasprintf("[upstream] caldav: %s", err);
				goto fail;
			}
			gw->dav_shared = mbx_dav_shared_new();
			gw->dav_conf = (struct mbx_dav_conf){
			    .caldav = cfg->upstream_caldav,
			    .carddav = cfg->upstream_carddav,
			    .ca_file = cfg->upstream_ca_file,
			    .connect_timeout_ms = (unsigned)cfg->upstream_connect_timeout * 1000,
			    .timeout_ms = (unsigned)cfg->upstream_request_timeout * 1000,
			    .max_age_s = (unsigned)cfg->upstream_dav_max_age,
			};
			gw->dav_store =
			    (struct mbx_dav_store){gw, native_store_call, native_store_cancel};
			gw->dav_poll_s = (int)cfg->upstream_dav_poll_interval;
			log_info("native mode: calendars and tasks from %s, address books from %s",
			         cfg->upstream_caldav ? cfg->upstream_caldav : "(none)",
			         cfg->upstream_carddav ? cfg->upstream_carddav : "(none)");
		}
		if (cfg->upstream_gal != NULL &&
		    (strncasecmp(cfg->upstream_gal, "http://", 7) == 0 ||
		     strncasecmp(cfg->upstream_gal, "https://", 8) == 0)) {
			struct gal_carddav_conf gc = {
			    .url = cfg->upstream_gal,
			    .user = cfg->upstream_gal_bind_dn,
			    .password = cfg->upstream_gal_bind_password,
			    .ca_file = cfg->upstream_ca_file,
			    .connect_timeout_ms = (unsigned)cfg->upstream_connect_timeout * 1000,
			    .timeout_ms =
			        (unsigned)(cfg->upstream_request_timeout < GAL_SEARCH_TIMEOUT
			                       ? cfg->upstream_request_timeout
			                       : GAL_SEARCH_TIMEOUT) *
			        1000,
			};
			if ((gw->gal_dav = gal_carddav_new(base, &gc, &err)) == NULL) {
				*errmsg_r = xasprintf("[upstream] gal: %s", err);
				goto fail;
			}
			log_info(
			    "native mode: global address list from the address book %s, read with "
			    "%s",
			    cfg->upstream_gal,
			    gc.user ? "gal_bind_dn's credentials"
			            : "each phone user's credentials");
		} else if (cfg->upstream_gal != NULL) {
			struct gal_ldap_conf gc = {
			    .url = cfg->upstream_gal,
			    .bind_dn = cfg->upstream_gal_bind_dn,
			    .bind_password = cfg->upstream_gal_bind_password,
			    .ca_file = cfg->upstream_ca_file,
			    .connect_timeout = (int)cfg->upstream_connect_timeout,
			    .timeout = cfg->upstream_request_timeout < GAL_SEARCH_TIMEOUT
			                   ? (int)cfg->upstream_request_timeout
			                   : GAL_SEARCH_TIMEOUT,
			};
			if ((gw->gal = gal_ldap_new(base, &gc, &err)) == NULL) {
				*errmsg_r = xasprintf("[upstream] gal: %s", err);
				goto fail;
			}
			log_info("native mode: global address list from %s", cfg->upstream_gal);
		}
	} else if ((gw->up = upstream_new(base, &uc, &err)) == NULL) {
		*errmsg_r = xasprintf("upstream: %s", err);
		goto fail;
	}
	/* Native mode checks credentials against the IMAP server unless [auth] says otherwise. */
	bool auth_imap = gw->native && strcmp(cfg->auth_method, "upstream") == 0;
	struct auth_conf ac = {
	    .method = auth_imap ? cfg->upstream_url : cfg->auth_method,
	    .upstream_url = cfg->upstream_url,
	    .ca_file = cfg->upstream_ca_file,
	    .connect_timeout_ms = cfg->upstream_connect_timeout * 1000,
	    .request_timeout_ms = cfg->upstream_request_timeout * 1000,
	    .cache_ttl_ms = cfg->auth_cache_ttl * 1000,
	    .failure_ttl_ms = cfg->auth_failure_ttl * 1000,
	    .max_failures_per_address = (unsigned)cfg->auth_max_failures_per_address,
	    .max_failures_per_account = (unsigned)cfg->auth_max_failures_per_account,
	    .max_probes_per_address = (unsigned)cfg->auth_max_probes_per_address,
	    .max_probes_per_account = (unsigned)cfg->auth_max_probes_per_account,
	    .default_domain = gw->default_domain,
	};
	if ((gw->auth = auth_new(base, &ac, &err)) == NULL) {
		*errmsg_r = xasprintf("auth: %s", err);
		goto fail;
	}

	struct http_server_conf hc;
	http_server_conf_defaults(&hc);
	hc.max_body = (size_t)cfg->eas_max_body;
	hc.max_body_total = (size_t)cfg->eas_max_body_total;
	hc.header_timeout_ms = (unsigned)(cfg->eas_header_timeout * 1000);
	hc.max_conns_per_addr = (unsigned)cfg->eas_max_connections_per_address;
	hc.max_conns = MAX_CONNS;
	/* A held request may go quiet for its whole heartbeat. */
	hc.write_timeout_ms = HELD_TIMEOUT_S * 1000;
	hc.trusted_proxies = trusted = cidr_list(cfg);
	hc.log = http_log;
	gw->srv = http_server_new(base, &hc, &handler, gw, &err);
	free(trusted);
	if (gw->srv == NULL) {
		*errmsg_r = xasprintf("eas: %s", err);
		goto fail;
	}
	for (size_t i = 0; i < cfg->eas_listen_count; i++) {
		const struct abq_listen *l = &cfg->eas_listen[i];
		char *addr = strchr(l->host, ':') ? xasprintf("[%s]:%s", l->host, l->port)
		                                  : xasprintf("%s:%s", l->host, l->port);
		if (w != NULL) {
			/* Bound by the main process before it forked this worker. */
			gw->tls = w->tls;
			gw->tls_borrowed = true;
			if (http_server_adopt(gw->srv, w->listen_fds[i], l->tls ? w->tls : NULL,
			                      &err) < 0) {
				*errmsg_r =
				    xasprintf("listen %s%s: %s", l->tls ? "tls:" : "", addr, err);
				free(addr);
				goto fail;
			}
			free(addr);
			continue;
		}
		if (l->tls && gw->tls == NULL &&
		    (gw->tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, &err)) == NULL) {
			*errmsg_r = xasprintf("tls: %s", err);
			free(addr);
			goto fail;
		}
		if (http_server_listen(gw->srv, addr, l->tls ? gw->tls : NULL, NULL, &err) < 0) {
			*errmsg_r = xasprintf("listen %s%s: %s", l->tls ? "tls:" : "", addr, err);
			free(addr);
			goto fail;
		}
		log_info("listening on %s%s", l->tls ? "tls:" : "", addr);
		free(addr);
	}
	struct timeval trim_tv = {TRIM_SECONDS, 0};
	gw->trim_timer = event_new(base, -1, EV_PERSIST, on_trim, gw);
	if (gw->trim_timer != NULL)
		event_add(gw->trim_timer, &trim_tv);
	return gw;
fail:
	gateway_free(&gw);
	return NULL;
}

/* The store's files, for chown before privileges are dropped (storeq_files). */
const char *const *
gateway_store_files(struct gateway *gw)
{
	return storeq_files(gw->sq);
}

/*
 * SIGHUP: reload the TLS certificate for new connections (the old one stays
 * when the new one fails); the rest of the config needs a restart.
 */
void
gateway_reload(struct gateway *gw, const struct abq_config *cfg)
{
	const char *err;
	if (gw->tls != NULL) {
		if (tls_reload(gw->tls, &err) < 0)
			log_error("reload: TLS certificate not reloaded, the old one stays: %s",
			          err);
		else
			log_info("reload: TLS certificate reloaded for new connections");
	}
	(void)cfg;
}

/*
 * SIGTERM: stop accepting and end at once the held long polls that wait on the
 * upstream (503, Retry-After 5: the phone comes back to another abqd); the
 * others run to their end. Returns the requests still in flight.
 */
unsigned
gateway_drain(struct gateway *gw)
{
	struct exchange *x, *next;
	gw->draining = true;
	http_server_stop_listening(gw->srv);
	for (x = LIST_FIRST(&gw->exchanges); x != NULL; x = next) {
		next = LIST_NEXT(x, link);
		if (!x->held || x->ureq == NULL || x->started)
			continue;
		upstream_cancel(x->ureq);
		x->ureq = NULL;
		respond_503(x, OUT_SHUTTING_DOWN, "5");
	}
	return gw->in_flight;
}

/* Requests accepted and not yet finished, for the drain's wait. */
unsigned
gateway_in_flight(const struct gateway *gw)
{
	return gw->in_flight;
}

/*
 * Tear the gateway down: the server first (its on_abort finishes the open
 * exchanges), then the authenticator, the upstream, the store thread and the
 * notice sender.
 */
void
gateway_free(struct gateway **gwp)
{
	struct gateway *gw = *gwp;
	if (gw == NULL)
		return;
	if (gw->trim_timer != NULL)
		event_free(gw->trim_timer);
	/* The server's on_abort finishes every exchange still open. */
	http_server_free(&gw->srv);
	while (!LIST_EMPTY(&gw->exchanges))
		exchange_finish(LIST_FIRST(&gw->exchanges));
	auth_free(&gw->auth);
	upstream_free(&gw->up);
	storeq_stop(&gw->sq);
	watch_registry_free(gw->watch);
	submitq_stop(&gw->submitq); /* after the runs: their jobs are cancelled by then */
	parseq_stop(&gw->parseq);   /* likewise */
	gal_ldap_free(&gw->gal);    /* likewise */
	gal_carddav_free(&gw->gal_dav);
	curl_loop_free(&gw->dav_cl); /* likewise: the DAV backends went with their runs */
	mbx_dav_shared_free(&gw->dav_shared);
	free(gw->submission_url);
	free(gw->submission_ca);
	if (gw->pool != NULL)
		imap_pool_free(gw->pool);
	if (gw->imap_gate != NULL) /* after every client of it */
		imap_gate_free(&gw->imap_gate);
	reqlog_free(&gw->reqlog);
	notice_sender_stop(&gw->notices);
	if (!gw->tls_borrowed)
		tls_ctx_free(&gw->tls);
	abq_hmap_free(&gw->devices, devstate_free);
	for (size_t i = 0; i < gw->npassthrough; i++)
		free(gw->passthrough[i]);
	free(gw->passthrough);
	free(gw->public_url);
	free(gw->default_domain);
	free(gw->mail_domain);
	free(gw->sender);
	blk_cache_clear(&gw->exchange_blocks);
	blk_cache_clear(&gw->ereq_blocks);
	free(gw);
	*gwp = NULL;
}
