/*
 * mime.h: a short text as a real Internet message (RFC 5322 + MIME).
 *
 * mime_render builds a whole message: the notices abqd mails, and the
 * quarantine mailbox's alert when a phone asks for it as MIME. It has:
 * MIME-Version, Date, Message-ID (unique, at the sender's domain), From, To,
 * optional Reply-To, Subject (an RFC 2047 encoded word when it is not plain
 * printable ASCII), Auto-Submitted: auto-generated, and a multipart/alternative
 * body with a text/plain and a text/html part, both UTF-8 in quoted-printable.
 * Every line ends in CRLF and no line is longer than 998 octets.
 *
 * Header injection is impossible: a CR or LF in an address is refused, and
 * one in the subject is turned into a space before encoding.
 */
#ifndef ABQ_LIB_MIME_H
#define ABQ_LIB_MIME_H

#include <stddef.h>
#include <stdint.h>

struct mime_message {
	const char *from;     /* "addr" or "Name <addr>"; required */
	const char *to;       /* required */
	const char *reply_to; /* NULL: none */
	const char *subject;  /* UTF-8; NULL: empty */
	const char *body_plain;
	const char *body_html; /* NULL: the plain text, escaped, in <pre> */
	int64_t date;          /* seconds since the epoch; 0: now */
	/*
	 * The Message-ID's left part; NULL: a unique random one. When set, the
	 * MIME boundary is derived from it too, so that one message renders to
	 * the same bytes every time (the alert fetched twice is one message).
	 */
	const char *message_id;
};

/*
 * Render m. Returns a new string (free it), or NULL with *errstr_r set to a
 * static message when an address is missing or holds a CR, LF or NUL.
 */
char *mime_render(const struct mime_message *m, const char **errstr_r);

/* The domain of an address ("Name <a@b>" or "a@b"): a new string, "localhost" when none. */
char *mime_domain(const char *addr);

/* The bare address of "Name <addr>" or "addr": a new string. */
char *mime_addr_spec(const char *addr);

/* A header value as RFC 2047 encoded words when needed (B, folded): a new string. */
char *mime_encode_header(const char *text);

/* Quoted-printable of text with CRLF line ends (lines <= 76 octets). */
char *mime_qp(const char *text);

#endif
