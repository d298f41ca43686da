/*
 * gal_carddav.h: the global address list from a CardDAV address book.
 *
 * Native mode answers Search GAL and ResolveRecipients (mailbox.h
 * gal_search) from the address book `[upstream] gal` names when it is an
 * http:// or https:// URL: one CardDAV address book collection (RFC 6352),
 * a shared company address book for instance. It is read with the phone
 * user's own credentials (those the request authenticated with), or, when
 * `gal_bind_dn` and `gal_bind_password` are set, with those as the DAV
 * user name and password. http:// is taken only to a loopback host (the
 * password would go in clear); certificates are verified (`[upstream]
 * ca_file`, else the system's).
 *
 * A lookup is one addressbook-query REPORT (dav.h dav_addressbook_query):
 * the cards whose FN, EMAIL or NICKNAME contain the query, without regard
 * to case (match-type "contains", the one every server implements; so a
 * query finds names and addresses containing it, a superset of those
 * beginning with it), at most max + 1 asked (so that "more than asked" is
 * known; servers may send all). An exact address (MBX_GAL_ADDRESS) is an
 * EMAIL "equals" match, checked again here. N is not among the filters:
 * Radicale 3.1 fails the whole REPORT on a filter of a structured
 * property, and FN holds the names (RFC 6350 makes it required).
 *
 * Read from each card (pim/vcard.h): FN (else N's given and family names,
 * else the address) as the display name, N's given and family names,
 * NICKNAME's first item as the alias, EMAIL (the preferred first; for an
 * exact address the one matched), ORG's organisation, TITLE,
 * X-EAS-OFFICELOCATION as the office, TEL by type (cell, iphone or mobile:
 * the mobile number; home: the home number; work or none: the phone; fax
 * and pager numbers not), and PHOTO when pictures are asked. Sorted by
 * display name; a failure (the server down, an error status, the
 * credentials refused, an answer that cannot be read) is -1 with the
 * reason, which the command layer answers as it does a directory's.
 */
#ifndef ABQ_NATIVE_GAL_CARDDAV_H
#define ABQ_NATIVE_GAL_CARDDAV_H

#include <stddef.h>

#include "mailbox/mailbox.h"

#define GAL_CARDDAV_KEEP_MAX 1000 /* cards of one answer read at most (the rest only counted) */

struct event_base;
struct gal_carddav;

struct gal_carddav_conf {
	const char *url;      /* http:// or https:// URL of the address book collection */
	const char *user;     /* NULL: the phone user's own credentials */
	const char *password; /* with user */
	const char *ca_file;  /* NULL: the system's CAs */
	unsigned connect_timeout_ms;
	unsigned timeout_ms; /* one REPORT */
};

/*
 * Check the configuration (the URL's scheme and host, no credentials in
 * it, http:// only to a loopback host, user and password together): 0, or
 * -1 with *errstr (static). No connection is made.
 */
int gal_carddav_check(const struct gal_carddav_conf *c, const char **errstr);

/* The address book for one worker's loop (a curl_loop of its own). NULL with *errstr. */
struct gal_carddav *gal_carddav_new(struct event_base *base, const struct gal_carddav_conf *c,
                                    const char **errstr);
/* Free (the requests' parts must be gone); *g NULL. */
void gal_carddav_free(struct gal_carddav **g);

/*
 * A mailbox backend for one request that has no folders and answers
 * gal_search from the address book: a union part (mailbox_union.h, any
 * prefix). user and password: the phone user's (copied; unused when the
 * configuration names its own). Destroy it with mbx_destroy (its lookups
 * in flight are cancelled; the password wiped).
 */
struct mbx_backend *gal_carddav_backend(struct gal_carddav *g, const char *user,
                                        const char *password);

/* Lookups done, and failed, since the start. */
unsigned long gal_carddav_lookups(const struct gal_carddav *g);
unsigned long gal_carddav_failures(const struct gal_carddav *g);

#endif
