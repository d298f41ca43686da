/*
 * html2text.h: an HTML body as plain text, for a phone that asks for plain
 * text of an HTML-only message (MS-ASAIRS BodyPreference Type 1).
 *
 * libxml2's HTML parser (recovering, no network) reads the markup; the text
 * is what a reader sees: script, style, head, title and template skipped;
 * block elements, <br> and table rows as line breaks (at most one empty line
 * in a row); list items as "- " or "1. " lines; entities decoded; runs of
 * white space outside <pre> collapsed to one space; a link whose text is not
 * its address as "text <url>"; an image as its alt text.
 */
#ifndef ABQ_NATIVE_HTML2TEXT_H
#define ABQ_NATIVE_HTML2TEXT_H

#include <stddef.h>

/*
 * The text of len bytes of UTF-8 HTML, malloc'd, NUL-terminated, valid
 * UTF-8; its length in *len_r. Never NULL ("" for no text). libxml2 must have
 * been initialised (msgconv_init).
 */
char *html_to_text(const char *html, size_t len, size_t *len_r);

#endif
