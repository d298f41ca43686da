/*
 * test_autodiscover.c: Autodiscover for ActiveSync as abqd reads and answers
 * it (src/eas/autodiscover.c), with the bodies phones send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/autodiscover.h"

#define URL "https://mail.example.com/Microsoft-Server-ActiveSync"

/* What an iPhone's Mail sends (pretty-printed, tabs). */
static const char ios_body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Autodiscover "
    "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">\n"
    "\t<Request>\n"
    "\t\t<EMailAddress>alice@example.com</EMailAddress>\n"
    "\t\t<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
    "mobilesync/responseschema/2006</AcceptableResponseSchema>\n"
    "\t</Request>\n"
    "</Autodiscover>\n";

/* What Android's Exchange clients send: one line, the xsi and xsd prefixes declared. */
static const char android_body[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
    "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">"
    "<Request><EMailAddress>Alice@Example.COM</EMailAddress><AcceptableResponseSchema>"
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
    "</AcceptableResponseSchema></Request></Autodiscover>";

/* What Outlook on a desktop sends: another schema, not abqd's. */
static const char outlook_body[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover "
    "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">"
    "<Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>"
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
    "</AcceptableResponseSchema></Request></Autodiscover>";

static const struct autod_ctx alice = {
    .account = "alice@example.com",
    .address = "alice@example.com",
    .public_url = URL,
    .can_forward = true,
};

/* Parse a POX body and answer it as alice; returns the status, *ans filled when answered. */
static enum autod_status
pox(const char *body, size_t len, const struct autod_ctx *ctx, int *verdict,
    struct autod_answer *ans)
{
	struct autod_request req;
	const char *why = NULL;
	enum autod_status st = autod_parse_pox(body, len, &req, &why);

	if (st != AUTOD_OK)
		assert_non_null(why);
	*verdict = autod_answer(&req, st, ctx, ans);
	autod_request_clear(&req);
	return st;
}

/* The paths and methods that are abqd's, spelled as phones spell them. */
static void
test_path_kind(void **state)
{
	(void)state;
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.xml", "POST"), AUTOD_POX);
	assert_int_equal(autod_path_kind("/Autodiscover/Autodiscover.xml", "POST"), AUTOD_POX);
	assert_int_equal(autod_path_kind("/AutoDiscover/AutoDiscover.XML", "POST"), AUTOD_POX);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.xml", "GET"), AUTOD_NONE);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.json", "GET"), AUTOD_JSON);
	assert_int_equal(
	    autod_path_kind("/autodiscover/autodiscover.json/v1.0/a@example.com", "GET"),
	    AUTOD_JSON);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.json", "POST"), AUTOD_NONE);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.json/v1.0/", "GET"),
	                 AUTOD_NONE);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.json/v1.0/a/b", "GET"),
	                 AUTOD_NONE);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.svc", "POST"), AUTOD_NONE);
	assert_int_equal(autod_path_kind("/autodiscover/autodiscover.xmlx", "POST"), AUTOD_NONE);
	assert_int_equal(autod_path_kind("/Microsoft-Server-ActiveSync", "POST"), AUTOD_NONE);
}

/* An iPhone's request gets the mobilesync Response with the public URL. */
static void
test_ios_pox(void **state)
{
	struct autod_request req;
	struct autod_answer ans;
	const char *why = NULL;
	(void)state;

	assert_int_equal(autod_parse_pox(ios_body, strlen(ios_body), &req, &why), AUTOD_OK);
	assert_string_equal(req.email, "alice@example.com");
	assert_int_equal(autod_answer(&req, AUTOD_OK, &alice, &ans), AUTOD_ANSWER);
	autod_request_clear(&req);
	assert_int_equal(ans.status, 200);
	assert_string_equal(ans.content_type, "text/xml; charset=utf-8");
	assert_int_equal(ans.len, strlen(ans.body));
	assert_string_equal(
	    ans.body,
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
	    "<Autodiscover "
	    "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\r\n"
	    "  <Response "
	    "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/"
	    "2006\">\r\n"
	    "    <Culture>en:us</Culture>\r\n"
	    "    <User>\r\n"
	    "      <DisplayName>alice@example.com</DisplayName>\r\n"
	    "      <EMailAddress>alice@example.com</EMailAddress>\r\n"
	    "    </User>\r\n"
	    "    <Action>\r\n"
	    "      <Settings>\r\n"
	    "        <Server>\r\n"
	    "          <Type>MobileSync</Type>\r\n"
	    "          <Url>" URL "</Url>\r\n"
	    "          <Name>" URL "</Name>\r\n"
	    "        </Server>\r\n"
	    "      </Settings>\r\n"
	    "    </Action>\r\n"
	    "  </Response>\r\n"
	    "</Autodiscover>\r\n");
	free(ans.body);
}

/* An Android client's request, its address in another case: the same settings. */
static void
test_android_pox(void **state)
{
	struct autod_answer ans;
	int verdict;
	(void)state;

	assert_int_equal(pox(android_body, strlen(android_body), &alice, &verdict, &ans), AUTOD_OK);
	assert_int_equal(verdict, AUTOD_ANSWER);
	assert_int_equal(ans.status, 200);
	assert_non_null(strstr(ans.body, "<EMailAddress>Alice@Example.COM</EMailAddress>"));
	assert_non_null(strstr(ans.body, "<Type>MobileSync</Type>"));
	assert_non_null(strstr(ans.body, "<Url>" URL "</Url>"));
	assert_null(strstr(ans.body, "<Error>"));
	free(ans.body);
}

/* Outlook mobile's two JSON forms. */
static void
test_outlook_json(void **state)
{
	static const struct {
		const char *path, *query;
	} cases[] = {
	    {"/autodiscover/autodiscover.json",
	     "Email=alice%40example.com&Protocol=ActiveSync&RedirectCount=1"},
	    {"/autodiscover/autodiscover.json", "protocol=activesync&email=ALICE%40example.com"},
	    {"/autodiscover/autodiscover.json/v1.0/alice@example.com",
	     "Protocol=ActiveSync&RedirectCount=1"},
	    {"/AutoDiscover/AutoDiscover.json/V1.0/Alice@example.com", "Protocol=ActiveSync"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct autod_request req;
		struct autod_answer ans;
		const char *why = NULL;

		print_message("%s?%s\n", cases[i].path, cases[i].query);
		assert_int_equal(autod_parse_json(cases[i].path, cases[i].query, &req, &why),
		                 AUTOD_OK);
		assert_int_equal(autod_answer(&req, AUTOD_OK, &alice, &ans), AUTOD_ANSWER);
		autod_request_clear(&req);
		assert_int_equal(ans.status, 200);
		assert_string_equal(ans.content_type, "application/json; charset=utf-8");
		assert_string_equal(ans.body, "{\"Protocol\":\"ActiveSync\",\"Url\":\"" URL "\"}");
		free(ans.body);
	}
}

/* Another schema or protocol: forwarded when an upstream takes it, else 601 / InvalidProtocol. */
static void
test_other_schema(void **state)
{
	struct autod_ctx alone = alice;
	struct autod_request req;
	struct autod_answer ans;
	const char *why = NULL;
	int verdict;
	(void)state;

	alone.can_forward = false;
	assert_int_equal(pox(outlook_body, strlen(outlook_body), &alice, &verdict, &ans),
	                 AUTOD_OTHER_SCHEMA);
	assert_int_equal(verdict, AUTOD_FORWARD);
	assert_int_equal(pox(outlook_body, strlen(outlook_body), &alone, &verdict, &ans),
	                 AUTOD_OTHER_SCHEMA);
	assert_int_equal(verdict, AUTOD_ANSWER);
	assert_int_equal(ans.status, 200);
	assert_non_null(strstr(ans.body, "<ErrorCode>601</ErrorCode>"));
	assert_null(strstr(ans.body, URL));
	free(ans.body);

	static const char *const queries[] = {"Email=alice%40example.com&Protocol=Ews",
	                                      "Email=alice%40example.com", NULL};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(
		    autod_parse_json("/autodiscover/autodiscover.json", queries[i], &req, &why),
		    AUTOD_OTHER_SCHEMA);
		assert_int_equal(autod_answer(&req, AUTOD_OTHER_SCHEMA, &alice, &ans),
		                 AUTOD_FORWARD);
		assert_int_equal(autod_answer(&req, AUTOD_OTHER_SCHEMA, &alone, &ans),
		                 AUTOD_ANSWER);
		autod_request_clear(&req);
		assert_int_equal(ans.status, 400);
		assert_non_null(strstr(ans.body, "\"ErrorCode\":\"InvalidProtocol\""));
		free(ans.body);
	}
}

/* Bodies that are not an Autodiscover request: 600 Invalid Request, never settings. */
static void
test_invalid_pox(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "<Autodiscover><Request>",
	    "not xml at all",
	    "<?xml version=\"1.0\"?><Other/>",
	    "<Autodiscover><Response/></Autodiscover>",
	    /* no schema */
	    "<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request>"
	    "</Autodiscover>",
	    /* no address */
	    "<Autodiscover><Request><AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    /* an address that is none */
	    "<Autodiscover><Request><EMailAddress>alice</"
	    "EMailAddress><AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    "<Autodiscover><Request><EMailAddress>a b@example.com</EMailAddress>"
	    "<AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    /* markup inside the address */
	    "<Autodiscover><Request><EMailAddress><b>alice@example.com</b></EMailAddress>"
	    "<AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    /* an entity never declared */
	    "<Autodiscover><Request><EMailAddress>&who;</"
	    "EMailAddress><AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct autod_answer ans;
		int verdict;

		print_message("%s\n", bodies[i]);
		assert_int_equal(pox(bodies[i], strlen(bodies[i]), &alice, &verdict, &ans),
		                 AUTOD_INVALID);
		assert_int_equal(verdict, AUTOD_ANSWER);
		assert_int_equal(ans.status, 200);
		assert_non_null(strstr(ans.body, "<ErrorCode>600</ErrorCode>"));
		assert_non_null(strstr(ans.body, "<Message>Invalid Request</Message>"));
		assert_null(strstr(ans.body, URL));
		free(ans.body);
	}
}

/*
 * External and internal entities: refused, never expanded, nothing read. The
 * external one names a file that exists; a DTD hidden in UTF-16 is refused too.
 */
static void
test_entities_refused(void **state)
{
	static const char *const bodies[] = {
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE Autodiscover [<!ENTITY xxe SYSTEM "
	    "\"file:///etc/passwd\">]>\n<Autodiscover><Request><EMailAddress>&xxe;</EMailAddress>"
	    "<AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE Autodiscover SYSTEM \"http://127.0.0.1:1/x.dtd\">\n"
	    "<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress>"
	    "<AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY a \"alice@example.com\">"
	    "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c "
	    "\"&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
	    "<Autodiscover><Request><EMailAddress>&c;</"
	    "EMailAddress><AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	    "</AcceptableResponseSchema></Request></Autodiscover>",
	};
	struct autod_answer ans;
	int verdict;
	(void)state;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(pox(bodies[i], strlen(bodies[i]), &alice, &verdict, &ans),
		                 AUTOD_INVALID);
		assert_non_null(strstr(ans.body, "<ErrorCode>600</ErrorCode>"));
		assert_null(strstr(ans.body, "root:"));
		assert_null(strstr(ans.body, URL));
		free(ans.body);
	}

	/* The first body in UTF-16LE: no "<!DOCTYPE" in its bytes. */
	static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>";
	size_t n = strlen(bodies[0]) + sizeof(decl);
	char *s = malloc(n), *u16;

	assert_non_null(s);
	snprintf(s, n, "%s%s", decl, strchr(bodies[0], '\n'));
	n = strlen(s);
	u16 = calloc(2, n + 1);
	assert_non_null(u16);
	u16[0] = (char)0xff;
	u16[1] = (char)0xfe;
	for (size_t i = 0; i < n; i++)
		u16[2 + 2 * i] = s[i];
	assert_int_equal(pox(u16, 2 + 2 * n, &alice, &verdict, &ans), AUTOD_INVALID);
	assert_non_null(strstr(ans.body, "<ErrorCode>600</ErrorCode>"));
	free(ans.body);
	free(s);
	free(u16);
}

/* A body over the cap is not read. */
static void
test_oversize(void **state)
{
	size_t n = AUTOD_BODY_MAX + 1;
	char *big = malloc(n);
	struct autod_request req;
	const char *why = NULL;
	(void)state;

	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, ios_body, strlen(ios_body));
	assert_int_equal(autod_parse_pox(big, n, &req, &why), AUTOD_INVALID);
	assert_string_equal(why, "body too large");
	autod_request_clear(&req);
	/* At the cap it is read. */
	assert_int_equal(autod_parse_pox(big, n - 1, &req, &why), AUTOD_OK);
	autod_request_clear(&req);
	free(big);
}

/* Another user's address: "cannot be found", never their settings. */
static void
test_other_user(void **state)
{
	static const char bob[] = "<Autodiscover xmlns=\"" AUTOD_NS_MS_REQUEST "\"><Request>"
	                          "<EMailAddress>bob@example.com</"
	                          "EMailAddress><AcceptableResponseSchema>" AUTOD_NS_MS_RESPONSE
	                          "</AcceptableResponseSchema></Request></Autodiscover>";
	struct autod_request req;
	struct autod_answer ans;
	const char *why = NULL;
	int verdict;
	(void)state;

	assert_int_equal(pox(bob, strlen(bob), &alice, &verdict, &ans), AUTOD_OK);
	assert_int_equal(ans.status, 200);
	assert_non_null(strstr(ans.body, "<ErrorCode>500</ErrorCode>"));
	assert_non_null(strstr(ans.body, "The email address cannot be found."));
	assert_null(strstr(ans.body, URL));
	assert_null(strstr(ans.body, "bob@"));
	free(ans.body);

	assert_int_equal(autod_parse_json("/autodiscover/autodiscover.json/v1.0/bob@example.com",
	                                  "Protocol=ActiveSync", &req, &why),
	                 AUTOD_OK);
	assert_int_equal(autod_answer(&req, AUTOD_OK, &alice, &ans), AUTOD_ANSWER);
	autod_request_clear(&req);
	assert_int_equal(ans.status, 404);
	assert_string_equal(ans.body,
	                    "{\"ErrorCode\":\"UserNotFound\",\"ErrorMessage\":\"The email "
	                    "address cannot be found.\"}");
	free(ans.body);
}

/* Which addresses are the account's own. */
static void
test_own_address(void **state)
{
	struct autod_ctx c = {.account = "alice@corp.example", .address = "alice@example.com"};
	(void)state;

	assert_true(autod_address_is_own("alice@corp.example", &c));
	assert_true(autod_address_is_own("Alice@CORP.example", &c));
	assert_true(autod_address_is_own("ALICE@example.com", &c));
	assert_false(autod_address_is_own("bob@corp.example", &c));
	assert_false(autod_address_is_own("alice@example.org", &c));
	assert_false(autod_address_is_own("alice@corp.example.evil", &c));
	assert_false(autod_address_is_own(NULL, &c));
	c.address = NULL;
	assert_false(autod_address_is_own("alice@example.com", &c));
}

/* JSON requests without a usable address, or with a parameter twice: 400 InvalidRequest. */
static void
test_invalid_json(void **state)
{
	static const char *const queries[] = {
	    "Protocol=ActiveSync",
	    "Protocol=ActiveSync&Email=",
	    "Protocol=ActiveSync&Email=alice",
	    "Protocol=ActiveSync&Email=alice%40example.com&Email=bob%40example.com",
	    "Protocol=ActiveSync&Email=alice%4",
	    "Protocol=ActiveSync&Email=alice%00%40example.com",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct autod_request req;
		struct autod_answer ans;
		const char *why = NULL;

		print_message("%s\n", queries[i]);
		assert_int_equal(
		    autod_parse_json("/autodiscover/autodiscover.json", queries[i], &req, &why),
		    AUTOD_INVALID);
		assert_non_null(why);
		assert_int_equal(autod_answer(&req, AUTOD_INVALID, &alice, &ans), AUTOD_ANSWER);
		autod_request_clear(&req);
		assert_int_equal(ans.status, 400);
		assert_non_null(strstr(ans.body, "\"ErrorCode\":\"InvalidRequest\""));
		free(ans.body);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_kind),        cmocka_unit_test(test_ios_pox),
	    cmocka_unit_test(test_android_pox),      cmocka_unit_test(test_outlook_json),
	    cmocka_unit_test(test_other_schema),     cmocka_unit_test(test_invalid_pox),
	    cmocka_unit_test(test_entities_refused), cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_other_user),       cmocka_unit_test(test_own_address),
	    cmocka_unit_test(test_invalid_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
