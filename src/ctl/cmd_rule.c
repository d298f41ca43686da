/*
 * cmd_rule.c: rules (setRule, deleteRule, listRules) and the notification
 * interval.
 *
 * Every word is checked here before the registry is called, so that a typo
 * gets a message naming the accepted words; the registry checks again (it
 * serves the JSON API too) and decides anew the devices a rule can change.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"
#include "engine/engine.h"
#include "lib/util.h"

/* Rule orders are whole numbers in this range. */
#define ORDER_MIN (-1000000000LL)
#define ORDER_MAX 1000000000LL

/*
 * mobile abq setRule PATTERN LEVEL ORDER [characteristic C] [match M] [domain D]:
 * add a rule, or update the level and order of the rule that has the same
 * domain, characteristic, match and pattern.
 */
int
do_rule_set(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *charac = ctl_arg(args, "characteristic");
	const char *match = ctl_arg(args, "match");
	const char *domain_word = ctl_arg(args, "domain");
	const char *order_word = ctl_arg(args, "order");
	struct abq_rule r = {.charac = ABQ_CHAR_DEVICEID, .match = ABQ_MATCH_REGEX};
	struct abq_outcome o = {0};
	char *domain = NULL, *errmsg = NULL, *text;
	const char *why;
	long long order;
	int rc;

	r.pattern = (char *)ctl_arg(args, "pattern");
	if (abq_state_parse(ctl_arg(args, "level"), false, &r.level) < 0)
		return ctl_fail("unknown level '%s' (use Allowed, Blocked or Quarantined)",
		                ctl_arg(args, "level"));
	if (parse_int(order_word, ORDER_MIN, ORDER_MAX, &order, &why) < 0)
		return ctl_fail("order '%s': %s", order_word, why);
	r.order = order;
	if (charac != NULL && abq_charac_parse(charac, &r.charac) < 0)
		return ctl_fail("unknown characteristic '%s' (use DeviceId, DeviceType, "
		                "DeviceModel, DeviceOS or UserAgent)",
		                charac);
	if (match != NULL && abq_match_parse(match, &r.match) < 0)
		return ctl_fail("unknown match '%s' (use exact, glob or regex)", match);
	if (r.pattern[0] == '\0')
		return ctl_fail("the pattern is empty");
	if (domain_word != NULL && ctl_domain(domain_word, &domain) < 0)
		return CTL_REFUSED;
	r.domain = domain;
	if (abq_rule_check(&r, &errmsg) < 0) {
		free(domain);
		return ctl_registry_status(1, errmsg);
	}
	free(errmsg);
	errmsg = NULL;
	rc = abq_registry_rule_set(&env->ctx, &r, &o, &errmsg);
	if (rc != 0) {
		free(domain);
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json) {
		text = fmt_rule(&r);
		fprintf(env->out, "%srule %" PRId64 ": %s, order %lld, %s%s\n",
		        env->dry_run ? "would set " : "", o.id, shown(text), order,
		        domain != NULL ? "domain " : "global", domain != NULL ? shown(domain) : "");
		free(text);
	}
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	free(domain);
	return CTL_OK;
}

/*
 * mobile abq deleteRule ID|PATTERN [domain D]: a number names a rule id when
 * such a rule exists; anything else (or a number that is no rule's id) is the
 * pattern of a rule of the domain (global without domain).
 */
int
do_rule_delete(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	const char *word = ctl_arg(args, "id-or-pattern");
	const char *domain_word = ctl_arg(args, "domain");
	struct abq_outcome o = {0};
	char *domain = NULL, *errmsg = NULL;
	const char *why, *err = NULL;
	long long id = 0;
	bool by_id = false;
	int rc;

	if (domain_word != NULL && ctl_domain(domain_word, &domain) < 0)
		return CTL_REFUSED;
	if (parse_int(word, 1, INT64_MAX, &id, &why) == 0) {
		struct abq_rule r = {0};
		rc = abq_store_rule_get(env->store, id, &r, &err);
		if (rc < 0) {
			free(domain);
			return ctl_fail("store: %s", err != NULL ? err : "reading the rule failed");
		}
		if (rc == 1) {
			by_id = !(domain != NULL && !str_ieq(r.domain, domain));
			abq_rule_clear(&r);
		}
	}
	rc = abq_registry_rule_delete(&env->ctx, by_id ? id : 0, by_id ? NULL : word, domain, &o,
	                              &errmsg);
	free(domain);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%s rule %" PRId64 "\n",
		        env->dry_run ? "would delete" : "deleted", o.id);
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	return CTL_OK;
}

/* listRules output state. */
struct rule_lister {
	struct ctl_env *env;
	struct table *table;
	struct jstream js;
	size_t count;
};

/* Print one rule. */
static int
rule_cb(void *arg, const struct abq_rule *r)
{
	struct rule_lister *l = arg;
	char id[24], order[24], at[32];

	l->count++;
	if (l->env->json) {
		jstream_item(&l->js, rule_json(r));
		return 0;
	}
	snprintf(id, sizeof(id), "%" PRId64, r->id);
	snprintf(order, sizeof(order), "%" PRId64, r->order);
	const char *cells[] = {id,
	                       r->domain != NULL ? r->domain : "global",
	                       order,
	                       abq_charac_name(r->charac),
	                       abq_match_name(r->match),
	                       r->pattern,
	                       abq_state_name(r->level),
	                       r->created_by,
	                       format_time(r->created_at, at)};
	table_row(l->table, cells);
	return 0;
}

/*
 * mobile abq listRules [domain D]: every rule in the order they are tried
 * (domain rules, then global ones, each by ascending order), or one domain's.
 */
int
do_rule_list(struct ctl_env *env, const struct ctl_command *cmd, const struct ctl_args *args)
{
	static const char *const headers[] = {"ID",        "DOMAIN",  "ORDER", "CHARACTERISTIC",
	                                      "MATCH",     "PATTERN", "LEVEL", "CREATED_BY",
	                                      "CREATED_AT"};
	const char *domain_word = ctl_arg(args, "domain");
	struct rule_lister l = {.env = env};
	char *domain = NULL;
	const char *err = NULL;
	int rc;

	if (domain_word != NULL && ctl_domain(domain_word, &domain) < 0)
		return CTL_REFUSED;
	if (env->json)
		jstream_begin(&l.js, env->out, NULL, "rules");
	else
		l.table = table_new(env->out, 9, headers);
	rc = abq_store_rule_iter(env->store, domain, domain == NULL, rule_cb, &l, &err);
	if (env->json) {
		jstream_end(&l.js);
	} else {
		table_finish(&l.table);
		if (l.count == 0)
			fprintf(env->out, "no rules\n");
	}
	free(domain);
	if (rc != 0)
		return ctl_fail("store: %s", err != NULL ? err : "reading the rules failed");
	return CTL_OK;
}

/*
 * mobile abq setNotificationInterval 0|30s|45m|6h|1d: the global
 * abqNotificationsInterval (how often administrators get the digest).
 */
int
do_notification_interval(struct ctl_env *env, const struct ctl_command *cmd,
                         const struct ctl_args *args)
{
	const char *value = ctl_arg(args, "interval");
	struct abq_outcome o = {0};
	char *errmsg = NULL;
	char buf[32];
	int64_t secs;
	const char *why;
	int rc;

	if (parse_duration(value, &secs, &why) < 0)
		return ctl_fail("interval '%s': %s", value, why);
	rc = abq_registry_attr_set(&env->ctx, ABQ_SCOPE_GLOBAL, NULL, "abqNotificationsInterval",
	                           value, &o, &errmsg);
	if (rc != 0) {
		abq_outcome_clear(&o);
		return ctl_registry_status(rc, errmsg);
	}
	free(errmsg);
	if (!env->json)
		fprintf(env->out, "%sglobal abqNotificationsInterval = %s%s\n",
		        env->dry_run ? "would set " : "set ", format_duration(secs, buf),
		        secs == 0 ? " (no digest)" : "");
	print_outcome(env, &o);
	abq_outcome_clear(&o);
	return CTL_OK;
}
