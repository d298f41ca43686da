/*
 * mailbox.h: the mailbox backend interface under the ActiveSync command layer.
 *
 * The command layer (commands.h) speaks EAS; a backend only knows folders and
 * e-mail items. Each backend fills one struct mbx_ops (OpenSMTPD's table_*.c
 * shape): the virtual quarantine mailbox now (mailbox_quarantine.c), a native
 * IMAP backend later, without a change to the command layer.
 *
 * - Folders have a server id, a parent id ("0" for the top), a display name
 *   and an EAS folder type (2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent Items,
 *   6 Outbox, 12 user mail folder).
 * - Items of a folder are listed as (server id, version): the version is a
 *   change counter the backend bumps whenever the item changes, so the command
 *   layer finds Adds, Changes and Deletes by comparing with what the client
 *   has (kept in the sync state, not in the backend).
 * - A fetch fills a struct mbx_email, whose strings the caller frees with
 *   mbx_email_clear().
 *
 * Backends do no EAS encoding. Errors: 0 / -1 with *errstr_r (a static or
 * backend-owned message); lookups 1 found, 0 not found, -1.
 *
 * Asynchronous backends (the IMAP backend) may answer any op with
 * MBX_PENDING: "not here yet, I started fetching it". The command layer then
 * stops at once (mbx_serve_out.pending) and the driver (run.h) waits for the
 * backend (wait), then serves the same request again: the backend answers
 * the operations it has already done from the request's results, in the
 * order they were asked, and performs each write (set_read) only once,
 * replaying its result on every later run. begin and end bracket that: begin
 * before every run of one request (the backend goes back to the first of
 * its recorded results), end once the request is answered (they are
 * dropped). One instance serves one request at a time. A backend that never
 * pends (the quarantine mailbox) leaves wait, begin and end NULL.
 */
#ifndef ABQ_MAILBOX_H
#define ABQ_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notice/render.h"

/* EAS folder types (MS-ASCMD 2.2.3.186.3). */
#define MBX_FOLDER_INBOX   2
#define MBX_FOLDER_DRAFTS  3
#define MBX_FOLDER_DELETED 4
#define MBX_FOLDER_SENT    5
#define MBX_FOLDER_OUTBOX  6
#define MBX_FOLDER_MAIL    12
/* Contacts, calendars and tasks: the default folder of each, and others of the user. */
#define MBX_FOLDER_TASKS         7
#define MBX_FOLDER_CALENDAR      8
#define MBX_FOLDER_CONTACTS      9
#define MBX_FOLDER_USER_CALENDAR 13
#define MBX_FOLDER_USER_CONTACTS 14
#define MBX_FOLDER_USER_TASKS    15

/* What a folder holds: its items' class (a Sync's Class, MS-ASCMD 2.2.3.27). */
enum mbx_class {
	MBX_CLASS_EMAIL = 0,
	MBX_CLASS_CONTACTS,
	MBX_CLASS_CALENDAR,
	MBX_CLASS_TASKS,
};
/* The class of a folder type: contacts for 9 and 14, calendar 8 and 13, tasks 7 and 15, else
 * e-mail. */
enum mbx_class mbx_folder_class(int type);
/* The class's name as a Sync's Class element writes it ("Email", "Contacts", "Calendar", "Tasks").
 */
const char *mbx_class_name(enum mbx_class c);

/* Longest server id (folder or item) the command layer accepts (MS-ASCMD: 64). */
#define MBX_ID_MAX 64

/* An op's or a state read's answer: not here yet, being fetched (run.h). */
#define MBX_PENDING (-2)

struct mbx_folder {
	const char *id;
	const char *parent_id; /* "0": top level */
	const char *name;
	int type; /* MBX_FOLDER_* */
};

struct mbx_item_ref {
	char id[MBX_ID_MAX + 1];
	uint64_t version;
};

/* One e-mail item; strings owned by the struct (mbx_email_clear frees them). */
struct mbx_email {
	char *from;
	char *to;
	char *display_to;
	char *subject;
	int64_t date_received; /* seconds since the epoch, UTC */
	bool read;
	char *message_class; /* "IPM.Note" */
	char *body_plain;    /* UTF-8, or NULL */
	char *body_html;     /* UTF-8, or NULL */
	bool flagged;        /* flagged for follow-up (IMAP \Flagged) */
	/*
	 * A real mailbox's item (native mode): the message as the mail server
	 * has it (RFC 5322 bytes, malloc'd), which the command layer turns into
	 * the EAS fields and bodies itself (mime/msgconv.h); the fields above
	 * but read and flagged are then unused. raw_len < size when only the
	 * first raw_len bytes were fetched (a large message: the rest is its
	 * attachments, fetched part by part when asked). raw NULL: the fields
	 * above are the item (the quarantine mailbox).
	 */
	char *raw;
	size_t raw_len;
	uint64_t size;         /* the whole message (RFC822.SIZE), when raw is set */
	int64_t internal_date; /* the server's arrival time (INTERNALDATE), 0 unknown */
	/*
	 * A message larger than what the backend fetches with its item (raw_len
	 * < size) may come with its outline: the message rebuilt from its
	 * structure (its header, each part's header as the structure gives it,
	 * the main body's text parts, each perhaps cut, every other part empty),
	 * whose parts have the same sections as the message's. The command
	 * layer reads the item from the outline and takes each part's size from
	 * parts; raw then only serves a MIME (type 4) body, cut. NULL: none.
	 */
	char *outline;
	size_t outline_len;
	struct mbx_outline_part *parts;
	size_t n_parts;
	/*
	 * raw (or the outline) already parsed by the backend, off the event
	 * loop, as the command layer would parse it (msgconv_parse with
	 * date_fallback internal_date, no_mime: the MIME is raw itself; perhaps
	 * msgconv_render): borrowed, the backend's until the request ends
	 * (mbx_email_clear leaves it). NULL: the command layer parses.
	 */
	const struct msgconv_msg *parsed;
};

/* One leaf part of an outlined message (mbx_email.outline). */
struct mbx_outline_part {
	char section[MBX_ID_MAX + 1]; /* "2", "1.2" */
	uint64_t size;                /* its decoded size (estimated from the encoded one) */
	/* 'p' or 'h': a text/plain or text/html part of the main body; 0: any other */
	char body;
	bool cut; /* a body part the outline holds only in part (or not at all) */
};
void mbx_email_clear(struct mbx_email *e);

/* fetch_part's section of the whole message (no FileReference names it: none is empty). */
#define MBX_SECTION_MESSAGE ""

/* One part of a real item (an attachment), as fetch_part gives it (mbx_part_clear frees it). */
struct mbx_part {
	char *data;         /* the decoded bytes asked for (malloc'd, a NUL after them) */
	size_t len;         /* bytes in data */
	uint64_t total;     /* the whole part's decoded size */
	char *content_type; /* "application/pdf" (malloc'd) */
};
void mbx_part_clear(struct mbx_part *p);

/*
 * ---- Change cursors (optional: mbx_ops.changes) ----
 *
 * A backend with its own notion of "what changed since" (IMAP: UIDVALIDITY,
 * MODSEQ, VANISHED, UIDs) owns the cursor: an opaque printable string of at
 * most MBX_CURSOR_MAX bytes (no newline, no space at either end) describing
 * what one device has of one folder. The command layer keeps it in the sync
 * state instead of a line per item, hands it back on the next Sync, and
 * stores the cursor each answer returns. NULL (or "") means the device has
 * nothing of the folder.
 *
 * The client's own changes (read, flag, delete) go through set_flags and
 * remove, which take the cursor and advance it so that the change is never
 * reported back to the device that made it.
 */
#define MBX_CURSOR_MAX 3000

/* What a Sync asks for. */
struct mbx_window {
	/*
	 * Changes of any kind to report at most (WindowSize); 0: none, only
	 * count them (GetItemEstimate, Ping).
	 */
	size_t size;
	/*
	 * The date floor (FilterType), seconds since the epoch: items received
	 * before it are not added, and those the device has are soft-deleted.
	 * 0: no floor; -1: the floor the cursor was made under.
	 */
	int64_t since;
	/*
	 * Calendars: the command layer's date floor (FilterType), 0 none. The
	 * layer leaves out the events that end before it (mbx_change_item's
	 * span, or the object's own); a backend need not fetch ahead those its
	 * map already knows to end before it. since is 0 for calendars.
	 */
	int64_t span_floor;
};

/* An event's end when it has none (a series that recurs for ever). */
#define MBX_SPAN_OPEN INT64_MAX

/* One item in a change report. */
struct mbx_change_item {
	char id[MBX_ID_MAX + 1];
	bool read, flagged; /* changed: the item's state now */
	bool soft;          /* deletes: it left the date window, it is not gone */
	/*
	 * Adds and changes of a calendar: the event's span as the backend
	 * knows it (seconds since the epoch; a series from its first start to
	 * its last occurrence's end, MBX_SPAN_OPEN without one). 0 0: unknown.
	 */
	int64_t start, end;
};

/* A folder's changes against a cursor (mbx_changes_clear frees it). */
struct mbx_changes {
	struct mbx_change_item *adds; /* to fetch and add, newest first */
	size_t n_adds;
	struct mbx_change_item *changed; /* read or flag state changed */
	size_t n_changed;
	struct mbx_change_item *deletes; /* gone (or soft: out of the window) */
	size_t n_deletes;
	/* Changes there are in all, those reported included (for the estimate). */
	size_t total;
	bool more_available; /* more than the window: ask again with cursor */
	/* What the device has once it has applied the reported changes. */
	char cursor[MBX_CURSOR_MAX + 1];
};
void mbx_changes_clear(struct mbx_changes *c);

/* How a send ended (mbx_ops.send); the command layer maps it to EAS statuses. */
enum mbx_send_result {
	MBX_SEND_SENT = 0,     /* the submission server took it */
	MBX_SEND_NO_RCPT,      /* the message names no recipient (119) */
	MBX_SEND_RCPT_REFUSED, /* a recipient is no address or was refused (116) */
	MBX_SEND_TOO_LARGE,    /* over the size the server or abqd takes (122) */
	MBX_SEND_TEMPORARY,    /* try again later: 4xx, no connection (111) */
	MBX_SEND_FAILED,       /* refused for good: other 5xx, login refused (120) */
};

/* A send's outcome (mbx_ops.send). */
struct mbx_send_out {
	enum mbx_send_result result;
	bool saved; /* SaveInSent: the copy is in the Sent folder */
};

/*
 * Why a folder change was refused (mbx_ops.folder_create and co.): values
 * apart from 1, -1 and MBX_PENDING.
 */
enum mbx_folder_refusal {
	MBX_FOLDER_EXISTS = -10,    /* the parent holds a folder of that name */
	MBX_FOLDER_NOT_FOUND = -11, /* no such folder */
	MBX_FOLDER_NO_PARENT = -12, /* no such parent, or one that cannot hold it (itself) */
	MBX_FOLDER_SPECIAL = -13,   /* a special folder (Inbox, Sent...): not renamed or deleted */
	MBX_FOLDER_BAD_NAME = -14,  /* a name the mailbox cannot hold (its hierarchy delimiter) */
};

/*
 * ---- Search (optional: mbx_ops.search) ----
 *
 * A mailbox Search (MS-ASCMD 2.2.1.16): the items of the folders asked
 * (none: every mail folder) whose subject, sender, recipients or body hold
 * every word (case-insensitively), received in the date bounds. The answer
 * lists at most MBX_SEARCH_MAX hits, newest first, and how many matched.
 */
#define MBX_SEARCH_WORDS   16   /* FreeText words one query holds at most */
#define MBX_SEARCH_WORD    256  /* bytes of one word at most */
#define MBX_SEARCH_FOLDERS 32   /* CollectionIds one query names at most */
#define MBX_SEARCH_MAX     1000 /* hits one answer lists at most */

struct mbx_search {
	const char *folders[MBX_SEARCH_FOLDERS]; /* none: every mail folder */
	size_t n_folders;
	const char *words[MBX_SEARCH_WORDS]; /* all must match; UTF-8, no NUL */
	size_t n_words;
	int64_t since;  /* received at or after (seconds since the epoch); 0: no bound */
	int64_t before; /* received before; 0: no bound */
	/* The hits the answer will show (the Range): a backend may fetch them ahead. */
	size_t first, last;
};

/* One hit: an item of a folder. */
struct mbx_search_hit {
	char folder[MBX_ID_MAX + 1];
	char id[MBX_ID_MAX + 1];
	int64_t date;  /* received (for merging folders newest first) */
	uint64_t size; /* the message's size, 0 unknown */
};

/* A search's answer (mbx_search_out_clear frees it). */
struct mbx_search_out {
	struct mbx_search_hit *hits; /* newest first, at most MBX_SEARCH_MAX */
	size_t n;
	size_t total; /* items matched in all (>= n) */
};
void mbx_search_out_clear(struct mbx_search_out *o);

/*
 * ---- Contacts, calendars and tasks (optional: mbx_ops.fetch_object, put_object) ----
 *
 * A folder of a PIM class (mbx_folder_class) holds objects as the DAV
 * server keeps them: a vCard (contacts) or an iCalendar object (an event
 * with its exceptions, a task), each with its version (the ETag). The
 * command layer converts them to and from EAS (src/pim). Such folders go
 * through the cursor ops like mail: changes() lists an object whose
 * content changed among `changed` (read and flagged mean nothing there),
 * remove() deletes one (to_trash is ignored).
 */
struct mbx_object {
	char *data; /* the object's bytes (UTF-8 text, malloc'd, a NUL after them) */
	size_t len;
	char *etag; /* its version on the server (malloc'd), or NULL when unknown */
};
void mbx_object_clear(struct mbx_object *o);

/* put_object's answer when the object changed on the server since the version given. */
#define MBX_CONFLICT (-20)
/* put_object's answer when the server refused the object itself (not a failure of the server). */
#define MBX_REFUSED (-21)

/*
 * ---- The global address list (optional: mbx_ops.gal_search) ----
 *
 * The organisation's directory (an LDAP server, an address book), for
 * Search with Store Name GAL and ResolveRecipients. An entry's strings are
 * UTF-8 (malloc'd, NULL when the directory has none); its picture the
 * photo's bytes (JPEG) when asked for and within the size asked.
 */
#define MBX_GAL_QUERY_MAX 256 /* bytes of a query at most (a To of ResolveRecipients) */
#define MBX_GAL_MAX       100 /* entries one answer holds at most */

struct mbx_gal_entry {
	char *display_name, *email, *first_name, *last_name, *alias;
	char *company, *title, *office, *phone, *home_phone, *mobile_phone;
	unsigned char *picture; /* NULL: none asked, none there, or over the size asked */
	size_t picture_len;
	bool picture_too_large; /* there is one, over the size asked */
};

/* How a GAL query matches: names and addresses beginning with it, or one address exactly. */
enum mbx_gal_match {
	MBX_GAL_PREFIX = 0,
	MBX_GAL_ADDRESS,
};

/* A GAL answer (mbx_gal_out_clear frees it). */
struct mbx_gal_out {
	struct mbx_gal_entry *e; /* by display name */
	size_t n;
	size_t total; /* entries that match, those listed included (the directory may cap it) */
};
/* Free an entry's strings and picture and zero it. */
void mbx_gal_entry_clear(struct mbx_gal_entry *e);
void mbx_gal_out_clear(struct mbx_gal_out *o);
/*
 * A deep copy of src into dst (the strings duplicated); its picture only
 * when within picture_max bytes (0: none), else flagged too large.
 */
void mbx_gal_entry_copy(struct mbx_gal_entry *dst, const struct mbx_gal_entry *src,
                        size_t picture_max);

struct mbx_backend;
struct msgconv_msg;

struct mbx_ops {
	const char *name; /* "quarantine" */
	/* The folders; the array and its strings belong to the backend. */
	int (*list_folders)(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
	                    const char **errstr_r);
	/*
	 * The items of a folder in a malloc'd array (*items_r, free it; NULL when
	 * empty). Returns 0, or -1 (an unknown folder is an error).
	 */
	int (*list_items)(struct mbx_backend *b, const char *folder_id,
	                  struct mbx_item_ref **items_r, size_t *n_r, const char **errstr_r);
	/* Fetch one item: 1 and *out filled, 0 when there is no such item, -1. */
	int (*fetch)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	             struct mbx_email *out, const char **errstr_r);
	/* Set the read flag: 1 done, 0 no such item, -1. */
	int (*set_read)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                bool read, const char **errstr_r);
	void (*destroy)(struct mbx_backend *b);
	/*
	 * Call cb(arg) once everything the backend started for an op that
	 * answered MBX_PENDING is done or has failed (possibly before wait
	 * returns; exactly once). NULL: the backend never pends.
	 */
	void (*wait)(struct mbx_backend *b, void (*cb)(void *arg), void *arg);
	/* A run of the current request starts: answer from its recorded results. NULL: none. */
	void (*begin)(struct mbx_backend *b);
	/* The current request is answered: drop its recorded results. NULL: none. */
	void (*end)(struct mbx_backend *b);
	/*
	 * The current request waits on its peer, not on the backend (a streamed
	 * answer paused until the phone reads): what it holds of the server
	 * (a pooled connection) is given back; its recorded results stay, and its
	 * next call takes a connection again. NULL: nothing to give back.
	 */
	void (*release)(struct mbx_backend *b);

	/*
	 * Optional, all three or none: the backend owns the change cursor
	 * (above). Then list_items and set_read are not used for the folders
	 * the command layer syncs.
	 *
	 * changes: folder's changes against cursor, at most w->size of them
	 * reported (deletes first, then changes, then adds newest first), out
	 * filled (out->cursor the advanced cursor, out->total all pending).
	 * Returns 1, 0 when the cursor no longer applies (the folder was
	 * recreated: UIDVALIDITY changed; the device must start over: Sync
	 * Status 3), -1 (an unknown folder or a cursor it cannot read), or
	 * MBX_PENDING.
	 */
	int (*changes)(struct mbx_backend *b, const char *folder_id, const char *cursor,
	               const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r);
	/*
	 * The device changed an item's read and/or follow-up flag (-1: leave
	 * it, 0 clear, 1 set). cursor (in/out, MBX_CURSOR_MAX + 1 bytes): the
	 * device's, advanced past this change. 1 done, 0 no such item (or one
	 * the cursor does not hold), -1, MBX_PENDING.
	 */
	int (*set_flags)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                 int read, int flagged, char *cursor, const char **errstr_r);
	/*
	 * The device deleted an item: moved to the Deleted Items folder when
	 * to_trash (DeletesAsMoves; from that folder itself it is expunged),
	 * else expunged. cursor as in set_flags. 1 done, 0 no such item, -1,
	 * MBX_PENDING.
	 */
	int (*remove)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	              bool to_trash, char *cursor, const char **errstr_r);

	/*
	 * Optional (items with raw): one part of an item, by its IMAP section
	 * (mime/msgconv.h numbers the attachments so): at most max bytes
	 * (0: all) of its decoded content from offset, and the whole part's
	 * decoded size, into out (an offset at or past the end gives no
	 * bytes). Section MBX_SECTION_MESSAGE: the whole message's bytes as
	 * the server has them (a large item's MIME body, streamed). 1, 0 no
	 * such item or part, -1, MBX_PENDING. NULL: the backend has no
	 * attachments (the quarantine mailbox).
	 */
	int (*fetch_part)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                  const char *section, uint64_t offset, uint64_t max, struct mbx_part *out,
	                  const char **errstr_r);
	/*
	 * Optional (with fetch_part): drop what the request's fetch_part
	 * answers hold (a streamed answer's windows, taken by the caller), so
	 * that streaming a part window by window within one request keeps one
	 * window at a time. A later fetch_part of a dropped window fetches it
	 * again. NULL: the backend holds nothing per window.
	 */
	void (*forget_parts)(struct mbx_backend *b);

	/*
	 * Optional: send the user's message (mime, len bytes of RFC 5322, as
	 * the command layer composed it) through the submission server and,
	 * when save_in_sent, append the copy to the Sent folder (read). out
	 * says how it ended; a refusal is a 1 with out->result, not a -1.
	 * Performed once per request (reruns answer the recorded outcome).
	 * 1, -1 (the backend could not try), MBX_PENDING. NULL: mail cannot
	 * be sent from this mailbox (the quarantine mailbox).
	 */
	int (*send)(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
	            struct mbx_send_out *out, const char **errstr_r);
	/*
	 * Optional: the item was replied to (IMAP \Answered) or forwarded
	 * ($Forwarded) from this device. 1, 0 no such item, -1, MBX_PENDING.
	 */
	int (*mark_answered)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                     bool forwarded, const char **errstr_r);
	/*
	 * Optional (with the cursor ops): move an item to folder dst_id
	 * (MoveItems); new_id_r (MBX_ID_MAX + 1 bytes) gets its id there (the
	 * UID the server reports). cursor: the device's of the source folder
	 * (in/out, as in set_flags; NULL or "" when it has none), advanced so
	 * that the move is not reported back as a delete; the destination's
	 * next changes() report the item as an add. 1 moved, 0 no such item,
	 * -1, MBX_PENDING.
	 */
	int (*move)(struct mbx_backend *b, const char *src_id, const char *item_id,
	            const char *dst_id, char *cursor, char *new_id_r, const char **errstr_r);
	/*
	 * Optional (with the cursor ops): empty a folder (ItemOperations
	 * EmptyFolderContents): every message in it deleted for good. cursor:
	 * the device's of that folder (in/out; NULL or "" when it has none),
	 * advanced so that nothing is reported back. 1 emptied, 0 no such
	 * folder, -1, MBX_PENDING.
	 */
	int (*empty)(struct mbx_backend *b, const char *folder_id, char *cursor,
	             const char **errstr_r);

	/*
	 * Optional, all three or none (with the cursor ops): the device
	 * changes the folder hierarchy (FolderCreate, FolderUpdate,
	 * FolderDelete). Each returns 1 done, -1, MBX_PENDING, or a refusal
	 * (enum mbx_folder_refusal); performed once per request (reruns
	 * answer the recorded result), and list_folders shows the change at
	 * once. Ids survive a rename; the children of a renamed folder
	 * follow it, those of a deleted one go with it.
	 *
	 * folder_create: a mail folder name under parent_id ("0": the top);
	 * new_id_r (MBX_ID_MAX + 1 bytes) gets its id.
	 * folder_rename: folder id renamed to name and/or moved under
	 * parent_id. folder_delete: folder id and its messages deleted.
	 */
	int (*folder_create)(struct mbx_backend *b, const char *parent_id, const char *name,
	                     char *new_id_r, const char **errstr_r);
	int (*folder_rename)(struct mbx_backend *b, const char *id, const char *parent_id,
	                     const char *name, const char **errstr_r);
	int (*folder_delete)(struct mbx_backend *b, const char *id, const char **errstr_r);

	/*
	 * Optional: search the mailbox (struct mbx_search above) into out.
	 * The same answer on every rerun of one request. 1, 0 when a folder
	 * asked is unknown, -1, MBX_PENDING. NULL: mbx_search's generic path
	 * over list_items and fetch (the quarantine mailbox's one alert).
	 */
	int (*search)(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
	              const char **errstr_r);

	/*
	 * Optional, both or none (with the cursor ops): the objects of PIM
	 * folders (struct mbx_object above).
	 *
	 * fetch_object: item's object into out: 1, 0 no such item, -1,
	 * MBX_PENDING.
	 *
	 * put_object: write len bytes of data as an object of folder_id: a
	 * new one when item_id is NULL (name: the name it should have on the
	 * server, its UID, which a backend may not use; new_id_r,
	 * MBX_ID_MAX + 1 bytes, gets its id), else
	 * in place of item_id, only when its version is still etag (NULL:
	 * whatever it is) and the device has seen it (it did not change on the
	 * server after the point cursor stands for: the server's version wins,
	 * as Exchange's default conflict resolution). cursor (in/out, as in
	 * set_flags): advanced so that the write is not reported back to the
	 * device that made it.
	 * cursor NULL (item_id given): a write that is not the device's
	 * (a meeting request mail answered onto the event the calendar holds):
	 * only etag guards it, and the device's next Sync reports it; remove()
	 * of a PIM folder's item takes a NULL cursor so too.
	 * Performed once per request (reruns answer the recorded result).
	 * 1 done, 0 no such item, MBX_CONFLICT (the object changed on the
	 * server: nothing written), MBX_REFUSED (the server would not take
	 * this object: a precondition, a permission), -1, MBX_PENDING.
	 */
	int (*fetch_object)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                    struct mbx_object *out, const char **errstr_r);
	int (*put_object)(struct mbx_backend *b, const char *folder_id, const char *item_id,
	                  const char *etag, const char *data, size_t len, const char *name,
	                  char *cursor, char *new_id_r, const char **errstr_r);
	/*
	 * Optional (with fetch_object and put_object): the item of calendar
	 * folder_id whose object holds the event uid (its UID property,
	 * compared octet by octet), its id into item_id_r (MBX_ID_MAX + 1
	 * bytes), so that an invitation answered again updates the event the
	 * calendar holds instead of adding a second one with that UID. Reruns
	 * answer from the request's results. 1 found, 0 none (also an item the
	 * backend does not know yet), -1, MBX_PENDING. NULL: never found.
	 */
	int (*find_uid)(struct mbx_backend *b, const char *folder_id, const char *uid,
	                char *item_id_r, const char **errstr_r);

	/*
	 * Optional: look query (UTF-8, at most MBX_GAL_QUERY_MAX bytes) up in
	 * the global address list: the entries whose display name, first or
	 * last name, alias or address begin with it (MBX_GAL_PREFIX), or whose
	 * address is it (MBX_GAL_ADDRESS), case-insensitively; at most max
	 * (up to MBX_GAL_MAX) into out, with their pictures when
	 * picture_max > 0 (bytes; larger ones flagged, not given). Several
	 * lookups in one request are answered in the order asked on every
	 * rerun. 1, -1, MBX_PENDING. NULL: no address list.
	 */
	int (*gal_search)(struct mbx_backend *b, const char *query, enum mbx_gal_match how,
	                  size_t max, size_t picture_max, struct mbx_gal_out *out,
	                  const char **errstr_r);
};

/*
 * Ops for backends that have no e-mail items (the DAV backend, the
 * directory): each refuses with -1 and "not an e-mail folder" (changes,
 * set_flags and remove "no such folder": a backend without folders).
 */
int mbx_no_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
                      size_t *n_r, const char **errstr_r);
/* list_folders of a backend without folders (a union's directory part): none, 0. */
int mbx_no_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                   const char **errstr_r);
int mbx_no_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id,
                 struct mbx_email *out, const char **errstr_r);
int mbx_no_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
                    const char **errstr_r);
int mbx_no_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
                     int flagged, char *cursor, const char **errstr_r);
int mbx_no_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
                   const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r);
int mbx_no_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
                  char *cursor, const char **errstr_r);

/* Every backend's struct begins with this header. */
struct mbx_backend {
	const struct mbx_ops *ops;
};

/* Dispatchers, so that callers never touch the table. */
int mbx_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                     const char **errstr_r);
int mbx_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
                   size_t *n_r, const char **errstr_r);
int mbx_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id,
              struct mbx_email *out, const char **errstr_r);
int mbx_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
                 const char **errstr_r);
/* Empty a folder (mbx_ops.empty); -1 with *errstr_r when the backend has no such op. */
int mbx_empty(struct mbx_backend *b, const char *folder_id, char *cursor, const char **errstr_r);
/*
 * Search the mailbox: the backend's op, or, without one, every item of the
 * folders listed and fetched and matched here (a small mailbox only).
 * 1, 0 (an unknown folder), -1, MBX_PENDING.
 */
int mbx_search(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
               const char **errstr_r);
/*
 * Whether the fetched item e matches q's words and date bounds (the
 * generic path and the memory backend): every word in its subject, sender,
 * recipients or plain body, or anywhere in its raw message, ASCII
 * case-insensitively.
 */
bool mbx_search_matches(const struct mbx_search *q, const struct mbx_email *e);
/* Whether the backend owns change cursors (mbx_ops.changes and its two writes). */
bool mbx_has_cursor(const struct mbx_backend *b);
int mbx_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
                const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r);
int mbx_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
                  int flagged, char *cursor, const char **errstr_r);
int mbx_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
               char *cursor, const char **errstr_r);
/* One part of an item (mbx_ops.fetch_part); 0 when the backend has no such op. */
int mbx_fetch_part(struct mbx_backend *b, const char *folder_id, const char *item_id,
                   const char *section, uint64_t offset, uint64_t max, struct mbx_part *out,
                   const char **errstr_r);
/* Drop the request's part windows (mbx_ops.forget_parts); NULL-safe, a no-op without the op. */
void mbx_forget_parts(struct mbx_backend *b);
/* Send a message (mbx_ops.send); -1 with *errstr_r when the backend has no such op. */
int mbx_send(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
             struct mbx_send_out *out, const char **errstr_r);
/* Whether the backend sends mail (mbx_ops.send). */
bool mbx_can_send(const struct mbx_backend *b);
/* Mark an item answered or forwarded (mbx_ops.mark_answered); 0 without the op. */
int mbx_mark_answered(struct mbx_backend *b, const char *folder_id, const char *item_id,
                      bool forwarded, const char **errstr_r);
/* Move an item (mbx_ops.move); -1 without the op. */
int mbx_move(struct mbx_backend *b, const char *src_id, const char *item_id, const char *dst_id,
             char *cursor, char *new_id_r, const char **errstr_r);
/* Whether the backend changes folders (mbx_ops.folder_create and co.). */
bool mbx_can_change_folders(const struct mbx_backend *b);
/* Folder changes (mbx_ops.folder_*); -1 without the ops. */
int mbx_folder_create(struct mbx_backend *b, const char *parent_id, const char *name,
                      char *new_id_r, const char **errstr_r);
int mbx_folder_rename(struct mbx_backend *b, const char *id, const char *parent_id,
                      const char *name, const char **errstr_r);
int mbx_folder_delete(struct mbx_backend *b, const char *id, const char **errstr_r);
/* The folder with this id, or NULL (also when the folders cannot be listed or are pending). */
const struct mbx_folder *mbx_folder_find(struct mbx_backend *b, const char *folder_id);
/*
 * The folder with this id: 1 and *folder_r, 0 when there is none, -1 when the
 * folders cannot be listed, MBX_PENDING when they are being fetched.
 */
int mbx_folder_lookup(struct mbx_backend *b, const char *folder_id,
                      const struct mbx_folder **folder_r);
/*
 * Call cb(arg) when the backend's outstanding work is done (at once, before
 * returning, for a backend without wait). Exactly once.
 */
void mbx_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg);
/* A run of the request starts (mbx_ops.begin), the request is answered (end); NULL-safe. */
void mbx_begin(struct mbx_backend *b);
void mbx_end(struct mbx_backend *b);
/* The request waits on its peer: the backend gives back what it holds (mbx_ops.release). */
void mbx_release(struct mbx_backend *b);
/* A PIM object (mbx_ops.fetch_object); -1 without the op. */
int mbx_fetch_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
                     struct mbx_object *out, const char **errstr_r);
/* Write a PIM object (mbx_ops.put_object); -1 without the op. */
int mbx_put_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
                   const char *etag, const char *data, size_t len, const char *name, char *cursor,
                   char *new_id_r, const char **errstr_r);
/* The calendar item holding the event uid (mbx_ops.find_uid); 0 without the op. */
int mbx_find_uid(struct mbx_backend *b, const char *folder_id, const char *uid, char *item_id_r,
                 const char **errstr_r);
/* Look the global address list up (mbx_ops.gal_search); without the op: no entry, 1. */
int mbx_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
                   size_t picture_max, struct mbx_gal_out *out, const char **errstr_r);
/* Whether the backend has a global address list. */
bool mbx_has_gal(const struct mbx_backend *b);
/* Whether the backend serves PIM objects (fetch_object and put_object). */
bool mbx_has_objects(const struct mbx_backend *b);
/* Whether the backend may answer MBX_PENDING (it has a wait op). */
bool mbx_may_pend(const struct mbx_backend *b);
/* Destroy a backend; sets *bp to NULL. NULL is fine. */
void mbx_destroy(struct mbx_backend **bp);

/* ---- The virtual quarantine mailbox (mailbox_quarantine.c) ---- */

/*
 * The alert's configuration. NULL fields take the English defaults in
 * mailbox_quarantine.c; templates carry the placeholders of the notices'
 * renderer (notice/render.h: {account}, {device_id}, {device_type}, {model},
 * {os}, {user_agent}, {imei}, {eas_version}, {state} and {contact}; {{ is a
 * literal brace). Values are HTML-escaped in the HTML body. The Discovery
 * texts are used when the state is "Discovery".
 */
struct mbx_quarantine_config {
	const char *sender; /* "From:"; NULL: "abqd <postmaster@localhost>" */
	const char *subject;
	const char *body_plain;
	const char *body_html;
	const char *discovery_subject;
	const char *discovery_body_plain;
	const char *discovery_body_html;
	int64_t date; /* the alert's DateReceived; 0: the device's first_seen is unknown, use 0 */
};

/* Folder ids of the quarantine mailbox: they carry abqd's prefix (commands.h). */
#define MBX_Q_INBOX_ID "abq-inbox"

/*
 * A new virtual mailbox for one device: Inbox holding the alert, and empty
 * Drafts, Deleted Items, Sent Items and Outbox, the alert rendered from cfg
 * with the device's facts. cfg and facts are copied.
 * The alert's server id is stable for a device (derived from the DeviceId).
 */
struct mbx_backend *mbx_quarantine_new(const struct mbx_quarantine_config *cfg,
                                       const struct notice_facts *facts);

/*
 * The server ids of the quarantine mailbox's folders, the same for every
 * device: *ids_r points at a static array of that many ids. For the daemon,
 * which has a newly allowed phone delete them when it hands it the real
 * folders.
 */
size_t mbx_quarantine_folder_ids(const char *const **ids_r);

#endif
