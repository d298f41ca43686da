/*
 * workers.c: the prefork abqd (see workers.h).
 *
 * Why processes and not threads: the gateway, its device map, its auth caches
 * and its held-request timers stay single-threaded code, and a worker that
 * crashes takes only its own connections with it.
 *
 * Why one SO_REUSEPORT socket per worker rather than one shared socket: with
 * a shared socket every idle worker is woken for each new connection and the
 * one that wins is usually the one that was waiting last, so the connections
 * (here, mostly long-held Pings) pile up on one worker; the kernel's
 * SO_REUSEPORT hash spreads them evenly. The price: connections the kernel
 * gives to a dead worker's socket wait in its backlog until the worker is
 * restarted, which is why the main process keeps every socket open and
 * restarts at once the first time. bench/proxy.sh measures both
 * (ABQD_SHARED_LISTENER=1 selects one shared socket per address).
 *
 * The main process waits on a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP are
 * blocked) and on a pipe where each worker writes its index once it serves;
 * a worker that ends before the first generation has all come up means the
 * configuration cannot work (its own error is already in the log): abqd then
 * stops and exits 1, as the single-process abqd does.
 */
#include "daemon/workers.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/net.h"
#include "net/tls.h"
#include "store/store.h"

#define WORKERS_MAX 64
/* A worker that dies is restarted after RESTART_MIN_MS, doubled while it keeps
 * dying within STABLE_MS of its start, up to RESTART_MAX_MS. */
#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 30000
#define STABLE_MS      10000
/* After SIGTERM: the workers drain for up to 10 s; then they are killed. */
#define KILL_AFTER_MS 15000

struct slot {
	pid_t pid; /* 0: not running */
	bool ready;
	int64_t started_ms;
	unsigned delay_ms;  /* the next restart's delay */
	int64_t restart_ms; /* when to restart (0: not scheduled) */
};

static struct {
	const struct abq_config *cfg;
	const char *config_path;
	int n;
	size_t nlisten;
	int *fds;    /* nlisten * n (or nlisten when shared), -1 once closed */
	bool shared; /* one socket per address, shared by every worker */
	struct tls_ctx *tls;
	int sfd;      /* signalfd */
	int ready[2]; /* pipe: a worker writes its index when it serves */
	sigset_t mask;
	struct slot slot[WORKERS_MAX];
	int fds_mine[64];
	struct gateway_worker me;
} W = {.sfd = -1, .ready = {-1, -1}};

/*
 * Milliseconds on the monotonic clock, for the restart delays (a change of the
 * wall clock must not stretch them).
 */
static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The number of worker processes (workers.h): [eas] workers, or one per online
 * CPU, at most WORKERS_MAX.
 */
int
workers_count(const struct abq_config *cfg)
{
	long n = cfg->eas_workers;
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

/*
 * Give the store files to user, then become that user, groups included, for
 * good (workers.h); a process still root after this would serve phones as root,
 * so any failure is an error.
 */
int
drop_privileges(const char *user, const char *const *files)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("[eas] user '%s' does not exist", user);
		return -1;
	}
	for (size_t i = 0; files != NULL && files[i] != NULL; i++) {
		if (chown(files[i], pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT) {
			log_error("chown %s: %s", files[i], strerror(errno));
			return -1;
		}
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot become user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("still able to regain root after dropping to %s", user);
		return -1;
	}
	log_info("running as %s", user);
	return 0;
}

/* Bind every [eas] listen address: n SO_REUSEPORT sockets each, or one shared. */
static int
bind_all(void)
{
	const struct abq_config *cfg = W.cfg;
	size_t per = W.shared ? 1 : (size_t)W.n;
	const char *err = NULL;

	W.nlisten = cfg->eas_listen_count;
	W.fds = xcalloc(W.nlisten * per + 1, sizeof(int));
	for (size_t i = 0; i < W.nlisten * per; i++)
		W.fds[i] = -1;
	for (size_t a = 0; a < W.nlisten; a++) {
		const struct abq_listen *l = &cfg->eas_listen[a];
		bool v6 = strchr(l->host, ':') != NULL;
		char *addr = v6 ? xasprintf("[%s]:%s", l->host, l->port)
		                : xasprintf("%s:%s", l->host, l->port);
		int port = 0;
		for (size_t k = 0; k < per; k++) {
			/* Port 0: the later sockets take the port the first one got. */
			char *at = k == 0 ? xstrdup(addr)
			                  : (v6 ? xasprintf("[%s]:%d", l->host, port)
			                        : xasprintf("%s:%d", l->host, port));
			int fd = net_listen(at, !W.shared, 1024, &port, &err);
			free(at);
			if (fd < 0) {
				log_error("listen %s%s: %s", l->tls ? "tls:" : "", addr, err);
				fprintf(stderr, "abqd: listen %s%s: %s\n", l->tls ? "tls:" : "",
				        addr, err);
				free(addr);
				return -1;
			}
			W.fds[a * per + k] = fd;
		}
		log_info("listening on %s%s (%zu socket%s)", l->tls ? "tls:" : "", addr, per,
		         per == 1 ? ", shared" : "s, SO_REUSEPORT");
		if (l->tls && W.tls == NULL &&
		    (W.tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, &err)) == NULL) {
			log_error("tls: %s", err);
			fprintf(stderr, "abqd: tls: %s\n", err);
			free(addr);
			return -1;
		}
		free(addr);
	}
	return 0;
}

/*
 * Close every listening socket the main process holds: when the drain begins
 * (no new connection is accepted), on a failed start, and at the end.
 */
static void
close_listeners(void)
{
	size_t per = W.shared ? 1 : (size_t)W.n;
	for (size_t i = 0; W.fds != NULL && i < W.nlisten * per; i++) {
		if (W.fds[i] >= 0)
			close(W.fds[i]);
		W.fds[i] = -1;
	}
}

/*
 * Create the store if it is new (here, once, rather than racing in every
 * worker) and give its files to [eas] user, then drop privileges.
 */
static int
store_and_privileges(void)
{
	const struct abq_config *cfg = W.cfg;
	const char *err = NULL;
	struct abq_store *st =
	    abq_store_open(cfg->store_url, cfg->base_dir, ABQ_STORE_CREATE, &err);
	if (st == NULL) {
		log_error("store: %s", err);
		fprintf(stderr, "abqd: store: %s\n", err);
		return -1;
	}
	/* Once, before the workers open it: bare accounts made canonical. */
	if (abq_store_accounts_canonicalize(st, cfg->eas_default_domain, NULL, &err) != 0) {
		log_error("store: %s", err);
		fprintf(stderr, "abqd: store: %s\n", err);
		abq_store_close(&st);
		return -1;
	}
	const char *const *f = abq_store_files(st);
	size_t nf = 0;
	while (f[nf] != NULL)
		nf++;
	char **files = xcalloc(nf + 1, sizeof(char *));
	for (size_t i = 0; i < nf; i++)
		files[i] = xstrdup(f[i]);
	abq_store_close(&st);
	int rv = 0;
	if (cfg->eas_user != NULL)
		rv = drop_privileges(cfg->eas_user, (const char *const *)files);
	for (size_t i = 0; i < nf; i++)
		free(files[i]);
	free(files);
	return rv;
}

/* In the child: keep only worker i's sockets and become it. */
static void
become_worker(int i, pid_t parent)
{
	size_t per = W.shared ? 1 : (size_t)W.n;
	/* When the main process goes (even SIGKILL), drain and end too. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		raise(SIGTERM);
	close(W.sfd);
	close(W.ready[0]);
	W.sfd = W.ready[0] = -1;
	signal(SIGINT, SIG_IGN);
	/* Worker i's own metrics table (a restarted worker i takes its predecessor's). */
	abq_metrics_worker(i);
	for (size_t a = 0; a < W.nlisten; a++) {
		for (size_t k = 0; k < per; k++) {
			int fd = W.fds[a * per + k];
			if (W.shared || (int)k == i)
				W.fds_mine[a] = fd;
			else
				close(fd);
		}
	}
	char prefix[48];
	snprintf(prefix, sizeof(prefix), "worker=%d pid=%ld ", i, (long)getpid());
	log_set_prefix(prefix);
	W.me.index = i;
	W.me.count = W.n;
	W.me.listen_fds = W.fds_mine;
	W.me.tls = W.tls;
	W.me.site_tasks = i == 0;
}

/* Fork worker i; 1 in the child, 0 in the parent, -1 on failure. */
static int
spawn(int i)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("workers: cannot fork worker %d: %s", i, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		become_worker(i, parent);
		return 1;
	}
	W.slot[i].pid = pid;
	W.slot[i].ready = false;
	W.slot[i].started_ms = now_ms();
	W.slot[i].restart_ms = 0;
	log_info("workers: worker %d started (pid %ld)%s", i, (long)pid,
	         i == 0 ? ", with the outbox sender and the digest" : "");
	return 0;
}

/* Pass a signal on to every live worker. */
static void
signal_all(int sig)
{
	for (int i = 0; i < W.n; i++) {
		if (W.slot[i].pid > 0)
			kill(W.slot[i].pid, sig);
	}
}

/* How many workers are running, for the supervisor's loop and its exit after SIGTERM. */
static int
live(void)
{
	int k = 0;
	for (int i = 0; i < W.n; i++)
		k += W.slot[i].pid > 0;
	return k;
}

/* How a worker ended, for the log. */
static void
describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
		         strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/*
 * SIGHUP in the main process: check that the new config loads and take its log
 * level, then pass SIGHUP on to every worker, which takes the rest itself.
 */
static void
on_reload(void)
{
	char *err = NULL;
	enum log_level level;
	struct abq_config *cfg = abq_config_load(W.config_path, true, &err);
	if (cfg == NULL) {
		log_error("reload: %s; the workers keep their configuration", err);
		free(err);
		return;
	}
	if (log_level_parse(cfg->log_level, &level) == 0)
		log_set_level(level);
	abq_config_free(&cfg);
	log_info("workers: SIGHUP, passed on to every worker");
	signal_all(SIGHUP);
}

/*
 * The main process's loop. Returns the exit status, or -2 in a restarted
 * worker (the caller then returns 0 with the worker set).
 */
static int
supervise(void)
{
	bool stopping = false, all_up = false, failed = false;
	int64_t kill_at = 0;

	for (;;) {
		if (stopping && live() == 0)
			return failed ? 1 : 0;
		int64_t now = now_ms(), next = -1;
		for (int i = 0; i < W.n; i++) {
			if (W.slot[i].restart_ms > 0 && (next < 0 || W.slot[i].restart_ms < next))
				next = W.slot[i].restart_ms;
		}
		if (kill_at > 0 && (next < 0 || kill_at < next))
			next = kill_at;
		int timeout = next < 0 ? -1 : (next > now ? (int)(next - now) : 0);
		struct pollfd p[2] = {{W.sfd, POLLIN, 0}, {W.ready[0], POLLIN, 0}};
		if (poll(p, 2, timeout) < 0 && errno != EINTR) {
			log_error("workers: poll: %s", strerror(errno));
			return 1;
		}
		now = now_ms();
		if (p[1].revents & POLLIN) {
			unsigned char idx[64];
			ssize_t r = read(W.ready[0], idx, sizeof(idx));
			for (ssize_t k = 0; k < r; k++) {
				if (idx[k] < W.n)
					W.slot[idx[k]].ready = true;
			}
			if (!all_up) {
				int up = 0;
				for (int i = 0; i < W.n; i++)
					up += W.slot[i].ready;
				if (up == W.n) {
					all_up = true;
					log_info("abqd %s started: %d workers; upstream %s",
					         ABQ_VERSION, W.n, W.cfg->upstream_url);
				}
			}
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(W.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGTERM || sig == SIGINT) {
					if (!stopping) {
						log_info("%s: draining %d workers",
						         sig == SIGINT ? "SIGINT" : "SIGTERM",
						         live());
						stopping = true;
						kill_at = now + KILL_AFTER_MS;
						close_listeners();
					} else {
						log_info("second signal: the workers exit now");
					}
					signal_all(SIGTERM);
				} else if (sig == SIGHUP && !stopping) {
					on_reload();
				}
				/* SIGCHLD: reaped below whatever the signal. */
			}
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			int i = 0;
			while (i < W.n && W.slot[i].pid != pid)
				i++;
			if (i == W.n)
				continue;
			char why[96];
			describe(status, why, sizeof(why));
			struct slot *s = &W.slot[i];
			s->pid = 0;
			if (stopping) {
				if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
					log_warn("workers: worker %d (pid %ld) %s", i, (long)pid,
					         why);
				continue;
			}
			if (!all_up && !s->ready) {
				log_error(
				    "workers: worker %d (pid %ld) %s before it served; stopping", i,
				    (long)pid, why);
				stopping = failed = true;
				kill_at = now + KILL_AFTER_MS;
				close_listeners();
				signal_all(SIGTERM);
				continue;
			}
			if (now - s->started_ms >= STABLE_MS || s->delay_ms == 0)
				s->delay_ms = RESTART_MIN_MS;
			else if (s->delay_ms < RESTART_MAX_MS)
				s->delay_ms = s->delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS
				                                               : s->delay_ms * 2;
			s->restart_ms = now + s->delay_ms;
			log_error("workers: worker %d (pid %ld) %s; restarting it in %u ms", i,
			          (long)pid, why, s->delay_ms);
		}
		if (kill_at > 0 && now >= kill_at && live() > 0) {
			log_warn("workers: %d still running %d s after SIGTERM, killing them",
			         live(), KILL_AFTER_MS / 1000);
			signal_all(SIGKILL);
			kill_at = 0;
		}
		for (int i = 0; i < W.n && !stopping; i++) {
			if (W.slot[i].restart_ms > 0 && now >= W.slot[i].restart_ms) {
				int r = spawn(i);
				if (r == 1)
					return -2;
				if (r < 0)
					W.slot[i].restart_ms = now + RESTART_MAX_MS;
			}
		}
	}
}

/*
 * The prefork abqd (workers.h): block the signals, bind every listener, create
 * the store and drop privileges, share the metrics, fork the workers, then
 * supervise them until all have ended after SIGTERM. A worker (forked at start
 * or restarted) returns from here with *worker_r set.
 */
int
workers_run(const struct abq_config *cfg, const char *config_path, int n,
            const struct gateway_worker **worker_r)
{
	*worker_r = NULL;
	W.cfg = cfg;
	W.config_path = config_path;
	W.n = n;
	/*
	 * Before anything is bound: a SIGTERM sent as soon as the port answers
	 * must be a drain (read from the signalfd below), never the default death.
	 */
	sigemptyset(&W.mask);
	sigaddset(&W.mask, SIGCHLD);
	sigaddset(&W.mask, SIGTERM);
	sigaddset(&W.mask, SIGINT);
	sigaddset(&W.mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &W.mask, NULL);
	const char *sh = getenv("ABQD_SHARED_LISTENER");
	W.shared = sh != NULL && strcmp(sh, "1") == 0;
	if (cfg->eas_listen_count > sizeof(W.fds_mine) / sizeof(W.fds_mine[0])) {
		log_error("[eas] listen: at most %zu addresses with workers",
		          sizeof(W.fds_mine) / sizeof(W.fds_mine[0]));
		return 1;
	}
	if (bind_all() < 0 || store_and_privileges() < 0) {
		close_listeners();
		return 1;
	}
	/* A table for each worker in one shared mapping, so that they add up. */
	if (abq_metrics_share(n) < 0) {
		log_error("workers: cannot share the metrics between processes");
		close_listeners();
		return 1;
	}
	if ((W.sfd = signalfd(-1, &W.mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    pipe2(W.ready, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("workers: %s", strerror(errno));
		close_listeners();
		return 1;
	}
	log_info("workers: %d, %s", n,
	         W.shared ? "one shared listening socket" : "one SO_REUSEPORT socket each");
	for (int i = 0; i < n; i++) {
		int r = spawn(i);
		if (r == 1) {
			*worker_r = &W.me;
			return 0;
		}
		if (r < 0) {
			/* Stop the ones started; fork failing at start is fatal. */
			close_listeners();
			signal_all(SIGTERM);
			for (int k = 0; k < i; k++)
				waitpid(W.slot[k].pid, NULL, 0);
			return 1;
		}
	}
	int rv = supervise();
	if (rv == -2) {
		*worker_r = &W.me;
		return 0;
	}
	close_listeners();
	close(W.sfd);
	close(W.ready[0]);
	close(W.ready[1]);
	log_info("abqd stopping: every worker has ended");
	free(W.fds);
	tls_ctx_free(&W.tls);
	return rv;
}

/*
 * A worker serves: tell the main process (one byte, its index, on the ready
 * pipe), then let in the signals blocked since the fork.
 */
void
workers_ready(const struct gateway_worker *w)
{
	unsigned char idx = (unsigned char)w->index;
	if (write(W.ready[1], &idx, 1) != 1)
		log_warn("workers: cannot tell the main process this worker serves");
	close(W.ready[1]);
	W.ready[1] = -1;
	sigprocmask(SIG_UNBLOCK, &W.mask, NULL);
	log_info("serving");
}
