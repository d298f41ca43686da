/*
 * contact.h: a vCard (vcard.h) as an EAS contact (the Contacts and
 * Contacts2 code pages, MS-ASCNTC, and AirSyncBase:Body for the notes), and
 * a phone's contact applied back onto a vCard.
 *
 * To EAS: pim_contact_to_eas fills an ApplicationData element the caller
 * made from a card. From EAS: pim_contact_from_add makes a new card from a
 * phone's Add (a fresh UID), pim_contact_apply applies a phone's Change onto
 * the server's card. Only what EAS can say is replaced; everything else the
 * card holds stays as it was, byte for byte: properties EAS has no element
 * for, a fourth e-mail address, a second mobile number, parameters, groups,
 * Apple's labels. A field whose EAS value equals what the card already
 * gives is not touched at all (its spelling, lists and parameters kept).
 *
 * The mapping (vCard -> EAS; the reverse writes the first form named, as the
 * card's version spells it, into the property the value came from when there
 * was one):
 *   FN                  FileAs (see below)
 *   N                   LastName, FirstName, MiddleName, Title, Suffix
 *   NICKNAME            Contacts2:NickName
 *   ORG                 CompanyName; Department (its second component)
 *   TITLE               JobTitle          (ROLE has no EAS element: kept)
 *   EMAIL (pref first)  Email1Address .. Email3Address
 *   TEL by TYPE         work: BusinessPhoneNumber, then Business2PhoneNumber;
 *                       home: HomePhoneNumber, Home2PhoneNumber; cell (or
 *                       iphone, mobile): MobilePhoneNumber; fax: HomeFaxNumber
 *                       with home, else BusinessFaxNumber; pager: PagerNumber;
 *                       car: CarPhoneNumber; x-radio: RadioPhoneNumber;
 *                       x-assistant: AssistantPhoneNumber; x-company-main:
 *                       Contacts2:CompanyMainPhone; x-mms: Contacts2:MMS; a
 *                       number without those types takes the first free of
 *                       Mobile, Home, Home2, Business2. A number that finds no
 *                       free slot is not sent (and kept).
 *   ADR work/home/other BusinessAddress*, HomeAddress*, OtherAddress* (Street,
 *                       City, State, PostalCode, Country; post office box
 *                       and extended address kept, not sent)
 *   BDAY                Birthday
 *   ANNIVERSARY         Anniversary (3.0: X-ANNIVERSARY; also read from
 *                       X-MS-ANNIVERSARY, X-EVOLUTION-ANNIVERSARY, Apple's
 *                       X-ABDATE labelled _$!<Anniversary>!$_)
 *   URL                 WebPage
 *   NOTE                AirSyncBase:Body (12.0 on; a phone's Contacts:Body
 *                       of 2.5 is read too)
 *   CATEGORIES          Categories/Category
 *   PHOTO               Picture (base64; a photo over the cap or only a URI
 *                       is not sent, and a Change without Picture keeps it)
 *   IMPP, X-AIM, X-JABBER, X-ICQ, X-MSN, X-YAHOO, X-SKYPE, X-GOOGLE-TALK,
 *   X-GADUGADU, X-QQ, X-MS-IMADDRESS
 *                       Contacts2:IMAddress, IMAddress2, IMAddress3 (an
 *                       IMPP's scheme is left out for the usual IM schemes,
 *                       kept for sip:; a new one without scheme is im:)
 *   X-PHONETIC-FIRST-NAME, X-PHONETIC-LAST-NAME, X-PHONETIC-ORG (else N's
 *   and ORG's SORT-AS)  YomiFirstName, YomiLastName, YomiCompanyName
 *   X-SPOUSE (4.0: RELATED;TYPE=spouse;VALUE=text)        Spouse
 *   X-MANAGER           Contacts2:ManagerName
 *   X-ASSISTANT         AssistantName
 *   X-CHILD (4.0: RELATED;TYPE=child;VALUE=text)          Children/Child
 *                       (also read: X-MS-*, X-EVOLUTION-*, KAddressBook's and
 *                       Apple's X-ABRELATEDNAMES labels)
 *   X-EAS-OFFICELOCATION, X-EAS-CUSTOMERID, X-EAS-GOVERNMENTID,
 *   X-EAS-ACCOUNTNAME   OfficeLocation, Contacts2:CustomerId, GovernmentId,
 *                       AccountName: no vCard form exists; abqd keeps the
 *                       phone's values under these names.
 * Not sent: Contacts:Alias and WeightedRank (RecipientInformationCache and
 * GAL only), CompressedRTF.
 *
 * FileAs: FN. A phone's FileAs becomes FN unless it only restates the
 * names ("Doe, John" for John Doe: what Outlook-style phones compute); FN
 * then stays, or, when it was made from the old names (or is missing),
 * is made again from the new ones ("Title First Middle Last Suffix", else
 * the company, else the first e-mail address).
 *
 * Dates: a vCard birthday is a date. EAS carries an instant; abqd writes
 * the date at 12:00 UTC ("1985-04-12T12:00:00.000Z"), which is the same
 * calendar day in every time zone from UTC-12 to UTC+11 and never the day
 * before anywhere, so no phone that shows it in local time shows the day
 * before. A date without a year (4.0 "--0412", Apple's
 * X-APPLE-OMIT-YEAR) goes as year 1604 and comes back without a year.
 * Read back, an instant is taken to the nearest UTC midnight, 12:00 UTC
 * itself to its own day: phones that write local midnight (UTC-11 to
 * UTC+11) or UTC midnight or noon are read as meant; local midnight east
 * of UTC+12 reads as the day before (EAS does not say the zone).
 *
 * A Change (MS-ASCMD 2.2.3.24 and 2.2.3.179 Supported): an element the
 * phone sent replaces the card's (empty: removes it); an element it left out
 * is removed when it is not ghosted, kept when it is. With no Supported
 * element in the collection's first Sync nothing is ghosted; with one, every
 * element it does not name is ghosted (an empty Supported ghosts all).
 * Whatever the options say, a Picture left out is kept when the card's photo
 * was not sent (over the cap, or a URI), and the body is kept when no
 * AirSyncBase:Body (or Contacts:Body) comes: phones that got a truncated
 * body do not send it back.
 */
#ifndef ABQ_PIM_CONTACT_H
#define ABQ_PIM_CONTACT_H

#include <stdbool.h>
#include <stddef.h>

#include "eas/wbxml.h"
#include "pim/vcard.h"

/* MS-ASCNTC 2.2.2.58: a Picture is at most 48 KB of base64. */
#define PIM_CONTACT_PICTURE_MAX (48u * 1024)
/* A phone's text element (a name, a number, an address line) at most. */
#define PIM_CONTACT_TEXT_MAX (32u * 1024)
/* A phone's notes at most. */
#define PIM_CONTACT_BODY_MAX (1024u * 1024)
/* Categories and children in one contact at most. */
#define PIM_CONTACT_LIST_MAX 300

struct pim_contact_opts {
	/* The EAS protocol version times ten: 25, 120, 121, 140, 141, 160, 161. */
	unsigned eas_version;
	/* The largest Picture sent or taken, in base64 bytes; 0: PIM_CONTACT_PICTURE_MAX. */
	size_t picture_max;
	/*
	 * The notes as the phone's BodyPreference asks: body_type 1 (plain
	 * text; 0 is taken as 1) or 2 (HTML: the text escaped, line breaks
	 * <br>), cut to body_truncation bytes (0: whole) on a UTF-8 boundary
	 * with Truncated 1 and the whole size as EstimatedDataSize;
	 * body_all_or_none: a body that does not fit whole is sent without
	 * Data.
	 */
	unsigned body_type;
	size_t body_truncation;
	bool body_all_or_none;
	/*
	 * Ghosting: whether the collection's first Sync carried a Supported
	 * element, and the tags it named ("FirstName" or "Contacts:FirstName").
	 */
	bool supported_sent;
	const char *const *supported;
	size_t nsupported;
	/* The version of a card made from an Add: VCARD_V30 (0) or VCARD_V40. */
	int new_card_version;
};

/*
 * Add card's fields under appdata (an AirSync:ApplicationData element of
 * the caller's document). Builder failures are recorded in the document
 * (wbxml_encode reports them). Returns 0, or -1 for a NULL argument.
 */
int pim_contact_to_eas(const struct vcard *card, const struct pim_contact_opts *opts,
                       struct wbxml_node *appdata);

/*
 * A new card from a phone's Add (its ApplicationData): FN, N (3.0) and a
 * new UID ("urn:uuid:..." in 4.0) always. NULL with *errstr (static) for
 * what the phone must be told Status 6 about: a Picture over the cap or not
 * base64, a text or the notes over their caps, too many categories.
 */
struct vcard *pim_contact_from_add(const struct wbxml_node *appdata,
                                   const struct pim_contact_opts *opts, const char **errstr);

/*
 * Apply a phone's Change (its ApplicationData) onto card. Returns 1 when
 * the card changed, 0 when it did not, -1 with *errstr (as above; the card
 * is then untouched).
 */
int pim_contact_apply(struct vcard *card, const struct wbxml_node *appdata,
                      const struct pim_contact_opts *opts, const char **errstr);

/*
 * The tags an AirSync:Supported element names, for opts->supported: a
 * malloc'd array of static names (free the array only), *n_r of them.
 */
const char **pim_contact_supported(const struct wbxml_node *supported, size_t *n_r);

#endif
