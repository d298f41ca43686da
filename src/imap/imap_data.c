/*
 * imap_data.c: the typed readers of imap_parse.h over a response's tree:
 * capabilities, LIST, STATUS, VANISHED, SEARCH/ESEARCH, FETCH (with
 * ENVELOPE and BODYSTRUCTURE and its section numbers) and IMAP dates.
 * They read what a server sent, so every shape is checked: a node of the
 * wrong type is an error with *errstr, never a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_parse.h"
#include "lib/util.h"

/* ---- capabilities ---- */

static const struct {
	const char *name;
	uint32_t bit;
} caps[] = {
    {"IMAP4REV1", IMAP_CAP_IMAP4REV1},
    {"IMAP4REV2", IMAP_CAP_IMAP4REV2},
    {"STARTTLS", IMAP_CAP_STARTTLS},
    {"LOGINDISABLED", IMAP_CAP_LOGINDISABLED},
    {"AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN},
    {"SASL-IR", IMAP_CAP_SASL_IR},
    {"LITERAL+", IMAP_CAP_LITERAL_PLUS},
    {"LITERAL-", IMAP_CAP_LITERAL_MINUS},
    {"IDLE", IMAP_CAP_IDLE},
    {"ENABLE", IMAP_CAP_ENABLE},
    {"CONDSTORE", IMAP_CAP_CONDSTORE},
    {"QRESYNC", IMAP_CAP_QRESYNC},
    {"UTF8=ACCEPT", IMAP_CAP_UTF8_ACCEPT},
    {"UIDPLUS", IMAP_CAP_UIDPLUS},
    {"MOVE", IMAP_CAP_MOVE},
    {"SPECIAL-USE", IMAP_CAP_SPECIAL_USE},
    {"LIST-EXTENDED", IMAP_CAP_LIST_EXTENDED},
    {"LIST-STATUS", IMAP_CAP_LIST_STATUS},
    {"NOTIFY", IMAP_CAP_NOTIFY},
    {"ESEARCH", IMAP_CAP_ESEARCH},
    {"BINARY", IMAP_CAP_BINARY},
    {"COMPRESS=DEFLATE", IMAP_CAP_COMPRESS},
    {"NAMESPACE", IMAP_CAP_NAMESPACE},
    {"UNSELECT", IMAP_CAP_UNSELECT},
    {"ID", IMAP_CAP_ID},
    {"CHILDREN", IMAP_CAP_CHILDREN},
    {"SORT", IMAP_CAP_SORT},
    {"ESORT", IMAP_CAP_ESORT},
    {"STATUS=SIZE", IMAP_CAP_STATUS_SIZE},
    {"OBJECTID", IMAP_CAP_OBJECTID},
};

/* A "not now" response code (see imap_parse.h). */
bool
imap_code_transient(const char *code)
{
	static const char *const transient[] = {"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG"};

	for (size_t i = 0; code != NULL && i < sizeof(transient) / sizeof(transient[0]); i++)
		if (strcasecmp(code, transient[i]) == 0)
			return true;
	return false;
}

/* The bit of a capability name, 0 for one abqd ignores. */
uint32_t
imap_cap_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (strcasecmp(name, caps[i].name) == 0)
			return caps[i].bit;
	return 0;
}

/* The name of a capability bit. */
const char *
imap_cap_name(uint32_t bit)
{
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (caps[i].bit == bit)
			return caps[i].name;
	return NULL;
}

/* The capability bits of a list of atoms. */
uint32_t
imap_caps_of(const struct imap_node *first)
{
	uint32_t bits = 0;

	for (; first != NULL; first = first->next)
		if (first->type == IMAP_NODE_ATOM)
			bits |= imap_cap_bit(first->s);
	return bits;
}

/* ---- LIST ---- */

static const struct {
	const char *name;
	uint32_t bit;
} list_flags[] = {
    {"\\Noselect", IMAP_LIST_NOSELECT},
    {"\\NonExistent", IMAP_LIST_NONEXISTENT},
    {"\\Noinferiors", IMAP_LIST_NOINFERIORS},
    {"\\HasChildren", IMAP_LIST_HASCHILDREN},
    {"\\HasNoChildren", IMAP_LIST_HASNOCHILDREN},
    {"\\Marked", IMAP_LIST_MARKED},
    {"\\Unmarked", IMAP_LIST_UNMARKED},
    {"\\Subscribed", IMAP_LIST_SUBSCRIBED},
    {"\\Remote", IMAP_LIST_REMOTE},
    {"\\All", IMAP_LIST_ALL},
    {"\\Archive", IMAP_LIST_ARCHIVE},
    {"\\Drafts", IMAP_LIST_DRAFTS},
    {"\\Flagged", IMAP_LIST_FLAGGED},
    {"\\Junk", IMAP_LIST_JUNK},
    {"\\Sent", IMAP_LIST_SENT},
    {"\\Trash", IMAP_LIST_TRASH},
    {"\\Important", IMAP_LIST_IMPORTANT},
};

/* A LIST response: flags, delimiter, name decoded to UTF-8. */
int
imap_list_read(const struct imap_response *r, bool utf8, struct imap_list *out, const char **errstr)
{
	const struct imap_node *fl = r->data, *dl, *nm, *f;
	const char *raw;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (r->kind != IMAP_RESP_DATA || fl == NULL || fl->type != IMAP_NODE_LIST ||
	    (dl = fl->next) == NULL || (nm = dl->next) == NULL) {
		*errstr = "malformed LIST response";
		return -1;
	}
	for (f = fl->child; f != NULL; f = f->next) {
		if (f->type != IMAP_NODE_ATOM) {
			*errstr = "LIST flag not an atom";
			return -1;
		}
		for (i = 0; i < sizeof(list_flags) / sizeof(list_flags[0]); i++)
			if (strcasecmp(f->s, list_flags[i].name) == 0)
				out->flags |= list_flags[i].bit;
	}
	if (dl->type == IMAP_NODE_NIL) {
		out->delim = '\0';
	} else if (dl->type == IMAP_NODE_STRING && dl->len == 1) {
		out->delim = dl->s[0];
	} else {
		*errstr = "bad LIST delimiter";
		return -1;
	}
	if ((raw = imap_node_str(nm)) == NULL) {
		*errstr = "LIST mailbox not a string";
		return -1;
	}
	out->raw = raw;
	if (nm->len > IMAP_MAILBOX_MAX || strlen(raw) != nm->len) {
		*errstr = "LIST mailbox name too long or with NUL";
		return -1;
	}
	if (strcasecmp(raw, "INBOX") == 0) {
		memcpy(out->name, "INBOX", 6);
	} else if (utf8) {
		memcpy(out->name, raw, nm->len + 1);
	} else if (imap_mutf7_decode(raw, nm->len, out->name, sizeof(out->name)) < 0) {
		*errstr = "LIST mailbox name not in modified UTF-7";
		return -1;
	}
	return 0;
}

/* ---- STATUS ---- */

/* A STATUS response's counters. */
int
imap_status_read(const struct imap_response *r, struct imap_status_data *out, const char **errstr)
{
	const struct imap_node *nm = r->data, *l, *k, *v;

	memset(out, 0, sizeof(*out));
	if (nm == NULL || (out->raw = imap_node_str(nm)) == NULL || (l = nm->next) == NULL ||
	    l->type != IMAP_NODE_LIST) {
		*errstr = "malformed STATUS response";
		return -1;
	}
	for (k = l->child; k != NULL; k = v->next) {
		/* MAILBOXID (objectid): the one item whose value is a list (RFC 8474 4.1) */
		if ((v = k->next) != NULL && k->type == IMAP_NODE_ATOM &&
		    strcasecmp(k->s, "MAILBOXID") == 0 && v->type == IMAP_NODE_LIST) {
			if (v->child == NULL ||
			    (out->mailboxid = imap_node_str(v->child)) == NULL ||
			    out->mailboxid[0] == '\0') {
				*errstr = "malformed STATUS MAILBOXID";
				return -1;
			}
			out->have |= IMAP_STATUS_MAILBOXID;
			continue;
		}
		if ((v = k->next) == NULL || k->type != IMAP_NODE_ATOM ||
		    v->type != IMAP_NODE_NUMBER) {
			*errstr = "malformed STATUS item";
			return -1;
		}
		if (strcasecmp(k->s, "HIGHESTMODSEQ") == 0) {
			out->highestmodseq = v->num;
			out->have |= IMAP_STATUS_HIGHESTMODSEQ;
			continue;
		}
		if (strcasecmp(k->s, "SIZE") == 0) {
			out->size = v->num;
			out->have |= IMAP_STATUS_SIZE;
			continue;
		}
		if (v->num > UINT32_MAX) {
			*errstr = "STATUS number too large";
			return -1;
		}
		if (strcasecmp(k->s, "MESSAGES") == 0) {
			out->messages = (uint32_t)v->num;
			out->have |= IMAP_STATUS_MESSAGES;
		} else if (strcasecmp(k->s, "UIDNEXT") == 0) {
			out->uidnext = (uint32_t)v->num;
			out->have |= IMAP_STATUS_UIDNEXT;
		} else if (strcasecmp(k->s, "UIDVALIDITY") == 0) {
			out->uidvalidity = (uint32_t)v->num;
			out->have |= IMAP_STATUS_UIDVALIDITY;
		} else if (strcasecmp(k->s, "UNSEEN") == 0) {
			out->unseen = (uint32_t)v->num;
			out->have |= IMAP_STATUS_UNSEEN;
		} else if (strcasecmp(k->s, "RECENT") == 0) {
			out->recent = (uint32_t)v->num;
			out->have |= IMAP_STATUS_RECENT;
		}
	}
	return 0;
}

/* ---- VANISHED, SEARCH, ESEARCH ---- */

/* Give a set from a server the server cap, unless its owner chose one. */
static void
server_cap(struct uidset *set)
{
	if (set->max_ranges == 0)
		set->max_ranges = IMAP_UIDSET_MAX;
}

/*
 * A node holding a sequence set (an atom "1:3,5", or a number), added to
 * set: parsed straight into an empty set, else into a copy merged in.
 */
static int
node_set(const struct imap_node *n, struct uidset *set, const char **errstr)
{
	struct uidset got = {0};

	if (n == NULL || (n->type != IMAP_NODE_ATOM && n->type != IMAP_NODE_NUMBER)) {
		*errstr = "uid set expected";
		return -1;
	}
	server_cap(set);
	if (set->n == 0)
		return uidset_parse_n(set, n->s, n->len, errstr);
	got.max_ranges = set->max_ranges;
	if (uidset_parse_n(&got, n->s, n->len, errstr) < 0)
		return -1;
	for (size_t i = 0; i < got.n; i++) {
		if (uidset_add_range(set, got.r[i].lo, got.r[i].hi) < 0) {
			*errstr = "uid set of too many ranges";
			uidset_clear(&got);
			return -1;
		}
	}
	uidset_clear(&got);
	return 0;
}

/* VANISHED [(EARLIER)] uid-set. */
int
imap_vanished_read(const struct imap_response *r, bool *earlier, struct uidset *set,
                   const char **errstr)
{
	const struct imap_node *n = r->data;

	*earlier = false;
	if (n != NULL && n->type == IMAP_NODE_LIST) {
		if (n->n != 1 || !imap_node_is(n->child, "EARLIER")) {
			*errstr = "VANISHED with an unknown tag";
			return -1;
		}
		*earlier = true;
		n = n->next;
	}
	if (n == NULL || n->next != NULL) {
		*errstr = "malformed VANISHED response";
		return -1;
	}
	return node_set(n, set, errstr);
}

/* SEARCH numbers into a set, and its MODSEQ. */
int
imap_search_read(const struct imap_response *r, struct uidset *set, uint64_t *modseq,
                 const char **errstr)
{
	const struct imap_node *n;

	*modseq = 0;
	server_cap(set);
	for (n = r->data; n != NULL; n = n->next) {
		if (n->type == IMAP_NODE_NUMBER && n->num > 0 && n->num < UINT32_MAX) {
			if (uidset_add(set, (uint32_t)n->num) < 0) {
				*errstr = "SEARCH result of too many ranges";
				return -1;
			}
		} else if (n->type == IMAP_NODE_LIST && n->next == NULL && n->n == 2 &&
		           imap_node_is(n->child, "MODSEQ") &&
		           n->child->next->type == IMAP_NODE_NUMBER) {
			*modseq = n->child->next->num;
		} else {
			*errstr = "malformed SEARCH response";
			return -1;
		}
	}
	return 0;
}

/* A number node in 0..UINT32_MAX. */
static int
node_u32(const struct imap_node *n, uint32_t *out)
{
	if (n == NULL || n->type != IMAP_NODE_NUMBER || n->num > UINT32_MAX)
		return -1;
	*out = (uint32_t)n->num;
	return 0;
}

/* An ESEARCH response: correlator, UID, MIN, MAX, COUNT, ALL, MODSEQ. */
int
imap_esearch_read(const struct imap_response *r, struct imap_esearch *out, const char **errstr)
{
	const struct imap_node *n = r->data, *v;
	struct uidset keep = out->all;

	memset(out, 0, sizeof(*out));
	out->all = keep;
	if (n != NULL && n->type == IMAP_NODE_LIST) {
		if (n->n != 2 || !imap_node_is(n->child, "TAG") ||
		    (out->tag = imap_node_str(n->child->next)) == NULL) {
			*errstr = "malformed ESEARCH correlator";
			return -1;
		}
		n = n->next;
	}
	if (n != NULL && imap_node_is(n, "UID")) {
		out->uid = true;
		n = n->next;
	}
	for (; n != NULL; n = v->next) {
		if ((v = n->next) == NULL || n->type != IMAP_NODE_ATOM) {
			*errstr = "malformed ESEARCH item";
			return -1;
		}
		if (strcasecmp(n->s, "MIN") == 0) {
			out->has_min = node_u32(v, &out->min) == 0;
		} else if (strcasecmp(n->s, "MAX") == 0) {
			out->has_max = node_u32(v, &out->max) == 0;
		} else if (strcasecmp(n->s, "COUNT") == 0) {
			out->has_count = node_u32(v, &out->count) == 0;
		} else if (strcasecmp(n->s, "MODSEQ") == 0) {
			if (v->type != IMAP_NODE_NUMBER) {
				*errstr = "malformed ESEARCH MODSEQ";
				return -1;
			}
			out->modseq = v->num;
			continue;
		} else if (strcasecmp(n->s, "ALL") == 0) {
			if (node_set(v, &out->all, errstr) < 0)
				return -1;
			continue;
		} else {
			continue; /* an extension's item */
		}
		if ((strcasecmp(n->s, "MIN") == 0 && !out->has_min) ||
		    (strcasecmp(n->s, "MAX") == 0 && !out->has_max) ||
		    (strcasecmp(n->s, "COUNT") == 0 && !out->has_count)) {
			*errstr = "malformed ESEARCH number";
			return -1;
		}
	}
	return 0;
}

/* ---- FETCH ---- */

/* The IMAP_FLAG_* bits of a flag list. */
uint32_t
imap_flags_of(const struct imap_node *list)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} fl[] = {
	    {"\\Seen", IMAP_FLAG_SEEN},          {"\\Answered", IMAP_FLAG_ANSWERED},
	    {"\\Flagged", IMAP_FLAG_FLAGGED},    {"\\Deleted", IMAP_FLAG_DELETED},
	    {"\\Draft", IMAP_FLAG_DRAFT},        {"\\Recent", IMAP_FLAG_RECENT},
	    {"$Forwarded", IMAP_FLAG_FORWARDED},
	};
	uint32_t bits = 0;
	const struct imap_node *n;

	if (list == NULL || list->type != IMAP_NODE_LIST)
		return 0;
	for (n = list->child; n != NULL; n = n->next)
		if (n->type == IMAP_NODE_ATOM)
			for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
				if (strcasecmp(n->s, fl[i].name) == 0)
					bits |= fl[i].bit;
	return bits;
}

/* An nstring: a string's text, NULL for NIL (atoms and numbers taken too). */
static int
nstring(const struct imap_node *n, const char **out)
{
	if (n == NULL || n->type == IMAP_NODE_LIST)
		return -1;
	*out = imap_node_str(n);
	return 0;
}

/* An address list: a LIST of addresses, or NIL. */
static int
addr_list(const struct imap_node *n, const struct imap_node **out)
{
	if (n == NULL)
		return -1;
	if (n->type == IMAP_NODE_NIL) {
		*out = NULL;
		return 0;
	}
	if (n->type != IMAP_NODE_LIST)
		return -1;
	*out = n;
	return 0;
}

/* The ten fields of an ENVELOPE. 0 or -1. */
static int
envelope_read(const struct imap_node *l, struct imap_envelope *e)
{
	const struct imap_node *n;

	memset(e, 0, sizeof(*e));
	if (l == NULL || l->type != IMAP_NODE_LIST || l->n < 10)
		return -1;
	n = l->child;
	if (nstring(n, &e->date) < 0 || nstring(n = n->next, &e->subject) < 0 ||
	    addr_list(n = n->next, &e->from) < 0 || addr_list(n = n->next, &e->sender) < 0 ||
	    addr_list(n = n->next, &e->reply_to) < 0 || addr_list(n = n->next, &e->to) < 0 ||
	    addr_list(n = n->next, &e->cc) < 0 || addr_list(n = n->next, &e->bcc) < 0 ||
	    nstring(n = n->next, &e->in_reply_to) < 0 || nstring(n = n->next, &e->message_id) < 0)
		return -1;
	return 0;
}

/* One address of an address list. */
int
imap_address_get(const struct imap_node *list, uint32_t index, struct imap_address *out)
{
	const struct imap_node *a = imap_node_child(list, index), *n;

	memset(out, 0, sizeof(*out));
	if (a == NULL || a->type != IMAP_NODE_LIST || a->n != 4)
		return -1;
	n = a->child;
	if (nstring(n, &out->name) < 0 || nstring(n = n->next, &out->adl) < 0 ||
	    nstring(n = n->next, &out->mailbox) < 0 || nstring(n = n->next, &out->host) < 0)
		return -1;
	return 0;
}

/* A body parameter's value by name. */
const char *
imap_param(const struct imap_node *params, const char *name)
{
	const struct imap_node *k;

	if (params == NULL || params->type != IMAP_NODE_LIST)
		return NULL;
	for (k = params->child; k != NULL && k->next != NULL; k = k->next->next)
		if (k->type == IMAP_NODE_STRING && strcasecmp(k->s, name) == 0)
			return imap_node_str(k->next);
	return NULL;
}

/* Free a body tree and its siblings. */
void
imap_body_free(struct imap_body *b)
{
	while (b != NULL) {
		struct imap_body *next = b->next;

		imap_body_free(b->child);
		free(b);
		b = next;
	}
}

/* A section number: prefix.k, or k when prefix is empty. */
static void
section_of(char *out, const char *prefix, unsigned k)
{
	if (prefix[0] == '\0')
		snprintf(out, 64, "%u", k);
	else
		snprintf(out, 64, "%.50s.%u", prefix, k);
}

static struct imap_body *body_read(const struct imap_node *l, const char *section, bool top);

/* Body extension: disposition ("attachment" (params)) or NIL. */
static void
disposition_read(const struct imap_node *n, struct imap_body *b)
{
	if (n != NULL && n->type == IMAP_NODE_LIST && n->n >= 1) {
		b->disposition = imap_node_str(n->child);
		if (n->child->next != NULL && n->child->next->type == IMAP_NODE_LIST)
			b->disp_params = n->child->next;
	}
}

/*
 * One body (a LIST) at section: top is true for a message's own body (the
 * whole message, or the body of a message/rfc822 part), whose single part
 * is numbered section.1 and whose multipart parts section.k.
 */
static struct imap_body *
body_read(const struct imap_node *l, const char *section, bool top)
{
	struct imap_body *b;
	const struct imap_node *n;

	if (l == NULL || l->type != IMAP_NODE_LIST || l->n < 2)
		return NULL;
	b = xcalloc(1, sizeof(*b));
	if (l->child->type == IMAP_NODE_LIST) {
		struct imap_body *last = NULL, *c;
		unsigned k = 0;

		b->multipart = true;
		b->type = "MULTIPART";
		snprintf(b->section, sizeof(b->section), "%s", section);
		for (n = l->child; n != NULL && n->type == IMAP_NODE_LIST; n = n->next) {
			char sub[64];

			section_of(sub, section, ++k);
			if ((c = body_read(n, sub, false)) == NULL)
				goto bad;
			if (last == NULL)
				b->child = c;
			else
				last->next = c;
			last = c;
		}
		if (n == NULL || (b->subtype = imap_node_str(n)) == NULL)
			goto bad;
		if ((n = n->next) != NULL) {
			if (n->type == IMAP_NODE_LIST)
				b->params = n;
			if ((n = n->next) != NULL)
				disposition_read(n, b);
		}
		return b;
	}
	if (top)
		section_of(b->section, section, 1);
	else
		snprintf(b->section, sizeof(b->section), "%s", section);
	n = l->child;
	if ((b->type = imap_node_str(n)) == NULL || (b->subtype = imap_node_str(n->next)) == NULL)
		goto bad;
	n = n->next->next;
	if (n == NULL || (n->type != IMAP_NODE_LIST && n->type != IMAP_NODE_NIL))
		goto bad;
	if (n->type == IMAP_NODE_LIST)
		b->params = n;
	if (nstring(n = n->next, &b->id) < 0 || nstring(n = n->next, &b->description) < 0 ||
	    nstring(n = n->next, &b->encoding) < 0 || (n = n->next) == NULL ||
	    n->type != IMAP_NODE_NUMBER)
		goto bad;
	b->size = n->num;
	n = n->next;
	if (strcasecmp(b->type, "MESSAGE") == 0 &&
	    (strcasecmp(b->subtype, "RFC822") == 0 || strcasecmp(b->subtype, "GLOBAL") == 0) &&
	    n != NULL && n->type == IMAP_NODE_LIST) {
		/* envelope, body, lines */
		if ((n = n->next) == NULL || (b->child = body_read(n, b->section, true)) == NULL)
			goto bad;
		if ((n = n->next) == NULL || n->type != IMAP_NODE_NUMBER)
			goto bad;
		b->lines = (uint32_t)n->num;
		n = n->next;
	} else if (strcasecmp(b->type, "TEXT") == 0) {
		if (n == NULL || n->type != IMAP_NODE_NUMBER)
			goto bad;
		b->lines = (uint32_t)n->num;
		n = n->next;
	}
	if (n != NULL) /* md5 */
		disposition_read(n->next, b);
	return b;
bad:
	imap_body_free(b);
	return NULL;
}

/* The part numbered section in a body tree. */
const struct imap_body *
imap_body_find(const struct imap_body *b, const char *section)
{
	const struct imap_body *f;

	for (; b != NULL; b = b->next) {
		if (!b->multipart && strcmp(b->section, section) == 0)
			return b;
		if (b->multipart && section[0] == '\0' && b->section[0] == '\0')
			return b;
		if ((f = imap_body_find(b->child, section)) != NULL)
			return f;
	}
	return NULL;
}

/* "BODY[1.2]<0>" or "BINARY[2]" into an item. 0, or -1 if it is neither. */
static int
body_item(const struct imap_node *name, struct imap_body_item *it)
{
	const char *s = name->s, *lb = strchr(s, '['), *rb;
	size_t nl, sl;

	if (lb == NULL || (rb = strchr(lb, ']')) == NULL)
		return -1;
	nl = (size_t)(lb - s);
	if (nl == 4 && strncasecmp(s, "BODY", 4) == 0)
		it->binary = false;
	else if (nl == 6 && strncasecmp(s, "BINARY", 6) == 0)
		it->binary = true;
	else
		return -1;
	it->item = s;
	sl = (size_t)(rb - lb - 1);
	if (sl >= sizeof(it->section))
		sl = sizeof(it->section) - 1;
	memcpy(it->section, lb + 1, sl);
	it->section[sl] = '\0';
	it->has_origin = false;
	it->origin = 0;
	if (rb[1] == '<') {
		char *e;

		it->origin = strtoull(rb + 2, &e, 10);
		if (e == rb + 2 || *e != '>')
			return -1;
		it->has_origin = true;
	}
	return 0;
}

/* Free what a FETCH reading owns (its body tree). */
void
imap_fetch_clear(struct imap_fetch *f)
{
	imap_body_free(f->body);
	memset(f, 0, sizeof(*f));
}

/* A FETCH response's items, each checked for its shape. */
int
imap_fetch_read(const struct imap_response *r, struct imap_fetch *out, const char **errstr)
{
	const struct imap_node *l = r->data, *k, *v;

	memset(out, 0, sizeof(*out));
	if (r->kind != IMAP_RESP_DATA || !r->has_number || l == NULL || l->type != IMAP_NODE_LIST ||
	    l->next != NULL) {
		*errstr = "malformed FETCH response";
		return -1;
	}
	out->seq = r->number;
	for (k = l->child; k != NULL; k = v->next) {
		if ((v = k->next) == NULL || k->type != IMAP_NODE_ATOM) {
			*errstr = "malformed FETCH item";
			goto fail;
		}
		if (strcasecmp(k->s, "UID") == 0) {
			if (node_u32(v, &out->uid) < 0 || out->uid == 0) {
				*errstr = "bad FETCH UID";
				goto fail;
			}
			out->have |= IMAP_FETCH_UID;
		} else if (strcasecmp(k->s, "FLAGS") == 0) {
			if (v->type != IMAP_NODE_LIST) {
				*errstr = "bad FETCH FLAGS";
				goto fail;
			}
			out->flag_list = v;
			out->flags = imap_flags_of(v);
			out->have |= IMAP_FETCH_FLAGS;
		} else if (strcasecmp(k->s, "MODSEQ") == 0) {
			if (v->type != IMAP_NODE_LIST || v->n != 1 ||
			    v->child->type != IMAP_NODE_NUMBER) {
				*errstr = "bad FETCH MODSEQ";
				goto fail;
			}
			out->modseq = v->child->num;
			out->have |= IMAP_FETCH_MODSEQ;
		} else if (strcasecmp(k->s, "INTERNALDATE") == 0) {
			if (v->type != IMAP_NODE_STRING ||
			    imap_datetime_parse(v->s, &out->internaldate) < 0) {
				*errstr = "bad FETCH INTERNALDATE";
				goto fail;
			}
			out->have |= IMAP_FETCH_INTERNALDATE;
		} else if (strcasecmp(k->s, "RFC822.SIZE") == 0) {
			if (v->type != IMAP_NODE_NUMBER) {
				*errstr = "bad FETCH RFC822.SIZE";
				goto fail;
			}
			out->size = v->num;
			out->have |= IMAP_FETCH_SIZE;
		} else if (strcasecmp(k->s, "ENVELOPE") == 0) {
			if (envelope_read(v, &out->envelope) < 0) {
				*errstr = "bad FETCH ENVELOPE";
				goto fail;
			}
			out->have |= IMAP_FETCH_ENVELOPE;
		} else if (strcasecmp(k->s, "BODYSTRUCTURE") == 0 ||
		           strcasecmp(k->s, "BODY") == 0) {
			imap_body_free(out->body);
			if ((out->body = body_read(v, "", true)) == NULL) {
				*errstr = "bad FETCH BODYSTRUCTURE";
				goto fail;
			}
			out->have |= IMAP_FETCH_BODYSTRUCTURE;
		} else if (strchr(k->s, '[') != NULL && (strncasecmp(k->s, "BODY[", 5) == 0 ||
		                                         strncasecmp(k->s, "BINARY[", 7) == 0)) {
			struct imap_body_item *it;

			if (out->nitems == IMAP_FETCH_BODY_ITEMS) {
				*errstr = "too many FETCH body items";
				goto fail;
			}
			it = &out->items[out->nitems];
			if (body_item(k, it) < 0 ||
			    (v->type != IMAP_NODE_STRING && v->type != IMAP_NODE_NIL)) {
				*errstr = "bad FETCH body item";
				goto fail;
			}
			it->value = v;
			out->nitems++;
		}
	}
	return 0;
fail:
	imap_fetch_clear(out);
	return -1;
}

/* ---- dates ---- */

/* An IMAP date-time as UTC seconds. */
int
imap_datetime_parse(const char *s, time_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	int day, year, hh, mm, ss, zone, n = 0, m;
	char mon[4], sign;

	memset(&tm, 0, sizeof(tm));
	if (s[0] == ' ')
		s++;
	if (sscanf(s, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss,
	           &sign, &zone, &n) != 8 ||
	    s[n] != '\0' || (sign != '+' && sign != '-'))
		return -1;
	for (m = 0; m < 12; m++)
		if (strncasecmp(mon, months + 3 * m, 3) == 0)
			break;
	if (m == 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zone > 2359 ||
	    year < 1900)
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = m;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*out = timegm(&tm) - (sign == '-' ? -1 : 1) * ((zone / 100) * 3600 + (zone % 100) * 60);
	return 0;
}
