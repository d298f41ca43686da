/*
 * http_lines.c: plain header lines to libhttp-parser's callbacks (http_lines.h).
 *
 * Why by hand: libhttp-parser (Debian's 2.9.4) reads a header block one byte
 * at a time through a switch of some sixty states, matching every name
 * against the five it interprets and checking every value byte; on the
 * benchmark's FolderSync request and the upstream's answer that walk is about
 * 10,000 instructions, a third of what abqd runs per proxied request
 * (bench/callgrind.sh). The common line, a token, a colon, one space and a
 * value of visible bytes ended by CRLF, is two spans of a byte class, found
 * sixteen bytes at a time.
 *
 * What makes the result the parser's own. For such a line the parser calls
 * on_header_field with the name and, at the CR, on_header_value with the
 * bytes from the first one after the colon's spaces and tabs up to the CR,
 * trailing blanks included; it keeps no other state for a name outside the
 * five it interprets, and the bytes checked here are a subset of those it
 * accepts. The lines it interprets go through it; so do lines it would read
 * otherwise or in a way not reproduced here: a blank before the colon (its
 * lenient name table takes a space), an empty value, a byte it refuses or a
 * control byte, a bare LF, a line the next one folds into (SP or HTAB after
 * the CRLF), a line cut by the end of the buffer. Its own header-size count
 * (80 KiB) sees only the lines it reads; the callers cap the block themselves
 * (http_server.c at max_header_size, 16 KiB; upstream.c at 64 KiB), well
 * below the count that a plain line's bytes could reach.
 */
#include "net/http_lines.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
	C_TOKEN = 1,  /* RFC 9110 tchar */
	C_VALUE = 2,  /* a value byte: HTAB, SP, VCHAR, obs-text (lib/util.h field_value_ok's) */
	C_VSTART = 4, /* the first byte of a value: C_VALUE without SP and HTAB */
};

static const uint8_t cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* HTAB */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
    2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* SP ! " # ... / */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0-9 : ; < = > ? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* @ A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* P-Z [ \ ] ^ _ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* ` a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* p-z { | } ~ DEL */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* obs-text */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* */
};

#ifdef __SSE2__
/* Bytes of v in lo..hi (lo <= hi), as 0xff. */
static inline __m128i
in_range(__m128i v, unsigned char lo, unsigned char hi)
{
	__m128i d = _mm_sub_epi8(v, _mm_set1_epi8((char)lo));

	return _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((char)(hi - lo))), d);
}

/*
 * The bytes of b[0..n) before the first one stop(v) marks (0xff), sixteen at
 * a time while sixteen are left. Returns where it stopped: at a marked byte,
 * or at the first of the fewer than sixteen left, where the caller's byte
 * loop goes on (and also stops at a marked byte).
 */
static inline size_t
span16(const unsigned char *b, size_t n, __m128i (*stop)(__m128i))
{
	size_t i = 0;

	for (; i + 16 <= n; i += 16) {
		int m = _mm_movemask_epi8(
		    stop(_mm_loadu_si128((const __m128i *)(const void *)(b + i))));

		if (m != 0)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
	return i;
}

/* Not a letter, digit or '-': the bytes of nearly every name are. */
static inline __m128i
name_stop(__m128i v)
{
	__m128i ok = _mm_or_si128(in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z'),
	                          in_range(v, '0', '9'));

	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
	return _mm_xor_si128(ok, _mm_set1_epi8(-1));
}

/* Not a value byte: a control byte but HTAB, or DEL. */
static inline __m128i
value_stop(__m128i v)
{
	__m128i bad =
	    _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), in_range(v, 0x00, 0x1f));

	return _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
}

/*
 * Not a target byte: outside 0x21-0x7e, or one of the twelve visible bytes
 * '"' '#', '<', '>', '[' '\\' ']' '^', '`', '{' '|' '}'.
 */
static inline __m128i
target_stop(__m128i v)
{
	__m128i bad = _mm_or_si128(in_range(v, 0x22, 0x23), in_range(v, 0x5b, 0x5e));

	bad = _mm_or_si128(bad, in_range(v, 0x7b, 0x7d));
	bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
	bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('>')));
	bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('`')));
	return _mm_or_si128(bad, _mm_andnot_si128(in_range(v, 0x21, 0x7e), _mm_set1_epi8(-1)));
}
#endif

/*
 * Spans of a header line, sixteen bytes per step where the CPU has SSE2
 * (every x86-64) and sixteen bytes are left in the buffer, else a byte at a
 * time through cls. A line is walked once: the name, then the value up to
 * its CR, which also ends the line (no memchr ahead of the two).
 */
size_t
http_token_span(const char *s, size_t n)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t i = 0;

#ifdef __SSE2__
	/* letters, digits and '-' sixteen at a time; other token bytes through cls */
	i = span16(b, n, name_stop);
#endif
	while (i < n && (cls[b[i]] & C_TOKEN))
		i++;
	return i;
}

size_t
http_value_span(const char *s, size_t n)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t i = 0;

#ifdef __SSE2__
	i = span16(b, n, value_stop);
#endif
	while (i < n && (cls[b[i]] & C_VALUE))
		i++;
	return i;
}

/* name[0..len) equals lower (lower case) in ASCII case-insensitively; name is tokens or value
 * bytes. */
static bool
name_is(const char *name, size_t len, const char *lower, size_t llen)
{
	if (len != llen)
		return false;
	/*
	 * Setting 0x20 lower-cases a letter and maps no other token or value
	 * byte onto a lower-case letter or '-': eight bytes a step, the last
	 * step overlapping the one before it.
	 */
	if (len >= 8) {
		for (size_t i = 0;; i += 8) {
			uint64_t a, b;

			if (i + 8 > len)
				i = len - 8;
			memcpy(&a, name + i, 8);
			memcpy(&b, lower + i, 8);
			if ((a | 0x2020202020202020ull) != b)
				return false;
			if (i + 8 == len)
				return true;
		}
	}
	for (size_t i = 0; i < len; i++) {
		if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i])
			return false;
	}
	return true;
}

/*
 * A name libhttp-parser interprets (its header_state matching): one of five,
 * or any name that starts with "transfer-encoding", for which the parser
 * notes a Transfer-Encoding (F_TRANSFER_ENCODING, which makes it refuse a
 * request that is not chunked) as soon as it has matched that far.
 */
static bool
framing_name(const char *name, size_t len)
{
#define IS(s) name_is(name, len, s, sizeof(s) - 1)
	if (len > 17 && name_is(name, 17, "transfer-encoding", 17))
		return true;
	switch (len) {
	case 7:
		return IS("upgrade");
	case 10:
		return IS("connection");
	case 14:
		return IS("content-length");
	case 16:
		return IS("proxy-connection");
	case 17:
		return IS("transfer-encoding");
	default:
		return false;
	}
#undef IS
}

/*
 * "Connection: keep-alive" in an HTTP/1.1 message: the parser would only set
 * F_CONNECTION_KEEP_ALIVE, which it reads for HTTP/1.0 alone
 * (http_should_keep_alive), and abqd never; such a line is taken as a plain
 * one. Both sides send it on every message of a kept-alive connection.
 */
static bool
keep_alive_11(const http_parser *p, const char *name, size_t nlen, const char *v, size_t vlen)
{
	return p->http_major == 1 && p->http_minor == 1 && nlen == 10 &&
	       name_is(name, nlen, "connection", 10) && name_is(v, vlen, "keep-alive", 10);
}

size_t
http_lines(http_parser *p, const http_parser_settings *s, http_line_cb on_line, const char *buf,
           size_t n)
{
	const unsigned char *b = (const unsigned char *)buf, *end = b + n, *line = b;

	while (line < end) {
		const unsigned char *q = line, *v, *cr;
		size_t nlen;

		/* the name, up to the colon */
		nlen = http_token_span((const char *)line, (size_t)(end - line));
		q = line + nlen;
		if (nlen == 0 || end - q < 2 || *q != ':')
			break;
		q++;
		if (*q == ' ')
			q++;
		/* the value: a visible first byte, then value bytes up to the line's CR */
		v = q;
		if (v == end || !(cls[*v] & C_VSTART))
			break;
		cr = v + 1 + http_value_span((const char *)v + 1, (size_t)(end - v - 1));
		if (end - cr < 3 || cr[0] != '\r' || cr[1] != '\n' || cr[2] == ' ' || cr[2] == '\t')
			break; /* a bad byte, cut by the buffer, a bare CR, or folded into */
		if (framing_name((const char *)line, nlen) &&
		    !keep_alive_11(p, (const char *)line, nlen, (const char *)v,
		                   (size_t)(cr - v))) {
			size_t len = (size_t)(cr + 2 - line);
			size_t k = http_parser_execute(p, s, (const char *)line, len);

			if (k != len || HTTP_PARSER_ERRNO(p) != HPE_OK)
				return (size_t)(line - b) + k;
		} else if (on_line != NULL) {
			int e =
			    on_line(p, (const char *)line, nlen, (const char *)v, (size_t)(cr - v));

			if (e != 0) {
				p->http_errno = (unsigned)e;
				return (size_t)(line - b);
			}
		} else {
			if (s->on_header_field != NULL &&
			    s->on_header_field(p, (const char *)line, nlen) != 0) {
				p->http_errno = HPE_CB_header_field;
				return (size_t)(line - b);
			}
			if (s->on_header_value != NULL &&
			    s->on_header_value(p, (const char *)v, (size_t)(cr - v)) != 0) {
				p->http_errno = HPE_CB_header_value;
				return (size_t)(line - b);
			}
		}
		line = cr + 2;
	}
	return (size_t)(line - b);
}

/* http_start_take's callbacks: the struct as each saw it, and how many. */
struct take {
	struct http_start *t;
	int begins, datas;
};

static int
take_begin(http_parser *p)
{
	struct take *k = p->data;

	k->t->at_begin = *p;
	k->begins++;
	return 0;
}

static int
take_data(http_parser *p, const char *at, size_t len)
{
	struct take *k = p->data;

	(void)at;
	(void)len;
	k->t->at_data = *p;
	k->datas++;
	return 0;
}

int
http_start_take(struct http_start *t, enum http_parser_type type, const char *line, size_t len)
{
	static const http_parser_settings take_cbs = {
	    .on_message_begin = take_begin, .on_url = take_data, .on_status = take_data};
	struct take k = {.t = t};
	http_parser p;

	t->len = 0;
	if (len == 0 || len > HTTP_START_MAX)
		return -1;
	http_parser_init(&p, type);
	p.data = &k;
	if (http_parser_execute(&p, &take_cbs, line, len) != len ||
	    HTTP_PARSER_ERRNO(&p) != HPE_OK || k.begins != 1 || k.datas != 1)
		return -1;
	t->after = p;
	t->at_begin.data = t->at_data.data = t->after.data = NULL;
	memcpy(t->line, line, len);
	t->len = (uint8_t)len;
	return 0;
}

/* p as the parser held it at one point of a start line, data kept. */
static inline void
start_at(http_parser *p, const http_parser *at)
{
	void *data = p->data;

	*p = *at;
	p->data = data;
}

int
http_start_replay(http_parser *p, const http_parser_settings *s, const struct http_start *t,
                  const char *data, size_t len)
{
	http_data_cb on_data = t->after.type == HTTP_REQUEST ? s->on_url : s->on_status;

	start_at(p, &t->at_begin);
	if (s->on_message_begin != NULL && s->on_message_begin(p) != 0) {
		p->http_errno = HPE_CB_message_begin;
		return -1;
	}
	start_at(p, &t->at_data);
	if (on_data != NULL && on_data(p, data, len) != 0) {
		p->http_errno = t->after.type == HTTP_REQUEST ? HPE_CB_url : HPE_CB_status;
		return -1;
	}
	start_at(p, &t->after);
	return 0;
}

size_t
http_status_line(http_parser *p, const http_parser_settings *s, struct http_status_seen *seen,
                 const char *buf, size_t n)
{
	const char *q = buf + 13, *end = buf + n;
	size_t len, k;

	/* "HTTP/1.x NNN " */
	if (n < 15 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || (unsigned)(buf[9] - '0') > 9 || (unsigned)(buf[10] - '0') > 9 ||
	    (unsigned)(buf[11] - '0') > 9 || buf[12] != ' ')
		return 0;
	/* the reason, to the line's end: CRLF, whole in buf */
	while (q < end && *q != '\r' && *q != '\n')
		q++;
	if (end - q < 2 || q[0] != '\r' || q[1] != '\n')
		return 0;
	len = (size_t)(q + 2 - buf);
	if (seen != NULL) {
		for (unsigned i = 0; i < HTTP_STATUS_SEEN; i++) {
			const struct http_start *t = &seen->e[i];

			if (t->len != len || memcmp(t->line, buf, len) != 0)
				continue;
			return http_start_replay(p, s, t, buf + 13, len - 15) == 0 ? len : 0;
		}
	}
	k = http_parser_execute(p, s, buf, len);
	if (HTTP_PARSER_ERRNO(p) != HPE_OK || k != len)
		return k;
	if (seen != NULL && http_start_take(&seen->e[seen->next], HTTP_RESPONSE, buf, len) == 0)
		seen->next = (seen->next + 1) % HTTP_STATUS_SEEN;
	return len;
}

/* The target bytes of http_target_span, as a bit set. */
static inline bool
target_byte(unsigned char ch)
{
	static const uint32_t set[8] = {0, 0xaffffff2, 0x87ffffff, 0x47fffffe, 0, 0, 0, 0};

	return (set[ch >> 5] >> (ch & 31)) & 1;
}

/*
 * A phone's request target is some 60 to 200 bytes, scanned on every
 * request: sixteen at a time where the CPU has SSE2 (target_stop), the rest
 * one at a time.
 */
size_t
http_target_span(const char *s, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	i = span16((const unsigned char *)s, n, target_stop);
#endif
	while (i < n && target_byte((unsigned char)s[i]))
		i++;
	return i;
}
