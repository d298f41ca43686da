/*
 * populate.c: fill a store with N synthetic devices for the benchmarks.
 *
 * usage: bench_populate STORE_URL N
 *
 * Devices are written straight through the store interface in one transaction
 * (the way a long-running abqd accumulates them), spread over N/2 accounts in
 * ten domains, with a mix of phone types, models and operating systems, and
 * states as a registry in mode Interactive would hold them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store.h"

static const char *types[] = {"iPhone", "Android", "iPad", "SAMSUNGSMG991B", "Outlook"};
static const char *models[] = {"iPhone15,2", "SM-G991B", "Pixel 8", "iPad13,4", "Outlook for iOS"};
static const char *oses[] = {"iOS 17.5", "Android 14", "Android 13", "iPadOS 17.4", "iOS 18.1"};

int
main(int argc, char **argv)
{
	const char *err = NULL;
	long long n;

	if (argc != 3 || parse_int(argv[2], 1, 10000000, &n, &err) < 0) {
		fprintf(stderr, "usage: bench_populate STORE_URL N\n");
		return 2;
	}
	struct abq_store *s = abq_store_open(argv[1], NULL, ABQ_STORE_CREATE, &err);
	if (s == NULL) {
		fprintf(stderr, "bench_populate: %s\n", err);
		return 1;
	}
	if (abq_store_begin(s, &err) < 0)
		goto fail;
	for (long long i = 0; i < n; i++) {
		char account[64], id[32];
		snprintf(account, sizeof(account), "user%lld@dom%lld.example", i / 2, i % 10);
		snprintf(id, sizeof(id), "DEV%08llX", i);
		int k = (int)(i % 5);
		struct abq_device d = {
		    .account = account,
		    .device_id = id,
		    .device_type = (char *)types[k],
		    .model = (char *)models[k],
		    .os = (char *)oses[k],
		    .user_agent = (char *)"Apple-iPhone15C2/2104.255",
		    .eas_version = (char *)"16.1",
		    .first_seen = 1700000000 + i,
		    .last_seen = 1700000000 + i * 7,
		    .state = i % 3 == 0 ? ABQ_STATE_ALLOWED : ABQ_STATE_QUARANTINED,
		    .reason = ABQ_REASON_MODE,
		    .state_by = (char *)"abqd",
		    .state_at = 1700000000 + i,
		};
		if (abq_store_device_put(s, &d, &err) < 0)
			goto fail;
	}
	if (abq_store_commit(s, &err) < 0)
		goto fail;
	abq_store_close(&s);
	return 0;
fail:
	fprintf(stderr, "bench_populate: %s\n", err);
	abq_store_rollback(s);
	abq_store_close(&s);
	return 1;
}
