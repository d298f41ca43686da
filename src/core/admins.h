/*
 * admins.h: the administrators of the console and the JSON API (store schema
 * version 4).
 *
 * An administrator has a name, a password kept as a yescrypt hash (libxcrypt's
 * crypt_ra with a "$y$" setting from crypt_gensalt_ra: the hash Debian uses
 * for /etc/shadow, slow on purpose), and any number of bearer tokens for
 * scripts. A token is "abq_" and 43 base64url characters (32 random bytes);
 * the store keeps only its SHA-256, so a stolen store yields no token.
 *
 * Every change is recorded in history (what "admin", subject the name), with
 * who made it. Passwords and tokens never reach history or a log.
 *
 * All functions return 0 on success, 1 when refused (*errmsg_r says why: a bad
 * name, a short password, no such administrator), -1 on a store failure
 * (*errmsg_r). *errmsg_r is a new string the caller frees.
 */
#ifndef ABQ_ADMINS_H
#define ABQ_ADMINS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define ABQ_ADMIN_NAME_MAX     64
#define ABQ_ADMIN_PASSWORD_MIN 8

/* 0 when name is a valid administrator name ([a-z0-9._@-], 1-64, lower case), else 1 with
 * *errmsg_r. */
int abq_admin_name_check(const char *name, char **errmsg_r);

/* Add an administrator (1 when the name exists). */
int abq_admin_add(struct abq_store *s, const char *name, const char *password, const char *who,
                  int64_t now, char **errmsg_r);
/* Set a new password (1 when there is no such administrator). */
int abq_admin_passwd(struct abq_store *s, const char *name, const char *password, const char *who,
                     int64_t now, char **errmsg_r);
/* Remove an administrator and every token of theirs (1 when there is none). */
int abq_admin_delete(struct abq_store *s, const char *name, const char *who, int64_t now,
                     char **errmsg_r);

struct abq_admin_info {
	char *name;
	char *created_by;
	int64_t created_at;
	int64_t password_at; /* when the password was last set */
	int64_t last_login;  /* 0: never */
	size_t tokens;
};
typedef int abq_admin_info_cb(void *arg, const struct abq_admin_info *a);
/* Every administrator by name. */
int abq_admin_list(struct abq_store *s, abq_admin_info_cb *cb, void *arg, char **errmsg_r);

/*
 * Check a password: 0 when right (and last_login is set to now), 1 when the
 * name is unknown or the password wrong (the same work is done either way, so
 * timing does not tell which), -1 on a store failure.
 */
int abq_admin_verify(struct abq_store *s, const char *name, const char *password, int64_t now,
                     char **errmsg_r);

/* A new token for name, labelled (label may be NULL); *token_r gets it (free it). */
int abq_admin_token_new(struct abq_store *s, const char *name, const char *label, const char *who,
                        int64_t now, char **token_r, char **errmsg_r);
/*
 * Check a bearer token: 0 and *name_r (new string) when it belongs to an
 * administrator, 1 when not, -1 on a store failure.
 */
int abq_admin_token_check(struct abq_store *s, const char *token, int64_t now, char **name_r,
                          char **errmsg_r);
/* Remove name's tokens with that label (every token of name when label is NULL); *count_r how many.
 */
int abq_admin_token_revoke(struct abq_store *s, const char *name, const char *label,
                           const char *who, int64_t now, size_t *count_r, char **errmsg_r);

#endif
