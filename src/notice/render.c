/*
 * render.c: the placeholder renderer of notices and of the quarantine
 * mailbox's alert (render.h).
 *
 * Values are what a phone reported (model, OS, friendly name...): control
 * characters and bytes that are not UTF-8 are shown as \xNN (lib/log.h
 * text_shown), so that no peer byte reaches a mail or an alert raw, and the
 * HTML texts escape every value.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "notice/render.h"

/* Whom to contact when the configuration names nobody. */
static const char default_contact[] = "your IT department";

/* Append a value, shown safely (see the top) and HTML-escaped when html is set. */
static void
sb_value(struct sbuf *b, const char *v0, bool html)
{
	char *shown = text_shown(v0, 0);
	const char *v = shown;

	if (!html) {
		sbuf_addn(b, v, strlen(v));
		free(shown);
		return;
	}
	sbuf_add_escaped(b, v);
	free(shown);
}

/* The value of a placeholder name (len bytes), or NULL when it is not one. */
static const char *
placeholder(const struct notice_facts *f, const char *name, size_t len)
{
	static const char unknown[] = "unknown";
	const struct {
		const char *name;
		const char *value;
	} map[] = {
	    {"account", f->account},
	    {"device_id", f->device_id},
	    {"device_type", f->device_type},
	    {"model", f->model},
	    {"os", f->os},
	    {"user_agent", f->user_agent},
	    {"imei", f->imei},
	    {"eas_version", f->eas_version},
	    {"state", f->state},
	    {"contact", f->contact ? f->contact : default_contact},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strlen(map[i].name) == len && memcmp(map[i].name, name, len) == 0)
			return map[i].value && *map[i].value ? map[i].value : unknown;
	}
	return NULL;
}

/*
 * Render a template: {name} becomes the fact's value (escaped for HTML), "{{"
 * a literal "{", and anything else is copied as it is (an unknown {name}
 * included, so that a typo shows instead of vanishing).
 */
char *
notice_render_template(const char *tmpl, const struct notice_facts *facts, bool html)
{
	struct sbuf b = {0};
	const char *p = tmpl ? tmpl : "";

	sbuf_addn(&b, "", 0);
	while (*p) {
		const char *open = strchr(p, '{');
		if (open == NULL) {
			sbuf_addn(&b, p, strlen(p));
			break;
		}
		sbuf_addn(&b, p, (size_t)(open - p));
		if (open[1] == '{') {
			sbuf_addn(&b, "{", 1);
			p = open + 2;
			continue;
		}
		const char *close = strchr(open + 1, '}');
		const char *v =
		    close ? placeholder(facts, open + 1, (size_t)(close - open - 1)) : NULL;
		if (v == NULL) {
			sbuf_addn(&b, "{", 1);
			p = open + 1;
			continue;
		}
		sb_value(&b, v, html);
		p = close + 1;
	}
	return b.p;
}
