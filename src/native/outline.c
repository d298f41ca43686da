/*
 * outline.c: a large message rebuilt from its structure (see outline.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "native/outline.h"

/* Multipart nesting an outline follows (msgconv's MSGCONV_MAX_DEPTH). */
#define OL_DEPTH_MAX 32

void
outline_build_free(struct outline_build *ob)
{
	if (ob == NULL)
		return;
	for (size_t i = 0; i <= MBX_IMAP_TEXTS; i++)
		free(ob->seg[i].p);
	for (size_t i = 0; i < MBX_IMAP_TEXTS; i++)
		free(ob->text[i]);
	free(ob->parts);
	free(ob);
}

/* Whether s is a non-empty MIME token (RFC 2045), so that it can be written as it is. */
static bool
ol_token(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 200)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p <= ' ' || *p >= 127 || strchr("()<>@,;:\\\"/[]?=", *p) != NULL)
			return false;
	}
	return true;
}

/* A parameter list as the structure gives it: ";\r\n\tname=\"value\"" each, boundary its own. */
static void
ol_params(struct sbuf *s, const struct imap_node *params, const char *boundary)
{
	if (params != NULL && params->type == IMAP_NODE_LIST) {
		for (const struct imap_node *k = params->child; k && k->next; k = k->next->next) {
			const struct imap_node *v = k->next;
			if (k->type != IMAP_NODE_STRING || v->type != IMAP_NODE_STRING ||
			    !ol_token(k->s) || strcasecmp(k->s, "boundary") == 0)
				continue;
			sbuf_printf(s, ";\r\n\t%s=\"", k->s);
			for (size_t i = 0; i < v->len; i++) {
				char ch = v->s[i];
				if (ch == '\r' || ch == '\n' || ch == '\0')
					continue;
				if (ch == '"' || ch == '\\')
					sbuf_addn(s, "\\", 1);
				sbuf_addn(s, &ch, 1);
			}
			sbuf_addn(s, "\"", 1);
		}
	}
	if (boundary != NULL)
		sbuf_printf(s, ";\r\n\tboundary=\"%s\"", boundary);
}

/* The decoded size of a part of an encoded size (base64 lines of 76 taken: an estimate). */
static uint64_t
ol_decoded(const struct imap_body *b)
{
	if (b->encoding != NULL && strcasecmp(b->encoding, "BASE64") == 0) {
		uint64_t chars = b->size - b->size / 78 * 2;
		return chars / 4 * 3;
	}
	return b->size;
}

/* Whether leaf b is a text part of the main body, as msgconv reads one (not attached, unnamed). */
static char
ol_body_kind(const struct imap_body *b)
{
	if (b->type == NULL || b->subtype == NULL || strcasecmp(b->type, "TEXT") != 0 ||
	    (b->disposition != NULL && strcasecmp(b->disposition, "attachment") == 0) ||
	    imap_param(b->params, "name") != NULL || imap_param(b->params, "name*") != NULL ||
	    imap_param(b->disp_params, "filename") != NULL ||
	    imap_param(b->disp_params, "filename*") != NULL)
		return 0;
	if (strcasecmp(b->subtype, "plain") == 0)
		return 'p';
	if (strcasecmp(b->subtype, "html") == 0)
		return 'h';
	return 0;
}

/*
 * Part b into the outline: its header (unless it is the message's own body,
 * whose header is the message's), then its content: a multipart's parts
 * between its boundaries, a body text part's place (fetched next), nothing
 * for any other leaf, whose size the part list keeps.
 */
static void
ol_part(struct outline_build *ob, const struct imap_body *b, bool headers, int depth)
{
	struct sbuf *s = &ob->seg[ob->ntexts];
	const char *bd = NULL;
	char made[64];

	if (b->multipart) {
		bd = imap_param(b->params, "boundary");
		if (bd == NULL || *bd == '\0' || strlen(bd) > 70 ||
		    strpbrk(bd, "\"\\\r\n") != NULL) {
			snprintf(made, sizeof(made), "=_abq-outline-%u", ob->nbound++);
			bd = made;
		}
	}
	if (headers) {
		sbuf_printf(s, "Content-Type: %s/%s", ol_token(b->type) ? b->type : "application",
		            ol_token(b->subtype) ? b->subtype : "octet-stream");
		ol_params(s, b->params, bd);
		sbuf_add(s, "\r\n");
		if (!b->multipart && ol_token(b->encoding))
			sbuf_printf(s, "Content-Transfer-Encoding: %s\r\n", b->encoding);
		if (!b->multipart && b->id != NULL && strpbrk(b->id, "\r\n") == NULL &&
		    strlen(b->id) < 1000)
			sbuf_printf(s, "Content-ID: %s\r\n", b->id);
		if (ol_token(b->disposition)) {
			sbuf_printf(s, "Content-Disposition: %s", b->disposition);
			ol_params(s, b->disp_params, NULL);
			sbuf_add(s, "\r\n");
		}
		sbuf_add(s, "\r\n");
	}
	if (b->multipart) {
		for (const struct imap_body *c = b->child; c != NULL; c = c->next) {
			sbuf_printf(&ob->seg[ob->ntexts], "--%s\r\n", bd);
			if (depth + 1 < OL_DEPTH_MAX)
				ol_part(ob, c, true, depth + 1);
			else
				sbuf_add(&ob->seg[ob->ntexts], "\r\n");
			sbuf_add(&ob->seg[ob->ntexts], "\r\n");
		}
		sbuf_printf(&ob->seg[ob->ntexts], "--%s--\r\n", bd);
		return;
	}
	if (ob->nparts == ob->parts_cap) {
		ob->parts_cap = ob->parts_cap ? ob->parts_cap * 2 : 8;
		ob->parts = xrealloc(ob->parts, ob->parts_cap * sizeof(*ob->parts));
	}
	struct mbx_outline_part *p = &ob->parts[ob->nparts++];
	memset(p, 0, sizeof(*p));
	snprintf(p->section, sizeof(p->section), "%s", b->section[0] ? b->section : "1");
	p->size = ol_decoded(b);
	p->body = ol_body_kind(b);
	if (p->body == 0 || b->size == 0)
		return;
	if (ob->ntexts == MBX_IMAP_TEXTS || ob->budget == 0) {
		p->cut = true;
		return;
	}
	uint64_t max = b->size < MBX_IMAP_TEXT_CAP ? b->size : MBX_IMAP_TEXT_CAP;
	if (max > ob->budget)
		max = ob->budget;
	ob->budget -= max;
	p->cut = max < b->size;
	snprintf(ob->sec[ob->ntexts], sizeof(ob->sec[0]), "%s", p->section);
	ob->max[ob->ntexts] = max;
	ob->qp[ob->ntexts] =
	    b->encoding != NULL && strcasecmp(b->encoding, "QUOTED-PRINTABLE") == 0;
	ob->ntexts++;
}

/*
 * The outline's start from the message's header and structure: the header
 * (cut to whole lines, ending in its blank line), the parts.
 */
struct outline_build *
outline_start(const char *hdr, size_t hlen, const struct imap_body *body)
{
	struct outline_build *ob = xcalloc(1, sizeof(*ob));
	size_t n = hlen;

	while (n > 0 && hdr[n - 1] != '\n')
		n--; /* a header cut by its cap: whole lines only */
	while (n > 0 && (hdr[n - 1] == '\n' || hdr[n - 1] == '\r'))
		n--;
	sbuf_addn(&ob->seg[0], hdr, n);
	sbuf_add(&ob->seg[0], "\r\n\r\n");
	ob->budget = MBX_IMAP_RAW_CAP;
	ol_part(ob, body, false, 0);
	return ob;
}

/* Text k as fetched (see outline.h). */
void
outline_text(struct outline_build *ob, size_t k, const char *p, size_t len)
{
	if (k >= ob->ntexts || ob->text[k] != NULL)
		return;
	ob->text_len[k] = len < ob->max[k] ? len : (size_t)ob->max[k];
	ob->text[k] = xmemdup0(p ? p : "", ob->text_len[k]);
}

/* The outline whole (see outline.h). */
void
outline_finish(struct outline_build *ob, char **out, size_t *out_len,
               struct mbx_outline_part **parts, size_t *nparts)
{
	struct sbuf s = {0};

	for (size_t i = 0; i <= ob->ntexts; i++) {
		sbuf_addn(&s, ob->seg[i].p ? ob->seg[i].p : "", ob->seg[i].len);
		if (i == ob->ntexts)
			break;
		size_t n = ob->text_len[i];
		if (ob->qp[i] && n >= (size_t)ob->max[i]) {
			/* no escape cut in two: "=" or "=X" at the end dropped */
			for (size_t k = 1; k <= 2 && k <= n; k++) {
				if (ob->text[i][n - k] == '=') {
					n -= k;
					break;
				}
			}
		}
		sbuf_addn(&s, ob->text[i] ? ob->text[i] : "", n);
	}
	*out = s.p ? s.p : xstrdup("");
	*out_len = s.len;
	*parts = ob->parts;
	*nparts = ob->nparts;
	ob->parts = NULL;
	outline_build_free(ob);
}
