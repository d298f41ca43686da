/*
 * util.c: allocation, bounded parsing of numbers, durations, sizes and
 * timestamps, and identity normalisation (see util.h).
 *
 * Everything here is pure except abq_now() (the clock) and fatalx() (exit).
 * Parsers never trust their input: the whole string must be consumed, every
 * multiplication is checked for overflow, and errors come back as static
 * messages the caller can put in front of a user.
 */
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define DEVICE_ID_MAX    64
#define DURATION_ERR_MSG "not a duration (use 0, 30s, 45m, 6h, 1d)"
#define SIZE_ERR_MSG     "not a size (use 1048576, 512K, 32M, 1G)"
#define TIME_ERR_MSG     "not a time (use 2026-11-28, 2026-11-28T05:55:14Z or seconds since 1970)"

/*
 * Report the one failure abqd does not try to survive and exit. The message is
 * printed on stderr with the program prefix so that it is never mistaken for
 * normal output.
 */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	fputs("abqd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* malloc that never returns NULL; a zero size still yields a unique pointer. */
void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

/* calloc that never returns NULL; calloc itself checks nmemb * size for overflow. */
void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	p = calloc(nmemb, size);
	if (p == NULL)
		fatalx("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

/* realloc that never returns NULL (and never frees on a zero size). */
void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return q;
}

/* strdup that never returns NULL. */
char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatalx("out of memory (strdup)");
	return p;
}

/* strndup that never returns NULL: at most n bytes of s, always terminated. */
char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatalx("out of memory (strndup)");
	return p;
}

/* The n bytes at p and a NUL (see util.h). */
char *
xmemdup0(const void *p, size_t n)
{
	char *d = xmalloc(n + 1);

	if (n > 0)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* xstrdup for optional strings: NULL stays NULL. */
char *
xstrdup_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

/* vprintf into a new string; the caller frees it. */
char *
xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		fatalx("out of memory (asprintf)");
	return s;
}

/* printf into a new string; the caller frees it. */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/*
 * ASCII lower-casing in place. Identities and keywords are compared in their
 * lower-case form; bytes above 0x7f (UTF-8) are left alone on purpose, since
 * locale-dependent case mapping would make the registry depend on the locale.
 */
char *
str_lower(char *s)
{
	if (s == NULL)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

/* Case-insensitive ASCII comparison; NULL only equals NULL. */
bool
str_ieq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcasecmp(a, b) == 0;
}

/* Plain equality where NULL (an unset value) equals only NULL. */
bool
str_eq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Parse the whole of s as a decimal integer in [min, max]. strtoll alone is
 * too lenient (leading blanks, trailing junk, silent clamping), so each of
 * those cases is checked here and named in *errstr.
 */
int
parse_int(const char *s, long long min, long long max, long long *out, const char **errstr)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) {
		*errstr = "not a number";
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0') {
		*errstr = "not a number";
		return -1;
	}
	if (errno == ERANGE) {
		*errstr = v < 0 ? "too small" : "too large";
		return -1;
	}
	if (v < min) {
		*errstr = "too small";
		return -1;
	}
	if (v > max) {
		*errstr = "too large";
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Read the run of decimal digits at *sp into *v, refusing overflow of int64_t.
 * Returns the number of digits read (0 if none), or -1 on overflow. Shared by
 * the duration, size and time parsers, which all want digits only: no sign,
 * no blanks.
 */
static int
read_digits(const char **sp, int64_t *v)
{
	const char *s = *sp;
	int64_t n = 0;
	int count = 0;

	while (*s >= '0' && *s <= '9') {
		int d = *s - '0';

		if (n > (INT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
		s++;
		count++;
	}
	*sp = s;
	*v = n;
	return count;
}

/*
 * Parse a number followed by at most one unit letter from units (matched
 * case-insensitively), multiplying by the matching factor. The common shape of
 * durations and sizes; bad_msg names the accepted spellings.
 */
static int
parse_scaled(const char *s, const char *units, const int64_t *factors, int64_t *out,
             const char *bad_msg, const char **errstr)
{
	int64_t v, mult = 1;
	int n;

	if (s == NULL) {
		*errstr = bad_msg;
		return -1;
	}
	n = read_digits(&s, &v);
	if (n < 0) {
		*errstr = "too large";
		return -1;
	}
	if (n == 0) {
		*errstr = bad_msg;
		return -1;
	}
	if (*s != '\0') {
		const char *u = strchr(units, tolower((unsigned char)*s));

		if (u == NULL || s[1] != '\0') {
			*errstr = bad_msg;
			return -1;
		}
		mult = factors[u - units];
	}
	if (v > INT64_MAX / mult) {
		*errstr = "too large";
		return -1;
	}
	*out = v * mult;
	return 0;
}

static const char duration_units[] = "smhdw";
static const int64_t duration_factors[] = {1, 60, 3600, 86400, 604800};

/* Parse "0", "90", "30s", "45m", "6h", "1d" or "2w" into seconds. */
int
parse_duration(const char *s, int64_t *secs, const char **errstr)
{
	return parse_scaled(s, duration_units, duration_factors, secs, DURATION_ERR_MSG, errstr);
}

/*
 * Write secs in the largest unit that represents it exactly, so that what
 * abqctl prints reads naturally ("1d", not "86400") and parses back to the
 * same value.
 */
const char *
format_duration(int64_t secs, char buf[32])
{
	const char *sign = "";
	uint64_t v;
	int i;

	if (secs == 0) {
		snprintf(buf, 32, "0");
		return buf;
	}
	if (secs < 0) {
		sign = "-";
		v = (uint64_t)0 - (uint64_t)secs;
	} else
		v = (uint64_t)secs;
	for (i = (int)sizeof(duration_factors) / (int)sizeof(duration_factors[0]) - 1; i > 0; i--)
		if (v % (uint64_t)duration_factors[i] == 0)
			break;
	snprintf(buf, 32, "%s%llu%c", sign, (unsigned long long)(v / (uint64_t)duration_factors[i]),
	         duration_units[i]);
	return buf;
}

/* Parse a byte count with an optional binary K, M or G multiplier. */
int
parse_size(const char *s, int64_t *bytes, const char **errstr)
{
	static const int64_t factors[] = {1024, 1024 * 1024, 1024 * 1024 * 1024};

	return parse_scaled(s, "kmg", factors, bytes, SIZE_ERR_MSG, errstr);
}

/*
 * Format t as ISO 8601 in UTC ("2026-11-28T05:55:14Z"). Zero is the registry's
 * "never" and prints as "-" so that tables stay aligned and unambiguous.
 */
const char *
format_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		snprintf(buf, 32, "-");
		return buf;
	}
	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, 32, "%lld", (long long)t);
		return buf;
	}
	if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "%lld", (long long)t);
	return buf;
}

/* Read exactly width digits at *sp into *v; false if they are not all digits. */
static bool
read_fixed(const char **sp, int width, int *v)
{
	const char *s = *sp;
	int n = 0;

	for (int i = 0; i < width; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (s[i] - '0');
	}
	*sp = s + width;
	*v = n;
	return true;
}

/* Consume the expected character c at *sp. */
static bool
read_char(const char **sp, char c)
{
	if (**sp != c)
		return false;
	(*sp)++;
	return true;
}

/* The number of days in a month of the proleptic Gregorian calendar. */
static int
days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * Parse a timestamp in one of the spellings abqctl accepts: a date (midnight
 * UTC), a date and time with 'T' and 'Z', a date and time separated by a
 * space (UTC), or a plain number of seconds since the epoch. Every field is
 * range-checked, because timegm() would silently normalise 2026-02-30 into
 * March.
 */
int
parse_time(const char *s, int64_t *t, const char **errstr)
{
	int year, mon, day, hour = 0, min = 0, sec = 0;
	const char *p = s;
	struct tm tm;
	int64_t v;
	int n;

	if (s == NULL || *s == '\0') {
		*errstr = TIME_ERR_MSG;
		return -1;
	}
	if (strchr(s, '-') == NULL) {
		n = read_digits(&p, &v);
		if (n < 0) {
			*errstr = "too large";
			return -1;
		}
		if (n == 0 || *p != '\0') {
			*errstr = TIME_ERR_MSG;
			return -1;
		}
		*t = v;
		return 0;
	}
	if (!read_fixed(&p, 4, &year) || !read_char(&p, '-') || !read_fixed(&p, 2, &mon) ||
	    !read_char(&p, '-') || !read_fixed(&p, 2, &day)) {
		*errstr = TIME_ERR_MSG;
		return -1;
	}
	if (*p != '\0') {
		char sep = *p;

		if (sep != 'T' && sep != ' ') {
			*errstr = TIME_ERR_MSG;
			return -1;
		}
		p++;
		if (!read_fixed(&p, 2, &hour) || !read_char(&p, ':') || !read_fixed(&p, 2, &min) ||
		    !read_char(&p, ':') || !read_fixed(&p, 2, &sec) ||
		    (sep == 'T' && !read_char(&p, 'Z')) || *p != '\0') {
			*errstr = TIME_ERR_MSG;
			return -1;
		}
	}
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hour > 23 || min > 59 || sec > 59) {
		*errstr = "no such date or time";
		return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	*t = (int64_t)timegm(&tm);
	return 0;
}

/*
 * The current time in seconds since the epoch. Tests set ABQ_NOW to move the
 * clock (quarantine expiry, digests) without sleeping; an invalid ABQ_NOW is
 * ignored rather than trusted.
 */
int64_t
abq_now(void)
{
	const char *env = getenv("ABQ_NOW");
	const char *errstr;
	long long v;

	if (env != NULL && parse_int(env, 0, INT64_MAX, &v, &errstr) == 0)
		return (int64_t)v;
	return (int64_t)time(NULL);
}

/*
 * The account a user name stands for (product.md): a Windows "DOMAIN\" prefix
 * is dropped (up to the last backslash) and ASCII is lower-cased, so that
 * "CORP\Alice" and "alice" are one account; with a default domain a bare name
 * gets "@default_domain", so that "alice" and "alice@example.com" are one
 * account too. Names that could confuse a log line, a path or the CLI grammar
 * (control characters, white space, '/'), that are not one local part and at
 * most one domain ("a@b@c", "alice@", "@x"), or that are empty or longer than
 * ACCOUNT_MAX bytes are refused with NULL.
 */
char *
account_canonical(const char *user, const char *default_domain)
{
	char buf[ACCOUNT_MAX + 1];
	long n = account_canonical_into(user, default_domain, buf);

	return n < 0 ? NULL : xstrndup(buf, (size_t)n);
}

/*
 * The ASCII capitals of s[0..n) made small in place, eight bytes a step
 * (ascii_lower8), the last step overlapping the one before it (a byte made
 * small twice stays small): every request's account is built here.
 */
static void
lower_in_place(char *s, size_t n)
{
	uint64_t w;
	size_t i;

	if (n < 8) {
		for (i = 0; i < n; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				s[i] = (char)(s[i] | 0x20);
		return;
	}
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		w = ascii_lower8(w);
		memcpy(s + i, &w, 8);
	}
	if (i < n) {
		memcpy(&w, s + n - 8, 8);
		w = ascii_lower8(w);
		memcpy(s + n - 8, &w, 8);
	}
}

/* account_canonical without the allocation: into out[ACCOUNT_MAX + 1]. */
long
account_canonical_into(const char *user, const char *default_domain, char *out)
{
	size_t len, dlen = 0;
	const char *p = account_part(user, &len);
	const char *at;

	if (p == NULL)
		return -1;
	at = memchr(p, '@', len);
	if (at != NULL) {
		size_t local = (size_t)(at - p);

		if (local == 0 || local == len - 1 || memchr(at + 1, '@', len - local - 1) != NULL)
			return -1;
	} else if (default_domain != NULL && *default_domain != '\0') {
		dlen = strlen(default_domain);
		if (len + 1 + dlen > ACCOUNT_MAX)
			return -1;
	}
	memcpy(out, p, len);
	if (dlen > 0) {
		out[len++] = '@';
		memcpy(out + len, default_domain, dlen);
		len += dlen;
	}
	out[len] = '\0';
	lower_in_place(out, len);
	return (long)len;
}

/* Whether user stands for account, as account_canonical would give it. */
bool
account_is_canonical_of(const char *user, const char *account, const char *default_domain)
{
	char buf[ACCOUNT_MAX + 1];

	if (account == NULL || account_canonical_into(user, default_domain, buf) < 0)
		return false;
	return strcmp(buf, account) == 0;
}

/* The account of a user name where no default domain is known. */
char *
account_normalize(const char *user)
{
	return account_canonical(user, NULL);
}

/* The part of user that account_normalize keeps (not yet lower-cased), or NULL. */
const char *
account_part(const char *user, size_t *lenp)
{
	const char *p;
	size_t len;

	if (user == NULL)
		return NULL;
	p = strrchr(user, '\\');
	p = p != NULL ? p + 1 : user;
	len = strlen(p);
	if (len == 0 || len > ACCOUNT_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f || c == ' ' || c == '/')
			return NULL;
	}
	*lenp = len;
	return p;
}

/* v in decimal into buf (at least 20 bytes), not terminated; returns the length. */
size_t
fmt_u64(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/*
 * The header checks below look at eight bytes per step: every header value
 * read or forwarded, every name abqd writes and every request target it
 * sends goes through them. A word is tested for "a byte below c" and "a byte
 * equal to c" with the usual borrow tricks, both exact as a yes/no for c <=
 * 128: no byte can borrow from its neighbour unless one is already below c.
 * Bytes of 0x80 and above pass (obs-text, UTF-8). Values of 16 bytes and
 * more are looked at sixteen bytes per step where the CPU has SSE2
 * (field_value_ok).
 */
#define W_ONES 0x0101010101010101ull
#define W_HIGH 0x8080808080808080ull

/* Nonzero when a byte of w is below c (c <= 0x80). */
static inline uint64_t
word_has_below(uint64_t w, unsigned c)
{
	return (w - W_ONES * c) & ~w & W_HIGH;
}

/* Nonzero when a byte of w equals c. */
static inline uint64_t
word_has(uint64_t w, unsigned c)
{
	return word_has_below(w ^ (W_ONES * c), 1);
}

/* The word of s at i (unaligned). */
static inline uint64_t
word_at(const char *s, size_t i)
{
	uint64_t w;

	memcpy(&w, s + i, 8);
	return w;
}

/* Whether every byte of s[0..n) passes byte_ok. */
static inline __attribute__((always_inline)) bool
span_ok(const char *s, size_t n, bool (*byte_ok)(unsigned char))
{
	for (size_t i = 0; i < n; i++)
		if (!byte_ok((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * The scan the checks share: short strings byte by byte; longer ones a word
 * at a time, every word before the last eight bytes and then those (which
 * may overlap the word before them), so there is no byte-by-byte tail. A
 * word that suspect() flags is looked at byte by byte (for the tests that are
 * exact, only to find it bad). Inlined into each check with its own tests.
 */
static inline __attribute__((always_inline)) bool
bytes_ok(const char *s, size_t n, uint64_t (*suspect)(uint64_t), bool (*byte_ok)(unsigned char))
{
	if (n < 8)
		return span_ok(s, n, byte_ok);
	for (size_t i = 0; i + 8 < n; i += 8)
		if (suspect(word_at(s, i)) && !span_ok(s + i, 8, byte_ok))
			return false;
	return !suspect(word_at(s, n - 8)) || span_ok(s + n - 8, 8, byte_ok);
}

/* A value byte: no control character but tab, no DEL. */
#ifdef __SSE2__
/*
 * Whether no byte of s[0..n) (n >= 16) is one bad(v) marks (0xff): sixteen
 * bytes a step where the CPU has SSE2 (every x86-64), the last step
 * overlapping the one before it. A byte is at or below k when the unsigned
 * minimum of it and k is itself; each test is exact, no second look.
 */
static inline bool
none16(const char *s, size_t n, __m128i (*bad)(__m128i))
{
	for (size_t i = 0;; i += 16) {
		if (i + 16 > n)
			i = n - 16;
		if (_mm_movemask_epi8(
		        bad(_mm_loadu_si128((const __m128i *)(const void *)(s + i)))) != 0)
			return false;
		if (i + 16 == n)
			return true;
	}
}

/* A control byte but tab, or DEL: not in a value. */
static inline __m128i
value_bad16(__m128i v)
{
	__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);

	return _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), ctl),
	                    _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
}

/* A control byte, space or DEL: not in a request target. */
static inline __m128i
target_bad16(__m128i v)
{
	return _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x20)), v),
	                    _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
}
#endif

static inline bool
value_byte_ok(unsigned char c)
{
	return (c >= 0x20 || c == '\t') && c != 0x7f;
}

/* A byte below 0x20 or a DEL: tab is the one such byte allowed in a value. */
static inline uint64_t
value_word_suspect(uint64_t w)
{
	return word_has_below(w, 0x20) | word_has(w, 0x7f);
}

bool
field_value_ok(const char *s, size_t n)
{
#ifdef __SSE2__
	/* Values of 16 bytes and more (Authorization, User-Agent, Content-Type) */
	if (n >= 16)
		return none16(s, n, value_bad16);
#endif
	return bytes_ok(s, n, value_word_suspect, value_byte_ok);
}

/* A name byte as abqd writes names: no control character, space, DEL or ':'. */
static inline bool
name_byte_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != ':';
}

static inline uint64_t
name_word_bad(uint64_t w)
{
	return word_has_below(w, 0x21) | word_has(w, 0x7f) | word_has(w, ':');
}

bool
field_name_ok(const char *s, size_t n)
{
	return bytes_ok(s, n, name_word_bad, name_byte_ok);
}

/* A request target byte: no control character, space or DEL. */
static inline bool
target_byte_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

static inline uint64_t
target_word_bad(uint64_t w)
{
	return word_has_below(w, 0x21) | word_has(w, 0x7f);
}

bool
request_target_ok(const char *s, size_t n)
{
#ifdef __SSE2__
	/* a target is long: the query carries the user and the device */
	if (n >= 16)
		return none16(s, n, target_bad16);
#endif
	return bytes_ok(s, n, target_word_bad, target_byte_ok);
}

long
field_value_len(const char *s)
{
	size_t n = strlen(s);

	return field_value_ok(s, n) ? (long)n : -1;
}

/* Whether user names account (as account_normalize would give it), without a copy. */
bool
account_is(const char *user, const char *account)
{
	return account_is_canonical_of(user, account, NULL);
}

/*
 * The domain of an account: what follows the last '@', or default_domain for
 * a bare name (and for a name ending in '@', which has no domain of its own).
 */
const char *
account_domain(const char *account, const char *default_domain)
{
	const char *at;

	if (account == NULL)
		return default_domain;
	at = strrchr(account, '@');
	if (at == NULL || at[1] == '\0')
		return default_domain;
	return at + 1;
}

/*
 * Whether id can be a registry DeviceId: 1-64 printable ASCII characters
 * without '/' or white space. The DeviceId travels in URLs, log lines and CLI
 * words, so anything else is refused at the door.
 */
bool
device_id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; id[i] != '\0'; i++) {
		unsigned char c = (unsigned char)id[i];

		if (i >= DEVICE_ID_MAX || c <= 0x20 || c >= 0x7f || c == '/')
			return false;
	}
	return i > 0;
}

/* Free every block waiting in c. */
void
blk_cache_clear(struct blk_cache *c)
{
	while (c->n > 0)
		free(c->b[--c->n]);
}

bool
domain_valid(const char *domain)
{
	if (domain == NULL || domain[0] == '\0' || strpbrk(domain, "/@") != NULL)
		return false;
	for (const unsigned char *p = (const unsigned char *)domain; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

void
sbuf_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * Append s[0..n) with the five characters special in HTML and XML as
 * entities (&lt; &gt; &amp; &quot; &#39;): the one escaper for every
 * HTML or XML text abqd writes (sbuf_add_escaped).
 */
void
sbuf_addn_escaped(struct sbuf *b, const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *e;

		switch (s[i]) {
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '&':
			e = "&amp;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			continue;
		}
		sbuf_addn(b, s + run, i - run);
		sbuf_add(b, e);
		run = i + 1;
	}
	sbuf_addn(b, s + run, n - run);
}

/* The same for a C string. */
void
sbuf_add_escaped(struct sbuf *b, const char *s)
{
	sbuf_addn_escaped(b, s, strlen(s));
}

void
sbuf_add(struct sbuf *b, const char *s)
{
	sbuf_addn(b, s, strlen(s));
}

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	sbuf_addn(b, s, strlen(s));
	free(s);
}

char *
sbuf_take(struct sbuf *b)
{
	char *p = b->p != NULL ? b->p : xstrdup("");
	*b = (struct sbuf){0};
	return p;
}
