/*
 * commands.h: the ActiveSync command layer over a mailbox backend (no I/O).
 *
 * mbx_serve() answers one EAS command (MS-ASCMD) from a mailbox backend
 * (mailbox.h): Provision, Settings, FolderSync, Sync, GetItemEstimate, Ping,
 * ItemOperations, and every other command with that command's own failure
 * status (the table at the top of commands.c). It touches no socket, file or
 * clock: the caller passes the request body, the backend, the time, and an
 * accessor through which the sync state is read and written (serve.c keeps
 * it in the store: abq_store_syncstate_*). A Ping is not held here: the
 * answer says "hold for N seconds, then send this body", and the daemon runs
 * the timer (and may answer earlier with mbx_start_over_body()).
 *
 * Sync keys, and the quarantine mailbox's folder ids, carry abqd's prefix
 * "abq-", so that once a device is allowed the daemon can recognise a
 * request still speaking to the virtual mailbox (mbx_request_has_key,
 * mbx_key_is_ours) and answer it with "start over".
 */
#ifndef ABQ_MAILBOX_COMMANDS_H
#define ABQ_MAILBOX_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eas/request.h"
#include "mailbox/mailbox.h"

struct wbxml_node;

struct abq_prov_policy;

/* The prefix of every sync key (and quarantine folder id) abqd hands out. */
#define MBX_KEY_PREFIX "abq-"

/* The sync-state collection names beside folder ids. */
#define MBX_STATE_FOLDERSYNC "foldersync"
#define MBX_STATE_PING       "ping"
#define MBX_STATE_SYNC       "sync"

/*
 * Where the sync state lives: opaque blobs keyed by (account, device_id,
 * collection), collection being a folder id, "foldersync" or "ping".
 * get: 1 with *blob_r malloc'd (the layer frees it) and *len_r, 0 when there is
 * none, -1 on failure, or MBX_PENDING (mailbox.h: the driver of run.h
 * started reading it; mbx_serve then stops and is run again). put and del: 0
 * or -1. del with collection NULL removes every collection of the device. A
 * failure makes mbx_serve answer HTTP 500 (nothing half-done reaches the
 * phone). serve.c maps these to abq_store_syncstate_get/put/delete; run.c
 * stages the writes and reads through its asynchronous accessor.
 */
struct mbx_state_accessor {
	void *arg;
	int (*get)(void *arg, const char *account, const char *device_id, const char *collection,
	           char **blob_r, size_t *len_r);
	int (*put)(void *arg, const char *account, const char *device_id, const char *collection,
	           const char *blob, size_t len);
	int (*del)(void *arg, const char *account, const char *device_id, const char *collection);
	/*
	 * SendMail's ClientId (below); NULL: ClientIds are not remembered (the
	 * quarantine mailbox, which sends nothing).
	 */
	int (*client_id)(void *arg, const char *account, const char *device_id,
	                 const char *client_id, int op);
};

/*
 * The ClientId of SendMail, SmartReply and SmartForward (14.0+: the WBXML's
 * ClientId, unique per message for the device; before 14.0 there is none and
 * nothing is remembered), so that a request a phone repeats after losing the
 * answer is not sent twice (store.h abq_store_clientid_*). Before a message
 * is sent its ClientId is reserved (MBX_CLIENTID_RESERVE): MBX_CLIENTID_NEW
 * sends it, MBX_CLIENTID_DONE (sent before) answers Status 118 without
 * sending, MBX_CLIENTID_BUSY (another request is sending it now) and -1 (no
 * store) answer 111, so the phone tries again later; nothing is lost, nothing
 * sent twice. Once the submission answered: MBX_CLIENTID_SENT when it went
 * out, MBX_CLIENTID_RELEASE when it did not (any refusal, 111 included), so
 * the phone's retry is sent; these answer 0 or -1 (logged by the accessor;
 * the answer to the phone stands). Every op may answer MBX_PENDING (run.h
 * answers each op once per request). A ClientId empty or longer than
 * MBX_CLIENTID_MAX bytes is not remembered.
 */
#define MBX_CLIENTID_MAX 128
enum mbx_client_id_op { MBX_CLIENTID_RESERVE, MBX_CLIENTID_SENT, MBX_CLIENTID_RELEASE };
#define MBX_CLIENTID_NEW  1
#define MBX_CLIENTID_DONE 2
#define MBX_CLIENTID_BUSY 3

/*
 * Contacts, calendars and tasks: the conversions between a DAV object (a
 * vCard, an iCalendar object) and the EAS item of its class, supplied by
 * the caller (native mode: src/pim's, pim_codec) so that this layer keeps
 * no format of its own. to_eas writes the item's fields under appdata (an
 * ApplicationData or Properties element); from_eas makes the object the
 * device's ApplicationData describes: a new one (old NULL; *uid_r gets its
 * UID, the name the server will know it by), or old with the device's
 * fields applied and everything else it holds kept. Both 0, or -1 with
 * *errstr (a static message). span (NULL: calendars are not filtered by
 * date) gives an event object's span for FilterType: its start and its end,
 * a series' from its first start to its last occurrence's end
 * (MBX_SPAN_OPEN when it recurs for ever); 0, or -1 when it cannot be read.
 * remove_instance (NULL: such a Delete removes nothing) makes old with the
 * occurrence o->instance_id names taken out of its series (an EXDATE, its
 * exception dropped): 0, or -1 (not a series, no such InstanceId).
 */
struct mbx_pim_opts {
	int version;         /* protocol version x10: 121, 140, 141, 160, 161 */
	int body_type;       /* AirSyncBase:Type the device prefers (1 plain, 2 HTML, 3 RTF) */
	uint64_t truncation; /* TruncationSize; 0: none */
	const char *email;   /* the user's address (organizer or attendee), or NULL */
	/*
	 * Ghosting (MS-ASCMD 2.2.3.179): the elements the device's first Sync
	 * of the folder listed in Supported, as (code page << 8) | token; a
	 * Change that leaves out one of them deletes it, one left out that is
	 * not listed is kept. supported_given false: none was listed.
	 */
	bool supported_given;
	const uint16_t *supported;
	size_t n_supported;
	/*
	 * A 16.x Change or Delete of one occurrence of a series: its
	 * AirSyncBase:InstanceId as the device sent it (the occurrence's
	 * original start, a Compact DateTime), or NULL. from_eas then makes or
	 * replaces that occurrence's exception (RECURRENCE-ID) from the
	 * device's fields, the series kept.
	 */
	const char *instance_id;
};
/*
 * An answer to an invitation (mbx_pim_codec.respond), every string
 * malloc'd (mbx_meeting_answer_clear frees them): the calendar object to
 * keep (the user's PARTSTAT set; NULL for a decline), the iTIP REPLY for
 * the organizer, the organizer's address (NULL: none), the UID, the
 * SUMMARY ("" when none).
 */
struct mbx_meeting_answer {
	char *object, *reply, *organizer, *uid, *summary;
};
void mbx_meeting_answer_clear(struct mbx_meeting_answer *a);

#define MBX_PIM_SUPPORTED_MAX 128 /* elements of a Supported list kept */
#define MBX_PIM_UID_MAX       255
struct mbx_pim_codec {
	int (*to_eas)(enum mbx_class c, const char *data, size_t len, struct wbxml_node *appdata,
	              const struct mbx_pim_opts *o, const char **errstr);
	int (*from_eas)(enum mbx_class c, const struct wbxml_node *appdata, const char *old,
	                size_t old_len, const struct mbx_pim_opts *o, char **out, size_t *out_len,
	                char uid_r[MBX_PIM_UID_MAX + 1], const char **errstr);
	/*
	 * A mail's invitation (its text/calendar part, ics[0..len)) as the
	 * Email:MeetingRequest under appdata: 1 for a REQUEST, 2 for a CANCEL,
	 * or -1 with *errstr (nothing written; the mail is then a plain one).
	 * NULL: mails are never shown as meeting requests.
	 */
	int (*meeting)(const char *ics, size_t len, struct wbxml_node *appdata,
	               const struct mbx_pim_opts *o, const char **errstr);
	/*
	 * MeetingResponse: the user's answer (1 accept, 2 tentative, 3
	 * decline) to the invitation ics (an iTIP REQUEST, or a calendar
	 * object the user was invited to) at now, into *out (zeroed first);
	 * instance: one occurrence's InstanceId (16.x; NULL: the whole
	 * meeting), whose answer keeps the object (a decline of it too).
	 * 0, or -1 with *errstr when ics cannot be answered. NULL: meetings
	 * cannot be answered (MeetingResponse Status 3).
	 */
	int (*respond)(const char *ics, size_t len, const char *user, int answer,
	               const char *instance, int64_t now, struct mbx_meeting_answer *out,
	               const char **errstr);
	/*
	 * MeetingResponse: 1 when the calendar object held[0..held_len) is a
	 * later revision of the meeting than the invitation ics[0..len)
	 * (RFC 5546: the higher SEQUENCE, at equal SEQUENCE the later
	 * DTSTAMP), 0 when it is not or either cannot be read. NULL: the
	 * invitation answered is always taken as the newer.
	 */
	int (*newer)(const char *held, size_t held_len, const char *ics, size_t len);
	int (*span)(enum mbx_class c, const char *data, size_t len, int64_t *start_r,
	            int64_t *end_r, const char **errstr);
	int (*remove_instance)(enum mbx_class c, const char *old, size_t old_len,
	                       const struct mbx_pim_opts *o, char **out, size_t *out_len,
	                       const char **errstr);
};

struct mbx_serve_in {
	enum eas_cmd cmd;
	const char *version; /* MS-ASProtocolVersion ("14.1"); NULL counts as 14.1 */
	const uint8_t *body; /* the WBXML request body (may be empty) */
	size_t body_len;
	const char *account;   /* normalised account: key of the sync state */
	const char *device_id; /* key of the sync state */
	const char *email;     /* UserInformation's address; NULL: the account */
	struct mbx_backend *backend;
	struct mbx_state_accessor state;
	/*
	 * Policy keys for Provision: phase 1 (temporary) and phase 2 (final);
	 * NULL: derived from the DeviceId and now, never 0.
	 */
	uint32_t (*policy_key)(void *arg, bool final);
	void *policy_key_arg;
	/* The policy Provision hands out; NULL: one that imposes nothing. */
	const struct abq_prov_policy *policy;
	int64_t now;       /* seconds since the epoch (nonce of new sync keys) */
	int heartbeat_min; /* allowed Ping heartbeat range, seconds; 0: 60 */
	int heartbeat_max; /* 0: 3540 */
	/*
	 * A remote wipe an administrator asked for: 0 none, 1 the whole device
	 * (RemoteWipe), 2 the account's data only (AccountOnlyRemoteWipe, 16.1).
	 * Provision then carries the directive, even when its request is empty.
	 */
	int wipe;
	/*
	 * GetAttachment's AttachmentName (the query's): a FileReference of an
	 * Attachment this layer listed; NULL when there is none.
	 */
	const char *attachment_name;
	/*
	 * SendMail, SmartReply and SmartForward before 14.0 (the body is the
	 * MIME message; the rest is in the query): SaveInSent=T, and the
	 * original's CollectionId and ItemId, or LongId. NULL when absent.
	 */
	bool save_in_sent;
	const char *collection_id;
	const char *item_id;
	const char *long_id;
	/*
	 * The caller can send a streamed answer (mbx_serve_out.stream): an
	 * attachment larger than MBX_STREAM_CHUNK is then not held whole.
	 */
	bool may_stream;
	/*
	 * The conversions of contacts, calendars and tasks; NULL: folders of
	 * those classes are not synced (Sync Status 5, server error).
	 */
	const struct mbx_pim_codec *pim;
};

/* A streamed part's window: a multiple of 3, so that base64 pieces join. */
#define MBX_STREAM_CHUNK (1023 * 1024)

/*
 * A streamed answer (mbx_serve_in.may_stream): the phone gets body (the
 * prefix, body_len bytes, maybe 0), then the part's total decoded bytes,
 * read with mbx_fetch_part(folder, item, section, offset, MBX_STREAM_CHUNK)
 * window by window within one mbx_begin/mbx_end of the backend (each window
 * dropped with mbx_forget_parts once written), base64-encoded when base64,
 * then suffix. GetAttachment (raw, its type in content_type) and
 * ItemOperations Fetch of a FileReference without a Range (the Data
 * string's base64: it is STR_I, so the prefix ends with its STR_I token and
 * the suffix starts with its NUL).
 */
struct mbx_stream {
	bool on;
	bool base64;
	char folder[MBX_ID_MAX + 1], item[MBX_ID_MAX + 1], section[MBX_ID_MAX + 1];
	uint64_t total;
	uint8_t *suffix; /* malloc'd (NULL when empty) */
	size_t suffix_len;
};

#define MBX_OUT_HEADERS 4

/* The most folders one Ping waits on (more are ignored). */
#define MBX_PING_FOLDERS_MAX 300

struct mbx_serve_out {
	int http_status; /* 200, 400, 500, ... */
	/*
	 * Static; NULL when there is no body. GetAttachment's (the part's own
	 * type) lives in the body's allocation, after body_len bytes and a NUL:
	 * whoever keeps the body keeps it.
	 */
	const char *content_type;
	uint8_t *body; /* malloc'd WBXML; free with mbx_serve_out_clear */
	size_t body_len;
	const char *headers[MBX_OUT_HEADERS][2]; /* extra (name, value), static strings */
	size_t n_headers;
	int hold_seconds; /* Ping: > 0 hold this long, then send body */
	/*
	 * A held Ping or Sync: the folder ids it waits on (malloc'd, as the
	 * strings, at most MBX_PING_FOLDERS_MAX), so that the daemon can run it
	 * again when one changes (native mode's push).
	 */
	char **watch;
	size_t n_watch;
	bool devinfo_seen; /* the body carried Settings:DeviceInformation/Set */
	/* Provision: the device confirmed in->wipe (its Status 1): 1 or 2 as in->wipe. */
	int wipe_acked;
	/*
	 * Provision phase 2: the Status the device acknowledged the policy with
	 * (MS-ASPROV 2.2.2.54.1: 1 applied, 2 partially applied, 3 not applied,
	 * 4 externally managed); 0 when the request was not a phase 2 of a known
	 * PolicyType or its Status is missing or none of these.
	 */
	int provision_status;
	const char *detail; /* a static note for the debug log, or NULL */
	/*
	 * A backend op or a state read answered MBX_PENDING: nothing else is set
	 * (no status, no body); serve the same request again once it is done
	 * (run.h does).
	 */
	bool pending;
	struct mbx_stream stream; /* on: the answer goes on past body (above) */
};

/* A streamed answer's whole length (its Content-Length). */
uint64_t mbx_stream_length(const struct mbx_serve_out *out);

/*
 * Answer one command. Returns 0 with *out filled (free it with
 * mbx_serve_out_clear), MBX_PENDING with only out->pending set when a
 * backend op or a state read is pending (run it again later: run.h), or -1
 * when in is unusable (no backend, no account);
 * input from the phone is never a -1: a malformed body is an HTTP 400 or the
 * command's protocol-error status. OPTIONS and the 2.5-only commands are not
 * served here (HTTP 400): the daemon proxies OPTIONS.
 */
int mbx_serve(const struct mbx_serve_in *in, struct mbx_serve_out *out);
void mbx_serve_out_clear(struct mbx_serve_out *out);

/* Whether a sync key (or folder id) is one abqd handed out. */
bool mbx_key_is_ours(const char *key);

/*
 * The sync keys a request carries: FolderSync's SyncKey, Sync's and
 * GetItemEstimate's Collection SyncKeys, and (for Ping) the folder Ids.
 * Returns the number found (at most max, copied as new strings into keys[],
 * the caller frees them), or -1 when the body is not WBXML.
 */
int mbx_request_sync_keys(enum eas_cmd cmd, const uint8_t *body, size_t len, char **keys,
                          size_t max);
/*
 * Whether the request still speaks to the virtual mailbox: 1 when one of the
 * keys above is ours, 0 when none is, -1 when the body is not WBXML.
 */
int mbx_request_has_key(enum eas_cmd cmd, const uint8_t *body, size_t len);

/*
 * The "start over" answer for a device that has left the virtual mailbox:
 * FolderSync Status 9, Sync Status 3 for each collection of the request
 * (SyncKey 0), GetItemEstimate Status 4 (invalid sync key) per
 * collection, Ping Status 7. Fills out (HTTP 200, WBXML) and returns 0, or
 * -1 for any other command.
 */
int mbx_start_over_body(enum eas_cmd cmd, const char *version, const uint8_t *req_body,
                        size_t req_len, struct mbx_serve_out *out);

/*
 * Ping Status 2 naming the folders that changed (the daemon's early answer
 * to a held Ping when the mailbox itself changed). Returns 0 or -1.
 */
int mbx_ping_changed_body(const char *const *folder_ids, size_t n, struct mbx_serve_out *out);

#endif
