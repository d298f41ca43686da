/*
 * fuzz_abqctl.c: libFuzzer target over abqctl's whole command line: the
 * option reader, the grammar matcher, every value check and every handler,
 * against a real SQLite store in a private folder.
 *
 * An input is one command line, a word a line ("mobile\nabq\nallow\nX1"). It
 * runs as `abqctl -c abqd.conf WORDS...` through abqctl_main, in-process, and
 * must end with exit status 0, 1 or 2, never a crash, a leak or a read out of
 * bounds. The store persists between inputs, so later commands see what
 * earlier ones wrote, as an administrator's session does.
 *
 * What the target keeps out, so that a run cannot touch the machine: any word
 * with a '/' (import and template files are then only files of the private
 * folder, never /dev/zero or /etc), and migrate-store (which creates stores
 * where its URLs say). stdin is /dev/null (admin passwords and "import -" read
 * nothing); stdout and stderr go to /dev/null (in the replay; libFuzzer runs
 * take -close_fd_mask=3, as bench/fuzz gives).
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * every file of the named directories (the seed corpus fuzz/corpus/abqctl): the
 * replay test of the normal and sanitizer builds.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "replay.h"

#define MAX_WORDS 20

static char dir[64];
static int real_stderr = -1;

static void
die(const char *what)
{
	if (real_stderr >= 0)
		dprintf(real_stderr, "fuzz_abqctl: %s\n", what);
	abort();
}

/* Run abqctl with words; returns its exit status. */
static int
run(char **words, size_t n)
{
	char *argv[MAX_WORDS + 4];
	int argc = 0;

	argv[argc++] = "abqctl";
	argv[argc++] = "-c";
	argv[argc++] = "abqd.conf";
	for (size_t i = 0; i < n; i++)
		argv[argc++] = words[i];
	argv[argc] = NULL;
	int rc = abqctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	return rc;
}

/* A private folder with a config and an initialised store; stdio silenced. */
static void
setup(void)
{
	static const char conf[] = "[eas]\ndefault_domain = example.com\n"
	                           "[store]\nurl = sqlite:abqd.db\n"
	                           "[smtp]\nfrom = abq@example.com\nadmins = it@example.com\n";
	char *init[] = {"init"};
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/abq-fuzz-abqctl-%ld", (long)getpid());
	if (mkdir(dir, 0700) != 0 || chdir(dir) != 0)
		die("cannot make the private folder");
	FILE *f = fopen("abqd.conf", "w");
	if (f == NULL || fwrite(conf, 1, sizeof(conf) - 1, f) != sizeof(conf) - 1 || fclose(f) != 0)
		die("cannot write abqd.conf");
	f = fopen("devices.txt", "w"); /* something for "import devices.txt S" */
	if (f == NULL || fputs("IMP1\nIMP2/bob\n# comment\n\n", f) < 0 || fclose(f) != 0)
		die("cannot write devices.txt");
	real_stderr = dup(2);
	if ((fd = open("/dev/null", O_RDWR)) < 0)
		die("cannot open /dev/null");
	dup2(fd, 0);
#ifdef ABQ_FUZZ_REPLAY
	/* Under libFuzzer, -close_fd_mask=3 silences abqctl and keeps libFuzzer's own output. */
	dup2(fd, 1);
	dup2(fd, 2);
#endif
	close(fd);
	if (run(init, 1) != 0)
		die("abqctl init failed");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[MAX_WORDS];
	size_t n = 0;
	char *buf;

	if (dir[0] == '\0')
		setup();
	if (size > 4096)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		die("out of memory");
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (memchr(buf, '\0', size) != NULL || strchr(buf, '/') != NULL)
		goto out; /* argv words cannot hold NUL; '/' names files outside the folder */
	for (char *p = buf, *nl; p != NULL && *p != '\0'; p = nl != NULL ? nl + 1 : NULL) {
		if ((nl = strchr(p, '\n')) != NULL)
			*nl = '\0';
		if (n == MAX_WORDS)
			goto out;
		words[n++] = p;
	}
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(words[i], "migrate-store") == 0)
			goto out;
	int rc = run(words, n);
	if (rc != CTL_OK && rc != CTL_REFUSED && rc != CTL_USAGE)
		die("an exit status that is not 0, 1 or 2");
	if (getenv("ABQ_FUZZ_VERBOSE") != NULL) { /* for corpus work: what each seed does */
		dprintf(real_stderr, "rc %d:", rc);
		for (size_t i = 0; i < n; i++)
			dprintf(real_stderr, " %s", words[i]);
		dprintf(real_stderr, "\n");
	}
out:
	free(buf);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
static int
abqctl_done(void)
{
	if (dir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (chdir("/") != 0 || system(cmd) != 0)
			return 1;
	}
	return 0;
}

const struct replay_target replay_target = {.name = "fuzz_abqctl_replay", .done = abqctl_done};
#endif
