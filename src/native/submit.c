/*
 * submit.c: SMTP submission on the loop (see submit.h).
 *
 * Design: the message's header block is read once with GMime for the
 * envelope recipients and rewritten once into our own buffer (Bcc dropped,
 * Date and Message-ID added when missing, CRLF); the body is streamed to
 * libcurl from the caller's buffer by read_cb, which turns bare LFs into CRLF
 * as it goes (libcurl does the dot-stuffing and the final CRLF.CRLF). The
 * size libcurl announces (SIZE=) is the exact number of bytes read_cb
 * yields, counted before the start.
 *
 * What happened is followed through libcurl's debug callback: the command
 * lines we send tell the phase (AUTH, MAIL, RCPT with its address, DATA);
 * the server's lines give the last reply code and text. Nothing else of what
 * we send is kept: AUTH's lines carry the credentials.
 *
 * libcurl stops at the first recipient the server refuses (we do not set
 * CURLOPT_MAIL_RCPT_ALLOWFAILS): either every recipient is accepted and the
 * message sent, or nothing is sent and the refused one is named.
 *
 * THE TWO WAITS (libcurl 7.88, measured with strace): libcurl's SMTP reads
 * the server's answer to the final "." and, ending the connection, the 221
 * to QUIT in blocking loops (poll on the socket: its smtp_done and
 * disconnect paths are synchronous even under the multi interface). So the
 * loop's thread waits for as long as the server takes to accept the DATA
 * (the fixture: 7-10 ms for a small message, 70-110 ms for 3 MB relayed by
 * relay.py) plus one round trip. CURLOPT_SERVER_RESPONSE_TIMEOUT (at most
 * SUBMIT_REPLY_WAIT seconds) bounds both. A failed transfer is closed
 * without QUIT (libcurl treats its connection as dead). When this is wired
 * into the daemon, submissions belong on a curl_loop of their own thread
 * (as the notice sender's), not on a loop that serves phones.
 * Connections are not reused: each submission logs in as its user.
 */
#include <curl/curl.h>
#include <gmime/gmime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "mime/compose.h"
#include "mime/msgconv.h"
#include "native/submit.h"
#include "net/curl_loop.h"

#define SUBMIT_REPLY_WAIT 10 /* seconds: the most a blocking wait lasts (see above) */
#define MAX_GROUP_DEPTH   4

/* Where the dialogue is, from the last command we sent. */
enum phase { PH_CONNECT, PH_AUTH, PH_MAIL, PH_RCPT, PH_DATA };

struct submit {
	struct curl_loop *cl;
	CURL *easy;
	struct curl_slist *rcpt;
	size_t n_rcpt;
	submit_done_cb *done;
	void *arg;

	/* What read_cb yields: hdr, then body with bare LFs as CRLF. */
	char *hdr;
	size_t hdr_len, hdr_off;
	const char *body;
	size_t body_len, body_off;
	bool lf_due; /* a bare LF's CR went out; its LF is next */
	size_t total;

	enum phase phase;
	bool quit; /* QUIT went out: its answer tells nothing of the mail */
	char last_rcpt[SUBMIT_MAX_ADDR + 1];
	char text[SUBMIT_MAX_TEXT + 1];
	int code;
	char curl_err[CURL_ERROR_SIZE];
};

/* A result's name for logs. */
const char *
submit_result_name(enum submit_result r)
{
	switch (r) {
	case SUBMIT_SENT:
		return "sent";
	case SUBMIT_AUTH_REFUSED:
		return "auth refused";
	case SUBMIT_RCPT_REFUSED:
		return "recipient refused";
	case SUBMIT_TOO_LARGE:
		return "message too large";
	case SUBMIT_TEMPORARY:
		return "temporary failure";
	case SUBMIT_PERMANENT:
		return "permanent failure";
	}
	return "?";
}

/* Whether a (bare) address is one we may give the server as a path. */
static bool
addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	size_t n = strlen(a);

	if (n == 0 || n > SUBMIT_MAX_ADDR || at == NULL || at == a || at[1] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == '<' || *p == '>' || *p == 0x7f)
			return false;
	return true;
}

/* Collect the mailboxes of l (groups opened) into *list, once each. */
static int
collect(InternetAddressList *l, int depth, GPtrArray *list, size_t max, char **bad_r,
        const char **errstr)
{
	int n = l ? internet_address_list_length(l) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (depth >= MAX_GROUP_DEPTH) {
				*errstr = "address groups nested too deep";
				return -1;
			}
			if (collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
			            depth + 1, list, max, bad_r, errstr) < 0)
				return -1;
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		InternetAddressMailbox *mb = INTERNET_ADDRESS_MAILBOX(ia);
		const char *a = internet_address_mailbox_get_idn_addr(mb);
		if (a == NULL || !addr_ok(a)) {
			if (bad_r != NULL) {
				const char *raw = internet_address_mailbox_get_addr(mb);
				*bad_r = xstrdup(raw ? raw : "");
			}
			*errstr = "a recipient is no address";
			return -1;
		}
		bool dup = false;
		for (guint j = 0; j < list->len && !dup; j++)
			dup = strcasecmp(g_ptr_array_index(list, j), a) == 0;
		if (dup)
			continue;
		if (list->len >= max) {
			*errstr = "too many recipients";
			return -1;
		}
		g_ptr_array_add(list, xstrdup(a));
	}
	return 0;
}

/* Free a recipient array. */
void
submit_rcpt_free(char **rcpt)
{
	if (rcpt == NULL)
		return;
	for (char **p = rcpt; *p; p++)
		free(*p);
	free(rcpt);
}

/* The recipients of the header block msg[0..len) (see submit.h). */
char **
submit_recipients(const char *msg, size_t len, size_t max, size_t *n_r, char **bad_r,
                  const char **errstr)
{
	static const GMimeAddressType types[] = {GMIME_ADDRESS_TYPE_TO, GMIME_ADDRESS_TYPE_CC,
	                                         GMIME_ADDRESS_TYPE_BCC};
	size_t hdr_len, body_off;
	GMimeParserOptions *po;
	GByteArray *ba;
	GMimeStream *st;
	GMimeParser *parser;
	GMimeMessage *m;
	GPtrArray *list;
	char **out = NULL;
	int rv = 0;

	*n_r = 0;
	if (bad_r != NULL)
		*bad_r = NULL;
	compose_split_header(msg, len, &hdr_len, &body_off);
	if (hdr_len == 0) {
		*errstr = "the message has no header";
		return NULL;
	}
	if (hdr_len > SUBMIT_MAX_HEADER) {
		*errstr = "the message's header is too large";
		return NULL;
	}
	msgconv_init();
	po = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
	/* Only the header block (and its empty line): the body is not read. */
	ba = g_byte_array_new_take((guint8 *)(uintptr_t)msg, body_off);
	st = g_mime_stream_mem_new_with_byte_array(ba);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
	parser = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, po);
	list = g_ptr_array_new();
	if (m == NULL) {
		*errstr = "not an Internet message";
		rv = -1;
	}
	for (size_t t = 0; rv == 0 && t < sizeof(types) / sizeof(types[0]); t++)
		rv =
		    collect(g_mime_message_get_addresses(m, types[t]), 0, list, max, bad_r, errstr);
	if (rv == 0 && list->len == 0) {
		*errstr = "the message has no recipients";
		rv = -1;
	}
	if (rv == 0) {
		out = xcalloc(list->len + 1, sizeof(char *));
		for (guint i = 0; i < list->len; i++)
			out[i] = g_ptr_array_index(list, i);
		*n_r = list->len;
	} else {
		for (guint i = 0; i < list->len; i++)
			free(g_ptr_array_index(list, i));
	}
	g_ptr_array_free(list, TRUE);
	if (m != NULL)
		g_object_unref(m);
	g_object_unref(parser);
	g_object_unref(st);
	g_byte_array_free(ba, FALSE);
	g_mime_parser_options_free(po);
	return out;
}

/* libcurl reads the message: our header block, then the body, LF as CRLF. */
static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct submit *s = arg;
	size_t room = size * nitems, out = 0;

	if (s->hdr_off < s->hdr_len) {
		size_t n = s->hdr_len - s->hdr_off;
		if (n > room)
			n = room;
		memcpy(buf, s->hdr + s->hdr_off, n);
		s->hdr_off += n;
		out += n;
	}
	while (out < room && s->body_off < s->body_len) {
		if (s->lf_due) {
			buf[out++] = '\n';
			s->lf_due = false;
			s->body_off++;
			continue;
		}
		const char *p = s->body + s->body_off;
		if (*p == '\n' && (s->body_off == 0 || p[-1] != '\r')) {
			buf[out++] = '\r';
			s->lf_due = true;
			continue;
		}
		/* A run up to (and with) the next LF, or as much as fits. */
		size_t n = s->body_len - s->body_off;
		if (n > room - out)
			n = room - out;
		const char *nl = memchr(p + 1, '\n', n - 1);
		if (nl != NULL) /* through a CRLF's LF, or up to a bare LF */
			n = (size_t)(nl - p) + (nl[-1] == '\r' ? 1 : 0);
		memcpy(buf + out, p, n);
		out += n;
		s->body_off += n;
	}
	return out;
}

/* The body's size once its bare LFs are CRLF. */
static size_t
sent_body_size(const char *body, size_t len)
{
	size_t n = len;
	const char *p = body, *end = body + len, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (nl == body || nl[-1] != '\r')
			n++;
		p = nl + 1;
	}
	return n;
}

/* Copy at most SUBMIT_MAX_TEXT bytes of one line, without its line end. */
static void
keep_line(char *dst, const char *src, size_t n)
{
	while (n > 0 && (src[n - 1] == '\n' || src[n - 1] == '\r'))
		n--;
	if (n > SUBMIT_MAX_TEXT)
		n = SUBMIT_MAX_TEXT;
	for (size_t i = 0; i < n; i++)
		dst[i] = ((unsigned char)src[i] < ' ' || src[i] == 0x7f) ? ' ' : src[i];
	dst[n] = '\0';
}

/*
 * libcurl's dialogue: the phase from our commands (only their verb, and
 * RCPT's address: AUTH lines are never looked into further), the last reply
 * code and line from the server's.
 */
static int
debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	struct submit *s = arg;

	if (type == CURLINFO_HEADER_OUT) {
		if (size >= 4 && strncasecmp(data, "AUTH", 4) == 0)
			s->phase = PH_AUTH;
		else if (size >= 9 && strncasecmp(data, "MAIL FROM", 9) == 0)
			s->phase = PH_MAIL;
		else if (size >= 8 && strncasecmp(data, "RCPT TO:", 8) == 0) {
			const char *a = data + 8, *e = data + size;
			if (a < e && *a == '<')
				a++;
			const char *gt = memchr(a, '>', (size_t)(e - a));
			s->phase = PH_RCPT;
			keep_line(s->last_rcpt, a, (size_t)((gt ? gt : e) - a));
			s->last_rcpt[SUBMIT_MAX_ADDR] = '\0';
		} else if (size >= 4 && strncasecmp(data, "DATA", 4) == 0)
			s->phase = PH_DATA;
		else if (size >= 4 && strncasecmp(data, "QUIT", 4) == 0)
			s->quit = true; /* also after a refusal: the phase stays */
	} else if (type == CURLINFO_HEADER_IN && !s->quit) {
		/* Lines of one reply come one by one; the last one is kept. */
		if (size >= 3 && data[0] >= '2' && data[0] <= '5' && data[1] >= '0' &&
		    data[1] <= '9' && data[2] >= '0' && data[2] <= '9') {
			s->code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
			keep_line(s->text, data, size);
		}
	}
	return 0;
}

/* Whether a libcurl error without a server refusal is worth trying again. */
static bool
transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_PARTIAL_FILE:
	case CURLE_UPLOAD_FAILED:
		return true;
	default:
		return false;
	}
}

/* The class of an ended transfer (see submit.h). */
static enum submit_result
classify(const struct submit *s, CURLcode rc)
{
	int c = s->code;

	if (rc == CURLE_OK)
		return SUBMIT_SENT;
	if (c == 552 || (c / 100 == 5 && strstr(s->text, "5.3.4") != NULL))
		return SUBMIT_TOO_LARGE;
	if (c / 100 == 4)
		return SUBMIT_TEMPORARY;
	if (rc == CURLE_LOGIN_DENIED)
		return c / 100 == 5 ? SUBMIT_AUTH_REFUSED : SUBMIT_PERMANENT;
	if (c / 100 == 5)
		return s->phase == PH_RCPT ? SUBMIT_RCPT_REFUSED : SUBMIT_PERMANENT;
	if (transient(rc))
		return SUBMIT_TEMPORARY;
	return SUBMIT_PERMANENT;
}

/* Free everything of s (its transfer already taken from the loop). */
static void
submit_free(struct submit *s)
{
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy); /* libcurl's copy of the password goes with it */
	curl_slist_free_all(s->rcpt);
	free(s->hdr);
	free(s);
}

/* The transfer ended: classify it, tell the caller, free. */
static void
on_done(void *arg, CURL *easy, CURLcode rc)
{
	struct submit *s = arg;
	struct submit_outcome o = {0};

	o.result = classify(s, rc);
	o.smtp_code = s->code;
	o.text = s->text;
	o.rcpt = s->phase == PH_RCPT && rc != CURLE_OK ? s->last_rcpt : NULL;
	o.detail = rc == CURLE_OK ? "" : s->curl_err[0] ? s->curl_err : curl_easy_strerror(rc);
	o.n_rcpt = s->n_rcpt;
	o.bytes = s->total;
	s->done(s->arg, &o);
	submit_free(s);
}

/* Whether url's host is a loopback one (STARTTLS may then be absent). */
static int
url_host(const char *url, bool *tls_r, bool *loopback_r, const char **errstr)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rv = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*errstr = "the submission URL cannot be read";
		goto out;
	}
	if (strcasecmp(scheme, "smtps") == 0)
		*tls_r = true;
	else if (strcasecmp(scheme, "smtp") == 0)
		*tls_r = false;
	else {
		*errstr = "the submission URL is neither smtp:// nor smtps://";
		goto out;
	}
	*loopback_r = strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	              strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
	rv = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rv;
}

/* Start one submission (see submit.h). */
struct submit *
submit_start(struct curl_loop *cl, const struct submit_conf *conf, const char *msg, size_t len,
             submit_done_cb *done, void *arg, enum submit_result *refused_r, const char **errstr)
{
	size_t max_size = conf->max_size ? conf->max_size : SUBMIT_DEFAULT_MAX_SIZE;
	size_t max_rcpt = conf->max_rcpt ? conf->max_rcpt : SUBMIT_DEFAULT_MAX_RCPT;
	unsigned timeout = conf->timeout ? conf->timeout : SUBMIT_DEFAULT_TIMEOUT;
	size_t hdr_len, body_off, n_rcpt;
	bool tls, loopback;
	char **rcpt;
	struct submit *s;
	char *from;

	*refused_r = SUBMIT_PERMANENT;
	if (conf->url == NULL || conf->user == NULL || conf->password == NULL ||
	    conf->from == NULL || !addr_ok(conf->from)) {
		*errstr = "submission: URL, credentials and a sender address are needed";
		return NULL;
	}
	if (url_host(conf->url, &tls, &loopback, errstr) < 0)
		return NULL;
	if (msg == NULL || len == 0) {
		*errstr = "empty message";
		return NULL;
	}
	if (len > max_size) {
		*refused_r = SUBMIT_TOO_LARGE;
		*errstr = "the message is larger than the submission cap";
		return NULL;
	}
	if ((rcpt = submit_recipients(msg, len, max_rcpt, &n_rcpt, NULL, errstr)) == NULL) {
		*refused_r = strstr(*errstr, "recipient") ? SUBMIT_RCPT_REFUSED : SUBMIT_PERMANENT;
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->cl = cl;
	s->done = done;
	s->arg = arg;
	s->n_rcpt = n_rcpt;
	for (size_t i = 0; i < n_rcpt; i++) {
		char *r = xasprintf("<%s>", rcpt[i]);
		s->rcpt = curl_slist_append(s->rcpt, r);
		free(r);
	}
	submit_rcpt_free(rcpt);
	compose_split_header(msg, len, &hdr_len, &body_off);
	s->hdr = compose_header_block(msg, hdr_len, conf->from, true, &s->hdr_len);
	s->body = msg + body_off;
	s->body_len = len - body_off;
	s->total = s->hdr_len + sent_body_size(s->body, s->body_len);

	if (s->rcpt == NULL || (s->easy = curl_easy_init()) == NULL) {
		*errstr = "curl_easy_init failed";
		submit_free(s);
		return NULL;
	}
	from = xasprintf("<%s>", conf->from);
	curl_easy_setopt(s->easy, CURLOPT_URL, conf->url);
	curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* STARTTLS or nothing, but to loopback: there when offered. */
	if (!tls)
		curl_easy_setopt(s->easy, CURLOPT_USE_SSL,
		                 (long)(loopback ? CURLUSESSL_TRY : CURLUSESSL_ALL));
	if (conf->ca_file != NULL)
		curl_easy_setopt(s->easy, CURLOPT_CAINFO, conf->ca_file);
	if (conf->tls_insecure) {
		curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(s->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(s->easy, CURLOPT_USERNAME, conf->user);
	curl_easy_setopt(s->easy, CURLOPT_PASSWORD, conf->password);
	curl_easy_setopt(s->easy, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, s->rcpt);
	curl_easy_setopt(s->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(s->easy, CURLOPT_READDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->total);
	curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->curl_err);
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT, (long)(timeout < 30 ? timeout : 30));
	curl_easy_setopt(s->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	                 (long)(timeout < SUBMIT_REPLY_WAIT ? timeout : SUBMIT_REPLY_WAIT));
	/* One login per submission, and no logged-in connection left behind. */
	curl_easy_setopt(s->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(s->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(s->easy, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(s->easy, CURLOPT_DEBUGDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_VERBOSE, 1L); /* feeds debug_cb only */
	free(from);
	if (curl_loop_add(cl, s->easy, on_done, s, errstr) < 0) {
		submit_free(s);
		return NULL;
	}
	return s;
}

/* Take the transfer back from the loop and free it. */
void
submit_cancel(struct submit **sp)
{
	struct submit *s = *sp;

	if (s == NULL)
		return;
	curl_loop_remove(s->cl, s->easy);
	submit_free(s);
	*sp = NULL;
}
