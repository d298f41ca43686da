/*
 * util.h: small helpers every layer uses: allocation that never returns NULL,
 * bounded number parsing, durations and timestamps in the spellings abqctl and
 * the config file accept, and identity normalisation.
 */
#ifndef ABQ_UTIL_H
#define ABQ_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Out of memory is the one failure abqd does not try to survive: it exits. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/*
 * The n bytes at p, NULs included, in a new buffer with a NUL after them
 * (xstrndup stops at the first NUL: never for peer bytes whose length is
 * kept beside them).
 */
char *xmemdup0(const void *p, size_t n);
/* xstrdup that keeps NULL as NULL. */
char *xstrdup_null(const char *s);
/* printf into a freshly allocated string (exits when memory runs out). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * A growing NUL-terminated string: zero-initialise it, append, then keep p
 * (NULL while nothing was appended) or sbuf_take it; free p when done.
 */
struct sbuf {
	char *p;
	size_t len, cap;
};
void sbuf_addn(struct sbuf *b, const char *s, size_t n);
void sbuf_add(struct sbuf *b, const char *s);
/* Append with <, >, &, " and ' as entities (HTML and XML text and attribute values). */
void sbuf_addn_escaped(struct sbuf *b, const char *s, size_t n);
void sbuf_add_escaped(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string built (never NULL: "" when nothing was appended); b is left empty. */
char *sbuf_take(struct sbuf *b);

/* Print "abqd: <message>" to stderr and exit(1): for the impossible only. */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* In-place ASCII lower-casing; returns s. */
char *str_lower(char *s);
/*
 * Free blocks of one size kept for reuse, one cache per owner (the HTTP
 * server, the upstream, the gateway), emptied with blk_cache_clear when the
 * owner goes. For the allocations every proxied request makes: the phone's request, the
 * exchange, the parsed MS-ASHTTP request, the upstream request. glibc keeps
 * only 7 free chunks per size for its thread cache and none over 1 KiB, so
 * with a few dozen requests in flight most of these went through its bins
 * (_int_malloc, _int_free), at a cost that showed in the proxy's profile. At
 * most BLK_CACHE_MAX blocks wait; more are freed.
 */
#define BLK_CACHE_MAX 64
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ABQ_HAVE_VALGRIND_H 1
#endif
#endif
struct blk_cache {
	size_t size;
	unsigned n;
	void *b[BLK_CACHE_MAX];
};

static inline void *
blk_alloc(struct blk_cache *c)
{
	return c->n > 0 ? c->b[--c->n] : xmalloc(c->size);
}

void blk_cache_clear(struct blk_cache *c);

/*
 * Where the pieces of a flat "a\0b\0c\0..." block end, noted while it is
 * built, so that indexing it later costs no strlen per piece. Only the first
 * PIECE_ENDS_MAX pieces within the first 64 KiB are noted; piece_len measures
 * the others. Both HTTP parsers (the server's request headers, the upstream's
 * response headers) build such blocks.
 */
#define PIECE_ENDS_MAX 32

struct piece_ends {
	uint16_t end[PIECE_ENDS_MAX]; /* the offset of each noted piece's NUL */
	uint16_t n;
};

/* The piece being built ends at offset off (where its NUL goes). */
static inline void
piece_ends_note(struct piece_ends *pe, size_t off)
{
	/* Offsets only grow: once one is past 64 KiB, so are all the later ones. */
	if (pe->n < PIECE_ENDS_MAX && off <= UINT16_MAX)
		pe->end[pe->n++] = (uint16_t)off;
}

/* The length of piece k, which starts at p inside block. */
static inline size_t
piece_len(const struct piece_ends *pe, size_t k, const char *block, const char *p)
{
	return k < pe->n ? (size_t)pe->end[k] - (size_t)(p - block) : strlen(p);
}

static inline void
blk_free(struct blk_cache *c, void *p)
{
#ifdef __SANITIZE_ADDRESS__
	/* Under AddressSanitizer every block goes back, so a stale use is seen. */
	free(p);
	return;
#endif
#if defined(ABQ_HAVE_VALGRIND_H) && !defined(ABQ_BENCH_KEEP_BLOCKS)
	/*
	 * The same under valgrind (a client request: no cost otherwise); not in
	 * bench/callgrind.sh's build, which counts what production runs.
	 */
	if (RUNNING_ON_VALGRIND) {
		free(p);
		return;
	}
#endif
	if (c->n < BLK_CACHE_MAX)
		c->b[c->n++] = p;
	else
		free(p);
}

/* Case-insensitive ASCII equality; NULL equals only NULL. */
bool str_ieq(const char *a, const char *b);
/* Strings equal, NULL equal to NULL. */
bool str_eq_null(const char *a, const char *b);

/* x with its ASCII capitals (one per byte) made small: eight bytes at once. */
static inline uint64_t
ascii_lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t low7 = x & ~high; /* no byte can carry into the next below */
	uint64_t ge_a = low7 + ones * (0x80 - 'A'), gt_z = low7 + ones * (0x80 - 'Z' - 1);

	return x | (((ge_a ^ gt_z) & high & ~x) >> 2);
}

/*
 * n bytes equal without regard to ASCII case. Inline, eight bytes a step: it
 * compares header and parameter names on every request, after a length check.
 */
static inline bool
mem_ieq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	size_t i = 0;

	if (n < 8) {
		for (; i < n; i++) {
			unsigned char c = (unsigned char)a[i], d = (unsigned char)b[i];

			if (c != d &&
			    ((c | 0x20) != (d | 0x20) || (c | 0x20) < 'a' || (c | 0x20) > 'z'))
				return false;
		}
		return true;
	}
	for (; i + 8 <= n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y && ascii_lower8(x) != ascii_lower8(y))
			return false;
	}
	if (i < n) { /* the last eight bytes, overlapping what was compared */
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		if (x != y && ascii_lower8(x) != ascii_lower8(y))
			return false;
	}
	return true;
}

/*
 * Parse a whole decimal integer in [min, max]. Returns 0, or -1 with *errstr set
 * to a static message ("not a number", "too small", "too large").
 */
int parse_int(const char *s, long long min, long long max, long long *out, const char **errstr);

/*
 * Durations: "0", "90" (seconds), "30s", "45m", "6h", "1d", "2w". Returns 0, or -1
 * with *errstr. format_duration writes the largest exact unit ("45m", "1d", "0").
 */
int parse_duration(const char *s, int64_t *secs, const char **errstr);
const char *format_duration(int64_t secs, char buf[32]);

/*
 * Sizes: "1048576", "512K", "32M", "1G" (binary multiples). Returns 0 or -1.
 */
int parse_size(const char *s, int64_t *bytes, const char **errstr);

/*
 * Timestamps are seconds since the epoch, UTC. format_time gives ISO 8601
 * ("2026-11-28T05:55:14Z"); 0 formats as "-". parse_time accepts "2026-11-28",
 * "2026-11-28T05:55:14Z", "2026-11-28 05:55:14" (UTC), or a number of seconds.
 */
const char *format_time(int64_t t, char buf[32]);
int parse_time(const char *s, int64_t *t, const char **errstr);

/* The current time in seconds; ABQ_NOW in the environment overrides it (tests). */
int64_t abq_now(void);

/* The longest account abqd records, in bytes (the domain part included). */
#define ACCOUNT_MAX 256

/*
 * Identity (product.md): the one spelling of a person's account. The user
 * name loses a "DOMAIN\" prefix (up to the last backslash) and is lower-cased;
 * when default_domain is set (not NULL or empty) and the name has no '@',
 * "@default_domain" is appended. So with default_domain "example.com",
 * "alice", "Alice", "EXAMPLE\alice" and "alice@EXAMPLE.com" are all
 * "alice@example.com"; without it a bare name stays bare. Returns a new
 * string, or NULL for an unusable name: empty, more than one '@', an empty
 * part before or after the '@', control characters, white space or '/', or
 * longer than ACCOUNT_MAX bytes once canonical.
 */
char *account_canonical(const char *user, const char *default_domain);
/*
 * account_canonical into out (at least ACCOUNT_MAX + 1 bytes), NUL-terminated:
 * returns its length, or -1 for an unusable name. No allocation.
 */
long account_canonical_into(const char *user, const char *default_domain, char *out);
/* Whether user's canonical account is account (the User= check); no allocation. */
bool account_is_canonical_of(const char *user, const char *account, const char *default_domain);
/* account_canonical(user, NULL): for callers that know no default domain. */
char *account_normalize(const char *user);
/* Where account_normalize's account lies in user (*len bytes, case as sent), or NULL. */
const char *account_part(const char *user, size_t *len);
/* v in decimal into buf (at least 20 bytes), not terminated; returns the length. */
size_t fmt_u64(char *buf, uint64_t v);
/* account_is_canonical_of(user, account, NULL). */
bool account_is(const char *user, const char *account);
/*
 * The length of s if it may go on the wire as an HTTP field value: no control
 * character but tab, no DEL. -1 otherwise. Eight bytes at a time.
 */
long field_value_len(const char *s);
/* The same test on s[0..n): true when every byte may be in a field value. */
bool field_value_ok(const char *s, size_t n);
/*
 * True when s[0..n) may go on the wire as a field name, as abqd writes them:
 * no control character, space, DEL or ':'. Eight bytes at a time.
 */
bool field_name_ok(const char *s, size_t n);
/*
 * True when s[0..n) may go on the wire as a request line's target: no control
 * character, space or DEL. Eight bytes at a time.
 */
bool request_target_ok(const char *s, size_t n);
/*
 * The domain an account belongs to: the part after '@', else default_domain
 * (which may be NULL). Returns a pointer into account or default_domain.
 */
const char *account_domain(const char *account, const char *default_domain);
/*
 * A DeviceId as the registry keeps it: 1-64 printable ASCII characters without
 * '/' or white space. Returns true if valid.
 */
bool device_id_valid(const char *id);
/*
 * A domain as an administrator names one (abqctl, the admin API): not empty,
 * no '/', '@', space, tab or other control character.
 */
bool domain_valid(const char *domain);

/*
 * recv() and send() on the proxy's hot path, as plain system calls. glibc's
 * wrappers are cancellation points: in a process with more than one thread
 * (every abqd worker has its store thread) each call switches the thread to
 * asynchronous cancellation and back, two atomic operations around every
 * read and write (about 1% of a worker's CPU under the proxy benchmark).
 * abqd never cancels a thread, so the switch buys nothing. Same results and
 * errno as recv(fd, buf, len, 0) and send(fd, buf, len, MSG_NOSIGNAL).
 */
static inline ssize_t
net_recv(int fd, void *buf, size_t len)
{
	return (ssize_t)syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL);
}

static inline ssize_t
net_send(int fd, const void *buf, size_t len)
{
	return (ssize_t)syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
}

#endif
