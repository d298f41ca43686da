/*
 * cmd_config.c: "abqctl config global|domain D|account A get|set|delete".
 *
 * get reads the attributes straight from the store and resolves each the way
 * the engine does (account, then domain, then global, then the default), so
 * that an administrator sees the effective value and where it comes from; set
 * and delete go through the registry, which validates, records history and
 * decides again the devices the attribute can change.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/attrs.h"
#include "lib/util.h"

/*
 * The scope's target from the command line (normalised), NULL for global:
 * the config and provisioning commands' rows carry their scope in op.
 */
int
ctl_scope_target(const struct ctl_env *env, const struct ctl_command *cmd,
                 const struct ctl_args *args, char **target_r)
{
	*target_r = NULL;
	switch ((enum abq_scope)cmd->op) {
	case ABQ_SCOPE_GLOBAL:
		return 0;
	case ABQ_SCOPE_DOMAIN:
		return ctl_domain(ctl_arg(args, "domain"), target_r);
	case ABQ_SCOPE_ACCOUNT:
		return ctl_account(env, ctl_arg(args, "account"), target_r);
	}
	return -1;
}

/* "global", "domain example.com", "account alice@example.com": for people. */
char *
ctl_scope_text(enum abq_scope scope, const char *target)
{
	if (scope == ABQ_SCOPE_GLOBAL)
		return xstrdup("global");
	return xasprintf("%s %s", abq_scope_name(scope), target);
}

/*
 * The effective value of def for (scope, target) and where it comes from: the
 * first scope that sets it, walking from the most specific to global, else the
 * default. Returns 0, or -1 on a store failure (printed).
 */
static int
effective_attr(struct ctl_env *env, enum abq_scope scope, const char *target,
               const struct abq_attr_def *def, char **value_r, enum abq_scope *source_r,
               bool *is_default_r)
{
	struct {
		enum abq_scope scope;
		const char *target;
	} chain[3];
	size_t n = 0;
	const char *err;

	if (scope == ABQ_SCOPE_ACCOUNT) {
		chain[n].scope = ABQ_SCOPE_ACCOUNT;
		chain[n++].target = target;
		const char *dom = account_domain(target, env->config->eas_default_domain);
		if (dom != NULL) {
			chain[n].scope = ABQ_SCOPE_DOMAIN;
			chain[n++].target = dom;
		}
	} else if (scope == ABQ_SCOPE_DOMAIN) {
		chain[n].scope = ABQ_SCOPE_DOMAIN;
		chain[n++].target = target;
	}
	chain[n].scope = ABQ_SCOPE_GLOBAL;
	chain[n++].target = NULL;

	for (size_t i = 0; i < n; i++) {
		struct abq_attr a = {0};
		if ((def->scopes & (1u << chain[i].scope)) == 0)
			continue;
		int rc = abq_store_attr_get(env->store, chain[i].scope, chain[i].target, def->name,
		                            &a, &err);
		if (rc < 0) {
			ctl_fail("store: %s", err != NULL ? err : "reading an attribute failed");
			return -1;
		}
		if (rc == 1) {
			*value_r = xstrdup(a.value != NULL ? a.value : "");
			*source_r = chain[i].scope;
			*is_default_r = false;
			abq_attr_clear(&a);
			return 0;
		}
	}
	*value_r = xstrdup(def->default_value != NULL ? def->default_value : "");
	*source_r = ABQ_SCOPE_GLOBAL;
	*is_default_r = true;
	return 0;
}

/* The names of every attribute, for the "unknown attribute" message. */
static char *
attr_names(void)
{
	char *s = NULL;

	for (const struct abq_attr_def *d = abq_attr_defs(); d->name != NULL; d++) {
		char *n = s != NULL ? xasprintf("%s, %s", s, d->name) : xstrdup(d->name);
		free(s);
		s = n;
	}
	return s;
}

/*
 * config ... get [attribute NAME]: one attribute, or every attribute that can
 * be set at this scope, each with its effective value and its source.
 */
int
do_config_get(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	enum abq_scope scope = (enum abq_scope)cmd->op;
	const char *name = ctl_arg(args, "name");
	const struct abq_attr_def *one = NULL;
	char *target = NULL, *where = NULL;
	struct table *t = NULL;
	struct jstream js;
	int status = CTL_OK;
	static const char *const headers[] = {"ATTRIBUTE", "VALUE", "SOURCE"};

	if (ctl_scope_target(env, cmd, args, &target) < 0)
		return CTL_REFUSED;
	where = ctl_scope_text(scope, target);
	if (name != NULL) {
		one = abq_attr_find(name);
		if (one == NULL) {
			char *names = attr_names();
			ctl_fail("unknown attribute '%s' (known: %s)", name, names);
			free(names);
			status = CTL_REFUSED;
			goto out;
		}
		if ((one->scopes & (1u << scope)) == 0) {
			ctl_fail("%s cannot be set at %s scope", one->name, abq_scope_name(scope));
			status = CTL_REFUSED;
			goto out;
		}
	}
	if (env->json)
		jstream_begin(&js, env->out, NULL, "attributes");
	else
		t = table_new(env->out, 3, headers);
	for (const struct abq_attr_def *d = abq_attr_defs(); d->name != NULL; d++) {
		char *value = NULL;
		enum abq_scope source;
		bool is_default;
		if ((one != NULL && d != one) || (d->scopes & (1u << scope)) == 0)
			continue;
		if (effective_attr(env, scope, target, d, &value, &source, &is_default) < 0) {
			status = CTL_REFUSED;
			break;
		}
		if (env->json) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(d->name));
			json_object_set_new(o, "scope", json_string(abq_scope_name(scope)));
			json_object_set_new(o, "target", jstr(target));
			json_object_set_new(o, "value", jstr(value));
			json_object_set_new(
			    o, "source",
			    json_string(is_default ? "default" : abq_scope_name(source)));
			jstream_item(&js, o);
		} else {
			char *src;
			if (is_default)
				src = xstrdup("default");
			else if (source == scope)
				src = xstrdup(where);
			else if (source == ABQ_SCOPE_DOMAIN)
				src = xasprintf(
				    "domain %s",
				    account_domain(target, env->config->eas_default_domain));
			else
				src = xstrdup(abq_scope_name(source));
			const char *cells[] = {d->name, value, src};
			table_row(t, cells);
			free(src);
		}
		free(value);
	}
	if (env->json)
		jstream_end(&js);
	else
		table_finish(&t);
out:
	free(target);
	free(where);
	return status;
}

/*
 * Set (value non-NULL) or unset an attribute through the registry and print
 * what it did: the new value, then each device the change decided anew.
 */
static int
config_change(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args,
              const char *value)
{
	enum abq_scope scope = (enum abq_scope)cmd->op;
	const char *name = ctl_arg(args, "name");
	struct abq_outcome o = {0};
	char *target = NULL, *errmsg = NULL, *where = NULL, *canon = NULL, *msg = NULL;
	const struct abq_attr_def *def;
	int rc;

	if (ctl_scope_target(env, cmd, args, &target) < 0)
		return CTL_REFUSED;
	rc = abq_registry_attr_set(&env->ctx, scope, target, name, value, &o, &errmsg);
	if (rc != 0) {
		free(target);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json) {
		def = abq_attr_find(name);
		where = ctl_scope_text(scope, target);
		if (value != NULL && def != NULL && abq_attr_validate(def, value, &canon, &msg) < 0)
			canon = NULL;
		if (value != NULL)
			fprintf(env->out, "%s%s %s = %s\n", env->dry_run ? "would set " : "set ",
			        shown(where), def != NULL ? def->name : shown(name),
			        shown(canon != NULL ? canon : value));
		else
			fprintf(env->out, "%s%s %s (back to the inherited value)\n",
			        env->dry_run ? "would unset " : "unset ", shown(where),
			        def != NULL ? def->name : shown(name));
	}
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(target);
	free(where);
	free(canon);
	free(msg);
	return CTL_OK;
}

/* config ... set attribute NAME value VALUE [--dry-run] */
int
do_config_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	return config_change(env, cmd, args, ctl_arg(args, "value"));
}

/* config ... delete attribute NAME [--dry-run]: unset, so the value is inherited again. */
int
do_config_delete(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	return config_change(env, cmd, args, NULL);
}
