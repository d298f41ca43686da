/*
 * log.c: one line per event, to stderr with a timestamp or to syslog.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"

static bool log_foreground = true;
static enum log_level log_threshold = LOG_LEVEL_INFO;
static char log_prefix[64];

void
log_init(const char *ident, bool foreground, enum log_level level, int facility)
{
	log_foreground = foreground;
	log_threshold = level;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(enum log_level level)
{
	log_threshold = level;
}

void
log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix != NULL ? prefix : "");
}

bool
log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++) {
		if (s != NULL && strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_facility_parse(const char *s, int *out)
{
	static const struct {
		const char *name;
		int facility;
	} t[] = {
	    {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"mail", LOG_MAIL},
	    {"auth", LOG_AUTH},     {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
	    {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
	    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (s != NULL && strcasecmp(s, t[i].name) == 0) {
			*out = t[i].facility;
			return 0;
		}
	}
	return -1;
}

/*
 * The length of the valid UTF-8 sequence of two or more bytes at p, 0 when
 * there is none (RFC 3629: no overlong form, no surrogate, nothing beyond
 * U+10FFFF). A NUL ends a sequence as any other non-continuation byte does.
 */
static size_t
utf8_seq_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0; /* overlong below U+0800 */
	else if (p[0] == 0xed)
		hi = 0x9f; /* U+D800-U+DFFF */
	else if (p[0] == 0xf0)
		lo = 0x90; /* overlong below U+10000 */
	else if (p[0] == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Write "\xNN" for each of the n bytes at p into out; returns 4 * n. */
static size_t
hex_bytes(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[4 * i] = '\\';
		out[4 * i + 1] = 'x';
		out[4 * i + 2] = digits[p[i] >> 4];
		out[4 * i + 3] = digits[p[i] & 15];
	}
	return 4 * n;
}

/* One character of peer text as it is shown (log.h). */
size_t
text_piece(const char *s, unsigned flags, char out[TEXT_PIECE_MAX], size_t *used)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	*used = 1;
	if (p[0] < 0x80) {
		if ((p[0] == '\n' || p[0] == '\t') && (flags & TEXT_KEEP_LINES) != 0) {
			out[0] = (char)p[0];
			return 1;
		}
		if (p[0] < 0x20 || p[0] == 0x7f)
			return hex_bytes(p, 1, out);
		if ((p[0] == '\\' || p[0] == '"') && (flags & TEXT_QUOTED) != 0) {
			out[0] = '\\';
			out[1] = (char)p[0];
			return 2;
		}
		out[0] = (char)p[0];
		return 1;
	}
	n = utf8_seq_len(p);
	if (n == 0)
		return hex_bytes(p, 1, out);
	*used = n;
	if (p[0] == 0xc2 && p[1] <= 0x9f) /* a C1 control: CSI, NEL... */
		return hex_bytes(p, 2, out);
	memcpy(out, p, n);
	return n;
}

/* s as it is shown, in a new string. */
char *
text_shown(const char *s, unsigned flags)
{
	struct sbuf b = {0};
	char piece[TEXT_PIECE_MAX];
	size_t used;

	if (s == NULL)
		return NULL;
	for (; *s != '\0'; s += used)
		sbuf_addn(&b, piece, text_piece(s, flags, piece, &used));
	return sbuf_take(&b);
}

/*
 * s escaped into buf, quoted (with TEXT_QUOTED) or not. When it does not fit,
 * as many whole pieces as leave room for "...", the quote and the NUL.
 */
static const char *
log_escape(char *buf, size_t len, const char *s, bool quoted)
{
	unsigned flags = quoted ? TEXT_QUOTED : 0;
	size_t q = quoted ? 1 : 0, off = 0, used, need = 2 * q + 1;
	char piece[TEXT_PIECE_MAX];

	if (len == 0)
		return buf;
	if (s == NULL || len < 2 * q + 4) {
		snprintf(buf, len, "%s", s == NULL ? "-" : "...");
		return buf;
	}
	for (const char *p = s; *p != '\0' && need <= len; p += used)
		need += text_piece(p, flags, piece, &used);
	if (quoted)
		buf[off++] = '"';
	for (; *s != '\0'; s += used) {
		size_t n = text_piece(s, flags, piece, &used);
		if (need > len && off + n + 3 + q + 1 > len) {
			memcpy(buf + off, "...", 3);
			off += 3;
			break;
		}
		memcpy(buf + off, piece, n);
		off += n;
	}
	if (quoted)
		buf[off++] = '"';
	buf[off] = '\0';
	return buf;
}

/* s for a log line, quoted (log.h). */
const char *
log_safe(char *buf, size_t len, const char *s)
{
	return log_escape(buf, len, s, true);
}

/* s for a log line, unquoted (log.h). */
const char *
log_text(char *buf, size_t len, const char *s)
{
	return log_escape(buf, len, s, false);
}

/* Write one line at level: stderr gets "2026-11-28T06:00:00Z warn: ...". */
static void vlog(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
vlog(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *tag[] = {"error", "warn", "info", "debug"};
	char line[2048];

	if (level > log_threshold)
		return;
	size_t off = strlen(log_prefix);
	memcpy(line, log_prefix, off);
	vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (!log_foreground) {
		syslog(prio[level], "%s", line);
		return;
	}
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* One fprintf per line: stdio's lock keeps lines from interleaving. */
	fprintf(stderr, "%s %s: %s\n", ts, tag[level], line);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}
