/*
 * mailbox_memory.h: a mailbox backend with IMAP's model, in memory.
 *
 * The reference for the change-cursor ops (mailbox.h: changes, set_flags,
 * remove) that the IMAP backend implements over a server: folders with a
 * UIDVALIDITY, messages with UIDs, a MODSEQ bumped at every change, the
 * flags \Seen, \Flagged and \Deleted, and expunges remembered with their
 * MODSEQ (as QRESYNC's VANISHED reports them). Item server ids are the
 * decimal UIDs. It lives in the library, beside the quarantine mailbox,
 * rather than in tests/ so that the tests, mailbox-tool and the benchmarks
 * drive the same code; nothing in the daemon links it.
 *
 * Its cursor (at most MBX_CURSOR_MAX bytes):
 *   "<uidvalidity> <modseq> <since> <uid-set>[ <uid>@<modseq>,...]"
 * the UIDVALIDITY it was made under; the MODSEQ up to which every change
 * was reported; the date floor in force; the UIDs the device has as ranges
 * (lib/uidset.h; "-" when none), which may also hold UIDs that are gone for
 * good (expunged before the device saw them, or whose delete was reported),
 * so that a folder synced whole stays one range; and the device's own
 * changes not yet passed by the MODSEQ, which are not reported back.
 */
#ifndef ABQ_MAILBOX_MEMORY_H
#define ABQ_MAILBOX_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "mailbox/mailbox.h"

#define MBX_MEM_SEEN      0x1u
#define MBX_MEM_FLAGGED   0x2u
#define MBX_MEM_DELETED   0x4u
#define MBX_MEM_ANSWERED  0x8u  /* \Answered */
#define MBX_MEM_FORWARDED 0x10u /* $Forwarded */

/* An empty mailbox (no folders). Destroy with mbx_destroy. */
struct mbx_backend *mbx_memory_new(void);
/* Add a folder: 0, or -1 (a duplicate id, an id or name too long). */
int mbx_memory_add_folder(struct mbx_backend *b, const char *id, const char *parent_id,
                          const char *name, int type, uint32_t uidvalidity);
/* Deliver a message (APPEND): its UID, or 0 for an unknown folder. Strings are copied. */
uint32_t mbx_memory_append(struct mbx_backend *b, const char *folder_id, const char *from,
                           const char *subject, int64_t date, unsigned flags);
/*
 * Deliver a real message (APPEND of its RFC 5322 bytes, copied): fetch gives
 * it as raw (mailbox.h), fetch_part its parts. Its UID, or 0 for an unknown
 * folder. date: its INTERNALDATE (the date window's, and DateReceived's
 * fallback).
 */
uint32_t mbx_memory_append_raw(struct mbx_backend *b, const char *folder_id, const char *raw,
                               size_t len, int64_t date, unsigned flags);
/*
 * Give real messages with their parse (mbx_email.parsed), made once per
 * message and kept, as the native backend parses a batch ahead on its
 * thread; off (the default): the command layer parses.
 */
void mbx_memory_set_parse_ahead(struct mbx_backend *b, bool on);
/* A real message's parse ahead (made now if need be; for tests), or NULL. */
struct msgconv_msg *mbx_memory_parsed(struct mbx_backend *b, const char *folder_id, uint32_t uid);
/*
 * PIM objects (mailbox.h fetch_object, put_object) in folders of any type:
 * a message's raw bytes (append_raw) are the object, "\"<MODSEQ>\"" its
 * version. mbx_memory_replace changes one on the "server": new bytes in
 * place, a new MODSEQ, so changes() lists it among `changed`. 1, 0 none.
 */
int mbx_memory_replace(struct mbx_backend *b, const char *folder_id, uint32_t uid, const char *data,
                       size_t len);
/*
 * An object's span as a DAV backend's map would know it (mbx_change_item's
 * start and end; 0 0 unknown, as after mbx_memory_replace). 1, 0 none.
 */
int mbx_memory_set_span(struct mbx_backend *b, const char *folder_id, uint32_t uid, int64_t start,
                        int64_t end);
/* An entry of the address list (gal_search: prefixes of names and address, ASCII case ignored). */
void mbx_memory_add_gal(struct mbx_backend *b, const struct mbx_gal_entry *e);
/* STORE on one message: flags set, then cleared (a new MODSEQ when they change). 1, 0 none. */
int mbx_memory_store(struct mbx_backend *b, const char *folder_id, uint32_t uid, unsigned set,
                     unsigned clear);
/* EXPUNGE: the folder's \Deleted messages removed. Returns how many, or -1. */
int mbx_memory_expunge(struct mbx_backend *b, const char *folder_id);
/* The folder recreated under a new UIDVALIDITY: messages renumbered from 1. 0 or -1. */
int mbx_memory_set_uidvalidity(struct mbx_backend *b, const char *folder_id, uint32_t uidvalidity);
/* Live messages (expunged ones not counted) of a folder; 0 for an unknown one. */
size_t mbx_memory_count(struct mbx_backend *b, const char *folder_id);
/*
 * cursor false: the backend offers only list_items/set_read (the command
 * layer's item-list path, for comparison). pend: the first op of every
 * request answers MBX_PENDING (done at once, by wait), as an IMAP backend
 * that must connect first.
 */
void mbx_memory_set_mode(struct mbx_backend *b, bool cursor, bool pend);
/*
 * Sending (mbx_ops.send): every message handed over is recorded, in order,
 * as "sent" unless mbx_memory_set_send_result says the submission refuses
 * it; SaveInSent appends it, read, to the folder of type MBX_FOLDER_SENT.
 * The i-th message sent (0-based), or NULL, and its length in *len_r.
 */
const char *mbx_memory_sent(struct mbx_backend *b, size_t i, size_t *len_r);
/* How the next sends end (MBX_SEND_SENT by default): a refused one is not recorded. */
void mbx_memory_set_send_result(struct mbx_backend *b, enum mbx_send_result r);
/* The flags (MBX_MEM_*) of a live message, or -1 when there is none. */
int mbx_memory_flags(struct mbx_backend *b, const char *folder_id, uint32_t uid);

#endif
