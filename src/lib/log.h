/*
 * log.h: abqd's log. To stderr in the foreground (-d), to syslog otherwise.
 * Lines never carry credentials: callers log the user name, never a password
 * or an Authorization header.
 */
#ifndef ABQ_LOG_H
#define ABQ_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Start logging as ident: to stderr when foreground, else syslog at facility. */
void log_init(const char *ident, bool foreground, enum log_level level, int facility);
void log_set_level(enum log_level level);
/*
 * Start every line with prefix (copied, up to 63 bytes; NULL or "": none): a
 * prefork abqd's worker sets "worker=N pid=P " so that its lines can be told
 * apart on stderr as in syslog.
 */
void log_set_prefix(const char *prefix);
bool log_enabled(enum log_level level);
/* "error", "warn", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);
/* "daemon", "local0".."local7", "user", "mail", "auth" -> LOG_* facility; -1 if unknown. */
int log_facility_parse(const char *s, int *out);

/*
 * Text from peers (a phone's model, a login name, a path) as it may be shown on
 * a terminal or in a log line. Printable ASCII and valid UTF-8 are kept; every
 * other byte is written as "\xNN" (lower-case hex): the C0 controls (ESC, CR,
 * LF...), DEL, both bytes of a C1 control (U+0080-U+009F, "\xc2\x9b" for CSI)
 * and each byte that is not part of valid UTF-8 (overlong forms, surrogates,
 * beyond U+10FFFF, cut-off sequences).
 */
#define TEXT_KEEP_LINES 1u /* keep LF and tab as they are (multi-line text) */
#define TEXT_QUOTED     2u /* also backslash and '"', each after a backslash */
/* The longest piece one character of s becomes: "\xc2\x9b". */
#define TEXT_PIECE_MAX 8
/*
 * The next character of s (not at its NUL) as shown: writes it into out (not
 * NUL-terminated), returns its length and sets *used to the bytes of s read.
 */
size_t text_piece(const char *s, unsigned flags, char out[TEXT_PIECE_MAX], size_t *used);
/* s as shown, in a new string (NULL for NULL). */
char *text_shown(const char *s, unsigned flags);
/*
 * s for a log line: quoted, escaped as above (TEXT_QUOTED), cut to fit len
 * bytes with "..." before the closing quote; NULL gives "-". Returns buf.
 * 	char b[128];
 * 	log_warn("failed login as %s", log_safe(b, sizeof(b), name));
 */
const char *log_safe(char *buf, size_t len, const char *s);
/* The same without the quotes (a path, a name that cannot hold a space). */
const char *log_text(char *buf, size_t len, const char *s);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
