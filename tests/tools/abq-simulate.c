/*
 * abq-simulate: make a device "seen" the way abqd records one, for tests.
 *
 *     abq-simulate -c CONF seen ACCOUNT DEVICE_ID [type T] [model M] [os O]
 *                  [ua UA] [imei I] [lang L] [eas V] [address A] [command C]
 *                  [friendly F] [phone P] [operator O]
 *
 * It builds a struct abq_device from the words and calls abq_registry_observe,
 * the daemon's own path, then prints the recorded "STATE REASON" (and the rule
 * id when a rule decided). Until abqd exists this is how devices enter the
 * registry in the CLI tests. Exit 0 on success, 1 when refused or the store
 * fails, 2 on usage errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "core/registry.h"
#include "lib/util.h"

#define USAGE                                                                                      \
	"usage: abq-simulate [-c CONF] seen ACCOUNT DEVICE_ID [type T] [model M] [os O] "          \
	"[ua UA] [imei I] [lang L] [eas V] [address A] [command C] [friendly F] [phone P] "        \
	"[operator O]"

/* Which field of the device each keyword fills. */
static char **
field_of(struct abq_device *d, const char *kw)
{
	static const struct {
		const char *kw;
		size_t offset;
	} fields[] = {
	    {"type", offsetof(struct abq_device, device_type)},
	    {"model", offsetof(struct abq_device, model)},
	    {"os", offsetof(struct abq_device, os)},
	    {"ua", offsetof(struct abq_device, user_agent)},
	    {"imei", offsetof(struct abq_device, imei)},
	    {"lang", offsetof(struct abq_device, os_language)},
	    {"eas", offsetof(struct abq_device, eas_version)},
	    {"address", offsetof(struct abq_device, last_address)},
	    {"command", offsetof(struct abq_device, last_command)},
	    {"friendly", offsetof(struct abq_device, friendly_name)},
	    {"phone", offsetof(struct abq_device, phone_number)},
	    {"operator", offsetof(struct abq_device, mobile_operator)},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcasecmp(fields[i].kw, kw) == 0)
			return (char **)((char *)d + fields[i].offset);
	return NULL;
}

/* Parse the words, observe the device, print its recorded state. */
int
main(int argc, char **argv)
{
	const char *config_arg = NULL;
	struct abq_device seen = {0}, out = {0};
	struct abq_outcome o = {0};
	struct abq_config *config = NULL;
	struct abq_store *store = NULL;
	struct abq_ctx ctx = {0};
	char *errmsg = NULL;
	const char *err = NULL;
	int i = 1, status = 1;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		config_arg = argv[2];
		i = 3;
	}
	if (argc - i < 3 || strcmp(argv[i], "seen") != 0) {
		fprintf(stderr, "abq-simulate: %s\n", USAGE);
		return 2;
	}
	seen.account = account_normalize(argv[i + 1]);
	if (seen.account == NULL) {
		fprintf(stderr, "abq-simulate: '%s' is not a valid account\n", argv[i + 1]);
		return 1;
	}
	seen.device_id = xstrdup(argv[i + 2]);
	for (i += 3; i < argc; i += 2) {
		char **field = field_of(&seen, argv[i]);
		if (field == NULL || i + 1 >= argc) {
			fprintf(stderr, "abq-simulate: %s '%s'; %s\n",
			        field == NULL ? "unexpected word" : "missing value after", argv[i],
			        USAGE);
			abq_device_clear(&seen);
			return 2;
		}
		free(*field);
		*field = xstrdup(argv[i + 1]);
	}

	config = abq_config_load(abq_config_path(config_arg), false, &errmsg);
	if (config == NULL) {
		fprintf(stderr, "abq-simulate: %s\n", errmsg);
		goto out;
	}
	store = abq_store_open(config->store_url, config->base_dir, 0, &err);
	if (store == NULL ||
	    abq_store_accounts_canonicalize(store, config->eas_default_domain, NULL, &err) < 0) {
		fprintf(stderr, "abq-simulate: %s\n", err);
		goto out;
	}
	/* The account as abqd records it: canonical under [eas] default_domain. */
	{
		char *canon = account_canonical(seen.account, config->eas_default_domain);

		if (canon == NULL) {
			fprintf(stderr, "abq-simulate: '%s' is not a valid account\n",
			        seen.account);
			goto out;
		}
		free(seen.account);
		seen.account = canon;
	}
	ctx.store = store;
	ctx.default_domain = config->eas_default_domain;
	ctx.who = ABQ_WHO_DAEMON;
	ctx.now = abq_now();
	seen.first_seen = seen.last_seen = ctx.now;
	if (abq_registry_observe(&ctx, &seen, &out, &o, &errmsg) != 0) {
		fprintf(stderr, "abq-simulate: %s\n", errmsg != NULL ? errmsg : "observe failed");
		goto out;
	}
	if (out.rule_id != 0)
		printf("%s %s %" PRId64 "\n", abq_state_name(out.state),
		       abq_reason_name(out.reason), out.rule_id);
	else
		printf("%s %s\n", abq_state_name(out.state), abq_reason_name(out.reason));
	status = 0;
out:
	free(errmsg);
	abq_outcome_clear(&o);
	abq_device_clear(&seen);
	abq_device_clear(&out);
	if (store != NULL)
		abq_store_close(&store);
	if (config != NULL)
		abq_config_free(&config);
	return status;
}
