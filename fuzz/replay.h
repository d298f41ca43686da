/*
 * replay.h: the corpus replay main() of the fuzz targets (fuzz/replay.c).
 *
 * A target built with -DABQ_FUZZ_REPLAY and linked with fuzz/replay.c is the
 * replay test of the normal build: each argument names a directory, whose
 * files (but dot files) the target takes by name (replay_wants) are replayed
 * in name order, so that a seed may rely on an earlier one's effects, or a
 * file, replayed as it is. Each is read whole and given to replay_input();
 * then replay_done() cleans up. It prints "NAME: F files, X failed" and fails
 * when a file could not be read, the cleanup failed or nothing was replayed.
 */
#ifndef ABQ_FUZZ_REPLAY_H
#define ABQ_FUZZ_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The target's; replay_name is the binary's, e.g. "fuzz_config_replay". */
extern const char replay_name[];
bool replay_wants(const char *name);
void replay_input(const char *name, const uint8_t *data, size_t size);
/* Returns the failures of the target's own cleanup (0: none). */
int replay_done(void);

/* Whether name ends in suffix. */
bool replay_suffix(const char *name, const char *suffix);

#endif
