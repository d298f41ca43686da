/*
 * log.h: abqd's log. To stderr in the foreground (-d), to syslog otherwise.
 * Lines never carry credentials: callers log the user name, never a password
 * or an Authorization header.
 */
#ifndef ABQ_LOG_H
#define ABQ_LOG_H

#include <stdbool.h>

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

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
