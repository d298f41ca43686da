/*
 * fuzz_config.c: libFuzzer target over the abqd.conf reader.
 *
 * Each input is written to a file and read with abq_config_load, as abqd -n
 * and abqctl would: every input must give a config or one error message,
 * never a crash, a leak or a read out of bounds. A config that loads is freed
 * and loaded again from the same bytes, which must succeed the same way.
 *
 * Built with -DABQ_FUZZ_REPLAY it gets a main() that feeds every file of the
 * named directories (the seed corpus fuzz/corpus/config), and every
 * truncation of each: the replay test of the normal build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
/* Feed a file and every prefix of it. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t buf[65536];
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	for (size_t i = 0; i <= n; i += 1 + i / 16)
		LLVMFuzzerTestOneInput(buf, i);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int
main(int argc, char **argv)
{
	int files = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		if (d == NULL)
			return 1;
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			failed += replay_file(path) != 0;
			files++;
		}
		closedir(d);
	}
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "/tmp/abq-fuzz-config-%ld.conf", (long)getpid());
	unlink(tmp);
	printf("fuzz_config_replay: %d files, %d failed\n", files, failed);
	return files == 0 || failed != 0;
}
#endif
