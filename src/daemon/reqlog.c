/*
 * reqlog.c: the account loggers on the loop's thread (reqlog.h).
 *
 * A handful of loggers at most (troubleshooting one phone at a time): a
 * plain array, searched in full for each request of an account. Each logger
 * holds its file open; an entry is formatted once and written with one
 * write(2) per logger, so that entries of two processes (prefork workers)
 * appending to one file do not interleave, and the loop never waits on more
 * than one small write to a local file. A short or failed write disables
 * that logger (one warning) rather than retrying on the loop.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon/reqlog.h"
#include "eas/wbxml.h"
#include "lib/log.h"
#include "lib/util.h"

/* Seconds between two looks for loggers whose time is up. */
#define REQLOG_SWEEP_S 5

/* One active logger. */
struct logger {
	int64_t id;
	char *account;
	char *device_id; /* NULL: every device */
	char *file;
	int64_t until;
	int fd; /* -1: could not open, or disabled after a write error */
};

struct reqlog {
	struct logger *v;
	size_t n;
	struct event *sweep;
};

/* Close and free one logger's resources. */
static void
logger_close(struct logger *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->account);
	free(l->device_id);
	free(l->file);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

/* Drop the loggers whose time is up (the sweep timer). */
static void
reqlog_expire(struct reqlog *rl, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < rl->n; i++) {
		if (rl->v[i].until > now) {
			rl->v[k++] = rl->v[i];
			continue;
		}
		log_info("logger %lld for %s ended (its time is up)", (long long)rl->v[i].id,
		         rl->v[i].account);
		logger_close(&rl->v[i]);
	}
	rl->n = k;
}

/* The sweep timer's callback. */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reqlog_expire(arg, abq_now());
}

/* A new empty set with its sweep timer (reqlog.h). */
struct reqlog *
reqlog_new(struct event_base *base)
{
	struct reqlog *rl = xcalloc(1, sizeof(*rl));
	struct timeval tv = {REQLOG_SWEEP_S, 0};

	rl->sweep = event_new(base, -1, EV_PERSIST, on_sweep, rl);
	if (rl->sweep != NULL)
		event_add(rl->sweep, &tv);
	return rl;
}

/* Close every logger and free the set. */
void
reqlog_free(struct reqlog **rlp)
{
	struct reqlog *rl = *rlp;

	if (rl == NULL)
		return;
	for (size_t i = 0; i < rl->n; i++)
		logger_close(&rl->v[i]);
	free(rl->v);
	if (rl->sweep != NULL)
		event_free(rl->sweep);
	free(rl);
	*rlp = NULL;
}

/* Open a logger's file for append, created 0600; -1 with one warning on failure. */
static int
logger_open(const struct abq_logger *l)
{
	int fd = open(l->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		log_warn("logger %lld for %s: cannot open %s: %s; it logs nothing",
		         (long long)l->id, l->account, l->file, strerror(errno));
	else
		log_info("logger %lld: requests of %s (%s) go to %s", (long long)l->id, l->account,
		         l->device_id != NULL ? l->device_id : "every device", l->file);
	return fd;
}

/* Replace the loggers with the store's list (reqlog.h). */
void
reqlog_set(struct reqlog *rl, const struct abq_logger *v, size_t n, int64_t now)
{
	struct logger *nv = xcalloc(n ? n : 1, sizeof(*nv));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct logger *old = NULL;

		if (v[i].until <= now)
			continue;
		for (size_t j = 0; j < rl->n; j++)
			if (rl->v[j].id == v[i].id && rl->v[j].account != NULL)
				old = &rl->v[j];
		if (old != NULL) {
			nv[k++] = *old;
			memset(old, 0, sizeof(*old)); /* moved: not closed below */
			continue;
		}
		nv[k++] = (struct logger){
		    .id = v[i].id,
		    .account = xstrdup(v[i].account),
		    .device_id = xstrdup_null(v[i].device_id),
		    .file = xstrdup(v[i].file),
		    .until = v[i].until,
		    .fd = logger_open(&v[i]),
		};
	}
	for (size_t j = 0; j < rl->n; j++) {
		if (rl->v[j].account == NULL)
			continue;
		log_info("logger %lld for %s removed", (long long)rl->v[j].id, rl->v[j].account);
		logger_close(&rl->v[j]);
	}
	free(rl->v);
	rl->v = nv;
	rl->n = k;
}

/* Whether logger l takes a request of (account, device_id) at now. */
static bool
logger_matches(const struct logger *l, const char *account, const char *device_id, int64_t now)
{
	return l->fd >= 0 && l->until > now && strcmp(l->account, account) == 0 &&
	       (l->device_id == NULL ||
	        (device_id != NULL && strcasecmp(l->device_id, device_id) == 0));
}

/* Whether any logger is active (reqlog.h). */
bool
reqlog_any(const struct reqlog *rl)
{
	return rl != NULL && rl->n > 0;
}

/* Whether a request of (account, device_id) is logged now (reqlog.h). */
bool
reqlog_wants(const struct reqlog *rl, const char *account, const char *device_id, int64_t now)
{
	if (rl == NULL || rl->n == 0 || account == NULL)
		return false;
	for (size_t i = 0; i < rl->n; i++)
		if (logger_matches(&rl->v[i], account, device_id, now))
			return true;
	return false;
}

/*
 * Append one body: its XML when it is whole WBXML, cut at REQLOG_XML_MAX on a
 * character boundary; else a line saying what it was.
 */
static void
add_body(struct sbuf *b, const char *what, const void *p, size_t len, size_t total)
{
	static const uint8_t magic[4] = {0x03, 0x01, 0x6A, 0x00};
	struct wbxml_doc *doc = NULL;
	struct wbxml_error werr;
	char *xml;
	size_t n;

	if (total == 0) {
		sbuf_printf(b, "-- %s: no body\n", what);
		return;
	}
	if (len < sizeof(magic) || memcmp(p, magic, sizeof(magic)) != 0) {
		sbuf_printf(b, "-- %s: %zu bytes, not WBXML, left out\n", what, total);
		return;
	}
	if (len < total) {
		sbuf_printf(b, "-- %s: %zu bytes of WBXML, more than the %u kept: left out\n", what,
		            total, REQLOG_BODY_MAX);
		return;
	}
	if (wbxml_decode(p, len, NULL, &doc, &werr) != WBXML_OK) {
		sbuf_printf(b, "-- %s: %zu bytes, not decodable WBXML (%s)\n", what, total,
		            werr.msg);
		return;
	}
	xml = wbxml_to_xml(wbxml_doc_root(doc), WBXML_XML_PRETTY | WBXML_XML_LEAVE_OUT);
	wbxml_doc_free(&doc);
	n = strlen(xml);
	sbuf_printf(b, "-- %s: %zu bytes of WBXML\n", what, total);
	if (n > REQLOG_XML_MAX) {
		size_t cut = REQLOG_XML_MAX;

		while (cut > 0 && ((unsigned char)xml[cut] & 0xC0) == 0x80)
			cut--; /* not inside a UTF-8 sequence */
		sbuf_addn(b, xml, cut);
		sbuf_printf(b, "\n[%zu more bytes of XML left out]\n", n - cut);
	} else {
		sbuf_addn(b, xml, n);
	}
	free(xml);
}

/* The text of one entry (reqlog.h). */
char *
reqlog_format(const struct reqlog_entry *e, size_t *len_r)
{
	struct sbuf b = {0};
	char t[32];

	sbuf_printf(&b, "== %s addr=%s user=%s dev=%s cmd=%s ver=%s status=%d outcome=%s ms=%lld\n",
	            format_time(e->at, t), e->client ? e->client : "-",
	            e->account ? e->account : "-", e->device_id ? e->device_id : "-",
	            e->cmd ? e->cmd : "-", e->version ? e->version : "-", e->status,
	            e->outcome ? e->outcome : "-", e->ms);
	add_body(&b, "request", e->req, e->req_len, e->req_total);
	add_body(&b, "answer", e->ans, e->ans_len, e->ans_total);
	sbuf_add(&b, "\n");
	*len_r = b.len;
	return sbuf_take(&b);
}

/* Write the entry to every logger that takes it; one write(2) each. */
void
reqlog_write(struct reqlog *rl, const struct reqlog_entry *e, int64_t now)
{
	char *text = NULL;
	size_t len = 0;

	if (rl == NULL || e->account == NULL)
		return;
	for (size_t i = 0; i < rl->n; i++) {
		struct logger *l = &rl->v[i];
		ssize_t w;

		if (!logger_matches(l, e->account, e->device_id, now))
			continue;
		if (text == NULL)
			text = reqlog_format(e, &len);
		w = write(l->fd, text, len);
		if (w == (ssize_t)len)
			continue;
		log_warn("logger %lld: writing to %s failed (%s); it logs nothing more",
		         (long long)l->id, l->file, w < 0 ? strerror(errno) : "short write");
		close(l->fd);
		l->fd = -1;
	}
	free(text);
}
