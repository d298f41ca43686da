/*
 * mailbox_union.h: several mailbox backends served as one.
 *
 * Native mode's account has its mail on an IMAP server and its contacts,
 * calendars and tasks on DAV servers: two backends, one hierarchy for the
 * phone. The union lists every part's folders together and routes each
 * folder's operations by the folder id's prefix: the part whose prefix the
 * id begins with (the longest such), else the default part (the one with
 * the empty prefix), which also serves what belongs to no folder (send,
 * Search of the mailbox) and new folders at the top. A part's folder whose
 * id would route elsewhere is not listed.
 *
 * Every part must own change cursors (mailbox.h): the command layer picks
 * its sync path per backend. A folder listing fails as a whole when one
 * part cannot list (a hierarchy without its calendars would tell the phone
 * they were deleted). Moves between parts are refused. The union's ops
 * table is its own: an op no part offers is NULL, so the capability checks
 * (mbx_can_send, mbx_can_change_folders, mbx_may_pend) read true.
 */
#ifndef ABQ_MAILBOX_UNION_H
#define ABQ_MAILBOX_UNION_H

#include <stddef.h>

#include "mailbox/mailbox.h"

#define MBX_UNION_PARTS      4
#define MBX_UNION_PREFIX_MAX 8

struct mbx_union_part {
	struct mbx_backend *backend; /* owned by the union once it is made */
	const char *prefix; /* the ids it owns begin with it; NULL or "": the default part */
};

/*
 * A union of n parts (1 to MBX_UNION_PARTS, exactly one default), or NULL
 * with *errstr_r (the parts are then still the caller's). mbx_destroy
 * destroys the parts with it.
 */
struct mbx_backend *mbx_union_new(const struct mbx_union_part *parts, size_t n,
                                  const char **errstr_r);

#endif
