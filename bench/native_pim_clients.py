#!/usr/bin/env python3
"""Data and phones for bench/native_pim.sh: alice's address book and calendar
put into SOGo by CardDAV/CalDAV, then the same phone requests to SOGo's
ActiveSync and to abqd in native mode (whose `caldav`/`carddav` is the same
SOGo).

    native_pim_clients.py populate --dav-port PORT [--contacts N] [--events N]
                          [--contacts-from 0] [--events-from 0] [--threads 4]
    native_pim_clients.py --port PORT --path PATH prep --class Contacts|Calendar
                          --prefix P [--start 0] --devices N [--timed 0] --bodies FILE
    native_pim_clients.py --port PORT --path PATH touch --bodies FILE
    native_pim_clients.py dump [--contacts N] [--events N] [...]   (the items, to stdout)

populate: PUTs generated items numbered from --contacts-from (--events-from)
up to N (exclusive) into /SOGo/dav/alice/Contacts/personal/ and
/SOGo/dav/alice/Calendar/personal/, --threads at a time (SOGo serves a
request per worker), each a new resource (201). The items are the same for
the same number on every run (a seed per item), and shaped as phones and
desktop clients write them:
  - cards: vCard 3.0 as iOS/macOS writes it (item groups, X-ABLabel, type
    parameters), vCard 3.0 as DAVx5 writes it on Android, and vCard 4.0 as
    Thunderbird writes it, in turn; a name (some with a middle name, a
    prefix), one to three e-mail addresses, one to four phones (cell, work,
    home, fax), a work and often a home address, a company with department
    and title, a birthday for a third, a note for a quarter (some on two
    lines), categories for a fifth, a web page for some, non-ASCII names
    (German, French, Spanish, Polish, Japanese) for a sixth;
  - events: each with its VTIMEZONE (Europe/Berlin, America/New_York,
    Asia/Tokyo, Australia/Sydney, Europe/London, or UTC), written as Apple
    Calendar, Thunderbird or Outlook write them; from 2025-01 to 2027-12:
    a one-off meeting for most (30-120 minutes, a location, a description
    for some), all-day events (one or several days, VALUE=DATE) for a
    tenth, recurring ones for about one in seven (weekly on one or two days,
    monthly by date or by weekday, yearly; by COUNT, UNTIL or endless; a
    third of them with EXDATEs, some with a moved occurrence as a
    RECURRENCE-ID in the same resource), attendees (2-6, with their
    PARTSTAT and ROLE, and an ORGANIZER) for a quarter, a VALARM (5 to 60
    minutes before) for half.
Prints "populate contacts=N events=M seconds=S failed=F" (a failed PUT is
retried 3 times, then counted; anything failed makes the exit status 1).

prep: each DeviceId (PREFIX<start> ..) does what a phone does for the
collection: FolderSync 0, Sync 0 of the default collection of its class
(FolderSync type 9 Contacts, 8 Calendar), then Sync GetChanges (WindowSize
100, as bench/native_clients.py for the Inbox) until no MoreAvailable, and
once more with the last key (the phone's confirmation: the no-change Sync),
which is sent twice more and its HTTP status and Sync Status counted. Writes
"DEVICEID HEXBODY COLLECTION SYNCKEY" lines (the no-change Sync) to --bodies
for bench/native_sync.lua, and prints
    initial DEVICEID seconds=S windows=W items=I
for each of the first --timed devices (from Sync 0 to the last window), and
    prep devices=N items=I repeat_statuses={...} seconds=S

touch: the first device of --bodies syncs once with its no-change body and
prints the answer's HTTP status, Sync Status and size (a sample for the log).

Python 3 standard library only; WBXML as bench/native_clients.py encodes and
decodes it (imported from there).
"""

import argparse
import base64
import collections
import http.client
import os
import random
import sys
import threading
import time
import unicodedata
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native_clients as nc  # noqa: E402  (Phone, parse, sync_body, FOLDERSYNC_0)

USER, PASSWORD = "alice", "secret"
BOOK = "/SOGo/dav/alice/Contacts/personal/"
CAL = "/SOGo/dav/alice/Calendar/personal/"
FOLDER_TYPE = {"Contacts": "9", "Calendar": "8"}

# ---- the generated data ----

FIRST = ["Anna", "Ben", "Carla", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
         "Katrin", "Lukas", "Maria", "Niklas", "Olivia", "Paul", "Rosa", "Simon", "Tanja", "Umar",
         "Vera", "William", "Xenia", "Yusuf", "Zoe", "Liam", "Emma", "Noah", "Mia", "Ethan"]
LAST = ["Schmidt", "Miller", "Garcia", "Nguyen", "Rossi", "Dubois", "Kowalski", "Tanaka",
        "Andersson", "O'Brien", "Fischer", "Johnson", "Martin", "Weber", "Silva", "Ivanova",
        "Brown", "Lopez", "Novak", "Jensen"]
INTL = [("Jürgen", "Müller"), ("Françoise", "Lefèvre"), ("José", "Peña"), ("Łukasz", "Wróbel"),
        ("Sören", "Größ"), ("Renée", "Château"), ("翔太", "佐藤"), ("Ægir", "Ørsted")]
COMPANIES = [("Example Corp", "Sales"), ("Acme GmbH", "Entwicklung"), ("Globex", "Finance"),
             ("Initech", "IT"), ("Umbrella SA", "Research"), ("Hooli", "Marketing"),
             ("Stark Industries", "Engineering"), ("Wayne Enterprises", "Legal")]
TITLES = ["Account Manager", "Engineer", "Director", "Consultant", "Designer", "Analyst",
          "Head of Operations", "Project Lead"]
CITIES = [("Berlin", "", "10117", "Germany", "+49 30"), ("Boston", "MA", "02110", "United States",
          "+1 617"), ("Lyon", "", "69002", "France", "+33 4"), ("Kraków", "", "31-001", "Poland",
          "+48 12"), ("Osaka", "", "530-0001", "Japan", "+81 6"), ("Sydney", "NSW", "2000",
          "Australia", "+61 2")]
STREETS = ["Hauptstraße", "Main Street", "Rue de la République", "Market Street", "Ulica Długa",
           "Park Avenue", "Friedrichstraße", "Harbour Road"]
NOTES = ["Met at the trade fair.", "Prefers phone calls.\\nAvailable mornings only.",
         "Former colleague\\, now at a partner.", "Call before visiting.",
         "Birthday card every year.", "Speaks German and French."]
CATS = ["Work", "Family", "VIP", "Friends", "Suppliers", "Customers"]


def ascii_name(name):
    """A name as it shows in an e-mail address: accents dropped, lower case."""
    plain = unicodedata.normalize("NFKD", name.replace("Ł", "L").replace("ł", "l")
                                  .replace("Æ", "Ae").replace("Ø", "O").replace("ß", "ss"))
    plain = "".join(c for c in plain if c.isascii() and c.isalnum()).lower()
    return plain or "contact"


def vcard(i):
    r = random.Random("card/%d" % i)
    if r.random() < 1 / 6:
        first, last = r.choice(INTL)
    else:
        first, last = r.choice(FIRST), r.choice(LAST)
    middle = r.choice(FIRST) if r.random() < 0.15 else ""
    prefix = r.choice(["Dr.", "Prof."]) if r.random() < 0.08 else ""
    comp, dept = r.choice(COMPANIES)
    title = r.choice(TITLES)
    city, state, zipc, country, cc = r.choice(CITIES)
    uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    dom = comp.split()[0].lower() + ".example"
    local = "%s.%s" % (ascii_name(first), ascii_name(last))
    mails = ["%s.%d@%s" % (local, i, dom)]
    if r.random() < 0.6:
        mails.append("%s%d@mail.example" % (ascii_name(first), i))
    if r.random() < 0.2:
        mails.append("%s.other%d@web.example" % (ascii_name(last), i))
    num = lambda: "%s %03d %04d" % (cc, r.randrange(1000), r.randrange(10000))  # noqa: E731
    phones = [("cell", num())]
    for kind in ("work", "home", "fax"):
        if r.random() < {"work": 0.7, "home": 0.4, "fax": 0.15}[kind]:
            phones.append((kind, num()))
    street = "%s %d" % (r.choice(STREETS), r.randrange(1, 200))
    home = ("%s %d" % (r.choice(STREETS), r.randrange(1, 200))) if r.random() < 0.5 else None
    bday = "%04d-%02d-%02d" % (r.randrange(1950, 2004), r.randrange(1, 13), r.randrange(1, 29)) \
        if r.random() < 1 / 3 else None
    note = r.choice(NOTES) if r.random() < 0.25 else None
    cats = r.sample(CATS, r.randrange(1, 3)) if r.random() < 0.2 else None
    url = "https://www.%s/" % dom if r.random() < 0.2 else None
    rev = "2026-%02d-%02dT%02d:%02d:00Z" % (r.randrange(1, 12), r.randrange(1, 29),
                                           r.randrange(24), r.randrange(60))
    fn = " ".join(x for x in (prefix, first, middle, last) if x)
    shape = i % 3
    L = ["BEGIN:VCARD"]
    if shape == 0:  # iOS / macOS Contacts
        L += ["VERSION:3.0", "PRODID:-//Apple Inc.//iPhone OS 17.4//EN",
              "N:%s;%s;%s;%s;" % (last, first, middle, prefix), "FN:" + fn,
              "ORG:%s;%s;" % (comp, dept), "TITLE:" + title]
        for k, m in enumerate(mails):
            L.append("EMAIL;type=INTERNET;type=%s%s:%s" % (("WORK", "HOME", "OTHER")[k],
                                                           ";type=pref" if k == 0 else "", m))
        for kind, n in phones:
            t = {"cell": "CELL;type=VOICE;type=pref", "work": "WORK;type=VOICE",
                 "home": "HOME;type=VOICE", "fax": "WORK;type=FAX"}[kind]
            L.append("TEL;type=%s:%s" % (t, n))
        L += ["item1.ADR;type=WORK;type=pref:;;%s;%s;%s;%s;%s" % (street, city, state, zipc, country),
              "item1.X-ABADR:" + country[:2].lower()]
        if home:
            L += ["item2.ADR;type=HOME:;;%s;%s;%s;%s;%s" % (home, city, state, zipc, country),
                  "item2.X-ABADR:" + country[:2].lower()]
        if url:
            L += ["item3.URL;type=pref:" + url, "item3.X-ABLabel:_$!<HomePage>!$_"]
        if bday:
            L.append("BDAY;VALUE=date:" + bday)
        if note:
            L.append("NOTE:" + note)
        if cats:
            L.append("CATEGORIES:" + ",".join(cats))
        L += ["UID:" + uid.upper(), "REV:" + rev]
    elif shape == 1:  # DAVx5 on Android
        L += ["VERSION:3.0", "PRODID:+//IDN bitfire.at//DAVx5/4.3.13-ose ez-vcard/0.11.3",
              "UID:" + uid, "FN:" + fn, "N:%s;%s;%s;%s;" % (last, first, middle, prefix),
              "ORG:%s;%s" % (comp, dept), "TITLE:" + title]
        for k, m in enumerate(mails):
            L.append("EMAIL;TYPE=%s:%s" % (("work", "home", "other")[k], m))
        for kind, n in phones:
            t = {"cell": "cell", "work": "work", "home": "home", "fax": "work,fax"}[kind]
            L.append("TEL;TYPE=%s:%s" % (t, n))
        L.append("ADR;TYPE=work:;;%s;%s;%s;%s;%s" % (street, city, state, zipc, country))
        if home:
            L.append("ADR;TYPE=home:;;%s;%s;%s;%s;%s" % (home, city, state, zipc, country))
        if url:
            L.append("URL:" + url)
        if bday:
            L.append("BDAY:" + bday.replace("-", ""))
        if note:
            L.append("NOTE:" + note)
        if cats:
            L.append("CATEGORIES:" + ",".join(cats))
        L.append("REV:" + rev.replace("-", "").replace(":", ""))
    else:  # Thunderbird 115, vCard 4.0
        L += ["VERSION:4.0", "PRODID:-//Thunderbird.net/NONSGML Thunderbird 115.7.0//EN",
              "N:%s;%s;%s;%s;" % (last, first, middle, prefix), "FN:" + fn]
        for k, m in enumerate(mails):
            L.append("EMAIL%s:%s" % ((";PREF=1", ";TYPE=home", ";TYPE=work")[k], m))
        for kind, n in phones:
            t = {"cell": "cell", "work": "work", "home": "home", "fax": "fax"}[kind]
            L.append("TEL;TYPE=%s;VALUE=TEXT:%s" % (t, n))
        L.append("ADR;TYPE=work:;;%s;%s;%s;%s;%s" % (street, city, state, zipc, country))
        if home:
            L.append("ADR;TYPE=home:;;%s;%s;%s;%s;%s" % (home, city, state, zipc, country))
        L += ["ORG:%s;%s" % (comp, dept), "TITLE:" + title]
        if url:
            L.append("URL;VALUE=URL:" + url)
        if bday:
            L.append("BDAY;VALUE=DATE:" + bday.replace("-", ""))
        if note:
            L.append("NOTE:" + note)
        if cats:
            L.append("CATEGORIES:" + ",".join(cats))
        L += ["UID:" + uid, "REV:" + rev.replace("-", "").replace(":", "")]
    L.append("END:VCARD")
    return uid, fold("\r\n".join(L) + "\r\n")


def fold(text):
    """Lines over 75 octets folded as RFC 5545 / RFC 6350 say (at a character's start)."""
    out = []
    for line in text.split("\r\n"):
        b = line.encode()
        while len(b) > 75:
            cut = 75
            while cut > 0 and (b[cut] & 0xC0) == 0x80:
                cut -= 1
            out.append(b[:cut].decode())
            b = b" " + b[cut:]
        out.append(b.decode())
    return "\r\n".join(out)


# VTIMEZONEs as the clients write them (rules from 1970 / 1601 on).
ZONES = {
    "Europe/Berlin": ("+0100", "+0200", "CET", "CEST", "-1SU", 3, "-1SU", 10, "020000", "030000"),
    "America/New_York": ("-0500", "-0400", "EST", "EDT", "2SU", 3, "1SU", 11, "020000", "020000"),
    "Europe/London": ("+0000", "+0100", "GMT", "BST", "-1SU", 3, "-1SU", 10, "010000", "020000"),
    "Australia/Sydney": ("+1000", "+1100", "AEST", "AEDT", "1SU", 10, "1SU", 4, "020000", "030000"),
    "Asia/Tokyo": ("+0900", None, "JST", None, None, None, None, None, None, None),
}
ZONE_WEIGHTS = [("Europe/Berlin", 45), ("America/New_York", 20), ("Europe/London", 10),
                ("Australia/Sydney", 5), ("Asia/Tokyo", 5), ("UTC", 15)]


def vtimezone(tzid):
    std, dst, sn, dn, dbyday, dmon, sbyday, smon, dtime, stime = ZONES[tzid]
    L = ["BEGIN:VTIMEZONE", "TZID:" + tzid]
    if dst is None:
        L += ["BEGIN:STANDARD", "TZOFFSETFROM:" + std, "TZOFFSETTO:" + std, "TZNAME:" + sn,
              "DTSTART:19700101T000000", "END:STANDARD"]
    else:
        L += ["BEGIN:DAYLIGHT", "TZOFFSETFROM:" + std, "TZOFFSETTO:" + dst, "TZNAME:" + dn,
              "DTSTART:1970%02d01T%s" % (dmon, dtime),
              "RRULE:FREQ=YEARLY;BYMONTH=%d;BYDAY=%s" % (dmon, dbyday), "END:DAYLIGHT",
              "BEGIN:STANDARD", "TZOFFSETFROM:" + dst, "TZOFFSETTO:" + std, "TZNAME:" + sn,
              "DTSTART:1970%02d01T%s" % (smon, stime),
              "RRULE:FREQ=YEARLY;BYMONTH=%d;BYDAY=%s" % (smon, sbyday), "END:STANDARD"]
    return L + ["END:VTIMEZONE"]


SUBJECTS = ["Team meeting", "Project review", "1:1", "Customer call", "Design workshop",
            "Lunch with a partner", "Budget planning", "Sprint retrospective", "Dentist",
            "Quarterly business review", "Interview", "Training", "Board meeting",
            "Release planning", "Café avec l'équipe", "Übergabe an den Betrieb"]
PLACES = ["Room 4.12", "Board room", "Zoom", "Café Central", "Building B, 2nd floor",
          "Konferenzraum Süd", "Teams", ""]
DAYS = ["MO", "TU", "WE", "TH", "FR"]


def ts(dt):
    return "%04d%02d%02dT%02d%02d00" % dt


def event(i):
    import datetime as D
    r = random.Random("event/%d" % i)
    uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    tzid = r.choices([z for z, _ in ZONE_WEIGHTS], [w for _, w in ZONE_WEIGHTS])[0]
    day = D.date(2025, 1, 1) + D.timedelta(days=r.randrange(3 * 365))
    start = D.datetime(day.year, day.month, day.day, r.randrange(7, 19), r.choice((0, 15, 30, 45)))
    end = start + D.timedelta(minutes=r.choice((30, 45, 60, 60, 90, 120)))
    kind = r.random()
    allday = kind < 0.10
    recurring = 0.10 <= kind < 0.25
    shape = i % 3  # Apple, Thunderbird, Outlook
    prodid = ("-//Apple Inc.//macOS 14.4//EN", "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
              "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")[shape]
    stamp = "20261%03dT%02d%02d00Z" % (r.randrange(101, 131), r.randrange(24), r.randrange(60))
    L = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:" + prodid, "CALSCALE:GREGORIAN"]
    if not allday and tzid != "UTC":
        L += vtimezone(tzid)

    def when(prop, dt):
        if tzid == "UTC":
            return "%s:%sZ" % (prop, ts((dt.year, dt.month, dt.day, dt.hour, dt.minute)))
        return "%s;TZID=%s:%s" % (prop, tzid, ts((dt.year, dt.month, dt.day, dt.hour, dt.minute)))

    def body(rid=None, rstart=None, rend=None):
        V = ["BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:" + stamp, "CREATED:" + stamp,
             "LAST-MODIFIED:" + stamp]
        subj = r.choice(SUBJECTS)
        if allday:
            d1 = day
            d2 = day + D.timedelta(days=r.choice((1, 1, 1, 2, 3, 5)))
            V += ["DTSTART;VALUE=DATE:" + d1.strftime("%Y%m%d"),
                  "DTEND;VALUE=DATE:" + d2.strftime("%Y%m%d"),
                  "SUMMARY:" + r.choice(("Vacation", "Conference", "Public holiday",
                                         "Offsite", "Trade fair")),
                  "TRANSP:TRANSPARENT"]
        else:
            if rid is not None:
                V.append(when("RECURRENCE-ID", rid))
            V += [when("DTSTART", rstart or start), when("DTEND", rend or end),
                  "SUMMARY:" + subj + (" (moved)" if rid is not None else "")]
            place = r.choice(PLACES)
            if place:
                V.append("LOCATION:" + place)
            V.append("TRANSP:OPAQUE")
        if r.random() < 0.3:
            V.append("DESCRIPTION:Agenda:\\n1. Status\\n2. Next steps\\, owners\\n")
        if r.random() < 0.25 and not allday:
            V.append("ORGANIZER;CN=Alice Example:mailto:alice@example.test")
            for k in range(r.randrange(2, 7)):
                f, l = r.choice(FIRST), r.choice(LAST)
                ps = r.choice(("ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION"))
                role = "OPT-PARTICIPANT" if k == 3 else "REQ-PARTICIPANT"
                V.append("ATTENDEE;CN=%s %s;PARTSTAT=%s;ROLE=%s;RSVP=TRUE:mailto:%s.%s@example.com"
                         % (f, l, ps, role, f.lower(), l.lower().replace("'", "")))
        if r.random() < 0.5:
            V += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder",
                  "TRIGGER:-PT%dM" % r.choice((5, 10, 15, 30, 60)), "END:VALARM"]
        return V

    V = body()
    exceptions = []
    if recurring:
        pat = r.random()
        if pat < 0.45:
            days = sorted(set([DAYS[start.weekday()] if start.weekday() < 5 else "MO",
                               r.choice(DAYS)]), key=DAYS.index)
            rule = "FREQ=WEEKLY;BYDAY=" + ",".join(days)
            if r.random() < 0.3:
                rule += ";INTERVAL=2"
            step = D.timedelta(days=7)
        elif pat < 0.7:
            rule = "FREQ=MONTHLY;BYMONTHDAY=%d" % start.day
            step = None
        elif pat < 0.85:
            rule = "FREQ=MONTHLY;BYDAY=%d%s" % ((start.day - 1) // 7 + 1,
                                                ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()])
            step = None
        else:
            rule = "FREQ=YEARLY"
            step = None
        e = r.random()
        if e < 0.4:
            rule += ";COUNT=%d" % r.randrange(5, 40)
        elif e < 0.7:
            u = start + D.timedelta(days=r.randrange(60, 500))
            rule += ";UNTIL=%04d%02d%02dT235959Z" % (u.year, u.month, u.day)
        if "BYDAY" in rule and "WEEKLY" in rule:
            # DTSTART on one of the rule's days (clients write it so)
            while ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()] not in rule:
                start += D.timedelta(days=1)
                end += D.timedelta(days=1)
            V = [x for x in V if not x.startswith(("DTSTART", "DTEND"))]
            V.insert(5, when("DTSTART", start))
            V.insert(6, when("DTEND", end))
        V.insert(5, "RRULE:" + rule)
        if "BYMONTHDAY" in rule and start.day <= 28:
            step = "month"
        if step is not None and r.random() < 0.35:
            # an occurrence deleted, and sometimes one moved by an hour
            wk = r.randrange(1, 4)
            mult = 2 if "INTERVAL=2" in rule else 1

            def nth(k):
                if step == "month":
                    m = start.month - 1 + k
                    return start.replace(year=start.year + m // 12, month=m % 12 + 1)
                return start + k * mult * step
            x = nth(wk)
            V.insert(6, when("EXDATE", x))
            if r.random() < 0.5:
                y = nth(wk + 1)
                exceptions.append(body(y, y + D.timedelta(hours=1), y + (end - start) +
                                       D.timedelta(hours=1)))
    L += V + ["END:VEVENT"]
    for x in exceptions:
        L += x + ["END:VEVENT"]
    L.append("END:VCALENDAR")
    return uid, fold("\r\n".join(L) + "\r\n")


# ---- DAV ----

def dav_put(port, path, data, ctype):
    auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    for attempt in range(4):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            c.request("PUT", path, body=data.encode(),
                      headers={"Authorization": "Basic " + auth, "Content-Type": ctype,
                               "If-None-Match": "*"})
            r = c.getresponse()
            body = r.read()
            if r.status in (201, 204):
                return None
            err = "HTTP %d %r" % (r.status, body[:200])
        except OSError as e:
            err = repr(e)
        finally:
            c.close()
        time.sleep(0.5 * (attempt + 1))
    return err


def populate(a):
    jobs = []
    for i in range(a.contacts_from, a.contacts):
        jobs.append(("card", i))
    for i in range(a.events_from, a.events):
        jobs.append(("event", i))
    lock = threading.Lock()
    failed = []

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                kind, i = jobs.pop()
            if kind == "card":
                uid, text = vcard(i)
                err = dav_put(a.dav_port, BOOK + uid + ".vcf", text, "text/vcard; charset=utf-8")
            else:
                uid, text = event(i)
                err = dav_put(a.dav_port, CAL + uid + ".ics", text, "text/calendar; charset=utf-8")
            if err:
                with lock:
                    failed.append("%s %d: %s" % (kind, i, err))
    t0 = time.monotonic()
    th = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for f in failed[:5]:
        print("failed " + f, flush=True)
    print("populate contacts=%d events=%d seconds=%.1f failed=%d" % (
        a.contacts - a.contacts_from, a.events - a.events_from, time.monotonic() - t0,
        len(failed)), flush=True)
    return 1 if failed else 0


def dump(a):
    for i in range(a.contacts_from, a.contacts):
        sys.stdout.write(vcard(i)[1])
    for i in range(a.events_from, a.events):
        sys.stdout.write(event(i)[1])
    return 0


# ---- phones ----

def collection(ph, cls):
    st, body = ph.post("FolderSync", nc.FOLDERSYNC_0)
    if st != 200:
        sys.exit("%s FolderSync: HTTP %d" % (ph.device, st))
    sid = None
    for p, t, text in nc.parse(body):
        if p == 7 and t == 0x08:  # ServerId
            sid = text
        elif p == 7 and t == 0x0A and text == FOLDER_TYPE[cls]:
            return sid
    sys.exit("%s FolderSync: no %s folder (%d bytes)" % (ph.device, cls, len(body)))


def prep(a):
    t00 = time.monotonic()
    statuses = collections.Counter()
    total = 0
    with open(a.bodies, "w") as f:
        for i in range(a.start, a.start + a.devices):
            ph = nc.Phone(a.port, a.path, "%s%02d" % (a.prefix, i))
            coll = collection(ph, a.cls)
            t0 = time.monotonic()
            st, status, key, _, _ = ph.sync(coll, "0", False)
            if st != 200 or status != "1":
                sys.exit("%s Sync 0: HTTP %d Status %s" % (ph.device, st, status))
            key, windows, items = ph.to_end(coll, key)
            dt = time.monotonic() - t0
            total += items
            if i < a.start + a.timed:
                print("initial %s seconds=%.2f windows=%d items=%d" % (ph.device, dt, windows, items),
                      flush=True)
            for _ in range(2):  # the no-change Sync, repeated as wrk will
                st, status, _, adds, _ = ph.sync(coll, key, True)
                statuses["%d/%s/%d" % (st, status or "empty", adds)] += 1
            f.write("%s %s %s %s\n" % (ph.device, nc.sync_body(key, coll, True).hex(), coll, key))
    print("prep devices=%d items=%d repeat_statuses(http/status/adds)=%s seconds=%.1f" %
          (a.devices, total, dict(statuses), time.monotonic() - t00), flush=True)
    return 0


def touch(a):
    with open(a.bodies) as f:
        dev, hexbody, _, _ = f.readline().split()
    ph = nc.Phone(a.port, a.path, dev)
    st, body = ph.post("Sync", bytes.fromhex(hexbody))
    ev = nc.parse(body) if body else []
    print("sample no-change Sync %s: HTTP %d, Sync Status %s, %d bytes, %d Adds" % (
        dev, st, nc.first(ev, 0, 0x0E) or "none", len(body),
        sum(1 for p, t, _ in ev if p == 0 and t == 0x07)), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/Microsoft-Server-ActiveSync")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("populate", "dump"):
        q = sub.add_parser(name)
        q.add_argument("--dav-port", type=int, default=0)
        q.add_argument("--contacts", type=int, default=0)
        q.add_argument("--events", type=int, default=0)
        q.add_argument("--contacts-from", type=int, default=0)
        q.add_argument("--events-from", type=int, default=0)
        q.add_argument("--threads", type=int, default=4)
    q = sub.add_parser("prep")
    q.add_argument("--class", dest="cls", choices=sorted(FOLDER_TYPE), required=True)
    q.add_argument("--prefix", required=True)
    q.add_argument("--start", type=int, default=0)
    q.add_argument("--devices", type=int, default=3)
    q.add_argument("--timed", type=int, default=0)
    q.add_argument("--bodies", required=True)
    q = sub.add_parser("touch")
    q.add_argument("--bodies", required=True)
    a = p.parse_args()
    return {"populate": populate, "dump": dump, "prep": prep, "touch": touch}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
