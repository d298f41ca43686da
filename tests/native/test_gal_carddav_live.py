#!/usr/bin/env python3
"""The global address list from a real CardDAV address book (src/native/gal_carddav.c).

A private Radicale (Debian's) on a free loopback port, every authenticated
user allowed to read every collection (a shared company address book): the
user "directory" makes /directory/company/ and PUTs 34 vCards into it over
HTTP, shaped as iOS (3.0, item groups, X-ABLabel, TYPE=pref), Android's
DAVx5 (3.0, ez-vcard), Thunderbird (4.0, PREF=, VALUE=uri tel:) and abqd
itself write them, with names in several scripts ("Zoë Çelik", "Søren
Åberg", "Ἀλέξανδρος Παππάς"). Through gal-driver, as the command layer
makes its lookups, with the phone user's (alice's) credentials: names,
nicknames and addresses beginning with the query, without regard to case,
non-ASCII too, sorted by display name (the expected lists computed from the
cards by an oracle: FN, N's given and family names, an EMAIL or a NICKNAME
beginning with the query, Python's casefold() on both sides; the server is
asked for what contains it); every field abqd reads, from a 3.0 and a 4.0 card;
an exact address (mixed case) and that an address is matched whole; the
photo within the size asked, flagged over it; fewer asked than match
(given the first by name, all counted); no match; XML's special characters
(' < & ") in a query reach the server as text; gal_bind_* used instead of
the phone's credentials; the phone's password refused, a collection that is
not there, the server stopped: failures with their reason, counted; the
configuration's refusals (--check). With ABQ_GAL_WRAP (valgrind) the driver
runs under it.
"""
import argparse
import base64
import http.client
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Failure, expect  # noqa: E402

PHONE_PW = "alice-pw"
DIR_PW = "directory-pw"
BOOK = "/directory/company/"
JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + b"\x00\x10JFIF\x00" + os.urandom(1500) + b"\xff\xd9"

# given, family, e-mail, nickname or None
PEOPLE = [
    ("Ann", "Archer", "ann.archer@example.com", None),
    ("Anna", "Bell", "anna.bell@example.com", "Annie"),
    ("Andy", "Cole", "andy@example.org", None),
    ("Joanne", "Park", "j.park@example.com", None),
    ("Bob", "Dunn", "bob.dunn@example.com", "Bobby"),
    ("Zoë", "Çelik", "zoe.celik@example.com", None),
    ("Søren", "Åberg", "soren@example.dk", None),
    ("José", "Núñez", "jose.nunez@example.es", "Pepe"),
    ("Łukasz", "Żółkiewski", "lukasz@example.pl", None),
    ("Ἀλέξανδρος", "Παππάς", "alex.pappas@example.gr", None),
    ("Siobhán", "O'Neil", "siobhan.oneil@example.ie", None),
    ("Marie", "Curie", "marie@example.fr", None),
    ("Mark", "Twain", "mark.twain@example.com", None),
    ("Omar", "Haddad", "omar@example.com", None),
    ("Maria", "Rossi", "maria.rossi@example.it", None),
    ("Tomás", "Marín", "tomas.marin@example.es", None),
    ("Yuki", "Tanaka", "yuki.tanaka@example.jp", None),
    ("Priya", "Raman", "priya@example.in", None),
    ("Chen", "Wei", "chen.wei@example.cn", None),
    ("Olga", "Ivanova", "olga@example.ru", None),
    ("Lars", "Nilsson", "lars@example.se", None),
    ("Fatima", "Zahra", "fatima@example.ma", None),
    ("Kwame", "Mensah", "kwame@example.gh", None),
    ("Hana", "Novák", "hana.novak@example.cz", None),
    ("Pierre", "Dubois", "pierre@example.fr", None),
    ("Ingrid", "Berg", "ingrid@example.no", None),
    ("Diego", "Santos", "diego@example.br", None),
    ("Aiko", "Sato", "aiko@example.jp", None),
    ("Emeka", "Obi", "emeka@example.ng", None),
    ("Nora", "Kelly", "nora.kelly@example.ie", None),
    ("Sven", "Larsen", "sven@example.dk", None),
    ("Mei", "Lin", "mei.lin@example.com", None),
]


def ios_card(i, given, family, email, nick):
    """iOS Contacts (3.0): PRODID, item groups with X-ABLabel, TYPE=pref."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", "PRODID:-//Apple Inc.//iPhone OS 17.4//EN",
             "N:%s;%s;;;" % (family.replace(",", "\\,"), given), "FN:%s %s" % (given, family)]
    if nick:
        lines.append("NICKNAME:%s" % nick)
    lines += ["item1.EMAIL;type=INTERNET;type=pref:%s" % email,
              "item1.X-ABLabel:_$!<Other>!$_",
              "TEL;type=CELL;type=VOICE;type=pref:+1 (555) 01%02d" % i,
              "UID:%08X-1C2D-4E5F-9A0B-ABCDEF%06d" % (0x1000 + i, i),
              "REV:2026-11-30T10:%02d:00Z" % (i % 60), "END:VCARD"]
    return lines


def android_card(i, given, family, email, nick):
    """DAVx5 on Android (3.0, ez-vcard)."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", "PRODID:+//IDN bitfire.at//DAVx5/4.3.13-ose ez-vcard/0.11.3",
             "UID:%08x-7c1e-4b52-9d1e-%012x" % (0xa0000 + i, i), "FN:%s %s" % (given, family),
             "N:%s;%s;;;" % (family, given)]
    if nick:
        lines.append("NICKNAME:%s" % nick)
    lines += ["EMAIL;TYPE=work:%s" % email, "TEL;TYPE=home:+44 20 7946 %04d" % i,
              "REV:20261130T100000Z", "END:VCARD"]
    return lines


def thunderbird_card(i, given, family, email, nick):
    """Thunderbird 115 (4.0): PREF=, tel: URIs."""
    lines = ["BEGIN:VCARD", "VERSION:4.0", "PRODID:-//Thunderbird//115.5.0//EN",
             "FN:%s %s" % (given, family), "N:%s;%s;;;" % (family, given)]
    if nick:
        lines.append("NICKNAME:%s" % nick)
    lines += ["EMAIL;PREF=1:%s" % email, "TEL;VALUE=TEXT;TYPE=work:+49 30 9001%04d" % i,
              "UID:%08x-2b3c-4d5e-8f90-%012x" % (0xb0000 + i, i), "END:VCARD"]
    return lines


STYLES = [ios_card, android_card, thunderbird_card]

# Cards with every field abqd reads, and odd shapes.
EXTRA = {
    # iOS, everything: company, title, numbers of each kind, a photo
    "full-ios": "\r\n".join([
        "BEGIN:VCARD", "VERSION:3.0", "PRODID:-//Apple Inc.//iPhone OS 17.4//EN",
        "N:Quint;Quentin;;;", "FN:Quentin Quint", "NICKNAME:QQ", "ORG:Example Corp;Finance;",
        "TITLE:CFO", "item1.EMAIL;type=INTERNET:quentin.private@example.net",
        "item2.EMAIL;type=INTERNET;type=pref:quentin@example.com",
        "TEL;type=CELL;type=VOICE:+1 555 0199", "TEL;type=HOME;type=VOICE:+1 555 0198",
        "TEL;type=WORK;type=VOICE;type=pref:+1 555 0197", "TEL;type=WORK;type=FAX:+1 555 0196",
        "X-EAS-OFFICELOCATION:B2 4.17",
        "PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(JPEG).decode(),
        "UID:5E1F0C2A-0000-4000-8000-00000000Q001", "END:VCARD", ""]),
    # Thunderbird 4.0: tel: URIs, two addresses, the PREF=1 one not first
    "full-tb": "\r\n".join([
        "BEGIN:VCARD", "VERSION:4.0", "PRODID:-//Thunderbird//115.5.0//EN",
        "FN:Valérie Vautrin", "N:Vautrin;Valérie;;;", "ORG:Société Générale d'Exemple",
        "TITLE:Directrice", "EMAIL;TYPE=home:valerie@example.net",
        "EMAIL;PREF=1;TYPE=work:v.vautrin@example.fr",
        "TEL;VALUE=uri;TYPE=cell:tel:+33-6-12-34-56-78",
        "TEL;VALUE=uri;TYPE=\"work,voice\":tel:+33-1-23-45-67-89",
        "UID:urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301", "END:VCARD", ""]),
    # A card without FN's usual shape: FN of a company, no N
    "company": "\r\n".join([
        "BEGIN:VCARD", "VERSION:3.0", "FN:Acme Helpdesk", "ORG:Acme", "N:;;;;",
        "EMAIL;TYPE=INTERNET:helpdesk@acme.example", "TEL;TYPE=WORK:+1 555 0111",
        "UID:acme-helpdesk", "END:VCARD", ""]),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Radicale:
    def __init__(self, root):
        self.dir = root
        self.port = free_port()
        os.makedirs(os.path.join(root, "collections"), exist_ok=True)
        with open(os.path.join(root, "users"), "w") as f:
            f.write("alice:%s\ndirectory:%s\n" % (PHONE_PW, DIR_PW))
        with open(os.path.join(root, "config"), "w") as f:
            f.write("[server]\nhosts = 127.0.0.1:%d\n"
                    "[auth]\ntype = htpasswd\nhtpasswd_filename = %s/users\n"
                    "htpasswd_encryption = plain\n"
                    "[storage]\nfilesystem_folder = %s/collections\n"
                    "[rights]\ntype = authenticated\n[web]\ntype = none\n"
                    "[logging]\nlevel = warning\n" % (self.port, root, root))
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.dir, "radicale.log"), "a")
        self.proc = subprocess.Popen(["radicale", "--config", os.path.join(self.dir, "config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise Failure("radicale exited: see %s" % self.log.name)
                if time.monotonic() > deadline:
                    raise Failure("radicale did not listen in 20 s")
                time.sleep(0.1)

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log.close()

    def req(self, method, path, body=None, headers=None, user="directory", pw=DIR_PW):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data


def fill(rad):
    body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
            "<D:mkcol xmlns:D=\"DAV:\" xmlns:CR=\"urn:ietf:params:xml:ns:carddav\"><D:set>"
            "<D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"
            "<D:displayname>Company</D:displayname></D:prop></D:set></D:mkcol>")
    st, data = rad.req("MKCOL", BOOK, body.encode(), {"Content-Type": "application/xml"})
    expect(st == 201, "MKCOL %s: %d %r" % (BOOK, st, data))
    cards = {}
    for i, (given, family, email, nick) in enumerate(PEOPLE):
        lines = STYLES[i % 3](i, given, family, email, nick)
        cards["p%02d" % i] = "\r\n".join(lines) + "\r\n"
    cards.update(EXTRA)
    for name, text in cards.items():
        st, data = rad.req("PUT", BOOK + name + ".vcf", text.encode(),
                           {"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"})
        expect(st in (200, 201, 204), "PUT %s.vcf: %d %r" % (name, st, data))
    return cards


def oracle_entries(cards):
    """(display name, the texts a query may begin: FN, N's given and family
    names, e-mail addresses, nicknames) of each card, read naively."""
    out = []
    for text in cards.values():
        fn, starts = None, []
        for ln in text.split("\r\n"):
            name, _, value = ln.partition(":")
            base = name.split(";")[0].split(".")[-1].upper()
            if base == "FN":
                fn = value
                starts.append(value)
            elif base == "N":
                starts += value.split(";")[:2]
            elif base == "EMAIL":
                starts.append(value)
            elif base == "NICKNAME":
                starts += value.split(",")
        out.append((fn, [x for x in starts if x]))
    return out


def expected(cards, q):
    """The display names of the cards where FN, a given or family name, an
    e-mail address or a nickname begins with q (Python's casefold() on both
    sides), as abqd sorts them (strcasecmp: ASCII letters folded, bytes
    compared)."""
    q = q.casefold()
    hits = [fn for fn, starts in oracle_entries(cards)
            if any(x.casefold().startswith(q) for x in starts)]
    return sorted(hits, key=lambda s: s.encode().lower())


def run(driver, url, queries, *opts, user="alice", pw=PHONE_PW):
    wrap = shlex.split(os.environ.get("ABQ_GAL_WRAP", ""))
    cmd = wrap + [driver]
    if user is not None:
        cmd += ["--user", user, "--user-password", pw]
    cmd += list(opts) + [url] + list(queries)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise Failure("gal-driver exited %d: %s" % (p.returncode, p.stderr))
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    return lines[:-1], lines[-1]


def names(r):
    return [e["display_name"] for e in r["entries"]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    a = ap.parse_args()
    if shutil.which("radicale") is None:
        raise Failure("radicale is not installed (Debian package radicale)")
    root = tempfile.mkdtemp(prefix="abq-galdav-")
    rad = Radicale(root)
    try:
        rad.start()
        cards = fill(rad)
        expect(len(cards) >= 30, "%d cards in the address book" % len(cards))
        url = "http://127.0.0.1:%d%s" % (rad.port, BOOK)

        queries = ["ann", "ANN", "mar", "çelik", "ZOË", "åberg", "παππ", "żółk", "example.org",
                   "@Zoe.Celik@EXAMPLE.com", "@zoe.celik", "pepe", "o'neil", "<&\"", "qqqxyz"]
        res, tail = run(a.driver, url, queries)
        by = dict(zip(queries, res))
        for q in queries:
            if q.startswith("@"):
                continue
            expect(by[q]["rv"] == 1 and names(by[q]) == expected(cards, q)
                   and by[q]["total"] == len(expected(cards, q)),
                   "%r: %s (total %d)" % (q, names(by[q]), by[q]["total"]))
        expect(names(by["ann"]) == ["Ann Archer", "Anna Bell"],
               "'ann' begins names (Ann, Anna), not found inside them (Joanne), by name")
        expect(names(by["ANN"]) == names(by["ann"]), "without regard to case")
        expect("Omar Haddad" not in names(by["mar"]) and "Tomás Marín" in names(by["mar"])
               and "Marie Curie" in names(by["mar"]),
               "'mar': a first name (Marie), a last name (Marín), not inside one (Omar)")
        expect(names(by["çelik"]) == ["Zoë Çelik"] and names(by["ZOË"]) == ["Zoë Çelik"],
               "non-ASCII names, any case")
        expect(names(by["παππ"]) == ["Ἀλέξανδρος Παππάς"], "Greek")
        expect(names(by["example.org"]) == [] and names(by["pepe"]) == ["José Núñez"],
               "an address's domain is not its beginning; a nickname is")
        z = by["@Zoe.Celik@EXAMPLE.com"]
        expect(names(z) == ["Zoë Çelik"] and z["entries"][0]["email"] == "zoe.celik@example.com",
               "an exact address, any case")
        expect(by["@zoe.celik"]["rv"] == 1 and by["@zoe.celik"]["entries"] == [],
               "an address is matched whole, not by a part")
        expect(names(by["pepe"]) == ["José Núñez"] and by["pepe"]["entries"][0]["alias"] == "Pepe",
               "a nickname, read as the alias")
        expect(names(by["o'neil"]) == ["Siobhán O'Neil"], "an apostrophe in a query")
        expect(by["<&\""]["rv"] == 1 and by["<&\""]["entries"] == [],
               "< & \" in a query are text: no match, no error")
        expect(by["qqqxyz"]["rv"] == 1 and by["qqqxyz"]["entries"] == []
               and by["qqqxyz"]["total"] == 0, "no match: none, total 0")
        expect(tail["lookups"] == len(queries) and tail["failures"] == 0 and tail["runs"] == 2,
               "one request, its lookups answered on its second run: %s" % tail)
        bound = 2000 if os.environ.get("ABQ_GAL_WRAP") else 100
        expect(tail["stall_ms"] < bound, "the loop kept free (longest gap %.1f ms)" %
               tail["stall_ms"])

        # Every field, from iOS's 3.0 and Thunderbird's 4.0.
        res, _ = run(a.driver, url, ["quentin", "vautrin", "helpdesk", "Bob Dunn",
                                      "ann.archer", "anna.bell", "andy@"])
        q = res[0]["entries"][0]
        expect(q == {"display_name": "Quentin Quint", "email": "quentin@example.com",
                     "first_name": "Quentin", "last_name": "Quint", "alias": "QQ",
                     "company": "Example Corp", "title": "CFO", "office": "B2 4.17",
                     "phone": "+1 555 0197", "home_phone": "+1 555 0198",
                     "mobile_phone": "+1 555 0199", "picture": 0, "too_large": False},
               "iOS 3.0: every field (the preferred address, no fax): %s" % q)
        v = res[1]["entries"][0]
        expect(v["display_name"] == "Valérie Vautrin" and v["email"] == "v.vautrin@example.fr"
               and v["first_name"] == "Valérie" and v["last_name"] == "Vautrin"
               and v["company"] == "Société Générale d'Exemple" and v["title"] == "Directrice"
               and v["mobile_phone"] == "+33-6-12-34-56-78" and v["phone"] == "+33-1-23-45-67-89",
               "Thunderbird 4.0: PREF=1 address, tel: URIs: %s" % v)
        h = res[2]["entries"][0]
        expect(h["display_name"] == "Acme Helpdesk" and h["first_name"] is None
               and h["last_name"] is None and h["company"] == "Acme"
               and h["phone"] == "+1 555 0111", "a company's card: %s" % h)
        b = res[3]["entries"][0]
        expect(b["email"] == "bob.dunn@example.com" and b["alias"] == "Bobby", "Android: %s" % b)
        e = res[4]["entries"][0]
        expect(e["mobile_phone"] == "+1 (555) 0100" and e["phone"] is None
               and e["first_name"] == "Ann" and e["last_name"] == "Archer", "iOS: %s" % e)
        e = res[5]["entries"][0]
        expect(e["home_phone"] == "+44 20 7946 0001" and e["mobile_phone"] is None,
               "Android: a home number: %s" % e)
        e = res[6]["entries"][0]
        expect(e["phone"] == "+49 30 90010002" and e["email"] == "andy@example.org",
               "Thunderbird: a work number: %s" % e)

        res, _ = run(a.driver, url, ["quentin"], "--picture", "4096")
        expect(res[0]["entries"][0]["picture"] == len(JPEG), "the photo within the size asked")
        res, _ = run(a.driver, url, ["quentin"], "--picture", "100")
        e = res[0]["entries"][0]
        expect(e["picture"] == 0 and e["too_large"], "a photo over the size: flagged")

        # The Range: fewer asked than match.
        every = expected(cards, "a")
        res, _ = run(a.driver, url, ["a"], "--max", "5")
        expect(names(res[0]) == every[:5] and res[0]["total"] == len(every) and len(every) > 5,
               "5 asked of %d: the first 5 by name, all counted (%d)" %
               (len(every), res[0]["total"]))

        # Credentials.
        res, tail = run(a.driver, url, ["ann"], pw="wrong")
        expect(res[0]["rv"] == -1 and "auth refused" in res[0]["error"]
               and "wrong" not in res[0]["error"] and tail["failures"] == 1,
               "the phone's password refused: a failure saying so (%s)" % res[0]["error"])
        res, _ = run(a.driver, url, ["ann"], "--bind", "directory", "--password", DIR_PW,
                     pw="wrong")
        expect(res[0]["rv"] == 1 and len(res[0]["entries"]) == 2,
               "gal_bind_* are the DAV credentials, not the phone's")
        res, _ = run(a.driver, url, ["ann"], user=None)
        expect(res[0]["rv"] == -1, "no credentials at all: a failure (%s)" % res[0]["error"])
        res, _ = run(a.driver, url.replace("company", "nosuch"), ["ann"])
        expect(res[0]["rv"] == -1 and "HTTP 404" in res[0]["error"],
               "a collection that is not there: a failure (%s)" % res[0]["error"])

        rad.stop()
        res, tail = run(a.driver, url, ["ann"])
        expect(res[0]["rv"] == -1 and "network" in res[0]["error"] and tail["failures"] == 1,
               "the server down: a failure (%s)" % res[0]["error"])
        rad.start()
        res, _ = run(a.driver, url, ["ann"])
        expect(res[0]["rv"] == 1 and len(res[0]["entries"]) == 2, "back up: found again")

        for bad, why in [("https://dav.example.com:99999/x/", "not a URL"),
                         ("http://dav.example.com/x/", "in clear"),
                         ("http://127.0.0.1.example.com/x/", "in clear"),
                         ("https://u:p@dav.example.com/x/", "credentials")]:
            p = subprocess.run([a.driver, "--check", bad], capture_output=True, text=True)
            expect(why in p.stdout, "%s refused: %s" % (bad, p.stdout.strip()))
        p = subprocess.run([a.driver, "--check", url], capture_output=True, text=True)
        expect(p.stdout.strip() == "ok", "the fixture's URL accepted")
        p = subprocess.run([a.driver, "--bind", "directory", "--check", url],
                           capture_output=True, text=True)
        expect("go together" in p.stdout, "gal_bind_dn without its password: %s" % p.stdout)
    finally:
        rad.stop()
        shutil.rmtree(root, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
