/*
 * web.c: look up the console's files built into abqd (see embed.cmake).
 */
#include "web/web.h"

#include <string.h>

#include "web/web_assets.h"

/*
 * The asset for a request path. "/" is the page itself; a query or fragment
 * is ignored so that "/app.js?v=2" still finds the file. Only paths in the
 * table match, so nothing outside web/ (no "..", no absolute path) can be
 * reached through here.
 */
const struct abq_web_asset *
abq_web_asset(const char *path)
{
	size_t n, i;

	if (path == NULL || path[0] != '/')
		return NULL;
	n = strcspn(path, "?#");
	if (n == 1) {
		path = "/index.html";
		n = strlen(path);
	}
	for (i = 0; i < abq_web_nassets; i++) {
		const struct abq_web_asset *a = &abq_web_assets[i];

		if (strlen(a->path) == n && memcmp(a->path, path, n) == 0)
			return a;
	}
	return NULL;
}
