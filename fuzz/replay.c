/*
 * replay.c: the corpus replay main() of the fuzz targets (see replay.h).
 */
#include "replay.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

bool
replay_suffix(const char *name, const char *suffix)
{
	size_t l = strlen(name), s = strlen(suffix);

	return l > s && strcmp(name + l - s, suffix) == 0;
}

static int out = -1; /* stdout, which the target may silence for itself */

/* Read path whole and give it to the target; -1 if it cannot be read. */
static int
replay_file(const char *path, const char *name)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n = -1;
	bool ok = false;

	if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = xmalloc((size_t)n + 1);
		ok = fread(buf, 1, (size_t)n, f) == (size_t)n;
	}
	if (f != NULL)
		fclose(f);
	if (!ok) {
		dprintf(out, "%s: cannot read %s\n", replay_target.name, path);
		free(buf);
		return -1;
	}
	if (replay_target.input != NULL)
		replay_target.input(name, buf, (size_t)n);
	else
		LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(int argc, char **argv)
{
	int files = 0, failed = 0;
	char cwd[4096];

	if ((out = dup(STDOUT_FILENO)) < 0 || getcwd(cwd, sizeof(cwd)) == NULL)
		return 1;
	for (int i = 1; i < argc; i++) {
		/* Absolute, as the target may change the working directory. */
		char *top = argv[i][0] == '/' ? xstrdup(argv[i]) : xasprintf("%s/%s", cwd, argv[i]);
		struct dirent **list;
		int m = scandir(top, &list, NULL, by_name);

		if (m < 0) {
			const char *base = strrchr(top, '/');
			failed += replay_file(top, base + 1) != 0;
			files++;
		}
		for (int k = 0; k < m; k++) {
			const char *name = list[k]->d_name;
			if (name[0] != '.' &&
			    (replay_target.wants == NULL || replay_target.wants(name))) {
				char *path = xasprintf("%s/%s", top, name);
				failed += replay_file(path, name) != 0;
				files++;
				free(path);
			}
			free(list[k]);
		}
		if (m >= 0)
			free(list);
		free(top);
	}
	if (replay_target.done != NULL)
		failed += replay_target.done();
	dprintf(out, "%s: %d files, %d failed\n", replay_target.name, files, failed);
	return files == 0 || failed != 0;
}
