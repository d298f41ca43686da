/*
 * auth_imap.c: the IMAP auth backend ([auth] method = imap://host[:port] or
 * imaps://host[:port]): libcurl logs in (IMAP LOGIN, or AUTHENTICATE with a
 * SASL mechanism the server offers) and sends LOGOUT. A refused login
 * (CURLE_LOGIN_DENIED) is a wrong password, unless the server's NO carried
 * an RFC 5530 code saying it cannot take logins now (UNAVAILABLE, INUSE,
 * LIMIT, SERVERBUG: Dovecot says UNAVAILABLE while its auth process
 * starts): that, and any other failure (connection, TLS, timeout,
 * protocol), is AUTH_UNAVAILABLE, neither cached nor counted against the
 * user. libcurl reports every NO alike, so the server's lines are read
 * through its debug callback (only what the server sent: the lines carrying
 * the credentials are never looked at). Nothing is read from any mailbox:
 * the URL's path is ignored.
 *
 * Why LOGOUT is our request and not NOOP: libcurl closes an IMAP connection
 * by sending LOGOUT and then WAITING FOR THE ANSWER IN A BLOCKING LOOP (its
 * disconnect path is synchronous, even with the multi interface). Logging out
 * ourselves makes the server close the connection, so libcurl's own LOGOUT
 * meets a closed socket and returns at once instead of stalling the event
 * loop; CURLOPT_SERVER_RESPONSE_TIMEOUT (the request timeout: Dovecot may
 * legitimately hold a failed login for 2-15 s, its auth penalty) bounds the
 * stall if a broken server keeps the connection open after LOGOUT anyway.
 *
 * libcurl keeps its own copies of the user and password in the easy handle;
 * they go when the handle is cleaned up at the end of the probe.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "imap/imap_parse.h"
#include "lib/log.h"
#include "lib/util.h"

struct imap_be {
	const struct auth_conf *conf;
	char *url; /* scheme://authority/ : no mailbox */
};

/*
 * A probe's state: whether the server refused the login for now, and the
 * parser its lines go through (made at the first line; NULL after one it
 * could not read: nothing more is looked at).
 */
struct imap_probe {
	bool transient;
	bool bad;
	struct imap_parser *parser;
};

/* One response of the server: a tagged NO with a "not now" code is transient. */
static int
on_server_response(const struct imap_response *r, void *arg)
{
	struct imap_probe *p = arg;

	if (r->kind == IMAP_RESP_TAGGED && r->status == IMAP_NO && imap_code_transient(r->code))
		p->transient = true;
	return 0;
}

/*
 * libcurl's debug callback. CURLINFO_HEADER_IN is the server's response
 * lines, one per call: each goes through the IMAP client's own response
 * parser (imap_parse.c, fuzzed by fuzz_imap), so no hand-written reading of
 * the server's bytes is done here. Everything else (what we sent: the
 * credentials) is ignored.
 */
static int
server_line(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	static const struct imap_parser_cbs cbs = {.on_response = on_server_response};
	struct imap_probe *p = arg;
	const char *err;

	(void)easy;
	if (type != CURLINFO_HEADER_IN || p->bad)
		return 0;
	if (p->parser == NULL)
		p->parser = imap_parser_new(&cbs, p);
	if (imap_parser_feed(p->parser, data, size, &err) < 0) {
		log_debug("auth imap: a server line abqd cannot read: %s", err);
		p->bad = true;
	}
	return 0;
}

/* Untagged lines of LOGOUT's answer ("* BYE"): discard. */
static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* Keep "imap[s]://authority/" of the method, whatever path it had. */
static void *
imap_init(const struct auth_conf *conf, const char **errstr)
{
	const char *m = conf->method;
	const char *auth = strstr(m, "://") + 3;
	size_t alen = strcspn(auth, "/?#");
	struct imap_be *be;

	if (alen == 0) {
		*errstr = "auth method imap:// needs a host";
		return NULL;
	}
	be = xcalloc(1, sizeof(*be));
	be->conf = conf;
	be->url = xasprintf("%.*s%.*s/", (int)(auth - m), m, (int)alen, auth);
	return be;
}

/* An IMAP login as req->user with req->password, then LOGOUT. */
static CURL *
imap_setup(void *bep, const struct auth_probe_req *req, void **state_r, const char **errstr)
{
	struct imap_be *be = bep;
	struct imap_probe *p;
	CURL *easy;

	*state_r = NULL;
	if ((easy = auth_easy_new(be->conf)) == NULL) {
		*errstr = "curl_easy_init failed";
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	*state_r = p;
	curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, server_line);
	curl_easy_setopt(easy, CURLOPT_DEBUGDATA, p);
	curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(easy, CURLOPT_URL, be->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "imap,imaps");
	curl_easy_setopt(easy, CURLOPT_USERNAME, req->user);
	curl_easy_setopt(easy, CURLOPT_PASSWORD, req->password);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "LOGOUT");
	curl_easy_setopt(easy, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	                 (long)(be->conf->request_timeout_ms + 999) / 1000);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	/* One login per probe: a reused, already logged-in connection proves nothing. */
	curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	return easy;
}

/* Logged in: good; login refused: wrong (unless "not now"); anything else: unavailable. */
static enum auth_result
imap_result(void *bep, CURL *easy, void *state, CURLcode rc)
{
	const struct imap_probe *p = state;

	(void)bep;
	(void)easy;
	if (rc == CURLE_OK)
		return AUTH_OK;
	if (rc == CURLE_LOGIN_DENIED && (p == NULL || !p->transient))
		return AUTH_DENIED;
	return AUTH_UNAVAILABLE;
}

/* Free the easy handle (and libcurl's copy of the password with it). */
static void
imap_cleanup(void *bep, CURL *easy, void *state)
{
	(void)bep;
	struct imap_probe *p = state;

	if (easy != NULL) {
		curl_easy_cleanup(easy);
	}
	if (p != NULL)
		imap_parser_free(p->parser);
	free(p);
}

/* Free the backend. */
static void
imap_free(void *bep)
{
	struct imap_be *be = bep;

	free(be->url);
	free(be);
}

const struct auth_backend_ops auth_imap_ops = {
    .name = "imap",
    .init = imap_init,
    .setup = imap_setup,
    .result = imap_result,
    .cleanup = imap_cleanup,
    .free = imap_free,
};
