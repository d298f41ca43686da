/*
 * reqlog.h: the account loggers of the running daemon (abqctl mobile
 * doAddAccountLogger), on the loop's thread.
 *
 * The store thread hands the loop the whole list of loggers whenever the
 * change log says one was added or removed (storeq_set_logger_cb); reqlog
 * keeps the active ones, each with its file open for append (O_APPEND,
 * created 0600 by the daemon's user). The gateway asks reqlog_wants() when a
 * request arrives, keeps a copy of what it needs, and calls reqlog_write()
 * when the exchange ends: one entry (a header line, the request body and the
 * answer decoded from WBXML with credentials and message contents left out)
 * written with one write(2) to every active logger of that account and
 * device. A logger past its `until` is ignored at once and dropped by a timer;
 * a write error disables it with one warning.
 */
#ifndef ABQ_DAEMON_REQLOG_H
#define ABQ_DAEMON_REQLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct event_base;
struct reqlog;

/* The most of a body kept for an entry (a proxied answer is copied up to this). */
#define REQLOG_BODY_MAX (256u * 1024)
/* The most XML written for one body. */
#define REQLOG_XML_MAX (64u * 1024)

/* A new, empty set of loggers with its expiry timer on base. */
struct reqlog *reqlog_new(struct event_base *base);
/* Close every file and free; *rl = NULL. */
void reqlog_free(struct reqlog **rl);

/*
 * Replace the loggers with v (the store's whole list; ended ones are left
 * out). A logger kept (same id) keeps its open file; a new one opens its file
 * now (a failure is one warning, and that logger writes nothing).
 */
void reqlog_set(struct reqlog *rl, const struct abq_logger *v, size_t n, int64_t now);

/* Whether any logger is active: when none is (the usual case), nothing else need be asked. */
bool reqlog_any(const struct reqlog *rl);

/* Whether a request of (account, device_id) is to be logged now (cheap: most have none). */
bool reqlog_wants(const struct reqlog *rl, const char *account, const char *device_id, int64_t now);

/* One finished exchange. Bodies are NULL when empty. */
struct reqlog_entry {
	int64_t at; /* when the request arrived */
	const char *client;
	const char *account;
	const char *device_id;
	const char *cmd;
	const char *version;
	int status;
	const char *outcome;
	long long ms;
	const void *req;
	size_t req_len; /* bytes kept */
	size_t req_total;
	const void *ans;
	size_t ans_len; /* bytes kept */
	size_t ans_total;
};

/*
 * The entry's text (a new string, *len_r its length): the header line, then
 * the request and the answer as XML (WBXML_XML_LEAVE_OUT), each cut at
 * REQLOG_XML_MAX; a body that is not WBXML, or was not kept whole, is
 * described by its size only.
 */
char *reqlog_format(const struct reqlog_entry *e, size_t *len_r);

/* Write the entry to every active logger of its account and device. */
void reqlog_write(struct reqlog *rl, const struct reqlog_entry *e, int64_t now);

#endif
