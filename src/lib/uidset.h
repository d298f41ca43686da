/*
 * uidset.h: a set of IMAP UIDs kept as sorted, disjoint ranges ("1:4000,4002:9000").
 *
 * The mailbox backends keep what a device has of a folder as one of these
 * inside their change cursor (mailbox.h: mbx_ops.changes), so a folder of
 * 10,000 messages synced whole is one range, not 10,000 lines; the IMAP
 * client reads the sets a server sends (VANISHED, SEARCH, ESEARCH ALL,
 * COPYUID) into them and writes its commands' sets from them.
 *
 * The text form is IMAP's sequence-set syntax (RFC 9051 "sequence-set"):
 * numbers and a:b ranges, comma-separated, always written sorted and merged;
 * the parser accepts any order, reversed ranges and overlap. '*' ("the
 * largest number in use") is kept as UINT32_MAX and UINT32_MAX is written
 * back as '*': "9:*" is 9..4294967295, and a real UID of 4294967295 is
 * therefore written as '*' (which, sent to a server, means its largest UID:
 * the same message when that UID exists). A set means "up to the largest"
 * only where its reader says so; the change cursors hold none (their UIDs
 * stop below UINT32_MAX, mailbox_memory.c).
 *
 * Every set is capped: at most max_ranges ranges (0: UIDSET_MAX_RANGES, what a
 * cursor may hold; sets read from an IMAP server use IMAP_UIDSET_MAX). A
 * change that would need more is refused (-1) and leaves the set as it
 * was, so a peer- or store-fed text can never grow one without bound.
 */
#ifndef ABQ_UIDSET_H
#define ABQ_UIDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ranges one set may hold unless its max_ranges says otherwise (a change cursor's). */
#define UIDSET_MAX_RANGES 1024

struct uid_range {
	uint32_t lo, hi; /* lo <= hi, both >= 1; UINT32_MAX is '*' */
};

/* Zero-initialise (or set max_ranges first); free with uidset_clear. */
struct uidset {
	struct uid_range *r; /* sorted, disjoint, never adjacent */
	size_t n, cap;
	size_t max_ranges; /* ranges it may hold, 0: UIDSET_MAX_RANGES (kept by uidset_clear) */
};

/* Empty the set and free its array (its max_ranges is kept). */
void uidset_clear(struct uidset *s);
/*
 * Parse len bytes of text (not NUL-terminated; "" is the empty set) into s,
 * replacing what it held. Returns 0, or -1 with *errstr_r (s left empty)
 * for a malformed text, a number of 0 or over 2^32-1, or more ranges than
 * the set's max_ranges once merged. Any order costs O(n log n).
 */
int uidset_parse_n(struct uidset *s, const char *text, size_t len, const char **errstr_r);
/* uidset_parse_n of a NUL-terminated text (NULL is the empty set). */
int uidset_parse(struct uidset *s, const char *text, const char **errstr_r);
/* The set as text ("1:5,9:*"), malloc'd ("" when empty). */
char *uidset_format(const struct uidset *s);
/*
 * Add uid, or lo..hi: 0, or -1 when the set would pass its max_ranges (then
 * unchanged). Adding above the highest range (ascending SEARCH results)
 * costs O(1) amortised.
 */
int uidset_add(struct uidset *s, uint32_t uid);
int uidset_add_range(struct uidset *s, uint32_t lo, uint32_t hi);
/* Remove uid: 0, or -1 when splitting a range would pass the cap (unchanged). */
int uidset_remove(struct uidset *s, uint32_t uid);
/* Whether uid is in the set (binary search). */
bool uidset_contains(const struct uidset *s, uint32_t uid);
/* How many UIDs the set holds ("9:*" counts 9..4294967295). */
uint64_t uidset_count(const struct uidset *s);
/* The highest UID in the set (UINT32_MAX for '*'), 0 when empty. */
uint32_t uidset_max(const struct uidset *s);
/* dst becomes a copy of src (its max_ranges too). */
void uidset_copy(struct uidset *dst, const struct uidset *src);

#endif
