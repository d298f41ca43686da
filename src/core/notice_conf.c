/*
 * notice_conf.c: the user's notice settings taken from the config, the same
 * for every process that changes the registry (notify.h).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/notify.h"
#include "lib/util.h"

const struct abq_notice_conf *
abq_notice_conf_from(const struct abq_config *cfg, struct abq_notice_conf *nc, char **admins_r)
{
	char *admins = NULL;

	*admins_r = NULL;
	memset(nc, 0, sizeof(*nc));
	if (cfg->smtp_from == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->smtp_admins_count; i++) {
		char *n = admins ? xasprintf("%s, %s", admins, cfg->smtp_admins[i])
		                 : xstrdup(cfg->smtp_admins[i]);
		free(admins);
		admins = n;
	}
	nc->from = cfg->smtp_from;
	nc->mail_domain = cfg->smtp_domain;
	nc->admins = admins;
	*admins_r = admins;
	return nc;
}
