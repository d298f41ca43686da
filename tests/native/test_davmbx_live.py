#!/usr/bin/env python3
"""Native mode's DAV backend (src/native/mailbox_dav.c) against a real Radicale.

davmbx-driver runs one request of the backend on a libevent loop, over a SQLite
store (the account's map), as the command layer does: folders (the calendar,
task list and address book, each the default of its kind: EAS types 8, 7, 9;
the same ids the next time); changes of the address book from nothing (the card
put with plain HTTP, its object fetched in the same request), then nothing more;
a card added and one changed on the server: an Add and a Change; the device's
add (on the server, not reported back to it), change (on the server with
If-Match) and remove (gone from the server); a change from a cursor older than
the server's change: MBX_CONFLICT, the server's copy untouched; a backend
destroyed with a request in flight (nothing called back); a calendar's events
under a two-weeks floor (FilterType 4): the map learns each one's span from the
objects a Sync fetches (an event in the window, one before it, a weekly series
that began a year ago and goes on, one that ended before the window, Thunderbird's
standup series), and the next Sync from nothing under the floor does not fetch
ahead those that end before it; Radicale stopped: the
folders from the store, a Sync's changes a failure. With ABQ_DAVMBX_WRAP
(valgrind) the driver runs under it.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "dav"))
from checks import Failure, expect  # noqa: E402
import test_dav_live as davfix  # noqa: E402

MBX_CONFLICT = -20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="abq-davmbx-")
    rad = None
    try:
        rad = davfix.Radicale(work)
        h = davfix.Http(rad.port, "alice", davfix.PASSWORD)
        davfix.mkcalendar(h, "/alice/calendar/", "Calendar", "VEVENT")
        davfix.mkcalendar(h, "/alice/tasks/", "Tasks", "VTODO")
        davfix.mkaddressbook(h, "/alice/contacts/", "Contacts")
        davfix.put_file(h, "/alice/contacts/dave.vcf", "dave_example.vcf")
        davfix.put_file(h, "/alice/calendar/standup.ics", "weekly_standup.ics")
        store = "sqlite:" + os.path.join(work, "abqd.db")
        url = rad.url
        wrap = shlex.split(os.environ.get("ABQ_DAVMBX_WRAP", ""))

        def drv(*args, max_age=0):
            cmd = wrap + [a.driver, store, url, url, "alice", davfix.PASSWORD] + \
                [str(x) for x in args]
            env = dict(os.environ, ABQ_DAVMBX_MAX_AGE=str(max_age))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            if p.returncode != 0:
                raise Failure("davmbx-driver %s exited %d: %s" % (args, p.returncode, p.stderr))
            expect(davfix.PASSWORD not in p.stdout + p.stderr, "no password in its output")
            lines = p.stdout.splitlines()
            r = json.loads(lines[0])
            r.update(json.loads(lines[1]) if len(lines) > 1 else {})  # {"runs": N}
            return r

        def card(path, text):
            f = os.path.join(work, os.path.basename(path))
            with open(f, "w") as o:
                o.write(text)
            return f

        r = drv("folders")
        types = {f["name"]: (f["id"], f["type"]) for f in r["folders"]}
        expect(types.get("Calendar", (0, 0))[1] == 8 and types.get("Tasks", (0, 0))[1] == 7
               and types.get("Contacts", (0, 0))[1] == 9, "the collections as folders: %s" % types)
        book = types["Contacts"][0]
        expect({f["id"] for f in drv("folders")["folders"]} ==
               {v[0] for v in types.values()}, "the same ids the next time")

        r = drv("changes", book, "-", 100)
        expect(r["rv"] == 1 and len(r["adds"]) == 1 and "Dave" in r["objects"][r["adds"][0]],
               "the card as an Add, its object fetched with it: %s" % r)
        dave, c1 = r["adds"][0], r["cursor"]
        r = drv("changes", book, c1, 100)
        expect(r["rv"] == 1 and r["adds"] == [] and r["changed"] == [], "then nothing")

        davfix.put_file(h, "/alice/contacts/zoe.vcf", "zoe_mueller.vcf")
        with open(os.path.join(davfix.LIVE, "dave_example.vcf")) as f:
            text = f.read()
        st, _, _ = h.req("PUT", "/alice/contacts/dave.vcf",
                         text.replace("+1 555 0100", "+1 555 0111").encode(),
                         {"Content-Type": "text/vcard"})
        expect(st in (201, 204), "the server's change")
        # [upstream] dav_max_age: the map refreshed a moment ago serves; 0 asks
        r = drv("changes", book, c1, 100, max_age=600)
        expect(r["rv"] == 1 and r["adds"] == [] and r["changed"] == [],
               "within dav_max_age the last look serves (not asked again): %s" % r)
        r = drv("changes", book, c1, 100)
        expect(len(r["adds"]) == 1 and r["changed"] == [dave]
               and "+1 555 0111" in r["objects"][dave], "an Add and a Change: %s" % r)
        c2 = r["cursor"]
        # four devices' Syncs of the collection at once on one worker: one refresh
        r = drv("together", book, c1, 4)
        expect(r["refreshes"] == 1 and r["joined"] == 3,
               "one look at the server for four requests at once (%d asked, %d waited)" %
               (r["refreshes"], r["joined"]))
        expect(all(x["rv"] == 1 and len(x["adds"]) == 1 and x["changed"] == [dave]
                   for x in r["results"]), "each of them the Add and the Change: %s" %
               r["results"])
        # the request whose refresh the others wait for goes away (its phone left)
        r = drv("together", book, c1, 4, "drop")
        expect(r["refreshes"] == 2 and r["joined"] == 5 and len(r["results"]) == 3 and
               all(x["rv"] == 1 and len(x["adds"]) == 1 and x["changed"] == [dave]
                   for x in r["results"]),
               "its refresh dropped, the three others' led by one of them: %s" % r)

        new = card("erin.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:erin-1\r\nFN:Erin Added\r\n"
                   "N:Added;Erin;;;\r\nEND:VCARD\r\n")
        r = drv("add", book, new, c2)
        expect(r["rv"] == 1 and r["id"], "the device's add: %s" % r)
        erin, c3 = r["id"], r["cursor"]
        r = drv("changes", book, c3, 100)
        expect(r["adds"] == [] and r["changed"] == [], "its own add not reported back: %s" % r)
        r = drv("fetch", book, erin)
        expect(r["rv"] == 1 and "Erin" in r["data"], "on the server, read back")

        changed = card("dave2.vcf", text.replace("Dave Example", "David Example"))
        r = drv("change", book, dave, changed, c3)
        expect(r["rv"] == 1, "the device's change: %s" % r)
        c4 = r["cursor"]
        st, _, body = h.req("GET", "/alice/contacts/dave.vcf")
        expect(b"David Example" in body, "on the server")
        r = drv("changes", book, c4, 100)
        expect(r["changed"] == [], "not reported back")

        # the server changes it again; the device's change from c4 loses
        st, _, _ = h.req("PUT", "/alice/contacts/dave.vcf",
                         text.replace("Dave Example", "Dave Server").encode(),
                         {"Content-Type": "text/vcard"})
        r = drv("change", book, dave, changed, c4)
        expect(r["rv"] == MBX_CONFLICT, "a conflict: %s" % r)
        st, _, body = h.req("GET", "/alice/contacts/dave.vcf")
        expect(b"Dave Server" in body, "the server's copy untouched")

        r = drv("remove", book, erin, c4)
        expect(r["rv"] == 1, "the device's remove: %s" % r)
        r = drv("fetch", book, erin)
        expect(r["rv"] == 0, "gone: %s" % r)

        # a calendar under a two-weeks floor (FilterType 4)
        cal = types["Calendar"][0]
        now = int(time.time())
        day = 86400
        floor = now - 14 * day
        floor -= floor % day

        def ics(name, start, extra, end=None):
            s = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start))
            e = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(end or start + 3600))
            text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//CalDAV Client//EN\r\n"
                    "BEGIN:VEVENT\r\nUID:%s-1\r\nDTSTAMP:20261201T000000Z\r\n"
                    "DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\n%sEND:VEVENT\r\n"
                    "END:VCALENDAR\r\n") % (name, s, e, name, extra)
            st, _, body = h.req("PUT", "/alice/calendar/%s.ics" % name, text.encode(),
                                {"Content-Type": "text/calendar; charset=utf-8",
                                 "If-None-Match": "*"})
            expect(st in (201, 204), "PUT %s: %d %r" % (name, st, body))

        until = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 60 * day))
        ics("inwindow", now - 3 * day, "")
        ics("before", now - 30 * day, "")
        ics("goeson", now - 365 * day, "RRULE:FREQ=WEEKLY\r\n")
        ics("ended", now - 365 * day, "RRULE:FREQ=WEEKLY;UNTIL=%s\r\n" % until)
        r = drv("changes", cal, "-", 100, floor)
        expect(r["rv"] == 1 and len(r["adds"]) == 5 and len(r["objects"]) == 5,
               "every event an Add, fetched (the map knew no span): %s" % r)
        expect(all(v == [0, 0] for v in r["spans"].values()), "no span known yet")
        name = {i: o.split("SUMMARY:")[1].splitlines()[0].strip()
                for i, o in r["objects"].items()}
        r = drv("changes", cal, "-", 100, floor)
        spans = {name[i]: v for i, v in r["spans"].items()}
        expect(spans["inwindow"][1] > floor and spans["goeson"][1] == -1
               and spans["Team standup"][1] == -1, "in the window: %s" % spans)
        expect(0 < spans["before"][1] <= floor and 0 < spans["ended"][1] <= floor
               and spans["ended"][0] == spans["goeson"][0],
               "before it (the ended series: its last occurrence): %s" % spans)
        expect(spans["ended"][1] > now - 67 * day, "the ended series' last occurrence")
        ahead = {name[i] for i in r["objects"]}
        expect(ahead == set(name.values()), "every object read: %s" % ahead)
        # those before the floor were not fetched ahead: the driver reads the objects one
        # by one, each one not fetched ahead a run more
        expect(r["runs"] == 4, "a run more for each of the two not fetched ahead: %s" % r["runs"])
        r = drv("changes", cal, "-", 100)
        expect(r["runs"] == 2, "without a floor every one fetched ahead: %s" % r["runs"])

        r = drv("cancel", book)
        expect(r.get("cancelled") is True, "destroyed with a request in flight")

        rad.stop()
        rad = None
        r = drv("folders")
        expect(r["rv"] == 0 and len(r["folders"]) == 3, "the server away: the stored folders")
        r = drv("changes", book, c4, 100)
        expect(r["rv"] == -1, "a Sync's changes with the server away: a failure (%s)" %
               r.get("error"))
        r = drv("together", book, c4, 3)
        expect([x["rv"] for x in r["results"]] == [-1] * 3 and r["refreshes"] == 1,
               "three at once with the server away: one try, all three fail with it (%s)" % r)
    finally:
        if rad is not None:
            rad.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
