/*
 * fuzz_upprov.c: libFuzzer target over what abqd reads of an upstream that
 * demands provisioning (src/eas/upprov.c): whether an answer is a demand
 * (eas_upprov_demand, with HTTP 200 and 449) and the upstream's Provision
 * answer (eas_upprov_answer). Both read bytes a server sends; neither may
 * read past them, and a demand is only a small body's verdict.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that
 * feeds every file of the directories named on the command line through the
 * same function: the corpus replay test of the normal build.
 */
#include "eas/upprov.h"
#include "replay.h"

#include <stdint.h>
#include <stdlib.h>

/* One input: read as an answer to any command, and as a Provision answer. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eas_upprov_answer a;
	int status = -1;

	if (eas_upprov_demand(200, data, size, &status) != EAS_UPPROV_NONE &&
	    size >= EAS_UPPROV_DEMAND_MAX)
		abort(); /* a large answer is never held as a demand */
	(void)eas_upprov_demand(449, data, size, &status);
	(void)eas_upprov_answer(data, size, &a);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
const struct replay_target replay_target = {.name = "fuzz_upprov_replay"};
#endif
