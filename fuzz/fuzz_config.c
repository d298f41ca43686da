/*
 * fuzz_config.c: libFuzzer target over the abqd.conf reader.
 *
 * Each input is written to a file and read with abq_config_load, as abqd -n
 * and abqctl would: every input must give a config or one error message,
 * never a crash, a leak or a read out of bounds. A config that loads is freed
 * and loaded again from the same bytes, which must succeed the same way.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * every file of the named directories (the seed corpus fuzz/corpus/config), and
 * every truncation of each: the replay test of the normal build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "replay.h"

/* Write data to a private file and load it; returns whether it loaded. */
static int
load(const uint8_t *data, size_t size)
{
	static char path[64];
	char *err = NULL;
	int ok;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/abq-fuzz-config-%ld.conf", (long)getpid());
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	struct abq_config *c = abq_config_load(path, false, &err);
	ok = c != NULL;
	if (c == NULL && (err == NULL || err[0] == '\0'))
		abort(); /* a refusal must say why */
	abq_config_free(&c);
	free(err);
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	int first = load(data, size);
	if (load(data, size) != first)
		abort(); /* the same bytes must load the same way */
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
/* A file and every prefix of it. */
static void
config_input(const char *name, const uint8_t *data, size_t size)
{
	(void)name;
	for (size_t i = 0; i <= size; i += 1 + i / 16)
		LLVMFuzzerTestOneInput(data, i);
	LLVMFuzzerTestOneInput(data, size);
}

static int
config_done(void)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "/tmp/abq-fuzz-config-%ld.conf", (long)getpid());
	unlink(tmp);
	return 0;
}

const struct replay_target replay_target = {
    .name = "fuzz_config_replay", .input = config_input, .done = config_done};
#endif
