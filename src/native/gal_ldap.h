/*
 * gal_ldap.h: the global address list from an LDAP directory.
 *
 * Native mode answers Search GAL and ResolveRecipients (mailbox.h
 * gal_search) from the directory `[upstream] gal` names, an LDAP URL
 * (RFC 4516): ldap://host[:port]/base-dn[??scope[?filter]] or ldaps://.
 * The base DN is required; the scope defaults to sub, the filter (the
 * entries that are people) to (|(objectClass=inetOrgPerson)(objectClass=person)).
 * abqd binds as `gal_bind_dn` with `gal_bind_password`, or anonymously.
 * ldap:// to a host other than a loopback address must take StartTLS;
 * certificates are verified (`[upstream] ca_file`, else the system's).
 *
 * libldap's calls block (connect, bind, search), so every lookup runs on
 * a thread of the worker's own (net/workq.h) holding one connection, which
 * it keeps and makes again after a failure. A lookup is one search: the
 * query's beginning in cn, displayName, givenName, sn, uid and mail (an
 * exact mail for an address), at most max + 1 entries asked (so that "more
 * than asked" is known), sorted by display name here.
 *
 * Attributes read: displayName (else cn), mail, givenName, sn, uid (the
 * alias), o or company, title, physicalDeliveryOfficeName,
 * telephoneNumber, homePhone, mobile, and jpegPhoto (else thumbnailPhoto)
 * when pictures are asked.
 */
#ifndef ABQ_NATIVE_GAL_LDAP_H
#define ABQ_NATIVE_GAL_LDAP_H

#include <stddef.h>

#include "mailbox/mailbox.h"

#define GAL_LDAP_PENDING_MAX 64 /* lookups one worker queues at most; past it: a failure */

struct event_base;
struct gal_ldap;

struct gal_ldap_conf {
	const char *url;           /* ldap:// or ldaps:// URL with the base DN */
	const char *bind_dn;       /* NULL: anonymous */
	const char *bind_password; /* with bind_dn */
	const char *ca_file;       /* NULL: the system's CAs */
	int connect_timeout;       /* seconds */
	int timeout;               /* seconds a search may take */
};

/*
 * Check the configuration (the URL's form, StartTLS needed or not): 0, or
 * -1 with *errstr (static) naming what is wrong. No connection is made.
 */
int gal_ldap_check(const struct gal_ldap_conf *c, const char **errstr);

/*
 * The directory for one worker's loop: its thread started, no connection
 * made yet (the first lookup makes it). NULL with *errstr (static).
 */
struct gal_ldap *gal_ldap_new(struct event_base *base, const struct gal_ldap_conf *c,
                              const char **errstr);
/* Stop the thread (after the lookup it runs), free; *g NULL. Requests' parts must be gone. */
void gal_ldap_free(struct gal_ldap **g);

/*
 * A mailbox backend for one request that has no folders and answers
 * gal_search from the directory: a union part (mailbox_union.h, any
 * prefix). Destroy it with mbx_destroy (its lookups in flight are
 * cancelled).
 */
struct mbx_backend *gal_ldap_backend(struct gal_ldap *g);

/* Lookups done, and failed (the directory unreachable, refused, timed out), since the start. */
unsigned long gal_ldap_lookups(const struct gal_ldap *g);
unsigned long gal_ldap_failures(const struct gal_ldap *g);

#endif
