/*
 * outline.h: a large message rebuilt from its structure, for reading.
 *
 * A message over MBX_IMAP_RAW_CAP is not read from its first MiB, which may
 * end inside an attachment before its text, but from its outline
 * (mailbox.h, mbx_email.outline): the message's header, then every part's
 * header as its BODYSTRUCTURE describes it, between boundaries, with the
 * main body's text parts (text/plain and text/html neither attached nor
 * named) in their places, each fetched up to MBX_IMAP_TEXT_CAP encoded bytes
 * and all of them up to MBX_IMAP_RAW_CAP, and nothing of any other part,
 * whose section and size the parts' list keeps. msgconv reads the outline as
 * it reads a message.
 *
 * The builder is pure (no I/O): outline_start from the header and the
 * structure the server sent; the caller fetches each text asked
 * (ob->sec[k], ob->max[k] bytes from its start) and gives it with
 * outline_text; outline_finish puts it all together. What the server sent
 * is peer data: names and parameters that are not MIME tokens are left out
 * or replaced, boundaries are made up where the structure's cannot be
 * written back, nesting is cut at OL_DEPTH_MAX (fuzz/fuzz_outline.c).
 */
#ifndef ABQ_NATIVE_OUTLINE_H
#define ABQ_NATIVE_OUTLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parse.h"
#include "lib/util.h"
#include "mailbox/mailbox.h"
#include "native/mailbox_imap.h"

/* An outline being built: the pieces between the text parts, the texts to fetch. */
struct outline_build {
	struct sbuf seg[MBX_IMAP_TEXTS + 1];
	char sec[MBX_IMAP_TEXTS][MBX_ID_MAX + 1];
	uint64_t max[MBX_IMAP_TEXTS];
	bool qp[MBX_IMAP_TEXTS];
	char *text[MBX_IMAP_TEXTS];
	size_t text_len[MBX_IMAP_TEXTS];
	size_t ntexts;
	uint64_t budget; /* text bytes still to be asked */
	struct mbx_outline_part *parts;
	size_t nparts, parts_cap;
	unsigned nbound; /* boundaries made up for multiparts that named none */
};

/*
 * Start an outline from the message's header (hlen bytes, perhaps cut by
 * its cap: whole lines are kept) and its structure.
 */
struct outline_build *outline_start(const char *hdr, size_t hlen, const struct imap_body *body);

/* Text k's bytes as fetched (copied, at most ob->max[k]); a text given twice keeps the first. */
void outline_text(struct outline_build *ob, size_t k, const char *p, size_t len);

/*
 * The outline whole (*out, malloc'd, *out_len bytes) and its leaf parts
 * (*parts, malloc'd, *nparts); a text cut by its cap ends cleanly (no
 * quoted-printable escape cut in two); a text never given is empty. Frees ob.
 */
void outline_finish(struct outline_build *ob, char **out, size_t *out_len,
                    struct mbx_outline_part **parts, size_t *nparts);

void outline_build_free(struct outline_build *ob);

#endif
