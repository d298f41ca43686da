/*
 * admins.c: the administrators of the console and the JSON API (admins.h).
 *
 * Passwords are hashed with yescrypt through libxcrypt (crypt_ra with a "$y$"
 * setting from crypt_gensalt_ra, at libxcrypt's default cost): slow on purpose,
 * so the hash is computed before a write transaction is opened, never while
 * holding the store's write lock. Hashes are compared with CRYPTO_memcmp so
 * that the comparison's time does not depend on where they differ.
 *
 * A token is "abq_" and the base64url form (no padding) of 32 bytes from
 * RAND_bytes; the store keeps its SHA-256 in lower-case hex. A lookup by that
 * hash reveals nothing useful through its timing: an attacker would need to
 * know a preimage.
 */
#include <crypt.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admins.h"
#include "lib/b64.h"
#include "lib/util.h"

#define PASSWORD_MAX 1024 /* longer input is refused, not hashed */
#define LABEL_MAX    64
#define TOKEN_BYTES  32
#define TOKEN_PREFIX "abq_"
#define TOKEN_LEN    (4 + 43) /* prefix and 32 bytes in unpadded base64url */
/* A token's last_used is written at most this often, not at every request. */
#define TOUCH_EVERY 60

/*
 * The hash an unknown name is checked against, so that verifying an unknown
 * name costs one yescrypt computation like a known one (same cost parameters,
 * "j9T": libxcrypt's default). No password is known to match it.
 */
static const char dummy_hash[] =
    "$y$j9T$mIVqsW1VzVquva1CkQs4k0$8Xh77IXyxJwohT/XYh6ypVBR8u7DWxxlJGB8PA7YEfA";

/* A store failure as the caller's message; returns -1. */
static int
store_fail(char **errmsg_r, const char *errstr)
{
	*errmsg_r = xasprintf("store: %s", errstr ? errstr : "unknown error");
	return -1;
}

/* Roll back and fail with the store's message. */
static int
tx_fail(struct abq_store *s, char **errmsg_r, const char *errstr)
{
	int ret = store_fail(errmsg_r, errstr);

	abq_store_rollback(s);
	return ret;
}

/* A refusal (1) with a message. */
static int __attribute__((format(printf, 2, 3))) refuse(char **errmsg_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*errmsg_r = xvasprintf(fmt, ap);
	va_end(ap);
	return 1;
}

int
abq_admin_name_check(const char *name, char **errmsg_r)
{
	size_t n, i;

	n = name ? strlen(name) : 0;
	if (n == 0 || n > ABQ_ADMIN_NAME_MAX)
		return refuse(errmsg_r, "bad administrator name: it must be 1 to %d characters",
		              ABQ_ADMIN_NAME_MAX);
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '@' || c == '-'))
			return refuse(errmsg_r,
			              "bad administrator name: use lower-case letters, digits and "
			              "'.', '_', '@', '-' only");
	}
	/* A leading '-' would read as an option on the abqctl command line. */
	if (name[0] == '-' || name[0] == '.')
		return refuse(errmsg_r,
		              "bad administrator name: it must begin with a letter or a digit");
	return 0;
}

/* 0 when password is acceptable, else 1 with a message. */
static int
password_check(const char *password, char **errmsg_r)
{
	size_t n = password ? strlen(password) : 0;

	if (n < ABQ_ADMIN_PASSWORD_MIN)
		return refuse(errmsg_r, "password too short: at least %d characters",
		              ABQ_ADMIN_PASSWORD_MIN);
	if (n > PASSWORD_MAX)
		return refuse(errmsg_r, "password too long: at most %d characters", PASSWORD_MAX);
	return 0;
}

/*
 * crypt_ra(password, setting) into a new string (NULL on failure: libxcrypt
 * returns a string starting with '*' for a setting it cannot use). The work
 * area, which holds derived key material, is wiped before it is freed.
 */
static char *
hash_with(const char *password, const char *setting)
{
	void *data = NULL;
	int size = 0;
	const char *h = crypt_ra(password, setting, &data, &size);
	char *out = NULL;

	if (h != NULL && h[0] != '*')
		out = xstrdup(h);
	if (data != NULL) {
		OPENSSL_cleanse(data, (size_t)size);
		free(data);
	}
	return out;
}

/* A new yescrypt hash of password, or NULL with *errmsg_r. */
static char *
hash_new(const char *password, char **errmsg_r)
{
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	char *h;

	if (setting == NULL) {
		*errmsg_r = xasprintf("cannot make a password salt (libxcrypt: no yescrypt?)");
		return NULL;
	}
	h = hash_with(password, setting);
	free(setting);
	if (h == NULL)
		*errmsg_r = xasprintf("cannot hash the password (libxcrypt)");
	return h;
}

/* Equal hashes, compared in time independent of where they differ. */
static bool
hash_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* Append a history row about administrator name. */
static int
history(struct abq_store *s, const char *name, const char *who, int64_t now, const char *value,
        const char **errstr_r)
{
	struct abq_history h = {.at = now,
	                        .who = (char *)(who ? who : "abqd"),
	                        .what = "admin",
	                        .subject = (char *)name,
	                        .new_value = (char *)value};

	return abq_store_history_add(s, &h, errstr_r);
}

/* Set or replace the password of name: shared by add (create) and passwd. */
static int
set_password(struct abq_store *s, const char *name, const char *password, const char *who,
             int64_t now, bool create, char **errmsg_r)
{
	struct abq_admin a = {0};
	const char *err = NULL;
	char *hash;
	int r;

	*errmsg_r = NULL;
	if (abq_admin_name_check(name, errmsg_r) != 0 || password_check(password, errmsg_r) != 0)
		return 1;
	/* Slow: done before the write lock is taken. */
	if ((hash = hash_new(password, errmsg_r)) == NULL)
		return -1;
	if (abq_store_begin(s, &err) < 0) {
		free(hash);
		return store_fail(errmsg_r, err);
	}
	r = abq_store_admin_get(s, name, &a, &err);
	if (r < 0)
		goto fail;
	if (create && r == 1) {
		abq_store_rollback(s);
		abq_admin_clear(&a);
		free(hash);
		return refuse(errmsg_r, "administrator '%s' exists", name);
	}
	if (!create && r == 0) {
		abq_store_rollback(s);
		free(hash);
		return refuse(errmsg_r, "no administrator '%s'", name);
	}
	if (create) {
		a.name = xstrdup(name);
		a.created_by = xstrdup(who ? who : "abqd");
		a.created_at = now;
	}
	free(a.password_hash);
	a.password_hash = hash;
	hash = NULL;
	a.password_at = now;
	if (abq_store_admin_put(s, &a, &err) < 0 ||
	    history(s, name, who, now, create ? "added" : "password changed", &err) < 0 ||
	    abq_store_commit(s, &err) < 0)
		goto fail;
	abq_admin_clear(&a);
	return 0;
fail:
	abq_admin_clear(&a);
	free(hash);
	return tx_fail(s, errmsg_r, err);
}

int
abq_admin_add(struct abq_store *s, const char *name, const char *password, const char *who,
              int64_t now, char **errmsg_r)
{
	return set_password(s, name, password, who, now, true, errmsg_r);
}

int
abq_admin_passwd(struct abq_store *s, const char *name, const char *password, const char *who,
                 int64_t now, char **errmsg_r)
{
	return set_password(s, name, password, who, now, false, errmsg_r);
}

int
abq_admin_delete(struct abq_store *s, const char *name, const char *who, int64_t now,
                 char **errmsg_r)
{
	const char *err = NULL;
	size_t tokens = 0, n = 0;
	char *value;

	*errmsg_r = NULL;
	if (abq_admin_name_check(name, errmsg_r) != 0)
		return 1;
	if (abq_store_begin(s, &err) < 0)
		return store_fail(errmsg_r, err);
	if (abq_store_token_count(s, name, &tokens, &err) < 0 ||
	    abq_store_admin_delete(s, name, &n, &err) < 0)
		return tx_fail(s, errmsg_r, err);
	if (n == 0) {
		abq_store_rollback(s);
		return refuse(errmsg_r, "no administrator '%s'", name);
	}
	value = tokens ? xasprintf("deleted (tokens revoked: %zu)", tokens) : xstrdup("deleted");
	if (history(s, name, who, now, value, &err) < 0 || abq_store_commit(s, &err) < 0) {
		free(value);
		return tx_fail(s, errmsg_r, err);
	}
	free(value);
	return 0;
}

struct list_ctx {
	struct abq_store *s;
	abq_admin_info_cb *cb;
	void *arg;
	const char *err;
	bool failed;
};

/* One administrator of the list, with the number of their tokens. */
static int
list_one(void *arg, const struct abq_admin *a)
{
	struct list_ctx *c = arg;
	struct abq_admin_info info = {.name = a->name,
	                              .created_by = a->created_by,
	                              .created_at = a->created_at,
	                              .password_at = a->password_at,
	                              .last_login = a->last_login};

	if (abq_store_token_count(c->s, a->name, &info.tokens, &c->err) < 0) {
		c->failed = true;
		return -1;
	}
	return c->cb(c->arg, &info);
}

int
abq_admin_list(struct abq_store *s, abq_admin_info_cb *cb, void *arg, char **errmsg_r)
{
	struct list_ctx c = {.s = s, .cb = cb, .arg = arg};
	int r;

	*errmsg_r = NULL;
	r = abq_store_admin_iter(s, list_one, &c, &c.err);
	if (r < 0 || c.failed)
		return store_fail(errmsg_r, c.err);
	return r;
}

int
abq_admin_verify(struct abq_store *s, const char *name, const char *password, int64_t now,
                 char **errmsg_r)
{
	struct abq_admin a = {0};
	const char *err = NULL;
	char *h;
	bool known = false, ok;
	int r = 0;

	*errmsg_r = NULL;
	if (password == NULL)
		password = "";
	/* A name that cannot exist is simply unknown: the same work follows. */
	if (name != NULL && abq_admin_name_check(name, errmsg_r) == 0) {
		if ((r = abq_store_admin_get(s, name, &a, &err)) < 0)
			return store_fail(errmsg_r, err);
		known = r == 1;
	}
	free(*errmsg_r);
	*errmsg_r = NULL;
	/* Overlong input is hashed as an empty password, so it is wrong but costs the same. */
	h = hash_with(strlen(password) <= PASSWORD_MAX ? password : "",
	              known ? a.password_hash : dummy_hash);
	ok = known && h != NULL && strlen(password) <= PASSWORD_MAX &&
	     hash_equal(h, a.password_hash);
	free(h);
	if (!ok) {
		abq_admin_clear(&a);
		*errmsg_r = xstrdup("wrong name or password");
		return 1;
	}
	/*
	 * Record the login under the write lock, on the record as it is now: a
	 * password changed meanwhile is not overwritten with the old hash.
	 */
	if (abq_store_begin(s, &err) < 0) {
		abq_admin_clear(&a);
		return store_fail(errmsg_r, err);
	}
	{
		struct abq_admin cur = {0};

		r = abq_store_admin_get(s, name, &cur, &err);
		if (r == 1 && hash_equal(cur.password_hash, a.password_hash)) {
			cur.last_login = now;
			if (abq_store_admin_put(s, &cur, &err) < 0)
				r = -1;
		} else if (r == 1 || r == 0) {
			/* Changed or deleted in the meantime: the old password is no longer good.
			 */
			abq_store_rollback(s);
			abq_admin_clear(&cur);
			abq_admin_clear(&a);
			*errmsg_r = xstrdup("wrong name or password");
			return 1;
		}
		abq_admin_clear(&cur);
	}
	abq_admin_clear(&a);
	if (r < 0 || abq_store_commit(s, &err) < 0)
		return tx_fail(s, errmsg_r, err);
	return 0;
}

/* 0 when label is usable (NULL is), else 1: printable ASCII, 1-64 characters. */
static int
label_check(const char *label, char **errmsg_r)
{
	size_t n, i;

	if (label == NULL)
		return 0;
	n = strlen(label);
	if (n == 0 || n > LABEL_MAX)
		return refuse(errmsg_r, "bad token label: it must be 1 to %d characters",
		              LABEL_MAX);
	for (i = 0; i < n; i++)
		if ((unsigned char)label[i] <= 0x20 || (unsigned char)label[i] >= 0x7f)
			return refuse(errmsg_r, "bad token label: use printable ASCII characters "
			                        "without spaces");
	return 0;
}

/* SHA-256 of s in lower-case hex, into out (65 bytes). */
static void
sha256_hex(const char *s, char out[SHA256_DIGEST_LENGTH * 2 + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256((const unsigned char *)s, strlen(s), md);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * SHA256_DIGEST_LENGTH] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

int
abq_admin_token_new(struct abq_store *s, const char *name, const char *label, const char *who,
                    int64_t now, char **token_r, char **errmsg_r)
{
	unsigned char raw[TOKEN_BYTES];
	char enc[TOKEN_BYTES / 3 * 4 + 8];
	char hash[SHA256_DIGEST_LENGTH * 2 + 1];
	struct abq_admin a = {0};
	struct abq_token t = {0};
	const char *err = NULL;
	char *token, *value;
	int r;

	*errmsg_r = NULL;
	*token_r = NULL;
	if (abq_admin_name_check(name, errmsg_r) != 0 || label_check(label, errmsg_r) != 0)
		return 1;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		*errmsg_r = xstrdup("cannot make a token: no random bytes (OpenSSL RAND_bytes)");
		return -1;
	}
	memcpy(enc, TOKEN_PREFIX, 4);
	b64url_encode(raw, sizeof(raw), enc + 4);
	OPENSSL_cleanse(raw, sizeof(raw));
	token = xstrdup(enc);
	OPENSSL_cleanse(enc, sizeof(enc));
	sha256_hex(token, hash);

	if (abq_store_begin(s, &err) < 0)
		goto store_failed;
	if ((r = abq_store_admin_get(s, name, &a, &err)) < 0)
		goto tx_failed;
	abq_admin_clear(&a);
	if (r == 0) {
		abq_store_rollback(s);
		OPENSSL_cleanse(token, strlen(token));
		free(token);
		return refuse(errmsg_r, "no administrator '%s'", name);
	}
	t.admin = (char *)name;
	t.label = (char *)label;
	t.hash = hash;
	t.created_by = (char *)(who ? who : "abqd");
	t.created_at = now;
	value = label ? xasprintf("token added (%s)", label) : xstrdup("token added");
	r = abq_store_token_add(s, &t, &err) < 0 || history(s, name, who, now, value, &err) < 0 ||
	    abq_store_commit(s, &err) < 0;
	free(value);
	if (r)
		goto tx_failed;
	*token_r = token;
	return 0;
tx_failed:
	abq_store_rollback(s);
store_failed:
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	return store_fail(errmsg_r, err);
}

/* Whether token has the shape of one of ours ("abq_" and 43 base64url characters). */
static bool
token_shape_ok(const char *token)
{
	size_t i;

	if (strlen(token) != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, 4) != 0)
		return false;
	for (i = 4; i < TOKEN_LEN; i++) {
		char c = token[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

int
abq_admin_token_check(struct abq_store *s, const char *token, int64_t now, char **name_r,
                      char **errmsg_r)
{
	char hash[SHA256_DIGEST_LENGTH * 2 + 1];
	struct abq_token t = {0};
	const char *err = NULL;
	int r;

	*errmsg_r = NULL;
	*name_r = NULL;
	if (token == NULL || !token_shape_ok(token)) {
		*errmsg_r = xstrdup("not a valid token");
		return 1;
	}
	sha256_hex(token, hash);
	if ((r = abq_store_token_find(s, hash, &t, &err)) < 0)
		return store_fail(errmsg_r, err);
	if (r == 0 || !hash_equal(t.hash, hash)) {
		abq_token_clear(&t);
		*errmsg_r = xstrdup("not a valid token");
		return 1;
	}
	/* Not at every request: a busy script would otherwise write at every call. */
	if (now - t.last_used >= TOUCH_EVERY && abq_store_token_touch(s, t.id, now, &err) < 0) {
		abq_token_clear(&t);
		return store_fail(errmsg_r, err);
	}
	*name_r = t.admin;
	t.admin = NULL;
	abq_token_clear(&t);
	return 0;
}

int
abq_admin_token_revoke(struct abq_store *s, const char *name, const char *label, const char *who,
                       int64_t now, size_t *count_r, char **errmsg_r)
{
	struct abq_admin a = {0};
	const char *err = NULL;
	size_t n = 0;
	char *value;
	int r;

	*errmsg_r = NULL;
	if (count_r != NULL)
		*count_r = 0;
	if (abq_admin_name_check(name, errmsg_r) != 0 || label_check(label, errmsg_r) != 0)
		return 1;
	if (abq_store_begin(s, &err) < 0)
		return store_fail(errmsg_r, err);
	if ((r = abq_store_admin_get(s, name, &a, &err)) < 0)
		return tx_fail(s, errmsg_r, err);
	abq_admin_clear(&a);
	if (r == 0) {
		abq_store_rollback(s);
		return refuse(errmsg_r, "no administrator '%s'", name);
	}
	if (abq_store_token_delete(s, name, label, &n, &err) < 0)
		return tx_fail(s, errmsg_r, err);
	if (n == 0) {
		/* Nothing changed: nothing to record. */
		abq_store_rollback(s);
		return 0;
	}
	value = label ? xasprintf("tokens revoked (%zu, label %s)", n, label)
	              : xasprintf("tokens revoked (%zu)", n);
	r = history(s, name, who, now, value, &err) < 0 || abq_store_commit(s, &err) < 0;
	free(value);
	if (r)
		return tx_fail(s, errmsg_r, err);
	if (count_r != NULL)
		*count_r = n;
	return 0;
}
