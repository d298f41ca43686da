/*
 * test_davxml.c: the streaming multistatus reader (src/dav/davxml.c) on
 * answers shaped as Radicale, SOGo (both captured from the real servers),
 * Sabre/Nextcloud, Zimbra and Apple's servers write them (tests/dav/data),
 * each read whole, split in two at every byte, and a byte at a time: the
 * responses reported must not depend on where curl cuts the body. Then the
 * refusals: DTDs and entities, bad XML, the caps, prefixes bound to other
 * namespaces.
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

#include "dav/davxml.h"
#include "lib/util.h"

/* One reported response, its values copied. */
struct got {
	char *href;
	int status;
	struct davxml_props p; /* the strings are copies */
	unsigned absent, oversize;
};

struct run {
	struct got r[64];
	size_t n;
	int rc;
	char err[256];
	struct davxml_doc doc;
	char *doc_token;
	char *dump;  /* every field, one line per response, for comparing runs */
	int stop_at; /* stop the parse at this response (-1: never) */
};

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int
on_response(void *arg, const struct davxml_response *r)
{
	struct run *run = arg;
	struct got *g;

	if (run->stop_at >= 0 && (size_t)run->stop_at == r->index)
		return 1;
	assert_true(run->n < sizeof(run->r) / sizeof(run->r[0]));
	g = &run->r[run->n++];
	assert_int_equal(r->index, run->n - 1);
	g->href = xstrdup(r->href);
	g->status = r->status;
	g->p = r->props;
	g->p.etag = dup_or_null(r->props.etag);
	g->p.displayname = dup_or_null(r->props.displayname);
	g->p.ctag = dup_or_null(r->props.ctag);
	g->p.sync_token = dup_or_null(r->props.sync_token);
	g->p.principal = dup_or_null(r->props.principal);
	g->p.cal_home = dup_or_null(r->props.cal_home);
	g->p.card_home = dup_or_null(r->props.card_home);
	g->p.color = dup_or_null(r->props.color);
	g->p.content_type = dup_or_null(r->props.content_type);
	g->p.data = r->props.data ? xmemdup0(r->props.data, r->props.data_len) : NULL;
	g->absent = r->absent;
	g->oversize = r->oversize;
	return 0;
}

static void
run_clear(struct run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		struct davxml_props *p = &run->r[i].p;
		free(run->r[i].href);
		free(p->etag);
		free(p->displayname);
		free(p->ctag);
		free(p->sync_token);
		free(p->principal);
		free(p->cal_home);
		free(p->card_home);
		free(p->color);
		free(p->content_type);
		free(p->data);
	}
	free(run->doc_token);
	free(run->dump);
	memset(run, 0, sizeof(*run));
}

#define S(x) ((x) ? (x) : "-")

static void
make_dump(struct run *run)
{
	struct sbuf b = {0};

	for (size_t i = 0; i < run->n; i++) {
		struct got *g = &run->r[i];
		sbuf_printf(&b, "%s|%d|%x|%x|%x|%s|%s|%s|%s|%s|%s:%u|%s:%u|%x|%x|%d|%s|%s|%zu:",
		            g->href, g->status, g->p.have, g->absent, g->oversize, S(g->p.etag),
		            S(g->p.displayname), S(g->p.ctag), S(g->p.sync_token),
		            S(g->p.principal), S(g->p.cal_home), g->p.n_cal_home, S(g->p.card_home),
		            g->p.n_card_home, g->p.resourcetype, g->p.components, g->p.writable,
		            S(g->p.color), S(g->p.content_type), g->p.data_len);
		if (g->p.data)
			sbuf_addn(&b, g->p.data, g->p.data_len);
		sbuf_add(&b, "\n");
	}
	sbuf_printf(&b, "doc %d %s %x %s %zu rc %d\n", run->doc.root, S(run->doc_token),
	            run->doc.errors, run->doc.error_name, run->doc.responses, run->rc);
	run->dump = sbuf_take(&b);
}

/*
 * Read body in pieces: cuts[] are the offsets where a piece ends (ascending,
 * within len); step > 0 feeds step bytes at a time instead.
 */
static void
parse(struct run *run, const char *body, size_t len, const struct davxml_limits *lim,
      const size_t *cuts, size_t ncuts, size_t step, int stop_at)
{
	struct davxml *x;
	const char *err = NULL;
	size_t off = 0;

	memset(run, 0, sizeof(*run));
	run->stop_at = stop_at;
	x = davxml_new(lim, on_response, run);
	run->rc = 0;
	if (step > 0) {
		while (off < len && run->rc == 0) {
			size_t n = len - off < step ? len - off : step;
			run->rc = davxml_feed(x, body + off, n, &err);
			off += n;
		}
	} else {
		for (size_t i = 0; i <= ncuts && run->rc == 0; i++) {
			size_t end = i < ncuts ? cuts[i] : len;
			run->rc = davxml_feed(x, body + off, end - off, &err);
			off = end;
		}
	}
	if (run->rc == 0)
		run->rc = davxml_finish(x, &err);
	if (run->rc != 0)
		snprintf(run->err, sizeof(run->err), "%s", err);
	run->doc = *davxml_doc(x);
	run->doc_token = dup_or_null(run->doc.sync_token);
	run->doc.sync_token = NULL;
	davxml_free(&x);
	assert_null(x);
	make_dump(run);
}

static char *
load(const char *name, size_t *len_r)
{
	char path[512];
	FILE *f;
	long n;
	char *p;

	snprintf(path, sizeof(path), "%s/%s", DAVXML_DATA_DIR, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = xmalloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len_r = (size_t)n;
	return p;
}

/*
 * Read a data file whole into *run, check that it reads without error, and
 * that every split in two and a byte at a time report the same.
 */
static void
read_file_every_way(const char *name, struct run *run)
{
	size_t len;
	char *body = load(name, &len);
	struct run other;

	parse(run, body, len, NULL, NULL, 0, 0, -1);
	if (run->rc != 0)
		fail_msg("%s: %s", name, run->err);
	for (size_t k = 1; k < len; k++) {
		parse(&other, body, len, NULL, &k, 1, 0, -1);
		if (strcmp(other.dump, run->dump) != 0)
			fail_msg("%s split at %zu:\n%s\nwhole:\n%s", name, k, other.dump,
			         run->dump);
		run_clear(&other);
	}
	parse(&other, body, len, NULL, NULL, 0, 1, -1);
	assert_string_equal(other.dump, run->dump);
	run_clear(&other);
	free(body);
}

static void
test_radicale_discovery(void **state)
{
	struct run r;

	(void)state;
	read_file_every_way("radicale_principal.xml", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.doc.root, DAVXML_ROOT_MULTISTATUS);
	assert_string_equal(r.r[0].href, "/alice/");
	assert_int_equal(r.r[0].status, 0);
	assert_string_equal(r.r[0].p.principal, "/alice/");
	assert_string_equal(r.r[0].p.cal_home, "/alice/");
	assert_string_equal(r.r[0].p.card_home, "/alice/");
	assert_int_equal(r.r[0].p.n_cal_home, 1);
	assert_int_equal(r.r[0].p.resourcetype, DAVRT_PRINCIPAL | DAVRT_COLLECTION);
	run_clear(&r);

	read_file_every_way("radicale_home.xml", &r);
	assert_int_equal(r.n, 4);
	/* The home itself: the properties it lacks are named absent (404). */
	assert_string_equal(r.r[0].href, "/alice/");
	assert_int_equal(r.r[0].absent, DAVP_DISPLAYNAME | DAVP_CTAG | DAVP_SYNC_TOKEN |
	                                    DAVP_COMPONENTS | DAVP_COLOR);
	assert_null(r.r[0].p.displayname);
	assert_true(r.r[0].p.writable);
	assert_string_equal(r.r[1].href, "/alice/tasks/");
	assert_int_equal(r.r[1].p.resourcetype, DAVRT_CALENDAR | DAVRT_COLLECTION);
	assert_int_equal(r.r[1].p.components, DAVCOMP_VTODO);
	assert_string_equal(r.r[1].p.displayname, "Tasks");
	assert_string_equal(r.r[1].p.sync_token, "http://radicale.org/ns/sync/"
	                                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
	                                         "495991b7852b855");
	assert_int_equal(r.r[1].absent, DAVP_COLOR);
	assert_null(r.r[1].p.color);
	assert_string_equal(r.r[2].href, "/alice/contacts/");
	assert_int_equal(r.r[2].p.resourcetype, DAVRT_ADDRESSBOOK | DAVRT_COLLECTION);
	assert_string_equal(r.r[3].href, "/alice/personal/");
	assert_string_equal(r.r[3].p.color, "#3A87ADFF");
	assert_int_equal(r.r[3].p.components, DAVCOMP_VEVENT);
	/* Radicale's CTag is quoted like an ETag: kept as sent. */
	assert_string_equal(r.r[3].p.ctag, "\"93cc1e252304a6a2a7449652f21fc67c76e2b1c0e2b3075f8be76"
	                                   "58a69306c63\"");
	assert_true(r.r[3].p.have & DAVP_PRIVILEGES);
	assert_true(r.r[3].p.writable);
	assert_int_equal(r.r[3].absent, 0);
	run_clear(&r);
}

static void
test_radicale_sync(void **state)
{
	struct run r;

	(void)state;
	/* Radicale writes the new token before the responses. */
	read_file_every_way("radicale_sync_initial.xml", &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.doc_token, "http://radicale.org/ns/sync/9e697ccf287436cbdf827e0eddf"
	                                 "cc4ef112e1999eeeb73f428dee2243fea0bb3");
	assert_string_equal(r.r[0].href, "/alice/personal/ev1.ics");
	assert_string_equal(r.r[0].p.etag, "\"49286b68c2ebf49be7bfeeb838a0935e5e47131325f15ee5bd6b1"
	                                   "30db111b91c\"");
	assert_int_equal(r.r[0].p.have, DAVP_ETAG);
	run_clear(&r);

	read_file_every_way("radicale_sync_removed.xml", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.r[0].status, 404);
	assert_int_equal(r.r[0].p.have, 0);
	assert_null(r.r[0].p.etag);
	run_clear(&r);

	read_file_every_way("radicale_sync_invalid_token.xml", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.doc.root, DAVXML_ROOT_ERROR);
	assert_int_equal(r.doc.errors, DAVERR_VALID_SYNC_TOKEN);
	assert_string_equal(r.doc.error_name, "valid-sync-token");
	run_clear(&r);

	read_file_every_way("radicale_uid_conflict.xml", &r);
	assert_int_equal(r.doc.root, DAVXML_ROOT_ERROR);
	assert_int_equal(r.doc.errors, DAVERR_NO_UID_CONFLICT);
	assert_string_equal(r.doc.error_name, "no-uid-conflict");
	run_clear(&r);
}

static void
test_radicale_multiget(void **state)
{
	struct run r;

	(void)state;
	read_file_every_way("radicale_calendar_multiget.xml", &r);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.r[0].href, "/alice/personal/missing.ics");
	assert_int_equal(r.r[0].status, 404);
	assert_string_equal(r.r[1].href, "/alice/personal/ev1.ics");
	assert_int_equal(r.r[1].p.have, DAVP_ETAG | DAVP_DATA);
	/* Entities read, the CRLFs of the body are XML line ends: LF. */
	assert_non_null(strstr(r.r[1].p.data, "\nSUMMARY:Standup & <review>\nEND:VEVENT\n"));
	assert_memory_equal(r.r[1].p.data, "BEGIN:VCALENDAR\nVERSION:2.0\n", 28);
	assert_int_equal(r.r[1].p.data_len, strlen(r.r[1].p.data));
	run_clear(&r);

	read_file_every_way("radicale_addressbook_multiget.xml", &r);
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.r[0].p.data, "\nFN:Dave Example\n"));
	run_clear(&r);
}

static void
test_sogo(void **state)
{
	struct run r;

	(void)state;
	read_file_every_way("sogo_principal.xml", &r);
	assert_int_equal(r.n, 1);
	/* SOGo names the principal without its trailing slash; a D: prefix redeclared inside. */
	assert_string_equal(r.r[0].p.principal, "/SOGo/dav/alice");
	assert_string_equal(r.r[0].p.cal_home, "/SOGo/dav/alice/Calendar/");
	assert_string_equal(r.r[0].p.card_home, "/SOGo/dav/alice/Contacts/");
	run_clear(&r);

	read_file_every_way("sogo_calendar_home.xml", &r);
	assert_int_equal(r.n, 4);
	/* Status before prop in each propstat. */
	assert_int_equal(r.r[0].absent, DAVP_CTAG | DAVP_SYNC_TOKEN | DAVP_COLOR);
	assert_int_equal(r.r[0].p.components, DAVCOMP_VEVENT | DAVCOMP_VTODO);
	/* personal.ics and personal.xml: plain resources (an empty resourcetype). */
	assert_string_equal(r.r[1].href, "/SOGo/dav/alice/Calendar/personal.ics");
	assert_true(r.r[1].p.have & DAVP_RESOURCETYPE);
	assert_int_equal(r.r[1].p.resourcetype, 0);
	assert_true(r.r[1].p.have & DAVP_PRIVILEGES);
	assert_false(r.r[1].p.writable);
	/* The calendar is also SOGo's schedule outbox; groupdav types ignored. */
	assert_string_equal(r.r[3].href, "/SOGo/dav/alice/Calendar/personal/");
	assert_int_equal(r.r[3].p.resourcetype,
	                 DAVRT_COLLECTION | DAVRT_CALENDAR | DAVRT_SCHEDULE_OUTBOX);
	assert_int_equal(r.r[3].p.components, DAVCOMP_VEVENT | DAVCOMP_VTODO | DAVCOMP_OTHER);
	assert_string_equal(r.r[3].p.sync_token, "-1");
	assert_string_equal(r.r[3].p.ctag, "-1");
	assert_string_equal(r.r[3].p.color, "#AAAAAAFF");
	assert_true(r.r[3].p.writable);
	run_clear(&r);

	read_file_every_way("sogo_addressbook_home.xml", &r);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.r[1].p.resourcetype, DAVRT_COLLECTION | DAVRT_ADDRESSBOOK);
	assert_string_equal(r.r[1].p.displayname, "Personal Address Book");
	run_clear(&r);

	read_file_every_way("sogo_sync_initial.xml", &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.r[0].p.etag, "\"gcs00000000\"");
	assert_non_null(r.doc_token);
	run_clear(&r);

	read_file_every_way("sogo_sync_delta.xml", &r);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.r[0].href, "/SOGo/dav/alice/Calendar/personal/todo1.ics");
	assert_int_equal(r.r[0].status, 0);
	assert_int_equal(r.r[1].status, 404);
	assert_string_equal(r.doc_token, "1796598876");
	run_clear(&r);

	read_file_every_way("sogo_calendar_multiget.xml", &r);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.r[0].p.have, DAVP_ETAG | DAVP_DATA);
	/* No line end after END:VCALENDAR: the value is what the element holds. */
	assert_int_equal(r.r[0].p.data_len, strlen(r.r[0].p.data));
	assert_string_equal(r.r[0].p.data + r.r[0].p.data_len - 14, "\nEND:VCALENDAR");
	assert_int_equal(r.r[1].status, 404);
	run_clear(&r);

	read_file_every_way("sogo_addressbook_multiget.xml", &r);
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.r[0].p.data, "N:Example;Dave\n"));
	run_clear(&r);
}

static void
test_sabre(void **state)
{
	struct run r;

	(void)state;
	read_file_every_way("sabre_home.xml", &r);
	assert_int_equal(r.n, 5);
	assert_int_equal(r.r[0].absent, DAVP_DISPLAYNAME | DAVP_CTAG | DAVP_SYNC_TOKEN |
	                                    DAVP_COMPONENTS | DAVP_COLOR);
	assert_string_equal(r.r[1].p.sync_token, "http://sabre.io/ns/sync/14");
	assert_string_equal(r.r[1].p.color, "#0082c9");
	assert_true(r.r[1].p.writable);
	assert_int_equal(r.r[2].p.components, DAVCOMP_VTODO);
	/* The birthday calendar is read-only (read and read-acl). */
	assert_string_equal(r.r[3].p.displayname, "Contact birthdays");
	assert_true(r.r[3].p.have & DAVP_PRIVILEGES);
	assert_false(r.r[3].p.writable);
	assert_int_equal(r.r[4].p.resourcetype, DAVRT_COLLECTION | DAVRT_SCHEDULE_INBOX);
	run_clear(&r);

	read_file_every_way("sabre_sync.xml", &r);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.r[1].href,
	                    "/remote.php/dav/calendars/alice/personal/meeting%20notes.ics");
	assert_string_equal(r.r[1].p.etag, "\"5e2b0f3c1d9a8b7c6d5e4f3a2b1c0d9e\"");
	assert_int_equal(r.r[2].status, 404);
	assert_string_equal(r.doc_token, "http://sabre.io/ns/sync/17");
	run_clear(&r);

	read_file_every_way("sabre_invalid_token.xml", &r);
	assert_int_equal(r.doc.root, DAVXML_ROOT_ERROR);
	assert_int_equal(r.doc.errors, DAVERR_VALID_SYNC_TOKEN);
	assert_string_equal(r.doc.error_name, "valid-sync-token");
	run_clear(&r);

	read_file_every_way("sabre_addressbook_multiget.xml", &r);
	assert_int_equal(r.n, 2);
	/* &#13; keeps the CRs; UTF-8 kept as is. */
	assert_non_null(strstr(r.r[0].p.data, "\r\nFN:Zoë Müller\r\n"));
	assert_int_equal(r.r[1].p.have, 0);
	assert_int_equal(r.r[1].absent, DAVP_ETAG | DAVP_DATA);
	assert_null(r.r[1].p.data);
	run_clear(&r);
}

static void
test_zimbra_apple(void **state)
{
	struct run r;

	(void)state;
	read_file_every_way("zimbra_calendar_multiget.xml", &r);
	assert_int_equal(r.n, 2);
	/* CDATA: markup characters kept as they are. */
	assert_non_null(strstr(r.r[0].p.data, "\nSUMMARY:Quarterly review <Q4> & planning\n"));
	assert_string_equal(r.r[0].p.etag, "\"1842-1841\"");
	assert_int_equal(r.r[1].status, 404);
	run_clear(&r);

	read_file_every_way("zimbra_principal.xml", &r);
	assert_string_equal(r.r[0].p.principal, "/principals/users/alice%40example.test/");
	run_clear(&r);

	read_file_every_way("zimbra_home.xml", &r);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.r[1].p.ctag, "1842");
	assert_true(r.r[1].p.writable); /* DAV:all */
	assert_int_equal(r.r[1].absent, DAVP_SYNC_TOKEN | DAVP_COLOR);
	assert_int_equal(r.r[2].p.components, DAVCOMP_VTODO);
	run_clear(&r);

	read_file_every_way("apple_home_set.xml", &r);
	assert_string_equal(r.r[0].p.cal_home,
	                    "https://p42-caldav.icloud.com:443/123456789/calendars/");
	assert_string_equal(r.r[0].p.principal, "/123456789/principal/");
	run_clear(&r);

	read_file_every_way("apple_calendars.xml", &r);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.r[1].p.color, "#1BADF8FF");
	assert_string_equal(r.r[2].p.displayname, "Reminders \xe2\x9c\x85");
	assert_int_equal(r.r[2].p.components, DAVCOMP_VTODO);
	assert_int_equal(r.r[4].p.resourcetype, DAVRT_COLLECTION);
	run_clear(&r);
}

/* Parse a literal whole and in every split; both must fail alike. */
static void
expect_fail(const char *body, const struct davxml_limits *lim, const char *want)
{
	struct run r, o;
	size_t len = strlen(body);

	parse(&r, body, len, lim, NULL, 0, 0, -1);
	assert_int_not_equal(r.rc, 0);
	if (strstr(r.err, want) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", r.err, want);
	for (size_t k = 1; k < len; k++) {
		parse(&o, body, len, lim, &k, 1, 0, -1);
		if (o.rc == 0)
			fail_msg("split at %zu read: %s", k, body);
		if (strstr(o.err, want) == NULL)
			fail_msg("split at %zu: \"%s\" does not say \"%s\"", k, o.err, want);
		run_clear(&o);
	}
	run_clear(&r);
}

static void
test_dtd_refused(void **state)
{
	(void)state;
	/* Billion laughs: refused at the DOCTYPE, nothing expanded. */
	expect_fail("<?xml version=\"1.0\"?>\n<!DOCTYPE d [\n<!ENTITY a \"aaaaaaaaaa\">\n"
	            "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
	            "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\n"
	            "<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>&c;</d:href>"
	            "<d:status>HTTP/1.1 200 OK</d:status></d:response></d:multistatus>",
	            NULL, "DTDs are refused");
	/* An external entity (file or network). */
	expect_fail("<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	            "<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>&x;</d:href>"
	            "<d:status>HTTP/1.1 200 OK</d:status></d:response></d:multistatus>",
	            NULL, "DTDs are refused");
	expect_fail(
	    "<!DOCTYPE d SYSTEM \"http://127.0.0.1:9/x.dtd\"><d:multistatus xmlns:d=\"DAV:\"/>",
	    NULL, "DTDs are refused");
	/* No DTD: any entity but the five predefined is not defined. */
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a&x;</d:href>"
	            "</d:response></d:multistatus>",
	            NULL, "Entity 'x' not defined");
}

static void
test_bad_xml(void **state)
{
	(void)state;
	expect_fail("<d:multistatus xmlns:d=\"DAV:\">\n<d:response><d:href>/a</d:response>", NULL,
	            "XML error at line 2");
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href>"
	            "<d:status>HTTP/1.1 200 OK</d:status></d:response>",
	            NULL, "ends inside");
	expect_fail("<x:multistatus xmlns:d=\"DAV:\"/>", NULL, "XML error");
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:status>HTTP/1.1 200 "
	            "OK</d:status></d:response></d:multistatus>",
	            NULL, "has no href");
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href>"
	            "<d:status>200 fine</d:status></d:response></d:multistatus>",
	            NULL, "no HTTP status line");
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href> </d:href>"
	            "<d:status>HTTP/1.1 200 OK</d:status></d:response></d:multistatus>",
	            NULL, "empty href");
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"/><d:multistatus xmlns:d=\"DAV:\"/>", NULL,
	            "XML error");
	/* An empty body. */
	struct run r;
	parse(&r, "", 0, NULL, NULL, 0, 0, -1);
	assert_int_not_equal(r.rc, 0);
	assert_string_equal(r.err, "an empty body");
	run_clear(&r);
}

static void
test_caps(void **state)
{
	struct davxml_limits lim;
	struct run r;
	const char *two =
	    "<d:multistatus xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">"
	    "<d:response><d:href>/a</d:href><d:propstat><d:prop>"
	    "<d:getetag>\"1\"</d:getetag><c:calendar-data>0123456789abcdef"
	    "</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
	    "</d:propstat></d:response>"
	    "<d:response><d:href>/b</d:href><d:propstat><d:prop>"
	    "<d:getetag>\"2\"</d:getetag><c:calendar-data>0123</c:calendar-data>"
	    "</d:prop><d:status>HTTP/1.1 200 OK</d:status>"
	    "</d:propstat></d:response></d:multistatus>";

	(void)state;
	/* A data value over its cap: that response says so, the next one is read. */
	lim = (struct davxml_limits){.max_data = 8};
	parse(&r, two, strlen(two), &lim, NULL, 0, 0, -1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.r[0].oversize, DAVP_DATA);
	assert_null(r.r[0].p.data);
	assert_false(r.r[0].p.have & DAVP_DATA);
	assert_string_equal(r.r[0].p.etag, "\"1\"");
	assert_int_equal(r.r[1].oversize, 0);
	assert_string_equal(r.r[1].p.data, "0123");
	run_clear(&r);
	for (size_t step = 1; step < 5; step++) {
		struct run o;
		parse(&r, two, strlen(two), &lim, NULL, 0, 0, -1);
		parse(&o, two, strlen(two), &lim, NULL, 0, step, -1);
		assert_string_equal(o.dump, r.dump);
		run_clear(&o);
		run_clear(&r);
	}

	lim = (struct davxml_limits){.max_value = 2};
	expect_fail(two, &lim, "a value over 2 bytes");
	lim = (struct davxml_limits){.max_body = 100};
	expect_fail(two, &lim, "a body over 100 bytes");
	lim = (struct davxml_limits){.max_responses = 1};
	expect_fail(two, &lim, "more than 1 responses");
	lim = (struct davxml_limits){.max_depth = 4};
	expect_fail(two, &lim, "nested deeper than 4");
	/* Unknown properties nest as deep as they like, up to the cap. */
	lim = (struct davxml_limits){.max_depth = 8};
	expect_fail("<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href><d:propstat>"
	            "<d:prop><x><x><x><x><x></x></x></x></x></x></d:prop></d:propstat></d:response>"
	            "</d:multistatus>",
	            &lim, "nested deeper than 8");
	/* The callback stops the parse. */
	parse(&r, two, strlen(two), NULL, NULL, 0, 0, 1);
	assert_int_not_equal(r.rc, 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.err, "stopped at response 1");
	run_clear(&r);
}

static void
test_namespaces(void **state)
{
	struct run r;
	/* The DAV: prefix bound to something else: nothing of it is DAV. */
	const char *other = "<D:multistatus xmlns:D=\"urn:not-dav\"><D:response><D:href>/a</D:href>"
	                    "<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>";
	/* Odd prefixes bound to the right URIs, a default namespace, redeclarations. */
	const char *odd =
	    "<q:multistatus xmlns:q=\"DAV:\" xmlns:D=\"urn:ietf:params:xml:ns:caldav\">"
	    "<response xmlns=\"DAV:\"><href>/cal/</href><propstat><prop>"
	    "<resourcetype><collection/><D:calendar/><calendar/></resourcetype>"
	    "<D:getetag>\"not-dav\"</D:getetag>"
	    "<z:getctag xmlns:z=\"http://calendarserver.org/ns/\">7</z:getctag>"
	    "</prop><q:status>HTTP/1.1 200 OK</q:status></propstat></response>"
	    "</q:multistatus>";

	(void)state;
	parse(&r, other, strlen(other), NULL, NULL, 0, 0, -1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.doc.root, DAVXML_ROOT_OTHER);
	assert_int_equal(r.n, 0);
	run_clear(&r);
	parse(&r, odd, strlen(odd), NULL, NULL, 0, 0, -1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.n, 1);
	/* <calendar/> in DAV: is not C:calendar; C:getetag is not DAV:getetag. */
	assert_int_equal(r.r[0].p.resourcetype, DAVRT_COLLECTION | DAVRT_CALENDAR);
	assert_null(r.r[0].p.etag);
	assert_string_equal(r.r[0].p.ctag, "7");
	run_clear(&r);
}

static void
test_encodings(void **state)
{
	/* UTF-16LE with a BOM, as a server may send it; and ISO-8859-1 declared. */
	const char *ascii =
	    "<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href>"
	    "<d:propstat><d:prop><d:displayname>Caf\xc3\xa9</d:displayname></d:prop>"
	    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
	    "</d:multistatus>";
	const char *latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
	                     "<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href>"
	                     "<d:propstat><d:prop><d:displayname>Caf\xe9</d:displayname></d:prop>"
	                     "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
	                     "</d:multistatus>";
	size_t n = strlen(ascii), m = 2;
	char *u16 = xmalloc(2 * n + 2);
	struct run r, o;

	(void)state;
	u16[0] = (char)0xff;
	u16[1] = (char)0xfe;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)ascii[i];
		if (c == 0xc3) { /* é */
			u16[m++] = (char)0xe9;
			u16[m++] = 0;
			i++;
			continue;
		}
		u16[m++] = (char)c;
		u16[m++] = 0;
	}
	parse(&r, u16, m, NULL, NULL, 0, 0, -1);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.r[0].p.displayname, "Caf\xc3\xa9");
	for (size_t k = 1; k < m; k++) {
		parse(&o, u16, m, NULL, &k, 1, 0, -1);
		assert_string_equal(o.dump, r.dump);
		run_clear(&o);
	}
	run_clear(&r);
	free(u16);
	parse(&r, latin1, strlen(latin1), NULL, NULL, 0, 0, -1);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.r[0].p.displayname, "Caf\xc3\xa9");
	run_clear(&r);

	/*
	 * Bytes the encoding cannot convert (a UTF-16 surrogate without its pair):
	 * refused, and nothing of libxml2's goes to stderr.
	 */
	static const char bad16[] = "\xff\xfe<\0d\0>\0\x00\xd8\x41\x00<\0/\0d\0>\0";
	FILE *tmp = tmpfile();
	int saved = dup(2);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	parse(&r, bad16, sizeof(bad16) - 1, NULL, NULL, 0, 0, -1);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_not_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "XML error"));
	assert_int_equal(ftell(tmp), 0);
	fseek(tmp, 0, SEEK_END);
	assert_int_equal(ftell(tmp), 0);
	fclose(tmp);
	run_clear(&r);
}

static void
test_status_code(void **state)
{
	(void)state;
	assert_int_equal(davxml_status_code("HTTP/1.1 200 OK"), 200);
	assert_int_equal(davxml_status_code("  HTTP/1.1 404 Not Found\n"), 404);
	assert_int_equal(davxml_status_code("HTTP/1.1 507"), 507);
	assert_int_equal(davxml_status_code("HTTP/1.1 2000 OK"), 0);
	assert_int_equal(davxml_status_code("HTTP/1.1 OK"), 0);
	assert_int_equal(davxml_status_code("200 OK"), 0);
	assert_int_equal(davxml_status_code("HTTP/1.1 099 x"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_radicale_discovery),
	    cmocka_unit_test(test_radicale_sync),
	    cmocka_unit_test(test_radicale_multiget),
	    cmocka_unit_test(test_sogo),
	    cmocka_unit_test(test_sabre),
	    cmocka_unit_test(test_zimbra_apple),
	    cmocka_unit_test(test_dtd_refused),
	    cmocka_unit_test(test_bad_xml),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_namespaces),
	    cmocka_unit_test(test_encodings),
	    cmocka_unit_test(test_status_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
