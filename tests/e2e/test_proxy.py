#!/usr/bin/env python3
"""End to end, allowed devices: what the upstream serves through abqd.

An allowed phone sees the upstream as if abqd were not there: FolderSync and Sync
answered as SOGo answers them, a held Ping returned when mail arrives, a phone gone
mid-Ping freeing its upstream connection, the base64 query, malformed requests
refused, no side door for a blocked device, OPTIONS, passthrough paths.

Run by CTest as:  python3 test_proxy.py --abqd PATH --abqctl PATH [--smtpd PATH] [unittest args]
(test_e2e.py runs this suite together with the others on one fixture). The
harness (harness.py) starts the fixture and abqd; see it for what a run does.
"""

import base64
import socket
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import harness as E
from harness import (ALICE_SEEDED, EAS_PATH, FOLDERSYNC_0, Phone, TIMINGS, WBXML_TYPE, decode, new_id, ping_xml, settings_xml, text_of, wbxml)


class ProxyTests(E.Case):
    maxDiff = None

    def test_01_permitted_device_sees_the_upstream(self):
        """FolderSync and Sync through abqd return what SOGo returns directly."""
        via = Phone(device_id=new_id("via"))
        direct = Phone(device_id=new_id("direct"), direct=True)

        f_via, f_direct = via.folders(self), direct.folders(self)
        self.assertEqual(sorted(f_via), sorted(f_direct),
                         "folders through abqd differ from SOGo's own answer")
        names = {(n, t) for _, _, n, t in f_via}
        self.assertIn("2", {t for _, t in names}, "no Inbox: %r" % f_via)
        print("  folders through abqd: %s" % ", ".join("%s(%s)" % nt for nt in sorted(names)))

        inbox_v = [f[0] for f in f_via if f[3] == "2"][0]
        inbox_d = [f[0] for f in f_direct if f[3] == "2"][0]
        key_v = via.sync0(self, inbox_v)
        key_d = direct.sync0(self, inbox_d)
        _, subj_v = via.sync_changes(self, inbox_v, key_v)
        _, subj_d = direct.sync_changes(self, inbox_d, key_d)
        self.assertEqual(sorted(subj_v), sorted(subj_d),
                         "Inbox subjects through abqd differ from SOGo's own answer")
        for s in ALICE_SEEDED:
            self.assertIn(s, subj_v, "seeded subject missing through abqd")
        print("  subjects through abqd: %s" % "; ".join(subj_v))

        d = self.device_info("alice", via.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Allowed", "Mode"), d)
        self.assertEqual(d["deviceType"], "SmartPhone")
        self.assertEqual(d["easVersion"], "14.1")

    def test_02_ping_returns_when_mail_arrives(self):
        phone = Phone(device_id=new_id("ping"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, subjects = phone.sync_changes(self, inbox, key)
        self.assertTrue(subjects)
        key, _ = phone.sync_changes(self, inbox, key)  # confirm, as phones do

        subject = "Ping through abqd %s" % uuid.uuid4().hex[:8]
        body = wbxml(ping_xml(inbox, 20))
        result = {}

        def ping():
            try:
                result["resp"] = phone.post("Ping", body, timeout=90)
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e
            result["t"] = time.monotonic()

        th = threading.Thread(target=ping, daemon=True)
        t_start = time.monotonic()
        th.start()
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "Ping returned before any mail arrived: %r" % result)
        E.H.fixture_ok("deliver", "alice", subject)
        t_deliver = time.monotonic()
        th.join(30)
        self.assertFalse(th.is_alive(), "Ping still held 30 s after the delivery")
        self.assertNotIn("error", result, "Ping failed: %r" % result.get("error"))
        r = result["resp"]
        self.assertEqual(r.status, 200, "Ping: %r" % r)
        doc = r.doc()
        self.assertEqual(doc.tag, "Ping")
        self.assertEqual(text_of(doc, "Status"), "2", "Ping: %s" % ET.tostring(doc))
        self.assertIn(inbox, [f.text for f in doc.iter("Folder")], ET.tostring(doc))
        after = result["t"] - t_deliver
        print("  [time] %-55s %6.2f s" % ("Ping Status 2 after the delivery", after))
        TIMINGS.append(("Ping Status 2 after the delivery", after))
        self.assertLess(after, 10.5, "Ping answered %.1f s after the delivery" % after)
        self.assertGreater(result["t"] - t_start, 1.4)
        _, subjects = phone.sync_changes(self, inbox, key)
        self.assertIn(subject, subjects, "the delivered mail does not sync")

    def test_03_phone_gone_mid_ping_frees_the_upstream_connection(self):
        phone = Phone(device_id=new_id("gone"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, _ = phone.sync_changes(self, inbox, key)
        phone.sync_changes(self, inbox, key)

        before = E.H.abqd_conns()
        s = socket.create_connection(("127.0.0.1", E.H.abqd_port), timeout=10)
        try:
            s.sendall(phone.raw_request("Ping", wbxml(ping_xml(inbox, 25))))
            # The held Ping: an upstream connection more (or a pooled one taken).
            held = None
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:
                during = E.H.abqd_conns()
                if during - before:
                    held = during - before
                    break
                time.sleep(0.1)
            s.settimeout(0.2)
            try:
                early = s.recv(100)
            except socket.timeout:
                early = None
            self.assertIsNone(early, "the Ping was answered at once: %r" % early)
            self.assertTrue(held, "no new connection from abqd to SOGo while a Ping is held "
                                  "(before %r, during %r)" % (before, during))
            print("  while held: %d connection(s) abqd->SOGo, %d before" % (len(during), len(before)))
        finally:
            t_close = time.monotonic()
            s.close()
        def gone():
            now = E.H.abqd_conns()
            return (not (held & now), now)
        self.until("upstream connection closed after the phone left", gone, 2.0, 0.05)
        self.assertLess(len(E.H.abqd_conns()), len(during))
        self.assertLess(time.monotonic() - t_close, 3)

    def test_06_base64_query(self):
        phone = Phone()

        def b64query(version, cmd, devid, devtype, params=()):
            q = bytes([version, cmd]) + (0x0409).to_bytes(2, "little")
            q += bytes([len(devid)]) + devid + b"\x00" + bytes([len(devtype)]) + devtype
            for tag, value in params:
                q += bytes([tag, len(value)]) + value
            return base64.b64encode(q).decode()

        # MS-ASHTTP's own vector (14.0, command code 0 = Sync, DeviceId v140Device, type
        # SmartPhone) checks the encoder; the requests below are FolderSync (code 9).
        self.assertEqual(b64query(140, 0, b"v140Device", b"SmartPhone"),
                         "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
        ascii_id = b"v140Dev" + uuid.uuid4().hex[:6].encode()
        q1 = b64query(140, 9, ascii_id, b"SmartPhone")
        # A binary DeviceId whose query holds '+', '/' and '=' padding, sent raw as
        # phones do (SOGo itself does not percent-decode this form).
        for _ in range(100000):
            binary_id = uuid.uuid4().bytes
            q2 = b64query(141, 9, binary_id, b"iPad", [(8, b"alice")])  # 34 bytes: "=="
            if "+" in q2 and "/" in q2 and q2.endswith("="):
                break
        else:
            self.fail("internal: no DeviceId gives a query with '+', '/' and '='")
        for query, version, devid in ((q1, "14.0", ascii_id.hex().upper()),
                                      (q2, "14.1", binary_id.hex().upper())):
            target = EAS_PATH + "?" + query
            h = {"Authorization": phone.auth(), "Content-Type": WBXML_TYPE,
                 "User-Agent": "abqd-e2e-b64/1.0"}
            r = phone.http("POST", target, h, FOLDERSYNC_0)
            self.assertEqual(r.status, 200, "base64 FolderSync %s: %r" % (version, r))
            doc = r.doc()
            self.assertEqual((doc.tag, text_of(doc, "Status")), ("FolderSync", "1"))
            types = [text_of(a, "Type") for a in doc.iter("Add")]
            self.assertIn("2", types, "base64 FolderSync: no Inbox")
            d = self.device_info("alice", devid)["device"]
            self.assertEqual(d["deviceId"], devid)
            self.assertEqual(d["easVersion"], version)
            self.assertEqual(d["state"], "Allowed")

    def test_10_malformed_requests(self):
        phone = Phone(device_id=new_id("bad"))

        def served():
            self.assertEqual(phone.folders(self)[0][0] is not None, True)

        # A garbage request line over a raw socket.
        s = socket.create_connection(("127.0.0.1", E.H.abqd_port), timeout=10)
        try:
            s.sendall(b"\x16\x03\x01 GARBAGE \x00\xff nonsense\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertRegex(data, rb"^HTTP/1\.[01] 400 ", "garbage request line: %r" % data[:200])
        served()

        # A control byte first in a header value: libhttp-parser does not look
        # at that byte, the request parser's header check refuses it.
        raw = phone.raw_request("FolderSync", FOLDERSYNC_0)
        raw = raw.replace(b"User-Agent: abqd-e2e/1.0", b"User-Agent: \x01abqd-e2e/1.0")
        self.assertIn(b"\x01abqd-e2e", raw)
        s = socket.create_connection(("127.0.0.1", E.H.abqd_port), timeout=10)
        try:
            s.sendall(raw)
            data = b""
            while True:  # the answer ends with the connection
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertRegex(data, rb"^HTTP/1\.[01] 400 ", "control byte in User-Agent: %r" % data[:200])
        self.assertIn(b"header User-Agent holds a control character", data)
        served()

        # A malformed base64 query (truncated, then not base64 at all).
        for q in ("jAAJBAp2MTQw", "!!!not*base64!!!"):
            r = phone.http("POST", EAS_PATH + "?" + urllib.parse.quote(q, safe=""),
                           {"Authorization": phone.auth(), "Content-Type": WBXML_TYPE},
                           FOLDERSYNC_0)
            self.assertEqual(r.status, 400, "malformed base64 query %r: %r" % (q, r))
            served()

        # A malformed WBXML Settings body: a string that never ends.
        good = wbxml(settings_xml({"Model": "Broken", "OS": "Nothing"}))
        truncated = good[:good.index(b"Broken") + 3]
        r = phone.post("Settings", truncated)
        self.assertEqual(r.status, 400, "truncated WBXML Settings: %r" % r)
        r = phone.post("Settings", b"this is not WBXML")
        self.assertEqual(r.status, 400, "non-WBXML Settings: %r" % r)
        served()

    def test_10b_blocked_device_finds_no_side_door(self):
        """Against the real SOGo: a blocked device that walks around the EAS path
        (dot-segments after the passthrough prefix, encodings, another method, a
        second DeviceId) never gets SOGo's answer."""
        phone = Phone(device_id=new_id("door"))
        served = phone.folders(self)[0][0]
        self.assertIsNotNone(served)
        self.admin("mobile", "abq", "block", phone.device_id, "account", "alice")

        def blocked():
            r = phone.foldersync()
            return (r.status == 200 and r.body and text_of(r.doc(), "Status") == "129", r)
        self.until("block seen by abqd", blocked, 2.5, 0.1)
        for method, path in (("POST", "/autodiscover/../Microsoft-Server-ActiveSync"),
                             ("POST", "/autodiscover/%2e%2e/Microsoft-Server-ActiveSync"),
                             ("POST", "/autodiscover/..;/Microsoft-Server-ActiveSync"),
                             ("POST", "//Microsoft-Server-ActiveSync/."),
                             ("GET", EAS_PATH), ("PUT", EAS_PATH)):
            r = phone.http(method, path + "?" + phone.query("FolderSync"),
                           phone.headers(), FOLDERSYNC_0)
            self.assertIn(r.status, (200, 400, 403, 404, 405), "%s %s: %r" % (method, path, r))
            if r.status == 200:  # decided on the EAS path: the blocked answer, not SOGo's
                self.assertEqual(text_of(decode(r.body), "Status"), "129",
                                 "%s %s: %r" % (method, path, r))
        r = phone.http("POST", EAS_PATH + "?" + phone.query("FolderSync") + "?DeviceId=other",
                       phone.headers(), FOLDERSYNC_0)
        self.assertEqual(r.status, 400, "a second '?': %r" % r)

    def test_11_options(self):
        phone = Phone(user="bob")
        r = phone.options()
        self.assertEqual(r.status, 200, "OPTIONS with credentials: %r" % r)
        versions = [v.strip() for v in r.headers.get("ms-asprotocolversions", "").split(",")]
        self.assertIn("14.1", versions, "OPTIONS: %r" % r)
        direct = Phone(user="bob", direct=True).options()
        self.assertEqual(r.headers.get("ms-asprotocolversions"),
                         direct.headers.get("ms-asprotocolversions"), "not SOGo's own versions")
        self.assertIn("ms-asprotocolcommands", r.headers)
        r = phone.options(auth=False)
        self.assertEqual(r.status, 401, "OPTIONS without credentials: %r" % r)

    def test_16_passthrough_after_authentication(self):
        """/autodiscover/ goes to the upstream untouched, but only after login."""
        path = "/autodiscover/autodiscover.xml"
        phone = Phone()
        r = phone.http("GET", path, {"User-Agent": "abqd-e2e"})
        self.assertEqual(r.status, 401, "passthrough without credentials: %r" % r)
        r = phone.http("GET", path, {"Authorization": phone.auth()})
        direct = Phone(direct=True)
        d = direct.http("GET", path, {"Authorization": direct.auth()})
        self.assertEqual(r.status, d.status, "through abqd %r, direct %r" % (r, d))
        self.assertEqual(r.body, d.body)
        self.assertEqual(E.H.ctl("mobile", "abq", "history").stdout.count("autodiscover"), 0)


def main():
    E.run_suite("e2e_proxy", E.Harness(), tests=ProxyTests)


if __name__ == "__main__":
    main()
