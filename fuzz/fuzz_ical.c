/*
 * fuzz_ical.c: libFuzzer target over the iCalendar side of native mode's
 * calendars and tasks (src/pim/ical.c, event.c, task.c, recur.c, and tz.c
 * through them), which reads whatever any CalDAV client stored.
 *
 * The input's first byte chooses the EAS version (12.0 to 16.1), the body
 * type and truncation, and whether the user has a zone; the rest is the
 * calendar object. Checks:
 *  - pim_ical_parse takes it or refuses it within its caps;
 *  - a parsed object's event and task convert to Calendar and Tasks
 *    elements whose document encodes (no text WBXML cannot carry) and
 *    decodes;
 *  - that ApplicationData, applied back as a Change of the object and as an
 *    Add, is accepted (the server's own data is never refused) and gives a
 *    VCALENDAR whose text libical parses again;
 *  - the result's occurrences in a year are counted within
 *    PIM_ICAL_MAX_STEPS steps (a huge COUNT or a rule that never matches
 *    ends);
 *  - the event's span for FilterType (pim_event_span) ends within the
 *    steps too, and never before it starts;
 *  - nothing crashes, hangs or leaks under ASan, UBSan and LeakSanitizer.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "pim/event.h"
#include "pim/ical.h"
#include "pim/task.h"
#include "replay.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

static const int versions[] = {120, 121, 140, 141, 160, 161};

/* The text of v parses again. */
static void
check_reparses(icalcomponent *v)
{
	char *s = pim_ical_string(v);
	icalcomponent *again = icalparser_parse_string(s);

	if (again == NULL || icalcomponent_isa(again) != ICAL_VCALENDAR_COMPONENT)
		abort();
	icalcomponent_free(again);
	free(s);
}

static void
check_occurrences(icalcomponent *v, icalcomponent_kind kind, icaltimezone *zone)
{
	int64_t occ[64];

	(void)pim_ical_occurrences(v, kind, zone, NOW, NOW + 366 * 86400, occ, 64);
}

/* One class: to EAS, over the wire, and back as a Change and as an Add. */
static void
round_trip(icalcomponent *vcal, bool task, const struct pim_eas_opts *o,
           const struct pim_apply_opts *a)
{
	struct wbxml_doc *doc = wbxml_doc_new(), *back = NULL;
	struct wbxml_node *app = wbxml_add_root(doc, WBXML_PAGE_AIRSYNC, 0x1D);
	icalcomponent *out = NULL;
	struct wbxml_error err;
	const char *why;
	uint8_t *buf;
	size_t len;
	int r;

	r = task ? pim_task_to_eas(vcal, o, app, &why) : pim_event_to_eas(vcal, o, app, &why);
	if (r < 0) {
		/* Refused: nothing written. */
		if (app->first_child != NULL)
			abort();
		wbxml_doc_free(&doc);
		return;
	}
	if (wbxml_encode(doc, &buf, &len, &err) != WBXML_OK)
		abort();
	if (wbxml_decode(buf, len, NULL, &back, &err) != WBXML_OK)
		abort();
	free(buf);
	app = wbxml_doc_root(back);
	r = task ? pim_task_from_eas(app, vcal, a, &out, &why)
	         : pim_event_from_eas(app, vcal, a, &out, &why);
	if (r < 0 || out == NULL)
		abort();
	check_reparses(out);
	check_occurrences(out, task ? ICAL_VTODO_COMPONENT : ICAL_VEVENT_COMPONENT, o->zone);
	icalcomponent_free(out);
	r = task ? pim_task_from_eas(app, NULL, a, &out, &why)
	         : pim_event_from_eas(app, NULL, a, &out, &why);
	if (r == 0) {
		check_reparses(out);
		icalcomponent_free(out);
	}
	wbxml_doc_free(&back);
	wbxml_doc_free(&doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pim_eas_opts o = {0};
	struct pim_apply_opts a = {0};
	icalcomponent *vcal;
	const char *err;
	uint8_t b;

	if (size < 1)
		return 0;
	pim_ical_init();
	b = data[0];
	o.version = versions[b % 6];
	o.body_type = (b >> 3) % 3;
	o.body_truncation = b & 0x20 ? 16 : 0;
	o.body_all_or_none = (b & 0x60) == 0x60;
	o.zone = b & 0x40 ? icaltimezone_get_builtin_timezone("Europe/Berlin") : NULL;
	o.user_email = b & 0x80 ? "alice@example.com" : NULL;
	a.version = o.version;
	a.user_email = o.user_email;
	a.zone = o.zone;
	a.now = NOW;
	a.uid = "fuzz";
	vcal = pim_ical_parse((const char *)data + 1, size - 1, &err);
	if (vcal == NULL)
		return 0;
	round_trip(vcal, false, &o, &a);
	round_trip(vcal, true, &o, &a);
	check_occurrences(vcal, ICAL_VEVENT_COMPONENT, o.zone);
	int64_t st, en;
	if (pim_event_span(vcal, &st, &en, &err) == 0 && en < st)
		abort();
	icalcomponent_free(vcal);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_ical_replay"};
#endif
