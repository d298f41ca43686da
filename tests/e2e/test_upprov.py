#!/usr/bin/env python3
"""abqd provisions with an upstream that demands it, on the device's behalf.

Run by CTest as:  python3 test_upprov.py --abqd PATH --abqctl PATH [unittest args]

Z-Push and grommunio answer every command with HTTP 449 (12.x) or Status 142
(14.0 and later) until the device has provisioned with them, and with 144
when its X-MS-PolicyKey is not theirs. abqd runs both phases of Provision with
such an upstream itself, keeps its key for the device and puts it on every
request it forwards, so that the phone never sees the upstream's demand or
policy: it sees abqd's policy, or none. Debian packages neither server, so
tests/e2e/recorder.py stands in for them (its `zpush` mode), behind the gate
suite's harness (test_gate.py).
"""

import re
import time
import unittest

import harness as E
from harness import Phone, new_id, text_of
from recorder import PROV, wbxml_doc
from test_gate import SYNC_0, GateHarness

PING = E.WBXML_HEADER + bytes.fromhex("000d45" "4803333030" "00" "01" "01")  # Ping, Heartbeat 300
FOLDERSYNC_0 = E.FOLDERSYNC_0
MIME = (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: once\r\n\r\n"
        b"sent exactly once\r\n")
PTYPE = "<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>"


class UpstreamProvisioning(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertIsNone(E.H.abqd.poll(), "abqd died (exit %s)" % E.H.abqd.returncode)
        self.rec = E.H.rec
        self.rec.reply = None
        self.rec.zpush = True
        self.restore = []

    def tearDown(self):
        for words in self.restore[::-1]:
            E.H.ctl(*words)
        self.rec.zpush = False
        self.rec.reply = None
        if E.H.abqd.poll() is not None:
            self.fail("abqd died during the test (exit %s)" % E.H.abqd.returncode)

    def ctl(self, *words):
        p = E.H.ctl(*words)
        self.assertEqual(p.returncode, 0, "abqctl %s: %s%s" % (" ".join(words), p.stdout,
                                                               p.stderr))
        return p.stdout

    def phone(self, tag, version):
        p = Phone(device_id=new_id(tag).upper(), version=version, user_agent="upprov/" + tag)
        self.ctl("mobile", "abq", "allow", p.device_id)
        return p

    def upstream_saw(self, dev, pred=None):
        return self.rec.seen(lambda r: dev in r.target and r.method == "POST" and
                             (pred is None or pred(r)))

    def assert_served(self, r, what):
        """The phone got the upstream's answer: 200, a WBXML document, no demand."""
        self.assertEqual(r.status, 200, "%s: %r" % (what, r))
        st = text_of(r.doc(), "Status")
        self.assertNotIn(st, ("140", "142", "143", "144"), "%s: the demand: %r" % (what, r))

    def assert_provisioned_once(self, dev):
        """abqd ran Provision with the upstream once (both phases), and every request
        after it carried the upstream's final key; returns that key."""
        self.assertEqual([ph for d, ph in self.rec.provisions if d == dev], [1, 2],
                         "Provision reaching the upstream for %s" % dev)
        key = str(self.rec.keys[dev][1])
        reqs = self.upstream_saw(dev)
        last = max(i for i, r in enumerate(reqs) if "Cmd=Provision" in r.target)
        after = reqs[last + 1:]
        self.assertTrue(after, "nothing forwarded after Provision")
        for r in after:
            self.assertEqual(r.header_values("X-MS-PolicyKey"), [key], "%r" % r)
        # abqd's Provision: the phone's credentials, identity and version.
        prov = [r for r in reqs if "Cmd=Provision" in r.target]
        for r in prov:
            self.assertIn("DeviceType=SmartPhone", r.target)
            self.assertTrue(r.header_values("Authorization")[0].startswith("Basic "))
            self.assertEqual(r.header_values("Content-Type"), [E.WBXML_TYPE])
        self.assertEqual(prov[0].header_values("X-MS-PolicyKey"), ["0"])
        self.assertEqual(prov[1].header_values("X-MS-PolicyKey"), [str(self.rec.keys[dev][0])])
        return key

    # 1 ---------------------------------------------------------------
    def test_01_phones_sync_without_seeing_the_demand(self):
        """A 12.1 and a 16.1 phone sync through abqd in front of an upstream that
        demands provisioning; with abqd's policy imposing nothing they are never
        asked for anything, and the upstream gets its key on every request."""
        for version, first in (("12.1", "FolderSync"), ("16.1", "Ping")):
            p = self.phone("up" + version.replace(".", ""), version)
            dev = p.device_id
            if first == "Ping":  # a held command first: the retry is held as usual
                r = p.post("Ping", PING)
            else:
                r = p.foldersync()
            self.assert_served(r, "%s %s, the first request" % (version, first))
            for cmd, body in (("FolderSync", FOLDERSYNC_0), ("Sync", SYNC_0), ("Ping", PING),
                              ("Sync", SYNC_0)):
                self.assert_served(p.post(cmd, body), "%s %s" % (version, cmd))
            key = self.assert_provisioned_once(dev)
            self.assertNotEqual(key, p.policy_key)  # the phone still sends its own (0)
            # The first request was refused (449 or 142) and sent again, once.
            executed = [c for c, d in self.rec.executed if d == dev]
            self.assertEqual(executed, [first, "FolderSync", "Sync", "Ping", "Sync"])
            refused = [r for r in self.upstream_saw(dev)
                       if r.header_values("X-MS-PolicyKey") == ["0"] and
                       "Cmd=Provision" not in r.target]
            self.assertEqual(len(refused), 1, refused)
        log = E.H.log_text()
        self.assertIn("the upstream demands provisioning (449)", log)
        self.assertIn("the upstream demands provisioning (142)", log)
        self.assertIn("provisioned with the upstream", log)

    # 2 ---------------------------------------------------------------
    def test_02_abqd_policy_to_the_phone_upstream_key_to_the_upstream(self):
        """With abqd's own policy the phone provisions with abqd and sends abqd's
        key; the upstream still gets its own key, and never the phone's Provision."""
        self.restore.append(("mobile", "unsetProvisioning", "domain", "example.test",
                             "DevicePasswordEnabled"))
        self.ctl("mobile", "setProvisioning", "domain", "example.test",
                 "DevicePasswordEnabled", "1")
        p = self.phone("uppol", "16.1")
        dev = p.device_id

        def demanded():
            r = p.foldersync()
            return r.status == 200 and text_of(r.doc(), "Status") == "142", r
        # A new device's policy reaches abqd's memory with the change log (once a
        # second): until then its requests go to the upstream (abqd provisioned there).
        t_end = time.monotonic() + 5
        while True:
            ok, r = demanded()
            if ok or time.monotonic() > t_end:
                break
            self.assert_served(r, "FolderSync before abqd's policy applies")
            time.sleep(0.1)
        self.assertTrue(ok, "abqd's demand: %r" % r)
        n_up = len(self.upstream_saw(dev))
        r = p.foldersync()
        self.assertEqual(text_of(r.doc(), "Status"), "142", "abqd's demand: %r" % r)
        self.assertEqual(len(self.upstream_saw(dev)), n_up, "abqd's demand reached the upstream")
        r = p.post("Provision", E.wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy>%s</Policy></Policies>'
            '</Provision>' % PTYPE))
        self.assertEqual(r.status, 200, r)
        doc = r.doc()
        self.assertEqual(text_of(doc, "Policies/Policy/Data/EASProvisionDoc/"
                                      "DevicePasswordEnabled"), "1")
        temp = text_of(doc, "Policies/Policy/PolicyKey")
        p.policy_key = temp
        r = p.post("Provision", E.wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy>%s<PolicyKey>%s</PolicyKey>'
            '<Status>1</Status></Policy></Policies></Provision>' % (PTYPE, temp)))
        p.policy_key = text_of(r.doc(), "Policies/Policy/PolicyKey")
        # abqd's own Provision with the upstream (its first request), not the phone's.
        self.assertEqual([x for x in self.rec.provisions if x[0] == dev], [(dev, 1), (dev, 2)],
                         "the phone's Provision reached the upstream")
        self.assertEqual(len(self.upstream_saw(dev)), n_up, "the phone's Provision went up")
        for cmd, body in (("FolderSync", FOLDERSYNC_0), ("Sync", SYNC_0)):
            self.assert_served(p.post(cmd, body), "16.1 %s with abqd's key" % cmd)
        key = self.assert_provisioned_once(dev)
        self.assertNotEqual(key, p.policy_key)
        for r in self.upstream_saw(dev):
            self.assertNotEqual(r.header_values("X-MS-PolicyKey"), [p.policy_key],
                                "abqd's key reached the upstream: %r" % r)

    # 3 ---------------------------------------------------------------
    def test_03_sendmail_retried_is_sent_once(self):
        """A SendMail refused by the upstream's demand is sent again after abqd
        provisioned, and so executed exactly once (12.1 MIME, 16.1 WBXML)."""
        for version in ("12.1", "16.1"):
            p = self.phone("upsm" + version.replace(".", ""), version)
            if version == "12.1":
                body = MIME
                h = p.headers()
                h["Content-Type"] = "message/rfc822"
                r = p.http("POST", p.path + "?" + p.query("SendMail") + "&SaveInSent=T", h,
                           body)
            else:
                body = wbxml_doc(21, 0x05, [(21, 0x11, "c-1"), (21, 0x08, None),
                                            (21, 0x10, MIME.decode())])
                r = p.post("SendMail", body)
            self.assertEqual(r.status, 200, "%s SendMail: %r" % (version, r))
            if r.body:
                self.assert_served(r, "%s SendMail" % version)
            executed = [c for c, d in self.rec.executed if d == p.device_id]
            self.assertEqual(executed, ["SendMail"], "%s: executed" % version)
            sent = self.upstream_saw(p.device_id, lambda r: "Cmd=SendMail" in r.target)
            self.assertEqual(len(sent), 2, "refused once, then sent with the key")
            self.assertEqual([r.body for r in sent], [body, body])
            if version == "12.1":
                self.assertEqual([r.header_values("Content-Type") for r in sent],
                                 [["message/rfc822"]] * 2)
            self.assert_provisioned_once(p.device_id)

    # 4 ---------------------------------------------------------------
    def test_04_the_upstreams_wipe_goes_to_the_phone(self):
        """A remote wipe from the upstream is not acknowledged by abqd: Status 140
        reaches the phone as it came, and a RemoteWipe in the upstream's Provision
        answer reaches the phone's own Provision."""
        p = self.phone("upw140", "14.1")
        self.rec.zpush = False
        self.rec.reply = lambda req: (self.rec.wbxml_answer(wbxml_doc(0, 0x05, [(0, 0x0E, "140")]))
                                      if p.device_id in req.target else None)
        r = p.post("Sync", SYNC_0)
        self.assertEqual(r.status, 200)
        self.assertEqual(text_of(r.doc(), "Status"), "140", r)
        self.assertEqual(self.upstream_saw(p.device_id, lambda r: "Cmd=Provision" in r.target),
                         [])
        self.rec.reply = None
        self.rec.zpush = True
        # The phone's Provision now goes to the upstream, which answers it.
        self.rec.wipe.add(p.device_id)
        r = p.post("Provision", E.wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy>%s</Policy></Policies>'
            '</Provision>' % PTYPE))
        self.assertEqual(r.status, 200)
        self.assertIsNotNone(r.doc().find("RemoteWipe"), r)
        self.assertEqual([ph for d, ph in self.rec.provisions if d == p.device_id], [1])

        # Found while abqd provisions: the phone gets the upstream's demand, then
        # provisions with the upstream itself and hears the wipe; abqd acknowledged nothing.
        q = self.phone("upwpr", "16.1")
        self.rec.wipe.add(q.device_id)
        r = q.foldersync()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(text_of(r.doc(), "Status"), "142", r)
        self.assertEqual([ph for d, ph in self.rec.provisions if d == q.device_id], [1])
        r = q.post("Provision", E.wbxml(
            '<Provision xmlns="Provision:"><Policies><Policy>%s</Policy></Policies>'
            '</Provision>' % PTYPE))
        self.assertIsNotNone(r.doc().find("RemoteWipe"), r)
        self.assertEqual([ph for d, ph in self.rec.provisions if d == q.device_id], [1, 1])
        self.assertNotIn((q.device_id, 2), self.rec.provisions)
        log = E.H.log_text()
        self.assertIn("the upstream asks for a remote wipe (Status 140)", log)
        self.assertIn("the upstream's Provision carries a remote wipe: not acknowledged", log)

    # 5 ---------------------------------------------------------------
    def test_05_failed_provisioning_is_a_503(self):
        """When the upstream's Provision fails the phone gets 503 with Retry-After,
        never the upstream's 449, and the reason is logged."""
        p = self.phone("upfail", "12.1")
        self.rec.reply = lambda req: (b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
                                      if "Cmd=Provision" in req.target and
                                      p.device_id in req.target else None)
        r = p.foldersync()
        self.assertEqual(r.status, 503, r)
        self.assertIn("retry-after", r.headers)
        self.assertEqual(self.rec.executed, [x for x in self.rec.executed
                                             if x[1] != p.device_id])
        self.assertRegex(E.H.log_text(), r"dev=%s cmd=FolderSync: provisioning with the "
                                         r"upstream failed: phase 1: HTTP 500" % p.device_id)
        log_line(self, r"dev=%s cmd=FolderSync .*outcome=upstream-provision upstream=449 "
                       r"status=503" % p.device_id)
        # Without its demand (a fine upstream again) the same phone syncs.
        self.rec.reply = None
        self.assert_served(p.foldersync(), "FolderSync after the failure")

    # 6 ---------------------------------------------------------------
    def test_06_handover_after_the_upstreams_demand(self):
        """A phone leaving the quarantine mailbox: the handover's FolderSync meets the
        upstream's demand, abqd provisions and hands over with the upstream's key."""
        p = self.phone("upho", "16.1")
        key_abq = E.wbxml('<FolderSync xmlns="FolderHierarchy:"><SyncKey>abq-3-0badc0de'
                          '</SyncKey></FolderSync>')
        r = p.post("FolderSync", key_abq)
        self.assertEqual(r.status, 200, r)
        doc = r.doc()
        self.assertEqual((text_of(doc, "Status"), text_of(doc, "SyncKey")), ("1", "up-1"), r)
        self.assertEqual(text_of(doc.find("Changes"), "Count"), "5", r)
        self.assert_provisioned_once(p.device_id)
        log_line(self, r"dev=%s cmd=FolderSync .*outcome=handover" % p.device_id)


def log_line(tc, pattern):
    """An exchange's log line is written when it ends, just after its answer left:
    wait a moment for it rather than read the log at once."""
    for _ in range(50):
        if re.search(pattern, E.H.log_text()):
            return
        time.sleep(0.1)
    tc.assertRegex(E.H.log_text(), pattern)


def main():
    E.run_suite("e2e_upprov", GateHarness(), tests=UpstreamProvisioning,
                at_end=E.sigterm_clean_exit)


if __name__ == "__main__":
    main()
