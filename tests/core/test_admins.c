/*
 * test_admins.c: administrators and their tokens (src/core/admins.c) on a real
 * SQLite store.
 *
 * Each test opens a fresh store in a temporary folder and drives the functions
 * abqctl and the admin API call, then checks what an administrator would see:
 * who can log in with which password or token, the list, and the history rows
 * (which must never hold a password or a token).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/admins.h"
#include "lib/util.h"

#define NOW 1800000000

struct fixture {
	char dir[64];
	struct abq_store *s;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *err = NULL;
	char *url;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/abq-admins-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	url = xasprintf("sqlite:%s/abqd.db", fx->dir);
	fx->s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);
	free(url);
	if (fx->s == NULL)
		fail_msg("open: %s", err);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char *cmd;

	unsetenv("ABQ_STORE_FAULT");
	abq_store_close(&fx->s);
	cmd = xasprintf("rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(cmd);
	free(fx);
	return 0;
}

#define FX(state) ((struct fixture *)*(state))

/*
 * Assert that call (which fills msg) returned want and that its message
 * contains needle (NULL: not checked); frees the message. A macro, so that msg
 * is read after the call.
 */
#define expect(call, want, msg, needle)                                                            \
	do {                                                                                       \
		(msg) = NULL;                                                                      \
		int rc_ = (call);                                                                  \
		expect_msg(#call, rc_, (want), (msg), (needle));                                   \
		(msg) = NULL;                                                                      \
	} while (0)

static void
expect_msg(const char *what, int rc, int want, char *msg, const char *needle)
{
	if (rc != want)
		fail_msg("%s returned %d, wanted %d: %s", what, rc, want,
		         msg ? msg : "(no message)");
	if (needle != NULL) {
		if (msg == NULL)
			fail_msg("%s: no message", what);
		if (strstr(msg, needle) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", what, msg, needle);
	}
	free(msg);
}

static void
add(struct abq_store *s, const char *name, const char *password)
{
	char *msg = NULL;

	expect(abq_admin_add(s, name, password, "root", NOW, &msg), 0, msg, NULL);
}

static int
verify(struct abq_store *s, const char *name, const char *password, int64_t now)
{
	char *msg = NULL;
	int r = abq_admin_verify(s, name, password, now, &msg);

	if (r == 1)
		assert_string_equal(msg, "wrong name or password");
	free(msg);
	return r;
}

/* The list as "name:createdBy:passwordAt:lastLogin:tokens,...". */
struct list {
	char buf[4096];
};

static int
list_cb(void *arg, const struct abq_admin_info *a)
{
	struct list *l = arg;
	size_t n = strlen(l->buf);

	snprintf(l->buf + n, sizeof(l->buf) - n, "%s%s:%s:%lld:%lld:%zu", n ? "," : "", a->name,
	         a->created_by, (long long)a->password_at, (long long)a->last_login, a->tokens);
	return 0;
}

static const char *
list_of(struct abq_store *s)
{
	static struct list l;
	char *msg = NULL;

	memset(&l, 0, sizeof(l));
	expect(abq_admin_list(s, list_cb, &l, &msg), 0, msg, NULL);
	return l.buf;
}

/* The admin history as "who subject new_value;..." */
static int
hist_cb(void *arg, const struct abq_history *h)
{
	struct list *l = arg;
	size_t n = strlen(l->buf);

	if (strcmp(h->what, "admin") != 0)
		return 0;
	snprintf(l->buf + n, sizeof(l->buf) - n, "%s%s %s %s", n ? ";" : "", h->who, h->subject,
	         h->new_value ? h->new_value : "-");
	assert_null(h->old_value);
	return 0;
}

static const char *
history_of(struct abq_store *s)
{
	static struct list l;
	const char *err = NULL;

	memset(&l, 0, sizeof(l));
	if (abq_store_history_iter(s, NULL, hist_cb, &l, &err) != 0)
		fail_msg("history: %s", err);
	return l.buf;
}

static void
test_name_check(void **state)
{
	const char *good[] = {"root", "a", "zoe@example.com", "ops-team_2.x", "9"};
	const char *bad[] = {"",  "Root",  "a b", "-x",   ".x",  "a/b",
	                     "é", "tab\t", "a:b", "a\"b", "a\nb"};
	char name[ABQ_ADMIN_NAME_MAX + 2];
	char *msg = NULL;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect(abq_admin_name_check(good[i], &msg), 0, msg, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg = NULL;
		expect(abq_admin_name_check(bad[i], &msg), 1, msg, "bad administrator name");
	}
	memset(name, 'a', sizeof(name));
	name[ABQ_ADMIN_NAME_MAX] = '\0';
	expect(abq_admin_name_check(name, &msg), 0, msg, NULL);
	name[ABQ_ADMIN_NAME_MAX] = 'a';
	name[ABQ_ADMIN_NAME_MAX + 1] = '\0';
	expect(abq_admin_name_check(name, &msg), 1, msg, "1 to 64");
	expect(abq_admin_name_check(NULL, &msg), 1, msg, "bad administrator name");
}

/* Add, then log in with the right password, a wrong one, an unknown name. */
static void
test_add_verify(void **state)
{
	struct abq_store *s = FX(state)->s;
	struct abq_admin a = {0};
	const char *err = NULL;
	char *msg = NULL;

	add(s, "alice", "correct horse");
	assert_string_equal(list_of(s), "alice:root:1800000000:0:0");
	/* The store holds a yescrypt hash, not the password. */
	assert_int_equal(abq_store_admin_get(s, "alice", &a, &err), 1);
	assert_true(strncmp(a.password_hash, "$y$", 3) == 0);
	assert_null(strstr(a.password_hash, "correct horse"));
	abq_admin_clear(&a);

	assert_int_equal(verify(s, "alice", "correct horse", NOW + 5), 0);
	assert_string_equal(list_of(s), "alice:root:1800000000:1800000005:0");
	assert_int_equal(verify(s, "alice", "correct hors", NOW + 6), 1);
	assert_int_equal(verify(s, "alice", "Correct horse", NOW + 6), 1);
	assert_int_equal(verify(s, "alice", "", NOW + 6), 1);
	assert_int_equal(verify(s, "alice", NULL, NOW + 6), 1);
	assert_int_equal(verify(s, "bob", "correct horse", NOW + 6), 1);
	assert_int_equal(verify(s, "Alice", "correct horse", NOW + 6), 1);
	assert_int_equal(verify(s, NULL, "correct horse", NOW + 6), 1);
	/* A failed login does not count as a login. */
	assert_string_equal(list_of(s), "alice:root:1800000000:1800000005:0");

	/* Refusals. */
	expect(abq_admin_add(s, "alice", "another password", "root", NOW, &msg), 1, msg,
	       "administrator 'alice' exists");
	expect(abq_admin_add(s, "bob", "short", "root", NOW, &msg), 1, msg, "at least 8");
	expect(abq_admin_add(s, "Bob", "long enough", "root", NOW, &msg), 1, msg,
	       "bad administrator name");
	assert_string_equal(list_of(s), "alice:root:1800000000:1800000005:0");
	assert_string_equal(history_of(s), "root alice added");
}

/* Elapsed seconds of one verify. */
static double
timed_verify(struct abq_store *s, const char *name, const char *password)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(verify(s, name, password, NOW), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/*
 * An unknown name costs a hash like a wrong password does, so the answer's
 * time does not tell which names exist (loosely: within a factor of three).
 */
static void
test_verify_timing(void **state)
{
	struct abq_store *s = FX(state)->s;
	double known = 1e9, unknown = 1e9, t;
	int i;

	add(s, "alice", "correct horse");
	for (i = 0; i < 2; i++) {
		if ((t = timed_verify(s, "alice", "wrong password")) < known)
			known = t;
		if ((t = timed_verify(s, "nobody", "wrong password")) < unknown)
			unknown = t;
	}
	print_message("verify: wrong password %.3f s, unknown name %.3f s\n", known, unknown);
	assert_true(unknown * 3 > known);
	assert_true(known * 3 > unknown);
}

/* A new password replaces the old one; an unknown name is refused. */
static void
test_passwd(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *msg = NULL;

	add(s, "alice", "first password");
	expect(abq_admin_passwd(s, "alice", "second password", "alice", NOW + 10, &msg), 0, msg,
	       NULL);
	assert_int_equal(verify(s, "alice", "first password", NOW + 11), 1);
	assert_int_equal(verify(s, "alice", "second password", NOW + 11), 0);
	assert_string_equal(list_of(s), "alice:root:1800000010:1800000011:0");
	expect(abq_admin_passwd(s, "bob", "second password", "root", NOW, &msg), 1, msg,
	       "no administrator 'bob'");
	expect(abq_admin_passwd(s, "alice", "1234567", "root", NOW, &msg), 1, msg, "at least 8");
	assert_int_equal(verify(s, "alice", "second password", NOW + 12), 0);
	assert_string_equal(history_of(s), "root alice added;alice alice password changed");
}

/* Tokens: the shape, checking, a wrong token, revoking by label and all. */
static void
test_tokens(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *t1 = NULL, *t2 = NULL, *t3 = NULL, *name = NULL, *msg = NULL;
	const char *err = NULL;
	size_t n = 99, i;
	char bad[64];

	add(s, "alice", "correct horse");
	expect(abq_admin_token_new(s, "alice", "ci", "alice", NOW, &t1, &msg), 0, msg, NULL);
	expect(abq_admin_token_new(s, "alice", "ci", "alice", NOW, &t2, &msg), 0, msg, NULL);
	expect(abq_admin_token_new(s, "alice", NULL, "root", NOW, &t3, &msg), 0, msg, NULL);
	/* "abq_" and 43 base64url characters, and all different. */
	assert_int_equal(strlen(t1), 47);
	assert_true(strncmp(t1, "abq_", 4) == 0);
	for (i = 4; i < 47; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                       "0123456789-_",
		                       t1[i]));
	assert_string_not_equal(t1, t2);
	assert_string_not_equal(t2, t3);
	assert_string_equal(list_of(s), "alice:root:1800000000:0:3");

	expect(abq_admin_token_check(s, t1, NOW + 100, &name, &msg), 0, msg, NULL);
	assert_string_equal(name, "alice");
	free(name);
	/* A token one character off, truncated, or not a token at all. */
	snprintf(bad, sizeof(bad), "%s", t1);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	expect(abq_admin_token_check(s, bad, NOW, &name, &msg), 1, msg, "not a valid token");
	assert_null(name);
	bad[10] = t1[10];
	bad[46] = '\0';
	expect(abq_admin_token_check(s, bad, NOW, &name, &msg), 1, msg, "not a valid token");
	expect(abq_admin_token_check(s, "", NOW, &name, &msg), 1, msg, "not a valid token");
	expect(abq_admin_token_check(s, NULL, NOW, &name, &msg), 1, msg, "not a valid token");
	expect(abq_admin_token_check(s, "correct horse", NOW, &name, &msg), 1, msg,
	       "not a valid token");

	assert_int_equal(abq_store_token_count(s, "alice", &n, &err), 0);
	assert_int_equal(n, 3);

	/* Refusals. */
	expect(abq_admin_token_new(s, "bob", NULL, "root", NOW, &name, &msg), 1, msg,
	       "no administrator 'bob'");
	assert_null(name);
	expect(abq_admin_token_new(s, "alice", "two words", "root", NOW, &name, &msg), 1, msg,
	       "bad token label");
	expect(abq_admin_token_new(s, "alice", "", "root", NOW, &name, &msg), 1, msg,
	       "bad token label");
	expect(abq_admin_token_revoke(s, "bob", NULL, "root", NOW, &n, &msg), 1, msg,
	       "no administrator 'bob'");

	/* Revoke by label: t1 and t2 go, t3 stays. */
	expect(abq_admin_token_revoke(s, "alice", "ci", "root", NOW + 200, &n, &msg), 0, msg, NULL);
	assert_int_equal(n, 2);
	expect(abq_admin_token_check(s, t1, NOW, &name, &msg), 1, msg, "not a valid token");
	expect(abq_admin_token_check(s, t2, NOW, &name, &msg), 1, msg, "not a valid token");
	expect(abq_admin_token_check(s, t3, NOW, &name, &msg), 0, msg, NULL);
	free(name);
	expect(abq_admin_token_revoke(s, "alice", "ci", "root", NOW + 200, &n, &msg), 0, msg, NULL);
	assert_int_equal(n, 0);
	/* Revoke all. */
	expect(abq_admin_token_revoke(s, "alice", NULL, "root", NOW + 300, &n, &msg), 0, msg, NULL);
	assert_int_equal(n, 1);
	expect(abq_admin_token_check(s, t3, NOW, &name, &msg), 1, msg, "not a valid token");
	assert_string_equal(list_of(s), "alice:root:1800000000:0:0");
	assert_string_equal(history_of(s), "root alice added;alice alice token added (ci);"
	                                   "alice alice token added (ci);root alice token added;"
	                                   "root alice tokens revoked (2, label ci);"
	                                   "root alice tokens revoked (1)");
	free(t1);
	free(t2);
	free(t3);
}

/* The one token of the store: its last use, and that the store has its hash, not the token. */
struct one_token {
	const char *token;
	int64_t last_used;
	int n;
};

static int
one_token_cb(void *arg, const struct abq_token *t)
{
	struct one_token *o = arg;

	assert_int_equal(strlen(t->hash), 64);
	assert_null(strstr(t->hash, o->token + 4));
	o->last_used = t->last_used;
	o->n++;
	return 0;
}

/* A token's last use is recorded, but not at every request (once a minute at most). */
static void
test_token_last_used(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *t = NULL, *name = NULL, *msg = NULL;
	const char *err = NULL;
	const struct {
		int64_t at;
		int64_t want;
	} steps[] = {{NOW + 100, NOW + 100}, {NOW + 130, NOW + 100}, {NOW + 160, NOW + 160}};
	size_t i;

	add(s, "alice", "correct horse");
	expect(abq_admin_token_new(s, "alice", "ci", "alice", NOW, &t, &msg), 0, msg, NULL);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct one_token o = {.token = t};

		expect(abq_admin_token_check(s, t, steps[i].at, &name, &msg), 0, msg, NULL);
		assert_string_equal(name, "alice");
		free(name);
		assert_int_equal(abq_store_token_iter(s, NULL, one_token_cb, &o, &err), 0);
		assert_int_equal(o.n, 1);
		assert_int_equal(o.last_used, steps[i].want);
	}
	free(t);
}

/* Deleting an administrator removes their tokens; their name can be used again. */
static void
test_delete(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *t = NULL, *name = NULL, *msg = NULL;
	const char *err = NULL;
	size_t n = 99;

	add(s, "alice", "correct horse");
	add(s, "bob", "battery staple");
	expect(abq_admin_token_new(s, "alice", "ci", "alice", NOW, &t, &msg), 0, msg, NULL);
	free(t);
	expect(abq_admin_token_new(s, "alice", NULL, "alice", NOW, &t, &msg), 0, msg, NULL);
	expect(abq_admin_delete(s, "alice", "bob", NOW + 50, &msg), 0, msg, NULL);
	expect(abq_admin_token_check(s, t, NOW, &name, &msg), 1, msg, "not a valid token");
	assert_int_equal(verify(s, "alice", "correct horse", NOW), 1);
	assert_int_equal(abq_store_token_count(s, NULL, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_string_equal(list_of(s), "bob:root:1800000000:0:0");
	expect(abq_admin_delete(s, "alice", "bob", NOW, &msg), 1, msg, "no administrator 'alice'");
	expect(abq_admin_delete(s, "", "bob", NOW, &msg), 1, msg, "bad administrator name");
	/* The name is free again, with a new password; the old token stays dead. */
	add(s, "alice", "a new password");
	expect(abq_admin_token_check(s, t, NOW, &name, &msg), 1, msg, "not a valid token");
	assert_int_equal(verify(s, "alice", "a new password", NOW), 0);
	assert_string_equal(history_of(s),
	                    "root alice added;root bob added;"
	                    "alice alice token added (ci);alice alice token added;"
	                    "bob alice deleted (tokens revoked: 2);root alice added");
	free(t);
}

/* Whether any history row of the store contains needle. */
struct needle {
	const char *s;
	int found;
};

static int
needle_cb(void *arg, const struct abq_history *h)
{
	struct needle *n = arg;
	const char *f[] = {h->who, h->what, h->subject, h->old_value, h->new_value, h->reason};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] != NULL && strstr(f[i], n->s) != NULL)
			n->found++;
	return 0;
}

/* No password, token or hash reaches history. */
static void
test_history_free_of_secrets(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *t = NULL, *msg = NULL;
	struct abq_admin a = {0};
	const char *err = NULL;
	const char *secrets[4];
	size_t i;

	add(s, "alice", "correct horse");
	expect(abq_admin_passwd(s, "alice", "battery staple", "alice", NOW, &msg), 0, msg, NULL);
	expect(abq_admin_token_new(s, "alice", "ci", "alice", NOW, &t, &msg), 0, msg, NULL);
	assert_int_equal(abq_store_admin_get(s, "alice", &a, &err), 1);
	secrets[0] = "correct horse";
	secrets[1] = "battery staple";
	secrets[2] = t + 4;               /* the token's random part */
	secrets[3] = a.password_hash + 7; /* the salt and hash */
	for (i = 0; i < 4; i++) {
		struct needle n = {.s = secrets[i]};

		assert_int_equal(abq_store_history_iter(s, NULL, needle_cb, &n, &err), 0);
		if (n.found)
			fail_msg("history holds secret %zu", i);
	}
	/* Sanity: the search does find what is there. */
	{
		struct needle n = {.s = "token added (ci)"};

		assert_int_equal(abq_store_history_iter(s, NULL, needle_cb, &n, &err), 0);
		assert_int_equal(n.found, 1);
	}
	abq_admin_clear(&a);
	free(t);
}

/* A store failure is -1 with a message, and leaves nothing behind. */
static void
test_store_failure(void **state)
{
	struct abq_store *s = FX(state)->s;
	char *t = NULL, *msg = NULL;

	setenv("ABQ_STORE_FAULT", "2", 1); /* the history row of the add */
	expect(abq_admin_add(s, "alice", "correct horse", "root", NOW, &msg), -1, msg,
	       "injected fault");
	unsetenv("ABQ_STORE_FAULT");
	assert_string_equal(list_of(s), "");
	assert_int_equal(verify(s, "alice", "correct horse", NOW), 1);
	add(s, "alice", "correct horse");
	setenv("ABQ_STORE_FAULT", "1", 1);
	expect(abq_admin_token_new(s, "alice", NULL, "root", NOW, &t, &msg), -1, msg,
	       "injected fault");
	assert_null(t);
	unsetenv("ABQ_STORE_FAULT");
	assert_string_equal(list_of(s), "alice:root:1800000000:0:0");
	assert_string_equal(history_of(s), "root alice added");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_check),
	    cmocka_unit_test_setup_teardown(test_add_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_timing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_passwd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_last_used, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history_free_of_secrets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_failure, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
