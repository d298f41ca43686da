/*
 * rules.c: compiled rule sets, and step 5 of the evaluation (rules, with
 * Discovery).
 *
 * A rule set keeps copies of its rules in position order (the order they were
 * given) and an index per characteristic:
 *   - exact rules in a hash table: lower-cased pattern -> smallest position;
 *   - glob and regex rules in position order, each regex compiled once (JIT
 *     when PCRE2 has it), behind a "screen": one PCRE2 pattern that is the
 *     alternation of all of them (globs translated to a regex that matches at
 *     least what fnmatch matches). A value the screen refuses matches none of
 *     them, so the common case, a device no pattern names, costs one JIT match
 *     per characteristic rather than one per rule. When the screen says yes,
 *     the rules are tried one by one and fnmatch or the rule's own regex
 *     decides, so the screen can only save time, never change a result.
 *
 * A screen is built only where it is known to be a superset: it is skipped for
 * a characteristic with a regex that refers to groups by number or recursion
 * (back references, subroutine calls, conditionals: numbers shift in the
 * alternation), uses backtracking verbs such as (*COMMIT) (which can fail the
 * whole alternation), or a glob we do not translate, and whenever the combined
 * pattern does not compile.
 *
 * Matching needs PCRE2 match data; it is per thread (see thread_match_data),
 * so a rule set is immutable once built and may be shared between threads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <fnmatch.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "lib/hmap.h"
#include "lib/util.h"

#define NOPOS UINT32_MAX

/*
 * PCRE2's match limit for rule and screen matches: the values come from the
 * device, the patterns from an administrator; a pathological pair must not
 * stall a worker. Normal rules need a few hundred steps.
 */
#define MATCH_LIMIT 1000000

/* Compile options of every rule regex and screen. */
#define RE_OPTIONS (PCRE2_CASELESS | PCRE2_ANCHORED | PCRE2_ENDANCHORED)

/* A glob or regex rule of one characteristic. */
struct pat_rule {
	uint32_t pos;
	enum abq_match match;
	const char *pattern; /* the rule's copy */
	pcre2_code *re;      /* regex rules only */
	bool jit;            /* re was JIT-compiled: pcre2_jit_match may be used */
};

/* Everything about the rules of one characteristic. */
struct char_index {
	struct abq_hmap exact; /* lower-cased pattern -> (void *)(position + 1) */
	struct pat_rule *pats; /* glob and regex rules, ascending position */
	size_t npats;
	pcre2_code *screen; /* NULL: try each pattern rule */
	bool screen_jit;
	uint32_t minpos; /* smallest position of any rule here, NOPOS: none */
};

struct abq_ruleset {
	struct abq_rule *rules; /* copies, by position */
	size_t n;
	struct char_index ch[ABQ_CHAR_COUNT];
	pcre2_match_context *mctx; /* the match limit; read-only once built */
};

/* Per-thread match data: one ovector pair is enough to learn "it matched". */
static _Thread_local pcre2_match_data *tl_match_data;
static pthread_key_t match_data_key;
static pthread_once_t match_data_once = PTHREAD_ONCE_INIT;

/* Thread-exit destructor of the match data (registered with the key below). */
static void
match_data_destroy(void *md)
{
	pcre2_match_data_free(md);
}

/* Create the key whose destructor frees a thread's match data when it ends. */
static void
match_data_key_init(void)
{
	if (pthread_key_create(&match_data_key, match_data_destroy) != 0)
		fatalx("pthread_key_create failed");
}

/*
 * The calling thread's match data, created on its first match. This keeps
 * matching free of allocation and rule sets free of mutable state; the cost is
 * one small block per thread that ever matched.
 */
static pcre2_match_data *
thread_match_data(void)
{
	if (tl_match_data == NULL) {
		pthread_once(&match_data_once, match_data_key_init);
		tl_match_data = pcre2_match_data_create(1, NULL);
		if (tl_match_data == NULL)
			fatalx("out of memory");
		pthread_setspecific(match_data_key, tl_match_data);
	}
	return tl_match_data;
}

/* Free the calling thread's match data now (for a clean exit under valgrind). */
void
abq_engine_thread_done(void)
{
	if (tl_match_data == NULL)
		return;
	pthread_setspecific(match_data_key, NULL);
	pcre2_match_data_free(tl_match_data);
	tl_match_data = NULL;
}

/* Set *errmsg_r to a new formatted message when the caller wants one. */
static void __attribute__((format(printf, 2, 3))) set_err(char **errmsg_r, const char *fmt, ...)
{
	va_list ap;

	if (errmsg_r == NULL)
		return;
	va_start(ap, fmt);
	*errmsg_r = xvasprintf(fmt, ap);
	va_end(ap);
}

/*
 * Compile a rule's regex with the options every rule uses. On failure, the
 * message names the pattern, PCRE2's offset and PCRE2's reason, which is what
 * an administrator needs to fix it.
 */
static pcre2_code *
compile_regex(const char *pattern, char **errmsg_r)
{
	int err;
	PCRE2_SIZE off;
	pcre2_code *re =
	    pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, RE_OPTIONS, &err, &off, NULL);
	if (re == NULL) {
		PCRE2_UCHAR buf[256];
		if (pcre2_get_error_message(err, buf, sizeof(buf)) < 0)
			memcpy(buf, "unknown error", sizeof("unknown error"));
		set_err(errmsg_r, "regex '%s' does not compile at offset %zu: %s", pattern,
		        (size_t)off, (const char *)buf);
	}
	return re;
}

/*
 * Check that a rule can be used: see engine.h. Regexes are compiled here and
 * thrown away, so that abqctl refuses a bad rule before it reaches the store.
 */
int
abq_rule_check(const struct abq_rule *r, char **errmsg_r)
{
	if (errmsg_r != NULL)
		*errmsg_r = NULL;
	if (r == NULL) {
		set_err(errmsg_r, "no rule");
		return -1;
	}
	if (r->pattern == NULL || r->pattern[0] == '\0') {
		set_err(errmsg_r, "a rule needs a pattern; an empty one matches nothing");
		return -1;
	}
	if (r->level != ABQ_STATE_ALLOWED && r->level != ABQ_STATE_BLOCKED &&
	    r->level != ABQ_STATE_QUARANTINED) {
		set_err(errmsg_r, "a rule gives Allowed, Blocked or Quarantined");
		return -1;
	}
	if ((unsigned)r->charac >= ABQ_CHAR_COUNT) {
		set_err(errmsg_r, "a rule tests DeviceId, DeviceType, DeviceModel, DeviceOS or "
		                  "UserAgent");
		return -1;
	}
	switch (r->match) {
	case ABQ_MATCH_EXACT:
	case ABQ_MATCH_GLOB:
		return 0;
	case ABQ_MATCH_REGEX: {
		pcre2_code *re = compile_regex(r->pattern, errmsg_r);
		if (re == NULL)
			return -1;
		pcre2_code_free(re);
		return 0;
	}
	}
	set_err(errmsg_r, "a rule matches by exact, glob or regex");
	return -1;
}

/* Append one byte to a regex as \x{hh}: literal everywhere, classes included. */
static void
sb_literal_hex(struct sbuf *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char esc[] = {'\\', 'x', '{', hex[c >> 4], hex[c & 15], '}'};
	sbuf_addn(b, esc, sizeof(esc));
}

/* Append one literal byte to a regex, escaped unless it is a letter or digit. */
static void
sb_literal(struct sbuf *b, unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
		char ch = (char)c;
		sbuf_addn(b, &ch, 1);
	} else {
		sb_literal_hex(b, c);
	}
}

/*
 * Translate the bracket expression starting at p ("[a-c]", "[!0-9x]", "[]x]")
 * into a PCRE2 class and return a pointer to its closing "]", or NULL when it
 * is not one we translate: unterminated (fnmatch then takes "[" literally),
 * holding "[" (character classes, collating elements), a backslash or
 * non-ASCII bytes. A negated class may meet a multibyte character in a UTF-8
 * locale, so it is followed by any UTF-8 continuation bytes; a positive class
 * holds only ASCII, which is one byte in any locale.
 */
static const char *
glob_bracket(const char *p, struct sbuf *b)
{
	const char *q = p + 1, *first;
	bool negated = false;

	if (*q == '!' || *q == '^') {
		negated = true;
		q++;
	}
	first = q;
	if (*q == ']')
		q++;
	while (*q != '\0' && *q != ']') {
		if (*q == '[' || *q == '\\' || (unsigned char)*q >= 0x80)
			return NULL;
		q++;
	}
	if (*q == '\0')
		return NULL;
	sbuf_add(b, negated ? "[^" : "[");
	for (const char *c = first; c < q; c++) {
		/* A '-' between two characters makes a range; elsewhere it is literal. */
		if (*c == '-' && c > first && c + 1 < q)
			sbuf_add(b, "-");
		else
			sb_literal_hex(b, (unsigned char)*c);
	}
	sbuf_add(b, negated ? "][\\x80-\\xff]*" : "]");
	return q;
}

/*
 * Translate a glob into a regex that matches at least every value fnmatch
 * (FNM_CASEFOLD) matches, for the screen only. "?" becomes one byte plus any
 * UTF-8 continuation bytes, so that the screen stays a superset even when the
 * process runs in a multibyte locale. Returns false for what is not worth
 * translating exactly (non-ASCII bytes, a bracket expression glob_bracket
 * refuses, a dangling backslash): that characteristic gets no screen.
 */
static bool
glob_to_regex(const char *glob, struct sbuf *b)
{
	static const char one_char[] = "(?s:.)[\\x80-\\xff]*";

	for (const char *p = glob; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80)
			return false;
		switch (c) {
		case '*':
			sbuf_add(b, "(?s:.*)");
			break;
		case '?':
			sbuf_add(b, one_char);
			break;
		case '[': {
			const char *q = glob_bracket(p, b);
			if (q == NULL)
				return false;
			p = q;
			break;
		}
		case '\\':
			if (p[1] == '\0' || (unsigned char)p[1] >= 0x80)
				return false;
			p++;
			sb_literal(b, (unsigned char)*p);
			break;
		default:
			sb_literal(b, c);
			break;
		}
	}
	return true;
}

/*
 * Can this regex go into an alternation unchanged in meaning? Not when it
 * refers to groups by number or recurses (numbers shift, (?R) would recurse
 * into the whole screen), has conditionals, or uses backtracking control verbs
 * ((*COMMIT) and friends can fail every alternative). The text test is
 * deliberately coarse: a false alarm costs only the screen.
 */
static bool
regex_screenable(const char *pattern, const pcre2_code *re)
{
	uint32_t backref = 0;

	if (pcre2_pattern_info(re, PCRE2_INFO_BACKREFMAX, &backref) != 0 || backref != 0)
		return false;
	if (strstr(pattern, "(*") != NULL || strstr(pattern, "\\g<") != NULL ||
	    strstr(pattern, "\\g'") != NULL)
		return false;
	for (const char *s = strstr(pattern, "(?"); s != NULL; s = strstr(s + 2, "(?")) {
		char c = s[2];
		if ((c >= '0' && c <= '9') || c == '+' || c == 'R' || c == '&' || c == '(' ||
		    (c == '-' && s[3] >= '0' && s[3] <= '9') ||
		    (c == 'P' && (s[3] == '>' || s[3] == '=')))
			return false;
	}
	return true;
}

/*
 * JIT-compile a pattern when this PCRE2 can; false (and the interpreter is
 * used) when it cannot, which is not an error.
 */
static bool
jit_compile(pcre2_code *re)
{
	return pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
}

/*
 * Build the screen of one characteristic: "(?:p1\E)|(?:p2\E)|..." compiled
 * anchored at both ends. "\E" closes a "\Q" a pattern left open. With fewer
 * than two pattern rules a screen saves nothing, and none is built.
 */
static void
build_screen(struct char_index *ci)
{
	struct sbuf b = {0};
	int err;
	PCRE2_SIZE off;

	if (ci->npats < 2)
		return;
	for (size_t i = 0; i < ci->npats; i++) {
		const struct pat_rule *pr = &ci->pats[i];
		sbuf_add(&b, i == 0 ? "(?:" : "|(?:");
		if (pr->match == ABQ_MATCH_GLOB) {
			if (!glob_to_regex(pr->pattern, &b))
				goto out;
		} else {
			if (!regex_screenable(pr->pattern, pr->re))
				goto out;
			sbuf_add(&b, pr->pattern);
			sbuf_add(&b, "\\E");
		}
		sbuf_add(&b, ")");
	}
	ci->screen = pcre2_compile((PCRE2_SPTR)b.p, b.len, RE_OPTIONS, &err, &off, NULL);
	if (ci->screen != NULL)
		ci->screen_jit = jit_compile(ci->screen);
out:
	free(b.p);
}

/* Copy a string that may be NULL. */
static char *
dup_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Free a rule set and everything it owns; sets *rsp to NULL. */
void
abq_ruleset_free(struct abq_ruleset **rsp)
{
	struct abq_ruleset *rs = *rsp;

	if (rs == NULL)
		return;
	for (size_t c = 0; c < ABQ_CHAR_COUNT; c++) {
		struct char_index *ci = &rs->ch[c];
		abq_hmap_free(&ci->exact, NULL);
		for (size_t i = 0; i < ci->npats; i++)
			pcre2_code_free(ci->pats[i].re);
		free(ci->pats);
		pcre2_code_free(ci->screen);
	}
	for (size_t i = 0; i < rs->n; i++)
		abq_rule_clear(&rs->rules[i]);
	free(rs->rules);
	pcre2_match_context_free(rs->mctx);
	free(rs);
	*rsp = NULL;
}

/*
 * Build a rule set: copy and check every rule, then index them by
 * characteristic (see the top of this file). Positions are the indexes in
 * rules[].
 */
struct abq_ruleset *
abq_ruleset_new(const struct abq_rule *rules, size_t n, char **errmsg_r)
{
	struct abq_ruleset *rs = xcalloc(1, sizeof(*rs));
	char *msg = NULL;

	if (errmsg_r != NULL)
		*errmsg_r = NULL;
	if (n >= NOPOS) {
		set_err(errmsg_r, "too many rules");
		free(rs);
		return NULL;
	}
	rs->mctx = pcre2_match_context_create(NULL);
	if (rs->mctx == NULL)
		fatalx("out of memory");
	pcre2_set_match_limit(rs->mctx, MATCH_LIMIT);
	rs->rules = xcalloc(n > 0 ? n : 1, sizeof(*rs->rules));
	for (size_t c = 0; c < ABQ_CHAR_COUNT; c++) {
		abq_hmap_init(&rs->ch[c].exact);
		rs->ch[c].pats = xcalloc(n > 0 ? n : 1, sizeof(struct pat_rule));
		rs->ch[c].minpos = NOPOS;
	}
	for (size_t i = 0; i < n; i++) {
		const struct abq_rule *src = &rules[i];
		if (abq_rule_check(src, &msg) != 0) {
			if (src->id != 0)
				set_err(errmsg_r, "rule %lld: %s", (long long)src->id, msg);
			else
				set_err(errmsg_r, "%s", msg);
			free(msg);
			abq_ruleset_free(&rs);
			return NULL;
		}
		struct abq_rule *r = &rs->rules[rs->n++];
		*r = *src;
		r->pattern = xstrdup(src->pattern);
		r->domain = dup_null(src->domain);
		r->created_by = dup_null(src->created_by);

		struct char_index *ci = &rs->ch[r->charac];
		uint32_t pos = (uint32_t)i;
		if (ci->minpos == NOPOS)
			ci->minpos = pos;
		if (r->match == ABQ_MATCH_EXACT) {
			bool created;
			void **slot = abq_hmap_put(&ci->exact, r->pattern, NULL, &created);
			if (created)
				*slot = (void *)(uintptr_t)(pos + 1);
			continue;
		}
		struct pat_rule *pr = &ci->pats[ci->npats++];
		pr->pos = pos;
		pr->match = r->match;
		pr->pattern = r->pattern;
		if (r->match == ABQ_MATCH_REGEX) {
			pr->re = compile_regex(r->pattern, NULL);
			if (pr->re == NULL)
				fatalx("regex '%s' compiled once and not twice", r->pattern);
			pr->jit = jit_compile(pr->re);
		}
	}
	for (size_t c = 0; c < ABQ_CHAR_COUNT; c++)
		build_screen(&rs->ch[c]);
	return rs;
}

/* How many rules the set holds. */
size_t
abq_ruleset_count(const struct abq_ruleset *rs)
{
	return rs != NULL ? rs->n : 0;
}

/* The rule at position i, for listings and explain. */
const struct abq_rule *
abq_ruleset_rule(const struct abq_ruleset *rs, size_t i)
{
	return rs != NULL && i < rs->n ? &rs->rules[i] : NULL;
}

/* The characteristics whose pattern rules are screened, as a bit set. */
unsigned
abq_ruleset_screened(const struct abq_ruleset *rs)
{
	unsigned bits = 0;

	for (unsigned c = 0; rs != NULL && c < ABQ_CHAR_COUNT; c++)
		if (rs->ch[c].screen != NULL)
			bits |= 1u << c;
	return bits;
}

/*
 * Run one compiled pattern over a whole value; returns PCRE2's code. JIT code
 * goes through pcre2_jit_match, which skips pcre2_match's argument checks:
 * ours are always valid.
 */
static int
run_regex(const struct abq_ruleset *rs, const pcre2_code *re, bool jit, const char *v, size_t len)
{
	if (jit)
		return pcre2_jit_match(re, (PCRE2_SPTR)v, len, 0, 0, thread_match_data(), rs->mctx);
	return pcre2_match(re, (PCRE2_SPTR)v, len, 0, 0, thread_match_data(), rs->mctx);
}

/* Does the pattern rule pr match value v (of length len)? */
static bool
pat_matches(const struct abq_ruleset *rs, const struct pat_rule *pr, const char *v, size_t len)
{
	if (pr->match == ABQ_MATCH_GLOB)
		return fnmatch(pr->pattern, v, FNM_CASEFOLD) == 0;
	/* 0 means "matched, ovector too small": a match all the same. */
	return run_regex(rs, pr->re, pr->jit, v, len) >= 0;
}

/*
 * Step 5 (see engine.h). Positions below "bound" are the only ones that can
 * still change the outcome: bound starts at the first rule on an unknown
 * characteristic (where Discovery would stop) and drops to each match found.
 * Exact lookups come first because they are cheapest and lower the bound
 * for the pattern rules.
 */
enum abq_rule_outcome
abq_ruleset_match(const struct abq_ruleset *rs, const char *const values[ABQ_CHAR_COUNT],
                  unsigned unknown, const struct abq_rule **rule_r, enum abq_charac *missing_r)
{
	uint32_t stop = NOPOS, best = NOPOS;
	enum abq_charac missing = ABQ_CHAR_DEVICEID;

	if (rule_r != NULL)
		*rule_r = NULL;
	if (rs == NULL || rs->n == 0)
		return ABQ_RULES_NONE;
	for (unsigned c = 0; c < ABQ_CHAR_COUNT; c++) {
		if ((unknown & (1u << c)) != 0 && rs->ch[c].minpos < stop) {
			stop = rs->ch[c].minpos;
			missing = (enum abq_charac)c;
		}
	}
	const char *v[ABQ_CHAR_COUNT];
	size_t len[ABQ_CHAR_COUNT];
	for (unsigned c = 0; c < ABQ_CHAR_COUNT; c++) {
		v[c] = values[c] != NULL ? values[c] : "";
		len[c] = strlen(v[c]);
	}
	for (unsigned c = 0; c < ABQ_CHAR_COUNT; c++) {
		const struct char_index *ci = &rs->ch[c];
		if ((unknown & (1u << c)) != 0 || ci->exact.count == 0)
			continue;
		void **slot = abq_hmap_get_len(&ci->exact, v[c], len[c]);
		if (slot != NULL) {
			uint32_t pos = (uint32_t)(uintptr_t)*slot - 1;
			if (pos < best)
				best = pos;
		}
	}
	for (unsigned c = 0; c < ABQ_CHAR_COUNT; c++) {
		const struct char_index *ci = &rs->ch[c];
		uint32_t bound = best < stop ? best : stop;
		if ((unknown & (1u << c)) != 0 || ci->npats == 0 || ci->pats[0].pos >= bound)
			continue;
		if (ci->screen != NULL &&
		    run_regex(rs, ci->screen, ci->screen_jit, v[c], len[c]) == PCRE2_ERROR_NOMATCH)
			continue;
		for (size_t i = 0; i < ci->npats && ci->pats[i].pos < bound; i++) {
			if (pat_matches(rs, &ci->pats[i], v[c], len[c])) {
				best = ci->pats[i].pos;
				break;
			}
		}
	}
	if (best < stop) {
		if (rule_r != NULL)
			*rule_r = &rs->rules[best];
		return ABQ_RULES_MATCH;
	}
	if (stop != NOPOS) {
		if (rule_r != NULL)
			*rule_r = &rs->rules[stop];
		if (missing_r != NULL)
			*missing_r = missing;
		return ABQ_RULES_DISCOVERY;
	}
	return ABQ_RULES_NONE;
}
