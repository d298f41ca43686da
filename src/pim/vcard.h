/*
 * vcard.h: a vCard reader and writer, and the in-memory card that the
 * contact converter (contact.h) edits.
 *
 * Read: RFC 6350 (4.0), RFC 2426 (3.0) and 2.1 as old phones and Outlook
 * write it. Lines end in CRLF, a bare LF or a bare CR; a line that starts
 * with a space or a tab continues the previous one (the one white space
 * character is dropped). A 2.1 value in quoted-printable continues over soft
 * line breaks ('=' at the end of a line) and is decoded; CHARSET= (UTF-8,
 * ISO-8859-1, Windows-1252 and whatever iconv knows) is converted to UTF-8.
 * Bare 2.1 parameters become what 3.0 says: "TEL;CELL;HOME:" is
 * TYPE=CELL;TYPE=HOME, "PHOTO;JPEG;BASE64:" TYPE=JPEG;ENCODING=b. Groups
 * ("item1.EMAIL"), quoted parameter values, comma lists and the RFC 6868
 * ^-escapes are read in every version. A file may hold several cards (an
 * address book's export); a vCard nested inside a card (2.1's AGENT) is
 * skipped. Names are compared without regard to case and kept as written.
 *
 * Text: every value is kept as valid UTF-8. A 2.1 value that declares no
 * charset and is not valid UTF-8 is read as Windows-1252 (what Outlook and
 * old phones write), its five undefined bytes as ISO-8859-1; in 3.0 and 4.0
 * (UTF-8 by definition) an invalid sequence, a NUL and any other control
 * character but the tab become U+FFFD. Nothing is refused for its bytes.
 *
 * The card: its version (2.1 is read into a 3.0 card: its escapes and
 * parameters rewritten as 3.0 spells them, so that the card goes back as
 * 3.0), and its properties in order, each with its group, name, parameters
 * (decoded values) and value in its vCard text form: escapes (\n \, \; \\)
 * kept as they were, quoted-printable and charsets already undone. So a
 * property that nobody interprets is written back as it came. Accessors
 * split and unescape (vcard_text, vcard_comps, the N and ADR structures)
 * and setters escape.
 *
 * Write: 3.0 or 4.0 (the card's version), CRLF, lines folded at 75 octets
 * without splitting a UTF-8 sequence, parameter values quoted and
 * ^-escaped where they need it.
 *
 * Caps (struct vcard_limits) on the input, a line, the cards in an input,
 * the properties of a card, the parameters of a property and a photo's size
 * are refused with a static message naming the cap. Why by hand: Debian 12
 * has no C vCard library fit for a server (libebook drags in
 * evolution-data-server, libvformat is unmaintained and does not do 4.0).
 */
#ifndef ABQ_PIM_VCARD_H
#define ABQ_PIM_VCARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VCARD_V30 30
#define VCARD_V40 40

/* Caps of a parse; a zero field takes the default. */
struct vcard_limits {
	size_t max_input;  /* bytes of the whole input */
	size_t max_line;   /* bytes of one unfolded line */
	size_t max_cards;  /* cards in one input */
	size_t max_props;  /* properties in one card */
	size_t max_total;  /* properties in all the cards of one input */
	size_t max_params; /* parameter values of one property */
	size_t max_photo;  /* decoded bytes of one inline PHOTO */
	size_t max_depth;  /* nested BEGIN:VCARD inside a card */
};

#define VCARD_DEFAULT_MAX_INPUT (16u * 1024 * 1024)
#define VCARD_DEFAULT_MAX_LINE  (4u * 1024 * 1024)
#define VCARD_DEFAULT_MAX_CARDS 100000
#define VCARD_DEFAULT_MAX_PROPS 2000
/*
 * An export of 10,000 contacts of 25 properties; a property costs about 150
 * bytes of memory, so this bounds what a 16 MiB input of tiny lines takes.
 */
#define VCARD_DEFAULT_MAX_TOTAL  250000
#define VCARD_DEFAULT_MAX_PARAMS 64
#define VCARD_DEFAULT_MAX_PHOTO  (2u * 1024 * 1024)
#define VCARD_DEFAULT_MAX_DEPTH  8

/* A parameter: its name as written (bare 2.1 ones named TYPE or ENCODING), its values decoded. */
struct vcard_param {
	char *name;
	char **values;
	size_t nvalues;
};

struct vcard_prop {
	char *group; /* "item1", or NULL */
	char *name;  /* as written: "EMAIL", "X-ABLabel" */
	struct vcard_param *params;
	size_t nparams;
	char *value; /* vCard text form, valid UTF-8, no line break */
};

struct vcard {
	int version;  /* VCARD_V30 or VCARD_V40 */
	bool from_21; /* read as 2.1 */
	struct vcard_prop **props;
	size_t nprops, cap;
};

/* ---- Reading and writing ---- */

/*
 * Read every card of buf[0..len) into *cards_r (an array of *n_r cards, at
 * least one; free with vcard_free_all). limits may be NULL (defaults).
 * Returns 0, or -1 with *errstr a static message and nothing allocated.
 */
int vcard_parse(const char *buf, size_t len, const struct vcard_limits *limits,
                struct vcard ***cards_r, size_t *n_r, const char **errstr);
/* The one card of buf (more than one is refused); NULL with *errstr. */
struct vcard *vcard_parse_one(const char *buf, size_t len, const struct vcard_limits *limits,
                              const char **errstr);
/* The card as text in its version (malloc'd, NUL-terminated, *len_r bytes; len_r may be NULL). */
char *vcard_write(const struct vcard *card, size_t *len_r);

struct vcard *vcard_new(int version);
void vcard_free(struct vcard *card);
void vcard_free_all(struct vcard **cards, size_t n);

/* ---- Properties ---- */

/*
 * The next property named name (any case; NULL: any) at or after index *pos,
 * which is left just past it; NULL when there is none. Start with *pos = 0.
 */
struct vcard_prop *vcard_find(const struct vcard *card, const char *name, size_t *pos);
/* The first property named name, or NULL. */
struct vcard_prop *vcard_get(const struct vcard *card, const char *name);
/* The index of prop in card, or card->nprops when it is not there. */
size_t vcard_index(const struct vcard *card, const struct vcard_prop *prop);
/*
 * A new property at the end (before: in front of that property), its value
 * given in vCard text form (raw, line breaks in it escaped) or as text to be
 * escaped (list: commas kept as separators; structured: semicolons kept).
 * group may be NULL.
 */
struct vcard_prop *vcard_add(struct vcard *card, const char *group, const char *name,
                             const char *raw);
struct vcard_prop *vcard_add_before(struct vcard *card, const struct vcard_prop *before,
                                    const char *group, const char *name, const char *raw);
struct vcard_prop *vcard_add_text(struct vcard *card, const char *name, const char *text);
/* Take prop out of the card and free it. */
void vcard_remove(struct vcard *card, struct vcard_prop *prop);
/* Remove every property named name; returns how many. */
size_t vcard_remove_all(struct vcard *card, const char *name);
/* Whether prop is named name (any case). */
bool vcard_is(const struct vcard_prop *prop, const char *name);

/* The value in vCard text form replaced (line breaks escaped, invalid UTF-8 replaced). */
void vcard_set_raw(struct vcard_prop *prop, const char *raw);
/* The value as text (unescaped, malloc'd): \n is a line feed, \, \; \\ their characters. */
char *vcard_text(const struct vcard_prop *prop);
/* The value set from text (escaped: line feeds, commas, semicolons, backslashes). */
void vcard_set_text(struct vcard_prop *prop, const char *text);

/*
 * Escaping. vcard_escape: text to vCard text form (\ , ; and line breaks
 * escaped; CRLF is one line break). vcard_unescape: the reverse, and "\:"
 * (Google's URLs) is a colon; an unknown escape such as "\x" is kept as it is.
 */
char *vcard_escape(const char *text);
char *vcard_unescape(const char *raw, size_t len);
/*
 * raw split at its unescaped sep (';' for components, ',' for list items),
 * the pieces still escaped; NULL-terminated, *n_r pieces (at least one).
 * Free with vcard_strv_free.
 */
char **vcard_split(const char *raw, char sep, size_t *n_r);
void vcard_strv_free(char **v);
/* The items of a comma list (CATEGORIES, NICKNAME), unescaped; NULL-terminated. */
char **vcard_list(const struct vcard_prop *prop, size_t *n_r);

/* ---- Parameters ---- */

struct vcard_param *vcard_param(const struct vcard_prop *prop, const char *name);
/* The first value of parameter name, or NULL. */
const char *vcard_param_value(const struct vcard_prop *prop, const char *name);
/* A new parameter with one value (another of the same name may exist). */
void vcard_param_add(struct vcard_prop *prop, const char *name, const char *value);
/* A new parameter with n values: "TYPE=work,voice". */
void vcard_param_add_list(struct vcard_prop *prop, const char *name, const char *const *values,
                          size_t n);
/* Remove every parameter named name. */
void vcard_param_remove(struct vcard_prop *prop, const char *name);
/*
 * Whether prop has type (any case) among its TYPE parameters' values (each
 * value also split at commas: TYPE="work,voice").
 */
bool vcard_has_type(const struct vcard_prop *prop, const char *type);
/*
 * The preference of prop: 1 (most preferred) to 100 from 4.0's PREF=, 1 for
 * 3.0's TYPE=pref, 101 for none.
 */
int vcard_pref(const struct vcard_prop *prop);
/* Mark prop preferred (rank 1-100) as its card's version says: PREF=rank or TYPE=pref. */
void vcard_set_pref(struct vcard *card, struct vcard_prop *prop, int rank);

/* ---- Typed accessors ---- */

/*
 * N and ADR components as text: each component's list items unescaped and
 * joined (N: with a space; ADR: street with a line feed, the others with
 * ", "). Empty components are "" (never NULL). Free with vcard_n_clear /
 * vcard_adr_clear.
 */
struct vcard_n {
	char *family, *given, *additional, *prefix, *suffix;
};
struct vcard_adr {
	char *pobox, *ext, *street, *locality, *region, *code, *country;
};
void vcard_n_get(const struct vcard_prop *prop, struct vcard_n *n);
void vcard_n_clear(struct vcard_n *n);
void vcard_adr_get(const struct vcard_prop *prop, struct vcard_adr *a);
void vcard_adr_clear(struct vcard_adr *a);
/*
 * The components of prop (N, ADR, ORG, GEO...) replaced: comps[i] (text,
 * escaped here) for i < n where comps[i] is not NULL; a NULL keeps component
 * i as it was (raw, its lists intact); missing components are added empty.
 */
void vcard_set_comps(struct vcard_prop *prop, const char *const *comps, size_t n);
/* Component i of prop as text (list items joined with joiner), malloc'd; "" if absent. */
char *vcard_comp(const struct vcard_prop *prop, size_t i, const char *joiner);

/*
 * A date (BDAY, ANNIVERSARY, X-ANNIVERSARY, X-ABDATE): 3.0's "1985-04-12",
 * 4.0's "19850412" and "--0412" (no year), a date-time's date, Apple's
 * X-APPLE-OMIT-YEAR. Returns 0 with year (0 when the card gives none),
 * month and day, or -1 (a text value, a partial date, out of range).
 */
int vcard_date(const struct vcard_prop *prop, int *year, int *month, int *day);
/* Set a date as the card's version writes it (year 0: without a year). */
void vcard_set_date(struct vcard *card, struct vcard_prop *prop, int year, int month, int day);

/*
 * An inline photo (PHOTO, LOGO): 3.0's ENCODING=b and 2.1's BASE64, 4.0's
 * data: URI. Returns 0 with the decoded bytes (malloc'd) and the media type
 * ("image/jpeg", malloc'd, NULL when not given), or -1 for a URI to fetch or
 * unreadable base64. mediatype_r may be NULL.
 */
int vcard_photo(const struct vcard_prop *prop, uint8_t **data_r, size_t *len_r, char **mediatype_r);
/* The decoded size of an inline photo without decoding it (0 for a URI). */
size_t vcard_photo_size(const struct vcard_prop *prop);
/*
 * Set prop's value to the photo (its media type sniffed from the bytes:
 * JPEG, PNG, GIF, else image/jpeg) as the card's version writes it: 3.0
 * ENCODING=b;TYPE=JPEG, 4.0 a data: URI.
 */
void vcard_set_photo(struct vcard *card, struct vcard_prop *prop, const uint8_t *data, size_t len);

/* ---- Text helpers ---- */

/*
 * s[0..len) as valid UTF-8 (malloc'd): invalid sequences, NUL and control
 * characters but tab (and, with keep_breaks, CR and LF) become U+FFFD.
 */
char *vcard_clean_utf8(const char *s, size_t len, bool keep_breaks);

#endif
