/*
 * mailbox_union.c: several mailbox backends seen as one (mailbox_union.h).
 *
 * Native mode serves an account's mail from its IMAP server and its
 * contacts, calendars and tasks from its DAV servers; the command layer
 * serves one backend per request. The union lists every part's folders as
 * one hierarchy and sends each folder's operations to the part that owns
 * the folder, told by the folder id's prefix (the DAV collections' ids
 * begin with "c", the mail folders' are decimal), so that routing an
 * operation costs no listing. A union's ops table is its own copy: an op
 * no part has is NULL in it, so the command layer's capability checks
 * (mbx_can_send, mbx_can_change_folders...) see what the parts offer.
 */
#include "mailbox/mailbox_union.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

_Static_assert(MBX_UNION_PARTS == 4, "mbx_union_new's message says four");

struct upart {
	struct mbx_backend *b;
	char prefix[MBX_UNION_PREFIX_MAX + 1]; /* "": the default part */
};

struct ubackend {
	struct mbx_backend base;
	struct mbx_ops ops; /* this union's table: NULL where no part has the op */
	struct upart parts[MBX_UNION_PARTS];
	size_t n;
	struct mbx_folder *folders; /* the last listing, merged; strings the parts' */
	size_t n_folders;
	/* wait: the parts still working, and the caller's callback */
	size_t waiting;
	void (*wait_cb)(void *arg);
	void *wait_arg;
};

static struct ubackend *
U(struct mbx_backend *b)
{
	return (struct ubackend *)b;
}

/* The part owning folder_id: the longest prefix that matches, else the default part. */
static struct mbx_backend *
route(struct ubackend *u, const char *folder_id)
{
	struct mbx_backend *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < u->n; i++) {
		size_t pl = strlen(u->parts[i].prefix);

		if (pl == 0) {
			if (best == NULL)
				best = u->parts[i].b;
		} else if (folder_id != NULL && strncmp(folder_id, u->parts[i].prefix, pl) == 0 &&
		           pl > best_len) {
			best = u->parts[i].b;
			best_len = pl;
		}
	}
	return best;
}

/* The part that serves what belongs to no folder (send, search): the default one. */
static struct mbx_backend *
default_part(struct ubackend *u)
{
	return route(u, NULL);
}

static int
no_op(const char **errstr_r)
{
	*errstr_r = "the folder's backend does not do that";
	return -1;
}

static int
u_list_folders(struct mbx_backend *b, const struct mbx_folder **folders_r, size_t *n_r,
               const char **errstr_r)
{
	struct ubackend *u = U(b);
	const struct mbx_folder *lists[MBX_UNION_PARTS];
	size_t ns[MBX_UNION_PARTS], total = 0;
	const char *err = NULL;
	bool pending = false, failed = false;

	/*
	 * Every part is asked, so that all of them start fetching at once. One
	 * that cannot list fails the whole listing: a hierarchy without its
	 * calendars would tell the phone they were deleted.
	 */
	for (size_t i = 0; i < u->n; i++) {
		int rv = mbx_list_folders(u->parts[i].b, &lists[i], &ns[i], &err);

		if (rv == MBX_PENDING) {
			pending = true;
		} else if (rv < 0) {
			failed = true;
			*errstr_r = err;
		} else {
			total += ns[i];
		}
	}
	if (failed)
		return -1;
	if (pending)
		return MBX_PENDING;
	free(u->folders);
	u->folders = total ? xcalloc(total, sizeof(*u->folders)) : NULL;
	u->n_folders = 0;
	for (size_t i = 0; i < u->n; i++) {
		for (size_t j = 0; j < ns[i]; j++) {
			/* a folder a part lists under another part's prefix is not its own */
			if (route(u, lists[i][j].id) == u->parts[i].b)
				u->folders[u->n_folders++] = lists[i][j];
		}
	}
	*folders_r = u->folders;
	*n_r = u->n_folders;
	return 0;
}

static int
u_list_items(struct mbx_backend *b, const char *folder_id, struct mbx_item_ref **items_r,
             size_t *n_r, const char **errstr_r)
{
	return mbx_list_items(route(U(b), folder_id), folder_id, items_r, n_r, errstr_r);
}

static int
u_fetch(struct mbx_backend *b, const char *folder_id, const char *item_id, struct mbx_email *out,
        const char **errstr_r)
{
	return mbx_fetch(route(U(b), folder_id), folder_id, item_id, out, errstr_r);
}

static int
u_set_read(struct mbx_backend *b, const char *folder_id, const char *item_id, bool read,
           const char **errstr_r)
{
	return mbx_set_read(route(U(b), folder_id), folder_id, item_id, read, errstr_r);
}

static void
u_destroy(struct mbx_backend *b)
{
	struct ubackend *u = U(b);

	for (size_t i = 0; i < u->n; i++)
		mbx_destroy(&u->parts[i].b);
	free(u->folders);
	free(u);
}

/* One part's work is done; the last one calls the caller back. */
static void
u_waited(void *arg)
{
	struct ubackend *u = arg;
	void (*cb)(void *) = u->wait_cb;
	void *cb_arg = u->wait_arg;

	if (--u->waiting > 0)
		return;
	u->wait_cb = NULL;
	u->wait_arg = NULL;
	cb(cb_arg);
}

static void
u_wait(struct mbx_backend *b, void (*cb)(void *arg), void *arg)
{
	struct ubackend *u = U(b);

	/*
	 * One count per part and one for this loop, so that parts that call
	 * back at once do not end the wait before every part was asked.
	 */
	u->wait_cb = cb;
	u->wait_arg = arg;
	u->waiting = u->n + 1;
	for (size_t i = 0; i < u->n; i++)
		mbx_wait(u->parts[i].b, u_waited, u);
	u_waited(u);
}

static void
u_begin(struct mbx_backend *b)
{
	struct ubackend *u = U(b);

	for (size_t i = 0; i < u->n; i++)
		mbx_begin(u->parts[i].b);
}

static void
u_end(struct mbx_backend *b)
{
	struct ubackend *u = U(b);

	for (size_t i = 0; i < u->n; i++)
		mbx_end(u->parts[i].b);
}

static void
u_release(struct mbx_backend *b)
{
	struct ubackend *u = U(b);

	for (size_t i = 0; i < u->n; i++)
		mbx_release(u->parts[i].b);
}

static int
u_changes(struct mbx_backend *b, const char *folder_id, const char *cursor,
          const struct mbx_window *w, struct mbx_changes *out, const char **errstr_r)
{
	return mbx_changes(route(U(b), folder_id), folder_id, cursor, w, out, errstr_r);
}

static int
u_set_flags(struct mbx_backend *b, const char *folder_id, const char *item_id, int read,
            int flagged, char *cursor, const char **errstr_r)
{
	return mbx_set_flags(route(U(b), folder_id), folder_id, item_id, read, flagged, cursor,
	                     errstr_r);
}

static int
u_remove(struct mbx_backend *b, const char *folder_id, const char *item_id, bool to_trash,
         char *cursor, const char **errstr_r)
{
	return mbx_remove(route(U(b), folder_id), folder_id, item_id, to_trash, cursor, errstr_r);
}

static int
u_fetch_part(struct mbx_backend *b, const char *folder_id, const char *item_id, const char *section,
             uint64_t offset, uint64_t max, struct mbx_part *out, const char **errstr_r)
{
	struct mbx_backend *p = route(U(b), folder_id);

	if (p->ops->fetch_part == NULL) {
		memset(out, 0, sizeof(*out));
		return 0; /* no attachments in that folder */
	}
	return mbx_fetch_part(p, folder_id, item_id, section, offset, max, out, errstr_r);
}

static void
u_forget_parts(struct mbx_backend *b)
{
	struct ubackend *u = U(b);

	for (size_t i = 0; i < u->n; i++)
		mbx_forget_parts(u->parts[i].b);
}

static int
u_send(struct mbx_backend *b, const char *mime, size_t len, bool save_in_sent,
       struct mbx_send_out *out, const char **errstr_r)
{
	return mbx_send(default_part(U(b)), mime, len, save_in_sent, out, errstr_r);
}

static int
u_mark_answered(struct mbx_backend *b, const char *folder_id, const char *item_id, bool forwarded,
                const char **errstr_r)
{
	return mbx_mark_answered(route(U(b), folder_id), folder_id, item_id, forwarded, errstr_r);
}

static int
u_move(struct mbx_backend *b, const char *src_id, const char *item_id, const char *dst_id,
       char *cursor, char *new_id_r, const char **errstr_r)
{
	struct ubackend *u = U(b);
	struct mbx_backend *p = route(u, src_id);

	/* Between two backends there is no move: the destination is not a folder of the source's.
	 */
	if (route(u, dst_id) != p || p->ops->move == NULL)
		return no_op(errstr_r);
	return mbx_move(p, src_id, item_id, dst_id, cursor, new_id_r, errstr_r);
}

static int
u_empty(struct mbx_backend *b, const char *folder_id, char *cursor, const char **errstr_r)
{
	return mbx_empty(route(U(b), folder_id), folder_id, cursor, errstr_r);
}

static int
u_folder_create(struct mbx_backend *b, const char *parent_id, const char *name, char *new_id_r,
                const char **errstr_r)
{
	struct ubackend *u = U(b);
	/* At the top ("0"), a new folder is a mail folder: the default part's. */
	struct mbx_backend *p = strcmp(parent_id, "0") == 0 ? default_part(u) : route(u, parent_id);

	if (!mbx_can_change_folders(p))
		return no_op(errstr_r);
	return mbx_folder_create(p, parent_id, name, new_id_r, errstr_r);
}

static int
u_folder_rename(struct mbx_backend *b, const char *id, const char *parent_id, const char *name,
                const char **errstr_r)
{
	struct ubackend *u = U(b);
	struct mbx_backend *p = route(u, id);

	if (!mbx_can_change_folders(p) ||
	    (parent_id != NULL && strcmp(parent_id, "0") != 0 && route(u, parent_id) != p))
		return no_op(errstr_r);
	return mbx_folder_rename(p, id, parent_id, name, errstr_r);
}

static int
u_folder_delete(struct mbx_backend *b, const char *id, const char **errstr_r)
{
	struct mbx_backend *p = route(U(b), id);

	if (!mbx_can_change_folders(p))
		return no_op(errstr_r);
	return mbx_folder_delete(p, id, errstr_r);
}

static int
u_search(struct mbx_backend *b, const struct mbx_search *q, struct mbx_search_out *out,
         const char **errstr_r)
{
	/* A mailbox Search: the mail folders', the default part's. */
	return mbx_search(default_part(U(b)), q, out, errstr_r);
}

static int
u_fetch_object(struct mbx_backend *b, const char *folder_id, const char *item_id,
               struct mbx_object *out, const char **errstr_r)
{
	return mbx_fetch_object(route(U(b), folder_id), folder_id, item_id, out, errstr_r);
}

static int
u_put_object(struct mbx_backend *b, const char *folder_id, const char *item_id, const char *etag,
             const char *data, size_t len, const char *name, char *cursor, char *new_id_r,
             const char **errstr_r)
{
	return mbx_put_object(route(U(b), folder_id), folder_id, item_id, etag, data, len, name,
	                      cursor, new_id_r, errstr_r);
}

static int
u_find_uid(struct mbx_backend *b, const char *folder_id, const char *uid, char *item_id_r,
           const char **errstr_r)
{
	return mbx_find_uid(route(U(b), folder_id), folder_id, uid, item_id_r, errstr_r);
}

static int
u_gal_search(struct mbx_backend *b, const char *query, enum mbx_gal_match how, size_t max,
             size_t picture_max, struct mbx_gal_out *out, const char **errstr_r)
{
	struct ubackend *u = U(b);

	/* The first part that has an address list answers. */
	for (size_t i = 0; i < u->n; i++) {
		if (mbx_has_gal(u->parts[i].b))
			return mbx_gal_search(u->parts[i].b, query, how, max, picture_max, out,
			                      errstr_r);
	}
	return mbx_gal_search(NULL, query, how, max, picture_max, out, errstr_r);
}

static const struct mbx_ops union_ops = {
    .name = "union",
    .list_folders = u_list_folders,
    .list_items = u_list_items,
    .fetch = u_fetch,
    .set_read = u_set_read,
    .destroy = u_destroy,
    .wait = u_wait,
    .begin = u_begin,
    .end = u_end,
    .release = u_release,
    .changes = u_changes,
    .set_flags = u_set_flags,
    .remove = u_remove,
    .fetch_part = u_fetch_part,
    .forget_parts = u_forget_parts,
    .send = u_send,
    .mark_answered = u_mark_answered,
    .move = u_move,
    .empty = u_empty,
    .folder_create = u_folder_create,
    .folder_rename = u_folder_rename,
    .folder_delete = u_folder_delete,
    .search = u_search,
    .fetch_object = u_fetch_object,
    .put_object = u_put_object,
    .find_uid = u_find_uid,
    .gal_search = u_gal_search,
};

struct mbx_backend *
mbx_union_new(const struct mbx_union_part *parts, size_t n, const char **errstr_r)
{
	struct ubackend *u;
	size_t defaults = 0;
	bool cursor = true, pend = false, send = false, folders = false, parts_any = false,
	     answered = false, move = false, empty = false, objects = false, gal = false;

	if (n == 0 || n > MBX_UNION_PARTS) {
		*errstr_r = "a union has one to four parts";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mbx_ops *o;

		if (parts[i].backend == NULL) {
			*errstr_r = "a union part without a backend";
			return NULL;
		}
		if (strlen(parts[i].prefix ? parts[i].prefix : "") > MBX_UNION_PREFIX_MAX) {
			*errstr_r = "a union part's prefix is too long";
			return NULL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(parts[i].prefix ? parts[i].prefix : "",
			           parts[j].prefix ? parts[j].prefix : "") == 0) {
				*errstr_r = "two union parts with one prefix";
				return NULL;
			}
		}
		o = parts[i].backend->ops;
		defaults += parts[i].prefix == NULL || *parts[i].prefix == '\0';
		cursor = cursor && mbx_has_cursor(parts[i].backend);
		pend = pend || o->wait != NULL;
		parts_any = parts_any || o->fetch_part != NULL;
		answered = answered || o->mark_answered != NULL;
		move = move || o->move != NULL;
		empty = empty || o->empty != NULL;
		objects = objects || mbx_has_objects(parts[i].backend);
		gal = gal || mbx_has_gal(parts[i].backend);
		folders = folders || mbx_can_change_folders(parts[i].backend);
		if (parts[i].prefix == NULL || *parts[i].prefix == '\0')
			send = o->send != NULL;
	}
	if (defaults != 1) {
		*errstr_r = "a union needs exactly one default part (empty prefix)";
		return NULL;
	}
	if (!cursor) {
		/* The command layer chooses its sync path per backend, not per folder. */
		*errstr_r = "every part of a union must own change cursors";
		return NULL;
	}
	u = xcalloc(1, sizeof(*u));
	u->ops = union_ops;
	if (!pend)
		u->ops.wait = NULL;
	if (!parts_any) {
		u->ops.fetch_part = NULL;
		u->ops.forget_parts = NULL;
	}
	if (!send)
		u->ops.send = NULL;
	if (!answered)
		u->ops.mark_answered = NULL;
	if (!move)
		u->ops.move = NULL;
	if (!empty)
		u->ops.empty = NULL;
	if (!gal)
		u->ops.gal_search = NULL;
	if (!objects) {
		u->ops.fetch_object = NULL;
		u->ops.put_object = NULL;
		u->ops.find_uid = NULL;
	}
	if (!folders) {
		u->ops.folder_create = NULL;
		u->ops.folder_rename = NULL;
		u->ops.folder_delete = NULL;
	}
	u->base.ops = &u->ops;
	for (size_t i = 0; i < n; i++) {
		u->parts[i].b = parts[i].backend;
		snprintf(u->parts[i].prefix, sizeof(u->parts[i].prefix), "%s",
		         parts[i].prefix ? parts[i].prefix : "");
	}
	u->n = n;
	return &u->base;
}
