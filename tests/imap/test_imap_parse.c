/*
 * test_imap_parse.c: the IMAP response parser (src/imap/imap_parse.c and
 * imap_data.c) as an IMAP server's bytes reach it: every sample gives the
 * same events fed whole, split at every byte and one byte at a time; the
 * typed readers; uid sets; modified UTF-7; malformed input refused; caps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_parse.h"
#include "lib/util.h"

/* ---- a transcript of the events ---- */

struct rec {
	struct sbuf t;   /* one line per event */
	struct sbuf lit; /* the streamed literal being read */
	int (*check)(const struct imap_response *r, void *arg);
	void *check_arg;
};

/* Record a response as one line of the transcript. */
static int
rec_response(const struct imap_response *r, void *arg)
{
	struct rec *rc = arg;
	char *buf = xmalloc(1 << 16);

	sbuf_add(&rc->t, imap_response_dump(r, buf, 1 << 16));
	sbuf_add(&rc->t, "\n");
	free(buf);
	if (rc->check != NULL)
		return rc->check(r, rc->check_arg);
	return 0;
}

/* Record a streamed literal once its last piece came. */
static int
rec_chunk(const struct imap_literal_info *li, const char *data, size_t len, void *arg)
{
	struct rec *rc = arg;

	if (li->offset == 0)
		rc->lit.len = 0;
	if (rc->lit.len != li->offset)
		return -1;
	sbuf_addn(&rc->lit, data, len);
	if (li->offset + len == li->size) {
		sbuf_printf(&rc->t, "literal seq=%u %s size=%llu: ", li->seq, li->item,
		            (unsigned long long)li->size);
		for (size_t i = 0; i < rc->lit.len; i++) {
			unsigned char c = (unsigned char)rc->lit.p[i];

			if (c < 0x20 || c >= 0x7f)
				sbuf_printf(&rc->t, "\\x%02x", c);
			else
				sbuf_addn(&rc->t, rc->lit.p + i, 1);
		}
		sbuf_add(&rc->t, "\n");
	}
	return 0;
}

/* Feed in pieces: cut at every position in cuts (ascending), or by step bytes. */
static char *
run(const char *in, size_t len, size_t step, size_t cut, bool stream, const char **err)
{
	struct rec rc = {0};
	struct imap_parser_cbs cbs = {.on_response = rec_response,
	                              .on_chunk = stream ? rec_chunk : NULL};
	struct imap_parser *p = imap_parser_new(&cbs, &rc);
	size_t i = 0;
	int rv = 0;

	*err = NULL;
	if (cut > 0 && cut < len) {
		rv = imap_parser_feed(p, in, cut, err);
		if (rv == 0)
			rv = imap_parser_feed(p, in + cut, len - cut, err);
	} else {
		while (i < len && rv == 0) {
			size_t n = len - i < step ? len - i : step;

			rv = imap_parser_feed(p, in + i, n, err);
			i += n;
		}
	}
	if (rv < 0) {
		static char saved[256];

		snprintf(saved, sizeof(saved), "%s", *err);
		*err = saved;
		sbuf_add(&rc.t, "ERROR\n");
	} else if (!imap_parser_idle(p)) {
		sbuf_add(&rc.t, "PARTIAL\n");
	}
	imap_parser_free(p);
	free(rc.lit.p);
	return sbuf_take(&rc.t);
}

/*
 * The transcript of in fed whole; asserts that every split at one byte and
 * one byte at a time give the same.
 */
static char *
parse_all(const char *in, size_t len, bool stream, const char **err)
{
	char *whole = run(in, len, len ? len : 1, 0, stream, err), *other;
	const char *e2;

	for (size_t cut = 1; cut < len; cut++) {
		other = run(in, len, 0, cut, stream, &e2);
		if (strcmp(whole, other) != 0)
			fail_msg("split at %zu differs:\n%s\nvs\n%s", cut, whole, other);
		free(other);
	}
	other = run(in, len, 1, 0, stream, &e2);
	assert_string_equal(whole, other);
	free(other);
	return whole;
}

/* in gives exactly want, however it is split. */
static void
expect(const char *in, const char *want)
{
	const char *err;
	char *got = parse_all(in, strlen(in), true, &err);

	if (strcmp(got, want) != 0)
		fail_msg("for %s\ngot:\n%s\nwant:\n%s(err %s)", in, got, want, err ? err : "-");
	free(got);
}

/* in (len bytes) is refused with an error containing errpart, however split. */
static void
expect_error_n(const char *in, size_t len, const char *errpart)
{
	const char *err;
	char *got = parse_all(in, len, true, &err);

	if (err == NULL || strstr(err, errpart) == NULL)
		fail_msg("for %s: want error with '%s', got %s\n%s", in, errpart,
		         err ? err : "none", got);
	free(got);
}

/* expect_error_n for a string. */
static void
expect_error(const char *in, const char *errpart)
{
	expect_error_n(in, strlen(in), errpart);
}

/* ---- statuses and continuations ---- */

/* Tagged and untagged statuses, codes, continuations. */
static void
test_statuses(void **state)
{
	(void)state;
	expect("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
	       "STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
	       "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
	       "STARTTLS AUTH=PLAIN] text=Dovecot ready.\n");
	expect("a1 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
	       "a1 OK [READ-WRITE] text=Select completed (0.001 + 0.000 secs).\n");
	expect("a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
	       "a2 NO [AUTHENTICATIONFAILED] text=Authentication failed.\n");
	expect("a3 bad Error in IMAP command: Unknown command.\r\n",
	       "a3 BAD text=Error in IMAP command: Unknown command.\n");
	expect("* BYE Logging out\r\n* PREAUTH ready\r\n", "* BYE text=Logging out\n"
	                                                   "* PREAUTH text=ready\n");
	expect("+ idling\r\n+\r\n+ \r\n+ AGJvYgBzZWNyZXQ=\r\n",
	       "+ idling\n+ \n+ \n+ AGJvYgBzZWNyZXQ=\n");
	/* A status text that ends like a literal is still only text. */
	expect("a4 OK done {5}\r\n* OK x {3}\r\n", "a4 OK text=done {5}\n* OK text=x {3}\n");
	expect("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* OK [UIDNEXT 4392] Predicted\r\n"
	       "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
	       "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
	       "* OK [CLOSED] Previous mailbox closed.\r\n* OK [NOMODSEQ] Sorry\r\n"
	       "a5 OK [APPENDUID 38505 3955] APPEND completed\r\n"
	       "a6 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
	       "* NO [ALERT] System shutdown in 10 minutes\r\n"
	       "* OK [REFERRAL imap://x/y] odd [ ] text\r\n",
	       "* OK [UIDVALIDITY 3857529045] text=UIDs valid\n"
	       "* OK [UIDNEXT 4392] text=Predicted\n"
	       "* OK [HIGHESTMODSEQ 715194045007] text=Highest\n"
	       "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] text=Limited\n"
	       "* OK [CLOSED] text=Previous mailbox closed.\n"
	       "* OK [NOMODSEQ] text=Sorry\n"
	       "a5 OK [APPENDUID 38505 3955] text=APPEND completed\n"
	       "a6 OK [COPYUID 38505 304,319:320 3956:3958] text=Done\n"
	       "* NO [ALERT] text=System shutdown in 10 minutes\n"
	       "* OK [REFERRAL imap://x/y] text=odd [ ] text\n");
	/* A code whose arguments are not items: kept as one atom. */
	expect("* OK [X-ODD a\"b] t\r\n", "* OK [X-ODD a\"b] text=t\n");
}

/* The code's arguments as nodes: numbers, sets, flag lists. */
static int
check_codes(const struct imap_response *r, void *arg)
{
	int *n = arg;

	if (r->code != NULL && strcmp(r->code, "UIDVALIDITY") == 0) {
		assert_int_equal(r->code_args->type, IMAP_NODE_NUMBER);
		assert_int_equal(r->code_args->num, 3857529045u);
		(*n)++;
	}
	if (r->code != NULL && strcmp(r->code, "COPYUID") == 0) {
		struct uidset src = {0}, dst = {0};
		const char *err;
		const struct imap_node *a = r->code_args;

		assert_int_equal(a->num, 38505);
		assert_int_equal(uidset_parse_n(&src, a->next->s, a->next->len, &err), 0);
		assert_int_equal(uidset_parse_n(&dst, a->next->next->s, a->next->next->len, &err),
		                 0);
		assert_int_equal(uidset_count(&src), 3);
		assert_int_equal(uidset_count(&dst), 3);
		uidset_clear(&src);
		uidset_clear(&dst);
		(*n)++;
	}
	if (r->code != NULL && strcmp(r->code, "CAPABILITY") == 0) {
		uint32_t caps = imap_caps_of(r->code_args);

		assert_true(caps & IMAP_CAP_STARTTLS);
		assert_true(caps & IMAP_CAP_LITERAL_PLUS);
		assert_true(caps & IMAP_CAP_AUTH_PLAIN);
		assert_false(caps & IMAP_CAP_QRESYNC);
		(*n)++;
	}
	return 0;
}

/* Response codes' arguments as nodes. */
static void
test_codes(void **state)
{
	static const char in[] = "* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS AUTH=PLAIN] hi\r\n"
	                         "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
	                         "a6 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n";
	struct rec rc = {.check = check_codes};
	struct imap_parser_cbs cbs = {.on_response = rec_response};
	struct imap_parser *p = imap_parser_new(&cbs, &rc);
	const char *err;
	int n = 0;
	(void)state;

	rc.check_arg = &n;
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &err), 0);
	assert_int_equal(n, 3);
	imap_parser_free(p);
	free(rc.t.p);
}

/* ---- untagged data and its readers ---- */

/* Run in through a parser, giving each response to check. */
static void
each(const char *in, int (*check)(const struct imap_response *, void *), void *arg)
{
	struct rec rc = {.check = check, .check_arg = arg};
	struct imap_parser_cbs cbs = {.on_response = rec_response, .on_chunk = rec_chunk};
	struct imap_parser *p = imap_parser_new(&cbs, &rc);
	const char *err = NULL;

	if (imap_parser_feed(p, in, strlen(in), &err) < 0)
		fail_msg("%s", err);
	imap_parser_free(p);
	free(rc.t.p);
	free(rc.lit.p);
}

/* Collect capability bits. */
static int
check_caps(const struct imap_response *r, void *arg)
{
	uint32_t *caps = arg;

	assert_int_equal(r->kind, IMAP_RESP_DATA);
	*caps |= imap_caps_of(r->data);
	return 0;
}

/* CAPABILITY and ENABLED data. */
static void
test_capability_enabled(void **state)
{
	uint32_t caps = 0;
	(void)state;

	each("* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE CONDSTORE QRESYNC ENABLE "
	     "UTF8=ACCEPT SPECIAL-USE MOVE UIDPLUS NOTIFY ESEARCH BINARY X-UNKNOWN\r\n",
	     check_caps, &caps);
	assert_int_equal(caps, IMAP_CAP_IMAP4REV1 | IMAP_CAP_SASL_IR | IMAP_CAP_LITERAL_PLUS |
	                           IMAP_CAP_IDLE | IMAP_CAP_CONDSTORE | IMAP_CAP_QRESYNC |
	                           IMAP_CAP_ENABLE | IMAP_CAP_UTF8_ACCEPT | IMAP_CAP_SPECIAL_USE |
	                           IMAP_CAP_MOVE | IMAP_CAP_UIDPLUS | IMAP_CAP_NOTIFY |
	                           IMAP_CAP_ESEARCH | IMAP_CAP_BINARY);
	caps = 0;
	each("* ENABLED CONDSTORE QRESYNC\r\n", check_caps, &caps);
	assert_int_equal(caps, IMAP_CAP_CONDSTORE | IMAP_CAP_QRESYNC);
	assert_string_equal(imap_cap_name(IMAP_CAP_LITERAL_PLUS), "LITERAL+");
}

struct lists {
	int n;
	struct imap_list l[8];
};

/* Read each LIST response. */
static int
check_list(const struct imap_response *r, void *arg)
{
	struct lists *ls = arg;
	const char *err;

	assert_string_equal(r->name, "LIST");
	assert_int_equal(imap_list_read(r, false, &ls->l[ls->n], &err), 0);
	ls->l[ls->n].raw = NULL;
	ls->n++;
	return 0;
}

/* LIST: flags incl. SPECIAL-USE, delimiters, modified UTF-7 and literal names. */
static void
test_list(void **state)
{
	struct lists ls = {0};
	(void)state;

	expect("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
	       "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\n");
	each("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	     "* LIST (\\HasChildren) \".\" INBOX\r\n"
	     "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entw&APw-rfe\"\r\n"
	     "* LIST (\\Trash \\HasNoChildren) \"/\" {30}\r\n&AMk-l&AOk-ments supprim&AOk-s\r\n"
	     "* LIST (\\Noselect \\Junk \\Archive) NIL \"a&-b\"\r\n"
	     "* LIST () \"/\" 2023\r\n",
	     check_list, &ls);
	assert_int_equal(ls.n, 6);
	assert_string_equal(ls.l[0].name, "Sent");
	assert_int_equal(ls.l[0].flags, IMAP_LIST_HASNOCHILDREN | IMAP_LIST_SENT);
	assert_int_equal(ls.l[0].delim, '/');
	assert_string_equal(ls.l[1].name, "INBOX");
	assert_int_equal(ls.l[1].delim, '.');
	assert_string_equal(ls.l[2].name, "Entw\xc3\xbcrfe");
	assert_true(ls.l[2].flags & IMAP_LIST_DRAFTS);
	assert_string_equal(ls.l[3].name, "\xc3\x89l\xc3\xa9ments supprim\xc3\xa9s");
	assert_true(ls.l[3].flags & IMAP_LIST_TRASH);
	assert_string_equal(ls.l[4].name, "a&b");
	assert_int_equal(ls.l[4].delim, '\0');
	assert_int_equal(ls.l[4].flags, IMAP_LIST_NOSELECT | IMAP_LIST_JUNK | IMAP_LIST_ARCHIVE);
	assert_string_equal(ls.l[5].name, "2023");
}

/* Read the STATUS response. */
static int
check_status(const struct imap_response *r, void *arg)
{
	struct imap_status_data *st = arg;
	const char *err;

	static char mailboxid[64];

	assert_int_equal(imap_status_read(r, st, &err), 0);
	assert_string_equal(st->raw, "INBOX");
	st->raw = NULL;
	if (st->mailboxid != NULL) { /* kept past the response */
		snprintf(mailboxid, sizeof(mailboxid), "%s", st->mailboxid);
		st->mailboxid = mailboxid;
	}
	return 0;
}

/* STATUS counters. */
static void
test_status(void **state)
{
	struct imap_status_data st;
	(void)state;

	each("* STATUS INBOX (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 1 UNSEEN 3 "
	     "HIGHESTMODSEQ 7011231777)\r\n",
	     check_status, &st);
	assert_int_equal(st.messages, 231);
	assert_int_equal(st.uidnext, 44292);
	assert_int_equal(st.uidvalidity, 1);
	assert_int_equal(st.unseen, 3);
	assert_int_equal(st.highestmodseq, 7011231777ull);
	assert_int_equal(st.have, IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT |
	                              IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_UNSEEN |
	                              IMAP_STATUS_HIGHESTMODSEQ);
	assert_null(st.mailboxid);
	/* RFC 8474's MAILBOXID, a parenthesized objectid. */
	each("* STATUS INBOX (UIDVALIDITY 7 MAILBOXID (F2212ea87-6097-4256-9d51-71338625))\r\n",
	     check_status, &st);
	assert_int_equal(st.uidvalidity, 7);
	assert_string_equal(st.mailboxid, "F2212ea87-6097-4256-9d51-71338625");
	assert_int_equal(st.have, IMAP_STATUS_UIDVALIDITY | IMAP_STATUS_MAILBOXID);
	/* An objectid may be all digits (RFC 8474 4: ALPHA / DIGIT / "_" / "-"). */
	each("* STATUS INBOX (MAILBOXID (1234) MESSAGES 2)\r\n", check_status, &st);
	assert_string_equal(st.mailboxid, "1234");
	assert_int_equal(st.messages, 2);
}

struct nums {
	uint32_t exists, expunge;
	bool earlier;
	struct uidset vanished, search;
	uint64_t modseq;
	struct imap_esearch es;
};

/* Read the numeric responses. */
static int
check_nums(const struct imap_response *r, void *arg)
{
	struct nums *n = arg;
	const char *err = NULL;

	if (strcmp(r->name, "EXISTS") == 0)
		n->exists = r->number;
	else if (strcmp(r->name, "EXPUNGE") == 0)
		n->expunge = r->number;
	else if (strcmp(r->name, "VANISHED") == 0)
		assert_int_equal(imap_vanished_read(r, &n->earlier, &n->vanished, &err), 0);
	else if (strcmp(r->name, "SEARCH") == 0)
		assert_int_equal(imap_search_read(r, &n->search, &n->modseq, &err), 0);
	else if (strcmp(r->name, "ESEARCH") == 0)
		assert_int_equal(imap_esearch_read(r, &n->es, &err), 0);
	return 0;
}

/* EXISTS, EXPUNGE, VANISHED, SEARCH, ESEARCH. */
static void
test_numbers_sets(void **state)
{
	struct nums n = {0};
	char *s;
	(void)state;

	each("* 23 EXISTS\r\n* 4 EXPUNGE\r\n* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"
	     "* SEARCH 2 84 882 3 4 (MODSEQ 917162500)\r\n"
	     "* ESEARCH (TAG \"a567\") UID MIN 7 MAX 3800 COUNT 15 ALL 7,9:12,3800\r\n",
	     check_nums, &n);
	assert_int_equal(n.exists, 23);
	assert_int_equal(n.expunge, 4);
	assert_true(n.earlier);
	s = uidset_format(&n.vanished);
	assert_string_equal(s, "41,43:116,118,120:211,214:540");
	free(s);
	assert_int_equal(uidset_count(&n.vanished), 1 + 74 + 1 + 92 + 327);
	s = uidset_format(&n.search);
	assert_string_equal(s, "2:4,84,882");
	free(s);
	assert_int_equal(n.modseq, 917162500);
	assert_true(n.es.uid);
	assert_int_equal(n.es.min, 7);
	assert_int_equal(n.es.max, 3800);
	assert_int_equal(n.es.count, 15);
	assert_true(uidset_contains(&n.es.all, 10));
	assert_false(uidset_contains(&n.es.all, 8));
	uidset_clear(&n.vanished);
	uidset_clear(&n.search);
	uidset_clear(&n.es.all);
	n = (struct nums){0};
	each("* SEARCH\r\n* VANISHED 405,407\r\n", check_nums, &n);
	assert_int_equal(n.search.n, 0);
	assert_false(n.earlier);
	assert_int_equal(uidset_count(&n.vanished), 2);
	uidset_clear(&n.vanished);
}

/* The reader's answer to each SEARCH / VANISHED, with its reason. */
struct sets {
	struct uidset set;
	uint64_t modseq;
	bool earlier;
	int rv;
	const char *err;
};

static int
check_sets(const struct imap_response *r, void *arg)
{
	struct sets *x = arg;

	if (strcmp(r->name, "SEARCH") == 0)
		x->rv = imap_search_read(r, &x->set, &x->modseq, &x->err);
	else if (strcmp(r->name, "VANISHED") == 0)
		x->rv = imap_vanished_read(r, &x->earlier, &x->set, &x->err);
	return 0;
}

/* A line "* name" followed by n numbers from first, step apart ("a,b" sets when comma). */
static char *
numbers_line(const char *name, uint32_t first, uint32_t step, size_t n, bool comma)
{
	struct sbuf b = {0};

	sbuf_printf(&b, "* %s ", name);
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&b, "%s%u", i ? (comma ? "," : " ") : "", first + (uint32_t)i * step);
	sbuf_add(&b, "\r\n");
	return sbuf_take(&b);
}

/*
 * Sets from a server: '*' kept, VANISHED added to what the set holds, and
 * the server cap (65,536 ranges, beyond a cursor's 1,024) enforced as an
 * error the reader reports, for SEARCH numbers as for VANISHED sets.
 */
static void
test_sets_from_server(void **state)
{
	struct sets x = {0};
	char *line, *f;
	(void)state;

	each("* VANISHED 9:*,5\r\n* VANISHED 1:3,4,20:11\r\n", check_sets, &x);
	assert_int_equal(x.rv, 0);
	f = uidset_format(&x.set);
	assert_string_equal(f, "1:5,9:*");
	free(f);
	uidset_clear(&x.set);
	/* SEARCH: 65,536 separate UIDs fit, ascending (the server's order) */
	x = (struct sets){0};
	line = numbers_line("SEARCH", 1, 2, IMAP_UIDSET_MAX, false);
	each(line, check_sets, &x);
	free(line);
	assert_int_equal(x.rv, 0);
	assert_int_equal(x.set.n, IMAP_UIDSET_MAX);
	assert_int_equal(uidset_count(&x.set), IMAP_UIDSET_MAX);
	uidset_clear(&x.set);
	/* one more: refused, not dropped */
	x = (struct sets){0};
	line = numbers_line("SEARCH", 1, 2, IMAP_UIDSET_MAX + 1, false);
	each(line, check_sets, &x);
	free(line);
	assert_int_equal(x.rv, -1);
	assert_string_equal(x.err, "SEARCH result of too many ranges");
	uidset_clear(&x.set);
	/* VANISHED: the same cap, in descending order too */
	x = (struct sets){0};
	line =
	    numbers_line("VANISHED", 2 * IMAP_UIDSET_MAX - 1, (uint32_t)-2, IMAP_UIDSET_MAX, true);
	each(line, check_sets, &x);
	free(line);
	assert_int_equal(x.rv, 0);
	assert_int_equal(x.set.n, IMAP_UIDSET_MAX);
	assert_true(uidset_contains(&x.set, 1));
	assert_false(uidset_contains(&x.set, 2));
	uidset_clear(&x.set);
	x = (struct sets){0};
	line = numbers_line("VANISHED", 2 * IMAP_UIDSET_MAX + 1, (uint32_t)-2, IMAP_UIDSET_MAX + 1,
	                    true);
	each(line, check_sets, &x);
	free(line);
	assert_int_equal(x.rv, -1);
	assert_non_null(x.err);
	assert_int_equal(x.set.n, 0);
	uidset_clear(&x.set);
}

static const char fetch_sample[] =
    "* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded custom) MODSEQ (12121231000) "
    "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 "
    "ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary\" "
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    "((NIL NIL \"imap\" \"cac.washington.edu\")) "
    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
    "\"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") "
    "BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 "
    "NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 4282 "
    "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
    "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1)(\"APPLICATION\" \"PDF\" (\"NAME\" "
    "\"a.pdf\") NIL NIL \"BASE64\" 4000 NIL (\"attachment\" (\"FILENAME\" \"a.pdf\")) NIL) "
    "\"MIXED\") 80)(\"IMAGE\" \"PNG\" NIL \"<id1>\" NIL \"BASE64\" 300 NIL (\"inline\" NIL) "
    "NIL NIL) \"MIXED\" (\"BOUNDARY\" \"xx\") NIL NIL NIL))\r\n";

/* Every field of the sample FETCH. */
static int
check_fetch(const struct imap_response *r, void *arg)
{
	struct imap_fetch f;
	struct imap_address a;
	const struct imap_body *b;
	const char *err = NULL;

	assert_int_equal(imap_fetch_read(r, &f, &err), 0);
	assert_int_equal(f.seq, 12);
	assert_int_equal(f.uid, 4827313);
	assert_int_equal(f.flags, IMAP_FLAG_SEEN | IMAP_FLAG_FORWARDED);
	assert_int_equal(f.modseq, 12121231000ull);
	assert_int_equal(f.internaldate, 837596665); /* 1996-07-17T09:44:25Z */
	assert_int_equal(f.size, 44827);
	assert_string_equal(f.envelope.subject, "IMAP4rev1 WG mtg summary");
	assert_null(f.envelope.in_reply_to);
	assert_string_equal(f.envelope.message_id, "<B27397-0100000@cac.washington.edu>");
	assert_int_equal(imap_address_get(f.envelope.from, 0, &a), 0);
	assert_string_equal(a.name, "Terry Gray");
	assert_string_equal(a.mailbox, "gray");
	assert_string_equal(a.host, "cac.washington.edu");
	assert_int_equal(imap_address_get(f.envelope.cc, 1, &a), 0);
	assert_string_equal(a.mailbox, "KLENSIN");
	assert_int_equal(imap_address_get(f.envelope.cc, 2, &a), -1);
	assert_null(f.envelope.bcc);
	assert_non_null(f.body);
	assert_true(f.body->multipart);
	assert_string_equal(f.body->section, "");
	assert_string_equal(f.body->subtype, "MIXED");
	assert_string_equal(imap_param(f.body->params, "boundary"), "xx");
	b = imap_body_find(f.body, "1");
	assert_non_null(b);
	assert_string_equal(b->subtype, "PLAIN");
	assert_string_equal(imap_param(b->params, "charset"), "US-ASCII");
	assert_int_equal(b->size, 1152);
	assert_int_equal(b->lines, 23);
	b = imap_body_find(f.body, "2");
	assert_string_equal(b->type, "MESSAGE");
	assert_int_equal(b->lines, 80);
	b = imap_body_find(f.body, "2.1");
	assert_string_equal(b->type, "TEXT");
	b = imap_body_find(f.body, "2.2");
	assert_string_equal(b->subtype, "PDF");
	assert_string_equal(b->encoding, "BASE64");
	assert_string_equal(b->disposition, "attachment");
	assert_string_equal(imap_param(b->disp_params, "filename"), "a.pdf");
	b = imap_body_find(f.body, "3");
	assert_string_equal(b->id, "<id1>");
	assert_string_equal(b->disposition, "inline");
	assert_null(imap_body_find(f.body, "4"));
	imap_fetch_clear(&f);
	*(int *)arg += 1;
	return 0;
}

/* FETCH with ENVELOPE and a nested BODYSTRUCTURE. */
static void
test_fetch(void **state)
{
	const char *err;
	char *t;
	int n = 0;
	(void)state;

	each(fetch_sample, check_fetch, &n);
	assert_int_equal(n, 1);
	t = parse_all(fetch_sample, sizeof(fetch_sample) - 1, true, &err);
	assert_null(err);
	assert_non_null(strstr(t, "* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded custom)"));
	free(t);
}

/* A single-part message: its part is 1. */
static int
check_single(const struct imap_response *r, void *arg)
{
	struct imap_fetch f;
	const char *err = NULL;

	assert_int_equal(imap_fetch_read(r, &f, &err), 0);
	assert_false(f.body->multipart);
	assert_string_equal(f.body->section, "1");
	assert_non_null(imap_body_find(f.body, "1"));
	imap_fetch_clear(&f);
	return 0;
}

/* A single-part message's body. */
static void
test_fetch_single_part(void **state)
{
	(void)state;
	each("* 1 FETCH (BODYSTRUCTURE (\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
	     "\"quoted-printable\" 20 2 NIL NIL NIL NIL))\r\n",
	     check_single, NULL);
}

/* BODY[]/BINARY[] literals streamed; others held. */
static int
check_items(const struct imap_response *r, void *arg)
{
	struct imap_fetch f;
	const char *err = NULL;

	if (r->kind != IMAP_RESP_DATA || r->number != 3)
		return 0;
	assert_int_equal(imap_fetch_read(r, &f, &err), 0);
	assert_int_equal(f.uid, 7);
	assert_int_equal(f.nitems, 3);
	assert_string_equal(f.items[0].section, "");
	assert_true(f.items[0].value->streamed);
	assert_int_equal(f.items[0].value->len, 11);
	assert_string_equal(f.items[1].section, "1.2");
	assert_true(f.items[1].has_origin);
	assert_int_equal(f.items[1].origin, 100);
	assert_true(f.items[2].binary);
	assert_string_equal(f.items[2].section, "2");
	imap_fetch_clear(&f);
	*(int *)arg += 1;
	return 0;
}

/* BODY[]/BINARY[] literals streamed, others held. */
static void
test_streamed_literals(void **state)
{
	static const char in[] =
	    "* 3 FETCH (BODY[] {11}\r\nHello\r\nWorl UID 7 "
	    "BODY[1.2]<100> {5}\r\nabcde BINARY[2] ~{3}\r\n\x00\x01\x02)\r\n"
	    "* 4 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: x\r\n\r\n"
	    " BODY[TEXT] {0}\r\n)\r\n"
	    "a9 OK Fetch completed.\r\n";
	const char *err;
	char *t;
	int n = 0;
	struct rec rc = {.check = check_items, .check_arg = &n};
	struct imap_parser_cbs cbs = {.on_response = rec_response, .on_chunk = rec_chunk};
	struct imap_parser *p;
	(void)state;

	t = parse_all(in, sizeof(in) - 1, true, &err);
	assert_string_equal(t, "literal seq=3 BODY[] size=11: Hello\\x0d\\x0aWorl\n"
	                       "literal seq=3 BODY[1.2]<100> size=5: abcde\n"
	                       "literal seq=3 BINARY[2] size=3: \\x00\\x01\\x02\n"
	                       "* 3 FETCH (BODY[] <streamed 11> UID 7 BODY[1.2]<100> <streamed 5> "
	                       "BINARY[2] <streamed 3>)\n"
	                       "literal seq=4 BODY[HEADER.FIELDS (SUBJECT)] size=14: Subject: "
	                       "x\\x0d\\x0a\\x0d\\x0a\n"
	                       "literal seq=4 BODY[TEXT] size=0: \n"
	                       "* 4 FETCH (BODY[HEADER.FIELDS (SUBJECT)] <streamed 14> BODY[TEXT] "
	                       "<streamed 0>)\n"
	                       "a9 OK text=Fetch completed.\n");
	free(t);
	/* Without a chunk reader the literals are held and given as strings. */
	t = parse_all(in, sizeof(in) - 1, false, &err);
	assert_non_null(strstr(t, "* 3 FETCH (BODY[] \"Hello\\x0d\\x0aWorl\" UID 7 BODY[1.2]<100> "
	                          "\"abcde\" BINARY[2] \"\\x00\\x01\\x02\")"));
	free(t);
	p = imap_parser_new(&cbs, &rc);
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &err), 0);
	imap_parser_free(p);
	assert_int_equal(n, 1);
	free(rc.t.p);
	free(rc.lit.p);
}

/* A 50 MB BODY[] goes through while the parser holds only its line. */
static int
count_chunk(const struct imap_literal_info *li, const char *data, size_t len, void *arg)
{
	*(uint64_t *)arg += len;
	return 0;
}

/* Take a response and do nothing. */
static int
noop_response(const struct imap_response *r, void *arg)
{
	return 0;
}

/* A 50 MB BODY[] passes while the parser holds a few bytes. */
static void
test_large_literal_streamed(void **state)
{
	struct imap_parser_cbs cbs = {.on_response = noop_response, .on_chunk = count_chunk};
	uint64_t got = 0;
	struct imap_parser *p = imap_parser_new(&cbs, &got);
	const char *head = "* 1 FETCH (UID 5 BODY[2] {52428800}\r\n", *err;
	char *block = xmalloc(65536);
	size_t max_held = 0;
	(void)state;

	memset(block, 'x', 65536);
	assert_int_equal(imap_parser_feed(p, head, strlen(head), &err), 0);
	for (int i = 0; i < 800; i++) {
		assert_int_equal(imap_parser_feed(p, block, 65536, &err), 0);
		if (imap_parser_held(p) > max_held)
			max_held = imap_parser_held(p);
	}
	assert_int_equal(imap_parser_feed(p, ")\r\n", 3, &err), 0);
	assert_int_equal(got, 52428800);
	assert_true(max_held < 64);
	assert_true(imap_parser_idle(p));
	imap_parser_free(p);
	free(block);
}

/* ---- malformed input and caps ---- */

/* Malformed input refused with a precise error; a dead parser takes nothing. */
static void
test_malformed(void **state)
{
	struct imap_parser_cbs cbs = {.on_response = noop_response};
	struct imap_parser *p;
	const char *err;
	(void)state;

	expect_error("a1 OK done\n", "CRLF");
	expect_error_n("* OK a\0b\r\n", 10, "NUL");
	expect_error("a1 FOO bar\r\n", "neither OK");
	expect_error("a(1 OK x\r\n", "bad tag");
	expect_error("*\r\n", "without a space");
	expect_error("* LIST (\\Sent \"/\" x\r\n", "list not closed");
	expect_error("* LIST (\\Sent) ) \"/\" x\r\n", "unexpected ')'");
	expect_error("* LIST () \"/ x\r\n", "quoted string not closed");
	expect_error("* LIST () \"a\\x\" x\r\n", "bad escape");
	expect_error("* OK [UIDNEXT 5 text\r\n", "response code not closed");
	expect_error("* 99999999999 EXISTS\r\n", "message number too large");
	expect_error("* 3 FETCH (BODY[1 NIL)\r\n", "section not closed");
	expect_error("* X a\x01z\r\n", "control character");
	expect_error("* X {99999999999999999999}\r\n", "literal length too large");
	expect_error("* X {2000000}\r\n", "over the cap");
	expect_error(
	    "* X (((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))\r\n",
	    "nested too deep");
	/* After an error, nothing more is taken. */
	p = imap_parser_new(&cbs, NULL);
	assert_int_equal(imap_parser_feed(p, "a1 FOO\r\n", 8, &err), -1);
	assert_int_equal(imap_parser_feed(p, "a1 OK\r\n", 7, &err), -1);
	assert_non_null(strstr(err, "neither"));
	imap_parser_free(p);
}

/* The line, node and response caps. */
static void
test_caps_hit(void **state)
{
	struct imap_parser_cbs cbs = {.on_response = noop_response};
	struct imap_parser *p = imap_parser_new(&cbs, NULL);
	struct sbuf b = {0};
	char *line = xmalloc(IMAP_LINE_MAX + 16);
	const char *err;
	(void)state;

	/* A line over IMAP_LINE_MAX without its end. */
	memset(line, 'a', IMAP_LINE_MAX + 16);
	assert_int_equal(imap_parser_feed(p, "* X ", 4, &err), 0);
	assert_int_equal(imap_parser_feed(p, line, IMAP_LINE_MAX + 16, &err), -1);
	assert_non_null(strstr(err, "line longer"));
	imap_parser_free(p);
	/* More nodes than IMAP_NODES_MAX in one response. */
	sbuf_add(&b, "* SEARCH");
	for (int i = 0; i < IMAP_NODES_MAX + 1; i++)
		sbuf_add(&b, " 1");
	sbuf_add(&b, "\r\n");
	p = imap_parser_new(&cbs, NULL);
	assert_int_equal(imap_parser_feed(p, b.p, b.len, &err), -1);
	assert_non_null(strstr(err, "too many items"));
	imap_parser_free(p);
	free(b.p);
	/* Held literals adding up past IMAP_RESPONSE_MAX. */
	p = imap_parser_new(&cbs, NULL);
	memset(line, 'b', IMAP_LITERAL_MAX);
	{
		char hdr[64];
		int i, rv = 0;

		assert_int_equal(imap_parser_feed(p, "* X (", 5, &err), 0);
		for (i = 0; i < 5 && rv == 0; i++) {
			snprintf(hdr, sizeof(hdr), " {%d}\r\n", IMAP_LITERAL_MAX);
			rv = imap_parser_feed(p, hdr, strlen(hdr), &err);
			if (rv == 0)
				rv = imap_parser_feed(p, line, IMAP_LITERAL_MAX, &err);
		}
		assert_int_equal(rv, -1);
		assert_non_null(strstr(err, "response longer"));
	}
	imap_parser_free(p);
	free(line);
}

/* ---- uid sets, modified UTF-7, dates ---- */

/* Modified UTF-7 both ways, and bad input. */
static void
test_mutf7(void **state)
{
	static const struct {
		const char *utf8, *mutf7;
	} cases[] = {
	    {"INBOX", "INBOX"},
	    {"a&b", "a&-b"},
	    {"\xc3\x89l\xc3\xa9ments envoy\xc3\xa9s", "&AMk-l&AOk-ments envoy&AOk-s"},
	    {"\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-"},
	    {"\xf0\x9f\x98\x80 x", "&2D3eAA- x"},
	    {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	     "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	};
	char buf[128];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(
		    imap_mutf7_encode(cases[i].utf8, strlen(cases[i].utf8), buf, sizeof(buf)) >= 0);
		assert_string_equal(buf, cases[i].mutf7);
		assert_true(imap_mutf7_decode(cases[i].mutf7, strlen(cases[i].mutf7), buf,
		                              sizeof(buf)) >= 0);
		assert_string_equal(buf, cases[i].utf8);
	}
	assert_int_equal(imap_mutf7_decode("&AMk", 4, buf, sizeof(buf)), -1);  /* not closed */
	assert_int_equal(imap_mutf7_decode("&AGE-", 5, buf, sizeof(buf)), -1); /* 'a' encoded */
	assert_int_equal(imap_mutf7_decode("&2D0-", 5, buf, sizeof(buf)), -1); /* lone surrogate */
	assert_int_equal(imap_mutf7_decode("\xc3\xa9", 2, buf, sizeof(buf)), -1);
	assert_int_equal(imap_mutf7_encode("\xc3", 1, buf, sizeof(buf)), -1);
	assert_int_equal(imap_mutf7_encode("abcdef", 6, buf, 4), -1);
}

/* IMAP date-times. */
static void
test_datetime(void **state)
{
	time_t t;
	(void)state;

	assert_int_equal(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", &t), 0);
	assert_int_equal(t, 837596665);
	assert_int_equal(imap_datetime_parse(" 1-Jan-2026 00:00:00 +0000", &t), 0);
	assert_int_equal(t, 1767225600);
	assert_int_equal(imap_datetime_parse("1-Foo-2026 00:00:00 +0000", &t), -1);
	assert_int_equal(imap_datetime_parse("1-Jan-2026 00:00:00", &t), -1);
}

/* Run the sequence (or the tests). */
int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statuses),
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_capability_enabled),
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_status),
	    cmocka_unit_test(test_numbers_sets),
	    cmocka_unit_test(test_sets_from_server),
	    cmocka_unit_test(test_fetch),
	    cmocka_unit_test(test_fetch_single_part),
	    cmocka_unit_test(test_streamed_literals),
	    cmocka_unit_test(test_large_literal_streamed),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_caps_hit),
	    cmocka_unit_test(test_mutf7),
	    cmocka_unit_test(test_datetime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
