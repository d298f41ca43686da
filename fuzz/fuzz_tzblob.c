/*
 * fuzz_tzblob.c: libFuzzer target over the EAS TimeZone blob (src/pim/tz.c),
 * which a phone sends with every calendar item.
 *
 * The input is the blob (its first 172 bytes), then optionally one byte
 * choosing the instant converted and a hint (the rest, up to a NUL). The
 * whole input is also decoded as it is (any length but 172 is refused).
 * Checks:
 *  - a blob pim_tz_decode takes re-encodes to the same 172 bytes, but for
 *    names (UTF-16 that is not well-formed comes back as U+FFFD) and a
 *    33rd name unit (written names are cut at 31 units);
 *  - pim_tz_offset_at stays within +-24 h at every instant tried;
 *  - pim_tz_to_ical gives a zone (never NULL for a decoded blob); a built-in
 *    zone it matched gives the blob's offset at the instant; the zone
 *    converts back with pim_tz_from_ical, whose blob encodes and decodes;
 *  - nothing crashes or leaks under ASan and UBSan.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pim/tz.h"
#include "replay.h"

#define DAY_SECS (24 * 3600)

/* The instants tried: a few years only, so that the built-in zones' rules are computed once. */
static const int64_t instants[] = {
    1782907200, /* 2026-07-01T12:00:00Z */
    1768478400, /* 2026-01-15T12:00:00Z */
    1530446400, /* 2018-07-01T12:00:00Z */
    1751371200, /* 2025-07-01T12:00:00Z */
};

static void
check_offset(const struct pim_eas_tz *tz, int64_t t)
{
	int32_t off = pim_tz_offset_at(tz, t);

	if (off > DAY_SECS || off < -DAY_SECS)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pim_eas_tz tz, back;
	uint8_t blob[PIM_TZ_BLOB_LEN];
	char hint[64] = "";
	const char *h = NULL;
	icaltimezone *zone;
	bool owned = false;
	int64_t at;

	(void)pim_tz_decode(data, size, &tz);
	if (size < PIM_TZ_BLOB_LEN || pim_tz_decode(data, PIM_TZ_BLOB_LEN, &tz) < 0)
		return 0;
	at = instants[size > PIM_TZ_BLOB_LEN ? data[PIM_TZ_BLOB_LEN] % 4 : 0];
	if (size > PIM_TZ_BLOB_LEN + 1) {
		size_t n = size - PIM_TZ_BLOB_LEN - 1;

		if (n >= sizeof(hint))
			n = sizeof(hint) - 1;
		memcpy(hint, data + PIM_TZ_BLOB_LEN + 1, n);
		hint[n] = '\0';
		h = hint;
	}

	/* The fields come back as they were read. */
	pim_tz_encode(&tz, blob);
	if (pim_tz_decode(blob, sizeof(blob), &back) < 0 || back.bias != tz.bias ||
	    back.standard_bias != tz.standard_bias || back.daylight_bias != tz.daylight_bias ||
	    memcmp(&back.standard_date, &tz.standard_date, sizeof(tz.standard_date)) != 0 ||
	    memcmp(&back.daylight_date, &tz.daylight_date, sizeof(tz.daylight_date)) != 0)
		abort();

	check_offset(&tz, at);
	check_offset(&tz, INT64_MIN);
	check_offset(&tz, INT64_MAX);
	check_offset(&tz, 0);
	for (int64_t t = at - 200 * 86400; t < at + 200 * 86400; t += 7 * 86400 + 3599)
		check_offset(&tz, t);

	zone = pim_tz_to_ical(&tz, at, h, &owned);
	if (zone == NULL)
		abort();
	if (!owned) {
		icaltimezone *utc = icaltimezone_get_utc_timezone();
		struct icaltimetype tt = icaltime_from_timet_with_zone((time_t)at, 0, utc);
		int is_daylight = 0;

		if (icaltimezone_get_utc_offset_of_utc_time(zone, &tt, &is_daylight) !=
		    pim_tz_offset_at(&tz, at))
			abort();
	}
	if (pim_tz_from_ical(zone, at, &back) < 0)
		abort();
	check_offset(&back, at);
	pim_tz_encode(&back, blob);
	if (pim_tz_decode(blob, sizeof(blob), &back) < 0)
		abort();
	if (owned)
		icaltimezone_free(zone, 1);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_tzblob_replay"};
#endif
