/*
 * sender.h: the outbox sender.
 *
 * The sender runs on a thread of its own, with its own store handle, its own
 * libevent base and its own curl_loop, so that neither SQLite nor libcurl's
 * blocking moments (the SMTP QUIT libcurl waits for when it closes a
 * connection, bounded by CURLOPT_SERVER_RESPONSE_TIMEOUT) ever stall the
 * daemon's loop. Every interval seconds, and at once when kicked, it takes
 * the due notices (queued, next_attempt <= now) and sends them one after the
 * other through SMTP, marking each right after its transfer ends.
 */
#ifndef ABQ_NOTICE_SENDER_H
#define ABQ_NOTICE_SENDER_H

#include <stdbool.h>
#include <stddef.h>

struct notice_sender_config {
	const char *store_url; /* the store the sender opens for itself */
	const char *base_dir;  /* for a relative store path; may be NULL */
	const char *smtp_url;  /* smtp://host:port or smtps://host:port */
	bool starttls;         /* require STARTTLS on smtp:// */
	const char *from;      /* envelope sender ("Name <addr>" accepted) */
	const char *username;  /* AUTH when set */
	const char *password;
	unsigned interval; /* seconds between outbox scans; 0: 30 */
	unsigned timeout;  /* seconds per transfer and per server answer; 0: 30 */
	int max_permanent; /* a 5xx this many times in a row: failed; 0: 3 */
	bool tls_insecure; /* tests only: do not verify the relay's certificate */
	/* The administrators' digest (digest.h), checked at each scan. */
	const char *const *admins; /* [smtp] admins */
	size_t n_admins;
	const char *default_domain; /* [eas] default_domain; may be NULL */
};

struct notice_sender;

/* Start the sender thread. Returns NULL with *errstr_r (static) on failure. */
struct notice_sender *notice_sender_start(const struct notice_sender_config *cfg,
                                          const char **errstr_r);
/* Scan the outbox now (from any thread). */
void notice_sender_kick(struct notice_sender *ns);
/* Stop the thread (a transfer running is abandoned, stays queued), free, NULL *ns. */
void notice_sender_stop(struct notice_sender **ns);

/* The delay before attempt number attempts + 1 (growing, capped at an hour). */
unsigned notice_retry_delay(int attempts);

#endif
