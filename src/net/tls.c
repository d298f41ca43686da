/*
 * tls.c: building the server SSL_CTX and swapping it on reload.
 *
 * SSL_MODE_RELEASE_BUFFERS lets OpenSSL free its 16 KiB+ read and write
 * buffers whenever they are empty, which is nearly always for a held long
 * poll: without it every idle TLS connection would cost ~34 KiB.
 */
#include "net/tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include "lib/util.h"

struct tls_ctx {
	SSL_CTX *ctx;
	char *cert_file;
	char *key_file;
};

/* A fresh server SSL_CTX from the two files, or NULL with *errstr. */
static SSL_CTX *
build_ctx(const char *cert_file, const char *key_file, const char **errstr)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		*errstr = "SSL_CTX_new failed";
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*errstr = "cannot load TLS certificate";
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*errstr = "cannot load TLS key";
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*errstr = "TLS key does not match the certificate";
		goto fail;
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* Load the files once and remember their paths for reloads. */
struct tls_ctx *
tls_ctx_new(const char *cert_file, const char *key_file, const char **errstr)
{
	struct tls_ctx *t;
	SSL_CTX *ctx = build_ctx(cert_file, key_file, errstr);

	if (ctx == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->cert_file = xstrdup(cert_file);
	t->key_file = xstrdup(key_file);
	return t;
}

/* Build a new context; only on success drop our reference on the old one. */
int
tls_reload(struct tls_ctx *t, const char **errstr)
{
	SSL_CTX *ctx = build_ctx(t->cert_file, t->key_file, errstr);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

/* The context for the next accepted connection. */
SSL_CTX *
tls_ctx_get(const struct tls_ctx *t)
{
	return t->ctx;
}

/* Drop our reference; SSL objects still alive keep the context alive. */
void
tls_ctx_free(struct tls_ctx **tp)
{
	struct tls_ctx *t = *tp;

	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cert_file);
	free(t->key_file);
	free(t);
	*tp = NULL;
}

/* A client SSL_CTX (tls.h). */
SSL_CTX *
tls_client_ctx_new(const char *ca_file, const char **errstr)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		*errstr = "cannot create a TLS context";
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
	                    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		*errstr =
		    ca_file != NULL ? "cannot load the CA file" : "cannot load the system CA store";
		return NULL;
	}
	return ctx;
}

/* An SSL for one connection, its peer's name or address to be checked (tls.h). */
SSL *
tls_client_ssl(SSL_CTX *ctx, const char *host, bool host_is_ip)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		fatalx("out of memory in OpenSSL");
	if (host_is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	} else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
	}
	return ssl;
}

/* OpenSSL's reason for a failed handshake (tls.h). */
void
tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

	buf[0] = '\0';
	if (v != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s",
		         X509_verify_cert_error_string(v));
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		return;
	}
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (buf[0] == '\0')
			ERR_error_string_n(e, buf, len);
}
