#!/usr/bin/env python3
"""Two abqd nodes on one PostgreSQL store, in front of the real upstream.

Run by CTest as:  python3 test_multinode.py --abqd PATH --abqctl PATH [unittest args]

Reuses harness.py's Harness (the SOGo fixture on free ports, in its own
scratch folder) and Phone. abqd's store is a private PostgreSQL cluster of its
own (Debian's server binaries, trust authentication on loopback, a free port;
not the fixture's PostgreSQL, which SOGo uses), started before the nodes and
restarted in the middle of a test. Node A is the harness's abqd; node B is a
second abqd with its own config file and port on the same store. The
administrator is the real abqctl, pointed at one node's config or the other.

What is asserted, as a phone or an administrator sees it (issue 7, "Done when"):
- a device quarantined through node A is allowed with abqctl pointed at node
  B's config, and the Ping it holds on node A is answered within 2 seconds;
- the same new device hitting both nodes at the same moment yields one record,
  one history row and one notice in the outbox; one node sends the outbox,
  and when it is killed the other takes the sending over;
- PostgreSQL restarted mid-test: a node serves the devices it knows (grace
  period), answers an unknown device 503 with Retry-After, a node whose grace
  is over answers every device 503, no registry change is lost, and both nodes
  recover (changes made after the restart reach both, new devices are recorded);
- two more nodes in native mode (abqd serving ActiveSync from the fixture's
  Dovecot) on the same store: a phone's sync goes on from its SyncKey on the
  other node, a delivery comes once, mailboxes listed by both at once get one
  folder id, and a Ping held on one is answered when the phone is blocked.

Python 3 standard library only. A missing PostgreSQL server is a failure.
"""

import glob
import imaplib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as e2e  # noqa: E402
from harness import Phone, Harness, new_id, assert_status_doc, free_ports  # noqa: E402

H = None


class PgCluster:
    """A throwaway PostgreSQL cluster for abqd's store (as tests/store/pg_run.sh)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                      key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
        if not bins:
            raise AssertionError("PostgreSQL server not installed (scripts/install-deps.sh)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = None
        self.port = None
        self.running = False

    def as_pg(self, *args, timeout=60):
        cmd = list(args)
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start_first(self):
        self.dir = tempfile.mkdtemp(prefix="abqd-multi-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        data = os.path.join(self.dir, "data")
        os.mkdir(data)
        os.mkdir(os.path.join(self.dir, "sock"))
        if os.getuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(os.path.join(self.dir, "sock"), "postgres", "postgres")
        p = self.as_pg(os.path.join(self.bin, "initdb"), "-D", data, "-A", "trust", "-U",
                       "postgres", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8")
        if p.returncode != 0:
            raise AssertionError("initdb: %s%s" % (p.stdout, p.stderr))
        (self.port,) = free_ports(1)
        self.start()
        p = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", "postgres", "-c", "CREATE DATABASE abqd"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("createdb: %s" % p.stderr)

    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/abqd" % self.port

    def start(self):
        data = os.path.join(self.dir, "data")
        p = self.as_pg(os.path.join(self.bin, "pg_ctl"), "-D", data, "-l",
                       os.path.join(data, "server.log"), "-w", "-t", "30", "-o",
                       "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                       "-c max_connections=60" % (self.port, os.path.join(self.dir, "sock")),
                       "start")
        if p.returncode != 0:
            raise AssertionError("pg_ctl start: %s%s" % (p.stdout, p.stderr))
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        self.as_pg(os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m",
                   mode, "-w", "-t", "30", "stop")
        self.running = False

    def sql(self, query):
        p = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "abqd", "-c", query],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("psql %s: %s" % (query, p.stderr))
        return p.stdout.strip()

    def remove(self):
        self.stop("immediate")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class MultiHarness(Harness):
    """The e2e harness with a PostgreSQL store and a second node (B)."""

    def __init__(self):
        super().__init__()
        self.pg = PgCluster()
        self.b = None
        self.b_port = None
        self.b_conf = None
        self.b_log = None

    def node_conf(self, port, grace):
        return ("; generated by tests/e2e/test_multinode.py\n"
                "[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\ndefault_domain = example.test\n"
                "[upstream]\nurl = %s\n"
                "[store]\nurl = %s\ngrace = %d\n"
                "[smtp]\nfrom = mobile-admin@example.test\n"
                "url = smtp://127.0.0.1:%d\n"
                "[admin]\nlisten = 127.0.0.1:%d\n"
                "[log]\nlevel = debug\n" % (port, self.fixture_url, self.pg.url(), grace,
                                            self.smtp_port, free_ports(1)[0]))

    def config_text(self):
        # Node A: a long grace period. Nothing listens on the SMTP port: the
        # notices stay in the outbox, where the test counts them.
        (self.smtp_port,) = free_ports(1)
        return self.node_conf(self.abqd_port, 300)

    def start(self):
        self.pg.start_first()
        super().start()
        self.start_b()

    def start_b(self):
        """Node B: the same store, its own port and config; a short grace period."""
        work = os.path.join(self.work, "node-b")
        if self.b_port is None:
            (self.b_port,) = free_ports(1)
        self.b, self.b_conf, self.b_log = spawn_node(work, self.b_port,
                                                     self.node_conf(self.b_port, 3))

    def native_conf(self, port):
        """A node in native mode on the same store: abqd serves ActiveSync from the
        fixture's Dovecot itself."""
        return ("; generated by tests/e2e/test_multinode.py\n"
                "[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\n"
                "[upstream]\nurl = imap://127.0.0.1:%d\n"
                "[store]\nurl = %s\ngrace = 300\n"
                "[admin]\nlisten = 127.0.0.1:%d\n"
                "[log]\nlevel = debug\n" % (port, self.imap_port, self.pg.url(),
                                            free_ports(1)[0]))

    def b_text(self):
        return log_tail(self.b_log)

    def stop(self):
        if self.b is not None:
            self.b.send_signal(signal.SIGTERM)
            try:
                self.b.wait(20)
            except subprocess.TimeoutExpired:
                self.b.kill()
                self.b.wait()
        if self.failed and self.b_log:
            print("\n===== node B's log =====\n%s\n===== end of node B's log =====" %
                  self.b_text(), flush=True)
        super().stop()
        self.pg.remove()

    def ctl_b(self, *words):
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        env.pop("SUDO_USER", None)
        return subprocess.run([e2e.ABQCTL, "-c", self.b_conf] + [str(w) for w in words],
                              capture_output=True, text=True, timeout=60, env=env)


def spawn_node(work, port, conf_text):
    """abqd with conf_text in work (written to abqd.conf once), until it accepts on
    port: (process, config path, log path)."""
    os.makedirs(work, exist_ok=True)
    conf = os.path.join(work, "abqd.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write(conf_text)
    log = os.path.join(work, "abqd.stderr")
    env = dict(os.environ)
    env.pop("ABQD_CONFIG", None)
    with open(log, "ab") as logf:
        p = subprocess.Popen([e2e.ABQD, "-d", "-c", conf], stdout=logf,
                             stderr=subprocess.STDOUT, cwd=work, env=env)
    deadline = time.monotonic() + 20
    while True:
        if p.poll() is not None:
            raise AssertionError("the node in %s exited %d at start:\n%s" % (
                work, p.returncode, log_tail(log)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, conf, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the node in %s does not accept:\n%s" % (work, log_tail(log)))
        time.sleep(0.05)


def log_tail(path):
    try:
        with open(path, "rb") as f:
            return f.read()[-200000:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def on_b(phone):
    """The same phone, its requests sent to node B."""
    phone.port = H.b_port
    return phone


def on_a(phone):
    phone.port = H.abqd_port
    return phone


class MultiNode(e2e.Case):
    """Two nodes on one store (load_tests picks the test_m tests)."""

    def setUp(self):
        super().setUp()
        self.assertIsNotNone(H.b, "node B is not running")
        self.assertIsNone(H.b.poll(), "node B died (exit %s)" % H.b.returncode)
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        time.sleep(1.2)

    def admin_b(self, *words):
        p = H.ctl_b(*words)
        self.assertEqual(p.returncode, 0, "abqctl (node B) %s: rc %d: %s" % (
            " ".join(map(str, words)), p.returncode, p.stderr))
        return p.stdout

    def json_b(self, *words):
        return json.loads(self.admin_b(*(list(words) + ["--json"])))

    # 1 ---------------------------------------------------------------
    def test_m1_allow_on_b_ends_the_ping_held_on_a(self):
        phone = Phone(device_id=new_id("mnping"))
        coll, key, subjects = self.mailbox_inbox(phone)  # through node A: quarantined
        d = self.json_b("mobile", "getDeviceInfo", "alice", phone.device_id)["device"]
        self.assertEqual(d["state"], "Quarantined", "node B's abqctl sees: %r" % d)
        th, res = self.held_ping(phone, coll, 120)
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "Ping not held on node A: %r" % res)
        t0 = time.monotonic()
        self.admin_b("mobile", "abq", "allow", phone.device_id, "account", "alice")
        th.join(10)
        self.assertFalse(th.is_alive(), "the held Ping on node A is still held 10 s later")
        self.assertNotIn("error", res, "Ping: %r" % res.get("error"))
        el = res["t"] - t0
        print("  [time] %-55s %6.2f s" % ("node A's held Ping after abqctl on node B", el))
        e2e.TIMINGS.append(("node A's held Ping after abqctl on node B", el))
        self.assertLess(el, 2.0, "answered %.2f s after the change on node B" % el)
        assert_status_doc(self, res["resp"], "Ping", 7, "allowed device's held Ping")
        # Both nodes now proxy it to the real server.
        for ph in (on_a(phone), on_b(Phone(device_id=phone.device_id))):
            fs = ph.folders(self)
            self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)

    # 2 ---------------------------------------------------------------
    def test_m2_same_new_device_on_both_nodes_at_once(self):
        rounds = 6
        for i in range(rounds):
            dev = new_id("mnrace%d" % i)
            pa, pb = on_a(Phone(device_id=dev)), on_b(Phone(device_id=dev))
            barrier = threading.Barrier(2)
            out = {}

            def hit(name, ph):
                barrier.wait()
                try:
                    out[name] = ph.foldersync()
                except Exception as e:  # noqa: BLE001 - reported below
                    out[name] = e

            ts = [threading.Thread(target=hit, args=(n, p)) for n, p in (("a", pa), ("b", pb))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            for n in ("a", "b"):
                r = out.get(n)
                self.assertFalse(isinstance(r, Exception) or r is None, "node %s: %r" % (n, r))
                assert_status_doc(self, r, "FolderSync", 1, "node %s, new device" % n)
                self.assertIn(b"abq-", r.body, "node %s did not serve the quarantine mailbox" % n)
            listed = [d for d in H.ctl_json(self, "mobile", "abq", "list")["devices"]
                      if d["deviceId"].upper() == dev.upper()]
            self.assertEqual(len(listed), 1, "records of %s: %r" % (dev, listed))
            hist = [h for h in self.json_b("mobile", "abq", "history", dev)["history"]
                    if h["what"] == "state"]
            self.assertEqual(len(hist), 1, "history of %s: %r" % (dev, hist))
            notices = [n for n in self.json_b("mobile", "abq", "outbox")["notices"]
                       if (n.get("deviceId") or "").upper() == dev.upper()]
            self.assertEqual(len(notices), 1, "notices of %s: %r" % (dev, notices))
            self.assertEqual(H.pg.sql("SELECT count(*) FROM devices WHERE device_key = lower('%s')"
                                      % dev), "1")
        # One node sends the outbox: exactly one of them says so.
        senders = [name for name, text in (("A", H.log_text()), ("B", H.b_text()))
                   if "outbox: this node sends" in text]
        self.assertEqual(len(senders), 1, "nodes sending the outbox: %r" % senders)

        # The sending node dies (SIGKILL: no goodbye): the other takes the work over,
        # and the dead one, started again, leaves it there.
        if senders[0] == "A":
            H.abqd.kill()
            H.abqd.wait()
            H.abqd = None
            other, restart, text = H.b_text, H.start_abqd, lambda: H.log_text(limit=10 ** 9)
        else:
            H.b.kill()
            H.b.wait()
            H.b = None
            other, restart, text = lambda: H.log_text(limit=10 ** 9), H.start_b, H.b_text
        self.until("the other node takes the outbox over",
                   lambda: ("outbox: this node sends" in other(), None), 15)
        mark = len(text())
        restart()
        self.until("the restarted node leaves it there",
                   lambda: ("outbox: another node sends" in text()[mark:], None), 15)
        self.assertNotIn("outbox: this node sends", text()[mark:])

    # 3 ---------------------------------------------------------------
    def test_m3_postgresql_restarted(self):
        known = Phone(device_id=new_id("mnknown"))
        self.mailbox_inbox(known)
        self.admin("mobile", "abq", "allow", known.device_id, "account", "alice")
        quarantined = new_id("mnq")
        self.mailbox_inbox(Phone(device_id=quarantined))
        # Seen through node B only: node A knows it from its view of the change log.
        via_b = on_b(Phone(device_id=new_id("mnviab")))
        self.mailbox_inbox(via_b)
        self.admin("mobile", "abq", "allow", via_b.device_id, "account", "alice")
        # One request through node A, then allowed: its next request on A is a
        # last-seen update (written at most once a minute per device).
        touched = on_a(Phone(device_id=new_id("mntouch")))
        self.assertIn(b"abq-", touched.foldersync().body)
        self.admin("mobile", "abq", "allow", touched.device_id, "account", "alice")
        seen_before = self.device_info("alice", touched.device_id)["device"]["lastSeen"]
        time.sleep(1.5)
        # Both nodes know the allowed device (node B from its view).
        on_a(known).folders(self)
        on_b(Phone(device_id=known.device_id)).folders(self)
        before = H.ctl_json(self, "mobile", "abq", "list")["devices"]
        before_hist = len(H.ctl_json(self, "mobile", "abq", "history")["history"])

        with e2e.Timer("PostgreSQL stopped"):
            H.pg.stop("fast")
        try:
            def lost(text_fn):
                return lambda: ("store: lost" in text_fn(), None)
            self.until("node A finds the store lost", lost(H.log_text), 10)
            self.until("node B finds the store lost", lost(H.b_text), 10)
            # Node A (grace 300 s): the known device is still served.
            fs = on_a(known).folders(self)
            self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
            # Its last-seen update waits in node A's memory while the store is down.
            fs = touched.folders(self)
            self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
            # A device node A never served itself: allowed from its view all the same.
            fs = on_a(Phone(device_id=via_b.device_id)).folders(self)
            self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
            # An unknown device: 503 with Retry-After.
            r = on_a(Phone(device_id=new_id("mnunknown"))).foldersync()
            self.assertEqual(r.status, 503, "unknown device with the store down: %r" % r)
            self.assertRegex(r.headers.get("retry-after", ""), r"^\d+$", repr(r))
            # Node B (grace 3 s): once it is over, every device gets 503.
            time.sleep(3.5)
            r = on_b(Phone(device_id=known.device_id)).foldersync()
            self.assertEqual(r.status, 503, "known device past node B's grace: %r" % r)
            self.assertIn("retry-after", r.headers)
            # abqctl says what is wrong, in one line.
            p = H.ctl_b("mobile", "abq", "list")
            self.assertEqual(p.returncode, 1, p)
            self.assertIn("store", p.stderr)
        finally:
            with e2e.Timer("PostgreSQL started again"):
                H.pg.start()

        # Back: nothing lost, both nodes recover and see changes made now.
        after = H.ctl_json(self, "mobile", "abq", "list")["devices"]
        key = lambda d: (d["account"], d["deviceId"].upper(), d["state"])  # noqa: E731
        self.assertEqual(sorted(map(key, before)), sorted(map(key, after)))
        self.assertEqual(len(H.ctl_json(self, "mobile", "abq", "history")["history"]),
                         before_hist)
        self.until("node A back", lambda: ("store: back" in H.log_text(), None), 15)
        self.until("node B back", lambda: ("store: back" in H.b_text(), None), 15)

        def last_seen_written():
            d = self.device_info("alice", touched.device_id)["device"]
            return (d["lastSeen"] > seen_before, d["lastSeen"], seen_before)
        self.until("the waiting last-seen update written", last_seen_written, 10)
        self.admin_b("mobile", "abq", "block", known.device_id, "account", "alice")

        def blocked_on(ph):
            def f():
                r = ph.foldersync()
                return (r.status == 200 and b"abq-" not in r.body and
                        r.headers.get("content-type", "").startswith(e2e.WBXML_TYPE) and
                        e2e.text_of(r.doc(), "Status") == "129", r)
            return f
        self.until("node A blocks after a change on node B", blocked_on(on_a(known)), 5)
        self.until("node B blocks", blocked_on(on_b(Phone(device_id=known.device_id))), 5)
        # New devices are recorded again, through either node.
        for ph in (on_a(Phone(device_id=new_id("mnafter"))),
                   on_b(Phone(device_id=new_id("mnafter")))):
            fs = ph.folders(self)
            self.assertTrue(fs[0][0].startswith("abq-"), fs)
            d = H.ctl_json(self, "mobile", "getDeviceInfo", "alice", ph.device_id)["device"]
            self.assertEqual(d["state"], "Quarantined")

    # last ------------------------------------------------------------
    def test_m4_native_nodes(self):
        """Two nodes in native mode on the one PostgreSQL store, in front of the
        fixture's Dovecot: a phone allowed through abqctl syncs on one node and
        goes on from its SyncKey on the other (the sync state is the store's);
        a delivery comes once, on whichever node asks; a Ping held on one node is
        answered when the phone is blocked; new mailboxes listed by both nodes at
        once get one id."""
        nodes = []
        try:
            for name in ("n1", "n2"):
                (port,) = free_ports(1)
                p, conf, log = spawn_node(os.path.join(H.work, "native-" + name), port,
                                          H.native_conf(port))
                nodes.append((p, port, log))

            def on(phone, i):
                phone.port = nodes[i][1]
                return phone

            phone = Phone(device_id=new_id("mnnat"))
            r = on(phone, 0).foldersync()
            self.assertEqual(r.status, 200, r)
            self.admin("mobile", "abq", "allow", phone.device_id)
            time.sleep(1.2)
            fs1 = {(n, t): sid for sid, _, n, t in on(phone, 0).folders(self)}
            fs2 = {(n, t): sid for sid, _, n, t in on(phone, 1).folders(self)}
            self.assertEqual(fs1, fs2, "the two nodes name the folders differently")
            inbox = [sid for (n, t), sid in fs1.items() if t == "2"][0]

            key, got = on(phone, 0).sync_changes(self, inbox, phone.sync0(self, inbox))
            self.assertTrue(got, "node 1: nothing synced from the Inbox")
            key2, again = on(phone, 1).sync_changes(self, inbox, key)
            self.assertEqual(again, [], "node 2 sent again what node 1 had sent")
            subject = "Across nodes %s" % new_id("m")
            H.fixture_ok("deliver", "alice", subject)
            key3, got = on(phone, 1).sync_changes(self, inbox, key2)
            self.assertEqual(got, [subject], "node 2: the delivery")
            key4, again = on(phone, 0).sync_changes(self, inbox, key3)
            self.assertEqual(again, [], "node 1 sent the delivery again")

            # A Ping held on node 2 is answered when the phone is blocked.
            key5, _ = on(phone, 1).sync_changes(self, inbox, key4)
            th, res = self.held_ping(on(phone, 1), inbox, 300, timeout=330)
            time.sleep(1.5)
            self.assertTrue(th.is_alive(), "the Ping was not held: %r" % res)
            t0 = time.monotonic()
            self.admin("mobile", "abq", "block", phone.device_id)
            th.join(10)
            self.assertFalse(th.is_alive(), "the Ping on node 2 still held 10 s after block")
            self.assertNotIn("error", res, res)
            assert_status_doc(self, res["resp"], "Ping", 129, "the held Ping after block")
            # New mailboxes listed by both nodes at once: one id each.
            names = ["Race-%s-%d" % (new_id("r"), i) for i in range(4)]
            imap = imaplib.IMAP4("127.0.0.1", H.imap_port)
            try:
                imap.login("alice", "secret")
                for n in names:
                    self.assertEqual(imap.create(n)[0], "OK")
            finally:
                imap.logout()
            seen = [None, None]
            other = Phone(device_id=new_id("mnnat2"))  # a FolderSync 0 resets a device
            self.assertEqual(on(other, 0).foldersync().status, 200)
            self.admin("mobile", "abq", "allow", other.device_id)
            time.sleep(1.2)

            def fsync(i):
                seen[i] = {n: sid for sid, _, n, _ in
                           on(Phone(device_id=other.device_id), i).folders(self)}
            ths = [threading.Thread(target=fsync, args=(i,)) for i in (0, 1)]
            for th in ths:
                th.start()
            for th in ths:
                th.join(60)
            for n in names:
                self.assertIn(n, seen[0])
                self.assertEqual(seen[0][n], seen[1][n], "%s has two ids" % n)

            print("  [native nodes] state shared across nodes; the Ping on node 2 answered "
                  "%.2f s after block" % (res["t"] - t0), flush=True)
        finally:
            for p, _, log in nodes:
                p.send_signal(signal.SIGTERM)
                try:
                    self.assertEqual(p.wait(30), 0, "a native node's exit status")
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                    self.assertNotIn(bad, log_tail(log), "sanitizer report in a native node's log")

    def test_m9_sigterm_clean_exit(self):
        """Both nodes (store thread, change listener, sender) end on SIGTERM with status
        0 and no sanitizer report."""
        b, H.b = H.b, None
        b.send_signal(signal.SIGTERM)
        self.assertEqual(b.wait(30), 0, "node B's exit status")
        self.assertEqual(H.stop_abqd(30), 0, "node A's exit status")
        for text in (H.log_text(limit=10 ** 9), H.b_text()):
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                self.assertNotIn(bad, text, "sanitizer report in a node's log")


def load_tests(loader, tests, pattern):
    return loader.loadTestsFromNames(
        ["%s.%s" % (MultiNode.__name__, n) for n in sorted(dir(MultiNode))
         if n.startswith("test_m")], sys.modules[__name__])


def main():
    global H
    H = MultiHarness()
    e2e.run_suite("multinode", H)


if __name__ == "__main__":
    main()
