/*
 * curl_loop.c: glue between libcurl's multi socket interface and libevent.
 *
 * Design: libcurl calls sock_cb for every change in the set of sockets it
 * waits on; we keep one struct cl_sock (a persistent libevent event) per
 * socket, attached to libcurl's socket with curl_multi_assign. timer_cb
 * re-arms a single libevent timer. When an event or the timer fires we call
 * curl_multi_socket_action and then drain curl_multi_info_read, removing
 * finished handles before calling their done callbacks, so a callback may add
 * or remove transfers freely (libcurl forbids calling it back from inside its
 * own callbacks, which never happens here: our callbacks only touch libevent).
 */
#include <event2/event.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "net/curl_loop.h"
#include "lib/util.h"

/* Per transfer: what to call when it ends (kept in CURLOPT_PRIVATE). */
struct cl_xfer {
	TAILQ_ENTRY(cl_xfer) link;
	CURL *easy;
	curl_loop_done_cb *done;
	void *arg;
};

struct curl_loop {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	TAILQ_HEAD(, cl_xfer) xfers; /* added and not yet done or removed */
	unsigned running;
};

/* Per socket libcurl watches. */
struct cl_sock {
	struct curl_loop *cl;
	curl_socket_t fd;
	struct event *ev;
};

/*
 * Drain libcurl's completion messages: each finished transfer is removed from
 * the multi handle and its done callback called. The message pointer is
 * invalid after curl_multi_remove_handle, so everything is read first.
 */
static void
check_done(struct curl_loop *cl)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cl->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		struct cl_xfer *x = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(cl->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		if (x != NULL) {
			TAILQ_REMOVE(&cl->xfers, x, link);
			cl->running--;
			curl_loop_done_cb *done = x->done;
			void *arg = x->arg;
			free(x);
			done(arg, easy, rc);
		}
	}
}

/* A watched socket is ready: tell libcurl which way, then collect results. */
static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *cl = arg;
	int flags = 0, still;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cl->multi, fd, flags, &still);
	check_done(cl);
}

/* libcurl's timeout expired: let it act on whatever timed out. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *cl = arg;
	int still;

	curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	check_done(cl);
}

/*
 * CURLMOPT_TIMERFUNCTION: -1 cancels the timer, anything else (0 included)
 * arms it; firing it from the loop rather than at once keeps libcurl from
 * being re-entered.
 */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_loop *cl = userp;

	if (timeout_ms < 0) {
		evtimer_del(cl->timer);
	} else {
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
		                     .tv_usec = (timeout_ms % 1000) * 1000};
		evtimer_add(cl->timer, &tv);
	}
	return 0;
}

/*
 * CURLMOPT_SOCKETFUNCTION: create, change or drop the libevent event of one
 * socket to match what libcurl now waits for.
 */
static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curl_loop *cl = userp;
	struct cl_sock *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			event_free(s->ev);
			free(s);
			curl_multi_assign(cl->multi, fd, NULL);
		}
		return 0;
	}
	short events = EV_PERSIST;
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->cl = cl;
		s->fd = fd;
		curl_multi_assign(cl->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(cl->base, fd, events, on_socket, cl);
	if (s->ev == NULL)
		fatalx("event_new failed");
	event_add(s->ev, NULL);
	return 0;
}

/* Create the multi handle and its timer on base. */
struct curl_loop *
curl_loop_new(struct event_base *base, const char **errstr)
{
	static int global_done;
	struct curl_loop *cl;

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*errstr = "curl_global_init failed";
			return NULL;
		}
		global_done = 1;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->base = base;
	TAILQ_INIT(&cl->xfers);
	if ((cl->multi = curl_multi_init()) == NULL) {
		*errstr = "curl_multi_init failed";
		goto fail;
	}
	if ((cl->timer = evtimer_new(base, on_timer, cl)) == NULL) {
		*errstr = "evtimer_new failed";
		goto fail;
	}
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
	return cl;
fail:
	if (cl->multi != NULL)
		curl_multi_cleanup(cl->multi);
	free(cl);
	return NULL;
}

/*
 * Free the loop. Handles still attached are removed first (their struct
 * cl_xfer freed, the easy handles themselves stay their owners').
 */
void
curl_loop_free(struct curl_loop **clp)
{
	struct curl_loop *cl = *clp;

	if (cl == NULL)
		return;
	while (!TAILQ_EMPTY(&cl->xfers))
		curl_loop_remove(cl, TAILQ_FIRST(&cl->xfers)->easy);
	/* curl_multi_cleanup calls sock_cb with CURL_POLL_REMOVE for open sockets. */
	curl_multi_cleanup(cl->multi);
	event_free(cl->timer);
	free(cl);
	*clp = NULL;
}

/* Attach easy to the multi handle; libcurl arms the timer to start it. */
int
curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_cb *done, void *arg,
              const char **errstr)
{
	struct cl_xfer *x = xmalloc(sizeof(*x));

	x->easy = easy;
	x->done = done;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		*errstr = "curl_multi_add_handle failed";
		return -1;
	}
	TAILQ_INSERT_TAIL(&cl->xfers, x, link);
	cl->running++;
	return 0;
}

/* Detach a running transfer; its done callback will not be called. */
void
curl_loop_remove(struct curl_loop *cl, CURL *easy)
{
	struct cl_xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	if (x == NULL)
		return; /* not ours, or already done */
	curl_multi_remove_handle(cl->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	TAILQ_REMOVE(&cl->xfers, x, link);
	free(x);
	cl->running--;
}

/* How many transfers are attached. */
unsigned
curl_loop_running(const struct curl_loop *cl)
{
	return cl->running;
}
