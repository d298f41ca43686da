/*
 * test_vcard.c: the vCard reader and writer (src/pim/vcard.c): cards as
 * Apple Contacts, Google, Thunderbird, Outlook, Android, SOGo and Nextcloud
 * write them (vcard_data/), read, written back and read again; every cap
 * refused with its message; folding around 75 octets with characters of
 * every UTF-8 length; the card model the converter edits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pim/vcard.h"

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", VCARD_DATA_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct vcard *
load(const char *name)
{
	size_t len;
	char *buf = slurp(name, &len);
	const char *err = NULL;
	struct vcard *c = vcard_parse_one(buf, len, NULL, &err);

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

/* The n-th property named name (0 first), or NULL. */
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

static void
assert_text(const struct vcard_prop *p, const char *want)
{
	char *t;

	assert_non_null(p);
	t = vcard_text(p);
	assert_string_equal(t, want);
	free(t);
}

/* The written card unfolded: every property's line whole. */
static char *
unfolded(const struct vcard *c)
{
	char *w = vcard_write(c, NULL);
	size_t o = 0;

	for (size_t i = 0; w[i] != '\0'; i++) {
		if (w[i] == '\r' && w[i + 1] == '\n' && w[i + 2] == ' ') {
			i += 2;
			continue;
		}
		w[o++] = w[i];
	}
	w[o] = '\0';
	return w;
}

static bool
same_card(const struct vcard *a, const struct vcard *b)
{
	if (a->version != b->version || a->nprops != b->nprops)
		return false;
	for (size_t i = 0; i < a->nprops; i++) {
		const struct vcard_prop *p = a->props[i], *q = b->props[i];

		if ((p->group == NULL) != (q->group == NULL) ||
		    (p->group != NULL && strcmp(p->group, q->group) != 0) ||
		    strcmp(p->name, q->name) != 0 || strcmp(p->value, q->value) != 0 ||
		    p->nparams != q->nparams)
			return false;
		for (size_t k = 0; k < p->nparams; k++) {
			if (strcmp(p->params[k].name, q->params[k].name) != 0 ||
			    p->params[k].nvalues != q->params[k].nvalues)
				return false;
			for (size_t j = 0; j < p->params[k].nvalues; j++)
				if (strcmp(p->params[k].values[j], q->params[k].values[j]) != 0)
					return false;
		}
	}
	return true;
}

/* Write c, read it back: the same card and, written again, the same bytes. */
static void
assert_round_trip(const struct vcard *c)
{
	size_t len, len2;
	char *w = vcard_write(c, &len), *w2;
	const char *err = NULL;
	struct vcard *again = vcard_parse_one(w, len, NULL, &err);

	if (again == NULL)
		fail_msg("written card unreadable: %s", err);
	assert_true(same_card(c, again));
	w2 = vcard_write(again, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(w, w2, len);
	free(w);
	free(w2);
	vcard_free(again);
}

/* ---- The clients' cards -------------------------------------------------- */

static void
test_apple(void **state)
{
	struct vcard *c = load("apple.vcf");
	struct vcard_n n;
	struct vcard_adr a;
	struct vcard_prop *p;
	uint8_t *photo;
	size_t len;
	char *mt, *w;

	(void)state;
	assert_int_equal(c->version, VCARD_V30);
	assert_false(c->from_21);
	vcard_n_get(vcard_get(c, "N"), &n);
	assert_string_equal(n.family, "Appleseed");
	assert_string_equal(n.given, "Johnny");
	assert_string_equal(n.additional, "Quincy Q."); /* a comma list, joined */
	assert_string_equal(n.prefix, "Dr.");
	assert_string_equal(n.suffix, "Jr.");
	vcard_n_clear(&n);
	/* Lower-case type=, several TYPE parameters, pref among them. */
	p = nth(c, "EMAIL", 0);
	assert_true(vcard_has_type(p, "work"));
	assert_true(vcard_has_type(p, "INTERNET"));
	assert_int_equal(vcard_pref(p), 1);
	assert_int_equal(vcard_pref(nth(c, "EMAIL", 1)), 101);
	/* Groups and their labels. */
	p = nth(c, "EMAIL", 2);
	assert_string_equal(p->group, "item1");
	assert_text(nth(c, "X-ABLabel", 0), "_$!<Other>!$_");
	assert_string_equal(nth(c, "X-ABLabel", 0)->group, "item1");
	/* An escaped line break inside an address's street. */
	vcard_adr_get(nth(c, "ADR", 1), &a);
	assert_string_equal(a.street, "123 Main St\nApt 4");
	assert_string_equal(a.locality, "San Jose");
	assert_string_equal(a.country, "United States");
	vcard_adr_clear(&a);
	assert_text(vcard_get(c, "NOTE"), "Met at WWDC.\nLikes apples, pears.");
	/* The photo: 3.0's ENCODING=b. */
	p = vcard_get(c, "PHOTO");
	assert_int_equal(vcard_photo(p, &photo, &len, &mt), 0);
	assert_int_equal(len, 600 + 20 + 2);
	assert_int_equal(vcard_photo_size(p), len);
	assert_memory_equal(photo, "\xff\xd8\xff\xe0", 4);
	assert_string_equal(mt, "image/jpeg");
	free(photo);
	free(mt);
	/* What nobody interprets goes back as it came. */
	w = unfolded(c);
	assert_non_null(strstr(w, "\r\nX-ABUID:4A6B0F1E-8C2D-4E5F-9A0B-1C2D3E4F5A6B:ABPerson\r\n"));
	assert_non_null(strstr(w, "\r\nX-SOCIALPROFILE;type=twitter;x-user=johnny:https://twitter."
	                          "example/johnny\r\n"));
	assert_non_null(strstr(w, "\r\nitem4.X-ABADR:us\r\n"));
	assert_non_null(strstr(w, "\r\nIMPP;X-SERVICE-TYPE=Jabber;type=HOME;type=pref:xmpp:johnny@"
	                          "jabber.example\r\n"));
	assert_non_null(strstr(w, "\r\nREV:2024-03-01T10:00:00Z\r\n"));
	assert_non_null(strstr(w, "\r\nN:Appleseed;Johnny;Quincy,Q.;Dr.;Jr.\r\n"));
	free(w);
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_google(void **state)
{
	struct vcard *c = load("google.vcf");
	struct vcard_adr a;
	uint8_t *photo;
	size_t len;

	(void)state;
	assert_int_equal(vcard_remove_all(c, "NONE"), 0);
	/* Google's "http\://": a colon. */
	assert_text(vcard_get(c, "URL"), "http://www.empresa.example");
	assert_string_equal(vcard_get(c, "URL")->value, "http\\://www.empresa.example");
	vcard_adr_get(vcard_get(c, "ADR"), &a);
	assert_string_equal(a.street, "Calle Mayor 1, 3º B");
	assert_string_equal(a.country, "España");
	vcard_adr_clear(&a);
	/* A photo by URI is not inline. */
	assert_int_equal(vcard_photo(vcard_get(c, "PHOTO"), &photo, &len, NULL), -1);
	assert_int_equal(vcard_photo_size(vcard_get(c, "PHOTO")), 0);
	assert_non_null(nth(c, "EMAIL", 3));
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_thunderbird(void **state)
{
	struct vcard *c = load("thunderbird.vcf");
	struct vcard_prop *p;
	uint8_t *photo;
	size_t len;
	char *mt;
	int y, m, d;

	(void)state;
	assert_int_equal(c->version, VCARD_V40);
	assert_int_equal(vcard_pref(nth(c, "EMAIL", 0)), 1);
	assert_int_equal(vcard_pref(nth(c, "EMAIL", 1)), 101);
	assert_int_equal(vcard_date(vcard_get(c, "BDAY"), &y, &m, &d), 0);
	assert_int_equal(y, 1980);
	assert_int_equal(m, 2);
	assert_int_equal(d, 29);
	/* 4.0's date without a year. */
	assert_int_equal(vcard_date(vcard_get(c, "ANNIVERSARY"), &y, &m, &d), 0);
	assert_int_equal(y, 0);
	assert_int_equal(m, 6);
	assert_int_equal(d, 1);
	/* A data: URI photo. */
	p = vcard_get(c, "PHOTO");
	assert_int_equal(vcard_photo(p, &photo, &len, &mt), 0);
	assert_memory_equal(photo, "\x89PNG", 4);
	assert_string_equal(mt, "image/png");
	assert_int_equal(vcard_photo_size(p), len);
	free(photo);
	free(mt);
	assert_text(nth(c, "RELATED", 1), "Lena");
	assert_text(vcard_get(c, "X-CUSTOM1"), "Hobby: Segeln");
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_outlook21(void **state)
{
	struct vcard *c = load("outlook.vcf");
	struct vcard_n n;
	struct vcard_adr a;
	struct vcard_prop *p;
	uint8_t *photo;
	size_t len;
	char *w;

	(void)state;
	/* 2.1 is read into a 3.0 card. */
	assert_int_equal(c->version, VCARD_V30);
	assert_true(c->from_21);
	/* Windows-1252 (declared), parameters it had kept but CHARSET. */
	vcard_n_get(vcard_get(c, "N"), &n);
	assert_string_equal(n.family, "Weiß");
	assert_string_equal(n.given, "Stefan");
	vcard_n_clear(&n);
	assert_string_equal(vcard_param_value(vcard_get(c, "N"), "LANGUAGE"), "de");
	assert_null(vcard_param(vcard_get(c, "N"), "CHARSET"));
	/* Quoted-printable over a soft break, CRLF inside, the euro sign of 1252. */
	p = vcard_get(c, "NOTE");
	assert_null(vcard_param(p, "ENCODING"));
	assert_text(p, "Erste Zeile\nZweite Zeile mit Umlauten: äöü, und Semikolon; ok € 5\n"
	               "Dritte Zeile");
	/* 2.1's plain comma and semicolon become 3.0 escapes. */
	assert_non_null(strstr(p->value, "äöü\\, und Semikolon\\; ok"));
	/* Bare parameters: TYPE. */
	p = nth(c, "TEL", 3);
	assert_true(vcard_has_type(p, "work"));
	assert_true(vcard_has_type(p, "FAX"));
	assert_string_equal(p->params[0].name, "TYPE");
	assert_int_equal(vcard_pref(vcard_get(c, "ADR")), 1);
	vcard_adr_get(vcard_get(c, "ADR"), &a);
	assert_string_equal(a.street, "Leopoldstraße 10");
	assert_string_equal(a.locality, "München");
	vcard_adr_clear(&a);
	assert_text(vcard_get(c, "LABEL"), "Leopoldstraße 10\nMünchen, Bayern 80802\nDeutschland");
	assert_text(vcard_get(c, "X-MS-SPOUSE"), "Andrea Weiß");
	/* The indented base64 photo, ended by a blank line: ENCODING=b now. */
	p = vcard_get(c, "PHOTO");
	assert_string_equal(vcard_param_value(p, "ENCODING"), "b");
	assert_int_equal(vcard_photo(p, &photo, &len, NULL), 0);
	assert_int_equal(len, 300 + 22);
	free(photo);
	assert_string_equal(vcard_get(c, "REV")->value, "20240301T100000Z");
	/* Written as 3.0. */
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "VERSION:3.0\r\n"));
	assert_null(strstr(w, "QUOTED-PRINTABLE"));
	assert_null(strstr(w, "CHARSET"));
	free(w);
	w = unfolded(c);
	assert_non_null(strstr(w, "\r\nTEL;TYPE=WORK;TYPE=FAX:+49 (89) 1234-99\r\n"));
	assert_non_null(
	    strstr(w, "\r\nX-MS-OL-DESIGN:<card xmlns=\"http://schemas.microsoft.com/"));
	free(w);
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_android21(void **state)
{
	struct vcard *c = load("android.vcf");
	struct vcard_adr a;
	uint8_t *photo;
	size_t len;
	char *mt;

	(void)state;
	assert_text(vcard_get(c, "FN"), "王小明");
	vcard_adr_get(vcard_get(c, "ADR"), &a);
	assert_string_equal(a.street, "长安街 1号");
	assert_string_equal(a.locality, "北京");
	assert_string_equal(a.country, "中国");
	vcard_adr_clear(&a);
	assert_text(vcard_get(c, "NOTE"), "大学同学\n喜欢篮球");
	/* UTF-8 without a charset in 2.1 stays UTF-8; its ';' stay raw. */
	assert_string_equal(vcard_get(c, "X-ANDROID-CUSTOM")->value,
	                    "vnd.android.cursor.item/nickname;小明;1;;;;;;;;;;;;;");
	/* Android's custom label is no parameter anybody can read: the number stays. */
	assert_string_equal(nth(c, "TEL", 3)->value, "010-11112222");
	/* "PHOTO;ENCODING=BASE64;JPEG:" with its data folded over lines. */
	assert_int_equal(vcard_photo(vcard_get(c, "PHOTO"), &photo, &len, &mt), 0);
	assert_int_equal(len, 222);
	assert_string_equal(mt, "image/jpeg");
	free(photo);
	free(mt);
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_sogo_nextcloud(void **state)
{
	struct vcard *c = load("sogo.vcf"), *d;
	struct vcard_n n;

	(void)state;
	/* N with two components only. */
	vcard_n_get(vcard_get(c, "N"), &n);
	assert_string_equal(n.family, "Dupont");
	assert_string_equal(n.given, "Claire");
	assert_string_equal(n.suffix, "");
	vcard_n_clear(&n);
	assert_text(vcard_get(c, "CUSTOM1"), "Bibliothèque");
	assert_round_trip(c);
	d = load("nextcloud.vcf");
	/* TYPE="HOME,VOICE": one quoted value, still two types. */
	assert_true(vcard_has_type(vcard_get(d, "TEL"), "home"));
	assert_true(vcard_has_type(vcard_get(d, "TEL"), "voice"));
	assert_false(vcard_has_type(vcard_get(d, "TEL"), "cell"));
	assert_round_trip(d);
	vcard_free(c);
	vcard_free(d);
}

static void
test_address_book(void **state)
{
	size_t len, n;
	char *buf = slurp("addressbook.vcf", &len);
	struct vcard **cards;
	const char *err;
	struct vcard *one;

	(void)state;
	assert_int_equal(vcard_parse(buf, len, NULL, &cards, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_text(vcard_get(cards[0], "FN"), "Alice Example");
	/* Bob's nested AGENT card is skipped whole: his own TEL follows it. */
	assert_true(cards[1]->from_21);
	assert_text(vcard_get(cards[1], "FN"), "Bob Example");
	assert_int_equal(cards[1]->nprops, 4);
	assert_text(vcard_get(cards[1], "TEL"), "555-1234");
	assert_null(nth(cards[1], "N", 1));
	assert_int_equal(cards[2]->version, VCARD_V40);
	for (size_t i = 0; i < n; i++)
		assert_round_trip(cards[i]);
	vcard_free_all(cards, n);
	/* One card asked for, three given. */
	one = vcard_parse_one(buf, len, NULL, &err);
	assert_null(one);
	assert_string_equal(err, "vCard: more than one card where one was expected");
	free(buf);
}

/* ---- Syntax -------------------------------------------------------------- */

static void
test_line_endings(void **state)
{
	static const char *const forms[] = {
	    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Folded\r\n  Name\r\nNOTE:a\r\n\tb\r\nEND:VCARD\r\n",
	    "BEGIN:VCARD\nVERSION:3.0\nFN:Folded\n  Name\nNOTE:a\n\tb\nEND:VCARD\n",
	    "BEGIN:VCARD\rVERSION:3.0\rFN:Folded\r  Name\rNOTE:a\r\tb\rEND:VCARD",
	    "garbage before\r\nbegin:vcard\r\nversion:3.0\r\nfn:Folded\r\n  Name\r\n"
	    "note:a\r\n\tb\r\nend:vcard\r\ntrailing garbage",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct vcard *c = parse_str(forms[i]);

		assert_int_equal(c->nprops, 2);
		assert_text(vcard_get(c, "FN"), "Folded Name");
		assert_text(vcard_get(c, "Note"), "ab");
		vcard_free(c);
	}
}

static void
test_params(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:4.0\r\n"
	                            "ADR;LABEL=\"1 Main St.\\nTown; CA: 90210, "
	                            "USA\";TYPE=work,pref:;;1 Main St.;Town;CA;;\r\n"
	                            "X-A;X-Q=\"caret ^^ quote ^' nl ^n end\";X-E=;X-U=a^b:v\r\n"
	                            "item2.X-B;x-list=one,\"two,three\",four:w\r\n"
	                            "END:VCARD\r\n");
	struct vcard_prop *p;
	struct vcard_param *l;
	char *w;

	(void)state;
	p = vcard_get(c, "ADR");
	assert_string_equal(vcard_param_value(p, "label"), "1 Main St.\\nTown; CA: 90210, USA");
	assert_true(vcard_has_type(p, "WORK"));
	assert_int_equal(vcard_pref(p), 1);
	p = vcard_get(c, "X-A");
	/* RFC 6868: ^^ ^' ^n; a lone ^ is itself. */
	assert_string_equal(vcard_param_value(p, "X-Q"), "caret ^ quote \" nl \n end");
	assert_string_equal(vcard_param_value(p, "X-E"), "");
	assert_string_equal(vcard_param_value(p, "X-U"), "a^b");
	assert_string_equal(p->value, "v");
	l = vcard_param(vcard_get(c, "X-B"), "X-LIST");
	assert_int_equal(l->nvalues, 3);
	assert_string_equal(l->values[1], "two,three");
	w = unfolded(c);
	assert_non_null(strstr(w, "X-A;X-Q=caret ^ quote ^' nl ^n end;X-E=;X-U=a^b:v\r\n"));
	assert_non_null(strstr(w, "LABEL=\"1 Main St.\\nTown; CA: 90210, USA\";TYPE=work,pref:"));
	assert_non_null(strstr(w, "x-list=one,\"two,three\",four:w"));
	free(w);
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_escapes(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\n"
	                            "NOTE:a\\nb\\Nc\\,d\\;e\\\\f\\xg\\\r\n"
	                            "CATEGORIES:one,two\\,three,,four\r\n"
	                            "END:VCARD\r\n");
	struct vcard_prop *p;
	char **l, *e;
	size_t n;

	(void)state;
	p = vcard_get(c, "NOTE");
	assert_text(p, "a\nb\nc,d;e\\f\\xg\\");
	l = vcard_list(vcard_get(c, "CATEGORIES"), &n);
	assert_int_equal(n, 4);
	assert_string_equal(l[0], "one");
	assert_string_equal(l[1], "two,three");
	assert_string_equal(l[2], "");
	assert_string_equal(l[3], "four");
	vcard_strv_free(l);
	/* set_text escapes; text reads it back. */
	vcard_set_text(p, "x\r\ny,z;w\\");
	assert_string_equal(p->value, "x\\ny\\,z\\;w\\\\");
	assert_text(p, "x\ny,z;w\\");
	e = vcard_escape("a\rb");
	assert_string_equal(e, "a\\nb");
	free(e);
	/* A raw value with line breaks gets them escaped. */
	vcard_set_raw(p, "l1\nl2\r\nl3");
	assert_string_equal(p->value, "l1\\nl2\\nl3");
	assert_round_trip(c);
	vcard_free(c);
}

static void
test_invalid_utf8(void **state)
{
	struct vcard *c;

	(void)state;
	/* 3.0: an invalid sequence, an overlong, a surrogate, NUL and controls become U+FFFD. */
	c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\n"
	              "FN:a\xff"
	              "b\xc0\xaf"
	              "c\xed\xa0\x80"
	              "d\x01"
	              "e\x7f"
	              "f\tg\r\n"
	              "END:VCARD\r\n");
	assert_text(vcard_get(c, "FN"), "a\xEF\xBF\xBD"
	                                "b\xEF\xBF\xBD\xEF\xBF\xBD"
	                                "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
	                                "d\xEF\xBF\xBD"
	                                "e\xEF\xBF\xBD"
	                                "f\tg");
	assert_round_trip(c);
	vcard_free(c);
	/* 2.1 without a charset: Windows-1252 (0x81 undefined there: ISO-8859-1). */
	c = parse_str("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Ren\xe9 \x93q\x94 \x81\r\nEND:VCARD\r\n");
	assert_text(vcard_get(c, "FN"), "René “q” \xC2\x81");
	vcard_free(c);
	/* A NUL inside a line. */
	{
		static const char s[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\0y\r\nEND:VCARD\r\n";
		const char *err;
		struct vcard *d = vcard_parse_one(s, sizeof(s) - 1, NULL, &err);

		assert_non_null(d);
		assert_text(vcard_get(d, "FN"), "x\xEF\xBF\xBDy");
		vcard_free(d);
	}
	/* A charset iconv knows, and one nobody knows. */
	c = parse_str("BEGIN:VCARD\r\nVERSION:2.1\r\n"
	              "FN;CHARSET=ISO-8859-15:\xa4uro\r\n"
	              "NOTE;CHARSET=X-NOPE:caf\xc3\xa9\r\n"
	              "TITLE;CHARSET=KOI8-R:\xf0\xd2\xc9\xd7\xc5\xd4\r\n"
	              "END:VCARD\r\n");
	assert_text(vcard_get(c, "FN"), "€uro");
	assert_text(vcard_get(c, "NOTE"), "café");
	assert_text(vcard_get(c, "TITLE"), "Привет");
	vcard_free(c);
}

static void
test_skipped_lines(void **state)
{
	struct vcard *c = parse_str("BEGIN:VCARD\r\nVERSION:3.0\r\n"
	                            "no colon here\r\n"
	                            ":no name\r\n"
	                            ".EMAIL:no group name\r\n"
	                            "X-Q;P=\"unclosed:value\r\n"
	                            "BAD NAME:x\r\n"
	                            "FN:kept\r\n"
	                            "X-P;BAD PARAM=1;GOOD=2:y\r\n"
	                            "VERSION:4.0\r\n"
	                            "END:VCARD\r\n");
	struct vcard_prop *p;

	(void)state;
	assert_int_equal(c->version, VCARD_V30); /* the first VERSION counts */
	assert_int_equal(c->nprops, 2);
	assert_text(vcard_get(c, "FN"), "kept");
	p = vcard_get(c, "X-P");
	assert_int_equal(p->nparams, 1);
	assert_string_equal(p->params[0].name, "GOOD");
	vcard_free(c);
}

/* ---- Caps ---------------------------------------------------------------- */

static void
expect_refused(const char *s, const struct vcard_limits *lim, const char *msg)
{
	size_t len = strlen(s);
	struct vcard **cards = (struct vcard **)1;
	size_t n = 99;
	const char *err = NULL;

	if (vcard_parse(s, len, lim, &cards, &n, &err) != -1)
		fail_msg("not refused: %s", msg);
	assert_null(cards);
	assert_int_equal(n, 0);
	assert_non_null(err);
	assert_string_equal(err, msg);
}

static void
test_caps(void **state)
{
	static const char card[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\n";
	struct vcard_limits lim;
	char buf[4096];

	(void)state;
	memset(&lim, 0, sizeof(lim));
	lim.max_input = sizeof(card) - 2;
	expect_refused(card, &lim, "vCard: input larger than its cap (vcard_limits.max_input)");
	memset(&lim, 0, sizeof(lim));
	lim.max_line = 10;
	expect_refused("BEGIN:VCARD\r\nNOTE:0123456\r\n 789\r\nEND:VCARD\r\n", &lim,
	               "vCard: a line longer than its cap (vcard_limits.max_line)");
	memset(&lim, 0, sizeof(lim));
	lim.max_cards = 2;
	snprintf(buf, sizeof(buf), "%s%s%s", card, card, card);
	expect_refused(buf, &lim, "vCard: more cards than its cap (vcard_limits.max_cards)");
	memset(&lim, 0, sizeof(lim));
	lim.max_props = 2;
	expect_refused("BEGIN:VCARD\r\nFN:a\r\nN:b\r\nNOTE:c\r\nEND:VCARD\r\n", &lim,
	               "vCard: a card with more properties than its cap (vcard_limits.max_props)");
	memset(&lim, 0, sizeof(lim));
	lim.max_total = 4;
	snprintf(buf, sizeof(buf), "%s%s%s", card, card,
	         "BEGIN:VCARD\r\nFN:c\r\nN:c\r\nNOTE:c\r\nEND:VCARD\r\n");
	expect_refused(buf, &lim,
	               "vCard: more properties in the input than its cap (vcard_limits.max_total)");
	memset(&lim, 0, sizeof(lim));
	lim.max_params = 3;
	expect_refused("BEGIN:VCARD\r\nTEL;TYPE=a,b;X=c;Y=d:1\r\nEND:VCARD\r\n", &lim,
	               "vCard: a property with more parameter values than its cap "
	               "(vcard_limits.max_params)");
	/* Bare 2.1 parameters count too. */
	expect_refused("BEGIN:VCARD\r\nTEL;A;B;C;D:1\r\nEND:VCARD\r\n", &lim,
	               "vCard: a property with more parameter values than its cap "
	               "(vcard_limits.max_params)");
	memset(&lim, 0, sizeof(lim));
	lim.max_photo = 5;
	expect_refused("BEGIN:VCARD\r\nPHOTO;ENCODING=b:AAAAAAAA\r\nEND:VCARD\r\n", &lim,
	               "vCard: a PHOTO larger than its cap (vcard_limits.max_photo)");
	expect_refused("BEGIN:VCARD\r\nPHOTO:data:image/jpeg;base64,AAAAAAAA\r\nEND:VCARD\r\n",
	               &lim, "vCard: a PHOTO larger than its cap (vcard_limits.max_photo)");
	{
		/* Six bytes of photo pass a cap of six. */
		const char *err;
		struct vcard *c;

		lim.max_photo = 6;
		c = vcard_parse_one("BEGIN:VCARD\r\nPHOTO;ENCODING=b:AAAAAAAA\r\nEND:VCARD\r\n", 50,
		                    &lim, &err);
		assert_non_null(c);
		vcard_free(c);
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_depth = 1;
	snprintf(buf, sizeof(buf),
	         "BEGIN:VCARD\r\nAGENT:\r\nBEGIN:VCARD\r\nBEGIN:VCARD\r\n"
	         "END:VCARD\r\nEND:VCARD\r\nEND:VCARD\r\n");
	expect_refused(buf, &lim,
	               "vCard: cards nested deeper than the cap (vcard_limits.max_depth)");
	expect_refused("BEGIN:VCARD\r\nFN:x\r\n", NULL,
	               "vCard: the input ends inside a card (no END:VCARD)");
	expect_refused("FN:x\r\nEND:VCARD\r\n", NULL, "vCard: no BEGIN:VCARD in the input");
	expect_refused("", NULL, "vCard: no BEGIN:VCARD in the input");
}

/* ---- Folding ------------------------------------------------------------- */

/* Every physical line of w: CRLF-terminated, at most 75 octets, valid UTF-8 alone. */
static void
assert_folded(const char *w)
{
	const char *line = w;

	while (*line != '\0') {
		const char *e = strstr(line, "\r\n");
		size_t n;
		char *alone;
		const char *err;
		struct vcard *probe;
		char buf[256];

		assert_non_null(e);
		n = (size_t)(e - line);
		assert_true(n <= 75);
		/* Valid UTF-8 on its own: the reader would otherwise replace a byte. */
		alone = strndup(line, n);
		snprintf(buf, sizeof(buf), "BEGIN:VCARD\r\nX:%s\r\nEND:VCARD\r\n", alone);
		probe = vcard_parse_one(buf, strlen(buf), NULL, &err);
		assert_non_null(probe);
		assert_null(strstr(vcard_get(probe, "X")->value, "\xEF\xBF\xBD"));
		vcard_free(probe);
		free(alone);
		line = e + 2;
	}
}

static void
test_folding(void **state)
{
	static const char *const chars[] = {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		/* Values so long that the line is 60 to 160 octets; the wide character at every
		 * offset. */
		for (size_t len = 50; len <= 150; len++) {
			for (size_t at = 0; at + strlen(chars[k]) <= len; at += (k == 0 ? 50 : 1)) {
				char v[512];
				struct vcard *c = vcard_new(k % 2 ? VCARD_V40 : VCARD_V30);
				struct vcard_prop *p;
				char *w, *back;
				const char *err;
				struct vcard *again;
				size_t o = 0;

				while (o < at)
					v[o++] = 'x';
				memcpy(v + o, chars[k], strlen(chars[k]));
				o += strlen(chars[k]);
				while (o < len) {
					/* More wide characters after the first, so cuts land inside
					 * them. */
					if (k > 0 && o + strlen(chars[k]) <= len &&
					    (o - at) % 3 == 0) {
						memcpy(v + o, chars[k], strlen(chars[k]));
						o += strlen(chars[k]);
					} else
						v[o++] = 'y';
				}
				v[o] = '\0';
				p = vcard_add(c, NULL, "NOTE", v);
				assert_string_equal(p->value, v);
				w = vcard_write(c, NULL);
				assert_folded(w);
				again = vcard_parse_one(w, strlen(w), NULL, &err);
				assert_non_null(again);
				back = vcard_text(vcard_get(again, "NOTE"));
				assert_string_equal(back, v);
				free(back);
				free(w);
				vcard_free(again);
				vcard_free(c);
			}
		}
	}
}

static void
test_fold_exact(void **state)
{
	struct vcard *c = vcard_new(VCARD_V30);
	char v[200];
	char *w;

	(void)state;
	/* "NOTE:" and 70 octets: 75, one line; 71: a second line " x". */
	memset(v, 'x', 70);
	v[70] = '\0';
	vcard_add(c, NULL, "NOTE", v);
	w = vcard_write(c, NULL);
	{
		char want[256];

		snprintf(want, sizeof(want), "\r\nNOTE:%s\r\nEND:VCARD", v);
		assert_non_null(strstr(w, want));
	}
	free(w);
	strcat(v, "z");
	vcard_set_raw(vcard_get(c, "NOTE"), v);
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "xxxxxx\r\n z\r\nEND:VCARD"));
	free(w);
	/* A euro sign straddling octet 75 goes whole to the next line. */
	memset(v, 'x', 69);
	strcpy(v + 69, "\xE2\x82\xAC"
	               "end");
	vcard_set_raw(vcard_get(c, "NOTE"), v);
	w = vcard_write(c, NULL);
	assert_non_null(strstr(w, "xxxx\r\n \xE2\x82\xAC"
	                          "end\r\n"));
	free(w);
	vcard_free(c);
}

/* ---- The model ----------------------------------------------------------- */

static void
test_model(void **state)
{
	struct vcard *c = vcard_new(VCARD_V40);
	struct vcard_prop *a, *b, *p;
	size_t pos = 0;
	char *w;
	const char *comps[3] = {"Doe, Jr", NULL, "John"};

	(void)state;
	a = vcard_add_text(c, "FN", "John Doe");
	b = vcard_add(c, "g1", "EMAIL", "j@example.org");
	p = vcard_add_before(c, b, NULL, "N", "Doe;;;;");
	assert_int_equal(vcard_index(c, p), 1);
	assert_ptr_equal(vcard_find(c, "email", &pos), b);
	assert_null(vcard_find(c, "email", &pos));
	vcard_param_add(b, "TYPE", "work");
	vcard_set_pref(c, b, 3);
	assert_int_equal(vcard_pref(b), 3);
	vcard_set_pref(c, b, 1);
	assert_int_equal(vcard_pref(b), 1);
	assert_int_equal(vcard_param(b, "PREF")->nvalues, 1);
	vcard_param_remove(b, "pref");
	assert_int_equal(vcard_pref(b), 101);
	/* Components: NULL keeps, text is escaped, missing ones are added. */
	vcard_set_raw(p, "Doe;A,B");
	vcard_set_comps(p, comps, 3);
	assert_string_equal(p->value, "Doe\\, Jr;A,B;John");
	w = vcard_comp(p, 1, "+");
	assert_string_equal(w, "A+B");
	free(w);
	w = vcard_comp(p, 7, "+");
	assert_string_equal(w, "");
	free(w);
	vcard_remove(c, a);
	assert_int_equal(c->nprops, 2);
	vcard_add(c, NULL, "NOTE", "1");
	vcard_add(c, NULL, "note", "2");
	assert_int_equal(vcard_remove_all(c, "NOTE"), 2);
	w = vcard_write(c, NULL);
	assert_string_equal(w, "BEGIN:VCARD\r\nVERSION:4.0\r\nN:Doe\\, Jr;A,B;John\r\n"
	                       "g1.EMAIL;TYPE=work:j@example.org\r\nEND:VCARD\r\n");
	free(w);
	vcard_free(c);
	/* 3.0's pref is a TYPE. */
	c = vcard_new(VCARD_V30);
	b = vcard_add(c, NULL, "TEL", "1");
	vcard_set_pref(c, b, 7);
	vcard_set_pref(c, b, 7);
	assert_int_equal(vcard_pref(b), 1);
	assert_int_equal(b->nparams, 1);
	vcard_free(c);
}

static void
test_dates(void **state)
{
	static const struct {
		const char *line;
		int y, m, d;
	} ok[] = {
	    {"BDAY:1985-04-12", 1985, 4, 12},
	    {"BDAY:19850412", 1985, 4, 12},
	    {"BDAY;VALUE=date:1985-04-12", 1985, 4, 12},
	    {"BDAY:1985-04-12T00:00:00Z", 1985, 4, 12},
	    {"BDAY:19531015T231000Z", 1953, 10, 15},
	    {"BDAY:--0412", 0, 4, 12},
	    {"BDAY:--04-12", 0, 4, 12},
	    {"BDAY:--0229", 0, 2, 29},
	    {"BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12", 0, 4, 12},
	    {"BDAY;X-APPLE-OMIT-YEAR=1604:1990-04-12", 1990, 4, 12},
	    {"BDAY:2000-02-29", 2000, 2, 29},
	};
	static const char *const bad[] = {
	    "BDAY;VALUE=text:circa 1800",
	    "BDAY:1985-04",
	    "BDAY:---12",
	    "BDAY:1985-13-01",
	    "BDAY:1900-02-29",
	    "BDAY:",
	    "BDAY:19850432",
	};
	char buf[256];
	int y, m, d;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct vcard *c;

		snprintf(buf, sizeof(buf), "BEGIN:VCARD\r\n%s\r\nEND:VCARD\r\n", ok[i].line);
		c = parse_str(buf);
		if (vcard_date(vcard_get(c, "BDAY"), &y, &m, &d) != 0)
			fail_msg("%s unread", ok[i].line);
		assert_int_equal(y, ok[i].y);
		assert_int_equal(m, ok[i].m);
		assert_int_equal(d, ok[i].d);
		vcard_free(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vcard *c;

		snprintf(buf, sizeof(buf), "BEGIN:VCARD\r\n%s\r\nEND:VCARD\r\n", bad[i]);
		c = parse_str(buf);
		if (vcard_date(vcard_get(c, "BDAY"), &y, &m, &d) == 0)
			fail_msg("%s read", bad[i]);
		vcard_free(c);
	}
	/* Written as each version spells it, read back the same. */
	for (int v = 0; v < 2; v++) {
		struct vcard *c = vcard_new(v ? VCARD_V40 : VCARD_V30);
		struct vcard_prop *p = vcard_add(c, NULL, "BDAY", "x");

		vcard_param_add(p, "VALUE", "text");
		vcard_set_date(c, p, 1999, 12, 31);
		assert_string_equal(p->value, v ? "19991231" : "1999-12-31");
		assert_null(vcard_param(p, "VALUE"));
		vcard_set_date(c, p, 0, 2, 29);
		assert_string_equal(p->value, v ? "--0229" : "1604-02-29");
		assert_int_equal(vcard_date(p, &y, &m, &d), 0);
		assert_int_equal(y, 0);
		assert_int_equal(m, 2);
		assert_int_equal(d, 29);
		vcard_set_date(c, p, 2001, 1, 2);
		assert_null(vcard_param(p, "X-APPLE-OMIT-YEAR"));
		vcard_free(c);
	}
}

static void
test_set_photo(void **state)
{
	static const uint8_t png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 1, 2};
	static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0};

	(void)state;
	for (int v = 0; v < 2; v++) {
		struct vcard *c = vcard_new(v ? VCARD_V40 : VCARD_V30);
		struct vcard_prop *p = vcard_add(c, NULL, "PHOTO", "http://example.org/x.jpg");
		uint8_t *data;
		size_t len;
		char *mt;

		vcard_param_add(p, "VALUE", "uri");
		vcard_set_photo(c, p, png, sizeof(png));
		if (v)
			assert_string_equal(p->value, "data:image/png;base64,iVBORw0KGgoBAg==");
		else {
			assert_string_equal(p->value, "iVBORw0KGgoBAg==");
			assert_string_equal(vcard_param_value(p, "ENCODING"), "b");
			assert_string_equal(vcard_param_value(p, "TYPE"), "PNG");
		}
		assert_null(vcard_param(p, "VALUE"));
		assert_int_equal(vcard_photo(p, &data, &len, &mt), 0);
		assert_int_equal(len, sizeof(png));
		assert_memory_equal(data, png, len);
		assert_string_equal(mt, "image/png");
		free(data);
		free(mt);
		vcard_set_photo(c, p, gif, sizeof(gif));
		assert_int_equal(vcard_photo(p, &data, &len, &mt), 0);
		assert_string_equal(mt, "image/gif");
		free(data);
		free(mt);
		assert_round_trip(c);
		vcard_free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_apple),        cmocka_unit_test(test_google),
	    cmocka_unit_test(test_thunderbird),  cmocka_unit_test(test_outlook21),
	    cmocka_unit_test(test_android21),    cmocka_unit_test(test_sogo_nextcloud),
	    cmocka_unit_test(test_address_book), cmocka_unit_test(test_line_endings),
	    cmocka_unit_test(test_params),       cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_skipped_lines),
	    cmocka_unit_test(test_caps),         cmocka_unit_test(test_folding),
	    cmocka_unit_test(test_fold_exact),   cmocka_unit_test(test_model),
	    cmocka_unit_test(test_dates),        cmocka_unit_test(test_set_photo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
