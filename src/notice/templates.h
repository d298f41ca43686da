/*
 * templates.h: the texts of notices, built in (English) or stored per
 * global/domain scope and locale, and the choice among them.
 */
#ifndef ABQ_NOTICE_TEMPLATES_H
#define ABQ_NOTICE_TEMPLATES_H

#include "notice/render.h"
#include "store/store.h"

/* The built-in English template of kind, or NULL for an unknown kind. */
const struct abq_template *notice_template_builtin(const char *kind);

/*
 * The language part of a device's OSLanguage: "de-DE" -> "de", "German" ->
 * "de", "de" -> "de". Writes at most size bytes to out; "" when unknown.
 */
void notice_locale_lang(const char *os_language, char *out, size_t size);

/*
 * The stored template of kind for a device of domain (NULL or "": none) whose
 * OSLanguage is locale (may be NULL), looked up in this order, the one order
 * of every notice and of the quarantine mailbox's alert: domain+locale,
 * domain+language, global+locale, global+language. Returns 1 with *out the
 * stored template as stored (abq_template_clear it), 0 when none is stored
 * (*out zeroed), or -1 with *errstr_r (a store failure).
 */
int notice_template_find(struct abq_store *s, const char *domain, const char *kind,
                         const char *locale, struct abq_template *out, const char **errstr_r);

/*
 * Choose the template of kind for a device of domain (NULL: none) whose
 * OSLanguage is locale (may be NULL): the stored one notice_template_find
 * finds, else the built-in English one. Fields
 * the chosen template leaves NULL come from the built-in one. *out is filled
 * with copies (abq_template_clear it). Returns 0, or -1 with *errstr_r (a
 * store failure or an unknown kind).
 */
int notice_template_select(struct abq_store *s, const char *domain, const char *kind,
                           const char *locale, struct abq_template *out, const char **errstr_r);

/* s with every placeholder ph (e.g. "{first_seen}") replaced by val: a new string. */
char *notice_replace(const char *s, const char *ph, const char *val);

/*
 * The placeholders' values for device d (owned by d and email: f borrows them),
 * and its first-seen time as "YYYY-MM-DD HH:MM:SS UTC" ("unknown" when not
 * known) in when, for {first_seen}.
 */
void notice_device_facts(const struct abq_device *d, const char *email, const char *contact,
                         struct notice_facts *f, char when[64]);
/*
 * One template text rendered for a device: {first_seen} replaced by when, then
 * the facts' placeholders (notice_render_template). A new string; NULL for NULL.
 */
char *notice_render(const char *tmpl, const struct notice_facts *f, const char *when, bool html);

#endif
