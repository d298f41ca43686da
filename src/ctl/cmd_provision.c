/*
 * cmd_provision.c: "abqctl mobile setProvisioning|unsetProvisioning|
 * getProvisioning global|domain D|account A ...": the provisioning policy
 * (lib/provision.h) abqd hands phones in Provision.
 *
 * get loads the attributes (provisioning values included) and resolves them
 * the way the daemon does (engine.h abq_policy_provisioning): the effective
 * value of each key and where it comes from, then the policy version the
 * phones of that scope get. set and unset go through the registry, which
 * validates, records history and the change log.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "lib/provision.h"
#include "lib/util.h"

/*
 * getProvisioning SCOPE [KEY]: one key, or every key, with its effective
 * value and its source ("domain example.com", "default"), then the policy
 * version and whether it imposes anything.
 */
int
do_prov_get(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	enum abq_scope scope = (enum abq_scope)cmd->op;
	const char *key = ctl_arg(args, "key");
	const struct abq_prov_def *one = NULL;
	struct abq_policy *p = NULL;
	struct abq_prov_policy eff;
	char *target = NULL, *errmsg = NULL;
	static const char *const headers[] = {"KEY", "VALUE", "SOURCE"};
	int status = CTL_OK;

	if (ctl_scope_target(env, cmd, args, &target) < 0)
		return CTL_REFUSED;
	if (key != NULL && (one = abq_prov_find(key)) == NULL) {
		ctl_fail("unknown provisioning key '%s' (known: %s)", key, abq_prov_names());
		status = CTL_REFUSED;
		goto out;
	}
	p = abq_registry_attr_policy(env->store, env->config->eas_default_domain, &errmsg);
	if (p == NULL) {
		ctl_fail("%s", errmsg);
		status = CTL_REFUSED;
		goto out;
	}
	abq_policy_provisioning(p, scope, target, &eff);
	uint32_t version = abq_prov_version(&eff);
	bool imposes = abq_prov_imposes(&eff);
	if (env->json) {
		struct jstream js;
		json_t *head = json_object();
		json_object_set_new(head, "scope", json_string(abq_scope_name(scope)));
		json_object_set_new(head, "target", jstr(target));
		json_object_set_new(head, "version", json_integer(version));
		json_object_set_new(head, "imposes", json_boolean(imposes));
		jstream_begin(&js, env->out, head, "provisioning");
		for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
			const struct abq_prov_def *d = abq_prov_by_id((enum abq_prov_id)i);
			if (one != NULL && d != one)
				continue;
			json_t *o = json_object();
			json_object_set_new(o, "key", json_string(d->name));
			json_object_set_new(o, "value", jstr(eff.text[i]));
			json_object_set_new(o, "source",
			                    json_string(abq_prov_source_name(eff.from[i])));
			json_object_set_new(o, "default", jstr(d->default_value));
			jstream_item(&js, o);
		}
		jstream_end(&js);
		goto out;
	}
	struct table *t = table_new(env->out, 3, headers);
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		const struct abq_prov_def *d = abq_prov_by_id((enum abq_prov_id)i);
		char *src;
		if (one != NULL && d != one)
			continue;
		switch (eff.from[i]) {
		case ABQ_PROV_FROM_ACCOUNT:
			src = ctl_scope_text(ABQ_SCOPE_ACCOUNT, target);
			break;
		case ABQ_PROV_FROM_DOMAIN:
			src = ctl_scope_text(
			    ABQ_SCOPE_DOMAIN,
			    scope == ABQ_SCOPE_DOMAIN
			        ? target
			        : account_domain(target, env->config->eas_default_domain));
			break;
		case ABQ_PROV_FROM_GLOBAL:
			src = xstrdup("global");
			break;
		case ABQ_PROV_FROM_DEFAULT:
		default:
			src = xstrdup("default");
			break;
		}
		const char *value =
		    eff.text[i] != NULL && eff.text[i][0] != '\0' ? eff.text[i] : "-";
		const char *cells[] = {d->name, value, src};
		table_row(t, cells);
		free(src);
	}
	table_finish(&t);
	if (one == NULL)
		fprintf(env->out, "policy version %u%s\n", version,
		        imposes ? "" : " (imposes nothing)");
out:
	abq_policy_free(&p);
	free(target);
	free(errmsg);
	return status;
}

/*
 * Set (value non-NULL) or unset a key through the registry and say what it
 * did: "set domain example.com MinDevicePasswordLength = 6".
 */
static int
prov_change(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args,
            const char *value)
{
	enum abq_scope scope = (enum abq_scope)cmd->op;
	const char *key = ctl_arg(args, "key");
	struct abq_outcome o = {0};
	char *target = NULL, *errmsg = NULL, *where = NULL, *canon = NULL;
	int rc;

	if (ctl_scope_target(env, cmd, args, &target) < 0)
		return CTL_REFUSED;
	rc = abq_registry_prov_set(&env->ctx, scope, target, key, value, &o, &errmsg);
	if (rc != 0) {
		free(target);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	errmsg = NULL;
	const struct abq_prov_def *def = abq_prov_find(key);
	where = ctl_scope_text(scope, target);
	if (value != NULL && abq_prov_validate(def, value, &canon, &errmsg) < 0)
		canon = NULL;
	if (env->json) {
		/* print_outcome below: the document every change prints. */
	} else if (value != NULL) {
		fprintf(env->out, "%s%s %s = %s\n", env->dry_run ? "would set " : "set ",
		        shown(where), def->name,
		        canon != NULL && canon[0] != '\0' ? shown(canon) : "(empty list)");
	} else {
		fprintf(env->out, "%s%s %s (back to the inherited value)\n",
		        env->dry_run ? "would unset " : "unset ", shown(where), def->name);
	}
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(target);
	free(where);
	free(canon);
	free(errmsg);
	return CTL_OK;
}

/* setProvisioning SCOPE KEY VALUE [--dry-run] */
int
do_prov_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	return prov_change(env, cmd, args, ctl_arg(args, "value"));
}

/* unsetProvisioning SCOPE KEY [--dry-run]: the value is inherited again. */
int
do_prov_unset(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	return prov_change(env, cmd, args, NULL);
}
