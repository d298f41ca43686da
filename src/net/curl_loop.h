/*
 * curl_loop.h: libcurl's multi interface driven by a libevent loop.
 *
 * One curl_loop owns one CURLM. libcurl tells us which sockets it wants
 * watched (CURLMOPT_SOCKETFUNCTION) and when it wants a timeout
 * (CURLMOPT_TIMERFUNCTION); we turn both into libevent events and call
 * curl_multi_socket_action when they fire, so transfers never block the
 * loop. A caller prepares an easy handle as it likes (but leaves
 * CURLOPT_PRIVATE alone: the loop uses it), hands it over with
 * curl_loop_add, and gets done(arg, easy, result) once, from the loop, when
 * the transfer ends. curl_loop_remove takes a transfer back before that; its
 * done callback is then never called. The easy handle stays the caller's to
 * clean up in both cases. Connections are reused across transfers of one
 * loop (the multi handle's pool).
 *
 * Used by the auth probes (src/auth: HTTP OPTIONS, IMAP LOGIN) and by the
 * notice sender (src/notice: SMTP), each on its own loop. Everything runs on
 * the loop's thread; nothing here is thread-safe.
 */
#ifndef ABQ_NET_CURL_LOOP_H
#define ABQ_NET_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;
struct curl_loop;

typedef void curl_loop_done_cb(void *arg, CURL *easy, CURLcode result);

/*
 * A new loop on base. Calls curl_global_init the first time (do that before
 * starting threads). Returns NULL with *errstr set on failure.
 */
struct curl_loop *curl_loop_new(struct event_base *base, const char **errstr);
/* Abort every transfer still running (no done callbacks), free *cl, NULL it. */
void curl_loop_free(struct curl_loop **cl);
/* Start easy; done is called once when it ends. Returns 0, or -1 with *errstr. */
int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_cb *done, void *arg,
                  const char **errstr);
/* Take a running transfer back without calling its done callback. */
void curl_loop_remove(struct curl_loop *cl, CURL *easy);
/* Transfers currently running. */
unsigned curl_loop_running(const struct curl_loop *cl);

#endif
