/*
 * fuzz_davxml.c: libFuzzer target over the streaming multistatus reader of
 * the CalDAV/CardDAV client (src/dav/davxml.c), which reads what a DAV
 * server answers as libcurl hands it over.
 *
 * The input is a response body. It is read whole, then fed in pieces as
 * curl would cut it: split in two at every point (bodies up to 256 bytes;
 * longer ones at 24 points spread over them: the unit test cuts its real
 * answers at every byte), in 1-byte pieces, and in
 * pieces of sizes taken from the input itself. Small caps, so that every cap
 * is reached. Checks:
 *  - whether it reads and what it reports (every response's href, status,
 *    properties and data, the document's token and preconditions) do not
 *    depend on the cuts; for a body refused, only that every cutting
 *    refuses it (libxml2 converts a non-UTF-8 body as it is pushed, so how
 *    far it got before the error may differ);
 *  - every value is within its cap, no href is empty, data_len is the
 *    data's, absent and have never share a bit it could not;
 *  - no crash, leak or undefined behaviour under ASan and UBSan.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dav/davxml.h"
#include "lib/util.h"
#include "replay.h"

static const struct davxml_limits lim = {
    .max_body = 1u << 20,
    .max_value = 96,
    .max_data = 512,
    .max_responses = 64,
    .max_depth = 16,
};

struct run {
	struct sbuf dump;
	int rc;
};

static void
check_value(const char *v)
{
	if (v != NULL && strlen(v) > lim.max_value)
		abort();
}

static int
on_response(void *arg, const struct davxml_response *r)
{
	struct run *run = arg;
	const struct davxml_props *p = &r->props;

	if (r->href == NULL || r->href[0] == '\0' || strlen(r->href) > lim.max_value)
		abort();
	check_value(p->etag);
	check_value(p->displayname);
	check_value(p->ctag);
	check_value(p->sync_token);
	check_value(p->principal);
	check_value(p->cal_home);
	check_value(p->card_home);
	check_value(p->color);
	check_value(p->content_type);
	if ((p->data == NULL) != !(p->have & DAVP_DATA) || p->data_len > lim.max_data ||
	    (p->data == NULL && p->data_len != 0))
		abort();
	if (r->index >= lim.max_responses)
		abort();
	sbuf_printf(&run->dump,
	            "%s|%d|%x|%x|%x|%s|%s|%s|%s|%s|%s|%s|%u|%u|%x|%x|%d|%s|%zu:", r->href,
	            r->status, p->have, r->absent, r->oversize, p->etag ? p->etag : "-",
	            p->displayname ? p->displayname : "-", p->ctag ? p->ctag : "-",
	            p->sync_token ? p->sync_token : "-", p->principal ? p->principal : "-",
	            p->cal_home ? p->cal_home : "-", p->card_home ? p->card_home : "-",
	            p->n_cal_home, p->n_card_home, p->resourcetype, p->components, p->writable,
	            p->color ? p->color : "-", p->data_len);
	if (p->data != NULL)
		sbuf_addn(&run->dump, p->data, p->data_len);
	sbuf_add(&run->dump, "\n");
	return 0;
}

/* Feed data cut after each offset of cuts (ascending), or in step-byte pieces. */
static char *
feed(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts, size_t step, int *rc_r)
{
	struct run run = {{0}, 0};
	struct davxml *x = davxml_new(&lim, on_response, &run);
	const char *err;
	size_t off = 0;
	int rc = 0;

	if (step > 0) {
		while (off < size && rc == 0) {
			size_t n = size - off < step ? size - off : step;
			rc = davxml_feed(x, (const char *)data + off, n, &err);
			off += n;
		}
	} else {
		for (size_t i = 0; i <= ncuts && rc == 0; i++) {
			size_t end = i < ncuts ? cuts[i] : size;
			rc = davxml_feed(x, (const char *)data + off, end - off, &err);
			off = end;
		}
	}
	if (rc == 0)
		rc = davxml_finish(x, &err);
	if (rc != 0 && (err == NULL || err[0] == '\0'))
		abort();
	const struct davxml_doc *d = davxml_doc(x);
	check_value(d->sync_token);
	if (d->responses > lim.max_responses || d->bytes > size)
		abort();
	sbuf_printf(&run.dump, "doc %d %s %x %s %zu\n", d->root,
	            d->sync_token ? d->sync_token : "-", d->errors, d->error_name, d->responses);
	davxml_free(&x);
	*rc_r = rc;
	return sbuf_take(&run.dump);
}

static void
same(const char *whole, int whole_rc, char *other, int other_rc)
{
	if ((whole_rc == 0) != (other_rc == 0))
		abort();
	if (whole_rc == 0 && strcmp(whole, other) != 0)
		abort();
	free(other);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc, orc;
	char *whole, *o;
	size_t cuts[64], n = 0;

	if (size > lim.max_body)
		return 0;
	whole = feed(data, size, NULL, 0, 0, &rc);
	if (size <= 256) {
		for (size_t k = 1; k < size; k++) {
			o = feed(data, size, &k, 1, 0, &orc);
			same(whole, rc, o, orc);
		}
	} else {
		for (size_t i = 1; i <= 24; i++) {
			size_t k = size * i / 25;
			o = feed(data, size, &k, 1, 0, &orc);
			same(whole, rc, o, orc);
		}
	}
	o = feed(data, size, NULL, 0, 1, &orc);
	same(whole, rc, o, orc);
	/* Cuts from the input's own bytes. */
	for (size_t off = 0; size > 0 && n < 64;) {
		off += 1 + data[(off * 7) % size] % 97;
		if (off >= size)
			break;
		cuts[n++] = off;
	}
	o = feed(data, size, cuts, n, 0, &orc);
	same(whole, rc, o, orc);
	free(whole);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_davxml_replay"};
#endif
