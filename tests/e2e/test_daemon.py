#!/usr/bin/env python3
"""End to end, the daemon: configuration, TLS, privileges, metrics, the upstream, SIGTERM.

abqd -n, the warning without a domain, TLS and certificate reload, privileges
dropped after binding, /metrics moving by what the phones did, the upstream down
then back, and a clean exit on SIGTERM (last).

Run by CTest as:  python3 test_daemon.py --abqd PATH --abqctl PATH [--smtpd PATH] [unittest args]
(test_e2e.py runs this suite together with the others on one fixture). The
harness (harness.py) starts the fixture and abqd; see it for what a run does.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
import harness as E
from harness import (FOLDERSYNC_0, Phone, Timer, new_id, ping_xml, sync_xml, text_of, wbxml)


class DaemonTests(E.Case):
    maxDiff = None

    def test_12_config_check(self):
        p = subprocess.run([E.ABQD, "-n", "-c", E.H.conf], capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "configuration OK"), p.stderr)
        lines = E.H.config_text().splitlines()
        lines.insert(3, "listne = 127.0.0.1:1")  # line 4, in [eas]
        bad = os.path.join(E.H.work, "bad.conf")
        with open(bad, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([E.ABQD, "-n", "-c", bad], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, "bad config: rc %d %s" % (p.returncode, p.stderr))
        self.assertNotIn("configuration OK", p.stdout)
        self.assertRegex(p.stderr, r"bad\.conf:4: .*listne", p.stderr)

    def test_13b_warns_without_a_domain(self):
        """Without [smtp] domain and [eas] default_domain a bare account has no
        address (UserInformation answers the name alone): abqd says so once at
        start, naming both keys; with either set it says nothing."""
        p, _, conf = self.side_abqd("nodomain", "", domain=None, workers=2)
        self.stop_side(p)
        with open(os.path.join(os.path.dirname(conf), "abqd.stderr")) as f:
            log = f.read()
        warns = [l for l in log.splitlines() if "default_domain" in l and "warn" in l.lower()]
        self.assertEqual(len(warns), 1, "not one warning with two workers: %r" % warns)
        self.assertIn("[smtp] domain", warns[0])
        self.assertIn("[eas] default_domain", warns[0])
        print("  %s" % warns[0])
        p, _, conf = self.side_abqd("smtpdomain", "[smtp]\ndomain = example.test", domain=None)
        self.stop_side(p)
        with open(os.path.join(os.path.dirname(conf), "abqd.stderr")) as f:
            self.assertNotIn("default_domain is set", f.read())
        self.assertNotIn("default_domain is set", E.H.log_text())

    def test_14_tls_and_certificate_reload(self):
        """TLS listener; SIGHUP loads a new certificate for new connections while a
        Ping held over TLS with the old one goes on and is answered."""
        import ssl
        d = os.path.join(E.H.work, "tls-certs")
        os.makedirs(d, exist_ok=True)
        pem1 = self.make_cert(d, "one")
        p, port, conf = self.side_abqd(
            "tls-abqd", "[tls]\ncert = %s\nkey = %s" % (os.path.join(d, "cert.pem"),
                                                         os.path.join(d, "key.pem")),
            listen_tls=True)
        try:
            phone = Phone(device_id=new_id("tls"))
            phone.port = port
            phone.tls = ssl.create_default_context(cadata=pem1)
            inbox = phone.inbox(self)
            key = phone.sync0(self, inbox)
            key, _ = phone.sync_changes(self, inbox, key)
            key, _ = phone.sync_changes(self, inbox, key)
            result = {}

            def ping():
                try:
                    result["resp"] = phone.post("Ping", wbxml(ping_xml(inbox, 30)), timeout=90)
                except Exception as e:  # noqa: BLE001 - reported below
                    result["error"] = e

            th = threading.Thread(target=ping, daemon=True)
            th.start()
            time.sleep(1.5)
            self.assertTrue(th.is_alive(), "Ping over TLS returned early: %r" % result)
            pem2 = self.make_cert(d, "two")
            os.kill(p.pid, signal.SIGHUP)

            def new_cert_served():
                got = ssl.get_server_certificate(("127.0.0.1", port))
                return (ssl.PEM_cert_to_DER_cert(got) == ssl.PEM_cert_to_DER_cert(pem2),)

            self.until("new certificate served after SIGHUP", new_cert_served, 10)
            self.assertTrue(th.is_alive(), "the held Ping ended at the reload: %r" % result)
            fresh = Phone(device_id=new_id("tls2"))
            fresh.port = port
            fresh.tls = ssl.create_default_context(cadata=pem2)
            self.assertTrue(fresh.folders(self))
            E.H.fixture_ok("deliver", "alice", "after the reload %s" % uuid.uuid4().hex[:6])
            th.join(30)
            self.assertFalse(th.is_alive(), "held Ping not answered after the delivery")
            self.assertNotIn("error", result, "held Ping failed: %r" % result.get("error"))
            self.assertEqual(result["resp"].status, 200, "held Ping: %r" % result["resp"])
            self.assertEqual(text_of(result["resp"].doc(), "Status"), "2")
        finally:
            self.assertEqual(self.stop_side(p), 0, "TLS abqd exit status")

    def test_15_drops_privileges_after_binding(self):
        """[eas] user: abqd binds and opens its store as root, then runs as that user
        and still records devices."""
        p, port, conf = self.side_abqd("user-abqd", "user = nobody")
        try:
            import pwd
            nobody = str(pwd.getpwnam("nobody").pw_uid)
            # The kernel accepts connections once abqd listens, before it drops
            # privileges: read its uids until they change (10 s at most).
            t0 = time.monotonic()
            while True:
                with open("/proc/%d/status" % p.pid) as f:
                    uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
                if uids == [nobody] * 4 or time.monotonic() - t0 > 10:
                    break
                time.sleep(0.05)
            self.assertEqual(uids, [nobody] * 4, "real/effective/saved/fs uid")
            phone = Phone(device_id=new_id("priv"))
            phone.port = port
            self.assertTrue(phone.folders(self))
            out = subprocess.run([E.ABQCTL, "-c", conf, "mobile", "getAllDevices", "--json"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            ids = [x["deviceId"].upper() for x in json.loads(out.stdout)["devices"]]
            self.assertIn(phone.device_id.upper(), ids)
        finally:
            self.assertEqual(self.stop_side(p), 0, "abqd (user nobody) exit status")

    def test_23_metrics_move(self):
        """/metrics moves by exactly what the phones did: a proxied FolderSync
        and Syncs, a wrong password, a quarantined device served by the
        mailbox, and two held Pings (proxied and mailbox) that end when their
        phones leave."""
        sent = []  # (command, outcome) of every request the phones make

        class Counting(Phone):
            outcome = None

            def post(self, cmd, body, **kw):
                r = Phone.post(self, cmd, body, **kw)
                sent.append((cmd, "unauthorized" if r.status == 401 else self.outcome))
                return r

        qid = new_id("metq")
        self.admin("mobile", "abq", "quarantine", qid, "account", "alice")
        time.sleep(1.2)  # nothing for the daemon to see: no device yet
        before, types = self.scrape()
        for fam, kind in (("abqd_requests_total", "counter"), ("abqd_held_requests", "gauge"),
                          ("abqd_upstream_request_duration_seconds", "histogram"),
                          ("abqd_store_duration_seconds", "histogram"),
                          ("abqd_decisions_total", "counter"), ("abqd_connections", "gauge")):
            self.assertEqual(types.get(fam), kind, "# TYPE of %s" % fam)
        # Whatever the tests before held (blocked, allowed, dropped Pings) has ended.
        self.assertEqual((before['abqd_held_requests{kind="proxied"}'],
                          before['abqd_held_requests{kind="mailbox"}']), (0, 0))

        ok = Counting(device_id=new_id("metok"))
        ok.outcome = "proxied"
        inbox = ok.inbox(self)
        key = ok.sync0(self, inbox)
        key, _ = ok.sync_changes(self, inbox, key)
        ok.sync_changes(self, inbox, key)
        bad = Counting(device_id=new_id("metbad"))
        r = bad.post("FolderSync", FOLDERSYNC_0, password="not-the-password")
        self.assertEqual(r.status, 401, "wrong password: %r" % r)
        q = Counting(device_id=qid)
        q.outcome = "mailbox"
        qcoll, _, _ = self.mailbox_inbox(q)
        proxied_n = sum(1 for _, o in sent if o == "proxied")

        # Two held Pings on sockets the test holds, then drops.
        socks = []
        try:
            for phone, folder, hb in ((ok, inbox, 25), (q, qcoll, 120)):
                s = socket.create_connection(("127.0.0.1", E.H.abqd_port), timeout=10)
                socks.append(s)
                s.sendall(phone.raw_request("Ping", wbxml(ping_xml(folder, hb))))

            def both_held():
                m, _ = self.scrape()
                return (self.moved(before, m, "abqd_held_requests") == {
                    'abqd_held_requests{kind="proxied"}': 1,
                    'abqd_held_requests{kind="mailbox"}': 1}, m)
            _, during = self.until("both Pings counted as held", both_held, 5.0)
            self.assertGreaterEqual(during['abqd_connections{listener="eas"}'],
                                    before['abqd_connections{listener="eas"}'] + 2)
            for s in socks:
                s.settimeout(0.2)
                try:
                    early = s.recv(100)
                except socket.timeout:
                    early = None
                self.assertIsNone(early, "a Ping was answered at once: %r" % early)
        finally:
            for s in socks:
                s.close()
        sent += [("Ping", "other"), ("Ping", "other")]  # client-gone-while-held

        def released():
            m, _ = self.scrape()
            return (not self.moved(before, m, "abqd_held_requests") and
                    m['abqd_connections{listener="eas"}'] ==
                    before['abqd_connections{listener="eas"}'], m)
        self.until("held Pings and connections back to before", released, 5.0)
        # A scrape reads the series one after the other, so a request that ended
        # during it can show in the gauges (read late) but not yet in
        # abqd_requests_total (read first). Once the gauges are back, every count
        # is in: read them all again.
        after, _ = self.scrape()

        want = {}
        for cmd, outcome in sent:
            k = 'abqd_requests_total{command="%s",outcome="%s"}' % (cmd, outcome)
            want[k] = want.get(k, 0) + 1
        self.assertEqual(self.moved(before, after, "abqd_requests_total"), want)
        self.assertEqual(self.moved(before, after, "abqd_decisions_total"), {
            'abqd_decisions_total{state="Allowed",reason="Mode"}': 1,
            'abqd_decisions_total{state="Quarantined",reason="Individual"}': 1})
        self.assertEqual(self.moved(before, after, "abqd_auth_failures_total"),
                         {"abqd_auth_failures_total": 1})
        self.assertEqual(self.moved(before, after, "abqd_auth_rate_limited_total"), {})
        self.assertEqual(self.moved(before, after, "abqd_upstream_errors_total"), {})
        # Each proxied request that got its answer head, once; the dropped Ping none.
        up = "abqd_upstream_request_duration_seconds"
        self.assertEqual(after[up + "_count"] - before[up + "_count"], proxied_n)
        self.assertEqual(after[up + '_bucket{le="+Inf"}'], after[up + "_count"])
        self.assertGreater(after[up + "_sum"], before[up + "_sum"])
        # Store jobs: two new devices recorded, and every mailbox answer
        # (FolderSync, the Syncs and the Ping).
        mailbox_n = sum(1 for _, o in sent if o == "mailbox") + 1
        st = "abqd_store_duration_seconds"
        self.assertEqual(after[st + "_count"] - before[st + "_count"], 2 + mailbox_n)
        self.assertEqual(after[st + '_bucket{le="+Inf"}'], after[st + "_count"])
        les = [k for k in after if k.startswith(st + "_bucket")]
        self.assertEqual(len(les), 15, les)
        info = [k for k in after if k.startswith("abqd_build_info{")]
        self.assertEqual(len(info), 1, info)
        self.assertRegex(info[0], r'^abqd_build_info\{version="\d+\.\d+\.\d+"\}$')
        self.assertEqual(after[info[0]], 1)
        self.assertGreater(after["abqd_start_time_seconds"], 1.7e9)

    def test_90_upstream_down_then_back(self):
        phone = Phone(device_id=new_id("down"))
        phone.folders(self)
        self.assertEqual(self.healthz()[0], 200, "/healthz with the upstream up")
        errors = self.scrape()[0]["abqd_upstream_errors_total"]
        fresh = Phone(device_id=new_id("down2"), user="bob", password="secret-but-new")
        with Timer("fixture down (upstream stopped)"):
            E.H.fixture_ok("down")
        try:
            r = phone.foldersync()
            self.assertEqual(r.status, 503, "FolderSync with the upstream down: %r" % r)
            self.assertRegex(r.headers.get("retry-after", ""), r"^\d+$", "no Retry-After: %r" % r)
            r = phone.post("Sync", wbxml(sync_xml("mail/INBOX", "0", False)))
            self.assertEqual(r.status, 503, "Sync with the upstream down: %r" % r)
            self.assertIn("retry-after", r.headers)
            # Credentials abqd has not seen: the probe fails -> 503 too, not 401.
            r = fresh.foldersync()
            self.assertEqual(r.status, 503, "unverifiable credentials: %r" % r)
            self.assertIn("retry-after", r.headers)
            # The upstream's last answer was no answer: unhealthy, and counted.
            self.assertEqual(self.healthz()[0], 503, "/healthz with the upstream down")
            self.assertEqual(self.scrape()[0]["abqd_upstream_errors_total"] - errors, 2,
                             "the FolderSync and the Sync that found no upstream")
        finally:
            with Timer("fixture up again"):
                E.H.fixture_ok("up")
        # The same request, with the same abqd.
        self.assertIn("2", [f[3] for f in phone.folders(self)])
        self.assertEqual(self.healthz()[0], 200, "/healthz once the upstream answers again")
        d = self.device_info("alice", phone.device_id)["device"]
        self.assertEqual(d["state"], "Allowed")

    def test_99_sigterm_clean_exit(self):
        """abqd ends on SIGTERM with status 0 and no sanitizer report."""
        with Timer("abqd SIGTERM to exit"):
            rc = E.H.stop_abqd()
        self.assertEqual(rc, 0, "abqd exit status after SIGTERM: %r" % rc)
        log = E.H.log_text(limit=10 ** 9)
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, log, "sanitizer report in abqd's log")


def main():
    E.run_suite("e2e_daemon", E.Harness(), tests=DaemonTests)


if __name__ == "__main__":
    main()
