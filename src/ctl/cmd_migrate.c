/*
 * cmd_migrate.c: abqctl mobile abq migrate-store FROM_URL TO_URL.
 *
 * Copies a whole registry into an empty store of either backend (typically a
 * SQLite file into PostgreSQL, before a second node is added): every table
 * through the store interface, so that both backends' rules (keys compared
 * without case, ids kept) apply on both sides. One copier per table in
 * `copiers[]`, in an order where nothing refers to a row not yet copied; a
 * table added to the schema adds one row there (and its store iterator and
 * put), nothing else.
 *
 * The destination is opened (created when missing: a new SQLite file, or an
 * empty PostgreSQL schema initialised) and must hold no row in any table,
 * else nothing is written and the command says which table is not empty.
 * The copy is one transaction on the destination; the source is read inside
 * a transaction of its own (which takes its writers' lock, so that what is
 * copied is one consistent state; stop the daemons first), rolled back at the
 * end. Relative SQLite paths are relative to the config file's folder, as for
 * [store] url.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/util.h"

/*
 * A copier: `each` runs fn over every row of its table in store s (fn returns
 * 0 to go on, non-zero to stop, like the store's callbacks); `put` writes one
 * row into store to.
 */
typedef int row_fn(void *arg, const void *rec);
struct copier {
	const char *table;
	int (*each)(struct abq_store *s, row_fn *fn, void *arg, const char **err);
	int (*put)(struct abq_store *to, const void *rec, const char **err);
};

/* The store's typed callbacks, all funnelled into one row_fn. */
struct each_arg {
	row_fn *fn;
	void *arg;
};

#define EACH_CB(name, type)                                                                        \
	static int name(void *arg, const type *rec)                                                \
	{                                                                                          \
		struct each_arg *ea = arg;                                                         \
		return ea->fn(ea->arg, rec);                                                       \
	}
EACH_CB(cb_attr, struct abq_attr)
EACH_CB(cb_rule, struct abq_rule)
EACH_CB(cb_entry, struct abq_entry)
EACH_CB(cb_device, struct abq_device)
EACH_CB(cb_syncstate, struct abq_syncstate)
EACH_CB(cb_template, struct abq_template)
EACH_CB(cb_history, struct abq_history)
EACH_CB(cb_change, struct abq_change)
EACH_CB(cb_notice, struct abq_notice)
EACH_CB(cb_admin, struct abq_admin)
EACH_CB(cb_token, struct abq_token)
EACH_CB(cb_folder, struct abq_folder)
EACH_CB(cb_folder_counter, struct abq_folder_counter)
EACH_CB(cb_pim_coll, struct abq_pim_coll)
EACH_CB(cb_pim_item, struct abq_pim_item)

static int
each_attr(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_attr_iter(s, cb_attr, &ea, err);
}

static int
each_rule(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_rule_iter(s, NULL, true, cb_rule, &ea, err);
}

static int
each_entry(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_entry_iter(s, ABQ_STATE_NONE, cb_entry, &ea, err);
}

static int
each_device(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	struct abq_device_filter all = {0};
	return abq_store_device_iter(s, &all, cb_device, &ea, err);
}

static int
each_syncstate(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_syncstate_iter(s, cb_syncstate, &ea, err);
}

static int
each_template(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_template_iter(s, cb_template, &ea, err);
}

static int
each_history(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	struct abq_history_filter all = {0}; /* no limit: oldest first */
	return abq_store_history_iter(s, &all, cb_history, &ea, err);
}

static int
each_change(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_change_iter(s, 0, cb_change, &ea, err);
}

static int
each_notice(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_notice_iter(s, NULL, cb_notice, &ea, err);
}

static int
each_admin(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_admin_iter(s, cb_admin, &ea, err);
}

static int
each_token(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_token_iter(s, NULL, cb_token, &ea, err);
}

static int
each_folder(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_folder_iter(s, NULL, cb_folder, &ea, err);
}

static int
each_folder_counter(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_folder_counter_iter(s, cb_folder_counter, &ea, err);
}

static int
each_pim_coll(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_pim_coll_iter(s, NULL, cb_pim_coll, &ea, err);
}

static int
each_pim_item(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_pim_item_iter(s, cb_pim_item, &ea, err);
}

static int
each_pim_counter(struct abq_store *s, row_fn *fn, void *arg, const char **err)
{
	struct each_arg ea = {fn, arg};
	return abq_store_pim_counter_iter(s, cb_folder_counter, &ea, err);
}

/* A put that only gives the row its type. */
#define PUT(name, store_put)                                                                       \
	static int name(struct abq_store *to, const void *rec, const char **err)                   \
	{                                                                                          \
		return store_put(to, rec, err);                                                    \
	}
PUT(put_attr, abq_store_attr_put)
PUT(put_rule, abq_store_rule_restore)
PUT(put_entry, abq_store_entry_put)
PUT(put_device, abq_store_device_put)
PUT(put_template, abq_store_template_put)
PUT(put_history, abq_store_history_restore)
PUT(put_change, abq_store_change_restore)
PUT(put_notice, abq_store_notice_restore)
PUT(put_admin, abq_store_admin_put)
PUT(put_folder, abq_store_folder_restore)
PUT(put_folder_counter, abq_store_folder_counter_restore)
PUT(put_pim_coll, abq_store_pim_coll_restore)
PUT(put_pim_item, abq_store_pim_item_restore)
PUT(put_pim_counter, abq_store_pim_counter_restore)

static int
put_syncstate(struct abq_store *to, const void *rec, const char **err)
{
	const struct abq_syncstate *st = rec;
	return abq_store_syncstate_put(to, st->account, st->device_id, st->collection, st->state,
	                               st->len, st->updated, err);
}

/* Token ids are not referred to anywhere (tokens are found by hash): a new id is fine. */
static int
put_token(struct abq_store *to, const void *rec, const char **err)
{
	struct abq_token t = *(const struct abq_token *)rec;
	return abq_store_token_add(to, &t, err);
}

/* Every table of the registry, in copy order. */
static const struct copier copiers[] = {
    {"attributes", each_attr, put_attr},
    {"rules", each_rule, put_rule},
    {"entries", each_entry, put_entry},
    {"devices", each_device, put_device},
    {"sync state", each_syncstate, put_syncstate},
    {"templates", each_template, put_template},
    {"history", each_history, put_history},
    {"change log", each_change, put_change},
    {"outbox", each_notice, put_notice},
    {"administrators", each_admin, put_admin},
    {"tokens", each_token, put_token},
    {"folders", each_folder, put_folder},
    {"folder ids", each_folder_counter, put_folder_counter},
    {"collections", each_pim_coll, put_pim_coll},
    {"collection items", each_pim_item, put_pim_item},
    {"collection ids", each_pim_counter, put_pim_counter},
};
#define NCOPIERS (sizeof(copiers) / sizeof(copiers[0]))

/* The emptiness check's callback: one row is enough. */
static int
found_row(void *arg, const void *rec)
{
	(void)rec;
	*(bool *)arg = true;
	return 1;
}

/* One table's copy in progress: the destination, its copier, the count, the first error. */
struct copy {
	struct abq_store *to;
	const struct copier *k;
	size_t n;
	const char *err;
};

static int
copy_row(void *arg, const void *rec)
{
	struct copy *c = arg;
	if (c->k->put(c->to, rec, &c->err) < 0)
		return -1;
	c->n++;
	return 0;
}

int
do_migrate_store(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *from_url = ctl_arg(args, "from-url");
	const char *to_url = ctl_arg(args, "to-url");
	const char *base = env->config->base_dir;
	struct abq_store *from = NULL, *to = NULL;
	size_t counts[NCOPIERS] = {0};
	const char *err = NULL;
	int status = CTL_REFUSED;
	bool from_tx = false, to_tx = false;

	(void)cmd;
	from = abq_store_open(from_url, base, 0, &err);
	if (from == NULL)
		return ctl_fail("source: %s", err != NULL ? err : "cannot open the store");
	char *from_where = xstrdup(abq_store_location(from));
	to = abq_store_open(to_url, base, ABQ_STORE_CREATE, &err);
	if (to == NULL) {
		ctl_fail("destination: %s", err != NULL ? err : "cannot open the store");
		goto out;
	}
	if (strcmp(abq_store_backend(from), abq_store_backend(to)) == 0 &&
	    strcmp(from_where, abq_store_location(to)) == 0) {
		ctl_fail("source and destination are the same store (%s)", from_where);
		goto out;
	}
	if (abq_store_begin(from, &err) < 0) {
		ctl_fail("source: %s", err);
		goto out;
	}
	from_tx = true;
	if (abq_store_begin(to, &err) < 0) {
		ctl_fail("destination: %s", err);
		goto out;
	}
	to_tx = true;
	for (size_t i = 0; i < NCOPIERS; i++) {
		bool any = false;
		if (copiers[i].each(to, found_row, &any, &err) < 0) {
			ctl_fail("destination: %s", err);
			goto out;
		}
		if (any) {
			ctl_fail("destination %s is not empty (its %s has rows); migrate-store "
			         "copies into an empty store only",
			         abq_store_location(to), copiers[i].table);
			goto out;
		}
	}
	for (size_t i = 0; i < NCOPIERS; i++) {
		struct copy c = {.to = to, .k = &copiers[i]};
		int rc = copiers[i].each(from, copy_row, &c, &err);
		if (rc != 0) {
			if (c.err != NULL)
				ctl_fail("copying the %s: destination: %s", copiers[i].table,
				         c.err);
			else
				ctl_fail("copying the %s: source: %s", copiers[i].table,
				         err != NULL ? err : "failed");
			goto out;
		}
		counts[i] = c.n;
	}
	if (abq_store_restore_finish(to, &err) < 0 || abq_store_commit(to, &err) < 0) {
		ctl_fail("destination: %s", err);
		goto out;
	}
	to_tx = false;
	if (env->json) {
		json_t *o = json_object(), *n = json_object();
		json_object_set_new(o, "from", jstr(from_where));
		json_object_set_new(o, "to", jstr(abq_store_location(to)));
		for (size_t i = 0; i < NCOPIERS; i++)
			json_object_set_new(n, copiers[i].table,
			                    json_integer((json_int_t)counts[i]));
		json_object_set_new(o, "copied", n);
		json_print(env->out, o);
	} else {
		fprintf(env->out, "copied %s (%s) to %s (%s):\n", from_where,
		        abq_store_backend(from), abq_store_location(to), abq_store_backend(to));
		for (size_t i = 0; i < NCOPIERS; i++)
			fprintf(env->out, "  %-11s %zu\n", copiers[i].table, counts[i]);
	}
	status = CTL_OK;
out:
	if (to_tx)
		abq_store_rollback(to);
	if (from_tx)
		abq_store_rollback(from);
	abq_store_close(&from);
	free(from_where);
	/* abqctl gives a store it created as root to [eas] user (chown_store). */
	if (status == CTL_OK)
		env->store = to;
	else
		abq_store_close(&to);
	return status;
}
