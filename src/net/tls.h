/*
 * tls.h: the server's TLS context, reloadable for SIGHUP.
 *
 * A tls_ctx holds the current SSL_CTX built from a certificate chain file and
 * a key file. tls_reload() builds a new SSL_CTX from the same paths and swaps
 * it in; connections accepted afterwards use the new one, while existing
 * connections keep theirs (each SSL holds a reference on the SSL_CTX it was
 * made from). On failure the old context stays in service.
 *
 * Not thread-safe: call everything from the event loop's thread.
 */
#ifndef ABQ_NET_TLS_H
#define ABQ_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

struct tls_ctx;

/* Load cert (PEM chain) and key. Returns NULL with *errstr on failure. */
struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file, const char **errstr);
/* Rebuild from the same files and swap for new connections. 0 or -1. */
int tls_reload(struct tls_ctx *t, const char **errstr);
/* The SSL_CTX new connections should use (borrowed reference). */
SSL_CTX *tls_ctx_get(const struct tls_ctx *t);
/* Free and set *tp to NULL; live connections keep their SSL_CTX. */
void tls_ctx_free(struct tls_ctx **tp);

/* ---- the client side: the upstream and IMAP clients ---- */

struct bufferevent;

/*
 * A client SSL_CTX: TLS 1.2 or later, the peer's certificate verified
 * against ca_file (PEM) or, when NULL, the system store; OpenSSL's buffers
 * released when empty. NULL with *errstr when the CA file or store cannot be
 * loaded ("cannot load the CA file"). Made once per client configuration and
 * shared by its connections: loading the system store costs milliseconds.
 */
SSL_CTX *tls_client_ctx_new(const char *ca_file, const char **errstr);
/*
 * An SSL for one connection to host: SNI and the host-name check, or the
 * IP address check when host_is_ip. Aborts on allocation failure.
 */
SSL *tls_client_ssl(SSL_CTX *ctx, const char *host, bool host_is_ip);
/*
 * Why the TLS handshake on bev failed, into buf: "certificate verify
 * failed: <reason>", or OpenSSL's first queued error; "" when OpenSSL has
 * none (the caller says what it knows). OpenSSL's queue is emptied.
 */
void tls_bev_error(struct bufferevent *bev, char *buf, size_t len);

#endif
