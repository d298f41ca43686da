/*
 * test_provision.c: the provisioning policy: the key table against the
 * Provision code page, the validation of values, the resolution account >
 * domain > global > default, the policy version, the EASProvisionDoc each
 * protocol version gets (decoded again with the codec), and values written
 * through the registry reaching the daemon's view.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/registry.h"
#include "core/view.h"
#include "eas/provision.h"
#include "eas/wbxml.h"
#include "lib/provision.h"
#include "lib/util.h"

/* Validate value for key; returns the canonical form (static) or NULL, message in *err. */
static const char *
canon(const char *key, const char *value, char **err)
{
	static char buf[512];
	char *c = NULL;

	*err = NULL;
	if (abq_prov_validate(abq_prov_find(key), value, &c, err) != 0)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", c);
	free(c);
	return buf;
}

/* Every key is an element of the Provision code page under its own name. */
static void
test_table_matches_code_page(void **state)
{
	(void)state;
	size_t sent = 0;
	for (size_t i = 0; i < ABQ_PROV_ID_COUNT; i++) {
		const struct abq_prov_def *d = abq_prov_by_id((enum abq_prov_id)i);
		assert_non_null(d);
		assert_ptr_equal(abq_prov_find(d->name), d);
		assert_int_equal(abq_prov_id_of(d), i);
		char *c = NULL, *err = NULL;
		assert_int_equal(abq_prov_validate(d, d->default_value, &c, &err), 0);
		assert_string_equal(c, d->default_value); /* defaults are canonical */
		free(c);
		if (d->token == 0) {
			assert_string_equal(d->name, "AllowNonProvisionableDevices");
			continue;
		}
		sent++;
		assert_string_equal(wbxml_tag_name(WBXML_PAGE_PROVISION, d->token), d->name);
		assert_true(d->since == 120 || d->since == 121);
	}
	assert_int_equal(sent, 42);
	assert_null(abq_prov_by_id(ABQ_PROV_ID_COUNT));
	/* Found whatever the case, and by the store's name. */
	assert_ptr_equal(abq_prov_find("mindevicepasswordlength"),
	                 abq_prov_by_id(ABQ_PROV_MIN_PASSWORD_LENGTH));
	assert_ptr_equal(abq_prov_find("prov:AllowCamera"), abq_prov_by_id(ABQ_PROV_ALLOW_CAMERA));
	assert_null(abq_prov_find("abqMode"));
	assert_non_null(strstr(abq_prov_names(), "AllowNonProvisionableDevices"));
}

/* Each type takes what MS-ASPROV allows and says what it takes when it refuses. */
static void
test_validation(void **state)
{
	char *err;
	(void)state;

	assert_string_equal(canon("DevicePasswordEnabled", "TRUE", &err), "1");
	assert_string_equal(canon("DevicePasswordEnabled", "off", &err), "0");
	assert_null(canon("DevicePasswordEnabled", "2", &err));
	assert_string_equal(err, "DevicePasswordEnabled takes 1 or 0 (also TRUE/FALSE, yes/no, "
	                         "on/off), not '2'");
	free(err);
	assert_null(canon("AllowCamera", "none", &err)); /* not optional */
	free(err);
	assert_null(canon("AllowCamera", "", &err));
	assert_string_equal(err, "AllowCamera needs a value");
	free(err);

	assert_string_equal(canon("MinDevicePasswordLength", "6", &err), "6");
	assert_string_equal(canon("MinDevicePasswordLength", "NONE", &err), "none");
	assert_null(canon("MinDevicePasswordLength", "17", &err));
	assert_string_equal(err, "MinDevicePasswordLength takes a whole number from 1 to 16 or "
	                         "none (not sent); '17' is too large");
	free(err);
	assert_null(canon("MaxDevicePasswordFailedAttempts", "3", &err));
	assert_non_null(strstr(err, "from 4 to 16"));
	free(err);
	assert_null(canon("MaxInactivityTimeDeviceLock", "ten", &err));
	assert_non_null(strstr(err, "'ten' is not a number"));
	free(err);
	assert_string_equal(canon("MaxEmailBodyTruncationSize", "-1", &err), "-1");
	assert_string_equal(canon("MaxEmailBodyTruncationSize", "0", &err), "0");
	assert_null(canon("MaxEmailBodyTruncationSize", "-2", &err));
	assert_non_null(strstr(err, "from -1 to 2147483647"));
	free(err);

	assert_string_equal(canon("AllowBluetooth", "1", &err), "1");
	assert_null(canon("AllowBluetooth", "3", &err));
	assert_string_equal(err, "AllowBluetooth takes 0 (disabled), 1 (hands-free only) or 2 "
	                         "(allowed), not '3'");
	free(err);
	assert_string_equal(canon("MaxCalendarAgeFilter", "04", &err), "4");
	assert_null(canon("MaxCalendarAgeFilter", "3", &err));
	assert_non_null(strstr(err, "0 (all), 4 (2 weeks), 5 (1 month), 6 (3 months) or 7"));
	free(err);
	assert_string_equal(canon("MaxEmailAgeFilter", "5", &err), "5");
	assert_null(canon("MaxEmailAgeFilter", "6", &err));
	free(err);
	assert_string_equal(canon("RequireEncryptionSMIMEAlgorithm", "none", &err), "none");
	assert_null(canon("RequireSignedSMIMEAlgorithm", "2", &err));
	assert_non_null(strstr(err, "0 (SHA1) or 1 (MD5), or none (not sent)"));
	free(err);

	assert_string_equal(
	    canon("UnapprovedInROMApplicationList", " Calc.exe ,,Solitaire, ", &err),
	    "Calc.exe, Solitaire");
	assert_string_equal(canon("ApprovedApplicationList", "", &err), "");
	assert_null(canon("ApprovedApplicationList", "ab cd", &err));
	assert_non_null(strstr(err, "Hash values separated by commas"));
	assert_non_null(strstr(err, "'ab cd' is not one"));
	free(err);
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(canon("ApprovedApplicationList", big, &err));
	free(err);
}

/* A policy holding values at each scope, as the store would give them. */
static struct abq_policy *
scoped_policy(void)
{
	struct abq_policy *p = abq_policy_new("example.com");
	const struct abq_attr rows[] = {
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "prov:DevicePasswordEnabled", .value = "1"},
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "prov:MinDevicePasswordLength", .value = "4"},
	    {.scope = ABQ_SCOPE_DOMAIN,
	     .target = "example.com",
	     .name = "prov:MinDevicePasswordLength",
	     .value = "6"},
	    {.scope = ABQ_SCOPE_ACCOUNT,
	     .target = "alice@example.com",
	     .name = "prov:AllowCamera",
	     .value = "0"},
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "abqMode", .value = "Interactive"},
	};
	char *err = NULL;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(abq_policy_add_attr(p, &rows[i], &err), 0);
		assert_null(err);
	}
	/* A bad stored value is refused like a bad attribute. */
	struct abq_attr bad = {
	    .scope = ABQ_SCOPE_GLOBAL, .name = "prov:AllowBluetooth", .value = "7"};
	assert_int_equal(abq_policy_add_attr(p, &bad, &err), -1);
	assert_non_null(strstr(err, "AllowBluetooth takes"));
	free(err);
	return p;
}

/* account > domain > global > default, with the source of each value. */
static void
test_effective(void **state)
{
	struct abq_policy *p = scoped_policy();
	struct abq_prov_policy e;
	(void)state;

	abq_policy_provisioning(p, ABQ_SCOPE_ACCOUNT, "alice@example.com", &e);
	assert_int_equal(e.num[ABQ_PROV_ALLOW_CAMERA], 0);
	assert_int_equal(e.from[ABQ_PROV_ALLOW_CAMERA], ABQ_PROV_FROM_ACCOUNT);
	assert_int_equal(e.num[ABQ_PROV_MIN_PASSWORD_LENGTH], 6);
	assert_string_equal(e.text[ABQ_PROV_MIN_PASSWORD_LENGTH], "6");
	assert_int_equal(e.from[ABQ_PROV_MIN_PASSWORD_LENGTH], ABQ_PROV_FROM_DOMAIN);
	assert_int_equal(e.num[ABQ_PROV_DEVICE_PASSWORD_ENABLED], 1);
	assert_int_equal(e.from[ABQ_PROV_DEVICE_PASSWORD_ENABLED], ABQ_PROV_FROM_GLOBAL);
	assert_int_equal(e.num[ABQ_PROV_MAX_INACTIVITY_LOCK], ABQ_PROV_NONE);
	assert_int_equal(e.from[ABQ_PROV_MAX_INACTIVITY_LOCK], ABQ_PROV_FROM_DEFAULT);
	assert_int_equal(e.num[ABQ_PROV_ALLOW_NON_PROVISIONABLE], 1);

	/* A bare account is in the default domain; the attributes are untouched. */
	abq_policy_provisioning(p, ABQ_SCOPE_ACCOUNT, "bob", &e);
	assert_int_equal(e.num[ABQ_PROV_MIN_PASSWORD_LENGTH], 6);
	assert_int_equal(e.num[ABQ_PROV_ALLOW_CAMERA], 1);
	assert_int_equal(abq_policy_mode(p, "bob"), ABQ_MODE_INTERACTIVE);

	abq_policy_provisioning(p, ABQ_SCOPE_ACCOUNT, "carol@other.org", &e);
	assert_int_equal(e.num[ABQ_PROV_MIN_PASSWORD_LENGTH], 4);
	assert_int_equal(e.from[ABQ_PROV_MIN_PASSWORD_LENGTH], ABQ_PROV_FROM_GLOBAL);

	abq_policy_provisioning(p, ABQ_SCOPE_DOMAIN, "EXAMPLE.com", &e);
	assert_int_equal(e.from[ABQ_PROV_MIN_PASSWORD_LENGTH], ABQ_PROV_FROM_DOMAIN);
	assert_int_equal(e.num[ABQ_PROV_ALLOW_CAMERA], 1);
	abq_policy_provisioning(p, ABQ_SCOPE_GLOBAL, NULL, &e);
	assert_int_equal(e.num[ABQ_PROV_MIN_PASSWORD_LENGTH], 4);
	abq_policy_free(&p);
}

/* The version follows the values, not where they were set; never 0. */
static void
test_version_and_imposes(void **state)
{
	struct abq_prov_policy d, e, f;
	(void)state;

	abq_prov_defaults(&d);
	assert_false(abq_prov_imposes(&d));
	assert_int_not_equal(abq_prov_version(&d), 0);
	/* Stable across runs and nodes: a fixed key, the canonical values. */
	abq_prov_defaults(&e);
	assert_int_equal(abq_prov_version(&d), abq_prov_version(&e));

	e.num[ABQ_PROV_MIN_PASSWORD_LENGTH] = 6;
	e.text[ABQ_PROV_MIN_PASSWORD_LENGTH] = "6";
	e.from[ABQ_PROV_MIN_PASSWORD_LENGTH] = ABQ_PROV_FROM_DOMAIN;
	assert_true(abq_prov_imposes(&e));
	assert_int_not_equal(abq_prov_version(&d), abq_prov_version(&e));

	f = e;
	f.from[ABQ_PROV_MIN_PASSWORD_LENGTH] = ABQ_PROV_FROM_GLOBAL;
	assert_int_equal(abq_prov_version(&e), abq_prov_version(&f));
	f.text[ABQ_PROV_MIN_PASSWORD_LENGTH] = "7";
	assert_int_not_equal(abq_prov_version(&e), abq_prov_version(&f));

	/* A default set explicitly imposes nothing. */
	f = d;
	f.from[ABQ_PROV_ALLOW_CAMERA] = ABQ_PROV_FROM_ACCOUNT;
	assert_false(abq_prov_imposes(&f));
	assert_int_equal(abq_prov_version(&d), abq_prov_version(&f));

	/* AllowNonProvisionableDevices asks nothing of a phone: it imposes nothing alone. */
	f = d;
	f.num[ABQ_PROV_ALLOW_NON_PROVISIONABLE] = 0;
	f.text[ABQ_PROV_ALLOW_NON_PROVISIONABLE] = "0";
	assert_false(abq_prov_imposes(&f));
	f.text[ABQ_PROV_MIN_PASSWORD_LENGTH] = "6";
	assert_true(abq_prov_imposes(&f));

	/* The Policy Status a phone acknowledges with, in words. */
	assert_string_equal(abq_prov_status_text(0), "never reported");
	assert_string_equal(abq_prov_status_text(1), "applied");
	assert_string_equal(abq_prov_status_text(2), "partially applied");
	assert_string_equal(abq_prov_status_text(3), "not applied");
	assert_string_equal(abq_prov_status_text(4), "externally managed");
	assert_string_equal(abq_prov_status_text(5), "unknown");
	assert_string_equal(abq_prov_status_text(-1), "unknown");
}

/* Build Provision/Data/EASProvisionDoc for p at version v, encode, decode again. */
static struct wbxml_doc *
doc_at(const struct abq_prov_policy *p, int v, struct wbxml_node **epd_r)
{
	struct wbxml_doc *b = wbxml_doc_new(), *d = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	struct wbxml_node *data = wbxml_addn(wbxml_addn_root(b, "Provision:Provision"), "Data");
	assert_non_null(eas_policy_add_doc(data, p, v));
	assert_int_equal(wbxml_encode(b, &buf, &len, NULL), WBXML_OK);
	assert_int_equal(wbxml_decode(buf, len, NULL, &d, NULL), WBXML_OK);
	free(buf);
	wbxml_doc_free(&b);
	*epd_r = wbxml_find(wbxml_doc_root(d), "Data/EASProvisionDoc");
	assert_non_null(*epd_r);
	return d;
}

/* What a 12.0, 12.1, 14.1 and 16.1 phone finds in the EASProvisionDoc. */
static void
test_wbxml_per_version(void **state)
{
	struct abq_policy *p = scoped_policy();
	struct abq_attr more[] = {
	    {.scope = ABQ_SCOPE_DOMAIN,
	     .target = "example.com",
	     .name = "prov:RequireDeviceEncryption",
	     .value = "1"},
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "prov:ApprovedApplicationList", .value = "h1, h2"},
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "prov:AllowNonProvisionableDevices", .value = "0"},
	    {.scope = ABQ_SCOPE_GLOBAL, .name = "prov:MaxEmailBodyTruncationSize", .value = "-1"},
	};
	struct abq_prov_policy e;
	char *err = NULL;
	(void)state;

	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		assert_int_equal(abq_policy_add_attr(p, &more[i], &err), 0);
	abq_policy_provisioning(p, ABQ_SCOPE_ACCOUNT, "alice@example.com", &e);

	static const int versions[] = {120, 121, 141, 161};
	for (size_t i = 0; i < 4; i++) {
		struct wbxml_node *epd;
		struct wbxml_doc *d = doc_at(&e, versions[i], &epd);
		bool v121 = versions[i] >= 121;
		/* 12.0 and later */
		assert_string_equal(wbxml_find_text(epd, "DevicePasswordEnabled"), "1");
		assert_string_equal(wbxml_find_text(epd, "MinDevicePasswordLength"), "6");
		assert_string_equal(wbxml_find_text(epd, "AllowSimpleDevicePassword"), "1");
		/* none: not sent at any version */
		assert_null(wbxml_find(epd, "MaxInactivityTimeDeviceLock"));
		assert_null(wbxml_find(epd, "DevicePasswordHistory"));
		/* 12.1 and later only */
		if (v121) {
			assert_string_equal(wbxml_find_text(epd, "AllowCamera"), "0");
			assert_string_equal(wbxml_find_text(epd, "RequireDeviceEncryption"), "1");
			assert_string_equal(wbxml_find_text(epd, "MaxEmailBodyTruncationSize"),
			                    "-1");
			assert_string_equal(wbxml_find_text(epd, "AllowBluetooth"), "2");
			struct wbxml_node *l = wbxml_find(epd, "ApprovedApplicationList");
			assert_non_null(l);
			assert_string_equal(wbxml_text(l->first_child), "h1");
			assert_string_equal(wbxml_text(l->first_child->next), "h2");
			assert_null(l->first_child->next->next);
		} else {
			assert_null(wbxml_find(epd, "AllowCamera"));
			assert_null(wbxml_find(epd, "RequireDeviceEncryption"));
			assert_null(wbxml_find(epd, "MaxEmailBodyTruncationSize"));
			assert_null(wbxml_find(epd, "ApprovedApplicationList"));
		}
		/* An empty list is left out. */
		assert_null(wbxml_find(epd, "UnapprovedInROMApplicationList"));
		/* Elements in table order, each once. */
		int last = -1;
		size_t n = 0;
		for (struct wbxml_node *c = epd->first_child; c != NULL; c = c->next, n++) {
			const struct abq_prov_def *def = abq_prov_find(c->name);
			assert_non_null(def);
			assert_true((int)abq_prov_id_of(def) > last);
			last = (int)abq_prov_id_of(def);
		}
		assert_int_equal(n, v121 ? 32 : 6);
		wbxml_doc_free(&d);
	}
	abq_policy_free(&p);
}

/* Written through the registry (dry run first), seen by the daemon's view. */
static void
test_registry_to_view(void **state)
{
	char dir[] = "/tmp/abq-prov-XXXXXX";
	const char *serr = NULL;
	char *err = NULL;
	struct abq_outcome o = {0};
	struct abq_prov_policy e;
	(void)state;

	assert_non_null(mkdtemp(dir));
	char *url = xasprintf("sqlite:%s/abqd.db", dir);
	struct abq_store *s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &serr);
	assert_non_null(s);
	struct abq_ctx c = {
	    .store = s, .default_domain = "example.com", .who = "admin", .now = 1800000000};
	struct abq_view *v = abq_view_load(s, "example.com", &err);
	assert_non_null(v);
	abq_view_provisioning(v, "alice@example.com", &e);
	uint32_t before = abq_prov_version(&e);

	c.dry_run = true;
	assert_int_equal(abq_registry_prov_set(&c, ABQ_SCOPE_DOMAIN, "Example.COM",
	                                       "MinDevicePasswordLength", "6", &o, &err),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, s, NULL, NULL, NULL, &err), 0);
	abq_view_provisioning(v, "alice@example.com", &e);
	assert_int_equal(abq_prov_version(&e), before);

	c.dry_run = false;
	assert_int_equal(abq_registry_prov_set(&c, ABQ_SCOPE_DOMAIN, "Example.COM",
	                                       "mindevicepasswordlength", "6", &o, &err),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, s, NULL, NULL, NULL, &err), 0);
	abq_view_provisioning(v, "alice@example.com", &e);
	assert_int_equal(e.num[ABQ_PROV_MIN_PASSWORD_LENGTH], 6);
	assert_int_equal(e.from[ABQ_PROV_MIN_PASSWORD_LENGTH], ABQ_PROV_FROM_DOMAIN);
	assert_true(abq_prov_imposes(&e));
	assert_int_not_equal(abq_prov_version(&e), before);

	/* Refusals: unknown key, bad value, unsetting what is not set. */
	assert_int_equal(
	    abq_registry_prov_set(&c, ABQ_SCOPE_GLOBAL, NULL, "abqMode", "1", &o, &err), 1);
	assert_non_null(strstr(err, "unknown provisioning key 'abqMode'"));
	free(err);
	assert_int_equal(
	    abq_registry_prov_set(&c, ABQ_SCOPE_GLOBAL, NULL, "MaxEmailAgeFilter", "9", &o, &err),
	    1);
	assert_non_null(strstr(err, "MaxEmailAgeFilter takes 0 (all)"));
	free(err);
	assert_int_equal(
	    abq_registry_prov_set(&c, ABQ_SCOPE_GLOBAL, NULL, "AllowCamera", NULL, &o, &err), 1);
	free(err);

	/* Unset: back to the default, and the version it had. */
	assert_int_equal(abq_registry_prov_set(&c, ABQ_SCOPE_DOMAIN, "example.com",
	                                       "MinDevicePasswordLength", NULL, &o, &err),
	                 0);
	abq_outcome_clear(&o);
	assert_int_equal(abq_view_refresh(v, s, NULL, NULL, NULL, &err), 0);
	abq_view_provisioning(v, "alice@example.com", &e);
	assert_int_equal(abq_prov_version(&e), before);
	assert_false(abq_prov_imposes(&e));

	/* The ABQ attributes still load beside the provisioning rows. */
	struct abq_policy *p = abq_registry_attr_policy(s, "example.com", &err);
	assert_non_null(p);
	abq_policy_free(&p);

	abq_view_free(&v);
	abq_store_close(&s);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(url);
}

/*
 * The PolicyKey of a device: the same on every call (every node, every
 * restart), another for another version, account or device (DeviceIds
 * without case), the temporary key another still, never 0.
 */
static void
test_device_key(void **state)
{
	(void)state;
	uint32_t k = abq_prov_device_key(0x1234, "alice@example.com", "IPHONE1", false);

	assert_int_not_equal(k, 0);
	assert_int_equal(abq_prov_device_key(0x1234, "alice@example.com", "iphone1", false), k);
	assert_int_not_equal(abq_prov_device_key(0x1235, "alice@example.com", "IPHONE1", false), k);
	assert_int_not_equal(abq_prov_device_key(0x1234, "bob@example.com", "IPHONE1", false), k);
	assert_int_not_equal(abq_prov_device_key(0x1234, "alice@example.com", "IPHONE2", false), k);
	assert_int_not_equal(abq_prov_device_key(0x1234, "alice@example.com", "IPHONE1", true), k);
	assert_int_not_equal(abq_prov_device_key(0, NULL, NULL, false), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_device_key),
	    cmocka_unit_test(test_table_matches_code_page),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_effective),
	    cmocka_unit_test(test_version_and_imposes),
	    cmocka_unit_test(test_wbxml_per_version),
	    cmocka_unit_test(test_registry_to_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
