/*
 * mailbox_imap.h: the mailbox backend over a real IMAP server (native mode).
 *
 * One backend per request: the daemon makes it for an Allowed device's
 * request with the phone's account and password and destroys it once the
 * request is answered (mbx_end). It takes one connection from the account's
 * pool (imap_pool.h) on its first op that needs the server, keeps it across
 * the request's runs and gives it back at mbx_end (or destroy).
 *
 * The restartable model (mailbox.h, run.h): an op that needs the server
 * starts the work and answers MBX_PENDING; its result is recorded under the
 * op and its arguments, so that every later run of the same request answers
 * it at once (a write, set_flags or remove, is done once and its result and
 * advanced cursor replayed). wait calls back when the work is done.
 *
 * Folders: LIST "" "*" RETURN (SPECIAL-USE) (plain LIST without
 * LIST-EXTENDED); EAS types from SPECIAL-USE, else the usual names (INBOX 2,
 * Drafts 3, Trash / Deleted Items / Deleted Messages 4, Sent / Sent Items /
 * Sent Messages 5; Junk, Spam and the rest 12); \Noselect parents are kept
 * as hierarchy (type 12). Folder ids come from a folder map (below).
 *
 * Folder changes (FolderCreate, FolderUpdate, FolderDelete): CREATE and
 * SUBSCRIBE; RENAME (UNSUBSCRIBE the old name, SUBSCRIBE the new); DELETE of
 * the folder and the mailboxes under it, deepest first (and UNSUBSCRIBE),
 * with UNSELECT first (EXAMINE INBOX without it) unless the mailbox
 * selected is known to be another one (Dovecot drops a connection whose
 * selected mailbox is deleted; a pooled connection may still have the last
 * request's selected). The name's level is
 * refused when it holds the server's hierarchy delimiter (from LIST); a
 * sibling of the same name (ASCII case ignored) is "exists" before the
 * server is asked (ALREADYEXISTS after). The folder map keeps the id across
 * a rename (children too) and drops it on delete (map->change); a created
 * folder gets its id from map->assign. Once per request like every write;
 * the folder list shows the change when the op's result is first answered.
 *
 * Items are UIDs (decimal). The change cursor (at most MBX_CURSOR_MAX bytes):
 *   "i1 <uidvalidity> <since> <have> <seen> <flagged>", or
 *   "i2 <uidvalidity> <modseq>/<uidnext>/<exists> <since> <have> <seen> <flagged>"
 * have: the UIDs the device has (lib/uidset.h ranges, "-" when none); seen
 * and flagged: which of them the device was told are read / flagged, seen
 * written either as "+<set>" (the seen ones) or "~<set>" (the unseen ones),
 * whichever is shorter, so a mostly-read folder costs a few ranges. Each
 * changes() selects the folder and asks its UID SEARCHes one after the
 * other (UNDELETED, UNDELETED SINCE for a date window, SEEN, FLAGGED;
 * ESEARCH's ranges when offered): deletes = have - existing, soft deletes =
 * have - window when the window narrowed, changed = the read/flag states
 * differ from the cursor's, adds = window - have, newest first. The same at
 * every capability level. With CONDSTORE, a cursor that reported everything
 * records the HIGHESTMODSEQ, UIDNEXT and EXISTS its SELECT saw before the
 * searches ("i2"); a later changes() whose own SELECT shows the same three,
 * with the window where it was, answers "nothing" without searching (any
 * write, expunge or arrival moves one of them). A no-change Sync of a
 * 2,000-message folder: 2 IMAP commands instead of 5 (native_imapmbx_live).
 *
 * A pathological folder (reads alternating message by message, ~600 runs
 * and more) would pass MBX_CURSOR_MAX: the read states are then written
 * "?", and the device is taken to have the server's read states; read
 * changes made elsewhere in that folder are not reported until they fit
 * again (flags and deletes still are). If even that does not fit, fewer
 * adds are taken (MoreAvailable); with none left, changes() answers 0 (the
 * phone starts over) rather than loop.
 *
 * The adds of one changes() are prefetched in one UID FETCH (UID FLAGS
 * INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[]<0.cap>), at most
 * MBX_IMAP_BATCH_CAP of bodies together, so each fetch() of
 * them answers from the batch; fetch() of any other item does its own UID
 * FETCH. raw holds at most MBX_IMAP_RAW_CAP bytes (raw_len < size beyond:
 * the rest is attachments, fetched part by part when asked). subject, from
 * and date_received are filled from the ENVELOPE too.
 */
#ifndef ABQ_NATIVE_MAILBOX_IMAP_H
#define ABQ_NATIVE_MAILBOX_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailbox/mailbox.h"
#include "native/imap_pool.h"

/* The most of one message fetched with its item (the rest: part by part). */
#define MBX_IMAP_RAW_CAP (1024 * 1024)
/*
 * A message over MBX_IMAP_RAW_CAP comes with its outline (mailbox.h,
 * mbx_email.outline): its BODYSTRUCTURE and header (at most
 * MBX_IMAP_HEADER_CAP), and the main body's text parts (text/plain and
 * text/html neither attached nor named, at most MBX_IMAP_TEXTS of them),
 * each fetched up to MBX_IMAP_TEXT_CAP encoded bytes and all of them up to
 * MBX_IMAP_RAW_CAP: a part past its cap is cut (the item says Truncated).
 */
#define MBX_IMAP_TEXT_CAP   (512 * 1024)
#define MBX_IMAP_TEXTS      4
#define MBX_IMAP_HEADER_CAP (256 * 1024)
/*
 * The most of the adds' bodies one changes() prefetches (each counted up to
 * MBX_IMAP_RAW_CAP, one over it twice: its outline's texts): past it the
 * window is cut, MoreAvailable, the rest next time. Checked with a UID FETCH (RFC822.SIZE) first
 * when the adds could pass it.
 */
#define MBX_IMAP_BATCH_CAP (8 * 1024 * 1024)
/*
 * fetch_part: one part's decoded bytes, by its section. The part's type and
 * encoding come from BODYSTRUCTURE (a section that names no single part: 0).
 * With BINARY (RFC 3516) the server decodes: UID FETCH (BINARY.SIZE[sec]
 * BINARY.PEEK[sec]<offset.max>), only the window crosses the wire. Without
 * it, a part in 7bit/8bit/binary is read the same way with BODY.PEEK and its
 * BODYSTRUCTURE size; a base64 or quoted-printable part is fetched whole
 * (streamed, never held) and decoded here as it arrives, keeping only the
 * window: the decoded size is known once the pass ends. A base64 part whose
 * lines that pass found regular has the request's next windows read by
 * their encoded offset; else each window costs a pass over the encoded
 * part. At most MBX_IMAP_PART_CAP bytes are
 * held for one answer (a whole-part read of a larger part fails, -1: ask by
 * windows). Section MBX_SECTION_MESSAGE (""): the whole message, read by
 * BODY.PEEK[]<offset.max>, its size RFC822.SIZE, a NUL byte given as a
 * space (it goes into a WBXML string).
 */
#define MBX_IMAP_PART_CAP (64 * 1024 * 1024)

/*
 * The folder-id map (the store's abq_store_folder_*: ids that survive a
 * rename and a restart). assign gives the ids of a listing of n mailboxes of
 * account (UTF-8 names with the server's hierarchy delimiter delim, each
 * with its MAILBOXID and UIDVALIDITY when known), assigning new ones as
 * needed and following the folders renamed on the server (a name not in the
 * map that has the MAILBOXID, else the unique UIDVALIDITY, of a folder no
 * longer listed: abq_store_folder_list), and calls done exactly once,
 * possibly before it returns: rv 0 with ids[i] (malloc'd, the backend takes
 * the array and the strings); with probe, rv 1 when the map needs the
 * server's word first: ids[i] NULL for the mailboxes it does not know (or
 * knows without a UIDVALIDITY), which the backend asks STATUS of before
 * calling again without probe; or -1. The daemon implements it over the
 * store thread; tests synchronously over a store.
 */
typedef void (*mbx_imap_ids_fn)(void *done_arg, int rv, char **ids);
typedef void (*mbx_imap_done_fn)(void *done_arg, int rv);
struct mbx_imap_listed {
	const char *mailbox;    /* UTF-8, with the server's delimiter */
	const char *mailbox_id; /* RFC 8474 MAILBOXID; NULL: not known */
	int64_t uidvalidity;    /* 0: not known; -1: it has none (\Noselect) */
};
struct mbx_imap_folder_map {
	void *arg;
	void (*assign)(void *arg, const char *account, const struct mbx_imap_listed *l, size_t n,
	               char delim, bool probe, mbx_imap_ids_fn done, void *done_arg);
	/*
	 * The device renamed or deleted a folder (FolderUpdate, FolderDelete):
	 * folder_id now names mailbox under parent_id (NULL: the top), the
	 * folders under its old name (old name + delim + ...) following it
	 * with their ids; mailbox NULL: folder_id and the folders under it are
	 * gone. done(done_arg, 0 or -1) exactly once, possibly before it
	 * returns. NULL: ids are assigned afresh by name at the next listing
	 * (a renamed folder then gets a new id).
	 */
	void (*change)(void *arg, const char *account, const char *folder_id, const char *mailbox,
	               const char *parent_id, char delim, mbx_imap_done_fn done, void *done_arg);
};

/* Why the last op failed, beyond its errstr. */
enum mbx_imap_failure {
	MBX_IMAP_OK,
	MBX_IMAP_AUTH,        /* the login was refused: answer the phone HTTP 401 */
	MBX_IMAP_UNAVAILABLE, /* no connection (down, or none free in time): HTTP 503 */
	MBX_IMAP_ERROR,       /* the server failed a command */
};

/*
 * What the backend needs to send (the `send` op): the daemon's submission
 * queue, `[upstream] submission`'s URL, and the account's address, the
 * envelope sender. The submission logs in with the backend's user and
 * password. Copied by mbx_imap_set_send (q must outlive the backend).
 */
struct submitq;
struct mbx_imap_send {
	struct submitq *q;
	const char *url;     /* smtp://host:port or smtps://host:port */
	const char *from;    /* the account's address */
	const char *ca_file; /* PEM CA bundle ([upstream] ca_file); NULL: the system's */
	bool tls_insecure;   /* do not verify the server's certificate (tests) */
};

/*
 * A backend for one request of account (the canonical account: the key of
 * the folder map and of the pool's cap) over pool, logging in as user (the
 * name the phone gave; NULL: account) with password (copied; wiped when the
 * backend is destroyed). map and what it points to must outlive the backend.
 */
struct mbx_backend *mbx_imap_new(struct imap_pool *pool, const char *account, const char *user,
                                 const char *password, const struct mbx_imap_folder_map *map);
/*
 * Let b send mail (see struct mbx_imap_send): from then on mbx_can_send(b).
 * send() submits the message as compose_sent_copy writes it (Bcc kept for
 * the copy, dropped by the submission) once per request (reruns answer the
 * recorded outcome, never send again) and, when it was sent and SaveInSent
 * asks, APPENDs the same bytes, \Seen, to the Sent folder (SPECIAL-USE
 * \Sent, else the usual names). No q, url or from: b does not send.
 */
void mbx_imap_set_send(struct mbx_backend *b, const struct mbx_imap_send *send);
/*
 * Parse the fetched messages (Sync windows, fetches, Search results) on q's
 * thread, off the loop, before the command layer reruns (mbx_email.parsed);
 * NULL: the command layer parses them on the loop. q must outlive the
 * backend; a backend destroyed with a parse in flight cancels it.
 */
struct parseq;
void mbx_imap_set_parseq(struct mbx_backend *b, struct parseq *q);
enum mbx_imap_failure mbx_imap_failure(const struct mbx_backend *b);
/*
 * The IMAP name (UTF-8) of a folder id in the folder list of the backend's
 * current or last request (kept past mbx_end), or NULL (none listed, or no
 * such folder). Valid until the next request's end or b's destruction.
 */
const char *mbx_imap_mailbox(const struct mbx_backend *b, const char *folder_id);
/* Runs of the current request (begin calls) and IMAP commands sent, so far (tests). */
void mbx_imap_stats(const struct mbx_backend *b, unsigned *runs_r, unsigned *commands_r);

#endif
