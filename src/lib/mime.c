/*
 * mime.c: rendering a notice as an RFC 5322 / MIME message.
 *
 * Design: one growing string (struct sbuf) per message; each header is
 * checked and written by its own helper. Bodies are quoted-printable, whose
 * output never holds "=_", so the boundary "=_abqd_<random>" cannot occur in
 * a body. Line ends in the input may be LF or CRLF; the output is CRLF only.
 * Randomness (Message-ID, boundary) comes from getrandom(2).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/util.h"
#include "lib/b64.h"
#include "lib/mime.h"

/* n random bytes as 2n lower-case hex digits into out (2n + 1 bytes). */
static void
random_hex(char *out, size_t n)
{
	unsigned char r[32];
	size_t i;

	if (n > sizeof(r))
		n = sizeof(r);
	if (getrandom(r, n, 0) != (ssize_t)n)
		for (i = 0; i < n; i++)
			r[i] = (unsigned char)(rand() & 0xff);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Quoted-printable with CRLF line ends and soft breaks before 76 octets. */
char *
mime_qp(const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	struct sbuf b = {0};
	size_t col = 0;
	const unsigned char *p = (const unsigned char *)(text ? text : "");

	for (; *p; p++) {
		char enc[4];
		size_t n;
		bool eol = p[0] == '\n' || (p[0] == '\r' && p[1] == '\n');

		if (eol) {
			if (p[0] == '\r')
				p++;
			sbuf_add(&b, "\r\n");
			col = 0;
			continue;
		}
		/* Spaces and tabs at the end of a line must be encoded. */
		bool at_end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
		if ((*p >= 33 && *p <= 126 && *p != '=') ||
		    ((*p == ' ' || *p == '\t') && !at_end)) {
			enc[0] = (char)*p;
			n = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			n = 3;
		}
		if (col + n > 75) {
			sbuf_add(&b, "=\r\n");
			col = 0;
		}
		sbuf_addn(&b, enc, n);
		col += n;
	}
	if (col > 0)
		sbuf_add(&b, "\r\n");
	return sbuf_take(&b);
}

/* Whether the subject may go out as it is: printable ASCII, short, no "=?". */
static bool
header_plain_ok(const char *s)
{
	const unsigned char *p;

	if (strlen(s) > 200 || strstr(s, "=?") != NULL)
		return false;
	for (p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/*
 * An RFC 2047 "B" encoded header value for UTF-8 text: words of at most 45
 * source octets (60 encoded, 75 with the wrapper), cut between characters, one
 * per folded line. CR and LF become spaces. Plain ASCII is returned as it is.
 */
char *
mime_encode_header(const char *text)
{
	struct sbuf b = {0};
	char *clean = xstrdup(text ? text : "");
	const unsigned char *p;
	size_t i, len;

	for (i = 0; clean[i]; i++)
		if (clean[i] == '\r' || clean[i] == '\n')
			clean[i] = ' ';
	if (header_plain_ok(clean))
		return clean;
	p = (const unsigned char *)clean;
	len = strlen(clean);
	while (len > 0) {
		size_t n = len < 45 ? len : 45;

		/* Never cut a UTF-8 sequence: back off over continuation bytes. */
		while (n < len && n > 1 && (p[n] & 0xc0) == 0x80)
			n--;
		if (b.len > 0)
			sbuf_add(&b, "\r\n ");
		char word[B64_ENCODED_LEN(45) + 1];
		b64_encode(p, n, word);
		sbuf_add(&b, "=?UTF-8?B?");
		sbuf_add(&b, word);
		sbuf_add(&b, "?=");
		p += n;
		len -= n;
	}
	free(clean);
	return sbuf_take(&b);
}

/* The bare address inside "Name <addr>", or the whole string. */
char *
mime_addr_spec(const char *addr)
{
	const char *lt = strrchr(addr, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt != NULL && gt != NULL)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	while (*addr == ' ')
		addr++;
	return xstrdup(addr);
}

/* The domain of an address, for the Message-ID. */
char *
mime_domain(const char *addr)
{
	char *spec = mime_addr_spec(addr ? addr : "");
	const char *at = strrchr(spec, '@');
	char *d = xstrdup(at != NULL && at[1] != '\0' ? at + 1 : "localhost");

	free(spec);
	return d;
}

/* An address header value: present, printable, at most 900 octets. */
static bool
addr_ok(const char *a)
{
	const unsigned char *p;

	if (a == NULL || *a == '\0' || strlen(a) > 900)
		return false;
	for (p = (const unsigned char *)a; *p; p++)
		if (*p == '\r' || *p == '\n' || *p < 0x20)
			return false;
	return true;
}

/* The text of html-escaped plain, in <pre>, for a notice without an HTML body. */
static char *
html_of_plain(const char *plain)
{
	struct sbuf b = {0};

	sbuf_add(&b, "<html><body><pre>");
	sbuf_add_escaped(&b, plain ? plain : "");
	sbuf_add(&b, "</pre></body></html>\n");
	return sbuf_take(&b);
}

/* The RFC 5322 date of t in UTC, without the locale's names. */
static void
rfc5322_date(int64_t t, char *out, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Whether a caller's Message-ID part is a dot-atom (letters, digits, "-", "." and "_"). */
static bool
id_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	}
	return n <= 200;
}

/* Render the whole message; see mime.h. */
char *
mime_render(const struct mime_message *m, const char **errstr_r)
{
	struct sbuf b = {0};
	char date[64], id[33], boundary[48], rnd[17];
	char *domain, *subject, *plain, *html, *html_src = NULL, *msgid;

	if (!addr_ok(m->from) || !addr_ok(m->to) ||
	    (m->reply_to != NULL && *m->reply_to != '\0' && !addr_ok(m->reply_to))) {
		*errstr_r = "notice: From, To and Reply-To must be one line of printable text";
		return NULL;
	}
	rfc5322_date(m->date != 0 ? m->date : (int64_t)time(NULL), date, sizeof(date));
	domain = mime_domain(m->from);
	if (m->message_id != NULL && *m->message_id != '\0' && id_ok(m->message_id)) {
		uint64_t h = 0xcbf29ce484222325ULL;
		for (const char *p = m->message_id; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		snprintf(rnd, sizeof(rnd), "%016llx", (unsigned long long)h);
		msgid = xasprintf("<%s@%s>", m->message_id, domain);
	} else {
		random_hex(id, 16);
		random_hex(rnd, 8);
		msgid = xasprintf("<%lld.%s@%s>", (long long)time(NULL), id, domain);
	}
	snprintf(boundary, sizeof(boundary), "=_abqd_%s", rnd);
	subject = mime_encode_header(m->subject);
	plain = mime_qp(m->body_plain);
	if (m->body_html == NULL)
		html_src = html_of_plain(m->body_plain);
	html = mime_qp(m->body_html ? m->body_html : html_src);

	sbuf_add(&b, "MIME-Version: 1.0\r\n");
	sbuf_printf(&b, "Date: %s\r\n", date);
	sbuf_printf(&b, "Message-ID: %s\r\n", msgid);
	sbuf_printf(&b, "From: %s\r\n", m->from);
	sbuf_printf(&b, "To: %s\r\n", m->to);
	if (m->reply_to != NULL && *m->reply_to != '\0')
		sbuf_printf(&b, "Reply-To: %s\r\n", m->reply_to);
	sbuf_printf(&b, "Subject: %s\r\n", subject);
	sbuf_add(&b, "Auto-Submitted: auto-generated\r\n");
	sbuf_printf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n", boundary);
	sbuf_add(&b, "\r\nThis is a MIME message.\r\n");
	sbuf_printf(&b, "\r\n--%s\r\n", boundary);
	sbuf_add(&b, "Content-Type: text/plain; charset=UTF-8\r\n"
	             "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	sbuf_add(&b, plain);
	sbuf_printf(&b, "\r\n--%s\r\n", boundary);
	sbuf_add(&b, "Content-Type: text/html; charset=UTF-8\r\n"
	             "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	sbuf_add(&b, html);
	sbuf_printf(&b, "\r\n--%s--\r\n", boundary);
	free(msgid);
	free(domain);
	free(subject);
	free(plain);
	free(html);
	free(html_src);
	return sbuf_take(&b);
}
