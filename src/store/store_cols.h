/*
 * store_cols.h: the column lists both backends select and insert, in the
 * order their row readers expect. One list per table, shared so that the
 * SQLite and PostgreSQL backends cannot drift apart (internal to src/store).
 */
#ifndef ABQ_STORE_COLS_H
#define ABQ_STORE_COLS_H

#define DEVICE_COLS                                                                                \
	"account, device_id, device_type, model, imei, friendly_name, os, os_language, "           \
	"phone_number, mobile_operator, user_agent, eas_version, last_address, last_command, "     \
	"first_seen, last_seen, state, reason, rule_id, state_by, state_at"
#define ENTRY_COLS "device_id, account, state, created_by, created_at"
#define RULE_COLS                                                                                  \
	"id, characteristic, match, pattern, level, rule_order, domain, created_by, created_at"
#define ATTR_COLS    "scope, target, name, value, set_by, set_at"
#define HISTORY_COLS "id, at, who, what, subject, old_value, new_value, reason, device_id, account"
#define CHANGE_COLS  "seq, at, kind, key"
#define NOTICE_COLS                                                                                \
	"id, recipient, kind, account, device_id, template_ref, rendered, state, attempts, "       \
	"next_attempt, last_error, created, sent"
#define TEMPLATE_COLS                                                                              \
	"scope, domain, kind, locale, from_addr, reply_to, subject, body_plain, body_html, "       \
	"set_by, set_at"
#define ADMIN_COLS     "name, password_hash, created_by, created_at, password_at, last_login"
#define SYNCSTATE_COLS "account, device_id, collection, state, updated"
#define TOKEN_COLS     "id, admin, label, hash, created_by, created_at, last_used"

#endif
