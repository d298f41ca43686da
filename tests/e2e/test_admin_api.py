#!/usr/bin/env python3
"""The admin API (docs/api.md) of a real abqd, driven over HTTP as a script or
the console would.

Run by CTest as:  python3 test_admin_api.py --abqd PATH --abqctl PATH [unittest args]

It reuses the end-to-end harness (harness.py) (a real SOGo fixture, abqd in
the foreground with a generated config, the real abqctl) and adds [smtp] from
(towards a port nobody listens on) so that the user's notices are queued in
the outbox as abqctl queues them. Administrators are made with the real
`abqctl admin add` and `abqctl admin token`. Each test asserts what an
administrator's HTTP client or the phone sees. Python 3 standard library only.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as e2e  # noqa: E402
from harness import (Phone, Timer, assert_status_doc, free_ports, held_ping,  # noqa: E402
                      new_id)

H = None
ADMIN, PASSWORD = "alice.admin", "correct horse battery"
RATE_ADMIN, RATE_PASSWORD = "rate.admin", "another good password"


class AdminHarness(e2e.Harness):
    """The e2e harness, with notices on ([smtp] from) so that allow queues them."""

    def config_text(self):
        (self.dead_smtp_port,) = free_ports(1)
        # /metrics behind the login here (test_60's side abqd has it public).
        text = super().config_text().replace("metrics_public = yes\n", "")
        return text + (
            "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = abqd@example.test\n" % self.dead_smtp_port)

    def ctl_input(self, text, *words):
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        env.pop("SUDO_USER", None)
        return subprocess.run([e2e.ABQCTL, "-c", self.conf] + [str(w) for w in words],
                              input=text, capture_output=True, text=True, timeout=60, env=env)


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.body = status, body
        self.headers = headers  # list of (name lower, value)

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:400])


class Client:
    """An admin's HTTP client: keeps the session cookie and the CSRF token."""

    def __init__(self, source=None, token=None):
        self.source, self.token = source, token
        self.cookie, self.csrf = None, None

    def request(self, method, path, body=None, headers=None, csrf=True, raw=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", H.admin_port, timeout=timeout,
                                          source_address=(self.source, 0) if self.source else None)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if self.cookie:
            h["Cookie"] = "abqd_session=" + self.cookie
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if csrf and self.csrf and method in ("POST", "PUT", "DELETE"):
            h.setdefault("X-CSRF-Token", self.csrf)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            resp = Resp(r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read())
        finally:
            conn.close()
        for c in resp.all("set-cookie"):
            name, _, rest = c.partition("=")
            if name == "abqd_session":
                self.cookie = rest.split(";")[0] or None
        return resp

    def login(self, tc, name=ADMIN, password=PASSWORD):
        r = self.request("POST", "/api/v1/login", {"name": name, "password": password})
        tc.assertEqual(r.status, 200, "login: %r" % r)
        self.csrf = r.json()["csrf"]
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body if body is not None else {}, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def q(s):
    return urllib.parse.quote(s, safe="")


class AdminAPI(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertIsNone(H.abqd.poll(), "abqd died (exit %s)" % H.abqd.returncode)
        self.c = Client()
        self.c.login(self)

    def tearDown(self):
        if H.abqd is not None and H.abqd.poll() is not None:
            self.fail("abqd died during the test (exit %s)" % H.abqd.returncode)

    def ok(self, r, what, status=200):
        self.assertEqual(r.status, status, "%s: %r" % (what, r))
        self.assertIn("application/json", r.header("content-type") or "", what)
        return r.json()

    def error(self, r, status, code, what):
        self.assertEqual(r.status, status, "%s: %r" % (what, r))
        doc = r.json()
        self.assertEqual(doc["error"]["status"], status, what)
        self.assertEqual(doc["error"]["code"], code, "%s: %r" % (what, doc))
        self.assertTrue(doc["error"]["message"], what)
        return doc["error"]["message"]

    def set_mode(self, mode):
        """abqMode for this test only: Permissive again when it ends, pass or fail."""
        doc = self.ok(self.c.put("/api/v1/attributes/global/abqMode", {"value": mode}),
                      "set abqMode " + mode)
        self.assertTrue(doc["ok"])
        self.addCleanup(lambda: self.c.put("/api/v1/attributes/global/abqMode",
                                           {"value": "Permissive"}))

    def quarantined_phone(self, tag, user="alice"):
        """A phone that lands in the quarantine mailbox (mode Interactive)."""
        phone = Phone(device_id=new_id(tag), user=user)
        fs = phone.folders(self)
        self.assertTrue(any(f[0].startswith("abq-") for f in fs), "not quarantined: %r" % fs)
        return phone

    # ------------------------------------------------------------ the gate
    def test_01_nothing_answers_without_a_session(self):
        anon = Client()
        for path in ("/api/v1/devices", "/api/v1/rules", "/api/v1/session", "/api/v1/events",
                     "/api/v1/outbox", "/metrics", "/api/v1/nonexistent"):
            self.error(anon.get(path), 401, "unauthenticated", "GET %s without a session" % path)
        self.error(anon.post("/api/v1/devices/alice/X/allow"), 401, "unauthenticated",
                   "POST allow without a session")
        r = anon.get("/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"), "healthz")
        r = anon.get("/")
        self.assertEqual(r.status, 200, "the page: %r" % r)
        self.assertIn("text/html", r.header("content-type"))

    def test_02_login_cookie_and_session(self):
        c = Client()
        self.error(c.post("/api/v1/login", {"name": ADMIN, "password": "wrong password"}), 401,
                   "unauthenticated", "wrong password")
        self.assertIsNone(c.cookie, "a cookie after a failed login")
        self.error(c.post("/api/v1/login", {"name": "nobody.here", "password": PASSWORD}), 401,
                   "unauthenticated", "unknown name")
        r = c.login(self)
        cookie = [x for x in r.all("set-cookie") if x.startswith("abqd_session=")][0]
        attrs = [a.strip() for a in cookie.split(";")]
        for a in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(a, attrs, "cookie attributes: %s" % cookie)
        self.assertNotIn("Secure", attrs, "Secure on a plain listener: %s" % cookie)
        self.assertEqual(len(c.cookie), 64, cookie)
        doc = r.json()
        self.assertEqual(doc["name"], ADMIN)
        s = self.ok(c.get("/api/v1/session"), "session")
        self.assertEqual(s, {"name": ADMIN, "csrf": doc["csrf"]})
        # The log names the admin and never the password or the cookie.
        time.sleep(0.2)
        log = H.log_text()
        self.assertIn("admin 127.0.0.1 %s GET /api/v1/session 200" % ADMIN, log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(c.cookie, log)
        # A forged cookie is no session.
        self.error(Client().get("/api/v1/session", headers={"Cookie": "abqd_session=" + "0" * 64}),
                   401, "unauthenticated", "forged cookie")

    def test_03_csrf(self):
        phone = Phone(device_id=new_id("csrf"))
        phone.folders(self)
        path = "/api/v1/devices/alice/%s/block" % phone.device_id
        self.error(self.c.post(path, csrf=False), 403, "csrf", "no X-CSRF-Token")
        self.error(self.c.post(path, headers={"X-CSRF-Token": "0" * 64}), 403, "csrf",
                   "a wrong X-CSRF-Token")
        other = Client()
        other.login(self)
        self.error(self.c.post(path, headers={"X-CSRF-Token": other.csrf}), 403, "csrf",
                   "another session's token")
        d = self.ok(self.c.get("/api/v1/devices/alice/%s" % phone.device_id), "device")
        self.assertEqual(d["device"]["state"], "Allowed", "refused requests changed nothing")
        self.assertEqual(d["entries"], [])

    def test_04_logout(self):
        c = Client()
        c.login(self)
        cookie = c.cookie
        self.error(c.post("/api/v1/logout", csrf=False), 403, "csrf", "logout without CSRF")
        r = c.post("/api/v1/logout")
        self.assertEqual(self.ok(r, "logout"), {"ok": True})
        self.assertIsNone(c.cookie, "logout does not clear the cookie: %r" % r.all("set-cookie"))
        c.cookie = cookie  # the old cookie replayed
        self.error(c.get("/api/v1/devices"), 401, "unauthenticated", "after logout")

    def test_04b_sessions_end_with_the_account(self):
        name = "gone.admin"
        p = H.ctl_input("first password\n", "admin", "add", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        c = Client()
        c.login(self, name, "first password")
        self.ok(c.get("/api/v1/session"), "session")
        time.sleep(1.1)  # the new password is set a second after the login
        p = H.ctl_input("second password\n", "admin", "passwd", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.error(c.get("/api/v1/session"), 401, "unauthenticated", "after passwd")
        c.login(self, name, "second password")
        self.ok(c.get("/api/v1/devices"), "the new session")
        p = H.ctl("admin", "delete", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.error(c.get("/api/v1/devices"), 401, "unauthenticated", "after admin delete")

    def test_05_bearer_tokens(self):
        p = H.ctl("admin", "token", ADMIN, "script", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        token = json.loads(p.stdout)["token"]
        self.assertRegex(token, r"^abq_[A-Za-z0-9_-]{43}$")
        t = Client(token=token)
        doc = self.ok(t.get("/api/v1/devices"), "devices with a token")
        self.assertIn("devices", doc)
        # No CSRF header is needed with a token.
        doc = self.ok(t.put("/api/v1/attributes/global/abqDiscoveryTimeout", {"value": "2h"}),
                      "PUT with a token")
        self.assertTrue(doc["ok"])
        attrs = self.ok(t.get("/api/v1/attributes"), "attributes")["attributes"]
        a = [x for x in attrs if x["name"] == "abqDiscoveryTimeout" and x["scope"] == "global"]
        self.assertEqual(len(a), 1, attrs)
        self.assertEqual((a[0]["value"], a[0]["setBy"]), ("2h", ADMIN))
        self.ok(t.delete("/api/v1/attributes/global/abqDiscoveryTimeout"), "unset")
        bad = Client(token=token[:-1] + ("A" if token[-1] != "A" else "B"))
        self.error(bad.get("/api/v1/devices"), 401, "unauthenticated", "a wrong token")
        self.error(Client(token="nonsense").get("/api/v1/devices"), 401, "unauthenticated",
                   "not a token")
        p = H.ctl("admin", "revoke", ADMIN, "script")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.error(t.get("/api/v1/devices"), 401, "unauthenticated", "a revoked token")
        log = H.log_text()
        self.assertNotIn(token, log, "the token reached the log")

    def test_06_failed_logins_are_limited(self):
        bad = Client(source="127.0.0.3")
        for i in range(10):
            self.error(bad.post("/api/v1/login", {"name": RATE_ADMIN, "password": "wrong %d" % i}),
                       401, "unauthenticated", "failure %d" % (i + 1))
        r = bad.post("/api/v1/login", {"name": RATE_ADMIN, "password": RATE_PASSWORD})
        self.error(r, 429, "rate_limited", "the 11th attempt, even with the right password")
        ra = r.header("retry-after")
        self.assertRegex(ra or "", r"^\d+$", "Retry-After: %r" % r.headers)
        self.assertTrue(0 < int(ra) <= 900, ra)
        # That address is refused for any name...
        r = bad.post("/api/v1/login", {"name": ADMIN, "password": PASSWORD})
        self.error(r, 429, "rate_limited", "the locked address, another admin")
        # ...while the administrator elsewhere still gets in.
        good = Client(source="127.0.0.4")
        self.assertEqual(good.login(self, RATE_ADMIN, RATE_PASSWORD).json()["name"], RATE_ADMIN)
        m = self.ok_text(self.c.get("/metrics"))
        line = [x for x in m.splitlines() if x.startswith("abqd_admin_login_failures_total")]
        self.assertTrue(line and float(line[0].split()[-1]) >= 10, line)

    def test_07_login_from_another_site_is_refused(self):
        """Login CSRF: a page elsewhere cannot log the browser in, right password or not."""
        creds = {"name": ADMIN, "password": PASSWORD}
        own = "http://127.0.0.1:%d" % H.admin_port
        for headers, what in (
                ({"Origin": "http://evil.example"}, "another site"),
                ({"Origin": "null"}, "an opaque origin (sandboxed frame, data: URL)"),
                ({"Origin": "http://127.0.0.1:%d" % (H.admin_port + 1)}, "another port"),
                ({"Origin": "https://127.0.0.1:%d" % H.admin_port}, "another scheme"),
                ({"Origin": "http://127.0.0.1"}, "no port"),
                ({"Origin": own + ".evil.example"}, "a longer host"),
                ({"Origin": "http://evil.example", "Referer": own + "/"},
                 "a foreign Origin with our Referer"),
                ({"Referer": "http://evil.example/login.html"}, "a Referer from elsewhere"),
                ({"Referer": "http://127.0.0.1:%d@evil.example/" % H.admin_port},
                 "a Referer whose host is elsewhere"),
                ({"Origin": "http://localhost:%d" % H.admin_port}, "another host name")):
            with self.subTest(what=what):
                c = Client()
                msg = self.error(c.post("/api/v1/login", creds, headers=headers), 403, "csrf",
                                 what)
                self.assertIn("another site", msg)
                self.assertIsNone(c.cookie, "%s: a session cookie" % what)
        # The console's own page, as a browser sends it, and as the Host header names it.
        for headers, what in (
                ({"Origin": own}, "our Origin"),
                ({"Origin": "HTTP://LocalHost:%d" % H.admin_port,
                  "Host": "localhost:%d" % H.admin_port}, "our Origin, in capitals"),
                ({"Referer": own + "/#/devices"}, "our Referer"),
                ({"Origin": "http://localhost:%d" % H.admin_port,
                  "Host": "localhost:%d" % H.admin_port}, "the Host header's name"),
                ({}, "a script: neither Origin nor Referer")):
            with self.subTest(what=what):
                c = Client()
                r = c.post("/api/v1/login", creds, headers=headers)
                self.assertEqual(r.status, 200, "%s: %r" % (what, r))
                self.assertIsNotNone(c.cookie, what)

    def test_08_login_takes_json_only(self):
        """A form (or an untyped body) cannot log in: only the console's own JSON."""
        body = json.dumps({"name": ADMIN, "password": PASSWORD}).encode()
        for ctype in ("text/plain", "text/plain; charset=utf-8",
                      "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/jsonx", "application/json-patch+json", "text/json", ""):
            with self.subTest(ctype=ctype):
                c = Client()
                headers = {"Content-Type": ctype} if ctype else {}
                msg = self.error(c.request("POST", "/api/v1/login", raw=body, headers=headers),
                                 400, "bad_request", "Content-Type %r" % ctype)
                self.assertIn("application/json", msg)
                self.assertIsNone(c.cookie, ctype)
        for ctype in ("application/json", "application/json; charset=utf-8",
                      "Application/JSON", "application/json ;charset=UTF-8"):
            with self.subTest(ctype=ctype):
                c = Client()
                r = c.request("POST", "/api/v1/login", raw=body, headers={"Content-Type": ctype})
                self.assertEqual(r.status, 200, "Content-Type %r: %r" % (ctype, r))

    def test_09_login_name_cannot_forge_log_lines(self):
        """A login name with a line break, CR or escape stays on its own log line, escaped."""
        c = Client(source="127.0.0.5")
        forged = "2026-01-01t00:00:00z warn: admin: 10.9.9.9: forged"
        names = ("nobody\n" + forged, "nobody\r" + forged, "nobody\x1b[2J\x9b" + forged)
        for name in names:
            self.error(c.post("/api/v1/login", {"name": name, "password": "wrong"}), 401,
                       "unauthenticated", "name %r" % name)
        time.sleep(0.2)
        log = H.log_text()
        lines = [l for l in log.splitlines() if "forged" in l]
        self.assertEqual(len(lines), len(names), lines)
        for line in lines:
            self.assertFalse(line.startswith("2026-01-01t"), "a forged log line: %r" % line)
            self.assertIn("admin: 127.0.0.5: failed login as \"nobody\\x", line)
            self.assertTrue(all(c >= " " and not "\x7f" <= c <= "\x9f" for c in line),
                            "control characters in the log: %r" % line)
        self.assertIn('failed login as "nobody\\x0a' + forged + '"', log)
        self.assertIn('failed login as "nobody\\x0d' + forged + '"', log)
        self.assertIn('failed login as "nobody\\x1b[2j\\xc2\\x9b' + forged + '"', log)

    def ok_text(self, r):
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    # ------------------------------------------------------------ devices
    def test_10_allow_reaches_a_held_ping(self):
        """The story through the API: Interactive; a phone in the quarantine mailbox
        holds a Ping; Allow through the API ends it and the phone gets its mail."""
        self.set_mode("Interactive")
        self.ok(self.c.put("/api/v1/attributes/global/abqNotifyUserOnAllow", {"value": "TRUE"}),
                "notify on allow")
        self.addCleanup(lambda: self.c.delete("/api/v1/attributes/global/abqNotifyUserOnAllow"))
        phone = Phone(device_id=new_id("apiallow"), user="alice", version="16.1",
                      device_type="iPhone")
        fs = phone.folders(self)
        box = [f for f in fs if f[3] == "2"][0][0]
        self.assertTrue(box.startswith("abq-"), fs)
        # The phone reads its quarantine Inbox (the alert), so that its Ping waits.
        key = phone.sync0(self, box)
        phone.sync_changes(self, box, key)
        # The queue, newest first, shows it.
        doc = self.ok(self.c.get("/api/v1/devices?state=Quarantined&sort=-firstSeen"), "queue")
        ids = [d["deviceId"].upper() for d in doc["devices"]]
        self.assertIn(phone.device_id.upper(), ids)
        self.assertEqual(ids[0], phone.device_id.upper(), "newest first: %r" % ids)
        th, result = held_ping(phone, box, 120)
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % result)
        t0 = time.monotonic()
        doc = self.ok(self.c.post("/api/v1/devices/alice/%s/allow" % phone.device_id), "allow")
        self.assertEqual(doc["dryRun"], False)
        self.assertEqual(len(doc["changed"]), 1, doc)
        ch = doc["changed"][0]
        self.assertEqual((ch["from"]["state"], ch["to"]["state"], ch["to"]["reason"]),
                         ("Quarantined", "Allowed", "Individual"), doc)
        th.join(10)
        self.assertFalse(th.is_alive(), "the Ping is still held 10 s after the API's allow")
        self.assertNotIn("error", result, result.get("error"))
        print("  [time] %-55s %6.2f s" % ("held Ping answered after the API's allow",
                                          result["t"] - t0))
        assert_status_doc(self, result["resp"], "Ping", 7, "the allowed phone's held Ping")
        fs = phone.folders(self)
        self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
        inbox = [f for f in fs if f[3] == "2"][0][0]
        key = phone.sync0(self, inbox)
        _, subjects = phone.sync_changes(self, inbox, key)
        self.assertIn("Welcome to the fixture", subjects)
        # Audited: history names the administrator.
        d = self.ok(self.c.get("/api/v1/devices/alice/%s" % phone.device_id), "device")
        self.assertEqual(d["device"]["stateBy"], ADMIN)
        whos = {(h["what"], h["who"]) for h in d["history"]}
        self.assertIn(("entry", ADMIN), whos, d["history"])
        self.assertEqual(d["entries"][0]["createdBy"], ADMIN)
        # The user's notice is queued as abqctl queues it.
        notices = self.ok(self.c.get("/api/v1/outbox"), "outbox")["notices"]
        kinds = {n["kind"] for n in notices
                 if (n["deviceId"] or "").upper() == phone.device_id.upper()}
        self.assertIn("user-allowed", kinds, notices)
        self.assertIn("user-quarantined", kinds, notices)

    def test_11_device_listing(self):
        a = Phone(device_id=new_id("lista"), user="alice", device_type="WindowsPhone",
                  user_agent="Lister/7.1")
        b = Phone(device_id=new_id("listb"), user="bob", device_type="Android")
        a.folders(self)
        b.folders(self)
        doc = self.ok(self.c.get("/api/v1/devices?limit=1000"), "all")
        self.assertEqual(doc["total"], len(doc["devices"]))
        self.assertEqual((doc["offset"], doc["limit"]), (0, 1000))
        accounts = [d["account"] for d in doc["devices"]]
        self.assertEqual(accounts, sorted(accounts), "default order is by account")
        doc = self.ok(self.c.get("/api/v1/devices?type=windowsph"), "type")
        self.assertEqual([d["deviceId"].upper() for d in doc["devices"]], [a.device_id.upper()])
        doc = self.ok(self.c.get("/api/v1/devices?q=" + q("lister/7")), "q")
        self.assertEqual([d["deviceId"].upper() for d in doc["devices"]], [a.device_id.upper()])
        doc = self.ok(self.c.get("/api/v1/devices?account=bob&type=android"), "account")
        self.assertIn(b.device_id.upper(), [d["deviceId"].upper() for d in doc["devices"]])
        self.assertTrue(all(d["account"] == "bob@example.test" for d in doc["devices"]))
        doc = self.ok(self.c.get("/api/v1/devices?domain=example.test&limit=1000"), "domain")
        self.assertGreaterEqual(doc["total"], 2)
        doc = self.ok(self.c.get("/api/v1/devices?domain=elsewhere.example"), "other domain")
        self.assertEqual(doc["total"], 0)
        # Paging is stable and sums up.
        total = self.ok(self.c.get("/api/v1/devices?limit=1000"), "all")["total"]
        seen = []
        for off in range(0, total, 2):
            page = self.ok(self.c.get("/api/v1/devices?limit=2&offset=%d" % off), "page")
            self.assertEqual(page["total"], total)
            seen += [(d["account"], d["deviceId"]) for d in page["devices"]]
        self.assertEqual(len(seen), total)
        self.assertEqual(len(set(seen)), total)
        doc = self.ok(self.c.get("/api/v1/devices?sort=-lastSeen&limit=1000"), "by last seen")
        ls = [d["lastSeen"] for d in doc["devices"]]
        self.assertEqual(ls, sorted(ls, reverse=True))
        for sort in ("account", "-firstSeen", "-lastSeen"):
            future = self.ok(self.c.get("/api/v1/devices?seen_since=2100-01-01&sort=" + sort),
                             "nothing matches, sorted by " + sort)
            self.assertEqual((future["total"], future["devices"]), (0, []))
        for bad in ("state=Maybe", "limit=0", "limit=1001", "offset=-1", "sort=model",
                    "seen_since=yesterday", "account=" + q("a b")):
            self.error(self.c.get("/api/v1/devices?" + bad), 400, "bad_request", bad)

    def test_11b_entries_not_seen_yet_with_unseen(self):
        """?unseen=true lists after the devices the entries no device has used yet, as
        abqctl mobile abq list does; without it the listing is the devices alone."""
        dev = new_id("unseen").upper()
        self.ok(self.c.post("/api/v1/entries", {"deviceId": dev, "account": "carol",
                                                 "state": "Blocked"}), "entry")
        self.addCleanup(lambda: self.c.delete("/api/v1/entries?deviceId=%s&account=carol" % dev))
        doc = self.ok(self.c.get("/api/v1/devices?unseen=true&q=" + dev), "unseen")
        self.assertEqual(doc["total"], 1, doc)
        row = doc["devices"][0]
        self.assertEqual((row["account"], row["deviceId"], row["state"], row["reason"],
                          row["lastSeen"], row["notSeenYet"]),
                         ("carol@example.test", dev, "Blocked", "Individual", None, True))
        ctl = [d for d in H.ctl_json(self, "mobile", "abq", "list", "account", "carol")["devices"]
               if d["deviceId"] == dev]
        self.assertEqual(ctl, [row], "the row differs from abqctl list's")
        self.assertEqual(self.ok(self.c.get("/api/v1/devices?q=" + dev), "default")["total"], 0)
        self.assertEqual(self.ok(self.c.get("/api/v1/devices?unseen=true&type=x&q=" + dev),
                                 "type filter")["total"], 0)
        self.assertEqual(self.ok(self.c.get("/api/v1/devices?unseen=true&state=Allowed&q=" +
                                            dev), "other state")["total"], 0)
        # Paging goes on through the entries after the devices.
        every = self.ok(self.c.get("/api/v1/devices?unseen=true&limit=1000"), "all")
        self.assertEqual(every["total"], len(every["devices"]))
        flags = [bool(d.get("notSeenYet")) for d in every["devices"]]
        self.assertEqual(flags, sorted(flags), "entries come after the devices")
        seen = []
        for off in range(0, every["total"], 3):
            page = self.ok(self.c.get("/api/v1/devices?unseen=true&limit=3&offset=%d" % off),
                           "page")
            self.assertEqual(page["total"], every["total"])
            seen += page["devices"]
        self.assertEqual(seen, every["devices"])
        self.error(self.c.get("/api/v1/devices?unseen=maybe"), 400, "bad_request", "unseen")

    def test_12_device_detail_matches_abqctl(self):
        phone = Phone(device_id=new_id("detail"))
        phone.folders(self)
        api = self.ok(self.c.get("/api/v1/devices/alice/%s" % phone.device_id), "detail")
        ctl = H.ctl_json(self, "mobile", "getDeviceInfo", "alice", phone.device_id)
        self.assertEqual(api["device"], ctl["device"], "the device object differs from abqctl's")
        self.assertEqual(api["entries"], ctl["entries"])
        hist = H.ctl_json(self, "mobile", "abq", "history", phone.device_id, "account", "alice",
                          "limit", "200")["history"]
        self.assertEqual(api["history"], hist)
        rules_api = self.ok(self.c.get("/api/v1/rules"), "rules")
        self.assertEqual(rules_api, H.ctl_json(self, "mobile", "abq", "listRules"))
        entries_api = self.ok(self.c.get("/api/v1/entries"), "entries")
        self.assertEqual(entries_api, H.ctl_json(self, "mobile", "abq", "export"))
        outbox_api = self.ok(self.c.get("/api/v1/outbox"), "outbox")
        self.assertEqual(outbox_api, H.ctl_json(self, "mobile", "abq", "outbox"))
        # explain, both forms, as abqctl explains.
        ex = self.ok(self.c.get("/api/v1/devices/alice/%s/explain" % phone.device_id), "explain")
        self.assertEqual(ex, H.ctl_json(self, "mobile", "abq", "explain", phone.device_id,
                                        "account", "alice"))
        ex2 = self.ok(self.c.get("/api/v1/explain?account=bob&deviceId=NEVERSEEN1"), "explain new")
        self.assertEqual(ex2["known"], False)
        self.assertEqual(ex2["state"], "Allowed")  # Permissive
        self.error(self.c.get("/api/v1/explain?account=bob"), 400, "bad_request", "no deviceId")

    def test_13_unknown_device_and_bad_paths(self):
        for m, path in (("GET", "/api/v1/devices/alice/NOSUCHDEVICE"),
                        ("POST", "/api/v1/devices/alice/NOSUCHDEVICE/allow"),
                        ("DELETE", "/api/v1/devices/alice/NOSUCHDEVICE")):
            msg = self.error(self.c.request(m, path, {} if m == "POST" else None), 404,
                             "not_found", "%s unknown device" % m)
            self.assertIn("NOSUCHDEVICE", msg)
        self.error(self.c.get("/api/v1/devices/alice/a%20b"), 400, "bad_request", "bad DeviceId")
        self.error(self.c.get("/api/v1/nothing"), 404, "not_found", "unknown endpoint")
        self.error(self.c.get("/api/v1/devices/alice/X/fly"), 404, "not_found", "unknown action")
        r = self.c.put("/api/v1/devices", {})
        self.error(r, 405, "method_not_allowed", "PUT devices")
        self.assertEqual(r.header("allow"), "GET")
        self.error(self.c.get("/api/v1/devices/alice/X/allow"), 405, "method_not_allowed",
                   "GET allow")

    def test_13b_routes_answer_405_and_404_by_path(self):
        """Each path answers 405 naming its own methods, and 404 naming what is there."""
        for m, path, allow in (
                ("PUT", "/api/v1/devices", "GET"),
                ("POST", "/api/v1/devices/alice/X", "GET, DELETE"),
                ("POST", "/api/v1/devices/alice/X/explain", "GET"),
                ("DELETE", "/api/v1/devices/alice/X/block", "POST"),
                ("PUT", "/api/v1/explain", "GET"),
                ("PUT", "/api/v1/entries", "GET, POST, DELETE"),
                ("DELETE", "/api/v1/rules", "GET, POST"),
                ("PUT", "/api/v1/rules/reorder", "POST"),
                ("GET", "/api/v1/rules/12345", "PUT, DELETE"),
                ("POST", "/api/v1/attributes", "GET"),
                ("GET", "/api/v1/attributes/global/abqMode", "PUT, DELETE"),
                ("POST", "/api/v1/attributes/domain/example.test/abqMode", "PUT, DELETE"),
                ("DELETE", "/api/v1/templates", "GET"),
                ("GET", "/api/v1/templates/quarantined/en", "PUT, DELETE"),
                ("POST", "/api/v1/outbox", "GET")):
            r = self.c.request(m, path, {} if m in ("POST", "PUT") else None)
            self.error(r, 405, "method_not_allowed", "%s %s" % (m, path))
            self.assertEqual(r.header("allow"), allow, "%s %s" % (m, path))
        for path, hint in (("/api/v1/devices/alice", "nothing at"),
                           ("/api/v1/entries/x", "nothing at"),
                           ("/api/v1/rules/1/2", "nothing at"),
                           ("/api/v1/outbox/x", "nothing at"),
                           ("/api/v1/attributes/global", "attributes/global/NAME"),
                           ("/api/v1/attributes/account/abqMode", "attributes/account/A/NAME"),
                           ("/api/v1/templates/quarantined", "templates/KIND/LOCALE"),
                           ("/api/v1/explain/x", "no endpoint")):
            msg = self.error(self.c.get(path), 404, "not_found", path)
            self.assertIn(hint, msg, path)

    def test_14_block_quarantine_delete_dry_run(self):
        phone = Phone(device_id=new_id("bqd"), user="bob")
        phone.folders(self)
        base = "/api/v1/devices/bob/%s" % phone.device_id
        doc = self.ok(self.c.post(base + "/block", {"dryRun": True}), "dry block")
        self.assertEqual(doc["dryRun"], True)
        self.assertEqual(doc["changed"][0]["to"]["state"], "Blocked")
        d = self.ok(self.c.get(base), "after dry run")["device"]
        self.assertEqual(d["state"], "Allowed", "a dry run wrote")
        doc = self.ok(self.c.post(base + "/block"), "block")
        self.assertEqual(doc["changed"][0]["to"]["state"], "Blocked")
        time.sleep(1.5)  # the EAS side reads the change log once a second
        assert_status_doc(self, phone.foldersync(), "FolderSync", 129, "blocked through the API")
        doc = self.ok(self.c.post(base + "/quarantine", {"allAccounts": True}), "quarantine all")
        ents = self.ok(self.c.get(base), "entries")["entries"]
        self.assertIn({"deviceId": phone.device_id, "account": None, "state": "Quarantined"},
                      [{k: x[k] for k in ("deviceId", "account", "state")} for x in ents])
        self.error(self.c.post(base + "/allow", {"allAccounts": "yes"}), 400, "bad_request",
                   "allAccounts not a boolean")
        doc = self.ok(self.c.delete(base), "delete")
        self.assertGreaterEqual(doc["affected"], 1)
        self.error(self.c.get(base), 404, "not_found", "after delete")
        self.ok(self.c.delete("/api/v1/entries?deviceId=%s" % phone.device_id), "entries gone")

    def test_14b_reset_device(self):
        """POST .../reset removes the quarantined phone's sync state (the quarantine
        mailbox's FolderSync state), dry run first; history says so; 404 for an
        unknown device."""
        self.set_mode("Interactive")
        phone = self.quarantined_phone("rst", user="bob")
        base = "/api/v1/devices/bob/%s" % phone.device_id
        doc = self.ok(self.c.post(base + "/reset", {"dryRun": True}), "dry reset")
        self.assertEqual(doc["dryRun"], True)
        n = doc["affected"]
        self.assertGreaterEqual(n, 1, "the quarantine mailbox kept no state: %r" % doc)
        doc = self.ok(self.c.post(base + "/reset"), "reset")
        self.assertEqual((doc["dryRun"], doc["affected"], doc["changed"]), (False, n, []))
        doc = self.ok(self.c.post(base + "/reset"), "reset again")
        self.assertEqual(doc["affected"], 0)
        hist = self.ok(self.c.get(base), "detail")["history"]
        self.assertEqual([(h["old"], h["new"]) for h in hist if h["what"] == "reset"][:2],
                         [("0 collections", "none"),
                          ("%d collection%s" % (n, "" if n == 1 else "s"), "none")])
        self.error(self.c.post("/api/v1/devices/bob/NOSUCHDEV1/reset"), 404, "not_found",
                   "reset of an unknown device")
        # The phone starts over: a FolderSync from 0 still works.
        phone.folders(self)

    def test_15_entries(self):
        dev = new_id("entry")
        doc = self.ok(self.c.post("/api/v1/entries", {"deviceId": dev, "account": "Bob",
                                                      "state": "Blocked"}), "entry")
        self.assertEqual(doc["affected"], 1)
        ents = self.ok(self.c.get("/api/v1/entries?state=Blocked"), "entries")["entries"]
        mine = [x for x in ents if x["deviceId"] == dev]
        self.assertEqual(len(mine), 1, ents)
        self.assertEqual((mine[0]["account"], mine[0]["createdBy"]), ("bob@example.test", ADMIN))
        for body in ({"account": "bob", "state": "Blocked"}, {"deviceId": dev, "state": "Maybe"},
                     {"deviceId": dev, "state": "Discovery"}, {"deviceId": 5, "state": "Allowed"},
                     {"deviceId": "a/b", "state": "Allowed"}):
            self.error(self.c.post("/api/v1/entries", body), 400, "bad_request", repr(body))
        self.ok(self.c.delete("/api/v1/entries?deviceId=%s&account=bob" % dev), "delete entry")
        self.error(self.c.delete("/api/v1/entries?deviceId=%s&account=bob" % dev), 404,
                   "not_found", "delete again")
        self.error(self.c.delete("/api/v1/entries"), 400, "bad_request", "no deviceId")

    # -------------------------------------------------------------- rules
    def test_20_rules(self):
        bad = {"characteristic": "DeviceModel", "match": "regex", "pattern": "SM-(",
               "level": "Blocked", "order": 10}
        msg = self.error(self.c.post("/api/v1/rules", bad), 400, "bad_request", "bad regex")
        self.assertRegex(msg, r"(?i)regex|parenthes|missing", msg)
        for b in ({"pattern": "x", "level": "Blocked"},
                  {"pattern": "x", "level": "Nope", "order": 1},
                  {"pattern": "x", "level": "Blocked", "order": 1, "match": "fuzzy"},
                  {"pattern": "x", "level": "Blocked", "order": 1, "characteristic": "Color"},
                  {"pattern": "", "level": "Blocked", "order": 1},
                  {"pattern": "x", "level": "Blocked", "order": "1"}):
            self.error(self.c.post("/api/v1/rules", b), 400, "bad_request", repr(b))
        dom = "rules-%d.example" % os.getpid()
        ids = []
        for i, pat in enumerate(("SM-*", "Pixel*", "iPhone*")):
            doc = self.ok(self.c.post("/api/v1/rules", {
                "characteristic": "DeviceModel", "match": "glob", "pattern": pat,
                "level": "Quarantined", "order": 100 - i, "domain": dom}), "create " + pat)
            self.assertIsInstance(doc["id"], int)
            ids.append(doc["id"])
        listed = self.ok(self.c.get("/api/v1/rules?domain=" + dom), "list")["rules"]
        self.assertEqual([r["id"] for r in listed], list(reversed(ids)), "evaluation order")
        self.assertTrue(all(r["createdBy"] == ADMIN for r in listed))
        doc = self.ok(self.c.put("/api/v1/rules/%d" % ids[0], {
            "characteristic": "DeviceModel", "match": "glob", "pattern": "SM-G*",
            "level": "Blocked", "order": 5, "domain": dom}), "change")
        self.assertEqual(doc["id"], ids[0])
        one = [r for r in self.ok(self.c.get("/api/v1/rules?domain=" + dom), "list")["rules"]
               if r["id"] == ids[0]][0]
        self.assertEqual((one["pattern"], one["level"], one["order"]), ("SM-G*", "Blocked", 5))
        self.error(self.c.put("/api/v1/rules/%d" % ids[0], dict(bad, domain=dom)), 400,
                   "bad_request", "PUT a bad regex")
        self.error(self.c.put("/api/v1/rules/999999", {"pattern": "x", "level": "Blocked",
                                                       "order": 1}), 404, "not_found",
                   "PUT unknown rule")
        # reorder: every rule of the scope once.
        self.error(self.c.post("/api/v1/rules/reorder", {"domain": dom, "ids": ids[:2]}), 400,
                   "bad_request", "reorder with a rule missing")
        self.error(self.c.post("/api/v1/rules/reorder", {"domain": dom, "ids": [ids[0]] * 3}),
                   400, "bad_request", "reorder naming a rule twice")
        self.ok(self.c.post("/api/v1/rules/reorder", {"domain": dom, "ids": ids}), "reorder")
        listed = self.ok(self.c.get("/api/v1/rules?domain=" + dom), "list")["rules"]
        self.assertEqual([(r["id"], r["order"]) for r in listed],
                         [(ids[0], 10), (ids[1], 20), (ids[2], 30)])
        for i in ids:
            self.ok(self.c.delete("/api/v1/rules/%d" % i), "delete")
        self.error(self.c.delete("/api/v1/rules/%d" % ids[0]), 404, "not_found", "delete again")
        self.assertEqual(self.ok(self.c.get("/api/v1/rules?domain=" + dom), "list")["rules"], [])

    # --------------------------------------------------------- attributes
    def test_21_attributes(self):
        doc = self.ok(self.c.get("/api/v1/attributes"), "attributes")
        known = {k["name"]: k for k in doc["known"]}
        self.assertIn("abqMode", known)
        self.assertIn("Interactive", known["abqMode"]["values"])
        self.error(self.c.put("/api/v1/attributes/global/abqMode", {"value": "Sometimes"}), 400,
                   "bad_request", "bad mode")
        self.error(self.c.put("/api/v1/attributes/global/abqNope", {"value": "1"}), 404,
                   "not_found", "unknown attribute")
        self.error(self.c.put("/api/v1/attributes/global/abqMode", {}), 400, "bad_request",
                   "no value")
        doc = self.ok(self.c.put("/api/v1/attributes/domain/Other.Example/abqMode",
                                 {"value": "strict"}), "domain mode")
        attrs = self.ok(self.c.get("/api/v1/attributes"), "attributes")["attributes"]
        mine = [a for a in attrs if a["scope"] == "domain" and a["target"] == "other.example"]
        self.assertEqual([(a["name"], a["value"], a["setBy"]) for a in mine],
                         [("abqMode", "Strict", ADMIN)])
        self.ok(self.c.put("/api/v1/attributes/account/bob/abqMaxDevicesPerAccount",
                           {"value": "50", "dryRun": True}), "dry run")
        attrs = self.ok(self.c.get("/api/v1/attributes"), "attributes")["attributes"]
        self.assertFalse([a for a in attrs if a["scope"] == "account"], "a dry run wrote")
        self.ok(self.c.delete("/api/v1/attributes/domain/other.example/abqMode"), "unset")
        attrs = self.ok(self.c.get("/api/v1/attributes"), "attributes")["attributes"]
        self.assertFalse([a for a in attrs if a["target"] == "other.example"])
        self.error(self.c.put("/api/v1/attributes/planet/x/abqMode", {"value": "Strict"}), 404,
                   "not_found", "unknown scope")

    # ---------------------------------------------------------- templates
    def test_22_templates(self):
        path = "/api/v1/templates/quarantined/de?domain=example.test"
        doc = self.ok(self.c.put(path, {"subject": "Ihr Gerät wartet", "bodyPlain": "Hallo"}),
                      "set")
        self.assertEqual(doc["template"]["subject"], "Ihr Gerät wartet")
        doc = self.ok(self.c.put(path, {"replyTo": "help@example.test"}), "set more")
        self.assertEqual(doc["template"]["bodyPlain"], "Hallo", "other texts kept")
        ts = self.ok(self.c.get("/api/v1/templates"), "list")["templates"]
        mine = [t for t in ts if t["domain"] == "example.test" and t["locale"] == "de"]
        self.assertEqual(len(mine), 1, ts)
        self.assertEqual((mine[0]["kind"], mine[0]["scope"], mine[0]["replyTo"], mine[0]["setBy"]),
                         ("quarantined", "domain", "help@example.test", ADMIN))
        ctl = H.ctl_json(self, "mobile", "abq", "getABQMessage", "domain", "example.test",
                         "quarantined", "de")
        self.assertEqual(mine[0], ctl, "the template differs from abqctl's")
        self.error(self.c.put(path, {}), 400, "bad_request", "nothing to set")
        self.error(self.c.put("/api/v1/templates/sunny/de", {"subject": "x"}), 400,
                   "bad_request", "bad kind")
        self.error(self.c.put("/api/v1/templates/blocked/d%20e", {"subject": "x"}), 400,
                   "bad_request", "bad locale")
        self.assertEqual(self.ok(self.c.delete(path), "delete"), {"deleted": 1})
        self.error(self.c.delete(path), 404, "not_found", "delete again")

    def test_22b_templates_are_written_through_the_registry(self):
        """A template set or deleted through the API is in history under the admin's name,
        as every other change (docs/api.md: same history rows, same change-log row)."""
        path = "/api/v1/templates/blocked/fr?domain=example.test"

        def last_template_row():
            hist = H.ctl_json(self, "mobile", "abq", "history", "limit", "10")["history"]
            rows = [h for h in hist if h["what"] == "template"]
            self.assertTrue(rows, "no template row in history: %r" % hist)
            return rows[0]

        self.ok(self.c.put(path, {"subject": "Appareil bloqué"}), "set")
        h = last_template_row()
        self.assertEqual((h["subject"], h["who"], h["new"]),
                         ("domain example.test blocked fr", ADMIN, "subject"), h)
        self.assertEqual(self.ok(self.c.delete(path), "delete"), {"deleted": 1})
        h = last_template_row()
        self.assertEqual((h["subject"], h["who"], h["new"]),
                         ("domain example.test blocked fr", ADMIN, "deleted"), h)

    def test_23_outbox_filter(self):
        doc = self.ok(self.c.get("/api/v1/outbox?state=queued"), "queued")
        self.assertTrue(all(n["state"] == "queued" for n in doc["notices"]))
        self.error(self.c.get("/api/v1/outbox?state=lost"), 400, "bad_request", "bad state")

    # ------------------------------------------------------ bodies and caps
    def test_30_bad_bodies(self):
        for raw in (b"{", b"[1,2]", b"\"x\"", b"{\"a\":1,\"a\":2}", b"\xff\xfe"):
            self.error(self.c.request("POST", "/api/v1/rules", raw=raw,
                                      headers={"Content-Type": "application/json"}),
                       400, "bad_request", "body %r" % raw)
        self.error(self.c.request("POST", "/api/v1/login", raw=b"name=x&password=y"), 400,
                   "bad_request", "login form body")
        self.error(self.c.post("/api/v1/login", {"name": ADMIN, "password": "x" * 5000}), 400,
                   "bad_request", "a 5000-byte password")
        self.error(self.c.post("/api/v1/login", {"name": ADMIN}), 400, "bad_request",
                   "no password")
        big = b"{\"pattern\":\"" + b"x" * (1024 * 1024 + 10) + b"\"}"
        try:
            r = self.c.request("POST", "/api/v1/rules", raw=big,
                               headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 413, "a body over 1 MiB: %r" % r)
        except (ConnectionError, http.client.HTTPException) as ex:
            self.fail("a body over 1 MiB: the connection broke instead of a 413: %r" % ex)
        # The daemon still answers.
        self.ok(self.c.get("/api/v1/session"), "after the big body")

    # ----------------------------------------------------------- events
    def test_40_events(self):
        s = socket.create_connection(("127.0.0.1", H.admin_port), timeout=10)
        try:
            s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                       "Cookie: abqd_session=%s\r\n\r\n" % self.c.cookie).encode())
            buf = b""
            while b"event: hello" not in buf:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "the stream closed: %r" % buf)
                buf += chunk
            self.assertIn(b"text/event-stream", buf)
            t0 = time.monotonic()
            self.ok(self.c.put("/api/v1/attributes/global/abqDiscoveryTimeout", {"value": "3h"}),
                    "a change")
            self.addCleanup(lambda: self.c.delete("/api/v1/attributes/global/abqDiscoveryTimeout"))
            while b"event: change" not in buf:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "the stream closed: %r" % buf)
                buf += chunk
            self.assertLess(time.monotonic() - t0, 3.0, "the change event came late")
            self.assertRegex(buf.decode(), r'event: change\r?\ndata: \{"seq": \d+\}')
        finally:
            s.close()
        anon = Client()
        self.error(anon.get("/api/v1/events"), 401, "unauthenticated", "events without a session")

    def open_stream(self, cookie):
        s = socket.create_connection(("127.0.0.1", H.admin_port), timeout=10)
        s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                   "Cookie: abqd_session=%s\r\n\r\n" % cookie).encode())
        buf = b""
        while b"\r\n\r\n" not in buf or (b" 200 " in buf.split(b"\r\n")[0]
                                           and b"event: hello" not in buf):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return s, buf

    def test_41_event_streams_are_capped_and_freed(self):
        socks = []
        try:
            for i in range(32):
                s, buf = self.open_stream(self.c.cookie)
                socks.append(s)
                self.assertIn(b"event: hello", buf, "stream %d: %r" % (i + 1, buf[:300]))
            s, buf = self.open_stream(self.c.cookie)
            socks.append(s)
            head = buf.split(b"\r\n")[0]
            self.assertIn(b" 503 ", head, "the 33rd stream: %r" % buf[:300])
            self.assertIn(b"Retry-After", buf)
        finally:
            for s in socks:
                s.close()
        # The streams of clients that went away are freed within seconds.
        t0 = time.monotonic()
        while True:
            s, buf = self.open_stream(self.c.cookie)
            s.close()
            if b"event: hello" in buf:
                break
            self.assertLess(time.monotonic() - t0, 5, "streams not freed: %r" % buf[:300])
            time.sleep(0.5)

    def test_60_tls_listener(self):
        """A side abqd with a plain and a tls: admin address: the cookie is Secure
        on TLS, the same account logs in on both."""
        import ssl
        work = os.path.join(H.work, "admin-tls")
        os.makedirs(work, exist_ok=True)
        pem = e2e.Case.make_cert(work, "admin")
        eas, plain, tls = free_ports(3)
        conf = os.path.join(work, "abqd.conf")
        with open(conf, "w") as f:
            f.write("[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\n[upstream]\nurl = %s\n"
                    "[store]\nurl = sqlite:abqd.db\n[tls]\ncert = %s\nkey = %s\n"
                    "[admin]\nlisten = 127.0.0.1:%d, tls:127.0.0.1:%d\nmetrics_public = yes\n" % (
                        eas, H.fixture_url, os.path.join(work, "cert.pem"),
                        os.path.join(work, "key.pem"), plain, tls))
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        p = subprocess.run([e2e.ABQCTL, "-c", conf, "init"], capture_output=True, text=True,
                           env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([e2e.ABQCTL, "-c", conf, "admin", "add", "tls.admin"],
                           input="tls password 1\n", capture_output=True, text=True, env=env,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        logf = open(os.path.join(work, "abqd.stderr"), "ab")
        proc = subprocess.Popen(e2e.WRAP + [e2e.ABQD, "-d", "-c", conf], stdout=logf,
                                stderr=subprocess.STDOUT, cwd=work, env=env)
        logf.close()
        try:
            deadline = time.monotonic() + (120 if e2e.WRAP else 20)
            while True:
                try:
                    socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                    break
                except OSError:
                    self.assertIsNone(proc.poll(), "the TLS abqd exited")
                    self.assertLess(time.monotonic(), deadline, "the TLS admin port")
                    time.sleep(0.1)
            ctx = ssl.create_default_context(cadata=pem)
            conn = http.client.HTTPSConnection("127.0.0.1", tls, timeout=20, context=ctx)
            conn.request("POST", "/api/v1/login",
                         body=json.dumps({"name": "tls.admin", "password": "tls password 1"}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body)
            cookie = r.getheader("Set-Cookie")
            self.assertIn("; Secure", cookie)
            conn.request("GET", "/api/v1/session",
                         headers={"Cookie": cookie.split(";")[0]})
            r = conn.getresponse()
            self.assertEqual(json.loads(r.read())["name"], "tls.admin")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=20)
            conn.request("POST", "/api/v1/login",
                         body=json.dumps({"name": "tls.admin", "password": "tls password 1"}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertNotIn("Secure", r.getheader("Set-Cookie"))
            # metrics_public = yes: /metrics without a session; the API still needs one.
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn(b"abqd_build_info", r.read())
            conn.request("GET", "/api/v1/devices")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
            conn.close()
            # SIGHUP: new TLS connections get the new certificate.
            pem2 = e2e.Case.make_cert(work, "admin-two")
            proc.send_signal(signal.SIGHUP)
            t0 = time.monotonic()
            while True:
                try:
                    conn = http.client.HTTPSConnection(
                        "127.0.0.1", tls, timeout=20,
                        context=ssl.create_default_context(cadata=pem2))
                    conn.request("GET", "/healthz")
                    r = conn.getresponse()
                    self.assertEqual(r.status, 200)
                    r.read()
                    conn.close()
                    break
                except ssl.SSLError as ex:
                    self.assertLess(time.monotonic() - t0, 10, "the new certificate: %r" % ex)
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(120 if e2e.WRAP else 20), 0, "the TLS abqd's exit status")

    # ------------------------------------------------------- metrics/health
    def test_50_metrics_need_a_session(self):
        r = self.c.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertIn("text/plain", r.header("content-type"))
        self.assertIn(b"abqd_build_info", r.body)
        self.assertIn(b"abqd_outbox_queued", r.body)

    def test_90_healthz_follows_the_upstream(self):
        r = Client().get("/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        phone = Phone(device_id=new_id("health"))
        with Timer("fixture down (upstream stopped)"):
            H.fixture_ok("down")
        try:
            phone.foldersync()  # fails: abqd learns the upstream is down
            r = Client().get("/healthz")
            self.assertEqual((r.status, r.body), (503, b"unhealthy\n"), "healthz, upstream down")
        finally:
            with Timer("fixture up again"):
                H.fixture_ok("up")
        phone.folders(self)
        r = Client().get("/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"), "healthz, upstream back")


def add_admins():
    for name, pw in ((ADMIN, PASSWORD), (RATE_ADMIN, RATE_PASSWORD)):
        p = H.ctl_input(pw + "\n", "admin", "add", name)
        if p.returncode != 0:
            raise AssertionError("abqctl admin add %s: rc %d: %s" % (name, p.returncode,
                                                                    p.stderr))


def stop_with_a_stream_open():
    """SIGTERM with an event stream open: a clean exit, no sanitizer report."""
    c = Client()
    r = c.request("POST", "/api/v1/login", {"name": ADMIN, "password": PASSWORD})
    stream = socket.create_connection(("127.0.0.1", H.admin_port), timeout=10)
    stream.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nCookie: abqd_session=%s"
                    "\r\n\r\n" % c.cookie).encode())
    if r.status != 200 or b"event: hello" not in stream.recv(4096):
        print("FAIL  no event stream before SIGTERM", flush=True)
        stream.close()
        return False
    try:
        return e2e.sigterm_clean_exit()
    finally:
        stream.close()


def main():
    global H
    H = AdminHarness()
    e2e.run_suite("admin API", H, after_start=add_admins, at_end=stop_with_a_stream_open)


if __name__ == "__main__":
    main()
