/*
 * uidset.h: a set of IMAP UIDs kept as sorted, disjoint ranges ("1:4000,4002:9000").
 *
 * The mailbox backends keep what a device has of a folder as one of these
 * inside their change cursor (mailbox.h: mbx_ops.changes), so a folder of
 * 10,000 messages synced whole is one range, not 10,000 lines. The text
 * form is IMAP's sequence-set syntax restricted to UIDs (RFC 9051 "uid-set":
 * numbers and a:b ranges, comma-separated, no "*"), always written sorted
 * and merged; the parser accepts any order and overlap. Every set is capped
 * at UIDSET_MAX_RANGES ranges: a change that would need more is refused
 * (-1) and leaves the set as it was, so a peer- or store-fed text can never
 * grow one without bound.
 */
#ifndef ABQ_UIDSET_H
#define ABQ_UIDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ranges one set may hold. */
#define UIDSET_MAX_RANGES 1024

struct uid_range {
	uint32_t lo, hi; /* lo <= hi, both >= 1 */
};

/* Zero-initialise; free with uidset_clear. */
struct uidset {
	struct uid_range *r; /* sorted, disjoint, never adjacent */
	size_t n, cap;
};

/* Empty the set and free its array. */
void uidset_clear(struct uidset *s);
/*
 * Parse text ("" is the empty set) into s, replacing what it held. Returns 0,
 * or -1 with *errstr_r (s left empty) for a malformed text, a UID of 0 or
 * over 2^32-1, or more than UIDSET_MAX_RANGES ranges once merged.
 */
int uidset_parse(struct uidset *s, const char *text, const char **errstr_r);
/* The set as text, malloc'd ("" when empty). */
char *uidset_format(const struct uidset *s);
/* Add uid, or lo..hi: 0, or -1 when the set would pass the cap (then unchanged). */
int uidset_add(struct uidset *s, uint32_t uid);
int uidset_add_range(struct uidset *s, uint32_t lo, uint32_t hi);
/* Remove uid: 0, or -1 when splitting a range would pass the cap (unchanged). */
int uidset_remove(struct uidset *s, uint32_t uid);
/* Whether uid is in the set (binary search). */
bool uidset_contains(const struct uidset *s, uint32_t uid);
/* How many UIDs the set holds. */
uint64_t uidset_count(const struct uidset *s);
/* The highest UID in the set, 0 when empty. */
uint32_t uidset_max(const struct uidset *s);
/* dst becomes a copy of src. */
void uidset_copy(struct uidset *dst, const struct uidset *src);

#endif
