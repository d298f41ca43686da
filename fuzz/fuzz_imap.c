/*
 * fuzz_imap.c: libFuzzer target over what an IMAP server sends abqd
 * (src/imap/imap_parse.c, imap_data.c). The input is fed to the parser
 * whole, then split in two at every byte (inputs up to SPLIT_MAX bytes) and
 * one byte at a time, with BODY[]/BINARY[] literals streamed; the events
 * (each response as imap_response_dump writes it, the streamed bytes in
 * order, the error if any) must be the same every way, else abort. Every
 * response also goes through the typed readers (LIST, STATUS, VANISHED,
 * SEARCH, ESEARCH, FETCH), which must not read past what the tree holds.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include "imap/imap_parse.h"
#include "replay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs longer than this are split only byte by byte, not at every byte. */
#define SPLIT_MAX 4096

struct trace {
	uint64_t h; /* FNV-1a over the events */
	uint64_t n; /* events */
	char dump[8192];
};

/* Mix bytes into the trace's hash. */
static void
mix(struct trace *t, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		t->h ^= s[i];
		t->h *= 0x100000001b3ull;
	}
}

/* Each typed reader that fits the response's name. */
static void
readers(const struct imap_response *r)
{
	const char *err;

	if (r->kind != IMAP_RESP_DATA)
		return;
	if (strcmp(r->name, "LIST") == 0 || strcmp(r->name, "LSUB") == 0) {
		struct imap_list l;

		(void)imap_list_read(r, false, &l, &err);
		(void)imap_list_read(r, true, &l, &err);
	} else if (strcmp(r->name, "STATUS") == 0) {
		struct imap_status_data st;

		(void)imap_status_read(r, &st, &err);
	} else if (strcmp(r->name, "VANISHED") == 0) {
		struct uidset s = {0};
		bool earlier;

		if (imap_vanished_read(r, &earlier, &s, &err) == 0)
			free(uidset_format(&s));
		uidset_clear(&s);
	} else if (strcmp(r->name, "SEARCH") == 0) {
		struct uidset s = {0};
		uint64_t modseq;

		(void)imap_search_read(r, &s, &modseq, &err);
		uidset_clear(&s);
	} else if (strcmp(r->name, "ESEARCH") == 0) {
		struct imap_esearch es = {0};

		(void)imap_esearch_read(r, &es, &err);
		uidset_clear(&es.all);
	} else if (strcmp(r->name, "FETCH") == 0) {
		struct imap_fetch f;
		struct imap_address a;

		if (imap_fetch_read(r, &f, &err) == 0) {
			for (uint32_t i = 0; imap_address_get(f.envelope.from, i, &a) == 0; i++)
				;
			(void)imap_body_find(f.body, "1.2");
			imap_fetch_clear(&f);
		}
	} else if (strcmp(r->name, "CAPABILITY") == 0 || strcmp(r->name, "ENABLED") == 0) {
		(void)imap_caps_of(r->data);
	}
}

/* Mix a response's dump into the trace, and run the readers on it. */
static int
on_response(const struct imap_response *r, void *arg)
{
	struct trace *t = arg;

	imap_response_dump(r, t->dump, sizeof(t->dump));
	mix(t, t->dump, strlen(t->dump) + 1);
	t->n++;
	readers(r);
	return 0;
}

/* Mix a streamed literal's piece into the trace. */
static int
on_chunk(const struct imap_literal_info *li, const char *data, size_t len, void *arg)
{
	struct trace *t = arg;

	if (li->offset == 0) {
		mix(t, &li->seq, sizeof(li->seq));
		mix(t, li->item, strlen(li->item) + 1);
		mix(t, &li->size, sizeof(li->size));
		t->n++;
	}
	if (li->offset + len > li->size)
		abort(); /* never more than the literal */
	mix(t, data, len);
	return 0;
}

/* Feed data in pieces: cut (0: none) or step bytes at a time. */
static void
feed(const uint8_t *data, size_t size, size_t cut, size_t step, struct trace *t)
{
	struct imap_parser_cbs cbs = {.on_response = on_response, .on_chunk = on_chunk};
	struct imap_parser *p = imap_parser_new(&cbs, t);
	const char *err = NULL;
	size_t i = 0;
	int rv = 0;

	t->h = 0xcbf29ce484222325ull;
	t->n = 0;
	if (cut > 0) {
		rv = imap_parser_feed(p, (const char *)data, cut, &err);
		if (rv == 0)
			rv = imap_parser_feed(p, (const char *)data + cut, size - cut, &err);
	} else {
		while (i < size && rv == 0) {
			size_t n = size - i < step ? size - i : step;

			rv = imap_parser_feed(p, (const char *)data + i, n, &err);
			i += n;
		}
	}
	if (rv < 0) {
		mix(t, err, strlen(err) + 1);
		if (imap_parser_feed(p, "a OK\r\n", 6, &err) == 0)
			abort(); /* a dead parser takes nothing more */
	}
	mix(t, &rv, sizeof(rv));
	imap_parser_free(p);
}

/* One input fed whole, split at every byte, and byte by byte. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole, other;

	feed(data, size, 0, size ? size : 1, &whole);
	if (size <= SPLIT_MAX)
		for (size_t cut = 1; cut < size; cut++) {
			feed(data, size, cut, 0, &other);
			if (other.h != whole.h || other.n != whole.n)
				abort();
		}
	feed(data, size, 0, 1, &other);
	if (other.h != whole.h || other.n != whole.n)
		abort();
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_imap_replay"};
#endif
