/*
 * notice_sendd.c: the outbox sender as a program of its own, for the
 * integration test (tests/notice/test_notice_smtp.py).
 *
 *   notice-sendd init STORE_URL
 *   notice-sendd queue STORE_URL FROM TO SUBJECT BODY    (prints the id)
 *   notice-sendd run STORE_URL SMTP_URL FROM INTERVAL   (until SIGTERM/SIGINT)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/mime.h"
#include "notice/sender.h"
#include "store/store.h"

static volatile sig_atomic_t stop;

/* SIGTERM/SIGINT: end the run. */
static void
on_signal(int sig)
{
	stop = 1;
}

/* Create the store. */
static int
do_init(const char *url)
{
	const char *err;
	struct abq_store *s = abq_store_open(url, NULL, ABQ_STORE_CREATE, &err);

	if (s == NULL) {
		fprintf(stderr, "notice-sendd: %s\n", err);
		return 1;
	}
	abq_store_close(&s);
	return 0;
}

/* Render a notice and queue it in one transaction. */
static int
do_queue(char **argv)
{
	const char *err;
	struct mime_message m = {
	    .from = argv[1], .to = argv[2], .subject = argv[3], .body_plain = argv[4]};
	struct abq_notice n = {.recipient = argv[2], .kind = "user-blocked"};
	struct abq_store *s = abq_store_open(argv[0], NULL, 0, &err);
	char *msg;

	if (s == NULL)
		goto fail;
	if ((msg = mime_render(&m, &err)) == NULL)
		goto fail;
	n.rendered = msg;
	n.created = (int64_t)time(NULL);
	if (abq_store_begin(s, &err) < 0 || abq_store_notice_add(s, &n, &err) < 0 ||
	    abq_store_commit(s, &err) < 0) {
		free(msg);
		goto fail;
	}
	free(msg);
	printf("%lld\n", (long long)n.id);
	abq_store_close(&s);
	return 0;
fail:
	fprintf(stderr, "notice-sendd: %s\n", err);
	abq_store_close(&s);
	return 1;
}

/* Run the sender until a signal. */
static int
do_run(char **argv)
{
	struct notice_sender_config cfg = {.store_url = argv[0],
	                                   .smtp_url = argv[1],
	                                   .from = argv[2],
	                                   .interval = (unsigned)strtoul(argv[3], NULL, 10),
	                                   .timeout = 5};
	const char *err;
	struct notice_sender *ns;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((ns = notice_sender_start(&cfg, &err)) == NULL) {
		fprintf(stderr, "notice-sendd: %s\n", err);
		return 1;
	}
	while (!stop)
		sleep(1);
	notice_sender_stop(&ns);
	return 0;
}

/* Dispatch the subcommand. */
int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "init") == 0)
		return do_init(argv[2]);
	if (argc == 7 && strcmp(argv[1], "queue") == 0)
		return do_queue(argv + 2);
	if (argc == 6 && strcmp(argv[1], "run") == 0)
		return do_run(argv + 2);
	fprintf(stderr, "usage: notice-sendd init STORE | queue STORE FROM TO SUBJECT BODY | "
	                "run STORE SMTP_URL FROM INTERVAL\n");
	return 2;
}
