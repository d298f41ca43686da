/*
 * bench_engine.c: how fast the engine decides, the way the daemon asks.
 *
 * Builds a policy with 100 global rules (40 exact, 30 glob, 30 regex, spread
 * over the five characteristics, with the patterns administrators write),
 * a few domain rules, modes at every scope and list entries, and 100,000
 * synthetic devices with varied facts. Then it times full evaluations
 * (abq_policy_inputs + abq_decide) over all devices, several passes, and
 * separately over the devices no rule matches and those a rule matches.
 *
 * Not a test: it asserts nothing. Lines of the form "name value" are for
 * scripts (bench/run.sh keeps them in bench/out/results.txt):
 *   engine_eval_ns 312.4
 *
 * usage: bench_engine [DEVICES [PASSES]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "lib/util.h"

#define NOW      1764309314 /* a fixed "now": results do not depend on the clock */
#define NDOMAINS 20

/* A small deterministic generator (xorshift64*), so every run sees the same devices. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* Next pseudo-random number. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* A pseudo-random index below n. */
static size_t
pick(size_t n)
{
	return (size_t)(rng() % n);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One synthetic device and the account it syncs for. */
struct device {
	char *account;
	struct abq_facts facts;
	enum abq_reason reason; /* from a first pass: which group it belongs to */
};

/* Kinds of phones in the fleet: type, model, OS and user agent templates. */
struct kind {
	const char *type;
	const char *models[4];
	const char *oses[4];
};

static const struct kind kinds[] = {
    {"iPhone",
     {"iPhone15,2", "iPhone14,7", "iPhone16,1", "iPhone12,1"},
     {"iOS 17.5 21F79", "iOS 16.7 20H19", "iOS 18.1 22B83", "iOS 15.8 19H370"}},
    {"iPad",
     {"iPad13,4", "iPad14,1", "iPad7,11", "iPad8,1"},
     {"iPadOS 17.4", "iPadOS 16.2", "iPadOS 15.1", "iPadOS 18.0"}},
    {"Android",
     {"SM-G991B", "SM-A536B", "Pixel 8", "moto g(60)"},
     {"Android 14", "Android 13", "Android 11", "Android 9"}},
    {"SAMSUNGSMG991B",
     {"SM-G991B", "SM-S918B", "SM-G973F", "SM-N986B"},
     {"Android 14.0.0", "Android 13.0.0", "Android 12.0.0", "Android 10.0.0"}},
    {"Outlook",
     {"Outlook for iOS and Android", "iPhone15,3", "SM-G991B", "Pixel 7"},
     {"iOS 17.5", "Android 13", "iOS 16.1", "Android 12"}},
    {"WindowsMail",
     {"Surface Pro 9", "Virtual", "HP EliteBook 840", "ThinkPad X1"},
     {"Windows 11", "Windows 10", "Windows 11 22H2", "Windows 10 21H2"}},
    {"Nine",
     {"Pixel 6", "SM-A546B", "Nokia G21", "Xperia 10 IV"},
     {"Android 13", "Android 12", "Android 14", "Android 11"}},
};

/* The 100 global rules: 40 exact, 30 glob, 30 regex. */
static const struct {
	enum abq_charac c;
	enum abq_match m;
	const char *pattern;
	enum abq_state level;
} rule_table[] = {
    /* exact (40): 24 DeviceIds, 6 types, 4 models, 3 OSes, 3 user agents */
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "WindowsMail", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "Nine", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "BlackBerry", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "PocketPC", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "SmartPhone", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_EXACT, "WP8", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "Virtual", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "Nokia G21", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "Xperia 10 IV", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_EXACT, "Galaxy Fold", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "Android 9", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "iOS 12.5.7", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_EXACT, "Windows 7", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_EXACT, "TouchDown/8.5", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_EXACT, "Evolution/3.40", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_EXACT, "Thunderbird/115.0", ABQ_STATE_QUARANTINED},
    /* (the 24 DeviceId exact rules are generated: see build_rules) */
    /* glob (30) */
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "TEST*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "LAB-\?\?\?-*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "KIOSK[0-9]*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_GLOB, "*DEADBEEF", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "iPhone*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "SAMSUNGSM-T*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "HTC*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "LG*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_GLOB, "Huawei*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-G9*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "SM-A?5*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "Pixel [6-8]*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "iPhone1[0-3],*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "iPad[5-7],*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "Redmi *", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_GLOB, "ONEPLUS A*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "iOS 1[0-4].*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "Android [4-8]*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "Windows Phone*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "iPadOS 1[0-4]*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "BlackBerry*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_GLOB, "Windows 10 1[5-9]*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "*TouchDown*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "Apple-iPad?,*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "MSFT-WIN-2/*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "BlackBerry*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "*Dalvik/1.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "Nine/3.*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "Android-Mail/2019.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_GLOB, "Microsoft-Server-ActiveSync/*", ABQ_STATE_BLOCKED},
    /* regex (30) */
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "androidc[0-9]{9,10}", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "SEC[0-9A-F]{12}", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "(ApplDNPX|ApplC3|ApplF2)[0-9A-Z]{6,8}",
     ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEID, ABQ_MATCH_REGEX, "BAD[0-9]+", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "SAMSUNG(SM|GT)-?[A-Z]\\d{3,4}[A-Z]?",
     ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "(Windows|WP)(Phone|Mail)?[0-9]*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICETYPE, ABQ_MATCH_REGEX, "Moto(rola)?.*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "^SM-[A-Z]\\d{3}.*$", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "GT-[A-Z]\\d{4}", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "iPhone(8|9|10),\\d+", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "moto [a-z]\\(\\d+\\)", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "(HUAWEI|HONOR) .*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEMODEL, ABQ_MATCH_REGEX, "Lenovo TB-\\w+", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Android 1[0-2](\\.\\d+)*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "iOS (9|1[0-5])\\..*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Windows (XP|Vista|7|8(\\.1)?)", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "iPadOS 1[5-6]\\.\\d+", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "Tizen \\d.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_DEVICEOS, ABQ_MATCH_REGEX, "HarmonyOS.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android/1[0-4].*", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Apple-iPhone1[0-3]C\\d/.*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Outlook-(iOS|Android)/2\\.0", ABQ_STATE_ALLOWED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "SAMSUNG-GT-.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Mozilla/5\\.0 \\(Linux; Android [4-8]\\b.*",
     ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "MSFT-WIN-3/6\\.[0-3]\\..*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Nine/[0-3]\\.\\d+\\.\\d+.*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "TypeApp/\\d+(\\.\\d+)*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "(BlueMail|Spark)/\\d.*", ABQ_STATE_QUARANTINED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "Android-Mail/20(1\\d|20)\\..*", ABQ_STATE_BLOCKED},
    {ABQ_CHAR_USERAGENT, ABQ_MATCH_REGEX, "K-9 Mail/\\d.*", ABQ_STATE_QUARANTINED},
};

#define N_EXACT_IDS   24
#define N_EXACT_TABLE 16

/* The DeviceId of the exact rules: some of the fleet's ids, to be found. */
static char exact_ids[N_EXACT_IDS][40];

/* Fill a policy with the rules: the table, 24 DeviceId exact rules, domain rules. */
static void
build_rules(struct abq_policy *p, size_t *nglobal_r)
{
	struct abq_rule r = {0};
	int64_t id = 1, order = 10;
	size_t exact = 0;

	for (size_t i = 0; i < NELEM(rule_table); i++) {
		/* Interleave the DeviceId exact rules with the rest. */
		if (i % 4 == 0 && exact < N_EXACT_IDS) {
			for (int k = 0; k < 4 && exact < N_EXACT_IDS; k++, exact++) {
				memset(&r, 0, sizeof(r));
				r.id = id++;
				r.order = order;
				order += 10;
				r.charac = ABQ_CHAR_DEVICEID;
				r.match = ABQ_MATCH_EXACT;
				r.pattern = exact_ids[exact];
				r.level = exact % 2 ? ABQ_STATE_BLOCKED : ABQ_STATE_ALLOWED;
				abq_policy_add_rule(p, &r);
			}
		}
		memset(&r, 0, sizeof(r));
		r.id = id++;
		r.order = order;
		order += 10;
		r.charac = rule_table[i].c;
		r.match = rule_table[i].m;
		r.pattern = (char *)rule_table[i].pattern;
		r.level = rule_table[i].level;
		abq_policy_add_rule(p, &r);
	}
	*nglobal_r = (size_t)(id - 1);
	/* Two domains have rules of their own (tried before the global ones). */
	static const char *const drules[] = {"Android", "iPad", "SM-S9*", "Pixel 8"};
	for (int d = 0; d < 2; d++) {
		char domain[32];
		snprintf(domain, sizeof(domain), "dom%d.example", d);
		for (size_t i = 0; i < NELEM(drules); i++) {
			memset(&r, 0, sizeof(r));
			r.id = id++;
			r.order = (int64_t)i;
			r.charac = i < 2 ? ABQ_CHAR_DEVICETYPE : ABQ_CHAR_DEVICEMODEL;
			r.match = i == 2 ? ABQ_MATCH_GLOB : ABQ_MATCH_EXACT;
			r.pattern = (char *)drules[i];
			r.level = d == 0 ? ABQ_STATE_ALLOWED : ABQ_STATE_BLOCKED;
			r.domain = domain;
			abq_policy_add_rule(p, &r);
		}
	}
}

/* A fresh DeviceId in one of the shapes phones use. */
static char *
make_device_id(const struct kind *k)
{
	static const char hex[] = "0123456789ABCDEF";
	char buf[40];
	size_t len = 0;

	if (k->type[0] == 'i') {
		len = (size_t)snprintf(buf, sizeof(buf), "Appl");
		for (int i = 0; i < 12; i++)
			buf[len++] = hex[pick(16)];
	} else if (pick(3) == 0) {
		len = (size_t)snprintf(buf, sizeof(buf), "androidc%010u",
		                       (unsigned)pick(4000000000u));
	} else {
		for (int i = 0; i < 32; i++)
			buf[len++] = hex[pick(16)];
	}
	buf[len] = '\0';
	return xstrdup(buf);
}

/* The user agent a phone of kind k sends, in that client's own shape. */
static void
make_user_agent(char *buf, size_t size, const struct kind *k, const char *model, const char *os,
                int build)
{
	const char *v = os != NULL && strchr(os, ' ') != NULL ? strchr(os, ' ') + 1 : "13";
	switch (k - kinds) {
	case 0:
	case 1:
		snprintf(buf, size, "Apple-%s/%d.258", model, 2100 + build);
		break;
	case 2:
		snprintf(buf, size, "Android/%.2s-EAS-2.0 (%s) Mail/%d", v, model, build);
		break;
	case 3:
		snprintf(buf, size, "SAMSUNG-%s/%d.403", model, build);
		break;
	case 4:
		snprintf(buf, size, "Outlook-%s/2.%d",
		         os != NULL && os[0] == 'i' ? "iOS" : "Android",
		         build % 3 == 0 ? 0 : build);
		break;
	case 5:
		snprintf(buf, size, "MSFT-WIN-3/10.0.%d", 19000 + build);
		break;
	default:
		snprintf(buf, size, "Nine/4.9.%d (%s)", build, model);
		break;
	}
}

/* Make n devices over n/2 accounts in NDOMAINS domains. */
static struct device *
make_devices(size_t n)
{
	struct device *devs = xcalloc(n, sizeof(*devs));
	char buf[256];

	for (size_t i = 0; i < n; i++) {
		const struct kind *k = &kinds[pick(NELEM(kinds))];
		const char *model = k->models[pick(4)];
		struct device *d = &devs[i];

		snprintf(buf, sizeof(buf), "user%zu@dom%zu.example", i / 2, (i / 2) % NDOMAINS);
		d->account = xstrdup(buf);
		d->facts.device_id = make_device_id(k);
		d->facts.device_type = xstrdup(k->type);
		/* 5% have not reported model and OS yet (Discovery candidates). */
		bool unreported = pick(20) == 0;
		d->facts.model = unreported ? NULL : xstrdup(model);
		d->facts.os = unreported ? NULL : xstrdup(k->oses[pick(4)]);
		make_user_agent(buf, sizeof(buf), k, model, d->facts.os, (int)(100 + pick(900)));
		/* Apple's user agents name the model without the comma. */
		for (char *c = buf; *c != '\0'; c++)
			if (*c == ',')
				*c = 'C';
		d->facts.user_agent = xstrdup(buf);
		d->facts.first_seen = NOW - (int64_t)pick(3600);
	}
	for (size_t e = 0; e < N_EXACT_IDS; e++)
		snprintf(exact_ids[e], sizeof(exact_ids[e]), "%s", devs[pick(n)].facts.device_id);
	return devs;
}

/* Free the devices. */
static void
free_devices(struct device *devs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(devs[i].account);
		free((char *)devs[i].facts.device_id);
		free((char *)devs[i].facts.device_type);
		free((char *)devs[i].facts.model);
		free((char *)devs[i].facts.os);
		free((char *)devs[i].facts.user_agent);
	}
	free(devs);
}

/* Modes at every scope and list entries for 5% of the devices. */
static void
build_attrs_and_entries(struct abq_policy *p, const struct device *devs, size_t n)
{
	struct abq_attr a = {0};
	char *err = NULL;
	char target[64];

	a.scope = ABQ_SCOPE_GLOBAL;
	a.name = "abqMode";
	a.value = "Interactive";
	if (abq_policy_add_attr(p, &a, &err) != 0)
		fatalx("%s", err);
	a.name = "abqMaxDevicesPerAccount";
	a.value = "10";
	if (abq_policy_add_attr(p, &a, &err) != 0)
		fatalx("%s", err);
	for (int d = 0; d < NDOMAINS; d += 3) {
		snprintf(target, sizeof(target), "dom%d.example", d);
		a.scope = ABQ_SCOPE_DOMAIN;
		a.target = target;
		a.name = "abqMode";
		a.value = d % 2 ? "Strict" : "Permissive";
		if (abq_policy_add_attr(p, &a, &err) != 0)
			fatalx("%s", err);
	}
	for (size_t i = 0; i < n; i += 50) {
		a.scope = ABQ_SCOPE_ACCOUNT;
		a.target = devs[i].account;
		a.name = "abqDiscoveryTimeout";
		a.value = "1h";
		if (abq_policy_add_attr(p, &a, &err) != 0)
			fatalx("%s", err);
	}
	for (size_t i = 0; i < n; i += 20) {
		struct abq_entry e = {0};
		e.device_id = (char *)devs[i].facts.device_id;
		e.account = i % 40 ? devs[i].account : NULL;
		e.state = i % 60 ? ABQ_STATE_ALLOWED : ABQ_STATE_BLOCKED;
		abq_policy_add_entry(p, &e);
	}
}

/* Monotonic nanoseconds. */
static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One full evaluation, the daemon's way; returns something to sum. */
static unsigned
evaluate(const struct abq_policy *p, const struct device *d, struct abq_verdict *v)
{
	struct abq_inputs in;

	abq_policy_inputs(p, d->account, &d->facts, NOW, &in);
	in.limit_applies = true;
	in.devices_ahead = 1;
	abq_decide(&in, v);
	return (unsigned)v->state * 7u + (unsigned)v->reason + (unsigned)v->rule_id;
}

/*
 * Time `passes` passes over the devices whose group matches (reason NONE: all)
 * and return the best pass's ns per evaluation: the best pass is the one least
 * disturbed by the rest of the machine.
 */
static double
time_group(const struct abq_policy *p, const struct device *devs, const size_t *idx, size_t n,
           int passes, unsigned *sink, double *mean_r)
{
	double best = 0, total = 0;
	struct abq_verdict v;

	for (int pass = 0; pass < passes; pass++) {
		double t0 = now_ns();
		for (size_t i = 0; i < n; i++)
			*sink += evaluate(p, &devs[idx[i]], &v);
		double per = (now_ns() - t0) / (double)n;
		total += per;
		if (pass == 0 || per < best)
			best = per;
	}
	if (mean_r != NULL)
		*mean_r = total / passes;
	return best;
}

/* Build the policy and devices, time the groups, print the results. */
int
main(int argc, char **argv)
{
	long long ndev = 100000, passes = 5;
	const char *errstr;
	char *err = NULL;
	size_t nglobal;
	unsigned sink = 0;

	if ((argc > 1 && parse_int(argv[1], 1, 100000000, &ndev, &errstr) != 0) ||
	    (argc > 2 && parse_int(argv[2], 1, 1000, &passes, &errstr) != 0)) {
		fprintf(stderr, "usage: bench_engine [DEVICES [PASSES]]\n");
		return 2;
	}
	size_t n = (size_t)ndev;
	struct device *devs = make_devices(n);
	struct abq_policy *p = abq_policy_new("dom0.example");
	build_rules(p, &nglobal);
	build_attrs_and_entries(p, devs, n);
	double t0 = now_ns();
	if (abq_policy_finish(p, &err) != 0)
		fatalx("%s", err);
	double finish_ms = (now_ns() - t0) / 1e6;
	const struct abq_ruleset *grs = abq_policy_rules(p, "x@nowhere.example");

	/* A first pass sorts devices by what decides them. */
	size_t *all = xcalloc(n, sizeof(size_t)), *nomatch = xcalloc(n, sizeof(size_t)),
	       *match = xcalloc(n, sizeof(size_t));
	size_t nnomatch = 0, nmatch = 0, counts[ABQ_REASON_DISCOVERY + 1] = {0};
	for (size_t i = 0; i < n; i++) {
		struct abq_verdict v;
		sink += evaluate(p, &devs[i], &v);
		all[i] = i;
		devs[i].reason = v.reason;
		counts[v.reason]++;
		if (v.reason == ABQ_REASON_MODE)
			nomatch[nnomatch++] = i;
		else if (v.reason == ABQ_REASON_RULE)
			match[nmatch++] = i;
	}

	/* BENCH_ONLY=nomatch|match: time only that group, many passes (for perf). */
	const char *only = getenv("BENCH_ONLY");
	if (only != NULL) {
		bool no = strcmp(only, "nomatch") == 0;
		double ns = time_group(p, devs, no ? nomatch : match, no ? nnomatch : nmatch,
		                       (int)passes * 20, &sink, NULL);
		printf("engine_eval_ns_%s %.1f\n", only, ns);
		goto out;
	}
	double mean_all, mean_no, mean_match;
	double ns_all = time_group(p, devs, all, n, (int)passes, &sink, &mean_all);
	double ns_no = time_group(p, devs, nomatch, nnomatch, (int)passes, &sink, &mean_no);
	double ns_match = time_group(p, devs, match, nmatch, (int)passes, &sink, &mean_match);

	printf("engine: %zu devices, %zu global rules (%zu in the largest domain set, screens on "
	       "0x%x), %lld passes: %.1f ns per evaluation (best pass; mean %.1f), %.2f M "
	       "evaluations/s\n",
	       n, nglobal, abq_ruleset_count(abq_policy_rules(p, "x@dom0.example")),
	       abq_ruleset_screened(grs), passes, ns_all, mean_all, 1e3 / ns_all);
	printf("  decided by: rule %zu, mode %zu, entry %zu, discovery %zu, limit %zu, "
	       "disabled %zu\n",
	       counts[ABQ_REASON_RULE], counts[ABQ_REASON_MODE], counts[ABQ_REASON_INDIVIDUAL],
	       counts[ABQ_REASON_DISCOVERY], counts[ABQ_REASON_LIMIT], counts[ABQ_REASON_DISABLED]);
	printf("  no rule matches (%zu devices): %.1f ns; a rule matches (%zu devices): %.1f ns\n",
	       nnomatch, ns_no, nmatch, ns_match);
	printf("engine_eval_ns %.1f\n", ns_all);
	printf("engine_eval_ns_mean %.1f\n", mean_all);
	printf("engine_evals_per_s %.0f\n", 1e9 / ns_all);
	printf("engine_eval_ns_nomatch %.1f\n", ns_no);
	printf("engine_eval_ns_match %.1f\n", ns_match);
	printf("engine_policy_finish_ms %.2f\n", finish_ms);
	printf("engine_checksum %u\n", sink); /* the same on every run: a sanity check */
out:

	free(all);
	free(nomatch);
	free(match);
	abq_policy_free(&p);
	free_devices(devs, n);
	abq_engine_thread_done();
	return 0;
}
