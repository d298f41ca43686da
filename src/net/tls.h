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

struct tls_ctx;

/* Load cert (PEM chain) and key. Returns NULL with *errstr on failure. */
struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file, const char **errstr);
/* Rebuild from the same files and swap for new connections. 0 or -1. */
int tls_reload(struct tls_ctx *t, const char **errstr);
/* The SSL_CTX new connections should use (borrowed reference). */
SSL_CTX *tls_ctx_get(const struct tls_ctx *t);
/* Free and set *tp to NULL; live connections keep their SSL_CTX. */
void tls_ctx_free(struct tls_ctx **tp);

#endif
