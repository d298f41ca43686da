/*
 * test_union.c: the union of mailbox backends (src/mailbox/mailbox_union.c),
 * over two in-memory mailboxes: a mail part (decimal ids, the default) and
 * a part owning the ids that begin with "c", as native mode's DAV
 * collections do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox/mailbox_memory.h"
#include "mailbox/mailbox_union.h"

struct fx {
	struct mbx_backend *mail, *pim, *u;
};

static int
setup(void **state)
{
	static struct fx f;
	struct mbx_union_part parts[2];
	const char *err = NULL;

	memset(&f, 0, sizeof(f));
	f.mail = mbx_memory_new();
	f.pim = mbx_memory_new();
	assert_int_equal(mbx_memory_add_folder(f.mail, "1", "0", "Inbox", MBX_FOLDER_INBOX, 7), 0);
	assert_int_equal(mbx_memory_add_folder(f.mail, "2", "0", "Sent", MBX_FOLDER_SENT, 7), 0);
	/* A mail folder under the other part's prefix is not the mail part's to list. */
	assert_int_equal(mbx_memory_add_folder(f.mail, "c9", "0", "Stray", MBX_FOLDER_MAIL, 7), 0);
	assert_int_equal(mbx_memory_add_folder(f.pim, "c1", "0", "Contacts", 9, 1), 0);
	assert_int_equal(mbx_memory_add_folder(f.pim, "c2", "0", "Calendar", 8, 1), 0);
	/* ...and a decimal id is not the DAV part's. */
	assert_int_equal(mbx_memory_add_folder(f.pim, "5", "0", "Stray", 8, 1), 0);
	assert_int_not_equal(mbx_memory_append(f.mail, "1", "a@example.com", "mail one", 100, 0),
	                     0);
	assert_int_not_equal(mbx_memory_append(f.pim, "c1", "b@example.com", "contact", 200, 0), 0);
	assert_int_not_equal(mbx_memory_append(f.pim, "c1", "c@example.com", "contact 2", 300, 0),
	                     0);
	parts[0] = (struct mbx_union_part){f.mail, NULL};
	parts[1] = (struct mbx_union_part){f.pim, "c"};
	f.u = mbx_union_new(parts, 2, &err);
	assert_non_null(f.u);
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	mbx_destroy(&f->u); /* the parts with it */
	return 0;
}

static void
test_listing(void **state)
{
	struct fx *f = *state;
	const struct mbx_folder *fl;
	const char *err;
	size_t n;

	assert_int_equal(mbx_list_folders(f->u, &fl, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_string_equal(fl[0].id, "1");
	assert_string_equal(fl[1].id, "2");
	assert_string_equal(fl[2].id, "c1");
	assert_int_equal(fl[2].type, 9);
	assert_string_equal(fl[3].id, "c2");
	assert_null(mbx_folder_find(f->u, "c9"));
	assert_null(mbx_folder_find(f->u, "5"));
	assert_non_null(mbx_folder_find(f->u, "c2"));
}

static void
test_routing(void **state)
{
	struct fx *f = *state;
	struct mbx_window w = {100, 0, 0};
	struct mbx_changes ch;
	struct mbx_email e;
	const char *err;
	char cur[MBX_CURSOR_MAX + 1];

	assert_int_equal(mbx_changes(f->u, "1", NULL, &w, &ch, &err), 1);
	assert_int_equal(ch.n_adds, 1);
	assert_int_equal(mbx_fetch(f->u, "1", ch.adds[0].id, &e, &err), 1);
	assert_string_equal(e.subject, "mail one");
	mbx_email_clear(&e);
	mbx_changes_clear(&ch);

	assert_int_equal(mbx_changes(f->u, "c1", NULL, &w, &ch, &err), 1);
	assert_int_equal(ch.n_adds, 2);
	assert_int_equal(mbx_fetch(f->u, "c1", ch.adds[0].id, &e, &err), 1);
	assert_string_equal(e.subject, "contact 2"); /* newest first */
	mbx_email_clear(&e);
	/* A delete goes to the part that owns the folder, and only there. */
	snprintf(cur, sizeof(cur), "%s", ch.cursor);
	assert_int_equal(mbx_remove(f->u, "c1", ch.adds[1].id, false, cur, &err), 1);
	mbx_changes_clear(&ch);
	assert_int_equal(mbx_memory_count(f->pim, "c1"), 1);
	assert_int_equal(mbx_memory_count(f->mail, "1"), 1);
	/* A folder no part lists: the owning part answers it is unknown. */
	assert_int_equal(mbx_changes(f->u, "c7", NULL, &w, &ch, &err), -1);
}

static void
test_capabilities(void **state)
{
	struct fx *f = *state;
	char new_id[MBX_ID_MAX + 1] = "", cur[MBX_CURSOR_MAX + 1] = "";
	struct mbx_send_out so;
	const char *err;
	size_t len;

	assert_true(mbx_has_cursor(f->u));
	assert_true(mbx_can_send(f->u));
	assert_true(mbx_can_change_folders(f->u));
	/* Send goes to the default part. */
	assert_int_equal(mbx_send(f->u, "To: x@example.com\r\n\r\nhi\r\n", 25, false, &so, &err),
	                 1);
	assert_non_null(mbx_memory_sent(f->mail, 0, &len));
	assert_null(mbx_memory_sent(f->pim, 0, &len));
	/* No move from one part into another. */
	assert_int_equal(mbx_move(f->u, "1", "1", "c1", cur, new_id, &err), -1);
	assert_int_equal(mbx_memory_count(f->mail, "1"), 1);
	/* A new folder at the top is a mail folder. */
	assert_int_equal(mbx_folder_create(f->u, "0", "Projects", new_id, &err), 1);
	assert_non_null(mbx_folder_find(f->mail, new_id));
	assert_non_null(mbx_folder_find(f->u, new_id));
}

/* PIM objects: written by the device, changed on the server, conflicts. */
static void
test_objects(void **state)
{
	struct fx *f = *state;
	struct mbx_window w = {100, 0, 0};
	struct mbx_changes ch;
	struct mbx_object o;
	char cur[MBX_CURSOR_MAX + 1], id[MBX_ID_MAX + 1] = "", *etag;
	const char *err;
	static const char card[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n";

	assert_true(mbx_has_objects(f->u));
	assert_int_equal(mbx_changes(f->u, "c1", NULL, &w, &ch, &err), 1);
	snprintf(cur, sizeof(cur), "%s", ch.cursor);
	mbx_changes_clear(&ch);
	/* The device adds a contact: it gets an id, and the add is not echoed. */
	assert_int_equal(
	    mbx_put_object(f->u, "c1", NULL, NULL, card, strlen(card), "uid-1", cur, id, &err), 1);
	mbx_end(f->u);
	assert_true(id[0] != '\0');
	assert_int_equal(mbx_changes(f->u, "c1", cur, &w, &ch, &err), 1);
	assert_int_equal(ch.total, 0);
	mbx_changes_clear(&ch);
	assert_int_equal(mbx_fetch_object(f->u, "c1", id, &o, &err), 1);
	assert_memory_equal(o.data, card, strlen(card));
	assert_non_null(o.etag);
	etag = strdup(o.etag);
	mbx_object_clear(&o);
	/* Changed on the server: listed among the changes, with a new version. */
	assert_int_equal(mbx_memory_replace(f->pim, "c1", (uint32_t)strtoul(id, NULL, 10), "X", 1),
	                 1);
	assert_int_equal(mbx_changes(f->u, "c1", cur, &w, &ch, &err), 1);
	assert_int_equal(ch.n_changed, 1);
	assert_string_equal(ch.changed[0].id, id);
	mbx_changes_clear(&ch);
	/* The device's change made from the old version: a conflict, nothing written. */
	assert_int_equal(
	    mbx_put_object(f->u, "c1", id, etag, card, strlen(card), NULL, cur, NULL, &err),
	    MBX_CONFLICT);
	mbx_end(f->u);
	assert_int_equal(mbx_fetch_object(f->u, "c1", id, &o, &err), 1);
	assert_string_equal(o.data, "X");
	mbx_object_clear(&o);
	free(etag);
	/* A folder is served by its own part: mail item 1 is no object. */
	assert_int_equal(mbx_fetch_object(f->u, "1", "1", &o, &err), 0);
}

/* Both parts pend on their first op; the union's wait ends once, after both. */
static int waited;

static void
on_waited(void *arg)
{
	(void)arg;
	waited++;
}

static void
test_pending(void **state)
{
	struct fx *f = *state;
	const struct mbx_folder *fl;
	const char *err;
	size_t n;

	mbx_memory_set_mode(f->mail, true, true);
	mbx_memory_set_mode(f->pim, true, true);
	assert_true(mbx_may_pend(f->u));
	mbx_begin(f->u);
	assert_int_equal(mbx_list_folders(f->u, &fl, &n, &err), MBX_PENDING);
	waited = 0;
	mbx_wait(f->u, on_waited, NULL);
	assert_int_equal(waited, 1);
	mbx_begin(f->u);
	assert_int_equal(mbx_list_folders(f->u, &fl, &n, &err), 0);
	assert_int_equal(n, 4);
	mbx_end(f->u);
}

static void
test_refused(void **state)
{
	struct mbx_backend *a = mbx_memory_new(), *b = mbx_memory_new(), *q;
	struct mbx_quarantine_config qc = {0};
	struct notice_facts facts = {0};
	struct mbx_union_part p[2];
	const char *err = NULL;

	(void)state;
	p[0] = (struct mbx_union_part){a, ""};
	p[1] = (struct mbx_union_part){b, NULL};
	assert_null(mbx_union_new(p, 2, &err)); /* two defaults */
	assert_non_null(strstr(err, "one prefix"));
	p[1].prefix = "c";
	assert_null(mbx_union_new(p, 0, &err));
	p[0].prefix = "c";
	assert_null(mbx_union_new(p, 2, &err)); /* one prefix twice */
	p[1].prefix = "d";
	assert_null(mbx_union_new(p, 2, &err)); /* no default part */
	assert_non_null(strstr(err, "default"));
	p[0].prefix = "verylongprefix";
	assert_null(mbx_union_new(p, 2, &err));
	facts.account = "alice@example.com";
	facts.device_id = "DEV1";
	q = mbx_quarantine_new(&qc, &facts);
	p[0] = (struct mbx_union_part){q, NULL};
	assert_null(mbx_union_new(p, 2, &err)); /* the quarantine mailbox has no cursors */
	assert_non_null(strstr(err, "cursor"));
	mbx_destroy(&a);
	mbx_destroy(&b);
	mbx_destroy(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
