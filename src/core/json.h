/*
 * json.h: the JSON shapes of the registry's records, shared by abqctl --json
 * and the admin API (docs/abqctl.md, docs/api.md), so that both print the very
 * same objects.
 *
 * Every function returns a new reference (jansson); NULL strings, 0 times and
 * ABQ_*_NONE values become null.
 */
#ifndef ABQ_CORE_JSON_H
#define ABQ_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/registry.h"

json_t *jstr(const char *s);
json_t *jtime(int64_t t);
json_t *jstate(enum abq_state s);
json_t *jreason(enum abq_reason r);
json_t *jid(int64_t id);

json_t *device_json(const struct abq_device *d);
json_t *entry_json(const struct abq_entry *e);
/*
 * A list entry no device has used yet, as a row of a device listing: the
 * device object with the entry's account (null for every account), DeviceId,
 * state (reason Individual), creator and time, the device's facts null, and
 * "notSeenYet": true, which no device row has.
 */
json_t *unseen_entry_json(const struct abq_entry *e);
json_t *rule_json(const struct abq_rule *r);
json_t *history_json(const struct abq_history *h);
/* A notice of the outbox (abqctl mobile abq outbox --json). */
json_t *notice_json(const struct abq_notice *n);
/*
 * A notice template (abqctl getABQMessage --json); the user kinds are named by
 * their short word ("quarantined"), see abq_template_kind_word.
 */
json_t *template_json(const struct abq_template *t);
/* "user-quarantined" -> "quarantined" (and blocked, allowed); other kinds as they are. */
const char *abq_template_kind_word(const char *kind);
/* The reverse: "quarantined" -> "user-quarantined"; a full kind name as it is; NULL if unknown. */
const char *abq_template_kind_parse(const char *word);

/* A rule for people: "DeviceModel glob 'SM-*' -> Blocked". A new string. */
char *fmt_rule(const struct abq_rule *r);

/*
 * The changes object of a registry operation:
 * {"ok":true,"dryRun":...,"affected":N,"id":...,"changed":[...]}.
 */
json_t *outcome_json(const struct abq_outcome *o, bool dry_run);

/* explain: the sentence for people (a new string) and the JSON object. */
char *abq_explain_text(const struct abq_explanation *x);
char *abq_explain_mode_source(const struct abq_explanation *x);
json_t *explain_json(const struct abq_explanation *x);

#endif
