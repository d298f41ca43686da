/*
 * imap_probe.c: drives abqd's IMAP client (src/imap) against a real server
 * and prints what it saw, one line per fact, for tests/imap/test_imap_live.py:
 *
 *   imap_probe URL CA_FILE USER PASSWORD
 *
 * In order: connect and log in (capabilities, ENABLE), LIST with
 * SPECIAL-USE, SELECT INBOX (CONDSTORE), UID FETCH of UID, FLAGS, MODSEQ,
 * ENVELOPE, BODYSTRUCTURE and RFC822.SIZE, the largest message's BODY[]
 * streamed (its size and the most the client held), IDLE woken by an APPEND
 * from a second connection, LOGOUT, then a login with a wrong password.
 * Exits 0 when the sequence ran to its end, 1 on the first failure (its line
 * says why), 2 on a usage error.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_client.h"
#include "lib/util.h"

static struct event_base *base;
static struct imap_client_conf conf;
static struct imap_client *c1, *c2, *c3;
static int status = 1;
static uint32_t big_uid, exists;
static uint64_t big_size, streamed;
static struct event *idle_guard;

static void step_list(void);
static void step_select(void);
static void step_fetch(void);
static void step_body(void);
static void step_idle(void);
static void step_wrong(void);

/* Stop the loop with status s. */
static void
finish(int s)
{
	status = s;
	event_base_loopbreak(base);
}

/* Print why the sequence failed and stop. */
static void
fail_line(const char *what)
{
	printf("FAIL %s\n", what);
	fflush(stdout);
	finish(1);
}

/* The names of a capability mask. */
static void
print_caps(const char *label, uint32_t caps)
{
	printf("%s", label);
	for (int i = 0; i < 32; i++)
		if ((caps & (1u << i)) && imap_cap_name(1u << i) != NULL)
			printf(" %s", imap_cap_name(1u << i));
	printf("\n");
}

/* A connection failed: expected only for the wrong password. */
static void
on_error(struct imap_client *c, enum imap_error e, const char *msg, void *arg)
{
	if (c == c3) {
		printf("wrong password: error=%s (%s)\n", e == IMAP_ERR_AUTH ? "auth" : "other",
		       imap_error_str(e));
		imap_client_free(c3);
		c3 = NULL;
		finish(e == IMAP_ERR_AUTH ? 0 : 1);
		return;
	}
	printf("FAIL error on connection %d: %s: %s\n", c == c1 ? 1 : 2, imap_error_str(e), msg);
	finish(1);
}

/* Untagged data outside commands: an EXISTS during IDLE wakes the probe. */
static void
on_untagged(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (c == c1 && r->kind == IMAP_RESP_DATA && strcmp(r->name, "EXISTS") == 0 &&
	    imap_client_state(c) == IMAP_STATE_IDLE) {
		printf("idle woke: exists %u -> %u\n", exists, r->number);
		exists = r->number;
		evtimer_del(idle_guard);
		imap_client_idle_done(c1);
		step_wrong();
	}
}

/* Send a command or fail. */
static void
send_cmd(struct imap_client *c, struct imap_cmd *cmd, imap_cmd_cb cb, imap_chunk_cb chunk)
{
	const char *err;

	if (imap_client_command(c, cmd, cb, chunk, NULL, &err) < 0)
		fail_line(err);
}

/* A tagged status that must be OK. */
static bool
tagged_ok(const struct imap_response *r, const char *what)
{
	char buf[256];

	if (r == NULL) {
		snprintf(buf, sizeof(buf), "%s: connection dropped", what);
		fail_line(buf);
		return false;
	}
	if (r->status != IMAP_OK) {
		snprintf(buf, sizeof(buf), "%s: %s", what, r->text);
		fail_line(buf);
		return false;
	}
	return true;
}

/* A connection is logged in: the next step for it. */
static void
on_ready(struct imap_client *c, void *arg)
{
	if (c == c1) {
		printf("tls %s\n", imap_client_tls(c) ? "yes" : "no");
		print_caps("caps", imap_client_caps(c));
		print_caps("enabled", imap_client_enabled(c));
		step_list();
	} else if (c == c2) {
		/* The second connection appends a message to wake the first's IDLE. */
		static const char msg[] = "From: carol@example.com\r\nTo: alice@example.com\r\n"
		                          "Subject: wake up\r\n\r\nNew mail.\r\n";
		struct imap_cmd *cmd = imap_cmd_new("APPEND");

		imap_cmd_mailbox(cmd, c2, "INBOX");
		imap_cmd_raw(cmd, "()");
		imap_cmd_literal(cmd, msg, sizeof(msg) - 1);
		send_cmd(c2, cmd, NULL, NULL);
	} else if (c == c3) {
		fail_line("wrong password accepted");
	}
}

/* Each LIST line printed; then SELECT. */
static void
list_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct imap_list l;
	const char *err;

	if (r != NULL && r->kind == IMAP_RESP_DATA && strcmp(r->name, "LIST") == 0) {
		if (imap_list_read(r, (imap_client_enabled(c) & IMAP_CAP_UTF8_ACCEPT) != 0, &l,
		                   &err) < 0) {
			fail_line(err);
			return;
		}
		printf("list %s delim=%c%s%s%s%s%s\n", l.name, l.delim ? l.delim : '-',
		       l.flags & IMAP_LIST_SENT ? " \\Sent" : "",
		       l.flags & IMAP_LIST_DRAFTS ? " \\Drafts" : "",
		       l.flags & IMAP_LIST_TRASH ? " \\Trash" : "",
		       l.flags & IMAP_LIST_JUNK ? " \\Junk" : "",
		       l.flags & IMAP_LIST_ARCHIVE ? " \\Archive" : "");
		return;
	}
	if (r == NULL || r->kind == IMAP_RESP_TAGGED) {
		if (tagged_ok(r, "LIST"))
			step_select();
	}
}

/* LIST "" "*" RETURN (SPECIAL-USE). */
static void
step_list(void)
{
	struct imap_cmd *cmd = imap_cmd_new("LIST");

	imap_cmd_string(cmd, "");
	imap_cmd_string(cmd, "*");
	imap_cmd_raw(cmd, "RETURN (SPECIAL-USE)");
	send_cmd(c1, cmd, list_cb, NULL);
}

/* SELECT's counters noted; then the FETCH. */
static void
select_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	static uint32_t uidvalidity;
	static uint64_t hms;

	if (r == NULL || r->kind == IMAP_RESP_TAGGED) {
		if (tagged_ok(r, "SELECT")) {
			printf("select exists=%u uidvalidity=%s highestmodseq=%s\n", exists,
			       uidvalidity ? "yes" : "no", hms ? "yes" : "no");
			step_fetch();
		}
		return;
	}
	if (r->kind == IMAP_RESP_DATA && strcmp(r->name, "EXISTS") == 0)
		exists = r->number;
	if (r->code != NULL && strcmp(r->code, "UIDVALIDITY") == 0 && r->code_args != NULL)
		uidvalidity = (uint32_t)r->code_args->num;
	if (r->code != NULL && strcmp(r->code, "HIGHESTMODSEQ") == 0 && r->code_args != NULL)
		hms = r->code_args->num;
}

/* SELECT INBOX, with CONDSTORE when offered. */
static void
step_select(void)
{
	struct imap_cmd *cmd = imap_cmd_new("SELECT");

	imap_cmd_mailbox(cmd, c1, "INBOX");
	if (imap_client_caps(c1) & IMAP_CAP_CONDSTORE)
		imap_cmd_raw(cmd, "(CONDSTORE)");
	send_cmd(c1, cmd, select_cb, NULL);
}

/* A body tree as "1:text/plain 2:application/pdf(attachment a.pdf)". */
static void
print_parts(const struct imap_body *b)
{
	for (; b != NULL; b = b->next) {
		if (b->multipart) {
			print_parts(b->child);
			continue;
		}
		printf(" %s:%s/%s", b->section, b->type, b->subtype);
		if (b->disposition != NULL)
			printf("(%s %s)", b->disposition,
			       imap_param(b->disp_params, "filename")
			           ? imap_param(b->disp_params, "filename")
			           : "-");
		if (b->child != NULL && !b->multipart)
			print_parts(b->child);
	}
}

/* One line per message fetched; the largest is remembered. */
static void
fetch_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	struct imap_fetch f;
	struct imap_address a;
	const char *err;

	if (r == NULL || r->kind == IMAP_RESP_TAGGED) {
		if (tagged_ok(r, "UID FETCH"))
			step_body();
		return;
	}
	if (r->kind != IMAP_RESP_DATA || strcmp(r->name, "FETCH") != 0)
		return;
	if (imap_fetch_read(r, &f, &err) < 0) {
		fail_line(err);
		return;
	}
	if (imap_address_get(f.envelope.from, 0, &a) < 0)
		memset(&a, 0, sizeof(a));
	printf("fetch uid=%u seen=%s modseq=%s size=%llu subject=%s from=%s@%s parts:", f.uid,
	       f.flags & IMAP_FLAG_SEEN ? "yes" : "no", f.modseq > 0 ? "yes" : "no",
	       (unsigned long long)f.size, f.envelope.subject ? f.envelope.subject : "-",
	       a.mailbox ? a.mailbox : "-", a.host ? a.host : "-");
	print_parts(f.body);
	printf("\n");
	if (f.size > big_size) {
		big_size = f.size;
		big_uid = f.uid;
	}
	imap_fetch_clear(&f);
}

/* UID FETCH of every message's metadata and structure. */
static void
step_fetch(void)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH 1:*");

	imap_cmd_raw(cmd, "(UID FLAGS MODSEQ INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)");
	send_cmd(c1, cmd, fetch_cb, NULL);
}

/* Count the streamed bytes (none are kept). */
static int
body_chunk(struct imap_client *c, const struct imap_literal_info *li, const char *data, size_t len,
           void *arg)
{
	streamed += len;
	return 0;
}

/* The streamed size against RFC822.SIZE; then IDLE. */
static void
body_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r == NULL || r->kind == IMAP_RESP_TAGGED) {
		if (tagged_ok(r, "UID FETCH BODY[]")) {
			printf("body uid=%u streamed=%llu rfc822.size=%llu %s\n", big_uid,
			       (unsigned long long)streamed, (unsigned long long)big_size,
			       streamed == big_size ? "match" : "MISMATCH");
			step_idle();
		}
	}
}

/* UID FETCH of the largest message's BODY[], streamed. */
static void
step_body(void)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH");
	struct uidset set = {0};

	(void)uidset_add(&set, big_uid);
	imap_cmd_uidset(cmd, &set);
	uidset_clear(&set);
	imap_cmd_raw(cmd, "(UID BODY.PEEK[])");
	send_cmd(c1, cmd, body_cb, body_chunk);
}

/* IDLE was not woken in time. */
static void
idle_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	fail_line("IDLE not woken within 10 seconds");
}

/* IDLE, then a second connection appends once IDLE runs. */
static void
idle_started(evutil_socket_t fd, short what, void *arg)
{
	const char *err;

	c2 = imap_client_new(base, &conf,
	                     &(struct imap_client_cbs){.on_ready = on_ready, .on_error = on_error},
	                     NULL, &err);
	if (c2 == NULL)
		fail_line(err);
}

/* Start IDLE, and a second connection that will APPEND. */
static void
step_idle(void)
{
	const char *err;
	struct timeval tv = {10, 0}, soon = {0, 200000};

	if (imap_client_idle(c1, &err) < 0) {
		fail_line(err);
		return;
	}
	printf("idle started\n");
	idle_guard = evtimer_new(base, idle_guard_cb, NULL);
	evtimer_add(idle_guard, &tv);
	event_base_once(base, -1, EV_TIMEOUT, idle_started, NULL, &soon);
}

/* LOGOUT's status. */
static void
logout_cb(struct imap_client *c, const struct imap_response *r, void *arg)
{
	if (r != NULL && r->kind == IMAP_RESP_TAGGED)
		printf("logout %s\n", r->status == IMAP_OK ? "ok" : "refused");
}

/* Log both out, then try a wrong password. */
static void
step_wrong(void)
{
	struct imap_client_conf bad = conf;
	const char *err;

	imap_client_logout(c1, logout_cb, NULL);
	if (c2 != NULL)
		imap_client_logout(c2, NULL, NULL);
	bad.password = "not-the-password";
	c3 = imap_client_new(base, &bad,
	                     &(struct imap_client_cbs){.on_ready = on_ready, .on_error = on_error},
	                     NULL, &err);
	if (c3 == NULL)
		fail_line(err);
}

/* Run the sequence (or the tests). */
int
main(int argc, char **argv)
{
	struct imap_client_cbs cbs = {
	    .on_ready = on_ready, .on_untagged = on_untagged, .on_error = on_error};
	const char *err;

	if (argc != 5) {
		fprintf(stderr, "usage: imap_probe URL CA_FILE USER PASSWORD\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	base = event_base_new();
	conf.url = argv[1];
	conf.ca_file = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	conf.user = argv[3];
	conf.password = argv[4];
	conf.connect_timeout = 10;
	conf.command_timeout = 20;
	c1 = imap_client_new(base, &conf, &cbs, NULL, &err);
	if (c1 == NULL) {
		printf("FAIL %s\n", err);
		return 1;
	}
	event_base_dispatch(base);
	imap_client_free(c1);
	imap_client_free(c2);
	imap_client_free(c3);
	if (idle_guard != NULL)
		event_free(idle_guard);
	/* Let libevent finish freeing the bufferevents (their deferred callbacks). */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return status;
}
