/*
 * msgconv_tool.c: a message file read as a phone would get it (src/native/
 * msgconv.h), for looking at a message by hand and for measuring:
 *   msgconv-tool FILE              the fields, attachments, bodies and preview
 *   msgconv-tool --time N FILE     parse + plain body N times; the mean time
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime/msgconv.h"

/* The whole file, malloc'd; NULL when it cannot be read. */
static char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len_r = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Print one body type as a phone would get it. */
static void
show_body(const struct msgconv_msg *m, int type)
{
	struct msgconv_body b;
	const char *err;

	if (msgconv_body(m, type, 0, false, &b, &err) != 0) {
		printf("body %d: %s\n", type, err);
		return;
	}
	printf("---- body type %d (%zu bytes)\n%s\n", type, b.estimated_size, b.data);
	msgconv_body_clear(&b);
}

/* Milliseconds from a to z. */
static double
ms_between(const struct timespec *a, const struct timespec *z)
{
	return (double)(z->tv_sec - a->tv_sec) * 1e3 + (double)(z->tv_nsec - a->tv_nsec) / 1e6;
}

int
main(int argc, char **argv)
{
	long times = 0;
	size_t len = 0;
	char *raw;
	struct msgconv_msg m;
	const char *err;

	if (argc == 4 && strcmp(argv[1], "--time") == 0)
		times = strtol(argv[2], NULL, 10);
	else if (argc != 2) {
		fprintf(stderr, "usage: msgconv-tool [--time N] FILE\n");
		return 2;
	}
	if ((raw = slurp(argv[argc - 1], &len)) == NULL) {
		fprintf(stderr, "msgconv-tool: cannot read %s\n", argv[argc - 1]);
		return 1;
	}
	if (times > 0) {
		struct timespec a, z;
		size_t plain = 0;
		double parse_ms = 0, body_ms = 0;
		for (long i = 0; i < times; i++) {
			struct msgconv_body b;
			clock_gettime(CLOCK_MONOTONIC, &a);
			if (msgconv_parse(raw, len, &(struct msgconv_opts){.no_mime = true}, &m,
			                  &err) != 0) {
				fprintf(stderr, "msgconv-tool: %s\n", err);
				return 1;
			}
			clock_gettime(CLOCK_MONOTONIC, &z);
			parse_ms += ms_between(&a, &z);
			if (msgconv_body(&m, MSGCONV_BODY_PLAIN, 0, false, &b, &err) != 0) {
				fprintf(stderr, "msgconv-tool: %s\n", err);
				return 1;
			}
			clock_gettime(CLOCK_MONOTONIC, &a);
			body_ms += ms_between(&z, &a);
			plain = b.len;
			msgconv_body_clear(&b);
			msgconv_msg_clear(&m);
		}
		printf("%zu bytes, plain body %zu bytes: %.3f ms per parse + plain body (%.3f ms "
		       "parse, %.3f ms plain body; %ld runs)\n",
		       len, plain, (parse_ms + body_ms) / (double)times, parse_ms / (double)times,
		       body_ms / (double)times, times);
		free(raw);
		return 0;
	}
	if (msgconv_parse(raw, len, NULL, &m, &err) != 0) {
		fprintf(stderr, "msgconv-tool: %s\n", err);
		free(raw);
		return 1;
	}
	printf("From: %s\nTo: %s\nCc: %s\nReplyTo: %s\nSubject: %s\nDisplayTo: %s\n"
	       "ThreadTopic: %s\nImportance: %d\nDateReceived: %lld\nMessageClass: %s\n"
	       "ContentClass: %s\nInternetCPID: %d\nMessage-ID: %s\nIn-Reply-To: %s\n"
	       "NativeBodyType: %d\n",
	       m.from, m.to, m.cc, m.reply_to, m.subject, m.display_to, m.thread_topic,
	       m.importance, (long long)m.date_received, m.message_class, m.content_class,
	       m.internet_cpid, m.message_id ? m.message_id : "-",
	       m.in_reply_to ? m.in_reply_to : "-", m.native_body_type);
	for (size_t i = 0; i < m.n_references; i++)
		printf("References: %s\n", m.references[i]);
	for (size_t i = 0; i < m.n_att; i++)
		printf("Attachment %s: \"%s\" %s %zu bytes%s%s%s\n", m.att[i].section,
		       m.att[i].name, m.att[i].content_type, m.att[i].size,
		       m.att[i].is_inline ? " inline" : "", m.att[i].content_id ? " cid:" : "",
		       m.att[i].content_id ? m.att[i].content_id : "");
	show_body(&m, MSGCONV_BODY_PLAIN);
	show_body(&m, MSGCONV_BODY_HTML);
	char *pv = msgconv_preview(&m, 255);
	printf("---- preview\n%s\n", pv);
	free(pv);
	msgconv_msg_clear(&m);
	free(raw);
	return 0;
}
