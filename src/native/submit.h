/*
 * submit.h: the user's mail sent through SMTP submission, on the event loop.
 *
 * Native mode sends what a phone hands over (SendMail, SmartReply,
 * SmartForward) to `[upstream] submission` as the user, with the phone's own
 * credentials: libcurl's SMTP on a curl_loop (net/curl_loop.h). The loop
 * does not wait for connecting, TLS, AUTH, the envelope or the upload, but
 * libcurl waits synchronously for the answer to the final "." and to QUIT
 * (submit.c says how long): run it on a loop of its own thread.
 *
 * - URL `smtp://host:port` (STARTTLS required, except to a loopback host,
 *   where it is used when offered) or `smtps://host:port`.
 * - AUTH as conf->user with conf->password (PLAIN or LOGIN, whichever libcurl
 *   picks from what the server offers); the envelope sender is conf->from,
 *   the account's address.
 * - The envelope recipients are the message's To, Cc and Bcc (GMime's address
 *   parser: RFC 2047 names, groups), IDN domains in ASCII, duplicates dropped
 *   (compared without case), at most conf->max_rcpt of them.
 * - What is sent: the message's header block rewritten once (Bcc dropped, a
 *   Date and a Message-ID added when missing, line ends CRLF), then its body
 *   streamed from the caller's buffer, bare LFs turned into CRLF on the way:
 *   the body is never copied. The caller keeps msg alive until done is called
 *   or the submission is cancelled.
 * - A message over conf->max_size, one without recipients or with too many,
 *   or one with a recipient that is no address, is refused before any
 *   connection (submit_start returns NULL with the class in *refused_r).
 *
 * The outcome's class is what the command layer maps to EAS statuses; the
 * server's last reply line is kept for the log. Credentials are never logged
 * nor kept outside libcurl's easy handle (gone with it). Everything runs on
 * the loop's thread.
 */
#ifndef ABQ_NATIVE_SUBMIT_H
#define ABQ_NATIVE_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

struct curl_loop;
struct submit;

#define SUBMIT_DEFAULT_MAX_SIZE (35u << 20) /* bytes of the message as given */
#define SUBMIT_DEFAULT_MAX_RCPT 500
#define SUBMIT_DEFAULT_TIMEOUT  120          /* seconds, the whole submission */
#define SUBMIT_MAX_HEADER       (256u << 10) /* the header block we rewrite */
#define SUBMIT_MAX_ADDR         254          /* RFC 5321 4.5.3.1.3 path, less <> */
#define SUBMIT_MAX_TEXT         512          /* server text kept */

/* How a submission ended. */
enum submit_result {
	SUBMIT_SENT = 0,     /* 250 after DATA: the server took it */
	SUBMIT_AUTH_REFUSED, /* 535 and other refused logins */
	SUBMIT_RCPT_REFUSED, /* a recipient refused (5xx), or no address: which in rcpt */
	SUBMIT_TOO_LARGE,    /* 552, or over max_size before connecting */
	SUBMIT_TEMPORARY,    /* 4xx, cannot connect, timeouts, connection lost */
	SUBMIT_PERMANENT,    /* any other refusal (5xx, TLS required and absent...) */
};

struct submit_conf {
	const char *url;  /* smtp://host:port or smtps://host:port */
	const char *user; /* the phone's credentials */
	const char *password;
	const char *from;    /* envelope sender: the account's address */
	unsigned timeout;    /* seconds; 0: SUBMIT_DEFAULT_TIMEOUT */
	size_t max_size;     /* 0: SUBMIT_DEFAULT_MAX_SIZE */
	size_t max_rcpt;     /* 0: SUBMIT_DEFAULT_MAX_RCPT */
	const char *ca_file; /* PEM CA bundle for the server's certificate; NULL: the system's */
	bool tls_insecure;   /* do not verify the server's certificate (tests) */
};

struct submit_outcome {
	enum submit_result result;
	int smtp_code;      /* the server's last reply code, 0 when none */
	const char *text;   /* its last reply line, "" when none; never credentials */
	const char *rcpt;   /* SUBMIT_RCPT_REFUSED (or a 4xx to RCPT): the address */
	const char *detail; /* libcurl's error, "" when sent */
	size_t n_rcpt;      /* envelope recipients given to the server */
	size_t bytes;       /* bytes of the message sent (after the rewrite) */
};

typedef void submit_done_cb(void *arg, const struct submit_outcome *o);

/* A result's name for logs: "sent", "auth refused", ... */
const char *submit_result_name(enum submit_result r);

/*
 * Start sending msg (len bytes, RFC 5322) as conf says on cl; done(arg, o)
 * is called once from the loop (o and its strings live until it returns).
 * Returns the submission, or NULL with *refused_r and *errstr (static) when
 * it is refused before connecting: SUBMIT_TOO_LARGE, SUBMIT_RCPT_REFUSED (no
 * recipients, too many, one that is no address), SUBMIT_PERMANENT (no
 * message, a bad URL or configuration); done is then never called.
 */
struct submit *submit_start(struct curl_loop *cl, const struct submit_conf *conf, const char *msg,
                            size_t len, submit_done_cb *done, void *arg,
                            enum submit_result *refused_r, const char **errstr);

/*
 * Stop a submission that has not ended (done is not called) and free it;
 * NULLs *sp. Whether the server took the message is then unknown.
 */
void submit_cancel(struct submit **sp);

/*
 * The envelope recipients of a message (To, Cc, Bcc), as submit_start takes
 * them: a NULL-terminated array of addresses (free with submit_rcpt_free),
 * *n_r of them. NULL with *errstr when the header cannot be read, there are
 * none or more than max, or an address is not one (then *bad_r, when
 * bad_r is not NULL, is a copy of it to free). For tests and the command
 * layer's checks.
 */
char **submit_recipients(const char *msg, size_t len, size_t max, size_t *n_r, char **bad_r,
                         const char **errstr);
void submit_rcpt_free(char **rcpt);

#endif
