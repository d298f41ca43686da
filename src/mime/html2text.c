/*
 * html2text.c: an HTML body as plain text (html2text.h).
 *
 * The tree libxml2 builds is walked without recursion (first child, next
 * sibling, parent), so a deeply nested body costs no stack; the lists and
 * links open at once are tracked up to a small depth, deeper ones rendered
 * as plain text.
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "lib/util.h"
#include "mime/html2text.h"

#define H2T_STACK 16 /* lists and links tracked at once */

struct h2t {
	struct sbuf out;
	int nl;     /* line breaks owed before the next text (at most 2) */
	int trail;  /* line breaks at the end of out */
	bool space; /* a space owed before the next text */
	int pre;    /* <pre> elements open */
	int lists;  /* <ul>/<ol> open (the first H2T_STACK tracked) */
	bool ordered[H2T_STACK];
	int item[H2T_STACK];
	int links; /* <a> open (the first H2T_STACK tracked) */
	size_t link_start[H2T_STACK];
	char *link_href[H2T_STACK];
};

/* Whether element name is one of the NULL-terminated names. */
static bool
name_in(const xmlChar *name, const char *const *names)
{
	for (; *names; names++)
		if (xmlStrcasecmp(name, (const xmlChar *)*names) == 0)
			return true;
	return false;
}

/* Elements whose content a reader never sees. */
static const char *const skipped[] = {"script", "style", "head", "title", "template", NULL};
/* Blocks set off by an empty line. */
static const char *const paragraphs[] = {"p",          "h1",    "h2", "h3", "h4", "h5", "h6", "pre",
                                         "blockquote", "table", "ul", "ol", "dl", "hr", NULL};
/* Blocks that start on a line of their own. */
static const char *const blocks[] = {"div",     "li",      "tr",     "dt",    "dd",    "section",
                                     "article", "header",  "footer", "nav",   "form",  "address",
                                     "center",  "caption", "figure", "main",  "aside", "fieldset",
                                     "body",    "tbody",   "thead",  "tfoot", NULL};

/* Append n bytes as they are, keeping the count of trailing line breaks. */
static void
put(struct h2t *h, const char *s, size_t n)
{
	if (n == 0)
		return;
	sbuf_addn(&h->out, s, n);
	size_t k = 0;
	while (k < n && s[n - 1 - k] == '\n')
		k++;
	h->trail = k == n ? h->trail + (int)k : (int)k;
}

/* Pay the line breaks or the space owed before text (none at the very start). */
static void
flush(struct h2t *h)
{
	if (h->out.len == 0) {
		h->nl = 0;
		h->space = false;
		return;
	}
	if (h->nl > 0) {
		while (h->trail < h->nl)
			put(h, "\n", 1);
		h->nl = 0;
		h->space = false;
		return;
	}
	if (h->space && h->trail == 0)
		put(h, " ", 1);
	h->space = false;
}

/* Owe at least n line breaks (1: a new line, 2: an empty line). */
static void
owe_break(struct h2t *h, int n)
{
	if (h->nl < n)
		h->nl = n;
}

/* A text node: white space collapsed outside <pre>. */
static void
text(struct h2t *h, const char *s)
{
	if (h->pre > 0) {
		if (*s) {
			flush(h);
			put(h, s, strlen(s));
		}
		return;
	}
	while (*s) {
		size_t ws = strspn(s, " \t\r\n\f\v");
		if (ws > 0) {
			h->space = true;
			s += ws;
			continue;
		}
		size_t run = strcspn(s, " \t\r\n\f\v");
		flush(h);
		put(h, s, run);
		s += run;
	}
}

/* Whether a link's address is worth showing after its text. */
static bool
shown_href(const char *href)
{
	return strncasecmp(href, "http://", 7) == 0 || strncasecmp(href, "https://", 8) == 0 ||
	       strncasecmp(href, "mailto:", 7) == 0 || strncasecmp(href, "ftp://", 6) == 0;
}

/* An element opens (or a leaf is met): whether to walk into its children. */
static bool
enter(struct h2t *h, xmlNode *n)
{
	if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
		if (n->content)
			text(h, (const char *)n->content);
		return false;
	}
	if (n->type != XML_ELEMENT_NODE || n->name == NULL)
		return n->type == XML_DOCUMENT_NODE || n->type == XML_HTML_DOCUMENT_NODE;
	const xmlChar *name = n->name;
	if (name_in(name, skipped))
		return false;
	if (xmlStrcasecmp(name, (const xmlChar *)"br") == 0) {
		if (h->out.len > 0 && h->trail < 2) {
			h->nl = 0;
			h->space = false;
			put(h, "\n", 1);
		}
		return false;
	}
	if (xmlStrcasecmp(name, (const xmlChar *)"img") == 0) {
		xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");
		if (alt) {
			text(h, (const char *)alt);
			xmlFree(alt);
		}
		return false;
	}
	if (name_in(name, paragraphs))
		owe_break(h, 2);
	else if (name_in(name, blocks))
		owe_break(h, 1);
	if (xmlStrcasecmp(name, (const xmlChar *)"pre") == 0)
		h->pre++;
	else if (xmlStrcasecmp(name, (const xmlChar *)"ul") == 0 ||
	         xmlStrcasecmp(name, (const xmlChar *)"ol") == 0) {
		if (h->lists < H2T_STACK) {
			h->ordered[h->lists] = xmlStrcasecmp(name, (const xmlChar *)"ol") == 0;
			h->item[h->lists] = 0;
		}
		h->lists++;
	} else if (xmlStrcasecmp(name, (const xmlChar *)"li") == 0) {
		char mark[32];
		int l = h->lists > H2T_STACK ? H2T_STACK : h->lists;
		flush(h);
		for (int i = 1; i < l; i++)
			put(h, "  ", 2);
		if (l > 0 && h->ordered[l - 1])
			snprintf(mark, sizeof(mark), "%d. ", ++h->item[l - 1]);
		else
			snprintf(mark, sizeof(mark), "- ");
		put(h, mark, strlen(mark));
	} else if (xmlStrcasecmp(name, (const xmlChar *)"td") == 0 ||
	           xmlStrcasecmp(name, (const xmlChar *)"th") == 0) {
		h->space = true;
	} else if (xmlStrcasecmp(name, (const xmlChar *)"a") == 0) {
		if (h->links < H2T_STACK) {
			xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
			h->link_href[h->links] = href && shown_href((const char *)href)
			                             ? xstrdup((const char *)href)
			                             : NULL;
			if (href)
				xmlFree(href);
			flush(h);
			h->link_start[h->links] = h->out.len;
		}
		h->links++;
	}
	return true;
}

/* An element closes. */
static void
leave(struct h2t *h, xmlNode *n)
{
	if (n->type != XML_ELEMENT_NODE || n->name == NULL || name_in(n->name, skipped))
		return;
	const xmlChar *name = n->name;
	if (xmlStrcasecmp(name, (const xmlChar *)"pre") == 0 && h->pre > 0)
		h->pre--;
	else if ((xmlStrcasecmp(name, (const xmlChar *)"ul") == 0 ||
	          xmlStrcasecmp(name, (const xmlChar *)"ol") == 0) &&
	         h->lists > 0)
		h->lists--;
	else if (xmlStrcasecmp(name, (const xmlChar *)"a") == 0 && h->links > 0) {
		h->links--;
		if (h->links < H2T_STACK && h->link_href[h->links] != NULL) {
			const char *href = h->link_href[h->links];
			const char *shown = strncasecmp(href, "mailto:", 7) == 0 ? href + 7 : href;
			size_t start = h->link_start[h->links];
			size_t tl = h->out.len - start;
			const char *t = h->out.p ? h->out.p + start : "";
			/* The text alone when it is the address already. */
			if (!(tl == strlen(shown) && memcmp(t, shown, tl) == 0) &&
			    !(tl == strlen(href) && memcmp(t, href, tl) == 0)) {
				if (tl > 0)
					put(h, " ", 1);
				put(h, "<", 1);
				put(h, href, strlen(href));
				put(h, ">", 1);
			}
			free(h->link_href[h->links]);
			h->link_href[h->links] = NULL;
		}
	}
	if (name_in(name, paragraphs))
		owe_break(h, 2);
	else if (name_in(name, blocks))
		owe_break(h, 1);
}

char *
html_to_text(const char *html, size_t len, size_t *len_r)
{
	struct h2t h = {0};
	htmlDocPtr doc;

	if (len > INT_MAX)
		len = INT_MAX;
	/* The encoding given wins over any <meta charset>: the caller decoded it. */
	doc = len ? htmlReadMemory(html, (int)len, NULL, "UTF-8",
	                           HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
	                               HTML_PARSE_NONET)
	          : NULL;
	if (doc != NULL) {
		xmlNode *n = doc->children;
		while (n != NULL) {
			if (enter(&h, n) && n->children) {
				n = n->children;
				continue;
			}
			leave(&h, n);
			while (n != NULL && n->next == NULL) {
				n = n->parent;
				if (n == NULL || n == (xmlNode *)doc)
					n = NULL;
				else
					leave(&h, n);
			}
			if (n != NULL)
				n = n->next;
		}
		xmlFreeDoc(doc);
	}
	for (int i = 0; i < H2T_STACK; i++)
		free(h.link_href[i]);
	/* No trailing white space. */
	while (h.out.len > 0 && strchr(" \t\r\n", h.out.p[h.out.len - 1]) != NULL)
		h.out.p[--h.out.len] = '\0';
	*len_r = h.out.len;
	return sbuf_take(&h.out);
}
