/*
 * fuzz_meeting.c: libFuzzer target over the invitation converter
 * (src/pim/meeting.c), which turns a mail's text/calendar part into
 * Email:MeetingRequest.
 *
 * The input is the iCalendar text a mail carries. It is converted for
 * every EAS version, with and without a user zone. Checks:
 *  - a conversion that fails leaves the ApplicationData empty;
 *  - one that succeeds writes exactly one MeetingRequest, which encodes,
 *    decodes and passes wbxml_check (what a phone would be sent);
 *  - its GlobalObjId is base64 of a structure that starts with the
 *    Outlook class id and whose size field matches its length;
 *  - answering it (accept, tentative, decline; the whole meeting and one
 *    occurrence) either fails or gives a REPLY that parses again as one
 *    VCALENDAR with METHOD:REPLY and one ATTENDEE, and, but for a decline
 *    of the whole meeting, an object that parses again;
 *  - no revision is newer than itself (pim_meeting_newer), the input's
 *    nor the object an answer keeps (not compared with each other: a
 *    malformed DTSTAMP need not survive the answer's new text);
 *  - no crash, leak or undefined behaviour under ASan and UBSan.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "lib/b64.h"
#include "pim/ical.h"
#include "pim/meeting.h"
#include "replay.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

static const int versions[] = {120, 141, 160, 161};

static void
check_goid(const struct wbxml_node *mr)
{
	static const uint8_t cls[4] = {0x04, 0x00, 0x00, 0x00};
	const char *b64 = wbxml_find_text(mr, "Email:GlobalObjId");
	unsigned char *g;
	size_t n;

	if (b64 == NULL)
		return;
	g = malloc(B64_DECODED_MAX(strlen(b64)) + 1);
	if (g == NULL)
		abort();
	if (b64_decode(b64, strlen(b64), g, &n, NULL, NULL) != 0 || n < 40 ||
	    memcmp(g, cls, 4) != 0)
		abort();
	if (memcmp(g + 40, "vCal-Uid", 8) == 0 &&
	    (size_t)(g[36] | g[37] << 8 | g[38] << 16 | (uint32_t)g[39] << 24) != n - 40)
		abort();
	free(g);
}

static void
one(const char *data, size_t size, int version, icaltimezone *zone)
{
	struct wbxml_doc *doc = wbxml_doc_new(), *back = NULL;
	struct wbxml_node *app = wbxml_addn_root(doc, "AirSync:ApplicationData");
	struct pim_meeting_opts o = {
	    .version = version, .user_email = "alice@example.com", .zone = zone, .now = NOW};
	struct wbxml_error err;
	const char *why = NULL;
	uint8_t *buf;
	size_t len;
	int kind = pim_meeting_to_eas(data, size, &o, app, &why);

	if (kind < 0) {
		if (app->first_child != NULL || why == NULL)
			abort();
		wbxml_doc_free(&doc);
		return;
	}
	if (kind != PIM_MEETING_REQUEST && kind != PIM_MEETING_CANCEL)
		abort();
	if (app->first_child == NULL || app->first_child != app->last_child)
		abort();
	if (wbxml_encode(doc, &buf, &len, &err) != WBXML_OK)
		abort();
	if (wbxml_check(buf, len, NULL, NULL) != 0 ||
	    wbxml_decode(buf, len, NULL, &back, &err) != WBXML_OK)
		abort();
	check_goid(wbxml_find(wbxml_doc_root(back), "Email:MeetingRequest"));
	free(buf);
	wbxml_doc_free(&back);
	wbxml_doc_free(&doc);
}

/* A text that parses again as one VCALENDAR; its REPLY's ATTENDEEs counted. */
static void
check_reparses(const char *s, bool reply)
{
	const char *err;
	icalcomponent *v = pim_ical_parse(s, strlen(s), &err), *e;
	int n = 0;

	if (v == NULL)
		abort();
	if (reply) {
		icalproperty *m = icalcomponent_get_first_property(v, ICAL_METHOD_PROPERTY);
		if (m == NULL || icalproperty_get_method(m) != ICAL_METHOD_REPLY ||
		    (e = icalcomponent_get_first_component(v, ICAL_VEVENT_COMPONENT)) == NULL)
			abort();
		for (icalproperty *p = icalcomponent_get_first_property(e, ICAL_ATTENDEE_PROPERTY);
		     p; p = icalcomponent_get_next_property(e, ICAL_ATTENDEE_PROPERTY))
			n++;
		if (n != 1)
			abort();
	}
	icalcomponent_free(v);
}

static void
answer(const char *data, size_t size, int how, const int64_t *instance)
{
	struct pim_meeting_answer a;
	const char *why = NULL;

	if (pim_meeting_respond(data, size, "alice@example.com", how, instance, NOW, &a, &why) <
	    0) {
		if (why == NULL || a.reply != NULL || a.object != NULL)
			abort();
		return;
	}
	if (a.reply == NULL || a.uid == NULL ||
	    (how == PIM_MEETING_DECLINE && instance == NULL) != (a.object == NULL))
		abort();
	check_reparses(a.reply, true);
	if (a.object != NULL) {
		check_reparses(a.object, false);
		if (pim_meeting_newer(a.object, strlen(a.object), a.object, strlen(a.object)) != 0)
			abort();
	}
	pim_meeting_answer_clear(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static icaltimezone *berlin;

	pim_ical_init();
	if (berlin == NULL)
		berlin = icaltimezone_get_builtin_timezone("Europe/Berlin");
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		one((const char *)data, size, versions[i], i % 2 ? berlin : NULL);
	if (pim_meeting_newer((const char *)data, size, (const char *)data, size) != 0)
		abort();
	for (int how = PIM_MEETING_ACCEPT; how <= PIM_MEETING_DECLINE; how++) {
		/* the whole meeting, and one occurrence: a start the input's bytes pick */
		int64_t at = 1767225600 + (int64_t)(size % 400) * 86400 + (size % 24) * 3600;
		answer((const char *)data, size, how, NULL);
		answer((const char *)data, size, how, &at);
	}
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_meeting_replay"};
#endif
