/*
 * mailbox_memory.c: a mailbox with IMAP's model, in memory
 * (mailbox_memory.h), the reference backend of the change-cursor ops.
 *
 * Each folder keeps its messages sorted by UID, expunged ones included as
 * tombstones carrying the MODSEQ of their expunge: changes() is QRESYNC's
 * "SELECT (QRESYNC (uidvalidity modseq))" in memory: the flag changes and
 * the vanished UIDs since the cursor's MODSEQ, then the UIDs the cursor
 * does not hold.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>

#include "lib/uidset.h"
#include "lib/util.h"
#include "mailbox/mailbox_memory.h"
#include "mime/msgconv.h"

/* Own changes one cursor remembers (beyond: a change may be echoed, harmlessly). */
#define OWN_MAX 64

struct mm_msg {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;
	bool expunged;
	int64_t date;
	char *from, *subject;
	char *raw; /* the message's bytes (append_raw), or NULL */
	size_t raw_len;
	struct msgconv_msg *parsed; /* raw parsed ahead (mbx_memory_set_parse_ahead), or NULL */
	int64_t start, end;         /* an event's span as a map knows it (0 0: unknown) */
};

struct mm_folder {
	char id[MBX_ID_MAX + 1], parent[MBX_ID_MAX + 1], name[128];
	int type;
	uint32_t uidvalidity, uidnext;
	struct mm_msg *m; /* sorted by uid */
	size_t n, cap;
};

struct mm {
	struct mbx_backend base;
	struct mm_folder *f;
	size_t nf;
	struct mbx_folder *list; /* list_folders' view of f */
	uint64_t modseq;         /* the mailbox's counter (one for all folders) */
	bool pend, primed;
	bool parse_ahead; /* fetch gives raw with its parse (mbx_email.parsed) */
	struct {
		char *mime;
		size_t len;
	} * sent; /* the messages sent, in order */
	size_t n_sent;
	enum mbx_send_result send_result;
	/* the request's send, answered again to its reruns (as the IMAP backend does) */
	bool send_done;
	struct mbx_send_out send_out;
	/* the address list (mbx_memory_add_gal) */
	struct mbx_gal_entry *gal;
	size_t n_gal;
	/* the request's put_objects, in the order made, answered again to its reruns */
	struct mm_put {
		int rv;
		char id[MBX_ID_MAX + 1];
		char cursor[MBX_CURSOR_MAX + 1];
	} * puts;
	size_t n_puts, next_put;
	/* the request's find_uids, answered again to its reruns (as the DAV backend does) */
	struct mm_found {
		int rv;
		char id[MBX_ID_MAX + 1];
	} * founds;
	size_t n_founds, next_found;
};

/* A decoded cursor. */
struct cur {
	uint32_t uidvalidity;
	uint64_t modseq;
	int64_t since;
	struct uidset have;
	struct {
		uint32_t uid;
		uint64_t modseq;
	} own[OWN_MAX];
	size_t n_own;
};

static const struct mbx_ops mm_ops, mm_ops_list;

static struct mm_folder *
folder_of(struct mm *m, const char *id)
{
	for (size_t i = 0; i < m->nf; i++) {
		if (strcmp(m->f[i].id, id) == 0)
			return &m->f[i];
	}
	return NULL;
}

/* The message with uid (expunged too), or NULL. */
static struct mm_msg *
msg_of(struct mm_folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->m[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n && f->m[lo].uid == uid ? &f->m[lo] : NULL;
}

/* The index of the first message with a UID >= uid. */
static size_t
msg_index(const struct mm_folder *f, uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->m[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A live message of item id ("<uid>"), or NULL (also for \Deleted ones). */
static struct mm_msg *
item_of(struct mm_folder *f, const char *id)
{
	long long uid;
	const char *e;
	struct mm_msg *msg;

	if (parse_int(id, 1, UINT32_MAX, &uid, &e) < 0)
		return NULL;
	msg = msg_of(f, (uint32_t)uid);
	return msg && !msg->expunged && !(msg->flags & MBX_MEM_DELETED) ? msg : NULL;
}

/* ---- the cursor ---- */

/* Decode a cursor text: 0, or -1 when it is not one of ours. */
static int
cur_parse(const char *text, struct cur *c)
{
	char *copy = xstrdup(text), *save = NULL, *uv, *ms, *si, *set, *own;
	const char *e;
	long long v;
	int rv = -1;

	memset(c, 0, sizeof(*c));
	uv = strtok_r(copy, " ", &save);
	ms = strtok_r(NULL, " ", &save);
	si = strtok_r(NULL, " ", &save);
	set = strtok_r(NULL, " ", &save);
	own = strtok_r(NULL, " ", &save);
	if (set == NULL || strtok_r(NULL, " ", &save) != NULL)
		goto out;
	if (parse_int(uv, 1, UINT32_MAX, &v, &e) < 0)
		goto out;
	c->uidvalidity = (uint32_t)v;
	if (parse_int(ms, 0, INT64_MAX, &v, &e) < 0)
		goto out;
	c->modseq = (uint64_t)v;
	if (parse_int(si, 0, INT64_MAX, &v, &e) < 0)
		goto out;
	c->since = v;
	if (strcmp(set, "-") != 0 && uidset_parse(&c->have, set, &e) < 0)
		goto out;
	/*
	 * UIDs here stop below UINT32_MAX (append refuses at uidnext
	 * UINT32_MAX), so the cursors written never hold it: a set reaching it
	 * ('*', "1:*", 4294967295) would read as "the device has every UID to
	 * come" and hide all new mail. Not one of ours.
	 */
	if (uidset_max(&c->have) == UINT32_MAX)
		goto out;
	/* every own change (p is NULL after the first: strtok_r goes on from s2) */
	for (char *p = own, *s2 = NULL, *tok; own && (tok = strtok_r(p, ",", &s2)); p = NULL) {
		unsigned long long u, m;
		char x;
		if (c->n_own >= OWN_MAX || sscanf(tok, "%llu@%llu%c", &u, &m, &x) != 2 || u == 0 ||
		    u > UINT32_MAX)
			goto out;
		c->own[c->n_own].uid = (uint32_t)u;
		c->own[c->n_own++].modseq = m;
	}
	rv = 0;
out:
	if (rv < 0)
		uidset_clear(&c->have);
	free(copy);
	return rv;
}

/*
 * Encode a cursor into out (MBX_CURSOR_MAX + 1 bytes): 0, or -1 when it
 * does not fit (then out is unchanged). Own changes that do not fit are
 * dropped (they may be reported back: a harmless repeat).
 */
static int
cur_format(const struct cur *c, char out[MBX_CURSOR_MAX + 1])
{
	char *set = uidset_format(&c->have);
	struct sbuf b = {0};
	int rv = -1;

	sbuf_printf(&b, "%" PRIu32 " %" PRIu64 " %" PRId64 " %s", c->uidvalidity, c->modseq,
	            c->since, *set ? set : "-");
	for (size_t i = 0; i < c->n_own; i++) {
		char t[48];
		int n = snprintf(t, sizeof(t), "%s%" PRIu32 "@%" PRIu64, i ? "," : " ",
		                 c->own[i].uid, c->own[i].modseq);
		if (b.len + (size_t)n > MBX_CURSOR_MAX)
			break;
		sbuf_add(&b, t);
	}
	if (b.len <= MBX_CURSOR_MAX) {
		memcpy(out, b.p, b.len + 1);
		rv = 0;
	}
	free(b.p);
	free(set);
	return rv;
}

/* Whether the device made this very change (uid at modseq). */
static bool
cur_own(const struct cur *c, uint32_t uid, uint64_t modseq)
{
	for (size_t i = 0; i < c->n_own; i++) {
		if (c->own[i].uid == uid && c->own[i].modseq == modseq)
			return true;
	}
	return false;
}

/* Remember the device's own change to uid (replacing an older one of it). */
static void
cur_note_own(struct cur *c, uint32_t uid, uint64_t modseq)
{
	size_t i;

	for (i = 0; i < c->n_own && c->own[i].uid != uid; i++)
		;
	if (i == c->n_own) {
		if (c->n_own >= OWN_MAX)
			return;
		c->n_own++;
	}
	c->own[i].uid = uid;
	c->own[i].modseq = modseq;
}

/* ---- pending ---- */

/* Whether this op must wait (the first of a request, in pend mode). */
static bool
must_wait(struct mm *m)
{
	return m->pend && !m->primed;
}

static void
mm_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	struct mm *m = (struct mm *)b;

	m->primed = true; /* "connected": everything answers from now on */
	cb(arg);
}

static void
mm_begin(struct mbx_backend *b)
{
	((struct mm *)b)->next_put = 0;
	((struct mm *)b)->next_found = 0;
}

static void
mm_end(struct mbx_backend *b)
{
	((struct mm *)b)->primed = false;
	((struct mm *)b)->send_done = false;
	free(((struct mm *)b)->puts);
	((struct mm *)b)->puts = NULL;
	((struct mm *)b)->n_puts = ((struct mm *)b)->next_put = 0;
	free(((struct mm *)b)->founds);
	((struct mm *)b)->founds = NULL;
	((struct mm *)b)->n_founds = ((struct mm *)b)->next_found = 0;
}

/* ---- ops ---- */

static int
mm_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                const char **errstr_r)
{
	struct mm *m = (struct mm *)b;

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	*folders_r = m->list;
	*n_r = m->nf;
	return 0;
}

static int
mm_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
              size_t *n_r, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	size_t n = 0;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	*items_r = f->n ? xcalloc(f->n, sizeof(**items_r)) : NULL;
	for (size_t i = f->n; i-- > 0;) { /* newest first, as changes() */
		const struct mm_msg *msg = &f->m[i];
		if (msg->expunged || (msg->flags & MBX_MEM_DELETED))
			continue;
		snprintf((*items_r)[n].id, sizeof((*items_r)[n].id), "%" PRIu32, msg->uid);
		(*items_r)[n++].version = msg->modseq;
	}
	*n_r = n;
	return 0;
}

/*
 * The message item_id of folder_id, for an op on one item: 1 and *msg_r,
 * 0 when there is no such item, -1 for an unknown folder, MBX_PENDING when
 * the op is to pend first.
 */
static int
lookup(struct mm *m, const char *folder_id, const char *item_id, struct mm_msg **msg_r,
       const char **errstr_r)
{
	struct mm_folder *f = folder_of(m, folder_id);

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	return (*msg_r = item_of(f, item_id)) != NULL ? 1 : 0;
}

/* Free a message's parse ahead. */
static void
parsed_free(struct mm_msg *msg)
{
	if (msg->parsed != NULL) {
		msgconv_msg_clear(msg->parsed);
		free(msg->parsed);
		msg->parsed = NULL;
	}
}

/* A real message's parse, made once as a native backend makes it ahead; NULL unreadable. */
static const struct msgconv_msg *
parsed_of(struct mm_msg *msg)
{
	struct msgconv_opts o = {.date_fallback = msg->date, .no_mime = true};
	const char *err;

	if (msg->parsed == NULL) {
		msg->parsed = xcalloc(1, sizeof(*msg->parsed));
		if (msgconv_parse(msg->raw, msg->raw_len, &o, msg->parsed, &err) != 0) {
			parsed_free(msg);
			return NULL;
		}
		msgconv_render(msg->parsed);
	}
	return msg->parsed;
}

static int
mm_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
         const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_msg *msg;
	int rv = lookup(m, folder_id, item_id, &msg, errstr_r);

	if (rv != 1)
		return rv;
	out->read = (msg->flags & MBX_MEM_SEEN) != 0;
	out->flagged = (msg->flags & MBX_MEM_FLAGGED) != 0;
	if (msg->raw != NULL) {
		/* a real message: the command layer reads it (mime/msgconv.h) */
		out->raw = xmalloc(msg->raw_len + 1);
		memcpy(out->raw, msg->raw, msg->raw_len);
		out->raw[msg->raw_len] = '\0';
		out->raw_len = msg->raw_len;
		out->size = msg->raw_len;
		out->internal_date = msg->date;
		if (m->parse_ahead)
			out->parsed = parsed_of(msg);
		return 1;
	}
	out->from = xstrdup(msg->from);
	out->to = xstrdup("alice@example.com");
	out->display_to = xstrdup("Alice");
	out->subject = xstrdup(msg->subject);
	out->date_received = msg->date;
	out->read = (msg->flags & MBX_MEM_SEEN) != 0;
	out->flagged = (msg->flags & MBX_MEM_FLAGGED) != 0;
	out->body_plain = xasprintf("Message %" PRIu32 ".", msg->uid);
	return 1;
}

/* STORE: the flags changed, with a new MODSEQ (0 when nothing changed). */
static uint64_t
store(struct mm *m, struct mm_msg *msg, unsigned set, unsigned clear)
{
	unsigned nf = (msg->flags | set) & ~clear;

	if (nf == msg->flags)
		return 0;
	msg->flags = nf;
	msg->modseq = ++m->modseq;
	return msg->modseq;
}

static int
mm_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
            const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_msg *msg;
	int rv = lookup(m, folder_id, item_id, &msg, errstr_r);

	if (rv != 1)
		return rv;
	store(m, msg, read ? MBX_MEM_SEEN : 0, read ? 0 : MBX_MEM_SEEN);
	return 1;
}

/* One reportable event since the cursor's MODSEQ. */
struct ev {
	uint64_t modseq;
	struct mm_msg *msg;
	enum { EV_DELETE, EV_GONE, EV_CHANGE } kind; /* GONE: \Deleted, out of the set */
};

static int
ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	return x->modseq < y->modseq ? -1 : x->modseq > y->modseq;
}

/* Append an item to a change list. */
static void
push(struct mbx_change_item **v, size_t *n, const struct mm_msg *msg, bool soft)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	struct mbx_change_item *it = &(*v)[(*n)++];
	memset(it, 0, sizeof(*it));
	snprintf(it->id, sizeof(it->id), "%" PRIu32, msg->uid);
	it->read = (msg->flags & MBX_MEM_SEEN) != 0;
	it->flagged = (msg->flags & MBX_MEM_FLAGGED) != 0;
	it->soft = soft;
	it->start = msg->start;
	it->end = msg->end;
}

/* Whether no live, undeleted message has a UID in lo..hi. */
static bool
all_dead(const struct mm_folder *f, uint32_t lo, uint32_t hi)
{
	for (size_t i = msg_index(f, lo); i < f->n && f->m[i].uid <= hi; i++) {
		if (!f->m[i].expunged)
			return false;
	}
	return true;
}

/*
 * Fill the holes of the set made only of UIDs that will never be reported
 * (expunged, or never assigned), so that the set stays a few ranges.
 */
static void
fill_dead_gaps(const struct mm_folder *f, struct uidset *s)
{
	for (size_t i = 0; i < s->n;) {
		uint32_t lo = i == 0 ? 1 : s->r[i - 1].hi + 1, hi = s->r[i].lo - 1;
		size_t before = s->n;
		if (lo <= hi && all_dead(f, lo, hi))
			(void)uidset_add_range(s, lo, hi);
		i = s->n < before ? i : i + 1;
	}
}

static int
mm_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
           const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct cur c;
	struct ev *ev = NULL;
	size_t nev = 0, room = w->size, nsoft = 0, nadd = 0;
	int64_t since;
	bool all_events = true;
	int rv = 1;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if (cursor == NULL) {
		memset(&c, 0, sizeof(c));
		c.uidvalidity = f->uidvalidity;
	} else if (cur_parse(cursor, &c) < 0) {
		return 0; /* not a cursor of ours: start over */
	} else if (c.uidvalidity != f->uidvalidity) {
		uidset_clear(&c.have);
		return 0; /* the folder was recreated: start over */
	}
	since = w->since < 0 ? c.since : w->since;

	/* Soft deletes: what the device has that a narrower window leaves out. */
	for (size_t i = 0; since > c.since && i < f->n; i++) {
		struct mm_msg *msg = &f->m[i];
		if (msg->expunged || (msg->flags & MBX_MEM_DELETED) || msg->date >= since ||
		    !uidset_contains(&c.have, msg->uid))
			continue;
		nsoft++;
		if (room == 0)
			continue;
		if (uidset_remove(&c.have, msg->uid) < 0)
			continue;
		push(&out->deletes, &out->n_deletes, msg, true);
		room--;
	}
	if (out->n_deletes == nsoft)
		c.since = since;
	/* Flag changes and expunges since the MODSEQ (CHANGEDSINCE, VANISHED). */
	for (size_t i = 0; i < f->n; i++) {
		struct mm_msg *msg = &f->m[i];
		if (msg->modseq <= c.modseq || !uidset_contains(&c.have, msg->uid) ||
		    cur_own(&c, msg->uid, msg->modseq))
			continue;
		if (!msg->expunged && !(msg->flags & MBX_MEM_DELETED) && msg->date < c.since)
			continue;
		ev = xrealloc(ev, (nev + 1) * sizeof(*ev));
		ev[nev].modseq = msg->modseq;
		ev[nev].msg = msg;
		ev[nev++].kind = msg->expunged                  ? EV_DELETE
		                 : msg->flags & MBX_MEM_DELETED ? EV_GONE
		                                                : EV_CHANGE;
	}
	if (nev > 1)
		qsort(ev, nev, sizeof(*ev), ev_cmp);
	for (size_t i = 0; i < nev; i++) {
		if (room == 0 || out->n_deletes < nsoft) {
			all_events = false;
			break;
		}
		if (ev[i].kind == EV_CHANGE) {
			push(&out->changed, &out->n_changed, ev[i].msg, false);
		} else {
			if (ev[i].kind == EV_GONE && uidset_remove(&c.have, ev[i].msg->uid) < 0) {
				all_events = false;
				break;
			}
			push(&out->deletes, &out->n_deletes, ev[i].msg, false);
		}
		c.modseq = ev[i].modseq;
		room--;
	}
	if (all_events && out->n_deletes >= nsoft)
		c.modseq = m->modseq;
	/* Adds: what the device does not have, newest first. */
	for (size_t i = f->n; i-- > 0;) {
		struct mm_msg *msg = &f->m[i];
		if (msg->expunged || (msg->flags & MBX_MEM_DELETED) || msg->date < since ||
		    uidset_contains(&c.have, msg->uid))
			continue;
		nadd++;
		if (room == 0 || !all_events || out->n_deletes < nsoft ||
		    uidset_add(&c.have, msg->uid) < 0)
			continue;
		push(&out->adds, &out->n_adds, msg, false);
		room--;
	}
	if (all_events && out->n_deletes >= nsoft)
		fill_dead_gaps(f, &c.have);
	/* Own changes the MODSEQ has passed are done with. */
	for (size_t i = 0; i < c.n_own;) {
		if (c.own[i].modseq <= c.modseq)
			c.own[i] = c.own[--c.n_own];
		else
			i++;
	}
	out->total = nsoft + nev + nadd;
	out->more_available = out->n_deletes + out->n_changed + out->n_adds < out->total;
	if (w->size == 0) {
		/* only counted: the cursor stays as it came */
		snprintf(out->cursor, sizeof(out->cursor), "%s", cursor ? cursor : "");
	} else if (cur_format(&c, out->cursor) < 0) {
		*errstr_r = "the cursor does not fit";
		rv = -1;
	}
	free(ev);
	uidset_clear(&c.have);
	return rv;
}

/* The device's flag change, not reported back. */
static int
mm_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
             int flagged, char *cursor, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg;
	struct cur c;
	unsigned set = 0, clear = 0;
	uint64_t ms;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if ((msg = item_of(f, item_id)) == NULL || cur_parse(cursor, &c) < 0)
		return 0;
	if (c.uidvalidity != f->uidvalidity || !uidset_contains(&c.have, msg->uid)) {
		uidset_clear(&c.have);
		return 0;
	}
	if (read >= 0)
		*(read ? &set : &clear) |= MBX_MEM_SEEN;
	if (flagged >= 0)
		*(flagged ? &set : &clear) |= MBX_MEM_FLAGGED;
	if ((ms = store(m, msg, set, clear)) != 0) {
		cur_note_own(&c, msg->uid, ms);
		(void)cur_format(&c, cursor);
	}
	uidset_clear(&c.have);
	return 1;
}

/* Expunge one message: its tombstone gets a new MODSEQ, which it returns. */
static uint64_t
expunge_one(struct mm *m, struct mm_msg *msg)
{
	msg->expunged = true;
	msg->modseq = ++m->modseq;
	free(msg->from);
	free(msg->subject);
	free(msg->raw);
	parsed_free(msg);
	msg->from = msg->subject = msg->raw = NULL;
	msg->raw_len = 0;
	return msg->modseq;
}

/* The device's delete: to the Deleted Items folder, or expunged; not reported back. */
static int
mm_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
          char *cursor, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id), *trash = NULL;
	struct mm_msg *msg;
	struct cur c;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if ((msg = item_of(f, item_id)) == NULL)
		return 0;
	if (cursor == NULL) {
		/* not the device's delete (mbx_ops.put_object): no cursor to pass it */
		store(m, msg, MBX_MEM_DELETED, 0);
		(void)expunge_one(m, msg);
		return 1;
	}
	if (cur_parse(cursor, &c) < 0)
		return 0;
	if (c.uidvalidity != f->uidvalidity || !uidset_contains(&c.have, msg->uid)) {
		uidset_clear(&c.have);
		return 0;
	}
	for (size_t i = 0; to_trash && i < m->nf; i++) {
		if (m->f[i].type == MBX_FOLDER_DELETED)
			trash = &m->f[i];
	}
	if (trash != NULL && trash != f && msg->raw != NULL) /* UID MOVE */
		mbx_memory_append_raw(b, trash->id, msg->raw, msg->raw_len, msg->date, msg->flags);
	else if (trash != NULL && trash != f)
		mbx_memory_append(b, trash->id, msg->from, msg->subject, msg->date, msg->flags);
	else
		store(m, msg, MBX_MEM_DELETED, 0);
	cur_note_own(&c, msg->uid, expunge_one(m, msg));
	(void)cur_format(&c, cursor);
	uidset_clear(&c.have);
	return 1;
}

/*
 * One part of a real message, decoded by msgconv (the whole message parsed
 * at every call: the memory backend holds messages whole anyway; the IMAP
 * backend fetches BODY[section] alone).
 */
static int
mm_fetch_part(struct mbx_backend *b, const char *folder_id, const char *item_id,
              const char *section, uint64_t offset, uint64_t max, struct mbx_part *out,
              const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg;
	char *data, *type;
	size_t len;
	int rv;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if ((msg = item_of(f, item_id)) == NULL || msg->raw == NULL)
		return 0;
	if ((rv = msgconv_part(msg->raw, msg->raw_len, section, &data, &len, &type, errstr_r)) <= 0)
		return rv;
	out->total = len;
	out->content_type = type;
	if (offset >= len) {
		out->data = xstrdup("");
		free(data);
		return 1;
	}
	out->len = (size_t)(max > 0 && max < len - offset ? max : len - offset);
	out->data = xmalloc(out->len + 1);
	memcpy(out->data, data + offset, out->len);
	out->data[out->len] = '\0';
	free(data);
	return 1;
}

/* The folder of type, or NULL. */
static struct mm_folder *
folder_of_type(struct mm *m, int type)
{
	for (size_t i = 0; i < m->nf; i++) {
		if (m->f[i].type == type)
			return &m->f[i];
	}
	return NULL;
}

/*
 * A copy of msg appended to dst (UID MOVE's or COPY's new message): its
 * UID there.
 */
static uint32_t
copy_to(struct mm *m, struct mm_msg *msg, struct mm_folder *dst)
{
	if (msg->raw != NULL)
		return mbx_memory_append_raw(&m->base, dst->id, msg->raw, msg->raw_len, msg->date,
		                             msg->flags);
	return mbx_memory_append(&m->base, dst->id, msg->from, msg->subject, msg->date, msg->flags);
}

/* Submission in memory: recorded as sent (or refused as set), SaveInSent appended to Sent. */
static int
mm_send(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
        struct mbx_send_out *out, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *sent;

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	if (m->send_done) {
		*out = m->send_out;
		return 1;
	}
	m->send_done = true;
	out->result = m->send_result;
	out->saved = false;
	m->send_out = *out;
	if (out->result != MBX_SEND_SENT)
		return 1;
	m->sent = xrealloc(m->sent, (m->n_sent + 1) * sizeof(*m->sent));
	m->sent[m->n_sent].mime = xmalloc(len + 1);
	memcpy(m->sent[m->n_sent].mime, mime, len);
	m->sent[m->n_sent].mime[len] = '\0';
	m->sent[m->n_sent++].len = len;
	if (save_in_sent && (sent = folder_of_type(m, MBX_FOLDER_SENT)) != NULL)
		out->saved = mbx_memory_append_raw(b, sent->id, mime, len, 0, MBX_MEM_SEEN) != 0;
	m->send_out = *out;
	return 1;
}

/* STORE +FLAGS (\Answered) or ($Forwarded). */
static int
mm_mark_answered(struct mbx_backend *b, const char *folder_id, const char *item_id, bool forwarded,
                 const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_msg *msg;
	int rv = lookup(m, folder_id, item_id, &msg, errstr_r);

	if (rv != 1)
		return rv;
	store(m, msg, forwarded ? MBX_MEM_FORWARDED : MBX_MEM_ANSWERED, 0);
	return 1;
}

/*
 * UID MOVE: the message appended to dst under its next UID (the COPYUID
 * the server reports), expunged from the source; the device's own move is
 * noted in its cursor so that it is not reported back as a delete.
 */
static int
mm_move(struct mbx_backend *b, const char *src_id, const char *item_id, const char *dst_id,
        char *cursor, char *new_id_r, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, src_id), *dst = folder_of(m, dst_id);
	struct mm_msg *msg;
	struct cur c;
	bool have_cur;
	uint32_t uid;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL || dst == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if ((msg = item_of(f, item_id)) == NULL)
		return 0;
	if (f == dst) {
		*errstr_r = "the item is in that folder";
		return -1;
	}
	have_cur = cursor != NULL && *cursor != '\0' && cur_parse(cursor, &c) == 0;
	if ((uid = copy_to(m, msg, dst)) == 0) {
		*errstr_r = "the destination folder is full";
		if (have_cur)
			uidset_clear(&c.have);
		return -1;
	}
	/* the source may move (copy_to grows dst, not f): find the message again */
	msg = item_of(f, item_id);
	uint64_t ms = expunge_one(m, msg);
	if (have_cur) {
		if (c.uidvalidity == f->uidvalidity && uidset_contains(&c.have, msg->uid)) {
			cur_note_own(&c, msg->uid, ms);
			(void)cur_format(&c, cursor);
		}
		uidset_clear(&c.have);
	}
	snprintf(new_id_r, MBX_ID_MAX + 1, "%" PRIu32, uid);
	return 1;
}

/* EmptyFolderContents: every message expunged; the device's cursor has none left. */
static int
mm_empty(struct mbx_backend *b, const char *folder_id, char *cursor, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct cur c;

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL)
		return 0;
	for (size_t i = 0; i < f->n; i++)
		if (!f->m[i].expunged)
			(void)expunge_one(m, &f->m[i]);
	if (cursor != NULL && *cursor != '\0' && cur_parse(cursor, &c) == 0) {
		if (c.uidvalidity == f->uidvalidity) {
			uidset_clear(&c.have);
			c.n_own = 0;
			(void)cur_format(&c, cursor);
		}
		uidset_clear(&c.have);
	}
	return 1;
}

/* list_folders' view rebuilt after the folders changed. */
static void
list_rebuild(struct mm *m)
{
	m->list = xrealloc(m->list, (m->nf ? m->nf : 1) * sizeof(*m->list));
	for (size_t i = 0; i < m->nf; i++)
		m->list[i] =
		    (struct mbx_folder){m->f[i].id, m->f[i].parent, m->f[i].name, m->f[i].type};
}

/* A folder's messages freed. */
static void
folder_free(struct mm_folder *f)
{
	for (size_t j = 0; j < f->n; j++) {
		free(f->m[j].from);
		free(f->m[j].subject);
		free(f->m[j].raw);
		parsed_free(&f->m[j]);
	}
	free(f->m);
	f->m = NULL;
	f->n = f->cap = 0;
}

/*
 * Whether the name is taken under parent by a folder other than self (as
 * Exchange compares display names: ASCII case ignored).
 */
static bool
name_taken(struct mm *m, const char *parent, const char *name, const struct mm_folder *self)
{
	for (size_t i = 0; i < m->nf; i++) {
		if (&m->f[i] != self && strcmp(m->f[i].parent, parent) == 0 &&
		    strcasecmp(m->f[i].name, name) == 0)
			return true;
	}
	return false;
}

/* Whether folder id is anc or below it. */
static bool
under(struct mm *m, const char *id, const char *anc)
{
	for (size_t depth = 0; depth <= m->nf; depth++) {
		struct mm_folder *f;
		if (strcmp(id, anc) == 0)
			return true;
		if ((f = folder_of(m, id)) == NULL)
			return false;
		id = f->parent;
	}
	return false; /* a loop: not ours */
}

/* A name the mailbox holds: not empty, no '/' (its hierarchy delimiter), fits. */
static bool
name_ok(const char *name)
{
	return *name != '\0' && strchr(name, '/') == NULL && strlen(name) < 128;
}

/* FolderCreate: a mail folder under parent, named "f<n>" (the first free n). */
static int
mm_folder_create(struct mbx_backend *b, const char *parent_id, const char *name, char *new_id_r,
                 const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	char id[MBX_ID_MAX + 1];
	uint32_t uv = 1000;

	if (must_wait(m))
		return MBX_PENDING;
	if (strcmp(parent_id, "0") != 0 && folder_of(m, parent_id) == NULL)
		return MBX_FOLDER_NO_PARENT;
	if (!name_ok(name))
		return MBX_FOLDER_BAD_NAME;
	if (name_taken(m, parent_id, name, NULL))
		return MBX_FOLDER_EXISTS;
	for (size_t n = 1;; n++) {
		snprintf(id, sizeof(id), "f%zu", n);
		if (folder_of(m, id) == NULL)
			break;
	}
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].uidvalidity >= uv)
			uv = m->f[i].uidvalidity + 1;
	if (mbx_memory_add_folder(b, id, parent_id, name, MBX_FOLDER_MAIL, uv) < 0) {
		*errstr_r = "the folder cannot be added";
		return -1;
	}
	snprintf(new_id_r, MBX_ID_MAX + 1, "%s", id);
	return 1;
}

/* FolderUpdate: renamed and/or moved; its id, messages and children stay with it. */
static int
mm_folder_rename(struct mbx_backend *b, const char *id, const char *parent_id, const char *name,
                 const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, id);

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL)
		return MBX_FOLDER_NOT_FOUND;
	if (f->type != MBX_FOLDER_MAIL)
		return MBX_FOLDER_SPECIAL;
	if (strcmp(parent_id, "0") != 0 &&
	    (folder_of(m, parent_id) == NULL || under(m, parent_id, id)))
		return MBX_FOLDER_NO_PARENT;
	if (!name_ok(name) || strlen(parent_id) > MBX_ID_MAX)
		return MBX_FOLDER_BAD_NAME;
	if (name_taken(m, parent_id, name, f))
		return MBX_FOLDER_EXISTS;
	snprintf(f->parent, sizeof(f->parent), "%s", parent_id);
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 1;
}

/* FolderDelete: the folder and every folder below it, with their messages. */
static int
mm_folder_delete(struct mbx_backend *b, const char *id, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, id);
	char top[MBX_ID_MAX + 1];

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL)
		return MBX_FOLDER_NOT_FOUND;
	if (f->type != MBX_FOLDER_MAIL)
		return MBX_FOLDER_SPECIAL;
	snprintf(top, sizeof(top), "%s", id);
	/* the folders below first: under() walks the parents still there */
	bool *gone = xcalloc(m->nf ? m->nf : 1, sizeof(*gone));
	for (size_t i = 0; i < m->nf; i++)
		gone[i] = under(m, m->f[i].id, top);
	size_t k = 0;
	for (size_t i = 0; i < m->nf; i++) {
		if (gone[i])
			folder_free(&m->f[i]);
		else
			m->f[k++] = m->f[i];
	}
	m->nf = k;
	free(gone);
	list_rebuild(m);
	return 1;
}

/* Order hits newest first, then by UID down (qsort). */
static int
mm_hit_cmp(const void *a, const void *b)
{
	const struct mbx_search_hit *x = a, *y = b;

	if (x->date != y->date)
		return x->date < y->date ? 1 : -1;
	return strcmp(y->id, x->id);
}

/*
 * Search: every live message of the folders asked (none: the mail
 * folders) fetched as mm_fetch gives it and matched (mbx_search_matches).
 */
static int
mm_search(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
          const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	size_t cap = 0;

	if (must_wait(m))
		return MBX_PENDING;
	for (size_t k = 0; k < q->n_folders; k++)
		if (folder_of(m, q->folders[k]) == NULL)
			return 0;
	for (size_t i = 0; i < m->nf; i++) {
		struct mm_folder *f = &m->f[i];
		bool asked = q->n_folders == 0 && f->type != MBX_FOLDER_OUTBOX;
		for (size_t k = 0; k < q->n_folders; k++)
			asked = asked || strcmp(q->folders[k], f->id) == 0;
		for (size_t j = 0; asked && j < f->n; j++) {
			struct mbx_email e = {0};
			char id[MBX_ID_MAX + 1];
			if (f->m[j].expunged || (f->m[j].flags & MBX_MEM_DELETED))
				continue;
			snprintf(id, sizeof(id), "%" PRIu32, f->m[j].uid);
			if (mm_fetch(b, f->id, id, &e, errstr_r) == 1 &&
			    mbx_search_matches(q, &e)) {
				if (out->n == cap) {
					cap = cap ? cap * 2 : 16;
					out->hits = xrealloc(out->hits, cap * sizeof(*out->hits));
				}
				struct mbx_search_hit *h = &out->hits[out->n++];
				memcpy(h->folder, f->id, sizeof(h->folder));
				memcpy(h->id, id, sizeof(h->id));
				h->date = f->m[j].date;
			}
			mbx_email_clear(&e);
		}
	}
	if (out->n > 0)
		qsort(out->hits, out->n, sizeof(*out->hits), mm_hit_cmp);
	out->total = out->n;
	if (out->n > MBX_SEARCH_MAX)
		out->n = MBX_SEARCH_MAX;
	return 1;
}

static void
mm_destroy(struct mbx_backend *b)
{
	struct mm *m = (struct mm *)b;

	for (size_t i = 0; i < m->nf; i++)
		folder_free(&m->f[i]);
	for (size_t i = 0; i < m->n_sent; i++)
		free(m->sent[i].mime);
	free(m->sent);
	free(m->puts);
	free(m->founds);
	{
		struct mbx_gal_out g = {m->gal, m->n_gal, 0};
		mbx_gal_out_clear(&g);
	}
	free(m->f);
	free(m->list);
	free(m);
}

/* ---- PIM objects: a message's raw bytes are the object, its MODSEQ its version ---- */

static char *
etag_of(const struct mm_msg *msg)
{
	return xasprintf("\"%" PRIu64 "\"", msg->modseq);
}

static int
mm_fetch_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
                struct mbx_object *out, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg;

	if (must_wait(m))
		return MBX_PENDING;
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if ((msg = item_of(f, item_id)) == NULL || msg->raw == NULL)
		return 0;
	out->data = xmemdup0(msg->raw, msg->raw_len);
	out->len = msg->raw_len;
	out->etag = etag_of(msg);
	return 1;
}

/* Replace a message's bytes in place: a new MODSEQ (a content change), which it returns. */
static uint64_t
replace_raw(struct mm *m, struct mm_msg *msg, const char *data, size_t len)
{
	free(msg->raw);
	parsed_free(msg);
	msg->raw = xmemdup0(data, len);
	msg->raw_len = len;
	msg->start = msg->end = 0; /* a new version: its span is unknown again */
	return msg->modseq = ++m->modseq;
}

static int
mm_put_object(struct mbx_backend *b, const char *folder_id, const char *item_id, const char *etag,
              const char *data, size_t len, const char *name, char *cursor, char *new_id_r,
              const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg;
	struct cur c;
	int rv;

	(void)name; /* ids here are UIDs */
	if (must_wait(m))
		return MBX_PENDING;
	if (m->next_put < m->n_puts) {
		const struct mm_put *p = &m->puts[m->next_put++];
		if (new_id_r != NULL)
			snprintf(new_id_r, MBX_ID_MAX + 1, "%s", p->id);
		if (cursor != NULL)
			snprintf(cursor, MBX_CURSOR_MAX + 1, "%s", p->cursor);
		return p->rv;
	}
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	if (cursor == NULL) {
		/* not the device's write: only the version read guards it */
		char *now = NULL;
		if ((msg = item_of(f, item_id)) == NULL)
			rv = 0;
		else if (etag != NULL && strcmp(etag, now = etag_of(msg)) != 0)
			rv = MBX_CONFLICT;
		else {
			(void)replace_raw(m, msg, data, len);
			rv = 1;
		}
		free(now);
		m->puts = xrealloc(m->puts, (m->n_puts + 1) * sizeof(*m->puts));
		struct mm_put *q = &m->puts[m->n_puts++];
		m->next_put = m->n_puts;
		*q = (struct mm_put){.rv = rv};
		return rv;
	}
	if (cur_parse(cursor, &c) < 0 || c.uidvalidity != f->uidvalidity) {
		uidset_clear(&c.have);
		return 0;
	}
	if (item_id == NULL) {
		uint32_t uid = mbx_memory_append_raw(b, folder_id, data, len, 0, 0);
		if (uid == 0) {
			uidset_clear(&c.have);
			*errstr_r = "the folder is full";
			return -1;
		}
		msg = msg_of(f, uid);
		uidset_add(&c.have, uid);
		cur_note_own(&c, uid, msg->modseq);
		snprintf(new_id_r, MBX_ID_MAX + 1, "%" PRIu32, uid);
		rv = 1;
	} else if ((msg = item_of(f, item_id)) == NULL || !uidset_contains(&c.have, msg->uid)) {
		rv = 0;
	} else {
		char *now = etag_of(msg);
		/* changed since the version asked, or since the device's cursor: the server's wins
		 */
		if ((etag != NULL && strcmp(etag, now) != 0) ||
		    (msg->modseq > c.modseq && !cur_own(&c, msg->uid, msg->modseq))) {
			rv = MBX_CONFLICT;
		} else {
			cur_note_own(&c, msg->uid, replace_raw(m, msg, data, len));
			rv = 1;
		}
		free(now);
	}
	(void)cur_format(&c, cursor);
	uidset_clear(&c.have);
	m->puts = xrealloc(m->puts, (m->n_puts + 1) * sizeof(*m->puts));
	struct mm_put *p = &m->puts[m->n_puts++];
	m->next_put = m->n_puts;
	p->rv = rv;
	snprintf(p->id, sizeof(p->id), "%s", item_id == NULL && rv == 1 ? new_id_r : "");
	snprintf(p->cursor, sizeof(p->cursor), "%s", cursor);
	return rv;
}

/* Whether the object raw[0..len) has a line "UID:uid" (the property unfolded, as clients write it).
 */
static bool
holds_uid(const char *raw, size_t len, const char *uid)
{
	size_t ul = strlen(uid);

	for (size_t i = 0; i + 4 + ul <= len;) {
		const char *nl = memchr(raw + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - raw) : len, l = end - i;
		if (l > 0 && raw[end - 1] == '\r')
			l--;
		if (l == 4 + ul && strncasecmp(raw + i, "UID:", 4) == 0 &&
		    memcmp(raw + i + 4, uid, ul) == 0)
			return true;
		i = end + 1;
	}
	return false;
}

static int
mm_find_uid(struct mbx_backend *b, const char *folder_id, const char *uid, char *item_id_r,
            const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	int rv = 0;

	if (must_wait(m))
		return MBX_PENDING;
	if (m->next_found < m->n_founds) {
		const struct mm_found *p = &m->founds[m->next_found++];
		snprintf(item_id_r, MBX_ID_MAX + 1, "%s", p->id);
		return p->rv;
	}
	if (f == NULL) {
		*errstr_r = "no such folder";
		return -1;
	}
	for (size_t i = 0; i < f->n && rv == 0; i++) {
		const struct mm_msg *msg = &f->m[i];
		if (!msg->expunged && !(msg->flags & MBX_MEM_DELETED) && msg->raw != NULL &&
		    holds_uid(msg->raw, msg->raw_len, uid)) {
			snprintf(item_id_r, MBX_ID_MAX + 1, "%" PRIu32, msg->uid);
			rv = 1;
		}
	}
	m->founds = xrealloc(m->founds, (m->n_founds + 1) * sizeof(*m->founds));
	struct mm_found *p = &m->founds[m->n_founds++];
	m->next_found = m->n_founds;
	p->rv = rv;
	snprintf(p->id, sizeof(p->id), "%s", rv == 1 ? item_id_r : "");
	return rv;
}

/* ---- the address list ---- */

static bool
begins(const char *field, const char *q)
{
	return field != NULL && strncasecmp(field, q, strlen(q)) == 0;
}

static int
gal_order(const void *a, const void *b)
{
	const struct mbx_gal_entry *x = a, *y = b;

	return strcasecmp(x->display_name ? x->display_name : "",
	                  y->display_name ? y->display_name : "");
}

static int
mm_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
              size_t picture_max, struct mbx_gal_out *out, const char **errstr_r)
{
	struct mm *m = (struct mm *)b;
	struct mbx_gal_entry *hit;
	size_t n = 0;

	(void)errstr_r;
	if (must_wait(m))
		return MBX_PENDING;
	hit = m->n_gal ? xcalloc(m->n_gal, sizeof(*hit)) : NULL;
	for (size_t i = 0; i < m->n_gal; i++) {
		const struct mbx_gal_entry *e = &m->gal[i];
		bool match = how == MBX_GAL_ADDRESS
		                 ? e->email != NULL && strcasecmp(e->email, query) == 0
		                 : begins(e->display_name, query) || begins(e->first_name, query) ||
		                       begins(e->last_name, query) || begins(e->alias, query) ||
		                       begins(e->email, query);
		if (match)
			hit[n++] = *e; /* shallow: sorted, then the first max copied */
	}
	if (n > 0)
		qsort(hit, n, sizeof(*hit), gal_order);
	out->total = n;
	out->n = n < max ? n : max;
	out->e = out->n ? xcalloc(out->n, sizeof(*out->e)) : NULL;
	for (size_t i = 0; i < out->n; i++)
		mbx_gal_entry_copy(&out->e[i], &hit[i], picture_max);
	free(hit);
	return 1;
}

static const struct mbx_ops mm_ops = {
    .name = "memory",
    .list_folders = mm_list_folders,
    .list_items = mm_list_items,
    .fetch = mm_fetch,
    .set_read = mm_set_read,
    .destroy = mm_destroy,
    .wait = mm_wait,
    .begin = mm_begin,
    .end = mm_end,
    .changes = mm_changes,
    .set_flags = mm_set_flags,
    .remove = mm_remove,
    .fetch_part = mm_fetch_part,
    .send = mm_send,
    .mark_answered = mm_mark_answered,
    .move = mm_move,
    .empty = mm_empty,
    .folder_create = mm_folder_create,
    .folder_rename = mm_folder_rename,
    .folder_delete = mm_folder_delete,
    .search = mm_search,
    .fetch_object = mm_fetch_object,
    .put_object = mm_put_object,
    .find_uid = mm_find_uid,
    .gal_search = mm_gal_search,
};

/* The same mailbox without the cursor: the command layer lists and diffs items. */
static const struct mbx_ops mm_ops_list = {
    .name = "memory-list",
    .list_folders = mm_list_folders,
    .list_items = mm_list_items,
    .fetch = mm_fetch,
    .set_read = mm_set_read,
    .destroy = mm_destroy,
    .wait = mm_wait,
    .begin = mm_begin,
    .end = mm_end,
    .fetch_part = mm_fetch_part,
    .send = mm_send,
    .mark_answered = mm_mark_answered,
    .search = mm_search,
};

/* ---- building and changing the mailbox (tests, tools) ---- */

struct mbx_backend *
mbx_memory_new(void)
{
	struct mm *m = xcalloc(1, sizeof(*m));

	m->base.ops = &mm_ops;
	return &m->base;
}

void
mbx_memory_set_mode(struct mbx_backend *b, bool cursor, bool pend)
{
	struct mm *m = (struct mm *)b;

	m->base.ops = cursor ? &mm_ops : &mm_ops_list;
	m->pend = pend;
}

int
mbx_memory_add_folder(struct mbx_backend *b, const char *id, const char *parent_id,
                      const char *name, int type, uint32_t uidvalidity)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f;

	if (folder_of(m, id) != NULL || strlen(id) > MBX_ID_MAX || strlen(parent_id) > MBX_ID_MAX ||
	    strlen(name) >= sizeof(f->name) || uidvalidity == 0)
		return -1;
	m->f = xrealloc(m->f, (m->nf + 1) * sizeof(*m->f));
	f = &m->f[m->nf++];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", id);
	snprintf(f->parent, sizeof(f->parent), "%s", parent_id);
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->type = type;
	f->uidvalidity = uidvalidity;
	f->uidnext = 1;
	list_rebuild(m);
	return 0;
}

uint32_t
mbx_memory_append(struct mbx_backend *b, const char *folder_id, const char *from,
                  const char *subject, int64_t date, unsigned flags)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);

	if (f == NULL || f->uidnext == UINT32_MAX)
		return 0;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->m = xrealloc(f->m, f->cap * sizeof(*f->m));
	}
	f->m[f->n++] = (struct mm_msg){
	    .uid = f->uidnext++,
	    .modseq = ++m->modseq,
	    .flags = flags,
	    .date = date,
	    .from = xstrdup(from),
	    .subject = xstrdup(subject),
	};
	return f->uidnext - 1;
}

uint32_t
mbx_memory_append_raw(struct mbx_backend *b, const char *folder_id, const char *raw, size_t len,
                      int64_t date, unsigned flags)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	uint32_t uid = mbx_memory_append(b, folder_id, "", "", date, flags);

	if (uid == 0)
		return 0;
	struct mm_msg *msg = msg_of(f, uid);
	msg->raw = xmalloc(len + 1);
	memcpy(msg->raw, raw, len);
	msg->raw[len] = '\0';
	msg->raw_len = len;
	return uid;
}

void
mbx_memory_add_gal(struct mbx_backend *b, const struct mbx_gal_entry *e)
{
	struct mm *m = (struct mm *)b;

	m->gal = xrealloc(m->gal, (m->n_gal + 1) * sizeof(*m->gal));
	mbx_gal_entry_copy(&m->gal[m->n_gal], e, SIZE_MAX);
	if (e->picture == NULL)
		m->gal[m->n_gal].picture_too_large = false;
	m->n_gal++;
}

int
mbx_memory_replace(struct mbx_backend *b, const char *folder_id, uint32_t uid, const char *data,
                   size_t len)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg = f ? msg_of(f, uid) : NULL;

	if (msg == NULL || msg->expunged)
		return 0;
	replace_raw(m, msg, data, len);
	return 1;
}

int
mbx_memory_set_span(struct mbx_backend *b, const char *folder_id, uint32_t uid, int64_t start,
                    int64_t end)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg = f ? msg_of(f, uid) : NULL;

	if (msg == NULL || msg->expunged)
		return 0;
	msg->start = start;
	msg->end = end;
	return 1;
}

int
mbx_memory_store(struct mbx_backend *b, const char *folder_id, uint32_t uid, unsigned set,
                 unsigned clear)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg = f ? msg_of(f, uid) : NULL;

	if (msg == NULL || msg->expunged)
		return 0;
	store(m, msg, set, clear);
	return 1;
}

int
mbx_memory_expunge(struct mbx_backend *b, const char *folder_id)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	int n = 0;

	if (f == NULL)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		if (!f->m[i].expunged && (f->m[i].flags & MBX_MEM_DELETED)) {
			expunge_one(m, &f->m[i]);
			n++;
		}
	}
	return n;
}

int
mbx_memory_set_uidvalidity(struct mbx_backend *b, const char *folder_id, uint32_t uidvalidity)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	size_t n = 0;

	if (f == NULL || uidvalidity == 0)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		if (f->m[i].expunged)
			continue;
		f->m[n] = f->m[i];
		f->m[n].uid = (uint32_t)(n + 1);
		f->m[n].modseq = ++m->modseq;
		n++;
	}
	f->n = n;
	f->uidnext = (uint32_t)(n + 1);
	f->uidvalidity = uidvalidity;
	return 0;
}

void
mbx_memory_set_parse_ahead(struct mbx_backend *b, bool on)
{
	((struct mm *)b)->parse_ahead = on;
}

struct msgconv_msg *
mbx_memory_parsed(struct mbx_backend *b, const char *folder_id, uint32_t uid)
{
	struct mm_folder *f = folder_of((struct mm *)b, folder_id);
	struct mm_msg *msg = f != NULL ? msg_of(f, uid) : NULL;

	return msg != NULL && msg->raw != NULL ? (struct msgconv_msg *)parsed_of(msg) : NULL;
}

size_t
mbx_memory_count(struct mbx_backend *b, const char *folder_id)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	size_t n = 0;

	for (size_t i = 0; f && i < f->n; i++)
		n += !f->m[i].expunged;
	return n;
}

const char *
mbx_memory_sent(struct mbx_backend *b, size_t i, size_t *len_r)
{
	struct mm *m = (struct mm *)b;

	if (i >= m->n_sent)
		return NULL;
	*len_r = m->sent[i].len;
	return m->sent[i].mime;
}

void
mbx_memory_set_send_result(struct mbx_backend *b, enum mbx_send_result r)
{
	((struct mm *)b)->send_result = r;
}

int
mbx_memory_flags(struct mbx_backend *b, const char *folder_id, uint32_t uid)
{
	struct mm *m = (struct mm *)b;
	struct mm_folder *f = folder_of(m, folder_id);
	struct mm_msg *msg = f ? msg_of(f, uid) : NULL;

	return msg == NULL || msg->expunged ? -1 : (int)msg->flags;
}
