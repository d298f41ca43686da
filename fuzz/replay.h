/*
 * replay.h: the corpus replay main() of the fuzz targets (fuzz/replay.c).
 *
 * A target built with -DABQ_FUZZ_REPLAY and linked with fuzz/replay.c is the
 * replay test of the normal build: each argument names a directory, whose
 * files (but dot files) the target takes by name (replay_target.wants) are
 * replayed in name order, so that a seed may rely on an earlier one's
 * effects, or a file, replayed as it is. Each is read whole and given to
 * replay_target.input; then replay_target.done cleans up. It prints "NAME: F files, X failed" and
 * fails when a file could not be read, the cleanup failed or nothing was replayed.
 */
#ifndef ABQ_FUZZ_REPLAY_H
#define ABQ_FUZZ_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every target's libFuzzer entry point. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * What a target tells the replay main(). Only name is required: by default
 * every file is taken, each is one input as it is, and there is nothing to
 * clean up.
 */
struct replay_target {
	const char *name; /* the binary's, e.g. "fuzz_config_replay" */
	bool (*wants)(const char *file);
	void (*input)(const char *file, const uint8_t *data, size_t size);
	int (*done)(void); /* the failures of the target's own cleanup (0: none) */
};
extern const struct replay_target replay_target;

/* Whether name ends in suffix. */
bool replay_suffix(const char *name, const char *suffix);

#endif
