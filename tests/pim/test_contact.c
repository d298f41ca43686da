/*
 * test_contact.c: vCard <-> EAS contact (src/pim/contact.c). The clients'
 * cards of vcard_data/ go to EAS (encoded to WBXML and decoded, as a phone
 * gets them), their XML shows the fields; applied back they change nothing
 * and made into a new card (an Add) they give the same EAS fields; a
 * phone's Change keeps what EAS cannot say; ghosting, photos, notes, dates
 * and the caps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "eas/wbxml.h"
#include "pim/contact.h"
#include "pim/vcard.h"

#define APPDATA 0x1D /* AirSync:ApplicationData */

static const struct pim_contact_opts opts161 = {.eas_version = 161, .body_type = 1};

static struct vcard *
load(const char *name)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;
	const char *err = NULL;
	struct vcard *c;

	snprintf(path, sizeof(path), "%s/%s", VCARD_DATA_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	c = vcard_parse_one(buf, (size_t)n, NULL, &err);
	if (c == NULL)
		fail_msg("%s: %s", name, err);
	free(buf);
	return c;
}

static struct vcard *
parse_str(const char *s)
{
	const char *err = NULL;
	struct vcard *c = vcard_parse_one(s, strlen(s), NULL, &err);

	if (c == NULL)
		fail_msg("%s", err);
	return c;
}

/* A document through the wire: encoded, decoded. */
static struct wbxml_doc *
wire(struct wbxml_doc *doc)
{
	uint8_t *buf;
	size_t len;
	struct wbxml_error e;
	struct wbxml_doc *back = NULL;

	if (wbxml_encode(doc, &buf, &len, &e) != WBXML_OK)
		fail_msg("encode: %s", e.msg);
	if (wbxml_decode(buf, len, NULL, &back, &e) != WBXML_OK)
		fail_msg("decode: %s", e.msg);
	free(buf);
	wbxml_doc_free(&doc);
	return back;
}

/* The card as a phone gets it. */
static struct wbxml_doc *
to_eas(const struct vcard *c, const struct pim_contact_opts *o)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *ad = wbxml_add_root(doc, WBXML_PAGE_AIRSYNC, APPDATA);

	assert_int_equal(pim_contact_to_eas(c, o, ad), 0);
	return wire(doc);
}

static const char *
field(const struct wbxml_doc *doc, const char *path)
{
	return wbxml_find_text(wbxml_doc_root(doc), path);
}

static void
assert_field(const struct wbxml_doc *doc, const char *path, const char *want)
{
	const char *got = field(doc, path);

	if (got == NULL)
		fail_msg("%s missing (want \"%s\")", path, want);
	if (strcmp(got, want) != 0)
		fail_msg("%s is \"%s\", want \"%s\"", path, got, want);
}

static char *
xml(const struct wbxml_doc *doc)
{
	return wbxml_to_xml(wbxml_doc_root(doc), 0);
}

static void
assert_xml_has(const char *x, const char *want)
{
	if (strstr(x, want) == NULL)
		fail_msg("XML lacks %s:\n%s", want, x);
}

/* A copy of src under parent. */
static void
copy_node(struct wbxml_node *parent, const struct wbxml_node *src)
{
	struct wbxml_node *n;

	if (src->flags & WBXML_NODE_TEXT)
		n = wbxml_add_text(parent, src->page, src->token, (const char *)src->data);
	else if (src->flags & WBXML_NODE_OPAQUE)
		n = wbxml_add_opaque(parent, src->page, src->token, src->data, src->len);
	else
		n = wbxml_add(parent, src->page, src->token);
	for (const struct wbxml_node *c = src->first_child; c != NULL; c = c->next)
		copy_node(n, c);
}

/*
 * An edit of what the phone got: qname with a new text value, or NULL to
 * leave it out. "Contacts:Categories" and "Contacts:Children" take items
 * separated by '|'; "AirSyncBase:Body" a plain text body.
 */
struct edit {
	const char *qname;
	const char *value;
};

static void
add_field(struct wbxml_node *ad, const char *qname, const char *value)
{
	if (strcmp(qname, "Contacts:Categories") == 0 || strcmp(qname, "Contacts:Children") == 0) {
		struct wbxml_node *c = wbxml_addn(ad, qname);
		const char *item = strcmp(qname, "Contacts:Categories") == 0 ? "Contacts:Category"
		                                                             : "Contacts:Child";
		const char *p = value;

		while (*p != '\0') {
			const char *bar = strchr(p, '|');
			size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
			char *v = strndup(p, n);

			wbxml_addn_text(c, item, v);
			free(v);
			p += n + (bar != NULL);
		}
	} else if (strcmp(qname, "AirSyncBase:Body") == 0) {
		struct wbxml_node *b = wbxml_addn(ad, qname);

		wbxml_addn_text(b, "AirSyncBase:Type", "1");
		wbxml_addn_text(b, "AirSyncBase:Data", value);
	} else
		wbxml_addn_text(ad, qname, value);
}

static bool
node_named(const struct wbxml_node *n, const char *qname)
{
	char buf[96];

	return strcmp(wbxml_qname(n, buf, sizeof(buf)), qname) == 0;
}

/* What the phone sends back: what it got, edited; through the wire. */
static struct wbxml_doc *
phone_edit(const struct wbxml_doc *got, const struct edit *e, size_t ne)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	struct wbxml_node *ad = wbxml_add_root(doc, WBXML_PAGE_AIRSYNC, APPDATA);
	bool *used = calloc(ne + 1, sizeof(*used));

	for (const struct wbxml_node *c = got != NULL ? wbxml_doc_root(got)->first_child : NULL;
	     c != NULL; c = c->next) {
		size_t k;

		for (k = 0; k < ne; k++)
			if (node_named(c, e[k].qname))
				break;
		if (k == ne) {
			copy_node(ad, c);
			continue;
		}
		used[k] = true;
		if (e[k].value != NULL)
			add_field(ad, e[k].qname, e[k].value);
	}
	for (size_t k = 0; k < ne; k++)
		if (!used[k] && e[k].value != NULL)
			add_field(ad, e[k].qname, e[k].value);
	free(used);
	return wire(doc);
}

static void
assert_text(const struct vcard_prop *p, const char *want)
{
	char *t;

	if (p == NULL)
		fail_msg("property missing (want \"%s\")", want);
	t = vcard_text(p);
	if (strcmp(t, want) != 0)
		fail_msg("%s is \"%s\", want \"%s\"", p->name, t, want);
	free(t);
}

static struct vcard_prop *
nth(const struct vcard *c, const char *name, int n)
{
	size_t pos = 0;
	struct vcard_prop *p;

	while ((p = vcard_find(c, name, &pos)) != NULL)
		if (n-- == 0)
			return p;
	return NULL;
}

static size_t
count(const struct vcard *c, const char *name)
{
	size_t pos = 0, n = 0;

	while (vcard_find(c, name, &pos) != NULL)
		n++;
	return n;
}

/* ---- The clients' cards to EAS ------------------------------------------- */

static void
test_apple_to_eas(void **state)
{
	struct vcard *c = load("apple.vcf");
	struct wbxml_doc *d = to_eas(c, &opts161);
	const struct wbxml_node *cats, *kids, *body;
	char *x;

	(void)state;
	assert_field(d, "Contacts:FileAs", "Dr. Johnny Quincy Appleseed Jr.");
	assert_field(d, "Contacts:LastName", "Appleseed");
	assert_field(d, "Contacts:FirstName", "Johnny");
	assert_field(d, "Contacts:MiddleName", "Quincy Q.");
	assert_field(d, "Contacts:Title", "Dr.");
	assert_field(d, "Contacts:Suffix", "Jr.");
	assert_field(d, "Contacts2:NickName", "Johnny, JQ");
	assert_field(d, "Contacts:CompanyName", "Apple Inc.");
	assert_field(d, "Contacts:Department", "Engineering");
	assert_field(d, "Contacts:JobTitle", "Senior Engineer");
	/* The preferred address first; the fourth is not sent. */
	assert_field(d, "Contacts:Email1Address", "johnny@apple.example");
	assert_field(d, "Contacts:Email2Address", "j.appleseed@icloud.example");
	assert_field(d, "Contacts:Email3Address", "johnny.q@me.example");
	assert_null(strstr(x = xml(d), "jq@mac.example"));
	free(x);
	/* Phones: the iPhone number finds Mobile taken; Apple's assistant label. */
	assert_field(d, "Contacts:MobilePhoneNumber", "+1 (408) 555-0101");
	assert_field(d, "Contacts:BusinessPhoneNumber", "+1 (408) 996-1010");
	assert_field(d, "Contacts:HomeFaxNumber", "+1 (408) 555-0199");
	assert_field(d, "Contacts:AssistantPhoneNumber", "+1 (408) 555-0150");
	assert_null(field(d, "Contacts:HomePhoneNumber"));
	assert_field(d, "Contacts:BusinessAddressStreet", "1 Infinite Loop");
	assert_field(d, "Contacts:BusinessAddressCity", "Cupertino");
	assert_field(d, "Contacts:BusinessAddressState", "CA");
	assert_field(d, "Contacts:BusinessAddressPostalCode", "95014");
	assert_field(d, "Contacts:BusinessAddressCountry", "United States");
	assert_field(d, "Contacts:HomeAddressStreet", "123 Main St\r\nApt 4");
	assert_field(d, "Contacts:WebPage", "https://www.apple.example/");
	assert_field(d, "Contacts:Birthday", "1976-04-01T12:00:00.000Z");
	assert_field(d, "Contacts:Anniversary", "2001-06-15T12:00:00.000Z");
	assert_field(d, "Contacts:Spouse", "Jane Appleseed");
	assert_field(d, "Contacts2:ManagerName", "Tim");
	assert_field(d, "Contacts2:IMAddress", "johnny@jabber.example");
	assert_field(d, "Contacts2:IMAddress2", "johnny.appleseed");
	assert_field(d, "Contacts:YomiFirstName", "Jonī");
	assert_field(d, "Contacts:YomiLastName", "Appurushīdo");
	cats = wbxml_find(wbxml_doc_root(d), "Contacts:Categories");
	assert_non_null(cats);
	assert_string_equal(wbxml_text(cats->first_child), "Work");
	assert_string_equal(wbxml_text(cats->first_child->next), "VIP");
	assert_null(cats->first_child->next->next);
	kids = wbxml_find(wbxml_doc_root(d), "Contacts:Children");
	assert_string_equal(wbxml_text(kids->first_child), "Sam Appleseed");
	body = wbxml_find(wbxml_doc_root(d), "AirSyncBase:Body");
	assert_string_equal(wbxml_find_text(body, "AirSyncBase:Type"), "1");
	assert_string_equal(wbxml_find_text(body, "AirSyncBase:Data"),
	                    "Met at WWDC.\r\nLikes apples, pears.");
	assert_string_equal(wbxml_find_text(body, "AirSyncBase:EstimatedDataSize"), "34");
	assert_null(wbxml_find(body, "AirSyncBase:Truncated"));
	assert_non_null(field(d, "Contacts:Picture"));
	assert_int_equal(strncmp(field(d, "Contacts:Picture"), "/9j/4AAQ", 8), 0);
	/* The XML a log shows. */
	x = xml(d);
	assert_xml_has(x, "<ApplicationData xmlns=\"AirSync:\">");
	assert_xml_has(x, "<Body xmlns=\"AirSyncBase:\"><Type>1</Type>");
	assert_xml_has(x, "<FirstName xmlns=\"Contacts:\">Johnny</FirstName>");
	assert_xml_has(x, "<JobTitle xmlns=\"Contacts:\">Senior Engineer</JobTitle>");
	assert_xml_has(x, "<NickName xmlns=\"Contacts2:\">Johnny, JQ</NickName>");
	assert_xml_has(x, "<Categories xmlns=\"Contacts:\"><Category>Work</Category><Category>VIP"
	                  "</Category></Categories>");
	assert_xml_has(x, "<Birthday xmlns=\"Contacts:\">1976-04-01T12:00:00.000Z</Birthday>");
	free(x);
	wbxml_doc_free(&d);
	vcard_free(c);
}

static void
test_other_clients_to_eas(void **state)
{
	struct vcard *c;
	struct wbxml_doc *d;

	(void)state;
	/* Google: an untyped number in the first free slot, a second mobile not sent, a URI photo.
	 */
	c = load("google.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:FileAs", "María García López");
	assert_field(d, "Contacts:LastName", "García López");
	assert_field(d, "Contacts:MobilePhoneNumber", "+34 600 123 456");
	assert_field(d, "Contacts:HomePhoneNumber", "+34 91 555 1234");
	assert_field(d, "Contacts:BusinessPhoneNumber", "+34 91 555 9876");
	assert_field(d, "Contacts:Home2PhoneNumber", "+34 91 555 0000");
	assert_field(d, "Contacts:WebPage", "http://www.empresa.example");
	assert_field(d, "Contacts:HomeAddressStreet", "Calle Mayor 1, 3º B");
	assert_field(d, "Contacts:Birthday", "1985-12-24T12:00:00.000Z");
	assert_field(d, "Contacts:Email3Address", "maria@otro.example");
	assert_null(field(d, "Contacts:Picture"));
	wbxml_doc_free(&d);
	vcard_free(c);
	/* Thunderbird 4.0: tel: URIs, RELATED, a year-less anniversary, a data: photo. */
	c = load("thunderbird.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:HomePhoneNumber", "+49-30-7654321");
	assert_field(d, "Contacts:MobilePhoneNumber", "+49 171 2345678");
	assert_field(d, "Contacts:OtherAddressStreet", "Hauptstraße 5");
	assert_field(d, "Contacts:OtherAddressState", "Brandenburg");
	assert_field(d, "Contacts:Birthday", "1980-02-29T12:00:00.000Z");
	assert_field(d, "Contacts:Anniversary", "1604-06-01T12:00:00.000Z");
	assert_field(d, "Contacts:Spouse", "Anna Müller");
	assert_field(d, "Contacts2:IMAddress", "juergen@jabber.example");
	assert_field(d, "Contacts:Department", "Entwicklung");
	assert_string_equal(
	    wbxml_text(wbxml_find(wbxml_doc_root(d), "Contacts:Children")->first_child->next),
	    "Paul");
	assert_int_equal(strncmp(field(d, "Contacts:Picture"), "iVBORw0KGgo", 11), 0);
	wbxml_doc_free(&d);
	vcard_free(c);
	/* Outlook 2.1: its X-MS-* people and IM, a pager, a business fax. */
	c = load("outlook.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:LastName", "Weiß");
	assert_field(d, "Contacts:Spouse", "Andrea Weiß");
	assert_field(d, "Contacts2:ManagerName", "Klaus");
	assert_field(d, "Contacts:AssistantName", "Petra");
	assert_field(d, "Contacts2:IMAddress", "stefan@contoso.example");
	assert_field(d, "Contacts:PagerNumber", "+49 (89) 5555");
	assert_field(d, "Contacts:BusinessFaxNumber", "+49 (89) 1234-99");
	assert_field(d, "Contacts:Anniversary", "1995-05-20T12:00:00.000Z");
	assert_field(d, "Contacts:BusinessAddressCity", "München");
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Data",
	             "Erste Zeile\r\nZweite Zeile mit Umlauten: äöü, und Semikolon; ok € 5\r\n"
	             "Dritte Zeile");
	wbxml_doc_free(&d);
	vcard_free(c);
	/* Android 2.1: UTF-8 names, phonetic names; the custom-labelled number untyped. */
	c = load("android.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:FileAs", "王小明");
	assert_field(d, "Contacts:FirstName", "小明");
	assert_field(d, "Contacts:YomiLastName", "Wang");
	assert_field(d, "Contacts:HomeAddressCity", "北京");
	assert_field(d, "Contacts:Home2PhoneNumber", "010-11112222");
	wbxml_doc_free(&d);
	vcard_free(c);
	/* SOGo: a fax without home or work is a business fax; X-AIM. */
	c = load("sogo.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:BusinessFaxNumber", "04 72 10 30 31");
	assert_field(d, "Contacts2:IMAddress", "claire.dupont");
	assert_field(d, "Contacts:CompanyName", "Mairie de Lyon");
	wbxml_doc_free(&d);
	vcard_free(c);
	/* Nextcloud: RELATED;TYPE=SPOUSE in 3.0, ANNIVERSARY in 3.0. */
	c = load("nextcloud.vcf");
	d = to_eas(c, &opts161);
	assert_field(d, "Contacts:Spouse", "Li Na");
	assert_field(d, "Contacts:Anniversary", "2010-10-10T12:00:00.000Z");
	assert_field(d, "Contacts:HomePhoneNumber", "+86 21 5555 0000");
	wbxml_doc_free(&d);
	vcard_free(c);
}

/*
 * Every client's card: sent and applied back, nothing changes (not a byte);
 * made into a new card as from an Add (3.0 and 4.0), the same EAS fields.
 */
static void
test_round_trips(void **state)
{
	static const char *const files[] = {"apple.vcf",     "google.vcf",  "thunderbird.vcf",
	                                    "outlook.vcf",   "android.vcf", "sogo.vcf",
	                                    "nextcloud.vcf", "bigphoto.vcf"};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct vcard *c = load(files[i]);
		char *before = vcard_write(c, NULL), *after, *x1;
		struct wbxml_doc *d = to_eas(c, &opts161);
		const char *err = NULL;
		int r = pim_contact_apply(c, wbxml_doc_root(d), &opts161, &err);

		if (r != 0)
			fail_msg("%s: applied back, r=%d %s", files[i], r, err ? err : "");
		after = vcard_write(c, NULL);
		assert_string_equal(before, after);
		x1 = xml(d);
		for (int v = 0; v < 2; v++) {
			struct pim_contact_opts o = opts161;
			struct vcard *made;
			struct wbxml_doc *d2;
			char *x2;

			o.new_card_version = v ? VCARD_V40 : VCARD_V30;
			made = pim_contact_from_add(wbxml_doc_root(d), &o, &err);
			assert_non_null(made);
			assert_int_equal(made->version, o.new_card_version);
			d2 = to_eas(made, &opts161);
			x2 = xml(d2);
			if (strcmp(x1, x2) != 0)
				fail_msg("%s: the new card's fields differ:\n%s\n%s", files[i], x1,
				         x2);
			free(x2);
			wbxml_doc_free(&d2);
			/* And the new card is a card our reader reads back the same. */
			{
				char *w = vcard_write(made, NULL);
				struct vcard *again = vcard_parse_one(w, strlen(w), NULL, &err);

				assert_non_null(again);
				assert_int_equal(again->nprops, made->nprops);
				vcard_free(again);
				free(w);
			}
			vcard_free(made);
		}
		free(x1);
		free(before);
		free(after);
		wbxml_doc_free(&d);
		vcard_free(c);
	}
}

/* ---- A phone's Change ---------------------------------------------------- */

static void
test_change_keeps(void **state)
{
	struct vcard *c = load("google.vcf");
	struct wbxml_doc *got = to_eas(c, &opts161), *sent;
	static const struct edit e[] = {
	    {"Contacts:FirstName", "María José"},
	    {"Contacts:Email2Address", "\"María\" <maria.garcia@empresa.example>"},
	    {"Contacts:HomePhoneNumber", NULL},
	    {"Contacts:BusinessFaxNumber", "+34 91 555 9877"},
	    {"Contacts:HomeAddressCity", "Madrid Centro"},
	};
	const char *err;
	struct vcard_prop *p;
	struct vcard_n n;
	char *w;

	(void)state;
	sent = phone_edit(got, e, sizeof(e) / sizeof(e[0]));
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &opts161, &err), 1);
	vcard_n_get(vcard_get(c, "N"), &n);
	assert_string_equal(n.given, "María José");
	assert_string_equal(n.family, "García López");
	vcard_n_clear(&n);
	/* FN was made of the names: made again. */
	assert_text(vcard_get(c, "FN"), "María José García López");
	/* The second address: its value only, TYPE=INTERNET;TYPE=WORK kept. */
	p = nth(c, "EMAIL", 1);
	assert_text(p, "maria.garcia@empresa.example");
	assert_true(vcard_has_type(p, "work"));
	assert_true(vcard_has_type(p, "internet"));
	/* What EAS has no slot for is kept: the fourth address, the second mobile. */
	assert_text(nth(c, "EMAIL", 3), "cuarta@extra.example");
	assert_int_equal(count(c, "TEL"), 5);
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "TEL;TYPE=CELL:+34 600 999 888\r\n"));
	/* The home number the phone dropped is gone; the new fax is there. */
	assert_null(strstr(w, "+34 91 555 1234"));
	assert_non_null(strstr(w, "TEL;TYPE=WORK,FAX:+34 91 555 9877\r\n"));
	/* The city changed inside the address; its escaped street kept raw. */
	assert_non_null(
	    strstr(w, "ADR;TYPE=HOME:;;Calle Mayor 1\\, 3º B;Madrid Centro;;28013;España\r\n"));
	/* Unsent and unchanged: the URI photo, the labelled blog, Google's URL escapes. */
	assert_non_null(strstr(w, "PHOTO:https://lh3.googleusercontent.example/a/photo.jpg\r\n"));
	assert_non_null(
	    strstr(w, "item1.URL:https\\://maria.example/blog\r\nitem1.X-ABLabel:Blog\r\n"));
	assert_non_null(strstr(w, "URL:http\\://www.empresa.example\r\n"));
	assert_non_null(strstr(w, "CATEGORIES:myContacts,Amigos\r\n"));
	assert_non_null(strstr(w, "NOTE:Prefiere WhatsApp\r\n"));
	free(w);
	wbxml_doc_free(&got);
	wbxml_doc_free(&sent);
	vcard_free(c);
}

static void
test_change_apple(void **state)
{
	struct vcard *c = load("apple.vcf");
	struct wbxml_doc *got = to_eas(c, &opts161), *sent;
	static const struct edit e[] = {
	    {"Contacts:Spouse", "Jane Q. Appleseed"},
	    {"Contacts2:ManagerName", NULL},
	    {"Contacts:Children", "Sam Appleseed|Kim Appleseed"},
	    {"Contacts2:IMAddress2", "jq.skype"},
	    {"Contacts:Anniversary", "2001-06-14T22:00:00.000Z"},
	    {"Contacts:Categories", "VIP"},
	    {"Contacts:YomiFirstName", "Jonny"},
	};
	const char *err;
	char *w;

	(void)state;
	sent = phone_edit(got, e, sizeof(e) / sizeof(e[0]));
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &opts161, &err), 1);
	w = vcard_write(c, NULL);
	/* Apple's labelled forms take the change in place. */
	assert_non_null(strstr(w, "item8.X-ABRELATEDNAMES;type=pref:Jane Q. Appleseed\r\n"));
	/* The manager and its now lonely label are gone. */
	assert_null(strstr(w, "Tim"));
	assert_null(strstr(w, "item9."));
	/* Children: the list made again (3.0: X-CHILD). */
	assert_null(strstr(w, "item10."));
	assert_non_null(strstr(w, "X-CHILD:Sam Appleseed\r\nX-CHILD:Kim Appleseed\r\n"));
	/* The IMPP keeps its scheme and parameters. */
	assert_non_null(strstr(w, "IMPP;X-SERVICE-TYPE=Skype;type=WORK:skype:jq.skype\r\n"));
	/* The anniversary, read from local midnight at UTC+2: the 15th still. */
	assert_non_null(strstr(w, "item7.X-ABDATE;type=pref:2001-06-15\r\n"));
	assert_non_null(strstr(w, "CATEGORIES:VIP\r\n"));
	assert_non_null(strstr(w, "X-PHONETIC-FIRST-NAME:Jonny\r\n"));
	/* Untouched: the ABUID, the social profile, the second mobile (no slot), the photo. */
	assert_non_null(strstr(w, "X-ABUID:4A6B0F1E-8C2D-4E5F-9A0B-1C2D3E4F5A6B:ABPerson\r\n"));
	assert_non_null(strstr(w, "TEL;type=IPHONE;type=CELL;type=VOICE:+1 (408) 555-0102\r\n"));
	assert_non_null(
	    strstr(w, "item2.EMAIL;type=INTERNET:jq@mac.example\r\nitem2.X-ABLabel:school"));
	assert_non_null(strstr(w, "PHOTO;ENCODING=b;TYPE=JPEG:/9j/"));
	free(w);
	wbxml_doc_free(&got);
	wbxml_doc_free(&sent);
	vcard_free(c);
}

static void
test_change_im_related(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:I M\r\nN:M;I;;;\r\n"
	                            "X-JABBER;TYPE=HOME:im@jabber.example\r\n"
	                            "IMPP;X-SERVICE-TYPE=Jabber:xmpp:im@jabber.example\r\n"
	                            "X-AIM:aimname\r\n"
	                            "RELATED;TYPE=SPOUSE:Li Na\r\nEND:VCARD\r\n");
	struct wbxml_doc *got = to_eas(c, &opts161), *sent;
	static const struct edit e[] = {{"Contacts2:IMAddress", "new@jabber.example"},
	                                {"Contacts:Spouse", "Li Na Chen"}};
	const char *err;
	char *w;

	(void)state;
	/* One account in two properties: one IMAddress. */
	assert_field(got, "Contacts2:IMAddress", "im@jabber.example");
	assert_field(got, "Contacts2:IMAddress2", "aimname");
	assert_null(field(got, "Contacts2:IMAddress3"));
	sent = phone_edit(got, e, 2);
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &opts161, &err), 1);
	w = vcard_write(c, NULL);
	/* Both properties follow, each in its own form. */
	assert_non_null(strstr(w, "X-JABBER;TYPE=HOME:new@jabber.example\r\n"));
	assert_non_null(strstr(w, "IMPP;X-SERVICE-TYPE=Jabber:xmpp:new@jabber.example\r\n"));
	assert_non_null(strstr(w, "X-AIM:aimname\r\n"));
	/* RELATED says it is text now. */
	assert_non_null(strstr(w, "RELATED;TYPE=SPOUSE;VALUE=text:Li Na Chen\r\n"));
	free(w);
	wbxml_doc_free(&sent);
	wbxml_doc_free(&got);
	/* Sent again: the same, nothing changes. */
	got = to_eas(c, &opts161);
	assert_field(got, "Contacts2:IMAddress", "new@jabber.example");
	assert_null(field(got, "Contacts2:IMAddress3"));
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(got), &opts161, &err), 0);
	wbxml_doc_free(&got);
	vcard_free(c);
}

static void
test_ghosting(void **state)
{
	static const struct edit e[] = {{"Contacts:FirstName", "Claudine"}};
	static const char *const listed[] = {"Contacts:FirstName", "LastName", "Email1Address",
	                                     "Contacts:Categories"};
	struct pim_contact_opts o = opts161;
	struct wbxml_doc *sent;
	struct vcard *c;
	const char *err;
	char *w;

	(void)state;
	/* The phone sends only its FirstName (its Change of a bare item). */
	sent = phone_edit(NULL, e, 1);

	/* No Supported: nothing is ghosted, what is left out goes (the notes stay). */
	c = load("sogo.vcf");
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_int_equal(count(c, "EMAIL"), 0);
	assert_int_equal(count(c, "TEL"), 0);
	assert_int_equal(count(c, "ADR"), 0);
	assert_int_equal(count(c, "ORG"), 0);
	assert_int_equal(count(c, "BDAY"), 0);
	assert_int_equal(count(c, "CATEGORIES"), 0);
	assert_int_equal(count(c, "X-AIM"), 0);
	assert_int_equal(count(c, "URL"), 0);
	assert_int_equal(count(c, "NOTE"), 1);
	/* "Dupont" left out: removed. */
	assert_string_equal(vcard_get(c, "N")->value, ";Claudine;;;");
	assert_text(vcard_get(c, "FN"), "Claudine");
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "X-MOZILLA-HTML:FALSE\r\n"));
	assert_non_null(strstr(w, "CUSTOM1:Bibliothèque\r\n"));
	assert_non_null(strstr(w, "UID:5D2-65A1F000-1-4B6C1A80.vcf\r\n"));
	free(w);
	vcard_free(c);

	/* Supported names four: those go when left out, the rest is ghosted and kept. */
	o.supported_sent = true;
	o.supported = listed;
	o.nsupported = 4;
	c = load("sogo.vcf");
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_int_equal(count(c, "EMAIL"), 1);
	assert_text(vcard_get(c, "EMAIL"), "claire@perso.example");
	assert_int_equal(count(c, "CATEGORIES"), 0);
	assert_int_equal(count(c, "TEL"), 5);
	assert_int_equal(count(c, "ADR"), 2);
	assert_text(vcard_get(c, "FN"), "Claudine");
	assert_int_equal(count(c, "BDAY"), 1);
	assert_int_equal(count(c, "X-AIM"), 1);
	vcard_free(c);

	/* An empty Supported: everything is ghosted. */
	o.nsupported = 0;
	c = load("sogo.vcf");
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_string_equal(vcard_get(c, "N")->value, "Dupont;Claudine;;;");
	assert_text(vcard_get(c, "FN"), "Claudine Dupont");
	assert_int_equal(count(c, "EMAIL"), 2);
	assert_int_equal(count(c, "CATEGORIES"), 1);
	vcard_free(c);
	wbxml_doc_free(&sent);

	/* The helper that reads a Supported element. */
	{
		struct wbxml_doc *doc = wbxml_doc_new();
		struct wbxml_node *s = wbxml_addn_root(doc, "AirSync:Supported");
		const char **names;
		size_t n;

		wbxml_addn(s, "Contacts:FirstName");
		wbxml_addn(s, "Contacts2:NickName");
		wbxml_addn(s, "AirSyncBase:Body");
		wbxml_addn(s, "Contacts:Picture");
		names = pim_contact_supported(s, &n);
		assert_int_equal(n, 3);
		assert_string_equal(names[0], "FirstName");
		assert_string_equal(names[1], "NickName");
		assert_string_equal(names[2], "Picture");
		free(names);
		wbxml_doc_free(&doc);
	}
}

static void
test_picture(void **state)
{
	struct vcard *c;
	struct wbxml_doc *got, *sent;
	struct pim_contact_opts o = opts161;
	const char *err;
	uint8_t *a, *b;
	size_t alen, blen;
	char *before;

	(void)state;
	/* Over the cap: not sent; a Change without Picture keeps it, ghosted or not. */
	c = load("bigphoto.vcf");
	vcard_photo(vcard_get(c, "PHOTO"), &a, &alen, NULL);
	got = to_eas(c, &o);
	assert_null(field(got, "Contacts:Picture"));
	sent = phone_edit(got, NULL, 0);
	before = vcard_write(c, NULL);
	{
		static const struct edit e[] = {{"Contacts:FirstName", "Photograph"}};
		struct wbxml_doc *s2 = phone_edit(got, e, 1);

		assert_int_equal(pim_contact_apply(c, wbxml_doc_root(s2), &o, &err), 1);
		wbxml_doc_free(&s2);
	}
	assert_int_equal(vcard_photo(vcard_get(c, "PHOTO"), &b, &blen, NULL), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	assert_true(alen > 36 * 1024);
	free(a);
	free(b);
	free(before);
	wbxml_doc_free(&got);
	wbxml_doc_free(&sent);
	vcard_free(c);

	/* Sent, then left out of a Change with nothing ghosted: removed. An empty one too. */
	c = load("nextcloud.vcf");
	got = to_eas(c, &o);
	assert_non_null(field(got, "Contacts:Picture"));
	{
		static const struct edit e[] = {{"Contacts:Picture", NULL}};
		sent = phone_edit(got, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_null(vcard_get(c, "PHOTO"));
	wbxml_doc_free(&sent);
	vcard_free(c);
	c = load("nextcloud.vcf");
	{
		static const struct edit e[] = {{"Contacts:Picture", ""}};
		sent = phone_edit(got, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_null(vcard_get(c, "PHOTO"));
	wbxml_doc_free(&sent);
	/* A new photo: 3.0's ENCODING=b, the type from its bytes. */
	{
		static const struct edit e[] = {{"Contacts:Picture", "iVBORw0KGgoBAg=="}};
		sent = phone_edit(got, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_string_equal(vcard_get(c, "PHOTO")->value, "iVBORw0KGgoBAg==");
	assert_string_equal(vcard_param_value(vcard_get(c, "PHOTO"), "TYPE"), "PNG");
	wbxml_doc_free(&sent);
	/* Over the cap, not base64: refused, the card untouched. */
	before = vcard_write(c, NULL);
	o.picture_max = 8;
	{
		static const struct edit e[] = {{"Contacts:Picture", "iVBORw0KGgoBAg=="},
		                                {"Contacts:FirstName", "X"}};
		sent = phone_edit(got, e, 2);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), -1);
	assert_string_equal(err,
	                    "Contacts:Picture larger than its cap (MS-ASCNTC: 48 KB of base64)");
	wbxml_doc_free(&sent);
	o.picture_max = 0;
	{
		static const struct edit e[] = {{"Contacts:Picture", "not*base64"},
		                                {"Contacts:FirstName", "X"}};
		sent = phone_edit(got, e, 2);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), -1);
	assert_string_equal(err, "Contacts:Picture is not base64");
	{
		char *after = vcard_write(c, NULL);
		assert_string_equal(before, after);
		free(after);
	}
	free(before);
	wbxml_doc_free(&sent);
	wbxml_doc_free(&got);
	vcard_free(c);

	/* 4.0 writes a data: URI. */
	c = load("thunderbird.vcf");
	got = to_eas(c, &o);
	{
		static const struct edit e[] = {{"Contacts:Picture", "/9j/4AAQ"}};
		sent = phone_edit(got, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_string_equal(vcard_get(c, "PHOTO")->value, "data:image/jpeg;base64,/9j/4AAQ");
	wbxml_doc_free(&sent);
	wbxml_doc_free(&got);
	vcard_free(c);
}

/* ---- Notes --------------------------------------------------------------- */

static void
test_body(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:N\r\n"
	                            "NOTE:Zeile eins\\nGrüße & <Tschüs>\r\nEND:VCARD\r\n");
	struct pim_contact_opts o = opts161;
	struct wbxml_doc *d, *sent;
	const char *err;

	(void)state;
	/* "Zeile eins\r\nGrüße & <Tschüs>" is 31 bytes; 15 would cut the ü of Grüße in two. */
	o.body_truncation = 15;
	d = to_eas(c, &o);
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Data", "Zeile eins\r\nGr");
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Truncated", "1");
	assert_field(d, "AirSyncBase:Body/AirSyncBase:EstimatedDataSize", "31");
	/* The phone sends back the body it got, truncated: the notes stay whole. */
	sent = phone_edit(d, NULL, 0);
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 0);
	assert_text(vcard_get(c, "NOTE"), "Zeile eins\nGrüße & <Tschüs>");
	wbxml_doc_free(&sent);
	wbxml_doc_free(&d);
	/* AllOrNone: no Data. */
	o.body_all_or_none = true;
	d = to_eas(c, &o);
	assert_null(field(d, "AirSyncBase:Body/AirSyncBase:Data"));
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Truncated", "1");
	wbxml_doc_free(&d);
	o.body_all_or_none = false;
	o.body_truncation = 0;
	/* HTML. */
	o.body_type = 2;
	d = to_eas(c, &o);
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Type", "2");
	assert_field(d, "AirSyncBase:Body/AirSyncBase:Data",
	             "<html><body>Zeile eins<br>Grüße &amp; &lt;Tschüs&gt;</body></html>");
	wbxml_doc_free(&d);
	/* 2.5: no AirSyncBase. */
	o.eas_version = 25;
	d = to_eas(c, &o);
	assert_null(wbxml_find(wbxml_doc_root(d), "AirSyncBase:Body"));
	assert_field(d, "Contacts:FileAs", "N");
	wbxml_doc_free(&d);
	o = opts161;
	/* A new body replaces the notes; an empty one removes them; 2.5's Contacts:Body too. */
	{
		static const struct edit e[] = {{"AirSyncBase:Body", "neu\r\nzwei"}};
		sent = phone_edit(NULL, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_text(vcard_get(c, "NOTE"), "neu\nzwei");
	wbxml_doc_free(&sent);
	{
		static const struct edit e[] = {{"Contacts:Body", "alt"}};
		sent = phone_edit(NULL, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_text(vcard_get(c, "NOTE"), "alt");
	wbxml_doc_free(&sent);
	{
		static const struct edit e[] = {{"AirSyncBase:Body", ""}};
		sent = phone_edit(NULL, e, 1);
	}
	assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &o, &err), 1);
	assert_null(vcard_get(c, "NOTE"));
	wbxml_doc_free(&sent);
	vcard_free(c);
}

/* ---- Dates --------------------------------------------------------------- */

static void
test_birthdays(void **state)
{
	static const struct {
		const char *eas; /* what a phone sends */
		const char *v3;  /* the BDAY it becomes */
	} cases[] = {
	    {"1985-04-11T22:00:00.000Z", "1985-04-12"}, /* local midnight at UTC+2 */
	    {"1985-04-12T05:00:00.000Z", "1985-04-12"}, /* at UTC-5 */
	    {"1985-04-12T00:00:00.000Z", "1985-04-12"}, /* UTC midnight */
	    {"1985-04-12T12:00:00.000Z", "1985-04-12"}, /* abqd's own noon */
	    {"1985-04-11T13:00:00.000Z", "1985-04-12"}, /* at UTC+11 */
	    {"19850412T000000Z", "1985-04-12"},         /* the compact form */
	    {"1604-04-12T12:00:00.000Z", "1604-04-12"}, /* no year */
	};
	const char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct edit e[] = {{"Contacts:Birthday", cases[i].eas}, {"Contacts:FileAs", "B"}};
		struct wbxml_doc *sent = phone_edit(NULL, e, 2);
		struct vcard *c = pim_contact_from_add(wbxml_doc_root(sent), &opts161, &err);
		struct wbxml_doc *back;
		int y, m, d;

		assert_non_null(c);
		if (strcmp(vcard_get(c, "BDAY")->value, cases[i].v3) != 0)
			fail_msg("%s read as %s", cases[i].eas, vcard_get(c, "BDAY")->value);
		assert_int_equal(vcard_date(vcard_get(c, "BDAY"), &y, &m, &d), 0);
		/* Sent back: noon UTC, and it reads back the same date. */
		back = to_eas(c, &opts161);
		assert_field(back, "Contacts:Birthday",
		             y ? "1985-04-12T12:00:00.000Z" : "1604-04-12T12:00:00.000Z");
		assert_int_equal(pim_contact_apply(c, wbxml_doc_root(back), &opts161, &err), 0);
		wbxml_doc_free(&back);
		wbxml_doc_free(&sent);
		vcard_free(c);
	}
	/* No year in 3.0: Apple's 1604 and X-APPLE-OMIT-YEAR; in 4.0 "--MMDD". */
	{
		struct edit e[] = {{"Contacts:Birthday", "1604-07-02T12:00:00.000Z"},
		                   {"Contacts:Anniversary", "2010-09-08T00:00:00.000Z"}};
		struct wbxml_doc *sent = phone_edit(NULL, e, 2);
		struct pim_contact_opts o = opts161;
		struct vcard *c = pim_contact_from_add(wbxml_doc_root(sent), &o, &err);
		char *w = vcard_write(c, NULL);

		assert_non_null(strstr(w, "BDAY;X-APPLE-OMIT-YEAR=1604:1604-07-02\r\n"));
		assert_non_null(strstr(w, "X-ANNIVERSARY:2010-09-08\r\n"));
		free(w);
		vcard_free(c);
		o.new_card_version = VCARD_V40;
		c = pim_contact_from_add(wbxml_doc_root(sent), &o, &err);
		w = vcard_write(c, NULL);
		assert_non_null(strstr(w, "BDAY:--0702\r\n"));
		assert_non_null(strstr(w, "ANNIVERSARY:20100908\r\n"));
		free(w);
		vcard_free(c);
		wbxml_doc_free(&sent);
	}
	/* An unreadable date is left as it was; an empty one removes it. */
	{
		struct vcard *c = load("sogo.vcf");
		struct wbxml_doc *got = to_eas(c, &opts161), *sent;
		struct edit e[] = {{"Contacts:Birthday", "yesterday"}};

		sent = phone_edit(got, e, 1);
		assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &opts161, &err), 0);
		assert_string_equal(vcard_get(c, "BDAY")->value, "1982-07-14");
		wbxml_doc_free(&sent);
		e[0].value = "";
		sent = phone_edit(got, e, 1);
		assert_int_equal(pim_contact_apply(c, wbxml_doc_root(sent), &opts161, &err), 1);
		assert_null(vcard_get(c, "BDAY"));
		wbxml_doc_free(&sent);
		wbxml_doc_free(&got);
		vcard_free(c);
	}
}

/* ---- An Add -------------------------------------------------------------- */

static bool
is_uuid4(const char *s)
{
	if (strlen(s) != 36 || s[14] != '4' || strchr("89ab", s[19]) == NULL)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
			return false;
	}
	return true;
}

static void
test_add(void **state)
{
	static const struct edit e[] = {
	    {"Contacts:FileAs", "Doe, John"},
	    {"Contacts:FirstName", "John"},
	    {"Contacts:LastName", "Doe"},
	    {"Contacts:Email1Address", "john@example.org"},
	    {"Contacts:BusinessPhoneNumber", "+1 555 0100"},
	    {"Contacts:Business2PhoneNumber", "+1 555 0101"},
	    {"Contacts:MobilePhoneNumber", "+1 555 0102"},
	    {"Contacts:CarPhoneNumber", "+1 555 0103"},
	    {"Contacts2:CompanyMainPhone", "+1 555 0104"},
	    {"Contacts2:MMS", "+1 555 0105"},
	    {"Contacts:RadioPhoneNumber", "+1 555 0106"},
	    {"Contacts:OtherAddressCity", "Springfield"},
	    {"Contacts:Spouse", "Jane Doe"},
	    {"Contacts:AssistantName", "Moneypenny"},
	    {"Contacts:Children", "Ann|Bob"},
	    {"Contacts2:IMAddress", "john@jabber.example"},
	    {"Contacts2:IMAddress2", "sip:john@example.org"},
	    {"Contacts:OfficeLocation", "B2.14"},
	    {"Contacts2:GovernmentId", "X-123"},
	    {"Contacts:WebPage", "https://example.org/a,b"},
	    {"Contacts:YomiCompanyName", "Akme"},
	};
	struct wbxml_doc *sent = phone_edit(NULL, e, sizeof(e) / sizeof(e[0])), *back;
	struct pim_contact_opts o = opts161;
	const char *err;
	struct vcard *c;
	char *w, *x1, *x2;

	(void)state;
	c = pim_contact_from_add(wbxml_doc_root(sent), &o, &err);
	assert_non_null(c);
	/* FileAs "Doe, John" only restates the names: FN is "John Doe". */
	assert_text(c->props[0], "John Doe");
	assert_true(vcard_is(c->props[0], "FN"));
	assert_true(is_uuid4(vcard_get(c, "UID")->value));
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "N:Doe;John;;;\r\n"));
	assert_non_null(strstr(w, "EMAIL;TYPE=INTERNET:john@example.org\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=WORK,VOICE:+1 555 0100\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=CELL:+1 555 0102\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=CAR:+1 555 0103\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=WORK,X-COMPANY-MAIN:+1 555 0104\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=CELL,X-MMS:+1 555 0105\r\n"));
	assert_non_null(strstr(w, "ADR;TYPE=OTHER:;;;Springfield;;;\r\n"));
	assert_non_null(strstr(w, "X-SPOUSE:Jane Doe\r\n"));
	assert_non_null(strstr(w, "X-ASSISTANT:Moneypenny\r\n"));
	assert_non_null(strstr(w, "X-CHILD:Ann\r\nX-CHILD:Bob\r\n"));
	assert_non_null(strstr(w, "IMPP:im:john@jabber.example\r\n"));
	assert_non_null(strstr(w, "IMPP:sip:john@example.org\r\n"));
	assert_non_null(strstr(w, "X-EAS-OFFICELOCATION:B2.14\r\n"));
	assert_non_null(strstr(w, "X-EAS-GOVERNMENTID:X-123\r\n"));
	assert_non_null(strstr(w, "URL:https://example.org/a,b\r\n"));
	assert_non_null(strstr(w, "X-PHONETIC-ORG:Akme\r\n"));
	free(w);
	/* Sent back, the same fields (FileAs is FN now). */
	back = to_eas(c, &o);
	x1 = xml(sent);
	x2 = xml(back);
	assert_field(back, "Contacts:FileAs", "John Doe");
	assert_field(back, "Contacts:Business2PhoneNumber", "+1 555 0101");
	assert_field(back, "Contacts:RadioPhoneNumber", "+1 555 0106");
	assert_field(back, "Contacts2:IMAddress2", "sip:john@example.org");
	assert_field(back, "Contacts2:IMAddress", "john@jabber.example");
	free(x1);
	free(x2);
	wbxml_doc_free(&back);
	vcard_free(c);

	/* 4.0: lower-case types, RELATED, urn:uuid. */
	o.new_card_version = VCARD_V40;
	c = pim_contact_from_add(wbxml_doc_root(sent), &o, &err);
	assert_int_equal(strncmp(vcard_get(c, "UID")->value, "urn:uuid:", 9), 0);
	assert_true(is_uuid4(vcard_get(c, "UID")->value + 9));
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "VERSION:4.0\r\n"));
	assert_non_null(strstr(w, "TEL;TYPE=work,voice:+1 555 0100\r\n"));
	assert_non_null(strstr(w, "EMAIL:john@example.org\r\n"));
	assert_non_null(strstr(w, "ADR:;;;Springfield;;;\r\n"));
	assert_non_null(strstr(w, "RELATED;TYPE=spouse;VALUE=text:Jane Doe\r\n"));
	assert_non_null(strstr(w, "RELATED;TYPE=child;VALUE=text:Ann\r\n"));
	free(w);
	vcard_free(c);
	wbxml_doc_free(&sent);

	/* Names missing: FN from the company, else the e-mail address; 3.0 still has N. */
	{
		static const struct edit e2[] = {{"Contacts:CompanyName", "Acme; Inc."}};
		static const struct edit e3[] = {{"Contacts:Email1Address", "who@example.org"}};
		static const struct edit e4[] = {{"Contacts:FileAs", "Johnny D."},
		                                 {"Contacts:FirstName", "John"}};

		sent = phone_edit(NULL, e2, 1);
		c = pim_contact_from_add(wbxml_doc_root(sent), &opts161, &err);
		w = vcard_write(c, NULL);
		assert_non_null(strstr(w, "FN:Acme\\; Inc.\r\nN:;;;;\r\n"));
		assert_non_null(strstr(w, "ORG:Acme\\; Inc.\r\n"));
		free(w);
		vcard_free(c);
		wbxml_doc_free(&sent);
		sent = phone_edit(NULL, e3, 1);
		c = pim_contact_from_add(wbxml_doc_root(sent), &opts161, &err);
		assert_text(vcard_get(c, "FN"), "who@example.org");
		vcard_free(c);
		wbxml_doc_free(&sent);
		sent = phone_edit(NULL, e4, 2);
		c = pim_contact_from_add(wbxml_doc_root(sent), &opts161, &err);
		assert_text(vcard_get(c, "FN"), "Johnny D.");
		vcard_free(c);
		wbxml_doc_free(&sent);
		/* Nothing at all: still FN, N and a UID. */
		sent = phone_edit(NULL, NULL, 0);
		c = pim_contact_from_add(wbxml_doc_root(sent), &opts161, &err);
		w = vcard_write(c, NULL);
		assert_non_null(strstr(w, "VERSION:3.0\r\nFN:\r\nN:;;;;\r\nUID:"));
		free(w);
		vcard_free(c);
		wbxml_doc_free(&sent);
	}
}

/* ---- Caps ---------------------------------------------------------------- */

static void
test_caps(void **state)
{
	char *big = malloc(PIM_CONTACT_BODY_MAX + 2);
	struct wbxml_doc *doc;
	struct wbxml_node *ad, *cats;
	const char *err = NULL;

	(void)state;
	memset(big, 'a', PIM_CONTACT_BODY_MAX + 1);
	big[PIM_CONTACT_TEXT_MAX + 1] = '\0';
	{
		struct edit e[] = {{"Contacts:FirstName", big}};
		doc = phone_edit(NULL, e, 1);
	}
	assert_null(pim_contact_from_add(wbxml_doc_root(doc), &opts161, &err));
	assert_string_equal(err, "Contacts: a text element longer than PIM_CONTACT_TEXT_MAX");
	wbxml_doc_free(&doc);
	big[PIM_CONTACT_TEXT_MAX + 1] = 'a';
	big[PIM_CONTACT_BODY_MAX + 1] = '\0';
	{
		struct edit e[] = {{"AirSyncBase:Body", big}};
		doc = phone_edit(NULL, e, 1);
	}
	assert_null(pim_contact_from_add(wbxml_doc_root(doc), &opts161, &err));
	assert_string_equal(err, "Contacts: notes longer than PIM_CONTACT_BODY_MAX");
	wbxml_doc_free(&doc);
	free(big);
	doc = wbxml_doc_new();
	ad = wbxml_add_root(doc, WBXML_PAGE_AIRSYNC, APPDATA);
	cats = wbxml_addn(ad, "Contacts:Categories");
	for (int i = 0; i <= PIM_CONTACT_LIST_MAX; i++)
		wbxml_addn_text(cats, "Contacts:Category", "c");
	assert_null(pim_contact_from_add(ad, &opts161, &err));
	assert_string_equal(err, "Contacts: more Categories or Children than PIM_CONTACT_LIST_MAX");
	wbxml_doc_free(&doc);
}

/* iOS's "main" number is the company's main phone, not a mobile. */
static void
test_apple_main_number(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Acme\r\nN:;;;;\r\n"
	                            "TEL;type=MAIN:+1 555 0199\r\nTEL;type=CELL:+1 555 0100\r\n"
	                            "END:VCARD\r\n");
	struct wbxml_doc *d = to_eas(c, &opts161);

	(void)state;
	assert_field(d, "Contacts2:CompanyMainPhone", "+1 555 0199");
	assert_field(d, "Contacts:MobilePhoneNumber", "+1 555 0100");
	wbxml_doc_free(&d);
	vcard_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_apple_main_number),
	    cmocka_unit_test(test_apple_to_eas),
	    cmocka_unit_test(test_other_clients_to_eas),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_change_keeps),
	    cmocka_unit_test(test_change_apple),
	    cmocka_unit_test(test_change_im_related),
	    cmocka_unit_test(test_ghosting),
	    cmocka_unit_test(test_picture),
	    cmocka_unit_test(test_body),
	    cmocka_unit_test(test_birthdays),
	    cmocka_unit_test(test_add),
	    cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
