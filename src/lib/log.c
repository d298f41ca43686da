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
