/*
 * test_status.c: the answers abqd gives instead of serving a command, and the
 * DeviceInformation it reads from Settings and Provision bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/devinfo.h"
#include "eas/status.h"
#include "eas/wbxml.h"

/* eas-protocol.md: FolderSync answered with 129. */
static void
test_foldersync_129_bytes(void **state)
{
	static const uint8_t want[] = {0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56, 0x4c,
	                               0x03, 0x31, 0x32, 0x39, 0x00, 0x01, 0x01};
	uint8_t *body;
	size_t len;
	int http;
	(void)state;
	assert_int_equal(eas_status_response(EAS_CMD_FOLDERSYNC, "14.1", 129, &http, &body, &len),
	                 0);
	assert_int_equal(http, 200);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(body, want, sizeof(want));
	free(body);
}

/* Which version and command get 200 with a Status, which get 403. */
static void
test_status_table(void **state)
{
	static const struct {
		enum eas_cmd cmd;
		const char *version;
		int status;
		int http;
		const char *root;
	} cases[] = {
	    {EAS_CMD_SYNC, "16.1", 129, 200, "Sync"},
	    {EAS_CMD_PING, "14.0", 130, 200, "Ping"},
	    {EAS_CMD_PROVISION, "14.1", 177, 200, "Provision"},
	    {EAS_CMD_SETTINGS, "16.0", 129, 200, "Settings"},
	    {EAS_CMD_SENDMAIL, "14.1", 129, 200, "SendMail"},
	    {EAS_CMD_FIND, "16.1", 129, 200, "Find"},
	    {EAS_CMD_FIND, "14.1", 129, 403, NULL},
	    {EAS_CMD_FOLDERSYNC, "12.1", 129, 403, NULL},
	    {EAS_CMD_FOLDERSYNC, NULL, 129, 403, NULL},
	    {EAS_CMD_FOLDERSYNC, "junk", 129, 403, NULL},
	    {EAS_CMD_GETATTACHMENT, "14.1", 129, 403, NULL},
	    {EAS_CMD_MOVEITEMS, "14.1", 129, 403, NULL},
	    {EAS_CMD_MEETINGRESPONSE, "16.1", 129, 403, NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *body;
		size_t len;
		int http;
		assert_int_equal(eas_status_response(cases[i].cmd, cases[i].version,
		                                     cases[i].status, &http, &body, &len),
		                 0);
		assert_int_equal(http, cases[i].http);
		if (http != 200) {
			assert_null(body);
			continue;
		}
		struct wbxml_doc *doc = NULL;
		assert_int_equal(wbxml_decode(body, len, NULL, &doc, NULL), WBXML_OK);
		const struct wbxml_node *root = wbxml_doc_root(doc);
		char q[64];
		assert_non_null(strstr(wbxml_qname(root, q, sizeof(q)), cases[i].root));
		const char *st = wbxml_find_text(root, "Status");
		assert_non_null(st);
		assert_int_equal(strtol(st, NULL, 10), cases[i].status);
		wbxml_doc_free(&doc);
		free(body);
	}
	assert_int_equal(eas_version_number("14.1"), 141);
	assert_int_equal(eas_version_number("2.5"), 25);
	assert_int_equal(eas_version_number("14.1x"), 0);
}

/* A Settings and a Provision request carrying DeviceInformation. */
static void
test_devinfo(void **state)
{
	struct eas_devinfo d;
	uint8_t *buf;
	size_t len;
	char *msg = NULL;
	(void)state;

	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *set = wbxml_addn(
	    wbxml_addn(wbxml_addn_root(doc, "Settings:Settings"), "DeviceInformation"), "Set");
	wbxml_addn_text(set, "Model", "SM-S918B");
	wbxml_addn_text(set, "OS", "Android 14");
	wbxml_addn_text(set, "OSLanguage", "de-DE");
	wbxml_addn_text(set, "IMEI", "351234567890123");
	wbxml_addn_text(set, "FriendlyName", "Bob's phone");
	assert_int_equal(wbxml_encode(doc, &buf, &len, NULL), WBXML_OK);
	wbxml_doc_free(&doc);
	assert_int_equal(eas_devinfo_parse(buf, len, &d, &msg), 1);
	assert_string_equal(d.model, "SM-S918B");
	assert_string_equal(d.os, "Android 14");
	assert_string_equal(d.os_language, "de-DE");
	assert_string_equal(d.friendly_name, "Bob's phone");
	assert_null(d.user_agent);
	eas_devinfo_clear(&d);
	/* Truncated: an error, never a crash. */
	for (size_t cut = 0; cut < len; cut++) {
		int rv = eas_devinfo_parse(buf, cut, &d, &msg);
		assert_int_equal(rv, -1);
		free(msg);
		msg = NULL;
	}
	free(buf);

	/* Provision phase 1 of 14.1 carries it under the Provision root. */
	doc = wbxml_doc_new();
	struct wbxml_node *p = wbxml_addn_root(doc, "Provision:Provision");
	set = wbxml_addn(wbxml_addn(p, "Settings:DeviceInformation"), "Set");
	wbxml_addn_text(set, "Model", "iPhone16,2");
	wbxml_addn_text(set, "UserAgent", "Apple-iPhone16C2/2201.1");
	wbxml_addn_text(wbxml_addn(wbxml_addn(p, "Policies"), "Policy"), "PolicyType",
	                "MS-EAS-Provisioning-WBXML");
	assert_int_equal(wbxml_encode(doc, &buf, &len, NULL), WBXML_OK);
	wbxml_doc_free(&doc);
	assert_int_equal(eas_devinfo_parse(buf, len, &d, &msg), 1);
	assert_string_equal(d.model, "iPhone16,2");
	assert_string_equal(d.user_agent, "Apple-iPhone16C2/2201.1");
	eas_devinfo_clear(&d);
	free(buf);

	/* A Settings Get without DeviceInformation: nothing. */
	doc = wbxml_doc_new();
	wbxml_addn(wbxml_addn(wbxml_addn_root(doc, "Settings:Settings"), "UserInformation"), "Get");
	assert_int_equal(wbxml_encode(doc, &buf, &len, NULL), WBXML_OK);
	wbxml_doc_free(&doc);
	assert_int_equal(eas_devinfo_parse(buf, len, &d, &msg), 0);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_foldersync_129_bytes),
	    cmocka_unit_test(test_status_table),
	    cmocka_unit_test(test_devinfo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
