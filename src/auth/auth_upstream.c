/*
 * auth_upstream.c: the "upstream" auth backend (interfaces.md, "The auth
 * probe"): OPTIONS [upstream] url with the client's Authorization header.
 * 200 is good credentials, 401 a wrong password, anything else (another
 * status, a refused connection, a TLS failure, a timeout) means the upstream
 * failed and the answer is AUTH_UNAVAILABLE.
 *
 * The header is the only place the secret lives in a probe: it goes into a
 * curl_slist whose strings are wiped before the list is freed. Bodies are
 * read and thrown away (so the connection can be reused) up to a small cap.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "lib/metrics.h"
#include "lib/util.h"

#define UPSTREAM_MAX_BODY (64 * 1024)

struct upstream_be {
	const struct auth_conf *conf; /* auth's copy; outlives us */
};

/* A body sink: count and discard. */
static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* Check the URL is there; the rest of conf is read per probe. */
static void *
upstream_init(const struct auth_conf *conf, const char **errstr)
{
	struct upstream_be *be;

	if (conf->upstream_url == NULL || (strncasecmp(conf->upstream_url, "http://", 7) != 0 &&
	                                   strncasecmp(conf->upstream_url, "https://", 8) != 0)) {
		*errstr = "auth method upstream needs an http:// or https:// upstream url";
		return NULL;
	}
	be = xcalloc(1, sizeof(*be));
	be->conf = conf;
	return be;
}

/* An OPTIONS request carrying req->authorization; state is the header list. */
static CURL *
upstream_setup(void *bep, const struct auth_probe_req *req, void **state_r, const char **errstr)
{
	struct upstream_be *be = bep;
	struct curl_slist *hdrs = NULL, *h;
	CURL *easy;
	char *line;

	*state_r = NULL;
	if ((easy = auth_easy_new(be->conf)) == NULL) {
		*errstr = "curl_easy_init failed";
		return NULL;
	}
	line = xasprintf("Authorization: %s", req->authorization);
	h = curl_slist_append(hdrs, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (h == NULL) {
		curl_easy_cleanup(easy);
		*errstr = "out of memory";
		return NULL;
	}
	hdrs = h;
	curl_easy_setopt(easy, CURLOPT_URL, be->conf->upstream_url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "OPTIONS");
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "abqd/" ABQ_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE, (long)UPSTREAM_MAX_BODY);
	*state_r = hdrs;
	return easy;
}

/* 200: good; 401: wrong; anything else: the upstream failed. */
static enum auth_result
upstream_result(void *bep, CURL *easy, void *state, CURLcode rc)
{
	(void)state;
	long code = 0;

	/* A probe is a request to the upstream too: /healthz follows it. */
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	    rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR)
		abq_health_upstream(false);
	if (rc != CURLE_OK)
		return AUTH_UNAVAILABLE;
	abq_health_upstream(true);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		return AUTH_OK;
	if (code == 401)
		return AUTH_DENIED;
	return AUTH_UNAVAILABLE;
}

/* Free the easy handle, then wipe and free the header list. */
static void
upstream_cleanup(void *bep, CURL *easy, void *state)
{
	struct curl_slist *hdrs = state, *h;

	if (easy != NULL)
		curl_easy_cleanup(easy);
	for (h = hdrs; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
}

/* Free the backend. */
static void
upstream_free(void *bep)
{
	free(bep);
}

const struct auth_backend_ops auth_upstream_ops = {
    .name = "upstream",
    .init = upstream_init,
    .setup = upstream_setup,
    .result = upstream_result,
    .cleanup = upstream_cleanup,
    .free = upstream_free,
};
