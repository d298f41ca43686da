/*
 * msgconv.h: an Internet message (RFC 5322 + MIME) as an EAS e-mail item.
 *
 * The native (IMAP) backend fetches a message's bytes and hands them here:
 * msgconv_parse reads them with GMime 3 into the fields a phone is sent
 * (MS-ASEMAIL: From, To, Cc, ReplyTo, Subject, DisplayTo, ThreadTopic,
 * Importance, DateReceived, MessageClass, ContentClass, InternetCPID), the
 * threading headers, the decoded bodies and the attachment list; msgconv_body
 * then gives the body a BodyPreference asks for (MS-ASAIRS: type 1 plain,
 * 2 HTML, 4 MIME; TruncationSize, AllOrNone), msgconv_preview its Preview.
 *
 * Every string out is UTF-8 (no NUL inside): RFC 2047 words (the malformed
 * forms mailers write too), RFC 2231 parameters, quoted-printable and base64
 * are decoded, declared charsets converted, and 8-bit text with no usable
 * charset taken as UTF-8 when it is valid UTF-8, else in the first fallback
 * charset that converts it (windows-1252, then iso-8859-1, which always does).
 *
 * Attachments carry their IMAP section (RFC 3501 6.4.5, what BODYSTRUCTURE
 * numbers): the parts of a top-level multipart are "1", "2"..., a nested
 * multipart's "2.1", "2.2"..., and a message that is not multipart has its
 * one body at "1". A message/rfc822 part is one attachment (its own parts
 * are not listed). So ItemOperations can later fetch BODY[2.1] alone.
 *
 * Pure: no I/O, no state between calls beyond the one-time initialisation of
 * GMime and libxml2 (msgconv_init, done under pthread_once; every entry point
 * calls it), so it may run on any worker thread, several at once.
 */
#ifndef ABQ_NATIVE_MSGCONV_H
#define ABQ_NATIVE_MSGCONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* EAS body types (MS-ASAIRS 2.2.2.22.1). */
#define MSGCONV_BODY_PLAIN 1
#define MSGCONV_BODY_HTML  2
#define MSGCONV_BODY_MIME  4

/* Caps on what a message may make us hold. */
#define MSGCONV_MAX_ATTACHMENTS 512  /* listed; further ones are dropped */
#define MSGCONV_MAX_DEPTH       32   /* multipart nesting walked */
#define MSGCONV_MAX_CONTAINERS  2000 /* "multipart/" + "message/" mentions: refused above */
#define MSGCONV_MAX_FALLBACKS   8

struct msgconv_opts {
	/*
	 * Charsets tried, in order, for 8-bit text that is neither declared
	 * usably nor valid UTF-8; NULL-terminated; NULL: windows-1252, then
	 * iso-8859-1. At most MSGCONV_MAX_FALLBACKS are used.
	 */
	const char *const *fallback_charsets;
	/* DateReceived when the Date header is missing or unreadable (IMAP INTERNALDATE). */
	int64_t date_fallback;
	/* Do not keep a copy of the bytes (msgconv_body type 4 then fails). */
	bool no_mime;
};

struct msgconv_attachment {
	char *section;      /* IMAP section path: "2", "1.2" */
	char *name;         /* display name, decoded; never NULL */
	char *content_type; /* "application/pdf", lower case */
	char *content_id;   /* without the angle brackets, or NULL */
	size_t size;        /* decoded size in bytes (estimated for message/rfc822) */
	bool is_inline;
};

/* The message's importance (Email:Importance). */
#define MSGCONV_IMPORTANCE_LOW    0
#define MSGCONV_IMPORTANCE_NORMAL 1
#define MSGCONV_IMPORTANCE_HIGH   2

/* One parsed message; everything owned by it (msgconv_msg_clear). */
struct msgconv_msg {
	char *from; /* "\"Name\" <addr>" lists, "" when absent */
	char *to;
	char *cc;
	char *reply_to;
	char *subject;      /* "" when absent */
	char *display_to;   /* the To names ("; " between), addresses when unnamed */
	char *thread_topic; /* Thread-Topic, else the subject without Re:/Fwd: prefixes */
	int importance;     /* MSGCONV_IMPORTANCE_* */
	int64_t date_received;
	const char *message_class; /* static: "IPM.Note", "IPM.Note.SMIME", ... */
	const char *content_class; /* static: "urn:content-classes:message" ... */
	int internet_cpid;         /* 65001: everything out is UTF-8 */
	char *message_id;          /* without brackets, or NULL */
	char *in_reply_to;         /* without brackets, or NULL */
	char **references;         /* without brackets, oldest first */
	size_t n_references;

	struct msgconv_attachment *att;
	size_t n_att;

	/* Bodies, UTF-8 with their lengths; NULL when the message has none. */
	char *plain;
	size_t plain_len;
	char *html;
	size_t html_len;
	char *calendar; /* the text/calendar part (METHOD:REQUEST), or NULL */
	size_t calendar_len;
	int native_body_type; /* 2 when there is an HTML body, else 1 */
	/*
	 * An HTML-only message's HTML as plain text, made ahead by
	 * msgconv_render (NULL: msgconv_body and msgconv_preview render it when
	 * asked; rendering 1 MB of HTML takes about 20 ms).
	 */
	char *html_text;
	size_t html_text_len;

	/* The message's bytes for type 4 (NULL with opts->no_mime). */
	char *mime;
	size_t mime_len;
};

/* One Body as a BodyPreference asks it. */
struct msgconv_body {
	int type;              /* the type given: 1, 2 or 4 */
	char *data;            /* NUL-terminated; NULL when AllOrNone withheld it */
	size_t len;            /* bytes of data */
	size_t estimated_size; /* the whole body's size (EstimatedDataSize) */
	bool truncated;        /* data is not the whole body (or was withheld) */
};

/*
 * GMime's and libxml2's one-time initialisation (pthread_once; safe from any
 * thread, any number of times). The daemon may call it at start so that no
 * request pays for it; the other entry points call it anyway.
 */
void msgconv_init(void);

/*
 * Parse len bytes of an RFC 5322 message into *out (zeroed first; clear it
 * with msgconv_msg_clear whatever the result). opts NULL: the defaults.
 * Returns 0, or -1 with *errstr (static) when the bytes are no message at
 * all or break a cap.
 */
int msgconv_parse(const char *raw, size_t len, const struct msgconv_opts *opts,
                  struct msgconv_msg *out, const char **errstr);
void msgconv_msg_clear(struct msgconv_msg *m);

/*
 * Render an HTML-only message's body as plain text ahead (m->html_text), as
 * type 1 and the Preview would render it, so that the work can be done
 * where the parse is (off the event loop); nothing for a message with a
 * plain body, or none, or already rendered.
 */
void msgconv_render(struct msgconv_msg *m);

/*
 * The body of msg in type (1 plain: an HTML-only message rendered as text;
 * 2 HTML: a plain-only message escaped in <pre>; 4 MIME: the bytes), cut to
 * at most truncation_size bytes (0: no limit) on a UTF-8 character
 * boundary; with all_or_none, a body that does not fit whole gets no data,
 * only its size and Truncated. Returns 0, or -1 with *errstr (an unknown
 * type, MIME not kept). Free with msgconv_body_clear.
 */
int msgconv_body(const struct msgconv_msg *msg, int type, size_t truncation_size, bool all_or_none,
                 struct msgconv_body *out, const char **errstr);
void msgconv_body_clear(struct msgconv_body *b);

/*
 * The Preview (EAS 14.0+): the first max_chars characters of the plain text
 * (or of the HTML's rendering), whitespace runs collapsed to one space and
 * trimmed. Never NULL; free it.
 */
char *msgconv_preview(const struct msgconv_msg *msg, size_t max_chars);

/*
 * One part of a message by its IMAP section, as msgconv_parse numbers the
 * attachments ("2", "1.2"; "1" for the body of a message that is not
 * multipart): its content with the transfer encoding undone (a
 * message/rfc822 part: the enclosed message's bytes) in *data_r
 * (malloc'd, a NUL after it) and *len_r, its Content-Type in lower case in
 * *type_r (malloc'd). Returns 1, 0 when there is no such leaf part (a
 * malformed section, a multipart), or -1 with *errstr when the bytes are no
 * message at all or break a cap.
 */
int msgconv_part(const char *raw, size_t len, const char *section, char **data_r, size_t *len_r,
                 char **type_r, const char **errstr);

#endif
