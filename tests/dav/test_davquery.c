/*
 * test_davquery.c: the addressbook-query and calendar-query REPORTs' bodies
 * (dav.h dav_addressbook_query_body, dav_calendar_uid_query_body), as a
 * CardDAV or CalDAV server reads them: each body is
 * parsed back with libxml2 and its filter read by namespace and name, so a
 * query's text (XML's special characters, non-ASCII) must come back exactly
 * as given, and what cannot go into XML 1.0 or a vCard name is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "dav/dav.h"
#include "lib/util.h"

#define NS_CR "urn:ietf:params:xml:ns:carddav"
#define NS_C  "urn:ietf:params:xml:ns:caldav"

static const char *const name_props[] = {"FN", "EMAIL", "NICKNAME", NULL};

/* The first element named name in ns under n (depth first), or NULL. */
static xmlNode *
find(xmlNode *n, const char *ns, const char *name)
{
	for (; n != NULL; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && n->ns != NULL &&
		    strcmp((const char *)n->ns->href, ns) == 0 &&
		    strcmp((const char *)n->name, name) == 0)
			return n;
		xmlNode *k = find(n->children, ns, name);
		if (k != NULL)
			return k;
	}
	return NULL;
}

static xmlDoc *
parse(const char *body)
{
	xmlDoc *d = xmlReadMemory(body, (int)strlen(body), "query.xml", NULL,
	                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	assert_non_null(d);
	return d;
}

/* Every text-match of the body: its text is want, its match-type match, its collation
 * i;unicode-casemap. */
static size_t
check_matches(xmlDoc *d, const char *want, const char *match)
{
	size_t n = 0;
	xmlNode *filter = find(xmlDocGetRootElement(d), NS_CR, "filter");

	assert_non_null(filter);
	xmlChar *test = xmlGetProp(filter, (const xmlChar *)"test");
	assert_string_equal((const char *)test, "anyof");
	xmlFree(test);
	for (xmlNode *pf = filter->children; pf != NULL; pf = pf->next) {
		if (pf->type != XML_ELEMENT_NODE)
			continue;
		assert_string_equal((const char *)pf->name, "prop-filter");
		xmlNode *tm = find(pf->children, NS_CR, "text-match");
		assert_non_null(tm);
		xmlChar *text = xmlNodeGetContent(tm);
		xmlChar *mt = xmlGetProp(tm, (const xmlChar *)"match-type");
		xmlChar *coll = xmlGetProp(tm, (const xmlChar *)"collation");
		assert_string_equal((const char *)text, want);
		assert_string_equal((const char *)mt, match);
		assert_string_equal((const char *)coll, "i;unicode-casemap");
		xmlFree(text);
		xmlFree(mt);
		xmlFree(coll);
		n++;
	}
	return n;
}

/* XML's special characters in a query are escaped: the server reads the text as given. */
static void
test_escaping(void **state)
{
	(void)state;
	const char *texts[] = {"<b>&amp;\"x\"", "O'Neil & Sons <ops>", "]]>", "Zoë Çelik ἀλέξ",
	                       "a\tb"};
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct dav_card_query q = {.text = texts[i], .props = name_props, .nresults = 21};
		char *body = dav_addressbook_query_body(&q, &err);
		assert_non_null(body);
		/* never a raw < or & of the query inside the body */
		if (strchr(texts[i], '<') != NULL)
			assert_null(strstr(body, "<b>"));
		assert_null(strstr(body, "& Sons"));
		assert_null(strstr(body, "\"x\""));
		xmlDoc *d = parse(body);
		assert_int_equal(check_matches(d, texts[i], "contains"), 3);
		xmlNode *nr = find(xmlDocGetRootElement(d), NS_CR, "nresults");
		assert_non_null(nr);
		xmlChar *v = xmlNodeGetContent(nr);
		assert_string_equal((const char *)v, "21");
		xmlFree(v);
		xmlFreeDoc(d);
		free(body);
	}
}

/* The properties asked, the match type, no limit, address-data's props. */
static void
test_shape(void **state)
{
	(void)state;
	static const char *const email[] = {"EMAIL", NULL};
	static const char *const data[] = {"FN", "EMAIL", "X-EAS-OFFICELOCATION", NULL};
	struct dav_card_query q = {
	    .text = "bob@example.com", .props = email, .match = "equals", .address_props = data};
	const char *err = NULL;
	char *body = dav_addressbook_query_body(&q, &err);

	assert_non_null(body);
	xmlDoc *d = parse(body);
	xmlNode *root = xmlDocGetRootElement(d);
	assert_string_equal((const char *)root->name, "addressbook-query");
	assert_string_equal((const char *)root->ns->href, NS_CR);
	assert_int_equal(check_matches(d, "bob@example.com", "equals"), 1);
	assert_null(find(root, NS_CR, "limit")); /* none asked */
	assert_non_null(find(root, "DAV:", "getetag"));
	xmlNode *ad = find(root, NS_CR, "address-data");
	assert_non_null(ad);
	size_t n = 0;
	for (xmlNode *p = ad->children; p != NULL; p = p->next) {
		xmlChar *name = xmlGetProp(p, (const xmlChar *)"name");
		assert_string_equal((const char *)name, data[n]);
		xmlFree(name);
		n++;
	}
	assert_int_equal(n, 3);
	xmlFreeDoc(d);
	free(body);
}

/* What XML 1.0 cannot carry, or is no vCard name, or no match type: refused with why. */
static void
test_refusals(void **state)
{
	(void)state;
	static const char *const bad_name[] = {"FN", "X\"><evil", NULL};
	static const char *const none[] = {NULL};
	char *long_text = xmalloc(DAV_QUERY_TEXT_MAX + 2);
	const char *err;
	struct {
		struct dav_card_query q;
		const char *why;
	} cases[] = {
	    {{.text = "a\x01", .props = name_props}, "control characters"},
	    {{.text = "\xc3", .props = name_props}, "not UTF-8"},
	    {{.text = "\xc0\xbc", .props = name_props}, "not UTF-8"},     /* an overlong '<' */
	    {{.text = "\xed\xa0\x80", .props = name_props}, "not UTF-8"}, /* a surrogate */
	    {{.text = long_text, .props = name_props}, "too long"},
	    {{.text = NULL, .props = name_props}, "no query text"},
	    {{.text = "\xc2\x85", .props = name_props}, "control characters"}, /* NEL, a C1 */
	    {{.text = "x", .props = bad_name}, "not a vCard name"},
	    {{.text = "x", .props = none}, "without properties"},
	    {{.text = "x", .props = name_props, .match = "regex"}, "match type"},
	    {{.text = "x", .props = name_props, .address_props = bad_name}, "not a vCard name"},
	};

	memset(long_text, 'a', DAV_QUERY_TEXT_MAX + 1);
	long_text[DAV_QUERY_TEXT_MAX + 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = NULL;
		assert_null(dav_addressbook_query_body(&cases[i].q, &err));
		assert_non_null(err);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].why);
	}
	/* at the cap: taken */
	long_text[DAV_QUERY_TEXT_MAX] = '\0';
	struct dav_card_query ok = {.text = long_text, .props = name_props};
	char *body = dav_addressbook_query_body(&ok, &err);
	assert_non_null(body);
	free(body);
	free(long_text);
}

/*
 * The calendar-query of one UID (dav_calendar_uid_query_body): VCALENDAR >
 * VEVENT > the UID prop-filter, its text-match equals under i;octet, the
 * UID back exactly (XML's special characters, non-ASCII), the ETag only
 * asked; a UID XML 1.0 cannot carry, or over DAV_UID_MAX, refused.
 */
static void
test_uid_query(void **state)
{
	(void)state;
	static const char *const uids[] = {
	    "040000008200E00074C5B7101A82E008@example.com",
	    "a<b>&\"c'</C:text-match><C:x>@example.com",
	    "r\xc3\xa9union-\xe2\x82\xac@example.com",
	};
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
		char *body = dav_calendar_uid_query_body(uids[i], &err);
		assert_non_null(body);
		xmlDoc *d = parse(body);
		xmlNode *root = xmlDocGetRootElement(d);
		assert_string_equal((const char *)root->name, "calendar-query");
		assert_string_equal((const char *)root->ns->href, NS_C);
		xmlNode *prop = find(root, "DAV:", "prop");
		assert_non_null(prop);
		assert_non_null(find(prop->children, "DAV:", "getetag"));
		assert_null(prop->children->next); /* the ETag only: no calendar-data */
		assert_null(find(root, NS_C, "calendar-data"));
		xmlNode *cal = find(root, NS_C, "comp-filter");
		xmlChar *name = xmlGetProp(cal, (const xmlChar *)"name");
		assert_string_equal((const char *)name, "VCALENDAR");
		xmlFree(name);
		xmlNode *ev = find(cal->children, NS_C, "comp-filter");
		assert_non_null(ev);
		name = xmlGetProp(ev, (const xmlChar *)"name");
		assert_string_equal((const char *)name, "VEVENT");
		xmlFree(name);
		xmlNode *pf = find(ev->children, NS_C, "prop-filter");
		assert_non_null(pf);
		name = xmlGetProp(pf, (const xmlChar *)"name");
		assert_string_equal((const char *)name, "UID");
		xmlFree(name);
		xmlNode *tm = find(pf->children, NS_C, "text-match");
		assert_non_null(tm);
		assert_null(tm->children->next); /* one text node: nothing injected */
		xmlChar *v = xmlGetProp(tm, (const xmlChar *)"collation");
		assert_string_equal((const char *)v, "i;octet");
		xmlFree(v);
		v = xmlGetProp(tm, (const xmlChar *)"match-type");
		assert_string_equal((const char *)v, "equals");
		xmlFree(v);
		v = xmlNodeGetContent(tm);
		assert_string_equal((const char *)v, uids[i]);
		xmlFree(v);
		xmlFreeDoc(d);
		free(body);
	}

	char *long_uid = xmalloc(DAV_UID_MAX + 2);
	memset(long_uid, 'u', DAV_UID_MAX + 1);
	long_uid[DAV_UID_MAX + 1] = '\0';
	static const struct {
		const char *uid, *why;
	} bad[] = {
	    {"a\x01b", "control characters"},
	    {"line\r\nUID:x", "control characters"},
	    {"\xc3", "not UTF-8"},
	    {"", "no UID"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_null(dav_calendar_uid_query_body(bad[i].uid, &err));
		assert_non_null(err);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].why);
	}
	assert_null(dav_calendar_uid_query_body(NULL, &err));
	assert_null(dav_calendar_uid_query_body(long_uid, &err));
	assert_non_null(strstr(err, "too long"));
	long_uid[DAV_UID_MAX] = '\0'; /* at the cap: taken */
	char *body = dav_calendar_uid_query_body(long_uid, &err);
	assert_non_null(body);
	free(body);
	free(long_uid);
}

/* http:// is taken without TLS only to this machine: an address literal, not a name like one. */
static void
test_loopback(void **state)
{
	(void)state;
	assert_true(dav_host_loopback("127.0.0.1"));
	assert_true(dav_host_loopback("127.8.9.10"));
	assert_true(dav_host_loopback("localhost"));
	assert_true(dav_host_loopback("LocalHost"));
	assert_true(dav_host_loopback("[::1]"));
	assert_false(dav_host_loopback("127.0.0.1.example.com"));
	assert_false(dav_host_loopback("127.attacker.test"));
	assert_false(dav_host_loopback("127."));
	assert_false(dav_host_loopback("128.0.0.1"));
	assert_false(dav_host_loopback("10.0.0.1"));
	assert_false(dav_host_loopback("localhost.example.com"));
	assert_false(dav_host_loopback("[::2]"));
	assert_false(dav_host_loopback(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escaping), cmocka_unit_test(test_shape),
	    cmocka_unit_test(test_refusals), cmocka_unit_test(test_uid_query),
	    cmocka_unit_test(test_loopback),
	};
	int rv = cmocka_run_group_tests(tests, NULL, NULL);

	xmlCleanupParser();
	return rv;
}
