/*
 * compose.h: the message SmartReply and SmartForward send, and the copy
 * SaveInSent keeps.
 *
 * A phone's SmartReply/SmartForward carries its own MIME message (what the
 * user typed) and names the original; unless it says ReplaceMime, the
 * server adds the original (MS-ASCMD 2.2.3.142, 2.2.3.157):
 *
 * - reply: the original's text quoted after the phone's, in each of the
 *   phone's text bodies: plain "On <date>, <from> wrote:" and "> " lines,
 *   HTML a <blockquote type="cite"> with the original's HTML (or its plain
 *   text in <pre>); In-Reply-To and References from the original's
 *   Message-ID (unless the phone set them); the original's inline images
 *   the quoted HTML shows are attached with their Content-IDs.
 * - forward: a "Forwarded message" block (From, Date, Subject, To, Cc) and
 *   the original's text after the phone's, and every attachment of the
 *   original attached as it was (names, types, Content-IDs, inline images
 *   kept inline beside the HTML in multipart/related).
 * - ReplaceMime: the phone's message as it is.
 *
 * The result is valid MIME with CRLF line ends and 7-bit-safe transfer
 * encodings (quoted-printable or base64 wherever a part holds 8-bit data or
 * long lines; headers with raw 8-bit text are RFC 2047 encoded).
 *
 * Pure: GMime only, no I/O, no state (msgconv_init does GMime's one-time
 * set-up), any thread.
 */
#ifndef ABQ_NATIVE_COMPOSE_H
#define ABQ_NATIVE_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>

#define COMPOSE_REPLY   1
#define COMPOSE_FORWARD 2

#define COMPOSE_MAX_INPUT (64u << 20) /* bytes of each input message */
#define COMPOSE_MAX_PARTS 1000        /* parts walked in one message */

struct compose_req {
	int kind;          /* COMPOSE_REPLY or COMPOSE_FORWARD */
	const char *phone; /* the phone's MIME message */
	size_t phone_len;
	const char *original; /* the original's bytes (IMAP BODY[]) */
	size_t original_len;
	bool replace_mime; /* ReplaceMime: the phone's message as is */
};

/*
 * The message to send for req into *out (NUL-terminated, *out_len bytes;
 * free it). Returns 0, or -1 with *errstr (static) when a message cannot be
 * read or breaks a cap.
 */
int compose_smart(const struct compose_req *req, char **out, size_t *out_len, const char **errstr);

/*
 * The header block of msg (hdr_len bytes, see compose_split_header) as it
 * is sent and kept: each line ended by CRLF, Bcc dropped when drop_bcc, a
 * Date (now) and a Message-ID (random, on from's domain) put in front when
 * msg has none; with the empty line that ends it. Free it.
 */
char *compose_header_block(const char *msg, size_t hdr_len, const char *from, bool drop_bcc,
                           size_t *len_r);

/*
 * Where msg's header block ends: *hdr_len bytes of fields, the body from
 * *body_off (after the empty line); all header when there is no empty line.
 */
void compose_split_header(const char *msg, size_t len, size_t *hdr_len, size_t *body_off);

/*
 * SaveInSent's copy (IMAP APPEND to Sent) of msg as it is submitted: CRLF
 * line ends, a Date and a Message-ID added when missing, and THE BCC KEPT.
 * RFC 5322 3.6.3 lets the sender's own copy keep Bcc and mailers do (the
 * user sees in Sent whom they blind-copied); only the copies the recipients
 * get lose it (submit.c drops it). Submit these same bytes so that the
 * Date and Message-ID sent and kept are the same. Free *out. Returns 0, or
 * -1 with *errstr.
 */
int compose_sent_copy(const char *msg, size_t len, const char *from, char **out, size_t *out_len,
                      const char **errstr);

/*
 * An iTIP REPLY by mail (RFC 6047 2.4): from the user to the organizer,
 * subject, a text/plain part with text and the text/calendar part
 * (method=REPLY, base64) of ics, in a multipart/alternative; Date and
 * Message-ID as compose_sent_copy gives them. *out (free it), *out_len.
 * Returns 0, or -1 with *errstr.
 */
int compose_itip_reply(const char *from, const char *to, const char *subject, const char *text,
                       const char *ics, char **out, size_t *out_len, const char **errstr);

#endif
