/*
 * mime.h: a notice as a real Internet message (RFC 5322 + MIME).
 *
 * notice_mime_render builds the whole message that goes to the relay:
 * MIME-Version, Date, Message-ID (unique, at the sender's domain), From, To,
 * optional Reply-To, Subject (an RFC 2047 encoded word when it is not plain
 * printable ASCII), Auto-Submitted: auto-generated, and a multipart/alternative
 * body with a text/plain and a text/html part, both UTF-8 in quoted-printable.
 * Every line ends in CRLF and no line is longer than 998 octets.
 *
 * Header injection is impossible: a CR or LF in an address is refused, and
 * one in the subject is turned into a space before encoding.
 */
#ifndef ABQ_NOTICE_MIME_H
#define ABQ_NOTICE_MIME_H

#include <stddef.h>
#include <stdint.h>

struct notice_mime {
	const char *from;     /* "addr" or "Name <addr>"; required */
	const char *to;       /* required */
	const char *reply_to; /* NULL: none */
	const char *subject;  /* UTF-8; NULL: empty */
	const char *body_plain;
	const char *body_html; /* NULL: the plain text, escaped, in <pre> */
	int64_t date;          /* seconds since the epoch; 0: now */
};

/*
 * Render m. Returns a new string (free it), or NULL with *errstr_r set to a
 * static message when an address is missing or holds a CR, LF or NUL.
 */
char *notice_mime_render(const struct notice_mime *m, const char **errstr_r);

/* The domain of an address ("Name <a@b>" or "a@b"): a new string, "localhost" when none. */
char *notice_mime_domain(const char *addr);

/* The bare address of "Name <addr>" or "addr": a new string. */
char *notice_mime_addr_spec(const char *addr);

/* A header value as RFC 2047 encoded words when needed (B, folded): a new string. */
char *notice_mime_encode_header(const char *text);

/* Quoted-printable of text with CRLF line ends (lines <= 76 octets). */
char *notice_mime_qp(const char *text);

#endif
