/*
 * records.c: destructors and copies of the registry's records (records.h).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/records.h"
#include "lib/util.h"

/*
 * Record destructors (here and below): free the owned strings and zero the
 * struct, so that a cleared record can be cleared again or reused. NULL is
 * accepted.
 */
void
abq_device_clear(struct abq_device *d)
{
	if (d == NULL)
		return;
	free(d->account);
	free(d->device_id);
	free(d->device_type);
	free(d->model);
	free(d->imei);
	free(d->friendly_name);
	free(d->os);
	free(d->os_language);
	free(d->phone_number);
	free(d->mobile_operator);
	free(d->user_agent);
	free(d->eas_version);
	free(d->last_address);
	free(d->last_command);
	free(d->state_by);
	free(d->wipe_by);
	memset(d, 0, sizeof(*d));
}

/* Deep copy of a device; dst must be clear. NULL strings stay NULL. */
void
abq_device_copy(struct abq_device *dst, const struct abq_device *src)
{
	*dst = *src;
	dst->account = xstrdup_null(src->account);
	dst->device_id = xstrdup_null(src->device_id);
	dst->device_type = xstrdup_null(src->device_type);
	dst->model = xstrdup_null(src->model);
	dst->imei = xstrdup_null(src->imei);
	dst->friendly_name = xstrdup_null(src->friendly_name);
	dst->os = xstrdup_null(src->os);
	dst->os_language = xstrdup_null(src->os_language);
	dst->phone_number = xstrdup_null(src->phone_number);
	dst->mobile_operator = xstrdup_null(src->mobile_operator);
	dst->user_agent = xstrdup_null(src->user_agent);
	dst->eas_version = xstrdup_null(src->eas_version);
	dst->last_address = xstrdup_null(src->last_address);
	dst->last_command = xstrdup_null(src->last_command);
	dst->state_by = xstrdup_null(src->state_by);
	dst->wipe_by = xstrdup_null(src->wipe_by);
}

void
abq_entry_clear(struct abq_entry *e)
{
	if (e == NULL)
		return;
	free(e->device_id);
	free(e->account);
	free(e->created_by);
	memset(e, 0, sizeof(*e));
}

void
abq_rule_clear(struct abq_rule *r)
{
	if (r == NULL)
		return;
	free(r->pattern);
	free(r->domain);
	free(r->created_by);
	memset(r, 0, sizeof(*r));
}

void
abq_attr_clear(struct abq_attr *a)
{
	if (a == NULL)
		return;
	free(a->target);
	free(a->name);
	free(a->value);
	free(a->set_by);
	memset(a, 0, sizeof(*a));
}
