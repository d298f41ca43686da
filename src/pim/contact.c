/*
 * contact.c: vCard <-> EAS contact (contact.h).
 *
 * Both directions go through one view of the card: for each EAS field the
 * text the card gives and the property it came from (view_build). To EAS
 * the view is written out; from EAS the phone's fields are read (incoming),
 * each is compared with the view, and only a field that differs is written
 * into its property (or a new one, or removed). So a card sent to a phone
 * and sent back unchanged is not touched.
 */
#include "pim/contact.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "lib/b64.h"
#include "lib/util.h"
#include "pim/eastime.h"

enum {
	F_FILEAS,
	F_LAST,
	F_FIRST,
	F_MIDDLE,
	F_TITLE,
	F_SUFFIX,
	F_COMPANY,
	F_DEPARTMENT,
	F_JOBTITLE,
	F_NICKNAME,
	F_WEBPAGE,
	F_OFFICE,
	F_CUSTOMERID,
	F_GOVERNMENTID,
	F_ACCOUNTNAME,
	F_EMAIL1,
	F_EMAIL2,
	F_EMAIL3,
	F_IM1,
	F_IM2,
	F_IM3,
	F_TBUS,
	F_TBUS2,
	F_THOME,
	F_THOME2,
	F_TMOBILE,
	F_TBFAX,
	F_THFAX,
	F_TPAGER,
	F_TCAR,
	F_TRADIO,
	F_TASSIST,
	F_TCOMPANY,
	F_TMMS,
	F_ADR0, /* Business Street, City, State, PostalCode, Country; then Home, Other */
	F_BIRTHDAY = F_ADR0 + 15,
	F_ANNIVERSARY,
	F_YFIRST,
	F_YLAST,
	F_YCOMPANY,
	F_SPOUSE,
	F_MANAGER,
	F_ASSISTANT,
	F_N
};

#define NTEL  (F_TMMS - F_TBUS + 1)
#define ADR_B 0
#define ADR_H 1
#define ADR_O 2

/* The EAS element of each field, in the order they are written. */
static const char *const fname[F_N] = {
    [F_FILEAS] = "Contacts:FileAs",
    [F_LAST] = "Contacts:LastName",
    [F_FIRST] = "Contacts:FirstName",
    [F_MIDDLE] = "Contacts:MiddleName",
    [F_TITLE] = "Contacts:Title",
    [F_SUFFIX] = "Contacts:Suffix",
    [F_COMPANY] = "Contacts:CompanyName",
    [F_DEPARTMENT] = "Contacts:Department",
    [F_JOBTITLE] = "Contacts:JobTitle",
    [F_NICKNAME] = "Contacts2:NickName",
    [F_WEBPAGE] = "Contacts:WebPage",
    [F_OFFICE] = "Contacts:OfficeLocation",
    [F_CUSTOMERID] = "Contacts2:CustomerId",
    [F_GOVERNMENTID] = "Contacts2:GovernmentId",
    [F_ACCOUNTNAME] = "Contacts2:AccountName",
    [F_EMAIL1] = "Contacts:Email1Address",
    [F_EMAIL2] = "Contacts:Email2Address",
    [F_EMAIL3] = "Contacts:Email3Address",
    [F_IM1] = "Contacts2:IMAddress",
    [F_IM2] = "Contacts2:IMAddress2",
    [F_IM3] = "Contacts2:IMAddress3",
    [F_TBUS] = "Contacts:BusinessPhoneNumber",
    [F_TBUS2] = "Contacts:Business2PhoneNumber",
    [F_THOME] = "Contacts:HomePhoneNumber",
    [F_THOME2] = "Contacts:Home2PhoneNumber",
    [F_TMOBILE] = "Contacts:MobilePhoneNumber",
    [F_TBFAX] = "Contacts:BusinessFaxNumber",
    [F_THFAX] = "Contacts:HomeFaxNumber",
    [F_TPAGER] = "Contacts:PagerNumber",
    [F_TCAR] = "Contacts:CarPhoneNumber",
    [F_TRADIO] = "Contacts:RadioPhoneNumber",
    [F_TASSIST] = "Contacts:AssistantPhoneNumber",
    [F_TCOMPANY] = "Contacts2:CompanyMainPhone",
    [F_TMMS] = "Contacts2:MMS",
    [F_ADR0 + 0] = "Contacts:BusinessAddressStreet",
    [F_ADR0 + 1] = "Contacts:BusinessAddressCity",
    [F_ADR0 + 2] = "Contacts:BusinessAddressState",
    [F_ADR0 + 3] = "Contacts:BusinessAddressPostalCode",
    [F_ADR0 + 4] = "Contacts:BusinessAddressCountry",
    [F_ADR0 + 5] = "Contacts:HomeAddressStreet",
    [F_ADR0 + 6] = "Contacts:HomeAddressCity",
    [F_ADR0 + 7] = "Contacts:HomeAddressState",
    [F_ADR0 + 8] = "Contacts:HomeAddressPostalCode",
    [F_ADR0 + 9] = "Contacts:HomeAddressCountry",
    [F_ADR0 + 10] = "Contacts:OtherAddressStreet",
    [F_ADR0 + 11] = "Contacts:OtherAddressCity",
    [F_ADR0 + 12] = "Contacts:OtherAddressState",
    [F_ADR0 + 13] = "Contacts:OtherAddressPostalCode",
    [F_ADR0 + 14] = "Contacts:OtherAddressCountry",
    [F_BIRTHDAY] = "Contacts:Birthday",
    [F_ANNIVERSARY] = "Contacts:Anniversary",
    [F_YFIRST] = "Contacts:YomiFirstName",
    [F_YLAST] = "Contacts:YomiLastName",
    [F_YCOMPANY] = "Contacts:YomiCompanyName",
    [F_SPOUSE] = "Contacts:Spouse",
    [F_MANAGER] = "Contacts2:ManagerName",
    [F_ASSISTANT] = "Contacts:AssistantName",
};

/* Single-property fields and their vCard names. */
static const struct {
	int f;
	const char *prop;
} singles[] = {
    {F_JOBTITLE, "TITLE"},
    {F_NICKNAME, "NICKNAME"},
    {F_WEBPAGE, "URL"},
    {F_OFFICE, "X-EAS-OFFICELOCATION"},
    {F_CUSTOMERID, "X-EAS-CUSTOMERID"},
    {F_GOVERNMENTID, "X-EAS-GOVERNMENTID"},
    {F_ACCOUNTNAME, "X-EAS-ACCOUNTNAME"},
};

/* ---- Small helpers ------------------------------------------------------- */

static const char *
tag_of(const char *qname)
{
	const char *c = strchr(qname, ':');

	return c != NULL ? c + 1 : qname;
}

static bool
empty(const char *s)
{
	return s == NULL || *s == '\0';
}

static bool
same(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* s with CRLF and lone CR as LF, in place. */
static char *
lf_only(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\r') {
			if (s[i + 1] != '\n')
				s[o++] = '\n';
		} else
			s[o++] = s[i];
	}
	s[o] = '\0';
	return s;
}

/* s with LF as CRLF (multi-line EAS text), malloc'd. */
static char *
crlf(const char *s)
{
	struct sbuf b = {0};

	sbuf_addn(&b, "", 0);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\n')
			sbuf_addn(&b, "\r\n", 2);
		else
			sbuf_addn(&b, p, 1);
	}
	return sbuf_take(&b);
}

/* A property list, sorted by preference (stable: document order among equals). */
struct plist {
	struct vcard_prop **p;
	size_t n;
};

static void
plist_add(struct plist *l, struct vcard_prop *p)
{
	l->p = xrealloc(l->p, (l->n + 1) * sizeof(*l->p));
	l->p[l->n++] = p;
}

static void
plist_sort(struct plist *l)
{
	for (size_t i = 1; i < l->n; i++) {
		struct vcard_prop *x = l->p[i];
		int px = vcard_pref(x);
		size_t j = i;

		while (j > 0 && vcard_pref(l->p[j - 1]) > px) {
			l->p[j] = l->p[j - 1];
			j--;
		}
		l->p[j] = x;
	}
}

/* Apple's label of prop (its group's X-ABLabel, "_$!<Spouse>!$_" as "Spouse"), or NULL. */
static char *
apple_label(const struct vcard *card, const struct vcard_prop *prop)
{
	size_t pos = 0;
	struct vcard_prop *l;

	if (prop->group == NULL)
		return NULL;
	while ((l = vcard_find(card, "X-ABLabel", &pos)) != NULL) {
		char *t;
		size_t n;

		if (l->group == NULL || strcasecmp(l->group, prop->group) != 0)
			continue;
		t = vcard_text(l);
		n = strlen(t);
		if (n >= 8 && strncmp(t, "_$!<", 4) == 0 && strcmp(t + n - 4, ">!$_") == 0) {
			memmove(t, t + 4, n - 8);
			t[n - 8] = '\0';
		}
		return t;
	}
	return NULL;
}

static bool
has_label(const struct vcard *card, const struct vcard_prop *prop, const char *label)
{
	char *l = apple_label(card, prop);
	bool r = l != NULL && strcasecmp(l, label) == 0;

	free(l);
	return r;
}

/* Remove prop, and its group's X-ABLabel when nothing else is in the group. */
static void
remove_prop(struct vcard *card, struct vcard_prop *prop)
{
	char *group = prop->group != NULL ? xstrdup(prop->group) : NULL;

	vcard_remove(card, prop);
	if (group != NULL) {
		struct vcard_prop *label = NULL;
		bool others = false;

		for (size_t i = 0; i < card->nprops; i++) {
			struct vcard_prop *p = card->props[i];

			if (p->group == NULL || strcasecmp(p->group, group) != 0)
				continue;
			if (vcard_is(p, "X-ABLabel"))
				label = p;
			else
				others = true;
		}
		if (label != NULL && !others)
			vcard_remove(card, label);
		free(group);
	}
}

/* A related person's name: RELATED's text (not a URI), or any other property's text. */
static char *
person_text(const struct vcard_prop *p)
{
	if (vcard_is(p, "RELATED")) {
		const char *vt = vcard_param_value(p, "VALUE");

		if (!(vt != NULL && strcasecmp(vt, "text") == 0) && strchr(p->value, ':') != NULL)
			return NULL;
	}
	return vcard_text(p);
}

/* ---- Related people ------------------------------------------------------ */

enum rel { REL_SPOUSE, REL_MANAGER, REL_ASSISTANT, REL_CHILD, REL_N };

static const struct {
	const char *names[5];
	const char *related; /* RELATED's TYPE */
	const char *label;   /* Apple's X-ABRELATEDNAMES label */
} rels[REL_N] = {
    [REL_SPOUSE] = {{"X-SPOUSE", "X-MS-SPOUSE", "X-EVOLUTION-SPOUSE",
                     "X-KADDRESSBOOK-X-SpousesName"},
                    "spouse",
                    "Spouse"},
    [REL_MANAGER] = {{"X-MANAGER", "X-MS-MANAGER", "X-EVOLUTION-MANAGER",
                      "X-KADDRESSBOOK-X-ManagersName"},
                     "x-manager",
                     "Manager"},
    [REL_ASSISTANT] = {{"X-ASSISTANT", "X-MS-ASSISTANT", "X-EVOLUTION-ASSISTANT",
                        "X-KADDRESSBOOK-X-AssistantsName"},
                       "x-assistant",
                       "Assistant"},
    [REL_CHILD] = {{"X-CHILD", "X-MS-CHILD"}, "child", "Child"},
};

static bool
is_rel(const struct vcard *card, const struct vcard_prop *p, enum rel r)
{
	for (size_t i = 0; i < 5 && rels[r].names[i] != NULL; i++)
		if (vcard_is(p, rels[r].names[i]))
			return true;
	if (vcard_is(p, "RELATED"))
		return vcard_has_type(p, rels[r].related);
	if (vcard_is(p, "X-ABRELATEDNAMES"))
		return has_label(card, p, rels[r].label);
	return false;
}

/* ---- IM ------------------------------------------------------------------ */

static const char *const im_props[] = {
    "IMPP",       "X-AIM",   "X-JABBER",         "X-ICQ",         "X-MSN",
    "X-YAHOO",    "X-SKYPE", "X-SKYPE-USERNAME", "X-GOOGLE-TALK", "X-GTALK",
    "X-GADUGADU", "X-QQ",    "X-MS-IMADDRESS",
};

/* URI schemes of IM networks left out of an IMAddress (sip: stays: EAS's own use). */
static const char *const im_schemes[] = {"xmpp", "aim", "skype", "ymsgr", "msnim",  "icq",
                                         "gg",   "im",  "qq",    "gtalk", "x-apple"};

static bool
is_im(const struct vcard_prop *p)
{
	for (size_t i = 0; i < sizeof(im_props) / sizeof(im_props[0]); i++)
		if (vcard_is(p, im_props[i]))
			return true;
	return false;
}

/* The length of s's URI scheme and colon when it is one of im_schemes, else 0. */
static size_t
im_scheme_len(const char *s)
{
	for (size_t i = 0; i < sizeof(im_schemes) / sizeof(im_schemes[0]); i++) {
		size_t n = strlen(im_schemes[i]);

		if (strncasecmp(s, im_schemes[i], n) == 0 && s[n] == ':')
			return n + 1;
	}
	return 0;
}

static char *
im_text(const struct vcard_prop *p)
{
	char *t = vcard_text(p);
	size_t k = im_scheme_len(t);

	if (k > 0)
		memmove(t, t + k, strlen(t + k) + 1);
	return t;
}

/* ---- Phones -------------------------------------------------------------- */

/* The slot a typed number asks for, -1 for none (untyped). */
static int
tel_slot(const struct vcard *card, const struct vcard_prop *p)
{
	if (vcard_has_type(p, "fax"))
		return vcard_has_type(p, "home") ? F_THFAX : F_TBFAX;
	if (vcard_has_type(p, "pager"))
		return F_TPAGER;
	if (vcard_has_type(p, "car"))
		return F_TCAR;
	if (vcard_has_type(p, "x-radio") || vcard_has_type(p, "radio"))
		return F_TRADIO;
	if (vcard_has_type(p, "x-assistant") || vcard_has_type(p, "assistant") ||
	    has_label(card, p, "Assistant"))
		return F_TASSIST;
	/* Apple's "main" number is the company's main one */
	if (vcard_has_type(p, "x-company-main") || vcard_has_type(p, "x-companymain") ||
	    vcard_has_type(p, "main"))
		return F_TCOMPANY;
	if (vcard_has_type(p, "x-mms") || vcard_has_type(p, "mms"))
		return F_TMMS;
	if (vcard_has_type(p, "cell") || vcard_has_type(p, "mobile") || vcard_has_type(p, "iphone"))
		return F_TMOBILE;
	if (vcard_has_type(p, "work"))
		return F_TBUS;
	if (vcard_has_type(p, "home"))
		return F_THOME;
	return -1;
}

/* The TYPE values a new number in slot f gets. */
static const char *
tel_types(int f)
{
	switch (f) {
	case F_TBUS:
	case F_TBUS2:
		return "work,voice";
	case F_THOME:
	case F_THOME2:
		return "home,voice";
	case F_TMOBILE:
		return "cell";
	case F_TBFAX:
		return "work,fax";
	case F_THFAX:
		return "home,fax";
	case F_TPAGER:
		return "pager";
	case F_TCAR:
		return "car";
	case F_TRADIO:
		return "x-radio";
	case F_TASSIST:
		return "work,x-assistant";
	case F_TCOMPANY:
		return "work,x-company-main";
	default:
		return "cell,x-mms";
	}
}

static char *
tel_text(const struct vcard_prop *p)
{
	char *t = vcard_text(p);

	if (strncasecmp(t, "tel:", 4) == 0)
		memmove(t, t + 4, strlen(t + 4) + 1);
	return t;
}

/* ---- Dates --------------------------------------------------------------- */

/* A date as EAS writes a contact's dates: 12:00 UTC that day (year 0: 1604). */
static char *
eas_date(int y, int m, int d)
{
	struct tm tm;
	char buf[PIM_TIME_LONG_LEN + 1];

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (y > 0 ? y : 1604) - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = 12;
	return xstrdup(pim_time_long((int64_t)timegm(&tm), buf));
}

/* An EAS date-time as a date: the nearest UTC midnight, 12:00 to its own day; year 1604 is none. */
static int
date_of(const char *s, int *y, int *m, int *d)
{
	int64_t t, days, secs;
	time_t tt;
	struct tm tm;

	if (pim_time_parse(s, &t) < 0)
		return -1;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	if (secs > 43200)
		days++;
	tt = (time_t)(days * 86400);
	if (gmtime_r(&tt, &tm) == NULL)
		return -1;
	*y = tm.tm_year + 1900 == 1604 ? 0 : tm.tm_year + 1900;
	*m = tm.tm_mon + 1;
	*d = tm.tm_mday;
	return 0;
}

static bool
is_anniversary(const struct vcard *card, const struct vcard_prop *p)
{
	return vcard_is(p, "ANNIVERSARY") || vcard_is(p, "X-ANNIVERSARY") ||
	       vcard_is(p, "X-MS-ANNIVERSARY") || vcard_is(p, "X-EVOLUTION-ANNIVERSARY") ||
	       (vcard_is(p, "X-ABDATE") && has_label(card, p, "Anniversary"));
}

/* ---- The card's view ----------------------------------------------------- */

struct view {
	char *v[F_N];
	struct vcard_prop *src[F_N];
	struct vcard_prop *n, *org, *fn, *adr[3];
	bool yomi_sortas; /* the yomi names came from N's SORT-AS */
	char **cats;
	size_t ncats;
	char **kids;
	size_t nkids;
	struct vcard_prop *photo;
	char *photo_b64; /* the Picture sent, or NULL */
	char *note;
	bool has_note;
};

static void
view_clear(struct view *w)
{
	for (int f = 0; f < F_N; f++)
		free(w->v[f]);
	vcard_strv_free(w->cats);
	vcard_strv_free(w->kids);
	free(w->photo_b64);
	free(w->note);
	memset(w, 0, sizeof(*w));
}

static void
strv_push(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

/* A field's value: kept only when not empty. */
static void
view_set(struct view *w, int f, char *text, struct vcard_prop *src)
{
	if (empty(text)) {
		free(text);
		return;
	}
	free(w->v[f]);
	w->v[f] = text;
	w->src[f] = src;
}

/* SORT-AS's values of prop, each also split at commas; NULL-terminated or NULL. */
static char **
sort_as(const struct vcard_prop *p, size_t *n_r)
{
	struct vcard_param *s = vcard_param(p, "SORT-AS");
	char **v = NULL;
	size_t n = 0;

	for (size_t i = 0; s != NULL && i < s->nvalues; i++) {
		const char *a = s->values[i];

		for (;;) {
			const char *c = strchr(a, ',');
			size_t len = c != NULL ? (size_t)(c - a) : strlen(a);

			strv_push(&v, &n, xstrndup(a, len));
			if (c == NULL)
				break;
			a = c + 1;
		}
	}
	*n_r = n;
	return v;
}

static void
view_build(const struct vcard *card, const struct pim_contact_opts *o, struct view *w)
{
	struct plist emails = {0}, ims = {0}, tels = {0}, adrs = {0}, urls = {0};
	struct vcard_prop *p;
	size_t picmax = o->picture_max ? o->picture_max : PIM_CONTACT_PICTURE_MAX;

	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < card->nprops; i++) {
		p = card->props[i];
		if (vcard_is(p, "EMAIL"))
			plist_add(&emails, p);
		else if (is_im(p))
			plist_add(&ims, p);
		else if (vcard_is(p, "TEL"))
			plist_add(&tels, p);
		else if (vcard_is(p, "ADR"))
			plist_add(&adrs, p);
		else if (vcard_is(p, "URL"))
			plist_add(&urls, p);
	}
	plist_sort(&emails);
	plist_sort(&ims);
	plist_sort(&tels);
	plist_sort(&adrs);
	plist_sort(&urls);

	/* Names. */
	if ((w->fn = vcard_get(card, "FN")) != NULL)
		view_set(w, F_FILEAS, vcard_text(w->fn), w->fn);
	if ((w->n = vcard_get(card, "N")) != NULL) {
		static const int nf[5] = {F_LAST, F_FIRST, F_MIDDLE, F_TITLE, F_SUFFIX};
		for (size_t i = 0; i < 5; i++)
			view_set(w, nf[i], vcard_comp(w->n, i, " "), w->n);
	}
	if ((w->org = vcard_get(card, "ORG")) != NULL) {
		view_set(w, F_COMPANY, vcard_comp(w->org, 0, ","), w->org);
		view_set(w, F_DEPARTMENT, vcard_comp(w->org, 1, ","), w->org);
	}
	for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
		int f = singles[i].f;

		if (f == F_WEBPAGE)
			p = urls.n > 0 ? urls.p[0] : NULL;
		else
			p = vcard_get(card, singles[i].prop);
		if (p == NULL)
			continue;
		if (f == F_NICKNAME) {
			size_t n;
			char **items = vcard_list(p, &n);
			struct sbuf b = {0};
			for (size_t k = 0; k < n; k++) {
				if (*items[k] == '\0')
					continue;
				if (b.len > 0)
					sbuf_add(&b, ", ");
				sbuf_add(&b, items[k]);
			}
			vcard_strv_free(items);
			view_set(w, f, sbuf_take(&b), p);
		} else
			view_set(w, f, vcard_text(p), p);
	}

	/* E-mail addresses, IM addresses: the first three, the preferred first. */
	for (size_t i = 0, k = 0; i < emails.n && k < 3; i++) {
		char *t = vcard_text(emails.p[i]);

		if (strncasecmp(t, "mailto:", 7) == 0)
			memmove(t, t + 7, strlen(t + 7) + 1);
		if (empty(t)) {
			free(t);
			continue;
		}
		view_set(w, F_EMAIL1 + (int)k++, t, emails.p[i]);
	}
	for (size_t i = 0, k = 0; i < ims.n && k < 3; i++) {
		char *t = im_text(ims.p[i]);
		bool dup = empty(t);

		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(w->v[F_IM1 + j], t) == 0;
		if (dup) {
			free(t);
			continue;
		}
		view_set(w, F_IM1 + (int)k++, t, ims.p[i]);
	}

	/* Phones: typed numbers into their slots, then the untyped into the free ones. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < tels.n; i++) {
			int s = tel_slot(card, tels.p[i]);
			static const int untyped[] = {F_TMOBILE, F_THOME, F_THOME2, F_TBUS2};
			int f = -1;
			char *t;

			if ((pass == 0) != (s >= 0))
				continue;
			if (s >= 0) {
				if (w->src[s] == NULL)
					f = s;
				else if (s == F_TBUS && w->src[F_TBUS2] == NULL)
					f = F_TBUS2;
				else if (s == F_THOME && w->src[F_THOME2] == NULL)
					f = F_THOME2;
			} else {
				for (size_t k = 0; k < 4 && f < 0; k++)
					if (w->src[untyped[k]] == NULL)
						f = untyped[k];
			}
			if (f < 0)
				continue;
			t = tel_text(tels.p[i]);
			if (empty(t)) {
				free(t);
				continue;
			}
			view_set(w, f, t, tels.p[i]);
		}
	}

	/* Addresses. */
	for (size_t i = 0; i < adrs.n; i++) {
		int k = vcard_has_type(adrs.p[i], "work")   ? ADR_B
		        : vcard_has_type(adrs.p[i], "home") ? ADR_H
		                                            : ADR_O;
		struct vcard_adr a;

		if (w->adr[k] != NULL)
			continue;
		w->adr[k] = adrs.p[i];
		vcard_adr_get(adrs.p[i], &a);
		view_set(w, F_ADR0 + 5 * k + 0, xstrdup(a.street), adrs.p[i]);
		view_set(w, F_ADR0 + 5 * k + 1, xstrdup(a.locality), adrs.p[i]);
		view_set(w, F_ADR0 + 5 * k + 2, xstrdup(a.region), adrs.p[i]);
		view_set(w, F_ADR0 + 5 * k + 3, xstrdup(a.code), adrs.p[i]);
		view_set(w, F_ADR0 + 5 * k + 4, xstrdup(a.country), adrs.p[i]);
		vcard_adr_clear(&a);
	}

	/* Dates. */
	for (size_t i = 0; i < card->nprops; i++) {
		int y, m, d, f;

		p = card->props[i];
		if (vcard_is(p, "BDAY"))
			f = F_BIRTHDAY;
		else if (is_anniversary(card, p))
			f = F_ANNIVERSARY;
		else
			continue;
		if (w->src[f] == NULL && vcard_date(p, &y, &m, &d) == 0)
			view_set(w, f, eas_date(y, m, d), p);
	}

	/* Yomi names: Apple's X-PHONETIC-*, else SORT-AS. */
	if ((p = vcard_get(card, "X-PHONETIC-FIRST-NAME")) != NULL)
		view_set(w, F_YFIRST, vcard_text(p), p);
	if ((p = vcard_get(card, "X-PHONETIC-LAST-NAME")) != NULL)
		view_set(w, F_YLAST, vcard_text(p), p);
	if ((p = vcard_get(card, "X-PHONETIC-ORG")) != NULL)
		view_set(w, F_YCOMPANY, vcard_text(p), p);
	if (w->src[F_YFIRST] == NULL && w->src[F_YLAST] == NULL && w->n != NULL) {
		size_t n;
		char **s = sort_as(w->n, &n);

		if (n > 0) {
			w->yomi_sortas = true;
			view_set(w, F_YLAST, xstrdup(s[0]), NULL);
			if (n > 1)
				view_set(w, F_YFIRST, xstrdup(s[1]), NULL);
		}
		vcard_strv_free(s);
	}
	if (w->src[F_YCOMPANY] == NULL && w->org != NULL) {
		size_t n;
		char **s = sort_as(w->org, &n);

		if (n > 0)
			view_set(w, F_YCOMPANY, xstrdup(s[0]), NULL);
		vcard_strv_free(s);
	}

	/* Related people; children; categories; notes; the photo. */
	for (size_t i = 0; i < card->nprops; i++) {
		p = card->props[i];
		for (int r = 0; r < REL_N; r++) {
			char *t;

			if (!is_rel(card, p, (enum rel)r) || (t = person_text(p)) == NULL)
				continue;
			if (r == REL_CHILD) {
				if (*t != '\0')
					strv_push(&w->kids, &w->nkids, t);
				else
					free(t);
			} else if (w->src[F_SPOUSE + r] == NULL)
				view_set(w, F_SPOUSE + r, t, p);
			else
				free(t);
			break;
		}
		if (vcard_is(p, "CATEGORIES")) {
			size_t n;
			char **items = vcard_list(p, &n);

			for (size_t k = 0; k < n; k++) {
				if (*items[k] != '\0')
					strv_push(&w->cats, &w->ncats, items[k]);
				else
					free(items[k]);
			}
			free(items);
		} else if (vcard_is(p, "NOTE")) {
			char *t = vcard_text(p);
			struct sbuf b = {0};

			if (w->note != NULL) {
				sbuf_add(&b, w->note);
				sbuf_add(&b, "\n\n");
				free(w->note);
			}
			sbuf_add(&b, t);
			free(t);
			w->note = sbuf_take(&b);
			w->has_note = true;
		} else if (vcard_is(p, "PHOTO") && w->photo == NULL) {
			uint8_t *data;
			size_t len;

			w->photo = p;
			if (vcard_photo(p, &data, &len, NULL) == 0) {
				if (len > 0 && B64_ENCODED_LEN(len) <= picmax) {
					w->photo_b64 = xmalloc(B64_ENCODED_LEN(len) + 1);
					b64_encode(data, len, w->photo_b64);
				}
				free(data);
			}
		}
	}
	free(emails.p);
	free(ims.p);
	free(tels.p);
	free(adrs.p);
	free(urls.p);
}

/* ---- To EAS -------------------------------------------------------------- */

/* The notes as the body the options ask for: Type, EstimatedDataSize, Truncated, Data. */
static void
add_body(struct wbxml_node *appdata, const char *note, const struct pim_contact_opts *o)
{
	char *text = crlf(note), *data;
	size_t len, cut;
	struct wbxml_node *body;
	char num[32];
	bool html = o->body_type == 2;

	if (html) {
		struct sbuf b = {0};

		sbuf_add(&b, "<html><body>");
		for (const char *p = text; *p != '\0'; p++) {
			if (*p == '\r')
				continue;
			if (*p == '\n')
				sbuf_add(&b, "<br>");
			else
				sbuf_addn_escaped(&b, p, 1);
		}
		sbuf_add(&b, "</body></html>");
		free(text);
		text = sbuf_take(&b);
	}
	len = strlen(text);
	cut = len;
	if (o->body_truncation > 0 && len > o->body_truncation) {
		cut = o->body_truncation;
		while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
			cut--;
	}
	body = wbxml_addn(appdata, "AirSyncBase:Body");
	wbxml_addn_text(body, "AirSyncBase:Type", html ? "2" : "1");
	snprintf(num, sizeof(num), "%zu", len);
	wbxml_addn_text(body, "AirSyncBase:EstimatedDataSize", num);
	if (cut < len) {
		wbxml_addn_text(body, "AirSyncBase:Truncated", "1");
		if (o->body_all_or_none) {
			free(text);
			return;
		}
	}
	data = xstrndup(text, cut);
	wbxml_addn_text(body, "AirSyncBase:Data", data);
	free(data);
	free(text);
}

int
pim_contact_to_eas(const struct vcard *card, const struct pim_contact_opts *o,
                   struct wbxml_node *appdata)
{
	struct view w;

	if (card == NULL || o == NULL || appdata == NULL)
		return -1;
	view_build(card, o, &w);
	if (o->eas_version >= 120 && w.has_note && !empty(w.note))
		add_body(appdata, w.note, o);
	for (int f = 0; f < F_N; f++) {
		char *t;

		if (empty(w.v[f]))
			continue;
		/* Multi-line text goes with CRLF, as Exchange sends it. */
		t = crlf(w.v[f]);
		wbxml_addn_text(appdata, fname[f], t);
		free(t);
	}
	if (w.ncats > 0) {
		struct wbxml_node *c = wbxml_addn(appdata, "Contacts:Categories");

		for (size_t i = 0; i < w.ncats; i++)
			wbxml_addn_text(c, "Contacts:Category", w.cats[i]);
	}
	if (w.nkids > 0) {
		struct wbxml_node *c = wbxml_addn(appdata, "Contacts:Children");

		for (size_t i = 0; i < w.nkids; i++)
			wbxml_addn_text(c, "Contacts:Child", w.kids[i]);
	}
	if (w.photo_b64 != NULL)
		wbxml_addn_text(appdata, "Contacts:Picture", w.photo_b64);
	view_clear(&w);
	return 0;
}

/* ---- From EAS: what the phone sent --------------------------------------- */

struct incoming {
	char *v[F_N];
	bool has[F_N];
	bool has_cats, has_kids, has_pic, has_body;
	char **cats, **kids;
	size_t ncats, nkids;
	uint8_t *pic; /* NULL with has_pic: remove the photo */
	size_t piclen;
	char *body;
};

static void
incoming_clear(struct incoming *in)
{
	for (int f = 0; f < F_N; f++)
		free(in->v[f]);
	vcard_strv_free(in->cats);
	vcard_strv_free(in->kids);
	free(in->pic);
	free(in->body);
}

/* A node's text or opaque bytes (NUL after them), "" for an empty element. */
static const char *
node_str(const struct wbxml_node *n, size_t *len)
{
	if (n->data == NULL) {
		*len = 0;
		return "";
	}
	*len = n->len;
	return (const char *)n->data;
}

static bool
node_is(const struct wbxml_node *n, const char *qname)
{
	const char *c = strchr(qname, ':');
	int page = wbxml_page_by_name(qname, (size_t)(c - qname));

	return page == n->page && strcmp(n->name, c + 1) == 0;
}

/* Email: the address of "Name <addr>". */
static char *
email_addr(const char *s)
{
	const char *lt = strrchr(s, '<'), *gt;
	const char *a = s, *z = s + strlen(s);

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		a = lt + 1;
		z = gt;
	}
	while (a < z && (*a == ' ' || *a == '\t'))
		a++;
	while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
		z--;
	return xstrndup(a, (size_t)(z - a));
}

static int
read_list(const struct wbxml_node *parent, const char *item, char ***v, size_t *n,
          const char **errstr)
{
	for (const struct wbxml_node *c = parent->first_child; c != NULL; c = c->next) {
		size_t len;
		const char *s;

		if (!node_is(c, item))
			continue;
		s = node_str(c, &len);
		if (len > PIM_CONTACT_TEXT_MAX) {
			*errstr = "Contacts: a Category or Child longer than PIM_CONTACT_TEXT_MAX";
			return -1;
		}
		if (*n == PIM_CONTACT_LIST_MAX) {
			*errstr = "Contacts: more Categories or Children than PIM_CONTACT_LIST_MAX";
			return -1;
		}
		if (len > 0)
			strv_push(v, n, lf_only(xmemdup0(s, len)));
	}
	if (*v == NULL)
		*v = xcalloc(1, sizeof(**v));
	return 0;
}

static int
read_incoming(const struct wbxml_node *appdata, const struct pim_contact_opts *o,
              struct incoming *in, const char **errstr)
{
	size_t picmax = o->picture_max ? o->picture_max : PIM_CONTACT_PICTURE_MAX;

	memset(in, 0, sizeof(*in));
	for (const struct wbxml_node *c = appdata->first_child; c != NULL; c = c->next) {
		size_t len;
		const char *s;
		int f;

		for (f = 0; f < F_N; f++)
			if (node_is(c, fname[f]))
				break;
		if (f < F_N) {
			if (in->has[f])
				continue;
			s = node_str(c, &len);
			if (len > PIM_CONTACT_TEXT_MAX) {
				*errstr =
				    "Contacts: a text element longer than PIM_CONTACT_TEXT_MAX";
				return -1;
			}
			in->has[f] = true;
			in->v[f] = lf_only(xmemdup0(s, len));
			if (f >= F_EMAIL1 && f <= F_EMAIL3) {
				char *a = email_addr(in->v[f]);
				free(in->v[f]);
				in->v[f] = a;
			}
		} else if (node_is(c, "Contacts:Categories") && !in->has_cats) {
			in->has_cats = true;
			if (read_list(c, "Contacts:Category", &in->cats, &in->ncats, errstr) < 0)
				return -1;
		} else if (node_is(c, "Contacts:Children") && !in->has_kids) {
			in->has_kids = true;
			if (read_list(c, "Contacts:Child", &in->kids, &in->nkids, errstr) < 0)
				return -1;
		} else if (node_is(c, "Contacts:Picture") && !in->has_pic) {
			char *clean;
			size_t k = 0, errpos;
			const char *err;

			s = node_str(c, &len);
			if (len > picmax) {
				*errstr = "Contacts:Picture larger than its cap (MS-ASCNTC: 48 KB "
				          "of base64)";
				return -1;
			}
			in->has_pic = true;
			clean = xmalloc(len + 1);
			for (size_t i = 0; i < len; i++)
				if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
					clean[k++] = s[i];
			if (k > 0) {
				in->pic = xmalloc(B64_DECODED_MAX(k) + 1);
				if (b64_decode(clean, k, in->pic, &in->piclen, &errpos, &err) < 0 ||
				    in->piclen == 0) {
					free(clean);
					*errstr = "Contacts:Picture is not base64";
					return -1;
				}
			}
			free(clean);
		} else if ((node_is(c, "Contacts:Body") || node_is(c, "AirSyncBase:Body")) &&
		           !in->has_body) {
			const struct wbxml_node *data = c;

			if (node_is(c, "AirSyncBase:Body")) {
				const char *type = wbxml_find_text(c, "AirSyncBase:Type");
				const char *tr = wbxml_find_text(c, "AirSyncBase:Truncated");

				data = wbxml_find(c, "AirSyncBase:Data");
				/* Only a whole plain-text body replaces the notes. */
				if ((type != NULL && strcmp(type, "1") != 0) ||
				    (tr != NULL && strcmp(tr, "1") == 0) || data == NULL)
					continue;
			}
			s = node_str(data, &len);
			if (len > PIM_CONTACT_BODY_MAX) {
				*errstr = "Contacts: notes longer than PIM_CONTACT_BODY_MAX";
				return -1;
			}
			in->has_body = true;
			in->body = lf_only(xmemdup0(s, len));
		}
	}
	return 0;
}

/* ---- From EAS: applying -------------------------------------------------- */

struct apply {
	struct vcard *card;
	const struct pim_contact_opts *o;
	bool change; /* a Change (ghosting applies), not an Add */
	bool changed;
	struct view w;
	struct incoming in;
};

static bool
listed(const struct pim_contact_opts *o, const char *tag)
{
	for (size_t i = 0; i < o->nsupported; i++)
		if (o->supported[i] != NULL && strcmp(tag_of(o->supported[i]), tag) == 0)
			return true;
	return false;
}

/* Whether an element left out of a Change is kept (ghosted) rather than removed. */
static bool
ghosted(const struct apply *a, const char *qname)
{
	return !a->change || (a->o->supported_sent && !listed(a->o, tag_of(qname)));
}

/* The phone's new value of field f: NULL to keep the card's, "" to remove it. */
static const char *
decide(const struct apply *a, int f)
{
	const char *nv;

	if (a->in.has[f])
		nv = a->in.v[f];
	else if (!ghosted(a, fname[f]))
		nv = "";
	else
		return NULL;
	if (f == F_BIRTHDAY || f == F_ANNIVERSARY) {
		int y1, m1, d1, y2, m2, d2;

		if (empty(nv))
			return empty(a->w.v[f]) ? NULL : "";
		/* An unreadable date is left out, as if not sent. */
		if (date_of(nv, &y1, &m1, &d1) < 0)
			return NULL;
		if (a->w.v[f] != NULL && date_of(a->w.v[f], &y2, &m2, &d2) == 0 && y1 == y2 &&
		    m1 == m2 && d1 == d2)
			return NULL;
		return nv;
	}
	return same(a->w.v[f], nv) ? NULL : nv;
}

static struct vcard_prop *
add_prop(struct apply *a, const struct vcard_prop *before, const char *name)
{
	a->changed = true;
	return vcard_add_before(a->card, before, NULL, name, "");
}

/*
 * Remove p; the view forgets it (a later add_slot must not find it, nor a
 * new property that happens to get its address).
 */
static void
drop(struct apply *a, struct vcard_prop *p)
{
	if (p == NULL)
		return;
	for (int f = 0; f < F_N; f++)
		if (a->w.src[f] == p)
			a->w.src[f] = NULL;
	for (int k = 0; k < 3; k++)
		if (a->w.adr[k] == p)
			a->w.adr[k] = NULL;
	if (a->w.n == p)
		a->w.n = NULL;
	if (a->w.org == p)
		a->w.org = NULL;
	if (a->w.fn == p)
		a->w.fn = NULL;
	if (a->w.photo == p)
		a->w.photo = NULL;
	remove_prop(a->card, p);
	a->changed = true;
}

static void
add_types(struct vcard *card, struct vcard_prop *p, const char *types)
{
	char *t = xstrdup(types), *v[4];
	size_t n = 0;

	if (card->version == VCARD_V30)
		for (char *q = t; *q != '\0'; q++)
			if (*q >= 'a' && *q <= 'z')
				*q = (char)(*q - 'a' + 'A');
	for (char *q = t; n < 4;) {
		v[n++] = q;
		if ((q = strchr(q, ',')) == NULL)
			break;
		*q++ = '\0';
	}
	vcard_param_add_list(p, "TYPE", (const char *const *)v, n);
	free(t);
}

/*
 * Slot f of a group of slots (first..last) gets a new property: placed in
 * front of the first later slot's property, with its preference when that
 * one has one, so that the next view puts it in the same slot.
 */
static struct vcard_prop *
add_slot(struct apply *a, int f, int last, const char *name)
{
	const struct vcard_prop *before = NULL;
	int rank = 101;
	struct vcard_prop *p;

	for (int k = f + 1; k <= last; k++) {
		struct vcard_prop *s = a->w.src[k];

		if (s == NULL || vcard_index(a->card, s) == a->card->nprops)
			continue;
		if (before == NULL || vcard_index(a->card, s) < vcard_index(a->card, before))
			before = s;
		if (vcard_pref(s) < rank)
			rank = vcard_pref(s);
	}
	p = add_prop(a, before, name);
	if (rank <= 100)
		vcard_set_pref(a->card, p, rank);
	return p;
}

static void
apply_names(struct apply *a)
{
	static const int nf[5] = {F_LAST, F_FIRST, F_MIDDLE, F_TITLE, F_SUFFIX};
	const char *nv[5];
	bool any = false, all_empty = true;

	for (int i = 0; i < 5; i++) {
		nv[i] = decide(a, nf[i]);
		any = any || nv[i] != NULL;
		if (!empty(nv[i] != NULL ? nv[i] : a->w.v[nf[i]]))
			all_empty = false;
	}
	if (!any)
		return;
	if (all_empty && a->card->version == VCARD_V40) {
		drop(a, a->w.n);
		return;
	}
	if (a->w.n == NULL)
		a->w.n = add_prop(a, NULL, "N");
	vcard_set_comps(a->w.n, nv, 5);
	a->changed = true;
}

static void
apply_org(struct apply *a)
{
	const char *nv[2] = {decide(a, F_COMPANY), decide(a, F_DEPARTMENT)};
	size_t ncomp = 0;
	bool all_empty = true;

	if (nv[0] == NULL && nv[1] == NULL)
		return;
	for (int i = 0; i < 2; i++)
		if (!empty(nv[i] != NULL ? nv[i] : a->w.v[F_COMPANY + i]))
			all_empty = false;
	if (a->w.org != NULL) {
		char **c = vcard_split(a->w.org->value, ';', &ncomp);

		for (size_t i = 2; i < ncomp; i++)
			if (*c[i] != '\0')
				all_empty = false;
		vcard_strv_free(c);
	}
	if (all_empty) {
		drop(a, a->w.org);
		return;
	}
	if (a->w.org == NULL)
		a->w.org = add_prop(a, NULL, "ORG");
	vcard_set_comps(a->w.org, nv, 2);
	/* "Company;" with nothing after: just the company. */
	{
		size_t n = strlen(a->w.org->value);
		while (n > 0 && a->w.org->value[n - 1] == ';' &&
		       (n < 2 || a->w.org->value[n - 2] != '\\'))
			a->w.org->value[--n] = '\0';
	}
	a->changed = true;
}

static void
apply_adr(struct apply *a, int k)
{
	const char *nv[7] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	bool any = false, all_empty = true;
	struct vcard_prop *p = a->w.adr[k];

	for (int i = 0; i < 5; i++) {
		int f = F_ADR0 + 5 * k + i;

		nv[2 + i] = decide(a, f);
		any = any || nv[2 + i] != NULL;
		if (!empty(nv[2 + i] != NULL ? nv[2 + i] : a->w.v[f]))
			all_empty = false;
	}
	if (!any)
		return;
	if (p != NULL) {
		char *pobox = vcard_comp(p, 0, ","), *ext = vcard_comp(p, 1, ",");

		if (!empty(pobox) || !empty(ext))
			all_empty = false;
		free(pobox);
		free(ext);
	}
	if (all_empty) {
		drop(a, p);
		return;
	}
	if (p == NULL) {
		p = a->w.adr[k] = add_prop(a, NULL, "ADR");
		if (k != ADR_O || a->card->version == VCARD_V30)
			add_types(a->card, p, k == ADR_B ? "work" : k == ADR_H ? "home" : "other");
		vcard_set_raw(p, ";;;;;;");
	}
	/* 4.0's formatted address no longer says the same. */
	vcard_param_remove(p, "LABEL");
	vcard_set_comps(p, nv, 7);
	a->changed = true;
}

/* The name as FN makes it from N's parts (values: the field texts). */
static char *
compose_name(const char *const v[5])
{
	static const int order[5] = {3, 1, 2, 0, 4}; /* Title First Middle Last Suffix */
	struct sbuf b = {0};

	for (int i = 0; i < 5; i++) {
		const char *s = v[order[i]];

		if (empty(s))
			continue;
		if (b.len > 0)
			sbuf_add(&b, " ");
		sbuf_add(&b, s);
	}
	return sbuf_take(&b);
}

static void
apply_fn(struct apply *a, const char *const oldn[5], const char *const newn[5], const char *company,
         const char *email)
{
	const char *fa = decide(a, F_FILEAS);
	char *old_made = compose_name(oldn), *made = compose_name(newn);
	bool names_changed = strcmp(old_made, made) != 0;
	const char *fn = a->w.v[F_FILEAS];

	if (!empty(fa)) {
		/* "Last, First" only restates the names: FN stays what it is. */
		char *comma = xasprintf("%s, %s", newn[0] != NULL ? newn[0] : "",
		                        newn[1] != NULL ? newn[1] : "");
		bool restates = strcmp(fa, comma) == 0;

		free(comma);
		if (!restates) {
			if (a->w.fn == NULL)
				a->w.fn = add_prop(
				    a, a->card->nprops > 0 ? a->card->props[0] : NULL, "FN");
			vcard_set_text(a->w.fn, fa);
			a->changed = true;
			goto out;
		}
	}
	if (a->w.fn == NULL || empty(fn) || (names_changed && strcmp(fn, old_made) == 0)) {
		const char *v = !empty(made) ? made : !empty(company) ? company : email;

		if (a->w.fn != NULL && same(fn, v))
			goto out;
		if (a->w.fn == NULL)
			a->w.fn = add_prop(a, a->card->nprops > 0 ? a->card->props[0] : NULL, "FN");
		vcard_set_text(a->w.fn, v != NULL ? v : "");
		a->changed = true;
	}
out:
	free(old_made);
	free(made);
}

static void
apply_single(struct apply *a, int f, const char *name)
{
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];

	if (nv == NULL)
		return;
	if (*nv == '\0') {
		drop(a, p);
		return;
	}
	if (p == NULL)
		p = add_prop(a, NULL, name);
	if (f == F_WEBPAGE)
		vcard_set_raw(p, nv); /* a URI: no text escapes */
	else
		vcard_set_text(p, nv);
	a->changed = true;
}

static void
apply_email(struct apply *a, int f)
{
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];

	if (nv == NULL)
		return;
	if (*nv == '\0') {
		drop(a, p);
		return;
	}
	if (p == NULL) {
		p = add_slot(a, f, F_EMAIL3, "EMAIL");
		if (a->card->version == VCARD_V30)
			vcard_param_add(p, "TYPE", "INTERNET");
	}
	vcard_set_text(p, nv);
	a->changed = true;
}

/* Set an IM property to the phone's value (nv not empty). */
static void
set_im(struct vcard_prop *p, const char *nv)
{
	char *v;

	if (!vcard_is(p, "IMPP")) {
		vcard_set_text(p, nv);
		return;
	}
	/* A URI: the old scheme stays when the phone sent none. */
	const char *colon = strchr(nv, ':');
	size_t k = im_scheme_len(p->value);

	if (colon != NULL && (size_t)(colon - nv) < 16)
		v = xstrdup(nv);
	else if (k > 0)
		v = xasprintf("%.*s%s", (int)k, p->value, nv);
	else
		v = xasprintf("im:%s", nv);
	vcard_set_raw(p, v);
	free(v);
}

static void
apply_im(struct apply *a, int f)
{
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];

	if (nv == NULL)
		return;
	if (p == NULL) {
		if (*nv != '\0') {
			set_im(add_slot(a, f, F_IM3, "IMPP"), nv);
			a->changed = true;
		}
		return;
	}
	/*
	 * The slot showed one address that may stand in several properties
	 * (X-JABBER and IMPP:xmpp: of the same account): all of them change.
	 */
	for (size_t i = 0; i < a->card->nprops;) {
		struct vcard_prop *q = a->card->props[i];
		char *t;
		bool dup;

		if (!is_im(q)) {
			i++;
			continue;
		}
		t = im_text(q);
		dup = strcmp(t, a->w.v[f]) == 0;
		free(t);
		if (!dup) {
			i++;
			continue;
		}
		if (*nv == '\0') {
			drop(a, q);
			i = 0;
			continue;
		}
		set_im(q, nv);
		a->changed = true;
		i++;
	}
}

static void
apply_tel(struct apply *a, int f)
{
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];

	if (nv == NULL)
		return;
	if (*nv == '\0') {
		drop(a, p);
		return;
	}
	if (p == NULL) {
		int last = f == F_TBUS ? F_TBUS2 : f == F_THOME ? F_THOME2 : f;
		p = add_slot(a, f, last, "TEL");
		add_types(a->card, p, tel_types(f));
	}
	/* Written as text: a tel: URI's VALUE goes. */
	vcard_param_remove(p, "VALUE");
	vcard_set_text(p, nv);
	a->changed = true;
}

static void
apply_date(struct apply *a, int f)
{
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];
	int y, m, d;

	if (nv == NULL)
		return;
	if (*nv == '\0') {
		drop(a, p);
		return;
	}
	if (date_of(nv, &y, &m, &d) < 0)
		return;
	if (p == NULL)
		p = add_prop(a, NULL,
		             f == F_BIRTHDAY                 ? "BDAY"
		             : a->card->version == VCARD_V40 ? "ANNIVERSARY"
		                                             : "X-ANNIVERSARY");
	vcard_set_date(a->card, p, y, m, d);
	a->changed = true;
}

static void
apply_yomi(struct apply *a)
{
	static const int yf[3] = {F_YFIRST, F_YLAST, F_YCOMPANY};
	static const char *const names[3] = {"X-PHONETIC-FIRST-NAME", "X-PHONETIC-LAST-NAME",
	                                     "X-PHONETIC-ORG"};
	const char *nv[3];

	for (int i = 0; i < 3; i++)
		nv[i] = decide(a, yf[i]);
	if (a->w.yomi_sortas && (nv[0] != NULL || nv[1] != NULL) && a->w.n != NULL) {
		/* From now on Apple's properties say it; both names move there. */
		vcard_param_remove(a->w.n, "SORT-AS");
		for (int i = 0; i < 2; i++)
			if (nv[i] == NULL)
				nv[i] = a->w.v[yf[i]] != NULL ? a->w.v[yf[i]] : "";
		a->changed = true;
	}
	if (a->w.src[F_YCOMPANY] == NULL && nv[2] != NULL && a->w.org != NULL &&
	    vcard_param(a->w.org, "SORT-AS") != NULL) {
		vcard_param_remove(a->w.org, "SORT-AS");
		a->changed = true;
	}
	for (int i = 0; i < 3; i++) {
		struct vcard_prop *p = a->w.src[yf[i]];

		if (nv[i] == NULL)
			continue;
		if (*nv[i] == '\0') {
			drop(a, p);
			continue;
		}
		if (p == NULL)
			p = add_prop(a, NULL, names[i]);
		vcard_set_text(p, nv[i]);
		a->changed = true;
	}
}

/* A related person's new property as the card's version writes it. */
static struct vcard_prop *
add_rel(struct apply *a, enum rel r)
{
	struct vcard_prop *p;

	if (a->card->version == VCARD_V40 && (r == REL_SPOUSE || r == REL_CHILD)) {
		p = add_prop(a, NULL, "RELATED");
		vcard_param_add(p, "TYPE", rels[r].related);
		vcard_param_add(p, "VALUE", "text");
	} else
		p = add_prop(a, NULL, rels[r].names[0]);
	return p;
}

static void
apply_rel(struct apply *a, enum rel r)
{
	int f = F_SPOUSE + (int)r;
	const char *nv = decide(a, f);
	struct vcard_prop *p = a->w.src[f];

	if (nv == NULL)
		return;
	if (*nv == '\0') {
		drop(a, p);
		return;
	}
	if (p == NULL)
		p = add_rel(a, r);
	/* RELATED is a URI unless it says it is text. */
	if (vcard_is(p, "RELATED") && vcard_param(p, "VALUE") == NULL)
		vcard_param_add(p, "VALUE", "text");
	vcard_set_text(p, nv);
	a->changed = true;
}

static bool
same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* The phone's list (NULL: keep the card's), as decide() does for fields. */
static bool
decide_list(const struct apply *a, bool has, char **v, size_t n, const char *qname, char **old,
            size_t nold, char ***nv, size_t *nn)
{
	static char *none[1] = {NULL};

	if (has) {
		*nv = v;
		*nn = n;
	} else if (!ghosted(a, qname)) {
		*nv = none;
		*nn = 0;
	} else
		return false;
	return !same_list(*nv, *nn, old, nold);
}

static void
apply_lists(struct apply *a)
{
	char **nv;
	size_t nn;

	if (decide_list(a, a->in.has_cats, a->in.cats, a->in.ncats, "Contacts:Categories",
	                a->w.cats, a->w.ncats, &nv, &nn)) {
		struct sbuf b = {0};

		vcard_remove_all(a->card, "CATEGORIES");
		for (size_t i = 0; i < nn; i++) {
			char *e = vcard_escape(nv[i]);
			if (i > 0)
				sbuf_addn(&b, ",", 1);
			sbuf_add(&b, e);
			free(e);
		}
		if (nn > 0)
			vcard_add(a->card, NULL, "CATEGORIES", b.p);
		free(b.p);
		a->changed = true;
	}
	if (decide_list(a, a->in.has_kids, a->in.kids, a->in.nkids, "Contacts:Children", a->w.kids,
	                a->w.nkids, &nv, &nn)) {
		for (size_t i = 0; i < a->card->nprops;) {
			struct vcard_prop *p = a->card->props[i];
			char *t;

			if (!is_rel(a->card, p, REL_CHILD) || (t = person_text(p)) == NULL) {
				i++;
				continue;
			}
			free(t);
			/* Its label may go too, before or after it: look again from the start. */
			drop(a, p);
			i = 0;
		}
		for (size_t i = 0; i < nn; i++)
			vcard_set_text(add_rel(a, REL_CHILD), nv[i]);
		a->changed = true;
	}
}

static void
apply_picture(struct apply *a)
{
	struct vcard_prop *p = a->w.photo;

	if (!a->in.has_pic) {
		/* A photo the phone never got is never lost. */
		if (a->w.photo_b64 == NULL || ghosted(a, "Contacts:Picture"))
			return;
		drop(a, p);
		return;
	}
	if (a->in.pic == NULL) {
		drop(a, p);
		return;
	}
	if (p != NULL) {
		uint8_t *data;
		size_t len;

		if (vcard_photo(p, &data, &len, NULL) == 0) {
			bool eq = len == a->in.piclen && memcmp(data, a->in.pic, len) == 0;
			free(data);
			if (eq)
				return;
		}
	} else
		p = add_prop(a, NULL, "PHOTO");
	vcard_set_photo(a->card, p, a->in.pic, a->in.piclen);
	a->changed = true;
}

static void
apply_body(struct apply *a)
{
	if (!a->in.has_body || same(a->w.note, a->in.body))
		return;
	vcard_remove_all(a->card, "NOTE");
	if (*a->in.body != '\0')
		vcard_add_text(a->card, "NOTE", a->in.body);
	a->changed = true;
}

static void
apply_all(struct apply *a)
{
	static const int nf[5] = {F_LAST, F_FIRST, F_MIDDLE, F_TITLE, F_SUFFIX};
	const char *oldn[5], *newn[5], *company, *email, *d;

	/*
	 * The name parts before and after, for FN (the view's texts and the
	 * phone's: neither changes while the card does).
	 */
	for (int i = 0; i < 5; i++) {
		d = decide(a, nf[i]);
		oldn[i] = a->w.v[nf[i]];
		newn[i] = d != NULL ? d : a->w.v[nf[i]];
	}
	d = decide(a, F_COMPANY);
	company = d != NULL ? d : a->w.v[F_COMPANY];
	d = decide(a, F_EMAIL1);
	email = d != NULL ? d : a->w.v[F_EMAIL1];
	apply_names(a);
	apply_org(a);
	apply_fn(a, oldn, newn, company, email);
	for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++)
		apply_single(a, singles[i].f, singles[i].prop);
	for (int f = F_EMAIL1; f <= F_EMAIL3; f++)
		apply_email(a, f);
	for (int f = F_IM1; f <= F_IM3; f++)
		apply_im(a, f);
	for (int f = F_TBUS; f <= F_TMMS; f++)
		apply_tel(a, f);
	for (int k = 0; k < 3; k++)
		apply_adr(a, k);
	apply_date(a, F_BIRTHDAY);
	apply_date(a, F_ANNIVERSARY);
	apply_yomi(a);
	for (int r = 0; r < REL_CHILD; r++)
		apply_rel(a, (enum rel)r);
	apply_lists(a);
	apply_picture(a);
	apply_body(a);
}

int
pim_contact_apply(struct vcard *card, const struct wbxml_node *appdata,
                  const struct pim_contact_opts *o, const char **errstr)
{
	struct apply a;

	if (card == NULL || appdata == NULL || o == NULL) {
		*errstr = "Contacts: no card or no ApplicationData";
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.card = card;
	a.o = o;
	a.change = true;
	if (read_incoming(appdata, o, &a.in, errstr) < 0) {
		incoming_clear(&a.in);
		return -1;
	}
	view_build(card, o, &a.w);
	apply_all(&a);
	view_clear(&a.w);
	incoming_clear(&a.in);
	return a.changed ? 1 : 0;
}

struct vcard *
pim_contact_from_add(const struct wbxml_node *appdata, const struct pim_contact_opts *o,
                     const char **errstr)
{
	struct apply a;
	uint8_t r[16];
	char uid[64];

	if (appdata == NULL || o == NULL) {
		*errstr = "Contacts: no ApplicationData";
		return NULL;
	}
	memset(&a, 0, sizeof(a));
	a.o = o;
	if (read_incoming(appdata, o, &a.in, errstr) < 0) {
		incoming_clear(&a.in);
		return NULL;
	}
	a.card = vcard_new(o->new_card_version == VCARD_V40 ? VCARD_V40 : VCARD_V30);
	view_build(a.card, o, &a.w);
	apply_all(&a);
	view_clear(&a.w);
	incoming_clear(&a.in);
	/* FN always; N too in 3.0, where it is required. */
	if (vcard_get(a.card, "FN") == NULL)
		vcard_add_before(a.card, a.card->nprops > 0 ? a.card->props[0] : NULL, NULL, "FN",
		                 "");
	if (a.card->version == VCARD_V30 && vcard_get(a.card, "N") == NULL)
		vcard_add_before(a.card, a.card->nprops > 1 ? a.card->props[1] : NULL, NULL, "N",
		                 ";;;;");
	/* A version 4 UUID. */
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		fatalx("contact: getrandom failed");
	r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
	r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
	snprintf(uid, sizeof(uid),
	         "%s%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         a.card->version == VCARD_V40 ? "urn:uuid:" : "", r[0], r[1], r[2], r[3], r[4],
	         r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
	vcard_add(a.card, NULL, "UID", uid);
	return a.card;
}

const char **
pim_contact_supported(const struct wbxml_node *supported, size_t *n_r)
{
	const char **v = NULL;
	size_t n = 0;

	for (const struct wbxml_node *c = supported != NULL ? supported->first_child : NULL;
	     c != NULL; c = c->next) {
		if (c->page != WBXML_PAGE_CONTACTS && c->page != WBXML_PAGE_CONTACTS2)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = c->name;
	}
	*n_r = n;
	return v;
}
