#!/usr/bin/env python3
"""The CalDAV/CardDAV client (src/dav) live against Radicale, and its refusals
against a scripted server.

Starts Debian's Radicale on a free loopback port with its own storage and a
plain htpasswd file (alice, bob), as root too, and stops it at the end. A DAV
client's side is played with Python's http.client: MKCALENDAR/MKCOL of a
calendar, a task list and an address book, PUT of real .ics and .vcf files
(tests/dav/live). dav-driver (tests/dav/dav_driver.c) runs one operation of
the client on a libevent loop per call and prints the result as JSON:

  1. discover caldav and carddav from the server's root: the principal, the
     home, each collection with its kind, components, name, color, CTag,
     sync-token and write privilege; from a path the server does not have:
     through /.well-known/caldav (a redirect on the same server);
  2. list: every item's href and the ETag its PUT answered;
  3. sync: all items and a token; after changes made with plain HTTP (one
     changed, one deleted, one added), just those; then nothing; a token the
     server does not know: "token invalid";
  4. multiget: the data of each item (its lines as PUT), a missing href as
     404, batches of 2 (3 REPORTs for 5 hrefs), data over --max-data flagged;
  5. writes through the driver, read back with plain HTTP: create (the new
     ETag), change with the right ETag, change with a stale one (conflict,
     the server's copy unchanged), create over an existing one (conflict),
     delete with a stale ETag (conflict), delete, delete again (not found);
  6. a wrong password: auth refused;
  7. lifetimes: operations cancelled, cancelled from a callback, the account
     freed in a callback and with operations in flight: one callback;
then against a scripted server (a Python HTTP server on 127.0.0.1 and a
second one standing for another server):
  8. an href, a home set, a redirect pointing at the other server: refused,
     and the other server never sees a request (the credentials go nowhere
     else); a same-server redirect is followed;
  9. an answer over --max-body, a 207 that is not XML, a DTD, a 409 with
     valid-sync-token, a truncated sync (507), a server that never answers
     (--timeout-ms): each its own precise result.
The password never appears in anything the driver prints.

With --sogo, the same client against the SOGo fixture's DAV (tests/fixture,
started on free ports, or a running one with --sogo-fixture DIR) at
/SOGo/dav/, where SOGo differs (each checked as it is, so that a SOGo that
changes shows here):
  - discovery must start at /SOGo/dav/: SOGo answers PROPFIND / and
    /.well-known/caldav with its web page (200, HTML);
  - its ETags count versions per item ("gcs00000000" for every new one);
  - its sync-tokens are seconds: a sync may repeat the items changed in the
    token's own second (their ETags unchanged);
  - an unknown sync-token is not refused: SOGo answers as from the start
    (deleted items included), never DAV:valid-sync-token;
  - PUT with If-None-Match: * over an existing item replaces it (204), and
    DELETE ignores If-Match: only PUT's If-Match is honoured (412);
  - a second item with a UID already in the calendar: 409 without a body.

ABQ_DAV_WRAP (the -valgrind variant) is a command the driver runs under.

  test_dav_live.py --driver build/tests/dav/dav-driver [--keep] [--sogo [--sogo-fixture DIR]]
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIVE = os.path.join(HERE, "live")
sys.path.insert(0, os.path.join(HERE, "..", "fixture"))
import check_native  # noqa: E402  (free_ports, fixture, read_env)
PASSWORD = "s3cret-Pw-7f1c"  # distinctive: searched for in every output
OUTPUTS = []


class Failure(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def free_port():
    return check_native.free_ports(1)[0]


# ---- plain HTTP, as a DAV client writes ----

class Http:
    def __init__(self, port, user, password):
        self.port = port
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Authorization": self.auth}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def mkcalendar(h, path, name, comp, color=None):
    props = "<D:displayname>%s</D:displayname>" % name
    if color:
        props += "<I:calendar-color>%s</I:calendar-color>" % color
    props += ("<C:supported-calendar-component-set><C:comp name=\"%s\"/>"
              "</C:supported-calendar-component-set>" % comp)
    body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
            "<C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\" "
            "xmlns:I=\"http://apple.com/ns/ical/\"><D:set><D:prop>%s</D:prop></D:set>"
            "</C:mkcalendar>" % props)
    st, _, data = h.req("MKCALENDAR", path, body.encode(), {"Content-Type": "application/xml"})
    expect(st == 201, "MKCALENDAR %s: %d %r" % (path, st, data))


def mkaddressbook(h, path, name):
    body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
            "<D:mkcol xmlns:D=\"DAV:\" xmlns:CR=\"urn:ietf:params:xml:ns:carddav\"><D:set>"
            "<D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"
            "<D:displayname>%s</D:displayname></D:prop></D:set></D:mkcol>" % name)
    st, _, data = h.req("MKCOL", path, body.encode(), {"Content-Type": "application/xml"})
    expect(st == 201, "MKCOL %s: %d %r" % (path, st, data))


def put_file(h, path, name, etag=None):
    with open(os.path.join(LIVE, name), "rb") as f:
        data = f.read()
    ctype = "text/vcard; charset=utf-8" if name.endswith(".vcf") else "text/calendar; charset=utf-8"
    hdr = {"Content-Type": ctype}
    hdr["If-Match" if etag else "If-None-Match"] = etag or "*"
    st, headers, body = h.req("PUT", path, data, hdr)
    expect(st in (200, 201, 204), "PUT %s: %d %r" % (path, st, body))
    return headers.get("etag")


def content_lines(text):
    """The unfolded content lines of an iCalendar or vCard text, as a set."""
    text = text.replace("\r\n", "\n")
    lines = []
    for ln in text.split("\n"):
        if ln.startswith((" ", "\t")) and lines:
            lines[-1] += ln[1:]
        elif ln:
            lines.append(ln)
    return set(lines)


def same_content(original, got, ignore=("PRODID", "VERSION")):
    """Every content line of the file is in what the server gave back
    (Radicale writes the properties again in its own order)."""
    missing = [ln for ln in content_lines(original) if ln not in content_lines(got)
               and not ln.startswith(ignore)]
    return missing


# ---- the driver ----

def driver(args, *op, password=None, expect_rc=0):
    password = password or args.password
    cmd = os.environ.get("ABQ_DAV_WRAP", "").split() + [args.driver] + list(op)
    env = dict(os.environ, DAV_PASSWORD=password)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    OUTPUTS.append(p.stdout + p.stderr)
    expect(p.returncode == expect_rc, "dav-driver %s: rc %d (want %d): %s%s"
           % (" ".join(op), p.returncode, expect_rc, p.stdout, p.stderr))
    if expect_rc != 0:
        return p.stderr
    r = json.loads(p.stdout.splitlines()[-1])
    if "status" in r:
        expect(r["callbacks"] == 1 and r["ops_left"] == 0,
               "dav-driver %s: %d callbacks, %d operations left" % (" ".join(op), r["callbacks"], r["ops_left"]))
    return r


# ---- Radicale ----

class Radicale:
    def __init__(self, work):
        self.dir = os.path.join(work, "radicale")
        os.makedirs(os.path.join(self.dir, "collections"))
        self.port = free_port()
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("alice:%s\nbob:other-pw\n" % PASSWORD)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("[server]\nhosts = 127.0.0.1:%d\n"
                    "[auth]\ntype = htpasswd\nhtpasswd_filename = %s/users\nhtpasswd_encryption = plain\n"
                    "[storage]\nfilesystem_folder = %s/collections\n"
                    "[rights]\ntype = owner_only\n[web]\ntype = none\n"
                    "[logging]\nlevel = warning\n" % (self.port, self.dir, self.dir))
        self.log = open(os.path.join(self.dir, "radicale.log"), "w")
        self.proc = subprocess.Popen(["radicale", "--config", os.path.join(self.dir, "config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                expect(self.proc.poll() is None, "radicale exited: see %s" % self.log.name)
                expect(time.monotonic() < deadline, "radicale did not listen in 20 s")
                time.sleep(0.1)
        self.url = "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- the scripted server ----

class Scripted:
    """An HTTP server on 127.0.0.1 answering from a table: path -> (status,
    headers, body). It records each request (method, path, whether it had
    credentials)."""

    def __init__(self):
        self.routes = {}
        self.seen = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.seen.append((self.command, self.path, "Authorization" in self.headers, body))
                route = outer.routes.get(self.path)
                if route is None:
                    route = (404, {}, b"")
                if route == "hang":
                    time.sleep(3)
                    return
                status, headers, data = route
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PROPFIND = do_REPORT = do_PUT = do_DELETE = do_GET = handle_any

            def handle(self):
                try:
                    super().handle()
                except OSError:
                    pass  # the client gave up (the timeout case)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


XML = {"Content-Type": "application/xml; charset=utf-8"}


def ms(*responses, token=None):
    body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" " \
           "xmlns:c=\"urn:ietf:params:xml:ns:caldav\">" + "".join(responses)
    if token:
        body += "<d:sync-token>%s</d:sync-token>" % token
    return (207, XML, (body + "</d:multistatus>").encode())


def resp(href, props="", status=None):
    if status:
        return "<d:response><d:href>%s</d:href><d:status>HTTP/1.1 %s</d:status></d:response>" % (href, status)
    return ("<d:response><d:href>%s</d:href><d:propstat><d:prop>%s</d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>" % (href, props))


# ---- the cases ----

def case_discover(args, rad):
    r = driver(args, "--url", rad.url, "--user", "alice", "discover", "caldav")
    expect(r["status"] == "ok", "discover caldav: %s" % r)
    d = r["discovery"]
    expect(d["principal"] == "/alice/" and d["home"] == "/alice/" and not d["well_known"],
           "discover caldav: principal/home %s" % d)
    colls = {c["href"]: c for c in d["collections"]}
    expect(sorted(colls) == ["/alice/calendar/", "/alice/tasks/"], "caldav collections %s" % sorted(colls))
    cal, tasks = colls["/alice/calendar/"], colls["/alice/tasks/"]
    expect(cal["kind"] == "calendar" and cal["components"] == ["VEVENT"] and cal["name"] == "Calendar"
           and cal["color"] == "#2E7D32FF" and cal["writable"] and cal["can_sync"]
           and cal["sync_token"].startswith("http://radicale.org/ns/sync/") and cal["ctag"],
           "the calendar: %s" % cal)
    expect(tasks["components"] == ["VTODO"] and tasks["name"] == "Tasks" and tasks["color"] is None,
           "the task list: %s" % tasks)
    expect(r["requests"] == 3, "discover: %d requests (root, principal, home)" % r["requests"])
    r = driver(args, "--url", rad.url, "--user", "alice", "discover", "carddav")
    expect(r["status"] == "ok", "discover carddav: %s" % r)
    colls = r["discovery"]["collections"]
    expect(len(colls) == 1 and colls[0]["href"] == "/alice/contacts/" and colls[0]["kind"] == "addressbook"
           and colls[0]["name"] == "Contacts" and colls[0]["can_sync"], "carddav collections %s" % colls)
    # From a path Radicale does not have: /.well-known/caldav, redirected to /.
    r = driver(args, "--url", rad.url + "no/such/path/", "--user", "alice", "discover", "caldav")
    expect(r["status"] == "ok" and r["discovery"]["well_known"] and len(r["discovery"]["collections"]) == 2,
           "discover through .well-known: %s" % r)
    return "discover: 2 calendars (components, color, CTag, token, writable), 1 address book; " \
           "through /.well-known/caldav from a path the server lacks (%d requests)" % r["requests"]


def case_list(args, rad, etags):
    for coll in ("/alice/calendar/", "/alice/tasks/", "/alice/contacts/"):
        r = driver(args, "--url", rad.url, "--user", "alice", "list", coll)
        expect(r["status"] == "ok", "list %s: %s" % (coll, r))
        got = {i["href"]: i["etag"] for i in r["items"]}
        want = {h: e for h, e in etags.items() if h.startswith(coll)}
        expect(got == want, "list %s: %s, PUT gave %s" % (coll, got, want))
    return "list: every item of the 3 collections with the ETag its PUT answered"


def case_sync(args, rad, h, etags):
    coll = "/alice/calendar/"
    r = driver(args, "--url", rad.url, "--user", "alice", "sync", coll)
    expect(r["status"] == "ok" and r["sync_token"], "initial sync: %s" % r)
    got = {i["href"]: i["etag"] for i in r["items"]}
    expect(got == {k: v for k, v in etags.items() if k.startswith(coll)} and r["removed"] == [],
           "initial sync: %s" % r)
    token = r["sync_token"]
    # Changes by another client.
    with open(os.path.join(LIVE, "weekly_standup.ics"), "rb") as f:
        changed = f.read().replace(b"SUMMARY:Team standup", b"SUMMARY:Team standup (moved to 9:45)")
    st, hd, _ = h.req("PUT", coll + "standup.ics", changed,
                      {"Content-Type": "text/calendar", "If-Match": etags[coll + "standup.ics"]})
    expect(st in (200, 201, 204), "PUT standup: %d" % st)
    etags[coll + "standup.ics"] = hd.get("etag")
    st, _, _ = h.req("DELETE", coll + "holiday.ics")
    expect(st in (200, 204), "DELETE holiday: %d" % st)
    del etags[coll + "holiday.ics"]
    with open(os.path.join(LIVE, "holiday_allday.ics"), "rb") as f:
        other = f.read().replace(b"A7E2C3D4-1B5F-4E6A-8C9D-0F1E2D3C4B5A", b"new-uid-2026-12-31@example.test")
    st, hd, _ = h.req("PUT", coll + "new-year.ics", other, {"Content-Type": "text/calendar"})
    expect(st == 201, "PUT new-year: %d" % st)
    etags[coll + "new-year.ics"] = hd.get("etag")
    r = driver(args, "--url", rad.url, "--user", "alice", "sync", coll, token)
    got = {i["href"]: i["etag"] for i in r["items"]}
    expect(r["status"] == "ok" and got == {coll + "standup.ics": etags[coll + "standup.ics"],
                                           coll + "new-year.ics": etags[coll + "new-year.ics"]}
           and r["removed"] == [coll + "holiday.ics"] and r["sync_token"] != token,
           "sync after changes: %s" % r)
    r2 = driver(args, "--url", rad.url, "--user", "alice", "sync", coll, r["sync_token"])
    expect(r2["status"] == "ok" and r2["items"] == [] and r2["removed"] == [], "sync without changes: %s" % r2)
    r3 = driver(args, "--url", rad.url, "--user", "alice", "sync", coll,
                "http://radicale.org/ns/sync/" + "0" * 64)
    expect(r3["status"] == "token invalid" and r3["http"] == 403 and "valid-sync-token" in r3["error"],
           "sync from an unknown token: %s" % r3)
    return "sync: all + token; after a change, a delete and an add by another client just those; " \
           "then nothing; an unknown token: token invalid (403 valid-sync-token)"


def case_multiget(args, rad, etags):
    coll = "/alice/calendar/"
    hrefs = sorted(h for h in etags if h.startswith(coll))
    r = driver(args, "--url", rad.url, "--user", "alice", "multiget", "caldav", coll, *hrefs, coll + "missing.ics")
    expect(r["status"] == "ok" and r["requests"] == 1, "multiget: %s" % r)
    items = {i["href"]: i for i in r["items"]}
    expect(items.get(coll + "missing.ics", {}).get("status") == 404, "multiget: the missing href %s" % items)
    with open(os.path.join(LIVE, "weekly_standup.ics"), encoding="utf-8") as f:
        want = f.read().replace("SUMMARY:Team standup", "SUMMARY:Team standup (moved to 9:45)")
        # Radicale writes TRIGGER;VALUE=DURATION:-PT5M as TRIGGER:-PT5M (the default type).
        want = want.replace("TRIGGER;VALUE=DURATION:", "TRIGGER:")
        missing = same_content(want, items[coll + "standup.ics"]["data"])
    expect(not missing, "multiget: standup.ics lacks %s" % missing)
    expect(items[coll + "standup.ics"]["etag"] == etags[coll + "standup.ics"], "multiget: ETag")
    # Contacts, UTF-8 kept.
    cc = "/alice/contacts/"
    hrefs = sorted(h for h in etags if h.startswith(cc))
    r = driver(args, "--url", rad.url, "--user", "alice", "multiget", "carddav", cc, *hrefs)
    items = {i["href"]: i for i in r["items"]}
    with open(os.path.join(LIVE, "zoe_mueller.vcf"), encoding="utf-8") as f:
        missing = same_content(f.read(), items[cc + "zoe.vcf"]["data"])
    expect(r["status"] == "ok" and not missing, "multiget carddav: %s lacks %s" % (r, missing))
    # Batches of 2: 5 hrefs in 3 REPORTs.
    all_hrefs = [coll + n for n in ("standup.ics", "new-year.ics", "a.ics", "b.ics", "c.ics")]
    r = driver(args, "--url", rad.url, "--user", "alice", "--multiget-max", "2",
               "multiget", "caldav", coll, *all_hrefs)
    expect(r["status"] == "ok" and r["requests"] == 3 and len(r["items"]) == 5
           and sum(1 for i in r["items"] if i["status"] == 200) == 2, "multiget in batches: %s" % r)
    # Data over --max-data: flagged, the others read.
    r = driver(args, "--url", rad.url, "--user", "alice", "--max-data", "600",
               "multiget", "caldav", coll, coll + "standup.ics", coll + "new-year.ics")
    items = {i["href"]: i for i in r["items"]}
    expect(r["status"] == "ok" and items[coll + "standup.ics"]["oversize"]
           and "data" not in items[coll + "standup.ics"] and not items[coll + "new-year.ics"]["oversize"]
           and "data" in items[coll + "new-year.ics"], "multiget over max-data: %s" % r)
    return "multiget: data line for line as PUT (iCalendar and vCard 4 in UTF-8), a missing href 404, " \
           "5 hrefs in 3 REPORTs of 2, a body over --max-data flagged and the next read"


def case_writes(args, rad, h, work):
    href = "/alice/calendar/driver-made.ics"
    src = os.path.join(LIVE, "quarterly_report.ics")
    with open(src, "rb") as f:
        orig = f.read()
    # The task list only takes VTODO; put the event file in the calendar instead.
    ev = os.path.join(work, "event.ics")
    with open(os.path.join(LIVE, "holiday_allday.ics"), "rb") as f:
        data = f.read().replace(b"A7E2C3D4-1B5F-4E6A-8C9D-0F1E2D3C4B5A", b"driver-made@example.test")
    with open(ev, "wb") as f:
        f.write(data)
    ctype = "text/calendar; charset=utf-8"
    r = driver(args, "--url", rad.url, "--user", "alice", "put", href, ctype, ev)
    expect(r["status"] == "ok" and r["http"] == 201 and r["etag"], "create: %s" % r)
    e1 = r["etag"]
    st, hd, body = h.req("GET", href)
    expect(st == 200 and hd.get("etag") == e1 and b"UID:driver-made@example.test" in body,
           "create read back: %d %s" % (st, hd.get("etag")))
    # Change with the right ETag.
    ev2 = os.path.join(work, "event2.ics")
    with open(ev2, "wb") as f:
        f.write(data.replace(b"SUMMARY:Weihnachten", b"SUMMARY:Changed: Weihnachten"))
    r = driver(args, "--url", rad.url, "--user", "alice", "put", href, ctype, ev2, e1)
    expect(r["status"] == "ok" and r["etag"] and r["etag"] != e1, "change: %s" % r)
    e2 = r["etag"]
    st, hd, body = h.req("GET", href)
    expect(hd.get("etag") == e2 and "SUMMARY:Changed: Weihnachten".encode() in body, "change read back")
    # A stale ETag: conflict, the server's copy stays.
    r = driver(args, "--url", rad.url, "--user", "alice", "put", href, ctype, ev, e1)
    expect(r["status"] == "conflict" and r["http"] == 412, "stale change: %s" % r)
    st, hd, body = h.req("GET", href)
    expect(hd.get("etag") == e2 and b"SUMMARY:Changed" in body, "stale change altered the server's copy")
    # Creating over an existing resource (If-None-Match: *): conflict.
    r = driver(args, "--url", rad.url, "--user", "alice", "put", href, ctype, ev)
    expect(r["status"] == "conflict", "create over an existing one: %s" % r)
    # The task file again under another name: its UID is taken (RFC 4791 5.3.2.1).
    r = driver(args, "--url", rad.url, "--user", "alice", "put", "/alice/tasks/report.ics", ctype, src)
    expect(r["status"] == "precondition failed" and r["http"] == 409 and "no-uid-conflict" in r["error"],
           "a second task with the same UID: %s" % r)
    task = os.path.join(work, "task.ics")
    with open(task, "wb") as f:
        f.write(orig.replace(b"UID:9f8e7d6c", b"UID:0a1b2c3d"))
    r = driver(args, "--url", rad.url, "--user", "alice", "put", "/alice/tasks/report.ics", ctype, task)
    expect(r["status"] == "ok", "create a task: %s" % r)
    st, _, body = h.req("GET", "/alice/tasks/report.ics")
    expect(st == 200 and not same_content(orig.decode().replace("UID:9f8e7d6c", "UID:0a1b2c3d"),
                                          body.decode()), "the task read back")
    # Delete with a stale ETag, then the right one, then again.
    r = driver(args, "--url", rad.url, "--user", "alice", "delete", href, e1)
    expect(r["status"] == "conflict", "stale delete: %s" % r)
    expect(h.req("GET", href)[0] == 200, "a stale delete removed the resource")
    r = driver(args, "--url", rad.url, "--user", "alice", "delete", href, e2)
    expect(r["status"] == "ok", "delete: %s" % r)
    expect(h.req("GET", href)[0] == 404, "deleted, but GET still finds it")
    r = driver(args, "--url", rad.url, "--user", "alice", "delete", href, e2)
    expect(r["status"] == "not found" and r["http"] == 404, "delete again: %s" % r)
    # Another user's collection: Radicale's owner_only rights refuse it.
    r = driver(args, "--url", rad.url, "--user", "alice", "put", "/bob/x.ics", ctype, ev)
    expect(r["status"] in ("forbidden", "unexpected status", "not found") and r["http"] in (403, 404, 409),
           "a write to bob's collection: %s" % r)
    return "writes: create (ETag), change with the ETag, stale ETag -> conflict (copy unchanged), " \
           "create over an existing one -> conflict, a UID taken -> precondition (no-uid-conflict), " \
           "stale delete -> conflict, delete, delete again -> not found"


def case_auth(args, rad):
    r = driver(args, "--url", rad.url, "--user", "alice", "discover", "caldav", password="wrong-" + PASSWORD)
    expect(r["status"] == "auth refused" and r["http"] == 401 and r["requests"] == 1, "wrong password: %s" % r)
    # A URL with credentials in it, plain http to a remote host: refused before any request.
    err = driver(args, "--url", "http://alice:x@127.0.0.1:%d/" % rad.port, "--user", "alice",
                 "discover", "caldav", expect_rc=2)
    expect("carries credentials" in err, "a URL with credentials: %s" % err)
    err = driver(args, "--url", "http://dav.example.test/", "--user", "alice", "discover", "caldav", expect_rc=2)
    expect("in clear" in err, "plain http to a remote host: %s" % err)
    err = driver(args, "--url", rad.url, "--user", "alice", "list", "https://other.example.test/alice/", expect_rc=2)
    expect("another server" in err, "a collection on another server: %s" % err)
    err = driver(args, "--url", rad.url, "--user", "alice", "delete", "/alice/calendar/x.ics",
                 "\"a\"\r\nX-Injected: 1", expect_rc=2)
    expect("header" in err, "an ETag with a line break: %s" % err)
    return "a wrong password: auth refused in 1 request; credentials in the URL, http:// to a remote " \
           "host, another server's href, an ETag with CRLF: refused before any request"


def case_cancel(args, rad):
    r = driver(args, "--url", rad.url, "--user", "alice", "cancel", "/alice/calendar/")
    expect(r == {"callbacks": 1, "freed_in_callback": True, "in_flight_at_free": 3, "transfers": 0},
           "cancel: %s" % r)
    return "lifetimes: cancelled at once, from a callback, the account freed in a callback and with 3 in flight: " \
           "1 callback, no transfer left"


def case_scripted(args, work):
    s, other = Scripted(), Scripted()
    try:
        url = "http://127.0.0.1:%d/dav/" % s.port
        elsewhere = "http://127.0.0.1:%d" % other.port
        # A home set on another server (another port): refused, nothing sent there.
        s.routes["/dav/"] = ms(resp("/dav/", "<d:current-user-principal><d:href>/p/alice/</d:href>"
                                             "</d:current-user-principal>"))
        s.routes["/p/alice/"] = ms(resp("/p/alice/", "<c:calendar-home-set><d:href>%s/cal/</d:href>"
                                                     "</c:calendar-home-set>" % elsewhere))
        other.routes["/cal/"] = ms(resp("/cal/"))
        r = driver(args, "--url", url, "--user", "alice", "discover", "caldav")
        expect(r["status"] == "refused" and "calendar-home-set" in r["error"] and "another server" in r["error"],
               "a home on another server: %s" % r)
        # A redirect to the other server: refused.
        s.routes["/dav/"] = (301, {"Location": elsewhere + "/dav/"}, b"")
        r = driver(args, "--url", url, "--user", "alice", "discover", "caldav")
        expect(r["status"] == "refused" and "redirected" in r["error"], "a redirect elsewhere: %s" % r)
        # An item href on the other server.
        s.routes["/dav/cal/"] = ms(resp("/dav/cal/a.ics", "<d:getetag>\"1\"</d:getetag>"),
                                   resp(elsewhere + "/dav/cal/b.ics", "<d:getetag>\"2\"</d:getetag>"))
        r = driver(args, "--url", url, "--user", "alice", "list", "/dav/cal/")
        expect(r["status"] == "refused" and "b.ics" in r["error"], "an item elsewhere: %s" % r)
        expect(other.seen == [], "the other server saw requests: %s" % other.seen)
        # A redirect on the same server is followed; absolute hrefs of the same server are fine.
        s.routes["/dav/old/"] = (301, {"Location": "/dav/cal/"}, b"")
        s.routes["/dav/cal/"] = ms(resp("/dav/cal/", "<d:resourcetype><d:collection/></d:resourcetype>"),
                                   resp("http://127.0.0.1:%d/dav/cal/a.ics" % s.port,
                                        "<d:getetag>\"1\"</d:getetag>"))
        r = driver(args, "--url", url, "--user", "alice", "list", "/dav/old/")
        expect(r["status"] == "ok" and r["requests"] == 2 and [i["href"] for i in r["items"]] == ["/dav/cal/a.ics"],
               "a same-server redirect: %s" % r)
        # Over --max-body.
        big = ms(*[resp("/dav/cal/%d.ics" % i, "<d:getetag>\"%d\"</d:getetag>" % i) for i in range(400)])
        s.routes["/dav/big/"] = big
        r = driver(args, "--url", url, "--user", "alice", "--max-body", "20000", "list", "/dav/big/")
        expect(r["status"] == "protocol" and "over 20000 bytes" in r["error"], "over max-body: %s" % r)
        r = driver(args, "--url", url, "--user", "alice", "list", "/dav/big/")
        expect(r["status"] == "ok" and len(r["items"]) == 400, "the same under the default cap: %s" % r["status"])
        # A 207 that is HTML; a DTD.
        s.routes["/dav/html/"] = (207, {"Content-Type": "text/html"}, b"<html><body><p>Hello<br></body></html>")
        r = driver(args, "--url", url, "--user", "alice", "list", "/dav/html/")
        expect(r["status"] == "protocol" and "XML error" in r["error"], "a 207 in HTML: %s" % r)
        s.routes["/dav/dtd/"] = (207, XML, b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"b\">]>"
                                             b"<d:multistatus xmlns:d=\"DAV:\"/>")
        r = driver(args, "--url", url, "--user", "alice", "list", "/dav/dtd/")
        expect(r["status"] == "protocol" and "DTDs are refused" in r["error"], "a DTD: %s" % r)
        # A sync: 409 with valid-sync-token; a truncated answer (507 on the collection).
        s.routes["/dav/sync409/"] = (409, XML, b"<d:error xmlns:d=\"DAV:\"><d:valid-sync-token/></d:error>")
        r = driver(args, "--url", url, "--user", "alice", "sync", "/dav/sync409/", "t1")
        expect(r["status"] == "token invalid" and r["http"] == 409, "409 valid-sync-token: %s" % r)
        s.routes["/dav/sync507/"] = ms(resp("/dav/sync507/a.ics", "<d:getetag>\"1\"</d:getetag>"),
                                       resp("/dav/sync507/gone.ics", status="404 Not Found"),
                                       resp("/dav/sync507/", status="507 Insufficient Storage"), token="t2")
        r = driver(args, "--url", url, "--user", "alice", "sync", "/dav/sync507/", "t1")
        expect(r["status"] == "ok" and r["more"] and r["sync_token"] == "t2"
               and [i["href"] for i in r["items"]] == ["/dav/sync507/a.ics"]
               and r["removed"] == ["/dav/sync507/gone.ics"], "a truncated sync: %s" % r)
        req = [b for (m, p, a, b) in s.seen if p == "/dav/sync507/"][-1]
        expect(b"<D:sync-token>t1</D:sync-token>" in req and b"<D:sync-level>1</D:sync-level>" in req,
               "the sync REPORT: %r" % req)
        # A sync answer without a token.
        s.routes["/dav/notoken/"] = ms(resp("/dav/notoken/a.ics", "<d:getetag>\"1\"</d:getetag>"))
        r = driver(args, "--url", url, "--user", "alice", "sync", "/dav/notoken/")
        expect(r["status"] == "protocol" and "no sync-token" in r["error"], "no token: %s" % r)
        # A server that never answers.
        s.routes["/dav/slow/"] = "hang"
        t0 = time.monotonic()
        r = driver(args, "--url", url, "--user", "alice", "--timeout-ms", "500", "list", "/dav/slow/")
        expect(r["status"] == "network" and "Timeout" in r["error"], "a silent server: %s" % r)
        expect(time.monotonic() - t0 < 2.5 or os.environ.get("ABQ_DAV_WRAP"), "the timeout took too long")
        # Every request carried the credentials, to this server only.
        expect(all(a for (_, _, a, _) in s.seen) and other.seen == [], "credentials: %s" % other.seen)
    finally:
        s.stop()
        other.stop()
    return "scripted: a home set, a redirect and an href of another server refused (it saw no request), " \
           "a same-server redirect followed, over --max-body, HTML and a DTD in a 207, 409 valid-sync-token, " \
           "a truncated sync (507: more), no token, a silent server (timeout)"


# ---- SOGo ----

def sogo_cases(args, base, work):
    """The client against SOGo's DAV (see the head comment); returns (passed, failed)."""
    url = base + "/SOGo/dav/"
    port = int(base.rsplit(":", 1)[1])
    h = Http(port, "alice", args.password)
    cal, card = "/SOGo/dav/alice/Calendar/personal/", "/SOGo/dav/alice/Contacts/personal/"
    ctype = "text/calendar; charset=utf-8"
    results = []

    def case_discover():
        r = driver(args, "--url", url, "--user", "alice", "discover", "caldav")
        d = r["discovery"]
        expect(r["status"] == "ok" and d["principal"] == "/SOGo/dav/alice/"
               and d["home"] == "/SOGo/dav/alice/Calendar/", "SOGo discover caldav: %s" % r)
        c = {x["href"]: x for x in d["collections"]}.get(cal)
        expect(c and c["kind"] == "calendar" and set(c["components"]) >= {"VEVENT", "VTODO"}
               and c["writable"] and c["can_sync"] and c["ctag"], "SOGo's calendar: %s" % d)
        r = driver(args, "--url", url, "--user", "alice", "discover", "carddav")
        expect(r["status"] == "ok" and [x["href"] for x in r["discovery"]["collections"]] == [card],
               "SOGo discover carddav: %s" % r)
        r = driver(args, "--url", base + "/", "--user", "alice", "discover", "caldav")
        expect(r["status"] == "unexpected status" and r["http"] == 200 and "well-known" in r["error"],
               "SOGo discovery from /: %s" % r)
        return "SOGo discover from /SOGo/dav/: principal, home, Personal Calendar (VEVENT VTODO), the " \
               "address book; from /: HTML for PROPFIND / and /.well-known/caldav (%s)" % r["error"]

    def case_items():
        etags = {}
        for name, coll, f in (("standup.ics", cal, "weekly_standup.ics"),
                              ("report.ics", cal, "quarterly_report.ics"),
                              ("zoe.vcf", card, "zoe_mueller.vcf")):
            etags[coll + name] = put_file(h, coll + name, f)
        r = driver(args, "--url", url, "--user", "alice", "sync", cal)
        expect(r["status"] == "ok" and r["sync_token"], "SOGo initial sync: %s" % r)
        got = {i["href"]: i["etag"] for i in r["items"]}
        expect(all(got.get(k) == v for k, v in etags.items() if k.startswith(cal)), "SOGo sync: %s" % got)
        token = r["sync_token"]
        time.sleep(1.1)  # SOGo's tokens are seconds
        st, _, _ = h.req("DELETE", cal + "report.ics")
        expect(st == 204, "DELETE: %d" % st)
        r = driver(args, "--url", url, "--user", "alice", "sync", cal, token)
        again = [i for i in r["items"] if etags.get(i["href"]) != i["etag"]]
        expect(r["status"] == "ok" and r["removed"] == [cal + "report.ics"] and not again,
               "SOGo sync after a delete: %s" % r)
        repeated = len(r["items"])
        r2 = driver(args, "--url", url, "--user", "alice", "sync", cal, "not-a-token")
        expect(r2["status"] == "ok" and cal + "report.ics" in r2["removed"],
               "SOGo sync from an unknown token: %s" % r2)
        r = driver(args, "--url", url, "--user", "alice", "list", cal)
        got = {i["href"]: i["etag"] for i in r["items"]}
        expect(r["status"] == "ok" and got.get(cal + "standup.ics") == etags[cal + "standup.ics"]
               and cal + "report.ics" not in got, "SOGo list: %s" % r)
        r = driver(args, "--url", url, "--user", "alice", "multiget", "carddav", card, card + "zoe.vcf",
                   card + "nobody.vcf")
        items = {i["href"]: i for i in r["items"]}
        with open(os.path.join(LIVE, "zoe_mueller.vcf"), encoding="utf-8") as f:
            zoe = f.read()
        expect(r["status"] == "ok" and items[card + "nobody.vcf"]["status"] == 404
               and "FN:Zo\u00eb M\u00fcller" in items[card + "zoe.vcf"]["data"], "SOGo multiget: %s" % r)
        lost = same_content(zoe, items[card + "zoe.vcf"]["data"])
        return "SOGo sync (token, a delete reported removed, %d unchanged repeated; an unknown token " \
               "answered from the start), " \
               "list, multiget (vCard 4 lines SOGo changed: %s)" % (repeated, lost or "none")

    def case_writes():
        href = cal + "driver-made.ics"
        with open(os.path.join(LIVE, "holiday_allday.ics"), "rb") as f:
            data = f.read().replace(b"A7E2C3D4-1B5F-4E6A-8C9D-0F1E2D3C4B5A", b"sogo-driver-made@example.test")
        ev = os.path.join(work, "sogo-event.ics")
        with open(ev, "wb") as f:
            f.write(data)
        r = driver(args, "--url", url, "--user", "alice", "put", href, ctype, ev)
        expect(r["status"] == "ok" and r["http"] == 201 and r["etag"] == '"gcs00000000"', "SOGo create: %s" % r)
        e1 = r["etag"]
        r = driver(args, "--url", url, "--user", "alice", "put", href, ctype, ev, e1)
        expect(r["status"] == "ok" and r["etag"] == '"gcs00000001"', "SOGo change: %s" % r)
        e2 = r["etag"]
        r = driver(args, "--url", url, "--user", "alice", "put", href, ctype, ev, e1)
        expect(r["status"] == "conflict" and r["http"] == 412, "SOGo stale change: %s" % r)
        r = driver(args, "--url", url, "--user", "alice", "put", href, ctype, ev)
        expect(r["status"] == "ok" and r["http"] == 204, "SOGo If-None-Match over an existing item: %s" % r)
        st, hd, _ = h.req("GET", href)
        expect(st == 200 and hd.get("etag") != e2, "SOGo kept the item?")
        r = driver(args, "--url", url, "--user", "alice", "put", cal + "other-name.ics", ctype, ev)
        expect(r["status"] == "unexpected status" and r["http"] == 409, "SOGo UID taken: %s" % r)
        r = driver(args, "--url", url, "--user", "alice", "delete", href, e1)
        expect(r["status"] == "ok", "SOGo delete with a stale ETag: %s" % r)
        expect(h.req("GET", href)[0] == 404, "SOGo: deleted, GET still finds it")
        r = driver(args, "--url", url, "--user", "alice", "delete", href, e2)
        expect(r["status"] == "not found", "SOGo delete again: %s" % r)
        return "SOGo writes: create (\"gcs00000000\"), change with the ETag, stale ETag -> conflict; " \
               "If-None-Match: * over an item replaces it (204), the same UID elsewhere 409 without a " \
               "body, DELETE with a stale ETag deletes (If-Match ignored)"

    for name, fn in (("sogo discover", case_discover), ("sogo items", case_items), ("sogo writes", case_writes)):
        try:
            results.append((True, fn()))
        except Failure as e:
            results.append((False, "%s: %s" % (name, e)))
    return results


def run_sogo(args, work):
    if args.sogo_fixture:
        env = check_native.read_env(args.sogo_fixture)
        return sogo_cases(args, "http://127.0.0.1:%s" % env["ABQ_FIX_SOGO_PORT"], work)
    fixdir = os.path.join(work, "fixture")
    pg, imap, mc, sogo, smtp, sub, relay = check_native.free_ports(7)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABQ_FIX_")}
    env.update({"ABQ_FIX_PG_PORT": str(pg), "ABQ_FIX_IMAP_PORT": str(imap),
                "ABQ_FIX_MEMCACHED_PORT": str(mc), "ABQ_FIX_SOGO_PORT": str(sogo),
                "ABQ_FIX_SMTP_PORT": str(smtp), "ABQ_FIX_SUBMISSION_PORT": str(sub),
                "ABQ_FIX_RELAY_PORT": str(relay)})
    os.chmod(work, 0o755)
    check_native.fixture(["up"], env, fixdir, os.path.join(work, "up.out"))
    try:
        return sogo_cases(args, "http://127.0.0.1:%d" % sogo, work)
    finally:
        check_native.fixture(["down"], env, fixdir, os.path.join(work, "down.out"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--sogo", action="store_true", help="against the SOGo fixture instead of Radicale")
    ap.add_argument("--sogo-fixture", help="a running fixture's DIR (else one is started)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="abqd-dav-", dir="/tmp")
    passed = failed = 0
    rad = None
    if args.sogo:
        args.password = "secret"  # the fixture's users
        try:
            results = run_sogo(args, work)
        except (Failure, check_native.Failure) as e:
            results = [(False, str(e))]
        for good, what in results:
            print("%s  %s" % ("ok  " if good else "FAIL", what), flush=True)
        passed = sum(1 for g, _ in results if g)
        failed = len(results) - passed
        print("%d passed, %d failed" % (passed, failed))
        if not failed and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return 1 if failed else 0
    args.password = PASSWORD
    try:
        rad = Radicale(work)
        h = Http(rad.port, "alice", PASSWORD)
        mkcalendar(h, "/alice/calendar/", "Calendar", "VEVENT", "#2E7D32FF")
        mkcalendar(h, "/alice/tasks/", "Tasks", "VTODO")
        mkaddressbook(h, "/alice/contacts/", "Contacts")
        etags = {}
        for href, name in (("/alice/calendar/standup.ics", "weekly_standup.ics"),
                           ("/alice/calendar/holiday.ics", "holiday_allday.ics"),
                           ("/alice/tasks/report-2026q4.ics", "quarterly_report.ics"),
                           ("/alice/contacts/dave.vcf", "dave_example.vcf"),
                           ("/alice/contacts/zoe.vcf", "zoe_mueller.vcf")):
            etags[href] = put_file(h, href, name)
        cases = [
            ("discover", lambda: case_discover(args, rad)),
            ("list", lambda: case_list(args, rad, etags)),
            ("sync", lambda: case_sync(args, rad, h, etags)),
            ("multiget", lambda: case_multiget(args, rad, etags)),
            ("writes", lambda: case_writes(args, rad, h, work)),
            ("auth", lambda: case_auth(args, rad)),
            ("cancel", lambda: case_cancel(args, rad)),
            ("scripted", lambda: case_scripted(args, work)),
        ]
        for name, fn in cases:
            try:
                t0 = time.monotonic()
                what = fn()
                print("ok    %s (%.1f s)" % (what, time.monotonic() - t0), flush=True)
                passed += 1
            except Failure as e:
                print("FAIL  %s: %s" % (name, e), flush=True)
                failed += 1
        leaked = [o for o in OUTPUTS if PASSWORD in o]
        if leaked:
            print("FAIL  the password appears in the driver's output: %s" % leaked[0][:300])
            failed += 1
        else:
            print("ok    the password appears in none of the %d driver outputs" % len(OUTPUTS))
            passed += 1
    except Failure as e:
        print("FAIL  %s" % e, flush=True)
        failed += 1
    finally:
        if rad is not None:
            rad.stop()
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        print("      work dir kept: %s" % work, file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
