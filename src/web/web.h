/*
 * web.h: the console's files (web/), built into the binary so that abqd serves
 * them itself (cmake turns each file of web/ into a byte array at build time).
 */
#ifndef ABQ_WEB_H
#define ABQ_WEB_H

#include <stddef.h>

struct abq_web_asset {
	const char *path;         /* "/", "/app.js", "/app.css", ... */
	const char *content_type; /* "text/html; charset=utf-8", ... */
	const unsigned char *data;
	size_t len;
	const char *etag; /* a quoted hash of the content */
};

/* The asset served at path ("/" is index.html), or NULL. */
const struct abq_web_asset *abq_web_asset(const char *path);

#endif
