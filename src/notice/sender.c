/*
 * sender.c: the outbox sender (see sender.h).
 *
 * Design: one thread, one event base, one store handle, one curl_loop. A
 * persistent timer scans the outbox every interval seconds; a pipe carries
 * kicks ('k') and the stop request ('q') from other threads. A scan copies
 * the due notices (at most SCAN_MAX) and sends them one at a time: the
 * transfer's done callback marks the notice in one transaction and starts the
 * next. A scan asked for while a batch is running is remembered and runs
 * when the batch ends.
 *
 * Outcomes: success: "sent". Failure: attempts + 1 and next_attempt = now +
 * notice_retry_delay(attempts) (30 s, 1 min, 2 min, 5 min, 10 min, 30 min, then
 * hourly). A permanent refusal (the relay answered 5xx) max_permanent times
 * in a row makes the notice "failed" (last_error says why): a relay that
 * refuses the sender or the recipient outright will not change its mind, and
 * a few retries cover a misconfiguration fixed in the meantime. Transient
 * errors (4xx, connection refused, timeouts) retry forever.
 *
 * One sender at a time: with several abqd nodes on one PostgreSQL store, only
 * the node holding the store's ABQ_LOCK_SENDER (a session lock on this
 * thread's own connection) scans the outbox and queues digests; the others
 * try to take it at each timer tick and kick, so a node that dies (its
 * connection ends, the server drops the lock) hands the work over within
 * one interval. SQLite has one node: the lock is always held.
 *
 * Exactly once: a notice is marked sent immediately after the relay accepted
 * the message (the 250 after DATA), in a single UPDATE committed at once. THE
 * ONE UNAVOIDABLE WINDOW is between that 250 and the commit: if the process
 * dies there, the notice is still queued and is sent again after the restart.
 * It lasts one SQLite commit (milliseconds); the message carries the same
 * Message-ID both times (it is rendered once, when queued), so a duplicate
 * is recognisable downstream. A crash at any other moment loses nothing and
 * duplicates nothing: before the 250 the relay has not taken responsibility
 * (RFC 5321 section 6.1), after the commit the notice is no longer due.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/curl_loop.h"
#include "notice/digest.h"
#include "lib/mime.h"
#include "notice/sender.h"
#include "store/store.h"

#define SCAN_MAX 64

/* One notice of the current batch. */
struct pending {
	int64_t id;
	int attempts;
	char *recipient;
	char *rendered;
};

/* The upload state of the running transfer. */
struct upload {
	const char *data;
	size_t len, off;
};

struct notice_sender {
	/* configuration (copies) */
	char *store_url, *base_dir, *smtp_url, *from, *username, *password;
	bool starttls, tls_insecure;
	unsigned interval, timeout;
	int max_permanent;
	char *default_domain;
	char **admins;
	size_t n_admins;
	int64_t digest_next; /* when to look for a due digest again */
	int64_t digest_iv;   /* the interval digest_next was computed with */
	int leader;          /* ABQ_LOCK_SENDER: 1 held, 0 not, -1 not asked yet */

	pthread_t thread;
	int pipe_fd[2];
	struct event_base *base;
	struct event *timer, *wake;
	struct curl_loop *cl;
	struct abq_store *store;

	struct pending batch[SCAN_MAX];
	size_t batch_n, batch_next;
	bool running, rescan;
	CURL *easy;
	struct curl_slist *rcpt;
	struct upload up;
	char curl_err[CURL_ERROR_SIZE];
};

static void send_next(struct notice_sender *ns);

/* Whether this node does the sending now (see the top of the file). */
static bool
leader(struct notice_sender *ns)
{
	const char *err;
	int rv = abq_store_try_lock(ns->store, ABQ_LOCK_SENDER, &err);

	if (rv < 0) {
		if (ns->leader != 0)
			log_warn("outbox: cannot tell whether this node sends: %s", err);
		ns->leader = 0;
		return false;
	}
	if (rv != ns->leader)
		log_info(rv ? "outbox: this node sends the notices and the digest"
		            : "outbox: another node sends the notices and the digest");
	ns->leader = rv;
	return rv == 1;
}

/* Growing delays between attempts; the last one repeats. */
unsigned
notice_retry_delay(int attempts)
{
	static const unsigned delays[] = {30, 60, 120, 300, 600, 1800, 3600};
	size_t n = sizeof(delays) / sizeof(delays[0]);

	if (attempts < 1)
		return delays[0];
	return (size_t)attempts > n ? delays[n - 1] : delays[attempts - 1];
}

/* Free the strings of the batch. */
static void
batch_clear(struct notice_sender *ns)
{
	size_t i;

	for (i = 0; i < ns->batch_n; i++) {
		free(ns->batch[i].recipient);
		free(ns->batch[i].rendered);
	}
	memset(ns->batch, 0, sizeof(ns->batch));
	ns->batch_n = ns->batch_next = 0;
}

/* Collect one due notice into the batch; stop when it is full. */
static int
collect(void *arg, const struct abq_notice *n)
{
	struct notice_sender *ns = arg;
	struct pending *p = &ns->batch[ns->batch_n++];

	p->id = n->id;
	p->attempts = n->attempts;
	p->recipient = xstrdup(n->recipient);
	p->rendered = xstrdup_null(n->rendered);
	return ns->batch_n == SCAN_MAX ? 1 : 0;
}

/* Write the outcome of one attempt in its own transaction. */
static void
mark(struct notice_sender *ns, int64_t id, const char *state, int attempts, int64_t next,
     const char *error, int64_t sent)
{
	const char *err;

	if (abq_store_begin(ns->store, &err) < 0 ||
	    abq_store_notice_mark(ns->store, id, state, attempts, next, error, sent, &err) < 0 ||
	    abq_store_commit(ns->store, &err) < 0) {
		log_warn("notice %lld: cannot record %s: %s", (long long)id, state, err);
		abq_store_rollback(ns->store);
	}
}

/* Scan the outbox and start sending, unless a batch is already running. */
static void
scan(struct notice_sender *ns)
{
	const char *err;

	if (ns->running) {
		ns->rescan = true;
		return;
	}
	ns->rescan = false;
	if (!leader(ns))
		return;
	batch_clear(ns);
	if (abq_store_notice_due(ns->store, (int64_t)time(NULL), collect, ns, &err) < 0) {
		log_warn("outbox: %s", err);
		batch_clear(ns);
		return;
	}
	if (ns->batch_n > 0) {
		ns->running = true;
		send_next(ns);
	}
}

/* libcurl reads the message from here. */
static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* A transfer ended: mark the notice and go on with the next one. */
static void
on_done(void *arg, CURL *easy, CURLcode rc)
{
	struct notice_sender *ns = arg;
	struct pending *p = &ns->batch[ns->batch_next - 1];
	int64_t now = (int64_t)time(NULL);
	long code = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK) {
		/* The window: accepted by the relay, not yet marked. Keep it short. */
		mark(ns, p->id, "sent", p->attempts + 1, now, NULL, now);
		log_info("notice %lld sent to %s", (long long)p->id, p->recipient);
	} else {
		char error[CURL_ERROR_SIZE + 64];
		int attempts = p->attempts + 1;
		bool permanent = code >= 500 && code < 600;

		snprintf(error, sizeof(error), "%s%s%s (SMTP %ld)", curl_easy_strerror(rc),
		         ns->curl_err[0] ? ": " : "", ns->curl_err, code);
		if (permanent && attempts >= ns->max_permanent)
			mark(ns, p->id, "failed", attempts, now, error, 0);
		else
			mark(ns, p->id, "queued", attempts, now + notice_retry_delay(attempts),
			     error, 0);
		log_warn("notice %lld to %s: attempt %d failed: %s", (long long)p->id, p->recipient,
		         attempts, error);
	}
	curl_easy_cleanup(easy);
	curl_slist_free_all(ns->rcpt);
	ns->easy = NULL;
	ns->rcpt = NULL;
	send_next(ns);
}

/* Start the next transfer of the batch, or end the batch. */
static void
send_next(struct notice_sender *ns)
{
	const char *err;
	char *from;

	while (ns->batch_next < ns->batch_n) {
		/* Still this node's work? (A lost connection lost the lock with it.) */
		if (!leader(ns))
			break;
		struct pending *p = &ns->batch[ns->batch_next++];
		char *rcpt;

		if (p->rendered == NULL) {
			mark(ns, p->id, "failed", p->attempts + 1, (int64_t)time(NULL),
			     "the notice has no rendered message", 0);
			continue;
		}
		ns->easy = curl_easy_init();
		if (ns->easy == NULL)
			break;
		from = mime_addr_spec(ns->from);
		rcpt = mime_addr_spec(p->recipient);
		ns->rcpt = curl_slist_append(NULL, rcpt);
		free(rcpt);
		ns->up = (struct upload){p->rendered, strlen(p->rendered), 0};
		ns->curl_err[0] = '\0';
		curl_easy_setopt(ns->easy, CURLOPT_URL, ns->smtp_url);
		curl_easy_setopt(ns->easy, CURLOPT_MAIL_FROM, from);
		curl_easy_setopt(ns->easy, CURLOPT_MAIL_RCPT, ns->rcpt);
		curl_easy_setopt(ns->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(ns->easy, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(ns->easy, CURLOPT_READDATA, &ns->up);
		curl_easy_setopt(ns->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)ns->up.len);
		curl_easy_setopt(ns->easy, CURLOPT_ERRORBUFFER, ns->curl_err);
		curl_easy_setopt(ns->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(ns->easy, CURLOPT_TIMEOUT, (long)ns->timeout);
		curl_easy_setopt(ns->easy, CURLOPT_CONNECTTIMEOUT, (long)ns->timeout);
		/* Bounds libcurl's blocking wait for the answer to QUIT, too. */
		curl_easy_setopt(ns->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)ns->timeout);
		if (ns->starttls)
			curl_easy_setopt(ns->easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		if (ns->tls_insecure) {
			curl_easy_setopt(ns->easy, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(ns->easy, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		if (ns->username != NULL && *ns->username != '\0') {
			curl_easy_setopt(ns->easy, CURLOPT_USERNAME, ns->username);
			curl_easy_setopt(ns->easy, CURLOPT_PASSWORD,
			                 ns->password ? ns->password : "");
		}
		free(from); /* libcurl copies string options */
		if (curl_loop_add(ns->cl, ns->easy, on_done, ns, &err) == 0)
			return;
		log_warn("notice %lld: %s", (long long)p->id, err);
		curl_easy_cleanup(ns->easy);
		curl_slist_free_all(ns->rcpt);
		ns->easy = NULL;
		ns->rcpt = NULL;
		break;
	}
	ns->running = false;
	batch_clear(ns);
	if (ns->rescan)
		scan(ns);
}

/* Queue the administrators' digest when one is due (digest.h). */
static void
digest(struct notice_sender *ns)
{
	int64_t now = (int64_t)time(NULL);
	struct notice_digest_conf dc = {
	    .from = ns->from,
	    .admins = (const char *const *)ns->admins,
	    .n_admins = ns->n_admins,
	    .default_domain = ns->default_domain,
	};
	const char *err;
	int n;

	if (!leader(ns))
		return;
	int64_t iv = notice_digest_interval(ns->store);

	if (iv != ns->digest_iv) { /* changed: decide anew now */
		ns->digest_iv = iv;
		ns->digest_next = 0;
	}
	if (now < ns->digest_next)
		return;
	if ((n = notice_digest_run(ns->store, &dc, now, &ns->digest_next, &err)) < 0) {
		log_warn("digest: %s", err);
		ns->digest_next = now + ns->interval;
	} else if (n > 0)
		log_info("digest: %d notice(s) queued", n);
}

/* The periodic digest check and outbox scan. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	digest(arg);
	scan(arg);
}

/* A byte on the pipe: 'k' scans now, 'q' ends the loop. */
static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct notice_sender *ns = arg;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0 && memchr(buf, 'q', (size_t)n) != NULL) {
		event_base_loopbreak(ns->base);
		return;
	}
	scan(ns);
}

/* The thread: run the loop until asked to stop, scanning at once. */
static void *
run(void *arg)
{
	struct notice_sender *ns = arg;

	digest(ns);
	scan(ns);
	event_base_dispatch(ns->base);
	return NULL;
}

/* Free everything the sender owns (the thread has ended). */
static void
sender_free(struct notice_sender *ns)
{
	if (ns->easy != NULL) {
		curl_loop_remove(ns->cl, ns->easy);
		curl_easy_cleanup(ns->easy);
		curl_slist_free_all(ns->rcpt);
	}
	batch_clear(ns);
	curl_loop_free(&ns->cl);
	if (ns->timer)
		event_free(ns->timer);
	if (ns->wake)
		event_free(ns->wake);
	if (ns->base)
		event_base_free(ns->base);
	abq_store_close(&ns->store);
	if (ns->pipe_fd[0] >= 0)
		close(ns->pipe_fd[0]);
	if (ns->pipe_fd[1] >= 0)
		close(ns->pipe_fd[1]);
	if (ns->password != NULL)
		explicit_bzero(ns->password, strlen(ns->password));
	free(ns->store_url);
	free(ns->base_dir);
	free(ns->smtp_url);
	free(ns->from);
	free(ns->username);
	free(ns->password);
	free(ns->default_domain);
	for (size_t i = 0; i < ns->n_admins; i++)
		free(ns->admins[i]);
	free(ns->admins);
	free(ns);
}

/* Start the sender: open its store and loop, then its thread. */
struct notice_sender *
notice_sender_start(const struct notice_sender_config *cfg, const char **errstr_r)
{
	struct notice_sender *ns = xcalloc(1, sizeof(*ns));
	struct timeval tv;

	ns->pipe_fd[0] = ns->pipe_fd[1] = -1;
	if (cfg->store_url == NULL || cfg->smtp_url == NULL || cfg->from == NULL) {
		*errstr_r = "notice sender: store, SMTP URL and sender are required";
		goto fail;
	}
	ns->store_url = xstrdup(cfg->store_url);
	ns->base_dir = xstrdup_null(cfg->base_dir);
	ns->smtp_url = xstrdup(cfg->smtp_url);
	ns->from = xstrdup(cfg->from);
	ns->username = xstrdup_null(cfg->username);
	ns->password = xstrdup_null(cfg->password);
	ns->starttls = cfg->starttls;
	ns->default_domain = xstrdup_null(cfg->default_domain);
	ns->n_admins = cfg->n_admins;
	ns->admins = xcalloc(cfg->n_admins + 1, sizeof(char *));
	for (size_t i = 0; i < cfg->n_admins; i++)
		ns->admins[i] = xstrdup(cfg->admins[i]);
	ns->tls_insecure = cfg->tls_insecure;
	ns->interval = cfg->interval ? cfg->interval : 30;
	ns->leader = -1;
	ns->timeout = cfg->timeout ? cfg->timeout : 30;
	ns->max_permanent = cfg->max_permanent > 0 ? cfg->max_permanent : 3;
	if ((ns->store = abq_store_open(ns->store_url, ns->base_dir, 0, errstr_r)) == NULL)
		goto fail;
	if (pipe2(ns->pipe_fd, O_CLOEXEC | O_NONBLOCK) < 0) {
		*errstr_r = "notice sender: pipe failed";
		goto fail;
	}
	if ((ns->base = event_base_new()) == NULL) {
		*errstr_r = "notice sender: event_base_new failed";
		goto fail;
	}
	if ((ns->cl = curl_loop_new(ns->base, errstr_r)) == NULL)
		goto fail;
	ns->timer = event_new(ns->base, -1, EV_PERSIST, on_timer, ns);
	ns->wake = event_new(ns->base, ns->pipe_fd[0], EV_READ | EV_PERSIST, on_wake, ns);
	tv = (struct timeval){.tv_sec = ns->interval};
	if (ns->timer == NULL || ns->wake == NULL || event_add(ns->timer, &tv) < 0 ||
	    event_add(ns->wake, NULL) < 0) {
		*errstr_r = "notice sender: cannot set up events";
		goto fail;
	}
	if (pthread_create(&ns->thread, NULL, run, ns) != 0) {
		*errstr_r = "notice sender: cannot start its thread";
		goto fail;
	}
	return ns;
fail:
	sender_free(ns);
	return NULL;
}

/* Ask for a scan now. A full pipe already holds a kick, which is enough. */
void
notice_sender_kick(struct notice_sender *ns)
{
	ssize_t n = write(ns->pipe_fd[1], "k", 1);

	(void)n;
}

/* Stop the thread and free the sender. */
void
notice_sender_stop(struct notice_sender **nsp)
{
	struct notice_sender *ns = *nsp;
	ssize_t n;

	if (ns == NULL)
		return;
	do
		n = write(ns->pipe_fd[1], "q", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(ns->thread, NULL);
	sender_free(ns);
	*nsp = NULL;
}
