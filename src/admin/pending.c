/*
 * pending.c: until the administrators' accounts (core/admins.c) are in the
 * tree, the admin side builds against these: no password and no token is
 * accepted. CMake defines ABQ_HAVE_ADMINS once admins.c exists, and this file
 * compiles to nothing.
 */
#ifndef ABQ_HAVE_ADMINS
#include <stdlib.h>

#include "core/admins.h"
#include "lib/util.h"

int
abq_admin_verify(struct abq_store *s, const char *name, const char *password, int64_t now,
                 char **errmsg_r)
{
	(void)s;
	(void)name;
	(void)password;
	(void)now;
	*errmsg_r = xstrdup("no administrator accounts in this build");
	return 1;
}

int
abq_admin_token_check(struct abq_store *s, const char *token, int64_t now, char **name_r,
                      char **errmsg_r)
{
	(void)s;
	(void)token;
	(void)now;
	*name_r = NULL;
	*errmsg_r = xstrdup("no administrator tokens in this build");
	return 1;
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int abq_admin_pending_unused;
#endif
