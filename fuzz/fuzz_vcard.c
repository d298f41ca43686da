/*
 * fuzz_vcard.c: libFuzzer target over the vCard reader and writer
 * (src/pim/vcard.c) and the contact converter (src/pim/contact.c).
 *
 * The input is a vCard file. Checks, for every card read:
 *  - the written card is read again, as one card of the same version with
 *    the same properties (group, name, parameters, values), and written
 *    again to the same bytes;
 *  - every written line ends in CRLF, is at most 75 octets and is valid
 *    UTF-8 on its own (folding splits no character);
 *  - the card goes to EAS (ApplicationData, WBXML encoded and decoded), a
 *    new card is made from that as from a phone's Add and survives its own
 *    round trip, and the EAS fields applied back onto the card, twice:
 *    the second time changes nothing (the first may normalise, as for an
 *    e-mail "Name <addr>" or a number in a second slot).
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "pim/contact.h"
#include "pim/vcard.h"
#include "replay.h"

static bool
same_prop(const struct vcard_prop *a, const struct vcard_prop *b)
{
	if ((a->group == NULL) != (b->group == NULL) ||
	    (a->group != NULL && strcmp(a->group, b->group) != 0) ||
	    strcmp(a->name, b->name) != 0 || strcmp(a->value, b->value) != 0 ||
	    a->nparams != b->nparams)
		return false;
	for (size_t i = 0; i < a->nparams; i++) {
		if (strcmp(a->params[i].name, b->params[i].name) != 0 ||
		    a->params[i].nvalues != b->params[i].nvalues)
			return false;
		for (size_t k = 0; k < a->params[i].nvalues; k++)
			if (strcmp(a->params[i].values[k], b->params[i].values[k]) != 0)
				return false;
	}
	return true;
}

static bool
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;

		if (c >= 0x80 && (c < 0xC2 || c > 0xF4))
			return false;
		if (i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

static void
check_lines(const char *w, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (w[i] == '\n') {
			if (i == 0 || w[i - 1] != '\r')
				abort();
			if (i - 1 - start > 75)
				abort();
			if (!utf8_ok((const unsigned char *)w + start, i - 1 - start))
				abort();
			start = i + 1;
		} else if (w[i] == '\r' && (i + 1 >= len || w[i + 1] != '\n'))
			abort();
	}
	if (start != len)
		abort();
}

/* Write card, read it back: the same card, the same bytes. Returns the text. */
static char *
round_trip(const struct vcard *card)
{
	struct vcard_limits lim = {.max_input = 64u * 1024 * 1024, .max_line = 64u * 1024 * 1024};
	size_t len, len2;
	char *w = vcard_write(card, &len), *w2;
	const char *err;
	struct vcard *again;

	check_lines(w, len);
	again = vcard_parse_one(w, len, &lim, &err);
	if (again == NULL || again->version != card->version || again->nprops != card->nprops)
		abort();
	for (size_t i = 0; i < card->nprops; i++)
		if (!same_prop(card->props[i], again->props[i]))
			abort();
	w2 = vcard_write(again, &len2);
	if (len2 != len || memcmp(w, w2, len) != 0)
		abort();
	free(w2);
	vcard_free(again);
	return w;
}

/* The card as a phone would get it: encoded, decoded; NULL if it did not encode. */
static struct wbxml_doc *
to_eas(const struct vcard *card, const struct pim_contact_opts *o)
{
	struct wbxml_doc *doc = wbxml_doc_new(), *back = NULL;
	struct wbxml_node *ad = wbxml_add_root(doc, WBXML_PAGE_AIRSYNC, 0x1D);
	uint8_t *buf;
	size_t len;
	struct wbxml_error e;

	if (pim_contact_to_eas(card, o, ad) < 0)
		abort();
	if (wbxml_encode(doc, &buf, &len, &e) != WBXML_OK)
		abort();
	if (wbxml_decode(buf, len, NULL, &back, &e) != WBXML_OK)
		abort();
	free(buf);
	wbxml_doc_free(&doc);
	return back;
}

static void
convert(struct vcard *card, uint8_t sel)
{
	static const char *const sup[] = {"FirstName", "Contacts:Email1Address", "Picture"};
	struct pim_contact_opts o = {
	    .eas_version = (sel & 1) ? 161 : 25,
	    .body_truncation = (sel & 2) ? 17 : 0,
	    .body_type = (sel & 4) ? 2 : 1,
	    .new_card_version = (sel & 8) ? VCARD_V40 : VCARD_V30,
	    .supported_sent = (sel & 16) != 0,
	    .supported = sup,
	    .nsupported = (sel & 32) ? 3 : 0,
	    .picture_max = (sel & 64) ? 200 : 0,
	};
	struct wbxml_doc *doc = to_eas(card, &o);
	const char *err;
	struct vcard *made;
	int r;

	made = pim_contact_from_add(wbxml_doc_root(doc), &o, &err);
	if (made != NULL) {
		free(round_trip(made));
		vcard_free(made);
	}
	r = pim_contact_apply(card, wbxml_doc_root(doc), &o, &err);
	wbxml_doc_free(&doc);
	if (r < 0)
		return;
	free(round_trip(card));
	doc = to_eas(card, &o);
	r = pim_contact_apply(card, wbxml_doc_root(doc), &o, &err);
	wbxml_doc_free(&doc);
	if (r != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcard_limits lim = {.max_photo = 64 * 1024, .max_props = 500};
	struct vcard **cards;
	size_t n;
	const char *err;

	if (vcard_parse((const char *)data, size, &lim, &cards, &n, &err) < 0)
		return 0;
	for (size_t i = 0; i < n && i < 8; i++) {
		free(round_trip(cards[i]));
		convert(cards[i], size > 0 ? data[size - 1] : 0);
	}
	vcard_free_all(cards, n);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_vcard_replay"};
#endif
