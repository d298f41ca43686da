/*
 * mailbox.c: the dispatchers of the mailbox backend interface (mailbox.h).
 *
 * Callers go through these functions instead of the ops table, so that
 * argument checks live in one place, as in the store's store.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mailbox/mailbox.h"

/* Free an e-mail's strings and zero it; clearing twice is fine. */
void
mbx_email_clear(struct mbx_email *e)
{
	if (e == NULL)
		return;
	free(e->from);
	free(e->to);
	free(e->display_to);
	free(e->subject);
	free(e->message_class);
	free(e->body_plain);
	free(e->body_html);
	free(e->raw);
	free(e->outline);
	free(e->parts);
	memset(e, 0, sizeof(*e));
}

/* Free a part's strings and zero it. */
void
mbx_part_clear(struct mbx_part *p)
{
	if (p == NULL)
		return;
	free(p->data);
	free(p->content_type);
	memset(p, 0, sizeof(*p));
}

/* Free a change report's arrays and zero it. */
void
mbx_changes_clear(struct mbx_changes *c)
{
	if (c == NULL)
		return;
	free(c->adds);
	free(c->changed);
	free(c->deletes);
	memset(c, 0, sizeof(*c));
}

/* Whether the backend owns change cursors. */
bool
mbx_has_cursor(const struct mbx_backend *b)
{
	return b != NULL && b->ops->changes != NULL && b->ops->set_flags != NULL &&
	       b->ops->remove != NULL;
}

/* A folder's changes against a cursor; the cursor the backend returns is checked. */
int
mbx_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
            const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	int rv;

	memset(out, 0, sizeof(*out));
	if (!mbx_has_cursor(b) || folder_id == NULL || w == NULL) {
		*errstr_r = "no change cursor in the mailbox backend";
		return -1;
	}
	rv = b->ops->changes(b, folder_id, cursor && *cursor ? cursor : NULL, w, out, errstr_r);
	if (rv == 1 && (out->cursor[MBX_CURSOR_MAX] != '\0' || strchr(out->cursor, '\n') != NULL)) {
		mbx_changes_clear(out);
		*errstr_r = "the backend's cursor is not a line";
		return -1;
	}
	if (rv != 1)
		mbx_changes_clear(out);
	return rv;
}

/* The device changed an item's flags. */
int
mbx_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
              int flagged, char *cursor, const char **errstr_r)
{
	if (!mbx_has_cursor(b) || folder_id == NULL || item_id == NULL ||
	    (cursor == NULL && !mbx_has_objects(b))) {
		*errstr_r = "no change cursor in the mailbox backend";
		return -1;
	}
	return b->ops->set_flags(b, folder_id, item_id, read, flagged, cursor, errstr_r);
}

/* The device deleted an item. */
int
mbx_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
           char *cursor, const char **errstr_r)
{
	if (!mbx_has_cursor(b) || folder_id == NULL || item_id == NULL ||
	    (cursor == NULL && !mbx_has_objects(b))) {
		*errstr_r = "no change cursor in the mailbox backend";
		return -1;
	}
	return b->ops->remove(b, folder_id, item_id, to_trash, cursor, errstr_r);
}

/* One part of an item: 0 (none) when the backend has no fetch_part. */
int
mbx_fetch_part(struct mbx_backend *b, const char *folder_id, const char *item_id,
               const char *section, uint64_t offset, uint64_t max, struct mbx_part *out,
               const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (b == NULL || b->ops->fetch_part == NULL || folder_id == NULL || item_id == NULL ||
	    section == NULL)
		return 0;
	return b->ops->fetch_part(b, folder_id, item_id, section, offset, max, out, errstr_r);
}

/* Drop the request's part windows: nothing to do without forget_parts. */
void
mbx_forget_parts(struct mbx_backend *b)
{
	if (b != NULL && b->ops->forget_parts != NULL)
		b->ops->forget_parts(b);
}

/* Send a message; -1 when the backend cannot send. */
int
mbx_send(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
         struct mbx_send_out *out, const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (!mbx_can_send(b) || mime == NULL) {
		*errstr_r = "the mailbox cannot send mail";
		return -1;
	}
	return b->ops->send(b, mime, len, save_in_sent, out, errstr_r);
}

/* Whether the backend sends mail. */
bool
mbx_can_send(const struct mbx_backend *b)
{
	return b != NULL && b->ops->send != NULL;
}

/* Mark an item answered or forwarded: 0 (nothing done) when the backend has no such op. */
int
mbx_mark_answered(struct mbx_backend *b, const char *folder_id, const char *item_id, bool forwarded,
                  const char **errstr_r)
{
	if (b == NULL || b->ops->mark_answered == NULL || folder_id == NULL || item_id == NULL)
		return 0;
	return b->ops->mark_answered(b, folder_id, item_id, forwarded, errstr_r);
}

/* Move an item: -1 when the backend has no move op. */
int
mbx_move(struct mbx_backend *b, const char *src_id, const char *item_id, const char *dst_id,
         char *cursor, char *new_id_r, const char **errstr_r)
{
	new_id_r[0] = '\0';
	if (b == NULL || b->ops->move == NULL) {
		*errstr_r = "the mailbox cannot move items";
		return -1;
	}
	return b->ops->move(b, src_id, item_id, dst_id, cursor, new_id_r, errstr_r);
}

/* Empty a folder: the backend's op, or -1 when it has none. */
int
mbx_empty(struct mbx_backend *b, const char *folder_id, char *cursor, const char **errstr_r)
{
	if (b == NULL || b->ops->empty == NULL) {
		*errstr_r = "the mailbox cannot empty folders";
		return -1;
	}
	return b->ops->empty(b, folder_id, cursor, errstr_r);
}

/* Whether the backend has the three folder-change ops. */
bool
mbx_can_change_folders(const struct mbx_backend *b)
{
	return b != NULL && b->ops->folder_create != NULL && b->ops->folder_rename != NULL &&
	       b->ops->folder_delete != NULL;
}

/* Create a folder: the backend's op, or -1 when it has none. */
int
mbx_folder_create(struct mbx_backend *b, const char *parent_id, const char *name, char *new_id_r,
                  const char **errstr_r)
{
	new_id_r[0] = '\0';
	if (!mbx_can_change_folders(b)) {
		*errstr_r = "the mailbox cannot change folders";
		return -1;
	}
	return b->ops->folder_create(b, parent_id, name, new_id_r, errstr_r);
}

/* Rename or move a folder: the backend's op, or -1 when it has none. */
int
mbx_folder_rename(struct mbx_backend *b, const char *id, const char *parent_id, const char *name,
                  const char **errstr_r)
{
	if (!mbx_can_change_folders(b)) {
		*errstr_r = "the mailbox cannot change folders";
		return -1;
	}
	return b->ops->folder_rename(b, id, parent_id, name, errstr_r);
}

/* Delete a folder: the backend's op, or -1 when it has none. */
int
mbx_folder_delete(struct mbx_backend *b, const char *id, const char **errstr_r)
{
	if (!mbx_can_change_folders(b)) {
		*errstr_r = "the mailbox cannot change folders";
		return -1;
	}
	return b->ops->folder_delete(b, id, errstr_r);
}

/* Free a search's hits and zero it. */
void
mbx_search_out_clear(struct mbx_search_out *o)
{
	if (o == NULL)
		return;
	free(o->hits);
	memset(o, 0, sizeof(*o));
}

/* ASCII lower case (UTF-8 bytes above 0x7F compare as they are). */
static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether word occurs in the n bytes at s, ASCII case-insensitively. */
static bool
holds(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);

	if (s == NULL || w == 0 || w > n)
		return s != NULL && w == 0;
	for (size_t i = 0; i + w <= n; i++) {
		size_t k = 0;
		while (k < w && fold((unsigned char)s[i + k]) == fold((unsigned char)word[k]))
			k++;
		if (k == w)
			return true;
	}
	return false;
}

/* Whether the NUL-terminated s (or NULL) holds word. */
static bool
holds_str(const char *s, const char *word)
{
	return s != NULL && holds(s, strlen(s), word);
}

/* Whether e matches q (mailbox.h). */
bool
mbx_search_matches(const struct mbx_search *q, const struct mbx_email *e)
{
	int64_t date = e->raw != NULL ? e->internal_date : e->date_received;

	if ((q->since != 0 && date < q->since) || (q->before != 0 && date >= q->before))
		return false;
	for (size_t i = 0; i < q->n_words; i++) {
		const char *w = q->words[i];
		if (e->raw != NULL ? holds(e->raw, e->raw_len, w)
		                   : holds_str(e->subject, w) || holds_str(e->from, w) ||
		                         holds_str(e->to, w) || holds_str(e->display_to, w) ||
		                         holds_str(e->body_plain, w) || holds_str(e->body_html, w))
			continue;
		return false;
	}
	return true;
}

/* Order hits newest first (qsort). */
static int
hit_cmp(const void *a, const void *b)
{
	const struct mbx_search_hit *x = a, *y = b;

	return x->date < y->date ? 1 : x->date > y->date ? -1 : 0;
}

/* Whether a folder of this type is searched when the query names none. */
static bool
mail_folder(int type)
{
	return type == MBX_FOLDER_INBOX || type == MBX_FOLDER_DRAFTS ||
	       type == MBX_FOLDER_DELETED || type == MBX_FOLDER_SENT || type == MBX_FOLDER_MAIL;
}

/* The generic search: every item of the folders listed, fetched and matched. */
static int
search_generic(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
               const char **errstr_r)
{
	const struct mbx_folder *f;
	size_t nf, cap = 0;
	int rv = mbx_list_folders(b, &f, &nf, errstr_r);

	if (rv < 0)
		return rv;
	for (size_t i = 0; i < q->n_folders; i++)
		if (mbx_folder_find(b, q->folders[i]) == NULL)
			return 0;
	for (size_t i = 0; i < nf; i++) {
		bool asked = q->n_folders == 0 && mail_folder(f[i].type);
		struct mbx_item_ref *items = NULL;
		size_t ni = 0;

		for (size_t k = 0; k < q->n_folders; k++)
			asked = asked || strcmp(q->folders[k], f[i].id) == 0;
		if (!asked)
			continue;
		if ((rv = mbx_list_items(b, f[i].id, &items, &ni, errstr_r)) < 0) {
			mbx_search_out_clear(out);
			return rv;
		}
		for (size_t j = 0; j < ni; j++) {
			struct mbx_email e = {0};
			rv = mbx_fetch(b, f[i].id, items[j].id, &e, errstr_r);
			if (rv == 1 && mbx_search_matches(q, &e)) {
				if (out->n == cap) {
					cap = cap ? cap * 2 : 16;
					out->hits = xrealloc(out->hits, cap * sizeof(*out->hits));
				}
				struct mbx_search_hit *h = &out->hits[out->n++];
				snprintf(h->folder, sizeof(h->folder), "%s", f[i].id);
				memcpy(h->id, items[j].id, sizeof(h->id));
				h->date = e.raw != NULL ? e.internal_date : e.date_received;
			}
			mbx_email_clear(&e);
			if (rv < 0) {
				free(items);
				mbx_search_out_clear(out);
				return rv;
			}
		}
		free(items);
	}
	if (out->n > 0)
		qsort(out->hits, out->n, sizeof(*out->hits), hit_cmp);
	out->total = out->n;
	if (out->n > MBX_SEARCH_MAX)
		out->n = MBX_SEARCH_MAX;
	return 1;
}

/* Search: the backend's op, or the generic path. */
int
mbx_search(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
           const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (b == NULL) {
		*errstr_r = "no mailbox";
		return -1;
	}
	if (b->ops->search != NULL)
		return b->ops->search(b, q, out, errstr_r);
	return search_generic(b, q, out, errstr_r);
}

/* The backend's folders. */
int
mbx_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
                 const char **errstr_r)
{
	*folders_r = NULL;
	*n_r = 0;
	if (b == NULL) {
		*errstr_r = "no mailbox backend";
		return -1;
	}
	return b->ops->list_folders(b, folders_r, n_r, errstr_r);
}

/* The items of one folder, with their versions. */
int
mbx_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
               size_t *n_r, const char **errstr_r)
{
	*items_r = NULL;
	*n_r = 0;
	if (b == NULL || folder_id == NULL) {
		*errstr_r = "no mailbox backend or folder";
		return -1;
	}
	return b->ops->list_items(b, folder_id, items_r, n_r, errstr_r);
}

/* Fetch one item. */
int
mbx_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
          const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (b == NULL || folder_id == NULL || item_id == NULL) {
		*errstr_r = "no mailbox backend, folder or item";
		return -1;
	}
	return b->ops->fetch(b, folder_id, item_id, out, errstr_r);
}

/* Set an item's read flag. */
int
mbx_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
             const char **errstr_r)
{
	if (b == NULL || folder_id == NULL || item_id == NULL) {
		*errstr_r = "no mailbox backend, folder or item";
		return -1;
	}
	return b->ops->set_read(b, folder_id, item_id, read, errstr_r);
}

/* Look a folder up by server id: 1 found, 0 not, -1, MBX_PENDING. */
int
mbx_folder_lookup(struct mbx_backend *b, const char *folder_id, const struct mbx_folder **folder_r)
{
	const struct mbx_folder *f;
	const char *err;
	size_t n;
	int rv;

	*folder_r = NULL;
	if (folder_id == NULL)
		return 0;
	rv = mbx_list_folders(b, &f, &n, &err);
	if (rv < 0)
		return rv == MBX_PENDING ? MBX_PENDING : -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(f[i].id, folder_id) == 0) {
			*folder_r = &f[i];
			return 1;
		}
	}
	return 0;
}

/* Look a folder up by server id; NULL when unknown or not listable. */
const struct mbx_folder *
mbx_folder_find(struct mbx_backend *b, const char *folder_id)
{
	const struct mbx_folder *f;

	return mbx_folder_lookup(b, folder_id, &f) == 1 ? f : NULL;
}

/* Wait for the backend's outstanding work; at once for one that never pends. */
void
mbx_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	if (b == NULL || b->ops->wait == NULL) {
		cb(arg);
		return;
	}
	b->ops->wait(b, cb, arg);
}

/* A run of the current request starts. */
void
mbx_begin(struct mbx_backend *b)
{
	if (b != NULL && b->ops->begin != NULL)
		b->ops->begin(b);
}

/* The current request is answered. */
void
mbx_end(struct mbx_backend *b)
{
	if (b != NULL && b->ops->end != NULL)
		b->ops->end(b);
}

/* The request waits on its peer: what the backend holds of its server goes back. */
void
mbx_release(struct mbx_backend *b)
{
	if (b != NULL && b->ops->release != NULL)
		b->ops->release(b);
}

enum mbx_class
mbx_folder_class(int type)
{
	switch (type) {
	case MBX_FOLDER_CONTACTS:
	case MBX_FOLDER_USER_CONTACTS:
		return MBX_CLASS_CONTACTS;
	case MBX_FOLDER_CALENDAR:
	case MBX_FOLDER_USER_CALENDAR:
		return MBX_CLASS_CALENDAR;
	case MBX_FOLDER_TASKS:
	case MBX_FOLDER_USER_TASKS:
		return MBX_CLASS_TASKS;
	default:
		return MBX_CLASS_EMAIL;
	}
}

const char *
mbx_class_name(enum mbx_class c)
{
	switch (c) {
	case MBX_CLASS_CONTACTS:
		return "Contacts";
	case MBX_CLASS_CALENDAR:
		return "Calendar";
	case MBX_CLASS_TASKS:
		return "Tasks";
	default:
		return "Email";
	}
}

/* Free an object's bytes and version and zero it; clearing twice is fine. */
void
mbx_object_clear(struct mbx_object *o)
{
	if (o == NULL)
		return;
	free(o->data);
	free(o->etag);
	memset(o, 0, sizeof(*o));
}

void
mbx_gal_entry_clear(struct mbx_gal_entry *e)
{
	if (e == NULL)
		return;
	free(e->display_name);
	free(e->email);
	free(e->first_name);
	free(e->last_name);
	free(e->alias);
	free(e->company);
	free(e->title);
	free(e->office);
	free(e->phone);
	free(e->home_phone);
	free(e->mobile_phone);
	free(e->picture);
	memset(e, 0, sizeof(*e));
}

void
mbx_gal_out_clear(struct mbx_gal_out *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++)
		mbx_gal_entry_clear(&o->e[i]);
	free(o->e);
	memset(o, 0, sizeof(*o));
}

/* A deep copy of src into dst, its picture only when within picture_max (else flagged). */
void
mbx_gal_entry_copy(struct mbx_gal_entry *dst, const struct mbx_gal_entry *src, size_t picture_max)
{
	memset(dst, 0, sizeof(*dst));
	dst->display_name = xstrdup_null(src->display_name);
	dst->email = xstrdup_null(src->email);
	dst->first_name = xstrdup_null(src->first_name);
	dst->last_name = xstrdup_null(src->last_name);
	dst->alias = xstrdup_null(src->alias);
	dst->company = xstrdup_null(src->company);
	dst->title = xstrdup_null(src->title);
	dst->office = xstrdup_null(src->office);
	dst->phone = xstrdup_null(src->phone);
	dst->home_phone = xstrdup_null(src->home_phone);
	dst->mobile_phone = xstrdup_null(src->mobile_phone);
	dst->picture_too_large = src->picture_too_large && picture_max > 0;
	if (src->picture != NULL && picture_max > 0) {
		if (src->picture_len <= picture_max) {
			dst->picture = xmalloc(src->picture_len + 1);
			memcpy(dst->picture, src->picture, src->picture_len);
			dst->picture_len = src->picture_len;
		} else {
			dst->picture_too_large = true;
		}
	}
}

bool
mbx_has_gal(const struct mbx_backend *b)
{
	return b != NULL && b->ops->gal_search != NULL;
}

int
mbx_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
               size_t picture_max, struct mbx_gal_out *out, const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (query == NULL || strlen(query) > MBX_GAL_QUERY_MAX) {
		*errstr_r = "no query, or one too long";
		return -1;
	}
	if (!mbx_has_gal(b))
		return 1; /* no address list: nobody in it */
	if (max > MBX_GAL_MAX)
		max = MBX_GAL_MAX;
	return b->ops->gal_search(b, query, how, max, picture_max, out, errstr_r);
}

bool
mbx_has_objects(const struct mbx_backend *b)
{
	return b != NULL && b->ops->fetch_object != NULL && b->ops->put_object != NULL;
}

int
mbx_fetch_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
                 struct mbx_object *out, const char **errstr_r)
{
	memset(out, 0, sizeof(*out));
	if (!mbx_has_objects(b) || folder_id == NULL || item_id == NULL) {
		*errstr_r = "no contacts, calendars or tasks in the mailbox backend";
		return -1;
	}
	return b->ops->fetch_object(b, folder_id, item_id, out, errstr_r);
}

int
mbx_find_uid(struct mbx_backend *b, const char *folder_id, const char *uid, char *item_id_r,
             const char **errstr_r)
{
	item_id_r[0] = '\0';
	if (b == NULL || b->ops->find_uid == NULL || !mbx_has_objects(b) || folder_id == NULL ||
	    uid == NULL || *uid == '\0')
		return 0;
	return b->ops->find_uid(b, folder_id, uid, item_id_r, errstr_r);
}

int
mbx_put_object(struct mbx_backend *b, const char *folder_id, const char *item_id, const char *etag,
               const char *data, size_t len, const char *name, char *cursor, char *new_id_r,
               const char **errstr_r)
{
	if (!mbx_has_objects(b) || folder_id == NULL || data == NULL ||
	    (cursor == NULL && item_id == NULL) ||
	    (item_id == NULL && (name == NULL || new_id_r == NULL))) {
		*errstr_r = "no contacts, calendars or tasks in the mailbox backend";
		return -1;
	}
	return b->ops->put_object(b, folder_id, item_id, etag, data, len, name, cursor, new_id_r,
	                          errstr_r);
}

/* Whether the backend may answer MBX_PENDING. */
bool
mbx_may_pend(const struct mbx_backend *b)
{
	return b != NULL && b->ops->wait != NULL;
}

/* Destroy a backend through its table. */
void
mbx_destroy(struct mbx_backend **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	(*bp)->ops->destroy(*bp);
	*bp = NULL;
}

/* ---- ops of backends without e-mail items ---- */

int
mbx_no_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
               const char **errstr_r)
{
	(void)b;
	(void)errstr_r;
	*folders_r = NULL;
	*n_r = 0;
	return 0;
}

int
mbx_no_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
                  size_t *n_r, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)items_r;
	(void)n_r;
	*errstr_r = "not an e-mail folder";
	return -1;
}

int
mbx_no_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id,
             struct mbx_email *out, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)item_id;
	(void)out;
	*errstr_r = "not an e-mail folder";
	return -1;
}

int
mbx_no_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
                const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)item_id;
	(void)read;
	*errstr_r = "not an e-mail folder";
	return -1;
}

int
mbx_no_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
                 int flagged, char *cursor, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)item_id;
	(void)read;
	(void)flagged;
	(void)cursor;
	*errstr_r = "not an e-mail folder";
	return -1;
}

int
mbx_no_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
               const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)cursor;
	(void)w;
	(void)out;
	*errstr_r = "no such folder";
	return -1;
}

int
mbx_no_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
              char *cursor, const char **errstr_r)
{
	(void)b;
	(void)folder_id;
	(void)item_id;
	(void)to_trash;
	(void)cursor;
	*errstr_r = "no such folder";
	return -1;
}
